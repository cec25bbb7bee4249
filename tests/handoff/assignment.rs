//! Fair assignment: capacity, spread, priority order, rules' assignment logic, concurrent
//! workers, drains when capacity frees or an agent comes online, and the reassignment timer.

use std::collections::HashMap;
use std::time::Duration;

use chatapp::handoff::assign;
use chatapp_functions::http_function::HttpFunction;
use chatapp_functions::{escalation_worker, outbox_relay};
use chatapp_tests::{Req, TestEnv};
use http::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::{assignments, company_with_agent, online_agent, say, session, set_online, waiting};

/// N agents with capacities, M conversations: nobody over capacity, loads within one of each
/// other among agents with room, conversations taken in priority order then longest waiting,
/// and what cannot be placed still waits.
#[tokio::test]
async fn assignment_respects_capacity_spreads_evenly_and_follows_priority_then_wait() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let capacities = [1, 2, 3, 5];
    let mut agents = Vec::new();
    for (i, cap) in capacities.iter().enumerate() {
        agents.push((online_agent(&env, &t, &format!("agent{i}"), *cap).await.0, *cap));
    }
    // 12 conversations for 11 places: priorities and ages chosen so the order is known.
    let mut expected = Vec::new();
    for (priority, count) in [("low", 3), ("urgent", 2), ("medium", 4), ("high", 3)] {
        for age in 0..count {
            let conv = waiting(&env, &t, agent, priority, 100 - age * 10).await;
            expected.push((priority, 100 - age * 10, conv));
        }
    }
    let rank = |p: &str| match p {
        "urgent" => 0,
        "high" => 1,
        "medium" => 2,
        _ => 3,
    };
    expected.sort_by_key(|(p, age, _)| (rank(p), -age));
    let assigned = assign::drain(&env.deps, t.company_id).await.unwrap();
    assert_eq!(assigned.len(), 11);
    let order: Vec<Uuid> = assigned.iter().map(|a| a.conversation_id).collect();
    let want: Vec<Uuid> = expected.iter().take(11).map(|(_, _, c)| *c).collect();
    assert_eq!(order, want, "priority first, then longest waiting");
    let left = expected[11].2;
    assert_eq!(env.count(&format!("chatapp_conversations WHERE id = '{left}' AND status = 'waiting_human'")).await, 1);

    let mut load: HashMap<Uuid, i32> = HashMap::new();
    for (_, user) in assignments(&env, &t).await {
        *load.entry(user).or_default() += 1;
    }
    for (user, cap) in &agents {
        let n = load.get(user).copied().unwrap_or(0);
        assert!(n <= *cap, "{user} holds {n} > {cap}");
        // The status row's counter (kept by the trigger) matches the rows.
        let counted: i32 = env
            .owner()
            .await
            .query_one("SELECT current_chat_count FROM chatapp_support_agent_status WHERE user_id = $1", &[user])
            .await
            .unwrap()
            .get(0);
        assert_eq!(counted, n);
        for (other, _) in &agents {
            let m = load.get(other).copied().unwrap_or(0);
            if n < *cap {
                assert!(m <= n + 1, "uneven: {user} has {n} with room, {other} has {m}");
            }
        }
    }
    // Each assignment wrote its system message and event, and the escalation's wait time.
    assert_eq!(env.count("chatapp_messages WHERE role = 'system' AND metadata->>'kind' = 'agent_joined'").await, 11);
    assert_eq!(env.count("chatapp_conversation_events WHERE type = 'conversation.assigned'").await, 11);
    assert_eq!(env.count("chatapp_escalations WHERE status = 'assigned' AND wait_time >= 60").await, 11);
    // Nothing more to do: a second drain assigns nothing.
    assert!(assign::drain(&env.deps, t.company_id).await.unwrap().is_empty());
}

