//! What one host sees: its packages, their changelogs and the task files rendered for it.

use std::collections::{BTreeMap, BTreeSet};

use super::{MAINTAINER, RepoError};
use crate::deb::{ChangelogEntry, DataFile, Package};
use crate::model::{self, Entity, Node, Task, closure_of, version};
use crate::nodefiles::{self, NODE_PACKAGE, Serving};
use crate::template::{HostContext, Template};

/// How many edits a package changelog carries at most.
pub const CHANGELOG_LIMIT: usize = 30;

/// One edit as a package changelog sees it: only the lines that touched that package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    /// The generation the edit committed.
    pub generation: u64,
    /// Its commit time (Unix seconds).
    pub time: i64,
    /// Who made it.
    pub user: String,
    /// Its change lines that touched the package's entity.
    pub lines: Vec<String>,
}

/// Everything needed to render one host's repository, read in one transaction (`Store::host_data`).
#[derive(Debug, Clone)]
pub struct HostData {
    /// The model generation the read saw.
    pub generation: u64,
    /// The host's node, with its variables, tasks and token.
    pub node: Node,
    /// The closure of the node's tasks, sorted by name.
    pub tasks: Vec<Task>,
    /// Changelog of each package input (the node and each task), newest first.
    pub history: BTreeMap<Entity, Vec<HistoryItem>>,
    /// Global variables.
    pub vars: BTreeMap<String, String>,
    /// The newest generation that changed the global variables.
    pub vars_generation: u64,
    /// Newest generation at which umcd's serving inputs changed (keys, `umc-node`'s files).
    pub server_generation: u64,
    /// Commit time of the newest generation among the view's inputs: the Release `Date`.
    pub date: i64,
    /// Another generation was committed in the same second as the one `date` comes from, so a
    /// client's `If-Modified-Since` equal to `date` does not prove it saw this view.
    pub date_ambiguous: bool,
}

