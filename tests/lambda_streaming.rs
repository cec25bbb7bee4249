//! The `widget-stream` function under the real Lambda runtime client (lambda_http's
//! `run_with_streaming_response`), talking to a local server that plays the Lambda Runtime
//! API: it hands out the recorded function-URL event in `events/widget-stream.json` and reads
//! the streamed response (metadata prelude, eight NUL bytes, then the body) as it arrives.
//!
//! The chat model here stops after its first piece of text until the test has seen that
//! piece arrive at the Runtime API, so the test passes only if the answer really streams: a
//! buffered response would never deliver the first piece and the test would time out.
//!
//! Its own test binary, because the runtime client reads its endpoint from the environment.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use chatapp::chat::model::{ChatAnswer, ChatError, ChatModel, ChatRequest, DeltaSink, Usage};
use chatapp_functions::http_function::{serve_widget_streaming, HttpFunction};
use chatapp_tests::{Req, TestEnv};
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const FIRST: &str = "Refunds take five business days";
const REST: &str = " and go back to the original payment method.";

/// Streams its first piece, then waits for the test before finishing.
struct GatedModel {
    gate: Arc<Notify>,
}

#[async_trait::async_trait]
impl ChatModel for GatedModel {
    fn name(&self) -> &str {
        "gated"
    }
    async fn complete(&self, _req: &ChatRequest, on_delta: DeltaSink<'_>) -> Result<ChatAnswer, ChatError> {
        on_delta(FIRST);
        self.gate.notified().await;
        on_delta(REST);
        Ok(ChatAnswer {
            text: format!("{FIRST}{REST}"),
            model: "gated".into(),
            usage: Usage { input_tokens: 40, output_tokens: 12 },
            finish_reason: Some("stop".into()),
            extractive: false,
            tool_calls: Vec::new(),
        })
    }
}

/// What the fake Runtime API saw.
#[derive(Debug)]
enum Seen {
    ResponseStarted { mode: Option<String>, content_type: Option<String> },
    Chunk(Bytes),
    ResponseEnded,
    Error(String),
}

/// The Runtime API: one invocation per event, in order, then `next` blocks (as it does
/// between invocations of a real function).
async fn runtime_api(events: Vec<String>) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, rx) = mpsc::unbounded_channel();
    let events = Arc::new(events);
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let (event, seen, served) = (events.clone(), seen.clone(), served.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let (event, seen, served) = (event.clone(), seen.clone(), served.clone());
                    async move { Ok::<_, Infallible>(runtime_route(req, &event, &seen, &served).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    (addr, rx)
}

async fn runtime_route(
    req: hyper::Request<Incoming>,
    events: &[String],
    seen: &mpsc::UnboundedSender<Seen>,
    served: &std::sync::atomic::AtomicUsize,
) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let ok = |status: u16, body: &str| {
        hyper::Response::builder().status(status).body(Full::new(Bytes::from(body.to_string()))).unwrap()
    };
    if path == "/2018-06-01/runtime/invocation/next" {
        let n = served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let Some(event) = events.get(n) else {
            std::future::pending::<()>().await;
            unreachable!()
        };
        let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
        return hyper::Response::builder()
            .status(200)
            .header("lambda-runtime-aws-request-id", format!("4f1e2d3c-5b6a-4978-8c9d-{n:012}"))
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:widget-stream",
            )
            .header("lambda-runtime-trace-id", "Root=1-6744a1b2-3c4d5e6f7a8b9c0d1e2f3a4b;Sampled=0")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(event.clone())))
            .unwrap();
    }
    if path.ends_with("/response") {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let _ = seen.send(Seen::ResponseStarted {
            mode: header("lambda-runtime-function-response-mode"),
            content_type: header("content-type"),
        });
        let mut body = req.into_body();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Ok(data) = f.into_data() {
                        let _ = seen.send(Seen::Chunk(data));
                    }
                }
                Err(e) => {
                    let _ = seen.send(Seen::Error(e.to_string()));
                    break;
                }
            }
        }
        let _ = seen.send(Seen::ResponseEnded);
        return ok(202, r#"{"status":"OK"}"#);
    }
    if path.ends_with("/error") {
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let _ = seen.send(Seen::Error(String::from_utf8_lossy(&body).into_owned()));
        return ok(202, r#"{"status":"OK"}"#);
    }
    ok(404, "{}")
}

/// Reads what the Runtime API receives until `done` says the bytes so far are enough.
async fn read_until(rx: &mut mpsc::UnboundedReceiver<Seen>, body: &mut Vec<u8>, done: impl Fn(&[u8]) -> bool) {
    while !done(body) {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(Seen::Chunk(c))) => body.extend_from_slice(&c),
            Ok(Some(Seen::ResponseStarted { .. })) => {}
            Ok(Some(Seen::Error(e))) => panic!("the function reported an error: {e}"),
            Ok(Some(other)) => panic!("unexpected {other:?}; body so far: {}", String::from_utf8_lossy(body)),
            Ok(None) => panic!("runtime API stopped"),
            Err(_) => panic!("nothing streamed within 30 s; body so far: {}", String::from_utf8_lossy(body)),
        }
    }
}

