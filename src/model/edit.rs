//! [`Model::apply`]: one operation of an edit, with its change lines. The ops come in four
//! families, each a group of methods on [`Apply`]: nodes (and their assignments), tasks, task
//! files, and global variables.

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
    /// Applies one operation, returning its change lines: what changed, not who changed it
    /// (see [`Change::by`]). On error the model may be partly changed: callers apply edits to a
    /// copy and discard it on error.
    pub fn apply(
        &mut self,
        op: &Op,
        tokens: &mut dyn TokenSource,
    ) -> Result<Vec<Change>, ModelError> {
        let mut a = Apply {
            model: self,
            tokens,
            out: Changes::default(),
        };
        match op {
            Op::NodeAdd { host, vars, ssh } => a.node_add(host, vars, ssh.as_deref())?,
            Op::NodeRemove { host } => a.node_remove(host)?,
            Op::NodeSet {
                host,
                set_vars,
                unset_vars,
                ssh,
                url,
                conffiles,
            } => a.node_set(
                host,
                set_vars,
                unset_vars,
                ssh.as_deref(),
                url.as_deref(),
                conffiles.as_deref(),
            )?,
            Op::NodeTokenRotate { host, force } => a.node_token_rotate(host, *force)?,
            Op::Assign { host, tasks } => a.assign(host, tasks)?,
            Op::Unassign { host, tasks } => a.unassign(host, tasks)?,
            Op::TaskAdd { task, description } => a.task_add(task, description.as_deref())?,
            Op::TaskSet { task, description } => a.task_set(task, description)?,
            Op::TaskRemove { task } => a.task_remove(task)?,
            Op::TaskDepend { task, relations } => a.task_depend(task, relations)?,
            Op::TaskUndepend { task, packages } => a.task_undepend(task, packages)?,
            Op::TaskRemovePackage { task, packages } => a.task_remove_package(task, packages)?,
            Op::TaskUnremovePackage { task, packages } => {
                a.task_unremove_package(task, packages)?
            }
            Op::TaskInclude { task, subtasks } => a.task_include(task, subtasks)?,
            Op::TaskExclude { task, subtasks } => a.task_exclude(task, subtasks)?,
            Op::TaskFileAdd {
                task,
                path,
                template,
                mode,
                reload,
                restart,
            } => a.file_add(
                task,
                path,
                template,
                *mode,
                reload.as_deref(),
                restart.as_deref(),
            )?,
            Op::TaskFileRemove { task, path } => a.file_remove(task, path)?,
            Op::VarSet { vars } => a.var_set(vars)?,
            Op::VarUnset { names } => a.var_unset(names)?,
        }
        Ok(a.out.lines)
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

/// One operation being applied: the model it changes, where new tokens come from, and the
/// change lines it writes (a separate field, so a line can be written while a node or task of
/// the model is borrowed).
struct Apply<'a> {
    model: &'a mut Model,
    tokens: &'a mut dyn TokenSource,
    out: Changes,
}

/// The change lines of one operation, each naming the one entity it changes.
#[derive(Default)]
struct Changes {
    lines: Vec<Change>,
}

impl Changes {
    fn line(&mut self, entity: Entity, action: &str) {
        self.lines.push(Change {
            text: action.to_string(),
            entities: vec![entity],
        });
    }

    /// A set-like list edit: `step` applies one item and returns the change line when the item
    /// changed something (an item already there, or already gone, writes none).
    fn each<I>(
        &mut self,
        entity: &Entity,
        items: impl IntoIterator<Item = I>,
        mut step: impl FnMut(I) -> Result<Option<String>, ModelError>,
    ) -> Result<(), ModelError> {
        for item in items {
            if let Some(action) = step(item)? {
                self.line(entity.clone(), &action);
            }
        }
        Ok(())
    }
}

/// Sets each of `vars` in `map` after checking it, with a line for each value that changed.
fn set_vars(
    out: &mut Changes,
    entity: &Entity,
    map: &mut BTreeMap<String, String>,
    vars: &BTreeMap<String, String>,
    action: impl Fn(&str) -> String,
) -> Result<(), ModelError> {
    out.each(entity, vars, |(k, v)| {
        validate_var(k, v)?;
        Ok((map.get(k) != Some(v)).then(|| {
            map.insert(k.clone(), v.clone());
            action(k)
        }))
    })
}

// ---------------------------------------------------------------------------------------------
// Nodes and their assignments

