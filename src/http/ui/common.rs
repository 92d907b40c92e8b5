//! What every console page uses: who is looking ([`Ctx`]), the layout and the error page,
//! form values, times, and commits through `App::edit` with the message a refused one shows.

use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;

use crate::api::{Op, Role};
use crate::app::reads::FleetView;
use crate::app::{AppError, ErrorKind};
use crate::http::AppState;
use crate::model::{Model, ModelError};
use crate::store::{Caller, EditOutcome};

/// Who is looking at a page (set by [`super::require_session`]).
#[derive(Clone, Debug)]
pub(super) struct Ctx {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    pub(super) sid: String,
    pub(super) flash: Option<String>,
}

impl Ctx {
    pub(super) fn can_operate(&self) -> bool {
        self.role >= Role::Operator
    }
    pub(super) fn can_admin(&self) -> bool {
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

/// Runs `f` off the async workers (`app::blocking`); a failure is the internal error page.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, Response> {
    crate::app::blocking(f).await.map_err(internal)
}

/// The model and the fleet status (`App::fleet_view`), off the async workers.
pub(super) async fn fleet_view(state: &Arc<AppState>) -> Result<FleetView, Response> {
    let st = state.clone();
    blocking(move || st.app.fleet_view()).await
}

/// The current model (`App::model`), off the async workers.
pub(super) async fn load_model(state: &Arc<AppState>) -> Result<Arc<Model>, Response> {
    let st = state.clone();
    blocking(move || Ok(st.app.model()?)).await
}

pub(super) fn internal(e: impl std::fmt::Display) -> Response {
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
pub(super) fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The first value of `name` in a urlencoded form.
pub(super) fn form_value(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The first value of `name` in a urlencoded form (or query), trimmed; empty when absent.
pub(super) fn field(body: &[u8], name: &str) -> String {
    form_value(body, name)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// [`field`] of a query string, which may be absent.
pub(super) fn query_field(query: Option<&str>, name: &str) -> String {
    query.map(|q| field(q.as_bytes(), name)).unwrap_or_default()
}

/// A time as the templates show it: "3 min ago", with the full date for a `title`.
#[derive(Serialize)]
pub(super) struct When {
    ago: String,
    utc: String,
}

/// [`When`] `t` is, seen at `now`.
pub(super) fn when(now: i64, t: i64) -> When {
    When {
        ago: crate::time::ago(now, t, crate::time::Units::Short),
        utc: crate::time::http_date(t),
    }
}

/// Renders `template` inside the layout, for the user in `ctx`.
pub(super) fn render(
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

/// Renders `template` as it is (no user: the login and error pages before a session).
pub(super) fn html(
    state: &AppState,
    status: StatusCode,
    template: &str,
    page: &tera::Context,
) -> Response {
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
pub(super) fn error_page(
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

/// The 404 page for `what` (e.g. `unknown node 'x'`).
pub(super) fn not_found(state: &AppState, ctx: &Ctx, what: &str) -> Response {
    error_page(state, Some(ctx), StatusCode::NOT_FOUND, what)
}

/// Sets a one-shot message and sends the browser to `to` (post/redirect/get).
pub(super) fn done(state: &AppState, ctx: &Ctx, message: String, to: &str) -> Response {
    state.ui.sessions.set_flash(&ctx.sid, message);
    Redirect::to(to).into_response()
}

/// Why an edit from a form was refused.
pub(super) enum EditError {
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
pub(super) async fn edit(
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
            let status = crate::http::error::status(e.kind());
            if status.is_server_error() {
                let api: crate::http::ApiError = e.into();
                Err(EditError::Internal(internal(api.message)))
            } else {
                Err(EditError::Rejected(status, e))
            }
        }
    }
}

/// Answers a refused edit with a page of its own (for forms without a field to show it at).
pub(super) fn edit_error_page(state: &AppState, ctx: &Ctx, e: EditError) -> Response {
    match e {
        EditError::Forbidden(m) => error_page(state, Some(ctx), StatusCode::FORBIDDEN, &m),
        EditError::Rejected(s, e) => error_page(state, Some(ctx), s, &e.to_string()),
        EditError::Internal(r) => r,
    }
}

/// A refused edit: its status, its message, and the model's own error when the model refused.
pub(super) struct Refusal {
    pub(super) status: StatusCode,
    pub(super) message: String,
    pub(super) model: Option<ModelError>,
}

/// The [`Refusal`] of a refused edit, or the response itself when it is internal.
pub(super) fn refused(e: EditError) -> Result<Refusal, Box<Response>> {
    match e {
        EditError::Forbidden(message) => Ok(Refusal {
            status: StatusCode::FORBIDDEN,
            message,
            model: None,
        }),
        EditError::Rejected(status, e) => Ok(Refusal {
            status,
            message: e.to_string(),
            model: e.model().cloned(),
        }),
        EditError::Internal(r) => Err(Box::new(r)),
    }
}

/// "<what> (generation N)", plus catalog warnings; "nothing changed" when the edit was a no-op.
pub(super) fn outcome_message(what: &str, e: &EditOutcome) -> String {
    let mut m = if e.changes.is_empty() {
        format!("Nothing changed (generation {})", e.generation)
    } else {
        format!("{what} (generation {})", e.generation)
    };
    for w in &e.warnings {
        m.push_str(&format!("; warning: {w}"));
    }
    m
}

/// The role check for pages that change things outside `edit`: the 403 page when `ctx`'s
/// role is below `role`.
pub(super) fn refuse_below(
    state: &AppState,
    ctx: &Ctx,
    role: Role,
    what: &str,
) -> Option<Response> {
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
