//! One error type for the admin API; a 5xx body says nothing internal (the detail is logged).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::ErrorBody;
use crate::model::ModelError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!("internal error: {detail}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            // The render worker failing is umcd's fault, not the template's.
            StoreError::Model(ModelError::Template(
                e @ crate::template::TemplateError::Worker(_),
            )) => ApiError::internal(e),
            StoreError::Model(m) => {
                let status = match &m {
                    ModelError::UnknownNode(_)
                    | ModelError::UnknownTask(_)
                    | ModelError::UnknownVar(_)
                    | ModelError::NoSuchFile { .. }
                    | ModelError::NoSuchDependency { .. } => StatusCode::NOT_FOUND,
                    ModelError::NodeExists(_)
                    | ModelError::TaskExists(_)
                    | ModelError::Cycle { .. }
                    | ModelError::SelfInclude { .. }
                    | ModelError::DependsAndRemoves { .. }
                    | ModelError::PackageCollision { .. }
                    | ModelError::PathConflict { .. }
                    | ModelError::RotationPending(_)
                    | ModelError::AlternativesRemoved { .. } => StatusCode::CONFLICT,
                    ModelError::Template(_) => StatusCode::UNPROCESSABLE_ENTITY,
                    _ => StatusCode::BAD_REQUEST,
                };
                ApiError::new(status, m.to_string())
            }
            StoreError::UnknownPackage(m) | StoreError::Invalid(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, m)
            }
            StoreError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            StoreError::Unavailable(m) => {
                tracing::error!("database unavailable: {m}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable (GET /healthz says why)",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

impl From<crate::catalog::CatalogError> for ApiError {
    fn from(e: crate::catalog::CatalogError) -> ApiError {
        use crate::catalog::CatalogError as C;
        let status = match &e {
            C::Fetch { .. }
            | C::BadSignature(_)
            | C::HashMismatch { .. }
            | C::BadRelease(_)
            | C::NoIndex(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}
