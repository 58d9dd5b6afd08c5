//! The parts of the contract (`shared/CONTRACT.md`) that both sides of a process boundary
//! compile in: the relay's wire protocol, the environment variables the runtime reads, the
//! release targets, the release bundle's layout, `latest.json` and minisign key files.
//! The runtime re-exports them; the conformance harness depends on this crate alone, so a
//! change in the runtime never rebuilds the reference servers.
#![warn(missing_docs)]

pub mod bundle_layout;
pub mod environment;
pub mod key_file;
pub mod latest_json;
pub mod org_id;
pub mod ptyd_protocol;
pub mod relay_protocol;
pub mod release_targets;
