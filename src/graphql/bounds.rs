//! Bounds the work a GraphQL request can cause, checked before async-graphql parses, validates
//! or executes it, so that no request costs more than a linear pass over its text.
//!
//! async-graphql expands fragment spreads wherever it walks a document (its recursion-depth
//! check, its complexity and depth visitors, field collection during execution), without
//! memoizing: two fragments that spread each other twice never finish, and an acyclic chain of
//! fragments that each spread the next twice costs 2^n. So before anything else:
//!
//! 1. [`check_text`]: the query text's size and bracket nesting (the parser recurses on
//!    nesting), one pass over the bytes.
//! 2. [`check_document`], on the parsed document, visiting each fragment once:
//!    - fragment spreads must not form cycles (GraphQL spec, §5.5.2.2 "Fragment spreads must
//!      not form cycles");
//!    - every spread names a fragment the document defines (§5.5.2.1);
//!    - the number of selections (fields, spreads, inline fragments) once every fragment is
//!      expanded (what the validators and the executor walk) is capped, and so are its field
//!      depth and the nesting of selection sets and spreads, which every walk recurses on;
//!    - aliases of the operation that runs, each fragment counted at every place it is spread;
//!    - no string argument, default value or variable holds a NUL character (U+0000), which
//!      PostgreSQL cannot store in text and runledger refuses on every backend alike.

use std::collections::HashMap;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::parser::{Positioned, types::Directive};
use async_graphql::{Name, Value, Variables};

use crate::error::{AppError, AppResult};

/// The bounds a request must stay within.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocumentBounds {
    /// Most bytes of query text.
    pub max_bytes: usize,
    /// Most field selections, every fragment expanded where it is spread.
    pub max_selections: usize,
    /// Most aliased fields in the operation that runs.
    pub max_aliases: usize,
}

impl Default for DocumentBounds {
    fn default() -> Self {
        DocumentBounds {
            max_bytes: 100_000,
            max_selections: 5_000,
            max_aliases: 50,
        }
    }
}

/// Deepest bracket nesting (`{`, `[`, `(`) accepted in the text: the parser recurses on it.
/// Far above any real query (the depth limit stops those at 15 levels of fields).
const MAX_TEXT_NESTING: usize = 128;

/// Deepest field nesting once fragments are expanded: the validators recurse on it. The
/// configured depth limit, applied by validation, is lower; this only bounds the recursion.
const MAX_EXPANDED_DEPTH: u64 = 64;

/// Deepest nesting of selection sets and fragment spreads together (a chain of fragments that
/// each spread the next nests without adding fields): every walk of the document, this one and
/// async-graphql's, recurses once per level, so this bounds their stacks.
const MAX_WALK_NESTING: usize = 256;

/// Checks the query text before it is parsed: its size and its bracket nesting (outside
/// strings and comments).
pub fn check_text(query: &str, bounds: &DocumentBounds) -> AppResult<()> {
    if query.len() > bounds.max_bytes {
        return Err(AppError::QueryTooComplex(format!(
            "the query is {} bytes long; at most {} bytes are accepted",
            query.len(),
            bounds.max_bytes
        )));
    }
    let deepest = text_nesting(query.as_bytes());
    if deepest > MAX_TEXT_NESTING {
        return Err(AppError::QueryTooComplex(format!(
            "the query nests brackets {deepest} levels deep; at most {MAX_TEXT_NESTING} are accepted"
        )));
    }
    Ok(())
}

