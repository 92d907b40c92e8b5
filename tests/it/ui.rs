//! The web console's security over plain HTTP: login and sessions, CSRF, rate limits,
//! removed users, roles, and the headers every page carries. (The browser tests are in
//! tests/it/ui_browser.rs.)

use crate::common;

use common::console::{Console, add_user, csrf_field, login_attempt, login_to, set_cookie};
use common::{Server, http, raw_get};

const PW: &str = "correct horse battery";

fn header<'a>(r: &'a common::Resp, name: &str) -> &'a str {
    r.header(name).unwrap_or("")
}

#[test]
fn pages_need_a_login_and_carry_security_headers() {
    let s = Server::start();
    add_user(&s, "sh", "admin", PW);

    let r = http("GET", &format!("{}/ui/nodes?q=web", s.url), None, &[], None);
    assert_eq!(r.status, 303);
    assert_eq!(
        header(&r, "location"),
        "/ui/login?next=%2Fui%2Fnodes%3Fq%3Dweb"
    );

    let login = http("GET", &format!("{}/ui/login", s.url), None, &[], None);
    assert_eq!(login.status, 200);
    let csp = header(&login, "content-security-policy");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(header(&login, "x-frame-options"), "DENY");
    assert_eq!(header(&login, "x-content-type-options"), "nosniff");

    let r = login_attempt(&s, "sh", PW);
    assert_eq!(r.status, 303, "{}", r.text());
    let cookie = r
        .headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.starts_with("umc_session="))
        .map(|(_, v)| v.clone())
        .expect("session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");

    // Behind a TLS-terminating proxy the cookie is Secure, but only when umcd trusts the
    // proxy (trusted_proxies): from anyone else the header is dropped.
    let secure_cookie = |s: &Server| {
        let page = http(
            "GET",
            &format!("{}/ui/login", s.url),
            None,
            &[("X-Forwarded-Proto", "https")],
            None,
        );
        page.headers
            .iter()
            .any(|(k, v)| k == "set-cookie" && v.contains("; Secure"))
    };
    assert!(!secure_cookie(&s), "an untrusted X-Forwarded-Proto counts");
    let proxied = Server::start_with_config("trusted_proxies = [\"127.0.0.0/8\"]\n");
    assert!(
        secure_cookie(&proxied),
        "a trusted proxy's X-Forwarded-Proto is ignored"
    );

    // Every page: no inline script or style for the CSP to trip over, and escaped input.
    let c = Console::login(&s, "sh", PW);
    s.admin_ok(&[
        "node",
        "add",
        "web1.example.com",
        "--var",
        "motd=<script>x</script>",
    ]);
    for path in ["/ui/", "/ui/nodes", "/ui/nodes?q=%3Cscript%3E", "/ui/login"] {
        let r = c.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let html = r.text();
        assert!(!html.contains("<script>"), "{path}: inline script");
        assert!(!html.contains("style="), "{path}: inline style");
        assert!(!html.contains("onclick"), "{path}: inline handler");
        assert_eq!(header(&r, "cache-control"), "no-store", "{path}");
    }
}

