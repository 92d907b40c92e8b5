//! `Model::apply`, op by op: what each op changes, its change lines and the entity each line
//! touches, what applying it again writes (nothing, for the set-like ones), and one refusal
//! that leaves the model as it was.

use std::collections::BTreeMap;

use super::super::testing::{Seq, edit};
use super::super::*;
use crate::api::Op;

const A: &str = "a.example.com";

/// A node `a.example.com` (variable `zone`) running task `web`, which depends on nginx, removes
/// apache2, includes `base` and ships /etc/motd; a global variable `dns`.
fn fixture() -> Model {
    let mut m = Model::default();
    for op in [
        Op::VarSet {
            vars: vars(&[("dns", "192.0.2.53")]),
        },
        task_add("base"),
        Op::TaskAdd {
            task: "web".into(),
            description: Some("Web server".into()),
        },
        Op::TaskDepend {
            task: "web".into(),
            relations: vec!["nginx".into()],
        },
        Op::TaskRemovePackage {
            task: "web".into(),
            packages: vec!["apache2".into()],
        },
        Op::TaskInclude {
            task: "web".into(),
            subtasks: vec!["base".into()],
        },
        file("web", "/etc/motd", None),
        Op::NodeAdd {
            host: A.into(),
            vars: vars(&[("zone", "eu")]),
            ssh: None,
        },
        Op::Assign {
            host: A.into(),
            tasks: vec!["web".into()],
        },
    ] {
        edit(&mut m, op).expect("fixture");
    }
    m
}

