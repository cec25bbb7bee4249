//! The chat models against local HTTP servers speaking each provider's streamed wire format:
//! OpenAI-compatible `/v1/chat/completions` and Anthropic `/v1/messages` (wiremock), retries
//! before streaming starts, no retry after it (a raw TCP server that cuts the stream), and the
//! offline extractive model.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chatapp::chat::model::{
    estimate_tokens, AnthropicChatConfig, AnthropicChatModel, ChatAnswer, ChatError, ChatMessage, ChatModel,
    ChatRequest, ExtractiveModel, OpenAiChatConfig, OpenAiChatModel, Passage, Role, Usage,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage { role: Role::System, content: "You are Acme's support assistant.".into() },
            ChatMessage { role: Role::User, content: "How do I reset my password?".into() },
        ],
        passages: vec![
            Passage {
                number: 1,
                source: "kb/reset-password.md".into(),
                text: "Open Settings > Security and choose Reset password.".into(),
                score: 0.92,
            },
            Passage {
                number: 2,
                source: "kb/contact.md".into(),
                text: "Our agents answer from 9 to 5 on weekdays.".into(),
                score: 0.41,
            },
        ],
        max_tokens: 300,
        temperature: 0.2,
        tools: Vec::new(),
        rounds: Vec::new(),
    }
}

/// Runs `model` on `req`, returning the result and every delta passed on.
async fn run(model: &dyn ChatModel, req: &ChatRequest) -> (Result<ChatAnswer, ChatError>, Vec<String>) {
    let mut deltas: Vec<String> = Vec::new();
    let mut sink = |delta: &str| deltas.push(delta.to_string());
    let result = model.complete(req, &mut sink).await;
    (result, deltas)
}

fn sse(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/event-stream")
        .set_body_raw(body, "text/event-stream")
}

/// `data: {json}\n\n` for each value, then `data: [DONE]`.
fn openai_stream(chunks: &[Value]) -> String {
    let mut body = String::from(": keep-alive\n\n");
    for chunk in chunks {
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    body
}

fn openai_chunk(content: Option<&str>, finish_reason: Option<&str>) -> Value {
    let delta = match content {
        Some(text) => json!({"content": text}),
        None => json!({}),
    };
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    })
}

fn openai_usage_chunk(prompt: u32, completion: u32) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18", "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    })
}

const OPENAI_PIECES: [&str; 3] = ["Open Settings > Security", " and choose Reset password", " [1]."];

fn openai_success_body(with_usage: bool) -> String {
    let mut chunks = vec![json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}],
    })];
    chunks.extend(OPENAI_PIECES.iter().map(|piece| openai_chunk(Some(piece), None)));
    chunks.push(openai_chunk(None, Some("stop")));
    if with_usage {
        chunks.push(openai_usage_chunk(87, 12));
    }
    openai_stream(&chunks)
}

fn openai_model(server_uri: &str, max_retries: u32) -> OpenAiChatModel {
    OpenAiChatModel::new(OpenAiChatConfig {
        base_url: format!("{server_uri}/v1"),
        api_key: Some("sk-test".into()),
        model: "gpt-4o-mini".into(),
        timeout: Duration::from_secs(10),
        first_byte_timeout: Duration::from_secs(5),
        max_retries,
        initial_backoff: Duration::from_millis(10),
    })
    .unwrap()
}

