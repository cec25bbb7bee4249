//! The inbox's conversations: lists and details for support agents, the conversation's lock,
//! and the ownership transitions (`chatapp_handoff_*` in `migrations/0019_human_loop.sql`),
//! replies, typing, snooze and labels.
//!
//! Row-level security scopes everything to the acting company, and a support agent to the
//! conversations assigned to them or to nobody; the company filters below keep a master admin
//! acting for one company inside it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::repo::chat::Message;
use crate::status::ConversationStatus;
use crate::web::Page;

/// The event of an assignment (claim, worker, admin).
pub const EVENT_ASSIGNED: &str = "conversation.assigned";
/// The event of a hand-over from one person to another.
pub const EVENT_TRANSFERRED: &str = "conversation.transferred";
/// The event of a resolved conversation taken up again.
pub const EVENT_REOPENED: &str = "conversation.reopened";

/// A conversation as the inbox lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConversationSummary {
    pub id: Uuid,
    /// The AI agent the conversation is with.
    pub agent_id: Uuid,
    /// `web`, `whatsapp`, `telegram`, `messenger`, `instagram`, `slack`, `teams`, `custom` or `email`.
    pub channel: String,
    pub status: ConversationStatus,
    /// The support agent who owns it (while `with_human`).
    pub assigned_agent_id: Option<Uuid>,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    /// The open escalation's priority (`low`, `medium`, `high`, `urgent`); null without one.
    pub priority: Option<String>,
    /// When the open escalation was raised; null without one.
    pub waiting_since: Option<DateTime<Utc>>,
    pub last_message_at: DateTime<Utc>,
    /// The latest message's first 140 characters.
    pub last_message_preview: Option<String>,
    pub message_count: i32,
    pub labels: Vec<String>,
    /// Hidden from `view=mine` until then.
    pub snoozed_until: Option<DateTime<Utc>>,
    /// The conversation's latest event: `GET .../events?after=<last_event_seq>` continues from here.
    pub last_event_seq: i64,
}

/// The summary's columns (`summary_from_row` reads them in this order), as a literal for `concat!`.
macro_rules! summary_columns {
    () => {
        "c.id, c.agent_id, c.channel::text, c.status, c.assigned_agent_id, c.customer_name, c.customer_email,
         oe.priority::text, oe.created_at, c.last_message_at, lm.preview, COALESCE(c.message_count, 0),
         c.labels, c.snoozed_until, c.last_event_seq"
    };
}

/// The conversation with its open escalation (`oe`) and latest message (`lm`).
macro_rules! summary_from {
    () => {
        " FROM chatapp_conversations c
         LEFT JOIN LATERAL (
             SELECT e.priority, e.created_at FROM chatapp_escalations e
             WHERE e.conversation_id = c.id AND e.status IN ('pending', 'assigned', 'in_progress')
             ORDER BY e.created_at DESC LIMIT 1) oe ON true
         LEFT JOIN LATERAL (
             SELECT left(m.content, 140) AS preview FROM chatapp_messages m
             WHERE m.conversation_id = c.id AND m.role <> 'tool'
             ORDER BY m.created_at DESC, m.id DESC LIMIT 1) lm ON true "
    };
}

fn summary_from_row(r: &Row) -> ConversationSummary {
    ConversationSummary {
        id: r.get(0),
        agent_id: r.get(1),
        channel: r.get(2),
        status: r.get(3),
        assigned_agent_id: r.get(4),
        customer_name: r.get(5),
        customer_email: r.get(6),
        priority: r.get(7),
        waiting_since: r.get(8),
        last_message_at: r.get(9),
        last_message_preview: r.get(10),
        message_count: r.get(11),
        labels: r.get(12),
        snoozed_until: r.get(13),
        last_event_seq: r.get(14),
    }
}

const SUMMARY: &str = concat!(
    "SELECT ",
    summary_columns!(),
    summary_from!(),
    "WHERE c.id = $2 AND c.company_id = $1 AND c.deleted_at IS NULL"
);

