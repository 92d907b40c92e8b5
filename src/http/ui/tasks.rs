//! The task list (`/ui/tasks`): every task with its counts, and the form that creates one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::on;
use serde::Serialize;

use super::common::{Ctx, done, edit, field, load_model, outcome_message, refused, render};
use super::task::task_url;
use super::{UiRoute, page};
use crate::api::Op;
use crate::http::AppState;
use crate::http::Verb::{Get, Post};
use crate::model::Model;

pub(super) const TEMPLATE: (&str, &str) = ("tasks.html", include_str!("templates/tasks.html"));

/// This module's routes (built by [`super::routes`]).
pub(super) static ROUTES: &[UiRoute] = &[
    page(Get, "/ui/tasks", |m| on(m, list)),
    page(Post, "/ui/tasks", |m| on(m, create)),
];

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
    let name = field(&body, "name");
    let description = field(&body, "description").replace("\r\n", "\n");
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
