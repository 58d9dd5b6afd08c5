//! `tether-ptyd`: terminals that outlive their clients, served over a Unix socket
//! with length-prefixed frames (contract section 6).

pub(crate) mod client;
pub(crate) mod frame;
mod input;
mod pty_thread;
pub(crate) mod reaper;
pub(crate) mod replay;
pub(crate) mod server;
pub(crate) mod session;
pub(crate) mod spawn;
mod subscriber;
pub(crate) mod upgrade;

pub use client::{Incoming, PtydClient};
pub use frame::{encode as encode_frame, encode_message, read_frame};
pub use server::serve;
pub use spawn::raise_file_limit;
pub use upgrade::formats_line;
