//! The chat turn calling the agent's tools, through the widget function, against local servers
//! (wiremock) speaking each provider's streamed tool-calling format: an HTTP action called signed
//! and its result fed back to the model; a failing and a slow action that still get an answer;
//! `request_human_handover` handing the conversation over; `end_conversation` resolving it after
//! the reply; the rounds bounded by `MAX_ROUNDS`; and no tools at all leaving the request as it
//! was. Every call is stored as a `tool` message before the reply, and never shown to the
//! customer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chatapp::chat::tools::MAX_ROUNDS;
use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{Req, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const DESCRIPTION: &str = "Looks an order up by its id.";
const QUESTION: &str = "Where is my order A1?";

fn order_parameters() -> Value {
    json!({"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]})
}

// ---------------------------------------------------------------------------------------------
// The model's side: streamed answers in each provider's format
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Provider {
    OpenAi,
    Anthropic,
}

impl Provider {
    /// The path the platform's model posts to (`CHAT_BASE_URL` is `{uri}/v1` for OpenAI, `{uri}`
    /// for Anthropic, which appends `/v1/messages`).
    fn path(self) -> &'static str {
        match self {
            Provider::OpenAi => "/v1/chat/completions",
            Provider::Anthropic => "/v1/messages",
        }
    }
}

fn sse(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/event-stream")
        .set_body_raw(body, "text/event-stream")
}

/// Answers the `n`th model request (0-based) with `script(n, request body)`, a streamed body.
struct Scripted<F> {
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
async fn model_server<F>(provider: Provider, script: F) -> MockServer
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
async fn model_requests(server: &MockServer) -> Vec<Value> {
    server.received_requests().await.unwrap().iter().map(|r| r.body_json::<Value>().unwrap()).collect()
}

fn openai_chunk(delta: Value, finish_reason: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    });
    format!("data: {chunk}\n\n")
}

fn openai_end(finish_reason: &str) -> String {
    let usage = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "gpt-4o-mini",
        "choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132},
    });
    format!("{}data: {usage}\n\ndata: [DONE]\n\n", openai_chunk(json!({}), Some(finish_reason)))
}

/// One streamed call of `name` (no text): its first fragment, then its arguments.
fn openai_call(id: &str, name: &str, arguments: &str) -> String {
    let first = json!({"role": "assistant", "content": null, "tool_calls": [
        {"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]});
    let rest = json!({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]});
    [openai_chunk(first, None), openai_chunk(rest, None), openai_end("tool_calls")].concat()
}

/// A streamed text answer, in two pieces.
fn openai_answer(text: &str) -> String {
    let cut = text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i);
    let (a, b) = text.split_at(cut);
    [
        openai_chunk(json!({"role": "assistant", "content": a}), None),
        openai_chunk(json!({"content": b}), None),
        openai_end("stop"),
    ]
    .concat()
}

fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn anthropic_start() -> String {
    anthropic_event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 200, "output_tokens": 1}
        }}),
    )
}

fn anthropic_text_block(index: u32, text: &str) -> String {
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

fn anthropic_end(stop_reason: &str) -> String {
    let delta = anthropic_event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
               "usage": {"output_tokens": 30}}),
    );
    format!("{delta}{}", anthropic_event("message_stop", json!({"type": "message_stop"})))
}

