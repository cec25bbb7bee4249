//! Messaging channels through their handlers: each webhook function with recorded payloads
//! (handshake, signatures and their forgeries, redeliveries, echoes, batches), the channel
//! worker's turn, and the sender's delivery to a local server speaking the provider's API
//! (wiremock): splitting, escaping, 429 then success, the 24-hour window. The admin routes:
//! credentials checked, sealed and never returned, plan limits, cross-tenant ids.

mod admin;
mod email;
mod meta;
mod replay;
mod slack;
mod teams;
mod telegram;

use chatapp_functions::http_function::HttpFunction;
pub(crate) use chatapp_tests::run_channel_workers as run_workers;
use chatapp_tests::{Req, Resp, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::MockServer;

/// Recorded payloads (`../shared/fixtures/channels`), as bytes: signatures are over these.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/channels").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A test environment whose provider APIs are `server`.
pub(crate) async fn env_with_providers(server: &MockServer) -> TestEnv {
    let uri = server.uri();
    TestEnv::with(&[
        ("CHANNEL_GRAPH_URL", &format!("{uri}/v21.0")),
        ("CHANNEL_TELEGRAM_URL", &uri),
        ("CHANNEL_SLACK_URL", &format!("{uri}/api")),
        ("CHANNEL_TEAMS_TOKEN_URL", &format!("{uri}/botframework.com/oauth2/v2.0/token")),
        ("CHANNEL_TEAMS_OPENID_URL", &format!("{uri}/v1/.well-known/openidconfiguration")),
        ("CHANNEL_SNS_CERT_HOST", "127.0.0.1"),
        ("PUBLIC_API_URL", "https://hooks.example.test"),
    ])
    .await
}

/// A company on the enterprise plan (every channel) with an active agent.
pub(crate) async fn company_with_agent(env: &TestEnv, slug: &str) -> (Tenant, Uuid) {
    let t = env.company(slug, "enterprise").await;
    let agent: Uuid = env
        .owner()
        .await
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, system_prompt)
             VALUES ($1, 'Ada', 'active', 'You help customers of Acme.') RETURNING id",
            &[&t.company_id],
        )
        .await
        .unwrap()
        .get(0);
    (t, agent)
}

/// A channel configuration created through the admin route: (its id, the create response).
pub(crate) async fn create_channel(
    env: &TestEnv,
    t: &Tenant,
    agent: Uuid,
    channel: &str,
    credentials: Value,
) -> (Uuid, Resp) {
    let r = env
        .send(
            HttpFunction::Channels,
            Req::post("/admin/channels")
                .token(&t.admin_token)
                .json(json!({"agent_id": agent, "channel": channel, "name": format!("{channel} line"), "credentials": credentials})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (r.body["channel"]["id"].as_str().unwrap().parse().unwrap(), r)
}

/// A webhook request with `body` exactly as given.
pub(crate) fn webhook(channel: &str, config: Uuid, body: &[u8]) -> Req {
    Req::post(&format!("/channels/{channel}/{config}")).bytes(body, "application/json")
}

/// The webhook function of a channel.
pub(crate) fn function(channel: &str) -> HttpFunction {
    HttpFunction::from_binary(channel).expect("a channel function")
}

/// Rows of a table for a company (read as the owner, past RLS).
pub(crate) async fn count_for(env: &TestEnv, table: &str, company: Uuid) -> i64 {
    env.owner()
        .await
        .query_one(&format!("SELECT count(*) FROM {table} WHERE company_id = $1"), &[&company])
        .await
        .unwrap()
        .get(0)
}

/// The delivery rows of the company: (status, parts_sent, error_code).
pub(crate) async fn deliveries(env: &TestEnv, company: Uuid) -> Vec<(String, i32, Option<String>)> {
    env.owner()
        .await
        .query(
            "SELECT status, parts_sent, error_code FROM chatapp_channel_deliveries WHERE company_id = $1 ORDER BY seq",
            &[&company],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// The requests the provider server received on `path`, bodies as JSON.
pub(crate) async fn received(server: &MockServer, path: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == path)
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

/// `sha256=<hex>` as Meta signs.
pub(crate) fn meta_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", chatapp::channels::hmac_sha256_hex(secret.as_bytes(), &[body]))
}

/// The company's one conversation.
pub(crate) async fn the_conversation(env: &TestEnv, company: Uuid) -> Uuid {
    env.owner()
        .await
        .query_one("SELECT id FROM chatapp_conversations WHERE company_id = $1", &[&company])
        .await
        .unwrap()
        .get(0)
}

/// The company admin takes the conversation over in the inbox.
pub(crate) async fn claim(env: &TestEnv, t: &Tenant, conversation: Uuid) {
    let r = env
        .send(
            HttpFunction::Inbox,
            Req::post(&format!("/inbox/conversations/{conversation}/claim")).token(&t.admin_token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// The company admin replies `content` to the customer from the inbox (the conversation is theirs).
pub(crate) async fn human_reply(env: &TestEnv, t: &Tenant, conversation: Uuid, content: &str) {
    let r = env
        .send(
            HttpFunction::Inbox,
            Req::post(&format!("/inbox/conversations/{conversation}/messages"))
                .token(&t.admin_token)
                .json(json!({"content": content})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
}
