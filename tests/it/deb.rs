//! Integration tests for `umc::deb`, checked against the real Debian tools
//! (`dpkg-deb`, `dpkg`, `dpkg-gencontrol`, `dpkg-parsechangelog`, `tar`,
//! `zcat`, `lintian`) rather than against a parser of our own.
//!
//! Lintian tags accepted (checked by `lintian_has_no_errors`, which runs
//! `lintian --fail-on none --tag-display-limit 0 <debs>`; lintian 2.116
//! shows E: and W: by default):
//!
//! * `W: unknown-field Protected` — lintian 2.116 does not know the
//!   `Protected` field, which dpkg supports since 1.20.1 (the
//!   `dpkg_installs_into_scratch_root` test shows dpkg refusing to remove a
//!   protected package without `--force-remove-protected`).
//! * `W: non-standard-file-perm 0600 != 0644` — the fixture's secret is
//!   deliberately 0600; modes are the caller's choice.
//! * `W: initial-upload-closes-no-bugs` — a non-native version (`-1`
//!   revision) with a single changelog entry looks like a first upload to
//!   Debian that should close an ITP bug; umc packages are never uploaded.
//!
//! Not shown by default, also accepted: `I: conflicts-with-version` (the
//! fixture's versioned Conflicts exists to exercise the syntax; Breaks would
//! usually be better) and `X: executable-in-usr-lib` (experimental; the hook
//! script is not meant to be on PATH).
//!
//! Eliminated in `umc::deb` itself: `E: extended-description-is-empty` (a
//! standard extended description is supplied), `W: empty-binary-package`
//! (that description calls a file-less package a metapackage),
//! `W: copyright-without-copyright-notice` (the notice carries the year of
//! `mtime`), changelog-compression tags (gzip -9, no mtime or name).
//! Deliberately not hidden: `E: bogus-mail-host` for a maintainer address on
//! `localhost`, as in `umc <umc@localhost>`; the test pins that this is the
//! only error such a package gets. Use an address whose host has a dot,
//! e.g. `umc <umc@umc.invalid>` (RFC 2606), as the changelog trailers do.
//! The changelog distribution `umc` and the `.invalid` addresses draw no tag.

use crate::common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use umc::deb::{self, BuiltDeb, ChangelogEntry, DataFile, DebError, Package};

/// Wed, 25 Nov 2026 18:00:00 +0000
const MTIME: u64 = 1_795_629_600;

fn long_path() -> String {
    format!(
        "/usr/share/umc/{}/{}/site.json",
        "a".repeat(60),
        "b".repeat(60)
    )
}

fn base(name: &str, version: &str) -> Package {
    Package {
        name: name.to_owned(),
        version: version.to_owned(),
        maintainer: "umc <umc@umc.invalid>".to_owned(),
        section: "admin".to_owned(),
        priority: "optional".to_owned(),
        description: "site configuration for host web1".to_owned(),
        mtime: MTIME,
        ..Package::default()
    }
}

/// No files at all: only relationships, and the generated documentation.
fn metapackage() -> Package {
    Package {
        depends: vec![
            "nginx-light (>= 1.2)".to_owned(),
            "mawk | gawk".to_owned(),
            "libc6 (>= 2.36) | musl (>> 1.2~)".to_owned(),
        ],
        conflicts: vec!["apache2".to_owned(), "lighttpd (<< 2.0)".to_owned()],
        protected: true,
        ..base("umc-host-web1", "7")
    }
}

/// Several files: conffiles under /etc, a script under /usr/lib, a nested
/// path, a path longer than 100 bytes, file sizes around 1 KiB, and a
/// changelog of several entries.
fn site_package() -> Package {
    let mut script = DataFile::new(
        "/usr/lib/umc/hooks/reload-nginx",
        "#!/bin/sh\nset -e\nexec nginx -s reload\n",
    );
    script.mode = 0o755;
    let mut secret = DataFile::conffile("/etc/umc/secret.conf", "token=abc\n");
    secret.mode = 0o600;
    Package {
        description: "nginx configuration for host web1\n\
                      This package carries the nginx site configuration of web1.\n\
                      \n\
                      It is rebuilt whenever the site's configuration changes.\n"
            .to_owned(),
        depends: vec!["nginx-light (>= 1.2)".to_owned(), "mawk | gawk".to_owned()],
        conflicts: vec!["apache2".to_owned()],
        files: vec![
            DataFile::conffile(
                "/etc/nginx/conf.d/site.conf",
                "server {\n    listen 80;\n    root /srv/www;\n}\n",
            ),
            secret,
            script,
            DataFile::new("/usr/share/umc/sizes/empty", Vec::new()),
            DataFile::new("/usr/share/umc/sizes/one", vec![b'x']),
            DataFile::new("/usr/share/umc/sizes/kib", vec![b'k'; 1024]),
            DataFile::new("/usr/share/umc/sizes/kib-plus-one", vec![b'k'; 1025]),
            DataFile::new(long_path(), "{\"site\": \"web1\"}\n"),
            DataFile::new("/usr/share/umc/binary", (0..=255u8).collect::<Vec<u8>>()),
        ],
        changelog: vec![
            ChangelogEntry {
                version: "1.2+umc3".to_owned(),
                lines: vec![
                    "User 'sh' removed dependency 'apache2'".to_owned(),
                    format!(
                        "User 'sh' changed /etc/nginx/conf.d/site.conf: {}",
                        "a long explanation that does not fit on one line ".repeat(3)
                    ),
                ],
                user: "sh".to_owned(),
                time_unix: 1_795_629_600,
            },
            ChangelogEntry {
                version: "1.2+umc2".to_owned(),
                lines: vec!["User 'John Doe' added dependency 'nginx-light (>= 1.2)'".to_owned()],
                user: "John Doe".to_owned(),
                time_unix: 1_795_543_200,
            },
            ChangelogEntry {
                version: "1.2+umc1".to_owned(),
                lines: vec!["Host web1 enrolled".to_owned()],
                user: "umc".to_owned(),
                time_unix: 1_700_000_000,
            },
        ],
        ..base("umc-web1", "1.2+umc3")
    }
}

