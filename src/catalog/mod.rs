//! The upstream package catalog: what an official repository ships (names, versions, short
//! descriptions, Provides), imported from its signed `InRelease` and `Packages` index and used
//! to check package names when a task is edited.
//!
//! - [`packages`]: the streaming `Packages` parser and the xz/gz/plain decoders;
//! - [`release`]: `InRelease` verification (sequoia) and the `Release` checksum list;
//! - [`fetch`]: the HTTP download and the verified import (the only IO here);
//! - this file: the pure pieces: relation terms, version checks, suggestions, the search index.
//!
//! Storage lives in `store`; this module never touches redb.

pub mod fetch;
pub mod packages;
pub mod release;

use std::str::FromStr;

use debian_control::lossy::Relations;
use debian_control::relations::VersionConstraint;
use debversion::Version;

/// The longest line a Packages file may have.
pub const MAX_LINE: usize = 1 << 20;

/// Keyrings tried, in order, when an import gives none.
pub const DEFAULT_KEYRINGS: &[&str] = &[
    "/usr/share/keyrings/debian-archive-keyring.gpg",
    "/usr/share/keyrings/ubuntu-archive-keyring.gpg",
];

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("invalid catalog name '{0}': use [a-z0-9][a-z0-9+.-]*")]
    BadName(String),
    #[error("{0}")]
    Usage(String),
    #[error("cannot fetch {url}: {detail}")]
    Fetch { url: String, detail: String },
    #[error(
        "refusing to fetch {url}: {host} is {} {kind} address ({addr}); pass --allow-private to import from it",
        if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
    )]
    Private {
        url: String,
        host: String,
        addr: std::net::IpAddr,
        kind: &'static str,
    },
    #[error("{url}: https is not supported (umcd has no TLS client); use an http:// mirror")]
    Https { url: String },
    #[error("InRelease: {0}")]
    BadSignature(String),
    #[error("keyring: {0}")]
    Keyring(String),
    #[error("InRelease: {0}")]
    BadRelease(String),
    #[error("Release lists no Packages index for {0} (looked for .xz, .gz and uncompressed)")]
    NoIndex(String),
    #[error(
        "hash mismatch for {path}: Release says sha256 {expected} ({size} bytes), got {got} ({got_size} bytes)"
    )]
    HashMismatch {
        path: String,
        expected: String,
        size: u64,
        got: String,
        got_size: u64,
    },
    #[error("{what}: cannot decompress: {detail}")]
    Decompress { what: String, detail: String },
    #[error("{what}: line {line}: longer than {MAX_LINE} bytes")]
    LineTooLong { what: String, line: u64 },
    #[error("{what}: line {line}: not a Packages file ({why})")]
    NotPackages {
        what: String,
        line: u64,
        why: String,
    },
    #[error("{what}: stanza ending at line {line}: missing field '{field}'")]
    MissingField {
        what: String,
        line: u64,
        field: &'static str,
    },
    #[error("{what}: no package stanzas: not a Packages file")]
    Empty { what: String },
}

/// One package as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub section: String,
    pub priority: String,
    /// The first line of `Description`.
    pub description: String,
    /// `Provides` entries, each `name` or `name (= version)`.
    pub provides: Vec<String>,
}

/// Catalog names follow task names: `[a-z0-9][a-z0-9+.-]*`, at most 64 characters.
pub fn validate_name(name: &str) -> Result<(), CatalogError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CatalogError::BadName(name.to_string()))
    }
}

/// One package name of a relation, with its version constraint.
#[derive(Debug, Clone)]
pub struct Term {
    pub name: String,
    pub constraint: Option<(VersionConstraint, Version)>,
}

impl Term {
    pub fn constraint_text(&self) -> String {
        match &self.constraint {
            Some((c, v)) => format!("{} ({} {v})", self.name, op_str(c)),
            None => self.name.clone(),
        }
    }
}

fn op_str(c: &VersionConstraint) -> &'static str {
    match c {
        VersionConstraint::LessThan => "<<",
        VersionConstraint::LessThanEqual => "<=",
        VersionConstraint::Equal => "=",
        VersionConstraint::GreaterThan => ">>",
        VersionConstraint::GreaterThanEqual => ">=",
    }
}

