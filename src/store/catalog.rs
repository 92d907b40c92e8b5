//! Catalog tables: imported upstream package lists, replaced atomically, and the edit-time
//! check of task package names against them. A catalog never touches the model generation.

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::tables::{CATALOG_PKGS, CATALOG_PROVIDES, CATALOGS};
use super::{Store, StoreError, Tables, decode, encode};
use crate::api::Op;
use crate::catalog::fetch::Imported;
use crate::catalog::{
    Package, Suggester, provides_entry, relation_terms, satisfies, unknown_message,
};

/// Above every package name in key order: the end of one catalog's key range.
const MAX_KEY: &str = "\u{10ffff}";

/// A stored catalog's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogMeta {
    pub name: String,
    /// Empty for an offline (`--file`) import.
    pub url: String,
    pub suite: String,
    pub components: Vec<String>,
    pub archs: Vec<String>,
    pub imported_at: i64,
    /// Distinct package names.
    pub packages: u64,
    /// Stanzas read (a name may appear in several).
    pub stanzas: u64,
    /// Whether the index was checked against a verified InRelease.
    pub verified: bool,
}

#[derive(Serialize, Deserialize)]
struct CatalogRec {
    url: String,
    suite: String,
    components: Vec<String>,
    archs: Vec<String>,
    imported_at: i64,
    packages: u64,
    stanzas: u64,
    verified: bool,
}

#[derive(Serialize, Deserialize)]
struct PkgRec {
    v: String,
    s: String,
    p: String,
    d: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pr: Vec<String>,
}

fn meta_from(name: &str, r: CatalogRec) -> CatalogMeta {
    CatalogMeta {
        name: name.to_string(),
        url: r.url,
        suite: r.suite,
        components: r.components,
        archs: r.archs,
        imported_at: r.imported_at,
        packages: r.packages,
        stanzas: r.stanzas,
        verified: r.verified,
    }
}

fn package_from(name: &str, r: PkgRec) -> Package {
    Package {
        name: name.to_string(),
        version: r.v,
        section: r.s,
        priority: r.p,
        description: r.d,
        provides: r.pr,
    }
}

/// What `catalog show` finds for one name in one catalog.
#[derive(Debug, Clone)]
pub struct CatalogHit {
    pub catalog: String,
    /// The real package of that name, if any.
    pub package: Option<Package>,
    /// Packages that provide the name: (provider, provided version).
    pub providers: Vec<(String, Option<String>)>,
}

