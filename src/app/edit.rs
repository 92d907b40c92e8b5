//! Changes to the model. Every one is a list of ops committed as one generation through
//! `Store::edit` (which also checks package names against the catalogs); this module adds
//! who may make which edit ([`ops_role`], shared by the API and the console), publishes the
//! new generation, and turns fleet files and past generations into ops: `apply`, `rollback`,
//! `import` into an empty server, and the diff between two generations.

use crate::api::{ImportResponse, NodeToken, Op, Role};
use crate::fleetfile::{self, Fleet, Lines, Problem};
use crate::model::{Model, TokenSource};
use crate::store::{Caller, EditOptions, EditOutcome, Export, StoreError};

use super::{App, AppError, ErrorKind, now};

/// The role an edit needs: operators change nodes and assignments, nothing else.
pub fn ops_role(ops: &[Op]) -> Option<(Role, &Op)> {
    ops.iter()
        .map(|op| match op {
            // umcd's URL is where the node sends its token (apt's auth.conf and its reports
            // go there): whoever sets it can read the token, an admin's secret.
            Op::NodeSet { url: Some(_), .. } => (Role::Admin, op),
            Op::NodeAdd { .. }
            | Op::NodeRemove { .. }
            | Op::NodeSet { .. }
            | Op::Assign { .. }
            | Op::Unassign { .. } => (Role::Operator, op),
            // A node's credentials are the admin's business, like reading them.
            Op::NodeTokenRotate { .. } => (Role::Admin, op),
            _ => (Role::Admin, op),
        })
        .max_by_key(|(r, _)| *r)
}

/// What a fleet file says, as parsed for `apply` and `import`.
struct FleetFile {
    name: String,
    fleet: Fleet,
    lines: Lines,
    model: Model,
}

impl FleetFile {
    /// Parses `text` (TOML, or JSON when `json`); `name` names it in messages ("fleet file"
    /// when empty).
    fn parse(name: &str, text: &str, json: bool) -> Result<FleetFile, AppError> {
        let name = if name.is_empty() {
            "fleet file".to_string()
        } else {
            name.to_string()
        };
        let bad = |p: Vec<Problem>| AppError::Rejected(fleetfile::describe(&name, &p));
        let (fleet, lines) = if json {
            fleetfile::parse_json(text)
        } else {
            fleetfile::parse_toml(text)
        }
        .map_err(bad)?;
        let model = fleet.to_model(&lines).map_err(bad)?;
        Ok(FleetFile {
            name,
            fleet,
            lines,
            model,
        })
    }

    /// An edit's rejection, placed at the line of the entity it names.
    fn placed(&self, e: AppError) -> AppError {
        let kind = e.kind();
        let message = e.to_string();
        let p = Problem {
            line: self.lines.for_message(&message),
            message,
        };
        let described = fleetfile::describe(&self.name, &[p]);
        match kind {
            ErrorKind::Invalid => AppError::Invalid(described),
            ErrorKind::Rejected => AppError::Rejected(described),
            ErrorKind::Forbidden => AppError::Forbidden(described),
            ErrorKind::NotFound => AppError::NotFound(described),
            ErrorKind::Conflict => AppError::Conflict(described),
            ErrorKind::Unavailable | ErrorKind::Internal => e,
        }
    }
}

/// Ops computed against generation `base` by `verb` ("apply", "rollback"): they make what was
/// asked for only while the model is still at `base` (`EditOptions::base`).
struct Plan {
    verb: &'static str,
    base: u64,
    ops: Vec<Op>,
    opts: EditOptions,
}

/// The refusal of a plan computed against generation `base` once the model moved past it.
fn stale(base: u64, verb: &str) -> AppError {
    AppError::Conflict(format!(
        "the model changed since the diff was computed against generation {base}; run {verb} again"
    ))
}

struct NoTokens;
impl TokenSource for NoTokens {
    fn token(&mut self) -> String {
        String::new()
    }
}

impl App {
    /// Commits `ops` as `caller`, if its role may make them ([`ops_role`]), as one
    /// generation; unknown package names fail unless `force`.
    pub fn edit(&self, caller: &Caller, ops: &[Op], force: bool) -> Result<EditOutcome, AppError> {
        if let Some((need, op)) = ops_role(ops).filter(|(need, _)| caller.role < *need) {
            return Err(AppError::Forbidden(format!(
                "user '{}' ({}) may not edit with op '{}': it needs role {}",
                caller.name,
                caller.role.as_str(),
                op.name(),
                need.as_str()
            )));
        }
        let opts = EditOptions {
            force,
            ..EditOptions::default()
        };
        self.commit(&caller.name, ops, opts)
    }

