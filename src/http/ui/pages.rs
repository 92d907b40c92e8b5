//! The dashboard and the nodes list: the two pages that read the whole fleet, so they work
//! from the shared model and the cached fleet status (see `App::fleet_status`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::on;
use serde::Serialize;

use super::{Ctx, UiRoute, error_page, form_value, page, render};
use crate::app::now;
use crate::app::reads::FleetView;
use crate::http::AppState;
use crate::http::Verb::Get;
use crate::report::State as HostState;

/// This module's routes (built by [`super::routes`]).
pub(super) static ROUTES: &[UiRoute] = &[
    page(Get, "/ui/", |m| on(m, dashboard)),
    page(Get, "/ui/nodes", |m| on(m, nodes)),
];

/// Rows per page of the nodes list.
pub const PAGE: usize = 50;

#[derive(Serialize)]
pub struct When {
    pub ago: String,
    pub utc: String,
}

/// `t` for a `<time>`: "3 min ago", with the full date for its `title`.
pub fn when(now: i64, t: i64) -> When {
    When {
        ago: crate::time::ago(now, t, crate::time::Units::Short),
        utc: crate::time::http_date(t),
    }
}

#[derive(Serialize)]
struct StateCount {
    state: HostState,
    count: usize,
}

#[derive(Serialize)]
struct Row<'a> {
    host: &'a str,
    state: HostState,
    reason: &'a str,
    last_result: Option<&'a str>,
    tasks: Vec<&'a str>,
    installed: Option<&'a str>,
    published: &'a str,
    last_seen: Option<When>,
}

#[derive(Serialize)]
struct Change<'a> {
    generation: u64,
    user: &'a str,
    when: When,
    lines: &'a [String],
    more: usize,
}

/// One of the dashboard's latest changes, its lines cut to [`RECENT_LINES`].
pub struct Recent {
    generation: u64,
    time: i64,
    user: String,
    lines: Vec<String>,
    more: usize,
}

const RECENT: usize = 8;
const RECENT_LINES: usize = 4;

/// The latest changes, read once per generation.
fn recent(state: &AppState) -> Result<Arc<Vec<Recent>>, crate::app::AppError> {
    let g = state.app.generation();
    if let Ok(slot) = state.ui.recent.lock()
        && let Some((at, r)) = slot.as_ref()
        && *at == g
    {
        return Ok(r.clone());
    }
    let r: Arc<Vec<Recent>> = Arc::new(
        state
            .app
            .log(None, RECENT)?
            .into_iter()
            .map(|e| Recent {
                generation: e.generation,
                time: e.time,
                user: e.user,
                more: e.changes.len().saturating_sub(RECENT_LINES),
                lines: e.changes.into_iter().take(RECENT_LINES).collect(),
            })
            .collect(),
    );
    if let Ok(mut slot) = state.ui.recent.lock() {
        *slot = Some((g, r.clone()));
    }
    Ok(r)
}

async fn dashboard(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
) -> Response {
    let st = state.clone();
    let data = super::blocking(move || Ok((st.app.fleet_view()?, recent(&st)?))).await;
    let (FleetView { model, fleet }, log) = match data {
        Ok(d) => d,
        Err(r) => return r,
    };
    let t = now();
    let mut counts: BTreeMap<HostState, usize> = BTreeMap::new();
    for r in fleet.iter() {
        *counts.entry(r.state).or_default() += 1;
    }
    let by_state: Vec<StateCount> = HostState::ALL
        .into_iter()
        .map(|s| StateCount {
            state: s,
            count: counts.get(&s).copied().unwrap_or(0),
        })
        .collect();
    let mut attention: Vec<_> = fleet.iter().filter(|r| r.state != HostState::Ok).collect();
    let needing = attention.len();
    attention.sort_by(|a, b| {
        (a.state.severity())
            .cmp(&b.state.severity())
            .then_with(|| a.host.cmp(&b.host))
    });
    let attention: Vec<Row> = attention
        .into_iter()
        .take(15)
        .map(|r| row(&model, r, t))
        .collect();
    let changes: Vec<Change> = log
        .iter()
        .map(|e| Change {
            generation: e.generation,
            user: &e.user,
            when: when(t, e.time),
            more: e.more,
            lines: &e.lines,
        })
        .collect();
    let mut page = tera::Context::new();
    page.insert("title", "Dashboard");
    page.insert("nav", "dashboard");
    page.insert("by_state", &by_state);
    page.insert("total", &fleet.len());
    page.insert("tasks", &model.tasks.len());
    page.insert("generation", &state.app.generation());
    page.insert("attention", &attention);
    page.insert("needing", &needing);
    page.insert("changes", &changes);
    render(&state, &ctx, StatusCode::OK, "dashboard.html", page)
}

fn row<'a>(model: &'a crate::model::Model, r: &'a crate::api::HostStatus, now: i64) -> Row<'a> {
    Row {
        host: &r.host,
        state: r.state,
        reason: &r.reason,
        last_result: r.last_result.as_deref(),
        tasks: model
            .nodes
            .get(&r.host)
            .map(|n| n.tasks.iter().map(String::as_str).collect())
            .unwrap_or_default(),
        installed: r.installed.as_deref(),
        published: &r.published,
        last_seen: r.last_seen.map(|s| when(now, s)),
    }
}

