//! The fleet file's round trips, on models generated from a small vocabulary: every model is
//! valid, and two of them differ in every way an edit can make them differ (tasks and nodes
//! come and go, includes turn around, a package moves from depends to removes).

use proptest::prelude::*;
use proptest::sample::subsequence;
use proptest::test_runner::{Config, FileFailurePersistence};

use std::collections::BTreeSet;

use super::*;
use crate::api::{Op, SshTarget};
use crate::model::{
    ConffilePolicy, FileAction, Model, Node, PreviousToken, Task, TaskFile, TokenSource,
    parse_relation,
};

const TASKS: [&str; 5] = ["base", "db", "dns", "mail", "web"];
const NODES: [&str; 4] = ["a.example.com", "b.example.org", "c.example.net", "d"];
/// Normalized, as `Task::depends` holds them.
const RELATIONS: [&str; 5] = [
    "nginx",
    "php8.2-fpm (>= 8.2)",
    "mawk | gawk",
    "curl:any",
    "libc6 (>= 2.36)",
];
/// Some of them also depended on elsewhere: see `without_conflicts`.
const REMOVES: [&str; 4] = ["apache2", "exim4", "nginx", "gawk"];
const PATHS: [&str; 4] = [
    "/etc/motd",
    "/etc/app/app.conf",
    "/usr/bin/hello",
    "/opt/x/run.sh",
];
const TEMPLATES: [&str; 5] = [
    "",
    "{{ host.fqdn }}\n",
    "quotes ''' and \"\"\" and \\ \n",
    "{% for t in host.tasks %}{{ t }}\n{% endfor %}",
    "tab\there\r\nno newline at the end",
];
const MODES: [u32; 4] = [0o644, 0o600, 0o755, 0o4755];
const TEXTS: [&str; 5] = [
    "",
    "Web server",
    "two\nlines",
    "ünïcödé \u{2028} ok",
    "'\"\\",
];
const VARS: [&str; 4] = ["dns", "zone", "_x", "Port_1"];

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/fuzz/regressions/fleetfile.txt",
        ))),
        ..Config::default()
    }
}

fn text() -> impl Strategy<Value = String> {
    proptest::sample::select(&TEXTS[..]).prop_map(String::from)
}

fn vars() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(
        proptest::sample::select(&VARS[..]).prop_map(String::from),
        text(),
        0..3,
    )
}

fn token(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn file() -> impl Strategy<Value = (String, String, u32, Option<FileAction>)> {
    (
        proptest::sample::select(&PATHS[..]),
        proptest::sample::select(&TEMPLATES[..]),
        proptest::sample::select(&MODES[..]),
        0..3u8,
    )
        .prop_map(|(path, template, mode, action)| {
            let action = match action {
                0 => None,
                1 => Some(FileAction::Reload("nginx".into())),
                _ => Some(FileAction::Restart("php8.2-fpm".into())),
            };
            (path.into(), template.into(), mode, action)
        })
}

/// A task without its name and includes (the model's order decides those).
fn task() -> impl Strategy<Value = Task> {
    (
        text(),
        subsequence(&RELATIONS[..], 0..=3).prop_shuffle(),
        subsequence(&REMOVES[..], 0..=2),
        proptest::collection::vec(file(), 0..3),
        subsequence(&PATHS[..], 0..=1),
        0..1000u64,
    )
        .prop_map(
            |(description, depends, removes, files, dropped, generation)| Task {
                description,
                depends: depends.into_iter().map(String::from).collect(),
                removes: removes.into_iter().map(String::from).collect(),
                files: files
                    .into_iter()
                    .map(|(path, template, mode, action)| {
                        let f = TaskFile {
                            path: path.clone(),
                            template,
                            mode,
                            action,
                        };
                        (path, f)
                    })
                    .collect(),
                dropped: dropped.into_iter().map(String::from).collect(),
                generation,
                ..Task::new("")
            },
        )
}

/// A node without its name and tasks.
fn node() -> impl Strategy<Value = Node> {
    (
        vars(),
        0..3u8,
        0..3u8,
        0..3u8,
        any::<u8>(),
        proptest::option::of((any::<u8>(), 1..100u64)),
        0..1000u64,
    )
        .prop_map(
            |(vars, ssh, url, conffiles, t, previous, generation)| Node {
                vars,
                ssh: match ssh {
                    0 => None,
                    1 => SshTarget::parse("root@192.0.2.1").ok(),
                    _ => SshTarget::parse("admin@[2001:db8::1]:2222").ok(),
                },
                url: match url {
                    0 => None,
                    1 => Some("http://umc.example.com:8080".into()),
                    _ => Some("https://umc.example.com/base".into()),
                },
                conffiles: match conffiles {
                    0 => None,
                    1 => Some(ConffilePolicy::KeepLocal),
                    _ => Some(ConffilePolicy::ServerWins),
                },
                previous_token: previous.map(|(p, until)| PreviousToken {
                    token: token(p),
                    until,
                }),
                generation,
                ..Node::new("", token(t))
            },
        )
}

/// No task removes a package that some task depends on, so no closure holds a conflict.
fn without_conflicts(mut m: Model) -> Model {
    let depended: BTreeSet<String> = m
        .tasks
        .values()
        .flat_map(|t| t.depends.iter())
        .flat_map(|d| parse_relation(d).map(|r| r.packages).unwrap_or_default())
        .collect();
    for t in m.tasks.values_mut() {
        t.removes.retain(|r| !depended.contains(r));
    }
    m
}

/// A valid model. Tasks are put in a random order and include only tasks before them, so
/// includes never form a cycle, but two models may include in opposite directions.
fn model() -> impl Strategy<Value = Model> {
    (
        proptest::collection::vec(proptest::option::of(task()), TASKS.len()),
        Just(TASKS.to_vec()).prop_shuffle(),
        proptest::collection::vec(any::<u8>(), TASKS.len()),
        proptest::collection::vec(proptest::option::of((node(), any::<u8>())), NODES.len()),
        vars(),
        0..1000u64,
    )
        .prop_map(|(tasks, order, includes, nodes, vars, vars_generation)| {
            let present: Vec<&str> = order
                .iter()
                .zip(&tasks)
                .filter(|(_, t)| t.is_some())
                .map(|(name, _)| *name)
                .collect();
            let mut m = Model {
                vars,
                vars_generation,
                ..Model::default()
            };
            for ((name, task), mask) in order.iter().zip(tasks).zip(includes) {
                let Some(task) = task else { continue };
                let before = present.iter().take_while(|p| *p != name);
                let includes = before
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, t)| t.to_string())
                    .collect();
                let task = Task {
                    name: name.to_string(),
                    includes,
                    ..task
                };
                m.tasks.insert(task.name.clone(), task);
            }
            for (name, node) in NODES.iter().zip(nodes) {
                let Some((node, mask)) = node else { continue };
                let tasks = present
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, t)| t.to_string())
                    .collect();
                let node = Node {
                    name: name.to_string(),
                    tasks,
                    ..node
                };
                m.nodes.insert(node.name.clone(), node);
            }
            without_conflicts(m)
        })
}

