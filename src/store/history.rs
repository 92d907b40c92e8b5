//! The model at any past generation, and the fleet as a whole: export and import. (`apply`
//! and `rollback`, which make the model equal a given one, are edits: `Store::edit`.)
//!
//! `entity_versions_v1` keeps, per entity, its record as of each generation that touched it
//! (a tombstone when it was removed). The model at generation G is, for every entity, its newest
//! record at or before G. It grows with edits, not with the fleet: a bulk edit of 10,000 nodes
//! writes 10,000 rows once, an edit of one task writes one.

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::meta::{Meta, MetaRead, MetaWrite};
use super::tables::VERSIONS;
use super::{
    ChangeRec, GENERATIONS, META, NODES, NodeRec, Store, StoreError, TASKS, TEMPLATES, TIMES,
    TOUCHES, TaskRec, TouchRec, VARS, decode, encode, load_current, load_model, node_from,
    node_rec, put_task, sync_table, task_from,
};
use crate::fleetfile::{ChangeForm, GenerationForm};
use crate::model::{Entity, Model};
use crate::repo::CHANGELOG_LIMIT;

#[derive(Serialize, Deserialize)]
pub(super) enum VersionRec {
    Node(NodeRec),
    Task(TaskRec),
    Vars(BTreeMap<String, String>),
    Gone,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "generation {generation} predates the recorded model history (it starts at generation {since}); it cannot be rebuilt"
    )]
    Unrecorded { generation: u64, since: u64 },
    #[error(
        "generation {generation} has been pruned (umcd keeps the newest log_keep generations); the oldest kept is generation {oldest}"
    )]
    Pruned { generation: u64, oldest: u64 },
    #[error("generation {generation} does not exist yet (the newest is {current})")]
    Future { generation: u64, current: u64 },
    #[error(
        "import needs an empty server: this one has {nodes} nodes, {tasks} tasks and generation {generation}"
    )]
    NotEmpty {
        nodes: usize,
        tasks: usize,
        generation: u64,
    },
    #[error("{0}")]
    Invalid(String),
}

impl<E: super::db::Observe + Into<redb::Error>> From<E> for HistoryError {
    fn from(e: E) -> Self {
        HistoryError::Store(StoreError::from(e))
    }
}

/// Creates the table; on a database that has a model but no versions yet, records every
/// entity at the current generation, which becomes the oldest one rollback can reach.
pub(super) fn init(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(VERSIONS)?;
    let mut meta = tx.open_table(META)?;
    if meta.value(Meta::VersionsSince)?.is_some() {
        return Ok(());
    }
    let generation = meta.counter(Meta::Generation)?;
    if generation > 0 {
        let model = load_model(tx)?;
        snapshot(tx, &model, generation)?;
    }
    meta.set(Meta::VersionsSince, generation)?;
    Ok(())
}

/// Records every entity of `model` at `generation`.
fn snapshot(tx: &redb::WriteTransaction, model: &Model, generation: u64) -> Result<(), StoreError> {
    let all: BTreeSet<Entity> = model
        .nodes
        .keys()
        .map(|n| Entity::Node(n.clone()))
        .chain(model.tasks.keys().map(|t| Entity::Task(t.clone())))
        .chain([Entity::Global])
        .collect();
    record(tx, model, &all, generation).map(drop)
}

/// Records the entities `touched` as `model` (the model after the edit) has them. Called by
/// `commit_changes`, so every committed generation is covered. Returns the encoded record of
/// each touched task, the same bytes `tasks_v1` holds (templates are hashed once per edit).
pub(super) fn record(
    tx: &redb::WriteTransaction,
    model: &Model,
    touched: &BTreeSet<Entity>,
    generation: u64,
) -> Result<BTreeMap<String, Vec<u8>>, StoreError> {
    let mut t = tx.open_table(VERSIONS)?;
    let mut tasks = BTreeMap::new();
    for e in touched {
        let rec = match e {
            Entity::Node(n) => model
                .nodes
                .get(n)
                .map_or(VersionRec::Gone, |n| VersionRec::Node(node_rec(n))),
            Entity::Task(name) => match model.tasks.get(name) {
                Some(task) => {
                    let rec = put_task(tx, task)?;
                    tasks.insert(name.clone(), encode(&rec)?);
                    VersionRec::Task(rec)
                }
                None => VersionRec::Gone,
            },
            Entity::Global => VersionRec::Vars(model.vars.clone()),
            Entity::Server => continue,
        };
        t.insert((e.key().as_str(), generation), encode(&rec)?.as_slice())?;
    }
    Ok(tasks)
}

