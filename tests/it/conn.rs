//! Connection limits against a real umcd on 127.0.0.1: idle, half-open and dripping clients
//! are cut off by deadlines, connections are capped per source, h2c is not spoken, the
//! open-file limit is raised, and the request-size limits hold. Attackers connect from other
//! loopback source addresses (127.0.0.2 and up), the legitimate client from 127.0.0.1.

use crate::common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, http, require, require_tool};

const HOST: &str = "web1.example.com";

fn addr(s: &Server) -> SocketAddr {
    s.url
        .trim_start_matches("http://")
        .parse()
        .expect("socket address")
}

/// A blocking TCP connection to `to` from source address `from` (std cannot bind before
/// connecting; tokio's `TcpSocket` can).
fn connect_from(rt: &tokio::runtime::Runtime, from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.bind(SocketAddr::from((from, 0)))?;
        let stream = sock.connect(to).await?;
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        Ok::<_, std::io::Error>(stream)
    })
    .unwrap_or_else(|e| panic!("connect from {from} to {to}: {e}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Whether the server has closed `c` (EOF or reset) by now, without waiting.
fn closed_now(c: &TcpStream) -> bool {
    c.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 4096];
    let mut r = c;
    let closed = loop {
        match r.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    c.set_nonblocking(false).expect("blocking");
    closed
}

/// Waits until the server closes `c` (EOF or reset), at most until `until`; returns when.
fn wait_closed(c: &mut TcpStream, until: Instant) -> Option<Instant> {
    let mut buf = [0u8; 4096];
    loop {
        let left = until.checked_duration_since(Instant::now())?;
        c.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("timeout");
        match c.read(&mut buf) {
            Ok(0) => return Some(Instant::now()),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if Instant::now() >= until {
                    return None;
                }
            }
            Err(_) => return Some(Instant::now()),
        }
    }
}

/// Reads what the server sends until it closes the connection (or `limit` passes).
fn read_answer(c: &mut TcpStream, limit: Duration) -> String {
    c.set_read_timeout(Some(limit)).expect("timeout");
    let mut answer = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// This process's open-file limits (soft, hard), from /proc.
fn open_file_limits(pid: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// Raises the test's own soft open-file limit to its hard limit (it holds thousands of sockets).
fn raise_own_limit() -> u64 {
    umc::http::raise_open_file_limit()
        .expect("raise the open-file limit")
        .unwrap_or(u64::MAX)
}

/// 2,000 silent sockets, 200 holding half an HTTP/2 preface and one body dripped a byte every
/// 2 s do not keep a node from its InRelease or anyone from /healthz, and the server closes
/// them all after their deadlines. umcd starts with a soft open-file limit of 1,024 (systemd's
/// default) and must raise it itself.
#[test]
fn held_connections_do_not_starve_nodes() {
    const HEADER_SECS: u64 = 10;
    const IDLE: usize = 2000;
    const PREFACE: usize = 200;
    let hard = raise_own_limit();
    if !require(hard >= 8192, "an open-file hard limit of at least 8192") {
        return;
    }
    let s = Server::start_wrapped(
        &format!(
            "header_timeout_secs = {HEADER_SECS}\nbody_timeout_secs = 2\n\
             max_connections_per_source = 250\n"
        ),
        &["sh", "-c", "ulimit -Sn 1024 && exec \"$0\" \"$@\""],
    );
    let (soft, umcd_hard) = open_file_limits(&s.pid().to_string());
    assert_eq!(
        soft, umcd_hard,
        "umcd must raise its soft open-file limit (started at 1024) to the hard limit"
    );
    s.admin_ok(&["node", "add", HOST]);
    let token = s.node_token(HOST);
    let inrelease = format!("{}/hosts/{HOST}/dists/umc/InRelease", s.url);
    let healthz = format!("{}/healthz", s.url);
    // Rendered and signed once before the attack: the test is about connections, not render.
    assert_eq!(
        http("GET", &inrelease, Some((HOST, &token)), &[], None).status,
        200
    );

    let to = addr(&s);
    let rt = runtime();
    let started = Instant::now();
    // Each socket is timed from its own connect: on a loaded 2-core CI machine opening 2,200 of
    // them has taken longer than the header deadline itself.
    let held = |from: Ipv4Addr, preface: bool| {
        let mut c = connect_from(&rt, from, to);
        if preface {
            c.write_all(b"PRI * HTTP/2.0\r\n").expect("half preface");
        }
        (Instant::now(), c)
    };
    // 2,000 sockets that send nothing, 200 from each of 127.0.0.2..=127.0.0.11.
    let mut idle: Vec<(Instant, TcpStream)> = (0..IDLE)
        .map(|i| held(Ipv4Addr::new(127, 0, 0, 2 + (i / 200) as u8), false))
        .collect();
    // 200 holding the first 16 of the 24 bytes of the HTTP/2 preface.
    let mut preface: Vec<(Instant, TcpStream)> = (0..PREFACE)
        .map(|_| held(Ipv4Addr::new(127, 0, 0, 12), true))
        .collect();
    let opened = started.elapsed();
    // A login form announced at 60,000 bytes, dripped one byte every 2 s.
    let drip = {
        let mut c = connect_from(&rt, Ipv4Addr::new(127, 0, 0, 13), to);
        std::thread::spawn(move || {
            let t0 = Instant::now();
            c.write_all(
                b"POST /ui/login HTTP/1.1\r\nHost: x\r\n\
                  Content-Type: application/x-www-form-urlencoded\r\n\
                  Content-Length: 60000\r\n\r\nu",
            )
            .expect("head");
            c.set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            let mut buf = [0u8; 4096];
            let mut answer = Vec::new();
            // Bounded: at most 12 s of dripping.
            while t0.elapsed() < Duration::from_secs(12) {
                match c.read(&mut buf) {
                    Ok(0) => return (Some(t0.elapsed()), answer),
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        if c.write_all(b"x").is_err() {
                            return (Some(t0.elapsed()), answer);
                        }
                    }
                    Err(_) => return (Some(t0.elapsed()), answer),
                }
            }
            (None, answer)
        })
    };

    // While all of that is held, the node and /healthz are answered within 1 s.
    let mut slowest = [Duration::ZERO; 2];
    for _ in 0..3 {
        let t = Instant::now();
        let r = http("GET", &inrelease, Some((HOST, &token)), &[], None);
        assert_eq!(r.status, 200, "InRelease under attack");
        slowest[0] = slowest[0].max(t.elapsed());
        let t = Instant::now();
        let r = http("GET", &healthz, None, &[], None);
        assert_eq!(r.status, 200, "/healthz under attack");
        slowest[1] = slowest[1].max(t.elapsed());
    }
    let checked = started.elapsed();
    // ...and they were answered while more sockets were held than the soft limit umcd started
    // with; none of them closed before its own deadline.
    let now = Instant::now();
    let mut still_held = 0;
    for (at, c) in &idle {
        if closed_now(c) {
            let age = now.duration_since(*at);
            assert!(
                age >= Duration::from_secs(HEADER_SECS) - Duration::from_millis(100),
                "an idle socket was closed {age:?} after its connect, before the header deadline"
            );
        } else {
            still_held += 1;
        }
    }
    eprintln!(
        "opened {} sockets in {opened:?}; slowest InRelease {:?}, /healthz {:?}; checks done \
         {checked:?} after the first connect with {still_held} silent sockets still held",
        IDLE + PREFACE,
        slowest[0],
        slowest[1]
    );
    assert!(
        still_held > 1024,
        "the checks must run while more than 1,024 sockets are held (only {still_held} were)"
    );
    for (what, took) in [("InRelease", slowest[0]), ("/healthz", slowest[1])] {
        assert!(
            took < Duration::from_secs(1),
            "{what} took {took:?} under attack"
        );
    }

    // The server closes every one of them by its deadline (bounded wait): the half prefaces
    // at once (not HTTP/1.1), the silent ones when the deadline passes.
    let until = Instant::now() + Duration::from_secs(HEADER_SECS + 8);
    let closed = |socks: &mut [(Instant, TcpStream)]| {
        let ages: Vec<Duration> = socks
            .iter_mut()
            .map(|(at, c)| {
                let gone = wait_closed(c, until).expect("umcd must close a held socket");
                gone.duration_since(*at)
            })
            .collect();
        let first = *ages.iter().min().expect("sockets");
        let last = *ages.iter().max().expect("sockets");
        (first, last)
    };
    let (pre_first, pre_last) = closed(&mut preface);
    let (first, last) = closed(&mut idle);
    eprintln!(
        "counted from each socket's connect, umcd closed the half prefaces after {pre_first:?} \
         to {pre_last:?}, the silent sockets after {first:?} to {last:?} (header deadline \
         {HEADER_SECS} s)"
    );
    assert!(first >= Duration::from_secs(HEADER_SECS) - Duration::from_millis(100));

    let (cut, answer) = drip.join().expect("drip thread");
    let cut = cut.expect("umcd must cut a body dripped at 1 byte per 2 s within 12 s");
    eprintln!(
        "dripped body cut after {cut:?}: {:?}",
        String::from_utf8_lossy(&answer).lines().next()
    );
    assert!(
        cut < Duration::from_secs(8),
        "dripped body cut after {cut:?}"
    );
    // The server is fine afterwards.
    assert_eq!(http("GET", &healthz, None, &[], None).status, 200);
}

/// A keep-alive connection that goes quiet after an answer is closed after the header
/// deadline, counted from that answer.
#[test]
fn idle_keep_alive_connections_are_closed() {
    let s = Server::start_with_config("header_timeout_secs = 1\n");
    let mut c = TcpStream::connect(addr(&s)).expect("connect");
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    while !answer.ends_with(b"ok\n") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => panic!("no answer: {:?}", String::from_utf8_lossy(&answer)),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let answered = Instant::now();
    let closed = wait_closed(&mut c, answered + Duration::from_secs(10))
        .expect("umcd must close an idle keep-alive connection");
    let idle = closed.duration_since(answered);
    eprintln!("idle keep-alive connection closed {idle:?} after the answer");
    assert!(idle >= Duration::from_millis(900), "{idle:?}");
}

/// A client that pipelines requests and never reads the answers stalls umcd's writes; a
/// write that makes no progress for `header_timeout_secs` ends the connection, so such a
/// client cannot keep its slot.
#[test]
fn a_client_that_never_reads_is_cut_off() {
    const REQUESTS: usize = 2000;
    let s = Server::start_with_config("header_timeout_secs = 2\n");
    let rt = runtime();
    let mut c = rt
        .block_on(async {
            let sock = tokio::net::TcpSocket::new_v4()?;
            sock.set_recv_buffer_size(4096)?;
            let stream = sock.connect(addr(&s)).await?.into_std()?;
            stream.set_nonblocking(false)?;
            Ok::<_, std::io::Error>(stream)
        })
        .expect("connect");
    let one = b"GET /ui/static/umc.css HTTP/1.1\r\nHost: x\r\n\r\n";
    let requests: Vec<u8> = one.repeat(REQUESTS);
    // umcd stops reading once its answers back up; a bounded write then gives up.
    c.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let _ = c.write_all(&requests);
    // Read nothing for longer than the stall deadline.
    std::thread::sleep(Duration::from_secs(5));
    let mut got = 0usize;
    let mut buf = [0u8; 65536];
    c.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let closed = loop {
        match c.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false;
            }
            Err(_) => break true,
        }
    };
    eprintln!("read {got} bytes of {REQUESTS} pipelined answers before the end");
    assert!(
        closed,
        "umcd kept a connection whose client read nothing (read {got} bytes afterwards)"
    );
    let all = s.get("/ui/static/umc.css", None, &[]).text().len() * REQUESTS;
    assert!(
        got < all,
        "the connection ended only after every answer ({got} bytes)"
    );
}

