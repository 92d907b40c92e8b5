//! Signing against the real verifiers apt uses: gpgv (apt 2.6) and sqv
//! (apt 3.0), plus gpg for inspecting packets.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use common::verify::apt_split;
use common::{require_tool, show};
use umc::sign::{SignError, SigningKeys};

/// A realistic Release text. The `-dash` component name exercises
/// dash-escaping; the `SHA256:` section has the usual leading-space lines.
const RELEASE: &str = "\
Origin: umc
Label: umc host web-01.example.org
Suite: umc
Codename: umc
Date: Tue, 03 Mar 2026 12:00:00 UTC
Architectures: amd64 all
Components: main -dash
Description: synthesized by umc
Acquire-By-Hash: no
SHA256:
 0d5a36fa1b9e4b4d2cfbcb1e8b2b58b1f05d8e3e9a8a0b5b8f0e1c3a5b7d9f10     1234 main/binary-amd64/Packages
 6c1c7d0f7a1b7e2f9a0c0c3b1f5e0b6b2c1e4d7f8a9b0c1d2e3f4a5b6c7d8e9f      567 main/binary-amd64/Packages.xz
-----BEGIN PGP SIGNATURE-----
- already escaped looking line
";

fn tools() -> bool {
    // Evaluate all three so that every missing tool is reported.
    let gpgv = require_tool("gpgv");
    let sqv = require_tool("sqv");
    let gpg = require_tool("gpg");
    gpgv && sqv && gpg
}

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("gnupg");
        fs::create_dir(&home).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
        Scratch { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, contents).unwrap();
        p
    }

    fn home(&self) -> PathBuf {
        self.path("gnupg")
    }

    /// Runs gpgv the way apt does (`--ignore-time-conflict`, an explicit
    /// keyring, status on fd 1).
    fn gpgv(&self, keyring: &Path, args: &[&Path]) -> Output {
        let mut cmd = Command::new("gpgv");
        cmd.arg("--homedir")
            .arg(self.home())
            .arg("--ignore-time-conflict")
            .arg("--status-fd")
            .arg("1")
            .arg("--keyring")
            .arg(keyring);
        cmd.args(args);
        cmd.output().unwrap()
    }

    fn sqv(&self, keyring: &Path, sig: &Path, data: &Path) -> Output {
        Command::new("sqv")
            .arg("--keyring")
            .arg(keyring)
            .arg(sig)
            .arg(data)
            .output()
            .unwrap()
    }

    fn gpg(&self, args: &[&str], file: &Path) -> Output {
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(self.home())
            .arg("--batch")
            .arg("--no-tty")
            .args(args)
            .arg(file)
            .output()
            .unwrap();
        assert!(out.status.success(), "gpg {args:?} failed: {}", show(&out));
        out
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// gpgv's verdict as apt's gpgv method reads it: at least one GOODSIG with a
/// VALIDSIG, no BADSIG, and not a plain failure. gpgv exits 2 (not 0) when
/// one signature is good and another's key is missing; apt accepts that
/// ("good signatures and NoPubKey signatures happen easily when a file is
/// signed with multiple signatures"), so we accept it here too.
fn apt_accepts_gpgv(out: &Output, fingerprint: &str) -> bool {
    let status = stdout(out);
    let good = status.lines().any(|l| l.starts_with("[GNUPG:] GOODSIG "));
    let valid = status
        .lines()
        .any(|l| l.starts_with(&format!("[GNUPG:] VALIDSIG {fingerprint} ")));
    let bad = status.lines().any(|l| l.starts_with("[GNUPG:] BADSIG "));
    let code = out.status.code();
    good && valid && !bad && (code == Some(0) || code == Some(2))
}

/// The digest algorithm gpgv reports for the signature by `fingerprint`
/// (VALIDSIG field 8; apt rejects anything but SHA-2 there).
fn validsig_digest(out: &Output, fingerprint: &str) -> Option<String> {
    stdout(out).lines().find_map(|l| {
        let rest = l.strip_prefix(&format!("[GNUPG:] VALIDSIG {fingerprint} "))?;
        // Fields after the fingerprint: date, timestamp, expire, version,
        // reserved, pk algo, hash algo, class, primary fingerprint.
        rest.split(' ').nth(6).map(str::to_owned)
    })
}

/// The file shape apt insists on, checked byte for byte.
fn assert_clearsigned_shape(inrelease: &[u8]) {
    let text = std::str::from_utf8(inrelease).unwrap();
    assert!(
        text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n"),
        "{text}"
    );
    assert!(text.ends_with("\n-----END PGP SIGNATURE-----\n"), "{text}");
    assert_eq!(text.matches("-----END PGP SIGNATURE-----").count(), 1);
    assert!(!text.contains('\r'));
}

#[test]
fn clearsigned_shape_and_dash_escaping() {
    let keys = SigningKeys::generate("umc test <umc@example.org>").unwrap();
    let inrelease = keys
        .clearsign(RELEASE.as_bytes(), SystemTime::now())
        .unwrap();
    assert_clearsigned_shape(&inrelease);
    let text = String::from_utf8(inrelease).unwrap();
    assert!(text.contains("\nComponents: main -dash\n"));
    assert!(text.contains("\n- -----BEGIN PGP SIGNATURE-----\n"));
    assert!(text.contains("\n- - already escaped looking line\n-----BEGIN PGP SIGNATURE-----\n"));
    // The last body line is followed directly by the signature block, as
    // gpg --clearsign does.
    assert_eq!(text.matches("\n-----BEGIN PGP SIGNATURE-----\n").count(), 1);
}

#[test]
fn inrelease_verifies_with_gpgv_and_recovers_body() {
    if !tools() {
        return;
    }
    let s = Scratch::new();
    let keys = SigningKeys::generate("umc test <umc@example.org>").unwrap();
    let keyring = s.write("keyring.gpg", &keys.public_keyring_binary().unwrap());
    let inrelease = s.write(
        "InRelease",
        &keys
            .clearsign(RELEASE.as_bytes(), SystemTime::now())
            .unwrap(),
    );

    let out = s.gpgv(&keyring, &[&inrelease]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        validsig_digest(&out, &keys.fingerprints()[0]).as_deref(),
        Some("10")
    );

    let out = Command::new("gpgv")
        .arg("--homedir")
        .arg(s.home())
        .arg("--keyring")
        .arg(&keyring)
        .arg("--output")
        .arg("-")
        .arg(&inrelease)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), RELEASE);
}

