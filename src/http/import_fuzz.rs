//! Fuzzing past the parser (security issue 13, point 9: no panic in `log`, the console or
//! rendering on any imported data). `tests/it/fuzz.rs` feeds every parser of untrusted input;
//! this property starts where the fleet-file parser stops. It generates fleets that parse but
//! are hostile (host names at the limits, control and bidi characters, markup and Tera in
//! variables, change lines and user names, history times at the edges, odd templates, empty
//! and huge lists, tokens in rotation), turns each into an export as `POST /api/v1/import`
//! does, imports it into a new store, and then does with it what umcd and umc-admin do:
//! every host's repository through the apt routes (InRelease, Packages, every deb), the
//! render, node, task, status and log routes of the API, every console page that shows the
//! data, and the CLI's `log` and `node show` lines.
//!
//! The property:
//! - an import is accepted, or refused with a client error that changes nothing (the same
//!   generation and export, and the next edit is generation 1: no floor was lifted);
//! - after an accepted import every route answers 200 (a 500 is a host that cannot update,
//!   or a page an admin cannot open), the store exports what was imported, no console page
//!   carries markup from the data, and no CLI line holds a line break or a terminal control;
//! - nothing panics.
//!
//! It is heavier than the parser properties (a database, an `AppState` and a few dozen
//! requests per case), so it runs `UMC_FUZZ_IMPORT_CASES` cases, 300 by default. It lives in
//! the library because it opens a console session directly (a login per case would cost an
//! argon2 hash). Failures persist in `tests/fuzz/regressions/import.txt`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::Config;
use tower::ServiceExt as _;

use super::{ApiError, AppState, router};
use crate::api::{LogEntry, NodeInfo};
use crate::fleetfile::{
    ChangeForm, FileForm, Fleet, GenerationForm, Header, Lines, NodeForm, TaskForm,
};
use crate::sign::SigningKeys;
use crate::store::{Export, Store};

fn config() -> Config {
    Config {
        // Each case costs a database and a few dozen requests: shrink long enough to get a
        // readable case, and no longer.
        max_shrink_iters: 2048,
        max_shrink_time: 180_000,
        ..crate::http::fuzz_config(
            "UMC_FUZZ_IMPORT_CASES",
            300,
            "tests/fuzz/regressions/import.txt",
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Pieces of hostile text

/// What breaks writers, terminals and pages: line breaks of every kind, C0 and C1 controls,
/// escape sequences, bidi overrides, markup, Tera, quotes, lines that look like `log` output.
const PIECES: &[&str] = &[
    "a",
    "web",
    "é",
    "𝕦𝕞𝕔",
    " ",
    "  ",
    "\n",
    "\r\n",
    "\r",
    "\t",
    "\0",
    "\x1b[2J",
    "\x1b]0;pwned\x07",
    "\x7f",
    "\u{85}",
    "\u{9b}31m",
    "\u{2028}",
    "\u{2029}",
    "\u{202e}",
    "\u{2066}",
    "\u{feff}",
    "\u{fffd}",
    "<xss>",
    "</textarea>",
    "&amp;",
    "{{ host.fqdn }}",
    "{%",
    "}}",
    "'",
    "\"",
    "\\",
    "'''",
    "-",
    "*",
    "\ngeneration 1  Thu, 01 Jan 1970 00:00:00 UTC  admin\n  * forged",
    "\nnode:     forged.example.com",
];

/// A marker no page writes itself: seen raw in a page, the page failed to escape the data.
const MARKUP: &str = "<xss>";

fn pieces(max: usize) -> impl Strategy<Value = String> {
    vec(select(PIECES), 0..max).prop_map(|v| v.concat())
}

/// Any text: plain, printable, pieces, anything at all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9 ._-]{0,16}",
        2 => "[ -~]{0,40}",
        4 => pieces(10),
        1 => any::<String>(),
    ]
}

/// Text without control characters (what change lines and user names must be): the same,
/// controls removed. Bidi overrides, line separators and markup stay.
fn line() -> impl Strategy<Value = String> {
    text().prop_map(|s| s.chars().filter(|c| !c.is_control()).collect())
}

/// A variable's value, now and then at the 64 KiB limit.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => text(),
        1 => (select(PIECES), 1usize..=2048).prop_map(|(p, n)| p.repeat(n)),
        1 => Just("v".repeat(crate::model::MAX_VAR_VALUE)),
        1 => Just("é".repeat(crate::model::MAX_VAR_VALUE / 2)),
    ]
}

fn var_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z_][a-z0-9_]{0,8}",
        1 => Just("x".to_string()),
        1 => "[A-Za-z_][A-Za-z0-9_]{127}",
    ]
}

