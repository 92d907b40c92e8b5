//! `GET /metrics`, read by a real Prometheus parser (Debian's python3-prometheus-client), not
//! by ours: after some apt traffic, the counters and histograms must say so.

use crate::common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use common::{Server, http, output_with_stdin, require, require_tool};

const HOST: &str = "web1.example.com";

/// Debian's interpreter first: python3-prometheus-client installs for it, and a `python3`
/// earlier on PATH (a virtualenv, pyenv) may not see the module.
fn python() -> Option<&'static str> {
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else if require_tool("python3") {
        "python3"
    } else {
        return None;
    };
    let has_module = Command::new(python)
        .args(["-c", "import prometheus_client"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require(
        has_module,
        "python module prometheus_client (apt-get install python3-prometheus-client)",
    )
    .then_some(python)
}

/// One sample as the parser saw it.
#[derive(Debug, serde::Deserialize)]
struct Sample {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    for s in f.samples:
        out.append({"type": f.type, "name": s.name, "labels": s.labels, "value": s.value})
json.dump(out, sys.stdout)
"#;

fn parse(python: &str, text: &str) -> Vec<Sample> {
    let out = output_with_stdin(Command::new(python).args(["-c", PARSE]), text.as_bytes());
    assert!(
        out.status.success(),
        "prometheus_client refused the metrics: {}\n--- metrics\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("parser output")
}

/// The value of the one sample `name` with exactly these `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut found = samples
        .iter()
        .filter(|s| s.name == name && s.labels == want);
    let v = found.next().map(|s| s.value);
    assert!(found.next().is_none(), "{name} {labels:?} appears twice");
    v
}

/// Buckets cumulative and ending in +Inf equal to `_count`, for every label set.
fn check_histogram(samples: &[Sample], name: &str) {
    let bucket = format!("{name}_bucket");
    // labels without `le` -> (le, cumulative count), in the order written
    let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == bucket) {
        assert_eq!(s.kind, "histogram", "{name}");
        let mut labels = s.labels.clone();
        let le: f64 = labels
            .remove("le")
            .expect("le")
            .parse()
            .expect("le is a float");
        series.entry(labels).or_default().push((le, s.value));
    }
    assert!(!series.is_empty(), "no {bucket} samples");
    for (labels, buckets) in series {
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{name} {labels:?}: buckets not cumulative: {buckets:?}"
        );
        let (le, inf) = *buckets.last().expect("a bucket");
        assert!(le.is_infinite(), "{name} {labels:?}: no +Inf bucket");
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let count = value(samples, &format!("{name}_count"), &labels);
        assert_eq!(count, Some(inf), "{name} {labels:?}: _count vs +Inf");
        assert!(value(samples, &format!("{name}_sum"), &labels).is_some());
    }
}

#[test]
fn metrics_count_apt_traffic_and_parse_with_prometheus_client() {
    let Some(python) = python() else {
        return;
    };
    let s = Server::start();
    s.admin_ok(&["node", "add", HOST]);
    s.admin_ok(&["task", "add", "web"]);
    s.admin_ok(&["task", "depend", "web", "nginx-light"]);
    s.admin_ok(&["assign", HOST, "web"]);
    let token = s.node_token(HOST);
    let basic = Some((HOST, token.as_str()));
    let base = format!("/hosts/{HOST}");

    // Before any apt traffic: the families are there, with nothing counted yet.
    let before = s.get("/metrics", None, &[]);
    assert_eq!(before.status, 200);
    let before = parse(python, &before.text());
    let inrelease_ok = [("class", "apt_inrelease"), ("code", "200")];
    assert_eq!(
        value(&before, "umc_http_requests_total", &inrelease_ok),
        None
    );

    for _ in 0..2 {
        let r = s.get(&format!("{base}/dists/umc/InRelease"), basic, &[]);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = s.get(
        &format!("{base}/dists/umc/main/binary-amd64/Packages.xz"),
        basic,
        &[],
    );
    assert_eq!(r.status, 200);
    let r = s.get(
        &format!("{base}/dists/umc/InRelease"),
        Some((HOST, "wrong")),
        &[],
    );
    assert_eq!(r.status, 401);
    // No such route yet; still counted as a report.
    let r = http("POST", &format!("{}{base}/report", s.url), basic, &[], None);
    let report_code = r.status.to_string();

    let resp = s.get("/metrics", None, &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = resp.text();
    let m = parse(python, &text);

    assert_eq!(
        value(&m, "umc_http_requests_total", &inrelease_ok),
        Some(2.0),
        "{text}"
    );
    let unauthorized = [("class", "apt_inrelease"), ("code", "401")];
    assert_eq!(
        value(&m, "umc_http_requests_total", &unauthorized),
        Some(1.0)
    );
    let index = [("class", "apt_index"), ("code", "200")];
    assert_eq!(value(&m, "umc_http_requests_total", &index), Some(1.0));
    let report = [("class", "report"), ("code", report_code.as_str())];
    assert_eq!(value(&m, "umc_http_requests_total", &report), Some(1.0));
    let admin = value(
        &m,
        "umc_http_requests_total",
        &[("class", "admin_api"), ("code", "200")],
    );
    assert!(admin.is_some_and(|n| n >= 5.0), "{text}");
    let inrelease = [("class", "apt_inrelease")];
    assert_eq!(
        value(&m, "umc_http_request_duration_seconds_count", &inrelease),
        Some(3.0)
    );

    check_histogram(&m, "umc_http_request_duration_seconds");
    check_histogram(&m, "umc_render_duration_seconds");
    let renders = value(&m, "umc_render_duration_seconds_count", &[]).unwrap_or(0.0);
    assert!(renders >= 1.0, "{text}");

    // First InRelease: tokens and hosts missed, then the second one hit both.
    for cache in ["tokens", "hosts"] {
        let hits = value(&m, "umc_cache_hits_total", &[("cache", cache)]);
        let misses = value(&m, "umc_cache_misses_total", &[("cache", cache)]);
        assert!(hits.is_some_and(|n| n >= 1.0), "{cache} hits: {text}");
        assert!(misses.is_some_and(|n| n >= 1.0), "{cache} misses: {text}");
    }
    let archive_misses = value(&m, "umc_cache_misses_total", &[("cache", "archives")]);
    assert_eq!(archive_misses, Some(renders));
    let deb_misses = value(&m, "umc_cache_misses_total", &[("cache", "debs")]);
    assert!(deb_misses.is_some_and(|n| n >= 1.0), "{text}");
    for cache in ["debs", "archives", "tokens", "hosts", "latest", "recent"] {
        assert!(
            value(&m, "umc_cache_entries", &[("cache", cache)]).is_some(),
            "umc_cache_entries {cache}: {text}"
        );
    }
    assert!(value(&m, "umc_cache_bytes", &[("cache", "archives")]).is_some());

    for state in ["ok", "pending", "failed", "stale", "drift"] {
        assert!(
            value(&m, "umc_hosts", &[("state", state)]).is_some(),
            "umc_hosts {state}: {text}"
        );
    }
    assert!(
        value(&m, "umc_generation", &[]).is_some_and(|g| g >= 4.0),
        "{text}"
    );
    let start = value(&m, "process_start_time_seconds", &[]).expect("start time");
    assert!(start > 1.6e9, "{start}");
}
