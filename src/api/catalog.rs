//! Upstream package catalogs: import, list, search and show.

use serde::{Deserialize, Serialize};

/// `POST /catalogs/<name>/import`: fetch and verify an upstream repository's index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogImport {
    /// The archive root, `http://…/debian`.
    pub url: String,
    pub suite: String,
    /// Default `["main"]`.
    #[serde(default)]
    pub components: Vec<String>,
    /// Default `["amd64"]`.
    #[serde(default)]
    pub archs: Vec<String>,
    /// Base64 of an OpenPGP keyring (binary or armored); default: the server's archive keyring.
    #[serde(default)]
    pub keyring: Option<String>,
    /// Let umcd fetch from loopback, link-local, multicast, unspecified and cloud metadata
    /// addresses (refused by default: an import must not probe umcd's own network).
    #[serde(default)]
    pub allow_private: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogInfo {
    pub name: String,
    /// Empty for an offline import of a file.
    pub url: String,
    pub suite: String,
    pub components: Vec<String>,
    pub archs: Vec<String>,
    /// Seconds since the Unix epoch, UTC.
    pub imported_at: i64,
    /// Distinct package names.
    pub packages: u64,
    /// Stanzas read (a name may appear in several).
    pub stanzas: u64,
    /// Whether the index was checked against a verified InRelease.
    pub verified: bool,
}

/// One package of one catalog (`catalog show`), or a virtual package and its providers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogPackage {
    pub catalog: String,
    pub name: String,
    /// None when the name is only virtual in this catalog.
    pub version: Option<String>,
    pub section: String,
    pub priority: String,
    pub description: String,
    pub provides: Vec<String>,
    /// Packages that provide this name, as `pkg` or `pkg (= version)`.
    pub provided_by: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogHit {
    pub catalog: String,
    pub name: String,
    pub version: String,
    pub description: String,
}

/// `GET /api/v1/catalog/search`: name matches first, then descriptions; `limit` default 20.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    pub q: String,
    pub limit: Option<usize>,
}
