//! Slack Events API: the signed `url_verification` handshake, `X-Slack-Signature` over
//! `v0:<timestamp>:<raw body>` and its forgeries, the recorded message answered once in its thread
//! (Slack's retries store nothing), bot and own messages ignored, `ratelimited` then success, and
//! a support agent's reply in mrkdwn.

use chatapp_tests::TestEnv;
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const BOT_TOKEN: &str = "xoxb-17653672481-19874698323-acmetesttoken";
/// The bot's own user id, given with the credentials.
const BOT_USER: &str = "UACMEBOT1";
/// Where the recorded message (`slack-message.json`) was posted: its channel and its `ts`.
const CHANNEL: &str = "C123ABC456";
const MESSAGE_TS: &str = "1355517523.000005";
const CHALLENGE: &str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P";
const POST_MESSAGE: &str = "/api/chat.postMessage";

fn now() -> String {
    chrono::Utc::now().timestamp().to_string()
}

/// `v0=<hex HMAC-SHA256(secret, "v0:" + ts + ":" + body)>`, as Slack signs.
fn signature(secret: &str, ts: &str, body: &[u8]) -> String {
    let parts: [&[u8]; 4] = ["v0:".as_bytes(), ts.as_bytes(), ":".as_bytes(), body];
    format!("v0={}", chatapp::channels::hmac_sha256_hex(secret.as_bytes(), &parts))
}

/// A delivery of `body` stamped `ts` and signed with `secret`.
fn signed_with(config: Uuid, body: &[u8], ts: &str, secret: &str) -> Req {
    webhook("slack", config, body)
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", &signature(secret, ts, body))
}

/// A delivery of `body` signed now with the channel's secret.
fn signed(config: Uuid, body: &[u8]) -> Req {
    signed_with(config, body, &now(), SIGNING_SECRET)
}

/// The recorded message under another `event_id`, its `event` changed by `f`.
fn event_with(event_id: &str, f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture("slack-message.json")).unwrap();
    v["event_id"] = json!(event_id);
    f(&mut v["event"]);
    serde_json::to_vec(&v).unwrap()
}

async fn slack_channel(env: &TestEnv, slug: &str) -> (chatapp_tests::Tenant, Uuid) {
    let (t, agent) = company_with_agent(env, slug).await;
    let (id, _) = create_channel(
        env,
        &t,
        agent,
        "slack",
        json!({"bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET, "bot_user_id": BOT_USER}),
    )
    .await;
    (t, id)
}

/// chat.postMessage accepting only the channel's bot token (a call without it gets a 404 and
/// the delivery would not be `sent`).
async fn slack_accepts(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(POST_MESSAGE))
        .and(header("authorization", format!("Bearer {BOT_TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "channel": CHANNEL, "ts": "1.2"})))
        .mount(server)
        .await;
}

#[tokio::test]
async fn url_verification_is_answered_only_when_signed() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (t, id) = slack_channel(&env, "sl-hs").await;
    let body = fixture("slack-url-verification.json");
    // Verification runs before parsing: even the handshake must be signed.
    let ok = env.send(function("slack"), signed(id, &body)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body, json!(CHALLENGE), "the raw challenge, as text");
    let content_type = ok.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let unsigned = env.send(function("slack"), webhook("slack", id, &body)).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED, "{}", unsigned.body);
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
}

#[tokio::test]
async fn a_slack_message_is_answered_once_in_its_thread_even_when_slack_retries() {
    let server = MockServer::start().await;
    slack_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id) = slack_channel(&env, "sl-flow").await;
    let body = fixture("slack-message.json");

    let r = env.send(function("slack"), signed(id, &body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["stored"], 1);
    // Slack retries an event it thinks timed out: same bytes, freshly signed, retry headers.
    let retry = || signed(id, &body).header("x-slack-retry-num", "1").header("x-slack-retry-reason", "http_timeout");
    let again = env.send(function("slack"), retry()).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!((again.body["stored"].clone(), again.body["duplicates"].clone()), (json!(0), json!(1)));

    assert_eq!(run_workers(&env).await, (1, 1));
    // A retry arriving after the answer: still nothing new.
    let late = env.send(function("slack"), retry()).await;
    assert_eq!(late.body["stored"], 0, "{}", late.body);
    assert_eq!(run_workers(&env).await, (0, 0));

    let sent = received(&server, POST_MESSAGE).await;
    assert_eq!(sent.len(), 1, "one reply, sent once: {sent:?}");
    assert_eq!(sent[0]["channel"], CHANNEL);
    // A top-level channel message is answered in a thread rooted at it.
    assert_eq!(sent[0]["thread_ts"], MESSAGE_TS);
    assert!(!sent[0]["text"].as_str().unwrap_or("").is_empty(), "{sent:?}");
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 1);
    assert_eq!(deliveries(&env, t.company_id).await, vec![("sent".to_string(), 1, None)]);
    let conv = env
        .owner()
        .await
        .query_one(
            "SELECT channel::text, external_id FROM chatapp_conversations WHERE company_id = $1",
            &[&t.company_id],
        )
        .await
        .unwrap();
    assert_eq!(conv.get::<_, String>(0), "slack");
    assert_eq!(conv.get::<_, Option<String>>(1), Some(format!("{CHANNEL}:{MESSAGE_TS}")));
}

#[tokio::test]
async fn forged_slack_requests_are_rejected_and_store_nothing() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (t, id) = slack_channel(&env, "sl-forge").await;
    let (b, agent_b) = company_with_agent(&env, "sl-forge-b").await;
    let theirs = json!({"bot_token": "xoxb-b", "signing_secret": "company-b-signing-secret", "bot_user_id": "UB"});
    create_channel(&env, &b, agent_b, "slack", theirs).await;
    let body = fixture("slack-message.json");
    let ts = now();
    let good = signature(SIGNING_SECRET, &ts, &body);

    let mut flipped = body.clone();
    let at = flipped.iter().position(|&b| b == b'L').unwrap();
    flipped[at] = b'J';
    let reserialised = serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    // Signed correctly, but one second past the 300-second replay window.
    let stale = (chrono::Utc::now().timestamp() - 301).to_string();
    let with_good =
        |b: &[u8]| webhook("slack", id, b).header("x-slack-request-timestamp", &ts).header("x-slack-signature", &good);
    let cases: Vec<(&str, Req, StatusCode)> = vec![
        ("stale timestamp", signed_with(id, &body, &stale, SIGNING_SECRET), StatusCode::FORBIDDEN),
        ("flipped byte", with_good(&flipped), StatusCode::FORBIDDEN),
        ("wrong secret", signed_with(id, &body, &ts, "another-signing-secret"), StatusCode::FORBIDDEN),
        (
            "missing signature",
            webhook("slack", id, &body).header("x-slack-request-timestamp", &ts),
            StatusCode::UNAUTHORIZED,
        ),
        ("re-serialised body", with_good(&reserialised), StatusCode::FORBIDDEN),
        // Another company's Slack app signs with its own secret.
        ("another company's secret", signed_with(id, &body, &ts, "company-b-signing-secret"), StatusCode::FORBIDDEN),
    ];
    for (name, req, want) in cases {
        let r = env.send(function("slack"), req).await;
        assert_eq!(r.status, want, "{name}: {}", r.body);
    }
    for company in [t.company_id, b.company_id] {
        assert_eq!(count_for(&env, "chatapp_channel_inbound", company).await, 0);
        assert_eq!(count_for(&env, "chatapp_conversations", company).await, 0);
    }
    assert_eq!(env.count("chatapp_outbox").await, 0);
}

