//! Disk and database faults (security review #4, #5, #14, #15): a full disk, an empty or corrupt
//! database, a database damaged while umcd runs, file modes, and a failed restore.
//!
//! The full-disk test mounts a small tmpfs, so it needs root: it skips locally without, and
//! fails in CI (CI=true), like a missing tool.

use crate::common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::report::Report;
use common::{Resp, Server, UMCD, is_root, mode, require, restore, show};
use umc::api::{EditRequest, EditResponse, LogEntry, Op};

const A: &str = "a.example.com";

fn edit(s: &Server, ops: Vec<Op>) -> Resp {
    let body = serde_json::to_vec(&EditRequest { ops, force: true }).expect("json");
    s.api("POST", "/api/v1/edit", Some(&body))
}

/// Adds node `host` (no variables, no SSH target).
fn node_add(host: &str) -> Op {
    Op::NodeAdd {
        host: host.into(),
        vars: Default::default(),
        ssh: None,
    }
}

fn edit_ok(s: &Server, ops: Vec<Op>) -> u64 {
    let r = edit(s, ops);
    assert_eq!(r.status, 200, "edit: {}", r.text());
    let e: EditResponse = serde_json::from_slice(&r.body).expect("edit response");
    e.generation
}

/// Adds task `name` with one file whose template is `size` bytes that do not compress or
/// repeat (so no sharing of equal content makes it small).
fn add_task_with_file(name: &str, size: usize, seed: u64) -> Vec<Op> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut template = String::with_capacity(size + 80);
    while template.len() < size {
        // xorshift: cheap, deterministic noise
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        template.push_str(&format!("# {x:016x}{x:016x}{x:016x}{x:016x}\n"));
    }
    vec![
        Op::TaskAdd {
            task: name.into(),
            description: None,
        },
        Op::TaskFileAdd {
            task: name.into(),
            path: format!("/etc/{name}/data.conf"),
            template,
            mode: None,
            reload: None,
            restart: None,
        },
    ]
}

fn log_generations(s: &Server) -> Vec<u64> {
    let r = s.api("GET", "/api/v1/log?limit=10000", None);
    assert_eq!(r.status, 200, "log: {}", r.text());
    let log: Vec<LogEntry> = serde_json::from_slice(&r.body).expect("log json");
    log.iter().map(|e| e.generation).collect()
}

fn healthz(s: &Server) -> Resp {
    s.get("/healthz", None, &[])
}

