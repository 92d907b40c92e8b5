//! Deterministic synthesis of binary Debian packages (`.deb`).
//!
//! [`build`] turns a [`Package`] description into the bytes of a `.deb` that
//! `dpkg` 1.21/1.22 accepts. The function is pure: it does no IO, never reads
//! the clock and never iterates a hash map, so the same [`Package`] always
//! yields the same bytes (for a given build of this crate: the gzip stream
//! depends on the deflate backend that `flate2` was compiled with).
//!
//! The layout follows what `dpkg-deb --root-owner-group -Zgzip -b` produces:
//!
//! * an `ar` archive with the members `debian-binary`, `control.tar.gz` and
//!   `data.tar.gz`, in that order, all mode `100644`, owner `0/0`;
//! * GNU-format tar members (never PAX headers, which `dpkg` rejects), with
//!   entry names `./`, `./etc/`, `./etc/foo.conf`, a directory entry for every
//!   parent directory, entries in the depth-first, per-directory sorted order
//!   `dpkg-deb` uses, names longer than 100 bytes in a GNU `././@LongLink`
//!   entry, owner `root/root`, every timestamp set to [`Package::mtime`], and
//!   the archive padded to GNU tar's 10240-byte record size;
//! * gzip at level 9 with a zero timestamp and no file name.
//!
//! Every package also ships `/usr/share/doc/<name>/copyright` (DEP-5) and a
//! Debian changelog (`changelog.gz` for a native version, `changelog.Debian.gz`
//! when the version has a Debian revision, as Debian policy 12.7 asks).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;

use flate2::{Compression, GzBuilder};
use md5::{Digest, Md5};
use sha2::Sha256;

/// The only architecture umc builds for: the packages hold configuration.
pub const ARCHITECTURE: &str = "all";
/// Distribution written in every changelog stanza.
pub const CHANGELOG_DISTRIBUTION: &str = "umc";
/// Mail domain of the addresses in changelog trailers (RFC 2606 reserves
/// `.invalid`; the dot keeps lintian's address check satisfied).
pub const CHANGELOG_MAIL_DOMAIN: &str = "umc.invalid";
/// Mode of every directory entry.
pub const DIR_MODE: u32 = 0o755;
/// Mode of the files umc generates itself (control files, documentation).
pub const DEFAULT_FILE_MODE: u32 = 0o644;
/// Mode of maintainer scripts.
pub const SCRIPT_MODE: u32 = 0o755;
/// The maintainer scripts a package may carry, in the order dpkg-deb stores them.
pub const SCRIPT_NAMES: [&str; 4] = ["postinst", "postrm", "preinst", "prerm"];

/// GNU tar pads an archive to a multiple of its record size (20 blocks).
const TAR_RECORD_SIZE: usize = 10240;
const TAR_BLOCK_SIZE: usize = 512;
/// Longest changelog line before a bullet is wrapped.
const CHANGELOG_WIDTH: usize = 80;

/// One regular file to install.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DataFile {
    /// Absolute path, e.g. `/etc/nginx/conf.d/site.conf`.
    pub path: String,
    /// Permission bits (at most `0o7777`), e.g. `0o644`.
    pub mode: u32,
    pub contents: Vec<u8>,
    /// List the file in `conffiles` (dpkg then keeps local changes).
    pub conffile: bool,
}

impl DataFile {
    /// A plain `0644` file that is not a conffile.
    #[must_use]
    pub fn new(path: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        DataFile {
            path: path.into(),
            mode: DEFAULT_FILE_MODE,
            contents: contents.into(),
            conffile: false,
        }
    }

    /// A `0644` file listed in `conffiles`.
    #[must_use]
    pub fn conffile(path: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        DataFile {
            conffile: true,
            ..DataFile::new(path, contents)
        }
    }
}

/// One stanza of the package's Debian changelog.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangelogEntry {
    pub version: String,
    /// One bullet each, e.g. `User 'sh' removed dependency 'apache2'`.
    /// Long lines are wrapped at 80 columns.
    pub lines: Vec<String>,
    /// Shown as `<user> <<user>@umc.invalid>` in the trailer; characters that
    /// cannot appear in a mail address are replaced by `-` in the address.
    pub user: String,
    pub time_unix: i64,
}

