//! `tether-ptyd`: terminals that outlive their clients, served over a Unix socket
//! with length-prefixed frames (contract section 6).

pub mod client;
pub mod frame;
mod input;
pub mod protocol;
mod pty_thread;
pub mod reaper;
pub mod replay;
pub mod server;
pub mod session;
pub mod spawn;
mod subscriber;
pub mod upgrade;
