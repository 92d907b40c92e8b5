//! Key rotation through umcd and umc-admin, checked with the real verifiers: an InRelease
//! signed by the old and the new key verifies with gpgv and sqv given either key alone; the
//! served keyring holds both; `key retire` waits for active nodes' confirmations; `key import`
//! refuses what apt 3 would refuse (keys made with gpg itself).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::console::generation;
use common::verify::{gpgv_ok, keyring_fingerprints, sqv_ok};
use common::{Server, mode, require_tool, show};

const HOST: &str = "web1.example.com";

fn inrelease(s: &Server) -> Vec<u8> {
    let token = s.node_token(HOST);
    let r = s.get(
        &format!("/hosts/{HOST}/dists/umc/InRelease"),
        Some((HOST, &token)),
        &[],
    );
    assert_eq!(r.status, 200);
    r.body
}

/// A node report, as umc-cycle posts it, with `umc-node` at `node_version`.
fn report(s: &Server, node_version: &str) {
    let body = common::report::report(&[("umc-node", node_version)]);
    let r = s.post_report(HOST, (HOST, &s.node_token(HOST)), body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The served keyring, written to `dir/name`.
fn keyring_file(s: &Server, dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, s.keyring()).expect("write keyring");
    p
}

/// A private GnuPG home.
struct Gpg {
    dir: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        let dir = tempfile::tempdir().expect("tempdir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
        Gpg { dir }
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new("gpg")
            .arg("--homedir")
            .arg(self.dir.path())
            .args([
                "--batch",
                "--no-tty",
                "--passphrase",
                "",
                "--pinentry-mode",
                "loopback",
            ])
            .args(args)
            .output()
            .expect("gpg")
    }
    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        assert!(out.status.success(), "gpg {args:?}: {}", show(&out));
        out.stdout
    }
    /// A binary keyring holding only `fingerprint`, taken from `keyring`.
    fn only(&self, keyring: &Path, fingerprint: &str, out: &Path) {
        let home = Gpg::new();
        home.ok(&["--import", keyring.to_str().expect("utf8")]);
        let bytes = home.ok(&["--export", fingerprint]);
        assert!(!bytes.is_empty(), "export {fingerprint}");
        std::fs::write(out, bytes).expect("write");
    }
}

/// Signature packets in InRelease's signature block.
fn signatures(inrelease: &[u8]) -> usize {
    let g = Gpg::new();
    let text = String::from_utf8_lossy(inrelease).into_owned();
    let sig = text
        .split_once("-----BEGIN PGP SIGNATURE-----")
        .expect("signature block")
        .1;
    let f = g.dir.path().join("sig.asc");
    std::fs::write(&f, format!("-----BEGIN PGP SIGNATURE-----{sig}")).expect("w");
    let out = g.ok(&["--list-packets", f.to_str().expect("utf8")]);
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| l.starts_with(":signature packet:"))
        .count()
}

