//! The tether runtime: the `tether` CLI, the `tether-host` service and the
//! `tether-ptyd` pty daemon, with the auth core they share.
//!
//! The binaries in `src/bin/` are thin: they parse arguments, call into this
//! library and map errors to the exit codes of the contract (section 1).

#![warn(missing_docs)]

pub mod auth;
mod backoff;
mod bundle;
mod child_env;
pub mod cli;
pub mod daemon;
pub mod host;
pub mod http_server;
pub mod logging;
mod metrics;
pub mod net;
mod private_file;
mod private_socket;
pub mod process;
pub mod ptyd;
pub mod release;
pub mod settings;
mod sliding_window;
mod sync;
pub mod version;

/// An organization id that passed contract section 1's rule.
pub use tether_contract::org_id::{self, OrgId};
