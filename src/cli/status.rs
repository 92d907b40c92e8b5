//! `umc-admin status [<host>] [--failing] [--json]` and `umc-admin check`, the Nagios/Icinga
//! plugin.

use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;

use super::term::one_line;
use super::{CliResult, Failure, print_json, print_table};
use crate::api::{HostStatus, StatusQuery};
use crate::client::Client;
use crate::report::{State, count_states};
use crate::time::{self, Units};

/// Exit code of `status`: at least one host is failed or stale.
pub const EXIT_UNHEALTHY: i32 = 7;

#[derive(Args)]
pub struct StatusArgs {
    /// One host: its row, its recent reports and the error tail
    host: Option<String>,
    /// Only hosts that are not ok
    #[arg(long)]
    failing: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct CheckArgs {
    /// WARNING when at least this many hosts are failed, stale or drifting
    #[arg(long, default_value_t = 1, value_name = "N")]
    warn: usize,
    /// CRITICAL when at least this many hosts are failed, stale or drifting
    #[arg(long, default_value_t = 3, value_name = "N")]
    crit: usize,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// "3 min ago", or "never".
fn ago(t: Option<i64>, now: i64) -> String {
    t.map_or_else(|| "never".into(), |t| time::ago(now, t, Units::Long))
}

fn unhealthy(rows: &[HostStatus]) -> CliResult {
    let bad = rows.iter().filter(|r| r.state.is_bad()).count();
    if bad > 0 {
        return Err(Failure {
            code: EXIT_UNHEALTHY,
            message: format!("{bad} of {} hosts failed or stale", rows.len()),
        });
    }
    Ok(())
}

pub fn run(c: &Client, a: StatusArgs) -> CliResult {
    let now = now();
    if let Some(host) = &a.host {
        let d = c.host_status(host)?;
        if a.json {
            print_json(&d)?;
            return unhealthy(std::slice::from_ref(&d.status));
        }
        let s = &d.status;
        outln!("host:       {}", one_line(&s.host));
        outln!("state:      {} ({})", s.state, one_line(&s.reason));
        outln!(
            "published:  {} {} (since {})",
            s.package,
            s.published,
            ago(Some(s.published_at), now)
        );
        outln!(
            "installed:  {}",
            s.installed.as_deref().unwrap_or("unknown")
        );
        outln!("last seen:  {}", ago(s.last_seen, now));
        outln!("last cycle: {}", s.last_result.as_deref().unwrap_or("-"));
        if let Some(newest) = d.reports.first() {
            let r = &newest.report;
            outln!(
                "reboot required: {}; upgradable: {}",
                if r.reboot_required { "yes" } else { "no" },
                r.upgradable
            );
            for (what, list) in [
                ("held", &r.held),
                ("broken", &r.broken),
                ("locally modified", &r.modified),
            ] {
                if !list.is_empty() {
                    let list: Vec<_> = list.iter().map(|p| one_line(p)).collect();
                    outln!("{what}: {}", list.join(" "));
                }
            }
            if !r.tail.is_empty() {
                outln!("output of the last cycle:");
                for l in &r.tail {
                    outln!("  {}", one_line(l));
                }
            }
        }
        outln!("recent reports:");
        let rows: Vec<Vec<String>> = d
            .reports
            .iter()
            .map(|e| {
                let steps: Vec<String> = e
                    .report
                    .steps
                    .iter()
                    .map(|s| {
                        format!(
                            "{}={}",
                            s.name,
                            s.exit.map_or("-".to_string(), |x| x.to_string())
                        )
                    })
                    .collect();
                vec![
                    ago(Some(e.received), now),
                    format!("{} s", e.report.finished - e.report.started),
                    steps.join(" "),
                ]
            })
            .collect();
        print_table(&["RECEIVED", "TOOK", "STEPS"], &rows);
        return unhealthy(std::slice::from_ref(&d.status));
    }
    let rows = c.status(&StatusQuery {
        failing: a.failing.then_some(true),
    })?;
    if a.json {
        print_json(&rows)?;
        return unhealthy(&rows);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.host.clone(),
                r.state.to_string(),
                r.published.clone(),
                r.installed.clone().unwrap_or_else(|| "-".into()),
                ago(r.last_seen, now),
                r.last_result.clone().unwrap_or_else(|| "-".into()),
                r.reason.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "HOST",
            "STATE",
            "PUBLISHED",
            "INSTALLED",
            "LAST SEEN",
            "LAST CYCLE",
            "REASON",
        ],
        &table,
    );
    unhealthy(&rows)
}

/// The Nagios plugin: one line, `UMC <STATE> - <summary> | <perfdata>`, exit 0/1/2/3.
pub fn check(a: CheckArgs) -> i32 {
    let (code, line) = match check_line(&a) {
        Ok(x) => x,
        Err(e) => (3, format!("UMC UNKNOWN - {}", e.message)),
    };
    outln!("{line}");
    code
}

fn check_line(a: &CheckArgs) -> Result<(i32, String), Failure> {
    if a.crit < a.warn {
        return Err(super::usage("--crit must be at least --warn"));
    }
    let c = Client::from_env()?;
    let rows = c.status(&StatusQuery::default())?;
    let counts = count_states(rows.iter().map(|r| r.state));
    let bad: Vec<&HostStatus> = rows.iter().filter(|r| r.state.needs_action()).collect();
    let (code, word) = if bad.len() >= a.crit.max(1) {
        (2, "CRITICAL")
    } else if bad.len() >= a.warn.max(1) {
        (1, "WARNING")
    } else {
        (0, "OK")
    };
    let summary = if bad.is_empty() {
        format!(
            "{} hosts: {} ok, {} pending",
            rows.len(),
            counts[&State::Ok],
            counts[&State::Pending]
        )
    } else {
        let named: Vec<String> = bad
            .iter()
            .take(5)
            .map(|r| format!("{} {}", r.host, r.state))
            .collect();
        let more = if bad.len() > 5 {
            format!(", and {} more", bad.len() - 5)
        } else {
            String::new()
        };
        format!(
            "{} of {} hosts failed, stale or drifting: {}{more}",
            bad.len(),
            rows.len(),
            named.join(", ")
        )
    };
    // By state name, the order monitoring has always seen them in.
    let mut counts: Vec<(State, usize)> = counts.into_iter().collect();
    counts.sort_by_key(|(s, _)| s.as_str());
    let perf: Vec<String> = counts
        .iter()
        .map(|(state, n)| {
            if state.needs_action() {
                format!("{state}={n};{};{};0;{}", a.warn, a.crit, rows.len())
            } else {
                format!("{state}={n};;;0;{}", rows.len())
            }
        })
        .collect();
    Ok((code, format!("UMC {word} - {summary} | {}", perf.join(" "))))
}
