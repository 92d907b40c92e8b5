//! Node reports in (`POST /hosts/<h>/report`), fleet status out (`/api/v1/status`).
//!
//! Reports are committed in batches by one writer task: each handler waits until its report
//! is durable, but 10,000 nodes reporting at once cost a few hundred fsyncs, not 10,000, and
//! apt traffic (read-only, mostly cached) never waits on them.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Response, StatusCode, header};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::app::status::Job;
use crate::app::{App, AppError, blocking};

use super::AppState;
use super::error::ApiError;
use crate::api::{HostStatus, HostStatusDetail};
use crate::app::now;
use crate::app::serve::Credential;
use crate::report;
use crate::store::IncomingReport;

/// Most reports committed in one transaction.
const BATCH: usize = 1024;
/// How often the writer flushes passive signals and applies retention.
const TICK: Duration = Duration::from_secs(60);

fn text(status: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// `POST /hosts/<h>/report`, with Basic auth as that host.
pub(super) async fn report(
    State(state): State<Arc<AppState>>,
    Path(host): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let host = host.to_ascii_lowercase();
    let credential = match super::apt::authenticate(&state, &host, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    // Only a report made with the current token during a rotation may end it (the store
    // checks the rest); other reports cost the store no node read.
    let current_token = match credential {
        Credential::Current {
            hash,
            rotating: true,
        } => Some(hash),
        _ => None,
    };
    let max = state.app.config.report_max;
    let bytes = match axum::body::to_bytes(body, max).await {
        Ok(b) => b,
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("report larger than {max} bytes\n"),
            );
        }
    };
    let Ok(body) = String::from_utf8(bytes.to_vec()) else {
        return text(StatusCode::BAD_REQUEST, "report is not UTF-8\n".into());
    };
    let received = now();
    if let Err(e) = report::parse(&body, received) {
        return text(StatusCode::BAD_REQUEST, format!("{e}\n"));
    }
    let (done, wait) = oneshot::channel();
    let job = Job {
        report: IncomingReport {
            host,
            received,
            text: body,
            current_token,
        },
        done,
    };
    if state.app.report_queue().send(job).await.is_err() {
        return super::apt::internal_error("report writer", "stopped");
    }
    match wait.await {
        Ok(Ok(())) => text(StatusCode::OK, "stored\n".into()),
        Ok(Err(e)) => super::apt::internal_error("storing report", e),
        Err(e) => super::apt::internal_error("report writer", e),
    }
}

/// Commits queued reports in batches; every `TICK` also flushes passive signals and prunes.
pub(super) async fn writer(state: Arc<App>, mut rx: mpsc::Receiver<Job>) {
    // The first tick fires at once: retention also runs at startup.
    let mut tick = tokio::time::interval(TICK);
    loop {
        let first = tokio::select! {
            job = rx.recv() => match job {
                Some(j) => j,
                None => return,
            },
            _ = tick.tick() => {
                flush_seen(&state).await;
                let st = state.clone();
                let pruned = blocking(move || {
                    st.store.prune(st.config.log_keep, st.config.audit_keep).map_err(AppError::from)
                })
                .await;
                if let Err(e) = pruned {
                    tracing::warn!("retention: {e}");
                }
                continue;
            }
        };
        let mut jobs = vec![first];
        while jobs.len() < BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let batch: Vec<IncomingReport> = jobs.iter().map(|j| j.report.clone()).collect();
        let st = state.clone();
        let res = blocking(move || {
            st.store
                .add_reports(&batch, st.config.report_keep)
                .map_err(AppError::from)
        })
        .await;
        let res = match res {
            Ok(retired) => {
                for host in retired {
                    tracing::info!(
                        "node {host} reported the umc-node that carries its new token: its previous token no longer works"
                    );
                }
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        };
        for j in jobs {
            let _ = j.done.send(res.clone());
        }
    }
}

/// Writes the in-memory passive signals to the store.
pub(super) async fn flush_seen(state: &Arc<App>) {
    let seen = state.seen_snapshot();
    if seen.is_empty() {
        return;
    }
    let st = state.clone();
    if let Err(e) = blocking(move || st.store.save_seen(&seen).map_err(AppError::from)).await {
        tracing::warn!("saving passive signals: {e}");
    }
}

#[derive(Deserialize)]
pub(super) struct StatusQuery {
    failing: Option<bool>,
}

/// `GET /api/v1/status[?failing=true]`: judged now, not the console's snapshot (whoever
/// just saw a node report expects its effect).
pub(super) async fn list(
    State(s): State<Arc<AppState>>,
    q: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<HostStatus>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let failing = q.failing.unwrap_or(false);
    let rows = blocking(move || s.app.judge_fleet()).await?;
    Ok(Json(
        rows.iter()
            .filter(|r| !failing || r.state != "ok")
            .cloned()
            .collect(),
    ))
}

/// `GET /api/v1/status/<host>`: the row and the host's recent reports.
pub(super) async fn host(
    State(s): State<Arc<AppState>>,
    Path(host): Path<String>,
) -> Result<Json<HostStatusDetail>, ApiError> {
    let host = host.to_ascii_lowercase();
    Ok(Json(blocking(move || s.app.host_status(&host)).await?))
}