/// Everything needed to synthesize one `.deb`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// `umc <umc@umc.invalid>`-style. Note that lintian reports a host
    /// without a dot (such as `localhost`) as the error `bogus-mail-host`.
    pub maintainer: String,
    /// e.g. `admin`; omitted from the control file when empty.
    pub section: String,
    /// e.g. `optional`; omitted from the control file when empty.
    pub priority: String,
    /// Synopsis line, optionally followed by `\n` and an extended
    /// description. When there is no extended description a standard one is
    /// supplied (see [`control_stanza`]).
    pub description: String,
    /// Relation strings such as `nginx-light (>= 1.2)` or `mawk | gawk`.
    pub depends: Vec<String>,
    pub conflicts: Vec<String>,
    /// Emit `Protected: yes`.
    pub protected: bool,
    pub files: Vec<DataFile>,
    /// Newest first. When empty, a single "Generated by umc." stanza is used.
    pub changelog: Vec<ChangelogEntry>,
    /// Maintainer scripts by name ([`SCRIPT_NAMES`]), stored with mode `0755`.
    pub scripts: BTreeMap<String, String>,
    /// Conffiles of earlier versions that dpkg deletes on upgrade: `remove-on-upgrade`
    /// lines in `conffiles` (dpkg >= 1.20.6). A path here must not also be shipped.
    pub removed_conffiles: Vec<String>,
    /// Timestamp of every archive member and tar entry.
    pub mtime: u64,
}

/// The result of [`build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltDeb {
    /// The complete `.deb`.
    pub bytes: Vec<u8>,
    /// The exact text of `./control` inside `control.tar.gz`.
    pub control: String,
    /// The `Installed-Size` value, in KiB.
    pub installed_size: u64,
}

impl BuiltDeb {
    /// Lowercase hex MD5 of [`BuiltDeb::bytes`] (the `MD5sum` index field).
    #[must_use]
    pub fn md5_hex(&self) -> String {
        hex::encode(Md5::digest(&self.bytes))
    }

    /// Lowercase hex SHA-256 of [`BuiltDeb::bytes`] (the `SHA256` index field).
    #[must_use]
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }
}

/// Why a [`Package`] cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DebError {
    #[error("invalid package name {0:?}: must match [a-z0-9][a-z0-9+.-]+")]
    InvalidName(String),
    #[error("invalid version {version:?}: {reason}")]
    InvalidVersion {
        version: String,
        reason: &'static str,
    },
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("duplicate path {0:?}")]
    DuplicatePath(String),
    #[error("invalid mode {mode:#o} for path {path:?}: must be at most 0o7777")]
    InvalidMode { path: String, mode: u32 },
    #[error("invalid {field} field {value:?}: {reason}")]
    InvalidField {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("invalid changelog entry {index}: {reason}")]
    InvalidChangelog { index: usize, reason: String },
    #[error("{what} is too large for a tar header")]
    TooLarge { what: String },
    #[error("archive encoding failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Build the `.deb` for `pkg`.
