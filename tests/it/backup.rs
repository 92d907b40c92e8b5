//! Backup, restore and schema migrations, with the real binaries, stock apt-get and dpkg.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{Apt, Server, UMCD, mode, require_tool, restore, show, version_gt};

const HOST: &str = "grumpy.example.com";
const PACKAGES: [&str; 4] = [
    "umc-grumpy.example.com",
    "umc-node",
    "umc-task-web",
    "umc-task-base",
];

/// The `Date` of the InRelease apt keeps in its lists.
fn listed_date(apt: &Apt) -> std::time::SystemTime {
    let lists = apt.dir.path().join("var/lib/apt/lists");
    let file = std::fs::read_dir(&lists)
        .expect("lists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with("_InRelease"))
        .expect("apt keeps an InRelease");
    let text = std::fs::read_to_string(file).expect("read InRelease");
    let date = text
        .lines()
        .find_map(|l| l.strip_prefix("Date: "))
        .expect("Date field");
    httpdate::parse_http_date(&date.replace("UTC", "GMT")).expect("RFC 1123 date")
}

fn versions(apt: &Apt) -> Vec<String> {
    PACKAGES
        .iter()
        .map(|p| {
            apt.field(p, "Version")
                .unwrap_or_else(|| panic!("{p} known"))
        })
        .collect()
}

fn version_ge(a: &str, b: &str) -> bool {
    a == b || version_gt(a, b)
}

#[test]
fn restore_keeps_versions_and_dates_monotonic_for_a_node_that_saw_later_edits() {
    if !(require_tool("apt-get") && require_tool("dpkg")) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start_in(&tmp.path().join("a"));
    s.admin_ok(&["node", "add", HOST]);
    s.admin_ok(&["task", "add", "web"]);
    s.admin_ok(&["task", "add", "base"]);
    s.admin_ok(&["task", "depend", "web", "nginx-light"]);
    s.admin_ok(&["task", "depend", "base", "less"]);
    s.admin_ok(&["task", "include", "web", "base"]);
    s.admin_ok(&["assign", HOST, "web"]);
    let keys = s.keyring();
    let apt = Apt::new(&s.url, HOST, &s.node_token(HOST), &keys);
    apt.update_ok();

    // A backup while edits run concurrently: the snapshot is one transaction, whatever lands.
    let file = tmp.path().join("umc.backup");
    let writer = {
        let (url, token) = (s.url.clone(), s.token());
        std::thread::spawn(move || {
            for i in 0..15 {
                let out = Command::new(common::UMC_ADMIN)
                    .args(["var", "set", &format!("n{i}=x")])
                    .env("UMC_URL", &url)
                    .env("UMC_TOKEN", &token)
                    .output()
                    .expect("umc-admin");
                assert!(out.status.success(), "{}", show(&out));
            }
        })
    };
    let out = s.admin(&["backup", file.to_str().expect("utf-8")]);
    writer.join().expect("edits");
    assert!(out.status.success(), "backup: {}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SECRETS"),
        "{}",
        show(&out)
    );
    assert_eq!(mode(&file), 0o600, "the backup holds secrets");
    let listing = Command::new("tar")
        .arg("tf")
        .arg(&file)
        .output()
        .expect("tar");
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert_eq!(
        listing.lines().take(3).collect::<Vec<_>>(),
        ["UMC-BACKUP-CONTAINS-SECRETS", "backup.json", "umc.redb"],
        "{listing}"
    );
    assert!(listing.contains("signing-key.asc") && listing.contains("admin.token"));

    // Edits after the backup, which the node sees: a restore will lose them.
    s.admin_ok(&["task", "depend", "web", "curl"]);
    s.admin_ok(&["node", "set", HOST, "--var", "lost=yes"]);
    apt.update_ok();
    assert!(
        apt.field("umc-task-web", "Depends")
            .is_some_and(|d| d.contains("curl"))
    );
    let seen_versions = versions(&apt);
    let seen_date = listed_date(&apt);
    let url = s.url.clone();
    s.stop();

    // The node keeps its URL: the restored umcd listens where the old one did.
    let data = tmp.path().join("b");
    let out = restore(&file, &data);
    assert!(out.status.success(), "restore: {}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("every package moves above"),
        "{}",
        show(&out)
    );
    let again = restore(&file, &data);
    assert!(!again.status.success(), "a non-empty data dir is refused");
    let addr = url.strip_prefix("http://").expect("http url");
    let r = Server::start_in_with(&data, &["--listen", addr]);
    assert_eq!(r.url, url);
    assert_eq!(
        r.keyring(),
        keys,
        "the restored server signs with the same keys"
    );

    apt.update_ok();
    let date = listed_date(&apt);
    assert!(date >= seen_date, "InRelease Date went backwards");
    // The restored model arrived (apt did not silently keep its old lists): curl is gone.
    let depends = apt.field("umc-task-web", "Depends").expect("depends");
    assert!(!depends.contains("curl"), "{depends}");
    let now_versions = versions(&apt);
    for (p, (new, old)) in PACKAGES.iter().zip(now_versions.iter().zip(&seen_versions)) {
        assert!(version_gt(new, old), "{p}: {new} must be above {old}");
    }
    // A change after the restore moves above again.
    r.admin_ok(&["task", "depend", "web", "wget"]);
    apt.update_ok();
    let v = apt.field("umc-task-web", "Version").expect("version");
    assert!(version_gt(&v, &now_versions[2]), "{v}");
    assert!(version_ge(&v, &seen_versions[2]));
    assert!(listed_date(&apt) >= date);
    let log = r.admin_ok(&["log", "-n", "3"]);
    assert!(
        log.contains("umcd restored a backup taken at generation"),
        "{log}"
    );
}

