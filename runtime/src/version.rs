//! What build this is: version, git commit and target triple, baked in by `build.rs`.

/// The crate version, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Short git commit the binary was built from, or `unknown` outside a checkout.
pub const GIT_SHA: &str = env!("TETHER_GIT_SHA");
/// The Rust target triple the binary was compiled for.
pub const TARGET: &str = env!("TETHER_TARGET");
/// The text after the binary name in `--version`: `<ver> (<git sha> <target triple>)`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("TETHER_GIT_SHA"),
    " ",
    env!("TETHER_TARGET"),
    ")"
);
