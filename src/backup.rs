//! The backup container, and restoring one into a new data directory.
//!
//! A backup is a plain (ustar) tar archive, in this order:
//!
//! 1. `UMC-BACKUP-CONTAINS-SECRETS`: a note saying what is secret in it;
//! 2. `backup.json`: the [`Manifest`];
//! 3. `umc.redb`: a consistent snapshot of the database (`Store::snapshot`);
//! 4. every other plain file of the data directory: `signing-key.asc` (the archive signing
//!    keys, secret), `admin.token` (secret), and whatever else umcd keeps there.
//!
//! Every entry has mode 0600. `tar tvf` lists it; restoring is `umcd restore <file>`.

#![warn(missing_docs)]

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sign::SIGNING_KEY_FILE;
use crate::store::{Migration, Snapshot, Store, StoreError};

/// The first entry's name: `tar tvf` shows it before anything else, so whoever holds the
/// file learns it is secret.
pub const NOTE: &str = "UMC-BACKUP-CONTAINS-SECRETS";
/// The [`Manifest`]'s entry name.
pub const MANIFEST: &str = "backup.json";
/// The database snapshot's entry name, the same as the database's in the data directory.
pub const DATABASE: &str = "umc.redb";
/// Version of this container format.
pub const FORMAT: u32 = 1;

const NOTE_TEXT: &str = "This umc backup contains secrets: the archive signing keys \
(signing-key.asc), the admin token (admin.token), and in umc.redb every node's apt password.\n\
Anyone holding it can sign packages every node installs as root. Keep it like a private key.\n\
Restore it with: umcd restore <this file> --data-dir <new directory>\n";

/// Why a backup could not be written or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing a file, or the archive, failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done ("reading /var/lib/umc", "writing umc.redb into the backup").
        what: String,
        /// The I/O error itself.
        #[source]
        source: std::io::Error,
    },
    /// `backup.json` is not a manifest this umcd can read.
    #[error("backup.json: {0}")]
    Manifest(#[source] serde_json::Error),
    /// The restored database could not be opened or resynced.
    #[error("{what}: {source}")]
    Store {
        /// What was being done ("opening <path>", the resync).
        what: String,
        /// The store's error.
        #[source]
        source: Box<StoreError>,
    },
    /// The input is not a complete umc backup this umcd reads, or the target is not empty.
    #[error("{0}")]
    Invalid(String),
}

type Result<T, E = BackupError> = std::result::Result<T, E>;

/// Adds what was being done to an I/O error, as `BackupError::Io`.
trait Doing<T> {
    fn doing(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Doing<T> for std::io::Result<T> {
    fn doing(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| BackupError::Io {
            what: what(),
            source,
        })
    }
}

fn invalid<T>(message: String) -> Result<T> {
    Err(BackupError::Invalid(message))
}

/// `backup.json`: what the backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The container's [`FORMAT`]: a umcd refuses a newer one rather than misread it.
    pub format: u32,
    /// The database schema version of `umc.redb`.
    pub schema: u64,
    /// The model generation the snapshot saw.
    pub generation: u64,
    /// That generation's commit time (Unix seconds).
    pub generation_time: i64,
    /// When the backup was taken (the server's clock).
    pub taken_at: i64,
    /// The umcd that wrote it.
    pub umcd: String,
    /// The files after the database, in order.
    pub files: Vec<String>,
}

impl Manifest {
    /// The manifest of snapshot `snap`, taken at `taken_at`, followed by `files`, written by
    /// this umcd.
    pub fn new(snap: &Snapshot, taken_at: i64, files: Vec<String>) -> Manifest {
        Manifest {
            format: FORMAT,
            schema: snap.schema,
            generation: snap.generation,
            generation_time: snap.time,
            taken_at,
            umcd: env!("CARGO_PKG_VERSION").to_string(),
            files,
        }
    }
}

/// The data directory's files that go into a backup besides the database: plain files, not
/// hidden, not the database or its migration copies, not half-written `.tmp` files.
pub fn data_files(data: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let reading = || format!("reading {}", data.display());
    for e in std::fs::read_dir(data).doing(reading)? {
        let e = e.doing(reading)?;
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.')
            || name.starts_with(DATABASE)
            || name.ends_with(".tmp")
            || !e.file_type().doing(reading)?.is_file()
        {
            continue;
        }
        out.push(name);
    }
    out.sort();
    Ok(out)
}

fn append(
    tar: &mut tar::Builder<impl Write>,
    name: &str,
    mtime: i64,
    data: &mut impl Read,
    size: u64,
) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o600);
    h.set_mtime(mtime.max(0) as u64);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, name, data)
        .doing(|| format!("writing {name} into the backup"))?;
    Ok(())
}

/// Writes the container: the note, `manifest`, the snapshot at `db`, then `manifest.files`
/// read from `data`.
pub fn write(out: impl Write, manifest: &Manifest, db: &Path, data: &Path) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let t = manifest.taken_at;
    append(
        &mut tar,
        NOTE,
        t,
        &mut NOTE_TEXT.as_bytes(),
        NOTE_TEXT.len() as u64,
    )?;
    let m = serde_json::to_vec_pretty(manifest).map_err(BackupError::Manifest)?;
    append(&mut tar, MANIFEST, t, &mut m.as_slice(), m.len() as u64)?;
    let mut f = std::fs::File::open(db).doing(|| format!("opening {}", db.display()))?;
    let size = f
        .metadata()
        .doing(|| format!("reading {}", db.display()))?
        .len();
    append(&mut tar, DATABASE, t, &mut f, size)?;
    for name in &manifest.files {
        let path = data.join(name);
        // Read whole: a small file that could be replaced (key rotation) while we read it.
        let bytes = std::fs::read(&path).doing(|| format!("reading {}", path.display()))?;
        append(&mut tar, name, t, &mut bytes.as_slice(), bytes.len() as u64)?;
    }
    let writing = || "writing the backup".to_string();
    tar.into_inner().doing(writing)?.flush().doing(writing)?;
    Ok(())
}