#[tokio::test]
async fn bot_messages_and_the_bots_own_messages_are_ignored() {
    let server = MockServer::start().await;
    slack_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id) = slack_channel(&env, "sl-bots").await;
    // Another app's bot (marked by bot_id), and our own bot user posting: neither is a customer.
    let from_a_bot = event_with("Ev0BOT0001", |e| e["bot_id"] = json!("B0OTHERBOT"));
    let from_ourselves = event_with("Ev0OWN0001", |e| e["user"] = json!(BOT_USER));
    for (name, body) in [("bot_id", from_a_bot), ("own user", from_ourselves)] {
        let r = env.send(function("slack"), signed(id, &body)).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.body);
        assert_eq!((r.body["stored"].clone(), r.body["ignored"].clone()), (json!(0), json!(1)), "{name}");
    }
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
    assert_eq!(run_workers(&env).await, (0, 0));
    assert!(received(&server, POST_MESSAGE).await.is_empty(), "nothing answered");
}

#[tokio::test]
async fn a_ratelimited_post_is_retried_after_retry_after() {
    let server = MockServer::start().await;
    // Slack's Web API answers a rate limit with HTTP 429, and some errors as HTTP 200 with
    // ok:false; either way the wait comes in Retry-After. First one, then the other.
    Mock::given(method("POST"))
        .and(path(POST_MESSAGE))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(POST_MESSAGE))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"ok": false, "error": "ratelimited"})),
        )
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    slack_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id) = slack_channel(&env, "sl-429").await;
    let r = env.send(function("slack"), signed(id, &fixture("slack-message.json"))).await;
    assert_eq!(r.body["stored"], 1, "{}", r.body);
    run_workers(&env).await;
    let sent = received(&server, POST_MESSAGE).await;
    assert_eq!(sent.len(), 3, "refused twice, then accepted: {sent:?}");
    assert!(sent[0] == sent[1] && sent[1] == sent[2], "the same message again: {sent:?}");
    assert_eq!(deliveries(&env, t.company_id).await, vec![("sent".to_string(), 1, None)]);
}

#[tokio::test]
async fn a_support_agents_reply_goes_out_as_escaped_mrkdwn_in_the_thread() {
    let server = MockServer::start().await;
    slack_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id) = slack_channel(&env, "sl-human").await;
    env.send(function("slack"), signed(id, &fixture("slack-message.json"))).await;
    run_workers(&env).await;
    let conversation = the_conversation(&env, t.company_id).await;
    claim(&env, &t, conversation).await;
    human_reply(&env, &t, conversation, "**Order** <#123> & co").await;
    run_workers(&env).await;

    let sent = received(&server, POST_MESSAGE).await;
    let last = sent.last().unwrap();
    // Markdown bold becomes mrkdwn bold; & < > are Slack's control characters, so escaped.
    assert_eq!(last["text"], "*Order* &lt;#123&gt; &amp; co");
    assert_eq!(last["channel"], CHANNEL);
    assert_eq!(last["thread_ts"], MESSAGE_TS);
    assert_eq!(deliveries(&env, t.company_id).await.last(), Some(&("sent".to_string(), 1, None)));
}
