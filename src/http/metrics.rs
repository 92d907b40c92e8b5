//! `GET /metrics`: Prometheus text format 0.0.4, written here by hand.
//!
//! Everything recorded on the request path is a relaxed atomic add into a fixed array
//! (indexed by route class, status code or bucket): no lock, no allocation, no map lookup.
//! The text is only assembled when someone scrapes.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::api::HostStatus;
use crate::app::blocking;
use crate::app::metrics::{COUNTED_CACHES, Histogram};
use crate::report::State as HostState;

pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a request was, for the request counter and latency histogram. Few on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    AptInRelease,
    AptIndex,
    AptPool,
    AptOther,
    AdminApi,
    Report,
    Other,
}

const CLASSES: [(Class, &str); 7] = [
    (Class::AptInRelease, "apt_inrelease"),
    (Class::AptIndex, "apt_index"),
    (Class::AptPool, "apt_pool"),
    (Class::AptOther, "apt_other"),
    (Class::AdminApi, "admin_api"),
    (Class::Report, "report"),
    (Class::Other, "other"),
];

/// Classifies by method and path alone (before routing, without allocating), so requests
/// the router rejects are counted in the class they were aimed at.
pub(super) fn classify(method: &Method, path: &str) -> Class {
    if path == "/api/v1" || path.starts_with("/api/v1/") {
        return Class::AdminApi;
    }
    let Some(rest) = path.strip_prefix("/hosts/") else {
        return Class::Other;
    };
    // `<host>/<rest>`; apt sends `/./` literally for flat repositories.
    let mut parts = rest.split('/').filter(|p| !p.is_empty() && *p != ".");
    parts.next();
    let first = parts.next();
    let last = parts.next_back().or(first);
    if *method == Method::POST && last == Some("report") {
        return Class::Report;
    }
    match (first, last) {
        (Some("dists"), Some("InRelease")) => Class::AptInRelease,
        (Some("dists"), Some(f)) if f.starts_with("Packages") || rest.contains("/by-hash/") => {
            Class::AptIndex
        }
        (Some("pool"), _) => Class::AptPool,
        _ => Class::AptOther,
    }
}

/// Upper bounds (seconds) of the request latency buckets: a warm apt request is well under a
/// millisecond, a cold render or a catalog import takes seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// HTTP status codes are three digits (`http::StatusCode` allows 100..=999).
const CODES: usize = 1000;

/// Requests answered, by route class and status code, and their latency by class.
pub(crate) struct Requests {
    /// `class * CODES + status code`.
    requests: Box<[AtomicU64]>,
    latency: [Histogram; CLASSES.len()],
}

impl Requests {
    pub(crate) fn new() -> Requests {
        Requests {
            requests: (0..CLASSES.len() * CODES)
                .map(|_| AtomicU64::new(0))
                .collect(),
            latency: std::array::from_fn(|_| Histogram::new(HTTP_BUCKETS)),
        }
    }

    pub(crate) fn request(&self, class: Class, code: u16, took: Duration) {
        let code = usize::from(code).min(CODES - 1);
        self.requests[class as usize * CODES + code].fetch_add(1, Relaxed);
        self.latency[class as usize].observe(took);
    }
}

/// One host as the fleet gauges show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HostGauge {
    pub host: String,
    pub state: HostState,
    /// Unix seconds of the host's last report.
    pub last_report: Option<i64>,
    /// Whether that report said the run succeeded.
    pub last_success: Option<bool>,
}

/// The fleet as the gauges show it, sorted by host.
fn fleet_gauges(rows: &[HostStatus]) -> Vec<HostGauge> {
    rows.iter()
        .map(|r| HostGauge {
            state: r.state,
            last_success: r.last_result.as_deref().map(|x| x == "ok"),
            last_report: r.last_report,
            host: r.host.clone(),
        })
        .collect()
}