#[test]
fn posts_without_the_csrf_token_are_refused() {
    let s = Server::start();
    add_user(&s, "sh", "admin", PW);
    let c = Console::login(&s, "sh", PW);

    // Logout is a POST too: without the token the session survives.
    for body in ["", "csrf=", "csrf=0000"] {
        let r = c.post_raw("/ui/logout", body);
        assert_eq!(r.status, 403, "{body:?}: {}", r.text());
        assert!(r.text().contains("CSRF"), "{}", r.text());
    }
    assert_eq!(c.get("/ui/").status, 200, "still logged in");

    // A wrong token of the right length, and the wrong token first with the right one after.
    let wrong: String = c
        .csrf
        .chars()
        .map(|ch| if ch == '0' { '1' } else { '0' })
        .collect();
    for body in [
        format!("csrf={wrong}"),
        format!("csrf={wrong}&csrf={}", c.csrf),
    ] {
        let r = c.post_raw("/ui/logout", &body);
        assert_eq!(r.status, 403, "{body:?}: {}", r.text());
    }
    assert_eq!(c.get("/ui/").status, 200, "still logged in");

    // The right token from another origin, `null`, or an Origin that is this server with a
    // path (not an origin): refused as well.
    let here = s.url.clone();
    for origin in [
        "http://evil.example".to_string(),
        "null".to_string(),
        format!("{here}/ui/"),
    ] {
        let r = http(
            "POST",
            &format!("{}/ui/logout", s.url),
            None,
            &[
                ("Cookie", &c.cookie()),
                ("Origin", &origin),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(format!("csrf={}", c.csrf).as_bytes()),
        );
        assert_eq!(r.status, 403, "Origin {origin}: {}", r.text());
        assert_eq!(c.get("/ui/").status, 200, "Origin {origin}");
    }

    // The login form without its double-submit token.
    let r = http(
        "POST",
        &format!("{}/ui/login", s.url),
        None,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(format!("user=sh&password={}", PW.replace(' ', "+")).as_bytes()),
    );
    assert_eq!(r.status, 403);
    assert!(set_cookie(&r, "umc_session").is_none());

    // With it: logout ends the session, and the old cookie no longer works.
    let r = c.post("/ui/logout", &[]);
    assert_eq!(r.status, 303);
    assert_eq!(header(&r, "location"), "/ui/login");
    let r = c.get("/ui/");
    assert_eq!(r.status, 303, "old cookie after logout");
}

#[test]
fn wrong_passwords_are_rate_limited_per_user_and_address() {
    let s = Server::start();
    add_user(&s, "sh", "admin", PW);
    add_user(&s, "other", "viewer", PW);
    for i in 0..5 {
        let r = login_attempt(&s, "sh", "wrong password");
        assert_eq!(r.status, 401, "attempt {i}");
        assert!(r.text().contains("wrong user name or password"));
    }
    // Now even the right password waits, and the page says so.
    let r = login_attempt(&s, "sh", PW);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.text().contains("too many failed logins"), "{}", r.text());
    assert!(set_cookie(&r, "umc_session").is_none());

    // The API's password door (a user getting a token) shares the limit.
    let r = http(
        "POST",
        &format!("{}/api/v1/tokens", s.url),
        Some(("sh", PW)),
        &[("Content-Type", "application/json")],
        Some(b"{}"),
    );
    assert_eq!(r.status, 429, "{}", r.text());

    // Another user from the same address is not locked out by sh's failures...
    Console::login(&s, "other", PW);
    // ...until the address itself has failed too often (20), whatever the names.
    for i in 0..15 {
        let r = login_attempt(&s, &format!("nobody{i}"), "x");
        assert_eq!(r.status, 401);
    }
    let r = login_attempt(&s, "other", PW);
    assert_eq!(r.status, 429, "{}", r.text());
}

#[test]
fn a_removed_users_session_stops_working() {
    let s = Server::start();
    add_user(&s, "sh", "admin", PW);
    add_user(&s, "vi", "viewer", PW);
    let c = Console::login(&s, "vi", PW);
    let page = c.get("/ui/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("viewer"));
    assert!(csrf_field(&page.text()).is_some());

    s.admin_ok(&["user", "rm", "vi"]);
    let r = c.get("/ui/");
    assert_eq!(r.status, 303, "a removed user's cookie");
    assert!(header(&r, "location").starts_with("/ui/login"));
    // Re-creating the name does not revive the old session.
    add_user(&s, "vi", "viewer", PW);
    assert_eq!(c.get("/ui/").status, 303);
    // The password is wrong for nobody else: the new account logs in normally.
    Console::login(&s, "vi", PW);
}

#[test]
fn parallel_guesses_cannot_outrun_the_limit() {
    let s = Server::start();
    add_user(&s, "sh", "admin", PW);
    // Twelve wrong passwords at once: the limit counts each before its (slow) check, so no
    // more than five are ever checked.
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|_| scope.spawn(|| login_attempt(&s, "sh", "wrong password").status))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let checked = answers.iter().filter(|s| **s == 401).count();
    assert!(checked <= 5, "{answers:?}");
    assert!(
        answers.iter().all(|s| [401, 429, 503].contains(s)),
        "{answers:?}"
    );
    assert_eq!(login_attempt(&s, "sh", PW).status, 429);

    // A name no user can have is answered like a wrong password, and counts for the address.
    let r = login_attempt(&s, "Not A Name\n", "x");
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("wrong user name or password"));

    // After login, only a local, plain-ASCII path is followed.
    add_user(&s, "ann", "viewer", PW);
    let r = login_to(&s, "ann", PW, "/ui/\u{e9}");
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(header(&r, "location"), "/ui/");
}

