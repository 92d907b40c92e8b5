//! Database growth per edit (review finding 11): a task with a 900 KB template, then 1,000
//! one-line edits of it (`task depend` / `task undepend`), each committed durably as umcd
//! commits edits.
//! `cargo bench --bench history` prints the growth and fails above 5 MB. `EDITS=n` changes the
//! count. (`cargo test` guards the same property with 50 edits:
//! `store::history::tests::one_line_edits_do_not_copy_unchanged_templates`.)

use std::collections::BTreeMap;
use std::time::Instant;

use umc::api::Op;
use umc::store::{EditOptions, Store};

const LIMIT: u64 = 5 << 20;

fn main() {
    let edits: usize = std::env::var("EDITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("umc.redb");
    let store = Store::open(&path).expect("open");
    // 14,400 lines of 64 bytes: 900 KB, one of them templated.
    let mut template: String = (0..14_399).map(|i| format!("{i:062} \n")).collect();
    template.push_str("host = {{ host.fqdn }}\n");
    let ops = [
        Op::TaskAdd {
            task: "web".into(),
            description: None,
        },
        Op::TaskFileAdd {
            task: "web".into(),
            path: "/etc/big.conf".into(),
            template,
            mode: None,
            reload: None,
            restart: None,
        },
        Op::NodeAdd {
            host: "a.example.com".into(),
            vars: BTreeMap::new(),
            ssh: None,
        },
        Op::Assign {
            host: "a.example.com".into(),
            tasks: vec!["web".into()],
        },
    ];
    store
        .edit("bench", &ops, 1_700_000_000, EditOptions::default())
        .expect("setup");
    let size = || std::fs::metadata(&path).expect("stat").len();
    let before = size();
    let start = Instant::now();
    for i in 0..edits {
        // Add and remove one dependency in turn: each edit is one line, and the task record
        // keeps its size, so the growth measured is what an edit costs beside the record. (Adding
        // a new package every time instead makes each version carry the growing list: 1,000
        // dependencies in the end, which is the record's size, not the template's.)
        let op = if i % 2 == 0 {
            Op::TaskDepend {
                task: "web".into(),
                relations: vec!["htop".into()],
            }
        } else {
            Op::TaskUndepend {
                task: "web".into(),
                packages: vec!["htop".into()],
            }
        };
        store
            .edit(
                "bench",
                &[op],
                1_700_000_001 + i as i64,
                EditOptions::default(),
            )
            .expect("edit");
    }
    let growth = size() - before;
    println!(
        "{edits} one-line edits of a task with a 900 KB template: database {before} -> {} bytes, growth {growth} bytes ({:.1} KiB per edit), {:.1} s",
        size(),
        growth as f64 / 1024.0 / edits.max(1) as f64,
        start.elapsed().as_secs_f64()
    );
    let limit = LIMIT * edits as u64 / 1_000;
    assert!(
        growth < limit,
        "growth {growth} bytes is above {limit} bytes"
    );
}
