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
pub const MAX_AGE: i64 = 12 * 3600;
/// ... or after this long without a request.
pub const IDLE: i64 = 3600;
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

pub fn random_hex() -> String {
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

    /// The live session behind cookie value `id`, touched (and its flash taken) at `now`.
    pub fn get(&self, id: &str, now: i64) -> Option<Session> {
        let mut map = self.map.lock().ok()?;
        let k = key(id);
        let s = map.get_mut(&k)?;
        if !live(s, now) {
            map.remove(&k);
            return None;
        }
        s.last = now;
        let out = s.clone();
        s.flash = None;
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
pub struct Limiter {
    map: Mutex<HashMap<String, Vec<i64>>>,
    pub per_user: usize,
    pub per_addr: usize,
    pub window: i64,
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

/// Most keys remembered; an attacker spraying names cannot grow the map without bound.
const MAX_KEYS: usize = 100_000;

fn user_key(user: &str) -> String {
    format!("u:{user}")
}

fn addr_key(addr: Option<IpAddr>) -> String {
    match addr {
        Some(a) => format!("a:{a}"),
        None => "a:unknown".to_string(),
    }
}

impl Limiter {
    /// When a login for `user` from `addr` is refused: the seconds until it may try again.
    pub fn blocked(&self, user: &str, addr: Option<IpAddr>, now: i64) -> Option<i64> {
        let map = self.map.lock().ok()?;
        let wait = |k: &str, limit: usize| {
            let times = map.get(k)?;
            let recent: Vec<i64> = times
                .iter()
                .copied()
                .filter(|t| *t > now - self.window)
                .collect();
            (recent.len() >= limit).then(|| recent[recent.len() - limit] + self.window - now)
        };
        let u = wait(&user_key(user), self.per_user);
        let a = wait(&addr_key(addr), self.per_addr);
        u.into_iter().chain(a).max().map(|w| w.max(1))
    }

    pub fn failed(&self, user: &str, addr: Option<IpAddr>, now: i64) {
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        if map.len() >= MAX_KEYS {
            map.retain(|_, times| times.iter().any(|t| *t > now - self.window));
        }
        for k in [user_key(user), addr_key(addr)] {
            let times = map.entry(k).or_default();
            times.retain(|t| *t > now - self.window);
            times.push(now);
        }
    }

    /// A good password clears the user's count (not the address's: one right guess among
    /// many names must not reset a sprayer).
    pub fn succeeded(&self, user: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&user_key(user));
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
            s.get(&id, 1000 + IDLE - 1).map(|x| x.user),
            Some("sh".into())
        );
        assert!(s.get(&id, 1000 + 2 * IDLE).is_none(), "idle");
        let id = s.create("sh", 0).expect("session");
        let mut t = 0;
        while t + IDLE / 2 < MAX_AGE {
            t += IDLE / 2;
            assert!(s.get(&id, t).is_some());
        }
        assert!(s.get(&id, MAX_AGE).is_none(), "max age");
        assert!(s.get("not-a-session", 0).is_none());
    }

    #[test]
    fn flash_is_shown_once_and_users_can_be_logged_out() {
        let s = Sessions::default();
        let id = s.create("sh", 0).expect("session");
        s.set_flash(&id, "done".into());
        assert_eq!(s.get(&id, 1).and_then(|x| x.flash), Some("done".into()));
        assert_eq!(s.get(&id, 2).and_then(|x| x.flash), None);
        s.remove_user("sh");
        assert!(s.get(&id, 3).is_none());
    }

    #[test]
    fn limiter_blocks_per_user_and_per_address() {
        let l = Limiter::default();
        let a: IpAddr = [127, 0, 0, 1].into();
        for i in 0..5 {
            assert_eq!(l.blocked("sh", Some(a), 100 + i), None);
            l.failed("sh", Some(a), 100 + i);
        }
        let wait = l.blocked("sh", Some(a), 105).expect("blocked");
        assert!(wait > 0 && wait <= l.window);
        assert_eq!(
            l.blocked("sh", Some(a), 100 + l.window + 5),
            None,
            "window passed"
        );
        // Other names from the same address: blocked once the address passes its limit.
        let b: IpAddr = [127, 0, 0, 2].into();
        for i in 0..20 {
            l.failed(&format!("u{i}"), Some(b), 200);
        }
        assert!(l.blocked("fresh", Some(b), 201).is_some());
        assert_eq!(l.blocked("fresh", Some(a), 201), None);
        l.succeeded("sh");
        assert_eq!(l.blocked("sh", Some(a), 106), None);
    }
}
