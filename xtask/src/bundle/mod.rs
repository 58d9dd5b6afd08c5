//! Bundles (their layout is declared in `tether-contract`): packing them into byte-identical
//! archives, their manifest, inspecting the binaries inside, and verifying a finished
//! archive.

pub mod archive;
pub mod binary;
pub mod dependencies;
pub mod digest;
pub mod manifest;
pub mod release_key;
pub mod verify;
