//! The apt side: `/hosts/<h>/…`, each host's own signed repository behind HTTP Basic auth.
//!
//! A warm request (the host's archive at the current generation is cached) touches no
//! database: auth and bytes both come from the cache.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Response, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;

use super::AppState;
use super::conditional::{self, IMMUTABLE, NO_CACHE, Resource};
use crate::cache::HostEntry;
use crate::repo::{self, Archive, Artifact, COMPONENT, SUITE};
use crate::store::token_hash;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/hosts/{host}", get(unauthorized_only))
        .route("/hosts/{host}/{*rest}", get(serve))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IndexKind {
    Plain,
    Gz,
    Xz,
}

/// Every path an apt client may request below `/hosts/<h>/`, parsed once.
#[derive(Debug, PartialEq, Eq)]
enum AptPath {
    InRelease,
    Release,
    ReleaseGpg,
    Index { arch: String, kind: IndexKind },
    ByHash { arch: String, sha256: String },
    Pool(String),
}

fn parse(rest: &str) -> Option<AptPath> {
    // apt requests `/./` literally for flat repositories; normalize it away.
    let parts: Vec<&str> = rest
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let dists = ["dists", SUITE];
    match parts.as_slice() {
        [d, s, "InRelease"] if [*d, *s] == dists => Some(AptPath::InRelease),
        [d, s, "Release"] if [*d, *s] == dists => Some(AptPath::Release),
        [d, s, "Release.gpg"] if [*d, *s] == dists => Some(AptPath::ReleaseGpg),
        [d, s, c, bin, file] if [*d, *s] == dists && *c == COMPONENT => {
            let arch = bin.strip_prefix("binary-")?.to_string();
            let kind = match *file {
                "Packages" => IndexKind::Plain,
                "Packages.gz" => IndexKind::Gz,
                "Packages.xz" => IndexKind::Xz,
                _ => return None,
            };
            Some(AptPath::Index { arch, kind })
        }
        [d, s, c, bin, "by-hash", "SHA256", hex] if [*d, *s] == dists && *c == COMPONENT => {
            let arch = bin.strip_prefix("binary-")?.to_string();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            Some(AptPath::ByHash {
                arch,
                sha256: hex.to_ascii_lowercase(),
            })
        }
        ["pool", ..] => Some(AptPath::Pool(parts.join("/"))),
        _ => None,
    }
}

fn unauthorized() -> Response<Body> {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(header::WWW_AUTHENTICATE, "Basic realm=\"umc\"")
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from("unauthorized\n"))
        .unwrap_or_default()
}

fn not_found() -> Response<Body> {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

async fn unauthorized_only() -> Response<Body> {
    unauthorized()
}

/// `(user, password)` from `Authorization: Basic …`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("unknown host")]
    Unknown,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    #[error("{0}")]
    Cached(String),
}

/// Reads host `host` in one transaction and renders (or fetches from cache) its archive.
fn load(state: &AppState, host: &str) -> Result<HostEntry, LoadError> {
    use sha2::{Digest, Sha256};
    let data = state.store.host_data(host)?.ok_or(LoadError::Unknown)?;
    let packages = repo::packages(&data)?;
    let keys: Vec<[u8; 32]> = packages.iter().map(repo::package_key).collect();
    let mut h = Sha256::new();
    h.update(b"umc-archive\0");
    h.update(repo::FORMAT.to_le_bytes());
    h.update(data.node.name.as_bytes());
    h.update([0]);
    h.update(data.date.to_le_bytes());
    for a in &state.config.architectures {
        h.update(a.as_bytes());
        h.update([0]);
    }
    for k in &keys {
        h.update(k);
    }
    let archive_key: [u8; 32] = h.finalize().into();
    let archive = state
        .cache
        .archives
        .try_get_with(archive_key, || -> Result<_, LoadError> {
            let archive =
                repo::build_archive(&data, &state.config.architectures, &state.keys, |p| {
                    state
                        .cache
                        .debs
                        .try_get_with(repo::package_key(p), || repo::build_deb(p).map(Arc::new))
                        .map_err(|e| repo::RepoError::Cached(e.to_string()))
                })?;
            remember(state, &archive);
            Ok(Arc::new(archive))
        })
        .map_err(|e| LoadError::Cached(e.to_string()))?;
    Ok(HostEntry {
        token_hash: token_hash(&data.node.token),
        archive,
    })
}

/// Keeps what an archive lists servable for a while after it is superseded.
fn remember(state: &AppState, archive: &Archive) {
    for a in [
        &archive.packages,
        &archive.packages_gz,
        &archive.packages_xz,
    ] {
        state.cache.recent.insert(
            (archive.host.clone(), format!("by-hash/{}", a.hex())),
            a.clone(),
        );
    }
    for (path, deb) in &archive.debs {
        state
            .cache
            .recent
            .insert((archive.host.clone(), path.clone()), deb.artifact.clone());
    }
}

