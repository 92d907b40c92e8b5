//! The node page (variables, tasks, the effective package list, rendered files, reports and
//! the enrollment one-liner), bulk assignment with a confirmed diff, and the history.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::on;
use bytes::Bytes;
use serde::Serialize;

use super::pages::{Filter, When, when};
use super::{
    Ctx, EditError, UiRoute, blocking, done, edit, edit_error_page, encode, error_page, form_pairs,
    form_value, page, refuse_below, render,
};
use crate::api::{Op, ReportEntry, Role};
use crate::app::now;
use crate::app::reads::{FleetView, NodeView};
use crate::http::AppState;
use crate::http::Verb::{Get, Post};
use crate::model::{Entity, Model, normalize_host, task_package};
use crate::report::State as HostState;

/// This module's templates, by name (registered by [`super::Ui::new`]).
pub const TEMPLATES: &[(&str, &str)] = &[
    ("node.html", include_str!("templates/node.html")),
    ("bulk.html", include_str!("templates/bulk.html")),
    (
        "bulk_confirm.html",
        include_str!("templates/bulk_confirm.html"),
    ),
    ("history.html", include_str!("templates/history.html")),
];

/// Most nodes the bulk page lists (and so may select) at once.
const BULK_SHOWN: usize = 1000;
/// History entries shown when the query names no limit.
const HISTORY_DEFAULT: usize = 50;
/// Most history entries read for one page (the user filter reads more than it shows).
const HISTORY_MAX: usize = 1_000;
/// Change lines shown per generation: a bulk edit of 10,000 nodes has 10,000 of them.
const HISTORY_LINES: usize = 200;

/// This module's routes (built by [`super::routes`]).
pub(super) static ROUTES: &[UiRoute] = &[
    page(Get, "/ui/nodes/{host}", |m| on(m, node)),
    page(Post, "/ui/nodes/{host}/vars", |m| {
        on(m, |s, c, p, h, b| {
            node_form(s, c, p, h, b, NodeEdit::SetVar)
        })
    }),
    page(Post, "/ui/nodes/{host}/vars/unset", |m| {
        on(m, |s, c, p, h, b| {
            node_form(s, c, p, h, b, NodeEdit::UnsetVar)
        })
    }),
    page(Post, "/ui/nodes/{host}/assign", |m| {
        on(m, |s, c, p, h, b| {
            node_form(s, c, p, h, b, NodeEdit::Assign)
        })
    }),
    page(Post, "/ui/nodes/{host}/unassign", |m| {
        on(m, |s, c, p, h, b| {
            node_form(s, c, p, h, b, NodeEdit::Unassign)
        })
    }),
    page(Get, "/ui/bulk", |m| on(m, bulk)),
    page(Post, "/ui/bulk/preview", |m| on(m, bulk_preview)),
    page(Post, "/ui/bulk/apply", |m| on(m, bulk_apply)),
    page(Get, "/ui/history", |m| on(m, history)),
];

fn unknown_node(state: &AppState, ctx: &Ctx, host: &str) -> Response {
    error_page(
        state,
        Some(ctx),
        StatusCode::NOT_FOUND,
        &format!("unknown node '{host}'"),
    )
}

// ---------------------------------------------------------------------------------------------
// The node page

/// What a refused node form brings back to the page: its message and the input to keep.
#[derive(Serialize, Default)]
struct NodeForm {
    var_name: String,
    var_value: String,
    var_error: Option<String>,
    assign_error: Option<String>,
}

#[derive(Serialize)]
struct Status {
    state: HostState,
    reason: String,
    installed: Option<String>,
    published: String,
    last_seen: Option<When>,
    last_result: Option<String>,
}

#[derive(Serialize)]
struct Var {
    name: String,
    /// Empty when `hidden`.
    value: String,
    /// The caller's role may not read values (`app::shown_vars`).
    hidden: bool,
    /// A node variable overriding a global one of the same name.
    overrides: bool,
}

#[derive(Serialize)]
struct PackageRow {
    task: String,
    package: String,
    version: String,
    /// Assigned to the node itself (not only reached through includes).
    direct: bool,
    included_by: Vec<String>,
    depends: Vec<String>,
    removes: Vec<String>,
}

