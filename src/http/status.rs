//! Node reports in (`POST /hosts/<h>/report`), fleet status out (`/api/v1/status`), over
//! `app::status`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::api::{HostStatus, HostStatusDetail, StatusQuery};
use crate::app::serve::Credential;
use crate::app::{ErrorKind, blocking};
use crate::report::State as HostState;

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `POST /hosts/<h>/report`, with Basic auth as that host.
pub(super) async fn report(
    State(state): State<Arc<AppState>>,
    Path(host): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
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
    match state.app.ingest_report(host, body, current_token).await {
        Ok(()) => text(StatusCode::OK, "stored\n".into()),
        Err(e) if e.kind() == ErrorKind::Invalid => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
        Err(e) => {
            tracing::error!("{e}");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error\n".into(),
            )
        }
    }
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
            .filter(|r| !failing || r.state != HostState::Ok)
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
