//! Schema versions and migrations.
//!
//! `meta_v1["schema"]` records the schema a database was written with. [`Store::open`] reads it
//! before anything else:
//!
//! - newer than [`SCHEMA_VERSION`]: refused ([`StoreError::TooNew`]); an older umcd never
//!   guesses at a newer format;
//! - older: the file is first copied to `<db>.schema-<old>.bak` (synced), then every step from
//!   the old version up runs in **one** write transaction that also records the new version. A
//!   failed step commits nothing, so the database stays at its old version and the next start
//!   tries again.
//!
//! Steps:
//! - 1 → 2: audit records (`audit_v1`) gain `started`, when the fleet command began: the
//!   record's time minus its slowest host's duration (rounded up to a second). Records written
//!   by schema 2 carry it from the start.
//!
//! [`Store::open`]: super::Store::open

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableError};

use super::{AUDIT, META, SCHEMA_VERSION, StoreError};

/// What [`super::Store::open`] did to an older database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub from: u64,
    pub to: u64,
    /// The copy of the database as it was before the migration.
    pub backup: PathBuf,
}

/// The schema version recorded in `db`, `None` for a new (empty) database.
pub(super) fn recorded_schema(db: &Database) -> Result<Option<u64>, StoreError> {
    let tx = db.begin_read()?;
    let meta = match tx.open_table(META) {
        Ok(m) => m,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(meta.get("schema")?.map(|v| v.value()))
}

/// Where the pre-migration copy of `db_path` goes.
pub fn backup_path(db_path: &Path, from: u64) -> PathBuf {
    let mut name = db_path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".schema-{from}.bak"));
    db_path.with_file_name(name)
}

/// Copies the (closed) database file to its backup name, durably, before a migration.
pub(super) fn keep_copy(db_path: &Path, from: u64) -> Result<PathBuf, StoreError> {
    let dest = backup_path(db_path, from);
    let tmp = dest.with_extension("bak.tmp");
    let io = |what: &str, p: &Path, e: std::io::Error| {
        StoreError::Db(format!("{what} {}: {e}", p.display()))
    };
    std::fs::copy(db_path, &tmp).map_err(|e| io("copying the database to", &tmp, e))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("syncing", &tmp, e))?;
    std::fs::rename(&tmp, &dest).map_err(|e| io("renaming to", &dest, e))?;
    if let Some(dir) = dest.parent() {
        // The rename itself must survive a crash before the migration commits.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(dest)
}

/// Runs every step from `from` to [`SCHEMA_VERSION`] and records the new version, all in one
/// write transaction.
pub(super) fn run(db: &Database, from: u64) -> Result<(), StoreError> {
    let tx = db.begin_write()?;
    let mut version = from;
    while version < SCHEMA_VERSION {
        match version {
            1 => audit_started_1_to_2(&tx)?,
            v => {
                return Err(StoreError::Db(format!(
                    "no migration from database schema version {v}"
                )));
            }
        }
        version += 1;
    }
    tx.open_table(META)?.insert("schema", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// The `started` of a fleet command: its record time minus the slowest host's duration.
pub fn audit_started(time: i64, durations_ms: impl Iterator<Item = u64>) -> i64 {
    let longest = durations_ms.max().unwrap_or(0);
    time - longest.div_ceil(1000) as i64
}

/// 1 → 2: fills `started` into every audit record.
fn audit_started_1_to_2(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut t = tx.open_table(AUDIT)?;
    let mut rows = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        rows.push((k.value(), v.value().to_vec()));
    }
    for (id, bytes) in rows {
        let what = format!("audit {id}");
        let mut rec: serde_json::Map<String, serde_json::Value> = super::decode(&what, &bytes)?;
        let time = rec
            .get("time")
            .and_then(|t| t.as_i64())
            .ok_or_else(|| StoreError::Corrupt(what.clone(), "no time".into()))?;
        let durations = rec
            .get("results")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("duration_ms").and_then(|d| d.as_u64()));
        let started = audit_started(time, durations);
        rec.insert("started".into(), started.into());
        // What schema 2 reads must decode, or the migration fails and commits nothing.
        let bytes = super::encode(&rec)?;
        let _: super::AuditRec = super::decode(&what, &bytes)?;
        t.insert(id, bytes.as_slice())?;
    }
    Ok(())
}