/// Copies the schema-1 fixture (made by the schema-1 umcd, see the commit that added it).
fn fixture_data(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/schema-1.redb");
    std::fs::copy(&fixture, data.join("umc.redb")).expect("copy fixture");
    data
}

const META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta_v1");

fn schema_of(db: &Path) -> u64 {
    use redb::ReadableDatabase;
    let db = redb::Database::open(db).expect("open");
    let tx = db.begin_read().expect("read");
    let meta = tx.open_table(META).expect("meta");
    meta.get("schema").expect("get").expect("schema").value()
}

#[test]
fn a_schema_1_database_migrates_on_start_and_keeps_a_copy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = fixture_data(tmp.path());
    assert_eq!(schema_of(&data.join("umc.redb")), 1);
    let mut s = Server::start_in(&data);
    let log = std::fs::read_to_string(data.join("umcd.log")).expect("log");
    assert!(
        log.contains("migrated the database from schema 1 to 3"),
        "{log}"
    );
    let bak = data.join("umc.redb.schema-1.bak");
    assert_eq!(schema_of(&bak), 1, "the copy is the schema-1 database");

    // The model is intact.
    let nodes = s.admin_ok(&["node", "list"]);
    assert!(
        nodes.contains("web1.example.com") && nodes.contains("db1.example.com"),
        "{nodes}"
    );
    let web = s.admin_ok(&["node", "show", "web1.example.com"]);
    assert!(web.contains("web"), "{web}");
    let vars = s.admin_ok(&["var", "list"]);
    assert!(vars.contains("db_port"), "{vars}");
    let log = s.admin_ok(&["log", "--task", "web", "-n", "10"]);
    assert!(log.contains("nginx-light"), "{log}");
    // The new field: filled from the record's time and its slowest host (10 s).
    let runs: serde_json::Value =
        serde_json::from_str(&s.admin_ok(&["log", "--audit", "--json"])).expect("json");
    let run = &runs[0];
    assert_eq!(run["command"], "uptime");
    let (time, started) = (
        run["time"].as_i64().expect("time"),
        run["started"].as_i64().expect("started"),
    );
    assert_eq!(time - started, 10, "{run}");
    s.stop();
    assert_eq!(schema_of(&data.join("umc.redb")), 3);

    // A second start has nothing to migrate.
    let s = Server::start_in(&data);
    drop(s);
    let log = std::fs::read_to_string(data.join("umcd.log")).expect("log");
    assert_eq!(log.matches("migrated the database").count(), 1, "{log}");
}

#[test]
fn a_database_from_a_newer_schema_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = fixture_data(tmp.path());
    {
        let db = redb::Database::create(data.join("umc.redb")).expect("open");
        let tx = db.begin_write().expect("write");
        tx.open_table(META)
            .expect("meta")
            .insert("schema", 99)
            .expect("insert");
        tx.commit().expect("commit");
    }
    let out = Command::new(UMCD)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .expect("umcd");
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("database schema version 99 is newer than this umcd supports (schema 3)")
            && err.contains("newer umcd"),
        "{err}"
    );
    assert_eq!(schema_of(&data.join("umc.redb")), 99, "left alone");
    assert!(!data.join("umc.redb.schema-99.bak").exists());
}

