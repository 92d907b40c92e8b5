//! Every redb table of the store, in one place. Names carry a `_v1` suffix: a format change
//! is a migration step (`store::migrate`) that rewrites rows in place, not a new table.
//!
//! [`ALL`] lists them: [`Store::open`](super::Store::open) creates each, and
//! [`Store::snapshot`](super::Store::snapshot) copies each (and refuses a database holding
//! a table not listed, so a new table cannot silently be left out of backups).

use redb::{ReadableTable, TableDefinition, TableError, TableHandle};

use super::StoreError;

/// Counters and markers of the whole database, by [`Meta`](super::meta::Meta) key.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta_v1");
/// host → node record (its variables, tasks, SSH target, token and generation).
pub(super) const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes_v1");
/// task name → task record (its templates named by hash, see [`TEMPLATES`]).
pub(super) const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks_v1");
/// Global variables: name → value.
pub(super) const VARS: TableDefinition<&str, &str> = TableDefinition::new("vars_v1");
/// generation → time, user and all change lines (for `log`).
pub(super) const GENERATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("generations_v1");
/// (entity key, generation) -> that edit's time, user and lines for that entity: the changelog
/// index. A host's render reads only its own entities' rows, never a whole generation record
/// (one bulk edit of 10,000 nodes must not make every host's render decode 10,000 lines).
pub(super) const TOUCHES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("touches_v1");
/// generation -> commit time (seconds): Release dates without decoding generation records.
pub(super) const TIMES: TableDefinition<u64, i64> = TableDefinition::new("times_v1");
/// id -> a fleet command umc-admin ran over SSH (time, user, targets, command, each host's
/// result). Separate from the model history: it bumps no generation, so no package version or
/// Release date moves.
pub(super) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_v1");
/// sha256(token) -> user name.
pub(super) const API_TOKENS: TableDefinition<&[u8], &str> = TableDefinition::new("api_tokens_v1");
/// catalog name → its metadata.
pub(super) const CATALOGS: TableDefinition<&str, &[u8]> = TableDefinition::new("catalogs_v1");
/// (catalog, package) → version, section, priority, short description, Provides.
pub(super) const CATALOG_PKGS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("catalog_pkgs_v1");
/// (catalog, virtual package, provider) → provided version ("" when unversioned).
pub(super) const CATALOG_PROVIDES: TableDefinition<(&str, &str, &str), &str> =
    TableDefinition::new("catalog_provides_v1");
/// (host, sequence) → a validated report as the node sent it, with its arrival time.
pub(super) const REPORTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("reports_v1");
/// host → the newest row of `reports_v1` (so status reads one row per host).
pub(super) const LAST_REPORT: TableDefinition<&str, &[u8]> = TableDefinition::new("last_report_v1");
/// host → what umcd saw of its apt traffic (flushed from memory now and then).
pub(super) const SEEN: TableDefinition<&str, &[u8]> = TableDefinition::new("seen_v1");
/// fingerprint (uppercase hex) -> when the key was added and retired.
pub(super) const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys_v1");
/// (entity key, generation) -> the entity's record as that generation left it.
pub(super) const VERSIONS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("entity_versions_v1");
/// name → role, argon2id PHC hash, creation time.
pub(super) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users_v1");
/// sha256(token) → label, creation time, expiry.
pub(super) const TOKEN_INFO: TableDefinition<&[u8], &[u8]> = TableDefinition::new("token_info_v1");
/// sha256(template) -> the template's text. Task records (`tasks_v1` and every version in
/// `entity_versions_v1`) name their templates by hash, so an edit that leaves a template alone
/// writes 32 bytes for it, not the template. Pruning drops templates no record names.
pub(super) const TEMPLATES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("templates_v1");

/// Every table, in the order a snapshot copies them.
pub(super) const ALL: &[&dyn Table] = &[
    &META,
    &NODES,
    &TASKS,
    &VARS,
    &GENERATIONS,
    &TOUCHES,
    &TIMES,
    &AUDIT,
    &API_TOKENS,
    &CATALOGS,
    &CATALOG_PKGS,
    &CATALOG_PROVIDES,
    &REPORTS,
    &LAST_REPORT,
    &SEEN,
    &KEYS,
    &VERSIONS,
    &USERS,
    &TOKEN_INFO,
    &TEMPLATES,
];

