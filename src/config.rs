//! umcd's configuration: embedded defaults, overridden by a TOML file, then by flags/env.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::ConffilePolicy;
use crate::repo::DEFAULT_ARCHITECTURES;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub architectures: Vec<String>,
    /// Bytes every in-memory cache together may hold (rendered artifacts and the token caches),
    /// split into fixed shares by [`crate::cache::Budgets::split`].
    pub cache_bytes: u64,
    /// Largest admin API request body accepted.
    pub max_body: usize,
    /// How long a catalog import waits for the mirror to connect or answer a request.
    pub catalog_timeout: std::time::Duration,
    /// A client must send each request's headers within this time, counted from the
    /// connection's start or the previous answer (bounds slow, silent and idle clients).
    pub header_timeout: std::time::Duration,
    /// A request body must arrive within this time after its headers, plus a second per
    /// `http::server::BODY_MIN_RATE` bytes received (bounds dripped bodies).
    pub body_timeout: std::time::Duration,
    /// Connections open at once from one source address (an IPv6 /64 counts as one).
    pub max_connections_per_source: usize,
    /// Conffile policy of nodes that set none (`umc-admin node set --conffiles`).
    pub conffiles: ConffilePolicy,
    /// Largest node report accepted.
    pub report_max: usize,
    /// Reports kept per host.
    pub report_keep: usize,
    /// When a host counts as stale or drifting.
    pub thresholds: crate::report::Thresholds,
    /// Generations kept: the edit log (`umc-admin log`) and the model history `rollback` and
    /// `diff` rebuild (`store::history::sweep`). Package changelogs keep their newest
    /// `CHANGELOG_LIMIT` entries whatever this is.
    pub log_keep: usize,
    /// Fleet-command audit records kept.
    pub audit_keep: usize,
    /// When umcd serves HTTPS (see [`crate::tls`]).
    pub tls: crate::tls::Mode,
    /// The certificate chain and key umcd serves (PEM); without them, its own CA's.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Names and addresses the served certificate must cover; the embedded CA issues for these.
    pub tls_names: Vec<String>,
    /// The CA certificates (PEM bundle) nodes trust for umcd; default: the embedded CA, or
    /// none with `tls_cert` (the system's roots).
    pub tls_ca: Option<PathBuf>,
    /// Peers whose `X-Forwarded-Proto` umcd believes (a reverse proxy terminating TLS):
    /// addresses or CIDR networks. From anyone else the header is dropped.
    pub trusted_proxies: Vec<Network>,
    /// What nodes trust for umcd over https: the PEM of `tls_ca` or of the embedded CA. Not a
    /// file key: umcd fills it once it has loaded its certificate.
    pub tls_node_ca: Option<String>,
}

/// An address or a CIDR network (`192.0.2.0/24`, `2001:db8::/32`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(s: &str) -> Option<Network> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Network { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("umc-data"),
            architectures: DEFAULT_ARCHITECTURES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            cache_bytes: 128 << 20,
            // A 1 MiB template, JSON-escaped, must fit.
            max_body: 8 << 20,
            catalog_timeout: std::time::Duration::from_secs(30),
            header_timeout: std::time::Duration::from_secs(30),
            body_timeout: std::time::Duration::from_secs(30),
            // Generous: a NAT gateway or a reverse proxy speaks for many clients.
            max_connections_per_source: 256,
            conffiles: ConffilePolicy::KeepLocal,
            report_max: 64 << 10,
            report_keep: 20,
            // The timer runs every 30 min with up to 10 min of random delay.
            thresholds: crate::report::Thresholds {
                stale_after: 2 * 3600,
                drift_after: 45 * 60,
            },
            log_keep: 100_000,
            audit_keep: 10_000,
            tls: crate::tls::Mode::Auto,
            tls_cert: None,
            tls_key: None,
            tls_names: Vec::new(),
            tls_ca: None,
            trusted_proxies: Vec::new(),
            tls_node_ca: None,
        }
    }
}

