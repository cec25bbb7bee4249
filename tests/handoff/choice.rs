//! The customer's choice of a person instead of the AI, tied to business hours: off unless the
//! widget's setting allows it; within hours a queued escalation (once, however often asked),
//! outside them the agent's message and a way to leave an email and a message; and the
//! conversation's events as server-sent events.

use std::time::{Duration, Instant};

use chatapp::web::LocalPeer;
use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{assert_error, Req, TestEnv};
use http::StatusCode;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{company_with_agent, say, session};

const CLOSED_MESSAGE: &str = "We are closed right now. Leave us a note.";

async fn allow_handoff(env: &TestEnv, agent: Uuid) {
    env.owner()
        .await
        .execute("UPDATE chatapp_widget_configs SET human_handoff_button = true WHERE agent_id = $1", &[&agent])
        .await
        .unwrap();
}

/// Business hours that are never open: a schedule without a single interval.
async fn close_business(env: &TestEnv, agent: Uuid) {
    let hours = json!({"enabled": true, "timezone": "UTC", "schedule": {}, "outsideHoursMessage": CLOSED_MESSAGE});
    env.owner()
        .await
        .execute("UPDATE chatapp_agents SET business_hours = $2 WHERE id = $1", &[&agent, &hours])
        .await
        .unwrap();
}