/// How far past this server's clock an imported commit time may lie. A time beyond it would
/// stick (commit times never go backwards, so every later edit would carry it) and become
/// every host's Release `Date`, which apt refuses as "not valid yet" once it is more than 10 s
/// ahead of the node's clock. An export from a server whose clock ran ahead is refused: fix
/// the clock, or wait, and import again.
pub const IMPORT_CLOCK_SKEW: i64 = 10;

/// How far past the current Unix time an imported generation counter may lie. Counters count
/// edits, and an import or restore lifts them to the Unix time; a larger one is not a counter
/// umcd wrote, and one near `u64::MAX` would leave no room for the next edit.
pub const IMPORT_COUNTER_SLACK: u64 = 366 * 86_400;

/// Checks an export before [`Store::import`] writes it, as strictly as an edit: counters within
/// reach of the clock, history times not in the future, history users and lines that the
/// changelog writer accepts, and a model that passes `validate` and renders for every host.
/// Anything accepted here renders later; nothing refused reaches the database.
fn check_import(data: &Export, now: i64) -> Result<(), HistoryError> {
    let invalid = |m: String| HistoryError::Invalid(format!("import: {m}"));
    let max_counter = u64::try_from(now)
        .unwrap_or(0)
        .saturating_add(IMPORT_COUNTER_SLACK);
    let model = &data.model;
    let counters = [
        ("the generation".to_string(), data.generation),
        ("the server generation".to_string(), data.server_generation),
        (
            "the variables' generation".to_string(),
            model.vars_generation,
        ),
    ]
    .into_iter()
    .chain(
        model
            .nodes
            .values()
            .map(|n| (format!("node '{}': generation", n.name), n.generation)),
    )
    .chain(
        model
            .tasks
            .values()
            .map(|t| (format!("task '{}': generation", t.name), t.generation)),
    );
    for (what, g) in counters {
        if g > max_counter {
            return Err(invalid(format!(
                "{what} {g} is beyond any counter umcd writes (at most the current Unix time plus one year, {max_counter})"
            )));
        }
        if g > data.generation {
            return Err(invalid(format!(
                "{what} {g} is newer than the export's generation {}",
                data.generation
            )));
        }
    }
    // A rotation moves the node to its own generation (`commit_changes`), so the node's
    // generation is at least the rotation's, and the umc-node the node is served already
    // carries the new token: its next report can end the rotation. A larger value would keep
    // the previous token working until some later edit of the node.
    for n in model.nodes.values() {
        if let Some(p) = &n.previous_token
            && (p.until == 0 || p.until > n.generation)
        {
            return Err(invalid(format!(
                "node '{}': previous_token_until {} is not the generation of a rotation of this node (from 1 to the node's generation {})",
                n.name, p.until, n.generation
            )));
        }
    }
    let latest = now.saturating_add(IMPORT_CLOCK_SKEW);
    let mut seen = BTreeSet::new();
    for h in &data.history {
        let g = h.generation;
        let at = |m: String| invalid(format!("history entry for generation {g}: {m}"));
        if g == 0 || g > data.generation {
            return Err(at(format!(
                "no such generation (the export's generation is {})",
                data.generation
            )));
        }
        if !seen.insert(g) {
            return Err(at("listed twice".to_string()));
        }
        if h.time < 0 {
            return Err(at(format!("time {} is before 1970", h.time)));
        }
        if h.time > latest {
            return Err(at(format!(
                "time {} is in the future (this server's clock says {now}; at most {IMPORT_CLOCK_SKEW} s of clock difference is accepted)",
                h.time
            )));
        }
        crate::deb::check_changelog_user(&h.user).map_err(at)?;
        for c in &h.changes {
            crate::deb::check_changelog_line(&c.text).map_err(at)?;
            if let Some(e) = c.entities.iter().find(|e| Entity::from_key(e).is_none()) {
                return Err(at(format!(
                    "unknown entity '{e}' (expected node:<host>, task:<name>, global or server)"
                )));
            }
        }
    }
    model.validate().map_err(StoreError::from)?;
    // Conffiles a task once shipped: every host's task package lists them as
    // `remove-on-upgrade` lines, so each must be a path the deb writer takes (edits only ever
    // put a shipped file's path here).
    for t in model.tasks.values() {
        for p in &t.dropped {
            crate::model::validate_file_path(&t.name, p)
                .map_err(|e| invalid(format!("{e} (a conffile the task used to ship)")))?;
        }
    }
    let all: BTreeSet<Entity> = model
        .nodes
        .keys()
        .map(|n| Entity::Node(n.clone()))
        .chain(model.tasks.keys().map(|t| Entity::Task(t.clone())))
        .chain([Entity::Global])
        .collect();
    model.validate_renders(&all).map_err(StoreError::from)?;
    Ok(())
}

