//! The only module that touches redb: typed tables, the schema version, edits as
//! transactions, and the history index that changelogs and versions derive from.
//!
//! Storage records are private serde types (`records`), separate from `model` and `api`;
//! every table is in `tables`, every `meta_v1` key in `meta`.

mod audit;
mod backup;
mod catalog;
mod db;
mod history;
mod keys;
mod meta;
mod migrate;
mod records;
mod reports;
mod tables;
mod users;

pub use backup::Snapshot;
pub use history::{Export, HistoryError, IMPORT_CLOCK_SKEW, IMPORT_COUNTER_SLACK};
pub use migrate::{Migration, audit_started, backup_path};

pub use reports::{IncomingReport, StoredReport};

pub use catalog::{CatalogHit, CatalogMeta};

pub use db::Health;

pub use keys::{KeyChange, KeyRecord, ServingInputs};

pub use users::{BOOTSTRAP_LABEL, Caller, PasswordRecord};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use redb::{ReadableTable, TableDefinition};
use sha2::{Digest, Sha256};

use meta::{Meta, MetaRead, MetaWrite};
use records::{
    ChangeRec, GenRec, NodeRec, TaskRec, Templates, TouchRec, decode, encode, node_from, node_rec,
    put_task, task_from,
};
use tables::{API_TOKENS, AUDIT, GENERATIONS, META, NODES, TASKS, TEMPLATES, TIMES, TOUCHES, VARS};

use crate::api::{LogEntry, Op};
use crate::model::{Change, Entity, Model, ModelError, Node, TokenSource};
use crate::repo::{CHANGELOG_LIMIT, HistoryItem, HostData};

/// Bump with a migration step in `migrate::run` whenever a table's format changes.
/// 2: audit records carry `started`.
/// 3: task files name their templates by sha256 (`templates_v1`) instead of holding them.
pub const SCHEMA_VERSION: u64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Model(#[from] ModelError),
    /// redb failed (see `store::db` for how faults are handled).
    #[error("database: {0}")]
    Db(#[source] redb::Error),
    /// A file operation on the database, its snapshot or its pre-migration copy failed.
    #[error("database: {what} {}: {source}", path.display())]
    Io {
        /// What was being done ("creating", "copying the database to", ...).
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A record could not be encoded.
    #[error("database: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("database record '{record}' is corrupt: {source}")]
    Corrupt {
        /// Which record ("audit 4", "task 'web' file /etc/x", ...).
        record: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A snapshot met a table `tables::ALL` does not list.
    #[error("database: table '{0}' is not in store::tables::ALL; a backup would miss it")]
    UnlistedTable(String),
    #[error("database: multimap table '{0}' is not covered by backups")]
    UnlistedMultimapTable(String),
    #[error("database: no migration from database schema version {0}")]
    NoMigration(u64),
    /// An edit would need a generation above `u64::MAX`.
    #[error("the generation counter is exhausted (generation {generation}, floor {floor})")]
    GenerationsExhausted { generation: u64, floor: u64 },
    /// A user holds as many API tokens as it may (`limit` is `app::auth`'s).
    #[error("user '{user}' already holds {held} tokens (at most {limit}); revoke one first")]
    TokenLimit {
        user: String,
        held: usize,
        limit: usize,
    },
    /// A task names a package no catalog knows (the message carries the suggestions).
    #[error("{0}")]
    UnknownPackage(String),
    #[error(
        "database schema version {found} is newer than this umcd supports (schema {SCHEMA_VERSION}): it was written by a newer umcd; run that umcd (or a newer one), or restore a backup made for this version"
    )]
    TooNew { found: u64 },
    /// The request names something that does not exist (a user, a token).
    #[error("{0}")]
    NotFound(String),
    /// The request would create something that exists.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// The database cannot be used now (an I/O fault, a panic, corruption; see `store::db`).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The file fails redb's integrity check, or redb panicked reading it.
    #[error("the database file is corrupt: {0}; restore a backup (umcd restore)")]
    CorruptFile(String),
    #[error(
        "{} is empty (0 bytes), so it holds no umc database; refusing to start a new server over it: restore a backup (umcd restore), or delete the file if this server never ran",
        .0.display()
    )]
    EmptyFile(PathBuf),
    #[error(
        "the database file is in use by another process (is another umcd running on this data directory?)"
    )]
    Locked,
}

impl StoreError {
    /// Record `record` is corrupt: `why` says how.
    fn corrupt(
        record: impl Into<String>,
        why: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError::Corrupt {
            record: record.into(),
            source: why.into(),
        }
    }

    /// A file operation `what` on `path` failed.
    fn io(what: &'static str, path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Every redb error the store meets goes through here: `store::db` notes what it says about
/// the file (an I/O fault, corruption) before it becomes a `StoreError`.
impl<E: db::Observe + Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        e.observe();
        StoreError::Db(e.into())
    }
}

/// How [`Store::edit`] edits, besides its ops.
#[derive(Debug, Clone, Default)]
pub struct EditOptions {
    /// Tokens for the nodes the ops create, in order; `None` (or none left): a random one.
    pub tokens: Vec<Option<String>>,
    /// A first change line that touches no entity ("User 'x' rolled back to generation 4"),
    /// recorded only when the edit changes something.
    pub preface: Option<String>,
    /// Package names no catalog knows are warnings instead of errors.
    pub force: bool,
    /// Check everything and say what would change, but write nothing.
    pub dry_run: bool,
    /// The generation the ops were computed against (`apply` and `rollback` diff the model
    /// they read): when the model has moved past it, the edit is refused as a conflict, since
    /// the ops applied to a newer model would not make what was asked for. Only edits move
    /// the generation, so a report meanwhile does not count.
    pub base: Option<u64>,
}

/// What a committed (or empty) edit did.
#[derive(Debug, Clone)]
pub struct EditOutcome {
    pub generation: u64,
    pub changes: Vec<Change>,
    /// Catalog warnings: version constraints no catalog version satisfies, forced names.
    pub warnings: Vec<String>,
}

/// Hands out the given tokens to the nodes an edit creates, in order (rollback and apply
/// re-create nodes with their tokens); a random one for `None` and once they run out.
struct GivenTokens<'a>(std::slice::Iter<'a, Option<String>>);

impl TokenSource for GivenTokens<'_> {
    fn token(&mut self) -> String {
        self.0
            .next()
            .cloned()
            .flatten()
            .unwrap_or_else(random_token)
    }
}

/// 32 random bytes, hex: node tokens and API tokens.
pub fn random_token() -> String {
    let mut buf = [0u8; 32];
    // getrandom only fails when the OS has no entropy source at all; there is no safe fallback.
    if let Err(e) = getrandom::fill(&mut buf) {
        panic!("no OS random source: {e}");
    }
    hex::encode(buf)
}

pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub struct Store {
    /// Every transaction starts here; it reopens the file after faults (`store::db`).
    db: db::Db,
    migrated: Option<Migration>,
    /// Runs in [`Store::edit`] after each check and before the writer is taken: tests make
    /// their concurrent changes here.
    #[cfg(test)]
    checked: std::sync::Mutex<Option<CheckedHook>>,
}

#[cfg(test)]
type CheckedHook = Box<dyn FnMut(&Store) + Send>;