/// A version with a Debian revision, so the changelog is changelog.Debian.gz.
fn non_native_package() -> Package {
    Package {
        files: vec![DataFile::new("/usr/share/umc/motd", "Managed by umc.\n")],
        changelog: vec![ChangelogEntry {
            version: "1:2.0-1".to_owned(),
            lines: vec!["User 'sh' set the message of the day".to_owned()],
            user: "sh".to_owned(),
            time_unix: 1_795_629_600,
        }],
        ..base("umc-motd", "1:2.0-1")
    }
}

/// Entry names (`./…`) of 99, 100 and 101 bytes, for files and directories:
/// the edge of the 100-byte tar name field.
fn name_length_package() -> Package {
    let mut files = Vec::new();
    for len in [99, 100, 101] {
        // "./usr/share/umc/" is 16 bytes.
        files.push(DataFile::new(
            format!("/usr/share/umc/{}", "f".repeat(len - 16)),
            "x",
        ));
        // A directory whose entry name ("./…/") has `len` bytes.
        let dir = format!("/usr/share/umc/{len:03}{}", "d".repeat(len - 17 - 3));
        files.push(DataFile::new(format!("{dir}/x"), "y"));
    }
    Package {
        files,
        ..base("umc-names", "1")
    }
}

fn fixtures() -> Vec<Package> {
    vec![metapackage(), site_package(), non_native_package()]
}

// ---------------------------------------------------------------- helpers

fn output(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn text(cmd: &mut Command) -> String {
    String::from_utf8(output(cmd)).expect("tool output is UTF-8")
}

/// Run `cmd` and require both success and an empty stderr (no warnings).
fn quiet_text(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "{cmd:?} exited {} with stderr:\n{stderr}",
        out.status
    );
    String::from_utf8(out.stdout).expect("tool output is UTF-8")
}

/// `first | second`, returning the second command's stdout.
fn pipe(first: &mut Command, second: &mut Command) -> String {
    let mut producer = first
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {first:?}: {e}"));
    let stdout = producer.stdout.take().expect("piped stdout");
    let result = text(second.stdin(stdout));
    assert!(producer.wait().expect("wait").success(), "{first:?} failed");
    result
}

struct Written {
    _dir: tempfile::TempDir,
    path: PathBuf,
    built: BuiltDeb,
}

fn write_deb(pkg: &Package) -> Written {
    let dir = tempfile::tempdir().expect("tempdir");
    let built = deb::build(pkg).expect("build");
    let path = dir.path().join(format!("{}.deb", pkg.name));
    fs::write(&path, &built.bytes).expect("write deb");
    Written {
        _dir: dir,
        path,
        built,
    }
}

/// Split a control file into (field, value) pairs; multi-line values keep
/// their continuation lines (with the leading space), as `dpkg-deb --field`
/// prints them.
fn control_fields(control: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in control.lines() {
        if let Some(continuation) = line.strip_prefix(' ') {
            let last = fields.last_mut().expect("continuation after a field");
            last.1.push_str("\n ");
            last.1.push_str(continuation);
        } else {
            let (name, value) = line.split_once(": ").expect("field line");
            fields.push((name.to_owned(), value.to_owned()));
        }
    }
    fields
}

/// Every path the data.tar must hold, as `dpkg-deb --contents` names them,
/// in dpkg-deb's order (depth first, each directory's children sorted).
fn expected_entries(pkg: &Package) -> Vec<(String, String)> {
    let mut files: Vec<(String, u32)> =
        pkg.files.iter().map(|f| (f.path.clone(), f.mode)).collect();
    files.push((format!("/usr/share/doc/{}/copyright", pkg.name), 0o644));
    files.push((deb::changelog_path(&pkg.name, &pkg.version), 0o644));
    let mut entries: BTreeSet<(Vec<String>, bool, u32)> = BTreeSet::new();
    for (path, mode) in files {
        let components: Vec<String> = path[1..].split('/').map(str::to_owned).collect();
        for depth in 0..components.len() {
            entries.insert((components[..depth].to_vec(), true, 0o755));
        }
        entries.insert((components, false, mode));
    }
    entries
        .into_iter()
        .map(|(components, is_dir, mode)| {
            let mut name = format!("./{}", components.join("/"));
            if is_dir && !components.is_empty() {
                name.push('/');
            }
            (name, mode_string(is_dir, mode))
        })
        .collect()
}