/// After the edit log was pruned to start at `oldest` (its oldest kept generation), drops what
/// only older generations need, once `log_keep / 16` entries were pruned since the last sweep
/// (a sweep reads every history row; batching keeps its cost per edit small). Returns the rows
/// removed. What it keeps, so that nothing a current host is served changes:
///
/// - `entity_versions_v1`: every row from `oldest` on, and each entity's newest row before it
///   (its state at `oldest`) unless that is a removal: rollback and diff reach every kept
///   generation, and say "pruned" below it;
/// - `touches_v1`: every row from `oldest` on, and each current entity's newest
///   [`CHANGELOG_LIMIT`] rows, exactly what package changelogs show: a kept package's bytes
///   never change;
/// - `times_v1`: every row from `oldest` on, the generations the model refers to (Release
///   dates) and any row with the same time as the next one (what makes a date ambiguous);
/// - `templates_v1`: templates a task record or a kept version names.
pub(super) fn sweep(
    tx: &redb::WriteTransaction,
    oldest: u64,
    pruned: u64,
    log_keep: usize,
) -> Result<u64, StoreError> {
    let mut meta = tx.open_table(META)?;
    let since = meta.counter(Meta::VersionsSince)?;
    let unswept = meta.counter(Meta::HistoryUnswept)? + pruned;
    let batch = (log_keep / 16).max(1) as u64;
    if oldest <= since || (unswept < batch && meta.value(Meta::VersionsPruned)?.is_some()) {
        meta.set(Meta::HistoryUnswept, unswept)?;
        return Ok(0);
    }
    let mut removed = 0u64;
    // What the current model refers to.
    let mut live: BTreeSet<String> = ["global".to_string(), "server".to_string()].into();
    let mut referenced: BTreeSet<u64> = [
        Meta::Generation,
        Meta::VarsGeneration,
        Meta::ServerGeneration,
    ]
    .into_iter()
    .map(|k| meta.counter(k))
    .collect::<Result<_, _>>()?;
    let mut hashes: BTreeSet<Vec<u8>> = BTreeSet::new();
    for row in tx.open_table(NODES)?.iter()? {
        let (k, v) = row?;
        let rec: NodeRec = decode(k.value(), v.value())?;
        live.insert(Entity::Node(k.value().to_string()).key());
        referenced.insert(rec.generation);
    }
    for row in tx.open_table(TASKS)?.iter()? {
        let (k, v) = row?;
        let rec: TaskRec = decode(k.value(), v.value())?;
        live.insert(Entity::Task(k.value().to_string()).key());
        referenced.insert(rec.generation);
        note_hashes(&rec, &mut hashes);
    }

    // Versions: per entity, everything before `oldest` except the newest such row.
    let mut versions = tx.open_table(VERSIONS)?;
    let mut doomed: Vec<(String, u64)> = Vec::new();
    let mut base: Option<(String, u64, bool)> = None;
    for row in versions.iter()? {
        let (k, v) = row?;
        let (key, g) = k.value();
        if g >= oldest {
            let rec: VersionRec = decode(key, v.value())?;
            if let VersionRec::Task(t) = &rec {
                note_hashes(t, &mut hashes);
            }
            continue;
        }
        let gone = matches!(decode::<VersionRec>(key, v.value())?, VersionRec::Gone);
        if let Some((bk, bg, _)) = base.take_if(|(bk, _, _)| bk.as_str() == key) {
            doomed.push((bk, bg));
        } else if let Some((bk, bg, bgone)) = base.take() {
            // The previous entity's base: kept unless it is a removal.
            if bgone {
                doomed.push((bk, bg));
            }
        }
        base = Some((key.to_string(), g, gone));
    }
    if let Some((bk, bg, true)) = base.take() {
        doomed.push((bk, bg));
    }
    for (k, g) in &doomed {
        versions.remove((k.as_str(), *g))?;
    }
    removed += doomed.len() as u64;
    // The kept bases' templates (rows before `oldest` that survived).
    for row in versions.iter()? {
        let (k, v) = row?;
        let (key, g) = k.value();
        if g < oldest
            && let VersionRec::Task(t) = decode(key, v.value())?
        {
            note_hashes(&t, &mut hashes);
        }
    }

    // Changelog index: each current entity keeps its newest CHANGELOG_LIMIT rows.
    let mut touches = tx.open_table(TOUCHES)?;
    let mut rows: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for row in touches.iter()? {
        let (k, _) = row?;
        let (key, g) = k.value();
        rows.entry(key.to_string()).or_default().push(g);
    }
    for (key, gens) in rows {
        let keep_from = if live.contains(&key) {
            gens.len().saturating_sub(CHANGELOG_LIMIT)
        } else {
            gens.len()
        };
        for g in gens[..keep_from].iter().filter(|g| **g < oldest) {
            touches.remove((key.as_str(), *g))?;
            removed += 1;
        }
    }

    // Commit times.
    let mut times = tx.open_table(TIMES)?;
    let old: Vec<(u64, i64)> = times
        .range(..oldest)?
        .map(|r| r.map(|(g, t)| (g.value(), t.value())))
        .collect::<Result<_, _>>()?;
    let after_old = times
        .range(oldest..)?
        .next()
        .transpose()?
        .map(|(_, t)| t.value());
    for (i, (g, t)) in old.iter().enumerate() {
        let next = old.get(i + 1).map(|(_, t)| *t).or(after_old);
        if !referenced.contains(g) && next != Some(*t) {
            times.remove(*g)?;
            removed += 1;
        }
    }

    // Templates nothing names any more.
    let mut templates = tx.open_table(TEMPLATES)?;
    let before = templates.len()?;
    templates.retain(|k, _| hashes.contains(k))?;
    removed += before - templates.len()?;

    meta.set(Meta::VersionsSince, oldest)?;
    meta.set(Meta::VersionsPruned, oldest)?;
    meta.set(Meta::HistoryUnswept, 0)?;
    Ok(removed)
}

