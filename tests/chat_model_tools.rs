//! Function calling in the chat models against local HTTP servers (wiremock) speaking each
//! provider's streamed wire format: tools offered in the request, tool calls streamed in
//! fragments and reassembled, earlier rounds replayed, and retries before any text.

use std::time::Duration;

use chatapp::chat::model::{
    AnthropicChatConfig, AnthropicChatModel, ChatAnswer, ChatError, ChatMessage, ChatModel, ChatRequest,
    OpenAiChatConfig, OpenAiChatModel, Role, ToolCall, ToolResult, ToolRound, ToolSpec, Usage,
};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage { role: Role::System, content: "You are Acme's support assistant.".into() },
            ChatMessage { role: Role::User, content: "Where is my order A-1042?".into() },
        ],
        passages: Vec::new(),
        max_tokens: 300,
        temperature: 0.2,
        tools: Vec::new(),
        rounds: Vec::new(),
    }
}

fn get_order_tool() -> ToolSpec {
    ToolSpec {
        name: "get_order".into(),
        description: "Looks up an order by its id.".into(),
        parameters: json!({
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "include_items": {"type": "boolean"}},
            "required": ["order_id"]
        }),
    }
}

fn call(id: &str, name: &str, arguments: Value) -> ToolCall {
    ToolCall { id: id.into(), name: name.into(), arguments }
}

fn tool_result(call_id: &str, content: &str, is_error: bool) -> ToolResult {
    ToolResult { call_id: call_id.into(), content: content.into(), is_error }
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

/// The body of the `n`th request the server received.
async fn request_body(server: &MockServer, n: usize) -> Value {
    let requests = server.received_requests().await.unwrap();
    requests[n].body_json().unwrap()
}

// ---------------------------------------------------------------------------------------------
// OpenAI
// ---------------------------------------------------------------------------------------------

/// `data: {json}\n\n` for each value, then `data: [DONE]` when `done`.
fn openai_stream(chunks: &[Value], done: bool) -> String {
    let mut body = String::new();
    for chunk in chunks {
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    if done {
        body.push_str("data: [DONE]\n\n");
    }
    body
}

fn openai_delta(delta: Value, finish_reason: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    })
}

fn openai_text(text: &str) -> Value {
    openai_delta(json!({"content": text}), None)
}

/// A chunk with tool-call fragments.
fn openai_tools(fragments: Vec<Value>) -> Value {
    openai_delta(json!({"tool_calls": fragments}), None)
}

/// The first fragment of a call: index, id, type and name, empty arguments.
fn first_fragment(index: u32, id: &str, name: &str) -> Value {
    json!({"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}})
}

/// A later fragment: more argument text.
fn arguments_fragment(index: u32, arguments: &str) -> Value {
    json!({"index": index, "function": {"arguments": arguments}})
}

fn openai_finish(reason: &str) -> Value {
    openai_delta(json!({}), Some(reason))
}

fn openai_usage(prompt: u32, completion: u32) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18", "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    })
}

fn openai_model(server_uri: &str) -> OpenAiChatModel {
    OpenAiChatModel::new(OpenAiChatConfig {
        base_url: format!("{server_uri}/v1"),
        api_key: Some("sk-test".into()),
        model: "gpt-4o-mini".into(),
        timeout: Duration::from_secs(10),
        first_byte_timeout: Duration::from_secs(5),
        max_retries: 2,
        initial_backoff: Duration::from_millis(10),
    })
    .unwrap()
}

/// A streamed answer: some text, then one `get_order` call whose arguments come in three pieces.
fn openai_tool_call_body(id: &str) -> String {
    openai_stream(
        &[
            openai_delta(json!({"role": "assistant", "content": ""}), None),
            openai_text("Let me "),
            openai_text("look that up."),
            openai_tools(vec![first_fragment(0, id, "get_order")]),
            openai_tools(vec![arguments_fragment(0, "{\"order_id\"")]),
            openai_tools(vec![arguments_fragment(0, ": \"A-1042\", ")]),
            openai_tools(vec![arguments_fragment(0, "\"include_items\": true}")]),
            openai_finish("tool_calls"),
            openai_usage(120, 25),
        ],
        true,
    )
}

