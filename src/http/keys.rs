//! `umc-admin key list|rotate|import|status|retire` (`/api/v1/keys…`); the key sets and the
//! protocol of a key change are `app::keys`'s.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::{Extension, Json};
use base64::Engine;
use bytes::Bytes;

use super::admin::{User, json_body};
use super::{ApiError, AppState};
use crate::api::{
    KeyChangeResponse, KeyImportRequest, KeyInfo, KeyNodeStatus, KeyRetireRequest, KeyStatus,
};
use crate::app::blocking;
use crate::app::now;
use crate::app::{KeySet, serving_inputs};
use crate::nodefiles::NODE_PACKAGE;
use crate::sign::{SignError, SigningKeys, normalize_fingerprint};
use crate::store::{KeyChange, KeyRecord};

fn sign_error(e: SignError) -> ApiError {
    e.into()
}

/// The `umc-node` version that ships every key in `keys` (generation 0: any version).
fn needed_generation(keys: &SigningKeys, records: &[(String, Option<KeyRecord>)]) -> u64 {
    let fps = keys.fingerprints();
    records
        .iter()
        .filter(|(fp, _)| fps.contains(fp))
        .filter_map(|(_, r)| r.as_ref().map(|r| r.added_generation))
        .max()
        .unwrap_or(0)
}

fn key_infos(keys: &SigningKeys, records: &[(String, Option<KeyRecord>)]) -> Vec<KeyInfo> {
    keys.describe()
        .into_iter()
        .map(|d| {
            let rec = records
                .iter()
                .find(|(fp, _)| *fp == d.fingerprint)
                .and_then(|(_, r)| r.clone());
            KeyInfo {
                fingerprint: d.fingerprint,
                created: d.created,
                algorithm: d.algorithm,
                user_id: d.user_id,
                added_generation: rec.as_ref().map(|r| r.added_generation),
                added_by: rec.as_ref().map(|r| r.added_by.clone()),
                node_version: rec.map(|r| crate::repo::version(r.added_generation)),
            }
        })
        .collect()
}

/// Each current key with its record (none for umcd's first key).
fn records(
    state: &AppState,
    keys: &SigningKeys,
) -> Result<Vec<(String, Option<KeyRecord>)>, ApiError> {
    let all = state.app.store.key_records()?;
    Ok(keys
        .fingerprints()
        .into_iter()
        .map(|fp| {
            let r = all.get(&fp).filter(|r| r.retired.is_none()).cloned();
            (fp, r)
        })
        .collect())
}

/// Every node: active, installed umc-node, confirmed for `needed_generation`.
fn node_status(state: &AppState, needed_generation: u64) -> Result<Vec<KeyNodeStatus>, ApiError> {
    use debversion::Version;
    let fleet = state.app.judge_fleet()?;
    let reports = state.app.store.last_reports()?;
    let needed = crate::repo::version(needed_generation);
    let needed_v: Option<Version> = needed.parse().ok();
    // A node without a URL keeps a keyring its admin installed by hand: umc-node ships none,
    // so its umc-node version proves nothing (retire it with --force once done by hand).
    let (_, model) = state.app.store.model()?;
    Ok(fleet
        .iter()
        .map(|h| {
            let installed = reports.get(&h.host).and_then(|r| {
                crate::report::parse(&r.text, i64::MAX - crate::report::MAX_CLOCK_SKEW)
                    .ok()
                    .and_then(|p| p.installed.get(NODE_PACKAGE).cloned())
            });
            let managed = model.nodes.get(&h.host).is_some_and(|n| n.url.is_some());
            let confirmed = needed_generation == 0
                || (managed
                    && match (installed.as_deref().map(str::parse::<Version>), &needed_v) {
                        (Some(Ok(i)), Some(n)) => &i >= n,
                        _ => false,
                    });
            KeyNodeStatus {
                active: h.state != crate::report::State::Stale.as_str(),
                host: h.host.clone(),
                installed,
                needed: needed.clone(),
                confirmed,
            }
        })
        .collect())
}

pub(super) async fn list(State(s): State<Arc<AppState>>) -> Result<Json<Vec<KeyInfo>>, ApiError> {
    blocking(move || {
        let set = s.app.keys();
        let recs = records(&s, &set.keys)?;
        Ok(Json(key_infos(&set.keys, &recs)))
    })
    .await
}

pub(super) async fn status(State(s): State<Arc<AppState>>) -> Result<Json<KeyStatus>, ApiError> {
    blocking(move || {
        let set = s.app.keys();
        let recs = records(&s, &set.keys)?;
        let g = needed_generation(&set.keys, &recs);
        Ok(Json(KeyStatus {
            keys: key_infos(&set.keys, &recs),
            needed: crate::repo::version(g),
            nodes: node_status(&s, g)?,
        }))
    })
    .await
}

