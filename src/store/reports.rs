//! Node reports and passive signals: telemetry beside the model. Nothing here bumps a
//! generation or moves a package version; everything here is bounded.

use std::collections::BTreeMap;

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::tables::{LAST_REPORT, REPORTS, SEEN};
use super::{AUDIT, GENERATIONS, NODES, NodeRec, Store, StoreError, decode, encode, token_hash};
use crate::nodefiles::NODE_PACKAGE;
use crate::report::{self, Seen};

#[derive(Serialize, Deserialize)]
struct ReportRec {
    received: i64,
    text: String,
}

#[derive(Serialize, Deserialize)]
struct SeenRec {
    inrelease: Option<i64>,
    host_deb: Option<(String, i64)>,
}

/// A report to store: its host, when umcd received it, and its validated text.
#[derive(Debug, Clone)]
pub struct IncomingReport {
    pub host: String,
    pub received: i64,
    pub text: String,
    /// sha256 of the token the report was authenticated with, when that was the node's
    /// current token (`None`: its previous one, during a rotation). Not stored: it decides
    /// whether the report ends a rotation.
    pub current_token: Option<[u8; 32]>,
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReport {
    pub received: i64,
    pub text: String,
}

/// Drops `host`'s previous token when this report proves the node switched: it was
/// authenticated with the node's current token (`used`) and shows `umc-node` at the version
/// that first carried that token, or newer. A report made with the previous token never ends
/// the rotation: whoever holds a leaked token cannot close the window early and lock the node
/// out, and a node that kept a locally edited `auth.conf.d` entry (keep-local leaves umc's
/// version beside it as `.dpkg-dist`) keeps working with the old one until its admin acts.
/// This changes the node record outside an edit, without a generation: the previous token
/// shapes no served byte, so no version moves.
fn ends_rotation(
    nodes: &mut redb::Table<&str, &[u8]>,
    host: &str,
    used: [u8; 32],
    text: &str,
) -> Result<bool, StoreError> {
    let mut rec: NodeRec = match nodes.get(host)? {
        Some(v) => decode(host, v.value())?,
        None => return Ok(false),
    };
    let Some(previous) = &rec.previous_token else {
        return Ok(false);
    };
    if token_hash(&rec.token) != used {
        return Ok(false);
    }
    let needed = crate::model::version(previous.until);
    let shows = report::parse(text, i64::MAX - report::MAX_CLOCK_SKEW)
        .is_ok_and(|r| r.has_at_least(NODE_PACKAGE, &needed));
    if !shows {
        return Ok(false);
    }
    rec.previous_token = None;
    nodes.insert(host, encode(&rec)?.as_slice())?;
    Ok(true)
}

impl Store {
    /// Stores `batch` in one durable transaction, keeping the newest `keep` reports per host.
    /// A report that ends a token rotation (see [`ends_rotation`]) drops the node's previous
    /// token in the same transaction. Returns the hosts whose previous token was dropped.
    pub fn add_reports(
        &self,
        batch: &[IncomingReport],
        keep: usize,
    ) -> Result<Vec<String>, StoreError> {
        let tx = self.db.begin_write()?;
        let mut retired = Vec::new();
        {
            let mut reports = tx.open_table(REPORTS)?;
            let mut last = tx.open_table(LAST_REPORT)?;
            let mut nodes = tx.open_table(NODES)?;
            for r in batch {
                if let Some(used) = r.current_token
                    && ends_rotation(&mut nodes, &r.host, used, &r.text)?
                {
                    retired.push(r.host.clone());
                }
                let host = r.host.as_str();
                let next = reports
                    .range((host, 0)..=(host, u64::MAX))?
                    .next_back()
                    .transpose()?
                    .map_or(0, |(k, _)| k.value().1 + 1);
                let rec = encode(&ReportRec {
                    received: r.received,
                    text: r.text.clone(),
                })?;
                reports.insert((host, next), rec.as_slice())?;
                last.insert(host, rec.as_slice())?;
                let keep_from = (next + 1).saturating_sub(keep.max(1) as u64);
                let old: Vec<u64> = reports
                    .range((host, 0)..(host, keep_from))?
                    .map(|row| row.map(|(k, _)| k.value().1))
                    .collect::<Result<_, _>>()?;
                for seq in old {
                    reports.remove((host, seq))?;
                }
            }
        }
        tx.commit()?;
        Ok(retired)
    }

