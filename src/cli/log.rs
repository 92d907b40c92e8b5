//! `umc-admin log [--host H] [--task T] [-n N] [--json]`

use clap::Args;

use super::{CliResult, print_json};
use crate::api::LogEntry;
use crate::client::{Client, enc};

#[derive(Args)]
pub struct LogArgs {
    /// Only edits that changed this node's package
    #[arg(long)]
    host: Option<String>,
    /// Only edits that changed this task's package
    #[arg(long, conflicts_with = "host")]
    task: Option<String>,
    /// How many edits
    #[arg(short = 'n', default_value_t = 20)]
    n: usize,
    #[arg(long)]
    json: bool,
}

pub fn run(c: &Client, a: LogArgs) -> CliResult {
    let mut q = format!("/log?limit={}", a.n);
    if let Some(h) = &a.host {
        q.push_str(&format!("&host={}", enc(h)));
    }
    if let Some(t) = &a.task {
        q.push_str(&format!("&task={}", enc(t)));
    }
    let entries: Vec<LogEntry> = c.get(&q)?;
    if a.json {
        return print_json(&entries);
    }
    for e in &entries {
        println!(
            "generation {}  {}  {}",
            e.generation,
            crate::repo::release_date(e.time),
            e.user
        );
        for c in &e.changes {
            println!("  * {c}");
        }
    }
    Ok(())
}
