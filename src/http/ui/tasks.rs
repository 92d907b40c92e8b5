//! The task pages (list, one task with its depends, removes, includes, files and nodes), the
//! file/template editor with validation at the right line and a per-host preview, and the
//! catalog search with the package-name suggestions the forms use.
//!
//! Every form posts to its own route and commits through [`super::edit`]; a refused edit
//! re-renders the page with the message next to the field that caused it (the model is
//! unchanged: `edit` commits nothing on error).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::on;
use serde::Serialize;

use super::{Ctx, EditError, UiRoute, done, edit, encode, error_page, form_value, page, render};
use crate::api::{Op, Role};
use crate::http::AppState;
use crate::http::Verb::{Get, Post};
use crate::model::{self, FileAction, Model, ModelError, Task};
use crate::store::EditOutcome;
use crate::template::{MAX_FILE, Template, TemplateError};

/// This module's templates, by name (registered by [`super::Ui::new`]).
pub const TEMPLATES: &[(&str, &str)] = &[
    ("tasks.html", include_str!("templates/tasks.html")),
    ("tasks_show.html", include_str!("templates/tasks_show.html")),
    ("tasks_file.html", include_str!("templates/tasks_file.html")),
    ("catalog.html", include_str!("templates/catalog.html")),
];

/// This module's routes (built by [`super::routes`]).
pub(super) static ROUTES: &[UiRoute] = &[
    page(Get, "/ui/tasks", |m| on(m, list)),
    page(Post, "/ui/tasks", |m| on(m, create)),
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
    page(Get, "/ui/tasks/{name}/file", |m| on(m, file_page)),
    page(Post, "/ui/tasks/{name}/file", |m| on(m, file_post)),
    page(Post, "/ui/tasks/{name}/file/delete", |m| on(m, file_delete)),
    page(Get, "/ui/catalog", |m| on(m, catalog)),
    page(Get, "/ui/catalog/suggest", |m| on(m, suggest)),
];

/// Nodes listed on a task page; the nodes list (filtered by the task) has them all.
const NODES_SHOWN: usize = 200;
/// Rows of an includes tree (a wide diamond-shaped DAG could otherwise blow up).
const TREE_ROWS: usize = 500;
/// Catalog search results per page.
const CATALOG_HITS: usize = 100;
/// Package-name suggestions per request.
const SUGGESTIONS: usize = 20;

async fn load_model(state: &Arc<AppState>) -> Result<Arc<Model>, Response> {
    let st = state.clone();
    super::blocking(move || Ok(st.app.model()?)).await
}

/// The status and message of a refused edit (the response itself when it is internal).
/// A refused edit: its status, its message, and the model's own error when the model refused.
struct Refusal {
    status: StatusCode,
    message: String,
    model: Option<ModelError>,
}

fn refused(e: EditError) -> Result<Refusal, Box<Response>> {
    match e {
        EditError::Forbidden(message) => Ok(Refusal {
            status: StatusCode::FORBIDDEN,
            message,
            model: None,
        }),
        EditError::Rejected(status, e) => Ok(Refusal {
            status,
            message: e.to_string(),
            model: e.model().cloned(),
        }),
        EditError::Internal(r) => Err(Box::new(r)),
    }
}

/// "<what> (generation N)", plus catalog warnings; "nothing changed" when the edit was a no-op.
fn outcome_message(what: &str, e: &EditOutcome) -> String {
    let mut m = if e.changes.is_empty() {
        format!("Nothing changed (generation {})", e.generation)
    } else {
        format!("{what} (generation {})", e.generation)
    };
    for w in &e.warnings {
        m.push_str(&format!("; warning: {w}"));
    }
    m
}

fn task_url(name: &str) -> String {
    format!("/ui/tasks/{name}")
}

fn file_url(task: &str, path: &str) -> String {
    format!("/ui/tasks/{task}/file?path={}", encode(path))
}

// ---------------------------------------------------------------------------------------------
// The task list

#[derive(Serialize)]
struct TaskRow<'a> {
    name: &'a str,
    description: &'a str,
    depends: usize,
    removes: usize,
    files: usize,
    nodes: usize,
}

#[derive(Serialize, Default)]
struct NewTask {
    name: String,
    description: String,
    error: Option<String>,
}

