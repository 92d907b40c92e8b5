//! Fleet commands against real OpenSSH: several `sshd` on 127.0.0.1, each with its own port and
//! host key, play the hosts; the real umc-admin talks to a real umcd for targets and audit.
//!
//! Every sshd, ssh-agent and umc-admin started here is stopped by its own PID. HOME and
//! UMC_KNOWN_HOSTS point into a tempdir, so the machine's own ~/.ssh is never read or written.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::sshd::{Sshd, free_port, keygen};
use common::{Server, UMC_ADMIN, require_tool, show};
use umc::api::AuditEntry;

fn tools() -> bool {
    ["sshd", "ssh-keygen", "ssh-agent", "ssh-add"]
        .iter()
        .all(|t| require_tool(t))
}

/// A umcd, `n` sshd hosts `h<i>.example.com` registered as nodes, and a client key.
struct Fleet {
    tmp: tempfile::TempDir,
    server: Server,
    hosts: Vec<Sshd>,
    key: PathBuf,
}

impl Fleet {
    fn new(n: usize) -> Fleet {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        let key = tmp.path().join("id_ed25519");
        keygen(&key, "ed25519");
        let authorized = tmp.path().join("authorized_keys");
        std::fs::copy(key.with_extension("pub"), &authorized).expect("authorized_keys");
        let server = Server::start();
        let mut hosts = Vec::new();
        for i in 0..n {
            let port = free_port();
            let sshd = Sshd::start(&tmp.path().join(format!("sshd{i}")), port, &authorized, "");
            server.admin_ok(&[
                "node",
                "add",
                &Fleet::name(i),
                "--ssh",
                &format!("root@127.0.0.1:{port}"),
            ]);
            hosts.push(sshd);
        }
        Fleet {
            tmp,
            server,
            hosts,
            key,
        }
    }

    fn name(i: usize) -> String {
        format!("h{i}.example.com")
    }

    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    fn known_hosts(&self) -> PathBuf {
        self.tmp.path().join("umc_known_hosts")
    }

    /// umc-admin with a private HOME and known-hosts file, no agent.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(UMC_ADMIN);
        c.args(args)
            .env("UMC_URL", &self.server.url)
            .env("UMC_TOKEN", self.server.token())
            .env("HOME", self.home())
            .env("UMC_KNOWN_HOSTS", self.known_hosts())
            .env("NO_COLOR", "1")
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null());
        c
    }

    fn admin(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run umc-admin")
    }

    /// `umc-admin ssh <targets> -i key [extra] -- command`.
    fn ssh(&self, targets: &[&str], extra: &[&str], command: &str) -> Output {
        let key = self.key.display().to_string();
        let mut args = vec!["ssh"];
        args.extend_from_slice(targets);
        args.extend(["-i", &key]);
        args.extend_from_slice(extra);
        args.extend(["--", command]);
        self.admin(&args)
    }

    fn json(&self, out: &Output) -> serde_json::Value {
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("json: {e}\n{}", show(out)))
    }

    fn generation(&self) -> u64 {
        common::console::generation(&self.server)
    }

    fn audit(&self) -> Vec<AuditEntry> {
        serde_json::from_str(
            &self
                .server
                .admin_ok(&["log", "--audit", "--json", "-n", "100"]),
        )
        .expect("audit json")
    }
}

/// A shell `case` on the sshd port (the 4th field of SSH_CONNECTION): each host acts differently.
fn per_port(arms: &[(u16, &str)], default: &str) -> String {
    let mut s = String::from("case ${SSH_CONNECTION##* } in ");
    for (p, cmd) in arms {
        s.push_str(&format!("{p}) {cmd};; "));
    }
    s.push_str(&format!("*) {default};; esac"));
    s
}

fn result<'a>(v: &'a serde_json::Value, host: &str) -> &'a serde_json::Value {
    v["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["host"] == host)
        .unwrap_or_else(|| panic!("no result for {host}: {v}"))
}

