//! Anthropic Messages API: `POST {base_url}/v1/messages`, streamed.

use super::sse::SseEvent;
use super::transport::{
    endpoint, incomplete_stream, malformed, secret_header, to_u32, Decoded, Failure, Limits, StreamDecoder, Transport,
};
use super::{
    estimate_messages, estimate_output, estimate_tool_context, parse_tool_arguments, render_messages, ChatAnswer,
    ChatError, ChatMessage, ChatModel, ChatRequest, DeltaSink, Role, ToolCall, ToolRound, Usage,
};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::{json, Value};

/// The `anthropic-version` header sent with every request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Stands in for the first user message when a conversation starts with the assistant (the
/// Messages API requires the first message to be the user's).
pub(super) const CONVERSATION_START: &str = "(start of conversation)";

#[derive(Clone)]
pub struct AnthropicChatConfig {
    /// e.g. `https://api.anthropic.com`; `/v1/messages` is appended (just `/messages` when the
    /// base already ends in `/v1`).
    pub base_url: String,
    /// Sent as `x-api-key` when set.
    pub api_key: Option<String>,
    pub model: String,
    /// Whole request, streaming included.
    pub timeout: Duration,
    /// Until the response headers and the first body bytes arrive.
    pub first_byte_timeout: Duration,
    /// Retries after the first attempt, for 429, 5xx (529 "overloaded" included), connect
    /// errors and timeouts, as long as nothing was streamed yet.
    pub max_retries: u32,
    /// First backoff delay; doubles per retry (plus jitter), capped at 30 s.
    pub initial_backoff: Duration,
}

impl Default for AnthropicChatConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.anthropic.com".to_string(),
            api_key: None,
            model: "claude-3-5-haiku-latest".to_string(),
            timeout: Duration::from_secs(60),
            first_byte_timeout: Duration::from_secs(20),
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
        }
    }
}

/// Hand-written so the API key never reaches a log line.
impl std::fmt::Debug for AnthropicChatConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicChatConfig")
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

/// Streams from `POST {base_url}/v1/messages`.
pub struct AnthropicChatModel {
    cfg: AnthropicChatConfig,
    transport: Transport,
}

impl std::fmt::Debug for AnthropicChatModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicChatModel")
            .field("cfg", &self.cfg)
            .field("endpoint", &self.transport.endpoint)
            .finish_non_exhaustive()
    }
}

impl AnthropicChatModel {
    pub fn new(cfg: AnthropicChatConfig) -> Result<Self, ChatError> {
        let base = cfg.base_url.trim().trim_end_matches('/');
        let suffix = if base.ends_with("/v1") { "messages" } else { "v1/messages" };
        let endpoint = endpoint(&cfg.base_url, suffix)?;
        let mut headers = HeaderMap::new();
        if let Some(key) = &cfg.api_key {
            headers.insert(HeaderName::from_static("x-api-key"), secret_header(key)?);
        }
        headers.insert(HeaderName::from_static("anthropic-version"), HeaderValue::from_static(ANTHROPIC_VERSION));
        let limits = Limits {
            timeout: cfg.timeout,
            first_byte_timeout: cfg.first_byte_timeout,
            max_retries: cfg.max_retries,
            initial_backoff: cfg.initial_backoff,
        };
        let transport = Transport::new("anthropic", endpoint, headers, limits)?;
        Ok(Self { cfg, transport })
    }

    pub fn config(&self) -> &AnthropicChatConfig {
        &self.cfg
    }

    /// The full URL requests go to, `{base_url}/v1/messages`.
    pub fn endpoint(&self) -> &str {
        &self.transport.endpoint
    }

    /// The request: `messages`, then `req.rounds` (each an assistant message with its `tool_use`
    /// blocks and a user message with the `tool_result`s), and `tools` when any are offered.
    pub(super) fn request_body(&self, system: &str, messages: &[AnthropicMessage], req: &ChatRequest) -> Value {
        let mut rendered: Vec<Value> = messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect();
        for round in &req.rounds {
            push_round(&mut rendered, round);
        }
        let mut body = json!({
            "model": self.cfg.model,
            "max_tokens": req.max_tokens,
            "messages": rendered,
            "stream": true,
            "temperature": req.temperature.clamp(0.0, 1.0),
        });
        if !system.is_empty() {
            body["system"] = Value::String(system.to_string());
        }
        if !req.tools.is_empty() {
            let tools: Vec<Value> = req
                .tools
                .iter()
                .map(
                    |tool| json!({"name": tool.name, "description": tool.description, "input_schema": tool.parameters}),
                )
                .collect();
            body["tools"] = Value::Array(tools);
        }
        body
    }
}

#[async_trait]
impl ChatModel for AnthropicChatModel {
    fn name(&self) -> &str {
        &self.cfg.model
    }

