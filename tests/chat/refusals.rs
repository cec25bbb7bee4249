//! What a turn refuses before storing anything: plan limits and bad input (sessions,
//! identity, origins, message content).

use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{assert_error, Req, TestEnv};
use http::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::{say, session, setup};

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
