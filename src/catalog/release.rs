//! `InRelease`: the cleartext signature checked against a keyring with sequoia, then the signed
//! body's `SHA256:` list, which is what every index download is checked against.

use std::collections::BTreeMap;
use std::io::Read;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::CertParser;
use openpgp::parse::Parse;
use openpgp::parse::stream::{MessageLayer, MessageStructure, VerificationHelper, VerifierBuilder};
use openpgp::policy::StandardPolicy;
use openpgp::{Cert, KeyHandle};

use super::CatalogError;

/// The certificates of a keyring file (binary or armored).
pub fn parse_keyring(bytes: &[u8]) -> Result<Vec<Cert>, CatalogError> {
    let certs: Vec<Cert> = CertParser::from_bytes(bytes)
        .map_err(|e| CatalogError::Keyring(format!("not an OpenPGP keyring: {e}")))?
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(CatalogError::Keyring("holds no OpenPGP certificate".into()));
    }
    Ok(certs)
}

struct Helper {
    certs: Vec<Cert>,
}

impl VerificationHelper for Helper {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.certs.clone())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        let mut problems = Vec::new();
        for layer in structure.into_iter() {
            if let MessageLayer::SignatureGroup { results } = layer {
                for r in results {
                    match r {
                        Ok(_) => return Ok(()),
                        Err(e) => problems.push(e.to_string()),
                    }
                }
            }
        }
        if problems.is_empty() {
            problems.push("not signed".into());
        }
        Err(anyhow::anyhow!(
            "no good signature from a key in the keyring ({})",
            problems.join("; ")
        ))
    }
}

/// Verifies a cleartext-signed `InRelease` against `keyring` and returns the signed body: at
/// least one signature must be good and made by a key of the keyring.
pub fn verify(inrelease: &[u8], keyring: &[u8]) -> Result<Vec<u8>, CatalogError> {
    if !inrelease.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----") {
        return Err(CatalogError::BadSignature(
            "not a cleartext-signed file".into(),
        ));
    }
    let certs = parse_keyring(keyring)?;
    let policy = StandardPolicy::new();
    let bad = |e: anyhow::Error| {
        // sequoia puts the helper's verdict at the root of the chain.
        let msg = e
            .chain()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        CatalogError::BadSignature(msg.to_lowercase())
    };
    let mut v = VerifierBuilder::from_bytes(inrelease)
        .map_err(bad)?
        .with_policy(&policy, None, Helper { certs })
        .map_err(bad)?;
    let mut body = Vec::new();
    v.read_to_end(&mut body)
        .map_err(|e| bad(anyhow::Error::from(e)))?;
    if !v.message_processed() {
        return Err(CatalogError::BadSignature(
            "message not fully processed".into(),
        ));
    }
    Ok(body)
}

/// What an import needs from a `Release` body.
#[derive(Debug, Default)]
pub struct Release {
    pub suite: Option<String>,
    pub codename: Option<String>,
    /// `Valid-Until`, seconds since the epoch, when present.
    pub valid_until: Option<i64>,
    /// path → (sha256 hex, size)
    pub sha256: BTreeMap<String, (String, u64)>,
}

