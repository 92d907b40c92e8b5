//! What umcd reads from a certificate before it serves it: its validity, the names it
//! covers, and the pin of its public key.

use std::net::IpAddr;
use std::time::SystemTime;

use base64::Engine;
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

fn parse<'a>(der: &'a CertificateDer<'_>) -> Result<X509Certificate<'a>, String> {
    X509Certificate::from_der(der.as_ref())
        .map(|(_, c)| c)
        .map_err(|e| format!("cannot parse the certificate: {e}"))
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// `Ok` when `now` lies within the certificate's validity.
pub(super) fn valid(der: &CertificateDer<'_>, now: SystemTime) -> Result<(), String> {
    let c = parse(der)?;
    let v = c.validity();
    let now = unix(now);
    if now < v.not_before.timestamp() {
        return Err(format!(
            "the certificate is not valid before {}",
            v.not_before
        ));
    }
    if now > v.not_after.timestamp() {
        return Err(format!("the certificate expired on {}", v.not_after));
    }
    Ok(())
}

/// Seconds from `now` until the certificate expires (negative: expired).
pub(super) fn seconds_left(der: &CertificateDer<'_>, now: SystemTime) -> Result<i64, String> {
    Ok(parse(der)?.validity().not_after.timestamp() - unix(now))
}

/// Whether the certificate's subject alternative names cover `name`: a DNS name (a `*.`
/// wildcard matches one label) or an IP address.
pub fn covers(der: &CertificateDer<'_>, name: &str) -> Result<bool, String> {
    let c = parse(der)?;
    let Some(san) = c
        .subject_alternative_name()
        .map_err(|e| format!("cannot read the subject alternative names: {e}"))?
    else {
        return Ok(false);
    };
    let ip = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    Ok(san.value.general_names.iter().any(|g| match (g, ip) {
        (GeneralName::IPAddress(bytes), Some(ip)) => match ip {
            IpAddr::V4(a) => *bytes == a.octets(),
            IpAddr::V6(a) => *bytes == a.octets(),
        },
        (GeneralName::DNSName(d), None) => dns_matches(&d.to_ascii_lowercase(), &name),
        _ => false,
    }))
}

fn dns_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(rest) => name
            .split_once('.')
            .is_some_and(|(label, parent)| !label.is_empty() && parent == rest),
        None => pattern == name,
    }
}

/// `sha256//<base64>` of the certificate's SubjectPublicKeyInfo: what curl's
/// `--pinnedpubkey` compares.
pub fn pin_of(der: &CertificateDer<'_>) -> Result<String, String> {
    let c = parse(der)?;
    let digest = Sha256::digest(c.public_key().raw);
    Ok(format!(
        "sha256//{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_one_label() {
        assert!(dns_matches("*.example.com", "umc.example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(dns_matches("umc.example.com", "umc.example.com"));
        assert!(!dns_matches("umc.example.com", "umc.example.org"));
    }
}
