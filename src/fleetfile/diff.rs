//! The edit from one model to another: [`diff_ops`].

use std::collections::{BTreeMap, BTreeSet};

use crate::api::{Op, SshTarget};
use crate::model::{ConffilePolicy, FileAction, Model, Node, Task, parse_relation};

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
