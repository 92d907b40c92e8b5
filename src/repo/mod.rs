//! What a host sees, and the apt repository it is served as.
//!
//! - `view`: the host's packages (`umc-node`, `umc-<host>`, one `umc-task-<t>` per task in
//!   its closure), their changelogs and rendered files ([`packages`]);
//! - `archive`: the repository: each deb, the index files, the Release body and its
//!   signatures ([`build_archive`], [`Archive`]), and the cache keys of debs and archives;
//! - `index`: the `Packages` text; `release`: the `Release` body and dates.
//!
//! Pure: no IO, no clock. Time comes from the model (commit times of generations); debs come
//! through a caller-supplied lookup so the caller can cache them by content hash.

#![warn(missing_docs)]

use std::time::Duration;

use crate::deb;

mod archive;
mod index;
mod release;
mod view;

pub use archive::{
    Archive, Artifact, DebArtifact, archive_key, build_archive, build_deb, package_key,
};
pub use index::packages_index;
pub use release::release_body;
pub use view::{CHANGELOG_LIMIT, HistoryItem, HostData, packages};

/// The suite (and codename) of every host's repository: `dists/umc/`.
pub const SUITE: &str = "umc";
/// The one component, which the pool paths also start with.
pub const COMPONENT: &str = "main";
/// The Release `Origin`. Never change it once nodes have seen it: apt refuses a changed
/// Origin or Label.
pub const ORIGIN: &str = "umc";
/// The Release `Label`, fixed for good like [`ORIGIN`].
pub const LABEL: &str = "umc";
/// The `Maintainer` of every generated package (`.invalid`, so it reaches nobody).
pub const MAINTAINER: &str = "umc <umc@umc.invalid>";

/// How far before the Release `Date` its signatures are dated (see `build_archive`).
pub const SIGNATURE_BACKDATE: Duration = Duration::from_secs(600);

/// The architectures a repository lists when the configuration names none: Debian's release
/// architectures, so any node finds its `binary-<arch>` index (every package is `all`).
pub const DEFAULT_ARCHITECTURES: &[&str] = &[
    "amd64", "arm64", "armhf", "i386", "ppc64el", "riscv64", "s390x",
];

/// `pool/main/u/umc-web/umc-web_1.42_all.deb`
pub fn pool_path(name: &str, version: &str) -> String {
    let initial = if name.starts_with("lib") && name.len() > 3 {
        &name[..4]
    } else {
        &name[..1]
    };
    format!("pool/{COMPONENT}/{initial}/{name}/{name}_{version}_all.deb")
}

/// Why a host's packages or archive could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A package did not validate or could not be written.
    #[error("building package: {0}")]
    Deb(#[from] deb::DebError),
    /// The Release could not be signed.
    #[error("signing: {0}")]
    Sign(#[from] crate::sign::SignError),
    /// An index could not be compressed.
    #[error("compressing: {0}")]
    Io(#[from] std::io::Error),
    /// A deb build that failed in the caller's cache, which hands back only its message.
    #[error("{0}")]
    Cached(String),
    /// A task file's template did not render for this host.
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    /// A stored file path or service that today's rules refuse (written by an older umcd):
    /// it would reach a maintainer script, so the view is not rendered.
    #[error("{0}; remove or rename it with 'umc-admin task file rm/add'")]
    Model(#[from] crate::model::ModelError),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The renderers read what `HostData` holds and nothing else: no file of `repo` names the
    /// store (which fills `HostData`), so the arrow points one way.
    #[test]
    fn repo_does_not_depend_on_the_store() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/repo");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("src/repo") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("read");
            let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
            assert!(
                !code.contains("crate::store") && !code.contains("use crate::{store"),
                "{} uses the store",
                path.display()
            );
            checked += 1;
        }
        assert!(checked >= 5, "{checked} files");
    }

    /// The Architecture Invariant "`repo`, `deb`, `compress` and `model` do no IO and read no
    /// clock": their code names no file, network, process, environment, clock, database or
    /// layer above them. (`model` reaches `sandbox` for template renders, by design.)
    #[test]
    fn renderers_do_no_io_and_read_no_clock() {
        use crate::testing::{non_test_code, rust_files, shown, src};
        const IO_OR_CLOCK: &[&str] = &[
            "fs::",
            "File::open",
            "File::create",
            "OpenOptions",
            "std::net",
            "TcpStream",
            "std::env",
            "env::var",
            "std::process",
            "Command::new",
            "io::stdin",
            "io::stdout",
            "io::stderr",
            "print!",
            "println!",
            "SystemTime::now",
            "Instant::now",
            "Utc::now",
            "tokio",
            "ureq",
            "redb",
            "crate::store",
            "crate::app",
            "crate::http",
        ];
        let mut checked = 0;
        for part in ["repo", "deb", "compress.rs", "model"] {
            for f in rust_files(&src().join(part)) {
                let code = non_test_code(&f);
                for word in IO_OR_CLOCK {
                    assert!(!code.contains(word), "{} names {word}", shown(&f));
                }
                checked += 1;
            }
        }
        assert!(checked >= 15, "{checked} files");
    }

    /// The Architecture Invariant "nothing iterates a HashMap into output" (its order changes
    /// from run to run, and apt would see different bytes): no code names a hash map or set
    /// but two states that are never written out, the per-source connection counts and the
    /// console's sessions and login limiter. A new one needs a reason here.
    #[test]
    fn nothing_but_connection_and_session_state_uses_a_hash_map() {
        use crate::testing::{non_test_code, rust_files, shown, src};
        const ALLOWED: &[&str] = &["http/server.rs", "http/ui/session.rs"];
        let files = rust_files(&src());
        assert!(files.len() > 50, "{} files", files.len());
        for f in files {
            let code = non_test_code(&f);
            let path = shown(&f);
            let named = ["HashMap", "HashSet", "hash_map", "hash_set", "RandomState"]
                .into_iter()
                .find(|w| code.contains(w));
            if let Some(word) = named {
                assert!(
                    ALLOWED.contains(&path.as_str()),
                    "{path} names {word}: build output from BTreeMap/BTreeSet or sorted vectors"
                );
            }
        }
    }

    #[test]
    fn pool_paths() {
        assert_eq!(
            pool_path("libfoo", "1.0"),
            "pool/main/libf/libfoo/libfoo_1.0_all.deb"
        );
        assert_eq!(
            pool_path("umc-x", "1.0"),
            "pool/main/u/umc-x/umc-x_1.0_all.deb"
        );
    }
}
