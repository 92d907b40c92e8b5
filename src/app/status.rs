//! Fleet status: every host judged from its newest report, the passive signals (InRelease
//! fetches, host deb downloads) and the published version's commit time.
//!
//! Reports are committed in batches by one writer task ([`App::start_report_writer`]): each
//! caller of [`App::ingest_report`] waits until its report is durable, but 10,000 nodes
//! reporting at once cost a few hundred fsyncs, not 10,000, and apt traffic (read-only,
//! mostly cached) never waits on them.
//!
//! One snapshot serves every reader that may see a few seconds' old status: the console's
//! pages and `/metrics` ([`App::fleet_status`]). Readers that must see the latest report (the
//! status API, a key retirement) judge afresh ([`App::judge_fleet`]) and refresh the snapshot
//! on the way.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{App, AppError, background, blocking, now};
use crate::api::{HostStatus, HostStatusDetail};
use crate::model::host_package;
use crate::report::{self, Seen};
use crate::store::{IncomingReport, StoreError};

/// Reports waiting for the writer; beyond this, senders wait.
const QUEUE: usize = 16_384;
/// Most reports committed in one transaction.
const BATCH: usize = 1024;
/// How often the writer flushes passive signals and applies retention.
const TICK: Duration = Duration::from_secs(60);

/// How old the shared fleet status may get before a background refresh: reports arrive all
/// the time, and judging 10,000 of them on every page view would cost more than the page.
const FLEET_TTL: Duration = Duration::from_secs(5);

struct Job {
    report: IncomingReport,
    done: oneshot::Sender<Result<(), String>>,
}

/// Every host's status at one moment.
struct FleetSnapshot {
    at: Instant,
    generation: u64,
    rows: Arc<Vec<HostStatus>>,
}

pub(super) struct Status {
    /// Fleet status, at most `FLEET_TTL` old and never older than the model.
    fleet: Mutex<Option<FleetSnapshot>>,
    refreshing: AtomicBool,
    judging: Mutex<()>,
    /// Passive signals per host, flushed to the store by the report writer.
    seen: Mutex<BTreeMap<String, Seen>>,
    /// Reports on their way to the writer, which commits them in batches.
    reports: mpsc::Sender<Job>,
    report_rx: Mutex<Option<mpsc::Receiver<Job>>>,
}

impl Status {
    pub(super) fn new(seen: BTreeMap<String, Seen>) -> Status {
        let (reports, report_rx) = mpsc::channel(QUEUE);
        Status {
            fleet: Mutex::new(None),
            refreshing: AtomicBool::new(false),
            judging: Mutex::new(()),
            seen: Mutex::new(seen),
            reports,
            report_rx: Mutex::new(Some(report_rx)),
        }
    }
}

impl App {
    /// Every host's status. Judged afresh when the model changed (whoever just edited sees
    /// the effect); otherwise reused, and once older than `FLEET_TTL` refreshed in the
    /// background while readers keep getting the previous snapshot, so no page view waits
    /// for 10,000 reports to be judged.
    pub fn fleet_status(self: &Arc<Self>) -> Result<Arc<Vec<HostStatus>>, AppError> {
        let want = self.generation();
        if let Some(f) = self.fleet_at_least(want) {
            if f.0 >= FLEET_TTL && !self.status.refreshing.swap(true, Ordering::AcqRel) {
                /// Clears the flag however the refresh ends (a panic included), or no
                /// snapshot would ever be refreshed again.
                struct Done(Arc<App>);
                impl Drop for Done {
                    fn drop(&mut self) {
                        self.0.status.refreshing.store(false, Ordering::Release);
                    }
                }
                let done = Done(self.clone());
                background(move || {
                    if let Err(e) = done.0.judge_fleet() {
                        tracing::warn!("fleet status: {e}");
                    }
                });
            }
            return Ok(f.1);
        }
        // One judge after an edit; whoever waited for it takes its result.
        let _one = self.status.judging.lock();
        if let Some((_, rows)) = self.fleet_at_least(want) {
            return Ok(rows);
        }
        self.judge_fleet()
    }

    /// The shared snapshot's age and rows, when it is at generation `want` or newer.
    fn fleet_at_least(&self, want: u64) -> Option<(Duration, Arc<Vec<HostStatus>>)> {
        let slot = self.status.fleet.lock().ok()?;
        let f = slot.as_ref().filter(|f| f.generation >= want)?;
        Some((f.at.elapsed(), f.rows.clone()))
    }

