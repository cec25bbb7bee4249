//! Cold start of one HTTP function: spawns the release `auth` binary as Lambda would, against
//! an in-process implementation of the Lambda Runtime API, and measures the time from process
//! start to the first response posted back (GET /auth/me with a valid token: JWT check, user
//! lookup and one tenant transaction on local PostgreSQL). Also prints every function's
//! release binary size. Needs `cargo build --release -p chatapp-functions --bins` first
//! (scripts/bench.sh does it).

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chatapp_tests::TestEnv;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::sync::mpsc;

const BINARIES: &[&str] = &["auth", "companies", "team", "invitations", "api-keys", "migrate", "chatapp-local"];
const RUNS: usize = 20;

fn release_dir() -> PathBuf {
    // target/release/deps/cold_start-<hash> → target/release
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf()
}

fn api_gw_event(token: &str) -> String {
    json!({
        "version": "2.0", "routeKey": "ANY /auth/{proxy+}", "rawPath": "/auth/me", "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {token}"), "host": "api.example.com"},
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
            "domainPrefix": "api", "http": {"method": "GET", "path": "/auth/me", "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.9", "userAgent": "bench"}, "requestId": "r1", "routeKey": "ANY /auth/{proxy+}",
            "stage": "$default", "time": "23/Nov/2026:10:00:00 +0000", "timeEpoch": 1795428000000u64},
        "isBase64Encoded": false
    })
    .to_string()
}

/// Serves one invocation of `event`, then reports the posted response body.
async fn runtime_api(listener: tokio::net::TcpListener, event: String, done: mpsc::Sender<String>) {
    let served = Arc::new(Mutex::new(false));
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let (event, done, served) = (event.clone(), done.clone(), served.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let (event, done, served) = (event.clone(), done.clone(), served.clone());
                async move {
                    let path = req.uri().path().to_string();
                    if path.ends_with("/invocation/next") {
                        let first = !std::mem::replace(&mut *served.lock().unwrap(), true);
                        if !first {
                            // Park the runtime's next poll; the process is killed after one response.
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        let deadline = (std::time::SystemTime::now() + Duration::from_secs(30))
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_millis();
                        return Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .header("lambda-runtime-aws-request-id", "req-1")
                                .header("lambda-runtime-deadline-ms", deadline.to_string())
                                .header(
                                    "lambda-runtime-invoked-function-arn",
                                    "arn:aws:lambda:us-east-1:123456789012:function:auth",
                                )
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(event)))
                                .unwrap(),
                        );
                    }
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    if path.ends_with("/response") || path.ends_with("/error") {
                        let _ = done.send(String::from_utf8_lossy(&body).into_owned()).await;
                    }
                    Ok(hyper::Response::builder().status(202).body(Full::new(Bytes::new())).unwrap())
                }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = release_dir();
    println!("release binary sizes ({}):", dir.display());
    for b in BINARIES {
        match std::fs::metadata(dir.join(b)) {
            Ok(m) => println!("  {b:<14} {:>6.2} MiB", m.len() as f64 / 1024.0 / 1024.0),
            Err(_) => println!("  {b:<14} (not built: cargo build --release -p chatapp-functions --bins)"),
        }
    }
    let auth_bin = dir.join("auth");
    if !auth_bin.exists() {
        return;
    }
    let env = TestEnv::new().await;
    let tenant = env.company("cold", "starter").await;
    let event = api_gw_event(&tenant.admin_token);
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let server = tokio::spawn(runtime_api(listener, event.clone(), tx));
        let start = Instant::now();
        let mut child = tokio::process::Command::new(&auth_bin)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "auth")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("RUST_LOG", "warn")
            .env("DATABASE_URL", env.cfg.database_url.expose())
            .env("JWT_SECRET", String::from_utf8(env.cfg.jwt_secret.expose().clone()).unwrap())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("no response").unwrap();
        samples.push(start.elapsed());
        assert!(response.contains("\"statusCode\":200"), "{response}");
        child.kill().await.unwrap();
        server.abort();
    }
    samples.sort();
    println!(
        "cold start of `auth` (spawn → first response, GET /auth/me), {RUNS} runs: p50={:.1} ms  min={:.1} ms  max={:.1} ms",
        samples[RUNS / 2].as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        samples[RUNS - 1].as_secs_f64() * 1e3
    );
}
