//! Wire types of the admin API (`/api/v1`), shared by `umcd` and `umc-admin`.
//!
//! These are the only serde types that cross the network; storage has its own records in
//! `store`, so the database format and the API can evolve separately.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::ModelError;

/// Where `umc-admin` reaches a node over SSH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshTarget {
    pub user: String,
    pub address: String,
    pub port: u16,
}

impl SshTarget {
    /// Parses `user@address[:port]` (IPv6 addresses in brackets).
    pub fn parse(s: &str) -> Result<SshTarget, ModelError> {
        let err = || ModelError::InvalidSsh(s.to_string());
        let (user, rest) = s.split_once('@').ok_or_else(err)?;
        if user.is_empty()
            || !user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(err());
        }
        let (address, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (addr, tail) = v6.split_once(']').ok_or_else(err)?;
            let port = match tail.strip_prefix(':') {
                Some(p) => p.parse::<u16>().map_err(|_| err())?,
                None if tail.is_empty() => 22,
                None => return Err(err()),
            };
            (addr.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((a, p)) => (a.to_string(), p.parse::<u16>().map_err(|_| err())?),
                None => (rest.to_string(), 22),
            }
        };
        if address.is_empty()
            || port == 0
            || !address
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        {
            return Err(err());
        }
        Ok(SshTarget {
            user: user.to_string(),
            address,
            port,
        })
    }
}

impl fmt::Display for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.address.contains(':') {
            write!(f, "{}@[{}]:{}", self.user, self.address, self.port)
        } else {
            write!(f, "{}@{}:{}", self.user, self.address, self.port)
        }
    }
}

/// One model edit. A request carries a list of them; they commit together as one generation,
/// or not at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    NodeAdd {
        host: String,
        #[serde(default)]
        vars: BTreeMap<String, String>,
        #[serde(default)]
        ssh: Option<String>,
    },
    NodeRemove {
        host: String,
    },
    NodeSet {
        host: String,
        #[serde(default)]
        set_vars: BTreeMap<String, String>,
        #[serde(default)]
        unset_vars: Vec<String>,
        #[serde(default)]
        ssh: Option<String>,
        /// umcd's URL as the node reaches it.
        #[serde(default)]
        url: Option<String>,
        /// `keep-local`, `server-wins`, or `default` (umcd's setting).
        #[serde(default)]
        conffiles: Option<String>,
    },
    /// Gives the node a new token, delivered by its next `umc-node`. The old token keeps
    /// working until the node reports that version with the new token, or, with `force`,
    /// stops working at once.
    NodeTokenRotate {
        host: String,
        #[serde(default)]
        force: bool,
    },
    TaskAdd {
        task: String,
        #[serde(default)]
        description: Option<String>,
    },
    TaskSet {
        task: String,
        description: String,
    },
    TaskRemove {
        task: String,
    },
    TaskDepend {
        task: String,
        relations: Vec<String>,
    },
    TaskUndepend {
        task: String,
        packages: Vec<String>,
    },
    /// `task remove`: the packages are removed from nodes (`Conflicts:`).
    TaskRemovePackage {
        task: String,
        packages: Vec<String>,
    },
    TaskUnremovePackage {
        task: String,
        packages: Vec<String>,
    },
    TaskInclude {
        task: String,
        subtasks: Vec<String>,
    },
    TaskExclude {
        task: String,
        subtasks: Vec<String>,
    },
    /// Adds or replaces a file the task ships, rendered per host from a Tera template.
    TaskFileAdd {
        task: String,
        path: String,
        template: String,
        /// Octal file mode; default 0644.
        #[serde(default)]
        mode: Option<u32>,
        /// Service to reload when the file changed on a node.
        #[serde(default)]
        reload: Option<String>,
        /// Service to restart when the file changed on a node.
        #[serde(default)]
        restart: Option<String>,
    },
    TaskFileRemove {
        task: String,
        path: String,
    },
    /// Sets global variables (node variables overlay them in templates).
    VarSet {
        vars: BTreeMap<String, String>,
    },
    VarUnset {
        names: Vec<String>,
    },
    Assign {
        host: String,
        tasks: Vec<String>,
    },
    Unassign {
        host: String,
        tasks: Vec<String>,
    },
}

