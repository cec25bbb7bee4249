//! Ingestion (file or article → chunks → embeddings → vectors + chunk rows) and search
//! (dense + lexical, fused). Both act for one company through its `TenantCtx`.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::chunk::{self, ChunkSettings, TextChunk};
use super::extract::{self, DocKind, Extracted};
use super::lexical::LexicalEncoder;
use super::vector::{chunk_point_id, ChunkPayload, DeleteTarget, IndexedChunk, QueryVector, Scope, ScoredChunk};
use crate::app::AppDeps;
use crate::db::{DbError, TenantTx};
use crate::repo::knowledge::{self as repo, ChunkRef, NewChunk, Source};
use crate::status::ArticleStatus;
use crate::tenant::{CompanyId, TenantCtx};

/// The message on the ingest queue: one file or one article of one company.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestJob {
    pub company_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article_id: Option<Uuid>,
    /// With `purge`: the deleted category whose vectors go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_id: Option<Uuid>,
    /// Remove what the named file / article / category / (if none) company left in storage
    /// and in the vector index; written by every deleting transaction (the outbox), so a crash
    /// after the commit cannot orphan them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub purge: bool,
    /// The outbox row the job was relayed from (the relay adds it; ingestion is idempotent by
    /// content hash, so a copy needs no special handling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
}