/// Up to three variables, or (`huge`) a few hundred short ones.
fn vars(huge: bool) -> BoxedStrategy<BTreeMap<String, String>> {
    if huge {
        btree_map(var_name(), text(), 0..300).boxed()
    } else {
        btree_map(var_name(), value(), 0..4).boxed()
    }
}

/// Mostly `false`, one time in `one_in` `true`: for what is expensive (huge lists, the
/// longest path).
fn rarely(one_in: u32) -> impl Strategy<Value = bool> {
    prop_oneof![one_in - 1 => Just(false), 1 => Just(true)]
}

// ---------------------------------------------------------------------------------------------
// Names at their limits

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z][a-z0-9-]{0,10}[a-z0-9](\\.[a-z0-9]{1,8}){0,3}",
        // 253 characters: the longest name, its package name hashed.
        1 => "[a-z0-9]{63}\\.[a-z0-9]{63}\\.[a-z0-9]{63}\\.[a-z0-9]{61}",
        // 191 and 193 to 201 characters: `umc-<host>` just under and over the package
        // name limit (200), where it starts to be hashed.
        1 => "[a-z]([a-z0-9-]{61}[a-z0-9])?\\.[a-z]{63}\\.[a-z]{63}(\\.[a-z0-9]{1,9})?",
        1 => "[A-Z][A-Za-z0-9]{0,10}\\.EXAMPLE\\.com\\.?",
        1 => "[0-9]{1,3}(\\.[0-9]{1,3}){3}",
        1 => "xn--[a-z0-9]{1,20}\\.example",
        // `umc-task-web` is task web's package.
        1 => "task-(web|x|a)",
        1 => "[a-z0-9]{1,3}--[a-z0-9]{1,3}",
    ]
}

fn task_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z0-9][a-z0-9+.-]{0,10}",
        2 => select(&["web", "x", "a", "c++", "a..b", "0"][..]).prop_map(str::to_string),
        1 => "[a-z0-9][a-z0-9+.-]{63}",
    ]
}

const RELATIONS: &[&str] = &[
    "nginx",
    "chrony",
    "aa | bb",
    "libc6 (>= 2.36)",
    "foo:any",
    "bar (<< 1:2~rc1)",
    "xx (= 1.0-1)",
    "mawk | gawk | original-awk",
    "default-mta | mail-transport-agent",
    "pkg+name.x",
];

const REMOVES: &[&str] = &["telnetd", "rsh-server", "x11-common", "nginx"];

const PATHS: &[&str] = &[
    "/etc/umc-fuzz/a.conf",
    "/etc/x",
    "/etc/x/y",
    "/etc/nginx/sites-enabled/umc.conf",
    "/etc/a@b=c,d%e~f+g",
    "/srv/www/index.html",
    "/usr/lib/tmpfiles.d/umc.conf",
];

/// Paths a task once shipped as conffiles (`dropped`; only an import restores it).
const DROPPED: &[&str] = &[
    "/etc/old.conf",
    "/etc/umc-fuzz/gone.conf",
    "/etc/x",
    "relative/path",
    "/etc/a b",
    "/etc/x\nremove-on-upgrade /etc/passwd",
    "/etc/../passwd",
    "/etc//x",
    "",
];

const MODES: &[&str] = &["0644", "0755", "0600", "7777", "0", "0o640", "644"];

const SERVICES: &[&str] = &["nginx", "getty@tty1.service", "php8.2-fpm", "a\\x2db"];

/// Tera that parses: loops, filters, raw blocks, whitespace control, undefined names (a
/// render error), a division by zero, output near the file limit.
const TERA: &[&str] = &[
    "plain text\n",
    "{{ host.fqdn }}",
    "{{ host.name }}.{{ host.domain }}",
    "{% for k, v in vars %}{{ k }}={{ v }}\n{% endfor %}",
    "{% for t in tasks %}{{ t }} {% endfor %}",
    "{{ vars.x | default(value=\"none\") | upper }}",
    "{{ vars.x | default(value=\"\") | safe }}",
    "{% raw %}{{ not tera }}{% endraw %}",
    "{% if node.ssh %}{{ node.ssh.user }}@{{ node.ssh.address }}{% endif %}",
    "{% set x = \"é\" ~ host.fqdn %}{{ x | length }}",
    "{{ vars | length }}",
    "{# a comment #}",
    "{%- if true -%}\n trimmed \n{%- endif -%}",
    "{{ host.fqdn | replace(from=\".\", to=\"\\n\") }}",
    "{{ tasks | join(sep=\", \") }}",
    "\u{1b}[31mred\u{0}\r\n",
    "\u{feff}",
    "<xss>",
    "{{ nope }}",
    "{{ 1 / 0 }}",
];