fn note_hashes(rec: &TaskRec, hashes: &mut BTreeSet<Vec<u8>>) {
    for f in &rec.files {
        if let Ok(h) = hex::decode(&f.sha256) {
            hashes.insert(h);
        }
    }
}

/// The model as generation `generation` left it, read in `tx`.
fn model_at(tx: &redb::ReadTransaction, generation: u64) -> Result<Model, HistoryError> {
    let meta = tx.open_table(META)?;
    let current = meta.counter(Meta::Generation)?;
    let since = meta.counter(Meta::VersionsSince)?;
    let pruned = meta.value(Meta::VersionsPruned)?;
    if generation > current {
        return Err(HistoryError::Future {
            generation,
            current,
        });
    }
    if generation < since && pruned == Some(since) {
        return Err(HistoryError::Pruned {
            generation,
            oldest: since,
        });
    }
    if generation < since {
        return Err(HistoryError::Unrecorded { generation, since });
    }
    let mut newest: BTreeMap<String, (u64, Vec<u8>)> = BTreeMap::new();
    for row in tx.open_table(VERSIONS)?.iter()? {
        let (k, v) = row?;
        let (key, g) = k.value();
        if g <= generation {
            newest.insert(key.to_string(), (g, v.value().to_vec()));
        }
    }
    let templates = tx.open_table(TEMPLATES)?;
    let mut model = Model::default();
    for (key, (g, bytes)) in newest {
        match (Entity::from_key(&key), decode::<VersionRec>(&key, &bytes)?) {
            (Some(Entity::Node(n)), VersionRec::Node(r)) => {
                model.nodes.insert(n.clone(), node_from(&n, r));
            }
            (Some(Entity::Task(t)), VersionRec::Task(r)) => {
                model.tasks.insert(t.clone(), task_from(&t, r, &templates)?);
            }
            (Some(Entity::Global), VersionRec::Vars(v)) => {
                model.vars = v;
                model.vars_generation = g;
            }
            _ => {}
        }
    }
    Ok(model)
}

/// What `export` reads.
pub struct Export {
    pub generation: u64,
    pub server_generation: u64,
    pub model: Model,
    pub history: Vec<GenerationForm>,
}

