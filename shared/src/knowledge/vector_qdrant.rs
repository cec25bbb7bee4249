//! The hosted vector index: one collection on a Qdrant server (gRPC, port 6334), shared by all
//! companies. Tenancy is the `company_id` payload field (a keyword index with `is_tenant`), and
//! every search, count and delete filters on it.

use std::time::Duration;

use async_trait::async_trait;
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::vectors_config::Config as VectorsConfigKind;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, DeletePointsBuilder,
    Distance, FieldType, Filter, KeywordIndexParamsBuilder, Modifier, NamedVectors, PointStruct, QuantizationType,
    Query, QueryPointsBuilder, Range, ScalarQuantizationBuilder, ScoredPoint, SparseVectorParamsBuilder,
    SparseVectorsConfigBuilder, UpsertPointsBuilder, Vector, VectorInput, VectorParamsBuilder, VectorsConfigBuilder,
};
use qdrant_client::{Payload, Qdrant};
use uuid::Uuid;

use crate::knowledge::vector::{
    DeleteTarget, IndexedChunk, QueryVector, Scope, ScoredChunk, SparseVector, VectorError, VectorIndex,
    SCALAR_QUANTILE,
};
use crate::tenant::CompanyId;

/// Named dense vector (cosine).
pub const DENSE: &str = "dense";
/// Named sparse vector (BM25 term weights, IDF applied by the server at query time).
pub const LEXICAL: &str = "lexical";

const COMPANY_ID: &str = "company_id";
const FILE_ID: &str = "file_id";
const ARTICLE_ID: &str = "article_id";
const CATEGORY_ID: &str = "category_id";
const CHUNK_INDEX: &str = "chunk_index";

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct QdrantServerIndex {
    client: Qdrant,
    collection: String,
    dims: usize,
}

impl std::fmt::Debug for QdrantServerIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantServerIndex")
            .field("collection", &self.collection)
            .field("dims", &self.dims)
            .finish_non_exhaustive()
    }
}

impl QdrantServerIndex {
    /// Connects to the server's gRPC endpoint (e.g. `http://localhost:6334`), creates the
    /// collection when it is absent (dense `dims`-dimensional cosine vector plus the IDF-weighted
    /// sparse vector) and makes sure the payload indexes exist. An existing collection must have
    /// the same dense dimensions.
    pub async fn connect(url: &str, api_key: Option<&str>, collection: &str, dims: usize) -> Result<Self, VectorError> {
        // The compatibility check would block this async fn on a private runtime; the first
        // request below surfaces connection errors anyway.
        let client = Qdrant::from_url(url)
            .api_key(api_key)
            .timeout(REQUEST_TIMEOUT)
            .skip_compatibility_check()
            .build()
            .map_err(backend)?;
        let index = Self { client, collection: collection.to_string(), dims };
        index.ensure_collection().await?;
        index.ensure_indexes().await?;
        Ok(index)
    }

    pub fn dimensions(&self) -> usize {
        self.dims
    }

    async fn ensure_collection(&self) -> Result<(), VectorError> {
        let name = self.collection.as_str();
        if !self.client.collection_exists(name).await.map_err(backend)? {
            let mut vectors = VectorsConfigBuilder::default();
            // As the embedded index: an int8 copy in RAM for the graph search, rescored.
            let int8 = ScalarQuantizationBuilder::default()
                .r#type(QuantizationType::Int8.into())
                .quantile(SCALAR_QUANTILE)
                .always_ram(true);
            vectors.add_named_vector_params(
                DENSE,
                VectorParamsBuilder::new(self.dims as u64, Distance::Cosine).quantization_config(int8),
            );
            let mut sparse = SparseVectorsConfigBuilder::default();
            sparse.add_named_vector_params(LEXICAL, SparseVectorParamsBuilder::default().modifier(Modifier::Idf));
            let create = CreateCollectionBuilder::new(name).vectors_config(vectors).sparse_vectors_config(sparse);
            if let Err(e) = self.client.create_collection(create).await {
                // Another instance may have created it in the meantime; then check that one.
                if !self.client.collection_exists(name).await.map_err(backend)? {
                    return Err(backend(e));
                }
            }
        }
        self.check_collection().await
    }

