//! (stub) pages of the console; see mod.rs.

use std::sync::Arc;

use axum::Router;

use crate::http::AppState;

/// This module's templates, by name (registered by [`super::Ui::new`]).
pub const TEMPLATES: &[(&str, &str)] = &[];

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
}
