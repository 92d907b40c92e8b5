//! The one handle to the redb file, and what keeps umcd serving when the file misbehaves.
//!
//! Every transaction of the store starts here (`Db::begin_read`, `Db::begin_write`), so this is
//! where faults are noticed and handled:
//!
//! - **I/O errors.** redb latches its first I/O error (a full disk, say): from then on every write
//!   transaction, and every read that misses its page cache, fails with "Previous I/O error
//!   occurred", until the `Database` is closed and opened again. A commit that fails with a
//!   storage error, a transaction that met one, or a `begin_write` refused by the latch marks the
//!   store *degraded* (the error is the reason `/healthz` gives) and reopens the file at once, so
//!   reads keep working. The next commit that succeeds clears it: writes come back when space
//!   does, without a restart.
//! - **Panics and corruption.** redb panics (or, in release builds, returns `Corrupted`) on some
//!   damaged pages. A panic unwinding through a live transaction, or a `Corrupted` error, marks
//!   the store *failed*: every access then answers [`StoreError::Unavailable`] (503) instead of
//!   panicking again. At most every [`RECHECK`] the file is reopened with a full integrity
//!   check; when that passes, the store serves again, and when the file is corrupt it stays
//!   failed (restart or restore).
//!
//! Reopening needs the old handle closed first (redb locks the file). Read transactions do not
//! keep it open (they fail with "database closed" once); a live write transaction would, so a
//! reopen only runs when none is live, and is retried otherwise.

use std::cell::Cell;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::{
    CommitError, Database, DatabaseError, ReadableDatabase, StorageError, TransactionError,
};

use super::StoreError;
use super::meta::{Meta, MetaRead, MetaWrite};

/// Least time between two reopen attempts that follow a failed one, and between integrity
/// checks after a panic: a fault costs at most this often, never every request.
pub(super) const RECHECK: Duration = Duration::from_secs(5);

/// What `/healthz` says about the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// Writes (or every access) fail; the reason, for operators.
    Degraded(String),
}

#[derive(Default)]
struct State {
    /// Why writes fail: the last storage error of a write. Cleared by a successful commit.
    io: Option<String>,
    /// A panic or corruption: nothing is served until an integrity check passes.
    failed: Option<String>,
    /// The file is corrupt (an integrity check failed): no more checks until a restart.
    corrupt: bool,
    /// The handle must be replaced before it is used again.
    reopen: bool,
    /// When the last reopen failed, or the last integrity check ran.
    last_attempt: Option<Instant>,
    /// When the health probe last wrote.
    last_probe: Option<Instant>,
}

/// The store's database handle, reopened after faults (see the module docs).
pub(super) struct Db {
    path: PathBuf,
    handle: RwLock<Option<Database>>,
    state: Mutex<State>,
}

thread_local! {
    /// The last redb error about the file that this thread turned into a `StoreError` while a
    /// transaction was live; the transaction's end hands it to its `Db`.
    static SEEN: Cell<Option<(Fault, String)>> = const { Cell::new(None) };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Io,
    Corrupt,
}

fn classify(e: &StorageError) -> Option<Fault> {
    match e {
        StorageError::Io(_) | StorageError::PreviousIo | StorageError::Backend(_) => {
            Some(Fault::Io)
        }
        StorageError::Corrupted(_) => Some(Fault::Corrupt),
        _ => None,
    }
}

/// Redb errors that say something about the file, remembered for the live transaction.
pub(super) trait Observe {
    fn observe(&self);
}

fn seen(e: &StorageError) {
    if let Some(f) = classify(e) {
        SEEN.with(|s| {
            let old = s.take();
            // Corruption outranks an I/O error; the first of a kind is the informative one.
            s.set(match old {
                Some(o) if o.0 == Fault::Corrupt || o.0 == f => Some(o),
                _ => Some((f, e.to_string())),
            });
        });
    }
}

impl Observe for StorageError {
    fn observe(&self) {
        seen(self)
    }
}
impl Observe for TransactionError {
    fn observe(&self) {
        if let TransactionError::Storage(e) = self {
            seen(e)
        }
    }
}
impl Observe for CommitError {
    fn observe(&self) {
        if let CommitError::Storage(e) = self {
            seen(e)
        }
    }
}
impl Observe for DatabaseError {
    fn observe(&self) {
        if let DatabaseError::Storage(e) = self {
            seen(e)
        }
    }
}
impl Observe for redb::TableError {
    fn observe(&self) {
        if let redb::TableError::Storage(e) = self {
            seen(e)
        }
    }
}

