//! The fleet as a text file (`umc-admin export`, `apply`, `import`): the whole model in
//! readable, diff-friendly TOML (or JSON), and the edit that turns one model into another.
//!
//! Pure: no IO, no clock. The TOML is written by hand so that it reads well and is stable
//! (sorted keys, templates as multi-line literal strings); it is parsed with `toml`, keeping
//! each table's line so that every problem names its place in the file.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::api::{Op, SshTarget};
use crate::model::{
    self, ConffilePolicy, FileAction, Model, Node, PreviousToken, Task, TaskFile, normalize_host,
    parse_relation, validate_file_path, validate_package_name, validate_service,
    validate_task_name, validate_url, validate_var_name,
};

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

// ---------------------------------------------------------------------------------------------
// Model <-> file form

impl Fleet {
    /// The file form of `model`. Node tokens only `with_secrets`.
    pub fn from_model(
        model: &Model,
        generation: u64,
        server_generation: u64,
        with_secrets: bool,
    ) -> Fleet {
        let tasks = model
            .tasks
            .values()
            .map(|t| {
                let files = t
                    .files
                    .values()
                    .map(|f| {
                        let (reload, restart) = match &f.action {
                            Some(FileAction::Reload(s)) => (Some(s.clone()), None),
                            Some(FileAction::Restart(s)) => (None, Some(s.clone())),
                            None => (None, None),
                        };
                        let form = FileForm {
                            mode: format!("{:04o}", f.mode),
                            reload,
                            restart,
                            template: f.template.clone(),
                        };
                        (f.path.clone(), form)
                    })
                    .collect();
                let form = TaskForm {
                    description: t.description.clone(),
                    depends: t.depends.clone(),
                    removes: t.removes.iter().cloned().collect(),
                    includes: t.includes.iter().cloned().collect(),
                    dropped: t.dropped.iter().cloned().collect(),
                    generation: Some(t.generation),
                    files,
                };
                (t.name.clone(), form)
            })
            .collect();
        let nodes = model
            .nodes
            .values()
            .map(|n| {
                let previous = n.previous_token.as_ref().filter(|_| with_secrets);
                let form = NodeForm {
                    tasks: n.tasks.iter().cloned().collect(),
                    ssh: n.ssh.as_ref().map(SshTarget::to_string),
                    url: n.url.clone(),
                    conffiles: n.conffiles.map(|p| p.as_str().to_string()),
                    token: with_secrets.then(|| n.token.clone()),
                    previous_token: previous.map(|p| p.token.clone()),
                    previous_token_until: previous.map(|p| p.until),
                    generation: Some(n.generation),
                    vars: n.vars.clone(),
                };
                (n.name.clone(), form)
            })
            .collect();
        Fleet {
            umc: Header {
                format: FORMAT,
                generation: Some(generation),
                vars_generation: Some(model.vars_generation),
                server_generation: Some(server_generation),
            },
            vars: model.vars.clone(),
            tasks,
            nodes,
            history: Vec::new(),
        }
    }

    /// The model this file describes, or every problem it has (with its line). Checks each
    /// entity on its own (names, relations, paths, modes, services, template syntax), the
    /// references between them (unknown tasks) and include cycles; what spans the whole model
    /// (conflicts, collisions, rendering) is left to the edit's own validation.
    ///
    /// Generation counters and tokens are copied as given (0 and empty when absent).
    pub fn to_model(&self, lines: &Lines) -> Result<Model, Vec<Problem>> {
        let mut problems: Vec<Problem> = Vec::new();
        let mut push = |line: usize, message: String| problems.push(Problem { line, message });
        if self.umc.format != FORMAT {
            push(
                1,
                format!(
                    "unsupported fleet file format {} (this umc reads format {FORMAT})",
                    self.umc.format
                ),
            );
        }
        let mut model = Model {
            vars_generation: self.umc.vars_generation.unwrap_or(0),
            ..Model::default()
        };
        for (k, v) in &self.vars {
            if let Err(e) = validate_var_name(k) {
                push(lines.vars, e.to_string());
            } else if v.len() > model::MAX_VAR_VALUE {
                push(lines.vars, format!("variable '{k}': value is too long"));
            }
            model.vars.insert(k.clone(), v.clone());
        }
        for (name, t) in &self.tasks {
            let line = lines.task(name);
            let (task, errors) = task_from_form(name, t, lines, &self.tasks);
            for (l, m) in errors {
                push(if l == 0 { line } else { l }, m);
            }
            model.tasks.insert(name.clone(), task);
        }
        for (raw, n) in &self.nodes {
            let line = lines.node(raw);
            let (node, errors) = node_from_form(raw, n, &self.tasks);
            for m in errors {
                push(line, m);
            }
            if let Some(node) = node {
                if model.nodes.contains_key(&node.name) {
                    push(line, format!("node '{}' is listed twice", node.name));
                }
                model.nodes.insert(node.name.clone(), node);
            }
        }
        for (name, path) in include_cycles(&model) {
            push(
                lines.task(&name),
                format!("task '{name}': includes form a cycle: {path}"),
            );
        }
        if problems.is_empty() {
            Ok(model)
        } else {
            problems.sort_by_key(|p| p.line);
            Err(problems)
        }
    }
}

