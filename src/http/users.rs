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
use crate::api::{
    Role, TokenCreated, TokenInfo, TokenRequest, TokenRevoked, UserChanged, UserInfo, UserRequest,
};
use crate::app::auth;
use crate::app::blocking;
use crate::app::now;
use crate::store::Caller;

pub(super) async fn list(State(s): State<Arc<AppState>>) -> Result<Json<Vec<UserInfo>>, ApiError> {
    blocking(move || Ok(Json(s.app.users()?))).await
}

pub(super) async fn add(
    State(s): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<UserInfo>, ApiError> {
    let req: UserRequest = json_body(body, s.app.config.max_body)?;
    // The cheap checks before the blocking hash.
    auth::check_user_name(&req.name)?;
    auth::check_password_policy(&req.password)?;
    let role = req.role.unwrap_or(Role::Viewer);
    let created = now();
    blocking(move || {
        Ok(Json(s.app.add_user(
            &req.name,
            role,
            &req.password,
            created,
        )?))
    })
    .await
}

pub(super) async fn passwd(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<UserChanged>, ApiError> {
    let req: UserRequest = json_body(body, s.app.config.max_body)?;
    auth::check_password_policy(&req.password)?;
    blocking(move || {
        s.app.set_password(&name, &req.password)?;
        // A new password ends the user's console sessions (the old one may have leaked).
        s.ui.sessions.remove_user(&name);
        Ok(Json(UserChanged { user: name }))
    })
    .await
}

pub(super) async fn remove(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<UserChanged>, ApiError> {
    if name == caller.name {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("user '{name}' may not remove itself"),
        ));
    }
    blocking(move || {
        s.app.remove_user(&name)?;
        s.ui.sessions.remove_user(&name);
        Ok(Json(UserChanged { user: name }))
    })
    .await
}

pub(super) async fn tokens(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    blocking(move || Ok(Json(s.app.tokens(&caller)?))).await
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
        Ok(Json(s.app.create_token(
            &caller.name,
            &req.name,
            created,
            expires,
        )?))
    })
    .await
}

pub(super) async fn revoke(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<TokenRevoked>, ApiError> {
    blocking(move || {
        s.app.revoke_token(&caller, &id)?;
        Ok(Json(TokenRevoked { revoked: id }))
    })
    .await
}
