//! Everything umc-admin prints goes through here.
//!
//! - Text from umcd or a node (names, log and audit records, errors, reports) is escaped by
//!   [`clean`] before it reaches the terminal: a record holding `ESC ] 0;…` must not retitle
//!   or clear the operator's terminal, and a bidi override must not reorder what they read.
//!   [`outln!`](super::outln) and [`errln!`](super::errln) clean every line they print;
//!   [`one_line`] also escapes line breaks, for fields that must stay on their line (table
//!   cells, host names, audit commands).
//! - Data the user asked for byte for byte (`render`, `export`, the output of a fleet
//!   command) goes out unchanged when stdout is not a terminal (a pipe or a file), and
//!   cleaned when it is ([`data`]).
//! - A closed stdout (`umc-admin node list | head -1`) is not an error: the rest of the output
//!   is dropped and the command finishes as it would have (a fleet command still records its
//!   run), with its own exit code. Any other write error fails the command (exit 1).

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a terminal would act on `c` rather than show it: C0 controls (tab and newline only
/// when `keep_lines`), DEL, C1 controls (U+0080–U+009F, which some terminals take as 8-bit
/// CSI and OSC), bidi embeddings, overrides and isolates, and the Unicode line separators.
fn acts(c: char, keep_lines: bool) -> bool {
    match c {
        '\n' | '\t' => !keep_lines,
        '\u{061c}'
        | '\u{200e}'
        | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}' => true,
        '\u{2028}' | '\u{2029}' => true,
        c => c.is_control(),
    }
}

fn escape(s: &str, keep_lines: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| acts(c, keep_lines)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if acts(c, keep_lines) {
            // JSON's escape: valid inside `--json` strings, where it decodes to the same text.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` with every character a terminal would act on written as `\uXXXX`; newlines and tabs
/// stay. The one function every remote text passes through before it is printed.
pub fn clean(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// Like [`clean`], and newlines and tabs are escaped too: for a field that must not start a
/// line of its own (a forged `run …` line in `log`, a second row in a table).
pub fn one_line(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Data the user asked for: unchanged into a pipe or file, cleaned on a terminal.
pub fn data(s: &str) -> Cow<'_, str> {
    if std::io::stdout().is_terminal() {
        clean(s)
    } else {
        Cow::Borrowed(s)
    }
}

/// Like [`data`], for what goes to stderr (a fleet command's stderr lines).
pub fn data_err(s: &str) -> Cow<'_, str> {
    if std::io::stderr().is_terminal() {
        clean(s)
    } else {
        Cow::Borrowed(s)
    }
}

/// Set once stdout's reader has gone away: later output is dropped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// The first error writing stdout other than a closed pipe.
static STDOUT_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Writes `s` to stdout as it is; the caller has cleaned what came from elsewhere.
pub fn out_raw(s: &str) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(s.as_bytes()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe
            && let Ok(mut slot) = STDOUT_ERROR.lock()
        {
            slot.get_or_insert_with(|| e.to_string());
        }
    }
}

/// Writes `s` to stderr as it is; errors are ignored (there is nowhere left to report them).
pub fn err_raw(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(s.as_bytes());
    let _ = e.flush();
}

/// Flushes stdout; the error when any write to it failed other than by a closed pipe.
pub fn finish() -> Option<String> {
    if !STDOUT_CLOSED.load(Ordering::Relaxed)
        && let Err(e) = std::io::stdout().flush()
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Some(e.to_string());
    }
    STDOUT_ERROR.lock().ok().and_then(|mut e| e.take())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped() {
        assert_eq!(clean("plain\ttext\n"), "plain\ttext\n");
        assert!(matches!(clean("a.example.com"), Cow::Borrowed(_)));
        assert_eq!(
            clean("true\u{1b}]0;pwned\u{7}\u{1b}[2J"),
            "true\\u001b]0;pwned\\u0007\\u001b[2J"
        );
        assert_eq!(clean("\r\u{7f}\u{9b}31m"), "\\u000d\\u007f\\u009b31m");
        assert_eq!(clean("abc\u{202e}fed\u{2066}"), "abc\\u202efed\\u2066");
        assert_eq!(one_line("a\nb\tc"), "a\\u000ab\\u0009c");
        // Everything else, including other non-ASCII text, is left alone.
        assert_eq!(clean("Grüße, 日本"), "Grüße, 日本");
    }

    #[test]
    fn cleaned_json_is_the_same_json() {
        let v = serde_json::json!({ "command": "x\u{1b}[2J\u{9b}\u{202e}\u{7f}\n" });
        let text = serde_json::to_string_pretty(&v).expect("json");
        let cleaned = clean(&text);
        assert!(!cleaned.chars().any(|c| acts(c, true)), "{cleaned}");
        let back: serde_json::Value = serde_json::from_str(&cleaned).expect("still JSON");
        assert_eq!(back, v);
    }
}
