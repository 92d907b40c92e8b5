//! Template budgets (security review #6): a render has a deadline and a memory limit, no render
//! holds the store's writer, and the Tera 2 abilities the review found closed stay closed.

use crate::common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{Resp, Server};
use serde_json::json;

const A: &str = "web1.example.com";
const B: &str = "web2.example.com";

/// The tests that keep a core busy for seconds take turns, so that one does not slow the
/// other's timed requests.
static BUSY: Mutex<()> = Mutex::new(());

/// The review's string doubling: `n` rounds build a 2^n-byte string in memory.
fn doubling(n: u32) -> String {
    format!(
        "{{% set_global s = \"x\" %}}{{% for i in range(end={n}) %}}{{% set_global s = s ~ s %}}{{% endfor %}}{{{{ s | length }}}}"
    )
}

/// Nested loops that print nothing: `outer` × `inner` iterations of pure CPU.
fn loops(outer: u32, inner: u32) -> String {
    format!(
        "{{% for i in range(end={outer}) %}}{{% for j in range(end={inner}) %}}{{% endfor %}}{{% endfor %}}"
    )
}

/// How much slower than one free core this machine runs now: 1 unless the load average is
/// above the number of cores. The time bounds below (the issue's: refused within 2 s, held up
/// by at most 100 ms) hold for a test that has a core; on an oversubscribed machine they
/// stretch by this factor, still far below what the old umcd took (45 s for a report).
fn slowdown() -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let load: f64 = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    (load / cores).max(1.0)
}

fn edit(s: &Server, ops: serde_json::Value) -> Resp {
    let body = serde_json::to_vec(&json!({ "ops": ops })).expect("json");
    s.api("POST", "/api/v1/edit", Some(&body))
}

fn file_add(s: &Server, task: &str, path: &str, template: &str) -> Resp {
    edit(
        s,
        json!([{ "op": "task_file_add", "task": task, "path": path, "template": template }]),
    )
}

