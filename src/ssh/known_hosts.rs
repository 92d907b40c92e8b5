//! Host-key policy: a key is trusted only when a known-hosts file has it. Files are the user's
//! `~/.ssh/known_hosts` (read only) and umc-admin's own (`$UMC_KNOWN_HOSTS`, else
//! `~/.config/umc/known_hosts`), which `--accept-new` appends to. A changed key is always
//! refused; an unknown key is refused unless `--accept-new`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use russh::keys::known_hosts::check_known_hosts_path;
use russh::keys::{HashAlg, PublicKey};

use super::SshError;

pub struct HostKeys {
    /// Read-only files (the user's OpenSSH known_hosts).
    read_only: Vec<PathBuf>,
    /// umc-admin's own file: read, and appended to with `accept_new`.
    own: PathBuf,
    accept_new: bool,
    /// Serializes appends to `own` from parallel connections.
    learn: Mutex<()>,
}

/// What the check concluded about a key that is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Known,
    /// Unknown before, recorded now (`--accept-new`).
    Learned,
}

impl HostKeys {
    pub fn new(read_only: Vec<PathBuf>, own: PathBuf, accept_new: bool) -> HostKeys {
        HostKeys {
            read_only,
            own,
            accept_new,
            learn: Mutex::new(()),
        }
    }

    /// `$UMC_KNOWN_HOSTS`, else `$HOME/.config/umc/known_hosts`; and `$HOME/.ssh/known_hosts`.
    pub fn default_paths() -> Result<(Vec<PathBuf>, PathBuf), SshError> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let own = match std::env::var_os("UMC_KNOWN_HOSTS") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => home
                .as_ref()
                .map(|h| h.join(".config/umc/known_hosts"))
                .ok_or(SshError::NoHome)?,
        };
        let user = home
            .map(|h| vec![h.join(".ssh/known_hosts")])
            .unwrap_or_default();
        Ok((user, own))
    }

    pub fn own_file(&self) -> &Path {
        &self.own
    }

    /// Checks `key` for `address:port` (`[address]:port` in the files when the port is not 22).
    pub fn check(&self, address: &str, port: u16, key: &PublicKey) -> Result<Verdict, SshError> {
        let shown = if port == 22 {
            address.to_string()
        } else {
            format!("[{address}]:{port}")
        };
        let _guard = self.learn.lock().unwrap_or_else(|e| e.into_inner());
        let mut known = false;
        for file in self.read_only.iter().chain(std::iter::once(&self.own)) {
            match check_known_hosts_path(address, port, key, file) {
                Ok(true) => known = true,
                Ok(false) => {}
                Err(russh::keys::Error::KeyChanged { line }) => {
                    return Err(SshError::HostKeyChanged {
                        host: shown,
                        file: file.clone(),
                        line: file_line(file, line),
                        fingerprint: fingerprint(key),
                    });
                }
                Err(e) => {
                    return Err(SshError::KnownHostsFile {
                        file: file.clone(),
                        detail: e.to_string(),
                    });
                }
            }
        }
        if known {
            return Ok(Verdict::Known);
        }
        if !self.accept_new {
            return Err(SshError::HostKeyUnknown {
                host: shown,
                fingerprint: fingerprint(key),
            });
        }
        self.append(&shown, key)
            .map_err(|detail| SshError::KnownHostsFile {
                file: self.own.clone(),
                detail,
            })?;
        Ok(Verdict::Learned)
    }

    /// Appends `host key` to umc-admin's own file, creating it and its directory. (russh's
    /// `learn_known_hosts_path` starts a new file with an empty line.)
    fn append(&self, host: &str, key: &PublicKey) -> Result<(), String> {
        use std::io::Write as _;
        if let Some(dir) = self.own.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let line = format!("{host} {}\n", key.to_openssh().map_err(|e| e.to_string())?);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.own)
            .map_err(|e| e.to_string())?;
        let len = f.metadata().map_err(|e| e.to_string())?.len();
        let needs_newline = len > 0 && {
            let text = std::fs::read(&self.own).map_err(|e| e.to_string())?;
            text.last() != Some(&b'\n')
        };
        let line = if needs_newline {
            format!("\n{line}")
        } else {
            line
        };
        f.write_all(line.as_bytes()).map_err(|e| e.to_string())
    }
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// russh numbers the non-comment lines of a known-hosts file; this gives the real line number.
fn file_line(file: &Path, nth: usize) -> usize {
    let Ok(text) = std::fs::read_to_string(file) else {
        return nth;
    };
    let mut seen = 0;
    for (i, l) in text.lines().enumerate() {
        if !l.starts_with('#') {
            seen += 1;
            if seen == nth {
                return i + 1;
            }
        }
    }
    nth
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_unknown_and_learned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ",
        )
        .expect("key a");
        let b = PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G2sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X",
        )
        .expect("key b");
        let user = dir.path().join("user_known_hosts");
        let own = dir.path().join("umc/known_hosts");
        std::fs::write(
            &user,
            format!(
                "# a comment\n\n[127.0.0.1]:2200 {}\n",
                a.to_openssh().expect("openssh")
            ),
        )
        .expect("write");
        let strict = HostKeys::new(vec![user.clone()], own.clone(), false);
        assert_eq!(
            strict.check("127.0.0.1", 2200, &a).expect("known"),
            Verdict::Known
        );
        match strict.check("127.0.0.1", 2200, &b) {
            Err(SshError::HostKeyChanged { host, line, .. }) => {
                assert_eq!((host.as_str(), line), ("[127.0.0.1]:2200", 3));
            }
            other => panic!("expected a changed key, got {other:?}"),
        }
        assert!(matches!(
            strict.check("127.0.0.1", 2201, &b),
            Err(SshError::HostKeyUnknown { .. })
        ));
        let learning = HostKeys::new(vec![user], own.clone(), true);
        assert_eq!(
            learning.check("127.0.0.1", 2201, &b).expect("learn"),
            Verdict::Learned
        );
        assert_eq!(
            learning.check("127.0.0.1", 2201, &b).expect("known"),
            Verdict::Known
        );
        let text = std::fs::read_to_string(&own).expect("own file");
        assert!(text.starts_with("[127.0.0.1]:2201 ssh-ed25519 "), "{text}");
    }
}
