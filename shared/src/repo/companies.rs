use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::status::CompanyStatus;
use crate::web::Page;

/// A company (tenant).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Company {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub logo_url: Option<String>,
    pub primary_color: Option<String>,
    pub secondary_color: Option<String>,
    pub custom_domain: Option<String>,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    #[schema(value_type = Object)]
    pub settings: Value,
    pub status: CompanyStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, slug, description, logo_url, primary_color, secondary_color, \
    custom_domain, timezone, locale, COALESCE(settings, '{}'::jsonb), status, created_at, updated_at";

fn from_row(r: &Row) -> Company {
    Company {
        id: r.get(0),
        name: r.get(1),
        slug: r.get(2),
        description: r.get(3),
        logo_url: r.get(4),
        primary_color: r.get(5),
        secondary_color: r.get(6),
        custom_domain: r.get(7),
        timezone: r.get(8),
        locale: r.get(9),
        settings: r.get(10),
        status: r.get(11),
        created_at: r.get(12),
        updated_at: r.get(13),
    }
}

pub struct NewCompany<'a> {
    pub name: &'a str,
    pub slug: &'a str,
    pub description: Option<&'a str>,
    pub timezone: &'a str,
    pub locale: &'a str,
}

pub async fn create(tx: &TenantTx, c: &NewCompany<'_>) -> Result<Company, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "INSERT INTO chatapp_companies (name, slug, description, timezone, locale)
                 VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
            ),
            &[&c.name, &c.slug, &c.description, &c.timezone, &c.locale],
        )
        .await?;
    Ok(from_row(&row))
}

/// Companies the caller can see (RLS: its own, or all for the master admin).
pub async fn list(tx: &TenantTx, page: Page, status: Option<CompanyStatus>) -> Result<(Vec<Company>, i64), DbError> {
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS}, count(*) OVER () FROM chatapp_companies
                 WHERE deleted_at IS NULL AND ($3::text IS NULL OR status = $3)
                 ORDER BY created_at, id LIMIT $1 OFFSET $2"
            ),
            &[&page.limit, &page.offset, &status],
        )
        .await?;
    let total = rows.first().map(|r| r.get::<_, i64>(14)).unwrap_or(0);
    Ok((rows.iter().map(from_row).collect(), total))
}

pub async fn get(tx: &TenantTx, id: Uuid) -> Result<Option<Company>, DbError> {
    let row = tx
        .client()
        .query_opt(&format!("SELECT {COLUMNS} FROM chatapp_companies WHERE id = $1 AND deleted_at IS NULL"), &[&id])
        .await?;
    Ok(row.as_ref().map(from_row))
}

#[derive(Default)]
pub struct CompanyPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub logo_url: Option<String>,
    pub primary_color: Option<String>,
    pub secondary_color: Option<String>,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    pub settings: Option<Value>,
    pub status: Option<CompanyStatus>,
}

pub async fn update(tx: &TenantTx, id: Uuid, p: &CompanyPatch) -> Result<Option<Company>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_companies SET
                    name = COALESCE($2, name),
                    description = COALESCE($3, description),
                    logo_url = COALESCE($4, logo_url),
                    primary_color = COALESCE($5, primary_color),
                    secondary_color = COALESCE($6, secondary_color),
                    timezone = COALESCE($7, timezone),
                    locale = COALESCE($8, locale),
                    settings = COALESCE($9, settings),
                    status = COALESCE($10, status),
                    updated_at = now()
                 WHERE id = $1 AND deleted_at IS NULL
                 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &p.name,
                &p.description,
                &p.logo_url,
                &p.primary_color,
                &p.secondary_color,
                &p.timezone,
                &p.locale,
                &p.settings,
                &p.status,
            ],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn delete(tx: &TenantTx, id: Uuid) -> Result<bool, DbError> {
    Ok(tx.client().execute("DELETE FROM chatapp_companies WHERE id = $1", &[&id]).await? == 1)
}