/// The deepest nesting of `{`, `[` and `(` outside strings, block strings and comments.
fn text_nesting(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < text.len() {
        match text[i] {
            b'#' => {
                while i < text.len() && text[i] != b'\n' && text[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if text[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < text.len() && !text[i..].starts_with(b"\"\"\"") {
                    // An escaped triple quote does not end the block string.
                    i += if text[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < text.len() && text[i] != b'"' && text[i] != b'\n' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// What one selection set costs once its fragments are expanded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cost {
    selections: u64,
    aliases: u64,
    /// Deepest nesting of fields.
    depth: u64,
    /// Deepest nesting of selection sets and fragment spreads, as a walk that expands every
    /// spread where it stands recurses.
    nesting: u64,
}

impl Cost {
    fn add(&mut self, other: Cost) {
        self.selections = self.selections.saturating_add(other.selections);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.depth = self.depth.max(other.depth);
        self.nesting = self.nesting.max(other.nesting);
    }
}

/// Where a fragment stands in the walk: being expanded (a spread of it now is a cycle) or done.
enum Visit {
    Open,
    Done(Cost),
}

/// Walks fragments once each, in spread order, remembering their cost.
struct Walk<'a> {
    doc: &'a ExecutableDocument,
    fragments: HashMap<&'a str, Visit>,
    /// Fragments being expanded, outermost first: the path a cycle is reported with.
    path: Vec<&'a str>,
    /// Selection sets and fragments entered and not yet left: how deep this walk recurses,
    /// and so how deep async-graphql's own walks will.
    nesting: usize,
}

impl<'a> Walk<'a> {
    /// Enters one more level of selection sets or fragments, refusing past the bound.
    fn enter(&mut self) -> AppResult<()> {
        self.nesting += 1;
        if self.nesting > MAX_WALK_NESTING {
            return Err(AppError::QueryTooComplex(format!(
                "the document nests selection sets and fragment spreads more than \
                 {MAX_WALK_NESTING} levels deep; at most {MAX_WALK_NESTING} are allowed"
            )));
        }
        Ok(())
    }

    fn selection_set(&mut self, set: &'a SelectionSet) -> AppResult<Cost> {
        self.enter()?;
        let mut cost = Cost::default();
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let inner = self.selection_set(&f.node.selection_set.node)?;
                    cost.add(Cost {
                        selections: inner.selections.saturating_add(1),
                        aliases: inner
                            .aliases
                            .saturating_add(u64::from(f.node.alias.is_some())),
                        depth: inner.depth + 1,
                        nesting: inner.nesting,
                    });
                }
                // A fragment is work wherever it stands, even when it selects nothing: each
                // spread and inline fragment counts as a selection of its own.
                Selection::InlineFragment(f) => {
                    let mut inner = self.selection_set(&f.node.selection_set.node)?;
                    inner.selections = inner.selections.saturating_add(1);
                    cost.add(inner);
                }
                Selection::FragmentSpread(s) => {
                    let mut inner = self.fragment(s.node.fragment_name.node.as_str())?;
                    inner.selections = inner.selections.saturating_add(1);
                    inner.nesting += 1;
                    cost.add(inner);
                }
            }
        }
        cost.nesting += 1;
        self.nesting -= 1;
        Ok(cost)
    }

    /// The cost of a fragment, expanded once.
    fn fragment(&mut self, name: &'a str) -> AppResult<Cost> {
        match self.fragments.get(name) {
            Some(Visit::Done(cost)) => return Ok(*cost),
            Some(Visit::Open) => {
                let from = self.path.iter().position(|f| *f == name).unwrap_or(0);
                let via: Vec<String> = self.path[from + 1..]
                    .iter()
                    .map(|f| format!("\"{f}\""))
                    .collect();
                let message = if via.is_empty() {
                    format!("Cannot spread fragment \"{name}\" within itself.")
                } else {
                    format!(
                        "Cannot spread fragment \"{name}\" within itself via {}.",
                        via.join(", ")
                    )
                };
                return Err(AppError::bad_input(message));
            }
            None => {}
        }
        // GraphQL spec §5.5.2.1 "Fragment spread target defined": refused here, before
        // async-graphql would expand spreads of it (validation reports it only afterwards).
        let Some(definition) = self.doc.fragments.get(name) else {
            return Err(AppError::bad_input(format!("Unknown fragment \"{name}\".")));
        };
        self.enter()?;
        self.fragments.insert(name, Visit::Open);
        self.path.push(name);
        let cost = self.selection_set(&definition.node.selection_set.node)?;
        self.path.pop();
        self.fragments.insert(name, Visit::Done(cost));
        self.nesting -= 1;
        Ok(cost)
    }
}

/// Checks a parsed request: fragment cycles, expanded size and depth, aliases of the operation
/// that runs (`operation_name`, or the only one), and NUL characters in strings.
pub fn check_document(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
    bounds: &DocumentBounds,
) -> AppResult<()> {
    let mut walk = Walk {
        doc,
        fragments: HashMap::new(),
        path: Vec::new(),
        nesting: 0,
    };
    // Everything validation walks: every fragment definition and every operation.
    let mut total = Cost::default();
    for name in doc.fragments.keys() {
        total.add(walk.fragment(name.as_str())?);
    }
    let mut running = None;
    for (name, operation) in doc.operations.iter() {
        let cost = walk.selection_set(&operation.node.selection_set.node)?;
        let runs = match (&doc.operations, operation_name) {
            (DocumentOperations::Single(_), _) => true,
            (DocumentOperations::Multiple(ops), None) => ops.len() == 1,
            (DocumentOperations::Multiple(_), Some(wanted)) => {
                name.is_some_and(|n| n.as_str() == wanted)
            }
        };
        if runs {
            running = Some(cost);
        }
        total.add(cost);
    }
    if total.selections > bounds.max_selections as u64 {
        return Err(AppError::QueryTooComplex(format!(
            "the document makes {} selections once its fragments are expanded; at most {} are \
             allowed",
            total.selections, bounds.max_selections
        )));
    }
    if total.nesting > MAX_WALK_NESTING as u64 {
        return Err(AppError::QueryTooComplex(format!(
            "the document nests selection sets and fragment spreads {} levels deep once its \
             fragments are expanded; at most {MAX_WALK_NESTING} are allowed",
            total.nesting
        )));
    }
    if total.depth > MAX_EXPANDED_DEPTH {
        return Err(AppError::QueryTooComplex(format!(
            "the document nests fields {} levels deep once its fragments are expanded; at most \
             {MAX_EXPANDED_DEPTH} are allowed",
            total.depth
        )));
    }
    if let Some(cost) = running.filter(|c| c.aliases > bounds.max_aliases as u64) {
        let max = bounds.max_aliases;
        return Err(AppError::QueryTooComplex(format!(
            "the operation uses more than {max} aliases ({} counted); at most {max} are allowed",
            cost.aliases
        )));
    }
    refuse_nul(doc, variables)
}

/// A NUL character (U+0000) in a string of the document or the variables is refused, naming
/// where it is.
fn refuse_nul(doc: &ExecutableDocument, variables: &Variables) -> AppResult<()> {
    for (name, value) in variables.iter() {
        if holds_nul(value) {
            return Err(nul_error(format!("variable `${name}`")));
        }
    }
    for (_, operation) in doc.operations.iter() {
        for definition in &operation.node.variable_definitions {
            let d = &definition.node;
            if d.default_value.as_ref().is_some_and(|v| holds_nul(&v.node)) {
                return Err(nul_error(format!(
                    "the default value of variable `${}`",
                    d.name.node
                )));
            }
        }
        directives_nul(&operation.node.directives)?;
        selection_set_nul(&operation.node.selection_set.node)?;
    }
    for (_, fragment) in doc.fragments.iter() {
        let FragmentDefinition {
            directives,
            selection_set,
            ..
        } = &fragment.node;
        directives_nul(directives)?;
        selection_set_nul(&selection_set.node)?;
    }
    Ok(())
}

fn selection_set_nul(set: &SelectionSet) -> AppResult<()> {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                for (arg, value) in &f.node.arguments {
                    if holds_nul_arg(&value.node) {
                        return Err(nul_error(format!(
                            "argument `{}` of field `{}`",
                            arg.node, f.node.name.node
                        )));
                    }
                }
                directives_nul(&f.node.directives)?;
                selection_set_nul(&f.node.selection_set.node)?;
            }
            Selection::InlineFragment(f) => {
                directives_nul(&f.node.directives)?;
                selection_set_nul(&f.node.selection_set.node)?;
            }
            Selection::FragmentSpread(s) => directives_nul(&s.node.directives)?,
        }
    }
    Ok(())
}

