//! Fleet files against a real umcd and the real umc-admin: export, apply (dry run, idempotence,
//! errors with lines), import into a wiped server (byte-identical packages, versions that keep
//! increasing, checked with dpkg), rollback and diff.

use crate::common;

use common::{Server, show, version_gt, write_file};

const HOST: &str = "web1.example.com";

const FLEET: &str = r#"[umc]
format = 1

[vars]
domain = "example.com"

[tasks.base]
description = "Base system"
depends = ["htop", "curl"]
removes = []
includes = []

[tasks.web]
description = "Web server"
depends = ["nginx"]
removes = ["apache2"]
includes = ["base"]

[tasks.web.files."/etc/motd"]
mode = "0644"
template = '''
Welcome to {{ host.fqdn }} in {{ vars.domain }}
'''

[nodes."web1.example.com"]
tasks = ["web"]
ssh = "root@192.0.2.10:22"
[nodes."web1.example.com".vars]
role = "front"
"#;

fn packages(s: &Server) -> String {
    let token = s.node_token(HOST);
    s.get(
        &format!("/hosts/{HOST}/dists/umc/main/binary-amd64/Packages"),
        Some((HOST, &token)),
        &[],
    )
    .text()
}

/// `package -> version` of a Packages file.
fn versions(packages: &str) -> std::collections::BTreeMap<String, (String, String)> {
    let mut out = std::collections::BTreeMap::new();
    for st in packages.split("\n\n") {
        let field = |f: &str| {
            st.lines()
                .find_map(|l| l.strip_prefix(&format!("{f}: ")))
                .map(str::to_string)
        };
        if let (Some(p), Some(v), Some(h)) = (field("Package"), field("Version"), field("SHA256")) {
            out.insert(p, (v, h));
        }
    }
    out
}

#[test]
fn apply_dry_run_twice_and_errors_with_lines() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tmp");
    let file = write_file(dir.path(), "fleet.toml", FLEET);

    let dry = s.admin_ok(&["apply", &file, "--dry-run"]);
    assert!(dry.contains("added node 'web1.example.com'"), "{dry}");
    assert!(dry.contains("dry run: nothing was changed"), "{dry}");
    assert!(
        s.admin_ok(&["node", "list"]).lines().count() <= 1,
        "dry run wrote"
    );
    assert!(s.admin_ok(&["log"]).trim().is_empty() || !s.admin_ok(&["log"]).contains("web1"));

    let first = s.admin_ok(&["apply", &file]);
    assert!(
        first.contains("assigned task 'web' to node 'web1.example.com'"),
        "{first}"
    );
    let generation = first.lines().last().expect("line").to_string();
    let again = s.admin_ok(&["apply", &file]);
    assert!(again.contains("nothing to change"), "{again}");

    // The export applies as a no-op, and renders what the file said.
    let exported = s.admin_ok(&["export"]);
    assert!(!exported.contains("token = "), "{exported}");
    assert!(
        exported.contains("Welcome to {{ host.fqdn }} in {{ vars.domain }}"),
        "{exported}"
    );
    let efile = write_file(dir.path(), "exported.toml", &exported);
    assert!(s.admin_ok(&["apply", &efile]).contains("nothing to change"));
    assert_eq!(
        s.admin_ok(&["render", HOST, "/etc/motd"]).trim(),
        "Welcome to web1.example.com in example.com"
    );

    // A small change: one line, one generation.
    let changed = FLEET
        .replace("\"htop\", \"curl\"", "\"curl\", \"vim\"")
        .replace("role = \"front\"", "");
    let cfile = write_file(dir.path(), "changed.toml", &changed);
    let out = s.admin_ok(&["apply", &cfile]);
    assert!(out.contains("removed dependency 'htop'"), "{out}");
    assert!(out.contains("added dependency 'vim'"), "{out}");
    assert!(out.contains("unset variable 'role'"), "{out}");
    assert_ne!(out.lines().last().expect("gen").to_string(), generation);
    let back = s.admin_ok(&["export"]);
    assert!(back.contains("depends = [\"curl\", \"vim\"]"), "{back}");

    // Every problem, with its line; nothing changes.
    let bad = changed
        .replace("includes = []", "includes = [\"web\"]")
        .replace("tasks = [\"web\"]", "tasks = [\"web\", \"dbx\"]")
        .replace("in {{ vars.domain }}", "in {{ vars.domain ");
    let bfile = write_file(dir.path(), "bad.toml", &bad);
    let out = s.admin(&["apply", &bfile]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let line_of = |needle: &str| {
        bad.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .expect("needle")
    };
    assert!(
        err.contains(&format!(
            "bad.toml:{}: node 'web1.example.com': unknown task 'dbx'",
            line_of("[nodes.\"web1")
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "bad.toml:{}: task 'base': includes form a cycle",
            line_of("[tasks.base]")
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "bad.toml:{}: task 'web': template '/etc/motd': line 1",
            line_of("Welcome to")
        )),
        "{err}"
    );
    assert!(
        err.contains("3 problems") || err.contains("4 problems"),
        "{err}"
    );
    assert_eq!(
        s.admin_ok(&["export"]),
        back,
        "a rejected apply changed the model"
    );
}

