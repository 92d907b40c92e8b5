//! Node reports and fleet status through umcd's HTTP API and umc-admin: states, bad reports,
//! `umc-admin status` and the `check` plugin. The chroot test (tests/it/chroot.rs) has real
//! nodes send real reports; here reports are written by hand to reach every corner.

use crate::common;

use std::time::Duration;

use common::report::Report;
use common::{Server, UMC_ADMIN, show};
use umc::report::State;

const A: &str = "web1.example.com";
const B: &str = "web2.example.com";

fn fleet(config: &str) -> Server {
    let s = Server::start_with_config(config);
    s.admin_ok(&["node", "add", A]);
    s.admin_ok(&["node", "add", B]);
    s.admin_ok(&["task", "add", "web"]);
    s.admin_ok(&["task", "depend", "web", "nginx-light"]);
    s.admin_ok(&["assign", A, "web"]);
    s.admin_ok(&["assign", B, "web"]);
    s
}

fn published(s: &Server, host: &str) -> String {
    let n: umc::api::NodeInfo =
        serde_json::from_str(&s.admin_ok(&["node", "show", host, "--json"])).expect("json");
    n.version
}

/// A's report: `umc-node` 1.1 and A's own package at `installed`, install exiting
/// `install_exit`, and `tail` as apt's last lines.
fn report(installed: &str, install_exit: &str, tail: &[&str]) -> String {
    let host_package = format!("umc-{A}");
    Report {
        installed: &[("umc-node", "1.1"), (&host_package, installed)],
        install: install_exit,
        tail,
        ..Report::default()
    }
    .text()
}

fn status(s: &Server) -> Vec<umc::api::HostStatus> {
    let out = s.admin(&["status", "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)))
}

fn state_of(s: &Server, host: &str) -> (State, String) {
    let row = status(s).into_iter().find(|r| r.host == host).expect("row");
    (row.state, row.reason)
}

#[test]
fn reports_drive_the_states() {
    let s = fleet("stale_after_secs = 3\ndrift_after_secs = 1\n");
    let (ta, tb) = (s.node_token(A), s.node_token(B));
    assert_eq!(state_of(&s, A).0, State::Stale, "never seen");

    // ok: the published version is installed.
    let v = published(&s, A);
    let r = s.post_report(A, (A, &ta), report(&v, "0", &[]).as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(state_of(&s, A).0, State::Ok);

    // pending right after an edit, drift once the threshold passes.
    s.admin_ok(&["task", "depend", "web", "less"]);
    let (st, reason) = state_of(&s, A);
    assert_eq!(st, State::Pending, "{reason}");
    assert!(reason.contains(&format!("installed {v}")), "{reason}");
    std::thread::sleep(Duration::from_millis(2500));
    let r = s.post_report(A, (A, &ta), report(&v, "0", &[]).as_bytes());
    assert_eq!(r.status, 200);
    assert_eq!(state_of(&s, A).0, State::Drift);

    // failed, with apt's error line as the reason.
    let e = "E: Unable to locate package umc-no-such-package";
    let r = s.post_report(
        A,
        (A, &ta),
        report(&v, "100", &["W: something odd", e]).as_bytes(),
    );
    assert_eq!(r.status, 200);
    let (st, reason) = state_of(&s, A);
    assert_eq!((st, reason.as_str()), (State::Failed, e));

    // The host view lists the recent reports and the tail; exit 7 (a host failed).
    let out = s.admin(&["status", A]);
    assert_eq!(out.status.code(), Some(7), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(e) && text.contains("install=100"), "{text}");

    // The plugin: one line with perfdata; B is stale too -> 2 bad hosts.
    let out = std::process::Command::new(UMC_ADMIN)
        .args(["check", "--warn", "1", "--crit", "2"])
        .env("UMC_URL", &s.url)
        .env("UMC_TOKEN", s.token())
        .output()
        .expect("check");
    let line = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{line}");
    assert!(line.starts_with("UMC CRITICAL - 2 of 2 hosts"), "{line}");
    assert!(
        line.contains("| ") && line.contains("failed=1;1;2;0;2"),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);

    // B reports fine: WARNING at --warn 1 --crit 2.
    let vb = published(&s, B);
    let rb = report(&vb, "0", &[]).replace(&format!("umc-{A}"), &format!("umc-{B}"));
    assert_eq!(s.post_report(B, (B, &tb), rb.as_bytes()).status, 200);
    let out = std::process::Command::new(UMC_ADMIN)
        .args(["check", "--warn", "1", "--crit", "2"])
        .env("UMC_URL", &s.url)
        .env("UMC_TOKEN", s.token())
        .output()
        .expect("check");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));

    // stale once nothing is heard for longer than the threshold.
    std::thread::sleep(Duration::from_millis(4500));
    assert_eq!(state_of(&s, B).0, State::Stale);

    // umcd unreachable: UNKNOWN (3).
    let out = std::process::Command::new(UMC_ADMIN)
        .arg("check")
        .env("UMC_URL", "http://127.0.0.1:1")
        .env("UMC_TOKEN", "x")
        .output()
        .expect("check");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("UMC UNKNOWN - "));
}

