//! The nodes list (`/ui/nodes`): the fleet filtered by name, state and task, a page at a time,
//! from the shared model and the cached fleet status (see `App::fleet_status`).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::on;
use serde::Serialize;

use super::common::{
    Ctx, When, encode, error_page, fleet_view, form_value, query_field, render, when,
};
use super::{UiRoute, page};
use crate::api::HostStatus;
use crate::app::now;
use crate::app::reads::FleetView;
use crate::http::AppState;
use crate::http::Verb::Get;
use crate::model::{Model, Node};
use crate::report::State as HostState;

pub(super) const TEMPLATE: (&str, &str) = ("nodes.html", include_str!("templates/nodes.html"));

/// This module's routes (built by [`super::routes`]).
pub(super) static ROUTES: &[UiRoute] = &[page(Get, "/ui/nodes", |m| on(m, nodes))];

/// Rows per page of the nodes list.
const PAGE: usize = 50;

/// One node of a list (this one and the dashboard's).
#[derive(Serialize)]
pub(super) struct Row<'a> {
    host: &'a str,
    state: HostState,
    reason: &'a str,
    last_result: Option<&'a str>,
    tasks: Vec<&'a str>,
    installed: Option<&'a str>,
    published: &'a str,
    last_seen: Option<When>,
}

/// The list row of `r`, seen at `now`.
pub(super) fn row<'a>(model: &'a Model, r: &'a HostStatus, now: i64) -> Row<'a> {
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
pub(super) struct Filter {
    pub(super) q: String,
    pub(super) state: String,
    pub(super) task: String,
}

impl Filter {
    pub(super) fn from_query(query: Option<&str>) -> Filter {
        Filter {
            q: query_field(query, "q").to_ascii_lowercase(),
            state: query_field(query, "state"),
            task: query_field(query, "task"),
        }
    }

    /// The query string for this filter (without `page`).
    pub(super) fn query(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [("q", &self.q), ("state", &self.state), ("task", &self.task)] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", encode(v)));
            }
        }
        parts.join("&")
    }

    /// Hosts matching the filter, in name order. The task filter matches nodes that run the
    /// task, directly or through includes.
    pub(super) fn apply<'a>(&self, model: &Model, fleet: &'a [HostStatus]) -> Vec<&'a HostStatus> {
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
fn runners(model: &Model, task: &str) -> BTreeSet<String> {
    let mut reach = BTreeSet::from([task.to_string()]);
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

/// The nodes that run `task`, directly or through includes, in name order.
pub(super) fn running<'m>(model: &'m Model, task: &str) -> impl Iterator<Item = &'m Node> {
    let reach = runners(model, task);
    model
        .nodes
        .values()
        .filter(move |n| n.tasks.iter().any(|t| reach.contains(t)))
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
    let FleetView { model, fleet } = match fleet_view(&state).await {
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
