//! Channel configurations, inbound messages and deliveries (migration 0021).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::channels::{ChannelKind, Inbound};
use crate::db::{Db, DbError, TenantTx};

/// A channel configuration as admins see it: never its credentials.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChannelConfig {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub channel: ChannelKind,
    pub name: Option<String>,
    /// Non-secret identifiers of the credentials (phone number id, page id, bot name, app id).
    #[schema(value_type = Object)]
    pub credentials_hint: Value,
    /// Where the provider must send its webhooks.
    pub webhook_url: Option<String>,
    pub is_active: bool,
    /// The last check action succeeded.
    pub is_verified: bool,
    pub last_verified_at: Option<DateTime<Utc>>,
    pub last_check_at: Option<DateTime<Utc>>,
    pub last_check_error: Option<String>,
    /// Per-channel settings: the greeting, and the WhatsApp template sent outside the 24-hour window.
    #[schema(value_type = Object)]
    pub settings: Value,
    pub secret_rotated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, agent_id, channel::text, name, credentials_hint, webhook_url, COALESCE(is_active, true),
    COALESCE(is_verified, false), last_verified_at, last_check_at, last_check_error, COALESCE(settings, '{}'::jsonb),
    secret_rotated_at, created_at, updated_at";

fn config(r: &tokio_postgres::Row) -> ChannelConfig {
    let channel: String = r.get(2);
    ChannelConfig {
        id: r.get(0),
        agent_id: r.get(1),
        channel: ChannelKind::parse(&channel).unwrap_or(ChannelKind::Whatsapp),
        name: r.get(3),
        credentials_hint: r.get(4),
        webhook_url: r.get(5),
        is_active: r.get(6),
        is_verified: r.get(7),
        last_verified_at: r.get(8),
        last_check_at: r.get(9),
        last_check_error: r.get(10),
        settings: r.get(11),
        secret_rotated_at: r.get(12),
        created_at: r.get(13),
        updated_at: r.get(14),
    }
}

pub struct NewConfig<'a> {
    pub id: Uuid,
    pub company_id: Uuid,
    pub agent_id: Uuid,
    pub channel: ChannelKind,
    pub name: Option<&'a str>,
    pub sealed: &'a [u8],
    pub hint: &'a Value,
    pub webhook_url: &'a str,
    pub settings: &'a Value,
}

pub async fn insert(tx: &TenantTx, c: &NewConfig<'_>) -> Result<ChannelConfig, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "INSERT INTO chatapp_channel_configs (id, company_id, agent_id, channel, name, credentials_sealed,
                     credentials_hint, webhook_id, webhook_url, settings, secret_rotated_at)
                 VALUES ($1, $2, $3, $4::text::channel_type, $5, $6, $7, $10, $8, $9, now())
                 RETURNING {COLUMNS}"
            ),
            &[
                &c.id,
                &c.company_id,
                &c.agent_id,
                &c.channel.as_str(),
                &c.name,
                &c.sealed,
                c.hint,
                &c.webhook_url,
                c.settings,
                &c.id.to_string(),
            ],
        )
        .await?;
    Ok(config(&row))
}

/// Configurations of the company, newest first, optionally of one agent and/or channel.
pub async fn list(
    tx: &TenantTx,
    company: Uuid,
    agent: Option<Uuid>,
    channel: Option<ChannelKind>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ChannelConfig>, i64), DbError> {
    let channel = channel.map(|c| c.as_str());
    let filter = "company_id = $1 AND ($2::uuid IS NULL OR agent_id = $2) AND ($3::text IS NULL OR channel::text = $3)";
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS} FROM chatapp_channel_configs WHERE {filter}
                 ORDER BY created_at DESC, id LIMIT $4 OFFSET $5"
            ),
            &[&company, &agent, &channel, &limit, &offset],
        )
        .await?;
    let total: i64 = tx
        .client()
        .query_one(
            &format!("SELECT count(*) FROM chatapp_channel_configs WHERE {filter}"),
            &[&company, &agent, &channel],
        )
        .await?
        .get(0);
    Ok((rows.iter().map(config).collect(), total))
}