    /// Every host's status, sorted by host name, judged now; also replaces the shared
    /// snapshot.
    pub fn judge_fleet(&self) -> Result<Arc<Vec<HostStatus>>, AppError> {
        let generation = self.generation();
        let rows = Arc::new(fleet(self, now())?);
        if let Ok(mut slot) = self.status.fleet.lock()
            && slot.as_ref().is_none_or(|old| old.generation <= generation)
        {
            *slot = Some(FleetSnapshot {
                at: Instant::now(),
                generation,
                rows: rows.clone(),
            });
        }
        Ok(rows)
    }

    /// `host`'s status judged now, and its recent reports (newest first).
    pub fn host_status(&self, host: &str) -> Result<HostStatusDetail, AppError> {
        let status = fleet(self, now())?
            .into_iter()
            .find(|r| r.host == host)
            .ok_or_else(|| AppError::NotFound(format!("unknown node '{host}'")))?;
        let reports = self.node_reports(host)?;
        Ok(HostStatusDetail { status, reports })
    }

    /// Commits `batch` in one transaction; returns the hosts whose token rotation a report
    /// ended. Such a report changes the node without a generation, so the shared model is
    /// read again (`GET /api/v1/nodes` shows the rotation over at once).
    pub(super) fn store_reports(&self, batch: &[IncomingReport]) -> Result<Vec<String>, AppError> {
        let ended = self.store.add_reports(batch, self.config.report_keep)?;
        if !ended.is_empty() {
            self.models.forget();
        }
        Ok(ended)
    }

    /// Records a passive signal of `host`.
    pub fn saw(&self, host: &str, f: impl FnOnce(&mut Seen)) {
        if let Ok(mut seen) = self.status.seen.lock() {
            f(seen.entry(host.to_string()).or_default());
        }
    }

    fn seen_snapshot(&self) -> BTreeMap<String, Seen> {
        self.status
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Checks node `host`'s report `text` (received now) and waits until the writer has
    /// stored it. `current_token`: the hash of the token it came with, when that was the
    /// node's current token during a rotation (only such a report may end the rotation).
    pub async fn ingest_report(
        &self,
        host: String,
        text: String,
        current_token: Option<[u8; 32]>,
    ) -> Result<(), AppError> {
        let received = now();
        if let Err(e) = report::parse(&text, received) {
            return Err(AppError::Invalid(e.to_string()));
        }
        let (done, wait) = oneshot::channel();
        let job = Job {
            report: IncomingReport {
                host,
                received,
                text,
                current_token,
            },
            done,
        };
        if self.status.reports.send(job).await.is_err() {
            return Err(AppError::internal("report writer: stopped"));
        }
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AppError::internal(format!("storing report: {e}"))),
            Err(e) => Err(AppError::internal(format!("report writer: {e}"))),
        }
    }

    /// Starts the task that commits reports in batches (once per `App`); every `TICK` it
    /// also flushes passive signals and applies retention.
    pub fn start_report_writer(self: &Arc<Self>) -> ReportWriter {
        let task = self
            .status
            .report_rx
            .lock()
            .ok()
            .and_then(|mut r| r.take())
            .map(|rx| tokio::spawn(writer(self.clone(), rx)));
        ReportWriter {
            app: self.clone(),
            task,
        }
    }

    /// Writes the in-memory passive signals to the store.
    async fn flush_seen(self: &Arc<Self>) {
        let seen = self.seen_snapshot();
        if seen.is_empty() {
            return;
        }
        let app = self.clone();
        if let Err(e) = blocking(move || Ok::<_, AppError>(app.store.save_seen(&seen)?)).await {
            tracing::warn!("saving passive signals: {e}");
        }
    }
}

