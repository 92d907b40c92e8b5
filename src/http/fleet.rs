//! The fleet as a whole, over `app::edit`: export, apply a fleet file, import into an empty
//! server, rollback to a past generation, and the diff between two generations.

use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use bytes::Bytes;

use super::admin::{User, json_body, require};
use super::{ApiError, AppState};
use crate::api::{
    ApplyRequest, ApplyResponse, DiffQuery, DiffResponse, ExportQuery, ImportResponse, Role,
    RollbackRequest,
};
use crate::app::blocking;
use crate::fleetfile::Fleet;
use crate::store::{Caller, EditOutcome};

/// The whole model in its file form, for operators and admins (it holds every variable's
/// value: `app::VAR_VALUES`); node tokens only with `secrets=true`, for admins. Viewers get
/// no export at all rather than one with values blanked: applied, such a file would wipe them.
pub(super) async fn export(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Json<Fleet>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    // The route is open to operators; node tokens are not (as `GET /nodes/{host}/token`).
    if q.secrets {
        require(&caller, Role::Admin, "export node tokens (secrets=true)")?;
    }
    Ok(Json(
        blocking(move || s.app.export_fleet(q.history, q.secrets)).await?,
    ))
}

fn applied(e: EditOutcome, dry_run: bool) -> Json<ApplyResponse> {
    Json(ApplyResponse {
        generation: e.generation,
        changes: e.changes.into_iter().map(|c| c.text).collect(),
        warnings: e.warnings,
        dry_run,
    })
}

/// Makes the model equal the file, as one generation (or, with `dry_run`, says what would
/// change); see `App::apply_fleet`.
pub(super) async fn apply(
    State(s): State<Arc<AppState>>,
    Extension(User(user)): Extension<User>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ApplyResponse>, ApiError> {
    let req: ApplyRequest = json_body(body, s.app.config.max_body)?;
    let dry_run = req.dry_run;
    let e = blocking(move || {
        s.app
            .apply_fleet(&user, &req.name, &req.text, req.json, req.force, dry_run)
    })
    .await?;
    Ok(applied(e, dry_run))
}

/// Restores an export (with secrets, and its history when it has one) into an empty server.
pub(super) async fn import(
    State(s): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ImportResponse>, ApiError> {
    let req: ApplyRequest = json_body(body, s.app.config.max_body)?;
    Ok(Json(
        blocking(move || s.app.import_fleet(&req.name, &req.text, req.json)).await?,
    ))
}

pub(super) async fn rollback(
    State(s): State<Arc<AppState>>,
    Extension(User(user)): Extension<User>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ApplyResponse>, ApiError> {
    let req: RollbackRequest = json_body(body, s.app.config.max_body)?;
    let dry_run = req.dry_run;
    let e = blocking(move || s.app.rollback(&user, req.to, req.force, dry_run)).await?;
    Ok(applied(e, dry_run))
}

/// The change lines that turn generation `from`'s model into generation `to`'s.
pub(super) async fn diff(
    State(s): State<Arc<AppState>>,
    q: Result<Query<DiffQuery>, QueryRejection>,
) -> Result<Json<DiffResponse>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let (from, to) = (q.from, q.to);
    let changes = blocking(move || s.app.diff(from, to)).await?;
    Ok(Json(DiffResponse { from, to, changes }))
}
