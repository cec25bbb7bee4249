//! The model catalog through the `models` function: the master admin's CRUD with every field
//! checked (400 naming it), company admins reading the active models only, the price lookup of
//! reported names (dated snapshots, aliases, unknown models), a model in use kept, the audit
//! trail; and a chat turn whose model the catalog does not know: its usage is recorded as
//! unpriced and its reply says the cost is unknown, never a silent 0.

use chatapp_functions::http_function::HttpFunction::{self, Models};
use chatapp_tests::widget::say;
use chatapp_tests::{assert_error, Req, Resp, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn call(env: &TestEnv, token: &str, req: Req) -> Resp {
    env.send(Models, req.token(token)).await
}

fn id_of(r: &Resp) -> String {
    r.body["id"].as_str().unwrap_or_else(|| panic!("no id in {}", r.body)).to_string()
}

fn message(r: &Resp) -> String {
    r.body["error"]["message"].as_str().unwrap_or("").to_string()
}

fn slugs(r: &Resp) -> Vec<String> {
    r.body["items"].as_array().unwrap().iter().map(|m| m["slug"].as_str().unwrap().to_string()).collect()
}

/// A model body with every field.
fn acme_model() -> Value {
    json!({
        "slug": "acme-llm-1.5", "name": "Acme LLM 1.5", "provider": "openai_compatible",
        "provider_model": "acme/llm-1.5", "model_type": "chat", "aliases": ["acme-llm", "acme-llm-latest"],
        "context_window": 32000, "max_output_tokens": 4096, "input_price_per_1m": 0.5,
        "output_price_per_1m": 1.5, "currency": "EUR", "is_active": true
    })
}

async fn seeded_id(env: &TestEnv, slug: &str) -> Uuid {
    env.owner()
        .await
        .query_one("SELECT id FROM chatapp_ai_models WHERE slug = $1", &[&slug])
        .await
        .unwrap_or_else(|e| panic!("seeded model {slug}: {e}"))
        .get(0)
}

async fn price(env: &TestEnv, token: &str, model: &str) -> Resp {
    call(env, token, Req::get(&format!("/admin/models/price?model={model}"))).await
}

#[tokio::test]
async fn the_master_admin_manages_the_catalog() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;

    let r = call(&env, &master, Req::post("/admin/models").json(acme_model())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["slug"], "acme-llm-1.5");
    assert_eq!(r.body["provider"], "openai_compatible");
    assert_eq!(r.body["aliases"], json!(["acme-llm", "acme-llm-latest"]));
    assert_eq!(r.body["context_window"], 32000);
    assert_eq!(r.body["input_price_per_1m"], 0.5);
    assert_eq!(r.body["output_price_per_1m"], 1.5);
    assert_eq!(r.body["currency"], "EUR");
    let id = id_of(&r);
    assert_eq!(env.audit_count("model.create").await, 1);

    // Defaults: a chat model, active, in USD.
    let minimal = json!({"slug": "tiny", "name": "Tiny", "provider": "local", "provider_model": "tiny",
                         "input_price_per_1m": 0, "output_price_per_1m": 0});
    let r = call(&env, &master, Req::post("/admin/models").json(minimal)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["model_type"].clone(), r.body["is_active"].clone()), (json!("chat"), json!(true)));
    assert_eq!((r.body["currency"].clone(), r.body["aliases"].clone()), (json!("USD"), json!([])));

    // The same slug twice is a conflict.
    let r = call(&env, &master, Req::post("/admin/models").json(acme_model())).await;
    assert_error!(r, StatusCode::CONFLICT, "slug_taken");

    let got = call(&env, &master, Req::get(&format!("/admin/models/{id}"))).await;
    assert_eq!((got.status, got.body["name"].clone()), (StatusCode::OK, json!("Acme LLM 1.5")), "{}", got.body);
    let listed = call(&env, &master, Req::get("/admin/models?provider=openai_compatible")).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!((listed.body["total"].clone(), slugs(&listed)), (json!(1), vec!["acme-llm-1.5".to_string()]));
    let openai = call(&env, &master, Req::get("/admin/models?provider=openai")).await;
    assert_eq!(slugs(&openai), ["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"], "the seeded catalog");

    // A partial update keeps the rest; `null` clears the context window.
    let r = call(
        &env,
        &master,
        Req::patch(&format!("/admin/models/{id}"))
            .json(json!({"name": "Acme LLM 1.5 (EU)", "output_price_per_1m": 2.25, "context_window": null})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Acme LLM 1.5 (EU)");
    assert_eq!(r.body["output_price_per_1m"], 2.25);
    assert_eq!(r.body["input_price_per_1m"], 0.5);
    assert_eq!(r.body["context_window"], Value::Null);
    assert_eq!(r.body["aliases"], json!(["acme-llm", "acme-llm-latest"]));
    assert_eq!(env.audit_count("model.update").await, 1);
    let audit: Value = env
        .owner()
        .await
        .query_one("SELECT details FROM chatapp_audit_logs WHERE action = 'model.update'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(audit["before"]["name"], "Acme LLM 1.5");
    assert_eq!(audit["after"]["name"], "Acme LLM 1.5 (EU)");

    // Renaming onto another model's slug is a conflict and changes nothing.
    let r = call(&env, &master, Req::patch(&format!("/admin/models/{id}")).json(json!({"slug": "gpt-4o"}))).await;
    assert_error!(r, StatusCode::CONFLICT, "slug_taken");
    assert_eq!(env.audit_count("model.update").await, 1);

    let r = call(&env, &master, Req::delete(&format!("/admin/models/{id}"))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(call(&env, &master, Req::get(&format!("/admin/models/{id}"))).await.status, StatusCode::NOT_FOUND);
    assert_eq!(call(&env, &master, Req::delete(&format!("/admin/models/{id}"))).await.status, StatusCode::NOT_FOUND);
    let unknown = format!("/admin/models/{}", Uuid::new_v4());
    assert_eq!(
        call(&env, &master, Req::patch(&unknown).json(json!({"name": "x"}))).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(env.audit_count("model.delete").await, 1);
}

#[tokio::test]
async fn company_admins_read_the_active_catalog_and_change_nothing() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let t = env.company("acme", "starter").await;
    let admin = t.admin_token.as_str();
    let mut retired = acme_model();
    retired["slug"] = json!("retired-model");
    retired["is_active"] = json!(false);
    let r = call(&env, &master, Req::post("/admin/models").json(retired)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let retired_id = id_of(&r);
    let mini = seeded_id(&env, "gpt-4o-mini").await;
    let count_before = env.count("chatapp_ai_models").await;

    // Writes are the master admin's.
    let writes = [
        ("create", Req::post("/admin/models").json(acme_model())),
        ("update", Req::patch(&format!("/admin/models/{mini}")).json(json!({"input_price_per_1m": 0}))),
        ("delete", Req::delete(&format!("/admin/models/{mini}"))),
    ];
    for (name, req) in writes {
        let r = call(&env, admin, req).await;
        assert_error!(r, StatusCode::FORBIDDEN, "master_only");
        assert!(message(&r).contains("master admin"), "{name}: {}", r.body);
    }
    assert_eq!(env.count("chatapp_ai_models").await, count_before);
    let r = call(&env, &master, Req::get(&format!("/admin/models/{mini}"))).await;
    assert_eq!(r.body["input_price_per_1m"], 0.15, "unchanged");

    // Reads: the active models only, whatever the filter asks.
    let all = call(&env, admin, Req::get("/admin/models?limit=100")).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert!(all.body["items"].as_array().unwrap().iter().all(|m| m["is_active"] == true), "{}", all.body);
    assert!(!slugs(&all).contains(&"retired-model".to_string()));
    assert!(slugs(&all).contains(&"gpt-4o-mini".to_string()));
    assert_eq!(all.body["total"], json!(count_before - 1));
    let inactive = call(&env, admin, Req::get("/admin/models?active=false")).await;
    assert_eq!(inactive.body["total"], 0, "{}", inactive.body);
    let one = call(&env, admin, Req::get(&format!("/admin/models/{mini}"))).await;
    assert_eq!((one.status, one.body["slug"].clone()), (StatusCode::OK, json!("gpt-4o-mini")));
    assert_eq!(call(&env, admin, Req::get(&format!("/admin/models/{retired_id}"))).await.status, StatusCode::NOT_FOUND);

    // The master admin sees the retired one.
    let inactive = call(&env, &master, Req::get("/admin/models?active=false")).await;
    assert_eq!(slugs(&inactive), ["retired-model"], "{}", inactive.body);
    assert_eq!(call(&env, &master, Req::get(&format!("/admin/models/{retired_id}"))).await.status, StatusCode::OK);

    // A support agent has no business with the catalog.
    let (_, sa) = env.member(&t, "sa@acme.test", "support_agent", json!({})).await;
    assert_eq!(call(&env, &sa, Req::get("/admin/models")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(price(&env, &sa, "gpt-4o-mini").await.status, StatusCode::FORBIDDEN);
    for bad in ["?provider=mistral", "?active=maybe"] {
        let r = call(&env, admin, Req::get(&format!("/admin/models{bad}"))).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    }
    assert_eq!(env.audit_count("model.update").await + env.audit_count("model.delete").await, 0);
}

#[tokio::test]
async fn invalid_models_answer_400_naming_the_field_and_store_nothing() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let with = |field: &str, value: Value| {
        let mut body = acme_model();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = acme_model();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let too_many: Vec<String> = (0..21).map(|i| format!("alias-{i}")).collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("capital letters in the slug", with("slug", json!("Acme LLM")), "slug"),
        ("an empty slug", with("slug", json!("")), "slug"),
        ("a slug too long", with("slug", json!("a".repeat(101))), "slug"),
        ("an empty name", with("name", json!("   ")), "name"),
        ("an unknown provider", with("provider", json!("mistral")), "provider"),
        ("an unknown model type", with("model_type", json!("image")), "model_type"),
        ("an empty provider model", with("provider_model", json!("")), "provider_model"),
        ("a zero context window", with("context_window", json!(0)), "context_window"),
        ("a huge context window", with("context_window", json!(10_000_001)), "context_window"),
        ("a context window as text", with("context_window", json!("big")), "context_window"),
        ("more output than context", with("max_output_tokens", json!(64000)), "max_output_tokens"),
        ("a negative price", with("input_price_per_1m", json!(-1)), "input_price_per_1m"),
        ("a price too high", with("output_price_per_1m", json!(10_000.5)), "output_price_per_1m"),
        ("a price as text", with("output_price_per_1m", json!("free")), "output_price_per_1m"),
        ("no input price", without("input_price_per_1m"), "input_price_per_1m"),
        ("a lowercase currency", with("currency", json!("eur")), "currency"),
        ("a currency of four letters", with("currency", json!("EURO")), "currency"),
        ("an alias twice", with("aliases", json!(["acme-llm", "acme-llm"])), "aliases[1]"),
        ("an empty alias", with("aliases", json!(["acme-llm", " "])), "aliases[1]"),
        ("too many aliases", with("aliases", json!(too_many)), "aliases"),
        ("an unknown field", with("temperature", json!(0.2)), "temperature"),
    ];
    let count_before = env.count("chatapp_ai_models").await;
    for (name, body, field) in cases {
        let r = call(&env, &master, Req::post("/admin/models").json(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.body);
        assert_eq!(r.code(), "validation_failed", "{name}: {}", r.body);
        assert!(message(&r).contains(field), "{name}: the message should name {field}: {}", r.body);
    }
    assert_eq!(env.count("chatapp_ai_models").await, count_before);
    assert_eq!(env.audit_count("model.create").await, 0);

    // A change is checked the same way, against the model as it would be.
    let mini = seeded_id(&env, "gpt-4o-mini").await;
    let one = format!("/admin/models/{mini}");
    for (body, field) in [
        (json!({"input_price_per_1m": -0.5}), "input_price_per_1m"),
        (json!({"max_output_tokens": 200000}), "max_output_tokens"),
        (json!({"provider": "acme"}), "provider"),
        (json!({"id": Uuid::new_v4()}), "id"),
    ] {
        let r = call(&env, &master, Req::patch(&one).json(body)).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
        assert!(message(&r).contains(field), "{field}: {}", r.body);
    }
    assert_eq!(env.audit_count("model.update").await, 0);
}

#[tokio::test]
async fn the_price_lookup_matches_snapshot_names_and_aliases() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let t = env.company("acme", "starter").await;
    let admin = t.admin_token.as_str();

    // A dated snapshot is the model it snapshots.
    let r = price(&env, admin, "gpt-4o-mini-2024-07-18").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(r.body["slug"], "gpt-4o-mini");
    assert_eq!(r.body["provider_model"], "gpt-4o-mini");
    assert_eq!(r.body["matched_by"], "snapshot");
    assert_eq!(r.body["input_price_per_1m"], 0.15);
    assert_eq!(r.body["output_price_per_1m"], 0.6);
    assert_eq!(r.body["currency"], "USD");
    // Not `gpt-4o`: the whole name before the date is matched.
    let r = price(&env, admin, "gpt-4o-2024-08-06").await;
    assert_eq!((r.body["slug"].clone(), r.body["input_price_per_1m"].clone()), (json!("gpt-4o"), json!(2.5)));
    // Anthropic's snapshots: by slug (the provider model id is `claude-3-5-haiku-latest`).
    let r = price(&env, admin, "claude-3-5-haiku-20241022").await;
    assert_eq!((r.status, r.body["slug"].clone()), (StatusCode::OK, json!("claude-3-5-haiku")), "{}", r.body);
    assert_eq!(r.body["output_price_per_1m"], 4.0);
    // The exact name and the provider model id.
    let r = price(&env, admin, "gpt-4o-mini").await;
    assert_eq!((r.body["slug"].clone(), r.body["matched_by"].clone()), (json!("gpt-4o-mini"), json!("name")));
    let r = price(&env, admin, "claude-3-5-sonnet-latest").await;
    assert_eq!((r.body["slug"].clone(), r.body["matched_by"].clone()), (json!("claude-3-5-sonnet"), json!("name")));

    // An alias, and a dated snapshot of an alias.
    let gpt4o = seeded_id(&env, "gpt-4o").await;
    let r = call(
        &env,
        &master,
        Req::patch(&format!("/admin/models/{gpt4o}")).json(json!({"aliases": ["chatgpt-4o-latest"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = price(&env, admin, "chatgpt-4o-latest").await;
    assert_eq!((r.status, r.body["slug"].clone()), (StatusCode::OK, json!("gpt-4o")), "{}", r.body);
    assert_eq!(r.body["matched_by"], "alias");
    let r = price(&env, admin, "chatgpt-4o-latest-2024-11-20").await;
    assert_eq!((r.body["slug"].clone(), r.body["matched_by"].clone()), (json!("gpt-4o"), json!("snapshot_alias")));

    // Nothing matches: 404 `unknown_model`, not a price of 0.
    for unknown in ["some-unknown-model", "gpt-5-2025-08-07", "gpt-4o-mini-12345678"] {
        let r = price(&env, admin, unknown).await;
        assert_error!(r, StatusCode::NOT_FOUND, "unknown_model");
        assert!(message(&r).contains(unknown), "{}", r.body);
    }
    let r = call(&env, admin, Req::get("/admin/models/price")).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(message(&r).contains("model"), "{}", r.body);
}

#[tokio::test]
async fn a_model_an_agent_uses_is_retired_not_deleted() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let t = env.company("acme", "starter").await;
    let mut body = acme_model();
    body["slug"] = json!("team-llm");
    body["provider_model"] = json!("team/llm");
    let r = call(&env, &master, Req::post("/admin/models").json(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = id_of(&r);
    let owner = env.owner().await;
    let agent: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, llm_config)
             VALUES ($1, 'Ada', 'active', '{\"model\": \"team/llm\"}') RETURNING id",
            &[&t.company_id],
        )
        .await
        .unwrap()
        .get(0);

    let r = call(&env, &master, Req::delete(&format!("/admin/models/{id}"))).await;
    assert_error!(r, StatusCode::CONFLICT, "model_in_use");
    assert!(message(&r).contains("is_active"), "{}", r.body);
    let r = call(&env, &master, Req::patch(&format!("/admin/models/{id}")).json(json!({"is_active": false}))).await;
    assert_eq!((r.status, r.body["is_active"].clone()), (StatusCode::OK, json!(false)), "{}", r.body);
    // Retired, it still prices what a turn reports.
    let r = price(&env, &t.admin_token, "team/llm").await;
    assert_eq!((r.status, r.body["is_active"].clone()), (StatusCode::OK, json!(false)), "{}", r.body);

    owner.execute("UPDATE chatapp_agents SET llm_config = '{}' WHERE id = $1", &[&agent]).await.unwrap();
    let r = call(&env, &master, Req::delete(&format!("/admin/models/{id}"))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(env.audit_count("model.delete").await, 1);
}

/// A streamed OpenAI answer reporting `model`, with its usage.
fn stream(model: &str, prompt_tokens: u32, completion_tokens: u32) -> String {
    let chunk = |v: Value| format!("data: {v}\n\n");
    [
        chunk(json!({"model": model, "choices": [{"index": 0, "delta": {"content": "Refunds take five days."}}]})),
        chunk(json!({"model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})),
        chunk(json!({"model": model, "choices": [],
                     "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}})),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat()
}

fn sse(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).insert_header("content-type", "text/event-stream").set_body_string(body)
}

/// An active agent without knowledge (no retrieval) and its widget.
async fn widget_agent(env: &TestEnv, company: Uuid) -> Uuid {
    let owner = env.owner().await;
    let agent: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, system_prompt, rag_enabled)
             VALUES ($1, 'Ada', 'active', 'You help customers of Acme.', false) RETURNING id",
            &[&company],
        )
        .await
        .unwrap()
        .get(0);
    owner
        .execute(
            "INSERT INTO chatapp_widget_configs (company_id, agent_id, title, welcome_message, allowed_domains)
             VALUES ($1, $2, 'Acme help', 'Hi! Ask me anything.', '[]'::jsonb)",
            &[&company, &agent],
        )
        .await
        .unwrap();
    agent
}

/// (token_count, unpriced_tokens, estimated_cost) of the company's usage rows.
async fn usage(env: &TestEnv, company: Uuid) -> (i64, i64, f64) {
    let row = env
        .owner()
        .await
        .query_one(
            "SELECT COALESCE(sum(token_count), 0)::int8, COALESCE(sum(unpriced_tokens), 0)::int8,
                    COALESCE(sum(estimated_cost), 0)::float8
             FROM chatapp_usage_records WHERE company_id = $1",
            &[&company],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test]
async fn a_turn_with_an_unknown_model_is_recorded_unpriced_and_a_snapshot_is_priced() {
    let server = MockServer::start().await;
    // The first answer reports a model the catalog does not know; the next ones a dated snapshot
    // of one it does.
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse(stream("some-unknown-model", 1000, 50)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse(stream("gpt-4o-mini-2024-07-18", 100_000, 20_000)))
        .mount(&server)
        .await;
    let base = format!("{}/v1", server.uri());
    let env =
        TestEnv::with(&[("CHAT_PROVIDER", "openai"), ("CHAT_BASE_URL", &base), ("CHAT_MODEL", "gpt-4o-mini")]).await;
    let t = env.company("acme", "starter").await;
    let agent = widget_agent(&env, t.company_id).await;
    let r =
        env.send(HttpFunction::Widget, Req::post(&format!("/widget/agents/{agent}/sessions")).json(json!({}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let conversation: Uuid = r.body["conversation_id"].as_str().unwrap().parse().unwrap();
    let token = r.body["session_token"].as_str().unwrap().to_string();

    // Unknown: no price, said so, and the tokens counted as unpriced.
    let out = say(&env, conversation, &token, "How long do refunds take?").await;
    let meta = &out["reply"]["metadata"];
    assert_eq!(meta["kind"], "answer", "{out}");
    assert_eq!(meta["model"], "some-unknown-model", "{out}");
    assert_eq!(meta["cost_unknown"], true, "{out}");
    assert!(meta.get("estimated_cost").is_some_and(Value::is_null), "no price, not a price of 0: {out}");
    assert_eq!(usage(&env, t.company_id).await, (1050, 1050, 0.0));

    // A dated snapshot of a catalog model: priced as that model.
    let out = say(&env, conversation, &token, "And for international orders?").await;
    let meta = &out["reply"]["metadata"];
    assert_eq!(meta["model"], "gpt-4o-mini-2024-07-18", "{out}");
    assert!(meta.get("cost_unknown").is_none(), "{out}");
    // (100,000 × 0.15 + 20,000 × 0.60) / 1,000,000
    let cost = meta["estimated_cost"].as_f64().unwrap_or_else(|| panic!("a cost: {out}"));
    assert!((cost - 0.027).abs() < 1e-9, "{cost}");
    let (tokens, unpriced, recorded) = usage(&env, t.company_id).await;
    assert_eq!((tokens, unpriced), (1050 + 120_000, 1050), "only the unknown model's tokens are unpriced");
    assert!((recorded - 0.027).abs() < 1e-9, "{recorded}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}
