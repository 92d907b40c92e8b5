//! Users, passwords and API tokens as policy: which user names, token labels and passwords
//! are allowed, how many tokens a user may hold, and argon2id, which hashes and checks
//! passwords. `store::users` only keeps the records.

use crate::api::{Role, TokenCreated, TokenInfo, UserInfo};
use crate::store::{self, BOOTSTRAP_LABEL, Caller};

use super::{App, AppError};

/// The longest token label, in bytes.
pub const MAX_TOKEN_LABEL: usize = 128;
/// The most API tokens one user may hold (admin.token included).
pub const MAX_TOKENS_PER_USER: usize = 100;
/// The longest password, in bytes: argon2 reads all of it.
pub const MAX_PASSWORD: usize = 1024;

/// A user name: 1 to 64 of `[a-z0-9._-]`, starting with a letter or digit.
pub fn check_user_name(name: &str) -> Result<(), AppError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(AppError::Invalid(format!(
            "user name '{name}': use 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
        )))
    }
}

/// A token label: at most [`MAX_TOKEN_LABEL`] bytes, no control characters, not the reserved
/// [`BOOTSTRAP_LABEL`].
pub fn check_token_label(label: &str) -> Result<(), AppError> {
    if label.len() > MAX_TOKEN_LABEL {
        return Err(AppError::Invalid(format!(
            "token label: {} bytes is longer than {MAX_TOKEN_LABEL}",
            label.len()
        )));
    }
    if label.chars().any(char::is_control) {
        return Err(AppError::Invalid(
            "token label: control characters are not allowed".into(),
        ));
    }
    if label == BOOTSTRAP_LABEL {
        return Err(AppError::Invalid(format!(
            "token label '{BOOTSTRAP_LABEL}' is reserved for umcd's own admin token"
        )));
    }
    Ok(())
}

/// At least 8 characters (the hash is slow, but a 3-letter password is still guessed), at
/// most [`MAX_PASSWORD`] bytes.
pub fn check_password_policy(password: &str) -> Result<(), AppError> {
    if password.chars().count() < 8 {
        return Err(AppError::Invalid(
            "password: use at least 8 characters".into(),
        ));
    }
    if password.len() > MAX_PASSWORD {
        return Err(AppError::Invalid(format!(
            "password: use at most {MAX_PASSWORD} bytes"
        )));
    }
    Ok(())
}

/// argon2id with the crate's defaults (RFC 9106 / OWASP: m=19 MiB, t=2, p=1) and a random salt.
pub fn hash_password(password: &str) -> Result<String, AppError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| AppError::internal(format!("no OS random source: {e}")))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| AppError::internal(format!("hashing password: {e}")))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(format!("hashing password: {e}")))
}

/// A hash of a random password with the same parameters as real ones, made once.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        hash_password(&store::random_token()).unwrap_or_else(|_| {
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

/// Whose tokens `caller` may list and revoke: an admin every user's (`None`), anyone else
/// its own.
fn token_owner(caller: &Caller) -> Option<&str> {
    (caller.role != Role::Admin).then_some(caller.name.as_str())
}

impl App {
    /// Every user with its role and creation time (never a password hash).
    pub fn users(&self) -> Result<Vec<UserInfo>, AppError> {
        Ok(self.store.users()?)
    }

    /// Removes user `name` and every token of it.
    pub fn remove_user(&self, name: &str) -> Result<(), AppError> {
        Ok(self.store.remove_user(name)?)
    }

    /// The role of user `name`, or none when it does not exist (any more): what a console
    /// session is checked against on every request.
    pub fn user_role(&self, name: &str) -> Result<Option<Role>, AppError> {
        Ok(self.store.user_role(name)?)
    }

    /// Who an API token belongs to, if it is known, unexpired at `now` and its user exists.
    pub fn api_user(&self, token: &str, now: i64) -> Result<Option<Caller>, AppError> {
        Ok(self.store.api_user(token, now)?)
    }

    /// The tokens `caller` may see: an admin every one, anyone else its own.
    pub fn tokens(&self, caller: &Caller) -> Result<Vec<TokenInfo>, AppError> {
        Ok(self.store.tokens(token_owner(caller))?)
    }

    /// Revokes the token with `id`, if `caller` may (an admin any, anyone else its own).
    pub fn revoke_token(&self, caller: &Caller, id: &str) -> Result<(), AppError> {
        Ok(self.store.revoke_token(id, token_owner(caller))?)
    }

    /// Adds user `name` with `role` and `password` (argon2id; slow by design: call it off the
    /// async runtime).
    pub fn add_user(
        &self,
        name: &str,
        role: Role,
        password: &str,
        now: i64,
    ) -> Result<UserInfo, AppError> {
        check_user_name(name)?;
        check_password_policy(password)?;
        let hash = hash_password(password)?;
        self.store.add_user(name, role, &hash, now)?;
        Ok(UserInfo {
            name: name.to_string(),
            role,
            created: now,
            has_password: true,
        })
    }

