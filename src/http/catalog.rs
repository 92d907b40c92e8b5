//! The catalog part of the admin API over `app::catalog`: import (fetched and verified, or
//! uploaded), list, show, search and remove.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;

use super::{ApiError, AppState};
use crate::api::{CatalogHit, CatalogImport, CatalogInfo, CatalogPackage, SearchQuery};
use crate::app::{blocking, now};

/// The largest Packages file `POST /catalogs/<name>/file` accepts.
pub(super) const UPLOAD_MAX: usize = 512 << 20;

pub(super) async fn list(
    State(s): State<Arc<AppState>>,
) -> Result<Json<Vec<CatalogInfo>>, ApiError> {
    Ok(Json(blocking(move || s.app.catalogs()).await?))
}

pub(super) async fn get_one(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<CatalogInfo>, ApiError> {
    Ok(Json(blocking(move || s.app.catalog(&name)).await?))
}

pub(super) async fn import(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<Json<CatalogImport>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<CatalogInfo>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let imported_at = now();
    Ok(Json(
        blocking(move || s.app.import_catalog(name, req, imported_at)).await?,
    ))
}

pub(super) async fn upload(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CatalogInfo>, ApiError> {
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let imported_at = now();
    Ok(Json(
        blocking(move || s.app.upload_catalog(name, body, imported_at)).await?,
    ))
}

pub(super) async fn remove(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<CatalogInfo>, ApiError> {
    Ok(Json(blocking(move || s.app.remove_catalog(&name)).await?))
}

pub(super) async fn search(
    State(s): State<Arc<AppState>>,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<Vec<CatalogHit>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let limit = q.limit.unwrap_or(20).min(10_000);
    Ok(Json(s.app.search_catalogs(&q.q, limit)))
}

pub(super) async fn package(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Vec<CatalogPackage>>, ApiError> {
    Ok(Json(blocking(move || s.app.catalog_package(&name)).await?))
}
