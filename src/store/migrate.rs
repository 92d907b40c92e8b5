//! Schema versions and migrations.
//!
//! `meta_v1["schema"]` records the schema a database was written with. [`Store::open`] reads it
//! before anything else:
//!
//! - newer than [`SCHEMA_VERSION`]: refused ([`StoreError::TooNew`]); an older umcd never
//!   guesses at a newer format;
//! - older: the file is first copied to `<db>.schema-<old>.bak` (mode 0600, synced), then every step from
//!   the old version up runs in **one** write transaction that also records the new version. A
//!   failed step commits nothing, so the database stays at its old version and the next start
//!   tries again.
//!
//! Steps:
//! - 1 → 2: audit records (`audit_v1`) gain `started`, when the fleet command began: the
//!   record's time minus its slowest host's duration (rounded up to a second). Records written
//!   by schema 2 carry it from the start.
//! - 2 → 3: task files name their templates by sha256. Each template's text moves from the
//!   task records (`tasks_v1` and every task version in `entity_versions_v1`) into
//!   `templates_v1`, stored once however many versions share it.
//!
//! [`Store::open`]: super::Store::open

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableError};

use super::meta::{Meta, MetaRead, MetaWrite};
use super::{AUDIT, META, SCHEMA_VERSION, StoreError, TASKS, TEMPLATES};

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
    meta.value(Meta::Schema)
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
    std::fs::copy(db_path, &tmp).map_err(|e| StoreError::io("copying the database to", &tmp, e))?;
    // It holds what the database holds (node tokens, password hashes): 0600 whatever the
    // source's mode was.
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| StoreError::io("securing", &tmp, e))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io("syncing", &tmp, e))?;
    std::fs::rename(&tmp, &dest).map_err(|e| StoreError::io("renaming to", &dest, e))?;
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
            2 => templates_2_to_3(&tx)?,
            v => {
                return Err(StoreError::NoMigration(v));
            }
        }
        version += 1;
    }
    tx.open_table(META)?.set(Meta::Schema, SCHEMA_VERSION)?;
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
            .ok_or_else(|| StoreError::corrupt(what.clone(), "no time"))?;
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
        let _: super::audit::AuditRec = super::decode(&what, &bytes)?;
        t.insert(id, bytes.as_slice())?;
    }
    Ok(())
}

/// 2 → 3: moves every template out of the task records into `templates_v1`.
fn templates_2_to_3(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut templates = tx.open_table(TEMPLATES)?;
    let mut tasks = tx.open_table(TASKS)?;
    let mut rows = Vec::new();
    for row in tasks.iter()? {
        let (k, v) = row?;
        rows.push((k.value().to_string(), v.value().to_vec()));
    }
    for (name, bytes) in rows {
        let what = format!("task '{name}'");
        let mut rec: serde_json::Value = super::decode(&what, &bytes)?;
        move_templates(&mut rec, &mut templates, &what)?;
        let bytes = super::encode(&rec)?;
        let _: super::TaskRec = super::decode(&what, &bytes)?;
        tasks.insert(name.as_str(), bytes.as_slice())?;
    }
    let mut versions = tx.open_table(super::tables::VERSIONS)?;
    let mut rows = Vec::new();
    for row in versions.iter()? {
        let (k, v) = row?;
        let (key, g) = k.value();
        rows.push((key.to_string(), g, v.value().to_vec()));
    }
    for (key, g, bytes) in rows {
        let what = format!("version of '{key}' at generation {g}");
        let mut rec: serde_json::Value = super::decode(&what, &bytes)?;
        let Some(task) = rec.get_mut("Task") else {
            continue;
        };
        move_templates(task, &mut templates, &what)?;
        let bytes = super::encode(&rec)?;
        let _: super::history::VersionRec = super::decode(&what, &bytes)?;
        versions.insert((key.as_str(), g), bytes.as_slice())?;
    }
    Ok(())
}

