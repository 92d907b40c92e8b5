//! The application layer's one error type. It keeps the typed error it came from (a store,
//! history, catalog or key error) and says what *kind* of failure it is; `http::error` alone
//! turns a kind into a status code.

use crate::catalog::CatalogError;
use crate::model::ModelError;
use crate::sign::SignError;
use crate::store::{HistoryError, StoreError};
use crate::template::TemplateError;

/// What went wrong, as far as the caller is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is malformed or breaks a rule (a bad name, a bad value).
    Invalid,
    /// The request is well-formed but what it carries cannot be used (a template that does
    /// not render, a signature that does not verify, a mirror that cannot be fetched).
    Rejected,
    /// The caller's role may not do this.
    Forbidden,
    /// It names something that does not exist.
    NotFound,
    /// It clashes with what exists (a name taken, a cycle, a pending rotation).
    Conflict,
    /// The database cannot be used now (`GET /healthz` says why).
    Unavailable,
    /// umcd's own fault: the caller gets no detail, the log does.
    Internal,
}

/// A service's failure: the typed error it came from, or a message of one [`ErrorKind`].
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The store refused or failed (the model's own refusals included).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A diff or rollback could not be replayed from history.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// A catalog import or lookup failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A signing-key operation failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// [`ErrorKind::Invalid`], with the message the caller sees.
    #[error("{0}")]
    Invalid(String),
    /// [`ErrorKind::Rejected`], with the message the caller sees.
    #[error("{0}")]
    Rejected(String),
    /// [`ErrorKind::Forbidden`], with the message the caller sees.
    #[error("{0}")]
    Forbidden(String),
    /// [`ErrorKind::NotFound`], with the message the caller sees.
    #[error("{0}")]
    NotFound(String),
    /// [`ErrorKind::Conflict`], with the message the caller sees.
    #[error("{0}")]
    Conflict(String),
    /// [`ErrorKind::Internal`]: the detail is for the log only (see [`AppError::internal`]).
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    /// umcd's own fault; `detail` goes to the log, never to the caller.
    pub fn internal(detail: impl std::fmt::Display) -> AppError {
        AppError::Internal(detail.to_string())
    }

    /// The model's own error, when the model refused the edit: what the console reads to put
    /// the message next to the field it is about ([`ModelError::field`]).
    pub fn model(&self) -> Option<&ModelError> {
        match self {
            AppError::Store(StoreError::Model(m))
            | AppError::History(HistoryError::Store(StoreError::Model(m))) => Some(m),
            _ => None,
        }
    }

    /// What kind of failure this is, which is all `http::error` needs to pick a status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AppError::Store(e) => store_kind(e),
            AppError::History(e) => match e {
                HistoryError::Store(s) => store_kind(s),
                HistoryError::NotEmpty { .. } => ErrorKind::Conflict,
                HistoryError::Unrecorded { .. }
                | HistoryError::Pruned { .. }
                | HistoryError::Future { .. } => ErrorKind::NotFound,
                HistoryError::Invalid(_) => ErrorKind::Rejected,
            },
            AppError::Catalog(e) => match e {
                CatalogError::Fetch { .. }
                | CatalogError::BadSignature(_)
                | CatalogError::HashMismatch { .. }
                | CatalogError::BadRelease(_)
                | CatalogError::NoIndex(_) => ErrorKind::Rejected,
                _ => ErrorKind::Invalid,
            },
            AppError::Sign(e) => match e {
                SignError::Rejected { .. } | SignError::NoKeys | SignError::NoSigningKey { .. } => {
                    ErrorKind::Rejected
                }
                SignError::OpenPgp { .. } => ErrorKind::Invalid,
                SignError::KeySet(m) if m.starts_with("no signing key") => ErrorKind::NotFound,
                SignError::KeySet(_) => ErrorKind::Conflict,
                _ => ErrorKind::Internal,
            },
            AppError::Invalid(_) => ErrorKind::Invalid,
            AppError::Rejected(_) => ErrorKind::Rejected,
            AppError::Forbidden(_) => ErrorKind::Forbidden,
            AppError::NotFound(_) => ErrorKind::NotFound,
            AppError::Conflict(_) => ErrorKind::Conflict,
            AppError::Internal(_) => ErrorKind::Internal,
        }
    }
}

fn store_kind(e: &StoreError) -> ErrorKind {
    match e {
        // The render worker failing is umcd's fault, not the template's.
        StoreError::Model(ModelError::Template(TemplateError::Worker(_))) => ErrorKind::Internal,
        StoreError::Model(m) => match m {
            ModelError::UnknownNode(_)
            | ModelError::UnknownTask(_)
            | ModelError::UnknownVar(_)
            | ModelError::NoSuchFile { .. }
            | ModelError::NoSuchDependency { .. } => ErrorKind::NotFound,
            ModelError::NodeExists(_)
            | ModelError::TaskExists(_)
            | ModelError::Cycle { .. }
            | ModelError::SelfInclude { .. }
            | ModelError::DependsAndRemoves { .. }
            | ModelError::PackageCollision { .. }
            | ModelError::PathConflict { .. }
            | ModelError::RotationPending(_)
            | ModelError::AlternativesRemoved { .. } => ErrorKind::Conflict,
            ModelError::Template(_) => ErrorKind::Rejected,
            _ => ErrorKind::Invalid,
        },
        StoreError::UnknownPackage(_)
        | StoreError::Invalid(_)
        | StoreError::GenerationsExhausted { .. } => ErrorKind::Invalid,
        StoreError::NotFound(_) => ErrorKind::NotFound,
        StoreError::Conflict(_) | StoreError::TokenLimit { .. } => ErrorKind::Conflict,
        StoreError::Unavailable(_) => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_source() {
        let unknown = AppError::from(StoreError::Model(ModelError::UnknownNode("a".into())));
        assert_eq!(unknown.kind(), ErrorKind::NotFound);
        assert_eq!(
            unknown.to_string(),
            ModelError::UnknownNode("a".into()).to_string()
        );
        assert_eq!(unknown.model(), Some(&ModelError::UnknownNode("a".into())));
        let nested = HistoryError::Store(StoreError::Model(ModelError::EmptyEdit));
        assert_eq!(AppError::from(nested).model(), Some(&ModelError::EmptyEdit));
        assert_eq!(AppError::Invalid("x".into()).model(), None);
        let worker = StoreError::Model(ModelError::Template(TemplateError::Worker("x".into())));
        assert_eq!(AppError::from(worker).kind(), ErrorKind::Internal);
        let pruned = HistoryError::Pruned {
            generation: 1,
            oldest: 2,
        };
        assert_eq!(AppError::from(pruned).kind(), ErrorKind::NotFound);
        let nested = HistoryError::Store(StoreError::Conflict("taken".into()));
        assert_eq!(AppError::from(nested).kind(), ErrorKind::Conflict);
        let no_key = SignError::KeySet("no signing key ABC".into());
        assert_eq!(AppError::from(no_key).kind(), ErrorKind::NotFound);
        let down = StoreError::Unavailable("disk".into());
        assert_eq!(AppError::from(down).kind(), ErrorKind::Unavailable);
    }
}
