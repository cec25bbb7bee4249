//! Chunk rows of files and articles, the chunk references search results cite, and the
//! embedding cache keyed by content hash.

use serde::Serialize;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

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