/// What `diff_ops` leaves to the edits themselves: generation counters, tokens, and the
/// conffiles a task dropped.
fn comparable(m: &Model) -> Model {
    let mut m = m.clone();
    m.vars_generation = 0;
    for t in m.tasks.values_mut() {
        t.generation = 0;
        t.dropped.clear();
    }
    for n in m.nodes.values_mut() {
        n.generation = 0;
        n.token.clear();
        n.previous_token = None;
    }
    m
}

/// The tokens `diff_ops` wants new nodes to get, in order (as the store hands them out).
struct Given(std::vec::IntoIter<Option<String>>);
impl TokenSource for Given {
    fn token(&mut self) -> String {
        self.0.next().flatten().unwrap_or_default()
    }
}

/// `old` edited by `diff_ops(old, new)`, through `Model::apply` and `Model::validate` as an
/// edit goes.
fn replay(old: &Model, new: &Model) -> Result<Model, TestCaseError> {
    let (ops, tokens) = diff_ops(old, new);
    let mut m = old.clone();
    let mut tokens = Given(tokens.into_iter());
    for op in &ops {
        m.apply(op, &mut tokens)
            .map_err(|e| TestCaseError::fail(format!("{op:?}: {e}\nops: {ops:#?}")))?;
    }
    m.validate()
        .map_err(|e| TestCaseError::fail(format!("{e}\nops: {ops:#?}")))?;
    Ok(m)
}

fn parse(text: &str) -> Result<Model, TestCaseError> {
    let (fleet, lines) =
        parse_toml(text).map_err(|p| TestCaseError::fail(format!("{p:?}\n{text}")))?;
    fleet
        .to_model(&lines)
        .map_err(|p| TestCaseError::fail(format!("{p:?}\n{text}")))
}