/// The company's conversation as this transaction sees it (None: unknown, another tenant's,
/// or a colleague's for a support agent).
pub async fn summary(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<ConversationSummary>, DbError> {
    let row = tx.client().query_opt(SUMMARY, &[&company, &id]).await?;
    Ok(row.as_ref().map(summary_from_row))
}

/// Which conversations a list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Assigned to the caller.
    Mine,
    /// Assigned to nobody: the waiting queue unless a status is asked for.
    Unassigned,
    /// Every conversation of the company (admins).
    All,
}

impl View {
    pub fn as_str(&self) -> &'static str {
        match self {
            View::Mine => "mine",
            View::Unassigned => "unassigned",
            View::All => "all",
        }
    }
}

/// The list's filters, checked at the edge.
#[derive(Clone, Debug)]
pub struct ConversationFilter<'a> {
    pub view: View,
    /// The caller (whose conversations `mine` lists).
    pub user: Uuid,
    pub status: Option<ConversationStatus>,
    pub channel: Option<&'a str>,
    /// The open escalation's priority.
    pub priority: Option<&'a str>,
    /// Assigned to this user.
    pub assigned_to: Option<Uuid>,
    pub label: Option<&'a str>,
    /// Text to find in the customer's name or email or in a message.
    pub search: Option<&'a str>,
    /// `Some(true)`: snoozed ones only; `Some(false)`: none of them.
    pub snoozed: Option<bool>,
}

const LIST: &str = concat!(
    "SELECT ",
    summary_columns!(),
    ", count(*) OVER ()",
    summary_from!(),
    "WHERE c.company_id = $1 AND c.deleted_at IS NULL
       AND CASE $2::text
             WHEN 'mine' THEN c.assigned_agent_id = $3::uuid
             WHEN 'unassigned' THEN c.assigned_agent_id IS NULL AND ($4::text IS NOT NULL OR c.status = 'waiting_human')
             ELSE true
           END
       AND ($4::text IS NULL OR c.status::text = $4::text)
       AND ($5::text IS NULL OR c.channel::text = $5::text)
       AND ($6::text IS NULL OR oe.priority::text = $6::text)
       AND ($7::uuid IS NULL OR c.assigned_agent_id = $7::uuid)
       AND ($8::text IS NULL OR $8::text = ANY (c.labels))
       AND ($9::text IS NULL OR c.customer_name ILIKE $9::text OR c.customer_email ILIKE $9::text
            OR EXISTS (SELECT 1 FROM chatapp_messages m
                       WHERE m.conversation_id = c.id AND m.role <> 'tool' AND m.content ILIKE $9::text))
       AND ($10::bool IS NULL OR (c.snoozed_until IS NOT NULL AND c.snoozed_until > now()) = $10::bool)
     ORDER BY CASE WHEN $2::text = 'unassigned' THEN oe.priority END DESC NULLS LAST,
              CASE WHEN $2::text = 'unassigned' THEN oe.created_at END ASC,
              c.last_message_at DESC, c.id
     LIMIT $11 OFFSET $12"
);

/// `%text%` for ILIKE, with the pattern characters of `text` taken literally.
fn contains_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// One page of the company's conversations: the waiting queue (`unassigned`) by priority,
/// then longest waiting; the other views by latest message.
pub async fn list(
    tx: &TenantTx,
    company: Uuid,
    f: &ConversationFilter<'_>,
    page: Page,
) -> Result<(Vec<ConversationSummary>, i64), DbError> {
    let view = f.view.as_str();
    let status = f.status.map(|s| s.as_str());
    let pattern = f.search.map(contains_pattern);
    let rows = tx
        .client()
        .query(
            LIST,
            &[
                &company,
                &view,
                &f.user,
                &status,
                &f.channel,
                &f.priority,
                &f.assigned_to,
                &f.label,
                &pattern,
                &f.snoozed,
                &page.limit,
                &page.offset,
            ],
        )
        .await?;
    let total = rows.first().map(|r| r.get::<_, i64>(15)).unwrap_or(0);
    Ok((rows.iter().map(summary_from_row).collect(), total))
}

/// Who owns the conversation, read under its row lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Locked {
    pub status: ConversationStatus,
    pub assigned_agent_id: Option<Uuid>,
}

impl Locked {
    /// With a person, and that person is `user`.
    pub fn owned_by(&self, user: Uuid) -> bool {
        self.status == ConversationStatus::WithHuman && self.assigned_agent_id == Some(user)
    }
}

