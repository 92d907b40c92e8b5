//! Node reports written by hand, as umc-cycle writes them, and posted as a node posts them.

use super::{Resp, Server, http};

/// A node report, finished now and started 20 s before. `update` exited 0; `install` exited
/// `install`, and `autoremove` exited 0 after a good install and was skipped ("-") after a
/// failed one.
pub struct Report<'a> {
    /// (package, version) pairs.
    pub installed: &'a [(&'a str, &'a str)],
    pub install: &'a str,
    pub upgradable: u64,
    /// The last lines of apt's output.
    pub tail: &'a [&'a str],
}

impl Default for Report<'_> {
    /// A good cycle with only `umc-node` 1.1 installed.
    fn default() -> Self {
        Report {
            installed: &[("umc-node", "1.1")],
            install: "0",
            upgradable: 0,
            tail: &[],
        }
    }
}

impl Report<'_> {
    pub fn text(&self) -> String {
        let t = umc::app::now();
        let autoremove = if self.install == "0" { "0" } else { "-" };
        let mut r = format!(
            "Format: umc-report/1\nStarted: {}\nFinished: {t}\nStep: update 0\nStep: install {}\nStep: autoremove {autoremove}\n",
            t - 20,
            self.install
        );
        for (package, version) in self.installed {
            r.push_str(&format!("Installed: {package} {version}\n"));
        }
        r.push_str(&format!(
            "Reboot-Required: no\nUpgradable: {}\n",
            self.upgradable
        ));
        for l in self.tail {
            r.push_str(&format!("Tail: {l}\n"));
        }
        r
    }
}

/// A good cycle's report with `installed` (package, version) pairs.
pub fn report(installed: &[(&str, &str)]) -> String {
    Report {
        installed,
        ..Report::default()
    }
    .text()
}

impl Server {
    /// POSTs `body` as `host`'s report with Basic credentials `(user, password)`.
    pub fn post_report(&self, host: &str, (user, password): (&str, &str), body: &[u8]) -> Resp {
        http(
            "POST",
            &format!("{}/hosts/{host}/report", self.url),
            Some((user, password)),
            &[("Content-Type", "text/plain")],
            Some(body),
        )
    }
}
