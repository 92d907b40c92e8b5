//! The web console's task pages over plain HTTP (no browser): logging in, editing a task
//! through its forms, refused input shown next to its field with the model unchanged, the
//! template editor's line-marked errors and per-host preview, and the catalog suggestions.

use crate::common;

use common::console::{Console, add_user, api_get, element, generation};
use common::{Resp, Server};
use umc::api::TaskInfo;

const PASSWORD: &str = "correct horse battery";

fn tasks(s: &Server) -> Vec<TaskInfo> {
    serde_json::from_value(api_get(s, "/api/v1/tasks")).expect("tasks json")
}

fn task(s: &Server, name: &str) -> TaskInfo {
    serde_json::from_value(api_get(s, &format!("/api/v1/tasks/{name}"))).expect("task json")
}

fn location(r: &Resp) -> &str {
    r.header("location").unwrap_or("")
}

#[test]
fn tasks_are_edited_through_forms_and_bad_input_changes_nothing() {
    let s = Server::start();
    add_user(&s, "sh", "admin", PASSWORD);
    let b = Console::login(&s, "sh", PASSWORD);

    let page = b.get("/ui/tasks");
    assert!(page.text().contains("id=\"no-tasks\""), "{}", page.text());

    // Create a task; the browser lands on its page with the message.
    let r = b.post(
        "/ui/tasks",
        &[("name", "web"), ("description", "Web frontends")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(location(&r), "/ui/tasks/web");
    let page = b.get("/ui/tasks/web").text();
    assert!(
        page.contains("class=\"flash\" role=\"status\">Created task &#39;web&#39; (generation "),
        "{page}"
    );
    assert!(page.contains("Web frontends"));

    // A bad name: the message at the field, the input kept, nothing created.
    let before = generation(&s);
    let r = b.post("/ui/tasks", &[("name", "Bad Name!"), ("description", "")]);
    assert_eq!(r.status, 400, "{}", r.text());
    let html = r.text();
    let msg = element(&html, "name-error").expect("name-error");
    assert!(msg.contains("invalid task name"), "{msg}");
    assert!(html.contains("value=\"Bad Name!\""), "{html}");
    assert!(html.contains("aria-invalid=\"true\""));
    let names: Vec<String> = tasks(&s).into_iter().map(|t| t.name).collect();
    assert_eq!(names, vec!["web".to_string()]);
    assert_eq!(generation(&s), before);

    // A dependency, then a relation that does not parse.
    let r = b.post("/ui/tasks/web/depends", &[("relation", "nginx (>= 1.22)")]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(location(&r), "/ui/tasks/web");
    assert_eq!(task(&s, "web").depends, vec!["nginx (>= 1.22)".to_string()]);
    let page = b.get("/ui/tasks/web").text();
    assert!(page.contains("Added dependency"), "{page}");
    let before = generation(&s);
    let r = b.post("/ui/tasks/web/depends", &[("relation", "nginx (>= ")]);
    assert_eq!(r.status, 400, "{}", r.text());
    let msg = element(&r.text(), "relation-error").expect("relation-error");
    assert!(msg.contains("invalid relation"), "{msg}");
    assert_eq!(task(&s, "web").depends, vec!["nginx (>= 1.22)".to_string()]);
    assert_eq!(generation(&s), before);

    // Removes and includes.
    b.post("/ui/tasks", &[("name", "base"), ("description", "")]);
    let r = b.post("/ui/tasks/web/includes", &[("subtask", "base")]);
    assert_eq!(r.status, 303, "{}", r.text());
    let r = b.post("/ui/tasks/web/includes", &[("subtask", "nope")]);
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(element(&r.text(), "include-error").is_some());
    let r = b.post("/ui/tasks/base/includes", &[("subtask", "web")]);
    assert_eq!(r.status, 409, "{}", r.text());
    let msg = element(&r.text(), "include-error").expect("include-error");
    assert!(msg.contains("cycle"), "{msg}");
    let r = b.post("/ui/tasks/web/removes", &[("package", "telnet")]);
    assert_eq!(r.status, 303, "{}", r.text());
    let t = task(&s, "web");
    assert_eq!(t.includes, vec!["base".to_string()]);
    assert_eq!(t.removes, vec!["telnet".to_string()]);
    let page = b.get("/ui/tasks/web").text();
    assert!(page.contains("id=\"includes-tree\""), "{page}");
    assert!(page.contains("href=\"/ui/tasks/base\""));
    assert!(page.contains("/ui/bulk?task=web"));

    // A node running the task, for the preview.
    s.admin_ok(&["node", "add", "web1.example.com", "--var", "port=8080"]);
    s.admin_ok(&["assign", "web1.example.com", "web"]);
    let page = b.get("/ui/tasks/web").text();
    assert!(
        page.contains("href=\"/ui/nodes/web1.example.com\""),
        "{page}"
    );

    // A syntax error on line 3: 422, shown at the textarea with the line marked; not saved.
    let before = generation(&s);
    let broken = "# web\nlisten {{ vars.port }}\n{% if %}\nend\n";
    let r = b.post(
        "/ui/tasks/web/file",
        &[
            ("path", "/etc/web.conf"),
            ("template", broken),
            ("mode", "0644"),
            ("action", "none"),
            ("service", ""),
            ("host", "web1.example.com"),
            ("do", "save"),
        ],
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let html = r.text();
    let msg = element(&html, "template-error").expect("template-error");
    assert!(msg.contains("line 3"), "{msg}");
    assert!(html.contains("class=\"bad\" id=\"error-line\""), "{html}");
    assert!(html.contains("value=\"3\" class=\"bad\""), "{html}");
    assert!(task(&s, "web").files.is_empty());
    assert_eq!(generation(&s), before);

    // Fixed and saved.
    let fixed =
        "# web\nlisten {{ vars.port }}\n{% if host.name %}name {{ host.name }}{% endif %}\n";
    let r = b.post(
        "/ui/tasks/web/file",
        &[
            ("path", "/etc/web.conf"),
            ("template", fixed),
            ("mode", "0640"),
            ("action", "reload"),
            ("service", "nginx"),
            ("host", "web1.example.com"),
            ("do", "save"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        location(&r),
        "/ui/tasks/web/file?path=%2Fetc%2Fweb.conf",
        "{r:?}",
        r = r.headers
    );
    let files = task(&s, "web").files;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].mode, "0640");
    assert_eq!(files[0].action.as_deref(), Some("reload nginx"));
    let page = b.get("/ui/tasks/web/file?path=%2Fetc%2Fweb.conf");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Saved /etc/web.conf (generation"));
    assert!(page.text().contains("id=\"delete-file\""));

    // Preview of unsaved text for the host; the saved template stays.
    let before = generation(&s);
    let r = b.post(
        "/ui/tasks/web/file",
        &[
            ("path", "/etc/web.conf"),
            ("template", "port={{ vars.port }} on {{ host.fqdn }}\n"),
            ("mode", "0640"),
            ("action", "reload"),
            ("service", "nginx"),
            ("host", "web1.example.com"),
            ("do", "preview"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let out = element(&r.text(), "preview-output").expect("preview-output");
    assert_eq!(out, "port=8080 on web1.example.com\n");
    // A render error names the line; an unknown host is refused at the host field.
    let r = b.post(
        "/ui/tasks/web/file",
        &[
            ("path", "/etc/web.conf"),
            ("template", "a\n{{ vars.nope }}\n"),
            ("host", "web1.example.com"),
            ("do", "preview"),
        ],
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let msg = element(&r.text(), "template-error").expect("template-error");
    assert!(msg.contains("line 2"), "{msg}");
    let r = b.post(
        "/ui/tasks/web/file",
        &[
            ("path", "/etc/web.conf"),
            ("template", "x\n"),
            ("host", "ghost.example.com"),
            ("do", "preview"),
        ],
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let msg = element(&r.text(), "host-error").expect("host-error");
    assert!(msg.contains("unknown node"), "{msg}");
    assert_eq!(task(&s, "web").files[0].template_bytes, fixed.len());
    assert_eq!(generation(&s), before);

    // An oversized template (under the body limit): the field error; unchanged.
    let big = "x".repeat(umc::template::MAX_FILE + 1);
    let r = b.post(
        "/ui/tasks/web/file",
        &[
            ("path", "/etc/big.conf"),
            ("template", &big),
            ("mode", "0644"),
            ("action", "none"),
            ("do", "save"),
        ],
    );
    assert_eq!(r.status, 422);
    let msg = element(&r.text(), "template-error").expect("template-error");
    assert!(msg.contains("larger than"), "{msg}");
    assert_eq!(task(&s, "web").files.len(), 1);
    // A bad mode and a relative path, each at its field.
    let r = b.post(
        "/ui/tasks/web/file",
        &[
            ("path", "/etc/x.conf"),
            ("template", "x"),
            ("mode", "9z"),
            ("do", "save"),
        ],
    );
    assert_eq!(r.status, 422);
    assert!(element(&r.text(), "mode-error").is_some());
    let r = b.post(
        "/ui/tasks/web/file",
        &[
            ("path", "etc/x.conf"),
            ("template", "x"),
            ("mode", "0644"),
            ("do", "save"),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let msg = element(&r.text(), "path-error").expect("path-error");
    assert!(msg.contains("must be absolute"), "{msg}");
    // Refused by the edit, past the form's own checks: a template that parses but does not
    // render for a host (its line marked), and a bad service name, each at its field.
    let r = b.post(
        "/ui/tasks/web/file",
        &[
            ("path", "/etc/x.conf"),
            ("template", "a\n{{ vars.nope }}\n"),
            ("mode", "0644"),
            ("action", "none"),
            ("do", "save"),
        ],
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let html = r.text();
    let msg = element(&html, "template-error").expect("template-error");
    assert!(
        msg.contains("web1.example.com") && msg.contains("line 2"),
        "{msg}"
    );
    assert!(html.contains("value=\"2\" class=\"bad\""), "{html}");
    let r = b.post(
        "/ui/tasks/web/file",
        &[
            ("path", "/etc/x.conf"),
            ("template", "x"),
            ("mode", "0644"),
            ("action", "reload"),
            ("service", "nginx;reboot"),
            ("do", "save"),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let msg = element(&r.text(), "service-error").expect("service-error");
    assert!(msg.contains("invalid service name"), "{msg}");
    assert_eq!(task(&s, "web").files.len(), 1);
    assert_eq!(generation(&s), before);

    // Unknown pages.
    assert_eq!(b.get("/ui/tasks/nope").status, 404);
    assert_eq!(b.get("/ui/tasks/web/file?path=%2Fetc%2Fnone").status, 404);
    let new = b.get("/ui/tasks/web/file");
    assert_eq!(new.status, 200);
    assert!(new.text().contains("id=\"preview-host\""));

    // Deleting the file, then the task.
    let r = b.post("/ui/tasks/web/file/delete", &[("path", "/etc/web.conf")]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(task(&s, "web").files.is_empty());
    let r = b.post("/ui/tasks/base/delete", &[]);
    // Still included by web: refused at the delete button.
    if r.status == 303 {
        assert!(!tasks(&s).iter().any(|t| t.name == "base"));
    } else {
        assert!(element(&r.text(), "delete-error").is_some(), "{}", r.text());
    }
}

#[test]
fn viewers_see_no_forms_and_may_not_edit() {
    let s = Server::start();
    s.admin_ok(&["task", "add", "web"]);
    add_user(&s, "vw", "viewer", PASSWORD);
    let b = Console::login(&s, "vw", PASSWORD);
    let page = b.get("/ui/tasks").text();
    assert!(!page.contains("id=\"new-task\""), "{page}");
    let page = b.get("/ui/tasks/web").text();
    assert!(!page.contains("id=\"depend-form\""), "{page}");
    assert!(!page.contains("id=\"delete-form\""), "{page}");

    let before = generation(&s);
    let r = b.post("/ui/tasks/web/depends", &[("relation", "curl")]);
    assert_eq!(r.status, 403, "{}", r.text());
    let msg = element(&r.text(), "relation-error").expect("relation-error");
    assert!(msg.contains("needs role admin"), "{msg}");
    let r = b.post("/ui/tasks", &[("name", "db")]);
    assert_eq!(r.status, 403, "{}", r.text());
    let r = b.post(
        "/ui/tasks/web/file",
        &[("path", "/etc/x"), ("template", "x"), ("do", "save")],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let msg = element(&r.text(), "error-message").expect("error-message");
    assert!(msg.contains("needs role admin"), "{msg}");
    assert!(task(&s, "web").depends.is_empty());
    assert_eq!(tasks(&s).len(), 1);
    assert_eq!(generation(&s), before);
}

const PACKAGES: &str = "Package: nginx
Version: 1.22.1-9
Description: small, powerful, scalable web/proxy server

Package: nginx-light
Version: 1.22.1-9
Description: nginx web/proxy server (basic version)

Package: libnginx-mod-http-geoip
Version: 1.22.1-9
Description: GeoIP HTTP module for Nginx

Package: apache2
Version: 2.4.62-1
Description: Apache HTTP Server
";

#[test]
fn catalog_search_and_suggestions() {
    let s = Server::start();
    add_user(&s, "sh", "admin", PASSWORD);
    s.admin_ok(&["task", "add", "web"]);
    let b = Console::login(&s, "sh", PASSWORD);

    let r = b.get("/ui/catalog/suggest?q=ng");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let names: Vec<String> = serde_json::from_slice(&r.body).expect("json");
    assert!(names.is_empty());
    let page = b.get("/ui/catalog").text();
    assert!(page.contains("id=\"no-catalog\""), "{page}");
    assert!(page.contains("umc-admin catalog import"));

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("Packages");
    std::fs::write(&file, PACKAGES).expect("write Packages");
    s.admin_ok(&[
        "catalog",
        "import",
        "local",
        "--file",
        file.to_str().expect("path"),
    ]);

    let r = b.get("/ui/catalog/suggest?q=ngin");
    let names: Vec<String> = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(
        names,
        vec!["nginx", "nginx-light", "libnginx-mod-http-geoip"]
    );
    let page = b.get("/ui/catalog?q=nginx").text();
    assert!(page.contains("id=\"hits\""), "{page}");
    assert!(page.contains("1.22.1-9"));
    let page = b.get("/ui/catalog?q=zzzz").text();
    assert!(page.contains("id=\"no-hits\""), "{page}");

    // With a catalog, an unknown name is refused at the field.
    let r = b.post("/ui/tasks/web/depends", &[("relation", "ngnix")]);
    assert!(r.status >= 400, "{}", r.text());
    let msg = element(&r.text(), "relation-error").expect("relation-error");
    assert!(msg.contains("unknown package"), "{msg}");
    assert!(task(&s, "web").depends.is_empty());
    let r = b.post("/ui/tasks/web/depends", &[("relation", "nginx")]);
    assert_eq!(r.status, 303, "{}", r.text());
}
