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

use crate::adapters::retry::{backoff_delay, is_retryable_status, jitter_unit, parse_retry_after, truncate_chars};
use crate::error::error_chain;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

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

// ---------------------------------------------------------------------------------------------
// Prompt
// ---------------------------------------------------------------------------------------------

const KNOWLEDGE_HEADING: &str = "## Knowledge";
const KNOWLEDGE_INSTRUCTIONS: &str = "Answer only from the numbered passages below; do not rely on other knowledge. \
Cite each passage you use with its number in square brackets, like [1]. \
If the passages do not contain the answer, say that you could not find it instead of guessing.";
const NO_KNOWLEDGE_INSTRUCTIONS: &str = "No passages from the knowledge base matched this message. \
If answering needs facts you do not have, say that you could not find them in the knowledge base \
instead of guessing.";

/// The "Knowledge" section appended to the system prompt.
fn knowledge_section(passages: &[Passage]) -> String {
    let mut section = format!("{KNOWLEDGE_HEADING}\n\n");
    if passages.is_empty() {
        section.push_str(NO_KNOWLEDGE_INSTRUCTIONS);
        return section;
    }
    section.push_str(KNOWLEDGE_INSTRUCTIONS);
    for passage in passages {
        let source = passage.source.trim();
        let text = passage.text.trim();
        if source.is_empty() {
            section.push_str(&format!("\n\n[{}] {text}", passage.number));
        } else {
            section.push_str(&format!("\n\n[{}] ({source}) {text}", passage.number));
        }
    }
    section
}

/// The request's messages with the passages (or a note that there are none) and the instruction
/// to answer only from them, citing `[n]`, appended to the first system message. A system
/// message is added at the front when the request has none.
pub fn render_messages(req: &ChatRequest) -> Vec<ChatMessage> {
    let knowledge = knowledge_section(&req.passages);
    let mut messages = req.messages.clone();
    match messages.iter_mut().find(|m| m.role == Role::System) {
        Some(system) => {
            let base = system.content.trim_end();
            system.content = if base.is_empty() { knowledge } else { format!("{base}\n\n{knowledge}") };
        }
        None => messages.insert(0, ChatMessage { role: Role::System, content: knowledge }),
    }
    messages
}

// ---------------------------------------------------------------------------------------------
// Server-sent events
// ---------------------------------------------------------------------------------------------

/// One dispatched server-sent event.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SseEvent {
    /// The `event:` field, "message" when absent.
    event: String,
    /// The `data:` lines joined with "\n".
    data: String,
}

/// Incremental `text/event-stream` parser: bytes in (split anywhere, also inside a UTF-8
/// character or a CRLF), events out. Lines end in LF, CRLF or CR; a blank line dispatches;
/// lines starting with ':' are comments.
#[derive(Debug, Default)]
struct SseParser {
    buf: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// Feeds bytes; returns the events completed by them.
    fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            let next = match self.buf[i] {
                b'\n' => i + 1,
                b'\r' if i + 1 == self.buf.len() => break, // a CRLF may be split; wait for the next byte
                b'\r' if self.buf[i + 1] == b'\n' => i + 2,
                b'\r' => i + 1,
                _ => {
                    i += 1;
                    continue;
                }
            };
            let line = String::from_utf8_lossy(&self.buf[start..i]).into_owned();
            self.line(&line, &mut events);
            start = next;
            i = next;
        }
        self.buf.drain(..start);
        events
    }

    /// End of stream: the unterminated last line and a pending event (servers that omit the
    /// final blank line) are dispatched.
    fn finish(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let line = String::from_utf8_lossy(&rest);
            let line = line.trim_end_matches(['\r', '\n']);
            self.line(line, &mut events);
        }
        self.dispatch(&mut events);
        events
    }

    fn line(&mut self, line: &str, events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // id, retry, unknown fields
        }
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        if self.has_data {
            let event = if self.event.is_empty() { "message".to_string() } else { std::mem::take(&mut self.event) };
            events.push(SseEvent { event, data: std::mem::take(&mut self.data) });
        }
        self.event.clear();
        self.data.clear();
        self.has_data = false;
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming HTTP with retries, shared by the remote models
// ---------------------------------------------------------------------------------------------

/// Connect timeout, when the overall request timeout is longer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Error bodies kept in [`ChatError::Status`].
const MAX_ERROR_BODY_CHARS: usize = 500;
/// Longest first-byte wait honoured (keeps `Instant + Duration` from overflowing).
const MAX_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Timeouts and retry settings of one remote model.
#[derive(Clone, Copy, Debug)]
struct Limits {
    timeout: Duration,
    first_byte_timeout: Duration,
    max_retries: u32,
    initial_backoff: Duration,
}

