//! Fuzzing, on stable, inside `cargo test`: every parser of untrusted input gets at least
//! 10,000 inputs per run and must not panic. Inputs are the committed seeds in
//! `tests/fuzz/seeds/` (a real-looking report, Packages stanzas, a Release, a fleet file...)
//! with a few structured edits each (see `fuzz/mutate.rs`), plus some random bytes. proptest
//! shrinks a failure to a minimal input and records its seed in `tests/fuzz/regressions/`,
//! which later runs replay first.
//!
//! Where a writer exists, the properties go further than "no panic": a fleet file written by
//! `to_toml` parses back to the same thing, a parsed SSH target prints and parses back to
//! itself, and generated Packages stanzas parse to what was generated.
//!
//! `AptPath` and Basic credentials are private to `http::apt`; their fuzz tests live there.
//! `UMC_FUZZ_CASES` raises (or lowers) the case count for a longer local run.

#[path = "../fuzz/mutate.rs"]
mod mutate;

use std::collections::BTreeMap;
use std::io::Write as _;

use mutate::{mutated, mutated_text};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

use umc::api::{NodeInfo, SshTarget};
use umc::catalog::{self, packages, release};
use umc::fleetfile::{
    self, ChangeForm, FileForm, Fleet, GenerationForm, Header, NodeForm, TaskForm,
};
use umc::model::{self, Model, TokenSource};
use umc::report;

/// umcd's clock in these tests: late 2025, after every time in the seeds.
const NOW: i64 = 1_764_700_000;

fn config() -> Config {
    let cases = std::env::var("UMC_FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(10_000);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/fuzz/regressions/fuzz.txt",
        ))),
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds and the tokens each format is made of

static REPORTS: &[&[u8]] = &[
    include_bytes!("../fuzz/seeds/report-ok.txt"),
    include_bytes!("../fuzz/seeds/report-failed.txt"),
];
static REPORT_TOKENS: &[&[u8]] = &[
    b"Format: umc-report/1\n",
    b"Started: ",
    b"Finished: ",
    b"Step: ",
    b"Installed: ",
    b"Held: ",
    b"Broken: ",
    b"Modified: ",
    b"Reboot-Required: ",
    b"Upgradable: ",
    b"Tail: ",
    b": ",
    b":",
    b"\n",
    b" ",
    b"\t",
    b"-",
    b"0",
    b"255",
    b"256",
    b"-1",
    b"1764700299",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"18446744073709551616",
    b"\r",
    b"\r\n",
    "\u{85}".as_bytes(),
    "\u{2028}".as_bytes(),
    b"\x1b[31m",
    b"\xff",
    "é".as_bytes(),
    b"yes",
    b"no",
];

static PACKAGES: &[&[u8]] = &[include_bytes!("../fuzz/seeds/Packages")];
static PACKAGES_TOKENS: &[&[u8]] = &[
    b"Package: ",
    b"Version: ",
    b"Provides: ",
    b"Description: ",
    b"Section: ",
    b"Priority: ",
    b"\n\n",
    b"\n ",
    b"\n\t",
    b"\n",
    b":",
    b", ",
    b",",
    b" (= ",
    b")",
    b"1:",
    b"~",
    b"\r\n",
    b" \n",
    b"\xff\xfe",
    b"\0",
    "é".as_bytes(),
    b"package",
    b"Package:",
];

static RELEASES: &[&[u8]] = &[include_bytes!("../fuzz/seeds/Release")];
static RELEASE_TOKENS: &[&[u8]] = &[
    b"SHA256:\n",
    b"MD5Sum:\n",
    b"Valid-Until: ",
    b"Suite: ",
    b"Codename: ",
    b" UTC",
    b" +0000",
    b" GMT",
    b"Sat, 16 Nov 2024 10:06:51",
    b"Fri, 31 Dec 9999 23:59:59 UTC",
    b"Thu, 01 Jan 1970 00:00:00 UTC",
    b"\n ",
    b" ",
    b"\t",
    b":",
    b"\n",
    b"18446744073709551616",
    b"-1",
    b"main/binary-amd64/Packages.xz",
    b"\xff",
];
static INRELEASE_TOKENS: &[&[u8]] = &[
    b"-----BEGIN PGP SIGNED MESSAGE-----\n",
    b"-----BEGIN PGP SIGNATURE-----\n",
    b"-----END PGP SIGNATURE-----\n",
    b"Hash: SHA512\n",
    b"Hash: MD5\n",
    b"- ",
    b"\n\n",
    b"=",
    b"A",
    b"/",
    b"\r\n",
    b"\n",
];

