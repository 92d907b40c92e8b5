//! HTTPS for umcd: which certificate it serves, where that comes from, and how it changes
//! without a restart.
//!
//! - `--tls off` serves plain HTTP; `--tls on` serves HTTPS; `--tls auto` (the default) serves
//!   HTTPS unless umcd listens on a loopback address only, so the README's one-command start on
//!   127.0.0.1 stays plain.
//! - With `tls_cert` and `tls_key`, umcd serves those PEM files. Without them it serves its own
//!   ([`auto`]): a small CA made once in `<data>/tls/` (its key 0600, never leaving the
//!   directory) and a server certificate it issues for `tls_names`, renewed under the same CA
//!   before it expires or when the names change.
//! - Nodes trust the CA for apt alone (`Acquire::https::<host>::CaInfo`, shipped by umc-node);
//!   the enrollment line carries the CA too, so first contact trusts nothing else.
//! - The served certificate is re-read on SIGHUP and when its files change; a new handshake
//!   sees the new one, open connections keep theirs. A bad new file is logged and the old
//!   certificate stays.
//!
//! rustls offers TLS 1.2 and 1.3 only and implements neither renegotiation nor compression.

#![warn(missing_docs)]

pub mod auto;
mod check;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

pub use check::{covers, pin_of};

/// When umcd serves HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// HTTPS unless umcd listens on a loopback address.
    #[default]
    Auto,
    /// HTTPS always: with the admin's files when given, else with the embedded CA.
    On,
    /// Plain HTTP, even off loopback (behind a reverse proxy that terminates TLS, say).
    Off,
}

impl Mode {
    /// The mode named `auto`, `on` or `off` (`tls` in the config file, `--tls`).
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "auto" => Some(Mode::Auto),
            "on" => Some(Mode::On),
            "off" => Some(Mode::Off),
            _ => None,
        }
    }
}

/// How often the served files are checked for a change.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// The embedded server certificate is renewed when it has less than this left.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why umcd cannot serve TLS with what it was given.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file cannot be read, written or used.
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (unreadable, no key, expired, a name not covered…).
        problem: String,
    },
    /// rustls refused the server configuration.
    #[error("{0}")]
    Config(String),
}

impl TlsError {
    pub(crate) fn file(path: &Path, problem: impl std::fmt::Display) -> TlsError {
        TlsError::File {
            path: path.to_path_buf(),
            problem: problem.to_string(),
        }
    }
}

/// Where the served certificate comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The admin's PEM files.
    Files {
        /// The certificate chain (`tls_cert`), leaf first.
        cert: PathBuf,
        /// Its private key (`tls_key`).
        key: PathBuf,
    },
    /// umcd's own CA in this directory (see [`auto`]).
    Auto {
        /// Where the CA and the server certificate live (`<data>/tls`).
        dir: PathBuf,
    },
}

impl Source {
    /// The files whose change means a reload.
    fn files(&self) -> Vec<PathBuf> {
        match self {
            Source::Files { cert, key } => vec![cert.clone(), key.clone()],
            Source::Auto { dir } => vec![auto::server_file(dir)],
        }
    }
}

/// The TLS umcd serves with: the current certificate (swapped on reload) and what nodes are
/// told to trust.
pub struct Tls {
    source: Source,
    current: RwLock<Arc<CertifiedKey>>,
    /// The names that must stay covered (`tls_names`).
    names: Vec<String>,
    /// The CA certificates (PEM) nodes trust for umcd, or `None` when the served certificate
    /// chains to the system's roots and nodes need nothing of ours.
    node_ca: Option<String>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("source", &self.source).finish()
    }
}

impl Tls {
    /// Loads (or for [`Source::Auto`], makes) the certificate and checks it: the key matches,
    /// it is valid now, and it covers every one of `names`. `node_ca`: a PEM bundle of the CAs
    /// nodes are to trust (`tls_ca`), defaulting to the embedded CA.
    pub fn load(
        source: Source,
        names: Vec<String>,
        node_ca: Option<&Path>,
        now: SystemTime,
    ) -> Result<Tls, TlsError> {
        if let Source::Auto { dir } = &source {
            auto::ensure(dir, &names, now)?;
        }
        let key = load_key(&source, &names, now)?;
        let node_ca = match (node_ca, &source) {
            (Some(p), _) => Some(read_ca_bundle(p)?),
            (None, Source::Auto { dir }) => Some(read_ca_bundle(&auto::ca_file(dir))?),
            (None, Source::Files { .. }) => None,
        };
        Ok(Tls {
            source,
            current: RwLock::new(Arc::new(key)),
            names,
            node_ca,
        })
    }

