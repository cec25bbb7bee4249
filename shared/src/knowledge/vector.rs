//! Vector storage for knowledge chunks. The company is part of every call's signature, so a
//! query cannot forget the tenant filter: implementations add `company_id = <company>` (and,
//! when asked, the global-knowledge sentinel) to every search, upsert check and delete.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::tenant::CompanyId;

/// Payload stored with every point; `company_id` is the nil UUID for global knowledge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkPayload {
    pub company_id: Uuid,
    pub file_id: Option<Uuid>,
    pub article_id: Option<Uuid>,
    pub category_id: Option<Uuid>,
    pub chunk_index: i32,
    pub text: String,
}

/// A BM25-style sparse vector: term ids (hashed) and term-frequency weights. The index applies
/// IDF at query time (Qdrant's `Modifier::Idf`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseVector {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

#[derive(Clone, Debug)]
pub struct IndexedChunk {
    /// Deterministic: `chunk_point_id(source, chunk_index)`; re-upserting replaces.
    pub id: Uuid,
    pub dense: Vec<f32>,
    pub sparse: SparseVector,
    pub payload: ChunkPayload,
}

/// Narrows a search inside the company: any of these categories / files (None = no narrowing),
/// and whether global knowledge (nil company) is included.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub categories: Option<Vec<Uuid>>,
    pub files: Option<Vec<Uuid>>,
    pub include_global: bool,
}

#[derive(Clone, Copy, Debug)]
pub enum QueryVector<'a> {
    Dense(&'a [f32]),
    Sparse(&'a SparseVector),
}

/// A hit: the point id and its score. No payload comes back (reading it costs more than the
/// search at this size); the chunk rows are read from PostgreSQL, filtered by company again.
#[derive(Clone, Debug)]
pub struct ScoredChunk {
    pub id: Uuid,
    /// Cosine similarity for dense queries, BM25 score for sparse ones.
    pub score: f32,
}

/// What to delete, always inside one company.
#[derive(Clone, Debug)]
pub enum DeleteTarget {
    Points(Vec<Uuid>),
    File(Uuid),
    /// Points of this file whose chunk_index >= the given one (shrinking re-ingest).
    FileFrom(Uuid, i32),
    Article(Uuid),
    Category(Uuid),
    Company,
}

#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("vector index failed: {0}")]
    Backend(String),
    #[error("point {0} belongs to another company")]
    WrongCompany(Uuid),
    #[error("embedding has {got} dimensions, the index expects {want}")]
    Dimensions { got: usize, want: usize },
}

/// Both indexes keep an int8 copy of the dense vector for the graph search; values outside
/// this quantile are clipped when quantising.
pub const SCALAR_QUANTILE: f32 = 0.99;

#[async_trait]
pub trait VectorIndex: Send + Sync {
    /// Inserts or replaces points. Every payload's `company_id` must equal `company`
    /// (or be nil when `company` is the global sentinel), else `WrongCompany`.
    async fn upsert(&self, company: CompanyId, chunks: Vec<IndexedChunk>) -> Result<(), VectorError>;
    /// Best `limit` points of `company` (plus global ones if `scope.include_global`) for one
    /// query vector, best first.
    async fn search(
        &self,
        company: CompanyId,
        scope: &Scope,
        query: QueryVector<'_>,
        limit: usize,
    ) -> Result<Vec<ScoredChunk>, VectorError>;
    async fn delete(&self, company: CompanyId, target: DeleteTarget) -> Result<(), VectorError>;
    /// Points stored for `company` (exact count).
    async fn count(&self, company: CompanyId) -> Result<u64, VectorError>;
}

/// The point id of chunk `index` of a file or article: the same input always gives the same
/// id, so a redelivered job overwrites instead of duplicating.
pub fn chunk_point_id(source_id: Uuid, index: i32) -> Uuid {
    Uuid::new_v5(&CHUNK_NAMESPACE, format!("{source_id}:{index}").as_bytes())
}

const CHUNK_NAMESPACE: Uuid = Uuid::from_u128(0x6c1e_2b8a_3f7d_4e59_9a0b_c4d3_e2f1_0a9b);
