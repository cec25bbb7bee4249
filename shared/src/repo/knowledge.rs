//! Knowledge categories, files, articles and chunk rows.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::web::Page;

// ---------------------------------------------------------------------------------------------
// Categories
// ---------------------------------------------------------------------------------------------

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
            "SELECT category_id FROM chatapp_agent_knowledge_categories WHERE agent_id = $1 ORDER BY created_at, category_id",
            &[&agent],
        )
        .await?;
    Ok(Some(rows.iter().map(|r| r.get(0)).collect()))
}

/// Replaces the agent's category set; the caller has checked that all belong to `company`.
pub async fn set_agent_categories(tx: &TenantTx, agent: Uuid, categories: &[Uuid]) -> Result<(), DbError> {
    tx.client()
        .execute(
            "DELETE FROM chatapp_agent_knowledge_categories WHERE agent_id = $1 AND NOT (category_id = ANY($2))",
            &[&agent, &categories],
        )
        .await?;
    tx.client()
        .execute(
            "INSERT INTO chatapp_agent_knowledge_categories (agent_id, category_id)
             SELECT $1, unnest($2::uuid[]) ON CONFLICT (agent_id, category_id) DO NOTHING",
            &[&agent, &categories],
        )
        .await?;
    Ok(())
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

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/// A knowledge file and where its ingestion stands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KnowledgeFile {
    pub id: Uuid,
    pub company_id: Uuid,
    pub category_id: Uuid,
    pub filename: String,
    pub original_filename: String,
    pub mime_type: String,
    pub size: i32,
    pub storage_path: String,
    /// `pending`, `queued`, `processing`, `indexed` or `failed`.
    pub status: String,
    pub processing_error: Option<String>,
    pub chunk_count: i32,
    /// What ingestion recorded: kind, word/page/char counts, chunking settings, embedding model.
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub content_hash: Option<String>,
    pub ingest_attempts: i32,
    pub uploaded_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub indexed_at: Option<DateTime<Utc>>,
}

const FILE_COLUMNS: &str = "id, company_id, category_id, filename, original_filename, mime_type, size, storage_path, \
    status::text, processing_error, COALESCE(chunk_count, 0), COALESCE(metadata, '{}'::jsonb), content_hash, \
    ingest_attempts, uploaded_by, created_at, updated_at, indexed_at";

fn file(r: &Row) -> KnowledgeFile {
    KnowledgeFile {
        id: r.get(0),
        company_id: r.get(1),
        category_id: r.get(2),
        filename: r.get(3),
        original_filename: r.get(4),
        mime_type: r.get(5),
        size: r.get(6),
        storage_path: r.get(7),
        status: r.get(8),
        processing_error: r.get(9),
        chunk_count: r.get(10),
        metadata: r.get(11),
        content_hash: r.get(12),
        ingest_attempts: r.get(13),
        uploaded_by: r.get(14),
        created_at: r.get(15),
        updated_at: r.get(16),
        indexed_at: r.get(17),
    }
}

pub struct NewFile<'a> {
    pub id: Uuid,
    pub company_id: Uuid,
    pub category_id: Uuid,
    pub filename: &'a str,
    pub original_filename: &'a str,
    pub mime_type: &'a str,
    pub size: i32,
    pub storage_path: &'a str,
    pub uploaded_by: Option<Uuid>,
}

pub async fn create_file(tx: &TenantTx, f: &NewFile<'_>) -> Result<KnowledgeFile, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "INSERT INTO chatapp_knowledge_files
                    (id, company_id, category_id, filename, original_filename, mime_type, size, storage_path, uploaded_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {FILE_COLUMNS}"
            ),
            &[
                &f.id,
                &f.company_id,
                &f.category_id,
                &f.filename,
                &f.original_filename,
                &f.mime_type,
                &f.size,
                &f.storage_path,
                &f.uploaded_by,
            ],
        )
        .await?;
    Ok(file(&row))
}

pub async fn get_file(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<KnowledgeFile>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!("SELECT {FILE_COLUMNS} FROM chatapp_knowledge_files WHERE company_id = $1 AND id = $2"),
            &[&company, &id],
        )
        .await?;
    Ok(row.as_ref().map(file))
}

/// Locks the row for the rest of the transaction (the worker's claim on the file).
pub async fn lock_file(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<KnowledgeFile>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!("SELECT {FILE_COLUMNS} FROM chatapp_knowledge_files WHERE company_id = $1 AND id = $2 FOR UPDATE"),
            &[&company, &id],
        )
        .await?;
    Ok(row.as_ref().map(file))
}

