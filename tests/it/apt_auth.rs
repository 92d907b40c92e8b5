//! The apt side before and at authentication: what an anonymous or wrongly authenticated
//! client can make umcd hold in memory, and what it can read (host isolation). Raw sockets,
//! so no client library normalizes the paths.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use common::Server;

const A: &str = "a.example.com";
const B: &str = "b.example.com";

fn basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// One HTTP/1.1 response: status, the head as sent, the body.
struct Raw {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Raw {
    /// The response bytes without the `Date` line (the only part allowed to differ).
    fn without_date(&self) -> (String, Vec<u8>) {
        let head: Vec<&str> = self
            .head
            .split("\r\n")
            .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
            .collect();
        (head.join("\r\n"), self.body.clone())
    }
}

/// A keep-alive connection that sends one request at a time.
struct Conn {
    stream: TcpStream,
    addr: String,
    buf: Vec<u8>,
}

impl Conn {
    fn open(s: &Server) -> Conn {
        let addr = s.url.trim_start_matches("http://").to_string();
        let stream = TcpStream::connect(&addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Conn {
            stream,
            addr,
            buf: Vec::new(),
        }
    }

    /// `GET target` (sent exactly as given) with optional Basic credentials, already encoded.
    fn get(&mut self, target: &str, auth: Option<&str>) -> Raw {
        let mut req = format!("GET {target} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(a) = auth {
            req.push_str(&format!("Authorization: Basic {a}\r\n"));
        }
        req.push_str("\r\n");
        self.stream.write_all(req.as_bytes()).expect("write");
        self.read()
    }

    fn read(&mut self) -> Raw {
        let mut chunk = [0u8; 65536];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let lower = head.to_ascii_lowercase();
                let len: usize = lower
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + len {
                    let body = self.buf[end + 4..end + 4 + len].to_vec();
                    self.buf.drain(..end + 4 + len);
                    let status = head
                        .split(' ')
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    return Raw { status, head, body };
                }
            }
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "connection closed; buffered: {:?}", self.buf.len());
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// One request on a fresh connection.
fn once(s: &Server, target: &str, auth: Option<&str>) -> Raw {
    Conn::open(s).get(target, auth)
}

/// CPU seconds (user + system) `pid` has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 / 100.0
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A valid 250-byte host name, distinct per `i`.
fn name_250(i: usize) -> String {
    let n = format!(
        "{}.{}.{}.x{i:0>56}y",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63)
    );
    assert_eq!(n.len(), 250);
    n
}

/// A name of about 20 KB made of valid 60-byte labels (far beyond 253 bytes), distinct per `i`.
/// Its request head (the name in the path and, base64, in Authorization) stays under umcd's
/// 64 KiB head limit, beyond which hyper closes the connection before any handler runs.
fn name_20k(i: usize) -> String {
    format!("{}{i:011}x", format!("{}.", "a".repeat(60)).repeat(330))
}

/// Sends `count` requests for distinct unknown hosts (`name(offset + i)`, Basic user = the
/// host) over `conns` keep-alive connections; every answer must be 401 or 404.
fn flood(s: &Server, conns: usize, count: usize, offset: usize, name: fn(usize) -> String) {
    std::thread::scope(|scope| {
        for c in 0..conns {
            scope.spawn(move || {
                let mut conn = Conn::open(s);
                for i in (c..count).step_by(conns) {
                    let host = name(offset + i);
                    let auth = basic(&host, "x");
                    let r = conn.get(&format!("/hosts/{host}/dists/umc/InRelease"), Some(&auth));
                    assert!(
                        r.status == 401 || r.status == 404,
                        "unknown host {}…: {}",
                        &host[..20],
                        r.head
                    );
                }
            });
        }
    });
}

/// Review finding 3: distinct unknown host names, long or not, must not pile up in memory.
#[test]
fn unknown_hosts_do_not_grow_memory() {
    let s = Server::start();
    s.admin_ok(&["node", "add", A]);
    let token = s.node_token(A);
    let inrelease = format!("/hosts/{A}/dists/umc/InRelease");
    assert_eq!(once(&s, &inrelease, Some(&basic(A, &token))).status, 200);
    let started = Instant::now();
    // Warm up what any traffic allocates once (threads, connection buffers, allocator arenas).
    flood(&s, 4, 200, 1_000_000, name_250);
    flood(&s, 4, 100, 1_000_000, name_20k);
    let before = rss_kib(s.pid());
    let cpu = cpu_secs(s.pid());
    flood(&s, 4, 20_000, 0, name_250);
    let middle = rss_kib(s.pid());
    flood(&s, 4, 2_000, 0, name_20k);
    let after = rss_kib(s.pid());
    eprintln!(
        "umcd RSS: {before} KiB before, {middle} KiB after 20,000 250-byte names, \
         {after} KiB after 2,000 20 KB names ({:.1} s, umcd used {:.1} CPU s)",
        started.elapsed().as_secs_f64(),
        cpu_secs(s.pid()) - cpu
    );
    assert!(
        after.saturating_sub(before) < 16 << 10 && middle.saturating_sub(before) < 16 << 10,
        "RSS grew from {before} KiB to {middle} KiB and {after} KiB"
    );
    // The known host is still served.
    assert_eq!(once(&s, &inrelease, Some(&basic(A, &token))).status, 200);
}

/// A syntactically impossible host segment is refused before any cache or the database.
#[test]
fn impossible_host_names_get_404() {
    let s = Server::start();
    for host in [
        &"a".repeat(64)[..],
        &format!("{}.com", "a.".repeat(130))[..],
        "-a.example.com",
        "a..example.com",
        "a.example.com.",
        "a_b.example.com",
        "a%20b.example.com",
    ] {
        let r = once(
            &s,
            &format!("/hosts/{host}/dists/umc/InRelease"),
            Some(&basic(host, "x")),
        );
        assert_eq!(r.status, 404, "{host}: {}", r.head);
        let mut r = Conn::open(&s);
        let req = format!(
            "POST /hosts/{host}/report HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}",
            basic(host, "x")
        );
        r.stream.write_all(req.as_bytes()).expect("write");
        let r = r.read();
        assert_eq!(r.status, 404, "report {host}: {}", r.head);
    }
}

/// Two hosts; b's view differs from a's (its own package and a secret variable).
fn two_hosts() -> (Server, String, String) {
    let s = Server::start();
    s.admin_ok(&["node", "add", A]);
    s.admin_ok(&["node", "add", B, "--var", "secret=B-SECRET"]);
    s.admin_ok(&["task", "add", "web"]);
    s.admin_ok(&["assign", A, "web"]);
    s.admin_ok(&["assign", B, "web"]);
    let (ta, tb) = (s.node_token(A), s.node_token(B));
    (s, ta, tb)
}

/// The review's "what held up → host isolation": URL variants with a's credentials never
/// give b's data.
#[test]
fn a_cannot_reach_b_by_any_path() {
    let (s, ta, tb) = two_hosts();
    let a = basic(A, &ta);
    let b = basic(B, &tb);
    // What b itself gets.
    let get_b = |p: &str| {
        let r = once(&s, &format!("/hosts/{B}/{p}"), Some(&b));
        assert_eq!(r.status, 200, "b's own {p}: {}", r.head);
        r.body
    };
    let b_inrelease = get_b("dists/umc/InRelease");
    let b_packages = get_b("dists/umc/main/binary-amd64/Packages");
    let packages = String::from_utf8_lossy(&b_packages).into_owned();
    let deb = packages
        .lines()
        .filter_map(|l| l.strip_prefix("Filename: "))
        .find(|f| f.contains("umc-b.example.com_"))
        .expect("b's host package in b's Packages")
        .to_string();
    let b_deb = get_b(&deb);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&b_packages))
    };
    let b_files = [&b_inrelease, &b_packages, &b_deb];
    let addr = s.url.trim_start_matches("http://").to_string();
    let variants = [
        format!("/hosts/{B}/dists/umc/InRelease"),
        "/hosts/B.EXAMPLE.COM/dists/umc/InRelease".to_string(),
        "/hosts/%62.example.com/dists/umc/InRelease".to_string(),
        format!("/hosts/{B}./dists/umc/InRelease"),
        format!("/hosts/{A}/../{B}/dists/umc/InRelease"),
        format!("/hosts/{A}/%2e%2e/{B}/dists/umc/InRelease"),
        format!("/hosts/{A}/%2E%2E%2F{B}/dists/umc/InRelease"),
        format!("/hosts/{B}%2f..%2f{A}/dists/umc/InRelease"),
        format!("//hosts/{B}/dists/umc/InRelease"),
        format!("/hosts//{B}/dists/umc/InRelease"),
        format!("/hosts/{A}/pool/../../{B}/dists/umc/InRelease"),
        format!("/hosts/{A}/../../hosts/{B}/dists/umc/Release"),
        format!("/hosts/{A}/{deb}"),
        format!("/hosts/{B}/{deb}"),
        format!("/hosts/{A}/dists/umc/main/binary-amd64/by-hash/SHA256/{sha}"),
        format!("/hosts/{B}/dists/umc/main/binary-amd64/Packages"),
        format!("/hosts/{B}/bootstrap"),
        format!("/hosts/{A}/bootstrap/../../{B}/bootstrap"),
        format!("/hosts/{A}/dists/umc/main/binary-..%2f..%2f..%2f{B}/Packages"),
        format!("http://{addr}/hosts/{B}/dists/umc/InRelease"),
    ];
    assert_eq!(variants.len(), 20);
    for v in &variants {
        let r = once(&s, v, Some(&a));
        assert!(
            matches!(r.status, 303 | 400 | 401 | 404),
            "{v} with a's credentials: {}",
            r.head
        );
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            !body.contains("B-SECRET") && !body.contains("umc-b.example.com"),
            "{v}: {body}"
        );
        assert!(!b_files.contains(&&r.body), "{v} returned one of b's files");
    }
}

