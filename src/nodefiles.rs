//! What umc puts on a node besides task files: the `umc-node` package (the node's cycle, its
//! timer and its apt configuration), the enrollment script, and the maintainer scripts of task
//! packages. The canonical texts are real files in `contrib/` and `apt-conf/`, embedded at
//! build time; tests run the same files.

#![warn(missing_docs)]

use std::collections::BTreeMap;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::deb::{DataFile, SCRIPT_NAMES};
use crate::model::{ConffilePolicy, FileAction, Node, TaskFile};

/// The node's update cycle (`/usr/sbin/umc-cycle`): installs `umc-<host>`, removes what
/// it conflicts with, and reports.
pub const CYCLE: &str = include_str!("../contrib/umc-cycle");
/// The systemd service that runs [`CYCLE`] once.
pub const CYCLE_SERVICE: &str = include_str!("../contrib/umc-cycle.service");
/// The systemd timer that starts [`CYCLE_SERVICE`] every 30 minutes or so.
pub const CYCLE_TIMER: &str = include_str!("../contrib/umc-cycle.timer");
const NODE_CONF: &str = include_str!("../apt-conf/node.conf.in");
const NODE_LINTIAN_OVERRIDES: &str = include_str!("../contrib/umc-node.lintian-overrides");
const SOURCES: &str = include_str!("../apt-conf/umc.sources.in");
const AUTH: &str = include_str!("../apt-conf/umc-auth.conf.in");
const BOOTSTRAP: &str = include_str!("../contrib/bootstrap.sh.in");
const NODE_POSTINST: &str = include_str!("../contrib/maintscripts/node.postinst");
const NODE_PRERM: &str = include_str!("../contrib/maintscripts/node.prerm");
const NODE_POSTRM: &str = include_str!("../contrib/maintscripts/node.postrm");
const TASK_PREINST: &str = include_str!("../contrib/maintscripts/task.preinst");
const TASK_POSTINST: &str = include_str!("../contrib/maintscripts/task.postinst");
const TASK_POSTRM: &str = include_str!("../contrib/maintscripts/task.postrm");

/// The package every host view carries and `umc-<host>` depends on.
pub const NODE_PACKAGE: &str = "umc-node";
/// Where a node keeps the archive keyring its umc source is `Signed-By`.
pub const NODE_KEYRING: &str = "/usr/share/keyrings/umc-archive-keyring.gpg";
/// The node's apt source for its umcd view (deb822).
pub const NODE_SOURCES: &str = "/etc/apt/sources.list.d/umc.sources";
/// The node's apt credentials for umcd: its host name and token.
pub const NODE_AUTH: &str = "/etc/apt/auth.conf.d/umc.conf";
/// umc-cycle's settings as umcd ships them; local overrides go in `/etc/umc/node.conf`.
pub const NODE_CONF_PATH: &str = "/usr/share/umc/node.conf";
/// The CAs a node trusts for umcd.
pub const NODE_CA: &str = "/usr/share/umc/ca.pem";
/// The apt configuration that trusts [`NODE_CA`] for umcd alone (never the system's trust
/// store).
pub const NODE_TLS_CONF: &str = "/etc/apt/apt.conf.d/60umc-tls";

/// What umcd itself contributes to `umc-node`.
#[derive(Debug, Clone, Copy)]
pub struct Serving<'a> {
    /// The archive keyring, binary OpenPGP.
    pub keyring: &'a [u8],
    /// Conffile policy of nodes that set none.
    pub conffiles: ConffilePolicy,
    /// The CA certificates (PEM) nodes reaching umcd over https trust for it, when the
    /// served certificate does not chain to the system's roots.
    pub ca: Option<&'a str>,
}

