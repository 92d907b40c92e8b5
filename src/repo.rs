//! A host's view of the repository: which packages it sees, their control data, the
//! `Packages` index, the `Release` body and its signatures.
//!
//! Pure: no IO, no clock. Time comes from the model (commit times of generations); debs come
//! through a caller-supplied lookup so the caller can cache them by content hash.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::compress::{self, GzipOs};
use crate::deb::{self, ChangelogEntry, DataFile, Package};
use crate::model::{self, Entity, Task, closure_of, host_package, task_package};
use crate::nodefiles::{self, NODE_PACKAGE, Serving};
use crate::sign::SigningKeys;
use crate::store::{CHANGELOG_LIMIT, HistoryItem, HostData};

/// Packaging format. Part of every version (`<FORMAT>.<generation>`) so that a umcd release
/// that changes what the same model renders to can move every version forward.
pub const FORMAT: u64 = 1;
pub const SUITE: &str = "umc";
pub const COMPONENT: &str = "main";
/// Never change these once nodes have seen them: apt refuses a changed Origin/Label.
pub const ORIGIN: &str = "umc";
pub const LABEL: &str = "umc";
pub const MAINTAINER: &str = "umc <umc@umc.invalid>";

/// How far before the Release `Date` its signatures are dated (see `build_archive`).
pub const SIGNATURE_BACKDATE: Duration = Duration::from_secs(600);

pub const DEFAULT_ARCHITECTURES: &[&str] = &[
    "amd64", "arm64", "armhf", "i386", "ppc64el", "riscv64", "s390x",
];

pub fn version(generation: u64) -> String {
    format!("{FORMAT}.{generation}")
}

/// `pool/main/u/umc-web/umc-web_1.42_all.deb`
pub fn pool_path(name: &str, version: &str) -> String {
    let initial = if name.starts_with("lib") && name.len() > 3 {
        &name[..4]
    } else {
        &name[..1]
    };
    format!("pool/{COMPONENT}/{initial}/{name}/{name}_{version}_all.deb")
}

/// Bytes plus their SHA-256, the unit everything is served and cached as.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub bytes: Bytes,
    pub sha256: [u8; 32],
}

impl Artifact {
    pub fn new(bytes: impl Into<Bytes>) -> Artifact {
        let bytes = bytes.into();
        let sha256 = Sha256::digest(&bytes).into();
        Artifact { bytes, sha256 }
    }
    pub fn hex(&self) -> String {
        hex::encode(self.sha256)
    }
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A built .deb and the control text its Packages stanza repeats.
#[derive(Debug)]
pub struct DebArtifact {
    pub artifact: Artifact,
    pub control: String,
    /// Commit time of the package's version: its `Last-Modified`.
    pub mtime: i64,
}

/// One host's complete repository at one generation.
#[derive(Debug)]
pub struct Archive {
    pub host: String,
    /// Release `Date` and `Last-Modified`, seconds since the epoch.
    pub date: i64,
    pub date_ambiguous: bool,
    /// Pool path -> deb.
    pub debs: BTreeMap<String, Arc<DebArtifact>>,
    /// Identical for every architecture: every package is `Architecture: all`.
    pub packages: Artifact,
    pub packages_gz: Artifact,
    pub packages_xz: Artifact,
    pub release: Artifact,
    pub in_release: Artifact,
    pub release_gpg: Artifact,
}

impl Archive {
    pub fn weight(&self) -> usize {
        // Debs are shared with the deb cache and counted there.
        self.packages.len()
            + self.packages_gz.len()
            + self.packages_xz.len()
            + self.release.len()
            + self.in_release.len()
            + self.release_gpg.len()
            + 256 * self.debs.len()
    }

    /// The files of each `main/binary-<arch>/` directory, by name: the same for every
    /// architecture, since every package is `Architecture: all`.
    pub fn index_files(&self) -> impl Iterator<Item = (&str, &Artifact)> {
        [
            ("Packages", &self.packages),
            ("Packages.gz", &self.packages_gz),
            ("Packages.xz", &self.packages_xz),
        ]
        .into_iter()
    }