#[test]
fn templates_with_triple_quotes_round_trip() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tmp");
    s.admin_ok(&["task", "add", "t"]);
    let tpl = write_file(dir.path(), "tpl", "a '''quoted''' line\n\ttab\n");
    s.admin_ok(&[
        "task",
        "file",
        "add",
        "t",
        "/etc/q.conf",
        "--template",
        &tpl,
    ]);
    let out = s.admin_ok(&["export"]);
    let file = write_file(dir.path(), "f.toml", &out);
    assert!(
        s.admin_ok(&["apply", &file]).contains("nothing to change"),
        "{out}"
    );
    assert_eq!(s.admin_ok(&["export"]), out);
}

#[test]
fn import_round_trip_and_versions_keep_increasing() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let mut s = Server::start_in(&data);
    let file = write_file(dir.path(), "fleet.toml", FLEET);
    s.admin_ok(&["apply", &file]);
    s.admin_ok(&["var", "set", "domain=example.org"]);
    let before = packages(&s);
    let token = s.node_token(HOST);
    let export = s.admin_ok(&["export", "--with-secrets", "--history"]);
    assert!(export.contains(&token));
    assert!(
        s.admin(&["import", &write_file(dir.path(), "e.toml", &export)])
            .status
            .code()
            == Some(1),
        "import into a non-empty server"
    );
    let plain = write_file(dir.path(), "plain.toml", &s.admin_ok(&["export"]));

    // Wipe the database (the signing key stays), import.
    s.stop();
    std::fs::remove_file(data.join("umc.redb")).expect("wipe");
    // umcd refuses a data dir whose admin.token outlived its database.
    std::fs::remove_file(data.join("admin.token")).expect("wipe the admin token");
    let s = Server::start_in(&data);
    let out = s.admin(&["import", &plain]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(show(&out).contains("--with-secrets"), "{}", show(&out));
    s.admin_ok(&["import", &write_file(dir.path(), "e.toml", &export)]);
    assert_eq!(
        s.admin_ok(&["export", "--with-secrets", "--history"]),
        export
    );
    assert_eq!(s.node_token(HOST), token);
    let after = packages(&s);
    assert_eq!(
        after, before,
        "packages changed across export, wipe and import"
    );
    let debs = versions(&after);
    for (pkg, (_, _)) in &debs {
        let st = after
            .split("\n\n")
            .find(|st| st.contains(&format!("Package: {pkg}\n")))
            .expect("stanza");
        let name = st
            .lines()
            .find_map(|l| l.strip_prefix("Filename: "))
            .expect("filename");
        let a = s
            .get(&format!("/hosts/{HOST}/{name}"), Some((HOST, &token)), &[])
            .body;
        use sha2::Digest;
        assert_eq!(hex::encode(sha2::Sha256::digest(&a)), debs[pkg].1);
    }

    // One more edit: the changed packages move above everything served before.
    s.admin_ok(&["var", "set", "domain=example.net"]);
    let next = versions(&packages(&s));
    let old = versions(&before);
    let mut moved = 0;
    for (pkg, (v, h)) in &next {
        let (ov, oh) = &old[pkg];
        if h != oh {
            moved += 1;
            assert!(version_gt(v, ov), "{pkg}: {v} is not above {ov}");
        } else {
            assert_eq!(v, ov);
        }
        assert!(!version_gt(ov, v), "{pkg}: downgrade {ov} -> {v}");
    }
    assert!(moved >= 1, "the edit moved no package");
}