pub async fn get(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<ChannelConfig>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!("SELECT {COLUMNS} FROM chatapp_channel_configs WHERE id = $1 AND company_id = $2 FOR UPDATE"),
            &[&id, &company],
        )
        .await?;
    Ok(row.as_ref().map(config))
}

/// The sealed credentials of a configuration of the company.
pub async fn sealed(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<Vec<u8>>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT credentials_sealed FROM chatapp_channel_configs WHERE id = $1 AND company_id = $2",
            &[&id, &company],
        )
        .await?;
    Ok(row.and_then(|r| r.get(0)))
}

/// What an admin may change; `None` leaves a field as it is.
#[derive(Default)]
pub struct ConfigChange<'a> {
    pub name: Option<&'a str>,
    pub agent_id: Option<Uuid>,
    pub is_active: Option<bool>,
    pub settings: Option<&'a Value>,
    /// New sealed credentials and their hint (a rotation).
    pub credentials: Option<(&'a [u8], &'a Value)>,
    /// The platform-generated webhook secret changed too.
    pub secret_rotated: bool,
}

pub async fn update(tx: &TenantTx, company: Uuid, id: Uuid, c: &ConfigChange<'_>) -> Result<ChannelConfig, DbError> {
    let (sealed, hint) = match c.credentials {
        Some((s, h)) => (Some(s), Some(h)),
        None => (None, None),
    };
    let row = tx
        .client()
        .query_one(
            &format!(
                "UPDATE chatapp_channel_configs SET
                     name = COALESCE($3, name), agent_id = COALESCE($4, agent_id), is_active = COALESCE($5, is_active),
                     settings = COALESCE($6, settings), credentials_sealed = COALESCE($7, credentials_sealed),
                     credentials_hint = COALESCE($8, credentials_hint),
                     is_verified = CASE WHEN $7::bytea IS NULL THEN is_verified ELSE false END,
                     secret_rotated_at = CASE WHEN $9 THEN now() ELSE secret_rotated_at END,
                     updated_at = now()
                 WHERE id = $1 AND company_id = $2 RETURNING {COLUMNS}"
            ),
            &[&id, &company, &c.name, &c.agent_id, &c.is_active, &c.settings, &sealed, &hint, &c.secret_rotated],
        )
        .await?;
    Ok(config(&row))
}

/// Records the outcome of a check action.
pub async fn record_check(
    tx: &TenantTx,
    company: Uuid,
    id: Uuid,
    error: Option<&str>,
) -> Result<ChannelConfig, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "UPDATE chatapp_channel_configs SET last_check_at = now(), last_check_error = $3,
                     is_verified = ($3::text IS NULL),
                     last_verified_at = CASE WHEN $3::text IS NULL THEN now() ELSE last_verified_at END
                 WHERE id = $1 AND company_id = $2 RETURNING {COLUMNS}"
            ),
            &[&id, &company, &error],
        )
        .await?;
    Ok(config(&row))
}

/// Replaces what admins see of the credentials (what a check learned from the provider).
pub async fn set_hint(tx: &TenantTx, company: Uuid, id: Uuid, hint: &Value) -> Result<(), DbError> {
    tx.client()
        .execute(
            "UPDATE chatapp_channel_configs SET credentials_hint = $3 WHERE id = $1 AND company_id = $2",
            &[&id, &company, hint],
        )
        .await?;
    Ok(())
}

