//! OpenPGP signing of synthesized apt repositories.
//!
//! [`SigningKeys`] holds one or more certificates with secret key material
//! (the newest first) and produces what apt fetches next to a `Release` file:
//!
//! * `InRelease`: a cleartext-signed copy of the `Release` text, with one
//!   signature per key so that a keyring holding any one of them verifies it
//!   (key rotation);
//! * `Release.gpg`: an ASCII-armored detached signature (again one per key);
//! * the public keyring, binary (`.gpg`, for `Signed-By:` and gpgv) or armored
//!   (`.asc`).
//!
//! # Signature time
//!
//! Callers choose the signature creation time. sqv (apt 3.0) refuses a
//! signature dated after the verifying machine's clock, with no tolerance at
//! all, so "now" on the server breaks clients whose clock lags by a second;
//! pass a time safely in the past (gpgv as apt runs it does not care).
//!
//! Keys are OpenPGP v4 Ed25519 (RFC 4880 profile, so that Debian 12's gpgv and
//! sqv accept them), never expire, and every signature, self-signatures
//! included, uses SHA-512.
//!
//! # The cleartext framing
//!
//! The cleartext message is framed here rather than by sequoia's cleartext
//! signer, to emit exactly what `gpg --clearsign` emits (and what every Debian
//! archive `InRelease` looks like): the last body line is followed directly by
//! `-----BEGIN PGP SIGNATURE-----`. Under RFC 4880 §7.1 the line break before
//! that line belongs to the armor, so the signed text is the body *without* its
//! final newline, lines joined by CRLF, trailing spaces and tabs removed; the
//! signature is a text-mode (type 0x01) signature over exactly that. This is
//! also precisely what apt's `SplitClearSignedFile` hands to gpgv/sqv as the
//! data file (lines joined by `\n`, trailing whitespace stripped, no final
//! newline). sequoia's own cleartext signer instead signs the final newline
//! and adds an empty line before the signature block; valid, but unlike
//! anything apt usually sees.

#![warn(missing_docs)]

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::Cert;
use openpgp::Profile;
use openpgp::armor;
use openpgp::cert::prelude::{CertBuilder, CertParser, CipherSuite};
use openpgp::crypto::KeyPair;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::Serialize;
use openpgp::serialize::stream::{Armorer, Message, Signer};
use openpgp::types::{Features, HashAlgorithm, KeyFlags, PublicKeyAlgorithm, SignatureType};

/// How far before "now" a new key is dated.
pub const KEY_BACKDATE: std::time::Duration = std::time::Duration::from_secs(3600);

/// File name of the secret key material inside the state directory.
pub const SIGNING_KEY_FILE: &str = "signing-key.asc";

/// The only digest this module ever signs with.
const HASH: HashAlgorithm = HashAlgorithm::SHA512;

