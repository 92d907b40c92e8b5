//! `umc-admin node …`

use clap::{Args, Subcommand};

use super::{CliResult, parse_vars, print_edit, print_json, print_table};
use crate::api::{NodeInfo, NodeToken, Op, ServerInfo};
use crate::client::{Client, enc};

#[derive(Subcommand)]
pub enum NodeCmd {
    /// Add a node
    Add {
        host: String,
        /// Node variable, repeatable
        #[arg(long = "var", value_name = "K=V")]
        vars: Vec<String>,
        /// SSH target for umc-admin's fleet commands
        #[arg(long, value_name = "USER@ADDR[:PORT]")]
        ssh: Option<String>,
    },
    /// Remove a node
    Rm { host: String },
    /// Show a node
    Show {
        host: String,
        #[arg(long)]
        json: bool,
    },
    /// List nodes
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change a node's variables or SSH target
    Set {
        host: String,
        #[arg(long = "var", value_name = "K=V")]
        vars: Vec<String>,
        #[arg(long = "unset-var", value_name = "K")]
        unset: Vec<String>,
        #[arg(long, value_name = "USER@ADDR[:PORT]")]
        ssh: Option<String>,
    },
    /// Print the node's apt password
    Token { host: String },
    /// Print what the node needs: .sources, auth.conf line, key URL
    AptConfig(AptConfigArgs),
}

#[derive(Args)]
pub struct AptConfigArgs {
    host: String,
    /// The server URL as nodes reach it, e.g. http://umc.example.com:8080
    #[arg(long)]
    url: String,
}

pub fn run(c: &Client, cmd: NodeCmd) -> CliResult {
    match cmd {
        NodeCmd::Add { host, vars, ssh } => {
            let vars = parse_vars(&vars)?;
            print_edit(&c.edit(vec![Op::NodeAdd { host, vars, ssh }])?);
        }
        NodeCmd::Rm { host } => print_edit(&c.edit(vec![Op::NodeRemove { host }])?),
        NodeCmd::Set {
            host,
            vars,
            unset,
            ssh,
        } => {
            let set_vars = parse_vars(&vars)?;
            print_edit(&c.edit(vec![Op::NodeSet {
                host,
                set_vars,
                unset_vars: unset,
                ssh,
            }])?);
        }
        NodeCmd::Show { host, json } => {
            let n: NodeInfo = c.get(&format!("/nodes/{}", enc(&host)))?;
            if json {
                return print_json(&n);
            }
            println!("node:     {}", n.name);
            println!("package:  {} {}", n.package, n.version);
            println!(
                "ssh:      {}",
                n.ssh.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
            );
            println!("tasks:    {}", join(&n.tasks));
            println!("closure:  {}", join(&n.task_closure));
            println!("vars:");
            for (k, v) in &n.vars {
                println!("  {k} = {v}");
            }
        }
        NodeCmd::List { json } => {
            let nodes: Vec<NodeInfo> = c.get("/nodes")?;
            if json {
                return print_json(&nodes);
            }
            let rows: Vec<Vec<String>> = nodes
                .iter()
                .map(|n| vec![n.name.clone(), n.version.clone(), join(&n.tasks)])
                .collect();
            print_table(&["NODE", "VERSION", "TASKS"], &rows);
        }
        NodeCmd::Token { host } => {
            let t: NodeToken = c.get(&format!("/nodes/{}/token", enc(&host)))?;
            println!("{}", t.token);
        }
        NodeCmd::AptConfig(a) => {
            let t: NodeToken = c.get(&format!("/nodes/{}/token", enc(&a.host)))?;
            let n: NodeInfo = c.get(&format!("/nodes/{}", enc(&a.host)))?;
            let info: ServerInfo = c.get("/server")?;
            print!(
                "{}",
                apt_config(
                    &a.url,
                    &t.host,
                    &t.token,
                    &n.package,
                    &info.key_fingerprints
                )
            );
        }
    }
    Ok(())
}

fn join(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(" ")
    }
}

/// Where nodes keep the archive key.
pub const NODE_KEYRING: &str = "/etc/apt/keyrings/umc.gpg";

/// The node's `.sources` file, from `apt-conf/umc.sources.in` (tests use the same file).
pub fn sources_file(url: &str, host: &str, keyring: &str) -> String {
    include_str!("../../apt-conf/umc.sources.in")
        .replace("@URL@", url.trim_end_matches('/'))
        .replace("@HOST@", host)
        .replace("@KEYRING@", keyring)
}

/// The node's `auth.conf.d` entry, from `apt-conf/umc-auth.conf.in`.
pub fn auth_file(url: &str, host: &str, token: &str) -> String {
    include_str!("../../apt-conf/umc-auth.conf.in")
        .replace("@URL@", url.trim_end_matches('/'))
        .replace("@HOST@", host)
        .replace("@TOKEN@", token)
}

/// What a node needs to use its repository.
pub fn apt_config(
    url: &str,
    host: &str,
    token: &str,
    package: &str,
    fingerprints: &[String],
) -> String {
    let url = url.trim_end_matches('/');
    format!(
        "{}\n{}\n# /etc/umc/package (the package umc-cycle installs)\n{package}\n\n# {NODE_KEYRING}: the archive key ({}), from\n#   {url}/umc-archive-keyring.gpg\n# e.g.: curl -fsSL {url}/umc-archive-keyring.gpg -o {NODE_KEYRING}\n",
        sources_file(url, host, NODE_KEYRING),
        auth_file(url, host, token),
        fingerprints.join(", ")
    )
}
