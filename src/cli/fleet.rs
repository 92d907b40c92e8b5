//! The shared part of `ssh`, `upgrade` and `restart`: resolve targets from the model, load
//! credentials, run over SSH in parallel, stream prefixed output, show progress and a summary
//! (or `--json`), record the run in umcd's audit history, and pick the exit code.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::{CliResult, Failure, usage};
use crate::api::{AuditRequest, RunResult};
use crate::client::Client;
use crate::ssh::{self, Credentials, Event, HostKeys, RunOptions};

/// Exit code: every host ran the command, and at least one exited non-zero (or was killed).
pub const EXIT_HOST_FAILED: i32 = 5;
/// Exit code: at least one host did not run the command (connection, host key, authentication,
/// timeout).
pub const EXIT_HOST_UNREACHED: i32 = 6;
/// Exit code: interrupted by Ctrl-C.
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Args)]
pub struct FleetArgs {
    /// How many hosts at a time
    #[arg(long, default_value_t = 32, value_name = "N")]
    parallel: usize,
    /// Per-host limit on the whole run (connect, authenticate, command)
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Per-host limit on connecting and authenticating
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    connect_timeout: u64,
    /// Log in as this user (default: the node's --ssh user, else root)
    #[arg(long)]
    user: Option<String>,
    /// Private key file (otherwise ssh-agent via SSH_AUTH_SOCK and ~/.ssh/id_*)
    #[arg(long, short = 'i', value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Record unknown host keys in umc-admin's known-hosts file (changed keys stay refused)
    #[arg(long)]
    accept_new: bool,
    /// Structured results on stdout instead of streamed lines and a table
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct JsonHost<'a> {
    #[serde(flatten)]
    result: &'a RunResult,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

#[derive(Serialize)]
struct JsonRun<'a> {
    command: &'a str,
    targets: &'a [String],
    interrupted: bool,
    results: Vec<JsonHost<'a>>,
}

fn input(e: ssh::SshError) -> Failure {
    Failure {
        code: 1,
        message: e.to_string(),
    }
}

/// Runs `command` on `targets`. Nothing touches a host until every input has been checked.
pub fn run(c: &Client, targets: &[String], command: String, a: FleetArgs) -> CliResult {
    let shown = command.clone();
    run_as(c, targets, command, shown, None, a)
}

/// Like [`run`], but `shown` stands for the command in `--json` output and in umcd's audit
/// history, and `stdin` is fed to the command (for a secret such as enrollment's credentials,
/// which must appear neither in the audit nor in `ps` on the host).
pub fn run_as(
    c: &Client,
    targets: &[String],
    command: String,
    shown: String,
    stdin: Option<Vec<u8>>,
    a: FleetArgs,
) -> CliResult {
    if command.trim().is_empty() {
        return Err(usage("empty command"));
    }
    if a.parallel == 0 {
        return Err(usage("--parallel must be at least 1"));
    }
    if a.timeout == Some(0) || a.connect_timeout == 0 {
        return Err(usage("timeouts must be at least 1 second"));
    }
    if let Some(u) = &a.user
        && (u.is_empty()
            || !u
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(usage(format!("--user '{u}': not a valid user name")));
    }
    let nodes = c.nodes()?;
    let hosts = ssh::resolve(targets, &nodes, a.user.as_deref()).map_err(input)?;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let creds = Credentials::load(
        a.identity.as_deref(),
        std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from),
        home.as_deref(),
    )
    .map_err(input)?;
    let (read_only, own) = HostKeys::default_paths().map_err(input)?;
    let keys = HostKeys::new(read_only, own, a.accept_new);
    let opts = RunOptions {
        command: command.clone(),
        stdin,
        timeout: a.timeout.map(Duration::from_secs),
        connect_timeout: Duration::from_secs(
            a.timeout
                .map_or(a.connect_timeout, |t| t.min(a.connect_timeout)),
        ),
        parallel: a.parallel,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure {
            code: 4,
            message: format!("cannot start the async runtime: {e}"),
        })?;
    let hosts = Arc::new(hosts);
    let mut out = Output::new(&hosts, a.json);
    let interrupted = runtime.block_on(async {
        let (mut set, mut rx) = ssh::start(
            hosts.clone(),
            Arc::new(opts),
            Arc::new(creds),
            Arc::new(keys),
        );
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => out.event(ev),
                    None => return false,
                },
                _ = &mut ctrl_c => {
                    set.abort_all();
                    // Keep what finished before the abort took effect.
                    while let Ok(ev) = rx.try_recv() {
                        out.event(ev);
                    }
                    return true;
                }
            }
        }
    });
    drop(runtime);
    let results = out.finish(interrupted);
    if a.json {
        let mut captured = std::mem::take(&mut out.captured);
        let run = JsonRun {
            command: &shown,
            targets,
            interrupted,
            results: results
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let (stdout, stderr) = captured.remove(&i).unwrap_or_default();
                    JsonHost {
                        result: r,
                        stdout,
                        stderr,
                    }
                })
                .collect(),
        };
        super::print_json(&run)?;
    } else {
        summary(&results);
    }
    let audit = c.record_audit(
        &AuditRequest {
            targets: targets.to_vec(),
            command: shown.clone(),
            results: results.clone(),
        }
        .clipped(),
    );
    let failed = results.iter().filter(|r| !r.succeeded()).count();
    let unreached = results.iter().filter(|r| r.error.is_some()).count();
    let verdict = if interrupted {
        Err(Failure {
            code: EXIT_INTERRUPTED,
            message: format!(
                "interrupted: {} of {} hosts finished",
                results
                    .iter()
                    .filter(|r| r.error.as_deref() != Some("interrupted"))
                    .count(),
                results.len()
            ),
        })
    } else if unreached > 0 {
        Err(Failure {
            code: EXIT_HOST_UNREACHED,
            message: format!(
                "{unreached} of {} hosts did not run the command; {} more exited non-zero",
                results.len(),
                failed - unreached
            ),
        })
    } else if failed > 0 {
        Err(Failure {
            code: EXIT_HOST_FAILED,
            message: format!("{failed} of {} hosts exited non-zero", results.len()),
        })
    } else {
        Ok(())
    };
    if let Err(e) = audit {
        errln!("umc-admin: warning: the run was not recorded in umcd's audit history: {e}");
        if verdict.is_ok() {
            return Err(e.into());
        }
    }
    verdict
}

