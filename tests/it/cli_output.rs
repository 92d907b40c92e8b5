//! What umc-admin prints: remote text reaches the terminal without control sequences, and a
//! reader that goes away early (`| head -1`) ends the output quietly.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Server, UMC_ADMIN, show};

/// Bytes a terminal would act on: C0 controls other than newline and tab, DEL, and the
/// UTF-8 forms of C1 controls and bidi overrides.
fn controls(out: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(out);
    text.chars()
        .filter(|c| {
            (c.is_control() && *c != '\n' && *c != '\t')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .map(|c| format!("U+{:04X}", u32::from(c)))
        .collect()
}

const COMMAND: &str = "true\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[1;31mFAKE: admin ran rm -rf /\u{1b}[0m\u{9b}2J\u{202e}\nrun 99  forged line";
const SIGNAL: &str = "KILL\u{1b}[8m";

/// An audit record full of terminal controls, as an operator's client could send it. umcd
/// refuses such a record now, so it is written into the database directly while umcd is
/// stopped, as an older umcd stored it: the client must hold regardless of what the server
/// lets in.
fn hostile_audit(data: &std::path::Path) -> Server {
    let s = Server::start_in(data);
    s.admin_ok(&["node", "add", "a.example.com"]);
    s.admin_ok(&["node", "add", "b.example.com"]);
    let body = serde_json::json!({
        "targets": ["all\u{1b}[2J", "web"],
        "command": COMMAND,
        "results": [{
            "host": "a.example.com",
            "exit": null,
            "signal": SIGNAL,
            "duration_ms": 1,
            "error": null
        }, {
            "host": "b.example.com",
            "exit": null,
            "signal": null,
            "duration_ms": 2,
            "error": "connection refused\u{1b}]52;c;cHduZWQ=\u{7}"
        }]
    });
    let r = s.api("POST", "/api/v1/audit", Some(body.to_string().as_bytes()));
    if r.status / 100 == 2 {
        return s;
    }
    eprintln!(
        "umcd refused the audit record ({}): planting it in the database",
        r.status
    );
    let mut s = s;
    assert!(s.stop().success());
    {
        let store = umc::store::Store::open(&data.join("umc.redb")).expect("open store");
        let req: umc::api::AuditRequest = serde_json::from_value(body).expect("audit request");
        store
            .record_audit_unchecked("admin", &req, 1_700_000_000)
            .expect("record");
    }
    Server::start_in(data)
}

#[test]
fn remote_text_is_printed_without_terminal_controls() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = hostile_audit(&tmp.path().join("data"));
    for args in [
        &["log", "--audit"][..],
        &["log"][..],
        &["log", "--audit", "--host", "b.example.com"][..],
    ] {
        let out = s.admin(args);
        assert!(out.status.success(), "{args:?}: {}", show(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            controls(&out.stdout),
            Vec::<String>::new(),
            "{args:?}: {text:?}"
        );
        // Escaped, not dropped: the operator sees what was sent.
        assert!(text.contains("\\u001b]0;pwned\\u0007"), "{args:?}: {text}");
        // A newline inside a field does not forge a line of its own.
        assert!(
            !text.lines().any(|l| l.starts_with("run 99")),
            "{args:?}: {text}"
        );
    }
    // --json stays JSON that decodes to exactly what was recorded.
    let out = s.admin(&["log", "--audit", "--json"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(controls(&out.stdout), Vec::<String>::new());
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(runs[0]["command"], COMMAND);
    assert_eq!(runs[0]["results"][0]["signal"], SIGNAL);
    // An error that echoes the user's input reaches stderr cleaned too.
    let out = s.admin(&["node", "show", "x\u{1b}[2Jy"]);
    assert!(!out.status.success());
    assert_eq!(
        controls(&out.stderr),
        Vec::<String>::new(),
        "{}",
        show(&out)
    );
}

/// `umc-admin … | head -1`: the reader closes after one line; no panic, no message, and the
/// command's own exit code.
#[test]
fn a_closed_stdout_ends_output_quietly() {
    let s = Server::start();
    // Enough output to overflow a pipe's buffer, so the later writes meet the closed pipe.
    let ops: Vec<serde_json::Value> = (0..3000)
        .map(|i| serde_json::json!({"op": "node_add", "host": format!("node{i:05}.example.com")}))
        .collect();
    let body = serde_json::json!({ "ops": ops }).to_string();
    let r = s.api("POST", "/api/v1/edit", Some(body.as_bytes()));
    assert_eq!(r.status, 200, "{}", r.text());
    for (args, code) in [
        (&["node", "list"][..], Some(0)),
        (&["export"][..], Some(0)),
        (&["node", "list", "--json"][..], Some(0)),
        // Hosts that never reported: status says so with its own exit code.
        (&["status"][..], None),
    ] {
        let mut child = Command::new(UMC_ADMIN)
            .args(args)
            .env("UMC_URL", &s.url)
            .env("UMC_TOKEN", s.token())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn umc-admin");
        let mut first = String::new();
        {
            let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
            stdout.read_line(&mut first).expect("read a line");
        }
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!first.is_empty(), "{args:?}: no output");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            !err.to_lowercase().contains("broken pipe"),
            "{args:?}: {err}"
        );
        if let Some(code) = code {
            assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        }
    }
}

/// Every print in `src/cli` goes through `cli::term` (the invariant the two tests above rely
/// on): a plain `println!` would bypass both the escaping and the closed-pipe handling.
#[test]
fn cli_prints_only_through_term() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli");
    let mut bad = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("src/cli") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if ["println!", "print!(", "eprintln!", "eprint!("]
                .iter()
                .any(|m| code.contains(m))
            {
                bad.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "use outln!/errln! instead:\n{}",
        bad.join("\n")
    );
}
