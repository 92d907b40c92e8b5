//! `umc-admin upgrade <target>...`: runs the node's update cycle now.

use clap::Args;

use super::CliResult;
use super::fleet::{self, FleetArgs};
use crate::client::Client;

#[derive(Args)]
pub struct UpgradeArgs {
    /// A node name, task:<name>, all, or a glob
    #[arg(required = true, value_name = "TARGET")]
    targets: Vec<String>,
    #[command(flatten)]
    fleet: FleetArgs,
}

/// The node's cycle: `umc-cycle` when installed, else the same three apt commands (as root,
/// through `sudo -n` when the SSH user is not root).
pub const UPGRADE_COMMAND: &str = r#"set -e; if [ "$(id -u)" -ne 0 ]; then s="sudo -n"; else s=""; fi; if command -v umc-cycle >/dev/null 2>&1; then $s umc-cycle; else p=$(cat /etc/umc/package 2>/dev/null || echo "umc-$(hostname -f | tr '[:upper:]' '[:lower:]')"); $s apt-get -q update -o APT::Update::Error-Mode=any; $s env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install "$p"; $s env DEBIAN_FRONTEND=noninteractive apt-get -q -y autoremove --purge; fi"#;

pub fn run(c: &Client, a: UpgradeArgs) -> CliResult {
    fleet::run(c, &a.targets, UPGRADE_COMMAND.to_string(), a.fleet)
}
