//! The human side of a handoff under load, on local PostgreSQL:
//!
//! 1. Assignment throughput: 10,000 waiting conversations and 200 online support agents (room
//!    for all of them), drained by two concurrent workers (the machine has two cores):
//!    assignments per second, and each assignment transaction's time (p50 / p99).
//! 2. Assignment latency: with that backlog assigned, 1,000 new handoffs written the way a chat
//!    turn writes them (escalation, outbox job, relay after commit), at a steady rate, while the
//!    escalation worker runs as it does locally (polling its queue): time from the
//!    escalation's commit to its assignment's commit (p50 / p99).
//! 3. Event delivery: 50 widgets long-polling their conversation's events through the `widget`
//!    handler while a support agent replies through the `inbox` handler: time from the reply's
//!    transaction (its `created_at`, just before the commit) to the widget receiving it (p50 / p99).
//!
//! cargo bench -p chatapp-tests --bench handoff [-- --waiting N --agents N --handoffs N --replies N]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chatapp::adapters::queue::ESCALATION;
use chatapp::auth::worker_ctx;
use chatapp::handoff::assign;
use chatapp_functions::escalation_worker;
use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{bench_arg, Req, TestEnv};
use http::StatusCode;
use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;

fn arg(name: &str, default: usize) -> usize {
    bench_arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name}: n={} p50={:.2} ms p90={:.2} ms p99={:.2} ms max={:.2} ms",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.9),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN)
    );
}

