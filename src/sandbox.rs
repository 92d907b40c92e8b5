//! Renders templates that have not passed the budget yet: in a child process, with a deadline
//! and a memory limit.
//!
//! Tera 2 cannot be stopped from outside a render. Its loops run in its VM without calling our
//! code, and `~`, `{% filter %}` sections and `{% set %}` blocks build strings in memory that
//! the output cap never sees. An allocation that fails aborts the whole process. So the only
//! sound budget is a process boundary: umcd re-executes itself (`/proc/self/exe`
//! [`WORKER_ARG`], the same binary even after an upgrade replaced the file) and hands the child
//! a batch of renders on stdin. The child limits its own data segment (`RLIMIT_DATA`, what it
//! holds after reading the batch plus [`RENDER_MEMORY`]) and its CPU time, then answers one
//! line per render. The parent gives each render [`RENDER_CPU`] of the child's CPU time (read
//! from `/proc/<pid>/schedstat`, so that a loaded machine does not fail a fair template) and at
//! most [`RENDER_WALL`] of wall time, and kills the child when one is over. A child that runs
//! out of memory aborts alone; the edit fails with a clear error.
//!
//! umcd sends every render an edit makes (`Model::validate_renders`) and the console's
//! previews here. What serving renders afterwards (`repo`, the node page, `umc-admin render`)
//! is what passed here for that host's context, rendered again by the same code: the same
//! work and memory, in-process, at most `template::MAX_RENDERS` at once.
//!
//! Without a worker (library use, unit tests: nothing called [`use_worker`]) batches render in
//! this process, bounded only by the output cap.

#![warn(missing_docs)]

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::api::SshTarget;
use crate::template::{HostContext, Slots, Template, TemplateError};

/// CPU time one render may use.
pub const RENDER_CPU: Duration = Duration::from_secs(1);
/// Wall time one render may take, however busy the machine.
pub const RENDER_WALL: Duration = Duration::from_secs(10);
/// How often the parent looks at a rendering worker's CPU time.
const POLL: Duration = Duration::from_millis(20);
/// Memory one render may use beyond what the worker holds after reading its batch.
pub const RENDER_MEMORY: u64 = 64 << 20;
/// The first argument that makes umcd a render worker.
pub const WORKER_ARG: &str = "__render-worker";
/// Time for a worker to start and read its batch.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Workers running at once; further batches wait for one to end.
const MAX_WORKERS: usize = 4;
/// What we keep of a worker's stderr (an abort message, a panic).
const MAX_STDERR: u64 = 4096;

static WORKER: OnceLock<PathBuf> = OnceLock::new();
static WORKERS: Slots = Slots::new(MAX_WORKERS);

/// Makes every later [`Batch::run`] of this process use `exe` (started with [`WORKER_ARG`]).
/// umcd calls it once at start with `/proc/self/exe`.
pub fn use_worker(exe: impl Into<PathBuf>) {
    let _ = WORKER.set(exe.into());
}

/// Renders to run together: templates, hosts, and which template renders for which host.
#[derive(Debug, Serialize, Deserialize)]
pub struct Batch<'a> {
    global_vars: Cow<'a, BTreeMap<String, String>>,
    /// (path, source)
    templates: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    hosts: Vec<Host<'a>>,
    /// (host, template)
    renders: Vec<(usize, usize)>,
    /// Whether to send the rendered files back, or only whether they render.
    output: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Host<'a> {
    fqdn: Cow<'a, str>,
    vars: Cow<'a, BTreeMap<String, String>>,
    tasks: Cow<'a, BTreeSet<String>>,
    ssh: Option<Cow<'a, SshTarget>>,
}

/// One answer line of the worker.
#[derive(Serialize, Deserialize)]
enum Answer {
    Ready,
    Rendered(Option<String>),
    Failed(TemplateError),
}

