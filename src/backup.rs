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

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::sign::SIGNING_KEY_FILE;
use crate::store::{Migration, Snapshot, Store};

pub const NOTE: &str = "UMC-BACKUP-CONTAINS-SECRETS";
pub const MANIFEST: &str = "backup.json";
pub const DATABASE: &str = "umc.redb";
/// Version of this container format.
pub const FORMAT: u32 = 1;

const NOTE_TEXT: &str = "This umc backup contains secrets: the archive signing keys \
(signing-key.asc), the admin token (admin.token), and in umc.redb every node's apt password.\n\
Anyone holding it can sign packages every node installs as root. Keep it like a private key.\n\
Restore it with: umcd restore <this file> --data-dir <new directory>\n";

/// `backup.json`: what the backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The database schema version of `umc.redb`.
    pub schema: u64,
    /// The model generation the snapshot saw, and its commit time.
    pub generation: u64,
    pub generation_time: i64,
    /// When the backup was taken (the server's clock).
    pub taken_at: i64,
    /// The umcd that wrote it.
    pub umcd: String,
    /// The files after the database, in order.
    pub files: Vec<String>,
}

impl Manifest {
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
    for e in std::fs::read_dir(data).with_context(|| format!("reading {}", data.display()))? {
        let e = e?;
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.')
            || name.starts_with(DATABASE)
            || name.ends_with(".tmp")
            || !e.file_type()?.is_file()
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
        .with_context(|| format!("writing {name} into the backup"))?;
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
    let m = serde_json::to_vec_pretty(manifest)?;
    append(&mut tar, MANIFEST, t, &mut m.as_slice(), m.len() as u64)?;
    let mut f = std::fs::File::open(db).with_context(|| format!("opening {}", db.display()))?;
    let size = f.metadata()?.len();
    append(&mut tar, DATABASE, t, &mut f, size)?;
    for name in &manifest.files {
        let path = data.join(name);
        // Read whole: a small file that could be replaced (key rotation) while we read it.
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        append(&mut tar, name, t, &mut bytes.as_slice(), bytes.len() as u64)?;
    }
    tar.into_inner()?.flush()?;
    Ok(())
}

/// Checks a container completely (every entry readable to its end, the manifest and the files
/// it lists present) and returns its manifest.
pub fn verify(input: impl Read) -> Result<Manifest> {
    let mut manifest: Option<Manifest> = None;
    let mut seen = Vec::new();
    let mut ar = tar::Archive::new(input);
    for e in ar.entries().context("reading the backup")? {
        let mut e = e.context("reading the backup")?;
        let name = e.path()?.to_string_lossy().into_owned();
        let mut buf = Vec::new();
        e.read_to_end(&mut buf)
            .with_context(|| format!("reading {name} from the backup"))?;
        if name == MANIFEST {
            manifest = Some(serde_json::from_slice(&buf).context("backup.json")?);
        }
        seen.push(name);
    }
    let m = manifest.context("not a umc backup: no backup.json")?;
    for want in [DATABASE]
        .into_iter()
        .chain(m.files.iter().map(String::as_str))
    {
        if !seen.iter().any(|s| s == want) {
            bail!("the backup is incomplete: {want} is missing");
        }
    }
    Ok(m)
}

/// What [`restore`] did.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    pub files: Vec<PathBuf>,
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
            std::fs::read_dir(data).with_context(|| format!("reading {}", data.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} is not empty; restore into a new data directory (move the old one away first)",
                data.display()
            );
        }
    }
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
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
        .with_context(|| format!("securing {}", data.display()))?;
    let mut manifest: Option<Manifest> = None;
    let mut files = Vec::new();
    let mut ar = tar::Archive::new(input);
    for e in ar.entries().context("reading the backup")? {
        let mut e = e.context("reading the backup")?;
        let name = e.path()?.to_string_lossy().into_owned();
        if e.header().entry_type() != tar::EntryType::Regular || !safe_name(&name) {
            bail!("not a umc backup: unexpected entry '{name}'");
        }
        if name == NOTE {
            continue;
        }
        if name == MANIFEST {
            let mut buf = Vec::new();
            e.read_to_end(&mut buf)?;
            let m: Manifest = serde_json::from_slice(&buf).context("backup.json")?;
            if m.format > FORMAT {
                bail!(
                    "backup format {} is newer than this umcd reads ({FORMAT}); restore it with a newer umcd",
                    m.format
                );
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
            .with_context(|| format!("creating {}", path.display()))?;
        std::io::copy(&mut e, &mut f).with_context(|| format!("writing {}", path.display()))?;
        f.sync_all()?;
        files.push(path);
    }
    let manifest = manifest.context("not a umc backup: no backup.json")?;
    for want in [DATABASE, SIGNING_KEY_FILE] {
        if !data.join(want).exists() {
            bail!("the backup is incomplete: {want} is missing");
        }
    }
    let db = data.join(DATABASE);
    let store = Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
    let migration = store.migration().cloned();
    let reason = format!(
        "umcd restored a backup taken at generation {} ({}); every package moves above what nodes may have seen",
        manifest.generation,
        crate::repo::release_date(manifest.taken_at),
    );
    let generation = store.resync("umcd", &reason, now)?;
    Ok(Restored {
        manifest,
        files,
        migration,
        generation,
        reason,
    })
}
