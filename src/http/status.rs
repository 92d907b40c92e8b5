//! Node reports in (`POST /hosts/<h>/report`), fleet status out (`/api/v1/status`).
//!
//! Reports are committed in batches by one writer task: each handler waits until its report
//! is durable, but 10,000 nodes reporting at once cost a few hundred fsyncs, not 10,000, and
//! apt traffic (read-only, mostly cached) never waits on them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Response, StatusCode, header};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::apt::Credential;
use super::error::ApiError;
use super::{AppState, now};
use crate::api::{HostStatus, HostStatusDetail, ReportEntry};
use crate::model::host_package;
use crate::report::{self, Report};
use crate::store::{IncomingReport, StoreError};

/// Reports waiting for the writer; beyond this, senders wait.
pub(super) const QUEUE: usize = 16_384;
/// Most reports committed in one transaction.
const BATCH: usize = 1024;
/// How often the writer flushes passive signals and applies retention.
const TICK: Duration = Duration::from_secs(60);

pub(crate) struct Job {
    report: IncomingReport,
    done: oneshot::Sender<Result<(), String>>,
}

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
    let max = state.config.report_max;
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
    if state.reports.send(job).await.is_err() {
        return super::apt::internal_error("report writer", "stopped");
    }
    match wait.await {
        Ok(Ok(())) => text(StatusCode::OK, "stored\n".into()),
        Ok(Err(e)) => super::apt::internal_error("storing report", e),
        Err(e) => super::apt::internal_error("report writer", e),
    }
}

/// Commits queued reports in batches; every `TICK` also flushes passive signals and prunes.
pub(super) async fn writer(state: Arc<AppState>, mut rx: mpsc::Receiver<Job>) {
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
                let pruned = tokio::task::spawn_blocking(move || {
                    st.store.prune(st.config.log_keep, st.config.audit_keep)
                })
                .await;
                if let Ok(Err(e)) = pruned {
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
        let res = tokio::task::spawn_blocking(move || {
            st.store.add_reports(&batch, st.config.report_keep)
        })
        .await;
        let res = match res {
            Ok(Ok(retired)) => {
                for host in retired {
                    tracing::info!(
                        "node {host} reported the umc-node that carries its new token: its previous token no longer works"
                    );
                }
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        for j in jobs {
            let _ = j.done.send(res.clone());
        }
    }
}

/// Writes the in-memory passive signals to the store.
pub(super) async fn flush_seen(state: &Arc<AppState>) {
    let seen = state.seen_snapshot();
    if seen.is_empty() {
        return;
    }
    let st = state.clone();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || st.store.save_seen(&seen)).await {
        tracing::warn!("saving passive signals: {e}");
    }
}

/// Every node's status, sorted by host name, at `now`.
pub(crate) fn fleet(state: &AppState, now: i64) -> Result<Vec<HostStatus>, StoreError> {
    let model = state.model()?;
    let reports = state.store.last_reports()?;
    let seen = state.seen_snapshot();
    let gens: BTreeSet<u64> = model
        .nodes
        .values()
        .map(|n| model.node_generation(n))
        .collect();
    let times = state.store.times(&gens)?;
    let mut out = Vec::with_capacity(model.nodes.len());
    for node in model.nodes.values() {
        let g = model.node_generation(node);
        let published = crate::repo::version(g);
        let package = host_package(&node.name);
        let last = reports.get(&node.name).and_then(|r| {
            // Stored reports were validated on arrival; one that no longer parses (a future
            // format) counts as none.
            report::parse(&r.text, i64::MAX - report::MAX_CLOCK_SKEW)
                .ok()
                .map(|p| (r.received, p))
        });
        let published_at = times.get(&g).copied().unwrap_or(0);
        let v = report::judge(
            &package,
            &published,
            published_at,
            last.as_ref().map(|(t, r)| (*t, r)),
            seen.get(&node.name),
            now,
            state.config.thresholds,
        );
        out.push(HostStatus {
            host: node.name.clone(),
            state: v.state.as_str().to_string(),
            package,
            published,
            published_at,
            installed: v.installed,
            last_seen: v.last_seen,
            last_report: last.map(|(t, _)| t),
            last_result: v.last_result,
            reason: v.reason,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
pub(super) struct StatusQuery {
    failing: Option<bool>,
}

/// `GET /api/v1/status[?failing=true]`.
pub(super) async fn list(
    State(s): State<Arc<AppState>>,
    q: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<HostStatus>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let failing = q.failing.unwrap_or(false);
    let t = now();
    let rows = tokio::task::spawn_blocking(move || fleet(&s, t))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(
        rows.into_iter()
            .filter(|r| !failing || r.state != "ok")
            .collect(),
    ))
}

/// `GET /api/v1/status/<host>`: the row and the host's recent reports.
pub(super) async fn host(
    State(s): State<Arc<AppState>>,
    Path(host): Path<String>,
) -> Result<Json<HostStatusDetail>, ApiError> {
    let host = host.to_ascii_lowercase();
    let t = now();
    let detail = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let status = fleet(&s, t)?
            .into_iter()
            .find(|r| r.host == host)
            .ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, format!("unknown node '{host}'"))
            })?;
        let reports = s
            .store
            .reports(&host, s.config.report_keep)?
            .into_iter()
            .filter_map(|r| {
                let report: Report =
                    report::parse(&r.text, i64::MAX - report::MAX_CLOCK_SKEW).ok()?;
                Some(ReportEntry {
                    received: r.received,
                    report,
                })
            })
            .collect();
        Ok(HostStatusDetail { status, reports })
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(detail))
}
