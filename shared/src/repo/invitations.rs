use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::status::InvitationStatus;
use crate::web::Page;

/// An invitation to join a company (never its token).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Invitation {
    pub id: Uuid,
    pub company_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    /// `company_admin` or `support_agent`.
    pub role: String,
    /// `{"<resource>": ["read" | "write"]}`.
    #[schema(value_type = Object)]
    pub permissions: Value,
    /// `expired` is reported for pending invitations past their expiry.
    pub status: InvitationStatus,
    pub invited_by: Uuid,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, company_id, email, name, role::text, permissions, \
    CASE WHEN status = 'pending' AND expires_at <= now() THEN 'expired'::invitation_status ELSE status END, \
    invited_by, expires_at, accepted_at, created_at";

fn from_row(r: &Row) -> Invitation {
    Invitation {
        id: r.get(0),
        company_id: r.get(1),
        email: r.get(2),
        name: r.get(3),
        role: r.get(4),
        permissions: r.get(5),
        status: r.get(6),
        invited_by: r.get(7),
        expires_at: r.get(8),
        accepted_at: r.get(9),
        created_at: r.get(10),
    }
}

pub struct NewInvitation<'a> {
    pub company_id: Uuid,
    pub invited_by: Uuid,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub role: &'a str,
    pub permissions: &'a Value,
    pub token_hash: &'a str,
    pub expires_at: DateTime<Utc>,
}

pub async fn create(tx: &TenantTx, i: &NewInvitation<'_>) -> Result<Invitation, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "INSERT INTO chatapp_invitations
                    (company_id, invited_by, email, name, role, permissions, token, expires_at)
                 VALUES ($1, $2, lower($3), $4, $5::text::user_role, $6, $7, $8) RETURNING {COLUMNS}"
            ),
            &[&i.company_id, &i.invited_by, &i.email, &i.name, &i.role, i.permissions, &i.token_hash, &i.expires_at],
        )
        .await?;
    Ok(from_row(&row))
}

pub async fn list(tx: &TenantTx, company: Uuid, page: Page) -> Result<(Vec<Invitation>, i64), DbError> {
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS}, count(*) OVER () FROM chatapp_invitations WHERE company_id = $1
                 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
            ),
            &[&company, &page.limit, &page.offset],
        )
        .await?;
    let total = rows.first().map(|r| r.get::<_, i64>(11)).unwrap_or(0);
    Ok((rows.iter().map(from_row).collect(), total))
}

pub async fn get(tx: &TenantTx, id: Uuid) -> Result<Option<Invitation>, DbError> {
    let row =
        tx.client().query_opt(&format!("SELECT {COLUMNS} FROM chatapp_invitations WHERE id = $1"), &[&id]).await?;
    Ok(row.as_ref().map(from_row))
}

/// Pending → revoked; `None` if the invitation is not pending (or not visible).
pub async fn revoke(tx: &TenantTx, id: Uuid) -> Result<Option<Invitation>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_invitations SET status = 'revoked', updated_at = now()
                 WHERE id = $1 AND status = 'pending' RETURNING {COLUMNS}"
            ),
            &[&id],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Pending → accepted, exactly once.
pub async fn accept(tx: &TenantTx, id: Uuid, user_id: Uuid) -> Result<bool, DbError> {
    let n = tx
        .client()
        .execute(
            "UPDATE chatapp_invitations SET status = 'accepted', accepted_at = now(),
                accepted_by = $2, updated_at = now()
             WHERE id = $1 AND status = 'pending' AND expires_at > now()",
            &[&id, &user_id],
        )
        .await?;
    Ok(n == 1)
}
