//! umcd over HTTP: served artifacts checked by real tools (gpgv, sqv, dpkg-deb, lintian),
//! HTTP semantics apt relies on, bad input, durability and determinism.

use crate::common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Command;

use common::report::Report;
use common::verify::sqv_ok;
use common::{Resp, Server, http, require_tool, show};

const HOST: &str = "web1.example.com";

fn fleet() -> Server {
    let s = Server::start();
    s.admin_ok(&["node", "add", HOST]);
    s.admin_ok(&["node", "add", "db1.example.com"]);
    s.admin_ok(&["task", "add", "web", "--description", "Web frontends"]);
    s.admin_ok(&["task", "add", "base"]);
    s.admin_ok(&["task", "depend", "web", "nginx-light", "mawk | gawk"]);
    s.admin_ok(&["task", "remove", "web", "apache2"]);
    s.admin_ok(&["task", "depend", "base", "less (>= 1.0)"]);
    s.admin_ok(&["task", "include", "web", "base"]);
    s.admin_ok(&["assign", HOST, "web"]);
    s
}

fn host_get(s: &Server, path: &str, headers: &[(&str, &str)]) -> Resp {
    let token = s.node_token(HOST);
    s.get(
        &format!("/hosts/{HOST}/{path}"),
        Some((HOST, &token)),
        headers,
    )
}

/// Packages stanzas as maps (continuation lines joined).
fn stanzas(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut m = BTreeMap::new();
        let mut last = String::new();
        for line in block.lines() {
            if line.starts_with(' ') {
                if let Some(v) = m.get_mut(&last) {
                    let v: &mut String = v;
                    v.push('\n');
                    v.push_str(line);
                }
            } else if let Some((k, v)) = line.split_once(": ") {
                last = k.to_string();
                m.insert(k.to_string(), v.to_string());
            }
        }
        out.push(m);
    }
    out
}

fn fetch_all(s: &Server) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for p in [
        "dists/umc/Release",
        "dists/umc/main/binary-amd64/Packages",
        "dists/umc/main/binary-amd64/Packages.gz",
        "dists/umc/main/binary-amd64/Packages.xz",
        "dists/umc/main/binary-s390x/Packages.xz",
    ] {
        let r = host_get(s, p, &[]);
        assert_eq!(r.status, 200, "{p}");
        out.insert(p.to_string(), r.body);
    }
    let packages =
        String::from_utf8(out["dists/umc/main/binary-amd64/Packages"].clone()).expect("utf8");
    for st in stanzas(&packages) {
        let f = &st["Filename"];
        let r = host_get(s, f, &[]);
        assert_eq!(r.status, 200, "{f}");
        out.insert(f.clone(), r.body);
    }
    out
}

