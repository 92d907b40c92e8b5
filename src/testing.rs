//! Helpers for the crate's unit tests: the sources that the source-scanning guards of
//! ARCHITECTURE.md's invariants read.

use std::path::{Path, PathBuf};

/// `src/` of this crate.
pub(crate) fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `path` (or `path` itself), recursively, sorted.
pub(crate) fn rust_files(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read_dir") {
            out.extend(rust_files(&entry.expect("entry").path()));
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
    out.sort();
    out
}

/// The code of source file `path` without its unit tests: the text before its
/// `#[cfg(test)] mod tests`, and nothing for a file that is a test module itself (`tests.rs`,
/// `*_fuzz.rs`). Other `#[cfg(test)]` items (hooks, `testing` helpers) count as code.
pub(crate) fn non_test_code(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == "tests.rs" || name.ends_with("_fuzz.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).expect("read source");
    match text.find("#[cfg(test)]\nmod tests") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// `path` relative to `src/`, for messages.
pub(crate) fn shown(path: &Path) -> String {
    path.strip_prefix(src())
        .unwrap_or(path)
        .display()
        .to_string()
}