fn mode_string(is_dir: bool, mode: u32) -> String {
    let mut s = String::from(if is_dir { "d" } else { "-" });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn extract(deb: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    output(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir.path()));
    dir
}

// ------------------------------------------------------------------ tests

#[test]
fn dpkg_deb_info_and_fields_agree_with_control_text() {
    if !common::require_tool("dpkg-deb") {
        return;
    }
    for pkg in fixtures() {
        let w = write_deb(&pkg);
        assert_eq!(
            w.built.control,
            deb::control_stanza(&pkg, w.built.installed_size)
        );

        let info = quiet_text(Command::new("dpkg-deb").arg("--info").arg(&w.path));
        assert!(info.contains(" new Debian package, version 2.0."), "{info}");
        for member in ["control", "md5sums"] {
            assert!(info.contains(member), "{member} missing from:\n{info}");
        }

        // The control member exactly as stored, and as dpkg-deb re-emits it.
        let control = text(
            Command::new("dpkg-deb")
                .arg("--info")
                .arg(&w.path)
                .arg("control"),
        );
        assert_eq!(control, w.built.control);
        let all_fields = text(Command::new("dpkg-deb").arg("--field").arg(&w.path));
        assert_eq!(all_fields, w.built.control);

        let fields = control_fields(&w.built.control);
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        for (name, value) in &fields {
            let theirs = text(
                Command::new("dpkg-deb")
                    .arg("--field")
                    .arg(&w.path)
                    .arg(name),
            );
            assert_eq!(theirs, format!("{value}\n"), "field {name} of {}", pkg.name);
        }
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(field("Package"), Some(pkg.name.as_str()));
        assert_eq!(field("Version"), Some(pkg.version.as_str()));
        assert_eq!(field("Architecture"), Some("all"));
        let installed_size = w.built.installed_size.to_string();
        assert_eq!(field("Installed-Size"), Some(installed_size.as_str()));
        assert_eq!(field("Section"), Some("admin"));
        assert_eq!(field("Priority"), Some("optional"));
        let depends = pkg.depends.join(", ");
        assert_eq!(
            field("Depends"),
            Some(depends.as_str()).filter(|d| !d.is_empty())
        );
        let conflicts = pkg.conflicts.join(", ");
        assert_eq!(
            field("Conflicts"),
            Some(conflicts.as_str()).filter(|c| !c.is_empty())
        );
        assert_eq!(field("Protected"), pkg.protected.then_some("yes"));

        let order = [
            "Package",
            "Version",
            "Architecture",
            "Maintainer",
            "Installed-Size",
            "Depends",
            "Conflicts",
            "Section",
            "Priority",
            "Protected",
            "Description",
        ];
        let expected: Vec<&str> = order.into_iter().filter(|n| names.contains(n)).collect();
        assert_eq!(names, expected, "field order of {}", pkg.name);
        assert!(w.built.control.ends_with('\n') && !w.built.control.ends_with("\n\n"));
    }
}

#[test]
fn description_formatting() {
    if !common::require_tool("dpkg-deb") {
        return;
    }
    let site = write_deb(&site_package());
    let description = text(
        Command::new("dpkg-deb")
            .arg("--field")
            .arg(&site.path)
            .arg("Description"),
    );
    assert_eq!(
        description,
        "nginx configuration for host web1\n \
         This package carries the nginx site configuration of web1.\n \
         .\n \
         It is rebuilt whenever the site's configuration changes.\n"
    );
    // Without an extended description a standard one is supplied; an empty
    // package calls itself a metapackage so lintian knows it is on purpose.
    let meta = write_deb(&metapackage());
    let description = text(
        Command::new("dpkg-deb")
            .arg("--field")
            .arg(&meta.path)
            .arg("Description"),
    );
    assert!(
        description.starts_with("site configuration for host web1\n This metapackage "),
        "{description}"
    );
    assert_eq!(description.lines().count(), 3, "{description}");
}