/// Appends an entry with exactly this name (no path checks) to `out`.
fn raw_entry(
    out: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: &str,
    data: &[u8],
) {
    let mut h = tar::Header::new_ustar();
    {
        let old = h.as_old_mut();
        old.name.fill(0);
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname.fill(0);
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_size(data.len() as u64);
    h.set_mode(0o600);
    h.set_mtime(0);
    h.set_entry_type(kind);
    h.set_cksum();
    out.append(&h, data).expect("append");
}

/// The review's "what held up → backup/restore": a backup and every entry in it are 0600 (as
/// GNU tar lists them); a restore refuses `../`, absolute and symlink entries, a second
/// `umc.redb` and a backup without the signing key, leaving nothing behind and writing nothing
/// outside its target; a restored directory is 0700.
#[test]
fn backups_are_0600_and_restore_refuses_hostile_archives() {
    if !require_tool("tar") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start_in(&tmp.path().join("a"));
    s.admin_ok(&["node", "add", HOST]);
    let file = tmp.path().join("good.backup");
    s.admin_ok(&["backup", file.to_str().expect("utf-8")]);
    s.stop();
    assert_eq!(mode(&file), 0o600);
    let listing = Command::new("tar")
        .arg("tvf")
        .arg(&file)
        .output()
        .expect("tar");
    assert!(listing.status.success(), "{}", show(&listing));
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(listing.lines().count() >= 5, "{listing}");
    for line in listing.lines() {
        assert!(line.starts_with("-rw------- "), "not 0600: {line}");
    }

    // The good backup's entries, to build hostile ones from.
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut ar = tar::Archive::new(std::fs::File::open(&file).expect("open"));
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).expect("read");
        entries.push((name, data));
    }
    // A directory a careless restore could write into, and the target's parent: both exist.
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    let absolute = outside.join("absolute");
    let linked = outside.join("linked");
    type Extra<'a> = Box<dyn Fn(&mut tar::Builder<Vec<u8>>) + 'a>;
    let hostile: Vec<(&str, Extra)> = vec![
        (
            "../",
            Box::new(|b| raw_entry(b, "../escaped", tar::EntryType::Regular, "", b"x")),
        ),
        (
            "absolute",
            Box::new(|b| {
                let name = absolute.to_str().expect("utf-8");
                raw_entry(b, name, tar::EntryType::Regular, "", b"x")
            }),
        ),
        (
            "symlink",
            Box::new(|b| {
                let target = linked.to_str().expect("utf-8");
                raw_entry(b, "admin.token", tar::EntryType::Symlink, target, b"")
            }),
        ),
        (
            "duplicate umc.redb",
            Box::new(|b| {
                let db = &entries.iter().find(|(n, _)| n == "umc.redb").expect("db").1;
                raw_entry(b, "umc.redb", tar::EntryType::Regular, "", db)
            }),
        ),
    ];
    for (i, (what, extra)) in hostile.iter().enumerate() {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in &entries {
            raw_entry(&mut b, name, tar::EntryType::Regular, "", data);
            // The hostile entry goes right after the database: past the manifest, before the
            // key, where a careless restore would already be writing files.
            if name == "umc.redb" {
                extra(&mut b);
            }
        }
        let bad = tmp.path().join(format!("bad-{i}.backup"));
        std::fs::write(&bad, b.into_inner().expect("tar")).expect("write");
        let parent = tmp.path().join(format!("r{i}"));
        std::fs::create_dir(&parent).expect("mkdir");
        let target = parent.join("data");
        let out = restore(&bad, &target);
        assert!(!out.status.success(), "{what} was restored: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        let want = if *what == "duplicate umc.redb" {
            "umc.redb: File exists"
        } else {
            "not a umc backup: unexpected entry"
        };
        assert!(err.contains(want), "{what}: want {want:?} in {err}");
        assert!(!target.exists(), "{what}: {target:?} left behind");
        let written: Vec<_> = std::fs::read_dir(&outside)
            .expect("readdir")
            .chain(std::fs::read_dir(&parent).expect("readdir"))
            .collect();
        assert!(written.is_empty(), "{what}: wrote outside: {written:?}");
    }
    // Without the signing key.
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries.iter().filter(|(n, _)| n != "signing-key.asc") {
        raw_entry(&mut b, name, tar::EntryType::Regular, "", data);
    }
    let keyless = tmp.path().join("keyless.backup");
    std::fs::write(&keyless, b.into_inner().expect("tar")).expect("write");
    let target = tmp.path().join("keyless");
    let out = restore(&keyless, &target);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("signing-key.asc is missing"),
        "{}",
        show(&out)
    );
    assert!(!target.exists());

    // The good one restores into a 0700 directory of 0600 files.
    let target = tmp.path().join("restored");
    let out = restore(&file, &target);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(mode(&target), 0o700);
    for e in std::fs::read_dir(&target).expect("readdir") {
        let p = e.expect("entry").path();
        assert_eq!(mode(&p), 0o600, "{p:?}");
    }
}