/// Replaces each file's `template` text in a schema-2 task record by its `sha256`, storing
/// the text in `templates`.
fn move_templates(
    rec: &mut serde_json::Value,
    templates: &mut redb::Table<&[u8], &[u8]>,
    what: &str,
) -> Result<(), StoreError> {
    let corrupt = |m: &str| StoreError::corrupt(what, m.to_string());
    let Some(files) = rec.get_mut("files").and_then(|f| f.as_array_mut()) else {
        return Ok(());
    };
    for f in files {
        let file = f
            .as_object_mut()
            .ok_or_else(|| corrupt("a file is not a record"))?;
        let text = match file.remove("template") {
            Some(serde_json::Value::String(t)) => t,
            _ => return Err(corrupt("a file has no template")),
        };
        let hash = super::records::template_hash(&text);
        if templates.get(hash.as_slice())?.is_none() {
            templates.insert(hash.as_slice(), text.as_bytes())?;
        }
        file.insert("sha256".into(), hex::encode(hash).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tables::VERSIONS;
    use super::super::{EditOptions, Store, TASKS};
    use super::*;
    use crate::api::Op;

    /// Puts the templates back into the task records and marks the database schema 2, as a
    /// schema-2 umcd wrote it.
    fn downgrade_to_2(path: &Path) {
        let db = Database::create(path).expect("open");
        let tx = db.begin_write().expect("write");
        {
            let templates = tx.open_table(TEMPLATES).expect("templates");
            let inline = |rec: &mut serde_json::Value| {
                for f in rec["files"].as_array_mut().expect("files") {
                    let f = f.as_object_mut().expect("file");
                    let sha = f.remove("sha256").expect("sha256");
                    let key = hex::decode(sha.as_str().expect("hex")).expect("hex");
                    let text = templates.get(key.as_slice()).expect("get").expect("text");
                    let text = String::from_utf8(text.value().to_vec()).expect("utf-8");
                    f.insert("template".into(), text.into());
                }
            };
            let mut tasks = tx.open_table(TASKS).expect("tasks");
            let rows: Vec<(String, Vec<u8>)> = tasks
                .iter()
                .expect("iter")
                .map(|r| r.map(|(k, v)| (k.value().to_string(), v.value().to_vec())))
                .collect::<Result<_, _>>()
                .expect("rows");
            for (k, v) in rows {
                let mut rec: serde_json::Value = serde_json::from_slice(&v).expect("json");
                inline(&mut rec);
                let bytes = serde_json::to_vec(&rec).expect("json");
                tasks.insert(k.as_str(), bytes.as_slice()).expect("insert");
            }
            let mut versions = tx.open_table(VERSIONS).expect("versions");
            let rows: Vec<(String, u64, Vec<u8>)> = versions
                .iter()
                .expect("iter")
                .map(|r| {
                    r.map(|(k, v)| {
                        let (key, g) = k.value();
                        (key.to_string(), g, v.value().to_vec())
                    })
                })
                .collect::<Result<_, _>>()
                .expect("rows");
            for (k, g, v) in rows {
                let mut rec: serde_json::Value = serde_json::from_slice(&v).expect("json");
                if let Some(t) = rec.get_mut("Task") {
                    inline(t);
                }
                let bytes = serde_json::to_vec(&rec).expect("json");
                versions
                    .insert((k.as_str(), g), bytes.as_slice())
                    .expect("insert");
            }
            tx.open_table(META)
                .expect("meta")
                .set(Meta::Schema, 2)
                .expect("schema");
        }
        tx.delete_table(TEMPLATES).expect("delete");
        tx.commit().expect("commit");
    }

    #[test]
    fn schema_2_templates_move_into_their_own_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("umc.redb");
        let file = |template: &str| Op::TaskFileAdd {
            task: "web".into(),
            path: "/etc/motd".into(),
            template: template.into(),
            mode: None,
            reload: None,
            restart: None,
        };
        let (model, at_2) = {
            let s = Store::open(&path).expect("open");
            let add = Op::TaskAdd {
                task: "web".into(),
                description: None,
            };
            s.edit(
                "sh",
                &[add, file("one {{ host.fqdn }}")],
                10,
                EditOptions::default(),
            )
            .expect("edit");
            s.edit(
                "sh",
                &[file("two {{ host.fqdn }}")],
                11,
                EditOptions::default(),
            )
            .expect("edit");
            s.edit(
                "sh",
                &[Op::TaskDepend {
                    task: "web".into(),
                    relations: vec!["nginx".into()],
                }],
                12,
                EditOptions::default(),
            )
            .expect("edit");
            (
                s.model().expect("model"),
                s.model_at(2).expect("model at 2"),
            )
        };
        downgrade_to_2(&path);
        assert_eq!(
            recorded_schema(&Database::create(&path).expect("open")).expect("schema"),
            Some(2)
        );
        let s = Store::open(&path).expect("migrate");
        let m = s.migration().expect("migrated");
        assert_eq!((m.from, m.to), (2, SCHEMA_VERSION));
        assert_eq!(s.model().expect("model"), model);
        assert_eq!(s.model_at(2).expect("model at 2"), at_2);
        assert_eq!(
            at_2.tasks["web"].files["/etc/motd"].template,
            "two {{ host.fqdn }}"
        );
        let r = s.db.begin_read().expect("read");
        use redb::ReadableTableMetadata;
        assert_eq!(r.open_table(TEMPLATES).expect("t").len().expect("len"), 2);
    }
}
