//! The web console under `/ui`: server-rendered Tera pages, a session cookie, CSRF tokens on
//! every form, and strict security headers. It edits the model through the same
//! [`Store::edit`](crate::store::Store::edit) and the same role rules as the
//! API, so a change made here carries the user's name into history and changelogs.
//!
//! Everything it serves is in the binary: templates, CSS and the small script (no CDN; fleets
//! sit behind firewalls). The script only enhances: every page works without it.

mod nodes;
mod pages;
mod session;
mod tasks;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use bytes::Bytes;
use serde::Serialize;

use super::{AppState, Verb};
use crate::api::{Op, Role};
use crate::app::now;
use crate::app::{AppError, ErrorKind};
use crate::store::{Caller, EditOutcome};

use session::{Limiter, Sessions};

const COOKIE: &str = "umc_session";
/// The login form's double-submit token (there is no session to hold one yet).
const LOGIN_COOKIE: &str = "umc_login";

const CSS: &str = include_str!("static/umc.css");
const JS: &str = include_str!("static/umc.js");

/// Templates, sessions and the login limiter.
pub struct Ui {
    tera: tera::Tera,
    pub sessions: Sessions,
    pub limiter: Limiter,
    /// The dashboard's latest changes, per generation (a bulk edit's record holds thousands
    /// of lines; decoding them on every view would cost more than the rest of the page).
    recent: std::sync::Mutex<Option<(u64, Arc<Vec<pages::Recent>>)>>,
    /// Password checks running at once (argon2id takes 19 MiB and a core's time each).
    password_checks: Arc<tokio::sync::Semaphore>,
}

/// Every page template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("error.html", include_str!("templates/error.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("nodes.html", include_str!("templates/nodes.html")),
];

impl Ui {
    pub fn new() -> Result<Ui, String> {
        let mut tera = tera::Tera::default();
        // Autoescape every page: node variables, templates and report lines are user input.
        tera.autoescape_on(vec![".html"]);
        tera.add_raw_templates(
            TEMPLATES
                .iter()
                .chain(tasks::TEMPLATES)
                .chain(nodes::TEMPLATES)
                .copied(),
        )
        .map_err(|e| format!("web console templates: {e}"))?;
        Ok(Ui {
            tera,
            sessions: Sessions::default(),
            limiter: Limiter::default(),
            recent: std::sync::Mutex::new(None),
            password_checks: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
            )),
        })
    }

    /// A slot for one password check, or none when all are busy (answer 503 then: queuing
    /// would let a flood of logins hold memory and threads).
    pub fn password_check(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.password_checks.clone().try_acquire_owned().ok()
    }
}

/// Who is looking at a page (set by [`require_session`]).
#[derive(Clone, Debug)]
pub struct Ctx {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    sid: String,
    flash: Option<String>,
}

impl Ctx {
    pub fn can_operate(&self) -> bool {
        self.role >= Role::Operator
    }
    pub fn can_admin(&self) -> bool {
        self.role >= Role::Admin
    }
}

#[derive(Serialize)]
struct Me<'a> {
    user: &'a str,
    role: &'static str,
    csrf: &'a str,
    can_operate: bool,
    can_admin: bool,
}

type Handler = fn(MethodFilter) -> MethodRouter<Arc<AppState>>;

/// One console route. [`routes`] builds the console from the route tables only (this
/// module's and one per page module), and [`console_routes`] lists them all, so a test can
/// walk every page a role may open (`tests/authz.rs`).
pub struct UiRoute {
    pub verb: Verb,
    /// The axum path pattern, e.g. `/ui/nodes/{host}`.
    pub path: &'static str,
    handler: Handler,
}

const fn page(verb: Verb, path: &'static str, handler: Handler) -> UiRoute {
    UiRoute {
        verb,
        path,
        handler,
    }
}

use Verb::{Get, Post};

/// The routes open without a session.
static OPEN: &[UiRoute] = &[
    page(Get, "/ui/login", |m| on(m, login_page)),
    page(Post, "/ui/login", |m| on(m, login)),
    page(Get, "/ui/static/umc.css", |m| on(m, css)),
    page(Get, "/ui/static/umc.js", |m| on(m, js)),
];

/// This module's routes behind [`require_session`].
static SESSION: &[UiRoute] = &[page(Post, "/ui/logout", |m| on(m, logout))];

/// The routes behind [`require_session`]: every page and form.
fn session_routes() -> impl Iterator<Item = &'static UiRoute> {
    pages::ROUTES
        .iter()
        .chain(tasks::ROUTES)
        .chain(nodes::ROUTES)
        .chain(SESSION)
}

