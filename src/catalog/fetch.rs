//! The verified import: `InRelease` over HTTP, its signature, then each listed Packages index,
//! checked against its SHA256 before a single stanza is parsed. Blocking (ureq); umcd runs it
//! in `spawn_blocking`.
//!
//! An import is a request umcd makes on an admin's behalf, so it is kept from being a probe of
//! umcd's own network: loopback, link-local, multicast and unspecified addresses are refused
//! unless `allow_private`, and so are the cloud metadata addresses outside those ranges;
//! redirects are never followed, and errors never repeat what the remote side sent (only the
//! status and the host: not even a redirect's Location).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use debversion::Version;
use sha2::{Digest, Sha256};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use super::release::{self, Release};
use super::{CatalogError, Package, packages};

/// Where an import reads from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The archive root, e.g. `http://mirror/debian`.
    pub url: String,
    pub suite: String,
    pub components: Vec<String>,
    pub archs: Vec<String>,
    /// How long to wait for a connection or for each response to start.
    pub timeout: Duration,
    /// Allow loopback, link-local, multicast and unspecified addresses (`--allow-private`).
    pub allow_private: bool,
}

/// What an import produced, ready to be stored.
#[derive(Debug, Default)]
pub struct Imported {
    /// By name; when a name appears more than once the highest version wins.
    pub packages: BTreeMap<String, Package>,
    /// How many stanzas were read (what `grep -c '^Package:'` counts).
    pub stanzas: u64,
}

impl Imported {
    fn add(&mut self, p: Package) {
        match self.packages.get(&p.name) {
            Some(old) if !newer(&p.version, &old.version) => {}
            _ => {
                self.packages.insert(p.name.clone(), p);
            }
        }
    }

    fn read(&mut self, what: &str, bytes: &[u8]) -> Result<(), CatalogError> {
        let r = packages::decoder(what, bytes)?;
        self.stanzas += packages::parse(what, r, |p| self.add(p))?;
        Ok(())
    }
}

fn newer(a: &str, b: &str) -> bool {
    match (Version::from_str(a), Version::from_str(b)) {
        (Ok(a), Ok(b)) => a > b,
        _ => a > b,
    }
}

/// Imports one uploaded Packages file (xz, gz or plain), without verification.
pub fn from_bytes(bytes: &[u8]) -> Result<Imported, CatalogError> {
    let mut out = Imported::default();
    out.read("uploaded Packages file", bytes)?;
    Ok(out)
}

/// The longest `InRelease` accepted.
const MAX_INRELEASE: u64 = 64 << 20;

/// Cloud metadata services outside the link-local range (169.254.169.254 and its kin are
/// link-local already): Alibaba Cloud's, inside the carrier-grade NAT range 100.64.0.0/10.
/// That range as a whole stays allowed, like RFC 1918: overlay networks (Tailscale,
/// Headscale) and carrier-internal networks number their hosts, and so their mirrors, there.
const METADATA_V4: [Ipv4Addr; 1] = [Ipv4Addr::new(100, 100, 100, 200)];
/// AWS's instance metadata service over IPv6, inside the ULA range (which stays allowed).
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)];

/// Why an import may not reach `ip` without `--allow-private`: loopback, link-local (the cloud
/// metadata address 169.254.169.254 among them), the other cloud metadata addresses,
/// multicast, broadcast and unspecified addresses, IPv4 inside IPv6 included (mapped, and
/// the NAT64 well-known prefix 64:ff9b::/96, which a NAT64 gateway turns into IPv4). Private
/// LAN ranges (RFC 1918, ULA, carrier-grade NAT) are allowed: local mirrors live there.
pub fn private_kind(ip: IpAddr) -> Option<&'static str> {
    fn v4(ip: Ipv4Addr) -> Option<&'static str> {
        if METADATA_V4.contains(&ip) {
            Some("cloud metadata")
        } else if ip.is_loopback() {
            Some("loopback")
        } else if ip.octets()[0] == 0 {
            // 0.0.0.0/8, "this network": Linux connects it to the local host.
            Some("unspecified")
        } else if ip.is_link_local() {
            Some("link-local")
        } else if ip.is_multicast() {
            Some("multicast")
        } else if ip.is_broadcast() {
            Some("broadcast")
        } else {
            None
        }
    }
    match ip {
        IpAddr::V4(ip) => v4(ip),
        IpAddr::V6(ip) => {
            let s = ip.segments();
            if let Some(mapped) = ip.to_ipv4_mapped() {
                v4(mapped)
            } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let o = ip.octets();
                v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
            } else if METADATA_V6.contains(&ip) {
                Some("cloud metadata")
            } else if ip.is_loopback() {
                Some("loopback")
            } else if ip.is_unspecified() {
                Some("unspecified")
            } else if ip.is_multicast() {
                Some("multicast")
            } else if ip.segments()[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else {
                None
            }
        }
    }
}

