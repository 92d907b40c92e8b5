//! `GET /api/v1/backup`: a consistent snapshot of the running server (`App::backup`),
//! streamed as the container `crate::backup` describes. It holds the signing keys and the
//! admin token, so it is never cached and always an attachment.

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::Frame;
use tokio::sync::mpsc;

use super::{ApiError, AppState};
use crate::app::{background, blocking};

/// How much of the container is buffered before it is handed to the connection.
const CHUNK: usize = 64 * 1024;

pub(super) async fn download(State(s): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let backup = blocking(move || s.app.backup()).await?;
    let generation = backup.generation();
    let (tx, rx) = mpsc::channel(4);
    background(move || {
        let w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        if let Err(e) = backup.write(w) {
            tracing::error!("backup: {e}");
            // Ends the body with an error: the client sees a broken transfer, not a short file.
            let _ = tx.blocking_send(Err(std::io::Error::other("backup failed")));
        }
    });
    let name = format!("umc-backup-{generation}.tar");
    let mut r = (StatusCode::OK, Body::new(ChannelBody(rx))).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&generation.to_string()) {
        h.insert("x-umc-generation", v);
    }
    Ok(r)
}

/// A blocking writer feeding the response body.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

struct ChannelBody(mpsc::Receiver<std::io::Result<Bytes>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}