/// Four workers draining one company at once never assign a conversation twice nor fill an
/// agent past capacity.
#[tokio::test]
async fn concurrent_workers_never_double_assign() {
    let env = TestEnv::with(&[("DB_POOL_SIZE", "12")]).await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    for i in 0..10 {
        online_agent(&env, &t, &format!("agent{i}"), 3).await;
    }
    for i in 0..50 {
        waiting(&env, &t, agent, if i % 3 == 0 { "high" } else { "medium" }, i).await;
    }
    let (a, b, c, d) = tokio::join!(
        assign::drain(&env.deps, t.company_id),
        assign::drain(&env.deps, t.company_id),
        assign::drain(&env.deps, t.company_id),
        assign::drain(&env.deps, t.company_id),
    );
    let mut all: Vec<Uuid> = [a, b, c, d].into_iter().flat_map(|r| r.unwrap()).map(|x| x.conversation_id).collect();
    // A worker may stop early when every candidate row is locked by another; a last drain
    // (what the next job or sweep does) finishes the work.
    all.extend(assign::drain(&env.deps, t.company_id).await.unwrap().into_iter().map(|x| x.conversation_id));
    assert_eq!(all.len(), 30, "10 agents × 3");
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 30, "a conversation was assigned twice");
    assert_eq!(env.count("chatapp_conversation_events WHERE type = 'conversation.assigned'").await, 30);
    assert_eq!(env.count("chatapp_escalations WHERE status = 'assigned'").await, 30);
    assert_eq!(env.count("chatapp_support_agent_status WHERE current_chat_count > max_concurrent_chats").await, 0);
    assert_eq!(env.count("chatapp_support_agent_status WHERE current_chat_count <> 3").await, 0);
}

/// Nothing is assigned while nobody is online; an agent coming online (the job the presence
/// route writes) and capacity freed by a resolve (the job the transition writes) each drain
/// the queue again, through the outbox, the queue and the worker.
#[tokio::test]
async fn the_queue_drains_when_an_agent_comes_online_and_when_capacity_frees() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let first = waiting(&env, &t, agent, "medium", 60).await;
    let second = waiting(&env, &t, agent, "medium", 30).await;
    let (dana, _) = env.member(&t, "dana@acme.test", "support_agent", json!({})).await;
    assert!(assign::drain(&env.deps, t.company_id).await.unwrap().is_empty(), "nobody is online");

    // Online with room for one: the job on the escalation queue drains.
    set_online(&env, &t, dana, 1).await;
    let worker = env.deps.scoped(escalation_worker::AWS);
    env.deps.queue.send("escalation", &json!({"company_id": t.company_id, "kind": "drain"})).await.unwrap();
    assert_eq!(escalation_worker::drain_queue(&worker).await.unwrap(), 1);
    assert_eq!(assignments(&env, &t).await, vec![(first, dana)]);

    // Resolving frees the place: the transition writes a drain job to the outbox.
    env.owner()
        .await
        .execute("SELECT chatapp_handoff_close($1, 'resolved', $2, 'Resolved.')", &[&first, &dana])
        .await
        .unwrap();
    assert_eq!(chatapp::outbox::pending(&env.deps.db, "escalation").await.unwrap(), 1);
    let relay = env.deps.scoped(outbox_relay::AWS);
    // The drain job (the company has no outbound webhook, so no event goes out).
    assert_eq!(outbox_relay::sweep(&relay, Duration::ZERO).await.unwrap().sent, 1);
    assert_eq!(escalation_worker::drain_queue(&worker).await.unwrap(), 1);
    assert_eq!(assignments(&env, &t).await, vec![(second, dana)]);
    let (handle, status): (Option<i32>, String) = {
        let r = env
            .owner()
            .await
            .query_one(
                "SELECT handle_time, status::text FROM chatapp_escalations WHERE conversation_id = $1",
                &[&first],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(status, "resolved");
    assert!(handle.is_some());
}

/// An assignee who does not answer within the company's reassignment time loses the
/// conversation to the queue, and it goes to someone else; one who answered keeps it.
#[tokio::test]
async fn unanswered_assignments_go_back_to_the_queue_and_to_another_agent() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let (ann, _) = online_agent(&env, &t, "ann", 1).await;
    let slow = waiting(&env, &t, agent, "high", 100).await;
    let answered = waiting(&env, &t, agent, "medium", 50).await;
    let assigned = assign::drain(&env.deps, t.company_id).await.unwrap();
    assert_eq!(assigned.len(), 1);
    assert_eq!(assigned[0].user_id, ann);
    let (bob, _) = online_agent(&env, &t, "bob", 1).await;
    assert_eq!(assign::drain(&env.deps, t.company_id).await.unwrap()[0].conversation_id, answered);
    let owner = env.owner().await;
    // Bob answered his; both assignments are now older than the company's 300 s.
    owner.execute("SELECT chatapp_handoff_responded($1)", &[&answered]).await.unwrap();
    owner
        .execute(
            "UPDATE chatapp_conversations SET assigned_at = now() - interval '301 seconds' WHERE company_id = $1",
            &[&t.company_id],
        )
        .await
        .unwrap();
    // Bob frees his place so someone can take Ann's: he resolves.
    owner.execute("SELECT chatapp_handoff_close($1, 'resolved', $2, 'Resolved.')", &[&answered, &bob]).await.unwrap();
    let swept = assign::sweep_company(&env.deps, t.company_id).await.unwrap();
    assert_eq!(swept.requeued, vec![slow]);
    assert_eq!(swept.assigned.len(), 1);
    assert_eq!(swept.assigned[0].conversation_id, slow);
    assert_eq!(swept.assigned[0].user_id, bob, "the agent who let it lapse is not picked again");
    let r = owner
        .query_one(
            "SELECT reassign_count, previous_assignee FROM chatapp_escalations WHERE conversation_id = $1",
            &[&slow],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, i32>(0), 1);
    assert_eq!(r.get::<_, Option<Uuid>>(1), Some(ann));
    assert_eq!(
        env.count(&format!("chatapp_messages WHERE conversation_id = '{slow}' AND metadata->>'kind' = 'queued'")).await,
        1
    );
    // A second sweep changes nothing: the new assignment is fresh.
    let again = assign::sweep_company(&env.deps, t.company_id).await.unwrap();
    assert!(again.requeued.is_empty() && again.assigned.is_empty());
}

