//! Webhook acknowledgement under load, on local PostgreSQL: verify the signature, dedupe, store
//! the message (customer, conversation, inbound row, outbox job), relay the turn job, answer
//! 200 — through the WhatsApp and Slack functions' handlers, with 10,000 conversations already
//! in the tenant. Clients send concurrently (the machine has two cores); each request's time and
//! the requests per second are printed for three runs per channel: new messages from customers
//! with an open conversation; the same with 20 % of the requests redeliveries of one already
//! acknowledged (what a provider retrying a slow webhook sends); and new messages from customers
//! writing for the first time (a customer and a conversation each). The turn jobs are left
//! queued: answering is the channel worker's job, not the ack's.
//!
//! cargo bench -p chatapp-tests --bench channels [-- --requests N --clients N --conversations N]

use std::sync::Arc;
use std::time::Instant;

use chatapp::channels::hmac_sha256_hex;
use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{bench_arg, Req, TestEnv};
use http::StatusCode;
use lambda_http::Body;
use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;

const APP_SECRET: &str = "bench-app-secret";
/// Customer numbers at or above this have no conversation yet.
const CUSTOMERS_WITH_CONVERSATIONS: usize = 1_000_000;
const SIGNING_SECRET: &str = "bench-signing-secret";

fn arg(name: &str, default: usize) -> usize {
    bench_arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A request body and the headers that sign it.
type Signed = (Vec<u8>, Vec<(String, String)>);

/// One webhook request, signed for its channel.
fn request(channel: &str, n: usize, customer: usize) -> Signed {
    let now = chrono::Utc::now().timestamp();
    match channel {
        "whatsapp" => {
            let from = format!("1555{customer:07}");
            let body =
                json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
                "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "106540352242922"},
                    "contacts": [{"profile": {"name": "Customer"}, "wa_id": from}],
                    "messages": [{"from": from, "id": format!("wamid.bench.{n}"), "timestamp": now.to_string(),
                        "type": "text", "text": {"body": "Where is my order?"}}]}}]}]})
                .to_string()
                .into_bytes();
            let sig = format!("sha256={}", hmac_sha256_hex(APP_SECRET.as_bytes(), &[&body]));
            (body, vec![("x-hub-signature-256".into(), sig)])
        }
        _ => {
            let body = json!({"token": "t", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
                "event_id": format!("Ev{n:010}"), "event_time": now,
                "event": {"type": "message", "channel": format!("D{customer:08}"), "channel_type": "im",
                    "user": format!("U{customer:08}"), "text": "Where is my order?", "ts": format!("{now}.{n:06}")}})
            .to_string()
            .into_bytes();
            let ts = now.to_string();
            let sig =
                format!("v0={}", hmac_sha256_hex(SIGNING_SECRET.as_bytes(), &[b"v0:", ts.as_bytes(), b":", &body]));
            (body, vec![("x-slack-request-timestamp".into(), ts), ("x-slack-signature".into(), sig)])
        }
    }
}

async fn call(env: &TestEnv, f: HttpFunction, path: &str, body: &[u8], headers: &[(String, String)]) -> StatusCode {
    let mut b = http::Request::builder().method("POST").uri(path).header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let req: lambda_http::Request = b.body(Body::Binary(body.to_vec())).unwrap();
    f.call(&env.deps, req).await.status()
}

/// One run of the bench.
struct Run {
    channel: &'static str,
    config: Uuid,
    requests: usize,
    clients: usize,
    redeliveries: bool,
    /// First message number (message ids stay unique across runs).
    offset: usize,
    /// The customers the messages come from, in turn.
    customers: std::ops::Range<usize>,
}

/// `requests` webhook calls by `clients` concurrent clients; every fifth a redelivery when
/// `redeliveries` is set. Prints p50 / p90 / p99 and requests per second.
async fn run(env: &Arc<TestEnv>, r: Run) {
    let Run { channel, config, requests, clients, redeliveries, offset, customers } = r;
    let f = HttpFunction::from_binary(channel).unwrap();
    let path = format!("/channels/{channel}/{config}");
    let next = Arc::new(Mutex::new(0usize));
    let sent: Arc<Mutex<Vec<Signed>>> = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (env, next, sent, path, customers) =
            (env.clone(), next.clone(), sent.clone(), path.clone(), customers.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            loop {
                let i = {
                    let mut n = next.lock().await;
                    if *n >= requests {
                        break;
                    }
                    *n += 1;
                    *n - 1
                };
                // Every fifth request repeats one already acknowledged (none yet: a new one).
                let redelivery = redeliveries && i % 5 == 4 && !sent.lock().await.is_empty();
                let (body, headers) = if redelivery {
                    let s = sent.lock().await;
                    s[i % s.len().max(1)].clone()
                } else {
                    request(channel, offset + i, customers.start + i % customers.len())
                };
                let t = Instant::now();
                let status = call(&env, f, &path, &body, &headers).await;
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(status, StatusCode::OK, "{channel} request {i}");
                if !redelivery {
                    sent.lock().await.push((body, headers));
                }
            }
            times
        }));
    }
    let mut ms: Vec<f64> = Vec::new();
    for t in tasks {
        ms.extend(t.await.unwrap());
    }
    let took = started.elapsed().as_secs_f64();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{channel:>8} ack{}: n={} clients={clients} p50={:.2} ms p90={:.2} ms p99={:.2} ms max={:.2} ms, {:.0} requests/s",
        if redeliveries {
            " (20% redeliveries)"
        } else if customers.start >= CUSTOMERS_WITH_CONVERSATIONS {
            " (every message a new customer)"
        } else {
            ""
        },
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.9),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN),
        ms.len() as f64 / took
    );
}

