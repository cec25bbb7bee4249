//! Chat models: the [`ChatModel`] trait the chat turn calls, and its implementations.
//!
//! - [`OpenAiChatModel`]: OpenAI-compatible `POST {base_url}/chat/completions`, streamed (OpenAI,
//!   vLLM, Ollama, llama.cpp server, ...).
//! - [`AnthropicChatModel`]: Anthropic Messages API `POST {base_url}/v1/messages`, streamed.
//! - [`ExtractiveModel`]: offline, no network; answers with the best passages verbatim.
//!
//! Both remote models put the retrieved passages into the system prompt ([`render_messages`]),
//! retry 429/5xx/connect failures/timeouts with exponential backoff and jitter (honouring
//! `Retry-After`) as long as no text has been streamed to the caller, and never retry after that.
//!
//! Function calling: a request may offer [`ToolSpec`]s and replay earlier [`ToolRound`]s of the
//! turn; an answer that stops to call tools carries them in [`ChatAnswer::tool_calls`]. Tool-call
//! fragments are never passed to `on_delta`, so a stream that fails after some of them (but
//! before any text) is still retried: each attempt decodes from scratch and only the last
//! attempt's calls are returned.

mod anthropic;
mod extractive;
mod openai;
mod prompt;
mod sse;
#[cfg(test)]
mod tests;
mod transport;

pub use anthropic::{AnthropicChatConfig, AnthropicChatModel, ANTHROPIC_VERSION};
pub use extractive::{ExtractiveModel, EXTRACTIVE_MODEL_NAME};
pub use openai::{OpenAiChatConfig, OpenAiChatModel};
pub use prompt::render_messages;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

/// A retrieved passage the model may cite: [n] markers in the answer refer to `number`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Passage {
    pub number: usize,
    pub source: String,
    pub text: String,
    pub score: f32,
}

/// A function the model may call (OpenAI `tools[].function`, Anthropic `tools[]`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments (an object schema).
    pub parameters: serde_json::Value,
}

/// A call the model asked for.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolCall {
    /// The provider's call id (`call_...`, `toolu_...`), echoed with the result.
    pub id: String,
    pub name: String,
    /// The arguments as parsed JSON; when the model sent text that is not JSON, that text as a `Value::String`.
    pub arguments: serde_json::Value,
}

/// What a call returned, sent back to the model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolResult {
    pub call_id: String,
    pub content: String,
    pub is_error: bool,
}

/// One round of calls the model made and their results, replayed after the conversation's messages.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolRound {
    /// Text the model wrote before the calls in that round (may be empty).
    pub text: String,
    pub calls: Vec<ToolCall>,
    pub results: Vec<ToolResult>,
}

#[derive(Clone, Debug)]
pub struct ChatRequest {
    /// The conversation, system message(s) first.
    pub messages: Vec<ChatMessage>,
    pub passages: Vec<Passage>,
    pub max_tokens: u32,
    pub temperature: f32,
    /// Functions offered to the model; empty sends no tools (the request body is then the same
    /// as without function calling).
    pub tools: Vec<ToolSpec>,
    /// Earlier rounds of this turn, rendered after `messages`.
    pub rounds: Vec<ToolRound>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatAnswer {
    pub text: String,
    pub model: String,
    pub usage: Usage,
    /// "stop", "length", "tool_calls", ...
    pub finish_reason: Option<String>,
    /// true for the offline extractive mode
    pub extractive: bool,
    /// Non-empty when the model stopped to call tools (`finish_reason` is then "tool_calls", also
    /// for Anthropic's "tool_use", unless the answer was cut short, e.g. "length"); `text` holds
    /// any text it wrote before the calls.
    pub tool_calls: Vec<ToolCall>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("chat request failed: {0}")]
    Http(String),
    #[error("chat provider answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("chat response malformed: {0}")]
    Malformed(String),
    #[error("chat request timed out")]
    Timeout,
}

/// Receives streamed text as it arrives (called in order, from the task awaiting `complete`).
pub type DeltaSink<'a> = &'a mut (dyn FnMut(&str) + Send);

#[async_trait]
pub trait ChatModel: Send + Sync {
    /// Model id, e.g. "gpt-4o-mini", "claude-3-5-haiku-latest", "extractive".
    fn name(&self) -> &str;
    /// Generates the answer, calling `on_delta` with each streamed piece (the concatenation
    /// equals [`ChatAnswer::text`]). Tool calls are not streamed; they come with the answer.
    async fn complete(&self, req: &ChatRequest, on_delta: DeltaSink<'_>) -> Result<ChatAnswer, ChatError>;
}

/// A rough token count for text whose real count is unknown: one token per four characters,
/// rounded up.
pub fn estimate_tokens(text: &str) -> u32 {
    u32::try_from(text.chars().count().div_ceil(4)).unwrap_or(u32::MAX)
}

fn estimate_messages(messages: &[ChatMessage]) -> u32 {
    messages.iter().fold(0u32, |total, m| total.saturating_add(estimate_tokens(&m.content)))
}

/// A rough token count of what a request sends besides its messages: the tool specs and the
/// earlier rounds (estimated on their JSON).
fn estimate_tool_context(req: &ChatRequest) -> u32 {
    let tools = if req.tools.is_empty() { 0 } else { estimate_json(&req.tools) };
    let rounds = if req.rounds.is_empty() { 0 } else { estimate_json(&req.rounds) };
    tools.saturating_add(rounds)
}

/// A rough token count of an answer whose real count is unknown: its text and its calls' JSON.
fn estimate_output(text: &str, calls: &[ToolCall]) -> u32 {
    let calls = if calls.is_empty() { 0 } else { estimate_json(calls) };
    estimate_tokens(text).saturating_add(calls)
}

fn estimate_json<T: Serialize + ?Sized>(value: &T) -> u32 {
    serde_json::to_string(value).map_or(0, |json| estimate_tokens(&json))
}

/// A call's accumulated argument text as JSON: `{}` when empty, the text itself as a string
/// when it is not JSON.
fn parse_tool_arguments(raw: &str) -> serde_json::Value {
    if raw.trim().is_empty() {
        return serde_json::Value::Object(serde_json::Map::new());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_string()))
}
