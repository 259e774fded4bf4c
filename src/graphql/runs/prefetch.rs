//! What a selection of runs will load, read from the query's look-ahead: the field names come
//! from the row and view declarations (`*_field` modules), so a renamed field is looked for
//! under its new name.

use async_graphql::Lookahead;

use super::governance::{governance_event_columns, llm_run_governance_field};
use super::replay::llm_run_replay_field;
use super::run::{llm_run_envelope_field, llm_run_field as run};
use super::trace::{llm_run_trace_field, trace_step_columns};
use crate::domain::WindowSeconds;
use crate::facade::decode::{EventColumns, StepColumns};
use crate::facade::runs::RunPrefetch;
use crate::graphql::system::system_run_field as system;

/// The argument of the windowed views (`replay`, `system { replay attribution }`).
const WINDOW_SECONDS: &str = "windowSeconds";

/// The runs of a connection: its `nodes` and its `edges { node }`.
pub(super) fn connection_nodes<'a>(list: &Lookahead<'a>) -> [Lookahead<'a>; 2] {
    [list.field("nodes"), list.field("edges").field("node")]
}

/// What the selections of runs (a connection's nodes and edges, or one run) will load,
/// including every replay window size asked for (through aliases, the same view can be asked
/// with several).
pub(super) fn prefetch_for(nodes: &[Lookahead<'_>]) -> RunPrefetch {
    let selected = |name: &str| nodes.iter().any(|n| n.field(name).exists());
    let in_system = selected(run::system);
    // Metadata (of the run or of a view) is the only reader of the correlation spine besides
    // export and the system views.
    let metadata = selected(run::metadata)
        || [
            (run::envelope, llm_run_envelope_field::metadata),
            (run::trace, llm_run_trace_field::metadata),
            (run::governance, llm_run_governance_field::metadata),
            (run::replay, llm_run_replay_field::metadata),
        ]
        .iter()
        .any(|(view, metadata)| nodes.iter().any(|n| n.field(view).field(metadata).exists()));
    let mut windows: Vec<WindowSeconds> = Vec::new();
    for node in nodes {
        let system_view = node.field(run::system);
        for view in [
            node.field(run::replay),
            system_view.field(system::replay),
            system_view.field(system::attribution),
        ] {
            for field in view.selection_fields() {
                let size = field
                    .arguments()
                    .ok()
                    .and_then(|args| {
                        args.into_iter()
                            .find(|(name, _)| name.as_str() == WINDOW_SECONDS)
                            .and_then(|(_, v)| match v {
                                async_graphql::Value::Number(n) => n.as_i64(),
                                _ => None,
                            })
                    })
                    .and_then(|n| i32::try_from(n).ok());
                // An invalid size is left for the resolver to report.
                match WindowSeconds::parse(size) {
                    Ok(w) if !windows.contains(&w) => windows.push(w),
                    _ => {}
                }
            }
        }
    }
    // Each trace reads the columns it shows; every other view of steps reads them all.
    let mut steps: Vec<StepColumns> = nodes
        .iter()
        .flat_map(|n| n.field(run::trace).selection_fields())
        .map(|trace| trace_step_columns(&trace))
        .collect();
    if selected(run::replay) || selected(run::export) || in_system {
        steps.push(StepColumns::all());
    }
    // Likewise for each governance view's policy events.
    let mut governance: Vec<EventColumns> = nodes
        .iter()
        .flat_map(|n| n.field(run::governance).selection_fields())
        .map(|view| governance_event_columns(&view))
        .collect();
    if metadata || selected(run::replay) || selected(run::export) {
        governance.push(EventColumns::all());
    }
    RunPrefetch {
        governance,
        spine: metadata || selected(run::export) || in_system,
        steps,
        telemetry: nodes
            .iter()
            .any(|n| n.field(run::system).field(system::telemetry).exists()),
        windows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The look-ahead's names are the schema's: a field the declarations name exists in
    /// the schema under that name, and so does the windows' argument.
    #[test]
    fn prefetch_names_are_schema_names() {
        let sdl = crate::graphql::build_schema(&Default::default()).sdl();
        for (ty, field) in [
            ("LlmRun", run::system),
            ("LlmRun", run::metadata),
            ("LlmRun", run::export),
            ("SystemRun", system::telemetry),
        ] {
            let start = sdl
                .find(&format!("type {ty} "))
                .unwrap_or_else(|| panic!("type {ty}"));
            let body = &sdl[start..start + sdl[start..].find("\n}").unwrap_or(0)];
            assert!(body.contains(&format!("\t{field}")), "{ty}.{field}");
        }
        assert!(sdl.contains(&format!("replay({WINDOW_SECONDS}: Int)")));
    }
}