/// One whole response: its prelude and its body.
async fn whole_response(rx: &mut mpsc::UnboundedReceiver<Seen>) -> (Value, String) {
    let mut bytes = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(Seen::ResponseStarted { mode, .. })) => assert_eq!(mode.as_deref(), Some("streaming")),
            Ok(Some(Seen::Chunk(c))) => bytes.extend_from_slice(&c),
            Ok(Some(Seen::ResponseEnded)) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let split = bytes.windows(8).position(|w| w == [0u8; 8]).expect("prelude delimiter");
    (serde_json::from_slice(&bytes[..split]).unwrap(), String::from_utf8(bytes[split + 8..].to_vec()).unwrap())
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_chat_turn_streams_through_lambda_response_streaming() {
    let mut env = TestEnv::new().await;
    let gate = Arc::new(Notify::new());
    env.deps.chat = Arc::new(GatedModel { gate: gate.clone() });
    let t = env.company("acme", "starter").await;
    let agent: Uuid = env
        .owner()
        .await
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, rag_enabled) VALUES ($1, 'Ada', 'active', false)
             RETURNING id",
            &[&t.company_id],
        )
        .await
        .unwrap()
        .get(0);
    let r =
        env.send(HttpFunction::Widget, Req::post(&format!("/widget/agents/{agent}/sessions")).json(json!({}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let conversation = r.body["conversation_id"].as_str().unwrap().to_string();
    let token = r.body["session_token"].as_str().unwrap().to_string();

    let event = std::fs::read_to_string(format!("{ROOT}/events/widget-stream.json"))
        .unwrap()
        .replace("__CONVERSATION_ID__", &conversation)
        .replace("__SESSION_TOKEN__", &token);
    // Before the recorded turn: the browser's preflight, and a send the handler refuses.
    let mut preflight: Value = serde_json::from_str(&event).unwrap();
    preflight["requestContext"]["http"]["method"] = json!("OPTIONS");
    preflight["headers"]["access-control-request-method"] = json!("POST");
    preflight["headers"].as_object_mut().unwrap().remove("authorization");
    preflight["body"] = Value::Null;
    let mut empty: Value = serde_json::from_str(&event).unwrap();
    empty["body"] = json!(r#"{"content":"   "}"#);
    let (addr, mut seen) = runtime_api(vec![preflight.to_string(), empty.to_string(), event]).await;
    // Read by the runtime client when it starts (this test binary runs nothing else).
    std::env::set_var("AWS_LAMBDA_RUNTIME_API", addr.to_string());
    std::env::set_var("AWS_LAMBDA_FUNCTION_NAME", "widget-stream");
    std::env::set_var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024");
    std::env::set_var("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
    std::env::remove_var("AWS_LAMBDA_MAX_CONCURRENCY");
    // The runtime client runs beside the checks in this task (its future is not `Send`).
    let serving = serve_widget_streaming(env.deps.clone());
    tokio::pin!(serving);
    let checks = async {
        let (prelude, _) = whole_response(&mut seen).await;
        assert_eq!(prelude["statusCode"], 204, "{prelude}");
        assert_eq!(prelude["headers"]["access-control-allow-origin"], "https://shop.example.com", "{prelude}");
        assert!(prelude["headers"]["access-control-allow-headers"].as_str().unwrap().contains("authorization"));
        let (prelude, body) = whole_response(&mut seen).await;
        assert_eq!(prelude["statusCode"], 400, "{prelude}");
        assert_eq!(prelude["headers"]["content-type"], "application/json", "{prelude}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], "validation_failed", "{body}");

        match tokio::time::timeout(Duration::from_secs(30), seen.recv()).await {
            Ok(Some(Seen::ResponseStarted { mode, content_type })) => {
                assert_eq!(mode.as_deref(), Some("streaming"));
                assert_eq!(content_type.as_deref(), Some("application/vnd.awslambda.http-integration-response"));
            }
            other => panic!("expected a streamed response, got {other:?}"),
        }
        // The prelude (status and headers for the function URL), then eight NUL bytes.
        let mut body = Vec::new();
        read_until(&mut seen, &mut body, |b| b.windows(8).any(|w| w == [0u8; 8])).await;
        let split = body.windows(8).position(|w| w == [0u8; 8]).unwrap();
        let prelude: Value = serde_json::from_slice(&body[..split]).unwrap();
        assert_eq!(prelude["statusCode"], 200, "{prelude}");
        assert_eq!(prelude["headers"]["content-type"], "text/event-stream", "{prelude}");
        assert_eq!(prelude["headers"]["access-control-allow-origin"], "https://shop.example.com", "{prelude}");
        let mut events = body[split + 8..].to_vec();

        // The first piece arrives while the model is still generating...
        read_until(&mut seen, &mut events, |b| contains(b, FIRST)).await;
        assert!(!contains(&events, "event: done"), "{}", String::from_utf8_lossy(&events));
        // ...and the rest once it is let go.
        gate.notify_one();
        read_until(&mut seen, &mut events, |b| contains(b, "event: done")).await;
        let text = String::from_utf8(events).unwrap();
        assert!(text.starts_with("event: delta\ndata: "), "{text}");
        assert!(text.contains(REST), "{text}");
        let done: Value =
            serde_json::from_str(text.split("event: done\ndata: ").nth(1).unwrap().split("\n\n").next().unwrap())
                .unwrap();
        assert_eq!(done["reply"]["content"], format!("{FIRST}{REST}"));
        assert_eq!(done["message"]["content"], "How long do refunds take?");
        match tokio::time::timeout(Duration::from_secs(30), seen.recv()).await {
            Ok(Some(Seen::ResponseEnded)) => {}
            other => panic!("expected the response to end, got {other:?}"),
        }
    };
    tokio::select! {
        stopped = &mut serving => panic!("the runtime client stopped: {stopped:?}"),
        () = checks => {}
    }

    // Both messages are stored, the answer with its model and token counts.
    let rows = env
        .owner()
        .await
        .query(
            "SELECT role::text, content, metadata FROM chatapp_messages WHERE conversation_id = $1::text::uuid
             ORDER BY created_at",
            &[&conversation],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].get::<_, String>(1), format!("{FIRST}{REST}"));
    let meta: Value = rows[1].get(2);
    assert_eq!(meta["model"], "gated");
    assert_eq!(meta["tokens_out"], 12);
}
