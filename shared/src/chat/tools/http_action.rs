//! Calls one of an agent's HTTP actions (`crate::repo::actions`, defined by company admins in
//! `functions/agent-actions/handler.rs`) with the arguments the model chose, and says what happened in
//! words the model can read. It never fails and never panics: every failure (secrets that do not
//! open, an address that is not public, a refused connection, a timeout, a non-2xx answer) is an
//! [`ActionOutcome`] with `ok: false`, so a tool's failure never costs the customer's message.
//!
//! # Where a call may go
//!
//! Unless `HTTP_ACTIONS_ALLOW_PRIVATE` is on ([`Config::http_actions_allow_private`], the
//! default off AWS Lambda so local servers can be called), a call never reaches an address
//! [`forbidden_ip`] refuses: loopback (127.0.0.0/8, ::1), private (10.0.0.0/8, 172.16.0.0/12,
//! 192.168.0.0/16), shared (CGNAT 100.64.0.0/10), link-local (169.254.0.0/16, fe80::/10: where
//! cloud metadata services answer), unspecified and "this network" (0.0.0.0/8, ::), broadcast,
//! multicast, unique-local (fc00::/7), and the IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
//! (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) forms of these IPv4 addresses.
//!
//! - A URL whose host is such an address fails at once, no request made: "the action's
//!   address is not public".
//! - A host name is resolved by [`PublicResolver`], which drops such addresses and fails when
//!   none is left; the connection goes only to the addresses it kept. The name is resolved again
//!   at every call, so one pointed (or rebound) at a private address after the action was saved
//!   is refused too.
//! - That client uses no proxy (a proxy would resolve the name itself, unchecked).
//!
//! Saving an action (`functions/agent-actions/handler.rs`) refuses a URL whose host is literally such
//! an address; a name is checked only here, at each call, since what it resolves to can change.
//!
//! # The request
//!
//! - `GET` and `DELETE`: the arguments' top-level scalar values (strings, numbers, booleans) are
//!   appended to the URL's query (nested values and nulls are left out); no body.
//! - `POST`, `PUT` and `PATCH`: the arguments as a JSON body (`Content-Type: application/json`).
//! - The action's headers (unsealed), `X-Chatapp-Call-Id` (the model's id of the call),
//!   `X-Chatapp-Conversation-Id`, and `X-Chatapp-Signature: t=<unix seconds>,v1=<hex>` where
//!   `<hex>` is the lowercase hex HMAC-SHA256 of `"<t>.<body>"` keyed with the action's signing
//!   secret (its UTF-8 bytes, `whsec_` prefix included) and `<body>` the exact bytes sent; for
//!   `GET` and `DELETE`, which send no body, the URL's query as sent (the text after `?`, empty
//!   when there is none), so the arguments are signed whichever way they travel. A receiver
//!   recomputes it, compares in constant time, and refuses timestamps more than a few minutes old.
//! - The whole exchange takes at most the action's `timeout_ms`. Redirects are not followed
//!   ([`client`] does not follow them); a 3xx is a failure like any non-2xx.
//!
//! # The outcome
//!
//! `content` is the response body (at most [`MAX_CONTENT_BYTES`], cut on a character boundary
//! and marked `[truncated]`), `HTTP <status>: <body>` for a non-2xx answer, `timed out after N
//! ms`, or a short description of what failed. Header values and the signing secret are blanked
//! out of it, should the server echo them.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use uuid::Uuid;

pub use super::public_address::{forbidden_ip, PublicResolver};
use super::public_address::{literal_ip, NOT_PUBLIC};
use crate::config::Config;
use crate::repo::actions::ActionSecrets;
use crate::sealed::SealingKey;

