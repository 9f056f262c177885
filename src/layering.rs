//! The layer order of [`crate::LAYERS`], held by a test: every `crate::…` path in the library's
//! code (tests aside) must name a module of a lower layer than its own, or its own module.
//! A failure names the file, the line and the edge, so the picture in `lib.rs` and DESIGN §1
//! stays true by construction. A second test finds module circles inside a layer: files that
//! import each other, directly or round a loop (a module and its own submodules are one unit
//! and may use each other).

use std::collections::{BTreeMap, BTreeSet};
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
        for (number, code) in code_lines(&text) {
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

/// The library's code lines of one file, numbered from 0 and trimmed at the start: comment
/// lines and test-only items left out. An inline `mod tests { … }` closes a file, so the rest
/// is test code; any other test-only item is one line (a `mod tests;` declaration, a `use`).
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
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
            if code.starts_with("mod ") && code.trim_end().ends_with('{') {
                break;
            }
            continue;
        }
        out.push((number, code));
    }
    out
}

/// [`code_lines`] joined, for searches that may span lines (`use a::{\n b,\n c}`).
fn code_of(text: &str) -> String {
    code_lines(text)
        .into_iter()
        .flat_map(|(_, code)| [code, "\n"])
        .collect()
}

/// The paths a piece of code names through `crate::`, `super::` or `self::`, as segment lists,
/// with `use a::{b, c::d}` groups spelled out (`a::b`, `a::c::d`).
fn named_paths(code: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = code.get(i..).unwrap_or_default();
        let starts = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|p| rest.starts_with(p));
        let boundary = i == 0 || !(ident(bytes[i - 1]) || bytes[i - 1] == b'$');
        let Some(_) = starts.filter(|_| boundary) else {
            i += 1;
            continue;
        };
        let end = code[i..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(code.len(), |n| i + n);
        let path = code[i..end].trim_end_matches(':');
        let segments: Vec<String> = path.split("::").map(str::to_string).collect();
        if code[..end].ends_with("::") && code[end..].starts_with('{') {
            // A group: each entry's leading path, after the prefix.
            let mut depth = 0usize;
            let mut close = code.len();
            for (n, c) in code[end..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            close = end + n;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            for entry in code.get(end + 1..close).unwrap_or_default().split(',') {
                let lead: String = entry
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let mut full = segments.clone();
                full.extend(
                    lead.split("::")
                        .filter(|s| !s.is_empty() && *s != "self")
                        .map(str::to_string),
                );
                found.push(full);
            }
            i = close.max(end) + 1;
        } else {
            found.push(segments);
            i = end.max(i + 1);
        }
    }
    found
}

/// The module a path names, from module `current`: the longest prefix that is a module in
/// `modules`.
fn resolve(current: &[String], path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    let (mut base, mut rest): (Vec<String>, &[String]) = match path.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &path[1..]),
        Some("self") => (current.to_vec(), &path[1..]),
        Some("super") => (current.to_vec(), path),
        _ => return None,
    };
    while rest.first().map(String::as_str) == Some("super") {
        base.pop();
        rest = &rest[1..];
    }
    (0..=rest.len()).rev().find_map(|n| {
        let mut candidate = base.clone();
        candidate.extend(rest[..n].iter().cloned());
        let name = candidate.join("::");
        modules.contains(&name).then_some(name)
    })
}

/// The circles among the library's modules: each a list of modules that import each other.
fn circles(src: &Path) -> Vec<Vec<String>> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let mut modules: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap_or(&file);
        let mut name = rel.with_extension("").to_string_lossy().replace('/', "::");
        if let Some(parent) = name.strip_suffix("::mod") {
            name = parent.to_string();
        }
        if !matches!(name.as_str(), "lib" | "main" | "layering") {
            modules.insert(name, file);
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let related = |a: &str, b: &str| {
        a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, file) in &modules {
        let current: Vec<String> = name.split("::").map(str::to_string).collect();
        let code = code_of(&std::fs::read_to_string(file).unwrap_or_default());
        let targets = edges.entry(name.clone()).or_default();
        for path in named_paths(&code) {
            if let Some(target) = resolve(&current, &path, &names)
                && !related(name, &target)
            {
                targets.insert(target);
            }
        }
    }
    // Tarjan's strongly connected components; a component of two or more is a circle.
    struct Search<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        found: Vec<Vec<String>>,
    }
    impl Search<'_> {
        fn visit(&mut self, v: &str) {
            let n = self.index.len();
            self.index.insert(v.to_string(), n);
            self.low.insert(v.to_string(), n);
            self.stack.push(v.to_string());
            self.on_stack.insert(v.to_string());
            let next: Vec<String> = self
                .edges
                .get(v)
                .map(|t| t.iter().cloned().collect())
                .unwrap_or_default();
            for w in next {
                if !self.index.contains_key(&w) {
                    self.visit(&w);
                    let low = self.low[v].min(self.low[&w]);
                    self.low.insert(v.to_string(), low);
                } else if self.on_stack.contains(&w) {
                    let low = self.low[v].min(self.index[&w]);
                    self.low.insert(v.to_string(), low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(&w);
                    let done = w == v;
                    component.push(w);
                    if done {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut search = Search {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for name in modules.keys() {
        if !search.index.contains_key(name) {
            search.visit(name);
        }
    }
    search.found
}

#[test]
fn no_modules_import_each_other_round_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = circles(&src);
    assert!(
        found.is_empty(),
        "modules that import each other (break the circle: move what both need below them):\n{}",
        found
            .iter()
            .map(|c| c.join(" ⇄ "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_circle_check_sees_a_loop_through_a_group_import_but_not_a_parent_and_child() {
    let dir = tempfile::tempdir().expect("a directory");
    let src = dir.path();
    std::fs::create_dir_all(src.join("gov/store")).expect("created");
    let write = |name: &str, text: &str| std::fs::write(src.join(name), text).expect("written");
    write(
        "gov/mod.rs",
        "pub mod a;\npub mod b;\npub mod c;\npub mod store;\n",
    );
    write("gov/a.rs", "use super::{b::Thing, c};\n");
    write("gov/b.rs", "use crate::gov::c::Other;\n");
    write("gov/c.rs", "// use super::a;\nuse super::a::Back;\n");
    write("gov/store/mod.rs", "mod rows;\nuse self::rows::Row;\n");
    write(
        "gov/store/rows.rs",
        "use super::*;\nuse crate::gov::store::Thing;\n",
    );
    assert_eq!(
        circles(src),
        vec![vec![
            "gov::a".to_string(),
            "gov::b".to_string(),
            "gov::c".to_string()
        ]]
    );
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
