//! One task (`/ui/tasks/{name}`): its description, depends, removes, includes tree, files and
//! nodes, and the forms that change them or delete the task.
//!
//! Every form posts to its own route and commits through [`super::common::edit`]; a refused
//! edit re-renders the page with the message next to the field that caused it (the model is
//! unchanged: `edit` commits nothing on error).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::on;
use serde::Serialize;

use super::common::{
    Ctx, done, edit, encode, field, load_model, not_found, outcome_message, refused, render,
};
use super::nodes::running;
use super::task_file::file_url;
use super::{UiRoute, page};
use crate::api::Op;
use crate::http::AppState;
use crate::http::Verb::{Get, Post};
use crate::model::{FileAction, Model, Task};

pub(super) const TEMPLATE: (&str, &str) = ("task.html", include_str!("templates/task.html"));

/// This module's routes (built by [`super::routes`]).
pub(super) static ROUTES: &[UiRoute] = &[
    page(Get, "/ui/tasks/{name}", |m| on(m, show)),
    page(Post, "/ui/tasks/{name}/describe", |m| on(m, describe)),
    page(Post, "/ui/tasks/{name}/delete", |m| on(m, delete)),
    page(Post, "/ui/tasks/{name}/depends", |m| {
        on(m, |s, c, p, b| list_edit(s, c, p, b, ListEdit::Depend))
    }),
    page(Post, "/ui/tasks/{name}/undepend", |m| {
        on(m, |s, c, p, b| list_edit(s, c, p, b, ListEdit::Undepend))
    }),
    page(Post, "/ui/tasks/{name}/removes", |m| {
        on(m, |s, c, p, b| list_edit(s, c, p, b, ListEdit::Remove))
    }),
    page(Post, "/ui/tasks/{name}/unremove", |m| {
        on(m, |s, c, p, b| list_edit(s, c, p, b, ListEdit::Unremove))
    }),
    page(Post, "/ui/tasks/{name}/includes", |m| {
        on(m, |s, c, p, b| list_edit(s, c, p, b, ListEdit::Include))
    }),
    page(Post, "/ui/tasks/{name}/exclude", |m| {
        on(m, |s, c, p, b| list_edit(s, c, p, b, ListEdit::Exclude))
    }),
];

/// Nodes listed on a task page; the nodes list (filtered by the task) has them all.
const NODES_SHOWN: usize = 200;
/// Rows of an includes tree (a wide diamond-shaped DAG could otherwise blow up).
const TREE_ROWS: usize = 500;

pub(super) fn task_url(name: &str) -> String {
    format!("/ui/tasks/{name}")
}

/// The 404 page of a task that does not exist.
pub(super) fn unknown_task(state: &AppState, ctx: &Ctx, name: &str) -> Response {
    not_found(state, ctx, &format!("unknown task '{name}'"))
}

/// One row of the includes tree, in depth-first order. The template opens a nested list
/// after a row with `open` and closes `close.len()` levels after a row.
#[derive(Serialize, Debug, PartialEq, Eq)]
struct TreeRow {
    name: String,
    depth: usize,
    /// A direct include of the task (it gets an "exclude" button).
    direct: bool,
    /// No such task (cannot happen in a valid model; shown rather than hidden).
    missing: bool,
    /// Already on the path from the root (the model forbids cycles; never recursed into).
    cycle: bool,
    open: bool,
    close: Vec<()>,
}

