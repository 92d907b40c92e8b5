//! The `Release` body and the dates Debian archives write.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Artifact, COMPONENT, LABEL, ORIGIN, SUITE};

pub use crate::deb::LAST_DATE;

/// `unix` as a `SystemTime` clamped to 1970..=9999, the range RFC 1123 dates (and `httpdate`,
/// which panics beyond it) can write. Stored times are checked on the way in; this keeps every
/// date written from a stored time total even so.
pub fn date_time(unix: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix.clamp(0, LAST_DATE) as u64)
}

/// RFC 1123 date as Debian archives write it (`Sat, 09 Nov 2024 10:00:00 UTC`).
pub fn release_date(unix: i64) -> String {
    httpdate::fmt_http_date(date_time(unix)).replace("GMT", "UTC")
}

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
    fn dates_are_total() {
        // httpdate panics past the year 9999; a stored time out there must print, not panic
        // (review finding 9: `umc-admin log` exited 101 on an imported far-future time).
        assert_eq!(release_date(i64::MAX), "Fri, 31 Dec 9999 23:59:59 UTC");
        assert_eq!(release_date(400_000_000_000), release_date(LAST_DATE));
        assert_eq!(release_date(i64::MIN), "Thu, 01 Jan 1970 00:00:00 UTC");
        assert_eq!(release_date(1), "Thu, 01 Jan 1970 00:00:01 UTC");
    }

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
