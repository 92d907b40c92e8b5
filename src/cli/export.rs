//! `umc-admin export`, `apply` and `import`: the fleet as a file that can live in git.

use clap::Args;

use super::{CliResult, Failure, print_json, usage};
use crate::api::{ApplyRequest, ApplyResponse, ExportQuery};
use crate::client::Client;
use crate::fleetfile;

#[derive(Args)]
pub(super) struct ExportArgs {
    /// Include node tokens (needed by `import`; keep such a file secret)
    #[arg(long)]
    with_secrets: bool,
    /// Include every generation's change lines (what `import` restores as history)
    #[arg(long)]
    history: bool,
    /// Output format
    #[arg(long, value_parser = ["toml", "json"], default_value = "toml")]
    format: String,
}

#[derive(Args)]
pub(super) struct ApplyArgs {
    /// The fleet file (TOML, or JSON when it ends in .json)
    file: String,
    /// Show the changes, write nothing
    #[arg(long)]
    dry_run: bool,
    /// Accept package names that no catalog knows
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub(super) struct ImportArgs {
    /// An export made with --with-secrets (and --history to keep changelogs)
    file: String,
}

pub(super) fn export(client: &Client, a: ExportArgs) -> CliResult {
    let fleet = client.export(&ExportQuery {
        secrets: a.with_secrets,
        history: a.history,
    })?;
    if a.format == "json" {
        return print_json(&fleet);
    }
    // A document to save: unchanged into a pipe or file, cleaned on a terminal.
    super::term::out_raw(&super::term::data(&fleetfile::to_toml(&fleet)));
    Ok(())
}

fn request(file: &str, dry_run: bool, force: bool) -> Result<ApplyRequest, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| usage(format!("{file}: {e}")))?;
    Ok(ApplyRequest {
        text,
        name: file.to_string(),
        json: file.ends_with(".json"),
        dry_run,
        force,
    })
}

pub(super) fn apply(client: &Client, a: ApplyArgs) -> CliResult {
    let r = client.apply(&request(&a.file, a.dry_run, a.force)?)?;
    print_apply(&r);
    Ok(())
}

/// Change lines, then what happened to them.
pub(super) fn print_apply(r: &ApplyResponse) {
    for w in &r.warnings {
        errln!("warning: {w}");
    }
    for c in &r.changes {
        outln!("{c}");
    }
    if r.changes.is_empty() {
        outln!("nothing to change (generation {})", r.generation);
    } else if r.dry_run {
        outln!("dry run: nothing was changed");
    } else {
        outln!("generation {}", r.generation);
    }
}

pub(super) fn import(client: &Client, a: ImportArgs) -> CliResult {
    let r = client.import(&request(&a.file, false, false)?)?;
    outln!(
        "imported {} nodes, {} tasks and {} generations; the model is at generation {}",
        r.nodes,
        r.tasks,
        r.history,
        r.generation
    );
    Ok(())
}