/// The first address of `addrs` an import may not reach, with the reason.
fn first_private(addrs: impl IntoIterator<Item = IpAddr>) -> Option<(IpAddr, &'static str)> {
    addrs
        .into_iter()
        .find_map(|ip| private_kind(ip).map(|k| (ip, k)))
}

/// The host (IPv6 without brackets) and port of an `http://` URL.
fn host_port(url: &str) -> Option<(String, u16)> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), uri.port_u16().unwrap_or(80)))
}

/// ureq's resolver, refusing (unless `allow_private`) when any address it finds for the
/// mirror's host is one `private_kind` names. It runs for every connection ureq makes to that
/// host, so a name that resolves to a public address first and to 169.254.169.254 later is
/// still refused. (A proxy's own host, from the environment, is the operator's choice and is
/// not checked.)
#[derive(Debug)]
struct Guard {
    host: String,
    allow_private: bool,
    refused: Arc<Mutex<Option<(IpAddr, &'static str)>>>,
}

impl Resolver for Guard {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = DefaultResolver::default().resolve(uri, config, timeout)?;
        let host = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'));
        if !self.allow_private
            && host.is_some_and(|h| h.eq_ignore_ascii_case(&self.host))
            && let Some(found) = first_private(addrs.iter().map(|a| a.ip()))
        {
            if let Ok(mut r) = self.refused.lock() {
                *r = Some(found);
            }
            return Err(ureq::Error::HostNotFound);
        }
        Ok(addrs)
    }
}

/// An agent that follows no redirect and checks every address it connects to (see `Guard`).
fn agent(timeout: Duration, guard: Guard) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_global(Some(Duration::from_secs(600)))
        .user_agent(concat!("umcd/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::with_parts(config, DefaultConnector::default(), guard)
}

/// What went wrong, in words of our own: nothing the remote side sent is repeated (an import
/// must not turn umcd into a way to read other hosts' answers).
fn describe(e: &ureq::Error) -> String {
    use ureq::Error as E;
    match e {
        E::Timeout(t) => format!("timeout ({t})"),
        E::HostNotFound => "host not found".into(),
        E::Io(io) => format!("connection failed: {}", io.kind()),
        E::ConnectionFailed => "connection failed".into(),
        E::BodyExceedsLimit(n) => format!("response is larger than {n} bytes"),
        E::BadUri(_) | E::Http(_) => "bad URL".into(),
        _ => "not a valid HTTP response".into(),
    }
}

fn get(
    agent: &ureq::Agent,
    guard: &Refusals,
    url: &str,
    limit: u64,
) -> Result<Vec<u8>, CatalogError> {
    let fail = |detail: String| CatalogError::Fetch {
        url: url.to_string(),
        detail,
    };
    let mut resp = agent.get(url).call().map_err(|e| {
        match guard.refused.lock().ok().and_then(|mut r| r.take()) {
            Some((addr, kind)) => CatalogError::Private {
                url: url.to_string(),
                host: guard.host.clone(),
                addr,
                kind,
            },
            None => fail(describe(&e)),
        }
    })?;
    let status = resp.status();
    let from = &guard.authority;
    if status.is_redirection() {
        // Not even the Location is shown: it is the remote side's text, and a metadata
        // service or an internal host could put anything there.
        return Err(fail(format!(
            "HTTP {status} from {from}: redirects are not followed; give the final URL (where the mirror redirects to: try it with curl -I)"
        )));
    }
    if !status.is_success() {
        return Err(fail(format!("HTTP {status} from {from}")));
    }
    resp.body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| fail(describe(&e)))
}

