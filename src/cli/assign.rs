//! `umc-admin assign|unassign <host> <task>...`

use clap::Args;

use super::{CliResult, commit};
use crate::api::Op;
use crate::client::Client;

#[derive(Args)]
pub(super) struct AssignArgs {
    host: String,
    #[arg(required = true)]
    tasks: Vec<String>,
}

pub(super) fn run(c: &Client, a: AssignArgs, assign: bool) -> CliResult {
    let op = if assign {
        Op::Assign {
            host: a.host,
            tasks: a.tasks,
        }
    } else {
        Op::Unassign {
            host: a.host,
            tasks: a.tasks,
        }
    };
    commit(c, vec![op], false)
}
