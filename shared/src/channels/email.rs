//! Email through Amazon SES receiving (brief §8.1): SES publishes each received mail to an SNS
//! topic whose HTTPS subscription posts here. SNS messages are RSA-signed with a certificate that
//! AWS serves from `sns.<region>.amazonaws.com`; the mail itself is raw MIME, inline (SNS action)
//! or in S3. Replies are built here as raw RFC 5322 bytes for SES `SendRawEmail`.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use mail_parser::{MessageParser, MimeHeaders};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

use super::{Attachment, Endpoints, Inbound, RawRequest, Rejection, Sender};

/// One tenant's support mailbox.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The address customers write to and replies come from.
    pub address: String,
    /// The SNS topic ARN allowed to post here.
    pub topic_arn: String,
}

impl Credentials {
    pub fn validate(&self) -> Result<(), String> {
        if !valid_address(&self.address) {
            return Err("address must be a plain email address like support@example.com".into());
        }
        let parts: Vec<&str> = self.topic_arn.split(':').collect();
        let arn_ok = match parts.as_slice() {
            ["arn", partition, "sns", region, account, name] => {
                partition.starts_with("aws")
                    && !region.is_empty()
                    && !name.is_empty()
                    && account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
            }
            _ => false,
        };
        if !arn_ok {
            return Err("topic_arn must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)".into());
        }
        Ok(())
    }
}

fn valid_address(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else { return false };
    !local.is_empty()
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && a.len() <= 254
        && a.chars().all(|c| !c.is_whitespace() && !c.is_control() && !"<>()[],;:\\\"".contains(c))
}

/// What an SNS POST is.
#[derive(Clone, Debug, PartialEq)]
pub enum SnsMessage {
    /// Must be confirmed by GETting this URL (only after the signature checked).
    SubscriptionConfirmation {
        subscribe_url: String,
    },
    /// The SES notification JSON (the `Message` string parsed).
    Notification(Value),
    UnsubscribeConfirmation,
}

/// SNS retries for up to an hour by default; anything older is a replay.
const MAX_AGE_SECS: i64 = 3600;
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CERT_BYTES: usize = 64 * 1024;
const MAX_REFERENCES: usize = 50;
static NULL: Value = Value::Null;

type CertCache = RwLock<HashMap<String, CertificateDer<'static>>>;

fn cert_cache() -> &'static CertCache {
    static CERTS: OnceLock<CertCache> = OnceLock::new();
    CERTS.get_or_init(|| RwLock::new(HashMap::new()))
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Verifies an SNS POST (SignatureVersion 2, SHA256withRSA, certificate from AWS) and says what
/// it is. Nothing in the body is trusted before this returns.
pub async fn verify(
    http: &reqwest::Client,
    ep: &Endpoints,
    req: &RawRequest<'_>,
    creds: &Credentials,
    now_unix: i64,
) -> Result<SnsMessage, Rejection> {
    let msg: Value =
        serde_json::from_slice(req.body).map_err(|e| Rejection::BadRequest(format!("SNS message is not JSON: {e}")))?;
    check_envelope(&msg, req.header("x-amz-sns-message-type"), creds, &ep.sns_cert_host_suffix, now_unix)?;
    let to_sign = string_to_sign(&msg).ok_or(Rejection::Forbidden("SNS message lacks signed fields"))?;
    let signature = str_field(&msg, "Signature")
        .and_then(|s| STANDARD.decode(s.trim()).ok())
        .ok_or(Rejection::Forbidden("malformed SNS Signature"))?;
    let cert_url = str_field(&msg, "SigningCertURL").unwrap_or_default();
    let der = signing_cert(http, cert_url).await?;
    let cert = webpki::EndEntityCert::try_from(&der)
        .map_err(|_| Rejection::Forbidden("unreadable SNS signing certificate"))?;
    cert.verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, to_sign.as_bytes(), &signature)
        .map_err(|_| Rejection::Forbidden("bad SNS signature"))?;
    match str_field(&msg, "Type").unwrap_or_default() {
        "SubscriptionConfirmation" => {
            let subscribe_url = str_field(&msg, "SubscribeURL")
                .ok_or_else(|| Rejection::BadRequest("confirmation without SubscribeURL".into()))?;
            Ok(SnsMessage::SubscriptionConfirmation { subscribe_url: subscribe_url.to_string() })
        }
        "Notification" => {
            let message = str_field(&msg, "Message").unwrap_or_default();
            serde_json::from_str(message)
                .map(SnsMessage::Notification)
                .map_err(|e| Rejection::BadRequest(format!("SNS Message is not JSON: {e}")))
        }
        "UnsubscribeConfirmation" => Ok(SnsMessage::UnsubscribeConfirmation),
        other => Err(Rejection::BadRequest(format!("unknown SNS message Type {other:?}"))),
    }
}

