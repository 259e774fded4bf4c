//! The semantic conventions runledger reads from spans: which attribute becomes which field,
//! with precedence (the first key present wins), for the three families instrumentations use —
//! OpenTelemetry GenAI (current and older spellings), OpenInference (Phoenix/Arize) and
//! OpenLLMetry (Traceloop). The table in docs/otlp.md ("Attributes") is this file, in prose.
//!
//! Attributes named here are mapped; content attributes (prompts, completions, instructions,
//! tool arguments and results) are content; every other attribute, and every event that
//! carries no content, is kept as the step's unmapped attributes.

/// Provider of the model.
pub const PROVIDER: &[&str] = &[
    "gen_ai.provider.name",
    "gen_ai.system",
    "llm.provider",
    "llm.system",
];
/// Model asked for.
pub const REQUEST_MODEL: &[&str] = &["gen_ai.request.model", "llm.request.model"];
/// Model that answered (OpenInference's `llm.model_name` is the model the call used).
pub const RESPONSE_MODEL: &[&str] = &[
    "gen_ai.response.model",
    "llm.response.model",
    "llm.model_name",
];
/// Prompt (input) tokens.
pub const INPUT_TOKENS: &[&str] = &[
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.usage.prompt_tokens",
    "llm.token_count.prompt",
];
/// Completion (output) tokens.
pub const OUTPUT_TOKENS: &[&str] = &[
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.usage.completion_tokens",
    "llm.token_count.completion",
];
/// Input tokens read from the provider's prompt cache.
pub const CACHE_READ_TOKENS: &[&str] = &[
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
];
/// Input tokens written to the provider's prompt cache.
pub const CACHE_CREATION_TOKENS: &[&str] = &[
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
];
/// Cost in US cents (runledger's own attribute: no convention has an agreed cost).
pub const COST_CENTS: &[&str] = &["runledger.cost_cents"];
/// Session (conversation) of the span.
pub const SESSION: &[&str] = &["gen_ai.conversation.id", "session.id"];
/// Tool a step ran (else Traceloop's `traceloop.entity.name` on a `tool` span, else the span
/// name).
pub const TOOL: &[&str] = &["gen_ai.tool.name", "tool.name"];
/// Traceloop's name of the entity (workflow, task, agent, tool) a span is.
pub const TRACELOOP_ENTITY: &str = "traceloop.entity.name";
/// The run id a producer chose (else the trace id).
pub const RUN_ID: &[&str] = &["runledger.run.id"];
/// The agent of a run.
pub const AGENT: &[&str] = &["gen_ai.agent.id", "gen_ai.agent.name", "agent.name"];
/// The human of a run.
pub const HUMAN: &[&str] = &["enduser.id", "user.id"];
/// Why a failed step failed.
pub const ERROR_TYPE: &[&str] = &["error.type"];
/// What a span is: `invoke_agent`, `chat`, `execute_tool` (GenAI); `AGENT`, `LLM`, `TOOL`,
/// `CHAIN` (OpenInference); `workflow`, `agent`, `task`, `tool` (Traceloop).
pub const GENAI_OPERATION: &str = "gen_ai.operation.name";
pub const OPENINFERENCE_KIND: &str = "openinference.span.kind";
pub const TRACELOOP_KIND: &str = "traceloop.span.kind";

/// Every attribute key above: mapped to a field, so not kept among the unmapped ones.
pub fn is_mapped(key: &str) -> bool {
    [
        PROVIDER,
        REQUEST_MODEL,
        RESPONSE_MODEL,
        INPUT_TOKENS,
        OUTPUT_TOKENS,
        CACHE_READ_TOKENS,
        CACHE_CREATION_TOKENS,
        COST_CENTS,
        SESSION,
        TOOL,
        RUN_ID,
        AGENT,
        HUMAN,
        ERROR_TYPE,
        &[
            TRACELOOP_ENTITY,
            GENAI_OPERATION,
            OPENINFERENCE_KIND,
            TRACELOOP_KIND,
        ],
    ]
    .iter()
    .any(|keys| keys.contains(&key))
}

/// Attributes that are content, whole keys.
const CONTENT_KEYS: &[&str] = &[
    // GenAI (current): on the span or on a `gen_ai.client.inference.operation.details` event.
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    // OpenInference.
    "input.value",
    "output.value",
    "llm.prompts",
    // Traceloop.
    "traceloop.entity.input",
    "traceloop.entity.output",
];

/// Attributes that are content, by prefix (flattened message lists).
const CONTENT_PREFIXES: &[&str] = &[
    // Traceloop and older GenAI: `gen_ai.prompt.0.content`, `gen_ai.completion.0.role`…
    "gen_ai.prompt.",
    "gen_ai.completion.",
    // OpenInference: `llm.input_messages.0.message.content`…
    "llm.input_messages.",
    "llm.output_messages.",
];

/// Whether an attribute (of a span or of an event) is content.
pub fn is_content(key: &str) -> bool {
    CONTENT_KEYS.contains(&key) || CONTENT_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Events that are content as a whole: the older GenAI message events (their body is the
/// message).
pub fn is_content_event(name: &str) -> bool {
    matches!(
        name,
        "gen_ai.system.message"
            | "gen_ai.user.message"
            | "gen_ai.assistant.message"
            | "gen_ai.tool.message"
            | "gen_ai.choice"
            | "gen_ai.content.prompt"
            | "gen_ai.content.completion"
    )
}

/// Whether a span's kind says it is an agent invocation (a run's root when its parent is in
/// another service).
pub fn is_agent_kind(
    operation: Option<&str>,
    openinference: Option<&str>,
    traceloop: Option<&str>,
) -> bool {
    operation == Some("invoke_agent")
        || openinference == Some("AGENT")
        || matches!(traceloop, Some("agent" | "workflow"))
}
