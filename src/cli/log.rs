//! `umc-admin log [--host H] [--task T] [--audit] [-n N] [--json]`

use clap::Args;

use super::term::one_line;
use super::{CliResult, print_json};
use crate::api::{AuditEntry, AuditQuery, LogEntry, LogQuery};
use crate::client::Client;

#[derive(Args)]
pub(crate) struct LogArgs {
    /// Only edits that changed this node's package, and fleet commands that ran on it
    #[arg(long)]
    host: Option<String>,
    /// Only edits that changed this task's package
    #[arg(long, conflicts_with = "host")]
    task: Option<String>,
    /// Only fleet commands (ssh, upgrade, restart) with each host's result
    #[arg(long, conflicts_with = "task")]
    audit: bool,
    /// How many entries
    #[arg(short = 'n', default_value_t = 20)]
    n: usize,
    /// Edits as JSON (with --audit: fleet commands)
    #[arg(long)]
    json: bool,
}

enum Item {
    Edit(LogEntry),
    Run(AuditEntry),
}

impl Item {
    fn time(&self) -> i64 {
        match self {
            Item::Edit(e) => e.time,
            Item::Run(r) => r.time,
        }
    }
}

pub(crate) fn run(c: &Client, a: LogArgs) -> CliResult {
    let runs = |c: &Client| -> Result<Vec<AuditEntry>, super::Failure> {
        let mut runs = c.audit(&AuditQuery { limit: Some(a.n) })?;
        if let Some(h) = &a.host {
            let h = h.to_ascii_lowercase();
            runs.retain(|r| r.results.iter().any(|x| x.host == h));
        }
        Ok(runs)
    };
    if a.audit {
        let runs = runs(c)?;
        if a.json {
            return print_json(&runs);
        }
        runs.iter().for_each(print_run);
        return Ok(());
    }
    let entries = c.log(&LogQuery {
        host: a.host.clone(),
        task: a.task.clone(),
        limit: Some(a.n),
    })?;
    if a.json {
        return print_json(&entries);
    }
    let mut items: Vec<Item> = entries.into_iter().map(Item::Edit).collect();
    if a.task.is_none() {
        items.extend(runs(c)?.into_iter().map(Item::Run));
    }
    // Newest first; a stable sort keeps each list's own order within one second.
    items.sort_by_key(|i| std::cmp::Reverse(i.time()));
    items.truncate(a.n);
    for i in &items {
        match i {
            Item::Edit(e) => {
                for line in edit_lines(e) {
                    outln!("{line}");
                }
            }
            Item::Run(r) => print_run(r),
        }
    }
    Ok(())
}

/// One edit as `log` prints it: a line for the edit, one per change. Every field stays on
/// its line (`one_line`), whatever the record holds.
pub(crate) fn edit_lines(e: &LogEntry) -> Vec<String> {
    let mut out = vec![format!(
        "generation {}  {}  {}",
        e.generation,
        crate::time::release_date(e.time),
        one_line(&e.user)
    )];
    out.extend(e.changes.iter().map(|c| format!("  * {}", one_line(c))));
    out
}

/// One audit record. Every field is the client's assertion, stored by umcd as sent: each
/// stays on its own line, cleaned of terminal controls.
fn print_run(r: &AuditEntry) {
    let ok = r.results.iter().filter(|x| x.succeeded()).count();
    // The results are what the user's umc-admin reported, not what umcd saw.
    let targets: Vec<_> = r.targets.iter().map(|t| one_line(t)).collect();
    outln!(
        "run {}  {}  {}  on {} ({} of {} hosts succeeded, as reported by the client)",
        r.id,
        crate::time::release_date(r.time),
        one_line(&r.user),
        targets.join(" "),
        ok,
        r.results.len()
    );
    outln!("  $ {}", one_line(&r.command));
    for x in &r.results {
        let status = match (&x.error, &x.signal, x.exit) {
            (Some(e), _, _) => format!("error: {e}"),
            (None, Some(s), _) => format!("signal {s}"),
            (None, None, Some(code)) => format!("exit {code}"),
            (None, None, None) => "-".into(),
        };
        outln!(
            "  {}: {} ({} ms)",
            one_line(&x.host),
            one_line(&status),
            x.duration_ms
        );
    }
}