async fn serve(
    State(state): State<Arc<AppState>>,
    Path((host, rest)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response<Body> {
    let host = host.to_ascii_lowercase();
    let Some((user, password)) = basic_credentials(&headers) else {
        return unauthorized();
    };
    if user.to_ascii_lowercase() != host {
        return unauthorized();
    }
    let generation = state.generation();
    let key = (host.clone(), generation);
    let entry = match state.cache.hosts.get(&key) {
        Some(e) => e,
        None => {
            let st = state.clone();
            let res = tokio::task::spawn_blocking(move || {
                st.cache.hosts.try_get_with(key, || load(&st, &host))
            })
            .await;
            match res {
                Ok(Ok(e)) => e,
                Ok(Err(e)) if matches!(*e, LoadError::Unknown) => {
                    // Same answer as a wrong password: nothing about which hosts exist.
                    let _ = token_hash(&password);
                    return unauthorized();
                }
                Ok(Err(e)) => {
                    tracing::error!("rendering repository: {e}");
                    return (StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
                        .into_response();
                }
                Err(e) => {
                    tracing::error!("render task failed: {e}");
                    return (StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
                        .into_response();
                }
            }
        }
    };
    if token_hash(&password) != entry.token_hash {
        return unauthorized();
    }
    let Some(path) = parse(&rest) else {
        return not_found();
    };
    let archive = &entry.archive;
    let index = |a: &Artifact| Resource {
        body: a.bytes.clone(),
        sha256: a.hex(),
        last_modified: Some(archive.date),
        ambiguous_date: archive.date_ambiguous,
        content_type: "text/plain; charset=utf-8",
        cache_control: NO_CACHE,
    };
    let immutable = |a: &Artifact, mtime: Option<i64>, ct: &'static str| Resource {
        body: a.bytes.clone(),
        sha256: a.hex(),
        last_modified: mtime,
        ambiguous_date: false,
        content_type: ct,
        cache_control: IMMUTABLE,
    };
    let arch_ok = |arch: &str| state.config.architectures.iter().any(|a| a == arch);
    let resource = match path {
        AptPath::InRelease => index(&archive.in_release),
        AptPath::Release => index(&archive.release),
        AptPath::ReleaseGpg => index(&archive.release_gpg),
        AptPath::Index { arch, kind } => {
            if !arch_ok(&arch) {
                return not_found();
            }
            let mut r = index(match kind {
                IndexKind::Plain => &archive.packages,
                IndexKind::Gz => &archive.packages_gz,
                IndexKind::Xz => &archive.packages_xz,
            });
            if kind != IndexKind::Plain {
                r.content_type = "application/octet-stream";
            }
            r
        }
        AptPath::ByHash { arch, sha256 } => {
            if !arch_ok(&arch) {
                return not_found();
            }
            let found = archive.by_hash(&sha256).cloned().or_else(|| {
                state
                    .cache
                    .recent
                    .get(&(archive.host.clone(), format!("by-hash/{sha256}")))
            });
            match found {
                Some(a) => immutable(&a, None, "application/octet-stream"),
                None => return not_found(),
            }
        }
        AptPath::Pool(p) => match archive.debs.get(&p) {
            Some(d) => immutable(
                &d.artifact,
                Some(d.mtime),
                "application/vnd.debian.binary-package",
            ),
            None => match state.cache.recent.get(&(archive.host.clone(), p)) {
                Some(a) => immutable(&a, None, "application/vnd.debian.binary-package"),
                None => return not_found(),
            },
        },
    };
    conditional::respond(&method, &headers, resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse("dists/umc/InRelease"), Some(AptPath::InRelease));
        assert_eq!(parse("./dists/umc/./Release"), Some(AptPath::Release));
        assert_eq!(parse("dists/other/InRelease"), None);
        assert_eq!(
            parse("dists/umc/main/binary-amd64/Packages.xz"),
            Some(AptPath::Index {
                arch: "amd64".into(),
                kind: IndexKind::Xz
            })
        );
        let hex = "a".repeat(64);
        assert_eq!(
            parse(&format!("dists/umc/main/binary-arm64/by-hash/SHA256/{hex}")),
            Some(AptPath::ByHash {
                arch: "arm64".into(),
                sha256: hex
            })
        );
        assert_eq!(parse("dists/umc/main/binary-arm64/by-hash/SHA256/zz"), None);
        assert_eq!(
            parse("pool/main/u/umc-x/umc-x_1.2_all.deb"),
            Some(AptPath::Pool("pool/main/u/umc-x/umc-x_1.2_all.deb".into()))
        );
    }
}
