//! The rules that span entities, checked on the whole model after every edit: file paths and
//! services again, package-name collisions, unknown includes, depends-vs-removes conflicts per
//! closure; and the renders an edit could break ([`Model::validate_renders`]).

use std::collections::{BTreeMap, BTreeSet};

use super::relation::relation_packages;
use super::{
    Entity, FileAction, Model, ModelError, host_package, task_package, validate_file_path,
    validate_service,
};
use crate::api::SshTarget;

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

impl Model {
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
    use super::super::testing::edit;
    use super::super::{ConffilePolicy, Node, PreviousToken, Task, TaskFile};
    use super::*;
    use crate::api::Op;

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
}
