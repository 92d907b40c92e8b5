//! The model at the newest generation this process has read, shared by every reader: decoding
//! 10,000 nodes once per generation, not once per page view.

use std::sync::{Arc, Mutex};

use crate::model::Model;
use crate::store::{Store, StoreError};

#[derive(Default)]
pub(super) struct ModelCache {
    slot: Mutex<Option<(u64, Arc<Model>)>>,
    /// One reader loads a new generation; the others wait and share it.
    load: Mutex<()>,
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
        let (g, m) = store.model()?;
        let m = Arc::new(m);
        if let Ok(mut slot) = self.slot.lock()
            && slot.as_ref().is_none_or(|(old, _)| *old <= g)
        {
            *slot = Some((g, m.clone()));
        }
        Ok(m)
    }

    fn at_least(&self, want: u64) -> Option<Arc<Model>> {
        let slot = self.slot.lock().ok()?;
        let (generation, m) = slot.as_ref()?;
        (*generation >= want).then(|| m.clone())
    }
}