/// Tera that renders a lot: near the file limit, and past it (a render error).
const HEAVY_TERA: &[&str] = &[
    "{% for i in range(end=3000) %}0123456789abcdef{% endfor %}",
    "{% for i in range(end=70000) %}0123456789abcdef{% endfor %}",
];

fn template() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        40 => select(TERA).prop_map(str::to_string),
        10 => text(),
        1 => select(HEAVY_TERA).prop_map(str::to_string),
    ];
    vec(piece, 0..5).prop_map(|v| v.concat())
}

/// A generation counter relative to the export's generation `G`, resolved by [`pick`].
#[derive(Debug, Clone, Copy)]
enum Gen {
    Zero,
    Top,
    Below(u64),
}

fn gen_() -> impl Strategy<Value = Gen> {
    prop_oneof![
        1 => Just(Gen::Zero),
        2 => Just(Gen::Top),
        6 => any::<u64>().prop_map(Gen::Below),
    ]
}

fn pick(g: Gen, top: u64) -> u64 {
    match g {
        Gen::Zero => 0,
        Gen::Top => top,
        Gen::Below(_) if top == 0 => 0,
        Gen::Below(n) => n % top + 1,
    }
}

/// The export's generation.
#[derive(Debug, Clone, Copy)]
enum Top {
    Small(u64),
    /// The current Unix time: what an import or restore lifts counters to.
    Now,
    /// The largest counter an import accepts.
    Limit,
}

/// A commit time: the edges of what is accepted (0, the clock plus its slack), times that
/// repeat or go backwards.
#[derive(Debug, Clone, Copy)]
enum Time {
    Zero,
    One,
    Ago(u32),
    Ahead(u8),
    Same,
}

fn time() -> impl Strategy<Value = Time> {
    prop_oneof![
        1 => Just(Time::Zero),
        1 => Just(Time::One),
        4 => any::<u32>().prop_map(Time::Ago),
        1 => (0u8..=10).prop_map(Time::Ahead),
        2 => Just(Time::Same),
    ]
}

/// What an export must not hold, each refused on its own; `None` in most cases.
#[derive(Debug, Clone, Copy)]
enum Fault {
    CounterAboveGeneration,
    CounterBeyondClock,
    HistoryMissing,
    HistoryTwice,
    HistoryBeyondGeneration,
    TimeFuture(u8),
    TimeNegative,
    TimeMax,
    UserEmpty,
    UserControl,
    LineControl,
    UnknownEntity,
    NoToken,
    BadToken,
    PreviousUntilZero,
    PreviousUntilAboveNode,
    BadPreviousToken,
}

fn fault() -> impl Strategy<Value = Option<Fault>> {
    use Fault::*;
    prop_oneof![
        12 => Just(None),
        1 => select(&[
            CounterAboveGeneration,
            CounterBeyondClock,
            HistoryMissing,
            HistoryTwice,
            HistoryBeyondGeneration,
            TimeFuture(11),
            TimeFuture(200),
            TimeNegative,
            TimeMax,
            UserEmpty,
            UserControl,
            LineControl,
            UnknownEntity,
            NoToken,
            BadToken,
            PreviousUntilZero,
            PreviousUntilAboveNode,
            BadPreviousToken,
        ][..])
        .prop_map(Some),
    ]
}

// ---------------------------------------------------------------------------------------------
// A generated case

