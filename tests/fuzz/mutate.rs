//! Structured mutation for the fuzz tests: start from a committed seed (a real-looking input),
//! apply a few edits that respect its shape (whole lines duplicated, swapped or dropped; tokens
//! of the format inserted; bytes flipped; chunks of another seed spliced in). Each edit is plain
//! data, so proptest shrinks a failure to the fewest, smallest edits.

use proptest::collection::vec;
use proptest::prelude::*;

#[derive(Debug, Clone)]
pub enum Edit {
    /// Delete `len` bytes at `at`.
    Delete {
        at: usize,
        len: usize,
    },
    /// Insert a token of the format's dictionary.
    Token {
        at: usize,
        token: usize,
    },
    /// Insert raw bytes.
    Bytes {
        at: usize,
        bytes: Vec<u8>,
    },
    /// Overwrite one byte.
    Flip {
        at: usize,
        byte: u8,
    },
    DupLine {
        line: usize,
    },
    DropLine {
        line: usize,
    },
    SwapLines {
        a: usize,
        b: usize,
    },
    /// Repeat `len` bytes at `at`, `times` times (long lines, many fields).
    Repeat {
        at: usize,
        len: usize,
        times: usize,
    },
    Truncate {
        at: usize,
    },
    /// Insert a chunk of another seed.
    Splice {
        at: usize,
        seed: usize,
        from: usize,
        len: usize,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    prop_oneof![
        3 => (at, 1usize..32).prop_map(|(at, len)| Edit::Delete { at, len }),
        6 => (at, any::<usize>()).prop_map(|(at, token)| Edit::Token { at, token }),
        2 => (at, vec(any::<u8>(), 1..8)).prop_map(|(at, bytes)| Edit::Bytes { at, bytes }),
        2 => (at, any::<u8>()).prop_map(|(at, byte)| Edit::Flip { at, byte }),
        2 => any::<usize>().prop_map(|line| Edit::DupLine { line }),
        2 => any::<usize>().prop_map(|line| Edit::DropLine { line }),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines { a, b }),
        1 => (at, 1usize..64, 1usize..200).prop_map(|(at, len, times)| Edit::Repeat {
            at,
            len,
            times
        }),
        1 => at.prop_map(|at| Edit::Truncate { at }),
        1 => (at, any::<usize>(), any::<usize>(), 1usize..200).prop_map(|(at, seed, from, len)| {
            Edit::Splice {
                at,
                seed,
                from,
                len,
            }
        }),
    ]
}

/// Lines of `b`, each with its `\n` (the last one maybe without).
fn lines(b: &[u8]) -> Vec<Vec<u8>> {
    b.split_inclusive(|&c| c == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

pub fn apply(seeds: &[&[u8]], dict: &[&[u8]], seed: usize, edits: &[Edit]) -> Vec<u8> {
    let mut b = seeds[seed % seeds.len()].to_vec();
    for e in edits {
        let pos = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
        match e {
            Edit::Delete { at, len } => {
                let start = pos(*at, b.len());
                let end = (start + len).min(b.len());
                b.drain(start..end);
            }
            Edit::Token { at, token } => {
                let at = pos(*at, b.len());
                let t = dict[token % dict.len()];
                b.splice(at..at, t.iter().copied());
            }
            Edit::Bytes { at, bytes } => {
                let at = pos(*at, b.len());
                b.splice(at..at, bytes.iter().copied());
            }
            Edit::Flip { at, byte } => {
                if !b.is_empty() {
                    let at = at % b.len();
                    b[at] = *byte;
                }
            }
            Edit::DupLine { line } => {
                let mut l = lines(&b);
                if !l.is_empty() {
                    let i = line % l.len();
                    let copy = l[i].clone();
                    l.insert(i, copy);
                    b = l.concat();
                }
            }
            Edit::DropLine { line } => {
                let mut l = lines(&b);
                if !l.is_empty() {
                    l.remove(line % l.len());
                    b = l.concat();
                }
            }
            Edit::SwapLines { a, b: other } => {
                let mut l = lines(&b);
                if !l.is_empty() {
                    let n = l.len();
                    l.swap(a % n, other % n);
                    b = l.concat();
                }
            }
            Edit::Repeat { at, len, times } => {
                let start = pos(*at, b.len());
                let end = (start + len).min(b.len());
                let chunk = b[start..end].to_vec();
                let rep: Vec<u8> = chunk.repeat(*times);
                b.splice(end..end, rep);
            }
            Edit::Truncate { at } => {
                let at = pos(*at, b.len());
                b.truncate(at);
            }
            Edit::Splice {
                at,
                seed,
                from,
                len,
            } => {
                let other = seeds[seed % seeds.len()];
                let start = pos(*from, other.len());
                let end = (start + len).min(other.len());
                let at = pos(*at, b.len());
                b.splice(at..at, other[start..end].iter().copied());
            }
        }
    }
    b
}

/// Inputs for a parser: mostly a seed with up to 8 edits, sometimes a seed as it is, sometimes
/// random bytes.
pub fn mutated(
    seeds: &'static [&'static [u8]],
    dict: &'static [&'static [u8]],
) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => (0..seeds.len()).prop_map(move |s| seeds[s].to_vec()),
        16 => (0..seeds.len(), vec(edit(), 1..8))
            .prop_map(move |(s, edits)| apply(seeds, dict, s, &edits)),
        1 => vec(any::<u8>(), 0..200),
    ]
}

/// The same as text: valid UTF-8 as it is, else with U+FFFD for each bad sequence (what a
/// parser that takes `&str` can be given at all).
pub fn mutated_text(
    seeds: &'static [&'static [u8]],
    dict: &'static [&'static [u8]],
) -> impl Strategy<Value = String> {
    mutated(seeds, dict).prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}
