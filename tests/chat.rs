//! The chat turn through the `widget` function on the embedded stack: sessions, grounded
//! answers with citations (offline extractive model), history, idempotent retries, plan
//! limits, escalation triggers that silence the AI, identity verification, origins, bad input.

use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{assert_error, Req, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const REFUNDS: &str = "# Refund policy\n\nCustomers can ask for a refund within 30 days of purchase. \
    Refunds go back to the original payment method and take five business days.\n\n\
    # Shipping\n\nWe ship parcels with DHL. International shipping takes ten days.";

struct Chat {
    agent: Uuid,
    file: Uuid,
}

/// An active agent with a widget and a knowledge category holding the refund policy.
async fn setup(env: &TestEnv, t: &Tenant, escalation_rules: Value, widget: Value) -> Chat {
    let owner = env.owner().await;
    let agent: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, system_prompt, escalation_rules)
             VALUES ($1, 'Ada', 'active', 'You help customers of Acme.', $2) RETURNING id",
            &[&t.company_id, &escalation_rules],
        )
        .await
        .unwrap()
        .get(0);
    let allowed = widget.get("allowed_domains").cloned().unwrap_or(json!([]));
    let secret = widget.get("identity_secret").and_then(Value::as_str).map(str::to_string);
    let require = widget.get("require_identity").and_then(Value::as_bool).unwrap_or(false);
    owner
        .execute(
            "INSERT INTO chatapp_widget_configs (company_id, agent_id, title, welcome_message, allowed_domains,
                                                 identity_secret, require_identity)
             VALUES ($1, $2, 'Acme help', 'Hi! Ask me anything.', $3, $4, $5)",
            &[&t.company_id, &agent, &allowed, &secret, &require],
        )
        .await
        .unwrap();
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::post("/admin/knowledge/categories").token(&t.admin_token).json(json!({"name": "Policies"})),
        )
        .await;
    let cat = r.body["id"].as_str().unwrap().to_string();
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::new("PUT", &format!("/admin/knowledge/agents/{agent}/categories"))
                .token(&t.admin_token)
                .json(json!({"category_ids": [cat]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::post("/admin/knowledge/files")
                .token(&t.admin_token)
                .json(json!({"filename": "policy.md", "category_id": cat, "size": REFUNDS.len()})),
        )
        .await;
    let file: Uuid = r.body["file"]["id"].as_str().unwrap().parse().unwrap();
    env.send(
        HttpFunction::KnowledgeFiles,
        Req::put(&format!("/admin/knowledge/files/{file}/content"))
            .token(&t.admin_token)
            .bytes(REFUNDS.as_bytes(), "text/markdown"),
    )
    .await;
    chatapp_functions::ingest_worker::drain(&env.deps).await.unwrap();
    Chat { agent, file }
}

async fn session(env: &TestEnv, agent: Uuid, body: Value) -> (Uuid, String) {
    let r = env.send(HttpFunction::Widget, Req::post(&format!("/widget/agents/{agent}/sessions")).json(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (r.body["conversation_id"].as_str().unwrap().parse().unwrap(), r.body["session_token"].as_str().unwrap().into())
}

async fn say(env: &TestEnv, conv: Uuid, token: &str, content: &str) -> Value {
    let r = env
        .send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/messages")).token(token).json(json!({"content": content})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

#[tokio::test]
async fn a_turn_answers_from_the_knowledge_base_with_citations_and_writes_everything() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let r = env.send(HttpFunction::Widget, Req::get(&format!("/widget/agents/{}/config", chat.agent))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["widget"]["title"], "Acme help");
    assert!(r.body["widget"].get("identity_secret").is_none());

    let (conv, token) = session(&env, chat.agent, json!({"name": "Sam", "email": "sam@example.org"})).await;
    assert!(token.len() >= 40, "at least 128 bits of randomness");
    let stored: String = env
        .owner()
        .await
        .query_one("SELECT session_token FROM chatapp_conversations WHERE id = $1", &[&conv])
        .await
        .unwrap()
        .get(0);
    assert_ne!(stored, token, "only the hash is stored");

    // The customer was last seen an hour ago; the turn brings that up to date.
    let seen = "chatapp_customers WHERE name = 'Sam' AND last_seen_at > now() - interval '10 seconds'";
    env.owner()
        .await
        .execute("UPDATE chatapp_customers SET last_seen_at = now() - interval '1 hour'", &[])
        .await
        .unwrap();
    let out = say(&env, conv, &token, "How long do refunds take?").await;
    let reply = &out["reply"];
    assert_eq!(reply["role"], "assistant");
    assert!(reply["content"].as_str().unwrap().contains("five business days"), "{reply}");
    assert_eq!(reply["metadata"]["extractive"], true);
    assert_eq!(out["citations"][0]["file_id"], chat.file.to_string(), "{out}");
    assert_eq!(out["citations"][0]["source"], "policy.md");
    assert!(out["citations"][0]["start_offset"].is_number());
    assert!(out["handoff"] == false && out["escalation"].is_null());

    let owner = env.owner().await;
    let row = owner
        .query_one(
            "SELECT message_count, ai_message_count, average_sentiment IS NOT NULL FROM chatapp_conversations WHERE id = $1",
            &[&conv],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, i32>(1), row.get::<_, bool>(2)), (2, 1, true));
    let usage = owner
        .query_one(
            "SELECT message_count, ai_response_count FROM chatapp_usage_records WHERE company_id = $1 AND agent_id = $2",
            &[&t.company_id, &chat.agent],
        )
        .await
        .unwrap();
    assert_eq!((usage.get::<_, i32>(0), usage.get::<_, i32>(1)), (1, 1));
    assert_eq!(env.count(seen).await, 1);

    // Seen within the last minute: the next turn leaves the row alone (no write for a timestamp
    // that minute-level presence does not need).
    owner.execute("UPDATE chatapp_customers SET last_seen_at = now() - interval '30 seconds'", &[]).await.unwrap();
    say(&env, conv, &token, "And how do you ship parcels?").await;
    assert_eq!(env.count(seen).await, 0);
    assert_eq!(env.count("chatapp_customers WHERE last_seen_at > now() - interval '1 minute'").await, 1);
    let h =
        env.send(HttpFunction::Widget, Req::get(&format!("/widget/conversations/{conv}/messages")).token(&token)).await;
    let roles: Vec<&str> = h.body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(h.body["messages"][0]["content"], "How long do refunds take?");

    // Streaming: server-sent events with the pieces, then the whole result.
    let r = env
        .send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/messages"))
                .token(&token)
                .header("accept", "text/event-stream")
                .json(json!({"content": "Do refunds go back to my card?"})),
        )
        .await;
    let body = r.body.as_str().unwrap();
    assert!(body.starts_with("event: delta\n"), "{body}");
    assert!(body.contains("event: done\n"), "{body}");

    // CSAT.
    let r = env
        .send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/end")).token(&token).json(json!({"rating": 5})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = env
        .send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/messages")).token(&token).json(json!({"content": "hi"})),
        )
        .await;
    assert_error!(r, StatusCode::CONFLICT, "conversation_closed");
}

