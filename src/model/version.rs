//! Where package versions come from: the generation each `umc-<host>` and `umc-task-<t>`
//! version derives from, and the version itself, `<FORMAT>.<generation>` ([`version`]).

use std::collections::BTreeMap;

use super::{Model, Node, Task, closure_of};

/// Packaging format. Part of every version (`<FORMAT>.<generation>`) so that a umcd release
/// that changes what the same model renders to can move every version forward.
pub const FORMAT: u64 = 1;

/// The version of every package at `generation`: `<FORMAT>.<generation>`.
pub fn version(generation: u64) -> String {
    format!("{FORMAT}.{generation}")
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

impl Model {
    /// The generation `umc-<host>`'s version derives from; see [`node_generation`].
    pub fn node_generation(&self, node: &Node) -> u64 {
        node_generation(&self.tasks, node, self.vars_generation)
    }

    /// The host-independent part of a task package's version; see [`task_generation`].
    pub fn task_generation(&self, task: &Task) -> u64 {
        task_generation(&self.tasks, task, None)
    }
}
