//! Who reaches a conversation: the widget session cache, and API keys on the custom channel.

use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{assert_error, Req, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{session, setup};

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
