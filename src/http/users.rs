//! `/api/v1/users` and `/api/v1/tokens`: named users with roles, and their API tokens. Who may
//! call what is decided in `admin::API_ROUTES`; these handlers only scope token lists to the caller.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use bytes::Bytes;

use super::admin::json_body;
use super::{ApiError, AppState};
use crate::api::{Role, TokenCreated, TokenInfo, TokenRequest, UserInfo, UserRequest};
use crate::app::blocking;
use crate::app::now;
use crate::store::{self, Caller};

/// The longest password, in bytes: argon2 reads all of it.
const MAX_PASSWORD: usize = 1024;

/// At least 8 characters: the hash is slow, but a 3-letter password is still guessed.
fn password_policy(p: &str) -> Result<(), ApiError> {
    if p.chars().count() < 8 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "password: use at least 8 characters",
        ));
    }
    if p.len() > MAX_PASSWORD {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("password: use at most {MAX_PASSWORD} bytes"),
        ));
    }
    Ok(())
}

pub(super) async fn list(State(s): State<Arc<AppState>>) -> Result<Json<Vec<UserInfo>>, ApiError> {
    blocking(move || Ok(Json(s.app.store_for_accounts().users()?))).await
}

pub(super) async fn add(
    State(s): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<UserInfo>, ApiError> {
    let req: UserRequest = json_body(body, s.app.config.max_body)?;
    store::check_user_name(&req.name)?;
    password_policy(&req.password)?;
    let role = req.role.unwrap_or(Role::Viewer);
    let created = now();
    blocking(move || {
        let hash = store::hash_password(&req.password)?;
        s.app
            .store_for_accounts()
            .add_user(&req.name, role, &hash, created)?;
        Ok(Json(UserInfo {
            name: req.name,
            role,
            created,
            has_password: true,
        }))
    })
    .await
}

pub(super) async fn passwd(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let req: UserRequest = json_body(body, s.app.config.max_body)?;
    password_policy(&req.password)?;
    blocking(move || {
        let hash = store::hash_password(&req.password)?;
        s.app.store_for_accounts().set_password(&name, &hash)?;
        // A new password ends the user's console sessions (the old one may have leaked).
        s.ui.sessions.remove_user(&name);
        Ok(Json(serde_json::json!({ "user": name })))
    })
    .await
}

pub(super) async fn remove(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if name == caller.name {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("user '{name}' may not remove itself"),
        ));
    }
    blocking(move || {
        s.app.store_for_accounts().remove_user(&name)?;
        s.ui.sessions.remove_user(&name);
        Ok(Json(serde_json::json!({ "user": name })))
    })
    .await
}

/// Admins see every token; anyone else their own.
fn owner_scope(caller: &Caller) -> Option<String> {
    (caller.role != Role::Admin).then(|| caller.name.clone())
}

pub(super) async fn tokens(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    blocking(move || {
        Ok(Json(
            s.app
                .store_for_accounts()
                .tokens(owner_scope(&caller).as_deref())?,
        ))
    })
    .await
}

pub(super) async fn create_token(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TokenCreated>, ApiError> {
    let req: TokenRequest = json_body(body, s.app.config.max_body)?;
    let created = now();
    let expires = req.expires_days.map(|d| created + i64::from(d) * 86_400);
    blocking(move || {
        let token = store::random_token();
        let info = s.app.store_for_accounts().add_api_token(
            &token,
            &caller.name,
            &req.name,
            created,
            expires,
        )?;
        Ok(Json(TokenCreated { info, token }))
    })
    .await
}

pub(super) async fn revoke(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    blocking(move || {
        s.app
            .store_for_accounts()
            .revoke_token(&id, owner_scope(&caller).as_deref())?;
        Ok(Json(serde_json::json!({ "revoked": id })))
    })
    .await
}