static FLEETS: &[&[u8]] = &[include_bytes!("../fuzz/seeds/fleet.toml")];
static FLEET_TOKENS: &[&[u8]] = &[
    b"\n[tasks.web]\n",
    b"\n[tasks.\"a b\".files.\"/etc/x\"]\n",
    b"\n[nodes.\"h.example.com\"]\n",
    b"\n[nodes.x.vars]\n",
    b"\n[[history]]\n",
    b"'''",
    b"'''\n",
    b"\"\"\"",
    b"\"",
    b"'",
    b" = ",
    b"\n",
    b"template = ",
    b"mode = \"07777\"",
    b"mode = \"99999999999999999999\"",
    b"mode = \"-1\"",
    b"ssh = \"root@[::1]:22\"",
    b"depends = [\"nginx (>= 1)\", \"a | b\"]",
    b"includes = [\"web\"]",
    b"tasks = [\"web\", \"web\"]",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b"generation = 18446744073709551615",
    b"time = -9223372036854775808",
    b"time = 9223372036854775807",
    b"format = 2",
    b"\\u0000",
    b"\\",
    b".",
    b"{{ ",
    b" }}",
    b"{% for x in vars %}",
    b"{% endfor %}",
    b"{% if %}",
    b"\r\n",
    b"\t",
    "\u{2028}".as_bytes(),
    b"\xff",
];
static FLEETS_JSON: &[&[u8]] = &[include_bytes!("../fuzz/seeds/fleet.json")];
static JSON_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"18446744073709551616",
    b"-1",
    b"1e400",
    b"\\u0000",
    b"\\ud800",
    b"\"format\": 1",
    b"\"generation\": 18446744073709551615",
    b"\"tasks\": {}",
    b"\"nodes\": {}",
];

static SSH_TARGETS: &[&[u8]] = &[include_bytes!("../fuzz/seeds/ssh-targets.txt")];
static SSH_TOKENS: &[&[u8]] = &[
    b"@", b":", b"[", b"]", b"65535", b"65536", b"0", b"::", b"-", b".", b" ", b"%", b"\n", b"*",
    b"?", b"[!a-c]", b"task:", b"all",
];

static RELATIONS: &[&[u8]] = &[include_bytes!("../fuzz/seeds/relations.txt")];
static RELATION_TOKENS: &[&[u8]] = &[
    b"(",
    b")",
    b">=",
    b"<=",
    b"<<",
    b">>",
    b"=",
    b"<",
    b">",
    b"|",
    b":any",
    b":amd64",
    b"[amd64]",
    b"<!nocheck>",
    b"${misc:Depends}",
    b",",
    b"1:",
    b"~",
    b"+",
    b" ",
    b"\n",
    b"\t",
    b"-",
    b".",
];

/// One line of a line-per-sample seed file, picked and mutated as a whole.
fn sample_line(input: &str, pick: usize) -> &str {
    let lines: Vec<&str> = input.split('\n').collect();
    lines[pick % lines.len()]
}

// ---------------------------------------------------------------------------------------------
// Node reports (POST /hosts/<h>/report, from every node)

