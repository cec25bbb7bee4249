//! Refresh tokens rotate on every use; a token used twice revokes its whole family.

use chrono::{DateTime, Utc};
use std::net::IpAddr;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

pub struct NewRefreshToken<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub company_id: Option<Uuid>,
    pub token_hash: &'a str,
    pub family_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
}

pub async fn insert(tx: &TenantTx, t: &NewRefreshToken<'_>) -> Result<(), DbError> {
    tx.client()
        .execute(
            "INSERT INTO chatapp_refresh_tokens
                (id, user_id, company_id, token_hash, family_id, expires_at, ip_address, user_agent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[&t.id, &t.user_id, &t.company_id, &t.token_hash, &t.family_id, &t.expires_at, &t.ip, &t.user_agent],
        )
        .await?;
    Ok(())
}

/// Marks `id` used, replaced by `replaced_by`; false if it was already revoked (a race).
pub async fn rotate(tx: &TenantTx, id: Uuid, replaced_by: Uuid) -> Result<bool, DbError> {
    let n = tx
        .client()
        .execute(
            "UPDATE chatapp_refresh_tokens SET revoked_at = now(), replaced_by = $2
             WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &replaced_by],
        )
        .await?;
    Ok(n == 1)
}

pub async fn revoke_family(tx: &TenantTx, family: Uuid) -> Result<u64, DbError> {
    Ok(tx
        .client()
        .execute(
            "UPDATE chatapp_refresh_tokens SET revoked_at = now()
             WHERE family_id = $1 AND revoked_at IS NULL",
            &[&family],
        )
        .await?)
}

pub async fn revoke_all_for_user(tx: &TenantTx, user: Uuid) -> Result<u64, DbError> {
    Ok(tx
        .client()
        .execute(
            "UPDATE chatapp_refresh_tokens SET revoked_at = now()
             WHERE user_id = $1 AND revoked_at IS NULL",
            &[&user],
        )
        .await?)
}
