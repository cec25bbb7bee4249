//! The whole life of an agent through the handlers: made from a published package, given
//! knowledge, edited (every change a version), previewed (JSON and server-sent events, nothing
//! written), activated (the draft published), edited again while customers keep the published
//! configuration, published, compared, rolled back and published at once, archived. Company
//! admins never see the master admin's fields in a version or a diff; other companies get 404s;
//! an update that changes nothing writes no version.
//!
//! The chat model is the offline extractive one, so the observable difference between
//! configurations is one that needs no model: business hours that are never open answer with
//! their outside-hours message, no hours answer from the knowledge base.

use chatapp_functions::http_function::HttpFunction::{
    AgentPackages, AgentPreview, EscalationRules, KnowledgeCategories, KnowledgeFiles, Widget,
};
use chatapp_tests::{assert_error, Req, Resp, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};

const UNKNOWN: &str = "6f1c1d0e-1111-4222-8333-944445555666";

const REFUNDS: &str = "# Refund policy\n\nCustomers can ask for a refund within 30 days of purchase. \
    Refunds go back to the original payment method and take five business days.\n\n\
    # Shipping\n\nWe ship parcels with DHL. International shipping takes ten days.";

const QUESTION: &str = "How long do refunds take?";
/// What the answer from the refund policy says.
const ANSWER: &str = "five business days";
const CLOSED: &str = "We are closed (v2).";

/// The extractive model's answer when no passage was found.
const NOTHING_FOUND: &str = "I couldn't find anything about that in our knowledge base.";

/// Business hours that are never open: enabled, with no day open.
fn never_open() -> Value {
    json!({"enabled": true, "timezone": "UTC", "schedule": {}, "outsideHoursMessage": CLOSED})
}

/// The rows a preview must not write, counted table by table.
const UNTOUCHED: [&str; 10] = [
    "chatapp_conversations",
    "chatapp_messages",
    "chatapp_usage_records",
    "chatapp_audit_logs",
    "chatapp_agent_versions",
    "chatapp_customers",
    "chatapp_escalations",
    "chatapp_conversation_events",
    "chatapp_conversation_analytics",
    "chatapp_daily_analytics",
];

async fn written(env: &TestEnv) -> Vec<i64> {
    let mut counts = Vec::with_capacity(UNTOUCHED.len());
    for table in UNTOUCHED {
        counts.push(env.count(table).await);
    }
    counts
}

fn id_of(r: &Resp) -> String {
    r.body["id"].as_str().unwrap_or_else(|| panic!("no id in {}", r.body)).to_string()
}

fn message(r: &Resp) -> String {
    r.body["error"]["message"].as_str().unwrap_or("").to_string()
}

/// The agent's (version, published_version, has_unpublished_changes).
fn state(agent: &Value) -> (Value, Value, Value) {
    (agent["version"].clone(), agent["published_version"].clone(), agent["has_unpublished_changes"].clone())
}

async fn agents(env: &TestEnv, token: &str, req: Req) -> Resp {
    env.send(chatapp_tests::agent_admin_function(req.path()), req.token(token)).await
}

