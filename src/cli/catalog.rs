//! `umc-admin catalog …`: import an upstream repository's package list, browse it, remove it.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::Subcommand;

use super::{CliResult, Failure, print_json, print_table, usage};
use crate::api::{CatalogImport, SearchQuery};
use crate::client::Client;

#[derive(Subcommand)]
pub(super) enum CatalogCmd {
    /// Import (or re-import, replacing it atomically) a repository's package list
    Import {
        name: String,
        /// Archive root, e.g. http://mirror.example/debian (the server fetches it)
        #[arg(long, required_unless_present = "file", conflicts_with = "file")]
        url: Option<String>,
        #[arg(long, required_unless_present = "file")]
        suite: Option<String>,
        /// Repeatable; default main
        #[arg(long = "component")]
        components: Vec<String>,
        /// Repeatable; default amd64
        #[arg(long = "arch")]
        archs: Vec<String>,
        /// OpenPGP keyring (binary or armored); default: the server's archive keyring
        #[arg(long)]
        keyring: Option<PathBuf>,
        /// Import a local Packages[.gz|.xz] file instead, without verification
        #[arg(long)]
        file: Option<PathBuf>,
        /// Let the server fetch from a loopback, link-local, multicast or cloud metadata address
        #[arg(long, conflicts_with = "file")]
        allow_private: bool,
        #[arg(long)]
        json: bool,
    },
    /// List catalogs
    List {
        #[arg(long)]
        json: bool,
    },
    /// Search packages: name matches first, then descriptions
    Search {
        term: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Show a package in every catalog
    Show {
        package: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a catalog
    Rm {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(c: &Client, cmd: CatalogCmd) -> CliResult {
    match cmd {
        CatalogCmd::Import {
            name,
            url,
            suite,
            components,
            archs,
            keyring,
            file,
            allow_private,
            json,
        } => {
            let info = if let Some(file) = file {
                let bytes = std::fs::read(&file)
                    .map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
                errln!(
                    "warning: importing {} without verification (no InRelease, no signature)",
                    file.display()
                );
                with_progress(|| c.upload_catalog(&name, &bytes))?
            } else {
                let keyring = match keyring {
                    Some(k) => Some(
                        base64::engine::general_purpose::STANDARD.encode(
                            std::fs::read(&k)
                                .map_err(|e| usage(format!("cannot read {}: {e}", k.display())))?,
                        ),
                    ),
                    None => None,
                };
                let req = CatalogImport {
                    url: url.unwrap_or_default(),
                    suite: suite.unwrap_or_default(),
                    components,
                    archs,
                    keyring,
                    allow_private,
                };
                with_progress(|| c.import_catalog(&name, &req))?
            };
            if json {
                return print_json(&info);
            }
            outln!(
                "catalog '{}': {} packages ({} stanzas), {}",
                info.name,
                info.packages,
                info.stanzas,
                if info.verified {
                    "verified"
                } else {
                    "NOT verified"
                }
            );
            Ok(())
        }
        CatalogCmd::List { json } => {
            let cats = c.catalogs()?;
            if json {
                return print_json(&cats);
            }
            let rows: Vec<Vec<String>> = cats
                .iter()
                .map(|i| {
                    vec![
                        i.name.clone(),
                        i.packages.to_string(),
                        if i.verified { "yes" } else { "no" }.into(),
                        if i.url.is_empty() {
                            "(file)".into()
                        } else {
                            format!(
                                "{} {} {} {}",
                                i.url,
                                i.suite,
                                i.components.join(","),
                                i.archs.join(",")
                            )
                        },
                    ]
                })
                .collect();
            print_table(&["CATALOG", "PACKAGES", "VERIFIED", "SOURCE"], &rows);
            Ok(())
        }
        CatalogCmd::Search { term, limit, json } => {
            let hits = c.search_catalogs(&SearchQuery {
                q: term,
                limit: Some(limit),
            })?;
            if json {
                return print_json(&hits);
            }
            let rows: Vec<Vec<String>> = hits
                .iter()
                .map(|h| {
                    vec![
                        h.name.clone(),
                        h.version.clone(),
                        h.catalog.clone(),
                        h.description.clone(),
                    ]
                })
                .collect();
            print_table(&["PACKAGE", "VERSION", "CATALOG", "DESCRIPTION"], &rows);
            Ok(())
        }
        CatalogCmd::Show { package, json } => {
            let pkgs = c.catalog_package(&package)?;
            if json {
                return print_json(&pkgs);
            }
            for (i, p) in pkgs.iter().enumerate() {
                if i > 0 {
                    outln!();
                }
                outln!("catalog:     {}", p.catalog);
                outln!("package:     {}", p.name);
                match &p.version {
                    Some(v) => {
                        outln!("version:     {v}");
                        outln!("section:     {}", p.section);
                        outln!("priority:    {}", p.priority);
                        outln!("description: {}", p.description);
                        if !p.provides.is_empty() {
                            outln!("provides:    {}", p.provides.join(", "));
                        }
                    }
                    None => outln!("virtual:     yes"),
                }
                if !p.provided_by.is_empty() {
                    outln!("provided by: {}", p.provided_by.join(", "));
                }
            }
            Ok(())
        }
        CatalogCmd::Rm { name, json } => {
            let info = c.remove_catalog(&name)?;
            if json {
                return print_json(&info);
            }
            outln!(
                "removed catalog '{}' ({} packages)",
                info.name,
                info.packages
            );
            Ok(())
        }
    }
}

/// Runs `f`, showing elapsed time on stderr while it runs when stderr is a terminal.
fn with_progress<T>(
    f: impl FnOnce() -> Result<T, crate::client::ClientError>,
) -> Result<T, Failure> {
    if !std::io::stderr().is_terminal() {
        return Ok(f()?);
    }
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let ticker = std::thread::spawn(move || {
        let start = Instant::now();
        while !flag.load(Ordering::Relaxed) {
            super::term::err_raw(&format!(
                "\rimporting: fetching, verifying and parsing… {}s",
                start.elapsed().as_secs()
            ));
            std::thread::sleep(Duration::from_millis(250));
        }
        super::term::err_raw("\r\x1b[K");
    });
    let r = f();
    done.store(true, Ordering::Relaxed);
    let _ = ticker.join();
    Ok(r?)
}
