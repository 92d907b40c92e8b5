//! Fleet commands umc-admin ran over SSH (`audit_v1`): history beside the model. Recording
//! one touches no model table and makes no generation, so no version or Release date moves.

use std::collections::BTreeSet;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::tables::{AUDIT, NODES};
use super::{Store, StoreError, audit_started, decode, encode};
use crate::api::{AuditEntry, AuditRequest, RunResult};

#[derive(Serialize, Deserialize)]
struct AuditHostRec {
    host: String,
    exit: Option<u32>,
    signal: Option<String>,
    duration_ms: u64,
    error: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct AuditRec {
    time: i64,
    /// When the command began (schema 2; filled for older records by the migration).
    started: i64,
    user: String,
    targets: Vec<String>,
    command: String,
    results: Vec<AuditHostRec>,
}

/// The size limits of an audit record (`api::MAX_AUDIT_*`), and host names in their
/// normal form, each at most once.
fn check_audit_fields(req: &AuditRequest) -> Result<(), StoreError> {
    use crate::api::{
        MAX_AUDIT_COMMAND, MAX_AUDIT_ERROR, MAX_AUDIT_RECORD, MAX_AUDIT_SIGNAL, MAX_AUDIT_TARGET,
        MAX_AUDIT_TARGETS, audit_text_char,
    };
    let bad = |m: String| Err(StoreError::Invalid(format!("audit record: {m}")));
    // Everything in a record comes back to a terminal (`umc-admin log --audit`, which escapes
    // what it prints anyway) and the console: only text, with line breaks where they belong.
    if !req.command.chars().all(audit_text_char) {
        return bad("the command holds control characters other than line breaks and tabs".into());
    }
    if req.targets.iter().any(|t| t.chars().any(char::is_control)) {
        return bad("a target holds control characters".into());
    }
    if req.text_bytes() > MAX_AUDIT_RECORD {
        return bad(format!(
            "the record holds {} bytes of text, more than {MAX_AUDIT_RECORD}",
            req.text_bytes()
        ));
    }
    if req.command.len() > MAX_AUDIT_COMMAND {
        return bad(format!(
            "command is {} bytes, more than {MAX_AUDIT_COMMAND}",
            req.command.len()
        ));
    }
    if req.targets.len() > MAX_AUDIT_TARGETS {
        return bad(format!(
            "{} targets, more than {MAX_AUDIT_TARGETS}",
            req.targets.len()
        ));
    }
    if let Some(t) = req.targets.iter().find(|t| t.len() > MAX_AUDIT_TARGET) {
        return bad(format!(
            "a target is {} bytes, more than {MAX_AUDIT_TARGET}",
            t.len()
        ));
    }
    let mut seen = BTreeSet::new();
    for r in &req.results {
        if crate::model::normalize_host(&r.host).ok().as_deref() != Some(r.host.as_str()) {
            let shown: String = r.host.chars().take(64).collect();
            return bad(format!("'{}' is not a host name", shown.escape_debug()));
        }
        if !seen.insert(r.host.as_str()) {
            return bad(format!("host '{}' is listed twice", r.host));
        }
        if r.signal
            .as_ref()
            .is_some_and(|x| x.len() > MAX_AUDIT_SIGNAL)
        {
            return bad(format!(
                "host '{}': signal is longer than {MAX_AUDIT_SIGNAL} bytes",
                r.host
            ));
        }
        if r.signal
            .as_ref()
            .is_some_and(|x| x.chars().any(char::is_control))
        {
            return bad(format!(
                "host '{}': signal holds control characters",
                r.host
            ));
        }
        if r.error
            .as_ref()
            .is_some_and(|x| !x.chars().all(audit_text_char))
        {
            return bad(format!(
                "host '{}': error holds control characters other than line breaks and tabs",
                r.host
            ));
        }
        if r.error.as_ref().is_some_and(|x| x.len() > MAX_AUDIT_ERROR) {
            return bad(format!(
                "host '{}': error is longer than {MAX_AUDIT_ERROR} bytes",
                r.host
            ));
        }
    }
    Ok(())
}

impl Store {
    /// Records a fleet command; returns its id. Touches no model table and no generation.
    pub fn record_audit(
        &self,
        user: &str,
        req: &AuditRequest,
        now: i64,
    ) -> Result<u64, StoreError> {
        check_audit_fields(req)?;
        self.insert_audit(user, req, now)
    }

    /// [`Store::record_audit`] without its checks: what an older umcd stored before it
    /// checked audit fields. Only for tests of readers that must cope with such records.
    #[doc(hidden)]
    pub fn record_audit_unchecked(
        &self,
        user: &str,
        req: &AuditRequest,
        now: i64,
    ) -> Result<u64, StoreError> {
        self.insert_audit(user, req, now)
    }

