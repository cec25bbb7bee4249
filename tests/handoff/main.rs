//! The human side of a handoff below the inbox: the transactional outbox, fair assignment by the
//! escalation worker (capacity, priority, concurrency, drains, reassignment), explicit ownership
//! against the AI's reply, and conversation events read with `after=`.

mod assignment;
mod choice;
mod events;
mod lifecycle;
mod outbox;
mod race;

use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{Req, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// A company with an active agent and its widget.
pub(crate) async fn company_with_agent(env: &TestEnv, slug: &str) -> (Tenant, Uuid) {
    let t = env.company(slug, "enterprise").await;
    let owner = env.owner().await;
    let agent: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, system_prompt)
             VALUES ($1, 'Ada', 'active', 'You help customers of Acme.') RETURNING id",
            &[&t.company_id],
        )
        .await
        .unwrap()
        .get(0);
    owner
        .execute(
            "INSERT INTO chatapp_widget_configs (company_id, agent_id, title, welcome_message)
             VALUES ($1, $2, 'Acme help', 'Hi!')",
            &[&t.company_id, &agent],
        )
        .await
        .unwrap();
    (t, agent)
}

/// An active outbound webhook of the company for every event type.
pub(crate) async fn webhook(env: &TestEnv, company: Uuid) {
    env.owner()
        .await
        .execute(
            "INSERT INTO chatapp_webhooks (company_id, name, url, secret) VALUES ($1, 'crm', 'https://crm.example.test/hook', 'whsec')",
            &[&company],
        )
        .await
        .unwrap();
}

/// A widget session: (conversation, session token).
pub(crate) async fn session(env: &TestEnv, agent: Uuid) -> (Uuid, String) {
    let r =
        env.send(HttpFunction::Widget, Req::post(&format!("/widget/agents/{agent}/sessions")).json(json!({}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (r.body["conversation_id"].as_str().unwrap().parse().unwrap(), r.body["session_token"].as_str().unwrap().into())
}

pub(crate) async fn say(env: &TestEnv, conv: Uuid, token: &str, content: &str) -> Value {
    let r = env
        .send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/messages")).token(token).json(json!({"content": content})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// A conversation waiting for a person, written directly (many of them make the fairness tests).
pub(crate) async fn waiting(env: &TestEnv, t: &Tenant, agent: Uuid, priority: &str, age_secs: i32) -> Uuid {
    let owner = env.owner().await;
    let conv: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_conversations (company_id, agent_id, session_token, channel, status)
             VALUES ($1, $2, gen_random_uuid()::text, 'web', 'waiting_human') RETURNING id",
            &[&t.company_id, &agent],
        )
        .await
        .unwrap()
        .get(0);
    owner
        .execute(
            "INSERT INTO chatapp_escalations (conversation_id, company_id, agent_id, reason, trigger_type, priority,
                                              created_at)
             VALUES ($1, $2, $3, 'test', 'explicit_request', $4::text::escalation_priority,
                     now() - make_interval(secs => $5))",
            &[&conv, &t.company_id, &agent, &priority, &f64::from(age_secs)],
        )
        .await
        .unwrap();
    conv
}

/// A support agent of `t`, online with `capacity`.
pub(crate) async fn online_agent(env: &TestEnv, t: &Tenant, name: &str, capacity: i32) -> (Uuid, String) {
    let (user, token) =
        env.member(t, &format!("{name}@{}.test", t.company_id.simple()), "support_agent", json!({})).await;
    set_online(env, t, user, capacity).await;
    (user, token)
}

pub(crate) async fn set_online(env: &TestEnv, t: &Tenant, user: Uuid, capacity: i32) {
    env.owner()
        .await
        .execute(
            "INSERT INTO chatapp_support_agent_status (user_id, company_id, status, max_concurrent_chats, last_active_at)
             VALUES ($1, $2, 'online', $3, now())
             ON CONFLICT (user_id) DO UPDATE SET status = 'online', max_concurrent_chats = $3, last_active_at = now()",
            &[&user, &t.company_id, &capacity],
        )
        .await
        .unwrap();
}

/// (conversation, assignee) of every conversation with a human, by assignment order.
pub(crate) async fn assignments(env: &TestEnv, t: &Tenant) -> Vec<(Uuid, Uuid)> {
    env.owner()
        .await
        .query(
            "SELECT id, assigned_agent_id FROM chatapp_conversations
             WHERE company_id = $1 AND status = 'with_human' ORDER BY assigned_at, id",
            &[&t.company_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Runs `sql` in one transaction acting as the company's admin (the tenant settings the
/// application sets), on the owner's connection.
pub(crate) async fn as_admin(env: &TestEnv, t: &Tenant, sql: &str) {
    env.owner()
        .await
        .batch_execute(&format!(
            "BEGIN; SELECT set_config('app.current_company_id', '{}', true), \
             set_config('app.current_user_id', '{}', true), set_config('app.user_role', 'company_admin', true); \
             {sql}; COMMIT",
            t.company_id, t.admin_id
        ))
        .await
        .unwrap();
}