#[tokio::test]
async fn a_retried_send_with_the_same_client_message_id_writes_nothing_new() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let (conv, token) = session(&env, chat.agent, json!({})).await;
    let send = || {
        env.send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/messages"))
                .token(&token)
                .json(json!({"content": "How long do refunds take?", "client_message_id": "m-1"})),
        )
    };
    let first = send().await;
    let second = send().await;
    assert_eq!(second.body["replayed"], true);
    assert_eq!(second.body["reply"]["id"], first.body["reply"]["id"]);
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}'")).await, 2);

    // A first attempt that stored the message and then died: a retry right away is refused
    // (it may still be running); once it cannot be, the retry answers the stored message.
    let owner = env.owner().await;
    owner
        .execute(
            "INSERT INTO chatapp_messages (conversation_id, company_id, role, content, client_message_id)
             SELECT id, company_id, 'user', 'How long do refunds take?', 'm-2' FROM chatapp_conversations WHERE id = $1",
            &[&conv],
        )
        .await
        .unwrap();
    let retry = || {
        env.send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/messages"))
                .token(&token)
                .json(json!({"content": "How long do refunds take?", "client_message_id": "m-2"})),
        )
    };
    assert_error!(retry().await, StatusCode::CONFLICT, "duplicate_message");
    owner
        .execute(
            "UPDATE chatapp_messages SET created_at = now() - interval '5 minutes' WHERE client_message_id = 'm-2'",
            &[],
        )
        .await
        .unwrap();
    let resumed = retry().await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.body);
    assert_eq!(resumed.body["replayed"], false);
    assert!(resumed.body["reply"]["content"].as_str().unwrap().contains("five business days"));
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}' AND role = 'user'")).await, 2);
    assert_eq!(retry().await.body["replayed"], true, "answered now: a further retry replays");
}

