//! The web console's node page, bulk assignment and history, over plain HTTP: what each page
//! shows, that bad input is refused next to its field with the model unchanged, and that a
//! viewer may look but not change.

use crate::common;

use common::Server;
use common::console::{Console, add_user, api_get, generation};
use common::report::Report;

const PASSWORD: &str = "correct horse battery";

/// A node as the API shows it (`/api/v1/nodes/{host}`).
fn node(s: &Server, host: &str) -> serde_json::Value {
    api_get(s, &format!("/api/v1/nodes/{host}"))
}

/// A fleet of three nodes, tasks `web` (includes `base`, ships a file) and `base`, an
/// operator `op1` and a viewer `vw`.
fn fleet() -> Server {
    let s = Server::start();
    let tpl = s.data.join("site.conf.tera");
    std::fs::write(&tpl, "server {{ host.fqdn }} role={{ vars.role }}\n").expect("template");
    let tpl = tpl.display().to_string();
    for args in [
        &["node", "add", "web1.example.com", "--var", "role=web"][..],
        &["node", "add", "web2.example.com", "--var", "role=web"],
        &["node", "add", "db1.example.com", "--var", "role=db"],
        &["task", "add", "base"],
        &["task", "depend", "base", "less"],
        &["task", "add", "web"],
        &["task", "depend", "web", "nginx"],
        &["task", "remove", "web", "apache2"],
        &["task", "include", "web", "base"],
        &[
            "task",
            "file",
            "add",
            "web",
            "/etc/site.conf",
            "--template",
            &tpl,
        ],
        &["task", "add", "db"],
        &["assign", "web1.example.com", "web"],
    ] {
        s.admin_ok(args);
    }
    add_user(&s, "op1", "operator", PASSWORD);
    add_user(&s, "vw", "viewer", PASSWORD);
    s
}

#[test]
fn the_node_page_shows_what_the_node_gets() {
    let s = fleet();
    let op = Console::login(&s, "op1", PASSWORD);
    let r = op.get("/ui/nodes/web1.example.com");
    assert_eq!(r.status, 200, "{}", r.text());
    let p = &r.text();
    assert!(p.contains("id=\"vars-table\"") && p.contains("role"), "{p}");
    assert!(p.contains("id=\"unassign-web\""), "assigned task: {p}");
    assert!(p.contains("id=\"assign-task\""), "assign form: {p}");
    // The closure: web and the base it includes, their depends and conflicts.
    assert!(
        p.contains("umc-task-web") && p.contains("umc-task-base"),
        "{p}"
    );
    assert!(
        p.contains(">nginx<") && p.contains(">less<"),
        "depends: {p}"
    );
    assert!(p.contains(">apache2<"), "conflicts: {p}");
    // The file's path; its rendered content and the node token are an admin's.
    assert!(p.contains("/etc/site.conf"), "{p}");
    assert!(!p.contains("server web1.example.com role=web"), "{p}");
    assert!(p.contains("No report yet"), "{p}");
    let token = s.node_token("web1.example.com");
    assert!(!p.contains("id=\"enroll\""), "{p}");
    assert!(!p.contains(&token), "{p}");
    // An admin sees the file rendered for this host and the one-liner with the node's token.
    add_user(&s, "ad", "admin", PASSWORD);
    let ad = Console::login(&s, "ad", PASSWORD);
    let p = &ad.get("/ui/nodes/web1.example.com").text();
    assert!(p.contains("server web1.example.com role=web"), "{p}");
    assert!(p.contains("id=\"enroll\""), "{p}");
    assert!(p.contains(&token), "enroll line carries the token");
    assert!(p.contains("/hosts/web1.example.com/bootstrap"), "{p}");

    // A viewer sees the page, but neither the token nor the forms.
    let vw = Console::login(&s, "vw", PASSWORD);
    let r = vw.get("/ui/nodes/web1.example.com");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("umc-task-web"));
    assert!(!r.text().contains("id=\"enroll\""), "{}", r.text());
    assert!(!r.text().contains(&token));
    assert!(!r.text().contains("id=\"var-form\""));
    assert!(!r.text().contains("id=\"assign-task\""));

    // A failed report: its time, result, steps with exit status and error lines.
    let report = Report {
        install: "100",
        tail: &["E: Unable to locate package nginx"],
        ..Report::default()
    };
    let r = s.post_report(
        "web1.example.com",
        ("web1.example.com", &token),
        report.text().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let p = op.get("/ui/nodes/web1.example.com").text();
    assert!(!p.contains("No report yet"), "{p}");
    assert!(p.contains("E: Unable to locate package nginx"), "{p}");
    assert!(p.contains("failed at <strong>install</strong>"), "{p}");
    assert!(p.contains(">100<") && p.contains(">skipped<"), "{p}");

    let r = op.get("/ui/nodes/nope.example.com");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("unknown node"), "{}", r.text());
}

