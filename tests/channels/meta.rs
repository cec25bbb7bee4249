//! WhatsApp, Messenger and Instagram: Meta's handshake and `X-Hub-Signature-256` (every kind of
//! forgery, on each of the three), the recorded payloads answered end to end, redeliveries
//! answered once, echoes, batches, receipts (shown in the inbox), 429 then success, the 24-hour
//! window, a human's reply (split at Messenger's limit), one company's channel id with another's
//! secret, a new conversation after a resolution with the agent the channel has then, and an
//! Instagram message arriving base64-encoded in a recorded API Gateway event.

use chatapp_tests::TestEnv;
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const APP_SECRET: &str = "meta-app-secret-0123456789";
const WAMID: &str = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=";
const RECORDED_TS: &str = "1739321024";

/// The recorded WhatsApp payload with its timestamp moved to now (the 24-hour window counts
/// from it), and its message id replaced when `id` is given.
fn whatsapp_payload(id: Option<&str>) -> Vec<u8> {
    let text = String::from_utf8(fixture("whatsapp-text.json")).unwrap();
    let text = text.replace(RECORDED_TS, &chrono::Utc::now().timestamp().to_string());
    let text = match id {
        Some(id) => text.replace(WAMID, id),
        None => text,
    };
    text.into_bytes()
}

async fn whatsapp_channel(env: &TestEnv, slug: &str) -> (chatapp_tests::Tenant, Uuid, String) {
    let (t, agent) = company_with_agent(env, slug).await;
    let (id, r) = create_channel(
        env,
        &t,
        agent,
        "whatsapp",
        json!({"access_token": "EAAG-test-token", "app_secret": APP_SECRET, "phone_number_id": "106540352242922"}),
    )
    .await;
    let verify = r.body["verify_token"].as_str().unwrap().to_string();
    (t, id, verify)
}

async fn graph_accepts(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/v21.0/106540352242922/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"messaging_product": "whatsapp", "messages": [{"id": "wamid.reply"}]})),
        )
        .mount(server)
        .await;
}

/// Messenger's and Instagram's Send API (`me/messages`) accepting every message.
async fn page_accepts(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/v21.0/me/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"recipient_id": "PSID", "message_id": "m_1"})))
        .mount(server)
        .await;
}

fn signed(config: Uuid, body: &[u8]) -> chatapp_tests::Req {
    webhook("whatsapp", config, body).header("x-hub-signature-256", &meta_signature(APP_SECRET, body))
}

