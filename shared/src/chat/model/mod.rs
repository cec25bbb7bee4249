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

#[derive(Clone, Debug)]
pub struct ChatRequest {
    /// The conversation, system message(s) first.
    pub messages: Vec<ChatMessage>,
    pub passages: Vec<Passage>,
    pub max_tokens: u32,
    pub temperature: f32,
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
    /// "stop", "length", ...
    pub finish_reason: Option<String>,
    /// true for the offline extractive mode
    pub extractive: bool,
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
    /// equals [`ChatAnswer::text`]).
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