/// How many nodes run each task, directly or through includes. Nodes share few distinct
/// assignments, so each distinct set's closure is computed once.
fn node_counts(model: &Model) -> BTreeMap<String, usize> {
    let mut sets: BTreeMap<&BTreeSet<String>, usize> = BTreeMap::new();
    for node in model.nodes.values() {
        *sets.entry(&node.tasks).or_default() += 1;
    }
    let mut counts = BTreeMap::new();
    for (tasks, n) in sets {
        for t in model.closure(tasks) {
            *counts.entry(t).or_default() += n;
        }
    }
    counts
}

fn list_page(
    state: &AppState,
    ctx: &Ctx,
    model: &Model,
    status: StatusCode,
    form: NewTask,
) -> Response {
    let counts = node_counts(model);
    let rows: Vec<TaskRow> = model
        .tasks
        .values()
        .map(|t| TaskRow {
            name: &t.name,
            description: &t.description,
            depends: t.depends.len(),
            removes: t.removes.len(),
            files: t.files.len(),
            nodes: counts.get(&t.name).copied().unwrap_or(0),
        })
        .collect();
    let mut page = tera::Context::new();
    page.insert("title", "Tasks");
    page.insert("nav", "tasks");
    page.insert("rows", &rows);
    page.insert("form", &form);
    render(state, ctx, status, "tasks.html", page)
}

async fn list(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
) -> Response {
    let model = match load_model(&state).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    list_page(&state, &ctx, &model, StatusCode::OK, NewTask::default())
}

async fn create(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    body: Bytes,
) -> Response {
    let name = form_value(&body, "name")
        .unwrap_or_default()
        .trim()
        .to_string();
    let description = form_value(&body, "description")
        .unwrap_or_default()
        .trim()
        .replace("\r\n", "\n");
    let mut form = NewTask {
        name: name.clone(),
        description: description.clone(),
        error: None,
    };
    let (status, message) = if name.is_empty() {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "enter a task name".to_string(),
        )
    } else {
        let op = Op::TaskAdd {
            task: name.clone(),
            description: (!description.is_empty()).then_some(description),
        };
        match edit(&state, &ctx, vec![op]).await {
            Ok(e) => {
                let msg = outcome_message(&format!("Created task '{name}'"), &e);
                return done(&state, &ctx, msg, &task_url(&name));
            }
            Err(e) => match refused(e) {
                Ok(r) => (r.status, r.message),
                Err(resp) => return *resp,
            },
        }
    };
    form.error = Some(message);
    let model = match load_model(&state).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    list_page(&state, &ctx, &model, status, form)
}

// ---------------------------------------------------------------------------------------------
// One task

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
        return error_page(
            state,
            Some(ctx),
            StatusCode::NOT_FOUND,
            &format!("unknown task '{name}'"),
        );
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
    let reach = super::pages::runners(model, name);
    let running: Vec<NodeRow> = model
        .nodes
        .values()
        .filter(|n| n.tasks.iter().any(|t| reach.contains(t)))
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
    render(state, ctx, status, "tasks_show.html", page)
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