/// The checks that need no network: type header, signature version, topic, age, certificate URL.
fn check_envelope(
    msg: &Value,
    type_header: Option<&str>,
    creds: &Credentials,
    cert_host_suffix: &str,
    now: i64,
) -> Result<(), Rejection> {
    let kind = str_field(msg, "Type").ok_or_else(|| Rejection::BadRequest("SNS message has no Type".into()))?;
    match type_header {
        None => return Err(Rejection::Unauthorized("missing x-amz-sns-message-type header")),
        Some(header) if header != kind => {
            return Err(Rejection::Forbidden("x-amz-sns-message-type does not match Type"));
        }
        Some(_) => {}
    }
    if str_field(msg, "Signature").is_none() {
        return Err(Rejection::Unauthorized("SNS message is not signed"));
    }
    match str_field(msg, "SignatureVersion") {
        Some("2") => {}
        // SHA1withRSA: refused rather than supported, the topic can be switched to version 2.
        Some("1") => return Err(Rejection::Forbidden("set SignatureVersion 2 on the topic")),
        _ => return Err(Rejection::Forbidden("unsupported SignatureVersion")),
    }
    if str_field(msg, "TopicArn") != Some(creds.topic_arn.as_str()) {
        return Err(Rejection::Forbidden("unexpected TopicArn"));
    }
    let sent = str_field(msg, "Timestamp")
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp())
        .ok_or(Rejection::Forbidden("SNS message has no valid Timestamp"))?;
    if now.saturating_sub(sent) > MAX_AGE_SECS || sent.saturating_sub(now) > MAX_AGE_SECS {
        return Err(Rejection::Forbidden("SNS message is too old"));
    }
    let cert_url = str_field(msg, "SigningCertURL").ok_or(Rejection::Unauthorized("missing SigningCertURL"))?;
    check_cert_url(cert_url, cert_host_suffix)
}

/// The certificate must come over https from `sns.<region><suffix>` as a `.pem`. Requiring the
/// `sns.` label and a region shape matters: `<bucket>.s3.amazonaws.com` also ends in the suffix and
/// anyone can put a certificate there. Tests: http or https from 127.0.0.1 when the suffix is
/// exactly "127.0.0.1".
fn check_cert_url(raw: &str, suffix: &str) -> Result<(), Rejection> {
    let refuse = Rejection::Forbidden("SigningCertURL is not an SNS certificate URL");
    let Ok(url) = url::Url::parse(raw) else { return Err(refuse) };
    let host = url.host_str().unwrap_or_default();
    let plain = url.username().is_empty() && url.password().is_none() && url.query().is_none();
    if !plain || !url.path().ends_with(".pem") {
        return Err(refuse);
    }
    let test_host = suffix == "127.0.0.1" && host == "127.0.0.1";
    let ok = match url.scheme() {
        "https" => test_host || is_sns_host(host, suffix),
        "http" => test_host,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(refuse)
    }
}

