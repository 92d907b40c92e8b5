//! Nodes as the API shows them: their settings, variables, tokens and rendered files.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::ModelError;

/// Where `umc-admin` reaches a node over SSH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshTarget {
    pub user: String,
    pub address: String,
    pub port: u16,
}

impl SshTarget {
    /// Parses `user@address[:port]` (IPv6 addresses in brackets).
    pub fn parse(s: &str) -> Result<SshTarget, ModelError> {
        let err = || ModelError::InvalidSsh(s.to_string());
        let (user, rest) = s.split_once('@').ok_or_else(err)?;
        if user.is_empty()
            || !user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(err());
        }
        let (address, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (addr, tail) = v6.split_once(']').ok_or_else(err)?;
            let port = match tail.strip_prefix(':') {
                Some(p) => p.parse::<u16>().map_err(|_| err())?,
                None if tail.is_empty() => 22,
                None => return Err(err()),
            };
            (addr.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((a, p)) => (a.to_string(), p.parse::<u16>().map_err(|_| err())?),
                None => (rest.to_string(), 22),
            }
        };
        if address.is_empty()
            || port == 0
            || !address
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        {
            return Err(err());
        }
        Ok(SshTarget {
            user: user.to_string(),
            address,
            port,
        })
    }
}

impl fmt::Display for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.address.contains(':') {
            write!(f, "{}@[{}]:{}", self.user, self.address, self.port)
        } else {
            write!(f, "{}@{}:{}", self.user, self.address, self.port)
        }
    }
}

/// Variables as the caller may see them (`GET /nodes…`, `GET /vars`): every name, and its
/// value, or `None` (JSON `null`) when the caller's role may not read values. Templates render
/// variables into files, secrets included, so a viewer gets the names only; see
/// `app::VAR_VALUES`.
pub type VarValues = BTreeMap<String, Option<String>>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub package: String,
    pub version: String,
    pub vars: VarValues,
    pub tasks: Vec<String>,
    /// The closure of the assigned tasks, sorted.
    pub task_closure: Vec<String>,
    pub ssh: Option<SshTarget>,
    /// umcd's URL as the node reaches it; `None` until enrolled.
    #[serde(default)]
    pub url: Option<String>,
    /// The node's own conffile policy; `None` follows umcd's default.
    #[serde(default)]
    pub conffiles: Option<String>,
    /// A token rotation under way (never the old token itself).
    #[serde(default)]
    pub rotation: Option<TokenRotation>,
    pub generation: u64,
}

/// A node token rotation under way: the previous token still authenticates until the node
/// reports, with its new token, `umc-node` at `until` or newer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRotation {
    /// The generation of the rotation.
    pub generation: u64,
    /// The first `umc-node` version that carries the new token.
    pub until: String,
}

/// `POST /api/v1/nodes/<host>/token`: rotate the node's token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRotateRequest {
    /// Revoke the old token at once (the node then needs the new one by hand).
    #[serde(default)]
    pub force: bool,
}

/// The answer to a rotation: the committed edit and the node's new token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRotateResponse {
    pub generation: u64,
    pub changes: Vec<String>,
    pub host: String,
    pub token: String,
    /// `None` after `force`: the old token no longer works.
    pub rotation: Option<TokenRotation>,
}

/// One file rendered for one host (`umc-admin render`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenderedFile {
    pub host: String,
    pub path: String,
    pub task: String,
    pub content: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeToken {
    pub host: String,
    pub token: String,
    /// A rotation under way (the previous token is never shown).
    #[serde(default)]
    pub rotation: Option<TokenRotation>,
    /// The CAs (PEM) a node trusts for umcd over https, when umcd serves its own CA's
    /// certificate: the enrollment line carries them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

/// `GET /api/v1/nodes/<host>/render?path=`: which file to render.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderQuery {
    pub path: String,
}
