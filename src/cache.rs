//! In-memory artifact caches (moka), bounded by bytes.
//!
//! - debs by the content hash of their inputs (shared by every host that sees the package);
//! - archives (indexes + signatures) by the content hash of their inputs, so an unchanged view
//!   keeps its exact InRelease bytes;
//! - the current archive of a host at a model generation, so a warm request touches no database;
//! - recently served index and pool files per host, so a client holding an older InRelease can
//!   still fetch what it lists (apt's by-hash).

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use crate::repo::{Archive, Artifact, DebArtifact};

/// A host's archive at one generation, and the different one it replaced: a client holding
/// the older InRelease can still fetch what it lists.
#[derive(Clone)]
pub struct HostEntry {
    pub archive: Arc<Archive>,
    pub previous: Option<Arc<Archive>>,
}

impl HostEntry {
    fn weight(&self) -> usize {
        self.archive.weight() + self.previous.as_ref().map_or(0, |a| a.weight()) + 64
    }
}

pub struct ArtifactCache {
    pub debs: Cache<[u8; 32], Arc<DebArtifact>>,
    pub archives: Cache<[u8; 32], Arc<Archive>>,
    /// (host, generation) -> the host's sha256(token), or None for no such host: credentials
    /// are checked before anything is rendered, and unknown hosts cost no more than known ones.
    pub tokens: Cache<(String, u64), Option<[u8; 32]>>,
    pub hosts: Cache<(String, u64), HostEntry>,
    /// host -> its newest archive and the one before (see [`HostEntry`]).
    pub latest: Cache<String, HostEntry>,
    pub recent: Cache<(String, String), Artifact>,
}

fn weight(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX).max(1)
}

impl ArtifactCache {
    pub fn new(bytes: u64) -> ArtifactCache {
        // Six parts: debs two; archives, host entries, latest entries and recent files one each.
        let quarter = (bytes / 6).max(1 << 20);
        ArtifactCache {
            debs: Cache::builder()
                .max_capacity(quarter * 2)
                .weigher(|_, d: &Arc<DebArtifact>| weight(d.artifact.len() + d.control.len()))
                .build(),
            archives: Cache::builder()
                .max_capacity(quarter)
                .weigher(|_, a: &Arc<Archive>| weight(a.weight()))
                .build(),
            // Weighed like archives: an entry keeps its archive alive, so a large fleet must not
            // hold archives outside the byte budget.
            tokens: Cache::builder()
                .max_capacity(200_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            hosts: Cache::builder()
                .max_capacity(quarter)
                .weigher(|_, e: &HostEntry| weight(e.weight()))
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            latest: Cache::builder()
                .max_capacity(quarter)
                .weigher(|_, e: &HostEntry| weight(e.weight()))
                .build(),
            recent: Cache::builder()
                .max_capacity(quarter)
                .weigher(|_, a: &Artifact| weight(a.len()))
                .time_to_live(Duration::from_secs(6 * 3600))
                .build(),
        }
    }
}