/// Streams lines with a host prefix (coloured on a terminal), a progress line on a terminal
/// for more than a few hosts, and collects the results.
struct Output {
    names: Vec<String>,
    width: usize,
    json: bool,
    colour: bool,
    progress: bool,
    done: usize,
    results: Vec<Option<RunResult>>,
    captured: BTreeMap<usize, (Vec<String>, Vec<String>)>,
}

const COLOURS: [&str; 6] = ["36", "33", "35", "32", "34", "96"];
/// More hosts than this get a progress line on a terminal.
const PROGRESS_MIN_HOSTS: usize = 4;

impl Output {
    fn new(hosts: &[ssh::Host], json: bool) -> Output {
        let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
        let tty = std::io::stdout().is_terminal();
        Output {
            width: names.iter().map(|n| n.len()).max().unwrap_or(0),
            results: vec![None; names.len()],
            names,
            json,
            colour: tty && std::env::var_os("NO_COLOR").is_none(),
            progress: !json
                && tty
                && std::io::stderr().is_terminal()
                && hosts.len() > PROGRESS_MIN_HOSTS,
            done: 0,
            captured: BTreeMap::new(),
        }
    }

    fn clear_progress(&self) {
        if self.progress {
            super::term::err_raw("\r\x1b[K");
        }
    }

    fn draw_progress(&self) {
        if !self.progress {
            return;
        }
        let total = self.names.len();
        const BAR: usize = 30;
        let filled = self.done * BAR / total.max(1);
        super::term::err_raw(&format!(
            "\r[{}{}] {}/{} hosts",
            "#".repeat(filled),
            " ".repeat(BAR - filled),
            self.done,
            total
        ));
        let _ = std::io::stderr().flush();
    }

    /// `host |`, coloured on a terminal; the name is cleaned (it came from umcd).
    fn prefix(&self, host: usize) -> String {
        let name = super::term::one_line(&self.names[host]);
        if self.colour {
            let c = COLOURS[host % COLOURS.len()];
            format!("\x1b[{c}m{name:<w$}\x1b[0m |", w = self.width)
        } else {
            format!("{name:<w$} |", w = self.width)
        }
    }

    fn event(&mut self, ev: Event) {
        match ev {
            Event::Output { host, stderr, line } => {
                if self.json {
                    let e = self.captured.entry(host).or_default();
                    if stderr { &mut e.1 } else { &mut e.0 }.push(line);
                    return;
                }
                self.clear_progress();
                // The prefix carries our own colour codes, so these lines bypass `outln!`; the
                // command's output is the user's data: raw into a pipe, cleaned on a terminal.
                if stderr {
                    let line = super::term::data_err(&line);
                    super::term::err_raw(&format!("{} {line}\n", self.prefix(host)));
                } else {
                    let line = super::term::data(&line);
                    super::term::out_raw(&format!("{} {line}\n", self.prefix(host)));
                }
                self.draw_progress();
            }
            Event::Learned { host, fingerprint } => {
                self.clear_progress();
                errln!(
                    "umc-admin: {}: recorded new host key {fingerprint}",
                    self.names[host]
                );
                self.draw_progress();
            }
            Event::Done { host, result } => {
                if self.results[host].is_none() {
                    self.done += 1;
                }
                self.results[host] = Some(result);
                self.draw_progress();
            }
        }
    }

    /// Every host's result; those that never finished count as interrupted.
    fn finish(&mut self, interrupted: bool) -> Vec<RunResult> {
        self.clear_progress();
        let why = if interrupted {
            "interrupted"
        } else {
            "did not finish"
        };
        self.results
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.clone().unwrap_or_else(|| RunResult {
                    host: self.names[i].clone(),
                    exit: None,
                    signal: None,
                    duration_ms: 0,
                    error: Some(why.to_string()),
                })
            })
            .collect()
    }
}

fn summary(results: &[RunResult]) {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let exit = match (&r.exit, &r.signal) {
                (_, Some(s)) => format!("SIG{s}"),
                (Some(e), None) => e.to_string(),
                (None, None) => "-".into(),
            };
            vec![
                r.host.clone(),
                exit,
                format!("{:.1}s", r.duration_ms as f64 / 1000.0),
                r.error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    outln!();
    super::print_table(&["HOST", "EXIT", "DURATION", "ERROR"], &rows);
    let ok = results.iter().filter(|r| r.succeeded()).count();
    outln!("{ok} of {} hosts succeeded", results.len());
}
