//! The agent's widget through the agents function's handlers: edits stay in a draft the widget
//! does not show until published, every field is checked before anything is stored, publishing
//! without a draft, the identity secret (shown once, sealed, never read back) and the sessions
//! that must then carry a verified identity, deleting the configuration (the defaults again),
//! other tenants and support agents kept out, and an audit row per change.

use chatapp_functions::http_function::HttpFunction::{AgentWidgets, Widget};
use chatapp_tests::{assert_error, Req, Resp, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

const UNKNOWN: &str = "6f1c1d0e-1111-4222-8333-944445555666";

/// An active agent of the company, made in the database.
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

/// A request to the function serving its path, as the holder of `token`.
async fn call(env: &TestEnv, token: &str, req: Req) -> Resp {
    env.send(chatapp_tests::agent_admin_function(req.path()), req.token(token)).await
}

fn widget(agent: Uuid) -> String {
    format!("/admin/agents/{agent}/widget")
}

async fn put_draft(env: &TestEnv, token: &str, agent: Uuid, body: Value) -> Resp {
    call(env, token, Req::put(&widget(agent)).json(body)).await
}

async fn publish(env: &TestEnv, token: &str, agent: Uuid) -> Resp {
    call(env, token, Req::post(&format!("{}/publish", widget(agent)))).await
}

async fn new_secret(env: &TestEnv, token: &str, agent: Uuid) -> Resp {
    call(env, token, Req::post(&format!("{}/identity-secret", widget(agent)))).await
}

/// What the embedding page reads: the widget function's config route.
async fn public_config(env: &TestEnv, agent: Uuid) -> Value {
    let r = env.send(Widget, Req::get(&format!("/widget/agents/{agent}/config"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["widget"].clone()
}

async fn start_session(env: &TestEnv, agent: Uuid, body: Value) -> Resp {
    env.send(Widget, Req::post(&format!("/widget/agents/{agent}/sessions")).json(body)).await
}

async fn widget_rows(env: &TestEnv, company: Uuid) -> i64 {
    env.count(&format!("chatapp_widget_configs WHERE company_id = '{company}'")).await
}

fn message(r: &Resp) -> String {
    r.body["error"]["message"].as_str().unwrap_or("").to_string()
}

#[tokio::test]
async fn a_draft_is_invisible_to_the_widget_until_it_is_published() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let tok = t.admin_token.as_str();
    let agent = add_agent(&env, t.company_id, "Ada").await;

    // No configuration yet: the defaults, no draft, no secret (and no row made by reading).
    let r = call(&env, tok, Req::get(&widget(agent))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["id"].is_null() && r.body["draft"].is_null(), "{}", r.body);
    assert_eq!(r.body["agent_id"], agent.to_string());
    assert_eq!(r.body["published"]["theme"], "light");
    assert_eq!(r.body["has_identity_secret"], false);
    assert_eq!(r.body["require_identity"], false);
    assert_eq!(widget_rows(&env, t.company_id).await, 0);
    // Nothing to publish.
    assert_error!(publish(&env, tok, agent).await, StatusCode::CONFLICT, "nothing_to_publish");

    // A first draft: the widget still shows the defaults.
    let r = put_draft(&env, tok, agent, json!({"title": "  Old title ", "theme": "dark"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["draft"]["title"], "Old title");
    assert_eq!(r.body["draft"]["theme"], "dark");
    assert!(r.body["published"]["title"].is_null(), "{}", r.body);
    assert!(r.body["published_at"].is_null());
    assert!(public_config(&env, agent).await["title"].is_null());

    let r = publish(&env, tok, agent).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["published"]["title"], "Old title");
    assert!(r.body["draft"].is_null(), "{}", r.body);
    assert!(r.body["published_at"].is_string());
    let shown = public_config(&env, agent).await;
    assert_eq!((shown["title"].clone(), shown["theme"].clone()), (json!("Old title"), json!("dark")));

    // A second draft starts from the published values; the widget keeps the old title.
    let r =
        put_draft(&env, tok, agent, json!({"title": "New title", "primary_color": "#AABBCC", "subtitle": "Hi"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["draft"]["title"], "New title");
    assert_eq!(r.body["draft"]["theme"], "dark", "kept from the published values");
    assert_eq!(r.body["draft"]["primary_color"], "#aabbcc");
    // `null` clears an optional text; absent fields keep the draft's value.
    let r =
        put_draft(&env, tok, agent, json!({"subtitle": null, "allowed_domains": ["Acme.test", "*.shop.test"]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["draft"]["subtitle"].is_null(), "{}", r.body);
    assert_eq!(r.body["draft"]["title"], "New title");
    assert_eq!(r.body["draft"]["allowed_domains"], json!(["acme.test", "*.shop.test"]));
    assert_eq!(public_config(&env, agent).await["title"], "Old title");
    let got = call(&env, tok, Req::get(&widget(agent))).await;
    assert_eq!(got.body["published"]["title"], "Old title");
    assert_eq!(got.body["draft"]["title"], "New title");

    let r = publish(&env, tok, agent).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let shown = public_config(&env, agent).await;
    assert_eq!(shown["title"], "New title");
    assert_eq!(shown["primary_color"], "#aabbcc");
    assert!(shown.get("allowed_domains").is_none(), "never shown by the widget: {shown}");
    // The published domain list is enforced by the widget.
    let r = env
        .send(Widget, Req::get(&format!("/widget/agents/{agent}/config")).header("origin", "https://evil.test"))
        .await;
    assert_error!(r, StatusCode::FORBIDDEN, "origin_not_allowed");
    // Published: nothing left to publish.
    assert_error!(publish(&env, tok, agent).await, StatusCode::CONFLICT, "nothing_to_publish");

    assert_eq!(widget_rows(&env, t.company_id).await, 1);
    assert_eq!(env.audit_count("widget.draft_update").await, 3);
    assert_eq!(env.audit_count("widget.publish").await, 2);
    let audit: Value = env
        .owner()
        .await
        .query_one(
            "SELECT details FROM chatapp_audit_logs WHERE action = 'widget.publish' ORDER BY created_at DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audit["before"]["published"]["title"], "Old title");
    assert_eq!(audit["after"]["published"]["title"], "New title");
}

#[tokio::test]
async fn each_invalid_field_is_refused_naming_it_and_nothing_is_stored() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let agent = add_agent(&env, t.company_id, "Ada").await;
    let many: Vec<String> = (0..51).map(|i| format!("site{i}.test")).collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"theme": "purple"}), "theme"),
        (json!({"position": "top-left"}), "position"),
        (json!({"primary_color": "red"}), "primary_color"),
        (json!({"primary_color": "#12345g"}), "primary_color"),
        (json!({"title": "x".repeat(101)}), "title"),
        (json!({"title": "   "}), "title"),
        (json!({"title": 5}), "title"),
        (json!({"subtitle": "x".repeat(201)}), "subtitle"),
        (json!({"avatar_url": "http://cdn.example.com/a.png"}), "avatar_url"),
        (json!({"avatar_url": "javascript:alert(1)"}), "avatar_url"),
        (json!({"logo_url": "not a url"}), "logo_url"),
        (json!({"logo_url": format!("https://cdn.example.com/{}", "a".repeat(500))}), "logo_url"),
        (json!({"show_branding": "yes"}), "show_branding"),
        (json!({"auto_open": 1}), "auto_open"),
        (json!({"auto_open_delay": 600_001}), "auto_open_delay"),
        (json!({"auto_open_delay": -1}), "auto_open_delay"),
        (json!({"auto_open_delay": 1.5}), "auto_open_delay"),
        (json!({"welcome_message": "x".repeat(2001)}), "welcome_message"),
        (json!({"placeholder_text": "x".repeat(201)}), "placeholder_text"),
        (json!({"enable_file_upload": "no"}), "enable_file_upload"),
        (json!({"enable_emoji": null, "custom_css": "x".repeat(10_001)}), "custom_css"),
        (json!({"allowed_domains": ["https://acme.test"]}), "allowed_domains[0]"),
        (json!({"allowed_domains": ["acme.test", "acme.test:8443"]}), "allowed_domains[1]"),
        (json!({"allowed_domains": ["acme.test/path"]}), "allowed_domains[0]"),
        (json!({"allowed_domains": many}), "allowed_domains"),
        (json!({"allowed_domains": "acme.test"}), "allowed_domains"),
        (json!({"require_identity": "true"}), "require_identity"),
        (json!({"colour": "#ffffff"}), "colour"),
    ];
    for (body, field) in cases {
        let r = put_draft(&env, &t.admin_token, agent, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.code(), "validation_failed", "{body}: {}", r.body);
        assert!(message(&r).contains(field), "{body}: the message should name {field}: {}", message(&r));
    }
    // Not a JSON object at all.
    let r = call(&env, &t.admin_token, Req::put(&widget(agent)).raw("{")).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "invalid_json");
    assert_eq!(widget_rows(&env, t.company_id).await, 0);
    assert_eq!(env.audit_count("widget.draft_update").await, 0);

    // The limits themselves pass.
    let r = put_draft(
        &env,
        &t.admin_token,
        agent,
        json!({"theme": "auto", "position": "bottom-left", "title": "x".repeat(100), "auto_open_delay": 600_000,
               "avatar_url": "https://cdn.example.com/a.png", "logo_url": null, "show_branding": false,
               "auto_open": true, "enable_file_upload": false, "enable_emoji": false, "custom_css": ".a{color:red}",
               "welcome_message": "Hello!", "placeholder_text": "Ask away", "allowed_domains": [],
               "require_identity": false}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["draft"]["auto_open_delay"], 600_000);
    assert_eq!(r.body["draft"]["position"], "bottom-left");
    assert_eq!(widget_rows(&env, t.company_id).await, 1);
}

#[tokio::test]
async fn the_identity_secret_is_shown_once_sealed_and_required_sessions_must_prove_identity() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let tok = t.admin_token.as_str();
    let agent = add_agent(&env, t.company_id, "Ada").await;

    // Requiring identities before a secret exists would refuse every visitor.
    assert_eq!(put_draft(&env, tok, agent, json!({"require_identity": true})).await.status, StatusCode::OK);
    assert_error!(publish(&env, tok, agent).await, StatusCode::CONFLICT, "identity_secret_missing");
    assert_eq!(public_config(&env, agent).await["require_identity"], false);

    // The first secret: shown in this response only.
    let first = new_secret(&env, tok, agent).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let old_secret = first.body["identity_secret"].as_str().expect("a secret").to_string();
    assert!(old_secret.len() >= 40, "256 random bits: {old_secret}");
    assert_eq!(first.body["widget"]["has_identity_secret"], true);
    assert!(first.body["widget"]["identity_secret_rotated_at"].is_string());
    // A new one replaces it.
    let second = new_secret(&env, tok, agent).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    let secret = second.body["identity_secret"].as_str().unwrap().to_string();
    assert_ne!(secret, old_secret);
    assert_eq!(env.audit_count("widget.identity_secret_rotate").await, 2);

    // Never read back: not in the admin's view, the widget's config, or the audit trail.
    let got = call(&env, tok, Req::get(&widget(agent))).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["has_identity_secret"], true);
    let config = public_config(&env, agent).await;
    for text in [got.body.to_string(), config.to_string()] {
        assert!(!text.contains(&secret) && !text.contains(&old_secret), "a secret shown again: {text}");
    }
    let owner = env.owner().await;
    let audit: String = owner
        .query_one("SELECT COALESCE(string_agg(details::text, ' '), '') FROM chatapp_audit_logs", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!audit.contains(&secret) && !audit.contains(&old_secret), "a secret in the audit log");
    // Sealed in the database, nothing in clear.
    let row = owner
        .query_one(
            "SELECT identity_secret, identity_secret_sealed FROM chatapp_widget_configs WHERE agent_id = $1",
            &[&agent],
        )
        .await
        .unwrap();
    let (clear, sealed): (Option<String>, Option<Vec<u8>>) = (row.get(0), row.get(1));
    assert_eq!(clear, None);
    let sealed = sealed.expect("a sealed secret");
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()), "the secret readable in the sealed bytes");

    // Require identities: publish, then every session must carry a valid hash.
    let r = publish(&env, tok, agent).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["require_identity"], true);
    assert_eq!(public_config(&env, agent).await["require_identity"], true);
    let sign = |key: &str, id: &str| chatapp::auth::tokens::hmac_sha256_hex(key.as_bytes(), id);
    assert_error!(start_session(&env, agent, json!({})).await, StatusCode::UNAUTHORIZED, "identity_required");
    assert_error!(
        start_session(&env, agent, json!({"identifier": "user-42"})).await,
        StatusCode::UNAUTHORIZED,
        "identity_required"
    );
    assert_error!(
        start_session(&env, agent, json!({"identifier": "user-42", "identity_hash": "00".repeat(32)})).await,
        StatusCode::UNAUTHORIZED,
        "identity_invalid"
    );
    assert_error!(
        start_session(&env, agent, json!({"identifier": "user-42", "identity_hash": sign(&old_secret, "user-42")}))
            .await,
        StatusCode::UNAUTHORIZED,
        "identity_invalid"
    );
    assert_error!(
        start_session(&env, agent, json!({"identifier": "user-43", "identity_hash": sign(&secret, "user-42")})).await,
        StatusCode::UNAUTHORIZED,
        "identity_invalid"
    );
    assert_eq!(env.count(&format!("chatapp_conversations WHERE agent_id = '{agent}'")).await, 0);
    let r =
        start_session(&env, agent, json!({"identifier": "user-42", "identity_hash": sign(&secret, "user-42")})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["verified"], true);
    let customer = r.body["customer_id"].as_str().unwrap().to_string();
    assert_eq!(
        env.count(&format!("chatapp_customers WHERE id = '{customer}' AND external_id = 'user-42'")).await,
        1,
        "the verified identifier is the customer's external id"
    );

    // Not required, but sent: checked all the same, and a valid one still identifies.
    assert_eq!(put_draft(&env, tok, agent, json!({"require_identity": false})).await.status, StatusCode::OK);
    assert_eq!(publish(&env, tok, agent).await.status, StatusCode::OK);
    let r = start_session(&env, agent, json!({})).await;
    assert_eq!((r.status, r.body["verified"].clone()), (StatusCode::CREATED, json!(false)), "{}", r.body);
    assert_error!(
        start_session(&env, agent, json!({"identifier": "user-7", "identity_hash": "ab".repeat(32)})).await,
        StatusCode::UNAUTHORIZED,
        "identity_invalid"
    );
    let r = start_session(&env, agent, json!({"identifier": "user-7", "identity_hash": sign(&secret, "user-7")})).await;
    assert_eq!((r.status, r.body["verified"].clone()), (StatusCode::CREATED, json!(true)), "{}", r.body);
    assert_eq!(env.count("chatapp_customers WHERE external_id = 'user-7'").await, 1);
}