#[derive(Serialize)]
struct Rendered {
    path: String,
    task: String,
    content: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct StepRow {
    name: String,
    /// The exit status, or `skipped`.
    exit: String,
    ok: bool,
}

#[derive(Serialize)]
struct ReportRow {
    when: When,
    result: &'static str,
    failed_step: Option<String>,
    steps: Vec<StepRow>,
    errors: Vec<String>,
    installed: Option<String>,
}

async fn node(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    Path(host): Path<String>,
    headers: HeaderMap,
) -> Response {
    node_page(
        &state,
        &ctx,
        &host,
        &headers,
        StatusCode::OK,
        NodeForm::default(),
    )
    .await
}

/// The node page, with `form`'s message next to the field it belongs to.
async fn node_page(
    state: &Arc<AppState>,
    ctx: &Ctx,
    host: &str,
    headers: &HeaderMap,
    status: StatusCode,
    form: NodeForm,
) -> Response {
    let Ok(host) = normalize_host(host) else {
        return unknown_node(state, ctx, host);
    };
    let st = state.clone();
    let h = host.clone();
    // Rendered files and the node token are secrets: admins only, as in the API
    // (`/nodes/{h}/render`, `/nodes/{h}/token`).
    let admin = ctx.can_admin();
    let view = match blocking(move || st.app.node_view(&h, admin)).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let NodeView {
        model,
        fleet,
        reports,
        files,
        token,
    } = view;
    let Some(n) = model.nodes.get(&host) else {
        return unknown_node(state, ctx, &host);
    };
    let t = now();
    let row = fleet
        .binary_search_by(|r| r.host.as_str().cmp(&host))
        .ok()
        .and_then(|i| fleet.get(i))
        .or_else(|| fleet.iter().find(|r| r.host == host));
    let status_row = row.map(|r| Status {
        state: r.state,
        reason: r.reason.clone(),
        installed: r.installed.clone(),
        published: r.published.clone(),
        last_seen: r.last_seen.map(|s| when(t, s)),
        last_result: r.last_result.clone(),
    });
    let vars: Vec<Var> = crate::app::shown_vars(ctx.role, &n.vars)
        .into_iter()
        .map(|(k, v)| Var {
            overrides: model.vars.contains_key(&k),
            name: k,
            hidden: v.is_none(),
            value: v.unwrap_or_default(),
        })
        .collect();
    let closure = model.closure(&n.tasks);
    let packages = package_rows(&model, n, &closure);
    let files: Vec<Rendered> = files
        .into_iter()
        .map(|f| {
            let (content, error) = match f.rendered {
                Some(Ok(c)) => (Some(c), None),
                Some(Err(e)) => (None, Some(e)),
                None => (None, None),
            };
            Rendered {
                path: f.path,
                task: f.task,
                content,
                error,
            }
        })
        .collect();
    let assignable: Vec<&String> = model
        .tasks
        .keys()
        .filter(|k| !n.tasks.contains(*k))
        .collect();
    let reports: Vec<ReportRow> = reports
        .iter()
        .map(
            |ReportEntry {
                 received,
                 report: p,
             }| {
                let failed = p.failed_step().map(|s| s.name.clone());
                ReportRow {
                    when: when(t, *received),
                    result: if failed.is_some() || !p.broken.is_empty() {
                        "failed"
                    } else {
                        "ok"
                    },
                    failed_step: failed,
                    steps: p
                        .steps
                        .iter()
                        .map(|s| StepRow {
                            name: s.name.clone(),
                            exit: s.exit.map_or_else(|| "skipped".into(), |e| e.to_string()),
                            ok: s.exit == Some(0),
                        })
                        .collect(),
                    errors: p.tail.clone(),
                    installed: p.installed.get(&crate::model::host_package(&host)).cloned(),
                }
            },
        )
        .collect();
    let enroll = token.map(|token| {
        // The address this page was reached at, as a node would reach umcd: https when a
        // TLS proxy says so (the line carries the node's token), and only a plain host[:port]
        // (it is pasted into a shell command).
        let url = n.url.clone().unwrap_or_else(|| {
            let h = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .filter(|h| {
                    !h.is_empty()
                        && h.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b".:-[]".contains(&b))
                })
                .unwrap_or("localhost");
            let scheme = if super::secure(headers) {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{h}")
        });
        crate::nodefiles::enroll_command(&url, &host, &token)
    });
    let mut page = tera::Context::new();
    page.insert("title", &host);
    page.insert("nav", "nodes");
    page.insert("host", &host);
    page.insert("host_q", &encode(&host));
    page.insert("status", &status_row);
    page.insert("url", &n.url);
    page.insert("vars", &vars);
    page.insert("values_hidden", &vars.iter().any(|v| v.hidden));
    page.insert("values_role", crate::http::VAR_VALUES.as_str());
    page.insert("global_vars", &model.vars.len());
    page.insert("tasks", &n.tasks.iter().collect::<Vec<_>>());
    page.insert("assignable", &assignable);
    page.insert("packages", &packages);
    page.insert("files", &files);
    page.insert("reports", &reports);
    page.insert("enroll", &enroll);
    page.insert("form", &form);
    render(state, ctx, status, "node.html", page)
}

/// One row per task of the closure: the package apt installs, what it pulls in (Depends) and
/// what it removes (Conflicts).
fn package_rows(
    model: &Model,
    node: &crate::model::Node,
    closure: &BTreeSet<String>,
) -> Vec<PackageRow> {
    let assigned = &node.tasks;
    let mut included_by: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for t in closure {
        if let Some(task) = model.tasks.get(t) {
            for i in &task.includes {
                included_by
                    .entry(i.as_str())
                    .or_default()
                    .insert(t.as_str());
            }
        }
    }
    closure
        .iter()
        .filter_map(|t| model.tasks.get(t))
        .map(|task| PackageRow {
            task: task.name.clone(),
            package: task_package(&task.name),
            // The version this host's apt sees: a task with files renders per host.
            version: crate::repo::version(crate::model::task_generation(
                &model.tasks,
                task,
                Some((node, model.vars_generation)),
            )),
            direct: assigned.contains(&task.name),
            included_by: included_by
                .get(task.name.as_str())
                .map(|s| s.iter().map(|x| x.to_string()).collect())
                .unwrap_or_default(),
            depends: task.depends.clone(),
            removes: task.removes.iter().cloned().collect(),
        })
        .collect()
}

/// Commits `ops` from a node form: back to the page with a flash, or the page again with the
/// message next to the field `field` sets.
async fn node_edit(
    state: &Arc<AppState>,
    ctx: &Ctx,
    host: &str,
    headers: &HeaderMap,
    ops: Vec<Op>,
    mut form: NodeForm,
    field: fn(&mut NodeForm, String),
) -> Result<u64, Response> {
    match edit(state, ctx, ops).await {
        Ok(e) => Ok(e.generation),
        Err(EditError::Rejected(s, e)) => {
            field(&mut form, e.to_string());
            Err(node_page(state, ctx, host, headers, s, form).await)
        }
        Err(e) => Err(edit_error_page(state, ctx, e)),
    }
}

fn to_node(state: &AppState, ctx: &Ctx, host: &str, message: String) -> Response {
    done(state, ctx, message, &format!("/ui/nodes/{}", encode(host)))
}

/// The node a form posts to: normalized, and known (else the 404 page).
async fn known_node(state: &Arc<AppState>, ctx: &Ctx, host: &str) -> Result<String, Response> {
    let Ok(h) = normalize_host(host) else {
        return Err(unknown_node(state, ctx, host));
    };
    let st = state.clone();
    let hh = h.clone();
    let known = blocking(move || Ok(st.app.model()?.nodes.contains_key(&hh))).await?;
    if known {
        Ok(h)
    } else {
        Err(unknown_node(state, ctx, &h))
    }
}

fn var_error(f: &mut NodeForm, m: String) {
    f.var_error = Some(m);
}

fn assign_error(f: &mut NodeForm, m: String) {
    f.assign_error = Some(m);
}

/// The node page's four forms.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NodeEdit {
    /// `POST /ui/nodes/{host}/vars`: `name`, `value`.
    SetVar,
    /// `POST /ui/nodes/{host}/vars/unset`: `name`.
    UnsetVar,
    /// `POST /ui/nodes/{host}/assign`: `task`.
    Assign,
    /// `POST /ui/nodes/{host}/unassign`: `task`.
    Unassign,
}