///
/// # Errors
///
/// A [`DebError`] naming the offending value when `pkg` does not validate:
/// package name, version, a file path (relative, with empty, `.` or `..`
/// components, whitespace or control characters, listed twice, clashing with
/// the generated documentation, or both a file and a directory), a mode above
/// `0o7777`, a control field with control characters, or a changelog entry.
pub fn build(pkg: &Package) -> Result<BuiltDeb, DebError> {
    validate(pkg)?;

    let changelog_gz = gzip(changelog_text(pkg)?.as_bytes())?;
    let copyright = copyright_text(pkg);
    let doc_dir = format!("/usr/share/doc/{}", pkg.name);

    // Every regular file, keyed by its path components. A BTreeMap keyed by
    // component lists iterates in dpkg-deb's order: depth first, each
    // directory's children sorted bytewise.
    let mut files: FileMap<'_> = BTreeMap::new();
    let generated = [
        (format!("{doc_dir}/copyright"), copyright.as_bytes()),
        (
            changelog_path(&pkg.name, &pkg.version),
            changelog_gz.as_slice(),
        ),
    ];
    let user_files = pkg
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.mode, f.contents.as_slice(), f.conffile));
    let generated_files = generated
        .iter()
        .map(|(path, contents)| (path.as_str(), DEFAULT_FILE_MODE, *contents, false));
    for (path, mode, contents, conffile) in user_files.chain(generated_files) {
        let components = path_components(path)?;
        let entry = FileRef {
            path,
            mode,
            contents,
            conffile,
        };
        if files.insert(components, entry).is_some() {
            return Err(DebError::DuplicatePath(path.to_owned()));
        }
    }

    let mut dirs: BTreeSet<Vec<&str>> = BTreeSet::new();
    for components in files.keys() {
        for depth in 0..components.len() {
            dirs.insert(components[..depth].to_vec());
        }
    }
    if let Some(clash) = files.iter().find(|(c, _)| dirs.contains(*c)) {
        return Err(DebError::InvalidPath {
            path: clash.1.path.to_owned(),
            reason: "is both a file and the parent directory of another file",
        });
    }

    let installed_size = dirs.len() as u64
        + files
            .values()
            .map(|f| (f.contents.len() as u64).div_ceil(1024))
            .sum::<u64>();

    let control = control_stanza(pkg, installed_size);
    let control_tar_gz = control_tar_gz(pkg, &control, &files)?;
    let data_tar_gz = data_tar_gz(&files, &dirs, pkg.mtime)?;

    let mut ar = ar::Builder::new(Vec::new());
    for (member, contents) in [
        ("debian-binary", &b"2.0\n"[..]),
        ("control.tar.gz", &control_tar_gz[..]),
        ("data.tar.gz", &data_tar_gz[..]),
    ] {
        let mut header = ar::Header::new(member.as_bytes().to_vec(), contents.len() as u64);
        header.set_mtime(pkg.mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(0o100_644);
        ar.append(&header, contents)?;
    }

    Ok(BuiltDeb {
        bytes: ar.into_inner()?,
        control,
        installed_size,
    })
}

/// The text of the control file, exactly as [`build`] stores it.
///
/// Field order: Package, Version, Architecture, Maintainer, Installed-Size,
/// Depends, Conflicts, Section, Priority, Protected, Description. Empty
/// Depends, Conflicts, Section and Priority are omitted, as is Protected
/// unless set. Extended description lines are indented by one space, blank
/// ones written as ` .`. Leading and trailing blank lines of the extended
/// description are dropped; when nothing remains, two standard lines saying
/// the package was generated by umc are used (lintian reports a missing
/// extended description as an error); for a package without files they call
/// it a metapackage, which tells lintian the package is empty on purpose.
///
/// This function does not validate; [`build`] does.
#[must_use]
pub fn control_stanza(pkg: &Package, installed_size: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Package: {}", pkg.name);
    let _ = writeln!(out, "Version: {}", pkg.version);
    let _ = writeln!(out, "Architecture: {ARCHITECTURE}");
    let _ = writeln!(out, "Maintainer: {}", pkg.maintainer.trim());
    let _ = writeln!(out, "Installed-Size: {installed_size}");
    for (field, relations) in [("Depends", &pkg.depends), ("Conflicts", &pkg.conflicts)] {
        if !relations.is_empty() {
            let joined: Vec<&str> = relations.iter().map(|r| r.trim()).collect();
            let _ = writeln!(out, "{field}: {}", joined.join(", "));
        }
    }
    for (field, value) in [("Section", &pkg.section), ("Priority", &pkg.priority)] {
        if !value.trim().is_empty() {
            let _ = writeln!(out, "{field}: {}", value.trim());
        }
    }
    if pkg.protected {
        out.push_str("Protected: yes\n");
    }

    let mut lines = pkg.description.lines();
    let synopsis = lines.next().unwrap_or_default().trim();
    let mut extended: Vec<&str> = lines.map(str::trim_end).collect();
    while extended.last().is_some_and(|l| l.trim().is_empty()) {
        extended.pop();
    }
    let leading_blank = extended.iter().take_while(|l| l.trim().is_empty()).count();
    extended.drain(..leading_blank);
    if extended.is_empty() {
        extended = if pkg.files.is_empty() {
            vec![
                "This metapackage was generated by umc from the site's configuration.",
                "It installs no files of its own, only package relationships.",
            ]
        } else {
            vec![
                "This package was generated by umc from the site's configuration.",
                "Local changes to its files may be replaced by later versions.",
            ]
        };
    }
    let _ = writeln!(out, "Description: {synopsis}");
    for line in extended {
        if line.trim().is_empty() {
            out.push_str(" .\n");
        } else {
            let _ = writeln!(out, " {line}");
        }
    }
    out
}