#[test]
fn bad_reports_are_refused_and_nothing_is_stored() {
    let s = fleet("report_max_kib = 4\n");
    let (ta, tb) = (s.node_token(A), s.node_token(B));
    let v = published(&s, A);
    let good = report(&v, "0", &[]);
    let later = umc::app::now() + 86_400;
    let future =
        format!("Format: umc-report/1\nStarted: {later}\nFinished: {later}\nStep: update 0\n");
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (A, &tb, good.clone().into_bytes(), 401, ""),
        (A, "wrong", good.clone().into_bytes(), 401, ""),
        (
            A,
            &ta,
            format!("{good}Tail: {}\n", "x".repeat(900))
                .repeat(8)
                .into_bytes(),
            413,
            "larger than",
        ),
        (A, &ta, b"hello\n".to_vec(), 400, "first line"),
        (
            A,
            &ta,
            format!("{good}Colour: blue\n").into_bytes(),
            400,
            "unknown field 'Colour'",
        ),
        (A, &ta, future.into_bytes(), 400, "future"),
        (A, &ta, vec![0xff, 0xfe], 400, "UTF-8"),
    ];
    for (host, password, body, want, text) in cases {
        // Host B's credentials for host A's report: the user name is B.
        let user = if password == tb { B } else { host };
        let r = s.post_report(host, (user, password), &body);
        assert_eq!(r.status, want, "{}", r.text());
        assert!(r.text().contains(text), "{text}: {}", r.text());
    }
    let row = status(&s).into_iter().find(|r| r.host == A).expect("row");
    assert_eq!(row.last_report, None, "nothing was stored");
    assert_eq!(row.state, State::Stale);
}

#[test]
fn passive_signals_without_reports() {
    let s = fleet("");
    let tb = s.node_token(B);
    let get = |path: &str| s.get(&format!("/hosts/{B}/{path}"), Some((B, &tb)), &[]);
    assert_eq!(get("dists/umc/InRelease").status, 200);
    let row = status(&s).into_iter().find(|r| r.host == B).expect("row");
    assert_eq!(row.state, State::Pending, "{row:?}");
    assert!(
        row.last_seen.is_some() && row.last_report.is_none(),
        "{row:?}"
    );
    assert_eq!(row.reason.split(',').next(), Some("no report yet"));
    let packages = get("dists/umc/main/binary-amd64/Packages").text();
    let pool = packages
        .lines()
        .filter_map(|l| l.strip_prefix("Filename: "))
        .find(|f| f.contains(&format!("umc-{B}_")))
        .expect("host package")
        .to_string();
    assert_eq!(get(&pool).status, 200);
    let row = status(&s).into_iter().find(|r| r.host == B).expect("row");
    assert!(
        row.reason
            .starts_with(&format!("no report yet; downloaded {}", row.published)),
        "{row:?}"
    );
}

#[test]
fn reports_are_kept_bounded_and_survive_a_restart() {
    let mut s = fleet("report_keep = 3\nlog_keep = 4\n");
    let ta = s.node_token(A);
    let v = published(&s, A);
    for _ in 0..5 {
        assert_eq!(
            s.post_report(A, (A, &ta), report(&v, "0", &[]).as_bytes())
                .status,
            200
        );
    }
    let detail = |s: &Server| -> umc::api::HostStatusDetail {
        let out = s.admin(&["status", A, "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)))
    };
    assert_eq!(detail(&s).reports.len(), 3);
    let packages = |s: &Server| {
        s.get(
            &format!("/hosts/{A}/dists/umc/main/binary-amd64/Packages"),
            Some((A, &ta)),
            &[],
        )
        .text()
    };
    let before = packages(&s);
    assert!(
        s.admin_ok(&["log", "-n", "100"])
            .matches("generation")
            .count()
            > 4
    );
    s.stop();
    // Retention runs at startup (and every minute): the edit log keeps its newest 4 entries.
    let conf = s.data.parent().expect("tmp").join("umcd.toml");
    let conf = conf.to_str().expect("utf8").to_string();
    let s2 = Server::start_in_with(&s.data.clone(), &["--config", &conf]);
    let d = detail(&s2);
    assert_eq!(d.reports.len(), 3);
    assert_eq!(d.status.state, State::Ok);
    let mut entries = 0;
    for _ in 0..50 {
        let log: Vec<umc::api::LogEntry> =
            serde_json::from_str(&s2.admin_ok(&["log", "-n", "100", "--json"])).expect("json");
        entries = log.len();
        if entries <= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(entries, 4);
    // The model history went with it (review finding 11), saying so, and what the host is
    // served (versions, changelogs inside the debs) did not change.
    let out = s2.admin(&["rollback", "--to", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        show(&out).contains("generation 1 has been pruned")
            && show(&out).contains("the oldest kept is generation 3"),
        "{}",
        show(&out)
    );
    assert_eq!(packages(&s2), before);
}
