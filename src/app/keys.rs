//! Signing keys at runtime.
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

use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;

use super::App;
use crate::config::Config;
use crate::nodefiles::Serving;
use crate::sign::{SignError, SigningKeys};
use crate::store::ServingInputs;

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

/// The key sets, and the lock that serializes key changes.
pub(super) struct Keys {
    sets: RwLock<KeySets>,
    pub(super) changes: Mutex<()>,
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
    pub fn serving<'a>(&self, keys: &'a KeySet) -> Serving<'a> {
        keys.serving(&self.config)
    }

    fn with_keysets<T>(&self, f: impl FnOnce(&KeySets) -> T) -> T {
        match self.keys.sets.read() {
            Ok(g) => f(&g),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// Serializes key changes.
    pub(crate) fn key_changes(&self) -> std::sync::LockResult<std::sync::MutexGuard<'_, ()>> {
        self.keys.changes.lock()
    }

    pub(crate) fn update_keysets(&self, f: impl FnOnce(&mut KeySets)) {
        match self.keys.sets.write() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
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