/// Every console route: the open ones, then those that need a session.
pub fn console_routes() -> impl Iterator<Item = &'static UiRoute> {
    OPEN.iter().chain(session_routes())
}

fn build<'a>(table: impl Iterator<Item = &'a UiRoute>) -> Router<Arc<AppState>> {
    table.fold(Router::new(), |r, p| {
        r.route(p.path, (p.handler)(p.verb.filter()))
    })
}

/// Every console route, under `/ui/`.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let max_body = state.app.config.max_body;
    let private =
        build(session_routes()).layer(middleware::from_fn_with_state(state, require_session));
    build(OPEN.iter())
        .merge(private)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(security_headers))
}

/// Headers every console response carries: no inline script, no framing, no sniffing, and
/// no caching of pages that show fleet data.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: under it Chromium sends `Origin: null` with same-origin form
    // POSTs, which the origin check must refuse.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// `Secure` when the request came over TLS (a reverse proxy in front of umcd says so).
pub(super) fn secure(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if secure(headers) {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Constant-time comparison of two tokens.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn peer(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// A request from another origin (a browser sends `Origin` on every POST): refused even
/// before the CSRF token is looked at.
fn cross_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    origin == "null" || origin_host != host
}

fn origin_mismatch(headers: &HeaderMap) -> String {
    let get = |h| {
        headers
            .get(h)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    format!(
        "a form from origin '{}' posted to host '{}'",
        get(header::ORIGIN),
        get(header::HOST)
    )
}

/// Finds the session (or sends the browser to the login page), reads the user's current role
/// from the store (a removed user's cookie stops working at once), and checks the CSRF token
/// and origin of every POST before any handler sees it.
async fn require_session(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let t = now();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let login_url = if req.method() == Method::GET && path.starts_with("/ui/") {
        format!("/ui/login?next={}", encode(&path))
    } else {
        "/ui/login".to_string()
    };
    let to_login = move || Redirect::to(&login_url).into_response();
    let Some(sid) = cookie(req.headers(), COOKIE) else {
        return to_login();
    };
    // Only a page view shows (and so uses up) the one-shot message, not a script's fetch.
    let page_view = req.method() == Method::GET && !path.starts_with("/ui/catalog/suggest");
    let Some(session) = state.ui.sessions.get(&sid, t, page_view) else {
        return to_login();
    };
    let st = state.clone();
    let user = session.user.clone();
    let role = match blocking(move || st.app.user_role(&user)).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            state.ui.sessions.remove_user(&session.user);
            return to_login();
        }
        Err(r) => return r,
    };
    let ctx = Ctx {
        user: session.user,
        role,
        csrf: session.csrf,
        sid,
        flash: session.flash,
    };
    let (mut parts, body) = req.into_parts();
    // Everything but GET and HEAD changes something: no such route may skip the check.
    if parts.method != Method::GET && parts.method != Method::HEAD {
        if cross_origin(&parts.headers) {
            return forbidden_csrf(&origin_mismatch(&parts.headers));
        }
        let bytes = match axum::body::to_bytes(body, state.app.config.max_body).await {
            Ok(b) => b,
            Err(_) => {
                return error_page(
                    &state,
                    Some(&ctx),
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!(
                        "the form is larger than {} bytes; nothing was changed",
                        state.app.config.max_body
                    ),
                );
            }
        };
        let given = form_value(&bytes, "csrf");
        if !given.as_deref().is_some_and(|g| same(g, &ctx.csrf)) {
            return forbidden_csrf("a form without this session's CSRF token");
        }
        parts.extensions.insert(ctx);
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    }
    parts.extensions.insert(ctx);
    next.run(Request::from_parts(parts, body)).await
}

fn forbidden_csrf(what: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("refused {what}; nothing was changed: reload the page and try again\n"),
    )
        .into_response()
}

