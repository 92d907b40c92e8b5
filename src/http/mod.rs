//! The HTTP layer: routing, the handlers that translate between HTTP and the application
//! layer (`crate::app`), the web console, and the mapping of errors to status codes. The
//! listener and its connection limits are `server`'s; `server::run` is the entry point.

mod admin;
mod apt;
mod backup;
mod catalog;
pub mod conditional;
mod error;
mod fleet;
#[cfg(test)]
mod import_fuzz;

/// The proptest configuration of the in-crate fuzzers: `cases` unless the environment variable
/// `var` says otherwise, failures kept in `regressions` (a path from the crate root).
#[cfg(test)]
fn fuzz_config(var: &str, cases: u32, regressions: &'static str) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, FileFailurePersistence};
    Config {
        cases: std::env::var(var)
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..Config::default()
    }
}
mod keys;
mod metrics;
mod public;
pub mod server;
mod status;
pub mod ui;
mod users;

pub use crate::app::VAR_VALUES;
pub use admin::{API_ROUTES, ApiRoute, Verb};
pub use error::ApiError;
pub use server::{MAX_CONNECTIONS, open_files_wanted, raise_open_file_limit, run};

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

use crate::app::App;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Ui(String),
}

/// What every handler gets: the application, and what only HTTP needs (the console's
/// templates and sessions, the request counters).
pub struct AppState {
    pub app: Arc<App>,
    /// The web console's templates, sessions and login limiter.
    pub(crate) ui: ui::Ui,
    pub(crate) requests: metrics::Requests,
}

impl AppState {
    pub fn new(app: Arc<App>) -> Result<AppState, StartError> {
        Ok(AppState {
            app,
            ui: ui::Ui::new().map_err(StartError::Ui)?,
            requests: metrics::Requests::new(),
        })
    }
}

/// Every route of umcd. `hsts`: umcd serves HTTPS itself, so browsers are told to use
/// nothing else (a proxy in front sets its own).
pub fn router(state: Arc<AppState>, hsts: bool) -> Router {
    let max_body = state.app.config.max_body;
    let router = Router::new()
        .route("/healthz", get(public::healthz))
        .route("/metrics", get(metrics::handler))
        .route("/umc-archive-keyring.gpg", get(public::keyring_gpg))
        .route("/umc-archive-keyring.asc", get(public::keyring_asc))
        .merge(apt::routes())
        .route("/", get(|| async { axum::response::Redirect::to("/ui/") }))
        .route(
            "/ui",
            get(|| async { axum::response::Redirect::to("/ui/") }),
        )
        .merge(ui::routes(state.clone()))
        .nest(
            "/api/v1",
            admin::routes(state.clone()).layer(DefaultBodyLimit::max(max_body)),
        )
        // Outermost: counts every request, unmatched ones included.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state);
    if hsts {
        router.layer(axum::middleware::map_response(
            |mut r: axum::response::Response| async move {
                r.headers_mut().insert(
                    axum::http::header::STRICT_TRANSPORT_SECURITY,
                    axum::http::HeaderValue::from_static("max-age=31536000"),
                );
                r
            },
        ))
    } else {
        router
    }
}