#[test]
fn contents_list_every_parent_directory_with_owners_and_modes() {
    if !common::require_tool("dpkg-deb") {
        return;
    }
    for pkg in fixtures() {
        let w = write_deb(&pkg);
        let listing = text(
            Command::new("dpkg-deb")
                .env("TZ", "UTC")
                .arg("--contents")
                .arg(&w.path),
        );
        let mut seen = Vec::new();
        for line in listing.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cols.len(), 6, "unexpected listing line {line:?}");
            assert_eq!(cols[1], "root/root", "{line}");
            assert_eq!(&cols[3..5], ["2026-11-25", "18:00"], "{line}");
            seen.push((cols[5].to_owned(), cols[0].to_owned()));
            if cols[0].starts_with('d') {
                assert_eq!(cols[2], "0", "{line}");
            }
        }
        assert_eq!(seen, expected_entries(&pkg), "contents of {}", pkg.name);
        let names: BTreeSet<&String> = seen.iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), seen.len(), "an entry appears twice");
        for file in &pkg.files {
            let name = format!(".{}", file.path);
            let line = listing
                .lines()
                .find(|l| l.ends_with(&format!(" {name}")))
                .unwrap_or_else(|| panic!("{name} not listed"));
            let size: usize = line.split_whitespace().nth(2).unwrap().parse().unwrap();
            assert_eq!(size, file.contents.len(), "{line}");
        }
    }
    let site = write_deb(&site_package());
    let listing = text(Command::new("dpkg-deb").arg("--contents").arg(&site.path));
    assert!(
        listing.contains(&format!(" .{}\n", long_path())),
        "{listing}"
    );
}

#[test]
fn extracted_files_have_exact_bytes_and_modes() {
    if !common::require_tool("dpkg-deb") {
        return;
    }
    for pkg in fixtures() {
        let w = write_deb(&pkg);
        let root = extract(&w.path);
        for file in &pkg.files {
            let on_disk = root.path().join(&file.path[1..]);
            assert_eq!(fs::read(&on_disk).unwrap(), file.contents, "{}", file.path);
            let mode = fs::metadata(&on_disk).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, file.mode, "{}", file.path);
        }
        let doc = root.path().join(format!("usr/share/doc/{}", pkg.name));
        let copyright = fs::read_to_string(doc.join("copyright")).unwrap();
        assert_eq!(copyright, deb::copyright_text(&pkg));
        assert!(copyright.contains("generated by umc"), "{copyright}");
        let changelog = root
            .path()
            .join(&deb::changelog_path(&pkg.name, &pkg.version)[1..]);
        let plain = text(Command::new("zcat").arg(&changelog));
        assert_eq!(plain, deb::changelog_text(&pkg).unwrap());

        let mut conffiles: Vec<&str> = pkg
            .files
            .iter()
            .filter(|f| f.conffile)
            .map(|f| f.path.as_str())
            .collect();
        conffiles.sort_unstable();
        let listed = Command::new("dpkg-deb")
            .arg("--info")
            .arg(&w.path)
            .arg("conffiles")
            .output()
            .unwrap();
        if conffiles.is_empty() {
            // No conffiles member at all when there are none.
            assert!(
                !listed.status.success(),
                "{}: unexpected conffiles member",
                pkg.name
            );
        } else {
            let expected: String = conffiles.iter().map(|p| format!("{p}\n")).collect();
            assert_eq!(String::from_utf8(listed.stdout).unwrap(), expected);
        }

        // md5sums as md5sum(1) itself checks them.
        let md5sums = output(
            Command::new("dpkg-deb")
                .arg("--info")
                .arg(&w.path)
                .arg("md5sums"),
        );
        fs::write(root.path().join("md5sums"), &md5sums).unwrap();
        let checked = text(
            Command::new("md5sum")
                .arg("--check")
                .arg("--strict")
                .arg("md5sums")
                .current_dir(root.path()),
        );
        let regular_files = pkg.files.len() + 2;
        assert_eq!(checked.lines().count(), regular_files, "{checked}");
        let md5sums = String::from_utf8(md5sums).unwrap();
        let paths: Vec<&str> = md5sums.lines().map(|l| &l[34..]).collect();
        let mut sorted = paths.clone();
        sorted.sort_unstable();
        assert_eq!(paths, sorted, "md5sums is sorted");
    }
}

#[test]
fn tar_members_list_through_tar() {
    if !common::require_tool("dpkg-deb")
        || !common::require_tool("tar")
        || !common::require_tool("ar")
    {
        return;
    }
    for pkg in fixtures() {
        let w = write_deb(&pkg);
        let members = text(Command::new("ar").arg("t").arg(&w.path));
        assert_eq!(members, "debian-binary\ncontrol.tar.gz\ndata.tar.gz\n");
        let verbose = text(Command::new("ar").arg("tv").arg(&w.path));
        for line in verbose.lines() {
            assert!(line.starts_with("rw-r--r-- 0/0 "), "{line}");
        }

        let control = pipe(
            Command::new("dpkg-deb").arg("--ctrl-tarfile").arg(&w.path),
            Command::new("tar").arg("-t"),
        );
        let has_conffiles = pkg.files.iter().any(|f| f.conffile);
        let expected = if has_conffiles {
            "./\n./conffiles\n./control\n./md5sums\n"
        } else {
            "./\n./control\n./md5sums\n"
        };
        assert_eq!(control, expected);

        let data = pipe(
            Command::new("dpkg-deb").arg("--fsys-tarfile").arg(&w.path),
            Command::new("tar").arg("-t"),
        );
        let names: Vec<String> = expected_entries(&pkg).into_iter().map(|(n, _)| n).collect();
        assert_eq!(data.lines().collect::<Vec<_>>(), names);

        let verbose = pipe(
            Command::new("dpkg-deb").arg("--fsys-tarfile").arg(&w.path),
            Command::new("tar").args(["-tv", "--numeric-owner"]),
        );
        for line in verbose.lines() {
            assert!(line.split_whitespace().nth(1) == Some("0/0"), "{line}");
        }
    }
}

