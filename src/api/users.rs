//! Users, roles and API tokens.

use serde::{Deserialize, Serialize};

/// What a user may do. `admin` edits everything; `operator` edits nodes and assignments and
/// records fleet commands; `viewer` only reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A user as `GET /api/v1/users` lists it: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    pub created: i64,
    /// Whether a password is set (a user without one can only use tokens made for it).
    pub has_password: bool,
}

/// `POST /api/v1/users` (add) and `POST /api/v1/users/<name>/password`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub role: Option<Role>,
    pub password: String,
}

/// An API token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub user: String,
    pub created: i64,
    pub expires: Option<i64>,
}

/// `POST /api/v1/tokens`: a token for the calling user.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[serde(default)]
    pub name: String,
    /// Days until it expires; none: never.
    #[serde(default)]
    pub expires_days: Option<u32>,
}

/// The answer to `POST /api/v1/tokens`: the only time the token is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenCreated {
    pub info: TokenInfo,
    pub token: String,
}

/// The answer to `POST /api/v1/users/<name>/password` and `DELETE /api/v1/users/<name>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserChanged {
    pub user: String,
}

/// The answer to `DELETE /api/v1/tokens/<id>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRevoked {
    pub revoked: String,
}
