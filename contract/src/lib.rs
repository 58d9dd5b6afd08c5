//! The parts of the contract (`shared/CONTRACT.md`) that both sides of a process boundary
//! compile in: the relay's wire protocol and the environment variables the runtime reads.
//! The runtime re-exports them; the conformance harness depends on this crate alone, so a
//! change in the runtime never rebuilds the reference servers.
#![warn(missing_docs)]

pub mod environment;
pub mod org_id;
pub mod relay_protocol;