fn directives_nul(directives: &[Positioned<Directive>]) -> AppResult<()> {
    for d in directives {
        for (arg, value) in &d.node.arguments {
            if holds_nul_arg(&value.node) {
                return Err(nul_error(format!(
                    "argument `{}` of directive `@{}`",
                    arg.node, d.node.name.node
                )));
            }
        }
    }
    Ok(())
}

fn nul_error(place: String) -> AppError {
    AppError::bad_input(format!(
        "{place} contains a NUL character (U+0000), which is not accepted in strings"
    ))
}

/// A constant value (variables, defaults) holds a string with a NUL.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::List(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields.iter().any(|(k, v)| name_nul(k) || holds_nul(v)),
        _ => false,
    }
}

/// An argument value (which may name variables) holds a string with a NUL.
fn holds_nul_arg(value: &async_graphql_value::Value) -> bool {
    use async_graphql_value::Value as V;
    match value {
        V::String(s) => s.contains('\0'),
        V::List(items) => items.iter().any(holds_nul_arg),
        V::Object(fields) => fields.iter().any(|(_, v)| holds_nul_arg(v)),
        _ => false,
    }
}

fn name_nul(name: &Name) -> bool {
    name.as_str().contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn check(query: &str, operation: Option<&str>) -> AppResult<()> {
        let doc = parse_query(query).unwrap();
        check_document(
            &doc,
            operation,
            &Variables::default(),
            &DocumentBounds::default(),
        )
    }

    fn message(r: AppResult<()>) -> String {
        r.err().map(|e| e.describe()).unwrap_or_default()
    }

    #[test]
    fn fragment_cycles_are_refused_with_their_path() {
        let m = message(check(
            "query { ...A } fragment A on Query { ...B ...B } fragment B on Query { ...A ...A }",
            None,
        ));
        assert!(m.starts_with("BAD_USER_INPUT"), "{m}");
        assert!(
            m.contains("Cannot spread fragment \"A\" within itself via \"B\".")
                || m.contains("Cannot spread fragment \"B\" within itself via \"A\"."),
            "{m}"
        );
        let m = message(check(
            "query { viewer { role } } fragment S on Query { ...S }",
            None,
        ));
        assert!(m.contains("\"S\" within itself."), "{m}");
    }

    #[test]
    fn expanded_size_is_counted_once_per_fragment() {
        // 40 fragments, each spreading the next twice: 2^40 selections once expanded.
        let mut doc = String::from("query { ...F0 }");
        for i in 0..40 {
            doc.push_str(&format!(
                " fragment F{i} on Query {{ ...F{n} ...F{n} }}",
                n = i + 1
            ));
        }
        doc.push_str(" fragment F40 on Query { viewer { role } }");
        let m = message(check(&doc, None));
        assert!(m.starts_with("QUERY_TOO_COMPLEX"), "{m}");
        assert!(m.contains("at most 5000"), "{m}");
        // A shallow version of the same shape is fine.
        let ok = "query { ...F0 } fragment F0 on Query { ...F1 ...F1 } \
                  fragment F1 on Query { viewer { role } }";
        assert!(check(ok, None).is_ok());
    }

    #[test]
    fn spreads_of_undefined_fragments_are_refused() {
        // Without a definition, spreads would cost nothing here and 2^26 in async-graphql.
        let mut doc = String::from("query { ...F0 }");
        for i in 0..25 {
            doc.push_str(&format!(
                " fragment F{i} on Query {{ ...F{n} ...F{n} }}",
                n = i + 1
            ));
        }
        let m = message(check(&doc, None));
        assert!(m.contains("Unknown fragment \"F25\"."), "{m}");
        // Spreads and inline fragments count even when they select nothing.
        let empty = "query { ... on Query { ... on Query { __typename } } }";
        assert!(check(empty, None).is_ok());
    }

    #[test]
    fn long_fragment_chains_are_refused_before_they_recurse() {
        // A chain of 3,000 fragments: one selection each, but as deep as it is long.
        let mut doc = String::from("query { ...F0 }");
        for i in 0..3000 {
            doc.push_str(&format!(" fragment F{i} on Query {{ ...F{} }}", i + 1));
        }
        doc.push_str(" fragment F3000 on Query { __typename }");
        let m = message(check(&doc, None));
        assert!(m.contains("more than 256 levels deep"), "{m}");
        // A fragment first met shallow and spread again deep is measured where it is deep:
        // D nests 100 levels and is spread at the top and at the end of a 200-level chain.
        let mut doc = String::from("query { ...D0 ...C0 }");
        for i in 0..100 {
            doc.push_str(&format!(" fragment D{i} on Query {{ ...D{} }}", i + 1));
        }
        doc.push_str(" fragment D100 on Query { __typename }");
        for i in 0..200 {
            doc.push_str(&format!(" fragment C{i} on Query {{ ...C{} }}", i + 1));
        }
        doc.push_str(" fragment C200 on Query { ...D0 }");
        // (Each fragment definition is also walked on its own: the selection bound alone would
        // refuse these chains. Raised, the nesting bound still does.)
        let lenient = DocumentBounds {
            max_selections: usize::MAX,
            ..DocumentBounds::default()
        };
        let parsed = parse_query(&doc).unwrap();
        let m = message(check_document(
            &parsed,
            None,
            &Variables::default(),
            &lenient,
        ));
        assert!(m.contains("levels deep") && m.contains("256"), "{m}");
        // A chain of 60 is fine.
        let mut ok = String::from("query { ...C0 }");
        for i in 0..60 {
            ok.push_str(&format!(" fragment C{i} on Query {{ ...C{} }}", i + 1));
        }
        ok.push_str(" fragment C60 on Query { __typename }");
        assert!(check(&ok, None).is_ok(), "{}", message(check(&ok, None)));
    }

    #[test]
    fn aliases_are_counted_in_the_operation_that_runs() {
        let bounds = DocumentBounds {
            max_aliases: 4,
            ..DocumentBounds::default()
        };
        let doc = "query A { a: viewer { role } b: viewer { role } } \
                   query B { c: viewer { role } ...F ...F } \
                   fragment F on Query { d: viewer { role } e: viewer { role } }";
        let doc = parse_query(doc).unwrap();
        let run = |op| check_document(&doc, op, &Variables::default(), &bounds);
        assert!(run(Some("A")).is_ok());
        // Each spread of a fragment counts: 1 + 2 × 2 = 5.
        let m = message(run(Some("B")));
        assert!(m.contains("(5 counted)"), "{m}");
    }

    #[test]
    fn nul_characters_are_refused_where_they_are() {
        let m = message(check(r#"{ llmRun(runId: "a\u0000b") { runId } }"#, None));
        assert!(m.contains("argument `runId` of field `llmRun`"), "{m}");
        let m = message(check(
            r#"query Q($id: String = "x\u0000") { llmRun(runId: $id) { runId } }"#,
            None,
        ));
        assert!(m.contains("default value of variable `$id`"), "{m}");
        let doc = parse_query("query Q($id: String!) { llmRun(runId: $id) { runId } }").unwrap();
        let vars = Variables::from_json(serde_json::json!({"id": "a\u{0}"}));
        let m = message(check_document(
            &doc,
            None,
            &vars,
            &DocumentBounds::default(),
        ));
        assert!(m.contains("variable `$id`"), "{m}");
        assert!(check(r#"{ llmRun(runId: "a\\u0000b") { runId } }"#, None).is_ok());
    }

    #[test]
    fn text_nesting_ignores_strings_and_comments() {
        assert_eq!(text_nesting(b"{ a { b } }"), 2);
        assert_eq!(text_nesting(b"{ a(x: \"{{{{\") # {{{{\n }"), 2);
        assert_eq!(text_nesting(b"{ a(x: \"\"\" {{{ \\\"\"\" {{ \"\"\") }"), 2);
        let deep = "{a".repeat(200) + &"}".repeat(200);
        assert!(check_text(&deep, &DocumentBounds::default()).is_err());
        let long = "{ __typename }".to_string() + &" ".repeat(100_000);
        assert!(message(check_text(&long, &DocumentBounds::default())).contains("at most 100000"));
    }
}
