//! OpenAI-compatible chat completions: `POST {base_url}/chat/completions`, streamed (OpenAI,
//! vLLM, Ollama, llama.cpp server, ...).

use super::sse::SseEvent;
use super::transport::{
    endpoint, incomplete_stream, malformed, secret_header, to_u32, Decoded, Failure, Limits, StreamDecoder, Transport,
};
use super::{
    estimate_messages, estimate_output, estimate_tool_context, parse_tool_arguments, render_messages, ChatAnswer,
    ChatError, ChatMessage, ChatModel, ChatRequest, DeltaSink, ToolCall, ToolRound, Usage,
};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Clone)]
pub struct OpenAiChatConfig {
    /// e.g. `https://api.openai.com/v1`, `http://localhost:11434/v1` (Ollama),
    /// `http://localhost:8000/v1` (vLLM); `/chat/completions` is appended.
    pub base_url: String,
    /// Sent as `Authorization: Bearer ...` when set.
    pub api_key: Option<String>,
    pub model: String,
    /// Whole request, streaming included.
    pub timeout: Duration,
    /// Until the response headers and the first body bytes arrive.
    pub first_byte_timeout: Duration,
    /// Retries after the first attempt, for 429, 5xx, connect errors and timeouts, as long as
    /// nothing was streamed yet.
    pub max_retries: u32,
    /// First backoff delay; doubles per retry (plus jitter), capped at 30 s.
    pub initial_backoff: Duration,
}

impl Default for OpenAiChatConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".to_string(),
            api_key: None,
            model: "gpt-4o-mini".to_string(),
            timeout: Duration::from_secs(60),
            first_byte_timeout: Duration::from_secs(20),
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
        }
    }
}

/// Hand-written so the API key never reaches a log line.
impl std::fmt::Debug for OpenAiChatConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiChatConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("first_byte_timeout", &self.first_byte_timeout)
            .field("max_retries", &self.max_retries)
            .field("initial_backoff", &self.initial_backoff)
            .finish()
    }
}

/// Streams from `POST {base_url}/chat/completions`.
pub struct OpenAiChatModel {
    cfg: OpenAiChatConfig,
    transport: Transport,
}

impl std::fmt::Debug for OpenAiChatModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiChatModel")
            .field("cfg", &self.cfg)
            .field("endpoint", &self.transport.endpoint)
            .finish_non_exhaustive()
    }
}

impl OpenAiChatModel {
    pub fn new(cfg: OpenAiChatConfig) -> Result<Self, ChatError> {
        let endpoint = endpoint(&cfg.base_url, "chat/completions")?;
        let mut headers = HeaderMap::new();
        if let Some(key) = &cfg.api_key {
            headers.insert(reqwest::header::AUTHORIZATION, secret_header(&format!("Bearer {key}"))?);
        }
        let limits = Limits {
            timeout: cfg.timeout,
            first_byte_timeout: cfg.first_byte_timeout,
            max_retries: cfg.max_retries,
            initial_backoff: cfg.initial_backoff,
        };
        let transport = Transport::new("openai", endpoint, headers, limits)?;
        Ok(Self { cfg, transport })
    }

    pub fn config(&self) -> &OpenAiChatConfig {
        &self.cfg
    }

    /// The full URL requests go to, `{base_url}/chat/completions`.
    pub fn endpoint(&self) -> &str {
        &self.transport.endpoint
    }

    /// The request: `messages`, then `req.rounds` (each an assistant message with its
    /// `tool_calls` and one `tool` message per result), and `tools` when any are offered.
    pub(super) fn request_body(&self, messages: &[ChatMessage], req: &ChatRequest) -> Value {
        let mut rendered: Vec<Value> = messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect();
        for round in &req.rounds {
            rendered.extend(openai_round(round));
        }
        let mut body = json!({
            "model": self.cfg.model,
            "messages": rendered,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
        });
        if !req.tools.is_empty() {
            let tools: Vec<Value> = req
                .tools
                .iter()
                .map(|tool| {
                    json!({"type": "function", "function": {
                        "name": tool.name, "description": tool.description, "parameters": tool.parameters,
                    }})
                })
                .collect();
            body["tools"] = Value::Array(tools);
            body["tool_choice"] = Value::String("auto".to_string());
        }
        body
    }
}

#[async_trait]
impl ChatModel for OpenAiChatModel {
    fn name(&self) -> &str {
        &self.cfg.model
    }

