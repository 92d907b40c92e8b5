//! The fleet model: nodes, tasks, variables, and the edits that change them.
//!
//! Everything here is pure: no IO, no clock, no randomness (node tokens are handed in).
//! [`Model::apply`] applies one edit, [`Model::validate`] checks the invariants that span
//! entities (include cycles, depends-vs-removes conflicts, package-name collisions).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::api::{Op, SshTarget};

/// Longest `umc-<host>` package name we emit. dpkg keeps `<pkg>.md5sums` etc. in
/// /var/lib/dpkg/info, and names near 255 bytes fail there.
pub const MAX_PACKAGE_NAME: usize = 200;
pub const MAX_TASK_NAME: usize = 64;
pub const MAX_VAR_NAME: usize = 128;
pub const MAX_VAR_VALUE: usize = 64 * 1024;
pub const MAX_DESCRIPTION: usize = 4096;
pub const MAX_RELATIONS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Lowercased FQDN.
    pub name: String,
    pub vars: BTreeMap<String, String>,
    pub tasks: BTreeSet<String>,
    pub ssh: Option<SshTarget>,
    /// Secret for apt's Basic auth and reports.
    pub token: String,
    /// During a token rotation, the token the node had before: it still authenticates until
    /// the node reports the `umc-node` that carries `token` (see [`PreviousToken`]).
    pub previous_token: Option<PreviousToken>,
    /// umcd's URL as this node reaches it (set at enrollment); `umc-node` ships apt sources
    /// pointing there. `None`: the node's apt configuration is managed by hand.
    pub url: Option<String>,
    /// Conffile policy of this node; `None` follows umcd's default.
    pub conffiles: Option<ConffilePolicy>,
    /// Newest generation that changed this node's package inputs.
    pub generation: u64,
}

/// A node's token before `Op::NodeTokenRotate`. It keeps working until the node reports,
/// authenticated with its new token, `umc-node` at version `1.<until>` or newer: the first
/// version whose `auth.conf.d` entry carries the new token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousToken {
    pub token: String,
    /// The generation of the rotation. 0 while the edit is uncommitted: the store fills in
    /// the edit's generation when it commits (`Model::apply` does not know it).
    pub until: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub name: String,
    pub description: String,
    /// Normalized relation strings, each a `Depends:` entry (`a | b (>= 1)`).
    pub depends: Vec<String>,
    pub removes: BTreeSet<String>,
    pub includes: BTreeSet<String>,
    /// Files the task ships, rendered per host, by absolute path.
    pub files: BTreeMap<String, TaskFile>,
    /// Conffiles the task used to ship: its package tells dpkg to delete them on upgrade
    /// (`remove-on-upgrade`), so a dropped file disappears from nodes.
    pub dropped: BTreeSet<String>,
    /// Newest generation that changed this task.
    pub generation: u64,
}

/// What dpkg does with a conffile the admin changed on the node when umc ships a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConffilePolicy {
    /// The local edit stays and umc's version waits beside it as `.dpkg-dist`
    /// (`--force-confdef --force-confold`).
    #[default]
    KeepLocal,
    /// umc's version replaces the local edit, which is kept as `.dpkg-old`; applies to umc's
    /// own packages only.
    ServerWins,
}

impl ConffilePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ConffilePolicy::KeepLocal => "keep-local",
            ConffilePolicy::ServerWins => "server-wins",
        }
    }
    pub fn parse(s: &str) -> Option<ConffilePolicy> {
        match s {
            "keep-local" => Some(ConffilePolicy::KeepLocal),
            "server-wins" => Some(ConffilePolicy::ServerWins),
            _ => None,
        }
    }
}

impl fmt::Display for ConffilePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a node does when a shipped file changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAction {
    Reload(String),
    Restart(String),
}

/// A file a task ships: a Tera template rendered for each host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFile {
    pub path: String,
    pub template: String,
    pub mode: u32,
    pub action: Option<FileAction>,
}

impl TaskFile {
    /// Files under /etc are conffiles: dpkg keeps a local edit instead of overwriting it.
    pub fn is_conffile(&self) -> bool {
        self.path.starts_with("/etc/")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    pub nodes: BTreeMap<String, Node>,
    pub tasks: BTreeMap<String, Task>,
    /// Global variables, overlaid by each node's own in templates.
    pub vars: BTreeMap<String, String>,
    /// Newest generation that changed the global variables.
    pub vars_generation: u64,
}

/// What an edit touched; history entries are indexed by it and package versions derive from it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entity {
    Node(String),
    Task(String),
    Global,
    /// umcd's own serving inputs (signing keys, the files of `umc-node`); touched when they
    /// change at startup, never by an edit.
    Server,
}

impl Entity {
    pub fn key(&self) -> String {
        match self {
            Entity::Node(n) => format!("node:{n}"),
            Entity::Task(t) => format!("task:{t}"),
            Entity::Global => "global".to_string(),
            Entity::Server => "server".to_string(),
        }
    }
    pub fn from_key(key: &str) -> Option<Entity> {
        if let Some(n) = key.strip_prefix("node:") {
            Some(Entity::Node(n.to_string()))
        } else if let Some(t) = key.strip_prefix("task:") {
            Some(Entity::Task(t.to_string()))
        } else if key == "global" {
            Some(Entity::Global)
        } else if key == "server" {
            Some(Entity::Server)
        } else {
            None
        }
    }
}