/// The packages host `data.node` sees: `umc-<host>`, `umc-node` and one `umc-task-<t>` per
/// task in the closure of its assignments, sorted by name, with task files rendered for this
/// host. Task dependencies carry `(>= version)`; see [`model::task_generation`].
pub fn packages(data: &HostData, serving: Serving<'_>) -> Result<Vec<Package>, RepoError> {
    let view = View::new(data);
    let mut out = vec![view.node_package(serving), view.host_package()];
    for task in &data.tasks {
        out.push(view.task_package(task)?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// What every package of one host's view derives from.
struct View<'a> {
    data: &'a HostData,
    /// The host's task closure (`data.tasks`), by name.
    tasks: BTreeMap<String, Task>,
    /// The names in that closure.
    closure: BTreeSet<String>,
}

impl<'a> View<'a> {
    fn new(data: &'a HostData) -> View<'a> {
        let tasks: BTreeMap<String, Task> = data
            .tasks
            .iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect();
        let closure = closure_of(&tasks, &data.node.tasks);
        View {
            data,
            tasks,
            closure,
        }
    }

    fn task_version(&self, t: &Task) -> String {
        let host = Some((&self.data.node, self.data.vars_generation));
        version(model::task_generation(&self.tasks, t, host))
    }

    /// `umc-task-<t> (>= <version>)` for each of `names`.
    fn versioned(&self, names: &BTreeSet<String>) -> Vec<String> {
        names
            .iter()
            .filter_map(|n| self.tasks.get(n))
            .map(|t| {
                format!(
                    "{} (>= {})",
                    model::task_package(&t.name),
                    self.task_version(t)
                )
            })
            .collect()
    }

    fn node_entity(&self) -> Entity {
        Entity::Node(self.data.node.name.clone())
    }

    /// `umc-node`'s version: it changes with the node (URL, token, conffile policy) and with
    /// umcd's own serving inputs (keys, the cycle's files).
    fn node_package_version(&self) -> String {
        version(self.data.node.generation.max(self.data.server_generation))
    }

    /// `umc-node`: the node cycle, its timer, and the host's apt source, credentials and keys.
    fn node_package(&self, serving: Serving<'_>) -> Package {
        let node = &self.data.node;
        let own = self.node_entity();
        let log = merged_changelog(self.data, &own, [own.clone(), Entity::Server].into_iter());
        Package {
            name: NODE_PACKAGE.to_string(),
            version: self.node_package_version(),
            description: format!(
                "umc node cycle and apt configuration of host {}\numc-cycle and its systemd timer keep this host on its umc repository;\nthe package also carries the repository's apt source, credentials and\nsigning key, so changes to them reach the host through apt.",
                node.name
            ),
            // umc-cycle also needs apt, flock (util-linux) and deb-systemd-helper
            // (init-system-helpers): all Essential. curl or wget posts its report.
            depends: vec!["curl | wget".to_string()],
            files: nodefiles::node_files(node, &model::host_package(&node.name), serving),
            scripts: nodefiles::node_scripts(),
            ..admin_package(log)
        }
    }

    /// `umc-<host>`: the protected metapackage that depends on `umc-node` and the host's tasks.
    fn host_package(&self) -> Package {
        let node = &self.data.node;
        let mut depends = vec![format!(
            "{NODE_PACKAGE} (>= {})",
            self.node_package_version()
        )];
        depends.extend(self.versioned(&node.tasks));
        let log = changelog(self.data, &self.node_entity(), &self.closure, false);
        Package {
            name: model::host_package(&node.name),
            version: version(model::node_generation(
                &self.tasks,
                node,
                self.data.vars_generation,
            )),
            description: format!(
                "umc configuration of host {}\nThis metapackage is generated by umc from the fleet model. It depends on\nthe task packages assigned to this host; remove it to leave umc.",
                node.name
            ),
            depends,
            protected: true,
            ..admin_package(log)
        }
    }

    /// `umc-task-<t>`: the task's relations, its files rendered for this host, and the
    /// maintainer scripts that act on them.
    fn task_package(&self, task: &Task) -> Result<Package, RepoError> {
        let name = model::task_package(&task.name);
        let synopsis = if task.description.is_empty() {
            format!("packages and files of the umc task {}", task.name)
        } else {
            format!(
                "umc task {}: {}",
                task.name,
                task.description.lines().next().unwrap_or_default()
            )
        };
        let mut depends = self.versioned(&task.includes);
        depends.extend(task.depends.iter().cloned());
        let reach = closure_of(&self.tasks, &task.includes);
        let templated = closure_of(&self.tasks, [&task.name])
            .iter()
            .filter_map(|t| self.tasks.get(t))
            .any(|t| !t.files.is_empty());
        let log = changelog(
            self.data,
            &Entity::Task(task.name.clone()),
            &reach,
            templated,
        );
        let files = self.render_files(task)?;
        let shipped: Vec<&model::TaskFile> = task.files.values().collect();
        for f in &shipped {
            model::validate_file_path(&task.name, &f.path)?;
            if let Some(model::FileAction::Reload(s) | model::FileAction::Restart(s)) = &f.action {
                model::validate_service(s)?;
            }
        }
        let scripts =
            nodefiles::task_scripts(&name, &shipped, !task.dropped.is_empty()).unwrap_or_default();
        let removed_conffiles = task
            .dropped
            .iter()
            .filter(|p| !task.files.contains_key(*p))
            .cloned()
            .collect();
        let what = if files.is_empty() {
            "This metapackage"
        } else {
            "This package"
        };
        Ok(Package {
            name,
            version: self.task_version(task),
            description: format!(
                "{synopsis}\n{what} is generated by umc from the fleet model: it pulls in the\npackages of task '{}', removes the ones the task removes and ships\nthe task's files rendered for this host.",
                task.name
            ),
            depends,
            conflicts: task.removes.iter().cloned().collect(),
            files,
            scripts,
            removed_conffiles,
            ..admin_package(log)
        })
    }

    /// `task`'s files, rendered for this host.
    fn render_files(&self, task: &Task) -> Result<Vec<DataFile>, RepoError> {
        let node = &self.data.node;
        let context = HostContext {
            fqdn: &node.name,
            global_vars: &self.data.vars,
            node_vars: &node.vars,
            tasks: &self.closure,
            ssh: node.ssh.as_ref(),
        };
        let mut files = Vec::new();
        for f in task.files.values() {
            let contents = Template::parse(&f.path, &f.template)?.render(&context)?;
            files.push(DataFile {
                path: f.path.clone(),
                mode: f.mode,
                contents: contents.into_bytes(),
                conffile: f.is_conffile(),
            });
        }
        Ok(files)
    }
}

/// What every umc package shares: maintainer, section `admin`, priority `optional`, and the
/// changelog `log` with its newest time as the package's mtime. Nothing else is set.
fn admin_package(log: Vec<ChangelogEntry>) -> Package {
    Package {
        maintainer: MAINTAINER.to_string(),
        section: "admin".to_string(),
        priority: "optional".to_string(),
        mtime: mtime(&log),
        changelog: log,
        ..Package::default()
    }
}

/// A package's changelog: the edits of its own entity and of every task it reaches, newest
/// first, bounded. Lines of another task's edits name that task.
fn changelog(
    data: &HostData,
    own: &Entity,
    tasks: &BTreeSet<String>,
    templated: bool,
) -> Vec<ChangelogEntry> {
    // A templated package also changes with the host's node and the global variables.
    let host_inputs = [Entity::Node(data.node.name.clone()), Entity::Global];
    let sources = std::iter::once(own.clone())
        .chain(tasks.iter().map(|t| Entity::Task(t.clone())))
        .chain(host_inputs.into_iter().filter(|e| templated && e != own));
    merged_changelog(data, own, sources)
}

/// The history of `sources`, merged by generation, newest first; see [`changelog`].
fn merged_changelog(
    data: &HostData,
    own: &Entity,
    sources: impl Iterator<Item = Entity>,
) -> Vec<ChangelogEntry> {
    let mut merged: BTreeMap<u64, HistoryItem> = BTreeMap::new();
    for e in sources {
        let Some(items) = data.history.get(&e) else {
            continue;
        };
        for i in items {
            let entry = merged.entry(i.generation).or_insert_with(|| HistoryItem {
                generation: i.generation,
                time: i.time,
                user: i.user.clone(),
                lines: Vec::new(),
            });
            for l in &i.lines {
                let line = match &e {
                    Entity::Task(t) if &e != own => format!("task '{t}': {l}"),
                    _ => l.clone(),
                };
                if !entry.lines.contains(&line) {
                    entry.lines.push(line);
                }
            }
        }
    }
    // Debian changelogs want strictly decreasing dates (lintian:
    // latest-changelog-entry-without-new-date); edits often share a second, so an older
    // entry is shown at most one second before the next newer one. The newest keeps its time,
    // and none goes below 1970, which a changelog date cannot name (nor past 9999: stored
    // times are never in the future).
    let mut next_newer = i64::MAX;
    merged
        .into_values()
        .rev()
        .filter(|i| !i.lines.is_empty())
        .take(CHANGELOG_LIMIT)
        .map(|i| {
            let time = i.time.min(next_newer.saturating_sub(1)).max(0);
            next_newer = time;
            ChangelogEntry {
                version: version(i.generation),
                lines: i.lines,
                user: i.user,
                time_unix: time,
            }
        })
        .collect()
}

/// Time of the newest changelog entry: the package's fixed mtime.
fn mtime(log: &[ChangelogEntry]) -> u64 {
    log.first().map(|i| i.time_unix.max(0) as u64).unwrap_or(0)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::Node;
    use crate::repo::build_deb;

    fn item(generation: u64, time: i64, line: &str) -> HistoryItem {
        HistoryItem {
            generation,
            time,
            user: "sh".into(),
            lines: vec![line.into()],
        }
    }

    pub(in crate::repo) fn pk(d: &HostData) -> Vec<Package> {
        let serving = Serving {
            keyring: b"keyring",
            conffiles: crate::model::ConffilePolicy::KeepLocal,
            ca: None,
        };
        packages(d, serving).unwrap()
    }

    /// A fixed model and clock: web (gen 5) includes base (gen 7); the node is at gen 6.
    pub(in crate::repo) fn data() -> HostData {
        let task =
            |name: &str, generation, includes: &[&str], depends: &[&str], removes: &[&str]| Task {
                name: name.into(),
                description: String::new(),
                depends: depends.iter().map(|s| s.to_string()).collect(),
                removes: removes.iter().map(|s| s.to_string()).collect(),
                includes: includes.iter().map(|s| s.to_string()).collect(),
                files: BTreeMap::new(),
                dropped: BTreeSet::new(),
                generation,
            };
        let mut history = BTreeMap::new();
        history.insert(
            Entity::Node("h.example.com".into()),
            vec![item(
                6,
                1_700_000_060,
                "User 'sh' assigned task 'web' to node 'h.example.com'",
            )],
        );
        history.insert(
            Entity::Task("web".into()),
            vec![item(
                5,
                1_700_000_050,
                "User 'sh' removed dependency 'apache2'",
            )],
        );
        history.insert(
            Entity::Task("base".into()),
            vec![item(7, 1_700_000_070, "User 'sh' added dependency 'less'")],
        );
        HostData {
            generation: 9,
            node: Node {
                name: "h.example.com".into(),
                vars: BTreeMap::new(),
                tasks: BTreeSet::from(["web".to_string()]),
                ssh: None,
                token: "t".into(),
                previous_token: None,
                url: None,
                conffiles: None,
                generation: 6,
            },
            tasks: vec![
                task("base", 7, &[], &["less"], &[]),
                task(
                    "web",
                    5,
                    &["base"],
                    &["nginx-light", "mawk | gawk"],
                    &["apache2"],
                ),
            ],
            history,
            vars: BTreeMap::new(),
            vars_generation: 0,
            server_generation: 0,
            date: 1_700_000_070,
            date_ambiguous: false,
        }
    }

    #[test]
    fn versions_and_relations() {
        let p = pk(&data());
        let names: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        // base changed last (gen 7): web includes it and the host reaches it, so both move.
        assert_eq!(
            names,
            [
                ("umc-h.example.com", "1.7"),
                ("umc-node", "1.6"),
                ("umc-task-base", "1.7"),
                ("umc-task-web", "1.7")
            ]
        );
        assert_eq!(p[0].depends, ["umc-node (>= 1.6)", "umc-task-web (>= 1.7)"]);
        assert_eq!(
            p[3].depends,
            ["umc-task-base (>= 1.7)", "nginx-light", "mawk | gawk"]
        );
        assert_eq!(p[3].conflicts, ["apache2"]);
        assert!(p[0].protected);
        // web's changelog merges base's edit and names the task it came from.
        let web_log: Vec<_> = p[3]
            .changelog
            .iter()
            .map(|c| (c.version.as_str(), c.lines.clone()))
            .collect();
        assert_eq!(
            web_log,
            [
                (
                    "1.7",
                    vec!["task 'base': User 'sh' added dependency 'less'".to_string()]
                ),
                (
                    "1.5",
                    vec!["User 'sh' removed dependency 'apache2'".to_string()]
                ),
            ]
        );
        assert_eq!(p[3].mtime, 1_700_000_070);
    }

    #[test]
    fn changelog_dates_strictly_decrease() {
        let mut d = data();
        d.history.insert(
            Entity::Task("web".into()),
            vec![item(5, 1_700_000_070, "b"), item(4, 1_700_000_070, "a")],
        );
        let p = pk(&d);
        let times: Vec<i64> = p[3].changelog.iter().map(|c| c.time_unix).collect();
        assert_eq!(times, [1_700_000_070, 1_700_000_069, 1_700_000_068]);
    }

    #[test]
    fn changelog_dates_stop_at_the_epoch() {
        // Imported history may carry time 0 (import refuses only negative times); dates
        // below it cannot be written, so the entries before the newest share 1970-01-01.
        let mut d = data();
        d.history.insert(
            Entity::Task("web".into()),
            vec![item(5, 1, "c"), item(4, 0, "b"), item(3, 0, "a")],
        );
        d.history.remove(&Entity::Task("base".into()));
        let p = pk(&d);
        let times: Vec<i64> = p[3].changelog.iter().map(|c| c.time_unix).collect();
        assert_eq!(times, [1, 0, 0]);
        build_deb(&p[3]).unwrap();
    }
}
