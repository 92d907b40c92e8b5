//! Reading a fleet file: TOML with the line of each table, or JSON.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Fleet, Lines, Problem};
use crate::model::normalize_host;

#[derive(Deserialize)]
struct SpanFleet {
    #[serde(default)]
    vars: Option<toml::Spanned<serde::de::IgnoredAny>>,
    #[serde(default)]
    tasks: BTreeMap<String, toml::Spanned<SpanTask>>,
    #[serde(default)]
    nodes: BTreeMap<String, toml::Spanned<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
struct SpanTask {
    #[serde(default)]
    files: BTreeMap<String, toml::Spanned<SpanFile>>,
}

#[derive(Deserialize)]
struct SpanFile {
    #[serde(default)]
    template: Option<toml::Spanned<serde::de::IgnoredAny>>,
}

/// Line numbers of byte offsets.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex(starts)
    }
    fn line(&self, offset: usize) -> usize {
        match self.0.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// Parses a fleet file in TOML, with the line of each table; a syntax or type error comes back
/// as one problem at its line.
pub fn parse_toml(text: &str) -> Result<(Fleet, Lines), Vec<Problem>> {
    let index = LineIndex::new(text);
    let fleet: Fleet = toml::from_str(text).map_err(|e| {
        vec![Problem {
            line: e.span().map(|s| index.line(s.start)).unwrap_or(0),
            message: e.message().trim().to_string(),
        }]
    })?;
    let spans: SpanFleet = toml::from_str(text).map_err(|e| {
        vec![Problem {
            line: e.span().map(|s| index.line(s.start)).unwrap_or(0),
            message: e.message().trim().to_string(),
        }]
    })?;
    let mut lines = Lines {
        vars: spans.vars.map(|v| index.line(v.span().start)).unwrap_or(0),
        ..Lines::default()
    };
    for (name, t) in spans.tasks {
        lines.tasks.insert(name.clone(), index.line(t.span().start));
        for (path, f) in t.into_inner().files {
            let fline = index.line(f.span().start);
            let tline = match f.into_inner().template {
                Some(t) => {
                    let start = t.span().start;
                    let rest = &text[start..];
                    let opens_block = (rest.starts_with("\'\'\'") || rest.starts_with("\"\"\""))
                        && (rest[3..].starts_with('\n') || rest[3..].starts_with("\r\n"));
                    index.line(start) + usize::from(opens_block)
                }
                None => fline,
            };
            lines.files.insert((name.clone(), path), (fline, tline));
        }
    }
    for (host, n) in spans.nodes {
        let line = index.line(n.span().start);
        lines.nodes.insert(host.clone(), line);
        // Problems name normalized hosts.
        if let Ok(h) = normalize_host(&host) {
            lines.nodes.entry(h).or_insert(line);
        }
    }
    Ok((fleet, lines))
}

/// Parses a fleet file in JSON (no line numbers beyond a syntax error's).
pub fn parse_json(text: &str) -> Result<(Fleet, Lines), Vec<Problem>> {
    serde_json::from_str(text)
        .map(|f| (f, Lines::default()))
        .map_err(|e| {
            vec![Problem {
                line: e.line(),
                message: e.to_string(),
            }]
        })
}