/// A task from its form, and its problems as (line or 0 for the task's own line, message).
fn task_from_form(
    name: &str,
    t: &TaskForm,
    lines: &Lines,
    all: &BTreeMap<String, TaskForm>,
) -> (Task, Vec<(usize, String)>) {
    let mut errors = Vec::new();
    let mut err = |line: usize, m: String| errors.push((line, m));
    if let Err(e) = validate_task_name(name) {
        err(0, e.to_string());
    }
    if t.description.len() > model::MAX_DESCRIPTION
        || t.description.chars().any(|c| c.is_control() && c != '\n')
    {
        err(
            0,
            format!("task '{name}': description is too long or contains control characters"),
        );
    }
    let mut depends: Vec<String> = Vec::new();
    for d in &t.depends {
        match parse_relation(d) {
            Ok(r) => {
                for pkg in r.packages.iter().filter(|p| p.starts_with("umc-")) {
                    err(
                        0,
                        format!("task '{name}': '{pkg}' is a umc package; use includes for tasks"),
                    );
                }
                if depends.contains(&r.text) {
                    err(
                        0,
                        format!("task '{name}': dependency '{}' is listed twice", r.text),
                    );
                } else {
                    depends.push(r.text);
                }
            }
            Err(e) => err(0, format!("task '{name}': {e}")),
        }
    }
    if depends.len() > model::MAX_RELATIONS {
        err(0, format!("task '{name}': too many dependencies"));
    }
    for r in &t.removes {
        if let Err(e) = validate_package_name(r) {
            err(0, format!("task '{name}': {e}"));
        } else if r.starts_with("umc-") {
            err(
                0,
                format!("task '{name}': '{r}' is a umc package and cannot be removed"),
            );
        }
    }
    for s in &t.includes {
        if s == name {
            err(0, format!("task '{name}' cannot include itself"));
        } else if !all.contains_key(s) {
            err(0, format!("task '{name}': includes unknown task '{s}'"));
        }
    }
    let mut files = BTreeMap::new();
    for (path, f) in &t.files {
        let (fline, tline) = lines
            .files
            .get(&(name.to_string(), path.clone()))
            .copied()
            .unwrap_or((0, 0));
        match file_from_form(name, path, f) {
            Ok(tf) => {
                files.insert(path.clone(), tf);
            }
            Err(m) => err(fline, m),
        }
        if let Err(e) = crate::template::Template::parse(path, &f.template) {
            match e {
                crate::template::TemplateError::Syntax {
                    line,
                    column,
                    message,
                    ..
                } => err(
                    if tline == 0 {
                        fline
                    } else {
                        tline + line.saturating_sub(1)
                    },
                    format!(
                        "task '{name}': template '{path}': line {line}, column {column}: {message}"
                    ),
                ),
                other => err(fline, format!("task '{name}': {other}")),
            }
        }
    }
    let task = Task {
        name: name.to_string(),
        description: t.description.clone(),
        depends,
        removes: t.removes.iter().cloned().collect(),
        includes: t.includes.iter().cloned().collect(),
        files,
        dropped: t.dropped.iter().cloned().collect(),
        generation: t.generation.unwrap_or(0),
    };
    (task, errors)
}