#[tokio::test]
async fn openai_streams_deltas_and_usage_and_sends_the_knowledge() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-test"))
        .respond_with(sse(openai_success_body(true)))
        .expect(1)
        .mount(&server)
        .await;

    let model = openai_model(&server.uri(), 2);
    assert_eq!(model.name(), "gpt-4o-mini");
    let (result, deltas) = run(&model, &request()).await;
    let answer = result.unwrap();
    assert_eq!(deltas, OPENAI_PIECES);
    assert_eq!(answer.text, OPENAI_PIECES.concat());
    assert_eq!(answer.usage, Usage { input_tokens: 87, output_tokens: 12 });
    assert_eq!(answer.finish_reason.as_deref(), Some("stop"));
    assert_eq!(answer.model, "gpt-4o-mini-2024-07-18");
    assert!(!answer.extractive);

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: Value = requests[0].body_json().unwrap();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["max_tokens"], 300);
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["role"], "system");
    let system = messages[0]["content"].as_str().unwrap();
    assert!(system.starts_with("You are Acme's support assistant."), "{system}");
    assert!(
        system.contains("[1] (kb/reset-password.md) Open Settings > Security and choose Reset password."),
        "{system}"
    );
    assert!(system.contains("[2] (kb/contact.md) Our agents answer"), "{system}");
    assert_eq!(messages[1], json!({"role": "user", "content": "How do I reset my password?"}));
}

#[tokio::test]
async fn openai_429_is_retried_and_missing_usage_is_estimated() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0")
                .set_body_json(json!({"error": {"message": "Rate limit reached", "type": "requests"}})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse(openai_success_body(false)))
        .expect(1)
        .mount(&server)
        .await;

    let (result, deltas) = run(&openai_model(&server.uri(), 2), &request()).await;
    let answer = result.unwrap();
    assert_eq!(deltas.concat(), answer.text);
    assert_eq!(answer.text, OPENAI_PIECES.concat());
    assert_eq!(answer.usage.output_tokens, estimate_tokens(&answer.text));
    assert!(answer.usage.input_tokens > 20, "estimated from the prompt: {:?}", answer.usage);
}

#[tokio::test]
async fn openai_5xx_on_every_attempt_fails_and_4xx_is_not_retried() {
    let down = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream broke"))
        .expect(3)
        .mount(&down)
        .await;
    let (result, deltas) = run(&openai_model(&down.uri(), 2), &request()).await;
    match result {
        Err(ChatError::Status { status: 500, body }) => assert_eq!(body, "upstream broke"),
        other => panic!("expected a 500 status error, got {other:?}"),
    }
    assert!(deltas.is_empty());
    down.verify().await;

    let bad = MockServer::start().await;
    let long_body = format!("{{\"error\": {{\"message\": \"{}\"}}}}", "x".repeat(2000));
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string(long_body))
        .expect(1)
        .mount(&bad)
        .await;
    match run(&openai_model(&bad.uri(), 3), &request()).await.0 {
        Err(ChatError::Status { status: 400, body }) => assert_eq!(body.chars().count(), 500),
        other => panic!("expected a 400 status error, got {other:?}"),
    }
    bad.verify().await;
}

#[tokio::test]
async fn a_slow_first_byte_times_out_and_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(sse(openai_success_body(true)).set_delay(Duration::from_secs(3)))
        .expect(2)
        .mount(&server)
        .await;
    let model = OpenAiChatModel::new(OpenAiChatConfig {
        base_url: server.uri(),
        timeout: Duration::from_secs(10),
        first_byte_timeout: Duration::from_millis(200),
        max_retries: 1,
        initial_backoff: Duration::from_millis(10),
        ..Default::default()
    })
    .unwrap();
    let (result, deltas) = run(&model, &request()).await;
    assert!(matches!(result, Err(ChatError::Timeout)), "{result:?}");
    assert!(deltas.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Anthropic
// ---------------------------------------------------------------------------------------------

fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

const ANTHROPIC_PIECES: [&str; 3] = ["Open Settings", " > Security and choose", " Reset password [1]."];

fn anthropic_message_start() -> String {
    anthropic_event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 95, "output_tokens": 1}
        }}),
    )
}

fn anthropic_text_delta(text: &str) -> String {
    anthropic_event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
    )
}