/// A failed attempt: the error, and whether another attempt may help.
#[derive(Debug)]
struct Failure {
    error: ChatError,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn fatal(error: ChatError) -> Self {
        Self { error, retryable: false, retry_after: None }
    }

    fn retryable(error: ChatError) -> Self {
        Self { error, retryable: true, retry_after: None }
    }

    /// An error the provider reported with an HTTP-like status, inside a 200 response.
    fn provider(status: u16, body: &str) -> Self {
        Self {
            error: ChatError::Status { status, body: truncate_chars(body.trim(), MAX_ERROR_BODY_CHARS) },
            retryable: is_retryable_status(status),
            retry_after: None,
        }
    }
}

/// What one stream event contributed.
#[derive(Debug, Default, PartialEq)]
struct Decoded {
    /// Answer text to pass on (may be empty).
    text: String,
    /// The provider's end-of-stream marker was seen.
    done: bool,
}

/// Provider-specific stream decoding. A fresh clone decodes each attempt.
trait StreamDecoder: Clone + Send {
    fn event(&mut self, event: &SseEvent) -> Result<Decoded, Failure>;
    /// A complete JSON response, from servers that ignore `"stream": true`: the answer text.
    fn whole(&mut self, body: &[u8]) -> Result<String, Failure>;
    /// Builds the answer once the stream ended; `done` says whether the end marker was seen.
    fn finish(self, text: String, done: bool) -> Result<ChatAnswer, Failure>;
}

struct Transport {
    client: reqwest::Client,
    endpoint: String,
    limits: Limits,
    provider: &'static str,
}

impl Transport {
    fn new(provider: &'static str, endpoint: String, headers: HeaderMap, limits: Limits) -> Result<Self, ChatError> {
        let client = reqwest::Client::builder()
            .timeout(limits.timeout)
            .connect_timeout(limits.timeout.min(CONNECT_TIMEOUT))
            .default_headers(headers)
            .build()
            .map_err(|e| ChatError::Http(format!("building the HTTP client: {}", error_chain(&e))))?;
        Ok(Self { client, endpoint, limits, provider })
    }

    /// Posts `body` and streams the answer, retrying failures that happen before any text was
    /// passed to `on_delta`.
    async fn complete<D: StreamDecoder>(
        &self,
        body: &Value,
        decoder: D,
        on_delta: DeltaSink<'_>,
    ) -> Result<ChatAnswer, ChatError> {
        let mut attempt: u32 = 0;
        loop {
            let mut text = String::new();
            let failure = match self.attempt(body, decoder.clone(), &mut text, &mut *on_delta).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            if !text.is_empty() {
                tracing::warn!(
                    provider = self.provider,
                    streamed_chars = text.chars().count(),
                    error = %failure.error,
                    "chat stream failed after the answer started; not retrying"
                );
                return Err(failure.error);
            }
            if !failure.retryable || attempt >= self.limits.max_retries {
                return Err(failure.error);
            }
            let delay = failure
                .retry_after
                .unwrap_or_else(|| backoff_delay(self.limits.initial_backoff, attempt, jitter_unit()));
            attempt += 1;
            tracing::warn!(
                provider = self.provider,
                attempt,
                max_retries = self.limits.max_retries,
                ?delay,
                error = %failure.error,
                "chat request failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One request. Text passed to `on_delta` is also appended to `text`, so the caller knows
    /// whether streaming started.
    async fn attempt<D: StreamDecoder>(
        &self,
        body: &Value,
        mut decoder: D,
        text: &mut String,
        on_delta: DeltaSink<'_>,
    ) -> Result<ChatAnswer, Failure> {
        // Response headers and the first body bytes must arrive by this deadline.
        let deadline = tokio::time::Instant::now() + self.limits.first_byte_timeout.min(MAX_FIRST_BYTE_TIMEOUT);
        let send = self.client.post(&self.endpoint).json(body).send();
        let mut response = match tokio::time::timeout_at(deadline, send).await {
            Err(_elapsed) => return Err(Failure::retryable(ChatError::Timeout)),
            Ok(Err(e)) => return Err(send_failure(&e)),
            Ok(Ok(response)) => response,
        };

        let status = response.status();
        if !status.is_success() {
            let retry_after =
                response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
            let body = response.text().await.unwrap_or_default();
            return Err(Failure {
                error: ChatError::Status {
                    status: status.as_u16(),
                    body: truncate_chars(body.trim(), MAX_ERROR_BODY_CHARS),
                },
                retryable: is_retryable_status(status.as_u16()),
                retry_after,
            });
        }

        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/json"));
        if is_json {
            let bytes = response.bytes().await.map_err(|e| read_failure(&e))?;
            let whole = decoder.whole(&bytes)?;
            emit(&whole, text, on_delta);
            return decoder.finish(text.clone(), true);
        }

        let mut parser = SseParser::default();
        let mut first = true;
        let mut done = false;
        'read: loop {
            let next = if first {
                first = false;
                match tokio::time::timeout_at(deadline, response.chunk()).await {
                    Err(_elapsed) => return Err(Failure::retryable(ChatError::Timeout)),
                    Ok(next) => next,
                }
            } else {
                response.chunk().await
            };
            let chunk = match next {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Err(read_failure(&e)),
            };
            for event in parser.push(&chunk) {
                let decoded = decoder.event(&event)?;
                emit(&decoded.text, text, &mut *on_delta);
                if decoded.done {
                    done = true;
                    break 'read;
                }
            }
        }
        if !done {
            for event in parser.finish() {
                let decoded = decoder.event(&event)?;
                emit(&decoded.text, text, &mut *on_delta);
                if decoded.done {
                    done = true;
                    break;
                }
            }
        }
        decoder.finish(text.clone(), done)
    }
}

/// Passes non-empty `piece` to `on_delta` and appends it to `text`.
fn emit(piece: &str, text: &mut String, on_delta: DeltaSink<'_>) {
    if !piece.is_empty() {
        on_delta(piece);
        text.push_str(piece);
    }
}

/// A failure sending the request or receiving the response headers.
fn send_failure(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure::retryable(ChatError::Timeout)
    } else if e.is_connect() || e.is_request() {
        // Refused/reset connections, including a pooled connection the server had closed.
        Failure::retryable(ChatError::Http(error_chain(e)))
    } else {
        Failure::fatal(ChatError::Http(error_chain(e)))
    }
}

/// A failure reading the response body. Retryable: the caller only retries when nothing was
/// streamed yet.
fn read_failure(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure::retryable(ChatError::Timeout)
    } else {
        Failure::retryable(ChatError::Http(error_chain(e)))
    }
}