/// Installed-Size in KiB, computed the way `dpkg-gencontrol` does when the
/// substvar is unset: every regular file counts `ceil(size / 1024)`, every
/// other filesystem object (here: each directory entry of `data.tar`,
/// including `./`) counts 1.
///
/// This is the value [`build`] writes; it builds the package to find it.
///
/// # Errors
///
/// As [`build`].
pub fn installed_size(pkg: &Package) -> Result<u64, DebError> {
    Ok(build(pkg)?.installed_size)
}

/// Absolute path of the changelog inside the package: `changelog.gz` for a
/// native version, `changelog.Debian.gz` when the version carries a Debian
/// revision (policy 12.7).
#[must_use]
pub fn changelog_path(name: &str, version: &str) -> String {
    let file = if version.contains('-') {
        "changelog.Debian.gz"
    } else {
        "changelog.gz"
    };
    format!("/usr/share/doc/{name}/{file}")
}

/// The uncompressed Debian changelog shipped in the package.
///
/// # Errors
///
/// [`DebError::InvalidChangelog`] for an entry whose version is invalid,
/// whose user is empty or contains `<`, `>` or control characters, whose
/// line contains a control character, or whose time is outside the years 1
/// to 9999.
pub fn changelog_text(pkg: &Package) -> Result<String, DebError> {
    let fallback;
    let entries: &[ChangelogEntry] = if pkg.changelog.is_empty() {
        fallback = [ChangelogEntry {
            version: pkg.version.clone(),
            lines: vec!["Generated by umc.".to_owned()],
            user: "umc".to_owned(),
            time_unix: i64::try_from(pkg.mtime).unwrap_or(i64::MAX),
        }];
        &fallback
    } else {
        &pkg.changelog
    };

    let mut out = String::new();
    for (index, entry) in entries.iter().enumerate() {
        let bad = |reason: String| DebError::InvalidChangelog { index, reason };
        check_version(&entry.version)
            .map_err(|reason| bad(format!("version {:?}: {reason}", entry.version)))?;
        check_changelog_user(&entry.user).map_err(bad)?;
        let user = entry.user.trim();
        let date = rfc2822(entry.time_unix).ok_or_else(|| {
            bad(format!(
                "time {} is outside the years 1 to 9999",
                entry.time_unix
            ))
        })?;

        if index > 0 {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{} ({}) {CHANGELOG_DISTRIBUTION}; urgency=medium\n",
            pkg.name, entry.version
        );
        let mut any = false;
        for line in &entry.lines {
            check_changelog_line(line).map_err(bad)?;
            if !line.trim().is_empty() {
                wrap_bullet(&mut out, line);
                any = true;
            }
        }
        if !any {
            wrap_bullet(&mut out, "No changes recorded.");
        }
        let _ = writeln!(
            out,
            "\n -- {user} <{}@{CHANGELOG_MAIL_DOMAIN}>  {date}",
            mail_local_part(user)
        );
    }
    Ok(out)
}

