//! `tether-host`: the relay client, the pty daemon's supervisor, the health endpoint and
//! the local control API (contract sections 4 and 5).

pub mod control;
pub mod control_api;
pub mod control_client;
pub mod hub;
pub mod instance;
pub mod oauth_flows;
pub mod relay_client;
pub mod relay_connect;
pub mod relay_link;
pub use tether_contract::relay_protocol;
pub mod routes;
pub mod run;
pub mod service;
pub mod state;
pub mod streams;
pub mod supervisor;
pub mod terminals;