#[test]
fn inrelease_verifies_with_gpgv_and_sqv() {
    if !(require_tool("gpgv") && require_tool("sqv")) {
        return;
    }
    let s = fleet();
    let dir = tempfile::tempdir().expect("tmp");
    let keyring = dir.path().join("k.gpg");
    std::fs::write(&keyring, s.keyring()).expect("w");
    let inrelease = host_get(&s, "dists/umc/InRelease", &[]).body;
    assert!(inrelease.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----\n"));
    assert!(inrelease.ends_with(b"-----END PGP SIGNATURE-----\n"));
    let ir = dir.path().join("InRelease");
    std::fs::write(&ir, &inrelease).expect("w");
    let out = Command::new("gpgv")
        .arg("--keyring")
        .arg(&keyring)
        .arg("--output")
        .arg(dir.path().join("body"))
        .arg(&ir)
        .output()
        .expect("gpgv");
    assert!(out.status.success(), "gpgv: {}", show(&out));
    // The signed body is exactly the served Release.
    let release = host_get(&s, "dists/umc/Release", &[]).body;
    assert_eq!(std::fs::read(dir.path().join("body")).expect("r"), release);

    // Split InRelease the way apt does and let sqv check the detached parts.
    let (ok, out) = sqv_ok(&keyring, &inrelease, dir.path());
    assert!(ok, "sqv: {out}");

    // Release.gpg is an armored detached signature over Release.
    let gpg = host_get(&s, "dists/umc/Release.gpg", &[]).body;
    assert!(gpg.starts_with(b"-----BEGIN PGP SIGNATURE-----"));
    let (rel, relsig) = (dir.path().join("Release"), dir.path().join("Release.gpg"));
    std::fs::write(&rel, &release).expect("w");
    std::fs::write(&relsig, &gpg).expect("w");
    let out = Command::new("sqv")
        .arg("--keyring")
        .arg(&keyring)
        .arg(&relsig)
        .arg(&rel)
        .output()
        .expect("sqv");
    assert!(out.status.success(), "sqv Release.gpg: {}", show(&out));
    // The armored keyring is the same key.
    let asc = s.get("/umc-archive-keyring.asc", None, &[]);
    assert!(
        asc.text()
            .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    );
}

#[test]
fn every_served_deb_matches_its_stanza_and_passes_lintian() {
    if !(require_tool("dpkg-deb") && require_tool("lintian")) {
        return;
    }
    require_tool("shellcheck");
    let s = fleet();
    // A task package with files, maintainer scripts and a dropped conffile, and a umc-node
    // with the node's apt configuration.
    let dir = tempfile::tempdir().expect("tmp");
    let template = dir.path().join("site.conf");
    std::fs::write(&template, "server_name {{ host.fqdn }};\n").expect("w");
    let t = template.to_str().expect("utf8");
    let add = |path: &str, action: &[&str]| {
        let mut args = vec!["task", "file", "add", "web", path, "--template", t];
        args.extend_from_slice(action);
        s.admin_ok(&args);
    };
    add("/etc/nginx/conf.d/site.conf", &["--reload", "nginx"]);
    add("/etc/nginx/nginx.conf", &["--restart", "nginx"]);
    add("/usr/share/umc-test/plain.txt", &[]);
    add("/etc/old.conf", &[]);
    s.admin_ok(&["task", "file", "rm", "web", "/etc/old.conf"]);
    s.admin_ok(&[
        "node",
        "enroll",
        HOST,
        "--url",
        "http://umc.example.com:8080",
    ]);
    let packages = host_get(&s, "dists/umc/main/binary-amd64/Packages", &[]).text();
    let list = stanzas(&packages);
    assert_eq!(list.len(), 4, "{packages}");
    let mut files = Vec::new();
    for st in &list {
        let deb = host_get(&s, &st["Filename"], &[]).body;
        assert_eq!(deb.len().to_string(), st["Size"]);
        use sha2::Digest;
        assert_eq!(hex::encode(sha2::Sha256::digest(&deb)), st["SHA256"]);
        let path = dir
            .path()
            .join(st["Filename"].rsplit('/').next().expect("name"));
        std::fs::write(&path, &deb).expect("w");
        // dpkg-deb's view of the control file equals the stanza minus the index fields.
        let out = Command::new("dpkg-deb")
            .arg("--field")
            .arg(&path)
            .output()
            .expect("dpkg-deb");
        assert!(out.status.success(), "{}", show(&out));
        let control = &stanzas(&String::from_utf8_lossy(&out.stdout))[0];
        let mut expect = st.clone();
        for k in ["Filename", "Size", "SHA256"] {
            expect.remove(k);
        }
        assert_eq!(control, &expect, "{}", st["Package"]);
        let out = Command::new("dpkg-deb")
            .arg("--contents")
            .arg(&path)
            .output()
            .expect("dpkg-deb");
        assert!(out.status.success(), "{}", show(&out));
        let contents = String::from_utf8_lossy(&out.stdout);
        assert!(contents.contains(&format!("./usr/share/doc/{}/changelog.gz", st["Package"])));
        assert!(contents.contains(&format!("./usr/share/doc/{}/copyright", st["Package"])));
        assert!(
            contents.lines().all(|l| l.contains(" root/root ")),
            "{contents}"
        );
        // The maintainer scripts dpkg would run pass shellcheck.
        let control_dir = dir.path().join(format!("{}.control", st["Package"]));
        let out = Command::new("dpkg-deb")
            .arg("--control")
            .arg(&path)
            .arg(&control_dir)
            .output()
            .expect("dpkg-deb --control");
        assert!(out.status.success(), "{}", show(&out));
        let scripts: Vec<_> = ["preinst", "postinst", "prerm", "postrm"]
            .iter()
            .map(|n| control_dir.join(n))
            .filter(|p| p.exists())
            .collect();
        if !scripts.is_empty() {
            let out = Command::new("shellcheck")
                .args(["-s", "sh"])
                .args(&scripts)
                .output()
                .expect("shellcheck");
            assert!(out.status.success(), "{}: {}", st["Package"], show(&out));
        }
        if st["Package"] == "umc-task-web" {
            assert_eq!(scripts.len(), 3, "preinst, postinst, postrm");
            let conffiles =
                std::fs::read_to_string(control_dir.join("conffiles")).expect("conffiles");
            assert_eq!(
                conffiles,
                "/etc/nginx/conf.d/site.conf\n/etc/nginx/nginx.conf\nremove-on-upgrade /etc/old.conf\n"
            );
        }
        if st["Package"] == "umc-node" {
            for f in [
                "./usr/sbin/umc-cycle",
                "./lib/systemd/system/umc-cycle.timer",
                "./etc/apt/sources.list.d/umc.sources",
                "./usr/share/keyrings/umc-archive-keyring.gpg",
            ] {
                assert!(contents.contains(f), "{f}: {contents}");
            }
            assert!(
                contents.lines().any(|l| l.starts_with("-rw------- ")
                    && l.ends_with("./etc/apt/auth.conf.d/umc.conf")),
                "{contents}"
            );
        }
        files.push(path);
    }
    let out = Command::new("lintian")
        .arg("--no-tag-display-limit")
        .args(&files)
        .output()
        .expect("lintian");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("lintian:\n{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("E:")),
        "lintian errors: {}",
        show(&out)
    );
}

#[test]
fn renders_are_deterministic_across_restarts() {
    let mut s = fleet();
    let a = fetch_all(&s);
    let b = fetch_all(&s);
    assert_eq!(a, b);
    s.stop();
    let s2 = Server::start_in(&s.data.clone());
    let c = fetch_all(&s2);
    assert_eq!(a.keys().collect::<Vec<_>>(), c.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(c[k] == *v, "{k} differs after a restart");
    }
}

#[test]
fn http_semantics_apt_relies_on() {
    let s = fleet();
    // A last edit in a second of its own, so Last-Modified identifies this view.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    s.admin_ok(&["task", "depend", "base", "gzip"]);

    let r = host_get(&s, "dists/umc/InRelease", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    let lm = r
        .header("last-modified")
        .expect("last-modified")
        .to_string();
    let etag = r.header("etag").expect("etag").to_string();
    let r2 = host_get(&s, "dists/umc/InRelease", &[("If-Modified-Since", &lm)]);
    assert_eq!(r2.status, 304);
    assert!(r2.body.is_empty());
    let r3 = host_get(&s, "dists/umc/InRelease", &[("If-None-Match", &etag)]);
    assert_eq!(r3.status, 304);
    // An edit moves Last-Modified forward, and the old date no longer gets a 304.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    s.admin_ok(&["task", "depend", "base", "bzip2"]);
    let r4 = host_get(&s, "dists/umc/InRelease", &[("If-Modified-Since", &lm)]);
    assert_eq!(r4.status, 200);
    assert!(
        httpdate::parse_http_date(r4.header("last-modified").expect("lm")).expect("date")
            > httpdate::parse_http_date(&lm).expect("date")
    );

    // Pool: immutable, Range and If-Range, HEAD.
    let packages = host_get(&s, "dists/umc/main/binary-amd64/Packages", &[]).text();
    let st = &stanzas(&packages)[0];
    let path = st["Filename"].clone();
    let full = host_get(&s, &path, &[]);
    assert_eq!(full.status, 200);
    assert_eq!(
        full.header("cache-control"),
        Some("private, max-age=31536000, immutable")
    );
    let plm = full.header("last-modified").expect("lm").to_string();
    let part = host_get(&s, &path, &[("Range", "bytes=100-"), ("If-Range", &plm)]);
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-{}/{}", full.body.len() - 1, full.body.len()).as_str())
    );
    assert_eq!(part.body, full.body[100..]);
    let stale = host_get(
        &s,
        &path,
        &[
            ("Range", "bytes=100-"),
            ("If-Range", "Mon, 01 Jan 2001 00:00:00 GMT"),
        ],
    );
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, full.body);
    // For indexes a date does not prove the same bytes (re-signing keeps the date): resume
    // only on the ETag.
    let ir = host_get(&s, "dists/umc/InRelease", &[]);
    let (ir_lm, ir_etag) = (
        ir.header("last-modified").expect("lm").to_string(),
        ir.header("etag").expect("etag").to_string(),
    );
    let by_date = host_get(
        &s,
        "dists/umc/InRelease",
        &[("Range", "bytes=10-"), ("If-Range", &ir_lm)],
    );
    assert_eq!(by_date.status, 200);
    let by_etag = host_get(
        &s,
        "dists/umc/InRelease",
        &[("Range", "bytes=10-"), ("If-Range", &ir_etag)],
    );
    assert_eq!(by_etag.status, 206);
    assert_eq!(by_etag.body, ir.body[10..]);
    let beyond = host_get(
        &s,
        &path,
        &[("Range", &format!("bytes={}-", full.body.len()))],
    );
    assert_eq!(beyond.status, 416);
    let token = s.node_token(HOST);
    let head = http(
        "HEAD",
        &format!("{}/hosts/{HOST}/{path}", s.url),
        Some((HOST, &token)),
        &[],
        None,
    );
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(full.body.len().to_string().as_str())
    );

    // by-hash serves the exact index the InRelease lists.
    let xz = host_get(&s, "dists/umc/main/binary-amd64/Packages.xz", &[]).body;
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(&xz));
    let bh = host_get(
        &s,
        &format!("dists/umc/main/binary-amd64/by-hash/SHA256/{hash}"),
        &[],
    );
    assert_eq!(bh.status, 200);
    assert_eq!(bh.body, xz);
    // ...and keeps serving it after an edit supersedes it (clients holding the older InRelease).
    s.admin_ok(&["task", "depend", "base", "xz-utils"]);
    let bh = host_get(
        &s,
        &format!("dists/umc/main/binary-amd64/by-hash/SHA256/{hash}"),
        &[],
    );
    assert_eq!(bh.status, 200);
    assert_eq!(
        host_get(&s, "dists/umc/main/binary-nope/Packages", &[]).status,
        404
    );
    assert_eq!(host_get(&s, "dists/umc/nothing", &[]).status, 404);
    // Each index file by name (the archive's index map), the compressed ones as bytes; a name
    // the map does not hold is not found.
    for (name, content_type) in [
        ("Packages", "text/plain; charset=utf-8"),
        ("Packages.gz", "application/octet-stream"),
        ("Packages.xz", "application/octet-stream"),
    ] {
        let r = host_get(&s, &format!("dists/umc/main/binary-amd64/{name}"), &[]);
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.header("content-type"), Some(content_type), "{name}");
    }
    assert_eq!(
        host_get(&s, "dists/umc/main/binary-amd64/Packages.bz2", &[]).status,
        404
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let s = fleet();
    let token = s.node_token(HOST);
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{HOST}:{token}"));
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut c = std::net::TcpStream::connect(&addr).expect("connect");
    let paths = [
        "dists/umc/Release",
        "dists/umc/main/binary-amd64/Packages",
        "dists/umc/InRelease",
        "dists/umc/Release",
    ];
    let mut req = String::new();
    for p in paths {
        req.push_str(&format!(
            "GET /hosts/{HOST}/{p} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\n\r\n"
        ));
    }
    c.write_all(req.as_bytes()).expect("write");
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let expected: Vec<Vec<u8>> = paths.iter().map(|p| host_get(&s, p, &[]).body).collect();
    let mut buf = Vec::new();
    let mut got = Vec::new();
    let mut chunk = [0u8; 65536];
    while got.len() < paths.len() {
        // Parse as many complete responses as the buffer holds.
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("content-length");
            if buf.len() >= end + 4 + len {
                got.push(buf[end + 4..end + 4 + len].to_vec());
                buf.drain(..end + 4 + len);
                continue;
            }
        }
        let n = c.read(&mut chunk).expect("read");
        assert!(n > 0, "connection closed after {} responses", got.len());
        buf.extend_from_slice(&chunk[..n]);
    }
    // InRelease is signed once per Release body and cached: identical bytes on refetch.
    assert_eq!(got, expected);
}