#[tokio::test]
async fn plan_limits_refuse_before_anything_is_stored() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let (conv, token) = session(&env, chat.agent, json!({})).await;
    let owner = env.owner().await;
    owner
        .execute(
            "UPDATE chatapp_company_subscriptions SET custom_limits = '{\"messagesPerMonth\": 1}' WHERE company_id = $1",
            &[&t.company_id],
        )
        .await
        .unwrap();
    say(&env, conv, &token, "How long do refunds take?").await;
    let r = env
        .send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/messages")).token(&token).json(json!({"content": "more"})),
        )
        .await;
    assert_error!(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}'")).await, 2);

    owner
        .execute(
            "UPDATE chatapp_company_subscriptions SET custom_limits = '{}', status = 'expired' WHERE company_id = $1",
            &[&t.company_id],
        )
        .await
        .unwrap();
    let r = env
        .send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/messages"))
                .token(&token)
                .json(json!({"content": "hello"})),
        )
        .await;
    assert_error!(r, StatusCode::PAYMENT_REQUIRED, "subscription_inactive");
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}'")).await, 2);
}

/// Each trigger: one escalation row, the conversation waits for a human, the jobs are queued,
/// and the next message gets no AI answer.
#[tokio::test]
async fn each_escalation_trigger_hands_over_once_and_silences_the_ai() {
    let cases = [
        (json!({"keywords": ["lawyer"]}), vec!["I will call my lawyer about this refund"], "keyword"),
        (json!({}), vec!["I want to talk to a human please"], "explicit_request"),
        (json!({"sentimentThreshold": -0.5}), vec!["This is the worst, totally useless service!!!"], "sentiment"),
        (json!({"confidenceThreshold": 0.99}), vec!["What is the airspeed of a swallow?"], "low_confidence"),
        (json!({"autoEscalateAfter": 2}), vec!["How long do refunds take?", "And shipping?"], "turn_limit"),
    ];
    for (rules, messages, trigger) in cases {
        let env = TestEnv::new().await;
        let t = env.company("acme", "starter").await;
        let chat = setup(&env, &t, rules, json!({})).await;
        let (conv, token) = session(&env, chat.agent, json!({})).await;
        let mut last = Value::Null;
        for m in &messages {
            last = say(&env, conv, &token, m).await;
        }
        assert_eq!(last["handoff"], true, "{trigger}: {last}");
        assert_eq!(last["escalation"]["trigger"], trigger, "{last}");
        assert_eq!(env.count(&format!("chatapp_escalations WHERE conversation_id = '{conv}'")).await, 1);
        assert_eq!(
            env.count(&format!("chatapp_conversations WHERE id = '{conv}' AND status = 'waiting_human'")).await,
            1
        );
        assert_eq!(env.count("chatapp_jobs WHERE queue = 'escalation'").await, 1);
        assert_eq!(env.count("chatapp_jobs WHERE queue = 'outbound'").await, 2);
        // The AI no longer answers; nothing escalates twice.
        let after = say(&env, conv, &token, "Hello? I need a lawyer and a human").await;
        assert!(after["reply"].is_null(), "{trigger}: {after}");
        assert_eq!(after["handoff"], true);
        assert_eq!(env.count(&format!("chatapp_escalations WHERE conversation_id = '{conv}'")).await, 1);
    }
}

