//! `umc-admin`: edits the model through umcd's admin API. One file per subcommand.
//!
//! Exit codes mean something (a [`Failure`] carries one); they are listed for users in
//! [`Cli`]'s `after_help`, which `umc-admin --help` prints, and in README's table. Output goes
//! through [`term`]: remote text is cleaned of terminal controls, and a closed stdout ends
//! output quietly.

/// `println!` for umc-admin: the line is cleaned ([`term::clean`]), and a closed stdout is
/// not a panic.
macro_rules! outln {
    () => {
        $crate::cli::term::out_raw("\n")
    };
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        $crate::cli::term::out_raw(&$crate::cli::term::clean(&line));
    }};
}

/// `print!` for umc-admin, cleaned like [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::term::out_raw(&$crate::cli::term::clean(&format!($($arg)*)))
    };
}

/// `eprintln!` for umc-admin: cleaned, and a closed stderr is ignored.
macro_rules! errln {
    () => {
        $crate::cli::term::err_raw("\n")
    };
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        $crate::cli::term::err_raw(&$crate::cli::term::clean(&line));
    }};
}

/// `eprint!` for umc-admin, cleaned like [`errln!`].
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::cli::term::err_raw(&$crate::cli::term::clean(&format!($($arg)*)))
    };
}

mod assign;
mod backup;
mod catalog;
mod export;
pub mod fleet;
mod key;
pub(crate) mod log;
pub mod node;
mod render;
mod restart;
mod rollback;
mod ssh;
pub mod status;
mod task;
pub mod term;
pub mod upgrade;
mod user;
mod var;

use clap::{Parser, Subcommand};

use crate::api::{EditRequest, EditResponse, Op};
use crate::client::{Client, ClientError};

#[derive(Parser)]
#[command(
    name = "umc-admin",
    version,
    about = "Edit the umc fleet model through umcd, and run commands on its hosts over SSH",
    after_help = "Environment: UMC_URL (default http://127.0.0.1:8080), UMC_TOKEN or UMC_TOKEN_FILE (default ./umc-data/admin.token); over https UMC_TLS_PIN (sha256//…, as umcd prints it) or UMC_CA (a PEM file of CAs), else umcd's tls/ca.pem beside it ($UMC_DATA, ./umc-data or /var/lib/umc), else the system's CAs; for ssh/upgrade/restart SSH_AUTH_SOCK and UMC_KNOWN_HOSTS (default ~/.config/umc/known_hosts).\nExit codes: 0 success, 1 rejected input, 2 usage, 3 umcd unreachable, its certificate or the token refused, 4 server error, 5 a host exited non-zero, 6 a host did not run the command, 7 (status) a host is failed or stale, 130 interrupted; check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Nodes (hosts): add, remove, show, variables, apt configuration
    #[command(subcommand)]
    Node(node::NodeCmd),
    /// Tasks: packages to install and remove, included tasks
    #[command(subcommand)]
    Task(task::TaskCmd),
    /// Assign tasks to a node
    Assign(assign::AssignArgs),
    /// Unassign tasks from a node
    Unassign(assign::AssignArgs),
    /// Show the history of edits and fleet commands
    Log(log::LogArgs),
    /// Global variables (node variables overlay them in templates)
    #[command(subcommand)]
    Var(var::VarCmd),
    /// Print one file as a host gets it
    Render(render::RenderArgs),
    /// Upstream package catalogs: import, list, search, show, remove
    #[command(subcommand)]
    Catalog(catalog::CatalogCmd),
    /// Run a command on hosts over SSH
    Ssh(ssh::SshArgs),
    /// Run the node update cycle now, over SSH
    Upgrade(upgrade::UpgradeArgs),
    /// Restart (or reload) a systemd service over SSH
    Restart(restart::RestartArgs),
    /// Which hosts applied the model, which failed and why (exit 7 if any is failed or stale)
    Status(status::StatusArgs),
    /// Nagios/Icinga plugin: one status line with performance data, exit 0/1/2/3
    Check(status::CheckArgs),
    /// Save a consistent snapshot of the running umcd (database, signing keys: secret)
    Backup(backup::BackupArgs),
    /// Archive signing keys: list, rotate, import, status, retire
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// Print the whole model as TOML (or JSON): nodes, tasks, files, variables, assignments
    Export(export::ExportArgs),
    /// Make the server's model equal a fleet file, as one generation
    Apply(export::ApplyArgs),
    /// Restore an export (made with --with-secrets) into an empty server
    Import(export::ImportArgs),
    /// Make the model equal an earlier generation's, as a new generation
    Rollback(rollback::RollbackArgs),
    /// Show what changed between two generations
    Diff(rollback::DiffArgs),
    /// Users and roles (admin, operator, viewer): add, passwd, rm, list
    #[command(subcommand)]
    User(user::UserCmd),
    /// API tokens: create (for the calling user), list, revoke
    #[command(subcommand)]
    Token(user::TokenCmd),
}