/// A table of [`ALL`], whatever its key and value types: what opening and copying every
/// table needs.
pub(super) trait Table {
    fn name(&self) -> &str;
    /// Opens the table in `tx`, creating it when missing (so readers never meet a missing one).
    fn create(&self, tx: &redb::WriteTransaction) -> Result<(), StoreError>;
    /// Copies every row `from` sees into the same table of `to` (nothing when `from` lacks it).
    fn copy(
        &self,
        from: &redb::ReadTransaction,
        to: &redb::WriteTransaction,
    ) -> Result<(), StoreError>;
}

impl<K: redb::Key + 'static, V: redb::Value + 'static> Table for TableDefinition<'static, K, V> {
    fn name(&self) -> &str {
        TableHandle::name(self)
    }

    fn create(&self, tx: &redb::WriteTransaction) -> Result<(), StoreError> {
        tx.open_table(*self)?;
        Ok(())
    }

    fn copy(
        &self,
        from: &redb::ReadTransaction,
        to: &redb::WriteTransaction,
    ) -> Result<(), StoreError> {
        let src = match from.open_table(*self) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut dst = to.open_table(*self)?;
        for row in src.iter()? {
            let (k, v) = row?;
            dst.insert(k.value(), v.value())?;
        }
        Ok(())
    }
}

/// The names of [`ALL`].
pub(super) fn names() -> impl Iterator<Item = &'static str> {
    ALL.iter().map(|t| t.name())
}

#[cfg(test)]
mod tests {
    use crate::store::tests::store;
    use crate::testing::{rust_files, shown, src};

    /// The Architecture Invariant "only `store` touches redb", and this file as the one list
    /// of tables: no source outside `src/store/` names redb, and no file but this one defines
    /// a table (so `ALL`, which `Store::open` creates and a snapshot copies, cannot miss one).
    #[test]
    fn only_the_store_names_redb_and_only_this_file_defines_tables() {
        let files = rust_files(&src());
        assert!(files.len() > 20, "found {} sources", files.len());
        let store = src().join("store");
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read");
            let shown = shown(&f);
            if !f.starts_with(&store) {
                assert!(
                    !text.contains("redb::") && !text.contains("use redb"),
                    "{shown} uses redb; only src/store/ may"
                );
            }
            if !f.ends_with("store/tables.rs") {
                assert!(
                    !text.contains("TableDefinition::new"),
                    "{shown} defines a table; every table belongs in src/store/tables.rs"
                );
            }
        }
    }

    /// A redb error keeps its source: the caller (and `{:#}`) sees redb's own error, typed.
    #[test]
    fn a_redb_error_keeps_its_source() {
        let (_dir, s) = store();
        let tx = s.db.begin_read().expect("read");
        let wrong: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("meta_v1");
        let e = crate::store::StoreError::from(tx.open_table(wrong).expect_err("types differ"));
        assert!(e.to_string().starts_with("database: "), "{e}");
        let source = std::error::Error::source(&e).expect("a source");
        assert!(
            matches!(
                source.downcast_ref::<redb::Error>(),
                Some(redb::Error::TableTypeMismatch { .. })
            ),
            "{source:?}"
        );
    }

    #[test]
    fn every_table_is_listed_once() {
        let mut names: Vec<&str> = super::names().collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a table is listed twice");
        assert!(names.iter().all(|n| n.ends_with("_v1")), "{names:?}");
        // Each definition above the tests is in ALL.
        let text = include_str!("tables.rs");
        let defs = text.split("#[cfg(test)]").next().unwrap_or(text);
        let defined = defs.matches("TableDefinition::new(\"").count();
        assert_eq!(defined, count, "a table defined here is missing from ALL");
        for name in &names {
            assert!(defs.contains(&format!("TableDefinition::new(\"{name}\")")));
        }
    }
}