/// One source gets `max_connections_per_source` connections; more are closed at once and
/// logged once, not once each. Other sources are not affected, and a freed place is reused.
#[test]
fn connections_per_source_are_capped() {
    let s = Server::start_with_config("max_connections_per_source = 8\n");
    let to = addr(&s);
    let rt = runtime();
    let attacker = Ipv4Addr::new(127, 0, 0, 20);
    let mut held: Vec<TcpStream> = (0..8).map(|_| connect_from(&rt, attacker, to)).collect();
    let t = Instant::now();
    let mut over: Vec<TcpStream> = (0..50).map(|_| connect_from(&rt, attacker, to)).collect();
    for c in &mut over {
        assert!(
            wait_closed(c, t + Duration::from_secs(5)).is_some(),
            "a connection over the cap must be closed at once"
        );
    }
    let refused_in = t.elapsed();
    eprintln!("50 connections over the cap closed within {refused_in:?}");
    assert!(refused_in < Duration::from_secs(2), "{refused_in:?}");
    for c in &held {
        assert!(!closed_now(c), "connections within the cap stay open");
    }
    // Another source, and the legitimate client, are served.
    let mut other = connect_from(&rt, Ipv4Addr::new(127, 0, 0, 21), to);
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    assert!(read_answer(&mut other, Duration::from_secs(5)).starts_with("HTTP/1.1 200"));
    assert_eq!(s.get("/healthz", None, &[]).status, 200);
    // A freed place is given to the next connection from the same source.
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(300));
    let mut again = connect_from(&rt, attacker, to);
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    assert!(read_answer(&mut again, Duration::from_secs(5)).starts_with("HTTP/1.1 200"));
    let log = s.log();
    let lines = log.matches("refused a connection from 127.0.0.20").count();
    assert_eq!(lines, 1, "50 refusals are logged once:\n{log}");
}

