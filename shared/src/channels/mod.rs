//! Messaging channels: what every provider's webhook and reply API have in common.
//!
//! Each provider module turns one webhook request (the exact raw bytes) into a [`Verdict`]:
//! the handshake answer, or the inbound customer messages it carries (batches split, echoes,
//! bot messages and status updates dropped), or a [`Rejection`]. Nothing here touches the
//! database; `repo::channels` stores what a verdict holds and the webhook functions tie both.
//! Sending goes the other way: [`format`] turns a reply into the channel's dialect and parts,
//! and each module's `send_*` builds the provider's request.

pub mod deliver;
pub mod email;
pub mod format;
pub mod meta;
pub mod outbound;
pub mod slack;
pub mod teams;
pub mod telegram;
pub mod webhook;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The messaging channels (the values of the `channel_type` enum they use).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Whatsapp,
    Messenger,
    Instagram,
    Telegram,
    Slack,
    Teams,
    Email,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 7] = [
        ChannelKind::Whatsapp,
        ChannelKind::Messenger,
        ChannelKind::Instagram,
        ChannelKind::Telegram,
        ChannelKind::Slack,
        ChannelKind::Teams,
        ChannelKind::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Whatsapp => "whatsapp",
            ChannelKind::Messenger => "messenger",
            ChannelKind::Instagram => "instagram",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Slack => "slack",
            ChannelKind::Teams => "teams",
            ChannelKind::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<ChannelKind> {
        ChannelKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether free-form replies are only allowed within 24 hours of the customer's last
    /// message (Meta's customer-service window).
    pub fn has_reply_window(self) -> bool {
        matches!(self, ChannelKind::Whatsapp | ChannelKind::Messenger | ChannelKind::Instagram)
    }
}

/// A webhook request as the provider sent it. `body` is the exact bytes (already base64-decoded
/// when API Gateway marked it so): signatures are checked over these, never over re-serialised
/// JSON.
#[derive(Clone, Copy, Debug)]
pub struct RawRequest<'a> {
    pub method: &'a http::Method,
    pub headers: &'a http::HeaderMap,
    /// The query string without `?` (the Meta handshake is a GET with `hub.*` parameters).
    pub query: Option<&'a str>,
    pub body: &'a [u8],
}

impl RawRequest<'_> {
    /// A header's value as text; `None` when missing or not visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Why a webhook request is refused. Nothing is stored for any of them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No or malformed credentials (missing signature header, no token): 401.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// Credentials present but wrong (bad signature, stale timestamp, wrong audience): 403.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// Authentic but unreadable (not JSON, not the documented shape): 400.
    #[error("bad request: {0}")]
    BadRequest(String),
}

/// Who wrote an inbound message, as the provider identifies them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// The provider's stable id of the person (WhatsApp `wa_id`, Messenger/Instagram PSID/IGSID,
    /// Telegram user id, Slack user id, Teams `from.aadObjectId` or `from.id`, email address).
    pub id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// A file or media item on an inbound message (recorded, not downloaded).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// `image`, `audio`, `video`, `document`, `sticker`, `location`, `file`, ...
    pub kind: String,
    /// The provider's media id (WhatsApp media id, Telegram `file_id`, Slack file id).
    pub media_id: Option<String>,
    pub url: Option<String>,
    pub mime_type: Option<String>,
    pub file_name: Option<String>,
    pub size: Option<u64>,
}

/// One customer message from a webhook, ready to store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    /// The provider's id of this message: the dedupe key (a redelivery has the same one).
    /// WhatsApp `wamid`, Messenger/Instagram `mid`, Telegram `update_id`, Slack `event_id`,
    /// Teams `conversation.id` + `id`, email `Message-ID`.
    pub provider_message_id: String,
    pub sender: Sender,
    /// The conversation this message belongs to on the provider's side: replies go there and
    /// an open conversation with the same thread is reused. WhatsApp `wa_id`, Messenger PSID,
    /// Telegram `chat.id` (negative for groups), Slack `channel:thread_ts`, Teams
    /// `conversation.id`, email the root `Message-ID` of the thread.
    pub thread: String,
    /// The text (a caption for media; empty when the provider gives none).
    pub text: String,
    pub attachments: Vec<Attachment>,
    /// When the provider says the customer sent it (unix seconds), if it does.
    pub sent_at: Option<i64>,
    /// What a reply to this message needs besides `thread` (Slack `channel` and `thread_ts`,
    /// Teams `serviceUrl` and activity id, email `Message-ID`, `References`, subject, ...).
    pub reply_context: Value,
}

