//! A company's own AI provider keys through the `provider-keys` function: sealed, never in a
//! response, the database in clear or the audit trail; one active key per provider; the test
//! action against local servers speaking OpenAI's and Anthropic's APIs (the right header, the
//! provider's error recorded); roles, cross-tenant ids and checked fields.

use chatapp::sealed::SealingKey;
use chatapp_functions::http_function::HttpFunction::{self, ProviderKeys};
use chatapp_tests::{assert_error, Req, Resp, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const OPENAI_KEY: &str = "sk-proj-very-secret-openai-key-0123WXYZ";
const ANTHROPIC_KEY: &str = "sk-ant-api03-very-secret-anthropic-key-9876abcd";
const COMPATIBLE_KEY: &str = "local-very-secret-compatible-key-5555";
const ROTATED_KEY: &str = "sk-proj-rotated-secret-openai-key-4321QRST";
const SECRETS: [&str; 4] = [OPENAI_KEY, ANTHROPIC_KEY, COMPATIBLE_KEY, ROTATED_KEY];

async fn call(env: &TestEnv, token: &str, req: Req) -> Resp {
    env.send(ProviderKeys, req.token(token)).await
}

/// None of the keys anywhere in the response body.
fn assert_hidden(r: &Resp) {
    let text = r.body.to_string();
    for s in SECRETS {
        assert!(!text.contains(s), "a key in a response ({}): {text}", r.status);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn message(r: &Resp) -> String {
    r.body["error"]["message"].as_str().unwrap_or("").to_string()
}

fn id_of(r: &Resp) -> Uuid {
    r.body["id"].as_str().unwrap_or_else(|| panic!("no id in {}", r.body)).parse().unwrap()
}

/// A key created through the route: (its id, the response).
async fn create(env: &TestEnv, t: &Tenant, body: Value) -> (Uuid, Resp) {
    let r = call(env, &t.admin_token, Req::post("/admin/provider-keys").json(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_hidden(&r);
    (id_of(&r), r)
}

fn openai_key(base_url: Option<&str>) -> Value {
    json!({"name": "Our OpenAI account", "provider": "openai", "base_url": base_url, "api_key": OPENAI_KEY})
}

async fn rows(env: &TestEnv, table: &str, company: Uuid) -> i64 {
    env.count(&format!("{table} WHERE company_id = '{company}'")).await
}

#[tokio::test]
async fn a_key_is_sealed_and_never_returned_nor_stored_in_clear() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "owned_by": "openai"}]}),
        ))
        .mount(&server)
        .await;
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let admin = t.admin_token.as_str();
    let base = format!("{}/v1", server.uri());
    let (id, created) = create(&env, &t, openai_key(Some(&format!("{base}/")))).await;
    assert_eq!(created.body["key_hint"], "WXYZ");
    assert_eq!(created.body["provider"], "openai");
    assert_eq!(created.body["base_url"], base, "kept without its trailing slash");
    assert_eq!(created.body["is_active"], true);
    assert_eq!(created.body["created_by"], t.admin_id.to_string());
    assert!(created.body.get("api_key").is_none() && created.body.get("key_sealed").is_none(), "{}", created.body);

    let one = format!("/admin/provider-keys/{id}");
    let list = call(&env, admin, Req::get("/admin/provider-keys")).await;
    assert_eq!((list.status, list.body["total"].clone()), (StatusCode::OK, json!(1)), "{}", list.body);
    let got = call(&env, admin, Req::get(&one)).await;
    assert_eq!((got.status, got.body["key_hint"].clone()), (StatusCode::OK, json!("WXYZ")), "{}", got.body);
    let renamed = call(&env, admin, Req::patch(&one).json(json!({"name": "Production"}))).await;
    assert_eq!((renamed.status, renamed.body["name"].clone()), (StatusCode::OK, json!("Production")));
    let tested = call(&env, admin, Req::post(&format!("{one}/test"))).await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.body);
    assert_eq!(tested.body["ok"], true, "{}", tested.body);
    let rotated = call(&env, admin, Req::patch(&one).json(json!({"api_key": ROTATED_KEY}))).await;
    assert_eq!((rotated.status, rotated.body["key_hint"].clone()), (StatusCode::OK, json!("QRST")), "{}", rotated.body);
    assert_eq!(rotated.body["last_tested_at"], Value::Null, "a new key is untested");
    for r in [&created, &list, &got, &renamed, &tested, &rotated] {
        assert_hidden(r);
    }

    // In the database: no column holds the key in clear, the sealed bytes do not contain it, and
    // they open (under the platform key, bound to the company and the row) to the rotated key.
    let owner = env.owner().await;
    let row = owner
        .query_one("SELECT row_to_json(k)::text, key_sealed FROM chatapp_provider_keys k WHERE id = $1", &[&id])
        .await
        .unwrap();
    let (text, sealed): (String, Vec<u8>) = (row.get(0), row.get(1));
    for s in SECRETS {
        assert!(!text.contains(s), "a key in clear: {text}");
        assert!(!contains(&sealed, s.as_bytes()), "a key readable in the sealed bytes");
    }
    let key = SealingKey::new(env.cfg.secrets_key.expose());
    assert_eq!(key.open(t.company_id, id, &sealed).unwrap(), ROTATED_KEY.as_bytes());
    assert!(key.open(t.company_id, Uuid::new_v4(), &sealed).is_err(), "bound to its row");
    // The audit trail records the key's metadata, never the key.
    let audit: String = owner
        .query_one("SELECT COALESCE(string_agg(details::text, ' '), '') FROM chatapp_audit_logs", &[])
        .await
        .unwrap()
        .get(0);
    for s in SECRETS {
        assert!(!audit.contains(s), "a key in the audit log");
    }
    assert_eq!(env.audit_count("provider_key.create").await, 1);
    assert_eq!(env.audit_count("provider_key.update").await, 2);
    assert_eq!(env.audit_count("provider_key.test").await, 1);

    let r = call(&env, admin, Req::delete(&one)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(call(&env, admin, Req::get(&one)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(call(&env, admin, Req::delete(&one)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(rows(&env, "chatapp_provider_keys", t.company_id).await, 0);
    assert_eq!(env.audit_count("provider_key.delete").await, 1);
}

#[tokio::test]
async fn a_company_has_one_active_key_per_provider() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let admin = t.admin_token.as_str();
    let (first, _) = create(&env, &t, openai_key(None)).await;

    let second = json!({"name": "Another", "provider": "openai", "api_key": ROTATED_KEY});
    let r = call(&env, admin, Req::post("/admin/provider-keys").json(second.clone())).await;
    assert_error!(r, StatusCode::CONFLICT, "key_exists");
    assert!(message(&r).contains("PATCH api_key"), "{}", r.body);
    assert_hidden(&r);
    assert_eq!(rows(&env, "chatapp_provider_keys", t.company_id).await, 1);
    assert_eq!(env.audit_count("provider_key.create").await, 1);

    // Another provider is another slot.
    create(&env, &t, json!({"name": "Claude", "provider": "anthropic", "api_key": ANTHROPIC_KEY})).await;

    // Deactivated, the first key frees the slot; it cannot come back while the new one is active.
    let one = format!("/admin/provider-keys/{first}");
    let r = call(&env, admin, Req::patch(&one).json(json!({"is_active": false}))).await;
    assert_eq!((r.status, r.body["is_active"].clone()), (StatusCode::OK, json!(false)), "{}", r.body);
    let (newer, _) = create(&env, &t, second).await;
    let r = call(&env, admin, Req::patch(&one).json(json!({"is_active": true}))).await;
    assert_error!(r, StatusCode::CONFLICT, "key_exists");
    assert_eq!(call(&env, admin, Req::get(&one)).await.body["is_active"], false);
    let filtered = call(&env, admin, Req::get("/admin/provider-keys?provider=openai")).await;
    let ids: Vec<&str> = filtered.body["items"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [newer.to_string(), first.to_string()], "newest first");
    let r = call(&env, admin, Req::get("/admin/provider-keys?provider=mistral")).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");

    // Another company has its own slots.
    let other = env.company("globex", "starter").await;
    create(&env, &other, openai_key(None)).await;
}

#[tokio::test]
async fn another_companys_keys_are_not_found() {
    let env = TestEnv::new().await;
    let a = env.company("acme", "starter").await;
    let b = env.company("globex", "starter").await;
    let (id, _) = create(&env, &a, openai_key(None)).await;
    let one = format!("/admin/provider-keys/{id}");
    let requests = vec![
        ("get", Req::get(&one)),
        ("rename", Req::patch(&one).json(json!({"name": "taken over"}))),
        ("rotate", Req::patch(&one).json(json!({"api_key": ROTATED_KEY}))),
        ("delete", Req::delete(&one)),
        ("test", Req::post(&format!("{one}/test"))),
    ];
    for (name, req) in requests {
        let r = call(&env, &b.admin_token, req).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{name}: {}", r.body);
    }
    let listed = call(&env, &b.admin_token, Req::get("/admin/provider-keys")).await;
    assert_eq!(listed.body["total"], 0, "{}", listed.body);
    let mine = call(&env, &a.admin_token, Req::get(&one)).await;
    assert_eq!(
        (mine.body["name"].clone(), mine.body["key_hint"].clone()),
        (json!("Our OpenAI account"), json!("WXYZ"))
    );
    assert_eq!(mine.body["last_tested_at"], Value::Null);
    for action in ["provider_key.update", "provider_key.delete", "provider_key.test"] {
        assert_eq!(env.audit_count(action).await, 0, "{action}");
    }

    // The master admin acts for a company it names.
    let master = env.master_token().await;
    let r = call(&env, &master, Req::get("/admin/provider-keys")).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    let r = call(&env, &master, Req::get(&format!("/admin/provider-keys?company_id={}", a.company_id))).await;
    assert_eq!((r.status, r.body["total"].clone()), (StatusCode::OK, json!(1)), "{}", r.body);
}

#[tokio::test]
async fn a_support_agent_may_not_read_or_change_keys() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let (id, _) = create(&env, &t, openai_key(None)).await;
    // Even one granted every permission: provider keys are the company admin's.
    let everything = json!({"agents": ["write"], "channels": ["write"], "companies": ["write"]});
    let (_, sa) = env.member(&t, "sa@acme.test", "support_agent", everything).await;
    let one = format!("/admin/provider-keys/{id}");
    let requests = vec![
        ("list", Req::get("/admin/provider-keys")),
        ("get", Req::get(&one)),
        ("create", Req::post("/admin/provider-keys").json(openai_key(None))),
        ("rename", Req::patch(&one).json(json!({"name": "mine"}))),
        ("delete", Req::delete(&one)),
        ("test", Req::post(&format!("{one}/test"))),
    ];
    for (name, req) in requests {
        let r = call(&env, &sa, req).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}: {}", r.body);
        assert_hidden(&r);
    }
    assert_eq!(rows(&env, "chatapp_provider_keys", t.company_id).await, 1);
}

#[tokio::test]
async fn invalid_keys_answer_400_naming_the_field_and_store_nothing() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    fn body(provider: &str, base_url: Option<&str>, api_key: &str) -> Value {
        json!({"name": "Key", "provider": provider, "base_url": base_url, "api_key": api_key})
    }
    let cases: Vec<(&str, Value, &str)> = vec![
        ("an unknown provider", body("mistral", None, OPENAI_KEY), "provider"),
        ("a compatible server without its URL", body("openai_compatible", None, COMPATIBLE_KEY), "base_url"),
        (
            "plain http elsewhere",
            body("openai_compatible", Some("http://llm.example.com/v1"), COMPATIBLE_KEY),
            "base_url",
        ),
        ("not a URL", body("openai", Some("api.openai.com"), OPENAI_KEY), "base_url"),
        ("another scheme", body("openai", Some("ftp://127.0.0.1/v1"), OPENAI_KEY), "base_url"),
        ("credentials in the URL", body("openai", Some("https://user:pw@llm.example.com"), OPENAI_KEY), "base_url"),
        ("a query in the URL", body("openai", Some("https://llm.example.com/v1?key=1"), OPENAI_KEY), "base_url"),
        ("a key too short", body("openai", None, "sk-1"), "api_key"),
        ("a key with a space", body("openai", None, "sk-proj very-secret"), "api_key"),
        ("a key that is not a string", json!({"name": "Key", "provider": "openai", "api_key": 123456789}), "api_key"),
        ("no key", json!({"name": "Key", "provider": "openai"}), "api_key"),
        ("an empty name", body("openai", None, OPENAI_KEY), "name"),
        ("an unknown field", json!({"name": "Key", "provider": "openai", "api_key": OPENAI_KEY, "org": "x"}), "org"),
    ];
    for (name, mut req, field) in cases {
        if name == "an empty name" {
            req["name"] = json!(" ");
        }
        let r = call(&env, &t.admin_token, Req::post("/admin/provider-keys").json(req)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.body);
        assert_eq!(r.code(), "validation_failed", "{name}: {}", r.body);
        assert!(message(&r).contains(field), "{name}: the message should name {field}: {}", r.body);
        assert_hidden(&r);
        assert!(!r.body.to_string().contains("123456789"), "{name}: the key quoted: {}", r.body);
    }
    assert_eq!(rows(&env, "chatapp_provider_keys", t.company_id).await, 0);
    assert_eq!(env.audit_count("provider_key.create").await, 0);

    // Loopback over plain http is allowed (a local server); a compatible key cannot lose its URL.
    let (id, _) = create(&env, &t, body("openai_compatible", Some("http://localhost:11434/v1"), COMPATIBLE_KEY)).await;
    let r =
        call(&env, &t.admin_token, Req::patch(&format!("/admin/provider-keys/{id}")).json(json!({"base_url": null})))
            .await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(message(&r).contains("base_url"), "{}", r.body);
    assert_eq!(env.audit_count("provider_key.update").await, 0);
}