pub async fn delete(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<bool, DbError> {
    let n = tx
        .client()
        .execute("DELETE FROM chatapp_channel_configs WHERE id = $1 AND company_id = $2", &[&id, &company])
        .await?;
    Ok(n == 1)
}

/// Configurations of the company that are not disabled, per channel (for the plan's limits).
pub async fn count_active(tx: &TenantTx, company: Uuid, channel: ChannelKind) -> Result<i64, DbError> {
    Ok(tx
        .client()
        .query_one(
            "SELECT count(*) FROM chatapp_channel_configs
             WHERE company_id = $1 AND channel::text = $2 AND COALESCE(is_active, true)",
            &[&company, &channel.as_str()],
        )
        .await?
        .get(0))
}

/// What the webhook learns from a configuration id before any tenant context exists.
#[derive(Debug)]
pub struct WebhookTarget {
    pub company_id: Uuid,
    pub agent_id: Uuid,
    pub sealed: Option<Vec<u8>>,
    /// The configuration is enabled and its company active.
    pub active: bool,
    pub settings: Value,
    pub hint: Value,
}

pub async fn webhook_target(db: &Db, id: Uuid, channel: ChannelKind) -> Result<Option<WebhookTarget>, DbError> {
    let conn = db.system().await?;
    let row = conn
        .query_opt(
            "SELECT company_id, agent_id, credentials_sealed, is_active, settings, credentials_hint
             FROM chatapp_channel_for_webhook($1, $2::text::channel_type)",
            &[&id, &channel.as_str()],
        )
        .await?;
    Ok(row.map(|r| WebhookTarget {
        company_id: r.get(0),
        agent_id: r.get(1),
        sealed: r.get(2),
        active: r.get::<_, Option<bool>>(3).unwrap_or(false),
        settings: r.get::<_, Option<Value>>(4).unwrap_or(Value::Null),
        hint: r.get::<_, Option<Value>>(5).unwrap_or(Value::Null),
    }))
}

/// A newly stored inbound message.
#[derive(Debug, Clone, Copy)]
pub struct Stored {
    pub inbound_id: Uuid,
    pub conversation_id: Uuid,
    pub new_conversation: bool,
}

/// Stores one inbound message with its turn job; `None` when its provider id is already stored.
pub async fn store_inbound(
    tx: &TenantTx,
    config: Uuid,
    agent: Uuid,
    kind: ChannelKind,
    m: &Inbound,
    session_token: &str,
) -> Result<Option<Stored>, DbError> {
    let attachments = serde_json::to_value(&m.attachments).unwrap_or(Value::Array(Vec::new()));
    let sender = serde_json::to_value(&m.sender).unwrap_or(Value::Null);
    let sent_at = m.sent_at.and_then(|s| DateTime::<Utc>::from_timestamp(s, 0));
    let row = tx
        .client()
        .query_opt(
            "SELECT inbound_id, conversation_id, new_conversation FROM chatapp_channel_store_inbound(
                 $1, $2, $3::text::channel_type, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            &[
                &config,
                &agent,
                &kind.as_str(),
                &m.provider_message_id,
                &m.thread,
                &m.sender.id,
                &m.sender.name,
                &m.sender.phone,
                &m.sender.email,
                &m.text,
                &attachments,
                &sender,
                &m.reply_context,
                &sent_at,
                &session_token,
            ],
        )
        .await?;
    Ok(row.map(|r| Stored { inbound_id: r.get(0), conversation_id: r.get(1), new_conversation: r.get(2) }))
}

/// The channel's greeting, stored as the AI's first message of a conversation this message
/// opened (once: a redelivered job finds it and stores nothing). Its delivery is queued by the
/// reply trigger like any reply.
pub async fn greet(tx: &TenantTx, company: Uuid, inbound: &PendingInbound) -> Result<bool, DbError> {
    let n = tx
        .client()
        .execute(
            "INSERT INTO chatapp_messages (conversation_id, company_id, role, content, metadata)
             SELECT $1, $2, 'assistant', cfg.settings ->> 'greeting', jsonb_build_object('kind', 'greeting')
             FROM chatapp_channel_configs cfg
             WHERE cfg.id = $3 AND cfg.company_id = $2 AND cfg.settings ->> 'greeting' IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM chatapp_messages m
                               WHERE m.conversation_id = $1 AND m.metadata ->> 'kind' = 'greeting')",
            &[&inbound.conversation_id, &company, &inbound.channel_config_id],
        )
        .await?;
    Ok(n == 1)
}

