//! The verified import: `InRelease` over HTTP, its signature, then each listed Packages index,
//! checked against its SHA256 before a single stanza is parsed. Blocking (ureq); umcd runs it
//! in `spawn_blocking`.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use debversion::Version;
use sha2::{Digest, Sha256};

use super::release::{self, Release};
use super::{CatalogError, Package, packages};

/// Where an import reads from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The archive root, e.g. `http://mirror/debian`.
    pub url: String,
    pub suite: String,
    pub components: Vec<String>,
    pub archs: Vec<String>,
    /// How long to wait for a connection or for each response to start.
    pub timeout: Duration,
}

/// What an import produced, ready to be stored.
#[derive(Debug, Default)]
pub struct Imported {
    /// By name; when a name appears more than once the highest version wins.
    pub packages: BTreeMap<String, Package>,
    /// How many stanzas were read (what `grep -c '^Package:'` counts).
    pub stanzas: u64,
}

impl Imported {
    fn add(&mut self, p: Package) {
        match self.packages.get(&p.name) {
            Some(old) if !newer(&p.version, &old.version) => {}
            _ => {
                self.packages.insert(p.name.clone(), p);
            }
        }
    }

    fn read(&mut self, what: &str, bytes: &[u8]) -> Result<(), CatalogError> {
        let r = packages::decoder(what, bytes)?;
        self.stanzas += packages::parse(what, r, |p| self.add(p))?;
        Ok(())
    }
}

fn newer(a: &str, b: &str) -> bool {
    match (Version::from_str(a), Version::from_str(b)) {
        (Ok(a), Ok(b)) => a > b,
        _ => a > b,
    }
}

/// Imports one uploaded Packages file (xz, gz or plain), without verification.
pub fn from_bytes(bytes: &[u8]) -> Result<Imported, CatalogError> {
    let mut out = Imported::default();
    out.read("uploaded Packages file", bytes)?;
    Ok(out)
}

/// The longest `InRelease` accepted.
const MAX_INRELEASE: u64 = 64 << 20;

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_global(Some(Duration::from_secs(600)))
        .user_agent(concat!("umcd/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn get(agent: &ureq::Agent, url: &str, limit: u64) -> Result<Vec<u8>, CatalogError> {
    let fail = |detail: String| CatalogError::Fetch {
        url: url.to_string(),
        detail,
    };
    let mut resp = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(fail(format!("HTTP {status}")));
    }
    resp.body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| fail(e.to_string()))
}

/// Fetches, verifies and parses `source`. Nothing is returned unless every index verified
/// and parsed. `now` (seconds) is checked against the Release's `Valid-Until`.
pub fn fetch_verified(source: &Source, keyring: &[u8], now: i64) -> Result<Imported, CatalogError> {
    let base = source.url.trim_end_matches('/');
    if base.starts_with("https://") {
        return Err(CatalogError::Https {
            url: source.url.clone(),
        });
    }
    if !base.starts_with("http://") {
        return Err(CatalogError::Usage(format!(
            "mirror URL '{}' must start with http://",
            source.url
        )));
    }
    // Check the keyring before any download.
    release::parse_keyring(keyring)?;
    let agent = agent(source.timeout);
    let dists = format!("{base}/dists/{}", source.suite);
    let inrelease = get(&agent, &format!("{dists}/InRelease"), MAX_INRELEASE)?;
    let body = release::verify(&inrelease, keyring)?;
    let rel = Release::parse(&body)?;
    rel.check_valid(now)?;
    if rel.suite.as_deref() != Some(source.suite.as_str())
        && rel.codename.as_deref() != Some(source.suite.as_str())
    {
        return Err(CatalogError::BadRelease(format!(
            "signed for suite '{}' (codename '{}'), not '{}'",
            rel.suite.as_deref().unwrap_or("-"),
            rel.codename.as_deref().unwrap_or("-"),
            source.suite
        )));
    }
    let mut out = Imported::default();
    for comp in &source.components {
        for arch in &source.archs {
            let (path, expected, size) = rel.index(comp, arch)?;
            let bytes = get(&agent, &format!("{dists}/{path}"), size + 1)?;
            let got = hex::encode(Sha256::digest(&bytes));
            if got != expected || bytes.len() as u64 != size {
                return Err(CatalogError::HashMismatch {
                    path,
                    expected,
                    size,
                    got,
                    got_size: bytes.len() as u64,
                });
            }
            out.read(&path, &bytes)?;
        }
    }
    Ok(out)
}
