//! The transactional outbox: a rolled-back change leaves no job; a committed one whose producer
//! crashed before relaying is sent by the sweep exactly once, and its consumer's effect happens
//! once even when the job is delivered twice.

use std::time::Duration;

use chatapp::adapters::queue::ESCALATION;
use chatapp::auth::worker_ctx;
use chatapp::outbox;
use chatapp_functions::http_function::HttpFunction;
use chatapp_functions::{escalation_worker, outbox_relay};
use chatapp_tests::{Req, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};

use super::{assignments, company_with_agent, online_agent, say, session, waiting};

#[tokio::test]
async fn a_rolled_back_change_leaves_no_job() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let conv = waiting(&env, &t, agent, "medium", 5).await;
    let tx = env.deps.db.begin(&worker_ctx(t.company_id)).await.unwrap();
    outbox::add(&tx, ESCALATION, &json!({"company_id": t.company_id})).await.unwrap();
    // A change in the same transaction that then fails: the job goes with it.
    chatapp::repo::chat::append_event(&tx, conv, "conversation.snoozed", &json!({}), false).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(outbox::pending(&env.deps.db, ESCALATION).await.unwrap(), 0);
    assert_eq!(outbox::pending(&env.deps.db, "outbound").await.unwrap(), 0);
    let relay = env.deps.scoped(outbox_relay::AWS);
    assert_eq!(outbox_relay::sweep(&relay, Duration::ZERO).await.unwrap().sent, 0);
    assert_eq!(env.count("chatapp_jobs").await, 0);
    assert_eq!(env.count(&format!("chatapp_conversation_events WHERE conversation_id = '{conv}'")).await, 0);
}

/// The producer committed and died before relaying: the sweep sends the job once (a second
/// sweep finds nothing), a relay that died holding the rows' lease is taken over after it, and
/// the worker receiving the same job twice assigns once.
#[tokio::test]
async fn a_crash_between_commit_and_relay_still_delivers_exactly_one_effect() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let (ann, _) = online_agent(&env, &t, "ann", 3).await;
    let conv = waiting(&env, &t, agent, "medium", 5).await;
    let tx = env.deps.db.begin(&worker_ctx(t.company_id)).await.unwrap();
    let event_id = outbox::add(&tx, ESCALATION, &json!({"company_id": t.company_id, "kind": "drain"})).await.unwrap();
    tx.commit().await.unwrap();
    // (no relay_now: the producer "crashed" here)
    let relay = env.deps.scoped(outbox_relay::AWS);
    // Too young for the sweep: its producer may still be about to send it.
    assert_eq!(outbox_relay::sweep(&relay, outbox_relay::MIN_AGE).await.unwrap().sent, 0);
    // A relay that took the row and died: its lease holds the row until it ends.
    let owner = env.owner().await;
    owner.execute("UPDATE chatapp_outbox SET leased_until = now() + interval '30 seconds'", &[]).await.unwrap();
    assert_eq!(outbox_relay::sweep(&relay, Duration::ZERO).await.unwrap().sent, 0);
    owner.execute("UPDATE chatapp_outbox SET leased_until = now() - interval '1 second'", &[]).await.unwrap();
    assert_eq!(outbox_relay::sweep(&relay, Duration::ZERO).await.unwrap().sent, 1);
    assert_eq!(outbox_relay::sweep(&relay, Duration::ZERO).await.unwrap().sent, 0);
    let jobs = owner.query("SELECT payload FROM chatapp_jobs WHERE queue = 'escalation'", &[]).await.unwrap();
    assert_eq!(jobs.len(), 1);
    let payload: Value = jobs[0].get(0);
    assert_eq!(payload["event_id"], json!(event_id));

    // Delivered twice (SQS is at least once): one assignment.
    let record = |id: &str| {
        json!({"messageId": id, "receiptHandle": id, "body": payload.to_string(), "attributes": {},
               "messageAttributes": {}, "eventSource": "aws:sqs"})
    };
    let worker = env.deps.scoped(escalation_worker::AWS);
    for id in ["m1", "m2"] {
        let out = escalation_worker::handle(&worker, json!({"Records": [record(id)]})).await.unwrap();
        assert_eq!(out["batchItemFailures"], json!([]));
    }
    assert_eq!(assignments(&env, &t).await, vec![(conv, ann)]);
    assert_eq!(env.count("chatapp_conversation_events WHERE type = 'conversation.assigned'").await, 1);
}

/// A handoff in a chat turn writes its job and events through the outbox and relays them after
/// its commit: one assignment job, one `conversation.escalated` event, nothing left behind.
#[tokio::test]
async fn a_handoff_relays_its_job_and_events_after_commit() {
    let env = TestEnv::new().await;
    // A company without outbound webhooks gets no outbound events at all.
    let (_, quiet) = company_with_agent(&env, "quiet").await;
    let (conv, token) = session(&env, quiet).await;
    say(&env, conv, &token, "I want to talk to a human please").await;
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'escalation'").await, 1);
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'outbound'").await, 0);

    let (t, agent) = company_with_agent(&env, "acme").await;
    super::webhook(&env, t.company_id).await;
    let (conv, token) = session(&env, agent).await;
    let out = say(&env, conv, &token, "I want to talk to a human please").await;
    assert_eq!(out["handoff"], true, "{out}");
    assert_eq!(env.count("chatapp_outbox").await, 0, "relayed after the commit");
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'escalation'").await, 2);
    assert_eq!(
        env.count("chatapp_jobs WHERE queue = 'outbound' AND payload->>'type' = 'conversation.escalated'").await,
        1
    );
    // Every message became an outbound event too: the customer's and the handoff notice.
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'outbound' AND payload->>'type' = 'message.created'").await, 2);

    // The assignment and the resolution are outbound events of their own, once each.
    let (ann, ann_token) = online_agent(&env, &t, "ann", 2).await;
    let assigned = chatapp::handoff::assign::drain(&env.deps, t.company_id).await.unwrap();
    assert_eq!((assigned.len(), assigned[0].user_id), (1, ann));
    let r = env
        .send(HttpFunction::Inbox, Req::post(&format!("/inbox/conversations/{conv}/resolve")).token(&ann_token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let relay = env.deps.scoped(outbox_relay::AWS);
    outbox_relay::sweep(&relay, Duration::ZERO).await.unwrap();
    assert_eq!(env.count("chatapp_outbox").await, 0);
    let events = |kind: &str| {
        format!("chatapp_jobs WHERE queue = 'outbound' AND payload->>'type' = '{kind}' AND payload->>'conversation_id' = '{conv}'")
    };
    assert_eq!(env.count(&events("conversation.assigned")).await, 1);
    assert_eq!(env.count(&events("conversation.resolved")).await, 1);
    let resolved = env
        .owner()
        .await
        .query_one(&format!("SELECT payload FROM {}", events("conversation.resolved")), &[])
        .await
        .unwrap()
        .get::<_, Value>(0);
    assert_eq!(resolved["company_id"], json!(t.company_id), "{resolved}");
    // The quiet company's conversation got none.
    assert_eq!(
        env.count(&format!("chatapp_jobs WHERE queue = 'outbound' AND payload->>'company_id' <> '{}'", t.company_id))
            .await,
        0
    );
}
