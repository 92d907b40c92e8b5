//! The fleet file over the API: export, apply, import and rollback.

use serde::{Deserialize, Serialize};

/// `POST /api/v1/apply`: make the model equal a fleet file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// The file's text (TOML, or JSON when `json`).
    pub text: String,
    /// The file's name, for problem messages (`fleet.toml:12: …`).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub json: bool,
    /// Validate and list the changes, write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Accept package names that no catalog knows.
    #[serde(default)]
    pub force: bool,
}

/// The answer to apply and rollback: like [`super::EditResponse`], and whether anything was written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyResponse {
    pub generation: u64,
    pub changes: Vec<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
    pub dry_run: bool,
}

/// `POST /api/v1/rollback`: a new generation whose model equals generation `to`'s.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub to: u64,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub force: bool,
}

/// `POST /api/v1/import`: the answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportResponse {
    /// The generation restored from the export.
    pub generation: u64,
    pub nodes: usize,
    pub tasks: usize,
    pub history: usize,
}

/// `GET /api/v1/export`: node tokens with `secrets` (admin only), every generation's change
/// lines with `history`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    #[serde(default)]
    pub secrets: bool,
    #[serde(default)]
    pub history: bool,
}
