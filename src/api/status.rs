//! Fleet status: each host's standing and its recent reports.

use serde::{Deserialize, Serialize};

/// One host's standing, as `umc-admin status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStatus {
    pub host: String,
    /// `ok`, `pending`, `failed`, `stale` or `drift` on the wire.
    pub state: crate::report::State,
    pub package: String,
    /// The version umcd serves the host now, and since when.
    pub published: String,
    pub published_at: i64,
    /// From the newest report.
    pub installed: Option<String>,
    /// Newest report or InRelease fetch.
    pub last_seen: Option<i64>,
    pub last_report: Option<i64>,
    /// `ok` or `failed: <step> exited <n>`.
    pub last_result: Option<String>,
    pub reason: String,
}

/// `GET /api/v1/status/<host>`: the row plus the host's recent reports, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostStatusDetail {
    pub status: HostStatus,
    pub reports: Vec<ReportEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportEntry {
    pub received: i64,
    pub report: crate::report::Report,
}

/// `GET /api/v1/status[?failing=true]`: with `failing`, only the hosts that are not ok.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusQuery {
    pub failing: Option<bool>,
}