/// Makes `next` the key set (see the module doc for the steps); returns the generation.
fn apply(
    state: &AppState,
    user: &str,
    next: SigningKeys,
    change: KeyChange,
) -> Result<u64, ApiError> {
    let old = state.app.keys();
    let set = Arc::new(KeySet::new(next).map_err(sign_error)?);
    let serving = serving_inputs(&state.app.config, &set.keys.fingerprints());
    let dir = &state.app.config.data_dir;
    set.keys.save(dir).map_err(ApiError::internal)?;
    state.app.update_keysets(|k| k.pending = Some(set.clone()));
    match state
        .app
        .store
        .record_key_change(user, &change, &serving, now())
    {
        Ok(g) => {
            state.app.update_keysets(|k| {
                k.previous = Some(k.current.clone());
                k.current = set;
                k.since = g;
                k.pending = None;
            });
            state.app.set_generation(g);
            // Rendered archives carry the old signatures; every view moved anyway (umc-node's
            // version and the Release date), so this only frees memory early.
            state.app.cache.archives.invalidate_all();
            state.app.cache.hosts.invalidate_all();
            tracing::info!("{user}: {change:?}; generation {g}");
            Ok(g)
        }
        Err(e) => {
            state.app.update_keysets(|k| k.pending = None);
            if let Err(e2) = old.keys.save(dir) {
                tracing::error!("restoring the signing key file: {e2}");
            }
            Err(e.into())
        }
    }
}

fn response(state: &AppState, generation: u64, fingerprint: String) -> KeyChangeResponse {
    KeyChangeResponse {
        generation,
        fingerprint,
        keys: state.app.keys().keys.fingerprints(),
        unconfirmed: Vec::new(),
    }
}

/// `POST /keys/rotate`: a new Ed25519 key; InRelease is signed by every key from now on.
pub(super) async fn rotate(
    State(s): State<Arc<AppState>>,
    Extension(User(user)): Extension<User>,
) -> Result<Json<KeyChangeResponse>, ApiError> {
    blocking(move || {
        let _guard = s.app.key_changes().map_err(ApiError::internal)?;
        let current = s.app.keys();
        let uid = current
            .keys
            .user_id()
            .unwrap_or_else(|| "umc archive signing key".to_string());
        let new = SigningKeys::generate(&uid).map_err(sign_error)?;
        let fingerprint = new.fingerprints().remove(0);
        let next = current.keys.with_added(&new).map_err(sign_error)?;
        let change = KeyChange::Added {
            fingerprint: fingerprint.clone(),
            how: "rotate".into(),
        };
        let g = apply(&s, &user, next, change)?;
        Ok(Json(response(&s, g, fingerprint)))
    })
    .await
}

/// `POST /keys/import`: an existing key (aptly, reprepro), refused when apt 3 would refuse it.
pub(super) async fn import(
    State(s): State<Arc<AppState>>,
    Extension(User(user)): Extension<User>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<KeyChangeResponse>, ApiError> {
    let req: KeyImportRequest = json_body(body, s.app.config.max_body)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(req.key_base64.trim())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("key_base64: {e}")))?;
    blocking(move || {
        let imported =
            SigningKeys::import(&bytes, std::time::SystemTime::now()).map_err(sign_error)?;
        let fps = imported.fingerprints();
        if fps.len() != 1 {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "the file holds {} keys ({}); import one at a time",
                    fps.len(),
                    fps.join(", ")
                ),
            ));
        }
        let _guard = s.app.key_changes().map_err(ApiError::internal)?;
        let next = s
            .app
            .keys()
            .keys
            .with_added(&imported)
            .map_err(sign_error)?;
        let fingerprint = fps[0].clone();
        let change = KeyChange::Added {
            fingerprint: fingerprint.clone(),
            how: "import".into(),
        };
        let g = apply(&s, &user, next, change)?;
        Ok(Json(response(&s, g, fingerprint)))
    })
    .await
}

/// `POST /keys/retire`: stop signing with a key. Refused (409) while an active node has not
/// confirmed the keys that remain, unless `force`.
pub(super) async fn retire(
    State(s): State<Arc<AppState>>,
    Extension(User(user)): Extension<User>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<KeyChangeResponse>, ApiError> {
    let req: KeyRetireRequest = json_body(body, s.app.config.max_body)?;
    blocking(move || {
        let _guard = s.app.key_changes().map_err(ApiError::internal)?;
        let fingerprint = normalize_fingerprint(&req.fingerprint);
        let current = s.app.keys();
        let next = current.keys.without(&fingerprint).map_err(sign_error)?;
        let recs = records(&s, &current.keys)?;
        let g = needed_generation(&next, &recs);
        let unconfirmed: Vec<KeyNodeStatus> = node_status(&s, g)?
            .into_iter()
            .filter(|n| n.active && !n.confirmed)
            .collect();
        if !unconfirmed.is_empty() && !req.force {
            let list: Vec<String> = unconfirmed
                .iter()
                .map(|n| {
                    format!(
                        "{} ({})",
                        n.host,
                        n.installed
                            .as_deref()
                            .map_or("no umc-node reported".to_string(), |v| format!(
                                "umc-node {v}"
                            ))
                    )
                })
                .collect();
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "refusing to retire key {fingerprint}: {} active node(s) have not confirmed the new keyring (umc-node >= {}): {}; wait for their next cycle (umc-admin key status), or use --force",
                    unconfirmed.len(),
                    crate::repo::version(g),
                    list.join(", ")
                ),
            ));
        }
        let change = KeyChange::Retired {
            fingerprint: fingerprint.clone(),
        };
        let generation = apply(&s, &user, next, change)?;
        let mut r = response(&s, generation, fingerprint);
        r.unconfirmed = unconfirmed.into_iter().map(|n| n.host).collect();
        Ok(Json(r))
    })
    .await
}
