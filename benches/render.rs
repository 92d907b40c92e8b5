//! Render benchmarks: what a cold request for one host costs, broken down, and whether the
//! per-host cost depends on the size of the fleet.
//!
//! `cargo bench -j1 --bench render`. Groups:
//!
//! - `cold/*`: one host with 10 tasks of 5 dependencies each. `build_archive` is the whole
//!   cold render (every deb built, as with an empty deb cache); the other entries are its
//!   parts (`host_data`, `build_deb` of one task package, the indexes, the signatures) and
//!   `build_archive_cached_task_debs`, the render with the task debs already in the deb cache
//!   and only the host's own package built: a host's first request once other hosts with
//!   the same tasks have been served.
//! - `fleet/*`: `store.host_data(host)` + `repo::packages(&data, serving())` for one host in a store of
//!   1,000 and of 10,000 nodes (200 tasks, ~3 per node, some including others). Both stores
//!   are built in edits of up to 5,000 nodes (so the 10,000-node one also has bigger edits).
//! - `fleet_edit/*`: one one-op edit (set a node variable) in each of those stores: the
//!   admin-side cost of an edit as the fleet grows.
//! - `cold/view_3_templated_files`: `build_archive` again, for the same host when three of its
//!   tasks also ship a templated file (`benches/templates/`: an nginx site, `nginx.conf` and an
//!   `/etc/default` file, 1.3 to 2.6 KiB with loops and conditionals), rendered cold. Compare
//!   with `cold/build_archive`; `cold/packages_3_templated_files` is the rendering part.
//! - `template_edit/*`: a store of 1,000 nodes that all run task `web`, which ships the nginx
//!   site template (global variables plus per-node `weight` and `tls`).
//!   `shared_1000` replaces that template: `Store::edit`, as `POST /api/v1/edit` calls
//!   it, renders the new template for all 1,000 hosts before the durable commit.
//!   `node_var_1000`, the baseline, sets a variable of one node of the same store (one host
//!   re-rendered).

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};

use umc::api::Op;
use umc::compress::{self, GzipOs};
use umc::repo::{self, DEFAULT_ARCHITECTURES, DebArtifact};
use umc::sign::SigningKeys;
use umc::store::{EditOptions, Store};

const USER: &str = "bench";
const HOST: &str = "web1.example.com";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What umcd adds to `umc-node`: a keyring-sized blob and the default policy.
fn serving() -> umc::nodefiles::Serving<'static> {
    umc::nodefiles::Serving {
        keyring: &[0x99; 600],
        conffiles: umc::model::ConffilePolicy::KeepLocal,
        ca: None,
    }
}

fn archs() -> Vec<String> {
    DEFAULT_ARCHITECTURES
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn keys() -> SigningKeys {
    SigningKeys::generate("umc bench <bench@umc.invalid>").expect("generate signing key")
}

fn open_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("umc.redb")).expect("open store");
    (dir, store)
}

/// Five dependencies of task `t`, in the shapes apt sees: plain, versioned, alternatives.
fn relations(t: &str) -> Vec<String> {
    vec![
        format!("{t}-server"),
        format!("{t}-client (>= 1.2.3)"),
        format!("lib{t}1 (>= 2.0~rc1)"),
        format!("{t}-tools | {t}-utils"),
        "ca-certificates".to_string(),
    ]
}

fn task_ops(name: &str, description: &str) -> Vec<Op> {
    vec![
        Op::TaskAdd {
            task: name.to_string(),
            description: Some(description.to_string()),
        },
        Op::TaskDepend {
            task: name.to_string(),
            relations: relations(name),
        },
    ]
}

/// The `cold` fixture: one host, 10 tasks x 5 dependencies, built like an admin would
/// (one edit per task, then the node), so each package has a short changelog.
fn small_store() -> (tempfile::TempDir, Store) {
    let (dir, store) = open_store();
    let t = now();
    let tasks: Vec<String> = (0..10).map(|i| format!("task{i:02}")).collect();
    for name in &tasks {
        let ops = task_ops(name, &format!("Task {name} of the benchmark"));
        store
            .edit(USER, &ops, t, EditOptions::default())
            .expect("task edit");
    }
    let ops = vec![
        Op::NodeAdd {
            host: HOST.to_string(),
            vars: Default::default(),
            ssh: None,
        },
        Op::Assign {
            host: HOST.to_string(),
            tasks: tasks.clone(),
        },
    ];
    store
        .edit(USER, &ops, t, EditOptions::default())
        .expect("node edit");
    (dir, store)
}

