//! Users, roles and API tokens: what each role may do, and how tokens stop working.

use crate::common;

use std::process::Output;

use common::{Server, show};

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Adds `name` with `role` (password piped) and returns a token it got with its password.
fn user_with_token(s: &Server, name: &str, role: &str) -> String {
    let admin = s.token();
    ok(s.admin_as(
        &admin,
        &["user", "add", name, "--role", role],
        "correct horse battery\n",
    ));
    let out = ok(s.admin_as(
        "not-a-token",
        &["token", "create", "--user", name, "--name", "test"],
        "correct horse battery\n",
    ));
    out.trim().to_string()
}

fn edit(s: &Server, token: &str, body: &str) -> common::Resp {
    post(s, token, "/edit", body)
}

fn get(s: &Server, token: &str, path: &str) -> common::Resp {
    s.call("GET", &format!("/api/v1{path}"), Some(token), None)
}

fn post(s: &Server, token: &str, path: &str, body: &str) -> common::Resp {
    s.call(
        "POST",
        &format!("/api/v1{path}"),
        Some(token),
        Some(body.as_bytes()),
    )
}

const NODE_ADD: &str = r#"{"ops":[{"op":"node_add","host":"web1.example.com"}]}"#;

#[test]
fn a_viewer_reads_but_may_not_edit() {
    let s = Server::start();
    let v = user_with_token(&s, "v", "viewer");
    assert_eq!(get(&s, &v, "/nodes").status, 200);
    let r = edit(&s, &v, NODE_ADD);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text().contains("user 'v' (viewer) may not"),
        "{}",
        r.text()
    );
    assert_eq!(get(&s, &v, "/backup").status, 403, "backups hold secrets");
    assert_eq!(get(&s, &v, "/users").status, 403);
}

#[test]
fn an_operator_edits_nodes_and_assignments_but_not_tasks() {
    let s = Server::start();
    s.admin_ok(&["task", "add", "web"]);
    let o = user_with_token(&s, "op", "operator");
    let r = edit(&s, &o, NODE_ADD);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = edit(
        &s,
        &o,
        r#"{"ops":[{"op":"assign","host":"web1.example.com","tasks":["web"]}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = edit(&s, &o, r#"{"ops":[{"op":"task_add","task":"db"}]}"#);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text()
            .contains("user 'op' (operator) may not edit with op 'task_add'"),
        "{}",
        r.text()
    );
    // The history names the acting user.
    let log = s.admin_ok(&["log", "--json"]);
    assert!(log.contains("\"user\": \"op\""), "{log}");
}

#[test]
fn revoked_expired_and_orphaned_tokens_are_refused() {
    let s = Server::start();
    let admin = s.token();
    let v = user_with_token(&s, "v", "viewer");
    // Revoked.
    let list: serde_json::Value =
        serde_json::from_str(&ok(s.admin_as(&v, &["token", "list", "--json"], ""))).expect("json");
    let id = list[0]["id"].as_str().expect("id").to_string();
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(1),
        "a viewer sees its own"
    );
    ok(s.admin_as(&v, &["token", "revoke", &id], ""));
    assert_eq!(get(&s, &v, "/nodes").status, 401);
    // Expired: --expires 0 expires at once.
    let out = ok(s.admin_as(&admin, &["token", "create", "--expires", "0"], ""));
    assert_eq!(get(&s, out.trim(), "/nodes").status, 401);
    // A removed user's token.
    let w = user_with_token(&s, "w", "operator");
    assert_eq!(get(&s, &w, "/nodes").status, 200);
    s.admin_ok(&["user", "rm", "w"]);
    assert_eq!(get(&s, &w, "/nodes").status, 401);
    // A wrong password gets no token.
    let out = s.admin_as("x", &["token", "create", "--user", "v"], "wrong password\n");
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    // The bootstrap token still works.
    assert_eq!(get(&s, &admin, "/nodes").status, 200);
}

#[test]
fn user_list_shows_roles_and_no_hashes() {
    let s = Server::start();
    ok(s.admin_as(
        &s.token(),
        &["user", "add", "op", "--role", "operator"],
        "correct horse battery\n",
    ));
    let table = s.admin_ok(&["user", "list"]);
    assert!(table.contains("admin") && table.contains("op"), "{table}");
    assert!(table.contains("operator"), "{table}");
    let json = s.admin_ok(&["user", "list", "--json"]);
    for text in [&table, &json] {
        assert!(!text.contains("argon2"), "{text}");
        assert!(!text.contains("correct horse"), "{text}");
    }
    // A short password is refused; passwd changes it (the old one stops working).
    let out = s.admin_as(&s.token(), &["user", "add", "x"], "short\n");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    ok(s.admin_as(&s.token(), &["user", "passwd", "op"], "another long one\n"));
    let out = s.admin_as(
        "x",
        &["token", "create", "--user", "op"],
        "correct horse battery\n",
    );
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    ok(s.admin_as(
        "x",
        &["token", "create", "--user", "op"],
        "another long one\n",
    ));
}

