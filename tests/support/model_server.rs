//! A model server speaking OpenAI's and Anthropic's streamed chat formats (wiremock, answering
//! each request from a script), and the widget calls the chat-turn tests make against it.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::TestEnv;

#[derive(Clone, Copy)]
pub enum Provider {
    OpenAi,
    Anthropic,
}

impl Provider {
    /// The path the platform's model posts to (`CHAT_BASE_URL` is `{uri}/v1` for OpenAI, `{uri}`
    /// for Anthropic, which appends `/v1/messages`).
    pub fn path(self) -> &'static str {
        match self {
            Provider::OpenAi => "/v1/chat/completions",
            Provider::Anthropic => "/v1/messages",
        }
    }
}

pub fn sse(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/event-stream")
        .set_body_raw(body, "text/event-stream")
}

/// Answers the `n`th model request (0-based) with `script(n, request body)`, a streamed body.
pub struct Scripted<F> {
    calls: AtomicUsize,
    script: F,
}

impl<F> Respond for Scripted<F>
where
    F: Fn(usize, &Value) -> String + Send + Sync,
{
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let body: Value = request.body_json().unwrap_or(Value::Null);
        sse((self.script)(n, &body))
    }
}

/// A model server for `provider` answering with `script`.
pub async fn model_server<F>(provider: Provider, script: F) -> MockServer
where
    F: Fn(usize, &Value) -> String + Send + Sync + 'static,
{
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(provider.path()))
        .respond_with(Scripted { calls: AtomicUsize::new(0), script })
        .mount(&server)
        .await;
    server
}

/// The JSON bodies of the requests the model server received, in order.
pub async fn model_requests(server: &MockServer) -> Vec<Value> {
    server.received_requests().await.unwrap().iter().map(|r| r.body_json::<Value>().unwrap()).collect()
}

pub fn openai_chunk(delta: Value, finish_reason: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    });
    format!("data: {chunk}\n\n")
}

pub fn openai_end(finish_reason: &str) -> String {
    let usage = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "gpt-4o-mini",
        "choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132},
    });
    format!("{}data: {usage}\n\ndata: [DONE]\n\n", openai_chunk(json!({}), Some(finish_reason)))
}

/// One streamed call of `name` (no text): its first fragment, then its arguments.
pub fn openai_call(id: &str, name: &str, arguments: &str) -> String {
    let first = json!({"role": "assistant", "content": null, "tool_calls": [
        {"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]});
    let rest = json!({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]});
    [openai_chunk(first, None), openai_chunk(rest, None), openai_end("tool_calls")].concat()
}

/// A streamed text answer, in two pieces.
pub fn openai_answer(text: &str) -> String {
    let cut = text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i);
    let (a, b) = text.split_at(cut);
    [
        openai_chunk(json!({"role": "assistant", "content": a}), None),
        openai_chunk(json!({"content": b}), None),
        openai_end("stop"),
    ]
    .concat()
}

pub fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

pub fn anthropic_start() -> String {
    anthropic_event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 200, "output_tokens": 1}
        }}),
    )
}

pub fn anthropic_text_block(index: u32, text: &str) -> String {
    [
        anthropic_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        ),
        anthropic_event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}),
        ),
        anthropic_event("content_block_stop", json!({"type": "content_block_stop", "index": index})),
    ]
    .concat()
}

pub fn anthropic_end(stop_reason: &str) -> String {
    let delta = anthropic_event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
               "usage": {"output_tokens": 30}}),
    );
    format!("{delta}{}", anthropic_event("message_stop", json!({"type": "message_stop"})))
}

/// Some text, then one `tool_use` block whose input streams as `input_json`.
pub fn anthropic_call(text: &str, id: &str, name: &str, input_json: &str) -> String {
    let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
    [
        anthropic_start(),
        anthropic_text_block(0, text),
        anthropic_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": block}),
        ),
        anthropic_event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1,
                   "delta": {"type": "input_json_delta", "partial_json": input_json}}),
        ),
        anthropic_event("content_block_stop", json!({"type": "content_block_stop", "index": 1})),
        anthropic_end("tool_use"),
    ]
    .concat()
}

pub fn anthropic_answer(text: &str) -> String {
    [anthropic_start(), anthropic_text_block(0, text), anthropic_end("end_turn")].concat()
}

/// The names of the tools an OpenAI request offers (none: empty).
pub fn tool_names(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|tools| tools.iter().map(|t| t["function"]["name"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

/// The conversation's `tool` messages (content, metadata), oldest first.
pub async fn tool_messages(env: &TestEnv, conversation: Uuid) -> Vec<(String, Value)> {
    env.owner()
        .await
        .query(
            "SELECT content, metadata FROM chatapp_messages WHERE conversation_id = $1 AND role = 'tool'
             ORDER BY created_at",
            &[&conversation],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

pub fn header_of(request: &Request, name: &str) -> String {
    request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}
