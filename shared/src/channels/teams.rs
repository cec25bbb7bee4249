//! Microsoft Teams through the Bot Framework connector (brief §7).
//!
//! Every activity carries a Bot Framework JWT. Its `serviceurl` claim is what makes the activity's
//! `serviceUrl` trustworthy as the place replies are POSTed to (with a token of the bot's own app
//! registration), so [`verify`] must pass before anything from the body is used.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};

use super::{Attachment, Endpoints, Inbound, RawRequest, Rejection, SendError, Sender, SentId, Verdict};
use crate::config::Secret;

/// The Bot Framework credentials of one bot (its Azure app registration).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub app_id: String,
    pub app_password: Secret<String>,
    /// Single-tenant bots: the Entra tenant whose token URL is used instead of `botframework.com`.
    #[serde(default)]
    pub tenant_id: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("app_id", &self.app_id)
            .field("app_password", &"***")
            .field("tenant_id", &self.tenant_id)
            .finish()
    }
}

impl Credentials {
    pub fn validate(&self) -> Result<(), String> {
        let id = &self.app_id;
        if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("app_id must be the bot's Microsoft App ID (a GUID)".into());
        }
        if self.app_password.expose().trim().is_empty() {
            return Err("app_password must not be empty".into());
        }
        if let Some(tenant) = &self.tenant_id {
            if !valid_tenant(tenant) {
                return Err("tenant_id must be an Entra tenant id (a GUID) or domain".into());
            }
        }
        Ok(())
    }
}

/// The tenant goes into the token URL's path, so only id/domain characters are allowed.
fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with('.')
        && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// "Industry-standard clock-skew is 5 minutes" (Bot Framework authentication docs).
pub const CLOCK_SKEW_SECS: i64 = 300;
const KEYS_TTL: Duration = Duration::from_secs(24 * 3600);
/// An unknown `kid` may mean Microsoft rolled its keys; refetching more often would let anyone
/// make us hammer the JWKS endpoint with made-up key ids.
const UNKNOWN_KID_REFRESH: Duration = Duration::from_secs(300);
const TOKEN_MARGIN_SECS: u64 = 300;
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const SCOPE: &str = "https://api.botframework.com/.default";
const FILE_DOWNLOAD_INFO: &str = "application/vnd.microsoft.teams.file.download.info";
const MALFORMED: Rejection = Rejection::Forbidden("malformed token");

/// JWT segments are unpadded base64url; padding is tolerated rather than trusted to be absent.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One key of the Bot Framework JWKS (only what RS256 verification needs).
#[derive(Clone, Debug, Deserialize)]
struct Jwk {
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    kty: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    /// Channel ids the key is endorsed for; Bot Framework keys carry it, generic JWKS do not.
    #[serde(default)]
    endorsements: Option<Vec<Value>>,
}

type KeyCache = RwLock<HashMap<String, (Instant, Vec<Jwk>)>>;

fn key_cache() -> &'static KeyCache {
    static KEYS: OnceLock<KeyCache> = OnceLock::new();
    KEYS.get_or_init(|| RwLock::new(HashMap::new()))
}

/// Access tokens by (token URL, app id, password hash): valid-until and token.
type TokenCache = Mutex<HashMap<String, (Instant, String)>>;

fn token_cache() -> &'static TokenCache {
    static TOKENS: OnceLock<TokenCache> = OnceLock::new();
    TOKENS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Checks `Authorization: Bearer <JWT>` as the Bot Framework docs require: RS256 by a key from
