//! What a node's apt fetches: its credentials checked against the token cache, and its
//! archive at the current generation, rendered from one read transaction on a miss. A warm
//! request touches no database: the token and the archive both come from the caches.

use std::sync::Arc;
use std::time::Instant;

use super::metrics::CacheId;
use super::{App, AppError, blocking};
use crate::cache::{HostEntry, TokenEntry};
use crate::model::Node;
use crate::repo::{self, Archive};
use crate::store::token_hash;

/// Which of a node's tokens a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// The node's token; `rotating` while its previous token works too.
    Current {
        /// sha256 of the token, which a report that may end the rotation is checked with.
        hash: [u8; 32],
        /// Whether a rotation is under way.
        rotating: bool,
    },
    /// The token the node had before a rotation that the node has not yet ended.
    Previous,
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

impl App {
    /// Which of `host`'s tokens `password` is: its token or, during a rotation, its previous
    /// one. `None` for an unknown host and for a wrong password alike. `host` must already be
    /// a plausible host name (lowercase, by the model's rules): an unknown one is remembered.
    pub async fn node_credential(
        self: &Arc<Self>,
        host: &str,
        password: &str,
    ) -> Result<Option<Credential>, AppError> {
        let Some(entry) = self.host_token(host).await? else {
            return Ok(None);
        };
        let given = token_hash(password);
        if given == entry.hash {
            return Ok(Some(Credential::Current {
                hash: given,
                rotating: entry.previous.is_some(),
            }));
        }
        if entry.previous != Some(given) {
            return Ok(None);
        }
        // The previous token. A report may have ended the rotation since this entry was
        // cached (reports move no generation), so the store decides: this costs a read per
        // request, paid only by a node still on its old token.
        let node = self.node(host).await?;
        let still = node
            .and_then(|n| n.previous_token)
            .is_some_and(|p| token_hash(&p.token) == given);
        if still {
            Ok(Some(Credential::Previous))
        } else {
            self.cache.tokens.invalidate(host);
            Ok(None)
        }
    }

    /// Node `host` as stored.
    pub async fn node(self: &Arc<Self>, host: &str) -> Result<Option<Node>, AppError> {
        let app = self.clone();
        let host = host.to_string();
        blocking(move || Ok(app.store.node(&host)?)).await
    }

    /// `host`'s archive at the current generation and the different one it replaced, or
    /// `None` when there is no such node (removed since its credentials were checked). A
    /// miss renders off the async workers; concurrent misses of one host share the render.
    pub async fn host_entry(self: &Arc<Self>, host: &str) -> Result<Option<HostEntry>, AppError> {
        let key = (host.to_string(), self.generation());
        let cached = self.cache.hosts.get(&key);
        self.metrics.cache_lookup(CacheId::Hosts, cached.is_some());
        if let Some(e) = cached {
            return Ok(Some(e));
        }
        let app = self.clone();
        let host = host.to_string();
        let loaded = blocking(move || {
            Ok::<_, AppError>(app.cache.hosts.try_get_with(key, || load(&app, &host)))
        })
        .await?;
        match loaded {
            Ok(e) => Ok(Some(e)),
            Err(e) if matches!(*e, LoadError::Unknown) => Ok(None),
            Err(e) => Err(AppError::internal(e)),
        }
    }

    /// `host`'s token hashes at the current generation, or None for no such host. A warm
    /// known host costs one lookup of the token cache; an unknown one is remembered by the
    /// sha256 of its name only (a fixed 32 bytes), so nothing a client sends is kept per
    /// name, and unknown names never push known hosts out of the token cache.
    async fn host_token(self: &Arc<Self>, host: &str) -> Result<Option<TokenEntry>, AppError> {
        let generation = self.generation();
        let cached = self
            .cache
            .tokens
            .get(host)
            .filter(|t| t.generation == generation);
        self.metrics.cache_lookup(CacheId::Tokens, cached.is_some());
        if let Some(t) = cached {
            return Ok(Some(t));
        }
        let name_hash = token_hash(host);
        let unknown = self.cache.unknown.get(&name_hash) == Some(generation);
        self.metrics.cache_lookup(CacheId::Unknown, unknown);
        if unknown {
            return Ok(None);
        }
        match self.node(host).await? {
            Some(node) => {
                let entry = TokenEntry {
                    generation,
                    hash: token_hash(&node.token),
                    previous: node.previous_token.map(|p| token_hash(&p.token)),
                };
                self.cache.tokens.insert(host.to_string(), entry);
                Ok(Some(entry))
            }
            None => {
                self.cache.unknown.insert(name_hash, generation);
                Ok(None)
            }
        }
    }
}