fn field(body: &[u8], name: &str) -> String {
    form_value(body, name)
        .unwrap_or_default()
        .trim()
        .to_string()
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

// ---------------------------------------------------------------------------------------------
// The file/template editor

/// Lines of a listing around an error; a longer source shows this many either side of it.
const LISTING_CONTEXT: usize = 50;

/// One numbered source line of the listing shown with a template error.
#[derive(Serialize, Debug, PartialEq, Eq)]
struct SourceLine {
    no: usize,
    text: String,
    bad: bool,
}

/// The numbered lines of `source` with line `bad` (1-based) marked; a long source is cut to
/// the lines around `bad`.
fn numbered_source(source: &str, bad: Option<usize>) -> Vec<SourceLine> {
    let lines: Vec<&str> = source.split('\n').collect();
    let (from, to) = match bad {
        Some(b) if lines.len() > 2 * LISTING_CONTEXT + 1 => (
            b.saturating_sub(LISTING_CONTEXT + 1),
            (b + LISTING_CONTEXT).min(lines.len()),
        ),
        _ => (0, lines.len()),
    };
    lines
        .iter()
        .enumerate()
        .skip(from)
        .take(to.saturating_sub(from))
        .map(|(i, l)| SourceLine {
            no: i + 1,
            text: l.strip_suffix('\r').unwrap_or(l).to_string(),
            bad: bad == Some(i + 1),
        })
        .collect()
}

#[derive(Serialize, Default)]
struct FileForm {
    path: String,
    template: String,
    mode: String,
    action: String,
    service: String,
    host: String,
    /// The path is a file the task already ships (offer deleting it).
    exists: bool,
}

#[derive(Serialize, Default)]
struct FileErrors {
    path: Option<String>,
    template: Option<String>,
    mode: Option<String>,
    service: Option<String>,
    host: Option<String>,
    form: Option<String>,
}

#[derive(Default)]
struct FileView {
    form: FileForm,
    errors: FileErrors,
    listing: Option<Vec<SourceLine>>,
    preview: Option<String>,
}

fn file_view(
    state: &AppState,
    ctx: &Ctx,
    model: &Model,
    name: &str,
    status: StatusCode,
    mut view: FileView,
) -> Response {
    let Some(task) = model.tasks.get(name) else {
        return error_page(
            state,
            Some(ctx),
            StatusCode::NOT_FOUND,
            &format!("unknown task '{name}'"),
        );
    };
    view.form.exists = task.files.contains_key(&view.form.path);
    let reach = super::pages::runners(model, name);
    // A select of every host is no use past a few hundred: the first 500 are offered.
    let hosts: Vec<&str> = model
        .nodes
        .values()
        .filter(|n| n.tasks.iter().any(|t| reach.contains(t)))
        .map(|n| n.name.as_str())
        .take(500)
        .collect();
    let title = if view.form.exists {
        format!("{} · {name}", view.form.path)
    } else {
        format!("New file · {name}")
    };
    let mut page = tera::Context::new();
    page.insert("title", &title);
    page.insert("nav", "tasks");
    page.insert("name", name);
    page.insert("task_url", &task_url(name));
    page.insert("hosts", &hosts);
    page.insert("form", &view.form);
    page.insert("errors", &view.errors);
    page.insert("listing", &view.listing);
    page.insert("host_listed", &hosts.contains(&view.form.host.as_str()));
    page.insert("has_preview", &view.preview.is_some());
    page.insert("preview", &view.preview);
    page.insert("max_file", &MAX_FILE);
    render(state, ctx, status, "tasks_file.html", page)
}

async fn file_page(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let path = query
        .as_deref()
        .and_then(|q| form_value(q.as_bytes(), "path"))
        .map(|p| p.trim().to_string())
        .unwrap_or_default();
    let model = match load_model(&state).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut form = FileForm {
        mode: "0644".into(),
        action: "none".into(),
        ..FileForm::default()
    };
    if let Some(task) = model.tasks.get(&name)
        && !path.is_empty()
    {
        let Some(f) = task.files.get(&path) else {
            return error_page(
                &state,
                Some(&ctx),
                StatusCode::NOT_FOUND,
                &format!("task '{name}': no file '{path}'"),
            );
        };
        form.template = f.template.clone();
        form.mode = format!("{:04o}", f.mode);
        (form.action, form.service) = match &f.action {
            Some(FileAction::Reload(s)) => ("reload".into(), s.clone()),
            Some(FileAction::Restart(s)) => ("restart".into(), s.clone()),
            None => ("none".into(), String::new()),
        };
    }
    form.path = path;
    let view = FileView {
        form,
        ..FileView::default()
    };
    file_view(&state, &ctx, &model, &name, StatusCode::OK, view)
}

impl FileErrors {
    /// Where an error about `field` shows: next to its input, else above the form.
    fn slot(&mut self, field: Option<model::Field>) -> &mut Option<String> {
        match field {
            Some(model::Field::Template) => &mut self.template,
            Some(model::Field::Path) => &mut self.path,
            Some(model::Field::Mode) => &mut self.mode,
            Some(model::Field::Service) => &mut self.service,
            _ => &mut self.form,
        }
    }
}

/// A template error as shown next to the textarea, and the line it names.
fn template_error(e: &TemplateError) -> (String, Option<usize>) {
    match e {
        TemplateError::Syntax {
            line,
            column,
            message,
            ..
        } => (
            format!("line {line}, column {column}: {message}"),
            Some(*line),
        ),
        TemplateError::Render {
            host,
            line,
            column,
            message,
            ..
        } => (
            format!("for host '{host}': line {line}, column {column}: {message}"),
            Some(*line),
        ),
        TemplateError::Other { host, message, .. } => {
            (format!("for host '{host}': {message}"), None)
        }
        TemplateError::TooLarge { what, .. } => {
            (format!("{what} is larger than {MAX_FILE} bytes"), None)
        }
        TemplateError::Worker(_) => (e.to_string(), None),
    }
}

/// Parses a posted template and, for a preview, renders it for `host`: the template and
/// host errors (with the source listing marked at the error line) and the preview.
fn check_file(
    model: &Model,
    template: &str,
    path: &str,
    host: &str,
    preview: bool,
) -> (FileErrors, Option<Vec<SourceLine>>, Option<String>) {
    let mut errors = FileErrors::default();
    let mut listing = None;
    let source_name = if path.is_empty() { "template" } else { path };
    let parsed = match Template::parse(source_name, template) {
        Ok(t) => Some(t),
        Err(e) => {
            let (m, line) = template_error(&e);
            errors.template = Some(m);
            if line.is_some() {
                listing = Some(numbered_source(template, line));
            }
            None
        }
    };
    let mut out = None;
    if preview && let Some(t) = parsed {
        let host = host.to_ascii_lowercase();
        match model.nodes.get(&host) {
            None if host.is_empty() => errors.host = Some("choose a host to preview for".into()),
            None => errors.host = Some(format!("unknown node '{host}'")),
            Some(node) => {
                let closure = model.closure(&node.tasks);
                // A posted template has not passed the budget yet: render it in the sandbox.
                drop(t);
                let ctx = model.host_context(node, &closure);
                match crate::sandbox::preview(source_name, template, &ctx) {
                    Ok(o) => out = Some(o),
                    Err(e) => {
                        let (m, line) = template_error(&e);
                        errors.template = Some(m);
                        if line.is_some() {
                            listing = Some(numbered_source(template, line));
                        }
                    }
                }
            }
        }
    }
    (errors, listing, out)
}

async fn file_post(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let model = match load_model(&state).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut form = FileForm {
        path: field(&body, "path"),
        // Browsers send a textarea's lines with CRLF; configuration files want LF.
        template: form_value(&body, "template")
            .unwrap_or_default()
            .replace("\r\n", "\n"),
        mode: field(&body, "mode"),
        action: field(&body, "action"),
        service: field(&body, "service"),
        host: field(&body, "host"),
        exists: false,
    };
    if form.action.is_empty() {
        form.action = "none".into();
    }
    let preview = form_value(&body, "do").as_deref() == Some("preview");
    let mut view = FileView::default();
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    if !model.tasks.contains_key(&name) {
        return error_page(
            &state,
            Some(&ctx),
            StatusCode::NOT_FOUND,
            &format!("unknown task '{name}'"),
        );
    }

    // Parsing and rendering a posted template is CPU work of unknown size: off the async
    // workers, and only for those who may save templates anyway.
    if let Some(r) = super::refuse_below(&state, &ctx, Role::Admin, "save or preview task files") {
        return r;
    }
    let checked = {
        let (model, template, path, host) = (
            model.clone(),
            form.template.clone(),
            form.path.clone(),
            form.host.clone(),
        );
        super::blocking(move || Ok(check_file(&model, &template, &path, &host, preview))).await
    };
    let (errors, listing, preview_out) = match checked {
        Ok(c) => c,
        Err(r) => return r,
    };
    view.errors = errors;
    view.listing = listing;
    if preview {
        if preview_out.is_some() {
            status = StatusCode::OK;
        }
        view.preview = preview_out;
        view.form = form;
        return file_view(&state, &ctx, &model, &name, status, view);
    }

    let mode = if form.mode.is_empty() {
        None
    } else {
        match u32::from_str_radix(&form.mode, 8) {
            Ok(m) => Some(m),
            Err(_) => {
                view.errors.mode = Some(format!(
                    "mode '{}': give an octal file mode such as 0644",
                    form.mode
                ));
                None
            }
        }
    };
    let (reload, restart) = match form.action.as_str() {
        "none" => (None, None),
        "reload" | "restart" if form.service.is_empty() => {
            view.errors.service = Some(format!("enter the service to {}", form.action));
            (None, None)
        }
        "reload" => (Some(form.service.clone()), None),
        "restart" => (None, Some(form.service.clone())),
        other => {
            view.errors.service = Some(format!("action '{other}': choose none, reload or restart"));
            (None, None)
        }
    };
    if form.path.is_empty() {
        view.errors.path = Some("enter the file's absolute path, e.g. /etc/app.conf".into());
    }
    let invalid = view.errors.path.is_some()
        || view.errors.template.is_some()
        || view.errors.mode.is_some()
        || view.errors.service.is_some();
    if invalid {
        view.form = form;
        return file_view(&state, &ctx, &model, &name, status, view);
    }
    let op = Op::TaskFileAdd {
        task: name.clone(),
        path: form.path.clone(),
        template: form.template.clone(),
        mode,
        reload,
        restart,
    };
    match edit(&state, &ctx, vec![op]).await {
        Ok(e) => {
            let msg = outcome_message(&format!("Saved {}", form.path), &e);
            done(&state, &ctx, msg, &file_url(&name, &form.path))
        }
        Err(e) => {
            let r = match refused(e) {
                Ok(r) => r,
                Err(resp) => return *resp,
            };
            if let Some(ModelError::Template(t)) = &r.model {
                view.listing = t
                    .line()
                    .map(|line| numbered_source(&form.template, Some(line)));
            }
            *view
                .errors
                .slot(r.model.as_ref().and_then(ModelError::field)) = Some(r.message);
            let status = r.status;
            view.form = form;
            let model = match load_model(&state).await {
                Ok(m) => m,
                Err(r) => return r,
            };
            file_view(&state, &ctx, &model, &name, status, view)
        }
    }
}

async fn file_delete(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let path = field(&body, "path");
    let op = Op::TaskFileRemove {
        task: name.clone(),
        path: path.clone(),
    };
    match edit(&state, &ctx, vec![op]).await {
        Ok(e) => done(
            &state,
            &ctx,
            outcome_message(&format!("Removed file {path}"), &e),
            &task_url(&name),
        ),
        Err(e) => {
            let Refusal {
                status, message, ..
            } = match refused(e) {
                Ok(r) => r,
                Err(resp) => return *resp,
            };
            let model = match load_model(&state).await {
                Ok(m) => m,
                Err(r) => return r,
            };
            let mut form = FileForm {
                path: path.clone(),
                mode: "0644".into(),
                action: "none".into(),
                ..FileForm::default()
            };
            if let Some(f) = model.tasks.get(&name).and_then(|t| t.files.get(&path)) {
                form.template = f.template.clone();
                form.mode = format!("{:04o}", f.mode);
                (form.action, form.service) = match &f.action {
                    Some(FileAction::Reload(s)) => ("reload".into(), s.clone()),
                    Some(FileAction::Restart(s)) => ("restart".into(), s.clone()),
                    None => ("none".into(), String::new()),
                };
            }
            let view = FileView {
                form,
                errors: FileErrors {
                    form: Some(message),
                    ..FileErrors::default()
                },
                ..FileView::default()
            };
            file_view(&state, &ctx, &model, &name, status, view)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The catalog

#[derive(Serialize)]
struct Hit<'a> {
    name: &'a str,
    version: &'a str,
    description: &'a str,
    catalog: &'a str,
}

#[derive(Serialize)]
struct CatalogRow {
    name: String,
    packages: u64,
    verified: bool,
    source: String,
}

async fn catalog(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query
        .as_deref()
        .and_then(|q| form_value(q.as_bytes(), "q"))
        .map(|q| q.trim().to_string())
        .unwrap_or_default();
    let st = state.clone();
    let catalogs = match super::blocking(move || st.app.catalogs()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let catalogs: Vec<CatalogRow> = catalogs
        .into_iter()
        .map(|c| CatalogRow {
            source: if c.url.is_empty() {
                "uploaded file".into()
            } else {
                format!("{} {}", c.url, c.suite)
            },
            name: c.name,
            packages: c.packages,
            verified: c.verified,
        })
        .collect();
    let index = state.app.catalog_index();
    let hits: Vec<Hit> = index
        .search(&q, CATALOG_HITS)
        .into_iter()
        .map(|e| Hit {
            name: &e.name,
            version: &e.version,
            description: e.description.lines().next().unwrap_or(""),
            catalog: &e.catalog,
        })
        .collect();
    let mut page = tera::Context::new();
    page.insert("title", "Catalog");
    page.insert("nav", "catalog");
    page.insert("q", &q);
    page.insert("hits", &hits);
    page.insert("cap", &CATALOG_HITS);
    page.insert("indexed", &index.len());
    page.insert("catalogs", &catalogs);
    render(&state, &ctx, StatusCode::OK, "catalog.html", page)
}

/// Package names for the autocomplete: names starting with `q` first, then names containing
/// it; each once; at most [`SUGGESTIONS`].
fn suggestions(index: &crate::catalog::SearchIndex, q: &str) -> Vec<String> {
    let term = q.trim().to_lowercase();
    let mut seen = BTreeSet::new();
    index
        .search(&term, SUGGESTIONS * 4)
        .into_iter()
        .filter(|e| e.name.contains(&term))
        .filter(|e| seen.insert(e.name.as_str()))
        .take(SUGGESTIONS)
        .map(|e| e.name.clone())
        .collect()
}

async fn suggest(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let q = query
        .as_deref()
        .and_then(|q| form_value(q.as_bytes(), "q"))
        .unwrap_or_default();
    let names = suggestions(&state.app.catalog_index(), &q);
    let body = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.into_bytes(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn numbered_source_marks_the_bad_line() {
        let rows = numbered_source("a\nb\r\nc", Some(2));
        assert_eq!(
            rows,
            vec![
                SourceLine {
                    no: 1,
                    text: "a".into(),
                    bad: false
                },
                SourceLine {
                    no: 2,
                    text: "b".into(),
                    bad: true
                },
                SourceLine {
                    no: 3,
                    text: "c".into(),
                    bad: false
                },
            ]
        );
        let long: String = (1..=1000).map(|i| format!("l{i}\n")).collect();
        let rows = numbered_source(&long, Some(500));
        assert_eq!(rows.first().map(|r| r.no), Some(500 - LISTING_CONTEXT));
        assert_eq!(rows.last().map(|r| r.no), Some(500 + LISTING_CONTEXT));
        assert_eq!(rows.iter().filter(|r| r.bad).count(), 1);
        let rows = numbered_source(&long, Some(1));
        assert_eq!(rows.first().map(|r| r.no), Some(1));
        assert!(numbered_source(&long, None).len() > 1000);
    }

    /// A refused file shows its error at the input it is about, as the model's error names
    /// it, and a template error marks its line.
    #[test]
    fn file_errors_show_at_their_field() {
        struct NoTokens;
        impl crate::model::TokenSource for NoTokens {
            fn token(&mut self) -> String {
                String::new()
            }
        }
        let mut m = Model::default();
        m.tasks.insert("web".into(), task("web", &[]));
        let add =
            |task: &str, path: &str, template: &str, mode, reload: Option<&str>| Op::TaskFileAdd {
                task: task.into(),
                path: path.into(),
                template: template.into(),
                mode,
                reload: reload.map(Into::into),
                restart: None,
            };
        let cases = [
            (add("web", "etc/x", "", None, None), "path"),
            (add("web", "/etc/x", "", Some(0o17777), None), "mode"),
            (add("web", "/etc/x", "", None, Some("a;b")), "service"),
            (add("web", "/etc/x", "a\n{{ b", None, None), "template"),
            // An unknown task named like a service: above the form (matching the message's
            // text put it at the service).
            (add("service-web", "/etc/x", "", None, None), "form"),
        ];
        for (op, want) in cases {
            let e = m.clone().apply(&op, &mut NoTokens).expect_err("refused");
            let mut errors = FileErrors::default();
            *errors.slot(e.field()) = Some(e.to_string());
            let slots = [
                ("path", &errors.path),
                ("mode", &errors.mode),
                ("service", &errors.service),
                ("template", &errors.template),
                ("form", &errors.form),
            ];
            let at: Vec<&str> = slots
                .iter()
                .filter(|(_, v)| v.is_some())
                .map(|(k, _)| *k)
                .collect();
            assert_eq!(at, [want], "{e}");
            if let ModelError::Template(t) = &e {
                assert_eq!(t.line(), Some(2), "{e}");
            }
        }
        let conflict = ModelError::PathConflict {
            node: "a.example".into(),
            path: "/etc/x".into(),
            a: "web".into(),
            b: "db".into(),
        };
        assert_eq!(conflict.field(), Some(model::Field::Path));
    }

    #[test]
    fn suggestions_are_names_each_once() {
        let idx = crate::catalog::SearchIndex::new(
            [
                ("a", "nginx", "1", "web server"),
                ("b", "nginx", "2", "web server"),
                ("a", "libnginx-mod", "1", "module"),
                ("a", "apache2", "1", "like nginx"),
            ]
            .map(|(c, n, v, d)| (c.into(), n.into(), v.into(), d.into())),
        );
        assert_eq!(suggestions(&idx, "nginx"), vec!["nginx", "libnginx-mod"]);
        assert!(suggestions(&idx, "").is_empty());
    }
}