impl Op {
    /// The op's name on the wire (`node_add`, `task_file_add`, ...), as errors name it.
    pub fn name(&self) -> &'static str {
        match self {
            Op::NodeAdd { .. } => "node_add",
            Op::NodeRemove { .. } => "node_remove",
            Op::NodeSet { .. } => "node_set",
            Op::NodeTokenRotate { .. } => "node_token_rotate",
            Op::TaskAdd { .. } => "task_add",
            Op::TaskSet { .. } => "task_set",
            Op::TaskRemove { .. } => "task_remove",
            Op::TaskDepend { .. } => "task_depend",
            Op::TaskUndepend { .. } => "task_undepend",
            Op::TaskRemovePackage { .. } => "task_remove_package",
            Op::TaskUnremovePackage { .. } => "task_unremove_package",
            Op::TaskInclude { .. } => "task_include",
            Op::TaskExclude { .. } => "task_exclude",
            Op::TaskFileAdd { .. } => "task_file_add",
            Op::TaskFileRemove { .. } => "task_file_remove",
            Op::VarSet { .. } => "var_set",
            Op::VarUnset { .. } => "var_unset",
            Op::Assign { .. } => "assign",
            Op::Unassign { .. } => "unassign",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    pub ops: Vec<Op>,
    /// Accept package names that no catalog knows (`--force`).
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EditResponse {
    /// The new generation, or the current one when the edit changed nothing.
    pub generation: u64,
    /// Human change lines, as they appear in changelogs.
    pub changes: Vec<String>,
    /// Catalog warnings, e.g. a version constraint no catalog version satisfies.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Variables as the caller may see them (`GET /nodes…`, `GET /vars`): every name, and its
/// value, or `None` (JSON `null`) when the caller's role may not read values. Templates render
/// variables into files, secrets included, so a viewer gets the names only; see
/// `app::VAR_VALUES`.
pub type VarValues = BTreeMap<String, Option<String>>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub package: String,
    pub version: String,
    pub vars: VarValues,
    pub tasks: Vec<String>,
    /// The closure of the assigned tasks, sorted.
    pub task_closure: Vec<String>,
    pub ssh: Option<SshTarget>,
    /// umcd's URL as the node reaches it; `None` until enrolled.
    #[serde(default)]
    pub url: Option<String>,
    /// The node's own conffile policy; `None` follows umcd's default.
    #[serde(default)]
    pub conffiles: Option<String>,
    /// A token rotation under way (never the old token itself).
    #[serde(default)]
    pub rotation: Option<TokenRotation>,
    pub generation: u64,
}

/// A node token rotation under way: the previous token still authenticates until the node
/// reports, with its new token, `umc-node` at `until` or newer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRotation {
    /// The generation of the rotation.
    pub generation: u64,
    /// The first `umc-node` version that carries the new token.
    pub until: String,
}

/// `POST /api/v1/nodes/<host>/token`: rotate the node's token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRotateRequest {
    /// Revoke the old token at once (the node then needs the new one by hand).
    #[serde(default)]
    pub force: bool,
}

/// The answer to a rotation: the committed edit and the node's new token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRotateResponse {
    pub generation: u64,
    pub changes: Vec<String>,
    pub host: String,
    pub token: String,
    /// `None` after `force`: the old token no longer works.
    pub rotation: Option<TokenRotation>,
}

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

/// One file rendered for one host (`umc-admin render`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenderedFile {
    pub host: String,
    pub path: String,
    pub task: String,
    pub content: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeToken {
    pub host: String,
    pub token: String,
    /// A rotation under way (the previous token is never shown).
    #[serde(default)]
    pub rotation: Option<TokenRotation>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    pub generation: u64,
    /// Seconds since the Unix epoch, UTC.
    pub time: i64,
    pub user: String,
    pub changes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub version: String,
    pub generation: u64,
    pub architectures: Vec<String>,
    pub key_fingerprints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// `POST /catalogs/<name>/import`: fetch and verify an upstream repository's index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogImport {
    /// The archive root, `http://…/debian`.
    pub url: String,
    pub suite: String,
    /// Default `["main"]`.
    #[serde(default)]
    pub components: Vec<String>,
    /// Default `["amd64"]`.
    #[serde(default)]
    pub archs: Vec<String>,
    /// Base64 of an OpenPGP keyring (binary or armored); default: the server's archive keyring.
    #[serde(default)]
    pub keyring: Option<String>,
    /// Let umcd fetch from loopback, link-local, multicast, unspecified and cloud metadata
    /// addresses (refused by default: an import must not probe umcd's own network).
    #[serde(default)]
    pub allow_private: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogInfo {
    pub name: String,
    /// Empty for an offline import of a file.
    pub url: String,
    pub suite: String,
    pub components: Vec<String>,
    pub archs: Vec<String>,
    /// Seconds since the Unix epoch, UTC.
    pub imported_at: i64,
    /// Distinct package names.
    pub packages: u64,
    /// Stanzas read (a name may appear in several).
    pub stanzas: u64,
    /// Whether the index was checked against a verified InRelease.
    pub verified: bool,
}

/// One package of one catalog (`catalog show`), or a virtual package and its providers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogPackage {
    pub catalog: String,
    pub name: String,
    /// None when the name is only virtual in this catalog.
    pub version: Option<String>,
    pub section: String,
    pub priority: String,
    pub description: String,
    pub provides: Vec<String>,
    /// Packages that provide this name, as `pkg` or `pkg (= version)`.
    pub provided_by: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogHit {
    pub catalog: String,
    pub name: String,
    pub version: String,
    pub description: String,
}

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

/// One signing key (`GET /api/v1/keys`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Primary key fingerprint, uppercase hex.
    pub fingerprint: String,
    /// Key creation time, Unix seconds.
    pub created: i64,
    pub algorithm: String,
    pub user_id: String,
    /// The generation that added it (`None`: umcd's first key, which every node has).
    pub added_generation: Option<u64>,
    pub added_by: Option<String>,
    /// The first `umc-node` version that ships it (`None`: every version).
    pub node_version: Option<String>,
}