/// A nodes-list filter, as the query string and the bulk page carry it.
#[derive(Serialize, Default, Clone, Debug)]
pub struct Filter {
    pub q: String,
    pub state: String,
    pub task: String,
}

impl Filter {
    pub fn from_query(query: Option<&str>) -> Filter {
        let get = |k| {
            query
                .and_then(|q| form_value(q.as_bytes(), k))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        Filter {
            q: get("q").to_ascii_lowercase(),
            state: get("state"),
            task: get("task"),
        }
    }

    /// The query string for this filter (without `page`).
    pub fn query(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [("q", &self.q), ("state", &self.state), ("task", &self.task)] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", super::encode(v)));
            }
        }
        parts.join("&")
    }

    /// Hosts matching the filter, in name order. The task filter matches nodes that run the
    /// task, directly or through includes.
    pub fn apply<'a>(
        &self,
        model: &crate::model::Model,
        fleet: &'a [crate::api::HostStatus],
    ) -> Vec<&'a crate::api::HostStatus> {
        let reach = (!self.task.is_empty()).then(|| runners(model, &self.task));
        let runs_task = |host: &str| match &reach {
            None => true,
            Some(reach) => model
                .nodes
                .get(host)
                .is_some_and(|n| n.tasks.iter().any(|t| reach.contains(t))),
        };
        fleet
            .iter()
            .filter(|r| self.q.is_empty() || r.host.contains(&self.q))
            .filter(|r| self.state.is_empty() || r.state.as_str() == self.state)
            .filter(|r| runs_task(&r.host))
            .collect()
    }
}

/// The tasks whose closure holds `task`: itself and every task including it, directly or
/// not. A node runs `task` when it is assigned one of them (one walk per request instead of a
/// closure per node).
pub fn runners(model: &crate::model::Model, task: &str) -> std::collections::BTreeSet<String> {
    let mut reach = std::collections::BTreeSet::from([task.to_string()]);
    loop {
        let more: Vec<String> = model
            .tasks
            .values()
            .filter(|t| !reach.contains(&t.name) && t.includes.iter().any(|i| reach.contains(i)))
            .map(|t| t.name.clone())
            .collect();
        if more.is_empty() {
            return reach;
        }
        reach.extend(more);
    }
}

async fn nodes(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    RawQuery(query): RawQuery,
) -> Response {
    let filter = Filter::from_query(query.as_deref());
    let page_no = query
        .as_deref()
        .and_then(|q| form_value(q.as_bytes(), "page"))
        .map(|p| p.parse::<usize>().ok().filter(|p| *p >= 1));
    let page_no = match page_no {
        None => 1,
        Some(Some(p)) => p,
        Some(None) => {
            return error_page(
                &state,
                Some(&ctx),
                StatusCode::BAD_REQUEST,
                "page: give a whole number from 1",
            );
        }
    };
    let st = state.clone();
    let data = super::blocking(move || st.app.fleet_view()).await;
    let FleetView { model, fleet } = match data {
        Ok(d) => d,
        Err(r) => return r,
    };
    let t = now();
    let matching = filter.apply(&model, &fleet);
    let pages = matching.len().div_ceil(PAGE).max(1);
    let page_no = page_no.min(pages);
    let rows: Vec<Row> = matching
        .iter()
        .skip((page_no - 1) * PAGE)
        .take(PAGE)
        .map(|r| row(&model, r, t))
        .collect();
    let base = filter.query();
    let link = |p: usize| {
        if base.is_empty() {
            format!("/ui/nodes?page={p}")
        } else {
            format!("/ui/nodes?{base}&page={p}")
        }
    };
    let mut page = tera::Context::new();
    page.insert("title", "Nodes");
    page.insert("nav", "nodes");
    page.insert("filter", &filter);
    page.insert("rows", &rows);
    page.insert("matching", &matching.len());
    page.insert("total", &fleet.len());
    page.insert("first", &((page_no - 1) * PAGE + 1).min(matching.len()));
    page.insert("last", &((page_no - 1) * PAGE + rows.len()));
    page.insert("page_no", &page_no);
    page.insert("pages", &pages);
    page.insert("prev", &(page_no > 1).then(|| link(page_no - 1)));
    page.insert("next", &(page_no < pages).then(|| link(page_no + 1)));
    page.insert("states", &HostState::ALL);
    page.insert("task_names", &model.tasks.keys().collect::<Vec<_>>());
    page.insert(
        "bulk",
        &if base.is_empty() {
            "/ui/bulk".to_string()
        } else {
            format!("/ui/bulk?{base}")
        },
    );
    render(&state, &ctx, StatusCode::OK, "nodes.html", page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_round_trips_through_the_query() {
        let f = Filter::from_query(Some("q=Web&state=failed&task=base+x&page=2"));
        assert_eq!(f.q, "web");
        assert_eq!(f.state, "failed");
        assert_eq!(f.task, "base x");
        assert_eq!(f.query(), "q=web&state=failed&task=base+x");
    }
}