/// What umcd does with a report it accepted: judge the host and show the verdict.
fn use_report(r: &report::Report) {
    let _ = r.failed_step();
    let _ = r.error_line();
    let t = report::Thresholds {
        stale_after: 3600,
        drift_after: 1800,
    };
    for now in [NOW, r.finished, i64::MAX / 2] {
        let v = report::judge(
            "umc-web1.example.com",
            "1.57",
            NOW - 100,
            Some((NOW, r)),
            None,
            now,
            t,
        );
        let _ = (v.state.as_str(), v.reason.len());
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn report_parse_never_panics(text in mutated_text(REPORTS, REPORT_TOKENS)) {
        if let Ok(r) = report::parse(&text, NOW) {
            prop_assert!(!r.steps.is_empty());
            prop_assert!(r.started <= r.finished && r.finished <= NOW + report::MAX_CLOCK_SKEW);
            use_report(&r);
            // Stored as sent and parsed again on every read: the same report.
            prop_assert_eq!(report::parse(&text, NOW), Ok(r));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Packages (catalog import: fetched after its hash matched a signed Release, or uploaded
// unverified by an admin)

fn parse_packages(bytes: &[u8]) -> Result<Vec<catalog::Package>, catalog::CatalogError> {
    let mut out = Vec::new();
    let r = packages::decoder("fuzz", bytes)?;
    packages::parse("fuzz", r, |p| out.push(p))?;
    Ok(out)
}

fn gz(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).expect("gz");
    e.finish().expect("gz")
}

fn xz(b: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 0);
    e.write_all(b).expect("xz");
    e.finish().expect("xz")
}

/// How a mutated Packages file reaches the parser: as it is, compressed whole, or compressed
/// and then damaged.
#[derive(Debug, Clone)]
enum Wrap {
    Plain,
    Gz,
    Xz,
    Damaged {
        xz: bool,
        at: usize,
        byte: u8,
        cut: usize,
    },
}

fn wrap() -> impl Strategy<Value = Wrap> {
    prop_oneof![
        12 => Just(Wrap::Plain),
        1 => Just(Wrap::Gz),
        1 => Just(Wrap::Xz),
        1 => (any::<bool>(), any::<usize>(), any::<u8>(), any::<usize>())
            .prop_map(|(xz, at, byte, cut)| Wrap::Damaged { xz, at, byte, cut }),
    ]
}

fn wrapped(w: &Wrap, plain: &[u8]) -> Vec<u8> {
    match w {
        Wrap::Plain => plain.to_vec(),
        Wrap::Gz => gz(plain),
        Wrap::Xz => xz(plain),
        Wrap::Damaged {
            xz: x,
            at,
            byte,
            cut,
        } => {
            let mut b = if *x { xz(plain) } else { gz(plain) };
            let n = b.len();
            b[at % n] = *byte;
            b.truncate(n - cut % (n / 2).max(1));
            b
        }
    }
}

/// A stanza the generator knows the meaning of.
#[derive(Debug, Clone)]
struct GenStanza {
    name: String,
    version: String,
    section: String,
    description: String,
    provides: Vec<String>,
    /// Extra fields the parser must skip, continuation lines included.
    noise: Vec<(String, Vec<String>)>,
}

fn gen_stanza() -> impl Strategy<Value = GenStanza> {
    (
        "[a-z0-9][a-z0-9+.-]{1,20}",
        "([0-9]:)?[0-9][A-Za-z0-9.+~]{0,8}(-[A-Za-z0-9.+~]{1,6})?",
        "[a-z/-]{0,12}",
        "[ -~]{0,60}",
        vec("[a-z0-9][a-z0-9+.-]{1,12}( \\(= [0-9.]{1,5}\\))?", 0..4),
        // Continuation lines have text: a line of only blanks ends the stanza.
        vec(
            ("[A-Z][A-Za-z-]{0,15}", vec("[ -~]{0,20}[!-~]", 0..3)),
            0..4,
        ),
    )
        .prop_map(
            |(name, version, section, description, provides, noise)| GenStanza {
                name,
                version,
                section,
                description: description.trim().to_string(),
                provides,
                noise,
            },
        )
}

fn render_stanza(s: &GenStanza) -> String {
    let mut t = format!("Package: {}\nVersion: {}\n", s.name, s.version);
    for (k, lines) in &s.noise {
        if [
            "Package",
            "Version",
            "Section",
            "Priority",
            "Description",
            "Provides",
        ]
        .iter()
        .any(|f| f.eq_ignore_ascii_case(k))
        {
            continue;
        }
        t.push_str(&format!("{k}: x\n"));
        for l in lines {
            t.push_str(&format!(" {}\n", l.trim_end()));
        }
    }
    t.push_str(&format!("Section: {}\n", s.section));
    if !s.provides.is_empty() {
        // One entry per continuation line too, as long Provides lists are written.
        t.push_str(&format!("Provides: {},\n", s.provides[0]));
        for p in &s.provides[1..] {
            t.push_str(&format!(" {p},\n"));
        }
    }
    t.push_str(&format!("Description: {}\n more text\n .\n", s.description));
    t
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn packages_parse_never_panics(
        plain in mutated(PACKAGES, PACKAGES_TOKENS),
        w in wrap(),
    ) {
        if let Ok(pkgs) = parse_packages(&wrapped(&w, &plain)) {
            for p in &pkgs {
                prop_assert!(model::validate_package_name(&p.name).is_ok(), "{:?}", p);
                prop_assert!(!p.version.is_empty());
                // What the catalog does next with each entry.
                for e in &p.provides {
                    let _ = catalog::provides_entry(e);
                }
            }
        }
    }

    #[test]
    fn generated_packages_parse_to_what_was_written(stanzas in vec(gen_stanza(), 1..6)) {
        let text: String = stanzas.iter().map(render_stanza).collect::<Vec<_>>().join("\n");
        let got = parse_packages(text.as_bytes());
        let got = got.map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(got.len(), stanzas.len());
        for (g, s) in got.iter().zip(&stanzas) {
            prop_assert_eq!(&g.name, &s.name);
            prop_assert_eq!(&g.version, &s.version);
            prop_assert_eq!(&g.section, &s.section);
            prop_assert_eq!(&g.description, &s.description);
            prop_assert_eq!(&g.provides, &s.provides);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Release and InRelease (catalog import, from the mirror)

fn use_release(r: &release::Release) {
    for now in [0, NOW, i64::MAX] {
        let _ = r.check_valid(now).map_err(|e| e.to_string());
    }
    for (c, a) in [("main", "amd64"), ("contrib", "all"), ("", "")] {
        let _ = r.index(c, a);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn release_parse_never_panics(body in mutated(RELEASES, RELEASE_TOKENS)) {
        if let Ok(r) = release::Release::parse(&body) {
            prop_assert!(!r.sha256.is_empty());
            use_release(&r);
        }
    }
}

/// A keyring and an InRelease it signed, made once (key generation is slow in debug builds).
fn signed() -> &'static (Vec<u8>, Vec<u8>) {
    static SIGNED: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    SIGNED.get_or_init(|| {
        let keys = umc::sign::SigningKeys::generate("fuzz <fuzz@example.invalid>").expect("key");
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        let signed = keys.clearsign(RELEASES[0], t).expect("clearsign");
        (keys.public_keyring_binary().expect("keyring"), signed)
    })
}

proptest! {
    // Each case checks a signature: fewer cases than the rest would still take the budget of
    // all the others, so this one keeps the 10,000 floor and no more.
    #![proptest_config(config())]

    #[test]
    fn inrelease_verify_never_panics(edits in vec(mutate_edit(), 0..6)) {
        let (keyring, signed) = signed();
        let seeds: &[&[u8]] = &[signed, RELEASES[0]];
        let input = mutate::apply(seeds, INRELEASE_TOKENS, 0, &edits);
        match release::verify(&input, keyring) {
            Ok(body) => {
                if let Ok(r) = release::Release::parse(&body) {
                    use_release(&r);
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

fn mutate_edit() -> impl Strategy<Value = mutate::Edit> {
    // Reuse the generic edits through a one-seed `mutated`: take its edit list shape by
    // generating positions and tokens directly.
    prop_oneof![
        (any::<usize>(), 1usize..16).prop_map(|(at, len)| mutate::Edit::Delete { at, len }),
        (any::<usize>(), any::<usize>()).prop_map(|(at, token)| mutate::Edit::Token { at, token }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| mutate::Edit::Flip { at, byte }),
        any::<usize>().prop_map(|line| mutate::Edit::DupLine { line }),
        any::<usize>().prop_map(|line| mutate::Edit::DropLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| mutate::Edit::SwapLines { a, b }),
        (any::<usize>(), any::<usize>(), any::<usize>(), 1usize..100).prop_map(
            |(at, seed, from, len)| mutate::Edit::Splice {
                at,
                seed,
                from,
                len
            }
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Fleet files (`umc-admin apply` and `import`: the whole model from a file)

struct FixedTokens;
impl TokenSource for FixedTokens {
    fn token(&mut self) -> String {
        "0123456789abcdef0123456789abcdef".to_string()
    }
}

/// What `apply` and `import` do with a parsed file, short of the store: build the model, diff
/// it against an empty one, replay the operations and validate; then write it back out.
fn use_fleet(fleet: &Fleet, lines: &fleetfile::Lines) -> Result<(), TestCaseError> {
    let Ok(model) = fleet.to_model(lines) else {
        return Ok(());
    };
    let _ = model.validate();
    let (ops, _) = fleetfile::diff_ops(&Model::default(), &model);
    let mut scratch = Model::default();
    for op in &ops {
        if scratch.apply(op, &mut FixedTokens).is_err() {
            break;
        }
    }
    let _ = scratch.validate();
    for p in fleet.to_model(lines).err().unwrap_or_default() {
        let _ = lines.for_message(&p.message);
    }
    // Export → parse → export is the identity (history and secrets included). A file without
    // tokens gives a model without them, which only `apply` takes (it makes new tokens); a
    // stored model always has them.
    let secrets = model.nodes.values().all(|n| !n.token.is_empty());
    let mut out = Fleet::from_model(&model, 7, 3, secrets);
    out.history = fleet.history.clone();
    let text = fleetfile::to_toml(&out);
    let (back, back_lines) = fleetfile::parse_toml(&text)
        .map_err(|p| TestCaseError::fail(format!("export does not parse: {p:?}\n{text}")))?;
    prop_assert_eq!(&back, &out, "{}", text);
    let again = back
        .to_model(&back_lines)
        .map_err(|p| TestCaseError::fail(format!("exported model invalid: {p:?}\n{text}")))?;
    let mut out2 = Fleet::from_model(&again, 7, 3, secrets);
    out2.history = back.history.clone();
    prop_assert_eq!(fleetfile::to_toml(&out2), text);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fleet_toml_never_panics_and_round_trips(text in mutated_text(FLEETS, FLEET_TOKENS)) {
        match fleetfile::parse_toml(&text) {
            Ok((fleet, lines)) => use_fleet(&fleet, &lines)?,
            Err(p) => {
                let _ = fleetfile::describe("fuzz.toml", &p);
            }
        }
    }

    #[test]
    fn fleet_json_never_panics(text in mutated_text(FLEETS_JSON, JSON_TOKENS)) {
        match fleetfile::parse_json(&text) {
            Ok((fleet, lines)) => use_fleet(&fleet, &lines)?,
            Err(p) => {
                let _ = fleetfile::describe("fuzz.json", &p);
            }
        }
    }
}

/// Any string at all, weighted towards what breaks writers: quotes, backslashes, newlines,
/// control characters, TOML's own delimiters.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._-]{0,12}",
        "[ -~]{0,24}",
        "(\\PC|\n|\r|\t|'|\"|\\\\|\u{0}|\u{7f}|\u{85}|\u{2028}|\u{feff}|'''|\"\"\"){0,24}",
        any::<String>(),
    ]
}

fn gen_fleet() -> impl Strategy<Value = Fleet> {
    let file = (
        nasty(),
        proptest::option::of(nasty()),
        proptest::option::of(nasty()),
        nasty(),
    )
        .prop_map(|(mode, reload, restart, template)| FileForm {
            mode,
            reload,
            restart,
            template,
        });
    let task = (
        nasty(),
        vec(nasty(), 0..3),
        vec(nasty(), 0..2),
        vec(nasty(), 0..2),
        vec(nasty(), 0..2),
        proptest::option::of(any::<u64>()),
        btree_map(nasty(), file, 0..3),
    )
        .prop_map(
            |(description, depends, removes, includes, dropped, generation, files)| TaskForm {
                description,
                depends,
                removes,
                includes,
                dropped,
                generation,
                files,
            },
        );
    let node = (
        vec(nasty(), 0..3),
        proptest::option::of(nasty()),
        proptest::option::of(nasty()),
        proptest::option::of(nasty()),
        proptest::option::of(nasty()),
        proptest::option::of(any::<u64>()),
        btree_map(nasty(), nasty(), 0..3),
        proptest::option::of((nasty(), any::<u64>())),
    )
        .prop_map(
            |(tasks, ssh, url, conffiles, token, generation, vars, previous)| NodeForm {
                tasks,
                ssh,
                url,
                conffiles,
                token,
                previous_token: previous.as_ref().map(|p| p.0.clone()),
                previous_token_until: previous.map(|p| p.1),
                generation,
                vars,
            },
        );
    let change =
        (nasty(), vec(nasty(), 0..2)).prop_map(|(text, entities)| ChangeForm { text, entities });
    let generation = (any::<u64>(), any::<i64>(), nasty(), vec(change, 0..3)).prop_map(
        |(generation, time, user, changes)| GenerationForm {
            generation,
            time,
            user,
            changes,
        },
    );
    (
        (
            any::<u32>(),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
        ),
        btree_map(nasty(), nasty(), 0..3),
        btree_map(nasty(), task, 0..3),
        btree_map(nasty(), node, 0..3),
        vec(generation, 0..3),
    )
        .prop_map(|((format, g, vg, sg), vars, tasks, nodes, history)| Fleet {
            umc: Header {
                format,
                generation: g,
                vars_generation: vg,
                server_generation: sg,
            },
            vars,
            tasks,
            nodes,
            history,
        })
}

proptest! {
    #![proptest_config(config())]

    /// The writer escapes whatever the model holds: any content at all parses back equal.
    #[test]
    fn any_fleet_written_as_toml_parses_back_equal(fleet in gen_fleet()) {
        let text = fleetfile::to_toml(&fleet);
        let (back, lines) = fleetfile::parse_toml(&text)
            .map_err(|p| TestCaseError::fail(format!("{p:?}\n{text}")))?;
        prop_assert_eq!(&back, &fleet, "{}", text);
        let _ = back.to_model(&lines);
    }
}

// ---------------------------------------------------------------------------------------------
// SSH targets (`node add --ssh`, fleet files) and fleet command targets

fn node(name: &str, tasks: &[&str], ssh: Option<SshTarget>) -> NodeInfo {
    NodeInfo {
        name: name.to_string(),
        package: model::host_package(name),
        version: "1.1".to_string(),
        vars: BTreeMap::new(),
        tasks: tasks.iter().map(|t| t.to_string()).collect(),
        task_closure: tasks.iter().map(|t| t.to_string()).collect(),
        ssh,
        url: None,
        conffiles: None,
        generation: 1,
        rotation: None,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ssh_target_parse_never_panics_and_round_trips(
        text in mutated_text(SSH_TARGETS, SSH_TOKENS),
        pick in any::<usize>(),
    ) {
        for input in [text.as_str(), sample_line(&text, pick)] {
            if let Ok(t) = SshTarget::parse(input) {
                prop_assert!(t.port != 0 && !t.user.is_empty() && !t.address.is_empty());
                let shown = t.to_string();
                prop_assert_eq!(SshTarget::parse(&shown).ok(), Some(t), "{}", shown);
            }
        }
    }

    #[test]
    fn fleet_targets_never_panic(
        text in mutated_text(SSH_TARGETS, SSH_TOKENS),
        user in proptest::option::of("[a-z]{1,8}"),
    ) {
        let nodes = vec![
            node("web1.example.com", &["web"], SshTarget::parse("deploy@10.0.4.17:2222").ok()),
            node("web2.example.com", &["web", "base"], None),
            node("db-1.internal", &["db"], SshTarget::parse("root@[2001:db8::17]:22").ok()),
        ];
        let targets: Vec<String> = text.split('\n').map(str::to_string).collect();
        if let Ok(hosts) = umc::ssh::target::resolve(&targets, &nodes, user.as_deref()) {
            prop_assert!(!hosts.is_empty());
        }
        for t in &targets {
            for n in &nodes {
                let _ = umc::ssh::target::glob_match(t, &n.name);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Relations (task depends/removes; Provides and catalog checks)

proptest! {
    #![proptest_config(config())]

    #[test]
    fn relation_parse_never_panics_and_is_stable(
        text in mutated_text(RELATIONS, RELATION_TOKENS),
        pick in any::<usize>(),
    ) {
        for input in [text.as_str(), sample_line(&text, pick)] {
            let terms = catalog::relation_terms(input);
            for t in &terms {
                let _ = t.constraint_text();
                for v in ["1.22.1-9", "1:5.2.1-2", "0", "~~", ""] {
                    if let Some(c) = &t.constraint {
                        let _ = catalog::satisfies(v, c);
                    }
                }
            }
            if let Ok(r) = model::parse_relation(input) {
                prop_assert!(!r.packages.is_empty());
                // What the model stores parses to itself.
                let again = model::parse_relation(&r.text)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {:?}", r.text)))?;
                prop_assert_eq!(&again.text, &r.text);
                prop_assert_eq!(&again.packages, &r.packages);
            }
        }
    }
}
