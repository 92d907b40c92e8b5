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

#[derive(Clone)]
pub struct HostEntry {
    pub token_hash: [u8; 32],
    pub archive: Arc<Archive>,
}

pub struct ArtifactCache {
    pub debs: Cache<[u8; 32], Arc<DebArtifact>>,
    pub archives: Cache<[u8; 32], Arc<Archive>>,
    pub hosts: Cache<(String, u64), HostEntry>,
    pub recent: Cache<(String, String), Artifact>,
}

fn weight(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX).max(1)
}

impl ArtifactCache {
    pub fn new(bytes: u64) -> ArtifactCache {
        // Five parts: debs two, archives, host entries and recent files one each.
        let quarter = (bytes / 5).max(1 << 20);
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
            hosts: Cache::builder()
                .max_capacity(quarter)
                .weigher(|_, e: &HostEntry| weight(e.archive.weight() + 64))
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            recent: Cache::builder()
                .max_capacity(quarter)
                .weigher(|_, a: &Artifact| weight(a.len()))
                .time_to_live(Duration::from_secs(6 * 3600))
                .build(),
        }
    }
}
