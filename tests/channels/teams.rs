//! Microsoft Teams: the Bot Framework JWT checked end to end through the `teams` function (RS256
//! against the keys of a local OpenID metadata document, issuer, audience, expiry with its
//! 5-minute skew, the `serviceurl` claim against the activity), the reply POSTed to the
//! activity's (local) service URL with a Bot Framework token, activities that are not messages
//! (and bots' messages) ignored, and a redelivery answered once. Each test has its own
//! MockServer, so the process-wide JWKS and token caches (keyed by URL) never carry one test's
//! keys into another.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chatapp_tests::{Tenant, TestEnv};
use http::StatusCode;
use ring::signature::{RsaKeyPair, RsaPublicKeyComponents, RSA_PKCS1_SHA256};
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const KEY: &[u8] = include_bytes!("../fixtures/channels/teams-key.pk8");
/// Another RSA key, published nowhere: a token it signs must not pass even under the real kid.
const OTHER_KEY: &[u8] = include_bytes!("../fixtures/channels/teams-other-key.pk8");
const KID: &str = "test-kid";
const ISSUER: &str = "https://api.botframework.com";
/// The bot's Microsoft App ID: the audience every token must carry.
const APP_ID: &str = "c9e8c047-2a74-40a2-b28a-b162d5f5327c";
const APP_PASSWORD: &str = "teams-app-password-0123456789";
/// From the recorded activity (`teams-message.json`).
const ACTIVITY_ID: &str = "1485983408511";
const CONVERSATION: &str = "a:17I0kl9EkpE1O9PH5TWrzrLNwnWWcfrU7QZjKR0WSfOpzbfcAg2IaydGElSo10tVr4C7Fc6GtieTJX663WuJCc1uA83n4CSrHSgGBj5XNYLcVlJAs2ZX8DbYBPck201w-";
const BOT_ID: &str = "28:c9e8c047-2a74-40a2-b28a-b162d5f5327c";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key_pair(der: &[u8]) -> RsaKeyPair {
    RsaKeyPair::from_pkcs8(der).expect("a PKCS#8 RSA key")
}

fn rs256() -> Value {
    json!({"alg": "RS256", "typ": "JWT", "kid": KID})
}

/// A compact JWT of `header` and `claims`, signed RS256 with the PKCS#8 key `der`.
fn jwt(der: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let key = key_pair(der);
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut sig).expect("RS256 signing");
    format!("{input}.{}", b64(&sig))
}

/// The claims Bot Framework puts in a token for this bot and this activity's service URL.
fn claims(service_url: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": ISSUER, "aud": APP_ID, "exp": now + 3600, "nbf": now - 10, "serviceurl": service_url})
}

fn with(mut claims: Value, field: &str, value: Value) -> Value {
    claims[field] = value;
    claims
}

/// The Bot Framework as the platform sees it, on `server`: the OpenID metadata and its JWKS (the
/// public half of `KEY`, endorsed for msteams), the token endpoint, and the connector's
/// activities endpoint (replies and typing indicators).
async fn bot_framework(server: &MockServer) {
    let uri = server.uri();
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(key_pair(KEY).public());
    Mock::given(method("GET"))
        .and(path("/v1/.well-known/openidconfiguration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": ISSUER, "jwks_uri": format!("{uri}/keys"), "id_token_signing_alg_values_supported": ["RS256"]})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/keys"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"keys": [{
            "kty": "RSA", "use": "sig", "kid": KID, "n": b64(&public.n), "e": b64(&public.e),
            "endorsements": ["msteams"]}]})))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/botframework.com/oauth2/v2.0/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": "bf-token"})))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/amer/v3/conversations/[^/]+/activities(/[^/]+)?$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "reply-activity-1"})))
        .mount(server)
        .await;
}

/// The recorded activity of type `kind`, its `serviceUrl` moved to `server` (http is accepted
/// only for 127.0.0.1 / localhost, where replies must go in a test): (bytes, service URL).
fn activity(server: &MockServer, kind: &str) -> (Vec<u8>, String) {
    let service_url = format!("{}/amer/", server.uri());
    let mut a: Value = serde_json::from_slice(&fixture("teams-message.json")).unwrap();
    a["serviceUrl"] = json!(service_url);
    a["type"] = json!(kind);
    (a.to_string().into_bytes(), service_url)
}

