//! The keys of `meta_v1`, the store's counters and markers, and typed access to them. Every
//! value is a `u64`; a counter that was never written reads as 0.

use redb::ReadableTable;

use super::StoreError;

/// A key of `meta_v1`. The strings are the on-disk keys: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Meta {
    /// The schema version the database was written with (`store::migrate`).
    Schema,
    /// The newest committed generation of the model.
    Generation,
    /// The newest generation that changed the global variables.
    VarsGeneration,
    /// The newest generation that changed umcd's serving inputs (keys, `umc-node`'s files).
    ServerGeneration,
    /// Every later generation is above it (an import, or a new database beside an old key).
    GenerationFloor,
    /// The generation of the last resync: its Release date never earns a 304.
    ResyncGeneration,
    /// The fingerprint of umcd's serving inputs as last recorded.
    ServingInputs,
    /// Bumped by the health probe's tiny write.
    WriteProbe,
    /// The oldest generation whose model `Store::model_at` can rebuild.
    VersionsSince,
    /// The `VersionsSince` that pruning set last (absent when nothing was ever pruned).
    VersionsPruned,
    /// Edit-log entries pruned since the history tables were last swept.
    HistoryUnswept,
}

impl Meta {
    pub(super) const fn key(self) -> &'static str {
        match self {
            Meta::Schema => "schema",
            Meta::Generation => "generation",
            Meta::VarsGeneration => "vars_generation",
            Meta::ServerGeneration => "server_generation",
            Meta::GenerationFloor => "generation_floor",
            Meta::ResyncGeneration => "resync_generation",
            Meta::ServingInputs => "serving_inputs",
            Meta::WriteProbe => "write_probe",
            Meta::VersionsSince => "versions_since",
            Meta::VersionsPruned => "versions_pruned",
            Meta::HistoryUnswept => "history_unswept",
        }
    }
}

/// Typed reads of an open `meta_v1` (in a read or a write transaction).
pub(super) trait MetaRead {
    /// The value of `key`, `None` when it was never written.
    fn value(&self, key: Meta) -> Result<Option<u64>, StoreError>;

    /// The value of `key`, 0 when it was never written.
    fn counter(&self, key: Meta) -> Result<u64, StoreError> {
        Ok(self.value(key)?.unwrap_or(0))
    }
}

impl<T: ReadableTable<&'static str, u64>> MetaRead for T {
    fn value(&self, key: Meta) -> Result<Option<u64>, StoreError> {
        Ok(self.get(key.key())?.map(|v| v.value()))
    }
}

/// Typed writes of `meta_v1` in a write transaction.
pub(super) trait MetaWrite {
    fn set(&mut self, key: Meta, value: u64) -> Result<(), StoreError>;
}

impl MetaWrite for redb::Table<'_, &'static str, u64> {
    fn set(&mut self, key: Meta, value: u64) -> Result<(), StoreError> {
        self.insert(key.key(), value)?;
        Ok(())
    }
}

/// Raises [`Meta::GenerationFloor`] to `floor` (a lower one changes nothing).
pub(super) fn raise_floor(
    meta: &mut redb::Table<'_, &'static str, u64>,
    floor: u64,
) -> Result<(), StoreError> {
    let old = meta.counter(Meta::GenerationFloor)?;
    meta.set(Meta::GenerationFloor, old.max(floor))
}

#[cfg(test)]
mod tests {
    use super::Meta;

    /// The keys are on disk: a rename would lose every database's counters.
    #[test]
    fn the_keys_are_the_on_disk_strings() {
        let keys = [
            Meta::Schema,
            Meta::Generation,
            Meta::VarsGeneration,
            Meta::ServerGeneration,
            Meta::GenerationFloor,
            Meta::ResyncGeneration,
            Meta::ServingInputs,
            Meta::WriteProbe,
            Meta::VersionsSince,
            Meta::VersionsPruned,
            Meta::HistoryUnswept,
        ]
        .map(Meta::key);
        assert_eq!(
            keys,
            [
                "schema",
                "generation",
                "vars_generation",
                "server_generation",
                "generation_floor",
                "resync_generation",
                "serving_inputs",
                "write_probe",
                "versions_since",
                "versions_pruned",
                "history_unswept",
            ]
        );
    }
}
