//! `umc-admin var set|unset|list`: global variables, overlaid by node variables in templates.

use clap::Subcommand;

use super::{CliResult, commit, parse_vars, print_json, print_table, shown_vars};
use crate::api::Op;
use crate::client::Client;

#[derive(Subcommand)]
pub(super) enum VarCmd {
    /// Set global variables
    Set {
        #[arg(required = true, value_name = "K=V")]
        vars: Vec<String>,
    },
    /// Remove global variables
    Unset {
        #[arg(required = true, value_name = "K")]
        names: Vec<String>,
    },
    /// List global variables
    List {
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(c: &Client, cmd: VarCmd) -> CliResult {
    let op = match cmd {
        VarCmd::Set { vars } => Op::VarSet {
            vars: parse_vars(&vars)?,
        },
        VarCmd::Unset { names } => Op::VarUnset { names },
        VarCmd::List { json } => {
            let vars = c.vars()?;
            if json {
                return print_json(&vars);
            }
            let rows: Vec<Vec<String>> = shown_vars(vars)
                .into_iter()
                .map(|(k, v)| vec![k, v])
                .collect();
            print_table(&["NAME", "VALUE"], &rows);
            return Ok(());
        }
    };
    commit(c, vec![op], false)
}