#[tokio::test]
async fn openai_sends_tools_and_reassembles_a_streamed_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse(openai_tool_call_body("call_abc")))
        .expect(1)
        .mount(&server)
        .await;

    let mut req = request();
    req.tools = vec![get_order_tool()];
    let (result, deltas) = run(&openai_model(&server.uri()), &req).await;
    let answer = result.unwrap();
    assert_eq!(deltas, ["Let me ", "look that up."]);
    assert_eq!(answer.text, "Let me look that up.");
    assert_eq!(
        answer.tool_calls,
        vec![call("call_abc", "get_order", json!({"order_id": "A-1042", "include_items": true}))]
    );
    assert_eq!(answer.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(answer.usage, Usage { input_tokens: 120, output_tokens: 25 });

    let body = request_body(&server, 0).await;
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "get_order",
            "description": "Looks up an order by its id.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}, "include_items": {"type": "boolean"}},
                "required": ["order_id"]
            }
        }}])
    );
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn openai_replays_rounds_and_counts_them_in_the_estimate() {
    let server = MockServer::start().await;
    // No usage in the stream: the input is estimated.
    let answer_body = openai_stream(&[openai_text("It shipped on Monday."), openai_finish("stop")], true);
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse(answer_body))
        .expect(2)
        .mount(&server)
        .await;
    let model = openai_model(&server.uri());

    let (plain, _) = run(&model, &request()).await;
    let plain = plain.unwrap();
    assert!(request_body(&server, 0).await.get("tools").is_none());

    let mut req = request();
    req.tools = vec![get_order_tool()];
    req.rounds = vec![ToolRound {
        text: String::new(),
        calls: vec![
            call("call_1", "get_order", json!({"order_id": "A-1042"})),
            call("call_2", "get_refund", json!({"order_id": "A-1042"})),
        ],
        results: vec![
            tool_result("call_1", "{\"status\":\"shipped\"}", false),
            tool_result("call_2", "refunds are down", true),
        ],
    }];
    let (with_round, deltas) = run(&model, &req).await;
    let with_round = with_round.unwrap();
    assert_eq!(deltas, ["It shipped on Monday."]);
    assert!(with_round.tool_calls.is_empty());
    assert_eq!(with_round.finish_reason.as_deref(), Some("stop"));
    assert!(
        with_round.usage.input_tokens > plain.usage.input_tokens + 40,
        "tools and rounds are estimated: {:?} vs {:?}",
        with_round.usage,
        plain.usage
    );

    let body = request_body(&server, 1).await;
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 5, "{body}");
    assert_eq!(messages[1], json!({"role": "user", "content": "Where is my order A-1042?"}));
    assert_eq!(
        messages[2],
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_order", "arguments": "{\"order_id\":\"A-1042\"}"}},
            {"id": "call_2", "type": "function",
             "function": {"name": "get_refund", "arguments": "{\"order_id\":\"A-1042\"}"}}
        ]})
    );
    let arguments: Value =
        serde_json::from_str(messages[2]["tool_calls"][0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"order_id": "A-1042"}));
    assert_eq!(messages[3], json!({"role": "tool", "tool_call_id": "call_1", "content": "{\"status\":\"shipped\"}"}));
    assert_eq!(messages[4], json!({"role": "tool", "tool_call_id": "call_2", "content": "Error: refunds are down"}));
}

#[tokio::test]
async fn openai_returns_interleaved_calls_in_index_order() {
    let server = MockServer::start().await;
    let body = openai_stream(
        &[
            openai_tools(vec![first_fragment(0, "call_0", "get_order")]),
            openai_tools(vec![first_fragment(1, "call_1", "get_refund")]),
            openai_tools(vec![arguments_fragment(1, "{\"order_id\": ")]),
            openai_tools(vec![arguments_fragment(0, "{\"order_id\": ")]),
            // Fragments of both calls in one chunk.
            openai_tools(vec![arguments_fragment(1, "\"B-7\"}"), arguments_fragment(0, "\"A-1042\"}")]),
            openai_finish("tool_calls"),
        ],
        true,
    );
    Mock::given(method("POST")).respond_with(sse(body)).expect(1).mount(&server).await;

    let mut req = request();
    req.tools = vec![get_order_tool()];
    let (result, deltas) = run(&openai_model(&server.uri()), &req).await;
    let answer = result.unwrap();
    assert!(deltas.is_empty(), "{deltas:?}");
    assert_eq!(answer.text, "");
    assert_eq!(
        answer.tool_calls,
        vec![
            call("call_0", "get_order", json!({"order_id": "A-1042"})),
            call("call_1", "get_refund", json!({"order_id": "B-7"})),
        ]
    );
    assert_eq!(answer.finish_reason.as_deref(), Some("tool_calls"));
    assert!(answer.usage.output_tokens > 10, "estimated from the calls: {:?}", answer.usage);
}