const LOCK: &str = "SELECT status, assigned_agent_id FROM chatapp_conversations
     WHERE id = $1 AND company_id = $2 AND deleted_at IS NULL FOR UPDATE";

/// Locks the company's conversation until the transaction ends (every ownership change does
/// this first, so concurrent ones run one after another and each sees the other's result).
pub async fn lock(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<Locked>, DbError> {
    let row = tx.client().query_opt(LOCK, &[&id, &company]).await?;
    Ok(row.map(|r| Locked { status: r.get(0), assigned_agent_id: r.get(1) }))
}

/// The columns `message_from_row` reads (those of [`crate::repo::chat::Message`]).
macro_rules! message_columns {
    () => {
        "id, role::text, content, COALESCE(metadata, '{}'::jsonb), sentiment::float8, client_message_id, created_at"
    };
}

fn message_from_row(r: &Row) -> Message {
    Message {
        id: r.get(0),
        role: r.get(1),
        content: r.get(2),
        metadata: r.get(3),
        sentiment: r.get(4),
        client_message_id: r.get(5),
        created_at: r.get(6),
    }
}

const MESSAGES: &str = concat!(
    "SELECT * FROM (SELECT ",
    message_columns!(),
    " FROM chatapp_messages WHERE conversation_id = $1 AND company_id = $2
      ORDER BY created_at DESC, id DESC LIMIT $3) m ORDER BY created_at, id"
);

/// The conversation's last `limit` messages, oldest first (every role: the inbox is internal).
pub async fn messages(tx: &TenantTx, company: Uuid, id: Uuid, limit: i64) -> Result<Vec<Message>, DbError> {
    let rows = tx.client().query(MESSAGES, &[&id, &company, &limit]).await?;
    Ok(rows.iter().map(message_from_row).collect())
}

/// An internal note as the conversation's detail shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConversationDetailNote {
    pub id: Uuid,
    /// Its author.
    pub user_id: Uuid,
    pub content: String,
    /// Colleagues it mentions.
    pub mentions: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// The conversation's internal notes, oldest first (at most 1,000).
pub async fn notes(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Vec<ConversationDetailNote>, DbError> {
    let rows = tx
        .client()
        .query(
            "SELECT id, user_id, content, mentions, created_at FROM chatapp_conversation_notes
             WHERE conversation_id = $1 AND company_id = $2 ORDER BY created_at, id LIMIT 1000",
            &[&id, &company],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ConversationDetailNote {
            id: r.get(0),
            user_id: r.get(1),
            content: r.get(2),
            mentions: r.get(3),
            created_at: r.get(4),
        })
        .collect())
}

/// How a reply went out on a messaging channel (`chatapp_channel_deliveries`): what the
/// provider said of it, so a support agent sees whether the customer got it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageDelivery {
    pub message_id: Uuid,
    /// `pending`, `sending`, `sent`, `delivered`, `read` or `failed`.
    pub status: String,
    /// The parts the reply was split into at the channel's length limit, and how many went out.
    pub parts_total: Option<i32>,
    pub parts_sent: i32,
    /// The provider's error code and message, for a failed delivery (`outside_window`, ...).
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
}

/// The deliveries of the conversation's replies on its channel, oldest first (at most 500;
/// none for the widget and the API).
pub async fn deliveries(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Vec<MessageDelivery>, DbError> {
    let rows = tx
        .client()
        .query(
            "SELECT message_id, status, parts_total, parts_sent, error_code, error, sent_at, delivered_at, read_at
             FROM chatapp_channel_deliveries WHERE conversation_id = $1 AND company_id = $2
             ORDER BY seq LIMIT 500",
            &[&id, &company],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| MessageDelivery {
            message_id: r.get(0),
            status: r.get(1),
            parts_total: r.get(2),
            parts_sent: r.get(3),
            error_code: r.get(4),
            error: r.get(5),
            sent_at: r.get(6),
            delivered_at: r.get(7),
            read_at: r.get(8),
        })
        .collect())
}

