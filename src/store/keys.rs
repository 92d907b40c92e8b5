//! Signing-key history: when each key was added (the generation whose `umc-node` first
//! shipped it) and retired. A key change is a server change: it commits a generation that
//! touches `Entity::Server` (so `umc-node`'s version, its changelog and every Release `Date`
//! move) and is recorded in the log with the acting user.

use std::collections::BTreeMap;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::meta::{Meta, MetaRead};
use super::tables::KEYS;
use super::{META, Store, StoreError, commit_server_generation, decode, encode};

#[derive(Serialize, Deserialize)]
struct KeyRec {
    added_generation: u64,
    added_time: i64,
    added_by: String,
    /// "rotate" | "import"
    how: String,
    #[serde(default)]
    retired: Option<(u64, i64, String)>,
}

/// A recorded signing key. Keys umcd made at first start have no record: every node that
/// installed anything from umcd has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub fingerprint: String,
    /// The generation that added it: `umc-node` `1.<added_generation>` is the first to ship it.
    pub added_generation: u64,
    pub added_time: i64,
    pub added_by: String,
    pub how: String,
    /// (generation, time, user) of the retirement.
    pub retired: Option<(u64, i64, String)>,
}

/// What a key operation did to the key set.
#[derive(Debug, Clone)]
pub enum KeyChange {
    /// A key was added: by `umc-admin key rotate` (`how` = "rotate") or `key import`.
    Added {
        fingerprint: String,
        how: String,
    },
    Retired {
        fingerprint: String,
    },
}

/// umcd's serving inputs after the change (see `Store::note_serving_inputs`), so that the next
/// start does not commit the same change again.
#[derive(Debug, Clone)]
pub struct ServingInputs {
    pub fingerprint: u64,
    pub description: String,
}

impl Store {
    /// Commits a key change as one generation touching `Entity::Server`, by `user`; returns
    /// the generation.
    pub fn record_key_change(
        &self,
        user: &str,
        change: &KeyChange,
        serving: &ServingInputs,
        now: i64,
    ) -> Result<u64, StoreError> {
        let text = match change {
            KeyChange::Added { fingerprint, how } if how == "import" => {
                format!("signing key {fingerprint} imported; InRelease is signed by it too")
            }
            KeyChange::Added { fingerprint, .. } => {
                format!("signing key {fingerprint} added; InRelease is signed by it too")
            }
            KeyChange::Retired { fingerprint } => {
                format!("signing key {fingerprint} retired; InRelease is no longer signed by it")
            }
        };
        let tx = self.db.begin_write()?;
        let generation = {
            let (generation, time) =
                commit_server_generation(&tx, user, text, serving.fingerprint, now)?;
            let mut keys = tx.open_table(KEYS)?;
            match change {
                KeyChange::Added { fingerprint, how } => {
                    let rec = KeyRec {
                        added_generation: generation,
                        added_time: time,
                        added_by: user.to_string(),
                        how: how.clone(),
                        retired: None,
                    };
                    keys.insert(fingerprint.as_str(), encode(&rec)?.as_slice())?;
                }
                KeyChange::Retired { fingerprint } => {
                    let old = keys
                        .get(fingerprint.as_str())?
                        .map(|v| decode::<KeyRec>("key", v.value()))
                        .transpose()?;
                    let mut rec = old.unwrap_or(KeyRec {
                        added_generation: 0,
                        added_time: 0,
                        added_by: "umcd".to_string(),
                        how: "initial".to_string(),
                        retired: None,
                    });
                    rec.retired = Some((generation, time, user.to_string()));
                    keys.insert(fingerprint.as_str(), encode(&rec)?.as_slice())?;
                }
            }
            generation
        };
        tx.commit()?;
        Ok(generation)
    }

    /// The newest generation that changed umcd's serving inputs (keys, node files, ...).
    pub fn server_generation(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        meta.counter(Meta::ServerGeneration)
    }

    /// Every recorded key, by fingerprint.
    pub fn key_records(&self) -> Result<BTreeMap<String, KeyRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(KEYS)?;
        let mut out = BTreeMap::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let rec: KeyRec = decode("key", v.value())?;
            let fingerprint = k.value().to_string();
            out.insert(
                fingerprint.clone(),
                KeyRecord {
                    fingerprint,
                    added_generation: rec.added_generation,
                    added_time: rec.added_time,
                    added_by: rec.added_by,
                    how: rec.how,
                    retired: rec.retired,
                },
            );
        }
        Ok(out)
    }
}
