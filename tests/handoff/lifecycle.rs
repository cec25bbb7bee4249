//! The ends of a handoff's life: the customer ending it (assigned or still queued), a support
//! agent deactivated or deleted while holding conversations, a company deleted with a
//! conversation in a person's hands, typing signals, who may set an owner, cross-company event
//! reads, and stale heartbeats.

use chatapp::handoff::assign;
use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{Req, Resp, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::{assignments, company_with_agent, online_agent, say, session, waiting};

const ASK_FOR_A_HUMAN: &str = "I want to talk to a human please";

async fn end(env: &TestEnv, conv: Uuid, token: &str, body: Value) -> Resp {
    env.send(HttpFunction::Widget, Req::post(&format!("/widget/conversations/{conv}/end")).token(token).json(body))
        .await
}

async fn typing(env: &TestEnv, conv: Uuid, token: &str) -> Resp {
    env.send(HttpFunction::Widget, Req::post(&format!("/widget/conversations/{conv}/typing")).token(token)).await
}

async fn queue(env: &TestEnv, conv: Uuid, token: &str) -> Value {
    let r = env.send(HttpFunction::Widget, Req::get(&format!("/widget/conversations/{conv}/queue")).token(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// Moves the conversation's typing events out of the rate limit's window.
async fn age_typing(env: &TestEnv, conv: Uuid) {
    env.owner()
        .await
        .execute(
            "UPDATE chatapp_conversation_events SET created_at = now() - interval '10 seconds'
             WHERE conversation_id = $1 AND type = 'typing'",
            &[&conv],
        )
        .await
        .unwrap();
}

/// The support agent's `current_chat_count` (kept by the trigger).
async fn chat_count(env: &TestEnv, user: Uuid) -> i32 {
    env.owner()
        .await
        .query_one("SELECT current_chat_count FROM chatapp_support_agent_status WHERE user_id = $1", &[&user])
        .await
        .unwrap()
        .get(0)
}

/// `SELECT chatapp_handoff_set_owner(conv, to)` in one transaction with the tenant settings the
/// application sets (company, user, role), on a fresh owner connection; the error if it fails.
async fn set_owner_as(
    env: &TestEnv,
    company: Uuid,
    user: Uuid,
    role: &str,
    conv: Uuid,
    to: Uuid,
) -> Result<(), tokio_postgres::Error> {
    env.owner()
        .await
        .batch_execute(&format!(
            "BEGIN; SELECT set_config('app.current_company_id', '{company}', true), \
             set_config('app.current_user_id', '{user}', true), set_config('app.user_role', '{role}', true); \
             SELECT chatapp_handoff_set_owner('{conv}', '{to}'); COMMIT"
        ))
        .await
}

fn refused(r: Result<(), tokio_postgres::Error>, what: &str) {
    let e = r.expect_err(what);
    assert_eq!(e.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{what}: {e:?}");
}

/// Ending an assigned conversation goes through the ownership transition (escalation closed
/// with its handle time, the agent's place freed, message and event written, CSAT kept);
/// ending one still in the queue takes it out of the queue, and those behind move up.
#[tokio::test]
async fn the_customer_ending_a_handed_over_chat_closes_it_properly() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let (conv, token) = session(&env, agent).await;
    say(&env, conv, &token, ASK_FOR_A_HUMAN).await;
    assert_eq!(env.count(&format!("chatapp_conversations WHERE id = '{conv}' AND status = 'waiting_human'")).await, 1);
    let (ann, _) = online_agent(&env, &t, "ann", 2).await;
    let assigned = assign::drain(&env.deps, t.company_id).await.unwrap();
    assert_eq!(assigned.len(), 1);
    assert_eq!((assigned[0].conversation_id, assigned[0].user_id), (conv, ann));
    assert_eq!(chat_count(&env, ann).await, 1);

    let r = end(&env, conv, &token, json!({"rating": 4})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "resolved", "{}", r.body);
    assert_eq!(
        env.count(&format!(
            "chatapp_escalations WHERE conversation_id = '{conv}' AND status = 'resolved' AND handle_time IS NOT NULL"
        ))
        .await,
        1
    );
    assert_eq!(
        env.count(&format!("chatapp_escalations WHERE conversation_id = '{conv}' AND status <> 'resolved'")).await,
        0
    );
    assert_eq!(
        env.count(&format!(
            "chatapp_conversations WHERE id = '{conv}' AND status = 'resolved' AND assigned_agent_id IS NULL"
        ))
        .await,
        1
    );
    assert_eq!(chat_count(&env, ann).await, 0, "the agent's place is free again");
    assert_eq!(
        env.count(&format!(
            "chatapp_messages WHERE conversation_id = '{conv}' AND role = 'system' AND metadata->>'kind' = 'resolved'"
        ))
        .await,
        1
    );
    assert_eq!(
        env.count(&format!(
            "chatapp_conversation_events WHERE conversation_id = '{conv}' AND type = 'conversation.resolved'"
        ))
        .await,
        1
    );
    assert_eq!(
        env.count(&format!("chatapp_conversations WHERE id = '{conv}' AND (context->>'csat_rating')::int = 4")).await,
        1
    );

    // Two customers queued (nobody drains): the first leaves, the second moves up.
    let (first, first_token) = session(&env, agent).await;
    say(&env, first, &first_token, ASK_FOR_A_HUMAN).await;
    let (second, second_token) = session(&env, agent).await;
    say(&env, second, &second_token, ASK_FOR_A_HUMAN).await;
    let q = queue(&env, second, &second_token).await;
    assert_eq!(q["position"], 2, "{q}");
    assert_eq!(
        env.count(&format!("chatapp_escalations WHERE conversation_id = '{first}' AND status = 'pending'")).await,
        1
    );
    let r = end(&env, first, &first_token, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        env.count(&format!("chatapp_escalations WHERE conversation_id = '{first}' AND status = 'pending'")).await,
        0
    );
    assert_eq!(
        env.count(&format!("chatapp_escalations WHERE conversation_id = '{first}' AND resolved_at IS NOT NULL")).await,
        1,
        "the escalation is closed, not deleted"
    );
    assert_eq!(env.count(&format!("chatapp_conversations WHERE id = '{first}' AND status = 'resolved'")).await, 1);
    let q = queue(&env, second, &second_token).await;
    assert_eq!(q["status"], "waiting_human", "{q}");
    assert_eq!(q["position"], 1, "{q}");
}

/// Deactivating a support agent sends their conversations back to the queue (remembering who
/// had them), sets them offline with nothing counted, and the next drain gives the
/// conversations to someone else.
#[tokio::test]
async fn a_deactivated_support_agent_leaves_their_conversations_to_the_queue() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let (ann, _) = online_agent(&env, &t, "ann", 2).await;
    let conv = waiting(&env, &t, agent, "medium", 30).await;
    assert_eq!(assign::drain(&env.deps, t.company_id).await.unwrap().len(), 1);
    assert_eq!(assignments(&env, &t).await, vec![(conv, ann)]);
    assert_eq!(chat_count(&env, ann).await, 1);

    let r = env
        .send(HttpFunction::Team, Req::post(&format!("/admin/team/users/{ann}/deactivate")).token(&t.admin_token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(env.audit_count("user.deactivate").await, 1);
    assert_eq!(
        env.count(&format!(
            "chatapp_conversations WHERE id = '{conv}' AND status = 'waiting_human' AND assigned_agent_id IS NULL"
        ))
        .await,
        1
    );
    let owner = env.owner().await;
    let rows = owner
        .query(
            "SELECT status::text, previous_assignee, assigned_to FROM chatapp_escalations WHERE conversation_id = $1",
            &[&conv],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "pending");
    assert_eq!(rows[0].get::<_, Option<Uuid>>(1), Some(ann));
    assert_eq!(rows[0].get::<_, Option<Uuid>>(2), None);
    let status = owner
        .query_one(
            "SELECT status::text, current_chat_count FROM chatapp_support_agent_status WHERE user_id = $1",
            &[&ann],
        )
        .await
        .unwrap();
    assert_eq!((status.get::<_, String>(0), status.get::<_, i32>(1)), ("offline".to_string(), 0));
    assert_eq!(
        env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}' AND metadata->>'kind' = 'queued'")).await,
        1
    );
    assert!(assign::drain(&env.deps, t.company_id).await.unwrap().is_empty(), "nobody online");

    let (bob, _) = online_agent(&env, &t, "bob", 1).await;
    let again = assign::drain(&env.deps, t.company_id).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].conversation_id, again[0].user_id), (conv, bob));
    assert_eq!(chat_count(&env, bob).await, 1);
    assert_eq!(chat_count(&env, ann).await, 0);
}

/// A support agent's user row deleted outright leaves their conversation to the queue (the
/// orphan trigger); deleting the whole company with a conversation in a person's hands works
/// and leaves none of its conversations.
#[tokio::test]
async fn deleting_a_company_with_a_conversation_in_a_human_hands_works() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let (ann, _) = online_agent(&env, &t, "ann", 1).await;
    let (bob, _) = online_agent(&env, &t, "bob", 1).await;
    let first = waiting(&env, &t, agent, "medium", 60).await;
    let second = waiting(&env, &t, agent, "medium", 30).await;
    assert_eq!(assign::drain(&env.deps, t.company_id).await.unwrap().len(), 2);
    let held = assignments(&env, &t).await;
    let mut convs: Vec<Uuid> = held.iter().map(|(c, _)| *c).collect();
    convs.sort();
    let mut want = vec![first, second];
    want.sort();
    assert_eq!(convs, want);
    let bobs = held.iter().find(|(_, u)| *u == bob).map(|(c, _)| *c).expect("bob has one");
    let anns = held.iter().find(|(_, u)| *u == ann).map(|(c, _)| *c).expect("ann has one");

    // Bob's user row is deleted outright: the foreign key clears the assignee, the trigger queues.
    env.owner().await.execute("DELETE FROM chatapp_users WHERE id = $1", &[&bob]).await.unwrap();
    assert_eq!(
        env.count(&format!(
            "chatapp_conversations WHERE id = '{bobs}' AND status = 'waiting_human' AND assigned_agent_id IS NULL"
        ))
        .await,
        1
    );
    assert_eq!(
        env.count(&format!(
            "chatapp_escalations WHERE conversation_id = '{bobs}' AND status = 'pending' AND assigned_to IS NULL"
        ))
        .await,
        1
    );
    assert_eq!(assignments(&env, &t).await, vec![(anns, ann)], "Ann keeps hers");
    assert_eq!(chat_count(&env, ann).await, 1);

    // The company goes with Ann's conversation still in her hands.
    let master = env.master_token().await;
    let r = env
        .send(HttpFunction::Companies, Req::delete(&format!("/admin/companies/{}", t.company_id)).token(&master))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let c = t.company_id;
    assert_eq!(env.count(&format!("chatapp_conversations WHERE company_id = '{c}'")).await, 0);
    assert_eq!(env.count(&format!("chatapp_escalations WHERE company_id = '{c}'")).await, 0);
    assert_eq!(env.count(&format!("chatapp_users WHERE company_id = '{c}'")).await, 0);
    assert_eq!(env.count(&format!("chatapp_support_agent_status WHERE company_id = '{c}'")).await, 0);
    assert_eq!(env.count(&format!("chatapp_companies WHERE id = '{c}'")).await, 0);
}

