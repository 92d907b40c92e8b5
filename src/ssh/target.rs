//! Fleet targets: a host name, `task:<name>`, `all`, or a glob, resolved against the model's
//! nodes. Pure: no IO.

use std::collections::BTreeMap;

use super::SshError;
use crate::api::NodeInfo;

/// One host to reach: the node name and where its SSH server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub user: String,
    pub address: String,
    pub port: u16,
}

/// The user when neither `--user` nor the node's `--ssh` names one.
pub const DEFAULT_USER: &str = "root";

/// Resolves `targets` against `nodes`, sorted by name, each host once. Every target must match
/// at least one node. `user` (from `--user`) overrides the nodes' own SSH users.
pub fn resolve(
    targets: &[String],
    nodes: &[NodeInfo],
    user: Option<&str>,
) -> Result<Vec<Host>, SshError> {
    if targets.is_empty() {
        return Err(SshError::NoTargets);
    }
    let mut picked: BTreeMap<&str, &NodeInfo> = BTreeMap::new();
    for t in targets {
        let t = t.trim();
        let mut matched = false;
        if t == "all" {
            for n in nodes {
                matched = true;
                picked.insert(&n.name, n);
            }
        } else if let Some(task) = t.strip_prefix("task:") {
            for n in nodes
                .iter()
                .filter(|n| n.task_closure.iter().any(|c| c == task))
            {
                matched = true;
                picked.insert(&n.name, n);
            }
        } else if t.contains(['*', '?', '[']) {
            let pattern = t.to_ascii_lowercase();
            for n in nodes.iter().filter(|n| glob_match(&pattern, &n.name)) {
                matched = true;
                picked.insert(&n.name, n);
            }
        } else {
            let name = t.to_ascii_lowercase();
            if let Some(n) = nodes.iter().find(|n| n.name == name) {
                matched = true;
                picked.insert(&n.name, n);
            }
        }
        if !matched {
            return Err(SshError::UnknownTarget(t.to_string()));
        }
    }
    Ok(picked
        .into_values()
        .map(|n| {
            let (u, address, port) = match &n.ssh {
                Some(s) => (s.user.as_str(), s.address.clone(), s.port),
                None => (DEFAULT_USER, n.name.clone(), 22),
            };
            Host {
                name: n.name.clone(),
                user: user.unwrap_or(u).to_string(),
                address,
                port,
            }
        })
        .collect())
}

/// Shell-style glob: `*` any run of characters, `?` one character, `[abc]`/`[a-z]`/`[!a]` a
/// class. Everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with backtracking to the last `*`: linear in practice, never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, next)) = class(&p, pi, t[ti])
                        && ok
                    {
                        pi = next;
                        ti += 1;
                        continue;
                    }
                }
                c if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class starting at `p[start] == '['`; returns (matched, index after
/// the class), or None for an unterminated class (then `[` is compared literally and fails).
fn class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut ok = false;
    let mut first = true;
    while i < p.len() && (first || p[i] != ']') {
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            ok |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            ok |= p[i] == c;
            i += 1;
        }
    }
    if i >= p.len() {
        return None;
    }
    Some((ok != negate, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SshTarget;

    fn node(name: &str, closure: &[&str], ssh: Option<SshTarget>) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            package: format!("umc-{name}"),
            version: "1.1".into(),
            vars: Default::default(),
            tasks: vec![],
            task_closure: closure.iter().map(|s| s.to_string()).collect(),
            ssh,
            url: None,
            conffiles: None,
            rotation: None,
            generation: 1,
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.web.example.com", "a.web.example.com"));
        assert!(!glob_match("*.web.example.com", "web.example.com"));
        assert!(glob_match("h?", "h1"));
        assert!(!glob_match("h?", "h12"));
        assert!(glob_match("h[0-4]*", "h3x"));
        assert!(!glob_match("h[!0-4]", "h3"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(!glob_match("[ab", "a"));
    }

    #[test]
    fn resolves_names_tasks_globs_and_all() {
        let nodes = vec![
            node("a.web.example.com", &["web", "base"], None),
            node(
                "b.web.example.com",
                &["web"],
                Some(SshTarget {
                    user: "admin".into(),
                    address: "10.0.0.2".into(),
                    port: 2222,
                }),
            ),
            node("db.example.com", &["base"], None),
        ];
        let names = |t: &[&str]| -> Vec<String> {
            let t: Vec<String> = t.iter().map(|s| s.to_string()).collect();
            resolve(&t, &nodes, None)
                .expect("resolve")
                .into_iter()
                .map(|h| h.name)
                .collect()
        };
        assert_eq!(names(&["all"]).len(), 3);
        assert_eq!(
            names(&["task:base"]),
            ["a.web.example.com", "db.example.com"]
        );
        assert_eq!(
            names(&["*.web.example.com", "a.web.example.com"]),
            ["a.web.example.com", "b.web.example.com"]
        );
        assert_eq!(names(&["DB.example.com"]), ["db.example.com"]);
        let hosts = resolve(&["b.web.example.com".into()], &nodes, None).expect("resolve");
        assert_eq!(
            hosts[0],
            Host {
                name: "b.web.example.com".into(),
                user: "admin".into(),
                address: "10.0.0.2".into(),
                port: 2222
            }
        );
        let hosts = resolve(&["db.example.com".into()], &nodes, Some("ops")).expect("resolve");
        assert_eq!((hosts[0].user.as_str(), hosts[0].port), ("ops", 22));
        assert_eq!(hosts[0].address, "db.example.com");
        for bad in ["nope.example.com", "task:nope", "*.nope"] {
            let e = resolve(&[bad.into()], &nodes, None).expect_err("unknown");
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
