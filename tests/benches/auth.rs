//! Authentication latency against local PostgreSQL, through the real handlers and auth code:
//! login (argon2id verify + token issue), JWT authentication and API-key authentication,
//! 1,000 requests each. Run: `cargo bench -p chatapp-tests --bench auth`.

use std::time::{Duration, Instant};

use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{bearer, Req, TestEnv, PASSWORD};
use http::StatusCode;
use serde_json::json;

const N: usize = 1000;

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    println!(
        "{name:<28} n={:<5} p50={:>8.3} ms  p99={:>8.3} ms  max={:>8.3} ms",
        samples.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; nothing to filter here.
    let env = TestEnv::with(&[("LOGIN_MAX_FAILURES", "1000000")]).await;
    let tenant = env.company("bench", "enterprise").await;
    let key = env
        .send(
            HttpFunction::ApiKeys,
            Req::post("/admin/api-keys")
                .token(&tenant.admin_token)
                .json(json!({"name": "bench", "scopes": ["read:team"]})),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_string();

    // Warm the pool and the argon2 code path.
    for _ in 0..5 {
        env.login(&tenant.admin_email, PASSWORD).await;
    }

    let mut login = Vec::with_capacity(N);
    for _ in 0..N {
        let t = Instant::now();
        let r = env.login(&tenant.admin_email, PASSWORD).await;
        login.push(t.elapsed());
        assert_eq!(r.status, StatusCode::OK);
    }
    report("login (POST /auth/login)", login);

    let mut jwt = Vec::with_capacity(N);
    for _ in 0..N {
        let req = bearer(&tenant.admin_token);
        let t = Instant::now();
        let ctx = env.deps.auth.authenticate(Some(&req), &Default::default()).await;
        jwt.push(t.elapsed());
        assert!(ctx.is_ok());
    }
    report("JWT authentication", jwt);

    let mut api = Vec::with_capacity(N);
    for _ in 0..N {
        let req = bearer(&key);
        let t = Instant::now();
        let ctx = env.deps.auth.authenticate(Some(&req), &Default::default()).await;
        api.push(t.elapsed());
        assert!(ctx.is_ok());
    }
    report("API-key authentication", api);

    let mut me = Vec::with_capacity(N);
    for _ in 0..N {
        let t = Instant::now();
        let r = env.send(HttpFunction::Auth, Req::get("/auth/me").token(&key)).await;
        me.push(t.elapsed());
        assert_eq!(r.status, StatusCode::OK);
    }
    report("GET /auth/me with API key", me);
}
