//! What anyone may fetch besides apt's routes and the console's login: `/healthz` and the
//! archive keyrings.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::conditional;
use crate::store::Health;

/// `GET /healthz`: `ok`, or 503 and why while the database cannot be written (an I/O error,
/// a full disk) or read (a panic, corruption); see `store::db`.
pub(super) async fn healthz(State(s): State<Arc<AppState>>) -> Response {
    match s.app.health().await {
        Health::Ok => (StatusCode::OK, "ok\n").into_response(),
        Health::Degraded(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("degraded: {why}\n"),
        )
            .into_response(),
    }
}

fn keyring(
    method: &Method,
    headers: &HeaderMap,
    body: &bytes::Bytes,
    ct: &'static str,
) -> Response {
    use sha2::Digest;
    conditional::respond(
        method,
        headers,
        conditional::Resource {
            sha256: hex::encode(sha2::Sha256::digest(body)),
            body: body.clone(),
            last_modified: None,
            ambiguous_date: false,
            immutable: false,
            content_type: ct,
            cache_control: conditional::NO_CACHE,
        },
    )
    .into_response()
}

pub(super) async fn keyring_gpg(
    State(s): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    keyring(
        &method,
        &headers,
        &s.app.keys().keyring_gpg,
        "application/pgp-keys",
    )
}

pub(super) async fn keyring_asc(
    State(s): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    keyring(
        &method,
        &headers,
        &s.app.keys().keyring_asc,
        "application/pgp-keys",
    )
}
