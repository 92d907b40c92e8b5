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
use axum::routing::{get, post};
use base64::Engine;

use super::AppState;
use super::conditional::{self, IMMUTABLE, NO_CACHE, Resource};
use crate::app::metrics::CacheId;
use crate::app::now;
use crate::app::{AppError, blocking};
use crate::cache::{HostEntry, TokenEntry};
use crate::repo::{self, Archive, Artifact, COMPONENT, SUITE};
use crate::store::token_hash;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/hosts/{host}", get(unauthorized_only))
        .route("/hosts/{host}/report", post(super::status::report))
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
    Index {
        arch: String,
        kind: IndexKind,
    },
    ByHash {
        arch: String,
        sha256: String,
    },
    Pool(String),
    /// The enrollment script (not part of the apt repository).
    Bootstrap,
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
        ["bootstrap"] => Some(AptPath::Bootstrap),
        _ => None,
    }
}

pub(super) fn unauthorized() -> Response<Body> {
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

/// Renders (or fetches from cache) host `host`'s archive from one read transaction.
fn load(state: &AppState, host: &str) -> Result<HostEntry, LoadError> {
    let data = state.app.store.host_data(host)?.ok_or(LoadError::Unknown)?;
    // One key set for the whole view, chosen by the view's serving generation: umc-node ships
    // the keys InRelease is signed with, and a umc-node version never changes its keyring.
    let keys = state.app.keys_for(data.server_generation);
    let packages = repo::packages(&data, state.app.serving(&keys))?;
    let archs = &state.app.config.architectures;
    let key = repo::archive_key(&data, archs, &packages);
    let mut rendered = false;
    let archive = state
        .app
        .cache
        .archives
        .try_get_with(key, || -> Result<_, LoadError> {
            rendered = true;
            let started = std::time::Instant::now();
            let archive = repo::build_archive(&data, &packages, archs, &keys.keys, |p| {
                let mut built = false;
                let deb = state.app.cache.debs.try_get_with(repo::package_key(p), || {
                    built = true;
                    repo::build_deb(p).map(Arc::new)
                });
                state.app.metrics.cache_lookup(CacheId::Debs, !built);
                deb.map_err(|e| repo::RepoError::Cached(e.to_string()))
            });
            state.app.metrics.render(started.elapsed());
            Ok(Arc::new(archive?))
        });
    state.app.metrics.cache_lookup(CacheId::Archives, !rendered);
    let archive = archive.map_err(|e| LoadError::Cached(e.to_string()))?;
    // Keep the archive this one replaces: a node that fetched the older InRelease a moment
    // ago fetches its indexes (by-hash) and debs next.
    let entry = match state.app.cache.latest.get(host) {
        Some(old) if old.archive.release.sha256 == archive.release.sha256 => old,
        old => HostEntry {
            archive: archive.clone(),
            previous: old.map(|o| o.archive),
        },
    };
    state
        .app
        .cache
        .latest
        .insert(host.to_string(), entry.clone());
    remember(state, &entry.archive);
    Ok(entry)
}

/// Keeps what an archive lists servable for a while after it is superseded (beyond the one
/// previous archive a host entry holds).
fn remember(state: &AppState, archive: &Archive) {
    for a in [
        &archive.packages,
        &archive.packages_gz,
        &archive.packages_xz,
    ] {
        state.app.cache.recent.insert(
            (archive.host.clone(), format!("by-hash/{}", a.hex())),
            a.clone(),
        );
    }
    for (path, deb) in &archive.debs {
        state
            .app
            .cache
            .recent
            .insert((archive.host.clone(), path.clone()), deb.artifact.clone());
    }
}

pub(super) fn internal_error(what: &str, e: impl std::fmt::Display) -> Response<Body> {
    tracing::error!("{what}: {e}");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n").into_response()
}

/// Whether a (lowercased) `/hosts/<h>/` segment can name a node at all: a host name by the
/// model's rules, at most 253 bytes, without a trailing dot. Checked before anything else, so
/// a long or malformed name never reaches a cache or the database.
fn plausible_host(host: &str) -> bool {
    host.len() <= 253 && crate::model::normalize_host(host).is_ok_and(|h| h == host)
}

/// Which of a node's tokens a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Credential {
    /// The node's token; `rotating` while its previous token works too.
    Current { hash: [u8; 32], rotating: bool },
    /// The token the node had before a rotation that the node has not yet ended.
    Previous,
}

