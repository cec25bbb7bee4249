//! Telegram Bot API: `X-Telegram-Bot-Api-Secret-Token` right, wrong and missing; the recorded
//! update answered once with MarkdownV2 (redeliveries store nothing); edits and bots ignored;
//! groups answered only when the bot is addressed (its name learned by the check action, which
//! also registers the webhook); 429 then success; a support agent's reply escaped and split.

use chatapp_tests::TestEnv;
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const BOT_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
/// The recorded update (`telegram-text.json`): its id, private chat and message.
const UPDATE_ID: i64 = 892252934;
const CHAT: i64 = 218485655;
const MESSAGE_ID: i64 = 6557;
/// A supergroup: group chat ids are negative.
const GROUP: i64 = -1001234567890;

/// A Bot API method's path on the provider server.
fn api(method: &str) -> String {
    format!("/bot{BOT_TOKEN}/{method}")
}

/// A delivery of `body` carrying `secret` in the secret-token header.
fn delivered(config: Uuid, secret: &str, body: &[u8]) -> Req {
    webhook("telegram", config, body).header("x-telegram-bot-api-secret-token", secret)
}

/// The recorded update under `update_id`, its message moved under `key` and changed by `f`.
fn update_with(update_id: i64, key: &str, f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let recorded: Value = serde_json::from_slice(&fixture("telegram-text.json")).unwrap();
    let mut message = recorded["message"].clone();
    f(&mut message);
    serde_json::to_vec(&json!({"update_id": update_id, key: message})).unwrap()
}

/// A message in the supergroup.
fn group_update(update_id: i64, text: &str) -> Vec<u8> {
    update_with(update_id, "message", |m| {
        m["chat"] = json!({"id": GROUP, "title": "Acme customers", "type": "supergroup"});
        m["text"] = json!(text);
    })
}

/// A Telegram channel: (tenant, its id, the secret token shown on create).
async fn telegram_channel(env: &TestEnv, slug: &str) -> (chatapp_tests::Tenant, Uuid, String) {
    let (t, agent) = company_with_agent(env, slug).await;
    let (id, r) = create_channel(env, &t, agent, "telegram", json!({"bot_token": BOT_TOKEN})).await;
    let secret = r.body["secret_token"].as_str().expect("the secret token, shown once").to_string();
    (t, id, secret)
}

async fn telegram_accepts(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(api("sendMessage")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {
            "message_id": 7001, "date": 1, "chat": {"id": CHAT, "type": "private"}, "text": "ok"}})))
        .mount(server)
        .await;
    // The typing indicator sent before each turn.
    Mock::given(method("POST"))
        .and(path(api("sendChatAction")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": true})))
        .mount(server)
        .await;
}

/// Runs the check action against getMe and setWebhook; returns its response.
async fn check(env: &TestEnv, server: &MockServer, t: &chatapp_tests::Tenant, id: Uuid) -> Resp {
    Mock::given(method("POST"))
        .and(path(api("getMe")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {
            "id": 1, "is_bot": true, "first_name": "Acme", "username": "AcmeBot"}})))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(api("setWebhook")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": true})))
        .mount(server)
        .await;
    env.send(HttpFunction::Channels, Req::post(&format!("/admin/channels/{id}/check")).token(&t.admin_token)).await
}

/// The admin claims the company's conversation in the inbox and replies `content` to the customer.
async fn agent_reply(env: &TestEnv, t: &chatapp_tests::Tenant, content: &str) {
    let conversation = the_conversation(env, t.company_id).await;
    claim(env, t, conversation).await;
    human_reply(env, t, conversation, content).await;
}

/// MarkdownV2 as Telegram documents it: each of these characters escaped with a backslash.
fn markdown_v2(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "_*[]()~`>#+-=|{}.!\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[tokio::test]
async fn the_secret_token_header_is_required_and_must_match() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (t, id, secret) = telegram_channel(&env, "tg-secret").await;
    let body = fixture("telegram-text.json");
    let wrong = env.send(function("telegram"), delivered(id, "not-the-secret-token", &body)).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.body);
    let missing = env.send(function("telegram"), webhook("telegram", id, &body)).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED, "{}", missing.body);
    // Another company's bot and its own secret token, on this company's channel id.
    let (other, other_id, other_secret) = telegram_channel(&env, "tg-secret-other").await;
    let crossed = env.send(function("telegram"), delivered(id, &other_secret, &body)).await;
    assert_eq!(crossed.status, StatusCode::FORBIDDEN, "{}", crossed.body);
    assert_ne!(other_id, id);
    assert_eq!(count_for(&env, "chatapp_channel_inbound", other.company_id).await, 0);
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
    assert_eq!(count_for(&env, "chatapp_conversations", t.company_id).await, 0);

    let ok = env.send(function("telegram"), delivered(id, &secret, &body)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["stored"], 1);
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 1);
}

