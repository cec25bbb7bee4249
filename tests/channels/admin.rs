//! The admin routes of the `channels` function: credentials checked field by field, sealed and
//! never returned (nor stored in clear), the platform's verify token shown once and rotated,
//! plan limits, roles, cross-tenant ids, filters and pages, disable / enable as the webhook sees
//! them, the provider check, and the audit trail of every change.

use chatapp_tests::{Resp, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const APP_SECRET: &str = "very-secret-app-secret";
const ACCESS_TOKEN: &str = "EAAG-very-secret-access-token";
const SECRETS: [&str; 2] = [APP_SECRET, ACCESS_TOKEN];
const PHONE: &str = "106540352242922";
const BOT_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

fn wa_credentials() -> Value {
    json!({"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "phone_number_id": PHONE})
}

/// A request to the channels function as the holder of `token`.
async fn call(env: &TestEnv, token: &str, req: Req) -> Resp {
    env.send(HttpFunction::Channels, req.token(token)).await
}

/// None of `secrets` anywhere in the response body.
fn assert_hidden(r: &Resp, secrets: &[&str]) {
    let text = r.body.to_string();
    for s in secrets {
        assert!(!text.contains(s), "a secret in a response ({}): {text}", r.status);
    }
}

fn strs(ids: &[Uuid]) -> Vec<String> {
    ids.iter().map(Uuid::to_string).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn add_agent(env: &TestEnv, company: Uuid, name: &str) -> Uuid {
    env.owner()
        .await
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, system_prompt)
             VALUES ($1, $2, 'active', 'You help customers.') RETURNING id",
            &[&company, &name],
        )
        .await
        .unwrap()
        .get(0)
}

/// A company on `plan` with an active agent.
async fn company_on(env: &TestEnv, slug: &str, plan: &str) -> (Tenant, Uuid) {
    let t = env.company(slug, plan).await;
    let agent = add_agent(env, t.company_id, "Ada").await;
    (t, agent)
}

/// An enterprise company with a WhatsApp channel: (tenant, agent, channel id, verify token).
async fn whatsapp_channel(env: &TestEnv, slug: &str) -> (Tenant, Uuid, Uuid, String) {
    let (t, agent) = company_with_agent(env, slug).await;
    let (id, r) = create_channel(env, &t, agent, "whatsapp", wa_credentials()).await;
    let verify = r.body["verify_token"].as_str().expect("a verify token").to_string();
    (t, agent, id, verify)
}

/// Meta's GET handshake with `verify` as the token.
async fn handshake(env: &TestEnv, id: Uuid, verify: &str) -> Resp {
    let url = format!("/channels/whatsapp/{id}?hub.mode=subscribe&hub.verify_token={verify}&hub.challenge=42");
    env.send(function("whatsapp"), Req::get(&url)).await
}

/// The recorded WhatsApp message, signed with `secret`.
fn signed(id: Uuid, secret: &str) -> Req {
    let body = fixture("whatsapp-text.json");
    webhook("whatsapp", id, &body).header("x-hub-signature-256", &meta_signature(secret, &body))
}

async fn graph_number(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(format!("/v21.0/{PHONE}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": PHONE, "display_phone_number": "15550783881", "verified_name": "Acme"})),
        )
        .mount(server)
        .await;
}