/// Who the conversation is with: the conversation's own customer fields, completed from the
/// customer record it points to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConversationCustomer {
    /// The customer record, when the conversation has one.
    pub id: Option<Uuid>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// The company's own id for the customer (verified identities, the chat API).
    pub external_id: Option<String>,
    /// What the channel told about the customer (the widget: the site, the identity).
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// The customer of the company's conversation (None if the conversation is not visible).
pub async fn customer(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<ConversationCustomer>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT cu.id, COALESCE(c.customer_name, cu.name), COALESCE(c.customer_email, cu.email),
                    COALESCE(c.customer_phone, cu.phone), cu.external_id,
                    COALESCE(c.customer_metadata, '{}'::jsonb)
             FROM chatapp_conversations c
             LEFT JOIN chatapp_customers cu ON cu.company_id = c.company_id AND cu.id::text = c.customer_id
             WHERE c.id = $1 AND c.company_id = $2 AND c.deleted_at IS NULL",
            &[&id, &company],
        )
        .await?;
    Ok(row.map(|r| ConversationCustomer {
        id: r.get(0),
        name: r.get(1),
        email: r.get(2),
        phone: r.get(3),
        external_id: r.get(4),
        metadata: r.get(5),
    }))
}

/// The conversation's open escalation, or its latest one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConversationEscalation {
    pub id: Uuid,
    /// `pending`, `assigned`, `in_progress`, `resolved`, `returned_to_ai` or `abandoned`.
    pub status: String,
    /// `low`, `medium`, `high` or `urgent`.
    pub priority: String,
    pub reason: String,
    /// `explicit_request`, `keyword`, `sentiment`, `low_confidence`, `turn_limit`, `rule`, `manual`, ...
    pub trigger_type: String,
    pub assigned_to: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub assigned_at: Option<DateTime<Utc>>,
    /// Seconds from the escalation to its (first) assignment.
    pub wait_time: Option<i32>,
    /// Seconds from the assignment to the first human reply.
    pub first_response_time: Option<i32>,
    /// Seconds from the assignment to the end of the human part.
    pub handle_time: Option<i32>,
}

pub async fn escalation(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<ConversationEscalation>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT id, status::text, priority::text, reason, trigger_type, assigned_to, created_at, assigned_at,
                    wait_time, first_response_time, handle_time
             FROM chatapp_escalations
             WHERE conversation_id = $1 AND company_id = $2
             ORDER BY (status IN ('pending', 'assigned', 'in_progress')) DESC, created_at DESC, id
             LIMIT 1",
            &[&id, &company],
        )
        .await?;
    Ok(row.map(|r| ConversationEscalation {
        id: r.get(0),
        status: r.get(1),
        priority: r.get(2),
        reason: r.get(3),
        trigger_type: r.get(4),
        assigned_to: r.get(5),
        created_at: r.get(6),
        assigned_at: r.get(7),
        wait_time: r.get(8),
        first_response_time: r.get(9),
        handle_time: r.get(10),
    }))
}

/// An active support agent or company admin of the company: someone a conversation may go to.
pub async fn assignable(tx: &TenantTx, company: Uuid, user: Uuid) -> Result<bool, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT 1 FROM chatapp_users
             WHERE id = $1 AND company_id = $2 AND is_active AND deleted_at IS NULL
               AND role::text IN ('support_agent', 'company_admin')",
            &[&user, &company],
        )
        .await?;
    Ok(row.is_some())
}

/// `user` takes the (locked) conversation: `event` is [`EVENT_ASSIGNED`], [`EVENT_TRANSFERRED`]
/// or [`EVENT_REOPENED`]; `by` is who decided it.
pub async fn assign(tx: &TenantTx, id: Uuid, user: Uuid, by: Uuid, event: &str) -> Result<(), DbError> {
    tx.client()
        .execute("SELECT chatapp_handoff_assign($1::uuid, $2::uuid, $3::uuid, $4::text)", &[&id, &user, &by, &event])
        .await?;
    Ok(())
}

/// The (locked) conversation goes back to the waiting queue.
pub async fn requeue(tx: &TenantTx, id: Uuid, reason: &str) -> Result<(), DbError> {
    tx.client().execute("SELECT chatapp_handoff_requeue($1::uuid, $2::text)", &[&id, &reason]).await?;
    Ok(())
}