/// Some text, then one `tool_use` block whose input streams as `input_json`.
fn anthropic_call(text: &str, id: &str, name: &str, input_json: &str) -> String {
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

fn anthropic_answer(text: &str) -> String {
    [anthropic_start(), anthropic_text_block(0, text), anthropic_end("end_turn")].concat()
}

/// The names of the tools an OpenAI request offers (none: empty).
fn tool_names(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|tools| tools.iter().map(|t| t["function"]["name"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The platform's side
// ---------------------------------------------------------------------------------------------

/// A test environment whose platform model is `provider` at `model`.
async fn env_for(provider: Provider, model: &MockServer) -> TestEnv {
    let (name, base, key, model_name) = match provider {
        Provider::OpenAi => ("openai", format!("{}/v1", model.uri()), "sk-test", "gpt-4o-mini"),
        Provider::Anthropic => ("anthropic", model.uri(), "sk-ant-test", "claude-3-5-haiku-latest"),
    };
    TestEnv::with(&[
        ("CHAT_PROVIDER", name),
        ("CHAT_BASE_URL", base.as_str()),
        ("CHAT_API_KEY", key),
        ("CHAT_MODEL", model_name),
    ])
    .await
}

/// An active agent (never published: the turn reads its row) with a widget.
async fn add_agent(env: &TestEnv, t: &Tenant, rag_enabled: bool, enabled_tools: Value) -> Uuid {
    let owner = env.owner().await;
    let agent: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, system_prompt, rag_enabled, enabled_tools)
             VALUES ($1, 'Ada', 'active', 'You help customers of Acme.', $2, $3) RETURNING id",
            &[&t.company_id, &rag_enabled, &enabled_tools],
        )
        .await
        .unwrap()
        .get(0);
    owner
        .execute("INSERT INTO chatapp_widget_configs (company_id, agent_id) VALUES ($1, $2)", &[&t.company_id, &agent])
        .await
        .unwrap();
    agent
}

/// Creates the `get_order` action (with `changes` over it) through the agents route; returns its
/// signing secret (shown only at creation).
async fn create_action(env: &TestEnv, t: &Tenant, agent: Uuid, changes: Value) -> String {
    let mut body = json!({
        "name": "get_order", "description": DESCRIPTION, "parameters": order_parameters(),
        "url": "https://api.acme.test/orders", "method": "POST", "timeout_ms": 3000
    });
    for (k, v) in changes.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = env
        .send(
            HttpFunction::Agents,
            Req::post(&format!("/admin/agents/{agent}/actions")).token(&t.admin_token).json(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["signing_secret"].as_str().unwrap().to_string()
}

/// A widget session: (conversation, session token).
async fn session(env: &TestEnv, agent: Uuid) -> (Uuid, String) {
    let r =
        env.send(HttpFunction::Widget, Req::post(&format!("/widget/agents/{agent}/sessions")).json(json!({}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (r.body["conversation_id"].as_str().unwrap().parse().unwrap(), r.body["session_token"].as_str().unwrap().into())
}

/// The customer sends `content`; the turn's JSON answer.
async fn say(env: &TestEnv, conversation: Uuid, token: &str, content: &str) -> Value {
    let r = env
        .send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conversation}/messages"))
                .token(token)
                .json(json!({"content": content})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// The conversation's `tool` messages (content, metadata), oldest first.
async fn tool_messages(env: &TestEnv, conversation: Uuid) -> Vec<(String, Value)> {
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

/// The roles of the conversation's stored messages, oldest first.
async fn roles(env: &TestEnv, conversation: Uuid) -> Vec<String> {
    env.owner()
        .await
        .query(
            "SELECT role::text FROM chatapp_messages WHERE conversation_id = $1 ORDER BY created_at",
            &[&conversation],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn status(env: &TestEnv, conversation: Uuid) -> String {
    env.owner()
        .await
        .query_one("SELECT status::text FROM chatapp_conversations WHERE id = $1", &[&conversation])
        .await
        .unwrap()
        .get(0)
}

fn header_of(request: &Request, name: &str) -> String {
    request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// Lowercase hex HMAC-SHA256, computed here independently of the platform.
fn hmac_hex(key: &str, message: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    ring::hmac::sign(&key, message).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// `X-Chatapp-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body received>">`, keyed
/// with `secret`, and a timestamp of now.
fn assert_signed(request: &Request, secret: &str) {
    let header = header_of(request, "x-chatapp-signature");
    let (t, v1) = header.split_once(',').unwrap_or_else(|| panic!("t=...,v1=...: {header:?}"));
    let t = t.strip_prefix("t=").unwrap_or_else(|| panic!("t=: {header:?}"));
    let v1 = v1.strip_prefix("v1=").unwrap_or_else(|| panic!("v1=: {header:?}"));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(now.abs_diff(t.parse::<u64>().unwrap()) < 300, "{header}");
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(&request.body);
    assert_eq!(v1, hmac_hex(secret, &signed));
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn openai_tool_call_runs_a_signed_http_action_and_answers_with_its_result() {
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "shipped"})))
        .mount(&api)
        .await;
    let model = model_server(Provider::OpenAi, |n, _| match n {
        0 => openai_call("call_order_1", "get_order", r#"{"order_id":"A1"}"#),
        _ => openai_answer("Your order A1 has shipped."),
    })
    .await;
    let env = env_for(Provider::OpenAi, &model).await;
    let t = env.company("acme", "starter").await;
    let agent = add_agent(&env, &t, false, json!([])).await;
    let secret = create_action(&env, &t, agent, json!({"url": format!("{}/orders", api.uri())})).await;
    let (conversation, token) = session(&env, agent).await;

    let r = say(&env, conversation, &token, QUESTION).await;
    assert_eq!(r["reply"]["content"], "Your order A1 has shipped.", "{r}");
    assert_eq!(r["reply"]["metadata"]["kind"], "answer", "{r}");
    assert_eq!(r["reply"]["metadata"]["tool_calls"], 1, "{r}");
    assert_eq!(r["handoff"], false);
    let customer_message = r["message"]["id"].as_str().unwrap().to_string();

    // The company's API got the arguments as JSON, signed with the secret shown at creation.
    let calls = api.received_requests().await.unwrap();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(String::from_utf8_lossy(&call.body), r#"{"order_id":"A1"}"#);
    assert_eq!(serde_json::from_slice::<Value>(&call.body).unwrap(), json!({"order_id": "A1"}));
    assert_eq!(header_of(call, "content-type"), "application/json");
    assert_eq!(header_of(call, "x-chatapp-call-id"), "call_order_1");
    assert_eq!(header_of(call, "x-chatapp-conversation-id"), conversation.to_string());
    assert_signed(call, &secret);

    // The model was offered the action, then given its result.
    let requests = model_requests(&model).await;
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0]["tools"],
        json!([{"type": "function", "function": {
            "name": "get_order", "description": DESCRIPTION, "parameters": order_parameters()}}])
    );
    assert_eq!(requests[0]["tool_choice"], "auto");
    let messages = requests[1]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4, "{}", requests[1]);
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages[1], json!({"role": "user", "content": QUESTION}));
    assert_eq!(
        messages[2],
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_order_1", "type": "function",
               "function": {"name": "get_order", "arguments": "{\"order_id\":\"A1\"}"}}]})
    );
    assert_eq!(
        messages[3],
        json!({"role": "tool", "tool_call_id": "call_order_1", "content": r#"{"status":"shipped"}"#})
    );
    assert!(messages[3]["content"].as_str().unwrap().contains("shipped"));

    // One tool message, stored before the reply.
    let stored = tool_messages(&env, conversation).await;
    assert_eq!(stored.len(), 1);
    let (content, meta) = &stored[0];
    assert_eq!(content, r#"get_order: {"status":"shipped"}"#);
    assert_eq!(meta["kind"], "tool_call");
    assert_eq!(meta["tool"], "get_order");
    assert_eq!(meta["call_id"], "call_order_1");
    assert_eq!(meta["arguments"], json!({"order_id": "A1"}));
    assert_eq!(meta["result"], r#"{"status":"shipped"}"#);
    assert_eq!(meta["is_error"], false);
    assert_eq!(meta["error"], Value::Null);
    assert_eq!(meta["round"], 1);
    assert_eq!(meta["reply_to"], customer_message.as_str());
    let latency = meta["latency_ms"].as_u64().unwrap_or_else(|| panic!("latency_ms: {meta}"));
    assert!(latency < 3000, "{latency}");
    assert_eq!(roles(&env, conversation).await, ["user", "tool", "assistant"]);

    // The customer's history leaves the tool traffic out.
    let h = env
        .send(HttpFunction::Widget, Req::get(&format!("/widget/conversations/{conversation}/messages")).token(&token))
        .await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.body);
    let seen: Vec<(&str, &str)> = h.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(seen, [("user", QUESTION), ("assistant", "Your order A1 has shipped.")]);
}

#[tokio::test]
async fn anthropic_tool_use_with_a_failing_action_still_answers() {
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .respond_with(ResponseTemplate::new(500).set_body_string("database unavailable"))
        .mount(&api)
        .await;
    let model = model_server(Provider::Anthropic, |n, _| match n {
        0 => anthropic_call("Let me check that order.", "toolu_01", "get_order", r#"{"order_id": "A1"}"#),
        _ => anthropic_answer("Sorry, I can't look orders up right now."),
    })
    .await;
    let env = env_for(Provider::Anthropic, &model).await;
    let t = env.company("acme", "starter").await;
    let agent = add_agent(&env, &t, false, json!([])).await;
    create_action(&env, &t, agent, json!({"url": format!("{}/orders", api.uri())})).await;
    let (conversation, token) = session(&env, agent).await;

    let r = say(&env, conversation, &token, QUESTION).await;
    // Both rounds' text, as streamed: a blank line between them.
    assert_eq!(r["reply"]["content"], "Let me check that order.\n\nSorry, I can't look orders up right now.", "{r}");
    assert_eq!(r["reply"]["metadata"]["kind"], "answer", "{r}");
    assert_eq!(r["reply"]["metadata"]["tool_calls"], 1, "{r}");

    let calls = api.received_requests().await.unwrap();
    assert_eq!(calls.len(), 1, "a failing action is not retried");
    assert_eq!(serde_json::from_slice::<Value>(&calls[0].body).unwrap(), json!({"order_id": "A1"}));

    let requests = model_requests(&model).await;
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0]["tools"],
        json!([{"name": "get_order", "description": DESCRIPTION, "input_schema": order_parameters()}])
    );
    let messages = requests[1]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "{}", requests[1]);
    assert_eq!(messages[0], json!({"role": "user", "content": QUESTION}));
    assert_eq!(
        messages[1],
        json!({"role": "assistant", "content": [
            {"type": "text", "text": "Let me check that order."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_order", "input": {"order_id": "A1"}}]})
    );
    assert_eq!(
        messages[2],
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01",
               "content": "HTTP 500: database unavailable", "is_error": true}]})
    );

    let stored = tool_messages(&env, conversation).await;
    assert_eq!(stored.len(), 1);
    let (content, meta) = &stored[0];
    assert_eq!(content, "get_order: HTTP 500: database unavailable");
    assert_eq!(meta["tool"], "get_order");
    assert_eq!(meta["call_id"], "toolu_01");
    assert_eq!(meta["arguments"], json!({"order_id": "A1"}));
    assert_eq!(meta["is_error"], true);
    assert_eq!(meta["error"], "HTTP 500: database unavailable");
    assert_eq!(meta["result"], "HTTP 500: database unavailable");
    assert_eq!(meta["round"], 1);
    assert_eq!(roles(&env, conversation).await, ["user", "tool", "assistant"]);
    assert_eq!(status(&env, conversation).await, "active");
}

#[tokio::test]
async fn a_slow_action_times_out_and_the_customer_message_is_kept() {
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status": "shipped"})).set_delay(Duration::from_secs(2)),
        )
        .mount(&api)
        .await;
    let model = model_server(Provider::OpenAi, |n, _| match n {
        0 => openai_call("call_slow", "get_order", r#"{"order_id":"A1"}"#),
        _ => openai_answer("Our order system is slow right now; please try again in a minute."),
    })
    .await;
    let env = env_for(Provider::OpenAi, &model).await;
    let t = env.company("acme", "starter").await;
    let agent = add_agent(&env, &t, false, json!([])).await;
    create_action(&env, &t, agent, json!({"url": format!("{}/orders", api.uri()), "timeout_ms": 200})).await;
    let (conversation, token) = session(&env, agent).await;

    let r = say(&env, conversation, &token, QUESTION).await;
    assert_eq!(r["message"]["role"], "user", "{r}");
    assert_eq!(r["message"]["content"], QUESTION, "{r}");
    assert_eq!(r["reply"]["content"], "Our order system is slow right now; please try again in a minute.", "{r}");
    assert_eq!(api.received_requests().await.unwrap().len(), 1);

    let requests = model_requests(&model).await;
    assert_eq!(requests.len(), 2);
    let messages = requests[1]["messages"].as_array().unwrap();
    assert_eq!(
        messages.last().unwrap(),
        &json!({"role": "tool", "tool_call_id": "call_slow", "content": "Error: timed out after 200 ms"})
    );

    let stored = tool_messages(&env, conversation).await;
    assert_eq!(stored.len(), 1);
    let (content, meta) = &stored[0];
    assert_eq!(content, "get_order: timed out after 200 ms");
    assert_eq!(meta["is_error"], true);
    assert_eq!(meta["error"], "timed out after 200 ms");
    assert!(meta["error"].as_str().unwrap().contains("timed out"));
    let latency = meta["latency_ms"].as_u64().unwrap_or_else(|| panic!("latency_ms: {meta}"));
    assert!((200..2000).contains(&latency), "{latency}");

    // The customer's message is stored, once, before the tool call and the reply.
    let owner = env.owner().await;
    let customer: Vec<String> = owner
        .query("SELECT content FROM chatapp_messages WHERE conversation_id = $1 AND role = 'user'", &[&conversation])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(customer, [QUESTION]);
    assert_eq!(roles(&env, conversation).await, ["user", "tool", "assistant"]);
}

#[tokio::test]
async fn request_human_handover_hands_the_conversation_over() {
    let model = model_server(Provider::OpenAi, |_, _| {
        openai_call("call_person", "request_human_handover", r#"{"reason":"billing dispute"}"#)
    })
    .await;
    let env = env_for(Provider::OpenAi, &model).await;
    let t = env.company("acme", "starter").await;
    let agent = add_agent(&env, &t, false, json!(["request_human_handover"])).await;
    let (conversation, token) = session(&env, agent).await;

    let r = say(&env, conversation, &token, "I was charged twice for one order.").await;
    assert_eq!(r["handoff"], true, "{r}");
    assert_eq!(r["reply"]["metadata"]["kind"], "handoff", "{r}");
    let escalation = &r["escalation"];
    assert_eq!(escalation["trigger"], "explicit_request", "{r}");
    assert_eq!(escalation["details"], json!({"tool": "request_human_handover", "reason": "billing dispute"}));
    assert_eq!(escalation["priority"], "medium");
    assert_eq!(escalation["reason"], "billing dispute");

    // One round: the handover ends the loop.
    let requests = model_requests(&model).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(tool_names(&requests[0]), ["request_human_handover"]);

    assert_eq!(status(&env, conversation).await, "waiting_human");
    let rows = env
        .owner()
        .await
        .query(
            "SELECT id, trigger_type, trigger_details ->> 'tool', reason, priority::text FROM chatapp_escalations
             WHERE conversation_id = $1",
            &[&conversation],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.get::<_, Uuid>(0).to_string(), escalation["id"].as_str().unwrap_or(""));
    assert_eq!(row.get::<_, String>(1), "explicit_request");
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("request_human_handover"));
    assert_eq!(row.get::<_, String>(3), "billing dispute");
    assert_eq!(row.get::<_, String>(4), "medium");

    let stored = tool_messages(&env, conversation).await;
    assert_eq!(stored.len(), 1);
    let (content, meta) = &stored[0];
    assert_eq!(content, "request_human_handover: a support agent will take over");
    assert_eq!(meta["tool"], "request_human_handover");
    assert_eq!(meta["arguments"], json!({"reason": "billing dispute"}));
    assert_eq!(meta["is_error"], false);
    assert_eq!(roles(&env, conversation).await, ["user", "tool", "assistant"]);
}

#[tokio::test]
async fn end_conversation_resolves_after_the_reply() {
    let model = model_server(Provider::OpenAi, |n, _| match n {
        0 => openai_call("call_end", "end_conversation", "{}"),
        _ => openai_answer("Goodbye!"),
    })
    .await;
    let env = env_for(Provider::OpenAi, &model).await;
    let t = env.company("acme", "starter").await;
    let agent = add_agent(&env, &t, false, json!(["end_conversation"])).await;
    let (conversation, token) = session(&env, agent).await;

    let r = say(&env, conversation, &token, "Thanks, that is all I needed.").await;
    assert_eq!(r["reply"]["content"], "Goodbye!", "{r}");
    assert_eq!(r["reply"]["metadata"]["kind"], "answer", "{r}");
    assert_eq!(r["reply"]["metadata"]["ends_conversation"], true, "{r}");
    assert_eq!(r["reply"]["metadata"]["tool_calls"], 1, "{r}");
    assert_eq!(r["handoff"], false);

    // The round after the call offers no tools: the model must answer in text.
    let requests = model_requests(&model).await;
    assert_eq!(requests.len(), 2);
    assert_eq!(tool_names(&requests[0]), ["end_conversation"]);
    assert!(requests[1].get("tools").is_none(), "{}", requests[1]);
    assert!(requests[1].get("tool_choice").is_none(), "{}", requests[1]);
    let closing = "the conversation will be closed after your reply";
    // The calls so far are written out as text (no tool blocks in a request without tools).
    let messages = requests[1]["messages"].as_array().unwrap();
    assert!(messages.iter().all(|m| m["role"] != "tool" && m.get("tool_calls").is_none()), "{}", requests[1]);
    assert_eq!(messages[messages.len() - 2], json!({"role": "assistant", "content": "[called end_conversation({})]"}));
    assert_eq!(
        messages.last().unwrap(),
        &json!({"role": "user", "content": format!("[tool results]\nend_conversation: {closing}")})
    );

    assert_eq!(status(&env, conversation).await, "resolved");
    let stored = tool_messages(&env, conversation).await;
    assert_eq!(stored.len(), 1);
    let (content, meta) = &stored[0];
    assert_eq!(content, &format!("end_conversation: {closing}"));
    assert_eq!(meta["result"], closing);
    assert_eq!(meta["tool"], "end_conversation");
    assert_eq!(meta["arguments"], json!({}));
    assert_eq!(meta["is_error"], false);
    assert_eq!(meta["round"], 1);
    assert_eq!(roles(&env, conversation).await, ["user", "tool", "assistant"]);
}

#[tokio::test]
async fn the_loop_is_bounded() {
    // Always a call while tools are offered; text only when none are.
    let model = model_server(Provider::OpenAi, |n, body| {
        if body.get("tools").is_some() {
            openai_call(&format!("call_{n}"), "search_knowledge", r#"{"query":"refund policy"}"#)
        } else {
            openai_answer("Refunds take five business days.")
        }
    })
    .await;
    let env = env_for(Provider::OpenAi, &model).await;
    let t = env.company("acme", "starter").await;
    let agent = add_agent(&env, &t, true, json!(["search_knowledge"])).await;
    let (conversation, token) = session(&env, agent).await;

    let r = say(&env, conversation, &token, "How do refunds work?").await;
    assert_eq!(r["reply"]["content"], "Refunds take five business days.", "{r}");
    assert_eq!(r["reply"]["metadata"]["kind"], "answer", "{r}");
    assert_eq!(r["reply"]["metadata"]["tool_calls"], MAX_ROUNDS, "{r}");

    let requests = model_requests(&model).await;
    assert_eq!(requests.len(), MAX_ROUNDS + 1);
    for (i, request) in requests[..MAX_ROUNDS].iter().enumerate() {
        assert_eq!(tool_names(request), ["search_knowledge"], "request {i}");
    }
    let last = &requests[MAX_ROUNDS];
    assert!(last.get("tools").is_none() && last.get("tool_choice").is_none(), "{last}");
    // Every round written out as text: the model's calls, then their results.
    let messages = last["messages"].as_array().unwrap();
    assert!(messages.iter().all(|m| m["role"] != "tool" && m.get("tool_calls").is_none()), "{last}");
    let results: Vec<&Value> =
        messages.iter().filter(|m| m["content"].as_str().is_some_and(|c| c.starts_with("[tool results]"))).collect();
    assert_eq!(results.len(), MAX_ROUNDS, "{last}");
    assert_eq!(results[0]["content"], "[tool results]\nsearch_knowledge: no passages matched");
    let ids: Vec<String> = (0..MAX_ROUNDS).map(|i| format!("call_{i}")).collect();

    let stored = tool_messages(&env, conversation).await;
    assert_eq!(stored.len(), MAX_ROUNDS);
    for (i, (content, meta)) in stored.iter().enumerate() {
        assert_eq!(meta["tool"], "search_knowledge", "{meta}");
        assert_eq!(meta["call_id"], ids[i].as_str(), "{meta}");
        assert_eq!(meta["round"], i + 1, "{meta}");
        assert_eq!(meta["arguments"], json!({"query": "refund policy"}), "{meta}");
        // The agent has no knowledge: the search finds nothing, which is not an error.
        assert_eq!(meta["is_error"], false, "{meta}");
        assert_eq!(meta["result"], "no passages matched", "{meta}");
        assert_eq!(content, "search_knowledge: no passages matched");
    }
    let mut expected = vec!["user".to_string()];
    expected.extend(std::iter::repeat_n("tool".to_string(), MAX_ROUNDS));
    expected.push("assistant".to_string());
    assert_eq!(roles(&env, conversation).await, expected);
}

#[tokio::test]
async fn no_tools_means_an_unchanged_request() {
    let model = model_server(Provider::OpenAi, |_, _| openai_answer("Refunds take five business days.")).await;
    let env = env_for(Provider::OpenAi, &model).await;
    let t = env.company("acme", "starter").await;
    let agent = add_agent(&env, &t, false, json!([])).await;
    let (conversation, token) = session(&env, agent).await;

    let r = say(&env, conversation, &token, "How do refunds work?").await;
    assert_eq!(r["reply"]["content"], "Refunds take five business days.", "{r}");
    assert_eq!(r["reply"]["metadata"]["tool_calls"], 0, "{r}");
    assert_eq!(r["reply"]["metadata"]["ends_conversation"], false, "{r}");

    let requests = model_requests(&model).await;
    assert_eq!(requests.len(), 1);
    let body = &requests[0];
    let mut keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["max_tokens", "messages", "model", "stream", "stream_options", "temperature"], "{body}");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{body}");
    assert_eq!(messages[1], json!({"role": "user", "content": "How do refunds work?"}));

    assert!(tool_messages(&env, conversation).await.is_empty());
    assert_eq!(roles(&env, conversation).await, ["user", "assistant"]);
    assert_eq!(status(&env, conversation).await, "active");
}

/// `llmConfig.model`, an active chat model of the catalog: of the platform's provider it runs
/// with the platform's key; of another provider only with the company's key for it (without
/// one, the platform's model answers); a model the catalog does not have is refused on write.
#[tokio::test]
async fn the_agents_own_model_answers_with_the_key_its_provider_needs() {
    let platform = model_server(Provider::OpenAi, |_, _| openai_answer("From OpenAI.")).await;
    let company_anthropic = model_server(Provider::Anthropic, |_, _| anthropic_answer("From Claude.")).await;
    let env = env_for(Provider::OpenAi, &platform).await;
    let t = env.company("acme", "starter").await;
    let owner = env.owner().await;
    let agent = add_agent(&env, &t, false, json!([])).await;
    let set_model = |model: &'static str| {
        let owner = &owner;
        async move {
            owner
                .execute(
                    "UPDATE chatapp_agents SET llm_config = jsonb_build_object('model', $2::text) WHERE id = $1",
                    &[&agent, &model],
                )
                .await
                .unwrap();
        }
    };

    // Another OpenAI model: the platform's base and key, the agent's model.
    set_model("gpt-4o").await;
    let (conversation, token) = session(&env, agent).await;
    let r = say(&env, conversation, &token, "Hello?").await;
    assert_eq!(r["reply"]["content"], "From OpenAI.", "{r}");
    let sent = platform.received_requests().await.unwrap();
    assert_eq!(sent.last().unwrap().body_json::<Value>().unwrap()["model"], "gpt-4o");
    assert_eq!(header_of(sent.last().unwrap(), "authorization"), "Bearer sk-test");

    // An Anthropic model without an Anthropic key: the platform's model answers.
    set_model("claude-3-5-sonnet").await;
    let (conversation, token) = session(&env, agent).await;
    let r = say(&env, conversation, &token, "Hello again?").await;
    assert_eq!(r["reply"]["content"], "From OpenAI.", "{r}");
    let sent = platform.received_requests().await.unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].body_json::<Value>().unwrap()["model"], "gpt-4o-mini");

    // With the company's Anthropic key (its own base URL): Claude answers, with that key.
    let r = env
        .send(
            HttpFunction::ProviderKeys,
            Req::post("/admin/provider-keys").token(&t.admin_token).json(json!({
                "name": "Our Claude", "provider": "anthropic", "api_key": "sk-ant-company-0123456789",
                "base_url": company_anthropic.uri(),
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    chatapp::chat::company_keys::forget(t.company_id);
    let (conversation, token) = session(&env, agent).await;
    let r = say(&env, conversation, &token, "And now?").await;
    assert_eq!(r["reply"]["content"], "From Claude.", "{r}");
    let sent = company_anthropic.received_requests().await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body_json::<Value>().unwrap()["model"], "claude-3-5-sonnet-latest");
    assert_eq!(header_of(&sent[0], "x-api-key"), "sk-ant-company-0123456789");
    assert_eq!(platform.received_requests().await.unwrap().len(), 2, "the platform's model was not called again");

    // A model the catalog does not have is refused when written, and nothing changes.
    let master = env.master_token().await;
    let r = env
        .send(
            HttpFunction::Agents,
            Req::patch(&format!("/admin/agents/{agent}?company_id={}", t.company_id))
                .token(&master)
                .json(json!({"llm_config": {"model": "gpt-imaginary"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().starts_with("llmConfig.model:"), "{}", r.body);
    let stored: Value =
        owner.query_one("SELECT llm_config FROM chatapp_agents WHERE id = $1", &[&agent]).await.unwrap().get(0);
    assert_eq!(stored, json!({"model": "claude-3-5-sonnet"}));
}
