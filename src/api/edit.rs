//! `POST /api/v1/edit`: the operations that change the model, and the answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
