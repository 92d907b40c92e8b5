//! The TOML text of a fleet file, written by hand: sorted, stable, templates as multi-line
//! literal strings.

use super::Fleet;

/// Writes `fleet` as TOML: sorted, one table per task, file and node, templates as multi-line
/// literal strings where TOML allows it.
pub fn to_toml(fleet: &Fleet) -> String {
    let mut out = String::with_capacity(256 * (fleet.nodes.len() + fleet.tasks.len() + 4));
    out.push_str(
        "# umc fleet file, written by `umc-admin export`.\n\
         # `umc-admin apply <file>` makes the server's model equal it; generation counters and\n\
         # tokens are kept as exported and only `umc-admin import` restores them.\n",
    );
    out.push_str("\n[umc]\n");
    kv_int(&mut out, "format", u64::from(fleet.umc.format));
    for (k, v) in [
        ("generation", fleet.umc.generation),
        ("vars_generation", fleet.umc.vars_generation),
        ("server_generation", fleet.umc.server_generation),
    ] {
        if let Some(v) = v {
            kv_int(&mut out, k, v);
        }
    }
    out.push_str("\n[vars]\n");
    for (k, v) in &fleet.vars {
        kv_str(&mut out, k, v);
    }
    for (name, t) in &fleet.tasks {
        out.push_str(&format!("\n[tasks.{}]\n", key(name)));
        kv_str(&mut out, "description", &t.description);
        kv_list(&mut out, "depends", &t.depends);
        kv_list(&mut out, "removes", &t.removes);
        kv_list(&mut out, "includes", &t.includes);
        if !t.dropped.is_empty() {
            kv_list(&mut out, "dropped", &t.dropped);
        }
        if let Some(g) = t.generation {
            kv_int(&mut out, "generation", g);
        }
        for (path, f) in &t.files {
            out.push_str(&format!("\n[tasks.{}.files.{}]\n", key(name), key(path)));
            kv_str(&mut out, "mode", &f.mode);
            if let Some(s) = &f.reload {
                kv_str(&mut out, "reload", s);
            }
            if let Some(s) = &f.restart {
                kv_str(&mut out, "restart", s);
            }
            out.push_str("template = ");
            multiline(&mut out, &f.template);
            out.push('\n');
        }
    }
    for (host, n) in &fleet.nodes {
        out.push_str(&format!("\n[nodes.{}]\n", key(host)));
        kv_list(&mut out, "tasks", &n.tasks);
        for (k, v) in [
            ("ssh", &n.ssh),
            ("url", &n.url),
            ("conffiles", &n.conffiles),
            ("token", &n.token),
            ("previous_token", &n.previous_token),
        ] {
            if let Some(v) = v {
                kv_str(&mut out, k, v);
            }
        }
        if let Some(g) = n.previous_token_until {
            kv_int(&mut out, "previous_token_until", g);
        }
        if let Some(g) = n.generation {
            kv_int(&mut out, "generation", g);
        }
        if !n.vars.is_empty() {
            out.push_str(&format!("[nodes.{}.vars]\n", key(host)));
            for (k, v) in &n.vars {
                kv_str(&mut out, k, v);
            }
        }
    }
    for g in &fleet.history {
        out.push_str("\n[[history]]\n");
        kv_int(&mut out, "generation", g.generation);
        out.push_str(&format!("time = {}\n", g.time));
        kv_str(&mut out, "user", &g.user);
        out.push_str("changes = [\n");
        for c in &g.changes {
            out.push_str("  { text = ");
            basic(&mut out, &c.text);
            out.push_str(", entities = ");
            list(&mut out, &c.entities);
            out.push_str(" },\n");
        }
        out.push_str("]\n");
    }
    out
}

fn kv_int(out: &mut String, k: &str, v: u64) {
    out.push_str(&format!("{} = {v}\n", key(k)));
}

fn kv_str(out: &mut String, k: &str, v: &str) {
    out.push_str(&key(k));
    out.push_str(" = ");
    basic(out, v);
    out.push('\n');
}

fn kv_list(out: &mut String, k: &str, v: &[String]) {
    out.push_str(&key(k));
    out.push_str(" = ");
    list(out, v);
    out.push('\n');
}

fn list(out: &mut String, v: &[String]) {
    out.push('[');
    for (i, s) in v.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        basic(out, s);
    }
    out.push(']');
}

/// A bare key when TOML allows one, else a quoted one.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        let mut s = String::new();
        basic(&mut s, k);
        s
    }
}

/// A TOML basic string with escapes.
fn basic(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A template: a multi-line literal string (no escapes, reads as the file) when TOML can
/// carry it verbatim, else a basic string.
fn multiline(out: &mut String, s: &str) {
    let literal_ok = !s.contains("\'\'\'")
        && !s.ends_with('\'')
        && !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
    if literal_ok {
        out.push_str("\'\'\'\n");
        out.push_str(s);
        out.push_str("\'\'\'");
    } else {
        basic(out, s);
    }
}
