//! Whom umc-admin believes on https, in this order:
//! 1. `UMC_TLS_PIN=sha256//<base64>` (`;` separates several, as in curl's `--pinnedpubkey`):
//!    the SHA-256 of the server's public key (its SubjectPublicKeyInfo), whatever signed its
//!    certificate, for whatever name; umcd prints it at start.
//! 2. `UMC_CA`: a PEM file of CA certificates, trusted alone.
//! 3. umcd's own CA (`tls/ca.pem`) in its data directory, when umc-admin runs beside umcd:
//!    `$UMC_DATA` when set, else `./umc-data` (where the admin token is looked for) or the
//!    packaged `/var/lib/umc`.
//! 4. The system's trusted CAs (Debian's ca-certificates in /etc/ssl/certs).
//!
//! There is no way to turn verification off. TLS 1.2 and 1.3 only, on ring.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

/// What a server certificate is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// `UMC_TLS_PIN`, as given.
    Pin(String),
    /// A PEM file of CAs; `from_env`: named by `UMC_CA` (else found in umcd's data dir).
    Ca { path: PathBuf, from_env: bool },
    /// The system's trusted CAs.
    System,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Trust {
    pub fn from_env() -> Trust {
        if let Some(pin) = env("UMC_TLS_PIN") {
            return Trust::Pin(pin.trim().to_string());
        }
        if let Some(path) = env("UMC_CA") {
            return Trust::Ca {
                path: path.into(),
                from_env: true,
            };
        }
        let dirs = match std::env::var_os("UMC_DATA").filter(|d| !d.is_empty()) {
            Some(d) => vec![PathBuf::from(d)],
            None => vec![PathBuf::from("umc-data"), PathBuf::from("/var/lib/umc")],
        };
        dirs.into_iter()
            .map(|d| d.join("tls/ca.pem"))
            .find(|p| p.is_file())
            .map_or(Trust::System, |path| Trust::Ca {
                path,
                from_env: false,
            })
    }

    /// The rustls configuration that checks a server as this says.
    pub(super) fn config(&self) -> Result<Arc<ClientConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?;
        let mut config = match self {
            Trust::Pin(pins) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinVerifier {
                    pins: parse_pins(pins)?,
                    algorithms,
                }))
                .with_no_client_auth(),
            Trust::Ca { path, .. } => {
                let mut roots = RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("cannot read {}: {e}", self.describe()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("{}: holds no CA certificate", self.describe()));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::System => {
                let mut roots = RootCertStore::empty();
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                if roots.is_empty() {
                    return Err("no system CA certificates were found (install \
                                ca-certificates, or set UMC_CA or UMC_TLS_PIN)"
                        .into());
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    fn describe(&self) -> String {
        match self {
            Trust::Pin(p) => format!("UMC_TLS_PIN {p}"),
            Trust::Ca {
                path,
                from_env: true,
            } => format!("UMC_CA ({})", path.display()),
            Trust::Ca { path, .. } => format!("umcd's CA ({})", path.display()),
            Trust::System => "the system's trusted CAs".into(),
        }
    }

    /// Why the certificate `authority` presented was refused, naming what was expected.
    pub(super) fn refused(&self, authority: &str, e: &CertificateError) -> String {
        use CertificateError as E;
        let what = match (self, e) {
            (Trust::Pin(_), _) => format!("does not match {}", self.describe()),
            (_, E::UnknownIssuer | E::BadSignature) => {
                format!("is not signed by a CA in {}", self.describe())
            }
            (_, E::NotValidForName | E::NotValidForNameContext { .. }) => format!(
                "does not name {}, though signed by a CA in {}",
                host_of(authority),
                self.describe()
            ),
            (_, E::Expired | E::ExpiredContext { .. }) => "has expired".into(),
            (_, E::NotValidYet | E::NotValidYetContext { .. }) => "is not valid yet".into(),
            (_, other) => format!("is refused ({other}; trusting {})", self.describe()),
        };
        let hint = match self {
            Trust::System
            | Trust::Ca {
                from_env: false, ..
            } => "; set UMC_CA to umcd's tls/ca.pem, or UMC_TLS_PIN to the pin umcd printed",
            _ => "",
        };
        format!("the certificate of {authority} {what}{hint}")
    }
}

/// The host part of `host:port` or `[v6]:port`.
fn host_of(authority: &str) -> &str {
    match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => authority,
    }
}

/// `UMC_TLS_PIN`'s pins, each re-encoded as [`crate::tls::pin_of`] writes them.
fn parse_pins(pins: &str) -> Result<Vec<String>, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    pins.split(';')
        .map(|p| {
            let digest = p
                .trim()
                .strip_prefix("sha256//")
                .and_then(|d| b64.decode(d).ok())
                .filter(|d| d.len() == 32)
                .ok_or_else(|| {
                    format!(
                        "UMC_TLS_PIN {p:?} is not sha256//<base64 of 32 bytes>, as umcd prints it"
                    )
                })?;
            Ok(format!("sha256//{}", b64.encode(digest)))
        })
        .collect()
}

/// Accepts the server whose public key is pinned; its certificate's issuer, names and dates
/// do not matter (the key is what was pinned). The handshake is still verified against that
/// key, so only its holder gets through.
#[derive(Debug)]
struct PinVerifier {
    pins: Vec<String>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match crate::tls::pin_of(end_entity) {
            Ok(pin) if self.pins.contains(&pin) => Ok(ServerCertVerified::assertion()),
            _ => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_must_be_sha256_of_32_bytes_and_are_compared_canonically() {
        let good = format!(
            "sha256//{}",
            base64::engine::general_purpose::STANDARD.encode([7u8; 32])
        );
        assert_eq!(parse_pins(&good), Ok(vec![good.clone()]));
        assert_eq!(
            parse_pins(&format!(" {good} ;{good}")).map(|p| p.len()),
            Ok(2)
        );
        for bad in [
            "",
            "sha1//AAAA",
            "sha256//AAAA",
            "sha256//not base64!",
            &good[8..],
        ] {
            assert!(parse_pins(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refusals_name_the_host_and_what_was_expected() {
        let ca = Trust::Ca {
            path: "/x/ca.pem".into(),
            from_env: true,
        };
        assert_eq!(
            ca.refused("127.0.0.1:8443", &CertificateError::UnknownIssuer),
            "the certificate of 127.0.0.1:8443 is not signed by a CA in UMC_CA (/x/ca.pem)"
        );
        assert_eq!(
            ca.refused("[::1]:8443", &CertificateError::NotValidForName),
            "the certificate of [::1]:8443 does not name [::1], though signed by a CA in UMC_CA (/x/ca.pem)"
        );
        let pin = Trust::Pin("sha256//abc".into());
        assert_eq!(
            pin.refused("h:1", &CertificateError::ApplicationVerificationFailure),
            "the certificate of h:1 does not match UMC_TLS_PIN sha256//abc"
        );
        assert!(
            Trust::System
                .refused("h:1", &CertificateError::UnknownIssuer)
                .starts_with("the certificate of h:1 is not signed by a CA in the system's trusted CAs; set UMC_CA")
        );
    }
}
