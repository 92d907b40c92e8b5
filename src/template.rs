//! Task files rendered per host with Tera 2.
//!
//! Pure: no IO, no clock. A template is parsed once ([`Template::parse`], which reports syntax
//! errors with line and column) and rendered per host ([`Template::render`]) against the
//! context umc documents in the README:
//!
//! | name | value |
//! | --- | --- |
//! | `host.fqdn` | the node's name, `web1.example.com` |
//! | `host.name` | its first label, `web1` |
//! | `host.domain` | the rest, `example.com` (empty for a bare name) |
//! | `vars` | global variables, overlaid by the node's own |
//! | `tasks` | the node's task closure, sorted |
//! | `node.ssh` | `{user, address, port}` when the node has an SSH target |
//!
//! Autoescaping is off (these are configuration files, not HTML). Maps iterate in sorted key
//! order, so output is deterministic.
//!
//! A render here has no budget besides the output cap: Tera 2 cannot be stopped from outside
//! a render. Templates nobody has rendered within the budget yet (an edit's, a preview's) go
//! through [`crate::sandbox`]; this module renders only what passed it, at most
//! [`MAX_RENDERS`] at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Condvar, Mutex};

use serde::{Deserialize, Serialize};

use crate::api::SshTarget;

/// Largest rendered (and source) file we accept.
pub const MAX_FILE: usize = 1 << 20;

/// Renders running in this process at once. Each one passed the sandbox for its host (so it
/// needs at most `sandbox::RENDER_MEMORY`); this bounds what they need together.
pub const MAX_RENDERS: usize = 4;

static RENDERS: Slots = Slots::new(MAX_RENDERS);

/// The error types cross the pipe from the render worker, hence serde.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum TemplateError {
    #[error("template '{path}': line {line}, column {column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("template '{path}' for host '{host}': line {line}, column {column}: {message}")]
    Render {
        path: String,
        host: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("template '{path}' for host '{host}': {message}")]
    Other {
        path: String,
        host: String,
        message: String,
    },
    #[error("template '{path}': {what} is larger than {MAX_FILE} bytes")]
    TooLarge { path: String, what: String },
    /// The render worker could not run or answered nonsense: umcd's fault, not the template's.
    #[error("the template render worker failed: {0}")]
    Worker(String),
}

impl TemplateError {
    /// The template line the error is at (1-based), when it names one.
    pub fn line(&self) -> Option<usize> {
        match self {
            TemplateError::Syntax { line, .. } | TemplateError::Render { line, .. } => Some(*line),
            TemplateError::Other { .. }
            | TemplateError::TooLarge { .. }
            | TemplateError::Worker(_) => None,
        }
    }
}

/// Everything a template may read about one host.
#[derive(Debug, Clone)]
pub struct HostContext<'a> {
    pub fqdn: &'a str,
    pub global_vars: &'a BTreeMap<String, String>,
    pub node_vars: &'a BTreeMap<String, String>,
    pub tasks: &'a BTreeSet<String>,
    pub ssh: Option<&'a SshTarget>,
}

#[derive(Serialize)]
struct HostValue<'a> {
    fqdn: &'a str,
    name: &'a str,
    domain: &'a str,
}

#[derive(Serialize)]
struct NodeValue<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ssh: Option<&'a SshTarget>,
}

impl HostContext<'_> {
    fn to_tera(&self) -> tera::Context {
        let (name, domain) = self.fqdn.split_once('.').unwrap_or((self.fqdn, ""));
        let mut vars = self.global_vars.clone();
        vars.extend(self.node_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut ctx = tera::Context::new();
        ctx.insert(
            "host",
            &HostValue {
                fqdn: self.fqdn,
                name,
                domain,
            },
        );
        ctx.insert("vars", &vars);
        ctx.insert("tasks", &self.tasks.iter().collect::<Vec<_>>());
        ctx.insert("node", &NodeValue { ssh: self.ssh });
        ctx
    }
}

/// A parsed template, ready to render for any number of hosts.
pub struct Template {
    path: String,
    tera: tera::Tera,
}

fn position(e: &tera::Error) -> Option<(usize, usize, String)> {
    match e.kind() {
        tera::ErrorKind::SyntaxError(r) | tera::ErrorKind::RenderingError(r) => Some((
            r.span().start_line,
            r.span().start_col + 1,
            house_style(r.message()),
        )),
        _ => None,
    }
}