#[tokio::test]
async fn test_connection_speaks_each_providers_api_and_records_the_outcome() {
    let openai = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(header("authorization", format!("Bearer {OPENAI_KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": []})))
        .mount(&openai)
        .await;
    let compatible = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/compat/v1/models"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                      "code": "invalid_api_key"}
        })))
        .mount(&compatible)
        .await;
    let anthropic = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}
        })))
        .mount(&anthropic)
        .await;
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let admin = t.admin_token.as_str();
    let test = |id: Uuid| call(&env, admin, Req::post(&format!("/admin/provider-keys/{id}/test")));

    // OpenAI: GET {base}/models with the key as a bearer token.
    let (id, _) = create(&env, &t, openai_key(Some(&format!("{}/v1", openai.uri())))).await;
    let r = test(id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["ok"], true, "{}", r.body);
    assert!(r.body.get("error").is_none(), "{}", r.body);
    assert!(r.body["provider_key"]["last_tested_at"].is_string(), "{}", r.body);
    assert_eq!(r.body["provider_key"]["last_test_error"], Value::Null);
    assert_hidden(&r);
    assert_eq!(openai.received_requests().await.unwrap().len(), 1);

    // Anthropic: GET {base}/v1/models with x-api-key and anthropic-version; its 401 recorded.
    let (id, _) = create(
        &env,
        &t,
        json!({"name": "Claude", "provider": "anthropic", "base_url": anthropic.uri(), "api_key": ANTHROPIC_KEY}),
    )
    .await;
    let r = test(id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["ok"], false, "{}", r.body);
    let error = r.body["error"].as_str().unwrap_or("");
    assert!(error.contains("401") && error.contains("invalid x-api-key"), "{}", r.body);
    assert_eq!(r.body["provider_key"]["last_test_error"], r.body["error"]);
    assert!(r.body["provider_key"]["last_tested_at"].is_string(), "{}", r.body);
    assert_hidden(&r);
    let seen = anthropic.received_requests().await.unwrap();
    assert_eq!(seen.len(), 1);
    let h = |name: &str| seen[0].headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    assert_eq!(h("x-api-key").as_deref(), Some(ANTHROPIC_KEY), "the stored key is what Anthropic saw");
    assert_eq!(h("anthropic-version").as_deref(), Some("2023-06-01"));
    assert_eq!(h("authorization"), None, "Anthropic's key goes in x-api-key only");
    let stored = call(&env, admin, Req::get(&format!("/admin/provider-keys/{id}"))).await;
    assert!(
        stored.body["last_test_error"].as_str().is_some_and(|e| e.contains("invalid x-api-key")),
        "{}",
        stored.body
    );

    // An OpenAI-compatible server at its own base URL.
    let (id, _) = create(
        &env,
        &t,
        json!({"name": "Local vLLM", "provider": "openai_compatible",
               "base_url": format!("{}/compat/v1", compatible.uri()), "api_key": COMPATIBLE_KEY}),
    )
    .await;
    let r = test(id).await;
    assert_eq!(r.body["ok"], false, "{}", r.body);
    assert!(r.body["error"].as_str().is_some_and(|e| e.contains("Incorrect API key provided")), "{}", r.body);
    let seen = compatible.received_requests().await.unwrap();
    let auth = seen.first().and_then(|q| q.headers.get("authorization")).and_then(|v| v.to_str().ok());
    assert_eq!(auth, Some(format!("Bearer {COMPATIBLE_KEY}").as_str()));
    assert_hidden(&r);

    // Moving a key to another server takes the key again: an admin who never saw it cannot
    // point it at a server of their own.
    let r = call(
        &env,
        admin,
        Req::patch(&format!("/admin/provider-keys/{id}")).json(json!({"base_url": "http://127.0.0.1:9/v1"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("api_key"), "{}", r.body);
    // A server that is not there: the failure is the outcome, not an error of the route.
    let r = call(
        &env,
        admin,
        Req::patch(&format!("/admin/provider-keys/{id}"))
            .json(json!({"base_url": "http://127.0.0.1:9/v1", "api_key": COMPATIBLE_KEY})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = test(id).await;
    assert_eq!((r.status, r.body["ok"].clone()), (StatusCode::OK, json!(false)), "{}", r.body);
    assert!(r.body["error"].as_str().is_some_and(|e| e.contains("could not be reached")), "{}", r.body);
    assert_hidden(&r);

    assert_eq!(env.audit_count("provider_key.test").await, 4);
    let audit: String = env
        .owner()
        .await
        .query_one("SELECT COALESCE(string_agg(details::text, ' '), '') FROM chatapp_audit_logs", &[])
        .await
        .unwrap()
        .get(0);
    for s in SECRETS {
        assert!(!audit.contains(s), "a key in the audit log");
    }
}

/// A streamed OpenAI answer.
fn answer_stream() -> ResponseTemplate {
    let chunk = |v: Value| format!("data: {v}\n\n");
    let body = [
        chunk(json!({"model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {"content": "Five days."}}]})),
        chunk(json!({"model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    ResponseTemplate::new(200).insert_header("content-type", "text/event-stream").set_body_string(body)
}

#[tokio::test]
async fn a_companys_own_key_answers_its_turns_and_other_companies_keep_the_platforms() {
    // The platform's OpenAI endpoint, and the one the company's key points at.
    let platform = MockServer::start().await;
    let own = MockServer::start().await;
    for (server, key) in [(&platform, "sk-platform-key"), (&own, OPENAI_KEY)] {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(header("authorization", format!("Bearer {key}").as_str()))
            .respond_with(answer_stream())
            .mount(server)
            .await;
    }
    let base = format!("{}/v1", platform.uri());
    let env = TestEnv::with(&[
        ("CHAT_PROVIDER", "openai"),
        ("CHAT_BASE_URL", &base),
        ("CHAT_API_KEY", "sk-platform-key"),
        ("CHAT_MODEL", "gpt-4o-mini"),
    ])
    .await;
    let mut conversations = Vec::new();
    for slug in ["own-key", "no-key"] {
        let t = env.company(slug, "starter").await;
        let owner = env.owner().await;
        let agent: Uuid = owner
            .query_one(
                "INSERT INTO chatapp_agents (company_id, name, status, system_prompt, rag_enabled)
                 VALUES ($1, 'Ada', 'active', 'You help.', false) RETURNING id",
                &[&t.company_id],
            )
            .await
            .unwrap()
            .get(0);
        owner
            .execute(
                "INSERT INTO chatapp_widget_configs (company_id, agent_id) VALUES ($1, $2)",
                &[&t.company_id, &agent],
            )
            .await
            .unwrap();
        if slug == "own-key" {
            let r = call(
                &env,
                &t.admin_token,
                Req::post("/admin/provider-keys").json(openai_key(Some(&format!("{}/v1", own.uri())))),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        }
        let r = env
            .send(HttpFunction::Widget, Req::post(&format!("/widget/agents/{agent}/sessions")).json(json!({})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        conversations.push((
            r.body["conversation_id"].as_str().unwrap().to_string(),
            r.body["session_token"].as_str().unwrap().to_string(),
        ));
    }
    for (conversation, token) in &conversations {
        let r = env
            .send(
                HttpFunction::Widget,
                Req::post(&format!("/widget/conversations/{conversation}/messages"))
                    .token(token)
                    .json(json!({"content": "How long do refunds take?"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["reply"]["metadata"]["kind"], "answer", "{}", r.body);
    }
    // One turn each: the company with a key on its own endpoint with its own key, the other on
    // the platform's (the mocks answer only the right Authorization header).
    assert_eq!(own.received_requests().await.unwrap().len(), 1);
    assert_eq!(platform.received_requests().await.unwrap().len(), 1);
}
