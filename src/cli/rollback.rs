//! `umc-admin rollback --to <generation>` and `umc-admin diff <from> <to>`.

use clap::Args;

use super::export::print_apply;
use super::{CliResult, print_json};
use crate::api::{DiffQuery, RollbackRequest};
use crate::client::Client;

#[derive(Args)]
pub(super) struct RollbackArgs {
    /// The generation whose model comes back (as a new generation: versions keep increasing)
    #[arg(long)]
    to: u64,
    /// Show the changes, write nothing
    #[arg(long)]
    dry_run: bool,
    /// Accept package names that no catalog knows
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub(super) struct DiffArgs {
    from: u64,
    to: u64,
    #[arg(long)]
    json: bool,
}

pub(super) fn rollback(client: &Client, a: RollbackArgs) -> CliResult {
    let r = client.rollback(&RollbackRequest {
        to: a.to,
        dry_run: a.dry_run,
        force: a.force,
    })?;
    print_apply(&r);
    Ok(())
}

pub(super) fn diff(client: &Client, a: DiffArgs) -> CliResult {
    let r = client.diff(&DiffQuery {
        from: a.from,
        to: a.to,
    })?;
    if a.json {
        return print_json(&r);
    }
    for c in &r.changes {
        outln!("{c}");
    }
    Ok(())
}