/// What a typing indicator for an inbound message needs: its configuration, channel, thread,
/// reply context, provider message id and sealed credentials. `None` while a human owns the
/// conversation (the AI will not answer).
pub async fn typing_target(
    tx: &TenantTx,
    company: Uuid,
    inbound: Uuid,
) -> Result<Option<(Uuid, Option<ChannelKind>, String, Value, String, Option<Vec<u8>>)>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT i.channel_config_id, c.channel::text, COALESCE(c.external_id, ''), i.reply_context,
                    i.provider_message_id, cfg.credentials_sealed
             FROM chatapp_channel_inbound i
             JOIN chatapp_conversations c ON c.id = i.conversation_id
             JOIN chatapp_channel_configs cfg ON cfg.id = i.channel_config_id
             WHERE i.id = $1 AND i.company_id = $2 AND c.status NOT IN ('waiting_human', 'with_human')",
            &[&inbound, &company],
        )
        .await?;
    Ok(row.map(|r| {
        let channel: String = r.get(1);
        (r.get(0), ChannelKind::parse(&channel), r.get(2), r.get(3), r.get(4), r.get(5))
    }))
}

/// Adds `n` new conversations to the agent's counter, in a statement of its own after the
/// messages' transaction committed (a crash in between leaves the counter short, never the
/// conversations).
pub async fn count_new_conversations(tx: &TenantTx, company: Uuid, agent: Uuid, n: i32) -> Result<(), DbError> {
    tx.client()
        .execute(
            "UPDATE chatapp_agents SET total_conversations = COALESCE(total_conversations, 0) + $3
             WHERE id = $1 AND company_id = $2",
            &[&agent, &company, &n],
        )
        .await?;
    Ok(())
}

/// An inbound message waiting for its turn.
#[derive(Debug, Clone)]
pub struct PendingInbound {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub provider_message_id: String,
    pub content: String,
    pub attachments: Value,
    pub status: String,
    /// It started its conversation.
    pub opens_conversation: bool,
    pub channel_config_id: Uuid,
    /// Its channel configuration's settings (`{}` when the configuration is gone).
    pub settings: Value,
}

pub async fn inbound(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<PendingInbound>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT i.id, i.conversation_id, i.provider_message_id, i.content, i.attachments, i.status,
                    i.opens_conversation, i.channel_config_id, COALESCE(c.settings, '{}'::jsonb)
             FROM chatapp_channel_inbound i
             LEFT JOIN chatapp_channel_configs c ON c.id = i.channel_config_id AND c.company_id = i.company_id
             WHERE i.id = $1 AND i.company_id = $2",
            &[&id, &company],
        )
        .await?;
    Ok(row.map(|r| PendingInbound {
        id: r.get(0),
        conversation_id: r.get(1),
        provider_message_id: r.get(2),
        content: r.get(3),
        attachments: r.get(4),
        status: r.get(5),
        opens_conversation: r.get(6),
        channel_config_id: r.get(7),
        settings: r.get(8),
    }))
}

pub async fn finish_inbound(
    tx: &TenantTx,
    id: Uuid,
    message: Option<Uuid>,
    error: Option<&str>,
) -> Result<(), DbError> {
    tx.client()
        .execute(
            "UPDATE chatapp_channel_inbound
             SET status = CASE WHEN status = 'answered' OR $3::text IS NULL THEN 'answered' ELSE 'failed' END,
                 message_id = COALESCE($2, message_id), error = $3, processed_at = now()
             WHERE id = $1",
            &[&id, &message, &error],
        )
        .await?;
    Ok(())
}

