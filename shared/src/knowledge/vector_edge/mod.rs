//! The embedded vector index: one qdrant-edge shard in a local directory, in-process.
//!
//! qdrant-edge is synchronous, so every call runs on tokio's blocking pool with the shard behind
//! an `Arc<RwLock<_>>`: searches and counts share the lock, writes take it exclusively. The
//! exclusivity matters beyond consistency: `EdgeShard::flush` uses `try_lock` on the WAL and
//! `try_read` on the segments and panics when they are busy, so no read may run next to it.
//!
//! Durability: `EdgeShard::load` does not replay the WAL, so a write is only durable once the
//! segments are flushed. Every upsert and delete therefore flushes before it returns. `flush`
//! panics on I/O errors; panics inside a shard call are caught and reported as
//! `VectorError::Backend` (with `panic = "abort"` they still abort the process).

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::{
    Condition, CountRequest, CreateIndex, Distance, EdgeConfig, EdgeShard, EdgeSparseVectorParams, EdgeVectorParams,
    FieldCondition, FieldIndexOperations, Filter, HasIdCondition, JsonPath, Match, Modifier, NamedQuery, Payload,
    PayloadFieldSchema, PayloadSchemaType, PointId, PointInsertOperations, PointOperations, PointStructPersisted,
    QuantizationConfig, QueryEnum, QueryRequest, Range, ScoredPoint, ScoringQuery, UpdateOperation, VectorInternal,
    VectorStructInternal, VectorStructPersisted, WithPayloadInterface, WithVector,
};
use uuid::Uuid;

use crate::knowledge::vector::{
    DeleteTarget, IndexedChunk, QueryVector, Scope, ScoredChunk, SparseVector, VectorError, VectorIndex,
    SCALAR_QUANTILE,
};
use crate::tenant::CompanyId;

/// Named dense vector (cosine).
pub const DENSE: &str = "dense";
/// Named sparse vector (BM25 term weights, IDF applied at query time).
pub const LEXICAL: &str = "lexical";

const COMPANY_ID: &str = "company_id";
const FILE_ID: &str = "file_id";
const ARTICLE_ID: &str = "article_id";
const CATEGORY_ID: &str = "category_id";
const CHUNK_INDEX: &str = "chunk_index";

/// qdrant-edge's config file inside the shard directory.
const EDGE_CONFIG_FILE: &str = "edge_config.json";
const SEGMENTS_DIR: &str = "segments";

/// Points written since the last optimisation after which the shard is optimised (segments
/// merged, HNSW built for segments past qdrant's indexing threshold). Below this, exact search
/// over the tenant's filtered points is fast (3.6 ms p50 hybrid at 6.5k chunks, see README), and
/// building a graph would cost more than it saves.
const OPTIMIZE_EVERY_POINTS: usize = 20_000;

pub struct EdgeVectorIndex {
    shard: Arc<RwLock<EdgeShard>>,
    dims: usize,
    written_since_optimize: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for EdgeVectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeVectorIndex").field("dims", &self.dims).finish_non_exhaustive()
    }
}