/// A short digest of every embedded node file: part of umcd's serving inputs, so a umcd
/// release that changes them moves `umc-node`'s version.
pub fn fingerprint() -> String {
    let mut h = Sha256::new();
    for text in [
        CYCLE,
        CYCLE_SERVICE,
        CYCLE_TIMER,
        NODE_CONF,
        NODE_LINTIAN_OVERRIDES,
        SOURCES,
        AUTH,
        BOOTSTRAP,
        NODE_POSTINST,
        NODE_PRERM,
        NODE_POSTRM,
        TASK_PREINST,
        TASK_POSTINST,
        TASK_POSTRM,
    ] {
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

/// The node's `.sources` file, from `apt-conf/umc.sources.in`.
pub fn sources_file(url: &str, host: &str, keyring: &str) -> String {
    SOURCES
        .replace("@URL@", url.trim_end_matches('/'))
        .replace("@HOST@", host)
        .replace("@KEYRING@", keyring)
}

/// The host (and port) of an `https://` URL, or `None` for any other URL.
fn https_host(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    Some(authority.rsplit('@').next().unwrap_or(authority))
}

/// The apt configuration that makes apt trust `NODE_CA` for umcd's host alone. apt's per-host
/// options take the host without the port.
pub fn tls_conf(url: &str) -> Option<String> {
    let authority = https_host(url)?;
    // apt's option names split at "::", so an IPv6 literal cannot name a host there: such a
    // URL gets no per-host CA (enroll such nodes with a DNS name).
    if authority.starts_with('[') {
        return None;
    }
    let host = authority.split(':').next().unwrap_or(authority);
    Some(format!(
        "// umc: trust umcd's CA for {host} only (shipped by umc-node, replaced on upgrade)\n\
         Acquire::https::{host}::CaInfo \"{NODE_CA}\";\n"
    ))
}

/// The node's `auth.conf.d` entry, from `apt-conf/umc-auth.conf.in`.
pub fn auth_file(url: &str, host: &str, token: &str) -> String {
    AUTH.replace("@URL@", url.trim_end_matches('/'))
        .replace("@HOST@", host)
        .replace("@TOKEN@", token)
}

/// The files of `umc-node` for `node`. Without a URL the node's apt configuration is its
/// admin's, and only the cycle ships.
pub fn node_files(node: &Node, package: &str, serving: Serving<'_>) -> Vec<DataFile> {
    let policy = node.conffiles.unwrap_or(serving.conffiles);
    let mut files = vec![
        DataFile {
            mode: 0o755,
            ..DataFile::new("/usr/sbin/umc-cycle", CYCLE)
        },
        DataFile::new("/lib/systemd/system/umc-cycle.service", CYCLE_SERVICE),
        DataFile::new("/lib/systemd/system/umc-cycle.timer", CYCLE_TIMER),
        DataFile::new(
            NODE_CONF_PATH,
            NODE_CONF
                .replace("@PACKAGE@", package)
                .replace("@CONFFILES@", policy.as_str())
                .replace(
                    "@CA@",
                    match (&node.url, serving.ca) {
                        (Some(url), Some(_)) if https_host(url).is_some() => NODE_CA,
                        _ => "",
                    },
                )
                .replace(
                    "@REPORT_URL@",
                    &node
                        .url
                        .as_ref()
                        .map(|u| format!("{u}/hosts/{}/report", node.name))
                        .unwrap_or_default(),
                ),
        ),
    ];
    if let Some(url) = &node.url {
        files.push(DataFile::new(
            "/usr/share/lintian/overrides/umc-node",
            NODE_LINTIAN_OVERRIDES,
        ));
        files.push(DataFile::new(NODE_KEYRING, serving.keyring));
        files.push(DataFile::conffile(
            NODE_SOURCES,
            sources_file(url, &node.name, NODE_KEYRING),
        ));
        files.push(DataFile {
            mode: 0o600,
            ..DataFile::conffile(NODE_AUTH, auth_file(url, &node.name, &node.token))
        });
        if let (Some(ca), Some(conf)) = (serving.ca, tls_conf(url)) {
            files.push(DataFile::new(NODE_CA, ca));
            files.push(DataFile::conffile(NODE_TLS_CONF, conf));
        }
    }
    files
}

/// `umc-node`'s maintainer scripts.
pub fn node_scripts() -> BTreeMap<String, String> {
    [
        ("postinst", NODE_POSTINST),
        ("prerm", NODE_PRERM),
        ("postrm", NODE_POSTRM),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t.to_string()))
    .collect()
}

/// Maintainer scripts of a task package shipping `files`: displacing files other packages
/// own, giving them back when dropped, reloading or restarting services whose files
/// changed. `None` when the task ships no files and dropped none (a plain metapackage).
pub fn task_scripts(
    package: &str,
    files: &[&TaskFile],
    dropped_any: bool,
) -> Option<BTreeMap<String, String>> {
    if files.is_empty() && !dropped_any {
        return None;
    }
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let mut watched = Vec::new();
    let mut actions = Vec::new();
    for f in files {
        let (verb, service) = match &f.action {
            Some(FileAction::Reload(s)) => ("reload", s),
            Some(FileAction::Restart(s)) => ("restart", s),
            None => continue,
        };
        watched.push(f.path.as_str());
        actions.push(format!("{} {verb} {service}", f.path));
    }
    // Paths and service names are validated to plain characters (model::validate_file_path,
    // validate_service), so they sit inside single quotes as they are.
    let fill = |text: &str| {
        text.replace("@PACKAGE@", package)
            .replace("@FILES@", &paths.join(" "))
            .replace("@WATCHED@", &watched.join(" "))
            .replace("@ACTIONS@", &actions.join("\n"))
    };
    let scripts: BTreeMap<String, String> = [
        ("preinst", TASK_PREINST),
        ("postinst", TASK_POSTINST),
        ("postrm", TASK_POSTRM),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), fill(t)))
    .collect();
    debug_assert!(scripts.keys().all(|k| SCRIPT_NAMES.contains(&k.as_str())));
    Some(scripts)
}