/// the OpenID metadata's JWKS, issuer, audience (`app_id`), validity window with clock skew, and
/// the `serviceurl` claim equal to the activity's `service_url`. Missing header: Unauthorized;
/// anything else wrong: Forbidden.
pub async fn verify(
    http: &reqwest::Client,
    ep: &Endpoints,
    req: &RawRequest<'_>,
    app_id: &str,
    service_url: &str,
    now_unix: i64,
) -> Result<(), Rejection> {
    let auth = req.header("authorization").ok_or(Rejection::Unauthorized("missing Authorization header"))?;
    let jwt = match auth.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => token.trim(),
        _ => return Err(Rejection::Unauthorized("Authorization is not a Bearer token")),
    };
    let (kid, signing_input, signature) = check_header(jwt)?;
    let claims = decode_claims(signing_input)?;
    // Claims before keys: a forged or stale token costs no JWKS lookup.
    check_claims(&claims, &ep.teams_issuer, app_id, service_url, now_unix)?;
    let key = signing_key(http, &ep.teams_openid, &kid).await?;
    if let Some(endorsements) = &key.endorsements {
        if !endorsements.iter().any(|e| e.as_str().is_some_and(|e| e.eq_ignore_ascii_case("msteams"))) {
            return Err(Rejection::Forbidden("signing key is not endorsed for msteams"));
        }
    }
    verify_rs256(&key, signing_input, &signature)
}

/// Splits a JWT and checks its header: RS256 only (so `none`/HS256 tokens are refused before any
/// key lookup) with a key id. Returns (kid, "header.payload", signature bytes).
fn check_header(jwt: &str) -> Result<(String, &str, Vec<u8>), Rejection> {
    let (signing_input, signature_b64) = jwt.rsplit_once('.').ok_or(MALFORMED)?;
    let (header_b64, payload_b64) = signing_input.split_once('.').ok_or(MALFORMED)?;
    if header_b64.is_empty() || payload_b64.is_empty() || payload_b64.contains('.') {
        return Err(MALFORMED);
    }
    let header: Value =
        B64URL.decode(header_b64).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).ok_or(MALFORMED)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(Rejection::Forbidden("token algorithm is not RS256"));
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or(Rejection::Forbidden("token has no key id"))?;
    let signature = B64URL.decode(signature_b64).ok().filter(|s| !s.is_empty()).ok_or(MALFORMED)?;
    Ok((kid.to_string(), signing_input, signature))
}

fn decode_claims(signing_input: &str) -> Result<Value, Rejection> {
    let (_, payload_b64) = signing_input.split_once('.').ok_or(MALFORMED)?;
    B64URL
        .decode(payload_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .filter(Value::is_object)
        .ok_or(MALFORMED)
}

/// The claim checks of the Bot Framework docs, as a pure function of the claims and the clock.
fn check_claims(claims: &Value, issuer: &str, app_id: &str, service_url: &str, now: i64) -> Result<(), Rejection> {
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(Rejection::Forbidden("wrong token issuer"));
    }
    let audience_ok = !app_id.is_empty()
        && match claims.get("aud") {
            Some(Value::String(aud)) => aud == app_id,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(app_id)),
            _ => false,
        };
    if !audience_ok {
        return Err(Rejection::Forbidden("wrong token audience"));
    }
    let exp = claims.get("exp").and_then(unix_time).ok_or(Rejection::Forbidden("token has no expiry"))?;
    if exp <= now.saturating_sub(CLOCK_SKEW_SECS) {
        return Err(Rejection::Forbidden("token expired"));
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = unix_time(nbf).ok_or(Rejection::Forbidden("token has an invalid nbf"))?;
        if nbf > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(Rejection::Forbidden("token not yet valid"));
        }
    }
    // Bot Framework spells it "serviceurl"; the docs say "serviceUrl".
    let claimed = claims
        .get("serviceurl")
        .or_else(|| claims.get("serviceUrl"))
        .and_then(Value::as_str)
        .ok_or(Rejection::Forbidden("token has no serviceurl claim"))?;
    let claimed = claimed.trim_end_matches('/');
    if claimed.is_empty() || claimed != service_url.trim_end_matches('/') {
        return Err(Rejection::Forbidden("token serviceurl does not match the activity"));
    }
    Ok(())
}