impl EdgeVectorIndex {
    /// Opens the shard in `dir`, creating it (dense `dims`-dimensional cosine vector plus the
    /// IDF-weighted sparse vector) when the directory holds none. An existing shard must have
    /// been created with the same `dims`. Blocking: call it at startup, not inside a hot path.
    pub fn open(dir: &Path, dims: usize) -> Result<Self, VectorError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| VectorError::Backend(format!("cannot create {}: {e}", dir.display())))?;
        let existing = dir.join(EDGE_CONFIG_FILE).exists() || has_segments(dir);
        let shard = guarded(|| {
            if existing {
                EdgeShard::load(dir, None).map_err(backend)
            } else {
                EdgeShard::new(dir, edge_config(dims)).map_err(backend)
            }
        })?;

        let (stored_dims, lexical) = {
            let config = shard.config();
            (
                config.vectors.get(DENSE).map(|params| params.size),
                config.sparse_vectors.get(LEXICAL).map(|params| params.modifier),
            )
        };
        match stored_dims {
            Some(want) if want == dims => {}
            Some(want) => return Err(VectorError::Dimensions { got: dims, want }),
            None => return Err(VectorError::Backend(format!("shard in {} has no `{DENSE}` vector", dir.display()))),
        }
        if lexical != Some(Some(Modifier::Idf)) {
            return Err(VectorError::Backend(format!(
                "shard in {} has no IDF-weighted `{LEXICAL}` sparse vector",
                dir.display()
            )));
        }

        // The payload indexes are not carried over by `load` (and new segments start without
        // them): re-create them on every open. Creating an existing index is a no-op.
        guarded(|| ensure_indexes(&shard))?;
        Ok(Self { shard: Arc::new(RwLock::new(shard)), dims, written_since_optimize: Default::default() })
    }

    pub fn dimensions(&self) -> usize {
        self.dims
    }

    /// Merges and vacuums segments and builds HNSW indexes for segments past the indexing
    /// threshold (new segments are plain, i.e. exact search). Returns whether anything changed.
    ///
    /// Never called automatically: it blocks every search and write while it runs and uses all
    /// cores to build the graph, while exact search over a tenant-filtered plain segment stays
    /// fast for knowledge bases of a few thousand chunks. Run it after a bulk ingest or from a
    /// maintenance job.
    pub async fn optimize(&self) -> Result<bool, VectorError> {
        self.run(true, |shard| {
            let changed = shard.optimize().map_err(backend)?;
            ensure_indexes(shard)?;
            Ok(changed)
        })
        .await
    }

    /// Runs `f` on the blocking pool with the shard locked (exclusively for writes), turning
    /// panics into `VectorError::Backend`. The panic is caught inside the lock, so the lock is
    /// never poisoned by qdrant-edge.
    async fn run<T, F>(&self, exclusive: bool, f: F) -> Result<T, VectorError>
    where
        T: Send + 'static,
        F: FnOnce(&EdgeShard) -> Result<T, VectorError> + Send + 'static,
    {
        let shard = Arc::clone(&self.shard);
        tokio::task::spawn_blocking(move || {
            if exclusive {
                let guard = shard.write().unwrap_or_else(PoisonError::into_inner);
                guarded(|| f(&guard))
            } else {
                let guard = shard.read().unwrap_or_else(PoisonError::into_inner);
                guarded(|| f(&guard))
            }
        })
        .await
        .map_err(|e| VectorError::Backend(format!("vector index task failed: {e}")))?
    }
}

#[async_trait]
impl VectorIndex for EdgeVectorIndex {
    async fn upsert(&self, company: CompanyId, chunks: Vec<IndexedChunk>) -> Result<(), VectorError> {
        if chunks.is_empty() {
            return Ok(());
        }
        let points =
            chunks.into_iter().map(|chunk| to_point(company, self.dims, chunk)).collect::<Result<Vec<_>, _>>()?;
        let written = points.len();
        let operation =
            UpdateOperation::PointOperation(PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)));
        self.run(true, move |shard| apply(shard, operation)).await?;
        // Build the HNSW index when it pays: after every OPTIMIZE_EVERY_POINTS writes. The writer
        // that crosses the mark pays for it (searches wait on the lock meanwhile).
        use std::sync::atomic::Ordering;
        let total = self.written_since_optimize.fetch_add(written, Ordering::SeqCst) + written;
        if total >= OPTIMIZE_EVERY_POINTS {
            self.written_since_optimize.store(0, Ordering::SeqCst);
            let changed = self.optimize().await?;
            tracing::info!(changed, "vector index optimised");
        }
        Ok(())
    }

    async fn search(
        &self,
        company: CompanyId,
        scope: &Scope,
        query: QueryVector<'_>,
        limit: usize,
    ) -> Result<Vec<ScoredChunk>, VectorError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (using, vector) = match query {
            QueryVector::Dense(dense) => {
                if dense.len() != self.dims {
                    return Err(VectorError::Dimensions { got: dense.len(), want: self.dims });
                }
                (DENSE, VectorInternal::Dense(dense.to_vec()))
            }
            QueryVector::Sparse(sparse) => {
                if sparse.indices.is_empty() {
                    return Ok(Vec::new());
                }
                (LEXICAL, VectorInternal::Sparse(edge_sparse(sparse)?))
            }
        };
        let Some(filter) = search_filter(company, scope)? else {
            return Ok(Vec::new());
        };
        let dense = using == DENSE;
        self.run(false, move |shard| {
            let points = if dense {
                dense_search(shard, vector, filter, limit)?.0
            } else {
                shard.query(nearest(LEXICAL, vector, Some(filter), limit)).map_err(backend)?
            };
            points.into_iter().map(scored_chunk).collect()
        })
        .await
    }

    async fn delete(&self, company: CompanyId, target: DeleteTarget) -> Result<(), VectorError> {
        let Some(filter) = delete_filter(company, &target)? else {
            return Ok(());
        };
        let operation = UpdateOperation::PointOperation(PointOperations::DeletePointsByFilter(filter));
        self.run(true, move |shard| apply(shard, operation)).await
    }

    async fn count(&self, company: CompanyId) -> Result<u64, VectorError> {
        let filter = must(vec![eq(COMPANY_ID, company.as_uuid())?]);
        let count = self
            .run(false, move |shard| shard.count(CountRequest { filter: Some(filter), exact: true }).map_err(backend))
            .await?;
        u64::try_from(count).map_err(|e| VectorError::Backend(e.to_string()))
    }
}

