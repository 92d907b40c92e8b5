//! `umc-admin task …`

use clap::Subcommand;

use super::{CliResult, commit, print_json, print_table, usage};
use crate::api::Op;
use crate::client::Client;

#[derive(Subcommand)]
pub(super) enum TaskCmd {
    /// Add a task
    Add {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Remove a task (it is also dropped from nodes and including tasks)
    Rm { name: String },
    /// Show a task
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List tasks
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add dependencies: 'nginx-light'  'php8.2-fpm (>= 8.2)'  'mawk | gawk'
    Depend {
        task: String,
        #[arg(required = true)]
        relations: Vec<String>,
        /// Accept package names that no catalog knows
        #[arg(long)]
        force: bool,
    },
    /// Drop dependencies on packages
    Undepend {
        task: String,
        #[arg(required = true)]
        packages: Vec<String>,
    },
    /// Remove packages from nodes (Conflicts:)
    Remove {
        task: String,
        #[arg(required = true)]
        packages: Vec<String>,
        /// Accept package names that no catalog knows
        #[arg(long)]
        force: bool,
    },
    /// Stop removing packages
    Unremove {
        task: String,
        #[arg(required = true)]
        packages: Vec<String>,
    },
    /// Include other tasks, recursively
    Include {
        task: String,
        #[arg(required = true)]
        subtasks: Vec<String>,
    },
    /// Stop including tasks
    Exclude {
        task: String,
        #[arg(required = true)]
        subtasks: Vec<String>,
    },
    /// Files the task ships, rendered per host from Tera templates
    #[command(subcommand)]
    File(FileCmd),
}

#[derive(Subcommand)]
pub(super) enum FileCmd {
    /// Add or replace a file, from a local template file
    Add {
        task: String,
        /// Absolute path on the node; under /etc it becomes a conffile
        path: String,
        /// Local file holding the Tera template
        #[arg(long, value_name = "FILE")]
        template: std::path::PathBuf,
        /// Octal mode
        #[arg(long, default_value = "0644")]
        mode: String,
        /// Reload this service when the file changed on a node
        #[arg(long, value_name = "SERVICE", conflicts_with = "restart")]
        reload: Option<String>,
        /// Restart this service when the file changed on a node
        #[arg(long, value_name = "SERVICE")]
        restart: Option<String>,
    },
    /// Stop shipping a file
    Rm { task: String, path: String },
    /// List a task's files
    List {
        task: String,
        #[arg(long)]
        json: bool,
    },
}

fn file_cmd(c: &Client, cmd: FileCmd) -> CliResult {
    let op = match cmd {
        FileCmd::Add {
            task,
            path,
            template,
            mode,
            reload,
            restart,
        } => {
            let mode = u32::from_str_radix(mode.trim_start_matches("0o"), 8)
                .map_err(|_| usage(format!("--mode '{mode}': expected an octal mode like 0644")))?;
            let text = std::fs::read(&template)
                .map_err(|e| usage(format!("reading {}: {e}", template.display())))?;
            let template = String::from_utf8(text).map_err(|_| {
                usage(format!(
                    "{}: a template must be UTF-8 text",
                    template.display()
                ))
            })?;
            Op::TaskFileAdd {
                task,
                path,
                template,
                mode: Some(mode),
                reload,
                restart,
            }
        }
        FileCmd::Rm { task, path } => Op::TaskFileRemove { task, path },
        FileCmd::List { task, json } => {
            let t = c.task(&task)?;
            if json {
                return print_json(&t.files);
            }
            let rows: Vec<Vec<String>> = t
                .files
                .iter()
                .map(|f| {
                    vec![
                        f.path.clone(),
                        f.mode.clone(),
                        if f.conffile { "conffile" } else { "file" }.to_string(),
                        f.action.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            print_table(&["PATH", "MODE", "KIND", "ON CHANGE"], &rows);
            return Ok(());
        }
    };
    commit(c, vec![op], false)
}

pub(super) fn run(c: &Client, cmd: TaskCmd) -> CliResult {
    let mut force = false;
    let op = match cmd {
        TaskCmd::Show { name, json } => {
            let t = c.task(&name)?;
            if json {
                return print_json(&t);
            }
            outln!("task:        {}", t.name);
            outln!("package:     {} {}", t.package, t.version);
            outln!("description: {}", t.description);
            outln!("depends:     {}", list(&t.depends, ", "));
            outln!("removes:     {}", list(&t.removes, " "));
            outln!("includes:    {}", list(&t.includes, " "));
            outln!("nodes:       {}", list(&t.nodes, " "));
            let files: Vec<String> = t.files.iter().map(|f| f.path.clone()).collect();
            outln!("files:       {}", list(&files, " "));
            return Ok(());
        }
        TaskCmd::List { json } => {
            let tasks = c.tasks()?;
            if json {
                return print_json(&tasks);
            }
            let rows: Vec<Vec<String>> = tasks
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.version.clone(),
                        t.nodes.len().to_string(),
                        t.description.clone(),
                    ]
                })
                .collect();
            print_table(&["TASK", "VERSION", "NODES", "DESCRIPTION"], &rows);
            return Ok(());
        }
        TaskCmd::Add { name, description } => Op::TaskAdd {
            task: name,
            description,
        },
        TaskCmd::Rm { name } => Op::TaskRemove { task: name },
        TaskCmd::Depend {
            task,
            relations,
            force: f,
        } => {
            force = f;
            Op::TaskDepend { task, relations }
        }
        TaskCmd::Undepend { task, packages } => Op::TaskUndepend { task, packages },
        TaskCmd::Remove {
            task,
            packages,
            force: f,
        } => {
            force = f;
            Op::TaskRemovePackage { task, packages }
        }
        TaskCmd::Unremove { task, packages } => Op::TaskUnremovePackage { task, packages },
        TaskCmd::Include { task, subtasks } => Op::TaskInclude { task, subtasks },
        TaskCmd::Exclude { task, subtasks } => Op::TaskExclude { task, subtasks },
        TaskCmd::File(f) => return file_cmd(c, f),
    };
    commit(c, vec![op], force)
}

fn list(v: &[String], sep: &str) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(sep)
    }
}
