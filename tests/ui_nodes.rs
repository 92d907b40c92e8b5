//! The web console's node page, bulk assignment and history, over plain HTTP: what each page
//! shows, that bad input is refused next to its field with the model unchanged, and that a
//! viewer may look but not change.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Server, UMC_ADMIN, show};

const PASSWORD: &str = "correct horse battery";

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value `name=` of a `Set-Cookie` header.
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.split(';').next())
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

/// One request that does not follow redirects (the tests look at them).
fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Resp {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = match body {
        Some(b) => agent.run(req.body(b.as_bytes().to_vec()).expect("request")),
        None => agent.run(req.body(()).expect("request")),
    };
    let mut resp = resp.expect("http request");
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The first `name="csrf" value="…"` of a page.
fn csrf(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a csrf field") + marker.len();
    let end = page[start..].find('"').expect("end of csrf value");
    page[start..start + end].to_string()
}

/// A logged-in browser.
struct Browser {
    url: String,
    cookie: String,
    csrf: String,
}

impl Browser {
    fn login(s: &Server, user: &str) -> Browser {
        let page = request("GET", &format!("{}/ui/login", s.url), &[], None);
        assert_eq!(page.status, 200, "{}", page.body);
        let login = page.cookie("umc_login").expect("umc_login cookie");
        let body = form(&[
            ("csrf", &csrf(&page.body)),
            ("user", user),
            ("password", PASSWORD),
            ("next", "/ui/"),
        ]);
        let r = request(
            "POST",
            &format!("{}/ui/login", s.url),
            &[
                ("Cookie", &format!("umc_login={login}")),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(&body),
        );
        assert!(
            (300..400).contains(&r.status),
            "login: {} {}",
            r.status,
            r.body
        );
        let sid = r.cookie("umc_session").expect("umc_session cookie");
        let mut b = Browser {
            url: s.url.clone(),
            cookie: format!("umc_session={sid}"),
            csrf: String::new(),
        };
        let home = b.get("/ui/");
        assert_eq!(home.status, 200, "{}", home.body);
        b.csrf = csrf(&home.body);
        b
    }

    fn get(&self, path: &str) -> Resp {
        request(
            "GET",
            &format!("{}{path}", self.url),
            &[("Cookie", &self.cookie)],
            None,
        )
    }

    /// POSTs `pairs` with this session's CSRF token.
    fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(pairs);
        request(
            "POST",
            &format!("{}{path}", self.url),
            &[
                ("Cookie", &self.cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(&form(&all)),
        )
    }
}

fn add_user(s: &Server, name: &str, role: &str) {
    let mut child = Command::new(UMC_ADMIN)
        .args(["user", "add", name, "--role", role])
        .env("UMC_URL", &s.url)
        .env("UMC_TOKEN", s.token())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run umc-admin");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n{PASSWORD}\n").as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", show(&out));
}

fn api(s: &Server, path: &str) -> serde_json::Value {
    let r = request(
        "GET",
        &format!("{}/api/v1{path}", s.url),
        &[("Authorization", &format!("Bearer {}", s.token()))],
        None,
    );
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    serde_json::from_str(&r.body).expect("json")
}

fn generation(s: &Server) -> u64 {
    api(s, "/server")["generation"]
        .as_u64()
        .expect("generation")
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
    add_user(&s, "op1", "operator");
    add_user(&s, "vw", "viewer");
    s
}

#[test]
fn the_node_page_shows_what_the_node_gets() {
    let s = fleet();
    let op = Browser::login(&s, "op1");
    let r = op.get("/ui/nodes/web1.example.com");
    assert_eq!(r.status, 200, "{}", r.body);
    let p = &r.body;
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
    // The file, rendered for this host.
    assert!(p.contains("/etc/site.conf"), "{p}");
    assert!(p.contains("server web1.example.com role=web"), "{p}");
    assert!(p.contains("No report yet"), "{p}");
    // The one-liner for an operator, with the node's token.
    let token = s.node_token("web1.example.com");
    assert!(p.contains("id=\"enroll\""), "{p}");
    assert!(p.contains(&token), "enroll line carries the token");
    assert!(p.contains("/hosts/web1.example.com/bootstrap"), "{p}");

    // A viewer sees the page, but neither the token nor the forms.
    let vw = Browser::login(&s, "vw");
    let r = vw.get("/ui/nodes/web1.example.com");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("umc-task-web"));
    assert!(!r.body.contains("id=\"enroll\""), "{}", r.body);
    assert!(!r.body.contains(&token));
    assert!(!r.body.contains("id=\"var-form\""));
    assert!(!r.body.contains("id=\"assign-task\""));

    // A failed report: its time, result, steps with exit status and error lines.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let report = format!(
        "Format: umc-report/1\nStarted: {}\nFinished: {t}\nStep: update 0\nStep: install 100\nStep: autoremove -\nInstalled: umc-node 1.1\nReboot-Required: no\nUpgradable: 0\nTail: E: Unable to locate package nginx\n",
        t - 20
    );
    let r = common::http(
        "POST",
        &format!("{}/hosts/web1.example.com/report", s.url),
        Some(("web1.example.com", &token)),
        &[("Content-Type", "text/plain")],
        Some(report.as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let p = op.get("/ui/nodes/web1.example.com").body;
    assert!(!p.contains("No report yet"), "{p}");
    assert!(p.contains("E: Unable to locate package nginx"), "{p}");
    assert!(p.contains("failed at <strong>install</strong>"), "{p}");
    assert!(p.contains(">100<") && p.contains(">skipped<"), "{p}");

    let r = op.get("/ui/nodes/nope.example.com");
    assert_eq!(r.status, 404);
    assert!(r.body.contains("unknown node"), "{}", r.body);
}

#[test]
fn node_forms_refuse_bad_input_and_viewers() {
    let s = fleet();
    let op = Browser::login(&s, "op1");
    let g = generation(&s);

    let r = op.post(
        "/ui/nodes/web1.example.com/vars",
        &[("name", "bad name!"), ("value", "x")],
    );
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.body);
    assert!(r.body.contains("id=\"var-error\""), "{}", r.body);
    assert!(
        r.body.contains("value=\"bad name!\""),
        "input kept: {}",
        r.body
    );
    assert_eq!(generation(&s), g, "model unchanged");
    let vars = &api(&s, "/nodes/web1.example.com")["vars"];
    assert!(vars.get("bad name!").is_none(), "{vars}");

    let r = op.post(
        "/ui/nodes/web1.example.com/assign",
        &[("task", "no-such-task")],
    );
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.body);
    assert!(r.body.contains("id=\"assign-error\""), "{}", r.body);
    assert_eq!(generation(&s), g, "model unchanged");

    let r = op.post(
        "/ui/nodes/nope.example.com/vars",
        &[("name", "a"), ("value", "b")],
    );
    assert_eq!(r.status, 404, "{}", r.body);

    // A good edit: redirected back to the page, which flashes it.
    let r = op.post(
        "/ui/nodes/web1.example.com/vars",
        &[("name", "port"), ("value", "8080")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/ui/nodes/web1.example.com"));
    assert_eq!(
        api(&s, "/nodes/web1.example.com")["vars"]["port"],
        serde_json::json!("8080")
    );
    let page = op.get("/ui/nodes/web1.example.com");
    assert!(page.body.contains("Set variable port"), "{}", page.body);
    let r = op.post("/ui/nodes/web1.example.com/assign", &[("task", "db")]);
    assert_eq!(r.status, 303, "{}", r.body);
    let r = op.post("/ui/nodes/web1.example.com/unassign", &[("task", "db")]);
    assert_eq!(r.status, 303, "{}", r.body);
    let r = op.post("/ui/nodes/web1.example.com/vars/unset", &[("name", "port")]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        api(&s, "/nodes/web1.example.com")["vars"]
            .get("port")
            .is_none()
    );

    // A viewer's POST is refused and changes nothing.
    let vw = Browser::login(&s, "vw");
    let g = generation(&s);
    let r = vw.post(
        "/ui/nodes/web1.example.com/vars",
        &[("name", "x"), ("value", "y")],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = vw.post("/ui/nodes/web1.example.com/unassign", &[("task", "web")]);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(generation(&s), g, "model unchanged");
}

#[test]
fn bulk_assignment_previews_then_commits_one_generation() {
    let s = fleet();
    let op = Browser::login(&s, "op1");

    let r = op.get("/ui/bulk?q=example");
    assert_eq!(r.status, 200, "{}", r.body);
    for id in [
        "id=\"bulk-filter\"",
        "id=\"bulk-preview\"",
        "id=\"host-web2.example.com\"",
        "id=\"assign-web\"",
        "id=\"unassign-web\"",
    ] {
        assert!(r.body.contains(id), "{id}: {}", r.body);
    }
    let filtered = op.get("/ui/bulk?q=db");
    assert!(filtered.body.contains("id=\"host-db1.example.com\""));
    assert!(!filtered.body.contains("id=\"host-web1.example.com\""));

    let choice = [
        ("host", "web1.example.com"),
        ("host", "web2.example.com"),
        ("host", "db1.example.com"),
        ("assign", "web"),
    ];
    let g = generation(&s);
    let r = op.post("/ui/bulk/preview", &choice);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"bulk-confirm\""), "{}", r.body);
    assert!(
        r.body.contains("id=\"diff-web2.example.com\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("id=\"diff-db1.example.com\""), "{}", r.body);
    assert!(
        !r.body.contains("id=\"diff-web1.example.com\""),
        "web1 already runs web"
    );
    assert!(r.body.contains("class=\"diff-add\""), "{}", r.body);
    assert_eq!(generation(&s), g, "a preview changes nothing");

    let r = op.post("/ui/bulk/apply", &choice);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/ui/nodes?task=web"));
    assert_eq!(generation(&s), g + 1, "one generation");
    let log = api(&s, "/log?limit=1");
    let entry = &log[0];
    assert_eq!(entry["user"], "op1", "{log}");
    let lines = entry["changes"].as_array().expect("changes");
    assert_eq!(lines.len(), 2, "{log}");
    for h in ["web2.example.com", "db1.example.com"] {
        let tasks = &api(&s, &format!("/nodes/{h}"))["tasks"];
        assert_eq!(tasks, &serde_json::json!(["web"]), "{h}");
    }
    let page = op.get("/ui/nodes?task=web");
    assert!(
        page.body.contains("Assigned web to 2 nodes"),
        "{}",
        page.body
    );

    // Unassigning shows removals.
    let r = op.post(
        "/ui/bulk/preview",
        &[("host", "db1.example.com"), ("unassign", "web")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("class=\"diff-del\""), "{}", r.body);

    // Bad input: re-rendered with the message at its field, nothing changed.
    let g = generation(&s);
    let r = op.post(
        "/ui/bulk/apply",
        &[("host", "db1.example.com"), ("assign", "no-such-task")],
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("id=\"tasks-error\""), "{}", r.body);
    let r = op.post("/ui/bulk/preview", &[("assign", "web")]);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("id=\"hosts-error\""), "{}", r.body);
    let r = op.post("/ui/bulk/preview", &[("host", "db1.example.com")]);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("id=\"tasks-error\""), "{}", r.body);
    let r = op.post(
        "/ui/bulk/apply",
        &[("host", "ghost.example.com"), ("assign", "db")],
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("id=\"hosts-error\""), "{}", r.body);
    assert_eq!(generation(&s), g, "model unchanged");

    // A viewer may not.
    let vw = Browser::login(&s, "vw");
    assert_eq!(vw.get("/ui/bulk").status, 403);
    let r = vw.post(
        "/ui/bulk/apply",
        &[("host", "db1.example.com"), ("assign", "db")],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(generation(&s), g, "model unchanged");

    // History: the bulk edit under the operator's name.
    let r = op.get("/ui/history?user=op1");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<article class=\"entry"), "{}", r.body);
    assert!(
        r.body.contains("<span class=\"user\">op1</span>"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("<span class=\"user\">admin"), "{}", r.body);
    assert!(r.body.contains("db1.example.com"), "{}", r.body);
    let r = op.get("/ui/history?node=db1.example.com");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("op1"), "{}", r.body);
    let r = op.get("/ui/history?user=nobody");
    assert!(r.body.contains("id=\"history-empty\""), "{}", r.body);
    let r = op.get("/ui/history?node=a.example&task=web");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"node-error\""), "{}", r.body);
}