/// Runs `f` off the async workers (`app::blocking`); a failure is the internal error page.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, Response> {
    crate::app::blocking(f).await.map_err(internal)
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!("web console: {e}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "internal server error\n",
    )
        .into_response()
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// All `name=value` pairs of a urlencoded form, in order (repeated names kept).
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The first value of `name` in a urlencoded form.
pub fn form_value(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Renders `template` inside the layout, for the user in `ctx`.
pub fn render(
    state: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    template: &str,
    mut page: tera::Context,
) -> Response {
    page.insert(
        "me",
        &Me {
            user: &ctx.user,
            role: ctx.role.as_str(),
            csrf: &ctx.csrf,
            can_operate: ctx.can_operate(),
            can_admin: ctx.can_admin(),
        },
    );
    page.insert("flash", &ctx.flash);
    html(state, status, template, &page)
}

fn html(state: &AppState, status: StatusCode, template: &str, page: &tera::Context) -> Response {
    match state.ui.tera.render(template, page) {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => internal(format!("rendering {template}: {e}")),
    }
}

/// An error shown as a page (inside the layout when the user is known).
pub fn error_page(
    state: &AppState,
    ctx: Option<&Ctx>,
    status: StatusCode,
    message: &str,
) -> Response {
    let mut page = tera::Context::new();
    page.insert("status", &status.as_u16());
    page.insert("message", message);
    page.insert("title", status.canonical_reason().unwrap_or("Error"));
    match ctx {
        Some(c) => render(state, c, status, "error.html", page),
        None => {
            page.insert("me", &None::<()>);
            page.insert("flash", &None::<String>);
            html(state, status, "error.html", &page)
        }
    }
}

/// Sets a one-shot message and sends the browser to `to` (post/redirect/get).
pub fn done(state: &AppState, ctx: &Ctx, message: String, to: &str) -> Response {
    state.ui.sessions.set_flash(&ctx.sid, message);
    Redirect::to(to).into_response()
}

/// Why an edit from a form was refused.
pub enum EditError {
    /// The user's role may not make it (403).
    Forbidden(String),
    /// The model (or the store) said no, with this status; the message belongs next to the
    /// field that caused it, which the error itself names when the model refused
    /// ([`AppError::model`], [`crate::model::ModelError::field`]).
    Rejected(StatusCode, AppError),
    Internal(Response),
}

/// Commits `ops` as user `ctx.user`, with the API's role rules (`App::edit`), as one
/// generation.
pub async fn edit(
    state: &Arc<AppState>,
    ctx: &Ctx,
    ops: Vec<Op>,
) -> Result<EditOutcome, EditError> {
    let app = state.app.clone();
    let caller = Caller {
        name: ctx.user.clone(),
        role: ctx.role,
    };
    match crate::app::blocking(move || app.edit(&caller, &ops, false)).await {
        Ok(e) => Ok(e),
        Err(e) if e.kind() == ErrorKind::Forbidden => Err(EditError::Forbidden(e.to_string())),
        Err(e) => {
            let status = super::error::status(e.kind());
            if status.is_server_error() {
                let api: super::ApiError = e.into();
                Err(EditError::Internal(internal(api.message)))
            } else {
                Err(EditError::Rejected(status, e))
            }
        }
    }
}

/// Answers a refused edit with a page of its own (for forms without a field to show it at).
pub fn edit_error_page(state: &AppState, ctx: &Ctx, e: EditError) -> Response {
    match e {
        EditError::Forbidden(m) => error_page(state, Some(ctx), StatusCode::FORBIDDEN, &m),
        EditError::Rejected(s, e) => error_page(state, Some(ctx), s, &e.to_string()),
        EditError::Internal(r) => r,
    }
}

/// The role check for pages that change things outside `edit`: the 403 page when `ctx`'s
/// role is below `role`.
pub fn refuse_below(state: &AppState, ctx: &Ctx, role: Role, what: &str) -> Option<Response> {
    if ctx.role >= role {
        return None;
    }
    Some(error_page(
        state,
        Some(ctx),
        StatusCode::FORBIDDEN,
        &format!(
            "user '{}' ({}) may not {what}: it needs role {}",
            ctx.user,
            ctx.role.as_str(),
            role.as_str()
        ),
    ))
}

async fn css(method: Method, headers: HeaderMap) -> Response {
    asset(&method, &headers, CSS, "text/css; charset=utf-8")
}

async fn js(method: Method, headers: HeaderMap) -> Response {
    asset(&method, &headers, JS, "text/javascript; charset=utf-8")
}

fn asset(method: &Method, headers: &HeaderMap, body: &'static str, ct: &'static str) -> Response {
    use sha2::Digest;
    super::conditional::respond(
        method,
        headers,
        super::conditional::Resource {
            sha256: hex::encode(sha2::Sha256::digest(body.as_bytes())),
            body: Bytes::from_static(body.as_bytes()),
            last_modified: None,
            ambiguous_date: false,
            immutable: false,
            content_type: ct,
            cache_control: super::conditional::NO_CACHE,
        },
    )
    .into_response()
}

#[derive(Serialize, Default)]
struct LoginForm {
    user: String,
    error: Option<String>,
    next: String,
}

fn login_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    form: LoginForm,
) -> Response {
    // Keep the browser's token if it has one: a login page opened twice (two tabs, or a
    // reload the browser makes on its own) must not invalidate the form shown first.
    let token = cookie(headers, LOGIN_COOKIE)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(session::random_hex);
    let mut page = tera::Context::new();
    page.insert("form", &form);
    page.insert("login_csrf", &token);
    page.insert("me", &None::<()>);
    page.insert("flash", &None::<String>);
    let mut resp = html(state, status, "login.html", &page);
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(headers, LOGIN_COOKIE, &token, Some(600)),
    );
    resp
}