/// Creates `path` with mode 0600 when it is missing (returns false). An existing file must not
/// be empty, and is made 0600 (older umcd left it 0644); returns true.
pub(super) fn prepare(path: &Path) -> Result<bool, StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |what, e| StoreError::io(what, path, e);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = std::fs::metadata(path).map_err(|e| io("reading", e))?;
            if meta.is_file() && meta.len() == 0 {
                return Err(StoreError::EmptyFile(path.to_path_buf()));
            }
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| io("securing", e))?;
            }
            Ok(true)
        }
        Err(e) => Err(io("creating", e)),
    }
}

/// Opens (creating when new) the database at `path`; with `check`, every page checksum of the
/// committed trees is verified first (`Builder::set_check_integrity_on_open`). A panic inside
/// redb while opening is reported as corruption.
pub(super) fn open(path: &Path, check: bool) -> Result<Database, StoreError> {
    let mut builder = Database::builder();
    builder.set_check_integrity_on_open(check);
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder.create(path)));
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(DatabaseError::Storage(StorageError::Corrupted(m)))) => {
            Err(StoreError::CorruptFile(m))
        }
        Ok(Err(DatabaseError::DatabaseAlreadyOpen)) => Err(StoreError::Locked),
        Ok(Err(e)) => Err(StoreError::Db(e.into())),
        Err(p) => Err(StoreError::CorruptFile(format!(
            "redb panicked reading it: {}",
            panic_text(&*p)
        ))),
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

impl Db {
    pub(super) fn new(path: &Path, db: Database) -> Db {
        Db {
            path: path.to_path_buf(),
            handle: RwLock::new(Some(db)),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn begin_read(&self) -> Result<ReadTx<'_>, StoreError> {
        self.ready()?;
        let handle = self.handle.read().unwrap_or_else(PoisonError::into_inner);
        let db = handle.as_ref().ok_or_else(|| self.unavailable())?;
        SEEN.with(|s| s.set(None));
        let tx = db.begin_read()?;
        Ok(ReadTx {
            tx,
            _end: End(self),
        })
    }

    pub(super) fn begin_write(&self) -> Result<WriteTx<'_>, StoreError> {
        let mut retried = false;
        loop {
            self.ready()?;
            let began = {
                let handle = self.handle.read().unwrap_or_else(PoisonError::into_inner);
                let db = handle.as_ref().ok_or_else(|| self.unavailable())?;
                db.begin_write()
            };
            match began {
                Ok(tx) => {
                    SEEN.with(|s| s.set(None));
                    return Ok(WriteTx { tx, end: End(self) });
                }
                // The latch of an earlier failure (or the allocator state a failed commit
                // discarded): reopen and try once more.
                Err(TransactionError::Storage(e)) if !retried && classify(&e).is_some() => {
                    retried = true;
                    self.note_io(&e.to_string());
                }
                Err(e) => {
                    e.observe();
                    return Err(e.into());
                }
            }
        }
    }

    /// Reopens the file when a fault asked for it; fails while the store is failed.
    fn ready(&self) -> Result<(), StoreError> {
        let reopen = self.state().reopen;
        if reopen {
            self.reopen();
        }
        let s = self.state();
        match &s.failed {
            Some(_) => Err(self.unavailable_with(&s)),
            None if s.reopen => Err(self.unavailable_with(&s)),
            None => Ok(()),
        }
    }

    fn unavailable(&self) -> StoreError {
        let s = self.state();
        self.unavailable_with(&s)
    }

    fn unavailable_with(&self, s: &State) -> StoreError {
        let why = s
            .failed
            .clone()
            .or_else(|| s.io.clone())
            .unwrap_or_else(|| "the database is being reopened".into());
        StoreError::Unavailable(why)
    }

    /// A storage error: degraded until a commit succeeds, and the file is reopened before the
    /// next access.
    fn note_io(&self, why: &str) {
        let mut s = self.state();
        if s.io.is_none() {
            tracing::error!(
                "database I/O error: {why}; reopening {}",
                self.path.display()
            );
            s.io = Some(format!("database I/O error: {why}"));
        }
        s.reopen = true;
        // A fresh fault deserves a reopen at once, whatever the last attempt did.
        s.last_attempt = None;
        // The health probe waits a while after a failure: a tiny write that fits while the
        // edit that just failed would not must not flip /healthz back at once.
        s.last_probe = Some(Instant::now());
    }