#[test]
fn fan_out_with_mixed_exit_codes_stderr_and_audit() {
    if !tools() {
        return;
    }
    let f = Fleet::new(3);
    let generation = f.generation();
    let cmd = per_port(
        &[
            (f.hosts[1].port, "echo to-stderr >&2; exit 3"),
            (f.hosts[2].port, "echo two; echo lines; kill -TERM $$"),
        ],
        "echo hello from $(hostname)",
    );
    let out = f.ssh(&["all"], &["--accept-new"], &cmd);
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("h0.example.com | hello from "),
        "{}",
        show(&out)
    );
    assert!(stdout.contains("h2.example.com | two\n"), "{}", show(&out));
    assert!(
        stdout.contains("h2.example.com | lines\n"),
        "{}",
        show(&out)
    );
    assert!(
        stderr.contains("h1.example.com | to-stderr"),
        "{}",
        show(&out)
    );
    assert!(
        stderr.contains("recorded new host key SHA256:"),
        "{}",
        show(&out)
    );
    // The summary table.
    assert!(stdout.contains("HOST"), "{stdout}");
    assert!(stdout.contains("1 of 3 hosts succeeded"), "{stdout}");

    // --json: structured, with each host's exit code and output.
    let out = f.ssh(&["all"], &["--json"], &cmd);
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    let v = f.json(&out);
    assert_eq!(result(&v, "h0.example.com")["exit"], 0);
    assert_eq!(result(&v, "h1.example.com")["exit"], 3);
    assert_eq!(result(&v, "h1.example.com")["stderr"][0], "to-stderr");
    assert_eq!(result(&v, "h2.example.com")["signal"], "TERM");
    assert_eq!(result(&v, "h2.example.com")["stdout"][1], "lines");

    // Every host exits 0: exit status 0.
    let out = f.ssh(&["all"], &[], "true");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    // Audit: all three runs are in the server's history, and no generation was made.
    let audit = f.audit();
    assert_eq!(audit.len(), 3, "{audit:?}");
    assert_eq!(audit[0].command, "true");
    assert_eq!(audit[0].targets, ["all"]);
    assert_eq!(audit[0].user, "admin");
    assert_eq!(audit[2].results.len(), 3);
    assert_eq!(audit[2].results[1].exit, Some(3));
    assert_eq!(
        f.generation(),
        generation,
        "audit records are not model edits"
    );
    let log = f.server.admin_ok(&["log"]);
    assert!(log.contains("$ true"), "{log}");
    assert!(log.contains("h1.example.com: exit 3"), "{log}");
    assert!(
        log.contains("generation 3"),
        "edits are still listed: {log}"
    );
}

#[test]
fn timeout_and_a_down_host_stay_that_hosts_own() {
    if !tools() {
        return;
    }
    let mut f = Fleet::new(3);
    let out = f.ssh(&["all"], &["--accept-new"], "true");
    assert!(out.status.success(), "{}", show(&out));
    f.hosts[2].stop();
    let cmd = per_port(&[(f.hosts[1].port, "sleep 60")], "echo fine");
    let t = Instant::now();
    let out = f.ssh(&["all"], &["--timeout", "2", "--json"], &cmd);
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(6), "{}", show(&out));
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let v = f.json(&out);
    assert_eq!(result(&v, "h0.example.com")["exit"], 0);
    assert_eq!(result(&v, "h0.example.com")["stdout"][0], "fine");
    let slow = result(&v, "h1.example.com");
    assert_eq!(slow["error"], "timed out after 2s", "{v}");
    assert!(slow["duration_ms"].as_u64().expect("ms") >= 2000);
    let down = result(&v, "h2.example.com")["error"]
        .as_str()
        .expect("error")
        .to_string();
    assert!(down.starts_with("connect to 127.0.0.1:"), "{down}");
}