/// Checks a container completely (every entry readable to its end, the manifest and the files
/// it lists present) and returns its manifest.
pub fn verify(input: impl Read) -> Result<Manifest> {
    let mut manifest: Option<Manifest> = None;
    let mut seen = Vec::new();
    let mut ar = tar::Archive::new(input);
    for e in ar.entries().doing(|| "reading the backup".into())? {
        let mut e = e.doing(|| "reading the backup".into())?;
        let name = e
            .path()
            .doing(|| "reading the backup".into())?
            .to_string_lossy()
            .into_owned();
        let mut buf = Vec::new();
        e.read_to_end(&mut buf)
            .doing(|| format!("reading {name} from the backup"))?;
        if name == MANIFEST {
            manifest = Some(serde_json::from_slice(&buf).map_err(BackupError::Manifest)?);
        }
        seen.push(name);
    }
    let Some(m) = manifest else {
        return invalid("not a umc backup: no backup.json".into());
    };
    for want in [DATABASE]
        .into_iter()
        .chain(m.files.iter().map(String::as_str))
    {
        if !seen.iter().any(|s| s == want) {
            return invalid(format!("the backup is incomplete: {want} is missing"));
        }
    }
    Ok(m)
}

/// What [`restore`] did.
#[derive(Debug)]
pub struct Restored {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// Every file written into the data directory, the database included, in backup order.
    pub files: Vec<PathBuf>,
    /// The schema migration opening the restored database ran, when it was older.
    pub migration: Option<Migration>,
    /// The generation every package moved to.
    pub generation: u64,
    /// The change line recorded for it.
    pub reason: String,
}

fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains('/')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
}

/// Recreates a server's data directory `data` (absent or empty) from the backup `input`, then
/// moves every package above anything nodes may have seen (see [`Store::resync`]): a snapshot
/// can be older than what the nodes fetched since.
///
/// A restore that fails leaves `data` as it found it (absent, or empty), so it can be retried.
pub fn restore(input: impl Read, data: &Path, now: i64) -> Result<Restored> {
    let existed = data.exists();
    if existed {
        let mut entries =
            std::fs::read_dir(data).doing(|| format!("reading {}", data.display()))?;
        if entries.next().is_some() {
            return invalid(format!(
                "{} is not empty; restore into a new data directory (move the old one away first)",
                data.display()
            ));
        }
    }
    std::fs::create_dir_all(data).doing(|| format!("creating {}", data.display()))?;
    let restored = restore_into(input, data, now);
    if restored.is_err() {
        // Everything in it is ours: it was absent or empty.
        if existed {
            if let Ok(entries) = std::fs::read_dir(data) {
                for e in entries.flatten() {
                    let p = e.path();
                    let _ = if e.file_type().is_ok_and(|t| t.is_dir()) {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                }
            }
        } else {
            let _ = std::fs::remove_dir_all(data);
        }
    }
    restored
}

fn restore_into(input: impl Read, data: &Path, now: i64) -> Result<Restored> {
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700))
        .doing(|| format!("securing {}", data.display()))?;
    let mut manifest: Option<Manifest> = None;
    let mut files = Vec::new();
    let mut ar = tar::Archive::new(input);
    for e in ar.entries().doing(|| "reading the backup".into())? {
        let mut e = e.doing(|| "reading the backup".into())?;
        let name = e
            .path()
            .doing(|| "reading the backup".into())?
            .to_string_lossy()
            .into_owned();
        if e.header().entry_type() != tar::EntryType::Regular || !safe_name(&name) {
            return invalid(format!("not a umc backup: unexpected entry '{name}'"));
        }
        if name == NOTE {
            continue;
        }
        if name == MANIFEST {
            let mut buf = Vec::new();
            e.read_to_end(&mut buf)
                .doing(|| format!("reading {name} from the backup"))?;
            let m: Manifest = serde_json::from_slice(&buf).map_err(BackupError::Manifest)?;
            if m.format > FORMAT {
                return invalid(format!(
                    "backup format {} is newer than this umcd reads ({FORMAT}); restore it with a newer umcd",
                    m.format
                ));
            }
            manifest = Some(m);
            continue;
        }
        let path = data.join(&name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .doing(|| format!("creating {}", path.display()))?;
        std::io::copy(&mut e, &mut f).doing(|| format!("writing {}", path.display()))?;
        f.sync_all()
            .doing(|| format!("writing {}", path.display()))?;
        files.push(path);
    }
    let Some(manifest) = manifest else {
        return invalid("not a umc backup: no backup.json".into());
    };
    for want in [DATABASE, SIGNING_KEY_FILE] {
        if !data.join(want).exists() {
            return invalid(format!("the backup is incomplete: {want} is missing"));
        }
    }
    let db = data.join(DATABASE);
    let store = Store::open(&db).map_err(|e| BackupError::Store {
        what: format!("opening {}", db.display()),
        source: Box::new(e),
    })?;
    let migration = store.migration().cloned();
    let reason = format!(
        "umcd restored a backup taken at generation {} ({}); every package moves above what nodes may have seen",
        manifest.generation,
        crate::time::release_date(manifest.taken_at),
    );
    let generation = store
        .resync("umcd", &reason, now)
        .map_err(|e| BackupError::Store {
            what: "moving every package above what nodes may have seen".into(),
            source: Box::new(e),
        })?;
    Ok(Restored {
        manifest,
        files,
        migration,
        generation,
        reason,
    })
}
