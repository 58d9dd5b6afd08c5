//! How modules are declared: no `#[path]` include, and the runtime's inside kept inside.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use syn::spanned::Spanned;
use syn::visit::Visit;

use super::Violation;

/// The runtime's `pub mod` lines outside the façade that are still allowed (`<file> <module>`).
const ALLOWED_PUB_MODS: &str = include_str!("pub_mods.txt");

/// `(file, module)` of every allowed `pub mod`.
pub fn allowed_pub_mods(list: &str) -> BTreeSet<(PathBuf, String)> {
    list.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(file, module)| (PathBuf::from(file), module.trim().to_string()))
        .collect()
}

/// The allowed list this build carries.
pub fn allowed() -> BTreeSet<(PathBuf, String)> {
    allowed_pub_mods(ALLOWED_PUB_MODS)
}

/// `#[path]` on any module; `pub mod` in the runtime anywhere but its façade, unless
/// `allowed`. Every `pub mod` met in the runtime goes into `seen`.
pub fn check(
    path: &Path,
    file: &syn::File,
    allowed: &BTreeSet<(PathBuf, String)>,
    seen: &mut BTreeSet<(PathBuf, String)>,
) -> Vec<Violation> {
    let facade = path == Path::new("runtime/src/lib.rs");
    let in_runtime = path.starts_with("runtime/src");
    let mut modules = Modules::default();
    modules.visit_file(file);
    let mut violations = Vec::new();
    for (line, name, has_path, public) in modules.found {
        if has_path {
            violations.push(Violation {
                path: path.to_path_buf(),
                line,
                what: "#[path] include: share the code through a crate (tether-contract) or \
                       give the module its own file"
                    .to_string(),
            });
        }
        let key = (path.to_path_buf(), name);
        if public && in_runtime && !facade && !allowed.contains(&key) {
            violations.push(Violation {
                path: path.to_path_buf(),
                line,
                what: "pub mod outside the runtime's façade: make it private and `pub use` \
                       what the binaries and tests need in lib.rs"
                    .to_string(),
            });
        }
        if public && in_runtime && !facade {
            seen.insert(key);
        }
    }
    violations
}

/// The allowed entries no longer met: each must leave the list.
pub fn stale(
    allowed: &BTreeSet<(PathBuf, String)>,
    seen: &BTreeSet<(PathBuf, String)>,
) -> Vec<Violation> {
    allowed
        .difference(seen)
        .map(|(path, module)| Violation {
            path: "xtask/src/tidy/pub_mods.txt".into(),
            line: 0,
            what: format!(
                "lists `pub mod {module}` in {}, which is no longer there: remove the line",
                path.display()
            ),
        })
        .collect()
}

/// Every module declaration: its line, name, whether it has `#[path]`, whether it is `pub`.
#[derive(Default)]
struct Modules {
    found: Vec<(usize, String, bool, bool)>,
}

impl<'ast> Visit<'ast> for Modules {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        let has_path = item.attrs.iter().any(|a| a.path().is_ident("path"));
        let public = matches!(item.vis, syn::Visibility::Public(_));
        self.found.push((
            item.mod_token.span().start().line,
            item.ident.to_string(),
            has_path,
            public,
        ));
        syn::visit::visit_item_mod(self, item);
    }
}
