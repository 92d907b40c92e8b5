//! A backup of the running server (`GET /api/v1/backup`): a consistent copy of the database,
//! taken in one read transaction, written out with the data directory's key and token files as
//! the container `crate::backup` describes.

use std::io::Write;
use std::path::PathBuf;

use crate::backup::{self, Manifest};
use crate::store::random_token;

use super::{App, AppError, now};

/// A database copy waiting to be written as a backup. The copy (0600, in the data directory)
/// is removed when this is dropped, written or not.
pub struct Backup {
    manifest: Manifest,
    db: TempFile,
    data: PathBuf,
}

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl App {
    /// Copies the database as it is now, and lists the data directory's files. Blocking IO.
    pub fn backup(&self) -> Result<Backup, AppError> {
        let data = self.config.data_dir.clone();
        let taken_at = now();
        let db = TempFile(data.join(format!(".backup-{}.redb", random_token())));
        let snap = self.store.snapshot(&db.0)?;
        let files = backup::data_files(&data).map_err(AppError::internal)?;
        Ok(Backup {
            manifest: Manifest::new(&snap, taken_at, files),
            db,
            data,
        })
    }
}

impl Backup {
    /// The model generation the copy holds.
    pub fn generation(&self) -> u64 {
        self.manifest.generation
    }

    /// Writes the container to `out` and flushes it. Blocking IO.
    pub fn write(self, out: impl Write) -> Result<(), AppError> {
        backup::write(out, &self.manifest, &self.db.0, &self.data).map_err(AppError::internal)
    }
}