/// The includes of `root`, recursively, as [`TreeRow`]s (at most `max` rows).
fn includes_tree(tasks: &BTreeMap<String, Task>, root: &str, max: usize) -> Vec<TreeRow> {
    fn walk(
        tasks: &BTreeMap<String, Task>,
        name: &str,
        depth: usize,
        path: &mut Vec<String>,
        out: &mut Vec<TreeRow>,
        max: usize,
    ) {
        let Some(task) = tasks.get(name) else {
            return;
        };
        for sub in &task.includes {
            if out.len() >= max {
                return;
            }
            let missing = !tasks.contains_key(sub);
            let cycle = path.iter().any(|p| p == sub);
            let open = !missing && !cycle && tasks.get(sub).is_some_and(|t| !t.includes.is_empty());
            out.push(TreeRow {
                name: sub.clone(),
                depth,
                direct: depth == 0,
                missing,
                cycle,
                open,
                close: Vec::new(),
            });
            if open {
                path.push(sub.clone());
                walk(tasks, sub, depth + 1, path, out, max);
                path.pop();
                if let Some(last) = out.last_mut() {
                    last.close.push(());
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut path = vec![root.to_string()];
    walk(tasks, root, 0, &mut path, &mut out, max);
    out
}

#[derive(Serialize)]
struct FileRow {
    path: String,
    href: String,
    mode: String,
    conffile: bool,
    action: Option<String>,
    size: usize,
}

fn action_text(a: &Option<FileAction>) -> Option<String> {
    match a {
        Some(FileAction::Reload(s)) => Some(format!("reload {s}")),
        Some(FileAction::Restart(s)) => Some(format!("restart {s}")),
        None => None,
    }
}

#[derive(Serialize)]
struct NodeRow<'a> {
    host: &'a str,
    direct: bool,
}

/// The values and the errors of the task page's forms, one slot per form.
#[derive(Serialize, Default, Clone)]
struct TaskFields {
    description: Option<String>,
    relation: Option<String>,
    package: Option<String>,
    subtask: Option<String>,
    delete: Option<String>,
}

#[derive(Clone, Copy)]
enum Field {
    Description,
    Relation,
    Package,
    Subtask,
    Delete,
}

impl TaskFields {
    fn slot(&mut self, f: Field) -> &mut Option<String> {
        match f {
            Field::Description => &mut self.description,
            Field::Relation => &mut self.relation,
            Field::Package => &mut self.package,
            Field::Subtask => &mut self.subtask,
            Field::Delete => &mut self.delete,
        }
    }
}

fn task_page(
    state: &AppState,
    ctx: &Ctx,
    model: &Model,
    name: &str,
    status: StatusCode,
    form: TaskFields,
    errors: TaskFields,
) -> Response {
    let Some(task) = model.tasks.get(name) else {
        return unknown_task(state, ctx, name);
    };
    let files: Vec<FileRow> = task
        .files
        .values()
        .map(|f| FileRow {
            path: f.path.clone(),
            href: file_url(name, &f.path),
            mode: format!("{:04o}", f.mode),
            conffile: f.is_conffile(),
            action: action_text(&f.action),
            size: f.template.len(),
        })
        .collect();
    let running: Vec<NodeRow> = running(model, name)
        .map(|n| NodeRow {
            host: &n.name,
            direct: n.tasks.contains(name),
        })
        .collect();
    let included_by: Vec<&str> = model
        .tasks
        .values()
        .filter(|t| t.includes.contains(name))
        .map(|t| t.name.as_str())
        .collect();
    let others: Vec<&str> = model
        .tasks
        .keys()
        .filter(|t| t.as_str() != name && !task.includes.contains(*t))
        .map(String::as_str)
        .collect();
    let mut page = tera::Context::new();
    page.insert("title", &format!("Task {name}"));
    page.insert("nav", "tasks");
    page.insert("name", name);
    page.insert("description", &task.description);
    page.insert("depends", &task.depends);
    page.insert("removes", &task.removes);
    page.insert("tree", &includes_tree(&model.tasks, name, TREE_ROWS));
    page.insert("tree_cap", &TREE_ROWS);
    page.insert("included_by", &included_by);
    page.insert("others", &others);
    page.insert("files", &files);
    page.insert("new_file", &format!("/ui/tasks/{name}/file"));
    page.insert("node_total", &running.len());
    page.insert(
        "nodes",
        &running.into_iter().take(NODES_SHOWN).collect::<Vec<_>>(),
    );
    page.insert("nodes_cap", &NODES_SHOWN);
    page.insert("all_nodes", &format!("/ui/nodes?task={}", encode(name)));
    page.insert("bulk", &format!("/ui/bulk?task={}", encode(name)));
    page.insert("generation", &task.generation);
    page.insert("form", &form);
    page.insert("errors", &errors);
    render(state, ctx, status, "task.html", page)
}

async fn show(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    Path(name): Path<String>,
) -> Response {
    let model = match load_model(&state).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    task_page(
        &state,
        &ctx,
        &model,
        &name,
        StatusCode::OK,
        TaskFields::default(),
        TaskFields::default(),
    )
}

/// Commits `op` for the form `field` (whose submitted value was `value`): on success back to
/// the task page with `what` as the message, else the task page with the error at the field.
async fn task_edit(
    state: Arc<AppState>,
    ctx: Ctx,
    name: String,
    field: Field,
    value: String,
    op: Result<Op, String>,
    what: String,
) -> Response {
    let result = match op {
        Err(m) => Err((StatusCode::UNPROCESSABLE_ENTITY, m)),
        Ok(op) => match edit(&state, &ctx, vec![op]).await {
            Ok(e) => Ok(e),
            Err(e) => match refused(e) {
                Ok(r) => Err((r.status, r.message)),
                Err(resp) => return *resp,
            },
        },
    };
    let (status, message) = match result {
        Ok(e) => {
            let to = if matches!(field, Field::Delete) {
                "/ui/tasks".to_string()
            } else {
                task_url(&name)
            };
            return done(&state, &ctx, outcome_message(&what, &e), &to);
        }
        Err(r) => r,
    };
    let model = match load_model(&state).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut form = TaskFields::default();
    let mut errors = TaskFields::default();
    *form.slot(field) = Some(value);
    *errors.slot(field) = Some(message);
    task_page(&state, &ctx, &model, &name, status, form, errors)
}

fn required(value: &str, what: &str) -> Result<(), String> {
    if value.is_empty() {
        Err(format!("enter {what}"))
    } else {
        Ok(())
    }
}

async fn describe(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let description = field(&body, "description").replace("\r\n", "\n");
    let op = Op::TaskSet {
        task: name.clone(),
        description: description.clone(),
    };
    let what = "Saved the description".to_string();
    task_edit(
        state,
        ctx,
        name,
        Field::Description,
        description,
        Ok(op),
        what,
    )
    .await
}

/// The six forms that add or take away one item of a task's lists.
#[derive(Clone, Copy)]
enum ListEdit {
    Depend,
    Undepend,
    Remove,
    Unremove,
    Include,
    Exclude,
}

impl ListEdit {
    /// The form field, what to ask for when it is empty, where errors show, and whether an
    /// adding form keeps what was typed on error.
    fn form(self) -> (&'static str, &'static str, Field, bool) {
        use ListEdit::*;
        match self {
            Depend => (
                "relation",
                "a relation, e.g. nginx (>= 1.22)",
                Field::Relation,
                true,
            ),
            Undepend => (
                "relation",
                "the dependency to remove",
                Field::Relation,
                false,
            ),
            Remove => ("package", "a package name", Field::Package, true),
            Unremove => ("package", "the package to keep", Field::Package, false),
            Include => ("subtask", "a task name", Field::Subtask, true),
            Exclude => ("subtask", "the task to exclude", Field::Subtask, false),
        }
    }

    fn op(self, task: String, v: String) -> Op {
        use ListEdit::*;
        match self {
            Depend => Op::TaskDepend {
                task,
                relations: vec![v],
            },
            Undepend => Op::TaskUndepend {
                task,
                packages: vec![v],
            },
            Remove => Op::TaskRemovePackage {
                task,
                packages: vec![v],
            },
            Unremove => Op::TaskUnremovePackage {
                task,
                packages: vec![v],
            },
            Include => Op::TaskInclude {
                task,
                subtasks: vec![v],
            },
            Exclude => Op::TaskExclude {
                task,
                subtasks: vec![v],
            },
        }
    }

    fn done(self, task: &str, v: &str) -> String {
        use ListEdit::*;
        match self {
            Depend => format!("Added dependency '{v}'"),
            Undepend => format!("Removed dependency '{v}'"),
            Remove => format!("Nodes running '{task}' now remove '{v}'"),
            Unremove => format!("No longer removing '{v}'"),
            Include => format!("Included task '{v}'"),
            Exclude => format!("Excluded task '{v}'"),
        }
    }
}

/// `POST /ui/tasks/{name}/depends|undepend|removes|unremove|includes|exclude`.
async fn list_edit(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    Path(name): Path<String>,
    body: Bytes,
    edit: ListEdit,
) -> Response {
    let (key, ask, at, keep) = edit.form();
    let value = field(&body, key);
    let op = required(&value, ask).map(|_| edit.op(name.clone(), value.clone()));
    let what = edit.done(&name, &value);
    let typed = if keep { value } else { String::new() };
    task_edit(state, ctx, name, at, typed, op, what).await
}

async fn delete(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    Path(name): Path<String>,
) -> Response {
    let op = Op::TaskRemove { task: name.clone() };
    let what = format!("Removed task '{name}'");
    task_edit(state, ctx, name, Field::Delete, String::new(), Ok(op), what).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn task(name: &str, includes: &[&str]) -> Task {
        Task {
            name: name.into(),
            description: String::new(),
            depends: Vec::new(),
            removes: BTreeSet::new(),
            includes: includes.iter().map(|s| s.to_string()).collect(),
            files: BTreeMap::new(),
            dropped: BTreeSet::new(),
            generation: 1,
        }
    }

    fn tasks(list: &[(&str, &[&str])]) -> BTreeMap<String, Task> {
        list.iter()
            .map(|(n, i)| (n.to_string(), task(n, i)))
            .collect()
    }

    fn shape(rows: &[TreeRow]) -> Vec<(String, usize, bool, usize)> {
        rows.iter()
            .map(|r| (r.name.clone(), r.depth, r.open, r.close.len()))
            .collect()
    }

    #[test]
    fn includes_tree_nests_and_closes_every_level() {
        let t = tasks(&[
            ("web", &["base", "tls"]),
            ("tls", &["base", "certs"]),
            ("certs", &["base"]),
            ("base", &[]),
        ]);
        let rows = includes_tree(&t, "web", 100);
        assert_eq!(
            shape(&rows),
            vec![
                ("base".into(), 0, false, 0),
                ("tls".into(), 0, true, 0),
                ("base".into(), 1, false, 0),
                ("certs".into(), 1, true, 0),
                // Closes certs' list and tls' list.
                ("base".into(), 2, false, 2),
            ]
        );
        assert!(rows[0].direct && rows[1].direct && !rows[2].direct);
        let opened = rows.iter().filter(|r| r.open).count();
        let closed: usize = rows.iter().map(|r| r.close.len()).sum();
        assert_eq!(opened, closed);
    }

    #[test]
    fn includes_tree_guards_cycles_missing_tasks_and_size() {
        let t = tasks(&[("a", &["b", "ghost"]), ("b", &["a"])]);
        let rows = includes_tree(&t, "a", 100);
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].name.as_str(), rows[0].open), ("b", true));
        assert!(rows[1].cycle && !rows[1].open, "{rows:?}");
        assert_eq!(rows[1].close.len(), 1);
        assert!(rows[2].missing);
        // A cut tree still closes what it opened.
        let rows = includes_tree(&t, "a", 1);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].close.len(), 1);
        assert!(includes_tree(&t, "nothing", 10).is_empty());
    }
}
