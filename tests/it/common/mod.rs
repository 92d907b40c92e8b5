//! Helpers shared by the integration tests.

pub mod browser;
pub mod console;
pub mod report;
pub mod sshd;
pub mod verify;

use std::path::Path;

/// Whether an executable called `name` is on `PATH`.
fn on_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        let candidate = dir.join(name);
        Path::new(&candidate)
            .metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Returns false (and prints why) when the tool is missing locally; panics when the CI env var is set.
pub fn require_tool(name: &str) -> bool {
    if on_path(name) {
        return true;
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("required tool `{name}` is not installed (CI is set, so this is an error)");
    }
    eprintln!("skipping: tool `{name}` is not installed");
    false
}

// ---------------------------------------------------------------------------------------------
// A real umcd on 127.0.0.1:<random port>, the real umc-admin, and a sandboxed real apt.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

pub const UMCD: &str = env!("CARGO_BIN_EXE_umcd");
pub const UMC_ADMIN: &str = env!("CARGO_BIN_EXE_umc-admin");

pub struct Server {
    child: Option<Child>,
    pub url: String,
    /// The certificate pin umcd printed when it serves https.
    pub pin: Option<String>,
    pub data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// umcd on a fresh data dir.
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let mut s = Server::start_in(&data);
        s._tmp = Some(tmp);
        s
    }

    /// umcd on `data` (created if missing), listening on a random loopback port.
    pub fn start_in(data: &Path) -> Server {
        Server::start_in_with(data, &[])
    }

    /// umcd on a fresh data dir with a config file holding `toml`.
    pub fn start_with_config(toml: &str) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let conf = tmp.path().join("umcd.toml");
        std::fs::write(&conf, toml).expect("write config");
        let conf = conf.display().to_string();
        let mut s = Server::start_in_with(&data, &["--config", &conf]);
        s._tmp = Some(tmp);
        s
    }

    /// umcd on a fresh data dir with a config file holding `toml`, started through `wrapper`
    /// (e.g. `sh -c 'ulimit -n 64; exec "$0" "$@"'`), which gets umcd's path and arguments.
    pub fn start_wrapped(toml: &str, wrapper: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let conf = tmp.path().join("umcd.toml");
        std::fs::write(&conf, toml).expect("write config");
        let conf = conf.display().to_string();
        let mut s = Server::spawn(&data, &["--config", &conf], wrapper);
        s._tmp = Some(tmp);
        s
    }

    /// umcd on `data` with extra arguments.
    pub fn start_in_with(data: &Path, extra: &[&str]) -> Server {
        Server::spawn(data, extra, &[])
    }

    fn spawn(data: &Path, extra: &[&str], wrapper: &[&str]) -> Server {
        std::fs::create_dir_all(data).expect("data dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join("umcd.log"))
            .expect("log");
        // A random port unless `extra` names one (a restored server takes over the old URL).
        let listen = if extra.contains(&"--listen") {
            &[][..]
        } else {
            &["--listen", "127.0.0.1:0"][..]
        };
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(UMCD);
                c
            }
            None => Command::new(UMCD),
        };
        let mut child = cmd
            .args(listen)
            .arg("--data-dir")
            .arg(data)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn umcd");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        let mut stdout = BufReader::new(stdout);
        stdout.read_line(&mut line).expect("read");
        let url = line
            .trim()
            .strip_prefix("umcd listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "umcd did not start: {line:?}\n{}",
                    std::fs::read_to_string(data.join("umcd.log")).unwrap_or_default()
                )
            })
            .to_string();
        let pin = url.starts_with("https://").then(|| {
            let mut l = String::new();
            stdout.read_line(&mut l).expect("read");
            l.trim()
                .strip_prefix("umcd certificate pin ")
                .unwrap_or_else(|| panic!("no pin after the URL: {l:?}"))
                .to_string()
        });
        Server {
            child: Some(child),
            url,
            pin,
            data: data.to_path_buf(),
            _tmp: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data.join("admin.token"))
            .expect("admin.token")
            .trim()
            .to_string()
    }

    /// umc-admin pointed at this server with `token`; over https it trusts the server's own
    /// CA (`UMC_CA`), whatever the environment of the test run says.
    pub fn admin_command(&self, token: &str) -> Command {
        let mut c = Command::new(UMC_ADMIN);
        c.env("UMC_URL", &self.url).env("UMC_TOKEN", token);
        if self.url.starts_with("https://") {
            c.env("UMC_CA", self.data.join("tls/ca.pem"))
                .env_remove("UMC_TLS_PIN");
        }
        c
    }

    /// Runs umc-admin against this server.
    pub fn admin(&self, args: &[&str]) -> Output {
        self.admin_command(&self.token())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run umc-admin")
    }

    /// Runs umc-admin with API token `token` and `stdin` piped in (how passwords reach it:
    /// never in argv).
    pub fn admin_as(&self, token: &str, args: &[&str], stdin: &str) -> Output {
        let mut cmd = self.admin_command(token);
        cmd.args(args);
        output_with_stdin(&mut cmd, stdin.as_bytes())
    }

    /// Runs umc-admin and returns stdout, panicking with its output on failure.
    pub fn admin_ok(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        assert!(
            out.status.success(),
            "umc-admin {args:?} failed: {}",
            show(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn node_token(&self, host: &str) -> String {
        self.admin_ok(&["node", "token", host]).trim().to_string()
    }

    /// Stops with SIGKILL (no chance to flush anything) and waits.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops with SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        c.wait().expect("wait umcd")
    }

    /// A plain HTTP GET with optional Basic credentials and extra headers.
    pub fn get(&self, path: &str, basic: Option<(&str, &str)>, headers: &[(&str, &str)]) -> Resp {
        http("GET", &format!("{}{path}", self.url), basic, headers, None)
    }

    /// A request to `path` (e.g. `/api/v1/edit`) with `token`, if any, as its bearer token and
    /// `body`, if any, as JSON.
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&[u8]>) -> Resp {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(b) = &bearer {
            headers.push(("Authorization", b));
        }
        http(method, &format!("{}{path}", self.url), None, &headers, body)
    }

    /// [`Server::call`] with the admin token.
    pub fn api(&self, method: &str, path: &str, body: Option<&[u8]>) -> Resp {
        self.call(method, path, Some(&self.token()), body)
    }

    /// The binary keyring umcd serves (what a node's apt trusts).
    pub fn keyring(&self) -> Vec<u8> {
        let r = self.get("/umc-archive-keyring.gpg", None, &[]);
        assert_eq!(r.status, 200, "keyring: {}", r.text());
        r.body
    }

    /// umcd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.join("umcd.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn http(
    method: &str,
    url: &str,
    basic: Option<(&str, &str)>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    use base64::Engine;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        // Tests look at redirects themselves (the console's login answers 303).
        .max_redirects(0)
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some((u, p)) = basic {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req = req.header("Authorization", format!("Basic {b}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = match body {
        Some(b) => agent.run(req.body(b.to_vec()).expect("request")),
        None => agent.run(req.body(()).expect("request")),
    };
    let mut resp = resp.expect("http request");
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

/// One GET with exactly these bytes as its target (no client normalization) and `header`
/// (e.g. `Cookie: …`): the status (0 when umcd closed the connection without an answer) and the
/// whole answer.
pub fn raw_get(s: &Server, target: &str, header: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = s.url.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    write!(
        c,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\n{header}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// `umcd restore <file> --data-dir <data>`.
pub fn restore(file: &Path, data: &Path) -> Output {
    Command::new(UMCD)
        .arg("restore")
        .arg(file)
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::null())
        .output()
        .expect("run umcd restore")
}

/// Writes `text` to `dir/name`; the path, as umc-admin takes it.
pub fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p.display().to_string()
}

/// Whether this test runs as root (mounts, chroots).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Runs `cmd` with `input` on its stdin; its output.
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Stock apt-get/apt-cache with a private configuration and state: nothing of the machine's
/// own apt setup is read or touched.
pub struct Apt {
    pub dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Apt {
    /// A sandbox whose only source is `host`'s umc repository at `url`, trusting `keyring`.
    /// The sources and auth files are made from the repo's `apt-conf/*.in`, as nodes get them.
    pub fn new(url: &str, host: &str, token: &str, keyring: &[u8]) -> Apt {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for sub in [
            "etc/apt/sources.list.d",
            "etc/apt/auth.conf.d",
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/trusted.gpg.d",
            "etc/apt/keyrings",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg",
            "var/log/apt",
        ] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        std::fs::write(d.join("var/lib/dpkg/status"), "").expect("status");
        let keyring_path = d.join("etc/apt/keyrings/umc.gpg");
        std::fs::write(&keyring_path, keyring).expect("keyring");
        let root = env!("CARGO_MANIFEST_DIR");
        let sources = std::fs::read_to_string(format!("{root}/apt-conf/umc.sources.in"))
            .expect("apt-conf/umc.sources.in")
            .replace("@URL@", url)
            .replace("@HOST@", host)
            .replace("@KEYRING@", &keyring_path.display().to_string());
        std::fs::write(d.join("etc/apt/sources.list.d/umc.sources"), sources).expect("sources");
        let auth = std::fs::read_to_string(format!("{root}/apt-conf/umc-auth.conf.in"))
            .expect("apt-conf/umc-auth.conf.in")
            .replace("@URL@", url)
            .replace("@HOST@", host)
            .replace("@TOKEN@", token);
        let auth_path = d.join("etc/apt/auth.conf.d/umc.conf");
        std::fs::write(&auth_path, auth).expect("auth");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&auth_path, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        let p = |s: &str| d.join(s).display().to_string();
        let conf = d.join("apt.conf");
        std::fs::write(
            &conf,
            format!(
                r#"Dir::State "{state}";
Dir::State::status "{status}";
Dir::Cache "{cache}";
Dir::Etc "{etc}";
Dir::Etc::SourceList "{etc}/sources.list";
Dir::Etc::SourceParts "{etc}/sources.list.d";
Dir::Etc::Parts "{etc}/apt.conf.d";
Dir::Etc::PreferencesParts "{etc}/preferences.d";
Dir::Etc::TrustedParts "{etc}/trusted.gpg.d";
Dir::Etc::netrc "{etc}/auth.conf";
Dir::Etc::netrcparts "{etc}/auth.conf.d";
Dir::Log "{log}";
APT::Architecture "amd64";
APT::Architectures {{ "amd64"; }};
APT::Sandbox::User "root";
Debug::NoLocking "true";
Acquire::Languages "none";
Acquire::Retries "0";
APT::Update::Error-Mode "any";
"#,
                state = p("var/lib/apt"),
                status = p("var/lib/dpkg/status"),
                cache = p("var/cache/apt"),
                etc = p("etc/apt"),
                log = p("var/log/apt"),
            ),
        )
        .expect("apt.conf");
        Apt { dir, conf }
    }

    fn cmd(&self, tool: &str, args: &[&str]) -> Output {
        Command::new(tool)
            .args(args)
            .env("APT_CONFIG", &self.conf)
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"))
    }

    pub fn get(&self, args: &[&str]) -> Output {
        self.cmd("apt-get", args)
    }

    pub fn cache(&self, args: &[&str]) -> Output {
        self.cmd("apt-cache", args)
    }

    /// `apt-get update` that must succeed cleanly: exit 0 and no W:/E: line.
    pub fn update_ok(&self) {
        let out = self.get(&["update"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success()
                && !err
                    .lines()
                    .any(|l| l.starts_with("W:") || l.starts_with("E:")),
            "apt-get update failed: {}",
            show(&out)
        );
    }

    /// A field of the candidate version as apt-cache sees it, or None if apt knows no such package.
    pub fn field(&self, package: &str, field: &str) -> Option<String> {
        let out = self.cache(&["show", "--no-all-versions", package]);
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let prefix = format!("{field}: ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(str::to_string)
    }

    /// Downloads `packages` with `apt-get download` into the sandbox; returns the file paths.
    pub fn download(&self, packages: &[&str]) -> Vec<PathBuf> {
        let mut args = vec!["download"];
        args.extend_from_slice(packages);
        let out = self.get(&args);
        assert!(out.status.success(), "apt-get download: {}", show(&out));
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("readdir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "deb"))
            .collect();
        files.sort();
        files
    }
}

/// `dpkg --compare-versions a gt b`, by dpkg itself.
pub fn version_gt(a: &str, b: &str) -> bool {
    Command::new("dpkg")
        .args(["--compare-versions", a, "gt", b])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Returns false (and prints why) when `what` is missing locally; panics when the CI env var
/// is set. For inputs other than tools, such as apt's downloaded lists.
pub fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("required {what} is missing (CI is set, so this is an error)");
    }
    eprintln!("skipping: {what} is missing");
    false
}

/// A tiny HTTP/1.1 file server on 127.0.0.1:<random port> serving a path → bytes map that
/// the test can change while it runs (tampering). Unknown paths get 404.
pub struct FileServer {
    pub url: String,
    pub files: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>,
}

impl FileServer {
    pub fn start() -> FileServer {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let files: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>> =
            Default::default();
        let shared = files.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
                let body = shared.lock().expect("lock").get(&path).cloned();
                let (status, body) = match body {
                    Some(b) => ("200 OK", b),
                    None => ("404 Not Found", b"not found\n".to_vec()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&body);
            }
        });
        FileServer { url, files }
    }

    pub fn put(&self, path: &str, body: Vec<u8>) {
        self.files
            .lock()
            .expect("lock")
            .insert(path.to_string(), body);
    }
}