/// The package names (alternatives included) and constraints of one relation entry; an
/// architecture qualifier (`:any`) is dropped. Unparsable input gives no terms: the model has
/// already validated what reaches here.
pub fn relation_terms(relation: &str) -> Vec<Term> {
    let Ok(parsed) = Relations::from_str(relation) else {
        return Vec::new();
    };
    parsed
        .0
        .into_iter()
        .flatten()
        .map(|r| Term {
            name: r.name,
            constraint: r.version,
        })
        .collect()
}

/// Whether `version` (a catalog version string) satisfies `constraint`.
pub fn satisfies(version: &str, constraint: &(VersionConstraint, Version)) -> bool {
    let Ok(v) = Version::from_str(version) else {
        return false;
    };
    let (c, want) = constraint;
    match c {
        VersionConstraint::LessThan => &v < want,
        VersionConstraint::LessThanEqual => &v <= want,
        VersionConstraint::Equal => &v == want,
        VersionConstraint::GreaterThan => &v > want,
        VersionConstraint::GreaterThanEqual => &v >= want,
    }
}

/// Splits a `Provides` entry into the virtual name and its version, if any (`foo (= 1.0)`).
pub fn provides_entry(entry: &str) -> (String, Option<String>) {
    let entry = entry.trim();
    match entry.split_once('(') {
        Some((name, rest)) => {
            let v = rest
                .trim_end_matches(')')
                .trim()
                .trim_start_matches('=')
                .trim()
                .to_string();
            (name.trim().to_string(), Some(v))
        }
        None => (entry.to_string(), None),
    }
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions), giving up
/// (returning `max + 1`) as soon as the distance must exceed `max`.
pub fn distance(a: &str, b: &str, max: usize) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > max {
        return max + 1;
    }
    let w = b.len() + 1;
    let mut prev2 = vec![0usize; w];
    let mut prev: Vec<usize> = (0..w).collect();
    let mut cur = vec![0usize; w];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..w {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
            row_min = row_min.min(d);
        }
        if row_min > max {
            return max + 1;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// How many suggestions an unknown name gets at most.
pub const SUGGESTIONS: usize = 3;

/// Keeps the closest names to `wanted` seen so far (feed it every known name).
pub struct Suggester {
    wanted: String,
    max: usize,
    best: Vec<(usize, usize, String)>,
}

impl Suggester {
    pub fn new(wanted: &str) -> Suggester {
        Suggester {
            wanted: wanted.to_string(),
            max: (wanted.len() / 3).clamp(1, 3),
            best: Vec::new(),
        }
    }

    pub fn offer(&mut self, name: &str) {
        if name == self.wanted {
            return;
        }
        let limit = match self.best.len() {
            n if n >= SUGGESTIONS => self.best[n - 1].0,
            _ => self.max,
        };
        let d = distance(&self.wanted, name, limit);
        if d > limit || self.best.iter().any(|(_, _, n)| n == name) {
            return;
        }
        // Ties go to the same length (a transposition or a typo), then to name order.
        let skew = name.len().abs_diff(self.wanted.len());
        self.best.push((d, skew, name.to_string()));
        self.best.sort();
        self.best.truncate(SUGGESTIONS);
    }

    pub fn finish(self) -> Vec<String> {
        self.best.into_iter().map(|(_, _, n)| n).collect()
    }
}

/// `unknown package 'ngnix' (did you mean 'nginx'?)`
pub fn unknown_message(name: &str, suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        return format!("unknown package '{name}' (no catalog has it)");
    }
    let list: Vec<String> = suggestions.iter().map(|s| format!("'{s}'")).collect();
    format!(
        "unknown package '{name}' (did you mean {}?)",
        list.join(" or ")
    )
}

/// One searchable package.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub catalog: String,
    pub name: String,
    pub version: String,
    pub description: String,
}

/// An in-memory search index over every catalog, rebuilt after each import or removal.
/// Entries are sorted by (name, catalog). Names and lowercased descriptions are also kept as
/// two newline-joined texts, so a substring search is one linear scan of contiguous memory
/// rather than 60,000 small searches.
#[derive(Debug, Default)]
pub struct SearchIndex {
    entries: Vec<IndexEntry>,
    names: String,
    name_starts: Vec<usize>,
    descriptions: String,
    description_starts: Vec<usize>,
}

/// The entries (by index, ascending, each once) whose segment of `text` contains `term`.
fn matching<'a>(
    text: &'a str,
    starts: &'a [usize],
    term: &'a str,
) -> impl Iterator<Item = usize> + 'a {
    let mut last = usize::MAX;
    text.match_indices(term).filter_map(move |(pos, _)| {
        let i = starts.partition_point(|&s| s <= pos).saturating_sub(1);
        (i != last).then(|| {
            last = i;
            i
        })
    })
}