#[tokio::main]
async fn main() {
    let requests = arg("--requests", 5_000);
    let clients = arg("--clients", 8);
    let conversations = arg("--conversations", 10_000);
    let env = Arc::new(TestEnv::with(&[("DB_POOL_SIZE", "16")]).await);
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
    let mut configs = Vec::new();
    for (channel, credentials) in [
        (
            "whatsapp",
            json!({"access_token": "EAAG-bench", "app_secret": APP_SECRET, "phone_number_id": "106540352242922"}),
        ),
        ("slack", json!({"bot_token": "xoxb-bench", "signing_secret": SIGNING_SECRET, "bot_user_id": "UBOT"})),
    ] {
        let r = env
            .send(
                HttpFunction::Channels,
                Req::post("/admin/channels")
                    .token(&t.admin_token)
                    .json(json!({"agent_id": agent, "channel": channel, "credentials": credentials})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        configs.push((channel, r.body["channel"]["id"].as_str().unwrap().parse::<Uuid>().unwrap()));
    }
    // The tenant's history: open conversations of both channels with their customers, as the
    // webhook would have made them (the first requests of the run reuse them).
    let per_channel = conversations / configs.len();
    for (channel, config) in &configs {
        let per = per_channel;
        owner
            .execute(
                "WITH cu AS (
                    INSERT INTO chatapp_customers (company_id, name, channel_ids)
                    SELECT $1, 'Customer ' || g,
                           jsonb_build_object($4::text, CASE WHEN $4 = 'whatsapp' THEN '1555' || lpad(g::text, 7, '0')
                                                             ELSE 'U' || lpad(g::text, 8, '0') END)
                    FROM generate_series(0, $5::int - 1) g RETURNING id, channel_ids)
                 INSERT INTO chatapp_conversations (company_id, agent_id, session_token, channel, customer_id,
                                                    external_id, context)
                 SELECT $1, $2, 'bench-' || $4 || '-' || cu.id, $4::text::channel_type, cu.id::text,
                        CASE WHEN $4 = 'whatsapp' THEN cu.channel_ids ->> 'whatsapp'
                             ELSE 'D' || substr(cu.channel_ids ->> 'slack', 2) END,
                        jsonb_build_object('channel_config_id', $3::uuid)
                 FROM cu",
                &[&t.company_id, &agent, config, channel, &(per as i32)],
            )
            .await
            .unwrap();
        owner
            .execute(
                "INSERT INTO chatapp_channel_identities (company_id, channel, external_user_id, customer_id)
                 SELECT company_id, $2::text::channel_type, channel_ids ->> $2, id
                 FROM chatapp_customers WHERE company_id = $1 AND channel_ids ? $2",
                &[&t.company_id, channel],
            )
            .await
            .unwrap();
    }
    owner.batch_execute("ANALYZE").await.unwrap();
    println!(
        "webhook acknowledgement: {conversations} conversations in the tenant, {requests} requests per run, {clients} clients"
    );
    let known = 0..per_channel;
    for (i, (channel, config)) in configs.iter().enumerate() {
        let base = i * 10 * requests;
        let (channel, config) = (*channel, *config);
        let runs = |redeliveries: bool, offset: usize, customers: std::ops::Range<usize>| Run {
            channel,
            config,
            requests,
            clients,
            redeliveries,
            offset,
            customers,
        };
        run(&env, runs(false, base, known.clone())).await;
        run(&env, runs(true, base + requests, known.clone())).await;
        // Customers writing for the first time: a customer and a conversation each.
        let fresh = CUSTOMERS_WITH_CONVERSATIONS + base..CUSTOMERS_WITH_CONVERSATIONS + base + requests;
        run(&env, runs(false, base + 2 * requests, fresh)).await;
    }
    let stored = env.count("chatapp_channel_inbound").await;
    println!("stored {stored} inbound messages (redeliveries stored nothing)");
}