#[tokio::test]
async fn other_companies_and_support_agents_are_kept_out() {
    let env = TestEnv::new().await;
    let a = env.company("alpha", "starter").await;
    let b = env.company("beta", "starter").await;
    let agent = add_agent(&env, a.company_id, "Ada").await;
    assert_eq!(put_draft(&env, &a.admin_token, agent, json!({"title": "Alpha"})).await.status, StatusCode::OK);

    // Another company's agent, or an unknown one, is not found, and nothing changes.
    for target in [agent.to_string(), UNKNOWN.to_string()] {
        let base = format!("/admin/agents/{target}/widget");
        for req in [
            Req::get(&base),
            Req::put(&base).json(json!({"title": "Mine now"})),
            Req::delete(&base),
            Req::post(&format!("{base}/publish")),
            Req::post(&format!("{base}/identity-secret")),
        ] {
            assert_error!(call(&env, &b.admin_token, req).await, StatusCode::NOT_FOUND, "not_found");
        }
    }
    let r = call(&env, &a.admin_token, Req::get(&widget(agent))).await;
    assert_eq!(r.body["draft"]["title"], "Alpha");
    assert_eq!(r.body["has_identity_secret"], false);
    assert_eq!(widget_rows(&env, b.company_id).await, 0);

    // A support agent without agent permissions may neither read nor change it.
    let (_, support) = env.member(&a, "sa@alpha.test", "support_agent", json!({})).await;
    for req in [
        Req::get(&widget(agent)),
        Req::put(&widget(agent)).json(json!({"title": "Support"})),
        Req::delete(&widget(agent)),
        Req::post(&format!("{}/publish", widget(agent))),
        Req::post(&format!("{}/identity-secret", widget(agent))),
    ] {
        assert_error!(call(&env, &support, req).await, StatusCode::FORBIDDEN, "forbidden");
    }
    // Without a token: 401.
    let r = env.send(AgentWidgets, Req::get(&widget(agent))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(env.audit_count("widget.draft_update").await, 1);
    assert_eq!(env.audit_count("widget.publish").await, 0);
    assert_eq!(env.audit_count("widget.identity_secret_rotate").await, 0);
    assert_eq!(env.audit_count("widget.delete").await, 0);
    assert_eq!(widget_rows(&env, a.company_id).await, 1, "the other company's DELETE deleted nothing");
}

#[tokio::test]
async fn deleting_the_widget_brings_back_the_defaults_and_destroys_the_secret() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let tok = t.admin_token.as_str();
    let agent = add_agent(&env, t.company_id, "Ada").await;

    // Nothing stored yet: the defaults, and nothing written.
    let r = call(&env, tok, Req::delete(&widget(agent))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["id"].is_null(), "{}", r.body);
    assert_eq!(env.audit_count("widget.delete").await, 0);

    // Configured, published, locked to one domain and to verified identities.
    let body = json!({"title": "Acme help", "allowed_domains": ["acme.test"], "require_identity": true});
    assert_eq!(put_draft(&env, tok, agent, body).await.status, StatusCode::OK);
    let shown = new_secret(&env, tok, agent).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    let secret = shown.body["identity_secret"].as_str().unwrap().to_string();
    assert_eq!(publish(&env, tok, agent).await.status, StatusCode::OK);
    assert_eq!(put_draft(&env, tok, agent, json!({"title": "Unpublished"})).await.status, StatusCode::OK);
    let sessions = format!("/widget/agents/{agent}/sessions");
    let r = env.send(Widget, Req::post(&sessions).header("origin", "https://acme.test").json(json!({}))).await;
    assert_error!(r, StatusCode::UNAUTHORIZED, "identity_required");
    let r = env
        .send(Widget, Req::get(&format!("/widget/agents/{agent}/config")).header("origin", "https://other.test"))
        .await;
    assert_error!(r, StatusCode::FORBIDDEN, "origin_not_allowed");

    let r = call(&env, tok, Req::delete(&widget(agent))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["id"].is_null() && r.body["draft"].is_null(), "{}", r.body);
    assert_eq!(r.body["has_identity_secret"], false);
    assert_eq!(r.body["published"]["theme"], "light");
    assert_eq!(widget_rows(&env, t.company_id).await, 0);
    let got = call(&env, tok, Req::get(&widget(agent))).await;
    assert_eq!(got.body, r.body);

    // The widget shows the defaults at once, from any origin, without an identity.
    let shown = public_config(&env, agent).await;
    assert!(shown["title"].is_null(), "{shown}");
    let r = env
        .send(Widget, Req::get(&format!("/widget/agents/{agent}/config")).header("origin", "https://other.test"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = env.send(Widget, Req::post(&sessions).header("origin", "https://other.test").json(json!({}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // One audit row, with what was deleted (never the secret).
    assert_eq!(env.audit_count("widget.delete").await, 1);
    let audit: Value = env
        .owner()
        .await
        .query_one("SELECT details FROM chatapp_audit_logs WHERE action = 'widget.delete'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(audit["before"]["published"]["title"], "Acme help", "{audit}");
    assert_eq!(audit["before"]["has_identity_secret"], true, "{audit}");
    assert!(!audit.to_string().contains(&secret), "the secret in the audit row: {audit}");
}
