//! Admin API client used by `umc-admin` (blocking; one request at a time), over http or
//! https (`transport`; whom https trusts: `trust`).
//!
//! `routes` has one typed method per `/api/v1` route (request type in, response type out), so
//! a caller never builds a URL or picks an HTTP method; this file is the transport under
//! them. `tests.rs` calls every method against a router built from the server's
//! `http::API_ROUTES`, so a route without a method fails there.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::ErrorBody;

mod routes;
mod transport;
mod trust;

use transport::{Answer, Method};
pub use trust::Trust;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error; `message` is its explanation.
    #[error("{message}")]
    Api { status: u16, message: String },
    #[error("cannot reach umcd at {url}: {detail} (is umcd running? set UMC_URL)")]
    Transport { url: String, detail: String },
    /// The server's certificate was refused: the message names the host and what was expected.
    #[error("{0}")]
    Certificate(String),
    /// The TLS settings cannot be used (`UMC_CA` unreadable, `UMC_TLS_PIN` malformed).
    #[error("{0}")]
    Tls(String),
    #[error(
        "no API token: set UMC_TOKEN or UMC_TOKEN_FILE, or run where ./umc-data/admin.token exists ({0})"
    )]
    NoToken(String),
    /// A request's query could not be written (a wire type serde_urlencoded cannot carry).
    #[error("cannot encode the request: {0}")]
    Encode(String),
}

impl ClientError {
    /// HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub struct Client {
    /// The `Authorization` header value.
    auth: String,
    transport: Arc<transport::Transport>,
}

impl Client {
    /// A client of umcd at `base` (`http://…` or `https://…`); https is checked as `trust`
    /// says, which is asked only for an https URL.
    pub fn new(base: &str, token: &str, trust: impl FnOnce() -> Trust) -> Client {
        Client {
            auth: format!("Bearer {token}"),
            transport: Arc::new(transport::Transport::new(base, trust)),
        }
    }

    /// `UMC_URL` (default http://127.0.0.1:8080); the token from `UMC_TOKEN`, else the file
    /// named by `UMC_TOKEN_FILE`, else `./umc-data/admin.token`; https trusts as
    /// [`Trust::from_env`] says.
    pub fn from_env() -> Result<Client, ClientError> {
        let base = std::env::var("UMC_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
        let token = match std::env::var("UMC_TOKEN") {
            Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => {
                let path = std::env::var_os("UMC_TOKEN_FILE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("umc-data/admin.token"));
                std::fs::read_to_string(&path)
                    .map_err(|e| ClientError::NoToken(format!("{}: {e}", path.display())))?
                    .trim()
                    .to_string()
            }
        };
        Ok(Client::new(&base, &token, Trust::from_env))
    }

    /// The same server, authenticated as `user` with its password (HTTP Basic; umcd takes it
    /// only to create a token).
    pub fn with_password(&self, user: &str, password: &str) -> Client {
        use base64::Engine;
        let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Client {
            auth: format!("Basic {creds}"),
            transport: self.transport.clone(),
        }
    }

    /// `<method> /api/v1<path>` with our credentials; the answer's body is still to read.
    fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Answer, ClientError> {
        let mut headers = vec![("authorization", self.auth.as_str())];
        if let Some(t) = content_type {
            headers.push(("content-type", t));
        }
        self.transport
            .send(method, &format!("/api/v1{path}"), &headers, body)
    }

    /// A 2xx answer's JSON, or the error umcd explained.
    fn finish<T: DeserializeOwned>(&self, resp: Answer) -> Result<T, ClientError> {
        let status = resp.status().as_u16();
        let body = self.transport.read(resp.into_body());
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body?).map_err(|e| ClientError::Transport {
                url: self.transport.url().to_string(),
                detail: format!("reading the answer: {e}"),
            });
        }
        let text = body
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or_else(|_| format!("HTTP {status}: {}", text.trim()));
        Err(ClientError::Api { status, message })
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.finish(self.send(Method::GET, path, None, Bytes::new())?)
    }

    /// `GET <path>?<query>`; no `?` when every field of `query` is absent.
    fn get_query<T: DeserializeOwned, Q: Serialize>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<T, ClientError> {
        let q =
            serde_urlencoded::to_string(query).map_err(|e| ClientError::Encode(e.to_string()))?;
        if q.is_empty() {
            self.get(path)
        } else {
            self.get(&format!("{path}?{q}"))
        }
    }

    /// `GET <path>`, its body copied into `out` as it arrives; returns the byte count.
    fn download(&self, path: &str, out: &mut impl std::io::Write) -> Result<u64, ClientError> {
        let resp = self.send(Method::GET, path, None, Bytes::new())?;
        if !resp.status().is_success() {
            return self.finish::<serde_json::Value>(resp).map(|_| 0);
        }
        self.transport
            .copy(resp.into_body(), out)
            .map_err(|e| ClientError::Transport {
                url: self.transport.url().to_string(),
                detail: format!("reading {path}: {e}"),
            })
    }

    fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let json = serde_json::to_vec(body).map_err(|e| ClientError::Encode(e.to_string()))?;
        let resp = self.send(
            Method::POST,
            path,
            Some("application/json"),
            Bytes::from(json),
        )?;
        self.finish(resp)
    }

    /// POSTs raw bytes (`application/octet-stream`).
    fn post_bytes<T: DeserializeOwned>(&self, path: &str, body: &[u8]) -> Result<T, ClientError> {
        let resp = self.send(
            Method::POST,
            path,
            Some("application/octet-stream"),
            Bytes::copy_from_slice(body),
        )?;
        self.finish(resp)
    }

    fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.finish(self.send(Method::DELETE, path, None, Bytes::new())?)
    }
}

/// Percent-encodes a path segment.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
