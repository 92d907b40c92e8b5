//! In-memory caches (moka), every one weighed in bytes and bounded by a share of one budget
//! (`cache_bytes`, the config file's `cache_mib`):
//!
//! - debs by the content hash of their inputs (shared by every host that sees the package);
//! - archives (indexes + signatures) by the content hash of their inputs, so an unchanged view
//!   keeps its exact InRelease bytes;
//! - the current archive of a host at a model generation, so a warm request touches no database;
//! - recently served index and pool files per host, so a client holding an older InRelease can
//!   still fetch what it lists (apt's by-hash);
//! - the token hash of each *known* host, and a small negative cache of unknown host names,
//!   keyed by the name's sha256: a name nobody has enrolled costs a fixed few bytes, however
//!   long, and unknown names never evict known hosts' tokens.
//!
//! A weight counts the key and the value's heap bytes plus [`ENTRY_OVERHEAD`], moka's own
//! bookkeeping, so the budget bounds what the process holds (an archive shared by several
//! caches is counted in each).

#![warn(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use crate::repo::{Archive, Artifact, DebArtifact};

/// A host's archive at one generation, and the different one it replaced: a client holding
/// the older InRelease can still fetch what it lists.
#[derive(Clone)]
pub struct HostEntry {
    /// The archive of the host's current view.
    pub archive: Arc<Archive>,
    /// The last different archive served before it, if any.
    pub previous: Option<Arc<Archive>>,
}

impl HostEntry {
    fn weight(&self) -> usize {
        self.archive.weight() + self.previous.as_ref().map_or(0, |a| a.weight())
    }
}

/// What a host's credentials are checked against, valid at one model generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenEntry {
    /// The model generation the hashes were read at; at any other the entry is stale.
    pub generation: u64,
    /// sha256 of the host's token.
    pub hash: [u8; 32],
    /// sha256 of its previous token, during a token rotation.
    pub previous: Option<[u8; 32]>,
}

/// Bytes an entry costs besides its key's heap bytes and its value: moka's hash table slot,
/// entry and deque nodes, and the key's own struct. 100,000 entries in `unknown` and in
/// `tokens` cost about 370 and 440 bytes each (`cargo bench --bench
/// cache_entries` re-measures it).
pub const ENTRY_OVERHEAD: usize = 352;

/// Each cache's share of `cache_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// Bytes for [`ArtifactCache::debs`].
    pub debs: u64,
    /// Bytes for [`ArtifactCache::archives`].
    pub archives: u64,
    /// Bytes for [`ArtifactCache::hosts`].
    pub hosts: u64,
    /// Bytes for [`ArtifactCache::latest`].
    pub latest: u64,
    /// Bytes for [`ArtifactCache::recent`].
    pub recent: u64,
    /// Bytes for [`ArtifactCache::tokens`].
    pub tokens: u64,
    /// Bytes for [`ArtifactCache::unknown`].
    pub unknown: u64,
}

impl Budgets {
    /// Tokens get 1/8 (one entry of about 460 bytes per known host: 36,000 hosts at the
    /// default 128 MiB; a host past that costs a database read per request, no more), unknown
    /// names 1/256 (about 1,300 names at the default), and the rendered artifacts the rest, debs
    /// twice the share of the others. No share is below 1 MiB (64 KiB for unknown names).
    pub fn split(bytes: u64) -> Budgets {
        let tokens = (bytes / 8).max(1 << 20);
        let unknown = (bytes / 256).max(64 << 10);
        let part = (bytes.saturating_sub(tokens + unknown) / 6).max(1 << 20);
        Budgets {
            debs: part * 2,
            archives: part,
            hosts: part,
            latest: part,
            recent: part,
            tokens,
            unknown,
        }
    }
}

/// Every cache umcd serves nodes from, each bounded by its share of one byte budget.
pub struct ArtifactCache {
    /// Content hash of a package's inputs (`repo::package_key`) -> its built deb, shared by
    /// every host that sees the package.
    pub debs: Cache<[u8; 32], Arc<DebArtifact>>,
    /// Content hash of a view's inputs (`repo::archive_key`) -> its signed archive, so an
    /// unchanged view keeps its exact InRelease bytes.
    pub archives: Cache<[u8; 32], Arc<Archive>>,
    /// Known host -> its token hash at a generation. Only hosts found in the model are kept,
    /// one entry each (a newer generation replaces the entry), so its size is bounded by the
    /// fleet, not by what clients send.
    pub tokens: Cache<String, TokenEntry>,
    /// sha256(host name) -> the generation at which no such host existed.
    pub unknown: Cache<[u8; 32], u64>,
    /// (host, model generation) -> its archive then: a warm request reads no database.
    pub hosts: Cache<(String, u64), HostEntry>,
    /// host -> its newest archive and the one before (see [`HostEntry`]).
    pub latest: Cache<String, HostEntry>,
    /// (host, `by-hash/<sha256>` or pool path) -> a file a recently loaded archive listed,
    /// kept up to six hours, so a client holding an older InRelease still fetches what it
    /// lists.
    pub recent: Cache<(String, String), Artifact>,
    /// Each cache's share of the budget, as [`Budgets::split`] gave it.
    pub budgets: Budgets,
}

