//! `umc-admin node …`

use clap::{Args, Subcommand};

use super::{CliResult, commit, parse_vars, print_json, print_table};
use crate::api::{EditRequest, NodeInfo, Op, TokenRotateRequest, TokenRotation};
use crate::client::Client;

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
        /// umcd's URL as this node reaches it (shipped to it in umc-node's apt source)
        #[arg(long)]
        url: Option<String>,
        /// keep-local, server-wins, or default (umcd's setting)
        #[arg(long, value_name = "POLICY")]
        conffiles: Option<String>,
    },
    /// Print the node's apt password, or give it a new one (--rotate)
    Token {
        host: String,
        /// Issue a new token; the node's next umc-node carries it, and the old one works until
        /// the node has reported that version
        #[arg(long)]
        rotate: bool,
        /// With --rotate: the old token stops working at once (for a leaked token; the node
        /// then needs the new one by hand: umc-admin node enroll)
        #[arg(long, requires = "rotate")]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Enroll a node: print the one line it runs as root (or run it over SSH with --ssh)
    Enroll(EnrollArgs),
    /// Print what the node needs: .sources, auth.conf line, key URL
    AptConfig(AptConfigArgs),
}

#[derive(Args)]
pub struct EnrollArgs {
    pub host: String,
    /// umcd's URL as the node reaches it, e.g. http://umc.example.com:8080 (remembered;
    /// needed the first time)
    #[arg(long)]
    pub url: Option<String>,
    /// Run the enrollment on the node over SSH (its ssh target, as root) instead of printing it
    #[arg(long)]
    pub ssh: bool,
    #[command(flatten)]
    pub fleet: super::fleet::FleetArgs,
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
            commit(c, vec![Op::NodeAdd { host, vars, ssh }], false)?;
        }
        NodeCmd::Rm { host } => commit(c, vec![Op::NodeRemove { host }], false)?,
        NodeCmd::Set {
            host,
            vars,
            unset,
            ssh,
            url,
            conffiles,
        } => {
            let set_vars = parse_vars(&vars)?;
            commit(
                c,
                vec![Op::NodeSet {
                    host,
                    set_vars,
                    unset_vars: unset,
                    ssh,
                    url,
                    conffiles,
                }],
                false,
            )?;
        }
        NodeCmd::Enroll(a) => return enroll(c, a),
        NodeCmd::Show { host, json } => {
            let n = c.node(&host)?;
            if json {
                return print_json(&n);
            }
            let vars = super::shown_vars(n.vars.clone());
            for line in show_lines(&n, &vars) {
                outln!("{line}");
            }
        }
        NodeCmd::List { json } => {
            let nodes = c.nodes()?;
            if json {
                return print_json(&nodes);
            }
            let rows: Vec<Vec<String>> = nodes
                .iter()
                .map(|n| vec![n.name.clone(), n.version.clone(), join(&n.tasks)])
                .collect();
            print_table(&["NODE", "VERSION", "TASKS"], &rows);
        }
        NodeCmd::Token {
            host,
            rotate: false,
            json,
            ..
        } => {
            let t = c.node_token(&host)?;
            if json {
                return print_json(&t);
            }
            outln!("{}", t.token);
            if let Some(r) = &t.rotation {
                errln!("{}", rotation_note(&t.host, r));
            }
        }
        NodeCmd::Token {
            host,
            rotate: true,
            force,
            json,
        } => {
            let r = c.rotate_node_token(&host, &TokenRotateRequest { force })?;
            if json {
                return print_json(&r);
            }
            errln!("generation {}: {}", r.generation, r.changes.join("; "));
            outln!("{}", r.token);
            match &r.rotation {
                Some(rot) => errln!("{}", rotation_note(&r.host, rot)),
                None => errln!(
                    "# the old token no longer works: give {0} the new one by hand (umc-admin node enroll {0})",
                    r.host
                ),
            }
        }
        NodeCmd::AptConfig(a) => {
            let t = c.node_token(&a.host)?;
            let n = c.node(&a.host)?;
            let info = c.server()?;
            out!(
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

/// What `node show` prints, line by line, with `vars` as [`super::shown_vars`] gives them.
pub(crate) fn show_lines(n: &NodeInfo, vars: &[(String, String)]) -> Vec<String> {
    let mut out = vec![
        format!("node:     {}", n.name),
        format!("package:  {} {}", n.package, n.version),
        format!(
            "ssh:      {}",
            n.ssh
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into())
        ),
        format!("url:      {}", n.url.as_deref().unwrap_or("-")),
        format!(
            "conffiles: {}",
            n.conffiles.as_deref().unwrap_or("umcd's default")
        ),
    ];
    if let Some(r) = &n.rotation {
        out.push(format!(
            "token:    rotating: the previous token works until the node reports umc-node {} (generation {})",
            r.until, r.generation
        ));
    }
    out.push(format!("tasks:    {}", join(&n.tasks)));
    out.push(format!("closure:  {}", join(&n.task_closure)));
    out.push("vars:".to_string());
    // A value is free text (an operator sets it): a line break in it must not start a line
    // of its own, which could pass for another variable or field.
    for (k, v) in vars {
        out.push(format!("  {k} = {}", super::term::one_line(v)));
    }
    out
}

/// What `node token` says about a rotation under way (never the old token).
fn rotation_note(host: &str, r: &TokenRotation) -> String {
    format!(
        "# rotating: the previous token of {host} still works until it reports umc-node {} or newer with the new token (its next cycle); rotate with --force to revoke it at once",
        r.until
    )
}

fn join(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(" ")
    }
}

