//! Agent packages through the `agent-packages` function: the master admin creates, versions
//! (a version must be greater than the current one), publishes, uploads the bundle (checked
//! against the declared SHA-256: a mismatch stores nothing), deactivates and deletes packages;
//! company admins see the active, published ones only (without the master-only configuration)
//! and change nothing; agents are made from active packages only and counted; a package in use
//! is kept; every change writes its audit row and bad input stores nothing.

use chatapp::repo::packages::bundle_key;
use chatapp::tenant::CompanyId;
use chatapp_functions::http_function::HttpFunction::{AgentPackages, Agents};
use chatapp_tests::{assert_error, Req, Resp, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

const BASE: &str = "/admin/agent-packages";

async fn call(env: &TestEnv, token: &str, req: Req) -> Resp {
    env.send(AgentPackages, req.token(token)).await
}

async fn create(env: &TestEnv, token: &str, body: Value) -> Resp {
    call(env, token, Req::post(BASE).json(body)).await
}

/// `POST /admin/agent-packages/{id}/{action}` (publish, deactivate, activate).
async fn act(env: &TestEnv, token: &str, id: &str, action: &str) -> Resp {
    call(env, token, Req::post(&format!("{BASE}/{id}/{action}"))).await
}

async fn new_version(env: &TestEnv, token: &str, id: &str, body: Value) -> Resp {
    call(env, token, Req::post(&format!("{BASE}/{id}/versions")).json(body)).await
}

async fn upload(env: &TestEnv, token: &str, id: &str, bytes: &[u8], content_type: &str) -> Resp {
    call(env, token, Req::put(&format!("{BASE}/{id}/bundle")).bytes(bytes, content_type)).await
}

fn id_of(r: &Resp) -> String {
    r.body["id"].as_str().unwrap_or_else(|| panic!("no id in {}", r.body)).to_string()
}

fn message(r: &Resp) -> String {
    r.body["error"]["message"].as_str().unwrap_or("").to_string()
}

fn slugs(r: &Resp) -> Vec<String> {
    r.body["items"].as_array().unwrap().iter().map(|p| p["slug"].as_str().unwrap().to_string()).collect()
}

/// The SHA-256 of `bytes` in hex, computed apart from the code under test.
fn sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A package body with every field.
fn support_package(slug: &str) -> Value {
    json!({
        "name": "Acme Support", "slug": slug, "description": "Answers from the knowledge base.",
        "version": "1.0.0", "capabilities": ["rag", "tools"],
        "default_config": {
            "llmConfig": {"model": "gpt-4o-mini", "temperature": 0.3},
            "ragConfig": {"chunkSize": 400, "maxResults": 4},
            "systemPrompt": "You are Acme's assistant.",
            "personality": "Friendly"
        },
        "enabled_tools": ["rag_search", "request_human_handover"],
        "documentation": "# Acme Support\nUse it for support.", "changelog": "First release.",
        "author": "Acme Platform Team", "entry_point": "main.js"
    })
}

#[tokio::test]
async fn the_master_admin_creates_versions_and_publishes_packages() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;

    let r = create(&env, &master, support_package("acme-support")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["version"], "1.0.0");
    assert_eq!((r.body["is_active"].clone(), r.body["published_at"].clone()), (json!(true), Value::Null));
    assert_eq!(r.body["usage_count"], 0);
    assert_eq!(r.body["entry_point"], "main.js");
    assert_eq!(r.body["capabilities"], json!(["rag", "tools"]));
    assert_eq!(r.body["enabled_tools"], json!(["rag_search", "request_human_handover"]));
    assert_eq!(r.body["default_config"]["enabledTools"], r.body["enabled_tools"], "kept equal");
    assert_eq!(r.body["default_config"]["llmConfig"]["model"], "gpt-4o-mini");
    assert_eq!(r.body["default_config"]["systemPrompt"], "You are Acme's assistant.");
    assert_eq!((r.body["package_hash"].clone(), r.body["package_url"].clone()), (Value::Null, Value::Null));
    let id = id_of(&r);
    assert_eq!(env.audit_count("agent_package.create").await, 1);

    // The slug is unique.
    let r = create(&env, &master, support_package("acme-support")).await;
    assert_error!(r, StatusCode::CONFLICT, "slug_taken");

    let versions = call(&env, &master, Req::get(&format!("{BASE}/{id}/versions"))).await;
    assert_eq!(versions.status, StatusCode::OK, "{}", versions.body);
    assert_eq!(versions.body["total"], 1);
    assert_eq!(versions.body["items"][0]["version"], "1.0.0");
    assert_eq!(versions.body["items"][0]["changelog"], "First release.");

    // A version is greater than the current one (numbers compared, not text).
    for lower in ["0.9.0", "1.0.0"] {
        let r = new_version(&env, &master, &id, json!({"version": lower, "changelog": "Older."})).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
        assert!(message(&r).contains("greater than the current version 1.0.0"), "{}", r.body);
    }
    let r = new_version(&env, &master, &id, json!({"version": "1.1", "changelog": "x"})).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    let r = new_version(&env, &master, &id, json!({"version": "1.1.0"})).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(message(&r).contains("changelog"), "{}", r.body);
    assert_eq!(env.audit_count("agent_package.version").await, 0);

    let r = new_version(
        &env,
        &master,
        &id,
        json!({"version": "1.9.0", "changelog": "Search only.", "enabled_tools": ["rag_search"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["version"], "1.9.0");
    assert_eq!(r.body["enabled_tools"], json!(["rag_search"]));
    let r = new_version(
        &env,
        &master,
        &id,
        json!({"version": "1.10.0", "changelog": "Warmer.",
               "default_config": {"personality": "Warm", "llmConfig": {"model": "gpt-4o"}}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let got = call(&env, &master, Req::get(&format!("{BASE}/{id}"))).await;
    assert_eq!(got.body["version"], "1.10.0");
    assert_eq!(got.body["changelog"], "Warmer.");
    assert_eq!(got.body["default_config"]["personality"], "Warm");
    assert_eq!(got.body["default_config"]["llmConfig"]["model"], "gpt-4o");
    assert!(got.body["default_config"].get("ragConfig").is_none(), "a new configuration replaces the old");
    assert_eq!(got.body["enabled_tools"], json!(["rag_search"]), "the tools carry over");
    assert_eq!(got.body["default_config"]["enabledTools"], json!(["rag_search"]));
    let versions = call(&env, &master, Req::get(&format!("{BASE}/{id}/versions"))).await;
    let listed: Vec<&str> =
        versions.body["items"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(listed, ["1.10.0", "1.9.0", "1.0.0"], "newest first");
    assert_eq!(versions.body["items"][2]["enabled_tools"], json!(["rag_search", "request_human_handover"]));
    assert_eq!(env.audit_count("agent_package.version").await, 2);

    // Patch: the documentation, the author, the default (one at a time).
    let r = call(
        &env,
        &master,
        Req::patch(&format!("{BASE}/{id}"))
            .json(json!({"documentation": "New docs.", "author": null, "is_default": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["documentation"].clone(), r.body["author"].clone()), (json!("New docs."), Value::Null));
    assert_eq!(r.body["is_default"], true);
    assert_eq!(env.count("chatapp_agent_packages WHERE is_default").await, 1, "the seeded default stepped down");

    // Publish (again: nothing changes).
    let r = act(&env, &master, &id, "publish").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["published_at"].is_string(), "{}", r.body);
    let published_at = r.body["published_at"].clone();
    let r = act(&env, &master, &id, "publish").await;
    assert_eq!(r.body["published_at"], published_at);
    assert_eq!(env.audit_count("agent_package.publish").await, 1);

    // The master admin's list: every package, searchable, filtered by whether active.
    let r = call(&env, &master, Req::get(&format!("{BASE}?q=acme"))).await;
    assert_eq!(slugs(&r), ["acme-support"], "{}", r.body);
    let r = call(&env, &master, Req::get(&format!("{BASE}?active=true&limit=100"))).await;
    assert!(slugs(&r).contains(&"support-rag".to_string()), "{}", r.body);
    assert_eq!(slugs(&r)[0], "acme-support", "the default first");
}

#[tokio::test]
async fn bundles_are_checked_against_their_hash_and_stored_under_it() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let bundle = b"PK\x03\x04 the acme bundle".to_vec();
    let hash = sha256(&bundle);
    let mut body = support_package("bundled");
    body["package_hash"] = json!(hash.to_uppercase());
    let r = create(&env, &master, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["package_hash"], hash.as_str(), "lower-cased");
    let id = id_of(&r);

    // Not publishable before its bundle is there.
    assert_error!(act(&env, &master, &id, "publish").await, StatusCode::CONFLICT, "bundle_missing");

    // Other bytes: 422, nothing stored.
    let wrong = b"PK\x03\x04 something else".to_vec();
    let r = upload(&env, &master, &id, &wrong, "application/zip").await;
    assert_error!(r, StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch");
    assert!(message(&r).contains(&sha256(&wrong)), "{}", r.body);
    assert!(env.deps.blobs.list(CompanyId::GLOBAL, "packages/").await.unwrap().is_empty(), "nothing stored");
    let got = call(&env, &master, Req::get(&format!("{BASE}/{id}"))).await;
    assert_eq!((got.body["package_url"].clone(), got.body["bundle_stored"].clone()), (Value::Null, json!(false)));
    assert_eq!(env.audit_count("agent_package.bundle").await, 0);

    // Neither JSON nor an empty body.
    let r = upload(&env, &master, &id, b"{}", "application/json").await;
    assert_error!(r, StatusCode::BAD_REQUEST, "unsupported_content_type");
    let r = upload(&env, &master, &id, b"", "application/octet-stream").await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");

    // The declared bundle: stored under its hash, readable from the blob store.
    let r = upload(&env, &master, &id, &bundle, "application/zip").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["package_hash"], hash.as_str());
    assert_eq!(r.body["package_size"], bundle.len());
    assert_eq!(r.body["bundle_stored"], true);
    let key = bundle_key(&hash).unwrap();
    assert_eq!(r.body["package_url"], key.full());
    assert_eq!(key.full(), format!("{}/packages/{hash}", Uuid::nil()));
    let stored = env.deps.blobs.get(&key).await.unwrap().expect("the bundle is stored");
    assert_eq!(&stored[..], bundle.as_slice());
    assert_eq!(env.audit_count("agent_package.bundle").await, 1);
    let versions = call(&env, &master, Req::get(&format!("{BASE}/{id}/versions"))).await;
    assert_eq!(versions.body["items"][0]["package_hash"], hash.as_str());
    assert_eq!(versions.body["items"][0]["package_size"], bundle.len());

    let r = act(&env, &master, &id, "publish").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // A version with a new bundle: declared, uploaded next; the old bundle stays in the store.
    let next = b"PK\x03\x04 the acme bundle, v2".to_vec();
    let next_hash = sha256(&next);
    let r = new_version(
        &env,
        &master,
        &id,
        json!({"version": "2.0.0", "changelog": "New code.", "package_hash": next_hash}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let got = call(&env, &master, Req::get(&format!("{BASE}/{id}"))).await;
    assert_eq!((got.body["package_url"].clone(), got.body["bundle_stored"].clone()), (Value::Null, json!(false)));
    assert_error!(
        upload(&env, &master, &id, &bundle, "application/zip").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "hash_mismatch"
    );
    let r = upload(&env, &master, &id, &next, "application/octet-stream").await;
    assert_eq!((r.status, r.body["package_size"].clone()), (StatusCode::OK, json!(next.len())), "{}", r.body);
    assert_eq!(env.deps.blobs.list(CompanyId::GLOBAL, "packages/").await.unwrap().len(), 2);

    // A package without a declared hash takes any bundle; deleting it removes its bundle.
    let r = create(&env, &master, json!({"name": "Spare", "slug": "spare", "version": "0.1.0"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let spare = id_of(&r);
    let spare_bundle = b"spare bytes".to_vec();
    let r = upload(&env, &master, &spare, &spare_bundle, "application/octet-stream").await;
    assert_eq!(r.body["package_hash"], sha256(&spare_bundle), "{}", r.body);
    let spare_key = bundle_key(&sha256(&spare_bundle)).unwrap();
    assert!(env.deps.blobs.get(&spare_key).await.unwrap().is_some());
    let r = call(&env, &master, Req::delete(&format!("{BASE}/{spare}"))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(env.deps.blobs.get(&spare_key).await.unwrap().is_none(), "its bundle went with it");
    assert_eq!(env.count(&format!("chatapp_agent_package_versions WHERE package_id = '{spare}'")).await, 0);
    assert_eq!(env.audit_count("agent_package.delete").await, 1);
    assert_eq!(call(&env, &master, Req::get(&format!("{BASE}/{spare}"))).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn company_admins_see_published_active_packages_and_change_nothing() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let t = env.company("acme", "starter").await;
    let admin = t.admin_token.as_str();
    let draft = id_of(&create(&env, &master, support_package("draft-pack")).await);
    let live = id_of(&create(&env, &master, support_package("live-pack")).await);
    assert_eq!(act(&env, &master, &live, "publish").await.status, StatusCode::OK);
    let packages_before = env.count("chatapp_agent_packages").await;

    let r = call(&env, admin, Req::get(&format!("{BASE}?limit=100"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let seen = slugs(&r);
    assert!(seen.contains(&"live-pack".to_string()) && seen.contains(&"support-rag".to_string()), "{seen:?}");
    assert!(!seen.contains(&"draft-pack".to_string()), "{seen:?}");
    assert_eq!(call(&env, admin, Req::get(&format!("{BASE}/{draft}"))).await.status, StatusCode::NOT_FOUND);
    assert_eq!(call(&env, admin, Req::get(&format!("{BASE}/{draft}/versions"))).await.status, StatusCode::NOT_FOUND);
    assert_eq!(call(&env, admin, Req::get(&format!("{BASE}?active=false"))).await.body["total"], 0);

    // Without `custom_prompt` / `custom_model`, the prompt and the model are the master admin's.
    let got = call(&env, admin, Req::get(&format!("{BASE}/{live}"))).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    let config = &got.body["default_config"];
    assert!(config.get("systemPrompt").is_none() && config.get("llmConfig").is_none(), "{config}");
    assert_eq!(config["personality"], "Friendly");
    let versions = call(&env, admin, Req::get(&format!("{BASE}/{live}/versions"))).await;
    assert!(versions.body["items"][0]["default_config"].get("systemPrompt").is_none(), "{}", versions.body);
    let got = call(&env, &master, Req::get(&format!("{BASE}/{live}"))).await;
    assert_eq!(got.body["default_config"]["systemPrompt"], "You are Acme's assistant.");

    // Writes are the master admin's.
    let writes = [
        Req::post(BASE).json(support_package("mine")),
        Req::patch(&format!("{BASE}/{live}")).json(json!({"description": "ours"})),
        Req::post(&format!("{BASE}/{live}/versions")).json(json!({"version": "9.0.0", "changelog": "x"})),
        Req::post(&format!("{BASE}/{draft}/publish")),
        Req::post(&format!("{BASE}/{live}/deactivate")),
        Req::post(&format!("{BASE}/{live}/activate")),
        Req::put(&format!("{BASE}/{live}/bundle")).bytes(b"bytes", "application/zip"),
        Req::delete(&format!("{BASE}/{live}")),
    ];
    for req in writes {
        let r = call(&env, admin, req).await;
        assert_error!(r, StatusCode::FORBIDDEN, "master_only");
    }
    assert_eq!(env.count("chatapp_agent_packages").await, packages_before);
    assert_eq!(env.count("chatapp_agent_package_versions").await, 2, "one each, none added");
    assert_eq!(env.count("chatapp_agent_packages WHERE published_at IS NULL").await, 1);
    assert!(env.deps.blobs.list(CompanyId::GLOBAL, "").await.unwrap().is_empty());

    // A support agent without a grant sees nothing.
    let (_, sa) = env.member(&t, "sa@acme.test", "support_agent", json!({})).await;
    assert_eq!(call(&env, &sa, Req::get(BASE)).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn agents_are_made_from_active_packages_and_counted() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let acme = env.company("acme", "professional").await;
    let beta = env.company("beta", "professional").await;
    let id = id_of(&create(&env, &master, support_package("acme-support")).await);

    // Unpublished: no agents from it.
    let make =
        |token: &str, name: &str| Req::post("/admin/agents").token(token).json(json!({"name": name, "package_id": id}));
    let r = env.send(Agents, make(&acme.admin_token, "Too early")).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");

    assert_eq!(act(&env, &master, &id, "publish").await.status, StatusCode::OK);
    let r = env.send(Agents, make(&acme.admin_token, "Helper")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["package_slug"], "acme-support");
    assert_eq!(r.body["capabilities"], json!(["rag", "tools"]));
    assert_eq!(r.body["enabled_tools"], json!(["rag_search", "request_human_handover"]));
    let agent = id_of(&r);

    // Counted: all companies' agents for the master admin, a company's own for its admin.
    let got = call(&env, &master, Req::get(&format!("{BASE}/{id}"))).await;
    assert_eq!(got.body["usage_count"], 1, "{}", got.body);
    assert_eq!(call(&env, &acme.admin_token, Req::get(&format!("{BASE}/{id}"))).await.body["usage_count"], 1);
    assert_eq!(call(&env, &beta.admin_token, Req::get(&format!("{BASE}/{id}"))).await.body["usage_count"], 0);

    // A new version changes what new agents get, not the agents already made.
    let r = new_version(
        &env,
        &master,
        &id,
        json!({"version": "1.1.0", "changelog": "Search only.", "enabled_tools": ["rag_search"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let kept = env.send(Agents, Req::get(&format!("/admin/agents/{agent}")).token(&acme.admin_token)).await;
    assert_eq!(kept.body["enabled_tools"], json!(["rag_search", "request_human_handover"]), "{}", kept.body);
    let r = env.send(Agents, make(&beta.admin_token, "Beta helper")).await;
    assert_eq!((r.status, r.body["enabled_tools"].clone()), (StatusCode::CREATED, json!(["rag_search"])), "{}", r.body);
    assert_eq!(call(&env, &master, Req::get(&format!("{BASE}/{id}"))).await.body["usage_count"], 2);

    // Deactivated: hidden from companies, no new agents; the existing ones keep working.
    let r = act(&env, &master, &id, "deactivate").await;
    assert_eq!((r.status, r.body["is_active"].clone()), (StatusCode::OK, json!(false)), "{}", r.body);
    assert_eq!(call(&env, &acme.admin_token, Req::get(&format!("{BASE}/{id}"))).await.status, StatusCode::NOT_FOUND);
    let r = env.send(Agents, make(&acme.admin_token, "Another")).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(message(&r).contains("package_id"), "{}", r.body);
    let kept = env.send(Agents, Req::get(&format!("/admin/agents/{agent}")).token(&acme.admin_token)).await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    assert_eq!(env.count("chatapp_agents").await, 2);

    // In use: kept.
    let r = call(&env, &master, Req::delete(&format!("{BASE}/{id}"))).await;
    assert_error!(r, StatusCode::CONFLICT, "package_in_use");
    assert!(message(&r).contains("deactivate"), "{}", r.body);
    assert_eq!(env.count(&format!("chatapp_agent_packages WHERE id = '{id}'")).await, 1);

    let r = act(&env, &master, &id, "activate").await;
    assert_eq!((r.status, r.body["is_active"].clone()), (StatusCode::OK, json!(true)), "{}", r.body);
    assert_eq!(call(&env, &acme.admin_token, Req::get(&format!("{BASE}/{id}"))).await.status, StatusCode::OK);
    assert_eq!(env.audit_count("agent_package.deactivate").await, 1);
    assert_eq!(env.audit_count("agent_package.activate").await, 1);
    assert_eq!(env.audit_count("agent_package.delete").await, 0);
    let audit: Value = env
        .owner()
        .await
        .query_one("SELECT details FROM chatapp_audit_logs WHERE action = 'agent_package.deactivate'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        (audit["before"]["is_active"].clone(), audit["after"]["is_active"].clone()),
        (json!(true), json!(false))
    );
}

#[tokio::test]
async fn invalid_packages_answer_400_naming_the_field_and_store_nothing() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let with = |field: &str, value: Value| {
        let mut body = support_package("checked");
        body[field] = value;
        body
    };
    let cases = [
        (with("slug", json!("-bad")), "slug"),
        (with("slug", json!("Bad Slug")), "slug"),
        (with("version", json!("1.0")), "version"),
        (with("version", json!("v1.0.0")), "version"),
        (with("name", json!("  ")), "name"),
        (with("capabilities", json!(["rag", "teleport"])), "capabilities[1]"),
        (with("capabilities", json!(["rag", "rag"])), "capabilities[1]"),
        (with("default_config", json!({"llmConfig": {"temperature": 5}})), "default_config.llmConfig.temperature"),
        (
            with("default_config", json!({"escalationRules": {"sentimentThreshold": -1.5}})),
            "default_config.escalationRules.sentimentThreshold",
        ),
        (with("default_config", json!({"favouriteColour": "blue"})), "default_config.favouriteColour"),
        (with("default_config", json!({"ragEnabled": "yes"})), "default_config.ragEnabled"),
        (with("default_config", json!({"enabledTools": ["rag_search"]})), "default_config.enabledTools"),
        (with("default_config", json!([])), "default_config"),
        (with("enabled_tools", json!(["Bad Tool"])), "enabled_tools[0]"),
        (with("capabilities", json!(["rag"])), "enabled_tools[1]"),
        (with("package_hash", json!("abc")), "package_hash"),
        (with("usage_count", json!(9)), "usage_count"),
    ];
    for (body, field) in cases {
        let r = create(&env, &master, body).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
        assert!(message(&r).contains(field), "{field}: {}", r.body);
    }
    assert_eq!(env.count("chatapp_agent_packages WHERE slug = 'checked'").await, 0);
    assert_eq!(env.audit_count("agent_package.create").await, 0);

    // A version checks the same, against what carries over.
    let id = id_of(&create(&env, &master, support_package("checked")).await);
    let r =
        new_version(&env, &master, &id, json!({"version": "1.1.0", "changelog": "x", "capabilities": ["tools"]})).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(message(&r).contains("\"rag\""), "the kept ragConfig needs rag: {}", r.body);
    let r = new_version(&env, &master, &id, json!({"version": "1.1.0", "changelog": "x", "package_hash": "zz"})).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert_eq!(env.count("chatapp_agent_package_versions WHERE version = '1.1.0'").await, 0);
    assert_eq!(
        call(&env, &master, Req::patch(&format!("{BASE}/{}", Uuid::new_v4())).json(json!({"author": "x"})))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = call(&env, &master, Req::get(&format!("{BASE}?active=maybe"))).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
}
