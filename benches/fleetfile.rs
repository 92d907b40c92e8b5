//! Export and apply of a fleet of 10,000 nodes and 500 tasks: `cargo bench --bench fleetfile`.
//! Prints wall times (one run each; the work is seconds, not microseconds) and the TOML size.

use std::collections::BTreeMap;
use std::time::Instant;

use umc::api::Op;
use umc::fleetfile::{Fleet, diff_ops, parse_toml, to_toml};
use umc::store::{EditOptions, Store};

/// The packages are made up: no catalog knows them.
fn forced() -> EditOptions {
    EditOptions {
        force: true,
        ..EditOptions::default()
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&dir.path().join("umc.redb")).expect("open");
    let mut ops = Vec::new();
    for t in 0..500 {
        ops.push(Op::TaskAdd {
            task: format!("task{t}"),
            description: Some(format!("Task {t}")),
        });
        ops.push(Op::TaskDepend {
            task: format!("task{t}"),
            relations: vec![format!("pkg{t}"), "curl".into()],
        });
    }
    store.edit("bench", &ops, 1, forced()).expect("tasks");
    for chunk in 0..10 {
        let mut ops = Vec::new();
        for n in chunk * 1000..(chunk + 1) * 1000 {
            let host = format!("node{n}.example.com");
            ops.push(Op::NodeAdd {
                host: host.clone(),
                vars: BTreeMap::from([("rack".to_string(), format!("r{}", n % 40))]),
                ssh: None,
            });
            ops.push(Op::Assign {
                host,
                tasks: vec![format!("task{}", n % 500), format!("task{}", (n + 7) % 500)],
            });
        }
        store.edit("bench", &ops, 2, forced()).expect("nodes");
    }
    let t = Instant::now();
    let e = store.export(false).expect("export");
    let text = to_toml(&Fleet::from_model(
        &e.model,
        e.generation,
        e.server_generation,
        false,
    ));
    println!(
        "export (read + TOML): {:?}, {} bytes ({} lines)",
        t.elapsed(),
        text.len(),
        text.lines().count()
    );
    let apply = |text: &str, what: &str| {
        let t = Instant::now();
        let (fleet, lines) = parse_toml(text).expect("parse");
        let want = fleet.to_model(&lines).expect("model");
        let parsed = t.elapsed();
        let (_, have) = store.model().expect("model");
        let (ops, tokens) = diff_ops(&have, &want);
        let opts = EditOptions { tokens, ..forced() };
        let out = store.edit("bench", &ops, 3, opts).expect("apply");
        println!(
            "apply ({what}): {:?} (parse + check {:?}), {} ops, {} change lines",
            t.elapsed(),
            parsed,
            ops.len(),
            out.changes.len()
        );
    };
    apply(&text, "same file, no change");
    let changed = text.replacen("rack = \"r0\"", "rack = \"r99\"", 1);
    apply(&changed, "one node variable changed");
}
