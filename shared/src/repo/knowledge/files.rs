//! Knowledge files and their ingestion status (pending, queued, processing, indexed, failed).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::status::FileStatus;
use crate::web::Page;

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
    pub status: FileStatus,
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
    status, processing_error, COALESCE(chunk_count, 0), COALESCE(metadata, '{}'::jsonb), content_hash, \
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
    pub status: Option<FileStatus>,
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
                 WHERE company_id = $1 AND ($2::file_status IS NULL OR status = $2)
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

/// Moves a file to `queued` (uploaded, job to be sent) from one of `from`, or, with `stale`,
/// from a stale `queued` or `processing`; returns the row if it moved.
pub async fn queue_file(
    tx: &TenantTx,
    company: Uuid,
    id: Uuid,
    from: &[FileStatus],
    stale: bool,
    size: Option<i32>,
) -> Result<Option<KnowledgeFile>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_knowledge_files
                 SET status = 'queued', processing_error = NULL, size = COALESCE($4, size), updated_at = now()
                 WHERE company_id = $1 AND id = $2
                   AND (status = ANY($3)
                        -- A file whose job died with its worker (crash, timeout) may be re-queued
                        -- once it has not moved for longer than any delivery can take.
                        OR ($5 AND status IN ('queued', 'processing')
                            AND updated_at < now() - interval '15 minutes'))
                 RETURNING {FILE_COLUMNS}"
            ),
            &[&company, &id, &from, &size, &stale],
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
