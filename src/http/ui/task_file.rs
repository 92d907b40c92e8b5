//! The file/template editor (`/ui/tasks/{name}/file`): a task file's path, mode, action and
//! template, validated at the right line, previewed for one host in the sandbox, saved or
//! deleted.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::on;
use serde::Serialize;

use super::common::{
    Ctx, Refusal, blocking, done, edit, encode, field, form_value, load_model, not_found,
    outcome_message, query_field, refuse_below, refused, render,
};
use super::nodes::running;
use super::task::{task_url, unknown_task};
use super::{UiRoute, page};
use crate::api::{Op, Role};
use crate::http::AppState;
use crate::http::Verb::{Get, Post};
use crate::model::{self, FileAction, Model, ModelError, TaskFile};
use crate::template::{MAX_FILE, Template, TemplateError};

pub(super) const TEMPLATE: (&str, &str) =
    ("task_file.html", include_str!("templates/task_file.html"));

/// This module's routes (built by [`super::routes`]).
pub(super) static ROUTES: &[UiRoute] = &[
    page(Get, "/ui/tasks/{name}/file", |m| on(m, file_page)),
    page(Post, "/ui/tasks/{name}/file", |m| on(m, file_post)),
    page(Post, "/ui/tasks/{name}/file/delete", |m| on(m, file_delete)),
];

pub(super) fn file_url(task: &str, path: &str) -> String {
    format!("/ui/tasks/{task}/file?path={}", encode(path))
}

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

impl FileForm {
    /// The form for `path`: what the task ships there (`file`), or a new file's defaults.
    fn shown(path: String, file: Option<&TaskFile>) -> FileForm {
        let (template, mode, (action, service)) = match file {
            Some(f) => (
                f.template.clone(),
                f.mode,
                match &f.action {
                    Some(FileAction::Reload(s)) => ("reload".into(), s.clone()),
                    Some(FileAction::Restart(s)) => ("restart".into(), s.clone()),
                    None => ("none".into(), String::new()),
                },
            ),
            None => (String::new(), 0o644, ("none".into(), String::new())),
        };
        FileForm {
            path,
            template,
            mode: format!("{mode:04o}"),
            action,
            service,
            ..FileForm::default()
        }
    }
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
        return unknown_task(state, ctx, name);
    };
    view.form.exists = task.files.contains_key(&view.form.path);
    // A select of every host is no use past a few hundred: the first 500 are offered.
    let hosts: Vec<&str> = running(model, name)
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
    render(state, ctx, status, "task_file.html", page)
}

async fn file_page(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let path = query_field(query.as_deref(), "path");
    let model = match load_model(&state).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let stored = model.tasks.get(&name).map(|t| t.files.get(&path));
    if let Some(None) = stored
        && !path.is_empty()
    {
        return not_found(&state, &ctx, &format!("task '{name}': no file '{path}'"));
    }
    let form = FileForm::shown(path, stored.flatten());
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
        return unknown_task(&state, &ctx, &name);
    }

    // Parsing and rendering a posted template is CPU work of unknown size: off the async
    // workers, and only for those who may save templates anyway.
    if let Some(r) = refuse_below(&state, &ctx, Role::Admin, "save or preview task files") {
        return r;
    }
    let checked = {
        let (model, template, path, host) = (
            model.clone(),
            form.template.clone(),
            form.path.clone(),
            form.host.clone(),
        );
        blocking(move || Ok(check_file(&model, &template, &path, &host, preview))).await
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
            let stored = model.tasks.get(&name).and_then(|t| t.files.get(&path));
            let form = FileForm::shown(path, stored);
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let web = Op::TaskAdd {
            task: "web".into(),
            description: None,
        };
        m.apply(&web, &mut NoTokens).expect("add task web");
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
}
