//! The node page (`/ui/nodes/{host}`): status, variables, tasks, the effective package list,
//! rendered files, reports and the enrollment one-liner; and its four forms (set and unset a
//! variable, assign and unassign a task).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::on;
use bytes::Bytes;
use serde::Serialize;

use super::common::{
    Ctx, EditError, When, blocking, done, edit, edit_error_page, encode, field, form_value,
    load_model, not_found, refuse_below, render, when,
};
use super::{UiRoute, page};
use crate::api::{Op, ReportEntry, Role};
use crate::app::now;
use crate::app::reads::NodeView;
use crate::http::AppState;
use crate::http::Verb::{Get, Post};
use crate::model::{Model, normalize_host, task_package};
use crate::report::State as HostState;

pub(super) const TEMPLATE: (&str, &str) = ("node.html", include_str!("templates/node.html"));

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
];

fn unknown_node(state: &AppState, ctx: &Ctx, host: &str) -> Response {
    not_found(state, ctx, &format!("unknown node '{host}'"))
}

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
        crate::nodefiles::enroll_command(
            &url,
            &host,
            &token,
            state.app.config.tls_node_ca.as_deref(),
        )
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
            version: crate::model::version(crate::model::task_generation(
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
    if load_model(state).await?.nodes.contains_key(&h) {
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
    let item = field(&body, if vars { "name" } else { "task" });
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
