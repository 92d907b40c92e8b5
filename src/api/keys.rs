//! The archive signing keys and their rotation.

use serde::{Deserialize, Serialize};

/// One signing key (`GET /api/v1/keys`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Primary key fingerprint, uppercase hex.
    pub fingerprint: String,
    /// Key creation time, Unix seconds.
    pub created: i64,
    pub algorithm: String,
    pub user_id: String,
    /// The generation that added it (`None`: umcd's first key, which every node has).
    pub added_generation: Option<u64>,
    pub added_by: Option<String>,
    /// The first `umc-node` version that ships it (`None`: every version).
    pub node_version: Option<String>,
}

/// `POST /api/v1/keys/import`: an exported secret key (`gpg --export-secret-keys`), armored
/// or binary, base64-encoded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyImportRequest {
    pub key_base64: String,
}

/// `POST /api/v1/keys/retire`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRetireRequest {
    pub fingerprint: String,
    /// Retire even though active nodes have not confirmed the remaining keys.
    #[serde(default)]
    pub force: bool,
}

/// What a key operation committed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyChangeResponse {
    pub generation: u64,
    /// The key added or retired.
    pub fingerprint: String,
    /// The signing keys now, newest first.
    pub keys: Vec<String>,
    /// Active nodes that had not confirmed the remaining keys (a forced retire).
    #[serde(default)]
    pub unconfirmed: Vec<String>,
}

/// One node in `GET /api/v1/keys/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyNodeStatus {
    pub host: String,
    /// Seen (report or InRelease fetch) within `stale_after_secs`: its confirmation counts
    /// for `key retire`.
    pub active: bool,
    /// `umc-node`'s installed version from the newest report.
    pub installed: Option<String>,
    /// The `umc-node` version that ships every current key.
    pub needed: String,
    /// The newest report shows `umc-node` at `needed` or newer.
    pub confirmed: bool,
}

/// `GET /api/v1/keys/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyStatus {
    pub keys: Vec<KeyInfo>,
    /// `umc-node` version that ships every current key (`1.0` when every node has them all).
    pub needed: String,
    pub nodes: Vec<KeyNodeStatus>,
}