/// dpkg-deb itself, rebuilding from what it unpacked, produces byte-identical
/// tar streams: our tar layout is exactly dpkg-deb's.
#[test]
fn dpkg_deb_rebuild_gives_identical_tars() {
    if !common::require_tool("dpkg-deb") || !common::require_tool("ar") {
        return;
    }
    for pkg in fixtures().into_iter().chain([name_length_package()]) {
        let w = write_deb(&pkg);
        if pkg.name == "umc-names" {
            let names = expected_entries(&pkg);
            for len in [99, 100, 101] {
                for kind in ['-', 'd'] {
                    assert!(
                        names
                            .iter()
                            .any(|(n, m)| n.len() == len && m.starts_with(kind)),
                        "no {kind} entry name of {len} bytes"
                    );
                }
            }
        }
        let work = tempfile::tempdir().unwrap();
        let tree = work.path().join("tree");
        output(Command::new("dpkg-deb").arg("-R").arg(&w.path).arg(&tree));
        let rebuilt = work.path().join("rebuilt.deb");
        let out = Command::new("dpkg-deb")
            .env("SOURCE_DATE_EPOCH", MTIME.to_string())
            .args(["--root-owner-group", "-Zgzip", "-b"])
            .arg(&tree)
            .arg(&rebuilt)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("warning"),
            "{stderr}"
        );
        for member in ["--fsys-tarfile", "--ctrl-tarfile"] {
            let ours = output(Command::new("dpkg-deb").arg(member).arg(&w.path));
            let theirs = output(Command::new("dpkg-deb").arg(member).arg(&rebuilt));
            assert!(
                ours == theirs,
                "{member} of {} differs from dpkg-deb's",
                pkg.name
            );
        }
        // The compressed sizes differ (zlib vs. our deflate); everything
        // else in the ar headers must match.
        let ar_headers = |deb: &Path| {
            text(Command::new("ar").arg("tv").arg(deb))
                .lines()
                .map(|l| {
                    let mut cols: Vec<&str> = l.split_whitespace().collect();
                    cols.remove(2);
                    cols.join(" ")
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(ar_headers(&w.path), ar_headers(&rebuilt));
    }
}

#[test]
fn changelog_parses_with_dpkg_parsechangelog() {
    if !common::require_tool("dpkg-deb")
        || !common::require_tool("dpkg-parsechangelog")
        || !common::require_tool("zcat")
    {
        return;
    }
    for pkg in fixtures() {
        let w = write_deb(&pkg);
        let root = extract(&w.path);
        let gz = root
            .path()
            .join(&deb::changelog_path(&pkg.name, &pkg.version)[1..]);
        let plain = text(Command::new("zcat").arg(&gz));
        let file = root.path().join("changelog");
        fs::write(&file, &plain).unwrap();
        let show = |field: &str| {
            quiet_text(
                Command::new("dpkg-parsechangelog")
                    .arg("-l")
                    .arg(&file)
                    .arg("--show-field")
                    .arg(field),
            )
            .trim_end()
            .to_owned()
        };
        let newest = pkg.changelog.first();
        let version = newest.map_or(pkg.version.as_str(), |e| e.version.as_str());
        assert_eq!(show("Version"), version);
        assert_eq!(show("Source"), pkg.name);
        assert_eq!(show("Distribution"), "umc");
        assert_eq!(show("Urgency"), "medium");
        let (user, time) = newest.map_or(("umc", MTIME as i64), |e| (e.user.as_str(), e.time_unix));
        assert!(
            show("Maintainer").starts_with(&format!("{user} <")),
            "{}",
            show("Maintainer")
        );
        assert_eq!(show("Timestamp"), time.to_string());

        let all = quiet_text(
            Command::new("dpkg-parsechangelog")
                .arg("-l")
                .arg(&file)
                .args(["--format", "rfc822", "--all"]),
        );
        let versions: Vec<&str> = all
            .lines()
            .filter_map(|l| l.strip_prefix("Version: "))
            .collect();
        let expected: Vec<&str> = if pkg.changelog.is_empty() {
            vec![pkg.version.as_str()]
        } else {
            pkg.changelog.iter().map(|e| e.version.as_str()).collect()
        };
        assert_eq!(versions, expected);
        let timestamps: Vec<&str> = all
            .lines()
            .filter_map(|l| l.strip_prefix("Timestamp: "))
            .collect();
        let expected: Vec<String> = pkg
            .changelog
            .iter()
            .map(|e| e.time_unix.to_string())
            .collect();
        if !expected.is_empty() {
            assert_eq!(timestamps, expected);
        }
        assert!(plain.lines().all(|l| l.len() <= 80), "{plain}");
    }
    let text = deb::changelog_text(&site_package()).unwrap();
    assert!(
        text.starts_with(
            "umc-web1 (1.2+umc3) umc; urgency=medium\n\
         \n  * User 'sh' removed dependency 'apache2'\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "\n -- sh <sh@umc.invalid>  Wed, 25 Nov 2026 18:00:00 +0000\n\numc-web1 (1.2+umc2)"
        ),
        "{text}"
    );
    assert!(
        text.contains("\n -- John Doe <John-Doe@umc.invalid>  "),
        "{text}"
    );
    let empty = deb::changelog_text(&metapackage()).unwrap();
    assert_eq!(
        empty,
        "umc-host-web1 (7) umc; urgency=medium\n\n  * Generated by umc.\n\n -- umc <umc@umc.invalid>  Wed, 25 Nov 2026 18:00:00 +0000\n"
    );
}

#[test]
fn builds_are_deterministic_and_sensitive_to_input() {
    for pkg in fixtures() {
        let a = deb::build(&pkg).unwrap();
        let b = deb::build(&pkg.clone()).unwrap();
        assert_eq!(a, b, "{}", pkg.name);
        assert_eq!(a.sha256_hex(), b.sha256_hex());

        let mut changed = pkg.clone();
        changed.mtime += 1;
        assert_ne!(deb::build(&changed).unwrap().bytes, a.bytes);

        let mut changed = pkg.clone();
        changed.description.push('x');
        assert_ne!(deb::build(&changed).unwrap().bytes, a.bytes);

        let mut changed = pkg.clone();
        changed
            .files
            .push(DataFile::new("/usr/share/umc/extra", "1"));
        assert_ne!(deb::build(&changed).unwrap().bytes, a.bytes);
    }
    // One byte of one file.
    let pkg = site_package();
    let a = deb::build(&pkg).unwrap();
    let mut changed = pkg.clone();
    changed.files[0].contents[0] ^= 1;
    assert_ne!(deb::build(&changed).unwrap().bytes, a.bytes);
    // One byte of a changelog line.
    let mut changed = pkg.clone();
    changed.changelog[1].lines[0].push('.');
    assert_ne!(deb::build(&changed).unwrap().bytes, a.bytes);
    // File order in the input does not matter.
    let mut reordered = pkg.clone();
    reordered.files.reverse();
    assert_eq!(deb::build(&reordered).unwrap().bytes, a.bytes);
}

fn single_file_package(size: usize) -> Package {
    Package {
        files: vec![DataFile::new("/usr/share/umc/f", vec![b'z'; size])],
        ..base("umc-size", "1")
    }
}

/// Installed-Size follows dpkg-gencontrol: ceil(size / 1024) per regular
/// file, 1 per directory (the package root `./` included, since File::Find
/// visits the top directory too).
#[test]
fn installed_size_exact_values() {
    // Directories: ./ usr/ usr/share/ usr/share/doc/ usr/share/doc/umc-size/
    // usr/share/umc/ = 6; copyright and changelog.gz are under 1 KiB = 2.
    let size = |bytes: usize| {
        deb::build(&single_file_package(bytes))
            .unwrap()
            .installed_size
    };
    assert_eq!(size(0), 8);
    assert_eq!(size(1), 9);
    assert_eq!(size(1024), 9);
    assert_eq!(size(1025), 10);
    assert_eq!(size(2048), 10);
    assert_eq!(size(2049), 11);
    assert_eq!(deb::installed_size(&single_file_package(1025)).unwrap(), 10);

    // site_package: dirs ./ etc/ etc/nginx/ etc/nginx/conf.d/ etc/umc/ usr/
    // usr/lib/ usr/lib/umc/ usr/lib/umc/hooks/ usr/share/ usr/share/doc/
    // usr/share/doc/umc-web1/ usr/share/umc/ usr/share/umc/sizes/
    // usr/share/umc/aaa…/ usr/share/umc/aaa…/bbb…/ = 16 directories;
    // files: site.conf 1, secret.conf 1, reload-nginx 1, empty 0, one 1,
    // kib 1, kib-plus-one 2, site.json 1, binary 1, copyright 1, changelog 1.
    assert_eq!(deb::build(&site_package()).unwrap().installed_size, 16 + 11);
}

/// Cross-check Installed-Size against dpkg-gencontrol run on the unpacked
/// tree.
#[test]
fn installed_size_matches_dpkg_gencontrol() {
    if !common::require_tool("dpkg-deb") || !common::require_tool("dpkg-gencontrol") {
        return;
    }
    for pkg in fixtures()
        .into_iter()
        .chain([0, 1, 1024, 1025].map(single_file_package))
    {
        let w = write_deb(&pkg);
        let root = extract(&w.path);
        let src = tempfile::tempdir().unwrap();
        fs::create_dir(src.path().join("debian")).unwrap();
        fs::write(
            src.path().join("debian/control"),
            format!(
                "Source: {name}\nMaintainer: umc <umc@umc.invalid>\n\n\
                 Package: {name}\nArchitecture: all\nDescription: test\n test\n",
                name = pkg.name
            ),
        )
        .unwrap();
        fs::write(
            src.path().join("debian/changelog"),
            deb::changelog_text(&pkg).unwrap(),
        )
        .unwrap();
        let control = text(
            Command::new("dpkg-gencontrol")
                .arg(format!("-p{}", pkg.name))
                .arg(format!("-P{}", root.path().display()))
                .arg("-O")
                .current_dir(src.path()),
        );
        let theirs = control
            .lines()
            .find_map(|l| l.strip_prefix("Installed-Size: "))
            .unwrap_or_else(|| panic!("no Installed-Size in:\n{control}"));
        assert_eq!(theirs, w.built.installed_size.to_string(), "{}", pkg.name);
    }
}

/// dpkg itself installs the package into a scratch root, records the
/// conffiles, and refuses to remove a Protected package without force.
#[test]
fn dpkg_installs_into_scratch_root() {
    if !common::require_tool("dpkg") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let admin = root.path().join("var/lib/dpkg");
    for dir in ["updates", "info", "triggers"] {
        fs::create_dir_all(admin.join(dir)).unwrap();
    }
    fs::write(admin.join("status"), "").unwrap();
    let dpkg = || {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", root.path().display()))
            .arg("--force-not-root")
            .arg("--force-depends")
            .arg("--force-conflicts")
            .arg("--force-script-chrootless")
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            );
        cmd
    };
    for pkg in fixtures() {
        let w = write_deb(&pkg);
        output(dpkg().arg("--install").arg(&w.path));
        let site = pkg.name == "umc-web1";
        if site {
            let installed = fs::read(root.path().join("etc/nginx/conf.d/site.conf")).unwrap();
            assert_eq!(installed, pkg.files[0].contents);
        }
        let query = text(
            Command::new("dpkg-query")
                .arg(format!("--root={}", root.path().display()))
                .args(["-W", "-f", "${Version} ${Protected} ${Conffiles}\n"])
                .arg(&pkg.name),
        );
        assert!(query.starts_with(&format!("{} ", pkg.version)), "{query}");
        for file in pkg.files.iter().filter(|f| f.conffile) {
            let md5 = text(Command::new("md5sum").arg(root.path().join(&file.path[1..])));
            let md5 = md5.split_whitespace().next().unwrap();
            assert!(query.contains(&format!(" {} {md5}", file.path)), "{query}");
        }
        let listed = text(
            Command::new("dpkg-query")
                .arg(format!("--root={}", root.path().display()))
                .arg("-L")
                .arg(&pkg.name),
        );
        for file in &pkg.files {
            assert!(
                listed.lines().any(|l| l == file.path),
                "{} not in:\n{listed}",
                file.path
            );
        }
    }
    // Protected: yes is honoured.
    let refused = dpkg()
        .arg("--remove")
        .arg("umc-host-web1")
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "removing a protected package must need force"
    );
    output(
        dpkg()
            .arg("--force-remove-protected")
            .arg("--remove")
            .arg("umc-host-web1"),
    );
}