/// A tmpfs of `size` at `dir`, unmounted when dropped (lazily, so a failed test still
/// unmounts it even if something still has a file open there).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(out.status.success(), "mount tmpfs: {}", show(&out));
        Tmpfs(dir.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .expect("run mount");
        assert!(out.status.success(), "remount: {}", show(&out));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `dir` completely with one file.
fn fill(dir: &Path) {
    let mut f = std::fs::File::create(dir.join("filler")).expect("filler");
    let chunk = vec![0x5au8; 64 << 10];
    // Bounded: the tmpfs is small.
    for _ in 0..100_000 {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = f.sync_all();
}

#[test]
fn a_full_disk_keeps_reads_and_writes_come_back_without_a_restart() {
    if !common::require_tool("mount") || !require(is_root(), "root (to mount a tmpfs)") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let fs = Tmpfs::mount(&tmp.path().join("small"), "24m");
    let data = fs.0.join("data");
    let mut s = Server::start_in(&data);
    let mut acked = vec![edit_ok(&s, vec![node_add(A)])];
    let token = s.node_token(A);
    acked.push(edit_ok(&s, add_task_with_file("web", 2_000, 1)));
    acked.push(edit_ok(
        &s,
        vec![Op::Assign {
            host: A.into(),
            tasks: vec!["web".into()],
        }],
    ));
    fill(&fs.0);

    // Edits with 300 KB templates until one fails: the disk is full.
    let mut failed = None;
    for i in 0..40 {
        let r = edit(
            &s,
            add_task_with_file(&format!("fill{i}"), 300_000, 100 + i),
        );
        if r.status == 200 {
            let e: EditResponse = serde_json::from_slice(&r.body).expect("edit response");
            acked.push(e.generation);
        } else {
            failed = Some(r);
            break;
        }
    }
    let failed = failed.expect("an edit failed on the full disk");
    assert!(
        failed.status >= 500,
        "a failed write is a server error: {} {}",
        failed.status,
        failed.text()
    );

    // /healthz says so, with the reason.
    let h = healthz(&s);
    assert_eq!(h.status, 503, "healthz while writes fail: {}", h.text());
    assert!(
        h.text().contains("No space left on device"),
        "healthz gives the reason: {}",
        h.text()
    );

    // Reads still answer: the API and a node's repository (rendered from the database now:
    // nothing of this generation is cached).
    let r = s.api("GET", "/api/v1/nodes", None);
    assert_eq!(r.status, 200, "nodes while the disk is full: {}", r.text());
    assert!(r.text().contains(A));
    let r = s.get(
        &format!("/hosts/{A}/dists/umc/InRelease"),
        Some((A, &token)),
        &[],
    );
    assert_eq!(
        r.status,
        200,
        "InRelease while the disk is full: {}",
        r.text()
    );
    assert!(r.text().contains("BEGIN PGP SIGNED MESSAGE"));
    let gens = log_generations(&s);
    for g in &acked {
        assert!(gens.contains(g), "acknowledged generation {g} is readable");
    }

    // Space comes back: the next edit and a node report succeed, without a restart.
    fs.resize("96m");
    acked.push(edit_ok(&s, add_task_with_file("after", 300_000, 7)));
    let r = s.post_report(A, (A, &token), Report::default().text().as_bytes());
    assert_eq!(r.status, 200, "report after space came back: {}", r.text());
    let h = healthz(&s);
    assert_eq!(h.status, 200, "healthz after recovery: {}", h.text());
    assert_eq!(h.text(), "ok\n");
    let gens = log_generations(&s);
    for g in &acked {
        assert!(gens.contains(g), "acknowledged generation {g} is present");
    }

    // And durably: after a clean restart every acknowledged generation is still there.
    assert!(s.stop().success(), "umcd stops cleanly");
    let s = Server::start_in(&data);
    let gens = log_generations(&s);
    for g in &acked {
        assert!(
            gens.contains(g),
            "acknowledged generation {g} survives a restart"
        );
    }
    drop(s);
    drop(fs);
}

/// Runs umcd on `data` expecting it to refuse to start; returns its stderr.
fn refused_start(data: &Path) -> String {
    try_refused_start(data)
        .unwrap_or_else(|| panic!("umcd started on {} instead of refusing", data.display()))
}

/// Runs umcd on `data`: its stderr when it refused to start (exit 1, no panic), None when it
/// started (it is stopped again).
fn try_refused_start(data: &Path) -> Option<String> {
    let mut child = Command::new(UMCD)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn umcd");
    // It either exits, or prints its listening line.
    let mut out = String::new();
    if let Some(o) = child.stdout.take() {
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(o), &mut out);
    }
    if out.contains("listening") {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("umcd on {} neither started nor exited", data.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert_eq!(
        status.code(),
        Some(1),
        "umcd exits 1 on {}\nstdout: {out}\nstderr: {err}",
        data.display()
    );
    assert!(!err.contains("panicked"), "a refusal, not a panic: {err}");
    Some(err)
}

/// A stopped server's data directory with some history: nodes, tasks with templates, edits.
fn populated_data(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let mut s = Server::start_in(&data);
    let mut ops = Vec::new();
    for i in 0..200 {
        ops.push(Op::NodeAdd {
            host: format!("n{i}.example.com"),
            vars: [("role".to_string(), format!("r{}", i % 5))].into(),
            ssh: None,
        });
    }
    edit_ok(&s, ops);
    for t in 0..20 {
        edit_ok(&s, add_task_with_file(&format!("t{t}"), 20_000, t));
        edit_ok(
            &s,
            (0..10)
                .map(|i| Op::Assign {
                    host: format!("n{}.example.com", t * 10 + i),
                    tasks: vec![format!("t{t}")],
                })
                .collect(),
        );
    }
    assert!(s.stop().success(), "umcd stops cleanly");
    data
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("readdir") {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

fn flip(path: &Path, offset: u64, len: usize) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open db");
    let mut buf = vec![0u8; len];
    f.seek(SeekFrom::Start(offset)).expect("seek");
    f.read_exact(&mut buf).expect("read");
    for b in &mut buf {
        *b ^= 0xff;
    }
    f.seek(SeekFrom::Start(offset)).expect("seek");
    f.write_all(&buf).expect("write");
}

#[test]
fn an_empty_missing_or_corrupt_database_is_refused_at_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let good = populated_data(tmp.path());
    let db_len = std::fs::metadata(good.join("umc.redb")).expect("db").len();
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "zero-length",
            Box::new(|db: &Path| std::fs::write(db, b"").expect("truncate")),
            "is empty (0 bytes)",
        ),
        (
            "missing with admin.token present",
            Box::new(|db: &Path| std::fs::remove_file(db).expect("rm")),
            "does not",
        ),
        (
            "half-truncated",
            Box::new(move |db: &Path| {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(db)
                    .expect("open");
                f.set_len(db_len / 2).expect("truncate");
            }),
            "umc.redb",
        ),
        (
            "tail-cut",
            Box::new(move |db: &Path| {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(db)
                    .expect("open");
                f.set_len(db_len - 1000).expect("truncate");
            }),
            "umc.redb",
        ),
        (
            "garbage",
            Box::new(move |db: &Path| {
                let junk: Vec<u8> = (0..db_len).map(|i| (i * 7919 % 251) as u8).collect();
                std::fs::write(db, junk).expect("write");
            }),
            "umc.redb",
        ),
        (
            "header-flipped",
            Box::new(|db: &Path| flip(db, 0, 512)),
            "umc.redb",
        ),
    ];
    for (name, damage, says) in cases {
        let data = tmp.path().join(name.replace(' ', "-"));
        copy_dir(&good, &data);
        damage(&data.join("umc.redb"));
        let err = refused_start(&data);
        assert!(
            err.contains("umcd: ") && err.contains(says),
            "{name}: a clear message naming the problem ({says:?}): {err}"
        );
        eprintln!("{name}: {}", err.trim());
    }

    // 4 KiB flipped in the middle (where the review saw a redb panic on every request). A
    // page nobody references (freed by copy-on-write) is harmless, so the page tried moves
    // out from the middle until it is one the database uses: that one is refused at start,
    // and every harmless one before it served without a panic.
    let middle = db_len / 2 / 4096;
    let mut refused = None;
    for step in 0..24u64 {
        let page = if step % 2 == 0 {
            middle + step / 2
        } else {
            middle - step.div_ceil(2)
        };
        let data = tmp.path().join(format!("flipped-{page}"));
        copy_dir(&good, &data);
        flip(&data.join("umc.redb"), page * 4096, 4096);
        match try_refused_start(&data) {
            Some(err) => {
                assert!(
                    err.contains("the database file is corrupt"),
                    "page {page}: a clear message: {err}"
                );
                refused = Some(page);
                eprintln!("page {page} flipped: {}", err.trim());
                break;
            }
            None => {
                let s = Server::start_in(&data);
                for path in ["/nodes", "/tasks", "/log?limit=10000"] {
                    let r = s.api("GET", &format!("/api/v1{path}"), None);
                    assert_eq!(
                        r.status,
                        200,
                        "page {page} unused, yet {path}: {}",
                        r.text()
                    );
                }
                drop(s);
                let log = std::fs::read_to_string(data.join("umcd.log")).unwrap_or_default();
                assert!(!log.contains("panicked"), "page {page}: {log}");
            }
        }
    }
    assert!(refused.is_some(), "no page near the middle is in use?");

    // The undamaged copy still starts.
    let s = Server::start_in(&good);
    assert_eq!(healthz(&s).status, 200);
}

#[test]
fn a_database_damaged_while_umcd_runs_answers_503_not_a_panic_per_request() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = populated_data(tmp.path());
    let s = Server::start_in(&data);
    // Everything but the first page (redb's header) becomes noise beneath the running umcd:
    // pages it has not read yet are now garbage.
    let db = data.join("umc.redb");
    let len = std::fs::metadata(&db).expect("db").len();
    let noise: Vec<u8> = (4096..len)
        .map(|i| ((i * 2_654_435_761) >> 13) as u8)
        .collect();
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&db)
            .expect("open db");
        f.seek(SeekFrom::Start(4096)).expect("seek");
        f.write_all(&noise).expect("write");
        f.sync_all().expect("sync");
    }
    // Reads that reach the damage, and writes: a few may fail with 500 while the damage is
    // found; after that every answer is 503, and /healthz fails with the reason.
    let mut statuses = Vec::new();
    for i in 0..20 {
        let r = s.api("GET", "/api/v1/log?limit=10000", None);
        statuses.push(r.status);
        let r = s.api("GET", &format!("/api/v1/log?task=t{}", i % 20), None);
        statuses.push(r.status);
        let r = edit(&s, add_task_with_file(&format!("late{i}"), 1_000, i));
        statuses.push(r.status);
    }
    let first_bad = statuses
        .iter()
        .position(|&c| c != 200)
        .unwrap_or_else(|| panic!("the damage was never noticed: {statuses:?}"));
    assert!(
        statuses[first_bad..].iter().filter(|&&c| c != 503).count() <= 2,
        "after the damage is found, requests get 503: {statuses:?}"
    );
    let h = healthz(&s);
    assert_eq!(h.status, 503, "healthz: {}", h.text());
    assert!(h.text().starts_with("degraded: "), "{}", h.text());
    let log = std::fs::read_to_string(data.join("umcd.log")).unwrap_or_default();
    let panics = log.matches("panicked at").count();
    // Transactions already running when the damage is found (a background prune, a request
    // on another worker) may each panic once; 60 requests must not panic 60 times.
    assert!(panics <= 3, "{panics} panics, not one per request:\n{log}");
}

