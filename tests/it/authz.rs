//! Who may call what on `/api/v1` and see what in the console: every route of the route table
//! as each role and without a token, the secrets (node tokens, rendered files, the signing
//! key) for admins only, variable values for operators and admins only, path tricks, and the
//! bearer and Basic rules.

use crate::common;

use std::collections::BTreeSet;

use common::console::Console;
use common::{Server, http, raw_get};
use umc::api::Role;
use umc::http::{API_ROUTES, VAR_VALUES, Verb};

const PW: &str = "correct horse battery";
const HOST: &str = "a.example.com";
/// What the node's template renders to: the secret a viewer must not see rendered.
const RENDERED: &str = "password=B-SECRET";
/// A node variable's value and a global variable's value, as random as a password: operators
/// and admins read them, a viewer never does.
const NODE_VALUE: &str = "nv-q7Xw2mKc9RfT";
const GLOBAL_VALUE: &str = "gv-L4pZ8sHd3VnB";

struct Fleet {
    s: Server,
    viewer: String,
    operator: String,
    admin: String,
    node_token: String,
}

impl Fleet {
    fn token(&self, role: Role) -> &str {
        match role {
            Role::Viewer => &self.viewer,
            Role::Operator => &self.operator,
            Role::Admin => &self.admin,
        }
    }
}