/// Sends that arrive at once in one conversation run one after another (each turn locks the
/// conversation and reads behind the lock): the turn limit hands over exactly once, the turn
/// after it stays silent, and the counters match the rows.
#[tokio::test]
async fn concurrent_sends_in_one_conversation_hand_over_once_and_keep_counters_exact() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({"autoEscalateAfter": 3}), json!({})).await;
    let (conv, token) = session(&env, chat.agent, json!({})).await;
    say(&env, conv, &token, "How long do refunds take?").await;
    let (a, b, c) = tokio::join!(
        say(&env, conv, &token, "And shipping?"),
        say(&env, conv, &token, "Where do refunds go?"),
        say(&env, conv, &token, "Do you ship with DHL?"),
    );
    let turns = [&a, &b, &c];
    assert_eq!(turns.iter().filter(|r| !r["escalation"].is_null()).count(), 1, "{a}\n{b}\n{c}");
    assert_eq!(
        turns.iter().filter(|r| r["reply"].is_null()).count(),
        1,
        "one turn came after the handoff: {a}\n{b}\n{c}"
    );
    assert_eq!(env.count(&format!("chatapp_escalations WHERE conversation_id = '{conv}'")).await, 1);
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'escalation'").await, 1);
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}' AND role = 'user'")).await, 4);
    let stored = env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}'")).await;
    assert_eq!(stored, 7, "four customer messages, two answers, one handoff message");
    assert_eq!(
        env.count(&format!(
            "chatapp_conversations WHERE id = '{conv}' AND message_count = {stored} AND ai_message_count = 3"
        ))
        .await,
        1
    );
}

async fn insert_user(
    tx: &chatapp::db::TenantTx,
    conversation: Uuid,
    content: &str,
) -> Result<chatapp::repo::chat::Message, chatapp::db::DbError> {
    chatapp::repo::chat::insert_message(tx, conversation, "user", content, None, &json!({}), None).await
}

/// Statements committed in the same round trip as their COMMIT: when one of them fails, the
/// server turns the COMMIT into a rollback and none of them is stored; when all succeed, all are.
#[tokio::test]
async fn a_pipelined_commit_stores_all_or_nothing() {
    use chatapp::repo::chat as repo;
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let (conv, _) = session(&env, chat.agent, json!({})).await;
    let ctx = chatapp::auth::worker_ctx(t.company_id);

    let tx = env.deps.db.begin(&ctx).await.unwrap();
    repo::prepare_turn_start(&tx).await.unwrap();
    let failed = tx
        .commit_alongside(async {
            // The second insert names no conversation (foreign key violation).
            tokio::try_join!(
                biased;
                insert_user(&tx, conv, "first"),
                insert_user(&tx, Uuid::new_v4(), "second"),
            )
        })
        .await;
    assert!(failed.is_err());
    drop(tx);
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}'")).await, 0);

    let tx = env.deps.db.begin(&ctx).await.unwrap();
    repo::prepare_turn_start(&tx).await.unwrap();
    tx.commit_alongside(async {
        tokio::try_join!(
            biased;
            insert_user(&tx, conv, "first"),
            insert_user(&tx, conv, "second"),
        )
    })
    .await
    .unwrap();
    drop(tx);
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}'")).await, 2);
}

