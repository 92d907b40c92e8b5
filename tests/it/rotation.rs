//! Node token rotation (issue 13, point 2) through umcd's HTTP interfaces and umc-admin: both
//! tokens work until the node reports the umc-node that carries the new one, made with the new
//! token; `--force` revokes the old token at once; only an admin rotates. The real delivery
//! through apt and dpkg is in tests/it/chroot.rs.

use crate::common;

use std::process::{Command, Output};

use common::{Server, http, require_tool, show};
use umc::api::{NodeInfo, NodeToken, TokenRotateResponse};

const A: &str = "a.example.com";
const B: &str = "b.example.com";

fn inrelease(s: &Server, host: &str, token: &str) -> u16 {
    s.get(
        &format!("/hosts/{host}/dists/umc/InRelease"),
        Some((host, token)),
        &[],
    )
    .status
}

/// A's report, made with `token`, of `umc-node` at `node_version`.
fn post_report(s: &Server, token: &str, node_version: &str) -> u16 {
    let report = common::report::report(&[("umc-node", node_version)]);
    s.post_report(A, (A, token), report.as_bytes()).status
}

fn rotate(s: &Server, extra: &[&str]) -> (TokenRotateResponse, Output) {
    let mut args = vec!["node", "token", A, "--rotate", "--json"];
    args.extend_from_slice(extra);
    let out = s.admin(&args);
    assert!(out.status.success(), "{}", show(&out));
    let r = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    (r, out)
}

fn node_token(s: &Server) -> NodeToken {
    serde_json::from_str(&s.admin_ok(&["node", "token", A, "--json"])).expect("json")
}

/// The `auth.conf.d` entry in the umc-node that `A`'s repository lists, read with dpkg-deb.
fn shipped_auth(s: &Server, token: &str) -> (String, String) {
    let packages = s
        .get(
            &format!("/hosts/{A}/dists/umc/main/binary-amd64/Packages"),
            Some((A, token)),
            &[],
        )
        .text();
    let stanza = packages
        .split("\n\n")
        .find(|p| p.starts_with("Package: umc-node\n"))
        .expect("umc-node stanza");
    let field = |f: &str| {
        stanza
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{f}: ")))
            .expect(f)
            .to_string()
    };
    let deb = s.get(
        &format!("/hosts/{A}/{}", field("Filename")),
        Some((A, token)),
        &[],
    );
    assert_eq!(deb.status, 200);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("umc-node.deb");
    std::fs::write(&path, &deb.body).expect("write deb");
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&path)
        .arg(dir.path().join("root"))
        .output()
        .expect("dpkg-deb");
    assert!(out.status.success(), "{}", show(&out));
    let auth = std::fs::read_to_string(dir.path().join("root/etc/apt/auth.conf.d/umc.conf"))
        .expect("auth.conf");
    (field("Version"), auth)
}

