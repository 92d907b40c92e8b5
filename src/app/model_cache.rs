//! The model at the newest generation this process has read, shared by every reader: decoding
//! 10,000 nodes once per generation, not once per page view.

use std::sync::{Arc, Mutex};

use crate::model::Model;
use crate::store::{Store, StoreError};

#[derive(Default)]
pub(super) struct ModelCache {
    slot: Mutex<Slot>,
    /// One reader loads a new generation; the others wait and share it.
    load: Mutex<()>,
}

#[derive(Default)]
struct Slot {
    /// Moves at each [`ModelCache::forget`]: a model read before it is not kept.
    epoch: u64,
    model: Option<(u64, Arc<Model>)>,
}

impl ModelCache {
    /// The model at generation `want` or newer, read from `store` when this cache holds an
    /// older one.
    pub(super) fn get(&self, want: u64, store: &Store) -> Result<Arc<Model>, StoreError> {
        if let Some(m) = self.at_least(want) {
            return Ok(m);
        }
        let _one = self.load.lock();
        if let Some(m) = self.at_least(want) {
            return Ok(m);
        }
        let epoch = self.slot.lock().map(|s| s.epoch).unwrap_or(0);
        let (g, m) = store.model()?;
        let m = Arc::new(m);
        if let Ok(mut slot) = self.slot.lock()
            && slot.epoch == epoch
            && slot.model.as_ref().is_none_or(|(old, _)| *old <= g)
        {
            slot.model = Some((g, m.clone()));
        }
        Ok(m)
    }

    /// Drops the cached model after a write that changed it without a generation (a report
    /// ending a token rotation): the next reader reads the store again. Call it after that
    /// write committed; a read that began before is not kept.
    pub(super) fn forget(&self) {
        if let Ok(mut slot) = self.slot.lock() {
            slot.epoch += 1;
            slot.model = None;
        }
    }

    fn at_least(&self, want: u64) -> Option<Arc<Model>> {
        let slot = self.slot.lock().ok()?;
        let (generation, m) = slot.model.as_ref()?;
        (*generation >= want).then(|| m.clone())
    }
}
