//! Organization ids (contract section 1): 1–128 bytes of `[A-Za-z0-9._:-]`, not starting
//! with `.`. An id reaches file names, unit files, socket paths and log lines, so it is checked
//! once where it enters (the CLI, the server's session, a JWT) and carried as an [`OrgId`],
//! which cannot hold anything else.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest organization id, in bytes.
pub const MAX_LEN: usize = 128;

/// An organization id that passed the contract's rule; safe in a path, a unit file or a log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgId(String);

/// Why a value is not an organization id; its `Display` shows the value escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOrgId {
    /// The refused value, escaped so that it prints as one line of plain text.
    pub escaped: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for InvalidOrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid organization id \"{}\": {} (1-{MAX_LEN} characters of A-Z a-z 0-9 . _ : -, not starting with .)",
            self.escaped, self.reason
        )
    }
}

impl std::error::Error for InvalidOrgId {}

impl OrgId {
    /// Checks `value` against the contract's rule.
    pub fn parse(value: &str) -> Result<OrgId, InvalidOrgId> {
        let refuse = |reason| {
            Err(InvalidOrgId {
                escaped: escape(value),
                reason,
            })
        };
        if value.is_empty() {
            return refuse("it is empty");
        }
        if value.len() > MAX_LEN {
            return refuse("it is longer than 128 bytes");
        }
        if value.starts_with('.') {
            return refuse("it starts with a dot");
        }
        if !value.bytes().all(allowed) {
            return refuse("it holds a character outside the allowed set");
        }
        Ok(OrgId(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn allowed(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b':' | b'-')
}

/// `value` with every character outside printable ASCII escaped, cut at 200 characters.
fn escape(value: &str) -> String {
    let escaped: String = value.escape_default().collect();
    if escaped.chars().count() > 200 {
        let mut cut: String = escaped.chars().take(200).collect();
        cut.push('…');
        cut
    } else {
        escaped
    }
}

impl TryFrom<String> for OrgId {
    type Error = InvalidOrgId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        OrgId::parse(&value)
    }
}

impl From<OrgId> for String {
    fn from(org: OrgId) -> String {
        org.0
    }
}

impl std::str::FromStr for OrgId {
    type Err = InvalidOrgId;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        OrgId::parse(value)
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for OrgId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for OrgId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<std::path::Path> for OrgId {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

impl std::ops::Deref for OrgId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for OrgId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for OrgId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_set() {
        for ok in ["org_a", "a", "Org-1.2:x", &"x".repeat(128)] {
            assert_eq!(OrgId::parse(ok).map(|o| o.0), Ok(ok.to_string()));
        }
    }

    #[test]
    fn refuses_paths_newlines_and_the_rest() {
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "../../../../victim/x",
            "a/b",
            "a\n[Service]\nUser=root",
            "a b",
            "a%2f",
            "é",
            "a\0",
            &"x".repeat(129),
        ] {
            let err = OrgId::parse(bad).expect_err(bad);
            assert!(!err.to_string().contains('\n'), "{err}");
        }
    }

    #[test]
    fn the_refusal_shows_the_value_escaped() {
        let err = OrgId::parse("a\n[Service]\u{1b}]0;x\u{7}").unwrap_err();
        assert_eq!(err.escaped, "a\\n[Service]\\u{1b}]0;x\\u{7}");
    }

    #[test]
    fn deserialising_checks_the_rule() {
        let ok: OrgId = serde_json::from_str("\"org_a\"").unwrap();
        assert_eq!(ok, "org_a");
        let err = serde_json::from_str::<OrgId>("\"../x\"").unwrap_err();
        assert!(err.to_string().contains("invalid organization id"), "{err}");
    }
}
