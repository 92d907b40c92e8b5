//! umcd over HTTPS, checked by real peers: curl and openssl verify the chain, the protocol
//! versions and what is not offered; stock apt-get fetches a node's repository over https
//! trusting umcd's CA for that host alone; umc-admin trusts `UMC_CA`, a pin or umcd's data
//! dir and refuses anything else with exit 3; certificates reload without dropping
//! connections; and bad certificate files stop umcd at start with a message naming the file.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Apt, Server, UMC_ADMIN, UMCD, mode, require_tool, show};

const HOST: &str = "web1.example.com";

/// umcd with `--tls on` and its own CA, on a fresh data dir.
fn start_auto(extra: &[&str]) -> (tempfile::TempDir, Server) {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let mut args = vec!["--tls", "on"];
    args.extend_from_slice(extra);
    let s = Server::start_in_with(&data, &args);
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    (tmp, s)
}

fn ca_of(s: &Server) -> PathBuf {
    s.data.join("tls/ca.pem")
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl")
}

fn openssl(args: &[&str], stdin: &[u8]) -> Output {
    let mut c = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl");
    let mut input = c.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
        // s_client acts on stdin's end: give the handshake time before closing it.
        std::thread::sleep(Duration::from_millis(700));
    });
    let out = c.wait_with_output().expect("openssl output");
    writer.join().expect("writer");
    out
}

fn authority(s: &Server) -> String {
    s.url.trim_start_matches("https://").to_string()
}

