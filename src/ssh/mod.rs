//! Fleet commands over SSH (russh): targets resolved from the model, a host-key policy that never
//! trusts an unseen key, key-file and agent authentication (RSA with SHA-2 signatures), and a
//! run of bounded parallelism where a failure, a timeout or a refused key is that host's alone.
//!
//! [`start`] spawns one task per host and streams [`Event`]s: output lines as they arrive, then
//! each host's [`RunResult`]. Printing, progress and the summary are the CLI's business.

pub mod known_hosts;
pub mod target;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, Handle, Handler};
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::{ChannelMsg, Disconnect, Preferred};
use tokio::sync::Semaphore;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinSet;

pub use known_hosts::{HostKeys, Verdict};
pub use target::{Host, glob_match, resolve};

use crate::api::RunResult;

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("no targets given")]
    NoTargets,
    #[error(
        "unknown target '{0}': it matches no node (give a node name, task:<name>, all, or a glob)"
    )]
    UnknownTarget(String),
    #[error("identity '{path}': {detail}")]
    Identity { path: PathBuf, detail: String },
    #[error(
        "no SSH credentials: pass --identity FILE, set SSH_AUTH_SOCK to an ssh-agent, or create ~/.ssh/id_ed25519"
    )]
    NoCredentials,
    #[error("HOME is not set: set UMC_KNOWN_HOSTS to umc-admin's known-hosts file")]
    NoHome,
    #[error("known-hosts file '{file}': {detail}")]
    KnownHostsFile { file: PathBuf, detail: String },
    #[error(
        "HOST KEY CHANGED for {host}: it offers {offered}, which differs from the {recorded} key at {file}:{line}; refusing to connect (someone may be intercepting; if the host was reinstalled, delete that line)",
        file = file.display()
    )]
    HostKeyChanged {
        host: String,
        file: PathBuf,
        line: usize,
        /// The offered key's type and fingerprint (`ssh-rsa key SHA256:…`).
        offered: String,
        /// The type of the recorded key named (`ssh-ed25519`).
        recorded: String,
    },
    #[error(
        "unknown host key for {host} ({fingerprint}); refusing to connect (add it to a known_hosts file, or pass --accept-new to record it)"
    )]
    HostKeyUnknown { host: String, fingerprint: String },
    #[error("connect to {addr}: {detail}")]
    Connect { addr: String, detail: String },
    #[error("authentication as '{user}' failed (tried: {tried})")]
    Auth { user: String, tried: String },
    #[error("timed out after {0}s")]
    Timeout(u64),
    #[error("ssh: {0}")]
    Protocol(String),
}

/// The keys umc-admin may offer, loaded before any host is contacted.
pub struct Credentials {
    keys: Vec<(PathBuf, Arc<PrivateKey>)>,
    agent: Option<PathBuf>,
}

impl Credentials {
    /// With `identity`, exactly that key file. Otherwise the agent at `agent` (`SSH_AUTH_SOCK`)
    /// and the unencrypted default keys in `home/.ssh` that exist.
    pub fn load(
        identity: Option<&Path>,
        agent: Option<PathBuf>,
        home: Option<&Path>,
    ) -> Result<Credentials, SshError> {
        if let Some(path) = identity {
            let key = russh::keys::load_secret_key(path, None).map_err(|e| SshError::Identity {
                path: path.to_path_buf(),
                detail: match e {
                    russh::keys::Error::KeyIsEncrypted => {
                        "the key is encrypted; add it to ssh-agent instead".to_string()
                    }
                    e => e.to_string(),
                },
            })?;
            return Ok(Credentials {
                keys: vec![(path.to_path_buf(), Arc::new(key))],
                agent: None,
            });
        }
        let mut keys = Vec::new();
        if let Some(home) = home {
            for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                let path = home.join(".ssh").join(name);
                if let Ok(key) = russh::keys::load_secret_key(&path, None) {
                    keys.push((path, Arc::new(key)));
                }
            }
        }
        let agent = agent.filter(|p| !p.as_os_str().is_empty());
        if keys.is_empty() && agent.is_none() {
            return Err(SshError::NoCredentials);
        }
        Ok(Credentials { keys, agent })
    }
}

/// What every host runs, and how long it may take.
pub struct RunOptions {
    pub command: String,
    /// Sent to the command's standard input, then EOF (a secret stays out of `ps` this way).
    pub stdin: Option<Vec<u8>>,
    /// Bound on the whole host run: connect, authenticate, command.
    pub timeout: Option<Duration>,
    /// Bound on connect + key exchange + authentication.
    pub connect_timeout: Duration,
    pub parallel: usize,
}