/// One human line of an edit and the entities whose packages it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub text: String,
    pub entities: Vec<Entity>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("invalid host name '{name}': {why}")]
    InvalidHost { name: String, why: String },
    #[error(
        "invalid task name '{name}': must match [a-z0-9][a-z0-9+.-]* and be at most {MAX_TASK_NAME} characters"
    )]
    InvalidTask { name: String },
    #[error("invalid package name '{0}': must match [a-z0-9][a-z0-9+.-]+ (Debian Policy 5.6.1)")]
    InvalidPackage(String),
    #[error("invalid relation '{relation}': {why}")]
    InvalidRelation { relation: String, why: String },
    #[error(
        "invalid variable name '{0}': must match [A-Za-z_][A-Za-z0-9_]* and be at most {MAX_VAR_NAME} characters"
    )]
    InvalidVar(String),
    #[error("variable '{0}': value is longer than {MAX_VAR_VALUE} bytes")]
    VarTooLong(String),
    #[error("invalid ssh target '{0}': expected user@address[:port]")]
    InvalidSsh(String),
    #[error("task '{0}': description is longer than {MAX_DESCRIPTION} bytes")]
    DescriptionTooLong(String),
    #[error("task '{0}': description contains control characters (only newlines are allowed)")]
    DescriptionControl(String),
    #[error("task '{task}': '{package}' is a umc package; use 'task include' for tasks")]
    ReservedPackage { task: String, package: String },
    #[error("{scope}: every alternative of '{relation}' is removed (by task '{removes}')")]
    AlternativesRemoved {
        scope: String,
        relation: String,
        removes: String,
    },
    #[error("node '{0}' already exists")]
    NodeExists(String),
    #[error("task '{0}' already exists")]
    TaskExists(String),
    #[error("unknown node '{0}'")]
    UnknownNode(String),
    #[error("unknown task '{0}'")]
    UnknownTask(String),
    #[error("node '{node}': package name '{package}' is already used by node '{other}'")]
    PackageCollision {
        node: String,
        package: String,
        other: String,
    },
    #[error("including '{sub}' in '{task}' would create a cycle: {path}")]
    Cycle {
        task: String,
        sub: String,
        path: String,
    },
    #[error("task '{task}' cannot include itself")]
    SelfInclude { task: String },
    #[error(
        "{scope}: package '{package}' is both depended on (task '{depends}') and removed (task '{removes}')"
    )]
    DependsAndRemoves {
        scope: String,
        package: String,
        depends: String,
        removes: String,
    },
    #[error("task '{task}': no dependency on '{package}'")]
    NoSuchDependency { task: String, package: String },
    #[error("task '{task}': too many dependencies (at most {MAX_RELATIONS})")]
    TooManyRelations { task: String },
    #[error("an edit needs at least one operation")]
    EmptyEdit,
    #[error("task '{task}': invalid file path '{path}': {why}")]
    InvalidPath {
        task: String,
        path: String,
        why: String,
    },
    #[error("task '{task}': file '{path}': mode {mode:o} is not a file mode (0 to 7777)")]
    InvalidMode {
        task: String,
        path: String,
        mode: u32,
    },
    #[error("invalid conffile policy '{0}': expected keep-local, server-wins or default")]
    InvalidPolicy(String),
    #[error("invalid URL '{url}': {why}")]
    InvalidUrl { url: String, why: String },
    #[error("invalid service name '{0}'")]
    InvalidService(String),
    #[error("task '{task}': no file '{path}'")]
    NoSuchFile { task: String, path: String },
    #[error("node '{node}': file '{path}' is shipped by both task '{a}' and task '{b}'")]
    PathConflict {
        node: String,
        path: String,
        a: String,
        b: String,
    },
    #[error("{0}")]
    Template(#[from] crate::template::TemplateError),
    #[error("unknown global variable '{0}'")]
    UnknownVar(String),
    #[error(
        "node '{0}': a token rotation is still under way (its previous token works until the node reports the umc-node that carries the new one); wait for its next cycle (umc-admin node token {0}), or rotate with --force to revoke both old tokens at once"
    )]
    RotationPending(String),
}

fn is_pkg_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')
}

/// Debian Policy 5.6.1: `[a-z0-9][a-z0-9+.-]+`.
pub fn validate_package_name(name: &str) -> Result<(), ModelError> {
    let mut chars = name.chars();
    let ok = name.len() >= 2
        && name.len() <= MAX_PACKAGE_NAME
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(is_pkg_char);
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidPackage(name.to_string()))
    }
}

pub fn validate_task_name(name: &str) -> Result<(), ModelError> {
    let mut chars = name.chars();
    let ok = !name.is_empty()
        && name.len() <= MAX_TASK_NAME
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(is_pkg_char);
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidTask {
            name: name.to_string(),
        })
    }
}

/// RFC 1123 host name, returned lowercased.
pub fn normalize_host(name: &str) -> Result<String, ModelError> {
    let err = |why: &str| ModelError::InvalidHost {
        name: name.to_string(),
        why: why.to_string(),
    };
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    if lower.is_empty() {
        return Err(err("empty"));
    }
    if lower.len() > 253 {
        return Err(err("longer than 253 characters"));
    }
    for label in lower.split('.') {
        if label.is_empty() {
            return Err(err("empty label"));
        }
        if label.len() > 63 {
            return Err(err("a label is longer than 63 characters"));
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(err("only letters, digits, '-' and '.' are allowed"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(err("a label starts or ends with '-'"));
        }
    }
    Ok(lower)
}

/// The `umc-<host>` package name of a host. Long names are shortened deterministically with a
/// hash suffix; collisions are rejected by [`Model::validate`].
pub fn host_package(host: &str) -> String {
    use sha2::{Digest, Sha256};
    let full = format!("umc-{host}");
    if full.len() <= MAX_PACKAGE_NAME {
        return full;
    }
    let digest = hex::encode(&Sha256::digest(host.as_bytes())[..6]);
    let keep = MAX_PACKAGE_NAME - digest.len() - 1;
    let mut prefix = full[..keep].to_string();
    while prefix.ends_with(['.', '-', '+']) {
        prefix.pop();
    }
    format!("{prefix}-{digest}")
}

pub fn task_package(task: &str) -> String {
    format!("umc-task-{task}")
}

pub fn validate_var_name(name: &str) -> Result<(), ModelError> {
    let mut chars = name.chars();
    let ok = name.len() <= MAX_VAR_NAME
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidVar(name.to_string()))
    }
}

/// Descriptions end up in control files: a tab, CR or other control character would make the
/// package unbuildable for every host that sees it.
fn validate_description(task: &str, d: &str) -> Result<(), ModelError> {
    if d.len() > MAX_DESCRIPTION {
        return Err(ModelError::DescriptionTooLong(task.to_string()));
    }
    if d.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ModelError::DescriptionControl(task.to_string()));
    }
    Ok(())
}

/// umc's own packages are not dependencies or removals a task may name: `umc-task-*` comes
/// from includes, and removing `umc-<host>` or a task package would break every cycle.
fn check_not_umc(task: &str, package: &str) -> Result<(), ModelError> {
    if package.starts_with("umc-") {
        return Err(ModelError::ReservedPackage {
            task: task.to_string(),
            package: package.to_string(),
        });
    }
    Ok(())
}

fn validate_var(name: &str, value: &str) -> Result<(), ModelError> {
    validate_var_name(name)?;
    if value.len() > MAX_VAR_VALUE {
        return Err(ModelError::VarTooLong(name.to_string()));
    }
    Ok(())
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

/// Where a displaced file's original goes: `<path>.umc-orig` (see contrib/maintscripts).
pub const DIVERTED_SUFFIX: &str = ".umc-orig";

/// Paths of the `umc-node` package and of umc's state on nodes (a trailing `/`: everything
/// below); no task may ship them.
pub const NODE_PATHS: &[&str] = &[
    "/etc/umc/",
    "/var/lib/umc/",
    "/usr/sbin/umc-cycle",
    "/lib/systemd/system/umc-cycle.service",
    "/lib/systemd/system/umc-cycle.timer",
    "/etc/apt/sources.list.d/umc.sources",
    "/etc/apt/auth.conf.d/umc.conf",
    "/usr/share/keyrings/umc-archive-keyring.gpg",
];

/// A node token as umcd makes them (`store::random_token`): 64 lowercase hex digits. Tokens
/// from files (apply, import) must look the same: they are written into apt's auth.conf and
/// into the enrollment script.
pub fn valid_token(t: &str) -> bool {
    t.len() == 64
        && t.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/._+-@=,%~".contains(c)
}

/// A URL nodes reach umcd at: `http://` or `https://`, a host, no credentials, query or
/// fragment. Returned without a trailing `/`.
pub fn validate_url(url: &str) -> Result<String, ModelError> {
    let err = |why: &str| ModelError::InvalidUrl {
        url: url.to_string(),
        why: why.to_string(),
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| err("must start with http:// or https://"))?;
    if url.len() > 1024 {
        return Err(err("too long"));
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(err("has no host"));
    }
    if host.contains('@') {
        return Err(err("must not carry credentials (nodes get their own)"));
    }
    if let Some(c) = url
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "/:._-~%[]".contains(c)))
    {
        return Err(err(&format!("contains '{c}'")));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Longest file path a task may ship.
pub const MAX_PATH: usize = 4096;

/// An absolute, normalized path a task may ship: no `.`/`..`/empty components, no whitespace or
/// control characters, not the package documentation umc writes itself.
pub fn validate_file_path(task: &str, path: &str) -> Result<(), ModelError> {
    let err = |why: &str| ModelError::InvalidPath {
        task: task.to_string(),
        path: path.to_string(),
        why: why.to_string(),
    };
    let Some(rest) = path.strip_prefix('/') else {
        return Err(err("must be absolute"));
    };
    if path.len() > MAX_PATH {
        return Err(err("too long"));
    }
    if rest.is_empty() || path.ends_with('/') {
        return Err(err("must name a file"));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err("contains whitespace or control characters"));
    }
    for c in rest.split('/') {
        match c {
            "" => return Err(err("empty component ('//')")),
            "." | ".." => return Err(err("'.' and '..' are not allowed")),
            _ => {}
        }
    }
    // Maintainer scripts name these paths; keep them free of shell and glob syntax.
    if let Some(c) = rest.chars().find(|&c| !path_char(c)) {
        return Err(err(&format!(
            "contains '{c}'; paths may use letters, digits, '/' and . _ + - @ = , % ~"
        )));
    }
    if path.ends_with(DIVERTED_SUFFIX) || path.contains(".dpkg-") {
        return Err(err(
            "names a file dpkg or umc keep beside a configuration file (.umc-orig, .dpkg-*)",
        ));
    }
    if path.starts_with("/usr/share/doc/umc-") || path.starts_with("/DEBIAN/") {
        return Err(err("reserved for umc's own package files"));
    }
    if NODE_PATHS
        .iter()
        .any(|p| path == *p || (p.ends_with('/') && path.starts_with(p)))
    {
        return Err(err("reserved for the umc-node package"));
    }
    if path.starts_with("/usr/local/") {
        return Err(err(
            "/usr/local belongs to the local administrator; packages may not ship files there (Debian Policy 9.1.2)",
        ));
    }
    Ok(())
}