    /// A panic or corruption: refuse everything until an integrity check passes.
    fn note_failed(&self, why: String) {
        let mut s = self.state();
        if s.failed.is_none() {
            tracing::error!("{why}; refusing database access until an integrity check passes");
            s.failed = Some(why);
            s.reopen = true;
        }
    }

    fn note_commit_ok(&self) {
        let mut s = self.state();
        if s.io.take().is_some() {
            tracing::info!("database writes work again");
        }
    }

    /// Closes and reopens the file (with an integrity check after a panic or corruption).
    /// Runs at most every [`RECHECK`] after a failed attempt or a check.
    fn reopen(&self) {
        let mut handle = self.handle.write().unwrap_or_else(PoisonError::into_inner);
        let check = {
            let s = self.state();
            if !s.reopen || s.corrupt {
                return;
            }
            if s.last_attempt.is_some_and(|t| t.elapsed() < RECHECK) {
                return;
            }
            s.failed.is_some()
        };
        // Closing it first: redb locks the file. A live write transaction defers the close, and
        // the open below then fails with "already open"; the next access tries again.
        if let Some(old) = handle.take() {
            let _ = old.close();
        }
        let started = Instant::now();
        let opened = open(&self.path, check);
        let mut s = self.state();
        match opened {
            Ok(db) => {
                *handle = Some(db);
                s.reopen = false;
                if check {
                    s.last_attempt = Some(Instant::now());
                    tracing::warn!(
                        "reopened {} after an integrity check ({:?}); serving again",
                        self.path.display(),
                        started.elapsed()
                    );
                    s.failed = None;
                } else {
                    s.last_attempt = None;
                    tracing::info!("reopened {}", self.path.display());
                }
            }
            Err(e) => {
                // Still locked by our own old handle, whose live write transaction defers its
                // close: that clears as soon as the transaction ends, so no wait.
                if !matches!(e, StoreError::Locked) {
                    s.last_attempt = Some(Instant::now());
                }
                if let StoreError::CorruptFile(_) = e {
                    s.corrupt = true;
                    s.failed = Some(e.to_string());
                }
                tracing::error!("reopening {}: {e}", self.path.display());
            }
        }
    }

    fn health(&self) -> Health {
        let s = self.state();
        match s.failed.clone().or_else(|| s.io.clone()) {
            Some(why) => Health::Degraded(why),
            None => Health::Ok,
        }
    }

    /// Whether a health probe should write now (at most every [`RECHECK`], while writes fail).
    fn probe_due(&self) -> bool {
        let mut s = self.state();
        let due = s.io.is_some()
            && s.failed.is_none()
            && s.last_probe.is_none_or(|t| t.elapsed() >= RECHECK);
        if due {
            s.last_probe = Some(Instant::now());
        }
        due
    }

    /// Hands a transaction's end to the fault tracking: a panic unwinding through it, or a
    /// redb error the store met while it was live.
    fn ended(&self) {
        if std::thread::panicking() {
            self.note_failed(
                "a panic interrupted a database transaction (the log has it)".to_string(),
            );
            return;
        }
        match SEEN.with(|s| s.take()) {
            Some((Fault::Corrupt, why)) => self.note_failed(format!("database: {why}")),
            Some((Fault::Io, why)) => self.note_io(&why),
            None => {}
        }
    }
}

impl super::Store {
    /// The store's health, from what the last transactions met; no I/O.
    pub fn health(&self) -> Health {
        self.db.health()
    }

    /// [`Store::health`], after a tiny write (at most every [`RECHECK`]) while writes fail, so
    /// that a server without traffic also notices that space came back.
    pub fn probe_health(&self) -> Health {
        if self.db.probe_due() {
            let probe = || -> Result<(), StoreError> {
                let tx = self.db.begin_write()?;
                {
                    let mut meta = tx.open_table(super::META)?;
                    let n = meta.counter(Meta::WriteProbe)?;
                    meta.set(Meta::WriteProbe, n.wrapping_add(1))?;
                }
                tx.commit()?;
                Ok(())
            };
            if let Err(e) = probe() {
                tracing::warn!("health probe: {e}");
            }
        }
        self.db.health()
    }
}