#[tokio::test]
async fn a_telegram_message_is_answered_once_even_when_redelivered() {
    let server = MockServer::start().await;
    telegram_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, secret) = telegram_channel(&env, "tg-flow").await;
    let body = fixture("telegram-text.json");

    let r = env.send(function("telegram"), delivered(id, &secret, &body)).await;
    assert_eq!(r.body["stored"], 1, "{}", r.body);
    // Telegram retries any update it got no 2xx for: the same update_id again.
    let again = env.send(function("telegram"), delivered(id, &secret, &body)).await;
    assert_eq!((again.body["stored"].clone(), again.body["duplicates"].clone()), (json!(0), json!(1)));
    assert_eq!(run_workers(&env).await, (1, 1));
    let late = env.send(function("telegram"), delivered(id, &secret, &body)).await;
    assert_eq!(late.body["stored"], 0, "{}", late.body);
    assert_eq!(run_workers(&env).await, (0, 0));

    let sent = received(&server, &api("sendMessage")).await;
    assert_eq!(sent.len(), 1, "one reply, sent once: {sent:?}");
    assert_eq!(sent[0]["chat_id"], json!(CHAT), "the chat id as a number");
    assert_eq!(sent[0]["parse_mode"], "MarkdownV2");
    assert_eq!(sent[0]["reply_parameters"]["message_id"], json!(MESSAGE_ID));
    assert!(!sent[0]["text"].as_str().unwrap_or("").is_empty(), "{sent:?}");
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 1);
    assert_eq!(deliveries(&env, t.company_id).await, vec![("sent".to_string(), 1, None)]);
}

#[tokio::test]
async fn edits_and_bot_authors_are_ignored() {
    let server = MockServer::start().await;
    telegram_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, secret) = telegram_channel(&env, "tg-ignore").await;
    let edited = update_with(UPDATE_ID + 1, "edited_message", |m| m["text"] = json!("hello there, edited"));
    let from_bot = update_with(UPDATE_ID + 2, "message", |m| m["from"]["is_bot"] = json!(true));
    for (name, body) in [("edited_message", edited), ("from.is_bot", from_bot)] {
        let r = env.send(function("telegram"), delivered(id, &secret, &body)).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.body);
        assert_eq!((r.body["stored"].clone(), r.body["ignored"].clone()), (json!(0), json!(1)), "{name}");
    }
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
    assert_eq!(run_workers(&env).await, (0, 0));
    assert!(received(&server, &api("sendMessage")).await.is_empty());
}

#[tokio::test]
async fn the_check_registers_the_webhook_and_a_group_mention_is_answered_in_the_group() {
    let server = MockServer::start().await;
    telegram_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, secret) = telegram_channel(&env, "tg-group").await;
    let r = check(&env, &server, &t, id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["ok"], true, "{}", r.body);
    // getMe named the bot: group messages are matched against it.
    assert_eq!(r.body["channel"]["credentials_hint"]["bot_username"], "AcmeBot");
    let hooks = received(&server, &api("setWebhook")).await;
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["url"], format!("https://hooks.example.test/channels/telegram/{id}"));
    assert_eq!(hooks[0]["secret_token"], secret.as_str());

    let body = group_update(UPDATE_ID + 10, "@AcmeBot where is my order?");
    let r = env.send(function("telegram"), delivered(id, &secret, &body)).await;
    assert_eq!(r.body["stored"], 1, "{}", r.body);
    assert_eq!(run_workers(&env).await, (1, 1));
    let sent = received(&server, &api("sendMessage")).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["chat_id"], json!(GROUP), "answered in the group, not privately");
}

