//! Black-box test support: a fresh PostgreSQL database per test (migrated as the owner, used
//! through the RLS-bound `chatapp_app` role), and handlers called exactly as Lambda calls them.

pub mod model_server;
pub mod widget;

use std::collections::HashMap;
use std::net::IpAddr;

use chatapp::app::AppDeps;
use chatapp::config::Config;
use chatapp::web::LocalPeer;
use chatapp_functions::http_function::HttpFunction;
use http::StatusCode;
use lambda_http::Body;
use serde_json::{json, Value};
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

pub const MASTER_EMAIL: &str = "master@test.local";
pub const MASTER_PASSWORD: &str = "master-password-1";
pub const PASSWORD: &str = "a-good-password-1";

/// `postgres://postgres@127.0.0.1:5432` unless `TEST_PG_ADMIN_URL` says otherwise.
pub fn pg_admin_base() -> String {
    std::env::var("TEST_PG_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn pg_app_base() -> String {
    std::env::var("TEST_PG_APP_URL").unwrap_or_else(|_| "postgres://chatapp_app@127.0.0.1:5432".into())
}

#[allow(clippy::disallowed_methods)] // owner-level connection, not tenant data
pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(conn);
    client
}

pub struct TestEnv {
    pub db_name: String,
    pub cfg: Config,
    pub deps: AppDeps,
}

impl TestEnv {
    pub async fn new() -> Self {
        Self::with(&[]).await
    }

