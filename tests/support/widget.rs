//! The widget as a customer uses it, and the agent behind it, for the chat-turn tests.

use chatapp_functions::http_function::HttpFunction;
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{Req, Tenant, TestEnv};

/// An active agent (never published: the turn reads its row) with a widget.
pub async fn widget_agent(env: &TestEnv, t: &Tenant, rag_enabled: bool, enabled_tools: Value) -> Uuid {
    let owner = env.owner().await;
    let agent: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, system_prompt, rag_enabled, enabled_tools)
             VALUES ($1, 'Ada', 'active', 'You help customers of Acme.', $2, $3) RETURNING id",
            &[&t.company_id, &rag_enabled, &enabled_tools],
        )
        .await
        .unwrap()
        .get(0);
    owner
        .execute("INSERT INTO chatapp_widget_configs (company_id, agent_id) VALUES ($1, $2)", &[&t.company_id, &agent])
        .await
        .unwrap();
    agent
}

/// A widget session: (conversation, session token).
pub async fn session(env: &TestEnv, agent: Uuid) -> (Uuid, String) {
    let r =
        env.send(HttpFunction::Widget, Req::post(&format!("/widget/agents/{agent}/sessions")).json(json!({}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (r.body["conversation_id"].as_str().unwrap().parse().unwrap(), r.body["session_token"].as_str().unwrap().into())
}

/// The customer sends `content`; the turn's JSON answer.
pub async fn say(env: &TestEnv, conversation: Uuid, token: &str, content: &str) -> Value {
    let r = env
        .send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conversation}/messages"))
                .token(token)
                .json(json!({"content": content})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}
