//! Knowledge categories: the tree, and which categories an agent answers from.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// A knowledge category; `file_count` counts the files filed directly under it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Category {
    pub id: Uuid,
    pub company_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub parent_id: Option<Uuid>,
    pub sort_order: i32,
    pub file_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const CATEGORY_COLUMNS: &str = "c.id, c.company_id, c.name, c.slug, c.description, c.parent_id, \
    COALESCE(c.sort_order, 0), (SELECT count(*) FROM chatapp_knowledge_files f WHERE f.category_id = c.id), \
    c.created_at, c.updated_at";

fn category(r: &Row) -> Category {
    Category {
        id: r.get(0),
        company_id: r.get(1),
        name: r.get(2),
        slug: r.get(3),
        description: r.get(4),
        parent_id: r.get(5),
        sort_order: r.get(6),
        file_count: r.get(7),
        created_at: r.get(8),
        updated_at: r.get(9),
    }
}

pub struct CategoryFields<'a> {
    pub name: &'a str,
    pub slug: &'a str,
    pub description: Option<&'a str>,
    pub parent_id: Option<Uuid>,
    pub sort_order: i32,
}

pub async fn create_category(tx: &TenantTx, company: Uuid, c: &CategoryFields<'_>) -> Result<Category, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "WITH c AS (INSERT INTO chatapp_knowledge_categories
                    (company_id, name, slug, description, parent_id, sort_order)
                    VALUES ($1, $2, $3, $4, $5, $6) RETURNING *)
                 SELECT {CATEGORY_COLUMNS} FROM c"
            ),
            &[&company, &c.name, &c.slug, &c.description, &c.parent_id, &c.sort_order],
        )
        .await?;
    Ok(category(&row))
}

pub async fn update_category(
    tx: &TenantTx,
    company: Uuid,
    id: Uuid,
    c: &CategoryFields<'_>,
) -> Result<Option<Category>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "WITH c AS (UPDATE chatapp_knowledge_categories
                    SET name = $3, slug = $4, description = $5, parent_id = $6, sort_order = $7, updated_at = now()
                    WHERE company_id = $1 AND id = $2 RETURNING *)
                 SELECT {CATEGORY_COLUMNS} FROM c"
            ),
            &[&company, &id, &c.name, &c.slug, &c.description, &c.parent_id, &c.sort_order],
        )
        .await?;
    Ok(row.as_ref().map(category))
}

pub async fn get_category(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<Category>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "SELECT {CATEGORY_COLUMNS} FROM chatapp_knowledge_categories c WHERE c.company_id = $1 AND c.id = $2"
            ),
            &[&company, &id],
        )
        .await?;
    Ok(row.as_ref().map(category))
}

/// All categories of the company, parents before children, then by sort order and name.
pub async fn list_categories(tx: &TenantTx, company: Uuid) -> Result<Vec<Category>, DbError> {
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {CATEGORY_COLUMNS} FROM chatapp_knowledge_categories c WHERE c.company_id = $1
                 ORDER BY c.sort_order, c.name"
            ),
            &[&company],
        )
        .await?;
    Ok(rows.iter().map(category).collect())
}

pub async fn count_categories(tx: &TenantTx, company: Uuid) -> Result<i64, DbError> {
    Ok(tx
        .client()
        .query_one("SELECT count(*) FROM chatapp_knowledge_categories WHERE company_id = $1", &[&company])
        .await?
        .get(0))
}

/// Whether making `parent` the parent of `id` would close a cycle (`parent` is `id` or below it).
pub async fn would_cycle(tx: &TenantTx, company: Uuid, id: Uuid, parent: Uuid) -> Result<bool, DbError> {
    Ok(tx
        .client()
        .query_one(
            "WITH RECURSIVE up(id, parent_id) AS (
                SELECT id, parent_id FROM chatapp_knowledge_categories WHERE company_id = $1 AND id = $3
                UNION
                SELECT c.id, c.parent_id FROM chatapp_knowledge_categories c JOIN up ON c.id = up.parent_id
                WHERE c.company_id = $1)
             SELECT EXISTS (SELECT 1 FROM up WHERE id = $2)",
            &[&company, &id, &parent],
        )
        .await?
        .get(0))
}

pub async fn delete_category(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<bool, DbError> {
    Ok(tx
        .client()
        .execute("DELETE FROM chatapp_knowledge_categories WHERE company_id = $1 AND id = $2", &[&company, &id])
        .await?
        == 1)
}

pub async fn agent_categories(tx: &TenantTx, company: Uuid, agent: Uuid) -> Result<Option<Vec<Uuid>>, DbError> {
    let exists = tx
        .client()
        .query_opt("SELECT 1 FROM chatapp_agents WHERE company_id = $1 AND id = $2", &[&company, &agent])
        .await?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let rows = tx
        .client()
        .query(
            "SELECT category_id FROM chatapp_agent_knowledge_categories WHERE agent_id = $1 ORDER BY category_id",
            &[&agent],
        )
        .await?;
    Ok(Some(rows.iter().map(|r| r.get(0)).collect()))
}

/// How many of `ids` are categories of `company`.
pub async fn count_existing_categories(tx: &TenantTx, company: Uuid, ids: &[Uuid]) -> Result<i64, DbError> {
    Ok(tx
        .client()
        .query_one(
            "SELECT count(*) FROM chatapp_knowledge_categories WHERE company_id = $1 AND id = ANY($2)",
            &[&company, &ids],
        )
        .await?
        .get(0))
}