/// Typing signals within two seconds of the last one are dropped; a closed conversation takes
/// none (the route still answers 204: the ended session's token resolves, the signal is a
/// no-op).
#[tokio::test]
async fn typing_signals_are_rate_limited_and_refused_on_closed_chats() {
    let env = TestEnv::new().await;
    let (_t, agent) = company_with_agent(&env, "acme").await;
    let (conv, token) = session(&env, agent).await;
    let typed = format!(
        "chatapp_conversation_events
         WHERE conversation_id = '{conv}' AND type = 'typing' AND payload->>'by' = 'customer'"
    );
    for _ in 0..3 {
        let r = typing(&env, conv, &token).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    }
    assert_eq!(env.count(&typed).await, 1, "three signals in a row make one event");
    // Once the last one is older than the window, a new signal counts again.
    age_typing(&env, conv).await;
    assert_eq!(typing(&env, conv, &token).await.status, StatusCode::NO_CONTENT);
    assert_eq!(env.count(&typed).await, 2);

    age_typing(&env, conv).await;
    let r = end(&env, conv, &token, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = typing(&env, conv, &token).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(env.count(&typed).await, 2, "no typing on a closed conversation");
    assert_eq!(env.count(&format!("chatapp_conversations WHERE id = '{conv}' AND status = 'resolved'")).await, 1);
}

/// `chatapp_handoff_set_owner` (SECURITY DEFINER) refuses customers, users of another company,
/// another company's callers and inactive users; it gives the conversation to an active
/// support agent of the caller's company.
#[tokio::test]
async fn set_owner_refuses_customers_and_strangers() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let other = env.company("beta", "enterprise").await;
    let (ann, _) = env.member(&t, "ann@acme.test", "support_agent", json!({})).await;
    let (bob, _) = env.member(&t, "bob@acme.test", "support_agent", json!({})).await;
    let (stranger, _) = env.member(&other, "sam@beta.test", "support_agent", json!({})).await;
    let conv = waiting(&env, &t, agent, "medium", 10).await;
    let c = t.company_id;

    refused(set_owner_as(&env, c, t.admin_id, "customer", conv, ann).await, "a customer sets an owner");
    refused(set_owner_as(&env, c, t.admin_id, "company_admin", conv, stranger).await, "another company's user");
    refused(
        set_owner_as(&env, other.company_id, other.admin_id, "company_admin", conv, other.admin_id).await,
        "another company's admin on this company's conversation",
    );
    env.owner().await.execute("UPDATE chatapp_users SET is_active = false WHERE id = $1", &[&ann]).await.unwrap();
    refused(set_owner_as(&env, c, t.admin_id, "company_admin", conv, ann).await, "an inactive user");
    assert_eq!(
        env.count(&format!(
            "chatapp_conversations WHERE id = '{conv}' AND status = 'waiting_human' AND assigned_agent_id IS NULL"
        ))
        .await,
        1,
        "nothing refused changed the conversation"
    );

    set_owner_as(&env, c, t.admin_id, "company_admin", conv, bob).await.expect("an active support agent");
    assert_eq!(assignments(&env, &t).await, vec![(conv, bob)]);
    assert_eq!(chat_count(&env, bob).await, 1);
}