#[test]
fn lintian_has_no_errors() {
    if !common::require_tool("lintian") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The brief's example maintainer address, on localhost, for comparison.
    let localhost = Package {
        maintainer: "umc <umc@localhost>".to_owned(),
        ..base("umc-localhost", "1")
    };
    let mut paths = Vec::new();
    for pkg in fixtures().into_iter().chain([localhost]) {
        let path = dir.path().join(format!("{}.deb", pkg.name));
        fs::write(&path, deb::build(&pkg).unwrap().bytes).unwrap();
        paths.push(path);
    }
    // `--tag-display-limit 0` is the current spelling of the deprecated
    // `--no-tag-display-limit`.
    let out = Command::new("lintian")
        .args(["--fail-on", "none", "--tag-display-limit", "0"])
        .args(&paths)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("lintian:\n{report}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("Skipping"),
        "lintian failed to run ({}): {stderr}",
        out.status
    );
    let tags: Vec<(&str, &str, &str)> = report
        .lines()
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            Some((
                cols.next()?,
                cols.next()?.trim_end_matches(':'),
                cols.next()?,
            ))
        })
        .collect();
    // A maintainer address on a host without a dot is lintian's only error.
    let localhost: Vec<_> = tags
        .iter()
        .filter(|t| t.1 == "umc-localhost" && t.0 == "E:")
        .collect();
    assert_eq!(
        localhost,
        [&("E:", "umc-localhost", "bogus-mail-host")],
        "{report}"
    );
    let errors: Vec<_> = tags
        .iter()
        .filter(|t| t.0 == "E:" && t.1 != "umc-localhost")
        .collect();
    assert!(errors.is_empty(), "lintian errors: {errors:?}");
    let unexpected: Vec<_> = tags
        .iter()
        .filter(|t| t.1 != "umc-localhost" && !ACCEPTED_TAGS.contains(&t.2))
        .collect();
    assert!(
        unexpected.is_empty(),
        "lintian tags not accepted in tests/it/deb.rs: {unexpected:?}"
    );
}

