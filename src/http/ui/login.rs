//! `/ui/login` and `/ui/logout`: the login form (its own double-submit CSRF token, since there
//! is no session yet), the rate-limited password check and a fresh session id, and logout.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::on;
use serde::Serialize;

use super::common::{Ctx, blocking, form_value, html, internal};
use super::{
    COOKIE, LOGIN_COOKIE, UiRoute, cookie, cross_origin, forbidden_csrf, origin_mismatch, page,
    peer, same, session, set_cookie,
};
use crate::app::now;
use crate::http::AppState;
use crate::http::Verb::{Get, Post};

pub(super) const TEMPLATE: (&str, &str) = ("login.html", include_str!("templates/login.html"));

/// The routes open without a session.
pub(super) static OPEN: &[UiRoute] = &[
    page(Get, "/ui/login", |m| on(m, login_page)),
    page(Post, "/ui/login", |m| on(m, login)),
];

/// The routes behind the session check.
pub(super) static ROUTES: &[UiRoute] = &[page(Post, "/ui/logout", |m| on(m, logout))];

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
    fn next_is_local_only() {
        assert_eq!(safe_next(Some("/ui/nodes?q=a")), "/ui/nodes?q=a");
        assert_eq!(safe_next(Some("https://evil.example/")), "/ui/");
        assert_eq!(safe_next(Some("//evil.example/ui/")), "/ui/");
        assert_eq!(safe_next(Some("/ui/\\evil")), "/ui/");
        assert_eq!(safe_next(None), "/ui/");
    }
}