    /// Gives node `host` a new token as an edit by `user` (in the history, durable before
    /// this returns); returns the edit and the node's new token.
    pub fn rotate_node_token(
        &self,
        user: &str,
        host: &str,
        force: bool,
    ) -> Result<(EditOutcome, NodeToken), AppError> {
        let op = Op::NodeTokenRotate {
            host: host.to_string(),
            force,
        };
        let e = self.commit(user, &[op], EditOptions::default())?;
        Ok((e, self.node_token(host)?))
    }

    /// Makes the model equal fleet file `text`, as one generation by `user` (with
    /// `dry_run`, says what would change). Tokens and generation counters in the file are
    /// ignored, except that a node the file creates gets the file's token when it has one.
    /// A refusal names the file and the line of the entity it is about.
    pub fn apply_fleet(
        &self,
        user: &str,
        name: &str,
        text: &str,
        json: bool,
        force: bool,
        dry_run: bool,
    ) -> Result<EditOutcome, AppError> {
        let file = FleetFile::parse(name, text, json)?;
        let plan = self.plan("apply", &file.model, None, force, dry_run, None)?;
        self.commit_plan(user, plan).map_err(|e| file.placed(e))
    }

    /// Makes the model equal generation `to`'s, as one new generation by `user`.
    pub fn rollback(
        &self,
        user: &str,
        to: u64,
        force: bool,
        dry_run: bool,
    ) -> Result<EditOutcome, AppError> {
        // Node tokens never go back (see `Store::rollback_target`). The target's tokens are
        // the newest as of the generation read first: the plan must be computed at that one.
        let read_at = self.store.generation()?;
        let want = self.store.rollback_target(to)?;
        let preface = format!("User '{user}' rolled back to generation {to}");
        let plan = self.plan(
            "rollback",
            &want,
            Some(read_at),
            force,
            dry_run,
            Some(preface),
        )?;
        self.commit_plan(user, plan)
    }

    /// Restores an export (with secrets, and its history when it has one) into an empty
    /// server.
    pub fn import_fleet(
        &self,
        name: &str,
        text: &str,
        json: bool,
    ) -> Result<ImportResponse, AppError> {
        let file = FleetFile::parse(name, text, json)?;
        let export = Export {
            generation: file.fleet.umc.generation.unwrap_or(0),
            server_generation: file.fleet.umc.server_generation.unwrap_or(0),
            model: file.model,
            history: file.fleet.history,
        };
        let generation = self.store.import(&export, now())?;
        self.set_generation(generation);
        Ok(ImportResponse {
            generation,
            nodes: export.model.nodes.len(),
            tasks: export.model.tasks.len(),
            history: export.history.len(),
        })
    }

    /// The whole model in its file form, with its history when `history`; node tokens only
    /// with `secrets` (the caller checks who may see them).
    pub fn export_fleet(&self, history: bool, secrets: bool) -> Result<Fleet, AppError> {
        let e = self.store.export(history)?;
        let mut fleet = Fleet::from_model(&e.model, e.generation, e.server_generation, secrets);
        fleet.history = e.history;
        Ok(fleet)
    }

    /// The change lines that turn generation `from`'s model into generation `to`'s: the ops
    /// between them replayed on a scratch copy (apply's lines name no user).
    pub fn diff(&self, from: u64, to: u64) -> Result<Vec<String>, AppError> {
        let old = self.store.model_at(from)?;
        let new = self.store.model_at(to)?;
        let (ops, _) = fleetfile::diff_ops(&old, &new);
        let mut scratch = old.clone();
        let mut changes = Vec::new();
        let mut tokens = NoTokens;
        for op in &ops {
            let lines = scratch
                .apply(op, &mut tokens)
                .map_err(|e| AppError::internal(format!("diff {from}..{to}: {e}")))?;
            changes.extend(lines.into_iter().map(|c| c.text));
        }
        Ok(changes)
    }

    /// The ops that make the model equal `want`, computed against the newest generation;
    /// `read_at`: the generation `want` was read at, when it depends on the store (a
    /// conflict when the model is at another one now).
    fn plan(
        &self,
        verb: &'static str,
        want: &Model,
        read_at: Option<u64>,
        force: bool,
        dry_run: bool,
        preface: Option<String>,
    ) -> Result<Plan, AppError> {
        let (base, have) = self.store.model()?;
        if let Some(g) = read_at.filter(|g| *g != base) {
            return Err(stale(g, verb));
        }
        let (ops, tokens) = fleetfile::diff_ops(&have, want);
        let opts = EditOptions {
            tokens,
            preface,
            force,
            dry_run,
            base: Some(base),
        };
        Ok(Plan {
            verb,
            base,
            ops,
            opts,
        })
    }

