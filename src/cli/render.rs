//! `umc-admin render <host> <path>`: one file as that host gets it.

use clap::Args;

use super::{CliResult, print_json};
use crate::api::RenderQuery;
use crate::client::Client;

#[derive(Args)]
pub(super) struct RenderArgs {
    host: String,
    path: String,
    #[arg(long)]
    json: bool,
}

pub(super) fn run(c: &Client, a: RenderArgs) -> CliResult {
    let r = c.render(&a.host, &RenderQuery { path: a.path })?;
    if a.json {
        return print_json(&r);
    }
    // The file as the host gets it: unchanged into a pipe or file, cleaned on a terminal.
    super::term::out_raw(&super::term::data(&r.content));
    Ok(())
}