#[test]
fn unknown_host_keys_are_refused_unless_accept_new_and_changed_keys_always() {
    if !tools() {
        return;
    }
    let mut f = Fleet::new(2);
    // Unknown, no --accept-new: refused, nothing recorded.
    let out = f.ssh(&["h0.example.com"], &[], "true");
    assert_eq!(out.status.code(), Some(6), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("unknown host key for [127.0.0.1]:"), "{text}");
    assert!(text.contains("--accept-new"), "{text}");
    assert!(!f.known_hosts().exists());

    // --accept-new records it, in [host]:port form; then it is known without the flag.
    let out = f.ssh(&["all"], &["--accept-new"], "true");
    assert!(out.status.success(), "{}", show(&out));
    let known = std::fs::read_to_string(f.known_hosts()).expect("known_hosts");
    for h in &f.hosts {
        assert!(
            known.contains(&format!("[127.0.0.1]:{} ssh-ed25519 ", h.port)),
            "{known}"
        );
    }
    let out = f.ssh(&["all"], &[], "true");
    assert!(out.status.success(), "{}", show(&out));

    // h1 is reinstalled: a new host key on the same port. Refused, even with --accept-new,
    // naming the host and the file line; h0 carries on.
    let port = f.hosts[1].port;
    let dir = f.hosts[1].dir.clone();
    f.hosts[1].stop();
    std::fs::remove_file(dir.join("host_key")).expect("rm host key");
    f.hosts[1] = Sshd::start(&dir, port, &f.tmp.path().join("authorized_keys"), "");
    let out = f.ssh(&["all"], &["--accept-new", "--json"], "true");
    assert_eq!(out.status.code(), Some(6), "{}", show(&out));
    let v = f.json(&out);
    assert_eq!(result(&v, "h0.example.com")["exit"], 0);
    let err = result(&v, "h1.example.com")["error"]
        .as_str()
        .expect("error")
        .to_string();
    let line = known
        .lines()
        .position(|l| l.starts_with(&format!("[127.0.0.1]:{port} ")))
        .expect("line")
        + 1;
    assert!(
        err.starts_with(&format!("HOST KEY CHANGED for [127.0.0.1]:{port}")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:{line}", f.known_hosts().display())),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(f.known_hosts()).expect("known_hosts"),
        known,
        "a changed key is never recorded"
    );

    // The user's own ~/.ssh/known_hosts counts too (read only).
    std::fs::remove_file(f.known_hosts()).expect("rm");
    let ssh_dir = f.home().join(".ssh");
    std::fs::create_dir_all(&ssh_dir).expect("mkdir");
    let pubkey = std::fs::read_to_string(f.hosts[0].dir.join("host_key.pub")).expect("pub");
    std::fs::write(
        ssh_dir.join("known_hosts"),
        format!("[127.0.0.1]:{} {pubkey}", f.hosts[0].port),
    )
    .expect("write");
    let out = f.ssh(&["h0.example.com"], &[], "true");
    assert!(out.status.success(), "{}", show(&out));
}

/// OpenSSH's `ssh` with only `known_hosts` as its host-key file, `accept-new`, and the fleet's
/// client key: what OpenSSH itself concludes about the same file.
fn openssh_accept_new(f: &Fleet, port: u16, known_hosts: &Path) -> Output {
    Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "BatchMode=yes", "-o"])
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "ConnectTimeout=10",
            "-i",
        ])
        .arg(&f.key)
        .args(["-p", &port.to_string(), "root@127.0.0.1", "true"])
        .env("HOME", f.home())
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .expect("run ssh")
}

/// Security review #7: the host is known by its ed25519 key and now offers only an RSA key (a
/// man in the middle with another key type). That is a changed host key, never an unknown one:
/// refused with and without --accept-new, and the known-hosts file stays as it was. OpenSSH
/// concludes the same from the same file.
#[test]
fn a_known_host_offering_a_key_of_another_type_is_changed_even_with_accept_new() {
    if !tools() || !require_tool("ssh") {
        return;
    }
    let mut f = Fleet::new(1);
    let port = f.hosts[0].port;
    let dir = f.hosts[0].dir.clone();
    let ed25519 = std::fs::read_to_string(dir.join("host_key.pub")).expect("host key");
    let known = format!("[127.0.0.1]:{port} {ed25519}");
    std::fs::write(f.known_hosts(), &known).expect("write known_hosts");
    // The host's real ed25519 key is known: it answers.
    let out = f.ssh(&["h0.example.com"], &[], "true");
    assert!(out.status.success(), "{}", show(&out));

    // Same address and port, now with only an RSA host key.
    f.hosts[0].stop();
    std::fs::remove_file(dir.join("host_key")).expect("rm host key");
    std::fs::remove_file(dir.join("host_key.pub")).expect("rm host key");
    keygen(&dir.join("host_key"), "rsa");
    f.hosts[0] = Sshd::start(&dir, port, &f.tmp.path().join("authorized_keys"), "");
    for extra in [&[][..], &["--accept-new"][..]] {
        let mut args = extra.to_vec();
        args.push("--json");
        let out = f.ssh(&["h0.example.com"], &args, "true");
        assert_eq!(out.status.code(), Some(6), "{extra:?}: {}", show(&out));
        let v = f.json(&out);
        let err = result(&v, "h0.example.com")["error"]
            .as_str()
            .expect("error")
            .to_string();
        assert!(
            err.starts_with(&format!(
                "HOST KEY CHANGED for [127.0.0.1]:{port}: it offers ssh-rsa key SHA256:"
            )),
            "{extra:?}: {err}"
        );
        assert!(
            err.contains(&format!(
                "differs from the ssh-ed25519 key at {}:1;",
                f.known_hosts().display()
            )),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(f.known_hosts()).expect("known_hosts"),
            known,
            "{extra:?}: the file is unchanged"
        );
    }

    // OpenSSH with accept-new refuses the same file just as umc-admin does.
    let out = openssh_accept_new(&f, port, &f.known_hosts());
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{}",
        show(&out)
    );
    assert_eq!(
        std::fs::read_to_string(f.known_hosts()).expect("known_hosts"),
        known
    );
}