impl Apply<'_> {
    fn node_add(
        &mut self,
        host: &str,
        vars: &BTreeMap<String, String>,
        ssh: Option<&str>,
    ) -> Result<(), ModelError> {
        let host = normalize_host(host)?;
        if self.model.nodes.contains_key(&host) {
            return Err(ModelError::NodeExists(host));
        }
        for (k, v) in vars {
            validate_var(k, v)?;
        }
        let ssh = ssh.map(SshTarget::parse).transpose()?;
        let node = Node {
            vars: vars.clone(),
            ssh,
            ..Node::new(&host, self.tokens.token())
        };
        self.model.nodes.insert(host.clone(), node);
        self.out
            .line(Entity::Node(host.clone()), &format!("added node '{host}'"));
        Ok(())
    }

    fn node_remove(&mut self, host: &str) -> Result<(), ModelError> {
        let host = normalize_host(host)?;
        if self.model.nodes.remove(&host).is_none() {
            return Err(ModelError::UnknownNode(host));
        }
        self.out.line(
            Entity::Node(host.clone()),
            &format!("removed node '{host}'"),
        );
        Ok(())
    }

    /// Variables, ssh target, umc URL and conffile policy of a node. An empty URL or ssh target
    /// unsets it (what `apply` needs to make a node equal a fleet file that has none), and so
    /// does the policy `default`.
    fn node_set(
        &mut self,
        host: &str,
        set: &BTreeMap<String, String>,
        unset: &[String],
        ssh: Option<&str>,
        url: Option<&str>,
        conffiles: Option<&str>,
    ) -> Result<(), ModelError> {
        let host = normalize_host(host)?;
        let url = match url {
            None => None,
            Some("") => Some(None),
            Some(u) => Some(Some(validate_url(u)?)),
        };
        let conffiles = match conffiles {
            None => None,
            Some("default") => Some(None),
            Some(p) => Some(Some(
                ConffilePolicy::parse(p).ok_or_else(|| ModelError::InvalidPolicy(p.to_string()))?,
            )),
        };
        let node = self.model.node_mut(&host)?;
        let out = &mut self.out;
        let e = Entity::Node(host.clone());
        set_vars(out, &e, &mut node.vars, set, |k| {
            format!("set variable '{k}' of node '{host}'")
        })?;
        out.each(&e, unset, |k| {
            validate_var_name(k)?;
            let gone = node.vars.remove(k).is_some();
            Ok(gone.then(|| format!("unset variable '{k}' of node '{host}'")))
        })?;
        if ssh == Some("") {
            if node.ssh.take().is_some() {
                out.line(
                    e.clone(),
                    &format!("removed the ssh target of node '{host}'"),
                );
            }
        } else if let Some(s) = ssh {
            let target = SshTarget::parse(s)?;
            if node.ssh.as_ref() != Some(&target) {
                let action = format!("set the ssh target of node '{host}' to '{target}'");
                out.line(e.clone(), &action);
                node.ssh = Some(target);
            }
        }
        if let Some(url) = url
            && node.url != url
        {
            let action = match &url {
                Some(u) => format!("set the umc URL of node '{host}' to '{u}'"),
                None => format!("removed the umc URL of node '{host}'"),
            };
            out.line(e.clone(), &action);
            node.url = url;
        }
        if let Some(policy) = conffiles
            && node.conffiles != policy
        {
            let shown = policy.map_or("umcd's default", ConffilePolicy::as_str);
            out.line(
                e,
                &format!("set the conffile policy of node '{host}' to {shown}"),
            );
            node.conffiles = policy;
        }
        Ok(())
    }

    fn node_token_rotate(&mut self, host: &str, force: bool) -> Result<(), ModelError> {
        let host = normalize_host(host)?;
        let node = self.model.node_mut(&host)?;
        // One previous token at a time: during a rotation the node may hold either token, so a
        // second rotation could not know which one to keep.
        if node.previous_token.is_some() && !force {
            return Err(ModelError::RotationPending(host));
        }
        let old = std::mem::replace(&mut node.token, self.tokens.token());
        node.previous_token = (!force).then_some(PreviousToken {
            token: old,
            until: 0,
        });
        let how = if force {
            "; the old token no longer works"
        } else {
            ""
        };
        let action = format!("rotated the token of node '{host}'{how}");
        self.out.line(Entity::Node(host), &action);
        Ok(())
    }

    fn assign(&mut self, host: &str, tasks: &[String]) -> Result<(), ModelError> {
        let host = normalize_host(host)?;
        for t in tasks {
            if !self.model.tasks.contains_key(t) {
                return Err(ModelError::UnknownTask(t.clone()));
            }
        }
        let node = self.model.node_mut(&host)?;
        self.out.each(&Entity::Node(host.clone()), tasks, |t| {
            let new = node.tasks.insert(t.clone());
            Ok(new.then(|| format!("assigned task '{t}' to node '{host}'")))
        })
    }

    fn unassign(&mut self, host: &str, tasks: &[String]) -> Result<(), ModelError> {
        let host = normalize_host(host)?;
        let node = self.model.node_mut(&host)?;
        self.out.each(&Entity::Node(host.clone()), tasks, |t| {
            let gone = node.tasks.remove(t);
            Ok(gone.then(|| format!("unassigned task '{t}' from node '{host}'")))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Tasks

impl Apply<'_> {
    fn task_add(&mut self, task: &str, description: Option<&str>) -> Result<(), ModelError> {
        validate_task_name(task)?;
        if self.model.tasks.contains_key(task) {
            return Err(ModelError::TaskExists(task.to_string()));
        }
        let description = description.unwrap_or_default().to_string();
        validate_description(task, &description)?;
        let t = Task {
            description,
            ..Task::new(task)
        };
        self.model.tasks.insert(task.to_string(), t);
        self.out.line(
            Entity::Task(task.to_string()),
            &format!("added task '{task}'"),
        );
        Ok(())
    }

    fn task_set(&mut self, task: &str, description: &str) -> Result<(), ModelError> {
        validate_description(task, description)?;
        let t = self.model.task_mut(task)?;
        if t.description != description {
            t.description = description.to_string();
            let action = format!("changed the description of task '{task}'");
            self.out.line(Entity::Task(task.to_string()), &action);
        }
        Ok(())
    }

    /// Removes a task. It also disappears from every include and assignment, and each of those
    /// packages changes, so each gets its own line.
    fn task_remove(&mut self, task: &str) -> Result<(), ModelError> {
        if self.model.tasks.remove(task).is_none() {
            return Err(ModelError::UnknownTask(task.to_string()));
        }
        let out = &mut self.out;
        out.line(
            Entity::Task(task.to_string()),
            &format!("removed task '{task}'"),
        );
        for other in self.model.tasks.values_mut() {
            if other.includes.remove(task) {
                let action = format!("removed task '{task}' from task '{}'", other.name);
                out.line(Entity::Task(other.name.clone()), &action);
            }
        }
        for node in self.model.nodes.values_mut() {
            if node.tasks.remove(task) {
                let action = format!("unassigned task '{task}' from node '{}'", node.name);
                out.line(Entity::Node(node.name.clone()), &action);
            }
        }
        Ok(())
    }

    fn task_depend(&mut self, task: &str, relations: &[String]) -> Result<(), ModelError> {
        let t = self.model.task_mut(task)?;
        self.out
            .each(&Entity::Task(task.to_string()), relations, |r| {
                let rel = parse_relation(r)?;
                for p in &rel.packages {
                    check_not_umc(task, p)?;
                }
                if t.depends.contains(&rel.text) {
                    return Ok(None);
                }
                let action = format!("added dependency '{}'", rel.text);
                t.depends.push(rel.text);
                Ok(Some(action))
            })?;
        if t.depends.len() > MAX_RELATIONS {
            return Err(ModelError::TooManyRelations {
                task: task.to_string(),
            });
        }
        Ok(())
    }

    /// Removes each dependency that is, or mentions, one of `packages`; a package no
    /// dependency names is an error.
    fn task_undepend(&mut self, task: &str, packages: &[String]) -> Result<(), ModelError> {
        let t = self.model.task_mut(task)?;
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
                    task: task.to_string(),
                    package: p.clone(),
                });
            }
            for d in removed {
                let action = format!("removed dependency '{d}'");
                self.out.line(Entity::Task(task.to_string()), &action);
            }
        }
        Ok(())
    }

    fn task_remove_package(&mut self, task: &str, packages: &[String]) -> Result<(), ModelError> {
        let t = self.model.task_mut(task)?;
        self.out
            .each(&Entity::Task(task.to_string()), packages, |p| {
                validate_package_name(p)?;
                check_not_umc(task, p)?;
                let new = t.removes.insert(p.clone());
                Ok(new.then(|| format!("marked package '{p}' for removal")))
            })
    }

    fn task_unremove_package(&mut self, task: &str, packages: &[String]) -> Result<(), ModelError> {
        let t = self.model.task_mut(task)?;
        self.out
            .each(&Entity::Task(task.to_string()), packages, |p| {
                let gone = t.removes.remove(p);
                Ok(gone.then(|| format!("no longer removes package '{p}'")))
            })
    }

    fn task_include(&mut self, task: &str, subtasks: &[String]) -> Result<(), ModelError> {
        let model = &mut *self.model;
        self.out
            .each(&Entity::Task(task.to_string()), subtasks, |s| {
                if !model.tasks.contains_key(s) {
                    return Err(ModelError::UnknownTask(s.clone()));
                }
                if s == task {
                    return Err(ModelError::SelfInclude {
                        task: task.to_string(),
                    });
                }
                if let Some(path) = model.include_path(s, task) {
                    return Err(ModelError::Cycle {
                        task: task.to_string(),
                        sub: s.clone(),
                        path: format!("{task} -> {}", path.join(" -> ")),
                    });
                }
                let new = model.task_mut(task)?.includes.insert(s.clone());
                Ok(new.then(|| format!("included task '{s}' in task '{task}'")))
            })
    }

    fn task_exclude(&mut self, task: &str, subtasks: &[String]) -> Result<(), ModelError> {
        let t = self.model.task_mut(task)?;
        self.out
            .each(&Entity::Task(task.to_string()), subtasks, |s| {
                let gone = t.includes.remove(s);
                Ok(gone.then(|| format!("excluded task '{s}' from task '{task}'")))
            })
    }
}