/// Missed heartbeats set an agent away (no new conversations); ended snoozes wake.
#[tokio::test]
async fn missed_heartbeats_set_agents_away_and_snoozes_end() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let (ann, _) = online_agent(&env, &t, "ann", 2).await;
    let owner = env.owner().await;
    owner
        .execute(
            "UPDATE chatapp_support_agent_status SET last_active_at = now() - interval '2 minutes' WHERE user_id = $1",
            &[&ann],
        )
        .await
        .unwrap();
    let conv = waiting(&env, &t, agent, "medium", 10).await;
    let swept = assign::sweep_company(&env.deps, t.company_id).await.unwrap();
    assert_eq!(swept.set_away, 1);
    assert!(swept.assigned.is_empty(), "an away agent gets nothing");
    assert_eq!(env.count(&format!("chatapp_conversations WHERE id = '{conv}' AND status = 'waiting_human'")).await, 1);
    // The sweep finds companies on its own.
    set_online(&env, &t, ann, 2).await;
    owner
        .execute("UPDATE chatapp_conversations SET snoozed_until = now() - interval '1 second' WHERE id = $1", &[&conv])
        .await
        .unwrap();
    let all = assign::sweep_all(&env.deps).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1.woken, 1);
    assert_eq!(all[0].1.assigned.len(), 1);
}

/// The user each of `conversations` is with.
async fn owners(env: &TestEnv, conversations: &[Uuid]) -> Vec<Option<Uuid>> {
    let owner = env.owner().await;
    let mut out = Vec::new();
    for c in conversations {
        let row = owner.query_one("SELECT assigned_agent_id FROM chatapp_conversations WHERE id = $1", &[c]).await;
        out.push(row.unwrap().get(0));
    }
    out
}

async fn offline(env: &TestEnv, user: Uuid) {
    env.owner()
        .await
        .execute("UPDATE chatapp_support_agent_status SET status = 'offline' WHERE user_id = $1", &[&user])
        .await
        .unwrap();
}

/// Sets when `user` was last given a conversation, `secs` ago.
async fn last_assigned(env: &TestEnv, user: Uuid, secs: f64) {
    env.owner()
        .await
        .execute(
            "UPDATE chatapp_support_agent_status SET last_assigned_at = now() - make_interval(secs => $2)
             WHERE user_id = $1",
            &[&user, &secs],
        )
        .await
        .unwrap();
}

