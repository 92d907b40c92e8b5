//! Signing keys at runtime: the key sets views are rendered with, and `umc-admin key
//! list|rotate|import|status|retire`.
//!
//! The current key set lives in [`App`] as one `Arc<KeySet>` (keys plus both public
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

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::SystemTime;

use bytes::Bytes;

use super::{App, AppError, now};
use crate::api::{KeyChangeResponse, KeyInfo, KeyNodeStatus, KeyStatus};
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
    /// The key set of the newest committed key change (or of umcd's start).
    pub current: Arc<KeySet>,
    /// The serving generation from which `current` applies.
    pub since: u64,
    /// The set `current` replaced, for views older than `since`; none before the first change.
    pub previous: Option<Arc<KeySet>>,
    /// The set a key change is committing right now, for the views that change creates.
    pub pending: Option<Arc<KeySet>>,
}

impl KeySets {
    /// Only `current`, from serving generation `since`: how umcd starts.
    pub fn new(current: Arc<KeySet>, since: u64) -> KeySets {
        KeySets {
            current,
            since,
            previous: None,
            pending: None,
        }
    }

    /// The key set a view of `server_generation` is rendered with, by the rules above.
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
    /// The keys, newest first: each signs every Release, and all are in both keyrings.
    pub keys: SigningKeys,
    /// The binary keyring: shipped in `umc-node` and served as `/umc-archive-keyring.gpg`.
    pub keyring_gpg: Bytes,
    /// The same keyring ASCII-armored, served as `/umc-archive-keyring.asc`.
    pub keyring_asc: Bytes,
}

impl KeySet {
    /// Exports both keyrings of `keys` once, so no request exports them again.
    pub fn new(keys: SigningKeys) -> Result<KeySet, SignError> {
        Ok(KeySet {
            keyring_gpg: keys.public_keyring_binary()?.into(),
            keyring_asc: keys.public_keyring_armored()?.into(),
            keys,
        })
    }

    /// What umcd contributes to every host's `umc-node` package.
    pub fn serving<'a>(&'a self, config: &'a Config) -> Serving<'a> {
        Serving {
            keyring: &self.keyring_gpg,
            conffiles: config.conffiles,
            ca: config.tls_node_ca.as_deref(),
        }
    }
}

