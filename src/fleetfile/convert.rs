//! Model <-> file form: [`Fleet::from_model`] and [`Fleet::to_model`], which checks each
//! entity of a file and names the line of every problem.

use std::collections::{BTreeMap, BTreeSet};

use super::{FORMAT, FileForm, Fleet, Header, Lines, NodeForm, Problem, TaskForm};
use crate::api::SshTarget;
use crate::model::{
    self, ConffilePolicy, FileAction, Model, Node, PreviousToken, Task, TaskFile, normalize_host,
    parse_relation, validate_file_path, validate_package_name, validate_service,
    validate_task_name, validate_url, validate_var_name,
};

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