/// The rule [`changelog_text`] applies to an entry's user; the store checks imported history
/// with it, so nothing it accepts can fail a render later.
///
/// # Errors
///
/// The reason, naming the user.
pub fn check_changelog_user(user: &str) -> Result<(), String> {
    let trimmed = user.trim();
    if trimmed.is_empty() || trimmed.contains(['<', '>']) || has_control(trimmed) {
        return Err(format!(
            "user {user:?} must be non-empty without '<', '>' or control characters"
        ));
    }
    Ok(())
}

/// The rule [`changelog_text`] applies to each change line.
///
/// # Errors
///
/// The reason, naming the line.
pub fn check_changelog_line(line: &str) -> Result<(), String> {
    if has_control(line) {
        return Err(format!("line {line:?} contains a control character"));
    }
    Ok(())
}

/// The DEP-5 copyright file shipped in the package. The copyright year is
/// that of [`Package::mtime`] (lintian wants a notice with a year).
#[must_use]
pub fn copyright_text(pkg: &Package) -> String {
    let year = i64::try_from(pkg.mtime / 86_400)
        .ok()
        .and_then(civil_from_days)
        .map(|(year, _, _)| format!("{year} "))
        .unwrap_or_default();
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: {name}
Comment: This package was generated by umc from the site's configuration.
 It contains no upstream software: its files are derived from the
 configuration the site's administrators keep in umc.

Files: *
Copyright: {year}the site's administrators
License: umc-site-configuration

License: umc-site-configuration
 The files in this package were generated by umc for a single site from
 that site's own configuration. They are subject to whatever terms the
 site applies to its configuration and are not meant for redistribution.
",
        name = pkg.name,
    )
}

struct FileRef<'a> {
    path: &'a str,
    mode: u32,
    contents: &'a [u8],
    conffile: bool,
}

type FileMap<'a> = BTreeMap<Vec<&'a str>, FileRef<'a>>;

/// `data.tar.gz`: directories and files merged in tree order.
fn data_tar_gz(
    files: &FileMap<'_>,
    dirs: &BTreeSet<Vec<&str>>,
    mtime: u64,
) -> Result<Vec<u8>, DebError> {
    let mut nodes: BTreeMap<&[&str], Option<&FileRef<'_>>> = BTreeMap::new();
    for dir in dirs {
        nodes.insert(dir.as_slice(), None);
    }
    for (components, file) in files {
        nodes.insert(components.as_slice(), Some(file));
    }
    let mut tar = TarWriter::new(mtime);
    for (components, node) in &nodes {
        let mut name = String::from("./");
        name.push_str(&components.join("/"));
        match node {
            None => {
                if !components.is_empty() {
                    name.push('/');
                }
                tar.directory(&name)?;
            }
            Some(file) => tar.file(&name, file.mode, file.contents)?,
        }
    }
    gzip(&tar.finish())
}

/// `control.tar.gz`: `./`, `./conffiles` (only when there are conffiles),
/// `./control`, `./md5sums` and the maintainer scripts, in the sorted order
/// dpkg-deb writes them. `md5sums` and `conffiles` are sorted bytewise by
/// path, as `dh_md5sums` sorts (`LC_ALL=C sort`); `remove-on-upgrade` lines
/// follow the shipped conffiles.
fn control_tar_gz(pkg: &Package, control: &str, files: &FileMap<'_>) -> Result<Vec<u8>, DebError> {
    let mut by_path: Vec<&FileRef<'_>> = files.values().collect();
    by_path.sort_by(|a, b| a.path.cmp(b.path));
    let mut md5sums = String::new();
    let mut conffiles = String::new();
    for file in &by_path {
        let digest = hex::encode(Md5::digest(file.contents));
        let _ = writeln!(md5sums, "{digest}  {}", &file.path[1..]);
        if file.conffile {
            conffiles.push_str(file.path);
            conffiles.push('\n');
        }
    }
    let mut removed: Vec<&String> = pkg.removed_conffiles.iter().collect();
    removed.sort();
    removed.dedup();
    for path in removed {
        let _ = writeln!(conffiles, "remove-on-upgrade {path}");
    }
    let mut tar = TarWriter::new(pkg.mtime);
    tar.directory("./")?;
    if !conffiles.is_empty() {
        tar.file("./conffiles", DEFAULT_FILE_MODE, conffiles.as_bytes())?;
    }
    tar.file("./control", DEFAULT_FILE_MODE, control.as_bytes())?;
    tar.file("./md5sums", DEFAULT_FILE_MODE, md5sums.as_bytes())?;
    for (name, text) in &pkg.scripts {
        tar.file(&format!("./{name}"), SCRIPT_MODE, text.as_bytes())?;
    }
    gzip(&tar.finish())
}