/// systemd unit names: `nginx`, `php8.2-fpm`, `getty@tty1.service`.
pub fn validate_service(name: &str) -> Result<(), ModelError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':' | '\\'));
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidService(name.to_string()))
    }
}

/// A parsed `Depends:` entry: its normalized text and the package names it mentions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub text: String,
    pub packages: Vec<String>,
}

/// Parses one relation entry (`a`, `a (>= 1.2)`, `a:any`, `a | b`) with debian-control's parser
/// and rejects what a binary package's `Depends:` may not hold (substvars, arch lists, profiles).
pub fn parse_relation(input: &str) -> Result<Relation, ModelError> {
    use debian_control::lossy::Relations;
    let err = |why: String| ModelError::InvalidRelation {
        relation: input.to_string(),
        why,
    };
    if input.contains(',') {
        return Err(err(
            "one relation per argument; give 'a, b' as two arguments".into(),
        ));
    }
    if input.contains(['\n', '\r', '$']) {
        return Err(err("contains a newline or substitution variable".into()));
    }
    let parsed: Relations = input.parse().map_err(|e: String| err(e.to_lowercase()))?;
    let entry = match parsed.0.as_slice() {
        [entry] => entry,
        [] => return Err(err("empty".into())),
        _ => return Err(err("more than one relation".into())),
    };
    let mut packages = Vec::new();
    let mut parts = Vec::new();
    for rel in entry {
        validate_package_name(&rel.name)
            .map_err(|_| err(format!("bad package name '{}'", rel.name)))?;
        if rel.architectures.is_some() || !rel.profiles.is_empty() {
            return Err(err(
                "architecture lists and build profiles belong in build dependencies".into(),
            ));
        }
        if let Some(q) = &rel.archqual
            && !q.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(err(format!("bad architecture qualifier '{q}'")));
        }
        packages.push(rel.name.clone());
        parts.push(rel.to_string());
    }
    Ok(Relation {
        text: parts.join(" | "),
        packages,
    })
}

fn relation_packages(text: &str) -> Vec<String> {
    parse_relation(text)
        .map(|r| r.packages)
        .unwrap_or_else(|_| vec![text.to_string()])
}

/// The tasks reachable from `roots` through `includes`, sorted by name (the roots included).
pub fn closure_of<'a>(
    tasks: &BTreeMap<String, Task>,
    roots: impl IntoIterator<Item = &'a String>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&String> = roots.into_iter().collect();
    while let Some(t) = stack.pop() {
        if seen.insert(t.clone())
            && let Some(task) = tasks.get(t)
        {
            stack.extend(task.includes.iter());
        }
    }
    seen
}

/// Everything template rendering reads from a model, and nothing else: the global variables;
/// each node's name, variables, tasks and SSH target; each task's includes and its files'
/// paths and templates. [`Model::validate_renders`] sees the model only through this view, so
/// two models with equal render inputs render the same files for every host and fail in the
/// same way. `store::Store::edit` relies on it: when only other fields changed while an edit
/// rendered (a report ending a token rotation, a node's URL, a task's depends, any
/// generation), the edit commits without rendering again.
#[derive(Debug, PartialEq, Eq)]
pub struct RenderInputs<'a> {
    vars: &'a BTreeMap<String, String>,
    /// In name order.
    nodes: Vec<HostInputs<'a>>,
    tasks: BTreeMap<&'a str, TaskInputs<'a>>,
}

#[derive(Debug, PartialEq, Eq)]
struct HostInputs<'a> {
    name: &'a str,
    vars: &'a BTreeMap<String, String>,
    tasks: &'a BTreeSet<String>,
    ssh: Option<&'a SshTarget>,
}

#[derive(Debug, PartialEq, Eq)]
struct TaskInputs<'a> {
    includes: &'a BTreeSet<String>,
    /// path -> template
    files: BTreeMap<&'a str, &'a str>,
}

impl RenderInputs<'_> {
    /// The tasks `roots` reach, as [`closure_of`] computes them.
    fn closure(&self, roots: &BTreeSet<String>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = roots.iter().collect();
        while let Some(t) = stack.pop() {
            if seen.insert(t.clone())
                && let Some(task) = self.tasks.get(t.as_str())
            {
                stack.extend(task.includes.iter());
            }
        }
        seen
    }

    /// See [`Model::validate_renders`].
    fn validate(&self, touched: &BTreeSet<Entity>) -> Result<(), ModelError> {
        let global = touched.contains(&Entity::Global);
        let mut batch = crate::sandbox::Batch::new(self.vars);
        let mut templates: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for node in &self.nodes {
            let closure = self.closure(node.tasks);
            let affected = global
                || touched.contains(&Entity::Node(node.name.to_string()))
                || closure
                    .iter()
                    .any(|t| touched.contains(&Entity::Task(t.clone())));
            if !affected {
                continue;
            }
            let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
            let mut host = None;
            for (name, task) in closure
                .iter()
                .filter_map(|t| self.tasks.get_key_value(t.as_str()))
                .map(|(name, task)| (*name, task))
            {
                for (&path, &template) in &task.files {
                    if let Some(other) = owner.insert(path, name) {
                        return Err(ModelError::PathConflict {
                            node: node.name.to_string(),
                            path: path.to_string(),
                            a: other.to_string(),
                            b: name.to_string(),
                        });
                    }
                    let t = *templates
                        .entry((name, path))
                        .or_insert_with(|| batch.template(path, template));
                    let h = *host.get_or_insert_with(|| {
                        batch.host(
                            node.name,
                            node.vars,
                            std::borrow::Cow::Owned(closure.clone()),
                            node.ssh,
                        )
                    });
                    batch.render(h, t);
                }
            }
            // A file cannot also be a directory of another file.
            for (path, task) in &owner {
                let below = format!("{path}/");
                if let Some((other, other_task)) = owner.range(below.as_str()..).next()
                    && other.starts_with(&below)
                {
                    return Err(ModelError::PathConflict {
                        node: node.name.to_string(),
                        path: format!("{path}' (a directory of '{other}')"),
                        a: task.to_string(),
                        b: other_task.to_string(),
                    });
                }
            }
        }
        batch.check()?;
        Ok(())
    }
}

