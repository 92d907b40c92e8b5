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