fn validate(pkg: &Package) -> Result<(), DebError> {
    if !valid_name(&pkg.name) {
        return Err(DebError::InvalidName(pkg.name.clone()));
    }
    check_version(&pkg.version).map_err(|reason| DebError::InvalidVersion {
        version: pkg.version.clone(),
        reason,
    })?;
    let field_err = |field, value: &str, reason| DebError::InvalidField {
        field,
        value: value.to_owned(),
        reason,
    };
    if pkg.maintainer.trim().is_empty() {
        return Err(field_err("maintainer", &pkg.maintainer, "is empty"));
    }
    if has_control(&pkg.maintainer) {
        return Err(field_err(
            "maintainer",
            &pkg.maintainer,
            "contains a control character",
        ));
    }
    for (field, value) in [("section", &pkg.section), ("priority", &pkg.priority)] {
        if value.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(field_err(
                field,
                value,
                "contains whitespace or a control character",
            ));
        }
    }
    for (field, relations) in [("depends", &pkg.depends), ("conflicts", &pkg.conflicts)] {
        for relation in relations {
            if relation.trim().is_empty() {
                return Err(field_err(field, relation, "has an empty relation"));
            }
            if has_control(relation) {
                return Err(field_err(field, relation, "contains a control character"));
            }
        }
    }
    let synopsis = pkg.description.lines().next().unwrap_or_default();
    if synopsis.trim().is_empty() {
        return Err(field_err(
            "description",
            &pkg.description,
            "has an empty synopsis",
        ));
    }
    if pkg
        .description
        .contains(|c: char| c.is_control() && c != '\n')
    {
        return Err(field_err(
            "description",
            &pkg.description,
            "contains a control character other than a newline",
        ));
    }
    for file in &pkg.files {
        path_components(&file.path)?;
        if file.mode > 0o7777 {
            return Err(DebError::InvalidMode {
                path: file.path.clone(),
                mode: file.mode,
            });
        }
    }
    for name in pkg.scripts.keys() {
        if !SCRIPT_NAMES.contains(&name.as_str()) {
            return Err(field_err(
                "scripts",
                name,
                "is not a maintainer script name (preinst, postinst, prerm, postrm)",
            ));
        }
    }
    for path in &pkg.removed_conffiles {
        path_components(path)?;
        if pkg.files.iter().any(|f| &f.path == path) {
            return Err(DebError::InvalidPath {
                path: path.clone(),
                reason: "is both shipped and marked remove-on-upgrade",
            });
        }
    }
    Ok(())
}

fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes[1..]
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b))
}

/// Debian version syntax (`[epoch:]upstream[-revision]`), restricted to the
/// characters `[A-Za-z0-9.+~:-]`.
fn check_version(version: &str) -> Result<(), &'static str> {
    if version.is_empty() {
        return Err("is empty");
    }
    if !version
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".+~:-".contains(&b))
    {
        return Err("contains a character outside [A-Za-z0-9.+~:-]");
    }
    let rest = match version.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return Err("epoch is not a number");
            }
            rest
        }
        None => version,
    };
    let upstream = match rest.rsplit_once('-') {
        Some((upstream, revision)) => {
            if revision.is_empty() || revision.contains(':') {
                return Err("revision is empty or contains ':'");
            }
            upstream
        }
        None => rest,
    };
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("upstream version must start with a digit");
    }
    Ok(())
}