/// The stream ended (cleanly, at the transport level) without the provider's end marker.
fn incomplete_stream() -> Failure {
    Failure::retryable(ChatError::Http("the stream ended before the answer was complete".to_string()))
}

fn malformed(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::fatal(ChatError::Malformed(format!("{what}: {e}")))
}

/// `{base_url}{suffix}` with exactly one slash between the two; `base_url` must be http(s).
fn endpoint(base_url: &str, suffix: &str) -> Result<String, ChatError> {
    let base = base_url.trim().trim_end_matches('/');
    let parsed =
        url::Url::parse(base).map_err(|e| ChatError::Http(format!("invalid chat base_url {base_url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ChatError::Http(format!("chat base_url {base_url:?} is not an http(s) URL")));
    }
    Ok(format!("{base}/{}", suffix.trim_start_matches('/')))
}

/// A header value that never shows up in `Debug` output.
fn secret_header(value: &str) -> Result<HeaderValue, ChatError> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| ChatError::Http("the API key contains characters not allowed in a header".to_string()))?;
    value.set_sensitive(true);
    Ok(value)
}

fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------------------
// OpenAI-compatible chat completions
// ---------------------------------------------------------------------------------------------

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

    fn request_body(&self, messages: &[ChatMessage], req: &ChatRequest) -> Value {
        json!({
            "model": self.cfg.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
        })
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
        let decoder = OpenAiDecoder::new(&self.cfg.model, estimate_messages(&messages));
        self.transport.complete(&body, decoder, on_delta).await
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
}

#[derive(Debug, Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Clone, Debug)]
struct OpenAiDecoder {
    model: String,
    estimated_input: u32,
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
    finish_reason: Option<String>,
}

impl OpenAiDecoder {
    fn new(model: &str, estimated_input: u32) -> Self {
        Self { model: model.to_string(), estimated_input, input_tokens: None, output_tokens: None, finish_reason: None }
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
            if let Some(content) = choice.delta.or(choice.message).and_then(|c| c.content) {
                text.push_str(&content);
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
        let usage = Usage {
            input_tokens: self.input_tokens.unwrap_or(self.estimated_input),
            output_tokens: self.output_tokens.unwrap_or_else(|| estimate_tokens(&text)),
        };
        Ok(ChatAnswer { text, model: self.model, usage, finish_reason: self.finish_reason, extractive: false })
    }
}

// ---------------------------------------------------------------------------------------------
// Anthropic Messages API
// ---------------------------------------------------------------------------------------------

/// The `anthropic-version` header sent with every request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Stands in for the first user message when a conversation starts with the assistant (the
/// Messages API requires the first message to be the user's).
const CONVERSATION_START: &str = "(start of conversation)";

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

