//! Bundles: their layout (declared once, in the runtime), packing them into byte-identical
//! archives, their manifest, inspecting the binaries inside, and verifying a finished
//! archive.

pub mod archive;
pub mod binary;
pub mod dependencies;
pub mod digest;
/// Reading minisign public key files (the runtime's file, shared by path).
#[path = "../../../runtime/src/release/key_file.rs"]
pub mod key_file;
/// The bundle layout the runtime declares (constants only, shared by path; xtask does not
/// need every one).
#[allow(dead_code)]
#[path = "../../../runtime/src/bundle/layout.rs"]
pub mod layout;
pub mod manifest;
pub mod release_key;
pub mod verify;
