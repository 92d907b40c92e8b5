//! The application layer: umcd's services, between the HTTP layer and the store. IO and the
//! clock are allowed here; HTTP is not (no axum type appears in this module tree), so every
//! service can be driven from a unit test with a temporary store.
//!
//! [`App`] owns the store, the configuration, the caches, the key sets and the fleet status.
//! The store is private to this module tree: `http` reads and changes everything through
//! `App`'s services, so a handler cannot bypass one (the compiler checks it). The store is
//! synchronous: async callers reach the services through [`blocking`], the one place umcd
//! leaves tokio's async workers (also for renders and password hashes). Services answer with
//! [`AppError`], which keeps the typed error it came from and says what kind of failure it is.

#![warn(missing_docs)]

pub mod auth;
pub mod backup;
pub mod catalog;
pub mod edit;
mod error;
mod history;
pub mod keys;
pub mod metrics;
mod model_cache;
pub mod reads;
pub mod serve;
pub mod status;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cache::ArtifactCache;
use crate::catalog::SearchIndex;
use crate::config::Config;
use crate::model::Model;
use crate::sign::SigningKeys;
use crate::store::{Health, Store, StoreError};

pub use error::{AppError, ErrorKind};
pub use keys::{KeySet, KeySets, serving_inputs};
pub use metrics::Metrics;
pub use reads::{VAR_VALUES, shown_vars};

/// umcd's services and what they share: built once at start, shared by every request.
pub struct App {
    /// Private to `app`: every reader and writer outside it goes through a service.
    store: Store,
    /// The configuration umcd started with (read-only: a change needs a restart).
    pub config: Config,
    /// The rendered debs, archives and host tokens, so a warm request reads no database.
    pub cache: ArtifactCache,
    /// The counters and histograms `GET /metrics` shows.
    pub metrics: Metrics,
    /// The newest committed generation this process knows of.
    generation: AtomicU64,
    models: model_cache::ModelCache,
    keys: keys::Keys,
    catalog_index: RwLock<Arc<SearchIndex>>,
    status: status::Status,
}

impl App {
    /// Builds the services on an open store. It reads the generation, the serving key set,
    /// the catalog index and each host's last apt traffic once, so requests find them ready.
    pub fn new(store: Store, keys: SigningKeys, config: Config) -> Result<App, AppError> {
        let keys = keys::Keys::new(KeySet::new(keys)?, store.server_generation()?);
        let generation = AtomicU64::new(store.generation()?);
        let catalog_index = RwLock::new(Arc::new(SearchIndex::new(store.catalog_rows()?)));
        let status = status::Status::new(store.load_seen()?);
        Ok(App {
            cache: ArtifactCache::new(config.cache_bytes),
            metrics: Metrics::new(),
            generation,
            models: model_cache::ModelCache::default(),
            keys,
            catalog_index,
            status,
            store,
            config,
        })
    }

    /// The newest committed generation (readers use it to find cached views).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Publishes generation `g` once its commit is durable.
    pub fn set_generation(&self, g: u64) {
        self.generation.fetch_max(g, Ordering::AcqRel);
    }

    /// The model as of the newest generation, read from the store once per generation.
    pub fn model(&self) -> Result<Arc<Model>, StoreError> {
        self.models.get(self.generation(), &self.store)
    }

    /// Whether the database can be used: `Ok`, or why not. While degraded it probes (a write,
    /// at most every few seconds) whether it still is.
    pub async fn health(self: &Arc<Self>) -> Health {
        match self.store.health() {
            Health::Ok => Health::Ok,
            _ => {
                let app = self.clone();
                blocking(move || Ok::<_, AppError>(app.store.probe_health()))
                    .await
                    .unwrap_or_else(|e| Health::Degraded(format!("health probe: {e}")))
            }
        }
    }
}

/// Runs `f` on tokio's blocking pool and waits for its answer: the one place umcd leaves the
/// async workers, for the synchronous store, renders and password hashes. A panic in `f`
/// comes back as an internal error.
pub async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<AppError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(E::from(AppError::internal(format!("blocking task: {e}")))),
    }
}

/// Runs `f` on tokio's blocking pool without waiting for it (a refresh nobody waits for, a
/// writer feeding a stream).
pub fn background(f: impl FnOnce() + Send + 'static) {
    drop(tokio::task::spawn_blocking(f));
}

/// Wall-clock seconds: read in the application and HTTP layers, and passed down as data.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use super::{App, now};
    use crate::api::Op;
    use crate::config::Config;
    use crate::sign::SigningKeys;
    use crate::store::Store;

    /// An `App` over a new store in a temporary data directory (kept while the `TempDir` lives).
    pub(crate) fn app() -> (tempfile::TempDir, Arc<App>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("umc.redb")).expect("store");
        let keys = SigningKeys::generate("umc test <umc@example.invalid>").expect("keys");
        keys.save(dir.path()).expect("save key");
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let app = Arc::new(App::new(store, keys, config).expect("app"));
        (dir, app)
    }

    /// Commits `ops` as user `admin` and publishes the generation.
    pub(crate) fn edit(app: &App, ops: Vec<Op>) -> u64 {
        let e = app
            .store
            .edit("admin", &ops, now(), crate::store::EditOptions::default())
            .expect("edit");
        app.set_generation(e.generation);
        e.generation
    }

    pub(crate) fn node_add(host: &str) -> Op {
        Op::NodeAdd {
            host: host.into(),
            vars: Default::default(),
            ssh: None,
        }
    }
}