/// The model as the API reports it, for before/after comparisons.
fn snapshot(s: &Server) -> (String, String, String) {
    (
        s.admin_ok(&["node", "list", "--json"]),
        s.admin_ok(&["task", "list", "--json"]),
        s.admin_ok(&["log", "-n", "1000", "--json"]),
    )
}

/// POSTs `body` to `/api/v1/edit` with `token`, if any.
fn api(s: &Server, token: Option<&str>, body: &[u8]) -> Resp {
    s.call("POST", "/api/v1/edit", token, Some(body))
}

#[test]
fn bad_input_is_rejected_and_changes_nothing() {
    let s = fleet();
    let before = snapshot(&s);
    let cases: &[(&[&str], &str)] = &[
        (
            &["node", "add", "bad_host!"],
            "invalid host name 'bad_host!'",
        ),
        (
            &["node", "add", "--", "-leading.example.com"],
            "invalid host name",
        ),
        (
            &["node", "add", HOST],
            "node 'web1.example.com' already exists",
        ),
        (&["task", "add", "Web"], "invalid task name 'Web'"),
        (
            &["task", "depend", "web", "nginx (>> )"],
            "invalid relation 'nginx (>> )'",
        ),
        (
            &["task", "depend", "web", "a, b"],
            "one relation per argument",
        ),
        (
            &["task", "depend", "web", "Nginx"],
            "invalid relation 'Nginx'",
        ),
        (
            &["task", "include", "base", "web"],
            "would create a cycle: base -> web -> base",
        ),
        (&["task", "include", "web", "web"], "cannot include itself"),
        (&["assign", HOST, "nosuchtask"], "unknown task 'nosuchtask'"),
        (
            &["assign", "nosuch.example.com", "web"],
            "unknown node 'nosuch.example.com'",
        ),
        (
            &["task", "depend", "base", "apache2"],
            "package 'apache2' is both depended on",
        ),
        (
            &["node", "set", HOST, "--ssh", "nobody"],
            "invalid ssh target",
        ),
        (
            &["node", "add", "x.example.com", "--var", "1bad=v"],
            "invalid variable name '1bad'",
        ),
    ];
    for (args, want) in cases {
        let out = s.admin(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
        assert_eq!(snapshot(&s), before, "{args:?} changed the model");
    }
    // One bad op in a batch rejects the whole batch.
    let r = api(
        &s,
        Some(&s.token()),
        br#"{"ops":[{"op":"task_add","task":"fine"},{"op":"task_add","task":"NOT FINE"}]}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(snapshot(&s), before);

    // API authentication.
    let r = api(&s, None, br#"{"ops":[{"op":"task_add","task":"x"}]}"#);
    assert_eq!(r.status, 401);
    let r = api(
        &s,
        Some("wrong"),
        br#"{"ops":[{"op":"task_add","task":"x"}]}"#,
    );
    assert_eq!(r.status, 401);
    assert!(
        r.text().contains("missing or invalid API token"),
        "{}",
        r.text()
    );
    let out = Command::new(common::UMC_ADMIN)
        .args(["node", "list"])
        .env("UMC_URL", &s.url)
        .env("UMC_TOKEN", "wrong")
        .output()
        .expect("umc-admin");
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));

    // Malformed and oversized bodies.
    let r = api(&s, Some(&s.token()), b"{\"ops\": [");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("malformed JSON"), "{}", r.text());
    let r = api(
        &s,
        Some(&s.token()),
        br#"{"ops":[{"op":"launch_missiles"}]}"#,
    );
    assert_eq!(r.status, 400);
    // An oversized body is refused from its Content-Length, before it is read. The client
    // announces it with `Expect: 100-continue` (as curl does for large bodies), so it gets the
    // answer instead of a reset connection.
    let big = 9usize << 20;
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut c = std::net::TcpStream::connect(&addr).expect("connect");
    write!(
        c,
        "POST /api/v1/edit HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {big}\r\nExpect: 100-continue\r\n\r\n",
        s.token()
    )
    .expect("write");
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("larger than") {
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("request body is larger than 8388608 bytes"),
        "{answer}"
    );
    assert_eq!(snapshot(&s), before);

    // Node side: a wrong password and an unknown host look exactly alike.
    let token = s.node_token(HOST);
    let wrong = s.get(
        &format!("/hosts/{HOST}/dists/umc/InRelease"),
        Some((HOST, "nope")),
        &[],
    );
    let unknown = s.get(
        "/hosts/ghost.example.com/dists/umc/InRelease",
        Some(("ghost.example.com", &token)),
        &[],
    );
    let other = s.get(
        &format!("/hosts/{HOST}/dists/umc/InRelease"),
        Some(("db1.example.com", &s.node_token("db1.example.com"))),
        &[],
    );
    let none = s.get(&format!("/hosts/{HOST}/dists/umc/InRelease"), None, &[]);
    for r in [&wrong, &unknown, &other, &none] {
        assert_eq!(r.status, 401);
        assert_eq!(r.body, wrong.body);
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"umc\""));
    }
    assert_eq!(snapshot(&s), before);
}