/// Node A with task `t` (no files yet), node B with task `u` and one small template.
fn fleet() -> Server {
    let s = Server::start();
    s.admin_ok(&["node", "add", A]);
    s.admin_ok(&["node", "add", B]);
    s.admin_ok(&["task", "add", "t"]);
    s.admin_ok(&["task", "add", "u"]);
    s.admin_ok(&["assign", A, "t"]);
    s.admin_ok(&["assign", B, "u"]);
    let r = file_add(
        &s,
        "u",
        "/etc/u.conf",
        "zone={{ vars.zone | default(value=\"none\") }}\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    s
}

fn log(s: &Server) -> String {
    s.admin_ok(&["log", "-n", "1000", "--json"])
}

#[test]
fn hostile_templates_are_refused_in_time_and_change_nothing() {
    let _turn = BUSY.lock().unwrap_or_else(|e| e.into_inner());
    let s = fleet();
    let before = (log(&s), s.admin_ok(&["task", "show", "t", "--json"]));
    let memory = "needed more than 64 MiB of memory, the limit for one file";
    let time = "took more than 1 s, the limit for one file";
    let kib = "x".repeat(1024);
    let in_time = Duration::from_secs(2).mul_f64(slowdown());
    let cases: Vec<(String, &str)> = vec![
        // Aborted umcd with a 2 GiB allocation failure.
        (doubling(33), memory),
        // Was accepted, and every render of the host built a 64 MiB string.
        (doubling(26), memory),
        // Took 3.4 s under the writer.
        (loops(100_000, 300), time),
        (loops(100_000, 100_000), time),
        // Memory the output cap never sees: a filter section and a `set` block buffer their
        // body (10 TB if they ran to the end).
        (
            format!(
                "{{% filter upper %}}{{% for i in range(end=100000) %}}{{% for j in range(end=100000) %}}{kib}{{% endfor %}}{{% endfor %}}{{% endfilter %}}"
            ),
            memory,
        ),
        (
            format!(
                "{{% set big %}}{{% for i in range(end=100000) %}}{{% for j in range(end=100000) %}}{kib}{{% endfor %}}{{% endfor %}}{{% endset %}}{{{{ big | length }}}}"
            ),
            memory,
        ),
    ];
    for (template, want) in &cases {
        let started = Instant::now();
        let r = file_add(&s, "t", "/etc/bomb.conf", template);
        let took = started.elapsed();
        eprintln!("{template}: {} after {took:?}: {}", r.status, r.text());
        assert_eq!(r.status, 422, "{template}: {}", r.text());
        let text = r.text();
        assert!(
            text.contains(&format!("template '/etc/bomb.conf' for host '{A}': ")),
            "{template}: {text}"
        );
        assert!(text.contains(want), "{template}: want {want:?} in {text}");
        assert!(
            took < in_time,
            "{template}: refused after {took:?} (allowed: {in_time:?})"
        );
    }
    // The model is unchanged and umcd still serves.
    assert_eq!(log(&s), before.0, "nothing was committed");
    assert_eq!(s.admin_ok(&["task", "show", "t", "--json"]), before.1);
    assert!(
        std::path::Path::new(&format!("/proc/{}", s.pid())).exists(),
        "umcd is still running"
    );
    // The budget leaves room for real work: 10^5 iterations, a 16 MiB string.
    for ok in [
        loops(1000, 100),
        doubling(24),
        "{% for i in range(end=100000) %}{% endfor %}{{ host.name }}".into(),
    ] {
        let r = file_add(&s, "t", "/etc/ok.conf", &ok);
        assert_eq!(r.status, 200, "{ok}: {}", r.text());
    }
}

/// A report of A's as umc-cycle posts it (the versions need not match for it to be stored).
fn post_report(s: &Server, token: &str) -> Resp {
    let host_package = format!("umc-{A}");
    let report = common::report::report(&[("umc-node", "1.1"), (&host_package, "1.1")]);
    s.post_report(A, (A, token), report.as_bytes())
}

/// A small edit that renders B's template (in a worker of its own).
fn small_edit(s: &Server, zone: &str) -> Resp {
    edit(
        s,
        json!([{ "op": "node_set", "host": B, "set_vars": { "zone": zone } }]),
    )
}

/// `umc-admin apply` of the fleet as it is plus a hostile file for task `t` (on node A), as
/// `POST /api/v1/apply` with the file's text.
fn hostile_apply(s: &Server, template: &str) -> Resp {
    let fleet = format!(
        "{}\n[tasks.t.files.\"/etc/bomb.conf\"]\nmode = \"0644\"\ntemplate = '''{template}'''\n",
        s.admin_ok(&["export"])
    );
    let body = serde_json::to_vec(&json!({ "name": "fleet.toml", "text": fleet })).expect("json");
    s.api("POST", "/api/v1/apply", Some(&body))
}

/// While `hostile` (an edit whose template runs to its budget: a second of rendering, then
/// refused) is checked, a node report and a small edit are each answered within 100 ms of
/// their unloaded time.
fn neither_reports_nor_edits_wait_for(hostile: fn(&Server, &str) -> Resp) {
    let _turn = BUSY.lock().unwrap_or_else(|e| e.into_inner());
    let s = fleet();
    let token = s.node_token(A);
    // Unloaded times, for the report.
    let started = Instant::now();
    assert_eq!(post_report(&s, &token).status, 200);
    let report_alone = started.elapsed();
    let started = Instant::now();
    assert_eq!(small_edit(&s, "z0").status, 200);
    let edit_alone = started.elapsed();

    std::thread::scope(|scope| {
        // The review's hostile edit (3.4 s under the writer before).
        let hostile = scope.spawn(|| {
            let started = Instant::now();
            let r = hostile(&s, &loops(100_000, 300));
            (r, started, Instant::now())
        });
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let r = post_report(&s, &token);
        let report_took = started.elapsed();
        assert_eq!(r.status, 200, "{}", r.text());
        let started = Instant::now();
        let r = small_edit(&s, "z1");
        let edit_took = started.elapsed();
        let edit_done = Instant::now();
        assert_eq!(r.status, 200, "{}", r.text());
        let (r, hostile_started, hostile_done) = hostile.join().expect("hostile edit");
        eprintln!(
            "report {report_took:?} (alone {report_alone:?}), edit {edit_took:?} (alone {edit_alone:?}), hostile edit refused after {:?}",
            hostile_done - hostile_started
        );
        assert_eq!(r.status, 422, "{}", r.text());
        assert!(r.text().contains("the limit for one file"), "{}", r.text());
        // Both were answered while the hostile template was still rendering, neither held up
        // by more than 100 ms (before, both waited for the whole render under the writer).
        assert!(
            edit_done < hostile_done,
            "the small edit waited for the hostile one"
        );
        let held_up = Duration::from_millis(100).mul_f64(slowdown());
        assert!(
            report_took < report_alone + held_up,
            "the report took {report_took:?}, {report_alone:?} alone"
        );
        assert!(
            edit_took < edit_alone + held_up,
            "the edit took {edit_took:?}, {edit_alone:?} alone"
        );
    });
    // The small edit committed; the hostile one did not.
    let shown = s.admin_ok(&["node", "show", B, "--json"]);
    assert!(shown.contains("z1"), "{shown}");
    assert!(
        !s.admin_ok(&["task", "show", "t", "--json"])
            .contains("bomb")
    );
}

#[test]
fn a_template_being_checked_holds_up_neither_reports_nor_edits() {
    neither_reports_nor_edits_wait_for(|s, template| file_add(s, "t", "/etc/bomb.conf", template));
}

/// The same through `apply`, which rendered holding the writer until the two edit pipelines
/// became one.
#[test]
fn a_template_being_applied_holds_up_neither_reports_nor_edits() {
    neither_reports_nor_edits_wait_for(hostile_apply);
}

/// The review's "What held up" list for Tera 2, kept true.
#[test]
fn tera_abilities_stay_closed() {
    let s = fleet();
    let before = log(&s);
    let cases: &[(&str, &str)] = &[
        ("{{ get_env(name=\"HOME\") }}", "get_env"),
        ("{{ now() }}", "now"),
        ("{{ get_random(end=10) }}", "get_random"),
        ("{{ load_data(path=\"/etc/passwd\") }}", "load_data"),
        ("{% include \"/etc/passwd\" %}", "/etc/passwd"),
        ("{% include \"/etc/self.conf\" %}", "ircular"),
        ("{% extends \"/etc/self.conf\" %}", "ircular"),
        ("{% import \"macros\" as m %}", "unknown tag"),
        (
            "{% for i in range(end=1000000) %}{% endfor %}",
            "exceeds the limit of 100000",
        ),
        ("{{ throw(message=\"stop here\") }}", "stop here"),
    ];
    for (template, want) in cases {
        let r = file_add(&s, "t", "/etc/self.conf", template);
        eprintln!("{template}: {} {}", r.status, r.text());
        assert_eq!(r.status, 422, "{template}: {}", r.text());
        assert!(
            r.text().to_lowercase().contains(&want.to_lowercase()),
            "{template}: want {want:?} in {}",
            r.text()
        );
    }
    assert_eq!(log(&s), before, "nothing was committed");

    // The whole context: host, vars, tasks and node (with ssh), and no token anywhere.
    s.admin_ok(&["node", "set", A, "--ssh", "root@192.0.2.1:2222"]);
    let r = file_add(&s, "t", "/etc/context.json", "{{ __tera_context }}");
    assert_eq!(r.status, 200, "{}", r.text());
    let shown = s.admin_ok(&["render", A, "/etc/context.json", "--json"]);
    let file: umc::api::RenderedFile = serde_json::from_str(&shown).expect("json");
    let dump = file.content;
    for key in ["host", "vars", "tasks", "node", "ssh", "192.0.2.1"] {
        assert!(dump.contains(key), "{key} missing from {dump}");
    }
    let token = s.node_token(A);
    assert!(!dump.contains(&token), "the node token leaked: {dump}");
    assert!(!dump.contains(&s.token()), "the admin token leaked: {dump}");
    assert!(!dump.to_lowercase().contains("token"), "{dump}");
}

/// An import is checked like an edit: a hostile template in an export is refused, and the
/// server stays empty.
#[test]
fn an_import_is_held_to_the_budget() {
    let _turn = BUSY.lock().unwrap_or_else(|e| e.into_inner());
    let s = fleet();
    let r = file_add(&s, "t", "/etc/mark.conf", "{{ host.name }}MARK\n");
    assert_eq!(r.status, 200, "{}", r.text());
    let export = s.admin_ok(&["export", "--with-secrets", "--history"]);
    assert!(export.contains("{{ host.name }}MARK"), "{export}");
    let hostile = export.replace("{{ host.name }}MARK", &doubling(33));
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("e.toml");
    std::fs::write(&file, hostile).expect("write export");

    let fresh = Server::start();
    let started = Instant::now();
    let out = fresh.admin(&["import", &file.display().to_string()]);
    let took = started.elapsed();
    let said = common::show(&out);
    eprintln!("import refused after {took:?}: {said}");
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("template '/etc/mark.conf' for host 'web1.example.com': rendering needed more than 64 MiB of memory"),
        "{said}"
    );
    assert_eq!(fresh.admin_ok(&["node", "list", "--json"]).trim(), "[]");
    // The export as it was still imports.
    std::fs::write(&file, &export).expect("write export");
    fresh.admin_ok(&["import", &file.display().to_string()]);
}
