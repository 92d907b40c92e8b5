//! HTTP/1.1 to umcd: hyper's client over TCP, or over TLS (rustls, checked as [`Trust`]
//! says), on a current-thread tokio runtime of the client's own. umc-admin stays blocking:
//! each call runs the runtime until its answer (or a body frame) is there.
//!
//! One connection per request: umc-admin makes a few requests per command, and a reused
//! connection that umcd closed while idle (after `header_timeout_secs`, e.g. during a fleet
//! run) would fail a POST that cannot safely be sent again. TLS session resumption keeps the
//! extra handshakes cheap.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
pub(super) use hyper::Method;
use hyper::body::Incoming;
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::ClientError;
use super::trust::Trust;

/// How long umcd may take to answer, and to send each part of a body.
const TIMEOUT: Duration = Duration::from_secs(300);
/// The largest answer read into memory (a backup is streamed instead, without a limit).
const MAX_ANSWER: usize = 256 << 20;

/// An answer whose body is still to read.
pub(super) type Answer = Response<Incoming>;

/// Where umcd is, parsed from `UMC_URL`.
struct Target {
    host: String,
    port: u16,
    /// `host:port` as the URL has it: the `Host` header and messages.
    authority: String,
    /// The URL's path, without a trailing `/` (umcd behind a proxy at a prefix).
    prefix: String,
    /// The TLS configuration for https (or why there is none).
    tls: Option<(Trust, Result<Arc<ClientConfig>, String>)>,
}

pub(super) struct Transport {
    /// The runtime and where umcd is, or why there is neither.
    inner: Result<(tokio::runtime::Runtime, Target), String>,
    /// The URL as given, for messages.
    url: String,
}

impl Transport {
    pub(super) fn new(url: &str, trust: impl FnOnce() -> Trust) -> Transport {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"));
        Transport {
            inner: rt.and_then(|rt| Ok((rt, target(url, trust)?))),
            url: url.to_string(),
        }
    }

    fn rt(&self) -> Result<&tokio::runtime::Runtime, String> {
        self.inner.as_ref().map(|(rt, _)| rt).map_err(Clone::clone)
    }

    pub(super) fn url(&self) -> &str {
        &self.url
    }

    fn unreachable(&self, detail: impl std::fmt::Display) -> ClientError {
        ClientError::Transport {
            url: self.url.clone(),
            detail: detail.to_string(),
        }
    }

    /// Sends one request and returns the answer with its body still to read.
    pub(super) fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Answer, ClientError> {
        let (rt, t) = self.inner.as_ref().map_err(|e| self.unreachable(e))?;
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", t.prefix))
            .header(hyper::header::HOST, &t.authority);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| ClientError::Encode(e.to_string()))?;
        let tls = match &t.tls {
            None => None,
            Some((trust, config)) => {
                let name = ServerName::try_from(t.host.clone())
                    .map_err(|e| self.unreachable(format!("{}: {e}", t.host)))?;
                let config = config.clone().map_err(ClientError::Tls)?;
                Some((trust, name, tokio_rustls::TlsConnector::from(config)))
            }
        };
        let hyper_error = |e: hyper::Error| match tls {
            // A TLS alert where an HTTP answer should be.
            None if e.is_parse() => self.unreachable(format!(
                "{e}; if umcd serves https there, set UMC_URL=https://{}",
                t.authority
            )),
            _ => self.unreachable(e),
        };
        // The timer is made inside `block_on`: it needs the runtime's context.
        let answer = rt.block_on(async {
            tokio::time::timeout(TIMEOUT, async {
                let tcp = TcpStream::connect((t.host.as_str(), t.port))
                    .await
                    .map_err(|e| self.unreachable(e))?;
                let _ = tcp.set_nodelay(true);
                let Some((trust, name, connector)) = &tls else {
                    return exchange(tcp, req).await.map_err(hyper_error);
                };
                let stream =
                    connector.connect(name.clone(), tcp).await.map_err(
                        |e| match certificate_error(&e) {
                            Some(ce) => ClientError::Certificate(trust.refused(&t.authority, ce)),
                            None => self.unreachable(format!("TLS with {}: {e}", t.authority)),
                        },
                    )?;
                exchange(stream, req).await.map_err(hyper_error)
            })
            .await
        });
        answer.map_err(|_| self.unreachable(format!("no answer within {TIMEOUT:?}")))?
    }

    /// The whole body (at most [`MAX_ANSWER`]).
    pub(super) fn read(&self, body: Incoming) -> Result<Bytes, ClientError> {
        let rt = self.rt().map_err(|e| self.unreachable(e))?;
        let all = rt.block_on(async {
            tokio::time::timeout(TIMEOUT, Limited::new(body, MAX_ANSWER).collect()).await
        });
        match all {
            Ok(Ok(b)) => Ok(b.to_bytes()),
            Ok(Err(e)) => Err(self.unreachable(format!("reading the answer: {e}"))),
            Err(_) => Err(self.unreachable(format!("no answer within {TIMEOUT:?}"))),
        }
    }

    /// Copies the body into `out` as it arrives; returns the byte count.
    pub(super) fn copy(
        &self,
        mut body: Incoming,
        out: &mut impl std::io::Write,
    ) -> Result<u64, String> {
        let rt = self.rt()?;
        let mut n = 0u64;
        loop {
            let frame = rt.block_on(async { tokio::time::timeout(TIMEOUT, body.frame()).await });
            let frame = match frame {
                Err(_) => return Err(format!("nothing arrived for {TIMEOUT:?}")),
                Ok(None) => return Ok(n),
                Ok(Some(f)) => f.map_err(|e| e.to_string())?,
            };
            if let Ok(data) = frame.into_data() {
                out.write_all(&data).map_err(|e| e.to_string())?;
                n += data.len() as u64;
            }
        }
    }
}

/// One request on a new connection. The connection's task ends with it.
async fn exchange<S>(io: S, req: Request<Full<Bytes>>) -> Result<Response<Incoming>, hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(conn);
    sender.send_request(req).await
}

/// The certificate problem behind a failed handshake, if that is what failed.
fn certificate_error(e: &std::io::Error) -> Option<&rustls::CertificateError> {
    match e.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(ce) => Some(ce),
        _ => None,
    }
}

fn target(url: &str, trust: impl FnOnce() -> Trust) -> Result<Target, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("not a URL ({e}); UMC_URL is http://host:port or https://…"))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err("UMC_URL must start with http:// or https://".into()),
    };
    let authority = uri.authority().ok_or("UMC_URL names no host")?;
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let tls = https.then(|| {
        let trust = trust();
        let config = trust.config();
        (trust, config)
    });
    Ok(Target {
        host: host.to_string(),
        port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
        authority: authority
            .as_str()
            .rsplit('@')
            .next()
            .unwrap_or(host)
            .to_string(),
        prefix: uri.path().trim_end_matches('/').to_string(),
        tls,
    })
}