#[derive(Debug)]
pub enum Event {
    /// One line of a host's output (index into the host list), without its newline.
    Output {
        host: usize,
        stderr: bool,
        line: String,
    },
    /// A host's key was unknown and has been recorded (`--accept-new`).
    Learned {
        host: usize,
        fingerprint: String,
    },
    Done {
        host: usize,
        result: RunResult,
    },
}

/// Spawns the run on the current tokio runtime: at most `opts.parallel` hosts at a time. Every
/// host sends exactly one `Done` (unless the set is aborted).
pub fn start(
    hosts: Arc<Vec<Host>>,
    opts: Arc<RunOptions>,
    creds: Arc<Credentials>,
    keys: Arc<HostKeys>,
) -> (JoinSet<()>, UnboundedReceiver<Event>) {
    let (tx, rx) = unbounded_channel();
    let permits = Arc::new(Semaphore::new(opts.parallel.max(1)));
    let mut set = JoinSet::new();
    for i in 0..hosts.len() {
        let (hosts, opts, creds, keys, tx, permits) = (
            hosts.clone(),
            opts.clone(),
            creds.clone(),
            keys.clone(),
            tx.clone(),
            permits.clone(),
        );
        set.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let host = &hosts[i];
            let started = Instant::now();
            let run = run_host(i, host, &opts, &creds, &keys, &tx);
            let outcome = match opts.timeout {
                Some(t) => tokio::time::timeout(t, run)
                    .await
                    .unwrap_or(Err(SshError::Timeout(t.as_secs()))),
                None => run.await,
            };
            let (exit, signal, error) = match outcome {
                Ok((exit, signal)) => (exit, signal, None),
                Err(e) => (None, None, Some(e.to_string())),
            };
            let result = RunResult {
                host: host.name.clone(),
                exit,
                signal,
                duration_ms: started.elapsed().as_millis() as u64,
                error,
            };
            let _ = tx.send(Event::Done { host: i, result });
        });
    }
    (set, rx)
}

/// Checks the server's key against the known-hosts files; keeps the refusal to report it.
struct Checker {
    host: usize,
    address: String,
    port: u16,
    keys: Arc<HostKeys>,
    refusal: Arc<Mutex<Option<SshError>>>,
    tx: UnboundedSender<Event>,
}

impl Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key: &PublicKey = match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key,
            russh::keys::PublicKeyOrCertificate::Certificate(_) => {
                self.refuse(SshError::Protocol(
                    "the server offered a host certificate; umc-admin checks plain host keys only"
                        .into(),
                ));
                return Ok(false);
            }
        };
        match self.keys.check(&self.address, self.port, key) {
            Ok(Verdict::Known) => Ok(true),
            Ok(Verdict::Learned) => {
                let _ = self.tx.send(Event::Learned {
                    host: self.host,
                    fingerprint: known_hosts::fingerprint(key),
                });
                Ok(true)
            }
            Err(e) => {
                self.refuse(e);
                Ok(false)
            }
        }
    }
}

impl Checker {
    fn refuse(&self, e: SshError) {
        if let Ok(mut r) = self.refusal.lock() {
            *r = Some(e);
        }
    }
}

fn protocol(e: impl std::fmt::Display) -> SshError {
    SshError::Protocol(e.to_string())
}

/// Splits a byte stream into lines; keeps the unfinished tail.
#[derive(Default)]
struct Lines(Vec<u8>);

impl Lines {
    fn push(&mut self, data: &[u8]) -> Vec<String> {
        self.0.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(pos) = self.0.iter().position(|&b| b == b'\n') {
            let rest = self.0.split_off(pos + 1);
            let mut line = std::mem::replace(&mut self.0, rest);
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            out.push(String::from_utf8_lossy(&line).into_owned());
        }
        out
    }

    fn finish(&mut self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let line = String::from_utf8_lossy(&self.0).into_owned();
        self.0.clear();
        Some(line)
    }
}

