//! The code map's invariants (ARCHITECTURE.md), checked on the source:
//!
//! * no import cycle between the top-level modules of any crate of the workspace — a module's
//!   `crate::…` and `super::…` paths are its edges, items re-exported by `lib.rs` count as
//!   edges to the module that defines them, and `lib.rs` itself only declares and re-exports;
//! * the library crates print nothing (they report through return values and `tracing`);
//!   in the binary crate only `cmd/` and the terminal leaf `term` write to stdout or stderr
//!   (`interrupt` too, from its signal handler, through `term`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The crates of the workspace: `crates/<name>/src`.
fn crates() -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("src/lib.rs").is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                p.join("src"),
            )
        })
        .collect();
    v.sort();
    v
}

/// Every `.rs` file under `path` (a file or a folder).
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut v = Vec::new();
    for e in std::fs::read_dir(path).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            v.push(p);
        }
    }
    v.sort();
    v
}

/// The source without comment lines (doc links name modules without importing them).
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules of a crate: `src/x.rs` or `src/x/` → name → files.
fn modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            m.insert(name, rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") && name != "lib" && name != "main" {
            m.insert(name, vec![p]);
        }
    }
    m
}

/// The first path segments after `prefix` (`crate::`), including those inside a `{…}` group:
/// `crate::{a::B, c}` gives `a`, `c`.
fn heads(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find(prefix) {
        let start = from + i;
        from = start + prefix.len();
        // a whole path segment: `crate::` not preceded by an identifier character
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let rest = &text[from..];
        if let Some(group) = rest.strip_prefix('{') {
            // top-level names of the group
            let (mut depth, mut token, mut at_start) = (0usize, String::new(), true);
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !token.is_empty() {
                            out.insert(std::mem::take(&mut token));
                        }
                        at_start = true;
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 && at_start {
                    if c.is_alphanumeric() || c == '_' {
                        token.push(c);
                    } else if !token.is_empty() {
                        out.insert(std::mem::take(&mut token));
                        at_start = false;
                    }
                }
            }
            if !token.is_empty() {
                out.insert(token);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// `lib.rs`'s re-exports: item name → the module that defines it.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut rest = lib;
    while let Some(i) = rest.find("pub use ") {
        rest = &rest[i + "pub use ".len()..];
        let end = rest.find(';').unwrap();
        let stmt = &rest[..end];
        let module: String = stmt
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let names = match (stmt.find('{'), stmt.rfind('}')) {
            (Some(a), Some(b)) => stmt[a + 1..b].to_string(),
            _ => stmt.rsplit("::").next().unwrap().to_string(),
        };
        for n in names.split(',') {
            let n = n.trim().rsplit("::").next().unwrap().trim();
            let n = n.split(" as ").last().unwrap().trim();
            if !n.is_empty() {
                map.insert(n.to_string(), module.clone());
            }
        }
        rest = &rest[end..];
    }
    map
}

/// What `lib.rs` may hold: module declarations, re-exports and attributes.
fn lib_only_declares(lib: &str) -> Result<(), String> {
    let mut depth = 0i32;
    for line in lib.lines() {
        let t = line.trim();
        if depth == 0
            && !(t.is_empty()
                || t.starts_with("pub mod ")
                || t.starts_with("mod ")
                || t.starts_with("pub use ")
                || t.starts_with("#![")
                || t.starts_with("#[")
                || t.starts_with("extern crate "))
        {
            return Err(format!("`{t}`"));
        }
        depth += t.matches('{').count() as i32 - t.matches('}').count() as i32;
    }
    Ok(())
}

/// A cycle in the graph, as a path `a → b → … → a`.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// The module graph of one crate: module → the modules it uses.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let lib = code(&src.join("lib.rs"));
    let reexported = reexports(&lib);
    let mods = modules(src);
    let mut graph = BTreeMap::new();
    for (name, files) in &mods {
        let mut edges = BTreeSet::new();
        for f in files {
            let text = code(f);
            let mut used = heads(&text, "crate::");
            // `super::` in a top-level module file is the crate root
            if f.parent() == Some(src) {
                used.extend(heads(&text, "super::"));
            }
            for u in used {
                let target = if mods.contains_key(&u) {
                    u
                } else if let Some(m) = reexported.get(&u) {
                    m.clone()
                } else {
                    // an item lib.rs defines (reported by `lib_only_declares`)
                    "lib".to_string()
                };
                if &target != name {
                    edges.insert(target);
                }
            }
        }
        graph.insert(name.clone(), edges);
    }
    graph
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let mut problems = Vec::new();
    for (krate, src) in crates() {
        if let Err(l) = lib_only_declares(&code(&src.join("lib.rs"))) {
            problems.push(format!(
                "{krate}: lib.rs defines {l}; move it into a module"
            ));
        }
        let mut graph = module_graph(&src);
        // report every cycle: cut each one found at its last edge and look again
        while let Some(cycle) = find_cycle(&graph) {
            problems.push(format!("{krate}: import cycle {}", cycle.join(" → ")));
            let (a, b) = (&cycle[cycle.len() - 2], &cycle[cycle.len() - 1]);
            graph.get_mut(a).unwrap().remove(b);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_finds_a_cycle_and_group_imports() {
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(find_cycle(&g).unwrap(), ["a", "b", "c", "a"]);
    let mut acyclic = g.clone();
    acyclic.get_mut("c").unwrap().clear();
    assert!(find_cycle(&acyclic).is_none());
    let h = heads(
        "use crate::{a::B, c, d::{e, f}};\nlet x = crate::g::h(); my_crate::no;",
        "crate::",
    );
    assert_eq!(h.into_iter().collect::<Vec<_>>(), ["a", "c", "d", "g"]);
    let r = reexports("pub use m::{A, B as C};\npub use n::D;\n");
    assert_eq!(r["A"], "m");
    assert_eq!(r["C"], "m");
    assert_eq!(r["D"], "n");
    assert!(lib_only_declares("pub mod a;\npub use a::X;\n").is_ok());
    assert!(lib_only_declares("pub mod a;\npub fn f() {}\n").is_err());
}

/// Whether a line of the binary crate writes through `term` (`say`, `warn`) outside `term.rs`
/// itself and `interrupt.rs` (the signal handler's messages). Progress bars (`term::bar`) are
/// allowed anywhere: they are not output.
fn printing_through_term(line: &str, file: &Path) -> bool {
    let name = file.file_name().unwrap().to_string_lossy();
    name != "term.rs"
        && name != "interrupt.rs"
        && ["say(format_args!", "warn(format_args!"]
            .iter()
            .any(|m| line.contains(m))
}

/// Lines of `files` that print, as `file:line`.
fn printing(files: &[PathBuf]) -> Vec<String> {
    let mut hits = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        // unit tests may print what they measured
        let body = text.split("#[cfg(test)]").next().unwrap();
        for (i, line) in body.lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with("//") {
                continue;
            }
            if ["println!", "eprintln!", "print!", "eprint!"]
                .iter()
                .any(|m| t.contains(m))
                || printing_through_term(t, f)
            {
                hits.push(format!("{}:{}", f.display(), i + 1));
            }
        }
    }
    hits
}

#[test]
fn only_the_commands_and_the_terminal_leaf_print() {
    let mut hits = Vec::new();
    for (krate, src) in crates() {
        let files = rust_files(&src);
        if krate == "funnel" {
            let allowed = |p: &Path| {
                p.starts_with(src.join("cmd"))
                    || p == src.join("term.rs")
                    || p == src.join("main.rs")
            };
            let files: Vec<PathBuf> = files.into_iter().filter(|p| !allowed(p)).collect();
            hits.extend(printing(&files));
        } else {
            hits.extend(printing(&files));
        }
    }
    assert!(
        hits.is_empty(),
        "printing outside cmd/ and term.rs:\n{}",
        hits.join("\n")
    );
}