#[test]
fn acknowledged_edits_survive_kill_9() {
    let mut s = fleet();
    let token = s.node_token(HOST);
    let before = host_get(&s, "dists/umc/Release", &[]).text();
    let v_before = s.admin_ok(&["task", "show", "web", "--json"]);
    let out = s.admin_ok(&["task", "depend", "web", "curl"]);
    assert!(out.contains("added dependency 'curl'"));
    s.kill9();
    let s2 = Server::start_in(&s.data.clone());
    let shown = s2.admin_ok(&["task", "show", "web", "--json"]);
    let t: umc::api::TaskInfo = serde_json::from_str(&shown).expect("json");
    let t0: umc::api::TaskInfo = serde_json::from_str(&v_before).expect("json");
    assert!(t.depends.contains(&"curl".to_string()), "{shown}");
    assert!(
        common::version_gt(&t.version, &t0.version),
        "{} > {}",
        t.version,
        t0.version
    );
    assert_eq!(s2.node_token(HOST), token);
    let after = s2
        .get(
            &format!("/hosts/{HOST}/dists/umc/Release"),
            Some((HOST, &token)),
            &[],
        )
        .text();
    let date = |t: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix("Date: "))
            .map(|d| httpdate::parse_http_date(&d.replace("UTC", "GMT")).expect("date"))
            .expect("Date")
    };
    assert!(date(&after) >= date(&before));
    // The next edit gets a higher generation than anything before the crash.
    let out = s2.admin_ok(&["task", "depend", "web", "wget"]);
    assert!(out.contains("generation"), "{out}");
}