async fn run_host(
    index: usize,
    host: &Host,
    opts: &RunOptions,
    creds: &Credentials,
    keys: &Arc<HostKeys>,
    tx: &UnboundedSender<Event>,
) -> Result<(Option<u32>, Option<String>), SshError> {
    // Ask for the key types the files record for this host first (as OpenSSH does): a server
    // with several host keys then shows the known one, and any other type means "changed".
    let default = Preferred::DEFAULT;
    let config = Arc::new(client::Config {
        nodelay: true,
        inactivity_timeout: None,
        preferred: Preferred {
            key: keys
                .preferred_algorithms(&host.address, host.port, &default.key)
                .into(),
            ..default
        },
        ..Default::default()
    });
    let addr = if host.address.contains(':') {
        format!("[{}]:{}", host.address, host.port)
    } else {
        format!("{}:{}", host.address, host.port)
    };
    let refusal = Arc::new(Mutex::new(None));
    let checker = Checker {
        host: index,
        address: host.address.clone(),
        port: host.port,
        keys: keys.clone(),
        refusal: refusal.clone(),
        tx: tx.clone(),
    };
    let setup = async {
        let mut session = client::connect(config, (host.address.as_str(), host.port), checker)
            .await
            .map_err(|e| {
                refusal
                    .lock()
                    .ok()
                    .and_then(|mut r| r.take())
                    .unwrap_or_else(|| SshError::Connect {
                        addr: addr.clone(),
                        detail: e.to_string(),
                    })
            })?;
        authenticate(&mut session, &host.user, creds).await?;
        Ok::<_, SshError>(session)
    };
    let session = tokio::time::timeout(opts.connect_timeout, setup)
        .await
        .map_err(|_| SshError::Connect {
            addr: addr.clone(),
            detail: format!(
                "no session within {}s (--connect-timeout)",
                opts.connect_timeout.as_secs()
            ),
        })??;
    let mut channel = session.channel_open_session().await.map_err(protocol)?;
    channel
        .exec(true, opts.command.as_bytes())
        .await
        .map_err(protocol)?;
    if let Some(input) = &opts.stdin {
        channel.data(&input[..]).await.map_err(protocol)?;
        channel.eof().await.map_err(protocol)?;
    }
    let (mut out, mut err) = (Lines::default(), Lines::default());
    let (mut exit, mut signal) = (None, None);
    let send = |stderr: bool, line: String| {
        let _ = tx.send(Event::Output {
            host: index,
            stderr,
            line,
        });
    };
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => out.push(&data).into_iter().for_each(|l| send(false, l)),
            ChannelMsg::ExtendedData { data, ext: 1 } => {
                err.push(&data).into_iter().for_each(|l| send(true, l))
            }
            ChannelMsg::ExitStatus { exit_status } => exit = Some(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => signal = Some(format!("{signal_name:?}")),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    if let Some(l) = out.finish() {
        send(false, l);
    }
    if let Some(l) = err.finish() {
        send(true, l);
    }
    let _ = session
        .disconnect(Disconnect::ByApplication, "", "en")
        .await;
    if exit.is_none() && signal.is_none() {
        return Err(SshError::Protocol(
            "the session closed without an exit status".into(),
        ));
    }
    Ok((exit, signal))
}

fn rsa_sha2(key: &PublicKey) -> Option<HashAlg> {
    // RSA signs with SHA-2 (rsa-sha2-512), never the legacy SHA-1 `ssh-rsa`.
    key.algorithm().is_rsa().then_some(HashAlg::Sha512)
}

/// Offers each key file, then each agent identity, once. No retries: sshd penalizes addresses
/// that fail many logins (OpenSSH 10 `PerSourcePenalties`).
async fn authenticate(
    session: &mut Handle<Checker>,
    user: &str,
    creds: &Credentials,
) -> Result<(), SshError> {
    let mut tried = Vec::new();
    for (path, key) in &creds.keys {
        let with_hash = PrivateKeyWithHashAlg::new(key.clone(), rsa_sha2(key.public_key()));
        let r = session
            .authenticate_publickey(user, with_hash)
            .await
            .map_err(protocol)?;
        if r.success() {
            return Ok(());
        }
        tried.push(path.display().to_string());
    }
    if let Some(sock) = &creds.agent {
        match AgentClient::connect_uds(sock).await {
            Ok(mut agent) => {
                let ids = agent.request_identities().await.unwrap_or_default();
                if ids.is_empty() {
                    tried.push("ssh-agent (no keys)".into());
                }
                for id in ids {
                    let key = id.public_key().into_owned();
                    let hash = rsa_sha2(&key);
                    match session
                        .authenticate_publickey_with(user, key.clone(), hash, &mut agent)
                        .await
                    {
                        Ok(r) if r.success() => return Ok(()),
                        Ok(_) => {
                            tried.push(format!("agent key {}", known_hosts::fingerprint(&key)))
                        }
                        Err(e) => {
                            tried.push(format!("agent key {}: {e}", known_hosts::fingerprint(&key)))
                        }
                    }
                }
            }
            Err(e) => tried.push(format!("ssh-agent at {}: {e}", sock.display())),
        }
    }
    Err(SshError::Auth {
        user: user.to_string(),
        tried: tried.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks() {
        let mut l = Lines::default();
        assert_eq!(l.push(b"a\r\nb"), ["a"]);
        assert_eq!(l.push(b"c\n\nd"), ["bc", ""]);
        assert_eq!(l.finish().as_deref(), Some("d"));
        assert_eq!(l.finish(), None);
    }

    #[test]
    fn unreadable_identity_is_an_error() {
        let e = Credentials::load(Some(Path::new("/nonexistent/key")), None, None)
            .err()
            .expect("error");
        assert!(
            e.to_string().starts_with("identity '/nonexistent/key'"),
            "{e}"
        );
    }
}
