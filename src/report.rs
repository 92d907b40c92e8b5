//! Node reports: what `umc-cycle` tells umcd after every run, and how umcd judges each host.
//!
//! The report is line-based text (`Field: value`), because `umc-cycle` is POSIX sh and must
//! not need a JSON encoder. umcd validates it strictly (sizes, counts, times), stores the
//! validated text as it came, and parses it again when reading. Pure: no IO, no clock.

#![warn(missing_docs)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::{Units, span};

/// The first line of every report.
pub const FORMAT_LINE: &str = "Format: umc-report/1";
/// Longest accepted line (a tail line of apt output is cut by the node before this).
pub const MAX_LINE: usize = 1024;
/// Most `Step` lines a report may have.
pub const MAX_STEPS: usize = 16;
/// Most lines of each list (`Installed`, `Held`, `Broken`, `Modified`); the node stops at 500.
pub const MAX_LIST: usize = 512;
/// Most `Tail` lines a report may have.
pub const MAX_TAIL: usize = 100;
/// How far in the future (by umcd's clock) a report's times may be.
pub const MAX_CLOCK_SKEW: i64 = 300;

/// One step of the cycle: `update`, `install`, `server-wins`, `autoremove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Which step (one word).
    pub name: String,
    /// `None`: skipped because an earlier step failed.
    pub exit: Option<i32>,
}

/// One run of `umc-cycle` on a node, as its report says, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// When the cycle started, by the node's clock (Unix seconds).
    pub started: i64,
    /// When it finished, by the node's clock; never before `started`.
    pub finished: i64,
    /// The steps in the order they ran; at least one.
    pub steps: Vec<Step>,
    /// Installed versions of umc's packages (`dpkg-query`), by package.
    pub installed: BTreeMap<String, String>,
    /// Packages on hold (`apt-mark showhold`): apt will not upgrade them.
    pub held: Vec<String>,
    /// Packages dpkg left half-installed, unconfigured or awaiting triggers.
    pub broken: Vec<String>,
    /// umc conffiles modified locally (`dpkg --verify`).
    pub modified: Vec<String>,
    /// Whether the node asks for a reboot (`/run/reboot-required`).
    pub reboot_required: bool,
    /// How many packages an `apt-get upgrade` would upgrade.
    pub upgradable: u64,
    /// apt's `E:`/`W:` lines, and the end of a failed step's output.
    pub tail: Vec<String>,
}

impl Report {
    /// The first step that did not exit 0.
    pub fn failed_step(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.exit.is_some_and(|e| e != 0))
    }

    /// Whether `package` is installed at `version` or newer (Debian version order). A version
    /// that does not parse is never newer.
    pub fn has_at_least(&self, package: &str, version: &str) -> bool {
        use debversion::Version;
        let installed = self.installed.get(package).map(|v| v.parse::<Version>());
        match (installed, version.parse::<Version>()) {
            (Some(Ok(have)), Ok(want)) => have >= want,
            _ => false,
        }
    }

    /// The line that best explains a failure: the last `E:` line, else the last tail line.
    pub fn error_line(&self) -> Option<&str> {
        self.tail
            .iter()
            .rev()
            .find(|l| l.starts_with("E:") || l.starts_with("Error:"))
            .or_else(|| self.tail.last())
            .map(String::as_str)
    }
}

/// Why a report was refused (the node gets the message back).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// One line breaks the format or a limit.
    #[error("report line {line}: {why}")]
    Line {
        /// Its line number, from 1.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// The report as a whole is wrong (no format line, a missing field, its times).
    #[error("report: {0}")]
    Invalid(String),
}

fn bad(line: usize, why: impl Into<String>) -> ReportError {
    ReportError::Line {
        line,
        why: why.into(),
    }
}

