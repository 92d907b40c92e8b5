//! `umc-admin key list|rotate|import|status|retire` (`/api/v1/keys…`); the key sets and the
//! protocol of a key change are `app::keys`'s.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::{Extension, Json};
use base64::Engine;
use bytes::Bytes;

use super::admin::{User, json_body};
use super::{ApiError, AppState};
use crate::api::{KeyChangeResponse, KeyImportRequest, KeyInfo, KeyRetireRequest, KeyStatus};
use crate::app::blocking;

pub(super) async fn list(State(s): State<Arc<AppState>>) -> Result<Json<Vec<KeyInfo>>, ApiError> {
    Ok(Json(blocking(move || s.app.key_list()).await?))
}

pub(super) async fn status(State(s): State<Arc<AppState>>) -> Result<Json<KeyStatus>, ApiError> {
    Ok(Json(blocking(move || s.app.key_status()).await?))
}

/// `POST /keys/rotate`: a new Ed25519 key; InRelease is signed by every key from now on.
pub(super) async fn rotate(
    State(s): State<Arc<AppState>>,
    Extension(User(user)): Extension<User>,
) -> Result<Json<KeyChangeResponse>, ApiError> {
    Ok(Json(blocking(move || s.app.rotate_key(&user)).await?))
}

/// `POST /keys/import`: an existing key (aptly, reprepro), refused when apt 3 would refuse it.
pub(super) async fn import(
    State(s): State<Arc<AppState>>,
    Extension(User(user)): Extension<User>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<KeyChangeResponse>, ApiError> {
    let req: KeyImportRequest = json_body(body, s.app.config.max_body)?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(req.key_base64.trim())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("key_base64: {e}")))?;
    Ok(Json(blocking(move || s.app.import_key(&user, &key)).await?))
}

/// `POST /keys/retire`: stop signing with a key. Refused (409) while an active node has not
/// confirmed the keys that remain, unless `force`.
pub(super) async fn retire(
    State(s): State<Arc<AppState>>,
    Extension(User(user)): Extension<User>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<KeyChangeResponse>, ApiError> {
    let req: KeyRetireRequest = json_body(body, s.app.config.max_body)?;
    Ok(Json(
        blocking(move || s.app.retire_key(&user, &req.fingerprint, req.force)).await?,
    ))
}
