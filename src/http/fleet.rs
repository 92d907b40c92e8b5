//! The fleet as a whole: export, apply a fleet file, import into an empty server, rollback to
//! a past generation, and the diff between two generations.

use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use bytes::Bytes;
use serde::Deserialize;

use super::admin::{User, json_body, require};
use super::{ApiError, AppState};
use crate::api::{
    ApplyRequest, ApplyResponse, DiffResponse, ImportResponse, Op, Role, RollbackRequest,
};
use crate::app::blocking;
use crate::app::now;
use crate::fleetfile::{self, Fleet, Lines, Problem};
use crate::model::Model;
use crate::store::{Caller, EditOptions, EditOutcome, Export, StoreError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportQuery {
    #[serde(default)]
    secrets: bool,
    #[serde(default)]
    history: bool,
}

/// The whole model in its file form, for operators and admins (it holds every variable's
/// value: `admin::VAR_VALUES`); node tokens only with `secrets=true`, for admins. Viewers get
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
    blocking(move || {
        let e = s.app.store.export(q.history)?;
        let mut fleet = Fleet::from_model(&e.model, e.generation, e.server_generation, q.secrets);
        fleet.history = e.history;
        Ok(Json(fleet))
    })
    .await
}

fn parse(name: &str, text: &str, json: bool) -> Result<(Fleet, Lines, Model), ApiError> {
    let bad = |p: Vec<Problem>| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            fleetfile::describe(name, &p),
        )
    };
    let (fleet, lines) = if json {
        fleetfile::parse_json(text)
    } else {
        fleetfile::parse_toml(text)
    }
    .map_err(bad)?;
    let model = fleet.to_model(&lines).map_err(bad)?;
    Ok((fleet, lines, model))
}

fn file_name(name: &str) -> String {
    if name.is_empty() {
        "fleet file".to_string()
    } else {
        name.to_string()
    }
}

/// An edit's rejection, placed at the line of the entity it names.
fn placed(name: &str, lines: &Lines, e: StoreError) -> ApiError {
    let api = ApiError::from(e);
    if api.status.is_server_error() {
        return api;
    }
    let p = Problem {
        line: lines.for_message(&api.message),
        message: api.message.clone(),
    };
    ApiError::new(api.status, fleetfile::describe(name, &[p]))
}

/// Makes the model equal the file, as one generation (or, with `dry_run`, says what would
/// change). Tokens and generation counters in the file are ignored, except that a node the
/// file creates gets the file's token when it has one.
pub(super) async fn apply(
    State(s): State<Arc<AppState>>,
    Extension(User(user)): Extension<User>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ApplyResponse>, ApiError> {
    let req: ApplyRequest = json_body(body, s.app.config.max_body)?;
    blocking(move || {
        let name = file_name(&req.name);
        let (_, lines, want) = parse(&name, &req.text, req.json)?;
        let (current, have) = s.app.store.model()?;
        let (ops, tokens) = fleetfile::diff_ops(&have, &want);
        let opts = EditOptions {
            tokens,
            force: req.force,
            dry_run: req.dry_run,
            ..EditOptions::default()
        };
        let e = edit_diff(&s, &user, current, &ops, opts).map_err(|e| placed(&name, &lines, e))?;
        if !req.dry_run {
            s.app.set_generation(e.generation);
        }
        Ok(Json(ApplyResponse {
            generation: e.generation,
            changes: e.changes.into_iter().map(|c| c.text).collect(),
            warnings: e.warnings,
            dry_run: req.dry_run,
        }))
    })
    .await
}

/// The edit `ops` (from `diff_ops` against generation `current`'s model) make; none: the model
/// is as wanted already, nothing to change.
fn edit_diff(
    s: &AppState,
    user: &str,
    current: u64,
    ops: &[Op],
    opts: EditOptions,
) -> Result<EditOutcome, StoreError> {
    if ops.is_empty() {
        return Ok(EditOutcome {
            generation: current,
            changes: Vec::new(),
            warnings: Vec::new(),
        });
    }
    s.app.store.edit(user, ops, now(), opts)
}

/// Restores an export (with secrets, and its history when it has one) into an empty server.
pub(super) async fn import(
    State(s): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ImportResponse>, ApiError> {
    let req: ApplyRequest = json_body(body, s.app.config.max_body)?;
    blocking(move || {
        let name = file_name(&req.name);
        let (fleet, _, model) = parse(&name, &req.text, req.json)?;
        let export = Export {
            generation: fleet.umc.generation.unwrap_or(0),
            server_generation: fleet.umc.server_generation.unwrap_or(0),
            model,
            history: fleet.history,
        };
        let generation = s.app.store.import(&export, now())?;
        s.app.set_generation(generation);
        Ok(Json(ImportResponse {
            generation,
            nodes: export.model.nodes.len(),
            tasks: export.model.tasks.len(),
            history: export.history.len(),
        }))
    })
    .await
}

pub(super) async fn rollback(
    State(s): State<Arc<AppState>>,
    Extension(User(user)): Extension<User>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ApplyResponse>, ApiError> {
    let req: RollbackRequest = json_body(body, s.app.config.max_body)?;
    blocking(move || {
        let want = s.app.store.model_at(req.to)?;
        let (current, have) = s.app.store.model()?;
        let (ops, tokens) = fleetfile::diff_ops(&have, &want);
        let opts = EditOptions {
            tokens,
            preface: Some(format!(
                "User '{user}' rolled back to generation {}",
                req.to
            )),
            force: req.force,
            dry_run: req.dry_run,
        };
        let e = edit_diff(&s, &user, current, &ops, opts)?;
        if !req.dry_run {
            s.app.set_generation(e.generation);
        }
        Ok(Json(ApplyResponse {
            generation: e.generation,
            changes: e.changes.into_iter().map(|c| c.text).collect(),
            warnings: e.warnings,
            dry_run: req.dry_run,
        }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DiffQuery {
    from: u64,
    to: u64,
}

/// The change lines that turn generation `from`'s model into generation `to`'s.
pub(super) async fn diff(
    State(s): State<Arc<AppState>>,
    q: Result<Query<DiffQuery>, QueryRejection>,
) -> Result<Json<DiffResponse>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    blocking(move || {
        let old = s.app.store.model_at(q.from)?;
        let new = s.app.store.model_at(q.to)?;
        let (ops, _) = fleetfile::diff_ops(&old, &new);
        let mut scratch = old.clone();
        let mut changes = Vec::new();
        let mut tokens = NoTokens;
        for op in &ops {
            let lines = scratch
                .apply(op, "diff", &mut tokens)
                .map_err(|e| ApiError::internal(format!("diff {}..{}: {e}", q.from, q.to)))?;
            changes.extend(
                lines
                    .into_iter()
                    .map(|c| c.text.trim_start_matches("User 'diff' ").to_string()),
            );
        }
        Ok(Json(DiffResponse {
            from: q.from,
            to: q.to,
            changes,
        }))
    })
    .await
}

struct NoTokens;
impl crate::model::TokenSource for NoTokens {
    fn token(&mut self) -> String {
        String::new()
    }
}
