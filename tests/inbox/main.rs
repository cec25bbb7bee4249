//! The `inbox` function, the support agents' side of the human in the loop (docs/human-loop.md):
//! conversations and who owns them, replies, live events, labels and snoozes
//! (`conversations.rs`), presence (`presence.rs`), internal notes (`notes.rs`) and canned
//! responses (`canned.rs`). Each test runs against a fresh database.
//!
//! Set-up shared by every file of this test (all `pub(crate)`):
//!
//! - `inbox(env: &TestEnv, slug: &str) -> Inbox`: a company on the professional plan with an
//!   active AI agent and its widget (`Inbox::agent`), and two support agents, `Inbox::ana`
//!   (`ana@<slug>.test`) and `Inbox::ben` (`ben@<slug>.test`), each a `Member {id, email, token}`;
//!   the company's admin is `Inbox::tenant` (`admin_token`, `admin_id`, `company_id`).
//! - `ai_agent(env: &TestEnv, t: &Tenant) -> Uuid`: an active AI agent with a widget. Retrieval
//!   is off, so the offline model answers without a knowledge base or an embedding model.
//! - `support_agent(env: &TestEnv, t: &Tenant, email: &str) -> Member`: an invited and accepted
//!   support agent.
//! - `session(env: &TestEnv, agent: Uuid, customer: Value) -> (Uuid, String)`: a widget session
//!   (`customer` is the session body, e.g. `{"name", "email"}`): conversation id, session token.
//! - `say(env: &TestEnv, conversation: Uuid, token: &str, content: &str) -> Value`: a customer
//!   message through the widget; the turn's JSON (`reply`, `handoff`, ...); asserts 200.
//! - `waiting(env: &TestEnv, inbox: &Inbox) -> (Uuid, String)`: a conversation whose customer
//!   (Carla, carla@example.com) asked for a human: `waiting_human`, one pending escalation.
//! - `send(env: &TestEnv, req: Req) -> Resp`: a request to the inbox function.
//! - `conv_path(conversation: Uuid, rest: &str) -> String`: `/inbox/conversations/{id}{rest}`.
//! - `claim(env: &TestEnv, token: &str, conversation: Uuid) -> Resp`: `POST .../claim`.
//! - `stored(env: &TestEnv, conversation: Uuid) -> (String, Option<Uuid>)`: the conversation's
//!   status and assignee as stored (read as the owner, past row-level security).

mod canned;
mod conversations;
mod notes;
mod presence;
mod stats;

use chatapp_functions::http_function::HttpFunction;
pub(crate) use chatapp_tests::widget::say;
use chatapp_tests::{Req, Resp, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// A user of the company, signed in.
pub(crate) struct Member {
    pub(crate) id: Uuid,
    pub(crate) email: String,
    pub(crate) token: String,
}

/// A company ready for the inbox: its admin, an AI agent with a widget, two support agents.
pub(crate) struct Inbox {
    pub(crate) tenant: Tenant,
    pub(crate) agent: Uuid,
    pub(crate) ana: Member,
    pub(crate) ben: Member,
}

/// An active AI agent with a widget; retrieval off (no knowledge base, no embedding model).
pub(crate) async fn ai_agent(env: &TestEnv, t: &Tenant) -> Uuid {
    let owner = env.owner().await;
    let agent: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, system_prompt, rag_enabled)
             VALUES ($1, 'Ada', 'active', 'You help customers of Acme.', false) RETURNING id",
            &[&t.company_id],
        )
        .await
        .unwrap()
        .get(0);
    owner
        .execute(
            "INSERT INTO chatapp_widget_configs (company_id, agent_id, title, welcome_message)
             VALUES ($1, $2, 'Acme help', 'Hi! Ask me anything.')",
            &[&t.company_id, &agent],
        )
        .await
        .unwrap();
    agent
}

/// A support agent of `t`, invited and signed up.
pub(crate) async fn support_agent(env: &TestEnv, t: &Tenant, email: &str) -> Member {
    let (id, token) = env.member(t, email, "support_agent", json!({})).await;
    Member { id, email: email.to_string(), token }
}

pub(crate) async fn inbox(env: &TestEnv, slug: &str) -> Inbox {
    let tenant = env.company(slug, "professional").await;
    let agent = ai_agent(env, &tenant).await;
    let ana = support_agent(env, &tenant, &format!("ana@{slug}.test")).await;
    let ben = support_agent(env, &tenant, &format!("ben@{slug}.test")).await;
    Inbox { tenant, agent, ana, ben }
}

pub(crate) async fn session(env: &TestEnv, agent: Uuid, customer: Value) -> (Uuid, String) {
    let r = env.send(HttpFunction::Widget, Req::post(&format!("/widget/agents/{agent}/sessions")).json(customer)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (r.body["conversation_id"].as_str().unwrap().parse().unwrap(), r.body["session_token"].as_str().unwrap().into())
}

/// A conversation whose customer asked for a person: it waits for one.
pub(crate) async fn waiting(env: &TestEnv, inbox: &Inbox) -> (Uuid, String) {
    let customer = json!({"name": "Carla Customer", "email": "carla@example.com"});
    let (conv, token) = session(env, inbox.agent, customer).await;
    let turn = say(env, conv, &token, "I want to talk to a human please").await;
    assert_eq!(turn["handoff"], true, "{turn}");
    assert_eq!(stored(env, conv).await, ("waiting_human".to_string(), None));
    assert_eq!(
        env.count(&format!("chatapp_escalations WHERE conversation_id = '{conv}' AND status = 'pending'")).await,
        1
    );
    (conv, token)
}

pub(crate) async fn send(env: &TestEnv, req: Req) -> Resp {
    env.send(HttpFunction::Inbox, req).await
}

pub(crate) fn conv_path(conversation: Uuid, rest: &str) -> String {
    format!("/inbox/conversations/{conversation}{rest}")
}

pub(crate) async fn claim(env: &TestEnv, token: &str, conversation: Uuid) -> Resp {
    send(env, Req::post(&conv_path(conversation, "/claim")).token(token)).await
}

/// The conversation's status and assignee as stored.
pub(crate) async fn stored(env: &TestEnv, conversation: Uuid) -> (String, Option<Uuid>) {
    let row = env
        .owner()
        .await
        .query_one("SELECT status::text, assigned_agent_id FROM chatapp_conversations WHERE id = $1", &[&conversation])
        .await
        .unwrap();
    (row.get(0), row.get(1))
}