pub use crate::nodefiles::{NODE_KEYRING, auth_file, sources_file};

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
        "{}\n{}\n# /etc/umc/node.conf (umc-cycle's settings)\nUMC_PACKAGE={package}\n\n# {NODE_KEYRING}: the archive key ({}), from\n#   {url}/umc-archive-keyring.gpg\n# e.g.: curl -fsSL {url}/umc-archive-keyring.gpg -o {NODE_KEYRING}\n",
        sources_file(url, host, NODE_KEYRING),
        auth_file(url, host, token),
        fingerprints.join(", ")
    )
}

/// `node enroll`: remember the URL, then print the node's one-liner or run it over SSH.
fn enroll(c: &Client, a: EnrollArgs) -> CliResult {
    if let Some(url) = &a.url {
        let outcome = c.edit(&EditRequest {
            ops: vec![Op::NodeSet {
                host: a.host.clone(),
                set_vars: Default::default(),
                unset_vars: Vec::new(),
                ssh: None,
                url: Some(url.clone()),
                conffiles: None,
            }],
            force: false,
        })?;
        if !outcome.changes.is_empty() {
            errln!(
                "generation {}: {}",
                outcome.generation,
                outcome.changes.join("; ")
            );
        }
    }
    let n = c.node(&a.host)?;
    let Some(url) = n.url else {
        return Err(super::usage(format!(
            "node '{}' has no URL yet: give --url (umcd's URL as the node reaches it)",
            n.name
        )));
    };
    let t = c.node_token(&a.host)?;
    let line = crate::nodefiles::enroll_command(&url, &t.host, &t.token, t.ca.as_deref());
    if a.ssh {
        // The audit history records the enrollment, never the node's credentials.
        let shown = format!("umc-admin node enroll {} --ssh", n.name);
        // The line goes to `sh -s` on stdin: in the command it would sit in `ps` for minutes.
        let stdin = Some(format!("{line}\n").into_bytes());
        return super::fleet::run_as(
            c,
            std::slice::from_ref(&n.name),
            "sh -s".to_string(),
            shown,
            stdin,
            a.fleet,
        );
    }
    errln!("# run as root on {}:", n.name);
    outln!("{line}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `http::import_fuzz`: a variable's value with a line break printed as lines of
    /// their own in `node show`, so an operator could forge what an admin reads there.
    #[test]
    fn node_show_keeps_each_variable_on_its_line() {
        let n = NodeInfo {
            name: "a.example.com".into(),
            package: "umc-a.example.com".into(),
            version: "1.1".into(),
            vars: [(
                "motd".to_string(),
                Some("hi\nnode:     evil.example.com\r\u{2028}x\ty".to_string()),
            )]
            .into(),
            tasks: Vec::new(),
            task_closure: Vec::new(),
            ssh: None,
            url: None,
            conffiles: None,
            generation: 1,
            rotation: None,
        };
        let lines = show_lines(&n, &crate::cli::shown_vars(n.vars.clone()));
        let motd: Vec<&String> = lines.iter().filter(|l| l.contains("motd")).collect();
        assert_eq!(
            motd,
            [r"  motd = hi\u000anode:     evil.example.com\u000d\u2028x\u0009y"]
        );
        assert!(lines.iter().all(|l| !l.contains(['\n', '\r', '\u{2028}'])));
    }
}
