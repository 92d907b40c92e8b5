//! Signatures as apt judges them, with the real verifiers: gpgv (apt 2.6), sqv (apt 3.0), and
//! gpg for reading keyrings.

use std::path::Path;
use std::process::Command;

use super::show;

/// apt's `SplitClearSignedFile` (apt-pkg/contrib/gpgv.cc), mirrored: every line has `\r`/`\n`
/// and then trailing spaces and tabs removed; the armor headers end at the first empty line;
/// message lines are joined with `\n` and get no final newline, a leading `- ` is removed and
/// any other line starting with `-` except the signature start is an error; the signature
/// blocks are copied line by line, each with `\n`, and anything but a signature after them is
/// an error. Returns (signed content, signature blocks).
pub fn apt_split(clearsigned: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let text = std::str::from_utf8(clearsigned).map_err(|e| e.to_string())?;
    let mut lines = text.split_inclusive('\n').map(|l| {
        l.trim_end_matches(['\n', '\r'])
            .trim_end_matches([' ', '\t'])
    });
    if lines.next() != Some("-----BEGIN PGP SIGNED MESSAGE-----") {
        return Err("does not start with a signed message block".into());
    }
    loop {
        let line = lines.next().ok_or("eof in armor headers")?;
        if line.is_empty() {
            break;
        }
        if line.starts_with('-') {
            return Err("dash line in armor headers".into());
        }
    }
    let mut content = Vec::new();
    let mut signature = Vec::new();
    let mut first = true;
    loop {
        let line = lines.next().ok_or("eof in message")?;
        if line.starts_with('-') {
            if line == "-----BEGIN PGP SIGNATURE-----" {
                signature.extend_from_slice(line.as_bytes());
                signature.push(b'\n');
                break;
            } else if let Some(rest) = line.strip_prefix("- ") {
                if !first {
                    content.push(b'\n');
                }
                content.extend_from_slice(rest.as_bytes());
            } else {
                return Err(format!("unexpected dash line in message: {line:?}"));
            }
        } else {
            if !first {
                content.push(b'\n');
            }
            content.extend_from_slice(line.as_bytes());
        }
        first = false;
    }
    let mut open = true;
    for line in lines {
        if open {
            if line == "-----END PGP SIGNATURE-----" {
                open = false;
            } else if line.starts_with('-') {
                return Err(format!("unexpected dash line in signature: {line:?}"));
            }
        } else if line == "-----BEGIN PGP SIGNATURE-----" {
            open = true;
        } else {
            return Err(format!("unsigned line after signature: {line:?}"));
        }
        signature.extend_from_slice(line.as_bytes());
        signature.push(b'\n');
    }
    if open {
        return Err("signature not closed".into());
    }
    Ok((content, signature))
}

/// Whether gpgv accepts `inrelease` with `keyring` only, judged as apt judges it: at least one
/// good signature, none bad. (gpgv itself exits 2 when another signature's key is missing,
/// which apt tolerates: Debian's own InRelease files carry several signatures.) Works in `dir`.
pub fn gpgv_ok(keyring: &Path, inrelease: &[u8], dir: &Path) -> (bool, String) {
    let ir = dir.join("InRelease");
    std::fs::write(&ir, inrelease).expect("write InRelease");
    let out = Command::new("gpgv")
        .args(["--status-fd", "1", "--keyring"])
        .arg(keyring)
        .arg(&ir)
        .output()
        .expect("gpgv");
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    let good = status.lines().any(|l| l.starts_with("[GNUPG:] GOODSIG "));
    let bad = status
        .lines()
        .any(|l| l.starts_with("[GNUPG:] BADSIG ") || l.starts_with("[GNUPG:] EXPKEYSIG "));
    let code_ok = matches!(out.status.code(), Some(0) | Some(2));
    (good && !bad && code_ok, show(&out))
}

/// Whether sqv accepts `inrelease` with `keyring` only, split as apt splits it. Works in `dir`.
pub fn sqv_ok(keyring: &Path, inrelease: &[u8], dir: &Path) -> (bool, String) {
    let (content, signature) = match apt_split(inrelease) {
        Ok(parts) => parts,
        Err(e) => return (false, format!("apt would not split it: {e}")),
    };
    let (data, sig) = (dir.join("data"), dir.join("sig"));
    std::fs::write(&data, content).expect("write data");
    std::fs::write(&sig, signature).expect("write sig");
    let out = Command::new("sqv")
        .arg("--keyring")
        .arg(keyring)
        .arg(&sig)
        .arg(&data)
        .output()
        .expect("sqv");
    (out.status.success(), show(&out))
}

/// The primary keys' fingerprints in a keyring file, as gpg reads it, sorted.
pub fn keyring_fingerprints(path: &Path) -> Vec<String> {
    let home = tempfile::tempdir().expect("tempdir");
    let out = Command::new("gpg")
        .arg("--homedir")
        .arg(home.path())
        .args(["--batch", "--with-colons", "--show-keys"])
        .arg(path)
        .output()
        .expect("gpg");
    assert!(out.status.success(), "gpg --show-keys: {}", show(&out));
    let mut fprs = Vec::new();
    let mut primary = false;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split(':').collect();
        match f[0] {
            "pub" => primary = true,
            "sub" => primary = false,
            "fpr" if primary => {
                fprs.push(f[9].to_string());
                primary = false;
            }
            _ => {}
        }
    }
    fprs.sort();
    fprs
}