/// One cache's numbers for `/metrics`.
pub struct CacheStats {
    /// The cache's label in `/metrics` (`debs`, `tokens`, …).
    pub name: &'static str,
    /// The weight it holds now, in bytes.
    pub bytes: u64,
    /// How many entries it holds now.
    pub entries: u64,
    /// The most bytes it may hold.
    pub budget: u64,
}

fn weight(n: usize) -> u32 {
    u32::try_from(n.saturating_add(ENTRY_OVERHEAD)).unwrap_or(u32::MAX)
}

impl ArtifactCache {
    /// Empty caches sharing `bytes` as [`Budgets::split`] divides it.
    pub fn new(bytes: u64) -> ArtifactCache {
        let b = Budgets::split(bytes);
        ArtifactCache {
            debs: Cache::builder()
                .max_capacity(b.debs)
                .weigher(|_, d: &Arc<DebArtifact>| weight(d.artifact.len() + d.control.len()))
                .build(),
            archives: Cache::builder()
                .max_capacity(b.archives)
                .weigher(|_, a: &Arc<Archive>| weight(a.weight()))
                .build(),
            tokens: Cache::builder()
                .max_capacity(b.tokens)
                .weigher(|k: &String, v| weight(k.len() + std::mem::size_of_val(v)))
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            unknown: Cache::builder()
                .max_capacity(b.unknown)
                .weigher(|k: &[u8; 32], v| weight(k.len() + std::mem::size_of_val(v)))
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            // An entry keeps its archives alive, so a large fleet must not hold archives
            // outside the byte budget.
            hosts: Cache::builder()
                .max_capacity(b.hosts)
                .weigher(|k: &(String, u64), e: &HostEntry| weight(k.0.len() + e.weight()))
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            latest: Cache::builder()
                .max_capacity(b.latest)
                .weigher(|k: &String, e: &HostEntry| weight(k.len() + e.weight()))
                .build(),
            recent: Cache::builder()
                .max_capacity(b.recent)
                .weigher(|k: &(String, String), a: &Artifact| {
                    weight(k.0.len() + k.1.len() + a.len())
                })
                .time_to_live(Duration::from_secs(6 * 3600))
                .build(),
            budgets: b,
        }
    }

    /// Every cache's approximate size (moka updates sizes lazily) and budget.
    pub fn stats(&self) -> [CacheStats; 7] {
        let b = &self.budgets;
        let s = |name, bytes, entries, budget| CacheStats {
            name,
            bytes,
            entries,
            budget,
        };
        [
            s(
                "debs",
                self.debs.weighted_size(),
                self.debs.entry_count(),
                b.debs,
            ),
            s(
                "archives",
                self.archives.weighted_size(),
                self.archives.entry_count(),
                b.archives,
            ),
            s(
                "tokens",
                self.tokens.weighted_size(),
                self.tokens.entry_count(),
                b.tokens,
            ),
            s(
                "unknown",
                self.unknown.weighted_size(),
                self.unknown.entry_count(),
                b.unknown,
            ),
            s(
                "hosts",
                self.hosts.weighted_size(),
                self.hosts.entry_count(),
                b.hosts,
            ),
            s(
                "latest",
                self.latest.weighted_size(),
                self.latest.entry_count(),
                b.latest,
            ),
            s(
                "recent",
                self.recent.weighted_size(),
                self.recent.entry_count(),
                b.recent,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_add_up_and_have_floors() {
        let b = Budgets::split(128 << 20);
        let sum = b.debs + b.archives + b.hosts + b.latest + b.recent + b.tokens + b.unknown;
        assert!(sum <= 128 << 20, "{b:?}");
        assert!(sum > 127 << 20, "{b:?}");
        assert_eq!(b.tokens, 16 << 20);
        let tiny = Budgets::split(0);
        assert_eq!(tiny.tokens, 1 << 20);
        assert_eq!(tiny.unknown, 64 << 10);
        assert_eq!(tiny.archives, 1 << 20);
    }

    #[test]
    fn token_cache_stays_within_its_budget() {
        // Names as long as a host name may be: the weigher must count them.
        let c = ArtifactCache::new(8 << 20);
        for i in 0..20_000u32 {
            let host = format!("{i:0>250}");
            c.tokens.insert(
                host,
                TokenEntry {
                    generation: 1,
                    hash: [0; 32],
                    previous: None,
                },
            );
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            c.unknown.insert(key, 1);
        }
        c.tokens.run_pending_tasks();
        c.unknown.run_pending_tasks();
        assert!(c.tokens.weighted_size() <= c.budgets.tokens);
        assert!(c.unknown.weighted_size() <= c.budgets.unknown);
        assert!(c.tokens.entry_count() < 20_000);
    }
}