/// What, besides the model, shapes every host's repository: the packaging format, the
/// architectures, the signing keys, umc-node's embedded files and the conffile policy. umcd
/// records its hash at start (`Store::note_serving_inputs`) and with every key change.
pub fn serving_inputs(config: &Config, fingerprints: &[String]) -> ServingInputs {
    let description = format!(
        "format {}, architectures {}, keys {}, node files {}, conffiles {}{}",
        crate::model::FORMAT,
        config.architectures.join(" "),
        fingerprints.join(" "),
        crate::nodefiles::fingerprint(),
        config.conffiles,
        // Only when set, so that a umcd without TLS keeps its serving fingerprint.
        config.tls_node_ca.as_deref().map_or(String::new(), |ca| {
            use sha2::{Digest, Sha256};
            format!(
                ", node CA {}",
                hex::encode(&Sha256::digest(ca.as_bytes())[..8])
            )
        }),
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

/// The key sets, and the lock that serializes key changes.
pub(super) struct Keys {
    sets: RwLock<KeySets>,
    changes: Mutex<()>,
}

impl Keys {
    pub(super) fn new(current: KeySet, since: u64) -> Keys {
        Keys {
            sets: RwLock::new(KeySets::new(Arc::new(current), since)),
            changes: Mutex::new(()),
        }
    }
}

impl App {
    /// The current signing keys and keyrings.
    pub fn keys(&self) -> Arc<KeySet> {
        self.with_keysets(|k| k.current.clone())
    }

    /// The key set a view whose serving inputs are at `server_generation` is rendered with,
    /// so that a `umc-node` version always ships the same keyring.
    pub fn keys_for(&self, server_generation: u64) -> Arc<KeySet> {
        self.with_keysets(|k| k.select(server_generation))
    }

    /// What umcd contributes to every host's `umc-node` package, with the key set `keys`
    /// (take it once per render from [`App::keys_for`], so one view signs and ships the same
    /// keys).
    pub fn serving<'a>(&'a self, keys: &'a KeySet) -> Serving<'a> {
        keys.serving(&self.config)
    }

    fn with_keysets<T>(&self, f: impl FnOnce(&KeySets) -> T) -> T {
        match self.keys.sets.read() {
            Ok(g) => f(&g),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    fn update_keysets(&self, f: impl FnOnce(&mut KeySets)) {
        match self.keys.sets.write() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
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
                node_version: rec.map(|r| crate::model::version(r.added_generation)),
            }
        })
        .collect()
}

impl App {
    /// Every current signing key with where it came from.
    pub fn key_list(&self) -> Result<Vec<KeyInfo>, AppError> {
        let set = self.keys();
        let recs = self.key_records(&set.keys)?;
        Ok(key_infos(&set.keys, &recs))
    }

    /// The current keys, the `umc-node` version that ships them all, and which nodes have it.
    pub fn key_status(&self) -> Result<KeyStatus, AppError> {
        let set = self.keys();
        let recs = self.key_records(&set.keys)?;
        let g = needed_generation(&set.keys, &recs);
        Ok(KeyStatus {
            keys: key_infos(&set.keys, &recs),
            needed: crate::model::version(g),
            nodes: self.key_nodes(g)?,
        })
    }

    /// Adds a new Ed25519 key: InRelease is signed by every key from now on.
    pub fn rotate_key(&self, user: &str) -> Result<KeyChangeResponse, AppError> {
        let _one = self.key_changes()?;
        let current = self.keys();
        let uid = current
            .keys
            .user_id()
            .unwrap_or_else(|| "umc archive signing key".to_string());
        let new = SigningKeys::generate(&uid)?;
        let fingerprint = new.fingerprints().remove(0);
        let next = current.keys.with_added(&new)?;
        let change = KeyChange::Added {
            fingerprint: fingerprint.clone(),
            how: "rotate".into(),
        };
        let g = self.change_keys(user, next, change)?;
        Ok(self.key_change(g, fingerprint))
    }

    /// Adds an existing key (from aptly, reprepro), refused when apt 3 would refuse it.
    pub fn import_key(&self, user: &str, key: &[u8]) -> Result<KeyChangeResponse, AppError> {
        let imported = SigningKeys::import(key, SystemTime::now())?;
        let fps = imported.fingerprints();
        if fps.len() != 1 {
            return Err(AppError::Invalid(format!(
                "the file holds {} keys ({}); import one at a time",
                fps.len(),
                fps.join(", ")
            )));
        }
        let _one = self.key_changes()?;
        let next = self.keys().keys.with_added(&imported)?;
        let fingerprint = fps[0].clone();
        let change = KeyChange::Added {
            fingerprint: fingerprint.clone(),
            how: "import".into(),
        };
        let g = self.change_keys(user, next, change)?;
        Ok(self.key_change(g, fingerprint))
    }

    /// Stops signing with key `fingerprint`. Refused (a conflict) while an active node has
    /// not confirmed the keys that remain, unless `force`.
    pub fn retire_key(
        &self,
        user: &str,
        fingerprint: &str,
        force: bool,
    ) -> Result<KeyChangeResponse, AppError> {
        let _one = self.key_changes()?;
        let fingerprint = normalize_fingerprint(fingerprint);
        let current = self.keys();
        let next = current.keys.without(&fingerprint)?;
        let recs = self.key_records(&current.keys)?;
        let g = needed_generation(&next, &recs);
        let unconfirmed: Vec<KeyNodeStatus> = self
            .key_nodes(g)?
            .into_iter()
            .filter(|n| n.active && !n.confirmed)
            .collect();
        if !unconfirmed.is_empty() && !force {
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
            return Err(AppError::Conflict(format!(
                "refusing to retire key {fingerprint}: {} active node(s) have not confirmed the new keyring (umc-node >= {}): {}; wait for their next cycle (umc-admin key status), or use --force",
                unconfirmed.len(),
                crate::model::version(g),
                list.join(", ")
            )));
        }
        let change = KeyChange::Retired {
            fingerprint: fingerprint.clone(),
        };
        let generation = self.change_keys(user, next, change)?;
        let mut r = self.key_change(generation, fingerprint);
        r.unconfirmed = unconfirmed.into_iter().map(|n| n.host).collect();
        Ok(r)
    }

    /// Serializes key changes.
    fn key_changes(&self) -> Result<MutexGuard<'_, ()>, AppError> {
        self.keys
            .changes
            .lock()
            .map_err(|e| AppError::internal(format!("key change lock: {e}")))
    }

    /// Each key of `keys` with its record (none for umcd's first key).
    fn key_records(
        &self,
        keys: &SigningKeys,
    ) -> Result<Vec<(String, Option<KeyRecord>)>, AppError> {
        let all = self.store.key_records()?;
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
    fn key_nodes(&self, needed_generation: u64) -> Result<Vec<KeyNodeStatus>, AppError> {
        use debversion::Version;
        let fleet = self.judge_fleet()?;
        let reports = self.store.last_reports()?;
        let needed = crate::model::version(needed_generation);
        let needed_v: Option<Version> = needed.parse().ok();
        // A node without a URL keeps a keyring its admin installed by hand: umc-node ships
        // none, so its umc-node version proves nothing (retire it with --force once done by
        // hand).
        let (_, model) = self.store.model()?;
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
                    active: h.state != crate::report::State::Stale,
                    host: h.host.clone(),
                    installed,
                    needed: needed.clone(),
                    confirmed,
                }
            })
            .collect())
    }

    /// Makes `next` the key set (see the module doc for the steps); returns the generation.
    fn change_keys(
        &self,
        user: &str,
        next: SigningKeys,
        change: KeyChange,
    ) -> Result<u64, AppError> {
        let old = self.keys();
        let set = Arc::new(KeySet::new(next)?);
        let serving = serving_inputs(&self.config, &set.keys.fingerprints());
        let dir = &self.config.data_dir;
        set.keys.save(dir).map_err(AppError::internal)?;
        self.update_keysets(|k| k.pending = Some(set.clone()));
        match self.store.record_key_change(user, &change, &serving, now()) {
            Ok(g) => {
                self.update_keysets(|k| {
                    k.previous = Some(k.current.clone());
                    k.current = set;
                    k.since = g;
                    k.pending = None;
                });
                self.set_generation(g);
                // Rendered archives carry the old signatures; every view moved anyway
                // (umc-node's version and the Release date), so this only frees memory early.
                self.cache.archives.invalidate_all();
                self.cache.hosts.invalidate_all();
                tracing::info!("{user}: {change:?}; generation {g}");
                Ok(g)
            }
            Err(e) => {
                self.update_keysets(|k| k.pending = None);
                if let Err(e2) = old.keys.save(dir) {
                    tracing::error!("restoring the signing key file: {e2}");
                }
                Err(e.into())
            }
        }
    }

    fn key_change(&self, generation: u64, fingerprint: String) -> KeyChangeResponse {
        KeyChangeResponse {
            generation,
            fingerprint,
            keys: self.keys().keys.fingerprints(),
            unconfirmed: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str) -> Arc<KeySet> {
        let keys =
            SigningKeys::generate(&format!("{name} <{name}@example.invalid>")).expect("generate");
        Arc::new(KeySet::new(keys).expect("keyset"))
    }

    /// A rotation commits a generation, writes both keys to the key file and leaves older
    /// views their key set; retiring the old key waits for active nodes unless forced.
    #[test]
    fn rotate_then_retire_waits_for_active_nodes() {
        use crate::app::now;
        use crate::app::testing::{app, edit, node_add};
        use crate::store::IncomingReport;

        let (dir, app) = app();
        edit(&app, vec![node_add("a.example")]);
        let first = app.keys().keys.fingerprints();
        let before = app.generation();

        let r = app.rotate_key("admin").expect("rotate");
        assert!(r.generation > before);
        assert_eq!(app.generation(), r.generation);
        assert_eq!(r.keys.len(), 2);
        assert!(r.keys.contains(&first[0]) && r.keys.contains(&r.fingerprint));
        let (on_disk, created) = SigningKeys::load_or_generate(dir.path(), "x").expect("load");
        assert!(!created);
        assert_eq!(on_disk.fingerprints().len(), 2);
        assert_eq!(
            app.keys_for(before).keys.fingerprints(),
            first,
            "older views"
        );
        let list = app.key_list().expect("list");
        let added_by = |fp: &str| {
            list.iter()
                .find(|k| k.fingerprint == fp)
                .map(|k| k.added_by.clone())
        };
        assert_eq!(
            added_by(&first[0]),
            Some(None),
            "umcd's first key has no record"
        );
        assert_eq!(added_by(&r.fingerprint), Some(Some("admin".to_string())));

        // An active node that has not shown the new keyring holds the retirement up.
        let t = now();
        let report = IncomingReport {
            host: "a.example".into(),
            received: t,
            text: format!("Format: umc-report/1\nStarted: {t}\nFinished: {t}\nStep: update 0\n"),
            current_token: None,
        };
        app.store.add_reports(&[report], 10).expect("report");
        let e = app
            .retire_key("admin", &first[0], false)
            .expect_err("refused");
        assert_eq!(e.kind(), crate::app::ErrorKind::Conflict);
        assert!(
            e.to_string().contains("a.example (no umc-node reported)"),
            "{e}"
        );
        assert_eq!(app.keys().keys.fingerprints().len(), 2, "nothing changed");

        let r2 = app.retire_key("admin", &first[0], true).expect("forced");
        assert_eq!(r2.unconfirmed, ["a.example"]);
        assert_eq!(r2.keys, [r.fingerprint.as_str()]);
        assert!(r2.generation > r.generation);
        let e = app.retire_key("admin", &first[0], true).expect_err("gone");
        assert_eq!(e.kind(), crate::app::ErrorKind::NotFound);
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
