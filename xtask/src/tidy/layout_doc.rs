//! Every module named in `docs/LAYOUT.md`, in its crate's section: a reader finds where a
//! thing lives from that page and the folder names alone.

use std::path::{Path, PathBuf};

use super::Violation;

/// The modules of `krate`'s `src/` that its section of `doc` does not name; `files` are
/// the crate's `.rs` files.
pub fn check(root: &Path, krate: &str, files: &[PathBuf], doc: &str) -> Vec<Violation> {
    let src = root.join(krate).join("src");
    let Some(section) = section(doc, krate) else {
        return vec![Violation {
            path: "docs/LAYOUT.md".into(),
            line: 0,
            what: format!("has no section `## {krate}/` for the crate in {krate}/"),
        }];
    };
    let mut violations = Vec::new();
    for path in files {
        let Ok(inside) = path.strip_prefix(&src) else {
            continue;
        };
        let Some(name) = module_name(inside) else {
            continue;
        };
        if !names(section, &name) {
            violations.push(Violation {
                path: path.strip_prefix(root).unwrap_or(path).to_path_buf(),
                line: 0,
                what: format!(
                    "not named in docs/LAYOUT.md's `## {krate}/` section: say what `{name}` holds"
                ),
            });
        }
    }
    violations
}

/// The text from `## <krate>/` to the next `## ` heading.
fn section<'a>(doc: &'a str, krate: &str) -> Option<&'a str> {
    let heading = format!("## {krate}/");
    let start = doc
        .match_indices(&heading)
        .find(|(at, _)| *at == 0 || doc[..*at].ends_with('\n'))?
        .0;
    let rest = &doc[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    Some(&rest[..end])
}

/// How LAYOUT.md names a module file: `name.rs`, or `folder/` for a `mod.rs`. The crate
/// roots (`lib.rs`, `main.rs`) need no name.
fn module_name(inside_src: &Path) -> Option<String> {
    let file = inside_src.file_name()?.to_str()?;
    match file {
        "lib.rs" | "main.rs" if inside_src.parent() == Some(Path::new("")) => None,
        "mod.rs" => {
            let folder = inside_src.parent()?.file_name()?.to_str()?;
            Some(format!("{folder}/"))
        }
        _ => Some(file.to_string()),
    }
}

/// Whether `text` holds `name` as a word of a code span: after a backquote, slash, brace,
/// comma or space, and (for a file) before a backquote, comma, brace, parenthesis or space.
fn names(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        let starts = matches!(before, Some('`' | '/' | '{' | ',' | ' '));
        let ends = name.ends_with('/') || matches!(after, Some('`' | ',' | '}' | ')' | ' '));
        starts && ends
    })
}