/// The signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub const SIGNATURE_HEADER: &str = "x-chatapp-signature";
/// The model's id of the call (what the tool message answers).
pub const CALL_ID_HEADER: &str = "x-chatapp-call-id";
/// The conversation the call is made for.
pub const CONVERSATION_HEADER: &str = "x-chatapp-conversation-id";
/// The most of the answer kept in [`ActionOutcome::content`], in bytes.
pub const MAX_CONTENT_BYTES: usize = 16 * 1024;
/// How a cut answer ends.
const TRUNCATED: &str = "\n[truncated]";
/// The bounds of an action's timeout, in milliseconds (as migration 0025 checks them).
const MIN_TIMEOUT_MS: u64 = 100;
const MAX_TIMEOUT_MS: u64 = 10_000;
/// The most of a connection error's text kept.
const MAX_ERROR_CHARS: usize = 300;
/// Secrets shorter than this are not blanked out of answers (too likely to match ordinary text).
const MIN_REDACTED: usize = 8;
/// The most of the model's call id sent.
const MAX_CALL_ID: usize = 200;
/// One call of an action, as the chat turn makes it.
pub struct ActionCall<'a> {
    /// The action and its sealed secrets (`crate::repo::actions::enabled_for_agent`).
    pub action: &'a ActionSecrets,
    /// The arguments the model passed (parsed JSON, normally an object).
    pub arguments: &'a Value,
    /// The action's company: the secrets are sealed under it.
    pub company_id: Uuid,
    pub conversation_id: Uuid,
    /// The model's id of the call.
    pub call_id: &'a str,
}

/// What a call gave: what the model is told, and what the tool message stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOutcome {
    /// The server answered 2xx.
    pub ok: bool,
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// The body (at most [`MAX_CONTENT_BYTES`]), or what failed.
    pub content: String,
    pub latency_ms: u64,
}

/// The HTTP client actions are called with: redirects are not followed (an action's headers go
/// only to the URL they were entered for), connections are given 5 s. Unless `allow_private`,
/// host names are resolved by [`PublicResolver`] and no proxy is used (see the module
/// documentation). Each of the two is built once per process.
pub fn client(allow_private: bool) -> reqwest::Client {
    static ANY: OnceLock<reqwest::Client> = OnceLock::new();
    static PUBLIC: OnceLock<reqwest::Client> = OnceLock::new();
    let build = |public: bool| {
        let mut builder = crate::outbound_http::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5));
        if public {
            builder = builder.dns_resolver(PublicResolver).no_proxy();
        }
        builder.build().expect("HTTP client with rustls")
    };
    if allow_private {
        ANY.get_or_init(|| build(false)).clone()
    } else {
        PUBLIC.get_or_init(|| build(true)).clone()
    }
}

/// The `X-Chatapp-Signature` value of `body` sent at `timestamp` (unix seconds).
pub fn signature_header(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let v1 = crate::channels::hmac_sha256_hex(secret.as_bytes(), &[t.as_bytes(), b".".as_slice(), body]);
    format!("t={t},v1={v1}")
}

/// Calls the action (see the module documentation) with the platform's sealing key
/// (`SECRETS_KEY`), to public addresses only unless `HTTP_ACTIONS_ALLOW_PRIVATE` is on.
pub async fn call(cfg: &Config, call: ActionCall<'_>) -> ActionOutcome {
    let key = SealingKey::new(cfg.secrets_key.expose());
    call_with(&key, cfg.http_actions_allow_private, call).await
}

/// [`call`] with a given key, to any address when `allow_private`, else to public ones only.
pub async fn call_with(key: &SealingKey, allow_private: bool, call: ActionCall<'_>) -> ActionOutcome {
    let started = Instant::now();
    let (ok, status, content) = execute(key, allow_private, &call).await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let action = &call.action.action;
    tracing::info!(
        action.id = %action.id,
        action.name = %action.name,
        company.id = %call.company_id,
        conversation.id = %call.conversation_id,
        ok,
        status = ?status,
        latency_ms,
        "http action called"
    );
    ActionOutcome { ok, status, content, latency_ms }
}

