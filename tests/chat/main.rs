//! The chat turn through the `widget` function on the embedded stack: sessions, grounded
//! answers with citations (offline extractive model), history, idempotent retries, plan
//! limits, escalation triggers that silence the AI, identity verification, origins, bad input.

mod access;
mod escalation;
mod refusals;
mod summary;
mod turn;

use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{Req, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

const REFUNDS: &str = "# Refund policy\n\nCustomers can ask for a refund within 30 days of purchase. \
    Refunds go back to the original payment method and take five business days.\n\n\
    # Shipping\n\nWe ship parcels with DHL. International shipping takes ten days.";

struct Chat {
    agent: Uuid,
    file: Uuid,
}

/// An active agent with a widget and a knowledge category holding the refund policy.
async fn setup(env: &TestEnv, t: &Tenant, escalation_rules: Value, widget: Value) -> Chat {
    let owner = env.owner().await;
    let agent: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, system_prompt, escalation_rules)
             VALUES ($1, 'Ada', 'active', 'You help customers of Acme.', $2) RETURNING id",
            &[&t.company_id, &escalation_rules],
        )
        .await
        .unwrap()
        .get(0);
    let allowed = widget.get("allowed_domains").cloned().unwrap_or(json!([]));
    let secret = widget.get("identity_secret").and_then(Value::as_str).map(str::to_string);
    let require = widget.get("require_identity").and_then(Value::as_bool).unwrap_or(false);
    owner
        .execute(
            "INSERT INTO chatapp_widget_configs (company_id, agent_id, title, welcome_message, allowed_domains,
                                                 identity_secret, require_identity)
             VALUES ($1, $2, 'Acme help', 'Hi! Ask me anything.', $3, $4, $5)",
            &[&t.company_id, &agent, &allowed, &secret, &require],
        )
        .await
        .unwrap();
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::post("/admin/knowledge/categories").token(&t.admin_token).json(json!({"name": "Policies"})),
        )
        .await;
    let cat = r.body["id"].as_str().unwrap().to_string();
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::new("PUT", &format!("/admin/knowledge/agents/{agent}/categories"))
                .token(&t.admin_token)
                .json(json!({"category_ids": [cat]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::post("/admin/knowledge/files")
                .token(&t.admin_token)
                .json(json!({"filename": "policy.md", "category_id": cat, "size": REFUNDS.len()})),
        )
        .await;
    let file: Uuid = r.body["file"]["id"].as_str().unwrap().parse().unwrap();
    env.send(
        HttpFunction::KnowledgeFiles,
        Req::put(&format!("/admin/knowledge/files/{file}/content"))
            .token(&t.admin_token)
            .bytes(REFUNDS.as_bytes(), "text/markdown"),
    )
    .await;
    chatapp_functions::ingest_worker::drain(&env.deps).await.unwrap();
    Chat { agent, file }
}

async fn session(env: &TestEnv, agent: Uuid, body: Value) -> (Uuid, String) {
    let r = env.send(HttpFunction::Widget, Req::post(&format!("/widget/agents/{agent}/sessions")).json(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (r.body["conversation_id"].as_str().unwrap().parse().unwrap(), r.body["session_token"].as_str().unwrap().into())
}

async fn say(env: &TestEnv, conv: Uuid, token: &str, content: &str) -> Value {
    let r = env
        .send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/messages")).token(token).json(json!({"content": content})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}
