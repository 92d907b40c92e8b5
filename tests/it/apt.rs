//! Stock apt-get against a running umcd: signatures, edits reaching nodes, tampering.

use crate::common;

use common::{Apt, Server, require_tool, show, version_gt};

fn tools() -> bool {
    require_tool("apt-get") && require_tool("dpkg-deb") && require_tool("dpkg")
}

const HOST: &str = "grumpy.example.com";

/// A server with one host running task `web` (which includes `base`).
fn fleet() -> Server {
    let s = Server::start();
    s.admin_ok(&["node", "add", HOST, "--var", "role=web"]);
    s.admin_ok(&["task", "add", "web", "--description", "Web frontends"]);
    s.admin_ok(&["task", "add", "base"]);
    s.admin_ok(&[
        "task",
        "depend",
        "web",
        "nginx-light",
        "php8.2-fpm (>= 8.2)",
        "mawk | gawk",
    ]);
    s.admin_ok(&["task", "depend", "base", "less"]);
    s.admin_ok(&["task", "include", "web", "base"]);
    s.admin_ok(&["assign", HOST, "web"]);
    s
}

fn apt_for(s: &Server) -> Apt {
    Apt::new(&s.url, HOST, &s.node_token(HOST), &s.keyring())
}

#[test]
fn signature_accepted_and_every_edit_reaches_the_node() {
    if !tools() {
        return;
    }
    let s = fleet();
    let apt = apt_for(&s);
    apt.update_ok();
    let host_pkg = format!("umc-{HOST}");
    let v_web = apt
        .field("umc-task-web", "Version")
        .expect("umc-task-web known");
    let v_base = apt
        .field("umc-task-base", "Version")
        .expect("umc-task-base known");
    // Versioned, so that installing the host package upgrades every changed task package.
    let v_node = apt.field("umc-node", "Version").expect("umc-node known");
    assert_eq!(
        apt.field(&host_pkg, "Depends"),
        Some(format!("umc-node (>= {v_node}), umc-task-web (>= {v_web})"))
    );
    assert_eq!(
        apt.field("umc-task-web", "Depends"),
        Some(format!(
            "umc-task-base (>= {v_base}), nginx-light, php8.2-fpm (>= 8.2), mawk | gawk"
        ))
    );

    // The debs download, and match what apt was promised (apt checks size and hash itself).
    let files = apt.download(&[&host_pkg, "umc-task-web", "umc-task-base"]);
    assert_eq!(files.len(), 3, "{files:?}");

    // task depend
    s.admin_ok(&["task", "depend", "web", "curl"]);
    apt.update_ok();
    let v2 = apt.field("umc-task-web", "Version").expect("version");
    assert!(version_gt(&v2, &v_web), "{v2} > {v_web}");
    assert!(
        apt.field("umc-task-web", "Depends")
            .unwrap_or_default()
            .contains("curl")
    );

    // task remove -> Conflicts
    s.admin_ok(&["task", "remove", "web", "apache2"]);
    apt.update_ok();
    let v3 = apt.field("umc-task-web", "Version").expect("version");
    assert!(version_gt(&v3, &v2), "{v3} > {v2}");
    assert_eq!(
        apt.field("umc-task-web", "Conflicts").as_deref(),
        Some("apache2")
    );

    // unassign: the host package no longer depends on the task, and the task leaves the view
    let v_host = apt.field(&host_pkg, "Version").expect("version");
    s.admin_ok(&["unassign", HOST, "web"]);
    apt.update_ok();
    let v_host2 = apt.field(&host_pkg, "Version").expect("version");
    assert!(version_gt(&v_host2, &v_host), "{v_host2} > {v_host}");
    let v_node = apt.field("umc-node", "Version").expect("umc-node");
    assert_eq!(
        apt.field(&host_pkg, "Depends"),
        Some(format!("umc-node (>= {v_node})"))
    );
    assert_eq!(apt.field("umc-task-web", "Version"), None);

    // the changelog inside the package names the user and the change
    let files = apt.download(&[&host_pkg]);
    let deb = files
        .iter()
        .find(|f| f.to_string_lossy().contains(&v_host2.replace(':', "%3a")))
        .expect("downloaded host deb");
    let out = std::process::Command::new("dpkg-deb")
        .args(["--fsys-tarfile"])
        .arg(deb)
        .output()
        .expect("dpkg-deb");
    assert!(out.status.success());
    let x = tempfile::tempdir().expect("tempdir");
    let st = std::process::Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(x.path())
        .status()
        .expect("dpkg-deb -x");
    assert!(st.success());
    let gz = std::fs::read(
        x.path()
            .join(format!("usr/share/doc/{host_pkg}/changelog.gz")),
    )
    .expect("changelog.gz");
    let mut text = String::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .expect("gunzip");
    assert!(
        text.contains("  * User 'admin' unassigned task 'web' from node 'grumpy.example.com'"),
        "{text}"
    );
}

