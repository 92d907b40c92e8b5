//! Consistent snapshots: every table, as one read transaction sees it, copied into a new
//! database file. Writers keep going meanwhile (redb readers are MVCC snapshots), and the copy
//! is compact and independent of redb's file format details.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use redb::{
    Database, MultimapTableHandle, ReadableTable, TableDefinition, TableError, TableHandle,
};

use super::catalog::{CATALOG_PKGS, CATALOG_PROVIDES, CATALOGS};
use super::reports::{LAST_REPORT, REPORTS, SEEN};
use super::{
    API_TOKENS, AUDIT, GENERATIONS, META, NODES, SCHEMA_VERSION, Store, StoreError, TASKS, TIMES,
    TOUCHES, VARS,
};

/// Every table a snapshot copies. A snapshot refuses a database holding any other table, so a
/// new table cannot silently be left out of backups (the unit test below opens a fresh store).
pub const SNAPSHOT_TABLES: &[&str] = &[
    "meta_v1",
    "nodes_v1",
    "tasks_v1",
    "vars_v1",
    "generations_v1",
    "touches_v1",
    "times_v1",
    "audit_v1",
    "api_tokens_v1",
    "catalogs_v1",
    "catalog_pkgs_v1",
    "catalog_provides_v1",
    "reports_v1",
    "last_report_v1",
    "seen_v1",
    "keys_v1",
    "entity_versions_v1",
    "users_v1",
    "token_info_v1",
    "templates_v1",
];

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub schema: u64,
    /// The model generation the snapshot saw.
    pub generation: u64,
    /// That generation's commit time (0 for an empty model).
    pub time: i64,
}

impl Store {
    /// Writes everything one read transaction sees into a new database at `dest` (which must
    /// not exist).
    pub fn snapshot(&self, dest: &Path) -> Result<Snapshot, StoreError> {
        let r = self.db.begin_read()?;
        for t in r.list_tables()? {
            if !SNAPSHOT_TABLES.contains(&t.name()) {
                return Err(StoreError::Db(format!(
                    "table '{}' is not in store::backup::SNAPSHOT_TABLES; a backup would miss it",
                    t.name()
                )));
            }
        }
        if let Some(t) = r.list_multimap_tables()?.next() {
            return Err(StoreError::Db(format!(
                "multimap table '{}' is not covered by backups",
                t.name()
            )));
        }
        let (generation, time) = {
            let meta = r.open_table(META)?;
            let g = meta.get("generation")?.map(|v| v.value()).unwrap_or(0);
            let times = r.open_table(TIMES)?;
            (g, times.get(g)?.map(|v| v.value()).unwrap_or(0))
        };
        // Created here, 0600 (it holds node tokens and password hashes), and never over an
        // existing file.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .map_err(|e| StoreError::Db(format!("creating {}: {e}", dest.display())))?;
        let out = Database::create(dest)?;
        let w = out.begin_write()?;
        copy(&r, &w, META)?;
        copy(&r, &w, NODES)?;
        copy(&r, &w, TASKS)?;
        copy(&r, &w, VARS)?;
        copy(&r, &w, GENERATIONS)?;
        copy(&r, &w, TOUCHES)?;
        copy(&r, &w, TIMES)?;
        copy(&r, &w, AUDIT)?;
        copy(&r, &w, API_TOKENS)?;
        copy(&r, &w, CATALOGS)?;
        copy(&r, &w, CATALOG_PKGS)?;
        copy(&r, &w, CATALOG_PROVIDES)?;
        copy(&r, &w, REPORTS)?;
        copy(&r, &w, LAST_REPORT)?;
        copy(&r, &w, SEEN)?;
        copy(&r, &w, super::keys::KEYS)?;
        copy(&r, &w, super::history::VERSIONS)?;
        copy(&r, &w, super::users::USERS)?;
        copy(&r, &w, super::users::TOKEN_INFO)?;
        copy(&r, &w, super::TEMPLATES)?;
        w.commit()?;
        Ok(Snapshot {
            schema: SCHEMA_VERSION,
            generation,
            time,
        })
    }
}

fn copy<K: redb::Key + 'static, V: redb::Value + 'static>(
    r: &redb::ReadTransaction,
    w: &redb::WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<(), StoreError> {
    let src = match r.open_table(def) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut dst = w.open_table(def)?;
    for row in src.iter()? {
        let (k, v) = row?;
        dst.insert(k.value(), v.value())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Op;
    use crate::store::EditOptions;

    #[test]
    fn a_snapshot_covers_every_table_and_reopens_equal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("umc.redb")).expect("open");
        s.edit(
            "sh",
            &[Op::NodeAdd {
                host: "a.example.com".into(),
                vars: Default::default(),
                ssh: None,
            }],
            10,
            EditOptions::default(),
        )
        .expect("edit");
        let dest = dir.path().join("copy.redb");
        let snap = s.snapshot(&dest).expect("snapshot");
        assert_eq!(snap.generation, 1);
        assert_eq!(snap.time, 10);
        // The database keeps changing; the copy does not.
        s.edit(
            "sh",
            &[Op::NodeRemove {
                host: "a.example.com".into(),
            }],
            11,
            EditOptions::default(),
        )
        .expect("edit");
        let copy = Store::open(&dest).expect("reopen");
        let (g, m) = copy.model().expect("model");
        assert_eq!(g, 1);
        assert!(m.nodes.contains_key("a.example.com"));
        let r = copy.db.begin_read().expect("read");
        let names: Vec<String> = r
            .list_tables()
            .expect("list")
            .map(|t| t.name().to_string())
            .collect();
        assert_eq!(names.len(), SNAPSHOT_TABLES.len(), "{names:?}");
        assert!(s.snapshot(&dest).is_err(), "never overwrites");
    }
}
