//! What the admin API and the console read about the model: nodes, tasks, variables and the
//! files a host gets, from the model at the newest generation ([`App::model`], decoded once
//! per generation and shared), and who may see a variable's value ([`shown_vars`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::{
    FileInfo, HostStatus, NodeInfo, NodeToken, RenderedFile, ReportEntry, Role, TaskInfo,
    TokenRotation, VarValues,
};
use crate::model::{FileAction, Model, Node, host_package, task_package, version};
use crate::report;
use crate::template::Template;

use super::{App, AppError};

/// The least role that reads variable values. Templates render variables into files, secrets
/// included (a database password in a config file), so for a role that cannot change what
/// nodes run a value is as secret as a rendered file: a viewer gets every name, each value
/// `None` ([`shown_vars`]). An operator assigns tasks that run as root on every node, so hiding
/// a value from it would protect nothing.
pub const VAR_VALUES: Role = Role::Operator;

/// Variables as `role` may see them: every name; the values only from [`VAR_VALUES`] up. The
/// one place the API and the console hide values.
pub fn shown_vars(role: Role, vars: &BTreeMap<String, String>) -> VarValues {
    let values = role >= VAR_VALUES;
    vars.iter()
        .map(|(k, v)| (k.clone(), values.then(|| v.clone())))
        .collect()
}

/// A node's rotation under way, without its previous token.
pub fn rotation(n: &Node) -> Option<TokenRotation> {
    n.previous_token.as_ref().map(|p| TokenRotation {
        generation: p.until,
        until: version(p.until),
    })
}

/// One file a host gets, from one task of its closure.
pub struct HostFile {
    /// Where the file is installed on the host.
    pub path: String,
    /// The task that ships it.
    pub task: String,
    /// The file as the host gets it, or why it does not render; `None` when not asked for.
    pub rendered: Option<Result<String, String>>,
}

/// What the console's node page shows, read together.
pub struct NodeView {
    /// The model at the current generation.
    pub model: Arc<Model>,
    /// Every host's status (`App::fleet_status`), this node's included.
    pub fleet: Arc<Vec<HostStatus>>,
    /// The node's recent reports, newest first.
    pub reports: Vec<ReportEntry>,
    /// Every file of the node's closure, sorted by path and task; rendered for `secrets`.
    pub files: Vec<HostFile>,
    /// The node's token, for `secrets` (admins).
    pub token: Option<String>,
}

/// The model and every host's status, for the console's fleet-wide pages.
pub struct FleetView {
    /// The model at the current generation.
    pub model: Arc<Model>,
    /// Every host's status (`App::fleet_status`).
    pub fleet: Arc<Vec<HostStatus>>,
}

fn unknown_node(host: &str) -> AppError {
    AppError::NotFound(format!("unknown node '{host}'"))
}

impl App {
    /// Every node, its variable values as `role` may see them.
    pub fn node_list(&self, role: Role) -> Result<Vec<NodeInfo>, AppError> {
        let m = self.model()?;
        Ok(m.nodes.values().map(|n| node_info(&m, n, role)).collect())
    }

    /// Node `host`, its variable values as `role` may see them.
    pub fn node_info(&self, host: &str, role: Role) -> Result<NodeInfo, AppError> {
        let m = self.model()?;
        let n = m.nodes.get(host).ok_or_else(|| unknown_node(host))?;
        Ok(node_info(&m, n, role))
    }

    /// Node `host`'s token and rotation, read from the store: a secret, and a report may
    /// have ended the rotation a moment ago.
    pub fn node_token(&self, host: &str) -> Result<NodeToken, AppError> {
        let n = self.store.node(host)?.ok_or_else(|| unknown_node(host))?;
        Ok(NodeToken {
            rotation: rotation(&n),
            host: n.name,
            token: n.token,
            ca: self.config.tls_node_ca.clone(),
        })
    }

    /// Every task, without its templates.
    pub fn task_list(&self) -> Result<Vec<TaskInfo>, AppError> {
        let m = self.model()?;
        Ok(m.tasks
            .keys()
            .filter_map(|t| task_info(&m, t, false))
            .collect())
    }

    /// Task `name`, with its templates.
    pub fn task_info(&self, name: &str) -> Result<TaskInfo, AppError> {
        let m = self.model()?;
        task_info(&m, name, true)
            .ok_or_else(|| AppError::NotFound(format!("unknown task '{name}'")))
    }

    /// The global variables, their values as `role` may see them.
    pub fn var_values(&self, role: Role) -> Result<VarValues, AppError> {
        Ok(shown_vars(role, &self.model()?.vars))
    }

