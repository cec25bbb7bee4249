//! The chat turn calling the agent's tools, through the widget function, against local servers
//! (wiremock) speaking each provider's streamed tool-calling format: an HTTP action called signed
//! and its result fed back to the model; a failing and a slow action that still get an answer;
//! `request_human_handover` handing the conversation over; `end_conversation` resolving it after
//! the reply; the rounds bounded by `MAX_ROUNDS`; and no tools at all leaving the request as it
//! was. Every call is stored as a `tool` message before the reply, and never shown to the
//! customer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chatapp::chat::tools::MAX_ROUNDS;
use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::model_server::*;
use chatapp_tests::widget::{say, session, widget_agent};
use chatapp_tests::{Req, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const DESCRIPTION: &str = "Looks an order up by its id.";
const QUESTION: &str = "Where is my order A1?";

fn order_parameters() -> Value {
    json!({"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]})
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
            HttpFunction::AgentActions,
            Req::post(&format!("/admin/agents/{agent}/actions")).token(&t.admin_token).json(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["signing_secret"].as_str().unwrap().to_string()
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
    let agent = widget_agent(&env, &t, false, json!([])).await;
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
    let agent = widget_agent(&env, &t, false, json!([])).await;
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
    let agent = widget_agent(&env, &t, false, json!([])).await;
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
    let agent = widget_agent(&env, &t, false, json!(["request_human_handover"])).await;
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
    let agent = widget_agent(&env, &t, false, json!(["end_conversation"])).await;
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
    let agent = widget_agent(&env, &t, true, json!(["search_knowledge"])).await;
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
    let agent = widget_agent(&env, &t, false, json!([])).await;
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
    let agent = widget_agent(&env, &t, false, json!([])).await;
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

#[tokio::test]
async fn tool_config_sets_the_passages_one_search_returns_and_refuses_typos() {
    // Every turn: one search call, then the answer.
    let model = model_server(Provider::OpenAi, |n, _| {
        if n % 2 == 0 {
            openai_call(&format!("call_{n}"), "search_knowledge", r#"{"query":"refund"}"#)
        } else {
            openai_answer("Refunds take five business days.")
        }
    })
    .await;
    let env = env_for(Provider::OpenAi, &model).await;
    let t = env.company("acme", "starter").await;
    let agent = widget_agent(&env, &t, true, json!(["search_knowledge"])).await;
    // A category of the agent's knowledge, holding three articles about refunds.
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::post("/admin/knowledge/categories").token(&t.admin_token).json(json!({"name": "Policies"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let category = r.body["id"].clone();
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::put(&format!("/admin/knowledge/agents/{agent}/categories"))
                .token(&t.admin_token)
                .json(json!({"category_ids": [category]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for (title, content) in [
        ("Refunds", "A refund takes five business days."),
        ("Refund methods", "A refund goes back to the card you paid with."),
        ("Refund window", "You can ask for a refund within 30 days."),
    ] {
        let r = env
            .send(
                HttpFunction::KnowledgeArticles,
                Req::post("/admin/knowledge/articles")
                    .token(&t.admin_token)
                    .json(json!({"title": title, "content": content, "category_id": category, "publish": true})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    chatapp_functions::ingest_worker::drain(&env.deps).await.unwrap();
    let passages = |result: &Value| result.as_str().unwrap().matches("\n\n[").count() + 1;

    // The agent's default (ragConfig.maxResults, 5): all three articles.
    let (conversation, token) = session(&env, agent).await;
    say(&env, conversation, &token, "How do refunds work?").await;
    let stored = tool_messages(&env, conversation).await;
    assert_eq!(passages(&stored[0].1["result"]), 3, "{}", stored[0].1);

    // Misspelt tools and settings are refused by the agents route, naming the field.
    for (changes, field) in [
        (json!({"tool_config": {"search_knowledge": {"maxResult": 1}}}), "toolConfig.search_knowledge"),
        (json!({"tool_config": {"serch_knowledge": {}}}), "toolConfig.serch_knowledge"),
        (json!({"tool_config": {"search_knowledge": {"maxResults": 0}}}), "toolConfig.search_knowledge.maxResults"),
        (json!({"enabled_tools": ["serch_knowledge"]}), "enabled_tools[0]"),
    ] {
        let r = env
            .send(
                HttpFunction::Agents,
                Req::patch(&format!("/admin/agents/{agent}")).token(&t.admin_token).json(changes),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{field}: {message}");
    }

    // {"search_knowledge": {"maxResults": 1}}: one passage per call.
    env.owner()
        .await
        .execute(
            "UPDATE chatapp_agents SET tool_config = '{\"search_knowledge\": {\"maxResults\": 1}}' WHERE id = $1",
            &[&agent],
        )
        .await
        .unwrap();
    let (conversation, token) = session(&env, agent).await;
    say(&env, conversation, &token, "How do refunds work?").await;
    let stored = tool_messages(&env, conversation).await;
    assert_eq!(passages(&stored[0].1["result"]), 1, "{}", stored[0].1);
    assert!(stored[0].1["result"].as_str().unwrap().starts_with("[1] "), "{}", stored[0].1);
}

#[tokio::test]
async fn an_openai_compatible_model_runs_with_the_companys_key_at_its_base_url() {
    let platform = model_server(Provider::OpenAi, |_, _| openai_answer("From OpenAI.")).await;
    let hosted = model_server(Provider::OpenAi, |_, _| openai_answer("From our own server.")).await;
    let env = env_for(Provider::OpenAi, &platform).await;
    let t = env.company("acme", "starter").await;
    let master = env.master_token().await;
    let r = env
        .send(
            HttpFunction::Models,
            Req::post("/admin/models").token(&master).json(json!({
                "slug": "acme-llm-1.5", "name": "Acme LLM 1.5", "provider": "openai_compatible",
                "provider_model": "acme/llm-1.5", "model_type": "chat", "context_window": 32000,
                "max_output_tokens": 4096, "input_price_per_1m": 0.5, "output_price_per_1m": 1.5,
                "is_active": true
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let agent = widget_agent(&env, &t, false, json!([])).await;
    env.owner()
        .await
        .execute("UPDATE chatapp_agents SET llm_config = '{\"model\": \"acme-llm-1.5\"}' WHERE id = $1", &[&agent])
        .await
        .unwrap();

    // Without the company's key for it: the platform's model answers.
    let (conversation, token) = session(&env, agent).await;
    let r = say(&env, conversation, &token, "Hello?").await;
    assert_eq!(r["reply"]["content"], "From OpenAI.", "{r}");

    // With its openai_compatible key: that server, that key, the catalog's provider model.
    let r = env
        .send(
            HttpFunction::ProviderKeys,
            Req::post("/admin/provider-keys").token(&t.admin_token).json(json!({
                "name": "Our server", "provider": "openai_compatible", "api_key": "sk-hosted-0123456789",
                "base_url": format!("{}/v1", hosted.uri()),
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    chatapp::chat::company_keys::forget(t.company_id);
    let (conversation, token) = session(&env, agent).await;
    let r = say(&env, conversation, &token, "And now?").await;
    assert_eq!(r["reply"]["content"], "From our own server.", "{r}");
    let sent = hosted.received_requests().await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].url.path(), "/v1/chat/completions");
    assert_eq!(sent[0].body_json::<Value>().unwrap()["model"], "acme/llm-1.5");
    assert_eq!(header_of(&sent[0], "authorization"), "Bearer sk-hosted-0123456789");
    assert_eq!(platform.received_requests().await.unwrap().len(), 1, "the platform's model was not called again");
}

/// The rows a preview must not write.
const PREVIEW_UNTOUCHED: [&str; 6] = [
    "chatapp_conversations",
    "chatapp_messages",
    "chatapp_usage_records",
    "chatapp_escalations",
    "chatapp_outbox",
    "chatapp_jobs",
];

#[tokio::test]
async fn a_preview_prices_the_models_tokens_and_reports_a_handover_without_making_it() {
    let model = model_server(Provider::OpenAi, |_, _| {
        openai_call("call_person", "request_human_handover", r#"{"reason":"billing dispute"}"#)
    })
    .await;
    let env = env_for(Provider::OpenAi, &model).await;
    let t = env.company("acme", "starter").await;
    let agent = widget_agent(&env, &t, false, json!(["request_human_handover"])).await;
    let mut before = Vec::new();
    for table in PREVIEW_UNTOUCHED {
        before.push(env.count(table).await);
    }

    let r = env
        .send(
            HttpFunction::AgentPreview,
            Req::post(&format!("/admin/agents/{agent}/preview"))
                .token(&t.admin_token)
                .json(json!({"message": "I dispute this charge"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let p = &r.body;
    assert_eq!(p["kind"], "handoff", "{p}");
    assert_eq!(p["escalation"]["trigger"], "explicit_request", "{p}");
    assert_eq!(p["escalation"]["reason"], "billing dispute", "{p}");
    let calls = p["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{p}");
    assert_eq!(
        (calls[0]["name"].clone(), calls[0]["is_error"].clone()),
        (json!("request_human_handover"), json!(false))
    );
    assert_eq!(calls[0]["arguments"], json!({"reason": "billing dispute"}));

    // Priced from the catalog (gpt-4o-mini: 0.15 / 0.60 per million) with the tokens the model
    // reported.
    assert_eq!(p["model"], "gpt-4o-mini", "{p}");
    assert_eq!((p["input_tokens"].clone(), p["output_tokens"].clone()), (json!(120), json!(12)), "{p}");
    assert_eq!(p["cost_unknown"], false);
    let cost = p["estimated_cost"].as_f64().unwrap_or_else(|| panic!("no cost: {p}"));
    let expected = (120.0 * 0.15 + 12.0 * 0.60) / 1_000_000.0;
    assert!((cost - expected).abs() < 1e-12, "{cost} != {expected}");

    // Nothing handed over, stored, counted or queued.
    let mut after = Vec::new();
    for table in PREVIEW_UNTOUCHED {
        after.push(env.count(table).await);
    }
    assert_eq!(after, before, "{PREVIEW_UNTOUCHED:?}");
}