async fn node_form(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    Path(host): Path<String>,
    headers: HeaderMap,
    body: Bytes,
    kind: NodeEdit,
) -> Response {
    use NodeEdit::*;
    let vars = matches!(kind, SetVar | UnsetVar);
    let what = match kind {
        SetVar => "set node variables",
        UnsetVar => "unset node variables",
        Assign | Unassign => "change assignments",
    };
    if let Some(r) = refuse_below(&state, &ctx, Role::Operator, what) {
        return r;
    }
    let host = match known_node(&state, &ctx, &host).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    let item = form_value(&body, if vars { "name" } else { "task" })
        .unwrap_or_default()
        .trim()
        .to_string();
    let value = form_value(&body, "value").unwrap_or_default();
    // Only the set form keeps what was typed; the others are buttons.
    let mut form = NodeForm::default();
    if kind == SetVar {
        form.var_name = item.clone();
        form.var_value = value.clone();
    }
    let at: fn(&mut NodeForm, String) = if vars { var_error } else { assign_error };
    if item.is_empty() {
        let ask = match kind {
            SetVar => "name: enter a variable name",
            UnsetVar => "name: choose a variable to unset",
            Assign | Unassign => "task: choose a task",
        };
        at(&mut form, ask.into());
        let s = StatusCode::UNPROCESSABLE_ENTITY;
        return node_page(&state, &ctx, &host, &headers, s, form).await;
    }
    let set = |set_vars, unset_vars| Op::NodeSet {
        host: host.clone(),
        set_vars,
        unset_vars,
        ssh: None,
        url: None,
        conffiles: None,
    };
    let tasks = vec![item.clone()];
    let (op, message) = match kind {
        SetVar => (
            set(BTreeMap::from([(item.clone(), value)]), Vec::new()),
            format!("Set variable {item} on {host}"),
        ),
        UnsetVar => (
            set(BTreeMap::new(), vec![item.clone()]),
            format!("Unset variable {item} on {host}"),
        ),
        Assign => (
            Op::Assign {
                host: host.clone(),
                tasks,
            },
            format!("Assigned {item} to {host}"),
        ),
        Unassign => (
            Op::Unassign {
                host: host.clone(),
                tasks,
            },
            format!("Unassigned {item} from {host}"),
        ),
    };
    match node_edit(&state, &ctx, &host, &headers, vec![op], form, at).await {
        Ok(g) => to_node(&state, &ctx, &host, format!("{message} (generation {g})")),
        Err(r) => r,
    }
}