    /// File `path` as host `host` gets it (from the first task of its closure, by name, that
    /// has it): the preview behind `umc-admin render`.
    pub fn render_file(&self, host: &str, path: &str) -> Result<RenderedFile, AppError> {
        let m = self.model()?;
        let node = m.nodes.get(host).ok_or_else(|| unknown_node(host))?;
        let closure = m.closure(&node.tasks);
        let found = closure
            .iter()
            .filter_map(|t| m.tasks.get(t))
            .find_map(|t| t.files.get(path).map(|f| (t, f)));
        let Some((task, file)) = found else {
            return Err(AppError::NotFound(format!(
                "node '{host}' gets no file '{path}'"
            )));
        };
        let content = Template::parse(&file.path, &file.template)
            .and_then(|t| t.render(&m.host_context(node, &closure)))
            .map_err(|e| AppError::Rejected(e.to_string()))?;
        Ok(RenderedFile {
            host: host.to_string(),
            path: path.to_string(),
            task: task.name.clone(),
            content,
        })
    }

    /// Node `host`'s recent reports that still parse, newest first.
    pub(super) fn node_reports(&self, host: &str) -> Result<Vec<ReportEntry>, AppError> {
        Ok(self
            .store
            .reports(host, self.config.report_keep)?
            .into_iter()
            .filter_map(|r| {
                // Stored reports were validated on arrival; one that no longer parses (a
                // future format) is left out.
                let report = report::parse(&r.text, i64::MAX - report::MAX_CLOCK_SKEW).ok()?;
                Some(ReportEntry {
                    received: r.received,
                    report,
                })
            })
            .collect())
    }

    /// What the console's node page shows of `host` (`None`: no such node). With `secrets`
    /// (admins, as in the API's `/nodes/{h}/render` and `/nodes/{h}/token`), every file is
    /// rendered and the token is read. Rendering and parsing reports is CPU work: call it
    /// through [`super::blocking`].
    pub fn node_view(self: &Arc<Self>, host: &str, secrets: bool) -> Result<NodeView, AppError> {
        let model = self.model()?;
        let fleet = self.fleet_status()?;
        let reports = self.node_reports(host)?;
        let files = match model.nodes.get(host) {
            Some(n) => host_files(&model, n, secrets),
            None => Vec::new(),
        };
        let token = if secrets {
            self.store.node(host)?.map(|n| n.token)
        } else {
            None
        };
        Ok(NodeView {
            model,
            fleet,
            reports,
            files,
            token,
        })
    }

    /// The model and every host's status (`App::fleet_status`).
    pub fn fleet_view(self: &Arc<Self>) -> Result<FleetView, AppError> {
        Ok(FleetView {
            model: self.model()?,
            fleet: self.fleet_status()?,
        })
    }
}

fn node_info(model: &Model, n: &Node, role: Role) -> NodeInfo {
    NodeInfo {
        name: n.name.clone(),
        package: host_package(&n.name),
        version: version(model.node_generation(n)),
        vars: shown_vars(role, &n.vars),
        tasks: n.tasks.iter().cloned().collect(),
        task_closure: model.closure(&n.tasks).into_iter().collect(),
        ssh: n.ssh.clone(),
        url: n.url.clone(),
        conffiles: n.conffiles.map(|p| p.as_str().to_string()),
        rotation: rotation(n),
        generation: n.generation,
    }
}

fn task_info(model: &Model, name: &str, with_templates: bool) -> Option<TaskInfo> {
    let t = model.tasks.get(name)?;
    Some(TaskInfo {
        name: t.name.clone(),
        package: task_package(&t.name),
        version: version(model.task_generation(t)),
        description: t.description.clone(),
        depends: t.depends.clone(),
        removes: t.removes.iter().cloned().collect(),
        includes: t.includes.iter().cloned().collect(),
        nodes: model
            .nodes
            .values()
            .filter(|n| n.tasks.contains(name))
            .map(|n| n.name.clone())
            .collect(),
        files: t
            .files
            .values()
            .map(|f| FileInfo {
                path: f.path.clone(),
                mode: format!("{:04o}", f.mode),
                conffile: f.is_conffile(),
                action: f.action.as_ref().map(|a| match a {
                    FileAction::Reload(s) => format!("reload {s}"),
                    FileAction::Restart(s) => format!("restart {s}"),
                }),
                template_bytes: f.template.len(),
                template: with_templates.then(|| f.template.clone()),
            })
            .collect(),
        generation: t.generation,
    })
}