/// Split an absolute path into its components, rejecting anything that could
/// not be a plain file path inside the package.
fn path_components(path: &str) -> Result<Vec<&str>, DebError> {
    let bad = |reason| DebError::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    let Some(relative) = path.strip_prefix('/') else {
        return Err(bad("must be absolute"));
    };
    if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace or a control character"));
    }
    let components: Vec<&str> = relative.split('/').collect();
    for component in &components {
        match *component {
            "" => return Err(bad("has an empty component")),
            "." | ".." => return Err(bad("has a '.' or '..' component")),
            _ => {}
        }
    }
    Ok(components)
}

fn has_control(s: &str) -> bool {
    s.contains(char::is_control)
}

/// Local part of a changelog address: characters outside `[A-Za-z0-9._+-]`
/// become `-`, and dots may not start, end or repeat.
fn mail_local_part(user: &str) -> String {
    let mapped: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let parts: Vec<&str> = mapped.split('.').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        "umc".to_owned()
    } else {
        parts.join(".")
    }
}

/// Append `text` as a changelog bullet (`  * `), wrapped at 80 columns with
/// continuation lines indented by four spaces.
fn wrap_bullet(out: &mut String, text: &str) {
    let mut line = String::from("  *");
    let mut line_has_word = false;
    for word in text.split_whitespace() {
        if line_has_word && line.chars().count() + 1 + word.chars().count() > CHANGELOG_WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = String::from("   ");
        }
        line.push(' ');
        line.push_str(word);
        line_has_word = true;
    }
    out.push_str(&line);
    out.push('\n');
}