fn vars(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn task_add(task: &str) -> Op {
    Op::TaskAdd {
        task: task.into(),
        description: None,
    }
}

fn file(task: &str, path: &str, mode: Option<u32>) -> Op {
    Op::TaskFileAdd {
        task: task.into(),
        path: path.into(),
        template: "{{ host.fqdn }}".into(),
        mode,
        reload: None,
        restart: None,
    }
}

fn settings(ssh: Option<&str>, url: Option<&str>, conffiles: Option<&str>) -> Op {
    Op::NodeSet {
        host: A.into(),
        set_vars: BTreeMap::new(),
        unset_vars: Vec::new(),
        ssh: ssh.map(Into::into),
        url: url.map(Into::into),
        conffiles: conffiles.map(Into::into),
    }
}

fn node(n: &str) -> Entity {
    Entity::Node(n.into())
}

fn task(t: &str) -> Entity {
    Entity::Task(t.into())
}

/// The change line of `action`, touching `entity`.
fn line(action: &str, entity: Entity) -> Change {
    Change {
        text: action.into(),
        entities: vec![entity],
    }
}

/// Applies `op` through the edit path and returns its change lines.
fn ok(m: &mut Model, op: Op) -> Vec<Change> {
    edit(m, op.clone()).unwrap_or_else(|e| panic!("{op:?}: {e}"))
}

/// Applies `op` through the edit path, which must refuse it and leave `m` unchanged.
fn refused(m: &mut Model, op: Op) -> ModelError {
    let before = m.clone();
    let e = edit(m, op.clone()).expect_err(&format!("{op:?} was accepted"));
    assert_eq!(*m, before, "{op:?} changed the model");
    e
}

// ---------------------------------------------------------------------------------------------
// Nodes and their assignments

#[test]
fn node_add() {
    let mut m = fixture();
    let op = Op::NodeAdd {
        host: "B.Example.com.".into(),
        vars: vars(&[("zone", "us")]),
        ssh: Some("root@192.0.2.7:2222".into()),
    };
    let lines = ok(&mut m, op.clone());
    let b = "b.example.com";
    assert_eq!(lines, [line("added node 'b.example.com'", node(b))]);
    let n = &m.nodes[b];
    assert_eq!(n.name, b);
    assert_eq!(n.token, "t1", "the token comes from the token source");
    assert_eq!(n.vars, vars(&[("zone", "us")]));
    assert_eq!(
        n.ssh.as_ref().map(|s| s.to_string()).as_deref(),
        Some("root@192.0.2.7:2222")
    );
    assert!(n.tasks.is_empty() && n.url.is_none() && n.conffiles.is_none());
    assert_eq!(refused(&mut m, op), ModelError::NodeExists(b.into()));
    let bad_ssh = Op::NodeAdd {
        host: "c.example.com".into(),
        vars: BTreeMap::new(),
        ssh: Some("192.0.2.7".into()),
    };
    assert_eq!(
        refused(&mut m, bad_ssh),
        ModelError::InvalidSsh("192.0.2.7".into())
    );
}

#[test]
fn node_remove() {
    let mut m = fixture();
    let op = Op::NodeRemove {
        host: "A.example.com".into(),
    };
    assert_eq!(
        ok(&mut m, op.clone()),
        [line("removed node 'a.example.com'", node(A))]
    );
    assert!(m.nodes.is_empty());
    assert_eq!(refused(&mut m, op), ModelError::UnknownNode(A.into()));
}

#[test]
fn node_set() {
    let mut m = fixture();
    let op = Op::NodeSet {
        host: A.into(),
        set_vars: vars(&[("zone", "us"), ("rack", "r1")]),
        unset_vars: strings(&["nothing"]),
        ssh: Some("admin@[2001:db8::1]".into()),
        url: Some("http://umc.example.com:8080/".into()),
        conffiles: Some("server-wins".into()),
    };
    assert_eq!(
        ok(&mut m, op.clone()),
        [
            line("set variable 'rack' of node 'a.example.com'", node(A)),
            line("set variable 'zone' of node 'a.example.com'", node(A)),
            line(
                "set the ssh target of node 'a.example.com' to 'admin@[2001:db8::1]:22'",
                node(A)
            ),
            line(
                "set the umc URL of node 'a.example.com' to 'http://umc.example.com:8080'",
                node(A)
            ),
            line(
                "set the conffile policy of node 'a.example.com' to server-wins",
                node(A)
            ),
        ]
    );
    let n = &m.nodes[A];
    assert_eq!(n.vars, vars(&[("rack", "r1"), ("zone", "us")]));
    assert_eq!(n.url.as_deref(), Some("http://umc.example.com:8080"));
    assert_eq!(n.conffiles, Some(ConffilePolicy::ServerWins));
    assert_eq!(ok(&mut m, op), [], "the same settings again change nothing");
    // Empty values and `default` take settings away.
    let unset = Op::NodeSet {
        host: A.into(),
        set_vars: BTreeMap::new(),
        unset_vars: strings(&["rack"]),
        ssh: Some(String::new()),
        url: Some(String::new()),
        conffiles: Some("default".into()),
    };
    assert_eq!(
        ok(&mut m, unset),
        [
            line("unset variable 'rack' of node 'a.example.com'", node(A)),
            line("removed the ssh target of node 'a.example.com'", node(A)),
            line("removed the umc URL of node 'a.example.com'", node(A)),
            line(
                "set the conffile policy of node 'a.example.com' to umcd's default",
                node(A)
            ),
        ]
    );
    let n = &m.nodes[A];
    assert!(n.ssh.is_none() && n.url.is_none() && n.conffiles.is_none());
    assert_eq!(
        refused(&mut m, settings(None, None, Some("always"))),
        ModelError::InvalidPolicy("always".into())
    );
    assert!(matches!(
        refused(&mut m, settings(None, Some("ftp://umc.example.com"), None)),
        ModelError::InvalidUrl { .. }
    ));
}

#[test]
fn node_token_rotate() {
    let mut m = fixture();
    let old = m.nodes[A].token.clone();
    let op = Op::NodeTokenRotate {
        host: A.into(),
        force: false,
    };
    assert_eq!(
        ok(&mut m, op.clone()),
        [line("rotated the token of node 'a.example.com'", node(A))]
    );
    let n = &m.nodes[A];
    assert_eq!(n.previous_token.as_ref().map(|p| &p.token), Some(&old));
    assert_eq!(refused(&mut m, op), ModelError::RotationPending(A.into()));
}

#[test]
fn assign() {
    let mut m = fixture();
    let op = Op::Assign {
        host: A.into(),
        tasks: strings(&["web", "base"]),
    };
    assert_eq!(
        ok(&mut m, op.clone()),
        [line(
            "assigned task 'base' to node 'a.example.com'",
            node(A)
        )],
        "web was assigned already"
    );
    assert_eq!(m.nodes[A].tasks, ["base", "web"].map(String::from).into());
    assert_eq!(ok(&mut m, op), []);
    let unknown = Op::Assign {
        host: A.into(),
        tasks: strings(&["base", "db"]),
    };
    assert_eq!(
        refused(&mut m, unknown),
        ModelError::UnknownTask("db".into())
    );
}

#[test]
fn unassign() {
    let mut m = fixture();
    let op = Op::Unassign {
        host: A.into(),
        tasks: strings(&["web", "base"]),
    };
    assert_eq!(
        ok(&mut m, op.clone()),
        [line(
            "unassigned task 'web' from node 'a.example.com'",
            node(A)
        )],
        "base was not assigned"
    );
    assert!(m.nodes[A].tasks.is_empty());
    assert_eq!(ok(&mut m, op), []);
    let unknown = Op::Unassign {
        host: "b.example.com".into(),
        tasks: strings(&["web"]),
    };
    assert_eq!(
        refused(&mut m, unknown),
        ModelError::UnknownNode("b.example.com".into())
    );
}

// ---------------------------------------------------------------------------------------------
// Tasks

#[test]
fn task_add_and_set() {
    let mut m = fixture();
    let op = Op::TaskAdd {
        task: "db".into(),
        description: Some("Database\nwith a second line".into()),
    };
    assert_eq!(
        ok(&mut m, op.clone()),
        [line("added task 'db'", task("db"))]
    );
    let t = &m.tasks["db"];
    assert_eq!(t.name, "db");
    assert!(t.depends.is_empty() && t.files.is_empty() && t.includes.is_empty());
    assert_eq!(refused(&mut m, op), ModelError::TaskExists("db".into()));
    assert_eq!(
        refused(&mut m, task_add("Db")),
        ModelError::InvalidTask { name: "Db".into() }
    );

    let set = |d: &str| Op::TaskSet {
        task: "db".into(),
        description: d.into(),
    };
    assert_eq!(
        ok(&mut m, set("Databases")),
        [line("changed the description of task 'db'", task("db"))]
    );
    assert_eq!(m.tasks["db"].description, "Databases");
    assert_eq!(ok(&mut m, set("Databases")), []);
    assert_eq!(
        refused(&mut m, set(&"x".repeat(MAX_DESCRIPTION + 1))),
        ModelError::DescriptionTooLong("db".into())
    );
}

#[test]
fn task_remove_cascades_to_includes_and_assignments() {
    let mut m = fixture();
    ok(
        &mut m,
        Op::Assign {
            host: A.into(),
            tasks: strings(&["base"]),
        },
    );
    let op = Op::TaskRemove {
        task: "base".into(),
    };
    assert_eq!(
        ok(&mut m, op.clone()),
        [
            line("removed task 'base'", task("base")),
            line("removed task 'base' from task 'web'", task("web")),
            line("unassigned task 'base' from node 'a.example.com'", node(A)),
        ]
    );
    assert!(!m.tasks.contains_key("base"));
    assert!(m.tasks["web"].includes.is_empty());
    assert_eq!(m.nodes[A].tasks, ["web".to_string()].into());
    assert_eq!(refused(&mut m, op), ModelError::UnknownTask("base".into()));
}

#[test]
fn task_depend() {
    let mut m = fixture();
    let op = Op::TaskDepend {
        task: "web".into(),
        relations: strings(&["php8.2-fpm(>=8.2)", "nginx", "mawk|gawk"]),
    };
    assert_eq!(
        ok(&mut m, op.clone()),
        [
            line("added dependency 'php8.2-fpm (>= 8.2)'", task("web")),
            line("added dependency 'mawk | gawk'", task("web")),
        ],
        "relations are normalized, and nginx was there"
    );
    assert_eq!(
        m.tasks["web"].depends,
        strings(&["nginx", "php8.2-fpm (>= 8.2)", "mawk | gawk"])
    );
    assert_eq!(ok(&mut m, op), []);
    let reserved = Op::TaskDepend {
        task: "web".into(),
        relations: strings(&["umc-task-base"]),
    };
    assert_eq!(
        refused(&mut m, reserved),
        ModelError::ReservedPackage {
            task: "web".into(),
            package: "umc-task-base".into()
        }
    );
}

#[test]
fn task_undepend() {
    let mut m = fixture();
    ok(
        &mut m,
        Op::TaskDepend {
            task: "web".into(),
            relations: strings(&["mawk | gawk", "curl (>= 8)"]),
        },
    );
    let op = Op::TaskUndepend {
        task: "web".into(),
        packages: strings(&["gawk", "curl (>= 8)"]),
    };
    assert_eq!(
        ok(&mut m, op.clone()),
        [
            line("removed dependency 'mawk | gawk'", task("web")),
            line("removed dependency 'curl (>= 8)'", task("web")),
        ],
        "a package takes every relation naming it; a relation's text takes itself"
    );
    assert_eq!(m.tasks["web"].depends, strings(&["nginx"]));
    assert_eq!(
        refused(&mut m, op),
        ModelError::NoSuchDependency {
            task: "web".into(),
            package: "gawk".into()
        }
    );
}

#[test]
fn task_remove_package() {
    let mut m = fixture();
    let op = Op::TaskRemovePackage {
        task: "web".into(),
        packages: strings(&["apache2", "lighttpd"]),
    };
    assert_eq!(
        ok(&mut m, op.clone()),
        [line("marked package 'lighttpd' for removal", task("web"))]
    );
    assert_eq!(
        m.tasks["web"].removes,
        ["apache2", "lighttpd"].map(String::from).into()
    );
    assert_eq!(ok(&mut m, op), []);
    let depended = Op::TaskRemovePackage {
        task: "web".into(),
        packages: strings(&["nginx"]),
    };
    assert!(matches!(
        refused(&mut m, depended),
        ModelError::DependsAndRemoves { .. }
    ));
    let bad = Op::TaskRemovePackage {
        task: "web".into(),
        packages: strings(&["Apache2"]),
    };
    assert_eq!(
        refused(&mut m, bad),
        ModelError::InvalidPackage("Apache2".into())
    );
}

#[test]
fn task_unremove_package() {
    let mut m = fixture();
    let op = Op::TaskUnremovePackage {
        task: "web".into(),
        packages: strings(&["apache2", "lighttpd"]),
    };
    once_then_nothing(&mut m, op, "no longer removes package 'apache2'");
    assert!(m.tasks["web"].removes.is_empty());
    let unknown = Op::TaskUnremovePackage {
        task: "db".into(),
        packages: strings(&["apache2"]),
    };
    unknown_task_db(&mut m, unknown);
}

/// `op` changes task web with one change line, `change`; applied again it changes nothing.
fn once_then_nothing(m: &mut Model, op: Op, change: &str) {
    assert_eq!(ok(m, op.clone()), [line(change, task("web"))]);
    assert_eq!(ok(m, op), []);
}

/// `op` names the task "db", which the fixture does not have.
fn unknown_task_db(m: &mut Model, op: Op) {
    assert_eq!(refused(m, op), ModelError::UnknownTask("db".into()));
}

#[test]
fn task_include() {
    let mut m = fixture();
    ok(&mut m, task_add("db"));
    let op = Op::TaskInclude {
        task: "web".into(),
        subtasks: strings(&["base", "db"]),
    };
    assert_eq!(
        ok(&mut m, op.clone()),
        [line("included task 'db' in task 'web'", task("web"))]
    );
    assert_eq!(
        m.tasks["web"].includes,
        ["base", "db"].map(String::from).into()
    );
    assert_eq!(ok(&mut m, op), []);
    let own = Op::TaskInclude {
        task: "web".into(),
        subtasks: strings(&["web"]),
    };
    assert_eq!(
        refused(&mut m, own),
        ModelError::SelfInclude { task: "web".into() }
    );
    let cycle = Op::TaskInclude {
        task: "db".into(),
        subtasks: strings(&["web"]),
    };
    assert_eq!(
        refused(&mut m, cycle),
        ModelError::Cycle {
            task: "db".into(),
            sub: "web".into(),
            path: "db -> web -> db".into()
        }
    );
}

#[test]
fn task_exclude() {
    let mut m = fixture();
    let op = Op::TaskExclude {
        task: "web".into(),
        subtasks: strings(&["base", "db"]),
    };
    once_then_nothing(&mut m, op, "excluded task 'base' from task 'web'");
    assert!(m.tasks["web"].includes.is_empty());
    let unknown = Op::TaskExclude {
        task: "db".into(),
        subtasks: strings(&["base"]),
    };
    unknown_task_db(&mut m, unknown);
}

// ---------------------------------------------------------------------------------------------
// Task files

#[test]
fn file_add() {
    let mut m = fixture();
    let op = Op::TaskFileAdd {
        task: "web".into(),
        path: "/etc/nginx/nginx.conf".into(),
        template: "user www-data;\n".into(),
        mode: Some(0o640),
        reload: Some("nginx".into()),
        restart: None,
    };
    assert_eq!(
        ok(&mut m, op.clone()),
        [line(
            "added file '/etc/nginx/nginx.conf' to task 'web'",
            task("web")
        )]
    );
    let f = &m.tasks["web"].files["/etc/nginx/nginx.conf"];
    assert_eq!(
        (f.mode, &f.action),
        (0o640, &Some(FileAction::Reload("nginx".into())))
    );
    assert_eq!(ok(&mut m, op), [], "the same file again changes nothing");
    assert_eq!(
        ok(&mut m, file("web", "/etc/motd", Some(0o600))),
        [line("changed file '/etc/motd' of task 'web'", task("web"))]
    );
    assert_eq!(m.tasks["web"].files["/etc/motd"].mode, 0o600);
    assert_eq!(
        refused(&mut m, file("web", "/etc/x", Some(0o10000))),
        ModelError::InvalidMode {
            task: "web".into(),
            path: "/etc/x".into(),
            mode: 0o10000
        }
    );
    let broken = Op::TaskFileAdd {
        task: "web".into(),
        path: "/etc/x".into(),
        template: "line one\n{{ host.fqdn".into(),
        mode: None,
        reload: None,
        restart: None,
    };
    assert!(matches!(
        refused(&mut m, broken),
        ModelError::Template(crate::template::TemplateError::Syntax { line: 2, .. })
    ));
    let both = Op::TaskFileAdd {
        task: "web".into(),
        path: "/etc/x".into(),
        template: String::new(),
        mode: None,
        reload: Some("nginx".into()),
        restart: Some("nginx".into()),
    };
    assert!(matches!(
        refused(&mut m, both),
        ModelError::InvalidService(_)
    ));
}

#[test]
fn file_remove_drops_conffiles_only() {
    let mut m = fixture();
    ok(&mut m, file("web", "/usr/bin/hello", Some(0o755)));
    let remove = |path: &str| Op::TaskFileRemove {
        task: "web".into(),
        path: path.into(),
    };
    assert_eq!(
        ok(&mut m, remove("/etc/motd")),
        [line(
            "removed file '/etc/motd' from task 'web'",
            task("web")
        )]
    );
    ok(&mut m, remove("/usr/bin/hello"));
    let t = &m.tasks["web"];
    assert!(t.files.is_empty());
    assert_eq!(
        t.dropped,
        ["/etc/motd".to_string()].into(),
        "dpkg is told to delete a dropped conffile; other files go with the package"
    );
    // Shipping the path again takes it off the dropped list.
    ok(&mut m, file("web", "/etc/motd", None));
    assert!(m.tasks["web"].dropped.is_empty());
    assert_eq!(
        refused(&mut m, remove("/etc/issue")),
        ModelError::NoSuchFile {
            task: "web".into(),
            path: "/etc/issue".into()
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Global variables

#[test]
fn var_set() {
    let mut m = fixture();
    let op = Op::VarSet {
        vars: vars(&[("dns", "192.0.2.53"), ("ntp", "192.0.2.123")]),
    };
    assert_eq!(
        ok(&mut m, op.clone()),
        [line("set global variable 'ntp'", Entity::Global)],
        "dns had that value"
    );
    assert_eq!(m.vars["ntp"], "192.0.2.123");
    assert_eq!(ok(&mut m, op), []);
    let long = Op::VarSet {
        vars: vars(&[("big", &"x".repeat(MAX_VAR_VALUE + 1))]),
    };
    assert_eq!(refused(&mut m, long), ModelError::VarTooLong("big".into()));
}

#[test]
fn var_unset() {
    let mut m = fixture();
    let op = Op::VarUnset {
        names: strings(&["dns"]),
    };
    assert_eq!(
        ok(&mut m, op.clone()),
        [line("unset global variable 'dns'", Entity::Global)]
    );
    assert!(m.vars.is_empty());
    assert_eq!(refused(&mut m, op), ModelError::UnknownVar("dns".into()));
}

#[test]
fn token_rotation_keeps_one_previous_token_until_forced() {
    let mut m = Model::default();
    let mut seq = Seq(0);
    let rotate = |force| Op::NodeTokenRotate {
        host: "A.example.com".into(),
        force,
    };
    m.apply(
        &Op::NodeAdd {
            host: "a.example.com".into(),
            vars: BTreeMap::new(),
            ssh: None,
        },
        &mut seq,
    )
    .unwrap();
    let changes = m.apply(&rotate(false), &mut seq).unwrap();
    assert_eq!(changes[0].text, "rotated the token of node 'a.example.com'");
    assert_eq!(changes[0].entities, [Entity::Node("a.example.com".into())]);
    let n = &m.nodes["a.example.com"];
    assert_eq!(n.token, "t2");
    assert_eq!(
        n.previous_token,
        Some(PreviousToken {
            token: "t1".into(),
            until: 0
        })
    );
    // A second rotation while the node may hold either token is refused, and changes nothing.
    let before = m.clone();
    let e = m.apply(&rotate(false), &mut seq).unwrap_err();
    assert_eq!(e, ModelError::RotationPending("a.example.com".into()));
    assert!(e.to_string().contains("--force"), "{e}");
    assert_eq!(m, before);
    // --force: a new token, and no previous one works.
    let changes = m.apply(&rotate(true), &mut seq).unwrap();
    assert!(changes[0].text.ends_with("the old token no longer works"));
    let n = &m.nodes["a.example.com"];
    assert_eq!((n.token.as_str(), &n.previous_token), ("t3", &None));
    assert!(matches!(
        m.apply(
            &Op::NodeTokenRotate {
                host: "b.example.com".into(),
                force: false
            },
            &mut seq
        ),
        Err(ModelError::UnknownNode(_))
    ));
}

/// The review's "what held up → injection" list (37 cases), kept true: every name or
/// value that reaches a control file, a maintainer script, apt's sources or an ssh
/// connection refuses shell, control and path metacharacters, through the edit path
/// (`apply` + `validate`), so the check is wired where the input arrives.
#[test]
fn metacharacters_are_refused_wherever_they_would_reach_a_file_or_a_shell() {
    let mut m = Model::default();
    for op in [
        Op::NodeAdd {
            host: "a.example.com".into(),
            vars: BTreeMap::new(),
            ssh: None,
        },
        Op::TaskAdd {
            task: "web".into(),
            description: None,
        },
    ] {
        edit(&mut m, op).unwrap();
    }
    let host = |h: &str| Op::NodeAdd {
        host: h.into(),
        vars: BTreeMap::new(),
        ssh: None,
    };
    let var = |name: &str| Op::VarSet {
        vars: [(name.to_string(), "v".to_string())].into(),
    };
    let node_set = |url: Option<&str>, ssh: Option<&str>| Op::NodeSet {
        host: "a.example.com".into(),
        set_vars: BTreeMap::new(),
        unset_vars: Vec::new(),
        ssh: ssh.map(Into::into),
        url: url.map(Into::into),
        conffiles: None,
    };
    let depend = |r: &str| Op::TaskDepend {
        task: "web".into(),
        relations: vec![r.into()],
    };
    let file = |path: &str, mode: Option<u32>, reload: Option<&str>| Op::TaskFileAdd {
        task: "web".into(),
        path: path.into(),
        template: "x".into(),
        mode,
        reload: reload.map(Into::into),
        restart: None,
    };
    let describe = |d: &str| Op::TaskSet {
        task: "web".into(),
        description: d.into(),
    };
    let task = |t: &str| Op::TaskAdd {
        task: t.into(),
        description: None,
    };
    let cases: Vec<(Op, &str)> = vec![
        (host("a;id.example.com"), "invalid host name"),
        (host("$(id).example.com"), "invalid host name"),
        (host("a b.example.com"), "invalid host name"),
        (host("a\n.example.com"), "invalid host name"),
        (host("../b.example.com"), "invalid host name"),
        (var("a;b"), "invalid variable name"),
        (var("a$b"), "invalid variable name"),
        (var("a\nb"), "invalid variable name"),
        (
            node_set(Some("http://umc.example.com/'"), None),
            "invalid URL",
        ),
        (
            node_set(Some("http://umc.example.com/ a"), None),
            "invalid URL",
        ),
        (
            node_set(Some("http://umc.example.com/\n"), None),
            "invalid URL",
        ),
        (
            node_set(None, Some("root@10.0.0.1;id")),
            "invalid ssh target",
        ),
        (
            node_set(None, Some("-oProxyCommand=id@10.0.0.1")),
            "invalid ssh target",
        ),
        (depend("nginx\nPackage: evil"), "invalid relation"),
        (depend("nginx\u{b}evil"), "invalid relation"),
        (depend("nginx\u{85}evil"), "invalid relation"),
        (depend("nginx\tevil"), "invalid relation"),
        (depend("nginx;$(id)"), "invalid relation"),
        (file("/etc/a;b", None, None), "invalid file path"),
        (file("/etc/$HOME", None, None), "invalid file path"),
        (file("/etc/a'b", None, None), "invalid file path"),
        (file("/etc/../shadow", None, None), "invalid file path"),
        (file("/etc/./x", None, None), "invalid file path"),
        (file("/DEBIAN/postinst", None, None), "invalid file path"),
        (file("/etc/umc/node.conf", None, None), "invalid file path"),
        (file("/usr/sbin/umc-cycle", None, None), "invalid file path"),
        (file("/etc/caf\u{e9}.conf", None, None), "invalid file path"),
        (
            file("/etc/x", None, Some("nginx;id")),
            "invalid service name",
        ),
        (file("/etc/x", None, Some("-nginx")), "invalid service name"),
        (file("/etc/x", Some(0o10000), None), "not a file mode"),
        (task("Web"), "invalid task name"),
        (task("web;id"), "invalid task name"),
        (task("-web"), "invalid task name"),
        (describe("a\tb"), "control characters"),
        (describe("a\u{85}b"), "control characters"),
    ];
    let before = m.clone();
    for (op, want) in &cases {
        let e = edit(&mut m, op.clone())
            .map(|_| ())
            .expect_err(&format!("{op:?} was accepted"));
        assert!(e.to_string().contains(want), "{op:?}: want {want:?}: {e}");
        assert_eq!(m, before, "{op:?} changed the model");
    }
    // What stays allowed: a mode of exactly 07777, a newline in a description (only its
    // first line is the synopsis) and U+2028, which is not a line break for apt.
    edit(&mut m, file("/etc/x", Some(0o7777), None)).unwrap();
    edit(&mut m, describe("first\nsecond")).unwrap();
    edit(&mut m, describe("a\u{2028}b")).unwrap();
}