    /// Each host's newest report.
    pub fn last_reports(&self) -> Result<BTreeMap<String, StoredReport>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(LAST_REPORT)?;
        let mut out = BTreeMap::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let rec: ReportRec = decode("report", v.value())?;
            out.insert(
                k.value().to_string(),
                StoredReport {
                    received: rec.received,
                    text: rec.text,
                },
            );
        }
        Ok(out)
    }

    /// `host`'s newest reports, newest first.
    pub fn reports(&self, host: &str, limit: usize) -> Result<Vec<StoredReport>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(REPORTS)?;
        let mut out = Vec::new();
        for row in t.range((host, 0)..=(host, u64::MAX))?.rev().take(limit) {
            let (_, v) = row?;
            let rec: ReportRec = decode("report", v.value())?;
            out.push(StoredReport {
                received: rec.received,
                text: rec.text,
            });
        }
        Ok(out)
    }

    /// Writes umcd's in-memory passive signals.
    pub fn save_seen(&self, seen: &BTreeMap<String, Seen>) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(SEEN)?;
            for (host, s) in seen {
                let rec = SeenRec {
                    inrelease: s.inrelease,
                    host_deb: s.host_deb.clone(),
                };
                t.insert(host.as_str(), encode(&rec)?.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn load_seen(&self) -> Result<BTreeMap<String, Seen>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(SEEN)?;
        let mut out = BTreeMap::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let rec: SeenRec = decode("seen", v.value())?;
            out.insert(
                k.value().to_string(),
                Seen {
                    inrelease: rec.inrelease,
                    host_deb: rec.host_deb,
                },
            );
        }
        Ok(out)
    }

    /// Retention: keeps the newest `log_keep` generations (the edit log behind `umc-admin log`,
    /// and the model history rollback and diff rebuild, see `history::sweep`) and `audit_keep`
    /// fleet-command records, and forgets reports and signals of hosts that are no longer in
    /// the model. Package changelogs are not affected: each current package keeps the
    /// [`crate::repo::CHANGELOG_LIMIT`] entries it shows. Returns rows removed.
    pub fn prune(&self, log_keep: usize, audit_keep: usize) -> Result<u64, StoreError> {
        let tx = self.db.begin_write()?;
        let mut removed = 0u64;
        {
            // By count, not by number: floors and resyncs leave gaps in the numbering.
            let mut gens = tx.open_table(GENERATIONS)?;
            let len = gens.len()?;
            let keep = log_keep.max(1) as u64;
            let mut pruned = 0;
            if len > keep {
                let first_kept = gens
                    .iter()?
                    .nth(usize::try_from(len - keep).unwrap_or(usize::MAX))
                    .transpose()?
                    .map(|(k, _)| k.value());
                if let Some(cut) = first_kept {
                    gens.retain_in(..cut, |_, _| false)?;
                    pruned = len - gens.len()?;
                }
            }
            let oldest = gens.first()?.map(|(k, _)| k.value());
            drop(gens);
            removed += pruned;
            if let Some(oldest) = oldest {
                removed += super::history::sweep(&tx, oldest, pruned, log_keep)?;
            }
            let mut t = tx.open_table(AUDIT)?;
            let newest = t.last()?.map(|(k, _)| k.value());
            if let Some(newest) = newest {
                let cut = (newest + 1).saturating_sub(audit_keep.max(1) as u64);
                let before = t.len()?;
                t.retain_in(..cut, |_, _| false)?;
                removed += before - t.len()?;
            }
            drop(t);
            let nodes = tx.open_table(super::NODES)?;
            let mut gone = Vec::new();
            for table in [LAST_REPORT, SEEN] {
                let t = tx.open_table(table)?;
                for row in t.iter()? {
                    let (k, _) = row?;
                    let host = k.value().to_string();
                    if nodes.get(host.as_str())?.is_none() {
                        gone.push(host);
                    }
                }
            }
            gone.sort();
            gone.dedup();
            let mut last = tx.open_table(LAST_REPORT)?;
            let mut seen = tx.open_table(SEEN)?;
            let mut reports = tx.open_table(REPORTS)?;
            for host in &gone {
                last.remove(host.as_str())?;
                seen.remove(host.as_str())?;
                let h = host.as_str();
                let before = reports.len()?;
                reports.retain_in((h, 0)..=(h, u64::MAX), |_, _| false)?;
                removed += before - reports.len()?;
            }
        }
        tx.commit()?;
        Ok(removed)
    }
}