/// The other side of the same rule: a host with both an ed25519 and an RSA host key, known by
/// its RSA key only (as an older OpenSSH may have recorded it). umc-admin asks for the recorded
/// type first, as OpenSSH does, so the host is known, not "changed".
#[test]
fn a_host_known_by_one_of_its_key_types_is_reached_with_that_type() {
    if !tools() || !require_tool("ssh") {
        return;
    }
    let mut f = Fleet::new(1);
    let port = f.hosts[0].port;
    let dir = f.hosts[0].dir.clone();
    f.hosts[0].stop();
    let rsa = dir.join("host_key_rsa");
    keygen(&rsa, "rsa");
    f.hosts[0] = Sshd::start(
        &dir,
        port,
        &f.tmp.path().join("authorized_keys"),
        &format!("HostKey {}\n", rsa.display()),
    );
    let pubkey = std::fs::read_to_string(rsa.with_extension("pub")).expect("rsa pub");
    let known = format!("[127.0.0.1]:{port} {pubkey}");
    std::fs::write(f.known_hosts(), &known).expect("write known_hosts");
    let out = f.ssh(&["h0.example.com"], &[], "echo reached");
    assert!(out.status.success(), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("| reached"));
    // OpenSSH agrees, and (accept-new) has nothing to add.
    let out = openssh_accept_new(&f, port, &f.known_hosts());
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        std::fs::read_to_string(f.known_hosts()).expect("known_hosts"),
        known
    );
}