    /// The stored collection must have our dense dimensions and the IDF sparse vector.
    async fn check_collection(&self) -> Result<(), VectorError> {
        let info = self.client.collection_info(self.collection.as_str()).await.map_err(backend)?;
        let params =
            info.result.and_then(|info| info.config).and_then(|config| config.params).ok_or_else(|| {
                VectorError::Backend(format!("collection `{}` returned no parameters", self.collection))
            })?;
        let stored_dims = match params.vectors_config.and_then(|vectors| vectors.config) {
            Some(VectorsConfigKind::ParamsMap(map)) => map.map.get(DENSE).map(|params| params.size),
            _ => None,
        };
        match stored_dims {
            Some(want) if want == self.dims as u64 => {}
            Some(want) => {
                return Err(VectorError::Dimensions {
                    got: self.dims,
                    want: usize::try_from(want).unwrap_or(usize::MAX),
                })
            }
            None => {
                return Err(VectorError::Backend(format!("collection `{}` has no `{DENSE}` vector", self.collection)))
            }
        }
        let idf = params
            .sparse_vectors_config
            .and_then(|sparse| sparse.map.get(LEXICAL).and_then(|params| params.modifier))
            .is_some_and(|modifier| modifier == i32::from(Modifier::Idf));
        if !idf {
            return Err(VectorError::Backend(format!(
                "collection `{}` has no IDF-weighted `{LEXICAL}` sparse vector",
                self.collection
            )));
        }
        Ok(())
    }