#[test]
fn umcd_stops_cleanly_on_sigterm() {
    let mut s = Server::start();
    let status = s.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn serving_configuration_changes_move_release_dates() {
    let mut s = fleet();
    let release = host_get(&s, "dists/umc/Release", &[]);
    let lm = release.header("last-modified").expect("lm").to_string();
    assert!(release.text().contains("Architectures: amd64 arm64"));
    s.stop();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let cfg = s.data.join("umcd.toml");
    std::fs::write(&cfg, "architectures = [\"amd64\"]\n").expect("config");
    let data = s.data.clone();
    let s2 = Server::start_in_with(&data, &["--config", cfg.to_str().expect("utf8")]);
    let token = s2.node_token(HOST);
    let r = s2.get(
        &format!("/hosts/{HOST}/dists/umc/Release"),
        Some((HOST, &token)),
        &[("If-Modified-Since", &lm)],
    );
    assert_eq!(r.status, 200, "a changed configuration must not get a 304");
    assert!(r.text().contains("Architectures: amd64\n"), "{}", r.text());
    let newer = httpdate::parse_http_date(r.header("last-modified").expect("lm")).expect("date");
    assert!(newer > httpdate::parse_http_date(&lm).expect("date"));
    let log = s2.admin_ok(&["log", "-n", "1"]);
    assert!(
        log.contains("umcd's serving configuration changed"),
        "{log}"
    );
    // An unchanged configuration records nothing on the next start.
    let mut s2 = s2;
    s2.stop();
    let s3 = Server::start_in_with(&data, &["--config", cfg.to_str().expect("utf8")]);
    assert_eq!(s3.admin_ok(&["log", "-n", "1"]), log);
}

#[test]
fn replacing_admin_token_revokes_the_old_one() {
    let mut s = fleet();
    let old = s.token();
    s.stop();
    std::fs::remove_file(s.data.join("admin.token")).expect("rm token");
    let data = s.data.clone();
    let s2 = Server::start_in(&data);
    assert_ne!(s2.token(), old);
    let r = http(
        "GET",
        &format!("{}/api/v1/nodes", s2.url),
        None,
        &[("Authorization", &format!("Bearer {old}"))],
        None,
    );
    assert_eq!(r.status, 401, "the old token must stop working");
    s2.admin_ok(&["node", "list"]);
}

#[test]
fn slow_clients_are_cut_off() {
    let s = Server::start_with_config("header_timeout_secs = 1\n");
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut c = std::net::TcpStream::connect(&addr).expect("connect");
    // Half a request, then nothing: the server must not wait forever.
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    c.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = Vec::new();
    let closed = c.read_to_end(&mut buf).is_ok();
    assert!(closed, "the connection should have been closed by umcd");
    // A well-behaved client on a fresh connection is still served.
    assert_eq!(s.get("/healthz", None, &[]).status, 200);
}

/// The review's "what held up → Range and conditional": 17 Range values and 5 odd `If-*`
/// values get the status RFC 9110 allows (a malformed or multi-range header is ignored: 200),
/// never a panic or a 5xx.
#[test]
fn odd_ranges_and_conditionals_get_the_right_status() {
    let s = fleet();
    let token = s.node_token(HOST);
    let get = |path: &str, headers: &[(&str, &str)]| {
        s.get(
            &format!("/hosts/{HOST}/{path}"),
            Some((HOST, &token)),
            headers,
        )
    };
    let packages = get("dists/umc/main/binary-amd64/Packages", &[]).text();
    let path = stanzas(&packages)[0]["Filename"].clone();
    let full = get(&path, &[]);
    assert_eq!(full.status, 200);
    let len = full.body.len() as u64;
    let max = u64::MAX;
    let many: Vec<String> = (0..2000).map(|i| format!("{i}-{i}")).collect();
    // (Range, status, the bytes a 206 carries)
    type Case = (String, u16, Option<(u64, u64)>);
    let cases: Vec<Case> = vec![
        ("bytes=0-0".into(), 206, Some((0, 0))),
        (format!("bytes=0-{max}"), 206, Some((0, len - 1))),
        (format!("bytes={max}-"), 416, None),
        (format!("bytes={max}-{max}"), 416, None),
        (format!("bytes=-{max}"), 206, Some((0, len - 1))),
        ("bytes=18446744073709551616-".into(), 200, None),
        ("bytes=-18446744073709551616".into(), 200, None),
        ("bytes=-0".into(), 416, None),
        ("bytes=9-3".into(), 200, None),
        ("bytes=0x10-0x20".into(), 200, None),
        (format!("bytes={}", many.join(",")), 200, None),
        (format!("bytes={len}-{}", len + 10), 416, None),
        (format!("bytes=-{}", len - 1), 206, Some((1, len - 1))),
        ("bytes=".into(), 200, None),
        ("bytes=-".into(), 200, None),
        ("bytes=1-2-3".into(), 200, None),
        ("items=0-1".into(), 200, None),
    ];
    assert_eq!(cases.len(), 17);
    for (range, want, part) in &cases {
        let r = get(&path, &[("Range", range)]);
        let what = &range[..range.len().min(60)];
        assert_eq!(r.status, *want, "Range {what}: {}", r.text());
        match (want, part) {
            (206, Some((a, b))) => {
                assert_eq!(r.body, full.body[*a as usize..=*b as usize], "{what}");
                assert_eq!(
                    r.header("content-range"),
                    Some(format!("bytes {a}-{b}/{len}").as_str()),
                    "{what}"
                );
            }
            (416, _) => {
                assert_eq!(
                    r.header("content-range"),
                    Some(format!("bytes */{len}").as_str())
                );
            }
            _ => assert_eq!(r.body, full.body, "{what}: the whole file"),
        }
    }
    // Odd validators: unparsable ones are ignored, `*` matches anything.
    let ifs: [(&str, &str, u16); 5] = [
        ("If-None-Match", "\"", 200),
        ("If-None-Match", "*", 304),
        ("If-Modified-Since", "yesterday", 200),
        ("If-Modified-Since", "Fri, 31 Dec 9999 23:59:59 GMT", 304),
        ("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT", 200),
    ];
    for (h, v, want) in ifs {
        let r = get(&path, &[(h, v)]);
        assert_eq!(r.status, want, "{h}: {v}");
    }
    let r = get(&path, &[("Range", "bytes=1-"), ("If-Range", "\"nope")]);
    assert_eq!((r.status, r.body.len() as u64), (200, len), "If-Range junk");
    let log = s.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// The review's "what held up → injection" for descriptions, on the served bytes: a newline
/// in a task description reaches only the synopsis (its first line), and U+2028 stays inside
/// the synopsis line; neither adds a field or a stanza to Packages.
#[test]
fn task_descriptions_reach_only_the_synopsis_line() {
    let s = fleet();
    let ops = serde_json::json!({"ops": [
        {"op": "task_add", "task": "notes",
         "description": "first line\nPackage: evil-nl\nDescription: x"},
        {"op": "task_add", "task": "uni", "description": "first\u{2028}Package: evil-ls"},
        {"op": "assign", "host": HOST, "tasks": ["notes", "uni"]},
    ]});
    let r = api(&s, Some(&s.token()), ops.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let raw = host_get(&s, "dists/umc/main/binary-amd64/Packages", &[]).body;
    let text = String::from_utf8(raw).expect("utf-8");
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(
        lines.contains(&"Description: umc task notes: first line"),
        "{text}"
    );
    assert!(
        lines.contains(&"Description: umc task uni: first\u{2028}Package: evil-ls"),
        "{text}"
    );
    assert!(!text.contains("evil-nl"), "{text}");
    for l in &lines {
        assert!(!l.starts_with("Package: evil"), "{l:?} in {text}");
    }
    let stanzas = text.split("\n\n").filter(|b| !b.trim().is_empty()).count();
    let names = lines.iter().filter(|l| l.starts_with("Package: ")).count();
    assert_eq!(stanzas, names, "one Package line per stanza");
    assert!(text.contains("Package: umc-task-uni\n"), "{text}");
}

/// A request that may fail (umcd is being killed): the status, or None.
fn try_http(method: &str, url: &str, auth: &str, body: &[u8]) -> Option<u16> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Authorization", auth)
        .header("Content-Type", "application/json");
    let r = if method == "GET" {
        agent.run(req.body(()).ok()?)
    } else {
        agent.run(req.body(body.to_vec()).ok()?)
    };
    let mut r = r.ok()?;
    let status = r.status().as_u16();
    // The answer must arrive whole: a cut-off body is not an acknowledgement.
    r.body_mut().read_to_vec().ok()?;
    Some(status)
}

/// A report told apart from the others by its `Upgradable` count.
fn report_with(seq: u64) -> String {
    Report {
        installed: &[],
        upgradable: seq,
        ..Report::default()
    }
    .text()
}

/// The review's "what held up → durability": two rounds of `kill -9` while three editors, a
/// reporter and an InRelease reader run. Every acknowledged edit, and the newest acknowledged
/// report, are there after the restart, and the store opens.
#[test]
fn acknowledged_edits_and_reports_survive_kill_9_under_load() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut s = Server::start_in(&data);
    s.admin_ok(&["node", "add", HOST]);
    s.admin_ok(&["task", "add", "web"]);
    s.admin_ok(&["assign", HOST, "web"]);
    let admin = format!("Bearer {}", s.token());
    let node = {
        use base64::Engine;
        let t = s.node_token(HOST);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{HOST}:{t}"))
        )
    };
    let acked: Arc<Mutex<Vec<String>>> = Default::default();
    let newest_report = Arc::new(AtomicU64::new(0));
    let seq = Arc::new(AtomicU64::new(0));
    for round in 0..2 {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for editor in 0..3 {
            let (url, auth, acked, stop) =
                (s.url.clone(), admin.clone(), acked.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                for i in 0..10_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let name = format!("r{round}_e{editor}_{i}");
                    let body = serde_json::json!({"ops": [
                        {"op": "var_set", "vars": {&name: "v"}}
                    ]});
                    match try_http(
                        "POST",
                        &format!("{url}/api/v1/edit"),
                        &auth,
                        body.to_string().as_bytes(),
                    ) {
                        Some(200) => acked.lock().expect("lock").push(name),
                        Some(_) | None => std::thread::sleep(std::time::Duration::from_millis(20)),
                    }
                }
            }));
        }
        {
            let (url, auth, newest, seq, stop) = (
                s.url.clone(),
                node.clone(),
                newest_report.clone(),
                seq.clone(),
                stop.clone(),
            );
            threads.push(std::thread::spawn(move || {
                for _ in 0..10_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let n = seq.fetch_add(1, Ordering::SeqCst) + 1;
                    let body = report_with(n);
                    if try_http(
                        "POST",
                        &format!("{url}/hosts/{HOST}/report"),
                        &auth,
                        body.as_bytes(),
                    ) == Some(200)
                    {
                        newest.store(n, Ordering::SeqCst);
                    }
                }
            }));
        }
        {
            let (url, auth, stop) = (s.url.clone(), node.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                for _ in 0..10_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let _ = try_http(
                        "GET",
                        &format!("{url}/hosts/{HOST}/dists/umc/InRelease"),
                        &auth,
                        b"",
                    );
                }
            }));
        }
        std::thread::sleep(std::time::Duration::from_millis(1500));
        s.kill9();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("worker");
        }
        s = Server::start_in(&data);
        let vars: BTreeMap<String, String> =
            serde_json::from_str(&s.admin_ok(&["var", "list", "--json"])).expect("vars json");
        let acked = acked.lock().expect("lock");
        let missing: Vec<&String> = acked.iter().filter(|n| !vars.contains_key(*n)).collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} of {} acknowledged edits lost: {missing:?}",
            missing.len(),
            acked.len()
        );
        let n = newest_report.load(Ordering::SeqCst);
        assert!(n > 0 && acked.len() > 3, "round {round}: the load ran");
        let out = s.admin(&["status", HOST, "--json"]);
        let detail: umc::api::HostStatusDetail =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
        assert!(
            detail.reports.iter().any(|r| r.report.upgradable == n),
            "round {round}: the newest acknowledged report ({n}) is gone"
        );
        eprintln!(
            "round {round}: {} acknowledged edits, newest report {n}",
            acked.len()
        );
    }
}