/// A `ssh-agent -D -a <sock>` stopped by PID.
struct Agent {
    child: Child,
    sock: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let sock = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "ssh-agent did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Agent { child, sock }
    }

    fn add(&self, key: &Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.sock)
            .stdin(Stdio::null())
            .output()
            .expect("ssh-add");
        assert!(out.status.success(), "ssh-add: {}", show(&out));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn agent_and_key_file_authentication_with_rsa_sha2() {
    if !tools() {
        return;
    }
    let f = Fleet::new(1);
    // An RSA key: OpenSSH 8.8+ refuses SHA-1 `ssh-rsa` signatures, so this proves SHA-2.
    let rsa = f.tmp.path().join("id_rsa");
    keygen(&rsa, "rsa");
    let mut authorized = std::fs::read_to_string(f.key.with_extension("pub")).expect("pub");
    authorized.push_str(&std::fs::read_to_string(rsa.with_extension("pub")).expect("pub"));
    std::fs::write(f.tmp.path().join("authorized_keys"), authorized).expect("write");

    // Key file (ed25519 is the fleet's default; RSA here).
    let rsa_arg = rsa.display().to_string();
    let out = f.admin(&[
        "ssh",
        "all",
        "-i",
        &rsa_arg,
        "--accept-new",
        "--",
        "echo",
        "via",
        "file",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("| via file"));

    // Agent, no --identity and no key in ~/.ssh.
    let agent = Agent::start(f.tmp.path());
    let out = f
        .cmd(&["ssh", "all", "--", "echo via agent"])
        .env("SSH_AUTH_SOCK", &agent.sock)
        .output()
        .expect("umc-admin");
    assert_eq!(out.status.code(), Some(6), "empty agent: {}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("authentication as 'root' failed"),
        "{}",
        show(&out)
    );
    agent.add(&rsa);
    let out = f
        .cmd(&["ssh", "all", "--", "echo via agent"])
        .env("SSH_AUTH_SOCK", &agent.sock)
        .output()
        .expect("umc-admin");
    assert!(out.status.success(), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("| via agent"));

    // A key the host does not accept: an authentication error for that host.
    let other = f.tmp.path().join("id_other");
    keygen(&other, "ed25519");
    let other_arg = other.display().to_string();
    let out = f.admin(&["ssh", "all", "-i", &other_arg, "--", "true"]);
    assert_eq!(out.status.code(), Some(6), "{}", show(&out));
}

#[test]
fn task_and_glob_targets_come_from_the_model() {
    if !tools() {
        return;
    }
    let f = Fleet::new(3);
    f.server.admin_ok(&["task", "add", "base"]);
    f.server.admin_ok(&["task", "add", "web"]);
    f.server.admin_ok(&["task", "include", "web", "base"]);
    f.server.admin_ok(&["assign", "h0.example.com", "web"]);
    f.server.admin_ok(&["assign", "h1.example.com", "base"]);
    let hosts = |targets: &[&str]| -> Vec<String> {
        let out = f.ssh(targets, &["--accept-new", "--json"], "true");
        assert!(out.status.success(), "{}", show(&out));
        let v = f.json(&out);
        v["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["host"].as_str().expect("host").to_string())
            .collect()
    };
    assert_eq!(hosts(&["task:web"]), ["h0.example.com"]);
    assert_eq!(hosts(&["task:base"]), ["h0.example.com", "h1.example.com"]);
    assert_eq!(
        hosts(&["h[12].example.com"]),
        ["h1.example.com", "h2.example.com"]
    );
    assert_eq!(
        hosts(&["*.example.com", "h0.example.com"]),
        ["h0.example.com", "h1.example.com", "h2.example.com"]
    );
}

#[test]
fn bad_input_is_refused_before_any_host_is_touched() {
    if !tools() {
        return;
    }
    let f = Fleet::new(1);
    let check = |out: Output, code: i32, needle: &str| {
        assert_eq!(out.status.code(), Some(code), "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "want {needle:?}: {}", show(&out));
        assert!(!f.known_hosts().exists(), "a host was contacted");
    };
    check(
        f.ssh(&["nope.example.com"], &["--accept-new"], "true"),
        1,
        "unknown target 'nope.example.com'",
    );
    check(
        f.ssh(&["task:nope"], &["--accept-new"], "true"),
        1,
        "unknown target 'task:nope'",
    );
    check(f.ssh(&["all"], &["--accept-new"], " "), 2, "empty command");
    check(f.admin(&["ssh", "all", "--accept-new", "--"]), 2, "COMMAND");
    check(
        f.admin(&[
            "ssh",
            "all",
            "-i",
            "/nonexistent/id",
            "--accept-new",
            "--",
            "true",
        ]),
        1,
        "identity '/nonexistent/id'",
    );
    let unreadable = f.tmp.path().join("garbage_key");
    std::fs::write(&unreadable, "not a key\n").expect("write");
    let arg = unreadable.display().to_string();
    check(
        f.admin(&["ssh", "all", "-i", &arg, "--accept-new", "--", "true"]),
        1,
        &format!("identity '{arg}'"),
    );
    check(
        f.admin(&["restart", "all", "a;b", "--accept-new"]),
        2,
        "not a valid systemd unit name",
    );
    check(
        f.admin(&[
            "node",
            "add",
            "x.example.com",
            "--ssh",
            "nouser.example.com",
        ]),
        1,
        "invalid ssh target 'nouser.example.com'",
    );
    check(
        f.admin(&["node", "add", "x.example.com", "--ssh", "root@host:99999"]),
        1,
        "invalid ssh target",
    );
    assert!(f.audit().is_empty(), "nothing ran, nothing recorded");
}

#[test]
fn restart_runs_systemctl_and_ctrl_c_reports_what_finished() {
    if !tools() {
        return;
    }
    let f = Fleet::new(2);
    // There is no systemd behind these sshd: check the command that ran through the audit
    // record, and that the host ran it.
    let out = f.admin(&[
        "restart",
        "h0.example.com",
        "nginx",
        "--reload",
        "-i",
        &f.key.display().to_string(),
        "--accept-new",
    ]);
    // systemctl is absent or cannot talk to systemd in a test container: any exit code will
    // do, but the host must have run it.
    assert!(
        matches!(out.status.code(), Some(0) | Some(5)),
        "{}",
        show(&out)
    );
    let audit = f.audit();
    assert!(
        audit[0].command.ends_with("systemctl reload -- nginx"),
        "{:?}",
        audit[0]
    );
    assert!(audit[0].results[0].error.is_none(), "{:?}", audit[0]);

    // Ctrl-C: the quick host finishes, the slow one is reported as interrupted.
    let cmd = per_port(&[(f.hosts[1].port, "sleep 60")], "echo quick");
    let key = f.key.display().to_string();
    let mut child = f
        .cmd(&[
            "ssh",
            "all",
            "-i",
            &key,
            "--accept-new",
            "--json",
            "--",
            &cmd,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_secs(3));
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("umc-admin did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    let v = f.json(&out);
    assert_eq!(v["interrupted"], true);
    assert_eq!(result(&v, "h0.example.com")["exit"], 0);
    assert_eq!(result(&v, "h1.example.com")["error"], "interrupted");
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted: 1 of 2 hosts finished"));
    assert_eq!(f.audit().len(), 2, "the interrupted run is recorded too");
}