/// Tera says "Field `x` is not defined."; umc errors are lowercase without a final period.
fn house_style(m: &str) -> String {
    let m = m.trim().trim_end_matches('.');
    let mut c = m.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

impl Template {
    /// Parses `source`; a syntax error names the line and column.
    pub fn parse(path: &str, source: &str) -> Result<Template, TemplateError> {
        if source.len() > MAX_FILE {
            return Err(TemplateError::TooLarge {
                path: path.to_string(),
                what: "the template".into(),
            });
        }
        let mut tera = tera::Tera::default();
        tera.autoescape_on(Vec::<&str>::new());
        tera.add_raw_template(path, source)
            .map_err(|e| match position(&e) {
                Some((line, column, message)) => TemplateError::Syntax {
                    path: path.to_string(),
                    line,
                    column,
                    message,
                },
                None => TemplateError::Syntax {
                    path: path.to_string(),
                    line: 1,
                    column: 1,
                    message: e.to_string(),
                },
            })?;
        Ok(Template {
            path: path.to_string(),
            tera,
        })
    }

    /// Renders for one host; an error names the host, the line and what was missing.
    pub fn render(&self, host: &HostContext<'_>) -> Result<String, TemplateError> {
        let _slot = RENDERS.take();
        // Rendered into a buffer that refuses to grow past MAX_FILE, so a loop that prints
        // without end fails early instead of exhausting memory.
        let mut out = Capped(Vec::new());
        let rendered = self.tera.render_to(&self.path, &host.to_tera(), &mut out);
        if out.0.len() > MAX_FILE {
            return Err(TemplateError::TooLarge {
                path: self.path.clone(),
                what: "the rendered file".into(),
            });
        }
        rendered.map_err(|e| match position(&e) {
            Some((line, column, message)) => TemplateError::Render {
                path: self.path.clone(),
                host: host.fqdn.to_string(),
                line,
                column,
                message,
            },
            None => TemplateError::Other {
                path: self.path.clone(),
                host: host.fqdn.to_string(),
                message: e.to_string(),
            },
        })?;
        String::from_utf8(out.0).map_err(|e| TemplateError::Other {
            path: self.path.clone(),
            host: host.fqdn.to_string(),
            message: format!("output is not UTF-8: {e}"),
        })
    }
}

/// A counting semaphore for blocking code.
pub(crate) struct Slots {
    used: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

pub(crate) struct Slot<'a>(&'a Slots);

impl Slots {
    pub(crate) const fn new(max: usize) -> Slots {
        Slots {
            used: Mutex::new(0),
            freed: Condvar::new(),
            max,
        }
    }

    /// Waits for a free slot; it is given back when the result drops.
    pub(crate) fn take(&self) -> Slot<'_> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= self.max {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut used = self.0.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= 1;
        self.0.freed.notify_one();
    }
}

/// A buffer that takes at most `MAX_FILE` + 1 bytes, then fails every write.
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_FILE {
            let room = MAX_FILE + 1 - self.0.len().min(MAX_FILE + 1);
            self.0.extend_from_slice(&buf[..room.min(buf.len())]);
            return Err(std::io::Error::other("rendered file too large"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(
        g: &'a BTreeMap<String, String>,
        n: &'a BTreeMap<String, String>,
        t: &'a BTreeSet<String>,
        ssh: Option<&'a SshTarget>,
    ) -> HostContext<'a> {
        HostContext {
            fqdn: "web1.example.com",
            global_vars: g,
            node_vars: n,
            tasks: t,
            ssh,
        }
    }

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn context_and_overlay() {
        let g = map(&[("db", "db0"), ("port", "5432"), ("zone", "eu")]);
        let n = map(&[("db", "db1"), ("a", "1")]);
        let t: BTreeSet<String> = ["web".to_string(), "base".to_string()].into();
        let ssh = SshTarget {
            user: "root".into(),
            address: "10.0.0.1".into(),
            port: 22,
        };
        let tpl = Template::parse(
            "/etc/x.conf",
            "{{ host.fqdn }} {{ host.name }} {{ host.domain }}\n\
             db={{ vars.db }}:{{ vars.port }}\n\
             {% for k, v in vars %}{{ k }}={{ v }};{% endfor %}\n\
             {{ tasks | join(sep=\",\") }}\n\
             {% if node.ssh %}ssh={{ node.ssh.user }}@{{ node.ssh.address }}{% endif %}<&>\n",
        )
        .unwrap();
        let out = tpl.render(&ctx(&g, &n, &t, Some(&ssh))).unwrap();
        assert_eq!(
            out,
            "web1.example.com web1 example.com\ndb=db1:5432\na=1;db=db1;port=5432;zone=eu;\nbase,web\nssh=root@10.0.0.1<&>\n"
        );
        // Without an SSH target, `node.ssh` is simply absent.
        let out = tpl.render(&ctx(&g, &n, &t, None)).unwrap();
        assert!(out.ends_with("base,web\n<&>\n"), "{out}");
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = Template::parse("/etc/x.conf", "ok\nline two {{ vars.a \n")
            .err()
            .unwrap();
        match &e {
            TemplateError::Syntax { line, .. } => assert_eq!(*line, 2, "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(
            e.to_string()
                .starts_with("template '/etc/x.conf': line 2, column "),
            "{e}"
        );
    }

    #[test]
    fn undefined_variables_name_host_and_line() {
        let (g, n, t) = (map(&[]), map(&[]), BTreeSet::new());
        let tpl = Template::parse("/etc/x.conf", "a\nb\nc={{ vars.missing }}\n").unwrap();
        let e = tpl.render(&ctx(&g, &n, &t, None)).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("host 'web1.example.com'"), "{text}");
        assert!(text.contains("line 3"), "{text}");
        assert!(
            text.ends_with("line 3, column 11: field `missing` is not defined"),
            "{text}"
        );
    }

    #[test]
    fn runaway_output_stops_at_the_cap() {
        let (g, n, t) = (map(&[]), map(&[]), BTreeSet::new());
        let tpl = Template::parse(
            "/x",
            // 10^11 bytes if it ran to the end: it must stop at the cap, not at the end.
            "{% for i in range(end=100000) %}{% for j in range(end=100000) %}xxxxxxxxxx{% endfor %}{% endfor %}",
        )
        .unwrap();
        let e = tpl.render(&ctx(&g, &n, &t, None)).unwrap_err();
        assert!(matches!(e, TemplateError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn deterministic() {
        let g: BTreeMap<String, String> =
            (0..50).map(|i| (format!("k{i}"), i.to_string())).collect();
        let (n, t) = (map(&[]), BTreeSet::new());
        let tpl =
            Template::parse("/x", "{% for k, v in vars %}{{ k }}{{ v }}{% endfor %}").unwrap();
        let a = tpl.render(&ctx(&g, &n, &t, None)).unwrap();
        for _ in 0..20 {
            assert_eq!(tpl.render(&ctx(&g, &n, &t, None)).unwrap(), a);
        }
        assert!(a.starts_with("k00k11k1010"), "{a}");
    }
}
