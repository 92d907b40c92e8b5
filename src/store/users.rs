//! Named users with roles, their argon2id password hashes, and API tokens.
//!
//! `api_tokens_v1` keeps mapping sha256(token) → user (the lookup every admin request makes);
//! `token_info_v1` carries each token's label, creation and expiry under the same key. A
//! token's id is the first 12 hex digits of that hash: listing and revoking never need the
//! token itself, which umcd never stores.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::tables::{TOKEN_INFO, USERS};
use super::{API_TOKENS, Store, StoreError, decode, encode, token_hash};
use crate::api::{Role, TokenInfo, UserInfo};

#[derive(Serialize, Deserialize)]
struct UserRec {
    /// "admin" | "operator" | "viewer"
    role: String,
    /// argon2id in PHC string form; none: no password set.
    hash: Option<String>,
    created: i64,
}

#[derive(Serialize, Deserialize)]
struct TokenRec {
    name: String,
    created: i64,
    expires: Option<i64>,
}

/// Who made a request, as its token proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// The longest token label, in bytes.
pub const MAX_TOKEN_LABEL: usize = 128;
/// The most API tokens one user may hold (admin.token included).
pub const MAX_TOKENS_PER_USER: usize = 100;
/// The label of the token umcd keeps for `<data>/admin.token`; reserved for it.
pub const BOOTSTRAP_LABEL: &str = "admin.token";

/// A token label: at most [`MAX_TOKEN_LABEL`] bytes, no control characters, not the reserved
/// [`BOOTSTRAP_LABEL`].
pub fn check_token_label(label: &str) -> Result<(), StoreError> {
    if label.len() > MAX_TOKEN_LABEL {
        return Err(StoreError::Invalid(format!(
            "token label: {} bytes is longer than {MAX_TOKEN_LABEL}",
            label.len()
        )));
    }
    if label.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "token label: control characters are not allowed".into(),
        ));
    }
    if label == BOOTSTRAP_LABEL {
        return Err(StoreError::Invalid(format!(
            "token label '{BOOTSTRAP_LABEL}' is reserved for umcd's own admin token"
        )));
    }
    Ok(())
}

fn token_id(hash: &[u8]) -> String {
    hex::encode(&hash[..6])
}

fn role_of(name: &str, r: &UserRec) -> Result<Role, StoreError> {
    Role::parse(&r.role)
        .ok_or_else(|| StoreError::corrupt(format!("user {name}"), format!("role '{}'", r.role)))
}

/// A user name: 1 to 64 of `[a-z0-9._-]`, starting with a letter or digit.
pub fn check_user_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "user name '{name}': use 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
        )))
    }
}

/// argon2id with the crate's defaults (RFC 9106 / OWASP: m=19 MiB, t=2, p=1) and a random salt.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(StoreError::NoRandom)?;
    let salt = SaltString::encode_b64(&salt).map_err(StoreError::PasswordHash)?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(StoreError::PasswordHash)
}

/// A hash of a random password with the same parameters as real ones, made once.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        hash_password(&crate::store::random_token()).unwrap_or_else(|_| {
            // Without OS randomness no password can be set either; any valid PHC string works.
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0000000000000000000000000000000000000000000".into()
        })
    })
}

fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