fn anthropic_success_body() -> String {
    let mut body = anthropic_message_start();
    body.push_str(&anthropic_event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ));
    body.push_str(&anthropic_event("ping", json!({"type": "ping"})));
    for piece in ANTHROPIC_PIECES {
        body.push_str(&anthropic_text_delta(piece));
    }
    body.push_str(&anthropic_event("content_block_stop", json!({"type": "content_block_stop", "index": 0})));
    body.push_str(&anthropic_event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"output_tokens": 14}}),
    ));
    body.push_str(&anthropic_event("message_stop", json!({"type": "message_stop"})));
    body
}

fn anthropic_model(server_uri: &str) -> AnthropicChatModel {
    AnthropicChatModel::new(AnthropicChatConfig {
        base_url: server_uri.to_string(),
        api_key: Some("sk-ant-test".into()),
        model: "claude-3-5-haiku-latest".into(),
        timeout: Duration::from_secs(10),
        first_byte_timeout: Duration::from_secs(5),
        max_retries: 2,
        initial_backoff: Duration::from_millis(10),
    })
    .unwrap()
}

#[tokio::test]
async fn anthropic_streams_text_and_usage_with_the_required_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "sk-ant-test"))
        .and(header("anthropic-version", "2023-06-01"))
        .respond_with(sse(anthropic_success_body()))
        .expect(1)
        .mount(&server)
        .await;

    let model = anthropic_model(&server.uri());
    assert_eq!(model.name(), "claude-3-5-haiku-latest");
    let mut req = request();
    // Consecutive user messages must reach the API merged.
    req.messages.insert(1, ChatMessage { role: Role::User, content: "Hi.".into() });
    let (result, deltas) = run(&model, &req).await;
    let answer = result.unwrap();
    assert_eq!(deltas, ANTHROPIC_PIECES);
    assert_eq!(answer.text, ANTHROPIC_PIECES.concat());
    assert_eq!(answer.usage, Usage { input_tokens: 95, output_tokens: 14 });
    assert_eq!(answer.finish_reason.as_deref(), Some("stop"));
    assert_eq!(answer.model, "claude-3-5-haiku-20241022");
    assert!(!answer.extractive);

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let headers = &requests[0].headers;
    assert_eq!(headers.get("x-api-key").unwrap(), "sk-ant-test");
    assert_eq!(headers.get("anthropic-version").unwrap(), "2023-06-01");
    let body: Value = requests[0].body_json().unwrap();
    assert_eq!(body["model"], "claude-3-5-haiku-latest");
    assert_eq!(body["stream"], true);
    assert_eq!(body["max_tokens"], 300);
    let system = body["system"].as_str().unwrap();
    assert!(system.starts_with("You are Acme's support assistant."), "{system}");
    assert!(system.contains("[1] (kb/reset-password.md) Open Settings > Security"), "{system}");
    assert_eq!(body["messages"], json!([{"role": "user", "content": "Hi.\n\nHow do I reset my password?"}]));
}

#[tokio::test]
async fn anthropic_overloaded_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(529).set_body_json(
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    // Overloaded again, this time as an error event inside a 200 stream, before any text.
    let overloaded_event = format!(
        "{}{}",
        anthropic_message_start(),
        anthropic_event(
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        )
    );
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(sse(overloaded_event))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(sse(anthropic_success_body()))
        .expect(1)
        .mount(&server)
        .await;

    let (result, deltas) = run(&anthropic_model(&server.uri()), &request()).await;
    let answer = result.unwrap();
    assert_eq!(deltas, ANTHROPIC_PIECES);
    assert_eq!(answer.text, ANTHROPIC_PIECES.concat());
}

#[tokio::test]
async fn anthropic_error_after_text_is_returned_not_retried() {
    let server = MockServer::start().await;
    let body = format!(
        "{}{}{}",
        anthropic_message_start(),
        anthropic_text_delta("Open Settings"),
        anthropic_event(
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        )
    );
    Mock::given(method("POST")).and(path("/v1/messages")).respond_with(sse(body)).expect(1).mount(&server).await;

    let (result, deltas) = run(&anthropic_model(&server.uri()), &request()).await;
    match result {
        Err(ChatError::Status { status: 529, body }) => assert!(body.contains("Overloaded"), "{body}"),
        other => panic!("expected an overloaded error, got {other:?}"),
    }
    assert_eq!(deltas, ["Open Settings"]);
    server.verify().await;
}

