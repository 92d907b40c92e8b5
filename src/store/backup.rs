//! Consistent snapshots: every table, as one read transaction sees it, copied into a new
//! database file. Writers keep going meanwhile (redb readers are MVCC snapshots), and the copy
//! is compact and independent of redb's file format details.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use redb::{Database, MultimapTableHandle, TableHandle};

use super::meta::{Meta, MetaRead};
use super::tables::{self, META, TIMES};
use super::{SCHEMA_VERSION, Store, StoreError};

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
            if !tables::names().any(|n| n == t.name()) {
                return Err(StoreError::UnlistedTable(t.name().to_string()));
            }
        }
        if let Some(t) = r.list_multimap_tables()?.next() {
            return Err(StoreError::UnlistedMultimapTable(t.name().to_string()));
        }
        let (generation, time) = {
            let meta = r.open_table(META)?;
            let g = meta.counter(Meta::Generation)?;
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
            .map_err(|e| StoreError::io("creating", dest, e))?;
        let out = Database::create(dest)?;
        let w = out.begin_write()?;
        for t in tables::ALL {
            t.copy(&r, &w)?;
        }
        w.commit()?;
        Ok(Snapshot {
            schema: SCHEMA_VERSION,
            generation,
            time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Op;
    use crate::store::EditOptions;
    use crate::store::tests::{add, store};

    #[test]
    fn a_snapshot_covers_every_table_and_reopens_equal() {
        let (dir, s) = store();
        s.edit("sh", &[add("a.example.com")], 10, EditOptions::default())
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
        // What the edits left in the source: every table of tables::ALL exists in a fresh store, and no other one.
        let r = s.db.begin_read().expect("read");
        let mut names: Vec<String> = r
            .list_tables()
            .expect("list")
            .map(|t| t.name().to_string())
            .collect();
        names.sort();
        let mut all: Vec<&str> = tables::names().collect();
        all.sort();
        assert_eq!(names, all);
        assert!(s.snapshot(&dest).is_err(), "never overwrites");
    }
}