async fn teams_channel(env: &TestEnv, slug: &str) -> (Tenant, Uuid) {
    let (t, agent) = company_with_agent(env, slug).await;
    let (id, _) =
        create_channel(env, &t, agent, "teams", json!({"app_id": APP_ID, "app_password": APP_PASSWORD})).await;
    (t, id)
}

fn with_token(config: Uuid, body: &[u8], token: &str) -> Req {
    webhook("teams", config, body).header("authorization", &format!("Bearer {token}"))
}

/// POSTs the server received on the connector's activities endpoints.
async fn activities_posted(server: &MockServer) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path().contains("/v3/conversations/"))
        .collect()
}

#[tokio::test]
async fn a_verified_message_is_stored_and_answered_in_its_thread() {
    let server = MockServer::start().await;
    bot_framework(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id) = teams_channel(&env, "teams-ok").await;
    let (body, service_url) = activity(&server, "message");

    let r = env.send(function("teams"), with_token(id, &body, &jwt(KEY, &rs256(), &claims(&service_url)))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["stored"], 1);
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 1);
    let (turns, sends) = run_workers(&env).await;
    assert_eq!((turns, sends), (1, 1));

    // The reply goes to the thread of the activity: its conversation id percent-encoded in the
    // path, then the activity id, with the token of the bot's own app registration.
    let reply_path = format!("/amer/v3/conversations/{}/activities/{ACTIVITY_ID}", CONVERSATION.replace(':', "%3A"));
    let posted = activities_posted(&server).await;
    let replies: Vec<&wiremock::Request> = posted.iter().filter(|r| r.url.path() == reply_path).collect();
    assert_eq!(replies.len(), 1, "one reply: {:?}", posted.iter().map(|r| r.url.path()).collect::<Vec<_>>());
    let auth = replies[0].headers.get("authorization").and_then(|v| v.to_str().ok());
    assert_eq!(auth, Some("Bearer bf-token"));
    let reply: Value = serde_json::from_slice(&replies[0].body).unwrap();
    assert_eq!(reply["type"], "message");
    assert_eq!(reply["replyToId"], ACTIVITY_ID);
    assert_eq!(reply["conversation"]["id"], CONVERSATION);
    assert_eq!(reply["from"]["id"], BOT_ID, "the bot speaks as itself");
    assert!(!reply["text"].as_str().unwrap_or("").is_empty(), "{reply}");
    // Every connector call carries the Bot Framework token (typing indicators too).
    for r in &posted {
        assert_eq!(r.headers.get("authorization").and_then(|v| v.to_str().ok()), Some("Bearer bf-token"));
    }
    // The token was obtained with the bot's client credentials.
    let token_requests: Vec<String> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/botframework.com/oauth2/v2.0/token")
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(!token_requests.is_empty());
    assert!(token_requests[0].contains("grant_type=client_credentials"), "{}", token_requests[0]);
    assert!(token_requests[0].contains(&format!("client_id={APP_ID}")), "{}", token_requests[0]);
    assert_eq!(deliveries(&env, t.company_id).await, vec![("sent".to_string(), 1, None)]);

    // Teams redelivers the activity (same id): stored once, answered once.
    let again = env.send(function("teams"), with_token(id, &body, &jwt(KEY, &rs256(), &claims(&service_url)))).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!((again.body["stored"].clone(), again.body["duplicates"].clone()), (json!(0), json!(1)));
    assert_eq!(run_workers(&env).await, (0, 0));
    let replies = activities_posted(&server).await.into_iter().filter(|r| r.url.path() == reply_path).count();
    assert_eq!(replies, 1, "a second reply went out");
}