async fn config(env: &TestEnv, agent: Uuid) -> Value {
    let r = env.send(HttpFunction::Widget, Req::get(&format!("/widget/agents/{agent}/config"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

fn handoff(conv: Uuid, token: &str) -> Req {
    Req::post(&format!("/widget/conversations/{conv}/handoff")).token(token).json(json!({}))
}

fn contact(conv: Uuid, token: &str, body: Value) -> Req {
    Req::post(&format!("/widget/conversations/{conv}/contact")).token(token).json(body)
}

async fn status(env: &TestEnv, conv: Uuid) -> String {
    env.owner()
        .await
        .query_one("SELECT status::text FROM chatapp_conversations WHERE id = $1", &[&conv])
        .await
        .unwrap()
        .get(0)
}

async fn escalations(env: &TestEnv, conv: Uuid) -> i64 {
    env.count(&format!("chatapp_escalations WHERE conversation_id = '{conv}'")).await
}

#[tokio::test]
async fn without_the_widget_setting_there_is_no_person_to_ask_for() {
    let env = TestEnv::new().await;
    let (_, agent) = company_with_agent(&env, "acme").await;
    let c = config(&env, agent).await;
    assert_eq!(c["human_handoff"], json!({"enabled": false, "open_now": true}), "{c}");
    let (conv, token) = session(&env, agent).await;
    let r = env.send(HttpFunction::Widget, handoff(conv, &token)).await;
    assert_error!(r, StatusCode::FORBIDDEN, "handoff_disabled");
    let r = env.send(HttpFunction::Widget, contact(conv, &token, json!({"email": "jo@example.com"}))).await;
    assert_error!(r, StatusCode::FORBIDDEN, "handoff_disabled");
    // Nothing stored.
    assert_eq!(status(&env, conv).await, "active");
    assert_eq!(escalations(&env, conv).await, 0);
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}'")).await, 0);
    assert_eq!(env.count(&format!("chatapp_conversation_events WHERE conversation_id = '{conv}'")).await, 0);
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'escalation'").await, 0);
}

#[tokio::test]
async fn within_business_hours_the_customer_is_queued_for_a_person_once() {
    let env = TestEnv::new().await;
    let (_, agent) = company_with_agent(&env, "acme").await;
    allow_handoff(&env, agent).await;
    let c = config(&env, agent).await;
    assert_eq!(c["human_handoff"], json!({"enabled": true, "open_now": true}), "no schedule: always open: {c}");
    let (conv, token) = session(&env, agent).await;
    say(&env, conv, &token, "Hello there").await;

    let r = env.send(HttpFunction::Widget, handoff(conv, &token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "waiting_human", "{}", r.body);
    assert_eq!(r.body["position"], 1, "{}", r.body);
    let escalation: Uuid = r.body["escalation_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(r.body["notice"]["role"], "system");
    assert_eq!(r.body["notice"]["content"], "Connecting you with a member of our support team\u{2026}");

    assert_eq!(status(&env, conv).await, "waiting_human");
    let row = env
        .owner()
        .await
        .query_one(
            "SELECT id, trigger_type, priority::text, status::text, reason FROM chatapp_escalations
             WHERE conversation_id = $1",
            &[&conv],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Uuid>(0), escalation);
    assert_eq!(row.get::<_, String>(1), "customer_choice");
    assert_eq!(row.get::<_, String>(2), "medium");
    assert_eq!(row.get::<_, String>(3), "pending");
    assert_eq!(row.get::<_, String>(4), "the customer asked for a person");
    // The assignment job went out through the outbox, relayed after the commit.
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'escalation'").await, 1);
    assert_eq!(env.count("chatapp_outbox").await, 0);
    let job: Value = env
        .owner()
        .await
        .query_one("SELECT payload FROM chatapp_jobs WHERE queue = 'escalation'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(job["kind"], "escalation");
    assert_eq!(job["escalation_id"], json!(escalation));
    assert_eq!(job["priority"], "medium");
    // The customer's page hears it: the event, and the notice as a message.
    let escalated = format!(
        "chatapp_conversation_events WHERE conversation_id = '{conv}' AND type = 'conversation.escalated'
           AND payload->>'trigger' = 'customer_choice'"
    );
    assert_eq!(env.count(&escalated).await, 1);
    let notices = format!(
        "chatapp_messages WHERE conversation_id = '{conv}' AND role = 'system' AND metadata->>'kind' = 'handoff'"
    );
    assert_eq!(env.count(&notices).await, 1);

    // Asking again changes nothing.
    let again = env.send(HttpFunction::Widget, handoff(conv, &token)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["status"], "waiting_human");
    assert_eq!(again.body["position"], 1);
    assert!(again.body["escalation_id"].is_null() && again.body["notice"].is_null(), "{}", again.body);
    assert_eq!(escalations(&env, conv).await, 1);
    assert_eq!(env.count(&notices).await, 1);
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'escalation'").await, 1);
    // The AI is silent while the conversation waits for a person.
    let turn = say(&env, conv, &token, "Anyone there?").await;
    assert!(turn["reply"].is_null(), "{turn}");
    assert_eq!(turn["handoff"], true);
}

#[tokio::test]
async fn outside_business_hours_the_customer_leaves_an_email_and_a_message() {
    let env = TestEnv::new().await;
    let (_, agent) = company_with_agent(&env, "acme").await;
    allow_handoff(&env, agent).await;
    close_business(&env, agent).await;
    let c = config(&env, agent).await;
    assert_eq!(c["human_handoff"], json!({"enabled": true, "open_now": false}), "{c}");
    let (conv, token) = session(&env, agent).await;

    // Asking for a person: the agent's outside-hours message, and nothing stored.
    let r = env.send(HttpFunction::Widget, handoff(conv, &token)).await;
    assert_error!(r, StatusCode::CONFLICT, "outside_hours");
    assert_eq!(r.body["error"]["message"], CLOSED_MESSAGE);
    assert_eq!(status(&env, conv).await, "active");
    assert_eq!(escalations(&env, conv).await, 0);
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}'")).await, 0);
    assert_eq!(env.count(&format!("chatapp_conversation_events WHERE conversation_id = '{conv}'")).await, 0);
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'escalation'").await, 0);

    // A bad address, an unknown field or an overlong message: 400, nothing stored.
    for body in [
        json!({"email": "not-an-address"}),
        json!({"email": "jo@example.com", "phone": "123"}),
        json!({"email": "jo@example.com", "message": "x".repeat(2001)}),
        json!({"message": "no address"}),
    ] {
        let r = env.send(HttpFunction::Widget, contact(conv, &token, body.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
    }
    let email: Option<String> = env
        .owner()
        .await
        .query_one("SELECT customer_email FROM chatapp_conversations WHERE id = $1", &[&conv])
        .await
        .unwrap()
        .get(0);
    assert_eq!(email, None);
    assert_eq!(escalations(&env, conv).await, 0);
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}'")).await, 0);

    // The message is left: the address on the conversation and its customer, the message as
    // the customer's, and a low-priority escalation waiting for a support agent.
    let r = env
        .send(
            HttpFunction::Widget,
            contact(
                conv,
                &token,
                json!({"email": " Jo@Example.com ", "message": "Please call me back about order 42."}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "waiting_human", "{}", r.body);
    assert_eq!(r.body["message"]["role"], "user");
    assert_eq!(r.body["message"]["content"], "Please call me back about order 42.");
    let row = env
        .owner()
        .await
        .query_one(
            "SELECT c.customer_email, cu.email, c.status::text FROM chatapp_conversations c
             JOIN chatapp_customers cu ON cu.id::text = c.customer_id WHERE c.id = $1",
            &[&conv],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("jo@example.com"));
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("jo@example.com"));
    assert_eq!(row.get::<_, String>(2), "waiting_human");
    let row = env
        .owner()
        .await
        .query_one(
            "SELECT trigger_type, priority::text, status::text, reason FROM chatapp_escalations
             WHERE conversation_id = $1",
            &[&conv],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "offline_message");
    assert_eq!(row.get::<_, String>(1), "low");
    assert_eq!(row.get::<_, String>(2), "pending");
    assert_eq!(row.get::<_, String>(3), "left a message outside business hours");
    let left = format!(
        "chatapp_messages WHERE conversation_id = '{conv}' AND role = 'user'
           AND metadata->>'kind' = 'offline_message' AND content = 'Please call me back about order 42.'"
    );
    assert_eq!(env.count(&left).await, 1);
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'escalation'").await, 1);
    // The queue shows it to the support agents when they are back.
    let q =
        env.send(HttpFunction::Widget, Req::get(&format!("/widget/conversations/{conv}/queue")).token(&token)).await;
    assert_eq!(q.body["position"], 1, "{}", q.body);

    // Leaving another message adds it, without a second escalation.
    let r = env.send(HttpFunction::Widget, contact(conv, &token, json!({"email": "jo@example.com"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "waiting_human");
    assert!(r.body["message"].is_null(), "{}", r.body);
    assert_eq!(escalations(&env, conv).await, 1);
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'escalation'").await, 1);
}

/// A GET of the stream, called as Lambda calls the function; the body is read frame by frame.
async fn stream(
    env: &TestEnv,
    path: &str,
    token: Option<&str>,
    last_event_id: Option<&str>,
) -> axum::response::Response {
    let mut builder = http::Request::builder().method("GET").uri(path).header("accept", "text/event-stream");
    if let Some(t) = token {
        builder = builder.header("authorization", format!("Bearer {t}"));
    }
    if let Some(id) = last_event_id {
        builder = builder.header("last-event-id", id);
    }
    let mut request: lambda_http::Request = builder.body(lambda_http::Body::Empty).unwrap();
    request.extensions_mut().insert(LocalPeer("127.0.0.1".parse().unwrap()));
    HttpFunction::Widget.call(&env.deps, request).await
}

/// The stream's text until it holds `want` (each frame within 10 seconds).
async fn read_until(body: &mut axum::body::Body, want: &str) -> String {
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text.contains(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, body.frame())
            .await
            .unwrap_or_else(|_| panic!("no {want:?} in time; got {text:?}"))
            .unwrap_or_else(|| panic!("the stream ended before {want:?}; got {text:?}"))
            .expect("a frame");
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    text
}

#[tokio::test]
async fn the_event_stream_sends_each_event_with_its_sequence_number() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let (conv, token) = session(&env, agent).await;
    say(&env, conv, &token, "Hello there").await;
    let path = format!("/widget/conversations/{conv}/events/stream");

    // From the start: event 1 is the customer's message.
    let r = stream(&env, &format!("{path}?after=0"), Some(&token), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut body = r.into_body();
    let text = read_until(&mut body, "\n\n").await;
    assert!(text.starts_with("id: 1\nevent: message.created\ndata: {"), "{text}");
    let data: Value = serde_json::from_str(text.lines().nth(2).unwrap().strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(data["seq"], 1);
    assert_eq!(data["type"], "message.created");
    assert_eq!(data["data"]["content"], "Hello there");
    drop(body);

    // Last-Event-ID (an EventSource reconnecting) wins over `after`.
    let r = stream(&env, &format!("{path}?after=0"), Some(&token), Some("1")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut body = r.into_body();
    let text = read_until(&mut body, "\n\n").await;
    assert!(text.starts_with("id: 2\n"), "{text}");
    drop(body);

    // EventSource sends no Authorization header: the token may come in the query, here only.
    let r = stream(&env, &format!("{path}?after=0&token={token}"), None, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut body = r.into_body();
    assert!(read_until(&mut body, "\n\n").await.starts_with("id: 1\n"));
    drop(body);
    let r =
        env.send(HttpFunction::Widget, Req::get(&format!("/widget/conversations/{conv}/events?token={token}"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the long poll takes no token from the query: {}", r.body);
    for bad in [format!("{path}?token=cs_wrong-wrong-wrong-wrong"), path.clone()] {
        let r = stream(&env, &bad, None, None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
    }
    let r = stream(&env, &format!("{path}?after=-1"), Some(&token), None).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // The stream goes on: an event committed later arrives on the open stream.
    let last = env
        .owner()
        .await
        .query_one("SELECT last_event_seq FROM chatapp_conversations WHERE id = $1", &[&conv])
        .await
        .unwrap()
        .get::<_, i64>(0);
    let r = stream(&env, &format!("{path}?after={last}"), Some(&token), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut body = r.into_body();
    let writer = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        env.owner()
            .await
            .execute(
                "INSERT INTO chatapp_messages (conversation_id, company_id, role, content, sender_id)
                 VALUES ($1, $2, 'human_agent', 'Hello from support', $3)",
                &[&conv, &t.company_id, &t.admin_id],
            )
            .await
            .unwrap();
    };
    let (text, ()) = tokio::join!(read_until(&mut body, "Hello from support"), writer);
    assert!(text.starts_with(&format!("id: {}\nevent: message.created\n", last + 1)), "{text}");
}