    fn request_body(&self, system: &str, messages: &[AnthropicMessage], req: &ChatRequest) -> Value {
        let mut body = json!({
            "model": self.cfg.model,
            "max_tokens": req.max_tokens,
            "messages": messages,
            "stream": true,
            "temperature": req.temperature.clamp(0.0, 1.0),
        });
        if !system.is_empty() {
            body["system"] = Value::String(system.to_string());
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
        let decoder = AnthropicDecoder::new(&self.cfg.model, estimate_messages(&rendered));
        self.transport.complete(&body, decoder, on_delta).await
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
struct AnthropicMessage {
    role: &'static str,
    content: String,
}

/// Splits rendered messages into the Messages API's `system` string (all system messages, in
/// order) and `messages`: empty ones dropped, consecutive same-role ones merged (the API wants
/// user and assistant to alternate), and a placeholder user message first when the conversation
/// would otherwise start with the assistant (or be empty).
fn anthropic_prompt(messages: &[ChatMessage]) -> (String, Vec<AnthropicMessage>) {
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

/// Anthropic stop reasons in the OpenAI vocabulary ("stop", "length", ...) so callers see one
/// set; unknown ones pass through.
fn normalize_stop_reason(reason: &str) -> String {
    match reason {
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" => "length",
        "refusal" => "content_filter",
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

#[derive(Clone, Debug)]
struct AnthropicDecoder {
    model: String,
    estimated_input: u32,
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
    stop_reason: Option<String>,
}

impl AnthropicDecoder {
    fn new(model: &str, estimated_input: u32) -> Self {
        Self { model: model.to_string(), estimated_input, input_tokens: None, output_tokens: None, stop_reason: None }
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
                }
            }
            "content_block_delta" => {
                let delta = &value["delta"];
                if delta["type"] == "text_delta" {
                    decoded.text.push_str(delta["text"].as_str().unwrap_or_default());
                }
            }
            "message_delta" => {
                self.read_stop_reason(&value["delta"]["stop_reason"]);
                self.read_usage(&value["usage"]);
            }
            "message_stop" => decoded.done = true,
            "error" => return Err(anthropic_error(&value["error"])),
            _ => {} // ping, content_block_stop, and event types added later
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
        let text = value["content"]
            .as_array()
            .map(|blocks| {
                blocks
                    .iter()
                    .filter(|block| block["type"] == "text")
                    .filter_map(|block| block["text"].as_str())
                    .collect::<String>()
            })
            .unwrap_or_default();
        Ok(text)
    }

    fn finish(self, text: String, done: bool) -> Result<ChatAnswer, Failure> {
        if !done && self.stop_reason.is_none() {
            return Err(incomplete_stream());
        }
        let usage = Usage {
            input_tokens: self.input_tokens.unwrap_or(self.estimated_input),
            output_tokens: self.output_tokens.unwrap_or_else(|| estimate_tokens(&text)),
        };
        Ok(ChatAnswer { text, model: self.model, usage, finish_reason: self.stop_reason, extractive: false })
    }
}

// ---------------------------------------------------------------------------------------------
// Offline extractive answers
// ---------------------------------------------------------------------------------------------

pub const EXTRACTIVE_MODEL_NAME: &str = "extractive";
const EXTRACTIVE_INTRO: &str = "Here is what I found in our knowledge base:";
const EXTRACTIVE_NOTHING_FOUND: &str = "I couldn't find anything about that in our knowledge base.";
/// Passages quoted at most.
const EXTRACTIVE_MAX_PASSAGES: usize = 3;
/// Passages scoring below this fraction of the best one are left out.
const EXTRACTIVE_RELATIVE_SCORE: f32 = 0.5;
/// Quotes are cut to about this many characters.
const EXTRACTIVE_MAX_CHARS: usize = 600;

/// Answers without a language model: the most relevant passages, quoted verbatim with their
/// `[n]` markers. No network; `extractive` is true in its answers.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExtractiveModel;

#[async_trait]
impl ChatModel for ExtractiveModel {
    fn name(&self) -> &str {
        EXTRACTIVE_MODEL_NAME
    }

    async fn complete(&self, req: &ChatRequest, on_delta: DeltaSink<'_>) -> Result<ChatAnswer, ChatError> {
        let text = extractive_answer(&req.passages);
        for piece in stream_pieces(&text) {
            on_delta(piece);
        }
        let usage =
            Usage { input_tokens: estimate_messages(&render_messages(req)), output_tokens: estimate_tokens(&text) };
        Ok(ChatAnswer {
            text,
            model: EXTRACTIVE_MODEL_NAME.to_string(),
            usage,
            finish_reason: Some("stop".to_string()),
            extractive: true,
        })
    }
}

/// The passages worth quoting: best first, at most [`EXTRACTIVE_MAX_PASSAGES`], none scoring
/// below half the best (NaN scores rank last), none empty.
fn select_passages(passages: &[Passage]) -> Vec<&Passage> {
    let mut ranked: Vec<(f32, &Passage)> = passages
        .iter()
        .filter(|p| !p.text.trim().is_empty())
        .map(|p| (if p.score.is_nan() { f32::NEG_INFINITY } else { p.score }, p))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let Some(&(best, _)) = ranked.first() else {
        return Vec::new();
    };
    // With a non-positive best score "half the best" is meaningless; only the best is then kept.
    let threshold = if best > 0.0 { best * EXTRACTIVE_RELATIVE_SCORE } else { best };
    ranked.into_iter().filter(|(score, _)| *score >= threshold).take(EXTRACTIVE_MAX_PASSAGES).map(|(_, p)| p).collect()
}

fn extractive_answer(passages: &[Passage]) -> String {
    let selected = select_passages(passages);
    if selected.is_empty() {
        return EXTRACTIVE_NOTHING_FOUND.to_string();
    }
    let quotes: Vec<String> =
        selected.iter().map(|p| quote(&excerpt(&p.text, EXTRACTIVE_MAX_CHARS), p.number)).collect();
    format!("{EXTRACTIVE_INTRO}\n\n{}", quotes.join("\n\n"))
}

/// `text` trimmed, cut to about `max` characters: at a sentence end or line break in the second
/// half of the allowance if there is one, else at a word boundary, with "…" marking the cut.
fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim();
    let Some((cut, _)) = text.char_indices().nth(max) else {
        return text.to_string();
    };
    let min = text.char_indices().nth(max / 2).map_or(0, |(i, _)| i);
    let head = &text[..cut];
    let sentence_end = head
        .char_indices()
        .rev()
        .take_while(|(i, _)| *i >= min)
        .find(|&(i, c)| c == '\n' || (matches!(c, '.' | '!' | '?') && text[i + 1..].starts_with(char::is_whitespace)))
        .map(|(i, c)| i + c.len_utf8());
    if let Some(end) = sentence_end {
        return format!("{} …", head[..end].trim_end());
    }
    let word_end = head.char_indices().rev().take_while(|(i, _)| *i >= min).find(|(_, c)| c.is_whitespace());
    match word_end {
        Some((i, _)) => format!("{}…", head[..i].trim_end()),
        None => format!("{}…", head.trim_end()),
    }
}

/// A Markdown block quote of `text` ending with the ` [n]` citation.
fn quote(text: &str, number: usize) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let line = line.trim_end();
            if line.is_empty() {
                ">".to_string()
            } else {
                format!("> {line}")
            }
        })
        .collect();
    format!("{} [{number}]", lines.join("\n"))
}