    async fn complete(&self, req: &ChatRequest, on_delta: DeltaSink<'_>) -> Result<ChatAnswer, ChatError> {
        let messages = render_messages(req);
        let body = self.request_body(&messages, req);
        let estimated_input = estimate_messages(&messages).saturating_add(estimate_tool_context(req));
        let decoder = OpenAiDecoder::new(&self.cfg.model, estimated_input);
        self.transport.complete(&body, decoder, on_delta).await
    }
}

/// One replayed round: the assistant message with its `tool_calls` (left out when the round has
/// neither text nor calls), then one `tool` message per result.
fn openai_round(round: &ToolRound) -> Vec<Value> {
    let mut out = Vec::with_capacity(round.results.len() + 1);
    if !round.calls.is_empty() || !round.text.trim().is_empty() {
        let content = if round.text.trim().is_empty() { Value::Null } else { Value::String(round.text.clone()) };
        let mut message = json!({"role": "assistant", "content": content});
        if !round.calls.is_empty() {
            let calls: Vec<Value> = round
                .calls
                .iter()
                .map(|call| {
                    json!({"id": call.id, "type": "function", "function": {
                        "name": call.name, "arguments": openai_arguments(&call.arguments),
                    }})
                })
                .collect();
            message["tool_calls"] = Value::Array(calls);
        }
        out.push(message);
    }
    for result in &round.results {
        let content = if result.is_error { format!("Error: {}", result.content) } else { result.content.clone() };
        out.push(json!({"role": "tool", "tool_call_id": result.call_id, "content": content}));
    }
    out
}

