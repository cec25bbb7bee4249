//! Conversations in the inbox: who owns them (claim, transfer, assign, release, resolve, reopen,
//! hand back), replies as a person, typing, live events, lists with their filters, labels and
//! snoozes; row-level security between colleagues and tenants; bad input refused with nothing
//! stored; an audit row per change.

use chatapp_tests::{assert_error, Req, Resp, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{claim, conv_path, inbox, say, send, session, stored, waiting};

const UNKNOWN: &str = "6f1c1d0e-1111-4222-8333-944445555666";

/// The support agent's `current_chat_count` (0 without a status row).
async fn chat_count(env: &TestEnv, user: Uuid) -> i32 {
    env.owner()
        .await
        .query_opt("SELECT current_chat_count FROM chatapp_support_agent_status WHERE user_id = $1", &[&user])
        .await
        .unwrap()
        .and_then(|r| r.get::<_, Option<i32>>(0))
        .unwrap_or(0)
}

/// Events of `kind` in the conversation.
async fn events_of(env: &TestEnv, conv: Uuid, kind: &str) -> i64 {
    env.count(&format!("chatapp_conversation_events WHERE conversation_id = '{conv}' AND type = '{kind}'")).await
}

/// Messages of the conversation with this exact text.
async fn messages_saying(env: &TestEnv, conv: Uuid, text: &str) -> i64 {
    env.owner()
        .await
        .query_one("SELECT count(*) FROM chatapp_messages WHERE conversation_id = $1 AND content = $2", &[&conv, &text])
        .await
        .unwrap()
        .get(0)
}

/// The conversation's open (or latest) escalation: status, assignee, wait, first response, handle time.
async fn escalation(env: &TestEnv, conv: Uuid) -> (String, Option<Uuid>, Option<i32>, Option<i32>, Option<i32>) {
    let r = env
        .owner()
        .await
        .query_one(
            "SELECT status::text, assigned_to, wait_time, first_response_time, handle_time FROM chatapp_escalations
             WHERE conversation_id = $1 ORDER BY created_at DESC LIMIT 1",
            &[&conv],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
}

/// The ids of a list's items, in order.
fn ids(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

async fn list(env: &TestEnv, token: &str, query: &str) -> Resp {
    send(env, Req::get(&format!("/inbox/conversations{query}")).token(token)).await
}

#[tokio::test]
async fn claiming_takes_a_waiting_conversation_and_silences_the_ai() {
    let env = TestEnv::new().await;
    let ib = inbox(&env, "acme").await;
    let (conv, token) = waiting(&env, &ib).await;
    // A user without a name is called by their address's local part.
    let joined = format!("{} joined the conversation.", ib.ana.email.split('@').next().unwrap());
    assert_eq!(joined, "ana joined the conversation.");

    let r = claim(&env, &ib.ana.token, conv).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "with_human");
    assert_eq!(r.body["assigned_agent_id"], ib.ana.id.to_string());
    assert_eq!(r.body["priority"], "high", "an explicit request is high priority: {}", r.body);
    assert_eq!(stored(&env, conv).await, ("with_human".to_string(), Some(ib.ana.id)));
    // The customer sees who joined; the escalation is assigned with its wait time; the
    // support agent's load counts it.
    assert_eq!(messages_saying(&env, conv, &joined).await, 1);
    let (status, assignee, wait, _, _) = escalation(&env, conv).await;
    assert_eq!((status.as_str(), assignee), ("assigned", Some(ib.ana.id)));
    assert!(wait.is_some_and(|w| w >= 0), "wait_time {wait:?}");
    assert_eq!(chat_count(&env, ib.ana.id).await, 1);
    assert_eq!(events_of(&env, conv, "conversation.assigned").await, 1);
    assert_eq!(env.audit_count("conversation.claim").await, 1);

    // Claiming it again changes nothing.
    let again = claim(&env, &ib.ana.token, conv).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["assigned_agent_id"], ib.ana.id.to_string());
    assert_eq!(messages_saying(&env, conv, &joined).await, 1);
    assert_eq!(chat_count(&env, ib.ana.id).await, 1);
    assert_eq!(env.audit_count("conversation.claim").await, 1);

    // A colleague no longer sees it; an admin, who does, finds it taken.
    assert_error!(claim(&env, &ib.ben.token, conv).await, StatusCode::NOT_FOUND, "not_found");
    assert_error!(claim(&env, &ib.tenant.admin_token, conv).await, StatusCode::CONFLICT, "conversation_taken");
    assert_eq!(stored(&env, conv).await, ("with_human".to_string(), Some(ib.ana.id)));
    assert_eq!(env.audit_count("conversation.claim").await, 1);

    // The AI stays silent while a person owns the conversation.
    let answers = format!("chatapp_messages WHERE conversation_id = '{conv}' AND role = 'assistant'");
    let before = env.count(&answers).await;
    let turn = say(&env, conv, &token, "Hello? Are you there?").await;
    assert!(turn["reply"].is_null(), "{turn}");
    assert_eq!(env.count(&answers).await, before);

    // The detail shows the system message and the assigned escalation.
    let d = send(&env, Req::get(&conv_path(conv, "")).token(&ib.ana.token)).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let messages = d.body["messages"].as_array().unwrap();
    assert!(messages.iter().any(|m| m["role"] == "system" && m["content"] == joined.as_str()));
    assert!(messages.iter().any(|m| m["role"] == "user" && m["content"] == "Hello? Are you there?"));
    assert_eq!(d.body["escalation"]["status"], "assigned");
    assert_eq!(d.body["escalation"]["assigned_to"], ib.ana.id.to_string());
}

#[tokio::test]
async fn concurrent_claims_give_the_conversation_to_one_support_agent() {
    let env = TestEnv::new().await;
    let ib = inbox(&env, "acme").await;
    let (conv, _) = waiting(&env, &ib).await;
    let (a, b) = tokio::join!(claim(&env, &ib.ana.token, conv), claim(&env, &ib.ben.token, conv));
    let won: Vec<&Resp> = [&a, &b].into_iter().filter(|r| r.status == StatusCode::OK).collect();
    assert_eq!(won.len(), 1, "{}\n{}", a.body, b.body);
    let lost = if a.status == StatusCode::OK { &b } else { &a };
    // The loser read the winner's result under the lock: gone from its view, or taken.
    assert!([StatusCode::NOT_FOUND, StatusCode::CONFLICT].contains(&lost.status), "{}", lost.body);
    assert_eq!(
        env.count(&format!(
            "chatapp_messages WHERE conversation_id = '{conv}' AND content LIKE '% joined the conversation.'"
        ))
        .await,
        1
    );
    assert_eq!(env.count(&format!("chatapp_escalations WHERE conversation_id = '{conv}'")).await, 1);
    assert_eq!(chat_count(&env, ib.ana.id).await + chat_count(&env, ib.ben.id).await, 1);
}

#[tokio::test]
async fn colleagues_and_other_tenants_see_nothing_of_a_conversation() {
    let env = TestEnv::new().await;
    let ib = inbox(&env, "acme").await;
    let other = env.company("other", "professional").await;
    let (conv, _) = waiting(&env, &ib).await;

    // Waiting for a person: every member of the company sees it.
    for token in [&ib.ana.token, &ib.ben.token, &ib.tenant.admin_token] {
        let d = send(&env, Req::get(&conv_path(conv, "")).token(token)).await;
        assert_eq!(d.status, StatusCode::OK, "{}", d.body);
        assert_eq!(d.body["conversation"]["id"], conv.to_string());
        assert_eq!(d.body["conversation"]["status"], "waiting_human");
        assert_eq!(d.body["customer"]["name"], "Carla Customer");
        assert_eq!(d.body["customer"]["email"], "carla@example.com");
        assert!(d.body["customer"]["id"].is_string(), "{}", d.body);
        assert_eq!(d.body["escalation"]["status"], "pending");
        assert_eq!(d.body["escalation"]["trigger_type"], "explicit_request");
        assert_eq!(d.body["escalation"]["priority"], "high");
        assert_eq!(d.body["notes"], json!([]));
        let messages = d.body["messages"].as_array().unwrap();
        assert!(messages.iter().any(|m| m["role"] == "user" && m["content"] == "I want to talk to a human please"));
    }

    assert_eq!(claim(&env, &ib.ana.token, conv).await.status, StatusCode::OK);
    // Ana's now: Ben cannot read or touch it.
    for req in [
        Req::get(&conv_path(conv, "")),
        Req::get(&conv_path(conv, "/events")),
        Req::post(&conv_path(conv, "/typing")),
        Req::post(&conv_path(conv, "/resolve")),
        Req::post(&conv_path(conv, "/release")),
        Req::post(&conv_path(conv, "/messages")).json(json!({"content": "Hi, Ben here"})),
        Req::put(&conv_path(conv, "/labels")).json(json!({"labels": ["x"]})),
    ] {
        assert_error!(send(&env, req.token(&ib.ben.token)).await, StatusCode::NOT_FOUND, "not_found");
    }
    // Another company's admin: not found, whatever the route.
    for req in [
        Req::get(&conv_path(conv, "")),
        Req::get(&conv_path(conv, "/events")),
        Req::post(&conv_path(conv, "/claim")),
        Req::post(&conv_path(conv, "/handback")),
        Req::post(&conv_path(conv, "/assign")).json(json!({"user_id": other.admin_id})),
        Req::put(&conv_path(conv, "/labels")).json(json!({"labels": ["x"]})),
    ] {
        assert_error!(send(&env, req.token(&other.admin_token)).await, StatusCode::NOT_FOUND, "not_found");
    }
    let r = list(&env, &other.admin_token, "?view=all").await;
    assert_eq!(r.body["total"], 0, "{}", r.body);
    // Unknown and malformed ids.
    assert_error!(
        send(&env, Req::get(&format!("/inbox/conversations/{UNKNOWN}")).token(&ib.ana.token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_error!(
        send(&env, Req::post("/inbox/conversations/not-a-uuid/claim").token(&ib.ana.token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    // Nothing changed; no audit rows for refused requests.
    assert_eq!(stored(&env, conv).await, ("with_human".to_string(), Some(ib.ana.id)));
    assert_eq!(env.count(&format!("chatapp_conversations WHERE id = '{conv}' AND labels = '{{}}'")).await, 1);
    assert_eq!(env.count("chatapp_audit_logs WHERE resource_type = 'conversation'").await, 1);
    // Without a signed-in user: 401.
    assert_eq!(send(&env, Req::get("/inbox/conversations")).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_owner_replies_as_a_person_and_nobody_else_can() {
    let env = TestEnv::new().await;
    let ib = inbox(&env, "acme").await;
    // An outbound webhook, so replies also go to the outbound queue.
    env.owner()
        .await
        .execute(
            "INSERT INTO chatapp_webhooks (company_id, name, url, secret) VALUES ($1, 'crm', 'https://crm.example.test/h', 's')",
            &[&ib.tenant.company_id],
        )
        .await
        .unwrap();
    let (conv, _) = waiting(&env, &ib).await;
    let human = format!("chatapp_messages WHERE conversation_id = '{conv}' AND role = 'human_agent'");

    // Not claimed yet: refused, with what to do about it.
    let first = Req::post(&conv_path(conv, "/messages")).token(&ib.ana.token).json(json!({"content": "Hi"}));
    let r = send(&env, first).await;
    assert_error!(r, StatusCode::CONFLICT, "not_owner");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("claim the conversation first"), "{}", r.body);
    assert_eq!(env.count(&human).await, 0);

    assert_eq!(claim(&env, &ib.ana.token, conv).await.status, StatusCode::OK);
    let reply = json!({"content": "  Hi Carla, I'm Ana. How can I help?  ", "client_message_id": "m-1"});
    let r = send(&env, Req::post(&conv_path(conv, "/messages")).token(&ib.ana.token).json(reply.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["role"], "human_agent");
    assert_eq!(r.body["content"], "Hi Carla, I'm Ana. How can I help?");
    assert_eq!(r.body["metadata"]["kind"], "human_reply");
    let id = r.body["id"].clone();
    // A retried send answers the stored message.
    let again = send(&env, Req::post(&conv_path(conv, "/messages")).token(&ib.ana.token).json(reply)).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body["id"], id);
    assert_eq!(env.count(&format!("{human} AND sender_id = '{}'", ib.ana.id)).await, 1);
    assert_eq!(env.count(&format!("chatapp_conversations WHERE id = '{conv}' AND human_message_count = 1")).await, 1);
    let (status, _, _, first_response, _) = escalation(&env, conv).await;
    assert_eq!(status, "in_progress");
    assert!(first_response.is_some(), "first_response_time is set by the first reply");
    // The customer gets it through the events (and webhooks through the outbound queue).
    assert_eq!(
        env.count(&format!(
            "chatapp_conversation_events WHERE conversation_id = '{conv}' AND type = 'message.created'
               AND payload ->> 'role' = 'human_agent' AND NOT internal"
        ))
        .await,
        1
    );
    assert_eq!(
        env.count(
            "chatapp_jobs WHERE queue = 'outbound' AND payload ->> 'type' = 'message.created'
               AND payload -> 'data' ->> 'role' = 'human_agent'"
        )
        .await,
        1,
        "relayed from the outbox after the commit"
    );
    assert_eq!(env.audit_count("conversation.reply").await, 1);

    // An admin who does not own it cannot reply either.
    let r = send(
        &env,
        Req::post(&conv_path(conv, "/messages")).token(&ib.tenant.admin_token).json(json!({"content": "Admin here"})),
    )
    .await;
    assert_error!(r, StatusCode::CONFLICT, "not_owner");
    assert_eq!(env.count(&human).await, 1);
}

#[tokio::test]
async fn bad_replies_are_refused_and_store_nothing() {
    let env = TestEnv::new().await;
    let ib = inbox(&env, "acme").await;
    let (conv, _) = waiting(&env, &ib).await;
    assert_eq!(claim(&env, &ib.ana.token, conv).await.status, StatusCode::OK);
    let all = format!("chatapp_messages WHERE conversation_id = '{conv}'");
    let before = env.count(&all).await;
    let path = conv_path(conv, "/messages");
    for (req, code) in [
        (Req::post(&path).json(json!({"content": "   "})), "validation_failed"),
        (Req::post(&path).json(json!({"content": "x".repeat(4001)})), "validation_failed"),
        (Req::post(&path).json(json!({"content": "hi", "extra": 1})), "validation_failed"),
        (Req::post(&path).json(json!({"content": 5})), "validation_failed"),
        (Req::post(&path).json(json!({})), "validation_failed"),
        (Req::post(&path).json(json!({"content": "hi", "client_message_id": ""})), "validation_failed"),
        (Req::post(&path).raw("{"), "invalid_json"),
    ] {
        assert_error!(send(&env, req.token(&ib.ana.token)).await, StatusCode::BAD_REQUEST, code);
    }
    let unknown = format!("/inbox/conversations/{UNKNOWN}/messages");
    for path in ["/inbox/conversations/not-a-uuid/messages".to_string(), unknown] {
        let r = send(&env, Req::post(&path).token(&ib.ana.token).json(json!({"content": "hi"}))).await;
        assert_error!(r, StatusCode::NOT_FOUND, "not_found");
    }
    assert_eq!(env.count(&all).await, before, "a refused reply stored something");
    assert_eq!(env.count(&format!("chatapp_conversations WHERE id = '{conv}' AND human_message_count = 0")).await, 1);
    assert_eq!(env.audit_count("conversation.reply").await, 0);
    // Exactly 4000 characters is fine.
    let r = send(&env, Req::post(&path).token(&ib.ana.token).json(json!({"content": "y".repeat(4000)}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn a_transfer_hands_the_conversation_to_a_colleague_and_admins_assign() {
    let env = TestEnv::new().await;
    let ib = inbox(&env, "acme").await;
    let other = env.company("other", "professional").await;
    let (conv, _) = waiting(&env, &ib).await;
    assert_eq!(claim(&env, &ib.ana.token, conv).await.status, StatusCode::OK);

    let path = conv_path(conv, "/transfer");
    for body in [
        json!({"user_id": ib.ana.id}),
        json!({"user_id": UNKNOWN}),
        json!({"user_id": other.admin_id}),
        json!({"user_id": "nope"}),
        json!({"user_id": ib.ben.id, "note": "x"}),
    ] {
        let r = send(&env, Req::post(&path).token(&ib.ana.token).json(body.clone())).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    }
    assert_error!(
        send(&env, Req::post(&path).token(&ib.ben.token).json(json!({"user_id": ib.ben.id}))).await,
        StatusCode::BAD_REQUEST,
        "validation_failed"
    );
    assert_error!(
        send(&env, Req::post(&path).token(&ib.ben.token).json(json!({"user_id": ib.ana.id}))).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_eq!(stored(&env, conv).await, ("with_human".to_string(), Some(ib.ana.id)));
    assert_eq!(env.audit_count("conversation.transfer").await, 0);

    let r = send(&env, Req::post(&path).token(&ib.ana.token).json(json!({"user_id": ib.ben.id}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "with_human");
    assert_eq!(r.body["assigned_agent_id"], ib.ben.id.to_string());
    assert_eq!(stored(&env, conv).await, ("with_human".to_string(), Some(ib.ben.id)));
    // Ana no longer sees it; Ben does.
    assert_error!(
        send(&env, Req::get(&conv_path(conv, "")).token(&ib.ana.token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    let d = send(&env, Req::get(&conv_path(conv, "")).token(&ib.ben.token)).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert_eq!(d.body["conversation"]["assigned_agent_id"], ib.ben.id.to_string());
    assert_eq!(messages_saying(&env, conv, "You have been transferred to ben.").await, 1);
    assert_eq!(events_of(&env, conv, "conversation.transferred").await, 1);
    assert_eq!((chat_count(&env, ib.ana.id).await, chat_count(&env, ib.ben.id).await), (0, 1));
    assert_eq!(escalation(&env, conv).await.1, Some(ib.ben.id));
    assert_eq!(env.audit_count("conversation.transfer").await, 1);

    // Assigning is for admins.
    let assign = conv_path(conv, "/assign");
    assert_error!(
        send(&env, Req::post(&assign).token(&ib.ben.token).json(json!({"user_id": ib.ana.id}))).await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    assert_error!(
        send(&env, Req::post(&assign).token(&ib.tenant.admin_token).json(json!({"user_id": UNKNOWN}))).await,
        StatusCode::BAD_REQUEST,
        "validation_failed"
    );
    let r = send(&env, Req::post(&assign).token(&ib.tenant.admin_token).json(json!({"user_id": ib.ana.id}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["assigned_agent_id"], ib.ana.id.to_string());
    assert_eq!(events_of(&env, conv, "conversation.transferred").await, 2, "it was with Ben: a transfer");
    assert_eq!((chat_count(&env, ib.ana.id).await, chat_count(&env, ib.ben.id).await), (1, 0));
    // To the same person again: nothing changes.
    let r = send(&env, Req::post(&assign).token(&ib.tenant.admin_token).json(json!({"user_id": ib.ana.id}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(events_of(&env, conv, "conversation.transferred").await, 2);
    assert_eq!(env.audit_count("conversation.assign").await, 1);
}

#[tokio::test]
async fn release_puts_the_conversation_back_in_the_queue() {
    let env = TestEnv::new().await;
    let ib = inbox(&env, "acme").await;
    let (conv, _) = waiting(&env, &ib).await;
    assert_eq!(claim(&env, &ib.ana.token, conv).await.status, StatusCode::OK);
    let path = conv_path(conv, "/release");
    assert_error!(send(&env, Req::post(&path).token(&ib.ben.token)).await, StatusCode::NOT_FOUND, "not_found");

    let r = send(&env, Req::post(&path).token(&ib.ana.token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "waiting_human");
    assert!(r.body["assigned_agent_id"].is_null(), "{}", r.body);
    assert_eq!(stored(&env, conv).await, ("waiting_human".to_string(), None));
    let (status, assignee, _, _, _) = escalation(&env, conv).await;
    assert_eq!((status.as_str(), assignee), ("pending", None));
    assert_eq!(
        env.count(&format!(
            "chatapp_escalations WHERE conversation_id = '{conv}' AND reassign_count = 1 AND previous_assignee = '{}'",
            ib.ana.id
        ))
        .await,
        1
    );
    assert_eq!(messages_saying(&env, conv, "Waiting for the next available agent.").await, 1);
    assert_eq!(events_of(&env, conv, "conversation.queued").await, 1);
    assert_eq!(chat_count(&env, ib.ana.id).await, 0);
    assert_eq!(env.audit_count("conversation.release").await, 1);
    // The assignment worker is woken (relayed from the outbox).
    assert!(env.count("chatapp_jobs WHERE queue = 'escalation' AND payload ->> 'kind' = 'drain'").await >= 1);

    // Only a conversation with a person can be released; anyone may take it now.
    assert_error!(send(&env, Req::post(&path).token(&ib.ana.token)).await, StatusCode::CONFLICT, "invalid_transition");
    assert_eq!(claim(&env, &ib.ben.token, conv).await.status, StatusCode::OK);
    assert_eq!(stored(&env, conv).await, ("with_human".to_string(), Some(ib.ben.id)));
}

#[tokio::test]
async fn resolve_closes_the_escalation_and_reopen_takes_the_conversation_up_again() {
    let env = TestEnv::new().await;
    let ib = inbox(&env, "acme").await;
    let (conv, _) = waiting(&env, &ib).await;
    assert_eq!(claim(&env, &ib.ana.token, conv).await.status, StatusCode::OK);
    assert_eq!(chat_count(&env, ib.ana.id).await, 1);
    assert_error!(
        send(&env, Req::post(&conv_path(conv, "/resolve")).token(&ib.ben.token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );

    let r = send(&env, Req::post(&conv_path(conv, "/resolve")).token(&ib.ana.token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "resolved");
    assert_eq!(stored(&env, conv).await, ("resolved".to_string(), None));
    let (status, _, _, _, handle) = escalation(&env, conv).await;
    assert_eq!(status, "resolved");
    assert!(handle.is_some(), "handle_time is set when the human part ends");
    assert_eq!(chat_count(&env, ib.ana.id).await, 0);
    assert_eq!(messages_saying(&env, conv, "This conversation has been resolved.").await, 1);
    assert_eq!(events_of(&env, conv, "conversation.resolved").await, 1);
    assert_eq!(env.audit_count("conversation.resolve").await, 1);

    // A resolved conversation is resolved once, and neither claimed nor handed back.
    for action in ["/resolve", "/claim", "/handback", "/release"] {
        let r = send(&env, Req::post(&conv_path(conv, action)).token(&ib.ana.token)).await;
        assert_error!(r, StatusCode::CONFLICT, "invalid_transition");
    }
    assert_eq!(env.audit_count("conversation.resolve").await, 1);

    // Reopened: the caller's, with a new (manual) escalation.
    let r = send(&env, Req::post(&conv_path(conv, "/reopen")).token(&ib.ben.token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "with_human");
    assert_eq!(r.body["assigned_agent_id"], ib.ben.id.to_string());
    assert_eq!(stored(&env, conv).await, ("with_human".to_string(), Some(ib.ben.id)));
    assert_eq!(events_of(&env, conv, "conversation.reopened").await, 1);
    assert_eq!(chat_count(&env, ib.ben.id).await, 1);
    assert_eq!(
        env.count(&format!(
            "chatapp_escalations WHERE conversation_id = '{conv}' AND status = 'assigned' AND trigger_type = 'manual'"
        ))
        .await,
        1
    );
    assert_error!(
        send(&env, Req::post(&conv_path(conv, "/reopen")).token(&ib.ben.token)).await,
        StatusCode::CONFLICT,
        "invalid_transition"
    );
    assert_eq!(env.audit_count("conversation.reopen").await, 1);
}

#[tokio::test]
async fn handing_back_lets_the_ai_answer_again() {
    let env = TestEnv::new().await;
    let ib = inbox(&env, "acme").await;
    let (conv, token) = waiting(&env, &ib).await;
    assert_eq!(claim(&env, &ib.ana.token, conv).await.status, StatusCode::OK);
    let path = conv_path(conv, "/handback");
    for body in [json!({"message": "x".repeat(1001)}), json!({"message": "   "}), json!({"words": "hi"})] {
        let r = send(&env, Req::post(&path).token(&ib.ana.token).json(body)).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    }
    assert_error!(send(&env, Req::post(&path).token(&ib.ben.token)).await, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(stored(&env, conv).await, ("with_human".to_string(), Some(ib.ana.id)));

    let r = send(&env, Req::post(&path).token(&ib.ana.token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "active");
    assert_eq!(stored(&env, conv).await, ("active".to_string(), None));
    assert_eq!(messages_saying(&env, conv, "The assistant is back. Ask me anything.").await, 1);
    let (status, _, _, _, handle) = escalation(&env, conv).await;
    assert_eq!(status, "returned_to_ai");
    assert!(handle.is_some());
    assert_eq!(chat_count(&env, ib.ana.id).await, 0);
    assert_eq!(events_of(&env, conv, "conversation.handed_back").await, 1);
    assert_eq!(env.audit_count("conversation.handback").await, 1);

    // The AI answers the next message.
    let turn = say(&env, conv, &token, "What are your opening hours?").await;
    assert_eq!(turn["handoff"], false, "{turn}");
    assert_eq!(turn["reply"]["role"], "assistant", "{turn}");
    assert_error!(send(&env, Req::post(&path).token(&ib.ana.token)).await, StatusCode::CONFLICT, "invalid_transition");

    // One still waiting for a person goes back too, with the caller's words.
    let (second, _) = waiting(&env, &ib).await;
    let r = send(
        &env,
        Req::post(&conv_path(second, "/handback"))
            .token(&ib.ben.token)
            .json(json!({"message": "Our assistant will help you from here."})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(messages_saying(&env, second, "Our assistant will help you from here.").await, 1);
    assert_eq!(escalation(&env, second).await.0, "returned_to_ai");
}

#[tokio::test]
async fn an_admin_takes_a_conversation_over_from_the_ai() {
    let env = TestEnv::new().await;
    let ib = inbox(&env, "acme").await;
    let (conv, token) = session(&env, ib.agent, json!({})).await;
    let turn = say(&env, conv, &token, "What are your opening hours?").await;
    assert!(turn["reply"].is_object(), "{turn}");
    assert_eq!(stored(&env, conv).await.0, "active");

    let r = claim(&env, &ib.tenant.admin_token, conv).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(stored(&env, conv).await, ("with_human".to_string(), Some(ib.tenant.admin_id)));
    assert_eq!(
        env.count(&format!(
            "chatapp_escalations WHERE conversation_id = '{conv}' AND trigger_type = 'manual' AND status = 'assigned'
               AND wait_time = 0"
        ))
        .await,
        1
    );
    let turn = say(&env, conv, &token, "Thanks, and on Sundays?").await;
    assert!(turn["reply"].is_null(), "{turn}");
}

#[tokio::test]
async fn lists_filter_and_order_the_inbox() {
    let env = TestEnv::new().await;
    let ib = inbox(&env, "acme").await;
    let (first, _) = waiting(&env, &ib).await;
    let (second, _) = waiting(&env, &ib).await;
    let (first_s, second_s) = (first.to_string(), second.to_string());

    // The queue: same priority, longest waiting first; then by priority.
    assert_eq!(ids(&list(&env, &ib.ana.token, "?view=unassigned").await), [first_s.clone(), second_s.clone()]);
    env.owner()
        .await
        .execute("UPDATE chatapp_escalations SET priority = 'urgent' WHERE conversation_id = $1", &[&second])
        .await
        .unwrap();
    let queue = list(&env, &ib.ana.token, "?view=unassigned").await;
    assert_eq!(ids(&queue), [second_s.clone(), first_s.clone()]);
    let top = &queue.body["items"][0];
    assert_eq!(top["priority"], "urgent");
    assert_eq!(top["status"], "waiting_human");
    assert_eq!(top["customer_name"], "Carla Customer");
    assert!(top["waiting_since"].is_string(), "{top}");
    assert!(top["last_message_preview"].as_str().is_some_and(|p| !p.is_empty() && p.chars().count() <= 140));
    assert!(top["last_event_seq"].as_i64().is_some_and(|s| s > 0), "{top}");

    // Support agents: mine by default, never all; admins: all by default.
    assert_eq!(list(&env, &ib.ana.token, "").await.body["total"], 0);
    assert_error!(list(&env, &ib.ana.token, "?view=all").await, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(list(&env, &ib.tenant.admin_token, "").await.body["total"], 2);

    assert_eq!(claim(&env, &ib.ana.token, first).await.status, StatusCode::OK);
    assert_eq!(ids(&list(&env, &ib.ana.token, "").await), std::slice::from_ref(&first_s));
    assert_eq!(ids(&list(&env, &ib.ana.token, "?view=mine").await), std::slice::from_ref(&first_s));
    assert_eq!(ids(&list(&env, &ib.ana.token, "?view=unassigned").await), std::slice::from_ref(&second_s));
    assert_eq!(ids(&list(&env, &ib.ben.token, "?view=unassigned").await), std::slice::from_ref(&second_s));

    let admin = &ib.tenant.admin_token;
    let agent = ib.ana.id;
    for (query, want) in [
        ("?status=with_human".to_string(), vec![first_s.clone()]),
        ("?view=all&status=waiting_human".to_string(), vec![second_s.clone()]),
        (format!("?agent_id={agent}"), vec![first_s.clone()]),
        ("?priority=urgent".to_string(), vec![second_s.clone()]),
        ("?channel=whatsapp".to_string(), vec![]),
        ("?q=nothing-like-this".to_string(), vec![]),
        ("?q=100%25".to_string(), vec![]),
        ("?view=unassigned&status=active".to_string(), vec![]),
    ] {
        assert_eq!(ids(&list(&env, admin, &query).await), want, "{query}");
    }
    for query in ["?channel=web", "?q=carla", "?q=CARLA%40EXAMPLE", "?q=talk%20to%20a%20human"] {
        assert_eq!(list(&env, admin, query).await.body["total"], 2, "{query}");
    }
    // Paging.
    let page = list(&env, admin, "?limit=1&offset=1").await;
    assert_eq!(ids(&page).len(), 1);
    assert_eq!(page.body["total"], 2);

    // Bad filters: 400, naming the parameter.
    let long = format!("?q={}", "a".repeat(201));
    for query in [
        "?status=open",
        "?view=everything",
        "?channel=fax",
        "?priority=extreme",
        "?agent_id=nope",
        "?snoozed=maybe",
        "?label=has%20space",
        "?limit=0",
        long.as_str(),
    ] {
        assert_error!(list(&env, admin, query).await, StatusCode::BAD_REQUEST, "validation_failed");
    }
}

#[tokio::test]
async fn labels_are_cleaned_replaced_and_filterable() {
    let env = TestEnv::new().await;
    let ib = inbox(&env, "acme").await;
    let (conv, _) = waiting(&env, &ib).await;
    let path = conv_path(conv, "/labels");

    let r = send(
        &env,
        Req::put(&path).token(&ib.ana.token).json(json!({"labels": ["VIP", " billing ", "vip", "refund_2"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["labels"], json!(["vip", "billing", "refund_2"]));
    assert_eq!(env.audit_count("conversation.labels").await, 1);
    let admin = &ib.tenant.admin_token;
    assert_eq!(ids(&list(&env, admin, "?label=vip").await), [conv.to_string()]);
    assert_eq!(ids(&list(&env, admin, "?label=VIP").await), [conv.to_string()]);
    assert_eq!(list(&env, admin, "?label=other").await.body["total"], 0);

    let too_many: Vec<String> = (0..21).map(|i| format!("l{i}")).collect();
    for body in [
        json!({"labels": ["has space"]}),
        json!({"labels": [""]}),
        json!({"labels": ["x".repeat(51)]}),
        json!({"labels": too_many}),
        json!({"labels": "vip"}),
        json!({"labels": ["ok"], "extra": true}),
        json!({}),
    ] {
        let r = send(&env, Req::put(&path).token(&ib.ana.token).json(body)).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    }
    assert_eq!(
        env.count(&format!(
            "chatapp_conversations WHERE id = '{conv}' AND labels = ARRAY['vip', 'billing', 'refund_2']"
        ))
        .await,
        1,
        "a refused change stored something"
    );
    assert_eq!(env.audit_count("conversation.labels").await, 1);

    let r = send(&env, Req::put(&path).token(&ib.ana.token).json(json!({"labels": []}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["labels"], json!([]));
    assert_eq!(list(&env, admin, "?label=vip").await.body["total"], 0);
}

#[tokio::test]
async fn a_snoozed_conversation_leaves_mine_until_it_wakes() {
    let env = TestEnv::new().await;
    let ib = inbox(&env, "acme").await;
    let (conv, _) = waiting(&env, &ib).await;
    let path = conv_path(conv, "/snooze");
    let in_an_hour = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();

    // Only a conversation with a person is snoozed.
    assert_error!(
        send(&env, Req::post(&path).token(&ib.ana.token).json(json!({"until": in_an_hour}))).await,
        StatusCode::CONFLICT,
        "invalid_transition"
    );
    assert_eq!(claim(&env, &ib.ana.token, conv).await.status, StatusCode::OK);
    let past = (chrono::Utc::now() - chrono::TimeDelta::minutes(1)).to_rfc3339();
    let too_far = (chrono::Utc::now() + chrono::TimeDelta::days(31)).to_rfc3339();
    for body in [
        json!({"until": past}),
        json!({"until": too_far}),
        json!({"until": "tomorrow"}),
        json!({"until": in_an_hour, "why": "lunch"}),
    ] {
        let r = send(&env, Req::post(&path).token(&ib.ana.token).json(body)).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    }
    assert_error!(
        send(&env, Req::post(&path).token(&ib.ben.token).json(json!({"until": in_an_hour}))).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_eq!(env.count(&format!("chatapp_conversations WHERE id = '{conv}' AND snoozed_until IS NULL")).await, 1);

    let r = send(&env, Req::post(&path).token(&ib.ana.token).json(json!({"until": in_an_hour}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["snoozed_until"].is_string(), "{}", r.body);
    assert_eq!(list(&env, &ib.ana.token, "").await.body["total"], 0, "snoozed: not in mine");
    assert_eq!(ids(&list(&env, &ib.ana.token, "?snoozed=true").await), [conv.to_string()]);
    assert_eq!(ids(&list(&env, &ib.tenant.admin_token, "").await), [conv.to_string()]);
    assert_eq!(list(&env, &ib.tenant.admin_token, "?snoozed=false").await.body["total"], 0);
    assert_eq!(
        env.count(&format!(
            "chatapp_conversation_events WHERE conversation_id = '{conv}' AND type = 'conversation.snoozed'
               AND internal"
        ))
        .await,
        1
    );

    // Woken by hand.
    let r = send(&env, Req::post(&path).token(&ib.ana.token).json(json!({"until": null}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["snoozed_until"].is_null(), "{}", r.body);
    assert_eq!(ids(&list(&env, &ib.ana.token, "").await), [conv.to_string()]);
    assert_eq!(env.audit_count("conversation.snooze").await, 2);
}

#[tokio::test]
async fn typing_signals_and_the_event_stream() {
    let env = TestEnv::new().await;
    let ib = inbox(&env, "acme").await;
    let (conv, _) = waiting(&env, &ib).await;
    let typing = conv_path(conv, "/typing");
    assert_error!(send(&env, Req::post(&typing).token(&ib.ana.token)).await, StatusCode::CONFLICT, "not_owner");
    assert_eq!(claim(&env, &ib.ana.token, conv).await.status, StatusCode::OK);

    let r = send(&env, Req::post(&typing).token(&ib.ana.token)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(events_of(&env, conv, "typing").await, 1);
    assert_eq!(env.count("chatapp_audit_logs WHERE action LIKE '%typing%'").await, 0);
    assert_eq!(
        env.count("chatapp_outbox WHERE payload ->> 'type' = 'typing'").await
            + env.count("chatapp_jobs WHERE payload ->> 'type' = 'typing'").await,
        0,
        "typing signals are not sent to webhooks"
    );

    let r = send(&env, Req::get(&conv_path(conv, "/events?after=0")).token(&ib.ana.token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let events: Vec<&Value> = r.body["events"].as_array().unwrap().iter().collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"conversation.assigned") && kinds.contains(&"typing"), "{kinds:?}");
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "numbered without gaps");
    let last = r.body["last_seq"].as_i64().unwrap();
    assert_eq!(env.count(&format!("chatapp_conversations WHERE id = '{conv}' AND last_event_seq = {last}")).await, 1);
    let r = send(&env, Req::get(&conv_path(conv, &format!("/events?after={last}&wait=0"))).token(&ib.ana.token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["events"], json!([]));

    for query in ["?after=-1", "?wait=26", "?wait=abc", "?after=x"] {
        let r = send(&env, Req::get(&conv_path(conv, &format!("/events{query}"))).token(&ib.ana.token)).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    }
    assert_error!(
        send(&env, Req::get(&conv_path(conv, "/events")).token(&ib.ben.token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
}
