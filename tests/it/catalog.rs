//! The upstream package catalog: verified import from a repository served on 127.0.0.1
//! (tampering, bad input, atomic replacement), edit-time checks, and the real Debian mirror
//! this machine's own apt uses.

use crate::common;

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::console::generation;
use common::{FileServer, Server, require, require_tool, show};
use sha2::{Digest, Sha256};
use umc::api::{CatalogHit, CatalogInfo, CatalogPackage};
use umc::sign::SigningKeys;

const SUITE: &str = "testy";

const PACKAGES: &str = "\
Package: nginx
Version: 1.22.1-9
Section: httpd
Priority: optional
Provides: httpd, httpd-cgi
Description: small, powerful, scalable web/proxy server
 Nginx (\"engine X\") is a high-performance web and reverse proxy server.

Package: nginx-light
Version: 1.22.1-9
Section: httpd
Priority: optional
Description: nginx web/proxy server (basic version)

Package: apache2
Version: 2.4.62-1
Section: httpd
Priority: optional
Provides: httpd, httpd-cgi
Description: Apache HTTP Server

Package: postfix
Version: 3.7.11-0
Section: mail
Priority: optional
Provides: mail-transport-agent, default-mta (= 3.7)
Description: High-performance mail transport agent

Package: mawk
Version: 1.3.4.20200120-3.1
Section: interpreters
Priority: required
Description: Pattern scanning and text processing language

Package: less
Version: 590-2
Section: text
Priority: important
Description: pager program similar to more
";

fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(data).expect("xz");
    e.finish().expect("xz")
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn keys(who: &str) -> SigningKeys {
    SigningKeys::generate(&format!("{who} <{who}@example.invalid>")).expect("key")
}

/// A repository on a file server publishing [`PACKAGES`] under a URL, signed by a key, and a
/// umcd with that key's keyring file in its data directory: (file server, key, umcd, keyring
/// path, URL).
fn mirror() -> (FileServer, SigningKeys, Server, String, String) {
    let fs = FileServer::start();
    let k = keys("archive");
    publish(&fs, &k, PACKAGES.as_bytes(), None);
    let s = Server::start();
    let keyring = write_keyring(&s.data, &k);
    let url = format!("{}/debian", fs.url);
    (fs, k, s, keyring, url)
}

/// Publishes `packages` as suite `testy` under `/debian` on `fs`, signed by `signer`. The
/// served Packages.xz is `served_xz` when given (a tampered copy), else the real one.
fn publish(fs: &FileServer, signer: &SigningKeys, packages: &[u8], served_xz: Option<Vec<u8>>) {
    publish_with(fs, signer, packages, served_xz, "");
}

/// [`publish`] with `extra` Release fields (each line ending in a newline).
fn publish_with(
    fs: &FileServer,
    signer: &SigningKeys,
    packages: &[u8],
    served_xz: Option<Vec<u8>>,
    extra: &str,
) {
    let packed = xz(packages);
    let release = format!(
        "Origin: Test\nLabel: Test\nSuite: stable\nCodename: {SUITE}\nDate: Wed, 25 Nov 2026 10:00:00 UTC\n{extra}\
         Architectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages\n {} {} main/binary-amd64/Packages.xz\n",
        sha(packages),
        packages.len(),
        sha(&packed),
        packed.len()
    );
    let signed = signer
        .clearsign(
            release.as_bytes(),
            SystemTime::now() - Duration::from_secs(120),
        )
        .expect("clearsign");
    fs.put(&format!("/debian/dists/{SUITE}/InRelease"), signed);
    fs.put(
        &format!("/debian/dists/{SUITE}/main/binary-amd64/Packages.xz"),
        served_xz.unwrap_or(packed),
    );
    fs.put(
        &format!("/debian/dists/{SUITE}/main/binary-amd64/Packages"),
        packages.to_vec(),
    );
}

fn write_keyring(dir: &Path, k: &SigningKeys) -> String {
    let path = dir.join("keyring.gpg");
    std::fs::write(&path, k.public_keyring_binary().expect("keyring")).expect("write keyring");
    path.display().to_string()
}

/// `catalog import` from the test's mirror, which listens on 127.0.0.1: `--allow-private`.
fn import(s: &Server, name: &str, url: &str, keyring: &str) -> std::process::Output {
    s.admin(&[
        "catalog",
        "import",
        name,
        "--url",
        url,
        "--suite",
        SUITE,
        "--keyring",
        keyring,
        "--allow-private",
    ])
}

fn catalogs(s: &Server) -> Vec<CatalogInfo> {
    serde_json::from_str(&s.admin_ok(&["catalog", "list", "--json"])).expect("list json")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Fails with `want` in the message, exit code 1 (rejected), and the catalog list unchanged.
fn rejected(s: &Server, out: &std::process::Output, want: &str, before: &[CatalogInfo]) {
    assert_eq!(out.status.code(), Some(1), "{}", show(out));
    assert!(stderr(out).contains(want), "want '{want}': {}", show(out));
    let after = catalogs(s);
    assert_eq!(
        serde_json::to_string(&after).unwrap(),
        serde_json::to_string(before).unwrap(),
        "catalog changed by a failed import"
    );
}

#[test]
fn verified_import_browse_and_edit_checks() {
    let (_fs, _, s, keyring, url) = mirror();

    // With no catalog, nothing is checked.
    s.admin_ok(&["task", "add", "web"]);
    s.admin_ok(&["task", "depend", "web", "not-in-any-catalog"]);
    let g = generation(&s);

    let out = import(&s, "testy", &url, &keyring);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("6 packages"),
        "{}",
        show(&out)
    );
    assert_eq!(
        generation(&s),
        g,
        "an import must not bump the model generation"
    );
    let cats = catalogs(&s);
    assert_eq!(cats.len(), 1);
    assert_eq!((cats[0].packages, cats[0].verified), (6, true));
    assert_eq!(cats[0].suite, SUITE);

    let hits: Vec<CatalogHit> =
        serde_json::from_str(&s.admin_ok(&["catalog", "search", "nginx", "--json"])).unwrap();
    let names: Vec<&str> = hits.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["nginx", "nginx-light"]);
    let hits: Vec<CatalogHit> = serde_json::from_str(
        &s.admin_ok(&["catalog", "search", "server", "--limit", "1", "--json"]),
    )
    .unwrap();
    assert_eq!(hits.len(), 1);
    assert!(s.admin_ok(&["catalog", "search", "pager"]).contains("less"));

    let shown: Vec<CatalogPackage> =
        serde_json::from_str(&s.admin_ok(&["catalog", "show", "nginx", "--json"])).unwrap();
    assert_eq!(shown[0].version.as_deref(), Some("1.22.1-9"));
    assert_eq!(shown[0].section, "httpd");
    let virt = s.admin_ok(&["catalog", "show", "mail-transport-agent"]);
    assert!(virt.contains("provided by: postfix"), "{virt}");
    let out = s.admin(&["catalog", "show", "no-such-package"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));

    // Typos are rejected with suggestions; --force overrides.
    let out = s.admin(&["task", "depend", "web", "ngnix"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("task 'web': unknown package 'ngnix' (did you mean 'nginx'"),
        "{}",
        show(&out)
    );
    let out = s.admin(&["task", "depend", "web", "mawk | gwak"]);
    assert!(
        stderr(&out).contains("unknown package 'gwak'"),
        "{}",
        show(&out)
    );
    let out = s.admin(&["task", "remove", "web", "apache3"]);
    assert!(
        stderr(&out).contains("did you mean 'apache2'"),
        "{}",
        show(&out)
    );
    assert_eq!(generation(&s), g, "a rejected edit wrote something");
    s.admin_ok(&["task", "remove", "web", "apache3", "--force"]);
    s.admin_ok(&["task", "depend", "web", "ngnix", "--force"]);
    // Virtual packages count, and a satisfied constraint is silent.
    let out = s.admin(&[
        "task",
        "depend",
        "web",
        "mail-transport-agent",
        "nginx (>= 1.22)",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(!stderr(&out).contains("warning"), "{}", show(&out));
    // A constraint no catalog version satisfies is accepted with a warning.
    let out = s.admin(&["task", "depend", "web", "nginx-light (>= 2.0)"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stderr(&out)
            .contains("warning: task 'web': no catalog version satisfies 'nginx-light (>= 2.0)'"),
        "{}",
        show(&out)
    );
    let out = s.admin(&["task", "depend", "web", "default-mta (>= 3.8)"]);
    assert!(stderr(&out).contains("warning"), "{}", show(&out));

    // Removing the last catalog turns the checks off.
    s.admin_ok(&["catalog", "rm", "testy"]);
    assert!(catalogs(&s).is_empty());
    s.admin_ok(&["task", "depend", "web", "ngnix2"]);
    assert!(s.admin_ok(&["catalog", "search", "nginx"]).lines().count() <= 1);
}

#[test]
fn tampered_index_or_foreign_signature_is_rejected_and_old_catalog_stays() {
    let (fs, k, s, keyring, url) = mirror();
    let out = import(&s, "testy", &url, &keyring);
    assert!(out.status.success(), "{}", show(&out));
    let before = catalogs(&s);

    // A new index with one more package, but one byte of the served Packages.xz changed.
    let newer = format!("{PACKAGES}\nPackage: gawk\nVersion: 1:5.2.1-2\nDescription: GNU awk\n");
    let mut bad = xz(newer.as_bytes());
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    publish(&fs, &k, newer.as_bytes(), Some(bad));
    let out = import(&s, "testy", &url, &keyring);
    rejected(
        &s,
        &out,
        "hash mismatch for main/binary-amd64/Packages.xz",
        &before,
    );

    // The same index, honestly served, but signed by a key outside the keyring.
    publish(&fs, &keys("mallory"), newer.as_bytes(), None);
    let out = import(&s, "testy", &url, &keyring);
    rejected(
        &s,
        &out,
        "no good signature from a key in the keyring",
        &before,
    );

    // The InRelease body altered after signing.
    publish(&fs, &k, newer.as_bytes(), None);
    let path = format!("/debian/dists/{SUITE}/InRelease");
    let mut signed = fs.files.lock().unwrap()[&path].clone();
    let pos = signed.windows(5).position(|w| w == b"Label").unwrap();
    signed[pos + 7] = b'X';
    fs.put(&path, signed);
    let out = import(&s, "testy", &url, &keyring);
    rejected(&s, &out, "no good signature", &before);

    // A Release past its Valid-Until, as apt refuses it.
    publish_with(
        &fs,
        &k,
        newer.as_bytes(),
        None,
        "Valid-Until: Sat, 10 Jun 2023 08:52:44 UTC\n",
    );
    let out = import(&s, "testy", &url, &keyring);
    rejected(&s, &out, "expired: Valid-Until", &before);

    // The old catalog still answers.
    let out = s.admin(&["catalog", "show", "gawk"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        s.admin_ok(&["catalog", "show", "nginx"])
            .contains("1.22.1-9")
    );

    // Once served honestly, the re-import replaces the catalog.
    publish(&fs, &k, newer.as_bytes(), None);
    let out = import(&s, "testy", &url, &keyring);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(catalogs(&s)[0].packages, 7);
    assert!(
        s.admin_ok(&["catalog", "show", "gawk"])
            .contains("1:5.2.1-2")
    );
}

#[test]
fn bad_input_gives_clear_errors_and_imports_nothing() {
    let (fs, k, s, keyring, url) = mirror();
    let out = import(&s, "testy", &url, &keyring);
    assert!(out.status.success(), "{}", show(&out));
    let before = catalogs(&s);
    let dir = tempfile::tempdir().unwrap();
    let file_import = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        s.admin(&[
            "catalog",
            "import",
            "testy",
            "--file",
            path.to_str().unwrap(),
        ])
    };

    let out = file_import("index.html", b"<html><body>404 not here</body></html>\n");
    rejected(&s, &out, "line 1: not a Packages file", &before);

    let packed = xz(PACKAGES.as_bytes());
    let out = file_import("Packages.xz", &packed[..packed.len() - 40]);
    rejected(&s, &out, "cannot decompress", &before);

    let out = file_import(
        "Packages",
        b"Package: good\nVersion: 1\n\nPackage: bad\nDescription: no version\n",
    );
    rejected(
        &s,
        &out,
        "stanza ending at line 6: missing field 'Version'",
        &before,
    );

    let long = format!(
        "Package: big\nVersion: 1\nDescription: {}\n",
        "x".repeat(10 << 20)
    );
    let out = file_import("Packages.xz", &xz(long.as_bytes()));
    rejected(&s, &out, "line 3: longer than 1048576 bytes", &before);
    // The same through a verified fetch.
    publish(&fs, &k, long.as_bytes(), None);
    let out = import(&s, "testy", &url, &keyring);
    rejected(&s, &out, "line 3: longer than 1048576 bytes", &before);

    // A URL that does not answer: a port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = import(
        &s,
        "testy",
        &format!("http://127.0.0.1:{closed}/debian"),
        &keyring,
    );
    rejected(&s, &out, "cannot fetch http://127.0.0.1:", &before);
    // An https mirror is refused up front, with the reason.
    let out = import(&s, "testy", "https://127.0.0.1:1/debian", &keyring);
    rejected(&s, &out, "https is not supported", &before);
    // A suite the repository does not have.
    let out = s.admin(&[
        "catalog",
        "import",
        "testy",
        "--url",
        &url,
        "--suite",
        "nope",
        "--keyring",
        &keyring,
        "--allow-private",
    ]);
    rejected(&s, &out, "HTTP 404 Not Found from 127.0.0.1:", &before);
    // A keyring that is not one.
    let junk = dir.path().join("junk.gpg");
    std::fs::write(&junk, b"not a keyring").unwrap();
    let out = import(&s, "testy", &url, junk.to_str().unwrap());
    rejected(&s, &out, "keyring:", &before);

    // An offline import of a good file says it is unverified.
    let out = file_import("Packages.gz", &{
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(PACKAGES.as_bytes()).unwrap();
        gz.finish().unwrap()
    });
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stderr(&out).contains("without verification"),
        "{}",
        show(&out)
    );
    assert!(!catalogs(&s)[0].verified);
}

/// The mirror and suite this machine's apt uses for `main` amd64, from `apt-cache policy`
/// (the suite without a `-updates`/`-security` suffix).
fn machine_mirror() -> Option<(String, String)> {
    let out = std::process::Command::new("apt-cache")
        .arg("policy")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let [_, url, dist, arch, kind] = f.as_slice() else {
            return None;
        };
        let suite = dist.strip_suffix("/main")?;
        (*arch == "amd64" && *kind == "Packages" && !suite.contains('-'))
            .then(|| (url.to_string(), suite.to_string()))
    })
}

