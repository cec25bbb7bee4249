//! `chatapp_support_agent_status`: a support agent's presence (online, busy, away, offline),
//! capacity and load; one row per person, made (offline, capacity 5) on first use. A support
//! agent may change only their own row (policy `support_agent_own_row`); `current_chat_count`
//! is kept by the `track_chat_count` trigger, never written here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::status::SupportAgentStatus;
use crate::web::Page;

/// The `status_message` of someone marked away for missed heartbeats; their next heartbeat
/// brings them back online.
pub const AUTO_AWAY: &str = "auto-away";

/// A support agent's presence and load.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Presence {
    pub user_id: Uuid,
    pub status: SupportAgentStatus,
    /// Free text shown with the status (`auto-away` when set for missed heartbeats).
    pub status_message: Option<String>,
    /// How many conversations they take at once, 0..=100.
    pub max_concurrent_chats: i32,
    /// The conversations they own now.
    pub current_chat_count: i32,
    pub last_active_at: DateTime<Utc>,
    pub status_changed_at: DateTime<Utc>,
}

const COLUMNS: &str = "user_id, status, status_message, COALESCE(max_concurrent_chats, 5), \
    COALESCE(current_chat_count, 0), COALESCE(last_active_at, created_at), COALESCE(status_changed_at, created_at)";

fn from_row(r: &Row) -> Presence {
    Presence {
        user_id: r.get(0),
        status: r.get(1),
        status_message: r.get(2),
        max_concurrent_chats: r.get(3),
        current_chat_count: r.get(4),
        last_active_at: r.get(5),
        status_changed_at: r.get(6),
    }
}

/// Makes the user's row (offline, capacity 5) unless they have one.
pub async fn create_if_missing(tx: &TenantTx, company: Uuid, user: Uuid) -> Result<(), DbError> {
    tx.client()
        .execute(
            "INSERT INTO chatapp_support_agent_status (user_id, company_id) VALUES ($1, $2)
             ON CONFLICT (user_id) DO NOTHING",
            &[&user, &company],
        )
        .await?;
    Ok(())
}

/// The user's presence, made on first use.
pub async fn ensure(tx: &TenantTx, company: Uuid, user: Uuid) -> Result<Presence, DbError> {
    create_if_missing(tx, company, user).await?;
    let row = tx
        .client()
        .query_one(
            &format!("SELECT {COLUMNS} FROM chatapp_support_agent_status WHERE user_id = $1 AND company_id = $2"),
            &[&user, &company],
        )
        .await?;
    Ok(from_row(&row))
}

/// The user's presence, made on first use, locked for a change in this transaction.
pub async fn ensure_locked(tx: &TenantTx, company: Uuid, user: Uuid) -> Result<Presence, DbError> {
    create_if_missing(tx, company, user).await?;
    let row = tx
        .client()
        .query_one(
            &format!(
                "SELECT {COLUMNS} FROM chatapp_support_agent_status WHERE user_id = $1 AND company_id = $2 FOR UPDATE"
            ),
            &[&user, &company],
        )
        .await?;
    Ok(from_row(&row))
}

/// A new status; `max_concurrent_chats` `None` keeps the capacity, `status_message` replaces
/// the message (`None` clears it).
pub struct StatusChange<'a> {
    pub status: SupportAgentStatus,
    pub max_concurrent_chats: Option<i32>,
    pub status_message: Option<&'a str>,
}

/// Sets the user's status (the row exists: [`ensure_locked`] first). `status_changed_at`
/// moves only when the status does; `last_active_at` is now.
pub async fn set_status(tx: &TenantTx, company: Uuid, user: Uuid, c: &StatusChange<'_>) -> Result<Presence, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "UPDATE chatapp_support_agent_status SET
                    status_changed_at = CASE WHEN status = $3 THEN status_changed_at ELSE now() END,
                    status = $3,
                    max_concurrent_chats = COALESCE($4, max_concurrent_chats),
                    status_message = $5,
                    last_active_at = now(),
                    updated_at = now()
                 WHERE user_id = $1 AND company_id = $2
                 RETURNING {COLUMNS}"
            ),
            &[&user, &company, &c.status, &c.max_concurrent_chats, &c.status_message],
        )
        .await?;
    Ok(from_row(&row))
}

