//! The web console in a real browser: headless Chromium (fresh profile, no background
//! networking) driven over WebDriver against a real umcd on 127.0.0.1, and stock apt-get
//! checking that what was clicked reaches a node's repository.

use crate::common;

use common::browser::{Browser, screenshot_dir};
use common::console::add_user;
use common::{Apt, Server, require_tool, version_gt};

const PW: &str = "correct horse battery";
const WEB1: &str = "web1.example.com";
const WEB2: &str = "web2.example.com";

fn shot(b: &Browser, name: &str) {
    let path = screenshot_dir().join(format!("{name}.png"));
    b.screenshot(&path);
    eprintln!("screenshot: {}", path.display());
}

/// Visible form controls without a label: every input must be reachable by name, for
/// keyboards and screen readers alike.
fn unlabelled(b: &Browser) -> Vec<String> {
    let v = b.execute(
        "return [...document.querySelectorAll('input, select, textarea')]
           .filter(e => e.type !== 'hidden' && e.offsetParent !== null)
           .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
           .map(e => e.outerHTML.slice(0, 120));",
        &[],
    );
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The page fits the window: nothing forces sideways scrolling (tables scroll in their box).
fn fits(b: &Browser) -> bool {
    b.execute(
        "return document.documentElement.scrollWidth <= window.innerWidth;",
        &[],
    )
    .as_bool()
    .unwrap_or(false)
}

fn flash(b: &Browser) -> String {
    b.find(".flash").text()
}

#[test]
fn an_admin_builds_a_task_in_the_browser_and_apt_sees_it() {
    if !(require_tool("apt-get") && require_tool("dpkg")) {
        return;
    }
    let s = Server::start();
    add_user(&s, "sh", "admin", PW);
    s.admin_ok(&["node", "add", WEB1, "--var", "port=8080"]);
    s.admin_ok(&["node", "add", WEB2]);
    s.admin_ok(&["node", "add", "db1.example.com"]);
    let apt = Apt::new(&s.url, WEB1, &s.node_token(WEB1), &s.keyring());
    apt.update_ok();
    let before = apt
        .field(&format!("umc-{WEB1}"), "Version")
        .expect("host package before");

    let Some(b) = Browser::start() else {
        return;
    };
    let ui = |path: &str| format!("{}{path}", s.url);

    // Log in: the console sends us to the login page and back where we wanted to go.
    b.goto(&ui("/ui/tasks"));
    assert!(
        b.current_url().contains("/ui/login?next="),
        "{}",
        b.current_url()
    );
    assert!(unlabelled(&b).is_empty(), "{:?}", unlabelled(&b));
    b.find("#user").send_keys("sh");
    b.find("#password").send_keys(PW);
    b.find("#login").click();
    b.wait_until("the tasks page", std::time::Duration::from_secs(5), |b| {
        b.current_url().ends_with("/ui/tasks")
    });
    let session = b.cookie("umc_session").expect("session cookie");
    assert_eq!(session.len(), 64);
    assert!(
        b.execute("return document.cookie;", &[])
            .as_str()
            .is_some_and(|c| !c.contains("umc_session")),
        "the session cookie is HttpOnly"
    );

    // Create task 'web'.
    assert!(unlabelled(&b).is_empty(), "{:?}", unlabelled(&b));
    b.find("#name").send_keys("web");
    b.find("#description").send_keys("Web frontends");
    b.find("#create-task").click();
    b.wait_until("the task page", std::time::Duration::from_secs(5), |b| {
        b.current_url().ends_with("/ui/tasks/web")
    });
    assert!(flash(&b).contains("web"), "{}", flash(&b));

    // A dependency.
    b.find("#relation").send_keys("less");
    b.find("#add-depend").click();
    b.wait_until("the dependency", std::time::Duration::from_secs(5), |b| {
        b.try_find("#depends")
            .is_some_and(|d| d.text().contains("less"))
    });

    // A templated file with a syntax error on line 3: the error shows at that line and
    // nothing is saved.
    b.find("#new-file").click();
    b.find("#path").send_keys("/etc/umc-site.conf");
    let template = b.find("#template");
    template.clear();
    template.send_keys("# managed by umc\nlisten {{ vars.port }};\n{% if %}\n");
    b.find("#save").click();
    let error = b.find("#template-error").text();
    assert!(error.contains("line 3"), "{error}");
    assert!(b.find("#error-line").text().contains("{% if %}"));
    b.execute(
        "document.getElementById('template-error').scrollIntoView({block: 'center'});",
        &[],
    );
    shot(&b, "task-file-error");
    let r = s.admin_ok(&["task", "show", "web"]);
    assert!(!r.contains("/etc/umc-site.conf"), "nothing saved: {r}");

    // Fixed: saved.
    let template = b.find("#template");
    template.clear();
    template.send_keys(
        "# managed by umc\nlisten {% if vars.port %}{{ vars.port }}{% else %}80{% endif %};\nserver_name {{ host.fqdn }};\n",
    );
    b.find("#save").click();
    b.wait_until("the save", std::time::Duration::from_secs(5), |b| {
        b.try_find(".flash")
            .is_some_and(|f| f.text().contains("Saved"))
    });

    // Assign 'web' to the two web nodes in bulk, after looking at the diff.
    b.goto(&ui("/ui/bulk?q=web"));
    assert!(unlabelled(&b).is_empty(), "{:?}", unlabelled(&b));
    assert!(b.try_find("#host-db1\\.example\\.com").is_none());
    for h in [WEB1, WEB2] {
        let cb = b.find(&format!("#host-{}", h.replace('.', "\\.")));
        assert_eq!(
            cb.attr("checked").as_deref(),
            Some("true"),
            "{h} preselected"
        );
    }
    b.find("#assign-web").click();
    b.find("#bulk-preview").click();
    let diff = b.find("#bulk-diff").text();
    assert!(
        diff.contains(WEB1) && diff.contains(WEB2) && diff.contains("web"),
        "{diff}"
    );
    shot(&b, "bulk-diff");
    b.find("#bulk-confirm").click();
    b.wait_until("the bulk result", std::time::Duration::from_secs(5), |b| {
        b.try_find(".flash")
            .is_some_and(|f| f.text().contains("2 nodes"))
    });

    // The preview renders for a node that runs the task.
    b.goto(&ui("/ui/tasks/web/file?path=%2Fetc%2Fumc-site.conf"));
    b.find("#preview-host").select_by_value(WEB1);
    b.find("#preview").click();
    let preview = b.find("#preview-output").text();
    assert!(
        preview.contains("listen 8080;") && preview.contains(&format!("server_name {WEB1};")),
        "{preview}"
    );

    // The task page, the node page and the dashboard, as screenshots.
    b.goto(&ui("/ui/tasks/web"));
    assert!(b.find("#nodes").text().contains(WEB2));
    shot(&b, "task");
    b.goto(&ui(&format!("/ui/nodes/{WEB1}")));
    assert!(b.find("#closure").text().contains("less"));
    assert!(b.find("#enroll").text().contains(WEB1));
    assert!(unlabelled(&b).is_empty(), "{:?}", unlabelled(&b));
    shot(&b, "node");
    b.goto(&ui("/ui/"));
    let tiles: u32 = ["ok", "pending", "drift", "failed", "stale"]
        .iter()
        .map(|st| {
            let t = b.find(&format!("#tile-{st} .count")).text();
            t.trim()
                .parse::<u32>()
                .unwrap_or_else(|_| panic!("tile {st}: {t}"))
        })
        .sum();
    assert_eq!(tiles, 3, "every node in one state tile");
    shot(&b, "dashboard");

    // History names the user.
    b.goto(&ui("/ui/history?user=sh"));
    let history = b.find("#history").text();
    for line in ["sh", "web", WEB1, WEB2, "less"] {
        assert!(history.contains(line), "{line}: {history}");
    }
    shot(&b, "history");

    // Down to a phone: the nodes list still fits the screen.
    b.set_window_size(390, 844);
    b.goto(&ui("/ui/nodes"));
    assert!(fits(&b), "the nodes list scrolls sideways on a phone");
    shot(&b, "nodes-phone");
    b.goto(&ui(&format!("/ui/nodes/{WEB1}")));
    assert!(fits(&b), "the node page scrolls sideways on a phone");
    b.set_window_size(1280, 900);

    // Stock apt on web1 sees the new host version, which pulls in the task and its file.
    apt.update_ok();
    let after = apt
        .field(&format!("umc-{WEB1}"), "Version")
        .expect("host package after");
    assert!(version_gt(&after, &before), "{after} > {before}");
    let depends = apt
        .field(&format!("umc-{WEB1}"), "Depends")
        .unwrap_or_default();
    assert!(depends.contains("umc-task-web"), "{depends}");
    assert!(
        apt.field("umc-task-web", "Depends")
            .is_some_and(|d| d.contains("less")),
        "umc-task-web depends on less"
    );

    // Log out: the cookie is gone, and the old session no longer opens a page.
    b.find("#logout").click();
    b.wait_until("the login page", std::time::Duration::from_secs(5), |b| {
        b.current_url().contains("/ui/login")
    });
    b.add_cookie("umc_session", &session);
    b.goto(&ui("/ui/nodes"));
    assert!(b.current_url().contains("/ui/login"), "{}", b.current_url());
}

#[test]
fn a_viewer_sees_no_forms_and_is_refused() {
    let s = Server::start();
    add_user(&s, "vi", "viewer", PW);
    s.admin_ok(&["node", "add", WEB1]);
    s.admin_ok(&["task", "add", "web"]);
    let Some(b) = Browser::start() else {
        return;
    };
    b.goto(&format!("{}/ui/login", s.url));
    b.find("#user").send_keys("vi");
    b.find("#password").send_keys(PW);
    b.find("#login").click();
    b.wait_until("the dashboard", std::time::Duration::from_secs(5), |b| {
        b.current_url().ends_with("/ui/")
    });
    for path in ["/ui/tasks", "/ui/tasks/web", &format!("/ui/nodes/{WEB1}")] {
        b.goto(&format!("{}{path}", s.url));
        let forms = b.find_all("main form[method=post]");
        assert!(
            forms.is_empty(),
            "{path}: a viewer sees {} edit forms",
            forms.len()
        );
    }
    assert!(
        b.try_find("#enroll").is_none(),
        "node tokens are for admins"
    );
    // The bulk page says why, instead of offering forms.
    b.goto(&format!("{}/ui/bulk", s.url));
    assert!(
        b.find("#error-message")
            .text()
            .contains("needs role operator")
    );
    // A form posted anyway (here: built by hand in the page) is refused and changes nothing.
    let csrf = b.find("input[name=csrf]").value();
    b.execute(
        "const f = document.createElement('form'); f.method = 'post'; f.action = '/ui/tasks';
         for (const [k, v] of [['csrf', arguments[0]], ['name', 'sneaky']]) {
           const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.append(i);
         }
         document.body.append(f); f.submit();",
        &[csrf.into()],
    );
    b.wait_until("the refusal", std::time::Duration::from_secs(5), |b| {
        b.source().contains("needs role admin")
    });
    assert!(!s.admin_ok(&["task", "list"]).contains("sneaky"));
}

/// Over umcd's own https: Chromium trusts exactly umcd's key (its pin, not a blanket
/// certificate-error switch), the login sets a `Secure` session cookie, and HSTS is sent.
#[test]
fn the_console_over_https_sets_a_secure_session_cookie_and_hsts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Server::start_in_with(&tmp.path().join("data"), &["--tls", "on"]);
    assert!(s.url.starts_with("https://"), "{}", s.url);
    add_user(&s, "sh", "admin", PW);
    let pin = s.pin.as_deref().expect("umcd printed its pin");
    let spki = pin.strip_prefix("sha256//").expect("a sha256 pin");
    let Some(b) = Browser::start_with(&[format!("--ignore-certificate-errors-spki-list={spki}")])
    else {
        return;
    };
    b.goto(&format!("{}/ui/login", s.url));
    b.find("#user").send_keys("sh");
    b.find("#password").send_keys(PW);
    b.find("#login").click();
    b.wait_until("the dashboard", std::time::Duration::from_secs(5), |b| {
        b.current_url().ends_with("/ui/")
    });
    assert!(
        b.current_url().starts_with("https://"),
        "{}",
        b.current_url()
    );
    let cookie = b
        .cookies()
        .into_iter()
        .find(|c| c["name"] == "umc_session")
        .expect("a session cookie");
    assert_eq!(cookie["secure"], true, "{cookie}");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    // The header as the browser received it (same origin, so the page may read it).
    let hsts = b.execute(
        "const x = new XMLHttpRequest(); x.open('GET', '/ui/', false); x.send();
         return x.getResponseHeader('Strict-Transport-Security');",
        &[],
    );
    assert_eq!(hsts, "max-age=31536000");

    // Only that key is trusted: another umcd's certificate (its own CA, another key) gets
    // Chromium's certificate error page, not a login form.
    let tmp2 = tempfile::tempdir().expect("tmp");
    let other = Server::start_in_with(&tmp2.path().join("data"), &["--tls", "on"]);
    b.goto(&format!("{}/ui/login", other.url));
    assert!(b.source().contains("ERR_CERT"), "{}", b.title());
    assert!(b.try_find("#user").is_none());
}