#[test]
fn wrong_key_is_refused() {
    if !tools() {
        return;
    }
    let s = fleet();
    let other = umc::sign::SigningKeys::generate("someone else <x@example.invalid>")
        .expect("key")
        .public_keyring_binary()
        .expect("keyring");
    let apt = Apt::new(&s.url, HOST, &s.node_token(HOST), &other);
    let out = apt.get(&["update"]);
    assert!(
        !out.status.success(),
        "update with a wrong key must fail: {}",
        show(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NO_PUBKEY") || err.contains("Missing key") || err.contains("not signed"),
        "{}",
        show(&out)
    );
    assert_eq!(apt.field("umc-task-web", "Version"), None);
}

#[test]
fn wrong_token_is_refused() {
    if !tools() {
        return;
    }
    let s = fleet();
    let apt = Apt::new(&s.url, HOST, "not-the-token", &s.keyring());
    let out = apt.get(&["update"]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        show(&out)
    );
}

/// A proxy that passes everything through but flips one byte in every index body.
fn tampering_proxy(upstream: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        // Bounded: a test needs a handful of requests.
        for conn in listener.incoming().take(200) {
            let Ok(mut c) = conn else { break };
            let upstream = upstream.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let mut lines = head.split("\r\n");
                let request_line = lines.next().unwrap_or_default().to_string();
                let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(": "))
                    .filter(|(k, _)| {
                        !["host", "connection"].contains(&k.to_ascii_lowercase().as_str())
                    })
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let hdrs: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let r = common::http("GET", &format!("{upstream}{path}"), None, &hdrs, None);
                let mut body = r.body.clone();
                if path.contains("/binary-") && !body.is_empty() {
                    let i = body.len() / 2;
                    body[i] ^= 0x01;
                }
                let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", r.status);
                for (k, v) in &r.headers {
                    let k = k.to_ascii_lowercase();
                    if k != "content-length" && k != "connection" && k != "transfer-encoding" {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                }
                out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
                let _ = c.write_all(out.as_bytes());
                let _ = c.write_all(&body);
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn index_altered_on_the_wire_is_refused() {
    if !tools() {
        return;
    }
    let s = fleet();
    let proxy = tampering_proxy(s.url.clone());
    let apt = Apt::new(&proxy, HOST, &s.node_token(HOST), &s.keyring());
    let out = apt.get(&["update"]);
    assert!(
        !out.status.success(),
        "tampered index accepted: {}",
        show(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Hash Sum mismatch")
            || err.contains("File has unexpected size")
            || err.contains("E:"),
        "{}",
        show(&out)
    );
    assert_eq!(
        apt.field("umc-task-web", "Version"),
        None,
        "no tampered index may be used"
    );
}

#[test]
fn same_second_edits_both_reach_the_node() {
    if !tools() {
        return;
    }
    let s = fleet();
    let apt = apt_for(&s);
    // Several rounds: edit, update, edit again at once, update. Each update must see the
    // latest edit, even when both edits fell in one second (apt's If-Modified-Since has
    // one-second granularity).
    let mut same_second = 0;
    for i in 0..5 {
        s.admin_ok(&["task", "depend", "web", &format!("pkg-a{i}")]);
        apt.update_ok();
        let out = s.admin_ok(&["task", "depend", "web", &format!("pkg-b{i}")]);
        apt.update_ok();
        let depends = apt.field("umc-task-web", "Depends").unwrap_or_default();
        assert!(
            depends.contains(&format!("pkg-b{i}")),
            "round {i}: {depends}\n{out}"
        );
        let log = s.admin_ok(&["log", "--task", "web", "-n", "2", "--json"]);
        let entries: Vec<umc::api::LogEntry> = serde_json::from_str(&log).expect("log json");
        if entries.len() == 2 && entries[0].time == entries[1].time {
            same_second += 1;
        }
    }
    eprintln!("{same_second} of 5 rounds had both edits in one second");
}