fn plain(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Parses and validates `text`, sent at `now` (umcd's clock).
pub fn parse(text: &str, now: i64) -> Result<Report, ReportError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, l)) if l == FORMAT_LINE => {}
        _ => {
            return Err(ReportError::Invalid(format!(
                "the first line must be '{FORMAT_LINE}'"
            )));
        }
    }
    let mut r = Report::default();
    let (mut started, mut finished) = (None, None);
    for (n, line) in lines {
        if line.len() > MAX_LINE {
            return Err(bad(n, format!("longer than {MAX_LINE} bytes")));
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(bad(n, "contains control characters"));
        }
        if line.is_empty() {
            continue;
        }
        let (field, value) = line
            .split_once(": ")
            .or_else(|| line.strip_suffix(':').map(|f| (f, "")))
            .ok_or_else(|| bad(n, "expected 'Field: value'"))?;
        let time = |v: &str| -> Result<i64, ReportError> {
            v.parse::<i64>()
                .ok()
                .filter(|t| *t > 0)
                .ok_or_else(|| bad(n, format!("{field}: not a Unix time")))
        };
        let push = |list: &mut Vec<String>, v: &str| -> Result<(), ReportError> {
            if list.len() >= MAX_LIST {
                return Err(bad(n, format!("more than {MAX_LIST} {field} lines")));
            }
            if !plain(v) {
                return Err(bad(n, format!("{field}: expected one word")));
            }
            list.push(v.to_string());
            Ok(())
        };
        match field {
            "Started" => started = Some(time(value)?),
            "Finished" => finished = Some(time(value)?),
            "Step" => {
                if r.steps.len() >= MAX_STEPS {
                    return Err(bad(n, format!("more than {MAX_STEPS} steps")));
                }
                let (name, exit) = value
                    .split_once(' ')
                    .ok_or_else(|| bad(n, "Step: expected '<name> <exit status|->'"))?;
                if !plain(name) {
                    return Err(bad(n, "Step: bad name"));
                }
                let exit = match exit {
                    "-" => None,
                    e => Some(
                        e.parse::<i32>()
                            .ok()
                            .filter(|e| (0..=255).contains(e))
                            .ok_or_else(|| bad(n, "Step: exit status must be 0-255 or '-'"))?,
                    ),
                };
                r.steps.push(Step {
                    name: name.to_string(),
                    exit,
                });
            }
            "Installed" => {
                let (pkg, version) = value
                    .split_once(' ')
                    .ok_or_else(|| bad(n, "Installed: expected '<package> <version>'"))?;
                if !plain(pkg) || !plain(version) {
                    return Err(bad(n, "Installed: expected '<package> <version>'"));
                }
                if r.installed.len() >= MAX_LIST {
                    return Err(bad(n, format!("more than {MAX_LIST} Installed lines")));
                }
                r.installed.insert(pkg.to_string(), version.to_string());
            }
            "Held" => push(&mut r.held, value)?,
            "Broken" => push(&mut r.broken, value)?,
            "Modified" => push(&mut r.modified, value)?,
            "Reboot-Required" => {
                r.reboot_required = match value {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(bad(n, "Reboot-Required: expected yes or no")),
                }
            }
            "Upgradable" => {
                r.upgradable = value
                    .parse()
                    .map_err(|_| bad(n, "Upgradable: expected a count"))?;
            }
            "Tail" => {
                if r.tail.len() >= MAX_TAIL {
                    return Err(bad(n, format!("more than {MAX_TAIL} Tail lines")));
                }
                r.tail.push(value.to_string());
            }
            // Unknown fields are refused: a typo must not pass as an empty report.
            other => return Err(bad(n, format!("unknown field '{other}'"))),
        }
    }
    r.started = started.ok_or_else(|| ReportError::Invalid("no Started line".into()))?;
    r.finished = finished.ok_or_else(|| ReportError::Invalid("no Finished line".into()))?;
    if r.finished < r.started {
        return Err(ReportError::Invalid("Finished is before Started".into()));
    }
    if r.finished > now + MAX_CLOCK_SKEW {
        return Err(ReportError::Invalid(format!(
            "Finished is {} s in umcd's future (more than {MAX_CLOCK_SKEW} s): check the node's clock",
            r.finished - now
        )));
    }
    if r.steps.is_empty() {
        return Err(ReportError::Invalid("no Step lines".into()));
    }
    Ok(r)
}

/// How a host stands against the model. On the wire (`api::HostStatus`, the console's
/// templates, `/metrics` labels) it is its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The host's current `umc-<host>` version is installed.
    Ok,
    /// A newer version is published, for less than the drift threshold.
    Pending,
    /// A newer version has been published for longer than the drift threshold.
    Drift,
    /// The host's last cycle had a step that failed.
    Failed,
    /// Nothing heard from the host (report or InRelease fetch) for the stale threshold.
    Stale,
}

impl State {
    /// Every state, best first: the order the console lists them in.
    pub const ALL: [State; 5] = [
        State::Ok,
        State::Pending,
        State::Drift,
        State::Failed,
        State::Stale,
    ];

