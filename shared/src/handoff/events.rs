//! Reading a conversation's events after a sequence number, waiting for the next ones.
//!
//! Events are written by the database (`chatapp_append_event`, triggers on messages and notes)
//! in the transaction of the change, numbered per conversation without gaps. A reader asks for
//! everything after the last `seq` it saw, so a client that reconnects gets each missed event
//! exactly once; row-level security hides internal events (notes) from customers.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::app::AppDeps;
use crate::db::{DbError, TenantTx};
use crate::error::ApiError;
use crate::tenant::TenantCtx;

/// The longest a request may wait for new events (`wait=`), in seconds; under API Gateway's
/// 30-second integration timeout.
pub const MAX_WAIT_SECS: u64 = 25;
/// Events per answer; a client with more to catch up on asks again from `last_seq`.
pub const PAGE: i64 = 200;
/// While no LISTEN connection is available (or between notifications, as a safety net), how
/// often a waiting request looks again.
const POLL_EVERY: Duration = Duration::from_millis(1000);

/// One event of a conversation.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationEvent {
    /// Position in the conversation's event sequence (1, 2, ... without gaps).
    pub seq: i64,
    /// `message.created`, `note.created`, `conversation.assigned`, `typing`, ...
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub data: Value,
    /// Only support agents see internal events (notes).
    pub internal: bool,
    pub created_at: DateTime<Utc>,
}

/// Events after the asked sequence number, oldest first.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    pub events: Vec<ConversationEvent>,
    /// Ask for `after=<last_seq>` next.
    pub last_seq: i64,
    /// The conversation's status now (`active`, `waiting_human`, `with_human`, `resolved`, ...).
    pub status: crate::status::ConversationStatus,
}

/// The query parameters of an events route.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// The last sequence number the client has (default 0: from the start).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Seconds to wait when nothing is newer (0..=25, default 0: answer at once).
    #[param(minimum = 0, maximum = 25)]
    pub wait: Option<u64>,
    /// Master admins acting for a company.
    pub company_id: Option<Uuid>,
}

impl EventsQuery {
    /// `(after, wait)`, checked.
    pub fn checked(&self) -> Result<(i64, Duration), ApiError> {
        let after = self.after.unwrap_or(0);
        if after < 0 {
            return Err(ApiError::validation("after must be 0 or more"));
        }
        let wait = self.wait.unwrap_or(0);
        if wait > MAX_WAIT_SECS {
            return Err(ApiError::validation(format!("wait must be 0..={MAX_WAIT_SECS} seconds")));
        }
        Ok((after, Duration::from_secs(wait)))
    }
}

/// The events after `after` visible to this transaction; `None` if the conversation is not.
pub async fn list(tx: &TenantTx, company: Uuid, conversation: Uuid, after: i64) -> Result<Option<EventPage>, DbError> {
    let Some(conv) = tx
        .client()
        .query_opt(
            "SELECT status FROM chatapp_conversations WHERE id = $1 AND company_id = $2 AND deleted_at IS NULL",
            &[&conversation, &company],
        )
        .await?
    else {
        return Ok(None);
    };
    let rows = tx
        .client()
        .query(
            "SELECT seq, type, payload, internal, created_at FROM chatapp_conversation_events
             WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&conversation, &after, &PAGE],
        )
        .await?;
    let events: Vec<ConversationEvent> = rows
        .iter()
        .map(|r| ConversationEvent {
            seq: r.get(0),
            kind: r.get(1),
            data: r.get(2),
            internal: r.get(3),
            created_at: r.get(4),
        })
        .collect();
    let last_seq = events.last().map_or(after, |e| e.seq);
    Ok(Some(EventPage { events, last_seq, status: conv.get(0) }))
}

/// The events after `after`, waiting up to `wait` for one to be committed when there is none
/// yet. Not visible to `ctx` (another tenant's, or a support agent's colleague's) → 404.
pub async fn wait(
    deps: &AppDeps,
    ctx: &TenantCtx,
    conversation: Uuid,
    after: i64,
    wait: Duration,
) -> Result<EventPage, ApiError> {
    let company = ctx.require_company()?.as_uuid();
    let deadline = Instant::now() + wait.min(Duration::from_secs(MAX_WAIT_SECS));
    // Subscribed before the first read, so an event committed in between still wakes us.
    // A LISTEN connection per process suits a long-running server; a Lambda function (one
    // request per instance) polls instead (EVENTS_LISTEN=false in template.yaml).
    let mut notified =
        if wait.is_zero() || !deps.cfg.events_listen { None } else { deps.db.listener().subscribe().await };
    loop {
        let tx = deps.db.begin(ctx).await?;
        let read = list(&tx, company, conversation, after).await.map_err(ApiError::from);
        let page = tx.finish(read).await?.ok_or(ApiError::NotFound)?;
        let now = Instant::now();
        if !page.events.is_empty() || now >= deadline {
            return Ok(page);
        }
        let nap = (deadline - now).min(POLL_EVERY * 5);
        match notified.as_mut() {
            Some(rx) => {
                // Wake on this conversation's next event, a lagged or closed channel (re-read), or
                // the nap's end.
                let woke = tokio::time::timeout(nap, async {
                    loop {
                        match rx.recv().await {
                            Ok(n) if n.conversation == conversation && n.seq > after => return true,
                            Ok(_) => continue,
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return true,
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return false,
                        }
                    }
                })
                .await;
                if let Ok(false) = woke {
                    notified = None;
                }
            }
            None => tokio::time::sleep(nap.min(POLL_EVERY)).await,
        }
    }
}
