//! The admin API (`/api/v1`): JSON, bearer token. Reads are plain GETs; every change is a
//! `POST /api/v1/edit` carrying a list of operations that commit as one generation.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Extension, Json, Router};
use bytes::Bytes;

use super::catalog;
use super::{ApiError, AppState};
use crate::api::{
    AuditEntry, AuditQuery, AuditRequest, EditRequest, EditResponse, LogEntry, LogQuery, NodeInfo,
    NodeToken, RenderQuery, RenderedFile, Role, ServerInfo, TaskInfo, TokenRotateRequest,
    TokenRotateResponse, VarValues,
};
use crate::app::{VAR_VALUES, blocking, now};
use crate::model::{Entity, normalize_host};
use crate::store::Caller;

#[derive(Clone)]
pub(super) struct User(pub String);

/// A method of an API route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
        }
    }

    /// `Get` also answers HEAD (axum's `get`), with the same role.
    pub(super) fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

type Handler = fn(MethodFilter) -> MethodRouter<Arc<AppState>>;

/// One route of `/api/v1`: the role it needs sits next to its handler. [`routes`] builds the
/// router from [`API_ROUTES`] only, so a route cannot exist without a role.
pub struct ApiRoute {
    pub verb: Verb,
    /// The axum path pattern below `/api/v1`, e.g. `/nodes/{host}/token`.
    pub path: &'static str,
    pub role: Role,
    handler: Handler,
}

const fn row(verb: Verb, path: &'static str, role: Role, handler: Handler) -> ApiRoute {
    ApiRoute {
        verb,
        path,
        role,
        handler,
    }
}

use Role::{Admin, Operator, Viewer};
use Verb::{Delete, Get, Post};

/// Every `/api/v1` route and the least role that may call it. Secrets (node tokens, a host's
/// rendered files, the backup with the signing key, the user list) need admin; the plain
/// export holds every variable's value and needs [`VAR_VALUES`] (operator). Some answers
/// depend on more than the route and check again inside: `POST /edit` asks `app::edit::ops_role`
/// for its operations, `GET /export?secrets=true` needs admin (`fleet::export`), the node and
/// variable reads show values by [`crate::app::shown_vars`], and token routes scope what a
/// non-admin sees to its own tokens.
pub static API_ROUTES: &[ApiRoute] = &[
    row(Get, "/server", Viewer, |m| on(m, server)),
    row(Get, "/nodes", Viewer, |m| on(m, nodes)),
    row(Get, "/nodes/{host}", Viewer, |m| on(m, node)),
    row(Get, "/nodes/{host}/token", Admin, |m| on(m, node_token)),
    row(Post, "/nodes/{host}/token", Admin, |m| on(m, rotate_token)),
    row(Get, "/nodes/{host}/render", Admin, |m| on(m, render)),
    row(Get, "/tasks", Viewer, |m| on(m, tasks)),
    row(Get, "/tasks/{task}", Viewer, |m| on(m, task)),
    row(Get, "/vars", Viewer, |m| on(m, vars)),
    row(Get, "/log", Viewer, |m| on(m, log)),
    row(Get, "/status", Viewer, |m| on(m, super::status::list)),
    row(Get, "/status/{host}", Viewer, |m| {
        on(m, super::status::host)
    }),
    row(Post, "/edit", Operator, |m| on(m, edit)),
    row(Get, "/export", VAR_VALUES, |m| on(m, super::fleet::export)),
    row(Post, "/apply", Admin, |m| on(m, super::fleet::apply)),
    row(Post, "/import", Admin, |m| on(m, super::fleet::import)),
    row(Post, "/rollback", Admin, |m| on(m, super::fleet::rollback)),
    row(Get, "/diff", Viewer, |m| on(m, super::fleet::diff)),
    row(Get, "/audit", Viewer, |m| on(m, audit_list)),
    row(Post, "/audit", Operator, |m| on(m, audit_record)),
    row(Get, "/backup", Admin, |m| on(m, super::backup::download)),
    row(Get, "/catalogs", Viewer, |m| on(m, catalog::list)),
    row(Get, "/catalogs/{name}", Viewer, |m| on(m, catalog::get_one)),
    row(Delete, "/catalogs/{name}", Admin, |m| {
        on(m, catalog::remove)
    }),
    row(Post, "/catalogs/{name}/import", Admin, |m| {
        on(m, catalog::import)
    }),
    row(Post, "/catalogs/{name}/file", Admin, |m| {
        on(m, catalog::upload).layer(DefaultBodyLimit::max(catalog::UPLOAD_MAX))
    }),
    row(Get, "/catalog/search", Viewer, |m| on(m, catalog::search)),
    row(Get, "/catalog/packages/{name}", Viewer, |m| {
        on(m, catalog::package)
    }),
    row(Get, "/keys", Viewer, |m| on(m, super::keys::list)),
    row(Get, "/keys/status", Viewer, |m| on(m, super::keys::status)),
    row(Post, "/keys/rotate", Admin, |m| on(m, super::keys::rotate)),
    row(Post, "/keys/import", Admin, |m| on(m, super::keys::import)),
    row(Post, "/keys/retire", Admin, |m| on(m, super::keys::retire)),
    row(Get, "/users", Admin, |m| on(m, super::users::list)),
    row(Post, "/users", Admin, |m| on(m, super::users::add)),
    row(Delete, "/users/{name}", Admin, |m| {
        on(m, super::users::remove)
    }),
    row(Post, "/users/{name}/password", Admin, |m| {
        on(m, super::users::passwd)
    }),
    // Every user manages its own tokens (`POST /tokens` also takes a password: how a user
    // gets a first token).
    row(Get, "/tokens", Viewer, |m| on(m, super::users::tokens)),
    row(Post, "/tokens", Viewer, |m| {
        on(m, super::users::create_token)
    }),
    row(Delete, "/tokens/{id}", Viewer, |m| {
        on(m, super::users::revoke)
    }),
];

