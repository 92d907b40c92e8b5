//! A small synchronous W3C WebDriver client: Debian's real `chromium`, headless, driven by
//! `chromedriver` over plain JSON with the `ureq` we already depend on. (fantoccini/thirtyfour
//! would bring a second, async HTTP stack and the webdriver crate tree into the test build for
//! a dozen commands.)
//!
//! Every call panics on failure with the WebDriver error JSON, so tests read straight through.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The W3C key under which element references travel (the spec's "web element identifier").
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long `find` waits for an element to appear (pages render and run scripts async).
const FIND_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);

/// Where UI tests put screenshots: under the target dir, kept after the run for inspection.
pub fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots")
}

/// The first `name` on `PATH` (chromedriver wants a real path for the browser binary).
fn which(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` not on PATH"))
}

/// The error part of a WebDriver error reply, without Chrome's native stack trace (addresses,
/// no symbols: noise in a test failure).
fn error_json(mut v: Value) -> String {
    if let Some(o) = v.as_object_mut() {
        o.remove("stacktrace");
    }
    v.to_string()
}

/// One chromedriver process with one browser session; dropped, it ends both.
pub struct Browser {
    driver: Child,
    agent: ureq::Agent,
    /// `http://127.0.0.1:<port>`
    base: String,
    session: String,
    /// Chromium's main process (`goog:processID`), for cleanup when chromedriver could not.
    browser_pid: Option<u64>,
    /// Holds the browser profile and the chromedriver log; removed on drop.
    dir: tempfile::TempDir,
}

impl Browser {
    /// chromedriver on a free loopback port and a headless Chromium session with a fresh
    /// profile. None when chromium or chromedriver is missing locally (panics in CI).
    pub fn start() -> Option<Browser> {
        Browser::start_with(&[])
    }