// ---------------------------------------------------------------------------------------------
// Task files

impl Apply<'_> {
    /// Adds or replaces a file. Its template is parsed here, so a syntax error is refused with
    /// its line and column; whether it renders for every host is `validate_renders`' business.
    fn file_add(
        &mut self,
        task: &str,
        path: &str,
        template: &str,
        mode: Option<u32>,
        reload: Option<&str>,
        restart: Option<&str>,
    ) -> Result<(), ModelError> {
        validate_file_path(task, path)?;
        let mode = mode.unwrap_or(0o644);
        if mode > 0o7777 {
            return Err(ModelError::InvalidMode {
                task: task.to_string(),
                path: path.to_string(),
                mode,
            });
        }
        let action = match (reload, restart) {
            (Some(_), Some(_)) => {
                return Err(ModelError::InvalidService(
                    "give either reload or restart, not both".into(),
                ));
            }
            (Some(s), None) => Some(FileAction::Reload(s.to_string())),
            (None, Some(s)) => Some(FileAction::Restart(s.to_string())),
            (None, None) => None,
        };
        if let Some(FileAction::Reload(s) | FileAction::Restart(s)) = &action {
            validate_service(s)?;
        }
        crate::template::Template::parse(path, template)?;
        let t = self.model.task_mut(task)?;
        t.dropped.remove(path);
        let file = TaskFile {
            path: path.to_string(),
            template: template.to_string(),
            mode,
            action,
        };
        let action = match t.files.get(path) {
            Some(old) if *old == file => return Ok(()),
            Some(_) => format!("changed file '{path}' of task '{task}'"),
            None => format!("added file '{path}' to task '{task}'"),
        };
        t.files.insert(path.to_string(), file);
        self.out.line(Entity::Task(task.to_string()), &action);
        Ok(())
    }

    /// Removes a file. A conffile is remembered in `dropped`: the task's package then tells
    /// dpkg to delete it from nodes.
    fn file_remove(&mut self, task: &str, path: &str) -> Result<(), ModelError> {
        let t = self.model.task_mut(task)?;
        match t.files.remove(path) {
            Some(f) if f.is_conffile() => {
                t.dropped.insert(path.to_string());
            }
            Some(_) => {}
            None => {
                return Err(ModelError::NoSuchFile {
                    task: task.to_string(),
                    path: path.to_string(),
                });
            }
        }
        let action = format!("removed file '{path}' from task '{task}'");
        self.out.line(Entity::Task(task.to_string()), &action);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Global variables

impl Apply<'_> {
    fn var_set(&mut self, vars: &BTreeMap<String, String>) -> Result<(), ModelError> {
        set_vars(
            &mut self.out,
            &Entity::Global,
            &mut self.model.vars,
            vars,
            |k| format!("set global variable '{k}'"),
        )
    }

    fn var_unset(&mut self, names: &[String]) -> Result<(), ModelError> {
        let vars = &mut self.model.vars;
        self.out.each(&Entity::Global, names, |k| {
            if vars.remove(k).is_none() {
                return Err(ModelError::UnknownVar(k.clone()));
            }
            Ok(Some(format!("unset global variable '{k}'")))
        })
    }
}

#[cfg(test)]
mod tests;