/// The generation `umc-task-<t>`'s version derives from: the newest among the task and every
/// task it includes, recursively. For a task whose reach ships files, in a host's view, also the
/// host's node (its variables and closure feed the templates) and the global variables.
///
/// Packages depend on their tasks with `(>= version)`, so a targeted `apt-get install
/// umc-<host>` upgrades every changed task package (apt does not upgrade an installed
/// dependency that is still satisfied), and that upgrade is what applies a task's new
/// `Conflicts:`. Hence a task's version must move whenever anything it reaches changes.
pub fn task_generation(
    tasks: &BTreeMap<String, Task>,
    task: &Task,
    host: Option<(&Node, u64)>,
) -> u64 {
    let reach: Vec<&Task> = closure_of(tasks, [&task.name])
        .iter()
        .filter_map(|t| tasks.get(t))
        .collect();
    let own = reach
        .iter()
        .map(|t| t.generation)
        .fold(task.generation, u64::max);
    match host {
        Some((node, vars_generation)) if reach.iter().any(|t| !t.files.is_empty()) => {
            own.max(node.generation).max(vars_generation)
        }
        _ => own,
    }
}

/// The generation `umc-<host>`'s version derives from: the node and its task packages.
pub fn node_generation(tasks: &BTreeMap<String, Task>, node: &Node, vars_generation: u64) -> u64 {
    node.tasks
        .iter()
        .filter_map(|t| tasks.get(t))
        .map(|t| task_generation(tasks, t, Some((node, vars_generation))))
        .fold(node.generation, u64::max)
}

/// Random material for a node token; passed in so the model stays pure.
pub trait TokenSource {
    fn token(&mut self) -> String;
}