impl IngestJob {
    fn new(company: CompanyId) -> Self {
        Self {
            company_id: company.as_uuid(),
            file_id: None,
            article_id: None,
            category_id: None,
            purge: false,
            event_id: None,
        }
    }
    pub fn file(company: CompanyId, file: Uuid) -> Self {
        Self { file_id: Some(file), ..Self::new(company) }
    }
    pub fn article(company: CompanyId, article: Uuid) -> Self {
        Self { article_id: Some(article), ..Self::new(company) }
    }
    /// Removes what a deleted file / article / category / company left in storage and in the
    /// vector index.
    pub fn purge(company: CompanyId, target: PurgeTarget) -> Self {
        let job = Self { purge: true, ..Self::new(company) };
        match target {
            PurgeTarget::File(f) => Self { file_id: Some(f), ..job },
            PurgeTarget::Article(a) => Self { article_id: Some(a), ..job },
            PurgeTarget::Category(c) => Self { category_id: Some(c), ..job },
            PurgeTarget::Company => job,
        }
    }
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("plain struct serialises")
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum IngestOutcome {
    Indexed {
        chunks: usize,
        embedded: usize,
    },
    /// The file or article was deleted (or unpublished) before the job ran; nothing to do.
    Gone,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The content itself cannot be ingested (unsupported, corrupt, empty, missing upload):
    /// retrying will not help, so the job is dead-lettered at once.
    #[error("{0}")]
    Permanent(String),
    /// Infrastructure trouble (database, storage, embedding provider, index): retry.
    #[error("ingestion failed")]
    Transient(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<DbError> for IngestError {
    fn from(e: DbError) -> Self {
        IngestError::Transient(Box::new(e))
    }
}

fn transient(e: impl std::error::Error + Send + Sync + 'static) -> IngestError {
    IngestError::Transient(Box::new(e))
}

/// Retrieval and chunking settings, from the agent's / company's `ragConfig` JSON.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RagConfig {
    /// Characters per chunk.
    pub chunk_size: usize,
    pub overlap: usize,
    pub max_results: usize,
    /// Minimum cosine similarity between query and chunk embeddings (0 = no threshold).
    pub relevance_threshold: f32,
}

impl Default for RagConfig {
    fn default() -> Self {
        Self { chunk_size: 1000, overlap: 100, max_results: 5, relevance_threshold: 0.0 }
    }
}

impl RagConfig {
    /// Reads `chunkSize`, `overlapSize`, `maxResults`, `relevanceThreshold`; absent or
    /// out-of-range values fall back to the defaults.
    pub fn from_json(v: &Value) -> Self {
        let d = Self::default();
        let num = |k: &str| v.get(k).and_then(Value::as_f64);
        Self {
            chunk_size: num("chunkSize").filter(|n| (100.0..=8000.0).contains(n)).map_or(d.chunk_size, |n| n as usize),
            overlap: num("overlapSize").filter(|n| (0.0..=4000.0).contains(n)).map_or(d.overlap, |n| n as usize),
            max_results: num("maxResults").filter(|n| (1.0..=100.0).contains(n)).map_or(d.max_results, |n| n as usize),
            relevance_threshold: num("relevanceThreshold")
                .filter(|n| (0.0..=1.0).contains(n))
                .map_or(d.relevance_threshold, |n| n as f32),
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn lexical() -> &'static LexicalEncoder {
    static ENCODER: OnceLock<LexicalEncoder> = OnceLock::new();
    ENCODER.get_or_init(LexicalEncoder::default)
}

/// Runs one ingest job. `final_attempt` says the queue will not deliver it again, so a
/// transient failure marks the file failed too.
pub async fn ingest(deps: &AppDeps, job: &IngestJob, final_attempt: bool) -> Result<IngestOutcome, IngestError> {
    let mut results = ingest_batch(deps, &[Delivery { job: job.clone(), final_attempt }]).await;
    results.pop().expect("one result per delivery")
}

/// One delivery of an ingest job, and whether the queue will deliver it again.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub job: IngestJob,
    pub final_attempt: bool,
}

/// Runs a batch of ingest jobs (one SQS batch). The files of one company share one embedding
/// call and one vector upsert (batched inference and one index flush instead of one per file);
/// every job still gets its own result, so one bad file never fails the others.
pub async fn ingest_batch(deps: &AppDeps, deliveries: &[Delivery]) -> Vec<Result<IngestOutcome, IngestError>> {
    let mut results: Vec<Option<Result<IngestOutcome, IngestError>>> = deliveries.iter().map(|_| None).collect();
    let mut prepared: Vec<(usize, PreparedFile)> = Vec::new();
    for (i, d) in deliveries.iter().enumerate() {
        let job = &d.job;
        match (job.purge, job.file_id, job.article_id) {
            (false, Some(file), None) => match prepare_file(deps, job.company_id, file, d.final_attempt).await {
                Ok(Some(p)) => prepared.push((i, p)),
                Ok(None) => results[i] = Some(Ok(IngestOutcome::Gone)),
                Err(e) => results[i] = Some(Err(record_failure(deps, job.company_id, file, e, d.final_attempt).await)),
            },
            _ => results[i] = Some(ingest_other(deps, job).await),
        }
    }
    let mut companies: Vec<Uuid> = prepared.iter().map(|(_, p)| p.company.as_uuid()).collect();
    companies.sort();
    companies.dedup();
    for company in companies {
        let group: Vec<&(usize, PreparedFile)> =
            prepared.iter().filter(|(_, p)| p.company.as_uuid() == company).collect();
        match index_files(deps, &group).await {
            Ok(embedded) => {
                for ((i, p), embedded) in group.iter().zip(embedded) {
                    let r = match finish_file(deps, p, embedded).await {
                        Ok(o) => Ok(o),
                        Err(e) => Err(record_failure(deps, company, p.file.id, e, p.final_attempt).await),
                    };
                    results[*i] = Some(r);
                }
            }
            Err(shared) => {
                let cause = crate::error::error_chain(&shared);
                for (i, p) in &group {
                    let e = IngestError::Transient(Box::new(BatchFailure(cause.clone())));
                    results[*i] = Some(Err(record_failure(deps, company, p.file.id, e, p.final_attempt).await));
                }
            }
        }
    }
    results.into_iter().map(|r| r.expect("every delivery has a result")).collect()
}

/// The cause of a failure shared by every file of a batch (embedding call, vector upsert).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BatchFailure(String);

async fn ingest_other(deps: &AppDeps, job: &IngestJob) -> Result<IngestOutcome, IngestError> {
    let ctx = crate::auth::worker_ctx(job.company_id);
    let company = ctx.require_company().map_err(|e| IngestError::Permanent(e.to_string()))?;
    if job.purge {
        let target = match (job.file_id, job.article_id, job.category_id) {
            (Some(f), _, _) => PurgeTarget::File(f),
            (None, Some(a), _) => PurgeTarget::Article(a),
            (None, None, Some(c)) => PurgeTarget::Category(c),
            (None, None, None) => PurgeTarget::Company,
        };
        purge(deps, company, target).await.map_err(IngestError::Transient)?;
        return Ok(IngestOutcome::Gone);
    }
    match (job.file_id, job.article_id) {
        (None, Some(article)) => ingest_article(deps, &ctx, article).await,
        _ => Err(IngestError::Permanent("an ingest job names exactly one of file_id and article_id".into())),
    }
}

/// A claimed, downloaded, extracted and chunked file, ready for embedding.
struct PreparedFile {
    ctx: TenantCtx,
    company: CompanyId,
    /// The row as claimed (its `chunk_count` is the previous ingestion's).
    file: repo::KnowledgeFile,
    final_attempt: bool,
    content_hash: String,
    metadata: Value,
    pieces: Vec<TextChunk>,
    /// SHA-256 of the text each piece is embedded as (the embedding-cache key).
    hashes: Vec<String>,
    embed_texts: Vec<String>,
}

/// Claims the file (processing, one more attempt), downloads, extracts and chunks it. `None`
/// when the file was deleted before the job ran.
async fn prepare_file(
    deps: &AppDeps,
    company_id: Uuid,
    file_id: Uuid,
    final_attempt: bool,
) -> Result<Option<PreparedFile>, IngestError> {
    let ctx = crate::auth::worker_ctx(company_id);
    let company = ctx.require_company().map_err(|e| IngestError::Permanent(e.to_string()))?;
    let tx = deps.db.begin(&ctx).await?;
    let claimed = async {
        let Some(file) = repo::lock_file(&tx, company_id, file_id).await? else {
            return Ok(None);
        };
        repo::mark_processing(&tx, company_id, file_id).await?;
        let rag = RagConfig::from_json(&repo::rag_config_for_category(&tx, company_id, Some(file.category_id)).await?);
        Ok::<_, DbError>(Some((file, rag)))
    }
    .await;
    let Some((file, rag)) = tx.finish(claimed).await? else {
        return Ok(None);
    };
    let key = crate::adapters::blob::ObjectKey::parse_full(&file.storage_path)
        .ok()
        .filter(|k| k.company() == company)
        .ok_or_else(|| IngestError::Permanent("the file's storage path is invalid".into()))?;
    let bytes = deps
        .blobs
        .get(&key)
        .await
        .map_err(transient)?
        .ok_or_else(|| IngestError::Permanent("the uploaded file was not found in storage".into()))?;
    let content_hash = sha256_hex(&bytes);
    let (name, mime) = (file.original_filename.clone(), file.mime_type.clone());
    // Extraction and chunking are CPU work (PDFs can take a while): off the async threads. A
    // panic in a parser arrives as a JoinError and fails this file only.
    let (doc, pieces) = tokio::task::spawn_blocking(move || {
        let doc = extract::extract(&bytes, &name, Some(&mime))?;
        let pieces = chunk::chunk(&doc, ChunkSettings::new(rag.chunk_size, rag.overlap));
        Ok::<_, extract::ExtractError>((doc, pieces))
    })
    .await
    .map_err(|e| IngestError::Permanent(format!("text extraction crashed: {e}")))?
    .map_err(|e| IngestError::Permanent(e.to_string()))?;
    if pieces.is_empty() {
        return Err(IngestError::Permanent("the file contains no text".into()));
    }
    let embed_texts: Vec<String> = pieces.iter().map(section_prefixed).collect();
    let hashes = embed_texts.iter().map(|t| chunk::content_hash(t)).collect();
    let metadata = json!({
        "kind": doc.kind,
        "word_count": doc.word_count(),
        "page_count": doc.page_count(),
        "char_count": doc.text.chars().count(),
        "chunk_size": rag.chunk_size,
        "chunk_overlap": rag.overlap,
        "embedding_model": deps.embedder.model(),
    });
    Ok(Some(PreparedFile { ctx, company, file, final_attempt, content_hash, metadata, pieces, hashes, embed_texts }))
}

/// Embeds (through the cache) and upserts the vectors of several files of one company;
/// returns how many texts were embedded for each file.
async fn index_files(deps: &AppDeps, group: &[&(usize, PreparedFile)]) -> Result<Vec<usize>, IngestError> {
    let first = &group[0].1;
    let items: Vec<(&str, &str)> = group
        .iter()
        .flat_map(|(_, p)| p.hashes.iter().map(String::as_str).zip(p.embed_texts.iter().map(String::as_str)))
        .collect();
    let (vectors, fresh) = embed_cached(deps, &first.ctx, first.company, &items).await?;
    let encoder = lexical();
    let mut points = Vec::with_capacity(items.len());
    let mut embedded = Vec::with_capacity(group.len());
    for (_, p) in group {
        embedded.push(p.hashes.iter().filter(|h| fresh.contains(h.as_str())).count());
        for ((piece, hash), text) in p.pieces.iter().zip(&p.hashes).zip(&p.embed_texts) {
            points.push(IndexedChunk {
                id: chunk_point_id(p.file.id, piece.index),
                dense: vectors[hash.as_str()].clone(),
                sparse: encoder.document(text),
                payload: ChunkPayload {
                    company_id: p.company.as_uuid(),
                    file_id: Some(p.file.id),
                    article_id: None,
                    category_id: Some(p.file.category_id),
                    chunk_index: piece.index,
                    text: piece.text.clone(),
                },
            });
        }
    }
    deps.vectors.upsert(first.company, points).await.map_err(transient)?;
    // A re-ingest that yields fewer chunks leaves no stale tail behind.
    for (_, p) in group {
        if p.file.chunk_count > p.pieces.len() as i32 {
            let target = DeleteTarget::FileFrom(p.file.id, p.pieces.len() as i32);
            deps.vectors.delete(p.company, target).await.map_err(transient)?;
        }
    }
    Ok(embedded)
}

/// Writes the chunk rows and marks the file indexed; a file deleted meanwhile gets its
/// vectors taken back instead.
async fn finish_file(deps: &AppDeps, p: &PreparedFile, embedded: usize) -> Result<IngestOutcome, IngestError> {
    let (cid, file_id) = (p.company.as_uuid(), p.file.id);
    let rows = chunk_rows(Source::File(file_id), &p.pieces, &p.hashes);
    let tx = deps.db.begin(&p.ctx).await?;
    let write = async {
        if repo::lock_file(&tx, cid, file_id).await?.is_none() {
            return Ok::<_, DbError>(false);
        }
        repo::replace_chunks(&tx, cid, Source::File(file_id), Some(p.file.category_id), &rows).await?;
        repo::mark_indexed(&tx, cid, file_id, rows.len() as i32, &p.content_hash, &p.metadata).await
    }
    .await;
    if !tx.finish(write).await? {
        deps.vectors.delete(p.company, DeleteTarget::File(file_id)).await.map_err(transient)?;
        return Ok(IngestOutcome::Gone);
    }
    Ok(IngestOutcome::Indexed { chunks: rows.len(), embedded })
}

/// Records a failed attempt on the file (failed for good if permanent or the last attempt)
/// and passes the error on.
async fn record_failure(
    deps: &AppDeps,
    company_id: Uuid,
    file_id: Uuid,
    err: IngestError,
    final_attempt: bool,
) -> IngestError {
    let (message, final_failure) = match &err {
        IngestError::Permanent(m) => (m.clone(), true),
        IngestError::Transient(e) => {
            (format!("temporary failure, will retry: {}", crate::error::error_chain(e.as_ref())), final_attempt)
        }
    };
    let ctx = crate::auth::worker_ctx(company_id);
    let recorded = async {
        let tx = deps.db.begin(&ctx).await?;
        let r = repo::mark_error(&tx, company_id, file_id, &message, final_failure).await;
        tx.finish(r).await
    }
    .await;
    if let Err(e) = recorded {
        tracing::error!(error.chain = %crate::error::error_chain(&e), %file_id, "could not record the failure");
    }
    err
}

fn chunk_rows(source: Source, pieces: &[TextChunk], hashes: &[String]) -> Vec<NewChunk> {
    pieces
        .iter()
        .zip(hashes)
        .map(|(p, hash)| NewChunk {
            id: chunk_point_id(source.id(), p.index),
            chunk_index: p.index,
            start_offset: p.start as i32,
            end_offset: p.end as i32,
            page_number: p.page,
            section_title: p.section.as_ref().map(|s| s.chars().take(255).collect()),
            content: p.text.clone(),
            content_hash: hash.clone(),
        })
        .collect()
}

async fn ingest_article(deps: &AppDeps, ctx: &TenantCtx, article_id: Uuid) -> Result<IngestOutcome, IngestError> {
    let company = ctx.require_company().map_err(|e| IngestError::Permanent(e.to_string()))?;
    let cid = company.as_uuid();
    let tx = deps.db.begin(ctx).await?;
    let article = repo::get_article(&tx, cid, article_id).await?;
    let rag = RagConfig::from_json(
        &repo::rag_config_for_category(&tx, cid, article.as_ref().and_then(|a| a.category_id)).await?,
    );
    tx.commit().await?;
    let Some(article) = article.filter(|a| a.status == ArticleStatus::Published) else {
        remove_article_chunks(deps, ctx, article_id).await?;
        return Ok(IngestOutcome::Gone);
    };
    let doc = Extracted {
        kind: DocKind::Markdown,
        text: format!("# {}\n\n{}", article.title, article.content),
        page_starts: Vec::new(),
    };
    let (chunks, embedded) =
        index_document(deps, ctx, company, Source::Article(article_id), article.category_id, &doc, rag).await?;
    let tx = deps.db.begin(ctx).await?;
    let write = async {
        repo::replace_chunks(&tx, cid, Source::Article(article_id), article.category_id, &chunks).await?;
        repo::mark_article_indexed(&tx, cid, article_id, chunks.len() as i32).await
    }
    .await;
    tx.finish(write).await?;
    Ok(IngestOutcome::Indexed { chunks: chunks.len(), embedded })
}

/// What a delete leaves outside PostgreSQL: objects in the blob store and vector points.
#[derive(Clone, Copy, Debug)]
pub enum PurgeTarget {
    File(Uuid),
    Article(Uuid),
    Category(Uuid),
    Company,
}

/// Removes the objects and vectors of a deleted file / article / category / company. Run
/// after the rows are gone (so a concurrent ingest sees the deletion and cleans up after
/// itself); idempotent.
pub async fn purge(
    deps: &AppDeps,
    company: CompanyId,
    target: PurgeTarget,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match target {
        PurgeTarget::File(id) => {
            deps.vectors.delete(company, DeleteTarget::File(id)).await?;
            deps.blobs.delete_prefix(company, &format!("{id}/")).await?;
        }
        PurgeTarget::Article(id) => deps.vectors.delete(company, DeleteTarget::Article(id)).await?,
        PurgeTarget::Category(id) => deps.vectors.delete(company, DeleteTarget::Category(id)).await?,
        PurgeTarget::Company => {
            deps.vectors.delete(company, DeleteTarget::Company).await?;
            deps.blobs.delete_prefix(company, "").await?;
        }
    }
    Ok(())
}

/// Writes the purge of `target` into the deleting transaction (the outbox): once the delete
/// commits, the ingest worker removes the objects and vectors even if this process dies next.
pub async fn queue_purge(tx: &TenantTx, company: CompanyId, target: PurgeTarget) -> Result<(), DbError> {
    crate::outbox::add(tx, crate::adapters::queue::INGEST, &IngestJob::purge(company, target).to_json()).await?;
    Ok(())
}

/// After a deleting transaction committed: [`purge`] at once, so searches stop finding the
/// content now, then relay the purge jobs [`queue_purge`] wrote. The jobs repeat the purge
/// (it is idempotent) and are what finishes it when the purge here fails; so a failure here is
/// logged, never reported to the caller, whose delete did happen.
pub async fn purge_after_commit(deps: &AppDeps, company: CompanyId, targets: &[PurgeTarget]) {
    for target in targets {
        if let Err(e) = purge(deps, company, *target).await {
            tracing::warn!(error.chain = %crate::error::error_chain(e.as_ref()), ?target, "purge failed; its queued job retries it");
        }
    }
    crate::outbox::relay_now(deps, &[crate::adapters::queue::INGEST]).await;
}

/// Unpublishing or deleting an article: its vectors and chunk rows go.
pub async fn remove_article_chunks(deps: &AppDeps, ctx: &TenantCtx, article_id: Uuid) -> Result<(), IngestError> {
    let company = ctx.require_company().map_err(|e| IngestError::Permanent(e.to_string()))?;
    deps.vectors.delete(company, DeleteTarget::Article(article_id)).await.map_err(transient)?;
    let tx = deps.db.begin(ctx).await?;
    let r = repo::replace_chunks(&tx, company.as_uuid(), Source::Article(article_id), None, &[]).await;
    tx.finish(r).await?;
    Ok(())
}

/// Chunks, embeds (skipping content already embedded for this company) and upserts the
/// vectors of one article; returns the chunk rows to write and how many texts were embedded.
async fn index_document(
    deps: &AppDeps,
    ctx: &TenantCtx,
    company: CompanyId,
    source: Source,
    category: Option<Uuid>,
    doc: &Extracted,
    rag: RagConfig,
) -> Result<(Vec<NewChunk>, usize), IngestError> {
    let pieces: Vec<TextChunk> = chunk::chunk(doc, ChunkSettings::new(rag.chunk_size, rag.overlap));
    if pieces.is_empty() {
        return Err(IngestError::Permanent("the article contains no text".into()));
    }
    let texts: Vec<String> = pieces.iter().map(section_prefixed).collect();
    let hashes: Vec<String> = texts.iter().map(|t| chunk::content_hash(t)).collect();
    let items: Vec<(&str, &str)> = hashes.iter().map(String::as_str).zip(texts.iter().map(String::as_str)).collect();
    let (vectors, fresh) = embed_cached(deps, ctx, company, &items).await?;
    let (file_id, article_id) = match source {
        Source::File(id) => (Some(id), None),
        Source::Article(id) => (None, Some(id)),
    };
    let encoder = lexical();
    let points: Vec<IndexedChunk> = pieces
        .iter()
        .zip(&hashes)
        .zip(&texts)
        .map(|((p, hash), text)| IndexedChunk {
            id: chunk_point_id(source.id(), p.index),
            dense: vectors[hash.as_str()].clone(),
            sparse: encoder.document(text),
            payload: ChunkPayload {
                company_id: company.as_uuid(),
                file_id,
                article_id,
                category_id: category,
                chunk_index: p.index,
                text: p.text.clone(),
            },
        })
        .collect();
    // Replace: the article may have shrunk since it was last indexed.
    deps.vectors.delete(company, DeleteTarget::Article(source.id())).await.map_err(transient)?;
    deps.vectors.upsert(company, points).await.map_err(transient)?;
    Ok((chunk_rows(source, &pieces, &hashes), fresh.len()))
}

/// The text a chunk is embedded and indexed as: its section title gives context the chunk
/// itself may lack.
fn section_prefixed(p: &TextChunk) -> String {
    match &p.section {
        Some(s) if !p.text.starts_with('#') && !p.text.contains(s.as_str()) => format!("{s}\n{}", p.text),
        _ => p.text.clone(),
    }
}

/// Vectors for `(hash, text)` items: from the company's embedding cache where present, the
/// rest embedded in one call (the embedder batches) and added to the cache. Returns the vector
/// per hash and the set of hashes embedded now.
async fn embed_cached(
    deps: &AppDeps,
    ctx: &TenantCtx,
    company: CompanyId,
    items: &[(&str, &str)],
) -> Result<(HashMap<String, Vec<f32>>, HashSet<String>), IngestError> {
    let model = deps.embedder.model().to_string();
    let mut hashes: Vec<String> = items.iter().map(|(h, _)| h.to_string()).collect();
    hashes.sort();
    hashes.dedup();
    let tx = deps.db.begin(ctx).await?;
    let cached = repo::cached_embeddings(&tx, company.as_uuid(), &model, &hashes).await;
    let mut known: HashMap<String, Vec<f32>> = tx.finish(cached).await?.into_iter().collect();
    let mut missing: Vec<(String, String)> = Vec::new();
    let mut fresh = HashSet::new();
    for (h, text) in items {
        if !known.contains_key(*h) && fresh.insert(h.to_string()) {
            missing.push((h.to_string(), text.to_string()));
        }
    }
    if !missing.is_empty() {
        let texts: Vec<String> = missing.iter().map(|(_, t)| t.clone()).collect();
        let vectors = deps.embedder.embed(&texts).await.map_err(transient)?;
        let new: Vec<(String, Vec<f32>)> = missing.into_iter().map(|(h, _)| h).zip(vectors).collect();
        let tx = deps.db.begin(ctx).await?;
        let r = repo::store_embeddings(&tx, company.as_uuid(), &model, &new).await;
        tx.finish(r).await?;
        known.extend(new);
    }
    Ok((known, fresh))
}

// ---------------------------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------------------------

/// `hybrid` (dense and lexical, fused; the default), `dense` or `lexical`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    Dense,
    Lexical,
    #[default]
    Hybrid,
}

#[derive(Clone, Debug)]
pub struct SearchRequest {
    pub query: String,
    pub mode: SearchMode,
    pub max_results: usize,
    pub relevance_threshold: f32,
    pub scope: Scope,
}

/// A ranked chunk with its scores and source.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    /// Fused rank score (reciprocal rank fusion) for hybrid, the raw score otherwise.
    pub score: f32,
    /// Cosine similarity of query and chunk, when the dense search found the chunk.
    pub dense_score: Option<f32>,
    /// BM25 score, when the lexical search found the chunk.
    pub lexical_score: Option<f32>,
    #[serde(flatten)]
    pub chunk: ChunkRef,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<DbError> for SearchError {
    fn from(e: DbError) -> Self {
        SearchError::Backend(Box::new(e))
    }
}

/// Reciprocal-rank-fusion constant (Cormack et al.); 60 is the customary value.
const RRF_K: f32 = 60.0;

/// Searches the company's knowledge (embedding the query when the mode needs it).
pub async fn search(deps: &AppDeps, ctx: &TenantCtx, req: &SearchRequest) -> Result<Vec<SearchHit>, SearchError> {
    let dense = if req.mode == SearchMode::Lexical {
        None
    } else {
        let mut v = deps
            .embedder
            .embed(std::slice::from_ref(&req.query))
            .await
            .map_err(|e| SearchError::Backend(Box::new(e)))?;
        v.pop()
    };
    search_with_embedding(deps, ctx, req, dense.as_deref()).await
}

/// Searches with a query embedding computed by the caller (the chat turn embeds once).
pub async fn search_with_embedding(
    deps: &AppDeps,
    ctx: &TenantCtx,
    req: &SearchRequest,
    dense: Option<&[f32]>,
) -> Result<Vec<SearchHit>, SearchError> {
    let company = ctx.require_company().map_err(|e| SearchError::Backend(Box::new(e)))?;
    let want = req.max_results.clamp(1, 1000);
    let candidates = (want * 2).max(40);
    let sparse = lexical().query(&req.query);
    let backend = |e: super::vector::VectorError| SearchError::Backend(Box::new(e));
    let dense_hits = async {
        match (req.mode, dense) {
            (SearchMode::Lexical, _) | (_, None) => Ok(Vec::new()),
            (_, Some(v)) => deps.vectors.search(company, &req.scope, QueryVector::Dense(v), candidates).await,
        }
    };
    let lexical_hits = async {
        if req.mode == SearchMode::Dense || sparse.indices.is_empty() {
            Ok(Vec::new())
        } else {
            deps.vectors.search(company, &req.scope, QueryVector::Sparse(&sparse), candidates).await
        }
    };
    let (dense_hits, lexical_hits) = tokio::join!(dense_hits, lexical_hits);
    let fused = fuse(req.mode, &dense_hits.map_err(backend)?, &lexical_hits.map_err(backend)?);
    let kept: Vec<Fused> = fused
        .into_iter()
        // Lexical-only hits share query terms with the chunk, which is evidence enough.
        .filter(|f| f.dense.is_none_or(|d| d >= req.relevance_threshold))
        .take(want)
        .collect();
    if kept.is_empty() {
        return Ok(Vec::new());
    }
    // Chunk rows through RLS: a point whose row is gone (or not this tenant's) is dropped.
    let ids: Vec<Uuid> = kept.iter().map(|f| f.id).collect();
    let tx = deps.db.begin(ctx).await?;
    tx.prefer_generic_plans();
    repo::prepare_chunk_refs(&tx).await?;
    // BEGIN, the lookup and COMMIT in one round trip.
    let refs = tx.commit_alongside(repo::chunk_refs(&tx, company.as_uuid(), &ids)).await?;
    let mut refs: HashMap<Uuid, ChunkRef> = refs.into_iter().map(|r| (r.chunk_id, r)).collect();
    Ok(kept
        .into_iter()
        .filter_map(|f| {
            refs.remove(&f.id).map(|chunk| SearchHit {
                score: f.score,
                dense_score: f.dense,
                lexical_score: f.lexical,
                chunk,
            })
        })
        .collect())
}

struct Fused {
    id: Uuid,
    score: f32,
    dense: Option<f32>,
    lexical: Option<f32>,
}

fn fuse(mode: SearchMode, dense: &[ScoredChunk], lexical: &[ScoredChunk]) -> Vec<Fused> {
    let mut by_id: HashMap<Uuid, Fused> = HashMap::new();
    let mut order: Vec<Uuid> = Vec::new();
    for (list, is_dense) in [(dense, true), (lexical, false)] {
        for (rank, hit) in list.iter().enumerate() {
            let entry = by_id.entry(hit.id).or_insert_with(|| {
                order.push(hit.id);
                Fused { id: hit.id, score: 0.0, dense: None, lexical: None }
            });
            if is_dense {
                entry.dense = Some(hit.score);
            } else {
                entry.lexical = Some(hit.score);
            }
            entry.score += match mode {
                SearchMode::Hybrid => 1.0 / (RRF_K + rank as f32 + 1.0),
                _ => hit.score,
            };
        }
    }
    let mut out: Vec<Fused> = order.into_iter().filter_map(|id| by_id.remove(&id)).collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: u128, score: f32) -> ScoredChunk {
        ScoredChunk { id: Uuid::from_u128(id), score }
    }

    #[test]
    fn rrf_rewards_agreement_between_lists() {
        let dense = [hit(1, 0.9), hit(2, 0.8), hit(3, 0.7)];
        let lexical = [hit(3, 12.0), hit(4, 9.0)];
        let fused = fuse(SearchMode::Hybrid, &dense, &lexical);
        // 3 is in both lists, so it beats 1 (first in one list only).
        assert_eq!(fused[0].id, Uuid::from_u128(3));
        assert_eq!(fused[0].dense, Some(0.7));
        assert_eq!(fused[0].lexical, Some(12.0));
        assert_eq!(fused.len(), 4);
    }

    #[test]
    fn rag_config_falls_back_per_field() {
        let c = RagConfig::from_json(&json!({"chunkSize": 500, "overlapSize": 50, "maxResults": 0}));
        assert_eq!((c.chunk_size, c.overlap, c.max_results), (500, 50, RagConfig::default().max_results));
    }
}
