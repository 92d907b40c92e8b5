//! Bulk assignment (`/ui/bulk`): nodes picked by a filter, tasks to assign or unassign, a diff
//! to confirm (`/ui/bulk/preview`), and every change as one generation (`/ui/bulk/apply`),
//! refused when the fleet moved under the confirmed diff.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::on;
use bytes::Bytes;
use serde::Serialize;

use super::common::{
    Ctx, EditError, done, edit, edit_error_page, encode, fleet_view, form_pairs, load_model,
    refuse_below, render,
};
use super::nodes::Filter;
use super::{UiRoute, page};
use crate::api::{Op, Role};
use crate::app::reads::FleetView;
use crate::http::AppState;
use crate::http::Verb::{Get, Post};
use crate::model::{Model, normalize_host};
use crate::report::State as HostState;

pub(super) const TEMPLATE: (&str, &str) = ("bulk.html", include_str!("templates/bulk.html"));
pub(super) const CONFIRM_TEMPLATE: (&str, &str) = (
    "bulk_confirm.html",
    include_str!("templates/bulk_confirm.html"),
);

/// This module's routes (built by [`super::routes`]).
pub(super) static ROUTES: &[UiRoute] = &[
    page(Get, "/ui/bulk", |m| on(m, bulk)),
    page(Post, "/ui/bulk/preview", |m| on(m, bulk_preview)),
    page(Post, "/ui/bulk/apply", |m| on(m, bulk_apply)),
];

/// Most nodes the bulk page lists (and so may select) at once.
const BULK_SHOWN: usize = 1000;

/// What the bulk form carries: the filter it was drawn from, the chosen hosts and tasks.
#[derive(Default, Debug)]
struct BulkForm {
    filter: Filter,
    hosts: Vec<String>,
    assign: Vec<String>,
    unassign: Vec<String>,
    /// The digest of the diff the user confirmed ([`digest`]).
    digest: String,
}

impl BulkForm {
    fn parse(body: &[u8]) -> BulkForm {
        let mut f = BulkForm::default();
        let mut hosts = BTreeSet::new();
        let mut assign = BTreeSet::new();
        let mut unassign = BTreeSet::new();
        for (k, v) in form_pairs(body) {
            let v = v.trim().to_string();
            match k.as_str() {
                "q" => f.filter.q = v.to_ascii_lowercase(),
                "state" => f.filter.state = v,
                "task" => f.filter.task = v,
                "host" if !v.is_empty() => {
                    hosts.insert(normalize_host(&v).unwrap_or(v));
                }
                "assign" if !v.is_empty() => {
                    assign.insert(v);
                }
                "unassign" if !v.is_empty() => {
                    unassign.insert(v);
                }
                "digest" => f.digest = v,
                _ => {}
            }
        }
        f.hosts = hosts.into_iter().collect();
        f.assign = assign.into_iter().collect();
        f.unassign = unassign.into_iter().collect();
        f
    }
}

#[derive(Serialize, Default)]
struct BulkErrors {
    hosts: Option<String>,
    tasks: Option<String>,
}

#[derive(Serialize)]
struct HostPick<'a> {
    host: &'a str,
    state: HostState,
    checked: bool,
}

#[derive(Serialize)]
struct TaskPick<'a> {
    name: &'a str,
    assign: bool,
    unassign: bool,
}

/// The bulk page: the filter, its nodes as checkboxes, and the tasks to assign or unassign.
/// `form` is `None` on a fresh page (every listed node checked).
async fn bulk_page(
    state: &Arc<AppState>,
    ctx: &Ctx,
    status: StatusCode,
    filter: Filter,
    form: Option<&BulkForm>,
    errors: BulkErrors,
) -> Response {
    let FleetView { model, fleet } = match fleet_view(state).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let matching = filter.apply(&model, &fleet);
    let chosen: Option<BTreeSet<&str>> = form.map(|f| f.hosts.iter().map(String::as_str).collect());
    let hosts: Vec<HostPick> = matching
        .iter()
        .take(BULK_SHOWN)
        .map(|r| HostPick {
            host: &r.host,
            state: r.state,
            checked: chosen.as_ref().is_none_or(|c| c.contains(r.host.as_str())),
        })
        .collect();
    let tasks: Vec<TaskPick> = model
        .tasks
        .keys()
        .map(|t| TaskPick {
            name: t,
            assign: form.is_some_and(|f| f.assign.contains(t)),
            unassign: form.is_some_and(|f| f.unassign.contains(t)),
        })
        .collect();
    let mut page = tera::Context::new();
    page.insert("title", "Bulk assignment");
    page.insert("nav", "bulk");
    page.insert("filter", &filter);
    page.insert("states", &HostState::ALL);
    page.insert("task_names", &model.tasks.keys().collect::<Vec<_>>());
    page.insert("hosts", &hosts);
    page.insert("matching", &matching.len());
    page.insert("shown", &hosts.len());
    page.insert("capped", &(matching.len() > BULK_SHOWN));
    page.insert("total", &fleet.len());
    page.insert("tasks", &tasks);
    page.insert("errors", &errors);
    render(state, ctx, status, "bulk.html", page)
}

