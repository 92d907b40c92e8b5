//! Task files rendered per host: what apt delivers, per-host isolation, and bad input.

use crate::common;

use std::process::Command;

use common::{Apt, Server, require_tool, show, version_gt, write_file};

const A: &str = "web1.example.com";
const B: &str = "web2.example.com";

const SITE: &str = "# {{ host.fqdn }} ({{ host.name }} in {{ host.domain }})\n\
server_name {{ host.fqdn }};\n\
upstream db { server {{ vars.db }}:{{ vars.port }}; }\n\
# tasks: {{ tasks | join(sep=\" \") }}\n";

/// Two web hosts with different variables; task web ships a templated conffile.
fn fleet(tmp: &std::path::Path) -> Server {
    let s = Server::start();
    s.admin_ok(&["var", "set", "port=5432", "db=db0.example.com"]);
    s.admin_ok(&["node", "add", A, "--var", "db=db1.example.com"]);
    s.admin_ok(&["node", "add", B, "--var", "db=db2.example.com"]);
    s.admin_ok(&["task", "add", "web"]);
    s.admin_ok(&["task", "depend", "web", "nginx-light"]);
    let t = write_file(tmp, "site.conf", SITE);
    s.admin_ok(&[
        "task",
        "file",
        "add",
        "web",
        "/etc/nginx/conf.d/site.conf",
        "--template",
        &t,
        "--reload",
        "nginx",
    ]);
    let t = write_file(tmp, "tool", "#!/bin/sh\necho {{ host.name }}\n");
    s.admin_ok(&[
        "task",
        "file",
        "add",
        "web",
        "/usr/sbin/umc-tool",
        "--template",
        &t,
        "--mode",
        "0755",
    ]);
    s.admin_ok(&["assign", A, "web"]);
    s.admin_ok(&["assign", B, "web"]);
    s
}

/// Downloads umc-task-web for `host` with real apt and unpacks it with dpkg-deb.
fn unpack_web(s: &Server, host: &str) -> (tempfile::TempDir, String) {
    let apt = Apt::new(&s.url, host, &s.node_token(host), &s.keyring());
    apt.update_ok();
    let version = apt.field("umc-task-web", "Version").expect("umc-task-web");
    let files = apt.download(&["umc-task-web"]);
    let x = tempfile::tempdir().expect("tmp");
    let st = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&files[0])
        .arg(x.path())
        .status()
        .expect("dpkg-deb");
    assert!(st.success());
    let out = Command::new("dpkg-deb")
        .args(["-I"])
        .arg(&files[0])
        .arg("conffiles")
        .output()
        .expect("dpkg-deb -I");
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "/etc/nginx/conf.d/site.conf\n"
    );
    (x, version)
}

#[test]
fn each_host_gets_its_own_rendering() {
    if !(require_tool("apt-get") && require_tool("dpkg-deb")) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let s = fleet(tmp.path());
    let (xa, va) = unpack_web(&s, A);
    let (xb, _) = unpack_web(&s, B);
    let site = |x: &tempfile::TempDir| {
        std::fs::read_to_string(x.path().join("etc/nginx/conf.d/site.conf")).expect("site.conf")
    };
    assert_eq!(
        site(&xa),
        "# web1.example.com (web1 in example.com)\nserver_name web1.example.com;\n\
upstream db { server db1.example.com:5432; }\n# tasks: web\n"
    );
    assert!(
        site(&xb).contains("server db2.example.com:5432;"),
        "{}",
        site(&xb)
    );
    let tool = xa.path().join("usr/sbin/umc-tool");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&tool).expect("tool").permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::read_to_string(&tool).expect("tool"),
        "#!/bin/sh\necho web1\n"
    );

    // The preview shows exactly what the node gets.
    assert_eq!(
        s.admin_ok(&["render", A, "/etc/nginx/conf.d/site.conf"]),
        site(&xa)
    );

    // A global variable change reaches every host with a higher version.
    s.admin_ok(&["var", "set", "port=6432"]);
    let (xa2, va2) = unpack_web(&s, A);
    assert!(version_gt(&va2, &va), "{va2} > {va}");
    assert!(site(&xa2).contains("server db1.example.com:6432;"));
    // A node variable change reaches only that host.
    s.admin_ok(&["node", "set", B, "--var", "db=db9.example.com"]);
    let (xb2, _) = unpack_web(&s, B);
    assert!(site(&xb2).contains("server db9.example.com:6432;"));
    let (xa3, va3) = unpack_web(&s, A);
    assert_eq!(va3, va2, "host A's package did not change");
    assert_eq!(site(&xa3), site(&xa2));

    // Host A's credentials open none of host B's URLs.
    let token_a = s.node_token(A);
    let tb = s.node_token(B);
    let packages_b = {
        s.get(
            &format!("/hosts/{B}/dists/umc/main/binary-amd64/Packages"),
            Some((B, &tb)),
            &[],
        )
        .text()
    };
    let pool_b = packages_b
        .lines()
        .find_map(|l| l.strip_prefix("Filename: "))
        .expect("a pool path")
        .to_string();
    s.admin_ok(&["node", "enroll", B, "--url", "http://umc.example.com:8080"]);
    let own = s.get(&format!("/hosts/{B}/bootstrap"), Some((B, &tb)), &[]);
    assert_eq!(own.status, 200);
    assert!(own.text().contains(&format!("password {tb}")));
    for path in [
        "dists/umc/InRelease",
        "dists/umc/main/binary-amd64/Packages",
        pool_b.as_str(),
        "bootstrap",
    ] {
        let r = s.get(&format!("/hosts/{B}/{path}"), Some((A, &token_a)), &[]);
        assert_eq!(r.status, 401, "{path}");
    }
}