/// A reply to deliver, with what sending it needs.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub content: String,
    pub status: String,
    pub parts_sent: i32,
    pub provider_message_ids: Vec<String>,
    pub channel: Option<ChannelKind>,
    pub config_id: Option<Uuid>,
    /// The conversation's provider thread.
    pub thread: Option<String>,
    /// The latest inbound message's reply context, and when the customer sent it.
    pub reply_context: Value,
    pub last_customer_at: Option<DateTime<Utc>>,
    /// The customer's address (email replies).
    pub customer_email: Option<String>,
    /// The channel configuration's settings (the WhatsApp template outside the 24-hour window).
    pub settings: Value,
}

/// The first reply of `message`'s conversation still to send, up to `message` itself, in the
/// order the replies were written: its id, and whether a sender holds its lease now. `None` once
/// `message` is settled (sent or failed).
pub async fn next_in_order(tx: &TenantTx, company: Uuid, message: Uuid) -> Result<Option<(Uuid, bool)>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT d.message_id, (d.status = 'sending' AND d.leased_until >= now())
             FROM chatapp_channel_deliveries x
             JOIN chatapp_channel_deliveries d
               ON d.conversation_id = x.conversation_id AND d.company_id = x.company_id AND d.seq <= x.seq
             WHERE x.message_id = $1 AND x.company_id = $2 AND x.status IN ('pending', 'sending')
               AND d.status IN ('pending', 'sending')
             ORDER BY d.seq
             LIMIT 1",
            &[&message, &company],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Claims a delivery for sending: `None` when it is done, failed, or another sender holds it.
/// The claim is a lease, so a sender that crashed mid-way is taken over once it ends.
pub async fn claim_delivery(
    tx: &TenantTx,
    company: Uuid,
    message: Uuid,
    lease_secs: f64,
) -> Result<Option<Outgoing>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "UPDATE chatapp_channel_deliveries d
             SET status = 'sending', attempts = attempts + 1,
                 leased_until = now() + make_interval(secs => $3), updated_at = now()
             WHERE d.message_id = $1 AND d.company_id = $2
               AND (d.status = 'pending' OR (d.status = 'sending' AND d.leased_until < now()))
             RETURNING d.conversation_id, d.parts_sent, d.provider_message_ids",
            &[&message, &company, &lease_secs],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let conversation: Uuid = row.get(0);
    let ids: Value = row.get(2);
    let details = tx
        .client()
        .query_one(
            "SELECT m.content, c.channel::text, (c.context ->> 'channel_config_id')::uuid, c.external_id,
                    (SELECT i.reply_context FROM chatapp_channel_inbound i
                     WHERE i.conversation_id = c.id ORDER BY i.received_at DESC LIMIT 1),
                    (SELECT max(COALESCE(i.sent_at, i.received_at)) FROM chatapp_channel_inbound i
                     WHERE i.conversation_id = c.id),
                    c.customer_email,
                    (SELECT cfg.settings FROM chatapp_channel_configs cfg
                     WHERE cfg.id = (c.context ->> 'channel_config_id')::uuid)
             FROM chatapp_messages m JOIN chatapp_conversations c ON c.id = m.conversation_id
             WHERE m.id = $1",
            &[&message],
        )
        .await?;
    let channel: String = details.get(1);
    Ok(Some(Outgoing {
        message_id: message,
        conversation_id: conversation,
        content: details.get(0),
        status: "sending".into(),
        parts_sent: row.get(1),
        provider_message_ids: serde_json::from_value(ids).unwrap_or_default(),
        channel: ChannelKind::parse(&channel),
        config_id: details.get(2),
        thread: details.get(3),
        reply_context: details.get::<_, Option<Value>>(4).unwrap_or(Value::Null),
        last_customer_at: details.get(5),
        customer_email: details.get(6),
        settings: details.get::<_, Option<Value>>(7).unwrap_or(Value::Null),
    }))
}