fn unix_time(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

fn verify_rs256(key: &Jwk, signing_input: &str, signature: &[u8]) -> Result<(), Rejection> {
    if key.kty.as_deref().is_some_and(|k| k != "RSA") {
        return Err(Rejection::Forbidden("signing key is not an RSA key"));
    }
    let decode = |part: &Option<String>| part.as_deref().and_then(|p| B64URL.decode(p).ok());
    let (Some(n), Some(e)) = (decode(&key.n), decode(&key.e)) else {
        return Err(Rejection::Forbidden("signing key has no RSA components"));
    };
    let components = ring::signature::RsaPublicKeyComponents { n: strip_zeros(&n), e: strip_zeros(&e) };
    components
        .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, signing_input.as_bytes(), signature)
        .map_err(|_| Rejection::Forbidden("bad token signature"))
}

/// ring wants the big-endian integers without leading zero bytes.
fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// The JWKS key `kid`, from the cache (24 h) or the metadata's `jwks_uri`. When a refresh fails,
/// the previous keys still serve rather than refusing every activity.
async fn signing_key(http: &reqwest::Client, metadata_url: &str, kid: &str) -> Result<Jwk, Rejection> {
    let find = |keys: &[Jwk]| keys.iter().find(|k| k.kid.as_deref() == Some(kid)).cloned();
    let previous = {
        let cache = key_cache().read().await;
        match cache.get(metadata_url) {
            Some((fetched, keys)) => {
                let age = fetched.elapsed();
                if age < KEYS_TTL {
                    if let Some(key) = find(keys.as_slice()) {
                        return Ok(key);
                    }
                    if age < UNKNOWN_KID_REFRESH {
                        return Err(Rejection::Forbidden("unknown signing key"));
                    }
                }
                Some(keys.clone())
            }
            None => None,
        }
    };
    let keys = match fetch_keys(http, metadata_url).await {
        Ok(keys) => {
            key_cache().write().await.insert(metadata_url.to_string(), (Instant::now(), keys.clone()));
            keys
        }
        Err(error) => {
            tracing::warn!(%error, metadata_url, "could not fetch the Bot Framework signing keys");
            previous.ok_or(Rejection::Forbidden("signing keys unavailable"))?
        }
    };
    find(keys.as_slice()).ok_or(Rejection::Forbidden("unknown signing key"))
}

async fn fetch_keys(http: &reqwest::Client, metadata_url: &str) -> Result<Vec<Jwk>, String> {
    let metadata = get_json(http, metadata_url).await?;
    let jwks_uri = metadata.get("jwks_uri").and_then(Value::as_str).ok_or("OpenID metadata has no jwks_uri")?;
    let jwks = get_json(http, jwks_uri).await?;
    let keys = jwks.get("keys").and_then(Value::as_array).ok_or("JWKS has no keys")?;
    Ok(keys.iter().filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok()).collect())
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let resp = http.get(url).timeout(HTTP_TIMEOUT).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
}

/// The activity's `serviceUrl`, needed before [`verify`] can compare it with the signed claim.
pub fn service_url(body: &[u8]) -> Result<String, Rejection> {
    let activity: Value = serde_json::from_slice(body).map_err(|e| bad(format!("activity is not JSON: {e}")))?;
    activity
        .get("serviceUrl")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| bad("activity has no serviceUrl".into()))
}

fn bad(message: String) -> Rejection {
    Rejection::BadRequest(message)
}

