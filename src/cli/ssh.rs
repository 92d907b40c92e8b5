//! `umc-admin ssh <target>... -- <command...>`

use clap::Args;

use super::CliResult;
use super::fleet::{self, FleetArgs};
use crate::client::Client;

#[derive(Args)]
pub(super) struct SshArgs {
    /// A node name, task:<name>, all, or a glob ('*.web.example.com')
    #[arg(required = true, value_name = "TARGET")]
    targets: Vec<String>,
    /// The command, after `--`; run by the login shell on every host
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
    #[command(flatten)]
    fleet: FleetArgs,
}

pub(super) fn run(c: &Client, a: SshArgs) -> CliResult {
    fleet::run(c, &a.targets, a.command.join(" "), a.fleet)
}
