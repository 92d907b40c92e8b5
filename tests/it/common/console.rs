//! A web-console session over plain HTTP: log in like a browser (login cookie, CSRF field),
//! then GET pages and POST forms with the session's CSRF token.

use super::{Resp, Server, http};

/// Adds console user `name` with `role` and `password` through the real umc-admin.
pub fn add_user(s: &Server, name: &str, role: &str, password: &str) {
    let out = s.admin_as(
        &s.token(),
        &["user", "add", name, "--role", role],
        &format!("{password}\n"),
    );
    assert!(out.status.success(), "{}", super::show(&out));
}

/// The value of cookie `name` set by `r`, if any.
pub fn set_cookie(r: &Resp, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The first hidden `csrf` field of a page.
pub fn csrf_field(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let rest = &html[at..];
    Some(rest[..rest.find('"')?].to_string())
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>(),
                form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// POSTs the login form as a browser would; returns the response.
pub fn login_attempt(s: &Server, user: &str, password: &str) -> Resp {
    login_to(s, user, password, "/ui/")
}

/// [`login_attempt`] asking to go to `next` afterwards.
pub fn login_to(s: &Server, user: &str, password: &str, next: &str) -> Resp {
    let page = http("GET", &format!("{}/ui/login", s.url), None, &[], None);
    let token = set_cookie(&page, "umc_login").expect("login cookie");
    let csrf = csrf_field(&page.text()).expect("login csrf field");
    assert_eq!(token, csrf, "double-submit token");
    http(
        "POST",
        &format!("{}/ui/login", s.url),
        None,
        &[
            ("Cookie", &format!("umc_login={token}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(
            form(&[
                ("csrf", &csrf),
                ("user", user),
                ("password", password),
                ("next", next),
            ])
            .as_bytes(),
        ),
    )
}

pub struct Console<'a> {
    pub server: &'a Server,
    pub session: String,
    pub csrf: String,
}

impl<'a> Console<'a> {
    /// Logs in; panics with the page when the login fails.
    pub fn login(s: &'a Server, user: &str, password: &str) -> Console<'a> {
        let r = login_attempt(s, user, password);
        assert_eq!(r.status, 303, "login as {user}: {}", r.text());
        let session = set_cookie(&r, "umc_session").expect("session cookie");
        let mut c = Console {
            server: s,
            session,
            csrf: String::new(),
        };
        let home = c.get("/ui/");
        assert_eq!(home.status, 200, "{}", home.text());
        c.csrf = csrf_field(&home.text()).expect("csrf field on the dashboard");
        c
    }

    pub fn cookie(&self) -> String {
        format!("umc_session={}", self.session)
    }

    pub fn get(&self, path: &str) -> Resp {
        http(
            "GET",
            &format!("{}{path}", self.server.url),
            None,
            &[("Cookie", &self.cookie())],
            None,
        )
    }

    /// POSTs a form with the session's CSRF token added.
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &form(&all))
    }

    /// POSTs `body` as is (no CSRF token added).
    pub fn post_raw(&self, path: &str, body: &str) -> Resp {
        http(
            "POST",
            &format!("{}{path}", self.server.url),
            None,
            &[
                ("Cookie", &self.cookie()),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(body.as_bytes()),
        )
    }
}

/// The inner text of the element with `id` (up to its first closing tag), if the page has one.
pub fn element(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = at + html[at..].find('>')? + 1;
    let end = start + html[start..].find("</")?;
    Some(html[start..end].to_string())
}

/// GETs `path` (e.g. `/api/v1/server`) with the admin token; asserts 200 and parses the JSON.
pub fn api_get(s: &Server, path: &str) -> serde_json::Value {
    let r = s.api("GET", path, None);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    serde_json::from_slice(&r.body).expect("json")
}

/// The model's generation, from `/api/v1/server`.
pub fn generation(s: &Server) -> u64 {
    api_get(s, "/api/v1/server")["generation"]
        .as_u64()
        .expect("generation")
}
