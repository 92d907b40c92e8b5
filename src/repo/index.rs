//! The `Packages` index.

use super::DebArtifact;

/// `Packages`: each deb's control file verbatim plus Filename, Size and SHA256.
pub fn packages_index<'a>(debs: impl IntoIterator<Item = (&'a str, &'a DebArtifact)>) -> Vec<u8> {
    let mut out = String::new();
    for (path, deb) in debs {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&deb.control);
        if !deb.control.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!(
            "Filename: {path}\nSize: {}\nSHA256: {}\n",
            deb.artifact.len(),
            deb.artifact.hex()
        ));
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Artifact;

    #[test]
    fn packages_render_exactly() {
        let deb = DebArtifact {
            artifact: Artifact::new(&b"deb"[..]),
            control: "Package: x\nVersion: 1.2\n".into(),
            mtime: 0,
        };
        let idx = packages_index([("pool/main/x/x/x_1.2_all.deb", &deb), ("pool/y", &deb)]);
        assert_eq!(
            String::from_utf8(idx).unwrap(),
            format!(
                "Package: x\nVersion: 1.2\nFilename: pool/main/x/x/x_1.2_all.deb\nSize: 3\nSHA256: {h}\n\n\
Package: x\nVersion: 1.2\nFilename: pool/y\nSize: 3\nSHA256: {h}\n",
                h = deb.artifact.hex()
            )
        );
    }
}