/// `GET /ui/bulk?q=&state=&task=`.
async fn bulk(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = refuse_below(&state, &ctx, Role::Operator, "assign tasks in bulk") {
        return r;
    }
    let filter = Filter::from_query(query.as_deref());
    bulk_page(
        &state,
        &ctx,
        StatusCode::OK,
        filter,
        None,
        BulkErrors::default(),
    )
    .await
}

/// One node's change: its tasks before and after.
#[derive(Serialize)]
struct NodeDiff {
    host: String,
    added: Vec<String>,
    removed: Vec<String>,
    /// Every task before and after, each marked `add`, `del` or `keep`.
    tasks: Vec<DiffTask>,
}

#[derive(Serialize)]
struct DiffTask {
    name: String,
    mark: &'static str,
}

/// A digest of exactly what `diffs` change, so apply can tell whether the model moved under
/// the confirmed diff.
fn digest(diffs: &[NodeDiff]) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for d in diffs {
        h.update(format!(
            "{}\t+{}\t-{}\n",
            d.host,
            d.added.join(","),
            d.removed.join(",")
        ));
    }
    hex::encode(h.finalize())
}

/// Checks the form against the model and computes what would change, in host order.
fn bulk_diff(
    model: &Model,
    f: &BulkForm,
) -> Result<(Vec<NodeDiff>, usize), (StatusCode, BulkErrors)> {
    let mut errors = BulkErrors::default();
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    if f.hosts.is_empty() {
        errors.hosts = Some("hosts: select at least one node".into());
    } else if let Some(h) = f.hosts.iter().find(|h| !model.nodes.contains_key(*h)) {
        errors.hosts = Some(format!("unknown node '{h}'"));
        status = StatusCode::NOT_FOUND;
    }
    if f.assign.is_empty() && f.unassign.is_empty() {
        errors.tasks = Some("tasks: choose a task to assign or unassign".into());
    } else if let Some(t) = f
        .assign
        .iter()
        .chain(&f.unassign)
        .find(|t| !model.tasks.contains_key(*t))
    {
        errors.tasks = Some(format!("unknown task '{t}'"));
        status = StatusCode::NOT_FOUND;
    } else if let Some(t) = f.assign.iter().find(|t| f.unassign.contains(*t)) {
        errors.tasks = Some(format!(
            "task '{t}': choose either assign or unassign, not both"
        ));
    }
    if errors.hosts.is_some() || errors.tasks.is_some() {
        return Err((status, errors));
    }
    let mut diffs = Vec::new();
    let mut unchanged = 0;
    for h in &f.hosts {
        let Some(n) = model.nodes.get(h) else {
            continue;
        };
        let added: Vec<String> = f
            .assign
            .iter()
            .filter(|t| !n.tasks.contains(*t))
            .cloned()
            .collect();
        let removed: Vec<String> = f
            .unassign
            .iter()
            .filter(|t| n.tasks.contains(*t))
            .cloned()
            .collect();
        if added.is_empty() && removed.is_empty() {
            unchanged += 1;
            continue;
        }
        let all: BTreeSet<&String> = n.tasks.iter().chain(&added).collect();
        let tasks = all
            .into_iter()
            .map(|t| DiffTask {
                name: t.clone(),
                mark: if added.contains(t) {
                    "add"
                } else if removed.contains(t) {
                    "del"
                } else {
                    "keep"
                },
            })
            .collect();
        diffs.push(NodeDiff {
            host: h.clone(),
            added,
            removed,
            tasks,
        });
    }
    Ok((diffs, unchanged))
}

/// A bulk form checked against the current model: the form, the diffs, how many chosen
/// nodes would not change; or the page that says why not.
async fn bulk_checked(
    state: &Arc<AppState>,
    ctx: &Ctx,
    body: &[u8],
) -> Result<(BulkForm, Vec<NodeDiff>, usize), Response> {
    if let Some(r) = refuse_below(state, ctx, Role::Operator, "assign tasks in bulk") {
        return Err(r);
    }
    let f = BulkForm::parse(body);
    let model = load_model(state).await?;
    match bulk_diff(&model, &f) {
        Ok((diffs, unchanged)) => Ok((f, diffs, unchanged)),
        Err((status, errors)) => {
            Err(bulk_page(state, ctx, status, f.filter.clone(), Some(&f), errors).await)
        }
    }
}

