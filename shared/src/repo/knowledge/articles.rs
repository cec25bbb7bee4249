//! Knowledge articles: text knowledge written in the dashboard, without a file.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::status::ArticleStatus;
use crate::web::Page;

/// A knowledge article: text written in the dashboard.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Article {
    pub id: Uuid,
    pub company_id: Option<Uuid>,
    pub category_id: Option<Uuid>,
    pub title: String,
    pub content: String,
    #[schema(value_type = Vec<String>)]
    pub tags: Value,
    pub status: ArticleStatus,
    pub chunk_count: i32,
    pub published_at: Option<DateTime<Utc>>,
    pub indexed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ARTICLE_COLUMNS: &str = "id, company_id, category_id, title, content, tags, status, chunk_count, \
    published_at, indexed_at, created_at, updated_at";

fn article(r: &Row) -> Article {
    Article {
        id: r.get(0),
        company_id: r.get(1),
        category_id: r.get(2),
        title: r.get(3),
        content: r.get(4),
        tags: r.get(5),
        status: r.get(6),
        chunk_count: r.get(7),
        published_at: r.get(8),
        indexed_at: r.get(9),
        created_at: r.get(10),
        updated_at: r.get(11),
    }
}

pub struct ArticleFields<'a> {
    pub category_id: Option<Uuid>,
    pub title: &'a str,
    pub content: &'a str,
    pub tags: &'a Value,
}

pub async fn create_article(
    tx: &TenantTx,
    company: Uuid,
    a: &ArticleFields<'_>,
    user: Option<Uuid>,
) -> Result<Article, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "INSERT INTO chatapp_knowledge_articles (company_id, category_id, title, content, tags, created_by, updated_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {ARTICLE_COLUMNS}"
            ),
            &[&company, &a.category_id, &a.title, &a.content, a.tags, &user],
        )
        .await?;
    Ok(article(&row))
}

pub async fn update_article(
    tx: &TenantTx,
    company: Uuid,
    id: Uuid,
    a: &ArticleFields<'_>,
    user: Option<Uuid>,
) -> Result<Option<Article>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_knowledge_articles
                 SET category_id = $3, title = $4, content = $5, tags = $6, updated_by = $7, updated_at = now()
                 WHERE company_id = $1 AND id = $2 RETURNING {ARTICLE_COLUMNS}"
            ),
            &[&company, &id, &a.category_id, &a.title, &a.content, a.tags, &user],
        )
        .await?;
    Ok(row.as_ref().map(article))
}

pub async fn get_article(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<Article>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!("SELECT {ARTICLE_COLUMNS} FROM chatapp_knowledge_articles WHERE company_id = $1 AND id = $2"),
            &[&company, &id],
        )
        .await?;
    Ok(row.as_ref().map(article))
}

pub async fn list_articles(tx: &TenantTx, company: Uuid, page: Page) -> Result<(Vec<Article>, i64), DbError> {
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {ARTICLE_COLUMNS}, count(*) OVER () FROM chatapp_knowledge_articles WHERE company_id = $1
                 ORDER BY updated_at DESC, id LIMIT $2 OFFSET $3"
            ),
            &[&company, &page.limit, &page.offset],
        )
        .await?;
    let total = rows.first().map(|r| r.get::<_, i64>(12)).unwrap_or(0);
    Ok((rows.iter().map(article).collect(), total))
}

pub async fn articles_in_category(tx: &TenantTx, company: Uuid, category: Uuid) -> Result<Vec<Uuid>, DbError> {
    let rows = tx
        .client()
        .query(
            "SELECT id FROM chatapp_knowledge_articles WHERE company_id = $1 AND category_id = $2",
            &[&company, &category],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub async fn set_article_status(
    tx: &TenantTx,
    company: Uuid,
    id: Uuid,
    status: ArticleStatus,
) -> Result<Option<Article>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_knowledge_articles
                 SET status = $3::article_status,
                     published_at = CASE WHEN $3 = 'published'::article_status
                                         THEN COALESCE(published_at, now()) ELSE NULL END,
                     updated_at = now()
                 WHERE company_id = $1 AND id = $2 RETURNING {ARTICLE_COLUMNS}"
            ),
            &[&company, &id, &status],
        )
        .await?;
    Ok(row.as_ref().map(article))
}

pub async fn mark_article_indexed(tx: &TenantTx, company: Uuid, id: Uuid, chunk_count: i32) -> Result<bool, DbError> {
    Ok(tx
        .client()
        .execute(
            "UPDATE chatapp_knowledge_articles SET chunk_count = $3, indexed_at = now() WHERE company_id = $1 AND id = $2",
            &[&company, &id, &chunk_count],
        )
        .await?
        == 1)
}

pub async fn delete_article(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<bool, DbError> {
    Ok(tx
        .client()
        .execute("DELETE FROM chatapp_knowledge_articles WHERE company_id = $1 AND id = $2", &[&company, &id])
        .await?
        == 1)
}
