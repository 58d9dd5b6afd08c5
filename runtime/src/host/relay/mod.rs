//! The host's side of the relay (contract section 4): dialing and the handshake, the
//! loop that keeps a connection up (rotation, reconnects), and one connection at work.

pub(crate) mod connection;
pub(crate) mod dial;
pub(crate) mod reconnect;