/// Errors from loading, generating or using signing keys.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A filesystem operation on the key file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "create", ...).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// sequoia failed at some OpenPGP operation.
    #[error("openpgp: cannot {action}: {source}")]
    OpenPgp {
        /// What was being done ("parse key material", "sign", ...).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The key material contained no certificate at all.
    #[error("no openpgp certificate found in key material")]
    NoKeys,
    /// A certificate lacks a usable secret signing key.
    #[error("certificate {fingerprint} has no usable unencrypted secret signing key")]
    NoSigningKey {
        /// Fingerprint of the offending certificate.
        fingerprint: String,
    },
    /// A body cannot be represented as a cleartext signed message.
    #[error("cannot clearsign body: {0}")]
    InvalidBody(&'static str),
    /// An imported key that apt's verifiers (sqv's policy) would reject.
    #[error("key {fingerprint} refused: {reason}")]
    Rejected {
        /// Fingerprint of the refused certificate.
        fingerprint: String,
        /// Why, in words an admin can act on.
        reason: String,
    },
    /// A key operation that makes no sense for the current key set.
    #[error("{0}")]
    KeySet(String),
}

/// Wraps a sequoia (anyhow) error.
fn pgp(action: &'static str) -> impl FnOnce(openpgp::anyhow::Error) -> SignError {
    move |e| SignError::OpenPgp {
        action,
        source: e.into(),
    }
}

/// Wraps an I/O error while writing to an in-memory buffer through sequoia.
fn pgp_io(action: &'static str) -> impl FnOnce(io::Error) -> SignError {
    move |e| SignError::OpenPgp {
        action,
        source: Box::new(e),
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SignError {
    let path = path.to_path_buf();
    move |source| SignError::Io {
        action,
        path,
        source,
    }
}

/// One or more certificates with secret key material; the newest first.
///
/// Every signature operation signs with every certificate, so that clients
/// trusting any one of the keys accept the result.
#[derive(Clone)]
pub struct SigningKeys {
    certs: Vec<Cert>,
}

impl fmt::Debug for SigningKeys {
    // Never print key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("fingerprints", &self.fingerprints())
            .finish()
    }
}

impl SigningKeys {
    /// Loads `<dir>/signing-key.asc` (armored TSK(s), possibly several
    /// concatenated), or, when it does not exist, generates one key and
    /// writes it there with mode 0600. Returns whether it was created.
    ///
    /// The file is written to a temporary file (created 0600) and then
    /// hard-linked into place, which is atomic and never replaces a key file
    /// that appeared in the meantime: if another process won the race, its key
    /// is loaded and ours discarded.
    pub fn load_or_generate(dir: &Path, user_id: &str) -> Result<(Self, bool), SignError> {
        let path = dir.join(SIGNING_KEY_FILE);
        match fs::read(&path) {
            Ok(bytes) => return Ok((Self::from_armored(&bytes)?, false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("read", &path)(e)),
        }
        let keys = Self::generate(user_id)?;
        let armored = keys.to_armored_secret()?;
        if write_new_file_0600(dir, &path, &armored)? {
            Ok((keys, true))
        } else {
            let bytes = fs::read(&path).map_err(io_err("read", &path))?;
            Ok((Self::from_armored(&bytes)?, false))
        }
    }

    /// Generates one new key in memory, dated [`KEY_BACKDATE`] before now, so that signatures
    /// made right away with a backdated signature time still postdate the key.
    pub fn generate(user_id: &str) -> Result<Self, SignError> {
        let now = SystemTime::now();
        Self::generate_at(user_id, now.checked_sub(KEY_BACKDATE).unwrap_or(now))
    }

    /// Generates one new key in memory with the given creation time (the
    /// precision is one second).
    ///
    /// The key is an OpenPGP v4 Ed25519 primary key flagged for certification
    /// and signing, with no subkeys, no expiry, and SHA-512 self-signatures.
    pub fn generate_at(user_id: &str, creation_time: SystemTime) -> Result<Self, SignError> {
        let (cert, _revocation) = CertBuilder::new()
            .set_profile(Profile::RFC4880)
            .map_err(pgp("set key profile"))?
            .set_cipher_suite(CipherSuite::Cv25519)
            .set_creation_time(creation_time)
            .set_primary_key_flags(KeyFlags::empty().set_certification().set_signing())
            .set_validity_period(None)
            .set_features(Features::empty().set_seipdv1())
            .map_err(pgp("set key features"))?
            .add_userid(user_id)
            .generate()
            .map_err(pgp("generate key"))?;
        Self::from_certs(vec![cert])
    }

    /// Parses armored (or binary) transferable secret keys; several may be
    /// concatenated, in one armor block or in several.
    pub fn from_armored(tsk: &[u8]) -> Result<Self, SignError> {
        let mut certs = Vec::new();
        for cert in CertParser::from_bytes(tsk).map_err(pgp("parse key material"))? {
            certs.push(cert.map_err(pgp("parse key material"))?);
        }
        Self::from_certs(certs)
    }

    fn from_certs(mut certs: Vec<Cert>) -> Result<Self, SignError> {
        if certs.is_empty() {
            return Err(SignError::NoKeys);
        }
        // Newest first; the sort is stable, so equal times keep file order.
        certs.sort_by_key(|c| std::cmp::Reverse(c.primary_key().key().creation_time()));
        let keys = SigningKeys { certs };
        // Fail now rather than at the first request.
        for cert in &keys.certs {
            keys.keypair(cert, keys.newest_creation_time())?;
        }
        Ok(keys)
    }

    /// The secret keys, armored, all in one `PRIVATE KEY BLOCK`.
    pub fn to_armored_secret(&self) -> Result<Vec<u8>, SignError> {
        let mut w = armor::Writer::new(Vec::new(), armor::Kind::SecretKey)
            .map_err(pgp_io("armor secret keys"))?;
        for cert in &self.certs {
            cert.as_tsk()
                .serialize(&mut w)
                .map_err(pgp("serialize secret key"))?;
        }
        w.finalize().map_err(pgp_io("armor secret keys"))
    }

    /// The public certificates, binary, concatenated (newest first): the form
    /// gpgv's `--keyring` and apt's `Signed-By: /path.gpg` want.
    pub fn public_keyring_binary(&self) -> Result<Vec<u8>, SignError> {
        let mut out = Vec::new();
        for cert in &self.certs {
            // `Cert::serialize` never includes secret key material.
            cert.serialize(&mut out)
                .map_err(pgp("serialize public key"))?;
        }
        Ok(out)
    }

    /// The public certificates in a single `PUBLIC KEY BLOCK` (apt's `.asc`
    /// reader decodes only the base64 of one block correctly).
    pub fn public_keyring_armored(&self) -> Result<Vec<u8>, SignError> {
        let mut w = armor::Writer::new(Vec::new(), armor::Kind::PublicKey)
            .map_err(pgp_io("armor public keys"))?;
        for cert in &self.certs {
            cert.serialize(&mut w)
                .map_err(pgp("serialize public key"))?;
        }
        w.finalize().map_err(pgp_io("armor public keys"))
    }

    /// Primary key fingerprints, uppercase hex, newest first.
    pub fn fingerprints(&self) -> Vec<String> {
        self.certs
            .iter()
            .map(|c| c.fingerprint().to_hex())
            .collect()
    }

    /// One line per key for `umc-admin key list`: fingerprint, creation time, algorithm and
    /// primary user ID, newest first.
    pub fn describe(&self) -> Vec<KeyDescription> {
        self.certs
            .iter()
            .map(|c| {
                let key = c.primary_key().key();
                let bits = key.mpis().bits();
                let algo = match bits {
                    Some(b) if !matches!(key.pk_algo(), PublicKeyAlgorithm::EdDSA) => {
                        format!("{}{b}", key.pk_algo())
                    }
                    _ => key.pk_algo().to_string(),
                };
                KeyDescription {
                    fingerprint: c.fingerprint().to_hex(),
                    created: key
                        .creation_time()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64),
                    algorithm: algo,
                    user_id: c
                        .userids()
                        .next()
                        .map(|u| String::from_utf8_lossy(u.userid().value()).into_owned())
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    /// The primary user ID of the newest key (new keys get the same one).
    pub fn user_id(&self) -> Option<String> {
        self.describe()
            .into_iter()
            .map(|d| d.user_id)
            .find(|u| !u.is_empty())
    }

    /// These keys plus `other`'s (key rotation, import). Refuses a key already present.
    pub fn with_added(&self, other: &SigningKeys) -> Result<SigningKeys, SignError> {
        let have = self.fingerprints();
        let mut certs = self.certs.clone();
        for cert in &other.certs {
            let fp = cert.fingerprint().to_hex();
            if have.contains(&fp) {
                return Err(SignError::KeySet(format!(
                    "key {fp} is already a signing key"
                )));
            }
            certs.push(cert.clone());
        }
        Self::from_certs(certs)
    }

    /// These keys without the one whose fingerprint is `fingerprint` (full, any case, spaces
    /// ignored). Refuses an unknown fingerprint and the last key.
    pub fn without(&self, fingerprint: &str) -> Result<SigningKeys, SignError> {
        let wanted = normalize_fingerprint(fingerprint);
        let certs: Vec<Cert> = self
            .certs
            .iter()
            .filter(|c| c.fingerprint().to_hex() != wanted)
            .cloned()
            .collect();
        if certs.len() == self.certs.len() {
            return Err(SignError::KeySet(format!(
                "no signing key {wanted} (see umc-admin key list)"
            )));
        }
        if certs.is_empty() {
            return Err(SignError::KeySet(format!(
                "key {wanted} is the only signing key; add one first (umc-admin key rotate)"
            )));
        }
        Self::from_certs(certs)
    }

    /// Parses an exported secret key (armored or binary, e.g. `gpg --export-secret-keys
    /// --armor` from aptly or reprepro) and refuses what apt's verifiers would refuse at
    /// `now`: RSA (or DSA, ElGamal) shorter than 2048 bits, self-signatures (user ID and
    /// subkey bindings) made with SHA-1 or MD5, and anything else sequoia's standard policy
    /// (the one sqv builds on) rejects. Also refuses keys without an unencrypted signing key.
    pub fn import(tsk: &[u8], now: SystemTime) -> Result<SigningKeys, SignError> {
        let mut certs = Vec::new();
        for cert in CertParser::from_bytes(tsk).map_err(pgp("parse key material"))? {
            certs.push(cert.map_err(pgp("parse key material"))?);
        }
        if certs.is_empty() {
            return Err(SignError::NoKeys);
        }
        for cert in &certs {
            check_policy(cert, now)?;
            if !cert.is_tsk() {
                return Err(SignError::Rejected {
                    fingerprint: cert.fingerprint().to_hex(),
                    reason: "no secret key material (export it with gpg --export-secret-keys)"
                        .into(),
                });
            }
        }
        Self::from_certs(certs)
    }

    /// Writes the secret keys to `<dir>/signing-key.asc`, replacing it atomically: a 0600
    /// temporary file, synced, renamed over the old one, then the directory synced.
    pub fn save(&self, dir: &Path) -> Result<(), SignError> {
        replace_file_0600(dir, &dir.join(SIGNING_KEY_FILE), &self.to_armored_secret()?)
    }

    /// The `InRelease` form of `body`: a cleartext signed message carrying one
    /// SHA-512 signature per key. The signature creation time is the later of
    /// `time` and the newest key's creation time.
    ///
    /// Trailing spaces, tabs and carriage returns are removed from every line
    /// (the cleartext framework does not sign them, so they are not emitted
    /// either); a missing final newline is supplied. A carriage return inside
    /// a line is refused. Verifiers (gpgv `--output`) recover the body as
    /// given, including its final newline.
    pub fn clearsign(&self, body: &[u8], time: SystemTime) -> Result<Vec<u8>, SignError> {
        let lines = cleartext_lines(body)?;

        // The signed text: lines joined by "\n" (text mode hashes it as CRLF),
        // without the final line break, which belongs to the armor.
        let signed_len = lines.iter().map(|l| l.len() + 1).sum::<usize>();
        let mut signed = Vec::with_capacity(signed_len);
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                signed.push(b'\n');
            }
            signed.extend_from_slice(line);
        }
        let signature = self.sign_detached_armored(&signed, SignatureType::Text, time)?;

        let mut out = Vec::with_capacity(signed_len + 64 + signature.len());
        out.extend_from_slice(b"-----BEGIN PGP SIGNED MESSAGE-----\n");
        out.extend_from_slice(b"Hash: SHA512\n\n");
        for line in &lines {
            if line.first() == Some(&b'-') {
                out.extend_from_slice(b"- ");
            }
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out.extend_from_slice(&signature);
        Ok(out)
    }

    /// The `Release.gpg` form: ASCII-armored detached binary signature(s) over
    /// `body`, one per key, SHA-512, same time rule as [`Self::clearsign`].
    pub fn detached_armored(&self, body: &[u8], time: SystemTime) -> Result<Vec<u8>, SignError> {
        self.sign_detached_armored(body, SignatureType::Binary, time)
    }

    fn newest_creation_time(&self) -> SystemTime {
        self.certs
            .iter()
            .map(|c| c.primary_key().key().creation_time())
            .max()
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// The signing keypair of `cert` that is valid at `time`.
    fn keypair(&self, cert: &Cert, time: SystemTime) -> Result<KeyPair, SignError> {
        let policy = StandardPolicy::new();
        let no_key = || SignError::NoSigningKey {
            fingerprint: cert.fingerprint().to_hex(),
        };
        let key = cert
            .keys()
            .with_policy(&policy, Some(time))
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .secret()
            .next()
            .ok_or_else(no_key)?;
        let key = key.key().clone();
        if !key.has_unencrypted_secret() {
            return Err(no_key());
        }
        key.into_keypair().map_err(|_| no_key())
    }

    fn sign_detached_armored(
        &self,
        data: &[u8],
        typ: SignatureType,
        time: SystemTime,
    ) -> Result<Vec<u8>, SignError> {
        let time = time.max(self.newest_creation_time());
        let mut keypairs = Vec::with_capacity(self.certs.len());
        for cert in &self.certs {
            keypairs.push(self.keypair(cert, time)?);
        }
        let mut keypairs = keypairs.into_iter();
        let first = keypairs.next().ok_or(SignError::NoKeys)?;

        let mut out = Vec::new();
        let message = Message::new(&mut out);
        let message = Armorer::new(message)
            .kind(armor::Kind::Signature)
            .build()
            .map_err(pgp("armor signature"))?;
        let mut signer = Signer::with_template(message, first, SignatureBuilder::new(typ))
            .map_err(pgp("set up signer"))?;
        for keypair in keypairs {
            signer = signer.add_signer(keypair).map_err(pgp("set up signer"))?;
        }
        let mut signer = signer
            .hash_algo(HASH)
            .map_err(pgp("select sha-512"))?
            .creation_time(time)
            .detached()
            .build()
            .map_err(pgp("set up signer"))?;
        signer.write_all(data).map_err(pgp_io("sign"))?;
        signer.finalize().map_err(pgp("sign"))?;
        Ok(out)
    }
}

/// One key as `umc-admin key list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDescription {
    /// Primary key fingerprint, uppercase hex.
    pub fingerprint: String,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// `EdDSA`, `RSA4096`, ...
    pub algorithm: String,
    /// The first user ID, or empty.
    pub user_id: String,
}

/// Uppercase hex without spaces (gpg prints fingerprints in groups).
pub fn normalize_fingerprint(fp: &str) -> String {
    fp.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .trim_start_matches("0x")
        .to_ascii_uppercase()
}

/// Refuses what sqv (apt 3) would refuse, with the reason in words.
fn check_policy(cert: &Cert, now: SystemTime) -> Result<(), SignError> {
    let fingerprint = cert.fingerprint().to_hex();
    let reject = |reason: String| SignError::Rejected {
        fingerprint: fingerprint.clone(),
        reason,
    };
    for ka in cert.keys() {
        let key = ka.key();
        // RSA, DSA and ElGamal: the modulus (prime) size is what policies limit.
        let weak = matches!(
            key.mpis(),
            openpgp::crypto::mpi::PublicKey::RSA { .. }
                | openpgp::crypto::mpi::PublicKey::DSA { .. }
                | openpgp::crypto::mpi::PublicKey::ElGamal { .. }
        );
        if let Some(bits) = key.mpis().bits().filter(|b| weak && *b < 2048) {
            return Err(reject(format!(
                "{} key {} has {bits} bits; apt 3's sqv rejects keys shorter than 2048 bits \
                 (use Ed25519 or RSA-3072+)",
                key.pk_algo(),
                key.fingerprint().to_hex(),
            )));
        }
    }
    let self_sigs = cert
        .userids()
        .flat_map(|u| u.self_signatures().collect::<Vec<_>>())
        .chain(cert.primary_key().self_signatures())
        .chain(
            cert.keys()
                .subkeys()
                .flat_map(|k| k.self_signatures().collect::<Vec<_>>()),
        );
    for sig in self_sigs {
        if matches!(
            sig.hash_algo(),
            HashAlgorithm::SHA1 | HashAlgorithm::MD5 | HashAlgorithm::RipeMD
        ) {
            return Err(reject(format!(
                "a {} self-signature uses {}; apt 3's sqv rejects SHA-1 binding signatures \
                 since 2026-02-01 (re-sign the key with SHA-256 or SHA-512, or make a new one \
                 with umc-admin key rotate)",
                sig.typ(),
                sig.hash_algo(),
            )));
        }
    }
    let policy = StandardPolicy::at(now);
    let valid = cert
        .with_policy(&policy, now)
        .map_err(|e| reject(format!("rejected by the OpenPGP policy apt 3 uses: {e:#}")))?;
    valid
        .alive()
        .map_err(|e| reject(format!("not alive (expired?): {e:#}")))?;
    if valid.keys().for_signing().next().is_none() {
        return Err(reject(
            "no signing-capable key valid under the OpenPGP policy apt 3 uses".into(),
        ));
    }
    Ok(())
}

/// Replaces `path` with `contents` (mode 0600) atomically.
fn replace_file_0600(dir: &Path, path: &Path, contents: &[u8]) -> Result<(), SignError> {
    use std::os::unix::fs::OpenOptionsExt as _;

    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{SIGNING_KEY_FILE}.new.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        file.write_all(contents).map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("sync", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err("replace", path))?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync", dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Splits a body into cleartext lines: split at `\n` (a final `\n` ends the
/// last line rather than starting an empty one), trailing spaces, tabs and
/// carriage returns removed. Refuses carriage returns elsewhere, since
/// implementations disagree on whether a lone CR breaks a line.
fn cleartext_lines(body: &[u8]) -> Result<Vec<&[u8]>, SignError> {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    if body.is_empty() {
        return Err(SignError::InvalidBody("empty body"));
    }
    let mut lines = Vec::new();
    for line in body.split(|&b| b == b'\n') {
        let end = line
            .iter()
            .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r'))
            .map_or(0, |i| i + 1);
        let line = &line[..end];
        if line.contains(&b'\r') {
            return Err(SignError::InvalidBody("carriage return inside a line"));
        }
        lines.push(line);
    }
    Ok(lines)
}

/// Creates `path` with `contents` and mode 0600 unless it already exists:
/// writes a 0600 temporary file in `dir`, syncs it, then hard-links it into
/// place (atomic, and fails rather than replacing an existing file). Returns
/// false when `path` already existed.
fn write_new_file_0600(dir: &Path, path: &Path, contents: &[u8]) -> Result<bool, SignError> {
    use std::os::unix::fs::OpenOptionsExt as _;

    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{SIGNING_KEY_FILE}.tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    // A leftover from a crashed process that had our pid.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("remove", &tmp)(e)),
    }
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        file.write_all(contents).map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("sync", &tmp))?;
        drop(file);
        match fs::hard_link(&tmp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(io_err("create", path)(e)),
        }
        // Make the new directory entry durable.
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync", dir))?;
        Ok(true)
    })();
    let removed = fs::remove_file(&tmp);
    let created = result?;
    removed.map_err(io_err("remove", &tmp))?;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> SigningKeys {
        SigningKeys::generate(&format!("{name} <{name}@example.invalid>")).expect("generate")
    }

    #[test]
    fn generated_keys_bind_with_sha512_and_pass_the_policy_now() {
        let k = key("a");
        let cert = &k.certs[0];
        let sigs: Vec<_> = cert
            .userids()
            .flat_map(|u| u.self_signatures().collect::<Vec<_>>())
            .chain(cert.primary_key().self_signatures())
            .collect();
        assert!(!sigs.is_empty());
        assert!(sigs.iter().all(|s| s.hash_algo() == HashAlgorithm::SHA512));
        assert_eq!(
            cert.primary_key().key().pk_algo(),
            PublicKeyAlgorithm::EdDSA
        );
        check_policy(cert, SystemTime::now()).expect("policy");
        // An exported generated key imports cleanly.
        let again = SigningKeys::import(&k.to_armored_secret().expect("tsk"), SystemTime::now())
            .expect("import");
        assert_eq!(again.fingerprints(), k.fingerprints());
    }

    #[test]
    fn add_and_remove_keys() {
        let (a, b) = (key("a"), key("b"));
        let both = a.with_added(&b).expect("add");
        assert_eq!(both.fingerprints().len(), 2);
        let e = both.with_added(&b).expect_err("duplicate");
        assert!(e.to_string().contains("already"), "{e}");
        let fa = a.fingerprints().remove(0);
        // gpg's grouped, lowercase form is accepted.
        let spaced: String = fa
            .to_lowercase()
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let only_b = both.without(&spaced).expect("retire");
        assert_eq!(only_b.fingerprints(), b.fingerprints());
        let e = only_b.without(&fa).expect_err("unknown");
        assert!(e.to_string().starts_with("no signing key"), "{e}");
        let e = only_b
            .without(&b.fingerprints()[0])
            .expect_err("the last key");
        assert!(e.to_string().contains("only signing key"), "{e}");
        assert_eq!(only_b.user_id().as_deref(), Some("b <b@example.invalid>"));
    }

    #[test]
    fn import_refuses_public_keys_and_short_rsa() {
        let k = key("a");
        let public = k.public_keyring_armored().expect("public");
        let e = SigningKeys::import(&public, SystemTime::now()).expect_err("public only");
        assert!(e.to_string().contains("secret"), "{e}");
        // RSA-2048 passes; the builder cannot make shorter keys, gpg can (tests/it/keys.rs).
        let (rsa, _) = CertBuilder::new()
            .set_cipher_suite(CipherSuite::RSA2k)
            .set_primary_key_flags(KeyFlags::empty().set_certification().set_signing())
            .add_userid("r <r@example.invalid>")
            .generate()
            .expect("rsa");
        check_policy(&rsa, SystemTime::now()).expect("rsa2048 is fine");
    }

    #[test]
    fn save_replaces_the_key_file_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (key("a"), key("b"));
        a.save(dir.path()).expect("save");
        let both = a.with_added(&b).expect("add");
        both.save(dir.path()).expect("save");
        let path = dir.path().join(SIGNING_KEY_FILE);
        let mode = fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (loaded, created) =
            SigningKeys::load_or_generate(dir.path(), "x <x@example.invalid>").expect("load");
        assert!(!created);
        let mut want = both.fingerprints();
        let mut got = loaded.fingerprints();
        want.sort();
        got.sort();
        assert_eq!(got, want);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }
}
