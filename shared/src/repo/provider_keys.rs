//! A company's own AI provider keys (migration 0023): sealed by the caller, never returned.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// A provider key as admins see it: never the key, only its last four characters.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderKey {
    pub id: Uuid,
    pub name: String,
    /// `openai`, `anthropic` or `openai_compatible`.
    pub provider: String,
    /// The API base the key is used with; absent: the provider's own.
    pub base_url: Option<String>,
    /// The key's last four characters, to tell keys apart.
    pub key_hint: Option<String>,
    pub is_active: bool,
    pub last_tested_at: Option<DateTime<Utc>>,
    /// What the provider answered to the last test, when it failed.
    pub last_test_error: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, provider, base_url, key_hint, is_active, last_tested_at, last_test_error, \
    created_by, created_at, updated_at";

fn from_row(r: &Row) -> ProviderKey {
    ProviderKey {
        id: r.get(0),
        name: r.get(1),
        provider: r.get(2),
        base_url: r.get(3),
        key_hint: r.get(4),
        is_active: r.get(5),
        last_tested_at: r.get(6),
        last_test_error: r.get(7),
        created_by: r.get(8),
        created_at: r.get(9),
        updated_at: r.get(10),
    }
}

pub struct NewKey<'a> {
    /// Chosen by the caller: the sealed key is bound to it.
    pub id: Uuid,
    pub company_id: Uuid,
    pub name: &'a str,
    pub provider: &'a str,
    pub base_url: Option<&'a str>,
    pub sealed: &'a [u8],
    pub hint: &'a str,
}

/// Fails with a unique violation when the company already has an active key of the provider.
pub async fn insert(tx: &TenantTx, k: &NewKey<'_>) -> Result<ProviderKey, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "INSERT INTO chatapp_provider_keys (id, company_id, name, provider, base_url, key_sealed, key_hint,
                                                    created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
            ),
            &[&k.id, &k.company_id, &k.name, &k.provider, &k.base_url, &k.sealed, &k.hint, &tx.ctx().user_id()],
        )
        .await?;
    Ok(from_row(&row))
}

/// Keys of the company, newest first, optionally of one provider.
pub async fn list(
    tx: &TenantTx,
    company: Uuid,
    provider: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ProviderKey>, i64), DbError> {
    let filter = "company_id = $1 AND ($2::text IS NULL OR provider = $2)";
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS} FROM chatapp_provider_keys WHERE {filter}
                 ORDER BY created_at DESC, id LIMIT $3 OFFSET $4"
            ),
            &[&company, &provider, &limit, &offset],
        )
        .await?;
    let total: i64 = tx
        .client()
        .query_one(&format!("SELECT count(*) FROM chatapp_provider_keys WHERE {filter}"), &[&company, &provider])
        .await?
        .get(0);
    Ok((rows.iter().map(from_row).collect(), total))
}

pub async fn get(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<ProviderKey>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!("SELECT {COLUMNS} FROM chatapp_provider_keys WHERE id = $1 AND company_id = $2"),
            &[&id, &company],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// [`get`], locking the row until the transaction ends (read, then write it).
pub async fn lock(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<ProviderKey>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!("SELECT {COLUMNS} FROM chatapp_provider_keys WHERE id = $1 AND company_id = $2 FOR UPDATE"),
            &[&id, &company],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// The sealed key of a key row of the company.
pub async fn sealed(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<Vec<u8>>, DbError> {
    let row = tx
        .client()
        .query_opt("SELECT key_sealed FROM chatapp_provider_keys WHERE id = $1 AND company_id = $2", &[&id, &company])
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// What an admin may change; `None` leaves a field as it is.
#[derive(Default)]
pub struct KeyChange<'a> {
    pub name: Option<&'a str>,
    /// `Some(None)` clears it (back to the provider's own API base).
    pub base_url: Option<Option<&'a str>>,
    pub is_active: Option<bool>,
    /// A new sealed key and its hint (a rotation: the last test's outcome is cleared).
    pub key: Option<(&'a [u8], &'a str)>,
}

/// Fails with a unique violation when activating a key makes two active keys of a provider.
pub async fn update(tx: &TenantTx, company: Uuid, id: Uuid, c: &KeyChange<'_>) -> Result<ProviderKey, DbError> {
    let (sealed, hint) = match c.key {
        Some((s, h)) => (Some(s), Some(h)),
        None => (None, None),
    };
    let set_base_url = c.base_url.is_some();
    let base_url = c.base_url.flatten();
    let row = tx
        .client()
        .query_one(
            &format!(
                "UPDATE chatapp_provider_keys SET
                     name = COALESCE($3::text, name),
                     base_url = CASE WHEN $4::boolean THEN $5::text ELSE base_url END,
                     is_active = COALESCE($6::boolean, is_active),
                     key_sealed = COALESCE($7::bytea, key_sealed),
                     key_hint = CASE WHEN $7::bytea IS NULL THEN key_hint ELSE $8::text END,
                     last_tested_at = CASE WHEN $7::bytea IS NULL THEN last_tested_at END,
                     last_test_error = CASE WHEN $7::bytea IS NULL THEN last_test_error END,
                     updated_at = now()
                 WHERE id = $1 AND company_id = $2 RETURNING {COLUMNS}"
            ),
            &[&id, &company, &c.name, &set_base_url, &base_url, &c.is_active, &sealed, &hint],
        )
        .await?;
    Ok(from_row(&row))
}

/// Records the outcome of a test of the key (`error`: what failed, `None` when it worked).
pub async fn record_test(
    tx: &TenantTx,
    company: Uuid,
    id: Uuid,
    error: Option<&str>,
) -> Result<Option<ProviderKey>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_provider_keys SET last_tested_at = now(), last_test_error = $3::text
                 WHERE id = $1 AND company_id = $2 RETURNING {COLUMNS}"
            ),
            &[&id, &company, &error],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn delete(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<bool, DbError> {
    let n = tx
        .client()
        .execute("DELETE FROM chatapp_provider_keys WHERE id = $1 AND company_id = $2", &[&id, &company])
        .await?;
    Ok(n == 1)
}

/// The company's active key for `provider` (what the chat turn uses instead of the platform's):
/// its id, API base override and sealed key.
pub async fn active_for(
    tx: &TenantTx,
    company: Uuid,
    provider: &str,
) -> Result<Option<(Uuid, Option<String>, Vec<u8>)>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT id, base_url, key_sealed FROM chatapp_provider_keys
             WHERE company_id = $1 AND provider = $2 AND is_active",
            &[&company, &provider],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
}