/// How a dense search found its points (see [`dense_search`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DensePlan {
    /// The graph search checked the filter on every point it visited.
    Filtered,
    /// The graph search ran without the filter, and the filter was applied to its candidates.
    Verified,
    /// As `Verified`, but too few candidates passed, so the filtered search ran after all.
    VerifiedThenFiltered,
}

/// A scope that matches at least this share of the shard's points is searched without the
/// filter, and the filter applied to the candidates.
const VERIFY_FROM_SHARE: f64 = 0.75;
/// Candidates wanted beyond `limit / share`, for the estimate's error.
const VERIFY_MARGIN: f64 = 1.25;

/// The dense search, filtered to the scope either way. A filtered graph search checks the
/// filter on every point it visits, and in qdrant-edge those checks cost more than the
/// distances (most of the search time in a profile of the chat bench). When the scope covers
/// most of the shard (one company's knowledge base on its own machine, say), the graph is
/// searched without the filter for a few more candidates than wanted, and the filter is then
/// applied to those candidates alone, by qdrant, in an exact search restricted to their ids.
/// The hits are the same points the filtered search finds when every point matches. When the
/// estimate was wrong and too few candidates pass, the filtered search runs after all.
pub fn dense_search(
    shard: &EdgeShard,
    vector: VectorInternal,
    filter: Filter,
    limit: usize,
) -> Result<(Vec<ScoredPoint>, DensePlan), VectorError> {
    let estimate = |filter: Option<Filter>| shard.count(CountRequest { filter, exact: false }).map_err(backend);
    let total = estimate(None)?;
    let matching = if total == 0 { 0 } else { estimate(Some(filter.clone()))? };
    if total == 0 || (matching as f64) < total as f64 * VERIFY_FROM_SHARE {
        let hits = shard.query(nearest(DENSE, vector, Some(filter), limit)).map_err(backend)?;
        return Ok((hits, DensePlan::Filtered));
    }
    let wide = ((limit * total) as f64 / matching as f64 * VERIFY_MARGIN).ceil() as usize;
    verified_dense_search(shard, vector, filter, limit, wide.max(limit), total)
}

/// The unfiltered search for `wide` candidates, the filter applied to them, and the filtered
/// search when fewer than `limit` pass while the candidates did not cover the whole shard.
fn verified_dense_search(
    shard: &EdgeShard,
    vector: VectorInternal,
    filter: Filter,
    limit: usize,
    wide: usize,
    total: usize,
) -> Result<(Vec<ScoredPoint>, DensePlan), VectorError> {
    let candidates = shard.query(nearest(DENSE, vector.clone(), None, wide)).map_err(backend)?;
    let mut hits = Vec::new();
    if !candidates.is_empty() {
        let ids: HasIdCondition = candidates.iter().map(|point| point.id).collect();
        let mut among_candidates = filter.clone();
        among_candidates.must.get_or_insert_with(Vec::new).push(Condition::HasId(ids));
        hits = shard.query(nearest(DENSE, vector.clone(), Some(among_candidates), limit)).map_err(backend)?;
    }
    // Every point of the shard was a candidate: whatever passed is all there is.
    if hits.len() >= limit || total <= wide {
        return Ok((hits, DensePlan::Verified));
    }
    let hits = shard.query(nearest(DENSE, vector, Some(filter), limit)).map_err(backend)?;
    Ok((hits, DensePlan::VerifiedThenFiltered))
}

/// A nearest-neighbour query on vector `using`: ids and scores, no payload.
fn nearest(using: &str, vector: VectorInternal, filter: Option<Filter>, limit: usize) -> QueryRequest {
    QueryRequest {
        prefetches: Vec::new(),
        query: Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
            query: vector,
            using: Some(using.to_string()),
        }))),
        filter,
        score_threshold: None,
        limit,
        offset: 0,
        params: None,
        with_vector: WithVector::Bool(false),
        with_payload: WithPayloadInterface::Bool(false),
    }
}

