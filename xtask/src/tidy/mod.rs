//! `cargo xtask tidy`: the house rules, checked instead of remembered. No source file over
//! 450 lines, no function over 80, no `#[path]` include, every module named in
//! `docs/LAYOUT.md`, and no `pub mod` in the runtime outside its façade (`lib.rs`).

mod layout_doc;
mod lengths;
mod modules;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The longest a source file may be, in lines.
pub const MAX_FILE_LINES: usize = 450;
/// The longest a function may be, in lines (from `fn` to its closing brace).
pub const MAX_FN_LINES: usize = 80;
/// The workspace's crates, by folder.
const CRATES: [&str; 4] = ["contract", "runtime", "harness", "xtask"];

/// One broken rule, where it is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The file, relative to the workspace root.
    pub path: PathBuf,
    /// The line (1-based), or 0 for the whole file.
    pub line: usize,
    /// What is wrong, in words a reader can act on.
    pub what: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.path.display(), self.what),
            line => write!(f, "{}:{line}: {}", self.path.display(), self.what),
        }
    }
}

/// Checks the workspace at the project root; fails naming every violation.
pub fn run() -> anyhow::Result<()> {
    let root = crate::flags::project_root();
    let violations = check(&root)?;
    if violations.is_empty() {
        println!("tidy: every rule holds");
        return Ok(());
    }
    for violation in &violations {
        eprintln!("{violation}");
    }
    anyhow::bail!("tidy: {} rule violation(s), listed above", violations.len())
}

/// Every violation in the workspace at `root`.
pub fn check(root: &Path) -> anyhow::Result<Vec<Violation>> {
    let layout_doc = std::fs::read_to_string(root.join("docs/LAYOUT.md"))
        .context("reading docs/LAYOUT.md (tidy checks every module is named in it)")?;
    let mut violations = Vec::new();
    for krate in CRATES {
        let files = rust_files(&root.join(krate))?;
        for path in &files {
            let relative = path.strip_prefix(root).unwrap_or(path).to_path_buf();
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let file = match syn::parse_file(&text) {
                Ok(file) => file,
                Err(e) => {
                    violations.push(Violation {
                        path: relative,
                        line: e.span().start().line,
                        what: format!("does not parse: {e}"),
                    });
                    continue;
                }
            };
            violations.extend(lengths::check(&relative, &text, &file));
            violations.extend(modules::check(&relative, &file));
        }
        violations.extend(layout_doc::check(root, krate, &files, &layout_doc));
    }
    Ok(violations)
}

/// Every `.rs` file under `dir`, sorted, skipping build output and snapshots.
fn rust_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        for entry in entries {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !matches!(name, "target" | "snapshots") && !name.starts_with('.') {
                    pending.push(path);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}
