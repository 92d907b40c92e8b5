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
        Ok(())
    }
}