    /// [`Browser::start`] with extra Chromium switches (`--name=value`).
    pub fn start_with(extra: &[String]) -> Option<Browser> {
        if !super::require_tool("chromium") || !super::require_tool("chromedriver") {
            return None;
        }
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("tempdir");
        let profile = dir.path().join("profile");
        std::fs::create_dir_all(&profile).expect("profile dir");
        let log = std::fs::File::create(dir.path().join("chromedriver.log")).expect("log");
        let port = super::sshd::free_port();
        let driver = Command::new(which("chromedriver"))
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn chromedriver");
        // A global timeout so a wedged browser fails the test instead of hanging it; no proxy
        // from the environment for a loopback peer.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut b = Browser {
            driver,
            agent,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            browser_pid: None,
            dir,
        };
        b.wait_driver_ready();
        let ready = started.elapsed();
        let mut args = vec![
            "--headless=new".to_string(),
            // Tests run as root in CI; Chromium refuses root without this.
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            // Containers often have a tiny /dev/shm.
            "--disable-dev-shm-usage".to_string(),
            format!("--user-data-dir={}", profile.display()),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--no-first-run".to_string(),
            "--no-default-browser-check".to_string(),
            "--disable-default-apps".to_string(),
            "--disable-extensions".to_string(),
            "--window-size=1280,900".to_string(),
        ];
        args.extend_from_slice(extra);
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": which("chromium").display().to_string(),
                "args": args,
            },
        }}});
        let url = format!("{}/session", b.base);
        let v = match b.request("POST", &url, Some(caps)) {
            Ok(v) => v,
            Err(e) => panic!(
                "WebDriver new session failed: {}\n--- chromedriver log\n{}",
                error_json(e),
                b.driver_log()
            ),
        };
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {v}"))
            .to_string();
        b.browser_pid = v["capabilities"]["goog:processID"].as_u64();
        eprintln!(
            "browser: chromedriver ready in {ready:.2?}, session up in {:.2?}",
            started.elapsed()
        );
        Some(b)
    }

    /// Polls `/status` until chromedriver says ready (≤ 20 s), failing early if it exited.
    fn wait_driver_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("{}/status", self.base);
        loop {
            if let Ok(Some(st)) = self.driver.try_wait() {
                panic!("chromedriver exited: {st}\n{}", self.driver_log());
            }
            if let Ok(v) = self.request("GET", &url, None)
                && v["ready"] == json!(true)
            {
                return;
            }
            if Instant::now() > deadline {
                panic!("chromedriver not ready after 20 s\n{}", self.driver_log());
            }
            std::thread::sleep(POLL);
        }
    }

    fn driver_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// One HTTP round trip: the reply's `value`, or on an error status (or transport failure)
    /// the error object.
    fn request(&self, method: &str, url: &str, body: Option<Value>) -> Result<Value, Value> {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("Content-Type", "application/json; charset=utf-8");
        let resp = match body {
            Some(b) => self
                .agent
                .run(req.body(b.to_string().into_bytes()).expect("request")),
            None => self.agent.run(req.body(()).expect("request")),
        };
        let mut resp = resp.map_err(|e| json!({"error": "transport", "message": e.to_string()}))?;
        let ok = resp.status().is_success();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_vec()
            .map_err(|e| json!({"error": "transport", "message": e.to_string()}))?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            json!({"error": "bad json", "message": e.to_string(),
                   "body": String::from_utf8_lossy(&bytes)})
        })?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if ok { Ok(value) } else { Err(value) }
    }

    /// A session command (`path` is relative to `/session/<id>`), errors as Err.
    fn try_cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        // W3C wants a JSON body on every POST, even an empty one.
        let body = body.or_else(|| (method == "POST").then(|| json!({})));
        self.request(method, &url, body)
    }

    /// A session command that must succeed.
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_cmd(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path} failed: {}", error_json(e)))
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn current_url(&self) -> String {
        str_of(self.cmd("GET", "/url", None))
    }

    pub fn source(&self) -> String {
        str_of(self.cmd("GET", "/source", None))
    }

    pub fn title(&self) -> String {
        str_of(self.cmd("GET", "/title", None))
    }

    /// The first element matching `css`, waiting up to 5 s for it to appear.
    pub fn find(&self, css: &str) -> Element<'_> {
        self.find_in("", css).unwrap_or_else(|| {
            panic!(
                "no element `{css}` after {FIND_TIMEOUT:?}\n{}",
                self.where_()
            )
        })
    }

    /// The first element matching `css` right now.
    pub fn try_find(&self, css: &str) -> Option<Element<'_>> {
        self.lookup("", css)
    }

    /// All elements matching `css` right now (no waiting).
    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let v = self.cmd("POST", "/elements", Some(by_css(css)));
        v.as_array()
            .unwrap_or_else(|| panic!("find_all `{css}`: not an array: {v}"))
            .iter()
            .map(|e| self.element(e))
            .collect()
    }

    /// Polls `lookup` under `scope` (`""` or `/element/<id>`) for up to FIND_TIMEOUT.
    fn find_in(&self, scope: &str, css: &str) -> Option<Element<'_>> {
        let deadline = Instant::now() + FIND_TIMEOUT;
        loop {
            if let Some(e) = self.lookup(scope, css) {
                return Some(e);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// One element lookup: None for "no such element", a panic for any other error.
    fn lookup(&self, scope: &str, css: &str) -> Option<Element<'_>> {
        match self.try_cmd("POST", &format!("{scope}/element"), Some(by_css(css))) {
            Ok(v) => Some(self.element(&v)),
            Err(e) if e["error"] == "no such element" => None,
            Err(e) => panic!("find `{css}` failed: {}", error_json(e)),
        }
    }

    fn element(&self, v: &Value) -> Element<'_> {
        let id = v[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("not an element reference: {v}"));
        Element {
            browser: self,
            id: id.to_string(),
        }
    }

    /// The current URL and the start of the page source, for failure messages.
    fn where_(&self) -> String {
        let src = self.source();
        let cut: String = src.chars().take(2000).collect();
        format!("at {}\n--- page source (start)\n{cut}", self.current_url())
    }

    /// Saves a PNG of the viewport at `path`, creating parent directories.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let b64 = str_of(self.cmd("GET", "/screenshot", None));
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("screenshot base64");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("screenshot dir");
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Runs `script` as a function body with `args` (elements via `Element::to_json`).
    pub fn execute(&self, script: &str, args: &[Value]) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// All cookies visible to the current page, as WebDriver cookie objects.
    pub fn cookies(&self) -> Vec<Value> {
        match self.cmd("GET", "/cookie", None) {
            Value::Array(a) => a,
            v => panic!("cookies: not an array: {v}"),
        }
    }

    /// The value of cookie `name` on the current page.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .into_iter()
            .find(|c| c["name"] == name)
            .map(|c| c["value"].as_str().unwrap_or_default().to_string())
    }

    /// Sets a cookie for the current page's domain.
    pub fn add_cookie(&self, name: &str, value: &str) {
        self.cmd(
            "POST",
            "/cookie",
            Some(json!({"cookie": {"name": name, "value": value}})),
        );
    }

    pub fn delete_all_cookies(&self) {
        self.cmd("DELETE", "/cookie", None);
    }

    pub fn set_window_size(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    /// Polls `cond` until true; after `timeout` panics naming `what` and where the page is.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Browser) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !cond(self) {
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n{}",
                    self.where_()
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session makes chromedriver close the browser it started.
        if !self.session.is_empty() {
            let _ = self.try_cmd("DELETE", "", None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Chromium outlives a killed chromedriver; if ours is still there (the session delete
        // failed), kill it by PID, checked against our unique profile path against PID reuse.
        // Its helper processes exit with it.
        if let Some(pid) = self.browser_pid {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let profile = self.dir.path().display().to_string();
            if String::from_utf8_lossy(&cmdline).contains(&profile) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        // The TempDir (profile, log) goes with the struct.
    }
}

/// One element of the page, valid until the page changes under it.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl<'a> Element<'a> {
    fn cmd(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        self.browser
            .cmd(method, &format!("/element/{}{what}", self.id), body)
    }

    /// This element as a script argument for `Browser::execute`.
    pub fn to_json(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    pub fn click(&self) {
        self.cmd("POST", "/click", None);
    }

    /// Types `text` (WebDriver key codes such as U+E007, Enter, included).
    pub fn send_keys(&self, text: &str) {
        self.cmd("POST", "/value", Some(json!({ "text": text })));
    }

    pub fn clear(&self) {
        self.cmd("POST", "/clear", None);
    }

    /// The rendered text, as a user sees it.
    pub fn text(&self) -> String {
        str_of(self.cmd("GET", "/text", None))
    }

    /// The attribute `name` (WebDriver's "get element attribute"), None if absent.
    pub fn attr(&self, name: &str) -> Option<String> {
        opt_str(self.cmd("GET", &format!("/attribute/{name}"), None))
    }

    /// The live `value` property (what the user typed, not the HTML attribute).
    pub fn value(&self) -> String {
        opt_str(self.cmd("GET", "/property/value", None)).unwrap_or_default()
    }

    /// The first descendant matching `css`, waiting up to 5 s.
    pub fn find(&self, css: &str) -> Element<'a> {
        self.browser
            .find_in(&format!("/element/{}", self.id), css)
            .unwrap_or_else(|| {
                panic!(
                    "no element `{css}` inside an element after {FIND_TIMEOUT:?}\n{}",
                    self.browser.where_()
                )
            })
    }

    pub fn is_displayed(&self) -> bool {
        self.cmd("GET", "/displayed", None) == json!(true)
    }

    /// Chooses the option with `value` in this `<select>` by clicking it, as a user would.
    pub fn select_by_value(&self, value: &str) {
        let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
        self.find(&format!("option[value=\"{quoted}\"]")).click();
    }
}

fn by_css(css: &str) -> Value {
    json!({ "using": "css selector", "value": css })
}

fn str_of(v: Value) -> String {
    match v {
        Value::String(s) => s,
        v => panic!("expected a string from WebDriver, got {v}"),
    }
}

fn opt_str(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        v => Some(v.to_string()),
    }
}