/// `GET /hosts/<h>/bootstrap`: the POSIX sh script that enrolls `node` (which has a URL).
/// `ca`: the CAs it trusts for umcd over https (see [`Serving::ca`]).
pub fn bootstrap_script(node: &Node, url: &str, keyring: &[u8], ca: Option<&str>) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(keyring);
    let wrapped: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    // A here-document adds the final newline back.
    let body = |s: String| s.strip_suffix('\n').map(str::to_string).unwrap_or(s);
    let tls = match (ca, tls_conf(url)) {
        (Some(ca), Some(conf)) => format!(
            "    install -d -m 0755 {dir}\n    cat >\"$tmp\" <<'UMC_CA'\n{ca}\nUMC_CA\n    \
             install -m 0644 \"$tmp\" {NODE_CA}\n    cat >\"$tmp\" <<'UMC_TLS'\n{conf}\nUMC_TLS\n    \
             install -m 0644 \"$tmp\" {NODE_TLS_CONF}\n",
            dir = NODE_CA.rsplit_once('/').map_or("/", |(d, _)| d),
            ca = body(ca.to_string()),
            conf = body(conf),
        ),
        _ => String::new(),
    };
    BOOTSTRAP
        .replace("@KEYRING_BASE64@", &wrapped.join("\n"))
        .replace("@KEYRING_PATH@", NODE_KEYRING)
        .replace(
            "@SOURCES@",
            &body(sources_file(url, &node.name, NODE_KEYRING)),
        )
        .replace("@SOURCES_PATH@", NODE_SOURCES)
        .replace("@AUTH@", &body(auth_file(url, &node.name, &node.token)))
        .replace("@AUTH_PATH@", NODE_AUTH)
        .replace("@TLS@\n", &tls)
        .replace("@URL@", url)
        .replace("@HOST@", &node.name)
}