    /// Its lowercase name, as the wire and the console write it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Pending => "pending",
            State::Drift => "drift",
            State::Failed => "failed",
            State::Stale => "stale",
        }
    }

    /// Failed and stale hosts make `umc-admin status` fail.
    pub fn is_bad(self) -> bool {
        matches!(self, State::Failed | State::Stale)
    }

    /// Failed, stale and drifting hosts count against `umc-admin check`'s thresholds (a
    /// pending host is on its way).
    pub fn needs_action(self) -> bool {
        matches!(self, State::Failed | State::Stale | State::Drift)
    }

    /// 0 for the worst: attention lists put failed hosts first, then stale, drifting and
    /// pending ones.
    pub fn severity(self) -> u8 {
        match self {
            State::Failed => 0,
            State::Stale => 1,
            State::Drift => 2,
            State::Pending => 3,
            State::Ok => 4,
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hosts per state, every state present (for `check`).
pub fn count_states(states: impl IntoIterator<Item = State>) -> BTreeMap<State, usize> {
    let mut out: BTreeMap<State, usize> = State::ALL.iter().map(|s| (*s, 0)).collect();
    for s in states {
        *out.entry(s).or_default() += 1;
    }
    out
}

/// When a host counts as stale or drifting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// No report and no InRelease fetch for this long: stale.
    pub stale_after: i64,
    /// Installed older than published for this long (the cycle interval plus a grace period):
    /// drift.
    pub drift_after: i64,
}

/// What umcd saw of a host without any report: its apt traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Last InRelease fetch.
    pub inrelease: Option<i64>,
    /// Last `umc-<host>` deb downloaded: version and time.
    pub host_deb: Option<(String, i64)>,
}

/// The verdict on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Where the host stands.
    pub state: State,
    /// The `umc-<host>` version its newest report shows installed.
    pub installed: Option<String>,
    /// The newest of its last report's arrival and its last InRelease fetch.
    pub last_seen: Option<i64>,
    /// `ok`, or `failed: install exited 100`.
    pub last_result: Option<String>,
    /// One line saying why the host has this state (`no report or apt request for 2 days`).
    pub reason: String,
}

