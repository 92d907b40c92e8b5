//! Measures what one entry of the token and unknown-name caches costs in resident memory,
//! the number behind `cache::ENTRY_OVERHEAD` and the caches' byte weighers:
//! `cargo bench --bench cache_entries`. A measurement, not a test: RSS moves with whatever
//! else the process does, so it runs alone here rather than among parallel tests.

use umc::cache::{ArtifactCache, ENTRY_OVERHEAD, TokenEntry};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let c = ArtifactCache::new(16 << 30);
    let n = 100_000u64;
    let before = rss_kib();
    for i in 0..n {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&i.to_le_bytes());
        c.unknown.insert(key, 1);
    }
    c.unknown.run_pending_tasks();
    let per = rss_kib().saturating_sub(before) * 1024 / n;
    println!(
        "unknown: {per} bytes per entry, of which key and value 40 (weigher overhead {ENTRY_OVERHEAD})"
    );
    let before = rss_kib();
    for i in 0..n {
        let entry = TokenEntry {
            generation: 1,
            hash: [0; 32],
            previous: None,
        };
        c.tokens.insert(format!("host{i:08}.example.com"), entry);
    }
    c.tokens.run_pending_tasks();
    let per = rss_kib().saturating_sub(before) * 1024 / n;
    println!(
        "tokens: {per} bytes per entry, of which name 24 and value 80 (weigher overhead {ENTRY_OVERHEAD})"
    );
}