fn file_from_form(task: &str, path: &str, f: &FileForm) -> Result<TaskFile, String> {
    validate_file_path(task, path).map_err(|e| e.to_string())?;
    let mode = u32::from_str_radix(f.mode.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| {
            format!(
                "task '{task}': file '{path}': mode '{}' is not an octal file mode (0 to 7777)",
                f.mode
            )
        })?;
    let action = match (&f.reload, &f.restart) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "task '{task}': file '{path}': give either reload or restart, not both"
            ));
        }
        (Some(s), None) => Some(FileAction::Reload(s.clone())),
        (None, Some(s)) => Some(FileAction::Restart(s.clone())),
        (None, None) => None,
    };
    if let Some(FileAction::Reload(s) | FileAction::Restart(s)) = &action {
        validate_service(s).map_err(|e| format!("task '{task}': file '{path}': {e}"))?;
    }
    Ok(TaskFile {
        path: path.to_string(),
        template: f.template.clone(),
        mode,
        action,
    })
}

fn node_from_form(
    raw: &str,
    n: &NodeForm,
    tasks: &BTreeMap<String, TaskForm>,
) -> (Option<Node>, Vec<String>) {
    let mut errors = Vec::new();
    let name = match normalize_host(raw) {
        Ok(h) => h,
        Err(e) => return (None, vec![e.to_string()]),
    };
    for (k, v) in &n.vars {
        if let Err(e) = validate_var_name(k) {
            errors.push(format!("node '{name}': {e}"));
        } else if v.len() > model::MAX_VAR_VALUE {
            errors.push(format!("node '{name}': variable '{k}': value is too long"));
        }
    }
    for t in &n.tasks {
        if !tasks.contains_key(t) {
            errors.push(format!("node '{name}': unknown task '{t}'"));
        }
    }
    let ssh = match n.ssh.as_deref().map(SshTarget::parse).transpose() {
        Ok(s) => s,
        Err(e) => {
            errors.push(format!("node '{name}': {e}"));
            None
        }
    };
    let url = match n.url.as_deref().map(validate_url).transpose() {
        Ok(u) => u,
        Err(e) => {
            errors.push(format!("node '{name}': {e}"));
            None
        }
    };
    let conffiles = match n.conffiles.as_deref() {
        None => None,
        Some(p) => match ConffilePolicy::parse(p) {
            Some(p) => Some(p),
            None => {
                errors.push(format!(
                    "node '{name}': invalid conffile policy '{p}': expected keep-local or server-wins"
                ));
                None
            }
        },
    };
    // Tokens end up in apt's auth.conf and in the enrollment script: only what umcd makes.
    if let Some(t) = &n.token
        && !model::valid_token(t)
    {
        errors.push(format!(
            "node '{name}': token must be 64 lowercase hex digits, as umcd makes them"
        ));
    }
    let previous_token = match (&n.previous_token, n.previous_token_until) {
        (None, None) => None,
        (Some(t), Some(until)) if model::valid_token(t) && until > 0 => Some(PreviousToken {
            token: t.clone(),
            until,
        }),
        _ => {
            errors.push(format!(
                "node '{name}': previous_token must be 64 lowercase hex digits, with previous_token_until (the generation of the rotation, above 0)"
            ));
            None
        }
    };
    let node = Node {
        name: name.clone(),
        vars: n.vars.clone(),
        tasks: n.tasks.iter().cloned().collect(),
        ssh,
        token: n.token.clone().unwrap_or_default(),
        previous_token,
        url,
        conffiles,
        generation: n.generation.unwrap_or(0),
    };
    (Some(node), errors)
}