/// `text` in streaming pieces, one per line or sentence; the pieces concatenate to `text`.
fn stream_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut after_sentence_end = false;
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        if c == '\n' || (after_sentence_end && c == ' ') {
            pieces.push(&text[start..end]);
            start = end;
        }
        after_sentence_end = matches!(c, '.' | '!' | '?');
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::retry::MAX_RETRY_DELAY;

    fn passage(number: usize, source: &str, text: &str, score: f32) -> Passage {
        Passage { number, source: source.to_string(), text: text.to_string(), score }
    }

    fn msg(role: Role, content: &str) -> ChatMessage {
        ChatMessage { role, content: content.to_string() }
    }

    fn request(messages: Vec<ChatMessage>, passages: Vec<Passage>) -> ChatRequest {
        ChatRequest { messages, passages, max_tokens: 256, temperature: 0.2 }
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent { event: event.to_string(), data: data.to_string() }
    }

    /// Feeds `input` to a fresh parser in pieces of `size` bytes.
    fn parse_in_pieces(input: &[u8], size: usize) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for piece in input.chunks(size) {
            events.extend(parser.push(piece));
        }
        events.extend(parser.finish());
        events
    }

    #[test]
    fn estimates_tokens_as_a_quarter_of_the_characters() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abc"), 1);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens(&"é".repeat(8)), 2, "characters, not bytes");
    }

    #[test]
    fn sse_events_survive_any_split() {
        let input = concat!(
            "event: message_start\ndata: {\"a\":1}\n\n",
            ": ping\n\n",
            "data: {\"b\":\"é€\"}\r\n\r\n",
            "data: line1\ndata:line2\n\n",
            "id: 7\nretry: 10\ndata: [DONE]\n\n",
        );
        let expected = vec![
            ev("message_start", "{\"a\":1}"),
            ev("message", "{\"b\":\"é€\"}"),
            ev("message", "line1\nline2"),
            ev("message", "[DONE]"),
        ];
        for size in 1..=input.len() {
            assert_eq!(parse_in_pieces(input.as_bytes(), size), expected, "pieces of {size} bytes");
        }
    }

    #[test]
    fn sse_handles_bare_cr_and_a_missing_final_blank_line() {
        assert_eq!(parse_in_pieces(b"data: a\r\rdata: b\r", 1), vec![ev("message", "a"), ev("message", "b")]);
        assert_eq!(parse_in_pieces(b"data: [DONE]", 3), vec![ev("message", "[DONE]")]);
        // Comments and events without data dispatch nothing; the event name does not leak on.
        assert_eq!(parse_in_pieces(b": hi\n\nevent: ping\n\ndata: x\n\n", 4), vec![ev("message", "x")]);
        let mut parser = SseParser::default();
        assert!(parser.push(b"data: partial").is_empty());
        assert!(parser.push(b" line\r").is_empty(), "a CR at the end may be the first half of CRLF");
        assert_eq!(parser.push(b"\n\n"), vec![ev("message", "partial line")]);
        assert!(parser.finish().is_empty());
    }

    #[test]
    fn render_appends_knowledge_to_the_system_message() {
        let req = request(
            vec![msg(Role::System, "You are Acme's support assistant.  \n"), msg(Role::User, "How do I reset it?")],
            vec![passage(1, "kb/reset.md", " Open Settings > Security. ", 0.9), passage(2, "", "Call us.", 0.4)],
        );
        let rendered = render_messages(&req);
        assert_eq!(rendered.len(), 2);
        assert_eq!(rendered[1], req.messages[1]);
        let system = &rendered[0].content;
        assert!(system.starts_with("You are Acme's support assistant.\n\n## Knowledge\n\n"), "{system}");
        assert!(system.contains("Answer only from the numbered passages"), "{system}");
        assert!(system.contains("[1]"), "{system}");
        assert!(system.ends_with("\n\n[1] (kb/reset.md) Open Settings > Security.\n\n[2] Call us."), "{system}");
    }

    #[test]
    fn render_adds_a_system_message_when_missing_and_notes_missing_passages() {
        let req = request(vec![msg(Role::User, "Hi")], Vec::new());
        let rendered = render_messages(&req);
        assert_eq!(rendered.len(), 2);
        assert_eq!(rendered[0].role, Role::System);
        assert!(rendered[0].content.starts_with(KNOWLEDGE_HEADING));
        assert!(rendered[0].content.contains("No passages"), "{}", rendered[0].content);
        assert_eq!(rendered[1], msg(Role::User, "Hi"));
    }

    #[test]
    fn anthropic_roles_alternate_and_start_with_the_user() {
        let (system, messages) = anthropic_prompt(&[
            msg(Role::System, "Be brief."),
            msg(Role::Assistant, "Hello! How can I help?"),
            msg(Role::Assistant, "We are open 9-5."),
            msg(Role::User, "My order"),
            msg(Role::User, "  "),
            msg(Role::User, "is late"),
            msg(Role::System, "Knowledge here."),
            msg(Role::Assistant, "Which order?"),
            msg(Role::User, "#42"),
        ]);
        assert_eq!(system, "Be brief.\n\nKnowledge here.");
        let roles: Vec<&str> = messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, ["user", "assistant", "user", "assistant", "user"]);
        assert_eq!(messages[0].content, CONVERSATION_START);
        assert_eq!(messages[1].content, "Hello! How can I help?\n\nWe are open 9-5.");
        assert_eq!(messages[2].content, "My order\n\nis late");
        assert_eq!(messages[4].content, "#42");

        let (system, messages) = anthropic_prompt(&[msg(Role::User, "Hi")]);
        assert_eq!(system, "");
        assert_eq!(messages, vec![AnthropicMessage { role: "user", content: "Hi".to_string() }]);
        let (_, messages) = anthropic_prompt(&[]);
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].role, "user");
    }

    #[test]
    fn anthropic_body_shape() {
        let model = AnthropicChatModel::new(AnthropicChatConfig {
            api_key: Some("sk-ant-secret".to_string()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(model.endpoint(), "https://api.anthropic.com/v1/messages");
        assert!(!format!("{model:?}").contains("sk-ant-secret"));
        let req = ChatRequest { temperature: 1.7, ..request(vec![msg(Role::User, "Hi")], Vec::new()) };
        let (system, messages) = anthropic_prompt(&render_messages(&req));
        let body = model.request_body(&system, &messages, &req);
        assert_eq!(body["model"], "claude-3-5-haiku-latest");
        assert_eq!(body["max_tokens"], 256);
        assert_eq!(body["stream"], true);
        assert_eq!(body["temperature"], 1.0);
        assert!(body["system"].as_str().unwrap().starts_with(KNOWLEDGE_HEADING));
        assert_eq!(body["messages"], json!([{"role": "user", "content": "Hi"}]));

        let v1 = AnthropicChatModel::new(AnthropicChatConfig {
            base_url: "http://127.0.0.1:9/v1/".to_string(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(v1.endpoint(), "http://127.0.0.1:9/v1/messages");
    }

    #[test]
    fn openai_body_shape_and_endpoint() {
        let model = OpenAiChatModel::new(OpenAiChatConfig {
            base_url: "http://localhost:11434/v1/".to_string(),
            api_key: Some("sk-secret".to_string()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(model.endpoint(), "http://localhost:11434/v1/chat/completions");
        assert_eq!(model.name(), "gpt-4o-mini");
        assert!(!format!("{model:?}").contains("sk-secret"));
        let req = request(vec![msg(Role::System, "S"), msg(Role::User, "Q")], vec![passage(1, "a", "b", 1.0)]);
        let messages = render_messages(&req);
        let body = model.request_body(&messages, &req);
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][1], json!({"role": "user", "content": "Q"}));
        assert_eq!(body["max_tokens"], 256);
        assert!(matches!(
            OpenAiChatModel::new(OpenAiChatConfig { base_url: "ftp://x".into(), ..Default::default() }),
            Err(ChatError::Http(_))
        ));
    }

    #[test]
    fn openai_decoder_reads_deltas_usage_and_done() {
        let mut decoder = OpenAiDecoder::new("configured", 10);
        let first = decoder
            .event(&ev(
                "message",
                r#"{"model":"gpt-x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            ))
            .unwrap();
        assert_eq!(first, Decoded::default());
        let text = decoder
            .event(&ev(
                "message",
                r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}],"usage":null}"#,
            ))
            .unwrap();
        assert_eq!(text.text, "Hi");
        decoder.event(&ev("message", r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#)).unwrap();
        assert!(decoder.event(&ev("message", "[DONE]")).unwrap().done);
        let answer = decoder.finish("Hi".to_string(), true).unwrap();
        assert_eq!(answer.model, "gpt-x");
        assert_eq!(answer.usage, Usage { input_tokens: 5, output_tokens: 1 });
        assert_eq!(answer.finish_reason.as_deref(), Some("stop"));

        // Two payloads in one event, no usage: estimates.
        let mut decoder = OpenAiDecoder::new("m", 10);
        let both = decoder
            .event(&ev(
                "message",
                "{\"choices\":[{\"delta\":{\"content\":\"ab\"}}]}\n{\"choices\":[{\"delta\":{\"content\":\"cdef\"}}]}\n[DONE]",
            ))
            .unwrap();
        assert_eq!(both, Decoded { text: "abcdef".to_string(), done: true });
        let answer = decoder.finish("abcdef".to_string(), true).unwrap();
        assert_eq!(answer.usage, Usage { input_tokens: 10, output_tokens: 2 });

        // An error chunk, and a stream that stops without an end marker.
        let mut decoder = OpenAiDecoder::new("m", 0);
        let failure = decoder.event(&ev("message", r#"{"error":{"message":"boom","code":503}}"#)).unwrap_err();
        assert!(failure.retryable);
        assert!(matches!(failure.error, ChatError::Status { status: 503, .. }));
        assert!(matches!(decoder.clone().finish(String::new(), false), Err(Failure { retryable: true, .. })));
        assert!(matches!(
            decoder.event(&ev("message", "{not json")),
            Err(Failure { error: ChatError::Malformed(_), retryable: false, .. })
        ));
    }

    #[test]
    fn anthropic_decoder_reads_events() {
        let mut decoder = AnthropicDecoder::new("configured", 0);
        let events = [
            r#"{"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":25,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type": "ping"}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
        ];
        let mut text = String::new();
        for data in events {
            let decoded = decoder.event(&ev("message", data)).unwrap();
            assert!(!decoded.done);
            text.push_str(&decoded.text);
        }
        assert_eq!(text, "Hello there");
        assert!(decoder.event(&ev("message_stop", r#"{"type":"message_stop"}"#)).unwrap().done);
        let answer = decoder.finish(text, true).unwrap();
        assert_eq!(answer.model, "claude-x");
        assert_eq!(answer.usage, Usage { input_tokens: 25, output_tokens: 15 });
        assert_eq!(answer.finish_reason.as_deref(), Some("stop"));

        let mut decoder = AnthropicDecoder::new("m", 0);
        let failure = decoder
            .event(&ev("error", r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#))
            .unwrap_err();
        assert!(failure.retryable);
        match failure.error {
            ChatError::Status { status, body } => {
                assert_eq!(status, 529);
                assert!(body.contains("Overloaded"), "{body}");
            }
            other => panic!("expected Status, got {other:?}"),
        }
        assert_eq!(normalize_stop_reason("max_tokens"), "length");
        assert_eq!(normalize_stop_reason("tool_use"), "tool_use");
    }

    #[test]
    fn extractive_quotes_the_best_passages() {
        let passages = vec![
            passage(1, "a.md", "Low relevance.", 0.2),
            passage(2, "b.md", "Reset your password under Settings.\nThen sign in again.", 0.9),
            passage(3, "c.md", "You can also ask an agent.", 0.5),
            passage(4, "d.md", "Fourth.", 0.46),
            passage(5, "e.md", "Fifth.", 0.45),
        ];
        let answer = extractive_answer(&passages);
        assert_eq!(
            answer,
            "Here is what I found in our knowledge base:\n\n\
             > Reset your password under Settings.\n> Then sign in again. [2]\n\n\
             > You can also ask an agent. [3]\n\n\
             > Fourth. [4]"
        );
        assert_eq!(extractive_answer(&[]), EXTRACTIVE_NOTHING_FOUND);
        assert_eq!(extractive_answer(&[passage(1, "a", "  ", 1.0)]), EXTRACTIVE_NOTHING_FOUND);
        // Non-positive scores (e.g. some rerankers): just the best.
        let negative = [passage(1, "a", "One.", -2.0), passage(2, "b", "Two.", -1.0)];
        assert_eq!(extractive_answer(&negative), format!("{EXTRACTIVE_INTRO}\n\n> Two. [2]"));
    }

    #[test]
    fn excerpts_are_cut_at_sentence_or_word_boundaries() {
        assert_eq!(excerpt("  short  ", 600), "short");
        let sentences = "This is one sentence. ".repeat(40);
        let cut = excerpt(&sentences, 600);
        assert!(cut.ends_with("sentence. …"), "{cut}");
        assert!(cut.chars().count() <= 602 && cut.chars().count() > 300);
        let words = "word ".repeat(200);
        let cut = excerpt(&words, 600);
        assert!(cut.ends_with("word…") && cut.chars().count() <= 601, "{cut}");
        let solid = "x".repeat(1000);
        assert_eq!(excerpt(&solid, 600).chars().count(), 601);
    }

    #[test]
    fn stream_pieces_concatenate_to_the_text() {
        let text = "Here is what I found:\n\n> One. Two! Three? e.g.x [1]\n\n> Four [2]";
        let pieces = stream_pieces(text);
        assert!(pieces.len() >= 5, "{pieces:?}");
        assert_eq!(pieces.concat(), text);
        assert!(stream_pieces("").is_empty());
    }

    #[tokio::test]
    async fn extractive_model_streams_its_answer() {
        let req = request(
            vec![msg(Role::System, "S"), msg(Role::User, "How do I reset my password?")],
            vec![passage(1, "kb/reset.md", "Open Settings. Choose Reset.", 0.8)],
        );
        let mut deltas: Vec<String> = Vec::new();
        let mut sink = |d: &str| deltas.push(d.to_string());
        let answer = ExtractiveModel.complete(&req, &mut sink).await.unwrap();
        assert!(deltas.len() > 1, "{deltas:?}");
        assert_eq!(deltas.concat(), answer.text);
        assert_eq!(answer.text, format!("{EXTRACTIVE_INTRO}\n\n> Open Settings. Choose Reset. [1]"));
        assert!(answer.extractive);
        assert_eq!(answer.model, "extractive");
        assert_eq!(ExtractiveModel.name(), "extractive");
        assert_eq!(answer.usage.output_tokens, estimate_tokens(&answer.text));
        assert!(answer.usage.input_tokens > 0);
        assert_eq!(answer.finish_reason.as_deref(), Some("stop"));
    }

    #[test]
    fn retry_helpers() {
        for status in [429, 500, 503, 529] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [400, 401, 404, 413] {
            assert!(!is_retryable_status(status), "{status}");
        }
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("999"), Some(MAX_RETRY_DELAY));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        let initial = Duration::from_millis(100);
        assert_eq!(backoff_delay(initial, 0, 0.0), initial);
        assert_eq!(backoff_delay(initial, 2, 0.0), Duration::from_millis(400));
        assert!(backoff_delay(initial, 1, 1.0) <= Duration::from_millis(240));
        assert_eq!(backoff_delay(initial, 40, 1.0), MAX_RETRY_DELAY);
        assert_eq!(truncate_chars(&"é".repeat(600), MAX_ERROR_BODY_CHARS).chars().count(), 500);
    }
}