#[test]
fn curl_and_openssl_verify_the_auto_ca_and_see_tls_1_2_and_1_3_only() {
    if !require_tool("curl") || !require_tool("openssl") {
        return;
    }
    let (_tmp, s) = start_auto(&[]);
    let ca = ca_of(&s).display().to_string();
    assert_eq!(
        mode(&s.data.join("tls/ca.key")),
        0o600,
        "the CA key is private"
    );
    assert_eq!(mode(&s.data.join("tls/server.pem")), 0o600);

    // The chain verifies against the CA alone, for 127.0.0.1 and localhost; HSTS is sent.
    let healthz = format!("{}/healthz", s.url);
    let out = curl(&["-f", "-D", "-", "--cacert", &ca, &healthz]);
    assert!(out.status.success(), "{}", show(&out));
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(
        head.contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );
    let port = s.url.rsplit(':').next().expect("port");
    let out = curl(&[
        "-f",
        "--cacert",
        &ca,
        &format!("https://localhost:{port}/healthz"),
    ]);
    assert!(out.status.success(), "localhost: {}", show(&out));
    // Without the CA (the system's roots only), curl refuses: exit 60.
    let out = curl(&["-f", &healthz]);
    assert_eq!(out.status.code(), Some(60), "{}", show(&out));

    let out = openssl(
        &[
            "s_client",
            "-connect",
            &authority(&s),
            "-CAfile",
            &ca,
            "-tls1_3",
        ],
        b"",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    assert!(text.contains("TLSv1.3"), "{text}");

    // TLS 1.2 works, without compression; a renegotiation is refused.
    let out = openssl(
        &[
            "s_client",
            "-connect",
            &authority(&s),
            "-CAfile",
            &ca,
            "-tls1_2",
        ],
        b"R\n",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("Protocol  : TLSv1.2"), "{text}");
    assert!(text.contains("Compression: NONE"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    assert!(
        err.contains("no renegotiation"),
        "a renegotiation must be refused:\n{text}\n{err}"
    );

    // TLS 1.1 and 1.0 are not offered.
    for old in ["-tls1_1", "-tls1"] {
        let out = openssl(
            &[
                "s_client",
                "-connect",
                &authority(&s),
                "-CAfile",
                &ca,
                old,
                "-cipher",
                "DEFAULT@SECLEVEL=0",
            ],
            b"",
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        // The hello went out and umcd answered it with a handshake_failure alert: the
        // refusal is the server's, not an openssl client that would not offer the version.
        assert!(
            !out.status.success()
                && text.contains("Cipher is (NONE)")
                && err.contains("alert handshake failure"),
            "{old} must be refused by umcd:\n{text}\n{err}"
        );
    }
}

/// What `umcd` printed after "listening": the certificate pin.
fn printed_pin(s: &Server) -> String {
    s.pin.clone().expect("umcd printed a pin")
}

#[test]
fn the_printed_pin_is_what_curl_pins() {
    if !require_tool("curl") {
        return;
    }
    let (_tmp, s) = start_auto(&[]);
    let pin = printed_pin(&s);
    assert!(pin.starts_with("sha256//"), "{pin}");
    let ca = ca_of(&s).display().to_string();
    let healthz = format!("{}/healthz", s.url);
    let out = curl(&["-f", "--cacert", &ca, "--pinnedpubkey", &pin, &healthz]);
    assert!(out.status.success(), "{}", show(&out));
    let wrong = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let out = curl(&["-f", "--cacert", &ca, "--pinnedpubkey", wrong, &healthz]);
    assert_eq!(out.status.code(), Some(90), "a wrong pin: {}", show(&out));
}

/// Stock apt-get fetches and installs a node's packages over https, trusting umcd's CA only
/// through the apt configuration umc-node ships (`Acquire::https::<host>::CaInfo`).
#[test]
fn apt_fetches_over_https_trusting_the_ca_umc_node_ships() {
    if !require_tool("apt-get") || !require_tool("curl") || !require_tool("dpkg-deb") {
        return;
    }
    let (_tmp, s) = start_auto(&[]);
    let ca = ca_of(&s);
    s.admin_ok(&["node", "add", HOST]);
    s.admin_ok(&["node", "set", HOST, "--url", &s.url]);
    let token = node_token(&s);
    let keyring = get(&s, "/umc-archive-keyring.gpg");

    // Without the CA, apt refuses the server.
    let apt = Apt::new(&s.url, HOST, &token, &keyring);
    let out = apt.get(&["update"]);
    assert!(
        !out.status.success(),
        "apt trusted an unknown CA: {}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("certificate")
            || String::from_utf8_lossy(&out.stderr).contains("certificate"),
        "{}",
        show(&out)
    );

    // With what umc-node ships (its CA file and apt.conf.d entry, pointed into the sandbox),
    // update and download work.
    let etc = apt.dir.path().join("etc/apt");
    let ca_copy = apt.dir.path().join("umc-ca.pem");
    std::fs::copy(&ca, &ca_copy).expect("ca");
    let conf = format!(
        "Acquire::https::127.0.0.1::CaInfo \"{}\";\n",
        ca_copy.display()
    );
    std::fs::write(etc.join("apt.conf.d/60umc-tls"), &conf).expect("conf");
    apt.update_ok();
    let debs = apt.download(&["umc-node"]);
    let node_deb = debs.iter().find(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("umc-node_"))
    });
    let node_deb = node_deb.expect("umc-node downloaded");
    let x = apt.dir.path().join("x");
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(node_deb)
        .arg(&x)
        .output()
        .expect("dpkg-deb");
    assert!(out.status.success(), "{}", show(&out));
    let shipped_ca = std::fs::read(x.join("usr/share/umc/ca.pem")).expect("umc-node ships the CA");
    assert_eq!(shipped_ca, std::fs::read(&ca).expect("ca"));
    let shipped_conf =
        std::fs::read_to_string(x.join("etc/apt/apt.conf.d/60umc-tls")).expect("tls conf");
    assert!(
        shipped_conf.contains("Acquire::https::127.0.0.1::CaInfo \"/usr/share/umc/ca.pem\";"),
        "{shipped_conf}"
    );
    let node_conf = std::fs::read_to_string(x.join("usr/share/umc/node.conf")).expect("node.conf");
    assert!(
        node_conf.contains("UMC_CA=/usr/share/umc/ca.pem"),
        "{node_conf}"
    );
    // The CA is trusted for umcd's host only: the system trust store is not touched.
    assert!(!x.join("usr/local/share/ca-certificates").exists());
    assert!(!x.join("etc/ssl").exists());
}

fn get(s: &Server, path: &str) -> Vec<u8> {
    let out = curl(&[
        "-f",
        "--cacert",
        &ca_of(s).display().to_string(),
        &format!("{}{path}", s.url),
    ]);
    assert!(out.status.success(), "GET {path}: {}", show(&out));
    out.stdout
}

fn node_token(s: &Server) -> String {
    let out = s.admin_ok(&["node", "token", HOST, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        v["ca"].as_str().map(str::as_bytes),
        Some(std::fs::read(ca_of(s)).expect("ca").as_slice()),
        "the token answer carries the CA for the enrollment line"
    );
    v["token"].as_str().expect("token").to_string()
}

// ---------------------------------------------------------------------------------------------
// umc-admin over https: whom it trusts, and how it refuses.

/// umc-admin against `s`, run in `dir` with no `UMC_CA`, `UMC_TLS_PIN` or `UMC_DATA` but
/// what `env` sets.
fn admin_in(s: &Server, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(UMC_ADMIN)
        .args(args)
        .current_dir(dir)
        .env("UMC_URL", &s.url)
        .env("UMC_TOKEN", s.token())
        .env_remove("UMC_CA")
        .env_remove("UMC_TLS_PIN")
        .env_remove("UMC_DATA")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run umc-admin")
}

/// Exit 3, and stderr is `umc-admin: <message>`.
fn refused(out: &Output, message: &str) {
    assert_eq!(out.status.code(), Some(3), "{}", show(out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!("umc-admin: {message}"),
        "{}",
        show(out)
    );
}

#[test]
fn umc_admin_trusts_umc_ca_the_printed_pin_or_umcd_s_data_dir_and_refuses_the_rest() {
    let (_tmp, s) = start_auto(&[]);
    let host = authority(&s);
    // UMC_CA (what `Server::admin` sets over https).
    assert!(s.admin_ok(&["status"]).contains("HOST"));
    s.admin_ok(&["node", "add", HOST]);
    assert!(s.admin_ok(&["node", "list"]).contains(HOST));

    let empty = tempfile::tempdir().expect("tmp");
    let listed = |out: Output| {
        assert!(out.status.success(), "{}", show(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains(HOST));
    };
    // The pin umcd printed, with no CA at all; it comes first, so a UMC_CA beside it is not
    // even read.
    let pin = printed_pin(&s);
    listed(admin_in(
        &s,
        empty.path(),
        &[("UMC_TLS_PIN", &pin)],
        &["node", "list"],
    ));
    let both = [
        ("UMC_TLS_PIN", pin.as_str()),
        ("UMC_CA", "/nonexistent.pem"),
    ];
    listed(admin_in(&s, empty.path(), &both, &["node", "list"]));
    // umcd's data dir: UMC_DATA, or ./umc-data where umc-admin runs.
    let data = s.data.display().to_string();
    listed(admin_in(
        &s,
        empty.path(),
        &[("UMC_DATA", &data)],
        &["node", "list"],
    ));
    let beside = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(beside.path().join("umc-data/tls")).expect("mkdir");
    std::fs::copy(ca_of(&s), beside.path().join("umc-data/tls/ca.pem")).expect("copy");
    listed(admin_in(&s, beside.path(), &[], &["node", "list"]));

    // A wrong pin.
    let wrong = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    refused(
        &admin_in(
            &s,
            empty.path(),
            &[("UMC_TLS_PIN", wrong)],
            &["node", "list"],
        ),
        &format!("the certificate of {host} does not match UMC_TLS_PIN {wrong}"),
    );
    // Neither a CA nor a pin: the system's CAs do not know umcd's.
    refused(
        &admin_in(&s, empty.path(), &[], &["node", "list"]),
        &format!(
            "the certificate of {host} is not signed by a CA in the system's trusted CAs; \
             set UMC_CA to umcd's tls/ca.pem, or UMC_TLS_PIN to the pin umcd printed"
        ),
    );
    // Another umcd's CA.
    let (_tmp2, other) = start_auto(&[]);
    let other_ca = ca_of(&other).display().to_string();
    refused(
        &admin_in(
            &s,
            empty.path(),
            &[("UMC_CA", &other_ca)],
            &["node", "add", "x.example.com"],
        ),
        &format!("the certificate of {host} is not signed by a CA in UMC_CA ({other_ca})"),
    );
    assert!(!s.admin_ok(&["node", "list"]).contains("x.example.com"));
}

#[test]
fn umc_admin_refuses_a_certificate_that_does_not_name_the_host_it_reached() {
    if !require_tool("openssl") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (cert, key) = openssl_cert(tmp.path(), "named", "DNS:umc.example.com", "30");
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let s = Server::start_in_with(
        &tmp.path().join("data"),
        &[
            "--tls-cert",
            &c,
            "--tls-key",
            &k,
            "--tls-name",
            "umc.example.com",
        ],
    );
    refused(
        &admin_in(&s, tmp.path(), &[("UMC_CA", &c)], &["node", "list"]),
        &format!(
            "the certificate of {} does not name 127.0.0.1, though signed by a CA in UMC_CA ({c})",
            authority(&s)
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// The admin's own certificate files: reload, and refusal of bad ones.

/// A self-signed certificate and key for 127.0.0.1 made by openssl, in `dir` as `<name>.pem`
/// and `<name>.key`.
fn openssl_cert(dir: &Path, name: &str, san: &str, days: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", days, "-subj", &format!("/CN={name}")])
        .args(["-addext", &format!("subjectAltName={san}")])
        // An end-entity certificate (rustls refuses a CA as a server's certificate).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl req");
    assert!(out.status.success(), "{}", show(&out));
    (cert, key)
}

/// The SHA-256 of the DER certificate a fresh handshake gets.
fn served_fingerprint(s: &Server) -> String {
    let out = openssl(&["s_client", "-connect", &authority(s)], b"");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let pem: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .take_while(|l| !l.starts_with("-----END CERTIFICATE"))
        .chain(std::iter::once("-----END CERTIFICATE-----"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut c = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl x509");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(pem.as_bytes())
        .expect("write");
    let out = c.wait_with_output().expect("x509");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn file_fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("openssl x509");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A TLS client (rustls) that trusts `roots` and keeps one connection open.
fn keep_alive_client(
    s: &Server,
    roots: &[&Path],
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        for c in CertificateDer::pem_file_iter(r).expect("pem") {
            store.add(c.expect("cert")).expect("root");
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(authority(s)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    rustls::StreamOwned::new(conn, tcp)
}

/// One keep-alive request on `c`; returns the status line.
fn request(c: &mut impl ReadWrite) -> String {
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("write");
    let mut r = BufReader::new(c);
    let mut status = String::new();
    r.read_line(&mut status).expect("status");
    let mut len = 0usize;
    loop {
        let mut l = String::new();
        r.read_line(&mut l).expect("header");
        if l == "\r\n" || l.is_empty() {
            break;
        }
        if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().expect("length");
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).expect("body");
    status.trim().to_string()
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

#[test]
fn a_swapped_certificate_serves_new_handshakes_and_open_connections_keep_working() {
    if !require_tool("openssl") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (cert, key) = openssl_cert(tmp.path(), "first", "IP:127.0.0.1", "30");
    let (cert2, key2) = openssl_cert(tmp.path(), "second", "IP:127.0.0.1", "30");
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let s = Server::start_in_with(
        &tmp.path().join("data"),
        &["--tls-cert", &c, "--tls-key", &k, "--tls-name", "127.0.0.1"],
    );
    assert_eq!(served_fingerprint(&s), file_fingerprint(&cert));
    let mut open = keep_alive_client(&s, &[&cert, &cert2]);
    assert_eq!(request(&mut open), "HTTP/1.1 200 OK");

    // Replace both files (key first: a half-swapped pair is refused and the old one stays),
    // then wait for the watcher (bounded).
    std::fs::copy(&key2, &key).expect("key");
    std::fs::copy(&cert2, &cert).expect("cert");
    let want = file_fingerprint(&cert2);
    let until = Instant::now() + Duration::from_secs(15);
    while served_fingerprint(&s) != want {
        assert!(
            Instant::now() < until,
            "umcd did not reload the swapped certificate"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The connection opened before the swap still works.
    assert_eq!(request(&mut open), "HTTP/1.1 200 OK");

    // SIGHUP reloads too (the files changed back under their old mtimes' noses).
    let (cert3, key3) = openssl_cert(tmp.path(), "third", "IP:127.0.0.1", "30");
    std::fs::copy(&key3, &key).expect("key");
    std::fs::copy(&cert3, &cert).expect("cert");
    let status = Command::new("kill")
        .args(["-HUP", &s.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let want = file_fingerprint(&cert3);
    let until = Instant::now() + Duration::from_secs(15);
    while served_fingerprint(&s) != want {
        assert!(Instant::now() < until, "umcd did not reload on SIGHUP");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A bad new file is refused and the served certificate stays.
    std::fs::write(&cert, "not a certificate").expect("garbage");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(served_fingerprint(&s), want);
    assert_eq!(
        request(&mut keep_alive_client(&s, &[&cert3])),
        "HTTP/1.1 200 OK"
    );
}

/// umcd run with `args` must exit non-zero, its message naming `file` and `problem`.
fn refuses(data: &Path, args: &[&str], file: &Path, problem: &str) {
    let out = Command::new(UMCD)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("umcd");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "umcd started with {args:?}");
    assert!(
        err.contains(&file.display().to_string()) && err.contains(problem),
        "{args:?}: expected {problem:?} about {}:\n{err}",
        file.display()
    );
}

#[test]
fn bad_certificate_files_stop_umcd_with_a_message_naming_the_file() {
    if !require_tool("openssl") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let data = d.join("data");
    let (cert, key) = openssl_cert(d, "good", "DNS:umc.example.com,IP:127.0.0.1", "30");
    let (_, other_key) = openssl_cert(d, "other", "IP:127.0.0.1", "30");
    let s = |p: &Path| p.display().to_string();

    let missing = d.join("missing.pem");
    refuses(
        &data,
        &["--tls-cert", &s(&missing), "--tls-key", &s(&key)],
        &missing,
        "cannot read it",
    );
    let garbage = d.join("garbage.pem");
    std::fs::write(&garbage, "hello").expect("write");
    refuses(
        &data,
        &["--tls-cert", &s(&garbage), "--tls-key", &s(&key)],
        &garbage,
        "holds no CERTIFICATE",
    );
    refuses(
        &data,
        &["--tls-cert", &s(&cert), "--tls-key", &s(&other_key)],
        &other_key,
        "does not match",
    );
    refuses(
        &data,
        &[
            "--tls-cert",
            &s(&cert),
            "--tls-key",
            &s(&key),
            "--tls-name",
            "other.example.com",
        ],
        &cert,
        "does not cover the name \"other.example.com\"",
    );
    let unreadable = d.join("unreadable.key");
    std::fs::write(&unreadable, "x").expect("write");
    refuses(
        &data,
        &["--tls-cert", &s(&cert), "--tls-key", &s(&unreadable)],
        &unreadable,
        "holds no usable private key",
    );

    // An expired certificate (made with rcgen: openssl 3.0's req cannot backdate).
    let expired = d.join("expired.pem");
    let expired_key = d.join("expired.key");
    let k = rcgen::KeyPair::generate().expect("key");
    let mut p = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let c = p.self_signed(&k).expect("cert");
    std::fs::write(&expired, c.pem()).expect("write");
    std::fs::write(&expired_key, k.serialize_pem()).expect("write");
    refuses(
        &data,
        &["--tls-cert", &s(&expired), "--tls-key", &s(&expired_key)],
        &expired,
        "expired",
    );

    // A refused certificate of the admin's never falls back to umcd's own CA.
    assert!(!data.join("tls").exists());
}

#[test]
fn the_auto_ca_is_made_once_and_reissues_for_new_names_under_the_same_ca() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let mut s = Server::start_in_with(&data, &["--tls", "on", "--tls-name", "127.0.0.1"]);
    let ca = std::fs::read(data.join("tls/ca.pem")).expect("ca");
    let server = std::fs::read(data.join("tls/server.pem")).expect("server");
    s.stop();
    let mut s = Server::start_in_with(&data, &["--tls", "on", "--tls-name", "127.0.0.1"]);
    assert_eq!(
        std::fs::read(data.join("tls/server.pem")).expect("server"),
        server,
        "nothing to do"
    );
    s.stop();
    let s = Server::start_in_with(
        &data,
        &[
            "--tls",
            "on",
            "--tls-name",
            "127.0.0.1",
            "--tls-name",
            "umc.example.com",
        ],
    );
    assert_eq!(
        std::fs::read(data.join("tls/ca.pem")).expect("ca"),
        ca,
        "the same CA"
    );
    assert_ne!(
        std::fs::read(data.join("tls/server.pem")).expect("server"),
        server
    );
    if require_tool("curl") {
        let port = s.url.rsplit(':').next().expect("port");
        let out = curl(&[
            "-f",
            "--cacert",
            &data.join("tls/ca.pem").display().to_string(),
            "--resolve",
            &format!("umc.example.com:{port}:127.0.0.1"),
            &format!("https://umc.example.com:{port}/healthz"),
        ]);
        assert!(out.status.success(), "the new name: {}", show(&out));
    }
}
