//! A session (`LlmSession`): the runs of one conversation in start order, with their totals,
//! and the traces without a run record (`OpenTrace`).

use async_graphql::Object;

use super::run::LlmRun;
use super::usage::LlmRunUsage;
use crate::domain::Timestamp;
use crate::facade::runs::{OpenTrace as OpenTraceRow, Session};

/// The runs that named one session (`gen_ai.conversation.id`, `session.id`, or
/// `RunInput.sessionId`), in start order, and the totals over them.
pub struct LlmSession(pub Session);

#[Object]
impl LlmSession {
    /// The session id.
    async fn id(&self) -> &str {
        &self.0.session_id
    }
    /// The session's runs in start order (ties by run id), at most 1000.
    async fn runs(&self) -> Vec<LlmRun> {
        self.0.runs.iter().cloned().map(LlmRun).collect()
    }
    /// Traces of the session whose root span has not arrived: no run record yet.
    async fn open_traces(&self) -> Vec<OpenTrace> {
        self.0.open_traces.iter().cloned().map(OpenTrace).collect()
    }
    /// Totals over the runs and the open traces (each run's totals as `LlmRun.usage` derives
    /// them); provider and model only when every run agrees.
    async fn totals(&self) -> LlmRunUsage {
        LlmRunUsage(self.0.totals.clone())
    }
}

/// A trace with steps but no run record: its root span has not arrived (or never will). Its
/// totals are what its steps say.
pub struct OpenTrace(pub OpenTraceRow);

#[Object]
impl OpenTrace {
    async fn trace_id(&self) -> &str {
        &self.0.trace_id
    }
    /// The session the trace's steps name.
    async fn session_id(&self) -> Option<&str> {
        self.0.session_id.as_deref()
    }
    /// When its first step started.
    async fn first_step_at(&self) -> Timestamp {
        Timestamp(self.0.first_step_at)
    }
    /// When its last step ended.
    async fn last_step_at(&self) -> Timestamp {
        Timestamp(self.0.last_step_at)
    }
    /// Totals over its steps.
    async fn usage(&self) -> LlmRunUsage {
        LlmRunUsage(self.0.usage.clone())
    }
}
