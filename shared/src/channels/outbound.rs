//! Delivering one reply through its channel: claim the delivery row (so a redelivered job
//! never sends twice), convert and split the text for the channel, send each part not yet sent
//! with retries, record each part as it goes, and end with `sent`, `failed` (with the
//! provider's error) or `pending` again for the queue to retry later.
//!
//! Replies of one conversation leave in the order they were written, although their jobs may
//! run in any order or at once: a job first sends the conversation's earlier replies still
//! pending, waits (up to [`WAIT_FOR_EARLIER`]) for one another sender holds, and stops with a
//! retry behind one that is deferred.

use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

use super::deliver::{self, Outcome, RetryPolicy};
use super::{email, format, meta, slack, teams, telegram, ChannelKind, SendError, SentId};
use crate::app::AppDeps;
use crate::error::ApiError;
use crate::repo::channels as repo;
use crate::sealed::SealingKey;

/// How long a sender owns a claimed delivery before another may take it over.
const LEASE_SECS: f64 = 120.0;
/// How long a job waits for an earlier reply of its conversation that another sender is
/// sending, before handing its own back to the queue.
const WAIT_FOR_EARLIER: Duration = Duration::from_secs(20);
/// Meta's customer-service window.
const REPLY_WINDOW_HOURS: i64 = 24;

/// What became of one delivery job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// All parts accepted by the provider.
    Sent { parts: usize },
    /// Will not be sent; the reason is stored on the delivery.
    Failed { code: String },
    /// Not done yet: retry the job after this many seconds.
    Retry { after: u64 },
    /// Already sent, failed, or being sent by another worker: nothing to do.
    Skipped,
}

enum Creds {
    Meta(meta::Credentials),
    Telegram(telegram::Credentials),
    Slack(slack::Credentials),
    Teams(teams::Credentials),
    Email(email::Credentials),
}

