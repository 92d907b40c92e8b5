//! umc: one admin runs a fleet of Debian/Ubuntu servers through apt.
//!
//! See ARCHITECTURE.md for the code map and its invariants.

// `pub` means "part of the library's surface": what no other module can reach is pub(crate).
// (Here rather than in Cargo.toml so that the test crates' shared helpers are not held to it.)
#![warn(unreachable_pub)]

pub mod api;
pub mod app;
pub mod backup;
pub mod cache;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod compress;
pub mod config;
pub mod deb;
pub mod fleetfile;
pub mod http;
pub mod model;
pub mod nodefiles;
pub mod repo;
pub mod report;
pub mod sandbox;
pub mod sign;
pub mod ssh;
pub mod store;
pub mod template;
pub mod time;
pub mod tls;

#[cfg(test)]
mod testing;
