//! The listener: accepts TCP connections and serves each with hyper's HTTP/1.1 under limits
//! that no client can wait out (routing is `http::router`'s business, not this module's):
//! - a deadline for every request head (`header_timeout`), counted from the moment the
//!   connection opens or the previous answer is sent, so silent and idle keep-alive
//!   connections are closed too;
//! - a deadline for every request body (`body_timeout`, extended only while the body keeps
//!   arriving at `BODY_MIN_RATE`), so a body dripped one byte at a time is cut;
//! - a deadline for every stalled answer: a write that makes no progress for
//!   `header_timeout` ends the connection, so a client that sends requests and never reads
//!   the answers cannot keep its slot;
//! - at most `max_per_source` connections per source address (an IPv6 /64 counts as one
//!   source) and `MAX_CONNECTIONS` in all.
//!
//! Only HTTP/1.1 is spoken. Nothing of umc's needs cleartext HTTP/2 (h2c): apt and umc-admin
//! speak HTTP/1.1 and browsers use HTTP/2 only over TLS, while h2c's version sniff and
//! preface ran outside every deadline. When umcd terminates TLS itself, h2 can come back
//! through ALPN: `serve` is where the negotiated protocol would choose hyper's http2
//! builder, with its keep-alive and idle timers.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};

use super::AppState;
use crate::config::Config;

/// Most connections served at once; more wait in the kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 8192;
/// Open files umcd wants besides its connections (database, log, listener, runtime).
const SPARE_FILES: u64 = 256;
/// A request body gets `body_timeout` plus one second per this many bytes received: a
/// large upload that keeps arriving at this rate is never cut, a dripped one is.
pub const BODY_MIN_RATE: u64 = 16 << 10;
/// How long shutdown waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// A repeated warning (failed accepts, refused connections) is logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Pause after a failed accept (EMFILE and friends), instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// hyper's read buffer limit. A request head larger than this is refused with 431, but hyper
/// checks the limit only between reads and one read may add up to the limit again, so a head
/// of up to twice this can still parse: hyper's default (~408 KiB) let a 500 KB header through
/// now and then. No client of umcd sends more than a few KiB of head.
const MAX_BUFFER: usize = 64 << 10;

/// The connection limits, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_per_source: usize,
}

impl Limits {
    pub fn from_config(c: &Config) -> Limits {
        Limits {
            header_timeout: c.header_timeout,
            body_timeout: c.body_timeout,
            max_per_source: c.max_connections_per_source.max(1),
        }
    }
}

/// How connections reach the router: over TLS or not, and whose `X-Forwarded-Proto` counts.
#[derive(Clone)]
pub struct Transport {
    /// The handshake, when umcd serves HTTPS itself.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Peers whose `X-Forwarded-Proto` is believed (`trusted_proxies`).
    pub trusted_proxies: Arc<[crate::config::Network]>,
}

impl Transport {
    pub fn plain() -> Transport {
        Transport {
            tls: None,
            trusted_proxies: Arc::from(Vec::new()),
        }
    }
}

