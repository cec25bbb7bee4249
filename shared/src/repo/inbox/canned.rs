//! `chatapp_canned_responses`: saved replies a support agent inserts while answering, shared
//! with the whole company (`company`, `is_global`) or their author's alone (`personal`). A
//! shortcut is unique among the company's shared ones and among each author's personal ones
//! (`canned_responses_shortcut_key`); a deleted response (`is_active = false`) frees it.
//!
//! Row-level security (`personal_scope`) hides others' personal responses from support agents;
//! these functions go further and show a personal response to its author only, admins
//! included, as the inbox lists them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::web::Page;

/// Who a canned response is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CannedScope {
    /// Everyone in the company (`is_global`); only company and master admins make or change these.
    Company,
    /// Its author alone.
    Personal,
}

impl CannedScope {
    pub fn as_str(&self) -> &'static str {
        match self {
            CannedScope::Company => "company",
            CannedScope::Personal => "personal",
        }
    }

    pub fn parse(s: &str) -> Option<CannedScope> {
        match s {
            "company" => Some(CannedScope::Company),
            "personal" => Some(CannedScope::Personal),
            _ => None,
        }
    }

    fn is_global(&self) -> bool {
        *self == CannedScope::Company
    }
}

/// A saved reply.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CannedResponse {
    pub id: Uuid,
    pub title: String,
    /// Lower-case letters, digits, `-` and `_`; what the support agent types after `/`.
    pub shortcut: Option<String>,
    /// May hold `{{customer_name}}`, `{{customer_email}}`, `{{agent_name}}`, `{{company_name}}`.
    pub content: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub scope: CannedScope,
    pub created_by: Uuid,
    pub usage_count: i32,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, title, shortcut, content, category, COALESCE(tags, '[]'::jsonb), \
    COALESCE(is_global, true), created_by, COALESCE(usage_count, 0), last_used_at, created_at, updated_at";

fn from_row(r: &Row) -> CannedResponse {
    let tags: Value = r.get(5);
    let global: bool = r.get(6);
    CannedResponse {
        id: r.get(0),
        title: r.get(1),
        shortcut: r.get(2),
        content: r.get(3),
        category: r.get(4),
        // Rows from older data may hold anything in the column: keep the strings.
        tags: tags
            .as_array()
            .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        scope: if global { CannedScope::Company } else { CannedScope::Personal },
        created_by: r.get(7),
        usage_count: r.get(8),
        last_used_at: r.get(9),
        created_at: r.get(10),
        updated_at: r.get(11),
    }
}

/// The list's filters; `None` matches everything.
#[derive(Debug, Default)]
pub struct CannedFilter<'a> {
    /// Case-insensitive substring of the title, content or shortcut.
    pub q: Option<&'a str>,
    /// Case-insensitive prefix of the shortcut (what the composer has after `/`).
    pub shortcut: Option<&'a str>,
    /// Case-insensitive category.
    pub category: Option<&'a str>,
}

/// The active responses `user` may use: the company's and their own personal ones, by title.
pub async fn list(
    tx: &TenantTx,
    company: Uuid,
    user: Uuid,
    filter: &CannedFilter<'_>,
    page: Page,
) -> Result<(Vec<CannedResponse>, i64), DbError> {
    let q = filter.q.map(|q| format!("%{}%", crate::db::like_escape(q)));
    let shortcut = filter.shortcut.map(|s| format!("{}%", crate::db::like_escape(&s.to_lowercase())));
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS}, count(*) OVER () FROM chatapp_canned_responses
                 WHERE company_id = $1 AND is_active IS NOT FALSE
                   AND (is_global IS NOT FALSE OR created_by = $2)
                   AND ($3::text IS NULL OR title ILIKE $3 OR content ILIKE $3 OR shortcut ILIKE $3)
                   AND ($4::text IS NULL OR lower(shortcut) LIKE $4)
                   AND ($5::text IS NULL OR lower(category) = lower($5))
                 ORDER BY lower(title), id LIMIT $6 OFFSET $7"
            ),
            &[&company, &user, &q, &shortcut, &filter.category, &page.limit, &page.offset],
        )
        .await?;
    let total = rows.first().map(|r| r.get::<_, i64>(12)).unwrap_or(0);
    Ok((rows.iter().map(from_row).collect(), total))
}