#[test]
fn both_tokens_work_until_the_node_reports_the_new_umc_node_with_the_new_token() {
    if !require_tool("dpkg-deb") {
        return;
    }
    let s = Server::start();
    s.admin_ok(&["node", "add", A]);
    s.admin_ok(&["node", "add", B]);
    s.admin_ok(&["node", "set", A, "--url", &s.url]);
    let old = s.node_token(A);
    let b_token = s.node_token(B);
    assert_eq!(inrelease(&s, A, &old), 200);
    assert_eq!(node_token(&s).rotation, None);

    let (r, out) = rotate(&s, &[]);
    let new = r.token.clone();
    assert_ne!(new, old);
    assert_eq!(new.len(), 64);
    let rot = r.rotation.clone().expect("a rotation under way");
    assert_eq!(rot.until, format!("1.{}", r.generation));
    assert_eq!(
        r.changes,
        [format!("User 'admin' rotated the token of node '{A}'")]
    );
    assert!(!show(&out).contains(&old), "the old token is never shown");

    // The next umc-node carries the new token in its auth.conf.d entry.
    let (version, auth) = shipped_auth(&s, &new);
    assert_eq!(version, rot.until);
    assert_eq!(auth.matches(&new).count(), 1, "{auth}");
    assert!(!auth.contains(&old), "{auth}");

    // Both tokens authenticate meanwhile, apt and reports alike; nothing else does.
    assert_eq!(inrelease(&s, A, &old), 200);
    assert_eq!(inrelease(&s, A, &new), 200);
    assert_eq!(inrelease(&s, A, &b_token), 401);
    assert_eq!(inrelease(&s, B, &old), 401);
    assert_eq!(inrelease(&s, B, &b_token), 200);

    // `node token` and `node show` tell the state, never the old token.
    let out = s.admin(&["node", "token", A]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), new);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("until it reports umc-node {}", rot.until)),
        "{err}"
    );
    let shown = s.admin_ok(&["node", "show", A]);
    assert!(
        shown.contains(&format!(
            "rotating: the previous token works until the node reports umc-node {}",
            rot.until
        )),
        "{shown}"
    );
    let info: NodeInfo =
        serde_json::from_str(&s.admin_ok(&["node", "show", A, "--json"])).expect("json");
    assert_eq!(info.rotation.as_ref(), Some(&rot));
    for text in [
        shown,
        s.admin_ok(&["node", "show", A, "--json"]),
        s.admin_ok(&["node", "token", A, "--json"]),
    ] {
        assert!(!text.contains(&old), "{text}");
    }

    // A second rotation while this one is under way is refused, and changes nothing.
    let out = s.admin(&["node", "token", A, "--rotate"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        show(&out).contains("a token rotation is still under way"),
        "{}",
        show(&out)
    );
    assert_eq!(s.node_token(A), new);

    // Reports that do not end the rotation: the old umc-node with the new token, and the new
    // umc-node reported with the old token (a leaked token cannot close the window).
    let before = format!("1.{}", r.generation - 1);
    assert_eq!(post_report(&s, &new, &before), 200);
    assert_eq!(post_report(&s, &old, &rot.until), 200);
    assert_eq!(inrelease(&s, A, &old), 200, "still under way");
    assert!(node_token(&s).rotation.is_some());

    // The node reports the new umc-node with the new token: the old token is refused at once,
    // although its cache entry is warm and no generation moved.
    let generation = r.generation;
    assert_eq!(post_report(&s, &new, &rot.until), 200);
    assert_eq!(inrelease(&s, A, &old), 401);
    assert_eq!(post_report(&s, &old, &rot.until), 401);
    assert_eq!(inrelease(&s, A, &new), 200);
    assert_eq!(node_token(&s).rotation, None);
    let info: NodeInfo =
        serde_json::from_str(&s.admin_ok(&["node", "show", A, "--json"])).expect("json");
    assert_eq!((info.generation, info.rotation), (generation, None));

    // The rotation is in the history, by its user.
    let log = s.admin_ok(&["log", "--host", A]);
    assert!(log.contains("rotated the token of node"), "{log}");
}