/// The TOML file: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub architectures: Option<Vec<String>>,
    pub cache_mib: Option<u64>,
    pub max_body_kib: Option<usize>,
    pub catalog_timeout_secs: Option<u64>,
    pub header_timeout_secs: Option<u64>,
    pub body_timeout_secs: Option<u64>,
    pub max_connections_per_source: Option<usize>,
    /// "keep-local" or "server-wins".
    pub conffiles: Option<String>,
    pub report_max_kib: Option<usize>,
    pub report_keep: Option<usize>,
    pub stale_after_secs: Option<i64>,
    pub drift_after_secs: Option<i64>,
    pub log_keep: Option<usize>,
    pub audit_keep: Option<usize>,
    /// "auto", "on" or "off".
    pub tls: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_names: Option<Vec<String>>,
    pub tls_ca: Option<PathBuf>,
    pub trusted_proxies: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: conffiles must be \"keep-local\" or \"server-wins\", not \"{value}\"")]
    BadPolicy { path: PathBuf, value: String },
    #[error("architecture '{0}' is not a Debian architecture name")]
    BadArch(String),
    #[error("{path}: {key} {problem}")]
    Bad {
        path: PathBuf,
        key: &'static str,
        problem: String,
    },
    #[error("{0}")]
    Tls(String),
}

