//! Wire types of the admin API (`/api/v1`), shared by `umcd` and `umc-admin`, one file per
//! concept and every type re-exported here (`api::NodeInfo`).
//!
//! These are the only serde types that cross the network; storage has its own records in
//! `store`, so the database format and the API can evolve separately.

use serde::{Deserialize, Serialize};

mod audit;
mod catalog;
mod edit;
mod fleet;
mod history;
mod keys;
mod nodes;
mod status;
mod tasks;
mod users;

pub use audit::*;
pub use catalog::*;
pub use edit::*;
pub use fleet::*;
pub use history::*;
pub use keys::*;
pub use nodes::*;
pub use status::*;
pub use tasks::*;
pub use users::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub version: String,
    pub generation: u64,
    pub architectures: Vec<String>,
    pub key_fingerprints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
