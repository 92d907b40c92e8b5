//! Golden bytes: a fixed model, edited at fixed times, renders to exactly these indexes, Release
//! bodies and debs. Any change to what a host sees, however small, changes a SHA-256 here: apt
//! would report "Hash Sum mismatch" for an unchanged model if a umcd release changed them
//! without moving `model::FORMAT`.
//!
//! Text (Packages, Release, control, changelog, a rendered template) is an inline snapshot;
//! binary artifacts (the compressed indexes, whose bytes the Packages text does not show) are
//! their SHA-256. Signatures are never snapshotted: sequoia salts them (tests/it/sign.rs verifies
//! them with gpgv and sqv instead).
//!
//! After an intended change: `UPDATE_EXPECT=1 cargo test --test it golden::`, then read the diff.

use std::collections::BTreeMap;
use std::sync::Arc;

use expect_test::{Expect, expect};
use sha2::{Digest, Sha256};

use umc::api::Op;
use umc::deb::{self, Package};
use umc::model::ConffilePolicy;
use umc::nodefiles::Serving;
use umc::repo::HostData;
use umc::repo::{self, Archive};
use umc::sign::SigningKeys;
use umc::store::{EditOptions, Store};

/// 2023-11-14 22:13:20 UTC.
const T0: i64 = 1_700_000_000;
const WEB: &str = "web1.example.com";
const DB: &str = "db1.example.com";

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const SITE: &str = "\
# {{ host.fqdn }} ({{ host.name }} in {{ host.domain }}), tasks: {{ tasks | join(sep=\", \") }}
server {
    listen 80;
    server_name {{ host.fqdn }} www.{{ vars.domain }};
{% for k, v in vars %}    # {{ k }} = {{ v }}
{% endfor %}    {% if vars.tls == \"on\" %}listen 443 ssl;{% else %}# no tls{% endif %}
}
";

/// The fleet, as an admin would build it: two tasks (`web` includes `base`, depends, removes,
/// ships a templated conffile with a reload and a script; `base` drops a conffile it shipped),
/// global variables, and two hosts with node variables, one enrolled with a URL. Each edit at
/// its own fixed time; the last two share a second, so the second one's view (db1's) has an
/// ambiguous date.
fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("umc.redb")).expect("open store");
    let edits: Vec<(i64, &str, Vec<Op>)> = vec![
        (
            T0,
            "sh",
            vec![
                Op::TaskAdd {
                    task: "base".into(),
                    description: Some("Base system\nTools every host has.".into()),
                },
                Op::TaskDepend {
                    task: "base".into(),
                    relations: strings(&["less", "vim-tiny | nano"]),
                },
                Op::TaskRemovePackage {
                    task: "base".into(),
                    packages: strings(&["telnet"]),
                },
                Op::TaskFileAdd {
                    task: "base".into(),
                    path: "/etc/motd".into(),
                    template: "Welcome to {{ host.fqdn }}\n".into(),
                    mode: None,
                    reload: None,
                    restart: None,
                },
            ],
        ),
        (
            T0 + 60,
            "alice",
            vec![
                Op::TaskAdd {
                    task: "web".into(),
                    description: None,
                },
                Op::TaskDepend {
                    task: "web".into(),
                    relations: strings(&["nginx-light (>= 1.18)", "mawk | gawk"]),
                },
                Op::TaskInclude {
                    task: "web".into(),
                    subtasks: strings(&["base"]),
                },
                Op::TaskRemovePackage {
                    task: "web".into(),
                    packages: strings(&["apache2"]),
                },
                Op::TaskFileAdd {
                    task: "web".into(),
                    path: "/etc/nginx/sites-available/umc".into(),
                    template: SITE.into(),
                    mode: Some(0o640),
                    reload: Some("nginx".into()),
                    restart: None,
                },
                Op::TaskFileAdd {
                    task: "web".into(),
                    path: "/usr/lib/umc-web/check".into(),
                    template: "#!/bin/sh\ncurl -fsS http://{{ host.fqdn }}/\n".into(),
                    mode: Some(0o755),
                    reload: None,
                    restart: None,
                },
            ],
        ),
        (
            T0 + 120,
            "sh",
            vec![Op::VarSet {
                vars: vars(&[("domain", "example.com"), ("tls", "off")]),
            }],
        ),
        (
            T0 + 180,
            "sh",
            vec![Op::TaskFileRemove {
                task: "base".into(),
                path: "/etc/motd".into(),
            }],
        ),
        (
            T0 + 240,
            "sh",
            vec![
                Op::NodeAdd {
                    host: WEB.into(),
                    vars: vars(&[("tls", "on"), ("weight", "5")]),
                    ssh: Some("root@192.0.2.10:2222".into()),
                },
                Op::Assign {
                    host: WEB.into(),
                    tasks: strings(&["web"]),
                },
                Op::NodeSet {
                    host: WEB.into(),
                    set_vars: BTreeMap::new(),
                    unset_vars: Vec::new(),
                    ssh: None,
                    url: Some("http://umc.example.com:8080".into()),
                    conffiles: Some("server-wins".into()),
                },
            ],
        ),
        (
            T0 + 240,
            "bob",
            vec![
                Op::NodeAdd {
                    host: DB.into(),
                    vars: vars(&[("role", "db")]),
                    ssh: None,
                },
                Op::Assign {
                    host: DB.into(),
                    tasks: strings(&["base"]),
                },
            ],
        ),
    ];
    for (time, user, ops) in edits {
        // A fixed token for each node an edit adds (it is part of `umc-node`'s apt
        // credentials), and no catalog to check package names against.
        let tokens = ops
            .iter()
            .filter_map(|op| match op {
                Op::NodeAdd { host, .. } => Some(Some(format!("token-of-{host}"))),
                _ => None,
            })
            .collect();
        let opts = EditOptions {
            tokens,
            force: true,
            ..EditOptions::default()
        };
        store.edit(user, &ops, time, opts).expect("edit");
    }
    (dir, store)
}

