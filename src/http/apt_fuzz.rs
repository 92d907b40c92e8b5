//! Fuzz tests of the two parsers in `http::apt` that see every node's (and every stranger's)
//! request before authentication: the request path (`AptPath`) and the Basic credentials. Like
//! `tests/it/fuzz.rs`: at least 10,000 cases each, inputs built from the seeds in
//! `tests/fuzz/seeds/`, failures recorded in `tests/fuzz/regressions/`.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config;

use super::{AptPath, basic_credentials, parse};

fn config() -> Config {
    crate::http::fuzz_config("UMC_FUZZ_CASES", 10_000, "tests/fuzz/regressions/apt.txt")
}

const PATHS: &str = include_str!("../../tests/fuzz/seeds/apt-paths.txt");
const BASIC: &str = include_str!("../../tests/fuzz/seeds/basic-auth.txt");

/// Path pieces apt, a proxy or an attacker may send.
const SEGMENTS: &[&str] = &[
    "dists",
    "umc",
    "main",
    "binary-amd64",
    "binary-",
    "Packages",
    "Packages.gz",
    "Packages.xz",
    "by-hash",
    "SHA256",
    "InRelease",
    "Release",
    "Release.gpg",
    "pool",
    "bootstrap",
    ".",
    "..",
    "",
    "%2e%2e",
    "%2F",
    "\0",
    "é",
    "binary-../..",
    "umc-x_1.2_all.deb",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF",
];

/// A seed path with segments replaced, inserted or dropped, and random characters mixed in.
fn apt_path() -> impl Strategy<Value = String> {
    let seeds: Vec<&'static str> = PATHS.lines().collect();
    let n = seeds.len();
    (
        0..n,
        vec((any::<usize>(), any::<usize>(), 0u8..4), 0..5),
        vec(any::<char>(), 0..3),
        any::<usize>(),
    )
        .prop_map(move |(seed, edits, chars, at)| {
            let mut parts: Vec<String> = seeds[seed].split('/').map(str::to_string).collect();
            for (pos, seg, kind) in edits {
                let pos = pos % (parts.len() + 1);
                let seg = SEGMENTS[seg % SEGMENTS.len()].to_string();
                match kind {
                    0 if pos < parts.len() => parts[pos] = seg,
                    1 if pos < parts.len() => {
                        parts.remove(pos);
                    }
                    _ => parts.insert(pos, seg),
                }
            }
            let mut s = parts.join("/");
            let start = at % (s.chars().count() + 1);
            for (at, c) in (start..).zip(chars) {
                let byte = s.char_indices().nth(at).map_or(s.len(), |(i, _)| i);
                s.insert(byte, c);
            }
            s
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn apt_path_parse_never_panics(rest in prop_oneof![9 => apt_path(), 1 => any::<String>()]) {
        match parse(&rest) {
            Some(AptPath::Index { arch, .. }) => prop_assert!(!arch.contains('/')),
            Some(AptPath::ByHash { arch, sha256 }) => {
                prop_assert!(!arch.contains('/'));
                prop_assert!(sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()));
                prop_assert_eq!(sha256.to_ascii_lowercase(), sha256);
            }
            Some(AptPath::Pool(p)) => {
                // Normalized: no empty or `.` segments, and under pool/.
                prop_assert!(p.starts_with("pool"));
                prop_assert!(p.split('/').all(|s| !s.is_empty() && s != "."), "{}", p);
            }
            _ => {}
        }
    }

    #[test]
    fn basic_credentials_never_panic(
        seed in 0..BASIC.lines().count(),
        raw in vec(any::<u8>(), 0..64),
        how in 0u8..4,
        cut in any::<usize>(),
    ) {
        let seed = BASIC.lines().nth(seed).unwrap_or_default();
        let value: Vec<u8> = match how {
            // The seed header, cut short.
            0 => seed.as_bytes()[..cut % (seed.len() + 1)].to_vec(),
            // A scheme and base64 of any bytes (no ':', invalid UTF-8, NULs...).
            1 => format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(&raw))
                .into_bytes(),
            // A seed with raw bytes appended.
            2 => [seed.as_bytes(), &raw].concat(),
            _ => raw.clone(),
        };
        let Ok(v) = HeaderValue::from_bytes(&value) else {
            return Ok(());
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, v);
        if let Some((user, _)) = basic_credentials(&headers) {
            prop_assert!(!user.contains(':'));
        }
    }

    /// What apt sends (user and token, base64) comes back exactly, for any user without ':'.
    #[test]
    fn basic_credentials_round_trip(user in "[^:]{0,40}", password in ".{0,80}") {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {b64}")).expect("header"),
        );
        prop_assert_eq!(basic_credentials(&headers), Some((user, password)));
    }
}