#[derive(Debug, Clone)]
struct GenFile {
    path: String,
    mode: &'static str,
    action: Option<(bool, &'static str)>,
    template: String,
}

#[derive(Debug, Clone)]
struct GenTask {
    name: String,
    description: String,
    depends: Vec<String>,
    removes: Vec<&'static str>,
    /// Indexes into the tasks before this one (so includes never cycle).
    includes: Vec<Index>,
    dropped: Vec<&'static str>,
    generation: Gen,
    files: Vec<GenFile>,
}

#[derive(Debug, Clone)]
struct GenNode {
    name: String,
    tasks: Vec<Index>,
    ssh: Option<&'static str>,
    url: Option<&'static str>,
    conffiles: Option<&'static str>,
    token: String,
    previous: Option<(String, Gen)>,
    generation: Gen,
    vars: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct GenChange {
    text: String,
    /// Indexes into the entity keys the model has (plus `global` and `server`).
    entities: Vec<Index>,
}

#[derive(Debug, Clone)]
struct GenEntry {
    time: Time,
    user: String,
    changes: Vec<GenChange>,
}

#[derive(Debug, Clone)]
struct Case {
    top: Top,
    vars_generation: Gen,
    server_generation: Gen,
    vars: BTreeMap<String, String>,
    tasks: Vec<GenTask>,
    nodes: Vec<GenNode>,
    /// Generations recorded besides those the model refers to.
    extra: Vec<u64>,
    /// History records, dealt out to the recorded generations in turn.
    entries: Vec<GenEntry>,
    reversed: bool,
    fault: Option<(Fault, Index)>,
}

fn gen_file() -> impl Strategy<Value = GenFile> {
    (
        prop_oneof![
            150 => select(PATHS).prop_map(str::to_string),
            // The longest path a task may ship (`MAX_PATH`), in directories of the longest
            // name a file system takes (255 bytes).
            1 => Just(format!("/srv/{}{}", ("d".repeat(255) + "/").repeat(15), "f".repeat(251))),
        ],
        select(MODES),
        proptest::option::of((any::<bool>(), select(SERVICES))),
        template(),
    )
        .prop_map(|(path, mode, action, template)| GenFile {
            path,
            mode,
            action,
            template,
        })
}

fn gen_task() -> impl Strategy<Value = GenTask> {
    (
        task_name(),
        line(),
        prop_oneof![
            30 => vec(select(RELATIONS).prop_map(str::to_string), 0..4),
            1 => (0usize..=crate::model::MAX_RELATIONS)
                .prop_map(|n| (0..n).map(|i| format!("pkg{i}")).collect()),
        ],
        vec(select(REMOVES), 0..2),
        vec(any::<Index>(), 0..3),
        prop_oneof![10 => Just(Vec::new()), 1 => vec(select(DROPPED), 1..3)],
        gen_(),
        vec(gen_file(), 0..3),
    )
        .prop_map(
            |(name, description, depends, removes, includes, dropped, generation, files)| GenTask {
                name,
                description,
                depends,
                removes,
                includes,
                dropped,
                generation,
                files,
            },
        )
}

fn gen_node(huge: bool) -> impl Strategy<Value = GenNode> {
    (
        host(),
        vec(any::<Index>(), 0..3),
        proptest::option::of(select(
            &[
                "root@10.0.0.1",
                "deploy@[2001:db8::1]:2222",
                "u-1.x@h:65535",
            ][..],
        )),
        proptest::option::of(select(
            &[
                "http://umc.example:8080",
                "https://[::1]:8443/umc/",
                "http://a",
            ][..],
        )),
        proptest::option::of(select(&["keep-local", "server-wins"][..])),
        "[0-9a-f]{64}",
        proptest::option::of(("[0-9a-f]{64}", gen_())),
        gen_(),
        vars(huge),
    )
        .prop_map(
            |(name, tasks, ssh, url, conffiles, token, previous, generation, vars)| GenNode {
                name,
                tasks,
                ssh,
                url,
                conffiles,
                token,
                previous,
                generation,
                vars,
            },
        )
}

fn gen_change() -> impl Strategy<Value = GenChange> {
    (line(), vec(any::<Index>(), 0..3)).prop_map(|(text, entities)| GenChange { text, entities })
}

fn gen_entry() -> impl Strategy<Value = GenEntry> {
    (
        time(),
        prop_oneof![
            4 => select(&["admin", "umcd", "Zoë O'Brien", "a@b.example"][..])
                .prop_map(str::to_string),
            4 => line().prop_filter("a user", |u| !u.trim().is_empty() && !u.contains(['<', '>'])),
            1 => "[a-z]{4096}",
        ],
        prop_oneof![20 => vec(gen_change(), 0..4), 1 => vec(gen_change(), 0..200)],
    )
        .prop_map(|(time, user, changes)| GenEntry {
            time,
            user,
            changes,
        })
}

fn case() -> impl Strategy<Value = Case> {
    let top = prop_oneof![
        6 => (1u64..60).prop_map(Top::Small),
        1 => Just(Top::Now),
        1 => Just(Top::Limit),
    ];
    (
        (top, gen_(), gen_(), any::<bool>()),
        rarely(20).prop_flat_map(vars),
        vec(gen_task(), 0..4),
        rarely(20).prop_flat_map(|huge| vec(gen_node(huge), 0..4)),
        prop_oneof![30 => vec(any::<u64>(), 0..4), 1 => vec(any::<u64>(), 0..400)],
        vec(gen_entry(), 1..6),
        (fault(), any::<Index>()),
    )
        .prop_map(
            |(
                (top, vars_generation, server_generation, reversed),
                vars,
                tasks,
                nodes,
                extra,
                entries,
                (fault, at),
            )| Case {
                top,
                vars_generation,
                server_generation,
                vars,
                tasks,
                nodes,
                extra,
                entries,
                reversed,
                fault: fault.map(|f| (f, at)),
            },
        )
}

impl Case {
    /// The fleet file this case describes, at the clock `now`.
    fn fleet(&self, now: i64) -> Fleet {
        let now_u = u64::try_from(now).unwrap_or(0);
        let top = match self.top {
            Top::Small(n) => n,
            Top::Now => now_u,
            Top::Limit => now_u + crate::store::IMPORT_COUNTER_SLACK,
        };
        let mut tasks: BTreeMap<String, TaskForm> = BTreeMap::new();
        let mut names: Vec<String> = Vec::new();
        for t in &self.tasks {
            let includes: BTreeSet<String> = if names.is_empty() {
                BTreeSet::new()
            } else {
                t.includes.iter().map(|i| i.get(&names).clone()).collect()
            };
            let mut depends: Vec<String> = Vec::new();
            for d in &t.depends {
                if !depends.contains(d) {
                    depends.push(d.clone());
                }
            }
            let files = t
                .files
                .iter()
                .map(|f| {
                    let (reload, restart) = match f.action {
                        Some((true, s)) => (Some(s.to_string()), None),
                        Some((false, s)) => (None, Some(s.to_string())),
                        None => (None, None),
                    };
                    let form = FileForm {
                        mode: f.mode.to_string(),
                        reload,
                        restart,
                        template: f.template.clone(),
                    };
                    (f.path.clone(), form)
                })
                .collect();
            let form = TaskForm {
                description: t.description.clone(),
                depends,
                removes: t.removes.iter().map(|r| r.to_string()).collect(),
                includes: includes.into_iter().filter(|i| *i != t.name).collect(),
                dropped: t.dropped.iter().map(|d| d.to_string()).collect(),
                generation: Some(pick(t.generation, top)),
                files,
            };
            if tasks.insert(t.name.clone(), form).is_none() {
                names.push(t.name.clone());
            }
        }
        let mut nodes = BTreeMap::new();
        for n in &self.nodes {
            let generation = pick(n.generation, top);
            let form = NodeForm {
                tasks: if names.is_empty() {
                    Vec::new()
                } else {
                    n.tasks
                        .iter()
                        .map(|i| i.get(&names).clone())
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect()
                },
                ssh: n.ssh.map(str::to_string),
                url: n.url.map(str::to_string),
                conffiles: n.conffiles.map(str::to_string),
                token: Some(n.token.clone()),
                // A rotation moved the node to the rotation's generation.
                previous_token: n.previous.as_ref().map(|p| p.0.clone()),
                previous_token_until: n
                    .previous
                    .as_ref()
                    .map(|p| pick(p.1, generation).max(1).min(generation.max(1))),
                generation: Some(generation),
                vars: n.vars.clone(),
            };
            nodes.insert(n.name.clone(), form);
        }
        let mut fleet = Fleet {
            umc: Header {
                format: crate::fleetfile::FORMAT,
                generation: Some(top),
                vars_generation: Some(pick(self.vars_generation, top)),
                server_generation: Some(pick(self.server_generation, top)),
            },
            vars: self.vars.clone(),
            tasks,
            nodes,
            history: Vec::new(),
        };
        // A node rotating at generation 0 has no rotation to speak of.
        for n in fleet.nodes.values_mut() {
            if n.generation == Some(0) {
                n.previous_token = None;
                n.previous_token_until = None;
            }
        }
        self.history(&mut fleet, top, now);
        if let Some((f, at)) = self.fault {
            fault_in(&mut fleet, f, at, now);
        }
        fleet
    }

