//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::Path;

/// Whether an executable called `name` is on `PATH`.
fn on_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        let candidate = dir.join(name);
        Path::new(&candidate)
            .metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Returns false (and prints why) when the tool is missing locally; panics when the CI env var is set.
pub fn require_tool(name: &str) -> bool {
    if on_path(name) {
        return true;
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("required tool `{name}` is not installed (CI is set, so this is an error)");
    }
    eprintln!("skipping: tool `{name}` is not installed");
    false
}