// ---------------------------------------------------------------------------------------------
// Bulk assignment

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

/// Reads the model and fleet status.
async fn fleet(state: &Arc<AppState>) -> Result<FleetView, Response> {
    let st = state.clone();
    blocking(move || st.app.fleet_view()).await
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
    let FleetView { model, fleet } = match fleet(state).await {
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
    let st = state.clone();
    let model = blocking(move || Ok(st.app.model()?)).await?;
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

// ---------------------------------------------------------------------------------------------
// History

#[derive(Serialize, Default)]
struct HistoryQuery {
    user: String,
    node: String,
    task: String,
    limit: String,
}

#[derive(Serialize)]
struct Entry {
    generation: u64,
    when: When,
    user: String,
    lines: Vec<String>,
    /// Lines not shown (past `HISTORY_LINES`).
    more: usize,
}

/// `GET /ui/history?user=&node=&task=&limit=`.
async fn history(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    RawQuery(query): RawQuery,
) -> Response {
    let get = |k| {
        query
            .as_deref()
            .and_then(|q| form_value(q.as_bytes(), k))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let q = HistoryQuery {
        user: get("user"),
        node: get("node"),
        task: get("task"),
        limit: get("limit"),
    };
    let mut errors: BTreeMap<&str, String> = BTreeMap::new();
    let limit = if q.limit.is_empty() {
        HISTORY_DEFAULT
    } else {
        match q.limit.parse::<usize>() {
            Ok(n) if (1..=HISTORY_MAX).contains(&n) => n,
            _ => {
                errors.insert(
                    "limit",
                    format!("limit: give a whole number from 1 to {HISTORY_MAX}"),
                );
                HISTORY_DEFAULT
            }
        }
    };
    let mut entity = None;
    if !q.node.is_empty() && !q.task.is_empty() {
        errors.insert("node", "filter by a node or by a task, not both".into());
    } else if !q.node.is_empty() {
        match normalize_host(&q.node) {
            Ok(h) => entity = Some(Entity::Node(h)),
            Err(e) => {
                errors.insert("node", e.to_string());
            }
        }
    } else if !q.task.is_empty() {
        entity = Some(Entity::Task(q.task.clone()));
    }
    let mut entries = Vec::new();
    if errors.is_empty() {
        let read = if q.user.is_empty() {
            limit
        } else {
            (limit * 10).min(HISTORY_MAX)
        };
        let st = state.clone();
        let log = match blocking(move || st.app.log(entity.as_ref(), read)).await {
            Ok(l) => l,
            Err(r) => return r,
        };
        let t = now();
        entries = log
            .into_iter()
            .filter(|e| q.user.is_empty() || e.user == q.user)
            .take(limit)
            .map(|e| Entry {
                generation: e.generation,
                when: when(t, e.time),
                user: e.user,
                more: e.changes.len().saturating_sub(HISTORY_LINES),
                lines: e.changes.into_iter().take(HISTORY_LINES).collect(),
            })
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.generation));
    }
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let filtered = !(q.user.is_empty() && q.node.is_empty() && q.task.is_empty());
    let more = (entries.len() == limit && limit < HISTORY_MAX).then(|| {
        let mut parts = Vec::new();
        for (k, v) in [("user", &q.user), ("node", &q.node), ("task", &q.task)] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", encode(v)));
            }
        }
        parts.push(format!("limit={}", (limit * 2).min(HISTORY_MAX)));
        format!("/ui/history?{}", parts.join("&"))
    });
    let mut page = tera::Context::new();
    page.insert("title", "History");
    page.insert("nav", "history");
    page.insert("q", &q);
    page.insert("errors", &errors);
    page.insert("entries", &entries);
    page.insert("filtered", &filtered);
    page.insert("limit", &limit);
    page.insert("more", &more);
    render(&state, &ctx, status, "history.html", page)
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
