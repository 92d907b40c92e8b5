//! `umc-admin restart <target>... <service> [--reload]`

use clap::Args;

use super::fleet::{self, FleetArgs};
use super::{CliResult, usage};
use crate::client::Client;

#[derive(Args)]
pub(super) struct RestartArgs {
    /// Targets (node name, task:<name>, all, or a glob), then the systemd unit
    #[arg(required = true, num_args = 2.., value_name = "TARGET... SERVICE")]
    args: Vec<String>,
    /// `systemctl reload` instead of restart
    #[arg(long)]
    reload: bool,
    #[command(flatten)]
    fleet: FleetArgs,
}

/// A systemd unit name: no shell metacharacters can reach the remote shell.
fn valid_unit(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.len() <= 256
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | ':' | '-'))
}

pub(super) fn restart_command(service: &str, reload: bool) -> String {
    let verb = if reload { "reload" } else { "restart" };
    format!(
        r#"if [ "$(id -u)" -ne 0 ]; then s="sudo -n"; else s=""; fi; $s systemctl {verb} -- {service}"#
    )
}

pub(super) fn run(c: &Client, mut a: RestartArgs) -> CliResult {
    let Some(service) = a.args.pop() else {
        return Err(usage("give targets and a service"));
    };
    if !valid_unit(&service) {
        return Err(usage(format!(
            "service '{service}': not a valid systemd unit name"
        )));
    }
    fleet::run(c, &a.args, restart_command(&service, a.reload), a.fleet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names() {
        assert!(valid_unit("nginx"));
        assert!(valid_unit("getty@tty1.service"));
        for bad in ["", "-x", "a;b", "a b", "$(x)", "a\\b"] {
            assert!(!valid_unit(bad), "{bad}");
        }
        assert!(restart_command("nginx", true).ends_with("systemctl reload -- nginx"));
    }
}
