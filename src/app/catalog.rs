//! Catalogs (upstream package lists): import (fetched and verified, or an uploaded file),
//! removal, lookup, and the in-memory search index, swapped whole after each change. An import
//! never changes the model.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{App, AppError};
use crate::api::{CatalogHit, CatalogImport, CatalogInfo, CatalogPackage};
use crate::catalog::fetch::{self, Imported, Source};
use crate::catalog::{CatalogError, DEFAULT_KEYRINGS, SearchIndex, validate_name};
use crate::store::CatalogMeta;

fn info(m: CatalogMeta) -> CatalogInfo {
    CatalogInfo {
        name: m.name,
        url: m.url,
        suite: m.suite,
        components: m.components,
        archs: m.archs,
        imported_at: m.imported_at,
        packages: m.packages,
        stanzas: m.stanzas,
        verified: m.verified,
    }
}

/// The keyring an import verifies with: `given` (base64), or the first of this server's
/// archive keyrings that exists.
fn keyring(given: Option<&str>) -> Result<Vec<u8>, AppError> {
    if let Some(b64) = given {
        use base64::Engine as _;
        return base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| AppError::Invalid(format!("keyring: bad base64: {e}")));
    }
    for path in DEFAULT_KEYRINGS {
        if let Ok(bytes) = std::fs::read(path) {
            return Ok(bytes);
        }
    }
    Err(AppError::Invalid(format!(
        "no keyring given and this server has no archive keyring ({}); give --keyring",
        DEFAULT_KEYRINGS.join(", ")
    )))
}

impl App {
    /// The search index over every catalog (swapped whole after an import or removal).
    pub fn catalog_index(&self) -> Arc<SearchIndex> {
        match self.catalog_index.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Fetches catalog `name` from the mirror `req` names, verifies it against its keyring
    /// (this server's archive keyring when it gives none) and replaces the stored one.
    pub fn import_catalog(
        &self,
        name: String,
        req: CatalogImport,
        imported_at: i64,
    ) -> Result<CatalogInfo, AppError> {
        validate_name(&name)?;
        let or = |v: Vec<String>, d: &str| if v.is_empty() { vec![d.to_string()] } else { v };
        let source = Source {
            url: req.url.trim().to_string(),
            suite: req.suite.trim().to_string(),
            components: or(req.components, "main"),
            archs: or(req.archs, "amd64"),
            timeout: self.config.catalog_timeout,
            allow_private: req.allow_private,
        };
        for part in std::iter::once(&source.suite)
            .chain(&source.components)
            .chain(&source.archs)
        {
            if part.is_empty() || part.contains(['/', ' ']) || part.contains("..") {
                return Err(CatalogError::Usage(format!(
                    "bad suite, component or architecture '{part}'"
                ))
                .into());
            }
        }
        let keyring = keyring(req.keyring.as_deref())?;
        let t = Instant::now();
        let imported = fetch::fetch_verified(&source, &keyring, imported_at)?;
        let parsed = t.elapsed();
        let meta = CatalogMeta {
            name,
            url: source.url,
            suite: source.suite,
            components: source.components,
            archs: source.archs,
            imported_at,
            packages: 0,
            stanzas: 0,
            verified: true,
        };
        self.store_import(meta, &imported, parsed)
    }

    /// Replaces catalog `name` with an uploaded Packages file (recorded as unverified).
    pub fn upload_catalog(
        &self,
        name: String,
        packages: bytes::Bytes,
        imported_at: i64,
    ) -> Result<CatalogInfo, AppError> {
        validate_name(&name)?;
        let t = Instant::now();
        let imported = fetch::from_bytes(&packages)?;
        let parsed = t.elapsed();
        drop(packages);
        let meta = CatalogMeta {
            name,
            url: String::new(),
            suite: String::new(),
            components: Vec::new(),
            archs: Vec::new(),
            imported_at,
            packages: 0,
            stanzas: 0,
            verified: false,
        };
        self.store_import(meta, &imported, parsed)
    }

    /// Removes catalog `name`; returns what it was.
    pub fn remove_catalog(&self, name: &str) -> Result<CatalogInfo, AppError> {
        let Some(meta) = self.store.catalog(name)? else {
            return Err(unknown(name));
        };
        self.store.remove_catalog(name)?;
        self.reindex_catalogs()?;
        Ok(info(meta))
    }

    /// Every imported catalog, with its source and counts.
    pub fn catalogs(&self) -> Result<Vec<CatalogInfo>, AppError> {
        Ok(self.store.catalogs()?.into_iter().map(info).collect())
    }

    /// Catalog `name`, or not found.
    pub fn catalog(&self, name: &str) -> Result<CatalogInfo, AppError> {
        match self.store.catalog(name)? {
            Some(m) => Ok(info(m)),
            None => Err(unknown(name)),
        }
    }

    /// The best `limit` matches of `q` over every catalog's package names and descriptions.
    pub fn search_catalogs(&self, q: &str, limit: usize) -> Vec<CatalogHit> {
        self.catalog_index()
            .search(q, limit)
            .into_iter()
            .map(|e| CatalogHit {
                catalog: e.catalog.clone(),
                name: e.name.clone(),
                version: e.version.clone(),
                description: e.description.clone(),
            })
            .collect()
    }

    /// Package (or virtual package) `name` in every catalog that knows it.
    pub fn catalog_package(&self, name: &str) -> Result<Vec<CatalogPackage>, AppError> {
        let hits = self.store.catalog_lookup(name)?;
        if hits.is_empty() {
            return Err(AppError::NotFound(format!(
                "package '{name}' is in no catalog"
            )));
        }
        Ok(hits
            .into_iter()
            .map(|h| {
                let provided_by = h
                    .providers
                    .into_iter()
                    .map(|(p, v)| match v {
                        Some(v) => format!("{p} (= {v})"),
                        None => p,
                    })
                    .collect();
                match h.package {
                    Some(p) => CatalogPackage {
                        catalog: h.catalog,
                        name: p.name,
                        version: Some(p.version),
                        section: p.section,
                        priority: p.priority,
                        description: p.description,
                        provides: p.provides,
                        provided_by,
                    },
                    None => CatalogPackage {
                        catalog: h.catalog,
                        name: name.to_string(),
                        version: None,
                        section: String::new(),
                        priority: String::new(),
                        description: String::new(),
                        provides: Vec::new(),
                        provided_by,
                    },
                }
            })
            .collect())
    }

    /// Stores an import and rebuilds the search index; logs how long each step took (the
    /// `benches/catalog.sh` breakdown). `parsed` is how long fetching and parsing took.
    fn store_import(
        &self,
        meta: CatalogMeta,
        imported: &Imported,
        parsed: Duration,
    ) -> Result<CatalogInfo, AppError> {
        let t = Instant::now();
        self.store.replace_catalog(&meta, imported)?;
        let stored_in = t.elapsed();
        let t = Instant::now();
        self.reindex_catalogs()?;
        let indexed_in = t.elapsed();
        let stored = self
            .store
            .catalog(&meta.name)?
            .ok_or_else(|| AppError::internal("catalog vanished after import"))?;
        tracing::info!(
            "catalog '{}' imported: {} packages, verified: {}; fetch+parse {} ms, store {} ms, index {} ms",
            stored.name,
            stored.packages,
            stored.verified,
            parsed.as_millis(),
            stored_in.as_millis(),
            indexed_in.as_millis()
        );
        Ok(info(stored))
    }

    /// Rebuilds the search index from the stored catalogs and swaps it in.
    fn reindex_catalogs(&self) -> Result<(), AppError> {
        let index = Arc::new(SearchIndex::new(self.store.catalog_rows()?));
        match self.catalog_index.write() {
            Ok(mut g) => *g = index,
            Err(poisoned) => *poisoned.into_inner() = index,
        }
        Ok(())
    }
}

fn unknown(name: &str) -> AppError {
    AppError::NotFound(format!("unknown catalog '{name}'"))
}

#[cfg(test)]
mod tests {
    use crate::app::ErrorKind;
    use crate::app::testing::app;

