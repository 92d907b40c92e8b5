//! The change log (`GET /api/v1/log`) and what changed between two generations
//! (`GET /api/v1/diff`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    pub generation: u64,
    /// Seconds since the Unix epoch, UTC.
    pub time: i64,
    pub user: String,
    pub changes: Vec<String>,
}

/// `GET /api/v1/diff?from=&to=`: what changed between two generations' models.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiffResponse {
    pub from: u64,
    pub to: u64,
    pub changes: Vec<String>,
}

/// `GET /api/v1/log`: the newest `limit` edits (default 50), or only those of one host or task.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    pub host: Option<String>,
    pub task: Option<String>,
    pub limit: Option<usize>,
}

/// `GET /api/v1/diff?from=&to=`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    pub from: u64,
    pub to: u64,
}
