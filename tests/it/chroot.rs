//! Install for real: dpkg and apt in a debootstrap'd Debian bookworm chroot take umc packages
//! from a running umcd (and their real dependencies from the Debian mirror this machine's own
//! apt uses), then follow edits through the node cycle in contrib/umc-cycle. Over https, a
//! bookworm and a trixie (apt 3) node enroll with the pinned one-liner and install.
//!
//! Needs root, debootstrap and network access to the mirror. The chroots are built once per
//! suite by tests/support/make-chroot.sh and cached; each test works on an overlay (or a copy)
//! of one.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::sshd::{Sshd, free_port, keygen};
use common::verify::keyring_fingerprints;
use common::{Server, UMC_ADMIN, is_root, require_tool, show};
use umc::report::State;

const HOST: &str = "grumpy.example.com";
/// Debian 12, apt 2.6 (gpgv, GnuTLS).
const BOOKWORM: &str = "bookworm";
/// Debian 13, apt 3.0 (sqv, OpenSSL).
const TRIXIE: &str = "trixie";

fn default_suite() -> String {
    std::env::var("UMC_CHROOT_SUITE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| BOOKWORM.to_string())
}

/// A throwaway chroot on top of the cached one, with /proc mounted. Unmounted on drop.
struct Chroot {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    mounts: Vec<PathBuf>,
}

impl Chroot {
    /// A node of the suite the whole file runs on: bookworm (apt 2.6), or `UMC_CHROOT_SUITE`
    /// (`UMC_CHROOT_SUITE=trixie cargo test --test it chroot::` runs every test on apt 3).
    fn new() -> Chroot {
        Chroot::of(&default_suite())
    }

    /// A node of Debian `suite`.
    fn of(suite: &str) -> Chroot {
        Chroot::build(suite, Some(&std::env::temp_dir()))
    }

    /// The overlay under `tmp_base`, or with `None` in a `runs/` folder beside the cached
    /// chroot: sshd's ChrootDirectory wants every path component owned by root and writable by
    /// nobody else, which /tmp (1777) is not, and CI may clone the repo anywhere (even /tmp).
    fn new_in(tmp_base: Option<&Path>) -> Chroot {
        Chroot::build(&default_suite(), tmp_base)
    }

    fn build(suite: &str, tmp_base: Option<&Path>) -> Chroot {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/make-chroot.sh");
        let out = Command::new("sh")
            .arg(script)
            .arg(suite)
            .output()
            .expect("make-chroot.sh");
        assert!(out.status.success(), "make-chroot.sh: {}", show(&out));
        let base = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
        let runs = match tmp_base {
            Some(p) => p.to_path_buf(),
            None => {
                let runs = base.parent().expect("cache dir").join("runs");
                std::fs::create_dir_all(&runs).expect("runs dir");
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&runs, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod runs");
                runs
            }
        };
        let tmp = tempfile::tempdir_in(&runs).expect("tempdir");
        let (upper, work, root) = (
            tmp.path().join("upper"),
            tmp.path().join("work"),
            tmp.path().join("root"),
        );
        for d in [&upper, &work, &root] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        let mut mounts = Vec::new();
        let overlay = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!(
                "lowerdir={},upperdir={},workdir={}",
                base.display(),
                upper.display(),
                work.display()
            ))
            .arg(&root)
            .status()
            .is_ok_and(|s| s.success());
        if overlay {
            mounts.push(root.clone());
        } else {
            let st = Command::new("cp")
                .args(["-a", "--"])
                .arg(format!("{}/.", base.display()))
                .arg(&root)
                .status()
                .expect("cp");
            assert!(st.success(), "copying the chroot failed");
        }
        let proc_ = root.join("proc");
        let st = Command::new("mount")
            .args(["-t", "proc", "proc"])
            .arg(&proc_)
            .status()
            .expect("mount proc");
        assert!(st.success(), "mount proc");
        mounts.push(proc_);
        let _ = std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf"));
        Chroot {
            _tmp: tmp,
            root,
            mounts,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    fn write(&self, p: &str, contents: &[u8], mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path(p);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("chroot")
            .arg(&self.root)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .expect("chroot")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// dpkg's own status word for a package ("installed", "config-files", or "not-installed").
    fn status(&self, package: &str) -> String {
        let out = self.run(&["dpkg-query", "-W", "-f=${db:Status-Status}", package]);
        if !out.status.success() {
            return "not-installed".into();
        }
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// umc-cycle as umc-node installed it (contrib/umc-cycle): the node's real cycle.
    fn cycle(&self) -> String {
        self.ok(&["/usr/sbin/umc-cycle"])
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        for m in self.mounts.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

fn tools() -> bool {
    if !is_root() {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("the chroot install test needs root");
        }
        eprintln!("skipping: the chroot install test needs root");
        return false;
    }
    ["debootstrap", "chroot", "mount", "umount"]
        .iter()
        .all(|t| require_tool(t))
}

/// The one line `umc-admin node enroll` prints, as the admin would paste it on the node.
fn enroll_line(s: &Server) -> String {
    s.admin_ok(&["node", "enroll", HOST, "--url", &s.url])
        .trim()
        .to_string()
}

/// Enrolls the chroot from nothing with the printed one-liner (curl inside the chroot,
/// talking to umcd on 127.0.0.1); the bootstrap script runs the first cycle. Returns its output.
fn enroll(s: &Server, c: &Chroot) -> String {
    c.ok(&["sh", "-c", &enroll_line(s)])
}

#[test]
fn install_remove_and_unassign_in_a_real_chroot() {
    if !tools() {
        return;
    }
    let s = Server::start();
    s.admin_ok(&["node", "add", HOST]);
    s.admin_ok(&["task", "add", "web", "--description", "Web frontends"]);
    s.admin_ok(&["task", "add", "base"]);
    s.admin_ok(&["task", "depend", "web", "nginx-light"]);
    s.admin_ok(&["task", "depend", "base", "less", "mawk | gawk"]);
    s.admin_ok(&["task", "include", "web", "base"]);
    s.admin_ok(&["assign", HOST, "web"]);

    let c = Chroot::new();
    assert_eq!(c.status("nginx-light"), "not-installed");

    // Enrollment runs the first cycle: the host package pulls in its tasks and their real
    // dependencies.
    enroll(&s, &c);
    for p in [
        &format!("umc-{HOST}") as &str,
        "umc-node",
        "umc-task-web",
        "umc-task-base",
        "nginx-light",
        "less",
    ] {
        assert_eq!(c.status(p), "installed", "{p}");
    }

    // task remove: 'less' leaves base's dependencies and is removed from the node.
    s.admin_ok(&["task", "undepend", "base", "less"]);
    s.admin_ok(&["task", "remove", "base", "less"]);
    c.cycle();
    assert_eq!(
        c.status("less"),
        "not-installed",
        "the removed package is gone"
    );
    assert_eq!(c.status("nginx-light"), "installed");
    let v = c.ok(&["dpkg-query", "-W", "-f=${Version}", "umc-task-base"]);
    let want = s.admin_ok(&["task", "show", "base", "--json"]);
    let want: umc::api::TaskInfo = serde_json::from_str(&want).expect("json");
    assert_eq!(v, want.version, "the node runs the newest umc-task-base");

    // unassign + autoremove --purge: the task packages (and what only they needed) are gone.
    s.admin_ok(&["unassign", HOST, "web"]);
    c.cycle();
    assert_eq!(c.status(&format!("umc-{HOST}")), "installed");
    for p in ["umc-task-web", "umc-task-base", "nginx-light"] {
        assert_eq!(c.status(p), "not-installed", "{p} should be purged");
    }
}

/// `umc-admin upgrade` over real SSH: sshd jails the session in the chroot node
/// (`ChrootDirectory`), so the cycle runs there, and the newly assigned task's package is
/// installed.
#[test]
fn upgrade_over_ssh_installs_a_newly_assigned_package() {
    if !tools() || !["sshd", "ssh-keygen"].iter().all(|t| require_tool(t)) {
        return;
    }
    let s = Server::start();
    s.admin_ok(&["node", "add", HOST]);
    s.admin_ok(&["task", "add", "tools"]);
    s.admin_ok(&["task", "depend", "tools", "less"]);

    let c = Chroot::new_in(None);
    let keys = tempfile::tempdir().expect("tempdir");
    let key = keys.path().join("id_ed25519");
    keygen(&key, "ed25519");
    let authorized = keys.path().join("authorized_keys");
    std::fs::copy(key.with_extension("pub"), &authorized).expect("authorized_keys");
    let port = free_port();
    let _sshd = Sshd::start(
        &keys.path().join("sshd"),
        port,
        &authorized,
        &format!("ChrootDirectory {}\n", c.root.display()),
    );
    s.admin_ok(&[
        "node",
        "set",
        HOST,
        "--ssh",
        &format!("root@127.0.0.1:{port}"),
    ]);
    let admin = |args: &[&str]| {
        Command::new(UMC_ADMIN)
            .args(args)
            .args(["--accept-new", "--timeout", "600", "-i"])
            .arg(&key)
            .env("UMC_URL", &s.url)
            .env("UMC_TOKEN", s.token())
            .env("HOME", keys.path())
            .env("UMC_KNOWN_HOSTS", keys.path().join("known_hosts"))
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .output()
            .expect("umc-admin")
    };

    // Enrollment over SSH: the same one-liner, run on the node by umc-admin.
    let out = admin(&["node", "enroll", HOST, "--url", &s.url, "--ssh"]);
    assert!(out.status.success(), "node enroll --ssh: {}", show(&out));
    assert_eq!(c.status(&format!("umc-{HOST}")), "installed");
    assert_eq!(c.status("umc-node"), "installed");
    assert_eq!(c.status("less"), "not-installed");
    let audit = s.admin_ok(&["log", "--audit"]);
    assert!(
        audit.contains(&format!("umc-admin node enroll {HOST} --ssh")),
        "{audit}"
    );
    assert!(
        !audit.contains(&s.node_token(HOST)),
        "no credentials in the audit: {audit}"
    );

    s.admin_ok(&["assign", HOST, "tools"]);

    let out = admin(&["upgrade", HOST]);
    assert!(out.status.success(), "umc-admin upgrade: {}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{HOST} | ")),
        "the cycle's output streams: {text}"
    );
    assert_eq!(c.status("less"), "installed", "{}", show(&out));
    let v = c.ok(&["dpkg-query", "-W", "-f=${Version}", "umc-task-tools"]);
    let want: umc::api::TaskInfo =
        serde_json::from_str(&s.admin_ok(&["task", "show", "tools", "--json"])).expect("json");
    assert_eq!(v, want.version);
}

const SITE_V1: &str = "# {{ host.fqdn }}: managed by umc\nserver {\n    listen {{ vars.port }};\n    server_name {{ host.name }}.{{ host.domain }};\n}\n";
const SITE_V2: &str = "# {{ host.fqdn }}: managed by umc (v2)\nserver {\n    listen {{ vars.port }};\n    server_name {{ host.fqdn }};\n    root /srv/{{ host.name }};\n}\n";
const NGINX_CONF: &str = "# nginx.conf for {{ host.name }}, from umc\nuser www-data;\nworker_processes {{ vars.workers | default(value=\"auto\") }};\npid /run/nginx.pid;\nevents { worker_connections 768; }\nhttp { include /etc/nginx/conf.d/*.conf; }\n";

fn file_add(s: &Server, path: &str, template: &str, action: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = dir.path().join("template");
    std::fs::write(&t, template).expect("template");
    let t = t.to_str().expect("utf8").to_string();
    let mut args = vec!["task", "file", "add", "web", path, "--template", &t];
    args.extend_from_slice(action);
    s.admin_ok(&args);
}

fn read(c: &Chroot, p: &str) -> String {
    std::fs::read_to_string(c.path(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Build items 3–6 of the templates issue on a real node: enrollment by the printed one-liner,
/// rendered conffiles, a diversion of nginx-common's nginx.conf and its undoing, the skipped
/// reload without systemd, keep-local and server-wins, and unassignment.
#[test]
fn enroll_and_manage_files_in_a_real_chroot() {
    if !tools() {
        return;
    }
    let s = Server::start();
    s.admin_ok(&["var", "set", "port=8081"]);
    s.admin_ok(&["node", "add", HOST, "--var", "port=8082"]);
    s.admin_ok(&["task", "add", "web"]);
    s.admin_ok(&["task", "depend", "web", "nginx-light"]);
    file_add(
        &s,
        "/etc/nginx/conf.d/site.conf",
        SITE_V1,
        &["--reload", "nginx"],
    );
    file_add(
        &s,
        "/etc/nginx/nginx.conf",
        NGINX_CONF,
        &["--restart", "nginx"],
    );
    s.admin_ok(&["assign", HOST, "web"]);
    let c = Chroot::new();

    // Enrollment fails clearly: wrong credentials, an unreachable server, not root.
    let line = enroll_line(&s);
    let token = s.node_token(HOST);
    let bad = c.run(&["sh", "-c", &line.replace(&token, "0000")]);
    assert!(!bad.status.success(), "wrong token: {}", show(&bad));
    assert!(
        show(&bad).contains("401"),
        "curl names the refusal: {}",
        show(&bad)
    );
    assert!(show(&bad).contains("enrolling"), "{}", show(&bad));
    let port = s.url.rsplit(':').next().expect("port").to_string();
    let closed = common::sshd::free_port().to_string();
    let down = c.run(&["sh", "-c", &line.replace(&port, &closed)]);
    assert!(!down.status.success(), "server down: {}", show(&down));
    assert!(show(&down).contains("enrolling"), "{}", show(&down));
    let user = Command::new("chroot")
        .args(["--userspec=nobody:nogroup"])
        .arg(&c.root)
        .args(["sh", "-c", &line])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/tmp")
        .stdin(Stdio::null())
        .output()
        .expect("chroot as nobody");
    assert!(!user.status.success());
    assert!(show(&user).contains("must run as root"), "{}", show(&user));
    assert_eq!(
        c.status("umc-node"),
        "not-installed",
        "nothing was installed"
    );

    // From nothing: the one-liner installs the apt configuration and runs the first cycle.
    let out = enroll(&s, &c);
    eprintln!("enrollment:\n{out}");
    for p in [
        &format!("umc-{HOST}") as &str,
        "umc-node",
        "umc-task-web",
        "nginx-light",
    ] {
        assert_eq!(c.status(p), "installed", "{p}: {out}");
    }
    let auth_mode = std::fs::metadata(c.path("/etc/apt/auth.conf.d/umc.conf"))
        .expect("auth.conf")
        .permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(auth_mode.mode() & 0o777, 0o600);
    assert!(
        c.ok(&["dpkg", "-S", "/usr/sbin/umc-cycle"])
            .starts_with("umc-node:")
    );
    assert!(c.path("/lib/systemd/system/umc-cycle.timer").exists());
    // Again: idempotent.
    enroll(&s, &c);

    let site = read(&c, "/etc/nginx/conf.d/site.conf");
    assert!(
        site.starts_with(&format!("# {HOST}: managed by umc\n")),
        "{site}"
    );
    assert!(
        site.contains("listen 8082;"),
        "the node's variable wins: {site}"
    );
    assert!(site.contains("server_name grumpy.example.com;"), "{site}");
    // nginx.conf belongs to nginx-common: displaced, the original kept beside it.
    let nginx = read(&c, "/etc/nginx/nginx.conf");
    assert!(
        nginx.starts_with("# nginx.conf for grumpy, from umc"),
        "{nginx}"
    );
    let diversions = c.ok(&["dpkg-divert", "--list"]);
    assert!(
        diversions.contains(
            "diversion of /etc/nginx/nginx.conf to /etc/nginx/nginx.conf.umc-orig by umc-task-web"
        ),
        "{diversions}"
    );
    let original = read(&c, "/etc/nginx/nginx.conf.umc-orig");
    assert!(original.contains("worker_processes"), "{original}");
    assert!(
        out.contains("systemd is not running"),
        "the reload is skipped: {out}"
    );

    // A template edit reaches the node; the reload is skipped without error.
    file_add(
        &s,
        "/etc/nginx/conf.d/site.conf",
        SITE_V2,
        &["--reload", "nginx"],
    );
    let out = c.cycle();
    let site = read(&c, "/etc/nginx/conf.d/site.conf");
    assert!(site.contains("root /srv/grumpy;"), "{site}");
    assert!(
        out.contains("files of nginx changed; systemd is not running"),
        "{out}"
    );
    assert!(
        !out.contains("nginx.conf"),
        "nginx.conf did not change: {out}"
    );

    // Dropping nginx.conf from the task: the file and the diversion go, the original is back.
    s.admin_ok(&["task", "file", "rm", "web", "/etc/nginx/nginx.conf"]);
    c.cycle();
    assert_eq!(read(&c, "/etc/nginx/nginx.conf"), original);
    assert!(!c.path("/etc/nginx/nginx.conf.umc-orig").exists());
    let diversions = c.ok(&["dpkg-divert", "--list"]);
    assert!(!diversions.contains("umc-task-web"), "{diversions}");
    c.ok(&["dpkg", "--verify", "nginx-common"]);

    // keep-local: a local edit survives an update; umc's version waits as .dpkg-dist.
    let local = "# edited on the node\n";
    c.write("/etc/nginx/conf.d/site.conf", local.as_bytes(), 0o644);
    s.admin_ok(&["var", "set", "port=9000"]);
    s.admin_ok(&["node", "set", HOST, "--unset-var", "port"]);
    c.cycle();
    assert_eq!(read(&c, "/etc/nginx/conf.d/site.conf"), local);
    let dist = read(&c, "/etc/nginx/conf.d/site.conf.dpkg-dist");
    assert!(dist.contains("listen 9000;"), "{dist}");

    // server-wins for this node: umc's version replaces the edit (kept as .dpkg-old).
    s.admin_ok(&["node", "set", HOST, "--conffiles", "server-wins"]);
    let out = c.cycle();
    let site = read(&c, "/etc/nginx/conf.d/site.conf");
    assert!(site.contains("listen 9000;"), "{site}\n{out}");
    assert_eq!(read(&c, "/etc/nginx/conf.d/site.conf.dpkg-old"), local);
    assert!(!c.path("/etc/nginx/conf.d/site.conf.dpkg-dist").exists());
    // Only umc's packages are reinstalled.
    assert!(
        out.contains("server-wins: replacing local edits in umc-task-web"),
        "{out}"
    );

    // Unassigning the task removes it, its files and what only it needed.
    s.admin_ok(&["unassign", HOST, "web"]);
    c.cycle();
    for p in ["umc-task-web", "nginx-light"] {
        assert_eq!(c.status(p), "not-installed", "{p}");
    }
    assert!(!c.path("/etc/nginx/conf.d/site.conf").exists());
    assert_eq!(c.status("umc-node"), "installed");
}

fn host_status(s: &Server) -> umc::api::HostStatus {
    let out = s.admin(&["status", "--json"]);
    let rows: Vec<umc::api::HostStatus> =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    rows.into_iter().find(|r| r.host == HOST).expect("row")
}

/// The monitoring issue on a real node: umc-cycle's reports make the host ok, pending, drift,
/// failed (with apt's own error line) and stale.
#[test]
fn node_reports_drive_status_in_a_real_chroot() {
    if !tools() {
        return;
    }
    let s = Server::start_with_config("stale_after_secs = 12\ndrift_after_secs = 2\n");
    s.admin_ok(&["node", "add", HOST]);
    s.admin_ok(&["task", "add", "tools"]);
    s.admin_ok(&["task", "depend", "tools", "less"]);
    s.admin_ok(&["assign", HOST, "tools"]);
    let c = Chroot::new();
    enroll(&s, &c);
    let st = host_status(&s);
    assert_eq!(st.state, State::Ok, "{st:?}");
    assert_eq!(st.installed.as_deref(), Some(st.published.as_str()));
    assert_eq!(st.last_result.as_deref(), Some("ok"));

    // An edit the node has not applied yet: pending, then drift.
    s.admin_ok(&["task", "depend", "tools", "no-such-package-anywhere"]);
    assert_eq!(host_status(&s).state, State::Pending);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let st = host_status(&s);
    assert_eq!(st.state, State::Drift, "{st:?}");

    // The cycle fails on the unsatisfiable dependency: failed, with apt's error line.
    let out = c.run(&["/usr/sbin/umc-cycle"]);
    assert!(!out.status.success(), "{}", show(&out));
    let st = host_status(&s);
    assert_eq!(st.state, State::Failed, "{st:?}");
    assert!(st.reason.starts_with("E: "), "{st:?}");
    assert_eq!(
        st.last_result.as_deref(),
        Some("failed: install exited 100")
    );
    let detail = s.admin(&["status", HOST]);
    assert_eq!(detail.status.code(), Some(7));
    let text = String::from_utf8_lossy(&detail.stdout);
    assert!(text.contains("no-such-package-anywhere"), "{text}");

    // Fixed in the model: the next cycle is ok again.
    s.admin_ok(&["task", "undepend", "tools", "no-such-package-anywhere"]);
    c.cycle();
    assert_eq!(host_status(&s).state, State::Ok);

    // Silence: stale once the threshold passes.
    std::thread::sleep(std::time::Duration::from_secs(13));
    let st = host_status(&s);
    assert_eq!(st.state, State::Stale, "{st:?}");
}

/// umcd with HOST on task `web`, which ships `file` ("before rotation"), and a chroot enrolled
/// as HOST that has installed it.
fn enrolled_with(file: &str) -> (Server, Chroot) {
    let s = Server::start();
    s.admin_ok(&["node", "add", HOST]);
    s.admin_ok(&["task", "add", "web"]);
    file_add(&s, file, "before rotation\n", &[]);
    s.admin_ok(&["assign", HOST, "web"]);
    let c = Chroot::new();
    enroll(&s, &c);
    (s, c)
}

/// Key rotation (issue item 5) on a real node, with apt 2.6's own verification and no manual
/// step on the node: it installs from key A; `key rotate` and a cycle make it trust A and B;
/// `key retire A` (refused until the node confirmed); an edit and a cycle still update it.
#[test]
fn key_rotation_in_a_real_chroot() {
    if !(tools() && require_tool("gpg")) {
        return;
    }
    const KEYRING: &str = "/usr/share/keyrings/umc-archive-keyring.gpg";
    const FILE: &str = "/etc/umc-rotation.conf";
    let (s, c) = enrolled_with(FILE);
    assert_eq!(c.status("umc-task-web"), "installed");
    let a = keyring_fingerprints(&c.path(KEYRING));
    assert_eq!(a.len(), 1, "{a:?}");
    let a = a[0].clone();

    let rotated: umc::api::KeyChangeResponse =
        serde_json::from_str(&s.admin_ok(&["key", "rotate", "--json"])).expect("json");
    let b = rotated.fingerprint.clone();
    // The node has not cycled since: retiring A is refused.
    let out = s.admin(&["key", "retire", &a]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(show(&out).contains(HOST), "{}", show(&out));

    // One cycle: apt verifies the doubly signed InRelease with A, installs the umc-node that
    // ships A and B, and the report confirms it.
    c.cycle();
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(keyring_fingerprints(&c.path(KEYRING)), both);
    let st: umc::api::KeyStatus =
        serde_json::from_str(&s.admin_ok(&["key", "status", "--json"])).expect("json");
    let row = st.nodes.iter().find(|n| n.host == HOST).expect("row");
    assert!(row.active && row.confirmed, "{st:?}");
    assert_eq!(
        c.ok(&["dpkg-query", "-W", "-f=${Version}", "umc-node"]),
        format!("1.{}", rotated.generation)
    );

    s.admin_ok(&["key", "retire", &a]);
    let log = s.admin_ok(&["log", "-n", "3"]);
    assert!(log.contains(&format!("signing key {a} retired")), "{log}");

    // An edit, then a cycle: InRelease is signed by B alone now, and the node still updates.
    file_add(&s, FILE, "after rotation\n", &[]);
    let published: umc::api::TaskInfo =
        serde_json::from_str(&s.admin_ok(&["task", "show", "web", "--json"])).expect("json");
    c.cycle();
    assert_eq!(read(&c, FILE), "after rotation\n");
    assert_eq!(
        c.ok(&["dpkg-query", "-W", "-f=${Version}", "umc-task-web"]),
        published.version
    );
    // The node's keyring followed: B only.
    assert_eq!(keyring_fingerprints(&c.path(KEYRING)), vec![b]);
    c.cycle();
}

/// Node token rotation (issue 13, point 2) on a real node: `node token --rotate`, one cycle
/// installs the umc-node carrying the new auth.conf.d entry and reports with it; umcd then
/// refuses the old token (curl gets 401), and the node still updates on the next cycle.
#[test]
fn token_rotation_in_a_real_chroot() {
    if !tools() {
        return;
    }
    const FILE: &str = "/etc/umc-token.conf";
    const AUTH: &str = "/etc/apt/auth.conf.d/umc.conf";
    let (s, c) = enrolled_with(FILE);
    let old = s.node_token(HOST);
    assert!(read(&c, AUTH).contains(&old));

    let rotated: umc::api::TokenRotateResponse =
        serde_json::from_str(&s.admin_ok(&["node", "token", HOST, "--rotate", "--json"]))
            .expect("json");
    let new = rotated.token.clone();
    let until = rotated.rotation.clone().expect("rotation").until;

    // One cycle: apt still authenticates with the old token, installs the umc-node that
    // carries the new one (an unmodified conffile, replaced silently), and the report goes
    // out with the new token.
    c.cycle();
    assert_eq!(installed(&c, "umc-node"), until);
    let auth = read(&c, AUTH);
    assert!(auth.contains(&new) && !auth.contains(&old), "{auth}");
    let mode = std::fs::metadata(c.path(AUTH))
        .expect("auth.conf")
        .permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.mode() & 0o777, 0o600);
    let t: umc::api::NodeToken =
        serde_json::from_str(&s.admin_ok(&["node", "token", HOST, "--json"])).expect("json");
    assert_eq!(t.rotation, None, "the node's report ended the rotation");
    assert_eq!(
        host_status(&s).installed,
        Some(installed(&c, &format!("umc-{HOST}")))
    );

    // umcd refuses the old token; the new one works (curl on the node, as root).
    let code = |token: &str| {
        c.ok(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-u",
            &format!("{HOST}:{token}"),
            &format!("{}/hosts/{HOST}/dists/umc/InRelease", s.url),
        ])
    };
    assert_eq!(code(&old), "401");
    assert_eq!(code(&new), "200");

    // The node still updates: an edit reaches it on the next cycle.
    file_add(&s, FILE, "after rotation\n", &[]);
    c.cycle();
    assert_eq!(read(&c, FILE), "after rotation\n");
    assert_eq!(installed(&c, "umc-task-web"), task_version(&s, "web"));
}

fn task_version(s: &Server, task: &str) -> String {
    let t: umc::api::TaskInfo =
        serde_json::from_str(&s.admin_ok(&["task", "show", task, "--json"])).expect("json");
    t.version
}

fn installed(c: &Chroot, package: &str) -> String {
    c.ok(&["dpkg-query", "-W", "-f=${Version}", package])
}

/// The data-preservation issue on a real node: a rollback brings the earlier packages back,
/// and after export, wipe and import, one more edit reaches the node as an upgrade.
#[test]
fn rollback_and_import_on_a_real_node() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut s = Server::start_in(&data);
    s.admin_ok(&["node", "add", HOST]);
    s.admin_ok(&["task", "add", "tools"]);
    s.admin_ok(&["task", "depend", "tools", "less"]);
    s.admin_ok(&["assign", HOST, "tools"]);
    let c = Chroot::new();
    enroll(&s, &c);
    assert_eq!(c.status("less"), "installed");
    let log: Vec<umc::api::LogEntry> =
        serde_json::from_str(&s.admin_ok(&["log", "-n", "1", "--json"])).expect("json");
    let good = log[0].generation.to_string();

    // A bad change reaches the node ...
    s.admin_ok(&["task", "undepend", "tools", "less"]);
    s.admin_ok(&["task", "remove", "tools", "less"]);
    c.cycle();
    assert_eq!(c.status("less"), "not-installed");
    let bad_version = installed(&c, "umc-task-tools");
    // ... and the rollback brings the earlier packages back, as newer versions.
    s.admin_ok(&["rollback", "--to", &good]);
    c.cycle();
    assert_eq!(c.status("less"), "installed", "rolled back");
    let rolled = installed(&c, "umc-task-tools");
    assert!(
        common::version_gt(&rolled, &bad_version),
        "{rolled} > {bad_version}"
    );

    // Export with secrets and history, wipe the database (the signing key stays), import.
    // umcd refuses a data dir whose admin.token outlived its database, so it goes too.
    let export = s.admin_ok(&["export", "--with-secrets", "--history"]);
    let file = tmp.path().join("fleet.toml");
    std::fs::write(&file, &export).expect("write export");
    let addr = s.url.strip_prefix("http://").expect("url").to_string();
    s.stop();
    std::fs::remove_file(data.join("umc.redb")).expect("wipe");
    std::fs::remove_file(data.join("admin.token")).expect("wipe the admin token");
    let s = Server::start_in_with(&data, &["--listen", &addr]);
    s.admin_ok(&["import", file.to_str().expect("utf8")]);
    assert_eq!(
        s.admin_ok(&["export", "--with-secrets", "--history"]),
        export
    );
    // The node sees the same packages: nothing to do, nothing downgraded.
    let out = c.cycle();
    assert_eq!(installed(&c, "umc-task-tools"), rolled, "{out}");
    // One more edit arrives as an upgrade.
    s.admin_ok(&["task", "depend", "tools", "gzip"]);
    c.cycle();
    let after = installed(&c, "umc-task-tools");
    assert_eq!(after, task_version(&s, "tools"));
    assert!(common::version_gt(&after, &rolled), "{after} > {rolled}");
}

// ---------------------------------------------------------------------------------------------
// Over https (issue 15): umcd serves its own CA's certificate; the node trusts that CA for
// umcd's host alone, from the enrollment line on.

/// umcd with `--tls on` (its own CA in `<data>/tls/ca.pem`) on 127.0.0.1, on a fresh data dir.
fn start_https() -> (tempfile::TempDir, Server) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Server::start_in_with(&tmp.path().join("data"), &["--tls", "on"]);
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    (tmp, s)
}

fn ca_file(s: &Server) -> PathBuf {
    s.data.join("tls/ca.pem")
}

/// The node `HOST` at umcd's https URL, with task `tools` (less) not yet assigned: umc-admin
/// over https, trusting umcd's CA (`UMC_CA`).
fn https_model(s: &Server) {
    s.admin_ok(&["node", "add", HOST]);
    s.admin_ok(&["task", "add", "tools"]);
    s.admin_ok(&["task", "depend", "tools", "less"]);
}

/// The line `umc-admin node enroll` prints over https: it carries umcd's CA inline and
/// fetches the bootstrap trusting that CA alone.
fn https_enroll_line(s: &Server) -> String {
    let line = enroll_line(s);
    assert!(
        line.contains(&format!("u='{}/hosts/{HOST}/bootstrap'", s.url)),
        "{line}"
    );
    assert!(line.contains(" --cacert \"$c\""), "{line}");
    let ca = std::fs::read_to_string(ca_file(s)).expect("ca.pem");
    assert!(
        line.contains(&quoted(&ca)),
        "the line carries umcd's CA: {line}"
    );
    line
}

/// Every file and symlink under `dir` in the chroot (recursively) with its size and mtime,
/// and every directory: what a run that must write nothing must leave as it was.
fn tree(c: &Chroot, dir: &str) -> std::collections::BTreeSet<String> {
    fn walk(p: &Path, rel: &str, out: &mut std::collections::BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(p) else {
            return;
        };
        for e in entries.flatten() {
            let name = format!("{rel}/{}", e.file_name().to_string_lossy());
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                out.insert(format!("{name}/"));
                walk(&e.path(), &name, out);
            } else {
                use std::os::unix::fs::MetadataExt;
                out.insert(format!("{name} {} {}", m.len(), m.mtime()));
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(&c.path(dir), dir.trim_end_matches('/'), &mut out);
    out
}

/// Where a CA would go if the bootstrap touched the system's trust store.
const TRUST_STORE: [&str; 2] = ["/etc/ssl", "/usr/local/share/ca-certificates"];

/// Stock apt over https on `suite`: the printed one-liner enrolls the node (curl trusting the
/// inline CA alone), a cycle installs a task's package, and the CA is trusted by apt for
/// umcd's host only, never through the system's trust store.
fn enroll_and_install_over_https(suite: &str) {
    if !tools() || !require_tool("curl") {
        return;
    }
    let (_tmp, s) = start_https();
    https_model(&s);
    let c = Chroot::of(suite);
    let store_before: Vec<_> = TRUST_STORE.iter().map(|d| tree(&c, d)).collect();

    let out = c.ok(&["sh", "-c", &https_enroll_line(&s)]);
    assert!(out.contains("is a umc node"), "{out}");
    assert_eq!(c.status("umc-node"), "installed");
    assert_eq!(c.status(&format!("umc-{HOST}")), "installed");
    let sources = read(&c, "/etc/apt/sources.list.d/umc.sources");
    assert!(
        sources.contains(&format!("URIs: {}/hosts/{HOST}", s.url)),
        "{sources}"
    );
    assert_eq!(
        std::fs::read(c.path("/usr/share/umc/ca.pem")).expect("the node's CA"),
        std::fs::read(ca_file(&s)).expect("umcd's CA")
    );
    let conf = read(&c, "/etc/apt/apt.conf.d/60umc-tls");
    assert!(
        conf.contains("Acquire::https::127.0.0.1::CaInfo \"/usr/share/umc/ca.pem\";"),
        "{conf}"
    );
    // Both belong to umc-node now, so later cycles keep them current.
    let owned = c.ok(&["dpkg-query", "-L", "umc-node"]);
    for f in ["/usr/share/umc/ca.pem", "/etc/apt/apt.conf.d/60umc-tls"] {
        assert!(owned.lines().any(|l| l == f), "umc-node ships {f}: {owned}");
    }

    // A task assigned after enrollment arrives with the next cycle, over https.
    s.admin_ok(&["assign", HOST, "tools"]);
    c.cycle();
    assert_eq!(c.status("less"), "installed");
    assert_eq!(installed(&c, "umc-task-tools"), task_version(&s, "tools"));
    // The cycle's report reached umcd over https too.
    let st = host_status(&s);
    assert_eq!(st.state, State::Ok, "{st:?}");
    assert_eq!(st.last_result.as_deref(), Some("ok"));

    let store_after: Vec<_> = TRUST_STORE.iter().map(|d| tree(&c, d)).collect();
    assert_eq!(
        store_before, store_after,
        "the system's trust store is untouched"
    );
}

#[test]
fn enroll_and_install_over_https_on_bookworm() {
    enroll_and_install_over_https(BOOKWORM);
}

#[test]
fn enroll_and_install_over_https_on_trixie() {
    enroll_and_install_over_https(TRIXIE);
}

/// A CA certificate and key made by openssl, for a CA that is not umcd's.
fn other_ca(dir: &Path) -> String {
    let cert = dir.join("other-ca.pem");
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
        .args(["-subj", "/CN=not umcd's CA", "-keyout"])
        .arg(dir.join("other-ca.key"))
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl req");
    assert!(out.status.success(), "{}", show(&out));
    std::fs::read_to_string(&cert).expect("other CA")
}

/// The PEM as the enrollment line quotes it: one single-quoted word per line.
fn quoted(pem: &str) -> String {
    pem.lines()
        .map(|l| format!("'{l}'"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The enrollment line with another CA in place of umcd's (what a man in the middle of the
/// first contact looks like to curl): it stops at the handshake, so the token never leaves,
/// and nothing is written on the node or installed.
#[test]
fn a_wrong_ca_in_the_enrollment_line_stops_it_before_anything_is_written() {
    if !tools() || !require_tool("curl") || !require_tool("openssl") {
        return;
    }
    let (tmp, s) = start_https();
    https_model(&s);
    s.admin_ok(&["assign", HOST, "tools"]);
    let c = Chroot::new();
    let line = https_enroll_line(&s);
    let ca = std::fs::read_to_string(ca_file(&s)).expect("ca.pem");
    let wrong = line.replace(&quoted(&ca), &quoted(&other_ca(tmp.path())));
    assert_ne!(wrong, line, "the CA was replaced");

    let before: Vec<_> = ["/etc", "/usr", "/var", "/tmp", "/root"]
        .iter()
        .map(|d| tree(&c, d))
        .collect();
    let out = c.run(&["sh", "-c", &wrong]);
    assert!(
        !out.status.success(),
        "enrolled with a wrong CA: {}",
        show(&out)
    );
    let text = show(&out);
    assert!(
        text.contains("SSL certificate problem"),
        "curl names the failed verification: {text}"
    );
    assert!(
        text.contains(&format!("umc: enrolling {HOST} failed")),
        "{text}"
    );
    let after: Vec<_> = ["/etc", "/usr", "/var", "/tmp", "/root"]
        .iter()
        .map(|d| tree(&c, d))
        .collect();
    assert_eq!(before, after, "nothing was written on the node");
    for f in [
        "/etc/apt/sources.list.d/umc.sources",
        "/etc/apt/auth.conf.d/umc.conf",
        "/etc/apt/apt.conf.d/60umc-tls",
        "/usr/share/keyrings/umc-archive-keyring.gpg",
        "/usr/share/umc",
    ] {
        assert!(!c.path(f).exists(), "{f} was written");
    }
    for p in ["umc-node", "less"] {
        assert_eq!(c.status(p), "not-installed", "{p}");
    }
    // No apt request or report from the node reached umcd.
    let st = host_status(&s);
    assert_eq!(st.last_seen, None, "{st:?}");
}

/// A node whose CA file is gone: apt-get update fails loudly with the certificate error, and
/// umc-cycle's report (sent trusting the copy of the CA it kept from its last good cycle)
/// tells umcd why. The enrollment line, run again, puts the node right.
#[test]
fn a_node_without_its_ca_file_fails_loudly_and_reports_why() {
    if !tools() || !require_tool("curl") {
        return;
    }
    const CA: &str = "/usr/share/umc/ca.pem";
    let (_tmp, s) = start_https();
    https_model(&s);
    s.admin_ok(&["assign", HOST, "tools"]);
    let c = Chroot::new();
    let line = https_enroll_line(&s);
    c.ok(&["sh", "-c", &line]);
    assert_eq!(c.status("less"), "installed");
    assert_eq!(
        read(&c, "/var/lib/umc/ca.pem"),
        read(&c, CA),
        "umc-cycle keeps a copy of the CA it last read"
    );

    std::fs::remove_file(c.path(CA)).expect("rm ca.pem");
    let out = c.run(&["/usr/sbin/umc-cycle"]);
    let text = show(&out);
    assert!(!out.status.success(), "{text}");
    // apt names the file, but its own E: line only says that the Release file is gone, so
    // umc-cycle's line after it is what umcd's status shows.
    let apt_error = format!("Could not load certificates from {CA} (CaInfo option)");
    assert!(
        text.contains(&apt_error),
        "apt-get update names the certificate problem: {text}"
    );
    assert!(text.contains("umc-cycle: step 'update' failed"), "{text}");
    assert!(!text.contains("could not send the report"), "{text}");
    assert!(
        text.contains("the report trusts the copy of it kept in /var/lib/umc/ca.pem"),
        "{text}"
    );

    let out = s.admin(&["status", HOST, "--json"]);
    assert_eq!(out.status.code(), Some(7), "a failed host: {}", show(&out));
    let detail: umc::api::HostStatusDetail =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    let st = &detail.status;
    assert_eq!(st.state, State::Failed, "{st:?}");
    assert_eq!(
        st.last_result.as_deref(),
        Some("failed: update exited 100"),
        "{st:?}"
    );
    assert!(
        st.reason.contains(&format!("{CA} (UMC_CA) is missing")),
        "{st:?}"
    );
    let tail = &detail.reports[0].report.tail;
    assert!(
        tail.iter().any(|l| l.contains(&apt_error)),
        "the report carries apt's own error: {tail:?}"
    );

    // The remedy the reason names: the enrollment line again, then a good cycle.
    c.ok(&["sh", "-c", &line]);
    assert_eq!(read(&c, CA), read(&c, "/var/lib/umc/ca.pem"));
    let st = host_status(&s);
    assert_eq!(st.state, State::Ok, "{st:?}");
}