/// apt's own list file for `url`/`suite` main amd64, as apt names it.
fn apt_list(url: &str, suite: &str) -> Option<std::path::PathBuf> {
    let stem = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .trim_end_matches('/')
        .replace('/', "_");
    let prefix = format!("{stem}_dists_{suite}_main_binary-amd64_Packages");
    std::fs::read_dir("/var/lib/apt/lists")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
}

#[test]
fn real_mirror_matches_apt() {
    const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
    if !require_tool("apt-cache") {
        return;
    }
    let mirror = machine_mirror();
    if !require(
        mirror.is_some(),
        "a Debian main amd64 source in apt-cache policy",
    ) {
        return;
    }
    let (url, suite) = mirror.unwrap();
    let list = apt_list(&url, &suite);
    if !require(
        list.is_some(),
        "apt's Packages list for the machine's mirror (run apt-get update)",
    ) || !require(Path::new(KEYRING).exists(), KEYRING)
    {
        return;
    }
    let list = list.unwrap();
    let cat = std::process::Command::new("/usr/lib/apt/apt-helper")
        .arg("cat-file")
        .arg(&list)
        .output()
        .expect("apt-helper cat-file");
    assert!(cat.status.success(), "{}", show(&cat));
    let apt_count = cat
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"Package:"))
        .count() as u64;
    drop(cat);

    let s = Server::start();
    let out = s.admin(&[
        "catalog",
        "import",
        "debian",
        "--url",
        &url,
        "--suite",
        &suite,
        "--component",
        "main",
        "--arch",
        "amd64",
        "--keyring",
        KEYRING,
        "--json",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let info: CatalogInfo = serde_json::from_slice(&out.stdout).expect("import json");
    assert!(info.verified);
    assert_eq!(
        info.stanzas, apt_count,
        "imported package count differs from apt's list"
    );
    assert!(info.packages > 10_000 && info.packages <= apt_count);

    let shown: Vec<CatalogPackage> =
        serde_json::from_str(&s.admin_ok(&["catalog", "show", "nginx", "--json"])).unwrap();
    assert_eq!(shown[0].name, "nginx");
    s.admin_ok(&["task", "add", "web"]);
    let out = s.admin(&["task", "depend", "web", "ngnix"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("unknown package 'ngnix' (did you mean 'nginx'"),
        "{}",
        show(&out)
    );
    s.admin_ok(&["task", "depend", "web", "nginx"]);
}

#[test]
fn mirror_that_never_answers_times_out() {
    let s = Server::start_with_config("catalog_timeout_secs = 2\n");
    let k = keys("archive");
    let keyring = write_keyring(&s.data, &k);
    s.admin_ok(&["catalog", "import", "kept", "--file", &{
        let p = s.data.join("Packages");
        std::fs::write(&p, PACKAGES).unwrap();
        p.display().to_string()
    }]);
    let before = catalogs(&s);
    // Accepts connections and reads requests, but never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/debian", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let t = std::time::Instant::now();
    let out = import(&s, "kept", &url, &keyring);
    rejected(&s, &out, "cannot fetch", &before);
    assert!(stderr(&out).contains("timeout"), "{}", show(&out));
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
}

/// A one-trick HTTP server on 127.0.0.1: every request gets `answer` (raw bytes, head and
/// body), then the connection closes. Counts the connections it accepted.
struct RawServer {
    url: String,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl RawServer {
    fn start(answer: Vec<u8>) -> RawServer {
        use std::io::Read as _;
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 65536 {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(&answer);
            }
        });
        RawServer { url, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn response(status: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn import_without_flag(s: &Server, url: &str, keyring: &str) -> std::process::Output {
    s.admin(&[
        "catalog",
        "import",
        "testy",
        "--url",
        url,
        "--suite",
        SUITE,
        "--keyring",
        keyring,
    ])
}

/// Security review #13: an import is a request umcd makes, so it must not reach umcd's own
/// loopback, the link-local metadata address or multicast unless the admin says
/// `--allow-private`. Nothing is sent to a refused address.
#[test]
fn loopback_link_local_and_multicast_mirrors_need_allow_private() {
    let (_fs, _, s, keyring, served) = mirror();
    let before = catalogs(&s);
    let listening = RawServer::start(response("200 OK", "", "hello"));
    let port = listening.url.rsplit(':').next().expect("port").to_string();
    for (url, want) in [
        (
            format!("{}/debian", listening.url),
            format!(
                "refusing to fetch {}/debian: 127.0.0.1 is a loopback address (127.0.0.1); pass --allow-private to import from it",
                listening.url
            ),
        ),
        (
            format!("http://localhost:{port}/debian"),
            "localhost is a loopback address".to_string(),
        ),
        (
            format!("http://[::1]:{port}/debian"),
            "::1 is a loopback address (::1)".to_string(),
        ),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/debian"),
            "is a loopback address (::ffff:127.0.0.1)".to_string(),
        ),
        (
            format!("http://0.0.0.0:{port}/debian"),
            "0.0.0.0 is an unspecified address".to_string(),
        ),
        (
            "http://169.254.169.254/latest".to_string(),
            "169.254.169.254 is a link-local address".to_string(),
        ),
        (
            "http://[fe80::1]/debian".to_string(),
            "is a link-local address (fe80::1)".to_string(),
        ),
        (
            "http://224.0.0.1/debian".to_string(),
            "is a multicast address".to_string(),
        ),
        // Cloud metadata services outside link-local: Alibaba Cloud's, AWS's over IPv6.
        (
            "http://100.100.100.200/latest/meta-data".to_string(),
            "100.100.100.200 is a cloud metadata address (100.100.100.200)".to_string(),
        ),
        (
            "http://[fd00:ec2::254]/latest/meta-data".to_string(),
            "fd00:ec2::254 is a cloud metadata address (fd00:ec2::254)".to_string(),
        ),
    ] {
        let out = import_without_flag(&s, &url, &keyring);
        rejected(&s, &out, &want, &before);
    }
    assert_eq!(listening.hits(), 0, "a refused import sent nothing");

    // The API carries the flag: the same request without it is refused, with it imported.
    let url = served;
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&keyring).expect("keyring"))
    };
    let api = |allow: Option<bool>| {
        let mut req = serde_json::json!({"url": url, "suite": SUITE, "keyring": b64});
        if let Some(a) = allow {
            req["allow_private"] = a.into();
        }
        s.api(
            "POST",
            "/api/v1/catalogs/testy/import",
            Some(req.to_string().as_bytes()),
        )
    };
    for allow in [None, Some(false)] {
        let r = api(allow);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("a loopback address"), "{}", r.text());
    }
    assert_eq!(catalogs(&s).len(), 0);
    let r = api(Some(true));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(catalogs(&s)[0].packages, 6);
    // And the CLI flag (what every other test here uses).
    let out = import(&s, "testy", &url, &keyring);
    assert!(out.status.success(), "{}", show(&out));
}

