//! Bundles: their layout (declared once, in the runtime), packing them into byte-identical
//! archives, their manifest, inspecting the binaries inside, and verifying a finished
//! archive.

pub mod archive;
pub mod binary;
pub mod digest;
/// The bundle layout the runtime declares (constants only, shared by path).
#[path = "../../../runtime/src/bundle/layout.rs"]
pub mod layout;
pub mod manifest;
pub mod verify;