#[tokio::test]
async fn a_resolved_session_is_reused_for_the_cache_time_and_forgotten_when_its_conversation_ends() {
    let env = TestEnv::with(&[("WIDGET_SESSION_CACHE_SECS", "2")]).await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let (kept, kept_token) = session(&env, chat.agent, json!({})).await;
    let (ended, ended_token) = session(&env, chat.agent, json!({})).await;
    let history = |conv: Uuid, token: &str| Req::get(&format!("/widget/conversations/{conv}/messages")).token(token);
    for (conv, token) in [(kept, &kept_token), (ended, &ended_token)] {
        assert_eq!(env.send(HttpFunction::Widget, history(conv, token)).await.status, StatusCode::OK);
    }
    let r = env
        .send(HttpFunction::Widget, Req::post(&format!("/widget/conversations/{ended}/end")).token(&ended_token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    env.owner()
        .await
        .execute("UPDATE chatapp_companies SET status = 'suspended' WHERE id = $1", &[&t.company_id])
        .await
        .unwrap();

    // Within the cache time the session resolved before the suspension still opens its
    // conversation; the ended conversation's session was forgotten, so it is looked up again.
    assert_eq!(env.send(HttpFunction::Widget, history(kept, &kept_token)).await.status, StatusCode::OK);
    let r = env.send(HttpFunction::Widget, history(ended, &ended_token)).await;
    assert_error!(r, StatusCode::UNAUTHORIZED, "invalid_session");
    // After it, every session is looked up again.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = env.send(HttpFunction::Widget, history(kept, &kept_token)).await;
    assert_error!(r, StatusCode::UNAUTHORIZED, "invalid_session");
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat =
        setup(&env, &t, json!({}), json!({"allowed_domains": ["acme.test"], "identity_secret": "s3cret-widget-key"}))
            .await;
    let (conv, token) = session(&env, chat.agent, json!({})).await;
    let (other_conv, other_token) = session(&env, chat.agent, json!({})).await;
    let path = format!("/widget/conversations/{conv}/messages");
    let cases = [
        (Req::post(&path).token(&token).json(json!({"content": "   "})), StatusCode::BAD_REQUEST, "validation_failed"),
        (
            Req::post(&path).token(&token).json(json!({"content": "x".repeat(4001)})),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (Req::post(&path).json(json!({"content": "hi"})), StatusCode::UNAUTHORIZED, "invalid_session"),
        (
            Req::post(&path).token("cs_wrong-token-wrong-token-wrong-token").json(json!({"content": "hi"})),
            StatusCode::UNAUTHORIZED,
            "invalid_session",
        ),
        (
            Req::post(&path).token(&other_token).json(json!({"content": "hi"})),
            StatusCode::UNAUTHORIZED,
            "invalid_session",
        ),
        (
            Req::post(&path).token(&token).header("origin", "https://evil.test").json(json!({"content": "hi"})),
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
        ),
        (
            Req::post(&path).token(&token).json(json!({"content": "hi", "extra": 1})),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
    ];
    for (req, status, code) in cases {
        let r = env.send(HttpFunction::Widget, req).await;
        assert_error!(r, status, code);
    }
    assert_eq!(env.count("chatapp_messages").await, 0);
    let _ = other_conv;

    // Sessions: a bad identity hash, a disallowed origin, an unknown agent.
    let sessions = format!("/widget/agents/{}/sessions", chat.agent);
    let r = env
        .send(
            HttpFunction::Widget,
            Req::post(&sessions).json(json!({"identifier": "user-42", "identity_hash": "00".repeat(32)})),
        )
        .await;
    assert_error!(r, StatusCode::UNAUTHORIZED, "identity_invalid");
    let good = chatapp::auth::tokens::hmac_sha256_hex(b"s3cret-widget-key", "user-42");
    let r = env
        .send(HttpFunction::Widget, Req::post(&sessions).json(json!({"identifier": "user-42", "identity_hash": good})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["verified"], true);
    let r = env
        .send(HttpFunction::Widget, Req::post(&sessions).header("origin", "https://evil.test").json(json!({})))
        .await;
    assert_error!(r, StatusCode::FORBIDDEN, "origin_not_allowed");
    assert!(r.headers_cors().is_none(), "no CORS grant for a refused origin");
    let r = env
        .send(
            HttpFunction::Widget,
            Req::get(&format!("/widget/agents/{}/config", chat.agent)).header("origin", "https://help.acme.test"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers_cors().as_deref(), Some("https://help.acme.test"));
    let r = env
        .send(HttpFunction::Widget, Req::post(&format!("/widget/agents/{}/sessions", Uuid::new_v4())).json(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // An agent of another company is just as unknown to this company's session.
    let other = env.company("other", "starter").await;
    let other_chat = setup(&env, &other, json!({}), json!({})).await;
    let r =
        env.send(HttpFunction::Widget, Req::get(&format!("/widget/conversations/{conv}/messages")).token(&token)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = env
        .send(
            HttpFunction::Widget,
            Req::get(&format!("/widget/agents/{}/config", other_chat.agent)).header("origin", "https://help.acme.test"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "other company's widget has no origin list");
    assert_eq!(env.count("chatapp_conversations").await, 3, "two sessions + the verified one");

    // Identity required: a session without one is refused.
    env.owner().await.execute("UPDATE chatapp_widget_configs SET require_identity = true", &[]).await.unwrap();
    let r = env.send(HttpFunction::Widget, Req::post(&sessions).json(json!({}))).await;
    assert_error!(r, StatusCode::UNAUTHORIZED, "identity_required");
}

#[tokio::test]
async fn a_provider_failure_sends_the_fallback_and_keeps_the_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).mount(&server).await;
    let base = format!("{}/v1", server.uri());
    let env =
        TestEnv::with(&[("CHAT_PROVIDER", "openai"), ("CHAT_BASE_URL", &base), ("CHAT_MODEL", "gpt-4o-mini")]).await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let (conv, token) = session(&env, chat.agent, json!({})).await;
    let out = say(&env, conv, &token, "How long do refunds take?").await;
    assert_eq!(out["reply"]["metadata"]["kind"], "fallback", "{out}");
    assert!(out["reply"]["content"].as_str().unwrap().contains("saved"));
    assert_eq!(out["message"]["content"], "How long do refunds take?");
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}' AND role = 'user'")).await, 1);
    assert!(server.received_requests().await.unwrap().len() >= 2, "retried before giving up");
}

#[tokio::test]
async fn the_custom_channel_runs_the_same_turn_with_an_api_key() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let other = env.company("other", "starter").await;
    let other_chat = setup(&env, &other, json!({}), json!({})).await;
    let key = |scopes: Value| {
        env.send(
            HttpFunction::ApiKeys,
            Req::post("/admin/api-keys").token(&t.admin_token).json(json!({"name": "backend", "scopes": scopes})),
        )
    };
    let writer = key(json!(["write:messages", "read:messages"])).await.body["key"].as_str().unwrap().to_string();
    let reader = key(json!(["read:analytics"])).await.body["key"].as_str().unwrap().to_string();

    let start = |agent: Uuid, token: String| {
        env.send(
            HttpFunction::ChatApi,
            Req::post(&format!("/api/v1/agents/{agent}/conversations"))
                .token(&token)
                .json(json!({"customer": {"external_id": "crm-7", "name": "Kim"}})),
        )
    };
    assert_error!(start(chat.agent, reader.clone()).await, StatusCode::FORBIDDEN, "forbidden");
    assert_error!(start(chat.agent, t.admin_token.clone()).await, StatusCode::FORBIDDEN, "api_key_required");
    assert_eq!(start(other_chat.agent, writer.clone()).await.status, StatusCode::NOT_FOUND, "another company's agent");
    let r = start(chat.agent, writer.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let conv = r.body["conversation_id"].as_str().unwrap().to_string();
    assert_eq!(env.count("chatapp_conversations WHERE channel = 'custom'").await, 1);

    let r = env
        .send(
            HttpFunction::ChatApi,
            Req::post(&format!("/api/v1/conversations/{conv}/messages"))
                .token(&writer)
                .json(json!({"content": "How long do refunds take?", "client_message_id": "crm-msg-1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["citations"][0]["file_id"], chat.file.to_string());
    let r = env
        .send(HttpFunction::ChatApi, Req::get(&format!("/api/v1/conversations/{conv}/messages")).token(&writer))
        .await;
    assert_eq!(r.body["messages"].as_array().unwrap().len(), 2);
    // The other company's key cannot read or write this conversation.
    let other_key = env
        .send(
            HttpFunction::ApiKeys,
            Req::post("/admin/api-keys")
                .token(&other.admin_token)
                .json(json!({"name": "theirs", "scopes": ["write:messages", "read:messages"]})),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_string();
    let r = env
        .send(HttpFunction::ChatApi, Req::get(&format!("/api/v1/conversations/{conv}/messages")).token(&other_key))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = env
        .send(
            HttpFunction::ChatApi,
            Req::post(&format!("/api/v1/conversations/{conv}/messages"))
                .token(&other_key)
                .json(json!({"content": "hello"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(env.count("chatapp_messages").await, 2);
}

#[tokio::test]
async fn an_api_key_cannot_reach_widget_conversations() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let (conv, _) = session(&env, chat.agent, json!({})).await;
    let key = env
        .send(
            HttpFunction::ApiKeys,
            Req::post("/admin/api-keys")
                .token(&t.admin_token)
                .json(json!({"name": "backend", "scopes": ["write:messages", "read:messages"]})),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_string();
    let r =
        env.send(HttpFunction::ChatApi, Req::get(&format!("/api/v1/conversations/{conv}/messages")).token(&key)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = env
        .send(
            HttpFunction::ChatApi,
            Req::post(&format!("/api/v1/conversations/{conv}/messages")).token(&key).json(json!({"content": "hi"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(env.count("chatapp_messages").await, 0);
}

#[tokio::test]
async fn a_long_conversation_keeps_a_running_summary_in_the_prompt() {
    let server = MockServer::start().await;
    let stream = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Noted, thanks.\"}}]}\n\n\
                  data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
                  data: [DONE]\n\n";
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).insert_header("content-type", "text/event-stream").set_body_string(stream),
        )
        .mount(&server)
        .await;
    let base = format!("{}/v1", server.uri());
    let env =
        TestEnv::with(&[("CHAT_PROVIDER", "openai"), ("CHAT_BASE_URL", &base), ("CHAT_MODEL", "gpt-4o-mini")]).await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let (conv, token) = session(&env, chat.agent, json!({})).await;
    say(&env, conv, &token, "My parcel 4711 never arrived at my flat in Leeds. Can you check?").await;
    for i in 0..9 {
        say(&env, conv, &token, &format!("Follow-up question number {i} about the delivery.")).await;
    }
    // 20 messages; the next turn's window holds the last 11 and its own, so the 9 before are
    // summarised: 5 after the 8th turn, 4 more after the 10th.
    let row = env
        .owner()
        .await
        .query_one("SELECT summary, summarized_messages FROM chatapp_conversations WHERE id = $1", &[&conv])
        .await
        .unwrap();
    let (summary, covered): (String, i32) = (row.get(0), row.get(1));
    assert_eq!(covered, 9);
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 9, "{summary}");
    assert_eq!(lines[0], "Customer: My parcel 4711 never arrived at my flat in Leeds.");
    assert_eq!(lines[1], "Assistant: Noted, thanks.");
    assert_eq!(lines[7], "Assistant: Noted, thanks.");
    assert_eq!(lines[8], "Customer: Follow-up question number 3 about the delivery.");

    // The next turn's prompt carries the summary; the opening message itself has left the window.
    say(&env, conv, &token, "Any news?").await;
    let requests = server.received_requests().await.unwrap();
    let last: Value = serde_json::from_slice(&requests.last().unwrap().body).unwrap();
    let messages = last["messages"].as_array().unwrap();
    let system = messages[0]["content"].as_str().unwrap();
    assert!(system.contains("Summary of the conversation so far"), "{system}");
    assert!(system.contains("parcel 4711"), "{system}");
    assert!(messages[1..].iter().all(|m| !m["content"].as_str().unwrap().contains("4711")), "{last}");
    // Nothing falls between the summary and the window.
    assert!(system.contains("Follow-up question number 3"), "{system}");
    assert!(messages[1..].iter().any(|m| m["content"] == "Follow-up question number 4 about the delivery."), "{last}");
    assert_eq!(messages.last().unwrap()["content"], "Any news?");
    assert_eq!(messages.len(), 1 + 12, "system prompt plus the window");
}

#[tokio::test]
async fn a_summary_that_fell_behind_catches_up_from_the_stored_messages() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let (conv, token) = session(&env, chat.agent, json!({})).await;
    // 30 messages the summary never saw (an exchange with a support agent, say): more than a
    // turn reads, so the summary's step needs them read back.
    let owner = env.owner().await;
    owner
        .execute(
            "INSERT INTO chatapp_messages (conversation_id, company_id, role, content, created_at)
             SELECT $1, $2, (CASE WHEN g % 2 = 1 THEN 'user' ELSE 'human_agent' END)::message_role,
                    'Earlier message ' || g, now() - interval '1 hour' + g * interval '1 second'
             FROM generate_series(1, 30) g",
            &[&conv, &t.company_id],
        )
        .await
        .unwrap();
    say(&env, conv, &token, "Any news?").await;
    // 32 messages now; the next turn's window holds the last 11, so the 21 before are summarised.
    let row = owner
        .query_one("SELECT summary, summarized_messages FROM chatapp_conversations WHERE id = $1", &[&conv])
        .await
        .unwrap();
    let (summary, covered): (String, i32) = (row.get(0), row.get(1));
    assert_eq!(covered, 21);
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 21, "{summary}");
    assert_eq!(lines[0], "Customer: Earlier message 1");
    assert_eq!(lines[1], "Support agent: Earlier message 2");
    assert_eq!(lines[20], "Customer: Earlier message 21");
}

#[tokio::test]
async fn a_turn_cites_global_knowledge_beside_the_company_knowledge() {
    use chatapp::knowledge::lexical::LexicalEncoder;
    use chatapp::knowledge::vector::{chunk_point_id, ChunkPayload, IndexedChunk};
    use chatapp::tenant::CompanyId;

    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    // A platform-wide article (no company): its row and its vector, as global ingestion writes them.
    const STATUS: &str = "Service status: outages and maintenance windows are announced on status.example.com.";
    let owner = env.owner().await;
    let article: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_knowledge_articles (company_id, title, content, status, published_at)
             VALUES (NULL, 'Platform status', $1, 'published', now()) RETURNING id",
            &[&STATUS],
        )
        .await
        .unwrap()
        .get(0);
    let chunk = chunk_point_id(article, 0);
    owner
        .execute(
            "INSERT INTO chatapp_knowledge_chunks (id, article_id, company_id, chunk_index, content, start_offset,
                                                   end_offset, qdrant_id)
             VALUES ($1, $2, NULL, 0, $3, 0, length($3), $4)",
            &[&chunk, &article, &STATUS, &chunk.to_string()],
        )
        .await
        .unwrap();
    let dense = env.deps.embedder.embed(&[STATUS.to_string()]).await.unwrap().remove(0);
    let point = IndexedChunk {
        id: chunk,
        dense,
        sparse: LexicalEncoder::default().document(STATUS),
        payload: ChunkPayload {
            company_id: Uuid::nil(),
            file_id: None,
            article_id: Some(article),
            category_id: None,
            chunk_index: 0,
            text: STATUS.into(),
        },
    };
    env.deps.vectors.upsert(CompanyId::GLOBAL, vec![point]).await.unwrap();

    let (conv, token) = session(&env, chat.agent, json!({})).await;
    let out = say(&env, conv, &token, "Where are outages and maintenance windows announced?").await;
    let citations = out["citations"].as_array().unwrap();
    assert_eq!(citations[0]["article_id"], json!(article), "{out}");
    assert_eq!(citations[0]["source"], "Platform status");
    assert!(out["reply"]["content"].as_str().unwrap().contains("status.example.com"), "{out}");
    // The company's own knowledge still answers its own questions.
    let out = say(&env, conv, &token, "How long do refunds take?").await;
    assert_eq!(out["citations"][0]["file_id"], json!(chat.file), "{out}");
}
