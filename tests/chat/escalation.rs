//! Escalation triggers that hand the conversation to a human and silence the AI.

use chatapp_tests::TestEnv;
use serde_json::{json, Value};

use super::{say, session, setup};

/// Each trigger: one escalation row, the conversation waits for a human, the jobs are queued,
/// and the next message gets no AI answer.
#[tokio::test]
async fn each_escalation_trigger_hands_over_once_and_silences_the_ai() {
    let cases = [
        (json!({"keywords": ["lawyer"]}), vec!["I will call my lawyer about this refund"], "keyword"),
        (json!({}), vec!["I want to talk to a human please"], "explicit_request"),
        (json!({"sentimentThreshold": -0.5}), vec!["This is the worst, totally useless service!!!"], "sentiment"),
        (json!({"confidenceThreshold": 0.99}), vec!["What is the airspeed of a swallow?"], "low_confidence"),
        (json!({"autoEscalateAfter": 2}), vec!["How long do refunds take?", "And shipping?"], "turn_limit"),
    ];
    for (rules, messages, trigger) in cases {
        let env = TestEnv::new().await;
        let t = env.company("acme", "starter").await;
        let chat = setup(&env, &t, rules, json!({})).await;
        env.owner()
            .await
            .execute(
                "INSERT INTO chatapp_webhooks (company_id, name, url, secret) VALUES ($1, 'crm', 'https://crm.example.test/h', 's')",
                &[&t.company_id],
            )
            .await
            .unwrap();
        let (conv, token) = session(&env, chat.agent, json!({})).await;
        let mut last = Value::Null;
        for m in &messages {
            last = say(&env, conv, &token, m).await;
        }
        assert_eq!(last["handoff"], true, "{trigger}: {last}");
        assert_eq!(last["escalation"]["trigger"], trigger, "{last}");
        assert_eq!(env.count(&format!("chatapp_escalations WHERE conversation_id = '{conv}'")).await, 1);
        assert_eq!(
            env.count(&format!("chatapp_conversations WHERE id = '{conv}' AND status = 'waiting_human'")).await,
            1
        );
        assert_eq!(env.count("chatapp_jobs WHERE queue = 'escalation'").await, 1);
        assert_eq!(
            env.count("chatapp_jobs WHERE queue = 'outbound' AND payload->>'type' = 'conversation.escalated'").await,
            1
        );
        assert_eq!(env.count("chatapp_outbox").await, 0, "everything relayed after the commits");
        // The AI no longer answers; nothing escalates twice.
        let after = say(&env, conv, &token, "Hello? I need a lawyer and a human").await;
        assert!(after["reply"].is_null(), "{trigger}: {after}");
        assert_eq!(after["handoff"], true);
        assert_eq!(env.count(&format!("chatapp_escalations WHERE conversation_id = '{conv}'")).await, 1);
    }
}

/// Sends that arrive at once in one conversation run one after another (each turn locks the
/// conversation and reads behind the lock): the turn limit hands over exactly once, the turn
/// after it stays silent, and the counters match the rows.
#[tokio::test]
async fn concurrent_sends_in_one_conversation_hand_over_once_and_keep_counters_exact() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({"autoEscalateAfter": 3}), json!({})).await;
    let (conv, token) = session(&env, chat.agent, json!({})).await;
    say(&env, conv, &token, "How long do refunds take?").await;
    let (a, b, c) = tokio::join!(
        say(&env, conv, &token, "And shipping?"),
        say(&env, conv, &token, "Where do refunds go?"),
        say(&env, conv, &token, "Do you ship with DHL?"),
    );
    let turns = [&a, &b, &c];
    assert_eq!(turns.iter().filter(|r| !r["escalation"].is_null()).count(), 1, "{a}\n{b}\n{c}");
    // The turn after the handoff is silent; a turn whose answer was still being generated when
    // the handoff committed loses its answer too (the AI never speaks after a handoff).
    let silent = turns.iter().filter(|r| r["reply"].is_null()).count();
    assert!((1..=2).contains(&silent), "{a}\n{b}\n{c}");
    assert_eq!(env.count(&format!("chatapp_escalations WHERE conversation_id = '{conv}'")).await, 1);
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'escalation'").await, 1);
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}' AND role = 'user'")).await, 4);
    let stored = env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}'")).await;
    // Four customer messages, one handoff message, and the answers that were stored.
    assert_eq!(stored, 4 + 1 + (3 - silent as i64), "{a}\n{b}\n{c}");
    assert_eq!(
        env.count(&format!(
            "chatapp_messages m WHERE conversation_id = '{conv}' AND role = 'assistant'
             AND created_at > (SELECT created_at FROM chatapp_messages
                               WHERE conversation_id = '{conv}' AND metadata->>'kind' = 'handoff')"
        ))
        .await,
        0,
        "an AI answer after the handoff"
    );
    let ai = env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}' AND role = 'assistant'")).await;
    assert_eq!(
        env.count(&format!(
            "chatapp_conversations WHERE id = '{conv}' AND message_count = {stored} AND ai_message_count = {ai}"
        ))
        .await,
        1
    );
}