    /// Sets the password of user `name` (argon2id, like [`App::add_user`]).
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), AppError> {
        check_password_policy(password)?;
        let hash = hash_password(password)?;
        Ok(self.store.set_password(name, &hash)?)
    }

    /// The user `name` if `password` is its password (argon2id; slow by design: call it off
    /// the async runtime). An unknown user, or one without a password, costs the same time
    /// as a wrong password, so a login's timing does not tell which user names exist.
    pub fn check_password(&self, name: &str, password: &str) -> Result<Option<Caller>, AppError> {
        let found = self.store.password_record(name)?;
        match found {
            Some(r)
                if r.hash
                    .as_deref()
                    .is_some_and(|h| verify_password(h, password)) =>
            {
                Ok(Some(Caller {
                    name: name.to_string(),
                    role: r.role,
                }))
            }
            Some(r) if r.hash.is_some() => Ok(None),
            _ => {
                verify_password(dummy_hash(), password);
                Ok(None)
            }
        }
    }

    /// Makes a new API token for `user`, labelled `label` (see [`check_token_label`]);
    /// refused when the user holds [`MAX_TOKENS_PER_USER`] already. The token is shown once:
    /// the store keeps only its hash.
    pub fn create_token(
        &self,
        user: &str,
        label: &str,
        now: i64,
        expires: Option<i64>,
    ) -> Result<TokenCreated, AppError> {
        check_token_label(label)?;
        let token = store::random_token();
        let info =
            self.store
                .add_api_token(&token, user, label, now, expires, MAX_TOKENS_PER_USER)?;
        Ok(TokenCreated { info, token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::ErrorKind;
    use crate::app::testing::app;

    #[test]
    fn passwords_are_argon2id_and_checked_in_constant_work() {
        let (_dir, app) = app();
        let h = hash_password("pw").expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        let short = app.add_user("v", Role::Viewer, "short", 1).unwrap_err();
        assert_eq!(short.kind(), ErrorKind::Invalid);
        let bad = app
            .add_user("V!", Role::Viewer, "long enough", 1)
            .unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::Invalid);
        app.add_user("v", Role::Viewer, "long enough", 1)
            .expect("add");
        let c = app.check_password("v", "long enough").expect("check");
        assert_eq!(c.map(|c| c.role), Some(Role::Viewer));
        assert!(app.check_password("v", "nope").expect("check").is_none());
        assert!(app.check_password("nobody", "x").expect("check").is_none());
        app.set_password("v", "another one").expect("passwd");
        assert!(
            app.check_password("v", "long enough")
                .expect("check")
                .is_none()
        );
        assert!(
            app.check_password("v", "another one")
                .expect("check")
                .is_some()
        );
        // The bootstrap user has no password: nothing logs in as it.
        app.store.ensure_admin_user("admin", 1).expect("admin");
        assert!(app.check_password("admin", "").expect("check").is_none());
    }

    #[test]
    fn token_labels_are_bounded_and_the_bootstrap_label_is_reserved() {
        let (_dir, app) = app();
        let long = "x".repeat(MAX_TOKEN_LABEL + 1);
        for label in [long.as_str(), "bad\u{1b}[2J", BOOTSTRAP_LABEL] {
            let e = app.create_token("v", label, 1, None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Invalid, "{label:?}: {e}");
        }
        assert!(
            app.store.tokens(None).expect("list").is_empty(),
            "nothing stored"
        );
        for _ in 0..MAX_TOKENS_PER_USER {
            app.create_token("v", "ok", 1, None).expect("token");
        }
        let e = app.create_token("v", "ok", 1, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        app.store.ensure_admin_user("w", 1).expect("user");
        let made = app.create_token("w", "ok", 1, None).expect("another user");
        let w = app.api_user(&made.token, 2).expect("lookup").expect("w");
        assert_eq!((w.name.as_str(), w.role), ("w", Role::Admin));
    }

    #[test]
    fn only_an_admin_sees_and_revokes_other_users_tokens() {
        let (_dir, app) = app();
        app.add_user("v", Role::Viewer, "long enough", 1)
            .expect("v");
        app.add_user("a", Role::Admin, "long enough", 1).expect("a");
        let v = app
            .check_password("v", "long enough")
            .expect("v")
            .expect("v");
        let a = app
            .check_password("a", "long enough")
            .expect("a")
            .expect("a");
        let theirs = app.create_token("a", "ci", 1, None).expect("token").info;
        let mine = app.create_token("v", "cli", 1, None).expect("token").info;
        let ids = |c: &Caller| -> Vec<String> {
            app.tokens(c)
                .expect("list")
                .into_iter()
                .map(|t| t.id)
                .collect()
        };
        assert_eq!(ids(&v), std::slice::from_ref(&mine.id));
        assert_eq!(ids(&a).len(), 2);
        let e = app.revoke_token(&v, &theirs.id).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        app.revoke_token(&a, &mine.id)
            .expect("an admin revokes any");
        assert_eq!(ids(&a), [theirs.id]);
        app.remove_user("v").expect("rm");
        assert_eq!(app.user_role("v").expect("role"), None);
        assert_eq!(app.users().expect("users").len(), 1);
    }
}
