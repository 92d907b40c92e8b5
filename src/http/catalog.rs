//! The catalog part of the admin API: import (fetched and verified, or uploaded), list, show,
//! search and remove. Imports run the blocking fetch off the async workers (`app::blocking`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::api::{CatalogHit, CatalogImport, CatalogInfo, CatalogPackage};
use crate::app::blocking;
use crate::app::now;
use crate::catalog::fetch::{self, Imported, Source};
use crate::catalog::{CatalogError, DEFAULT_KEYRINGS, SearchIndex, validate_name};
use crate::store::{CatalogMeta, Store, StoreError};

/// The largest Packages file `POST /catalogs/<name>/file` accepts.
pub const UPLOAD_MAX: usize = 512 << 20;

fn info(m: CatalogMeta) -> CatalogInfo {
    CatalogInfo {
        name: m.name,
        url: m.url,
        suite: m.suite,
        components: m.components,
        archs: m.archs,
        imported_at: m.imported_at,
        packages: m.packages,
        stanzas: m.stanzas,
        verified: m.verified,
    }
}

/// The search index of every stored catalog.
pub fn build_index(store: &Store) -> Result<SearchIndex, StoreError> {
    Ok(SearchIndex::new(store.catalog_rows()?))
}

/// Stores an import and rebuilds the search index; logs how long each step took (the
/// `benches/catalog.sh` breakdown). `parsed` is how long fetching and parsing took.
fn store_import(
    s: &AppState,
    meta: CatalogMeta,
    imported: &Imported,
    parsed: Duration,
) -> Result<CatalogInfo, ApiError> {
    let t = Instant::now();
    s.app.store.replace_catalog(&meta, imported)?;
    let stored_in = t.elapsed();
    let t = Instant::now();
    s.app.set_catalog_index(build_index(&s.app.store)?);
    let indexed_in = t.elapsed();
    let stored = s
        .app
        .store
        .catalog(&meta.name)?
        .ok_or_else(|| ApiError::internal("catalog vanished after import"))?;
    tracing::info!(
        "catalog '{}' imported: {} packages, verified: {}; fetch+parse {} ms, store {} ms, index {} ms",
        stored.name,
        stored.packages,
        stored.verified,
        parsed.as_millis(),
        stored_in.as_millis(),
        indexed_in.as_millis()
    );
    Ok(info(stored))
}

pub async fn list(State(s): State<Arc<AppState>>) -> Result<Json<Vec<CatalogInfo>>, ApiError> {
    blocking(move || {
        Ok(Json(
            s.app.store.catalogs()?.into_iter().map(info).collect(),
        ))
    })
    .await
}

pub async fn get_one(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<CatalogInfo>, ApiError> {
    blocking(move || match s.app.store.catalog(&name)? {
        Some(m) => Ok(Json(info(m))),
        None => Err(unknown(&name)),
    })
    .await
}

fn unknown(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("unknown catalog '{name}'"))
}

fn keyring(given: Option<&str>) -> Result<Vec<u8>, ApiError> {
    if let Some(b64) = given {
        return base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, format!("keyring: bad base64: {e}"))
            });
    }
    for path in DEFAULT_KEYRINGS {
        if let Ok(bytes) = std::fs::read(path) {
            return Ok(bytes);
        }
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        format!(
            "no keyring given and this server has no archive keyring ({}); give --keyring",
            DEFAULT_KEYRINGS.join(", ")
        ),
    ))
}

pub async fn import(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<Json<CatalogImport>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<CatalogInfo>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    validate_name(&name)?;
    let or = |v: Vec<String>, d: &str| if v.is_empty() { vec![d.to_string()] } else { v };
    let source = Source {
        url: req.url.trim().to_string(),
        suite: req.suite.trim().to_string(),
        components: or(req.components, "main"),
        archs: or(req.archs, "amd64"),
        timeout: s.app.config.catalog_timeout,
        allow_private: req.allow_private,
    };
    for part in std::iter::once(&source.suite)
        .chain(&source.components)
        .chain(&source.archs)
    {
        if part.is_empty() || part.contains(['/', ' ']) || part.contains("..") {
            return Err(CatalogError::Usage(format!(
                "bad suite, component or architecture '{part}'"
            ))
            .into());
        }
    }
    let keyring = keyring(req.keyring.as_deref())?;
    let imported_at = now();
    blocking(move || {
        let t = Instant::now();
        let imported = fetch::fetch_verified(&source, &keyring, imported_at)?;
        let parsed = t.elapsed();
        let meta = CatalogMeta {
            name,
            url: source.url,
            suite: source.suite,
            components: source.components,
            archs: source.archs,
            imported_at,
            packages: 0,
            stanzas: 0,
            verified: true,
        };
        store_import(&s, meta, &imported, parsed).map(Json)
    })
    .await
}

pub async fn upload(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CatalogInfo>, ApiError> {
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    validate_name(&name)?;
    let imported_at = now();
    blocking(move || {
        let t = Instant::now();
        let imported = fetch::from_bytes(&body)?;
        let parsed = t.elapsed();
        drop(body);
        let meta = CatalogMeta {
            name,
            url: String::new(),
            suite: String::new(),
            components: Vec::new(),
            archs: Vec::new(),
            imported_at,
            packages: 0,
            stanzas: 0,
            verified: false,
        };
        store_import(&s, meta, &imported, parsed).map(Json)
    })
    .await
}

pub async fn remove(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<CatalogInfo>, ApiError> {
    blocking(move || {
        let Some(meta) = s.app.store.catalog(&name)? else {
            return Err(unknown(&name));
        };
        s.app.store.remove_catalog(&name)?;
        s.app.set_catalog_index(build_index(&s.app.store)?);
        Ok(Json(info(meta)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: String,
    limit: Option<usize>,
}

pub async fn search(
    State(s): State<Arc<AppState>>,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<Vec<CatalogHit>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let limit = q.limit.unwrap_or(20).min(10_000);
    let index = s.app.catalog_index();
    let hits = index
        .search(&q.q, limit)
        .into_iter()
        .map(|e| CatalogHit {
            catalog: e.catalog.clone(),
            name: e.name.clone(),
            version: e.version.clone(),
            description: e.description.clone(),
        })
        .collect();
    Ok(Json(hits))
}

pub async fn package(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Vec<CatalogPackage>>, ApiError> {
    blocking(move || {
        let hits = s.app.store.catalog_lookup(&name)?;
        if hits.is_empty() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("package '{name}' is in no catalog"),
            ));
        }
        Ok(Json(
            hits.into_iter()
                .map(|h| {
                    let provided_by = h
                        .providers
                        .into_iter()
                        .map(|(p, v)| match v {
                            Some(v) => format!("{p} (= {v})"),
                            None => p,
                        })
                        .collect();
                    match h.package {
                        Some(p) => CatalogPackage {
                            catalog: h.catalog,
                            name: p.name,
                            version: Some(p.version),
                            section: p.section,
                            priority: p.priority,
                            description: p.description,
                            provides: p.provides,
                            provided_by,
                        },
                        None => CatalogPackage {
                            catalog: h.catalog,
                            name: name.clone(),
                            version: None,
                            section: String::new(),
                            priority: String::new(),
                            description: String::new(),
                            provides: Vec::new(),
                            provided_by,
                        },
                    }
                })
                .collect(),
        ))
    })
    .await
}
