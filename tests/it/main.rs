//! The integration tests, one module per area, linked into one binary (one link instead of
//! one per file, and one copy of `common` and of umc's debug info on disk). A module's tests
//! run alone with `cargo test --test it <module>::`, e.g. `cargo test --test it conn::`.
//!
//! The tests of all modules run in parallel in one process: each starts its own umcd on its
//! own port and data directory, and none changes process-wide state another test reads.

mod common;

mod apt;
mod apt_auth;
mod authz;
mod backup;
mod browser_smoke;
mod catalog;
mod chroot;
mod cli_output;
mod conn;
mod deb;
mod export;
mod faults;
mod fuzz;
mod golden;
mod keys;
mod metrics;
mod rotation;
mod server;
mod sign;
mod ssh;
mod status;
mod template_budget;
mod templates;
mod tls;
mod ui;
mod ui_browser;
mod ui_nodes;
mod ui_tasks;
mod users;