    #[test]
    fn an_upload_is_listed_searched_and_removed() {
        let (_dir, app) = app();
        let packages = "Package: nginx-light\nVersion: 1.22-1\nSection: httpd\n\
                        Description: small web server\n\n\
                        Package: postfix\nVersion: 3.7-1\nProvides: mail-transport-agent\n\
                        Description: mail server\n\n";
        let info = app
            .upload_catalog("local".into(), packages.as_bytes().to_vec().into(), 1000)
            .expect("upload");
        assert_eq!((info.packages, info.verified), (2, false));
        assert_eq!(app.catalogs().expect("list").len(), 1);
        let hits = app.search_catalogs("nginx", 10);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].name, "nginx-light");
        let mta = app
            .catalog_package("mail-transport-agent")
            .expect("virtual");
        assert_eq!(mta[0].provided_by, ["postfix"]);
        let e = app.catalog_package("apache2").expect_err("unknown");
        assert_eq!(e.kind(), ErrorKind::NotFound);

        let e = app
            .upload_catalog("Bad Name".into(), packages.as_bytes().to_vec().into(), 1000)
            .expect_err("bad name");
        assert_eq!(e.kind(), ErrorKind::Invalid);

        assert_eq!(app.remove_catalog("local").expect("remove").name, "local");
        assert!(app.search_catalogs("nginx", 10).is_empty(), "index swapped");
        let e = app.remove_catalog("local").expect_err("gone");
        assert_eq!(e.to_string(), "unknown catalog 'local'");
    }

    #[test]
    fn an_import_checks_its_source_before_fetching() {
        let (_dir, app) = app();
        let req = |suite: &str, keyring: Option<&str>| crate::api::CatalogImport {
            url: "http://127.0.0.1:9/debian".into(),
            suite: suite.into(),
            components: Vec::new(),
            archs: Vec::new(),
            keyring: keyring.map(str::to_string),
            allow_private: false,
        };
        let e = app
            .import_catalog("up".into(), req("../x", Some("")), 1000)
            .expect_err("bad suite");
        assert_eq!(e.to_string(), "bad suite, component or architecture '../x'");
        let e = app
            .import_catalog("up".into(), req("stable", Some("%%")), 1000)
            .expect_err("bad keyring");
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.to_string().starts_with("keyring: bad base64"), "{e}");
        assert!(app.catalogs().expect("list").is_empty());
    }
}