#[tokio::test]
async fn openai_invalid_arguments_come_back_as_a_string() {
    let server = MockServer::start().await;
    let body = openai_stream(
        &[
            openai_tools(vec![first_fragment(0, "call_x", "get_order")]),
            openai_tools(vec![arguments_fragment(0, "{\"order_id\": ")]),
            openai_tools(vec![arguments_fragment(0, "A-1042")]),
            openai_finish("tool_calls"),
        ],
        true,
    );
    Mock::given(method("POST")).respond_with(sse(body)).expect(1).mount(&server).await;

    let (result, _) = run(&openai_model(&server.uri()), &request()).await;
    let answer = result.unwrap();
    assert_eq!(answer.tool_calls, vec![call("call_x", "get_order", Value::String("{\"order_id\": A-1042".into()))]);
}

#[tokio::test]
async fn a_stream_cut_after_tool_fragments_only_is_retried_from_scratch() {
    let server = MockServer::start().await;
    // Fragments, then the stream ends without a finish reason or [DONE]: nothing reached the
    // caller, so the request is retried, and the fragments of that attempt are dropped.
    let cut = openai_stream(
        &[
            openai_tools(vec![first_fragment(0, "call_lost", "get_order")]),
            openai_tools(vec![arguments_fragment(0, "{\"order_id\": \"A-")]),
        ],
        false,
    );
    Mock::given(method("POST")).respond_with(sse(cut)).up_to_n_times(1).expect(1).mount(&server).await;
    Mock::given(method("POST")).respond_with(sse(openai_tool_call_body("call_abc"))).expect(1).mount(&server).await;

    let (result, deltas) = run(&openai_model(&server.uri()), &request()).await;
    let answer = result.unwrap();
    assert_eq!(deltas, ["Let me ", "look that up."]);
    assert_eq!(
        answer.tool_calls,
        vec![call("call_abc", "get_order", json!({"order_id": "A-1042", "include_items": true}))]
    );
    server.verify().await;
}

// ---------------------------------------------------------------------------------------------
// Anthropic
// ---------------------------------------------------------------------------------------------

fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
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

fn anthropic_message_start() -> String {
    anthropic_event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 200, "output_tokens": 1}
        }}),
    )
}

fn anthropic_block_start(index: u32, block: Value) -> String {
    anthropic_event(
        "content_block_start",
        json!({"type": "content_block_start", "index": index, "content_block": block}),
    )
}

fn anthropic_delta(index: u32, delta: Value) -> String {
    anthropic_event("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": delta}))
}

fn anthropic_json_delta(index: u32, partial_json: &str) -> String {
    anthropic_delta(index, json!({"type": "input_json_delta", "partial_json": partial_json}))
}

fn anthropic_block_stop(index: u32) -> String {
    anthropic_event("content_block_stop", json!({"type": "content_block_stop", "index": index}))
}

fn anthropic_end(stop_reason: &str, output_tokens: u32) -> String {
    let mut end = anthropic_event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
               "usage": {"output_tokens": output_tokens}}),
    );
    end.push_str(&anthropic_event("message_stop", json!({"type": "message_stop"})));
    end
}

/// Text, then one `get_order` tool_use block whose input arrives in `pieces`.
fn anthropic_tool_use_body(pieces: &[&str]) -> String {
    let mut body = anthropic_message_start();
    body.push_str(&anthropic_block_start(0, json!({"type": "text", "text": ""})));
    body.push_str(&anthropic_delta(0, json!({"type": "text_delta", "text": "Let me check "})));
    body.push_str(&anthropic_delta(0, json!({"type": "text_delta", "text": "that order."})));
    body.push_str(&anthropic_block_stop(0));
    body.push_str(&anthropic_block_start(
        1,
        json!({"type": "tool_use", "id": "toolu_01", "name": "get_order", "input": {}}),
    ));
    body.push_str(&anthropic_event("ping", json!({"type": "ping"})));
    for piece in pieces {
        body.push_str(&anthropic_json_delta(1, piece));
    }
    body.push_str(&anthropic_block_stop(1));
    body.push_str(&anthropic_end("tool_use", 60));
    body
}