/// Security review #13: a redirect is never followed (the review's mirror sent one to umcd's
/// own keyring), also with --allow-private; the error does not repeat where it pointed (the
/// Location is the remote side's text like any other).
#[test]
fn catalog_import_follows_no_redirect() {
    let s = Server::start();
    let k = keys("archive");
    let keyring = write_keyring(&s.data, &k);
    let before = catalogs(&s);
    let target = RawServer::start(response("200 OK", "", "secret"));
    for location in [
        format!("{}/debian/dists/{SUITE}/InRelease", target.url),
        format!("{}/umc-archive-keyring.asc", s.url),
        "/elsewhere/InRelease".to_string(),
        "http://internal.example/AKIA-TOP-SECRET-7f3a9c".to_string(),
    ] {
        let redirecting = RawServer::start(response(
            "302 Found",
            &format!("Location: {location}\r\n"),
            "",
        ));
        let url = format!("{}/debian", redirecting.url);
        let out = import(&s, "testy", &url, &keyring);
        rejected(
            &s,
            &out,
            &format!(
                "cannot fetch {url}/dists/{SUITE}/InRelease: HTTP 302 Found from {}: redirects are not followed; give the final URL",
                redirecting.url.trim_start_matches("http://")
            ),
            &before,
        );
        assert!(!stderr(&out).contains(&location), "echoed: {}", show(&out));
        assert!(!stderr(&out).contains("SECRET"), "echoed: {}", show(&out));
        assert_eq!(redirecting.hits(), 1);
    }
    assert_eq!(target.hits(), 0, "the redirect was not followed");
}