impl Store {
    /// Makes sure `name` exists with role admin (the bootstrap user of `admin.token`).
    pub fn ensure_admin_user(&self, name: &str, now: i64) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(USERS)?;
            let rec = match t.get(name)? {
                Some(v) => {
                    let mut r: UserRec = decode(&format!("user {name}"), v.value())?;
                    if r.role == Role::Admin.as_str() {
                        return Ok(());
                    }
                    r.role = Role::Admin.as_str().to_string();
                    r
                }
                None => UserRec {
                    role: Role::Admin.as_str().to_string(),
                    hash: None,
                    created: now,
                },
            };
            t.insert(name, encode(&rec)?.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Adds a user; `hash` comes from [`hash_password`].
    pub fn add_user(&self, name: &str, role: Role, hash: &str, now: i64) -> Result<(), StoreError> {
        check_user_name(name)?;
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(USERS)?;
            if t.get(name)?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "user '{name}' already exists"
                )));
            }
            let rec = UserRec {
                role: role.as_str().to_string(),
                hash: Some(hash.to_string()),
                created: now,
            };
            t.insert(name, encode(&rec)?.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn set_password(&self, name: &str, hash: &str) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(USERS)?;
            let mut rec: UserRec = match t.get(name)? {
                Some(v) => decode(&format!("user {name}"), v.value())?,
                None => return Err(StoreError::NotFound(format!("unknown user '{name}'"))),
            };
            rec.hash = Some(hash.to_string());
            t.insert(name, encode(&rec)?.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes a user and every token of it.
    pub fn remove_user(&self, name: &str) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(USERS)?;
            if t.remove(name)?.is_none() {
                return Err(StoreError::NotFound(format!("unknown user '{name}'")));
            }
            remove_tokens_where(&tx, |_, user| user == name)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn users(&self) -> Result<Vec<UserInfo>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(USERS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let name = k.value().to_string();
            let r: UserRec = decode(&format!("user {name}"), v.value())?;
            out.push(UserInfo {
                role: role_of(&name, &r)?,
                created: r.created,
                has_password: r.hash.is_some(),
                name,
            });
        }
        Ok(out)
    }

    /// The user `name` if `password` is its password (argon2id; slow by design: call it off
    /// the async runtime).
    pub fn check_password(&self, name: &str, password: &str) -> Result<Option<Caller>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(USERS)?;
        let Some(v) = t.get(name)? else {
            // Spend the same time as a wrong password, so a login's timing does not tell
            // which user names exist.
            verify_password(dummy_hash(), password);
            return Ok(None);
        };
        let r: UserRec = decode(&format!("user {name}"), v.value())?;
        match &r.hash {
            Some(h) if verify_password(h, password) => Ok(Some(Caller {
                name: name.to_string(),
                role: role_of(name, &r)?,
            })),
            Some(_) => Ok(None),
            None => {
                verify_password(dummy_hash(), password);
                Ok(None)
            }
        }
    }

    /// The role of user `name`, or none when it does not exist (any more).
    pub fn user_role(&self, name: &str) -> Result<Option<Role>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(USERS)?;
        let Some(v) = t.get(name)? else {
            return Ok(None);
        };
        let r: UserRec = decode(&format!("user {name}"), v.value())?;
        Ok(Some(role_of(name, &r)?))
    }

    /// Registers `token` (stored hashed) for `user`, labelled `name` (see
    /// [`check_token_label`]); refused when the user holds [`MAX_TOKENS_PER_USER`] unexpired
    /// tokens already. The user's expired tokens are removed in the same transaction: they
    /// can never work again, and kept they would let a user grow the table without bound
    /// (create a token that expires in a day, wait, repeat).
    pub fn add_api_token(
        &self,
        token: &str,
        user: &str,
        name: &str,
        now: i64,
        expires: Option<i64>,
    ) -> Result<TokenInfo, StoreError> {
        check_token_label(name)?;
        let hash = token_hash(token);
        let tx = self.db.begin_write()?;
        {
            let expired = {
                let t = tx.open_table(API_TOKENS)?;
                let info = tx.open_table(TOKEN_INFO)?;
                let mut expired = Vec::new();
                for row in t.iter()? {
                    let (k, v) = row?;
                    if v.value() != user {
                        continue;
                    }
                    if let Some(r) = info.get(k.value())?
                        && decode::<TokenRec>("token", r.value())?
                            .expires
                            .is_some_and(|e| now >= e)
                    {
                        expired.push(k.value().to_vec());
                    }
                }
                expired
            };
            remove_tokens_where(&tx, |hash, _| expired.iter().any(|e| e == hash))?;
            let mut t = tx.open_table(API_TOKENS)?;
            let mut held = 0;
            for row in t.iter()? {
                if row?.1.value() == user {
                    held += 1;
                }
            }
            if held >= MAX_TOKENS_PER_USER {
                return Err(StoreError::Conflict(format!(
                    "user '{user}' already holds {held} tokens (at most {MAX_TOKENS_PER_USER}); revoke one first"
                )));
            }
            t.insert(hash.as_slice(), user)?;
            drop(t);
            let rec = TokenRec {
                name: name.to_string(),
                created: now,
                expires,
            };
            tx.open_table(TOKEN_INFO)?
                .insert(hash.as_slice(), encode(&rec)?.as_slice())?;
        }
        tx.commit()?;
        Ok(TokenInfo {
            id: token_id(&hash),
            name: name.to_string(),
            user: user.to_string(),
            created: now,
            expires,
        })
    }

    /// Makes `token` the bootstrap token of `user` (labelled [`BOOTSTRAP_LABEL`]): the user's
    /// previous bootstrap token stops working (a leaked admin token is revoked by deleting
    /// admin.token and restarting umcd); its other tokens stay. Returns what it revoked.
    pub fn replace_bootstrap_token(
        &self,
        user: &str,
        token: &str,
        now: i64,
    ) -> Result<Vec<TokenInfo>, StoreError> {
        let hash = token_hash(token);
        let tx = self.db.begin_write()?;
        let mut revoked = Vec::new();
        {
            let created = match tx.open_table(TOKEN_INFO)?.get(hash.as_slice())? {
                Some(v) => decode::<TokenRec>("token", v.value())?.created,
                None => now,
            };
            let mut t = tx.open_table(API_TOKENS)?;
            let mut info = tx.open_table(TOKEN_INFO)?;
            let mut stale = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                if v.value() != user || k.value() == hash.as_slice() {
                    continue;
                }
                let Some(r) = info.get(k.value())? else {
                    continue;
                };
                let rec: TokenRec = decode("token", r.value())?;
                if rec.name == BOOTSTRAP_LABEL {
                    stale.push((k.value().to_vec(), rec));
                }
            }
            for (k, rec) in stale {
                t.remove(k.as_slice())?;
                info.remove(k.as_slice())?;
                revoked.push(TokenInfo {
                    id: token_id(&k),
                    name: rec.name,
                    user: user.to_string(),
                    created: rec.created,
                    expires: rec.expires,
                });
            }
            t.insert(hash.as_slice(), user)?;
            let rec = TokenRec {
                name: BOOTSTRAP_LABEL.to_string(),
                created,
                expires: None,
            };
            info.insert(hash.as_slice(), encode(&rec)?.as_slice())?;
        }
        tx.commit()?;
        Ok(revoked)
    }

    /// Every token (of `user` only, when given).
    pub fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(API_TOKENS)?;
        let info = tx.open_table(TOKEN_INFO)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let owner = v.value();
            if user.is_some_and(|u| u != owner) {
                continue;
            }
            let rec = match info.get(k.value())? {
                Some(r) => decode::<TokenRec>("token", r.value())?,
                None => TokenRec {
                    name: String::new(),
                    created: 0,
                    expires: None,
                },
            };
            out.push(TokenInfo {
                id: token_id(k.value()),
                name: rec.name,
                user: owner.to_string(),
                created: rec.created,
                expires: rec.expires,
            });
        }
        out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(out)
    }

    /// Revokes the token with `id` (only if it belongs to `owner`, when given).
    pub fn revoke_token(&self, id: &str, owner: Option<&str>) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        let n = remove_tokens_where(&tx, |hash, user| {
            token_id(hash) == id && owner.is_none_or(|o| o == user)
        })?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("no token with id '{id}'")));
        }
        tx.commit()?;
        Ok(())
    }

    /// The user an API token belongs to, if the token is known and not expired at `now` and
    /// the user still exists.
    pub fn api_user(&self, token: &str, now: i64) -> Result<Option<Caller>, StoreError> {
        let hash = token_hash(token);
        let tx = self.db.begin_read()?;
        let Some(user) = tx
            .open_table(API_TOKENS)?
            .get(hash.as_slice())?
            .map(|v| v.value().to_string())
        else {
            return Ok(None);
        };
        if let Some(v) = tx.open_table(TOKEN_INFO)?.get(hash.as_slice())? {
            let rec: TokenRec = decode("token", v.value())?;
            if rec.expires.is_some_and(|e| now >= e) {
                return Ok(None);
            }
        }
        let users = tx.open_table(USERS)?;
        let Some(v) = users.get(user.as_str())? else {
            return Ok(None);
        };
        let r: UserRec = decode(&format!("user {user}"), v.value())?;
        Ok(Some(Caller {
            role: role_of(&user, &r)?,
            name: user,
        }))
    }
}