    /// Every generation the model refers to, and the extra ones, each with a record.
    fn history(&self, fleet: &mut Fleet, top: u64, now: i64) {
        let mut gens: BTreeSet<u64> = fleet
            .nodes
            .values()
            .filter_map(|n| n.generation)
            .chain(fleet.tasks.values().filter_map(|t| t.generation))
            .chain([
                fleet.umc.vars_generation.unwrap_or(0),
                fleet.umc.server_generation.unwrap_or(0),
            ])
            .filter(|g| *g > 0)
            .collect();
        if top > 0 {
            gens.extend(self.extra.iter().map(|g| g % top + 1));
        }
        let mut keys: Vec<String> = fleet
            .nodes
            .keys()
            .filter_map(|h| crate::model::normalize_host(h).ok())
            .map(|h| format!("node:{h}"))
            .chain(fleet.tasks.keys().map(|t| format!("task:{t}")))
            .collect();
        keys.extend(["global".to_string(), "server".to_string()]);
        let mut last = 0;
        for (i, g) in gens.into_iter().enumerate() {
            let e = &self.entries[i % self.entries.len()];
            let time = match e.time {
                Time::Zero => 0,
                Time::One => 1,
                Time::Ago(s) => now - i64::from(s) % (now + 1),
                Time::Ahead(s) => now + i64::from(s),
                Time::Same => last,
            };
            last = time;
            fleet.history.push(GenerationForm {
                generation: g,
                time,
                user: e.user.clone(),
                changes: e
                    .changes
                    .iter()
                    .map(|c| ChangeForm {
                        text: c.text.clone(),
                        entities: c.entities.iter().map(|i| i.get(&keys).clone()).collect(),
                    })
                    .collect(),
            });
        }
        if self.reversed {
            fleet.history.reverse();
        }
    }
}

/// Puts `fault` into `fleet` (where it has something to put it in).
fn fault_in(fleet: &mut Fleet, fault: Fault, at: Index, now: i64) {
    use Fault::*;
    let top = fleet.umc.generation.unwrap_or(0);
    let history = &mut fleet.history;
    let entry = (!history.is_empty()).then(|| at.index(history.len()));
    let node = (!fleet.nodes.is_empty())
        .then(|| at.index(fleet.nodes.len()))
        .and_then(|i| fleet.nodes.values_mut().nth(i));
    match fault {
        CounterAboveGeneration => fleet.umc.vars_generation = Some(top.saturating_add(1)),
        CounterBeyondClock => {
            fleet.umc.generation = Some(u64::MAX);
        }
        HistoryMissing => {
            if let Some(i) = entry {
                history.remove(i);
            }
        }
        HistoryTwice => {
            if let Some(i) = entry {
                let e = history[i].clone();
                history.push(e);
            }
        }
        HistoryBeyondGeneration => {
            if let Some(i) = entry {
                history[i].generation = top.saturating_add(1);
            }
        }
        TimeFuture(s) => {
            if let Some(i) = entry {
                history[i].time = now + i64::from(s);
            }
        }
        TimeNegative => {
            if let Some(i) = entry {
                history[i].time = -1;
            }
        }
        TimeMax => {
            if let Some(i) = entry {
                history[i].time = i64::MAX;
            }
        }
        UserEmpty => {
            if let Some(i) = entry {
                history[i].user = " ".to_string();
            }
        }
        UserControl => {
            if let Some(i) = entry {
                history[i].user = "admin\x1b[2J".to_string();
            }
        }
        LineControl => {
            if let Some(i) = entry {
                history[i].changes.push(ChangeForm {
                    text: "forged\nline".to_string(),
                    entities: Vec::new(),
                });
            }
        }
        UnknownEntity => {
            if let Some(i) = entry {
                history[i].changes.push(ChangeForm {
                    text: "x".to_string(),
                    entities: vec!["host:a.example.com".to_string()],
                });
            }
        }
        NoToken => {
            if let Some(n) = node {
                n.token = None;
            }
        }
        BadToken => {
            if let Some(n) = node {
                n.token = Some("A".repeat(64));
            }
        }
        PreviousUntilZero | PreviousUntilAboveNode | BadPreviousToken => {
            if let Some(n) = node {
                let g = n.generation.unwrap_or(0);
                n.previous_token = Some(n.previous_token.clone().unwrap_or("e".repeat(64)));
                n.previous_token_until = Some(match fault {
                    PreviousUntilZero => 0,
                    PreviousUntilAboveNode => g + 1,
                    _ => g.max(1),
                });
                if matches!(fault, BadPreviousToken) {
                    n.previous_token = Some("0123".to_string());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running a case

fn keys() -> &'static SigningKeys {
    static KEYS: OnceLock<SigningKeys> = OnceLock::new();
    KEYS.get_or_init(|| SigningKeys::generate("fuzz <fuzz@umc.invalid>").expect("signing key"))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// Everything an export shows, and whether the next edit starts at generation 1.
fn state_of(store: &Store) -> (u64, String) {
    let e = store.export(true).expect("export");
    let fleet = {
        let mut f = Fleet::from_model(&e.model, e.generation, e.server_generation, true);
        f.history = e.history;
        f
    };
    let log = store.log(None, usize::MAX).expect("log");
    (
        store.generation().expect("generation"),
        format!(
            "{}\n{}",
            crate::fleetfile::to_toml(&fleet),
            serde_json::to_string(&log).expect("json")
        ),
    )
}

const API_TOKEN: &str = "fuzz-admin-token";

struct Client {
    app: axum::Router,
    session: String,
}

impl Client {
    /// GET `path` with `auth` ("Basic …", "Bearer …" or the console cookie); status and body.
    fn get(&self, path: &str, auth: Option<&str>) -> (StatusCode, Vec<u8>) {
        let mut req = Request::builder().uri(path);
        match auth {
            Some(a) => req = req.header(header::AUTHORIZATION, a),
            None => {
                req = req.header(header::COOKIE, format!("umc_session={}", self.session));
            }
        }
        let req = req.body(Body::empty()).expect("request");
        runtime().block_on(async {
            let resp = self.app.clone().oneshot(req).await.expect("infallible");
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .expect("body");
            (status, body.to_vec())
        })
    }

    fn api(&self, path: &str) -> Result<Vec<u8>, TestCaseError> {
        let (status, body) = self.get(
            &format!("/api/v1{path}"),
            Some(&format!("Bearer {API_TOKEN}")),
        );
        ok(path, status, &body)?;
        Ok(body)
    }

    fn page(&self, path: &str) -> Result<(), TestCaseError> {
        let (status, body) = self.get(path, None);
        ok(path, status, &body)?;
        let text = String::from_utf8_lossy(&body);
        prop_assert!(
            !text.contains(MARKUP),
            "{path}: markup from the data reached the page unescaped"
        );
        Ok(())
    }
}

fn ok(path: &str, status: StatusCode, body: &[u8]) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        status,
        StatusCode::OK,
        "{}: {}",
        path,
        String::from_utf8_lossy(&body[..body.len().min(2000)])
    );
    Ok(())
}

fn enc(s: &str) -> String {
    super::ui::encode(s)
}

/// A line umc-admin prints: one line, nothing a terminal acts on once cleaned.
fn check_cli_line(what: &str, line: &str) -> Result<(), TestCaseError> {
    let shown = crate::cli::term::clean(line);
    prop_assert!(
        !shown.contains('\n'),
        "{what}: a field breaks the line: {line:?}"
    );
    prop_assert_eq!(
        crate::cli::term::clean(&shown),
        shown.clone(),
        "{}: cleaning is not final",
        what
    );
    Ok(())
}

/// Runs one case; counts what happened in `seen` (parse refusals, import refusals, imports).
fn run(case: &Case, seen: &mut [u32; 3]) -> Result<(), TestCaseError> {
    let now = crate::app::now();
    let fleet = case.fleet(now);
    let Ok(model) = fleet.to_model(&Lines::default()) else {
        seen[0] += 1;
        return Ok(());
    };
    // What `POST /api/v1/import` makes of the file (http::fleet::import).
    let export = Export {
        generation: fleet.umc.generation.unwrap_or(0),
        server_generation: fleet.umc.server_generation.unwrap_or(0),
        model,
        history: fleet.history.clone(),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("umc.redb")).expect("open");
    let before = state_of(&store);
    match store.import(&export, now) {
        Err(e) => {
            seen[1] += 1;
            let api = ApiError::from(e);
            prop_assert!(
                api.status.is_client_error() && !api.message.is_empty(),
                "a refused import must say why: {} {}",
                api.status,
                api.message
            );
            prop_assert!(
                before == state_of(&store),
                "a refused import wrote something"
            );
            let add = crate::api::Op::NodeAdd {
                host: "after.example.com".into(),
                vars: BTreeMap::new(),
                ssh: None,
            };
            let e = store
                .edit("fuzz", &[add], now, crate::store::EditOptions::default())
                .expect("edit");
            prop_assert_eq!(
                e.generation,
                1,
                "a refused import moved the generation floor"
            );
            return Ok(());
        }
        Ok(g) => prop_assert_eq!(g, export.generation),
    }
    seen[2] += 1;
    // The store holds what was imported.
    let back = store.export(true).expect("export");
    prop_assert_eq!(back.generation, export.generation);
    prop_assert_eq!(back.server_generation, export.server_generation);
    prop_assert!(
        back.model == export.model,
        "the model changed on its way in"
    );
    let mut history = export.history.clone();
    history.sort_by_key(|h| h.generation);
    prop_assert!(back.history == history, "the history changed on its way in");

    store.ensure_admin_user("fuzz", now).expect("user");
    store
        .add_api_token(
            API_TOKEN,
            "fuzz",
            "fuzz",
            now,
            None,
            crate::app::auth::MAX_TOKENS_PER_USER,
        )
        .expect("token");
    let config = crate::config::Config {
        architectures: vec!["amd64".into(), "arm64".into()],
        ..crate::config::Config::default()
    };
    let app = crate::app::App::new(store, keys().clone(), config).expect("app");
    let state = Arc::new(AppState::new(Arc::new(app)).expect("state"));
    let session = state.ui.sessions.create("fuzz", now).expect("session");
    let c = Client {
        app: router(state.clone(), false),
        session,
    };
    let model = &export.model;

    // Every host's repository, as apt fetches it.
    for (name, node) in &model.nodes {
        let basic = |token: &str| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{token}"));
            format!("Basic {b64}")
        };
        let auth = basic(&node.token);
        let get = |p: &str| {
            let path = format!("/hosts/{name}/{p}");
            let (status, body) = c.get(&path, Some(&auth));
            ok(&path, status, &body).map(|()| body)
        };
        get("dists/umc/InRelease")?;
        get("dists/umc/Release.gpg")?;
        get("dists/umc/main/binary-arm64/Packages.xz")?;
        let packages = get("dists/umc/main/binary-amd64/Packages")?;
        let packages = String::from_utf8_lossy(&packages).into_owned();
        let debs: Vec<&str> = packages
            .lines()
            .filter_map(|l| l.strip_prefix("Filename: "))
            .collect();
        prop_assert!(debs.len() >= 2, "umc-node and the host's package");
        for f in debs {
            let deb = get(f)?;
            prop_assert!(deb.starts_with(b"!<arch>\n"), "{f} is not a deb");
        }
        if let Some(p) = &node.previous_token {
            let path = format!("/hosts/{name}/dists/umc/InRelease");
            let (status, body) = c.get(&path, Some(&basic(&p.token)));
            ok(&path, status, &body)?;
        }
        let path = format!("/hosts/{name}/bootstrap");
        let (status, _) = c.get(&path, Some(&auth));
        let want = if node.url.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CONFLICT
        };
        prop_assert_eq!(status, want, "{}", path);

        // The API and the CLI lines that show the node.
        let info: NodeInfo =
            serde_json::from_slice(&c.api(&format!("/nodes/{}", enc(name)))?).expect("json");
        let vars = crate::cli::shown_vars(info.vars.clone());
        for line in crate::cli::node::show_lines(&info, &vars) {
            check_cli_line("node show", &line)?;
        }
        c.api(&format!("/status/{}", enc(name)))?;
        let closure = model.closure(&node.tasks);
        for t in closure.iter().filter_map(|t| model.tasks.get(t)) {
            for path in t.files.keys() {
                c.api(&format!("/nodes/{}/render?path={}", enc(name), enc(path)))?;
            }
        }
        let log: Vec<LogEntry> =
            serde_json::from_slice(&c.api(&format!("/log?limit=1000&host={}", enc(name)))?)
                .expect("json");
        for e in &log {
            for line in crate::cli::log::edit_lines(e) {
                check_cli_line("log --host", &line)?;
            }
        }
        c.page(&format!("/ui/nodes/{}", enc(name)))?;
        c.page(&format!("/ui/history?node={}", enc(name)))?;
    }
    for (name, task) in &model.tasks {
        c.api(&format!("/tasks/{}", enc(name)))?;
        c.api(&format!("/log?task={}", enc(name)))?;
        c.page(&format!("/ui/tasks/{}", enc(name)))?;
        c.page(&format!("/ui/history?task={}", enc(name)))?;
        for path in task.files.keys() {
            c.page(&format!("/ui/tasks/{}/file?path={}", enc(name), enc(path)))?;
        }
    }
    // The whole log, in the API, the CLI and the console.
    let log: Vec<LogEntry> = serde_json::from_slice(&c.api("/log?limit=100000")?).expect("json");
    prop_assert_eq!(log.len(), export.history.len());
    for e in &log {
        for line in crate::cli::log::edit_lines(e) {
            check_cli_line("log", &line)?;
        }
    }
    for page in [
        "/ui/",
        "/ui/nodes",
        "/ui/tasks",
        "/ui/history",
        "/ui/history?limit=1000",
    ] {
        c.page(page)?;
    }
    for h in export.history.iter().take(2) {
        c.page(&format!("/ui/history?user={}", enc(&h.user)))?;
    }
    c.api("/nodes")?;
    c.api("/tasks")?;
    c.api("/vars")?;
    c.api("/status")?;
    c.api("/export?secrets=true&history=true")?;
    Ok(())
}

#[test]
fn imported_data_is_refused_cleanly_or_served_everywhere() {
    let started = std::time::Instant::now();
    let counts = std::cell::RefCell::new([0u32; 3]);
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let result = runner.run(&case(), |c| run(&c, &mut counts.borrow_mut()));
    let seen = counts.into_inner();
    println!(
        "{} cases in {:.1} s: {} refused by the parser, {} imports refused, {} imported and served",
        seen.iter().sum::<u32>(),
        started.elapsed().as_secs_f64(),
        seen[0],
        seen[1],
        seen[2]
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