/// Checks that the request carries `host`'s own credentials (HTTP Basic, user = host name):
/// its token or, during a rotation, its previous token. Unknown hosts and wrong passwords get
/// the same answer; a segment that cannot be a host name gets 404.
pub(super) async fn authenticate(
    state: &Arc<AppState>,
    host: &str,
    headers: &HeaderMap,
) -> Result<Credential, Response<Body>> {
    if !plausible_host(host) {
        return Err(not_found());
    }
    let Some((user, password)) = basic_credentials(headers) else {
        return Err(unauthorized());
    };
    if !user.eq_ignore_ascii_case(host) {
        return Err(unauthorized());
    }
    let Some(entry) = host_token(state, host).await? else {
        return Err(unauthorized());
    };
    let given = token_hash(&password);
    if given == entry.hash {
        return Ok(Credential::Current {
            hash: given,
            rotating: entry.previous.is_some(),
        });
    }
    if entry.previous != Some(given) {
        return Err(unauthorized());
    }
    // The previous token. A report may have ended the rotation since this entry was cached
    // (reports move no generation), so the store decides: this costs a read per request,
    // paid only by a node still on its old token.
    let node = read_node(state, host).await?;
    let still = node
        .and_then(|n| n.previous_token)
        .is_some_and(|p| token_hash(&p.token) == given);
    if still {
        Ok(Credential::Previous)
    } else {
        state.app.cache.tokens.invalidate(host);
        Err(unauthorized())
    }
}

async fn read_node(
    state: &Arc<AppState>,
    host: &str,
) -> Result<Option<crate::model::Node>, Response<Body>> {
    let st = state.clone();
    let h = host.to_string();
    blocking(move || Ok::<_, AppError>(st.app.store.node(&h)?))
        .await
        .map_err(|e| internal_error("reading node", e))
}

/// `host`'s token hashes at the current generation, or None for no such host. A warm known
/// host costs one lookup of the token cache; an unknown one is remembered by the sha256 of
/// its name only (a fixed 32 bytes), so nothing a client sends is kept per name, and
/// unknown names never push known hosts out of the token cache.
async fn host_token(
    state: &Arc<AppState>,
    host: &str,
) -> Result<Option<TokenEntry>, Response<Body>> {
    let generation = state.app.generation();
    let cached = state
        .app
        .cache
        .tokens
        .get(host)
        .filter(|t| t.generation == generation);
    state
        .app
        .metrics
        .cache_lookup(CacheId::Tokens, cached.is_some());
    if let Some(t) = cached {
        return Ok(Some(t));
    }
    let name_hash = token_hash(host);
    let unknown = state.app.cache.unknown.get(&name_hash) == Some(generation);
    state.app.metrics.cache_lookup(CacheId::Unknown, unknown);
    if unknown {
        return Ok(None);
    }
    match read_node(state, host).await? {
        Some(node) => {
            let entry = TokenEntry {
                generation,
                hash: token_hash(&node.token),
                previous: node.previous_token.map(|p| token_hash(&p.token)),
            };
            state.app.cache.tokens.insert(host.to_string(), entry);
            Ok(Some(entry))
        }
        None => {
            state.app.cache.unknown.insert(name_hash, generation);
            Ok(None)
        }
    }
}

