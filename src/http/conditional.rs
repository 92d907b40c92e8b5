//! Conditional and partial responses for in-memory bodies: ETag/If-None-Match,
//! Last-Modified/If-Modified-Since, Range/If-Range (RFC 9110), as apt's http method uses them.

use std::time::SystemTime;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use bytes::Bytes;

/// Pool and by-hash files never change, but they answer authenticated requests: `private`
/// keeps shared caches from handing one host's files to anyone.
pub const IMMUTABLE: &str = "private, max-age=31536000, immutable";
pub const NO_CACHE: &str = "no-cache";

/// One servable representation.
pub struct Resource {
    pub body: Bytes,
    /// Hex SHA-256 of `body`.
    pub sha256: String,
    pub last_modified: Option<i64>,
    /// `If-Modified-Since` equal to `last_modified` does not prove the client has this body
    /// (several model generations fell in the same second): never answer 304 on a date alone.
    pub ambiguous_date: bool,
    /// The body behind `last_modified` never changes (pool files), so a date in `If-Range` is
    /// a strong validator. For indexes it is not (a re-signed InRelease has the same date but
    /// other bytes): there only the ETag may resume a transfer.
    pub immutable: bool,
    pub content_type: &'static str,
    pub cache_control: &'static str,
}

fn parse_date(v: &HeaderValue) -> Option<i64> {
    let t = httpdate::parse_http_date(v.to_str().ok()?).ok()?;
    Some(t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs() as i64)
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag
    })
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against a body of `len`; `None` = ignore the header
/// (malformed or several ranges: answer the whole body), `Some(Err)` = unsatisfiable.
fn parse_range(v: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        return Some(Ok((len.saturating_sub(n), len - 1)));
    }
    let start: u64 = a.parse().ok()?;
    let end: u64 = if b.is_empty() {
        u64::MAX
    } else {
        b.parse().ok()?
    };
    if end < start {
        return None;
    }
    if start >= len {
        return Some(Err(()));
    }
    Some(Ok((start, end.min(len - 1))))
}

pub fn respond(method: &Method, req: &HeaderMap, r: Resource) -> Response<Body> {
    let etag = format!("\"{}\"", &r.sha256[..r.sha256.len().min(40)]);
    let len = r.body.len() as u64;
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, r.cache_control)
        .header(header::ACCEPT_RANGES, "bytes");
    if let Some(lm) = r.last_modified {
        builder = builder.header(header::LAST_MODIFIED, crate::time::http_date(lm));
    }

    let not_modified = if let Some(inm) = req.get(header::IF_NONE_MATCH) {
        inm.to_str().is_ok_and(|l| etag_matches(l, &etag))
    } else if let (Some(ims), Some(lm)) = (
        req.get(header::IF_MODIFIED_SINCE).and_then(parse_date),
        r.last_modified,
    ) {
        !r.ambiguous_date && lm <= ims
    } else {
        false
    };
    if not_modified && (method == Method::GET || method == Method::HEAD) {
        return finish(builder.status(StatusCode::NOT_MODIFIED), Body::empty());
    }

    let range = req.get(header::RANGE).and_then(|v| v.to_str().ok());
    let if_range_ok = match req.get(header::IF_RANGE) {
        None => true,
        Some(v) => match parse_date(v) {
            Some(d) => r.immutable && r.last_modified == Some(d),
            None => v.to_str().is_ok_and(|s| s.trim() == etag),
        },
    };
    builder = builder.header(header::CONTENT_TYPE, r.content_type);
    if let (Some(range), true, &Method::GET) = (range, if_range_ok, method) {
        match parse_range(range, len) {
            Some(Ok((start, end))) => {
                let part = r.body.slice(start as usize..=end as usize);
                return finish(
                    builder
                        .status(StatusCode::PARTIAL_CONTENT)
                        .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))
                        .header(header::CONTENT_LENGTH, part.len()),
                    Body::from(part),
                );
            }
            Some(Err(())) => {
                return finish(
                    builder
                        .status(StatusCode::RANGE_NOT_SATISFIABLE)
                        .header(header::CONTENT_RANGE, format!("bytes */{len}")),
                    Body::empty(),
                );
            }
            None => {}
        }
    }
    finish(
        builder
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, len),
        Body::from(r.body),
    )
}

fn finish(b: axum::http::response::Builder, body: Body) -> Response<Body> {
    b.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-", 10), Some(Ok((0, 9))));
        assert_eq!(parse_range("bytes=5-", 10), Some(Ok((5, 9))));
        assert_eq!(parse_range("bytes=2-4", 10), Some(Ok((2, 4))));
        assert_eq!(parse_range("bytes=2-400", 10), Some(Ok((2, 9))));
        assert_eq!(parse_range("bytes=-3", 10), Some(Ok((7, 9))));
        assert_eq!(parse_range("bytes=10-", 10), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,3-4", 10), None);
        assert_eq!(parse_range("items=0-1", 10), None);
        assert_eq!(parse_range("bytes=4-2", 10), None);
    }

    #[test]
    fn etags() {
        assert!(etag_matches("\"a\", \"b\"", "\"b\""));
        assert!(etag_matches("W/\"b\"", "\"b\""));
        assert!(etag_matches("*", "\"b\""));
        assert!(!etag_matches("\"c\"", "\"b\""));
    }
}
