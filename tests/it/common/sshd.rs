//! Real OpenSSH servers for tests: `sshd -D -e -f <cfg>` on 127.0.0.1, each with its own port
//! and host key, stopped by PID. (OpenSSH 9.2 has no `PerSourcePenalties`; the tests offer each
//! key once per connection and never loop on failed logins.)

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::show;

/// A free TCP port on 127.0.0.1 (the listener is closed again; sshd binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn keygen(path: &Path, kind: &str) {
    let mut args = vec!["-q", "-t", kind, "-N", "", "-C", "umc-test", "-f"];
    let p = path.display().to_string();
    args.push(&p);
    if kind == "rsa" {
        args.extend(["-b", "3072"]);
    }
    let out = Command::new("ssh-keygen")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "ssh-keygen: {}", show(&out));
}

/// One sshd "host" on 127.0.0.1:<port>.
pub struct Sshd {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
}

impl Sshd {
    /// Starts sshd on `port` with the host key in `dir/host_key` (made if missing), letting in
    /// the keys in `authorized`; `extra` is appended to its config.
    pub fn start(dir: &Path, port: u16, authorized: &Path, extra: &str) -> Sshd {
        std::fs::create_dir_all(dir).expect("sshd dir");
        // sshd refuses to start without its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let host_key = dir.join("host_key");
        if !host_key.exists() {
            keygen(&host_key, "ed25519");
        }
        let cfg = dir.join("sshd_config");
        std::fs::write(
            &cfg,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                 PidFile none\nStrictModes no\nUsePAM no\nPermitRootLogin yes\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nMaxStartups 200\nLogLevel ERROR\n{extra}",
                hk = host_key.display(),
                ak = authorized.display(),
            ),
        )
        .expect("sshd_config");
        let log = std::fs::File::create(dir.join("sshd.log")).expect("log");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sshd");
        let s = Sshd {
            child: Some(child),
            port,
            dir: dir.to_path_buf(),
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "sshd on port {} did not start: {}",
            self.port,
            std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
        );
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}
