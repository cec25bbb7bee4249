use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::web::Page;

/// An API key as listed: never the key or its hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The key's first characters, to tell keys apart.
    pub key_prefix: String,
    /// `<access>:<resource>` scopes, e.g. `read:team`.
    #[schema(value_type = Vec<String>)]
    pub scopes: Value,
    /// Requests per minute.
    pub rate_limit: Option<i32>,
    pub is_active: bool,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, key_prefix, COALESCE(permissions, '[]'::jsonb), rate_limit, \
    COALESCE(is_active, true), last_used_at, expires_at, created_by, created_at, revoked_at";

fn from_row(r: &Row) -> ApiKey {
    ApiKey {
        id: r.get(0),
        name: r.get(1),
        key_prefix: r.get(2),
        scopes: r.get(3),
        rate_limit: r.get(4),
        is_active: r.get(5),
        last_used_at: r.get(6),
        expires_at: r.get(7),
        created_by: r.get(8),
        created_at: r.get(9),
        revoked_at: r.get(10),
    }
}

pub struct NewApiKey<'a> {
    pub company_id: Uuid,
    pub name: &'a str,
    pub prefix: &'a str,
    pub hash: &'a str,
    pub scopes: &'a Value,
    pub rate_limit: i32,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn create(tx: &TenantTx, k: &NewApiKey<'_>) -> Result<ApiKey, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "INSERT INTO chatapp_api_keys
                    (company_id, name, key_prefix, key_hash, permissions, rate_limit, expires_at, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
            ),
            &[&k.company_id, &k.name, &k.prefix, &k.hash, k.scopes, &k.rate_limit, &k.expires_at, &tx.ctx().user_id()],
        )
        .await?;
    Ok(from_row(&row))
}

pub async fn list(tx: &TenantTx, company: Uuid, page: Page) -> Result<(Vec<ApiKey>, i64), DbError> {
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS}, count(*) OVER () FROM chatapp_api_keys WHERE company_id = $1
                 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
            ),
            &[&company, &page.limit, &page.offset],
        )
        .await?;
    let total = rows.first().map(|r| r.get::<_, i64>(11)).unwrap_or(0);
    Ok((rows.iter().map(from_row).collect(), total))
}

pub async fn get(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<ApiKey>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!("SELECT {COLUMNS} FROM chatapp_api_keys WHERE id = $1 AND company_id = $2"),
            &[&id, &company],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn revoke(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<ApiKey>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_api_keys SET is_active = false, revoked_at = COALESCE(revoked_at, now()),
                    updated_at = now()
                 WHERE id = $1 AND company_id = $2 RETURNING {COLUMNS}"
            ),
            &[&id, &company],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Records use at most once a minute per key, keeping the hot path to one read.
pub async fn touch_used(tx: &TenantTx, id: Uuid) -> Result<(), DbError> {
    tx.client()
        .execute(
            "UPDATE chatapp_api_keys SET last_used_at = now()
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
            &[&id],
        )
        .await?;
    Ok(())
}