/// The running report writer.
pub struct ReportWriter {
    app: Arc<App>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ReportWriter {
    /// Stops the writer and flushes the passive signals it holds.
    pub async fn stop(self) {
        if let Some(t) = self.task {
            t.abort();
        }
        self.app.flush_seen().await;
    }
}

/// Commits queued reports in batches; every `TICK` also flushes passive signals and prunes.
async fn writer(app: Arc<App>, mut rx: mpsc::Receiver<Job>) {
    // The first tick fires at once: retention also runs at startup.
    let mut tick = tokio::time::interval(TICK);
    loop {
        let first = tokio::select! {
            job = rx.recv() => match job {
                Some(j) => j,
                None => return,
            },
            _ = tick.tick() => {
                app.flush_seen().await;
                let a = app.clone();
                let pruned = blocking(move || {
                    Ok::<_, AppError>(a.store.prune(a.config.log_keep, a.config.audit_keep)?)
                })
                .await;
                if let Err(e) = pruned {
                    tracing::warn!("retention: {e}");
                }
                continue;
            }
        };
        let mut jobs = vec![first];
        while jobs.len() < BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let batch: Vec<IncomingReport> = jobs.iter().map(|j| j.report.clone()).collect();
        let a = app.clone();
        let res = blocking(move || a.store_reports(&batch)).await;
        let res = match res {
            Ok(retired) => {
                for host in retired {
                    tracing::info!(
                        "node {host} reported the umc-node that carries its new token: its previous token no longer works"
                    );
                }
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        };
        for j in jobs {
            let _ = j.done.send(res.clone());
        }
    }
}

/// Every node's status, sorted by host name, at `now`.
fn fleet(app: &App, now: i64) -> Result<Vec<HostStatus>, StoreError> {
    let model = app.model()?;
    let reports = app.store.last_reports()?;
    let seen = app.seen_snapshot();
    let gens: BTreeSet<u64> = model
        .nodes
        .values()
        .map(|n| model.node_generation(n))
        .collect();
    let times = app.store.times(&gens)?;
    let mut out = Vec::with_capacity(model.nodes.len());
    for node in model.nodes.values() {
        let g = model.node_generation(node);
        let published = crate::model::version(g);
        let package = host_package(&node.name);
        let last = reports.get(&node.name).and_then(|r| {
            // Stored reports were validated on arrival; one that no longer parses (a future
            // format) counts as none.
            report::parse(&r.text, i64::MAX - report::MAX_CLOCK_SKEW)
                .ok()
                .map(|p| (r.received, p))
        });
        let published_at = times.get(&g).copied().unwrap_or(0);
        let v = report::judge(
            &package,
            &published,
            published_at,
            last.as_ref().map(|(t, r)| (*t, r)),
            seen.get(&node.name),
            now,
            app.config.thresholds,
        );
        out.push(HostStatus {
            host: node.name.clone(),
            state: v.state,
            package,
            published,
            published_at,
            installed: v.installed,
            last_seen: v.last_seen,
            last_report: last.map(|(t, _)| t),
            last_result: v.last_result,
            reason: v.reason,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::app::testing::{app, edit, node_add};

    /// Console and metrics share one snapshot until the model moves; a fresh judgement (the
    /// status API, key retirement) replaces it for everyone.
    #[test]
    fn one_snapshot_until_the_model_moves() {
        let (_dir, app) = app();
        edit(&app, vec![node_add("a.example")]);
        let first = app.fleet_status().expect("status");
        assert_eq!(first.len(), 1);
        let again = app.fleet_status().expect("status");
        assert!(Arc::ptr_eq(&first, &again), "reused within the TTL");

        edit(&app, vec![node_add("b.example")]);
        let after_edit = app.fleet_status().expect("status");
        assert!(!Arc::ptr_eq(&first, &after_edit), "an edit is seen at once");
        let hosts: Vec<&str> = after_edit.iter().map(|r| r.host.as_str()).collect();
        assert_eq!(hosts, ["a.example", "b.example"]);

        let fresh = app.judge_fleet().expect("judge");
        assert!(!Arc::ptr_eq(&after_edit, &fresh));
        let shared = app.fleet_status().expect("status");
        assert!(Arc::ptr_eq(&fresh, &shared), "a fresh judgement is shared");
    }

    #[test]
    fn an_unknown_host_has_no_status() {
        let (_dir, app) = app();
        edit(&app, vec![node_add("a.example")]);
        let detail = app.host_status("a.example").expect("status");
        assert_eq!(detail.status.host, "a.example");
        assert!(detail.reports.is_empty());
        let e = app.host_status("b.example").expect_err("unknown");
        assert_eq!(e.kind(), crate::app::ErrorKind::NotFound);
        assert_eq!(e.to_string(), "unknown node 'b.example'");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reports_are_stored_by_the_writer_and_signals_flushed_on_stop() {
        let (_dir, app) = app();
        edit(&app, vec![node_add("a.example")]);
        let writer = app.start_report_writer();
        let t = crate::app::now();
        let text = format!("Format: umc-report/1\nStarted: {t}\nFinished: {t}\nStep: update 0\n");
        app.ingest_report("a.example".into(), text.clone(), None)
            .await
            .expect("stored");
        assert_eq!(
            app.store.last_reports().expect("read")["a.example"].text,
            text
        );
        let e = app
            .ingest_report("a.example".into(), "hello".into(), None)
            .await
            .expect_err("malformed");
        assert_eq!(e.kind(), crate::app::ErrorKind::Invalid);

        app.saw("a.example", |s| s.inrelease = Some(t));
        writer.stop().await;
        let seen = app.store.load_seen().expect("read");
        assert_eq!(seen["a.example"].inrelease, Some(t));
        let e = app
            .ingest_report("a.example".into(), text, None)
            .await
            .expect_err("stopped");
        assert_eq!(e.kind(), crate::app::ErrorKind::Internal);
    }
}
