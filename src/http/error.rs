//! One error type for the admin API, and the one place that maps the application layer's
//! error kinds to status codes. A 5xx body says nothing internal (the detail is logged).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::ErrorBody;
use crate::app::{AppError, ErrorKind};
use crate::catalog::CatalogError;
use crate::sign::SignError;
use crate::store::{HistoryError, StoreError};

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

/// The status code of each kind of failure.
pub(super) fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        match e.kind() {
            ErrorKind::Internal => ApiError::internal(e),
            ErrorKind::Unavailable => {
                tracing::error!("{e}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable (GET /healthz says why)",
                )
            }
            kind => ApiError::new(status(kind), e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        AppError::from(e).into()
    }
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> ApiError {
        AppError::from(e).into()
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> ApiError {
        AppError::from(e).into()
    }
}

impl From<SignError> for ApiError {
    fn from(e: SignError) -> ApiError {
        AppError::from(e).into()
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

#[cfg(test)]
mod tests {
    /// The Architecture Invariant "only `http` maps errors to status codes": no code outside
    /// `src/http/` names axum, hyper, a status code or a response, so the application layer
    /// and below return typed errors and this file decides their status. umc-admin's
    /// transport (`client/transport.rs`) is the other end of HTTP: it names hyper's client
    /// and maps no error to a status.
    #[test]
    fn only_http_speaks_http() {
        use crate::testing::{non_test_code, rust_files, shown, src};
        let http = src().join("http");
        let client_transport = src().join("client/transport.rs");
        let files = rust_files(&src());
        assert!(files.len() > 50, "{} files", files.len());
        for f in files
            .iter()
            .filter(|f| !f.starts_with(&http) && **f != client_transport)
        {
            let code = non_test_code(f);
            for word in ["axum::", "hyper::", "StatusCode", "IntoResponse"] {
                assert!(!code.contains(word), "{} names {word}", shown(f));
            }
        }
    }
}
