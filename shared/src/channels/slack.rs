//! Slack Events API: request signatures, event parsing and `chat.postMessage`.
//!
//! Every Slack request (the `url_verification` handshake included) is signed with the app's
//! signing secret over `v0:<timestamp>:<raw body>`; the timestamp bounds replays. Slack expects an
//! answer within 3 s and retries otherwise, so parsing is pure and cheap.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    hmac_sha256_hex_matches, Attachment, Endpoints, Inbound, RawRequest, Rejection, SendError, Sender, SentId, Verdict,
};
use crate::config::Secret;

/// Replay window.
pub const MAX_SKEW_SECS: i64 = 300;

const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
const SIGNATURE_HEADER: &str = "x-slack-signature";
/// Longest provider text copied into an error message.
const MAX_ERROR_CHARS: usize = 300;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub bot_token: Secret<String>,
    pub signing_secret: Secret<String>,
    /// The bot's own user id (from auth.test), so its own messages are never answered.
    #[serde(default)]
    pub bot_user_id: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("bot_token", &"***")
            .field("signing_secret", &"***")
            .field("bot_user_id", &self.bot_user_id)
            .finish()
    }
}

impl Credentials {
    /// Checks the shapes only; never echoes a secret.
    pub fn validate(&self) -> Result<(), String> {
        let token = self.bot_token.expose();
        // `xoxe.xoxb-` is a bot token with rotation enabled.
        let token_ok = (token.starts_with("xoxb-") || token.starts_with("xoxe.xoxb-"))
            && token.len() <= 512
            && token.bytes().all(|b| b.is_ascii_graphic());
        if !token_ok {
            return Err("bot_token must be the app's bot token (xoxb-...)".into());
        }
        let secret = self.signing_secret.expose();
        if secret.is_empty() || secret.len() > 256 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("signing_secret must be the app's signing secret (Basic Information page)".into());
        }
        if let Some(id) = &self.bot_user_id {
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err("bot_user_id must be a Slack user id such as U0123ABCD".into());
            }
        }
        Ok(())
    }
}