impl Store {
    /// Opens (creating if needed) the database and checks its schema version.
    /// An older database is migrated first (see `migrate`); a newer one is refused.
    /// The file is (made) mode 0600. An existing file must pass redb's integrity check (every
    /// page checksum), and an empty one is refused: redb would make it a new database.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let existed = db::prepare(path)?;
        let mut db = db::open(path, existed)?;
        let mut migrated = None;
        match migrate::recorded_schema(&db)? {
            Some(v) if v > SCHEMA_VERSION => return Err(StoreError::TooNew { found: v }),
            Some(v) if v < SCHEMA_VERSION => {
                // Closed while copied: the copy is exactly the last commit.
                drop(db);
                let backup = migrate::keep_copy(path, v)?;
                db = db::open(path, false)?;
                migrate::run(&db, v)?;
                migrated = Some(Migration {
                    from: v,
                    to: SCHEMA_VERSION,
                    backup,
                });
            }
            _ => {}
        }
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.value(Meta::Schema)?;
            match found {
                None => {
                    meta.set(Meta::Schema, SCHEMA_VERSION)?;
                    meta.set(Meta::Generation, 0)?;
                }
                Some(v) if v > SCHEMA_VERSION => return Err(StoreError::TooNew { found: v }),
                Some(_) => {} // == SCHEMA_VERSION: migrated above
            }
        }
        for t in tables::ALL {
            t.create(&tx)?;
        }
        history::init(&tx)?;
        tx.commit()?;
        Ok(Store {
            db: db::Db::new(path, db),
            migrated,
            #[cfg(test)]
            checked: std::sync::Mutex::default(),
        })
    }

    /// Runs the test hook (taken out meanwhile, so that edits it makes do not run it).
    #[cfg(test)]
    fn checked_hook(&self) {
        let taken = self.checked.lock().map(|mut h| h.take());
        if let Ok(Some(mut hook)) = taken {
            hook(self);
            if let Ok(mut h) = self.checked.lock() {
                *h = Some(hook);
            }
        }
    }

    /// The migration [`Store::open`] ran, if the database was older.
    pub fn migration(&self) -> Option<&Migration> {
        self.migrated.as_ref()
    }

    pub fn generation(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        meta.counter(Meta::Generation)
    }

    /// Records what, besides the model, shapes every host's repository (packaging format,
    /// architectures, signing keys). When it changed since the last start, a generation is
    /// committed (it touches no package, so no version moves) and every host's Release `Date`
    /// moves to it: nodes then fetch the new InRelease instead of getting a 304 for the old one.
    pub fn note_serving_inputs(
        &self,
        fingerprint: u64,
        description: &str,
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        let tx = self.db.begin_write()?;
        let (old, current) = {
            let meta = tx.open_table(META)?;
            (
                meta.value(Meta::ServingInputs)?,
                meta.counter(Meta::Generation)?,
            )
        };
        let committed = if old == Some(fingerprint) || current == 0 {
            tx.open_table(META)?.set(Meta::ServingInputs, fingerprint)?;
            None
        } else {
            let text = format!("umcd's serving configuration changed: {description}");
            let (generation, _) = commit_server_generation(&tx, "umcd", text, fingerprint, now)?;
            Some(generation)
        };
        tx.commit()?;
        Ok(committed)
    }

    /// The whole model as of the latest generation.
    pub fn model(&self) -> Result<(u64, Model), StoreError> {
        load_current(&self.db.begin_read()?)
    }

    pub fn node(&self, host: &str) -> Result<Option<Node>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(NODES)?;
        match t.get(host)? {
            Some(v) => Ok(Some(node_from(host, decode(host, v.value())?))),
            None => Ok(None),
        }
    }

    /// Applies `ops` atomically as one generation, the one way the model is edited (the API's
    /// and the console's edits, `apply`, `rollback`). Nothing is written when any op, the
    /// resulting model, one of its renders or the catalog check (see `catalog::check_ops`:
    /// unknown package names fail unless `opts.force`, unsatisfiable version constraints come
    /// back as warnings) fails. An edit that changes nothing commits no generation; `ops` may
    /// not be empty.
    ///
    /// No template renders while the writer is held. The ops are applied to a read snapshot,
    /// validated and rendered (in the `sandbox` worker, up to a second per file); only then is
    /// the writer taken and the model reloaded. If the model still has the snapshot's render
    /// inputs ([`Model::render_inputs`]), the ops are applied to it again and validated,
    /// without rendering, and committed: a node report ending a token rotation or any change
    /// to fields templates do not read costs no render. Otherwise another edit committed in
    /// between: the writer is released and the edit is checked again against a new snapshot,
    /// at most [`EDIT_ATTEMPTS`] times, then refused as a conflict. A dry run renders the same
    /// way and never takes the writer. With `opts.base`, a generation other than that one (at
    /// the snapshot or under the writer) is a conflict at once.
    pub fn edit(
        &self,
        user: &str,
        ops: &[Op],
        now: i64,
        opts: EditOptions,
    ) -> Result<EditOutcome, StoreError> {
        if ops.is_empty() {
            return Err(ModelError::EmptyEdit.into());
        }
        let tokens = &opts.tokens;
        for _ in 0..EDIT_ATTEMPTS {
            let (base, snapshot) = self.model()?;
            same_base(opts.base, base)?;
            let checked = apply_ops(&snapshot, ops, user, tokens, Renders::Check)?;
            #[cfg(test)]
            self.checked_hook();
            if opts.dry_run {
                let warnings = catalog::check_ops(&self.db.begin_read()?, ops, opts.force)?;
                return Ok(outcome(base, checked.1, opts.preface, warnings));
            }
            let tx = self.db.begin_write()?;
            let (current, old) = load_current(&tx)?;
            same_base(opts.base, current)?;
            let (model, changes) = if old == snapshot {
                checked
            } else if old.render_inputs() == snapshot.render_inputs() {
                apply_ops(&old, ops, user, tokens, Renders::Skip)?
            } else {
                // Another edit changed what templates read: check against it, unlocked.
                continue;
            };
            let warnings = catalog::check_ops(&tx, ops, opts.force)?;
            if changes.is_empty() {
                return Ok(outcome(current, changes, None, warnings));
            }
            let generation = next_generation(&tx.open_table(META)?)?;
            let out = outcome(generation, changes, opts.preface, warnings);
            commit_changes(&tx, user, now, &old, model, &out.changes, generation)?;
            tx.commit()?;
            return Ok(out);
        }
        Err(StoreError::Conflict(format!(
            "the model kept changing while the edit was checked ({EDIT_ATTEMPTS} times, each time another edit changed what templates read); try again"
        )))
    }

    /// Makes every later generation larger than `floor` (a lower floor changes nothing).
    /// umcd sets it to the current Unix time for a new database beside a signing key that has
    /// signed before, and an import does the same in its own transaction: generations are
    /// counters far below that, so no later edit can reuse a version nodes saw before the loss.
    pub fn set_generation_floor(&self, floor: u64) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        meta::raise_floor(&mut tx.open_table(META)?, floor)?;
        tx.commit()?;
        Ok(())
    }

    /// Moves every package of every host above anything published before: one generation,
    /// at least the current Unix time, touching every node and task, the global variables and
    /// umcd's own inputs, with `reason` as its change line. Used after a restore, where nodes
    /// may have seen versions (from edits lost since the snapshot) that the restored model
    /// would otherwise publish again for different content.
    pub fn resync(&self, user: &str, reason: &str, now: i64) -> Result<u64, StoreError> {
        let tx = self.db.begin_write()?;
        let (_, model) = load_current(&tx)?;
        let generation = {
            let meta = tx.open_table(META)?;
            next_generation(&meta)?.max(now.max(0) as u64)
        };
        let text = reason.to_string();
        let entities: Vec<Entity> = model
            .nodes
            .keys()
            .map(|n| Entity::Node(n.clone()))
            .chain(model.tasks.keys().map(|t| Entity::Task(t.clone())))
            .chain([Entity::Global, Entity::Server])
            .collect();
        let changes = vec![Change { text, entities }];
        commit_changes(&tx, user, now, &model, model.clone(), &changes, generation)?;
        // Nodes may have seen Release dates up to "now" from edits the restore lost; a date
        // equal to one of those must not earn a 304 (see host_data's date_ambiguous).
        tx.open_table(META)?
            .set(Meta::ResyncGeneration, generation)?;
        tx.commit()?;
        Ok(generation)
    }

    /// Reads what host `host` needs to render its repository, or `None` for an unknown host.
    pub fn host_data(&self, host: &str) -> Result<Option<HostData>, StoreError> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        let generation = meta.counter(Meta::Generation)?;
        let nodes = tx.open_table(NODES)?;
        let node = match nodes.get(host)? {
            Some(v) => node_from(host, decode(host, v.value())?),
            None => return Ok(None),
        };
        let tasks_t = tx.open_table(TASKS)?;
        let templates = tx.open_table(TEMPLATES)?;
        let mut tasks = BTreeMap::new();
        let mut stack: Vec<String> = node.tasks.iter().cloned().collect();
        while let Some(name) = stack.pop() {
            if tasks.contains_key(&name) {
                continue;
            }
            if let Some(v) = tasks_t.get(name.as_str())? {
                let task = task_from(&name, decode(&name, v.value())?, &templates)?;
                stack.extend(task.includes.iter().cloned());
                tasks.insert(name, task);
            }
        }
        // Global variables only matter to a view that renders files.
        let templated = tasks.values().any(|t| !t.files.is_empty());
        let (vars, vars_generation) = if templated {
            let mut vars = BTreeMap::new();
            for row in tx.open_table(VARS)?.iter()? {
                let (k, v) = row?;
                vars.insert(k.value().to_string(), v.value().to_string());
            }
            let g = meta.counter(Meta::VarsGeneration)?;
            (vars, g)
        } else {
            (BTreeMap::new(), 0)
        };
        let times = tx.open_table(TIMES)?;
        let touches = tx.open_table(TOUCHES)?;
        let mut history = BTreeMap::new();
        let entities = [Entity::Node(node.name.clone()), Entity::Server]
            .into_iter()
            .chain(tasks.keys().map(|t| Entity::Task(t.clone())))
            .chain(templated.then_some(Entity::Global));
        for e in entities {
            let items = entity_history(&touches, &e, CHANGELOG_LIMIT)?;
            history.insert(e, items);
        }
        let server_generation = meta.counter(Meta::ServerGeneration)?;
        let newest = node
            .generation
            .max(vars_generation)
            .max(server_generation)
            .max(tasks.values().map(|t| t.generation).max().unwrap_or(0));
        let time_of =
            |g: u64| -> Result<Option<i64>, StoreError> { Ok(times.get(g)?.map(|t| t.value())) };
        let date = time_of(newest)?.unwrap_or(0);
        // The generation committed before `newest` (not `newest - 1`: an import floor or a
        // restore's resync leaves gaps) sharing its second makes the date ambiguous.
        let previous = times
            .range(..newest)?
            .next_back()
            .transpose()?
            .map(|(_, t)| t.value());
        let resynced = meta.value(Meta::ResyncGeneration)? == Some(newest);
        let date_ambiguous = previous == Some(date) || resynced;
        Ok(Some(HostData {
            generation,
            node,
            tasks: tasks.into_values().collect(),
            history,
            vars,
            vars_generation,
            server_generation,
            date,
            date_ambiguous,
        }))
    }

    /// Commit times of `generations` (those still recorded).
    pub fn times(&self, generations: &BTreeSet<u64>) -> Result<BTreeMap<u64, i64>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(TIMES)?;
        let mut out = BTreeMap::new();
        for g in generations {
            if let Some(v) = t.get(*g)? {
                out.insert(*g, v.value());
            }
        }
        Ok(out)
    }

    /// Edits newest first, optionally only those touching `entity`.
    pub fn log(&self, entity: Option<&Entity>, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        let tx = self.db.begin_read()?;
        let gens = tx.open_table(GENERATIONS)?;
        let mut out = Vec::new();
        match entity {
            Some(e) => {
                let touches = tx.open_table(TOUCHES)?;
                for item in entity_history(&touches, e, limit)? {
                    out.push(LogEntry {
                        generation: item.generation,
                        time: item.time,
                        user: item.user,
                        changes: item.lines,
                    });
                }
            }
            None => {
                for row in gens.iter()?.rev().take(limit) {
                    let (g, v) = row?;
                    let rec: GenRec = decode("generation", v.value())?;
                    out.push(LogEntry {
                        generation: g.value(),
                        time: rec.time,
                        user: rec.user,
                        changes: rec.changes.into_iter().map(|c| c.text).collect(),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Refuses an edit computed against generation `base` when the model is at `current`.
fn same_base(base: Option<u64>, current: u64) -> Result<(), StoreError> {
    match base {
        Some(b) if b != current => Err(StoreError::Conflict(format!(
            "the model changed since the edit was computed (generation {b}, now {current}); compute it again"
        ))),
        _ => Ok(()),
    }
}

/// The generation an edit commits next: one above the newest, and above the floor that an
/// import or a new database beside an existing signing key sets (see
/// [`Store::set_generation_floor`]).
pub(super) fn next_generation(
    meta: &impl ReadableTable<&'static str, u64>,
) -> Result<u64, StoreError> {
    let current = meta.counter(Meta::Generation)?;
    let floor = meta.counter(Meta::GenerationFloor)?;
    current
        .max(floor)
        .checked_add(1)
        .ok_or(StoreError::GenerationsExhausted {
            generation: current,
            floor,
        })
}

/// Snapshots an edit is checked against before it gives up as a conflict (see
/// [`Store::edit`]). Only another edit changing what templates read forces a new one.
const EDIT_ATTEMPTS: usize = 3;

/// Whether [`apply_ops`] renders.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Renders {
    Check,
    /// The renders passed on a model with the same render inputs.
    Skip,
}

/// Applies `ops` to a copy of `old` and checks the result (renders included unless `renders`
/// says they passed already): everything an edit checks that needs no transaction.
fn apply_ops(
    old: &Model,
    ops: &[Op],
    user: &str,
    tokens: &[Option<String>],
    renders: Renders,
) -> Result<(Model, Vec<Change>), StoreError> {
    let mut model = old.clone();
    let mut changes = Vec::new();
    let mut tokens = GivenTokens(tokens.iter());
    for op in ops {
        changes.extend(
            model
                .apply(op, &mut tokens)?
                .into_iter()
                .map(|c| c.by(user)),
        );
    }
    model.validate()?;
    if renders == Renders::Check {
        let touched: BTreeSet<Entity> = changes.iter().flat_map(|c| c.entities.clone()).collect();
        model.validate_renders(&touched)?;
    }
    Ok((model, changes))
}

/// An edit's outcome: `preface` leads the change lines when there are any.
fn outcome(
    generation: u64,
    mut changes: Vec<Change>,
    preface: Option<String>,
    warnings: Vec<String>,
) -> EditOutcome {
    if let Some(text) = preface.filter(|_| !changes.is_empty()) {
        let entities = Vec::new();
        changes.insert(0, Change { text, entities });
    }
    EditOutcome {
        generation,
        changes,
        warnings,
    }
}

/// Writes `model` (the result of `changes` applied to `old`) as generation `generation`: every
/// entity a change touched moves to it, and the history and changelog index record the lines.
fn commit_changes(
    tx: &redb::WriteTransaction,
    user: &str,
    now: i64,
    old: &Model,
    mut model: Model,
    changes: &[Change],
    generation: u64,
) -> Result<(), StoreError> {
    let touched: BTreeSet<Entity> = changes.iter().flat_map(|c| c.entities.clone()).collect();
    let mut server_touched = false;
    for e in &touched {
        match e {
            Entity::Node(n) => {
                if let Some(node) = model.nodes.get_mut(n) {
                    node.generation = generation;
                    // A rotation in this edit: umc-node `1.<generation>` carries the new token.
                    if let Some(p) = &mut node.previous_token
                        && p.until == 0
                    {
                        p.until = generation;
                    }
                }
            }
            Entity::Task(t) => {
                if let Some(task) = model.tasks.get_mut(t) {
                    task.generation = generation;
                }
            }
            Entity::Global => model.vars_generation = generation,
            Entity::Server => server_touched = true,
        }
    }
    // Each touched entity as this generation leaves it: what rollback and diff rebuild from.
    let task_recs = history::record(tx, &model, &touched, generation)?;
    let recs = changes
        .iter()
        .map(|c| ChangeRec {
            text: c.text.clone(),
            entities: c.entities.iter().map(Entity::key).collect(),
        })
        .collect();
    let time = record_generation(tx, generation, now, user, recs)?;
    // Each touched entity's own lines, grouped in one pass.
    let mut lines: BTreeMap<&Entity, Vec<String>> = BTreeMap::new();
    for c in changes {
        for e in &c.entities {
            lines.entry(e).or_default().push(c.text.clone());
        }
    }
    let mut touches = tx.open_table(TOUCHES)?;
    for (e, lines) in lines {
        let touch = TouchRec {
            time,
            user: user.to_string(),
            lines,
        };
        touches.insert((e.key().as_str(), generation), encode(&touch)?.as_slice())?;
    }
    sync_table(
        &mut tx.open_table(NODES)?,
        &old.nodes,
        &model.nodes,
        |t, name, node| {
            t.insert(name, encode(&node_rec(node))?.as_slice())?;
            Ok(())
        },
    )?;
    sync_table(
        &mut tx.open_table(TASKS)?,
        &old.tasks,
        &model.tasks,
        |t, name, task| {
            let rec = match task_recs.get(name) {
                Some(bytes) => bytes.clone(),
                None => encode(&put_task(tx, task)?)?,
            };
            t.insert(name, rec.as_slice())?;
            Ok(())
        },
    )?;
    sync_table(
        &mut tx.open_table(VARS)?,
        &old.vars,
        &model.vars,
        |t, k, v| {
            t.insert(k, v.as_str())?;
            Ok(())
        },
    )?;
    let mut meta = tx.open_table(META)?;
    meta.set(Meta::Generation, generation)?;
    meta.set(Meta::VarsGeneration, model.vars_generation)?;
    if server_touched {
        meta.set(Meta::ServerGeneration, generation)?;
    }
    Ok(())
}

/// Makes `table` hold `new` where it held `old`: removes the keys `new` lacks and has `write`
/// write each entry of `new` that differs from `old`'s (nodes, tasks and global variables).
fn sync_table<'t, V: redb::Value + 'static, E: PartialEq>(
    table: &mut redb::Table<'t, &'static str, V>,
    old: &BTreeMap<String, E>,
    new: &BTreeMap<String, E>,
    mut write: impl FnMut(&mut redb::Table<'t, &'static str, V>, &str, &E) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    for name in old.keys().filter(|n| !new.contains_key(*n)) {
        table.remove(name.as_str())?;
    }
    for (name, e) in new {
        if old.get(name) != Some(e) {
            write(table, name, e)?;
        }
    }
    Ok(())
}

/// Commits a generation that touches only umcd's own serving inputs (`Entity::Server`: keys,
/// `umc-node`'s files), by `user`, with `text` as its one change line: the history record, the
/// changelog row, the counters, and `serving` as the serving inputs' new fingerprint (so the
/// next start does not commit the same change again). Returns the generation and its commit
/// time. A key change and a changed serving configuration are both this.
pub(super) fn commit_server_generation(
    tx: &redb::WriteTransaction,
    user: &str,
    text: String,
    serving: u64,
    now: i64,
) -> Result<(u64, i64), StoreError> {
    let mut meta = tx.open_table(META)?;
    // Above an import's or restore's floor, like every other generation.
    let generation = next_generation(&meta)?;
    let change = ChangeRec {
        text: text.clone(),
        entities: vec![Entity::Server.key()],
    };
    let time = record_generation(tx, generation, now, user, vec![change])?;
    let touch = TouchRec {
        time,
        user: user.to_string(),
        lines: vec![text],
    };
    tx.open_table(TOUCHES)?.insert(
        (Entity::Server.key().as_str(), generation),
        encode(&touch)?.as_slice(),
    )?;
    meta.set(Meta::Generation, generation)?;
    meta.set(Meta::ServerGeneration, generation)?;
    meta.set(Meta::ServingInputs, serving)?;
    Ok((generation, time))
}

/// Writes generation `generation`'s time and history record; returns its commit time.
/// Commit times never go backwards, even if the clock does: Release dates derive from them and
/// apt ignores a Release older than the one it has.
fn record_generation(
    tx: &redb::WriteTransaction,
    generation: u64,
    now: i64,
    user: &str,
    changes: Vec<ChangeRec>,
) -> Result<i64, StoreError> {
    let mut times = tx.open_table(TIMES)?;
    let last = times.last()?.map(|(_, t)| t.value()).unwrap_or(i64::MIN);
    let time = now.max(last);
    times.insert(generation, time)?;
    let rec = GenRec {
        time,
        user: user.to_string(),
        changes,
    };
    tx.open_table(GENERATIONS)?
        .insert(generation, encode(&rec)?.as_slice())?;
    Ok(time)
}

fn entity_history(
    touches: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    entity: &Entity,
    limit: usize,
) -> Result<Vec<HistoryItem>, StoreError> {
    let key = entity.key();
    let mut out = Vec::new();
    for row in touches
        .range((key.as_str(), 0)..=(key.as_str(), u64::MAX))?
        .rev()
        .take(limit)
    {
        let (k, v) = row?;
        let rec: TouchRec = decode("touch", v.value())?;
        out.push(HistoryItem {
            generation: k.value().1,
            time: rec.time,
            user: rec.user,
            lines: rec.lines,
        });
    }
    Ok(out)
}

/// Read access to the tables, in a read or a write transaction: what the model loaders and
/// the catalog check take, so that an edit can run them in either.
trait Tables {
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<impl ReadableTable<K, V>, StoreError>;
}

impl Tables for redb::ReadTransaction {
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<impl ReadableTable<K, V>, StoreError> {
        Ok(self.open_table(def)?)
    }
}

impl Tables for redb::WriteTransaction {
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<impl ReadableTable<K, V>, StoreError> {
        Ok(self.open_table(def)?)
    }
}

/// The model's entities (without `vars_generation`, which lives in `meta_v1`).
fn load_model(tx: &impl Tables) -> Result<Model, StoreError> {
    load_tables(
        &tx.table(NODES)?,
        &tx.table(TASKS)?,
        &tx.table(VARS)?,
        &tx.table(TEMPLATES)?,
    )
}

/// The generation and the model (with `vars_generation`) as `tx` sees them.
fn load_current(tx: &impl Tables) -> Result<(u64, Model), StoreError> {
    let mut model = load_model(tx)?;
    let meta = tx.table(META)?;
    model.vars_generation = meta.counter(Meta::VarsGeneration)?;
    Ok((meta.counter(Meta::Generation)?, model))
}

fn load_tables(
    nodes: &impl ReadableTable<&'static str, &'static [u8]>,
    tasks: &impl ReadableTable<&'static str, &'static [u8]>,
    vars: &impl ReadableTable<&'static str, &'static str>,
    templates: &impl Templates,
) -> Result<Model, StoreError> {
    let mut model = Model::default();
    for row in nodes.iter()? {
        let (k, v) = row?;
        let rec: NodeRec = decode(k.value(), v.value())?;
        model
            .nodes
            .insert(k.value().to_string(), node_from(k.value(), rec));
    }
    for row in tasks.iter()? {
        let (k, v) = row?;
        let rec: TaskRec = decode(k.value(), v.value())?;
        model
            .tasks
            .insert(k.value().to_string(), task_from(k.value(), rec, templates)?);
    }
    for row in vars.iter()? {
        let (k, v) = row?;
        model
            .vars
            .insert(k.value().to_string(), v.value().to_string());
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("umc.redb")).expect("open");
        (dir, s)
    }

    pub(super) fn add(host: &str) -> Op {
        Op::NodeAdd {
            host: host.into(),
            vars: BTreeMap::new(),
            ssh: None,
        }
    }

    /// A changed serving configuration and a key change commit a server generation the same
    /// way; the key change records the new serving inputs, so a restart does not commit again.
    #[test]
    fn serving_changes_and_key_changes_commit_server_generations() {
        let (_d, s) = store();
        assert_eq!(s.note_serving_inputs(1, "first", 5).expect("note"), None);
        s.edit("sh", &[add("a.example.com")], 10, EditOptions::default())
            .expect("edit");
        assert_eq!(s.note_serving_inputs(1, "same", 11).expect("note"), None);
        assert_eq!(s.note_serving_inputs(2, "arch", 12).expect("note"), Some(2));
        assert_eq!(s.server_generation().expect("server"), 2);
        let change = KeyChange::Added {
            fingerprint: "AB12".into(),
            how: "rotate".into(),
        };
        let serving = ServingInputs {
            fingerprint: 3,
            description: "keys".into(),
        };
        assert_eq!(
            s.record_key_change("ann", &change, &serving, 13)
                .expect("key"),
            3
        );
        assert_eq!(s.note_serving_inputs(3, "keys", 14).expect("note"), None);
        assert_eq!(
            (
                s.generation().expect("g"),
                s.server_generation().expect("s")
            ),
            (3, 3)
        );
        let log = s.log(Some(&Entity::Server), 10).expect("log");
        let lines: Vec<(&str, &str)> = log
            .iter()
            .map(|e| (e.user.as_str(), e.changes[0].as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (
                    "ann",
                    "signing key AB12 added; InRelease is signed by it too"
                ),
                ("umcd", "umcd's serving configuration changed: arch"),
            ]
        );
        assert_eq!(s.key_records().expect("keys")["AB12"].added_generation, 3);
    }

    #[test]
    fn errors_keep_their_sources() {
        let e = decode::<u64>("generation 4", b"{").expect_err("truncated");
        assert!(
            e.to_string()
                .starts_with("database record 'generation 4' is corrupt: "),
            "{e}"
        );
        let source = std::error::Error::source(&e).expect("a source");
        assert!(
            source.downcast_ref::<serde_json::Error>().is_some(),
            "{source:?}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Store::open(&dir.path().join("missing/umc.redb"))
            .err()
            .expect("no directory");
        assert!(
            matches!(
                e,
                StoreError::Io {
                    what: "creating",
                    ..
                }
            ),
            "{e:?}"
        );
        let source = std::error::Error::source(&e).expect("a source");
        assert!(
            source.downcast_ref::<std::io::Error>().is_some(),
            "{source:?}"
        );
    }

    #[test]
    fn the_floor_lifts_every_later_generation() {
        let (_d, s) = store();
        assert_eq!(
            s.edit("sh", &[add("a.example.com")], 10, EditOptions::default())
                .expect("edit")
                .generation,
            1
        );
        s.set_generation_floor(1_000).expect("floor");
        s.set_generation_floor(500)
            .expect("a lower floor changes nothing");
        assert_eq!(
            s.edit("sh", &[add("b.example.com")], 10, EditOptions::default())
                .expect("edit")
                .generation,
            1_001
        );
        // Generation 1, not the absent 1_000, is the one before: it shares the second, so
        // b's Release date does not earn a 304.
        let b = s.host_data("b.example.com").expect("read").expect("host");
        assert!(
            b.date_ambiguous,
            "the generation before the gap shares its second"
        );
        assert_eq!(
            s.edit("sh", &[add("c.example.com")], 12, EditOptions::default())
                .expect("edit")
                .generation,
            1_002
        );
    }

    #[test]
    fn an_exhausted_counter_is_an_error_not_a_wrap() {
        let (_d, s) = store();
        s.set_generation_floor(u64::MAX).expect("floor");
        let e = s
            .edit("sh", &[add("a.example.com")], 10, EditOptions::default())
            .unwrap_err();
        assert!(e.to_string().contains("exhausted"), "{e}");
        assert_eq!(s.generation().expect("generation"), 0);
    }

    #[test]
    fn resync_moves_every_entity_to_one_new_generation() {
        let (_d, s) = store();
        s.edit(
            "sh",
            &[add("a.example.com"), add("b.example.com")],
            10,
            EditOptions::default(),
        )
        .expect("edit");
        s.edit(
            "sh",
            &[Op::TaskAdd {
                task: "web".into(),
                description: None,
            }],
            11,
            EditOptions::default(),
        )
        .expect("edit");
        let g = s
            .resync("umcd", "restored from a backup", 1_700_000_000)
            .expect("resync");
        assert_eq!(g, 1_700_000_000);
        let (current, m) = s.model().expect("model");
        assert_eq!(current, g);
        assert!(m.nodes.values().all(|n| n.generation == g));
        assert!(m.tasks.values().all(|t| t.generation == g));
        assert_eq!(m.vars_generation, g);
        let data = s.host_data("a.example.com").expect("read").expect("host");
        assert_eq!(data.server_generation, g);
        assert_eq!(data.date, 1_700_000_000);
        // Nodes may have seen this date from an edit the restore lost: never a 304 on it.
        assert!(data.date_ambiguous, "a resync's date is ambiguous");
        // The next edit continues above it.
        assert_eq!(
            s.edit("sh", &[add("c.example.com")], 12, EditOptions::default())
                .expect("edit")
                .generation,
            g + 1
        );
    }

    /// The Architecture Invariant "recording a fleet command or a node report moves no version
    /// and no Release date", down to a report that ends a token rotation.
    #[test]
    fn recording_a_command_or_a_report_moves_no_version_and_no_date() {
        let (_d, s) = store();
        let host = "a.example.com";
        s.edit("sh", &[add(host)], 10, EditOptions::default())
            .expect("edit");
        let rotate = Op::NodeTokenRotate {
            host: host.into(),
            force: false,
        };
        let g = s
            .edit("sh", &[rotate], 11, EditOptions::default())
            .expect("rotate")
            .generation;
        let seen = |s: &Store| {
            let d = s.host_data(host).expect("read").expect("host");
            let versions = (d.generation, d.node.generation, d.server_generation);
            (
                s.generation().expect("generation"),
                versions,
                d.date,
                d.date_ambiguous,
            )
        };
        let before = seen(&s);
        let command = crate::api::AuditRequest {
            targets: vec!["all".into()],
            command: "uptime".into(),
            results: vec![crate::api::RunResult {
                host: host.into(),
                exit: Some(0),
                signal: None,
                duration_ms: 5,
                error: None,
            }],
        };
        s.record_audit("op", &command, 50).expect("audit");
        assert_eq!(seen(&s), before, "a fleet command moved something");
        let token = s.node(host).expect("read").expect("node").token;
        let ended = s
            .add_reports(
                &[IncomingReport {
                    host: host.into(),
                    received: 60,
                    text: report(&repo_version(g)),
                    current_token: Some(token_hash(&token)),
                }],
                10,
            )
            .expect("report");
        assert_eq!(ended, [host], "the report ends the rotation");
        assert_eq!(seen(&s), before, "a report moved something");
    }

    /// The Architecture Invariant "the cost of a request depends on the host's own view, never
    /// on fleet size": `host_data` decodes the node, its task closure and at most
    /// `CHANGELOG_LIMIT` changelog rows per entity. Every other record is made unreadable
    /// here, so a read that decoded more (another node, another task, the whole model, an
    /// older changelog row) would fail.
    #[test]
    fn a_host_view_decodes_nothing_outside_it() {
        let (_d, s) = store();
        let task = |t: &str| Op::TaskAdd {
            task: t.into(),
            description: None,
        };
        let assign = |h: &str, t: &str| Op::Assign {
            host: h.into(),
            tasks: vec![t.into()],
        };
        let include = Op::TaskInclude {
            task: "web".into(),
            subtasks: vec!["base".into()],
        };
        let ops = [
            add("a.example.com"),
            add("b.example.com"),
            task("web"),
            task("base"),
            task("db"),
            include,
            assign("a.example.com", "web"),
            assign("b.example.com", "db"),
        ];
        s.edit("sh", &ops, 10, EditOptions::default())
            .expect("setup");
        let extra = 3;
        for i in 0..CHANGELOG_LIMIT + extra {
            let depend = |t: &str| Op::TaskDepend {
                task: t.into(),
                relations: vec![format!("pkg-{t}-{i}")],
            };
            s.edit(
                "sh",
                &[depend("web"), depend("db")],
                11 + i as i64,
                EditOptions::default(),
            )
            .expect("edit");
        }
        let want = s.host_data("a.example.com").expect("read").expect("host");

        let tx = s.db.begin_write().expect("write");
        {
            let junk: &[u8] = b"{";
            tx.open_table(NODES)
                .expect("nodes")
                .insert("b.example.com", junk)
                .expect("node");
            tx.open_table(TASKS)
                .expect("tasks")
                .insert("db", junk)
                .expect("task");
            let mut touches = tx.open_table(TOUCHES).expect("touches");
            for (entity, keep) in [
                (Entity::Node("b.example.com".into()), 0),
                (Entity::Task("db".into()), 0),
                (Entity::Task("web".into()), CHANGELOG_LIMIT),
            ] {
                let key = entity.key();
                let rows: Vec<u64> = touches
                    .range((key.as_str(), 0)..=(key.as_str(), u64::MAX))
                    .expect("range")
                    .map(|row| row.expect("row").0.value().1)
                    .collect();
                assert!(rows.len() > keep, "{key}: {} rows", rows.len());
                for g in &rows[..rows.len() - keep] {
                    touches.insert((key.as_str(), *g), junk).expect("touch");
                }
            }
        }
        tx.commit().expect("commit");
        assert!(s.model().is_err(), "the damage is real");

        let got = s
            .host_data("a.example.com")
            .expect("reads only a's view")
            .expect("host");
        let names = |d: &HostData| d.tasks.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&got), ["base", "web"]);
        assert_eq!(got.history, want.history);
        assert_eq!(
            got.history[&Entity::Task("web".into())].len(),
            CHANGELOG_LIMIT
        );
        assert_eq!((got.date, got.generation), (want.date, want.generation));
    }

    fn report(node_version: &str) -> String {
        format!(
            "Format: umc-report/1\nStarted: 100\nFinished: 110\nStep: update 0\nInstalled: umc-node {node_version}\nReboot-Required: no\nUpgradable: 0\n"
        )
    }

    #[test]
    fn a_rotation_ends_with_a_report_of_the_new_umc_node_made_with_the_new_token() {
        let (_d, s) = store();
        s.edit("sh", &[add("a.example.com")], 10, EditOptions::default())
            .expect("edit");
        let old = s.node("a.example.com").unwrap().unwrap().token;
        let rotate = Op::NodeTokenRotate {
            host: "a.example.com".into(),
            force: false,
        };
        let g = s
            .edit("sh", &[rotate], 11, EditOptions::default())
            .expect("rotate")
            .generation;
        let n = s.node("a.example.com").unwrap().unwrap();
        assert_ne!(n.token, old);
        // The store fills in the rotation's generation: umc-node 1.<g> carries the new token.
        let previous = n.previous_token.clone().expect("previous token");
        assert_eq!((previous.token.as_str(), previous.until), (old.as_str(), g));
        assert_eq!(n.generation, g);
        // ... and history keeps it, so a model rebuilt at g has it too.
        assert_eq!(s.model_at(g).unwrap().nodes["a.example.com"], n);

        let incoming = |text: String, token: &str| IncomingReport {
            host: "a.example.com".into(),
            received: 120,
            text,
            current_token: Some(token_hash(token)),
        };
        let still = |s: &Store| s.node("a.example.com").unwrap().unwrap().previous_token;
        // Not yet: an older umc-node, the old token's own report, a report without the check.
        let older = repo_version(g - 1);
        let newer = repo_version(g);
        for r in [
            incoming(report(&older), &n.token),
            incoming(report(&newer), &old),
            IncomingReport {
                current_token: None,
                ..incoming(report(&newer), &n.token)
            },
        ] {
            assert_eq!(s.add_reports(&[r], 10).unwrap(), Vec::<String>::new());
            assert!(still(&s).is_some());
        }
        assert_eq!(
            s.add_reports(&[incoming(report(&newer), &n.token)], 10)
                .unwrap(),
            ["a.example.com"]
        );
        assert_eq!(still(&s), None);
        // No generation: no version moves.
        assert_eq!(s.model().unwrap().0, g);
        assert_eq!(s.node("a.example.com").unwrap().unwrap().generation, g);
    }

    fn repo_version(g: u64) -> String {
        crate::model::version(g)
    }

    fn set_node_var(host: &str, name: &str, value: &str) -> Op {
        Op::NodeSet {
            host: host.into(),
            set_vars: [(name.to_string(), value.to_string())].into(),
            unset_vars: Vec::new(),
            ssh: None,
            url: None,
            conffiles: None,
        }
    }

    fn file_add(task: &str, path: &str, template: &str) -> Op {
        Op::TaskFileAdd {
            task: task.into(),
            path: path.into(),
            template: template.into(),
            mode: None,
            reload: None,
            restart: None,
        }
    }

    /// Node a.example.com (with `vars`) assigned task `web`, which ships `files`.
    fn templated(s: &Store, vars: &[(&str, &str)], files: &[(&str, &str)]) {
        let mut ops = vec![
            Op::NodeAdd {
                host: "a.example.com".into(),
                vars: vars
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ssh: None,
            },
            Op::TaskAdd {
                task: "web".into(),
                description: None,
            },
            Op::Assign {
                host: "a.example.com".into(),
                tasks: vec!["web".into()],
            },
        ];
        ops.extend(files.iter().map(|(p, t)| file_add("web", p, t)));
        s.edit("sh", &ops, 10, EditOptions::default())
            .expect("setup");
    }

    /// Makes `change` run in every later edit of `s` between its renders and its taking the
    /// writer, with the number of that check (1, 2, …); returns the count of checks.
    fn between(
        s: &Store,
        mut change: impl FnMut(&Store, usize) + Send + 'static,
    ) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        *s.checked.lock().expect("hook") = Some(Box::new(move |s: &Store| {
            change(s, seen.fetch_add(1, Ordering::SeqCst) + 1)
        }));
        count
    }

    fn checks(count: &std::sync::atomic::AtomicUsize) -> usize {
        count.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// An edit checked against a snapshot must not commit when another edit changed what its
    /// templates read meanwhile: here the other edit drops the variable the new template needs,
    /// so committing the first check would store a model that no longer renders.
    #[test]
    fn an_edit_whose_render_inputs_changed_meanwhile_is_rendered_again() {
        let (_d, s) = store();
        templated(&s, &[("zone", "eu")], &[]);
        let count = between(&s, |s, n| {
            if n == 1 {
                let drop_zone = Op::NodeSet {
                    host: "a.example.com".into(),
                    set_vars: BTreeMap::new(),
                    unset_vars: vec!["zone".into()],
                    ssh: None,
                    url: None,
                    conffiles: None,
                };
                s.edit("other", &[drop_zone], 11, EditOptions::default())
                    .expect("the other edit renders nothing yet");
            }
        });
        let add = file_add("web", "/etc/zone.conf", "zone={{ vars.zone }}\n");
        let e = s
            .edit("sh", std::slice::from_ref(&add), 12, EditOptions::default())
            .expect_err("zone is gone");
        assert!(
            e.to_string()
                .contains("template '/etc/zone.conf' for host 'a.example.com'"),
            "{e}"
        );
        // The first check passed (the hook runs after a check that passed); the second, after
        // the other edit, failed.
        assert_eq!(checks(&count), 1);
        let (_, m) = s.model().expect("model");
        assert!(m.tasks["web"].files.is_empty());

        // The same race with a change the template survives: rendered again, then committed.
        s.edit(
            "sh",
            &[set_node_var("a.example.com", "zone", "eu")],
            13,
            EditOptions::default(),
        )
        .expect("zone again");
        let count = between(&s, |s, n| {
            if n == 1 {
                s.edit(
                    "other",
                    &[set_node_var("a.example.com", "zone", "us")],
                    14,
                    EditOptions::default(),
                )
                .expect("other edit");
            }
        });
        let e = s
            .edit("sh", &[add], 15, EditOptions::default())
            .expect("edit");
        assert_eq!(checks(&count), 2);
        assert_eq!(e.generation, s.generation().expect("generation"));
        let (_, m) = s.model().expect("model");
        assert_eq!(m.nodes["a.example.com"].vars["zone"], "us");
        assert!(m.tasks["web"].files.contains_key("/etc/zone.conf"));
    }

    /// A report that ends a token rotation changes a node, but nothing templates read: the
    /// edit checked meanwhile commits without rendering again, applied to the model as the
    /// report left it (the ended rotation stays ended; created nodes keep the given tokens).
    #[test]
    fn a_report_ending_a_rotation_meanwhile_costs_no_render() {
        let (_d, s) = store();
        templated(&s, &[], &[("/etc/motd", "{{ host.fqdn }}\n")]);
        let rotate = Op::NodeTokenRotate {
            host: "a.example.com".into(),
            force: false,
        };
        let g = s
            .edit("sh", &[rotate], 11, EditOptions::default())
            .expect("rotate")
            .generation;
        let token = s.node("a.example.com").unwrap().unwrap().token;
        let count = between(&s, move |s, n| {
            if n == 1 {
                let ended = s
                    .add_reports(
                        &[IncomingReport {
                            host: "a.example.com".into(),
                            received: 120,
                            text: report(&repo_version(g)),
                            current_token: Some(token_hash(&token)),
                        }],
                        10,
                    )
                    .expect("report");
                assert_eq!(ended, ["a.example.com"]);
            }
        });
        let b_token = "b".repeat(64);
        let opts = EditOptions {
            tokens: vec![Some(b_token.clone())],
            ..EditOptions::default()
        };
        let ops = [
            set_node_var("a.example.com", "role", "front"),
            add("b.example.com"),
        ];
        let e = s.edit("sh", &ops, 12, opts).expect("edit");
        assert_eq!(checks(&count), 1, "rendered once");
        assert_eq!(e.generation, g + 1);
        let a = s.node("a.example.com").unwrap().unwrap();
        assert_eq!(a.previous_token, None, "the rotation came back");
        assert_eq!(a.vars["role"], "front");
        assert_eq!(s.node("b.example.com").unwrap().unwrap().token, b_token);
    }

    /// Edits that lose the race every time give up with a conflict instead of ever rendering
    /// while holding the writer.
    #[test]
    fn an_edit_that_keeps_losing_the_race_is_a_conflict() {
        let (_d, s) = store();
        templated(&s, &[], &[("/etc/motd", "{{ host.fqdn }}\n")]);
        let count = between(&s, |s, n| {
            let op = set_node_var("a.example.com", "n", &n.to_string());
            s.edit("other", &[op], 20, EditOptions::default())
                .expect("other edit");
        });
        let before = s.generation().expect("generation");
        let e = s
            .edit(
                "sh",
                &[set_node_var("a.example.com", "mine", "1")],
                21,
                EditOptions::default(),
            )
            .expect_err("conflict");
        assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
        assert!(e.to_string().contains("try again"), "{e}");
        assert_eq!(checks(&count), EDIT_ATTEMPTS);
        assert_eq!(
            s.generation().expect("generation"),
            before + EDIT_ATTEMPTS as u64
        );
        assert!(
            !s.node("a.example.com")
                .unwrap()
                .unwrap()
                .vars
                .contains_key("mine")
        );
    }

    /// An edit computed against a generation (`apply` and `rollback` diff the model they
    /// read) is refused once another edit committed after that generation: before its renders
    /// when the model had moved already, and between its check and its commit. A report that
    /// ends a rotation meanwhile is no edit and moves no generation: the edit commits.
    #[test]
    fn an_edit_computed_against_an_older_generation_is_a_conflict() {
        let (_d, s) = store();
        templated(&s, &[], &[("/etc/motd", "{{ host.fqdn }}\n")]);
        let based = |base| EditOptions {
            base: Some(base),
            ..EditOptions::default()
        };
        let mine = || [set_node_var("a.example.com", "mine", "1")];
        let g = s.generation().expect("generation");

        // Moved before the edit began: refused before its check.
        s.edit(
            "other",
            &[set_node_var("a.example.com", "n", "1")],
            11,
            EditOptions::default(),
        )
        .expect("other edit");
        let count = between(&s, |_, _| {});
        let e = s.edit("sh", &mine(), 12, based(g)).expect_err("stale");
        assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
        let now = g + 1;
        assert!(
            e.to_string()
                .contains(&format!("(generation {g}, now {now})")),
            "{e}"
        );
        assert_eq!(checks(&count), 0, "no render for stale ops");

        // Moved between the check and the commit, by an edit templates do not see (which
        // an edit without a base would just apply on top).
        let count = between(&s, |s, n| {
            if n == 1 {
                let op = Op::TaskSet {
                    task: "web".into(),
                    description: "changed".into(),
                };
                s.edit("other", &[op], 13, EditOptions::default())
                    .expect("other edit");
            }
        });
        let e = s.edit("sh", &mine(), 14, based(now)).expect_err("stale");
        assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
        assert_eq!(checks(&count), 1);
        let now = s.generation().expect("generation");
        assert_eq!(now, g + 2, "only the other edit committed");
        let a = s.node("a.example.com").unwrap().unwrap();
        assert!(!a.vars.contains_key("mine"));

        // A report ending a rotation between the check and the commit: no conflict.
        let rotate = Op::NodeTokenRotate {
            host: "a.example.com".into(),
            force: false,
        };
        let g = s
            .edit("sh", &[rotate], 15, EditOptions::default())
            .expect("rotate")
            .generation;
        let token = s.node("a.example.com").unwrap().unwrap().token;
        let count = between(&s, move |s, n| {
            if n == 1 {
                let report = IncomingReport {
                    host: "a.example.com".into(),
                    received: 120,
                    text: report(&repo_version(g)),
                    current_token: Some(token_hash(&token)),
                };
                let ended = s.add_reports(&[report], 10).expect("report");
                assert_eq!(ended, ["a.example.com"]);
            }
        });
        let e = s
            .edit("sh", &mine(), 16, based(g))
            .expect("a report is no edit");
        assert_eq!((checks(&count), e.generation), (1, g + 1));
        let a = s.node("a.example.com").unwrap().unwrap();
        assert_eq!((a.vars["mine"].as_str(), a.previous_token), ("1", None));
    }

    /// The renders of an edit (and of a dry run) run while another transaction holds the
    /// writer; a dry run never takes it at all.
    #[test]
    fn edits_render_without_the_writer_and_dry_runs_never_take_it() {
        use std::sync::mpsc;
        use std::time::Duration;
        let (_d, s) = store();
        templated(&s, &[], &[("/etc/motd", "{{ host.fqdn }}\n")]);
        let (rendered, renders) = mpsc::channel();
        between(&s, move |_, _| {
            let _ = rendered.send(());
        });
        let edit = |dry_run| {
            let opts = EditOptions {
                dry_run,
                ..EditOptions::default()
            };
            let op = file_add("web", "/etc/issue", "{{ host.name }}\n");
            s.edit("sh", &[op], 30, opts)
        };
        std::thread::scope(|scope| {
            let held = s.db.begin_write().expect("writer");
            let (done, finished) = mpsc::channel();
            scope.spawn(move || {
                let _ = done.send(edit(true));
            });
            let dry = finished
                .recv_timeout(Duration::from_secs(10))
                .expect("the dry run waited for the writer")
                .expect("dry run");
            assert_eq!(dry.changes.len(), 1, "{:?}", dry.changes);
            let real = scope.spawn(move || edit(false));
            renders
                .recv_timeout(Duration::from_secs(10))
                .expect("dry run's render");
            renders
                .recv_timeout(Duration::from_secs(10))
                .expect("the edit waited for the writer to render");
            drop(held);
            let e = real.join().expect("edit thread").expect("edit");
            assert_eq!(e.changes.len(), 1);
        });
        assert!(
            s.model().expect("model").1.tasks["web"]
                .files
                .contains_key("/etc/issue")
        );
    }

    /// The Architecture Invariant "a rejected edit writes nothing": a batch with one bad op
    /// (here a duplicate node after a good one, then a template that does not render) leaves
    /// the model, the generation and the log as they were.
    #[test]
    fn a_rejected_edit_writes_nothing() {
        let (_d, s) = store();
        templated(&s, &[], &[("/etc/motd", "{{ host.fqdn }}\n")]);
        let log = || format!("{:?}", s.log(None, 100).expect("log"));
        let before = (s.model().expect("model"), log());
        for (ops, want) in [
            (
                vec![add("b.example.com"), add("a.example.com")],
                "already exists",
            ),
            (
                vec![
                    add("b.example.com"),
                    file_add("web", "/etc/bad", "{{ vars.missing }}"),
                ],
                "/etc/bad",
            ),
        ] {
            let e = s
                .edit("sh", &ops, 40, EditOptions::default())
                .expect_err("rejected");
            assert!(e.to_string().contains(want), "{e}");
            assert_eq!(s.model().expect("model"), before.0, "{want}");
            assert_eq!(log(), before.1, "{want}");
        }
    }

    #[test]
    fn a_dry_run_writes_nothing() {
        let (_d, s) = store();
        templated(&s, &[], &[("/etc/motd", "{{ host.fqdn }}\n")]);
        let log = || format!("{:?}", s.log(None, 100).expect("log"));
        let before = (s.model().expect("model"), log());
        let opts = EditOptions {
            dry_run: true,
            preface: Some("User 'sh' tried something".into()),
            ..EditOptions::default()
        };
        let ops = [
            set_node_var("a.example.com", "role", "front"),
            add("b.example.com"),
            file_add("web", "/etc/issue", "{{ host.name }}\n"),
        ];
        let e = s.edit("sh", &ops, 40, opts).expect("dry run");
        assert_eq!(e.generation, before.0.0, "the current generation");
        assert_eq!(e.changes.len(), 4, "{:?}", e.changes);
        assert_eq!(e.changes[0].text, "User 'sh' tried something");
        assert_eq!(s.model().expect("model"), before.0);
        assert_eq!(log(), before.1);
        // It is checked like an edit.
        let bad = file_add("web", "/etc/bad", "{{ vars.missing }}");
        let opts = EditOptions {
            dry_run: true,
            ..EditOptions::default()
        };
        let e = s.edit("sh", &[bad], 41, opts).expect_err("renders");
        assert!(e.to_string().contains("/etc/bad"), "{e}");
    }

    /// A dry run checks package names against the catalogs like an edit (in a read
    /// transaction of its own).
    #[test]
    fn a_dry_run_checks_the_catalogs() {
        let (_d, s) = store();
        templated(&s, &[], &[]);
        let nginx = crate::catalog::Package {
            name: "nginx".into(),
            version: "1.26.0-1".into(),
            section: "httpd".into(),
            priority: "optional".into(),
            description: "small, powerful, scalable web/proxy server".into(),
            provides: Vec::new(),
        };
        let meta = CatalogMeta {
            name: "debian".into(),
            url: String::new(),
            suite: "trixie".into(),
            components: vec!["main".into()],
            archs: vec!["amd64".into()],
            imported_at: 1,
            packages: 1,
            stanzas: 1,
            verified: false,
        };
        let imported = crate::catalog::fetch::Imported {
            packages: [("nginx".to_string(), nginx)].into(),
            stanzas: 1,
        };
        s.replace_catalog(&meta, &imported).expect("catalog");
        let depend = |p: &str| Op::TaskDepend {
            task: "web".into(),
            relations: vec![p.into()],
        };
        let dry = |force| EditOptions {
            dry_run: true,
            force,
            ..EditOptions::default()
        };
        let e = s
            .edit("sh", &[depend("ngnix")], 50, dry(false))
            .expect_err("unknown");
        assert!(e.to_string().contains("did you mean 'nginx'"), "{e}");
        let e = s
            .edit("sh", &[depend("nginx (>= 2)")], 50, dry(false))
            .expect("known");
        assert_eq!(e.warnings.len(), 1, "{:?}", e.warnings);
        let e = s
            .edit("sh", &[depend("ngnix")], 50, dry(true))
            .expect("forced");
        assert!(
            e.warnings[0].contains("in no catalog (forced)"),
            "{:?}",
            e.warnings
        );
        assert_eq!(s.generation().expect("generation"), 1);
    }

    #[test]
    fn a_preface_leads_the_lines_touches_nothing_and_needs_a_change() {
        let (_d, s) = store();
        s.edit("sh", &[add("a.example.com")], 10, EditOptions::default())
            .expect("edit");
        let preface = || EditOptions {
            preface: Some("User 'sh' rolled back to generation 1".into()),
            ..EditOptions::default()
        };
        let op = set_node_var("a.example.com", "role", "front");
        let e = s
            .edit("sh", std::slice::from_ref(&op), 11, preface())
            .expect("edit");
        let texts: Vec<&str> = e.changes.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts[0], "User 'sh' rolled back to generation 1");
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(e.changes[0].entities.is_empty());
        let log = s.log(None, 1).expect("log");
        assert_eq!(log[0].generation, e.generation);
        assert_eq!(log[0].changes, texts);
        // The node's changelog has its own line only.
        let node = s
            .log(Some(&Entity::Node("a.example.com".into())), 1)
            .expect("log");
        assert_eq!(node[0].changes, [texts[1]]);
        // Nothing to change: no generation, no preface.
        let again = s.edit("sh", &[op], 12, preface()).expect("edit");
        assert!(again.changes.is_empty(), "{:?}", again.changes);
        assert_eq!(again.generation, e.generation);
        assert_eq!(s.generation().expect("generation"), e.generation);
    }

    #[test]
    fn created_nodes_get_the_given_tokens_in_order() {
        let (_d, s) = store();
        let (t1, t3) = ("1".repeat(64), "3".repeat(64));
        let opts = EditOptions {
            tokens: vec![Some(t1.clone()), None, Some(t3.clone())],
            ..EditOptions::default()
        };
        let ops = [
            add("c.example.com"),
            add("a.example.com"),
            add("b.example.com"),
            add("d.example.com"),
        ];
        s.edit("sh", &ops, 10, opts).expect("edit");
        let token = |h: &str| s.node(h).unwrap().unwrap().token;
        assert_eq!(token("c.example.com"), t1, "in op order, not name order");
        assert_eq!(token("b.example.com"), t3);
        for random in [token("a.example.com"), token("d.example.com")] {
            assert!(crate::model::valid_token(&random), "{random}");
            assert_ne!(random, t1);
            assert_ne!(random, t3);
        }
        assert_ne!(token("a.example.com"), token("d.example.com"));
    }
}
