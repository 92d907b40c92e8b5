//! `umc-admin var set|unset|list`: global variables, overlaid by node variables in templates.

use clap::Subcommand;

use super::{CliResult, parse_vars, print_edit, print_json, print_table, shown_vars};
use crate::api::{Op, VarValues};
use crate::client::Client;

#[derive(Subcommand)]
pub enum VarCmd {
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

pub fn run(c: &Client, cmd: VarCmd) -> CliResult {
    let op = match cmd {
        VarCmd::Set { vars } => Op::VarSet {
            vars: parse_vars(&vars)?,
        },
        VarCmd::Unset { names } => Op::VarUnset { names },
        VarCmd::List { json } => {
            let vars: VarValues = c.get("/vars")?;
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
    print_edit(&c.edit(vec![op])?);
    Ok(())
}
