//! Encrypted secrets never reach the process logs. Each test captures everything logged on its
//! thread (a `tracing_subscriber::fmt` subscriber at TRACE for every target, spans included,
//! set as the thread's default for the test; the runtime is current-thread, so every task the
//! code spawns runs, and logs, there too) while it drives the secrets through the paths where
//! failures get logged, then checks the capture holds the failure's log lines and none of the
//! secrets: a company's provider key (its test refused, a turn whose model fails), an HTTP
//! action's header values and signing secret (an action answering 500, one whose host does not
//! resolve), and a Telegram bot token (its check refused, a reply the provider refuses).

use std::sync::{Arc, Mutex, PoisonError};

use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::model_server::*;
use chatapp_tests::widget::{say, session, widget_agent};
use chatapp_tests::{run_channel_workers, Req, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use tracing_subscriber::fmt::format::FmtSpan;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// In every secret below, and in nothing else these tests send or log.
const MARKER: &str = "LEAKCHECK";
const PROVIDER_KEY: &str = "sk-LEAKCHECK-provider-0123456789";
const HEADER_VALUE: &str = "hdr-LEAKCHECK-9876543210";
const BEARER_TOKEN: &str = "LEAKCHECK-bearer-5555666677";
/// The bot id (before ':') is public, shown as the hint; the rest is the secret.
const BOT_TOKEN: &str = "987654321:LEAKCHECK-tg-AAbbCCddEEff0123456789";
const BOT_SECRET: &str = "LEAKCHECK-tg-AAbbCCddEEff0123456789";

// ---------------------------------------------------------------------------------------------
// The capture
// ---------------------------------------------------------------------------------------------

type Buffer = Arc<Mutex<Vec<u8>>>;

/// Appends what the subscriber writes to the shared buffer.
struct BufferWriter(Buffer);

impl std::io::Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged on this thread, at every level and for every target, while it lives.
struct LogCapture {
    buffer: Buffer,
    _guard: tracing::subscriber::DefaultGuard,
}

impl LogCapture {
    fn start() -> Self {
        let buffer: Buffer = Arc::default();
        let shared = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
            .with_writer(move || BufferWriter(shared.clone()))
            .finish();
        Self { buffer, _guard: tracing::subscriber::set_default(subscriber) }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

/// The end of a long capture, for a failure message.
fn tail(logs: &str) -> &str {
    let mut start = logs.len().saturating_sub(20_000);
    while !logs.is_char_boundary(start) {
        start += 1;
    }
    &logs[start..]
}

/// The capture worked (it holds each of `expected`) and holds none of `secrets`, nor the marker
/// every secret carries.
fn assert_logs_clean(logs: &str, expected: &[&str], secrets: &[&str]) {
    assert!(!logs.is_empty(), "nothing was captured: the capture is broken");
    for &line in expected {
        assert!(logs.contains(line), "the logs should hold {line:?}; the end of what was captured:\n{}", tail(logs));
    }
    for secret in secrets.iter().copied().chain(std::iter::once(MARKER)) {
        let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "{secret:?} in the logs:\n{}", leaks.join("\n"));
    }
}

/// None of `secrets`, nor the marker, in `text` (a response, stored rows, a request sent).
fn assert_hidden(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets.iter().copied().chain(std::iter::once(MARKER)) {
        assert!(!text.contains(secret), "{secret:?} in {what}: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// The platform's side
// ---------------------------------------------------------------------------------------------

/// A test environment whose platform model is OpenAI's API at `base` (`{uri}/v1`).
async fn openai_env(base: &str) -> TestEnv {
    TestEnv::with(&[
        ("CHAT_PROVIDER", "openai"),
        ("CHAT_BASE_URL", base),
        ("CHAT_API_KEY", "sk-platform-key"),
        ("CHAT_MODEL", "gpt-4o-mini"),
    ])
    .await
}

/// Creates an action of `agent` through the agents route; returns its signing secret (shown
/// only at creation).
async fn create_action(env: &TestEnv, t: &Tenant, agent: Uuid, body: Value) -> String {
    let r = env
        .send(
            HttpFunction::AgentActions,
            Req::post(&format!("/admin/agents/{agent}/actions")).token(&t.admin_token).json(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_hidden("the created action", &r.body["action"].to_string(), &[HEADER_VALUE, BEARER_TOKEN]);
    r.body["signing_secret"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn provider_keys_never_reach_the_logs() {
    let logs = LogCapture::start();
    // The company's endpoint refuses the key's test and fails every completion.
    let own = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {
            "message": "Incorrect API key provided.", "type": "invalid_request_error", "code": "invalid_api_key"}})))
        .mount(&own)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": {
            "message": "The server had an error while processing your request.", "type": "server_error"}})))
        .mount(&own)
        .await;
    // The platform's endpoint (the company's key replaces it for the company's turns).
    let platform = MockServer::start().await;
    let env = openai_env(&format!("{}/v1", platform.uri())).await;
    let t = env.company("leak-keys", "starter").await;
    let agent = widget_agent(&env, &t, false, json!([])).await;

    let created = env
        .send(
            HttpFunction::ProviderKeys,
            Req::post("/admin/provider-keys").token(&t.admin_token).json(json!({
                "name": "Our OpenAI account", "provider": "openai", "base_url": format!("{}/v1", own.uri()),
                "api_key": PROVIDER_KEY
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_hidden("the created key", &created.body.to_string(), &[PROVIDER_KEY]);
    let id = created.body["id"].as_str().unwrap().to_string();

    // Test connection: the provider refuses the key; the outcome is answered, not an error.
    let tested = env
        .send(HttpFunction::ProviderKeys, Req::post(&format!("/admin/provider-keys/{id}/test")).token(&t.admin_token))
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.body);
    assert_eq!(tested.body["ok"], false, "{}", tested.body);
    assert!(tested.body["error"].as_str().is_some_and(|e| e.contains("401")), "{}", tested.body);
    assert_hidden("the test's answer", &tested.body.to_string(), &[PROVIDER_KEY]);

    // A turn on the company's key: the model fails (retried, then given up) and the customer
    // gets the fallback.
    let (conversation, token) = session(&env, agent).await;
    let r = say(&env, conversation, &token, "How long do refunds take?").await;
    assert_eq!(r["reply"]["metadata"]["kind"], "fallback", "{r}");
    assert_hidden("the turn's answer", &r.to_string(), &[PROVIDER_KEY]);
    // The failing model was called with the company's key: the secret was in play.
    let seen = own.received_requests().await.unwrap();
    let completions: Vec<&Request> = seen.iter().filter(|q| q.url.path() == "/v1/chat/completions").collect();
    assert!(!completions.is_empty(), "the company's endpoint answered the turn");
    for q in completions {
        assert_eq!(header_of(q, "authorization"), format!("Bearer {PROVIDER_KEY}"));
    }

    assert_logs_clean(
        &logs.text(),
        &["chat request failed; retrying", "chat model failed; sent the fallback response"],
        &[PROVIDER_KEY],
    );
}

#[tokio::test(flavor = "current_thread")]
async fn action_secrets_never_reach_the_logs() {
    let logs = LogCapture::start();
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .respond_with(ResponseTemplate::new(500).set_body_string("internal error"))
        .mount(&api)
        .await;
    // The model calls the failing action, then the unreachable one, then answers.
    let model = model_server(Provider::OpenAi, |n, _| match n {
        0 => openai_call("call_order_1", "get_order", r#"{"order_id":"A1"}"#),
        1 => openai_call("call_stock_1", "check_stock", r#"{"sku":"B2"}"#),
        _ => openai_answer("Sorry, I can't look that up right now."),
    })
    .await;
    let env = openai_env(&format!("{}/v1", model.uri())).await;
    let t = env.company("leak-actions", "starter").await;
    let agent = widget_agent(&env, &t, false, json!([])).await;
    let order_secret = create_action(
        &env,
        &t,
        agent,
        json!({
            "name": "get_order", "description": "Looks an order up by its id.",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
            "url": format!("{}/orders", api.uri()), "method": "POST", "headers": {"X-Api-Key": HEADER_VALUE},
            "timeout_ms": 3000
        }),
    )
    .await;
    let stock_secret = create_action(
        &env,
        &t,
        agent,
        json!({
            "name": "check_stock", "description": "Says whether an item is in stock.",
            "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]},
            "url": "http://no-such-host.invalid/stock", "method": "GET",
            "headers": {"Authorization": format!("Bearer {BEARER_TOKEN}")}, "timeout_ms": 3000
        }),
    )
    .await;
    let secrets = [
        HEADER_VALUE,
        BEARER_TOKEN,
        order_secret.as_str(),
        order_secret.trim_start_matches("whsec_"),
        stock_secret.as_str(),
        stock_secret.trim_start_matches("whsec_"),
    ];

    let (conversation, token) = session(&env, agent).await;
    let r = say(&env, conversation, &token, "Where is my order A1, and is B2 in stock?").await;
    assert_eq!(r["reply"]["content"], "Sorry, I can't look that up right now.", "{r}");
    assert_eq!(r["reply"]["metadata"]["tool_calls"], 2, "{r}");
    assert_hidden("the turn's answer", &r.to_string(), &secrets);
    // The action server got the header: the secrets were in play.
    let calls = api.received_requests().await.unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(header_of(&calls[0], "x-api-key"), HEADER_VALUE);

    // Both failures stored for the support team, without the secrets.
    let stored = tool_messages(&env, conversation).await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    for (content, meta) in &stored {
        assert_eq!(meta["is_error"], true, "{meta}");
        assert_hidden("a stored tool message", &format!("{content} {meta}"), &secrets);
    }
    let order = stored.iter().find(|(_, m)| m["tool"] == "get_order").expect("the get_order call");
    assert_eq!(order.1["result"], "HTTP 500: internal error", "{}", order.1);
    let stock = stored.iter().find(|(_, m)| m["tool"] == "check_stock").expect("the check_stock call");
    assert!(stock.1["error"].as_str().is_some_and(|e| !e.is_empty()), "{}", stock.1);
    // Nor what the model was told.
    for body in model_requests(&model).await {
        assert_hidden("a model request", &body.to_string(), &secrets);
    }

    assert_logs_clean(&logs.text(), &["http action called", "ok=false"], &secrets);
}

#[tokio::test(flavor = "current_thread")]
async fn channel_credentials_never_reach_the_logs() {
    let logs = LogCapture::start();
    // Every Bot API method refuses the token (it travels in the URL path: /bot<token>/<method>).
    let telegram = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"ok": false, "error_code": 401, "description": "Unauthorized"})),
        )
        .mount(&telegram)
        .await;
    let telegram_url = telegram.uri();
    let env = TestEnv::with(&[
        ("CHANNEL_TELEGRAM_URL", telegram_url.as_str()),
        ("PUBLIC_API_URL", "https://hooks.example.test"),
    ])
    .await;
    let t = env.company("leak-channels", "enterprise").await;
    let agent: Uuid = env
        .owner()
        .await
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, system_prompt)
             VALUES ($1, 'Ada', 'active', 'You help customers of Acme.') RETURNING id",
            &[&t.company_id],
        )
        .await
        .unwrap()
        .get(0);
    let secrets = [BOT_TOKEN, BOT_SECRET];

    let created = env
        .send(
            HttpFunction::Channels,
            Req::post("/admin/channels").token(&t.admin_token).json(json!({
                "agent_id": agent, "channel": "telegram", "name": "Telegram line",
                "credentials": {"bot_token": BOT_TOKEN}
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_hidden("the created channel", &created.body.to_string(), &secrets);
    let id: Uuid = created.body["channel"]["id"].as_str().unwrap().parse().unwrap();
    let secret_token = created.body["secret_token"].as_str().expect("the secret token, shown once").to_string();

    // The check: getMe refused; the outcome is answered, not an error.
    let checked =
        env.send(HttpFunction::Channels, Req::post(&format!("/admin/channels/{id}/check")).token(&t.admin_token)).await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.body);
    assert_eq!(checked.body["ok"], false, "{}", checked.body);
    assert!(checked.body["error"].as_str().is_some_and(|e| e.contains("Unauthorized")), "{}", checked.body);
    assert_hidden("the check's answer", &checked.body.to_string(), &secrets);

    // A customer's message: its typing indicator and its reply are refused too.
    let update =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/channels/telegram-text.json"))
            .expect("the recorded Telegram update");
    let r = env
        .send(
            HttpFunction::Telegram,
            Req::post(&format!("/channels/telegram/{id}"))
                .bytes(&update, "application/json")
                .header("x-telegram-bot-api-secret-token", &secret_token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["stored"], 1, "{}", r.body);
    let (turns, sends) = run_channel_workers(&env).await;
    assert_eq!(turns, 1);
    assert!(sends >= 1, "the reply's delivery was attempted");
    // The token went to the provider (the secret was in play) on every call.
    let paths: Vec<String> =
        telegram.received_requests().await.unwrap().iter().map(|q| q.url.path().to_string()).collect();
    for call in ["getMe", "sendChatAction", "sendMessage"] {
        assert!(paths.contains(&format!("/bot{BOT_TOKEN}/{call}")), "{call}: {paths:?}");
    }
    // The deliveries failed with the provider's refusal, recorded without the token.
    let rows = env
        .owner()
        .await
        .query(
            "SELECT status, error_code, row_to_json(d)::text FROM chatapp_channel_deliveries d WHERE company_id = $1",
            &[&t.company_id],
        )
        .await
        .unwrap();
    assert!(!rows.is_empty(), "a delivery row");
    for row in &rows {
        let (status, code, text): (String, Option<String>, String) = (row.get(0), row.get(1), row.get(2));
        assert_eq!((status.as_str(), code.as_deref()), ("failed", Some("401")), "{text}");
        assert_hidden("a delivery row", &text, &secrets);
    }

    assert_logs_clean(
        &logs.text(),
        &["webhook accepted", "typing indicator not sent", "channel reply handled"],
        &secrets,
    );
}