#[test]
fn database_files_and_their_copies_are_0600() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Server::start_in(&tmp.path().join("data"));
    edit_ok(&s, vec![node_add(A)]);
    assert_eq!(mode(&s.data.join("umc.redb")), 0o600, "umc.redb");
    // The review's "secrets at rest": the signing key and the admin token too.
    for secret in ["signing-key.asc", "admin.token"] {
        assert_eq!(mode(&s.data.join(secret)), 0o600, "{secret}");
    }
    let backup = tmp.path().join("b.tar");
    s.admin_ok(&["backup", &backup.display().to_string()]);
    assert_eq!(mode(&backup), 0o600, "the backup file");

    // An older umcd's 0644 database is made 0600 at start.
    let mut s = s;
    assert!(s.stop().success());
    std::fs::set_permissions(
        s.data.join("umc.redb"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let s = Server::start_in(&s.data);
    assert_eq!(
        mode(&s.data.join("umc.redb")),
        0o600,
        "umc.redb after start"
    );
}

#[test]
fn a_failed_restore_leaves_nothing_behind_and_the_retry_works() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Server::start_in(&tmp.path().join("data"));
    edit_ok(&s, vec![node_add(A)]);
    let backup = tmp.path().join("b.tar");
    s.admin_ok(&["backup", &backup.display().to_string()]);
    drop(s);
    let good = std::fs::read(&backup).expect("backup");

    // A backup whose database is damaged: every file is written before opening it fails.
    let mut bad = good.clone();
    let at = tar_entry(&bad, "umc.redb") + 512;
    for b in &mut bad[at..at + 4096] {
        *b ^= 0xff;
    }
    let bad_db = tmp.path().join("bad-db.tar");
    std::fs::write(&bad_db, &bad).expect("write");
    // A backup cut short in the middle of the signing key, after the database.
    let cut = tmp.path().join("cut.tar");
    let at = tar_entry(&good, "signing-key.asc") + 512 + 100;
    std::fs::write(&cut, &good[..at]).expect("write");

    let absent = tmp.path().join("absent");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    for broken in [&bad_db, &cut] {
        for data in [&absent, &empty] {
            let out = restore(broken, data);
            assert!(
                !out.status.success(),
                "restore of {broken:?} fails: {}",
                show(&out)
            );
            // Nothing is left behind: the absent directory stays absent, the empty one empty.
            let clean = if data == &absent {
                !absent.exists()
            } else {
                list(data).is_empty()
            };
            assert!(clean, "{data:?} after a failed restore: {:?}", list(data));
        }
    }
    for data in [&absent, &empty] {
        let out = restore(&backup, data);
        assert!(out.status.success(), "the retry works: {}", show(&out));
        let s = Server::start_in(data);
        let r = s.api("GET", "/api/v1/nodes", None);
        assert!(r.text().contains(A), "{}", r.text());
    }
}