/// The dense vector is also kept as int8 (scalar quantisation, in RAM): the graph search
/// compares the small copies and rescores its candidates with the full vectors. On 100k chunks
/// that took a filtered search from 2.0 to 1.55 ms p50 in a probe (1.78 to 1.41 ms in the chat
/// bench), and recall@10 against exact search did not drop.
fn edge_config(dims: usize) -> EdgeConfig {
    let int8: QuantizationConfig = serde_json::from_value(serde_json::json!(
        {"scalar": {"type": "int8", "quantile": SCALAR_QUANTILE, "always_ram": true}}
    ))
    .expect("a valid scalar quantisation config");
    EdgeConfig {
        vectors: HashMap::from([(
            DENSE.to_string(),
            EdgeVectorParams::builder(dims, Distance::Cosine).quantization_config(int8).build(),
        )]),
        sparse_vectors: HashMap::from([(
            LEXICAL.to_string(),
            EdgeSparseVectorParams { modifier: Some(Modifier::Idf), ..Default::default() },
        )]),
        ..EdgeConfig::default()
    }
}

fn has_segments(dir: &Path) -> bool {
    std::fs::read_dir(dir.join(SEGMENTS_DIR))
        .map(|entries| entries.flatten().any(|entry| entry.path().is_dir()))
        .unwrap_or(false)
}

/// UUID indexes for the filter fields: a filtered graph search checks the filter on every
/// point it visits, and a UUID index compares 128-bit numbers where a keyword index hashes
/// strings. On 100k points that took the search with the chat turn's filter from 2.44 to
/// 1.62 ms p50 in a probe (0.8 ms without a filter). Shards indexed by an earlier version
/// (keyword) are re-indexed on open: qdrant replaces an index of another type. `chunk_index`
/// needs none: its range condition is checked against the payload (exact, and only on the
/// few points of one file).
fn ensure_indexes(shard: &EdgeShard) -> Result<(), VectorError> {
    for field in [COMPANY_ID, FILE_ID, ARTICLE_ID, CATEGORY_ID] {
        let index = CreateIndex {
            field_name: key(field)?,
            field_schema: Some(PayloadFieldSchema::FieldType(PayloadSchemaType::Uuid)),
        };
        shard
            .update(UpdateOperation::FieldIndexOperation(FieldIndexOperations::CreateIndex(index)))
            .map_err(backend)?;
    }
    shard.flush();
    Ok(())
}

/// One write, then a flush: `load` ignores the WAL, so unflushed writes would be lost.
fn apply(shard: &EdgeShard, operation: UpdateOperation) -> Result<(), VectorError> {
    shard.update(operation).map_err(backend)?;
    shard.flush();
    Ok(())
}

fn to_point(company: CompanyId, dims: usize, chunk: IndexedChunk) -> Result<PointStructPersisted, VectorError> {
    if chunk.payload.company_id != company.as_uuid() {
        return Err(VectorError::WrongCompany(chunk.id));
    }
    if chunk.dense.len() != dims {
        return Err(VectorError::Dimensions { got: chunk.dense.len(), want: dims });
    }
    let mut vectors = HashMap::from([(DENSE.to_string(), VectorInternal::Dense(chunk.dense))]);
    if !chunk.sparse.indices.is_empty() {
        vectors.insert(LEXICAL.to_string(), VectorInternal::Sparse(edge_sparse(&chunk.sparse)?));
    }
    let payload = match serde_json::to_value(&chunk.payload) {
        Ok(serde_json::Value::Object(map)) => Payload(map),
        Ok(other) => return Err(VectorError::Backend(format!("chunk payload is not an object: {other}"))),
        Err(e) => return Err(VectorError::Backend(format!("chunk payload: {e}"))),
    };
    Ok(PointStructPersisted {
        id: PointId::Uuid(chunk.id),
        vector: VectorStructPersisted::from(VectorStructInternal::Named(vectors)),
        payload: Some(payload),
    })
}

/// Validated qdrant sparse vector, sorted by term id.
fn edge_sparse(sparse: &SparseVector) -> Result<qdrant_edge::SparseVector, VectorError> {
    if sparse.indices.len() != sparse.values.len() {
        return Err(VectorError::Backend(format!(
            "sparse vector has {} indices and {} values",
            sparse.indices.len(),
            sparse.values.len()
        )));
    }
    let mut pairs: Vec<(u32, f32)> = sparse.indices.iter().copied().zip(sparse.values.iter().copied()).collect();
    pairs.sort_by_key(|&(index, _)| index);
    let (indices, values): (Vec<u32>, Vec<f32>) = pairs.into_iter().unzip();
    qdrant_edge::SparseVector::new(indices, values)
        .map_err(|e| VectorError::Backend(format!("invalid sparse vector: {e}")))
}

