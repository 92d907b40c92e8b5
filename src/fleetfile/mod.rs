//! The fleet as a text file (`umc-admin export`, `apply`, `import`): the whole model in
//! readable, diff-friendly TOML (or JSON), and the edit that turns one model into another.
//!
//! Pure: no IO, no clock. The TOML is written by hand so that it reads well and is stable
//! (sorted keys, templates as multi-line literal strings); it is parsed with `toml`, keeping
//! each table's line so that every problem names its place in the file.

//!
//! - `mod.rs`: the file's form (`Fleet` and its tables), `Problem` and `Lines`;
//! - `convert`: the model to its form and back ([`Fleet::from_model`], [`Fleet::to_model`]);
//! - `diff`: the ops that turn one model into another ([`diff_ops`]);
//! - `write`: the TOML text ([`to_toml`]); `parse`: reading TOML and JSON ([`parse_toml`],
//!   [`parse_json`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod convert;
mod diff;
mod parse;
mod write;

pub use diff::diff_ops;
pub use parse::{parse_json, parse_toml};
pub use write::to_toml;

/// Bumped when the file's meaning changes; older files are then converted or refused.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    pub umc: Header,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    #[serde(default)]
    pub tasks: BTreeMap<String, TaskForm>,
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeForm>,
    /// Every committed edit, oldest first (`export --history`; what `import` restores).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<GenerationForm>,
}

/// Counters as the server had them. `apply` ignores them; `import` restores them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vars_generation: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_generation: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskForm {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub depends: Vec<String>,
    #[serde(default)]
    pub removes: Vec<String>,
    #[serde(default)]
    pub includes: Vec<String>,
    /// Conffiles the task used to ship (derived by edits; only `import` restores it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    #[serde(default)]
    pub files: BTreeMap<String, FileForm>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileForm {
    /// Octal, e.g. "0644".
    #[serde(default = "default_mode")]
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    pub template: String,
}

fn default_mode() -> String {
    "0644".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeForm {
    #[serde(default)]
    pub tasks: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conffiles: Option<String>,
    /// The node's secret (`export --with-secrets` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// During a token rotation, the node's previous token and the generation of the rotation
    /// (`export --with-secrets` only): an import keeps a node that has not switched yet
    /// working. `apply` ignores both, as it ignores `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_token_until: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationForm {
    pub generation: u64,
    pub time: i64,
    pub user: String,
    #[serde(default)]
    pub changes: Vec<ChangeForm>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeForm {
    pub text: String,
    /// Entity keys (`node:<host>`, `task:<name>`, `global`, `server`).
    #[serde(default)]
    pub entities: Vec<String>,
}

/// One problem of a fleet file, at its line (1-based; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

/// Where things are in the file, for error messages.
#[derive(Debug, Clone, Default)]
pub struct Lines {
    pub vars: usize,
    pub tasks: BTreeMap<String, usize>,
    pub nodes: BTreeMap<String, usize>,
    /// (task, path) -> line of the file's table, and line of the template's first line.
    pub files: BTreeMap<(String, String), (usize, usize)>,
}

impl Lines {
    fn task(&self, t: &str) -> usize {
        self.tasks.get(t).copied().unwrap_or(0)
    }
    fn node(&self, n: &str) -> usize {
        self.nodes.get(n).copied().unwrap_or(0)
    }
    /// The best line for an error message that names entities (`task 'x'`, `node 'y'`).
    pub fn for_message(&self, message: &str) -> usize {
        for (prefix, map) in [("task '", &self.tasks), ("node '", &self.nodes)] {
            for (i, _) in message.match_indices(prefix) {
                let rest = &message[i + prefix.len()..];
                if let Some(end) = rest.find('\'')
                    && let Some(l) = map.get(&rest[..end])
                {
                    return *l;
                }
            }
        }
        0
    }
}

/// `name:line: message` lines for the user.
pub fn describe(name: &str, problems: &[Problem]) -> String {
    let mut out = format!(
        "{name}: {} problem{}, nothing was changed",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        if p.line > 0 {
            out.push_str(&format!("\n{name}:{}: {}", p.line, p.message));
        } else {
            out.push_str(&format!("\n{name}: {}", p.message));
        }
    }
    out
}

#[cfg(test)]
mod tests;
