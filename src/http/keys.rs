//! Signing keys at runtime: `umc-admin key list|rotate|import|status|retire`.
//!
//! The current key set lives in `AppState` as one `Arc<KeySet>` (keys plus both public
//! keyrings), swapped whole. A key change:
//! 1. writes `<data>/signing-key.asc` atomically (0600 temp file, rename);
//! 2. stages the new key set (`KeySets::pending`), which renders of views from the commit
//!    below use even before step 4;
//! 3. commits a generation touching `Entity::Server` (`Store::record_key_change`): umc-node's
//!    version (`1.<generation>`), its changelog and every host's Release `Date` move, and the
//!    change is in `umc-admin log` with the acting user. It also records umcd's new serving
//!    inputs, so the next start does not commit the change a second time;
//! 4. makes the new set current (older views keep the previous set), publishes the
//!    generation and drops the rendered archives.
//!
//! When the commit fails, the old file and key set are put back.
//!
//! A node **confirms** a key when its newest report shows `umc-node` installed at the version
//! that first shipped it (`1.<generation that added it>`) or newer. A node is **active** when
//! umcd saw it (report or InRelease fetch) within `stale_after_secs`, i.e. its status is not
//! `stale`: `key retire` waits for active nodes only, because a node that stopped talking to
//! umcd would otherwise block retirement forever.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::{Extension, Json};
use base64::Engine;
use bytes::Bytes;

use super::admin::{User, blocking, json_body};
use super::{ApiError, AppState, now};
use crate::api::{
    KeyChangeResponse, KeyImportRequest, KeyInfo, KeyNodeStatus, KeyRetireRequest, KeyStatus,
};
use crate::config::Config;
use crate::nodefiles::{NODE_PACKAGE, Serving};
use crate::sign::{SignError, SigningKeys, normalize_fingerprint};
use crate::store::{KeyChange, KeyRecord, ServingInputs};

/// The key sets a render may use. A `umc-node` version must never change its bytes, so a view
/// is rendered with the key set that belongs to its serving generation (`server_generation`,
/// which every key change moves):
/// - `current` for views at `since` or later;
/// - `previous` for older views (read just before a key change committed);
/// - `pending` while a key change is being committed: a view newer than `since` can only come
///   from that change (key changes are serialized, and only umcd's start moves the serving
///   generation otherwise).
pub struct KeySets {
    pub current: Arc<KeySet>,
    pub since: u64,
    pub previous: Option<Arc<KeySet>>,
    pub pending: Option<Arc<KeySet>>,
}

impl KeySets {
    pub fn new(current: Arc<KeySet>, since: u64) -> KeySets {
        KeySets {
            current,
            since,
            previous: None,
            pending: None,
        }
    }

    pub fn select(&self, server_generation: u64) -> Arc<KeySet> {
        match &self.pending {
            Some(p) if server_generation > self.since => p.clone(),
            _ if server_generation >= self.since => self.current.clone(),
            _ => self.previous.as_ref().unwrap_or(&self.current).clone(),
        }
    }
}

/// The signing keys and their public keyrings, computed once per key change.
pub struct KeySet {
    pub keys: SigningKeys,
    pub keyring_gpg: Bytes,
    pub keyring_asc: Bytes,
}

impl KeySet {
    pub fn new(keys: SigningKeys) -> Result<KeySet, SignError> {
        Ok(KeySet {
            keyring_gpg: keys.public_keyring_binary()?.into(),
            keyring_asc: keys.public_keyring_armored()?.into(),
            keys,
        })
    }

    /// What umcd contributes to every host's `umc-node` package.
    pub fn serving(&self, config: &Config) -> Serving<'_> {
        Serving {
            keyring: &self.keyring_gpg,
            conffiles: config.conffiles,
        }
    }
}

/// What, besides the model, shapes every host's repository: the packaging format, the
/// architectures, the signing keys, umc-node's embedded files and the conffile policy. umcd
/// records its hash at start (`Store::note_serving_inputs`) and with every key change.
pub fn serving_inputs(config: &Config, fingerprints: &[String]) -> ServingInputs {
    let description = format!(
        "format {}, architectures {}, keys {}, node files {}, conffiles {}",
        crate::repo::FORMAT,
        config.architectures.join(" "),
        fingerprints.join(" "),
        crate::nodefiles::fingerprint(),
        config.conffiles,
    );
    let fingerprint = {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(description.as_bytes());
        u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    };
    ServingInputs {
        fingerprint,
        description,
    }
}

