//! Conversation events read with `after=`: numbered without gaps, each delivered once across
//! reconnects, a long poll woken by a commit, internal notes never shown to the customer, and
//! the customer's place in the queue.

use std::time::{Duration, Instant};

use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{Req, TestEnv};
use http::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use super::{company_with_agent, online_agent, say, session, waiting};

async fn events(env: &TestEnv, conv: Uuid, token: &str, after: i64, wait: u64) -> Value {
    let r = env
        .send(
            HttpFunction::Widget,
            Req::get(&format!("/widget/conversations/{conv}/events?after={after}&wait={wait}")).token(token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

fn seqs(page: &Value) -> Vec<i64> {
    page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn reconnecting_with_after_gets_every_event_once_and_never_internal_ones() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let (conv, token) = session(&env, agent).await;
    say(&env, conv, &token, "Hello there").await;
    let first = events(&env, conv, &token, 0, 0).await;
    let got = seqs(&first);
    assert_eq!(got, (1..=got.len() as i64).collect::<Vec<_>>(), "numbered 1.. without gaps: {first}");
    assert!(got.len() >= 2, "the customer's message and the answer");
    let last = first["last_seq"].as_i64().unwrap();
    assert_eq!(last, *got.last().unwrap());

    // A note (internal) and then a message while the client is away.
    let owner = env.owner().await;
    let admin = t.admin_id;
    owner
        .execute(
            "INSERT INTO chatapp_conversation_notes (conversation_id, company_id, user_id, content)
             VALUES ($1, $2, $3, 'secret-note-xyz')",
            &[&conv, &t.company_id, &admin],
        )
        .await
        .unwrap();
    say(&env, conv, &token, "Are you still there?").await;
    let next = events(&env, conv, &token, last, 0).await;
    let got = seqs(&next);
    assert!(got.iter().all(|s| *s > last), "only newer events: {next}");
    assert!(!next.to_string().contains("secret-note-xyz"), "a note reached the customer: {next}");
    // The note took a sequence number the customer skips; nothing is delivered twice.
    assert_eq!(got.first().copied(), Some(last + 2));
    let again = events(&env, conv, &token, next["last_seq"].as_i64().unwrap(), 0).await;
    assert!(seqs(&again).is_empty(), "{again}");
    // The inbox (a company admin) sees the note in the same sequence.
    let all = env
        .owner()
        .await
        .query_one("SELECT count(*) FROM chatapp_conversation_events WHERE conversation_id = $1 AND internal", &[&conv])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(all, 1);
    // Bad parameters are 400s.
    for q in ["after=-1", "wait=26", "after=x", "foo=1"] {
        let r = env
            .send(HttpFunction::Widget, Req::get(&format!("/widget/conversations/{conv}/events?{q}")).token(&token))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.body);
    }
    // Another conversation's token opens nothing here.
    let (_, other) = session(&env, agent).await;
    let r =
        env.send(HttpFunction::Widget, Req::get(&format!("/widget/conversations/{conv}/events")).token(&other)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// A long poll with nothing new returns as soon as an event commits (woken by NOTIFY), not at
/// the end of its wait.
#[tokio::test]
async fn a_long_poll_returns_when_an_event_commits() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let (conv, token) = session(&env, agent).await;
    let last = events(&env, conv, &token, 0, 0).await["last_seq"].as_i64().unwrap();
    let started = Instant::now();
    let waiter = events(&env, conv, &token, last, 20);
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
    let (page, ()) = tokio::join!(waiter, writer);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "woken by the commit, not the timeout ({took:?})");
    let ev = &page["events"][0];
    assert_eq!(ev["type"], "message.created", "{page}");
    assert_eq!(ev["data"]["role"], "human_agent");
    assert_eq!(ev["data"]["content"], "Hello from support");
    // With nothing new, a short wait ends empty.
    let empty = events(&env, conv, &token, page["last_seq"].as_i64().unwrap(), 1).await;
    assert!(seqs(&empty).is_empty());
}

/// Two customers waiting: positions 1 and 2 (priority first), and an estimate once there are
/// recent assignments to take a median from.
#[tokio::test]
async fn the_queue_route_gives_position_and_estimated_wait() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let (first, first_token) = session(&env, agent).await;
    say(&env, first, &first_token, "I want to talk to a human please").await;
    let (second, second_token) = session(&env, agent).await;
    say(&env, second, &second_token, "I want to talk to a human please").await;
    let q = |conv: Uuid, token: String| {
        let env = &env;
        async move {
            let r = env
                .send(HttpFunction::Widget, Req::get(&format!("/widget/conversations/{conv}/queue")).token(&token))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body
        }
    };
    let a = q(first, first_token.clone()).await;
    let b = q(second, second_token.clone()).await;
    assert_eq!(a["status"], "waiting_human");
    assert_eq!(a["position"], 1, "{a}");
    assert_eq!(b["position"], 2, "{b}");
    assert!(b["estimated_wait_seconds"].is_null(), "no recent assignment to estimate from: {b}");
    assert_eq!(b["agents_online"], 0);
    // An urgent one jumps the queue.
    let urgent = waiting(&env, &t, agent, "urgent", 0).await;
    assert_eq!(q(second, second_token.clone()).await["position"], 3);
    // One assignment (waited 120 s) gives the median; two online agents halve the rounds.
    env.owner()
        .await
        .execute(
            "UPDATE chatapp_escalations SET created_at = now() - interval '120 seconds' WHERE conversation_id = $1",
            &[&urgent],
        )
        .await
        .unwrap();
    online_agent(&env, &t, "ann", 1).await;
    chatapp::handoff::assign::drain(&env.deps, t.company_id).await.unwrap();
    online_agent(&env, &t, "bob", 0).await;
    let b = q(second, second_token).await;
    assert_eq!(b["position"], 2, "{b}");
    assert_eq!(b["agents_online"], 2);
    assert_eq!(b["estimated_wait_seconds"], 120, "median 120 s × one round: {b}");
    let a = q(first, first_token).await;
    assert_eq!(a["position"], 1);
}
