//! How modules are declared: no `#[path]` include, and the runtime's inside kept inside.

use std::path::Path;

use syn::spanned::Spanned;
use syn::visit::Visit;

use super::Violation;

/// `#[path]` on any module; `pub mod` in the runtime anywhere but its façade (`lib.rs`).
pub fn check(path: &Path, file: &syn::File) -> Vec<Violation> {
    let facade = path == Path::new("runtime/src/lib.rs");
    let in_runtime = path.starts_with("runtime/src");
    let mut modules = Modules::default();
    modules.visit_file(file);
    let mut violations = Vec::new();
    for (line, has_path, public) in modules.found {
        if has_path {
            violations.push(Violation {
                path: path.to_path_buf(),
                line,
                what: "#[path] include: share the code through a crate (tether-contract) or \
                       give the module its own file"
                    .to_string(),
            });
        }
        if public && in_runtime && !facade {
            violations.push(Violation {
                path: path.to_path_buf(),
                line,
                what: "pub mod outside the runtime's façade: make it `mod` or \
                       `pub(crate) mod` and `pub use` what the binaries and tests need"
                    .to_string(),
            });
        }
    }
    violations
}

/// Every module declaration: its line, whether it has `#[path]`, whether it is `pub`.
#[derive(Default)]
struct Modules {
    found: Vec<(usize, bool, bool)>,
}

impl<'ast> Visit<'ast> for Modules {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        let has_path = item.attrs.iter().any(|a| a.path().is_ident("path"));
        let public = matches!(item.vis, syn::Visibility::Public(_));
        self.found
            .push((item.mod_token.span().start().line, has_path, public));
        syn::visit::visit_item_mod(self, item);
    }
}