/// X-Slack-Request-Timestamp + X-Slack-Signature (`v0=` hex HMAC-SHA256 over `v0:<ts>:<raw body>`),
/// constant time. Missing header: Unauthorized; timestamp unreadable or more than
/// [`MAX_SKEW_SECS`] from `now_unix`: Forbidden("stale timestamp"); mismatch: Forbidden. An empty
/// configured secret accepts nothing (anyone can compute an HMAC with an empty key).
pub fn verify(req: &RawRequest<'_>, signing_secret: &str, now_unix: i64) -> Result<(), Rejection> {
    let (Some(ts), Some(signature)) = (req.header(TIMESTAMP_HEADER), req.header(SIGNATURE_HEADER)) else {
        return Err(Rejection::Unauthorized("missing X-Slack-Signature or X-Slack-Request-Timestamp"));
    };
    if signing_secret.is_empty() {
        return Err(Rejection::Forbidden("no signing secret configured"));
    }
    let fresh = ts
        .trim()
        .parse::<i64>()
        .is_ok_and(|t| (i128::from(t) - i128::from(now_unix)).abs() <= i128::from(MAX_SKEW_SECS));
    if !fresh {
        return Err(Rejection::Forbidden("stale timestamp"));
    }
    let Some(hex) = signature.trim().strip_prefix("v0=") else {
        return Err(Rejection::Forbidden("bad signature"));
    };
    // The timestamp exactly as sent, and the body bytes exactly as received.
    let message = ["v0:".as_bytes(), ts.as_bytes(), ":".as_bytes(), req.body];
    if hmac_sha256_hex_matches(signing_secret.as_bytes(), &message, hex) {
        Ok(())
    } else {
        Err(Rejection::Forbidden("bad signature"))
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Verified body: the `url_verification` challenge, or at most one customer message from an
/// `event_callback` (keyed by `event_id`). Read as loose JSON so new Slack fields and event types
/// never fail a delivery (a failure would only make Slack retry).
pub fn parse(body: &[u8], bot_user_id: Option<&str>) -> Result<Verdict, Rejection> {
    // Slash commands and interactivity are form-encoded: not handled here.
    let envelope: Value =
        serde_json::from_slice(body).map_err(|_| Rejection::BadRequest("not a JSON Slack event".into()))?;
    match str_field(&envelope, "type") {
        Some("url_verification") => match str_field(&envelope, "challenge") {
            Some(challenge) => Ok(Verdict::Challenge(challenge.to_owned())),
            None => Err(Rejection::BadRequest("url_verification without a challenge".into())),
        },
        Some("event_callback") => {
            let Some(event_id) = str_field(&envelope, "event_id") else {
                return Err(Rejection::BadRequest("event_callback without event_id".into()));
            };
            let Some(event) = envelope.get("event").filter(|e| e.is_object()) else {
                return Err(Rejection::BadRequest("event_callback without event".into()));
            };
            let team = str_field(&envelope, "team_id").or_else(|| str_field(event, "team"));
            let bot = bot_user_id.map(str::trim).filter(|b| !b.is_empty());
            Ok(match inbound(event_id, team, event, bot) {
                Some(m) => Verdict::Messages { messages: vec![m], ignored: 0 },
                None => Verdict::ignored(1),
            })
        }
        // app_rate_limited and whatever Slack adds later.
        _ => Ok(Verdict::ignored(1)),
    }
}

fn inbound(event_id: &str, team: Option<&str>, event: &Value, bot: Option<&str>) -> Option<Inbound> {
    let kind = str_field(event, "type")?;
    if kind != "message" && kind != "app_mention" {
        return None;
    }
    // App bots may post without `subtype: bot_message`; `bot_id` is what marks them.
    let present = |key: &str| event.get(key).is_some_and(|v| !v.is_null());
    if present("bot_id") || present("bot_profile") || event.get("hidden").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    match event.get("subtype") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "file_share" || s == "thread_broadcast" => {}
        Some(_) => return None, // edits, deletions, joins, bot_message, ...
    }
    let user = str_field(event, "user")?;
    if bot == Some(user) {
        return None;
    }
    let channel = str_field(event, "channel")?;
    let ts = str_field(event, "ts")?;
    let thread_ts = str_field(event, "thread_ts");
    let channel_type = str_field(event, "channel_type");
    // app_mention carries no channel_type; DM channel ids start with D.
    let is_dm = channel_type == Some("im") || (channel_type.is_none() && channel.starts_with('D'));
    let raw_text = str_field(event, "text").unwrap_or("");
    // A channel message mentioning the bot also arrives as `app_mention`: answer that one only.
    if kind == "message" && !is_dm && bot.is_some_and(|b| mentions(raw_text, b)) {
        return None;
    }
    let text = strip_leading_mention(raw_text, bot, kind == "app_mention");
    let attachments = attachments(event);
    if text.trim().is_empty() && attachments.is_empty() {
        return None;
    }
    // One conversation per DM; elsewhere one per thread (a top-level message starts its own).
    let (thread, reply_thread_ts) = if is_dm {
        (channel.to_owned(), thread_ts)
    } else {
        let root = thread_ts.unwrap_or(ts);
        (format!("{channel}:{root}"), Some(root))
    };
    let mut ctx = Map::new();
    ctx.insert("channel".into(), Value::from(channel));
    if let Some(t) = reply_thread_ts {
        ctx.insert("thread_ts".into(), Value::from(t));
    }
    ctx.insert("ts".into(), Value::from(ts));
    if let Some(team) = team {
        ctx.insert("team".into(), Value::from(team));
    }
    if let Some(ct) = channel_type {
        ctx.insert("channel_type".into(), Value::from(ct));
    }
    let profile = event.get("user_profile").unwrap_or(&Value::Null);
    let name = str_field(profile, "real_name").or_else(|| str_field(profile, "display_name"));
    Some(Inbound {
        provider_message_id: event_id.to_owned(),
        sender: Sender { id: user.to_owned(), name: name.map(str::to_owned), ..Sender::default() },
        thread,
        text,
        attachments,
        sent_at: ts.split('.').next().and_then(|s| s.parse::<i64>().ok()),
        reply_context: Value::Object(ctx),
    })
}

/// `<@BOTID>` or `<@BOTID|name>` anywhere in the text.
fn mentions(text: &str, bot: &str) -> bool {
    text.contains(&format!("<@{bot}>")) || text.contains(&format!("<@{bot}|"))
}

/// Drops a leading `<@BOTID>` so the assistant reads the question only. Without a known bot id,
/// the leading mention of an `app_mention` is taken to be the bot.
fn strip_leading_mention(text: &str, bot: Option<&str>, is_app_mention: bool) -> String {
    let Some(rest) = text.trim_start().strip_prefix("<@") else { return text.to_owned() };
    let Some(end) = rest.find('>') else { return text.to_owned() };
    let id = rest.get(..end).and_then(|m| m.split('|').next()).unwrap_or("");
    let ours = match bot {
        Some(b) => id == b,
        None => is_app_mention,
    };
    if !ours {
        return text.to_owned();
    }
    rest.get(end + 1..).unwrap_or("").trim().to_owned()
}

fn attachments(event: &Value) -> Vec<Attachment> {
    let Some(files) = event.get("files").and_then(Value::as_array) else { return Vec::new() };
    files
        .iter()
        .filter(|f| f.is_object())
        .map(|f| {
            let mime = str_field(f, "mimetype");
            let kind = match mime.and_then(|m| m.split('/').next()) {
                Some("image") => "image",
                Some("audio") => "audio",
                Some("video") => "video",
                _ => "file",
            };
            Attachment {
                kind: kind.into(),
                media_id: str_field(f, "id").map(str::to_owned),
                // Downloading it needs the bot token as Bearer.
                url: str_field(f, "url_private").map(str::to_owned),
                mime_type: mime.map(str::to_owned),
                file_name: str_field(f, "name").map(str::to_owned),
                size: f.get("size").and_then(Value::as_u64),
            }
        })
        .collect()
}

/// chat.postMessage into the conversation's channel and thread; returns the new message's `ts`.
/// The channel comes from `context` or else `thread` (`channel[:thread_ts]`), so a reply with an
/// empty context still lands in the right place.
pub async fn send_text(
    http: &reqwest::Client,
    ep: &Endpoints,
    creds: &Credentials,
    context: &Value,
    thread: &str,
    text: &str,
) -> Result<SentId, SendError> {
    let (thread_channel, thread_root) = match thread.split_once(':') {
        Some((channel, root)) => (channel, Some(root)),
        None => (thread, None),
    };
    let channel = str_field(context, "channel").unwrap_or(thread_channel);
    if channel.is_empty() {
        return Err(SendError::Permanent { code: "channel_not_found".into(), message: "slack: no channel".into() });
    }
    let thread_ts = str_field(context, "thread_ts").or(thread_root.filter(|t| !t.is_empty()));
    let mut body = Map::new();
    body.insert("channel".into(), Value::from(channel));
    body.insert("text".into(), Value::from(text));
    if let Some(t) = thread_ts {
        body.insert("thread_ts".into(), Value::from(t));
    }
    body.insert("mrkdwn".into(), Value::Bool(true));
    let reply = call(http, ep, creds, "chat.postMessage", Some(&Value::Object(body))).await?;
    Ok(str_field(&reply, "ts").map(str::to_owned))
}

/// auth.test -> the JSON (user_id, team, team_id, bot_id, ...): proves the token works and names
/// the bot user to store as `bot_user_id`.
pub async fn check(http: &reqwest::Client, ep: &Endpoints, creds: &Credentials) -> Result<Value, SendError> {
    call(http, ep, creds, "auth.test", None).await
}

/// POSTs one Web API method; `Ok` is the whole answer when it says `ok: true` (errors arrive as
/// HTTP 200 with `ok: false`).
async fn call(
    http: &reqwest::Client,
    ep: &Endpoints,
    creds: &Credentials,
    method: &str,
    body: Option<&Value>,
) -> Result<Value, SendError> {
    let url = format!("{}/{}", ep.slack.trim_end_matches('/'), method);
    let mut request = http.post(url).bearer_auth(creds.bot_token.expose());
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.map_err(|e| network_error(method, e))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let text = response.text().await.map_err(|e| network_error(method, e))?;
    if (200..300).contains(&status) {
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            if v.get("ok").and_then(Value::as_bool) == Some(true) {
                return Ok(v);
            }
        }
    }
    Err(api_error(status, retry_after, &text))
}

