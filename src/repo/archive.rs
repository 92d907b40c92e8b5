//! The apt repository of one host at one generation: its debs, index files and Release, and
//! the cache keys that let unchanged ones be reused.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::HostData;
use super::{RepoError, SIGNATURE_BACKDATE, packages_index, pool_path, release_body};
use crate::compress::{self, GzipOs};
use crate::deb::{self, ChangelogEntry, DataFile, Package};
use crate::model::FORMAT;
use crate::sign::SigningKeys;

/// Bytes plus their SHA-256, the unit everything is served and cached as.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The file as served (cheap to clone: shared, not copied).
    pub bytes: Bytes,
    /// SHA-256 of `bytes`: the index checksum, the by-hash name and the ETag.
    pub sha256: [u8; 32],
}

impl Artifact {
    /// Wraps `bytes`, hashing them once.
    pub fn new(bytes: impl Into<Bytes>) -> Artifact {
        let bytes = bytes.into();
        let sha256 = Sha256::digest(&bytes).into();
        Artifact { bytes, sha256 }
    }

    /// The SHA-256 in lowercase hex, as Release and by-hash paths write it.
    pub fn hex(&self) -> String {
        hex::encode(self.sha256)
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A built .deb and the control text its Packages stanza repeats.
#[derive(Debug)]
pub struct DebArtifact {
    /// The `.deb` file.
    pub artifact: Artifact,
    /// The text of its `control` file.
    pub control: String,
    /// Commit time of the package's version: its `Last-Modified`.
    pub mtime: i64,
}

/// One host's complete repository at one generation.
#[derive(Debug)]
pub struct Archive {
    /// The host whose view this is.
    pub host: String,
    /// Release `Date` and `Last-Modified`, seconds since the epoch.
    pub date: i64,
    /// Another generation shares `date`'s second, so `If-Modified-Since` never earns a 304
    /// (see [`HostData::date_ambiguous`]).
    pub date_ambiguous: bool,
    /// Pool path -> deb.
    pub debs: BTreeMap<String, Arc<DebArtifact>>,
    /// The files of each `main/binary-<arch>/` directory, by name: the same bytes for every
    /// architecture, since every package is `Architecture: all`. Release lists each of them
    /// under every architecture, and apt fetches them by name or by hash: a file added here
    /// (in [`build_archive`]) is listed, served and kept for clients of an older Release with
    /// no other change.
    indexes: BTreeMap<&'static str, Artifact>,
    /// The unsigned `Release` body.
    pub release: Artifact,
    /// `InRelease`: the Release body, clearsigned by every key.
    pub in_release: Artifact,
    /// `Release.gpg`: detached signatures over `release`.
    pub release_gpg: Artifact,
}

impl Archive {
    /// The bytes it holds for the caches' budgets: indexes and Release files in full, a
    /// fixed 256 per deb (the debs themselves are counted in the deb cache).
    pub fn weight(&self) -> usize {
        // Debs are shared with the deb cache and counted there.
        self.indexes.values().map(Artifact::len).sum::<usize>()
            + self.release.len()
            + self.in_release.len()
            + self.release_gpg.len()
            + 256 * self.debs.len()
    }

    /// The files of each `main/binary-<arch>/` directory, by name, sorted.
    pub fn index_files(&self) -> impl Iterator<Item = (&str, &Artifact)> {
        self.indexes.iter().map(|(name, a)| (*name, a))
    }

    /// An index file by name (`Packages.xz`).
    pub fn index(&self, name: &str) -> Option<&Artifact> {
        self.indexes.get(name)
    }

    /// An index file by its SHA-256 (`by-hash/SHA256/<hex>`).
    pub fn by_hash(&self, hex: &str) -> Option<&Artifact> {
        self.indexes.values().find(|a| a.hex() == hex)
    }
}

/// Builds package `p`'s deb, dated by its `mtime`: what the deb cache holds on a miss.
pub fn build_deb(p: &Package) -> Result<DebArtifact, RepoError> {
    let built = deb::build(p)?;
    Ok(DebArtifact {
        artifact: Artifact::new(built.bytes),
        control: built.control,
        mtime: p.mtime as i64,
    })
}

/// Cache key of a package: SHA-256 over an unambiguous encoding of every input of the deb.
/// The patterns name every field (no `..`), so a field added to [`Package`], [`DataFile`] or
/// [`ChangelogEntry`] does not compile until it is part of the key.
pub fn package_key(p: &Package) -> [u8; 32] {
    let Package {
        name,
        version,
        maintainer,
        section,
        priority,
        description,
        depends,
        conflicts,
        protected,
        files,
        changelog,
        scripts,
        removed_conffiles,
        mtime,
    } = p;
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    field(b"umc-deb");
    field(&FORMAT.to_le_bytes());
    for s in [name, version, maintainer, section, priority, description] {
        field(s.as_bytes());
    }
    for list in [depends, conflicts] {
        field(&(list.len() as u64).to_le_bytes());
        for s in list {
            field(s.as_bytes());
        }
    }
    field(&[*protected as u8]);
    field(&mtime.to_le_bytes());
    field(&(files.len() as u64).to_le_bytes());
    for f in files {
        let DataFile {
            path,
            mode,
            contents,
            conffile,
        } = f;
        field(path.as_bytes());
        field(&mode.to_le_bytes());
        field(contents);
        field(&[*conffile as u8]);
    }
    field(&(scripts.len() as u64).to_le_bytes());
    for (name, text) in scripts {
        field(name.as_bytes());
        field(text.as_bytes());
    }
    field(&(removed_conffiles.len() as u64).to_le_bytes());
    for path in removed_conffiles {
        field(path.as_bytes());
    }
    field(&(changelog.len() as u64).to_le_bytes());
    for c in changelog {
        let ChangelogEntry {
            version,
            lines,
            user,
            time_unix,
        } = c;
        field(version.as_bytes());
        field(user.as_bytes());
        field(&time_unix.to_le_bytes());
        field(&(lines.len() as u64).to_le_bytes());
        for l in lines {
            field(l.as_bytes());
        }
    }
    h.finalize().into()
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

/// Renders host `data`'s whole archive from its [`packages`](super::packages). `deb` returns
/// a deb for a package, normally from a content-addressed cache.
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
    let plain = Artifact::new(text);
    let indexes = BTreeMap::from([
        (
            "Packages.gz",
            Artifact::new(compress::gzip(&plain.bytes, GzipOs::Unknown)?),
        ),
        ("Packages.xz", Artifact::new(compress::xz(&plain.bytes)?)),
        ("Packages", plain),
    ]);
    let body = release_body(&data.node.name, data.date, architectures, &indexes);
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
        indexes,
        release: Artifact::new(body),
        in_release: Artifact::new(in_release),
        release_gpg: Artifact::new(release_gpg),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::view::tests::{data, pk};

    #[test]
    fn packages_and_debs_are_deterministic() {
        let p = pk(&data());
        assert_eq!(package_key(&p[0]), package_key(&pk(&data())[0]));
        assert_eq!(
            build_deb(&p[3]).unwrap().artifact.bytes,
            build_deb(&pk(&data())[3]).unwrap().artifact.bytes
        );
    }

    /// Every field of a package moves its cache key (the destructuring in `package_key` only
    /// proves each is named).
    #[test]
    fn package_key_covers_every_field() {
        let base = Package {
            files: vec![DataFile::conffile("/etc/a", "a")],
            changelog: vec![ChangelogEntry {
                version: "1.1".into(),
                lines: vec!["x".into()],
                user: "sh".into(),
                time_unix: 1,
            }],
            ..Package::default()
        };
        let changes: Vec<fn(&mut Package)> = vec![
            |p| p.name.push('x'),
            |p| p.version.push('x'),
            |p| p.maintainer.push('x'),
            |p| p.section.push('x'),
            |p| p.priority.push('x'),
            |p| p.description.push('x'),
            |p| p.depends.push("x".into()),
            |p| p.conflicts.push("x".into()),
            |p| p.protected = true,
            |p| p.files[0].path.push('x'),
            |p| p.files[0].mode = 0o600,
            |p| p.files[0].contents.push(b'x'),
            |p| p.files[0].conffile = false,
            |p| p.changelog[0].version.push('x'),
            |p| p.changelog[0].lines.push("y".into()),
            |p| p.changelog[0].user.push('x'),
            |p| p.changelog[0].time_unix = 2,
            |p| {
                p.scripts.insert("postinst".into(), String::new());
            },
            |p| p.removed_conffiles.push("/etc/b".into()),
            |p| p.mtime = 1,
        ];
        let key = package_key(&base);
        for (i, change) in changes.iter().enumerate() {
            let mut p = base.clone();
            change(&mut p);
            assert_ne!(package_key(&p), key, "change {i}");
        }
    }

    #[test]
    fn indexes_are_listed_served_and_weighed_from_one_map() {
        let keys = SigningKeys::generate("t <t@umc.invalid>").unwrap();
        let d = data();
        let p = pk(&d);
        let archs = ["amd64".to_string(), "arm64".to_string()];
        let a = build_archive(&d, &p, &archs, &keys, |p| build_deb(p).map(Arc::new)).unwrap();
        let names: Vec<&str> = a.index_files().map(|(n, _)| n).collect();
        assert_eq!(names, ["Packages", "Packages.gz", "Packages.xz"]);
        let release = String::from_utf8(a.release.bytes.to_vec()).unwrap();
        for (name, f) in a.index_files() {
            assert_eq!(a.by_hash(&f.hex()).map(Artifact::hex), Some(f.hex()));
            assert_eq!(a.index(name).map(Artifact::hex), Some(f.hex()));
            for arch in &archs {
                let line = format!(" {} {:>8} main/binary-{arch}/{name}\n", f.hex(), f.len());
                assert!(release.contains(&line), "{line} in {release}");
            }
        }
        assert_eq!(release.matches("main/binary-").count(), 6);
        let indexes: usize = a.index_files().map(|(_, f)| f.len()).sum();
        let signed = a.release.len() + a.in_release.len() + a.release_gpg.len();
        assert_eq!(a.weight(), indexes + signed + 256 * a.debs.len());
    }
}
