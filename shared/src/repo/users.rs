use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::web::Page;

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub company_id: Option<Uuid>,
    /// `master_admin`, `company_admin` or `support_agent`.
    pub role: String,
    /// `{"<resource>": ["read" | "write"]}`.
    #[schema(value_type = Object)]
    pub permissions: Value,
    pub is_active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    /// Addresses or CIDR blocks the user may act from (empty: anywhere).
    #[schema(value_type = Vec<String>)]
    pub ip_allowlist: Value,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, email, name, company_id, role::text, COALESCE(permissions, '{}'::jsonb), \
    is_active, last_login_at, COALESCE(ip_allowlist, '[]'::jsonb), access_expires_at, created_at, updated_at";

fn from_row(r: &Row) -> User {
    User {
        id: r.get(0),
        email: r.get(1),
        name: r.get(2),
        company_id: r.get(3),
        role: r.get(4),
        permissions: r.get(5),
        is_active: r.get(6),
        last_login_at: r.get(7),
        ip_allowlist: r.get(8),
        access_expires_at: r.get(9),
        created_at: r.get(10),
        updated_at: r.get(11),
    }
}

pub async fn list(tx: &TenantTx, company: Uuid, page: Page) -> Result<(Vec<User>, i64), DbError> {
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS}, count(*) OVER () FROM chatapp_users
                 WHERE company_id = $1 AND deleted_at IS NULL
                 ORDER BY created_at, id LIMIT $2 OFFSET $3"
            ),
            &[&company, &page.limit, &page.offset],
        )
        .await?;
    let total = rows.first().map(|r| r.get::<_, i64>(12)).unwrap_or(0);
    Ok((rows.iter().map(from_row).collect(), total))
}

pub async fn get(tx: &TenantTx, id: Uuid) -> Result<Option<User>, DbError> {
    let row = tx
        .client()
        .query_opt(&format!("SELECT {COLUMNS} FROM chatapp_users WHERE id = $1 AND deleted_at IS NULL"), &[&id])
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub struct NewUser<'a> {
    pub id: Uuid,
    pub company_id: Option<Uuid>,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub role: &'a str,
    pub permissions: &'a Value,
    pub password_hash: &'a str,
}

pub async fn create(tx: &TenantTx, u: &NewUser<'_>) -> Result<User, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "INSERT INTO chatapp_users (id, company_id, email, name, role, permissions, password_hash, email_verified)
                 VALUES ($1, $2, lower($3), $4, $5::text::user_role, $6, $7, now())
                 RETURNING {COLUMNS}"
            ),
            &[&u.id, &u.company_id, &u.email, &u.name, &u.role, u.permissions, &u.password_hash],
        )
        .await?;
    Ok(from_row(&row))
}

pub struct UserPatch {
    pub role: Option<String>,
    pub permissions: Option<Value>,
    pub name: Option<String>,
    pub ip_allowlist: Option<Value>,
    /// `Some(None)` clears the expiry.
    pub access_expires_at: Option<Option<DateTime<Utc>>>,
}

pub async fn update(tx: &TenantTx, id: Uuid, p: &UserPatch) -> Result<Option<User>, DbError> {
    let set_expiry = p.access_expires_at.is_some();
    let expiry = p.access_expires_at.flatten();
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_users SET
                    role = COALESCE($2::text::user_role, role),
                    permissions = COALESCE($3, permissions),
                    name = COALESCE($4, name),
                    ip_allowlist = COALESCE($5, ip_allowlist),
                    access_expires_at = CASE WHEN $6 THEN $7 ELSE access_expires_at END,
                    updated_at = now()
                 WHERE id = $1 AND deleted_at IS NULL
                 RETURNING {COLUMNS}"
            ),
            &[&id, &p.role, &p.permissions, &p.name, &p.ip_allowlist, &set_expiry, &expiry],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn set_active(tx: &TenantTx, id: Uuid, active: bool) -> Result<Option<User>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_users SET is_active = $2, updated_at = now()
                 WHERE id = $1 AND deleted_at IS NULL RETURNING {COLUMNS}"
            ),
            &[&id, &active],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// A deactivated support agent's conversations go back to the queue (a system message and an
/// event each, and a drain job the outbox sweep relays), and they go offline.
pub async fn release_conversations(tx: &TenantTx, id: Uuid) -> Result<u64, DbError> {
    let released = tx
        .client()
        .query(
            "SELECT chatapp_handoff_requeue(c.id, 'agent_deactivated') FROM chatapp_conversations c
             WHERE c.assigned_agent_id = $1 AND c.status = 'with_human'",
            &[&id],
        )
        .await?
        .len() as u64;
    tx.client()
        .execute(
            "UPDATE chatapp_support_agent_status SET status = 'offline', status_changed_at = now() WHERE user_id = $1",
            &[&id],
        )
        .await?;
    Ok(released)
}

pub async fn touch_login(tx: &TenantTx, id: Uuid) -> Result<(), DbError> {
    tx.client().execute("UPDATE chatapp_users SET last_login_at = now() WHERE id = $1", &[&id]).await?;
    Ok(())
}

/// Seats in use: active users plus pending, unexpired invitations.
pub async fn seats_in_use(tx: &TenantTx, company: Uuid) -> Result<i64, DbError> {
    let row = tx
        .client()
        .query_one(
            "SELECT (SELECT count(*) FROM chatapp_users
                      WHERE company_id = $1 AND is_active AND deleted_at IS NULL)
                  + (SELECT count(*) FROM chatapp_invitations
                      WHERE company_id = $1 AND status = 'pending' AND expires_at > now())",
            &[&company],
        )
        .await?;
    Ok(row.get(0))
}