#[test]
fn rollback_and_diff() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tmp");
    s.admin_ok(&["apply", &write_file(dir.path(), "fleet.toml", FLEET)]);
    let good = s.admin_ok(&["export"]);
    let good_gen: u64 = good
        .lines()
        .find_map(|l| l.strip_prefix("generation = "))
        .expect("generation")
        .parse()
        .expect("number");
    let good_packages = versions(&packages(&s));
    // A bad change: a task removed, a dependency swapped, the node's token kept.
    let token = s.node_token(HOST);
    s.admin_ok(&["task", "undepend", "web", "nginx"]);
    s.admin_ok(&["task", "rm", "base"]);
    let diff = s.admin_ok(&["diff", &good_gen.to_string(), &(good_gen + 2).to_string()]);
    assert!(diff.contains("removed dependency 'nginx'"), "{diff}");
    assert!(diff.contains("removed task 'base'"), "{diff}");
    assert!(!diff.contains("User '"), "a diff names no user: {diff}");

    let out = s.admin_ok(&["rollback", "--to", &good_gen.to_string(), "--dry-run"]);
    assert!(out.contains("dry run"), "{out}");
    let out = s.admin_ok(&["rollback", "--to", &good_gen.to_string()]);
    assert!(
        out.contains(&format!("rolled back to generation {good_gen}")),
        "{out}"
    );
    assert!(out.contains("added task 'base'"), "{out}");
    // The model equals the old one except for counters.
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.contains("generation"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&s.admin_ok(&["export"])), strip(&good));
    assert_eq!(s.node_token(HOST), token);
    // Same content as before, at higher versions.
    let now = versions(&packages(&s));
    for (pkg, (v, _)) in &now {
        if let Some((ov, _)) = good_packages.get(pkg) {
            assert!(!version_gt(ov, v), "{pkg}: downgrade {ov} -> {v}");
        }
    }
    assert!(version_gt(
        &now["umc-task-base"].0,
        &good_packages["umc-task-base"].0
    ));
    let out = s.admin(&["rollback", "--to", "999999"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
}

/// Review finding 9: `import` is checked like an edit. Each bad export from the review is
/// refused with an error that names the problem, and the server stays empty; the good export
/// then imports, and the log, InRelease and the next edit work.
#[test]
fn import_refuses_bad_counters_times_users_and_templates() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let mut s = Server::start_in(&data);
    s.admin_ok(&["apply", &write_file(dir.path(), "fleet.toml", FLEET)]);
    let export = s.admin_ok(&["export", "--with-secrets", "--history"]);
    s.stop();
    std::fs::remove_file(data.join("umc.redb")).expect("wipe");
    // umcd refuses a data dir whose admin.token outlived its database.
    std::fs::remove_file(data.join("admin.token")).expect("wipe the admin token");
    let s = Server::start_in(&data);
    let empty = s.admin_ok(&["export"]);
    assert!(!empty.contains("[nodes."), "{empty}");

    let line = |prefix: &str| {
        export
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no '{prefix}' line in\n{export}"))
            .to_string()
    };
    let generation = line("generation = ");
    let time = line("time = ");
    let user = line("user = ");
    let cases = [
        (
            "u64::MAX generation",
            export.replace(
                &format!("{generation}\n"),
                &format!("generation = {}\n", u64::MAX),
            ),
            "beyond any counter umcd writes",
        ),
        (
            "far-future time",
            export.replace(&time, "time = 400000000000"),
            "time 400000000000 is in the future",
        ),
        (
            "template that does not render",
            export.replace("{{ host.fqdn }}", "{{ vars.missing }}"),
            "missing",
        ),
        (
            "history user with '<' and a newline",
            export.replace(&user, r#"user = "evil <x>\nfoo""#),
            "must be non-empty without '<', '>' or control characters",
        ),
    ];
    for (what, text, expect) in cases {
        assert_ne!(text, export, "{what}: the case changed nothing");
        let out = s.admin(&["import", &write_file(dir.path(), "bad.toml", &text)]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", show(&out));
        assert!(show(&out).contains(expect), "{what}: {}", show(&out));
        assert_eq!(s.admin_ok(&["export"]), empty, "{what}: the server changed");
    }

    s.admin_ok(&["import", &write_file(dir.path(), "e.toml", &export)]);
    assert!(s.admin_ok(&["log"]).contains("generation "));
    let token = s.node_token(HOST);
    let r = s.get(
        &format!("/hosts/{HOST}/dists/umc/InRelease"),
        Some((HOST, &token)),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    s.admin_ok(&["var", "set", "domain=example.net"]);
    assert_eq!(
        s.get(
            &format!("/hosts/{HOST}/dists/umc/InRelease"),
            Some((HOST, &token)),
            &[]
        )
        .status,
        200
    );
}