#[test]
fn a_viewer_cannot_render_posted_templates() {
    let s = Server::start();
    add_user(&s, "vi", "viewer", PW);
    s.admin_ok(&["node", "add", "web1.example.com"]);
    s.admin_ok(&["task", "add", "web"]);
    let c = Console::login(&s, "vi", PW);
    let r = c.post(
        "/ui/tasks/web/file",
        &[
            ("do", "preview"),
            ("path", "/etc/x"),
            ("template", "{{ host.fqdn }}"),
            ("host", "web1.example.com"),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("needs role admin"), "{}", r.text());
}

/// Sessions end when the password changes and at logout, and every login gets a new session
/// id, whatever cookie the browser brought (no session fixation).
#[test]
fn a_password_change_ends_sessions_and_every_login_gets_a_fresh_id() {
    let s = Server::start();
    add_user(&s, "sh", "admin", PW);
    add_user(&s, "vi", "viewer", PW);
    let first = Console::login(&s, "vi", PW);
    let second = Console::login(&s, "vi", PW);
    assert_ne!(first.session, second.session, "two logins, two ids");
    let other = Console::login(&s, "sh", PW);

    // A login posted with a session cookie (an attacker's, or the user's own) gets a new one.
    let page = http("GET", &format!("{}/ui/login", s.url), None, &[], None);
    let login = set_cookie(&page, "umc_login").expect("login cookie");
    let r = http(
        "POST",
        &format!("{}/ui/login", s.url),
        None,
        &[
            (
                "Cookie",
                &format!("umc_login={login}; umc_session={}", first.session),
            ),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(
            common::console::form(&[("csrf", &login), ("user", "vi"), ("password", PW)]).as_bytes(),
        ),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let fresh = set_cookie(&r, "umc_session").expect("a session cookie");
    assert!(
        ![&first.session, &second.session].contains(&&fresh),
        "the login reused an old session id"
    );

    // passwd ends every session of that user, and only that user's.
    let out = s.admin_as(
        &s.token(),
        &["user", "passwd", "vi"],
        "a new long password\n",
    );
    assert!(out.status.success(), "{}", common::show(&out));
    for c in [&first, &second] {
        let r = c.get("/ui/");
        assert_eq!(r.status, 303, "a session from before passwd");
    }
    let r = http(
        "GET",
        &format!("{}/ui/", s.url),
        None,
        &[("Cookie", &format!("umc_session={fresh}"))],
        None,
    );
    assert_eq!(r.status, 303, "the newest session from before passwd");
    assert_eq!(other.get("/ui/").status, 200, "another user's session");
    assert_eq!(login_attempt(&s, "vi", PW).status, 401, "the old password");
    let c = Console::login(&s, "vi", "a new long password");
    // Logout ends it.
    assert_eq!(c.post("/ui/logout", &[]).status, 303);
    assert_eq!(c.get("/ui/").status, 303, "after logout");
}

/// The review's 18 odd console GETs: huge page numbers, 30 KB names, `%00`, `%ff` and static
/// traversal. None gets a 5xx or panics umcd, and nothing outside the console is served.
#[test]
fn odd_console_gets_never_answer_500() {
    let s = Server::start();
    add_user(&s, "sh", "admin", PW);
    s.admin_ok(&["node", "add", "web1.example.com"]);
    s.admin_ok(&["task", "add", "web"]);
    let c = Console::login(&s, "sh", PW);
    let cookie = c.cookie();
    let long = "a".repeat(30_000);
    let targets = [
        "/ui/nodes?page=99999999999999999999999".to_string(),
        format!("/ui/nodes?page={}", u64::MAX),
        "/ui/nodes?page=-1".to_string(),
        "/ui/history?limit=99999999999999999999999".to_string(),
        "/ui/history?limit=-1&user=%00".to_string(),
        format!("/ui/nodes/{long}"),
        format!("/ui/tasks/{long}"),
        format!("/ui/tasks/web/file?path=/etc/{long}"),
        format!("/ui/nodes?q={long}"),
        "/ui/nodes/%00".to_string(),
        "/ui/nodes/%ff".to_string(),
        "/ui/tasks/%00".to_string(),
        "/ui/tasks/web%ff".to_string(),
        "/ui/nodes?q=%ff%00&state=%ff&task=%00".to_string(),
        "/ui/catalog/suggest?q=%ff".to_string(),
        "/ui/static/../../admin.token".to_string(),
        "/ui/static/%2e%2e/%2e%2e/admin.token".to_string(),
        "/ui/static/umc.css/..%2f..%2fadmin.token".to_string(),
    ];
    assert_eq!(targets.len(), 18);
    for t in &targets {
        let (status, answer) = raw_get(&s, t, &format!("Cookie: {cookie}"));
        let what = &t[..t.len().min(80)];
        eprintln!("{what}: {status}");
        assert!((200..500).contains(&status), "{what}: {status}");
        assert!(!answer.contains(&s.token()), "{what} served admin.token");
    }
    assert_eq!(c.get("/ui/").status, 200, "umcd still serves the console");
    let log = s.log();
    assert!(!log.contains("panicked"), "{log}");
}
