//! [`Model::apply`]: one operation of an edit, with its change lines.

use std::collections::{BTreeMap, BTreeSet};

use super::names::{check_not_umc, validate_description, validate_var};
use super::relation::relation_packages;
use super::{
    Change, ConffilePolicy, Entity, FileAction, MAX_RELATIONS, Model, ModelError, Node,
    PreviousToken, Task, TaskFile, TokenSource, normalize_host, parse_relation, validate_file_path,
    validate_package_name, validate_service, validate_task_name, validate_url, validate_var_name,
};
use crate::api::{Op, SshTarget};

impl Model {
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
}

#[cfg(test)]
mod tests;