impl Config {
    pub fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let f: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if let Some(v) = f.listen {
            self.listen = v;
        }
        if let Some(v) = f.data_dir {
            self.data_dir = v;
        }
        if let Some(v) = f.architectures {
            self.architectures = v;
        }
        if let Some(v) = f.cache_mib {
            self.cache_bytes = v << 20;
        }
        if let Some(v) = f.max_body_kib {
            self.max_body = v << 10;
        }
        if let Some(v) = f.header_timeout_secs {
            self.header_timeout = std::time::Duration::from_secs(v.max(1));
        }
        if let Some(v) = f.body_timeout_secs {
            self.body_timeout = std::time::Duration::from_secs(v.max(1));
        }
        if let Some(v) = f.max_connections_per_source {
            self.max_connections_per_source = v.clamp(1, crate::http::MAX_CONNECTIONS);
        }
        if let Some(v) = f.conffiles {
            self.conffiles = ConffilePolicy::parse(&v).ok_or_else(|| ConfigError::BadPolicy {
                path: path.to_path_buf(),
                value: v.clone(),
            })?;
        }
        if let Some(v) = f.report_max_kib {
            self.report_max = v.max(1) << 10;
        }
        if let Some(v) = f.report_keep {
            self.report_keep = v.max(1);
        }
        if let Some(v) = f.stale_after_secs {
            self.thresholds.stale_after = v.max(1);
        }
        if let Some(v) = f.drift_after_secs {
            self.thresholds.drift_after = v.max(1);
        }
        if let Some(v) = f.log_keep {
            self.log_keep = v.max(1);
        }
        if let Some(v) = f.audit_keep {
            self.audit_keep = v.max(1);
        }
        if let Some(v) = f.catalog_timeout_secs {
            self.catalog_timeout = std::time::Duration::from_secs(v.max(1));
        }
        if let Some(v) = f.tls {
            self.tls = crate::tls::Mode::parse(&v).ok_or_else(|| ConfigError::Bad {
                path: path.to_path_buf(),
                key: "tls",
                problem: format!("must be \"auto\", \"on\" or \"off\", not \"{v}\""),
            })?;
        }
        if let Some(v) = f.tls_cert {
            self.tls_cert = Some(v);
        }
        if let Some(v) = f.tls_key {
            self.tls_key = Some(v);
        }
        if let Some(v) = f.tls_names {
            self.tls_names = v;
        }
        if let Some(v) = f.tls_ca {
            self.tls_ca = Some(v);
        }
        if let Some(v) = f.trusted_proxies {
            self.trusted_proxies = v
                .iter()
                .map(|n| {
                    Network::parse(n).ok_or_else(|| ConfigError::Bad {
                        path: path.to_path_buf(),
                        key: "trusted_proxies",
                        problem: format!("\"{n}\" is not an address or CIDR network"),
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        for a in &self.architectures {
            let ok = !a.is_empty()
                && a != "all"
                && a.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(ConfigError::BadArch(a.clone()));
            }
        }
        self.tls_source()?;
        Ok(())
    }
}

/// This machine's name from `/etc/hostname`, if it has one.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

impl Config {
    /// Where the served certificate comes from, or `None` for plain HTTP (see
    /// [`crate::tls::Mode`]).
    pub fn tls_source(&self) -> Result<Option<crate::tls::Source>, ConfigError> {
        use crate::tls::{Mode, Source};
        let files = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(Source::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Tls(
                    "tls_cert and tls_key go together: give both or neither".into(),
                ));
            }
        };
        let serve = match self.tls {
            Mode::Off if files.is_some() => {
                return Err(ConfigError::Tls(
                    "tls is off but tls_cert is set: drop one of them".into(),
                ));
            }
            Mode::Off => false,
            Mode::On => true,
            Mode::Auto => files.is_some() || !self.listen.ip().is_loopback(),
        };
        if !serve {
            return Ok(None);
        }
        Ok(Some(files.unwrap_or_else(|| Source::Auto {
            dir: self.data_dir.join("tls"),
        })))
    }

    /// The names the served certificate must cover: `tls_names`, which umcd's own CA issues
    /// for, defaulting for it to [`Config::tls_names_or_default`]. An admin's certificate
    /// need cover only the names given.
    pub fn tls_names_for(&self, source: &crate::tls::Source) -> Vec<String> {
        match source {
            crate::tls::Source::Auto { .. } => self.tls_names_or_default(),
            crate::tls::Source::Files { .. } => self.tls_names.clone(),
        }
    }

    /// `tls_names`, or when none are given: this host's name, `localhost`, the loopback
    /// addresses and the listen address when it is a specific one.
    pub fn tls_names_or_default(&self) -> Vec<String> {
        if !self.tls_names.is_empty() {
            return self.tls_names.clone();
        }
        let mut names: Vec<String> = hostname().into_iter().collect();
        names.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
        let ip = self.listen.ip();
        if !ip.is_unspecified() && !ip.is_loopback() {
            names.push(ip.to_string());
        }
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_contain() {
        let n = Network::parse("192.0.2.0/24").unwrap();
        assert!(n.contains("192.0.2.7".parse().unwrap()));
        assert!(n.contains("::ffff:192.0.2.7".parse().unwrap()));
        assert!(!n.contains("192.0.3.7".parse().unwrap()));
        let one = Network::parse("::1").unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        assert!(
            Network::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert_eq!(Network::parse("192.0.2.0/33"), None);
        assert_eq!(Network::parse("nonsense"), None);
    }

    #[test]
    fn tls_is_on_by_default_only_off_loopback() {
        let mut c = Config::default();
        assert!(c.tls_source().unwrap().is_none(), "127.0.0.1: plain");
        c.listen = "0.0.0.0:8443".parse().unwrap();
        assert!(matches!(
            c.tls_source().unwrap(),
            Some(crate::tls::Source::Auto { .. })
        ));
        c.tls = crate::tls::Mode::Off;
        assert!(c.tls_source().unwrap().is_none());
        c.tls_cert = Some("c.pem".into());
        assert!(c.tls_source().is_err(), "off with a certificate");
        c.tls = crate::tls::Mode::Auto;
        assert!(c.tls_source().is_err(), "a certificate without its key");
        c.tls_key = Some("k.pem".into());
        assert!(matches!(
            c.tls_source().unwrap(),
            Some(crate::tls::Source::Files { .. })
        ));
    }
}