#[tokio::test]
async fn whatsapp_handshake_answers_the_challenge_only_for_the_verify_token() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (_t, id, verify) = whatsapp_channel(&env, "wa-hs").await;
    let ok = env
        .send(
            function("whatsapp"),
            Req::get(&format!(
                "/channels/whatsapp/{id}?hub.mode=subscribe&hub.verify_token={verify}&hub.challenge=1158201444"
            )),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body, json!(1158201444));
    let wrong = env
        .send(
            function("whatsapp"),
            Req::get(&format!("/channels/whatsapp/{id}?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1")),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let unknown = env
        .send(
            function("whatsapp"),
            Req::get(&format!(
                "/channels/whatsapp/{}?hub.mode=subscribe&hub.verify_token={verify}&hub.challenge=1",
                Uuid::new_v4()
            )),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_whatsapp_message_is_answered_once_even_when_redelivered() {
    let server = MockServer::start().await;
    graph_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = whatsapp_channel(&env, "wa-flow").await;
    let body = whatsapp_payload(None);

    let r = env.send(function("whatsapp"), signed(id, &body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["stored"], 1);
    // Meta retries a webhook it thinks failed: the same bytes again.
    let again = env.send(function("whatsapp"), signed(id, &body)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!((again.body["stored"].clone(), again.body["duplicates"].clone()), (json!(0), json!(1)));

    let (turns, sends) = run_workers(&env).await;
    assert_eq!((turns, sends), (1, 1));
    // A second webhook delivery after the answer: still nothing new.
    env.send(function("whatsapp"), signed(id, &body)).await;
    run_workers(&env).await;

    let sent = received(&server, "/v21.0/106540352242922/messages").await;
    let texts: Vec<&Value> = sent.iter().filter(|b| b["type"] == "text").collect();
    assert_eq!(texts.len(), 1, "one reply, sent once: {sent:?}");
    assert_eq!(texts[0]["to"], "16505551234");
    assert_eq!(texts[0]["messaging_product"], "whatsapp");
    assert!(!texts[0]["text"]["body"].as_str().unwrap().is_empty());
    // The customer's message became a conversation of the company, with its sender as customer.
    let owner = env.owner().await;
    let conv = owner
        .query_one(
            "SELECT c.channel::text, c.external_id, c.customer_name, c.customer_phone, cu.channel_ids
             FROM chatapp_conversations c JOIN chatapp_customers cu ON cu.id::text = c.customer_id
             WHERE c.company_id = $1",
            &[&t.company_id],
        )
        .await
        .unwrap();
    assert_eq!(conv.get::<_, String>(0), "whatsapp");
    assert_eq!(conv.get::<_, Option<String>>(1).as_deref(), Some("16505551234"));
    assert_eq!(conv.get::<_, Option<String>>(2).as_deref(), Some("Sheena Nelson"));
    assert_eq!(conv.get::<_, Option<String>>(3).as_deref(), Some("+16505551234"));
    assert_eq!(conv.get::<_, Value>(4), json!({"whatsapp": "16505551234"}));
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 1);
    assert_eq!(deliveries(&env, t.company_id).await, vec![("sent".to_string(), 1, None)]);

    // A delivery receipt for our reply moves its status forward.
    let receipt = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "106540352242922"},
        "statuses": [{"id": "wamid.reply", "status": "read", "timestamp": "1", "recipient_id": "16505551234"}]}}]}]})
    .to_string();
    let r = env.send(function("whatsapp"), signed(id, receipt.as_bytes())).await;
    assert_eq!(r.body["receipts"], 1, "{}", r.body);
    assert_eq!(deliveries(&env, t.company_id).await[0].0, "read");

    // The support team sees it on the conversation, beside the reply it is about.
    let conversation = the_conversation(&env, t.company_id).await;
    let r = env
        .send(HttpFunction::Inbox, Req::get(&format!("/inbox/conversations/{conversation}")).token(&t.admin_token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let shown = r.body["deliveries"].as_array().unwrap_or_else(|| panic!("no deliveries: {}", r.body));
    assert_eq!(shown.len(), 1, "{}", r.body);
    assert_eq!((shown[0]["status"].clone(), shown[0]["parts_sent"].clone()), (json!("read"), json!(1)));
    assert!(shown[0]["read_at"].is_string() && shown[0]["sent_at"].is_string(), "{}", shown[0]);
    let reply = r.body["messages"].as_array().unwrap().iter().find(|m| m["role"] == "assistant").cloned();
    assert_eq!(reply.map(|m| m["id"].clone()), Some(shown[0]["message_id"].clone()), "{}", r.body);
    // Each status change was an event of the conversation, for the inbox's live view.
    assert_eq!(delivery_events(&env, &t, conversation).await, [("sent".to_string(), None), ("read".to_string(), None)]);
}

/// The `message.delivery` events of the conversation, oldest first: (status, error_code).
async fn delivery_events(
    env: &TestEnv,
    t: &chatapp_tests::Tenant,
    conversation: Uuid,
) -> Vec<(String, Option<String>)> {
    let r = env
        .send(
            HttpFunction::Inbox,
            Req::get(&format!("/inbox/conversations/{conversation}/events?after=0")).token(&t.admin_token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events: {}", r.body))
        .iter()
        .filter(|e| e["type"] == "message.delivery")
        .map(|e| {
            (e["data"]["status"].as_str().unwrap().to_string(), e["data"]["error_code"].as_str().map(str::to_string))
        })
        .collect()
}

#[tokio::test]
async fn forged_whatsapp_requests_are_rejected_and_store_nothing() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = whatsapp_channel(&env, "wa-forge").await;
    let body = whatsapp_payload(None);
    let good = meta_signature(APP_SECRET, &body);

    let mut flipped = body.clone();
    let at = flipped.iter().position(|&b| b == b'H').unwrap();
    flipped[at] = b'J';
    let reserialised = serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    let cases: Vec<(&str, chatapp_tests::Req, StatusCode)> = vec![
        ("flipped byte", webhook("whatsapp", id, &flipped).header("x-hub-signature-256", &good), StatusCode::FORBIDDEN),
        (
            "wrong secret",
            webhook("whatsapp", id, &body).header("x-hub-signature-256", &meta_signature("another-secret", &body)),
            StatusCode::FORBIDDEN,
        ),
        ("missing header", webhook("whatsapp", id, &body), StatusCode::UNAUTHORIZED),
        (
            "re-serialised body",
            webhook("whatsapp", id, &reserialised).header("x-hub-signature-256", &good),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (name, req, want) in cases {
        let r = env.send(function("whatsapp"), req).await;
        assert_eq!(r.status, want, "{name}: {}", r.body);
    }
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
    assert_eq!(count_for(&env, "chatapp_conversations", t.company_id).await, 0);
    assert_eq!(env.count("chatapp_outbox").await, 0);
}

#[tokio::test]
async fn one_companys_channel_id_with_anothers_secret_is_rejected() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (a, a_id, _) = whatsapp_channel(&env, "wa-a").await;
    let (b, agent_b) = company_with_agent(&env, "wa-b").await;
    create_channel(
        &env,
        &b,
        agent_b,
        "whatsapp",
        json!({"access_token": "EAAG-b", "app_secret": "company-b-secret", "phone_number_id": "222"}),
    )
    .await;
    let body = whatsapp_payload(None);
    let r = env
        .send(
            function("whatsapp"),
            webhook("whatsapp", a_id, &body).header("x-hub-signature-256", &meta_signature("company-b-secret", &body)),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(count_for(&env, "chatapp_channel_inbound", a.company_id).await, 0);
    // And a WhatsApp id on the Messenger function is not found.
    let r = env.send(function("messenger"), webhook("messenger", a_id, &body)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_batch_is_split_and_status_updates_are_not_messages() {
    let server = MockServer::start().await;
    graph_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = whatsapp_channel(&env, "wa-batch").await;
    let now = chrono::Utc::now().timestamp().to_string();
    let msg = |id: &str, from: &str, text: &str| json!({"from": from, "id": id, "timestamp": now, "type": "text", "text": {"body": text}});
    let change = |msgs: Vec<Value>| {
        json!({"field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "A"}, "wa_id": "111"}, {"profile": {"name": "B"}, "wa_id": "222"}],
            "messages": msgs,
            "statuses": [{"id": "wamid.unknown", "status": "delivered", "timestamp": now, "recipient_id": "111"}]}})
    };
    let body = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "1", "changes": [change(vec![msg("wamid.1", "111", "hello"), msg("wamid.2", "222", "hi")])]},
        {"id": "1", "changes": [change(vec![msg("wamid.3", "111", "again"), msg("wamid.4", "222", "there")])]},
    ]})
    .to_string();
    let r = env.send(function("whatsapp"), signed(id, body.as_bytes())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["stored"], 4);
    // Two customers, two conversations (one per WhatsApp user), four turns.
    assert_eq!(count_for(&env, "chatapp_conversations", t.company_id).await, 2);
    let (turns, sends) = run_workers(&env).await;
    assert_eq!((turns, sends), (4, 4));
}

#[tokio::test]
async fn a_rate_limited_reply_is_retried_after_the_providers_wait() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v21.0/106540352242922/messages"))
        // Only the reply: the typing indicator before the turn goes to the same path.
        .and(body_partial_json(json!({"type": "text"})))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"error": {"message": "(#130429) Rate limit hit", "code": 130429}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    graph_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = whatsapp_channel(&env, "wa-429").await;
    env.send(function("whatsapp"), signed(id, &whatsapp_payload(None))).await;
    run_workers(&env).await;
    let sent = received(&server, "/v21.0/106540352242922/messages").await;
    assert_eq!(sent.iter().filter(|b| b["type"] == "text").count(), 2, "refused once, then accepted");
    assert_eq!(deliveries(&env, t.company_id).await, vec![("sent".to_string(), 1, None)]);
}