/// The three task files of `templated_store`, also used by `benches/template-edit.sh`.
const SITE_CONF: &str = include_str!("templates/site.conf.tera");
const NGINX_CONF: &str = include_str!("templates/nginx.conf.tera");
const DEFAULT_AGENT: &str = include_str!("templates/default.tera");

fn vars(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The global variables the templates read.
fn global_vars() -> BTreeMap<String, String> {
    vars(&[
        ("collector_port", "4317"),
        ("collectors", "10.1.0.21, 10.1.0.22, 10.2.0.21"),
        ("datacenter", "fra1"),
        ("log_level", "warn"),
        ("max_body", "16m"),
        ("monitor_from", "10.9.0.0/24,10.9.1.0/24"),
        ("proxies", "10.0.0.2,10.0.0.3,10.0.1.2,10.0.1.3"),
        ("resolvers", "10.0.0.53,10.0.1.53"),
        ("site_domain", "shop.example.net"),
        (
            "upstreams",
            "10.0.2.11:8080,10.0.2.12:8080,10.0.2.13:8080,10.0.2.14:8080",
        ),
        ("worker_connections", "4096"),
    ])
}

/// The variables of node `i`: every node has its own `weight`, every other one TLS.
fn node_vars(i: usize) -> BTreeMap<String, String> {
    let weight = (i % 5 + 1).to_string();
    let tls = if i.is_multiple_of(2) { "on" } else { "off" };
    vars(&[("weight", &weight), ("tls", tls)])
}

fn file_op(task: &str, path: &str, template: String, reload: Option<&str>) -> Op {
    Op::TaskFileAdd {
        task: task.to_string(),
        path: path.to_string(),
        template,
        mode: Some(0o644),
        reload: reload.map(str::to_string),
        restart: None,
    }
}

/// `small_store`, then one edit: the global and node variables, and one templated file in
/// each of the first three tasks.
fn templated_store() -> (tempfile::TempDir, Store) {
    let (dir, store) = small_store();
    let ops = vec![
        Op::VarSet {
            vars: global_vars(),
        },
        Op::NodeSet {
            host: HOST.to_string(),
            set_vars: node_vars(0),
            unset_vars: Vec::new(),
            ssh: None,
            url: None,
            conffiles: None,
        },
        file_op(
            "task00",
            "/etc/nginx/conf.d/site.conf",
            SITE_CONF.to_string(),
            Some("nginx"),
        ),
        file_op(
            "task01",
            "/etc/nginx/nginx.conf",
            NGINX_CONF.to_string(),
            Some("nginx"),
        ),
        file_op(
            "task02",
            "/etc/default/app-agent",
            DEFAULT_AGENT.to_string(),
            None,
        ),
    ];
    store
        .edit(USER, &ops, now(), EditOptions::default())
        .expect("templates edit");
    (dir, store)
}

fn cold(c: &mut Criterion) {
    let (_dir, store) = small_store();
    let keys = keys();
    let archs = archs();
    let data = store.host_data(HOST).expect("host_data").expect("host");
    assert_eq!(data.tasks.len(), 10);
    let packages = repo::packages(&data, serving()).expect("packages");
    assert_eq!(packages.len(), 11);
    let task_pkg = packages
        .iter()
        .find(|p| p.name.starts_with("umc-task-"))
        .expect("a task package")
        .clone();
    let host_pkg = packages
        .iter()
        .find(|p| !p.name.starts_with("umc-task-"))
        .expect("the host package")
        .clone();
    let prebuilt: HashMap<String, Arc<DebArtifact>> = packages
        .iter()
        .map(|p| (p.name.clone(), Arc::new(repo::build_deb(p).expect("deb"))))
        .collect();
    let archive = repo::build_archive(&data, &packages, &archs, &keys, |p| {
        repo::build_deb(p).map(Arc::new)
    })
    .expect("archive");
    let index_len = |name| archive.index(name).expect("index").len();
    let index = archive.index("Packages").expect("Packages").bytes.clone();
    let body = archive.release.bytes.clone();
    let sig_time = UNIX_EPOCH + Duration::from_secs(data.date.max(0) as u64);
    eprintln!(
        "cold fixture: {} packages, Packages {} B (gz {} B, xz {} B), InRelease {} B, task deb {} B",
        packages.len(),
        index_len("Packages"),
        index_len("Packages.gz"),
        index_len("Packages.xz"),
        archive.in_release.len(),
        prebuilt[&task_pkg.name].artifact.len(),
    );

    let mut g = c.benchmark_group("cold");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g.bench_function("build_archive", |b| {
        b.iter(|| {
            let data = black_box(&data);
            let packages = repo::packages(data, serving()).expect("packages");
            repo::build_archive(data, &packages, &archs, &keys, |p| {
                repo::build_deb(p).map(Arc::new)
            })
            .expect("archive")
        })
    });
    g.bench_function("build_archive_cached_task_debs", |b| {
        b.iter(|| {
            let data = black_box(&data);
            let packages = repo::packages(data, serving()).expect("packages");
            repo::build_archive(data, &packages, &archs, &keys, |p| {
                if p.name == host_pkg.name {
                    repo::build_deb(p).map(Arc::new)
                } else {
                    Ok(prebuilt[&p.name].clone())
                }
            })
            .expect("archive")
        })
    });
    // The same host when three of its tasks ship a templated file, rendered cold.
    let (_tdir, tstore) = templated_store();
    let tdata = tstore.host_data(HOST).expect("host_data").expect("host");
    let tpackages = repo::packages(&tdata, serving()).expect("packages");
    let tarchive = repo::build_archive(&tdata, &tpackages, &archs, &keys, |p| {
        repo::build_deb(p).map(Arc::new)
    })
    .expect("archive");
    eprintln!(
        "templated fixture: {} packages, rendered files {:?} B, InRelease {} B",
        tpackages.len(),
        tpackages
            .iter()
            .flat_map(|p| &p.files)
            .map(|f| (f.path.as_str(), f.contents.len()))
            .collect::<Vec<_>>(),
        tarchive.in_release.len(),
    );
    g.bench_function("view_3_templated_files", |b| {
        b.iter(|| {
            let data = black_box(&tdata);
            let packages = repo::packages(data, serving()).expect("packages");
            repo::build_archive(data, &packages, &archs, &keys, |p| {
                repo::build_deb(p).map(Arc::new)
            })
            .expect("archive")
        })
    });
    g.bench_function("packages_3_templated_files", |b| {
        b.iter(|| repo::packages(black_box(&tdata), serving()).expect("packages"))
    });
    g.bench_function("host_data", |b| {
        b.iter(|| store.host_data(black_box(HOST)).expect("host_data"))
    });
    g.bench_function("packages", |b| {
        b.iter(|| repo::packages(black_box(&data), serving()))
    });
    g.bench_function("build_deb_task", |b| {
        b.iter(|| repo::build_deb(black_box(&task_pkg)).expect("deb"))
    });
    g.bench_function("build_deb_host", |b| {
        b.iter(|| repo::build_deb(black_box(&host_pkg)).expect("deb"))
    });
    g.bench_function("package_key_all", |b| {
        b.iter(|| {
            black_box(&packages)
                .iter()
                .map(repo::package_key)
                .collect::<Vec<_>>()
        })
    });
    g.bench_function("index_gzip", |b| {
        b.iter(|| compress::gzip(black_box(&index), GzipOs::Unknown).expect("gzip"))
    });
    g.bench_function("index_xz", |b| {
        b.iter(|| compress::xz(black_box(&index)).expect("xz"))
    });
    g.bench_function("sign_inrelease_and_release_gpg", |b| {
        b.iter(|| {
            (
                keys.clearsign(black_box(&body), sig_time)
                    .expect("clearsign"),
                keys.detached_armored(black_box(&body), sig_time)
                    .expect("detached"),
            )
        })
    });
    g.finish();
}

const FLEET_TASKS: usize = 200;
/// Nodes per `edit` call (one redb transaction each): the 1,000-node store is one edit, the
/// 10,000-node store two, so the per-host cost must also not depend on how big the edits
/// that touched the host were.
const NODES_PER_EDIT: usize = 5_000;

fn node_name(i: usize) -> String {
    format!("n{i:05}.fleet.example.com")
}

fn fleet_task(i: usize) -> String {
    format!("t{i:03}")
}

/// The ~3 tasks node `i` is assigned (duplicates collapse).
fn node_tasks(i: usize) -> Vec<String> {
    [i * 7, i * 13 + 1, i * 31 + 2]
        .into_iter()
        .map(|k| fleet_task(k % FLEET_TASKS))
        .collect()
}

/// `nodes` nodes and 200 tasks; every 10th task includes the two tasks before it (so no
/// cycles). One edit for the tasks, then one per `NODES_PER_EDIT` nodes.
fn fleet_store(nodes: usize) -> (tempfile::TempDir, Store) {
    let started = Instant::now();
    let (dir, store) = open_store();
    let t = now();
    let mut ops = Vec::new();
    for i in 0..FLEET_TASKS {
        let name = fleet_task(i);
        ops.extend(task_ops(&name, &format!("Fleet task {i}")));
        if i % 10 == 9 {
            ops.push(Op::TaskInclude {
                task: name,
                subtasks: vec![fleet_task(i - 1), fleet_task(i - 2)],
            });
        }
    }
    store
        .edit(USER, &ops, t, EditOptions::default())
        .expect("tasks edit");
    let mut i = 0;
    while i < nodes {
        let end = (i + NODES_PER_EDIT).min(nodes);
        let mut ops = Vec::with_capacity(2 * (end - i));
        for n in i..end {
            ops.push(Op::NodeAdd {
                host: node_name(n),
                vars: Default::default(),
                ssh: None,
            });
            ops.push(Op::Assign {
                host: node_name(n),
                tasks: node_tasks(n),
            });
        }
        store
            .edit(USER, &ops, t, EditOptions::default())
            .expect("nodes edit");
        i = end;
    }
    eprintln!(
        "fleet store with {nodes} nodes, {FLEET_TASKS} tasks built in {:.2?} ({} edits)",
        started.elapsed(),
        1 + nodes.div_ceil(NODES_PER_EDIT)
    );
    (dir, store)
}

fn fleet(c: &mut Criterion) {
    // Both stores exist for the whole group; the same node index in both: the same tasks,
    // the same view size.
    let host = node_name(7);
    let stores: Vec<(usize, tempfile::TempDir, Store)> = [1_000usize, 10_000]
        .into_iter()
        .map(|nodes| {
            let (dir, store) = fleet_store(nodes);
            let data = store.host_data(&host).expect("host_data").expect("host");
            let newest = store.log(None, 1).expect("log");
            eprintln!(
                "fleet {nodes}: host {host} sees {} tasks, {} packages; (history items, lines) \
                 per entity {:?}; the newest generation has {} change lines",
                data.tasks.len(),
                repo::packages(&data, serving()).expect("packages").len(),
                data.history
                    .values()
                    .map(|h| (h.len(), h.iter().map(|i| i.lines.len()).sum::<usize>()))
                    .collect::<Vec<_>>(),
                newest[0].changes.len(),
            );
            (nodes, dir, store)
        })
        .collect();

    let mut g = c.benchmark_group("fleet");
    g.sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (nodes, _, store) in &stores {
        g.bench_with_input(
            BenchmarkId::new("host_data+packages", nodes),
            &host,
            |b, host| {
                b.iter(|| {
                    let data = store
                        .host_data(black_box(host))
                        .expect("host_data")
                        .expect("host");
                    repo::packages(&data, serving()).expect("packages")
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("host_data", nodes), &host, |b, host| {
            b.iter(|| store.host_data(black_box(host)).expect("host_data"))
        });
    }
    g.finish();

    // The admin side: one small edit (one node variable) in a store of each size. Each
    // iteration commits a generation, so the stores are measured after the read benches.
    let mut g = c.benchmark_group("fleet_edit");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (nodes, _, store) in &stores {
        let mut i = 0u64;
        g.bench_with_input(BenchmarkId::new("edit_one_var", nodes), &host, |b, host| {
            b.iter(|| {
                i += 1;
                let op = Op::NodeSet {
                    host: host.clone(),
                    set_vars: [("bench".to_string(), i.to_string())].into(),
                    unset_vars: Vec::new(),
                    ssh: None,
                    url: None,
                    conffiles: None,
                };
                store
                    .edit(USER, &[op], now(), EditOptions::default())
                    .expect("edit")
            })
        });
    }
    g.finish();
}

const TEMPLATE_NODES: usize = 1_000;

/// `TEMPLATE_NODES` nodes, each with its own variables, all assigned task `web`, which ships
/// the nginx site template. Two edits: the variables and the task, then the nodes.
fn template_store() -> (tempfile::TempDir, Store) {
    let started = Instant::now();
    let (dir, store) = open_store();
    let t = now();
    let mut ops = vec![Op::VarSet {
        vars: global_vars(),
    }];
    ops.extend(task_ops("web", "Web frontends"));
    ops.push(file_op(
        "web",
        "/etc/nginx/conf.d/site.conf",
        SITE_CONF.to_string(),
        Some("nginx"),
    ));
    store
        .edit(USER, &ops, t, EditOptions::default())
        .expect("task edit");
    let mut ops = Vec::with_capacity(2 * TEMPLATE_NODES);
    for n in 0..TEMPLATE_NODES {
        ops.push(Op::NodeAdd {
            host: node_name(n),
            vars: node_vars(n),
            ssh: None,
        });
        ops.push(Op::Assign {
            host: node_name(n),
            tasks: vec!["web".to_string()],
        });
    }
    store
        .edit(USER, &ops, t, EditOptions::default())
        .expect("nodes edit");
    eprintln!(
        "template store with {TEMPLATE_NODES} nodes on task 'web' built in {:.2?}",
        started.elapsed()
    );
    (dir, store)
}

/// The site template, changed: a revision comment, and every other revision one more
/// directive, so each edit really replaces the text.
fn site_revision(i: u64) -> String {
    let extra = if i.is_multiple_of(2) {
        ""
    } else {
        "    proxy_buffering off;\n"
    };
    let body = SITE_CONF.replacen(
        "    root /srv/www/",
        &format!("{extra}    root /srv/www/"),
        1,
    );
    format!("# revision {i}\n{body}")
}

fn template_edit(c: &mut Criterion) {
    let (_dir, store) = template_store();
    let mut g = c.benchmark_group("template_edit");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    let mut i = 0u64;
    g.bench_function("shared_1000", |b| {
        b.iter(|| {
            i += 1;
            let op = file_op(
                "web",
                "/etc/nginx/conf.d/site.conf",
                site_revision(i),
                Some("nginx"),
            );
            let e = store
                .edit(USER, &[op], now(), EditOptions::default())
                .expect("edit");
            assert_eq!(e.changes.len(), 1, "{:?}", e.changes);
            e
        })
    });
    let host = node_name(7);
    g.bench_function("node_var_1000", |b| {
        b.iter(|| {
            i += 1;
            let op = Op::NodeSet {
                host: host.clone(),
                set_vars: [("bench".to_string(), i.to_string())].into(),
                unset_vars: Vec::new(),
                ssh: None,
                url: None,
                conffiles: None,
            };
            store
                .edit(USER, &[op], now(), EditOptions::default())
                .expect("edit")
        })
    });
    g.finish();
    // The stored model renders the newest revision for the hosts.
    let data = store.host_data(&host).expect("host_data").expect("host");
    let packages = repo::packages(&data, serving()).expect("packages");
    let site = packages
        .iter()
        .flat_map(|p| &p.files)
        .find(|f| f.path == "/etc/nginx/conf.d/site.conf")
        .expect("site.conf");
    let first = String::from_utf8_lossy(&site.contents);
    eprintln!(
        "template_edit: {i} edits; {host} now gets a {} B site.conf starting '{}'",
        site.contents.len(),
        first.lines().next().unwrap_or_default()
    );
}

criterion_group!(benches, cold, fleet, template_edit);
criterion_main!(benches);