    /// Commits `plan` by `user`, refused when another edit committed since its generation;
    /// no ops: the model is as wanted already, nothing to change.
    fn commit_plan(&self, user: &str, plan: Plan) -> Result<EditOutcome, AppError> {
        let Plan {
            verb,
            base,
            ops,
            opts,
        } = plan;
        if ops.is_empty() {
            return Ok(EditOutcome {
                generation: base,
                changes: Vec::new(),
                warnings: Vec::new(),
            });
        }
        // With a base, the store's one conflict is a generation past it.
        self.commit(user, &ops, opts).map_err(|e| match e {
            AppError::Store(StoreError::Conflict(_)) => stale(base, verb),
            e => e,
        })
    }

    /// Commits `ops` by `user` and, unless it is a dry run, publishes the new generation.
    fn commit(&self, user: &str, ops: &[Op], opts: EditOptions) -> Result<EditOutcome, AppError> {
        let dry_run = opts.dry_run;
        let e = self.store.edit(user, ops, now(), opts)?;
        if !dry_run {
            self.set_generation(e.generation);
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use crate::api::{Op, Role};
    use crate::app::ErrorKind;
    use crate::app::testing::{app, edit, node_add};
    use crate::store::Caller;

    fn caller(name: &str, role: Role) -> Caller {
        Caller {
            name: name.into(),
            role,
        }
    }

    #[test]
    fn edits_follow_the_role_rules_and_publish_their_generation() {
        let (_dir, app) = app();
        let op = caller("op", Role::Operator);
        let task = Op::TaskAdd {
            task: "web".into(),
            description: None,
        };
        let e = app
            .edit(&op, &[node_add("a.example"), task], false)
            .expect_err("operators add no tasks");
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        assert_eq!(
            e.to_string(),
            "user 'op' (operator) may not edit with op 'task_add': it needs role admin"
        );
        assert_eq!(app.generation(), 0, "nothing committed");

        let done = app
            .edit(&op, &[node_add("a.example")], false)
            .expect("operators add nodes");
        assert_eq!(app.generation(), done.generation);
        assert_eq!(done.changes.len(), 1);

        // A node's URL is where it sends its token: setting it, or clearing it, is an
        // admin's edit, like reading the token.
        for url in ["http://evil.example:8080", ""] {
            let set_url = Op::NodeSet {
                host: "a.example".into(),
                set_vars: Default::default(),
                unset_vars: Vec::new(),
                ssh: None,
                url: Some(url.into()),
                conffiles: None,
            };
            let e = app
                .edit(&op, std::slice::from_ref(&set_url), false)
                .expect_err("operators set no URL");
            assert_eq!(e.kind(), ErrorKind::Forbidden, "{url:?}");
            assert!(e.to_string().contains("'node_set'"), "{e}");
            app.edit(&caller("adam", Role::Admin), &[set_url], false)
                .expect("admins set the URL");
        }
        let set_var = Op::NodeSet {
            host: "a.example".into(),
            set_vars: [("k".to_string(), "v".to_string())].into(),
            unset_vars: Vec::new(),
            ssh: None,
            url: None,
            conffiles: None,
        };
        app.edit(&op, &[set_var], false)
            .expect("operators set node variables");

        let (rotated, node) = app
            .rotate_node_token("admin", "a.example", false)
            .expect("rotate");
        assert_eq!(app.generation(), rotated.generation);
        assert!(node.rotation.is_some());
        assert_eq!(
            node.token,
            app.node_token("a.example").expect("token").token
        );
        let e = app
            .rotate_node_token("admin", "b.example", false)
            .expect_err("unknown");
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn apply_rollback_and_diff_replay_ops() {
        let (_dir, app) = app();
        edit(&app, vec![node_add("a.example")]);
        let file = crate::fleetfile::to_toml(&app.export_fleet(false, false).expect("export"));
        let g2 = edit(&app, vec![node_add("b.example")]);

        let dry = app
            .apply_fleet("admin", "f.toml", &file, false, false, true)
            .expect("dry run");
        assert!(!dry.changes.is_empty());
        assert_eq!(app.generation(), g2, "a dry run publishes nothing");
        assert!(app.model().expect("model").nodes.contains_key("b.example"));

        let g3 = app
            .apply_fleet("admin", "f.toml", &file, false, false, false)
            .expect("apply")
            .generation;
        assert_eq!(app.generation(), g3);
        assert!(!app.model().expect("model").nodes.contains_key("b.example"));
        let again = app
            .apply_fleet("admin", "f.toml", &file, false, false, false)
            .expect("apply again");
        assert_eq!((again.generation, again.changes.len()), (g3, 0));

        let diff = app.diff(g2, g3).expect("diff");
        assert_eq!(diff.len(), 1, "{diff:?}");
        assert!(
            diff[0].contains("b.example") && !diff[0].starts_with("User"),
            "{diff:?}"
        );

        let back = app.rollback("admin", g2, false, false).expect("rollback");
        assert_eq!(
            back.changes[0].text,
            format!("User 'admin' rolled back to generation {g2}")
        );
        assert!(app.model().expect("model").nodes.contains_key("b.example"));

        let e = app
            .apply_fleet("admin", "", "[[bogus", false, false, false)
            .expect_err("malformed");
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert!(e.to_string().starts_with("fleet file: "), "{e}");
    }

    /// Security issue 13: a rollback re-creates a removed node with the newest token it had,
    /// never the one `node token --rotate --force` revoked (nor one a rotation retired), and
    /// with no previous token.
    #[test]
    fn a_rollback_never_brings_back_a_revoked_token() {
        let (_dir, app) = app();
        let (a, b) = ("a.example.com", "b.example.com");
        let token = |h: &str| app.store.node(h).expect("read").map(|n| n.token);
        edit(&app, vec![node_add(a), node_add(b)]);
        let (a1, b1) = (token(a), token(b));
        app.rotate_node_token("admin", a, true).expect("rotate a");
        let (rotating, _) = app.rotate_node_token("admin", b, false).expect("rotate b");
        let (a2, b2) = (token(a), token(b));
        assert!(a2 != a1 && b2 != b1);
        let remove = |h: &str| Op::NodeRemove { host: h.into() };
        let gone = edit(&app, vec![remove(a), remove(b)]);
        let check = || {
            assert_eq!(token(a), a2, "a's revoked token came back");
            assert_eq!(token(b), b2, "b's retired token came back");
            let n = app.store.node(b).expect("read").expect("b");
            assert_eq!(n.previous_token, None);
        };
        // When b's rotation was committed, its old token still worked.
        let g = rotating.generation;
        let at = app.store.model_at(g).expect("model");
        assert!(at.nodes[b].previous_token.is_some());
        let dry = app.rollback("admin", g, false, true).expect("dry run");
        assert!(dry.changes.len() > 1);
        assert_eq!(token(a), None, "a dry run writes nothing");
        app.rollback("admin", g, false, false).expect("rollback");
        check();
        // Gone again, then back to before any rotation.
        app.rollback("admin", gone, false, false).expect("rollback");
        assert_eq!(token(a), None);
        app.rollback("admin", 1, false, false).expect("rollback");
        check();
        // Nodes that exist keep their tokens, as ever.
        app.rollback("admin", 1, false, false)
            .expect("nothing to do");
        check();
    }

    /// An apply's ops are computed against the generation it read: when another edit commits
    /// before they do, the apply is refused instead of applying them to a model they were not
    /// computed for (here they would leave `c.example`, which the file does not have).
    #[test]
    fn an_apply_computed_against_an_older_generation_is_refused() {
        let (_dir, app) = app();
        edit(&app, vec![node_add("a.example"), node_add("b.example")]);
        let text = crate::fleetfile::to_toml(&app.export_fleet(false, false).expect("export"));
        let n = edit(
            &app,
            vec![Op::NodeRemove {
                host: "b.example".into(),
            }],
        );
        let file = super::FleetFile::parse("f.toml", &text, false).expect("parse");
        let plan = app
            .plan("apply", &file.model, None, false, false, None)
            .expect("plan");
        assert_eq!(plan.base, n);
        edit(&app, vec![node_add("c.example")]);
        let e = app.commit_plan("admin", plan).expect_err("stale");
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(
            e.to_string(),
            format!(
                "the model changed since the diff was computed against generation {n}; run apply again"
            )
        );
        assert_eq!(app.generation(), n + 1, "nothing committed");
        let m = app.model().expect("model");
        assert!(!m.nodes.contains_key("b.example") && m.nodes.contains_key("c.example"));

        // Computed again, it makes the model the file.
        app.apply_fleet("admin", "f.toml", &text, false, false, false)
            .expect("apply");
        let m = app.model().expect("model");
        let hosts: Vec<&str> = m.nodes.keys().map(String::as_str).collect();
        assert_eq!(hosts, ["a.example", "b.example"]);

        // A rollback's target (its tokens) read at a generation the model has left is refused
        // before any diff.
        let old = app.generation() - 1;
        let want = app.store.rollback_target(1).expect("target");
        let Err(e) = app.plan("rollback", &want, Some(old), false, false, None) else {
            panic!("a target read at generation {old} planned");
        };
        assert_eq!(
            e.to_string(),
            format!(
                "the model changed since the diff was computed against generation {old}; run rollback again"
            )
        );
    }
}