/// The offset of the tar header of entry `name`.
fn tar_entry(tar: &[u8], name: &str) -> usize {
    let mut want = name.as_bytes().to_vec();
    want.push(0);
    (0..tar.len() / 512)
        .map(|i| i * 512)
        .find(|&o| tar[o..].starts_with(&want))
        .unwrap_or_else(|| panic!("no entry {name} in the backup"))
}

fn list(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A database lost while the signing key survived (admin.token deleted too): umcd starts, but
/// as a server nodes may know, so its generations start above the current Unix time and no
/// version can go below what nodes installed from the lost database.
#[test]
fn a_new_database_beside_an_old_key_starts_above_every_old_version() {
    let mut old = Server::start();
    let first = edit_ok(&old, vec![node_add(A)]);
    assert!(first < 1_000_000, "a fresh server counts from 1: {first}");
    let data = old.data.clone();
    old.stop();
    std::fs::remove_file(data.join("umc.redb")).expect("lose the database");
    std::fs::remove_file(data.join("admin.token")).expect("and the admin token");
    let before = u64::try_from(umc::app::now()).expect("after 1970");
    let s = Server::start_in(&data);
    let g = edit_ok(&s, vec![node_add(A)]);
    assert!(
        g > before,
        "generation {g} after a lost database must lie above the Unix time {before}"
    );
}