    fn insert_audit(&self, user: &str, req: &AuditRequest, now: i64) -> Result<u64, StoreError> {
        let rec = AuditRec {
            time: now,
            started: audit_started(now, req.results.iter().map(|r| r.duration_ms)),
            user: user.to_string(),
            targets: req.targets.clone(),
            command: req.command.clone(),
            results: req
                .results
                .iter()
                .map(|r| AuditHostRec {
                    host: r.host.clone(),
                    exit: r.exit,
                    signal: r.signal.clone(),
                    duration_ms: r.duration_ms,
                    error: r.error.clone(),
                })
                .collect(),
        };
        let tx = self.db.begin_write()?;
        let id = {
            // The client reports each host's result; it may only name nodes (as they are now).
            let nodes = tx.open_table(NODES)?;
            for r in &req.results {
                if nodes.get(r.host.as_str())?.is_none() {
                    return Err(StoreError::Invalid(format!(
                        "audit record: host '{}' is not a node",
                        r.host
                    )));
                }
            }
            let mut t = tx.open_table(AUDIT)?;
            let id = t.last()?.map(|(k, _)| k.value() + 1).unwrap_or(1);
            t.insert(id, encode(&rec)?.as_slice())?;
            id
        };
        tx.commit()?;
        Ok(id)
    }

    /// Recorded fleet commands, newest first: at most `limit`, and no more than
    /// [`crate::api::MAX_AUDIT_PAGE`] bytes of them (but at least one).
    pub fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(AUDIT)?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for row in t.iter()?.rev().take(limit) {
            let (k, v) = row?;
            bytes = bytes.saturating_add(v.value().len());
            if !out.is_empty() && bytes > crate::api::MAX_AUDIT_PAGE {
                break;
            }
            let rec: AuditRec = decode("audit", v.value())?;
            out.push(AuditEntry {
                id: k.value(),
                time: rec.time,
                started: rec.started,
                user: rec.user,
                targets: rec.targets,
                command: rec.command,
                results: rec
                    .results
                    .into_iter()
                    .map(|r| RunResult {
                        host: r.host,
                        exit: r.exit,
                        signal: r.signal,
                        duration_ms: r.duration_ms,
                        error: r.error,
                    })
                    .collect(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Op;
    use crate::store::EditOptions;
    use crate::store::tests::{add, store};

    /// The field limits allow one 2 KB error per node; a record for a large fleet is bounded
    /// as a whole, and umc-admin's `clipped` shares the room among the hosts' errors.
    #[test]
    fn an_audit_record_is_bounded_as_a_whole() {
        let (_d, s) = store();
        let hosts: Vec<String> = (0..600).map(|i| format!("h{i:03}.example.com")).collect();
        let ops: Vec<Op> = hosts.iter().map(|h| add(h)).collect();
        s.edit("sh", &ops, 10, EditOptions::default())
            .expect("nodes");
        let req = AuditRequest {
            targets: vec!["all".into()],
            command: "uptime".into(),
            results: hosts
                .iter()
                .map(|h| crate::api::RunResult {
                    host: h.clone(),
                    exit: None,
                    signal: None,
                    duration_ms: 1,
                    error: Some("e".repeat(crate::api::MAX_AUDIT_ERROR)),
                })
                .collect(),
        };
        let e = s.record_audit("op", &req, 11).unwrap_err().to_string();
        assert!(e.contains("more than 1048576"), "{e}");
        assert!(s.audit(10).expect("audit").is_empty());
        let clipped = req.clipped();
        assert!(clipped.text_bytes() <= crate::api::MAX_AUDIT_RECORD);
        assert!(clipped.results.iter().all(|r| {
            r.error
                .as_ref()
                .is_some_and(|e| e.ends_with(" [...]") && e.len() > 1000)
        }));
        s.record_audit("op", &clipped, 11)
            .expect("a clipped record fits");
    }

    /// A viewer's `GET /audit?limit=10000` cannot make umcd hold `audit_keep` records of up to
    /// a megabyte each at once: an answer stops at `MAX_AUDIT_PAGE` bytes, newest first, and
    /// always holds the newest record.
    #[test]
    fn an_audit_answer_is_bounded_in_bytes() {
        use crate::api::{MAX_AUDIT_COMMAND, MAX_AUDIT_PAGE, MAX_AUDIT_TARGET, MAX_AUDIT_TARGETS};
        let (_d, s) = store();
        let big = AuditRequest {
            targets: vec!["t".repeat(MAX_AUDIT_TARGET); MAX_AUDIT_TARGETS],
            command: "c".repeat(MAX_AUDIT_COMMAND),
            results: Vec::new(),
        };
        let each = big.text_bytes();
        let records = MAX_AUDIT_PAGE / each + 8;
        for i in 0..records {
            s.record_audit("op", &big, 10 + i as i64).expect("record");
        }
        let got = s.audit(10_000).expect("audit");
        let bytes: usize = got
            .iter()
            .map(|e| e.command.len() + e.targets.len() * MAX_AUDIT_TARGET)
            .sum();
        assert!(
            bytes <= MAX_AUDIT_PAGE,
            "{} records, {bytes} bytes",
            got.len()
        );
        assert!(
            got.len() >= MAX_AUDIT_PAGE / (2 * each) && got.len() < records,
            "{} of {records}",
            got.len()
        );
        assert_eq!(got[0].id, records as u64, "newest first");
        assert_eq!(s.audit(3).expect("audit").len(), 3, "limit still holds");
        // A single record larger than a page (an older umcd stored it unchecked) still shows.
        let huge = AuditRequest {
            command: "c".repeat(MAX_AUDIT_PAGE + 1),
            ..big
        };
        s.record_audit_unchecked("op", &huge, 99_999)
            .expect("record");
        assert_eq!(s.audit(10_000).expect("audit").len(), 1);
    }
}
