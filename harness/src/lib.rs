//! The tether conformance harness: a strict reference authorization server (on
//! `wiremock`) and relay, and end-to-end scenarios that run the real `tether`,
//! `tether-host` and `tether-ptyd` binaries against them (contract sections 2–5).

pub mod authserver;
pub mod bench;
pub mod clock;
pub mod forward_proxy;
pub mod hostile_api;
pub mod keys;
pub mod lock;
pub mod relay;
pub mod report;
pub mod scenarios;
pub mod server_runtime;
pub mod soak;
pub mod tls;
pub mod transcript;
