//! `umc-admin user …` and `umc-admin token …`: named users with roles, and API tokens.
//! Passwords are read from the terminal without echo, or from standard input when it is not
//! a terminal: never from the command line, where `ps` shows them.

use std::io::{BufRead, IsTerminal, Write};

use clap::{Subcommand, ValueEnum};

use super::{CliResult, Failure, print_json, print_table};
use crate::api::{Role, TokenRequest, UserRequest};
use crate::client::Client;

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Operator,
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Operator => Role::Operator,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

#[derive(Subcommand)]
pub(super) enum UserCmd {
    /// Add a user; the password is read from the terminal (or standard input)
    Add {
        name: String,
        #[arg(long, value_enum, default_value = "viewer")]
        role: RoleArg,
    },
    /// Set a user's password (read from the terminal or standard input)
    Passwd { name: String },
    /// Remove a user and every token of it
    Rm { name: String },
    /// List users and roles
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(super) enum TokenCmd {
    /// Create an API token for the calling user (shown once)
    Create {
        /// A label to recognise it by in `token list`
        #[arg(long, default_value = "")]
        name: String,
        /// Days until it expires (default: never)
        #[arg(long)]
        expires: Option<u32>,
        /// Authenticate as this user with its password (read from the terminal or standard
        /// input) instead of the current token: how a user gets a first token
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List tokens (an admin sees everyone's)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id
    Revoke { id: String },
}

fn io_failure(e: std::io::Error) -> Failure {
    Failure {
        code: 2,
        message: format!("reading password: {e}"),
    }
}

/// Sets the terminal's echo with stty (umc forbids unsafe code, so no termios calls).
fn stty(arg: &str) {
    if let Ok(tty) = std::fs::File::open("/dev/tty") {
        let _ = std::process::Command::new("stty")
            .arg(arg)
            .stdin(tty)
            .status();
    }
}

/// One password line: from the terminal without echo, else the first line of stdin.
fn read_password(prompt: &str) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    let mut line = String::new();
    if stdin.is_terminal() {
        err!("{prompt}");
        let _ = std::io::stderr().flush();
        stty("-echo");
        let r = stdin.lock().read_line(&mut line);
        stty("echo");
        errln!();
        r.map_err(io_failure)?;
    } else {
        stdin.lock().read_line(&mut line).map_err(io_failure)?;
    }
    let p = line.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        return Err(super::usage("empty password"));
    }
    Ok(p)
}

fn new_password(name: &str) -> Result<String, Failure> {
    let p = read_password(&format!("password for {name}: "))?;
    if std::io::stdin().is_terminal() && read_password("again: ")? != p {
        return Err(super::usage("the passwords differ"));
    }
    Ok(p)
}

fn date(t: i64) -> String {
    crate::time::release_date(t)
}

pub(super) fn run_user(c: &Client, cmd: UserCmd) -> CliResult {
    match cmd {
        UserCmd::Add { name, role } => {
            let password = new_password(&name)?;
            let u = c.add_user(&UserRequest {
                name,
                role: Some(role.into()),
                password,
            })?;
            outln!("added user '{}' ({})", u.name, u.role.as_str());
        }
        UserCmd::Passwd { name } => {
            let password = new_password(&name)?;
            c.set_password(
                &name,
                &UserRequest {
                    name: String::new(),
                    role: None,
                    password,
                },
            )?;
            outln!("password of '{name}' changed");
        }
        UserCmd::Rm { name } => {
            c.remove_user(&name)?;
            outln!("removed user '{name}' and its tokens");
        }
        UserCmd::List { json } => {
            let users = c.users()?;
            if json {
                return print_json(&users);
            }
            let rows: Vec<Vec<String>> = users
                .into_iter()
                .map(|u| {
                    vec![
                        u.name,
                        u.role.as_str().to_string(),
                        if u.has_password { "yes" } else { "no" }.to_string(),
                        date(u.created),
                    ]
                })
                .collect();
            print_table(&["NAME", "ROLE", "PASSWORD", "CREATED"], &rows);
        }
    }
    Ok(())
}

pub(super) fn run_token(c: &Client, cmd: TokenCmd) -> CliResult {
    match cmd {
        TokenCmd::Create {
            name,
            expires,
            user,
            json,
        } => {
            let req = TokenRequest {
                name,
                expires_days: expires,
            };
            let t = match user {
                Some(u) => {
                    let p = read_password(&format!("password for {u}: "))?;
                    c.with_password(&u, &p).create_token(&req)?
                }
                None => c.create_token(&req)?,
            };
            if json {
                return print_json(&t);
            }
            errln!(
                "token {} for '{}' (shown once; use it as UMC_TOKEN):",
                t.info.id,
                t.info.user
            );
            outln!("{}", t.token);
        }
        TokenCmd::List { json } => {
            let tokens = c.tokens()?;
            if json {
                return print_json(&tokens);
            }
            let rows: Vec<Vec<String>> = tokens
                .into_iter()
                .map(|t| {
                    vec![
                        t.id,
                        t.user,
                        t.name,
                        date(t.created),
                        t.expires.map(date).unwrap_or_else(|| "never".into()),
                    ]
                })
                .collect();
            print_table(&["ID", "USER", "NAME", "CREATED", "EXPIRES"], &rows);
        }
        TokenCmd::Revoke { id } => {
            c.revoke_token(&id)?;
            outln!("revoked token {id}");
        }
    }
    Ok(())
}