fn sign_error(e: SignError) -> ApiError {
    match e {
        SignError::Rejected { .. } | SignError::NoKeys | SignError::NoSigningKey { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        SignError::OpenPgp { .. } => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
        SignError::KeySet(m) if m.starts_with("no signing key") => {
            ApiError::new(StatusCode::NOT_FOUND, m)
        }
        SignError::KeySet(m) => ApiError::new(StatusCode::CONFLICT, m),
        other => ApiError::internal(other),
    }
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
    let all = state.store.key_records()?;
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
    let fleet = super::status::fleet(state, now())?;
    let reports = state.store.last_reports()?;
    let needed = crate::repo::version(needed_generation);
    let needed_v: Option<Version> = needed.parse().ok();
    // A node without a URL keeps a keyring its admin installed by hand: umc-node ships none,
    // so its umc-node version proves nothing (retire it with --force once done by hand).
    let (_, model) = state.store.model()?;
    Ok(fleet
        .into_iter()
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
                host: h.host,
                installed,
                needed: needed.clone(),
                confirmed,
            }
        })
        .collect())
}

pub(super) async fn list(State(s): State<Arc<AppState>>) -> Result<Json<Vec<KeyInfo>>, ApiError> {
    blocking(move || {
        let set = s.keys();
        let recs = records(&s, &set.keys)?;
        Ok(Json(key_infos(&set.keys, &recs)))
    })
    .await
}

pub(super) async fn status(State(s): State<Arc<AppState>>) -> Result<Json<KeyStatus>, ApiError> {
    blocking(move || {
        let set = s.keys();
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
    let old = state.keys();
    let set = Arc::new(KeySet::new(next).map_err(sign_error)?);
    let serving = serving_inputs(&state.config, &set.keys.fingerprints());
    let dir = &state.config.data_dir;
    set.keys.save(dir).map_err(ApiError::internal)?;
    state.update_keysets(|k| k.pending = Some(set.clone()));
    match state
        .store
        .record_key_change(user, &change, &serving, now())
    {
        Ok(g) => {
            state.update_keysets(|k| {
                k.previous = Some(k.current.clone());
                k.current = set;
                k.since = g;
                k.pending = None;
            });
            state.set_generation(g);
            // Rendered archives carry the old signatures; every view moved anyway (umc-node's
            // version and the Release date), so this only frees memory early.
            state.cache.archives.invalidate_all();
            state.cache.hosts.invalidate_all();
            tracing::info!("{user}: {change:?}; generation {g}");
            Ok(g)
        }
        Err(e) => {
            state.update_keysets(|k| k.pending = None);
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
        keys: state.keys().keys.fingerprints(),
        unconfirmed: Vec::new(),
    }
}

/// `POST /keys/rotate`: a new Ed25519 key; InRelease is signed by every key from now on.
pub(super) async fn rotate(
    State(s): State<Arc<AppState>>,
    Extension(User(user)): Extension<User>,
) -> Result<Json<KeyChangeResponse>, ApiError> {
    blocking(move || {
        let _guard = s.key_ops.lock().map_err(ApiError::internal)?;
        let current = s.keys();
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
    let req: KeyImportRequest = json_body(body, s.config.max_body)?;
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
        let _guard = s.key_ops.lock().map_err(ApiError::internal)?;
        let next = s.keys().keys.with_added(&imported).map_err(sign_error)?;
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
    let req: KeyRetireRequest = json_body(body, s.config.max_body)?;
    blocking(move || {
        let _guard = s.key_ops.lock().map_err(ApiError::internal)?;
        let fingerprint = normalize_fingerprint(&req.fingerprint);
        let current = s.keys();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str) -> Arc<KeySet> {
        let keys =
            SigningKeys::generate(&format!("{name} <{name}@example.invalid>")).expect("generate");
        Arc::new(KeySet::new(keys).expect("keyset"))
    }

    /// A umc-node version never changes its keyring: views get the key set of their serving
    /// generation, also while a key change is committing.
    #[test]
    fn views_get_the_key_set_of_their_serving_generation() {
        let (a, b) = (set("a"), set("b"));
        let fp = |k: Arc<KeySet>| k.keys.fingerprints();
        let mut k = KeySets::new(a.clone(), 5);
        assert_eq!(fp(k.select(5)), fp(a.clone()));
        k.pending = Some(b.clone());
        assert_eq!(
            fp(k.select(5)),
            fp(a.clone()),
            "committed before the change"
        );
        assert_eq!(
            fp(k.select(6)),
            fp(b.clone()),
            "the change's own generation"
        );
        k.previous = Some(a.clone());
        k.current = b.clone();
        k.since = 6;
        k.pending = None;
        assert_eq!(fp(k.select(5)), fp(a));
        assert_eq!(fp(k.select(6)), fp(b.clone()));
        assert_eq!(fp(k.select(9)), fp(b));
    }
}