/// `POST /ui/bulk/preview`: the diff to confirm.
async fn bulk_preview(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    body: Bytes,
) -> Response {
    let (f, diffs, unchanged) = match bulk_checked(&state, &ctx, &body).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    confirm_page(&state, &ctx, &f, &diffs, unchanged, None)
}

/// The diff to confirm; `note` says why it is shown again.
fn confirm_page(
    state: &AppState,
    ctx: &Ctx,
    f: &BulkForm,
    diffs: &[NodeDiff],
    unchanged: usize,
    note: Option<&str>,
) -> Response {
    let back = match f.filter.query() {
        q if q.is_empty() => "/ui/bulk".to_string(),
        q => format!("/ui/bulk?{q}"),
    };
    let mut page = tera::Context::new();
    page.insert("title", "Confirm bulk assignment");
    page.insert("nav", "bulk");
    page.insert("diffs", &diffs);
    page.insert("changed", &diffs.len());
    page.insert("unchanged", &unchanged);
    page.insert("hosts", &diffs.iter().map(|d| &d.host).collect::<Vec<_>>());
    page.insert("assign", &f.assign);
    page.insert("unassign", &f.unassign);
    page.insert("filter", &f.filter);
    page.insert("back", &back);
    page.insert("digest", &digest(diffs));
    page.insert("note", &note);
    let status = if note.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    render(state, ctx, status, "bulk_confirm.html", page)
}

/// `POST /ui/bulk/apply`: every change as one edit, one generation.
async fn bulk_apply(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    body: Bytes,
) -> Response {
    let (f, diffs, unchanged) = match bulk_checked(&state, &ctx, &body).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if f.digest != digest(&diffs) {
        return confirm_page(
            &state,
            &ctx,
            &f,
            &diffs,
            unchanged,
            Some(
                "the fleet changed since this diff was shown; nothing was applied: check it again",
            ),
        );
    }
    if diffs.is_empty() {
        return done(
            &state,
            &ctx,
            "Nothing to change: the selected nodes already have these assignments".into(),
            "/ui/nodes",
        );
    }
    let mut ops = Vec::new();
    let mut assigned_to = 0;
    let mut unassigned_from = 0;
    for d in &diffs {
        if !d.added.is_empty() {
            assigned_to += 1;
            ops.push(Op::Assign {
                host: d.host.clone(),
                tasks: d.added.clone(),
            });
        }
        if !d.removed.is_empty() {
            unassigned_from += 1;
            ops.push(Op::Unassign {
                host: d.host.clone(),
                tasks: d.removed.clone(),
            });
        }
    }
    let e = match edit(&state, &ctx, ops).await {
        Ok(e) => e,
        Err(EditError::Rejected(s, e)) => {
            let errors = BulkErrors {
                tasks: Some(e.to_string()),
                hosts: None,
            };
            return bulk_page(&state, &ctx, s, f.filter.clone(), Some(&f), errors).await;
        }
        Err(e) => return edit_error_page(&state, &ctx, e),
    };
    let nodes = |n: usize| if n == 1 { "node" } else { "nodes" };
    let mut parts = Vec::new();
    if assigned_to > 0 {
        parts.push(format!(
            "Assigned {} to {assigned_to} {}",
            f.assign.join(", "),
            nodes(assigned_to)
        ));
    }
    if unassigned_from > 0 {
        let verb = if parts.is_empty() {
            "Unassigned"
        } else {
            "unassigned"
        };
        parts.push(format!(
            "{verb} {} from {unassigned_from} {}",
            f.unassign.join(", "),
            nodes(unassigned_from)
        ));
    }
    let to = match f.assign.first() {
        Some(t) => format!("/ui/nodes?task={}", encode(t)),
        None => "/ui/nodes".to_string(),
    };
    done(
        &state,
        &ctx,
        format!("{} (generation {})", parts.join("; "), e.generation),
        &to,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_form_keeps_repeated_names_sorted_and_unique() {
        let f = BulkForm::parse(
            b"csrf=x&q=Web&host=b.example&host=A.example&host=b.example&assign=web&assign=base&unassign=old",
        );
        assert_eq!(f.filter.q, "web");
        assert_eq!(f.hosts, ["a.example", "b.example"]);
        assert_eq!(f.assign, ["base", "web"]);
        assert_eq!(f.unassign, ["old"]);
    }
}