pub struct FileFilter {
    pub status: Option<String>,
    pub category_id: Option<Uuid>,
}

pub async fn list_files(
    tx: &TenantTx,
    company: Uuid,
    filter: &FileFilter,
    page: Page,
) -> Result<(Vec<KnowledgeFile>, i64), DbError> {
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {FILE_COLUMNS}, count(*) OVER () FROM chatapp_knowledge_files
                 WHERE company_id = $1 AND ($2::text IS NULL OR status::text = $2)
                   AND ($3::uuid IS NULL OR category_id = $3)
                 ORDER BY created_at DESC, id LIMIT $4 OFFSET $5"
            ),
            &[&company, &filter.status, &filter.category_id, &page.limit, &page.offset],
        )
        .await?;
    let total = rows.first().map(|r| r.get::<_, i64>(18)).unwrap_or(0);
    Ok((rows.iter().map(file).collect(), total))
}

pub async fn files_in_category(tx: &TenantTx, company: Uuid, category: Uuid) -> Result<Vec<KnowledgeFile>, DbError> {
    let rows = tx
        .client()
        .query(
            &format!("SELECT {FILE_COLUMNS} FROM chatapp_knowledge_files WHERE company_id = $1 AND category_id = $2"),
            &[&company, &category],
        )
        .await?;
    Ok(rows.iter().map(file).collect())
}

/// Bytes stored by the company (declared sizes of every file).
pub async fn storage_used(tx: &TenantTx, company: Uuid) -> Result<i64, DbError> {
    Ok(tx
        .client()
        .query_one(
            "SELECT COALESCE(sum(size), 0)::bigint FROM chatapp_knowledge_files WHERE company_id = $1",
            &[&company],
        )
        .await?
        .get(0))
}

/// Moves a file to `queued` (uploaded, job to be sent) from one of `from`; returns the row
/// if it moved.
pub async fn queue_file(
    tx: &TenantTx,
    company: Uuid,
    id: Uuid,
    from: &[&str],
    size: Option<i32>,
) -> Result<Option<KnowledgeFile>, DbError> {
    let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_knowledge_files
                 SET status = 'queued', processing_error = NULL, size = COALESCE($4, size), updated_at = now()
                 WHERE company_id = $1 AND id = $2
                   AND (status::text = ANY($3)
                        -- A file whose job died with its worker (crash, timeout) may be re-queued
                        -- once it has not moved for longer than any delivery can take.
                        OR ('stale' = ANY($3) AND status IN ('queued', 'processing')
                            AND updated_at < now() - interval '15 minutes'))
                 RETURNING {FILE_COLUMNS}"
            ),
            &[&company, &id, &from, &size],
        )
        .await?;
    Ok(row.as_ref().map(file))
}

pub async fn mark_processing(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<(), DbError> {
    tx.client()
        .execute(
            "UPDATE chatapp_knowledge_files
             SET status = 'processing', ingest_attempts = ingest_attempts + 1, updated_at = now()
             WHERE company_id = $1 AND id = $2",
            &[&company, &id],
        )
        .await?;
    Ok(())
}

/// Records a failed attempt; `final_failure` moves the file to `failed`, else it stays queued
/// for the redelivery.
pub async fn mark_error(
    tx: &TenantTx,
    company: Uuid,
    id: Uuid,
    error: &str,
    final_failure: bool,
) -> Result<(), DbError> {
    tx.client()
        .execute(
            "UPDATE chatapp_knowledge_files
             SET status = CASE WHEN $4 THEN 'failed'::file_status ELSE 'queued'::file_status END,
                 processing_error = $3, updated_at = now()
             WHERE company_id = $1 AND id = $2",
            &[&company, &id, &error, &final_failure],
        )
        .await?;
    Ok(())
}

pub async fn mark_indexed(
    tx: &TenantTx,
    company: Uuid,
    id: Uuid,
    chunk_count: i32,
    content_hash: &str,
    metadata: &Value,
) -> Result<bool, DbError> {
    Ok(tx
        .client()
        .execute(
            "UPDATE chatapp_knowledge_files
             SET status = 'indexed', processing_error = NULL, chunk_count = $3, content_hash = $4,
                 metadata = COALESCE(metadata, '{}'::jsonb) || $5, indexed_at = now(), updated_at = now()
             WHERE company_id = $1 AND id = $2",
            &[&company, &id, &chunk_count, &content_hash, metadata],
        )
        .await?
        == 1)
}

pub async fn delete_file(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<bool, DbError> {
    Ok(tx
        .client()
        .execute("DELETE FROM chatapp_knowledge_files WHERE company_id = $1 AND id = $2", &[&company, &id])
        .await?
        == 1)
}

// ---------------------------------------------------------------------------------------------
// Articles (text knowledge without a file)
// ---------------------------------------------------------------------------------------------

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
    /// `draft` or `published`.
    pub status: String,
    pub chunk_count: i32,
    pub published_at: Option<DateTime<Utc>>,
    pub indexed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ARTICLE_COLUMNS: &str = "id, company_id, category_id, title, content, tags, status::text, chunk_count, \
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
    published: bool,
) -> Result<Option<Article>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_knowledge_articles
                 SET status = CASE WHEN $3 THEN 'published'::article_status ELSE 'draft'::article_status END,
                     published_at = CASE WHEN $3 THEN COALESCE(published_at, now()) ELSE NULL END,
                     updated_at = now()
                 WHERE company_id = $1 AND id = $2 RETURNING {ARTICLE_COLUMNS}"
            ),
            &[&company, &id, &published],
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

