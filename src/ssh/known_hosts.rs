//! Host-key policy: a key is trusted only when a known-hosts file has it. Files are the user's
//! `~/.ssh/known_hosts` (read only) and umc-admin's own (`$UMC_KNOWN_HOSTS`, else
//! `~/.config/umc/known_hosts`), which `--accept-new` appends to. A changed key is always
//! refused; an unknown key is refused unless `--accept-new`. As in OpenSSH, a host whose files
//! record only keys of other types has *changed*, not become unknown.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use russh::keys::known_hosts::known_host_keys_path;
use russh::keys::{Algorithm, HashAlg, PublicKey};

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

/// One key a known-hosts file records for a host.
struct Recorded {
    file: PathBuf,
    /// russh's count: lines that are not comments.
    line: usize,
    key: PublicKey,
}

/// Whether a recorded key's algorithm and a negotiable host-key algorithm are one key type
/// (an RSA key serves `rsa-sha2-512`, `rsa-sha2-256` and `ssh-rsa`).
fn same_type(key: &Algorithm, negotiated: &Algorithm) -> bool {
    key == negotiated || (key.clone().is_rsa() && negotiated.clone().is_rsa())
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

    /// Every key the files record for `address:port`, in file order.
    fn recorded(&self, address: &str, port: u16) -> Result<Vec<Recorded>, SshError> {
        let mut out = Vec::new();
        for file in self.read_only.iter().chain(std::iter::once(&self.own)) {
            let keys = known_host_keys_path(address, port, file).map_err(|e| {
                SshError::KnownHostsFile {
                    file: file.clone(),
                    detail: e.to_string(),
                }
            })?;
            out.extend(keys.into_iter().map(|(line, key)| Recorded {
                file: file.clone(),
                line,
                key,
            }));
        }
        Ok(out)
    }

    /// The host-key algorithms to offer when connecting to `address:port`: `default`, with
    /// those of the key types the files record for the host first. As OpenSSH does, this makes
    /// a server that has several host keys show the one we know, so that a key of another type
    /// means a changed host and not just another of its keys.
    pub fn preferred_algorithms(
        &self,
        address: &str,
        port: u16,
        default: &[Algorithm],
    ) -> Vec<Algorithm> {
        let known: Vec<Algorithm> = self
            .recorded(address, port)
            .map(|r| r.into_iter().map(|r| r.key.algorithm()).collect())
            .unwrap_or_default();
        let (mut first, rest): (Vec<Algorithm>, Vec<Algorithm>) = default
            .iter()
            .cloned()
            .partition(|a| known.iter().any(|k| same_type(k, a)));
        first.extend(rest);
        first
    }

    /// Checks `key` for `address:port` (`[address]:port` in the files when the port is not 22).
    ///
    /// As OpenSSH: the key is known when any file records it for the host. When the files
    /// record other keys for the host and not this one, of its type or of another, the host
    /// key changed: refused, also with `--accept-new`. Only a host with no recorded key at all
    /// is unknown.
    pub fn check(&self, address: &str, port: u16, key: &PublicKey) -> Result<Verdict, SshError> {
        let shown = if port == 22 {
            address.to_string()
        } else {
            format!("[{address}]:{port}")
        };
        let _guard = self.learn.lock().unwrap_or_else(|e| e.into_inner());
        let recorded = self.recorded(address, port)?;
        if recorded.iter().any(|r| r.key.key_data() == key.key_data()) {
            return Ok(Verdict::Known);
        }
        // Name a recorded key of the offered type when there is one, else the first.
        let algorithm = key.algorithm();
        if let Some(r) = recorded
            .iter()
            .find(|r| r.key.algorithm() == algorithm)
            .or(recorded.first())
        {
            return Err(SshError::HostKeyChanged {
                host: shown,
                file: r.file.clone(),
                line: file_line(&r.file, r.line),
                offered: format!("{} key {}", algorithm.as_str(), fingerprint(key)),
                recorded: r.key.algorithm().as_str().to_string(),
            });
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

    /// Security review #7: a host known by an ed25519 key that offers an ECDSA key has changed;
    /// `--accept-new` must not record the new key.
    #[test]
    fn a_key_of_another_type_is_changed_not_unknown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ed = PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ",
        )
        .expect("ed25519 key");
        let ec = PublicKey::from_openssh(
            "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNEBwS2X49LWeXM1/BBtpSco4AWO0lsQpg2nAlsKUjq433PVwFh7Iy7/Od2VzE2o4wuJ1NOslI5NptmUUObnL0k=",
        )
        .expect("ecdsa key");
        let own = dir.path().join("known_hosts");
        let text = format!(
            "# c\n[127.0.0.1]:2200 {}\n",
            ed.to_openssh().expect("openssh")
        );
        std::fs::write(&own, &text).expect("write");
        for accept_new in [false, true] {
            let keys = HostKeys::new(Vec::new(), own.clone(), accept_new);
            match keys.check("127.0.0.1", 2200, &ec) {
                Err(e @ SshError::HostKeyChanged { .. }) => {
                    let msg = e.to_string();
                    assert!(
                        msg.starts_with("HOST KEY CHANGED for [127.0.0.1]:2200: it offers ecdsa-sha2-nistp256 key SHA256:"),
                        "{msg}"
                    );
                    assert!(
                        msg.contains("differs from the ssh-ed25519 key at "),
                        "{msg}"
                    );
                    assert!(msg.contains("known_hosts:2;"), "{msg}");
                }
                other => panic!("accept_new {accept_new}: expected a changed key, got {other:?}"),
            }
            assert_eq!(std::fs::read_to_string(&own).expect("read"), text);
        }
        // Another port of the same address is another host: unknown, and learned.
        let keys = HostKeys::new(Vec::new(), own.clone(), true);
        assert_eq!(
            keys.check("127.0.0.1", 2201, &ec).expect("learn"),
            Verdict::Learned
        );
        // A host may have keys of several types on record (OpenSSH's UpdateHostKeys): any
        // of them is known.
        std::fs::write(
            &own,
            format!(
                "{text}[127.0.0.1]:2200 {}\n",
                ec.to_openssh().expect("openssh")
            ),
        )
        .expect("write");
        let strict = HostKeys::new(Vec::new(), own.clone(), false);
        assert_eq!(
            strict.check("127.0.0.1", 2200, &ec).expect("known"),
            Verdict::Known
        );
        assert_eq!(
            strict.check("127.0.0.1", 2200, &ed).expect("known"),
            Verdict::Known
        );
    }

    #[test]
    fn recorded_key_types_are_asked_for_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let own = dir.path().join("known_hosts");
        let default = russh::Preferred::DEFAULT.key.to_vec();
        let keys = HostKeys::new(Vec::new(), own.clone(), false);
        assert_eq!(
            keys.preferred_algorithms("127.0.0.1", 2200, &default),
            default
        );
        std::fs::write(
            &own,
            "[127.0.0.1]:2200 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7\n",
        )
        .expect("write");
        // An unparsable recorded key changes nothing here; check() reports it.
        assert_eq!(
            keys.preferred_algorithms("127.0.0.1", 2200, &default),
            default
        );
        std::fs::write(&own, format!("[127.0.0.1]:2200 {RSA}\n")).expect("write");
        let got = keys.preferred_algorithms("127.0.0.1", 2200, &default);
        assert_eq!(got.len(), default.len());
        assert!(got[..3].iter().all(|a| a.clone().is_rsa()), "{got:?}");
        assert_eq!(got[3], Algorithm::Ed25519);
        assert_eq!(
            keys.preferred_algorithms("127.0.0.1", 22, &default),
            default
        );
    }

    const RSA: &str = concat!(
        "ssh-rsa ",
        "AAAAB3NzaC1yc2EAAAADAQABAAABAQDK3/LmqdmbrXR2G72EwTq+zHOAItSk26x2tYB7W3LJ",
        "o1JWwnIi3UsNZEcQNH4Y0N5FmHNyCwQCVZGu5Dgm2cDf5h8LiUTMDtVqNbguNIGZsRg5NAow",
        "491i0C6WCJYJpa90O5NjkNvF4gn37vXkIwouv+uNUZ3aecEf7cPuCS7Bi3IStUlckszsQi4G",
        "AOzb19ypFnJxh82c76kFVEInxPX5SepZOOE6sKDKOQr/oHXb0/isTDlYQu+lQ6HE5mvdE9yL",
        "Ecll0IUkjYflDirHgWw7bvBJUJVweaNlyYBWIcNbLaHYu4Fnwx79RIqAskuMUhrUlfkePmbF",
        "Aj1+NadJatqT",
    );
}