    /// A fresh database, migrated and bootstrapped, with `overrides` applied to the config.
    pub async fn with(overrides: &[(&str, &str)]) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
            .with_test_writer()
            .try_init();
        let db_name = format!("chatapp_t_{}", Uuid::new_v4().simple());
        let admin = connect(&format!("{}/postgres", pg_admin_base())).await;
        admin.batch_execute(&format!("CREATE DATABASE {db_name}")).await.unwrap();
        let data_dir = std::env::temp_dir().join(&db_name);
        let mut vars: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), format!("{}/{db_name}", pg_app_base())),
            ("MIGRATION_DATABASE_URL".into(), format!("{}/{db_name}", pg_admin_base())),
            ("MASTER_ADMIN_EMAIL".into(), MASTER_EMAIL.into()),
            ("MASTER_ADMIN_PASSWORD".into(), MASTER_PASSWORD.into()),
            ("JWT_SECRET".into(), "test-secret-test-secret-test-secret-1234".into()),
            ("DATA_DIR".into(), data_dir.to_string_lossy().into_owned()),
            ("DB_POOL_SIZE".into(), "4".into()),
        ]);
        // The set-up scripts export where the local embedding model is installed.
        if let Ok(dir) = std::env::var("EMBEDDING_MODEL_DIR") {
            vars.insert("EMBEDDING_MODEL_DIR".into(), dir);
        }
        for (k, v) in overrides {
            vars.insert(k.to_string(), v.to_string());
        }
        let cfg = Config::from_lookup(|k| vars.get(k).cloned()).expect("test config");
        chatapp::seed::migrate_and_bootstrap(&cfg).await.expect("migrate");
        let deps = AppDeps::from_config(cfg.clone()).await.expect("deps");
        Self { db_name, cfg, deps }
    }

    /// Superuser connection to this test's database (bypasses RLS: for setup and checks).
    pub async fn owner(&self) -> Client {
        connect(self.cfg.migration_database_url.expose()).await
    }

    /// A raw connection as the application role (RLS applies).
    pub async fn app_client(&self) -> Client {
        connect(self.cfg.database_url.expose()).await
    }

    pub async fn send(&self, f: HttpFunction, req: Req) -> Resp {
        let mut builder = http::Request::builder().method(req.method).uri(&req.path);
        builder = builder.header("user-agent", "chatapp-tests/1");
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if let Some(t) = &req.token {
            builder = builder.header("authorization", format!("Bearer {t}"));
        }
        let body = match (req.body, req.bytes) {
            (_, Some((b, content_type))) => {
                builder = builder.header("content-type", content_type);
                Body::Binary(b)
            }
            (Some(b), None) => {
                builder = builder.header("content-type", "application/json");
                Body::Text(b)
            }
            (None, None) => Body::Empty,
        };
        let mut request: lambda_http::Request = builder.body(body).unwrap();
        request.extensions_mut().insert(LocalPeer(req.ip));
        let response = f.call(&self.deps, request).await;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if status.is_client_error() || status.is_server_error() {
            // Every error is the JSON shape {"error":{"code","message"}}.
            assert!(
                body["error"]["code"].is_string() && body["error"]["message"].is_string(),
                "bad error body: {body}"
            );
        }
        Resp { status, body, headers }
    }

    pub async fn login(&self, email: &str, password: &str) -> Resp {
        self.send(HttpFunction::Auth, Req::post("/auth/login").json(json!({"email": email, "password": password})))
            .await
    }

    pub async fn master_token(&self) -> String {
        let r = self.login(MASTER_EMAIL, MASTER_PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["access_token"].as_str().unwrap().to_string()
    }

    /// A company created by the master admin through the companies route, whose first admin
    /// accepted the invitation through the invitations route.
    pub async fn company(&self, slug: &str, plan: &str) -> Tenant {
        let master = self.master_token().await;
        let admin_email = format!("admin@{slug}.test");
        let r = self
            .send(
                HttpFunction::Companies,
                Req::post("/admin/companies").token(&master).json(json!({
                    "name": format!("Company {slug}"), "slug": slug, "plan": plan, "admin_email": admin_email
                })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let company_id: Uuid = r.body["company"]["id"].as_str().unwrap().parse().unwrap();
        let token = r.body["admin_invitation"]["token"].as_str().unwrap().to_string();
        let a = self
            .send(
                HttpFunction::Invitations,
                Req::post("/invitations/accept").json(json!({"token": token, "password": PASSWORD, "name": "Admin"})),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        Tenant {
            company_id,
            admin_id: a.body["user"]["id"].as_str().unwrap().parse().unwrap(),
            admin_email,
            admin_token: a.body["tokens"]["access_token"].as_str().unwrap().to_string(),
        }
    }

    /// Invites and accepts a user of `tenant` with `role`; returns (user id, access token).
    pub async fn member(&self, tenant: &Tenant, email: &str, role: &str, permissions: Value) -> (Uuid, String) {
        let r = self
            .send(
                HttpFunction::Invitations,
                Req::post("/admin/invitations")
                    .token(&tenant.admin_token)
                    .json(json!({"email": email, "role": role, "permissions": permissions})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let token = r.body["token"].as_str().unwrap();
        let a = self
            .send(
                HttpFunction::Invitations,
                Req::post("/invitations/accept").json(json!({"token": token, "password": PASSWORD})),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        (
            a.body["user"]["id"].as_str().unwrap().parse().unwrap(),
            a.body["tokens"]["access_token"].as_str().unwrap().to_string(),
        )
    }

    pub async fn count(&self, sql_from_where: &str) -> i64 {
        self.owner().await.query_one(&format!("SELECT count(*) FROM {sql_from_where}"), &[]).await.unwrap().get(0)
    }

    pub async fn audit_count(&self, action: &str) -> i64 {
        self.owner()
            .await
            .query_one("SELECT count(*) FROM chatapp_audit_logs WHERE action = $1", &[&action])
            .await
            .unwrap()
            .get(0)
    }

    /// Sets a user's password directly (fixture users have none).
    pub async fn set_password(&self, user: Uuid, password: &str) {
        let hash = chatapp::auth::password::hash_password(password).unwrap();
        self.owner()
            .await
            .execute("UPDATE chatapp_users SET password_hash = $2 WHERE id = $1", &[&user, &hash])
            .await
            .unwrap();
    }
}

pub struct Tenant {
    pub company_id: Uuid,
    pub admin_id: Uuid,
    pub admin_email: String,
    pub admin_token: String,
}

pub struct Req {
    method: http::Method,
    path: String,
    token: Option<String>,
    body: Option<String>,
    bytes: Option<(Vec<u8>, String)>,
    headers: Vec<(String, String)>,
    ip: IpAddr,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.parse().unwrap(),
            path: path.to_string(),
            token: None,
            body: None,
            bytes: None,
            headers: Vec::new(),
            ip: "127.0.0.1".parse().unwrap(),
        }
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }
    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }
    pub fn patch(path: &str) -> Self {
        Self::new("PATCH", path)
    }
    pub fn delete(path: &str) -> Self {
        Self::new("DELETE", path)
    }
    pub fn token(mut self, t: &str) -> Self {
        self.token = Some(t.to_string());
        self
    }
    pub fn json(mut self, v: Value) -> Self {
        self.body = Some(v.to_string());
        self
    }
    pub fn raw(mut self, s: &str) -> Self {
        self.body = Some(s.to_string());
        self
    }
    pub fn put(path: &str) -> Self {
        Self::new("PUT", path)
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    /// A binary body (a file upload) with its content type.
    pub fn bytes(mut self, b: &[u8], content_type: &str) -> Self {
        self.bytes = Some((b.to_vec(), content_type.to_string()));
        self
    }
    pub fn ip(mut self, ip: &str) -> Self {
        self.ip = ip.parse().unwrap();
        self
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub headers: http::HeaderMap,
}

impl Resp {
    /// The `Access-Control-Allow-Origin` granted, if any.
    pub fn headers_cors(&self) -> Option<String> {
        self.headers.get("access-control-allow-origin").and_then(|v| v.to_str().ok()).map(str::to_string)
    }
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// Asserts status and error code together, with the body in the message.
#[macro_export]
macro_rules! assert_error {
    ($resp:expr, $status:expr, $code:expr) => {{
        let r = &$resp;
        assert_eq!(r.status, $status, "body: {}", r.body);
        assert_eq!(r.code(), $code, "body: {}", r.body);
    }};
}

/// The `Authorization` header value for `token`, for calling the auth code directly.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The value after `name` on a bench's command line (`--corpus <path>`).
pub fn bench_arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// Real embeddings for benches that search (random vectors are the worst case for a graph
/// index: a graph search took 0.5-0.8 ms on 100,000 of them, 0.18 ms on 40,000 of these): the
/// local model's (all-MiniLM-L6-v2) vectors of a BEIR corpus's sentences (titles and abstracts
/// split at sentence ends, about a chunk's worth of meaning each) and of its queries.
pub struct SentenceEmbeddings {
    pub sentence_texts: Vec<String>,
    pub sentences: Vec<Vec<f32>>,
    pub query_texts: Vec<String>,
    pub queries: Vec<Vec<f32>>,
}

impl SentenceEmbeddings {
    /// Up to `sentences` sentences of `corpus` and `queries` queries of `query_texts`, embedded
    /// with the model in `EMBEDDING_MODEL_DIR` (`scripts/lib.sh`'s `ensure_model` sets it), or
    /// read back from `keep_in`, where an earlier run kept them (a bench passes its
    /// `CARGO_TARGET_TMPDIR`): embedding 40,000 sentences takes minutes.
    pub async fn load(
        corpus: &str,
        query_texts: &str,
        sentences: usize,
        queries: usize,
        keep_in: &std::path::Path,
    ) -> Self {
        let mut texts = Vec::new();
        'corpus: for line in std::fs::read_to_string(corpus).expect("the corpus").lines() {
            let doc: Value = serde_json::from_str(line).expect("a JSON line");
            for field in ["title", "text"] {
                for sentence in doc[field].as_str().unwrap_or_default().split_inclusive(". ") {
                    if texts.len() == sentences {
                        break 'corpus;
                    }
                    if sentence.trim().len() >= 20 {
                        texts.push(sentence.trim().to_string());
                    }
                }
            }
        }
        let questions: Vec<String> = std::fs::read_to_string(query_texts)
            .expect("the queries")
            .lines()
            .take(queries)
            .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line")["text"].as_str().unwrap().to_string())
            .collect();
        Self {
            sentences: embedded(corpus, "sentences", &texts, keep_in).await,
            queries: embedded(query_texts, "queries", &questions, keep_in).await,
            sentence_texts: texts,
            query_texts: questions,
        }
    }
}

/// `texts` embedded by the local model, or read back from where an earlier run of the same
/// file and count kept them.
async fn embedded(source: &str, what: &str, texts: &[String], keep_in: &std::path::Path) -> Vec<Vec<f32>> {
    use chatapp::knowledge::embed::{Embedder, LocalEmbedder, MINILM_DIMENSIONS as DIMS};
    let stem = std::path::Path::new(source).file_stem().and_then(|s| s.to_str()).unwrap_or("texts");
    let kept = keep_in.join(format!("{stem}-{what}-{}.f32", texts.len()));
    if let Ok(bytes) = std::fs::read(&kept) {
        if bytes.len() == texts.len() * DIMS * 4 {
            return bytes
                .chunks_exact(DIMS * 4)
                .map(|v| v.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
                .collect();
        }
    }
    let dir = std::env::var("EMBEDDING_MODEL_DIR")
        .expect("EMBEDDING_MODEL_DIR: the local model's directory (scripts/lib.sh's ensure_model sets it)");
    let model = LocalEmbedder::new(dir);
    let started = std::time::Instant::now();
    let mut vectors = Vec::with_capacity(texts.len());
    for batch in texts.chunks(256) {
        vectors.extend(model.embed(batch).await.expect("embeddings"));
    }
    println!("embedded {} {what} of {source} in {:.0} s", texts.len(), started.elapsed().as_secs_f64());
    let bytes: Vec<u8> = vectors.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::create_dir_all(keep_in).expect("a directory to keep the embeddings in");
    std::fs::write(&kept, bytes).expect("keeping the embeddings");
    vectors
}

/// `count` vectors from `vectors`: the vectors themselves, then copies turned by random
/// rotations (one per copy), so a bench gets more points than it has real embeddings, each
/// with real neighbours (a rotation keeps every angle within its copy; the copies lie at
/// random to each other, as unrelated knowledge does).
pub fn rotated_copies(vectors: &[Vec<f32>], count: usize) -> Vec<Vec<f32>> {
    let n = vectors.len().max(1);
    let dims = vectors.first().map_or(0, Vec::len);
    let rotations: Vec<Vec<Vec<f32>>> = (1..count.div_ceil(n) as u64).map(|copy| random_rotation(copy, dims)).collect();
    (0..count)
        .map(|i| {
            let v = &vectors[i % n];
            match i / n {
                0 => v.clone(),
                copy => rotations[copy - 1].iter().map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum()).collect(),
            }
        })
        .collect()
}

/// A random orthogonal matrix (Gram-Schmidt on pseudo-random vectors), one per seed.
fn random_rotation(seed: u64, dims: usize) -> Vec<Vec<f32>> {
    let mut rows: Vec<Vec<f32>> = Vec::with_capacity(dims);
    for k in 0..dims as u64 {
        let mut v = pseudo_random_unit_vector((seed << 32) + k + 7_000_000, dims);
        for r in &rows {
            let d: f32 = r.iter().zip(&v).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(r).for_each(|(a, b)| *a -= d * b);
        }
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.iter_mut().for_each(|a| *a /= n);
        rows.push(v);
    }
    rows
}

/// A deterministic pseudo-random unit vector (xorshift): many distinct vectors for benches,
/// the same ones on every run.
pub fn pseudo_random_unit_vector(seed: u64, dims: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut v: Vec<f32> = (0..dims)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.iter_mut().for_each(|a| *a /= n);
    v
}

/// The function that serves an admin route of an agent or of the company's escalation rules
/// (as template.yaml routes it): `agent-widgets`, `agent-actions`, `agent-versions`,
/// `escalation-rules`, else
/// `agents`.
pub fn agent_admin_function(path: &str) -> HttpFunction {
    let path = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["", "admin", "escalation-rules", ..] => HttpFunction::EscalationRules,
        ["", "admin", "agents", _, "widget", ..] => HttpFunction::AgentWidgets,
        ["", "admin", "agents", _, "actions", ..] => HttpFunction::AgentActions,
        ["", "admin", "agents", _, "versions" | "publish", ..] => HttpFunction::AgentVersions,
        _ => HttpFunction::Agents,
    }
}

/// Runs the channel worker's and then the sender's queues until both are empty, as the
/// event source mappings would; returns (turns, deliveries) handled.
pub async fn run_channel_workers(env: &TestEnv) -> (usize, usize) {
    let worker = env.deps.scoped(chatapp_functions::channel_worker::AWS);
    let sender = env.deps.scoped(chatapp_functions::channel_sender::AWS);
    let (mut turns, mut sends) = (0, 0);
    loop {
        // What a relay left behind (none normally: producers relay after commit).
        chatapp::outbox::relay(
            &env.deps.db,
            env.deps.queue.as_ref(),
            chatapp_functions::outbox_relay::QUEUES,
            std::time::Duration::ZERO,
        )
        .await
        .unwrap();
        let t = chatapp_functions::channel_worker::drain_queue(&worker).await.unwrap();
        let s = chatapp_functions::channel_sender::drain_queue(&sender).await.unwrap();
        turns += t;
        sends += s;
        if t == 0 && s == 0 {
            return (turns, sends);
        }
    }
}