/// `POST /api/v1/keys/import`: an exported secret key (`gpg --export-secret-keys`), armored
/// or binary, base64-encoded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyImportRequest {
    pub key_base64: String,
}

/// `POST /api/v1/keys/retire`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRetireRequest {
    pub fingerprint: String,
    /// Retire even though active nodes have not confirmed the remaining keys.
    #[serde(default)]
    pub force: bool,
}

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

/// What a key operation committed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyChangeResponse {
    pub generation: u64,
    /// The key added or retired.
    pub fingerprint: String,
    /// The signing keys now, newest first.
    pub keys: Vec<String>,
    /// Active nodes that had not confirmed the remaining keys (a forced retire).
    #[serde(default)]
    pub unconfirmed: Vec<String>,
}

/// One node in `GET /api/v1/keys/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyNodeStatus {
    pub host: String,
    /// Seen (report or InRelease fetch) within `stale_after_secs`: its confirmation counts
    /// for `key retire`.
    pub active: bool,
    /// `umc-node`'s installed version from the newest report.
    pub installed: Option<String>,
    /// The `umc-node` version that ships every current key.
    pub needed: String,
    /// The newest report shows `umc-node` at `needed` or newer.
    pub confirmed: bool,
}

/// `GET /api/v1/keys/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyStatus {
    pub keys: Vec<KeyInfo>,
    /// `umc-node` version that ships every current key (`1.0` when every node has them all).
    pub needed: String,
    pub nodes: Vec<KeyNodeStatus>,
}

/// The answer to apply and rollback: like [`EditResponse`], and whether anything was written.
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

/// `GET /api/v1/diff?from=&to=`: what changed between two generations' models.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiffResponse {
    pub from: u64,
    pub to: u64,
    pub changes: Vec<String>,
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

/// What a user may do. `admin` edits everything; `operator` edits nodes and assignments and
/// records fleet commands; `viewer` only reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A user as `GET /api/v1/users` lists it: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    pub created: i64,
    /// Whether a password is set (a user without one can only use tokens made for it).
    pub has_password: bool,
}

/// `POST /api/v1/users` (add) and `POST /api/v1/users/<name>/password`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub role: Option<Role>,
    pub password: String,
}

/// An API token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub user: String,
    pub created: i64,
    pub expires: Option<i64>,
}

/// `POST /api/v1/tokens`: a token for the calling user.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[serde(default)]
    pub name: String,
    /// Days until it expires; none: never.
    #[serde(default)]
    pub expires_days: Option<u32>,
}

/// The answer to `POST /api/v1/tokens`: the only time the token is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenCreated {
    pub info: TokenInfo,
    pub token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Op::name` is the tag serde writes, for every op.
    #[test]
    fn op_names_are_the_wire_tags() {
        let t = || String::from("x");
        let v = || vec![String::from("x")];
        let ops = [
            Op::NodeAdd {
                host: t(),
                vars: BTreeMap::new(),
                ssh: None,
            },
            Op::NodeRemove { host: t() },
            Op::NodeSet {
                host: t(),
                set_vars: BTreeMap::new(),
                unset_vars: v(),
                ssh: None,
                url: None,
                conffiles: None,
            },
            Op::NodeTokenRotate {
                host: t(),
                force: false,
            },
            Op::TaskAdd {
                task: t(),
                description: None,
            },
            Op::TaskSet {
                task: t(),
                description: t(),
            },
            Op::TaskRemove { task: t() },
            Op::TaskDepend {
                task: t(),
                relations: v(),
            },
            Op::TaskUndepend {
                task: t(),
                packages: v(),
            },
            Op::TaskRemovePackage {
                task: t(),
                packages: v(),
            },
            Op::TaskUnremovePackage {
                task: t(),
                packages: v(),
            },
            Op::TaskInclude {
                task: t(),
                subtasks: v(),
            },
            Op::TaskExclude {
                task: t(),
                subtasks: v(),
            },
            Op::TaskFileAdd {
                task: t(),
                path: t(),
                template: t(),
                mode: None,
                reload: None,
                restart: None,
            },
            Op::TaskFileRemove {
                task: t(),
                path: t(),
            },
            Op::VarSet {
                vars: BTreeMap::new(),
            },
            Op::VarUnset { names: v() },
            Op::Assign {
                host: t(),
                tasks: v(),
            },
            Op::Unassign {
                host: t(),
                tasks: v(),
            },
        ];
        for op in &ops {
            let json = serde_json::to_value(op).expect("serialize");
            assert_eq!(json["op"], op.name(), "{op:?}");
        }
    }
}
