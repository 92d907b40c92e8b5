//! Tasks as the API shows them, with the files they ship.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskInfo {
    pub name: String,
    pub package: String,
    pub version: String,
    pub description: String,
    pub depends: Vec<String>,
    pub removes: Vec<String>,
    pub includes: Vec<String>,
    /// Nodes this task is directly assigned to.
    pub nodes: Vec<String>,
    #[serde(default)]
    pub files: Vec<FileInfo>,
    pub generation: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileInfo {
    pub path: String,
    /// Octal, e.g. "0644".
    pub mode: String,
    pub conffile: bool,
    /// `reload <svc>` or `restart <svc>` when set.
    pub action: Option<String>,
    pub template_bytes: usize,
    /// The template text itself (only in single-task answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}