/// The lintian tags the test accepts; see the comment at the top of the file.
const ACCEPTED_TAGS: &[&str] = &[
    "unknown-field",
    "non-standard-file-perm",
    "initial-upload-closes-no-bugs",
];

#[test]
fn bad_input_is_rejected() {
    let ok = site_package();
    deb::build(&ok).unwrap();

    for name in [
        "", "a", "A-b", "-ab", "+ab", "foo_bar", "foo bar", "umc-Web1",
    ] {
        let err = deb::build(&Package {
            name: name.to_owned(),
            ..ok.clone()
        })
        .unwrap_err();
        assert!(matches!(err, DebError::InvalidName(_)), "{name}: {err}");
        assert!(err.to_string().starts_with("invalid package name"), "{err}");
    }
    for version in ["", "a1", "1 0", "1_0", "x:1", "1.0-", "v2", "1:", "1.0/2"] {
        let err = deb::build(&Package {
            version: version.to_owned(),
            ..ok.clone()
        })
        .unwrap_err();
        assert!(
            matches!(err, DebError::InvalidVersion { .. }),
            "{version}: {err}"
        );
        assert!(err.to_string().contains(&format!("{version:?}")), "{err}");
    }
    for path in [
        "etc/x",
        "",
        "/",
        "/etc//x",
        "/etc/./x",
        "/etc/../x",
        "/etc/x/",
        "/..",
        "/etc/a b",
        "/etc/a\nb",
    ] {
        let mut pkg = ok.clone();
        pkg.files.push(DataFile::new(path, "x"));
        let err = deb::build(&pkg).unwrap_err();
        assert!(
            matches!(err, DebError::InvalidPath { .. }),
            "{path:?}: {err}"
        );
        assert!(err.to_string().starts_with("invalid path"), "{err}");
    }
    for path in [
        "/etc/nginx/conf.d/site.conf",
        "/usr/share/doc/umc-web1/copyright",
        "/usr/share/doc/umc-web1/changelog.gz",
    ] {
        let mut pkg = ok.clone();
        pkg.files.push(DataFile::new(path, "again"));
        let err = deb::build(&pkg).unwrap_err();
        assert!(
            matches!(err, DebError::DuplicatePath(ref p) if p == path),
            "{path}: {err}"
        );
        assert_eq!(err.to_string(), format!("duplicate path {path:?}"));
    }
    // A path that is both a file and a directory.
    let mut pkg = ok.clone();
    pkg.files.push(DataFile::new("/etc/nginx", "x"));
    let err = deb::build(&pkg).unwrap_err();
    assert!(
        matches!(err, DebError::InvalidPath { ref path, .. } if path == "/etc/nginx"),
        "{err}"
    );

    let mut pkg = ok.clone();
    pkg.files[0].mode = 0o10644;
    let err = deb::build(&pkg).unwrap_err();
    assert!(matches!(err, DebError::InvalidMode { .. }), "{err}");
    assert!(
        err.to_string().contains("/etc/nginx/conf.d/site.conf"),
        "{err}"
    );

    let err = deb::build(&Package {
        maintainer: " ".to_owned(),
        ..ok.clone()
    })
    .unwrap_err();
    assert!(
        err.to_string().starts_with("invalid maintainer field"),
        "{err}"
    );
    let err = deb::build(&Package {
        description: "\nno synopsis".to_owned(),
        ..ok.clone()
    })
    .unwrap_err();
    assert!(
        err.to_string().starts_with("invalid description field"),
        "{err}"
    );
    let err = deb::build(&Package {
        depends: vec!["a\nb".to_owned()],
        ..ok.clone()
    })
    .unwrap_err();
    assert!(
        err.to_string().starts_with("invalid depends field"),
        "{err}"
    );
    let err = deb::build(&Package {
        section: "ad min".to_owned(),
        ..ok.clone()
    })
    .unwrap_err();
    assert!(
        err.to_string().starts_with("invalid section field"),
        "{err}"
    );

    let mut pkg = ok.clone();
    pkg.changelog[1].version = "bad".to_owned();
    let err = deb::build(&pkg).unwrap_err();
    assert!(
        matches!(err, DebError::InvalidChangelog { index: 1, .. }),
        "{err}"
    );
    let mut pkg = ok.clone();
    pkg.changelog[0].user = "<sh>".to_owned();
    assert!(matches!(
        deb::build(&pkg).unwrap_err(),
        DebError::InvalidChangelog { index: 0, .. }
    ));
    let mut pkg = ok.clone();
    pkg.changelog[0].time_unix = i64::MAX;
    assert!(matches!(
        deb::build(&pkg).unwrap_err(),
        DebError::InvalidChangelog { index: 0, .. }
    ));

    // Every message is lowercase at the start.
    let err = deb::build(&Package {
        name: "X".to_owned(),
        ..ok
    })
    .unwrap_err();
    assert!(err.to_string().starts_with(|c: char| c.is_lowercase()));
}
