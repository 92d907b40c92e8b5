//! Login sessions and the failed-login limiter, both in memory.
//!
//! A session is a random 256-bit id in an `HttpOnly`, `SameSite=Strict` cookie; umcd keeps only
//! its sha256, with the user name, a CSRF token, and its times. Sessions live in memory on
//! purpose: a restart logs everyone out, and no session secret ever reaches the disk or a
//! backup. The user's role is read from the store on every request, so a role change or a
//! removed user takes effect at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// A session ends this long after login, however busy.
pub(super) const MAX_AGE: i64 = 12 * 3600;
/// ... or after this long without a request.
pub(super) const IDLE: i64 = 3600;
/// Most sessions kept; past it, the oldest go first.
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    /// Every state-changing form carries it (synchronizer token).
    pub csrf: String,
    pub created: i64,
    pub last: i64,
    /// A one-shot message for the next page ("Task 'web' created").
    pub flash: Option<String>,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

pub(super) fn random_hex() -> String {
    let mut b = [0u8; 32];
    // No OS randomness means no safe session: fail closed with an unguessable-by-nobody id.
    if getrandom::fill(&mut b).is_err() {
        tracing::error!("no OS random source; sessions cannot be created");
        return String::new();
    }
    hex::encode(b)
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// A new session for `user`; returns the cookie value.
    pub fn create(&self, user: &str, now: i64) -> Option<String> {
        let id = random_hex();
        let csrf = random_hex();
        if id.is_empty() || csrf.is_empty() {
            return None;
        }
        let mut map = self.map.lock().ok()?;
        map.retain(|_, s| live(s, now));
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(
            key(&id),
            Session {
                user: user.to_string(),
                csrf,
                created: now,
                last: now,
                flash: None,
            },
        );
        Some(id)
    }

    /// The live session behind cookie value `id`, touched at `now`; its flash is taken when
    /// `take_flash` (a page view that will show it).
    pub fn get(&self, id: &str, now: i64, take_flash: bool) -> Option<Session> {
        let mut map = self.map.lock().ok()?;
        let k = key(id);
        let s = map.get_mut(&k)?;
        if !live(s, now) {
            map.remove(&k);
            return None;
        }
        s.last = now;
        let out = s.clone();
        if take_flash {
            s.flash = None;
        }
        Some(out)
    }

    pub fn set_flash(&self, id: &str, message: String) {
        if let Ok(mut map) = self.map.lock()
            && let Some(s) = map.get_mut(&key(id))
        {
            s.flash = Some(message);
        }
    }

    pub fn remove(&self, id: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&key(id));
        }
    }

    /// Ends every session of `user` (removed, or its password changed).
    pub fn remove_user(&self, user: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, s| s.user != user);
        }
    }
}

fn live(s: &Session, now: i64) -> bool {
    now < s.created + MAX_AGE && now < s.last + IDLE
}

/// Failed logins counted per user and per source address over a sliding window; past the
/// limit, logins are refused without checking the password until the window has passed.
///
/// An attempt is counted *before* its password is checked ([`Limiter::attempt`]) and taken
/// back when it succeeds, so parallel guesses cannot all slip in while the slow check runs.
pub struct Limiter {
    map: Mutex<HashMap<String, Vec<i64>>>,
    per_user: usize,
    per_addr: usize,
    window: i64,
}

impl Default for Limiter {
    fn default() -> Limiter {
        Limiter {
            map: Mutex::new(HashMap::new()),
            per_user: 5,
            per_addr: 20,
            window: 15 * 60,
        }
    }
}

/// Most keys remembered; past it the least recently failing half is forgotten, so spraying
/// names or addresses cannot grow the map without bound.
const MAX_KEYS: usize = 100_000;

fn user_key(user: &str) -> String {
    format!("u:{user}")
}