// ---------------------------------------------------------------------------------------------
// Chunks
// ---------------------------------------------------------------------------------------------

/// The source a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    File(Uuid),
    Article(Uuid),
}

impl Source {
    pub fn id(&self) -> Uuid {
        match self {
            Source::File(id) | Source::Article(id) => *id,
        }
    }
}

pub struct NewChunk {
    pub id: Uuid,
    pub chunk_index: i32,
    pub content: String,
    pub start_offset: i32,
    pub end_offset: i32,
    pub page_number: Option<i32>,
    pub section_title: Option<String>,
    pub content_hash: String,
}

/// Replaces every chunk row of `source` with `chunks`, in one statement per step.
pub async fn replace_chunks(
    tx: &TenantTx,
    company: Uuid,
    source: Source,
    category: Option<Uuid>,
    chunks: &[NewChunk],
) -> Result<(), DbError> {
    let (file_id, article_id) = match source {
        Source::File(id) => (Some(id), None),
        Source::Article(id) => (None, Some(id)),
    };
    tx.client()
        .execute(
            "DELETE FROM chatapp_knowledge_chunks
             WHERE company_id = $1 AND (file_id = $2 OR article_id = $3)",
            &[&company, &file_id, &article_id],
        )
        .await?;
    if chunks.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = chunks.iter().map(|c| c.id).collect();
    let idx: Vec<i32> = chunks.iter().map(|c| c.chunk_index).collect();
    let content: Vec<&str> = chunks.iter().map(|c| c.content.as_str()).collect();
    let start: Vec<i32> = chunks.iter().map(|c| c.start_offset).collect();
    let end: Vec<i32> = chunks.iter().map(|c| c.end_offset).collect();
    let page: Vec<Option<i32>> = chunks.iter().map(|c| c.page_number).collect();
    let section: Vec<Option<&str>> = chunks.iter().map(|c| c.section_title.as_deref()).collect();
    let hash: Vec<&str> = chunks.iter().map(|c| c.content_hash.as_str()).collect();
    let qid: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    tx.client()
        .execute(
            "INSERT INTO chatapp_knowledge_chunks
                (id, file_id, article_id, company_id, category_id, chunk_index, content, start_offset, end_offset,
                 page_number, section_title, content_hash, qdrant_id)
             SELECT u.id, $2, $3, $1, $4, u.idx, u.content, u.s, u.e, u.page, u.section, u.hash, u.qid
             FROM unnest($5::uuid[], $6::int[], $7::text[], $8::int[], $9::int[], $10::int[], $11::text[],
                         $12::text[], $13::text[])
                  AS u(id, idx, content, s, e, page, section, hash, qid)",
            &[
                &company,
                &file_id,
                &article_id,
                &category,
                &ids,
                &idx,
                &content,
                &start,
                &end,
                &page,
                &section,
                &hash,
                &qid,
            ],
        )
        .await?;
    Ok(())
}

pub async fn count_chunks(tx: &TenantTx, company: Uuid) -> Result<i64, DbError> {
    Ok(tx
        .client()
        .query_one("SELECT count(*) FROM chatapp_knowledge_chunks WHERE company_id = $1", &[&company])
        .await?
        .get(0))
}

/// A chunk with its source's name, for search results and citations.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChunkRef {
    pub chunk_id: Uuid,
    pub file_id: Option<Uuid>,
    pub article_id: Option<Uuid>,
    pub category_id: Option<Uuid>,
    pub source_name: String,
    pub chunk_index: i32,
    pub content: String,
    pub start_offset: Option<i32>,
    pub end_offset: Option<i32>,
    pub page_number: Option<i32>,
    pub section_title: Option<String>,
}

