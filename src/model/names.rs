//! What a name or value may be: hosts, tasks, packages, variables, services, URLs, file paths
//! and tokens. Each check returns the [`ModelError`] that names the bad input.

use super::ModelError;

/// Longest `umc-<host>` package name we emit. dpkg keeps `<pkg>.md5sums` etc. in
/// /var/lib/dpkg/info, and names near 255 bytes fail there.
pub const MAX_PACKAGE_NAME: usize = 200;
pub const MAX_TASK_NAME: usize = 64;
pub const MAX_VAR_NAME: usize = 128;
pub const MAX_VAR_VALUE: usize = 64 * 1024;
pub const MAX_DESCRIPTION: usize = 4096;
pub const MAX_RELATIONS: usize = 1024;

fn is_pkg_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')
}

/// Debian Policy 5.6.1: `[a-z0-9][a-z0-9+.-]+`.
pub fn validate_package_name(name: &str) -> Result<(), ModelError> {
    let mut chars = name.chars();
    let ok = name.len() >= 2
        && name.len() <= MAX_PACKAGE_NAME
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(is_pkg_char);
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidPackage(name.to_string()))
    }
}

pub fn validate_task_name(name: &str) -> Result<(), ModelError> {
    let mut chars = name.chars();
    let ok = !name.is_empty()
        && name.len() <= MAX_TASK_NAME
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(is_pkg_char);
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidTask {
            name: name.to_string(),
        })
    }
}

/// RFC 1123 host name, returned lowercased.
pub fn normalize_host(name: &str) -> Result<String, ModelError> {
    let err = |why: &str| ModelError::InvalidHost {
        name: name.to_string(),
        why: why.to_string(),
    };
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    if lower.is_empty() {
        return Err(err("empty"));
    }
    if lower.len() > 253 {
        return Err(err("longer than 253 characters"));
    }
    for label in lower.split('.') {
        if label.is_empty() {
            return Err(err("empty label"));
        }
        if label.len() > 63 {
            return Err(err("a label is longer than 63 characters"));
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(err("only letters, digits, '-' and '.' are allowed"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(err("a label starts or ends with '-'"));
        }
    }
    Ok(lower)
}

/// The `umc-<host>` package name of a host. Long names are shortened deterministically with a
/// hash suffix; collisions are rejected by [`Model::validate`].
pub fn host_package(host: &str) -> String {
    use sha2::{Digest, Sha256};
    let full = format!("umc-{host}");
    if full.len() <= MAX_PACKAGE_NAME {
        return full;
    }
    let digest = hex::encode(&Sha256::digest(host.as_bytes())[..6]);
    let keep = MAX_PACKAGE_NAME - digest.len() - 1;
    let mut prefix = full[..keep].to_string();
    while prefix.ends_with(['.', '-', '+']) {
        prefix.pop();
    }
    format!("{prefix}-{digest}")
}

pub fn task_package(task: &str) -> String {
    format!("umc-task-{task}")
}

pub fn validate_var_name(name: &str) -> Result<(), ModelError> {
    let mut chars = name.chars();
    let ok = name.len() <= MAX_VAR_NAME
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidVar(name.to_string()))
    }
}

/// Descriptions end up in control files: a tab, CR or other control character would make the
/// package unbuildable for every host that sees it.
pub(super) fn validate_description(task: &str, d: &str) -> Result<(), ModelError> {
    if d.len() > MAX_DESCRIPTION {
        return Err(ModelError::DescriptionTooLong(task.to_string()));
    }
    if d.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ModelError::DescriptionControl(task.to_string()));
    }
    Ok(())
}

/// umc's own packages are not dependencies or removals a task may name: `umc-task-*` comes
/// from includes, and removing `umc-<host>` or a task package would break every cycle.
pub(super) fn check_not_umc(task: &str, package: &str) -> Result<(), ModelError> {
    if package.starts_with("umc-") {
        return Err(ModelError::ReservedPackage {
            task: task.to_string(),
            package: package.to_string(),
        });
    }
    Ok(())
}

pub(super) fn validate_var(name: &str, value: &str) -> Result<(), ModelError> {
    validate_var_name(name)?;
    if value.len() > MAX_VAR_VALUE {
        return Err(ModelError::VarTooLong(name.to_string()));
    }
    Ok(())
}

/// Where a displaced file's original goes: `<path>.umc-orig` (see contrib/maintscripts).
pub const DIVERTED_SUFFIX: &str = ".umc-orig";