/// Delivers the reply `message` of `company` (a `channel-send` job), after the replies written
/// before it in its conversation.
pub async fn deliver(
    deps: &AppDeps,
    company: Uuid,
    message: Uuid,
    policy: &RetryPolicy,
) -> Result<Delivered, ApiError> {
    let ctx = crate::auth::worker_ctx(company);
    let waited_since = std::time::Instant::now();
    loop {
        let tx = deps.db.begin(&ctx).await?;
        let next = repo::next_in_order(&tx, company, message).await;
        let Some((next, held)) = tx.finish(next.map_err(ApiError::from)).await? else {
            return Ok(Delivered::Skipped);
        };
        if next == message {
            return deliver_one(deps, company, message, policy).await;
        }
        let earlier = if held { Delivered::Skipped } else { deliver_one(deps, company, next, policy).await? };
        match earlier {
            Delivered::Sent { .. } | Delivered::Failed { .. } => {}
            Delivered::Retry { after } => return Ok(Delivered::Retry { after }),
            // Another sender has it: wait for it to settle.
            Delivered::Skipped if waited_since.elapsed() >= WAIT_FOR_EARLIER => {
                return Ok(Delivered::Retry { after: WAIT_FOR_EARLIER.as_secs() });
            }
            Delivered::Skipped => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Delivers one reply, whatever else its conversation has pending.
async fn deliver_one(
    deps: &AppDeps,
    company: Uuid,
    message: Uuid,
    policy: &RetryPolicy,
) -> Result<Delivered, ApiError> {
    let ctx = crate::auth::worker_ctx(company);
    let tx = deps.db.begin(&ctx).await?;
    let claimed = async {
        let Some(out) = repo::claim_delivery(&tx, company, message, LEASE_SECS).await? else {
            return Ok(None);
        };
        let sealed = match out.config_id {
            Some(config) => repo::sealed(&tx, company, config).await?,
            None => None,
        };
        Ok::<_, ApiError>(Some((out, sealed)))
    }
    .await;
    let Some((out, sealed)) = tx.finish(claimed).await? else {
        return Ok(Delivered::Skipped);
    };
    let (Some(kind), Some(config), Some(sealed)) = (out.channel, out.config_id, sealed) else {
        return fail(deps, company, message, "channel_missing", "the conversation's channel configuration is gone")
            .await;
    };
    // Credentials that do not open (another key, a damaged row) will not open on a retry
    // either: the delivery fails for the operator to see instead of cycling through the queue.
    let Some(creds) = open_credentials(deps, company, config, kind, &sealed) else {
        return fail(deps, company, message, "credentials_unreadable", "the channel's credentials could not be opened")
            .await;
    };
    if let Creds::Email(c) = &creds {
        // One message per reply, threaded under the customer's (no splitting: mail has no limit
        // a reply reaches). Our Message-ID is the id recorded: the customer's answer cites it.
        let Some(to) = out.customer_email.clone() else {
            return fail(deps, company, message, "no_recipient", "the conversation has no customer address").await;
        };
        let text = format::convert(&out.content, format::Dialect::Plain);
        let (mid, raw) = email::build_reply(&c.address, &to, &out.reply_context, &text);
        let outcome = deliver::run(
            policy,
            |_| async { deps.mail.send_raw(&c.address, &to, &raw).await.map(|_| Some(mid.clone())) },
            tokio::time::sleep,
        )
        .await;
        return conclude(deps, company, message, outcome, 1, 0).await;
    }
    let thread = out.thread.clone().unwrap_or_default();

    // Outside Meta's 24-hour window only a template may go out; without one the reply fails
    // visibly instead of being silently dropped by the provider.
    let outside_window = kind.has_reply_window()
        && out.last_customer_at.is_none_or(|t| Utc::now() - t > chrono::Duration::hours(REPLY_WINDOW_HOURS));
    if outside_window {
        let template = out.settings.get("window_template");
        let (name, language) = (
            template.and_then(|t| t.get("name")).and_then(Value::as_str),
            template.and_then(|t| t.get("language")).and_then(Value::as_str).unwrap_or("en_US"),
        );
        return match (&creds, name, kind) {
            (Creds::Meta(c), Some(name), ChannelKind::Whatsapp) if out.parts_sent == 0 => {
                let http = super::http();
                let ep = &deps.cfg.channel_endpoints;
                let outcome = deliver::run(
                    policy,
                    |_| meta::send_template(http, ep, c, &thread, name, language),
                    tokio::time::sleep,
                )
                .await;
                conclude(deps, company, message, outcome, 1, 0).await
            }
            _ => {
                fail(
                    deps,
                    company,
                    message,
                    "outside_window",
                    "the customer's last message is more than 24 hours old and no template is configured",
                )
                .await
            }
        };
    }

    let parts = format::prepare(kind, &out.content);
    if parts.is_empty() {
        return fail(deps, company, message, "empty", "the reply has no text to send").await;
    }
    let total = parts.len();
    for (index, part) in parts.iter().enumerate().skip(out.parts_sent.max(0) as usize) {
        let outcome = deliver::run(
            policy,
            |_| send_part(deps, kind, &creds, &thread, &out.reply_context, part),
            tokio::time::sleep,
        )
        .await;
        let done = conclude(deps, company, message, outcome, total, index).await?;
        match done {
            Delivered::Sent { .. } if index + 1 < total => continue,
            other => return Ok(other),
        }
    }
    Ok(Delivered::Sent { parts: total })
}

/// Records the outcome of part `index` of `total`.
async fn conclude(
    deps: &AppDeps,
    company: Uuid,
    message: Uuid,
    outcome: Outcome,
    total: usize,
    index: usize,
) -> Result<Delivered, ApiError> {
    let ctx = crate::auth::worker_ctx(company);
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        Ok::<_, ApiError>(match outcome {
            Outcome::Sent(id) => {
                repo::part_sent(&tx, message, id.as_deref()).await?;
                if index + 1 == total {
                    repo::finish_delivery(&tx, message, "sent", Some(total as i32), None).await?;
                }
                Delivered::Sent { parts: index + 1 }
            }
            Outcome::Deferred { after, last_error } => {
                repo::finish_delivery(&tx, message, "pending", Some(total as i32), Some(("retrying", &last_error)))
                    .await?;
                Delivered::Retry { after }
            }
            Outcome::Failed { code, message: text } => {
                repo::finish_delivery(&tx, message, "failed", Some(total as i32), Some((&code, &text))).await?;
                Delivered::Failed { code }
            }
        })
    }
    .await;
    tx.finish(result).await
}

fn open_credentials(deps: &AppDeps, company: Uuid, config: Uuid, kind: ChannelKind, sealed: &[u8]) -> Option<Creds> {
    let plain = SealingKey::new(deps.cfg.secrets_key.expose()).open(company, config, sealed).ok()?;
    Some(match kind {
        ChannelKind::Whatsapp | ChannelKind::Messenger | ChannelKind::Instagram => {
            Creds::Meta(serde_json::from_slice(&plain).ok()?)
        }
        ChannelKind::Telegram => Creds::Telegram(serde_json::from_slice(&plain).ok()?),
        ChannelKind::Slack => Creds::Slack(serde_json::from_slice(&plain).ok()?),
        ChannelKind::Teams => Creds::Teams(serde_json::from_slice(&plain).ok()?),
        ChannelKind::Email => Creds::Email(serde_json::from_slice(&plain).ok()?),
    })
}

async fn fail(deps: &AppDeps, company: Uuid, message: Uuid, code: &str, text: &str) -> Result<Delivered, ApiError> {
    let ctx = crate::auth::worker_ctx(company);
    let tx = deps.db.begin(&ctx).await?;
    let r = repo::finish_delivery(&tx, message, "failed", None, Some((code, text))).await.map_err(ApiError::from);
    tx.finish(r).await?;
    tracing::warn!(%message, code, "channel reply not delivered");
    Ok(Delivered::Failed { code: code.to_string() })
}

async fn send_part(
    deps: &AppDeps,
    kind: ChannelKind,
    creds: &Creds,
    thread: &str,
    context: &Value,
    part: &str,
) -> Result<SentId, SendError> {
    let http = super::http();
    let ep = &deps.cfg.channel_endpoints;
    match creds {
        Creds::Meta(c) => meta::send_text(http, ep, kind, c, thread, part).await,
        Creds::Telegram(c) => match telegram::send_text(http, ep, c, thread, context, part, true).await {
            // Telegram refused our escaping: the same words as plain text rather than nothing.
            Err(SendError::Permanent { code, .. }) if code == "parse_entities" => {
                telegram::send_text(http, ep, c, thread, context, &unescape_markdown_v2(part), false).await
            }
            other => other,
        },
        Creds::Slack(c) => slack::send_text(http, ep, c, context, thread, part).await,
        Creds::Teams(c) => teams::send_text(http, ep, c, context, part).await,
        Creds::Email(_) => Err(SendError::Permanent { code: "not_supported".into(), message: "email".into() }),
    }
}

/// Typing indicator before a turn, where the channel's API has one (best effort); none while a
/// human owns the conversation (the AI will not answer).
pub async fn typing(deps: &AppDeps, company: Uuid, inbound: Uuid) {
    if let Err(e) = try_typing(deps, company, inbound).await {
        tracing::debug!(error = %e, "typing indicator not sent");
    }
}

async fn try_typing(deps: &AppDeps, company: Uuid, inbound: Uuid) -> Result<(), String> {
    let ctx = crate::auth::worker_ctx(company);
    let tx = deps.db.begin(&ctx).await.map_err(|e| e.to_string())?;
    let target = repo::typing_target(&tx, company, inbound).await;
    let Some((config, kind, thread, context, provider_id, sealed)) =
        tx.finish(target).await.map_err(|e| e.to_string())?
    else {
        return Ok(());
    };
    let (Some(kind), Some(sealed)) = (kind, sealed) else { return Ok(()) };
    let plain =
        SealingKey::new(deps.cfg.secrets_key.expose()).open(company, config, &sealed).map_err(|e| e.to_string())?;
    let (http, ep) = (super::http(), &deps.cfg.channel_endpoints);
    let sent = match kind {
        ChannelKind::Whatsapp | ChannelKind::Messenger | ChannelKind::Instagram => {
            let c: meta::Credentials = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
            meta::send_typing(http, ep, kind, &c, &thread, Some(&provider_id)).await
        }
        ChannelKind::Telegram => {
            let c: telegram::Credentials = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
            telegram::send_typing(http, ep, &c, &thread).await
        }
        ChannelKind::Teams => {
            let c: teams::Credentials = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
            teams::send_typing(http, ep, &c, &context).await
        }
        ChannelKind::Slack | ChannelKind::Email => Ok(()),
    };
    sent.map_err(|e| e.to_string())
}

/// Drops MarkdownV2's escaping backslashes (the plain-text fallback).
fn unescape_markdown_v2(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The retry policy of the sender function: short in-invocation retries, longer waits go back
/// to the queue.
pub fn default_policy() -> RetryPolicy {
    RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(10) }
}