fn scored_chunk(point: ScoredPoint) -> Result<ScoredChunk, VectorError> {
    let id = match point.id {
        PointId::Uuid(id) => id,
        PointId::NumId(other) => return Err(VectorError::Backend(format!("unexpected numeric point id {other}"))),
    };
    Ok(ScoredChunk { id, score: point.score })
}

/// The company condition plus the scope's narrowing; `None` when the scope can match nothing
/// (an empty category or file list).
fn search_filter(company: CompanyId, scope: &Scope) -> Result<Option<Filter>, VectorError> {
    let mut conditions = Vec::with_capacity(3);
    let mut either = None;
    if scope.include_global && !company.is_global() {
        conditions.push(any(COMPANY_ID, &[company.as_uuid(), Uuid::nil()])?);
    } else {
        conditions.push(eq(COMPANY_ID, company.as_uuid())?);
    }
    let with_global = scope.include_global && !company.is_global();
    // Global knowledge has no category: narrowing by category keeps it (when included).
    match &scope.categories {
        None => {}
        Some(categories) if categories.is_empty() && !with_global => return Ok(None),
        Some(categories) if categories.is_empty() => conditions.push(eq(COMPANY_ID, Uuid::nil())?),
        // At the top level (all `must`, and at least one `should`), not nested: one level less
        // to evaluate on every point the search visits.
        Some(categories) if with_global => {
            either = Some(vec![any(CATEGORY_ID, categories)?, eq(COMPANY_ID, Uuid::nil())?]);
        }
        Some(categories) => conditions.push(any(CATEGORY_ID, categories)?),
    }
    match &scope.files {
        None => {}
        Some(files) if files.is_empty() => return Ok(None),
        Some(files) => conditions.push(any(FILE_ID, files)?),
    }
    Ok(Some(Filter { should: either, ..must(conditions) }))
}

/// Always the company condition AND the target; `None` when there is nothing to delete.
fn delete_filter(company: CompanyId, target: &DeleteTarget) -> Result<Option<Filter>, VectorError> {
    let mut conditions = vec![eq(COMPANY_ID, company.as_uuid())?];
    match target {
        DeleteTarget::Points(ids) => {
            if ids.is_empty() {
                return Ok(None);
            }
            conditions.push(Condition::HasId(ids.iter().map(|&id| PointId::Uuid(id)).collect::<HasIdCondition>()));
        }
        DeleteTarget::File(file) => conditions.push(eq(FILE_ID, *file)?),
        DeleteTarget::FileFrom(file, from) => {
            conditions.push(eq(FILE_ID, *file)?);
            conditions.push(Condition::Field(FieldCondition::new_range(
                key(CHUNK_INDEX)?,
                Range { lt: None, gt: None, gte: Some(OrderedFloat(f64::from(*from))), lte: None },
            )));
        }
        DeleteTarget::Article(article) => conditions.push(eq(ARTICLE_ID, *article)?),
        DeleteTarget::Category(category) => conditions.push(eq(CATEGORY_ID, *category)?),
        DeleteTarget::Company => {}
    }
    Ok(Some(must(conditions)))
}

fn must(conditions: Vec<Condition>) -> Filter {
    Filter { must: Some(conditions), ..Filter::new() }
}

fn eq(field: &str, value: Uuid) -> Result<Condition, VectorError> {
    Ok(Condition::Field(FieldCondition::new_match(key(field)?, Match::from(value.to_string()))))
}

fn any(field: &str, values: &[Uuid]) -> Result<Condition, VectorError> {
    let values: Vec<String> = values.iter().map(Uuid::to_string).collect();
    Ok(Condition::Field(FieldCondition::new_match(key(field)?, Match::from(values))))
}

fn key(field: &str) -> Result<JsonPath, VectorError> {
    field.parse().map_err(|()| VectorError::Backend(format!("invalid payload key `{field}`")))
}

fn backend(error: impl std::fmt::Display) -> VectorError {
    VectorError::Backend(error.to_string())
}

/// Runs `f`, converting a panic (qdrant-edge panics on flush errors) into `Backend`.
fn guarded<T>(f: impl FnOnce() -> Result<T, VectorError>) -> Result<T, VectorError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Err(VectorError::Backend(format!("vector index panicked: {message}")))
    })
}