impl SearchIndex {
    /// From (catalog, name, version, description) rows.
    pub fn new(rows: impl IntoIterator<Item = (String, String, String, String)>) -> SearchIndex {
        let mut entries: Vec<IndexEntry> = rows
            .into_iter()
            .map(|(catalog, name, version, description)| IndexEntry {
                catalog,
                name,
                version,
                description,
            })
            .collect();
        entries.sort_by(|a, b| (&a.name, &a.catalog).cmp(&(&b.name, &b.catalog)));
        let mut idx = SearchIndex {
            name_starts: Vec::with_capacity(entries.len()),
            description_starts: Vec::with_capacity(entries.len()),
            ..SearchIndex::default()
        };
        for e in &entries {
            idx.name_starts.push(idx.names.len());
            idx.names.push_str(&e.name);
            idx.names.push('\n');
            idx.description_starts.push(idx.descriptions.len());
            idx.descriptions
                .push_str(&e.description.to_lowercase().replace('\n', " "));
            idx.descriptions.push('\n');
        }
        idx.entries = entries;
        idx
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Name prefix matches first, then name substring matches, then description matches;
    /// each group in name order; at most `limit`.
    pub fn search(&self, term: &str, limit: usize) -> Vec<&IndexEntry> {
        let term = term.trim().to_lowercase();
        if term.is_empty() || term.contains('\n') || limit == 0 {
            return Vec::new();
        }
        // Prefix matches are one contiguous run of the sorted entries.
        let start = self
            .entries
            .partition_point(|e| e.name.as_str() < term.as_str());
        let mut out: Vec<&IndexEntry> = self.entries[start..]
            .iter()
            .take_while(|e| e.name.starts_with(&term))
            .take(limit)
            .collect();
        if out.len() < limit {
            let more = matching(&self.names, &self.name_starts, &term)
                .map(|i| &self.entries[i])
                .filter(|e| !e.name.starts_with(&term))
                .take(limit - out.len());
            out.extend(more);
        }
        if out.len() < limit {
            let more = matching(&self.descriptions, &self.description_starts, &term)
                .map(|i| &self.entries[i])
                .filter(|e| !e.name.contains(&term))
                .take(limit - out.len());
            out.extend(more);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("ngnix", "nginx", 3), 1);
        assert_eq!(distance("nginx", "nginx", 3), 0);
        assert_eq!(distance("curl", "curly", 3), 1);
        assert_eq!(distance("a", "abcdef", 2), 3);
    }

    #[test]
    fn suggests_closest() {
        let mut s = Suggester::new("ngnix");
        for n in ["nginx", "nginx-light", "gnix", "apache2", "nginx-full"] {
            s.offer(n);
        }
        let got = s.finish();
        assert_eq!(got.first().map(String::as_str), Some("nginx"));
        assert_eq!(
            unknown_message("ngnix", &got[..1]),
            "unknown package 'ngnix' (did you mean 'nginx'?)"
        );
    }

    #[test]
    fn constraints() {
        let t = relation_terms("nginx (>= 1.2) | apache2:any");
        assert_eq!(t.len(), 2);
        assert!(satisfies("1.22.1-9", t[0].constraint.as_ref().unwrap()));
        assert!(!satisfies("1.1", t[0].constraint.as_ref().unwrap()));
        assert_eq!(t[1].name, "apache2");
        assert_eq!(
            provides_entry("foo (= 1.0)"),
            ("foo".into(), Some("1.0".into()))
        );
        assert_eq!(
            provides_entry(" mail-transport-agent"),
            ("mail-transport-agent".into(), None)
        );
    }

    #[test]
    fn search_order() {
        let row = |n: &str, d: &str| {
            (
                "c".to_string(),
                n.to_string(),
                "1".to_string(),
                d.to_string(),
            )
        };
        let idx = SearchIndex::new([
            row("libnginx-mod-http", "module"),
            row("nginx", "small, powerful web server"),
            row("apache2", "Apache HTTP Server, like nginx"),
            row("nginx-light", "nginx web server"),
        ]);
        let names: Vec<&str> = idx
            .search("nginx", 10)
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["nginx", "nginx-light", "libnginx-mod-http", "apache2"]
        );
        assert_eq!(idx.search("NGINX", 1).len(), 1);
    }
}
