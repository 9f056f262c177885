//! The layer order of [`crate::LAYERS`], held by a test: every `crate::…` path in the library's
//! code (tests aside) must name a module of a lower layer than its own, or its own module.
//! A failure names the file, the line and the edge, so the picture in `lib.rs` and DESIGN §1
//! stays true by construction.

use std::path::{Path, PathBuf};

use super::LAYERS;

/// The layer index of a top-level module, `None` for one not in [`LAYERS`].
fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `.rs` file below `dir` that is not test code (`tests.rs`, a `tests/` folder).
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "tests" {
                sources(&path, out);
            }
        } else if name.ends_with(".rs") && name != "tests.rs" {
            out.push(path);
        }
    }
}

/// The `crate::<module>` names on one line of code, in order.
fn crate_paths(line: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        // `veyra_crate::` or `$crate::` are not this crate's paths.
        let before = rest[..at].chars().next_back();
        let after = &rest[at + "crate::".len()..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            found.push(&after[..name_len]);
        }
        rest = &after[name_len..];
    }
    found
}

/// The breaches of the layer order in the library's code: `file:line: a → b (…)`.
fn breaches(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    sources(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap_or(&file).to_path_buf();
        let top = rel
            .components()
            .next()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .unwrap_or_default();
        if top == "lib" || top == "main" || top == "layering" {
            continue;
        }
        let Some(own) = layer_of(&top) else {
            found.push(format!(
                "src/{}: module '{top}' is in no layer of LAYERS in src/lib.rs; add it there",
                rel.display()
            ));
            continue;
        };
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let mut test_only = false;
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if code.starts_with("#[cfg(test)]") {
                test_only = true;
                continue;
            }
            if std::mem::take(&mut test_only) {
                // An inline `mod tests { … }` closes a file: the rest is test code. Any other
                // test-only item is one line (a `mod tests;` declaration, a `use`).
                if code.starts_with("mod ") && code.trim_end().ends_with('{') {
                    break;
                }
                continue;
            }
            for target in crate_paths(code) {
                if target == top {
                    continue;
                }
                let allowed = layer_of(target).is_some_and(|layer| layer < own);
                if !allowed {
                    found.push(format!(
                        "src/{}:{}: {top} → {target} goes against the layer order ({top} is in \
                         layer {own}, {target} in {}); move the code or invert the dependency",
                        rel.display(),
                        number + 1,
                        layer_of(target).map_or("none".to_string(), |l| l.to_string()),
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn every_module_imports_only_from_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = breaches(&src);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_check_sees_an_upward_edge_and_ignores_comments_and_tests() {
    let dir = tempfile::tempdir().expect("a directory");
    let src = dir.path();
    std::fs::create_dir_all(src.join("config")).expect("created");
    std::fs::write(
        src.join("config/mod.rs"),
        "//! [`crate::tui`] in a comment is fine\nuse crate::sanitize;\nuse crate::core::VeyraCore;\n\
         #[cfg(test)]\nmod tests { use crate::tui::App; }\n",
    )
    .expect("written");
    std::fs::write(src.join("config/tests.rs"), "use crate::cli::Cli;\n").expect("written");
    let found = breaches(src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("src/config/mod.rs:3: config → core"),
        "{found:?}"
    );
    assert_eq!(crate_paths("a $crate::x veyra_crate::y crate::z::w"), ["z"]);
}
