//! The host's local control API (contract section 5): the documents both sides speak,
//! the server on the control socket and the health port, and the client the CLI uses.

pub(crate) mod api;
pub(crate) mod client;
mod server;

pub(crate) use server::{control_router, health_router};
