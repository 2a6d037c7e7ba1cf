//! The house rules of `src/`, checked on every `cargo test`: no circle of
//! imports between the top-level modules (a parent and its own children
//! may refer to each other), nor between the parts of one module.
//! `python3 .ci/modgraph.py` prints the same graph for a reader.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The code of a file without `//` comments (doc comments name modules
/// freely) and without `/* */` blocks.
fn code(path: &Path) -> String {
    strip_comments(&std::fs::read_to_string(path).expect("read file"))
}

fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find("*/")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first names after each `prefix` (`crate::`, `super::`…): `prefix x`
/// gives `x`, `prefix {a::y, b}` gives `a` and `b`.
fn names_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut at = 0;
    while let Some(found) = text[at..].find(prefix) {
        let start = at + found;
        at = start + prefix.len();
        let before = text[..start].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &text[at..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut part = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (c == ',' && depth == 1) {
                    let name = ident_at(part.trim()).to_owned();
                    if !name.is_empty() {
                        names.insert(name);
                    }
                    part.clear();
                    if depth == 0 {
                        break;
                    }
                } else if depth == 1 {
                    // Names inside a nested group are not first names.
                    part.push(c);
                }
            }
        } else {
            let name = ident_at(rest);
            if !name.is_empty() {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// The child of `base` a path belongs to (`x` for `base/x.rs` and
/// `base/x/...`).
fn child_of(path: &Path, base: &Path) -> String {
    let first = path
        .strip_prefix(base)
        .expect("under base")
        .components()
        .next()
        .expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_owned()
}

fn children(base: &Path) -> BTreeSet<String> {
    std::fs::read_dir(base)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "rs"))
        .map(|p| child_of(&p, base))
        .filter(|name| !matches!(name.as_str(), "mod" | "lib" | "main"))
        .collect()
}

/// Edges between the top-level modules: `crate::x` named in `src/a/…`.
fn top_level_graph() -> Graph {
    let modules = children(&src());
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for file in rust_files(&src()) {
        let from = child_of(&file, &src());
        let Some(edges) = graph.get_mut(&from) else {
            continue;
        };
        for to in names_after(&code(&file), "crate::") {
            if to != from && modules.contains(&to) {
                edges.insert(to);
            }
        }
    }
    graph
}

/// Edges between the parts of `src/module/`: `crate::module::x`, or the
/// `super::` path that names a sibling from where a file sits.
fn inner_graph(module: &str) -> Graph {
    let base = src().join(module);
    let parts = children(&base);
    let mut graph: Graph = parts.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for file in rust_files(&base) {
        if file == base.join("mod.rs") {
            continue;
        }
        let from = child_of(&file, &base);
        let depth = file
            .strip_prefix(&base)
            .expect("under")
            .components()
            .count()
            - usize::from(file.file_name().is_some_and(|n| n == "mod.rs"));
        let supers = vec!["super"; depth].join("::") + "::";
        let text = code(&file);
        let named = names_after(&text, &format!("crate::{module}::"))
            .into_iter()
            .chain(names_after(&text, &supers));
        let edges = graph.get_mut(&from).expect("a part");
        for to in named {
            if to != from && parts.contains(&to) {
                edges.insert(to);
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one, as the path that closes it.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in &graph[node] {
            if let Some(found) = visit(next, graph, done, path) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = top_level_graph();
    assert!(graph.contains_key("model") && graph.contains_key("usage"));
    assert!(
        graph["model"].is_empty(),
        "model imports {:?}",
        graph["model"]
    );
    assert_eq!(cycle(&graph), None, "{graph:#?}");
}

#[test]
fn no_import_cycle_between_the_parts_of_a_module() {
    for module in children(&src()) {
        if src().join(&module).is_dir() {
            let graph = inner_graph(&module);
            assert_eq!(cycle(&graph), None, "inside {module}: {graph:#?}");
        }
    }
}

#[test]
fn the_checker_finds_a_cycle_and_reads_grouped_imports() {
    let names = names_after(
        &strip_comments(
            "use crate::{a::X, b::{c, d}};\nlet x = crate::e::f(); // crate::z\n/* crate::y */",
        ),
        "crate::",
    );
    assert_eq!(names, ["a", "b", "e"].map(String::from).into());
    let mut graph = Graph::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")] {
        graph.entry(from.into()).or_default().insert(to.into());
        graph.entry(to.into()).or_default();
    }
    assert!(cycle(&graph).is_some_and(|c| c.len() == 4));
    graph.get_mut("c").expect("c").clear();
    assert_eq!(cycle(&graph), None);
}