impl<'a> Batch<'a> {
    /// An empty batch whose hosts all see `global_vars`.
    pub fn new(global_vars: &'a BTreeMap<String, String>) -> Batch<'a> {
        Batch {
            global_vars: Cow::Borrowed(global_vars),
            templates: Vec::new(),
            hosts: Vec::new(),
            renders: Vec::new(),
            output: false,
        }
    }

    /// Adds a template; the result names it in [`Batch::render`].
    pub fn template(&mut self, path: &'a str, source: &'a str) -> usize {
        self.templates
            .push((Cow::Borrowed(path), Cow::Borrowed(source)));
        self.templates.len() - 1
    }

    /// Adds a host with its own variables, task closure and SSH target.
    pub fn host(
        &mut self,
        fqdn: &'a str,
        vars: &'a BTreeMap<String, String>,
        tasks: Cow<'a, BTreeSet<String>>,
        ssh: Option<&'a SshTarget>,
    ) -> usize {
        self.hosts.push(Host {
            fqdn: Cow::Borrowed(fqdn),
            vars: Cow::Borrowed(vars),
            tasks,
            ssh: ssh.map(Cow::Borrowed),
        });
        self.hosts.len() - 1
    }

    /// Asks for `template` rendered for `host` (both as [`Batch::template`] and
    /// [`Batch::host`] numbered them).
    pub fn render(&mut self, host: usize, template: usize) {
        self.renders.push((host, template));
    }

    /// Whether it asks for no render at all (running it then costs no worker).
    pub fn is_empty(&self) -> bool {
        self.renders.is_empty()
    }

    /// Renders everything; the first error ends the batch.
    pub fn check(&self) -> Result<(), TemplateError> {
        self.run().map(|_| ())
    }

    /// Renders everything and returns the files, in the order of [`Batch::render`].
    pub fn rendered(mut self) -> Result<Vec<String>, TemplateError> {
        self.output = true;
        self.run()
    }

    fn run(&self) -> Result<Vec<String>, TemplateError> {
        if self.renders.is_empty() {
            return Ok(Vec::new());
        }
        let mut files = Vec::new();
        let mut keep = |r: Option<String>| {
            if let Some(f) = r {
                files.push(f);
            }
        };
        match WORKER.get() {
            Some(exe) => self.in_worker(exe, &mut keep)?,
            None => self.render_each(|r| {
                keep(r?);
                Ok::<(), TemplateError>(())
            })?,
        }
        Ok(files)
    }

    /// Renders in order, handing each result to `answer`; stops at the first error it returns.
    fn render_each<E>(
        &self,
        mut answer: impl FnMut(Result<Option<String>, TemplateError>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut parsed: Vec<Option<Template>> = self.templates.iter().map(|_| None).collect();
        for &(h, t) in &self.renders {
            let (Some(host), Some((path, source))) = (self.hosts.get(h), self.templates.get(t))
            else {
                return answer(Err(TemplateError::Worker(format!(
                    "render ({h}, {t}) names no host or template"
                ))));
            };
            let tpl = match &mut parsed[t] {
                Some(tpl) => tpl,
                slot => match Template::parse(path, source) {
                    Ok(tpl) => slot.insert(tpl),
                    Err(e) => return answer(Err(e)),
                },
            };
            let ctx = HostContext {
                fqdn: &host.fqdn,
                global_vars: &self.global_vars,
                node_vars: &host.vars,
                tasks: &host.tasks,
                ssh: host.ssh.as_deref(),
            };
            match tpl.render(&ctx) {
                Ok(file) => answer(Ok(self.output.then_some(file)))?,
                Err(e) => return answer(Err(e)),
            }
        }
        Ok(())
    }

    /// The template path and host of render `i`, for a budget error.
    fn over_budget(&self, i: usize, message: String) -> TemplateError {
        let (h, t) = self.renders.get(i).copied().unwrap_or_default();
        TemplateError::Other {
            path: self
                .templates
                .get(t)
                .map(|(p, _)| p.to_string())
                .unwrap_or_default(),
            host: self
                .hosts
                .get(h)
                .map(|h| h.fqdn.to_string())
                .unwrap_or_default(),
            message,
        }
    }

    fn in_worker(
        &self,
        exe: &PathBuf,
        keep: &mut impl FnMut(Option<String>),
    ) -> Result<(), TemplateError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            TemplateError::Worker(format!("{what} {}: {e}", exe.display()))
        };
        let input = serde_json::to_vec(self).map_err(|e| fail("encoding a batch for", &e))?;
        let _slot = WORKERS.take();
        let mut child = Command::new(exe)
            .arg(WORKER_ARG)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail("starting", &e))?;
        let mut worker = Running {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child,
        };
        // Threads write the batch and read the answers, so that this one can keep the time
        // and kill a worker that does not answer.
        let writer = worker.stdin.take().map(|mut stdin| {
            std::thread::spawn(move || {
                // A worker that dies early closes the pipe; its exit status tells why.
                let _ = stdin.write_all(&input);
            })
        });
        let (tx, answers) = mpsc::channel::<Result<Answer, String>>();
        let stdout = worker.stdout.take();
        let reader = std::thread::spawn(move || {
            let Some(stdout) = stdout else { return };
            for line in BufReader::new(stdout).lines() {
                let answer = line
                    .map_err(|e| e.to_string())
                    .and_then(|l| serde_json::from_str(&l).map_err(|e| e.to_string()));
                let stop = answer.is_err();
                if tx.send(answer).is_err() || stop {
                    return;
                }
            }
        });
        let result = self.collect(&mut worker, &answers, keep, &fail);
        worker.stop();
        if let Some(w) = writer {
            let _ = w.join();
        }
        let _ = reader.join();
        result
    }

    /// Reads the worker's answers, each within its deadline.
    fn collect(
        &self,
        worker: &mut Running,
        answers: &mpsc::Receiver<Result<Answer, String>>,
        keep: &mut impl FnMut(Option<String>),
        fail: &dyn Fn(&str, &dyn std::fmt::Display) -> TemplateError,
    ) -> Result<(), TemplateError> {
        let cpu_limit = RENDER_CPU.as_secs_f64();
        let too_long = |i: usize| {
            self.over_budget(
                i,
                format!("rendering took more than {cpu_limit} s, the limit for one file"),
            )
        };
        let memory = RENDER_MEMORY >> 20;
        let pid = worker.child.id();
        // Answer 0 is Ready, answer i + 1 is render i.
        for i in 0..=self.renders.len() {
            let since = Instant::now();
            // The CPU time at the first poll without an answer; before it the render used at
            // most one POLL. Most renders answer sooner and cost no look at /proc.
            let mut cpu_start = None;
            let answer = loop {
                match answers.recv_timeout(POLL) {
                    Ok(a) => break Some(a),
                    Err(mpsc::RecvTimeoutError::Disconnected) => break None,
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                }
                let waited = since.elapsed();
                if i == 0 {
                    if waited > START_DEADLINE {
                        return Err(fail("no answer from", &format!("{waited:?}")));
                    }
                    continue;
                }
                let now = cpu_time(pid);
                let used = match (*cpu_start.get_or_insert(now), now) {
                    (Some(a), Some(b)) => b.saturating_sub(a) + POLL,
                    // No CPU time to read: count wall time instead.
                    _ => waited,
                };
                if used > RENDER_CPU || waited > RENDER_WALL {
                    return Err(too_long(i - 1));
                }
            };
            let answer = match answer {
                Some(Ok(a)) => a,
                Some(Err(e)) => return Err(fail("reading the answer of", &e)),
                // The worker ended without answering: why?
                None => {
                    let (status, stderr) = worker.exit();
                    if i > 0 && ran_out(&status, &stderr) {
                        return Err(self.over_budget(
                            i - 1,
                            format!(
                                "rendering needed more than {memory} MiB of memory, the limit for one file"
                            ),
                        ));
                    }
                    if i > 0 && out_of_time(&status) {
                        return Err(too_long(i - 1));
                    }
                    let said = stderr.lines().next().unwrap_or("").to_string();
                    return Err(fail("unexpected end of", &format!("{status}: {said}")));
                }
            };
            match (i, answer) {
                (0, Answer::Ready) => {}
                (1.., Answer::Rendered(file)) => keep(file),
                (1.., Answer::Failed(e)) => return Err(e),
                (_, _) => return Err(fail("out-of-order answer from", &i)),
            }
        }
        Ok(())
    }
}