proptest! {
    #![proptest_config(config())]

    /// `export --with-secrets` then `import`: the file gives back the model, counters, tokens
    /// and dropped conffiles included, and writes the same text again.
    #[test]
    fn export_parse_export_is_the_identity(m in model()) {
        prop_assert!(m.validate().is_ok(), "generated model invalid: {:?}", m.validate());
        let text = to_toml(&Fleet::from_model(&m, 42, 7, true));
        let back = parse(&text)?;
        prop_assert_eq!(&back, &m, "{}", text);
        prop_assert_eq!(to_toml(&Fleet::from_model(&back, 42, 7, true)), text);
    }

    /// The edit `apply` and `rollback` make: `diff_ops(a, b)` applied to `a`, one op at a
    /// time, every op accepted, gives `b`; and a model is its own fixed point.
    #[test]
    fn diff_ops_turn_a_into_b(a in model(), b in model()) {
        let got = replay(&a, &b)?;
        prop_assert_eq!(comparable(&got), comparable(&b));
        for n in b.nodes.values().filter(|n| !a.nodes.contains_key(&n.name)) {
            prop_assert_eq!(&got.nodes[&n.name].token, &n.token, "a new node's token is b's");
        }
        prop_assert_eq!(diff_ops(&b, &b).0, Vec::<Op>::new());
    }

    /// `umc-admin apply` of an exported file on an empty server, then `export`: the same file.
    #[test]
    fn a_file_applied_to_an_empty_server_exports_back(m in model()) {
        let text = to_toml(&Fleet::from_model(&comparable(&m), 0, 0, false));
        let wanted = parse(&text)?;
        let got = replay(&Model::default(), &wanted)?;
        prop_assert_eq!(to_toml(&Fleet::from_model(&got, 0, 0, false)), text);
    }
}

/// The vocabulary is what the model holds after an edit: relations normalized, templates that
/// parse.
#[test]
fn the_vocabulary_is_valid() {
    for r in RELATIONS {
        assert_eq!(parse_relation(r).map(|r| r.text).as_deref(), Ok(r));
    }
    for t in TEMPLATES {
        crate::template::Template::parse("/x", t).expect(t);
    }
}

/// A task that goes, through which the old model had a path between two tasks that the new
/// model includes the other way round: it must be removed before that include is added, or the
/// include is refused as a cycle (found by `diff_ops_turn_a_into_b`).
#[test]
fn a_task_that_goes_is_removed_before_includes_that_would_cycle_through_it() {
    let tasks = |names: &[&str], includes: &[(&str, &str)]| {
        let mut m = Model::default();
        for n in names {
            m.tasks.insert(n.to_string(), Task::new(n));
        }
        for (t, s) in includes {
            let task = m.tasks.get_mut(*t).expect("task");
            task.includes.insert(s.to_string());
        }
        m
    };
    let a = tasks(&["x", "gone", "y"], &[("x", "gone"), ("gone", "y")]);
    let b = tasks(&["x", "y"], &[("y", "x")]);
    assert_eq!(replay(&a, &b).expect("replay"), b);
}

/// Problems name their line in the file, and a template's syntax error the line inside it.
#[test]
fn problems_name_their_lines() {
    let text = "\
[umc]
format = 1

[tasks.web]
depends = [\"nginx\", \"nginx\"]

[tasks.web.files.\"/etc/x\"]
mode = \"0999\"
template = '''
ok
{{ broken
'''

[nodes.\"a.example.com\"]
tasks = [\"db\"]
";
    let (fleet, lines) = parse_toml(text).expect("parses");
    let problems = fleet.to_model(&lines).expect_err("problems");
    let at: Vec<(usize, &str)> = problems
        .iter()
        .map(|p| (p.line, p.message.as_str()))
        .collect();
    assert_eq!(
        at,
        [
            (4, "task 'web': dependency 'nginx' is listed twice"),
            (
                7,
                "task 'web': file '/etc/x': mode '0999' is not an octal file mode (0 to 7777)"
            ),
            (
                11,
                "task 'web': template '/etc/x': line 2, column 10: unexpected end of input"
            ),
            (14, "node 'a.example.com': unknown task 'db'"),
        ],
        "{problems:#?}"
    );
}

/// A package moving from a task's depends to another's removes: the dependency goes first,
/// so no step of the edit holds both.
#[test]
fn diff_ops_loosen_before_they_tighten() {
    let mut a = Model::default();
    for (name, depends, removes) in [("web", "nginx", ""), ("base", "", "")] {
        let mut t = Task::new(name);
        t.depends
            .extend((!depends.is_empty()).then(|| depends.to_string()));
        t.removes
            .extend((!removes.is_empty()).then(|| removes.to_string()));
        a.tasks.insert(name.into(), t);
    }
    a.tasks
        .get_mut("web")
        .expect("web")
        .includes
        .insert("base".into());
    let mut b = a.clone();
    b.tasks.get_mut("web").expect("web").depends.clear();
    b.tasks.get_mut("web").expect("web").includes.clear();
    b.tasks
        .get_mut("base")
        .expect("base")
        .removes
        .insert("nginx".into());
    b.tasks
        .get_mut("base")
        .expect("base")
        .includes
        .insert("web".into());
    let names: Vec<&str> = diff_ops(&a, &b).0.iter().map(Op::name).collect();
    assert_eq!(
        names,
        [
            "task_exclude",
            "task_undepend",
            "task_remove_package",
            "task_include"
        ]
    );
    assert_eq!(replay(&a, &b).expect("replay"), b);
}