    /// Where the served certificate comes from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The CA bundle (PEM) nodes trust for umcd, if they need one.
    pub fn node_ca(&self) -> Option<&str> {
        self.node_ca.as_deref()
    }

    /// The certificate served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// `sha256//<base64>` of the served certificate's public key (curl's `--pinnedpubkey`).
    pub fn pin(&self) -> String {
        self.current()
            .cert
            .first()
            .map(|c| pin_of(c).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Reads the certificate again (renewing the embedded one first when it is due) and
    /// serves it from the next handshake on. On error the old certificate stays.
    pub fn reload(&self, now: SystemTime) -> Result<(), TlsError> {
        if let Source::Auto { dir } = &self.source {
            auto::ensure(dir, &self.names, now)?;
        }
        let key = load_key(&self.source, &self.names, now)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(key);
        Ok(())
    }

    /// The rustls server configuration: TLS 1.2 and 1.3, HTTP/1.1 by ALPN, session tickets for
    /// cheap resumption, and the certificate from [`Tls::current`] at each handshake.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut c = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.clone())));
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
        c.ticketer =
            rustls::crypto::ring::Ticketer::new().map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(Arc::new(c))
    }

    /// Reloads on SIGHUP, when a served file changes, and (embedded CA) once an hour so the
    /// server certificate is renewed before it expires. Runs until the process ends.
    pub async fn watch(self: Arc<Self>) {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("tls: no SIGHUP handler ({e}); reloading on file change only");
                None
            }
        };
        let mut seen = stamps(&self.source.files());
        let mut tick = tokio::time::interval(WATCH_EVERY);
        let mut last_renewal_check = std::time::Instant::now();
        loop {
            let why = tokio::select! {
                _ = tick.tick() => None,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => None } } => Some("SIGHUP"),
            };
            let now_stamps = stamps(&self.source.files());
            let due = matches!(self.source, Source::Auto { .. })
                && last_renewal_check.elapsed() >= Duration::from_secs(3600);
            let why = why.or(if now_stamps != seen {
                Some("a file changed")
            } else if due {
                Some("renewal check")
            } else {
                None
            });
            let Some(why) = why else { continue };
            if due {
                last_renewal_check = std::time::Instant::now();
            }
            let this = self.clone();
            let done = tokio::task::spawn_blocking(move || this.reload(SystemTime::now())).await;
            match done {
                Ok(Ok(())) => tracing::info!("tls: certificate reloaded ({why})"),
                Ok(Err(e)) => tracing::error!("tls: keeping the old certificate ({why}): {e}"),
                Err(e) => tracing::error!("tls: reload failed: {e}"),
            }
            seen = stamps(&self.source.files());
        }
    }
}

/// The certificate for every handshake: whatever [`Tls`] holds now.
#[derive(Debug)]
struct Resolver(Arc<Tls>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}

/// Modification time and length of each file, to notice a change cheaply.
fn stamps(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::file(path, format!("cannot read it: {e}")))
}

/// The certificate chain and key of `source`, checked.
fn load_key(source: &Source, names: &[String], now: SystemTime) -> Result<CertifiedKey, TlsError> {
    let (cert_path, key_path) = match source {
        Source::Files { cert, key } => (cert.clone(), key.clone()),
        Source::Auto { dir } => (auto::server_file(dir), auto::server_file(dir)),
    };
    let cert_pem = read(&cert_path)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::file(&cert_path, format!("not a PEM certificate file: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::file(&cert_path, "holds no CERTIFICATE"));
    };
    let key_pem = if key_path == cert_path {
        cert_pem.clone()
    } else {
        read(&key_path)?
    };
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| TlsError::file(&key_path, format!("holds no usable private key: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::file(&key_path, format!("unsupported private key: {e}")))?;
    check::valid(leaf, now).map_err(|p| TlsError::file(&cert_path, p))?;
    for name in names {
        if !covers(leaf, name).map_err(|p| TlsError::file(&cert_path, p))? {
            return Err(TlsError::file(
                &cert_path,
                format!("the certificate does not cover the name {name:?} (tls_names)"),
            ));
        }
    }
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        TlsError::file(
            &key_path,
            format!(
                "the key does not match the certificate in {}: {e}",
                cert_path.display()
            ),
        )
    })?;
    Ok(certified)
}

/// A PEM bundle of one or more CA certificates, as nodes will get it.
fn read_ca_bundle(path: &Path) -> Result<String, TlsError> {
    let bytes = read(path)?;
    let n = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::file(path, format!("not a PEM certificate file: {e}")))?
        .len();
    if n == 0 {
        return Err(TlsError::file(path, "holds no CERTIFICATE"));
    }
    String::from_utf8(bytes).map_err(|_| TlsError::file(path, "is not text"))
}