/// A worker process; stopped and reaped on every path.
struct Running {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: Option<std::process::ChildStdout>,
    stderr: Option<std::process::ChildStderr>,
}

impl Running {
    /// Gives a worker whose answers ended a moment to exit by itself, and reads what it said.
    fn exit(&mut self) -> (ExitStatus, String) {
        let started = std::time::Instant::now();
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if started.elapsed() < RENDER_CPU => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => {
                    self.stop();
                    break self.child.wait().unwrap_or_default();
                }
            }
        };
        let mut said = String::new();
        if let Some(e) = self.stderr.take() {
            let _ = e.take(MAX_STDERR).read_to_string(&mut said);
        }
        (status, said)
    }

    fn stop(&mut self) {
        // The worker is ours, by its pid; killing one that already ended is harmless.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// CPU time a process has used so far: the first field of `/proc/<pid>/schedstat`, in
/// nanoseconds (the worker has one thread).
fn cpu_time(pid: u32) -> Option<Duration> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let ns = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// A failed allocation aborts (SIGABRT, with Rust's message on stderr).
fn ran_out(status: &ExitStatus, stderr: &str) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(6) && stderr.contains("memory allocation")
}

/// RLIMIT_CPU ends the worker with SIGXCPU, then SIGKILL.
fn out_of_time(status: &ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    matches!(status.signal(), Some(24) | Some(9))
}