/// (ok, status, content) of one call.
async fn execute(key: &SealingKey, allow_private: bool, call: &ActionCall<'_>) -> (bool, Option<u16>, String) {
    let action = &call.action.action;
    let (headers, secret) = match open_secrets(key, call.company_id, call.action) {
        Ok(opened) => opened,
        Err(message) => return (false, None, message.to_string()),
    };
    let redactor = Redactor::new(&headers, &secret);
    let Some(method) = method_of(&action.method) else {
        return (false, None, format!("the action's method {} is not supported", action.method));
    };
    let Ok(mut url) = url::Url::parse(&action.url) else {
        return (false, None, "the action's URL is not valid".to_string());
    };
    if !allow_private && literal_ip(&url).is_some_and(forbidden_ip) {
        let content = format!("{NOT_PUBLIC} (loopback, private, link-local and other internal addresses are refused)");
        return (false, None, content);
    }
    let in_query = method == reqwest::Method::GET || method == reqwest::Method::DELETE;
    let body = if in_query {
        let pairs = query_pairs(call.arguments);
        if !pairs.is_empty() {
            let mut query = url.query_pairs_mut();
            for (name, value) in &pairs {
                query.append_pair(name, value);
            }
        }
        Vec::new()
    } else {
        serde_json::to_vec(call.arguments).unwrap_or_else(|_| b"{}".to_vec())
    };
    // What the signature covers: the body, or for a body-less method the query that carries the
    // arguments (the URL is sent as `url.as_str()`, so this is the query the server receives).
    let signed: &[u8] = if in_query { url.query().unwrap_or("").as_bytes() } else { &body };
    let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let timeout_ms = u64::try_from(action.timeout_ms).unwrap_or(MIN_TIMEOUT_MS).clamp(MIN_TIMEOUT_MS, MAX_TIMEOUT_MS);
    let timeout = Duration::from_millis(timeout_ms);

    let mut request = client(allow_private).request(method, url.as_str()).timeout(timeout);
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_str());
    }
    request = request
        .header(SIGNATURE_HEADER, signature_header(&secret, timestamp, signed))
        .header(CALL_ID_HEADER, header_safe(call.call_id))
        .header(CONVERSATION_HEADER, call.conversation_id.to_string());
    if !in_query {
        request = request.header("content-type", "application/json").body(body);
    }

    let exchange = async {
        let response = request.send().await?;
        let status = response.status();
        let (bytes, cut) = read_limited(response, MAX_CONTENT_BYTES).await?;
        Ok::<_, reqwest::Error>((status, bytes, cut))
    };
    let timed_out = || (false, None, format!("timed out after {timeout_ms} ms"));
    let (status, bytes, cut) = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => return timed_out(),
        Ok(Err(e)) if e.is_timeout() => return timed_out(),
        Ok(Err(e)) => return (false, None, redactor.apply(&failure(e))),
        Ok(Ok(answer)) => answer,
    };
    let code = status.as_u16();
    let text = redactor.apply(&text_of(&bytes));
    let empty = text.trim().is_empty() && !cut;
    if status.is_success() {
        let content = if empty { format!("(empty response, HTTP {code})") } else { fit(text, cut) };
        return (true, Some(code), content);
    }
    let mut prefix = format!("HTTP {code}");
    if status.is_redirection() {
        prefix.push_str(" (redirects are not followed)");
    }
    let detail = if empty { "(empty response)".to_string() } else { text };
    (false, Some(code), fit(format!("{prefix}: {detail}"), cut))
}

/// An action's headers (name, value) and its signing secret, in the clear.
type OpenedSecrets = (Vec<(String, String)>, String);

/// The action's headers (name, value) and signing secret, opened under (company, action id).
fn open_secrets(key: &SealingKey, company: Uuid, secrets: &ActionSecrets) -> Result<OpenedSecrets, &'static str> {
    let id = secrets.action.id;
    let secret = key
        .open(company, id, &secrets.signing_secret_sealed)
        .ok()
        .and_then(|plain| String::from_utf8(plain).ok())
        .ok_or("the action's signing secret could not be opened")?;
    let headers = match &secrets.headers_sealed {
        None => Vec::new(),
        Some(sealed) => {
            let plain = key.open(company, id, sealed).map_err(|_| "the action's headers could not be opened")?;
            serde_json::from_slice::<BTreeMap<String, String>>(&plain)
                .map_err(|_| "the action's headers could not be read")?
                .into_iter()
                .collect()
        }
    };
    Ok((headers, secret))
}