/// Records one part sent (in its own transaction, so a crash after it never resends it).
pub async fn part_sent(tx: &TenantTx, message: Uuid, provider_id: Option<&str>) -> Result<(), DbError> {
    tx.client()
        .execute(
            "UPDATE chatapp_channel_deliveries
             SET parts_sent = parts_sent + 1,
                 provider_message_ids = CASE WHEN $2::text IS NULL THEN provider_message_ids
                                             ELSE provider_message_ids || jsonb_build_array($2::text) END,
                 updated_at = now()
             WHERE message_id = $1",
            &[&message, &provider_id],
        )
        .await?;
    Ok(())
}

/// The delivery's end: `sent`, `failed` (with the provider's error), or back to `pending` for a
/// later retry (the error kept for operators).
pub async fn finish_delivery(
    tx: &TenantTx,
    message: Uuid,
    status: &str,
    parts_total: Option<i32>,
    error: Option<(&str, &str)>,
) -> Result<(), DbError> {
    let (code, text) = match error {
        Some((c, t)) => (Some(c), Some(t)),
        None => (None, None),
    };
    tx.client()
        .execute(
            "UPDATE chatapp_channel_deliveries
             SET status = $2::text, parts_total = COALESCE($3::int4, parts_total), error_code = $4::text,
                 error = $5::text, leased_until = NULL, updated_at = now(),
                 sent_at = CASE WHEN $2::text = 'sent' THEN now() ELSE sent_at END
             WHERE message_id = $1",
            &[&message, &status, &parts_total, &code, &text],
        )
        .await?;
    Ok(())
}

/// A provider's receipt for a message it accepted: status only moves forward
/// (sent → delivered → read); `failed` is recorded with the provider's error.
pub async fn apply_receipt(
    tx: &TenantTx,
    company: Uuid,
    provider_id: &str,
    status: &str,
    error: Option<&str>,
) -> Result<u64, DbError> {
    let ids = Value::Array(vec![Value::String(provider_id.to_string())]);
    tx.client()
        .execute(
            "UPDATE chatapp_channel_deliveries
             SET status = CASE
                     -- A delivery with parts still to send keeps its status (the sender's claim
                     -- needs it); its receipts are kept in the timestamps below.
                     WHEN status IN ('pending', 'sending') THEN status
                     WHEN $3::text = 'failed' THEN 'failed'
                     WHEN $3::text = 'read' THEN 'read'
                     WHEN $3::text = 'delivered' AND status = 'sent' THEN 'delivered'
                     ELSE status END,
                 error_code = CASE WHEN $3::text = 'failed' THEN 'provider' ELSE error_code END,
                 error = CASE WHEN $3::text = 'failed' THEN $4::text ELSE error END,
                 delivered_at = CASE WHEN $3::text IN ('delivered', 'read') THEN COALESCE(delivered_at, now())
                                     ELSE delivered_at END,
                 read_at = CASE WHEN $3::text = 'read' THEN now() ELSE read_at END,
                 updated_at = now()
             WHERE company_id = $1 AND provider_message_ids @> $2",
            &[&company, &ids, &status, &error],
        )
        .await
        .map_err(DbError::from)
}

/// A delivery's state (tests and the inbox).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub message_id: Uuid,
    pub status: String,
    pub parts_total: Option<i32>,
    pub parts_sent: i32,
    pub provider_message_ids: Vec<String>,
    pub attempts: i32,
    pub error_code: Option<String>,
    pub error: Option<String>,
}

pub async fn delivery(tx: &TenantTx, company: Uuid, message: Uuid) -> Result<Option<Delivery>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT message_id, status, parts_total, parts_sent, provider_message_ids, attempts, error_code, error
             FROM chatapp_channel_deliveries WHERE message_id = $1 AND company_id = $2",
            &[&message, &company],
        )
        .await?;
    Ok(row.map(|r| Delivery {
        message_id: r.get(0),
        status: r.get(1),
        parts_total: r.get(2),
        parts_sent: r.get(3),
        provider_message_ids: serde_json::from_value(r.get(4)).unwrap_or_default(),
        attempts: r.get(5),
        error_code: r.get(6),
        error: r.get(7),
    }))
}