impl Release {
    pub fn parse(body: &[u8]) -> Result<Release, CatalogError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| CatalogError::BadRelease("Release is not UTF-8".into()))?;
        let mut rel = Release::default();
        let mut in_sha = false;
        for line in text.lines() {
            if line.starts_with([' ', '\t']) {
                if in_sha {
                    let parts: Vec<&str> = line.split_whitespace().collect();
                    let [hash, size, path] = parts.as_slice() else {
                        return Err(CatalogError::BadRelease(format!(
                            "bad SHA256 line '{}'",
                            line.trim()
                        )));
                    };
                    let size = size.parse().map_err(|_| {
                        CatalogError::BadRelease(format!(
                            "bad size in SHA256 line '{}'",
                            line.trim()
                        ))
                    })?;
                    rel.sha256
                        .insert(path.to_string(), (hash.to_lowercase(), size));
                }
                continue;
            }
            in_sha = false;
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            match k {
                "Suite" => rel.suite = Some(v.trim().to_string()),
                "Codename" => rel.codename = Some(v.trim().to_string()),
                "SHA256" => in_sha = true,
                "Valid-Until" => rel.valid_until = Some(parse_date(v.trim())?),
                _ => {}
            }
        }
        if rel.sha256.is_empty() {
            return Err(CatalogError::BadRelease(
                "Release has no SHA256 list".into(),
            ));
        }
        Ok(rel)
    }

    /// Refuses a Release whose `Valid-Until` is before `now`, as apt does.
    pub fn check_valid(&self, now: i64) -> Result<(), CatalogError> {
        match self.valid_until {
            Some(t) if t < now => Err(CatalogError::BadRelease(format!(
                "expired: Valid-Until is {}",
                crate::time::http_date(t)
            ))),
            _ => Ok(()),
        }
    }

    /// The best Packages variant listed for `comp/binary-arch`: xz, then gz, then plain.
    pub fn index(
        &self,
        component: &str,
        arch: &str,
    ) -> Result<(String, String, u64), CatalogError> {
        let base = format!("{component}/binary-{arch}/Packages");
        for ext in [".xz", ".gz", ""] {
            let path = format!("{base}{ext}");
            if let Some((h, s)) = self.sha256.get(&path) {
                return Ok((path, h.clone(), *s));
            }
        }
        Err(CatalogError::NoIndex(format!("{component}/binary-{arch}")))
    }
}

/// An RFC 1123 date as Release files write it (`GMT`, `UTC` or `+0000`).
fn parse_date(v: &str) -> Result<i64, CatalogError> {
    let gmt = v
        .strip_suffix("UTC")
        .or_else(|| v.strip_suffix("+0000"))
        .map(|d| format!("{}GMT", d))
        .unwrap_or_else(|| v.to_string());
    let t = httpdate::parse_http_date(&gmt)
        .map_err(|_| CatalogError::BadRelease(format!("bad date '{v}'")))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release() {
        let body = b"Origin: Debian\nSuite: stable\nCodename: bookworm\nSHA256:\n \
            0123 10 main/binary-amd64/Packages\n abcd 5 main/binary-amd64/Packages.xz\n";
        let r = Release::parse(body).unwrap();
        assert_eq!(r.codename.as_deref(), Some("bookworm"));
        let (path, hash, size) = r.index("main", "amd64").unwrap();
        assert_eq!(
            (path.as_str(), hash.as_str(), size),
            ("main/binary-amd64/Packages.xz", "abcd", 5)
        );
        assert!(r.index("contrib", "amd64").is_err());
        assert!(r.check_valid(i64::MAX).is_ok());
        let expiring = b"Valid-Until: Sat, 10 Jun 2023 08:52:44 UTC\nSHA256:\n 01 1 x\n";
        let r = Release::parse(expiring).unwrap();
        assert!(r.check_valid(1_686_387_000).is_ok());
        let e = r.check_valid(1_700_000_000).unwrap_err().to_string();
        assert!(
            e.contains("expired: Valid-Until is Sat, 10 Jun 2023 08:52:44 GMT"),
            "{e}"
        );
    }

    #[test]
    fn verifies_own_signature() {
        let keys = crate::sign::SigningKeys::generate("t <t@example.invalid>").unwrap();
        let other = crate::sign::SigningKeys::generate("o <o@example.invalid>").unwrap();
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        let signed = keys.clearsign(b"Suite: x\nSHA256:\n", t).unwrap();
        let body = verify(&signed, &keys.public_keyring_binary().unwrap()).unwrap();
        assert!(
            body.starts_with(b"Suite: x\nSHA256:"),
            "{}",
            String::from_utf8_lossy(&body)
        );
        let e = verify(&signed, &other.public_keyring_binary().unwrap()).unwrap_err();
        assert!(e.to_string().contains("no good signature"), "{e}");
        let mut tampered = signed.clone();
        let pos = tampered.windows(5).position(|w| w == b"Suite").unwrap();
        tampered[pos + 7] = b'y';
        let e = verify(&tampered, &keys.public_keyring_binary().unwrap()).unwrap_err();
        assert!(e.to_string().contains("no good signature"), "{e}");
    }
}