/// The inbox's event route: a company admin sees only their company's conversations; the
/// master admin acting for a company sees only that company's.
#[tokio::test]
async fn an_admin_reads_events_only_of_their_company() {
    let env = TestEnv::new().await;
    let (a, agent_a) = company_with_agent(&env, "acme").await;
    let (b, agent_b) = company_with_agent(&env, "beta").await;
    let mine = waiting(&env, &a, agent_a, "medium", 0).await;
    let theirs = waiting(&env, &b, agent_b, "medium", 0).await;
    let master = env.master_token().await;
    let get = |path: String, token: String| {
        let env = &env;
        async move { env.send(HttpFunction::Inbox, Req::get(&path).token(&token)).await }
    };

    let r = get(format!("/inbox/conversations/{mine}/events"), a.admin_token.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "waiting_human", "{}", r.body);
    let r = get(format!("/inbox/conversations/{theirs}/events"), a.admin_token.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = get(format!("/inbox/conversations/{theirs}/events?company_id={}", a.company_id), master.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = get(format!("/inbox/conversations/{theirs}/events?company_id={}", b.company_id), master).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "waiting_human", "{}", r.body);
}

/// An agent online by status but without a heartbeat for two minutes gets nothing from a
/// drain; one with a fresh heartbeat does.
#[tokio::test]
async fn the_worker_skips_agents_with_a_stale_heartbeat() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let (ann, _) = online_agent(&env, &t, "ann", 2).await;
    env.owner()
        .await
        .execute(
            "UPDATE chatapp_support_agent_status SET last_active_at = now() - interval '2 minutes' WHERE user_id = $1",
            &[&ann],
        )
        .await
        .unwrap();
    let conv = waiting(&env, &t, agent, "medium", 10).await;
    assert!(assign::drain(&env.deps, t.company_id).await.unwrap().is_empty(), "a stale heartbeat gets nothing");
    assert_eq!(
        env.count(&format!(
            "chatapp_conversations WHERE id = '{conv}' AND status = 'waiting_human' AND assigned_agent_id IS NULL"
        ))
        .await,
        1
    );
    assert_eq!(
        env.count(&format!("chatapp_escalations WHERE conversation_id = '{conv}' AND status = 'pending'")).await,
        1
    );
    assert_eq!(chat_count(&env, ann).await, 0);

    let (bob, _) = online_agent(&env, &t, "bob", 2).await;
    let assigned = assign::drain(&env.deps, t.company_id).await.unwrap();
    assert_eq!(assigned.len(), 1);
    assert_eq!((assigned[0].conversation_id, assigned[0].user_id), (conv, bob));
    assert_eq!(assignments(&env, &t).await, vec![(conv, bob)]);
    assert_eq!(chat_count(&env, ann).await, 0);
}