/// What umcd adds to `umc-node`: a fixed keyring blob (a real key is random) and the default
/// conffile policy.
fn serving() -> Serving<'static> {
    Serving {
        keyring: b"golden keyring bytes\n",
        conffiles: ConffilePolicy::KeepLocal,
        ca: None,
    }
}

fn host_data(store: &Store, host: &str) -> HostData {
    store
        .host_data(host)
        .expect("host_data")
        .expect("known host")
}

fn packages(data: &HostData) -> Vec<Package> {
    repo::packages(data, serving()).expect("packages")
}

/// `archs` in the configuration's order, which Release keeps.
fn archive(data: &HostData, archs: &[&str]) -> Archive {
    let keys = SigningKeys::generate("umc golden <golden@umc.invalid>").expect("key");
    let archs = strings(archs);
    let packages = packages(data);
    repo::build_archive(data, &packages, &archs, &keys, |p| {
        repo::build_deb(p).map(Arc::new)
    })
    .expect("archive")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every artifact of an archive but the signatures: the Packages text, every index file's
/// digest, each deb's path and digest (also in Packages, but named here so a diff says which
/// deb moved), and the Release body.
fn check_archive(a: &Archive, packages: Expect, digests: Expect, release: Expect) {
    packages.assert_eq(&text(&a.index("Packages").expect("Packages").bytes));
    let mut lines: Vec<String> = a
        .index_files()
        .map(|(name, f)| format!("{name} {}", sha256(&f.bytes)))
        .collect();
    for (path, deb) in &a.debs {
        lines.push(format!("{path} {}", sha256(&deb.artifact.bytes)));
    }
    lines.push(format!("date {} ambiguous {}", a.date, a.date_ambiguous));
    digests.assert_eq(&lines.join("\n"));
    release.assert_eq(&text(&a.release.bytes));
}

#[test]
fn web_host_archive() {
    let (_dir, store) = store();
    let a = archive(&host_data(&store, WEB), &["amd64", "arm64"]);
    check_archive(
        &a,
        expect![[r#"
            Package: umc-node
            Version: 1.5
            Architecture: all
            Maintainer: umc <umc@umc.invalid>
            Installed-Size: 36
            Depends: curl | wget
            Section: admin
            Priority: optional
            Description: umc node cycle and apt configuration of host web1.example.com
             umc-cycle and its systemd timer keep this host on its umc repository;
             the package also carries the repository's apt source, credentials and
             signing key, so changes to them reach the host through apt.
            Filename: pool/main/u/umc-node/umc-node_1.5_all.deb
            Size: 7580
            SHA256: 4a211b95b7d536e74b484cd3bca17f0d8746e6387c773aaf65dd3f29500f637b

            Package: umc-task-base
            Version: 1.4
            Architecture: all
            Maintainer: umc <umc@umc.invalid>
            Installed-Size: 7
            Depends: less, vim-tiny | nano
            Conflicts: telnet
            Section: admin
            Priority: optional
            Description: umc task base: Base system
             This metapackage is generated by umc from the fleet model: it pulls in the
             packages of task 'base', removes the ones the task removes and ships
             the task's files rendered for this host.
            Filename: pool/main/u/umc-task-base/umc-task-base_1.4_all.deb
            Size: 3530
            SHA256: d2904ded70e02ba16c6ca7e2d542b94c42e3da42e8d641e3c9aafb485658e2f0

            Package: umc-task-web
            Version: 1.5
            Architecture: all
            Maintainer: umc <umc@umc.invalid>
            Installed-Size: 14
            Depends: umc-task-base (>= 1.4), nginx-light (>= 1.18), mawk | gawk
            Conflicts: apache2
            Section: admin
            Priority: optional
            Description: packages and files of the umc task web
             This package is generated by umc from the fleet model: it pulls in the
             packages of task 'web', removes the ones the task removes and ships
             the task's files rendered for this host.
            Filename: pool/main/u/umc-task-web/umc-task-web_1.5_all.deb
            Size: 4206
            SHA256: 782f8e65fceb24381f63807b1fa3d81f62fc807451f5163153c6214b09b7b22a

            Package: umc-web1.example.com
            Version: 1.5
            Architecture: all
            Maintainer: umc <umc@umc.invalid>
            Installed-Size: 7
            Depends: umc-node (>= 1.5), umc-task-web (>= 1.5)
            Section: admin
            Priority: optional
            Protected: yes
            Description: umc configuration of host web1.example.com
             This metapackage is generated by umc from the fleet model. It depends on
             the task packages assigned to this host; remove it to leave umc.
            Filename: pool/main/u/umc-web1.example.com/umc-web1.example.com_1.5_all.deb
            Size: 1850
            SHA256: 5af82724c80a2f39b5effb6318e033a79f823f0ca65d98d3cc7f7669e2f2a5ab
        "#]],
        expect![[r#"
            Packages bf579760b855fb4e8e98c2023d4445e727b602c13247bd97e4960164e9b27192
            Packages.gz 2b5f97ffd34304ca625cddc5663b70ef48819e2fcacfe52aa714e9cd9002d30b
            Packages.xz 24beefcb27e161a38e7fff72d63421608c22f62bf89722ae73d9f4890ab702f4
            pool/main/u/umc-node/umc-node_1.5_all.deb 4a211b95b7d536e74b484cd3bca17f0d8746e6387c773aaf65dd3f29500f637b
            pool/main/u/umc-task-base/umc-task-base_1.4_all.deb d2904ded70e02ba16c6ca7e2d542b94c42e3da42e8d641e3c9aafb485658e2f0
            pool/main/u/umc-task-web/umc-task-web_1.5_all.deb 782f8e65fceb24381f63807b1fa3d81f62fc807451f5163153c6214b09b7b22a
            pool/main/u/umc-web1.example.com/umc-web1.example.com_1.5_all.deb 5af82724c80a2f39b5effb6318e033a79f823f0ca65d98d3cc7f7669e2f2a5ab
            date 1700000240 ambiguous false"#]],
        expect![[r#"
            Origin: umc
            Label: umc
            Suite: umc
            Codename: umc
            Date: Tue, 14 Nov 2023 22:17:20 UTC
            Architectures: amd64 arm64
            Components: main
            Description: umc configuration of web1.example.com
            Acquire-By-Hash: yes
            SHA256:
             bf579760b855fb4e8e98c2023d4445e727b602c13247bd97e4960164e9b27192     2311 main/binary-amd64/Packages
             2b5f97ffd34304ca625cddc5663b70ef48819e2fcacfe52aa714e9cd9002d30b      893 main/binary-amd64/Packages.gz
             24beefcb27e161a38e7fff72d63421608c22f62bf89722ae73d9f4890ab702f4      964 main/binary-amd64/Packages.xz
             bf579760b855fb4e8e98c2023d4445e727b602c13247bd97e4960164e9b27192     2311 main/binary-arm64/Packages
             2b5f97ffd34304ca625cddc5663b70ef48819e2fcacfe52aa714e9cd9002d30b      893 main/binary-arm64/Packages.gz
             24beefcb27e161a38e7fff72d63421608c22f62bf89722ae73d9f4890ab702f4      964 main/binary-arm64/Packages.xz
        "#]],
    );
}

#[test]
fn db_host_archive() {
    let (_dir, store) = store();
    let a = archive(&host_data(&store, DB), &["s390x", "amd64"]);
    check_archive(
        &a,
        expect![[r#"
            Package: umc-db1.example.com
            Version: 1.6
            Architecture: all
            Maintainer: umc <umc@umc.invalid>
            Installed-Size: 7
            Depends: umc-node (>= 1.6), umc-task-base (>= 1.4)
            Section: admin
            Priority: optional
            Protected: yes
            Description: umc configuration of host db1.example.com
             This metapackage is generated by umc from the fleet model. It depends on
             the task packages assigned to this host; remove it to leave umc.
            Filename: pool/main/u/umc-db1.example.com/umc-db1.example.com_1.6_all.deb
            Size: 1658
            SHA256: 9ed0b1623d09d456aa4c556d3dc2f58273e6e0625d4f9a1aeec53318a8abd5af

            Package: umc-node
            Version: 1.6
            Architecture: all
            Maintainer: umc <umc@umc.invalid>
            Installed-Size: 25
            Depends: curl | wget
            Section: admin
            Priority: optional
            Description: umc node cycle and apt configuration of host db1.example.com
             umc-cycle and its systemd timer keep this host on its umc repository;
             the package also carries the repository's apt source, credentials and
             signing key, so changes to them reach the host through apt.
            Filename: pool/main/u/umc-node/umc-node_1.6_all.deb
            Size: 6730
            SHA256: 8dd9c226a7f6c86187675d3b766bc8f7d400d50310fd5997c2f6536a80fd5f3b

            Package: umc-task-base
            Version: 1.4
            Architecture: all
            Maintainer: umc <umc@umc.invalid>
            Installed-Size: 7
            Depends: less, vim-tiny | nano
            Conflicts: telnet
            Section: admin
            Priority: optional
            Description: umc task base: Base system
             This metapackage is generated by umc from the fleet model: it pulls in the
             packages of task 'base', removes the ones the task removes and ships
             the task's files rendered for this host.
            Filename: pool/main/u/umc-task-base/umc-task-base_1.4_all.deb
            Size: 3530
            SHA256: d2904ded70e02ba16c6ca7e2d542b94c42e3da42e8d641e3c9aafb485658e2f0
        "#]],
        expect![[r#"
            Packages d025f2416bc87b65ee6abc5959a68acfcd1f01dbabcc3e435fe2ce98d07045a4
            Packages.gz e58e1bdd7eebfe9c3cafe012ef04a7bccdcac995717101c17a085f834cf7082a
            Packages.xz 7b346d09d9b55812dfc992ac567990bcb61bbff44b7b8a1a2e6dcdbdf8c90eb0
            pool/main/u/umc-db1.example.com/umc-db1.example.com_1.6_all.deb 9ed0b1623d09d456aa4c556d3dc2f58273e6e0625d4f9a1aeec53318a8abd5af
            pool/main/u/umc-node/umc-node_1.6_all.deb 8dd9c226a7f6c86187675d3b766bc8f7d400d50310fd5997c2f6536a80fd5f3b
            pool/main/u/umc-task-base/umc-task-base_1.4_all.deb d2904ded70e02ba16c6ca7e2d542b94c42e3da42e8d641e3c9aafb485658e2f0
            date 1700000240 ambiguous true"#]],
        expect![[r#"
            Origin: umc
            Label: umc
            Suite: umc
            Codename: umc
            Date: Tue, 14 Nov 2023 22:17:20 UTC
            Architectures: s390x amd64
            Components: main
            Description: umc configuration of db1.example.com
            Acquire-By-Hash: yes
            SHA256:
             d025f2416bc87b65ee6abc5959a68acfcd1f01dbabcc3e435fe2ce98d07045a4     1700 main/binary-s390x/Packages
             e58e1bdd7eebfe9c3cafe012ef04a7bccdcac995717101c17a085f834cf7082a      760 main/binary-s390x/Packages.gz
             7b346d09d9b55812dfc992ac567990bcb61bbff44b7b8a1a2e6dcdbdf8c90eb0      844 main/binary-s390x/Packages.xz
             d025f2416bc87b65ee6abc5959a68acfcd1f01dbabcc3e435fe2ce98d07045a4     1700 main/binary-amd64/Packages
             e58e1bdd7eebfe9c3cafe012ef04a7bccdcac995717101c17a085f834cf7082a      760 main/binary-amd64/Packages.gz
             7b346d09d9b55812dfc992ac567990bcb61bbff44b7b8a1a2e6dcdbdf8c90eb0      844 main/binary-amd64/Packages.xz
        "#]],
    );
}

fn package<'a>(packages: &'a [Package], name: &str) -> &'a Package {
    packages
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no package {name}"))
}

#[test]
fn control_file() {
    let (_dir, store) = store();
    let p = packages(&host_data(&store, WEB));
    let built = deb::build(package(&p, "umc-task-web")).expect("build");
    expect![[r#"
        Package: umc-task-web
        Version: 1.5
        Architecture: all
        Maintainer: umc <umc@umc.invalid>
        Installed-Size: 14
        Depends: umc-task-base (>= 1.4), nginx-light (>= 1.18), mawk | gawk
        Conflicts: apache2
        Section: admin
        Priority: optional
        Description: packages and files of the umc task web
         This package is generated by umc from the fleet model: it pulls in the
         packages of task 'web', removes the ones the task removes and ships
         the task's files rendered for this host.
    "#]]
    .assert_eq(&built.control);
}

#[test]
fn packages_stanza() {
    let (_dir, store) = store();
    let data = host_data(&store, DB);
    let p = packages(&data);
    let host = package(&p, "umc-db1.example.com");
    let deb = repo::build_deb(host).expect("deb");
    let path = repo::pool_path(&host.name, &host.version);
    let stanza = repo::packages_index([(path.as_str(), &deb)]);
    expect![[r#"
        Package: umc-db1.example.com
        Version: 1.6
        Architecture: all
        Maintainer: umc <umc@umc.invalid>
        Installed-Size: 7
        Depends: umc-node (>= 1.6), umc-task-base (>= 1.4)
        Section: admin
        Priority: optional
        Protected: yes
        Description: umc configuration of host db1.example.com
         This metapackage is generated by umc from the fleet model. It depends on
         the task packages assigned to this host; remove it to leave umc.
        Filename: pool/main/u/umc-db1.example.com/umc-db1.example.com_1.6_all.deb
        Size: 1658
        SHA256: 9ed0b1623d09d456aa4c556d3dc2f58273e6e0625d4f9a1aeec53318a8abd5af
    "#]]
    .assert_eq(&text(&stanza));
}

#[test]
fn rendered_template() {
    let (_dir, store) = store();
    let p = packages(&host_data(&store, WEB));
    let web = package(&p, "umc-task-web");
    let rendered: Vec<String> = web
        .files
        .iter()
        .map(|f| {
            format!(
                "{} {:o} conffile={}\n{}",
                f.path,
                f.mode,
                f.conffile,
                text(&f.contents)
            )
        })
        .collect();
    expect![[r#"
        /etc/nginx/sites-available/umc 640 conffile=true
        # web1.example.com (web1 in example.com), tasks: base, web
        server {
            listen 80;
            server_name web1.example.com www.example.com;
            # domain = example.com
            # tls = on
            # weight = 5
            listen 443 ssl;
        }
        ----
        /usr/lib/umc-web/check 755 conffile=false
        #!/bin/sh
        curl -fsS http://web1.example.com/
    "#]]
    .assert_eq(&rendered.join("----\n"));
}

#[test]
fn changelog() {
    let (_dir, store) = store();
    let p = packages(&host_data(&store, WEB));
    expect![[r#"
        umc-task-web (1.5) umc; urgency=medium

          * User 'sh' added node 'web1.example.com'
          * User 'sh' assigned task 'web' to node 'web1.example.com'
          * User 'sh' set the umc URL of node 'web1.example.com' to
            'http://umc.example.com:8080'
          * User 'sh' set the conffile policy of node 'web1.example.com' to server-wins

         -- sh <sh@umc.invalid>  Tue, 14 Nov 2023 22:17:20 +0000

        umc-task-web (1.4) umc; urgency=medium

          * task 'base': User 'sh' removed file '/etc/motd' from task 'base'

         -- sh <sh@umc.invalid>  Tue, 14 Nov 2023 22:16:20 +0000

        umc-task-web (1.3) umc; urgency=medium

          * User 'sh' set global variable 'domain'
          * User 'sh' set global variable 'tls'

         -- sh <sh@umc.invalid>  Tue, 14 Nov 2023 22:15:20 +0000

        umc-task-web (1.2) umc; urgency=medium

          * User 'alice' added task 'web'
          * User 'alice' added dependency 'nginx-light (>= 1.18)'
          * User 'alice' added dependency 'mawk | gawk'
          * User 'alice' included task 'base' in task 'web'
          * User 'alice' marked package 'apache2' for removal
          * User 'alice' added file '/etc/nginx/sites-available/umc' to task 'web'
          * User 'alice' added file '/usr/lib/umc-web/check' to task 'web'

         -- alice <alice@umc.invalid>  Tue, 14 Nov 2023 22:14:20 +0000

        umc-task-web (1.1) umc; urgency=medium

          * task 'base': User 'sh' added task 'base'
          * task 'base': User 'sh' added dependency 'less'
          * task 'base': User 'sh' added dependency 'vim-tiny | nano'
          * task 'base': User 'sh' marked package 'telnet' for removal
          * task 'base': User 'sh' added file '/etc/motd' to task 'base'

         -- sh <sh@umc.invalid>  Tue, 14 Nov 2023 22:13:20 +0000
    "#]]
    .assert_eq(&deb::changelog_text(package(&p, "umc-task-web")).expect("changelog"));
}

/// Maintainer scripts are nodefiles' text (tested there); here their digests, and the
/// conffile a task dropped.
#[test]
fn maintainer_scripts_and_conffiles() {
    let (_dir, store) = store();
    let p = packages(&host_data(&store, WEB));
    let mut out = String::new();
    for name in ["umc-task-base", "umc-task-web", "umc-node"] {
        let p = package(&p, name);
        out.push_str(&format!("{name}: removed {:?}\n", p.removed_conffiles));
        for (script, text) in &p.scripts {
            out.push_str(&format!("  {script} {}\n", sha256(text.as_bytes())));
        }
    }
    expect![[r#"
        umc-task-base: removed ["/etc/motd"]
          postinst 4c168a756c77109a3e61319af743a1cdb16105a15075eb921f31cc8b2467a324
          postrm 8c4e09dc36abeaa3b625f413e5c91501ab4a19e4e563b8b0682dbb982b208524
          preinst 1059d1cc6ad1bf03a3a3090045b29c2f6f3db02996ad18be0a88728251425300
        umc-task-web: removed []
          postinst 2094d0a9facc706a33f5e32953493b2a7753e18db5069c8cca6c9687ba75ccd3
          postrm 215ea97d2231b85cad2a4e3ec9e82676326eac45b56c4aa318c80fbac2bf8b22
          preinst a402cc6b24cfdfa1cc25a6b330d45898061bbd3282e48a8ca9079902ba161419
        umc-node: removed []
          postinst 206a6ad524853ff561a767d3e6ee2d9ce141f4a532398acbda6d589d838e36e5
          postrm f040d1c5e90833d2f049857ed9020c9eaf9651ba58d3ea6dcd4445a5396465ce
          prerm 7a4ee644d46be59693b6fc56c89fd91b09333a08b4fb0077e24923bc0b5aef57
    "#]]
    .assert_eq(&out);
}