/// Only a local path may follow a login (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/ui/")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.to_string()
        }
        _ => "/ui/".to_string(),
    }
}

async fn login_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: axum::extract::RawQuery,
) -> Response {
    let next = query
        .0
        .and_then(|q| form_value(q.as_bytes(), "next"))
        .map(|n| safe_next(Some(&n)))
        .unwrap_or_default();
    login_form(
        &state,
        &headers,
        StatusCode::OK,
        LoginForm {
            next,
            ..LoginForm::default()
        },
    )
}

/// `POST /ui/login`: rate-limited per user and per source address before the password is
/// checked; on success a fresh session id (never one the browser brought along).
async fn login(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let addr = peer(&req);
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    if cross_origin(&headers) {
        return forbidden_csrf(&origin_mismatch(&headers));
    }
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "login form too large\n").into_response();
    };
    let user = form_value(&bytes, "user")
        .unwrap_or_default()
        .trim()
        .to_string();
    let password = form_value(&bytes, "password").unwrap_or_default();
    let next = safe_next(form_value(&bytes, "next").as_deref());
    let given = form_value(&bytes, "csrf");
    let expected = cookie(&headers, LOGIN_COOKIE);
    if !matches!((&given, &expected), (Some(g), Some(e)) if same(g, e)) {
        return forbidden_csrf("a login form without its CSRF token (are cookies enabled?)");
    }
    let again = |status, error: String| {
        login_form(
            &state,
            &headers,
            status,
            LoginForm {
                user: user.clone(),
                error: Some(error),
                next: next.clone(),
            },
        )
    };
    if user.is_empty() || password.is_empty() {
        return again(
            StatusCode::UNPROCESSABLE_ENTITY,
            "enter a user name and a password".into(),
        );
    }
    let t = now();
    // A name that cannot exist is answered like a wrong password, without argon2, and counts
    // against the address only (its text never reaches the limiter's map or the log).
    let possible = crate::app::auth::check_user_name(&user).is_ok();
    if let Err(wait) = state
        .ui
        .limiter
        .attempt(possible.then_some(user.as_str()), addr, t)
    {
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many failed logins; try again in {} minute(s)",
                (wait + 59) / 60
            ),
        );
    }
    if !possible {
        return again(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password".into(),
        );
    }
    let Some(permit) = state.ui.password_check() else {
        return again(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many logins at once; try again in a moment".into(),
        );
    };
    let st = state.clone();
    let u = user.clone();
    let checked = blocking(move || {
        let _permit = permit;
        st.app.check_password(&u, &password)
    })
    .await;
    let caller = match checked {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(caller) = caller else {
        tracing::info!("web console: failed login for {user:?} from {addr:?}");
        return again(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password".into(),
        );
    };
    state.ui.limiter.succeeded(&caller.name, addr, t);
    let Some(sid) = state.ui.sessions.create(&caller.name, t) else {
        return internal("no session could be created");
    };
    let mut resp = Redirect::to(&next).into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&headers, COOKIE, &sid, None));
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&headers, LOGIN_COOKIE, "", Some(0)),
    );
    resp
}

async fn logout(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    headers: HeaderMap,
) -> Response {
    state.ui.sessions.remove(&ctx.sid);
    let mut resp = Redirect::to("/ui/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&headers, COOKIE, "", Some(0)),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        Ui::new().expect("templates");
    }

    #[test]
    fn next_is_local_only() {
        assert_eq!(safe_next(Some("/ui/nodes?q=a")), "/ui/nodes?q=a");
        assert_eq!(safe_next(Some("https://evil.example/")), "/ui/");
        assert_eq!(safe_next(Some("//evil.example/ui/")), "/ui/");
        assert_eq!(safe_next(Some("/ui/\\evil")), "/ui/");
        assert_eq!(safe_next(None), "/ui/");
    }

    #[test]
    fn origin_must_match_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!cross_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(!cross_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(cross_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(cross_origin(&h));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", ""));
    }
}