impl Store {
    /// The model as generation `generation` left it.
    pub fn model_at(&self, generation: u64) -> Result<Model, HistoryError> {
        let tx = self.db.begin_read()?;
        model_at(&tx, generation)
    }

    /// What a rollback to generation `to` makes the model: generation `to`'s, except node
    /// tokens, which do not go back. A node the rollback re-creates gets the newest token
    /// recorded for it, and no previous token: the token it had at `to` may have been revoked
    /// since (`node token --rotate --force`, or retired by a rotation the node completed),
    /// and must never work again. (Nodes that exist keep their tokens, as in every edit.)
    pub fn rollback_target(&self, to: u64) -> Result<Model, HistoryError> {
        let tx = self.db.begin_read()?;
        let mut want = model_at(&tx, to)?;
        let versions = tx.open_table(VERSIONS)?;
        for (name, node) in &mut want.nodes {
            let key = Entity::Node(name.clone()).key();
            for row in versions
                .range((key.as_str(), 0)..=(key.as_str(), u64::MAX))?
                .rev()
            {
                let (_, v) = row?;
                if let VersionRec::Node(r) = decode::<VersionRec>(&key, v.value())? {
                    node.token = r.token;
                    break;
                }
            }
            node.previous_token = None;
        }
        Ok(want)
    }

    /// The model, its counters, and (when `history`) every generation record, oldest first.
    pub fn export(&self, history: bool) -> Result<Export, StoreError> {
        let tx = self.db.begin_read()?;
        let (generation, model) = load_current(&tx)?;
        let server_generation = tx.open_table(META)?.counter(Meta::ServerGeneration)?;
        let mut out = Vec::new();
        if history {
            for row in tx.open_table(GENERATIONS)?.iter()? {
                let (g, v) = row?;
                let rec: super::GenRec = decode("generation", v.value())?;
                out.push(GenerationForm {
                    generation: g.value(),
                    time: rec.time,
                    user: rec.user,
                    changes: rec
                        .changes
                        .into_iter()
                        .map(|c| ChangeForm {
                            text: c.text,
                            entities: c.entities,
                        })
                        .collect(),
                });
            }
        }
        Ok(Export {
            generation,
            server_generation,
            model,
            history: out,
        })
    }