    /// An index file by name (`Packages.xz`).
    pub fn index(&self, name: &str) -> Option<&Artifact> {
        self.index_files().find(|(n, _)| *n == name).map(|(_, a)| a)
    }

    /// An index file by its SHA-256 (`by-hash/SHA256/<hex>`).
    pub fn by_hash(&self, hex: &str) -> Option<&Artifact> {
        [&self.packages, &self.packages_gz, &self.packages_xz]
            .into_iter()
            .find(|a| a.hex() == hex)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("building package: {0}")]
    Deb(#[from] deb::DebError),
    #[error("signing: {0}")]
    Sign(#[from] crate::sign::SignError),
    #[error("compressing: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Cached(String),
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    /// A stored file path or service that today's rules refuse (written by an older umcd):
    /// it would reach a maintainer script, so the view is not rendered.
    #[error("{0}; remove or rename it with 'umc-admin task file rm/add'")]
    Model(#[from] crate::model::ModelError),
}

/// A package's changelog: the edits of its own entity and of every task it reaches, newest
/// first, bounded. Lines of another task's edits name that task.
fn changelog(
    data: &HostData,
    own: &Entity,
    tasks: &BTreeSet<String>,
    templated: bool,
) -> Vec<ChangelogEntry> {
    // A templated package also changes with the host's node and the global variables.
    let host_inputs = [Entity::Node(data.node.name.clone()), Entity::Global];
    let sources = std::iter::once(own.clone())
        .chain(tasks.iter().map(|t| Entity::Task(t.clone())))
        .chain(host_inputs.into_iter().filter(|e| templated && e != own));
    merged_changelog(data, own, sources)
}

/// The history of `sources`, merged by generation, newest first; see [`changelog`].
fn merged_changelog(
    data: &HostData,
    own: &Entity,
    sources: impl Iterator<Item = Entity>,
) -> Vec<ChangelogEntry> {
    let mut merged: BTreeMap<u64, HistoryItem> = BTreeMap::new();
    for e in sources {
        let Some(items) = data.history.get(&e) else {
            continue;
        };
        for i in items {
            let entry = merged.entry(i.generation).or_insert_with(|| HistoryItem {
                generation: i.generation,
                time: i.time,
                user: i.user.clone(),
                lines: Vec::new(),
            });
            for l in &i.lines {
                let line = match &e {
                    Entity::Task(t) if &e != own => format!("task '{t}': {l}"),
                    _ => l.clone(),
                };
                if !entry.lines.contains(&line) {
                    entry.lines.push(line);
                }
            }
        }
    }
    // Debian changelogs want strictly decreasing dates (lintian:
    // latest-changelog-entry-without-new-date); edits often share a second, so an older
    // entry is shown at most one second before the next newer one. The newest keeps its time,
    // and none goes below 1970, which a changelog date cannot name (nor past 9999: stored
    // times are never in the future).
    let mut next_newer = i64::MAX;
    merged
        .into_values()
        .rev()
        .filter(|i| !i.lines.is_empty())
        .take(CHANGELOG_LIMIT)
        .map(|i| {
            let time = i.time.min(next_newer.saturating_sub(1)).max(0);
            next_newer = time;
            ChangelogEntry {
                version: version(i.generation),
                lines: i.lines,
                user: i.user,
                time_unix: time,
            }
        })
        .collect()
}

/// Time of the newest changelog entry: the package's fixed mtime.
fn mtime(log: &[ChangelogEntry]) -> u64 {
    log.first().map(|i| i.time_unix.max(0) as u64).unwrap_or(0)
}

/// The packages host `data.node` sees: `umc-<host>`, `umc-node` and one `umc-task-<t>` per
/// task in the closure of its assignments, sorted by name, with task files rendered for this
/// host. Task dependencies carry `(>= version)`; see [`model::task_generation`].
pub fn packages(data: &HostData, serving: Serving<'_>) -> Result<Vec<Package>, RepoError> {
    let node = &data.node;
    let tasks: BTreeMap<String, Task> = data
        .tasks
        .iter()
        .map(|t| (t.name.clone(), t.clone()))
        .collect();
    let host = Some((node, data.vars_generation));
    let task_version = |t: &Task| version(model::task_generation(&tasks, t, host));
    let versioned = |names: &BTreeSet<String>| -> Vec<String> {
        names
            .iter()
            .filter_map(|n| tasks.get(n))
            .map(|t| format!("{} (>= {})", task_package(&t.name), task_version(t)))
            .collect()
    };
    let node_closure = closure_of(&tasks, &node.tasks);
    let host_pkg = host_package(&node.name);
    // umc-node changes with the node (URL, token, conffile policy) and with umcd's own
    // serving inputs (keys, the cycle's files).
    let node_entity = Entity::Node(node.name.clone());
    let node_pkg_log = merged_changelog(
        data,
        &node_entity,
        [node_entity.clone(), Entity::Server].into_iter(),
    );
    let node_pkg_version = version(node.generation.max(data.server_generation));
    let mut host_depends = vec![format!("{NODE_PACKAGE} (>= {node_pkg_version})")];
    host_depends.extend(versioned(&node.tasks));
    let log = changelog(data, &node_entity, &node_closure, false);
    let node_pkg = Package {
        name: NODE_PACKAGE.to_string(),
        version: node_pkg_version,
        maintainer: MAINTAINER.to_string(),
        section: "admin".to_string(),
        priority: "optional".to_string(),
        description: format!(
            "umc node cycle and apt configuration of host {}\numc-cycle and its systemd timer keep this host on its umc repository;\nthe package also carries the repository's apt source, credentials and\nsigning key, so changes to them reach the host through apt.",
            node.name
        ),
        // umc-cycle also needs apt, flock (util-linux) and deb-systemd-helper
        // (init-system-helpers): all Essential. curl or wget posts its report.
        depends: vec!["curl | wget".to_string()],
        conflicts: Vec::new(),
        protected: false,
        files: nodefiles::node_files(node, &host_pkg, serving),
        scripts: nodefiles::node_scripts(),
        removed_conffiles: Vec::new(),
        mtime: mtime(&node_pkg_log),
        changelog: node_pkg_log,
    };
    let mut out = vec![
        node_pkg,
        Package {
            name: host_pkg,
            version: version(model::node_generation(&tasks, node, data.vars_generation)),
            maintainer: MAINTAINER.to_string(),
            section: "admin".to_string(),
            priority: "optional".to_string(),
            description: format!(
                "umc configuration of host {}\nThis metapackage is generated by umc from the fleet model. It depends on\nthe task packages assigned to this host; remove it to leave umc.",
                node.name
            ),
            depends: host_depends,
            conflicts: Vec::new(),
            protected: true,
            files: Vec::new(),
            scripts: BTreeMap::new(),
            removed_conffiles: Vec::new(),
            mtime: mtime(&log),
            changelog: log,
        },
    ];
    let context = crate::template::HostContext {
        fqdn: &node.name,
        global_vars: &data.vars,
        node_vars: &node.vars,
        tasks: &node_closure,
        ssh: node.ssh.as_ref(),
    };
    for task in &data.tasks {
        let name = task_package(&task.name);
        let synopsis = if task.description.is_empty() {
            format!("packages and files of the umc task {}", task.name)
        } else {
            format!(
                "umc task {}: {}",
                task.name,
                task.description.lines().next().unwrap_or_default()
            )
        };
        let mut depends = versioned(&task.includes);
        depends.extend(task.depends.iter().cloned());
        let reach = closure_of(&tasks, &task.includes);
        let templated = closure_of(&tasks, [&task.name])
            .iter()
            .filter_map(|t| tasks.get(t))
            .any(|t| !t.files.is_empty());
        let log = changelog(data, &Entity::Task(task.name.clone()), &reach, templated);
        let mut files = Vec::new();
        for f in task.files.values() {
            let contents =
                crate::template::Template::parse(&f.path, &f.template)?.render(&context)?;
            files.push(DataFile {
                path: f.path.clone(),
                mode: f.mode,
                contents: contents.into_bytes(),
                conffile: f.is_conffile(),
            });
        }
        let shipped: Vec<&model::TaskFile> = task.files.values().collect();
        for f in &shipped {
            model::validate_file_path(&task.name, &f.path)?;
            if let Some(model::FileAction::Reload(s) | model::FileAction::Restart(s)) = &f.action {
                model::validate_service(s)?;
            }
        }
        let scripts =
            nodefiles::task_scripts(&name, &shipped, !task.dropped.is_empty()).unwrap_or_default();
        let removed_conffiles = task
            .dropped
            .iter()
            .filter(|p| !task.files.contains_key(*p))
            .cloned()
            .collect();
        let what = if files.is_empty() {
            "This metapackage"
        } else {
            "This package"
        };
        out.push(Package {
            name,
            version: task_version(task),
            maintainer: MAINTAINER.to_string(),
            section: "admin".to_string(),
            priority: "optional".to_string(),
            description: format!(
                "{synopsis}\n{what} is generated by umc from the fleet model: it pulls in the\npackages of task '{}', removes the ones the task removes and ships\nthe task's files rendered for this host.",
                task.name
            ),
            depends,
            conflicts: task.removes.iter().cloned().collect(),
            protected: false,
            files,
            scripts,
            removed_conffiles,
            mtime: mtime(&log),
            changelog: log,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Cache key of a package: SHA-256 over an unambiguous encoding of every input of the deb.
pub fn package_key(p: &Package) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    field(b"umc-deb");
    field(&FORMAT.to_le_bytes());
    for s in [
        &p.name,
        &p.version,
        &p.maintainer,
        &p.section,
        &p.priority,
        &p.description,
    ] {
        field(s.as_bytes());
    }
    for list in [&p.depends, &p.conflicts] {
        field(&(list.len() as u64).to_le_bytes());
        for s in list {
            field(s.as_bytes());
        }
    }
    field(&[p.protected as u8]);
    field(&p.mtime.to_le_bytes());
    field(&(p.files.len() as u64).to_le_bytes());
    for f in &p.files {
        field(f.path.as_bytes());
        field(&f.mode.to_le_bytes());
        field(&f.contents);
        field(&[f.conffile as u8]);
    }
    field(&(p.scripts.len() as u64).to_le_bytes());
    for (name, text) in &p.scripts {
        field(name.as_bytes());
        field(text.as_bytes());
    }
    field(&(p.removed_conffiles.len() as u64).to_le_bytes());
    for path in &p.removed_conffiles {
        field(path.as_bytes());
    }
    field(&(p.changelog.len() as u64).to_le_bytes());
    for c in &p.changelog {
        field(c.version.as_bytes());
        field(c.user.as_bytes());
        field(&c.time_unix.to_le_bytes());
        field(&(c.lines.len() as u64).to_le_bytes());
        for l in &c.lines {
            field(l.as_bytes());
        }
    }
    h.finalize().into()
}

pub fn build_deb(p: &Package) -> Result<DebArtifact, RepoError> {
    let built = deb::build(p)?;
    Ok(DebArtifact {
        artifact: Artifact::new(built.bytes),
        control: built.control,
        mtime: p.mtime as i64,
    })
}

/// `Packages`: each deb's control file verbatim plus Filename, Size and SHA256.
pub fn packages_index<'a>(debs: impl IntoIterator<Item = (&'a str, &'a DebArtifact)>) -> Vec<u8> {
    let mut out = String::new();
    for (path, deb) in debs {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&deb.control);
        if !deb.control.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!(
            "Filename: {path}\nSize: {}\nSHA256: {}\n",
            deb.artifact.len(),
            deb.artifact.hex()
        ));
    }
    out.into_bytes()
}

pub use crate::deb::LAST_DATE;

/// `unix` as a `SystemTime` clamped to 1970..=9999, the range RFC 1123 dates (and `httpdate`,
/// which panics beyond it) can write. Stored times are checked on the way in; this keeps every
/// date written from a stored time total even so.
pub fn date_time(unix: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix.clamp(0, LAST_DATE) as u64)
}

/// RFC 1123 date as Debian archives write it (`Sat, 09 Nov 2024 10:00:00 UTC`).
pub fn release_date(unix: i64) -> String {
    httpdate::fmt_http_date(date_time(unix)).replace("GMT", "UTC")
}

pub fn release_body(
    host: &str,
    date: i64,
    architectures: &[String],
    packages: &Artifact,
    gz: &Artifact,
    xz: &Artifact,
) -> Vec<u8> {
    let mut out = format!(
        "Origin: {ORIGIN}\nLabel: {LABEL}\nSuite: {SUITE}\nCodename: {SUITE}\nDate: {}\nArchitectures: {}\nComponents: {COMPONENT}\nDescription: umc configuration of {host}\nAcquire-By-Hash: yes\nSHA256:\n",
        release_date(date),
        architectures.join(" "),
    );
    for arch in architectures {
        for (suffix, a) in [("", packages), (".gz", gz), (".xz", xz)] {
            out.push_str(&format!(
                " {} {:>8} {COMPONENT}/binary-{arch}/Packages{suffix}\n",
                a.hex(),
                a.len()
            ));
        }
    }
    out.into_bytes()
}

/// Cache key of a host's archive: SHA-256 over every input of [`build_archive`] except the
/// signing keys. Those need no place here: every key change (`umc-admin key`, or a new key
/// file at start) commits a server generation, which moves `umc-node`'s version and so this
/// key, and umcd renders a view with the key set of its server generation.
pub fn archive_key(data: &HostData, architectures: &[String], packages: &[Package]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"umc-archive\0");
    h.update(FORMAT.to_le_bytes());
    h.update(data.node.name.as_bytes());
    h.update([0]);
    h.update(data.date.to_le_bytes());
    for a in architectures {
        h.update(a.as_bytes());
        h.update([0]);
    }
    for p in packages {
        h.update(package_key(p));
    }
    h.finalize().into()
}

/// Renders host `data`'s whole archive from its [`packages`]. `deb` returns a deb for a
/// package, normally from a content-addressed cache.
pub fn build_archive(
    data: &HostData,
    packages: &[Package],
    architectures: &[String],
    keys: &SigningKeys,
    mut deb: impl FnMut(&Package) -> Result<Arc<DebArtifact>, RepoError>,
) -> Result<Archive, RepoError> {
    let mut debs = BTreeMap::new();
    for p in packages {
        let path = pool_path(&p.name, &p.version);
        debs.insert(path, deb(p)?);
    }
    let text = packages_index(debs.iter().map(|(p, d)| (p.as_str(), d.as_ref())));
    let packages = Artifact::new(text);
    let packages_gz = Artifact::new(compress::gzip(&packages.bytes, GzipOs::Unknown)?);
    let packages_xz = Artifact::new(compress::xz(&packages.bytes)?);
    let body = release_body(
        &data.node.name,
        data.date,
        architectures,
        &packages,
        &packages_gz,
        &packages_xz,
    );
    // sqv refuses a signature dated even a second in its future, so a node whose clock lags
    // the server's would refuse a fresh InRelease: date signatures a little before the Release.
    let sig_time = (SystemTime::UNIX_EPOCH + Duration::from_secs(data.date.max(0) as u64))
        .checked_sub(SIGNATURE_BACKDATE)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let in_release = keys.clearsign(&body, sig_time)?;
    let release_gpg = keys.detached_armored(&body, sig_time)?;
    Ok(Archive {
        host: data.node.name.clone(),
        date: data.date,
        date_ambiguous: data.date_ambiguous,
        debs,
        packages,
        packages_gz,
        packages_xz,
        release: Artifact::new(body),
        in_release: Artifact::new(in_release),
        release_gpg: Artifact::new(release_gpg),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Node;
    use std::collections::BTreeSet;

    #[test]
    fn dates_are_total() {
        // httpdate panics past the year 9999; a stored time out there must print, not panic
        // (review finding 9: `umc-admin log` exited 101 on an imported far-future time).
        assert_eq!(release_date(i64::MAX), "Fri, 31 Dec 9999 23:59:59 UTC");
        assert_eq!(release_date(400_000_000_000), release_date(LAST_DATE));
        assert_eq!(release_date(i64::MIN), "Thu, 01 Jan 1970 00:00:00 UTC");
        assert_eq!(release_date(1), "Thu, 01 Jan 1970 00:00:01 UTC");
    }

    fn item(generation: u64, time: i64, line: &str) -> HistoryItem {
        HistoryItem {
            generation,
            time,
            user: "sh".into(),
            lines: vec![line.into()],
        }
    }

    fn pk(d: &HostData) -> Vec<Package> {
        let serving = Serving {
            keyring: b"keyring",
            conffiles: crate::model::ConffilePolicy::KeepLocal,
        };
        packages(d, serving).unwrap()
    }

    /// A fixed model and clock: web (gen 5) includes base (gen 7); the node is at gen 6.
    fn data() -> HostData {
        let task =
            |name: &str, generation, includes: &[&str], depends: &[&str], removes: &[&str]| Task {
                name: name.into(),
                description: String::new(),
                depends: depends.iter().map(|s| s.to_string()).collect(),
                removes: removes.iter().map(|s| s.to_string()).collect(),
                includes: includes.iter().map(|s| s.to_string()).collect(),
                files: BTreeMap::new(),
                dropped: BTreeSet::new(),
                generation,
            };
        let mut history = BTreeMap::new();
        history.insert(
            Entity::Node("h.example.com".into()),
            vec![item(
                6,
                1_700_000_060,
                "User 'sh' assigned task 'web' to node 'h.example.com'",
            )],
        );
        history.insert(
            Entity::Task("web".into()),
            vec![item(
                5,
                1_700_000_050,
                "User 'sh' removed dependency 'apache2'",
            )],
        );
        history.insert(
            Entity::Task("base".into()),
            vec![item(7, 1_700_000_070, "User 'sh' added dependency 'less'")],
        );
        HostData {
            generation: 9,
            node: Node {
                name: "h.example.com".into(),
                vars: BTreeMap::new(),
                tasks: BTreeSet::from(["web".to_string()]),
                ssh: None,
                token: "t".into(),
                previous_token: None,
                url: None,
                conffiles: None,
                generation: 6,
            },
            tasks: vec![
                task("base", 7, &[], &["less"], &[]),
                task(
                    "web",
                    5,
                    &["base"],
                    &["nginx-light", "mawk | gawk"],
                    &["apache2"],
                ),
            ],
            history,
            vars: BTreeMap::new(),
            vars_generation: 0,
            server_generation: 0,
            date: 1_700_000_070,
            date_ambiguous: false,
        }
    }

    #[test]
    fn versions_and_relations() {
        let p = pk(&data());
        let names: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        // base changed last (gen 7): web includes it and the host reaches it, so both move.
        assert_eq!(
            names,
            [
                ("umc-h.example.com", "1.7"),
                ("umc-node", "1.6"),
                ("umc-task-base", "1.7"),
                ("umc-task-web", "1.7")
            ]
        );
        assert_eq!(p[0].depends, ["umc-node (>= 1.6)", "umc-task-web (>= 1.7)"]);
        assert_eq!(
            p[3].depends,
            ["umc-task-base (>= 1.7)", "nginx-light", "mawk | gawk"]
        );
        assert_eq!(p[3].conflicts, ["apache2"]);
        assert!(p[0].protected);
        // web's changelog merges base's edit and names the task it came from.
        let web_log: Vec<_> = p[3]
            .changelog
            .iter()
            .map(|c| (c.version.as_str(), c.lines.clone()))
            .collect();
        assert_eq!(
            web_log,
            [
                (
                    "1.7",
                    vec!["task 'base': User 'sh' added dependency 'less'".to_string()]
                ),
                (
                    "1.5",
                    vec!["User 'sh' removed dependency 'apache2'".to_string()]
                ),
            ]
        );
        assert_eq!(p[3].mtime, 1_700_000_070);
    }

    #[test]
    fn changelog_dates_strictly_decrease() {
        let mut d = data();
        d.history.insert(
            Entity::Task("web".into()),
            vec![item(5, 1_700_000_070, "b"), item(4, 1_700_000_070, "a")],
        );
        let p = pk(&d);
        let times: Vec<i64> = p[3].changelog.iter().map(|c| c.time_unix).collect();
        assert_eq!(times, [1_700_000_070, 1_700_000_069, 1_700_000_068]);
    }

    #[test]
    fn changelog_dates_stop_at_the_epoch() {
        // Imported history may carry time 0 (import refuses only negative times); dates
        // below it cannot be written, so the entries before the newest share 1970-01-01.
        let mut d = data();
        d.history.insert(
            Entity::Task("web".into()),
            vec![item(5, 1, "c"), item(4, 0, "b"), item(3, 0, "a")],
        );
        d.history.remove(&Entity::Task("base".into()));
        let p = pk(&d);
        let times: Vec<i64> = p[3].changelog.iter().map(|c| c.time_unix).collect();
        assert_eq!(times, [1, 0, 0]);
        build_deb(&p[3]).unwrap();
    }

    #[test]
    fn release_and_packages_render_exactly() {
        let a = Artifact::new(&b"Package: x\n"[..]);
        let body = release_body(
            "h.example.com",
            1_700_000_070,
            &["amd64".into()],
            &a,
            &a,
            &a,
        );
        let hex = a.hex();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            format!(
                "Origin: umc\nLabel: umc\nSuite: umc\nCodename: umc\nDate: Tue, 14 Nov 2023 22:14:30 UTC\n\
Architectures: amd64\nComponents: main\nDescription: umc configuration of h.example.com\n\
Acquire-By-Hash: yes\nSHA256:\n {hex}       11 main/binary-amd64/Packages\n \
{hex}       11 main/binary-amd64/Packages.gz\n {hex}       11 main/binary-amd64/Packages.xz\n"
            )
        );
        let deb = DebArtifact {
            artifact: Artifact::new(&b"deb"[..]),
            control: "Package: x\nVersion: 1.2\n".into(),
            mtime: 0,
        };
        let idx = packages_index([("pool/main/x/x/x_1.2_all.deb", &deb), ("pool/y", &deb)]);
        assert_eq!(
            String::from_utf8(idx).unwrap(),
            format!(
                "Package: x\nVersion: 1.2\nFilename: pool/main/x/x/x_1.2_all.deb\nSize: 3\nSHA256: {h}\n\n\
Package: x\nVersion: 1.2\nFilename: pool/y\nSize: 3\nSHA256: {h}\n",
                h = deb.artifact.hex()
            )
        );
        assert_eq!(
            pool_path("libfoo", "1.0"),
            "pool/main/libf/libfoo/libfoo_1.0_all.deb"
        );
        assert_eq!(
            pool_path("umc-x", "1.0"),
            "pool/main/u/umc-x/umc-x_1.0_all.deb"
        );
    }

    #[test]
    fn packages_and_debs_are_deterministic() {
        let p = pk(&data());
        assert_eq!(package_key(&p[0]), package_key(&pk(&data())[0]));
        assert_eq!(
            build_deb(&p[3]).unwrap().artifact.bytes,
            build_deb(&pk(&data())[3]).unwrap().artifact.bytes
        );
    }
}