/// The review's "what held up → consistency under edits": while edits land, every InRelease
/// fetched verifies with gpgv, and every index it lists is served by hash with that hash and
/// size. apt-get update, run in the same window, agrees.
#[test]
fn edits_during_inrelease_fetches_keep_indexes_and_signatures_consistent() {
    if !require_tool("gpgv") {
        return;
    }
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let s = fleet();
    let token = s.node_token(HOST);
    let dir = tempfile::tempdir().expect("tmp");
    let keyring_bytes = s.keyring();
    let keyring = dir.path().join("k.gpg");
    std::fs::write(&keyring, &keyring_bytes).expect("w");
    let apt =
        require_tool("apt-get").then(|| common::Apt::new(&s.url, HOST, &token, &keyring_bytes));
    let stop = Arc::new(AtomicBool::new(false));
    let editors: Vec<_> = (0..2)
        .map(|e| {
            let (url, auth, stop) = (s.url.clone(), format!("Bearer {}", s.token()), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                for i in 0..10_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // Each edit changes the host's task package, so its indexes change.
                    let tool = format!("tool-e{e}");
                    let body = if i % 2 == 0 {
                        serde_json::json!({"ops": [
                            {"op": "task_depend", "task": "web", "relations": [tool]}
                        ]})
                    } else {
                        serde_json::json!({"ops": [
                            {"op": "task_undepend", "task": "web", "packages": [tool]}
                        ]})
                    };
                    let r = try_http(
                        "POST",
                        &format!("{url}/api/v1/edit"),
                        &auth,
                        body.to_string().as_bytes(),
                    );
                    assert_eq!(r, Some(200), "edit {i}");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let get = |p: &str| s.get(&format!("/hosts/{HOST}/{p}"), Some((HOST, &token)), &[]);
    let mut seen = std::collections::BTreeSet::new();
    let mut fetches = 0;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(4);
    while fetches < 60 && std::time::Instant::now() < until {
        let ir = get("dists/umc/InRelease");
        assert_eq!(ir.status, 200);
        let file = dir.path().join("InRelease");
        std::fs::write(&file, &ir.body).expect("w");
        let body_file = dir.path().join("body");
        let _ = std::fs::remove_file(&body_file);
        let out = Command::new("gpgv")
            .arg("--keyring")
            .arg(&keyring)
            .arg("--output")
            .arg(&body_file)
            .arg(&file)
            .output()
            .expect("gpgv");
        assert!(
            out.status.success(),
            "gpgv, fetch {fetches}: {}",
            show(&out)
        );
        let release = std::fs::read_to_string(&body_file).expect("signed body");
        let listed: Vec<(String, usize, String)> = release
            .lines()
            .skip_while(|l| *l != "SHA256:")
            .skip(1)
            .take_while(|l| l.starts_with(' '))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (
                    f[0].to_string(),
                    f[1].parse().expect("size"),
                    f[2].to_string(),
                )
            })
            .filter(|(_, _, name)| name.contains("binary-amd64"))
            .collect();
        assert_eq!(listed.len(), 3, "{release}");
        for (hash, size, name) in &listed {
            let dir_of = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            let r = get(&format!("dists/umc/{dir_of}/by-hash/SHA256/{hash}"));
            assert_eq!(r.status, 200, "by-hash {name} {hash}, fetch {fetches}");
            use sha2::Digest;
            assert_eq!(hex::encode(sha2::Sha256::digest(&r.body)), *hash, "{name}");
            assert_eq!(r.body.len(), *size, "{name}");
        }
        seen.insert(ir.body);
        if let Some(apt) = &apt
            && fetches % 10 == 0
        {
            apt.update_ok();
        }
        fetches += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let edits: usize = editors.into_iter().map(|t| t.join().expect("editor")).sum();
    eprintln!(
        "{edits} edits during {fetches} InRelease fetches, {} distinct",
        seen.len()
    );
    assert!(seen.len() > 3, "the edits changed what was served");
}