/// With room to spare, loads stay even, and equal loads go to the least recently assigned
/// (never assigned first).
#[tokio::test]
async fn with_room_to_spare_loads_stay_even_and_ties_go_to_the_least_recently_assigned() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let (a, _) = online_agent(&env, &t, "a", 5).await;
    let (b, _) = online_agent(&env, &t, "b", 5).await;
    let (c, _) = online_agent(&env, &t, "c", 5).await;
    last_assigned(&env, a, 600.0).await;
    last_assigned(&env, b, 60.0).await;
    // c: never assigned.
    let mut conversations = Vec::new();
    for age in 0..6 {
        conversations.push(waiting(&env, &t, agent, "medium", 100 - age).await);
    }
    let assigned = assign::drain(&env.deps, t.company_id).await.unwrap();
    let order: Vec<Uuid> = assigned.iter().map(|x| x.user_id).collect();
    assert_eq!(order, [c, a, b, c, a, b], "least recently assigned first, then round again");
    let mut load: HashMap<Uuid, usize> = HashMap::new();
    for (_, user) in assignments(&env, &t).await {
        *load.entry(user).or_default() += 1;
    }
    assert_eq!((load[&a], load[&b], load[&c]), (2, 2, 2));
}

/// An escalation rule's `assignment_logic`, through the widget turn: `specific_agent` goes to
/// that person though someone else is less busy, waits for their room without holding up the
/// queue behind it, and goes to anyone while they are offline; `round_robin` goes to the least
/// recently assigned though they are busier.
#[tokio::test]
async fn an_escalation_rules_assignment_logic_is_followed() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let (dana, _) = online_agent(&env, &t, "dana", 2).await;
    let (eli, _) = online_agent(&env, &t, "eli", 3).await;
    for (name, keyword, logic) in [
        ("Legal", "lawyer", json!({"strategy": "specific_agent", "agent_id": dana})),
        ("Refunds", "chargeback", json!({"strategy": "round_robin"})),
    ] {
        let r = env
            .send(
                HttpFunction::EscalationRules,
                Req::post("/admin/escalation-rules")
                    .token(&t.admin_token)
                    .json(json!({"name": name, "trigger_keywords": [keyword], "assignment_logic": logic})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let env_ref = &env;
    let escalate = move |text: &'static str| async move {
        let (conversation, token) = session(env_ref, agent).await;
        say(env_ref, conversation, &token, text).await;
        conversation
    };
    // Dana already holds one conversation, so least-busy would pick Eli.
    let earlier = waiting(&env, &t, agent, "medium", 60).await;
    offline(&env, eli).await;
    assign::drain(&env.deps, t.company_id).await.unwrap();
    set_online(&env, &t, eli, 3).await;
    assert_eq!(owners(&env, &[earlier]).await, [Some(dana)]);

    let legal = escalate("I will talk to my lawyer about this.").await;
    let stored = env
        .owner()
        .await
        .query_one(
            "SELECT assignment_strategy, preferred_assignee FROM chatapp_escalations WHERE conversation_id = $1",
            &[&legal],
        )
        .await
        .unwrap();
    let stored: (Option<String>, Option<Uuid>) = (stored.get(0), stored.get(1));
    assert_eq!(stored, (Some("specific_agent".into()), Some(dana)));
    assign::drain(&env.deps, t.company_id).await.unwrap();
    assert_eq!(owners(&env, &[legal]).await, [Some(dana)], "the rule's agent, though Eli has none");

    // Dana is full: the next legal conversation waits for her; one behind it goes to Eli.
    let legal2 = escalate("My lawyer will call you.").await;
    let plain = waiting(&env, &t, agent, "medium", 0).await;
    assign::drain(&env.deps, t.company_id).await.unwrap();
    assert_eq!(owners(&env, &[legal2, plain]).await, [None, Some(eli)]);
    set_online(&env, &t, dana, 3).await;
    assign::drain(&env.deps, t.company_id).await.unwrap();
    assert_eq!(owners(&env, &[legal2]).await, [Some(dana)]);

    // Dana offline: a legal conversation goes to whoever is there.
    offline(&env, dana).await;
    let legal3 = escalate("I have a lawyer now.").await;
    assign::drain(&env.deps, t.company_id).await.unwrap();
    assert_eq!(owners(&env, &[legal3]).await, [Some(eli)]);

    // Round robin: Dana (back, busier, assigned long ago) before Eli (assigned just now).
    set_online(&env, &t, dana, 5).await;
    last_assigned(&env, dana, 3600.0).await;
    let refund = escalate("I am filing a chargeback.").await;
    assign::drain(&env.deps, t.company_id).await.unwrap();
    assert_eq!(owners(&env, &[refund]).await, [Some(dana)], "least recently assigned, though busier");
}
