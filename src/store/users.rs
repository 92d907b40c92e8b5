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

/// The label of the token umcd keeps for `<data>/admin.token`; reserved for it.
pub const BOOTSTRAP_LABEL: &str = "admin.token";

/// What a password check needs of a user: its role and its argon2id hash (none: no password
/// set). Hashing and checking are `app::auth`'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRecord {
    pub role: Role,
    pub hash: Option<String>,
}

fn token_id(hash: &[u8]) -> String {
    hex::encode(&hash[..6])
}

fn role_of(name: &str, r: &UserRec) -> Result<Role, StoreError> {
    Role::parse(&r.role)
        .ok_or_else(|| StoreError::corrupt(format!("user {name}"), format!("role '{}'", r.role)))
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

    /// Adds a user; `hash` is its argon2id hash (`app::auth` checks the name and hashes).
    pub fn add_user(&self, name: &str, role: Role, hash: &str, now: i64) -> Result<(), StoreError> {
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

    /// The role and password hash of user `name`, or none when it does not exist.
    pub fn password_record(&self, name: &str) -> Result<Option<PasswordRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(USERS)?;
        let Some(v) = t.get(name)? else {
            return Ok(None);
        };
        let r: UserRec = decode(&format!("user {name}"), v.value())?;
        Ok(Some(PasswordRecord {
            role: role_of(name, &r)?,
            hash: r.hash,
        }))
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

    /// Registers `token` (stored hashed) for `user`, labelled `name`; refused
    /// ([`StoreError::TokenLimit`]) when the user holds `limit` unexpired tokens already,
    /// checked in the same transaction (`app::auth` checks the label and sets the limit).
    /// The user's expired tokens are removed in that transaction: they can never work again,
    /// and kept they would let a user grow the table without bound (create a token that
    /// expires in a day, wait, repeat).
    pub fn add_api_token(
        &self,
        token: &str,
        user: &str,
        name: &str,
        now: i64,
        expires: Option<i64>,
        limit: usize,
    ) -> Result<TokenInfo, StoreError> {
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
            if held >= limit {
                return Err(StoreError::TokenLimit {
                    user: user.to_string(),
                    held,
                    limit,
                });
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
    use crate::store::tests::store;

    /// What `app::auth` stores for a password (the store never hashes).
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0000000000000000000000000000000000000000000";
    const LIMIT: usize = 100;

    #[test]
    fn tokens_expire_revoke_and_die_with_their_user() {
        let (_dir, s) = store();
        s.add_user("v", Role::Viewer, HASH, 1).expect("add");
        let r = s.password_record("v").expect("read").expect("user");
        assert_eq!((r.role, r.hash.as_deref()), (Role::Viewer, Some(HASH)));
        assert!(s.password_record("w").expect("read").is_none());
        assert!(matches!(
            s.add_user("v", Role::Admin, HASH, 2),
            Err(StoreError::Conflict(_))
        ));
        let t = s
            .add_api_token("tok", "v", "x", 1, Some(100), LIMIT)
            .expect("token");
        let caller = s.api_user("tok", 99).expect("lookup").expect("valid");
        assert_eq!(caller.role, Role::Viewer);
        assert!(s.api_user("tok", 100).expect("lookup").is_none(), "expired");
        assert!(s.revoke_token(&t.id, Some("other")).is_err(), "not theirs");
        s.add_api_token("tok2", "v", "y", 1, None, LIMIT)
            .expect("token");
        s.remove_user("v").expect("rm");
        assert!(s.api_user("tok2", 2).expect("lookup").is_none());
        assert!(s.tokens(None).expect("list").is_empty());
    }

    #[test]
    fn the_bootstrap_token_replaces_only_itself() {
        let (_dir, s) = store();
        s.ensure_admin_user("admin", 1).expect("admin");
        assert!(
            s.replace_bootstrap_token("admin", "boot1", 1)
                .expect("boot")
                .is_empty()
        );
        s.add_api_token("ci", "admin", "ci-token", 2, None, LIMIT)
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
    }

    #[test]
    fn a_user_holds_at_most_the_limit_of_tokens() {
        let (_dir, s) = store();
        for i in 0..3 {
            s.add_api_token(&format!("t{i}"), "v", "ok", 1, None, 3)
                .expect("token");
        }
        let e = s.add_api_token("one-more", "v", "ok", 1, None, 3);
        assert!(
            matches!(
                e,
                Err(StoreError::TokenLimit {
                    held: 3,
                    limit: 3,
                    ..
                })
            ),
            "{e:?}"
        );
        // Another user has its own allowance.
        s.add_api_token("w1", "w", "ok", 1, None, 3).expect("token");
    }

    /// Security issue 13: expired tokens do not count toward the cap; they are removed when
    /// their user adds one, so a user cannot pile them up either.
    #[test]
    fn expired_tokens_do_not_count_toward_the_cap() {
        let (_dir, s) = store();
        s.ensure_admin_user("v", 1).expect("user");
        for i in 0..LIMIT - 1 {
            s.add_api_token(&format!("t{i}"), "v", "ok", 1, Some(100), LIMIT)
                .expect("token");
        }
        // One that never expires, and one that expires at 200.
        s.add_api_token("keep", "v", "ok", 1, None, LIMIT)
            .expect("token");
        assert!(matches!(
            s.add_api_token("late", "v", "ok", 99, Some(200), LIMIT),
            Err(StoreError::TokenLimit { .. })
        ));
        // At 100 the first 99 have expired: they no longer count, and are gone.
        s.add_api_token("late", "v", "ok", 100, Some(200), LIMIT)
            .expect("expired tokens do not count");
        let held = s.tokens(Some("v")).expect("list");
        assert_eq!(held.len(), 2, "{held:?}");
        assert!(s.api_user("keep", 150).expect("lookup").is_some());
        assert!(s.api_user("late", 150).expect("lookup").is_some());
        // Another user's expired tokens are not this add's business.
        s.add_api_token("w", "w", "ok", 1, Some(2), LIMIT)
            .expect("token");
        s.add_api_token("v2", "v", "ok", 300, None, LIMIT)
            .expect("token");
        assert_eq!(s.tokens(Some("w")).expect("list").len(), 1);
        assert_eq!(
            s.tokens(Some("v")).expect("list").len(),
            2,
            "late expired at 200"
        );
    }
}