/// Review #8: a restart revoked every token of `admin` but admin.token. Now only a replaced
/// admin.token is revoked (and logged); tokens made with `token create` survive.
#[test]
fn tokens_survive_restarts_and_only_a_new_admin_token_revokes_the_old() {
    let mut s = Server::start();
    let data = s.data.clone();
    let old_admin = s.token();
    let ci = ok(s.admin_as(&old_admin, &["token", "create", "--name", "ci-token"], ""));
    let ci = ci.trim().to_string();
    let v = user_with_token(&s, "v", "viewer");
    assert_eq!(get(&s, &ci, "/server").status, 200);
    s.stop();
    let mut s2 = Server::start_in(&data);
    assert_eq!(
        get(&s2, &ci, "/server").status,
        200,
        "ci token after restart"
    );
    assert_eq!(
        get(&s2, &v, "/server").status,
        200,
        "viewer token after restart"
    );
    assert_eq!(get(&s2, &old_admin, "/server").status, 200);
    let labels = s2.admin_ok(&["token", "list", "--json"]);
    assert!(
        labels.contains("ci-token") && labels.contains("admin.token"),
        "{labels}"
    );
    // A new admin.token (the way to revoke a leaked one) revokes the old one only, and says so.
    s2.stop();
    std::fs::write(
        data.join("admin.token"),
        "a-brand-new-admin-token-0123456789\n",
    )
    .expect("write");
    let s3 = Server::start_in(&data);
    assert_eq!(
        get(&s3, &old_admin, "/server").status,
        401,
        "old admin.token"
    );
    assert_eq!(get(&s3, &s3.token(), "/server").status, 200);
    assert_eq!(get(&s3, &ci, "/server").status, 200, "ci token");
    let log = std::fs::read_to_string(data.join("umcd.log")).expect("log");
    assert!(log.contains("revoked the previous admin.token"), "{log}");
    drop(s);
}

