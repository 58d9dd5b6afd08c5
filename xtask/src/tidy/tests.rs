use std::path::Path;

use super::{check, MAX_FILE_LINES, MAX_FN_LINES};

/// A workspace that keeps every rule: one small module per crate, each named in LAYOUT.md.
fn clean_tree(root: &Path) {
    let doc = "# Where things live\n\n## contract/\n`wire.rs`\n\n## runtime/\n`host/` holds \
               `hub.rs`, `lib_part.rs`\n\n## harness/\n\n## xtask/\n`tidy/`\n";
    write(root, "docs/LAYOUT.md", doc);
    write(root, "contract/src/lib.rs", "pub mod wire;\n");
    write(root, "contract/src/wire.rs", "pub fn word() {}\n");
    write(
        root,
        "runtime/src/lib.rs",
        "mod host;\npub use host::hub::run;\n",
    );
    write(root, "runtime/src/host/mod.rs", "pub(crate) mod hub;\n");
    write(root, "runtime/src/host/hub.rs", "pub fn run() {}\n");
    write(root, "harness/src/main.rs", "fn main() {}\n");
    write(root, "xtask/src/main.rs", "mod tidy;\nfn main() {}\n");
    write(root, "xtask/src/tidy/mod.rs", "fn check() {}\n");
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// The violations of the clean tree with one file changed, as "path:line: what".
fn with(path: &str, text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    clean_tree(dir.path());
    write(dir.path(), path, text);
    check(dir.path())
        .expect("check")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_clean_tree_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    clean_tree(dir.path());
    assert_eq!(check(dir.path()).expect("check"), vec![]);
}

#[test]
fn a_long_file_fails() {
    let long = "// a line\n".repeat(MAX_FILE_LINES + 1);
    let found = with("contract/src/wire.rs", &long);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("contract/src/wire.rs: 451 lines, over 450"),
        "{found:?}"
    );
    assert!(with(
        "contract/src/wire.rs",
        &"// a line\n".repeat(MAX_FILE_LINES)
    )
    .is_empty());
}

#[test]
fn a_long_function_fails_in_an_impl_too() {
    let body = "    let _ = 1;\n".repeat(MAX_FN_LINES - 2);
    let fits = format!("pub fn fits() {{\n{body}}}\n");
    assert!(with("contract/src/wire.rs", &fits).is_empty());
    let long =
        format!("struct S;\nimpl S {{\n    fn long(&self) {{\n{body}    let _ = 2;\n    }}\n}}\n");
    let found = with("contract/src/wire.rs", &long);
    assert_eq!(
        found,
        vec!["contract/src/wire.rs:3: fn long is 81 lines, over 80".to_string()]
    );
}

#[test]
fn a_path_include_fails() {
    let found = with(
        "xtask/src/main.rs",
        "#[path = \"../../runtime/src/host/hub.rs\"]\nmod hub;\nfn main() {}\n",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("xtask/src/main.rs:2: #[path] include"),
        "{found:?}"
    );
}

#[test]
fn a_module_missing_from_the_layout_page_fails() {
    let found = with("runtime/src/host/streams.rs", "pub fn follow() {}\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(
            "runtime/src/host/streams.rs: not named in docs/LAYOUT.md's `## runtime/` section"
        ),
        "{found:?}"
    );
    // Named in another crate's section does not count.
    let found = with("harness/src/hub.rs", "pub fn serve() {}\n");
    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn a_pub_mod_inside_the_runtime_fails_but_not_in_other_crates() {
    let found = with("runtime/src/host/mod.rs", "pub mod hub;\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("runtime/src/host/mod.rs:1: pub mod outside the runtime's façade"),
        "{found:?}"
    );
    assert!(with("runtime/src/lib.rs", "pub mod host;\n").is_empty());
    assert!(with("contract/src/lib.rs", "pub mod wire;\n").is_empty());
}

#[test]
fn a_file_that_does_not_parse_is_named() {
    let found = with("contract/src/wire.rs", "pub fn broken( {\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("does not parse"), "{found:?}");
}