/// Serves umcd until `shutdown` resolves, then finishes in-flight requests (bounded) and
/// flushes what the report writer holds. Routing is `http::router`'s. With `tls`, every
/// connection is HTTPS and the certificate is reloaded as [`crate::tls::Tls::watch`] says.
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<Arc<crate::tls::Tls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let writer = state.app.start_report_writer();
    let limits = Limits::from_config(&state.app.config);
    let mut transport = Transport::plain();
    transport.trusted_proxies = Arc::from(state.app.config.trusted_proxies.clone());
    if let Some(tls) = tls {
        let config = tls.server_config().map_err(std::io::Error::other)?;
        transport.tls = Some(tokio_rustls::TlsAcceptor::from(config));
        tokio::spawn(tls.watch());
    }
    let router = super::router(state.clone(), transport.tls.is_some());
    serve(listener, router, limits, transport, shutdown).await;
    writer.stop().await;
    Ok(())
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// for at most `SHUTDOWN_GRACE`. HTTP/1.1 keep-alive and pipelining (answered in order) come
/// from hyper.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    transport: Transport,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let mut http1 = hyper::server::conn::http1::Builder::new();
    // hyper's header timer needs a timer, and it runs whenever the connection waits for a
    // request head: from the accept, and again after each answer (the idle deadline).
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .max_buf_size(MAX_BUFFER)
        .pipeline_flush(true);
    // Shared by every connection's task, not copied per accept.
    let http1 = Arc::new(http1);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let sources = Arc::new(Sources::new(limits.max_per_source));
    let mut accept_errors = Quiet::default();
    let mut refusals = Quiet::default();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            conn = listener.accept() => match conn {
                Ok(c) => c,
                Err(e) => {
                    if let Some(more) = accept_errors.tick() {
                        tracing::warn!("accept: {e}{}", more_since(more));
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(slot) = sources.enter(peer.ip()) else {
            // Over the cap: closed at once, before anything is read.
            drop(stream);
            if let Some(more) = refusals.tick() {
                tracing::warn!(
                    "refused a connection from {}: {} connections from that source are open \
                     (max_connections_per_source){}",
                    source(peer.ip()),
                    limits.max_per_source,
                    more_since(more)
                );
            }
            continue;
        };
        // Answers go out as they are written. With Nagle's algorithm, a TLS 1.3 answer written
        // after the session tickets waited for the client's delayed ACK: 40 ms per connection.
        let _ = stream.set_nodelay(true);
        let body_timeout = limits.body_timeout;
        let over_tls = transport.tls.is_some();
        let trusted = transport.trusted_proxies.clone();
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            move |req: axum::http::Request<Incoming>| {
                request(req, peer, body_timeout, over_tls, &trusted)
            },
        ));
        let stream = StallDeadline::new(stream, limits.header_timeout);
        let http1 = http1.clone();
        let watcher = graceful.watcher();
        let tls = transport.tls.clone();
        let handshake_deadline = limits.header_timeout;
        tokio::spawn(async move {
            let done = match tls {
                None => {
                    let conn = http1.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
                // The handshake counts against the header deadline: a client that opens a
                // connection and never finishes its hello is closed like a silent one.
                Some(tls) => {
                    match tokio::time::timeout(handshake_deadline, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let conn = http1.serve_connection(TokioIo::new(stream), service);
                            watcher.watch(conn).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!("tls handshake with {peer}: {e}");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!("tls handshake with {peer}: timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = done {
                tracing::debug!("connection from {peer}: {e}");
            }
            drop(slot);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: requests still running after {SHUTDOWN_GRACE:?}; closing");
    }
}

/// A request as the router gets it: the peer address among its extensions (the login
/// limiter reads it), its body under a deadline, and `X-Forwarded-Proto` meaning what umcd
/// knows: `https` when the request came over umcd's own TLS, the proxy's word when the peer
/// is a trusted proxy, and absent otherwise (anyone else could claim anything).
fn request(
    req: axum::http::Request<Incoming>,
    peer: SocketAddr,
    body_timeout: Duration,
    over_tls: bool,
    trusted_proxies: &[crate::config::Network],
) -> axum::http::Request<axum::body::Body> {
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(axum::extract::ConnectInfo(peer));
    const PROTO: &str = "x-forwarded-proto";
    if over_tls {
        parts
            .headers
            .insert(PROTO, axum::http::HeaderValue::from_static("https"));
    } else if !trusted_proxies.iter().any(|n| n.contains(peer.ip())) {
        parts.headers.remove(PROTO);
    }
    let body = axum::body::Body::new(DeadlineBody::new(body, body_timeout));
    axum::http::Request::from_parts(parts, body)
}

/// Raises this process's soft limit on open files to its hard limit and returns the limit
/// now in force (`None`: unlimited). Every connection costs a descriptor, and the soft limit
/// systemd gives by default (1,024) is far below `MAX_CONNECTIONS`.
pub fn raise_open_file_limit() -> std::io::Result<Option<u64>> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    // An unlimited hard limit cannot be the soft one (the kernel caps it at nr_open).
    if limit.maximum.is_some() && limit.current != limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit)?;
    }
    Ok(limit.current)
}

/// The open-file limit umcd needs to serve `MAX_CONNECTIONS` at once.
pub fn open_files_wanted() -> u64 {
    MAX_CONNECTIONS as u64 + SPARE_FILES
}

/// The source a connection is counted against: its address, or for IPv6 its /64 (clients
/// usually hold a whole /64). IPv4-mapped IPv6 addresses count as the IPv4 address.
pub fn source(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & !0u128 << 64)),
        v4 => v4,
    }
}

