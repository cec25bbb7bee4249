//! Every function's stripped release binary: its size, its cold start (process spawn to the
//! first response posted to an in-process Lambda Runtime API) and its peak memory, started with
//! the environment template.yaml gives it (S3, SQS, Qdrant and the embedder pointed at
//! loopback), beside a minimal `lambda_http` hello-world measured in the same run. Runs
//! alternate between binaries. Also `auth` answering GET /auth/me (JWT check, user lookup and
//! one tenant transaction on local PostgreSQL). Needs the release binaries first
//! (scripts/bench.sh builds them).

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

/// (binary, event kind) for every function of template.yaml, and the anchor.
const FUNCTIONS: &[(&str, Event)] = &[
    ("hello-lambda", Event::Http("/")),
    ("auth", Event::Http("/auth/me")),
    ("companies", Event::Http("/admin/companies")),
    ("team", Event::Http("/admin/team/users")),
    ("invitations", Event::Http("/admin/invitations")),
    ("api-keys", Event::Http("/admin/api-keys")),
    ("knowledge-categories", Event::Http("/admin/knowledge/categories")),
    ("knowledge-files", Event::Http("/admin/knowledge/files")),
    ("knowledge-articles", Event::Http("/admin/knowledge/articles")),
    ("knowledge-search", Event::Http("/admin/knowledge/search")),
    ("widget", Event::Http("/widget/conversations/00000000-0000-0000-0000-000000000000/messages")),
    ("widget-stream", Event::Http("/widget/conversations/00000000-0000-0000-0000-000000000000/messages")),
    ("chat-api", Event::Http("/api/v1/conversations/00000000-0000-0000-0000-000000000000/messages")),
    ("upload-trigger", Event::Records),
    ("ingest-worker", Event::Records),
    ("migrate", Event::Invoke),
    ("inbox", Event::Http("/inbox/conversations")),
    ("agents", Event::Http("/admin/agents")),
    ("agent-actions", Event::Http("/admin/agents/00000000-0000-0000-0000-000000000000/actions")),
    ("agent-versions", Event::Http("/admin/agents/00000000-0000-0000-0000-000000000000/versions")),
    ("agent-widgets", Event::Http("/admin/agents/00000000-0000-0000-0000-000000000000/widget")),
    ("escalation-rules", Event::Http("/admin/escalation-rules")),
    ("escalation-worker", Event::Records),
    ("outbox-relay", Event::Invoke),
    ("channels", Event::Http("/admin/channels")),
    ("whatsapp", Event::Http("/channels/whatsapp/00000000-0000-0000-0000-000000000000")),
    ("messenger", Event::Http("/channels/messenger/00000000-0000-0000-0000-000000000000")),
    ("instagram", Event::Http("/channels/instagram/00000000-0000-0000-0000-000000000000")),
    ("telegram", Event::Http("/channels/telegram/00000000-0000-0000-0000-000000000000")),
    ("slack", Event::Http("/channels/slack/00000000-0000-0000-0000-000000000000")),
    ("teams", Event::Http("/channels/teams/00000000-0000-0000-0000-000000000000")),
    ("email", Event::Http("/channels/email/00000000-0000-0000-0000-000000000000")),
    ("channel-worker", Event::Records),
    ("channel-sender", Event::Records),
    ("models", Event::Http("/admin/models")),
    ("plans", Event::Http("/admin/plans")),
    ("prompt-templates", Event::Http("/admin/prompt-templates")),
    ("agent-packages", Event::Http("/admin/agent-packages")),
    ("agent-preview", Event::Http("/admin/agents/00000000-0000-0000-0000-000000000000/preview")),
    ("provider-keys", Event::Http("/admin/provider-keys")),
];
const RUNS: usize = 15;

#[derive(Clone, Copy)]
enum Event {
    /// An API Gateway request with a method the route does not serve: the router's 405,
    /// no database round trip, so the figure is the start-up itself.
    Http(&'static str),
    /// An empty batch of S3 / SQS records.
    Records,
    /// A plain invocation (migrate: nothing pending on a migrated database).
    Invoke,
}

impl Event {
    fn payload(self) -> String {
        match self {
            Event::Http(path) => http_event("TRACE", path, None),
            Event::Records => json!({"Records": []}).to_string(),
            Event::Invoke => json!({}).to_string(),
        }
    }
}

/// Where the release binaries are: `BENCH_BIN_DIR`, else `<target>/release` beside this
/// program's own profile directory (it may itself be a dev build: it only spawns and times).
fn release_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BENCH_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // <target>/<profile>/deps/cold_start-<hash> → <target>/release
    let profile_dir = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
    profile_dir.parent().unwrap().join("release")
}

