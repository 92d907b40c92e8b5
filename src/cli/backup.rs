//! `umc-admin backup <file>`: saves `GET /api/v1/backup` (mode 0600), checks it is complete,
//! and says what it holds. Restore with `umcd restore <file> --data-dir <dir>`.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use clap::Args;

use super::{CliResult, Failure};
use crate::backup::BackupError;
use crate::client::Client;

#[derive(Args)]
pub(super) struct BackupArgs {
    /// Where to write the backup (a tar archive; replaced only once complete)
    pub file: PathBuf,
}

fn io_failure(what: String) -> Failure {
    Failure {
        code: 1,
        message: what,
    }
}

pub(super) fn run(c: &Client, a: BackupArgs) -> CliResult {
    let file = &a.file;
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let tmp = file.with_file_name(format!(".{name}.partial"));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io_failure(format!("creating {}: {e}", tmp.display())))?;
    // An existing file keeps its mode on open: make sure the secrets are private.
    out.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io_failure(format!("securing {}: {e}", tmp.display())))?;
    let written = {
        let mut w = std::io::BufWriter::new(&mut out);
        let n = c.backup(&mut w);
        let n = n.and_then(|n| {
            w.flush()
                .map(|()| n)
                .map_err(|e| crate::client::ClientError::Api {
                    status: 0,
                    message: format!("writing {}: {e}", tmp.display()),
                })
        });
        match n {
            Ok(n) => n,
            Err(e) => {
                drop(w);
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
        }
    };
    let checked = out
        .sync_all()
        .and_then(|()| std::fs::File::open(&tmp))
        .map_err(|source| BackupError::Io {
            what: format!("writing {}", tmp.display()),
            source,
        })
        .and_then(crate::backup::verify);
    let manifest = match checked {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_failure(format!("the backup is not usable: {e}")));
        }
    };
    std::fs::rename(&tmp, file)
        .map_err(|e| io_failure(format!("writing {}: {e}", file.display())))?;
    outln!(
        "wrote {} ({written} bytes): generation {} ({}), database schema {}, files {}",
        file.display(),
        manifest.generation,
        crate::time::release_date(manifest.generation_time),
        manifest.schema,
        manifest.files.join(", "),
    );
    errln!(
        "umc-admin: {} contains SECRETS (the archive signing keys, the admin token and the nodes' apt passwords); keep it like a private key",
        file.display()
    );
    outln!(
        "restore: umcd restore {} --data-dir <new directory>",
        file.display()
    );
    Ok(())
}