impl Store {
    /// Replaces catalog `meta.name` with `imported` in one write transaction: readers and
    /// edits see the old catalog or the new one, never a mix. The model is not touched.
    pub fn replace_catalog(
        &self,
        meta: &CatalogMeta,
        imported: &Imported,
    ) -> Result<(), StoreError> {
        let name = meta.name.as_str();
        let tx = self.db.begin_write()?;
        {
            let mut cats = tx.open_table(CATALOGS)?;
            let mut pkgs = tx.open_table(CATALOG_PKGS)?;
            let mut provs = tx.open_table(CATALOG_PROVIDES)?;
            pkgs.retain_in((name, "")..=(name, MAX_KEY), |_, _| false)?;
            provs.retain_in((name, "", "")..=(name, MAX_KEY, MAX_KEY), |_, _| false)?;
            for p in imported.packages.values() {
                let rec = PkgRec {
                    v: p.version.clone(),
                    s: p.section.clone(),
                    p: p.priority.clone(),
                    d: p.description.clone(),
                    pr: p.provides.clone(),
                };
                pkgs.insert((name, p.name.as_str()), encode(&rec)?.as_slice())?;
                for entry in &p.provides {
                    let (virt, version) = provides_entry(entry);
                    if virt.is_empty() {
                        continue;
                    }
                    provs.insert(
                        (name, virt.as_str(), p.name.as_str()),
                        version.as_deref().unwrap_or(""),
                    )?;
                }
            }
            let rec = CatalogRec {
                url: meta.url.clone(),
                suite: meta.suite.clone(),
                components: meta.components.clone(),
                archs: meta.archs.clone(),
                imported_at: meta.imported_at,
                packages: imported.packages.len() as u64,
                stanzas: imported.stanzas,
                verified: meta.verified,
            };
            cats.insert(name, encode(&rec)?.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes a catalog; false when there was none of that name.
    pub fn remove_catalog(&self, name: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_write()?;
        let existed = {
            let mut cats = tx.open_table(CATALOGS)?;
            let existed = cats.remove(name)?.is_some();
            let mut pkgs = tx.open_table(CATALOG_PKGS)?;
            pkgs.retain_in((name, "")..=(name, MAX_KEY), |_, _| false)?;
            let mut provs = tx.open_table(CATALOG_PROVIDES)?;
            provs.retain_in((name, "", "")..=(name, MAX_KEY, MAX_KEY), |_, _| false)?;
            existed
        };
        tx.commit()?;
        Ok(existed)
    }

    pub fn catalogs(&self) -> Result<Vec<CatalogMeta>, StoreError> {
        let tx = self.db.begin_read()?;
        let cats = tx.open_table(CATALOGS)?;
        let mut out = Vec::new();
        for row in cats.iter()? {
            let (k, v) = row?;
            out.push(meta_from(k.value(), decode(k.value(), v.value())?));
        }
        Ok(out)
    }

    pub fn catalog(&self, name: &str) -> Result<Option<CatalogMeta>, StoreError> {
        let tx = self.db.begin_read()?;
        let cats = tx.open_table(CATALOGS)?;
        match cats.get(name)? {
            Some(v) => Ok(Some(meta_from(name, decode(name, v.value())?))),
            None => Ok(None),
        }
    }

    /// Every catalog's view of package `name`: the real package and its providers.
    pub fn catalog_lookup(&self, name: &str) -> Result<Vec<CatalogHit>, StoreError> {
        let tx = self.db.begin_read()?;
        let cats = tx.open_table(CATALOGS)?;
        let pkgs = tx.open_table(CATALOG_PKGS)?;
        let provs = tx.open_table(CATALOG_PROVIDES)?;
        let mut out = Vec::new();
        for row in cats.iter()? {
            let (k, _) = row?;
            let cat = k.value();
            let package = match pkgs.get((cat, name))? {
                Some(v) => Some(package_from(name, decode(name, v.value())?)),
                None => None,
            };
            let providers = providers(&provs, cat, name)?;
            if package.is_some() || !providers.is_empty() {
                out.push(CatalogHit {
                    catalog: cat.to_string(),
                    package,
                    providers,
                });
            }
        }
        Ok(out)
    }

    /// (catalog, name, version, short description) of every catalog package: what the search
    /// index is built from.
    pub fn catalog_rows(&self) -> Result<Vec<(String, String, String, String)>, StoreError> {
        let tx = self.db.begin_read()?;
        let pkgs = tx.open_table(CATALOG_PKGS)?;
        let mut out = Vec::with_capacity(pkgs.len()? as usize);
        for row in pkgs.iter()? {
            let (k, v) = row?;
            let (cat, name) = k.value();
            let rec: PkgRec = decode(name, v.value())?;
            out.push((cat.to_string(), name.to_string(), rec.v, rec.d));
        }
        Ok(out)
    }
}

fn providers(
    provs: &impl ReadableTable<(&'static str, &'static str, &'static str), &'static str>,
    cat: &str,
    name: &str,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let mut out = Vec::new();
    for row in provs.range((cat, name, "")..=(cat, name, MAX_KEY))? {
        let (k, v) = row?;
        let v = v.value();
        out.push((
            k.value().2.to_string(),
            (!v.is_empty()).then(|| v.to_string()),
        ));
    }
    Ok(out)
}

/// Checks the package names of `ops` against every catalog, inside the edit's transaction (a
/// dry run's is a read transaction). Unknown names are an error unless `force`; version
/// constraints no catalog satisfies are warnings. With no catalog, nothing is checked.
pub(super) fn check_ops(
    tx: &impl Tables,
    ops: &[Op],
    force: bool,
) -> Result<Vec<String>, StoreError> {
    let cats_t = tx.table(CATALOGS)?;
    let mut cats = Vec::new();
    for row in cats_t.iter()? {
        cats.push(row?.0.value().to_string());
    }
    if cats.is_empty() {
        return Ok(Vec::new());
    }
    let pkgs = tx.table(CATALOG_PKGS)?;
    let provs = tx.table(CATALOG_PROVIDES)?;
    let mut warnings = Vec::new();
    // (catalog, version) of the real packages and versioned providers of `name`, and whether
    // anything at all knows the name.
    let lookup = |name: &str| -> Result<(bool, Vec<(String, String)>), StoreError> {
        let mut known = false;
        let mut versions = Vec::new();
        for cat in &cats {
            if let Some(v) = pkgs.get((cat.as_str(), name))? {
                known = true;
                let rec: PkgRec = decode(name, v.value())?;
                versions.push((cat.clone(), rec.v));
            }
            for (_, version) in providers(&provs, cat, name)? {
                known = true;
                if let Some(v) = version {
                    versions.push((cat.clone(), v));
                }
            }
        }
        Ok((known, versions))
    };
    let unknown = |task: &str, name: &str| -> Result<StoreError, StoreError> {
        let mut s = Suggester::new(name);
        for row in pkgs.iter()? {
            s.offer(row?.0.value().1);
        }
        for row in provs.iter()? {
            s.offer(row?.0.value().1);
        }
        Ok(StoreError::UnknownPackage(format!(
            "task '{task}': {}",
            unknown_message(name, &s.finish())
        )))
    };
    for op in ops {
        match op {
            Op::TaskDepend { task, relations } => {
                for r in relations {
                    for term in relation_terms(r) {
                        let (known, versions) = lookup(&term.name)?;
                        if !known {
                            if force {
                                warnings.push(format!(
                                    "task '{task}': package '{}' is in no catalog (forced)",
                                    term.name
                                ));
                                continue;
                            }
                            return Err(unknown(task, &term.name)?);
                        }
                        if let Some(c) = &term.constraint
                            && !versions.iter().any(|(_, v)| satisfies(v, c))
                        {
                            let have: Vec<String> =
                                versions.iter().map(|(c, v)| format!("{c}: {v}")).collect();
                            warnings.push(format!(
                                "task '{task}': no catalog version satisfies '{}' (have {})",
                                term.constraint_text(),
                                if have.is_empty() {
                                    "only unversioned providers".to_string()
                                } else {
                                    have.join(", ")
                                }
                            ));
                        }
                    }
                }
            }
            Op::TaskRemovePackage { task, packages } => {
                for p in packages {
                    if !lookup(p)?.0 {
                        if force {
                            warnings.push(format!(
                                "task '{task}': package '{p}' is in no catalog (forced)"
                            ));
                            continue;
                        }
                        return Err(unknown(task, p)?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(warnings)
}