/// The one line a new node runs as root: fetch its bootstrap script with curl (or wget when
/// curl is absent) and run it; a failed download says so and exits non-zero. The token never
/// reaches a command line (`ps` shows those to every user): curl reads it from a config on
/// stdin, wget from a private wgetrc, and the script goes to `sh -s` on stdin.
///
/// Over https with `ca` (umcd's own CA), the line carries the CA and the download trusts it
/// alone (`--cacert`, `--ca-certificate`): a man in the middle of the first contact gets
/// neither the token nor a node.
pub fn enroll_command(url: &str, host: &str, token: &str, ca: Option<&str>) -> String {
    let url = url.trim_end_matches('/');
    let ca = ca.filter(|_| https_host(url).is_some());
    // PEM holds only base64, dashes, spaces and letters: safe inside single quotes.
    let (setup, curl_ca, wget_ca, cleanup) = match ca {
        Some(pem) => (
            format!(
                "c=$(mktemp) && printf '%s\\n' {} >\"$c\" && ",
                pem.lines()
                    .map(|l| format!("'{l}'"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            " --cacert \"$c\"",
            " --ca-certificate=\"$c\"",
            "rm -f \"$c\"; ",
        ),
        None => (String::new(), "", "", ""),
    };
    format!(
        "{setup}u='{url}/hosts/{host}/bootstrap'; if command -v curl >/dev/null; then s=$(printf 'user = \"%s\"\\n' '{host}:{token}' | curl -fsS{curl_ca} -K - \"$u\"); else w=$(mktemp) && printf 'user = %s\\npassword = %s\\n' '{host}' '{token}' >\"$w\" && s=$(WGETRC=\"$w\" wget -nv -O-{wget_ca} --auth-no-challenge \"$u\"); r=$?; rm -f \"$w\"; [ \"$r\" = 0 ]; fi; r=$?; {cleanup}[ \"$r\" = 0 ] && printf '%s\\n' \"$s\" | sh -s || {{ echo \"umc: enrolling {host} failed (see above)\" >&2; false; }}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn node() -> Node {
        Node {
            name: "web1.example.com".into(),
            vars: BTreeMap::new(),
            tasks: BTreeSet::new(),
            ssh: None,
            token: "0123abcd".into(),
            previous_token: None,
            url: Some("http://umc.example.com:8080".into()),
            conffiles: None,
            generation: 3,
        }
    }

    #[test]
    fn bootstrap_embeds_the_same_bytes_umc_node_ships() {
        let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        for (url, ca) in [
            ("http://umc.example.com:8080", None),
            ("https://umc.example.com:8443", Some(ca)),
        ] {
            let mut n = node();
            n.url = Some(url.into());
            let serving = Serving {
                keyring: b"\x99\x01key",
                conffiles: ConffilePolicy::KeepLocal,
                ca,
            };
            let script = bootstrap_script(&n, url, serving.keyring, serving.ca);
            let files = node_files(&n, "umc-web1.example.com", serving);
            let mut paths = vec![NODE_SOURCES, NODE_AUTH];
            if ca.is_some() {
                paths.extend([NODE_CA, NODE_TLS_CONF]);
            } else {
                assert!(!files.iter().any(|f| f.path == NODE_CA));
            }
            for path in paths {
                let f = files.iter().find(|f| f.path == path).expect("shipped");
                let text = std::str::from_utf8(&f.contents).expect("utf8");
                assert!(script.contains(text), "{path} differs:\n{script}");
            }
            let placeholder =
                script.split('@').skip(1).step_by(2).find(|w| {
                    !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                });
            assert_eq!(placeholder, None, "unfilled placeholder:\n{script}");
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", &script])
                .output()
                .expect("sh");
            assert!(out.status.success(), "{script}\n{out:?}");
        }
        assert_eq!(tls_conf("https://[2001:db8::1]:8443/x"), None);
        assert_eq!(tls_conf("http://umc.example.com/"), None);
        assert_eq!(
            tls_conf("https://umc.example.com:8443/x").as_deref(),
            Some(
                "// umc: trust umcd's CA for umc.example.com only (shipped by umc-node, replaced on upgrade)\n\
                 Acquire::https::umc.example.com::CaInfo \"/usr/share/umc/ca.pem\";\n"
            )
        );
    }

    #[test]
    fn the_enrollment_line_is_valid_sh_and_keeps_the_token_off_command_lines() {
        let token = "ab".repeat(32);
        let ca = "-----BEGIN CERTIFICATE-----\nMIIBdz+/=\n-----END CERTIFICATE-----\n";
        for (url, ca) in [
            ("http://umc.example.com:8080/", None),
            ("https://umc.example.com:8443/", Some(ca)),
        ] {
            let line = enroll_command(url, "web1.example.com", &token, ca);
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", &line])
                .output()
                .expect("sh");
            assert!(out.status.success(), "{line}\n{out:?}");
            // The token appears only as an argument of printf, a shell builtin.
            assert_eq!(line.matches(&token).count(), 2, "{line}");
            for part in line.split(';') {
                if part.contains(&token) {
                    assert!(part.contains("printf"), "{part}");
                }
            }
            assert!(line.contains("| sh -s"), "{line}");
            assert_eq!(line.contains("--cacert \"$c\""), ca.is_some(), "{line}");
        }
        // The CA is written exactly as given.
        let line = enroll_command("https://u:1/", "h", "t", Some(ca));
        let setup = line.split(" && u=").next().expect("setup");
        let d = tempfile::tempdir().expect("tmp");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{setup} && cat \"$c\" && rm -f \"$c\""))
            .current_dir(d.path())
            .output()
            .expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), ca);
    }

    #[test]
    fn task_scripts_only_for_packages_with_files() {
        assert!(task_scripts("umc-task-x", &[], false).is_none());
        let f = TaskFile {
            path: "/etc/nginx/nginx.conf".into(),
            template: String::new(),
            mode: 0o644,
            action: Some(FileAction::Reload("nginx".into())),
        };
        let s = task_scripts("umc-task-web", &[&f], false).expect("scripts");
        assert!(s["postinst"].contains("actions='/etc/nginx/nginx.conf reload nginx'"));
        assert!(s["preinst"].contains("watched='/etc/nginx/nginx.conf'"));
        assert!(s.values().all(|t| !t.contains("@PACKAGE@")));
    }

    /// The review's "what held up": a service name may end in a backslash (systemd escapes),
    /// and the maintainer scripts that name it still parse (`sh -n`, the node's /bin/sh).
    #[test]
    fn scripts_naming_a_backslash_service_are_valid_sh() {
        use std::io::Write as _;
        crate::model::validate_service("nginx\\").expect("a valid service name");
        let files = [
            TaskFile {
                path: "/etc/nginx/nginx.conf".into(),
                template: String::new(),
                mode: 0o644,
                action: Some(FileAction::Reload("nginx\\".into())),
            },
            TaskFile {
                path: "/etc/app/app.conf".into(),
                template: String::new(),
                mode: 0o600,
                action: Some(FileAction::Restart("app@x\\".into())),
            },
        ];
        let refs: Vec<&TaskFile> = files.iter().collect();
        let scripts = task_scripts("umc-task-web", &refs, true).expect("scripts");
        for name in ["preinst", "postinst"] {
            let script = &scripts[name];
            if name == "postinst" {
                assert!(script.contains("reload nginx\\\n"), "{script}");
            }
            let mut sh = std::process::Command::new("sh")
                .arg("-n")
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("sh");
            sh.stdin
                .take()
                .expect("stdin")
                .write_all(script.as_bytes())
                .expect("write");
            let out = sh.wait_with_output().expect("sh -n");
            assert!(out.status.success(), "{name}: {out:?}\n{script}");
        }
    }
}