/// The `/api/v1` router, built from [`API_ROUTES`]: `auth` finds the caller for every request
/// (401 without one, also for unknown paths); each route's own layer then checks its role.
pub(super) fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let mut r = Router::new();
    for route in API_ROUTES {
        let need = Need {
            state: state.clone(),
            role: route.role,
        };
        let handler = (route.handler)(route.verb.filter())
            .route_layer(middleware::from_fn_with_state(need, authorize));
        r = r.route(route.path, handler);
    }
    r.fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API endpoint") })
        .layer(middleware::from_fn_with_state(state, auth))
}

#[derive(Clone)]
struct Need {
    state: Arc<AppState>,
    role: Role,
}

/// A route's role check, then the body size from its Content-Length: before anything reads
/// the body (and before hyper answers `Expect: 100-continue`).
async fn authorize(State(need): State<Need>, req: Request, next: Next) -> Response {
    let Some(caller) = req.extensions().get::<Caller>() else {
        return ApiError::internal("route without a caller").into_response();
    };
    if caller.role < need.role {
        let what = format!("{} /api/v1{}", req.method(), api_path(req.uri().path()));
        return forbidden(caller, &what, need.role).into_response();
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let max = if is_upload(req.uri().path()) {
        catalog::UPLOAD_MAX
    } else {
        need.state.app.config.max_body
    };
    if declared.is_some_and(|n| n > max as u64) {
        return too_large(max).into_response();
    }
    next.run(req).await
}

/// Refuses `caller` unless it has role `need`, for checks that depend on more than the route
/// (a query parameter, the operations of an edit).
pub(super) fn require(caller: &Caller, need: Role, what: &str) -> Result<(), ApiError> {
    if caller.role < need {
        return Err(forbidden(caller, what, need));
    }
    Ok(())
}

async fn auth(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let path = api_path(req.uri().path()).to_string();
    let method = req.method().clone();
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let caller = match caller(&state, authorization.as_deref(), &method, &path, peer).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Some(caller) = caller else {
        let mut r =
            ApiError::new(StatusCode::UNAUTHORIZED, "missing or invalid API token").into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return r;
    };
    req.extensions_mut().insert(User(caller.name.clone()));
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// The route below `/api/v1` (a nested router may or may not see the prefix).
fn api_path(path: &str) -> &str {
    path.strip_prefix("/api/v1").unwrap_or(path)
}

/// Who is calling: a Bearer token (known, unexpired, its user still exists), or, for
/// `POST /tokens` only, HTTP Basic with a user's password (how a user gets a first token).
async fn caller(
    state: &Arc<AppState>,
    authorization: Option<&str>,
    method: &Method,
    path: &str,
    peer: Option<std::net::IpAddr>,
) -> Result<Option<Caller>, ApiError> {
    let Some(value) = authorization else {
        return Ok(None);
    };
    // The scheme is case-insensitive (RFC 9110, section 11.1).
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(state.app.api_user(credentials.trim(), now())?);
    }
    let basic = scheme
        .eq_ignore_ascii_case("basic")
        .then_some(credentials)
        .and_then(|b| {
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()?;
            let text = String::from_utf8(raw).ok()?;
            let (user, pass) = text.split_once(':')?;
            Some((user.to_string(), pass.to_string()))
        });
    match basic {
        Some((user, pass)) if method == Method::POST && path == "/tokens" => {
            // The same failed-login limits as the console's login form.
            let t = now();
            let possible = crate::app::auth::check_user_name(&user).is_ok();
            if let Err(wait) = state
                .ui
                .limiter
                .attempt(possible.then_some(user.as_str()), peer, t)
            {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many failed logins; try again in {wait} s"),
                ));
            }
            if !possible {
                return Ok(None);
            }
            let Some(permit) = state.ui.password_check() else {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many logins at once; try again in a moment",
                ));
            };
            let s = state.clone();
            let found = blocking(move || {
                let _permit = permit;
                Ok::<_, ApiError>(s.app.check_password(&user, &pass)?)
            })
            .await?;
            if let Some(c) = &found {
                state.ui.limiter.succeeded(&c.name, peer, t);
            }
            Ok(found)
        }
        _ => Ok(None),
    }
}