/// Records a heartbeat (`last_active_at` = now; the row exists: [`create_if_missing`] first).
/// Someone away for missed heartbeats ([`AUTO_AWAY`]) is online again: returns whether they
/// came back.
pub async fn heartbeat(tx: &TenantTx, company: Uuid, user: Uuid) -> Result<bool, DbError> {
    let row = tx
        .client()
        .query_opt(
            "WITH prior AS (
                 SELECT id, (status = 'away' AND status_message IS NOT DISTINCT FROM $3::text) AS back
                 FROM chatapp_support_agent_status WHERE user_id = $1 AND company_id = $2 FOR UPDATE
             )
             UPDATE chatapp_support_agent_status s SET
                 last_active_at = now(),
                 status = CASE WHEN prior.back THEN 'online'::support_agent_status ELSE s.status END,
                 status_message = CASE WHEN prior.back THEN NULL ELSE s.status_message END,
                 status_changed_at = CASE WHEN prior.back THEN now() ELSE s.status_changed_at END
             FROM prior WHERE s.id = prior.id
             RETURNING prior.back",
            &[&user, &company, &AUTO_AWAY],
        )
        .await?;
    Ok(row.is_some_and(|r| r.get::<_, bool>(0)))
}

/// Queues a `drain` job for the company's escalation worker (assign waiting conversations to
/// whoever is free), in this transaction's outbox: it is relayed only if the change commits.
pub async fn queue_drain(tx: &TenantTx, company: Uuid) -> Result<(), DbError> {
    tx.client()
        .execute(
            "SELECT chatapp_outbox_add('escalation', jsonb_build_object('company_id', $1::uuid, 'kind', 'drain'))",
            &[&company],
        )
        .await?;
    Ok(())
}

/// A colleague in the transfer picker: who they are, their status and load.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentPresence {
    pub user_id: Uuid,
    pub name: Option<String>,
    /// `name`, or the part of the email before `@`.
    pub display_name: String,
    pub email: String,
    /// `company_admin` or `support_agent`.
    pub role: String,
    /// `offline` for someone who never opened the inbox.
    pub status: SupportAgentStatus,
    pub status_message: Option<String>,
    pub max_concurrent_chats: i32,
    pub current_chat_count: i32,
    /// Online and below capacity: can take a conversation now.
    pub available: bool,
    pub last_active_at: Option<DateTime<Utc>>,
}

/// The company's active support agents and admins, online first (the enum's order: online,
/// busy, away, offline), then the least loaded, then by name.
pub async fn list_agents(tx: &TenantTx, company: Uuid, page: Page) -> Result<(Vec<AgentPresence>, i64), DbError> {
    let rows = tx
        .client()
        .query(
            "SELECT u.id, u.name, coalesce(nullif(trim(u.name), ''), split_part(u.email, '@', 1)), u.email,
                    u.role::text, COALESCE(s.status, 'offline'::support_agent_status), s.status_message,
                    COALESCE(s.max_concurrent_chats, 5), COALESCE(s.current_chat_count, 0), s.last_active_at,
                    count(*) OVER ()
             FROM chatapp_users u
             LEFT JOIN chatapp_support_agent_status s ON s.user_id = u.id AND s.company_id = u.company_id
             WHERE u.company_id = $1 AND u.is_active AND u.deleted_at IS NULL
               AND u.role IN ('support_agent', 'company_admin')
             ORDER BY COALESCE(s.status, 'offline'::support_agent_status), COALESCE(s.current_chat_count, 0),
                      lower(coalesce(nullif(trim(u.name), ''), u.email)), u.id
             LIMIT $2 OFFSET $3",
            &[&company, &page.limit, &page.offset],
        )
        .await?;
    let total = rows.first().map(|r| r.get::<_, i64>(10)).unwrap_or(0);
    let items = rows
        .iter()
        .map(|r| {
            let status: SupportAgentStatus = r.get(5);
            let max: i32 = r.get(7);
            let current: i32 = r.get(8);
            AgentPresence {
                user_id: r.get(0),
                name: r.get(1),
                display_name: r.get(2),
                email: r.get(3),
                role: r.get(4),
                status,
                status_message: r.get(6),
                max_concurrent_chats: max,
                current_chat_count: current,
                available: status == SupportAgentStatus::Online && current < max,
                last_active_at: r.get(9),
            }
        })
        .collect();
    Ok((items, total))
}