/// Out of descriptors, umcd logs the failed accepts at most once per 10 s (it logged one
/// every 50 ms), warns at start that its limit is too low, and recovers once clients leave.
#[test]
fn running_out_of_descriptors_does_not_flood_the_log() {
    let s = Server::start_wrapped("", &["sh", "-c", "ulimit -n 64 && exec \"$0\" \"$@\""]);
    let to = addr(&s);
    let rt = runtime();
    let mut held: Vec<TcpStream> = (0..100)
        .map(|_| connect_from(&rt, Ipv4Addr::new(127, 0, 0, 30), to))
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let text = s.log();
    let accepts = text.matches("accept: ").count();
    eprintln!("{accepts} accept warnings in 3 s");
    assert!(
        text.contains("Too many open files"),
        "the test must exhaust umcd's descriptors:\n{text}"
    );
    assert!(accepts <= 1, "accept errors flood the log:\n{text}");
    let stderr_start = text.contains("the open-file limit is 64");
    assert!(
        stderr_start,
        "umcd warns about a low limit at start:\n{text}"
    );
    held.iter_mut().for_each(|c| {
        let _ = c.shutdown(std::net::Shutdown::Both);
    });
    drop(held);
    // Recovered: connections are accepted and served again.
    let t = Instant::now();
    loop {
        let mut c = TcpStream::connect(to).expect("connect");
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("write");
        if read_answer(&mut c, Duration::from_secs(2)).starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "umcd did not recover"
        );
    }
}