fn is_sns_host(host: &str, suffix: &str) -> bool {
    let Some(rest) = host.strip_prefix("sns.").and_then(|r| r.strip_suffix(suffix)) else { return false };
    let region = if suffix.starts_with('.') {
        rest
    } else {
        match rest.strip_suffix('.') {
            Some(r) => r,
            None => return false,
        }
    };
    is_region(region)
}

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`: two letters, lowercase words, a number.
fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    match parts.as_slice() {
        [first, middle @ .., last] if !middle.is_empty() => {
            first.len() == 2
                && first.bytes().all(|b| b.is_ascii_lowercase())
                && middle.iter().all(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_lowercase()))
                && !last.is_empty()
                && last.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

/// The signing certificate, fetched once per URL (SNS uses few, long-lived ones).
async fn signing_cert(http: &reqwest::Client, url: &str) -> Result<CertificateDer<'static>, Rejection> {
    if let Some(cert) = cert_cache().read().await.get(url) {
        return Ok(cert.clone());
    }
    let Some(cert) = fetch_pem(http, url).await else {
        tracing::warn!(url, "could not fetch the SNS signing certificate");
        return Err(Rejection::Forbidden("could not fetch the SNS signing certificate"));
    };
    let mut cache = cert_cache().write().await;
    if cache.len() >= 32 {
        cache.clear();
    }
    cache.insert(url.to_string(), cert.clone());
    Ok(cert)
}

async fn fetch_pem(http: &reqwest::Client, url: &str) -> Option<CertificateDer<'static>> {
    let resp = http.get(url).timeout(HTTP_TIMEOUT).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body = resp.bytes().await.ok()?;
    if body.len() > MAX_CERT_BYTES {
        return None;
    }
    CertificateDer::from_pem_slice(&body).ok()
}

/// The canonical string SNS signs (AWS "Verifying the signatures of Amazon SNS messages"): each
/// field as "Key\nvalue\n" in a fixed order; `Subject` only when present. `None` when a required
/// field is missing or the Type is unknown.
pub fn string_to_sign(msg: &Value) -> Option<String> {
    let keys: &[&str] = match str_field(msg, "Type")? {
        "Notification" => &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        }
        _ => return None,
    };
    let mut out = String::new();
    for key in keys {
        match msg.get(*key) {
            Some(Value::String(value)) => {
                out.push_str(key);
                out.push('\n');
                out.push_str(value);
                out.push('\n');
            }
            None | Some(Value::Null) if *key == "Subject" => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Where the raw MIME of a received mail is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailSource {
    /// The SNS action's `content`, decoded.
    Inline(Vec<u8>),
    /// The S3 action's object.
    S3 { bucket: String, key: String },
    /// Nothing to answer (spam, virus, not a received mail); the reason is for the log.
    Skip(&'static str),
}

/// Reads an SES notification: SES's own spam/virus verdicts first, then the mail's location.
pub fn mail_source(notification: &Value) -> Result<MailSource, Rejection> {
    if !notification.is_object() {
        return Err(Rejection::BadRequest("SES notification is not a JSON object".into()));
    }
    // SES also publishes e.g. "AmazonSnsSubscriptionSucceeded" to the topic.
    if str_field(notification, "notificationType").is_some_and(|t| t != "Received") {
        return Ok(MailSource::Skip("not a received-mail notification"));
    }
    let receipt = notification.get("receipt").unwrap_or(&NULL);
    let failed = |verdict: &str| {
        receipt.get(verdict).and_then(|v| str_field(v, "status")).is_some_and(|s| s.eq_ignore_ascii_case("FAIL"))
    };
    if failed("virusVerdict") {
        return Ok(MailSource::Skip("virus"));
    }
    if failed("spamVerdict") {
        return Ok(MailSource::Skip("spam"));
    }
    let action = receipt.get("action").unwrap_or(&NULL);
    if str_field(action, "type").is_some_and(|t| t.eq_ignore_ascii_case("S3")) {
        let field = |key: &str| {
            str_field(action, key)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| Rejection::BadRequest(format!("S3 action without {key}")))
        };
        return Ok(MailSource::S3 { bucket: field("bucketName")?, key: field("objectKey")? });
    }
    let content = str_field(notification, "content").ok_or_else(|| {
        Rejection::BadRequest("SES notification carries no mail (use the SNS action or the S3 action)".into())
    })?;
    if str_field(action, "encoding").is_some_and(|e| e.eq_ignore_ascii_case("BASE64")) {
        let compact: String = content.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let raw =
            STANDARD.decode(compact).map_err(|e| Rejection::BadRequest(format!("SES content is not base64: {e}")))?;
        Ok(MailSource::Inline(raw))
    } else {
        Ok(MailSource::Inline(content.as_bytes().to_vec()))
    }
}

/// Parses a received mail into an [`Inbound`]; `Ok(None)` for automatic mail (auto-replies,
/// bounces, lists, our own messages), which must never be answered or loops follow.
pub fn parse_mime(raw: &[u8], our_address: &str) -> Result<Option<Inbound>, Rejection> {
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| Rejection::BadRequest("the mail is not a MIME message".into()))?;
    if is_automatic(&msg) {
        return Ok(None);
    }
    let from = msg.from().and_then(|f| f.first());
    let email = from
        .and_then(|f| f.address())
        .map(|a| a.trim().to_lowercase())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Rejection::BadRequest("the mail has no From address".into()))?;
    let local_part = email.split('@').next().unwrap_or_default();
    if email.eq_ignore_ascii_case(our_address.trim()) || local_part == "mailer-daemon" {
        return Ok(None);
    }
    let message_id = msg.message_id().and_then(clean_id).unwrap_or_else(|| hex::encode(Sha256::digest(raw)));
    let ids = |list: &mail_parser::HeaderValue<'_>| -> Vec<String> {
        list.as_text_list().unwrap_or_default().iter().filter_map(|id| clean_id(id)).collect()
    };
    let references = ids(msg.references());
    let in_reply_to = ids(msg.in_reply_to());
    // The root of the thread keeps every reply in the conversation the first mail opened.
    let thread = references.first().or(in_reply_to.first()).cloned().unwrap_or_else(|| message_id.clone());
    // What a reply's References must repeat (RFC 5322 §3.6.4: References, else In-Reply-To).
    let parent_refs = cap_references(if references.is_empty() { in_reply_to } else { references });
    let text = msg
        .body_text(0)
        .map(|t| t.into_owned())
        .or_else(|| msg.body_html(0).map(|h| html_to_text(&h)))
        .unwrap_or_default();
    let attachments = msg
        .attachments()
        .take(50)
        .map(|part| {
            let mime = part.content_type().map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
                None => ct.ctype().to_ascii_lowercase(),
            });
            let kind = match mime.as_deref().and_then(|m| m.split('/').next()) {
                Some("image") => "image",
                Some("audio") => "audio",
                Some("video") => "video",
                _ => "file",
            };
            Attachment {
                kind: kind.to_string(),
                media_id: None,
                url: None,
                mime_type: mime,
                file_name: part.attachment_name().map(str::to_string),
                size: Some(part.len() as u64),
            }
        })
        .collect();
    let subject = msg.subject().unwrap_or_default().to_string();
    Ok(Some(Inbound {
        provider_message_id: message_id.clone(),
        sender: Sender {
            id: email.clone(),
            name: from.and_then(|f| f.name()).map(str::trim).filter(|n| !n.is_empty()).map(str::to_string),
            phone: None,
            email: Some(email),
        },
        thread,
        text: strip_quoted(&text),
        attachments,
        sent_at: msg.date().filter(|d| d.is_valid()).map(|d| d.to_timestamp()),
        reply_context: json!({
            "message_id": message_id,
            "references": parent_refs,
            "subject": subject,
            "to": our_address,
        }),
    }))
}

/// RFC 3834 `Auto-Submitted`, the de-facto `Precedence`/`X-Autoreply`, and delivery reports.
fn is_automatic(msg: &mail_parser::Message<'_>) -> bool {
    let value = |name: &'static str| -> Option<String> {
        msg.header_raw(name).map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
    };
    if value("Auto-Submitted").is_some_and(|v| v != "no") {
        return true;
    }
    if value("Precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list" | "auto_reply")) {
        return true;
    }
    if value("X-Autoreply").is_some() || value("X-Autorespond").is_some() {
        return true;
    }
    msg.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart") && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
    })
}

/// A message id without `<>`, or `None` when it could break a header (spaces, controls).
fn clean_id(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let ok = !id.is_empty() && id.len() <= 250 && id.chars().all(|c| c.is_ascii_graphic() && c != '<' && c != '>');
    ok.then(|| id.to_string())
}

/// Long threads: the root plus the most recent ids keep the header bounded.
fn cap_references(mut ids: Vec<String>) -> Vec<String> {
    if ids.len() > MAX_REFERENCES {
        let recent = ids.split_off(ids.len() - (MAX_REFERENCES - 1));
        ids.truncate(1);
        ids.extend(recent);
    }
    ids
}

/// Cuts the quoted previous mail: everything from an "On … wrote:" line (which Gmail may wrap
/// onto two lines), an Outlook "-----Original Message-----" or underscore separator, and a trailing
/// block of `>` lines. Keeps the whole text when nothing would remain.
fn strip_quoted(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or_default();
        let sentence = t.ends_with('.') || t.ends_with('!') || t.ends_with('?');
        let wrote = t.starts_with("On ") && (t.ends_with("wrote:") || (!sentence && next.ends_with("wrote:")));
        let original = t.starts_with("-----") && t.to_ascii_lowercase().contains("original message");
        let separator = t.len() >= 10 && t.chars().all(|c| c == '_');
        if wrote || original || separator {
            end = i;
            break;
        }
    }
    while end > 0 && lines.get(end - 1).is_some_and(|l| l.trim().is_empty() || l.trim_start().starts_with('>')) {
        end -= 1;
    }
    let kept = lines.get(..end).unwrap_or_default().join("\n");
    let kept = kept.trim();
    if kept.is_empty() {
        text.trim().to_string()
    } else {
        kept.to_string()
    }
}

/// Crude HTML to text for html-only mail: tags dropped, block ends as newlines, basic entities.
fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            // A lone '<' is text ("a < b").
            rest = &rest[open..];
            break;
        };
        let tag = rest[open + 1..open + close].trim().to_ascii_lowercase();
        let name = tag.trim_start_matches('/').split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or("");
        if matches!(name, "br" | "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3") {
            out.push('\n');
        }
        rest = &rest[open + close + 1..];
        if (name == "style" || name == "script") && !tag.starts_with('/') {
            let end_tag = format!("</{name}");
            let skip = rest.to_ascii_lowercase().find(&end_tag).unwrap_or(rest.len());
            rest = &rest[skip..];
        }
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    // At most one blank line between paragraphs, none around the text.
    let mut lines: Vec<&str> = Vec::new();
    for line in decoded.lines().map(str::trim) {
        if !line.is_empty() || lines.last().is_some_and(|l| !l.is_empty()) {
            lines.push(line);
        }
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

/// Builds the reply as RFC 5322 bytes for SES `SendRawEmail`, threaded under the customer's mail
/// (In-Reply-To, References). Returns the new Message-ID (without `<>`) and the bytes.
pub fn build_reply(our_address: &str, to: &str, context: &Value, text: &str) -> (String, Vec<u8>) {
    let domain = our_address
        .rsplit_once('@')
        .map(|(_, d)| d.trim())
        .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        .unwrap_or("localhost");
    let message_id = format!("{}@{}", uuid::Uuid::new_v4(), domain);
    let parent = str_field(context, "message_id").and_then(clean_id);
    let mut references: Vec<String> = context
        .get("references")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(|id| id.as_str().and_then(clean_id)).collect())
        .unwrap_or_default();
    if let Some(parent) = &parent {
        if references.last() != Some(parent) {
            references.push(parent.clone());
        }
    }
    let references = cap_references(references);

    let mut out = String::new();
    let mut header = |name: &str, value: &str| {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    };
    header("From", &one_line(our_address));
    header("To", &one_line(to));
    header("Subject", &encode_words(&reply_subject(str_field(context, "subject").unwrap_or_default())));
    header("Date", &chrono::Utc::now().to_rfc2822());
    header("Message-ID", &format!("<{message_id}>"));
    if let Some(parent) = &parent {
        header("In-Reply-To", &format!("<{parent}>"));
    }
    if !references.is_empty() {
        header("References", &fold_ids(&references));
    }
    // Marks the reply as automatic: another support inbox (ours included) drops it instead of
    // answering, so two assistants never mail each other in a loop.
    header("Auto-Submitted", "auto-replied");
    header("MIME-Version", "1.0");
    header("Content-Type", "text/plain; charset=utf-8");
    header("Content-Transfer-Encoding", "8bit");
    out.push_str("\r\n");
    out.push_str(&body_lines(text));
    (message_id, out.into_bytes())
}

/// "Re: " once: mail clients add their own and "Re: Re: Re:" looks like a machine.
fn reply_subject(subject: &str) -> String {
    let subject: String = one_line(subject).chars().take(400).collect();
    let already = subject.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("re:"));
    match (already, subject.is_empty()) {
        (true, _) => subject,
        (false, true) => "Re:".to_string(),
        (false, false) => format!("Re: {subject}"),
    }
}

/// No control characters (CR/LF would let a value inject headers), surrounding space trimmed.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_string()
}

/// RFC 2047 `=?UTF-8?B?…?=` words (≤ 75 characters each, split on character boundaries) for
/// non-ASCII values; ASCII passes as is.
fn encode_words(value: &str) -> String {
    if value.is_ascii() {
        return value.to_string();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

/// `<id> <id> …`, folded so no line grows past ~78 characters.
fn fold_ids(ids: &[String]) -> String {
    let mut out = String::new();
    let mut line_len = "References: ".len();
    for (i, id) in ids.iter().enumerate() {
        let item = format!("<{id}>");
        if i > 0 {
            if line_len + 1 + item.len() > 78 {
                out.push_str("\r\n ");
                line_len = 1;
            } else {
                out.push(' ');
                line_len += 1;
            }
        }
        line_len += item.len();
        out.push_str(&item);
    }
    out
}

/// CRLF line ends and no line over 998 bytes (RFC 5322's limit for 8bit bodies).
fn body_lines(text: &str) -> String {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(normalized.len() + 64);
    for line in normalized.trim_end().split('\n') {
        let mut len = 0;
        for c in line.chars() {
            if len + c.len_utf8() > 998 {
                out.push_str("\r\n");
                len = 0;
            }
            out.push(c);
            len += c.len_utf8();
        }
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests;