    /// Restores an export into an empty server: the model with its generation counters and
    /// tokens, and the history (generations, the changelog index and commit times, all derived
    /// from the generation records), so every host's packages render byte-identical. Then lifts
    /// the generation floor to `now`: the next edit's versions are above anything any node saw,
    /// also from edits made after the export.
    ///
    /// The export is checked like an edit first (see [`check_import`]); a refused import writes
    /// nothing.
    pub fn import(&self, data: &Export, now: i64) -> Result<u64, HistoryError> {
        check_import(data, now)?;
        if let Some(n) = data.model.nodes.values().find(|n| n.token.is_empty()) {
            return Err(HistoryError::Invalid(format!(
                "node '{}' has no token: import needs an export made with --with-secrets, or enrolled nodes could no longer authenticate (use 'apply' to create a fleet with new tokens)",
                n.name
            )));
        }
        if let Some(n) = data.model.nodes.values().find(|n| {
            !crate::model::valid_token(&n.token)
                || n.previous_token
                    .as_ref()
                    .is_some_and(|p| !crate::model::valid_token(&p.token))
        }) {
            return Err(HistoryError::Invalid(format!(
                "node '{}': token and previous_token must be 64 lowercase hex digits, as umcd makes them",
                n.name
            )));
        }
        // Release dates come from the commit times of the generations the model refers to;
        // without them every view would be dated 1970 and apt would keep its old lists.
        let recorded: BTreeSet<u64> = data.history.iter().map(|g| g.generation).collect();
        let referenced = data
            .model
            .nodes
            .values()
            .map(|n| n.generation)
            .chain(data.model.tasks.values().map(|t| t.generation))
            .chain([data.model.vars_generation, data.server_generation])
            .filter(|g| *g > 0);
        if let Some(g) = referenced.into_iter().find(|g| !recorded.contains(g)) {
            return Err(HistoryError::Invalid(format!(
                "the export has no history entry for generation {g}, which the model refers to: import needs an export made with --history (for a server whose edit log was pruned, use backup and restore)"
            )));
        }
        let tx = self.db.begin_write()?;
        {
            let (generation, current) = load_current(&tx)?;
            if generation != 0 || !current.nodes.is_empty() || !current.tasks.is_empty() {
                return Err(HistoryError::NotEmpty {
                    nodes: current.nodes.len(),
                    tasks: current.tasks.len(),
                    generation,
                });
            }
        }
        {
            // Into empty tables: every entity is new.
            let (model, empty) = (&data.model, Model::default());
            sync_table(
                &mut tx.open_table(NODES)?,
                &empty.nodes,
                &model.nodes,
                |t, name, n| {
                    t.insert(name, encode(&node_rec(n))?.as_slice())?;
                    Ok(())
                },
            )?;
            sync_table(
                &mut tx.open_table(TASKS)?,
                &empty.tasks,
                &model.tasks,
                |t, name, task| {
                    t.insert(name, encode(&put_task(&tx, task)?)?.as_slice())?;
                    Ok(())
                },
            )?;
            sync_table(
                &mut tx.open_table(VARS)?,
                &empty.vars,
                &model.vars,
                |t, k, v| {
                    t.insert(k, v.as_str())?;
                    Ok(())
                },
            )?;
            let mut gens = tx.open_table(GENERATIONS)?;
            let mut times = tx.open_table(TIMES)?;
            let mut touches = tx.open_table(TOUCHES)?;
            for g in &data.history {
                let rec = super::GenRec {
                    time: g.time,
                    user: g.user.clone(),
                    changes: g
                        .changes
                        .iter()
                        .map(|c| ChangeRec {
                            text: c.text.clone(),
                            entities: c.entities.clone(),
                        })
                        .collect(),
                };
                gens.insert(g.generation, encode(&rec)?.as_slice())?;
                times.insert(g.generation, g.time)?;
                let mut lines: BTreeMap<&str, Vec<String>> = BTreeMap::new();
                for c in &g.changes {
                    for e in &c.entities {
                        lines.entry(e).or_default().push(c.text.clone());
                    }
                }
                for (e, lines) in lines {
                    let touch = TouchRec {
                        time: g.time,
                        user: g.user.clone(),
                        lines,
                    };
                    touches.insert((e, g.generation), encode(&touch)?.as_slice())?;
                }
            }
            let mut meta = tx.open_table(META)?;
            meta.set(Meta::Generation, data.generation)?;
            meta.set(Meta::VarsGeneration, data.model.vars_generation)?;
            meta.set(Meta::ServerGeneration, data.server_generation)?;
            super::meta::raise_floor(&mut meta, now.max(0) as u64)?;
            // History before the import has no entity versions: rollback reaches back to the
            // imported state, not before it.
            meta.set(Meta::VersionsSince, data.generation)?;
        }
        snapshot(&tx, &data.model, data.generation)?;
        tx.commit()?;
        Ok(data.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableTableMetadata;

    use crate::api::Op;
    use crate::store::EditOptions;
    use crate::store::tests::{add, store};

    #[test]
    fn imported_times_ahead_of_the_clock_are_refused_past_apts_tolerance() {
        let (_dir, s) = store();
        let now = 1_700_000_000;
        let add = Op::NodeAdd {
            host: "a.example.com".into(),
            vars: BTreeMap::new(),
            ssh: None,
        };
        s.edit("admin", &[add], now, EditOptions::default())
            .expect("edit");
        let mut data = s.export(true).expect("export");
        data.history[0].time = now + IMPORT_CLOCK_SKEW;
        check_import(&data, now).expect("within the skew");
        // A minute ahead would be every host's Release Date, which apt refuses as not valid yet.
        data.history[0].time = now + 60;
        let e = check_import(&data, now)
            .expect_err("a minute ahead")
            .to_string();
        assert!(e.contains("in the future"), "{e}");
    }

    fn rotate(host: &str, force: bool) -> Op {
        Op::NodeTokenRotate {
            host: host.into(),
            force,
        }
    }

    /// Security issue 13: an imported rotation's generation is bounded like the other
    /// counters (by the node's own generation, which a rotation moves to its generation), and
    /// the previous token must look like a token.
    #[test]
    fn imported_previous_token_until_is_bounded() {
        let (_d, s) = store();
        let now = 1_700_000_000;
        let edit = |ops: &[Op]| {
            s.edit("sh", ops, now, EditOptions::default())
                .expect("edit")
                .generation
        };
        edit(&[add("a.example.com")]);
        let g = edit(&[rotate("a.example.com", false)]);
        edit(&[Op::VarSet {
            vars: [("x".to_string(), "1".to_string())].into(),
        }]);
        let data = s.export(true).expect("export");
        assert!(data.generation > g);
        let with_until = |until: u64| {
            let mut d = Export {
                generation: data.generation,
                server_generation: data.server_generation,
                model: data.model.clone(),
                history: data.history.clone(),
            };
            let n = d.model.nodes.get_mut("a.example.com").expect("node");
            n.previous_token.as_mut().expect("rotating").until = until;
            d
        };
        check_import(&with_until(g), now).expect("as exported");
        for until in [0, g + 1, data.generation, u64::MAX] {
            let e = check_import(&with_until(until), now)
                .expect_err("out of bounds")
                .to_string();
            assert!(e.contains("previous_token_until"), "{until}: {e}");
        }
        let mut bad = with_until(g);
        let n = bad.model.nodes.get_mut("a.example.com").expect("node");
        n.previous_token.as_mut().expect("rotating").token = "not a token".into();
        let (_d2, s2) = store();
        let e = s2.import(&bad, now).expect_err("bad token").to_string();
        assert!(e.contains("previous_token must be 64"), "{e}");
        assert_eq!(s2.generation().expect("generation"), 0);
        s2.import(&with_until(g), now).expect("import");
    }

    /// Found by `http::import_fuzz`: an imported task's `dropped` paths were not checked, so
    /// an import with a relative one was accepted and every host with the task got a 500
    /// (the deb writer refuses the `remove-on-upgrade` line) until an admin edited the task.
    #[test]
    fn imported_dropped_conffiles_are_paths() {
        let now = 1_700_000_000;
        let (_d, s) = store();
        setup(&s, "x", true);
        let data = s.export(true).expect("export");
        for bad in [
            "relative/path",
            "/etc/a b",
            "/etc/x\nremove-on-upgrade /etc/passwd",
            "/etc/../passwd",
            "",
        ] {
            let mut d = Export {
                generation: data.generation,
                server_generation: data.server_generation,
                model: data.model.clone(),
                history: data.history.clone(),
            };
            let web = d.model.tasks.get_mut("web").expect("web");
            web.dropped.insert(bad.to_string());
            let (_d2, s2) = store();
            let e = s2.import(&d, now).expect_err(bad).to_string();
            assert!(
                e.contains("a conffile the task used to ship"),
                "{bad:?}: {e}"
            );
            assert_eq!(s2.generation().expect("generation"), 0);
        }
        // A real one imports, and the host's packages build.
        let mut d = data;
        let web = d.model.tasks.get_mut("web").expect("web");
        web.dropped.insert("/etc/old.conf".to_string());
        let (_d2, s2) = store();
        s2.import(&d, now).expect("import");
        let view = s2.host_data("a.example.com").expect("read").expect("host");
        let serving = crate::nodefiles::Serving {
            keyring: b"keyring",
            conffiles: crate::model::ConffilePolicy::KeepLocal,
            ca: None,
        };
        for p in crate::repo::packages(&view, serving).expect("packages") {
            crate::repo::build_deb(&p).expect("deb");
        }
    }

    fn file(template: &str) -> Op {
        Op::TaskFileAdd {
            task: "web".into(),
            path: "/etc/big.conf".into(),
            template: template.into(),
            mode: None,
            reload: None,
            restart: None,
        }
    }

    fn depend(i: usize) -> Op {
        Op::TaskDepend {
            task: "web".into(),
            relations: vec![format!("pkg{i}")],
        }
    }

    /// About 900 KB of text, as in the review's repro.
    fn big_template() -> String {
        (0..14_400).map(|i| format!("{i:062} \n")).collect()
    }

    /// Task `web` shipping `template`; with `node`, node a.example.com has the task (and every
    /// edit of the task renders the template for it).
    fn setup(s: &Store, template: &str, node: bool) {
        let mut ops = vec![
            Op::TaskAdd {
                task: "web".into(),
                description: None,
            },
            file(template),
        ];
        if node {
            ops.push(Op::NodeAdd {
                host: "a.example.com".into(),
                vars: BTreeMap::new(),
                ssh: None,
            });
            ops.push(Op::Assign {
                host: "a.example.com".into(),
                tasks: vec!["web".into()],
            });
        }
        s.edit("sh", &ops, 1_000, EditOptions::default())
            .expect("setup");
    }

    fn rows<K: redb::Key + 'static, V: redb::Value + 'static>(
        s: &Store,
        def: redb::TableDefinition<K, V>,
    ) -> u64 {
        let tx = s.db.begin_read().expect("read");
        tx.open_table(def).expect("table").len().expect("len")
    }

    /// Review finding 11: a one-line edit of a task with a 900 KB template grew the database by
    /// 1.85 MB (two copies of the template per edit). The template is now stored once; 50 edits
    /// must stay within the 1,000-edit budget of the bench (5 MB) scaled down: 256 KiB.
    #[test]
    fn one_line_edits_do_not_copy_unchanged_templates() {
        let (dir, s) = store();
        // No node: rendering 900 KB per edit would only slow the test down.
        setup(&s, &big_template(), false);
        let path = dir.path().join("umc.redb");
        let before = std::fs::metadata(&path).expect("stat").len();
        for i in 0..50 {
            s.edit("sh", &[depend(i)], 1_001 + i as i64, EditOptions::default())
                .expect("edit");
        }
        let after = std::fs::metadata(&path).expect("stat").len();
        let growth = after.saturating_sub(before);
        println!("50 one-line edits: the database grew {before} -> {after} bytes");
        assert!(
            growth < 256 << 10,
            "50 one-line edits grew the database by {growth} bytes"
        );
        assert_eq!(rows(&s, TEMPLATES), 1, "one template, stored once");
        let (_, m) = s.model().expect("model");
        assert_eq!(
            m.tasks["web"].files["/etc/big.conf"].template,
            big_template()
        );
        assert_eq!(
            s.model_at(2).expect("model at 2").tasks["web"].depends,
            vec!["pkg0".to_string()]
        );
    }

    /// Review finding 11: history is pruned to `log_keep` generations, without changing what
    /// a current host is served, and rollback says so below the kept range.
    #[test]
    fn pruning_keeps_changelogs_and_dates_and_says_pruned() {
        let (_d, s) = store();
        setup(&s, "first {{ host.fqdn }}", true);
        // A second template that a later edit replaces: pruning drops the old text.
        s.edit(
            "sh",
            &[file("old {{ host.fqdn }}")],
            1_001,
            EditOptions::default(),
        )
        .expect("edit");
        s.edit(
            "sh",
            &[file("new {{ host.fqdn }}")],
            1_002,
            EditOptions::default(),
        )
        .expect("edit");
        for i in 0..40 {
            // Two edits per second now and then: an ambiguous date must stay ambiguous.
            s.edit(
                "sh",
                &[depend(i)],
                1_003 + i as i64 / 2,
                EditOptions::default(),
            )
            .expect("edit");
        }
        let view = s.host_data("a.example.com").expect("read").expect("host");
        let current = s.generation().expect("generation");
        assert!(rows(&s, TEMPLATES) >= 2);

        assert!(s.prune(5, 10).expect("prune") > 0);

        let pruned = s.host_data("a.example.com").expect("read").expect("host");
        assert_eq!(pruned.history, view.history, "changelogs changed");
        assert_eq!(pruned.date, view.date);
        assert_eq!(pruned.date_ambiguous, view.date_ambiguous);
        assert_eq!(
            pruned.history[&Entity::Task("web".into())].len(),
            CHANGELOG_LIMIT
        );
        let oldest = current - 4;
        assert_eq!(
            s.model_at(oldest).expect("kept").tasks["web"].depends.len(),
            36
        );
        let e = s.model_at(oldest - 1).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "generation {} has been pruned (umcd keeps the newest log_keep generations); the oldest kept is generation {oldest}",
                oldest - 1
            )
        );
        // The node's own generation still has its commit time (status reads it).
        assert_eq!(s.times(&[1].into()).expect("times").get(&1), Some(&1_000));
        assert_eq!(rows(&s, TEMPLATES), 1, "the replaced template is gone");
        assert!(rows(&s, VERSIONS) <= 5 + 3, "{}", rows(&s, VERSIONS));
        assert_eq!(rows(&s, GENERATIONS), 5);
        assert_eq!(s.log(None, 100).expect("log").len(), 5);
        // Edits and renders go on.
        s.edit("sh", &[depend(99)], 2_000, EditOptions::default())
            .expect("edit");
        assert_eq!(
            s.model_at(oldest).expect("kept").tasks["web"].files.len(),
            1
        );
    }
}