fn network_error(method: &str, e: reqwest::Error) -> SendError {
    if e.is_builder() {
        return SendError::Permanent {
            code: "request".into(),
            message: format!("slack {method}: the request could not be built"),
        };
    }
    let e = e.without_url();
    let mut message = format!("slack {method}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    SendError::Retryable { status: None, message, retry_after: None }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Classifies a failed Web API call: HTTP 429 or `ratelimited` retry after `Retry-After`; 5xx and
/// Slack's transient errors retry; any other `error` (channel_not_found, not_in_channel,
/// invalid_auth, account_inactive, msg_too_long, ...) is permanent with that code. A 2xx without a
/// readable answer is not retried (the message may have been posted).
pub(crate) fn api_error(status: u16, retry_after: Option<u64>, body: &str) -> SendError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let error = str_field(&v, "error").map(|e| truncate(e, 100));
    let message = format!("slack: {}", error.clone().unwrap_or_else(|| truncate(body.trim(), MAX_ERROR_CHARS)));
    if status == 429 || matches!(error.as_deref(), Some("ratelimited" | "rate_limited")) {
        return SendError::Retryable { status: Some(429), message, retry_after };
    }
    if status >= 500 || matches!(error.as_deref(), Some("internal_error" | "service_unavailable" | "request_timeout")) {
        return SendError::Retryable { status: Some(status), message, retry_after };
    }
    let code = match error {
        Some(e) => e,
        None if (200..300).contains(&status) => "bad_response".into(),
        None => status.to_string(),
    };
    SendError::Permanent { code, message }
}

#[cfg(test)]
mod tests;