/// Renders (or fetches from cache) host `host`'s archive from one read transaction.
fn load(app: &App, host: &str) -> Result<HostEntry, LoadError> {
    let data = app.store.host_data(host)?.ok_or(LoadError::Unknown)?;
    // One key set for the whole view, chosen by the view's serving generation: umc-node ships
    // the keys InRelease is signed with, and a umc-node version never changes its keyring.
    let keys = app.keys_for(data.server_generation);
    let packages = repo::packages(&data, app.serving(&keys))?;
    let archs = &app.config.architectures;
    let key = repo::archive_key(&data, archs, &packages);
    let mut rendered = false;
    let archive = app
        .cache
        .archives
        .try_get_with(key, || -> Result<_, LoadError> {
            rendered = true;
            let started = Instant::now();
            let archive = repo::build_archive(&data, &packages, archs, &keys.keys, |p| {
                let mut built = false;
                let deb = app.cache.debs.try_get_with(repo::package_key(p), || {
                    built = true;
                    repo::build_deb(p).map(Arc::new)
                });
                app.metrics.cache_lookup(CacheId::Debs, !built);
                deb.map_err(|e| repo::RepoError::Cached(e.to_string()))
            });
            app.metrics.render(started.elapsed());
            Ok(Arc::new(archive?))
        });
    app.metrics.cache_lookup(CacheId::Archives, !rendered);
    let archive = archive.map_err(|e| LoadError::Cached(e.to_string()))?;
    // Keep the archive this one replaces: a node that fetched the older InRelease a moment
    // ago fetches its indexes (by-hash) and debs next.
    let entry = match app.cache.latest.get(host) {
        Some(old) if old.archive.release.sha256 == archive.release.sha256 => old,
        old => HostEntry {
            archive: archive.clone(),
            previous: old.map(|o| o.archive),
        },
    };
    app.cache.latest.insert(host.to_string(), entry.clone());
    remember(app, &entry.archive);
    Ok(entry)
}

/// Keeps what an archive lists servable for a while after it is superseded (beyond the one
/// previous archive a host entry holds).
fn remember(app: &App, archive: &Archive) {
    for (_, a) in archive.index_files() {
        app.cache.recent.insert(
            (archive.host.clone(), format!("by-hash/{}", a.hex())),
            a.clone(),
        );
    }
    for (path, deb) in &archive.debs {
        app.cache
            .recent
            .insert((archive.host.clone(), path.clone()), deb.artifact.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Credential;
    use crate::app::testing::{app, edit, node_add};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn credentials_and_archives_come_from_the_caches() {
        let (_dir, app) = app();
        edit(&app, vec![node_add("a.example")]);
        let token = app
            .node("a.example")
            .await
            .expect("read")
            .expect("node")
            .token;

        let c = app
            .node_credential("a.example", &token)
            .await
            .expect("auth");
        assert!(matches!(
            c,
            Some(Credential::Current {
                rotating: false,
                ..
            })
        ));
        assert_eq!(
            app.node_credential("a.example", "wrong")
                .await
                .expect("auth"),
            None
        );
        assert_eq!(
            app.node_credential("b.example", &token)
                .await
                .expect("auth"),
            None
        );
        // Known by hash now: the second look costs no read.
        assert_eq!(
            app.cache
                .unknown
                .get(&crate::store::token_hash("b.example")),
            Some(app.generation())
        );
        assert_eq!(
            app.node_credential("b.example", &token)
                .await
                .expect("auth"),
            None
        );

        let first = app
            .host_entry("a.example")
            .await
            .expect("render")
            .expect("known");
        let again = app
            .host_entry("a.example")
            .await
            .expect("cached")
            .expect("known");
        assert!(Arc::ptr_eq(&first.archive, &again.archive));
        assert!(first.previous.is_none());
        assert!(app.host_entry("b.example").await.expect("render").is_none());

        // An edit of the host moves its archive; the old one stays as `previous`.
        edit(
            &app,
            vec![crate::api::Op::NodeSet {
                host: "a.example".into(),
                set_vars: [("x".to_string(), "1".to_string())].into(),
                unset_vars: Vec::new(),
                ssh: None,
                url: None,
                conffiles: None,
            }],
        );
        let moved = app
            .host_entry("a.example")
            .await
            .expect("render")
            .expect("known");
        assert!(!Arc::ptr_eq(&first.archive, &moved.archive));
        let previous = moved.previous.expect("previous");
        assert!(Arc::ptr_eq(&first.archive, &previous));
    }
}