#[test]
fn force_revokes_the_old_token_at_once_and_the_rotation_is_durable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut s = Server::start_in(&data);
    s.admin_ok(&["node", "add", A]);
    let t0 = s.node_token(A);
    let (r1, _) = rotate(&s, &[]);
    let t1 = r1.token;

    // The answer came after the commit: a kill -9 loses nothing.
    let addr = s.url.strip_prefix("http://").expect("url").to_string();
    s.kill9();
    let s = Server::start_in_with(&data, &["--listen", &addr]);
    assert_eq!(s.node_token(A), t1);
    assert_eq!(inrelease(&s, A, &t0), 200);
    assert_eq!(inrelease(&s, A, &t1), 200);

    // --force: a third token; neither earlier one works, without waiting for any report.
    let (r2, out) = rotate(&s, &["--force"]);
    assert_eq!(r2.rotation, None);
    assert!(
        r2.changes[0].ends_with("the old token no longer works"),
        "{}",
        show(&out)
    );
    let t2 = r2.token;
    assert_eq!(inrelease(&s, A, &t0), 401);
    assert_eq!(inrelease(&s, A, &t1), 401);
    assert_eq!(inrelease(&s, A, &t2), 200);
    assert_eq!(post_report(&s, &t1, "1.1"), 401);
    assert_eq!(post_report(&s, &t2, "1.1"), 200);

    // The human form says what to do next; --force alone is a usage error.
    let out = s.admin(&["node", "token", A, "--rotate", "--force"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("umc-admin node enroll"),
        "{}",
        show(&out)
    );
    let out = s.admin(&["node", "token", A, "--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

#[test]
fn only_an_admin_rotates_and_the_export_carries_the_previous_token() {
    let s = Server::start();
    s.admin_ok(&["node", "add", A]);
    let old = s.node_token(A);
    let admin = s.token();
    for role in ["viewer", "operator"] {
        let out = s.admin_as(
            &admin,
            &["user", "add", role, "--role", role],
            "correct horse battery\n",
        );
        assert!(out.status.success(), "{}", show(&out));
        let out = s.admin_as(
            "not-a-token",
            &["token", "create", "--user", role, "--name", "t"],
            "correct horse battery\n",
        );
        assert!(out.status.success(), "{}", show(&out));
        let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let bearer = format!("Bearer {token}");
        let r = http(
            "POST",
            &format!("{}/api/v1/nodes/{A}/token", s.url),
            None,
            &[("Authorization", &bearer)],
            Some(b"{}"),
        );
        assert_eq!(r.status, 403, "{role}: {}", r.text());
        // Nor through the edit endpoint.
        let r = http(
            "POST",
            &format!("{}/api/v1/edit", s.url),
            None,
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
            ],
            Some(format!(r#"{{"ops":[{{"op":"node_token_rotate","host":"{A}"}}]}}"#).as_bytes()),
        );
        assert_eq!(r.status, 403, "{role}: {}", r.text());
    }
    assert_eq!(s.node_token(A), old, "nothing rotated");
    // An empty body is a plain rotation; a malformed one is refused.
    let r = http(
        "POST",
        &format!("{}/api/v1/nodes/{A}/token", s.url),
        None,
        &[("Authorization", &format!("Bearer {admin}"))],
        Some(b"{\"forse\":true}"),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = http(
        "POST",
        &format!("{}/api/v1/nodes/{A}/token", s.url),
        None,
        &[("Authorization", &format!("Bearer {admin}"))],
        Some(b""),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let rotated: TokenRotateResponse = serde_json::from_slice(&r.body).expect("json");
    let until = rotated.rotation.expect("rotation").generation;

    // export --with-secrets carries the previous token (an import keeps the node working);
    // without secrets, no token at all.
    let plain = s.admin_ok(&["export"]);
    assert!(
        !plain.contains(&old) && !plain.contains("previous_token"),
        "{plain}"
    );
    let secret = s.admin_ok(&["export", "--with-secrets", "--history"]);
    assert!(
        secret.contains(&format!("previous_token = \"{old}\"")),
        "{secret}"
    );
    assert!(
        secret.contains(&format!("previous_token_until = {until}")),
        "{secret}"
    );

    // Import into an empty server: both tokens still work there.
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("fleet.toml");
    std::fs::write(&file, &secret).expect("write");
    let t = Server::start();
    t.admin_ok(&["import", file.to_str().expect("utf8")]);
    assert_eq!(
        t.admin_ok(&["export", "--with-secrets", "--history"]),
        secret
    );
    assert_eq!(inrelease(&t, A, &old), 200);
    assert_eq!(inrelease(&t, A, &rotated.token), 200);
    let info: NodeInfo =
        serde_json::from_str(&t.admin_ok(&["node", "show", A, "--json"])).expect("json");
    assert_eq!(info.rotation.map(|r| r.generation), Some(until));
}