#[tokio::test]
async fn forged_or_misdirected_tokens_are_refused_and_store_nothing() {
    let server = MockServer::start().await;
    bot_framework(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id) = teams_channel(&env, "teams-forged").await;
    let (body, service_url) = activity(&server, "message");
    let good = claims(&service_url);
    let now = chrono::Utc::now().timestamp();
    // `alg: none` with no signature: refused before any key is looked up.
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "kid": KID}).to_string().as_bytes()),
        b64(good.to_string().as_bytes())
    );
    let expired = with(with(good.clone(), "exp", json!(now - 400)), "nbf", json!(now - 4000));
    let cases: Vec<(&str, String)> = vec![
        ("wrong audience", jwt(KEY, &rs256(), &with(good.clone(), "aud", json!("another-bots-app-id")))),
        ("wrong issuer", jwt(KEY, &rs256(), &with(good.clone(), "iss", json!("https://evil.example.test")))),
        // Same kid as the published key, so only the signature itself can tell.
        ("signed by another key", jwt(OTHER_KEY, &rs256(), &good)),
        ("expired beyond the 5-minute skew", jwt(KEY, &rs256(), &expired)),
        // A genuine token for another service URL must not redirect the reply (and its bot token).
        (
            "serviceurl of another activity",
            jwt(KEY, &rs256(), &with(good.clone(), "serviceurl", json!("https://smba.trafficmanager.net/amer/"))),
        ),
        ("alg none", unsigned),
    ];
    for (name, token) in cases {
        let r = env.send(function("teams"), with_token(id, &body, &token)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}: {}", r.body);
        assert_eq!(r.code(), "webhook_forbidden", "{name}: {}", r.body);
    }
    let r = env.send(function("teams"), webhook("teams", id, &body)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "missing Authorization: {}", r.body);

    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
    assert_eq!(count_for(&env, "chatapp_conversations", t.company_id).await, 0);
    assert_eq!(run_workers(&env).await, (0, 0));
    assert!(activities_posted(&server).await.is_empty(), "nothing sent");
}

#[tokio::test]
async fn a_token_expired_within_the_clock_skew_is_still_accepted() {
    let server = MockServer::start().await;
    bot_framework(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id) = teams_channel(&env, "teams-skew").await;
    let (body, service_url) = activity(&server, "message");
    let now = chrono::Utc::now().timestamp();
    // Two minutes past expiry: inside the five minutes the Bot Framework docs allow.
    let late = with(with(claims(&service_url), "exp", json!(now - 120)), "nbf", json!(now - 3720));
    let r = env.send(function("teams"), with_token(id, &body, &jwt(KEY, &rs256(), &late))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["stored"], 1);
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 1);
}

#[tokio::test]
async fn a_message_from_a_bot_is_ignored() {
    let server = MockServer::start().await;
    bot_framework(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id) = teams_channel(&env, "teams-bot").await;
    // Another bot (or our own) writing in the conversation: never answered, so bots cannot loop.
    let (body, service_url) = activity(&server, "message");
    let mut a: Value = serde_json::from_slice(&body).unwrap();
    a["from"]["role"] = json!("bot");
    let body = a.to_string().into_bytes();
    let r = env.send(function("teams"), with_token(id, &body, &jwt(KEY, &rs256(), &claims(&service_url)))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["stored"].clone(), r.body["ignored"].clone()), (json!(0), json!(1)));
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
    assert_eq!(run_workers(&env).await, (0, 0));
    assert!(activities_posted(&server).await.is_empty(), "nothing sent");
}

#[tokio::test]
async fn a_conversation_update_is_ignored() {
    let server = MockServer::start().await;
    bot_framework(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id) = teams_channel(&env, "teams-update").await;
    // The bot being added to a conversation: authentic, but nothing for the agent to answer.
    let (body, service_url) = activity(&server, "conversationUpdate");
    let r = env.send(function("teams"), with_token(id, &body, &jwt(KEY, &rs256(), &claims(&service_url)))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["stored"].clone(), r.body["ignored"].clone()), (json!(0), json!(1)));
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
    assert_eq!(run_workers(&env).await, (0, 0));
    assert!(activities_posted(&server).await.is_empty(), "nothing sent");
}

#[tokio::test]
async fn a_throttled_reply_is_retried_after_retry_after_and_sent_once() {
    let server = MockServer::start().await;
    let reply_path = format!("/amer/v3/conversations/{}/activities/{ACTIVITY_ID}", CONVERSATION.replace(':', "%3A"));
    // The connector throttles the first reply (typing indicators go to another path).
    Mock::given(method("POST"))
        .and(path(reply_path.clone()))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    bot_framework(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id) = teams_channel(&env, "teams-429").await;
    let (body, service_url) = activity(&server, "message");
    let r = env.send(function("teams"), with_token(id, &body, &jwt(KEY, &rs256(), &claims(&service_url)))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    run_workers(&env).await;
    let replies = activities_posted(&server).await.into_iter().filter(|r| r.url.path() == reply_path).count();
    assert_eq!(replies, 2, "refused once, then accepted");
    assert_eq!(deliveries(&env, t.company_id).await, vec![("sent".to_string(), 1, None)]);
}