/// Security review #13: what a mirror answers is never repeated in an error (the review read
/// "403 Forbidden" from the metadata address; a body could hold its secrets).
#[test]
fn catalog_fetch_errors_do_not_echo_what_the_server_sent() {
    const SECRET: &str = "AKIA-TOP-SECRET-7f3a9c";
    let s = Server::start();
    let k = keys("archive");
    let keyring = write_keyring(&s.data, &k);
    let before = catalogs(&s);
    let cases = [
        (
            response(
                "403 Forbidden",
                "Content-Type: text/plain\r\n",
                &format!("{SECRET}\n"),
            ),
            "HTTP 403 Forbidden from 127.0.0.1:",
        ),
        (
            response(
                &format!("500 {SECRET}"),
                &format!("X-Secret: {SECRET}\r\n"),
                SECRET,
            ),
            "HTTP 500 Internal Server Error from 127.0.0.1:",
        ),
        (
            response("200 OK", "", &format!("{SECRET}\n")),
            "InRelease: not a cleartext-signed file",
        ),
        (
            response(
                "200 OK",
                "",
                &format!("-----BEGIN PGP SIGNED MESSAGE-----\nHash: {SECRET}\n\n{SECRET}\n"),
            ),
            "InRelease: ",
        ),
        // Not HTTP at all (another service's banner).
        (
            format!("220 {SECRET} ESMTP\r\n").into_bytes(),
            "not a valid HTTP response",
        ),
    ];
    for (answer, want) in cases {
        let server = RawServer::start(answer);
        let out = import(&s, "testy", &format!("{}/debian", server.url), &keyring);
        rejected(&s, &out, want, &before);
        assert!(!stderr(&out).contains(SECRET), "echoed: {}", show(&out));
        assert!(
            !stderr(&out).contains("TOP-SECRET"),
            "echoed: {}",
            show(&out)
        );
    }
}