/// `umcd __render-worker`: reads one [`Batch`] on stdin, limits itself, then writes one
/// [`Answer`] line per render (after a first `Ready`). Returns the exit code.
pub fn worker_main() -> i32 {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut input) {
        eprintln!("umcd render worker: reading the batch: {e}");
        return 2;
    }
    let batch: Batch<'static> = match serde_json::from_slice(&input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("umcd render worker: decoding the batch: {e}");
            return 2;
        }
    };
    drop(input);
    if let Err(e) = limit_self(batch.renders.len()) {
        eprintln!("umcd render worker: setting limits: {e}");
        return 2;
    }
    let mut out = std::io::stdout().lock();
    let mut say = |a: &Answer| -> std::io::Result<()> {
        serde_json::to_writer(&mut out, a)?;
        out.write_all(b"\n")?;
        out.flush()
    };
    let done = say(&Answer::Ready).and_then(|()| {
        batch.render_each(|r| {
            say(&match r {
                Ok(file) => Answer::Rendered(file),
                Err(e) => Answer::Failed(e),
            })
        })
    });
    match done {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("umcd render worker: answering: {e}");
            2
        }
    }
}

/// Data segment: what the worker holds now plus [`RENDER_MEMORY`]. CPU: the budget of every
/// render and two seconds more, a backstop for a parent that died.
fn limit_self(renders: usize) -> std::io::Result<()> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let status = std::fs::read_to_string("/proc/self/status")?;
    let data_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmData:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no VmData in /proc/self/status"))?;
    let data = data_kib * 1024 + RENDER_MEMORY;
    setrlimit(
        Resource::Data,
        Rlimit {
            current: Some(data),
            maximum: Some(data),
        },
    )?;
    let cpu = (renders as u64)
        .saturating_mul(RENDER_CPU.as_secs().max(1))
        .saturating_add(2);
    setrlimit(
        Resource::Cpu,
        Rlimit {
            current: Some(cpu),
            maximum: Some(cpu.saturating_add(1)),
        },
    )?;
    Ok(())
}

/// Renders `source` for one host within the budget: the console's preview.
pub fn preview(path: &str, source: &str, host: &HostContext<'_>) -> Result<String, TemplateError> {
    let mut batch = Batch::new(host.global_vars);
    let t = batch.template(path, source);
    let h = batch.host(
        host.fqdn,
        host.node_vars,
        Cow::Borrowed(host.tasks),
        host.ssh,
    );
    batch.render(h, t);
    batch
        .rendered()?
        .pop()
        .ok_or_else(|| TemplateError::Worker("no file came back".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_process_without_a_worker() {
        let g: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        let n: BTreeMap<String, String> = [("b".to_string(), "2".to_string())].into();
        let tasks: BTreeSet<String> = ["web".to_string()].into();
        let mut batch = Batch::new(&g);
        let t = batch.template(
            "/x",
            "{{ host.name }} {{ vars.a }}{{ vars.b }} {{ tasks[0] }}",
        );
        let h = batch.host("web1.example.com", &n, Cow::Borrowed(&tasks), None);
        batch.render(h, t);
        batch.render(h, t);
        assert_eq!(
            batch.rendered().unwrap(),
            vec!["web1 12 web", "web1 12 web"]
        );

        let mut batch = Batch::new(&g);
        let t = batch.template("/x", "{{ vars.nope }}");
        let h = batch.host("web1.example.com", &n, Cow::Borrowed(&tasks), None);
        batch.render(h, t);
        let e = batch.check().unwrap_err();
        assert!(e.to_string().contains("field `nope` is not defined"), "{e}");
    }
}