/// RFC 2822 date in UTC (`Wed, 25 Nov 2026 18:00:00 +0000`), or `None`
/// outside the years 1 to 9999.
fn rfc2822(time_unix: i64) -> Option<String> {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = time_unix.div_euclid(86_400);
    let secs = time_unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days)?;
    let weekday = DAYS[usize::try_from((days + 4).rem_euclid(7)).ok()?];
    let month_name = MONTHS[usize::try_from(month - 1).ok()?];
    Some(format!(
        "{weekday}, {day:02} {month_name} {year} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ))
}

/// `(year, month, day)` of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`), or `None` outside the years 1 to 9999.
fn civil_from_days(days: i64) -> Option<(i64, i64, i64)> {
    let z = days.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe.checked_add(era.checked_mul(400)?)? + i64::from(month <= 2);
    (1..=9999).contains(&year).then_some((year, month, day))
}

fn gzip(data: &[u8]) -> Result<Vec<u8>, DebError> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .operating_system(3) // Unix, as gzip -n writes it
        .write(Vec::with_capacity(data.len() / 4 + 64), Compression::best());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

/// Writes GNU-format tar archives the way GNU tar (and so `dpkg-deb`) does,
/// with names stored verbatim (`./etc/`), which the `tar` crate would
/// normalize away.
struct TarWriter {
    out: Vec<u8>,
    mtime: u64,
}

impl TarWriter {
    fn new(mtime: u64) -> Self {
        TarWriter {
            out: Vec::new(),
            mtime,
        }
    }

    fn directory(&mut self, name: &str) -> Result<(), DebError> {
        self.entry(name, DIR_MODE, b'5', &[])
    }

    fn file(&mut self, name: &str, mode: u32, contents: &[u8]) -> Result<(), DebError> {
        self.entry(name, mode, b'0', contents)
    }

    fn entry(&mut self, name: &str, mode: u32, kind: u8, contents: &[u8]) -> Result<(), DebError> {
        let name = name.as_bytes();
        if name.len() > 100 {
            let mut long = name.to_vec();
            long.push(0);
            self.header(b"././@LongLink", 0o644, long.len() as u64, 0, b'L', name)?;
            self.data(&long);
        }
        self.header(
            &name[..name.len().min(100)],
            mode,
            contents.len() as u64,
            self.mtime,
            kind,
            name,
        )?;
        self.data(contents);
        Ok(())
    }

    fn header(
        &mut self,
        name: &[u8],
        mode: u32,
        size: u64,
        mtime: u64,
        kind: u8,
        full_name: &[u8],
    ) -> Result<(), DebError> {
        let too_large = |what: &str| DebError::TooLarge {
            what: format!("{what} of {}", String::from_utf8_lossy(full_name)),
        };
        let mut h = [0u8; TAR_BLOCK_SIZE];
        h[..name.len()].copy_from_slice(name);
        octal(&mut h[100..108], u64::from(mode)).ok_or_else(|| too_large("mode"))?;
        octal(&mut h[108..116], 0).ok_or_else(|| too_large("uid"))?;
        octal(&mut h[116..124], 0).ok_or_else(|| too_large("gid"))?;
        octal(&mut h[124..136], size).ok_or_else(|| too_large("size"))?;
        octal(&mut h[136..148], mtime).ok_or_else(|| too_large("mtime"))?;
        h[156] = kind;
        h[257..265].copy_from_slice(b"ustar  \0");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        h[148..156].fill(b' ');
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        octal(&mut h[148..155], sum).ok_or_else(|| too_large("checksum"))?;
        h[155] = b' ';
        self.out.extend_from_slice(&h);
        Ok(())
    }

    fn data(&mut self, contents: &[u8]) {
        self.out.extend_from_slice(contents);
        let rem = contents.len() % TAR_BLOCK_SIZE;
        if rem != 0 {
            self.out.resize(self.out.len() + TAR_BLOCK_SIZE - rem, 0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.resize(self.out.len() + 2 * TAR_BLOCK_SIZE, 0);
        let rem = self.out.len() % TAR_RECORD_SIZE;
        if rem != 0 {
            self.out.resize(self.out.len() + TAR_RECORD_SIZE - rem, 0);
        }
        self.out
    }
}

/// Write `value` as zero-padded octal filling all but the last byte of
/// `field`, followed by NUL. `None` when it does not fit.
fn octal(field: &mut [u8], value: u64) -> Option<()> {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    if text.len() > width {
        return None;
    }
    field[..width].copy_from_slice(text.as_bytes());
    field[width] = 0;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2822_known_dates() {
        assert_eq!(
            rfc2822(0).as_deref(),
            Some("Thu, 01 Jan 1970 00:00:00 +0000")
        );
        assert_eq!(
            rfc2822(1_795_629_600).as_deref(),
            Some("Wed, 25 Nov 2026 18:00:00 +0000")
        );
        assert_eq!(
            rfc2822(951_782_400).as_deref(),
            Some("Tue, 29 Feb 2000 00:00:00 +0000")
        );
        assert_eq!(
            rfc2822(-1).as_deref(),
            Some("Wed, 31 Dec 1969 23:59:59 +0000")
        );
        assert_eq!(rfc2822(i64::MAX), None);
    }

    #[test]
    fn rfc2822_agrees_with_httpdate() {
        let mut t: u64 = 0;
        while t < 253_402_300_799 {
            let http =
                httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t));
            let ours = rfc2822(i64::try_from(t).unwrap()).unwrap();
            assert_eq!(ours.replace("+0000", "GMT"), http, "at {t}");
            t += 7_777_777;
        }
    }

    #[test]
    fn versions() {
        for good in ["1", "1.0", "1:2.0-3", "2.0~rc1+umc.1", "0-1-2"] {
            assert_eq!(check_version(good), Ok(()), "{good}");
        }
        for bad in ["", "a1", "1.0 ", "1_0", "x:1", ":1", "1.0-", "1-a:b", "1:a"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wrapping_keeps_lines_short() {
        let mut out = String::new();
        let long = "word ".repeat(40);
        wrap_bullet(&mut out, &long);
        assert!(out.lines().all(|l| l.len() <= CHANGELOG_WIDTH), "{out}");
        assert!(out.starts_with("  * word"));
        assert!(out.lines().skip(1).all(|l| l.starts_with("    word")));
    }

    #[test]
    fn mail_local_parts() {
        assert_eq!(mail_local_part("sh"), "sh");
        assert_eq!(mail_local_part("John Doe"), "John-Doe");
        assert_eq!(mail_local_part("..a..b."), "a.b");
        assert_eq!(mail_local_part("..."), "umc");
    }
}
