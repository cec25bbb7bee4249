//! HTTP actions of an agent through the agents function's handlers: create (the signing secret
//! shown once), list, read, change, rotate the secret and delete, with an audit row each; header
//! values and signing secrets never in a later response, the database in clear or the audit
//! trail; bodies checked (400 naming the field, nothing stored); duplicate names 409; other
//! companies' agents and actions not found; support agents kept out; a stored action called by
//! the executor (`chatapp::chat::tools::http_action`), signed, with its sealed headers; internal
//! addresses refused, on save and on call, when `HTTP_ACTIONS_ALLOW_PRIVATE` is off; no actions
//! for an agent whose package lacks `tools` (403); at most 32 enabled actions per agent (409).

use chatapp::chat::tools::http_action::{self, ActionCall};
use chatapp::sealed::SealingKey;
use chatapp_functions::http_function::HttpFunction::{AgentPackages, Agents};
use chatapp_tests::{assert_error, bearer, Req, Resp, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const HEADER_VALUE: &str = "sk-live-very-secret-header-value-7788";
const ROTATED_VALUE: &str = "sk-live-another-secret-header-value-9911";
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

fn actions(agent: Uuid) -> String {
    format!("/admin/agents/{agent}/actions")
}

fn one(agent: Uuid, id: &str) -> String {
    format!("/admin/agents/{agent}/actions/{id}")
}

/// A valid action, with `changes` over it.
fn action(changes: Value) -> Value {
    let mut body = json!({
        "name": "lookup_order",
        "description": "Looks an order up by its number",
        "parameters": {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
        "url": "https://api.acme.test/orders",
        "method": "GET",
        "headers": {"X-Api-Key": HEADER_VALUE},
        "timeout_ms": 3000
    });
    for (k, v) in changes.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn create(env: &TestEnv, token: &str, agent: Uuid, body: Value) -> Resp {
    call(env, token, Req::post(&actions(agent)).json(body)).await
}

/// The created action's id and its signing secret.
fn created(r: &Resp) -> (String, String) {
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["action"]["id"].as_str().unwrap_or_else(|| panic!("no id in {}", r.body)).to_string();
    (id, r.body["signing_secret"].as_str().unwrap().to_string())
}

fn message(r: &Resp) -> String {
    r.body["error"]["message"].as_str().unwrap_or("").to_string()
}

/// None of `secrets` anywhere in the response.
fn assert_hidden(r: &Resp, secrets: &[&str]) {
    let text = r.body.to_string();
    for s in secrets {
        assert!(!text.contains(s), "a secret in a response ({}): {text}", r.status);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn rows(env: &TestEnv, company: Uuid) -> i64 {
    env.count(&format!("chatapp_agent_actions WHERE company_id = '{company}'")).await
}

/// Lowercase hex HMAC-SHA256, computed here independently of the platform.
fn hmac_hex(key: &str, message: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    ring::hmac::sign(&key, message).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn the_life_of_an_action_never_shows_its_secrets() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let tok = t.admin_token.as_str();
    let agent = add_agent(&env, t.company_id, "Ada").await;

    let r = create(&env, tok, agent, action(json!({}))).await;
    let (id, first_secret) = created(&r);
    assert!(first_secret.starts_with("whsec_") && first_secret.len() == 6 + 43, "{first_secret}");
    let a = &r.body["action"];
    assert_eq!(a["name"], "lookup_order");
    assert_eq!(a["agent_id"], agent.to_string());
    assert_eq!(a["method"], "GET");
    assert_eq!(a["url"], "https://api.acme.test/orders");
    assert_eq!(a["header_names"], json!(["X-Api-Key"]));
    assert_eq!(a["timeout_ms"], 3000);
    assert_eq!(a["enabled"], true);
    assert_eq!(a["created_by"], t.admin_id.to_string());
    assert_eq!(a["parameters"]["required"], json!(["order"]));
    assert!(a.get("headers").is_none() && a.get("signing_secret").is_none(), "{a}");
    assert!(r.body["usage"].as_str().unwrap().contains("X-Chatapp-Signature"));
    assert_hidden(&r, &[HEADER_VALUE]);
    // Defaults: POST, 5000 ms, enabled, no headers.
    let r = create(
        &env,
        tok,
        agent,
        json!({"name": "create-ticket", "description": "Opens a ticket", "parameters": {"type": "object"},
               "url": "https://api.acme.test/tickets"}),
    )
    .await;
    let (ticket, _) = created(&r);
    let a = &r.body["action"];
    assert_eq!((a["method"].clone(), a["timeout_ms"].clone()), (json!("POST"), json!(5000)));
    assert_eq!(a["header_names"], json!([]));
    assert_eq!(env.audit_count("agent_action.create").await, 2);

    let mut later = Vec::new();
    let r = call(&env, tok, Req::get(&actions(agent))).await;
    assert_eq!((r.status, r.body["total"].clone()), (StatusCode::OK, json!(2)), "{}", r.body);
    let names: Vec<&str> = r.body["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["create-ticket", "lookup_order"], "by name");
    later.push(r);
    let r = call(&env, tok, Req::get(&format!("{}?limit=1&offset=1", actions(agent)))).await;
    assert_eq!((r.body["items"][0]["name"].clone(), r.body["total"].clone()), (json!("lookup_order"), json!(2)));
    let r = call(&env, tok, Req::get(&one(agent, &id))).await;
    assert_eq!((r.status, r.body["header_names"].clone()), (StatusCode::OK, json!(["X-Api-Key"])), "{}", r.body);
    later.push(r);

    // Partial change: absent fields kept, the headers too.
    let r = call(
        &env,
        tok,
        Req::patch(&one(agent, &id))
            .json(json!({"description": "Finds an order", "timeout_ms": 8000, "enabled": false})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["description"].clone(), r.body["timeout_ms"].clone()), (json!("Finds an order"), json!(8000)));
    assert_eq!((r.body["enabled"].clone(), r.body["header_names"].clone()), (json!(false), json!(["X-Api-Key"])));
    assert_eq!(r.body["name"], "lookup_order");
    later.push(r);
    // New headers replace them all.
    let bearer_value = format!("Bearer {ROTATED_VALUE}");
    let r = call(
        &env,
        tok,
        Req::patch(&one(agent, &id)).json(json!({"headers": {"Authorization": bearer_value, "X-Tenant": "acme-1"}})),
    )
    .await;
    assert_eq!(r.body["header_names"], json!(["Authorization", "X-Tenant"]), "{}", r.body);
    later.push(r);
    // The same origin keeps the headers; another origin must give them again.
    let r = call(&env, tok, Req::patch(&one(agent, &id)).json(json!({"url": "https://api.acme.test/v2/orders"}))).await;
    assert_eq!(r.body["url"], "https://api.acme.test/v2/orders", "{}", r.body);
    later.push(r);
    let r = call(&env, tok, Req::patch(&one(agent, &id)).json(json!({"url": "https://collector.evil.test/"}))).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(message(&r).starts_with("headers"), "{}", r.body);

    // In the database: no column holds a header value or the secret in clear; the sealed bytes
    // open (bound to the company and the action) to exactly them.
    let owner = env.owner().await;
    let action_id: Uuid = id.parse().unwrap();
    let row = owner
        .query_one(
            "SELECT row_to_json(x)::text, headers_sealed, signing_secret_sealed FROM chatapp_agent_actions x
             WHERE id = $1",
            &[&action_id],
        )
        .await
        .unwrap();
    let (text, headers_sealed, secret_sealed): (String, Vec<u8>, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
    for s in [HEADER_VALUE, ROTATED_VALUE, first_secret.as_str()] {
        assert!(!text.contains(s), "a secret in clear: {text}");
        assert!(!contains(&headers_sealed, s.as_bytes()) && !contains(&secret_sealed, s.as_bytes()));
    }
    let key = SealingKey::new(env.cfg.secrets_key.expose());
    let opened: Value = serde_json::from_slice(&key.open(t.company_id, action_id, &headers_sealed).unwrap()).unwrap();
    assert_eq!(opened, json!({"Authorization": format!("Bearer {ROTATED_VALUE}"), "X-Tenant": "acme-1"}));
    assert_eq!(key.open(t.company_id, action_id, &secret_sealed).unwrap(), first_secret.as_bytes());
    assert!(key.open(t.company_id, Uuid::new_v4(), &secret_sealed).is_err(), "bound to its row");

    // Moving with new headers; `{}` removes them.
    let r = call(
        &env,
        tok,
        Req::patch(&one(agent, &id)).json(json!({"url": "https://orders.acme.test/find", "headers": {}})),
    )
    .await;
    assert_eq!((r.status, r.body["header_names"].clone()), (StatusCode::OK, json!([])), "{}", r.body);
    later.push(r);
    let sealed: Option<Vec<u8>> = owner
        .query_one("SELECT headers_sealed FROM chatapp_agent_actions WHERE id = $1", &[&action_id])
        .await
        .unwrap()
        .get(0);
    assert!(sealed.is_none());

    // Rotation: a new secret, shown once, replacing the old one.
    let r = call(&env, tok, Req::post(&format!("{}/rotate-secret", one(agent, &id)))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let second_secret = r.body["signing_secret"].as_str().unwrap().to_string();
    assert!(second_secret.starts_with("whsec_") && second_secret != first_secret);
    assert_eq!(r.body["action"]["id"], id);
    let sealed: Vec<u8> = owner
        .query_one("SELECT signing_secret_sealed FROM chatapp_agent_actions WHERE id = $1", &[&action_id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(key.open(t.company_id, action_id, &sealed).unwrap(), second_secret.as_bytes());
    later.push(call(&env, tok, Req::get(&one(agent, &id))).await);
    later.push(call(&env, tok, Req::get(&actions(agent))).await);
    for r in &later {
        assert_hidden(r, &[HEADER_VALUE, ROTATED_VALUE, first_secret.as_str(), second_secret.as_str()]);
    }

    // The audit trail: every change, never a secret.
    let audit: String = owner
        .query_one("SELECT COALESCE(string_agg(details::text, ' '), '') FROM chatapp_audit_logs", &[])
        .await
        .unwrap()
        .get(0);
    for s in [HEADER_VALUE, ROTATED_VALUE, first_secret.as_str(), second_secret.as_str()] {
        assert!(!audit.contains(s), "a secret in the audit log");
    }
    assert_eq!(env.audit_count("agent_action.update").await, 4);
    assert_eq!(env.audit_count("agent_action.rotate_secret").await, 1);

    // Delete.
    let r = call(&env, tok, Req::delete(&one(agent, &id))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_error!(call(&env, tok, Req::get(&one(agent, &id))).await, StatusCode::NOT_FOUND, "not_found");
    assert_error!(call(&env, tok, Req::delete(&one(agent, &id))).await, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(env.audit_count("agent_action.delete").await, 1);
    assert_eq!(rows(&env, t.company_id).await, 1);
    assert_eq!(call(&env, tok, Req::get(&one(agent, &ticket))).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_stored_action_is_called_signed_with_its_headers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("order", "A-1042"))
        .and(header("x-api-key", HEADER_VALUE))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": "A-1042", "status": "shipped"})))
        .mount(&server)
        .await;
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let agent = add_agent(&env, t.company_id, "Ada").await;
    let url = format!("{}/orders", server.uri());
    let (id, secret) = created(&create(&env, &t.admin_token, agent, action(json!({"url": url}))).await);

    // What the chat turn reads: the enabled actions with their sealed secrets.
    let ctx = env.deps.auth.authenticate(Some(&bearer(&t.admin_token)), &Default::default()).await.unwrap();
    let tx = env.deps.db.begin(&ctx).await.unwrap();
    let loaded = chatapp::repo::actions::enabled_for_agent(&tx, t.company_id, agent).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].action.id.to_string(), id);

    let conversation = Uuid::new_v4();
    let outcome = http_action::call(
        &env.cfg,
        ActionCall {
            action: &loaded[0],
            arguments: &json!({"order": "A-1042"}),
            company_id: t.company_id,
            conversation_id: conversation,
            call_id: "call_7",
        },
    )
    .await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.status, Some(200));
    assert!(outcome.content.contains("shipped"), "{}", outcome.content);

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let received = &requests[0];
    let get = |name: &str| received.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert_eq!(get("x-chatapp-call-id"), "call_7");
    assert_eq!(get("x-chatapp-conversation-id"), conversation.to_string());
    assert!(received.body.is_empty(), "GET sends no body");
    let signature = get("x-chatapp-signature");
    let (t_part, v1_part) = signature.split_once(',').unwrap();
    let timestamp = t_part.strip_prefix("t=").unwrap();
    // A GET's arguments travel in the query, so the query is what is signed.
    let query = received.url.query().unwrap_or_default();
    assert!(query.contains("order=A-1042"), "{query}");
    let expected = hmac_hex(&secret, format!("{timestamp}.{query}").as_bytes());
    assert_eq!(v1_part.strip_prefix("v1=").unwrap(), expected);

    // A disabled action is not offered.
    let r = call(&env, &t.admin_token, Req::patch(&one(agent, &id)).json(json!({"enabled": false}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let tx = env.deps.db.begin(&ctx).await.unwrap();
    let loaded = chatapp::repo::actions::enabled_for_agent(&tx, t.company_id, agent).await.unwrap();
    tx.commit().await.unwrap();
    assert!(loaded.is_empty());
}

#[tokio::test]
async fn a_clone_gets_the_actions_sealed_again_and_calls_them_the_same_way() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/refunds"))
        .and(header("x-api-key", HEADER_VALUE))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"refund": "queued"})))
        .mount(&server)
        .await;
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let agent = add_agent(&env, t.company_id, "Ada").await;
    let url = format!("{}/refunds", server.uri());
    let (_, secret) = created(
        &create(&env, &t.admin_token, agent, action(json!({"name": "refund", "url": url, "method": "POST"}))).await,
    );
    created(&create(&env, &t.admin_token, agent, action(json!({"name": "spare", "enabled": false}))).await);

    let r = call(&env, &t.admin_token, Req::post(&format!("/admin/agents/{agent}/clone"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let copy: Uuid = r.body["id"].as_str().unwrap().parse().unwrap();
    let r = call(&env, &t.admin_token, Req::get(&actions(copy))).await;
    assert_eq!(r.body["total"], 2, "{}", r.body);
    let listed: Vec<(String, bool, Value)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_string(), a["enabled"].as_bool().unwrap(), a["header_names"].clone()))
        .collect();
    assert_eq!(
        listed,
        vec![("refund".into(), true, json!(["X-Api-Key"])), ("spare".into(), false, json!(["X-Api-Key"]))]
    );
    assert_hidden(&r, &[HEADER_VALUE, &secret]);
    assert_eq!(rows(&env, t.company_id).await, 4);
    let audit = env
        .owner()
        .await
        .query_one("SELECT details->'before' FROM chatapp_audit_logs WHERE action = 'agent.clone'", &[])
        .await
        .unwrap();
    let copied = audit.get::<_, Value>(0)["actions_copied"].clone();
    let names: Vec<&str> = copied.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["refund", "spare"], "{copied}");

    // The copy's action, opened under its own id, sends the same header, signed with the same secret.
    let ctx = env.deps.auth.authenticate(Some(&bearer(&t.admin_token)), &Default::default()).await.unwrap();
    let tx = env.deps.db.begin(&ctx).await.unwrap();
    let loaded = chatapp::repo::actions::enabled_for_agent(&tx, t.company_id, copy).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(loaded.len(), 1);
    let outcome = http_action::call(
        &env.cfg,
        ActionCall {
            action: &loaded[0],
            arguments: &json!({"order": "A-7"}),
            company_id: t.company_id,
            conversation_id: Uuid::new_v4(),
            call_id: "call_copy",
        },
    )
    .await;
    assert!(outcome.ok, "{outcome:?}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let signature = requests[0].headers.get("x-chatapp-signature").unwrap().to_str().unwrap().to_string();
    let (t_part, v1_part) = signature.split_once(',').unwrap();
    let mut signed = format!("{}.", t_part.strip_prefix("t=").unwrap()).into_bytes();
    signed.extend_from_slice(&requests[0].body);
    assert_eq!(v1_part.strip_prefix("v1=").unwrap(), hmac_hex(&secret, &signed));
}

#[tokio::test]
async fn invalid_actions_are_refused_naming_the_field_and_nothing_is_stored() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let tok = t.admin_token.as_str();
    let agent = add_agent(&env, t.company_id, "Ada").await;
    let many: serde_json::Map<String, Value> = (0..21).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    let mut nameless = action(json!({}));
    let removed = nameless.as_object_mut().unwrap().remove("name");
    assert!(removed.is_some());
    let cases: Vec<(Value, &str)> = vec![
        (action(json!({"name": "1st_action"})), "name"),
        (action(json!({"name": "has space"})), "name"),
        (action(json!({"name": "x".repeat(65)})), "name"),
        (action(json!({"name": "search_knowledge"})), "name"),
        (action(json!({"name": "End_Conversation"})), "name"),
        (action(json!({"name": 7})), "name"),
        (nameless, "name"),
        (action(json!({"description": " "})), "description"),
        (action(json!({"description": "x".repeat(1001)})), "description"),
        (action(json!({"parameters": [1, 2]})), "parameters"),
        (action(json!({"parameters": {"type": "string"}})), "parameters.type"),
        (action(json!({"parameters": {"type": "object", "properties": {"a": 1}}})), "parameters.properties.a"),
        (action(json!({"parameters": {"type": "object", "x": "y".repeat(21_000)}})), "parameters"),
        (action(json!({"url": "ftp://files.acme.test/x"})), "url"),
        (action(json!({"url": "/orders"})), "url"),
        (action(json!({"url": "https://user:pass@api.acme.test/orders"})), "url"),
        (action(json!({"url": format!("https://api.acme.test/{}", "a".repeat(2000))})), "url"),
        (action(json!({"method": "FETCH"})), "method"),
        (action(json!({"method": "get"})), "method"),
        (action(json!({"headers": {"Host": "api.acme.test"}})), "headers.Host"),
        (action(json!({"headers": {"Content-Length": "10"}})), "headers.Content-Length"),
        (action(json!({"headers": {"X-Chatapp-Signature": "t=1,v1=00"}})), "headers.X-Chatapp-Signature"),
        (action(json!({"headers": {"Bad Header": "x"}})), "headers.Bad Header"),
        (action(json!({"headers": {"X-Key": "line\r\nInjected: 1"}})), "headers.X-Key"),
        (action(json!({"headers": {"X-Key": 5}})), "headers.X-Key"),
        (action(json!({"headers": {"X-Key": "a", "x-key": "b"}})), "headers.x-key"),
        (action(json!({"headers": many})), "headers"),
        (action(json!({"timeout_ms": 99})), "timeout_ms"),
        (action(json!({"timeout_ms": 10_001})), "timeout_ms"),
        (action(json!({"timeout_ms": "fast"})), "timeout_ms"),
        (action(json!({"secret": "mine"})), "secret"),
    ];
    for (body, field) in cases {
        let r = create(&env, tok, agent, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.code(), "validation_failed", "{body}: {}", r.body);
        assert!(message(&r).contains(field), "{body}: the message should name {field}: {}", message(&r));
        assert_hidden(&r, &[HEADER_VALUE, "Injected"]);
    }
    assert_eq!(rows(&env, t.company_id).await, 0);
    assert_eq!(env.audit_count("agent_action.create").await, 0);

    // A change is checked the same way, and nothing changes.
    let (id, _) = created(&create(&env, tok, agent, action(json!({}))).await);
    for (body, field) in [
        (json!({"name": "request_human_handover"}), "name"),
        (json!({"parameters": {"type": "array"}}), "parameters.type"),
        (json!({"url": "https://api.acme.test/#x"}), "url"),
        (json!({"method": "OPTIONS"}), "method"),
        (json!({"headers": {"Connection": "close"}}), "headers.Connection"),
        (json!({"timeout_ms": 0}), "timeout_ms"),
        (json!({"enabled": "yes"}), "enabled"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let r = call(&env, tok, Req::patch(&one(agent, &id)).json(body.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert!(message(&r).contains(field), "{body}: the message should name {field}: {}", message(&r));
    }
    let r = call(&env, tok, Req::get(&one(agent, &id))).await;
    assert_eq!((r.body["name"].clone(), r.body["timeout_ms"].clone()), (json!("lookup_order"), json!(3000)));
    assert_eq!(r.body["header_names"], json!(["X-Api-Key"]));
    assert_eq!(env.audit_count("agent_action.update").await, 0);
}

#[tokio::test]
async fn names_are_unique_per_agent() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let tok = t.admin_token.as_str();
    let ada = add_agent(&env, t.company_id, "Ada").await;
    let bob = add_agent(&env, t.company_id, "Bob").await;
    created(&create(&env, tok, ada, action(json!({}))).await);
    for name in ["lookup_order", "Lookup_Order"] {
        let r = create(&env, tok, ada, action(json!({"name": name}))).await;
        assert_error!(r, StatusCode::CONFLICT, "name_taken");
        assert!(message(&r).contains("name"), "{}", r.body);
    }
    // Another agent has its own names.
    created(&create(&env, tok, bob, action(json!({}))).await);
    // Renaming into a taken name is refused too.
    let (other, _) = created(&create(&env, tok, ada, action(json!({"name": "track_parcel"}))).await);
    let r = call(&env, tok, Req::patch(&one(ada, &other)).json(json!({"name": "LOOKUP_ORDER"}))).await;
    assert_error!(r, StatusCode::CONFLICT, "name_taken");
    assert_eq!(call(&env, tok, Req::get(&one(ada, &other))).await.body["name"], "track_parcel");
    assert_eq!(rows(&env, t.company_id).await, 3);
    assert_eq!(env.audit_count("agent_action.create").await, 3);
    assert_eq!(env.audit_count("agent_action.update").await, 0);
}

#[tokio::test]
async fn other_companies_agents_and_actions_are_not_found_and_support_agents_are_kept_out() {
    let env = TestEnv::new().await;
    let a = env.company("alpha", "starter").await;
    let b = env.company("beta", "starter").await;
    let a_agent = add_agent(&env, a.company_id, "Ada").await;
    let b_agent = add_agent(&env, b.company_id, "Bea").await;
    let (id, _) = created(&create(&env, &a.admin_token, a_agent, action(json!({}))).await);
    let rotate = |agent: Uuid| Req::post(&format!("{}/rotate-secret", one(agent, &id)));

    // B can neither reach A's agent nor A's action, through A's agent or its own.
    for agent in [a_agent, b_agent] {
        for req in [
            Req::get(&one(agent, &id)),
            Req::patch(&one(agent, &id)).json(json!({"timeout_ms": 9000})),
            Req::delete(&one(agent, &id)),
            rotate(agent),
        ] {
            assert_error!(call(&env, &b.admin_token, req).await, StatusCode::NOT_FOUND, "not_found");
        }
    }
    for req in [
        Req::get(&actions(a_agent)),
        Req::post(&actions(a_agent)).json(action(json!({"name": "intruder"}))),
        Req::get(&actions(UNKNOWN.parse().unwrap())),
        Req::get(&one(a_agent, UNKNOWN)),
        Req::get(&one(a_agent, "not-a-uuid")),
        Req::get("/admin/agents/not-a-uuid/actions"),
    ] {
        assert_error!(call(&env, &b.admin_token, req).await, StatusCode::NOT_FOUND, "not_found");
    }
    let r = call(&env, &b.admin_token, Req::get(&actions(b_agent))).await;
    assert_eq!(r.body["total"], 0, "{}", r.body);
    assert_eq!(rows(&env, b.company_id).await, 0);
    let r = call(&env, &a.admin_token, Req::get(&one(a_agent, &id))).await;
    assert_eq!((r.body["timeout_ms"].clone(), r.body["enabled"].clone()), (json!(3000), json!(true)));
    // A's action under A's other agent's path is not found either.
    let a_other = add_agent(&env, a.company_id, "Abe").await;
    assert_error!(call(&env, &a.admin_token, Req::get(&one(a_other, &id))).await, StatusCode::NOT_FOUND, "not_found");

    // The master admin acts for a company it names.
    let master = env.master_token().await;
    let r = call(&env, &master, Req::get(&format!("{}?company_id={}", actions(a_agent), a.company_id))).await;
    assert_eq!((r.status, r.body["total"].clone()), (StatusCode::OK, json!(1)), "{}", r.body);

    // A support agent needs the agents permissions: none, then read only.
    let (_, plain) = env.member(&a, "plain@alpha.test", "support_agent", json!({})).await;
    let (_, reader) = env.member(&a, "reader@alpha.test", "support_agent", json!({"agents": ["read"]})).await;
    for req in [
        Req::get(&actions(a_agent)),
        Req::get(&one(a_agent, &id)),
        Req::post(&actions(a_agent)).json(action(json!({"name": "sneaky"}))),
        Req::patch(&one(a_agent, &id)).json(json!({"enabled": false})),
        Req::delete(&one(a_agent, &id)),
        rotate(a_agent),
    ] {
        assert_error!(call(&env, &plain, req).await, StatusCode::FORBIDDEN, "forbidden");
    }
    assert_eq!(call(&env, &reader, Req::get(&actions(a_agent))).await.status, StatusCode::OK);
    assert_eq!(call(&env, &reader, Req::get(&one(a_agent, &id))).await.status, StatusCode::OK);
    for req in [Req::post(&actions(a_agent)).json(action(json!({"name": "sneaky"}))), rotate(a_agent)] {
        assert_error!(call(&env, &reader, req).await, StatusCode::FORBIDDEN, "forbidden");
    }
    assert_eq!(rows(&env, a.company_id).await, 1);
    assert_eq!(env.audit_count("agent_action.create").await, 1);
    for action in ["agent_action.update", "agent_action.delete", "agent_action.rotate_secret"] {
        assert_eq!(env.audit_count(action).await, 0, "{action}");
    }
}

#[tokio::test]
async fn internal_addresses_are_refused_when_private_addresses_are_not_allowed() {
    let env = TestEnv::with(&[("HTTP_ACTIONS_ALLOW_PRIVATE", "false")]).await;
    assert!(!env.cfg.http_actions_allow_private);
    let t = env.company("acme", "starter").await;
    let tok = t.admin_token.as_str();
    let agent = add_agent(&env, t.company_id, "Ada").await;

    // Saving: a URL whose host is an internal address is refused, nothing stored.
    for url in [
        "http://127.0.0.1:1/x",
        "http://10.0.0.7/hook",
        "http://192.168.1.20/hook",
        "http://100.64.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:127.0.0.1]/x",
    ] {
        let r = create(&env, tok, agent, action(json!({"url": url}))).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
        assert!(message(&r).starts_with("url"), "{url}: {}", r.body);
    }
    assert_eq!(rows(&env, t.company_id).await, 0);
    // A host name is checked at each call; moving to an internal address is refused too.
    let (id, _) = created(&create(&env, tok, agent, action(json!({}))).await);
    let r = call(&env, tok, Req::patch(&one(agent, &id)).json(json!({"url": "http://10.1.2.3/orders", "headers": {}})))
        .await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(message(&r).starts_with("url"), "{}", r.body);
    assert_eq!(call(&env, tok, Req::get(&one(agent, &id))).await.body["url"], "https://api.acme.test/orders");

    // Calling: an action whose address is internal (literally, or by its name) is not called.
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(200).set_body_string("reached")).mount(&server).await;
    let ctx = env.deps.auth.authenticate(Some(&bearer(&t.admin_token)), &Default::default()).await.unwrap();
    let tx = env.deps.db.begin(&ctx).await.unwrap();
    let loaded = chatapp::repo::actions::enabled_for_agent(&tx, t.company_id, agent).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(loaded.len(), 1);
    for url in
        [format!("{}/orders", server.uri()), format!("{}/orders", server.uri().replace("127.0.0.1", "localhost"))]
    {
        let mut stored = loaded[0].clone();
        stored.action.url = url.clone();
        let outcome = http_action::call(
            &env.cfg,
            ActionCall {
                action: &stored,
                arguments: &json!({"order": "A-1"}),
                company_id: t.company_id,
                conversation_id: Uuid::new_v4(),
                call_id: "call_1",
            },
        )
        .await;
        assert!(!outcome.ok && outcome.status.is_none(), "{url}: {outcome:?}");
        assert!(outcome.content.contains("not public"), "{url}: {}", outcome.content);
    }
    assert!(server.received_requests().await.unwrap().is_empty(), "nothing reached the server");
}

#[tokio::test]
async fn an_agent_whose_package_lacks_tools_gets_no_actions() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let t = env.company("acme", "professional").await;
    let tok = t.admin_token.as_str();
    let package_body = json!({"name": "FAQ only", "slug": "faq-only", "version": "1.0.0", "capabilities": ["rag"]});
    let r = env.send(AgentPackages, Req::post("/admin/agent-packages").token(&master).json(package_body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let package = r.body["id"].as_str().unwrap().to_string();
    let r =
        env.send(AgentPackages, Req::post(&format!("/admin/agent-packages/{package}/publish")).token(&master)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = env
        .send(Agents, Req::post("/admin/agents").token(tok).json(json!({"name": "FAQ", "package_id": package})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let agent: Uuid = r.body["id"].as_str().unwrap().parse().unwrap();

    for enabled in [true, false] {
        let r = create(&env, tok, agent, action(json!({"enabled": enabled}))).await;
        assert_error!(r, StatusCode::FORBIDDEN, "capability_missing");
        assert!(message(&r).contains("tools"), "{}", r.body);
    }
    assert_eq!(rows(&env, t.company_id).await, 0);
    assert_eq!(env.audit_count("agent_action.create").await, 0);

    // An action stored while the agent had `tools` (its own capabilities, set here in the
    // database) cannot be enabled once it has not; other changes still can be made.
    let owner = env.owner().await;
    let with_tools = "UPDATE chatapp_agents SET capabilities = '[\"rag\", \"tools\"]'::jsonb WHERE id = $1";
    owner.execute(with_tools, &[&agent]).await.unwrap();
    let (id, _) = created(&create(&env, tok, agent, action(json!({"enabled": false}))).await);
    let without = "UPDATE chatapp_agents SET capabilities = '[\"rag\"]'::jsonb WHERE id = $1";
    owner.execute(without, &[&agent]).await.unwrap();
    let r = call(&env, tok, Req::patch(&one(agent, &id)).json(json!({"enabled": true}))).await;
    assert_error!(r, StatusCode::FORBIDDEN, "capability_missing");
    assert_eq!(call(&env, tok, Req::get(&one(agent, &id))).await.body["enabled"], false);
    let r = call(&env, tok, Req::patch(&one(agent, &id)).json(json!({"description": "Still documented"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(env.audit_count("agent_action.update").await, 1);
}

#[tokio::test]
async fn an_agent_has_at_most_32_enabled_actions() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let tok = t.admin_token.as_str();
    let agent = add_agent(&env, t.company_id, "Ada").await;
    let plain = |name: String, enabled: bool| {
        json!({"name": name, "description": "An action", "parameters": {"type": "object"},
               "url": "https://api.acme.test/x", "enabled": enabled})
    };
    let mut first = String::new();
    for i in 0..32 {
        let (id, _) = created(&create(&env, tok, agent, plain(format!("action_{i}"), true)).await);
        if i == 0 {
            first = id;
        }
    }
    let r = create(&env, tok, agent, plain("one_more".into(), true)).await;
    assert_error!(r, StatusCode::CONFLICT, "action_limit_reached");
    assert!(message(&r).contains("32"), "{}", r.body);
    // A disabled one may be stored, not enabled while 32 are.
    let (spare, _) = created(&create(&env, tok, agent, plain("spare".into(), false)).await);
    let r = call(&env, tok, Req::patch(&one(agent, &spare)).json(json!({"enabled": true}))).await;
    assert_error!(r, StatusCode::CONFLICT, "action_limit_reached");
    // Re-enabling an enabled one is no new one.
    let r = call(&env, tok, Req::patch(&one(agent, &first)).json(json!({"enabled": true}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(&env, tok, Req::patch(&one(agent, &first)).json(json!({"enabled": false}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(&env, tok, Req::patch(&one(agent, &spare)).json(json!({"enabled": true}))).await;
    assert_eq!((r.status, r.body["enabled"].clone()), (StatusCode::OK, json!(true)), "{}", r.body);
    // Another agent has its own 32.
    let other = add_agent(&env, t.company_id, "Bob").await;
    created(&create(&env, tok, other, plain("action_0".into(), true)).await);
    assert_eq!(rows(&env, t.company_id).await, 34);
}
