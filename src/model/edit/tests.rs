//! `Model::apply`, op by op.

use std::collections::BTreeMap;

use super::super::testing::{Seq, edit};
use super::super::*;
use crate::api::Op;

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
        "sh",
        &mut seq,
    )
    .unwrap();
    let changes = m.apply(&rotate(false), "sh", &mut seq).unwrap();
    assert_eq!(
        changes[0].text,
        "User 'sh' rotated the token of node 'a.example.com'"
    );
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
    let e = m.apply(&rotate(false), "sh", &mut seq).unwrap_err();
    assert_eq!(e, ModelError::RotationPending("a.example.com".into()));
    assert!(e.to_string().contains("--force"), "{e}");
    assert_eq!(m, before);
    // --force: a new token, and no previous one works.
    let changes = m.apply(&rotate(true), "sh", &mut seq).unwrap();
    assert!(changes[0].text.ends_with("the old token no longer works"));
    let n = &m.nodes["a.example.com"];
    assert_eq!((n.token.as_str(), &n.previous_token), ("t3", &None));
    assert!(matches!(
        m.apply(
            &Op::NodeTokenRotate {
                host: "b.example.com".into(),
                force: false
            },
            "sh",
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