/// A failure with the exit code it maps to.
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        let code = match (&e, e.status()) {
            (ClientError::Encode(_), _) => 4,
            (_, Some(401) | None) => 3,
            (_, Some(s)) if s >= 500 => 4,
            (_, Some(_)) => 1,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Failure {
        Failure {
            code: 4,
            message: e.to_string(),
        }
    }
}

pub fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

pub type CliResult = Result<(), Failure>;

pub fn run(cli: Cli) -> CliResult {
    // The plugin reports every failure, even an unreachable umcd, in its own format.
    if let Command::Check(a) = cli.command {
        let code = status::check(a);
        term::finish();
        std::process::exit(code);
    }
    let client = Client::from_env()?;
    match cli.command {
        Command::Node(c) => node::run(&client, c),
        Command::Task(c) => task::run(&client, c),
        Command::Assign(a) => assign::run(&client, a, true),
        Command::Unassign(a) => assign::run(&client, a, false),
        Command::Log(a) => log::run(&client, a),
        Command::Var(c) => var::run(&client, c),
        Command::Render(a) => render::run(&client, a),
        Command::Catalog(c) => catalog::run(&client, c),
        Command::Ssh(a) => ssh::run(&client, a),
        Command::Upgrade(a) => upgrade::run(&client, a),
        Command::Restart(a) => restart::run(&client, a),
        Command::Status(a) => status::run(&client, a),
        Command::Check(_) => Ok(()),
        Command::Backup(a) => backup::run(&client, a),
        Command::Key(c) => key::run(&client, c),
        Command::Export(a) => export::export(&client, a),
        Command::Apply(a) => export::apply(&client, a),
        Command::Import(a) => export::import(&client, a),
        Command::Rollback(a) => rollback::rollback(&client, a),
        Command::Diff(a) => rollback::diff(&client, a),
        Command::User(c) => user::run_user(&client, c),
        Command::Token(c) => user::run_token(&client, c),
    }
}

/// Commits `ops` as one generation and prints the outcome; `force` accepts package names that
/// no catalog knows.
pub fn commit(c: &Client, ops: Vec<Op>, force: bool) -> CliResult {
    print_edit(&c.edit(&EditRequest { ops, force })?);
    Ok(())
}

/// Prints the outcome of an edit: its change lines and the generation; warnings on stderr.
pub fn print_edit(r: &EditResponse) {
    for w in &r.warnings {
        errln!("warning: {w}");
    }
    if r.changes.is_empty() {
        outln!("nothing changed (generation {})", r.generation);
        return;
    }
    for c in &r.changes {
        outln!("{c}");
    }
    outln!("generation {}", r.generation);
}

pub fn print_json<T: serde::Serialize>(v: &T) -> CliResult {
    outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A plain left-aligned table; the last column is not padded.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    // Cells come from umcd: one line each, whatever they hold.
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| term::one_line(c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        outln!("{}", out.trim_end());
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// `k=v` arguments.
pub fn parse_vars(vars: &[String]) -> Result<std::collections::BTreeMap<String, String>, Failure> {
    let mut out = std::collections::BTreeMap::new();
    for v in vars {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| usage(format!("--var '{v}': expected key=value")))?;
        out.insert(k.to_string(), val.to_string());
    }
    Ok(out)
}

/// Variables as umcd sent them, one `(name, value)` per variable: a value the caller's role
/// may not read (a viewer's; umcd sent `null`) is printed as `(hidden)`, and stderr says why
/// once.
pub fn shown_vars(vars: crate::api::VarValues) -> Vec<(String, String)> {
    if vars.values().any(Option::is_none) {
        errln!("# variable values are hidden: only operators and admins read them");
    }
    vars.into_iter()
        .map(|(k, v)| (k, v.unwrap_or_else(|| "(hidden)".into())))
        .collect()
}