/// Removes the tokens for which `pick(hash, user)` holds; returns how many.
fn remove_tokens_where(
    tx: &redb::WriteTransaction,
    pick: impl Fn(&[u8], &str) -> bool,
) -> Result<usize, StoreError> {
    let mut t = tx.open_table(API_TOKENS)?;
    let mut info = tx.open_table(TOKEN_INFO)?;
    let mut stale = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        if pick(k.value(), v.value()) {
            stale.push(k.value().to_vec());
        }
    }
    for k in &stale {
        t.remove(k.as_slice())?;
        info.remove(k.as_slice())?;
    }
    Ok(stale.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_revoke_and_die_with_their_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("umc.redb")).expect("open");
        let h = hash_password("pw").expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        s.add_user("v", Role::Viewer, &h, 1).expect("add");
        assert!(s.check_password("v", "pw").expect("check").is_some());
        assert!(s.check_password("v", "nope").expect("check").is_none());
        let t = s
            .add_api_token("tok", "v", "x", 1, Some(100))
            .expect("token");
        let caller = s.api_user("tok", 99).expect("lookup").expect("valid");
        assert_eq!(caller.role, Role::Viewer);
        assert!(s.api_user("tok", 100).expect("lookup").is_none(), "expired");
        assert!(s.revoke_token(&t.id, Some("other")).is_err(), "not theirs");
        s.add_api_token("tok2", "v", "y", 1, None).expect("token");
        s.remove_user("v").expect("rm");
        assert!(s.api_user("tok2", 2).expect("lookup").is_none());
        assert!(s.tokens(None).expect("list").is_empty());
    }

    #[test]
    fn the_bootstrap_token_replaces_only_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("umc.redb")).expect("open");
        s.ensure_admin_user("admin", 1).expect("admin");
        assert!(
            s.replace_bootstrap_token("admin", "boot1", 1)
                .expect("boot")
                .is_empty()
        );
        s.add_api_token("ci", "admin", "ci-token", 2, None)
            .expect("token");
        // The same file again (a plain restart) revokes nothing.
        assert!(
            s.replace_bootstrap_token("admin", "boot1", 3)
                .expect("boot")
                .is_empty()
        );
        // A new admin.token revokes the old one only.
        let gone = s
            .replace_bootstrap_token("admin", "boot2", 4)
            .expect("boot");
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].name, BOOTSTRAP_LABEL);
        assert!(s.api_user("boot1", 5).expect("lookup").is_none());
        assert!(s.api_user("boot2", 5).expect("lookup").is_some());
        assert!(s.api_user("ci", 5).expect("lookup").is_some());
        assert!(matches!(
            s.add_api_token("x", "admin", BOOTSTRAP_LABEL, 6, None),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn token_labels_and_counts_are_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("umc.redb")).expect("open");
        let long = "x".repeat(MAX_TOKEN_LABEL + 1);
        assert!(s.add_api_token("a", "v", &long, 1, None).is_err());
        assert!(s.add_api_token("a", "v", "bad\u{1b}[2J", 1, None).is_err());
        assert!(s.tokens(None).expect("list").is_empty(), "nothing stored");
        for i in 0..MAX_TOKENS_PER_USER {
            s.add_api_token(&format!("t{i}"), "v", "ok", 1, None)
                .expect("token");
        }
        assert!(matches!(
            s.add_api_token("one-more", "v", "ok", 1, None),
            Err(StoreError::Conflict(_))
        ));
        // Another user has its own allowance.
        s.add_api_token("w1", "w", "ok", 1, None).expect("token");
    }

    /// Security issue 13: expired tokens do not count toward the cap; they are removed when
    /// their user adds one, so a user cannot pile them up either.
    #[test]
    fn expired_tokens_do_not_count_toward_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("umc.redb")).expect("open");
        s.ensure_admin_user("v", 1).expect("user");
        for i in 0..MAX_TOKENS_PER_USER - 1 {
            s.add_api_token(&format!("t{i}"), "v", "ok", 1, Some(100))
                .expect("token");
        }
        // One that never expires, and one that expires at 200.
        s.add_api_token("keep", "v", "ok", 1, None).expect("token");
        assert!(matches!(
            s.add_api_token("late", "v", "ok", 99, Some(200)),
            Err(StoreError::Conflict(_))
        ));
        // At 100 the first 99 have expired: they no longer count, and are gone.
        s.add_api_token("late", "v", "ok", 100, Some(200))
            .expect("expired tokens do not count");
        let held = s.tokens(Some("v")).expect("list");
        assert_eq!(held.len(), 2, "{held:?}");
        assert!(s.api_user("keep", 150).expect("lookup").is_some());
        assert!(s.api_user("late", 150).expect("lookup").is_some());
        // Another user's expired tokens are not this add's business.
        s.add_api_token("w", "w", "ok", 1, Some(2)).expect("token");
        s.add_api_token("v2", "v", "ok", 300, None).expect("token");
        assert_eq!(s.tokens(Some("w")).expect("list").len(), 1);
        assert_eq!(
            s.tokens(Some("v")).expect("list").len(),
            2,
            "late expired at 200"
        );
    }
}
