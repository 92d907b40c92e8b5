//! The store's private records: serde types separate from `model` and `api` (so neither's
//! derives shape what is on disk), their JSON encoding, and the conversions to and from the
//! model. Task records name their templates by hash; the texts live in `templates_v1`.

use std::collections::{BTreeMap, BTreeSet};

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::StoreError;
use super::tables::TEMPLATES;
use crate::api::SshTarget;
use crate::model::{ConffilePolicy, FileAction, Node, PreviousToken, Task, TaskFile};

#[derive(Serialize, Deserialize)]
pub(super) struct SshRec {
    pub(super) user: String,
    pub(super) address: String,
    pub(super) port: u16,
}

#[derive(Serialize, Deserialize)]
pub(super) struct NodeRec {
    pub(super) vars: BTreeMap<String, String>,
    pub(super) tasks: BTreeSet<String>,
    pub(super) ssh: Option<SshRec>,
    pub(super) token: String,
    /// During a token rotation (absent in records written before rotations existed, and
    /// omitted when none is under way, so those records keep their bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) previous_token: Option<PreviousTokenRec>,
    #[serde(default)]
    pub(super) url: Option<String>,
    /// "keep-local" | "server-wins"
    #[serde(default)]
    pub(super) conffiles: Option<String>,
    pub(super) generation: u64,
}

#[derive(Serialize, Deserialize)]
pub(super) struct PreviousTokenRec {
    pub(super) token: String,
    pub(super) until: u64,
}

#[derive(Serialize, Deserialize)]
pub(super) struct FileRec {
    pub(super) path: String,
    /// sha256 of the template, hex: its key in `templates_v1` (schema 3; the text before).
    pub(super) sha256: String,
    pub(super) mode: u32,
    /// ("reload" | "restart", service)
    pub(super) action: Option<(String, String)>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct TaskRec {
    pub(super) description: String,
    pub(super) depends: Vec<String>,
    pub(super) removes: BTreeSet<String>,
    pub(super) includes: BTreeSet<String>,
    #[serde(default)]
    pub(super) files: Vec<FileRec>,
    #[serde(default)]
    pub(super) dropped: BTreeSet<String>,
    pub(super) generation: u64,
}

#[derive(Serialize, Deserialize)]
pub(super) struct ChangeRec {
    pub(super) text: String,
    pub(super) entities: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct TouchRec {
    pub(super) time: i64,
    pub(super) user: String,
    pub(super) lines: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct GenRec {
    pub(super) time: i64,
    pub(super) user: String,
    pub(super) changes: Vec<ChangeRec>,
}

pub(super) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(StoreError::Encode)
}

pub(super) fn decode<T: for<'a> Deserialize<'a>>(
    what: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::corrupt(what, e))
}

pub(super) fn node_from(name: &str, r: NodeRec) -> Node {
    Node {
        name: name.to_string(),
        vars: r.vars,
        tasks: r.tasks,
        ssh: r.ssh.map(|s| SshTarget {
            user: s.user,
            address: s.address,
            port: s.port,
        }),
        token: r.token,
        previous_token: r.previous_token.map(|p| PreviousToken {
            token: p.token,
            until: p.until,
        }),
        url: r.url,
        conffiles: r.conffiles.as_deref().and_then(ConffilePolicy::parse),
        generation: r.generation,
    }
}

pub(super) fn node_rec(n: &Node) -> NodeRec {
    NodeRec {
        vars: n.vars.clone(),
        tasks: n.tasks.clone(),
        ssh: n.ssh.as_ref().map(|s| SshRec {
            user: s.user.clone(),
            address: s.address.clone(),
            port: s.port,
        }),
        token: n.token.clone(),
        previous_token: n.previous_token.as_ref().map(|p| PreviousTokenRec {
            token: p.token.clone(),
            until: p.until,
        }),
        url: n.url.clone(),
        conffiles: n.conffiles.map(|p| p.as_str().to_string()),
        generation: n.generation,
    }
}

/// The table of templates, as readers pass it to [`task_from`].
pub(super) trait Templates: ReadableTable<&'static [u8], &'static [u8]> {}
impl<T: ReadableTable<&'static [u8], &'static [u8]>> Templates for T {}

pub(super) fn template_hash(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The task record `r` of task `name`, with its templates read from `templates`.
pub(super) fn task_from(
    name: &str,
    r: TaskRec,
    templates: &impl Templates,
) -> Result<Task, StoreError> {
    let mut files = BTreeMap::new();
    for f in r.files {
        let corrupt = |m: String| StoreError::corrupt(format!("task '{name}' file {}", f.path), m);
        let key = hex::decode(&f.sha256)
            .map_err(|e| corrupt(format!("template hash {:?}: {e}", f.sha256)))?;
        let text = templates
            .get(key.as_slice())?
            .ok_or_else(|| corrupt(format!("template {} is missing", f.sha256)))?;
        let template = String::from_utf8(text.value().to_vec())
            .map_err(|e| corrupt(format!("template {}: {e}", f.sha256)))?;
        let action = match f.action {
            Some((kind, svc)) if kind == "reload" => Some(FileAction::Reload(svc)),
            Some((_, svc)) => Some(FileAction::Restart(svc)),
            None => None,
        };
        let file = TaskFile {
            path: f.path,
            template,
            mode: f.mode,
            action,
        };
        files.insert(file.path.clone(), file);
    }
    Ok(Task {
        name: name.to_string(),
        description: r.description,
        depends: r.depends,
        removes: r.removes,
        includes: r.includes,
        files,
        dropped: r.dropped,
        generation: r.generation,
    })
}

/// `t`'s record, after writing those of its templates that `templates_v1` lacks.
pub(super) fn put_task(tx: &redb::WriteTransaction, t: &Task) -> Result<TaskRec, StoreError> {
    let mut templates = tx.open_table(TEMPLATES)?;
    let mut files = Vec::with_capacity(t.files.len());
    for f in t.files.values() {
        let hash = template_hash(&f.template);
        if templates.get(hash.as_slice())?.is_none() {
            templates.insert(hash.as_slice(), f.template.as_bytes())?;
        }
        files.push(FileRec {
            path: f.path.clone(),
            sha256: hex::encode(hash),
            mode: f.mode,
            action: f.action.as_ref().map(|a| match a {
                FileAction::Reload(s) => ("reload".to_string(), s.clone()),
                FileAction::Restart(s) => ("restart".to_string(), s.clone()),
            }),
        });
    }
    Ok(TaskRec {
        description: t.description.clone(),
        depends: t.depends.clone(),
        removes: t.removes.clone(),
        includes: t.includes.clone(),
        files,
        dropped: t.dropped.clone(),
        generation: t.generation,
    })
}
