//! The HTTP layer: apt routes, the admin API, and the mapping of errors to status codes.
//! `run(listener, state, shutdown)` serves until `shutdown` resolves, so tests bind
//! 127.0.0.1:0 and stop the server cleanly.

mod admin;
mod apt;
mod backup;
mod catalog;
pub mod conditional;
mod error;
mod fleet;
mod keys;
mod metrics;
pub mod server;
mod status;
pub mod ui;
mod users;

pub use admin::{API_ROUTES, ApiRoute, Verb};

use std::future::Future;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::cache::ArtifactCache;
use crate::config::Config;
use crate::sign::SigningKeys;
use crate::store::Store;

pub use error::ApiError;
pub use keys::{KeySet, serving_inputs};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Sign(#[from] crate::sign::SignError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Ui(String),
}

pub struct AppState {
    pub store: Store,
    /// The signing keys and their keyrings, swapped whole by a key change (`keys.rs`).
    keyset: RwLock<keys::KeySets>,
    /// Serializes key changes.
    pub(crate) key_ops: std::sync::Mutex<()>,
    pub cache: ArtifactCache,
    pub config: Config,
    pub(crate) metrics: metrics::Metrics,
    generation: AtomicU64,
    catalog_index: RwLock<Arc<crate::catalog::SearchIndex>>,
    /// Passive signals per host (InRelease fetches, host deb downloads), flushed to the store
    /// by the report writer.
    seen: std::sync::Mutex<std::collections::BTreeMap<String, crate::report::Seen>>,
    /// Reports on their way to the writer, which commits them in batches.
    reports: tokio::sync::mpsc::Sender<status::Job>,
    report_rx: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<status::Job>>>,
    /// The web console's templates, sessions and login limiter.
    pub(crate) ui: ui::Ui,
    /// The model at the newest generation this process has read, shared by readers.
    model: std::sync::Mutex<Option<(u64, Arc<crate::model::Model>)>>,
    /// Fleet status for the console, at most `FLEET_TTL` old and never older than the model.
    fleet: std::sync::Mutex<Option<FleetSnapshot>>,
    fleet_refreshing: std::sync::atomic::AtomicBool,
    fleet_judge: std::sync::Mutex<()>,
    model_load: std::sync::Mutex<()>,
}

/// Every host's status at one moment (for the console's lists).
pub(crate) struct FleetSnapshot {
    pub at: std::time::Instant,
    pub generation: u64,
    pub rows: Arc<Vec<crate::api::HostStatus>>,
}

/// How old the console's fleet status may get before a background refresh: reports arrive
/// all the time, and judging 10,000 of them on every page view would cost more than the page.
const FLEET_TTL: Duration = Duration::from_secs(5);

impl AppState {
    pub fn new(store: Store, keys: SigningKeys, config: Config) -> Result<AppState, StartError> {
        let keyset = RwLock::new(keys::KeySets::new(
            Arc::new(KeySet::new(keys)?),
            store.server_generation()?,
        ));
        let generation = AtomicU64::new(store.generation()?);
        let catalog_index = RwLock::new(Arc::new(catalog::build_index(&store)?));
        let seen = std::sync::Mutex::new(store.load_seen()?);
        let (reports, report_rx) = tokio::sync::mpsc::channel(status::QUEUE);
        Ok(AppState {
            seen,
            reports,
            report_rx: std::sync::Mutex::new(Some(report_rx)),
            catalog_index,
            generation,
            store,
            keyset,
            key_ops: std::sync::Mutex::new(()),
            cache: ArtifactCache::new(config.cache_bytes),
            config,
            metrics: metrics::Metrics::new(),
            ui: ui::Ui::new().map_err(StartError::Ui)?,
            model: std::sync::Mutex::new(None),
            fleet: std::sync::Mutex::new(None),
            fleet_refreshing: std::sync::atomic::AtomicBool::new(false),
            fleet_judge: std::sync::Mutex::new(()),
            model_load: std::sync::Mutex::new(()),
        })
    }