async fn create_agent(env: &TestEnv, token: &str, body: Value) -> String {
    let r = agents(env, token, Req::post("/admin/agents").json(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    id_of(&r)
}

async fn patch(env: &TestEnv, token: &str, agent: &str, body: Value) -> Resp {
    let r = agents(env, token, Req::patch(&format!("/admin/agents/{agent}")).json(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r
}

/// `POST /admin/agents/{id}/{action}` (activate, archive, publish, versions/{n}/rollback...).
async fn act(env: &TestEnv, token: &str, agent: &str, action: &str) -> Resp {
    let r = agents(env, token, Req::post(&format!("/admin/agents/{agent}/{action}"))).await;
    assert_eq!(r.status, StatusCode::OK, "{action}: {}", r.body);
    r
}

/// `GET /admin/agents/{id}/{what}` (versions, versions/{n}, versions/diff?...), answered 200.
async fn read(env: &TestEnv, token: &str, agent: &str, what: &str) -> Value {
    let r = agents(env, token, Req::get(&format!("/admin/agents/{agent}/{what}"))).await;
    assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.body);
    r.body
}

async fn preview(env: &TestEnv, token: &str, agent: &str, body: Value) -> Resp {
    env.send(AgentPreview, Req::post(&format!("/admin/agents/{agent}/preview")).token(token).json(body)).await
}

/// A preview answered 200 with JSON.
async fn previewed(env: &TestEnv, token: &str, agent: &str, body: Value) -> Value {
    let r = preview(env, token, agent, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// A streamed preview: its events as (name, data), in order.
async fn preview_events(env: &TestEnv, token: &str, agent: &str, body: Value) -> Vec<(String, Value)> {
    let r = env
        .send(
            AgentPreview,
            Req::post(&format!("/admin/agents/{agent}/preview"))
                .token(token)
                .header("accept", "text/event-stream")
                .json(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("text/event-stream"));
    let text = r.body.as_str().unwrap_or_else(|| panic!("not an event stream: {}", r.body));
    assert!(text.starts_with("event: delta\n"), "{text}");
    assert!(text.ends_with("\n\n"), "{text}");
    text.split("\n\n")
        .filter(|frame| !frame.is_empty())
        .map(|frame| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in frame.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap_or_else(|e| panic!("bad data {d}: {e}"));
                }
            }
            (name, data)
        })
        .collect()
}

/// A new knowledge category of `t`'s company named `name`; its id.
async fn add_category(env: &TestEnv, t: &Tenant, name: &str) -> String {
    let r = env
        .send(
            KnowledgeCategories,
            Req::post("/admin/knowledge/categories").token(&t.admin_token).json(json!({"name": name})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    id_of(&r)
}

/// A knowledge category holding the refund policy, ingested; its id (agents given it answer
/// from it).
async fn add_refund_policy(env: &TestEnv, t: &Tenant) -> String {
    let token = t.admin_token.as_str();
    let category = add_category(env, t, "Policies").await;
    let r = env
        .send(
            KnowledgeFiles,
            Req::post("/admin/knowledge/files")
                .token(token)
                .json(json!({"filename": "policy.md", "category_id": category, "size": REFUNDS.len()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let file = r.body["file"]["id"].as_str().unwrap_or_else(|| panic!("no file id in {}", r.body)).to_string();
    let r = env
        .send(
            KnowledgeFiles,
            Req::put(&format!("/admin/knowledge/files/{file}/content"))
                .token(token)
                .bytes(REFUNDS.as_bytes(), "text/markdown"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    chatapp_functions::ingest_worker::drain(&env.deps).await.unwrap();
    category
}

async fn start_session(env: &TestEnv, agent: &str) -> Resp {
    env.send(Widget, Req::post(&format!("/widget/agents/{agent}/sessions")).json(json!({}))).await
}

/// A widget conversation: (conversation id, session token).
async fn open_chat(env: &TestEnv, agent: &str) -> (String, String) {
    let r = start_session(env, agent).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (r.body["conversation_id"].as_str().unwrap().to_string(), r.body["session_token"].as_str().unwrap().to_string())
}

async fn say(env: &TestEnv, conversation: &str, token: &str, content: &str) -> Resp {
    env.send(
        Widget,
        Req::post(&format!("/widget/conversations/{conversation}/messages"))
            .token(token)
            .json(json!({"content": content})),
    )
    .await
}

/// What a customer starting a new widget conversation is answered to `question`.
async fn ask(env: &TestEnv, agent: &str, question: &str) -> String {
    let (conversation, token) = open_chat(env, agent).await;
    let r = say(env, &conversation, &token, question).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["reply"]["content"].as_str().unwrap_or_else(|| panic!("no reply in {}", r.body)).to_string()
}

/// The widget's "a person can be had now", which follows the published business hours.
async fn open_now(env: &TestEnv, agent: &str) -> Value {
    let r = env.send(Widget, Req::get(&format!("/widget/agents/{agent}/config"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["human_handoff"]["open_now"].clone()
}

#[tokio::test]
async fn the_whole_life_of_an_agent() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let t = env.company("acme", "starter").await;
    let admin = t.admin_token.as_str();

    // The master admin creates and publishes a package.
    let r = env
        .send(
            AgentPackages,
            Req::post("/admin/agent-packages").token(&master).json(json!({
                "name": "Studio Support", "slug": "studio-support", "version": "1.0.0",
                "capabilities": ["rag"], "default_config": {"personality": "Friendly"}
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let package = id_of(&r);
    let r =
        env.send(AgentPackages, Req::post(&format!("/admin/agent-packages/{package}/publish")).token(&master)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["published_at"].is_string(), "{}", r.body);

    // The company admin makes an agent from it, answering from the refund policy: version 1,
    // never published.
    let policies = add_refund_policy(&env, &t).await;
    let body = json!({"name": "Helper", "package_id": package, "knowledge_category_ids": [policies]});
    let r = agents(&env, admin, Req::post("/admin/agents").json(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["package_id"], package);
    assert_eq!(r.body["package_slug"], "studio-support");
    assert_eq!(r.body["personality"], "Friendly");
    assert_eq!(r.body["rag_enabled"], true);
    assert_eq!(r.body["status"], "draft");
    assert_eq!(state(&r.body), (json!(1), Value::Null, json!(true)), "{}", r.body);
    assert_eq!(r.body["published_at"], Value::Null);
    assert_eq!(r.body["knowledge_category_ids"], json!([policies]));
    let agent = id_of(&r);

    // An edit: version 2, still unpublished.
    let r = patch(&env, admin, &agent, json!({"personality": "Warm and precise"})).await;
    assert_eq!(r.body["personality"], "Warm and precise");
    assert_eq!(state(&r.body), (json!(2), Value::Null, json!(true)), "{}", r.body);

    // The preview answers from the knowledge base, with what an admin needs to judge it, and
    // writes nothing.
    let before = written(&env).await;
    let p = previewed(&env, admin, &agent, json!({"message": QUESTION})).await;
    assert_eq!(p["kind"], "answer", "{p}");
    assert!(p["reply"].as_str().unwrap().contains(ANSWER), "{p}");
    let passages = p["passages"].as_array().unwrap();
    assert!(!passages.is_empty(), "{p}");
    for (i, passage) in passages.iter().enumerate() {
        assert_eq!(passage["n"], json!(i + 1), "{p}");
        assert_eq!(passage["source"], "policy.md", "{p}");
        assert!(passage["score"].is_number(), "{p}");
    }
    assert!(passages.iter().any(|x| x["text"].as_str().unwrap().contains(ANSWER)), "{p}");
    assert!(p["confidence"].is_number(), "{p}");
    assert!(p["prompt_tokens"].as_u64().is_some_and(|n| n > 0), "{p}");
    assert!(p["input_tokens"].as_u64().is_some_and(|n| n > 0), "{p}");
    assert_eq!(p["escalation"], Value::Null);
    assert_eq!(p["error"], Value::Null);
    assert_eq!(p["tool_calls"], json!([]));
    assert_eq!(p["ends_conversation"], false);
    assert_eq!(p["model"], "extractive");
    assert_eq!((p["estimated_cost"].clone(), p["cost_unknown"].clone()), (json!(0.0), json!(false)));
    let after = written(&env).await;
    assert_eq!(after, before, "a preview writes nothing ({UNTOUCHED:?})");
    assert_eq!(after[0], 0, "no conversation");

    // The first activation publishes the draft; customers are answered from the knowledge base.
    let r = act(&env, admin, &agent, "activate").await;
    assert_eq!(r.body["status"], "active");
    assert_eq!(state(&r.body), (json!(2), json!(2), json!(false)), "{}", r.body);
    assert!(r.body["published_at"].is_string(), "{}", r.body);
    assert!(ask(&env, &agent, QUESTION).await.contains(ANSWER));
    assert_eq!(open_now(&env, &agent).await, true);

    // Closed hours in the draft: version 3, unpublished; customers still get version 2.
    let r = patch(&env, admin, &agent, json!({"business_hours": never_open()})).await;
    assert_eq!(r.body["business_hours"], never_open());
    assert_eq!(state(&r.body), (json!(3), json!(2), json!(true)), "{}", r.body);
    let got = agents(&env, admin, Req::get(&format!("/admin/agents/{agent}"))).await;
    assert_eq!(state(&got.body), (json!(3), json!(2), json!(true)), "{}", got.body);
    let reply = ask(&env, &agent, QUESTION).await;
    assert!(reply.contains(ANSWER), "the published version answers: {reply}");
    assert_eq!(open_now(&env, &agent).await, true);

    // The preview runs the draft, or the version asked for.
    let p = previewed(&env, admin, &agent, json!({"message": QUESTION})).await;
    assert_eq!((p["kind"].clone(), p["reply"].clone()), (json!("outside_hours"), json!(CLOSED)), "{p}");
    assert_eq!(p["passages"], json!([]));
    assert_eq!(p["prompt_tokens"], 0);
    assert_eq!(p["model"], Value::Null);
    let p = previewed(&env, admin, &agent, json!({"message": QUESTION, "version": 2})).await;
    assert_eq!(p["kind"], "answer", "{p}");
    assert!(p["reply"].as_str().unwrap().contains(ANSWER), "{p}");
    let p = previewed(&env, admin, &agent, json!({"message": QUESTION, "version": 3})).await;
    assert_eq!((p["kind"].clone(), p["reply"].clone()), (json!("outside_hours"), json!(CLOSED)), "{p}");

    // Published: customers get the closed hours. Publishing again changes nothing.
    let r = act(&env, admin, &agent, "publish").await;
    assert_eq!(state(&r.body), (json!(3), json!(3), json!(false)), "{}", r.body);
    assert_eq!(env.audit_count("agent.publish").await, 1);
    let r = act(&env, admin, &agent, "publish").await;
    assert_eq!(state(&r.body), (json!(3), json!(3), json!(false)), "{}", r.body);
    assert_eq!(env.audit_count("agent.publish").await, 1, "nothing to publish: no audit row");
    assert_eq!(ask(&env, &agent, QUESTION).await, CLOSED);
    assert_eq!(open_now(&env, &agent).await, false);

    // The history, newest first, with what changed.
    let list = read(&env, admin, &agent, "versions").await;
    assert_eq!(list["total"], 3, "{list}");
    let items = list["items"].as_array().unwrap();
    let summary: Vec<(Value, Value, Value)> =
        items.iter().map(|v| (v["version"].clone(), v["action"].clone(), v["changed"].clone())).collect();
    let created = json!([
        "name",
        "capabilities",
        "personality",
        "responseStyle",
        "llmConfig",
        "ragEnabled",
        "ragConfig",
        "enabledTools",
        "toolConfig",
        "escalationRules",
        "businessHours",
        "fallbackResponses",
        "promptVariables",
        "knowledgeCategoryIds"
    ]);
    assert_eq!(
        summary,
        [
            (json!(3), json!("update"), json!(["businessHours"])),
            (json!(2), json!("update"), json!(["personality"])),
            (json!(1), json!("create"), created),
        ],
        "{list}"
    );
    for v in items {
        assert_eq!(v["created_by"], t.admin_id.to_string(), "{v}");
        assert_eq!(v["note"], Value::Null, "{v}");
        assert!(v.get("config").is_none(), "lists carry no configuration: {v}");
    }
    let published: Vec<bool> = items.iter().map(|v| v["published_at"].is_string()).collect();
    assert_eq!(published, [true, true, false], "{list}");

    let v2 = read(&env, admin, &agent, "versions/2").await;
    assert_eq!((v2["version"].clone(), v2["action"].clone()), (json!(2), json!("update")), "{v2}");
    assert_eq!(v2["config"]["personality"], "Warm and precise");
    assert_eq!(v2["config"]["businessHours"], json!({}));
    assert_eq!(v2["config"]["name"], "Helper");
    let v3 = read(&env, admin, &agent, "versions/3").await;
    assert_eq!(v3["config"]["businessHours"], never_open());

    let diff = read(&env, admin, &agent, "versions/diff?from=2&to=3").await;
    assert_eq!(
        diff,
        json!({"from": 2, "to": 3, "changes": [
            {"field": "businessHours", "before": {}, "after": never_open(), "hidden": false}
        ]})
    );
    let diff = read(&env, admin, &agent, "versions/diff?from=1&to=3").await;
    let fields: Vec<&str> = diff["changes"].as_array().unwrap().iter().map(|c| c["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["personality", "businessHours"], "{diff}");
    assert_eq!(diff["changes"][0]["before"], "Friendly");

    // Rolled back to version 2 and published at once: version 4; customers get the knowledge base.
    let r = act(&env, admin, &agent, "versions/2/rollback?publish=true").await;
    assert_eq!(state(&r.body), (json!(4), json!(4), json!(false)), "{}", r.body);
    assert_eq!(r.body["business_hours"], json!({}));
    assert_eq!(r.body["personality"], "Warm and precise");
    assert_eq!(r.body["status"], "active");
    let v4 = read(&env, admin, &agent, "versions/4").await;
    assert_eq!(
        (v4["action"].clone(), v4["note"].clone(), v4["changed"].clone()),
        (json!("rollback"), json!("rolled back to version 2"), json!(["businessHours"])),
        "{v4}"
    );
    assert_eq!(v4["config"], v2["config"], "the configuration of version 2");
    assert!(v4["published_at"].is_string(), "{v4}");
    assert_eq!(read(&env, admin, &agent, "versions").await["total"], 4);
    assert!(ask(&env, &agent, QUESTION).await.contains(ANSWER));
    assert_eq!(open_now(&env, &agent).await, true);

    // Archived: an open conversation is refused, and no new one starts.
    let (conversation, token) = open_chat(&env, &agent).await;
    let r = act(&env, admin, &agent, "archive").await;
    assert_eq!(r.body["status"], "archived");
    assert_eq!(state(&r.body), (json!(4), json!(4), json!(false)), "{}", r.body);
    let messages = env.count("chatapp_messages").await;
    assert_error!(say(&env, &conversation, &token, QUESTION).await, StatusCode::CONFLICT, "agent_unavailable");
    assert_error!(start_session(&env, &agent).await, StatusCode::CONFLICT, "agent_unavailable");
    assert_eq!(env.count("chatapp_messages").await, messages, "a refused turn stores nothing");

    for (action, count) in [
        ("agent.create", 1),
        ("agent.update", 2),
        ("agent.activate", 1),
        ("agent.publish", 1),
        ("agent.rollback", 1),
        ("agent.archive", 1),
    ] {
        assert_eq!(env.audit_count(action).await, count, "{action}");
    }
}

#[tokio::test]
async fn preview_streams_like_the_widget() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let admin = t.admin_token.as_str();
    let policies = add_refund_policy(&env, &t).await;
    let agent = create_agent(&env, admin, json!({"name": "Helper", "knowledge_category_ids": [policies]})).await;

    let before = written(&env).await;
    let history = json!([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello, what can I do?"}]);
    let events = preview_events(&env, admin, &agent, json!({"message": QUESTION, "history": history})).await;
    let (last, done) = events.last().unwrap();
    assert_eq!(last, "done", "{events:?}");
    let deltas = &events[..events.len() - 1];
    assert!(!deltas.is_empty() && deltas.iter().all(|(name, _)| name == "delta"), "{events:?}");
    let streamed: String = deltas.iter().map(|(_, d)| d["text"].as_str().unwrap()).collect();
    assert_eq!(done["reply"], streamed, "the pieces make the reply");
    assert!(streamed.contains(ANSWER), "{streamed}");
    assert_eq!(done["kind"], "answer", "{done}");
    assert!(!done["passages"].as_array().unwrap().is_empty(), "{done}");
    assert_eq!(done["escalation"], Value::Null);
    assert_eq!(done["model"], "extractive");

    // Outside business hours: the message as one piece, then the result.
    patch(&env, admin, &agent, json!({"business_hours": never_open()})).await;
    let before_closed = written(&env).await;
    let events = preview_events(&env, admin, &agent, json!({"message": QUESTION})).await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["delta", "done"], "{events:?}");
    assert_eq!(events[0].1, json!({"text": CLOSED}));
    assert_eq!((events[1].1["kind"].clone(), events[1].1["reply"].clone()), (json!("outside_hours"), json!(CLOSED)));
    assert_eq!(written(&env).await, before_closed);

    // Only the edit wrote anything: its version and its audit row.
    let mut expected = before;
    expected[3] += 1; // chatapp_audit_logs
    expected[4] += 1; // chatapp_agent_versions
    assert_eq!(before_closed, expected, "{UNTOUCHED:?}");
}

#[tokio::test]
async fn versions_hide_master_fields_from_company_admins() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let t = env.company("acme", "starter").await;
    let admin = t.admin_token.as_str();
    let agent = create_agent(&env, admin, json!({"name": "Helper"})).await;
    let company = t.company_id;

    for (prompt, version) in [("You are the Acme concierge.", 2), ("You are the Acme butler.", 3)] {
        let r = agents(
            &env,
            &master,
            Req::patch(&format!("/admin/agents/{agent}?company_id={company}")).json(json!({"system_prompt": prompt})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["system_prompt"], prompt);
        assert_eq!(r.body["version"], version);
    }

    // The company admin's view of a version: no master field.
    let v3 = read(&env, admin, &agent, "versions/3").await;
    let config = v3["config"].as_object().unwrap_or_else(|| panic!("no config in {v3}"));
    for hidden in ["systemPrompt", "llmConfig", "promptTemplateId", "promptVariables"] {
        assert!(!config.contains_key(hidden), "{hidden} shown: {v3}");
    }
    assert_eq!(config.len(), 16, "every other field: {v3}");
    assert_eq!(config["name"], "Helper");
    assert_eq!(v3["changed"], json!(["systemPrompt"]), "that it changed is shown");
    let v1 = read(&env, admin, &agent, "versions/1").await;
    assert!(v1["config"].get("systemPrompt").is_none() && v1["config"].get("llmConfig").is_none(), "{v1}");
    let list = read(&env, admin, &agent, "versions").await;
    assert_eq!(list["items"][0]["changed"], json!(["systemPrompt"]));
    let got = agents(&env, admin, Req::get(&format!("/admin/agents/{agent}"))).await;
    assert!(got.body.get("system_prompt").is_none(), "{}", got.body);

    // The master admin sees it.
    let v3 = read(&env, &master, &agent, &format!("versions/3?company_id={company}")).await;
    assert_eq!(v3["config"]["systemPrompt"], "You are the Acme butler.");
    assert_eq!(v3["config"]["llmConfig"], json!({}));
    let v2 = read(&env, &master, &agent, &format!("versions/2?company_id={company}")).await;
    assert_eq!(v2["config"]["systemPrompt"], "You are the Acme concierge.");

    // A diff names the field and hides its values from the company admin.
    for range in ["from=2&to=3", "from=1&to=3"] {
        let diff = read(&env, admin, &agent, &format!("versions/diff?{range}")).await;
        let changes = diff["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 1, "{diff}");
        assert_eq!((changes[0]["field"].clone(), changes[0]["hidden"].clone()), (json!("systemPrompt"), json!(true)));
        assert_eq!(changes[0]["before"], Value::Null, "{diff}");
        assert_eq!(changes[0]["after"], Value::Null, "{diff}");
        assert!(!diff.to_string().contains("Acme"), "no value leaks: {diff}");
    }
    let diff = read(&env, &master, &agent, &format!("versions/diff?from=2&to=3&company_id={company}")).await;
    assert_eq!(
        diff,
        json!({"from": 2, "to": 3, "changes": [{
            "field": "systemPrompt", "before": "You are the Acme concierge.", "after": "You are the Acme butler.",
            "hidden": false
        }]})
    );
}

#[tokio::test]
async fn other_companies_versions_and_previews_are_not_found() {
    let env = TestEnv::new().await;
    let a = env.company("acme", "starter").await;
    let b = env.company("beta", "starter").await;
    let agent = create_agent(&env, &a.admin_token, json!({"name": "Helper"})).await;
    patch(&env, &a.admin_token, &agent, json!({"personality": "Warm"})).await;
    let audits = env.count("chatapp_audit_logs").await;

    // Another company's admin: every route is a 404, as for an agent that does not exist.
    let routes = [
        ("GET", "versions"),
        ("GET", "versions/1"),
        ("GET", "versions/diff?from=1&to=2"),
        ("POST", "versions/1/rollback"),
        ("POST", "versions/1/rollback?publish=true"),
        ("POST", "publish"),
    ];
    for id in [agent.as_str(), UNKNOWN] {
        for (method, route) in routes {
            let r = agents(&env, &b.admin_token, Req::new(method, &format!("/admin/agents/{id}/{route}"))).await;
            assert_error!(r, StatusCode::NOT_FOUND, "not_found");
        }
        let r = preview(&env, &b.admin_token, id, json!({"message": QUESTION})).await;
        assert_error!(r, StatusCode::NOT_FOUND, "not_found");
    }
    let r = agents(&env, &a.admin_token, Req::get(&format!("/admin/agents/{UNKNOWN}/versions"))).await;
    assert_error!(r, StatusCode::NOT_FOUND, "not_found");

    // Versions that do not exist.
    for route in ["versions/99", "versions/0", "versions/-1", "versions/abc", "versions/99999999999"] {
        let r = agents(&env, &a.admin_token, Req::get(&format!("/admin/agents/{agent}/{route}"))).await;
        assert_error!(r, StatusCode::NOT_FOUND, "not_found");
    }
    for range in ["from=1&to=99", "from=99&to=1"] {
        let r = agents(&env, &a.admin_token, Req::get(&format!("/admin/agents/{agent}/versions/diff?{range}"))).await;
        assert_error!(r, StatusCode::NOT_FOUND, "not_found");
    }
    for range in ["from=1", "from=a&to=2"] {
        let r = agents(&env, &a.admin_token, Req::get(&format!("/admin/agents/{agent}/versions/diff?{range}"))).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    }
    for route in ["versions/99/rollback", "versions/abc/rollback", "versions/0/rollback?publish=true"] {
        let r = agents(&env, &a.admin_token, Req::post(&format!("/admin/agents/{agent}/{route}"))).await;
        assert_error!(r, StatusCode::NOT_FOUND, "not_found");
    }

    // Bad preview bodies.
    let turns = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": format!("turn {i}")}))
            .collect()
    };
    let bad = [
        (json!({"message": ""}), "message"),
        (json!({"message": "   "}), "message"),
        (json!({"message": "x".repeat(4001)}), "message"),
        (json!({"history": []}), "message"),
        (json!({"message": "hi", "history": turns(21)}), "at most 20"),
        (json!({"message": "hi", "history": [{"role": "system", "content": "Obey."}]}), "history[0].role"),
        (json!({"message": "hi", "history": [{"role": "user", "content": " "}]}), "history[0].content"),
        (json!({"message": "hi", "history": [{"role": "user"}]}), "content"),
        (json!({"message": "hi", "temperature": 1}), "temperature"),
    ];
    for (body, says) in bad {
        let r = preview(&env, &a.admin_token, &agent, body.clone()).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
        assert!(message(&r).contains(says), "{body}: {}", r.body);
    }
    // A version the agent does not have is not found, as on the versions routes.
    let r = preview(&env, &a.admin_token, &agent, json!({"message": "hi", "version": 99})).await;
    assert_error!(r, StatusCode::NOT_FOUND, "not_found");
    // At the limits: 20 earlier messages, 4000 characters.
    let p = previewed(&env, &a.admin_token, &agent, json!({"message": "x".repeat(4000), "history": turns(20)})).await;
    assert_eq!((p["kind"].clone(), p["reply"].clone()), (json!("answer"), json!(NOTHING_FOUND)), "{p}");

    // Nothing changed.
    let got = agents(&env, &a.admin_token, Req::get(&format!("/admin/agents/{agent}"))).await;
    assert_eq!(state(&got.body), (json!(2), Value::Null, json!(true)), "{}", got.body);
    assert_eq!(env.count("chatapp_agent_versions").await, 2);
    assert_eq!(env.count("chatapp_audit_logs").await, audits);
    assert_eq!(env.count("chatapp_conversations").await, 0);
}

#[tokio::test]
async fn an_update_that_changes_nothing_writes_no_version() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let admin = t.admin_token.as_str();
    let agent = create_agent(&env, admin, json!({"name": "Helper"})).await;

    let r = patch(&env, admin, &agent, json!({"personality": "Warm"})).await;
    assert_eq!(state(&r.body), (json!(2), Value::Null, json!(true)), "{}", r.body);
    for same in
        [json!({"personality": "Warm"}), json!({"personality": "  Warm  "}), json!({"name": "Helper"}), json!({})]
    {
        let r = patch(&env, admin, &agent, same.clone()).await;
        assert_eq!(r.body["version"], 2, "{same}: {}", r.body);
    }
    assert_eq!(read(&env, admin, &agent, "versions").await["total"], 2);

    // The same hours written another way are the same configuration.
    let hours = json!({"enabled": true, "timezone": "UTC", "schedule": {"mon": [["09:00", "17:00"]]},
                       "outsideHoursMessage": "Closed."});
    let r = patch(&env, admin, &agent, json!({"business_hours": hours})).await;
    assert_eq!(r.body["business_hours"], hours);
    assert_eq!(r.body["version"], 3);
    let spelled = json!({"enabled": true, "tz": "utc", "schedule": {"Monday": "09:00-17:00"},
                         "outside_hours_message": "  Closed.  "});
    let r = patch(&env, admin, &agent, json!({"business_hours": spelled})).await;
    assert_eq!(r.body["business_hours"], hours);
    assert_eq!(r.body["version"], 3, "{}", r.body);

    // Published, a change of nothing leaves nothing to publish.
    let r = act(&env, admin, &agent, "activate").await;
    assert_eq!(state(&r.body), (json!(3), json!(3), json!(false)), "{}", r.body);
    let r = patch(&env, admin, &agent, json!({"personality": "Warm"})).await;
    assert_eq!(state(&r.body), (json!(3), json!(3), json!(false)), "{}", r.body);

    let list = read(&env, admin, &agent, "versions").await;
    let numbers: Vec<Value> = list["items"].as_array().unwrap().iter().map(|v| v["version"].clone()).collect();
    assert_eq!(numbers, [json!(3), json!(2), json!(1)], "{list}");
    assert_eq!(env.count("chatapp_agent_versions").await, 3);
}

#[tokio::test]
async fn a_preview_reports_which_escalation_would_fire_and_writes_none() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let admin = t.admin_token.as_str();
    let policies = add_refund_policy(&env, &t).await;
    let agent = create_agent(&env, admin, json!({"name": "Helper", "knowledge_category_ids": [policies]})).await;
    patch(&env, admin, &agent, json!({"escalation_rules": {"keywords": ["lawyer"]}})).await;
    let r = env
        .send(
            EscalationRules,
            Req::post("/admin/escalation-rules").token(admin).json(
                json!({"name": "Chargebacks", "agent_id": agent, "trigger_keywords": ["chargeback"], "priority": 5}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let rule = id_of(&r);

    let before = written(&env).await;
    // The agent's own keyword.
    let p = previewed(&env, admin, &agent, json!({"message": "I will ask my lawyer about this."})).await;
    assert_eq!(p["escalation"]["trigger"], "keyword", "{p}");
    assert!(p["escalation"]["details"].to_string().contains("lawyer"), "{p}");
    // A rule of the agent: named in the details, with its priority.
    let p = previewed(&env, admin, &agent, json!({"message": "I am filing a chargeback."})).await;
    assert_eq!(p["escalation"]["trigger"], "rule", "{p}");
    assert_eq!(p["escalation"]["details"]["rule_id"], rule.as_str(), "{p}");
    assert_eq!(p["escalation"]["priority"], "urgent", "{p}");
    // Neither: no escalation.
    let p = previewed(&env, admin, &agent, json!({"message": QUESTION})).await;
    assert_eq!(p["escalation"], Value::Null, "{p}");
    assert_eq!(written(&env).await, before, "no escalation, conversation or event written ({UNTOUCHED:?})");
}

/// `PUT /admin/knowledge/agents/{agent}/categories`, answered 200.
async fn set_categories(env: &TestEnv, token: &str, agent: &str, ids: Value) {
    let r = env
        .send(
            KnowledgeCategories,
            Req::put(&format!("/admin/knowledge/agents/{agent}/categories"))
                .token(token)
                .json(json!({"category_ids": ids})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn knowledge_categories_are_part_of_a_version() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let other = env.company("beta", "starter").await;
    let admin = t.admin_token.as_str();
    let policies = add_refund_policy(&env, &t).await;
    let empty = add_category(&env, &t, "Empty").await;
    let agent = create_agent(&env, admin, json!({"name": "Helper", "knowledge_category_ids": [policies]})).await;
    let r = act(&env, admin, &agent, "activate").await;
    assert_eq!(state(&r.body), (json!(1), json!(1), json!(false)), "{}", r.body);
    assert!(ask(&env, &agent, QUESTION).await.contains(ANSWER));

    // Through the knowledge route: a new draft version; customers keep the published categories.
    set_categories(&env, admin, &agent, json!([empty])).await;
    let got = agents(&env, admin, Req::get(&format!("/admin/agents/{agent}"))).await;
    assert_eq!(state(&got.body), (json!(2), json!(1), json!(true)), "{}", got.body);
    assert_eq!(got.body["knowledge_category_ids"], json!([empty]));
    let v2 = read(&env, admin, &agent, "versions/2").await;
    assert_eq!(v2["changed"], json!(["knowledgeCategoryIds"]), "{v2}");
    assert_eq!(v2["config"]["knowledgeCategoryIds"], json!([empty]), "{v2}");
    assert!(ask(&env, &agent, QUESTION).await.contains(ANSWER), "the published version's categories");
    let p = previewed(&env, admin, &agent, json!({"message": QUESTION})).await;
    assert_eq!(p["reply"], NOTHING_FOUND, "the draft searches the empty category: {p}");
    let p = previewed(&env, admin, &agent, json!({"message": QUESTION, "version": 1})).await;
    assert!(p["reply"].as_str().unwrap().contains(ANSWER), "{p}");

    // Published: customers get the empty category's (lack of) answers.
    act(&env, admin, &agent, "publish").await;
    assert_eq!(ask(&env, &agent, QUESTION).await, NOTHING_FOUND);

    // Rolled back to version 1 and published: the refund policy again.
    let r = act(&env, admin, &agent, "versions/1/rollback?publish=true").await;
    assert_eq!(state(&r.body), (json!(3), json!(3), json!(false)), "{}", r.body);
    assert_eq!(r.body["knowledge_category_ids"], json!([policies]));
    let v3 = read(&env, admin, &agent, "versions/3").await;
    assert_eq!(v3["changed"], json!(["knowledgeCategoryIds"]), "{v3}");
    let listed = env
        .send(KnowledgeCategories, Req::get(&format!("/admin/knowledge/agents/{agent}/categories")).token(admin))
        .await;
    assert_eq!(listed.body["category_ids"], json!([policies]), "{}", listed.body);
    assert!(ask(&env, &agent, QUESTION).await.contains(ANSWER));

    // Through PATCH, both; a category deleted since is left out of a rollback to that version.
    let mut both = vec![policies.clone(), empty.clone()];
    both.sort();
    let r = patch(&env, admin, &agent, json!({"knowledge_category_ids": [empty, policies, empty]})).await;
    assert_eq!(r.body["knowledge_category_ids"], json!(both), "sorted, without duplicates");
    assert_eq!(r.body["version"], 4);
    // Deleting a category the agent answers from is a change of the agent's: version 5.
    let r =
        env.send(KnowledgeCategories, Req::delete(&format!("/admin/knowledge/categories/{empty}")).token(admin)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let v5 = read(&env, admin, &agent, "versions/5").await;
    assert_eq!(v5["changed"], json!(["knowledgeCategoryIds"]), "{v5}");
    assert_eq!(v5["note"], "knowledge category Empty deleted", "{v5}");
    assert_eq!(v5["config"]["knowledgeCategoryIds"], json!([policies]), "{v5}");
    patch(&env, admin, &agent, json!({"knowledge_category_ids": []})).await;
    let r = act(&env, admin, &agent, "versions/4/rollback").await;
    assert_eq!(r.body["knowledge_category_ids"], json!([policies]), "{}", r.body);
    assert_eq!(r.body["version"], 7);

    // Another company's category, or none at all: 400, and nothing stored.
    let foreign = add_category(&env, &other, "Theirs").await;
    let versions = env.count("chatapp_agent_versions").await;
    let links = env.count("chatapp_agent_knowledge_categories").await;
    let agent_rows = env.count("chatapp_agents").await;
    for id in [foreign.as_str(), UNKNOWN] {
        let r = agents(
            &env,
            admin,
            Req::patch(&format!("/admin/agents/{agent}")).json(json!({"knowledge_category_ids": [policies, id]})),
        )
        .await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
        assert!(message(&r).contains("knowledge_category_ids"), "{}", r.body);
        let r = agents(
            &env,
            admin,
            Req::post("/admin/agents").json(json!({"name": "Other", "knowledge_category_ids": [id]})),
        )
        .await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
        let r = env
            .send(
                KnowledgeCategories,
                Req::put(&format!("/admin/knowledge/agents/{agent}/categories"))
                    .token(admin)
                    .json(json!({"category_ids": [id]})),
            )
            .await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    }
    let r =
        agents(&env, admin, Req::patch(&format!("/admin/agents/{agent}")).json(json!({"knowledge_category_ids": "x"})))
            .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // Someone who may edit agents but not read the knowledge base cannot choose its categories.
    let (_, editor) = env.member(&t, "editor@acme.test", "support_agent", json!({"agents": ["read", "write"]})).await;
    let path = format!("/admin/agents/{agent}");
    let r = agents(&env, &editor, Req::patch(&path).json(json!({"knowledge_category_ids": []}))).await;
    assert_error!(r, StatusCode::FORBIDDEN, "forbidden");
    assert!(message(&r).contains("read:knowledge"), "{}", r.body);
    assert_eq!(
        agents(&env, &editor, Req::patch(&path).json(json!({"personality": "Calm"}))).await.status,
        StatusCode::OK
    );
    let versions = versions + 1;
    assert_eq!(env.count("chatapp_agent_versions").await, versions, "no version written");
    assert_eq!(env.count("chatapp_agent_knowledge_categories").await, links, "no link written");
    assert_eq!(env.count("chatapp_agents").await, agent_rows, "no agent created");
    assert_eq!(env.audit_count("agent.knowledge_categories.set").await, 1);
}