fn method_of(method: &str) -> Option<reqwest::Method> {
    match method {
        "GET" => Some(reqwest::Method::GET),
        "POST" => Some(reqwest::Method::POST),
        "PUT" => Some(reqwest::Method::PUT),
        "PATCH" => Some(reqwest::Method::PATCH),
        "DELETE" => Some(reqwest::Method::DELETE),
        _ => None,
    }
}

/// The arguments' top-level scalars as query pairs (numbers and booleans as JSON writes them).
fn query_pairs(arguments: &Value) -> Vec<(String, String)> {
    let Some(map) = arguments.as_object() else { return Vec::new() };
    map.iter()
        .filter_map(|(name, value)| match value {
            Value::String(s) => Some((name.clone(), s.clone())),
            Value::Number(n) => Some((name.clone(), n.to_string())),
            Value::Bool(b) => Some((name.clone(), b.to_string())),
            _ => None,
        })
        .collect()
}

/// The model's call id as a header value: visible ASCII only, at most 200 characters.
fn header_safe(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_graphic).take(MAX_CALL_ID).collect()
}

/// At most `limit` bytes of the body, and whether there was more (the rest is not read).
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(out.len());
        if chunk.len() > room {
            out.extend_from_slice(&chunk[..room]);
            return Ok((out, true));
        }
        out.extend_from_slice(&chunk);
    }
    Ok((out, false))
}