const CHUNK_REFS: &str =
    "SELECT k.id, k.file_id, k.article_id, k.category_id, COALESCE(f.original_filename, a.title, ''),
                    k.chunk_index, k.content, k.start_offset, k.end_offset, k.page_number, k.section_title
             FROM chatapp_knowledge_chunks k
             LEFT JOIN chatapp_knowledge_files f ON f.id = k.file_id
             LEFT JOIN chatapp_knowledge_articles a ON a.id = k.article_id
             WHERE k.id = ANY($1) AND (k.company_id = $2 OR k.company_id IS NULL)";

/// Prepares [`chunk_refs`]'s statement, so it can be committed alongside (one round trip).
pub async fn prepare_chunk_refs(tx: &TenantTx) -> Result<(), DbError> {
    tx.prepare(&[CHUNK_REFS]).await
}

/// The chunk rows among `ids` visible to this transaction (its company's and global ones).
pub async fn chunk_refs(tx: &TenantTx, company: Uuid, ids: &[Uuid]) -> Result<Vec<ChunkRef>, DbError> {
    let rows = tx.client().query(CHUNK_REFS, &[&ids, &company]).await?;
    Ok(rows
        .iter()
        .map(|r| ChunkRef {
            chunk_id: r.get(0),
            file_id: r.get(1),
            article_id: r.get(2),
            category_id: r.get(3),
            source_name: r.get(4),
            chunk_index: r.get(5),
            content: r.get(6),
            start_offset: r.get(7),
            end_offset: r.get(8),
            page_number: r.get(9),
            section_title: r.get(10),
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Embedding cache
// ---------------------------------------------------------------------------------------------

pub async fn cached_embeddings(
    tx: &TenantTx,
    company: Uuid,
    model: &str,
    hashes: &[String],
) -> Result<Vec<(String, Vec<f32>)>, DbError> {
    let rows = tx
        .client()
        .query(
            "SELECT content_hash, embedding FROM chatapp_embedding_cache
             WHERE company_id = $1 AND model = $2 AND content_hash = ANY($3)",
            &[&company, &model, &hashes],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub async fn store_embeddings(
    tx: &TenantTx,
    company: Uuid,
    model: &str,
    entries: &[(String, Vec<f32>)],
) -> Result<(), DbError> {
    if entries.is_empty() {
        return Ok(());
    }
    // unnest() flattens 2-D arrays, so embeddings travel as one flat array plus the dimension.
    let dims = entries[0].1.len() as i64;
    let hashes: Vec<&str> = entries.iter().map(|(h, _)| h.as_str()).collect();
    let flat: Vec<f32> = entries.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    tx.client()
        .execute(
            "INSERT INTO chatapp_embedding_cache (company_id, model, content_hash, embedding)
             SELECT $1, $2, h.hash, ($3::real[])[((h.n - 1) * $5 + 1):(h.n * $5)]
             FROM unnest($4::text[]) WITH ORDINALITY AS h(hash, n)
             ON CONFLICT DO NOTHING",
            &[&company, &model, &flat, &hashes, &dims],
        )
        .await?;
    Ok(())
}

/// The agent whose RAG config governs chunking of files in `category` (first assigned), if any.
pub async fn rag_config_for_category(tx: &TenantTx, company: Uuid, category: Option<Uuid>) -> Result<Value, DbError> {
    let row = tx
        .client()
        .query_one(
            "SELECT COALESCE(c.settings -> 'ragConfig', '{}'::jsonb)
                    || COALESCE((SELECT a.rag_config FROM chatapp_agent_knowledge_categories akc
                                 JOIN chatapp_agents a ON a.id = akc.agent_id
                                 WHERE akc.category_id = $2 ORDER BY akc.created_at LIMIT 1), '{}'::jsonb)
             FROM chatapp_companies c WHERE c.id = $1",
            &[&company, &category],
        )
        .await?;
    Ok(row.get(0))
}

/// An agent's effective RAG config: the company's `settings.ragConfig` overlaid with the agent's.
pub async fn agent_rag_config(tx: &TenantTx, company: Uuid, agent: Uuid) -> Result<Value, DbError> {
    let row = tx
        .client()
        .query_one(
            "SELECT COALESCE(c.settings -> 'ragConfig', '{}'::jsonb)
                    || COALESCE((SELECT a.rag_config FROM chatapp_agents a WHERE a.company_id = $1 AND a.id = $2),
                                '{}'::jsonb)
             FROM chatapp_companies c WHERE c.id = $1",
            &[&company, &agent],
        )
        .await?;
    Ok(row.get(0))
}