#[test]
fn node_forms_refuse_bad_input_and_viewers() {
    let s = fleet();
    let op = Console::login(&s, "op1", PASSWORD);
    let g = generation(&s);

    let r = op.post(
        "/ui/nodes/web1.example.com/vars",
        &[("name", "bad name!"), ("value", "x")],
    );
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.text());
    assert!(r.text().contains("id=\"var-error\""), "{}", r.text());
    assert!(
        r.text().contains("value=\"bad name!\""),
        "input kept: {}",
        r.text()
    );
    assert_eq!(generation(&s), g, "model unchanged");
    let vars = &node(&s, "web1.example.com")["vars"];
    assert!(vars.get("bad name!").is_none(), "{vars}");

    let r = op.post(
        "/ui/nodes/web1.example.com/assign",
        &[("task", "no-such-task")],
    );
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.text());
    assert!(r.text().contains("id=\"assign-error\""), "{}", r.text());
    assert_eq!(generation(&s), g, "model unchanged");

    let r = op.post(
        "/ui/nodes/nope.example.com/vars",
        &[("name", "a"), ("value", "b")],
    );
    assert_eq!(r.status, 404, "{}", r.text());

    // A good edit: redirected back to the page, which flashes it.
    let r = op.post(
        "/ui/nodes/web1.example.com/vars",
        &[("name", "port"), ("value", "8080")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/ui/nodes/web1.example.com"));
    assert_eq!(
        node(&s, "web1.example.com")["vars"]["port"],
        serde_json::json!("8080")
    );
    let page = op.get("/ui/nodes/web1.example.com");
    assert!(page.text().contains("Set variable port"), "{}", page.text());
    let r = op.post("/ui/nodes/web1.example.com/assign", &[("task", "db")]);
    assert_eq!(r.status, 303, "{}", r.text());
    let r = op.post("/ui/nodes/web1.example.com/unassign", &[("task", "db")]);
    assert_eq!(r.status, 303, "{}", r.text());
    let r = op.post("/ui/nodes/web1.example.com/vars/unset", &[("name", "port")]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(node(&s, "web1.example.com")["vars"].get("port").is_none());

    // A viewer's POST is refused and changes nothing.
    let vw = Console::login(&s, "vw", PASSWORD);
    let g = generation(&s);
    let r = vw.post(
        "/ui/nodes/web1.example.com/vars",
        &[("name", "x"), ("value", "y")],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = vw.post("/ui/nodes/web1.example.com/unassign", &[("task", "web")]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(generation(&s), g, "model unchanged");
}

/// The value of hidden field `name` in a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html.find(&marker).expect("hidden field") + marker.len();
    html[at..].split('"').next().unwrap_or_default().to_string()
}

#[test]
fn bulk_assignment_previews_then_commits_one_generation() {
    let s = fleet();
    let op = Console::login(&s, "op1", PASSWORD);

    let r = op.get("/ui/bulk?q=example");
    assert_eq!(r.status, 200, "{}", r.text());
    for id in [
        "id=\"bulk-filter\"",
        "id=\"bulk-preview\"",
        "id=\"host-web2.example.com\"",
        "id=\"assign-web\"",
        "id=\"unassign-web\"",
    ] {
        assert!(r.text().contains(id), "{id}: {}", r.text());
    }
    let filtered = op.get("/ui/bulk?q=db");
    assert!(filtered.text().contains("id=\"host-db1.example.com\""));
    assert!(!filtered.text().contains("id=\"host-web1.example.com\""));

    let choice = [
        ("host", "web1.example.com"),
        ("host", "web2.example.com"),
        ("host", "db1.example.com"),
        ("assign", "web"),
    ];
    let g = generation(&s);
    let r = op.post("/ui/bulk/preview", &choice);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("id=\"bulk-confirm\""), "{}", r.text());
    assert!(
        r.text().contains("id=\"diff-web2.example.com\""),
        "{}",
        r.text()
    );
    assert!(
        r.text().contains("id=\"diff-db1.example.com\""),
        "{}",
        r.text()
    );
    assert!(
        !r.text().contains("id=\"diff-web1.example.com\""),
        "web1 already runs web"
    );
    assert!(r.text().contains("class=\"diff-add\""), "{}", r.text());
    assert_eq!(generation(&s), g, "a preview changes nothing");
    let digest = hidden(&r.text(), "digest");

    // A diff confirmed after the fleet moved under it is shown again, not applied.
    s.admin_ok(&["assign", "db1.example.com", "web"]);
    let mut confirmed = choice.to_vec();
    confirmed.push(("digest", &digest));
    let r = op.post("/ui/bulk/apply", &confirmed);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("id=\"bulk-note\""), "{}", r.text());
    assert!(
        !r.text().contains("id=\"diff-db1.example.com\""),
        "{}",
        r.text()
    );
    s.admin_ok(&["unassign", "db1.example.com", "web"]);
    let g = generation(&s);

    let r = op.post("/ui/bulk/apply", &confirmed);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/ui/nodes?task=web"));
    assert_eq!(generation(&s), g + 1, "one generation");
    let log = api_get(&s, "/api/v1/log?limit=1");
    let entry = &log[0];
    assert_eq!(entry["user"], "op1", "{log}");
    let lines = entry["changes"].as_array().expect("changes");
    assert_eq!(lines.len(), 2, "{log}");
    for h in ["web2.example.com", "db1.example.com"] {
        let tasks = &node(&s, h)["tasks"];
        assert_eq!(tasks, &serde_json::json!(["web"]), "{h}");
    }
    let page = op.get("/ui/nodes?task=web");
    assert!(
        page.text().contains("Assigned web to 2 nodes"),
        "{}",
        page.text()
    );

    // Unassigning shows removals.
    let r = op.post(
        "/ui/bulk/preview",
        &[("host", "db1.example.com"), ("unassign", "web")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("class=\"diff-del\""), "{}", r.text());

    // Bad input: re-rendered with the message at its field, nothing changed.
    let g = generation(&s);
    let r = op.post(
        "/ui/bulk/apply",
        &[("host", "db1.example.com"), ("assign", "no-such-task")],
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains("id=\"tasks-error\""), "{}", r.text());
    let r = op.post("/ui/bulk/preview", &[("assign", "web")]);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("id=\"hosts-error\""), "{}", r.text());
    let r = op.post("/ui/bulk/preview", &[("host", "db1.example.com")]);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("id=\"tasks-error\""), "{}", r.text());
    let r = op.post(
        "/ui/bulk/apply",
        &[("host", "ghost.example.com"), ("assign", "db")],
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains("id=\"hosts-error\""), "{}", r.text());
    assert_eq!(generation(&s), g, "model unchanged");

    // A viewer may not.
    let vw = Console::login(&s, "vw", PASSWORD);
    assert_eq!(vw.get("/ui/bulk").status, 403);
    let r = vw.post(
        "/ui/bulk/apply",
        &[("host", "db1.example.com"), ("assign", "db")],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(generation(&s), g, "model unchanged");

    // History: the bulk edit under the operator's name.
    let r = op.get("/ui/history?user=op1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<article class=\"entry"), "{}", r.text());
    assert!(
        r.text().contains("<span class=\"user\">op1</span>"),
        "{}",
        r.text()
    );
    assert!(
        !r.text().contains("<span class=\"user\">admin"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("db1.example.com"), "{}", r.text());
    let r = op.get("/ui/history?node=db1.example.com");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("op1"), "{}", r.text());
    let r = op.get("/ui/history?user=nobody");
    assert!(r.text().contains("id=\"history-empty\""), "{}", r.text());
    let r = op.get("/ui/history?node=a.example&task=web");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("id=\"node-error\""), "{}", r.text());
}