#[tokio::test]
async fn anthropic_sends_tools_and_reassembles_a_streamed_tool_use() {
    let server = MockServer::start().await;
    let body = anthropic_tool_use_body(&["", "{\"order_id\": \"A-", "1042\", \"include_items\"", ": true}"]);
    Mock::given(method("POST")).and(path("/v1/messages")).respond_with(sse(body)).expect(1).mount(&server).await;

    let mut req = request();
    req.tools = vec![get_order_tool()];
    let (result, deltas) = run(&anthropic_model(&server.uri()), &req).await;
    let answer = result.unwrap();
    assert_eq!(deltas, ["Let me check ", "that order."]);
    assert_eq!(answer.text, "Let me check that order.");
    assert_eq!(
        answer.tool_calls,
        vec![call("toolu_01", "get_order", json!({"order_id": "A-1042", "include_items": true}))]
    );
    assert_eq!(answer.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(answer.usage, Usage { input_tokens: 200, output_tokens: 60 });

    let body = request_body(&server, 0).await;
    assert_eq!(
        body["tools"],
        json!([{
            "name": "get_order",
            "description": "Looks up an order by its id.",
            "input_schema": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}, "include_items": {"type": "boolean"}},
                "required": ["order_id"]
            }
        }])
    );
    assert!(body.get("tool_choice").is_none(), "{body}");
    assert_eq!(body["messages"], json!([{"role": "user", "content": "Where is my order A-1042?"}]));
}

#[tokio::test]
async fn anthropic_replays_rounds_as_tool_use_and_tool_result_blocks() {
    let server = MockServer::start().await;
    let mut answer_body = anthropic_message_start();
    answer_body.push_str(&anthropic_block_start(0, json!({"type": "text", "text": ""})));
    answer_body.push_str(&anthropic_delta(0, json!({"type": "text_delta", "text": "It shipped."})));
    answer_body.push_str(&anthropic_block_stop(0));
    answer_body.push_str(&anthropic_end("end_turn", 5));
    Mock::given(method("POST")).and(path("/v1/messages")).respond_with(sse(answer_body)).expect(1).mount(&server).await;

    let mut req = request();
    req.tools = vec![get_order_tool()];
    req.rounds = vec![ToolRound {
        text: "Let me check.".into(),
        calls: vec![
            call("toolu_01", "get_order", json!({"order_id": "A-1042"})),
            // Not an object (e.g. arguments that were not JSON): wrapped.
            call("toolu_02", "get_refund", Value::String("A-1042".into())),
        ],
        results: vec![tool_result("toolu_01", "shipped", false), tool_result("toolu_02", "refunds are down", true)],
    }];
    let (result, deltas) = run(&anthropic_model(&server.uri()), &req).await;
    let answer = result.unwrap();
    assert_eq!(deltas, ["It shipped."]);
    assert!(answer.tool_calls.is_empty());
    assert_eq!(answer.finish_reason.as_deref(), Some("stop"));

    let body = request_body(&server, 0).await;
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "Where is my order A-1042?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_order", "input": {"order_id": "A-1042"}},
                {"type": "tool_use", "id": "toolu_02", "name": "get_refund", "input": {"value": "A-1042"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "shipped"},
                {"type": "tool_result", "tool_use_id": "toolu_02", "content": "refunds are down", "is_error": true}
            ]}
        ])
    );
    assert!(body["messages"][2]["content"][0].get("is_error").is_none());
}

#[tokio::test]
async fn anthropic_invalid_input_json_comes_back_as_a_string() {
    let server = MockServer::start().await;
    let body = anthropic_tool_use_body(&["{\"order_id\": ", "A-1042}"]);
    Mock::given(method("POST")).and(path("/v1/messages")).respond_with(sse(body)).expect(1).mount(&server).await;

    let (result, _) = run(&anthropic_model(&server.uri()), &request()).await;
    let answer = result.unwrap();
    assert_eq!(answer.tool_calls, vec![call("toolu_01", "get_order", Value::String("{\"order_id\": A-1042}".into()))]);
}
