//! The apt side: `/hosts/<h>/…`, each host's own signed repository behind HTTP Basic auth.
//! The path is parsed once into [`AptPath`]; the credentials and the archive come from
//! `app::serve` (a warm request touches no database).

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
use crate::app::now;
use crate::app::serve::Credential;
use crate::repo::{Artifact, COMPONENT, SUITE};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/hosts/{host}", get(unauthorized_only))
        .route("/hosts/{host}/report", post(super::status::report))
        .route("/hosts/{host}/{*rest}", get(serve))
}

/// Every path of a host's apt repository (below `/hosts/<h>/`), parsed once. The enrollment
/// script beside it, `/hosts/<h>/bootstrap`, is not one ([`is_bootstrap`]).
#[derive(Debug, PartialEq, Eq)]
enum AptPath {
    InRelease,
    Release,
    ReleaseGpg,
    /// A file of `main/binary-<arch>/`; the archive's index map decides which exist.
    Index {
        arch: String,
        name: String,
    },
    ByHash {
        arch: String,
        sha256: String,
    },
    Pool(String),
}

/// The segments of a path below `/hosts/<h>/`. apt requests `/./` literally for flat
/// repositories; normalize it away.
fn segments(rest: &str) -> Vec<&str> {
    rest.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect()
}

/// `/hosts/<h>/bootstrap`: the enrollment script.
fn is_bootstrap(rest: &str) -> bool {
    segments(rest) == ["bootstrap"]
}

fn parse(rest: &str) -> Option<AptPath> {
    let parts = segments(rest);
    let dists = ["dists", SUITE];
    match parts.as_slice() {
        [d, s, "InRelease"] if [*d, *s] == dists => Some(AptPath::InRelease),
        [d, s, "Release"] if [*d, *s] == dists => Some(AptPath::Release),
        [d, s, "Release.gpg"] if [*d, *s] == dists => Some(AptPath::ReleaseGpg),
        [d, s, c, bin, name] if [*d, *s] == dists && *c == COMPONENT => {
            let arch = bin.strip_prefix("binary-")?.to_string();
            Some(AptPath::Index {
                arch,
                name: name.to_string(),
            })
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

pub(super) fn unauthorized() -> Response<Body> {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Basic realm=\"umc\""),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        Body::from("unauthorized\n"),
    )
        .into_response()
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
    match state.app.node_credential(host, &password).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(unauthorized()),
        Err(e) => Err(internal_error("reading node", e)),
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
    if is_bootstrap(&rest) {
        return bootstrap(state, host).await;
    }
    let Some(path) = parse(&rest) else {
        return not_found();
    };
    let entry = match state.app.host_entry(&host).await {
        Ok(Some(e)) => e,
        // Removed between the token check and the render.
        Ok(None) => return unauthorized(),
        Err(e) => return internal_error("rendering repository", e),
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
                .and_then(|f| f.strip_prefix(&format!("{}_", crate::model::host_package(&host))))
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
        AptPath::Index { arch, name } => {
            let Some(a) = archive.index(&name).filter(|_| arch_ok(&arch)) else {
                return not_found();
            };
            let mut r = index(a);
            if name.ends_with(".gz") || name.ends_with(".xz") {
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

/// `GET /hosts/<h>/bootstrap`, already authenticated as `host`.
async fn bootstrap(state: Arc<AppState>, host: String) -> Response<Body> {
    let node = match state.app.node(&host).await {
        Ok(Some(n)) => n,
        Ok(None) => return unauthorized(),
        Err(e) => return internal_error("reading node", e),
    };
    let Some(url) = &node.url else {
        let msg = format!(
            "echo 'umc: node {0} has no URL yet; run: umc-admin node enroll {0} --url <URL nodes reach umcd at>' >&2; exit 1\n",
            node.name
        );
        return (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            msg,
        )
            .into_response();
    };
    let script = crate::nodefiles::bootstrap_script(
        &node,
        url,
        &state.app.keys().keyring_gpg,
        state.app.config.tls_node_ca.as_deref(),
    );
    (
        [
            (header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        script,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse("dists/umc/InRelease"), Some(AptPath::InRelease));
        assert_eq!(parse("./dists/umc/./Release"), Some(AptPath::Release));
        assert_eq!(parse("dists/other/InRelease"), None);
        assert_eq!(parse("bootstrap"), None);
        assert!(is_bootstrap("bootstrap") && is_bootstrap("./bootstrap/"));
        assert!(!is_bootstrap("pool/bootstrap"));
        assert_eq!(
            parse("dists/umc/main/binary-amd64/Packages.xz"),
            Some(AptPath::Index {
                arch: "amd64".into(),
                name: "Packages.xz".into()
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
