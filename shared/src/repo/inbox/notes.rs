//! `chatapp_conversation_notes`: support agents' private notes on a conversation. The customer
//! never sees them (the widget reads messages and non-internal events only) and the chat turn
//! never reads this table, so they never reach the model's prompt. Each insert is an internal
//! `note.created` event (trigger `note_event`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// The most notes a list returns (oldest first).
pub const MAX_NOTES: i64 = 1000;

/// A private note on a conversation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Note {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    /// The author's name, or the part of their email before `@`; absent when the author is not
    /// a user the caller can see (a master admin, say).
    pub author_name: Option<String>,
    pub content: String,
    /// The colleagues mentioned as `@<email>`.
    pub mentions: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, conversation_id, user_id, chatapp_user_display_name(user_id), content, mentions, created_at";

fn from_row(r: &Row) -> Note {
    Note {
        id: r.get(0),
        conversation_id: r.get(1),
        user_id: r.get(2),
        author_name: r.get(3),
        content: r.get(4),
        mentions: r.get(5),
        created_at: r.get(6),
    }
}

/// The conversation exists in the company and the caller may see it (row-level security hides
/// a support agent the conversations of their colleagues).
pub async fn conversation_visible(tx: &TenantTx, company: Uuid, conversation: Uuid) -> Result<bool, DbError> {
    let row = tx
        .client()
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM chatapp_conversations
                            WHERE id = $1 AND company_id = $2 AND deleted_at IS NULL)",
            &[&conversation, &company],
        )
        .await?;
    Ok(row.get(0))
}

/// The conversation's notes, oldest first (at most [`MAX_NOTES`]).
pub async fn list(tx: &TenantTx, company: Uuid, conversation: Uuid) -> Result<Vec<Note>, DbError> {
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS} FROM chatapp_conversation_notes
                 WHERE conversation_id = $1 AND company_id = $2
                 ORDER BY created_at, id LIMIT $3"
            ),
            &[&conversation, &company, &MAX_NOTES],
        )
        .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// The company's active users among `emails` (lower-case): `(id, lower-case email)`.
pub async fn active_users_by_email(
    tx: &TenantTx,
    company: Uuid,
    emails: &[String],
) -> Result<Vec<(Uuid, String)>, DbError> {
    let rows = tx
        .client()
        .query(
            "SELECT id, lower(email) FROM chatapp_users
             WHERE company_id = $1 AND is_active AND deleted_at IS NULL AND lower(email) = ANY($2::text[])",
            &[&company, &emails],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Stores a note by `user` (the conversation is visible: [`conversation_visible`] first).
pub async fn create(
    tx: &TenantTx,
    company: Uuid,
    conversation: Uuid,
    user: Uuid,
    content: &str,
    mentions: &[Uuid],
) -> Result<Note, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "INSERT INTO chatapp_conversation_notes (conversation_id, company_id, user_id, content, mentions)
                 VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
            ),
            &[&conversation, &company, &user, &content, &mentions],
        )
        .await?;
    Ok(from_row(&row))
}