/// Credentials that are nearly right are refused; a host name's case does not matter.
#[test]
fn nearly_right_credentials_are_refused() {
    let (s, ta, tb) = two_hosts();
    let url = |h: &str| format!("/hosts/{h}/dists/umc/InRelease");
    let refused = [
        (url(B), basic(B, &ta)),
        (url(A), basic(B, &ta)),
        (url(A), basic(A, &tb)),
        (url(A), basic(A, &format!("{ta} "))),
        (url(A), basic(A, &ta.to_uppercase())),
        (url(A), basic(A, &format!("{ta}:"))),
    ];
    assert_ne!(ta, ta.to_uppercase(), "the token has letters");
    for (u, auth) in &refused {
        // Twice: once against the database, once against the token cache.
        for _ in 0..2 {
            let r = once(&s, u, Some(auth));
            assert_eq!(r.status, 401, "{u} {auth}: {}", r.head);
        }
    }
    let r = once(&s, &url(A), Some(&basic("A.Example.COM", &ta)));
    assert_eq!(r.status, 200, "{}", r.head);
}

/// An unknown host and a wrong password give the same bytes, apart from `Date`, whether the
/// answer comes from the database or from a cache.
#[test]
fn unknown_host_and_wrong_password_look_alike() {
    let (s, ta, _) = two_hosts();
    let ghost = "ghost.example.com";
    let mut seen = Vec::new();
    for _ in 0..2 {
        let wrong = once(
            &s,
            &format!("/hosts/{A}/dists/umc/InRelease"),
            Some(&basic(A, "wrong")),
        );
        let unknown = once(
            &s,
            &format!("/hosts/{ghost}/dists/umc/InRelease"),
            Some(&basic(ghost, &ta)),
        );
        assert_eq!(wrong.status, 401, "{}", wrong.head);
        assert_eq!(wrong.without_date(), unknown.without_date());
        seen.push(wrong.without_date());
    }
    assert_eq!(seen[0], seen[1]);
}