fn non_empty(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A `message` activity from a person becomes one [`Inbound`]; every other activity type and
/// anything a bot (including this one) wrote is ignored.
pub fn parse(body: &[u8]) -> Result<Verdict, Rejection> {
    let a: Value = serde_json::from_slice(body).map_err(|e| bad(format!("activity is not JSON: {e}")))?;
    if !a.is_object() {
        return Err(bad("activity is not a JSON object".into()));
    }
    if a.get("type").and_then(Value::as_str) != Some("message") {
        return Ok(Verdict::ignored(1));
    }
    let from = a.get("from").filter(|f| f.is_object()).ok_or_else(|| bad("message has no from".into()))?;
    let recipient = a.get("recipient").cloned().unwrap_or(Value::Null);
    let from_id = non_empty(from.get("id"));
    let from_bot = from.get("role").and_then(Value::as_str).is_some_and(|r| r.eq_ignore_ascii_case("bot"));
    if from_bot || (from_id.is_some() && from_id == non_empty(recipient.get("id"))) {
        return Ok(Verdict::ignored(1));
    }
    let id = non_empty(a.get("id")).ok_or_else(|| bad("message has no id".into()))?;
    let conversation_id =
        non_empty(a.pointer("/conversation/id")).ok_or_else(|| bad("message has no conversation.id".into()))?;
    let service_url = non_empty(a.get("serviceUrl")).ok_or_else(|| bad("message has no serviceUrl".into()))?;
    let sender_id =
        non_empty(from.get("aadObjectId")).or(from_id).ok_or_else(|| bad("message has no sender id".into()))?;
    let tenant_id = non_empty(a.pointer("/channelData/tenant/id")).or(non_empty(a.pointer("/conversation/tenantId")));
    let sent_at =
        non_empty(a.get("timestamp")).and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp());
    let message = Inbound {
        provider_message_id: format!("{conversation_id}/{id}"),
        sender: Sender {
            id: sender_id.to_string(),
            name: non_empty(from.get("name")).map(str::to_string),
            phone: None,
            email: None,
        },
        thread: conversation_id.to_string(),
        text: strip_mentions(a.get("text").and_then(Value::as_str).unwrap_or("")),
        attachments: attachments(&a),
        sent_at,
        reply_context: json!({
            "service_url": service_url,
            "conversation_id": conversation_id,
            "activity_id": id,
            "recipient": recipient,
            "from": from,
            "tenant_id": tenant_id,
        }),
    };
    Ok(Verdict::Messages { messages: vec![message], ignored: 0 })
}

/// Removes `<at>Name</at>` mentions: in channels the bot only hears messages that mention it, and
/// its own name is not part of the question.
fn strip_mentions(text: &str) -> String {
    // ASCII lowercasing keeps every byte offset, so positions found in `lower` are valid in `text`.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    let mut removed = false;
    while let Some(start) = lower[pos..].find("<at").map(|i| i + pos) {
        if !matches!(lower.as_bytes().get(start + 3).copied(), Some(b'>') | Some(b' ')) {
            out.push_str(&text[pos..start + 3]);
            pos = start + 3;
            continue;
        }
        let Some(end) = lower[start..].find("</at>").map(|i| i + start + 5) else { break };
        out.push_str(&text[pos..start]);
        pos = end;
        removed = true;
    }
    out.push_str(&text[pos..]);
    if !removed {
        return out.trim().to_string();
    }
    // "Hi <at>Bot</at> there" leaves a double space behind.
    out.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ").trim().to_string()
}

fn attachments(activity: &Value) -> Vec<Attachment> {
    let Some(list) = activity.get("attachments").and_then(Value::as_array) else { return Vec::new() };
    list.iter()
        .filter_map(|att| {
            let content_type = att.get("contentType").and_then(Value::as_str).unwrap_or("");
            let mut url = non_empty(att.get("contentUrl")).map(str::to_string);
            if content_type == FILE_DOWNLOAD_INFO {
                // Pre-authenticated URL: the bot token must not be sent to it.
                url = non_empty(att.pointer("/content/downloadUrl")).map(str::to_string).or(url);
            }
            // Teams repeats the message's own rich text as an inline text/html attachment.
            if url.is_none() && (content_type.is_empty() || content_type.starts_with("text/html")) {
                return None;
            }
            let kind = match content_type.split('/').next().unwrap_or("") {
                "image" => "image",
                "audio" => "audio",
                "video" => "video",
                _ if content_type.starts_with("application/vnd.microsoft.card.") => "card",
                _ => "file",
            };
            Some(Attachment {
                kind: kind.to_string(),
                media_id: None,
                url,
                mime_type: Some(content_type.to_string()).filter(|c| !c.is_empty()),
                file_name: non_empty(att.get("name")).map(str::to_string),
                size: None,
            })
        })
        .collect()
}

/// The token URL: the tenant's own for single-tenant bots, `botframework.com`'s otherwise.
fn token_url(ep: &Endpoints, creds: &Credentials) -> Result<String, SendError> {
    match creds.tenant_id.as_deref() {
        None => Ok(ep.teams_token.clone()),
        Some(tenant) if valid_tenant(tenant) => {
            Ok(ep.teams_token.replacen("/botframework.com/", &format!("/{tenant}/"), 1))
        }
        Some(_) => Err(permanent("bad_credentials", "tenant_id is not a valid tenant id")),
    }
}