#[tokio::test]
async fn group_chatter_not_addressed_to_the_bot_is_ignored() {
    let server = MockServer::start().await;
    telegram_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, secret) = telegram_channel(&env, "tg-chatter").await;
    assert_eq!(check(&env, &server, &t, id).await.body["ok"], true);
    let chatter = [(UPDATE_ID + 20, "just chatting about the weekend"), (UPDATE_ID + 21, "ask @OtherBot about it")];
    for (update_id, text) in chatter {
        let r = env.send(function("telegram"), delivered(id, &secret, &group_update(update_id, text))).await;
        assert_eq!(r.status, StatusCode::OK, "{text}: {}", r.body);
        assert_eq!((r.body["stored"].clone(), r.body["ignored"].clone()), (json!(0), json!(1)), "{text}");
    }
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
    assert_eq!(run_workers(&env).await, (0, 0));
    assert!(received(&server, &api("sendMessage")).await.is_empty());
}

#[tokio::test]
async fn a_rate_limited_send_is_retried_after_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("sendMessage")))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"ok": false, "error_code": 429,
            "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    telegram_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, secret) = telegram_channel(&env, "tg-429").await;
    env.send(function("telegram"), delivered(id, &secret, &fixture("telegram-text.json"))).await;
    run_workers(&env).await;
    let sent = received(&server, &api("sendMessage")).await;
    assert_eq!(sent.len(), 2, "refused once, then accepted: {sent:?}");
    assert_eq!(sent[0], sent[1], "the same message again");
    assert_eq!(deliveries(&env, t.company_id).await, vec![("sent".to_string(), 1, None)]);
}

#[tokio::test]
async fn a_support_agents_reply_is_escaped_for_markdown_v2() {
    let server = MockServer::start().await;
    telegram_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, secret) = telegram_channel(&env, "tg-escape").await;
    env.send(function("telegram"), delivered(id, &secret, &fixture("telegram-text.json"))).await;
    run_workers(&env).await;
    agent_reply(&env, &t, "Price: 5.00 (incl. tax) - see #faq!").await;
    run_workers(&env).await;
    let sent = received(&server, &api("sendMessage")).await;
    let last = sent.last().unwrap();
    // One unescaped `.`, `(`, `-`, `#` or `!` and Telegram rejects the whole message.
    assert_eq!(last["text"], r"Price: 5\.00 \(incl\. tax\) \- see \#faq\!");
    assert_eq!(last["parse_mode"], "MarkdownV2");
    assert_eq!(last["chat_id"], json!(CHAT));
}

#[tokio::test]
async fn a_long_reply_is_split_into_parts_within_telegrams_limit() {
    let server = MockServer::start().await;
    telegram_accepts(&server).await;
    let env = env_with_providers(&server).await;
    let (t, id, secret) = telegram_channel(&env, "tg-split").await;
    env.send(function("telegram"), delivered(id, &secret, &fixture("telegram-text.json"))).await;
    run_workers(&env).await;
    let before = received(&server, &api("sendMessage")).await.len();

    // An agent may send at most 4,000 characters, but escaping makes this one 5,643 (30 for each
    // 20-character sentence): past Telegram's 4,096. The cuts fall on the paragraph breaks, and
    // no two neighbouring paragraphs fit together (1,456 + 2 + 2,727 > 4,096): three parts.
    let paragraph = |n: usize| vec!["Sum (1.5+2.5)={4.0}."; n].join(" ");
    let reply = [paragraph(47), paragraph(88), paragraph(47)].join("\n\n");
    assert!(reply.chars().count() <= 4000, "within the inbox's limit");
    assert!(markdown_v2(&reply).chars().count() > 4096, "too long for one message once escaped");
    agent_reply(&env, &t, &reply).await;
    run_workers(&env).await;

    let sent = received(&server, &api("sendMessage")).await;
    let parts: Vec<&str> = sent[before..].iter().map(|b| b["text"].as_str().unwrap_or("")).collect();
    assert_eq!(parts.len(), 3, "{:?}", parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>());
    for p in &parts {
        assert!(!p.is_empty() && p.chars().count() <= 4096, "a part of {} chars", p.chars().count());
    }
    // Nothing lost or altered: the parts, rejoined, are the whole reply escaped.
    assert_eq!(parts.join("\n\n"), markdown_v2(&reply));
    assert!(sent[before..].iter().all(|b| b["chat_id"] == json!(CHAT) && b["parse_mode"] == "MarkdownV2"));
    assert_eq!(deliveries(&env, t.company_id).await.last(), Some(&("sent".to_string(), 3, None)));
}
