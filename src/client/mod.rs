//! Admin API client used by `umc-admin` (blocking; one request at a time).
//!
//! `routes` has one typed method per `/api/v1` route (request type in, response type out), so
//! a caller never builds a URL or picks an HTTP method; this file is the transport under
//! them. `tests.rs` calls every method against a router built from the server's
//! `http::API_ROUTES`, so a route without a method fails there.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::ErrorBody;

mod routes;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error; `message` is its explanation.
    #[error("{message}")]
    Api { status: u16, message: String },
    #[error("cannot reach umcd at {url}: {detail} (is umcd running? set UMC_URL)")]
    Transport { url: String, detail: String },
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
    base: String,
    /// The `Authorization` header value.
    auth: String,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(base: &str, token: &str) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into();
        Client {
            base: base.trim_end_matches('/').to_string(),
            auth: format!("Bearer {token}"),
            agent,
        }
    }

    /// `UMC_URL` (default http://127.0.0.1:8080); the token from `UMC_TOKEN`, else the file
    /// named by `UMC_TOKEN_FILE`, else `./umc-data/admin.token`.
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
        Ok(Client::new(&base, &token))
    }

    /// The same server, authenticated as `user` with its password (HTTP Basic; umcd takes it
    /// only to create a token).
    pub fn with_password(&self, user: &str, password: &str) -> Client {
        use base64::Engine;
        let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Client {
            base: self.base.clone(),
            auth: format!("Basic {creds}"),
            agent: self.agent.clone(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn transport(&self, e: ureq::Error) -> ClientError {
        ClientError::Transport {
            url: self.base.clone(),
            detail: e.to_string(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn finish<T: DeserializeOwned>(
        &self,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, ClientError> {
        let mut resp = resp.map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return resp
                .body_mut()
                .read_json::<T>()
                .map_err(|e| self.transport(e));
        }
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or_else(|_| format!("HTTP {status}: {}", text.trim()));
        Err(ClientError::Api { status, message })
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let r = self
            .agent
            .get(self.url(path))
            .header("Authorization", &self.auth)
            .call();
        self.finish(r)
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

    /// `GET <path>`, its body copied into `out`; returns the byte count.
    fn download(&self, path: &str, out: &mut impl std::io::Write) -> Result<u64, ClientError> {
        let mut resp = self
            .agent
            .get(self.url(path))
            .header("Authorization", &self.auth)
            .call()
            .map_err(|e| self.transport(e))?;
        if !resp.status().is_success() {
            return self.finish::<serde_json::Value>(Ok(resp)).map(|_| 0);
        }
        let mut body = resp.body_mut().with_config().limit(u64::MAX).reader();
        std::io::copy(&mut body, out).map_err(|e| ClientError::Transport {
            url: self.base.clone(),
            detail: format!("reading {path}: {e}"),
        })
    }

    fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let r = self
            .agent
            .post(self.url(path))
            .header("Authorization", &self.auth)
            .send_json(body);
        self.finish(r)
    }

    /// POSTs raw bytes (`application/octet-stream`).
    fn post_bytes<T: DeserializeOwned>(&self, path: &str, body: &[u8]) -> Result<T, ClientError> {
        let r = self
            .agent
            .post(self.url(path))
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/octet-stream")
            .send(body);
        self.finish(r)
    }

    fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let r = self
            .agent
            .delete(self.url(path))
            .header("Authorization", &self.auth)
            .call();
        self.finish(r)
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