/// A client-credentials token for the Bot Connector, cached until 5 minutes before it expires.
pub async fn token(http: &reqwest::Client, ep: &Endpoints, creds: &Credentials) -> Result<String, SendError> {
    let url = token_url(ep, creds)?;
    let key = token_cache_key(&url, creds);
    if let Some((until, token)) = token_cache().lock().await.get(&key) {
        if Instant::now() < *until {
            return Ok(token.clone());
        }
    }
    let (token, expires_in) = fetch_token(http, &url, creds).await?;
    if expires_in > TOKEN_MARGIN_SECS {
        let valid = Duration::from_secs(expires_in.min(24 * 3600) - TOKEN_MARGIN_SECS);
        if let Some(until) = Instant::now().checked_add(valid) {
            token_cache().lock().await.insert(key, (until, token.clone()));
        }
    }
    Ok(token)
}

/// Keyed by the password too, so new credentials never reuse a token of the old ones.
fn token_cache_key(url: &str, creds: &Credentials) -> String {
    let mut hash = Sha256::new();
    for part in [url, creds.app_id.as_str(), creds.app_password.expose().as_str()] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    hex::encode(hash.finalize())
}

async fn forget_token(ep: &Endpoints, creds: &Credentials) {
    if let Ok(url) = token_url(ep, creds) {
        token_cache().lock().await.remove(&token_cache_key(&url, creds));
    }
}

async fn fetch_token(http: &reqwest::Client, url: &str, creds: &Credentials) -> Result<(String, u64), SendError> {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &creds.app_id)
        .append_pair("client_secret", creds.app_password.expose())
        .append_pair("scope", SCOPE)
        .finish();
    let resp = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form)
        .timeout(HTTP_TIMEOUT)
        .send()
        .await
        .map_err(request_error)?;
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let body = resp.bytes().await.map_err(request_error)?;
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !(200..300).contains(&status) {
        let message = non_empty(json.get("error_description"))
            .or(non_empty(json.get("error")))
            .map(|m| format!("token request failed: {m}"))
            .unwrap_or_else(|| format!("token request failed: HTTP {status}"));
        return Err(status_error(status, retry_after, message));
    }
    let token = non_empty(json.get("access_token"))
        .ok_or_else(|| permanent("bad_token_response", "token response has no access_token"))?;
    let expires_in = json
        .get("expires_in")
        .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())))
        .unwrap_or(3600);
    Ok((token.to_string(), expires_in))
}

/// Where a reply goes, from an inbound message's `reply_context`.
struct ReplyTarget<'a> {
    base: String,
    conversation_id: &'a str,
    activity_id: Option<&'a str>,
    bot: Value,
    user: Value,
}

fn reply_target(context: &Value) -> Result<ReplyTarget<'_>, SendError> {
    let service_url = non_empty(context.get("service_url"))
        .ok_or_else(|| permanent("bad_context", "reply context has no service_url"))?;
    let conversation_id = non_empty(context.get("conversation_id"))
        .ok_or_else(|| permanent("bad_context", "reply context has no conversation_id"))?;
    Ok(ReplyTarget {
        base: checked_service_url(service_url)?,
        conversation_id,
        activity_id: non_empty(context.get("activity_id")),
        bot: context.get("recipient").cloned().unwrap_or(Value::Null),
        user: context.get("from").cloned().unwrap_or(Value::Null),
    })
}

