//! The history (`/ui/history`): the newest generations and their change lines, filtered by
//! user, node or task.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::on;
use serde::Serialize;

use super::common::{Ctx, When, blocking, encode, query_field, render, when};
use super::{UiRoute, page};
use crate::app::now;
use crate::http::AppState;
use crate::http::Verb::Get;
use crate::model::{Entity, normalize_host};

pub(super) const TEMPLATE: (&str, &str) = ("history.html", include_str!("templates/history.html"));

/// This module's routes (built by [`super::routes`]).
pub(super) static ROUTES: &[UiRoute] = &[page(Get, "/ui/history", |m| on(m, history))];

/// History entries shown when the query names no limit.
const HISTORY_DEFAULT: usize = 50;
/// Most history entries read for one page (the user filter reads more than it shows).
const HISTORY_MAX: usize = 1_000;
/// Change lines shown per generation: a bulk edit of 10,000 nodes has 10,000 of them.
const HISTORY_LINES: usize = 200;

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
    let get = |k| query_field(query.as_deref(), k);
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