    /// Payload indexes; creating an existing one is a no-op on the server.
    async fn ensure_indexes(&self) -> Result<(), VectorError> {
        let name = self.collection.as_str();
        let company = CreateFieldIndexCollectionBuilder::new(name, COMPANY_ID, FieldType::Keyword)
            .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true))
            .wait(true);
        self.client.create_field_index(company).await.map_err(backend)?;
        for field in [FILE_ID, ARTICLE_ID, CATEGORY_ID] {
            let keyword = CreateFieldIndexCollectionBuilder::new(name, field, FieldType::Keyword).wait(true);
            self.client.create_field_index(keyword).await.map_err(backend)?;
        }
        let chunk_index = CreateFieldIndexCollectionBuilder::new(name, CHUNK_INDEX, FieldType::Integer).wait(true);
        self.client.create_field_index(chunk_index).await.map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl VectorIndex for QdrantServerIndex {
    async fn upsert(&self, company: CompanyId, chunks: Vec<IndexedChunk>) -> Result<(), VectorError> {
        if chunks.is_empty() {
            return Ok(());
        }
        let points =
            chunks.into_iter().map(|chunk| to_point(company, self.dims, chunk)).collect::<Result<Vec<_>, _>>()?;
        self.client
            .upsert_points(UpsertPointsBuilder::new(self.collection.as_str(), points).wait(true))
            .await
            .map_err(backend)?;
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
        let (using, input) = match query {
            QueryVector::Dense(dense) => {
                if dense.len() != self.dims {
                    return Err(VectorError::Dimensions { got: dense.len(), want: self.dims });
                }
                (DENSE, VectorInput::new_dense(dense.to_vec()))
            }
            QueryVector::Sparse(sparse) => {
                if sparse.indices.is_empty() {
                    return Ok(Vec::new());
                }
                check_sparse(sparse)?;
                (LEXICAL, VectorInput::new_sparse(sparse.indices.clone(), sparse.values.clone()))
            }
        };
        let Some(filter) = search_filter(company, scope) else {
            return Ok(Vec::new());
        };
        let request = QueryPointsBuilder::new(self.collection.as_str())
            .query(Query::new_nearest(input))
            .using(using)
            .filter(filter)
            .limit(u64::try_from(limit).unwrap_or(u64::MAX))
            .with_payload(false);
        let response = self.client.query(request).await.map_err(backend)?;
        response.result.into_iter().map(scored_chunk).collect()
    }

    async fn delete(&self, company: CompanyId, target: DeleteTarget) -> Result<(), VectorError> {
        let Some(filter) = delete_filter(company, &target) else {
            return Ok(());
        };
        self.client
            .delete_points(DeletePointsBuilder::new(self.collection.as_str()).points(filter).wait(true))
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn count(&self, company: CompanyId) -> Result<u64, VectorError> {
        let filter = Filter::must([eq(COMPANY_ID, company.as_uuid())]);
        let response = self
            .client
            .count(CountPointsBuilder::new(self.collection.as_str()).filter(filter).exact(true))
            .await
            .map_err(backend)?;
        response
            .result
            .map(|result| result.count)
            .ok_or_else(|| VectorError::Backend("count returned no result".to_string()))
    }
}

fn to_point(company: CompanyId, dims: usize, chunk: IndexedChunk) -> Result<PointStruct, VectorError> {
    if chunk.payload.company_id != company.as_uuid() {
        return Err(VectorError::WrongCompany(chunk.id));
    }
    if chunk.dense.len() != dims {
        return Err(VectorError::Dimensions { got: chunk.dense.len(), want: dims });
    }
    let mut vectors = NamedVectors::default().add_vector(DENSE, Vector::new_dense(chunk.dense));
    if !chunk.sparse.indices.is_empty() {
        check_sparse(&chunk.sparse)?;
        vectors = vectors.add_vector(LEXICAL, Vector::new_sparse(chunk.sparse.indices, chunk.sparse.values));
    }
    let json = serde_json::to_value(&chunk.payload).map_err(|e| VectorError::Backend(format!("chunk payload: {e}")))?;
    let payload = Payload::try_from(json).map_err(backend)?;
    Ok(PointStruct::new(chunk.id.to_string(), vectors, payload))
}

fn check_sparse(sparse: &SparseVector) -> Result<(), VectorError> {
    if sparse.indices.len() != sparse.values.len() {
        return Err(VectorError::Backend(format!(
            "sparse vector has {} indices and {} values",
            sparse.indices.len(),
            sparse.values.len()
        )));
    }
    Ok(())
}

fn scored_chunk(point: ScoredPoint) -> Result<ScoredChunk, VectorError> {
    let id = match point.id.and_then(|id| id.point_id_options) {
        Some(PointIdOptions::Uuid(id)) => {
            Uuid::parse_str(&id).map_err(|e| VectorError::Backend(format!("point id `{id}`: {e}")))?
        }
        other => return Err(VectorError::Backend(format!("unexpected point id {other:?}"))),
    };
    Ok(ScoredChunk { id, score: point.score })
}

/// The company condition plus the scope's narrowing; `None` when the scope can match nothing
/// (an empty category or file list).
fn search_filter(company: CompanyId, scope: &Scope) -> Option<Filter> {
    let mut conditions = Vec::with_capacity(3);
    if scope.include_global && !company.is_global() {
        conditions.push(any(COMPANY_ID, &[company.as_uuid(), Uuid::nil()]));
    } else {
        conditions.push(eq(COMPANY_ID, company.as_uuid()));
    }
    let with_global = scope.include_global && !company.is_global();
    // Global knowledge has no category: narrowing by category keeps it (when included).
    match &scope.categories {
        None => {}
        Some(categories) if categories.is_empty() && !with_global => return None,
        Some(categories) if categories.is_empty() => conditions.push(eq(COMPANY_ID, Uuid::nil())),
        Some(categories) if with_global => conditions
            .push(Condition::from(Filter::should(vec![any(CATEGORY_ID, categories), eq(COMPANY_ID, Uuid::nil())]))),
        Some(categories) => conditions.push(any(CATEGORY_ID, categories)),
    }
    match &scope.files {
        None => {}
        Some(files) if files.is_empty() => return None,
        Some(files) => conditions.push(any(FILE_ID, files)),
    }
    Some(Filter::must(conditions))
}

/// Always the company condition AND the target; `None` when there is nothing to delete.
fn delete_filter(company: CompanyId, target: &DeleteTarget) -> Option<Filter> {
    let mut conditions = vec![eq(COMPANY_ID, company.as_uuid())];
    match target {
        DeleteTarget::Points(ids) => {
            if ids.is_empty() {
                return None;
            }
            conditions.push(Condition::has_id(ids.iter().map(Uuid::to_string)));
        }
        DeleteTarget::File(file) => conditions.push(eq(FILE_ID, *file)),
        DeleteTarget::FileFrom(file, from) => {
            conditions.push(eq(FILE_ID, *file));
            conditions.push(Condition::range(CHUNK_INDEX, Range { gte: Some(f64::from(*from)), ..Range::default() }));
        }
        DeleteTarget::Article(article) => conditions.push(eq(ARTICLE_ID, *article)),
        DeleteTarget::Category(category) => conditions.push(eq(CATEGORY_ID, *category)),
        DeleteTarget::Company => {}
    }
    Some(Filter::must(conditions))
}

/// Keyword match (a UUID string never contains whitespace, so it is not a text match).
fn eq(field: &str, value: Uuid) -> Condition {
    Condition::matches(field, value.to_string())
}

fn any(field: &str, values: &[Uuid]) -> Condition {
    Condition::matches(field, values.iter().map(Uuid::to_string).collect::<Vec<_>>())
}

fn backend(error: impl std::fmt::Display) -> VectorError {
    VectorError::Backend(error.to_string())
}