/// `GET /metrics` (no auth: whoever reaches it sees host names). The fleet gauges come from
/// the console's fleet status (`App::fleet_status`): scrapes, which need no credentials, share
/// its snapshot and never judge the fleet more than once at a time.
pub(super) async fn handler(State(state): State<Arc<AppState>>) -> Response {
    let app = state.app.clone();
    // Judging the fleet may read the store: off the async workers.
    let fleet = match blocking(move || app.fleet_status()).await {
        Ok(rows) => fleet_gauges(&rows),
        Err(e) => {
            tracing::warn!("metrics: fleet status: {e}");
            Vec::new()
        }
    };
    let body = render(&state, &fleet);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// The middleware that counts and times every request by [`Class`].
pub(super) async fn track(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let class = classify(req.method(), req.uri().path());
    let started = Instant::now();
    let resp = next.run(req).await;
    // Until the response head is ready: umcd's bodies are in memory, so this is the work.
    state
        .requests
        .request(class, resp.status().as_u16(), started.elapsed());
    resp
}

/// A label value in the text format: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A histogram's `<name>_bucket`, `_sum` and `_count` lines; `labels` is empty or `k="v",`.
fn write_histogram(out: &mut String, h: &Histogram, name: &str, labels: &str) {
    let mut cumulative = 0;
    for (bound, n) in h.buckets() {
        cumulative += n;
        let le = match bound {
            Some(bound) => bound.to_string(),
            None => "+Inf".to_string(),
        };
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
    }
    let sum = h.sum_secs();
    let labels = labels.trim_end_matches(',');
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {sum}");
    // The count is the +Inf bucket as read above, so one scrape is self-consistent.
    let _ = writeln!(out, "{name}_count{braces} {cumulative}");
}

fn render(state: &AppState, fleet: &[HostGauge]) -> String {
    let r = &state.requests;
    let m = &state.app.metrics;
    let mut out = String::with_capacity(16 << 10);
    let o = &mut out;

    family(
        o,
        "umc_http_requests_total",
        "counter",
        "HTTP requests answered, by route class and status code.",
    );
    for (class, name) in CLASSES {
        for code in 0..CODES {
            let n = r.requests[class as usize * CODES + code].load(Relaxed);
            if n > 0 {
                let _ = writeln!(
                    o,
                    "umc_http_requests_total{{class=\"{name}\",code=\"{code}\"}} {n}"
                );
            }
        }
    }
    family(
        o,
        "umc_http_request_duration_seconds",
        "histogram",
        "Time to the response head, by route class.",
    );
    for (class, name) in CLASSES {
        write_histogram(
            o,
            &r.latency[class as usize],
            "umc_http_request_duration_seconds",
            &format!("class=\"{name}\","),
        );
    }

    family(
        o,
        "umc_render_duration_seconds",
        "histogram",
        "Cold renders of a host's archive (indexes, signatures, uncached debs).",
    );
    write_histogram(o, m.renders(), "umc_render_duration_seconds", "");

    let caches = &state.app.cache;
    family(
        o,
        "umc_cache_hits_total",
        "counter",
        "Cache lookups that found their entry.",
    );
    for (i, name) in COUNTED_CACHES.iter().enumerate() {
        let (n, _) = m.lookups(i);
        let _ = writeln!(o, "umc_cache_hits_total{{cache=\"{name}\"}} {n}");
    }
    family(
        o,
        "umc_cache_misses_total",
        "counter",
        "Cache lookups that had to build or read their entry.",
    );
    for (i, name) in COUNTED_CACHES.iter().enumerate() {
        let (_, n) = m.lookups(i);
        let _ = writeln!(o, "umc_cache_misses_total{{cache=\"{name}\"}} {n}");
    }
    // moka updates its sizes lazily: these are close, not exact.
    let stats = caches.stats();
    family(
        o,
        "umc_cache_bytes",
        "gauge",
        "Approximate bytes held by each cache (weights include moka's per-entry overhead).",
    );
    for c in &stats {
        let _ = writeln!(o, "umc_cache_bytes{{cache=\"{}\"}} {}", c.name, c.bytes);
    }
    family(
        o,
        "umc_cache_budget_bytes",
        "gauge",
        "Each cache's share of cache_bytes.",
    );
    for c in &stats {
        let _ = writeln!(
            o,
            "umc_cache_budget_bytes{{cache=\"{}\"}} {}",
            c.name, c.budget
        );
    }
    family(
        o,
        "umc_cache_entries",
        "gauge",
        "Approximate entries in each cache.",
    );
    for c in &stats {
        let _ = writeln!(o, "umc_cache_entries{{cache=\"{}\"}} {}", c.name, c.entries);
    }

    write_fleet(o, fleet);

    family(
        o,
        "umc_generation",
        "gauge",
        "The newest committed model generation.",
    );
    let _ = writeln!(o, "umc_generation {}", state.app.generation());
    family(
        o,
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch in seconds.",
    );
    let start = m
        .started()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let _ = writeln!(o, "process_start_time_seconds {start}");
    out
}

fn write_fleet(o: &mut String, fleet: &[HostGauge]) {
    // Every state, 0 included, by name.
    let mut states: std::collections::BTreeMap<&str, u64> =
        HostState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for h in fleet {
        *states.entry(h.state.as_str()).or_default() += 1;
    }
    family(o, "umc_hosts", "gauge", "Hosts by state.");
    for (state, n) in states {
        let _ = writeln!(o, "umc_hosts{{state=\"{}\"}} {n}", escape(state));
    }
    family(
        o,
        "umc_host_last_report_timestamp_seconds",
        "gauge",
        "When each host last reported, in Unix seconds.",
    );
    for h in fleet {
        if let Some(t) = h.last_report {
            let host = escape(&h.host);
            let _ = writeln!(
                o,
                "umc_host_last_report_timestamp_seconds{{host=\"{host}\"}} {t}"
            );
        }
    }
    family(
        o,
        "umc_host_last_report_success",
        "gauge",
        "Whether each host's last report said its run succeeded (1) or failed (0).",
    );
    for h in fleet {
        if let Some(ok) = h.last_success {
            let host = escape(&h.host);
            let _ = writeln!(
                o,
                "umc_host_last_report_success{{host=\"{host}\"}} {}",
                u8::from(ok)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let get = Method::GET;
        let h = "/hosts/web1.example.com";
        let cases = [
            (
                &get,
                format!("{h}/dists/umc/InRelease"),
                Class::AptInRelease,
            ),
            (
                &get,
                format!("{h}/./dists/umc/./InRelease"),
                Class::AptInRelease,
            ),
            (&get, format!("{h}/dists/umc/Release"), Class::AptOther),
            (&get, format!("{h}/dists/umc/Release.gpg"), Class::AptOther),
            (
                &get,
                format!("{h}/dists/umc/main/binary-amd64/Packages.xz"),
                Class::AptIndex,
            ),
            (
                &get,
                format!("{h}/dists/umc/main/binary-amd64/by-hash/SHA256/ab"),
                Class::AptIndex,
            ),
            (&get, format!("{h}/pool/main/u/umc-x/x.deb"), Class::AptPool),
            (&get, format!("{h}/bootstrap"), Class::AptOther),
            (&get, h.to_string(), Class::AptOther),
            (&Method::POST, format!("{h}/report"), Class::Report),
            (&get, format!("{h}/report"), Class::AptOther),
            (&Method::POST, "/api/v1/edit".to_string(), Class::AdminApi),
            (&get, "/api/v1".to_string(), Class::AdminApi),
            (&get, "/api/v10".to_string(), Class::Other),
            (&get, "/metrics".to_string(), Class::Other),
            (&get, "/healthz".to_string(), Class::Other),
        ];
        for (m, path, want) in cases {
            assert_eq!(classify(m, &path), want, "{m} {path}");
        }
    }

    #[test]
    fn histogram_buckets_are_upper_bounds() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(Duration::from_millis(100)); // le="0.1" holds 0.1 itself
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_secs(5));
        let mut out = String::new();
        write_histogram(&mut out, &h, "x", "");
        assert_eq!(
            out,
            "x_bucket{le=\"0.1\"} 1\nx_bucket{le=\"1\"} 2\nx_bucket{le=\"+Inf\"} 3\n\
             x_sum 5.6\nx_count 3\n"
        );
    }

    #[test]
    fn fleet_labels_are_escaped_and_every_state_is_present() {
        let mut out = String::new();
        write_fleet(&mut out, &[]);
        for s in HostState::ALL {
            assert!(
                out.contains(&format!("umc_hosts{{state=\"{s}\"}} 0\n")),
                "{out}"
            );
        }
        let mut out = String::new();
        write_fleet(
            &mut out,
            &[HostGauge {
                host: "a\\b\"c\nd".into(),
                state: HostState::Failed,
                last_report: Some(1_700_000_000),
                last_success: Some(false),
            }],
        );
        assert!(out.contains("umc_hosts{state=\"failed\"} 1\n"), "{out}");
        assert!(out.contains(
            "umc_host_last_report_timestamp_seconds{host=\"a\\\\b\\\"c\\nd\"} 1700000000\n"
        ));
        assert!(out.contains("umc_host_last_report_success{host=\"a\\\\b\\\"c\\nd\"} 0\n"));
    }
}