#[tokio::test]
async fn credentials_are_never_returned_nor_stored_in_clear() {
    let server = MockServer::start().await;
    graph_number(&server).await;
    let env = env_with_providers(&server).await;
    let (t, agent) = company_with_agent(&env, "ch-create").await;
    let (id, created) = create_channel(&env, &t, agent, "whatsapp", wa_credentials()).await;
    assert_eq!(created.body["webhook_url"], format!("https://hooks.example.test/channels/whatsapp/{id}"));
    assert_eq!(created.body["channel"]["webhook_url"], created.body["webhook_url"]);
    assert_eq!(created.body["channel"]["credentials_hint"]["phone_number_id"], PHONE);
    assert_eq!(created.body["channel"]["is_active"], true);
    let verify = created.body["verify_token"].as_str().unwrap().to_string();
    assert!(verify.len() >= 32, "a generated verify token: {verify}");

    let admin = t.admin_token.as_str();
    let list = call(&env, admin, Req::get("/admin/channels")).await;
    assert_eq!((list.status, list.body["total"].clone()), (StatusCode::OK, json!(1)), "{}", list.body);
    let one = call(&env, admin, Req::get(&format!("/admin/channels/{id}"))).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    let updated =
        call(&env, admin, Req::patch(&format!("/admin/channels/{id}")).json(json!({"name": "Support line"}))).await;
    assert_eq!((updated.status, updated.body["name"].clone()), (StatusCode::OK, json!("Support line")));
    let checked = call(&env, admin, Req::post(&format!("/admin/channels/{id}/check"))).await;
    assert_eq!((checked.status, checked.body["ok"].clone()), (StatusCode::OK, json!(true)), "{}", checked.body);
    let rotated = call(&env, admin, Req::post(&format!("/admin/channels/{id}/rotate-secret"))).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new_verify = rotated.body["verify_token"].as_str().unwrap().to_string();

    for r in [&created, &list, &one, &updated, &checked, &rotated] {
        assert_hidden(r, &SECRETS);
    }
    // The verify token is shown on create and rotation only.
    for r in [&list, &one, &updated, &checked] {
        assert_hidden(r, &[verify.as_str(), new_verify.as_str()]);
    }

    // In the database: the old clear-text columns stay empty, the sealed bytes hide everything.
    let owner = env.owner().await;
    let row = owner
        .query_one(
            "SELECT credentials::text, credentials_sealed, webhook_secret FROM chatapp_channel_configs WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let (clear, sealed, webhook_secret): (String, Option<Vec<u8>>, Option<String>) =
        (row.get(0), row.get(1), row.get(2));
    let sealed = sealed.expect("sealed credentials");
    for s in [APP_SECRET, ACCESS_TOKEN, verify.as_str(), new_verify.as_str()] {
        assert!(!clear.contains(s), "credentials in clear: {clear}");
        assert!(!contains(&sealed, s.as_bytes()), "a secret readable in the sealed bytes");
    }
    assert_eq!(webhook_secret, None);
    // The audit trail records before/after of the configuration, never its secrets.
    let audit: String = owner
        .query_one("SELECT COALESCE(string_agg(details::text, ' '), '') FROM chatapp_audit_logs", &[])
        .await
        .unwrap()
        .get(0);
    for s in [APP_SECRET, ACCESS_TOKEN, verify.as_str(), new_verify.as_str()] {
        assert!(!audit.contains(s), "a secret in the audit log");
    }
    assert_eq!(env.audit_count("channel.create").await, 1);
    assert_eq!(env.audit_count("channel.update").await, 1);
}

#[tokio::test]
async fn invalid_configurations_answer_400_naming_the_field_and_store_nothing() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (t, agent) = company_with_agent(&env, "ch-invalid").await;
    let wa = |credentials: Value| json!({"agent_id": agent, "channel": "whatsapp", "credentials": credentials});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("missing app_secret", wa(json!({"access_token": ACCESS_TOKEN, "phone_number_id": PHONE})), "app_secret"),
        (
            "unknown credential",
            wa(json!({"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "phone_number_id": PHONE, "extra": "x"})),
            "extra",
        ),
        // The verify token is the platform's to generate, never the admin's to choose.
        (
            "verify token given",
            wa(
                json!({"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "phone_number_id": PHONE, "verify_token": "mine"}),
            ),
            "credentials.verify_token",
        ),
        (
            "WhatsApp without its number",
            wa(json!({"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET})),
            "phone_number_id",
        ),
        // Well-formed JSON of the wrong shape: JsonBody's validation_failed, naming the variant.
        ("unknown channel", json!({"agent_id": agent, "channel": "fax", "credentials": {}}), "fax"),
        (
            "a WhatsApp template on Telegram",
            json!({"agent_id": agent, "channel": "telegram", "credentials": {"bot_token": BOT_TOKEN},
                   "settings": {"window_template": {"name": "follow_up", "language": "en_US"}}}),
            "settings.window_template",
        ),
    ];
    for (name, body, field) in cases {
        let r = call(&env, &t.admin_token, Req::post("/admin/channels").json(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.body);
        assert_eq!(r.code(), "validation_failed", "{name}: {}", r.body);
        let message = r.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(field), "{name}: the message should name {field}: {message}");
        assert_hidden(&r, &SECRETS);
    }
    assert_eq!(count_for(&env, "chatapp_channel_configs", t.company_id).await, 0);
    assert_eq!(env.audit_count("channel.create").await, 0);
}

#[tokio::test]
async fn the_plan_decides_which_channels_a_company_may_connect() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let create = |agent: Uuid, channel: &str, credentials: Value| {
        Req::post("/admin/channels").json(json!({"agent_id": agent, "channel": channel, "credentials": credentials}))
    };
    // Free: the web widget only.
    let (free, free_agent) = company_on(&env, "ch-free", "free").await;
    let r = call(&env, &free.admin_token, create(free_agent, "whatsapp", wa_credentials())).await;
    assert_eq!((r.status, r.code()), (StatusCode::PAYMENT_REQUIRED, "channel_not_in_plan"), "{}", r.body);
    assert_eq!(count_for(&env, "chatapp_channel_configs", free.company_id).await, 0);

    // Professional: Telegram yes, Teams no.
    let (pro, pro_agent) = company_on(&env, "ch-pro", "professional").await;
    let (tg, created) = create_channel(&env, &pro, pro_agent, "telegram", json!({"bot_token": BOT_TOKEN})).await;
    assert_eq!(created.body["webhook_url"], format!("https://hooks.example.test/channels/telegram/{tg}"));
    assert!(created.body["secret_token"].as_str().is_some_and(|s| !s.is_empty()), "{}", created.body);
    assert!(created.body.get("verify_token").is_none());
    assert_eq!(created.body["channel"]["credentials_hint"]["bot_id"], "123456789");
    assert_hidden(&created, &["AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"]);
    let teams = json!({"app_id": "c9e8c047-2a74-40a2-b28a-b162d5f5327c", "app_password": "teams-password"});
    let r = call(&env, &pro.admin_token, create(pro_agent, "teams", teams)).await;
    assert_eq!((r.status, r.code()), (StatusCode::PAYMENT_REQUIRED, "channel_not_in_plan"), "{}", r.body);
    assert_eq!(count_for(&env, "chatapp_channel_configs", pro.company_id).await, 1);
}

#[tokio::test]
async fn another_companys_channel_and_agent_ids_are_not_found() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (a, a_agent, id, verify) = whatsapp_channel(&env, "ch-a").await;
    let (b, _) = company_with_agent(&env, "ch-b").await;
    let one = format!("/admin/channels/{id}");
    let requests = vec![
        ("get", Req::get(&one)),
        ("rename", Req::patch(&one).json(json!({"name": "taken over"}))),
        ("new credentials", Req::patch(&one).json(json!({"credentials": wa_credentials()}))),
        ("delete", Req::delete(&one)),
        ("check", Req::post(&format!("{one}/check"))),
        ("disable", Req::post(&format!("{one}/disable"))),
        ("enable", Req::post(&format!("{one}/enable"))),
        ("rotate", Req::post(&format!("{one}/rotate-secret"))),
    ];
    for (name, req) in requests {
        let r = call(&env, &b.admin_token, req).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{name}: {}", r.body);
    }
    // Connecting A's agent from B is as if the agent did not exist.
    let r = call(
        &env,
        &b.admin_token,
        Req::post("/admin/channels")
            .json(json!({"agent_id": a_agent, "channel": "whatsapp", "credentials": wa_credentials()})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(count_for(&env, "chatapp_channel_configs", b.company_id).await, 0);
    let listed = call(&env, &b.admin_token, Req::get(&format!("/admin/channels?agent_id={a_agent}"))).await;
    assert_eq!(listed.body["total"], 0, "{}", listed.body);

    // A's channel is untouched and still answers Meta.
    let mine = call(&env, &a.admin_token, Req::get(&one)).await;
    assert_eq!((mine.body["name"].clone(), mine.body["is_active"].clone()), (json!("whatsapp line"), json!(true)));
    assert_eq!(handshake(&env, id, &verify).await.status, StatusCode::OK);
    for action in ["channel.update", "channel.delete", "channel.disable", "channel.check", "channel.secret_rotate"] {
        assert_eq!(env.audit_count(action).await, 0, "{action}");
    }
}

#[tokio::test]
async fn a_support_agent_may_not_read_or_change_channels() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (t, agent) = company_with_agent(&env, "ch-roles").await;
    let (id, _) = create_channel(&env, &t, agent, "whatsapp", wa_credentials()).await;
    let (_, sa) = env.member(&t, "sa@x.test", "support_agent", json!({})).await;
    let list = call(&env, &sa, Req::get("/admin/channels")).await;
    assert_eq!(list.status, StatusCode::FORBIDDEN, "{}", list.body);
    let one = call(&env, &sa, Req::get(&format!("/admin/channels/{id}"))).await;
    assert_eq!(one.status, StatusCode::FORBIDDEN, "{}", one.body);
    let body = json!({"agent_id": agent, "channel": "whatsapp", "credentials": wa_credentials()});
    let create = call(&env, &sa, Req::post("/admin/channels").json(body)).await;
    assert_eq!(create.status, StatusCode::FORBIDDEN, "{}", create.body);
    assert_eq!(count_for(&env, "chatapp_channel_configs", t.company_id).await, 1);
}

#[tokio::test]
async fn the_list_filters_by_channel_and_agent_and_pages_with_totals() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (t, agent) = company_with_agent(&env, "ch-list").await;
    let other = add_agent(&env, t.company_id, "Bea").await;
    let (wa1, _) = create_channel(&env, &t, agent, "whatsapp", wa_credentials()).await;
    let (tg, _) = create_channel(&env, &t, agent, "telegram", json!({"bot_token": BOT_TOKEN})).await;
    let wa2_creds = json!({"access_token": "EAAG-other", "app_secret": "other-app-secret", "phone_number_id": "222"});
    let (wa2, _) = create_channel(&env, &t, other, "whatsapp", wa2_creds).await;

    let list = |query: String| call(&env, &t.admin_token, Req::get(&format!("/admin/channels{query}")));
    let ids = |r: &Resp| -> Vec<String> {
        r.body["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
    };

    let all = list(String::new()).await;
    assert_eq!(all.body["total"], 3, "{}", all.body);
    assert_eq!(ids(&all), strs(&[wa2, tg, wa1]), "newest first");
    let whatsapp = list("?channel=whatsapp".into()).await;
    assert_eq!((whatsapp.body["total"].clone(), ids(&whatsapp)), (json!(2), strs(&[wa2, wa1])));
    let of_other = list(format!("?agent_id={other}")).await;
    assert_eq!((of_other.body["total"].clone(), ids(&of_other)), (json!(1), strs(&[wa2])));
    let both = list(format!("?channel=telegram&agent_id={agent}")).await;
    assert_eq!((both.body["total"].clone(), ids(&both)), (json!(1), strs(&[tg])));
    // A page holds `limit` items; the total counts them all.
    let page = list("?limit=1&offset=1".into()).await;
    assert_eq!(ids(&page), strs(&[tg]));
    assert_eq!(
        (page.body["total"].clone(), page.body["limit"].clone(), page.body["offset"].clone()),
        (json!(3), json!(1), json!(1))
    );
    let page = list(format!("?channel=whatsapp&limit=1&offset=1&agent_id={agent}")).await;
    assert_eq!((page.body["total"].clone(), ids(&page)), (json!(1), Vec::<String>::new()));
    for bad in ["?channel=fax", "?agent_id=not-a-uuid"] {
        let r = list(bad.into()).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "validation_failed"), "{bad}: {}", r.body);
    }
}

#[tokio::test]
async fn rotating_the_secret_retires_the_old_verify_token() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (t, _, id, old) = whatsapp_channel(&env, "ch-rotate").await;
    assert_eq!(handshake(&env, id, &old).await.status, StatusCode::OK);
    let r = call(&env, &t.admin_token, Req::post(&format!("/admin/channels/{id}/rotate-secret"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let new = r.body["verify_token"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(r.body["webhook_url"], format!("https://hooks.example.test/channels/whatsapp/{id}"), "the URL stays");
    assert!(r.body["channel"]["secret_rotated_at"].is_string());
    assert_hidden(&r, &SECRETS);
    assert_eq!(handshake(&env, id, &old).await.status, StatusCode::FORBIDDEN);
    let fresh = handshake(&env, id, &new).await;
    assert_eq!((fresh.status, fresh.body.clone()), (StatusCode::OK, json!(42)));
    assert_eq!(env.audit_count("channel.secret_rotate").await, 1);
}

#[tokio::test]
async fn new_credentials_keep_the_verify_token_and_are_audited_as_a_rotation() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (t, _, id, verify) = whatsapp_channel(&env, "ch-creds").await;
    let one = format!("/admin/channels/{id}");
    let rotated =
        json!({"access_token": "EAAG-rotated-token", "app_secret": "rotated-app-secret", "phone_number_id": PHONE});
    let r = call(&env, &t.admin_token, Req::patch(&one).json(json!({"credentials": rotated}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["is_verified"], false, "new credentials are unchecked");
    assert_hidden(&r, &["EAAG-rotated-token", "rotated-app-secret", APP_SECRET, ACCESS_TOKEN]);
    // Meta's side still holds the same verify token: the handshake keeps working.
    assert_eq!(handshake(&env, id, &verify).await.status, StatusCode::OK);
    // Webhooks are now signed with the new app secret only.
    assert_eq!(env.send(function("whatsapp"), signed(id, APP_SECRET)).await.status, StatusCode::FORBIDDEN);
    let ok = env.send(function("whatsapp"), signed(id, "rotated-app-secret")).await;
    assert_eq!((ok.status, ok.body["stored"].clone()), (StatusCode::OK, json!(1)), "{}", ok.body);
    assert_eq!(env.audit_count("channel.credentials_rotate").await, 1);
    assert_eq!(env.audit_count("channel.update").await, 0);

    // A rotation with a field missing changes nothing.
    let partial = json!({"credentials": {"access_token": "EAAG-x", "phone_number_id": PHONE}});
    let r = call(&env, &t.admin_token, Req::patch(&one).json(partial)).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "validation_failed"), "{}", r.body);
    let again = env.send(function("whatsapp"), signed(id, "rotated-app-secret")).await;
    assert_eq!((again.status, again.body["duplicates"].clone()), (StatusCode::OK, json!(1)), "{}", again.body);
    assert_eq!(env.audit_count("channel.credentials_rotate").await, 1);
}

#[tokio::test]
async fn a_disabled_channel_takes_no_webhooks_until_enabled() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (t, _, id, verify) = whatsapp_channel(&env, "ch-toggle").await;
    let one = format!("/admin/channels/{id}");
    let r = call(&env, &t.admin_token, Req::post(&format!("{one}/disable"))).await;
    assert_eq!((r.status, r.body["is_active"].clone()), (StatusCode::OK, json!(false)), "{}", r.body);
    // To the provider a disabled channel does not exist.
    assert_eq!(handshake(&env, id, &verify).await.status, StatusCode::NOT_FOUND);
    assert_eq!(env.send(function("whatsapp"), signed(id, APP_SECRET)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
    let listed = call(&env, &t.admin_token, Req::get(&one)).await;
    assert_eq!(listed.body["is_active"], false, "still there for the admin");

    let r = call(&env, &t.admin_token, Req::post(&format!("{one}/enable"))).await;
    assert_eq!((r.status, r.body["is_active"].clone()), (StatusCode::OK, json!(true)), "{}", r.body);
    assert_eq!(handshake(&env, id, &verify).await.status, StatusCode::OK);
    let ok = env.send(function("whatsapp"), signed(id, APP_SECRET)).await;
    assert_eq!((ok.status, ok.body["stored"].clone()), (StatusCode::OK, json!(1)), "{}", ok.body);
    assert_eq!(env.audit_count("channel.disable").await, 1);
    assert_eq!(env.audit_count("channel.enable").await, 1);
}

#[tokio::test]
async fn the_check_records_what_the_provider_answered() {
    let server = MockServer::start().await;
    // The first check finds the number; the token is revoked before the second.
    Mock::given(method("GET"))
        .and(path(format!("/v21.0/{PHONE}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": PHONE, "display_phone_number": "15550783881", "verified_name": "Acme"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v21.0/{PHONE}")))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}),
        ))
        .mount(&server)
        .await;
    let env = env_with_providers(&server).await;
    let (t, _, id, _) = whatsapp_channel(&env, "ch-check").await;
    let check = || call(&env, &t.admin_token, Req::post(&format!("/admin/channels/{id}/check")));

    let ok = check().await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["ok"], true, "{}", ok.body);
    assert_eq!(ok.body["channel"]["is_verified"], true);
    assert!(ok.body["channel"]["last_verified_at"].is_string());
    assert_eq!(ok.body["channel"]["last_check_error"], Value::Null);
    assert_eq!(ok.body["provider"]["verified_name"], "Acme");
    assert_hidden(&ok, &SECRETS);
    let graph = server.received_requests().await.unwrap_or_default();
    let number = graph.iter().find(|r| r.url.path() == format!("/v21.0/{PHONE}"));
    let auth = number.and_then(|r| r.headers.get("authorization")).and_then(|v| v.to_str().ok());
    assert_eq!(auth, Some(format!("Bearer {ACCESS_TOKEN}").as_str()), "the stored token is what Graph saw");

    let bad = check().await;
    assert_eq!(bad.status, StatusCode::OK, "{}", bad.body);
    assert_eq!(bad.body["ok"], false);
    assert_eq!(bad.body["channel"]["is_verified"], false);
    let error = bad.body["channel"]["last_check_error"].as_str().unwrap_or("");
    assert!(error.contains("Invalid OAuth access token"), "{}", bad.body);
    assert!(bad.body["error"].as_str().is_some_and(|e| e.contains("Invalid OAuth access token")), "{}", bad.body);
    assert_hidden(&bad, &SECRETS);
    assert_eq!(env.audit_count("channel.check").await, 2);
}

#[tokio::test]
async fn email_has_no_check_and_no_platform_secret() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (t, agent) = company_with_agent(&env, "ch-email").await;
    let creds = json!({"address": "support@acme.test", "topic_arn": "arn:aws:sns:eu-west-1:123456789012:acme-inbound"});
    let (id, created) = create_channel(&env, &t, agent, "email", creds).await;
    assert!(created.body.get("verify_token").is_none() && created.body.get("secret_token").is_none());
    let r = call(&env, &t.admin_token, Req::post(&format!("/admin/channels/{id}/check"))).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "check_not_available"), "{}", r.body);
    let r = call(&env, &t.admin_token, Req::post(&format!("/admin/channels/{id}/rotate-secret"))).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "nothing_to_rotate"), "{}", r.body);
    assert_eq!(env.audit_count("channel.check").await, 0);
}

#[tokio::test]
async fn a_deleted_channel_is_gone_for_the_admin_and_the_provider() {
    let server = MockServer::start().await;
    let env = env_with_providers(&server).await;
    let (t, _, id, verify) = whatsapp_channel(&env, "ch-delete").await;
    let one = format!("/admin/channels/{id}");
    let r = call(&env, &t.admin_token, Req::delete(&one)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(call(&env, &t.admin_token, Req::get(&one)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(call(&env, &t.admin_token, Req::delete(&one)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(handshake(&env, id, &verify).await.status, StatusCode::NOT_FOUND);
    assert_eq!(count_for(&env, "chatapp_channel_configs", t.company_id).await, 0);
    assert_eq!(env.audit_count("channel.delete").await, 1);
}
