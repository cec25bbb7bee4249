//! One webhook request, whatever the channel: find the configuration by the id in the path
//! (the tenant is known before any secret is opened), open its sealed credentials, let the
//! provider's module verify the exact bytes and split the delivery, then store every message
//! once with its turn job in one tenant transaction, and relay the jobs.

use serde_json::Value;
use uuid::Uuid;

use super::{email, meta, slack, teams, telegram, ChannelKind, Inbound, RawRequest, Rejection, Verdict};
use crate::adapters::blob::ObjectKey;
use crate::adapters::queue::CHANNEL_TURN;
use crate::app::AppDeps;
use crate::auth::tokens;
use crate::error::ApiError;
use crate::repo::channels as repo;
use crate::sealed::SealingKey;
use crate::tenant::CompanyId;

/// What the webhook answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// The provider's handshake: 200 with this text.
    Challenge(String),
    /// Accepted: 200.
    Accepted(Counts),
}

/// What one request held (logged; tests and the bench read it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub stored: usize,
    pub duplicates: usize,
    pub ignored: usize,
    pub receipts: usize,
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::Unauthorized(why) => ApiError::unauthorized("webhook_unauthorized", why),
            Rejection::Forbidden(why) => ApiError::forbidden("webhook_forbidden", why),
            Rejection::BadRequest(why) => ApiError::bad_request("webhook_malformed", why),
        }
    }
}

/// Opens a configuration's sealed credentials as the channel's credential type.
pub fn open_credentials<T: serde::de::DeserializeOwned>(
    key: &SealingKey,
    company: Uuid,
    config: Uuid,
    sealed: &[u8],
) -> Result<T, ApiError> {
    let plain = key.open(company, config, sealed).map_err(ApiError::internal)?;
    serde_json::from_slice(&plain).map_err(ApiError::internal)
}

/// Handles one webhook request for the configuration `config` of channel `kind`.
pub async fn receive(
    deps: &AppDeps,
    kind: ChannelKind,
    config: Uuid,
    req: RawRequest<'_>,
    now_unix: i64,
) -> Result<Received, ApiError> {
    let target = repo::webhook_target(&deps.db, config, kind).await?.ok_or(ApiError::NotFound)?;
    // A disabled channel (or suspended company) is not there for the provider: nothing is read.
    let sealed = match (&target.sealed, target.active) {
        (Some(s), true) => s.as_slice(),
        _ => return Err(ApiError::NotFound),
    };
    let key = SealingKey::new(deps.cfg.secrets_key.expose());
    let (company, ep, http) = (target.company_id, &deps.cfg.channel_endpoints, super::http());
    let (verdict, receipts) = match kind {
        ChannelKind::Whatsapp | ChannelKind::Messenger | ChannelKind::Instagram => {
            let creds: meta::Credentials = open_credentials(&key, company, config, sealed)?;
            if req.method == http::Method::GET {
                return match meta::handshake(req.query, creds.verify_token.expose())? {
                    Verdict::Challenge(c) => Ok(Received::Challenge(c)),
                    Verdict::Messages { .. } => Err(ApiError::NotFound),
                };
            }
            meta::verify(&req, creds.app_secret.expose())?;
            let mut parsed = meta::parse(kind, req.body)?;
            // One Meta app has one callback URL for all its numbers and pages: messages to
            // another number or page of the app are not this configuration's to answer.
            if let Verdict::Messages { messages, ignored } = &mut parsed.verdict {
                let (field, ours) = match kind {
                    ChannelKind::Whatsapp => ("phone_number_id", creds.phone_number_id.as_deref()),
                    _ => ("page_id", creds.page_id.as_deref()),
                };
                if let Some(ours) = ours {
                    let before = messages.len();
                    messages.retain(|m| m.reply_context.get(field).and_then(Value::as_str).is_none_or(|id| id == ours));
                    *ignored += before - messages.len();
                }
            }
            let receipts = parsed.statuses.into_iter().map(|s| (s.provider_message_id, s.status, s.error)).collect();
            (parsed.verdict, receipts)
        }
        ChannelKind::Telegram => {
            let creds: telegram::Credentials = open_credentials(&key, company, config, sealed)?;
            telegram::verify(&req, creds.secret_token.expose())?;
            let bot = target.hint.get("bot_username").and_then(Value::as_str);
            (telegram::parse(req.body, bot)?, Vec::new())
        }
        ChannelKind::Slack => {
            let creds: slack::Credentials = open_credentials(&key, company, config, sealed)?;
            slack::verify(&req, creds.signing_secret.expose(), now_unix)?;
            // The bot's own user id: given with the credentials or learned by the check action.
            let bot = creds.bot_user_id.as_deref().or(target.hint.get("bot_user_id").and_then(Value::as_str));
            (slack::parse(req.body, bot)?, Vec::new())
        }
        ChannelKind::Teams => {
            let creds: teams::Credentials = open_credentials(&key, company, config, sealed)?;
            let service_url = teams::service_url(req.body)?;
            teams::verify(http, ep, &req, &creds.app_id, &service_url, now_unix).await?;
            (teams::parse(req.body)?, Vec::new())
        }
        ChannelKind::Email => {
            let creds: email::Credentials = open_credentials(&key, company, config, sealed)?;
            (receive_email(deps, company, &creds, &req, now_unix).await?, Vec::new())
        }
    };
    let messages = match verdict {
        Verdict::Challenge(c) => return Ok(Received::Challenge(c)),
        Verdict::Messages { messages, ignored } => (messages, ignored),
    };
    let counts = store(deps, company, config, target.agent_id, kind, &messages.0, &receipts).await?;
    Ok(Received::Accepted(Counts { ignored: messages.1, ..counts }))
}