#[tokio::test]
async fn outside_the_24_hour_window_only_a_template_goes_out() {
    let server = MockServer::start().await;
    graph_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = whatsapp_channel(&env, "wa-window").await;
    // The recorded payload as it was: its timestamp is far older than 24 hours.
    let old = String::from_utf8(fixture("whatsapp-text.json")).unwrap().into_bytes();
    env.send(function("whatsapp"), signed(id, &old)).await;
    run_workers(&env).await;
    assert_eq!(
        deliveries(&env, t.company_id).await,
        vec![("failed".to_string(), 0, Some("outside_window".to_string()))]
    );
    let sent = received(&server, "/v21.0/106540352242922/messages").await;
    assert!(sent.iter().all(|b| b.get("type").is_none()), "no reply sent, only the typing indicator: {sent:?}");

    // With a template configured, the template is sent instead.
    let r = env
        .send(
            HttpFunction::Channels,
            Req::patch(&format!("/admin/channels/{id}"))
                .token(&t.admin_token)
                .json(json!({"settings": {"window_template": {"name": "follow_up", "language": "en_US"}}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let older = String::from_utf8(old).unwrap().replace(WAMID, "wamid.second").into_bytes();
    env.send(function("whatsapp"), signed(id, &older)).await;
    run_workers(&env).await;
    let sent: Vec<Value> = received(&server, "/v21.0/106540352242922/messages")
        .await
        .into_iter()
        .filter(|b| b.get("type").is_some())
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["type"], "template");
    assert_eq!(sent[0]["template"]["name"], "follow_up");
}

#[tokio::test]
async fn while_a_human_owns_the_conversation_the_ai_is_silent_and_the_humans_reply_goes_out() {
    let server = MockServer::start().await;
    graph_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = whatsapp_channel(&env, "wa-human").await;
    env.send(function("whatsapp"), signed(id, &whatsapp_payload(None))).await;
    run_workers(&env).await;
    let conversation = the_conversation(&env, t.company_id).await;
    // The admin claims the conversation and replies from the inbox.
    claim(&env, &t, conversation).await;
    let before = received(&server, "/v21.0/106540352242922/messages").await.len();
    env.send(function("whatsapp"), signed(id, &whatsapp_payload(Some("wamid.while-human")))).await;
    run_workers(&env).await;
    assert_eq!(received(&server, "/v21.0/106540352242922/messages").await.len(), before, "the AI stays silent");
    human_reply(&env, &t, conversation, "Hi, this is **Sam** from support.").await;
    run_workers(&env).await;
    let sent = received(&server, "/v21.0/106540352242922/messages").await;
    let last = sent.last().unwrap();
    assert_eq!(last["text"]["body"], "Hi, this is *Sam* from support.", "WhatsApp bold");
}

#[tokio::test]
async fn messenger_echoes_are_ignored_and_replies_go_to_the_sender() {
    let server = MockServer::start().await;
    page_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, agent) = company_with_agent(&env, "fb").await;
    let (id, _) = create_channel(
        &env,
        &t,
        agent,
        "messenger",
        json!({"access_token": "EAAG-page", "app_secret": APP_SECRET, "page_id": "PAGE_ID"}),
    )
    .await;
    let body = fixture("messenger-text.json");
    let body =
        String::from_utf8(body).unwrap().replace("1458692752478", &chrono::Utc::now().timestamp_millis().to_string());
    let r = env
        .send(
            function("messenger"),
            webhook("messenger", id, body.as_bytes())
                .header("x-hub-signature-256", &meta_signature(APP_SECRET, body.as_bytes())),
        )
        .await;
    assert_eq!(r.body["stored"], 1, "{}", r.body);
    let echo = json!({"object": "page", "entry": [{"id": "PAGE_ID", "time": 1, "messaging": [{
        "sender": {"id": "PAGE_ID"}, "recipient": {"id": "PSID"}, "timestamp": 1,
        "message": {"mid": "m_echo", "text": "our own reply", "is_echo": true}}]}]})
    .to_string();
    let r = env
        .send(
            function("messenger"),
            webhook("messenger", id, echo.as_bytes())
                .header("x-hub-signature-256", &meta_signature(APP_SECRET, echo.as_bytes())),
        )
        .await;
    assert_eq!((r.body["stored"].clone(), r.body["ignored"].clone()), (json!(0), json!(1)));
    run_workers(&env).await;
    let sent = received(&server, "/v21.0/me/messages").await;
    let texts: Vec<&Value> = sent.iter().filter(|b| b.get("message").is_some()).collect();
    assert_eq!(texts.len(), 1, "{sent:?}");
    assert_eq!(texts[0]["recipient"]["id"], "PSID");
    assert_eq!(texts[0]["messaging_type"], "RESPONSE");
}

#[tokio::test]
async fn the_channels_greeting_opens_each_new_conversation_once() {
    let server = MockServer::start().await;
    graph_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = whatsapp_channel(&env, "wa-greet").await;
    let r = env
        .send(
            HttpFunction::Channels,
            Req::patch(&format!("/admin/channels/{id}"))
                .token(&t.admin_token)
                .json(json!({"settings": {"greeting": "Hi! You are talking to Acme's assistant."}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["settings"]["greeting"], "Hi! You are talking to Acme's assistant.");
    env.send(function("whatsapp"), signed(id, &whatsapp_payload(None))).await;
    run_workers(&env).await;
    env.send(function("whatsapp"), signed(id, &whatsapp_payload(Some("wamid.second")))).await;
    run_workers(&env).await;
    let texts: Vec<String> = received(&server, "/v21.0/106540352242922/messages")
        .await
        .iter()
        .filter(|b| b["type"] == "text")
        .map(|b| b["text"]["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts.len(), 3, "greeting, answer, answer: {texts:?}");
    assert_eq!(texts.iter().filter(|t| t.starts_with("Hi! You are talking")).count(), 1, "{texts:?}");
    assert_eq!(deliveries(&env, t.company_id).await.iter().filter(|d| d.0 == "sent").count(), 3);
    // A greeting that is too long is refused, naming the field.
    let r = env
        .send(
            HttpFunction::Channels,
            Req::patch(&format!("/admin/channels/{id}"))
                .token(&t.admin_token)
                .json(json!({"settings": {"greeting": "x".repeat(1001)}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("settings.greeting"), "{}", r.body);
}

#[tokio::test]
async fn a_message_to_another_number_of_the_same_meta_app_is_not_this_channels() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = whatsapp_channel(&env, "wa-other-number").await;
    let body = String::from_utf8(whatsapp_payload(None)).unwrap().replace("106540352242922", "999999999999999");
    let r = env.send(function("whatsapp"), signed(id, body.as_bytes())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["stored"].clone(), r.body["ignored"].clone()), (json!(0), json!(1)));
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
}

#[tokio::test]
async fn a_channels_business_hours_setting_overrides_the_agents() {
    let server = MockServer::start().await;
    graph_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = whatsapp_channel(&env, "wa-hours").await;
    // The agent is never open.
    let hours = json!({"enabled": true, "timezone": "UTC", "schedule": {}, "outsideHoursMessage": "We are closed."});
    env.owner()
        .await
        .execute("UPDATE chatapp_agents SET business_hours = $2 WHERE company_id = $1", &[&t.company_id, &hours])
        .await
        .unwrap();
    let settings = |body: Value| {
        env.send(
            HttpFunction::Channels,
            Req::patch(&format!("/admin/channels/{id}")).token(&t.admin_token).json(json!({"settings": body})),
        )
    };
    let texts = || async {
        received(&server, "/v21.0/106540352242922/messages")
            .await
            .iter()
            .filter(|b| b["type"] == "text")
            .map(|b| b["text"]["body"].as_str().unwrap().to_string())
            .collect::<Vec<String>>()
    };

    // As the agent has them: its outside-hours message.
    env.send(function("whatsapp"), signed(id, &whatsapp_payload(Some("wamid.h1")))).await;
    run_workers(&env).await;
    assert_eq!(texts().await, ["We are closed."]);

    // The channel's own message outside the agent's hours.
    let r =
        settings(json!({"business_hours": {"mode": "agent", "outside_message": "WhatsApp is answered 9-5."}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    env.send(function("whatsapp"), signed(id, &whatsapp_payload(Some("wamid.h2")))).await;
    run_workers(&env).await;
    assert_eq!(texts().await.last().unwrap(), "WhatsApp is answered 9-5.");

    // Always open on this channel: the agent answers.
    let r = settings(json!({"business_hours": {"mode": "always_open"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    env.send(function("whatsapp"), signed(id, &whatsapp_payload(Some("wamid.h3")))).await;
    run_workers(&env).await;
    let sent = texts().await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(!sent[2].contains("closed") && !sent[2].contains("9-5"), "{sent:?}");

    // An always-open channel has no outside-hours message; a mode must be one of the two.
    for bad in [
        json!({"business_hours": {"mode": "always_open", "outside_message": "x"}}),
        json!({"business_hours": {"mode": "sometimes"}}),
        json!({"business_hours": {"mode": "agent", "outside_message": "x".repeat(1001)}}),
    ] {
        let r = settings(bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("business_hours"), "{bad}: {}", r.body);
    }
    let r = env.send(HttpFunction::Channels, Req::get(&format!("/admin/channels/{id}")).token(&t.admin_token)).await;
    assert_eq!(r.body["settings"], json!({"business_hours": {"mode": "always_open"}}), "{}", r.body);
}

/// The `channel-send` job of one reply, as SQS hands it to the sender.
fn send_job(company: Uuid, message: Uuid) -> Value {
    let body = json!({"company_id": company, "message_id": message}).to_string();
    json!({"Records": [{"messageId": message.to_string(), "body": body}]})
}

#[tokio::test]
async fn a_conversations_replies_leave_in_the_order_they_were_written_whichever_job_runs_first() {
    let server = MockServer::start().await;
    // A slow provider: the first reply is still on its way when the other job runs.
    Mock::given(method("POST"))
        .and(path("/v21.0/106540352242922/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"messaging_product": "whatsapp", "messages": [{"id": "wamid.reply"}]}))
                .set_delay(std::time::Duration::from_millis(300)),
        )
        .mount(&server)
        .await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = whatsapp_channel(&env, "wa-order").await;
    let greeting = "Hi! You are talking to Acme's assistant.";
    let r = env
        .send(
            HttpFunction::Channels,
            Req::patch(&format!("/admin/channels/{id}"))
                .token(&t.admin_token)
                .json(json!({"settings": {"greeting": greeting}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    env.send(function("whatsapp"), signed(id, &whatsapp_payload(None))).await;

    // Only the turn: its two replies (the greeting, then the answer) wait for the sender.
    chatapp::outbox::relay(
        &env.deps.db,
        env.deps.queue.as_ref(),
        chatapp_functions::outbox_relay::QUEUES,
        std::time::Duration::ZERO,
    )
    .await
    .unwrap();
    let worker = env.deps.scoped(chatapp_functions::channel_worker::AWS);
    assert_eq!(chatapp_functions::channel_worker::drain_queue(&worker).await.unwrap(), 1);
    let replies: Vec<Uuid> = env
        .owner()
        .await
        .query("SELECT message_id FROM chatapp_channel_deliveries WHERE company_id = $1 ORDER BY seq", &[&t.company_id])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(replies.len(), 2);

    // The answer's job runs first; the greeting's starts while the answer's is sending.
    let sender = env.deps.scoped(chatapp_functions::channel_sender::AWS);
    let answer_job = chatapp_functions::channel_sender::handle(&sender, send_job(t.company_id, replies[1]));
    let greeting_job = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        chatapp_functions::channel_sender::handle(&sender, send_job(t.company_id, replies[0])).await
    };
    let (a, g) = tokio::join!(answer_job, greeting_job);
    for done in [a.unwrap(), g.unwrap()] {
        assert_eq!(done["batchItemFailures"], json!([]), "{done}");
    }
    let texts = || async {
        received(&server, "/v21.0/106540352242922/messages")
            .await
            .iter()
            .filter(|b| b["type"] == "text")
            .map(|b| b["text"]["body"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<String>>()
    };
    let sent = texts().await;
    assert_eq!(sent.len(), 2, "each reply once: {sent:?}");
    assert_eq!(sent[0], greeting, "the greeting first: {sent:?}");
    assert_ne!(sent[1], greeting, "{sent:?}");
    assert!(deliveries(&env, t.company_id).await.iter().all(|d| d.0 == "sent"));

    // The queue's own copies of both jobs find nothing left to send.
    run_workers(&env).await;
    assert_eq!(texts().await, sent);
}

/// The recorded API Gateway event of the `instagram` function (`events/instagram.json`) for
/// channel `config`, with `body` base64-encoded (`isBase64Encoded`, as API Gateway sends a body
/// it does not treat as text) and signed with `secret`; read by lambda_http as on Lambda.
fn instagram_event(config: Uuid, body: &[u8], secret: &str) -> lambda_http::Request {
    use base64::Engine;
    let raw = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/instagram.json")).unwrap();
    let mut event: Value = serde_json::from_str(&raw).unwrap();
    let at = format!("/channels/instagram/{config}");
    event["rawPath"] = json!(at);
    event["requestContext"]["http"]["path"] = json!(at);
    event["headers"]["x-hub-signature-256"] = json!(meta_signature(secret, body));
    event["isBase64Encoded"] = json!(true);
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

async fn call_event(env: &TestEnv, request: lambda_http::Request) -> (StatusCode, Value) {
    let response = function("instagram").call(&env.deps, request).await;
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_instagram_message_in_a_base64_event_is_answered_once_and_forgeries_and_echoes_store_nothing() {
    let server = MockServer::start().await;
    page_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, agent) = company_with_agent(&env, "ig").await;
    let (id, r) = create_channel(
        &env,
        &t,
        agent,
        "instagram",
        json!({"access_token": "IGQV-token", "app_secret": APP_SECRET, "page_id": "IGID"}),
    )
    .await;
    let verify = r.body["verify_token"].as_str().unwrap();

    // Meta's handshake, as for the other Meta channels.
    let hs = env
        .send(
            function("instagram"),
            Req::get(&format!(
                "/channels/instagram/{id}?hub.mode=subscribe&hub.verify_token={verify}&hub.challenge=42"
            )),
        )
        .await;
    assert_eq!((hs.status, hs.body.clone()), (StatusCode::OK, json!(42)));

    let body = String::from_utf8(fixture("instagram-text.json"))
        .unwrap()
        .replace("1569262485349", &chrono::Utc::now().timestamp_millis().to_string())
        .into_bytes();
    // Forged (another secret), then re-serialised (the signature covers the exact bytes): nothing stored.
    let (status, _) = call_event(&env, instagram_event(id, &body, "another-secret")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let reserialised = serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    let mut event = instagram_event(id, &reserialised, APP_SECRET);
    event.headers_mut().insert("x-hub-signature-256", meta_signature(APP_SECRET, &body).parse().unwrap());
    assert_eq!(call_event(&env, event).await.0, StatusCode::FORBIDDEN);
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
    assert_eq!(count_for(&env, "chatapp_conversations", t.company_id).await, 0);

    // The real one, base64-encoded by API Gateway: stored once; a redelivery stores nothing new.
    let (status, stored) = call_event(&env, instagram_event(id, &body, APP_SECRET)).await;
    assert_eq!((status, stored["stored"].clone()), (StatusCode::OK, json!(1)), "{stored}");
    let (status, again) = call_event(&env, instagram_event(id, &body, APP_SECRET)).await;
    assert_eq!((status, again["stored"].clone(), again["duplicates"].clone()), (StatusCode::OK, json!(0), json!(1)));

    // The account's own echo is not a customer message.
    let echo = json!({"object": "instagram", "entry": [{"id": "IGID", "time": 1, "messaging": [{
        "sender": {"id": "IGID"}, "recipient": {"id": "IGSID"}, "timestamp": 1,
        "message": {"mid": "m_echo", "text": "our own reply", "is_echo": true}}]}]})
    .to_string();
    let (status, ignored) = call_event(&env, instagram_event(id, echo.as_bytes(), APP_SECRET)).await;
    assert_eq!((status, ignored["stored"].clone(), ignored["ignored"].clone()), (StatusCode::OK, json!(0), json!(1)));

    run_workers(&env).await;
    let sent = received(&server, "/v21.0/me/messages").await;
    let texts: Vec<&Value> = sent.iter().filter(|b| b.get("message").is_some()).collect();
    assert_eq!(texts.len(), 1, "one reply, sent once: {sent:?}");
    assert_eq!(texts[0]["recipient"]["id"], "IGSID");
    assert!(!texts[0]["message"]["text"].as_str().unwrap().is_empty());
    let conv = env
        .owner()
        .await
        .query_one("SELECT channel::text FROM chatapp_conversations WHERE company_id = $1", &[&t.company_id])
        .await
        .unwrap();
    assert_eq!(conv.get::<_, String>(0), "instagram");
}

async fn messenger_channel(env: &TestEnv, slug: &str) -> (chatapp_tests::Tenant, Uuid, String) {
    let (t, agent) = company_with_agent(env, slug).await;
    let (id, r) = create_channel(
        env,
        &t,
        agent,
        "messenger",
        json!({"access_token": "EAAG-page", "app_secret": APP_SECRET, "page_id": "PAGE_ID"}),
    )
    .await;
    (t, id, r.body["verify_token"].as_str().unwrap().to_string())
}

/// The recorded Messenger payload, sent `age_ms` ago.
fn messenger_payload(age_ms: i64) -> Vec<u8> {
    let at = chrono::Utc::now().timestamp_millis() - age_ms;
    String::from_utf8(fixture("messenger-text.json")).unwrap().replace("1458692752478", &at.to_string()).into_bytes()
}

fn messenger_signed(config: Uuid, body: &[u8], secret: &str) -> chatapp_tests::Req {
    webhook("messenger", config, body).header("x-hub-signature-256", &meta_signature(secret, body))
}

#[tokio::test]
async fn messenger_answers_its_handshake_refuses_forgeries_and_stores_a_redelivery_once() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (t, id, verify) = messenger_channel(&env, "fb-verify").await;
    let path = format!("/channels/messenger/{id}?hub.mode=subscribe&hub.verify_token={verify}&hub.challenge=77");
    let hs = env.send(function("messenger"), Req::get(&path)).await;
    assert_eq!((hs.status, hs.body.clone()), (StatusCode::OK, json!(77)));
    let wrong = env
        .send(
            function("messenger"),
            Req::get(&format!("/channels/messenger/{id}?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1")),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);

    let body = messenger_payload(0);
    let forged = env.send(function("messenger"), messenger_signed(id, &body, "another-secret")).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    let unsigned = env.send(function("messenger"), webhook("messenger", id, &body)).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED, "{}", unsigned.body);
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);

    let r = env.send(function("messenger"), messenger_signed(id, &body, APP_SECRET)).await;
    assert_eq!((r.status, r.body["stored"].clone()), (StatusCode::OK, json!(1)), "{}", r.body);
    let again = env.send(function("messenger"), messenger_signed(id, &body, APP_SECRET)).await;
    assert_eq!((again.body["stored"].clone(), again.body["duplicates"].clone()), (json!(0), json!(1)));
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 1);
}

#[tokio::test]
async fn a_messenger_reply_outside_the_24_hour_window_fails_clearly_and_is_not_sent() {
    let server = MockServer::start().await;
    page_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = messenger_channel(&env, "fb-window").await;
    let r =
        env.send(function("messenger"), messenger_signed(id, &messenger_payload(25 * 3600 * 1000), APP_SECRET)).await;
    assert_eq!(r.body["stored"], 1, "{}", r.body);
    run_workers(&env).await;
    assert_eq!(
        deliveries(&env, t.company_id).await,
        vec![("failed".to_string(), 0, Some("outside_window".to_string()))]
    );
    let sent = received(&server, "/v21.0/me/messages").await;
    assert!(sent.iter().all(|b| b.get("message").is_none()), "no reply sent: {sent:?}");
}

/// Messenger's and Instagram's recorded payloads, sent now.
fn meta_payload(channel: &str) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp_millis().to_string();
    match channel {
        "messenger" => messenger_payload(0),
        _ => String::from_utf8(fixture("instagram-text.json")).unwrap().replace("1569262485349", &now).into_bytes(),
    }
}

#[tokio::test]
async fn every_forgery_is_refused_on_messenger_and_instagram_and_a_redelivery_is_answered_once() {
    let server = MockServer::start().await;
    page_accepts(&server).await;
    let env = env_with_providers(&server).await;
    for channel in ["messenger", "instagram"] {
        let (t, agent) = company_with_agent(&env, &format!("{channel}-a")).await;
        let page = if channel == "messenger" { "PAGE_ID" } else { "IGID" };
        let credentials = json!({"access_token": "EAAG-page", "app_secret": APP_SECRET, "page_id": page});
        let (id, _) = create_channel(&env, &t, agent, channel, credentials).await;
        // Another company with a channel of the same kind and its own secret.
        let (b, agent_b) = company_with_agent(&env, &format!("{channel}-b")).await;
        let theirs = json!({"access_token": "EAAG-b", "app_secret": "company-b-secret", "page_id": "PAGE_B"});
        create_channel(&env, &b, agent_b, channel, theirs).await;

        let body = meta_payload(channel);
        let good = meta_signature(APP_SECRET, &body);
        let mut flipped = body.clone();
        let at = body.len() / 2;
        flipped[at] ^= 0x01;
        let reserialised = serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
        let cases: Vec<(&str, chatapp_tests::Req, StatusCode)> = vec![
            (
                "flipped byte",
                webhook(channel, id, &flipped).header("x-hub-signature-256", &good),
                StatusCode::FORBIDDEN,
            ),
            (
                "wrong secret",
                webhook(channel, id, &body).header("x-hub-signature-256", &meta_signature("wrong", &body)),
                StatusCode::FORBIDDEN,
            ),
            (
                "another company's secret",
                webhook(channel, id, &body).header("x-hub-signature-256", &meta_signature("company-b-secret", &body)),
                StatusCode::FORBIDDEN,
            ),
            ("missing header", webhook(channel, id, &body), StatusCode::UNAUTHORIZED),
            (
                "re-serialised body",
                webhook(channel, id, &reserialised).header("x-hub-signature-256", &good),
                StatusCode::FORBIDDEN,
            ),
        ];
        for (name, req, want) in cases {
            let r = env.send(function(channel), req).await;
            assert_eq!(r.status, want, "{channel}, {name}: {}", r.body);
        }
        for company in [t.company_id, b.company_id] {
            assert_eq!(count_for(&env, "chatapp_channel_inbound", company).await, 0, "{channel}");
            assert_eq!(count_for(&env, "chatapp_conversations", company).await, 0, "{channel}");
        }
        assert_eq!(env.count("chatapp_outbox").await, 0, "{channel}");

        // The genuine request, then its redelivery: stored once, answered once.
        let before =
            received(&server, "/v21.0/me/messages").await.iter().filter(|b| b.get("message").is_some()).count();
        for expected in [1, 0] {
            let r = env.send(function(channel), webhook(channel, id, &body).header("x-hub-signature-256", &good)).await;
            assert_eq!(
                (r.status, r.body["stored"].clone()),
                (StatusCode::OK, json!(expected)),
                "{channel}: {}",
                r.body
            );
            run_workers(&env).await;
        }
        let sent = received(&server, "/v21.0/me/messages").await;
        let replies = sent.iter().filter(|b| b.get("message").is_some()).count() - before;
        assert_eq!(replies, 1, "{channel}: one reply for a redelivered message: {sent:?}");
        assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 1, "{channel}");
    }
}

/// The company's conversations, oldest first: (id, agent, status).
async fn conversations(env: &TestEnv, company: Uuid) -> Vec<(Uuid, Uuid, String)> {
    env.owner()
        .await
        .query(
            "SELECT id, agent_id, status::text FROM chatapp_conversations WHERE company_id = $1 ORDER BY created_at, id",
            &[&company],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn a_customer_writing_after_a_resolution_starts_a_new_conversation_with_the_channels_agent_then() {
    let server = MockServer::start().await;
    graph_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = whatsapp_channel(&env, "wa-again").await;
    let first_agent: Uuid = env
        .owner()
        .await
        .query_one("SELECT agent_id FROM chatapp_channel_configs WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);

    // Two messages while the conversation is open: one conversation.
    for n in 1..=2 {
        let r = env.send(function("whatsapp"), signed(id, &whatsapp_payload(Some(&format!("wamid.open{n}"))))).await;
        assert_eq!(r.body["stored"], 1, "{}", r.body);
        run_workers(&env).await;
    }
    let open = conversations(&env, t.company_id).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!((open[0].1, open[0].2.as_str()), (first_agent, "active"));

    // Resolved; the channel now answered by another agent of the company (PATCH).
    let r = env
        .send(
            HttpFunction::Inbox,
            Req::post(&format!("/inbox/conversations/{}/resolve", open[0].0)).token(&t.admin_token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let second_agent: Uuid = env
        .owner()
        .await
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, system_prompt)
             VALUES ($1, 'Bo', 'active', 'You help customers of Acme too.') RETURNING id",
            &[&t.company_id],
        )
        .await
        .unwrap()
        .get(0);
    let r = env
        .send(
            HttpFunction::Channels,
            Req::patch(&format!("/admin/channels/{id}")).token(&t.admin_token).json(json!({"agent_id": second_agent})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["agent_id"], json!(second_agent), "{}", r.body);

    // The customer writes again: a new conversation, with the agent the channel has now; the
    // resolved one stays as it was.
    let r = env.send(function("whatsapp"), signed(id, &whatsapp_payload(Some("wamid.later")))).await;
    assert_eq!(r.body["stored"], 1, "{}", r.body);
    assert_eq!(run_workers(&env).await, (1, 1));
    let all = conversations(&env, t.company_id).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!((all[0].0, all[0].2.as_str()), (open[0].0, "resolved"));
    assert_eq!((all[1].1, all[1].2.as_str()), (second_agent, "active"));
    let replies = received(&server, "/v21.0/106540352242922/messages").await;
    assert_eq!(replies.iter().filter(|b| b["type"] == "text").count(), 3, "one reply per message: {replies:?}");
}

#[tokio::test]
async fn a_rate_limited_messenger_reply_is_retried_and_sent_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v21.0/me/messages"))
        // Only the reply: sender actions (typing) go to the same path.
        .and(body_partial_json(json!({"messaging_type": "RESPONSE"})))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1").set_body_json(
            json!({"error": {"message": "(#613) Calls to this api have exceeded the rate limit.", "code": 613}}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    page_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = messenger_channel(&env, "fb-429").await;
    let r = env.send(function("messenger"), messenger_signed(id, &messenger_payload(0), APP_SECRET)).await;
    assert_eq!(r.body["stored"], 1, "{}", r.body);
    run_workers(&env).await;
    let sent = received(&server, "/v21.0/me/messages").await;
    assert_eq!(sent.iter().filter(|b| b.get("message").is_some()).count(), 2, "refused once, then accepted: {sent:?}");
    assert_eq!(deliveries(&env, t.company_id).await, vec![("sent".to_string(), 1, None)]);
}

#[tokio::test]
async fn a_long_human_reply_on_messenger_is_split_within_its_2000_character_limit() {
    let server = MockServer::start().await;
    page_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = messenger_channel(&env, "fb-split").await;
    env.send(function("messenger"), messenger_signed(id, &messenger_payload(0), APP_SECRET)).await;
    run_workers(&env).await;
    let conversation = the_conversation(&env, t.company_id).await;
    claim(&env, &t, conversation).await;
    let texts = |sent: &[Value]| -> Vec<String> {
        sent.iter().filter_map(|b| b["message"]["text"].as_str().map(str::to_string)).collect()
    };
    let before = texts(&received(&server, "/v21.0/me/messages").await).len();

    // 1,022 + 2 + 1,352 characters: too long for one message, each paragraph fits one.
    let paragraph = |n: usize| vec!["The parcel left our depot today."; n].join(" ");
    let reply = [paragraph(31), paragraph(41)].join("\n\n");
    assert!(reply.chars().count() > 2000);
    human_reply(&env, &t, conversation, &reply).await;
    run_workers(&env).await;

    let sent = received(&server, "/v21.0/me/messages").await;
    let parts = texts(&sent)[before..].to_vec();
    assert_eq!(parts.len(), 2, "{:?}", parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>());
    for p in &parts {
        assert!(!p.is_empty() && p.chars().count() <= 2000, "a part of {} chars", p.chars().count());
    }
    assert_eq!(parts.join("\n\n"), reply, "nothing lost or altered");
    assert!(sent.iter().filter(|b| b.get("message").is_some()).all(|b| b["recipient"]["id"] == "PSID"));
    assert_eq!(deliveries(&env, t.company_id).await.last(), Some(&("sent".to_string(), 2, None)));
}

#[tokio::test]
async fn a_messenger_batch_is_split_and_its_delivery_receipt_is_not_a_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v21.0/me/messages"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"recipient_id": "PSID", "message_id": "m_reply"})),
        )
        .mount(&server)
        .await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = messenger_channel(&env, "fb-batch").await;
    let now = chrono::Utc::now().timestamp_millis();
    let event = |sender: &str, mid: &str, text: &str| {
        json!({"sender": {"id": sender}, "recipient": {"id": "PAGE_ID"}, "timestamp": now,
               "message": {"mid": mid, "text": text}})
    };
    let body = json!({"object": "page", "entry": [
        {"id": "PAGE_ID", "time": now, "messaging": [event("PSID_A", "m_a1", "hello"), event("PSID_B", "m_b1", "hi")]},
        {"id": "PAGE_ID", "time": now, "messaging": [event("PSID_A", "m_a2", "are you there?")]},
    ]})
    .to_string();
    let r = env.send(function("messenger"), messenger_signed(id, body.as_bytes(), APP_SECRET)).await;
    assert_eq!((r.status, r.body["stored"].clone()), (StatusCode::OK, json!(3)), "{}", r.body);
    // Two people, two conversations, three turns.
    assert_eq!(count_for(&env, "chatapp_conversations", t.company_id).await, 2);
    assert_eq!(run_workers(&env).await, (3, 3));

    // Messenger reports our reply delivered: a receipt, not a customer message.
    let receipt = json!({"object": "page", "entry": [{"id": "PAGE_ID", "time": now, "messaging": [
        {"sender": {"id": "PSID_B"}, "recipient": {"id": "PAGE_ID"}, "timestamp": now,
         "delivery": {"mids": ["m_reply"], "watermark": now}}]}]})
    .to_string();
    let r = env.send(function("messenger"), messenger_signed(id, receipt.as_bytes(), APP_SECRET)).await;
    // (The provider server gives every reply the id `m_reply`: the receipt names all three.)
    assert_eq!(
        (r.status, r.body["stored"].clone(), r.body["receipts"].clone()),
        (StatusCode::OK, json!(0), json!(3)),
        "{}",
        r.body
    );
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 3);
    let statuses: Vec<String> = deliveries(&env, t.company_id).await.into_iter().map(|d| d.0).collect();
    assert_eq!(statuses, ["delivered"; 3]);
}

#[tokio::test]
async fn a_5xx_is_retried_and_a_refusal_fails_with_the_providers_error_shown_in_the_inbox() {
    let server = MockServer::start().await;
    // The first reply meets a server error once, then goes out.
    Mock::given(method("POST"))
        .and(path("/v21.0/106540352242922/messages"))
        .and(body_partial_json(json!({"type": "text", "to": "16505551234"})))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    // A reply to this customer is refused for good.
    Mock::given(method("POST"))
        .and(path("/v21.0/106540352242922/messages"))
        .and(body_partial_json(json!({"type": "text", "to": "15550009999"})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "(#131030) Recipient phone number not in allowed list", "type": "OAuthException",
            "code": 131030, "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}})))
        .with_priority(1)
        .mount(&server)
        .await;
    graph_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, _) = whatsapp_channel(&env, "wa-errors").await;

    env.send(function("whatsapp"), signed(id, &whatsapp_payload(None))).await;
    run_workers(&env).await;
    let first = received(&server, "/v21.0/106540352242922/messages").await;
    assert_eq!(first.iter().filter(|b| b["type"] == "text").count(), 2, "failed once, then sent: {first:?}");
    assert_eq!(deliveries(&env, t.company_id).await, vec![("sent".to_string(), 1, None)]);

    let other = String::from_utf8(whatsapp_payload(Some("wamid.other"))).unwrap().replace("16505551234", "15550009999");
    env.send(function("whatsapp"), signed(id, other.as_bytes())).await;
    run_workers(&env).await;
    let sent = received(&server, "/v21.0/106540352242922/messages").await;
    let refused = sent.iter().filter(|b| b["type"] == "text" && b["to"] == "15550009999").count();
    assert_eq!(refused, 1, "a permanent refusal is not retried: {sent:?}");
    let all = deliveries(&env, t.company_id).await;
    assert_eq!(all[1], ("failed".to_string(), 0, Some("131030".to_string())), "{all:?}");

    // The support team reads why on the conversation.
    let conversation: Uuid = env
        .owner()
        .await
        .query_one(
            "SELECT id FROM chatapp_conversations WHERE company_id = $1 AND external_id = '15550009999'",
            &[&t.company_id],
        )
        .await
        .unwrap()
        .get(0);
    let r = env
        .send(HttpFunction::Inbox, Req::get(&format!("/inbox/conversations/{conversation}")).token(&t.admin_token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let shown = &r.body["deliveries"][0];
    assert_eq!((shown["status"].clone(), shown["error_code"].clone()), (json!("failed"), json!("131030")), "{shown}");
    assert!(shown["error"].as_str().unwrap_or("").contains("not in allowed list"), "{shown}");
    assert_eq!(delivery_events(&env, &t, conversation).await, [("failed".to_string(), Some("131030".to_string()))]);
}