fn http_event(method: &str, path: &str, token: Option<&str>) -> String {
    let mut headers = json!({"host": "api.example.com"});
    if let Some(t) = token {
        headers["authorization"] = json!(format!("Bearer {t}"));
    }
    json!({
        "version": "2.0", "routeKey": format!("ANY {path}"), "rawPath": path, "rawQueryString": "",
        "headers": headers,
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
            "domainPrefix": "api", "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.9", "userAgent": "bench"}, "requestId": "r1", "routeKey": format!("ANY {path}"),
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

/// The environment template.yaml's Globals give every function (and each function's own
/// additions), with the AWS services and Qdrant pointed at loopback: clients are built at cold
/// start but nothing is called before the first request needs it.
fn template_env(env: &TestEnv, binary: &str) -> Vec<(String, String)> {
    let mut vars: Vec<(&str, String)> = vec![
        ("AWS_LAMBDA_FUNCTION_NAME", binary.into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "bench".into()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "bench".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("AWS_SESSION_TOKEN", "bench".into()),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9".into()),
        ("RUST_LOG", "info".into()),
        ("DATABASE_URL", env.cfg.database_url.expose().clone()),
        ("JWT_SECRET", String::from_utf8(env.cfg.jwt_secret.expose().clone()).unwrap()),
        ("BLOB_BACKEND", "s3".into()),
        ("KNOWLEDGE_BUCKET", "bench-knowledge".into()),
        ("QUEUE_BACKEND", "sqs".into()),
        ("INGEST_QUEUE_URL", "http://127.0.0.1:9/000000000000/ingest".into()),
        ("ESCALATION_QUEUE_URL", "http://127.0.0.1:9/000000000000/escalation".into()),
        ("OUTBOUND_QUEUE_URL", "http://127.0.0.1:9/000000000000/outbound".into()),
        ("CHANNEL_TURN_QUEUE_URL", "http://127.0.0.1:9/000000000000/channel-turn".into()),
        ("CHANNEL_SEND_QUEUE_URL", "http://127.0.0.1:9/000000000000/channel-send".into()),
        // Base64 of 32 bytes (required on Lambda).
        ("SECRETS_KEY", "YmVuY2gtc2VjcmV0cy1rZXktYmVuY2gtc2VjcmV0cy0=".into()),
        ("EVENTS_LISTEN", "false".into()),
        ("VECTOR_BACKEND", "qdrant".into()),
        ("QDRANT_URL", "http://127.0.0.1:6334".into()),
        ("EMBEDDER", "openai".into()),
        ("EMBEDDING_BASE_URL", "http://127.0.0.1:9/v1".into()),
        ("EMBEDDING_MODEL", "text-embedding-3-small".into()),
        ("EMBEDDING_DIMENSIONS", "1536".into()),
        ("CHAT_PROVIDER", "extractive".into()),
    ];
    match binary {
        "widget" => vars.push(("WIDGET_STREAM_URL", "https://stream.example.com".into())),
        "migrate" => vars.push(("MIGRATION_DATABASE_URL", env.cfg.migration_database_url.expose().clone())),
        "channel-sender" => vars.push(("EMAIL_SENDER", "ses".into())),
        "channels" => vars.push(("PUBLIC_API_URL", "https://api.example.com".into())),
        _ => {}
    }
    vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

struct Run {
    elapsed: Duration,
    peak_rss_kib: u64,
    /// Log lines written, and whether every one was a JSON object.
    log_lines: usize,
    json_logs: bool,
}

/// One cold start: spawn, serve one event, read the peak memory, kill.
async fn cold_start(bin: &std::path::Path, vars: &[(String, String)], event: String) -> Run {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::channel(1);
    let server = tokio::spawn(runtime_api(listener, event, tx));
    let start = Instant::now();
    let mut child = tokio::process::Command::new(bin)
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("{}: no response", bin.display()))
        .unwrap();
    let elapsed = start.elapsed();
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id().unwrap())).unwrap_or_default();
    let peak_rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    assert!(!response.is_empty(), "{}: empty response", bin.display());
    child.kill().await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    server.abort();
    let logs = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    let json_logs = lines.iter().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v.is_object()));
    Run { elapsed, peak_rss_kib, log_lines: lines.len(), json_logs }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = release_dir();
    let env = TestEnv::new().await;
    let tenant = env.company("cold", "starter").await;
    // BENCH_COMPARE_DIR: another build's binaries, each measured beside the same binary of this
    // one (as `<name>@before`), alternating, to compare two builds on one machine.
    let before = std::env::var_os("BENCH_COMPARE_DIR").map(PathBuf::from);
    let mut present: Vec<(String, PathBuf, &str, Event)> = Vec::new();
    for (b, ev) in FUNCTIONS.iter().copied() {
        if !dir.join(b).exists() {
            println!("  {b}: not built (scripts/bench.sh builds every function)");
            continue;
        }
        if let Some(old) = before.as_ref().map(|d| d.join(b)).filter(|p| p.exists()) {
            present.push((format!("{b}@before"), old, b, ev));
        }
        present.push((b.to_string(), dir.join(b), b, ev));
    }
    let mut runs: Vec<Vec<Run>> = present.iter().map(|_| Vec::new()).collect();
    // Alternating: run i of every binary before run i+1 of any, so drift hits all alike.
    for _ in 0..RUNS {
        for (i, (_, path, b, ev)) in present.iter().enumerate() {
            let vars = template_env(&env, b);
            runs[i].push(cold_start(path, &vars, ev.payload()).await);
        }
    }
    let hello_p50 = present.iter().position(|(label, ..)| label == "hello-lambda").map(|i| p50(&runs[i]));
    println!("\n{RUNS} alternating cold starts per binary (spawn → first response), release profile, stripped:");
    println!(
        "  {:<30} {:>9} {:>10} {:>9} {:>9} {:>8} {:>9} {:>10}",
        "binary", "size MiB", "p50 ms", "min ms", "max ms", "× hello", "peak MiB", "log lines"
    );
    for (i, (label, path, b, _)) in present.iter().enumerate() {
        let size = std::fs::metadata(path).unwrap().len() as f64 / 1024.0 / 1024.0;
        let mut t: Vec<Duration> = runs[i].iter().map(|r| r.elapsed).collect();
        t.sort();
        let peak = runs[i].iter().map(|r| r.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
        let ratio = hello_p50.map(|h| ms(t[RUNS / 2]) / ms(h)).unwrap_or(f64::NAN);
        let log_lines: usize = runs[i].iter().map(|r| r.log_lines).sum();
        println!(
            "  {label:<30} {size:>9.2} {:>10.2} {:>9.2} {:>9.2} {ratio:>8.2} {peak:>9.1} {log_lines:>10}",
            ms(t[RUNS / 2]),
            ms(t[0]),
            ms(t[RUNS - 1])
        );
        if *b != "hello-lambda" {
            assert!(
                runs[i].iter().all(|r| r.json_logs),
                "{b}: a log line that is not JSON with AWS_LAMBDA_LOG_FORMAT=JSON"
            );
        }
    }
    // auth answering a real request: JWT check, user lookup, one tenant transaction.
    if dir.join("auth").exists() {
        let vars = template_env(&env, "auth");
        let mut t: Vec<Duration> = Vec::new();
        for _ in 0..RUNS {
            let event = http_event("GET", "/auth/me", Some(&tenant.admin_token));
            t.push(cold_start(&dir.join("auth"), &vars, event).await.elapsed);
        }
        t.sort();
        println!(
            "  auth, GET /auth/me with a token (incl. connecting to PostgreSQL): p50={:.2} ms min={:.2} ms max={:.2} ms",
            ms(t[RUNS / 2]),
            ms(t[0]),
            ms(t[RUNS - 1])
        );
    }
}

fn p50(runs: &[Run]) -> Duration {
    let mut t: Vec<Duration> = runs.iter().map(|r| r.elapsed).collect();
    t.sort();
    t[t.len() / 2]
}