/// A node with a task whose file renders a node variable, a global variable, and a viewer, an
/// operator and a second admin, each with a password (for the console) and an API token.
fn fleet() -> Fleet {
    let s = Server::start();
    let root = s.token();
    let edit = serde_json::json!({"ops": [
        {"op": "node_add", "host": HOST,
         "vars": {"secret": "B-SECRET", "db_password": NODE_VALUE}},
        {"op": "var_set", "vars": {"api_key": GLOBAL_VALUE}},
        {"op": "task_add", "task": "web"},
        {"op": "task_file_add", "task": "web", "path": "/etc/app/secret.conf",
         "template": "password={{ vars.secret }}\n", "mode": 0o600},
        {"op": "assign", "host": HOST, "tasks": ["web"]},
    ]});
    let r = s.call(
        "POST",
        "/api/v1/edit",
        Some(&root),
        Some(edit.to_string().as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut tokens = Vec::new();
    for (name, role) in [("vera", "viewer"), ("otto", "operator"), ("adam", "admin")] {
        let body = serde_json::json!({"name": name, "role": role, "password": PW});
        let r = s.call(
            "POST",
            "/api/v1/users",
            Some(&root),
            Some(body.to_string().as_bytes()),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let r = http(
            "POST",
            &format!("{}/api/v1/tokens", s.url),
            Some((name, PW)),
            &[("Content-Type", "application/json")],
            Some(br#"{"name":"t"}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        tokens.push(v["token"].as_str().expect("token").to_string());
    }
    let node_token = s.node_token(HOST);
    let [viewer, operator, admin] = <[String; 3]>::try_from(tokens).expect("three");
    Fleet {
        s,
        viewer,
        operator,
        admin,
        node_token,
    }
}

/// A concrete request path for a route pattern: parameters filled with the fleet's names (or
/// names that do not exist, where a handler would change something), plus the query a
/// handler needs to get past its argument checks.
fn concrete(pattern: &str) -> String {
    let mut out = String::from("/api/v1");
    for seg in pattern.split('/').skip(1) {
        out.push('/');
        out.push_str(match (seg, pattern) {
            ("{host}", _) => HOST,
            ("{task}", _) => "web",
            ("{name}", p) if p.starts_with("/catalog/packages/") => "nginx",
            ("{name}", _) => "nosuch",
            ("{id}", _) => "000000000000",
            (s, _) if s.starts_with('{') => panic!("route {pattern}: unknown parameter {s}"),
            (s, _) => s,
        });
    }
    match pattern {
        "/nodes/{host}/render" => out.push_str("?path=/etc/app/secret.conf"),
        "/diff" => out.push_str("?from=0&to=1"),
        "/catalog/search" => out.push_str("?q=nginx"),
        _ => {}
    }
    out
}

fn secrets_in(f: &Fleet, text: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    if text.contains(&f.node_token) {
        found.push("node token");
    }
    if text.contains(RENDERED) {
        found.push("rendered file");
    }
    if text.contains("PRIVATE KEY") {
        found.push("signing key");
    }
    found
}

/// Every row of the route table, as nobody, viewer, operator and admin: 401 without a token,
/// 403 naming the role below the row's, and neither for the row's role and above. Admin-only
/// routes run last, so a key rotation or a token made on the way changes no other row.
#[test]
fn every_api_route_checks_its_role() {
    let f = fleet();
    assert!(API_ROUTES.len() >= 35, "{} routes", API_ROUTES.len());
    let mut rows: Vec<_> = API_ROUTES.iter().collect();
    rows.sort_by_key(|r| r.role);
    let mut seen = BTreeSet::new();
    for route in rows {
        assert!(
            seen.insert((route.verb.as_str(), route.path)),
            "{} {} twice in the table",
            route.verb.as_str(),
            route.path
        );
        let method = route.verb.as_str();
        let mut path = concrete(route.path);
        if (route.verb, route.path) == (Verb::Post, "/nodes/{host}/token") {
            // A rotation would change the node token the other rows look for: rotate a node
            // that does not exist (404, after the role check).
            path = path.replace(HOST, "nosuch.example.com");
        }
        let body = (route.verb == Verb::Post).then_some(&b"{}"[..]);
        let what = format!("{method} {path}");
        let r = f.s.call(method, &path, None, body);
        assert_eq!(r.status, 401, "{what} without a token: {}", r.text());
        for role in [Role::Viewer, Role::Operator, Role::Admin] {
            let r = f.s.call(method, &path, Some(f.token(role)), body);
            let who = format!("{what} as {}", role.as_str());
            if role < route.role {
                assert_eq!(r.status, 403, "{who}: {}", r.text());
                assert!(
                    r.text()
                        .contains(&format!("it needs role {}", route.role.as_str())),
                    "{who}: {}",
                    r.text()
                );
            } else {
                assert!(
                    ![401, 403, 405].contains(&r.status),
                    "{who}: {} {}",
                    r.status,
                    r.text()
                );
                assert!(
                    !r.text().contains("no such API endpoint"),
                    "{who}: {}",
                    r.text()
                );
            }
            if role < Role::Admin {
                let leaked = secrets_in(&f, &r.text());
                assert!(leaked.is_empty(), "{who} got {leaked:?}: {}", r.text());
            }
        }
    }
    // The admin-only reads do hand out what they guard.
    let r = f.s.call(
        "GET",
        &concrete("/nodes/{host}/token"),
        Some(&f.admin),
        None,
    );
    assert!(r.text().contains(&f.node_token), "{}", r.text());
    let r = f.s.call(
        "GET",
        &concrete("/nodes/{host}/render"),
        Some(&f.admin),
        None,
    );
    assert!(r.text().contains(RENDERED), "{}", r.text());
}

/// A path of the table answers no method the table does not list for it, so no handler can
/// hide behind a listed path. (New paths: see `the_api_router_is_built_from_the_table_only`.)
#[test]
fn unlisted_methods_have_no_handler() {
    let f = fleet();
    let paths: BTreeSet<&str> = API_ROUTES.iter().map(|r| r.path).collect();
    for p in paths {
        let listed: Vec<&str> = API_ROUTES
            .iter()
            .filter(|r| r.path == p)
            .map(|r| r.verb.as_str())
            .collect();
        for m in ["GET", "POST", "DELETE", "PUT", "PATCH"] {
            if listed.contains(&m) || (m == "HEAD" && listed.contains(&"GET")) {
                continue;
            }
            let r = f.s.call(m, &concrete(p), Some(&f.admin), Some(b"{}"));
            assert!(
                [404, 405].contains(&r.status),
                "{m} {p}: {} {}",
                r.status,
                r.text()
            );
        }
    }
    // HEAD is GET's, with GET's role.
    let r = f.s.call(
        "HEAD",
        &concrete("/nodes/{host}/token"),
        Some(&f.viewer),
        None,
    );
    assert_eq!(r.status, 403);
    let r = f.s.call("HEAD", "/api/v1/backup", Some(&f.operator), None);
    assert_eq!(r.status, 403);
}

/// The API router is `admin::routes`, built from `API_ROUTES` only: no module of the API
/// adds a route, merges or nests a router of its own. A new route therefore needs a row, and
/// with it a role.
#[test]
fn the_api_router_is_built_from_the_table_only() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    // The non-API routers: apt, the console, and the top-level router that nests the API.
    let elsewhere = [
        "apt.rs",
        "mod.rs",
        "metrics.rs",
        "conditional.rs",
        "error.rs",
    ];
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("src/http") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.ends_with(".rs") || elsewhere.contains(&name) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let routes = text.matches(".route(").count();
        let allowed = usize::from(name == "admin.rs");
        assert_eq!(routes, allowed, "{name}: .route( outside the table builder");
        for call in [".merge(", ".nest(", ".route_service(", ".nest_service("] {
            assert!(
                !text.contains(call),
                "{name}: {call} adds routes the table does not list"
            );
        }
        checked += 1;
    }
    assert!(checked >= 7, "{checked} API modules checked");
    let top = std::fs::read_to_string(dir.join("mod.rs")).expect("mod.rs");
    assert_eq!(
        top.matches("\"/api/v1\"").count(),
        1,
        "one nest for /api/v1"
    );
}

/// `export?secrets=true` needs admin; without it the export is an operator's read with no
/// token.
#[test]
fn exported_node_tokens_need_admin() {
    let f = fleet();
    for q in [
        "secrets=true",
        "secrets=true&history=true",
        "history=true&secrets=true",
        "secrets=true&secrets=false",
        "secrets=false&secrets=true",
        "secrets=1",
        "secrets=TRUE",
        "secrets=%74rue",
        "Secrets=true",
        "secrets",
    ] {
        for role in [Role::Viewer, Role::Operator] {
            let r = f.s.call(
                "GET",
                &format!("/api/v1/export?{q}"),
                Some(f.token(role)),
                None,
            );
            assert!(
                [400, 403].contains(&r.status),
                "{q} as {}: {} {}",
                role.as_str(),
                r.status,
                r.text()
            );
            assert!(!r.text().contains(&f.node_token), "{q}: {}", r.text());
        }
    }
    let r = f.s.call(
        "GET",
        "/api/v1/export?secrets=true",
        Some(&f.operator),
        None,
    );
    assert_eq!(r.status, 403);
    assert!(
        r.text()
            .contains("user 'otto' (operator) may not export node tokens"),
        "{}",
        r.text()
    );
    // The plain export holds variable values: an operator's, refused to a viewer.
    let r = f.s.call("GET", "/api/v1/export", Some(&f.viewer), None);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text()
            .contains("user 'vera' (viewer) may not GET /api/v1/export: it needs role operator"),
        "{}",
        r.text()
    );
    let r = f.s.call("GET", "/api/v1/export", Some(&f.operator), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains(&f.node_token));
    let r =
        f.s.call("GET", "/api/v1/export?secrets=true", Some(&f.admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&f.node_token));
    // umc-admin as an operator: refused, exit code for "forbidden".
    let out = f.s.admin_as(&f.operator, &["export", "--with-secrets"], "");
    assert!(!out.status.success(), "{}", common::show(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&f.node_token));
}

/// The review's path variants for the admin-only reads: refused or unknown, never served.
#[test]
fn path_tricks_do_not_reach_admin_reads() {
    let f = fleet();
    let h = HOST;
    let variants = [
        format!("/api/v1/nodes/{h}/%74oken"),
        format!("/api/v1//nodes/{h}/token"),
        format!("/api/v1/nodes//{h}/token"),
        format!("/api/v1/./nodes/{h}/token"),
        format!("/api/v1/nodes/{h}/./token"),
        format!("/api/v1/nodes/{h}/token/"),
        format!("/api/v1/NODES/{h}/TOKEN"),
        format!("/api/v1/nodes/{}/token", h.to_uppercase()),
        format!("/api/v1/nodes/{h}/token?x=1"),
        format!("/api/v1/nodes/{h}/render?path=/etc/app/secret.conf&x=1"),
        format!("/api/v1/nodes/{h}/%72ender?path=/etc/app/secret.conf"),
        "/api/v1/%62ackup".into(),
        "/api/v1/backup/".into(),
        "/api/v1//backup".into(),
        "/api/v1/BACKUP".into(),
        "/api/v1/backup?x=1".into(),
        "/api/v1/users/".into(),
        "/api/v1/%75sers".into(),
        "/api/v1/./users".into(),
        "/api/v1/users?x=1".into(),
        "/api/v1/export?secrets=true&x=1".into(),
    ];
    for token in [&f.viewer, &f.operator] {
        for v in &variants {
            let (status, text) = raw_get(&f.s, v, &format!("Authorization: Bearer {token}"));
            assert!([400, 403, 404].contains(&status), "{v}: {status} {text}");
            assert!(!text.contains(&f.node_token), "{v}: {text}");
            assert!(!text.contains(RENDERED), "{v}: {text}");
            assert!(!text.contains("\"role\""), "{v}: the user list: {text}");
        }
    }
}

/// An operator is refused the admin's edits (tasks, variables) as well as the admin routes.
#[test]
fn operators_may_not_do_admin_edits() {
    let f = fleet();
    for op in [
        r#"{"op":"task_add","task":"db"}"#,
        r#"{"op":"var_set","vars":{"x":"1"}}"#,
        r#"{"op":"task_file_add","task":"web","path":"/etc/x","template":"{{ vars.secret }}"}"#,
    ] {
        let body = format!(r#"{{"ops":[{op}]}}"#);
        let r = f.s.call(
            "POST",
            "/api/v1/edit",
            Some(&f.operator),
            Some(body.as_bytes()),
        );
        assert_eq!(r.status, 403, "{op}: {}", r.text());
        assert!(r.text().contains("it needs role admin"), "{}", r.text());
    }
    // The operator's own business still works.
    let body = br#"{"ops":[{"op":"node_add","host":"b.example.com"}]}"#;
    let r =
        f.s.call("POST", "/api/v1/edit", Some(&f.operator), Some(body));
    assert_eq!(r.status, 200, "{}", r.text());
    // But it cannot enroll the node it added: the token is an admin's.
    let out =
        f.s.admin_as(&f.operator, &["node", "token", "b.example.com"], "");
    assert!(!out.status.success(), "{}", common::show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs role admin"),
        "{}",
        common::show(&out)
    );
}

/// Bearer works in any case (RFC 9110); a missing, bad or empty bearer token, another scheme,
/// and a password anywhere but `POST /tokens` get 401.
#[test]
fn bearer_schemes_and_basic_outside_tokens() {
    let f = fleet();
    let url = format!("{}/api/v1/nodes", f.s.url);
    let with = |value: &str| http("GET", &url, None, &[("Authorization", value)], None).status;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert_eq!(with(&format!("{scheme} {}", f.viewer)), 200, "{scheme}");
    }
    for bad in [
        String::new(),
        "Bearer".into(),
        "Bearer ".into(),
        "Bearer nope".into(),
        format!("Bearer {}", f.viewer.to_uppercase()),
        format!("Bearer {}x", f.viewer),
        format!("Token {}", f.viewer),
        format!("Bearer{}", f.viewer),
    ] {
        assert_eq!(with(&bad), 401, "{bad:?}");
    }
    let r = http("GET", &url, None, &[], None);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    // A password authenticates `POST /tokens` only.
    for (m, p) in [
        ("GET", "/nodes"),
        ("GET", "/tokens"),
        ("POST", "/edit"),
        ("GET", "/backup"),
    ] {
        let r = http(
            m,
            &format!("{}/api/v1{p}", f.s.url),
            Some(("adam", PW)),
            &[],
            Some(b"{}"),
        );
        assert_eq!(r.status, 401, "Basic on {m} {p}: {}", r.text());
    }
    let r = http(
        "POST",
        &format!("{}/api/v1/tokens", f.s.url),
        Some(("vera", PW)),
        &[],
        Some(b"{}"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The console shows rendered files and the enrollment line (with the node token) to admins
/// only, as the API does.
#[test]
fn the_console_shows_secrets_to_admins_only() {
    let f = fleet();
    let page = format!("/ui/nodes/{HOST}");
    for user in ["vera", "otto"] {
        let c = Console::login(&f.s, user, PW);
        for p in [
            page.as_str(),
            "/ui/",
            "/ui/nodes",
            "/ui/tasks/web",
            "/ui/tasks/web/file?path=%2Fetc%2Fapp%2Fsecret.conf",
            "/ui/history",
        ] {
            let r = c.get(p);
            assert!(r.status < 500, "{user} {p}: {}", r.status);
            let leaked = secrets_in(&f, &r.text());
            assert!(leaked.is_empty(), "{user} {p}: {leaked:?}: {}", r.text());
        }
        let r = c.get(&page);
        assert_eq!(r.status, 200);
        let t = r.text();
        assert!(t.contains("/etc/app/secret.conf"), "the path is shown: {t}");
        assert!(t.contains("id=\"files-hidden\""), "{t}");
        assert!(!t.contains("id=\"enroll\""), "{t}");
        // The preview renders for admins only.
        let r = c.post(
            "/ui/tasks/web/file?path=%2Fetc%2Fapp%2Fsecret.conf",
            &[
                ("path", "/etc/app/secret.conf"),
                ("template", "password={{ vars.secret }}\n"),
                ("host", HOST),
                ("do", "preview"),
            ],
        );
        assert_eq!(r.status, 403, "{user} preview");
        assert!(secrets_in(&f, &r.text()).is_empty(), "{}", r.text());
    }
    let c = Console::login(&f.s, "adam", PW);
    let t = c.get(&page).text();
    assert!(t.contains(RENDERED), "{t}");
    assert!(
        t.contains("id=\"enroll\"") && t.contains(&f.node_token),
        "{t}"
    );
}

/// The variable values a viewer found in `text`.
fn values_in(text: &str) -> Vec<&'static str> {
    [NODE_VALUE, GLOBAL_VALUE]
        .into_iter()
        .filter(|v| text.contains(v))
        .collect()
}

/// A concrete console path for a route pattern, with the queries that make its handler show
/// the most (a file of the task, a filter, a search). Each pattern is also walked bare.
fn console_concrete(pattern: &str) -> Vec<String> {
    let mut out = String::new();
    for seg in pattern.split('/').skip(1) {
        out.push('/');
        out.push_str(match seg {
            "{host}" => HOST,
            "{name}" => "web",
            s if s.starts_with('{') => panic!("console route {pattern}: unknown parameter {s}"),
            s => s,
        });
    }
    let extra = match pattern {
        "/ui/tasks/{name}/file" => "?path=%2Fetc%2Fapp%2Fsecret.conf",
        "/ui/nodes" | "/ui/bulk" => "?q=example&task=web",
        "/ui/history" => "?node=a.example.com&limit=1000",
        "/ui/catalog" | "/ui/catalog/suggest" => "?q=ng",
        _ => "",
    };
    let mut paths = vec![out.clone()];
    if !extra.is_empty() {
        paths.push(format!("{out}{extra}"));
    }
    paths
}

/// Templates render variables into files, secrets included, so a viewer reads no variable
/// value anywhere: every GET route of `API_ROUTES` and every GET page of the console (both
/// tables walked whole, so a new route is covered the day it is added), and umc-admin's
/// listings. It still sees the names. Operators and admins read the values.
#[test]
fn viewers_never_read_variable_values() {
    let f = fleet();
    assert_eq!(VAR_VALUES, Role::Operator);
    // Change lines for the history, the log and the diff: an operator sets a node variable.
    let edit = serde_json::json!({"ops": [
        {"op": "node_set", "host": HOST, "set_vars": {"api_token": NODE_VALUE}},
    ]});
    let r = f.s.call(
        "POST",
        "/api/v1/edit",
        Some(&f.operator),
        Some(edit.to_string().as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let generation = common::console::generation(&f.s);

    // The API, as a viewer: every GET row.
    let mut walked = 0;
    for route in API_ROUTES.iter().filter(|r| r.verb == Verb::Get) {
        let mut paths = vec![concrete(route.path)];
        match route.path {
            "/diff" => paths = vec![format!("/api/v1/diff?from=0&to={generation}")],
            "/log" => paths.push(format!("/api/v1/log?host={HOST}&limit=10000")),
            "/export" => paths.push("/api/v1/export?history=true".into()),
            _ => {}
        }
        for path in paths {
            let r = f.s.call("GET", &path, Some(&f.viewer), None);
            assert!(r.status < 500, "{path}: {} {}", r.status, r.text());
            let found = values_in(&r.text());
            assert!(
                found.is_empty(),
                "viewer got {found:?} from {path}: {}",
                r.text()
            );
            walked += 1;
        }
    }
    assert!(walked >= 20, "{walked} API reads walked");
    // The names are there, the values null; the diff and log were real answers.
    for path in [format!("/api/v1/nodes/{HOST}"), "/api/v1/nodes".to_string()] {
        let r = f.s.call("GET", &path, Some(&f.viewer), None);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        let node = if v.is_array() { &v[0] } else { &v };
        for name in ["secret", "db_password", "api_token"] {
            assert!(node["vars"][name].is_null(), "{path}: {name}: {v}");
            assert!(node["vars"].get(name).is_some(), "{path}: {name}: {v}");
        }
    }
    let r = f.s.call("GET", "/api/v1/vars", Some(&f.viewer), None);
    assert_eq!(r.text(), r#"{"api_key":null}"#);
    let r = f.s.call(
        "GET",
        &format!("/api/v1/diff?from=0&to={generation}"),
        Some(&f.viewer),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("set global variable 'api_key'"),
        "{}",
        r.text()
    );

    // The console, as a viewer: every GET route of its tables.
    let c = Console::login(&f.s, "vera", PW);
    let mut pages = 0;
    for route in umc::http::ui::console_routes().filter(|r| r.verb == Verb::Get) {
        for path in console_concrete(route.path) {
            let r = c.get(&path);
            assert!(r.status < 500, "{path}: {} {}", r.status, r.text());
            let found = values_in(&r.text());
            assert!(
                found.is_empty(),
                "viewer got {found:?} from {path}: {}",
                r.text()
            );
            pages += 1;
        }
    }
    assert!(pages >= 15, "{pages} console pages walked");
    let t = c.get(&format!("/ui/nodes/{HOST}")).text();
    assert!(
        t.contains("id=\"var-db_password\""),
        "the name is shown: {t}"
    );
    assert!(t.contains("id=\"vars-hidden\""), "{t}");
    let t = c.get("/ui/history").text();
    assert!(t.contains("set variable &#39;api_token&#39;"), "{t}");

    // umc-admin, as a viewer: the names, `(hidden)` for the values, no failure; the export is
    // refused with the role it needs.
    for args in [
        &["node", "show", HOST][..],
        &["node", "list", "--json"],
        &["var", "list"],
        &["var", "list", "--json"],
    ] {
        let out = f.s.admin_as(&f.viewer, args, "");
        let shown = common::show(&out);
        assert!(out.status.success(), "{args:?}: {shown}");
        assert!(values_in(&shown).is_empty(), "{args:?}: {shown}");
        assert!(shown.contains("api_"), "{args:?}: the names: {shown}");
    }
    let out = f.s.admin_as(&f.viewer, &["node", "show", HOST], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("db_password = (hidden)"), "{stdout}");
    let out = f.s.admin_as(&f.viewer, &["export"], "");
    assert!(!out.status.success(), "{}", common::show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs role operator"),
        "{}",
        common::show(&out)
    );

    // The values are hidden by role: an operator and an admin read them.
    for (role, user) in [(Role::Operator, "otto"), (Role::Admin, "adam")] {
        let token = f.token(role);
        let r =
            f.s.call("GET", &format!("/api/v1/nodes/{HOST}"), Some(token), None);
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(v["vars"]["db_password"], NODE_VALUE, "{}", role.as_str());
        assert_eq!(v["vars"]["api_token"], NODE_VALUE, "{}", role.as_str());
        let r = f.s.call("GET", "/api/v1/vars", Some(token), None);
        assert!(
            r.text().contains(GLOBAL_VALUE),
            "{}: {}",
            role.as_str(),
            r.text()
        );
        let r = f.s.call("GET", "/api/v1/export", Some(token), None);
        assert_eq!(
            values_in(&r.text()).len(),
            2,
            "{}: {}",
            role.as_str(),
            r.text()
        );
        let c = Console::login(&f.s, user, PW);
        let t = c.get(&format!("/ui/nodes/{HOST}")).text();
        assert!(t.contains(NODE_VALUE), "{user}: {t}");
        assert!(!t.contains("id=\"vars-hidden\""), "{user}: {t}");
        let out = f.s.admin_as(token, &["var", "list"], "");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(GLOBAL_VALUE),
            "{}",
            common::show(&out)
        );
    }
}

/// The console router is `ui::routes`, built from the console's route tables only (what
/// `ui::console_routes` lists and `viewers_never_read_variable_values` walks): no page module
/// adds a route of its own.
#[test]
fn the_console_router_is_built_from_its_tables_only() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/ui");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("src/http/ui") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.ends_with(".rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        // mod.rs: `build` (one `Router::new()`, one `.route(`) and one `.merge(` of the
        // session routes.
        let allowed = usize::from(name == "mod.rs");
        for call in [".route(", ".merge(", "Router::new()"] {
            assert_eq!(
                text.matches(call).count(),
                allowed,
                "{name}: {call} outside the table builder"
            );
        }
        for call in [".nest(", ".route_service(", ".nest_service("] {
            assert!(!text.contains(call), "{name}: {call} adds unlisted routes");
        }
        checked += 1;
    }
    assert!(checked >= 4, "{checked} console modules checked");
    let paths: BTreeSet<(&str, &str)> = umc::http::ui::console_routes()
        .map(|r| (r.verb.as_str(), r.path))
        .collect();
    assert_eq!(
        paths.len(),
        umc::http::ui::console_routes().count(),
        "a console route listed twice"
    );
}
