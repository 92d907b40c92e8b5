//! What the services count: cache lookups per cache and the time of each cold render. Every
//! record is a relaxed atomic add into a fixed array: no lock, no allocation, no map lookup.
//! `http::metrics` writes these, and its own request counters, as Prometheus text.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

/// The caches whose lookups are counted (see `app::serve`).
#[derive(Debug, Clone, Copy)]
pub enum CacheId {
    /// Built debs, by the hash of their inputs.
    Debs,
    /// Rendered archives, by the hash of their inputs.
    Archives,
    /// Known hosts' token hashes.
    Tokens,
    /// Each host's archive at the current generation.
    Hosts,
    /// The negative cache of unknown host names.
    Unknown,
}

/// The label of each [`CacheId`], in its order.
pub const COUNTED_CACHES: [&str; 5] = ["debs", "archives", "tokens", "hosts", "unknown"];

/// Upper bounds (seconds) of the render buckets: one host's archive, including its cold debs.
const RENDER_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A latency histogram over fixed bucket bounds.
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket, not cumulative; the last slot is +Inf.
    buckets: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// An empty histogram with buckets up to each of `bounds` (seconds, ascending) and +Inf.
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Counts one observation of `d` in its bucket and in the sum.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self.bounds.partition_point(|b| *b < secs);
        self.buckets[i].fetch_add(1, Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }

    /// Each bucket's upper bound (`None` for +Inf) with its own count, not cumulative.
    pub fn buckets(&self) -> impl Iterator<Item = (Option<f64>, u64)> + '_ {
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (self.bounds.get(i).copied(), b.load(Relaxed)))
    }

    /// The sum of every observation, in seconds.
    pub fn sum_secs(&self) -> f64 {
        self.sum_nanos.load(Relaxed) as f64 / 1e9
    }
}

/// The services' counters since this process started, shared by every request.
pub struct Metrics {
    started: SystemTime,
    render: Histogram,
    hits: [AtomicU64; COUNTED_CACHES.len()],
    misses: [AtomicU64; COUNTED_CACHES.len()],
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// All counters at zero, started now.
    pub fn new() -> Metrics {
        Metrics {
            started: SystemTime::now(),
            render: Histogram::new(RENDER_BUCKETS),
            hits: Default::default(),
            misses: Default::default(),
        }
    }

    /// One lookup of `cache`: found, or not (and then built or fetched).
    pub fn cache_lookup(&self, cache: CacheId, hit: bool) {
        let counters = if hit { &self.hits } else { &self.misses };
        counters[cache as usize].fetch_add(1, Relaxed);
    }

    /// One cold render of a host's archive.
    pub fn render(&self, took: Duration) {
        self.render.observe(took);
    }

    /// How long cold renders of host archives took.
    pub fn renders(&self) -> &Histogram {
        &self.render
    }

    /// Hits and misses of the cache labelled `COUNTED_CACHES[i]`.
    pub fn lookups(&self, i: usize) -> (u64, u64) {
        (self.hits[i].load(Relaxed), self.misses[i].load(Relaxed))
    }

    /// When this process started.
    pub fn started(&self) -> SystemTime {
        self.started
    }
}