#[tokio::main]
async fn main() {
    let waiting = arg("--waiting", 10_000);
    let agents = arg("--agents", 200);
    let handoffs = arg("--handoffs", 1_000);
    let replies = arg("--replies", 1_000);
    let env = TestEnv::with(&[("DB_POOL_SIZE", "16")]).await;
    let t = env.company("bench", "enterprise").await;
    let owner = env.owner().await;
    let agent: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status) VALUES ($1, 'Ada', 'active') RETURNING id",
            &[&t.company_id],
        )
        .await
        .unwrap()
        .get(0);
    owner
        .execute(
            "INSERT INTO chatapp_widget_configs (company_id, agent_id, title) VALUES ($1, $2, 'Help')",
            &[&t.company_id, &agent],
        )
        .await
        .unwrap();
    // Support agents, online, with room for the whole backlog.
    let per_agent = i32::try_from(waiting.div_ceil(agents)).unwrap();
    owner
        .execute(
            "WITH u AS (
                INSERT INTO chatapp_users (company_id, email, name, role)
                SELECT $1, 'agent' || g || '@bench.test', 'Agent ' || g, 'support_agent'
                FROM generate_series(1, $2::int) g RETURNING id)
             INSERT INTO chatapp_support_agent_status (user_id, company_id, status, max_concurrent_chats, last_active_at)
             SELECT id, $1, 'online', $3, now() + interval '1 hour' FROM u",
            &[&t.company_id, &(agents as i32), &per_agent],
        )
        .await
        .unwrap();
    // The backlog: waiting conversations with their escalations, mixed priorities and ages.
    owner
        .execute(
            "WITH c AS (
                INSERT INTO chatapp_conversations (company_id, agent_id, session_token, channel, status)
                SELECT $1, $2, 'bench-' || g, 'web', 'waiting_human' FROM generate_series(1, $3::int) g
                RETURNING id)
             INSERT INTO chatapp_escalations (conversation_id, company_id, agent_id, reason, trigger_type, priority, created_at)
             SELECT id, $1, $2, 'bench', 'explicit_request',
                    (ARRAY['low','medium','high','urgent'])[1 + (random() * 3)::int]::escalation_priority,
                    now() - random() * interval '1 hour'
             FROM c",
            &[&t.company_id, &agent, &(waiting as i32)],
        )
        .await
        .unwrap();
    owner.batch_execute("ANALYZE").await.unwrap();

    // 1. Throughput: two workers drain the backlog.
    println!("assignment throughput: {waiting} waiting conversations, {agents} online agents, 2 workers");
    let started = Instant::now();
    let (a, b) = tokio::join!(assign::drain(&env.deps, t.company_id), assign::drain(&env.deps, t.company_id));
    let mut done = a.unwrap().len() + b.unwrap().len();
    done += assign::drain(&env.deps, t.company_id).await.unwrap().len();
    let took = started.elapsed();
    println!("  assigned {done} in {:.2} s: {:.0} assignments/s", took.as_secs_f64(), done as f64 / took.as_secs_f64());
    assert_eq!(done, waiting, "every waiting conversation assigned");
    let per_tx: Vec<f64> = {
        // Each assignment's own transaction time, from a second, smaller backlog drained alone.
        owner
            .execute("UPDATE chatapp_support_agent_status SET max_concurrent_chats = max_concurrent_chats + 2", &[])
            .await
            .unwrap();
        owner
            .execute(
                "WITH c AS (
                    INSERT INTO chatapp_conversations (company_id, agent_id, session_token, channel, status)
                    SELECT $1, $2, 'bench2-' || g, 'web', 'waiting_human' FROM generate_series(1, 200) g RETURNING id)
                 INSERT INTO chatapp_escalations (conversation_id, company_id, agent_id, reason, trigger_type)
                 SELECT id, $1, $2, 'bench', 'explicit_request' FROM c",
                &[&t.company_id, &agent],
            )
            .await
            .unwrap();
        let mut ms = Vec::new();
        loop {
            let s = Instant::now();
            if assign::assign_next(&env.deps, t.company_id).await.unwrap().is_none() {
                break;
            }
            chatapp::outbox::relay_now(&env.deps, assign::RELAY).await;
            ms.push(s.elapsed().as_secs_f64() * 1000.0);
        }
        ms
    };
    summary("  one assignment (its transaction, relay included)", per_tx);

    // 2. Latency: new handoffs at a steady rate while the worker polls its queue.
    owner
        .execute("UPDATE chatapp_support_agent_status SET max_concurrent_chats = max_concurrent_chats + 10", &[])
        .await
        .unwrap();
    let convs: Vec<Uuid> = owner
        .query(
            "INSERT INTO chatapp_conversations (company_id, agent_id, session_token, channel, status)
             SELECT $1, $2, 'bench3-' || g, 'web', 'active' FROM generate_series(1, $3::int) g RETURNING id",
            &[&t.company_id, &agent, &(handoffs as i32)],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let worker_deps = env.deps.scoped(escalation_worker::AWS);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                escalation_worker::drain_queue(&worker_deps).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let producer = {
        let stop = stop.clone();
        let env = &env;
        let company = t.company_id;
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            for conv in &convs {
                tick.tick().await;
                handoff(env, company, agent, *conv).await;
            }
            // Until every one is assigned.
            let deadline = Instant::now() + Duration::from_secs(60);
            while env.count("chatapp_escalations WHERE reason = 'bench handoff' AND status = 'pending'").await > 0
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    println!("assignment latency: {handoffs} handoffs at 100/s with {waiting} conversations assigned, worker polling every 5 ms");
    tokio::join!(worker, producer);
    let lat: Vec<f64> = owner
        .query(
            "SELECT extract(epoch FROM assigned_at - created_at)::float8 * 1000 FROM chatapp_escalations
             WHERE reason = 'bench handoff' AND assigned_at IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(lat.len(), handoffs, "every handoff assigned");
    summary("  escalation commit → assignment commit", lat);

    // 3. Event delivery: replies reaching long-polling widgets.
    let listeners = 50usize;
    let mut sessions = Vec::new();
    for _ in 0..listeners {
        let r = env
            .send(HttpFunction::Widget, Req::post(&format!("/widget/agents/{agent}/sessions")).json(json!({})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let conv: Uuid = r.body["conversation_id"].as_str().unwrap().parse().unwrap();
        let claim = env
            .send(HttpFunction::Inbox, Req::post(&format!("/inbox/conversations/{conv}/claim")).token(&t.admin_token))
            .await;
        assert_eq!(claim.status, StatusCode::OK, "{}", claim.body);
        sessions.push((conv, r.body["session_token"].as_str().unwrap().to_string()));
    }
    let received: Arc<Mutex<Vec<f64>>> = Arc::default();
    let per = replies.div_ceil(listeners);
    let pollers = sessions.iter().map(|(conv, token)| {
        let env = &env;
        let received = received.clone();
        async move {
            let mut after = 0i64;
            let mut got = 0;
            while got < per {
                let r = env
                    .send(
                        HttpFunction::Widget,
                        Req::get(&format!("/widget/conversations/{conv}/events?after={after}&wait=25")).token(token),
                    )
                    .await;
                let now = chrono::Utc::now();
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
                after = r.body["last_seq"].as_i64().unwrap();
                for e in r.body["events"].as_array().unwrap() {
                    if e["type"] == "message.created" && e["data"]["role"] == "human_agent" {
                        // The reply's created_at is its transaction's start (the database's
                        // clock, the same machine's): a little before its commit.
                        let at: chrono::DateTime<chrono::Utc> =
                            serde_json::from_value(e["data"]["created_at"].clone()).unwrap();
                        received.lock().await.push((now - at).num_microseconds().unwrap() as f64 / 1000.0);
                        got += 1;
                    }
                }
            }
        }
    });
    let writer = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        for i in 0..per {
            for (conv, _) in &sessions {
                let text = format!("reply {i} to {conv}");
                let r = env
                    .send(
                        HttpFunction::Inbox,
                        Req::post(&format!("/inbox/conversations/{conv}/messages"))
                            .token(&t.admin_token)
                            .json(json!({"content": text})),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    };
    println!("event delivery: {listeners} widgets long-polling, {} human replies through the inbox", per * listeners);
    tokio::join!(futures_util::future::join_all(pollers), writer);
    summary("  reply's transaction → widget received", received.lock().await.clone());
}

/// One handoff written as the chat turn writes it: the conversation to the queue, the
/// escalation, its assignment job through the outbox, relayed after the commit.
async fn handoff(env: &TestEnv, company: Uuid, agent: Uuid, conv: Uuid) {
    let tx = env.deps.db.begin(&worker_ctx(company)).await.unwrap();
    let id = chatapp::repo::chat::escalate(
        &tx,
        &chatapp::repo::chat::NewEscalation {
            conversation_id: conv,
            company_id: company,
            agent_id: agent,
            reason: "bench handoff",
            trigger_type: "explicit_request",
            details: &json!({}),
            priority: "high",
        },
    )
    .await
    .unwrap()
    .unwrap();
    chatapp::outbox::add(&tx, ESCALATION, &json!({"company_id": company, "kind": "escalation", "escalation_id": id}))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    chatapp::outbox::relay_now(&env.deps, chatapp::chat::turn::RELAY).await;
}