/// Judges one host. `package` is its `umc-<host>` package, published at `version` since
/// `published_at`; `last` is its newest report and when umcd received it.
pub fn judge(
    package: &str,
    version: &str,
    published_at: i64,
    last: Option<(i64, &Report)>,
    seen: Option<&Seen>,
    now: i64,
    t: Thresholds,
) -> Verdict {
    let installed = last.and_then(|(_, r)| r.installed.get(package).cloned());
    let last_seen = [
        last.map(|(received, _)| received),
        seen.and_then(|s| s.inrelease),
    ]
    .into_iter()
    .flatten()
    .max();
    let last_result = last.map(|(_, r)| match r.failed_step() {
        Some(s) => format!(
            "failed: {} exited {}",
            s.name,
            s.exit.map_or("-".to_string(), |e| e.to_string())
        ),
        None => "ok".to_string(),
    });
    let verdict = |state, reason: String| Verdict {
        state,
        installed: installed.clone(),
        last_seen,
        last_result: last_result.clone(),
        reason,
    };
    match last_seen {
        None => return verdict(State::Stale, "never seen".into()),
        Some(t_seen) if now - t_seen > t.stale_after => {
            return verdict(
                State::Stale,
                format!(
                    "no report or apt request for {}",
                    span(now - t_seen, Units::Long)
                ),
            );
        }
        Some(_) => {}
    }
    if let Some((_, r)) = last
        && let Some(step) = r.failed_step()
    {
        let why = r
            .error_line()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{} exited {}", step.name, step.exit.unwrap_or(-1)));
        return verdict(State::Failed, why);
    }
    if installed.as_deref() == Some(version) {
        return verdict(State::Ok, format!("{package} {version} installed"));
    }
    let behind = now - published_at;
    let have = match (&installed, seen.and_then(|s| s.host_deb.as_ref())) {
        (Some(v), _) => format!("installed {v}"),
        (None, Some((v, _))) => format!("no report yet; downloaded {v}"),
        (None, None) => "no report yet".to_string(),
    };
    if behind > t.drift_after {
        verdict(
            State::Drift,
            format!(
                "{have}, published {version} {} ago",
                span(behind, Units::Long)
            ),
        )
    } else {
        verdict(
            State::Pending,
            format!(
                "{have}, published {version} {} ago",
                span(behind, Units::Long)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn text(extra: &str) -> String {
        format!(
            "{FORMAT_LINE}\nStarted: {}\nFinished: {}\nStep: update 0\nStep: install 0\n{extra}",
            NOW - 60,
            NOW - 10
        )
    }

    #[test]
    fn parses_a_full_report() {
        let r = parse(
            &text(
                "Installed: umc-web1 1.7\nHeld: foo\nModified: /etc/x.conf\nReboot-Required: yes\nUpgradable: 3\nTail: W: something\n",
            ),
            NOW,
        )
        .unwrap();
        assert_eq!(r.installed["umc-web1"], "1.7");
        assert!(r.reboot_required);
        assert_eq!(r.upgradable, 3);
        assert_eq!(r.failed_step(), None);
    }

    #[test]
    fn rejects_bad_reports() {
        for (t, want) in [
            ("hello".to_string(), "first line"),
            (text("Bogus: 1\n"), "unknown field 'Bogus'"),
            (text("Step: install x\n"), "exit status"),
            (text("Installed: a\n"), "Installed"),
            (
                text(&format!("Tail: {}\n", "x".repeat(2000))),
                "longer than",
            ),
            (
                format!(
                    "{FORMAT_LINE}\nStarted: {NOW}\nFinished: {}\nStep: a 0\n",
                    NOW + 3600
                ),
                "future",
            ),
            (
                format!("{FORMAT_LINE}\nStarted: 5\nFinished: 6\n"),
                "no Step",
            ),
            // The rest of the review's malformed reports (what held up → limits).
            (text("Tail: \u{1b}[2J\n"), "control characters"),
            (text("Tail: a\u{85}b\n"), "control characters"),
            (
                format!(
                    "{FORMAT_LINE}\nStarted: {NOW}\nFinished: {}\nStep: a 0\n",
                    i64::MAX
                ),
                "future",
            ),
            (
                format!("{FORMAT_LINE}\nStarted: -5\nFinished: {NOW}\nStep: a 0\n"),
                "not a Unix time",
            ),
            (text("Step: install 256\n"), "exit status"),
            (
                text("Upgradable: 18446744073709551616\n"),
                "expected a count",
            ),
            (
                text(&"Held: p\n".repeat(MAX_LIST + 1)),
                "more than 512 Held",
            ),
        ] {
            let e = parse(&t, NOW).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn verdicts() {
        let t = Thresholds {
            stale_after: 600,
            drift_after: 300,
        };
        let ok = parse(&text("Installed: umc-h 1.7\n"), NOW).unwrap();
        let v = judge(
            "umc-h",
            "1.7",
            NOW - 1000,
            Some((NOW - 5, &ok)),
            None,
            NOW,
            t,
        );
        assert_eq!(v.state, State::Ok);
        let v = judge(
            "umc-h",
            "1.8",
            NOW - 100,
            Some((NOW - 5, &ok)),
            None,
            NOW,
            t,
        );
        assert_eq!(v.state, State::Pending, "{}", v.reason);
        let v = judge(
            "umc-h",
            "1.8",
            NOW - 400,
            Some((NOW - 5, &ok)),
            None,
            NOW,
            t,
        );
        assert_eq!(v.state, State::Drift, "{}", v.reason);
        let v = judge(
            "umc-h",
            "1.7",
            NOW - 1000,
            Some((NOW - 700, &ok)),
            None,
            NOW,
            t,
        );
        assert_eq!(v.state, State::Stale);
        let failed = parse(
            &format!(
                "{FORMAT_LINE}\nStarted: {NOW}\nFinished: {NOW}\nStep: update 0\nStep: install 100\nStep: autoremove -\nTail: E: Unable to locate package nope\n"
            ),
            NOW,
        )
        .unwrap();
        let v = judge("umc-h", "1.7", NOW, Some((NOW, &failed)), None, NOW, t);
        assert_eq!(v.state, State::Failed);
        assert_eq!(v.reason, "E: Unable to locate package nope");
        assert_eq!(v.last_result.as_deref(), Some("failed: install exited 100"));
        let v = judge("umc-h", "1.7", NOW, None, None, NOW, t);
        assert_eq!((v.state, v.reason.as_str()), (State::Stale, "never seen"));
    }

    /// `api::HostStatus.state`, the console's CSS classes and `/metrics` labels all carry a
    /// state as its lowercase name: the JSON is what it was when the state was a string.
    #[test]
    fn states_are_their_lowercase_names_on_the_wire() {
        for s in State::ALL {
            let json = serde_json::to_string(&s).expect("json");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<State>(&json).expect("back"), s);
            assert_eq!(s.to_string(), s.as_str());
        }
        let names: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["ok", "pending", "drift", "failed", "stale"]);
        assert!(serde_json::from_str::<State>("\"Failed\"").is_err());
    }
}