impl Model {
    /// The tasks reachable from `roots` through `includes`, sorted by name (the roots included).
    pub fn closure<'a>(&self, roots: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
        closure_of(&self.tasks, roots)
    }

    /// The generation `umc-<host>`'s version derives from; see [`node_generation`].
    pub fn node_generation(&self, node: &Node) -> u64 {
        node_generation(&self.tasks, node, self.vars_generation)
    }

    /// The host-independent part of a task package's version; see [`task_generation`].
    pub fn task_generation(&self, task: &Task) -> u64 {
        task_generation(&self.tasks, task, None)
    }

    fn task_mut(&mut self, name: &str) -> Result<&mut Task, ModelError> {
        self.tasks
            .get_mut(name)
            .ok_or_else(|| ModelError::UnknownTask(name.to_string()))
    }

    fn node_mut(&mut self, name: &str) -> Result<&mut Node, ModelError> {
        self.nodes
            .get_mut(name)
            .ok_or_else(|| ModelError::UnknownNode(name.to_string()))
    }

    /// Applies one operation as user `user`, returning its change lines. On error the model may
    /// be partly changed: callers apply edits to a copy and discard it on error.
    pub fn apply(
        &mut self,
        op: &Op,
        user: &str,
        tokens: &mut dyn TokenSource,
    ) -> Result<Vec<Change>, ModelError> {
        let who = format!("User '{user}'");
        let mut out = Vec::new();
        let mut line = |text: String, entities: Vec<Entity>| out.push(Change { text, entities });
        match op {
            Op::NodeAdd { host, vars, ssh } => {
                let host = normalize_host(host)?;
                if self.nodes.contains_key(&host) {
                    return Err(ModelError::NodeExists(host));
                }
                for (k, v) in vars {
                    validate_var(k, v)?;
                }
                let ssh = ssh.as_deref().map(SshTarget::parse).transpose()?;
                self.nodes.insert(
                    host.clone(),
                    Node {
                        name: host.clone(),
                        vars: vars.clone(),
                        tasks: BTreeSet::new(),
                        ssh,
                        token: tokens.token(),
                        previous_token: None,
                        url: None,
                        conffiles: None,
                        generation: 0,
                    },
                );
                line(
                    format!("{who} added node '{host}'"),
                    vec![Entity::Node(host)],
                );
            }
            Op::NodeRemove { host } => {
                let host = normalize_host(host)?;
                if self.nodes.remove(&host).is_none() {
                    return Err(ModelError::UnknownNode(host));
                }
                line(
                    format!("{who} removed node '{host}'"),
                    vec![Entity::Node(host)],
                );
            }
            Op::NodeSet {
                host,
                set_vars,
                unset_vars,
                ssh,
                url,
                conffiles,
            } => {
                let host = normalize_host(host)?;
                // An empty URL or ssh target unsets it (what `apply` needs to make a node equal
                // a fleet file that has none).
                let url = match url.as_deref() {
                    None => None,
                    Some("") => Some(None),
                    Some(u) => Some(Some(validate_url(u)?)),
                };
                let conffiles = match conffiles.as_deref() {
                    None => None,
                    Some("default") => Some(None),
                    Some(p) => Some(Some(
                        ConffilePolicy::parse(p)
                            .ok_or_else(|| ModelError::InvalidPolicy(p.to_string()))?,
                    )),
                };
                let node = self.node_mut(&host)?;
                let e = || vec![Entity::Node(host.clone())];
                for (k, v) in set_vars {
                    validate_var(k, v)?;
                    if node.vars.get(k) != Some(v) {
                        node.vars.insert(k.clone(), v.clone());
                        line(format!("{who} set variable '{k}' of node '{host}'"), e());
                    }
                }
                for k in unset_vars {
                    validate_var_name(k)?;
                    if node.vars.remove(k).is_some() {
                        line(format!("{who} unset variable '{k}' of node '{host}'"), e());
                    }
                }
                if ssh.as_deref() == Some("") {
                    if node.ssh.take().is_some() {
                        line(
                            format!("{who} removed the ssh target of node '{host}'"),
                            e(),
                        );
                    }
                } else if let Some(s) = ssh {
                    let target = SshTarget::parse(s)?;
                    if node.ssh.as_ref() != Some(&target) {
                        line(
                            format!("{who} set the ssh target of node '{host}' to '{target}'"),
                            e(),
                        );
                        node.ssh = Some(target);
                    }
                }
                if let Some(url) = url
                    && node.url != url
                {
                    match &url {
                        Some(u) => line(
                            format!("{who} set the umc URL of node '{host}' to '{u}'"),
                            e(),
                        ),
                        None => line(format!("{who} removed the umc URL of node '{host}'"), e()),
                    }
                    node.url = url;
                }
                if let Some(policy) = conffiles
                    && node.conffiles != policy
                {
                    let shown = policy.map_or("umcd's default", ConffilePolicy::as_str);
                    line(
                        format!("{who} set the conffile policy of node '{host}' to {shown}"),
                        e(),
                    );
                    node.conffiles = policy;
                }
            }
            Op::NodeTokenRotate { host, force } => {
                let host = normalize_host(host)?;
                let node = self.node_mut(&host)?;
                // One previous token at a time: during a rotation the node may hold either
                // token, so a second rotation could not know which one to keep.
                if node.previous_token.is_some() && !force {
                    return Err(ModelError::RotationPending(host));
                }
                let old = std::mem::replace(&mut node.token, tokens.token());
                node.previous_token = (!force).then_some(PreviousToken {
                    token: old,
                    until: 0,
                });
                let how = if *force {
                    "; the old token no longer works"
                } else {
                    ""
                };
                line(
                    format!("{who} rotated the token of node '{host}'{how}"),
                    vec![Entity::Node(host)],
                );
            }
            Op::TaskAdd { task, description } => {
                validate_task_name(task)?;
                if self.tasks.contains_key(task) {
                    return Err(ModelError::TaskExists(task.clone()));
                }
                let description = description.clone().unwrap_or_default();
                validate_description(task, &description)?;
                self.tasks.insert(
                    task.clone(),
                    Task {
                        name: task.clone(),
                        description,
                        depends: Vec::new(),
                        removes: BTreeSet::new(),
                        includes: BTreeSet::new(),
                        files: BTreeMap::new(),
                        dropped: BTreeSet::new(),
                        generation: 0,
                    },
                );
                line(
                    format!("{who} added task '{task}'"),
                    vec![Entity::Task(task.clone())],
                );
            }
            Op::TaskSet { task, description } => {
                validate_description(task, description)?;
                let t = self.task_mut(task)?;
                if &t.description != description {
                    t.description = description.clone();
                    line(
                        format!("{who} changed the description of task '{task}'"),
                        vec![Entity::Task(task.clone())],
                    );
                }
            }
            Op::TaskRemove { task } => {
                if self.tasks.remove(task).is_none() {
                    return Err(ModelError::UnknownTask(task.clone()));
                }
                line(
                    format!("{who} removed task '{task}'"),
                    vec![Entity::Task(task.clone())],
                );
                // Cascade: a removed task disappears from every include and assignment, and
                // each of those packages changes, so each gets its own line.
                for other in self.tasks.values_mut() {
                    if other.includes.remove(task) {
                        line(
                            format!("{who} removed task '{task}' from task '{}'", other.name),
                            vec![Entity::Task(other.name.clone())],
                        );
                    }
                }
                for node in self.nodes.values_mut() {
                    if node.tasks.remove(task) {
                        line(
                            format!("{who} unassigned task '{task}' from node '{}'", node.name),
                            vec![Entity::Node(node.name.clone())],
                        );
                    }
                }
            }
            Op::TaskDepend { task, relations } => {
                let t = self.task_mut(task)?;
                for r in relations {
                    let rel = parse_relation(r)?;
                    for p in &rel.packages {
                        check_not_umc(task, p)?;
                    }
                    if !t.depends.contains(&rel.text) {
                        t.depends.push(rel.text.clone());
                        line(
                            format!("{who} added dependency '{}'", rel.text),
                            vec![Entity::Task(task.clone())],
                        );
                    }
                }
                if t.depends.len() > MAX_RELATIONS {
                    return Err(ModelError::TooManyRelations { task: task.clone() });
                }
            }
            Op::TaskUndepend { task, packages } => {
                let t = self.task_mut(task)?;
                for p in packages {
                    let before = t.depends.len();
                    let mut removed = Vec::new();
                    t.depends.retain(|d| {
                        let hit = d == p || relation_packages(d).iter().any(|n| n == p);
                        if hit {
                            removed.push(d.clone());
                        }
                        !hit
                    });
                    if t.depends.len() == before {
                        return Err(ModelError::NoSuchDependency {
                            task: task.clone(),
                            package: p.clone(),
                        });
                    }
                    for d in removed {
                        line(
                            format!("{who} removed dependency '{d}'"),
                            vec![Entity::Task(task.clone())],
                        );
                    }
                }
            }
            Op::TaskRemovePackage { task, packages } => {
                let t = self.task_mut(task)?;
                for p in packages {
                    validate_package_name(p)?;
                    check_not_umc(task, p)?;
                    if t.removes.insert(p.clone()) {
                        line(
                            format!("{who} marked package '{p}' for removal"),
                            vec![Entity::Task(task.clone())],
                        );
                    }
                }
            }
            Op::TaskUnremovePackage { task, packages } => {
                let t = self.task_mut(task)?;
                for p in packages {
                    if t.removes.remove(p) {
                        line(
                            format!("{who} no longer removes package '{p}'"),
                            vec![Entity::Task(task.clone())],
                        );
                    }
                }
            }
            Op::TaskInclude { task, subtasks } => {
                for s in subtasks {
                    if !self.tasks.contains_key(s) {
                        return Err(ModelError::UnknownTask(s.clone()));
                    }
                    if s == task {
                        return Err(ModelError::SelfInclude { task: task.clone() });
                    }
                    if let Some(path) = self.include_path(s, task) {
                        return Err(ModelError::Cycle {
                            task: task.clone(),
                            sub: s.clone(),
                            path: format!("{task} -> {}", path.join(" -> ")),
                        });
                    }
                    let t = self.task_mut(task)?;
                    if t.includes.insert(s.clone()) {
                        line(
                            format!("{who} included task '{s}' in task '{task}'"),
                            vec![Entity::Task(task.clone())],
                        );
                    }
                }
            }
            Op::TaskExclude { task, subtasks } => {
                let t = self.task_mut(task)?;
                for s in subtasks {
                    if t.includes.remove(s) {
                        line(
                            format!("{who} excluded task '{s}' from task '{task}'"),
                            vec![Entity::Task(task.clone())],
                        );
                    }
                }
            }
            Op::TaskFileAdd {
                task,
                path,
                template,
                mode,
                reload,
                restart,
            } => {
                validate_file_path(task, path)?;
                let mode = mode.unwrap_or(0o644);
                if mode > 0o7777 {
                    return Err(ModelError::InvalidMode {
                        task: task.clone(),
                        path: path.clone(),
                        mode,
                    });
                }
                let action = match (reload, restart) {
                    (Some(_), Some(_)) => {
                        return Err(ModelError::InvalidService(
                            "give either reload or restart, not both".into(),
                        ));
                    }
                    (Some(s), None) => Some(FileAction::Reload(s.clone())),
                    (None, Some(s)) => Some(FileAction::Restart(s.clone())),
                    (None, None) => None,
                };
                if let Some(FileAction::Reload(s) | FileAction::Restart(s)) = &action {
                    validate_service(s)?;
                }
                // Syntax errors are caught here, with line and column.
                crate::template::Template::parse(path, template)?;
                let t = self.task_mut(task)?;
                t.dropped.remove(path);
                let file = TaskFile {
                    path: path.clone(),
                    template: template.clone(),
                    mode,
                    action,
                };
                let verb = match t.files.get(path) {
                    Some(old) if *old == file => None,
                    Some(_) => Some("changed"),
                    None => Some("added"),
                };
                if let Some(verb) = verb {
                    t.files.insert(path.clone(), file);
                    let prep = if verb == "added" { "to" } else { "of" };
                    line(
                        format!("{who} {verb} file '{path}' {prep} task '{task}'"),
                        vec![Entity::Task(task.clone())],
                    );
                }
            }
            Op::TaskFileRemove { task, path } => {
                let t = self.task_mut(task)?;
                match t.files.remove(path) {
                    Some(f) if f.is_conffile() => {
                        t.dropped.insert(path.clone());
                    }
                    Some(_) => {}
                    None => {
                        return Err(ModelError::NoSuchFile {
                            task: task.clone(),
                            path: path.clone(),
                        });
                    }
                }
                line(
                    format!("{who} removed file '{path}' from task '{task}'"),
                    vec![Entity::Task(task.clone())],
                );
            }
            Op::VarSet { vars } => {
                for (k, v) in vars {
                    validate_var(k, v)?;
                    if self.vars.get(k) != Some(v) {
                        self.vars.insert(k.clone(), v.clone());
                        line(
                            format!("{who} set global variable '{k}'"),
                            vec![Entity::Global],
                        );
                    }
                }
            }
            Op::VarUnset { names } => {
                for k in names {
                    if self.vars.remove(k).is_none() {
                        return Err(ModelError::UnknownVar(k.clone()));
                    }
                    line(
                        format!("{who} unset global variable '{k}'"),
                        vec![Entity::Global],
                    );
                }
            }
            Op::Assign { host, tasks } => {
                let host = normalize_host(host)?;
                for t in tasks {
                    if !self.tasks.contains_key(t) {
                        return Err(ModelError::UnknownTask(t.clone()));
                    }
                }
                let node = self.node_mut(&host)?;
                for t in tasks {
                    if node.tasks.insert(t.clone()) {
                        line(
                            format!("{who} assigned task '{t}' to node '{host}'"),
                            vec![Entity::Node(host.clone())],
                        );
                    }
                }
            }
            Op::Unassign { host, tasks } => {
                let host = normalize_host(host)?;
                let node = self.node_mut(&host)?;
                for t in tasks {
                    if node.tasks.remove(t) {
                        line(
                            format!("{who} unassigned task '{t}' from node '{host}'"),
                            vec![Entity::Node(host.clone())],
                        );
                    }
                }
            }
        }
        Ok(out)
    }

    /// A path of includes from `from` to `to`, if one exists.
    fn include_path(&self, from: &str, to: &str) -> Option<Vec<String>> {
        let mut stack = vec![vec![from.to_string()]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = path.last()?.clone();
            if last == to {
                return Some(path);
            }
            if !seen.insert(last.clone()) {
                continue;
            }
            if let Some(t) = self.tasks.get(&last) {
                for s in &t.includes {
                    let mut next = path.clone();
                    next.push(s.clone());
                    stack.push(next);
                }
            }
        }
        None
    }

    /// Checks invariants that span entities. Called on the whole model after every edit.
    pub fn validate(&self) -> Result<(), ModelError> {
        // Every file path and service again, not only when added: a database written before a
        // rule tightened (paths became shell-safe in the templates issue) must be cleaned up
        // before the next edit commits, since maintainer scripts name these paths.
        for t in self.tasks.values() {
            for f in t.files.values() {
                validate_file_path(&t.name, &f.path)?;
                if let Some(FileAction::Reload(svc) | FileAction::Restart(svc)) = &f.action {
                    validate_service(svc)?;
                }
            }
        }
        // Package names of hosts must be unique (long names are hashed, and tasks use a prefix
        // no host package can produce: `umc-task-x` would need host `task-x`, so check that too).
        let mut packages: BTreeMap<String, String> = BTreeMap::new();
        for node in self.nodes.values() {
            let p = host_package(&node.name);
            if let Some(other) = packages.insert(p.clone(), node.name.clone()) {
                return Err(ModelError::PackageCollision {
                    node: node.name.clone(),
                    package: p,
                    other,
                });
            }
        }
        for task in self.tasks.keys() {
            let p = task_package(task);
            if let Some(node) = packages.get(&p) {
                return Err(ModelError::PackageCollision {
                    node: node.clone(),
                    package: p,
                    other: format!("task '{task}'"),
                });
            }
        }
        // Each task's relations as package lists, parsed once (not once per node reaching it).
        let parsed: BTreeMap<&str, Vec<(String, Vec<String>)>> = self
            .tasks
            .values()
            .map(|t| {
                let rels = t
                    .depends
                    .iter()
                    .map(|d| (d.clone(), relation_packages(d)))
                    .collect();
                (t.name.as_str(), rels)
            })
            .collect();
        let mut closures: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for task in self.tasks.values() {
            for s in &task.includes {
                if !self.tasks.contains_key(s) {
                    return Err(ModelError::UnknownTask(s.clone()));
                }
            }
            let closure = self.closure([&task.name]);
            self.check_conflicts(&format!("task '{}'", task.name), &closure, &parsed)?;
            closures.insert(&task.name, closure);
        }
        // Nodes with the same assignments share one check.
        let mut checked: BTreeSet<&BTreeSet<String>> = BTreeSet::new();
        for node in self.nodes.values() {
            if node.tasks.len() <= 1 || !checked.insert(&node.tasks) {
                continue; // a single task's closure was checked above
            }
            let mut closure = BTreeSet::new();
            for t in &node.tasks {
                if let Some(c) = closures.get(t.as_str()) {
                    closure.extend(c.iter().cloned());
                }
            }
            self.check_conflicts(&format!("node '{}'", node.name), &closure, &parsed)?;
        }
        Ok(())
    }

    /// The template context of `node`.
    pub fn host_context<'a>(
        &'a self,
        node: &'a Node,
        closure: &'a BTreeSet<String>,
    ) -> crate::template::HostContext<'a> {
        crate::template::HostContext {
            fqdn: &node.name,
            global_vars: &self.vars,
            node_vars: &node.vars,
            tasks: closure,
            ssh: node.ssh.as_ref(),
        }
    }

    /// Checks what an edit touching `touched` could break in rendering: for every node whose
    /// files may render differently, no path is shipped twice and every template renders.
    /// The stored model therefore always renders.
    ///
    /// The renders run in one `sandbox` batch: in umcd a child process with a deadline and a
    /// memory limit per file, so that a template can neither stall nor abort umcd. This is the
    /// one place where `model` leaves the process. It reads the model only through
    /// [`Model::render_inputs`].
    pub fn validate_renders(&self, touched: &BTreeSet<Entity>) -> Result<(), ModelError> {
        self.render_inputs().validate(touched)
    }

    /// What [`Model::validate_renders`] reads, and nothing else (see [`RenderInputs`]).
    pub fn render_inputs(&self) -> RenderInputs<'_> {
        RenderInputs {
            vars: &self.vars,
            nodes: self
                .nodes
                .values()
                .map(|n| HostInputs {
                    name: &n.name,
                    vars: &n.vars,
                    tasks: &n.tasks,
                    ssh: n.ssh.as_ref(),
                })
                .collect(),
            tasks: self
                .tasks
                .values()
                .map(|t| {
                    let files = t
                        .files
                        .values()
                        .map(|f| (f.path.as_str(), f.template.as_str()))
                        .collect();
                    let inputs = TaskInputs {
                        includes: &t.includes,
                        files,
                    };
                    (t.name.as_str(), inputs)
                })
                .collect(),
        }
    }

    fn check_conflicts(
        &self,
        scope: &str,
        closure: &BTreeSet<String>,
        relations: &BTreeMap<&str, Vec<(String, Vec<String>)>>,
    ) -> Result<(), ModelError> {
        let mut removed: BTreeMap<&str, &str> = BTreeMap::new();
        for t in closure.iter().filter_map(|t| self.tasks.get(t)) {
            for r in &t.removes {
                removed.entry(r).or_insert(&t.name);
            }
        }
        if removed.is_empty() {
            return Ok(());
        }
        for t in closure {
            for (text, pkgs) in relations.get(t.as_str()).into_iter().flatten() {
                // A relation is unsatisfiable when every alternative is removed.
                let Some(remover) = pkgs
                    .iter()
                    .map(|p| removed.get(p.as_str()))
                    .collect::<Option<Vec<_>>>()
                    .and_then(|r| r.first().copied())
                else {
                    continue;
                };
                return Err(match pkgs.as_slice() {
                    [p] => ModelError::DependsAndRemoves {
                        scope: scope.to_string(),
                        package: p.clone(),
                        depends: t.clone(),
                        removes: remover.to_string(),
                    },
                    _ => ModelError::AlternativesRemoved {
                        scope: scope.to_string(),
                        relation: text.clone(),
                        removes: remover.to_string(),
                    },
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Seq(u32);
    impl TokenSource for Seq {
        fn token(&mut self) -> String {
            self.0 += 1;
            format!("t{}", self.0)
        }
    }

    fn edit(m: &mut Model, op: Op) -> Result<Vec<Change>, ModelError> {
        let mut copy = m.clone();
        let out = copy.apply(&op, "sh", &mut Seq(0))?;
        copy.validate()?;
        *m = copy;
        Ok(out)
    }

    /// What `store::Store::edit` relies on to skip a second render: fields templates do not
    /// read leave the render inputs equal, and each field they read changes them.
    #[test]
    fn render_inputs_are_what_templates_read() {
        let mut base = Model::default();
        let ops = [
            r#"{"op": "node_add", "host": "a.example.com", "vars": {"zone": "eu"}}"#,
            r#"{"op": "task_add", "task": "web"}"#,
            r#"{"op": "task_add", "task": "base"}"#,
            r#"{"op": "task_include", "task": "web", "subtasks": ["base"]}"#,
            r#"{"op": "task_file_add", "task": "web", "path": "/etc/motd", "template": "{{ host.fqdn }}"}"#,
            r#"{"op": "assign", "host": "a.example.com", "tasks": ["web"]}"#,
        ];
        for op in ops {
            let op: Op = serde_json::from_str(op).expect(op);
            edit(&mut base, op).expect("setup");
        }
        let same = |change: &dyn Fn(&mut Model)| {
            let mut m = base.clone();
            change(&mut m);
            assert_ne!(m, base, "the change changed nothing");
            m.render_inputs() == base.render_inputs()
        };
        fn a(m: &mut Model) -> &mut Node {
            m.nodes.get_mut("a.example.com").expect("node")
        }
        fn web(m: &mut Model) -> &mut Task {
            m.tasks.get_mut("web").expect("task")
        }
        fn motd(m: &mut Model) -> &mut TaskFile {
            web(m).files.get_mut("/etc/motd").expect("file")
        }
        let unread: [&dyn Fn(&mut Model); 12] = [
            &|m| a(m).token = "other".into(),
            &|m| {
                a(m).previous_token = Some(PreviousToken {
                    token: "old".into(),
                    until: 3,
                })
            },
            &|m| a(m).url = Some("http://umc.example.com".into()),
            &|m| a(m).conffiles = Some(ConffilePolicy::ServerWins),
            &|m| a(m).generation = 7,
            &|m| web(m).description = "other".into(),
            &|m| web(m).depends.push("nginx".into()),
            &|m| _ = web(m).removes.insert("apache2".into()),
            &|m| _ = web(m).dropped.insert("/etc/old".into()),
            &|m| web(m).generation = 7,
            &|m| motd(m).mode = 0o600,
            &|m| m.vars_generation = 7,
        ];
        for (i, change) in unread.iter().enumerate() {
            assert!(same(change), "unread field {i} counted as a render input");
        }
        let read: [&dyn Fn(&mut Model); 9] = [
            &|m| _ = m.vars.insert("dns".into(), "1.1.1.1".into()),
            &|m| _ = a(m).vars.insert("zone".into(), "us".into()),
            &|m| _ = a(m).tasks.insert("base".into()),
            &|m| {
                a(m).ssh = Some(SshTarget {
                    user: "root".into(),
                    address: "192.0.2.1".into(),
                    port: 22,
                })
            },
            &|m| {
                let mut b = a(m).clone();
                b.name = "b.example.com".into();
                m.nodes.insert(b.name.clone(), b);
            },
            &|m| _ = web(m).includes.remove("base"),
            &|m| motd(m).template = "{{ host.name }}".into(),
            &|m| {
                let mut f = motd(m).clone();
                f.path = "/etc/issue".into();
                web(m).files.insert(f.path.clone(), f);
            },
            &|m| {
                let mut t = web(m).clone();
                t.name = "api".into();
                m.tasks.insert(t.name.clone(), t);
            },
        ];
        for (i, change) in read.iter().enumerate() {
            assert!(!same(change), "render input {i} not counted");
        }
    }

    #[test]
    fn token_rotation_keeps_one_previous_token_until_forced() {
        let mut m = Model::default();
        let mut seq = Seq(0);
        let rotate = |force| Op::NodeTokenRotate {
            host: "A.example.com".into(),
            force,
        };
        m.apply(
            &Op::NodeAdd {
                host: "a.example.com".into(),
                vars: BTreeMap::new(),
                ssh: None,
            },
            "sh",
            &mut seq,
        )
        .unwrap();
        let changes = m.apply(&rotate(false), "sh", &mut seq).unwrap();
        assert_eq!(
            changes[0].text,
            "User 'sh' rotated the token of node 'a.example.com'"
        );
        assert_eq!(changes[0].entities, [Entity::Node("a.example.com".into())]);
        let n = &m.nodes["a.example.com"];
        assert_eq!(n.token, "t2");
        assert_eq!(
            n.previous_token,
            Some(PreviousToken {
                token: "t1".into(),
                until: 0
            })
        );
        // A second rotation while the node may hold either token is refused, and changes nothing.
        let before = m.clone();
        let e = m.apply(&rotate(false), "sh", &mut seq).unwrap_err();
        assert_eq!(e, ModelError::RotationPending("a.example.com".into()));
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(m, before);
        // --force: a new token, and no previous one works.
        let changes = m.apply(&rotate(true), "sh", &mut seq).unwrap();
        assert!(changes[0].text.ends_with("the old token no longer works"));
        let n = &m.nodes["a.example.com"];
        assert_eq!((n.token.as_str(), &n.previous_token), ("t3", &None));
        assert!(matches!(
            m.apply(
                &Op::NodeTokenRotate {
                    host: "b.example.com".into(),
                    force: false
                },
                "sh",
                &mut seq
            ),
            Err(ModelError::UnknownNode(_))
        ));
    }

    #[test]
    fn host_names() {
        assert_eq!(
            normalize_host("Grumpy.Company.COM.").as_deref(),
            Ok("grumpy.company.com")
        );
        for bad in ["", "a..b", "-a", "a-", "a_b", "a b", &"x".repeat(64)] {
            assert!(normalize_host(bad).is_err(), "{bad}");
        }
        let long = format!("{}.example.com", vec!["a".repeat(63); 3].join("."));
        let p = host_package(&long);
        assert!(p.len() <= MAX_PACKAGE_NAME);
        validate_package_name(&p).unwrap();
    }

    #[test]
    fn relations() {
        assert_eq!(parse_relation("nginx-light").unwrap().text, "nginx-light");
        assert_eq!(
            parse_relation("php8.2-fpm (>= 8.2)").unwrap().text,
            "php8.2-fpm (>= 8.2)"
        );
        let r = parse_relation("mawk | gawk").unwrap();
        assert_eq!(r.text, "mawk | gawk");
        assert_eq!(r.packages, ["mawk", "gawk"]);
        for bad in [
            "",
            "Nginx",
            "a, b",
            "a (>> )",
            "a [amd64]",
            "${misc:Depends}",
            "a (= 1",
        ] {
            assert!(parse_relation(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cycles_and_conflicts() {
        let mut m = Model::default();
        for t in ["a", "b", "c"] {
            edit(
                &mut m,
                Op::TaskAdd {
                    task: t.into(),
                    description: None,
                },
            )
            .unwrap();
        }
        edit(
            &mut m,
            Op::TaskInclude {
                task: "a".into(),
                subtasks: vec!["b".into()],
            },
        )
        .unwrap();
        edit(
            &mut m,
            Op::TaskInclude {
                task: "b".into(),
                subtasks: vec!["c".into()],
            },
        )
        .unwrap();
        let e = edit(
            &mut m,
            Op::TaskInclude {
                task: "c".into(),
                subtasks: vec!["a".into()],
            },
        );
        assert!(matches!(e, Err(ModelError::Cycle { .. })), "{e:?}");
        assert_eq!(
            e.unwrap_err().to_string(),
            "including 'a' in 'c' would create a cycle: c -> a -> b -> c"
        );
        edit(
            &mut m,
            Op::TaskDepend {
                task: "c".into(),
                relations: vec!["apache2".into()],
            },
        )
        .unwrap();
        let e = edit(
            &mut m,
            Op::TaskRemovePackage {
                task: "a".into(),
                packages: vec!["apache2".into()],
            },
        );
        assert!(
            matches!(e, Err(ModelError::DependsAndRemoves { .. })),
            "{e:?}"
        );
    }

    /// The review's "what held up → injection" list (37 cases), kept true: every name or
    /// value that reaches a control file, a maintainer script, apt's sources or an ssh
    /// connection refuses shell, control and path metacharacters, through the edit path
    /// (`apply` + `validate`), so the check is wired where the input arrives.
    #[test]
    fn metacharacters_are_refused_wherever_they_would_reach_a_file_or_a_shell() {
        let mut m = Model::default();
        for op in [
            Op::NodeAdd {
                host: "a.example.com".into(),
                vars: BTreeMap::new(),
                ssh: None,
            },
            Op::TaskAdd {
                task: "web".into(),
                description: None,
            },
        ] {
            edit(&mut m, op).unwrap();
        }
        let host = |h: &str| Op::NodeAdd {
            host: h.into(),
            vars: BTreeMap::new(),
            ssh: None,
        };
        let var = |name: &str| Op::VarSet {
            vars: [(name.to_string(), "v".to_string())].into(),
        };
        let node_set = |url: Option<&str>, ssh: Option<&str>| Op::NodeSet {
            host: "a.example.com".into(),
            set_vars: BTreeMap::new(),
            unset_vars: Vec::new(),
            ssh: ssh.map(Into::into),
            url: url.map(Into::into),
            conffiles: None,
        };
        let depend = |r: &str| Op::TaskDepend {
            task: "web".into(),
            relations: vec![r.into()],
        };
        let file = |path: &str, mode: Option<u32>, reload: Option<&str>| Op::TaskFileAdd {
            task: "web".into(),
            path: path.into(),
            template: "x".into(),
            mode,
            reload: reload.map(Into::into),
            restart: None,
        };
        let describe = |d: &str| Op::TaskSet {
            task: "web".into(),
            description: d.into(),
        };
        let task = |t: &str| Op::TaskAdd {
            task: t.into(),
            description: None,
        };
        let cases: Vec<(Op, &str)> = vec![
            (host("a;id.example.com"), "invalid host name"),
            (host("$(id).example.com"), "invalid host name"),
            (host("a b.example.com"), "invalid host name"),
            (host("a\n.example.com"), "invalid host name"),
            (host("../b.example.com"), "invalid host name"),
            (var("a;b"), "invalid variable name"),
            (var("a$b"), "invalid variable name"),
            (var("a\nb"), "invalid variable name"),
            (
                node_set(Some("http://umc.example.com/'"), None),
                "invalid URL",
            ),
            (
                node_set(Some("http://umc.example.com/ a"), None),
                "invalid URL",
            ),
            (
                node_set(Some("http://umc.example.com/\n"), None),
                "invalid URL",
            ),
            (
                node_set(None, Some("root@10.0.0.1;id")),
                "invalid ssh target",
            ),
            (
                node_set(None, Some("-oProxyCommand=id@10.0.0.1")),
                "invalid ssh target",
            ),
            (depend("nginx\nPackage: evil"), "invalid relation"),
            (depend("nginx\u{b}evil"), "invalid relation"),
            (depend("nginx\u{85}evil"), "invalid relation"),
            (depend("nginx\tevil"), "invalid relation"),
            (depend("nginx;$(id)"), "invalid relation"),
            (file("/etc/a;b", None, None), "invalid file path"),
            (file("/etc/$HOME", None, None), "invalid file path"),
            (file("/etc/a'b", None, None), "invalid file path"),
            (file("/etc/../shadow", None, None), "invalid file path"),
            (file("/etc/./x", None, None), "invalid file path"),
            (file("/DEBIAN/postinst", None, None), "invalid file path"),
            (file("/etc/umc/node.conf", None, None), "invalid file path"),
            (file("/usr/sbin/umc-cycle", None, None), "invalid file path"),
            (file("/etc/caf\u{e9}.conf", None, None), "invalid file path"),
            (
                file("/etc/x", None, Some("nginx;id")),
                "invalid service name",
            ),
            (file("/etc/x", None, Some("-nginx")), "invalid service name"),
            (file("/etc/x", Some(0o10000), None), "not a file mode"),
            (task("Web"), "invalid task name"),
            (task("web;id"), "invalid task name"),
            (task("-web"), "invalid task name"),
            (describe("a\tb"), "control characters"),
            (describe("a\u{85}b"), "control characters"),
        ];
        let before = m.clone();
        for (op, want) in &cases {
            let e = edit(&mut m, op.clone())
                .map(|_| ())
                .expect_err(&format!("{op:?} was accepted"));
            assert!(e.to_string().contains(want), "{op:?}: want {want:?}: {e}");
            assert_eq!(m, before, "{op:?} changed the model");
        }
        // What stays allowed: a mode of exactly 07777, a newline in a description (only its
        // first line is the synopsis) and U+2028, which is not a line break for apt.
        edit(&mut m, file("/etc/x", Some(0o7777), None)).unwrap();
        edit(&mut m, describe("first\nsecond")).unwrap();
        edit(&mut m, describe("a\u{2028}b")).unwrap();
    }
}