/// Open connections per source.
struct Sources {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of `key`; dropping it frees the place.
struct SourceSlot {
    sources: Arc<Sources>,
    key: IpAddr,
}

impl Sources {
    fn new(max: usize) -> Sources {
        Sources {
            max,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more connection from `ip`, or `None` when its source has `max` open.
    fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let key = source(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            sources: self.clone(),
            key,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = self
            .sources
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Entries live only while their source has connections: the map is never larger
        // than `MAX_CONNECTIONS`.
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Rate limit for a repeated warning: the first is logged, then at most one per
/// `LOG_EVERY`, with the count of those left out.
#[derive(Default)]
struct Quiet {
    last: Option<std::time::Instant>,
    left_out: u64,
}

impl Quiet {
    /// `Some(left out since the last message)` when this one is to be logged.
    fn tick(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.left_out += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.left_out))
    }
}

fn more_since(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} more since the last message)")
    }
}

#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("reading the request body: {0}")]
    Read(hyper::Error),
    #[error("the request body did not arrive in time")]
    Timeout,
}

/// A connection whose writes fail once one has made no progress for `stall`: hyper waits on
/// a full socket buffer without a timer, so a client that pipelines requests and never reads
/// the answers would otherwise hold its connection for good. Reads pass through untouched
/// (their deadlines are hyper's header timer and [`DeadlineBody`]).
struct StallDeadline<S> {
    inner: S,
    stall: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S> StallDeadline<S> {
    fn new(inner: S, stall: Duration) -> StallDeadline<S> {
        StallDeadline {
            inner,
            stall,
            timer: None,
        }
    }

    /// What a write (or flush) that returned `poll` means: progress clears the timer, a wait
    /// arms it (once per stall), and a wait past the deadline is an error.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match poll {
            Poll::Ready(r) => {
                self.timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let stall = self.stall;
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client read nothing of the answer in time",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

/// A request body that fails once its deadline passes: `timeout` after the request head,
/// plus a second per `BODY_MIN_RATE` bytes received. The timer is made only when a read has
/// to wait, so bodiless requests cost nothing.
struct DeadlineBody {
    inner: Incoming,
    start: Instant,
    timeout: Duration,
    received: u64,
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> DeadlineBody {
        DeadlineBody {
            inner,
            start: Instant::now(),
            timeout,
            received: 0,
            timer: None,
        }
    }

    fn deadline(&self) -> Instant {
        let earned = Duration::from_secs_f64(self.received as f64 / BODY_MIN_RATE as f64);
        // A huge configured timeout must not overflow the clock: it then means "a year".
        self.start
            .checked_add(self.timeout.saturating_add(earned))
            .unwrap_or_else(|| self.start + Duration::from_secs(365 * 24 * 3600))
    }
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let deadline = this.deadline();
                    if let Some(timer) = this.timer.as_mut() {
                        timer.as_mut().reset(deadline);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Read(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = this.deadline();
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::Timeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_64_is_one_source() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source(a), source(b));
        assert_eq!(source(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_ne!(source(a), source(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(source(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_ne!(source(v4), source("192.0.2.8".parse().unwrap()));
    }

    #[test]
    fn sources_are_capped_and_freed() {
        let s = Arc::new(Sources::new(2));
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::2".parse().unwrap();
        let other: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let one = s.enter(a).expect("first");
        let two = s.enter(same_64).expect("second");
        assert!(s.enter(a).is_none(), "a third from the same /64 is refused");
        let _three = s.enter(other).expect("another /64 has its own places");
        drop(one);
        let _again = s.enter(same_64).expect("a freed place is reused");
        drop(two);
        assert_eq!(s.open.lock().unwrap().len(), 2);
    }

    #[test]
    fn repeated_warnings_are_rate_limited() {
        let mut q = Quiet::default();
        assert_eq!(q.tick(), Some(0));
        for _ in 0..100 {
            assert_eq!(q.tick(), None);
        }
        q.last = Some(std::time::Instant::now() - LOG_EVERY);
        assert_eq!(q.tick(), Some(100));
    }
}
