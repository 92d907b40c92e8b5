//! `umc-admin key list|rotate|import|status|retire`: the archive signing keys.
//!
//! Rotation: `key rotate` adds a key (InRelease is signed by every key, and umc-node ships
//! them all); `key status` shows which nodes installed the umc-node that carries it;
//! `key retire <old>` stops signing with the old key once every active node has.

use std::path::PathBuf;

use base64::Engine;
use clap::{Args, Subcommand};

use super::{CliResult, Failure, print_json, print_table};
use crate::api::{KeyChangeResponse, KeyImportRequest, KeyInfo, KeyRetireRequest};
use crate::client::Client;

#[derive(Subcommand)]
pub(super) enum KeyCmd {
    /// The signing keys, newest first
    List(JsonArg),
    /// Add a new Ed25519 signing key; InRelease is then signed by every key
    Rotate(JsonArg),
    /// Add an existing secret key (e.g. from aptly or reprepro: gpg --export-secret-keys)
    Import(ImportArgs),
    /// Which nodes have installed the umc-node that ships every current key
    Status(JsonArg),
    /// Stop signing with a key; refused while an active node has not confirmed the others
    Retire(RetireArgs),
}

#[derive(Args)]
pub(super) struct JsonArg {
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct ImportArgs {
    /// The exported secret key, armored or binary, without passphrase
    file: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct RetireArgs {
    /// The key's full fingerprint (umc-admin key list)
    fingerprint: String,
    /// Retire even though active nodes have not confirmed the new keyring: they will fail
    /// to verify InRelease until they get it some other way
    #[arg(long)]
    force: bool,
    #[arg(long)]
    json: bool,
}

pub(super) fn run(c: &Client, cmd: KeyCmd) -> CliResult {
    match cmd {
        KeyCmd::List(a) => {
            let keys = c.keys()?;
            if a.json {
                return print_json(&keys);
            }
            print_keys(&keys);
            Ok(())
        }
        KeyCmd::Rotate(a) => {
            let r = c.rotate_key()?;
            if a.json {
                return print_json(&r);
            }
            outln!("added signing key {}", r.fingerprint);
            print_change(&r);
            outln!(
                "nodes get it with umc-node {} on their next cycle (umc-admin key status);",
                crate::model::version(r.generation)
            );
            outln!("then retire the old key with umc-admin key retire <fingerprint>");
            Ok(())
        }
        KeyCmd::Import(a) => {
            let bytes = std::fs::read(&a.file).map_err(|e| Failure {
                code: 1,
                message: format!("{}: {e}", a.file.display()),
            })?;
            let req = KeyImportRequest {
                key_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            };
            let r = c.import_key(&req)?;
            if a.json {
                return print_json(&r);
            }
            outln!("imported signing key {}", r.fingerprint);
            print_change(&r);
            Ok(())
        }
        KeyCmd::Status(a) => {
            let st = c.key_status()?;
            if a.json {
                return print_json(&st);
            }
            print_keys(&st.keys);
            outln!();
            let rows: Vec<Vec<String>> = st
                .nodes
                .iter()
                .map(|n| {
                    vec![
                        n.host.clone(),
                        if n.confirmed { "yes" } else { "no" }.to_string(),
                        n.installed.clone().unwrap_or_else(|| "-".into()),
                        n.needed.clone(),
                        if n.active { "active" } else { "stale" }.to_string(),
                    ]
                })
                .collect();
            print_table(
                &["HOST", "CONFIRMED", "UMC-NODE", "NEEDED", "ACTIVE"],
                &rows,
            );
            Ok(())
        }
        KeyCmd::Retire(a) => {
            let req = KeyRetireRequest {
                fingerprint: a.fingerprint,
                force: a.force,
            };
            let r = c.retire_key(&req)?;
            if a.json {
                return print_json(&r);
            }
            if !r.unconfirmed.is_empty() {
                errln!(
                    "warning: retired although these active nodes had not confirmed the new keyring: {}",
                    r.unconfirmed.join(", ")
                );
            }
            outln!("retired signing key {}", r.fingerprint);
            print_change(&r);
            Ok(())
        }
    }
}

fn print_change(r: &KeyChangeResponse) {
    outln!("signing keys: {}", r.keys.join(", "));
    outln!("generation {}", r.generation);
}

fn print_keys(keys: &[KeyInfo]) {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.fingerprint.clone(),
                k.algorithm.clone(),
                crate::time::release_date(k.created),
                k.node_version.clone().unwrap_or_else(|| "any".into()),
                k.user_id.clone(),
            ]
        })
        .collect();
    print_table(
        &["FINGERPRINT", "ALGORITHM", "CREATED", "UMC-NODE", "USER ID"],
        &rows,
    );
}