/// Each task that lies on an include cycle, with one cycle through it.
fn include_cycles(model: &Model) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, task) in &model.tasks {
        // Depth-first from the task's includes, looking for a way back to it.
        let mut stack: Vec<Vec<&str>> = task
            .includes
            .iter()
            .map(|s| vec![name.as_str(), s.as_str()])
            .collect();
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = *path.last().unwrap_or(&"");
            if last == name {
                out.push((name.clone(), path.join(" -> ")));
                break;
            }
            if !seen.insert(last) {
                continue;
            }
            if let Some(t) = model.tasks.get(last) {
                for s in &t.includes {
                    let mut next = path.clone();
                    next.push(s);
                    stack.push(next);
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The edit from one model to another

/// The operations that turn `old` into `new` (ignoring generation counters, tokens and
/// `dropped`, which edits derive), in an order every step of which is valid when `new` is:
/// loosening first (excludes, undepends, unassigns, and removing the tasks `new` lacks), then
/// additions, then tightening, then removing nodes. Also returns, for each `NodeAdd` in order,
/// the token the new node should get (`new`'s, when it has one).
pub fn diff_ops(old: &Model, new: &Model) -> (Vec<Op>, Vec<Option<String>>) {
    let mut first = Vec::new();
    let mut adds = Vec::new();
    let mut then = Vec::new();
    let mut last = Vec::new();
    let mut tokens = Vec::new();
    let gone_tasks: BTreeSet<&String> = old
        .tasks
        .keys()
        .filter(|t| !new.tasks.contains_key(*t))
        .collect();
    for (name, t) in &new.tasks {
        let Some(o) = old.tasks.get(name) else {
            adds.push(Op::TaskAdd {
                task: name.clone(),
                description: (!t.description.is_empty()).then(|| t.description.clone()),
            });
            // What TaskAdd made: a task with the description.
            let added = Task {
                description: t.description.clone(),
                ..Task::new(name)
            };
            task_additions(name, &added, t, &mut then);
            continue;
        };
        let excluded: Vec<String> = o
            .includes
            .difference(&t.includes)
            .filter(|s| !gone_tasks.contains(s))
            .cloned()
            .collect();
        if !excluded.is_empty() {
            first.push(Op::TaskExclude {
                task: name.clone(),
                subtasks: excluded,
            });
        }
        let unremoved: Vec<String> = o.removes.difference(&t.removes).cloned().collect();
        if !unremoved.is_empty() {
            first.push(Op::TaskUnremovePackage {
                task: name.clone(),
                packages: unremoved,
            });
        }
        for path in o.files.keys().filter(|p| !t.files.contains_key(*p)) {
            first.push(Op::TaskFileRemove {
                task: name.clone(),
                path: path.clone(),
            });
        }
        // Dependencies keep their order: drop what goes, and when what stays is not a prefix
        // of the wanted list, drop the rest too and add it back in order.
        if o.depends != t.depends {
            let mut kept: Vec<String> = o.depends.clone();
            for d in o.depends.iter().filter(|d| !t.depends.contains(d)) {
                if kept.contains(d) {
                    first.push(Op::TaskUndepend {
                        task: name.clone(),
                        packages: vec![d.clone()],
                    });
                    kept.retain(|k| !undepend_hits(k, d));
                }
            }
            if !t.depends.starts_with(&kept) {
                for d in std::mem::take(&mut kept) {
                    first.push(Op::TaskUndepend {
                        task: name.clone(),
                        packages: vec![d],
                    });
                }
            }
            let mut o2 = o.clone();
            o2.depends = kept;
            task_additions(name, &o2, t, &mut then);
        } else {
            task_additions(name, o, t, &mut then);
        }
    }
    // A task that goes keeps its includes and includers until it is removed, so it goes
    // before any include is added: `new` may include, between the tasks it keeps, the other
    // way round from a path through it (x -> gone -> y, then y -> x).
    for name in &gone_tasks {
        first.push(Op::TaskRemove {
            task: (*name).clone(),
        });
    }
    for (host, n) in &new.nodes {
        let o = match old.nodes.get(host) {
            Some(o) => o,
            None => {
                adds.push(Op::NodeAdd {
                    host: host.clone(),
                    vars: n.vars.clone(),
                    ssh: n.ssh.as_ref().map(SshTarget::to_string),
                });
                tokens.push((!n.token.is_empty()).then(|| n.token.clone()));
                // What NodeAdd made: a node with the variables and ssh target.
                let added = Node {
                    vars: n.vars.clone(),
                    ssh: n.ssh.clone(),
                    ..Node::new(host, String::new())
                };
                node_changes(host, &added, n, &mut first, &mut then);
                continue;
            }
        };
        node_changes(host, o, n, &mut first, &mut then);
        // Tasks that are removed take their assignments with them (the cascade's own lines).
        let unassigned: Vec<String> = o
            .tasks
            .difference(&n.tasks)
            .filter(|t| !gone_tasks.contains(t))
            .cloned()
            .collect();
        if !unassigned.is_empty() {
            first.push(Op::Unassign {
                host: host.clone(),
                tasks: unassigned,
            });
        }
    }
    for host in old.nodes.keys().filter(|h| !new.nodes.contains_key(*h)) {
        last.push(Op::NodeRemove { host: host.clone() });
    }
    let unset: Vec<String> = old
        .vars
        .keys()
        .filter(|k| !new.vars.contains_key(*k))
        .cloned()
        .collect();
    if !unset.is_empty() {
        first.push(Op::VarUnset { names: unset });
    }
    let set: BTreeMap<String, String> = new
        .vars
        .iter()
        .filter(|(k, v)| old.vars.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !set.is_empty() {
        then.push(Op::VarSet { vars: set });
    }
    let mut ops = first;
    ops.extend(adds);
    ops.extend(then);
    ops.extend(last);
    (ops, tokens)
}

/// Whether `task undepend <p>` removes relation `d` (the same rule as `Model::apply`).
fn undepend_hits(d: &str, p: &str) -> bool {
    d == p
        || parse_relation(d)
            .map(|r| r.packages.iter().any(|n| n == p))
            .unwrap_or(false)
}

/// What `new` adds to task `o`: description, dependencies, removals, includes, files.
fn task_additions(name: &str, o: &Task, t: &Task, out: &mut Vec<Op>) {
    if o.description != t.description {
        out.push(Op::TaskSet {
            task: name.to_string(),
            description: t.description.clone(),
        });
    }
    let depend: Vec<String> = t
        .depends
        .iter()
        .filter(|d| !o.depends.contains(d))
        .cloned()
        .collect();
    if !depend.is_empty() {
        out.push(Op::TaskDepend {
            task: name.to_string(),
            relations: depend,
        });
    }
    let removes: Vec<String> = t.removes.difference(&o.removes).cloned().collect();
    if !removes.is_empty() {
        out.push(Op::TaskRemovePackage {
            task: name.to_string(),
            packages: removes,
        });
    }
    let includes: Vec<String> = t.includes.difference(&o.includes).cloned().collect();
    if !includes.is_empty() {
        out.push(Op::TaskInclude {
            task: name.to_string(),
            subtasks: includes,
        });
    }
    for (path, f) in &t.files {
        if o.files.get(path) != Some(f) {
            let (reload, restart) = match &f.action {
                Some(FileAction::Reload(s)) => (Some(s.clone()), None),
                Some(FileAction::Restart(s)) => (None, Some(s.clone())),
                None => (None, None),
            };
            out.push(Op::TaskFileAdd {
                task: name.to_string(),
                path: path.clone(),
                template: f.template.clone(),
                mode: Some(f.mode),
                reload,
                restart,
            });
        }
    }
}

/// Node settings that differ: variables, ssh, URL, conffile policy, new assignments.
fn node_changes(host: &str, o: &Node, n: &Node, first: &mut Vec<Op>, then: &mut Vec<Op>) {
    let unset_vars: Vec<String> = o
        .vars
        .keys()
        .filter(|k| !n.vars.contains_key(*k))
        .cloned()
        .collect();
    if !unset_vars.is_empty() {
        first.push(Op::NodeSet {
            host: host.to_string(),
            set_vars: BTreeMap::new(),
            unset_vars,
            ssh: None,
            url: None,
            conffiles: None,
        });
    }
    let set_vars: BTreeMap<String, String> = n
        .vars
        .iter()
        .filter(|(k, v)| o.vars.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let ssh =
        (o.ssh != n.ssh).then(|| n.ssh.as_ref().map(SshTarget::to_string).unwrap_or_default());
    let url = (o.url != n.url).then(|| n.url.clone().unwrap_or_default());
    let conffiles = (o.conffiles != n.conffiles).then(|| {
        n.conffiles
            .map_or("default", ConffilePolicy::as_str)
            .to_string()
    });
    if !set_vars.is_empty() || ssh.is_some() || url.is_some() || conffiles.is_some() {
        then.push(Op::NodeSet {
            host: host.to_string(),
            set_vars,
            unset_vars: Vec::new(),
            ssh,
            url,
            conffiles,
        });
    }
    let assigned: Vec<String> = n.tasks.difference(&o.tasks).cloned().collect();
    if !assigned.is_empty() {
        then.push(Op::Assign {
            host: host.to_string(),
            tasks: assigned,
        });
    }
}

// ---------------------------------------------------------------------------------------------
// TOML text

/// Writes `fleet` as TOML: sorted, one table per task, file and node, templates as multi-line
/// literal strings where TOML allows it.
pub fn to_toml(fleet: &Fleet) -> String {
    let mut out = String::with_capacity(256 * (fleet.nodes.len() + fleet.tasks.len() + 4));
    out.push_str(
        "# umc fleet file, written by `umc-admin export`.\n\
         # `umc-admin apply <file>` makes the server's model equal it; generation counters and\n\
         # tokens are kept as exported and only `umc-admin import` restores them.\n",
    );
    out.push_str("\n[umc]\n");
    kv_int(&mut out, "format", u64::from(fleet.umc.format));
    for (k, v) in [
        ("generation", fleet.umc.generation),
        ("vars_generation", fleet.umc.vars_generation),
        ("server_generation", fleet.umc.server_generation),
    ] {
        if let Some(v) = v {
            kv_int(&mut out, k, v);
        }
    }
    out.push_str("\n[vars]\n");
    for (k, v) in &fleet.vars {
        kv_str(&mut out, k, v);
    }
    for (name, t) in &fleet.tasks {
        out.push_str(&format!("\n[tasks.{}]\n", key(name)));
        kv_str(&mut out, "description", &t.description);
        kv_list(&mut out, "depends", &t.depends);
        kv_list(&mut out, "removes", &t.removes);
        kv_list(&mut out, "includes", &t.includes);
        if !t.dropped.is_empty() {
            kv_list(&mut out, "dropped", &t.dropped);
        }
        if let Some(g) = t.generation {
            kv_int(&mut out, "generation", g);
        }
        for (path, f) in &t.files {
            out.push_str(&format!("\n[tasks.{}.files.{}]\n", key(name), key(path)));
            kv_str(&mut out, "mode", &f.mode);
            if let Some(s) = &f.reload {
                kv_str(&mut out, "reload", s);
            }
            if let Some(s) = &f.restart {
                kv_str(&mut out, "restart", s);
            }
            out.push_str("template = ");
            multiline(&mut out, &f.template);
            out.push('\n');
        }
    }
    for (host, n) in &fleet.nodes {
        out.push_str(&format!("\n[nodes.{}]\n", key(host)));
        kv_list(&mut out, "tasks", &n.tasks);
        for (k, v) in [
            ("ssh", &n.ssh),
            ("url", &n.url),
            ("conffiles", &n.conffiles),
            ("token", &n.token),
            ("previous_token", &n.previous_token),
        ] {
            if let Some(v) = v {
                kv_str(&mut out, k, v);
            }
        }
        if let Some(g) = n.previous_token_until {
            kv_int(&mut out, "previous_token_until", g);
        }
        if let Some(g) = n.generation {
            kv_int(&mut out, "generation", g);
        }
        if !n.vars.is_empty() {
            out.push_str(&format!("[nodes.{}.vars]\n", key(host)));
            for (k, v) in &n.vars {
                kv_str(&mut out, k, v);
            }
        }
    }
    for g in &fleet.history {
        out.push_str("\n[[history]]\n");
        kv_int(&mut out, "generation", g.generation);
        out.push_str(&format!("time = {}\n", g.time));
        kv_str(&mut out, "user", &g.user);
        out.push_str("changes = [\n");
        for c in &g.changes {
            out.push_str("  { text = ");
            basic(&mut out, &c.text);
            out.push_str(", entities = ");
            list(&mut out, &c.entities);
            out.push_str(" },\n");
        }
        out.push_str("]\n");
    }
    out
}

fn kv_int(out: &mut String, k: &str, v: u64) {
    out.push_str(&format!("{} = {v}\n", key(k)));
}

fn kv_str(out: &mut String, k: &str, v: &str) {
    out.push_str(&key(k));
    out.push_str(" = ");
    basic(out, v);
    out.push('\n');
}

fn kv_list(out: &mut String, k: &str, v: &[String]) {
    out.push_str(&key(k));
    out.push_str(" = ");
    list(out, v);
    out.push('\n');
}

fn list(out: &mut String, v: &[String]) {
    out.push('[');
    for (i, s) in v.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        basic(out, s);
    }
    out.push(']');
}

/// A bare key when TOML allows one, else a quoted one.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        let mut s = String::new();
        basic(&mut s, k);
        s
    }
}

/// A TOML basic string with escapes.
fn basic(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A template: a multi-line literal string (no escapes, reads as the file) when TOML can
/// carry it verbatim, else a basic string.
fn multiline(out: &mut String, s: &str) {
    let literal_ok = !s.contains("\'\'\'")
        && !s.ends_with('\'')
        && !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
    if literal_ok {
        out.push_str("\'\'\'\n");
        out.push_str(s);
        out.push_str("\'\'\'");
    } else {
        basic(out, s);
    }
}

#[derive(Deserialize)]
struct SpanFleet {
    #[serde(default)]
    vars: Option<toml::Spanned<serde::de::IgnoredAny>>,
    #[serde(default)]
    tasks: BTreeMap<String, toml::Spanned<SpanTask>>,
    #[serde(default)]
    nodes: BTreeMap<String, toml::Spanned<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
struct SpanTask {
    #[serde(default)]
    files: BTreeMap<String, toml::Spanned<SpanFile>>,
}

#[derive(Deserialize)]
struct SpanFile {
    #[serde(default)]
    template: Option<toml::Spanned<serde::de::IgnoredAny>>,
}

/// Line numbers of byte offsets.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex(starts)
    }
    fn line(&self, offset: usize) -> usize {
        match self.0.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// Parses a fleet file in TOML, with the line of each table; a syntax or type error comes back
/// as one problem at its line.
pub fn parse_toml(text: &str) -> Result<(Fleet, Lines), Vec<Problem>> {
    let index = LineIndex::new(text);
    let fleet: Fleet = toml::from_str(text).map_err(|e| {
        vec![Problem {
            line: e.span().map(|s| index.line(s.start)).unwrap_or(0),
            message: e.message().trim().to_string(),
        }]
    })?;
    let spans: SpanFleet = toml::from_str(text).map_err(|e| {
        vec![Problem {
            line: e.span().map(|s| index.line(s.start)).unwrap_or(0),
            message: e.message().trim().to_string(),
        }]
    })?;
    let mut lines = Lines {
        vars: spans.vars.map(|v| index.line(v.span().start)).unwrap_or(0),
        ..Lines::default()
    };
    for (name, t) in spans.tasks {
        lines.tasks.insert(name.clone(), index.line(t.span().start));
        for (path, f) in t.into_inner().files {
            let fline = index.line(f.span().start);
            let tline = match f.into_inner().template {
                Some(t) => {
                    let start = t.span().start;
                    let rest = &text[start..];
                    let opens_block = (rest.starts_with("\'\'\'") || rest.starts_with("\"\"\""))
                        && (rest[3..].starts_with('\n') || rest[3..].starts_with("\r\n"));
                    index.line(start) + usize::from(opens_block)
                }
                None => fline,
            };
            lines.files.insert((name.clone(), path), (fline, tline));
        }
    }
    for (host, n) in spans.nodes {
        let line = index.line(n.span().start);
        lines.nodes.insert(host.clone(), line);
        // Problems name normalized hosts.
        if let Ok(h) = normalize_host(&host) {
            lines.nodes.entry(h).or_insert(line);
        }
    }
    Ok((fleet, lines))
}

/// Parses a fleet file in JSON (no line numbers beyond a syntax error's).
pub fn parse_json(text: &str) -> Result<(Fleet, Lines), Vec<Problem>> {
    serde_json::from_str(text)
        .map(|f| (f, Lines::default()))
        .map_err(|e| {
            vec![Problem {
                line: e.line(),
                message: e.to_string(),
            }]
        })
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