/// What a verified webhook request amounts to.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// A verification handshake: answer 200 with this body (`text/plain`).
    Challenge(String),
    /// Customer messages to store and answer; `ignored` counts what was dropped on purpose
    /// (status updates, echoes, bot messages, edits, unsupported event types).
    Messages { messages: Vec<Inbound>, ignored: usize },
}

impl Verdict {
    pub fn ignored(n: usize) -> Verdict {
        Verdict::Messages { messages: Vec::new(), ignored: n }
    }
}

/// Compares two secrets in constant time (length leaks; contents do not).
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Checks `lowercase hex HMAC-SHA256(key, message)` against `expected_hex` in constant time.
pub fn hmac_sha256_hex_matches(key: &[u8], message: &[&[u8]], expected_hex: &str) -> bool {
    use hmac::{Mac, SimpleHmac};
    let Ok(expected) = hex::decode(expected_hex.trim()) else {
        return false;
    };
    let mut mac = <SimpleHmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in message {
        mac.update(part);
    }
    mac.verify_slice(&expected).is_ok()
}

/// `lowercase hex HMAC-SHA256(key, message)`: what providers sign with, and what tests and the
/// replay script sign recorded payloads with.
pub fn hmac_sha256_hex(key: &[u8], message: &[&[u8]]) -> String {
    use hmac::{Mac, SimpleHmac};
    let mut mac = <SimpleHmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in message {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// What went wrong sending one reply part.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (429, 5xx, a timeout, a connection error); `retry_after` is
    /// what the provider asked for (`Retry-After`, Telegram's `retry_after`), in seconds.
    #[error("temporary failure ({status:?}): {message}")]
    Retryable { status: Option<u16>, message: String, retry_after: Option<u64> },
    /// Will never succeed as is (bad token, blocked user, outside the reply window, ...).
    #[error("permanent failure ({code}): {message}")]
    Permanent { code: String, message: String },
}

/// The provider's id of a message it accepted (WhatsApp `wamid`, Slack `ts`, ...), if it gives one.
pub type SentId = Option<String>;

/// Base URLs of the providers' APIs: the real ones by default; tests and the local runner
/// point them at local servers speaking the same wire formats.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// Meta Graph API with its version, e.g. `https://graph.facebook.com/v21.0`.
    pub graph: String,
    /// `https://api.telegram.org`
    pub telegram: String,
    /// `https://slack.com/api`
    pub slack: String,
    /// Bot Framework client-credentials token URL.
    pub teams_token: String,
    /// Bot Framework OpenID metadata (its `jwks_uri` has the signing keys).
    pub teams_openid: String,
    /// The issuer Bot Framework tokens must carry.
    pub teams_issuer: String,
    /// Host suffix a SNS `SigningCertURL` must have (`.amazonaws.com`).
    pub sns_cert_host_suffix: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            graph: "https://graph.facebook.com/v21.0".into(),
            telegram: "https://api.telegram.org".into(),
            slack: "https://slack.com/api".into(),
            teams_token: "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token".into(),
            teams_openid: "https://login.botframework.com/v1/.well-known/openidconfiguration".into(),
            teams_issuer: "https://api.botframework.com".into(),
            sns_cert_host_suffix: ".amazonaws.com".into(),
        }
    }
}

/// The HTTP client of every provider call, built once per process: bounded connect and total
/// times (a provider that hangs costs a retry, not a Lambda's whole budget).
pub fn http() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        crate::outbound_http::client_builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(15))
            .user_agent("chatapp-channels/1")
            .build()
            .expect("HTTP client with rustls")
    })
}
