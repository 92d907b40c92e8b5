//! Install for real: dpkg and apt in a debootstrap'd Debian bookworm chroot take umc packages
//! from a running umcd (and their real dependencies from the Debian mirror this machine's own
//! apt uses), then follow edits through the node cycle in contrib/umc-cycle.
//!
//! Needs root, debootstrap and network access to the mirror. The chroot is built once by
//! tests/support/make-chroot.sh and cached; each test works on an overlay (or a copy) of it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::sshd::{Sshd, free_port, keygen};
use common::{Server, UMC_ADMIN, require_tool, show};

const HOST: &str = "grumpy.example.com";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A throwaway chroot on top of the cached one, with /proc mounted. Unmounted on drop.
struct Chroot {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    mounts: Vec<PathBuf>,
}

impl Chroot {
    fn new() -> Chroot {
        Chroot::new_in(Some(&std::env::temp_dir()))
    }

    /// The overlay under `tmp_base`, or with `None` in a `runs/` folder beside the cached
    /// chroot: sshd's ChrootDirectory wants every path component owned by root and writable by
    /// nobody else, which /tmp (1777) is not, and CI may clone the repo anywhere (even /tmp).
    fn new_in(tmp_base: Option<&Path>) -> Chroot {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/make-chroot.sh");
        let out = Command::new("sh")
            .arg(script)
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

    /// contrib/umc-cycle, copied into the chroot: the node's real cycle.
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

fn enroll(s: &Server, c: &Chroot) {
    let keyring = s.get("/umc-archive-keyring.gpg", None, &[]).body;
    c.write("/etc/apt/keyrings/umc.gpg", &keyring, 0o644);
    let root = env!("CARGO_MANIFEST_DIR");
    let read = |p: &str| std::fs::read_to_string(Path::new(root).join(p)).expect("apt-conf");
    let sources = read("apt-conf/umc.sources.in")
        .replace("@URL@", &s.url)
        .replace("@HOST@", HOST)
        .replace("@KEYRING@", "/etc/apt/keyrings/umc.gpg");
    c.write(
        "/etc/apt/sources.list.d/umc.sources",
        sources.as_bytes(),
        0o644,
    );
    let auth = read("apt-conf/umc-auth.conf.in")
        .replace("@URL@", &s.url)
        .replace("@HOST@", HOST)
        .replace("@TOKEN@", &s.node_token(HOST));
    c.write("/etc/apt/auth.conf.d/umc.conf", auth.as_bytes(), 0o600);
    c.write(
        "/usr/sbin/umc-cycle",
        &std::fs::read(Path::new(root).join("contrib/umc-cycle")).expect("umc-cycle"),
        0o755,
    );
    c.write(
        "/etc/umc/package",
        format!("umc-{HOST}\n").as_bytes(),
        0o644,
    );
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
    enroll(&s, &c);
    assert_eq!(c.status("nginx-light"), "not-installed");

    // First install: the host package pulls in its tasks and their real dependencies.
    c.ok(&[
        "apt-get",
        "-q",
        "update",
        "-o",
        "APT::Update::Error-Mode=any",
    ]);
    c.ok(&["apt-get", "-q", "-y", "install", &format!("umc-{HOST}")]);
    for p in [
        &format!("umc-{HOST}") as &str,
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
    enroll(&s, &c);
    c.cycle();
    assert_eq!(c.status(&format!("umc-{HOST}")), "installed");
    assert_eq!(c.status("less"), "not-installed");

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
    s.admin_ok(&["assign", HOST, "tools"]);

    let out = Command::new(UMC_ADMIN)
        .args(["upgrade", HOST, "--accept-new", "--timeout", "600", "-i"])
        .arg(&key)
        .env("UMC_URL", &s.url)
        .env("UMC_TOKEN", s.token())
        .env("HOME", keys.path())
        .env("UMC_KNOWN_HOSTS", keys.path().join("known_hosts"))
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .expect("umc-admin upgrade");
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