    async fn complete(&self, req: &ChatRequest, on_delta: DeltaSink<'_>) -> Result<ChatAnswer, ChatError> {
        let rendered = render_messages(req);
        let (system, messages) = anthropic_prompt(&rendered);
        let body = self.request_body(&system, &messages, req);
        let estimated_input = estimate_messages(&rendered).saturating_add(estimate_tool_context(req));
        let decoder = AnthropicDecoder::new(&self.cfg.model, estimated_input);
        self.transport.complete(&body, decoder, on_delta).await
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct AnthropicMessage {
    pub(super) role: &'static str,
    pub(super) content: String,
}

/// Splits rendered messages into the Messages API's `system` string (all system messages, in
/// order) and `messages`: empty ones dropped, consecutive same-role ones merged (the API wants
/// user and assistant to alternate), and a placeholder user message first when the conversation
/// would otherwise start with the assistant (or be empty).
pub(super) fn anthropic_prompt(messages: &[ChatMessage]) -> (String, Vec<AnthropicMessage>) {
    let mut system: Vec<&str> = Vec::new();
    let mut out: Vec<AnthropicMessage> = Vec::new();
    for message in messages {
        let content = message.content.trim();
        if content.is_empty() {
            continue;
        }
        let role = match message.role {
            Role::System => {
                system.push(content);
                continue;
            }
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        match out.last_mut() {
            Some(last) if last.role == role => {
                last.content.push_str("\n\n");
                last.content.push_str(content);
            }
            _ => out.push(AnthropicMessage { role, content: content.to_string() }),
        }
    }
    if !matches!(out.first(), Some(first) if first.role == "user") {
        out.insert(0, AnthropicMessage { role: "user", content: CONVERSATION_START.to_string() });
    }
    (system.join("\n\n"), out)
}

/// Appends one replayed round: an assistant message with the round's text and `tool_use` blocks,
/// then one user message with a `tool_result` block per result. Each is merged into the previous
/// message when that has the same role, so user and assistant keep alternating.
fn push_round(messages: &mut Vec<Value>, round: &ToolRound) {
    let mut assistant = Vec::with_capacity(round.calls.len() + 1);
    if !round.text.trim().is_empty() {
        assistant.push(json!({"type": "text", "text": round.text}));
    }
    for call in &round.calls {
        let input = if call.arguments.is_object() { call.arguments.clone() } else { json!({"value": call.arguments}) };
        assistant.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
    }
    push_blocks(messages, "assistant", assistant);
    let results = round
        .results
        .iter()
        .map(|result| {
            let mut block = json!({"type": "tool_result", "tool_use_id": result.call_id, "content": result.content});
            if result.is_error {
                block["is_error"] = Value::Bool(true);
            }
            block
        })
        .collect();
    push_blocks(messages, "user", results);
}

/// Appends a message with content `blocks` (none: nothing), merged into the last message when
/// that has the same role.
fn push_blocks(messages: &mut Vec<Value>, role: &'static str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    match messages.last_mut() {
        Some(last) if last["role"] == role => {
            let mut content = match last["content"].take() {
                Value::String(text) if text.is_empty() => Vec::new(),
                Value::String(text) => vec![json!({"type": "text", "text": text})],
                Value::Array(existing) => existing,
                _ => Vec::new(),
            };
            content.extend(blocks);
            last["content"] = Value::Array(content);
        }
        _ => messages.push(json!({"role": role, "content": blocks})),
    }
}

/// Anthropic stop reasons in the OpenAI vocabulary ("stop", "length", ...) so callers see one
/// set; unknown ones pass through.
pub(super) fn normalize_stop_reason(reason: &str) -> String {
    match reason {
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" => "length",
        "refusal" => "content_filter",
        "tool_use" => "tool_calls",
        other => other,
    }
    .to_string()
}

/// Status codes Anthropic documents for its error types.
fn anthropic_error_status(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// An `"error": {"type": ..., "message": ...}` object inside a 200 response.
fn anthropic_error(error: &Value) -> Failure {
    let kind = error.get("type").and_then(Value::as_str).unwrap_or("api_error");
    let message = error.get("message").and_then(Value::as_str).unwrap_or("unknown error");
    Failure::provider(anthropic_error_status(kind), &format!("{kind}: {message}"))
}

/// A `tool_use` content block being accumulated: its `input` from the block start (complete in
/// whole responses, `{}` when streamed), and the streamed `input_json_delta` text.
#[derive(Clone, Debug)]
struct PendingToolUse {
    index: Option<u64>,
    id: String,
    name: String,
    input: Value,
    json: String,
}

impl PendingToolUse {
    fn new(index: Option<u64>, block: &Value) -> Self {
        Self {
            index,
            id: block["id"].as_str().unwrap_or_default().to_string(),
            name: block["name"].as_str().unwrap_or_default().to_string(),
            input: block["input"].clone(),
            json: String::new(),
        }
    }

    /// The streamed JSON when there was any, else the input the block started with.
    fn into_call(self) -> ToolCall {
        let arguments = if !self.json.trim().is_empty() {
            parse_tool_arguments(&self.json)
        } else if self.input.is_null() {
            parse_tool_arguments("")
        } else {
            self.input
        };
        ToolCall { id: self.id, name: self.name, arguments }
    }
}

#[derive(Clone, Debug)]
pub(super) struct AnthropicDecoder {
    model: String,
    estimated_input: u32,
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
    stop_reason: Option<String>,
    tool_uses: Vec<PendingToolUse>,
}

impl AnthropicDecoder {
    pub(super) fn new(model: &str, estimated_input: u32) -> Self {
        Self {
            model: model.to_string(),
            estimated_input,
            input_tokens: None,
            output_tokens: None,
            stop_reason: None,
            tool_uses: Vec::new(),
        }
    }

    fn read_model(&mut self, value: &Value) {
        if let Some(model) = value.get("model").and_then(Value::as_str).filter(|m| !m.trim().is_empty()) {
            self.model = model.to_string();
        }
    }

    /// A `usage` object; input counts cached prompt tokens too.
    fn read_usage(&mut self, usage: &Value) {
        if let Some(input) = usage.get("input_tokens").and_then(Value::as_u64) {
            let cached: u64 = ["cache_creation_input_tokens", "cache_read_input_tokens"]
                .iter()
                .filter_map(|field| usage.get(*field).and_then(Value::as_u64))
                .sum();
            self.input_tokens = Some(to_u32(input.saturating_add(cached)));
        }
        if let Some(output) = usage.get("output_tokens").and_then(Value::as_u64) {
            self.output_tokens = Some(to_u32(output));
        }
    }

    fn read_stop_reason(&mut self, reason: &Value) {
        if let Some(reason) = reason.as_str().filter(|r| !r.is_empty()) {
            self.stop_reason = Some(normalize_stop_reason(reason));
        }
    }
}

impl StreamDecoder for AnthropicDecoder {
    fn event(&mut self, event: &SseEvent) -> Result<Decoded, Failure> {
        let mut decoded = Decoded::default();
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(decoded);
        }
        let value: Value = serde_json::from_str(data).map_err(|e| malformed("decoding a stream event", e))?;
        let kind = value.get("type").and_then(Value::as_str).unwrap_or(event.event.as_str());
        match kind {
            "message_start" => {
                let message = &value["message"];
                self.read_model(message);
                self.read_usage(&message["usage"]);
            }
            "content_block_start" => {
                let block = &value["content_block"];
                if block["type"] == "text" {
                    decoded.text.push_str(block["text"].as_str().unwrap_or_default());
                } else if block["type"] == "tool_use" {
                    self.tool_uses.push(PendingToolUse::new(value["index"].as_u64(), block));
                }
            }
            "content_block_delta" => {
                let delta = &value["delta"];
                if delta["type"] == "text_delta" {
                    decoded.text.push_str(delta["text"].as_str().unwrap_or_default());
                } else if delta["type"] == "input_json_delta" {
                    let index = value["index"].as_u64();
                    // The block with that index; without an index, the last one started.
                    let pending = match index {
                        Some(_) => self.tool_uses.iter_mut().rev().find(|t| t.index == index),
                        None => self.tool_uses.last_mut(),
                    };
                    if let Some(pending) = pending {
                        pending.json.push_str(delta["partial_json"].as_str().unwrap_or_default());
                    }
                }
            }
            "message_delta" => {
                self.read_stop_reason(&value["delta"]["stop_reason"]);
                self.read_usage(&value["usage"]);
            }
            "message_stop" => decoded.done = true,
            "error" => return Err(anthropic_error(&value["error"])),
            _ => {} // ping, content_block_stop (blocks are complete at the end), and event types added later
        }
        Ok(decoded)
    }

    fn whole(&mut self, body: &[u8]) -> Result<String, Failure> {
        let value: Value = serde_json::from_slice(body).map_err(|e| malformed("decoding the response", e))?;
        if value["type"] == "error" {
            return Err(anthropic_error(&value["error"]));
        }
        self.read_model(&value);
        self.read_usage(&value["usage"]);
        self.read_stop_reason(&value["stop_reason"]);
        let blocks = value["content"].as_array().map(Vec::as_slice).unwrap_or_default();
        let text = blocks
            .iter()
            .filter(|block| block["type"] == "text")
            .filter_map(|block| block["text"].as_str())
            .collect::<String>();
        for (index, block) in blocks.iter().enumerate().filter(|(_, block)| block["type"] == "tool_use") {
            self.tool_uses.push(PendingToolUse::new(u64::try_from(index).ok(), block));
        }
        Ok(text)
    }

    fn finish(self, text: String, done: bool) -> Result<ChatAnswer, Failure> {
        if !done && self.stop_reason.is_none() {
            return Err(incomplete_stream());
        }
        let tool_calls: Vec<ToolCall> = self.tool_uses.into_iter().map(PendingToolUse::into_call).collect();
        let usage = Usage {
            input_tokens: self.input_tokens.unwrap_or(self.estimated_input),
            output_tokens: self.output_tokens.unwrap_or_else(|| estimate_output(&text, &tool_calls)),
        };
        let finish_reason = match self.stop_reason {
            None if !tool_calls.is_empty() => Some("tool_calls".to_string()),
            reason => reason,
        };
        Ok(ChatAnswer { text, model: self.model, usage, finish_reason, extractive: false, tool_calls })
    }
}