/// A company admin sets the reassignment time (checked, audited); a support agent reads it but
/// may not change it; the sweep uses it.
#[tokio::test]
async fn the_reassignment_time_is_the_company_admins_to_set() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let (ann, ann_token) = online_agent(&env, &t, "ann", 1).await;
    let get = env.send(HttpFunction::Inbox, Req::get("/inbox/settings").token(&ann_token)).await;
    assert_eq!(get.status, StatusCode::OK, "{}", get.body);
    assert_eq!(get.body["reassign_after_seconds"], 300);
    let r = env
        .send(
            HttpFunction::Inbox,
            Req::patch("/inbox/settings").token(&ann_token).json(json!({"reassign_after_seconds": 60})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    for bad in [json!({"reassign_after_seconds": 10}), json!({"reassign_after_seconds": "x"}), json!({"other": 1})] {
        let r =
            env.send(HttpFunction::Inbox, Req::patch("/inbox/settings").token(&t.admin_token).json(bad.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    assert_eq!(env.audit_count("company.handoff_settings").await, 0, "nothing stored for bad input");
    let r = env
        .send(
            HttpFunction::Inbox,
            Req::patch("/inbox/settings").token(&t.admin_token).json(json!({"reassign_after_seconds": 60})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["reassign_after_seconds"], 60);
    assert_eq!(env.audit_count("company.handoff_settings").await, 1);
    // An assignment 90 s old is now past the company's time.
    let conv = waiting(&env, &t, agent, "medium", 5).await;
    assert_eq!(chatapp::handoff::assign::drain(&env.deps, t.company_id).await.unwrap()[0].user_id, ann);
    env.owner()
        .await
        .execute("UPDATE chatapp_conversations SET assigned_at = now() - interval '90 seconds' WHERE id = $1", &[&conv])
        .await
        .unwrap();
    let swept = chatapp::handoff::assign::sweep_company(&env.deps, t.company_id).await.unwrap();
    assert_eq!(swept.requeued, vec![conv]);
}