/// The service URL without a trailing `/`: https only (the bot token is sent there), plain http
/// only to the local test servers.
fn checked_service_url(raw: &str) -> Result<String, SendError> {
    let refuse = || permanent("bad_service_url", "the service URL is not an https URL");
    let url = url::Url::parse(raw).map_err(|_| refuse())?;
    let local = matches!(url.host_str(), Some("127.0.0.1") | Some("localhost"));
    let scheme_ok = match url.scheme() {
        "https" => url.host_str().is_some(),
        "http" => local,
        _ => false,
    };
    if !scheme_ok || !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err(refuse());
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Percent-encodes a path segment like `encodeURIComponent` (conversation ids contain `:`, `@`, `;`).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn activities_url(target: &ReplyTarget<'_>, reply: bool) -> String {
    let mut url = format!("{}/v3/conversations/{}/activities", target.base, encode_segment(target.conversation_id));
    if let (true, Some(activity_id)) = (reply, target.activity_id) {
        url.push('/');
        url.push_str(&encode_segment(activity_id));
    }
    url
}

/// Replies in the thread of the inbound activity (`replyToId`), in Teams markdown.
pub async fn send_text(
    http: &reqwest::Client,
    ep: &Endpoints,
    creds: &Credentials,
    context: &Value,
    text: &str,
) -> Result<SentId, SendError> {
    let target = reply_target(context)?;
    let mut body = json!({
        "type": "message",
        "text": text,
        "textFormat": "markdown",
        "from": target.bot,
        "recipient": target.user,
        "conversation": {"id": target.conversation_id},
    });
    if let Some(activity_id) = target.activity_id {
        body["replyToId"] = json!(activity_id);
    }
    let resp = post_activity(http, ep, creds, &activities_url(&target, true), &body).await?;
    Ok(non_empty(resp.get("id")).map(str::to_string))
}

/// Shows "typing…" while the answer is prepared.
pub async fn send_typing(
    http: &reqwest::Client,
    ep: &Endpoints,
    creds: &Credentials,
    context: &Value,
) -> Result<(), SendError> {
    let target = reply_target(context)?;
    let body = json!({
        "type": "typing",
        "from": target.bot,
        "recipient": target.user,
        "conversation": {"id": target.conversation_id},
    });
    post_activity(http, ep, creds, &activities_url(&target, false), &body).await.map(|_| ())
}

/// Checks the credentials by obtaining a token (bypassing the cache, so a changed password shows).
pub async fn check(http: &reqwest::Client, ep: &Endpoints, creds: &Credentials) -> Result<Value, SendError> {
    let url = token_url(ep, creds)?;
    fetch_token(http, &url, creds).await?;
    Ok(json!({"app_id": creds.app_id, "tenant_id": creds.tenant_id, "token": "ok"}))
}

async fn post_activity(
    http: &reqwest::Client,
    ep: &Endpoints,
    creds: &Credentials,
    url: &str,
    body: &Value,
) -> Result<Value, SendError> {
    let token = token(http, ep, creds).await?;
    let resp =
        http.post(url).bearer_auth(&token).json(body).timeout(HTTP_TIMEOUT).send().await.map_err(request_error)?;
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let bytes = resp.bytes().await.map_err(request_error)?;
    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return Ok(json);
    }
    if status == 401 {
        // An expired or revoked token: the next attempt fetches a new one (a wrong secret then
        // fails at the token endpoint, permanently).
        forget_token(ep, creds).await;
        return Err(SendError::Retryable {
            status: Some(401),
            message: "token refused; fetching a new one".into(),
            retry_after: None,
        });
    }
    let message = non_empty(json.pointer("/error/message"))
        .or(non_empty(json.get("message")))
        .map(str::to_string)
        .unwrap_or_else(|| format!("Bot Connector answered HTTP {status}"));
    Err(status_error(status, retry_after, message))
}

fn permanent(code: &str, message: &str) -> SendError {
    SendError::Permanent { code: code.to_string(), message: message.to_string() }
}

fn status_error(status: u16, retry_after: Option<u64>, message: String) -> SendError {
    if status == 429 || status == 408 || status >= 500 {
        SendError::Retryable { status: Some(status), message, retry_after }
    } else {
        SendError::Permanent { code: format!("http_{status}"), message }
    }
}

fn request_error(e: reqwest::Error) -> SendError {
    if e.is_builder() {
        SendError::Permanent { code: "bad_request".into(), message: e.to_string() }
    } else {
        SendError::Retryable { status: e.status().map(|s| s.as_u16()), message: e.to_string(), retry_after: None }
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests;