#[test]
fn rotate_signs_with_both_keys_and_retire_waits_for_nodes() {
    if !(require_tool("gpgv") && require_tool("sqv") && require_tool("gpg")) {
        return;
    }
    let mut s = Server::start();
    s.admin_ok(&["node", "add", HOST]);
    s.admin_ok(&["node", "enroll", HOST, "--url", &s.url]);
    let dir = tempfile::tempdir().expect("tmp");
    let g = Gpg::new();
    let ring_a = keyring_file(&s, dir.path(), "a.gpg");
    let fprs = keyring_fingerprints(&ring_a);
    assert_eq!(fprs.len(), 1, "{fprs:?}");
    let a = fprs[0].clone();
    // The node runs umc-node from before the rotation, and reports it.
    let node_before: umc::api::NodeInfo =
        serde_json::from_str(&s.admin_ok(&["node", "show", HOST, "--json"])).expect("json");
    report(&s, &format!("1.{}", node_before.generation));

    let before = generation(&s);
    let out = s.admin_ok(&["key", "rotate", "--json"]);
    let rotated: umc::api::KeyChangeResponse = serde_json::from_str(&out).expect("json");
    let b = rotated.fingerprint.clone();
    assert_ne!(a, b);
    assert_eq!(rotated.generation, before + 1);
    assert_eq!(rotated.keys.len(), 2);

    // The served keyring holds both; InRelease carries two signatures, and gpgv and sqv each
    // accept it with only A or only B.
    let both = keyring_file(&s, dir.path(), "both.gpg");
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(keyring_fingerprints(&both), want);
    let ring_b = dir.path().join("b.gpg");
    g.only(&both, &b, &ring_b);
    let ir = inrelease(&s);
    assert_eq!(signatures(&ir), 2);
    for ring in [&ring_a, &ring_b] {
        let (ok, out) = gpgv_ok(ring, &ir, dir.path());
        assert!(ok, "gpgv with {}: {out}", ring.display());
        let (ok, out) = sqv_ok(ring, &ir, dir.path());
        assert!(ok, "sqv with {}: {out}", ring.display());
    }
    // umc-node ships both keys, at a version that moved with the rotation.
    let status: umc::api::KeyStatus =
        serde_json::from_str(&s.admin_ok(&["key", "status", "--json"])).expect("json");
    assert_eq!(status.needed, format!("1.{}", rotated.generation));
    let row = &status.nodes[0];
    assert_eq!(row.host, HOST);
    assert!(row.active && !row.confirmed, "{row:?}");
    let text = s.admin_ok(&["key", "status"]);
    assert!(text.contains(HOST) && text.contains(" no "), "{text}");

    // Retiring A now would strand the node: refused, naming it.
    let out = s.admin(&["key", "retire", &a]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(HOST) && err.contains("not confirmed") && err.contains("--force"),
        "{err}"
    );
    let r = s.api(
        "POST",
        "/api/v1/keys/retire",
        Some(format!(r#"{{"fingerprint":"{a}"}}"#).as_bytes()),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(generation(&s), rotated.generation, "nothing committed");
    // An unknown key and the last key are refused too.
    let out = s.admin(&["key", "retire", &"0".repeat(40)]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));

    // --force retires it anyway, and says who was not ready.
    let out = s.admin(&["key", "retire", &a, "--force"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(HOST),
        "{}",
        show(&out)
    );
    let ir = inrelease(&s);
    assert_eq!(signatures(&ir), 1);
    let (ok, out) = gpgv_ok(&ring_b, &ir, dir.path());
    assert!(ok, "gpgv with B: {out}");
    let (ok, out) = sqv_ok(&ring_b, &ir, dir.path());
    assert!(ok, "sqv with B: {out}");
    let (ok, _) = gpgv_ok(&ring_a, &ir, dir.path());
    assert!(!ok, "A no longer signs");
    let only_b = keyring_file(&s, dir.path(), "after.gpg");
    assert_eq!(keyring_fingerprints(&only_b), vec![b.clone()]);
    let out = s.admin(&["key", "retire", &b]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the last key stays: {}",
        show(&out)
    );

    // Each step is in the log with the acting user, and moved umc-node's changelog.
    let log = s.admin_ok(&["log", "-n", "5"]);
    assert!(log.contains(&format!("signing key {b} added")), "{log}");
    assert!(log.contains(&format!("signing key {a} retired")), "{log}");
    assert!(log.contains("admin"), "{log}");

    // A confirmation lets a retire through without --force: rotate to C, the node reports
    // the umc-node that ships C, retire B.
    let c: umc::api::KeyChangeResponse =
        serde_json::from_str(&s.admin_ok(&["key", "rotate", "--json"])).expect("json");
    report(&s, &format!("1.{}", c.generation - 1));
    assert_eq!(s.admin(&["key", "retire", &b]).status.code(), Some(1));
    report(&s, &format!("1.{}", c.generation));
    let st: umc::api::KeyStatus =
        serde_json::from_str(&s.admin_ok(&["key", "status", "--json"])).expect("json");
    assert!(st.nodes[0].confirmed, "{st:?}");
    s.admin_ok(&["key", "retire", &b.to_lowercase()]);

    // The key file holds the current key set: a restart signs with C alone and commits no
    // generation of its own.
    let committed = generation(&s);
    let data = s.data.clone();
    s.stop();
    let s2 = Server::start_in(&data);
    assert_eq!(generation(&s2), committed);
    let ring = keyring_file(&s2, dir.path(), "restart.gpg");
    assert_eq!(keyring_fingerprints(&ring), vec![c.fingerprint.clone()]);
    assert_eq!(mode(&data.join("signing-key.asc")), 0o600);
    let ir = inrelease(&s2);
    let (ok, out) = sqv_ok(&ring, &ir, dir.path());
    assert!(ok, "sqv after restart: {out}");
}

/// A node that has not been seen for `stale_after_secs` does not hold retirement back.
#[test]
fn stale_nodes_do_not_block_retire() {
    let s = Server::start();
    s.admin_ok(&["node", "add", HOST]);
    s.admin_ok(&["node", "enroll", HOST, "--url", &s.url]);
    let a = s.admin_ok(&["key", "list", "--json"]);
    let a: Vec<umc::api::KeyInfo> = serde_json::from_str(&a).expect("json");
    s.admin_ok(&["key", "rotate"]);
    // Never seen: stale, not active.
    let st: umc::api::KeyStatus =
        serde_json::from_str(&s.admin_ok(&["key", "status", "--json"])).expect("json");
    assert!(!st.nodes[0].active && !st.nodes[0].confirmed, "{st:?}");
    s.admin_ok(&["key", "retire", &a[0].fingerprint]);
}

#[test]
fn import_refuses_keys_apt_3_rejects_and_accepts_a_gpg_ed25519_key() {
    if !(require_tool("gpg") && require_tool("gpgv") && require_tool("sqv")) {
        return;
    }
    let s = Server::start();
    s.admin_ok(&["node", "add", HOST]);
    let dir = tempfile::tempdir().expect("tmp");
    let import = |g: &Gpg, name: &str| -> Output {
        let path = dir.path().join(name);
        std::fs::write(&path, g.ok(&["--armor", "--export-secret-keys"])).expect("w");
        s.admin(&["key", "import", path.to_str().expect("utf8")])
    };

    // RSA-1024, as old reprepro setups have.
    let g = Gpg::new();
    g.ok(&[
        "--quick-gen-key",
        "Old <old@example.invalid>",
        "rsa1024",
        "sign",
        "never",
    ]);
    let out = import(&g, "rsa1024.asc");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1024 bits") && err.contains("2048"), "{err}");

    // SHA-1 self-signatures (gpg 2.2 still makes them on request).
    let g = Gpg::new();
    g.ok(&[
        "--cert-digest-algo",
        "SHA1",
        "--quick-gen-key",
        "Sha1 <sha1@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ]);
    let exported = dir.path().join("sha1.pub");
    std::fs::write(&exported, g.ok(&["--export"])).expect("w");
    let packets =
        String::from_utf8_lossy(&g.ok(&["--list-packets", exported.to_str().expect("utf8")]))
            .into_owned();
    assert!(
        packets.contains("digest algo 2,"),
        "gpg made a SHA-1 binding: {packets}"
    );
    let out = import(&g, "sha1.asc");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SHA1") && err.contains("sqv"), "{err}");

    // A public key only.
    let path = dir.path().join("public.asc");
    std::fs::write(&path, g.ok(&["--armor", "--export"])).expect("w");
    let out = s.admin(&["key", "import", path.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));

    // Nothing was added.
    let keys: Vec<umc::api::KeyInfo> =
        serde_json::from_str(&s.admin_ok(&["key", "list", "--json"])).expect("json");
    assert_eq!(keys.len(), 1);

    // A current gpg Ed25519 key (SHA-512 bindings) is accepted, and signs InRelease.
    let g = Gpg::new();
    g.ok(&[
        "--quick-gen-key",
        "Aptly <aptly@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ]);
    let out = import(&g, "good.asc");
    assert!(out.status.success(), "{}", show(&out));
    let keys: Vec<umc::api::KeyInfo> =
        serde_json::from_str(&s.admin_ok(&["key", "list", "--json"])).expect("json");
    assert_eq!(keys.len(), 2);
    let ring = dir.path().join("aptly.gpg");
    std::fs::write(&ring, g.ok(&["--export"])).expect("w");
    let ir = inrelease(&s);
    let (ok, out) = gpgv_ok(&ring, &ir, dir.path());
    assert!(ok, "gpgv with the imported key: {out}");
    let (ok, out) = sqv_ok(&ring, &ir, dir.path());
    assert!(ok, "sqv with the imported key: {out}");
    // Importing it twice is refused.
    let out = import(&g, "again.asc");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already"));
}