/// A call's arguments as the JSON text OpenAI expects; arguments that were not JSON (kept as a
/// string) go back exactly as the model wrote them.
fn openai_arguments(arguments: &Value) -> String {
    match arguments {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}

/// A stream chunk (`chat.completion.chunk`), or a whole `chat.completion`. Every field is
/// optional: servers differ in what they send, and some send `null`.
#[derive(Debug, Default, Deserialize)]
struct OpenAiChunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<OpenAiChoice>>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct OpenAiChoice {
    #[serde(default)]
    index: Option<u32>,
    /// Streamed chunks.
    #[serde(default)]
    delta: Option<OpenAiContent>,
    /// Whole (non-streamed) responses.
    #[serde(default)]
    message: Option<OpenAiContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OpenAiContent {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<OpenAiToolCallFragment>>,
}

/// A piece of a tool call: streamed, the first fragment of a call has its `index`, `id` and
/// name, later ones the same `index` and more argument text; whole responses have whole calls.
#[derive(Debug, Deserialize)]
struct OpenAiToolCallFragment {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<OpenAiFunctionFragment>,
}

#[derive(Debug, Deserialize)]
struct OpenAiFunctionFragment {
    #[serde(default)]
    name: Option<String>,
    /// JSON text (a piece of it when streamed); a few servers send an object instead.
    #[serde(default)]
    arguments: Option<Value>,
}

/// A tool call being accumulated from its fragments.
#[derive(Clone, Debug, Default)]
struct PendingCall {
    index: Option<u32>,
    id: String,
    name: String,
    arguments: String,
}

#[derive(Debug, Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Clone, Debug)]
pub(super) struct OpenAiDecoder {
    model: String,
    estimated_input: u32,
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
    finish_reason: Option<String>,
    calls: Vec<PendingCall>,
}

impl OpenAiDecoder {
    pub(super) fn new(model: &str, estimated_input: u32) -> Self {
        Self {
            model: model.to_string(),
            estimated_input,
            input_tokens: None,
            output_tokens: None,
            finish_reason: None,
            calls: Vec::new(),
        }
    }

    /// Adds a tool-call fragment to its call: the one with the same `index`; without an index,
    /// the one with the same id, or (no id either) the last one.
    fn absorb_call(&mut self, fragment: OpenAiToolCallFragment) {
        let id = fragment.id.filter(|id| !id.is_empty());
        let position = match (fragment.index, &id) {
            (Some(index), _) => self.calls.iter().position(|c| c.index == Some(index)),
            (None, Some(id)) => self.calls.iter().position(|c| c.id == *id),
            (None, None) => self.calls.len().checked_sub(1),
        };
        let position = match position {
            Some(position) => position,
            None => {
                self.calls.push(PendingCall { index: fragment.index, ..PendingCall::default() });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[position];
        if let Some(id) = id.filter(|_| call.id.is_empty()) {
            call.id = id;
        }
        let Some(function) = fragment.function else {
            return;
        };
        if let Some(name) = function.name.filter(|name| !name.is_empty() && call.name.is_empty()) {
            call.name = name;
        }
        match function.arguments {
            Some(Value::String(piece)) => call.arguments.push_str(&piece),
            None | Some(Value::Null) => {}
            Some(other) => call.arguments.push_str(&other.to_string()),
        }
    }

    /// Takes in one chunk; its text is appended to `text`.
    fn absorb(&mut self, chunk: OpenAiChunk, text: &mut String) -> Result<(), Failure> {
        if let Some(error) = chunk.error {
            return Err(openai_error(&error));
        }
        if let Some(model) = chunk.model.filter(|m| !m.trim().is_empty()) {
            self.model = model;
        }
        if let Some(usage) = chunk.usage {
            if let Some(n) = usage.prompt_tokens {
                self.input_tokens = Some(to_u32(n));
            }
            if let Some(n) = usage.completion_tokens {
                self.output_tokens = Some(to_u32(n));
            }
        }
        for choice in chunk.choices.unwrap_or_default().into_iter().filter(|c| c.index.unwrap_or(0) == 0) {
            if let Some(content) = choice.delta.or(choice.message) {
                if let Some(piece) = content.content {
                    text.push_str(&piece);
                }
                for fragment in content.tool_calls.unwrap_or_default() {
                    self.absorb_call(fragment);
                }
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                self.finish_reason = Some(reason);
            }
        }
        Ok(())
    }
}

/// An `{"error": {...}}` object inside a 200 response (OpenAI, vLLM and others send these
/// mid-stream). A numeric `code` is used as the status when it looks like one.
fn openai_error(error: &Value) -> Failure {
    let status = error
        .get("code")
        .and_then(Value::as_u64)
        .filter(|code| (400..=599).contains(code))
        .and_then(|code| u16::try_from(code).ok())
        .unwrap_or(500);
    let message = match error.get("message").and_then(Value::as_str) {
        Some(message) => message.to_string(),
        None => error.to_string(),
    };
    Failure::provider(status, &message)
}

impl StreamDecoder for OpenAiDecoder {
    fn event(&mut self, event: &SseEvent) -> Result<Decoded, Failure> {
        let mut decoded = Decoded::default();
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(decoded);
        }
        // A few servers put several payloads into one event (`data:` lines without blank lines
        // between them), which SSE joins with "\n"; such data is handled line by line.
        let payloads: Vec<&str> = if data.contains('\n') && serde_json::from_str::<serde::de::IgnoredAny>(data).is_err()
        {
            data.lines().map(str::trim).filter(|line| !line.is_empty()).collect()
        } else {
            vec![data]
        };
        for payload in payloads {
            if payload == "[DONE]" {
                decoded.done = true;
                break;
            }
            let chunk: OpenAiChunk =
                serde_json::from_str(payload).map_err(|e| malformed("decoding a stream chunk", e))?;
            self.absorb(chunk, &mut decoded.text)?;
        }
        Ok(decoded)
    }

    fn whole(&mut self, body: &[u8]) -> Result<String, Failure> {
        let chunk: OpenAiChunk = serde_json::from_slice(body).map_err(|e| malformed("decoding the response", e))?;
        let mut text = String::new();
        self.absorb(chunk, &mut text)?;
        Ok(text)
    }

    fn finish(self, text: String, done: bool) -> Result<ChatAnswer, Failure> {
        if !done && self.finish_reason.is_none() {
            return Err(incomplete_stream());
        }
        let mut calls = self.calls;
        calls.sort_by_key(|call| call.index.unwrap_or(u32::MAX));
        let tool_calls: Vec<ToolCall> = calls
            .into_iter()
            .map(|call| ToolCall { id: call.id, name: call.name, arguments: parse_tool_arguments(&call.arguments) })
            .collect();
        let usage = Usage {
            input_tokens: self.input_tokens.unwrap_or(self.estimated_input),
            output_tokens: self.output_tokens.unwrap_or_else(|| estimate_output(&text, &tool_calls)),
        };
        // Some servers (Ollama, vLLM) end a tool-calling answer with "stop".
        let finish_reason = if !tool_calls.is_empty() && matches!(self.finish_reason.as_deref(), None | Some("stop")) {
            Some("tool_calls".to_string())
        } else {
            self.finish_reason
        };
        Ok(ChatAnswer { text, model: self.model, usage, finish_reason, extractive: false, tool_calls })
    }
}