/// Review #10: token labels are bounded and a user holds at most 100 tokens; a refused
/// request stores nothing.
#[test]
fn token_labels_and_counts_are_bounded() {
    let s = Server::start();
    let v = user_with_token(&s, "v", "viewer");
    let count = |s: &Server| -> usize {
        let r = get(s, &s.token(), "/tokens");
        serde_json::from_slice::<Vec<serde_json::Value>>(&r.body)
            .expect("json")
            .len()
    };
    let before = count(&s);
    let long = "x".repeat(129);
    for (label, says) in [
        (long.as_str(), "longer than 128"),
        ("bad\u{1b}[2J", "control characters"),
        ("admin.token", "reserved"),
    ] {
        let body = serde_json::json!({ "name": label }).to_string();
        let r = post(&s, &v, "/tokens", &body);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(
            r.text().contains("token label") && r.text().contains(says),
            "{}",
            r.text()
        );
    }
    let r = post(
        &s,
        &v,
        "/tokens",
        &format!(r#"{{"name":"{}"}}"#, "y".repeat(7_000_000)),
    );
    assert!([400, 413].contains(&r.status), "{}", r.status);
    assert_eq!(count(&s), before, "nothing stored");
    // 128 bytes is fine; then up to 100 tokens (v has one already).
    let r = post(
        &s,
        &v,
        "/tokens",
        &format!(r#"{{"name":"{}"}}"#, "z".repeat(128)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    for i in 2..100 {
        let r = post(&s, &v, "/tokens", &format!(r#"{{"name":"t{i}"}}"#));
        assert_eq!(r.status, 200, "token {i}: {}", r.text());
    }
    let r = post(&s, &v, "/tokens", r#"{"name":"one too many"}"#);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("at most 100"), "{}", r.text());
    assert_eq!(count(&s), before + 99);
    // The limit is per user: the admin still gets one.
    ok(s.admin(&["token", "create", "--name", "mine"]));
}

/// Review #10 and #12: audit records are bounded field by field, name nodes only, and are
/// shown as what the client reported.
#[test]
fn audit_records_are_bounded_and_name_nodes() {
    let s = Server::start();
    s.admin_ok(&["node", "add", "a.example.com"]);
    let o = user_with_token(&s, "op", "operator");
    let audit = |targets: serde_json::Value, command: &str, results: serde_json::Value| {
        let body = serde_json::json!({"targets": targets, "command": command, "results": results});
        post(&s, &o, "/audit", &body.to_string())
    };
    let host = |h: &str, error: Option<String>| serde_json::json!([{"host": h, "exit": 0, "signal": null, "duration_ms": 1, "error": error}]);
    let all = serde_json::json!(["all"]);
    let many: Vec<String> = (0..1025).map(|i| format!("h{i}")).collect();
    let cases = [
        (
            all.clone(),
            "x".repeat(16 * 1024 + 1),
            host("a.example.com", None),
            "command is",
        ),
        (
            serde_json::json!(many),
            "true".into(),
            host("a.example.com", None),
            "1025 targets",
        ),
        (
            serde_json::json!(["t".repeat(257)]),
            "true".into(),
            host("a.example.com", None),
            "a target is 257 bytes",
        ),
        (
            all.clone(),
            "true".into(),
            host("a.example.com", Some("e".repeat(2049))),
            "error is longer",
        ),
        (
            all.clone(),
            "true".into(),
            host("a.example.com\u{1b}[8m", None),
            "is not a host name",
        ),
        (
            all.clone(),
            "true".into(),
            host("A.EXAMPLE.COM", None),
            "is not a host name",
        ),
        (
            all.clone(),
            "true".into(),
            host("b.example.com", None),
            "host 'b.example.com' is not a node",
        ),
        (
            all.clone(),
            "true".into(),
            serde_json::json!([
                {"host": "a.example.com", "exit": 0, "signal": null, "duration_ms": 1, "error": null},
                {"host": "a.example.com", "exit": 1, "signal": null, "duration_ms": 1, "error": null}
            ]),
            "listed twice",
        ),
        // Gap found by the cold review: text fields held terminal controls.
        (
            serde_json::json!(["all\u{1b}[2J"]),
            "true".into(),
            host("a.example.com", None),
            "a target holds control characters",
        ),
        (
            all.clone(),
            "true\u{1b}]52;c;cHduZWQ=\u{7}".into(),
            host("a.example.com", None),
            "the command holds control characters",
        ),
        (
            all.clone(),
            "true".into(),
            serde_json::json!([{"host": "a.example.com", "exit": null, "signal": "KILL\u{1b}[8m", "duration_ms": 1, "error": null}]),
            "signal holds control characters",
        ),
        (
            all.clone(),
            "true".into(),
            host("a.example.com", Some("refused\r\u{1b}[1A".into())),
            "error holds control characters",
        ),
    ];
    for (targets, command, results, says) in cases {
        let r = audit(targets, &command, results);
        assert_eq!(r.status, 400, "{says}: {}", r.text());
        assert!(
            r.text().contains("audit record: ") && r.text().contains(says),
            "{says}: {}",
            r.text()
        );
    }
    let listed = get(&s, &o, "/audit");
    assert_eq!(listed.text().trim(), "[]", "nothing recorded");
    let r = audit(all, "uptime", host("a.example.com", Some("e".repeat(2048))));
    assert_eq!(r.status, 200, "{}", r.text());
    let log = s.admin_ok(&["log", "--audit"]);
    assert!(log.contains("as reported by the client"), "{log}");
}

/// The review's "what held up → secrets at rest": API tokens (the admin's bootstrap token
/// included) are stored as their sha256, and passwords not at all, so a copy of `umc.redb`
/// holds no credential for the API or the console.
#[test]
fn api_tokens_and_passwords_are_stored_only_as_hashes() {
    use sha2::Digest;
    let mut s = Server::start();
    let viewer = user_with_token(&s, "v", "viewer");
    let admin = s.token();
    assert_eq!(get(&s, &viewer, "/nodes").status, 200);
    s.stop();
    let db = std::fs::read(s.data.join("umc.redb")).expect("umc.redb");
    let holds = |needle: &[u8]| db.windows(needle.len()).any(|w| w == needle);
    for (what, token) in [("viewer token", &viewer), ("admin token", &admin)] {
        assert!(!holds(token.as_bytes()), "the {what} is in umc.redb");
        assert!(
            !holds(token.to_uppercase().as_bytes()),
            "the {what} is in umc.redb"
        );
        let hash = sha2::Sha256::digest(token.as_bytes());
        assert!(
            holds(&hash) || holds(hex::encode(hash).as_bytes()),
            "the {what} is stored by its sha256"
        );
    }
    assert!(!holds(b"correct horse battery"), "a password in umc.redb");
}