fn forbidden(caller: &Caller, what: &str, need: Role) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!(
            "user '{}' ({}) may not {what}: it needs role {}",
            caller.name,
            caller.role.as_str(),
            need.as_str()
        ),
    )
}

/// `POST /catalogs/<name>/file` carries a whole Packages file, beyond the JSON body limit.
fn is_upload(path: &str) -> bool {
    api_path(path)
        .strip_prefix("/catalogs/")
        .is_some_and(|rest| rest.ends_with("/file") && rest.matches('/').count() == 1)
}

/// A JSON request body: 413 past `max`, 400 with serde's position for malformed JSON.
pub(super) fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    max: usize,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(max)
        } else {
            ApiError::new(e.status(), e.body_text())
        }
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")))
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {max} bytes"),
    )
}

async fn server(State(s): State<Arc<AppState>>) -> Result<Json<ServerInfo>, ApiError> {
    Ok(Json(ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        generation: s.app.generation(),
        architectures: s.app.config.architectures.clone(),
        key_fingerprints: s.app.keys().keys.fingerprints(),
    }))
}

async fn nodes(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<NodeInfo>>, ApiError> {
    Ok(Json(blocking(move || s.app.node_list(caller.role)).await?))
}

fn host_arg(host: &str) -> Result<String, ApiError> {
    normalize_host(host).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))
}

async fn node(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(host): Path<String>,
) -> Result<Json<NodeInfo>, ApiError> {
    let host = host_arg(&host)?;
    Ok(Json(
        blocking(move || s.app.node_info(&host, caller.role)).await?,
    ))
}

async fn node_token(
    State(s): State<Arc<AppState>>,
    Path(host): Path<String>,
) -> Result<Json<NodeToken>, ApiError> {
    let host = host_arg(&host)?;
    Ok(Json(blocking(move || s.app.node_token(&host)).await?))
}

/// `POST /nodes/<host>/token`: a new token for the node, as an edit (`node_token_rotate`), so
/// it is in the history and durable before the answer. Admin only: the answer is a secret.
async fn rotate_token(
    State(s): State<Arc<AppState>>,
    Extension(User(user)): Extension<User>,
    Path(host): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TokenRotateResponse>, ApiError> {
    let host = host_arg(&host)?;
    let req: TokenRotateRequest = match &body {
        Ok(b) if b.is_empty() => TokenRotateRequest::default(),
        _ => json_body(body, s.app.config.max_body)?,
    };
    let (e, t) = blocking(move || s.app.rotate_node_token(&user, &host, req.force)).await?;
    Ok(Json(TokenRotateResponse {
        generation: e.generation,
        changes: e.changes.into_iter().map(|c| c.text).collect(),
        rotation: t.rotation,
        host: t.host,
        token: t.token,
    }))
}

async fn tasks(State(s): State<Arc<AppState>>) -> Result<Json<Vec<TaskInfo>>, ApiError> {
    Ok(Json(blocking(move || s.app.task_list()).await?))
}

async fn task(
    State(s): State<Arc<AppState>>,
    Path(task): Path<String>,
) -> Result<Json<TaskInfo>, ApiError> {
    Ok(Json(blocking(move || s.app.task_info(&task)).await?))
}

async fn vars(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<VarValues>, ApiError> {
    Ok(Json(blocking(move || s.app.var_values(caller.role)).await?))
}

/// One file as host `host` gets it: the preview behind `umc-admin render`.
async fn render(
    State(s): State<Arc<AppState>>,
    Path(host): Path<String>,
    q: Result<Query<RenderQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RenderedFile>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let host = host_arg(&host)?;
    Ok(Json(
        blocking(move || s.app.render_file(&host, &q.path)).await?,
    ))
}

async fn log(
    State(s): State<Arc<AppState>>,
    q: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<LogEntry>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let entity = match (q.host, q.task) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "give either host or task, not both",
            ));
        }
        (Some(h), None) => Some(Entity::Node(host_arg(&h)?)),
        (None, Some(t)) => Some(Entity::Task(t)),
        (None, None) => None,
    };
    let limit = q.limit.unwrap_or(50).min(10_000);
    Ok(Json(
        blocking(move || s.app.log(entity.as_ref(), limit)).await?,
    ))
}

async fn edit(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EditResponse>, ApiError> {
    let req: EditRequest = json_body(body, s.app.config.max_body)?;
    let e = blocking(move || s.app.edit(&caller, &req.ops, req.force)).await?;
    Ok(Json(EditResponse {
        generation: e.generation,
        changes: e.changes.into_iter().map(|c| c.text).collect(),
        warnings: e.warnings,
    }))
}

async fn audit_list(
    State(s): State<Arc<AppState>>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let limit = q.limit.unwrap_or(50).min(10_000);
    Ok(Json(blocking(move || s.app.audit(limit)).await?))
}

/// Records a fleet command umc-admin ran. It is history, not a model edit: no generation.
async fn audit_record(
    State(s): State<Arc<AppState>>,
    Extension(User(user)): Extension<User>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<AuditEntry>, ApiError> {
    let req: AuditRequest = json_body(body, s.app.config.max_body)?;
    Ok(Json(
        blocking(move || s.app.record_audit(&user, req)).await?,
    ))
}