/// Every file of `node`'s closure, sorted by path and task; rendered when `render`.
fn host_files(model: &Model, node: &Node, render: bool) -> Vec<HostFile> {
    let closure = model.closure(&node.tasks);
    let ctx = model.host_context(node, &closure);
    let mut out = Vec::new();
    for task in closure.iter().filter_map(|t| model.tasks.get(t)) {
        for f in task.files.values() {
            let rendered = render.then(|| {
                Template::parse(&f.path, &f.template)
                    .and_then(|tpl| tpl.render(&ctx))
                    .map_err(|e| e.to_string())
            });
            out.push(HostFile {
                path: f.path.clone(),
                task: task.name.clone(),
                rendered,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.task.cmp(&b.task)));
    out
}

#[cfg(test)]
mod tests {
    use crate::api::{Op, Role};
    use crate::app::ErrorKind;
    use crate::app::testing::{app, edit, node_add};
    use crate::store::{IncomingReport, token_hash};

    fn setup() -> (tempfile::TempDir, std::sync::Arc<crate::app::App>) {
        let (dir, app) = app();
        edit(
            &app,
            vec![
                node_add("a.example"),
                Op::VarSet {
                    vars: [("zone".to_string(), "eu".to_string())].into(),
                },
                Op::TaskAdd {
                    task: "web".into(),
                    description: None,
                },
                Op::TaskFileAdd {
                    task: "web".into(),
                    path: "/etc/zone".into(),
                    template: "{{ host.fqdn }} {{ vars.zone }}\n".into(),
                    mode: None,
                    reload: None,
                    restart: None,
                },
                Op::Assign {
                    host: "a.example".into(),
                    tasks: vec!["web".into()],
                },
            ],
        );
        (dir, app)
    }

    /// The API's reads answer from the shared model, see each edit at once, and show
    /// variable values from `VAR_VALUES` up only.
    #[test]
    fn reads_see_each_edit_and_hide_values_below_operator() {
        let (_dir, app) = setup();
        assert_eq!(app.var_values(Role::Viewer).expect("vars")["zone"], None);
        assert_eq!(
            app.var_values(Role::Operator).expect("vars")["zone"].as_deref(),
            Some("eu")
        );
        let n = app.node_info("a.example", Role::Admin).expect("node");
        assert_eq!(n.task_closure, ["web"]);
        let e = app
            .node_info("b.example", Role::Admin)
            .expect_err("unknown");
        assert_eq!(
            (e.kind(), e.to_string()),
            (ErrorKind::NotFound, "unknown node 'b.example'".into())
        );
        let t = app.task_info("web").expect("task");
        assert_eq!(t.nodes, ["a.example"]);
        assert!(t.files[0].template.is_some(), "one task: with templates");
        assert!(
            app.task_list().expect("tasks")[0].files[0]
                .template
                .is_none()
        );

        let f = app.render_file("a.example", "/etc/zone").expect("render");
        assert_eq!(
            (f.task.as_str(), f.content.as_str()),
            ("web", "a.example eu\n")
        );
        let e = app
            .render_file("a.example", "/etc/none")
            .expect_err("no file");
        assert_eq!(e.kind(), ErrorKind::NotFound);

        edit(
            &app,
            vec![
                node_add("b.example"),
                Op::VarSet {
                    vars: [("zone".to_string(), "us".to_string())].into(),
                },
            ],
        );
        assert_eq!(app.node_list(Role::Viewer).expect("nodes").len(), 2);
        let f = app.render_file("a.example", "/etc/zone").expect("render");
        assert_eq!(f.content, "a.example us\n");
    }

    /// A report that ends a token rotation changes the node without a generation: the
    /// shared model is read again, so the node read shows the rotation over at once.
    #[test]
    fn a_report_ending_a_rotation_shows_at_once() {
        let (_dir, app) = setup();
        let (rotated, t) = app
            .rotate_node_token("admin", "a.example", false)
            .expect("rotate");
        let until = t.rotation.clone().expect("rotation").until;
        let info = app.node_info("a.example", Role::Viewer).expect("node");
        assert_eq!(info.rotation, t.rotation, "cached at this generation");

        let report = IncomingReport {
            host: "a.example".into(),
            received: 120,
            text: format!(
                "Format: umc-report/1\nStarted: 100\nFinished: 110\nStep: update 0\nInstalled: umc-node {until}\nReboot-Required: no\nUpgradable: 0\n"
            ),
            current_token: Some(token_hash(&t.token)),
        };
        let ended = app.store_reports(&[report]).expect("report");
        assert_eq!(ended, ["a.example"]);
        assert_eq!(app.generation(), rotated.generation, "no generation");
        let info = app.node_info("a.example", Role::Viewer).expect("node");
        assert_eq!(info.rotation, None);
        assert_eq!(app.node_token("a.example").expect("token").rotation, None);
    }
}