/// IPv6 clients usually hold a whole /64: count them as one address.
fn addr_key(addr: Option<IpAddr>) -> String {
    match addr.map(|a| a.to_canonical()) {
        Some(IpAddr::V6(a)) => {
            let s = a.segments();
            format!("a:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(a) => format!("a:{a}"),
        None => "a:unknown".to_string(),
    }
}

impl Limiter {
    /// Counts a login attempt for `user` (none: a name that cannot exist) from `addr`; refused
    /// with the seconds to wait when either already reached its limit.
    pub fn attempt(&self, user: Option<&str>, addr: Option<IpAddr>, now: i64) -> Result<(), i64> {
        let Ok(mut map) = self.map.lock() else {
            return Err(self.window);
        };
        let keys: Vec<(String, usize)> = user
            .map(|u| (user_key(u), self.per_user))
            .into_iter()
            .chain([(addr_key(addr), self.per_addr)])
            .collect();
        let mut wait = None;
        for (k, limit) in &keys {
            if let Some(times) = map.get_mut(k) {
                times.retain(|t| *t > now - self.window);
                if times.len() >= *limit {
                    let w = times[times.len() - limit] + self.window - now;
                    wait = Some(wait.unwrap_or(0).max(w.max(1)));
                }
            }
        }
        if let Some(w) = wait {
            return Err(w);
        }
        if map.len() + keys.len() > MAX_KEYS {
            map.retain(|_, times| times.iter().any(|t| *t > now - self.window));
            if map.len() + keys.len() > MAX_KEYS {
                let mut by_age: Vec<(i64, String)> = map
                    .iter()
                    .map(|(k, t)| (t.last().copied().unwrap_or(0), k.clone()))
                    .collect();
                by_age.sort();
                for (_, k) in by_age.into_iter().take(MAX_KEYS / 2) {
                    map.remove(&k);
                }
            }
        }
        for (k, _) in keys {
            map.entry(k).or_default().push(now);
        }
        Ok(())
    }

    /// The attempt at `now` was right: the user's count is cleared, and the address gets
    /// its one attempt back (not its whole count: one right guess among many names must not
    /// reset a sprayer).
    pub fn succeeded(&self, user: &str, addr: Option<IpAddr>, now: i64) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&user_key(user));
            if let Some(times) = map.get_mut(&addr_key(addr))
                && let Some(i) = times.iter().rposition(|t| *t == now)
            {
                times.remove(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_at_max_age() {
        let s = Sessions::default();
        let id = s.create("sh", 1000).expect("session");
        assert_eq!(
            s.get(&id, 1000 + IDLE - 1, true).map(|x| x.user),
            Some("sh".into())
        );
        assert!(s.get(&id, 1000 + 2 * IDLE, true).is_none(), "idle");
        let id = s.create("sh", 0).expect("session");
        let mut t = 0;
        while t + IDLE / 2 < MAX_AGE {
            t += IDLE / 2;
            assert!(s.get(&id, t, true).is_some());
        }
        assert!(s.get(&id, MAX_AGE, true).is_none(), "max age");
        assert!(s.get("not-a-session", 0, true).is_none());
    }

    #[test]
    fn flash_is_shown_once_and_users_can_be_logged_out() {
        let s = Sessions::default();
        let id = s.create("sh", 0).expect("session");
        s.set_flash(&id, "done".into());
        assert_eq!(
            s.get(&id, 1, true).and_then(|x| x.flash),
            Some("done".into())
        );
        assert_eq!(s.get(&id, 2, true).and_then(|x| x.flash), None);
        s.remove_user("sh");
        assert!(s.get(&id, 3, true).is_none());
    }

    #[test]
    fn limiter_blocks_per_user_and_per_address() {
        let l = Limiter::default();
        let a: IpAddr = [127, 0, 0, 1].into();
        for i in 0..5 {
            assert_eq!(l.attempt(Some("sh"), Some(a), 100 + i), Ok(()));
        }
        let wait = l.attempt(Some("sh"), Some(a), 105).expect_err("blocked");
        assert!(wait > 0 && wait <= l.window);
        assert_eq!(
            l.attempt(Some("sh"), Some(a), 100 + l.window + 5),
            Ok(()),
            "window passed"
        );
        // Other names from one address: blocked once the address reaches its limit.
        let b: IpAddr = [127, 0, 0, 2].into();
        for i in 0..20 {
            assert_eq!(l.attempt(Some(&format!("u{i}")), Some(b), 200), Ok(()));
        }
        assert!(l.attempt(Some("fresh"), Some(b), 201).is_err());
        assert!(
            l.attempt(None, Some(b), 201).is_err(),
            "impossible names count too"
        );
        // A success gives the user a clean slate.
        let c: IpAddr = [127, 0, 0, 3].into();
        for _ in 0..4 {
            assert_eq!(l.attempt(Some("ann"), Some(c), 300), Ok(()));
        }
        assert_eq!(l.attempt(Some("ann"), Some(c), 301), Ok(()));
        l.succeeded("ann", Some(c), 301);
        assert_eq!(l.attempt(Some("ann"), Some(c), 302), Ok(()));
    }

    #[test]
    fn ipv6_counts_per_64_and_the_map_stays_bounded() {
        let l = Limiter::default();
        for i in 0..20u16 {
            let a = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i, 0, 0, 1));
            assert_eq!(l.attempt(None, Some(a), 10), Ok(()));
        }
        let other_host_same_64 =
            IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
        assert!(l.attempt(None, Some(other_host_same_64), 11).is_err());
        for i in 0..(MAX_KEYS as u32 + 10) {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert_eq!(l.attempt(Some(&format!("n{i}")), Some(a), 20), Ok(()));
        }
        assert!(l.map.lock().map(|m| m.len()).unwrap_or(0) <= MAX_KEYS);
    }
}
