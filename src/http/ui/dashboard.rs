//! The dashboard (`/ui/`): nodes by state, those that need attention and the latest changes,
//! from the shared model and the cached fleet status (see `App::fleet_status`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::on;
use serde::Serialize;

use super::common::{Ctx, When, blocking, render, when};
use super::nodes::{Row, row};
use super::{UiRoute, page};
use crate::app::now;
use crate::app::reads::FleetView;
use crate::http::AppState;
use crate::http::Verb::Get;
use crate::report::State as HostState;

pub(super) const TEMPLATE: (&str, &str) =
    ("dashboard.html", include_str!("templates/dashboard.html"));

/// This module's routes (built by [`super::routes`]).
pub(super) static ROUTES: &[UiRoute] = &[page(Get, "/ui/", |m| on(m, dashboard))];

#[derive(Serialize)]
struct StateCount {
    state: HostState,
    count: usize,
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
pub(super) struct Recent {
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
    let data = blocking(move || Ok((st.app.fleet_view()?, recent(&st)?))).await;
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