/// SES through SNS: a subscription is confirmed (only after its signature checked); a
/// notification's message is read inline or from the company's prefix of the bucket.
async fn receive_email(
    deps: &AppDeps,
    company: Uuid,
    creds: &email::Credentials,
    req: &RawRequest<'_>,
    now_unix: i64,
) -> Result<Verdict, ApiError> {
    let http = super::http();
    match email::verify(http, &deps.cfg.channel_endpoints, req, creds, now_unix).await? {
        email::SnsMessage::SubscriptionConfirmation { subscribe_url } => {
            let confirmed = http.get(&subscribe_url).send().await.map(|r| r.status().is_success()).unwrap_or(false);
            if !confirmed {
                return Err(ApiError::internal("SNS subscription confirmation failed"));
            }
            Ok(Verdict::ignored(1))
        }
        email::SnsMessage::UnsubscribeConfirmation => Ok(Verdict::ignored(1)),
        email::SnsMessage::Notification(notification) => {
            // One SES rule may serve several companies' addresses: only mail addressed to this
            // channel's address is this channel's.
            let ours = notification
                .pointer("/receipt/recipients")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().filter_map(Value::as_str).any(|a| a.eq_ignore_ascii_case(&creds.address)));
            if !ours {
                tracing::info!("inbound email not addressed to this channel's address: ignored");
                return Ok(Verdict::ignored(1));
            }
            let raw = match email::mail_source(&notification)? {
                email::MailSource::Skip(why) => {
                    tracing::info!(reason = why, "inbound email skipped");
                    return Ok(Verdict::ignored(1));
                }
                email::MailSource::Inline(bytes) => bytes,
                email::MailSource::S3 { key, .. } => {
                    // The receipt rule writes under the company's prefix; anything else is not
                    // this company's mail.
                    let prefix = format!("{company}/");
                    let rest = key
                        .strip_prefix(&prefix)
                        .ok_or(Rejection::Forbidden("the message is not under this company's prefix"))?;
                    let key = ObjectKey::new(CompanyId::new(company), rest)
                        .map_err(|_| Rejection::BadRequest("bad object key".into()))?;
                    deps.blobs
                        .get(&key)
                        .await
                        .map_err(ApiError::internal)?
                        .ok_or_else(|| ApiError::internal("inbound email object missing"))?
                        .to_vec()
                }
            };
            Ok(match email::parse_mime(&raw, &creds.address)? {
                Some(m) => Verdict::Messages { messages: vec![m], ignored: 0 },
                None => Verdict::ignored(1),
            })
        }
    }
}

type Receipt = (String, String, Option<String>);

async fn store(
    deps: &AppDeps,
    company: Uuid,
    config: Uuid,
    agent: Uuid,
    kind: ChannelKind,
    messages: &[Inbound],
    receipts: &[Receipt],
) -> Result<Counts, ApiError> {
    let mut counts = Counts::default();
    let mut new_conversations = 0;
    if messages.is_empty() && receipts.is_empty() {
        return Ok(counts);
    }
    let ctx = crate::auth::worker_ctx(company);
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        for m in messages {
            // Never handed out: channel customers are identified by the provider, not a token.
            let token = tokens::sha256_hex(&format!("ch_{}", tokens::random_secret()));
            match repo::store_inbound(&tx, config, agent, kind, m, &token).await? {
                Some(stored) => {
                    counts.stored += 1;
                    new_conversations += i32::from(stored.new_conversation);
                }
                None => counts.duplicates += 1,
            }
        }
        for (id, status, error) in receipts {
            counts.receipts += repo::apply_receipt(&tx, company, id, status, error.as_deref()).await? as usize;
        }
        Ok::<_, ApiError>(())
    }
    .await;
    tx.finish(result).await?;
    if new_conversations > 0 {
        let tx = deps.db.begin(&ctx).await?;
        let counted =
            repo::count_new_conversations(&tx, company, agent, new_conversations).await.map_err(ApiError::from);
        tx.finish(counted).await?;
    }
    if counts.stored > 0 {
        crate::outbox::relay_now(deps, &[CHANNEL_TURN]).await;
    }
    tracing::info!(channel = kind.as_str(), %config, stored = counts.stored, duplicates = counts.duplicates,
        receipts = counts.receipts, "webhook accepted");
    Ok(counts)
}