/// What `get` needs to name a refusal: the mirror's host and what `Guard` found.
struct Refusals {
    host: String,
    /// `host[:port]` as the URL gives it, for error messages.
    authority: String,
    refused: Arc<Mutex<Option<(IpAddr, &'static str)>>>,
}

/// Fetches, verifies and parses `source`. Nothing is returned unless every index verified
/// and parsed. `now` (seconds) is checked against the Release's `Valid-Until`.
pub fn fetch_verified(source: &Source, keyring: &[u8], now: i64) -> Result<Imported, CatalogError> {
    let base = source.url.trim_end_matches('/');
    if base.starts_with("https://") {
        return Err(CatalogError::Https {
            url: source.url.clone(),
        });
    }
    if !base.starts_with("http://") {
        return Err(CatalogError::Usage(format!(
            "mirror URL '{}' must start with http://",
            source.url
        )));
    }
    // Check the keyring before any download.
    release::parse_keyring(keyring)?;
    let Some((host, port)) = host_port(base) else {
        return Err(CatalogError::Usage(format!(
            "mirror URL '{}' has no host",
            source.url
        )));
    };
    // Refuse an address literal or a name that resolves to a private kind of address before
    // anything is sent. (The agent's resolver checks again at each connection; this check
    // also covers a mirror reached through a proxy.)
    if !source.allow_private {
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (host.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.map(|a| a.ip()).collect())
                .unwrap_or_default(),
        };
        if let Some((addr, kind)) = first_private(addrs) {
            return Err(CatalogError::Private {
                url: source.url.clone(),
                host,
                addr,
                kind,
            });
        }
    }
    let refusals = Refusals {
        authority: base
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        host: host.clone(),
        refused: Arc::default(),
    };
    let agent = agent(
        source.timeout,
        Guard {
            host,
            allow_private: source.allow_private,
            refused: refusals.refused.clone(),
        },
    );
    let dists = format!("{base}/dists/{}", source.suite);
    let inrelease = get(
        &agent,
        &refusals,
        &format!("{dists}/InRelease"),
        MAX_INRELEASE,
    )?;
    let body = release::verify(&inrelease, keyring)?;
    let rel = Release::parse(&body)?;
    rel.check_valid(now)?;
    if rel.suite.as_deref() != Some(source.suite.as_str())
        && rel.codename.as_deref() != Some(source.suite.as_str())
    {
        return Err(CatalogError::BadRelease(format!(
            "signed for suite '{}' (codename '{}'), not '{}'",
            rel.suite.as_deref().unwrap_or("-"),
            rel.codename.as_deref().unwrap_or("-"),
            source.suite
        )));
    }
    let mut out = Imported::default();
    for comp in &source.components {
        for arch in &source.archs {
            let (path, expected, size) = rel.index(comp, arch)?;
            let bytes = get(&agent, &refusals, &format!("{dists}/{path}"), size + 1)?;
            let got = hex::encode(Sha256::digest(&bytes));
            if got != expected || bytes.len() as u64 != size {
                return Err(CatalogError::HashMismatch {
                    path,
                    expected,
                    size,
                    got,
                    got_size: bytes.len() as u64,
                });
            }
            out.read(&path, &bytes)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security issue 13: the cloud metadata addresses that are neither link-local nor
    /// loopback are refused too, in every spelling; the ranges around them stay allowed.
    #[test]
    fn cloud_metadata_addresses_are_private_and_their_ranges_are_not() {
        let kind = |s: &str| private_kind(s.parse().expect("address"));
        for (addr, want) in [
            ("100.100.100.200", "cloud metadata"),
            ("::ffff:100.100.100.200", "cloud metadata"),
            ("64:ff9b::6464:64c8", "cloud metadata"),
            ("fd00:ec2::254", "cloud metadata"),
            ("169.254.169.254", "link-local"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("64:ff9b::7f00:1", "loopback"),
        ] {
            assert_eq!(kind(addr), Some(want), "{addr}");
        }
        // Carrier-grade NAT, ULA, RFC 1918 and public addresses (NAT64'd too): mirrors.
        for addr in [
            "100.64.0.1",
            "100.100.100.100",
            "100.127.255.254",
            "fd00:ec2::253",
            "fd00::254",
            "10.0.0.1",
            "192.168.1.10",
            "64:ff9b::c000:201",
            "2001:db8::254",
        ] {
            assert_eq!(kind(addr), None, "{addr}");
        }
    }
}
