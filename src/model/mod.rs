//! The fleet model: nodes, tasks, variables, and the edits that change them.
//!
//! Everything here is pure: no IO, no clock, no randomness (node tokens are handed in).
//! - `names`: what a host, task, package, variable, service, URL or file path may be;
//! - `relation`: one `Depends:` entry, parsed;
//! - `edit`: [`Model::apply`], one edit, by op family (nodes, tasks, files, variables);
//! - `invariants`: [`Model::validate`], the rules that span entities (include cycles,
//!   depends-vs-removes conflicts, package-name collisions), and [`Model::validate_renders`];
//! - `version`: the generation each package's version derives from.

mod edit;
mod invariants;
mod names;
mod relation;
mod version;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::api::SshTarget;

pub use invariants::RenderInputs;
pub use names::{
    DIVERTED_SUFFIX, MAX_DESCRIPTION, MAX_PACKAGE_NAME, MAX_PATH, MAX_RELATIONS, MAX_TASK_NAME,
    MAX_VAR_NAME, MAX_VAR_VALUE, NODE_PATHS, host_package, normalize_host, task_package,
    valid_token, validate_file_path, validate_package_name, validate_service, validate_task_name,
    validate_url, validate_var_name,
};
pub use relation::{Relation, parse_relation};
pub use version::{FORMAT, node_generation, task_generation, version};

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

impl Node {
    /// A node with no variables, tasks or settings, authenticating with `token`.
    pub fn new(name: &str, token: String) -> Node {
        Node {
            name: name.to_string(),
            vars: BTreeMap::new(),
            tasks: BTreeSet::new(),
            ssh: None,
            token,
            previous_token: None,
            url: None,
            conffiles: None,
            generation: 0,
        }
    }
}

impl Task {
    /// A task with no description, relations, includes or files.
    pub fn new(name: &str) -> Task {
        Task {
            name: name.to_string(),
            description: String::new(),
            depends: Vec::new(),
            removes: BTreeSet::new(),
            includes: BTreeSet::new(),
            files: BTreeMap::new(),
            dropped: BTreeSet::new(),
            generation: 0,
        }
    }
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
///
/// [`Model::apply`] writes what changed (`added node 'a.example.com'`); the store's edit
/// pipeline says who, with [`Change::by`], before the line reaches history and changelogs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub text: String,
    pub entities: Vec<Entity>,
}

impl Change {
    /// The line as `user` made it: `User '<user>' <what changed>`.
    pub fn by(self, user: &str) -> Change {
        Change {
            text: format!("User '{user}' {}", self.text),
            ..self
        }
    }
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

/// The input an error is about: the console shows the error next to the form field that holds
/// it. Errors about how entities combine (a conflict, a collision, a pending rotation) have no
/// one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Host,
    Task,
    Description,
    /// A package of a task's `removes`.
    Package,
    /// A `Depends:` entry of a task.
    Relation,
    /// A task's includes.
    Include,
    Var,
    Ssh,
    Url,
    /// A node's conffile policy.
    Policy,
    /// A task file's path.
    Path,
    Mode,
    /// A task file's reload or restart service.
    Service,
    Template,
}

impl ModelError {
    /// The input this error is about, if it is about one.
    pub fn field(&self) -> Option<Field> {
        use ModelError::*;
        Some(match self {
            InvalidHost { .. } | NodeExists(_) | UnknownNode(_) => Field::Host,
            InvalidTask { .. } | TaskExists(_) | UnknownTask(_) => Field::Task,
            DescriptionTooLong(_) | DescriptionControl(_) => Field::Description,
            InvalidPackage(_) | ReservedPackage { .. } => Field::Package,
            InvalidRelation { .. } | NoSuchDependency { .. } | TooManyRelations { .. } => {
                Field::Relation
            }
            Cycle { .. } | SelfInclude { .. } => Field::Include,
            InvalidVar(_) | VarTooLong(_) | UnknownVar(_) => Field::Var,
            InvalidSsh(_) => Field::Ssh,
            InvalidUrl { .. } => Field::Url,
            InvalidPolicy(_) => Field::Policy,
            InvalidPath { .. } | PathConflict { .. } | NoSuchFile { .. } => Field::Path,
            InvalidMode { .. } => Field::Mode,
            InvalidService(_) => Field::Service,
            // The worker failing is umcd's fault, not the template's.
            Template(crate::template::TemplateError::Worker(_)) => return None,
            Template(_) => Field::Template,
            AlternativesRemoved { .. }
            | PackageCollision { .. }
            | DependsAndRemoves { .. }
            | EmptyEdit
            | RotationPending(_) => return None,
        })
    }
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

/// Random material for a node token; passed in so the model stays pure.
pub trait TokenSource {
    fn token(&mut self) -> String;
}

impl Model {
    /// The tasks reachable from `roots` through `includes`, sorted by name (the roots included).
    pub fn closure<'a>(&self, roots: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
        closure_of(&self.tasks, roots)
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
}

/// What the model's unit tests (and fleetfile's) share: a token source and the edit path.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Change, Model, ModelError, TokenSource};
    use crate::api::Op;

    /// Tokens `t1`, `t2`, ... in order.
    pub(crate) struct Seq(pub u32);
    impl TokenSource for Seq {
        fn token(&mut self) -> String {
            self.0 += 1;
            format!("t{}", self.0)
        }
    }

    /// One op as the store applies it: to a copy, validated, kept only when both succeed.
    pub(crate) fn edit(m: &mut Model, op: Op) -> Result<Vec<Change>, ModelError> {
        let mut copy = m.clone();
        let out = copy.apply(&op, &mut Seq(0))?;
        copy.validate()?;
        *m = copy;
        Ok(out)
    }
}