/// One active response `user` may use (the company's, or their own personal one).
pub async fn get(tx: &TenantTx, company: Uuid, user: Uuid, id: Uuid) -> Result<Option<CannedResponse>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM chatapp_canned_responses
                 WHERE id = $1 AND company_id = $2 AND is_active IS NOT FALSE
                   AND (is_global IS NOT FALSE OR created_by = $3)"
            ),
            &[&id, &company, &user],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// A response's fields, checked by the caller.
pub struct CannedFields<'a> {
    pub title: &'a str,
    /// Lower-case.
    pub shortcut: Option<&'a str>,
    pub content: &'a str,
    pub category: Option<&'a str>,
    pub tags: &'a [String],
    pub scope: CannedScope,
}

/// Stores a response by `user`. A shortcut taken in its scope is a unique violation
/// ([`DbError::unique_violation`]).
pub async fn create(tx: &TenantTx, company: Uuid, user: Uuid, f: &CannedFields<'_>) -> Result<CannedResponse, DbError> {
    let tags = json!(f.tags);
    let global = f.scope.is_global();
    let row = tx
        .client()
        .query_one(
            &format!(
                "INSERT INTO chatapp_canned_responses
                    (company_id, created_by, title, shortcut, content, category, tags, is_global)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
            ),
            &[&company, &user, &f.title, &f.shortcut, &f.content, &f.category, &tags, &global],
        )
        .await?;
    Ok(from_row(&row))
}

/// Replaces an active response's fields; `None` when there is none. A shortcut taken in its
/// scope is a unique violation.
pub async fn update(
    tx: &TenantTx,
    company: Uuid,
    id: Uuid,
    f: &CannedFields<'_>,
) -> Result<Option<CannedResponse>, DbError> {
    let tags = json!(f.tags);
    let global = f.scope.is_global();
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_canned_responses SET
                    title = $3, shortcut = $4, content = $5, category = $6, tags = $7, is_global = $8,
                    updated_at = now()
                 WHERE id = $1 AND company_id = $2 AND is_active IS NOT FALSE
                 RETURNING {COLUMNS}"
            ),
            &[&id, &company, &f.title, &f.shortcut, &f.content, &f.category, &tags, &global],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Deletes a response softly (`is_active = false`, which frees its shortcut); whether there
/// was an active one.
pub async fn deactivate(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<bool, DbError> {
    let n = tx
        .client()
        .execute(
            "UPDATE chatapp_canned_responses SET is_active = false, updated_at = now()
             WHERE id = $1 AND company_id = $2 AND is_active IS NOT FALSE",
            &[&id, &company],
        )
        .await?;
    Ok(n == 1)
}

/// Counts a use of the response (`usage_count`, `last_used_at`).
pub async fn record_use(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<(), DbError> {
    tx.client()
        .execute(
            "UPDATE chatapp_canned_responses SET usage_count = COALESCE(usage_count, 0) + 1, last_used_at = now()
             WHERE id = $1 AND company_id = $2",
            &[&id, &company],
        )
        .await?;
    Ok(())
}

/// What a response's variables are filled with, for one conversation and support agent.
#[derive(Debug, Clone, Default)]
pub struct RenderContext {
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    pub company_name: Option<String>,
    /// The support agent's name, or the part of their email before `@`.
    pub agent_name: Option<String>,
}

/// The variables for rendering into `conversation` as `user`; `None` when the conversation is
/// not one the caller may see.
pub async fn render_context(
    tx: &TenantTx,
    company: Uuid,
    conversation: Uuid,
    user: Uuid,
) -> Result<Option<RenderContext>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT c.customer_name, c.customer_email, co.name, chatapp_user_display_name($3::uuid)
             FROM chatapp_conversations c JOIN chatapp_companies co ON co.id = c.company_id
             WHERE c.id = $1 AND c.company_id = $2 AND c.deleted_at IS NULL",
            &[&conversation, &company, &user],
        )
        .await?;
    Ok(row.map(|r| RenderContext {
        customer_name: r.get(0),
        customer_email: r.get(1),
        company_name: r.get(2),
        agent_name: r.get(3),
    }))
}
