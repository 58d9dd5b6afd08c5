//! File and function lengths.

use std::path::Path;

use syn::spanned::Spanned;
use syn::visit::Visit;

use super::{Violation, MAX_FILE_LINES, MAX_FN_LINES};

/// The file's length and every function's in it.
pub fn check(path: &Path, text: &str, file: &syn::File) -> Vec<Violation> {
    let mut violations = Vec::new();
    let lines = text.lines().count();
    if lines > MAX_FILE_LINES {
        violations.push(Violation {
            path: path.to_path_buf(),
            line: 0,
            what: format!("{lines} lines, over {MAX_FILE_LINES}: split it by what its parts hold"),
        });
    }
    let mut functions = Functions::default();
    functions.visit_file(file);
    for (name, start, end) in functions.found {
        let length = end + 1 - start;
        if length > MAX_FN_LINES {
            violations.push(Violation {
                path: path.to_path_buf(),
                line: start,
                what: format!("fn {name} is {length} lines, over {MAX_FN_LINES}"),
            });
        }
    }
    violations
}

/// Every function with a body: its name, first and last line.
#[derive(Default)]
struct Functions {
    found: Vec<(String, usize, usize)>,
}

impl Functions {
    fn add(&mut self, sig: &syn::Signature, block: &syn::Block) {
        let start = sig.fn_token.span().start().line;
        let end = block.brace_token.span.close().end().line;
        self.found.push((sig.ident.to_string(), start, end));
    }
}

impl<'ast> Visit<'ast> for Functions {
    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        self.add(&item.sig, &item.block);
        syn::visit::visit_item_fn(self, item);
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        self.add(&item.sig, &item.block);
        syn::visit::visit_impl_item_fn(self, item);
    }

    fn visit_trait_item_fn(&mut self, item: &'ast syn::TraitItemFn) {
        if let Some(block) = &item.default {
            self.add(&item.sig, block);
        }
        syn::visit::visit_trait_item_fn(self, item);
    }
}