/// Tells the `Db` how a transaction ended when it is dropped (fields drop in order: the
/// transaction itself first).
struct End<'a>(&'a Db);

impl Drop for End<'_> {
    fn drop(&mut self) {
        self.0.ended();
    }
}

/// A read transaction of the store (derefs to redb's).
pub(super) struct ReadTx<'a> {
    tx: redb::ReadTransaction,
    _end: End<'a>,
}

impl Deref for ReadTx<'_> {
    type Target = redb::ReadTransaction;
    fn deref(&self) -> &redb::ReadTransaction {
        &self.tx
    }
}

impl super::Tables for ReadTx<'_> {
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: redb::TableDefinition<K, V>,
    ) -> Result<impl redb::ReadableTable<K, V>, StoreError> {
        super::Tables::table(&self.tx, def)
    }
}

impl super::Tables for WriteTx<'_> {
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: redb::TableDefinition<K, V>,
    ) -> Result<impl redb::ReadableTable<K, V>, StoreError> {
        super::Tables::table(&self.tx, def)
    }
}

/// A write transaction of the store (derefs to redb's); `commit` reports how it went.
pub(super) struct WriteTx<'a> {
    tx: redb::WriteTransaction,
    end: End<'a>,
}

impl Deref for WriteTx<'_> {
    type Target = redb::WriteTransaction;
    fn deref(&self) -> &redb::WriteTransaction {
        &self.tx
    }
}

impl WriteTx<'_> {
    pub(super) fn commit(self) -> Result<(), CommitError> {
        let WriteTx { tx, end } = self;
        let db = end.0;
        match tx.commit() {
            Ok(()) => {
                drop(end);
                db.note_commit_ok();
                Ok(())
            }
            Err(e) => {
                if let CommitError::Storage(s) = &e {
                    match classify(s) {
                        Some(Fault::Corrupt) => db.note_failed(format!("database: {s}")),
                        Some(Fault::Io) => {
                            SEEN.with(|c| c.set(None));
                            drop(end);
                            db.note_io(&s.to_string());
                            // Reopen now, not at the next access: reads keep working.
                            db.reopen();
                        }
                        None => {}
                    }
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::*;
    use crate::store::tests::{add, store};
    use crate::store::{EditOptions, Store};

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn a_panic_in_a_transaction_is_refused_until_a_check_passes_and_never_per_request() {
        let (_dir, s) = store();
        s.edit("sh", &[add("a.example.com")], 10, EditOptions::default())
            .expect("edit");
        let boom = || {
            catch_unwind(AssertUnwindSafe(|| {
                let _tx = s.db.begin_read().expect("read");
                panic!("boom inside a transaction");
            }))
        };
        assert!(boom().is_err());
        assert!(matches!(s.health(), Health::Degraded(ref why) if why.contains("panic")));
        // The next access reopens the file with an integrity check; it passes, so it serves.
        assert_eq!(s.model().expect("model after the check").0, 1);
        assert_eq!(s.health(), Health::Ok);
        // Another panic right after: refused, without touching redb, until RECHECK passed.
        assert!(boom().is_err());
        for _ in 0..10 {
            assert!(matches!(s.model(), Err(StoreError::Unavailable(_))));
            assert!(matches!(
                s.edit("sh", &[add("b.example.com")], 11, EditOptions::default()),
                Err(StoreError::Unavailable(_))
            ));
        }
        assert!(matches!(s.health(), Health::Degraded(_)));
    }

    #[test]
    fn the_database_and_its_snapshot_are_0600_whatever_the_umask() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("umc.redb");
        let s = Store::open(&path).expect("open");
        assert_eq!(mode(&path), 0o600);
        let snap = dir.path().join(".backup-x.redb");
        s.snapshot(&snap).expect("snapshot");
        assert_eq!(mode(&snap), 0o600);
        drop(s);
        // An older umcd's 0644 file is made 0600.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        drop(Store::open(&path).expect("reopen"));
        assert_eq!(mode(&path), 0o600);
        // The pre-migration copy too.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let copy = super::super::migrate::keep_copy(&path, 1).expect("copy");
        assert_eq!(mode(&copy), 0o600);
    }

    #[test]
    fn an_empty_file_is_refused_not_made_a_new_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("umc.redb");
        std::fs::write(&path, b"").expect("empty");
        assert!(matches!(Store::open(&path), Err(StoreError::EmptyFile(_))));
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), 0);
    }
}