/// The bytes as text; a character cut in two at the end (by [`read_limited`]) is dropped, other
/// invalid UTF-8 is replaced.
fn text_of(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(e) if e.error_len().is_none() => String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// `s` within [`MAX_CONTENT_BYTES`], cut on a character boundary and marked when it was cut
/// here or when the body was (`cut`).
fn fit(mut s: String, cut: bool) -> String {
    if !cut && s.len() <= MAX_CONTENT_BYTES {
        return s;
    }
    let mut end = (MAX_CONTENT_BYTES - TRUNCATED.len()).min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(TRUNCATED);
    s
}

/// What failed, without the URL (it may carry a key in its query).
fn failure(e: reqwest::Error) -> String {
    let e = e.without_url();
    let what = if e.is_dns() {
        "the action's host could not be resolved"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_builder() {
        "the request could not be built (check the action's URL and headers)"
    } else if e.is_body() || e.is_decode() {
        "the response could not be read"
    } else {
        "the request failed"
    };
    let detail: String = crate::error::error_chain(&e).chars().take(MAX_ERROR_CHARS).collect();
    format!("{what}: {detail}")
}

/// Blanks the action's secrets (header values, and their last word: the token of
/// `Bearer <token>`; the signing secret) out of text that goes to the model.
struct Redactor(Vec<String>);

impl Redactor {
    fn new(headers: &[(String, String)], secret: &str) -> Self {
        let mut secrets: Vec<String> = Vec::new();
        for value in headers.iter().map(|(_, v)| v.trim()).chain(std::iter::once(secret)) {
            for candidate in std::iter::once(value).chain(value.split_whitespace().last()) {
                if candidate.len() >= MIN_REDACTED && !secrets.iter().any(|s| s == candidate) {
                    secrets.push(candidate.to_string());
                }
            }
        }
        // Longest first: a secret containing another is blanked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor(secrets)
    }

    fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.0 {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use chrono::Utc;
    use hmac::{Hmac, Mac};
    use serde_json::json;

    use super::*;
    use crate::repo::actions::HttpAction;

    const SECRET: &str = "whsec_test-signing-secret-0123456789abcdef";
    const API_KEY: &str = "sk-live-action-header-value-42";

    /// A request the test server received.
    #[derive(Clone)]
    struct Seen {
        method: String,
        path: String,
        query: Option<String>,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    type Log = Arc<Mutex<Vec<Seen>>>;

    async fn respond(req: axum::extract::Request, log: Log) -> Response {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default().to_vec();
        let path = parts.uri.path().to_string();
        log.lock().unwrap().push(Seen {
            method: parts.method.to_string(),
            path: path.clone(),
            query: parts.uri.query().map(str::to_string),
            headers: parts.headers.clone(),
            body,
        });
        match path.as_str() {
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late".into_response()
            }
            "/fail" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
            "/empty-fail" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            "/big" => "é".repeat(20_000).into_response(),
            "/moved" => (StatusCode::FOUND, [("location", "/ok")], "").into_response(),
            "/echo" => format!("you sent {API_KEY} and {SECRET}").into_response(),
            "/nothing" => StatusCode::NO_CONTENT.into_response(),
            _ => axum::Json(json!({"ok": true})).into_response(),
        }
    }

    /// A local server recording every request: (its base URL, the log).
    async fn server() -> (String, Log) {
        let log: Log = Arc::default();
        let seen = log.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let seen = seen.clone();
            async move { respond(req, seen).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), log)
    }

    fn key() -> SealingKey {
        SealingKey::new(&[9u8; 32])
    }

    /// An action sealed under `company` with `key()`.
    fn action(company: Uuid, url: String, method: &str, headers: &[(&str, &str)], timeout_ms: i32) -> ActionSecrets {
        let id = Uuid::new_v4();
        let map: BTreeMap<&str, &str> = headers.iter().copied().collect();
        let headers_sealed =
            (!map.is_empty()).then(|| key().seal(company, id, &serde_json::to_vec(&map).unwrap()).unwrap());
        ActionSecrets {
            action: HttpAction {
                id,
                agent_id: Uuid::new_v4(),
                name: "lookup_order".into(),
                description: "Looks an order up".into(),
                parameters: json!({"type": "object"}),
                url,
                method: method.into(),
                header_names: map.keys().map(|k| k.to_string()).collect(),
                timeout_ms,
                enabled: true,
                created_by: None,
                created_at: Utc::now(),
                updated_at: Utc::now(),
            },
            headers_sealed,
            signing_secret_sealed: key().seal(company, id, SECRET.as_bytes()).unwrap(),
        }
    }

    /// A call allowed to reach the local test servers.
    async fn run(company: Uuid, action: &ActionSecrets, arguments: Value) -> ActionOutcome {
        run_with(company, action, arguments, true).await
    }

    async fn run_with(company: Uuid, action: &ActionSecrets, arguments: Value, allow_private: bool) -> ActionOutcome {
        let call_ = ActionCall {
            action,
            arguments: &arguments,
            company_id: company,
            conversation_id: Uuid::nil(),
            call_id: "call_abc123",
        };
        call_with(&key(), allow_private, call_).await
    }

    fn only(log: &Log) -> Seen {
        let seen = log.lock().unwrap();
        assert_eq!(seen.len(), 1, "requests: {:?}", seen.iter().map(|s| &s.path).collect::<Vec<_>>());
        seen[0].clone()
    }

    /// The signature verifies: recomputed here with the secret over `"<t>.<body received>"`, or
    /// for GET and DELETE over `"<t>.<query received>"`.
    fn assert_signed(seen: &Seen) {
        let header = seen.headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).expect("a signature");
        let (t, v1) = header.split_once(',').expect("t=...,v1=...");
        let t = t.strip_prefix("t=").expect("t=");
        let v1 = v1.strip_prefix("v1=").expect("v1=");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!(now.abs_diff(t.parse::<u64>().unwrap()) < 60, "t={t}");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        if seen.method == "GET" || seen.method == "DELETE" {
            mac.update(seen.query.as_deref().unwrap_or("").as_bytes());
        } else {
            mac.update(&seen.body);
        }
        assert_eq!(hex::encode(mac.finalize().into_bytes()), v1);
    }

    #[tokio::test]
    async fn a_post_sends_the_arguments_as_signed_json_with_the_headers() {
        let (base, log) = server().await;
        let company = Uuid::new_v4();
        let a = action(company, format!("{base}/orders"), "POST", &[("X-Api-Key", API_KEY)], 2000);
        let args = json!({"order": "A-1", "items": [1, 2], "rush": true});
        let out = run(company, &a, args.clone()).await;
        assert!(out.ok, "{out:?}");
        assert_eq!(out.status, Some(200));
        assert_eq!(out.content, r#"{"ok":true}"#);
        let seen = only(&log);
        assert_eq!((seen.method.as_str(), seen.path.as_str(), seen.query.as_deref()), ("POST", "/orders", None));
        assert_eq!(serde_json::from_slice::<Value>(&seen.body).unwrap(), args);
        assert_eq!(seen.headers["content-type"], "application/json");
        assert_eq!(seen.headers["x-api-key"], API_KEY);
        assert_eq!(seen.headers[CALL_ID_HEADER], "call_abc123");
        assert_eq!(seen.headers[CONVERSATION_HEADER], Uuid::nil().to_string().as_str());
        assert_signed(&seen);
        // PUT and PATCH send a body too.
        for method in ["PUT", "PATCH"] {
            let (base, log) = server().await;
            let a = action(company, format!("{base}/orders/1"), method, &[], 2000);
            assert!(run(company, &a, json!({"n": 1})).await.ok);
            let seen = only(&log);
            assert_eq!((seen.method.as_str(), seen.body.as_slice()), (method, br#"{"n":1}"#.as_slice()));
            assert_signed(&seen);
        }
    }

    #[tokio::test]
    async fn get_and_delete_send_top_level_scalars_as_the_query() {
        let company = Uuid::new_v4();
        for method in ["GET", "DELETE"] {
            let (base, log) = server().await;
            let a = action(company, format!("{base}/orders?fixed=1"), method, &[], 2000);
            let args = json!({"q": "a b&c", "n": 2.5, "flag": false, "nested": {"x": 1}, "list": [1], "none": null});
            let out = run(company, &a, args).await;
            assert!(out.ok, "{out:?}");
            let seen = only(&log);
            assert_eq!(seen.method, method);
            assert!(seen.body.is_empty());
            assert!(seen.headers.get("content-type").is_none());
            let query = seen.query.clone().unwrap();
            let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            let find = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            assert_eq!(find("fixed"), Some("1"), "the URL's own query is kept");
            assert_eq!(find("q"), Some("a b&c"));
            assert_eq!(find("n"), Some("2.5"));
            assert_eq!(find("flag"), Some("false"));
            assert!(find("nested").is_none() && find("list").is_none() && find("none").is_none(), "{pairs:?}");
            assert_signed(&seen);
        }
    }

    #[tokio::test]
    async fn a_non_2xx_answer_is_a_failure_with_its_status_and_body() {
        let (base, log) = server().await;
        let company = Uuid::new_v4();
        let out = run(company, &action(company, format!("{base}/fail"), "POST", &[], 2000), json!({})).await;
        assert_eq!((out.ok, out.status, out.content.as_str()), (false, Some(500), "HTTP 500: boom"));
        let out = run(company, &action(company, format!("{base}/empty-fail"), "GET", &[], 2000), json!({})).await;
        assert_eq!((out.ok, out.status), (false, Some(503)));
        assert!(out.content.starts_with("HTTP 503: "), "{}", out.content);
        // A redirect is not followed: one request, a failure.
        log.lock().unwrap().clear();
        let out = run(company, &action(company, format!("{base}/moved"), "GET", &[], 2000), json!({})).await;
        assert_eq!((out.ok, out.status), (false, Some(302)));
        assert!(out.content.contains("redirects are not followed"), "{}", out.content);
        assert_eq!(only(&log).path, "/moved");
        // A 2xx without a body still says something.
        let out = run(company, &action(company, format!("{base}/nothing"), "DELETE", &[], 2000), json!({})).await;
        assert_eq!((out.ok, out.status), (true, Some(204)));
        assert!(!out.content.is_empty());
    }

    #[tokio::test]
    async fn a_slow_server_times_out() {
        let (base, _log) = server().await;
        let company = Uuid::new_v4();
        let out = run(company, &action(company, format!("{base}/slow"), "GET", &[], 200), json!({})).await;
        assert_eq!((out.ok, out.status, out.content.as_str()), (false, None, "timed out after 200 ms"));
        assert!(out.latency_ms >= 200 && out.latency_ms < 2000, "{}", out.latency_ms);
    }

    #[tokio::test]
    async fn a_long_answer_is_truncated_on_a_character_boundary() {
        let (base, _log) = server().await;
        let company = Uuid::new_v4();
        let out = run(company, &action(company, format!("{base}/big"), "GET", &[], 2000), json!({})).await;
        assert!(out.ok, "{out:?}");
        assert!(out.content.len() <= MAX_CONTENT_BYTES, "{}", out.content.len());
        assert!(out.content.len() > MAX_CONTENT_BYTES - 100);
        assert!(out.content.ends_with("[truncated]"));
        assert!(out.content.trim_end_matches(TRUNCATED).chars().all(|c| c == 'é'));
    }

    #[tokio::test]
    async fn failures_are_outcomes_and_secrets_are_blanked() {
        let company = Uuid::new_v4();
        // Nothing listens there.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/x?token=in-the-url-0000");
        let out = run(company, &action(company, url, "GET", &[], 2000), json!({})).await;
        assert_eq!((out.ok, out.status), (false, None));
        assert!(out.content.to_lowercase().contains("connect"), "{}", out.content);
        assert!(!out.content.contains("in-the-url-0000"), "{}", out.content);

        // Sealed for another company: nothing is sent.
        let (base, log) = server().await;
        let a = action(Uuid::new_v4(), format!("{base}/ok"), "POST", &[("X-Api-Key", API_KEY)], 2000);
        let out = run(company, &a, json!({})).await;
        assert_eq!((out.ok, out.status), (false, None));
        assert!(out.content.contains("could not be opened"), "{}", out.content);
        assert!(log.lock().unwrap().is_empty());

        // An answer echoing the secrets does not carry them to the model.
        let bearer = format!("Bearer {API_KEY}");
        let a = action(company, format!("{base}/echo"), "POST", &[("Authorization", bearer.as_str())], 2000);
        let out = run(company, &a, json!({})).await;
        assert!(out.ok, "{out:?}");
        assert!(!out.content.contains(API_KEY) && !out.content.contains(SECRET), "{}", out.content);
        assert_eq!(only(&log).headers["authorization"], bearer.as_str());
    }

    #[tokio::test]
    async fn internal_addresses_are_refused_without_a_request_unless_allowed() {
        let (base, log) = server().await;
        let company = Uuid::new_v4();
        // A literal address fails before anything is sent: no connection is even tried (one to
        // 10.0.0.1 would take until the timeout).
        for url in ["http://10.0.0.1/orders".to_string(), format!("{base}/ok"), "http://[::ffff:10.0.0.1]/".into()] {
            let out = run_with(company, &action(company, url.clone(), "POST", &[], 2000), json!({}), false).await;
            assert_eq!((out.ok, out.status), (false, None), "{url}: {out:?}");
            assert!(out.content.contains(NOT_PUBLIC), "{url}: {}", out.content);
            assert!(out.latency_ms < 1000, "{url}: {}", out.latency_ms);
        }
        // A name is resolved to its public addresses only: localhost has none.
        let named = format!("{}/ok", base.replace("127.0.0.1", "localhost"));
        let out = run_with(company, &action(company, named, "GET", &[], 2000), json!({}), false).await;
        assert_eq!((out.ok, out.status), (false, None), "{out:?}");
        assert!(out.content.contains(NOT_PUBLIC), "{}", out.content);
        assert!(log.lock().unwrap().is_empty(), "nothing reached the server");
        // Allowed (local development, the tests): the same call goes through.
        let out = run_with(company, &action(company, format!("{base}/ok"), "POST", &[], 2000), json!({}), true).await;
        assert!(out.ok, "{out:?}");
        assert_eq!(only(&log).path, "/ok");
    }

    #[test]
    fn text_helpers() {
        // A character cut in two at the end is dropped.
        let bytes = "aé".as_bytes();
        assert_eq!(text_of(&bytes[..2]), "a");
        assert_eq!(text_of(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(fit("short".into(), false), "short");
        assert_eq!(fit("short".into(), true), format!("short{TRUNCATED}"));
        assert_eq!(header_safe("call 1\n\u{e9}x"), "call1x");
        assert_eq!(query_pairs(&json!(["not", "an", "object"])), Vec::<(String, String)>::new());
        let h = signature_header("k", 1, b"{}");
        assert!(h.starts_with("t=1,v1=") && h.len() == "t=1,v1=".len() + 64, "{h}");
    }
}