/// The human part of the (locked) conversation ends: `Resolved`, or `Active` (back to the AI),
/// with `text` as the system message the customer sees.
pub async fn close(tx: &TenantTx, id: Uuid, status: ConversationStatus, by: Uuid, text: &str) -> Result<(), DbError> {
    tx.client()
        .execute(
            "SELECT chatapp_handoff_close($1::uuid, $2::text::conversation_status, $3::uuid, $4::text)",
            &[&id, &status.as_str(), &by, &text],
        )
        .await?;
    Ok(())
}

const INSERT_REPLY: &str = concat!(
    "INSERT INTO chatapp_messages (conversation_id, company_id, role, content, sender_id, client_message_id, metadata)
     VALUES ($1, $2, 'human_agent', $3, $4, $5, jsonb_build_object('kind', 'human_reply')) RETURNING ",
    message_columns!()
);

/// A support agent's reply in the (locked) conversation: the message (its trigger writes the
/// `message.created` event and the outbound one), the conversation's counters, and the
/// escalation's first response time.
pub async fn add_reply(
    tx: &TenantTx,
    company: Uuid,
    id: Uuid,
    user: Uuid,
    content: &str,
    client_message_id: Option<&str>,
) -> Result<Message, DbError> {
    let row = tx.client().query_one(INSERT_REPLY, &[&id, &company, &content, &user, &client_message_id]).await?;
    tx.client()
        .execute(
            "UPDATE chatapp_conversations
             SET message_count = COALESCE(message_count, 0) + 1,
                 human_message_count = COALESCE(human_message_count, 0) + 1,
                 last_message_at = now(), updated_at = now()
             WHERE id = $1 AND company_id = $2",
            &[&id, &company],
        )
        .await?;
    tx.client().execute("SELECT chatapp_handoff_responded($1::uuid)", &[&id]).await?;
    Ok(message_from_row(&row))
}

/// The support agent is typing: an event the customer's widget shows (never stored as a message).
pub async fn typing(tx: &TenantTx, id: Uuid, user: Uuid) -> Result<(), DbError> {
    crate::repo::chat::signal_typing(tx, id, &serde_json::json!({"by": "agent", "user_id": user})).await
}

/// Snoozes the conversation until `until` (None: wakes it), with an internal
/// `conversation.snoozed` event.
pub async fn snooze(
    tx: &TenantTx,
    company: Uuid,
    id: Uuid,
    until: Option<DateTime<Utc>>,
    by: Uuid,
) -> Result<(), DbError> {
    tx.client()
        .execute(
            "UPDATE chatapp_conversations SET snoozed_until = $3, updated_at = now()
             WHERE id = $1 AND company_id = $2",
            &[&id, &company, &until],
        )
        .await?;
    tx.client()
        .execute(
            "SELECT chatapp_append_event($1::uuid, 'conversation.snoozed',
                                         jsonb_build_object('until', $2::timestamptz, 'by', $3::uuid), true)",
            &[&id, &until, &by],
        )
        .await?;
    Ok(())
}

/// Replaces the conversation's labels; false if it is not visible.
pub async fn set_labels(tx: &TenantTx, company: Uuid, id: Uuid, labels: &[String]) -> Result<bool, DbError> {
    let n = tx
        .client()
        .execute(
            "UPDATE chatapp_conversations SET labels = $3, updated_at = now()
             WHERE id = $1 AND company_id = $2 AND deleted_at IS NULL",
            &[&id, &company, &labels],
        )
        .await?;
    Ok(n == 1)
}

/// The company's reassignment time in seconds (`None`: not this transaction's company).
pub async fn reassign_after(tx: &TenantTx, company: Uuid) -> Result<Option<i32>, DbError> {
    let row = tx
        .client()
        .query_opt("SELECT reassign_after_seconds FROM chatapp_companies WHERE id = $1", &[&company])
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Sets the company's reassignment time (checked by the caller and by the column's CHECK).
pub async fn set_reassign_after(tx: &TenantTx, company: Uuid, seconds: i32) -> Result<Option<i32>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "UPDATE chatapp_companies SET reassign_after_seconds = $2, updated_at = now() WHERE id = $1
             RETURNING reassign_after_seconds",
            &[&company, &seconds],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}
