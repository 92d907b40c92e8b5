//! The fleet commands umc-admin ran (`/api/v1/audit`), with the limits of a record.

use serde::{Deserialize, Serialize};

/// One host's outcome of a fleet command (`umc-admin ssh|upgrade|restart`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    pub host: String,
    /// The command's exit status, when it ran to the end.
    pub exit: Option<u32>,
    /// The signal that ended the command, when one did.
    pub signal: Option<String>,
    pub duration_ms: u64,
    /// Why the host did not run the command to the end: connection, host key,
    /// authentication, timeout, interrupted.
    pub error: Option<String>,
}

impl RunResult {
    /// The host ran the command and it exited 0.
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.signal.is_none() && self.exit == Some(0)
    }
}

/// `POST /api/v1/audit`: a fleet command umc-admin ran, for the server's history.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRequest {
    /// The targets as the admin gave them (`all`, `task:web`, a glob, names).
    pub targets: Vec<String>,
    pub command: String,
    pub results: Vec<RunResult>,
}

/// The longest audit command, in bytes.
pub const MAX_AUDIT_COMMAND: usize = 16 * 1024;
/// The most targets of an audit record, and the longest one, in bytes.
pub const MAX_AUDIT_TARGETS: usize = 1024;
pub const MAX_AUDIT_TARGET: usize = 256;
/// The longest host error and signal name in an audit record, in bytes.
pub const MAX_AUDIT_ERROR: usize = 2048;
pub const MAX_AUDIT_SIGNAL: usize = 32;
/// The most bytes of text one audit record holds, all fields together: the field limits alone
/// allow a record per node of the fleet, and `audit_keep` records are kept.
pub const MAX_AUDIT_RECORD: usize = 1 << 20;
/// The most bytes of records (as stored) one `GET /api/v1/audit` answer holds, whatever its
/// `limit`, and at least one record:
/// `audit_keep` records of [`MAX_AUDIT_RECORD`] would be gigabytes in one answer, which any
/// viewer could ask for again and again.
pub const MAX_AUDIT_PAGE: usize = 8 << 20;

/// Whether `c` may appear in an audit record's command or a host's error (text a terminal
/// shows: line breaks and tabs, no other control characters).
pub fn audit_text_char(c: char) -> bool {
    c == '\n' || c == '\t' || !c.is_control()
}

impl AuditRequest {
    /// The bytes of text the record holds, as [`MAX_AUDIT_RECORD`] counts them.
    pub fn text_bytes(&self) -> usize {
        self.command.len()
            + self.targets.iter().map(String::len).sum::<usize>()
            + self
                .results
                .iter()
                .map(|r| {
                    r.host.len()
                        + r.signal.as_ref().map_or(0, String::len)
                        + r.error.as_ref().map_or(0, String::len)
                })
                .sum::<usize>()
    }
}

impl AuditRequest {
    /// Shortens the command and host errors to what umcd records, marking the cut, and
    /// replaces control characters umcd refuses (umc-admin records a long or odd script
    /// rather than no record at all). Host errors share what [`MAX_AUDIT_RECORD`] leaves.
    pub fn clipped(mut self) -> AuditRequest {
        fn clean(s: &mut String) {
            if !s.chars().all(audit_text_char) {
                *s = s
                    .chars()
                    .map(|c| if audit_text_char(c) { c } else { '\u{fffd}' })
                    .collect();
            }
        }
        fn clip(s: &mut String, max: usize) {
            const MARK: &str = " [...]";
            if s.len() > max {
                let mut end = max.saturating_sub(MARK.len());
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
                s.push_str(MARK);
            }
        }
        clean(&mut self.command);
        clip(&mut self.command, MAX_AUDIT_COMMAND);
        let fixed = self.command.len()
            + self.targets.iter().map(String::len).sum::<usize>()
            + self
                .results
                .iter()
                .map(|r| r.host.len() + r.signal.as_ref().map_or(0, String::len))
                .sum::<usize>();
        let errors = self.results.iter().filter(|r| r.error.is_some()).count();
        let share = (MAX_AUDIT_RECORD.saturating_sub(fixed) / errors.max(1)).min(MAX_AUDIT_ERROR);
        for r in &mut self.results {
            if let Some(e) = &mut r.error {
                clean(e);
                clip(e, share);
            }
        }
        self
    }
}

/// A recorded fleet command, as `GET /api/v1/audit` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: u64,
    /// Seconds since the Unix epoch, UTC: when the server recorded it.
    pub time: i64,
    /// When the command began: `time` minus the slowest host's duration.
    #[serde(default)]
    pub started: i64,
    pub user: String,
    pub targets: Vec<String>,
    pub command: String,
    pub results: Vec<RunResult>,
}

/// `GET /api/v1/audit`: the newest `limit` records (default 50).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub limit: Option<usize>,
}
