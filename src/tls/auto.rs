//! umcd's embedded CA (`--tls auto` or `on` without `tls_cert`): made once, atomically, in
//! `<data>/tls/`:
//! - `ca.pem`: the CA certificate, what nodes and umc-admin trust (public);
//! - `ca.key`: its key (0600; it never leaves this directory);
//! - `server.pem`: the server certificate, the CA certificate after it, and the server key
//!   (0600): one file, so it is replaced in one rename and never read half-renewed.
//!
//! The server certificate covers `tls_names` and is reissued under the same CA when a name is
//! missing or less than [`super::RENEW_BEFORE`] of it is left. Nodes trust the CA, so a
//! reissue needs nothing from them.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, pem::PemObject};

use super::TlsError;

/// How long the CA is valid.
const CA_LIFETIME: Duration = Duration::from_secs(20 * 365 * 24 * 3600);
/// How long a server certificate is valid (browsers accept at most 398 days).
const SERVER_LIFETIME: Duration = Duration::from_secs(397 * 24 * 3600);
/// Certificates start an hour back, for clients whose clocks lag.
const BACKDATE: Duration = Duration::from_secs(3600);

/// The CA certificate in `dir`: what nodes and umc-admin trust.
pub fn ca_file(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}

fn ca_key_file(dir: &Path) -> PathBuf {
    dir.join("ca.key")
}

/// The server certificate, CA certificate and server key in `dir`, in one file.
pub fn server_file(dir: &Path) -> PathBuf {
    dir.join("server.pem")
}

fn err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::file(path, e)
}

/// Makes the CA and server certificate if `dir` does not exist yet, and reissues the server
/// certificate when it does not cover `names` or is due for renewal. Returns whether anything
/// was written.
pub fn ensure(dir: &Path, names: &[String], now: SystemTime) -> Result<bool, TlsError> {
    if !dir.exists() {
        create(dir, names, now)?;
        return Ok(true);
    }
    if server_is_current(dir, names, now) {
        return Ok(false);
    }
    let (ca_pem, ca_key) = (read_text(&ca_file(dir))?, read_text(&ca_key_file(dir))?);
    let key = KeyPair::from_pem(&ca_key).map_err(|e| err(&ca_key_file(dir), e))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, key).map_err(|e| err(&ca_file(dir), e))?;
    let server = issue_server(&issuer, &ca_pem, names, now).map_err(|e| err(dir, e))?;
    write_atomically(&server_file(dir), server.as_bytes(), 0o600)?;
    tracing::info!(
        "tls: issued a new server certificate for {} under the CA in {}",
        names.join(", "),
        dir.display()
    );
    Ok(true)
}

/// Whether `server.pem` is there, covers `names` and has more than `RENEW_BEFORE` left.
fn server_is_current(dir: &Path, names: &[String], now: SystemTime) -> bool {
    let Ok(pem) = std::fs::read(server_file(dir)) else {
        return false;
    };
    let Some(Ok(leaf)) = CertificateDer::pem_slice_iter(&pem).next() else {
        return false;
    };
    let left = super::check::seconds_left(&leaf, now).unwrap_or(0);
    left > i64::try_from(super::RENEW_BEFORE.as_secs()).unwrap_or(i64::MAX)
        && names
            .iter()
            .all(|n| super::covers(&leaf, n).unwrap_or(false))
}

fn read_text(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|e| err(path, format!("cannot read it: {e}")))
}

/// Everything made in a sibling directory and renamed into place, so `dir` is either whole
/// or absent.
fn create(dir: &Path, names: &[String], now: SystemTime) -> Result<(), TlsError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let tmp = parent.join(format!(
        ".{}.new",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("tls")
    ));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| err(&tmp, e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| err(&tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| err(&tmp, e))?;

    let ca_key = KeyPair::generate().map_err(|e| err(dir, e))?;
    let mut ca = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("umc CA {}", hostname()));
    dn.push(DnType::OrganizationName, "umc");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = (now - BACKDATE).into();
    ca.not_after = (now + CA_LIFETIME).into();
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| err(dir, e))?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca, ca_key);
    let server = issue_server(&issuer, &ca_pem, names, now).map_err(|e| err(dir, e))?;

    write_new(&ca_file(&tmp), ca_pem.as_bytes(), 0o644)?;
    write_new(
        &ca_key_file(&tmp),
        issuer.key().serialize_pem().as_bytes(),
        0o600,
    )?;
    write_new(&server_file(&tmp), server.as_bytes(), 0o600)?;
    sync_dir(&tmp)?;
    std::fs::rename(&tmp, dir).map_err(|e| err(dir, e))?;
    sync_dir(parent)?;
    tracing::info!(
        "tls: created a CA and a server certificate in {}",
        dir.display()
    );
    Ok(())
}

/// A server certificate for `names` signed by `issuer`, as `server.pem` holds it.
fn issue_server(
    issuer: &Issuer<'_, KeyPair>,
    ca_pem: &str,
    names: &[String],
    now: SystemTime,
) -> Result<String, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(names.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_else(hostname),
    );
    p.distinguished_name = dn;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    p.not_before = (now - BACKDATE).into();
    p.not_after = (now + SERVER_LIFETIME).into();
    let cert = p.signed_by(&key, issuer)?;
    Ok(format!("{}{}{}", cert.pem(), ca_pem, key.serialize_pem()))
}

fn hostname() -> String {
    crate::config::hostname().unwrap_or_else(|| "localhost".into())
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| err(path, e))?;
    // The umask (umcd's is 077) must not narrow the public CA certificate.
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| err(path, e))?;
    f.write_all(bytes).map_err(|e| err(path, e))?;
    f.sync_all().map_err(|e| err(path, e))
}

/// Replaces `path` in one rename (a reader sees the old file or the new one).
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("pem.new");
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, bytes, mode)?;
    std::fs::rename(&tmp, path).map_err(|e| err(path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> Result<(), TlsError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_made_once_and_the_server_certificate_follows_the_names() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("tls");
        let now = SystemTime::now();
        let names = vec!["umc.example.com".to_string(), "127.0.0.1".to_string()];
        assert!(ensure(&dir, &names, now).unwrap());
        let ca = std::fs::read(ca_file(&dir)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ca_key_file(&dir)), 0o600);
        assert_eq!(mode(&server_file(&dir)), 0o600);
        assert!(!ensure(&dir, &names, now).unwrap(), "nothing to do");
        let first = std::fs::read(server_file(&dir)).unwrap();

        // A new name: a new server certificate under the same CA.
        let more = vec!["umc.example.com".into(), "umc2.example.com".into()];
        assert!(ensure(&dir, &more, now).unwrap());
        assert_eq!(std::fs::read(ca_file(&dir)).unwrap(), ca);
        let second = std::fs::read(server_file(&dir)).unwrap();
        assert_ne!(first, second);
        let leaf = CertificateDer::pem_slice_iter(&second)
            .next()
            .unwrap()
            .unwrap();
        assert!(super::super::covers(&leaf, "umc2.example.com").unwrap());
        assert!(!super::super::covers(&leaf, "other.example.com").unwrap());

        // Due for renewal: reissued.
        let later = now + SERVER_LIFETIME - Duration::from_secs(24 * 3600);
        assert!(ensure(&dir, &more, later).unwrap());
        assert!(!d.path().join(".tls.new").exists());
    }
}