#[test]
fn inrelease_split_like_apt_verifies_with_sqv_and_gpgv() {
    if !tools() {
        return;
    }
    let s = Scratch::new();
    let keys = SigningKeys::generate("umc test <umc@example.org>").unwrap();
    let keyring = s.write("keyring.gpg", &keys.public_keyring_binary().unwrap());
    let inrelease = keys
        .clearsign(RELEASE.as_bytes(), SystemTime::now())
        .unwrap();

    let (content, signature) = apt_split(&inrelease).unwrap();
    // What apt verifies (and then parses) is the body without its final
    // newline.
    assert_eq!(content, RELEASE.strip_suffix('\n').unwrap().as_bytes());
    let data = s.write("apt.data", &content);
    let sig = s.write("apt.sig", &signature);

    let out = s.sqv(&keyring, &sig, &data);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(stdout(&out).trim(), keys.fingerprints()[0]);

    // apt 2.6 calls gpgv on exactly these two files.
    let out = s.gpgv(&keyring, &[&sig, &data]);
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn trailing_whitespace_and_missing_final_newline_still_verify() {
    if !tools() {
        return;
    }
    let s = Scratch::new();
    let keys = SigningKeys::generate("umc test <umc@example.org>").unwrap();
    let keyring = s.write("keyring.gpg", &keys.public_keyring_binary().unwrap());
    let body = "Origin: umc  \nLabel: x\t\r\nSHA256:\n abc 1 main/Packages";
    let inrelease = keys.clearsign(body.as_bytes(), SystemTime::now()).unwrap();
    assert_clearsigned_shape(&inrelease);
    let (content, signature) = apt_split(&inrelease).unwrap();
    assert_eq!(
        content,
        b"Origin: umc\nLabel: x\nSHA256:\n abc 1 main/Packages"
    );
    let data = s.write("apt.data", &content);
    let sig = s.write("apt.sig", &signature);
    let out = s.sqv(&keyring, &sig, &data);
    assert!(out.status.success(), "{}", show(&out));
    let path = s.write("InRelease", &inrelease);
    let out = s.gpgv(&keyring, &[&path]);
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn bodies_that_cannot_be_clearsigned_are_refused() {
    let keys = SigningKeys::generate("umc test <umc@example.org>").unwrap();
    for body in [&b""[..], b"\n", b"a\rb\n"] {
        let err = keys.clearsign(body, SystemTime::now()).unwrap_err();
        assert!(matches!(err, SignError::InvalidBody(_)), "{err}");
    }
}

#[test]
fn release_gpg_verifies_with_gpgv_and_sqv() {
    if !tools() {
        return;
    }
    let s = Scratch::new();
    let keys = SigningKeys::generate("umc test <umc@example.org>").unwrap();
    let keyring = s.write("keyring.gpg", &keys.public_keyring_binary().unwrap());
    let release = s.write("Release", RELEASE.as_bytes());
    let detached = keys
        .detached_armored(RELEASE.as_bytes(), SystemTime::now())
        .unwrap();
    let text = std::str::from_utf8(&detached).unwrap();
    assert!(
        text.starts_with("-----BEGIN PGP SIGNATURE-----\n"),
        "{text}"
    );
    assert!(text.ends_with("\n-----END PGP SIGNATURE-----\n"), "{text}");
    let sig = s.write("Release.gpg", &detached);

    let out = s.gpgv(&keyring, &[&sig, &release]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        validsig_digest(&out, &keys.fingerprints()[0]).as_deref(),
        Some("10")
    );
    let out = s.sqv(&keyring, &sig, &release);
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn other_key_and_tampered_body_are_refused() {
    if !tools() {
        return;
    }
    let s = Scratch::new();
    let keys = SigningKeys::generate("umc test <umc@example.org>").unwrap();
    let other = SigningKeys::generate("someone else <else@example.org>").unwrap();
    let keyring = s.write("keyring.gpg", &keys.public_keyring_binary().unwrap());
    let other_keyring = s.write("other.gpg", &other.public_keyring_binary().unwrap());

    let inrelease = keys
        .clearsign(RELEASE.as_bytes(), SystemTime::now())
        .unwrap();
    let (content, signature) = apt_split(&inrelease).unwrap();
    let inrelease_path = s.write("InRelease", &inrelease);
    let data = s.write("apt.data", &content);
    let sig = s.write("apt.sig", &signature);
    let release = s.write("Release", RELEASE.as_bytes());
    let release_gpg = s.write(
        "Release.gpg",
        &keys
            .detached_armored(RELEASE.as_bytes(), SystemTime::now())
            .unwrap(),
    );

    // Sanity: all of these verify with the right keyring.
    assert!(s.gpgv(&keyring, &[&inrelease_path]).status.success());
    assert!(s.sqv(&keyring, &sig, &data).status.success());
    assert!(s.gpgv(&keyring, &[&release_gpg, &release]).status.success());
    assert!(s.sqv(&keyring, &release_gpg, &release).status.success());

    // Another key's keyring.
    let out = s.gpgv(&other_keyring, &[&inrelease_path]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        stdout(&out).contains("[GNUPG:] NO_PUBKEY "),
        "{}",
        show(&out)
    );
    assert!(!s.sqv(&other_keyring, &sig, &data).status.success());
    assert!(
        !s.gpgv(&other_keyring, &[&release_gpg, &release])
            .status
            .success()
    );
    assert!(
        !s.sqv(&other_keyring, &release_gpg, &release)
            .status
            .success()
    );

    // One byte flipped in the body ("umc" -> "umd" in the Origin line).
    let flip = |bytes: &[u8]| {
        let text = std::str::from_utf8(bytes).unwrap();
        let at = text.find("Origin: umc").unwrap() + "Origin: um".len();
        let mut bytes = bytes.to_vec();
        bytes[at] ^= 0x07;
        assert_ne!(bytes, text.as_bytes());
        bytes
    };
    let bad_inrelease = s.write("InRelease.bad", &flip(&inrelease));
    let out = s.gpgv(&keyring, &[&bad_inrelease]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("[GNUPG:] BADSIG "), "{}", show(&out));
    let (bad_content, bad_signature) = apt_split(&flip(&inrelease)).unwrap();
    assert_eq!(bad_signature, signature);
    let bad_data = s.write("apt.data.bad", &bad_content);
    assert!(!s.sqv(&keyring, &sig, &bad_data).status.success());
    let bad_release = s.write("Release.bad", &flip(RELEASE.as_bytes()));
    assert!(
        !s.gpgv(&keyring, &[&release_gpg, &bad_release])
            .status
            .success()
    );
    assert!(!s.sqv(&keyring, &release_gpg, &bad_release).status.success());
}

#[test]
fn two_keys_sign_and_either_keyring_verifies() {
    if !tools() {
        return;
    }
    let s = Scratch::new();
    let old = SigningKeys::generate_at(
        "umc old <umc@example.org>",
        SystemTime::now() - Duration::from_secs(86_400 * 30),
    )
    .unwrap();
    let new = SigningKeys::generate("umc new <umc@example.org>").unwrap();
    let old_fp = old.fingerprints()[0].clone();
    let new_fp = new.fingerprints()[0].clone();

    // Operators rotate by concatenating armored files, in any order.
    let mut concatenated = old.to_armored_secret().unwrap();
    concatenated.extend_from_slice(&new.to_armored_secret().unwrap());
    let both = SigningKeys::from_armored(&concatenated).unwrap();
    assert_eq!(both.fingerprints(), vec![new_fp.clone(), old_fp.clone()]);
    // Round trip through one armor block keeps both.
    let again = SigningKeys::from_armored(&both.to_armored_secret().unwrap()).unwrap();
    assert_eq!(again.fingerprints(), both.fingerprints());

    let old_ring = s.write("old.gpg", &old.public_keyring_binary().unwrap());
    let new_ring = s.write("new.gpg", &new.public_keyring_binary().unwrap());
    let both_ring = s.write("both.gpg", &both.public_keyring_binary().unwrap());

    let inrelease = both
        .clearsign(RELEASE.as_bytes(), SystemTime::now())
        .unwrap();
    assert_clearsigned_shape(&inrelease);
    let inrelease_path = s.write("InRelease", &inrelease);
    let (content, signature) = apt_split(&inrelease).unwrap();
    let data = s.write("apt.data", &content);
    let sig = s.write("apt.sig", &signature);
    let release = s.write("Release", RELEASE.as_bytes());
    let release_gpg = s.write(
        "Release.gpg",
        &both
            .detached_armored(RELEASE.as_bytes(), SystemTime::now())
            .unwrap(),
    );

    // One signature packet per key, each from its key.
    for file in [&sig, &release_gpg] {
        let packets = stdout(&s.gpg(&["--list-packets"], file));
        assert_eq!(
            packets.matches(":signature packet:").count(),
            2,
            "{packets}"
        );
        assert!(packets.contains(&old_fp[24..]), "{packets}");
        assert!(packets.contains(&new_fp[24..]), "{packets}");
    }

    for (ring, fp) in [(&old_ring, &old_fp), (&new_ring, &new_fp)] {
        let out = s.gpgv(ring, &[&inrelease_path]);
        assert!(apt_accepts_gpgv(&out, fp), "{}", show(&out));
        let out = s.gpgv(ring, &[&sig, &data]);
        assert!(apt_accepts_gpgv(&out, fp), "{}", show(&out));
        let out = s.gpgv(ring, &[&release_gpg, &release]);
        assert!(apt_accepts_gpgv(&out, fp), "{}", show(&out));

        let out = s.sqv(ring, &sig, &data);
        assert!(out.status.success(), "{}", show(&out));
        assert_eq!(stdout(&out).trim(), fp.as_str());
        let out = s.sqv(ring, &release_gpg, &release);
        assert!(out.status.success(), "{}", show(&out));
    }

    // With both keys present everything is plainly good.
    let out = s.gpgv(&both_ring, &[&inrelease_path]);
    assert!(out.status.success(), "{}", show(&out));
    let out = s.sqv(&both_ring, &sig, &data);
    assert!(out.status.success(), "{}", show(&out));
    let out = Command::new("sqv")
        .arg("--signatures")
        .arg("2")
        .arg("--keyring")
        .arg(&both_ring)
        .arg(&sig)
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
}

/// Parses `gpg --list-packets` output into (packet header, body lines).
fn parse_packets(listing: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in listing.lines() {
        if line.starts_with('#') {
            // "# off=.. ctb=.." position comments precede each packet.
            continue;
        } else if line.starts_with(':') {
            out.push((line.to_owned(), Vec::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push(line.trim().to_owned());
        }
    }
    out
}

#[test]
fn key_and_signature_packets_are_v4_ed25519_sha512() {
    if !tools() {
        return;
    }
    let s = Scratch::new();
    let keys = SigningKeys::generate("umc test <umc@example.org>").unwrap();
    let keyring = s.write("keyring.gpg", &keys.public_keyring_binary().unwrap());
    let listing = stdout(&s.gpg(&["--list-packets"], &keyring));
    let packets = parse_packets(&listing);

    let keys_found: Vec<_> = packets
        .iter()
        .filter(|(h, _)| h.contains("key packet:"))
        .collect();
    assert!(!keys_found.is_empty(), "{listing}");
    for (header, body) in &keys_found {
        assert!(!header.contains("secret"), "{listing}");
        assert!(
            body[0].starts_with("version 4, algo 22, created ") && body[0].ends_with("expires 0"),
            "{listing}"
        );
        assert!(body.iter().any(|l| l.contains("ed25519")), "{listing}");
    }

    let sigs: Vec<_> = packets
        .iter()
        .filter(|(h, _)| h.starts_with(":signature packet: algo 22,"))
        .collect();
    assert_eq!(
        sigs.len(),
        packets
            .iter()
            .filter(|(h, _)| h.starts_with(":signature packet:"))
            .count()
    );
    assert!(sigs.len() >= 2, "{listing}"); // direct key + user id binding
    for (_, body) in &sigs {
        assert!(body[0].starts_with("version 4,"), "{listing}");
        assert!(body[1].starts_with("digest algo 10,"), "{listing}");
        // No key expiration subpacket anywhere.
        assert!(!body.iter().any(|l| l.contains("key expires")), "{listing}");
    }
    // Certify and sign on the primary key: flags 0x03.
    assert!(listing.contains("key flags: 03"), "{listing}");

    // The data signatures.
    let time = SystemTime::now();
    let inrelease = keys.clearsign(RELEASE.as_bytes(), time).unwrap();
    let (_, signature) = apt_split(&inrelease).unwrap();
    let sig = s.write("apt.sig", &signature);
    let release_gpg = s.write(
        "Release.gpg",
        &keys.detached_armored(RELEASE.as_bytes(), time).unwrap(),
    );
    for (file, class) in [(&sig, "sigclass 0x01"), (&release_gpg, "sigclass 0x00")] {
        let listing = stdout(&s.gpg(&["--list-packets"], file));
        let packets = parse_packets(&listing);
        assert_eq!(packets.len(), 1, "{listing}");
        let (header, body) = &packets[0];
        assert!(
            header.starts_with(":signature packet: algo 22,"),
            "{listing}"
        );
        assert!(body[0].starts_with("version 4,"), "{listing}");
        assert!(body[0].ends_with(class), "{listing}");
        assert!(body[1].starts_with("digest algo 10,"), "{listing}");
    }
}

/// The `created` timestamp of the first packet in a `--list-packets` listing.
fn created(listing: &str) -> u64 {
    let at = listing.find("created ").unwrap() + "created ".len();
    listing[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn signature_time_is_never_before_key_creation() {
    if !require_tool("gpg") {
        return;
    }
    let s = Scratch::new();
    let key_time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let keys = SigningKeys::generate_at("umc test <umc@example.org>", key_time).unwrap();
    let keyring = s.write("keyring.gpg", &keys.public_keyring_binary().unwrap());
    assert_eq!(
        created(&stdout(&s.gpg(&["--list-packets"], &keyring))),
        1_700_000_000
    );

    let early = key_time - Duration::from_secs(3600);
    let late = key_time + Duration::from_secs(3600);
    for (time, expected) in [(early, 1_700_000_000), (late, 1_700_003_600)] {
        let sig = s.write("Release.gpg", &keys.detached_armored(b"x\n", time).unwrap());
        assert_eq!(
            created(&stdout(&s.gpg(&["--list-packets"], &sig))),
            expected
        );
        let inrelease = keys.clearsign(b"x\n", time).unwrap();
        let (_, signature) = apt_split(&inrelease).unwrap();
        let sig = s.write("apt.sig", &signature);
        assert_eq!(
            created(&stdout(&s.gpg(&["--list-packets"], &sig))),
            expected
        );
    }
}

/// A peer fact callers must design for: sqv (apt 3.0) refuses a signature
/// dated even a few seconds after the verifying machine's clock, so the
/// `time` passed to the signing functions must not be "now" on a server whose
/// clients may lag behind. gpgv as apt runs it (`--ignore-time-conflict`)
/// accepts it.
#[test]
fn sqv_refuses_signatures_from_the_future() {
    if !tools() {
        return;
    }
    let s = Scratch::new();
    let keys = SigningKeys::generate_at(
        "umc test <umc@example.org>",
        SystemTime::now() - Duration::from_secs(3600),
    )
    .unwrap();
    let keyring = s.write("keyring.gpg", &keys.public_keyring_binary().unwrap());
    let release = s.write("Release", RELEASE.as_bytes());
    let future = SystemTime::now() + Duration::from_secs(600);
    let sig = s.write(
        "Release.gpg",
        &keys.detached_armored(RELEASE.as_bytes(), future).unwrap(),
    );
    let out = s.sqv(&keyring, &sig, &release);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(s.gpgv(&keyring, &[&sig, &release]).status.success());
    let past = s.write(
        "Release.gpg.past",
        &keys
            .detached_armored(
                RELEASE.as_bytes(),
                SystemTime::now() - Duration::from_secs(60),
            )
            .unwrap(),
    );
    assert!(s.sqv(&keyring, &past, &release).status.success());
}

#[test]
fn load_or_generate_creates_0600_then_loads_the_same_key() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let (keys, created) =
        SigningKeys::load_or_generate(dir.path(), "umc <umc@example.org>").unwrap();
    assert!(created);
    let path = dir.path().join("signing-key.asc");
    let mode = fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----\n"),
        "{text}"
    );
    // Nothing but the key file is left behind.
    let entries: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1);

    let (again, created) = SigningKeys::load_or_generate(dir.path(), "ignored").unwrap();
    assert!(!created);
    assert_eq!(again.fingerprints(), keys.fingerprints());
    assert_eq!(keys.fingerprints()[0].len(), 40);
    assert!(
        keys.fingerprints()[0]
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    );

    // A corrupt key file is an error, never silently replaced.
    fs::write(&path, b"garbage").unwrap();
    assert!(SigningKeys::load_or_generate(dir.path(), "x").is_err());
    assert_eq!(fs::read(&path).unwrap(), b"garbage");
}

#[test]
fn load_or_generate_reports_unreadable_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("does-not-exist");
    let err = SigningKeys::load_or_generate(&missing, "x").unwrap_err();
    assert!(matches!(err, SignError::Io { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with("cannot create "), "{msg}");
}

#[test]
fn public_material_has_no_secrets_and_debug_shows_only_fingerprints() {
    let keys = SigningKeys::generate("umc test <umc@example.org>").unwrap();
    let from_public = SigningKeys::from_armored(&keys.public_keyring_armored().unwrap());
    assert!(
        matches!(from_public, Err(SignError::NoSigningKey { .. })),
        "{from_public:?}"
    );
    assert!(matches!(
        SigningKeys::from_armored(b""),
        Err(SignError::NoKeys)
    ));
    let debug = format!("{keys:?}");
    assert!(debug.contains(&keys.fingerprints()[0]), "{debug}");
    assert!(debug.len() < 200, "{debug}");
}

#[test]
fn armored_keyring_parses_with_gpg_and_matches_binary() {
    if !require_tool("gpg") {
        return;
    }
    let s = Scratch::new();
    let old = SigningKeys::generate_at(
        "umc old <umc@example.org>",
        SystemTime::now() - Duration::from_secs(60),
    )
    .unwrap();
    let new = SigningKeys::generate("umc new <umc@example.org>").unwrap();
    let mut tsk = new.to_armored_secret().unwrap();
    tsk.extend_from_slice(&old.to_armored_secret().unwrap());
    let keys = SigningKeys::from_armored(&tsk).unwrap();

    let armored = keys.public_keyring_armored().unwrap();
    let text = std::str::from_utf8(&armored).unwrap();
    assert!(
        text.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----\n"),
        "{text}"
    );
    assert!(
        text.ends_with("-----END PGP PUBLIC KEY BLOCK-----\n"),
        "{text}"
    );
    // apt decodes only one block's base64 correctly.
    assert_eq!(text.matches("-----BEGIN").count(), 1);
    let asc = s.write("umc-archive-keyring.asc", &armored);

    let listing = stdout(&s.gpg(&["--with-colons", "--show-keys"], &asc));
    let fprs: Vec<_> = listing
        .lines()
        .filter_map(|l| l.strip_prefix("fpr:::::::::"))
        .map(|l| l.trim_end_matches(':'))
        .collect();
    assert_eq!(fprs, keys.fingerprints(), "{listing}");
    assert!(listing.contains("umc new <umc@example.org>"), "{listing}");

    let dearmored = s.gpg(&["--dearmor", "--output", "-"], &asc).stdout;
    assert_eq!(dearmored, keys.public_keyring_binary().unwrap());
    // Binary keyrings start with a public key packet tag apt recognizes.
    assert!(
        matches!(dearmored[0], 0x98 | 0x99 | 0xc6),
        "{:#x}",
        dearmored[0]
    );
}
