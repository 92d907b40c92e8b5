//! The `Release` body.

use std::collections::BTreeMap;

use super::{Artifact, COMPONENT, LABEL, ORIGIN, SUITE};
use crate::time::release_date;

/// The Release body: the archive's fields, then each of `indexes` (the files of every
/// `main/binary-<arch>/` directory, by name) under each architecture, in the configuration's
/// order of architectures.
pub fn release_body(
    host: &str,
    date: i64,
    architectures: &[String],
    indexes: &BTreeMap<&str, Artifact>,
) -> Vec<u8> {
    let mut out = format!(
        "Origin: {ORIGIN}\nLabel: {LABEL}\nSuite: {SUITE}\nCodename: {SUITE}\nDate: {}\nArchitectures: {}\nComponents: {COMPONENT}\nDescription: umc configuration of {host}\nAcquire-By-Hash: yes\nSHA256:\n",
        release_date(date),
        architectures.join(" "),
    );
    for arch in architectures {
        for (name, a) in indexes {
            out.push_str(&format!(
                " {} {:>8} {COMPONENT}/binary-{arch}/{name}\n",
                a.hex(),
                a.len()
            ));
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_renders_exactly() {
        let a = Artifact::new(&b"Package: x\n"[..]);
        let indexes = BTreeMap::from([
            ("Packages.xz", a.clone()),
            ("Packages", a.clone()),
            ("Packages.gz", a.clone()),
        ]);
        let body = release_body("h.example.com", 1_700_000_070, &["amd64".into()], &indexes);
        let hex = a.hex();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            format!(
                "Origin: umc\nLabel: umc\nSuite: umc\nCodename: umc\nDate: Tue, 14 Nov 2023 22:14:30 UTC\n\
Architectures: amd64\nComponents: main\nDescription: umc configuration of h.example.com\n\
Acquire-By-Hash: yes\nSHA256:\n {hex}       11 main/binary-amd64/Packages\n \
{hex}       11 main/binary-amd64/Packages.gz\n {hex}       11 main/binary-amd64/Packages.xz\n"
            )
        );
    }
}