    /// The model as of the newest generation, read from the store once per generation.
    pub(crate) fn model(&self) -> Result<Arc<crate::model::Model>, crate::store::StoreError> {
        let want = self.generation();
        if let Ok(g) = self.model.lock()
            && let Some((gen_, m)) = g.as_ref()
            && *gen_ >= want
        {
            return Ok(m.clone());
        }
        // One reader loads a new generation; the others wait and share it.
        let _one = self.model_load.lock();
        if let Ok(g) = self.model.lock()
            && let Some((gen_, m)) = g.as_ref()
            && *gen_ >= want
        {
            return Ok(m.clone());
        }
        let (g, m) = self.store.model()?;
        let m = Arc::new(m);
        if let Ok(mut slot) = self.model.lock()
            && slot.as_ref().is_none_or(|(old, _)| *old <= g)
        {
            *slot = Some((g, m.clone()));
        }
        Ok(m)
    }

    /// Every host's status. Judged afresh when the model changed (whoever just edited sees
    /// the effect); otherwise reused, and once older than `FLEET_TTL` refreshed in the
    /// background while readers keep getting the previous snapshot, so no page view waits
    /// for 10,000 reports to be judged.
    pub(crate) fn fleet_status(
        self: &Arc<Self>,
    ) -> Result<Arc<Vec<crate::api::HostStatus>>, crate::store::StoreError> {
        let want = self.generation();
        if let Ok(g) = self.fleet.lock()
            && let Some(f) = g.as_ref()
            && f.generation >= want
        {
            if f.at.elapsed() >= FLEET_TTL && !self.fleet_refreshing.swap(true, Ordering::AcqRel) {
                /// Clears the flag however the refresh ends (a panic included), or no
                /// snapshot would ever be refreshed again.
                struct Done(Arc<AppState>);
                impl Drop for Done {
                    fn drop(&mut self) {
                        self.0.fleet_refreshing.store(false, Ordering::Release);
                    }
                }
                let done = Done(self.clone());
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = done.0.judge_fleet() {
                        tracing::warn!("fleet status: {e}");
                    }
                });
            }
            return Ok(f.rows.clone());
        }
        // One judge after an edit; whoever waited for it takes its result.
        let _one = self.fleet_judge.lock();
        if let Ok(g) = self.fleet.lock()
            && let Some(f) = g.as_ref()
            && f.generation >= want
        {
            return Ok(f.rows.clone());
        }
        self.judge_fleet()
    }

    fn judge_fleet(&self) -> Result<Arc<Vec<crate::api::HostStatus>>, crate::store::StoreError> {
        let generation = self.generation();
        let rows = Arc::new(status::fleet(self, now())?);
        if let Ok(mut slot) = self.fleet.lock()
            && slot.as_ref().is_none_or(|old| old.generation <= generation)
        {
            *slot = Some(FleetSnapshot {
                at: std::time::Instant::now(),
                generation,
                rows: rows.clone(),
            });
        }
        Ok(rows)
    }

    /// Records a passive signal of `host`.
    pub(crate) fn saw(&self, host: &str, f: impl FnOnce(&mut crate::report::Seen)) {
        if let Ok(mut seen) = self.seen.lock() {
            f(seen.entry(host.to_string()).or_default());
        }
    }

    pub(crate) fn seen_snapshot(&self) -> std::collections::BTreeMap<String, crate::report::Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// What umcd contributes to every host's `umc-node` package, with the key set `keys`
    /// (take it once per render from [`AppState::keys`], so one view signs and ships the
    /// same keys).
    pub fn serving<'a>(&self, keys: &'a KeySet) -> crate::nodefiles::Serving<'a> {
        keys.serving(&self.config)
    }

    /// The current signing keys and keyrings.
    pub fn keys(&self) -> Arc<KeySet> {
        self.with_keysets(|k| k.current.clone())
    }

    /// The key set a view whose serving inputs are at `server_generation` is rendered with,
    /// so that a `umc-node` version always ships the same keyring (see `keys.rs`).
    pub fn keys_for(&self, server_generation: u64) -> Arc<KeySet> {
        self.with_keysets(|k| k.select(server_generation))
    }

    fn with_keysets<T>(&self, f: impl FnOnce(&keys::KeySets) -> T) -> T {
        match self.keyset.read() {
            Ok(g) => f(&g),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    pub(crate) fn update_keysets(&self, f: impl FnOnce(&mut keys::KeySets)) {
        match self.keyset.write() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The newest committed generation (readers use it to find cached views).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn set_generation(&self, g: u64) {
        self.generation.fetch_max(g, Ordering::AcqRel);
    }

    /// The search index over every catalog (swapped whole after an import or removal).
    pub(crate) fn catalog_index(&self) -> Arc<crate::catalog::SearchIndex> {
        match self.catalog_index.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn set_catalog_index(&self, index: crate::catalog::SearchIndex) {
        let index = Arc::new(index);
        match self.catalog_index.write() {
            Ok(mut g) => *g = index,
            Err(poisoned) => *poisoned.into_inner() = index,
        }
    }
}

/// Wall-clock seconds: read here, in the HTTP layer, and passed down as data.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.config.max_body;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::handler))
        .route("/umc-archive-keyring.gpg", get(keyring_gpg))
        .route("/umc-archive-keyring.asc", get(keyring_asc))
        .merge(apt::routes())
        .route("/", get(|| async { axum::response::Redirect::to("/ui/") }))
        .route(
            "/ui",
            get(|| async { axum::response::Redirect::to("/ui/") }),
        )
        .merge(ui::routes(state.clone()))
        .nest(
            "/api/v1",
            admin::routes(state.clone()).layer(DefaultBodyLimit::max(max_body)),
        )
        // Outermost: counts every request, unmatched ones included.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// `GET /healthz`: `ok`, or 503 and why while the database cannot be written (an I/O error,
/// a full disk) or read (a panic, corruption); see `store::db`.
async fn healthz(State(s): State<Arc<AppState>>) -> Response {
    let health = match s.store.health() {
        crate::store::Health::Ok => crate::store::Health::Ok,
        // Degraded: probe (a write, at most every few seconds) whether it still is.
        _ => {
            let st = s.clone();
            tokio::task::spawn_blocking(move || st.store.probe_health())
                .await
                .unwrap_or_else(|e| crate::store::Health::Degraded(format!("health probe: {e}")))
        }
    };
    match health {
        crate::store::Health::Ok => (StatusCode::OK, "ok\n").into_response(),
        crate::store::Health::Degraded(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("degraded: {why}\n"),
        )
            .into_response(),
    }
}

fn keyring(
    method: &Method,
    headers: &HeaderMap,
    body: &bytes::Bytes,
    ct: &'static str,
) -> Response {
    use sha2::Digest;
    conditional::respond(
        method,
        headers,
        conditional::Resource {
            sha256: hex::encode(sha2::Sha256::digest(body)),
            body: body.clone(),
            last_modified: None,
            ambiguous_date: false,
            immutable: false,
            content_type: ct,
            cache_control: conditional::NO_CACHE,
        },
    )
    .into_response()
}

async fn keyring_gpg(
    State(s): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    keyring(
        &method,
        &headers,
        &s.keys().keyring_gpg,
        "application/pgp-keys",
    )
}

async fn keyring_asc(
    State(s): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    keyring(
        &method,
        &headers,
        &s.keys().keyring_asc,
        "application/pgp-keys",
    )
}

pub use server::{MAX_CONNECTIONS, open_files_wanted, raise_open_file_limit};

/// Serves until `shutdown` resolves, then finishes in-flight requests (bounded) and flushes
/// what the report writer holds. The listener and its connection limits live in `server`.
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let writer = state
        .report_rx
        .lock()
        .ok()
        .and_then(|mut r| r.take())
        .map(|rx| tokio::spawn(status::writer(state.clone(), rx)));
    let app = router(state.clone());
    server::serve(
        listener,
        app,
        server::Limits::from_config(&state.config),
        shutdown,
    )
    .await;
    if let Some(w) = writer {
        w.abort();
    }
    status::flush_seen(&state).await;
    Ok(())
}
