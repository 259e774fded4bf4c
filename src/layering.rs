//! A test of the source tree's shape: every module imports only modules of its own layer or
//! below, as the layer table of `docs/architecture.md` assigns them, and no two modules import
//! each other. It reads the sources as text: `crate::…`, `super::…` and `self::…` paths (use
//! trees with braces included), outside comments and unit-test modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type ModulePath = Vec<String>;

/// Every module of `src` by its path (`[]` for the crate root) and its source.
fn modules(src: &Path) -> BTreeMap<ModulePath, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: ModulePath = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                // The binary is the top of everything; it is not checked.
                if parts == ["main"] {
                    continue;
                }
                parts.clear();
            }
            out.insert(parts, std::fs::read_to_string(&path).unwrap());
        }
    }
    out
}

/// The source without comments, string contents and `#[cfg(test)]` modules.
fn code_of(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if !escaped && c == '"' {
                        break;
                    }
                    escaped = !escaped && c == '\\';
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    match out.find("#[cfg(test)]\nmod tests") {
        Some(i) => out[..i].to_string(),
        None => out,
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Reads `ident(::ident)*` from the start of `text`; returns the segments and the rest.
fn segments(mut text: &str) -> (Vec<String>, &str) {
    let mut out = Vec::new();
    loop {
        let trimmed = text.trim_start();
        let end = trimmed.find(|c| !is_ident(c)).unwrap_or(trimmed.len());
        if end == 0 {
            return (out, trimmed);
        }
        out.push(trimmed[..end].to_string());
        text = &trimmed[end..];
        match text.strip_prefix("::") {
            Some(rest) if !rest.trim_start().starts_with('{') => text = rest,
            _ => return (out, text),
        }
    }
}

/// The paths of a use tree's brace group `{a, b::c, d::{e, f}}` (after the `{`); the rest.
fn group(mut text: &str, prefix: &[String], out: &mut Vec<ModulePath>) -> Option<()> {
    loop {
        text = text.trim_start();
        if text.starts_with('}') {
            return Some(());
        }
        let (segs, rest) = segments(text);
        let mut path = prefix.to_vec();
        path.extend(segs);
        text = rest.trim_start();
        if let Some(rest) = text.strip_prefix("::{") {
            group(rest, &path, out)?;
            text = skip_group(rest)?;
        } else {
            out.push(path);
            // `as name`, then a separator.
            let stop = text.find([',', '}'])?;
            text = &text[stop..];
        }
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix(',') {
            text = rest;
        } else if text.starts_with('}') {
            return Some(());
        } else {
            return None;
        }
    }
}

/// The text after the brace group that starts `text` (just after its `{`).
fn skip_group(text: &str) -> Option<&str> {
    let mut depth = 1;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[i + 1..]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Every module path `module`'s code names through `crate::`, `super::` or `self::`.
fn named_paths(module: &[String], code: &str) -> Vec<ModulePath> {
    let mut out = Vec::new();
    for (start, _) in code.match_indices("::") {
        let before = &code[..start];
        let word_start = before
            .char_indices()
            .rev()
            .find(|&(_, c)| !is_ident(c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[word_start..];
        // Only the head of a path (`crate::x`, not `crate::x::y` a second time).
        if before[..word_start].ends_with("::") {
            continue;
        }
        let mut base: ModulePath = match word {
            "crate" => Vec::new(),
            "self" => module.to_vec(),
            "super" => module[..module.len().saturating_sub(1)].to_vec(),
            _ => continue,
        };
        let mut rest = &code[start + 2..];
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        if let Some(r) = rest.strip_prefix('{') {
            let _ = group(r, &base, &mut out);
            continue;
        }
        let (segs, after) = segments(rest);
        base.extend(segs);
        if let Some(r) = after.strip_prefix("::{") {
            let _ = group(r, &base, &mut out);
        } else {
            out.push(base);
        }
    }
    out
}

/// The import graph between modules: `a -> b` when `a` names something of `b` (ancestors and
/// descendants of a module are left out: a parent declares its children, and children use
/// what their parent defines).
fn import_graph(src: &Path) -> BTreeMap<ModulePath, BTreeSet<ModulePath>> {
    let modules = modules(src);
    let mut graph: BTreeMap<ModulePath, BTreeSet<ModulePath>> = BTreeMap::new();
    for (module, source) in &modules {
        let code = code_of(source);
        for path in named_paths(module, &code) {
            let Some(target) = (1..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| modules.contains_key(p))
            else {
                continue;
            };
            let related = target.starts_with(module) || module.starts_with(&target);
            if !related {
                graph.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    graph
}

/// The layer table of docs/architecture.md: `| layer | modules |` rows, modules in backticks.
fn layer_table(doc: &str) -> BTreeMap<String, u32> {
    let mut layers = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 3 {
            continue;
        }
        let Ok(layer) = cells[1].parse::<u32>() else {
            continue;
        };
        for name in cells[2].split(',') {
            let name = name.trim().trim_matches('`');
            if !name.is_empty() {
                layers.insert(name.to_string(), layer);
            }
        }
    }
    layers
}

/// Every breach of the layering in `src` against `doc`'s table.
fn breaches(src: &Path, doc: &str) -> Vec<String> {
    let layers = layer_table(doc);
    let graph = import_graph(src);
    let name = |m: &ModulePath| format!("crate::{}", m.join("::"));
    let layer_of = |m: &ModulePath| match m.first() {
        None => Some(0),
        Some(top) => layers.get(top).copied(),
    };
    let mut out = Vec::new();
    for (from, targets) in &graph {
        for to in targets {
            match (layer_of(from), layer_of(to)) {
                (Some(a), Some(b)) if b > a => out.push(format!(
                    "{} (layer {a}) imports {} (layer {b})",
                    name(from),
                    name(to)
                )),
                (None, _) => out.push(format!("{} is missing from the layer table", name(from))),
                (_, None) => out.push(format!("{} is missing from the layer table", name(to))),
                _ => {}
            }
            if from < to && graph.get(to).is_some_and(|back| back.contains(from)) {
                out.push(format!("{} and {} import each other", name(from), name(to)));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = env!("CARGO_MANIFEST_DIR");

    fn doc() -> String {
        std::fs::read_to_string(Path::new(ROOT).join("docs/architecture.md")).unwrap()
    }

    #[test]
    fn modules_import_only_their_layer_and_below_and_never_each_other() {
        let found = breaches(&Path::new(ROOT).join("src"), &doc());
        assert!(found.is_empty(), "layering breaches:\n{}", found.join("\n"));
    }

    #[test]
    fn every_top_level_module_has_a_layer() {
        let layers = layer_table(&doc());
        for module in modules(&Path::new(ROOT).join("src")).keys() {
            if let Some(top) = module.first() {
                assert!(
                    layers.contains_key(top),
                    "`{top}` has no layer in docs/architecture.md"
                );
            }
        }
    }

    /// The check itself: a tree with an upward import and a mutual import is caught.
    #[test]
    fn an_upward_or_mutual_import_is_caught() {
        let dir = std::env::temp_dir().join(format!("layering-{}", crate::ids::random_hex(6)));
        let write = |rel: &str, text: &str| {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("lib.rs", "pub mod low;\npub mod high;\npub mod pair;\n");
        write("low.rs", "//! low\nuse crate::high::Thing; // upward\n");
        write(
            "high.rs",
            "//! high\nuse crate::{pair::{a::X, b}};\npub struct Thing;\n",
        );
        write("pair/mod.rs", "pub mod a;\npub mod b;\n");
        write("pair/a.rs", "use super::b::Y;\npub struct X;\n");
        write("pair/b.rs", "use crate::pair::a::X;\npub struct Y;\n");
        let doc = "| layer | modules |\n|---|---|\n| 1 | `low` |\n| 2 | `pair` |\n| 3 | `high` |\n";
        let found = breaches(&dir, doc);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            found,
            vec![
                "crate::low (layer 1) imports crate::high (layer 3)".to_string(),
                "crate::pair::a and crate::pair::b import each other".to_string(),
            ]
        );
    }
}