/// Paths of the `umc-node` package and of umc's state on nodes (a trailing `/`: everything
/// below); no task may ship them.
pub const NODE_PATHS: &[&str] = &[
    "/etc/umc/",
    "/var/lib/umc/",
    "/usr/sbin/umc-cycle",
    "/lib/systemd/system/umc-cycle.service",
    "/lib/systemd/system/umc-cycle.timer",
    "/etc/apt/sources.list.d/umc.sources",
    "/etc/apt/auth.conf.d/umc.conf",
    "/usr/share/keyrings/umc-archive-keyring.gpg",
];

/// A node token as umcd makes them (`store::random_token`): 64 lowercase hex digits. Tokens
/// from files (apply, import) must look the same: they are written into apt's auth.conf and
/// into the enrollment script.
pub fn valid_token(t: &str) -> bool {
    t.len() == 64
        && t.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/._+-@=,%~".contains(c)
}

/// A URL nodes reach umcd at: `http://` or `https://`, a host, no credentials, query or
/// fragment. Returned without a trailing `/`.
pub fn validate_url(url: &str) -> Result<String, ModelError> {
    let err = |why: &str| ModelError::InvalidUrl {
        url: url.to_string(),
        why: why.to_string(),
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| err("must start with http:// or https://"))?;
    if url.len() > 1024 {
        return Err(err("too long"));
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(err("has no host"));
    }
    if host.contains('@') {
        return Err(err("must not carry credentials (nodes get their own)"));
    }
    if let Some(c) = url
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "/:._-~%[]".contains(c)))
    {
        return Err(err(&format!("contains '{c}'")));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Longest file path a task may ship.
pub const MAX_PATH: usize = 4096;

/// An absolute, normalized path a task may ship: no `.`/`..`/empty components, no whitespace or
/// control characters, not the package documentation umc writes itself.
pub fn validate_file_path(task: &str, path: &str) -> Result<(), ModelError> {
    let err = |why: &str| ModelError::InvalidPath {
        task: task.to_string(),
        path: path.to_string(),
        why: why.to_string(),
    };
    let Some(rest) = path.strip_prefix('/') else {
        return Err(err("must be absolute"));
    };
    if path.len() > MAX_PATH {
        return Err(err("too long"));
    }
    if rest.is_empty() || path.ends_with('/') {
        return Err(err("must name a file"));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err("contains whitespace or control characters"));
    }
    for c in rest.split('/') {
        match c {
            "" => return Err(err("empty component ('//')")),
            "." | ".." => return Err(err("'.' and '..' are not allowed")),
            _ => {}
        }
    }
    // Maintainer scripts name these paths; keep them free of shell and glob syntax.
    if let Some(c) = rest.chars().find(|&c| !path_char(c)) {
        return Err(err(&format!(
            "contains '{c}'; paths may use letters, digits, '/' and . _ + - @ = , % ~"
        )));
    }
    if path.ends_with(DIVERTED_SUFFIX) || path.contains(".dpkg-") {
        return Err(err(
            "names a file dpkg or umc keep beside a configuration file (.umc-orig, .dpkg-*)",
        ));
    }
    if path.starts_with("/usr/share/doc/umc-") || path.starts_with("/DEBIAN/") {
        return Err(err("reserved for umc's own package files"));
    }
    if NODE_PATHS
        .iter()
        .any(|p| path == *p || (p.ends_with('/') && path.starts_with(p)))
    {
        return Err(err("reserved for the umc-node package"));
    }
    if path.starts_with("/usr/local/") {
        return Err(err(
            "/usr/local belongs to the local administrator; packages may not ship files there (Debian Policy 9.1.2)",
        ));
    }
    Ok(())
}

/// systemd unit names: `nginx`, `php8.2-fpm`, `getty@tty1.service`.
pub fn validate_service(name: &str) -> Result<(), ModelError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':' | '\\'));
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidService(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert_eq!(
            normalize_host("Grumpy.Company.COM.").as_deref(),
            Ok("grumpy.company.com")
        );
        for bad in ["", "a..b", "-a", "a-", "a_b", "a b", &"x".repeat(64)] {
            assert!(normalize_host(bad).is_err(), "{bad}");
        }
        let long = format!("{}.example.com", vec!["a".repeat(63); 3].join("."));
        let p = host_package(&long);
        assert!(p.len() <= MAX_PACKAGE_NAME);
        validate_package_name(&p).unwrap();
    }
}
