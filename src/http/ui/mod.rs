//! The web console under `/ui`: server-rendered Tera pages, a session cookie, CSRF tokens on
//! every form, and strict security headers. It edits the model through the same
//! [`Store::edit`](crate::store::Store::edit) and the same role rules as the
//! API, so a change made here carries the user's name into history and changelogs.
//!
//! Everything it serves is in the binary: templates, CSS and the small script (no CDN; fleets
//! sit behind firewalls). The script only enhances: every page works without it.
//!
//! One module per URL family, each with its route table and its template: `dashboard` (`/ui/`),
//! `nodes` (`/ui/nodes`), `node` (`/ui/nodes/{host}…`), `bulk` (`/ui/bulk…`), `history`,
//! `tasks` (`/ui/tasks`), `task` (`/ui/tasks/{name}…`), `task_file`
//! (`/ui/tasks/{name}/file…`), `catalog` (`/ui/catalog…`) and `login` (`/ui/login`,
//! `/ui/logout`). `common` holds what they share; this module, what runs before any of them.

mod bulk;
mod catalog;
mod common;
mod dashboard;
mod history;
mod login;
mod node;
mod nodes;
mod session;
mod task;
mod task_file;
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

use super::{AppState, Verb};
use crate::app::now;

pub use common::encode;
use common::{Ctx, blocking, error_page, form_value};
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
    recent: std::sync::Mutex<Option<(u64, Arc<Vec<dashboard::Recent>>)>>,
    /// Password checks running at once (argon2id takes 19 MiB and a core's time each).
    password_checks: Arc<tokio::sync::Semaphore>,
}

/// Every page template, by name: the layout, the components the pages share (Tera 2's macros)
/// and the error page, then each page module's (`TEMPLATE`).
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("components.html", include_str!("templates/components.html")),
    ("error.html", include_str!("templates/error.html")),
    login::TEMPLATE,
    dashboard::TEMPLATE,
    nodes::TEMPLATE,
    node::TEMPLATE,
    bulk::TEMPLATE,
    bulk::CONFIRM_TEMPLATE,
    history::TEMPLATE,
    tasks::TEMPLATE,
    task::TEMPLATE,
    task_file::TEMPLATE,
    catalog::TEMPLATE,
];

impl Ui {
    pub fn new() -> Result<Ui, String> {
        let mut tera = tera::Tera::default();
        // Autoescape every page: node variables, templates and report lines are user input.
        tera.autoescape_on(vec![".html"]);
        tera.add_raw_templates(TEMPLATES.iter().copied())
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

type Handler = fn(MethodFilter) -> MethodRouter<Arc<AppState>>;

/// One console route. [`routes`] builds the console from the route tables only (this
/// module's and one per page module: a module per URL family), and [`console_routes`] lists them all, so a test can
/// walk every page a role may open (`tests/it/authz.rs`).
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

use Verb::Get;

/// The static files, open without a session.
static ASSETS: &[UiRoute] = &[
    page(Get, "/ui/static/umc.css", |m| on(m, css)),
    page(Get, "/ui/static/umc.js", |m| on(m, js)),
];

/// The routes open without a session: the login form and the static files.
fn open_routes() -> impl Iterator<Item = &'static UiRoute> {
    login::OPEN.iter().chain(ASSETS)
}

/// The routes behind [`require_session`]: every page and form.
fn session_routes() -> impl Iterator<Item = &'static UiRoute> {
    [
        dashboard::ROUTES,
        nodes::ROUTES,
        node::ROUTES,
        bulk::ROUTES,
        history::ROUTES,
        tasks::ROUTES,
        task::ROUTES,
        task_file::ROUTES,
        catalog::ROUTES,
        login::ROUTES,
    ]
    .into_iter()
    .flatten()
}

/// Every console route: the open ones, then those that need a session.
pub fn console_routes() -> impl Iterator<Item = &'static UiRoute> {
    open_routes().chain(session_routes())
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
    build(open_routes())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        Ui::new().expect("templates");
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
