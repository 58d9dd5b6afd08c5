//! `tether-host`: the relay client, the pty daemon's supervisor, the health endpoint and
//! the local control API (contract sections 4 and 5).

pub(crate) mod control;
pub(crate) mod hub;
pub(crate) mod instance;
pub(crate) mod lifecycle;
pub(crate) mod oauth_flows;
pub(crate) mod relay;
pub(crate) mod routes;
pub(crate) mod run;
pub(crate) mod service;
pub(crate) mod state;
pub(crate) mod streams;
pub(crate) mod supervisor;
pub(crate) mod terminals;

pub use control::client::status as control_status;
pub use instance::{read_info, InstancePaths};
pub use routes::{answer_relayed, is_internal};
pub use run::run;
pub use state::HostState;