// ---------------------------------------------------------------------------------------------
// Real network framing: a raw HTTP/1.1 server writing the stream in pieces
// ---------------------------------------------------------------------------------------------

/// Serves connection `i` with `scripts[i]`: the status line and headers, then each body piece
/// written separately (with a pause, so they arrive as separate reads), then closes. Returns the
/// base URL and the count of connections accepted.
async fn raw_server(scripts: Vec<Vec<String>>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        for script in scripts {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            read_request(&mut socket).await;
            let head = concat!(
                "HTTP/1.1 200 OK\r\n",
                "content-type: text/event-stream\r\n",
                "cache-control: no-cache\r\n",
                "connection: close\r\n\r\n",
            );
            if socket.write_all(head.as_bytes()).await.is_err() {
                continue;
            }
            for piece in script {
                let _ = socket.write_all(piece.as_bytes()).await;
                let _ = socket.flush().await;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            let _ = socket.shutdown().await;
        }
    });
    (base, accepted)
}

/// Reads one request (headers and a `content-length` body).
async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return;
            }
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test]
async fn split_frames_are_reassembled_and_a_cut_stream_is_not_retried() {
    let chunk = |text: &str| format!("data: {}\n\n", openai_chunk(Some(text), None));
    let first = chunk("Hello");
    let second = chunk(" world");
    // Pieces split inside a JSON payload and between "\n" and "\n"; then the server hangs up
    // without a finish reason or [DONE].
    let (a, b) = first.split_at(17);
    let (c, d) = second.split_at(second.len() - 1);
    let cut = vec![a.to_string(), b.to_string(), c.to_string(), d.to_string()];
    // A second connection would succeed, but must never be made.
    let (base, accepted) = raw_server(vec![cut, vec![openai_success_body(true)]]).await;

    let (result, deltas) = run(&openai_model(&base, 3), &request()).await;
    assert_eq!(deltas, ["Hello", " world"]);
    assert!(matches!(result, Err(ChatError::Http(_))), "{result:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "no retry once text was streamed");
}

#[tokio::test]
async fn a_stream_cut_before_any_text_is_retried() {
    let body = openai_success_body(true);
    let (head, tail) = body.split_at(body.len() / 2);
    let (base, accepted) =
        raw_server(vec![vec![": keep-alive\n\n".to_string()], vec![head.to_string(), tail.to_string()]]).await;

    let (result, deltas) = run(&openai_model(&base, 3), &request()).await;
    let answer = result.unwrap();
    assert_eq!(answer.text, OPENAI_PIECES.concat());
    assert_eq!(deltas.concat(), answer.text);
    assert_eq!(answer.usage, Usage { input_tokens: 87, output_tokens: 12 });
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------------------------------------
// Extractive
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn extractive_answers_offline_from_the_passages() {
    let model = ExtractiveModel;
    assert_eq!(model.name(), "extractive");
    let (result, deltas) = run(&model, &request()).await;
    let answer = result.unwrap();
    assert!(answer.extractive);
    assert_eq!(answer.model, "extractive");
    assert_eq!(deltas.concat(), answer.text);
    assert!(deltas.len() > 1, "{deltas:?}");
    // Passage 2 scores below half of passage 1 and is left out.
    assert_eq!(
        answer.text,
        "Here is what I found in our knowledge base:\n\n> Open Settings > Security and choose Reset password. [1]"
    );
    assert_eq!(answer.usage.output_tokens, estimate_tokens(&answer.text));

    let mut empty = request();
    empty.passages.clear();
    let (result, _) = run(&model, &empty).await;
    assert_eq!(result.unwrap().text, "I couldn't find anything about that in our knowledge base.");
}
