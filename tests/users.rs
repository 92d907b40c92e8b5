//! Users, roles and API tokens: what each role may do, and how tokens stop working.

mod common;

use std::process::Output;

use common::{Server, http, show};

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
    http(
        "POST",
        &format!("{}/api/v1/edit", s.url),
        None,
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    )
}

fn get(s: &Server, token: &str, path: &str) -> common::Resp {
    http(
        "GET",
        &format!("{}/api/v1{path}", s.url),
        None,
        &[("Authorization", &format!("Bearer {token}"))],
        None,
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
