//! Reading a minisign public key file: its base64 line and the key id minisign prints.
//! The runtime's build script and `cargo xtask` both read keys with it, so the key baked
//! into `tether` and the id `manifest.json` records agree.

use base64::Engine;

/// The base64 line of a minisign public key file (the line after the comment).
pub fn key_line(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("untrusted comment:"))
}

/// The key id, as `minisign` prints it (16 upper-case hex digits), of a base64 public key;
/// `None` unless it is an Ed25519 minisign key (`Ed`, an 8-byte id, 32 key bytes).
pub fn key_id(base64_key: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_key)
        .ok()?;
    if bytes.len() != 42 || &bytes[..2] != b"Ed" {
        return None;
    }
    let id = u64::from_le_bytes(bytes[2..10].try_into().ok()?);
    Some(format!("{id:016X}"))
}