/// h2c is not spoken: curl with HTTP/2 prior knowledge gets no HTTP/2 answer, and a socket
/// sending the whole preface is closed at once instead of being held.
#[test]
fn h2c_is_off() {
    let s = Server::start();
    if require_tool("curl") {
        let run = |extra: &[&str]| {
            let out = Command::new("curl")
                .args([
                    "-sS",
                    "-m",
                    "10",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_version}",
                ])
                .args(extra)
                .arg(format!("{}/healthz", s.url))
                .output()
                .expect("curl");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        };
        assert_eq!(
            run(&[]),
            (true, "1.1".to_string()),
            "control: HTTP/1.1 works"
        );
        let (ok, version) = run(&["--http2-prior-knowledge"]);
        assert!(
            !ok && version != "2",
            "h2c must get no HTTP/2 answer: {ok} {version}"
        );
    }
    let mut c = TcpStream::connect(addr(&s)).expect("connect");
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .expect("preface");
    let t = Instant::now();
    let answer = read_answer(&mut c, Duration::from_secs(5));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "a preface is not held"
    );
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}

/// A body that keeps arriving faster than 16 KiB/s is not cut, however long it takes in all.
#[test]
fn a_flowing_body_outlives_the_body_deadline() {
    let s = Server::start_with_config("body_timeout_secs = 1\n");
    let mut c = TcpStream::connect(addr(&s)).expect("connect");
    // 3 s of sending 160 KiB at 64 KiB/s (the deadline grows by 4 s).
    let mut body = b"{\"ops\":[]}".to_vec();
    body.resize(160 << 10, b' ');
    write!(
        c,
        "POST /api/v1/edit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.token(),
        body.len()
    )
    .expect("head");
    for chunk in body.chunks(8 << 10) {
        c.write_all(chunk).expect("body chunk");
        std::thread::sleep(Duration::from_millis(125));
    }
    let answer = read_answer(&mut c, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 "), "{answer:?}");
    assert!(!answer.contains("in time"), "{answer}");
}

/// The review's "Limits" that held up stay true: more than 100 headers, or one header of
/// 500 KB, close the connection without an answer from a handler; a 10 MB Content-Length gets
/// 413 before any of the body is sent; a 12 MiB chunked body gets 413.
#[test]
fn request_size_limits_hold() {
    let s = Server::start();
    let to = addr(&s);
    let token = s.token();

    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..101 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let mut c = TcpStream::connect(to).expect("connect");
    c.write_all(many.as_bytes()).expect("write");
    let answer = read_answer(&mut c, Duration::from_secs(5));
    assert!(!answer.contains(" 200 "), "101 headers: {answer:?}");
    assert!(closed_now(&c), "101 headers close the connection");

    // 200 KB is below hyper's default buffer limit (so it always parsed before umcd set its
    // own); 500 KB is above it, but one large read could carry a head past that limit too.
    for size in [200_000, 500_000] {
        let mut c = TcpStream::connect(to).expect("connect");
        let big = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(size)
        );
        // umcd may close before it has read everything: a failed write is fine.
        let _ = c.write_all(big.as_bytes());
        let answer = read_answer(&mut c, Duration::from_secs(5));
        assert!(
            !answer.contains(" 200 "),
            "a {size}-byte header: {answer:?}"
        );
        assert!(closed_now(&c), "a {size}-byte header closes the connection");
    }

    // Only the head: the 413 must come before any of the body.
    let mut c = TcpStream::connect(to).expect("connect");
    write!(
        c,
        "POST /api/v1/edit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
    )
    .expect("head");
    let answer = read_answer(&mut c, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");

    let mut c = TcpStream::connect(to).expect("connect");
    write!(
        c,
        "POST /api/v1/edit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .expect("head");
    let chunk = vec![b' '; 1 << 20];
    let mut writer = c.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        for _ in 0..12 {
            if write!(writer, "{:x}\r\n", chunk.len()).is_err()
                || writer.write_all(&chunk).is_err()
                || writer.write_all(b"\r\n").is_err()
            {
                return;
            }
        }
        let _ = writer.write_all(b"0\r\n\r\n");
    });
    let answer = read_answer(&mut c, Duration::from_secs(20));
    let _ = c.shutdown(std::net::Shutdown::Both);
    sender.join().expect("sender");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
}

/// The review's "Limits" for JSON bodies: 100,000 nested arrays (a recursion bomb) and a body
/// that is not UTF-8 get 400, and umcd carries on.
#[test]
fn deep_and_non_utf8_json_get_400() {
    let s = Server::start();
    let post = |body: &[u8]| s.api("POST", "/api/v1/edit", Some(body));
    let deep = format!("{{\"ops\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let mut latin1 = br#"{"ops":[{"op":"task_add","task":"caf"#.to_vec();
    latin1.extend_from_slice(b"\xe9\"}]}");
    for (what, body) in [("deep", deep.into_bytes()), ("non-UTF-8", latin1)] {
        let r = post(&body);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
    }
    assert_eq!(s.get("/healthz", None, &[]).status, 200);
    let r = post(br#"{"ops":[{"op":"task_add","task":"cafe"}]}"#);
    assert_eq!(r.status, 200, "{}", r.text());
}