#[test]
fn template_mistakes_are_rejected_and_change_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = fleet(tmp.path());
    let before = (
        s.admin_ok(&["task", "show", "web", "--json"]),
        s.admin_ok(&["node", "list", "--json"]),
        s.admin_ok(&["var", "list", "--json"]),
    );
    let bad_syntax = write_file(tmp.path(), "bad", "line one\nline {{ two\n");
    let undefined = write_file(tmp.path(), "undef", "a\n{{ vars.nope }}\n");
    let big = write_file(tmp.path(), "big", &"x".repeat((1 << 20) + 1));
    let ok = write_file(tmp.path(), "ok", "fine\n");
    s.admin_ok(&["task", "add", "other"]);
    s.admin_ok(&[
        "task",
        "file",
        "add",
        "other",
        "/etc/nginx/conf.d/site.conf",
        "--template",
        &ok,
    ]);
    s.admin_ok(&["task", "add", "needs-x"]);
    let needs_x = write_file(tmp.path(), "needsx", "{{ vars.x }}\n");
    s.admin_ok(&[
        "task",
        "file",
        "add",
        "needs-x",
        "/etc/x.conf",
        "--template",
        &needs_x,
    ]);
    let before2 = s.admin_ok(&["log", "-n", "1000", "--json"]);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "task",
                "file",
                "add",
                "web",
                "/etc/a.conf",
                "--template",
                &bad_syntax,
            ],
            "template '/etc/a.conf': line 2, column",
        ),
        (
            vec![
                "task",
                "file",
                "add",
                "web",
                "/etc/a.conf",
                "--template",
                &undefined,
            ],
            "template '/etc/a.conf' for host 'web1.example.com': line 2, column 9: field `nope` is not defined",
        ),
        (
            vec![
                "task",
                "file",
                "add",
                "web",
                "etc/a.conf",
                "--template",
                &ok,
            ],
            "invalid file path 'etc/a.conf': must be absolute",
        ),
        (
            vec![
                "task",
                "file",
                "add",
                "web",
                "/etc/../a.conf",
                "--template",
                &ok,
            ],
            "'.' and '..' are not allowed",
        ),
        (
            vec![
                "task",
                "file",
                "add",
                "web",
                "/etc/a.conf",
                "--template",
                &big,
            ],
            "larger than 1048576 bytes",
        ),
        (
            vec!["assign", A, "other"],
            "file '/etc/nginx/conf.d/site.conf' is shipped by both task 'other' and task 'web'",
        ),
        (vec!["assign", A, "needs-x"], "field `x` is not defined"),
        (vec!["var", "unset", "port"], "field `port` is not defined"),
        (
            vec!["task", "file", "rm", "web", "/etc/none"],
            "task 'web': no file '/etc/none'",
        ),
        (
            vec![
                "task",
                "file",
                "add",
                "web",
                "/etc/b.conf",
                "--template",
                &ok,
                "--mode",
                "99",
            ],
            "expected an octal mode",
        ),
        (
            vec![
                "task",
                "file",
                "add",
                "web",
                "/etc/a$(reboot).conf",
                "--template",
                &ok,
            ],
            "contains '$'",
        ),
        (
            vec![
                "task",
                "file",
                "add",
                "web",
                "/etc/apt/sources.list.d/umc.sources",
                "--template",
                &ok,
            ],
            "reserved for the umc-node package",
        ),
        (
            vec![
                "task",
                "file",
                "add",
                "web",
                "/etc/nginx/nginx.conf.umc-orig",
                "--template",
                &ok,
            ],
            "names a file dpkg or umc keep beside a configuration file",
        ),
        (
            vec!["node", "set", A, "--url", "ftp://umc.example.com"],
            "must start with http:// or https://",
        ),
        (
            vec!["node", "enroll", A, "--url", "http://u:p@umc.example.com"],
            "must not carry credentials",
        ),
        (
            vec!["node", "set", A, "--conffiles", "server-loses"],
            "invalid conffile policy 'server-loses'",
        ),
    ];
    for (args, want) in &cases {
        let out = s.admin(args);
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
    }
    assert_eq!(
        s.admin_ok(&["log", "-n", "1000", "--json"]),
        before2,
        "nothing was committed"
    );
    assert_eq!(s.admin_ok(&["task", "show", "web", "--json"]), before.0);
    assert_eq!(s.admin_ok(&["var", "list", "--json"]), before.2);
}

#[test]
fn lintian_accepts_a_task_package_with_files() {
    if !(require_tool("apt-get") && require_tool("lintian")) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let s = fleet(tmp.path());
    let apt = Apt::new(&s.url, A, &s.node_token(A), &s.keyring());
    apt.update_ok();
    let files = apt.download(&["umc-task-web"]);
    let out = Command::new("lintian")
        .args(["--fail-on", "none", "--tag-display-limit", "0"])
        .args(&files)
        .output()
        .expect("lintian");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("lintian:\n{text}");
    assert!(!text.lines().any(|l| l.starts_with("E:")), "{}", show(&out));
}