async fn serve(
    State(state): State<Arc<AppState>>,
    Path((host, rest)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response<Body> {
    let host = host.to_ascii_lowercase();
    if let Err(r) = authenticate(&state, &host, &headers).await {
        return r;
    }
    let key = (host.clone(), state.app.generation());
    let Some(path) = parse(&rest) else {
        return not_found();
    };
    if path == AptPath::Bootstrap {
        return bootstrap(state, host).await;
    }
    let cached = state.app.cache.hosts.get(&key);
    state
        .app
        .metrics
        .cache_lookup(CacheId::Hosts, cached.is_some());
    let entry = match cached {
        Some(e) => e,
        None => {
            let st = state.clone();
            let h = host.clone();
            let res = blocking(move || {
                Ok::<_, AppError>(st.app.cache.hosts.try_get_with(key, || load(&st, &h)))
            })
            .await;
            match res {
                Ok(Ok(e)) => e,
                // Removed between the token check and the render.
                Ok(Err(e)) if matches!(*e, LoadError::Unknown) => return unauthorized(),
                Ok(Err(e)) => return internal_error("rendering repository", e),
                Err(e) => return internal_error("render task", e),
            }
        }
    };
    let archive = &entry.archive;
    let index = |a: &Artifact| Resource {
        body: a.bytes.clone(),
        sha256: a.hex(),
        last_modified: Some(archive.date),
        ambiguous_date: archive.date_ambiguous,
        immutable: false,
        content_type: "text/plain; charset=utf-8",
        cache_control: NO_CACHE,
    };
    let immutable = |a: &Artifact, mtime: Option<i64>, ct: &'static str| Resource {
        body: a.bytes.clone(),
        sha256: a.hex(),
        last_modified: mtime,
        ambiguous_date: false,
        immutable: true,
        content_type: ct,
        cache_control: IMMUTABLE,
    };
    let arch_ok = |arch: &str| state.app.config.architectures.iter().any(|a| a == arch);
    let archives = std::iter::once(archive).chain(entry.previous.as_ref());
    match &path {
        AptPath::InRelease | AptPath::Release => {
            state.app.saw(&host, |s| s.inrelease = Some(now()))
        }
        AptPath::Pool(p) => {
            if let Some(v) = p
                .rsplit('/')
                .next()
                .and_then(|f| f.strip_prefix(&format!("{}_", archive_host_package(&host))))
                .and_then(|f| f.strip_suffix("_all.deb"))
            {
                let v = v.replace("%3a", ":");
                state.app.saw(&host, |s| s.host_deb = Some((v, now())));
            }
        }
        _ => {}
    }
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
            let found = archives
                .clone()
                .find_map(|a| a.by_hash(&sha256).cloned())
                .or_else(|| {
                    state
                        .app
                        .cache
                        .recent
                        .get(&(archive.host.clone(), format!("by-hash/{sha256}")))
                });
            match found {
                Some(a) => immutable(&a, None, "application/octet-stream"),
                None => return not_found(),
            }
        }
        AptPath::Bootstrap => return not_found(),
        AptPath::Pool(p) => {
            let deb_type = "application/vnd.debian.binary-package";
            match archives.clone().find_map(|a| a.debs.get(&p)) {
                Some(d) => immutable(&d.artifact, Some(d.mtime), deb_type),
                None => match state.app.cache.recent.get(&(archive.host.clone(), p)) {
                    Some(a) => immutable(&a, None, deb_type),
                    None => return not_found(),
                },
            }
        }
    };
    conditional::respond(&method, &headers, resource)
}

fn archive_host_package(host: &str) -> String {
    crate::model::host_package(host)
}

/// `GET /hosts/<h>/bootstrap`, already authenticated as `host`.
async fn bootstrap(state: Arc<AppState>, host: String) -> Response<Body> {
    let st = state.clone();
    let node = match blocking(move || Ok::<_, AppError>(st.app.store.node(&host)?)).await {
        Ok(Some(n)) => n,
        Ok(None) => return unauthorized(),
        Err(e) => return internal_error("reading node", e),
    };
    let Some(url) = &node.url else {
        let msg = format!(
            "echo 'umc: node {0} has no URL yet; run: umc-admin node enroll {0} --url <URL nodes reach umcd at>' >&2; exit 1\n",
            node.name
        );
        return Response::builder()
            .status(StatusCode::CONFLICT)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::from(msg))
            .unwrap_or_default();
    };
    let script = crate::nodefiles::bootstrap_script(&node, url, &state.app.keys().keyring_gpg);
    Response::builder()
        .header(header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(script))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse("dists/umc/InRelease"), Some(AptPath::InRelease));
        assert_eq!(parse("./dists/umc/./Release"), Some(AptPath::Release));
        assert_eq!(parse("dists/other/InRelease"), None);
        assert_eq!(parse("bootstrap"), Some(AptPath::Bootstrap));
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

#[cfg(test)]
#[path = "apt_fuzz.rs"]
mod fuzz;
