use std::path::PathBuf;

use super::*;
use crate::knowledge::vector::ChunkPayload;

const DIMS: usize = 4;

/// A fresh directory under the system temp dir, removed on drop (declare it before the
/// index so the index is dropped, and flushed, first).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("chatapp-edge-{}", Uuid::new_v4())))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn company() -> CompanyId {
    CompanyId::new(Uuid::new_v4())
}

#[derive(Clone, Copy, Default)]
struct Meta {
    file: Option<Uuid>,
    article: Option<Uuid>,
    category: Option<Uuid>,
    index: i32,
}

fn chunk(company: CompanyId, meta: Meta, dense: [f32; DIMS], terms: &[(u32, f32)], text: &str) -> IndexedChunk {
    IndexedChunk {
        id: Uuid::new_v4(),
        dense: dense.to_vec(),
        sparse: SparseVector {
            indices: terms.iter().map(|&(i, _)| i).collect(),
            values: terms.iter().map(|&(_, v)| v).collect(),
        },
        payload: ChunkPayload {
            company_id: company.as_uuid(),
            file_id: meta.file,
            article_id: meta.article,
            category_id: meta.category,
            chunk_index: meta.index,
            text: text.to_string(),
        },
    }
}

fn ids(hits: &[ScoredChunk]) -> Vec<Uuid> {
    hits.iter().map(|hit| hit.id).collect()
}

async fn dense_hits(index: &EdgeVectorIndex, company: CompanyId, scope: &Scope) -> Vec<ScoredChunk> {
    index.search(company, scope, QueryVector::Dense(&[1.0, 1.0, 1.0, 1.0]), 100).await.unwrap()
}

#[tokio::test]
async fn dense_search_finds_nearest_first() {
    let dir = TempDir::new();
    let index = EdgeVectorIndex::open(&dir.0, DIMS).unwrap();
    let a = company();
    let x = chunk(a, Meta::default(), [1.0, 0.0, 0.0, 0.0], &[], "x");
    let y = chunk(a, Meta::default(), [0.0, 1.0, 0.0, 0.0], &[], "y");
    let xy = chunk(a, Meta::default(), [0.7, 0.7, 0.0, 0.0], &[], "xy");
    index.upsert(a, vec![x.clone(), y.clone(), xy.clone()]).await.unwrap();

    let hits = index.search(a, &Scope::default(), QueryVector::Dense(&[1.0, 0.1, 0.0, 0.0]), 10).await.unwrap();
    assert_eq!(ids(&hits), vec![x.id, xy.id, y.id]);
    assert!(hits[0].score > 0.99 && hits[0].score <= 1.0001, "cosine score {}", hits[0].score);

    let top = index.search(a, &Scope::default(), QueryVector::Dense(&[0.0, 1.0, 0.0, 0.0]), 1).await.unwrap();
    assert_eq!(ids(&top), vec![y.id]);

    assert_eq!(index.count(a).await.unwrap(), 3);
}

#[tokio::test]
async fn upsert_validates_company_and_dimensions() {
    let dir = TempDir::new();
    let index = EdgeVectorIndex::open(&dir.0, DIMS).unwrap();
    let (a, b) = (company(), company());

    let foreign = chunk(b, Meta::default(), [1.0, 0.0, 0.0, 0.0], &[], "b");
    let err = index.upsert(a, vec![chunk(a, Meta::default(), [1.0; 4], &[], "a"), foreign.clone()]).await;
    assert!(matches!(err, Err(VectorError::WrongCompany(id)) if id == foreign.id));

    let mut short = chunk(a, Meta::default(), [1.0; 4], &[], "a");
    short.dense.pop();
    let err = index.upsert(a, vec![short]).await;
    assert!(matches!(err, Err(VectorError::Dimensions { got: 3, want: 4 })));

    let err = index.search(a, &Scope::default(), QueryVector::Dense(&[1.0; 3]), 5).await;
    assert!(matches!(err, Err(VectorError::Dimensions { got: 3, want: 4 })));

    // Nothing of a rejected batch is written; an empty batch is a no-op.
    index.upsert(a, Vec::new()).await.unwrap();
    assert_eq!(index.count(a).await.unwrap(), 0);
}

#[tokio::test]
async fn sparse_search_ranks_the_matching_document_first() {
    let dir = TempDir::new();
    let index = EdgeVectorIndex::open(&dir.0, DIMS).unwrap();
    let a = company();
    let fox = chunk(a, Meta::default(), [1.0, 0.0, 0.0, 0.0], &[(10, 1.2), (20, 0.8)], "quick fox");
    let dog = chunk(a, Meta::default(), [1.0, 0.0, 0.0, 0.0], &[(30, 1.0), (20, 0.8)], "quick dog");
    let cat = chunk(a, Meta::default(), [1.0, 0.0, 0.0, 0.0], &[(40, 1.0)], "cat");
    let silent = chunk(a, Meta::default(), [1.0, 0.0, 0.0, 0.0], &[], "no terms");
    index.upsert(a, vec![dog.clone(), cat.clone(), fox.clone(), silent]).await.unwrap();

    let query = SparseVector { indices: vec![10], values: vec![1.0] };
    let hits = index.search(a, &Scope::default(), QueryVector::Sparse(&query), 10).await.unwrap();
    assert_eq!(hits.first().map(|hit| hit.id), Some(fox.id));
    assert!(hits[0].score > 0.0);

    // "dog" matches both query terms, "fox" one of them, "cat" none (absent or last).
    let query = SparseVector { indices: vec![30, 20], values: vec![1.0, 1.0] };
    let hits = index.search(a, &Scope::default(), QueryVector::Sparse(&query), 10).await.unwrap();
    assert_eq!(hits.first().map(|hit| hit.id), Some(dog.id));
    assert!(!ids(&hits).contains(&cat.id) || hits.last().map(|hit| hit.id) == Some(cat.id));

    let empty = SparseVector::default();
    assert!(index.search(a, &Scope::default(), QueryVector::Sparse(&empty), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn companies_are_isolated_and_global_is_opt_in() {
    let dir = TempDir::new();
    let index = EdgeVectorIndex::open(&dir.0, DIMS).unwrap();
    let (a, b) = (company(), company());
    let (file, category) = (Uuid::new_v4(), Uuid::new_v4());
    let meta = Meta { file: Some(file), category: Some(category), ..Meta::default() };
    let a1 = chunk(a, meta, [1.0, 0.0, 0.0, 0.0], &[(1, 1.0)], "a1");
    let a2 = chunk(a, Meta { index: 1, ..meta }, [0.0, 1.0, 0.0, 0.0], &[(1, 1.0)], "a2");
    index.upsert(a, vec![a1.clone(), a2.clone()]).await.unwrap();
    let global =
        chunk(CompanyId::GLOBAL, Meta { category: Some(category), ..Meta::default() }, [1.0; 4], &[(1, 1.0)], "g");
    index.upsert(CompanyId::GLOBAL, vec![global.clone()]).await.unwrap();

    // B sees nothing of A's, even naming A's file and category.
    let narrowed = Scope { categories: Some(vec![category]), files: Some(vec![file]), include_global: false };
    assert!(dense_hits(&index, b, &narrowed).await.is_empty());
    assert!(dense_hits(&index, b, &Scope::default()).await.is_empty());
    let query = SparseVector { indices: vec![1], values: vec![1.0] };
    assert!(index.search(b, &Scope::default(), QueryVector::Sparse(&query), 10).await.unwrap().is_empty());
    assert_eq!(index.count(b).await.unwrap(), 0);
    assert_eq!(index.count(a).await.unwrap(), 2);
    assert_eq!(index.count(CompanyId::GLOBAL).await.unwrap(), 1);

    // Global knowledge only when asked for, and never A's points for B.
    let mut found = ids(&dense_hits(&index, a, &Scope::default()).await);
    found.sort();
    let mut want = vec![a1.id, a2.id];
    want.sort();
    assert_eq!(found, want);

    let with_global = Scope { include_global: true, ..Scope::default() };
    let found = ids(&dense_hits(&index, a, &with_global).await);
    assert_eq!(found.len(), 3);
    assert!(found.contains(&global.id));
    assert_eq!(ids(&dense_hits(&index, b, &with_global).await), vec![global.id]);

    // Category narrowing applies to global points too; the file narrowing excludes them.
    let global_in_category = Scope { categories: Some(vec![category]), files: None, include_global: true };
    assert_eq!(dense_hits(&index, b, &global_in_category).await.len(), 1);
    let files_only = Scope { categories: None, files: Some(vec![file]), include_global: true };
    let mut found = ids(&dense_hits(&index, a, &files_only).await);
    found.sort();
    assert_eq!(found, want);

    // The global sentinel itself sees only global points.
    assert_eq!(ids(&dense_hits(&index, CompanyId::GLOBAL, &with_global).await), vec![global.id]);
}

#[tokio::test]
async fn empty_scope_lists_match_nothing() {
    let dir = TempDir::new();
    let index = EdgeVectorIndex::open(&dir.0, DIMS).unwrap();
    let a = company();
    let category = Uuid::new_v4();
    let meta = Meta { file: Some(Uuid::new_v4()), category: Some(category), ..Meta::default() };
    index.upsert(a, vec![chunk(a, meta, [1.0; 4], &[(1, 1.0)], "a")]).await.unwrap();

    let no_categories = Scope { categories: Some(Vec::new()), files: None, include_global: true };
    assert!(dense_hits(&index, a, &no_categories).await.is_empty());
    let no_files = Scope { categories: None, files: Some(Vec::new()), include_global: false };
    assert!(dense_hits(&index, a, &no_files).await.is_empty());

    let other_category = Scope { categories: Some(vec![Uuid::new_v4()]), ..Scope::default() };
    assert!(dense_hits(&index, a, &other_category).await.is_empty());
    let this_category = Scope { categories: Some(vec![category]), ..Scope::default() };
    assert_eq!(dense_hits(&index, a, &this_category).await.len(), 1);
}

#[tokio::test]
async fn deletes_stay_inside_the_company() {
    let dir = TempDir::new();
    let index = EdgeVectorIndex::open(&dir.0, DIMS).unwrap();
    let (a, b) = (company(), company());
    let (f1, f2, f3, article) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let (c1, c2, c3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());

    let f1_chunks: Vec<IndexedChunk> = (0..4)
        .map(|i| {
            chunk(a, Meta { file: Some(f1), category: Some(c1), index: i, ..Meta::default() }, [1.0; 4], &[], "f1")
        })
        .collect();
    let f2_chunk = chunk(a, Meta { file: Some(f2), category: Some(c2), ..Meta::default() }, [1.0; 4], &[], "f2");
    let f3_chunk = chunk(a, Meta { file: Some(f3), category: Some(c1), ..Meta::default() }, [1.0; 4], &[], "f3");
    let article_chunks: Vec<IndexedChunk> = (0..2)
        .map(|i| {
            chunk(
                a,
                Meta { article: Some(article), category: Some(c3), index: i, ..Meta::default() },
                [1.0; 4],
                &[],
                "art",
            )
        })
        .collect();
    let mut all = f1_chunks.clone();
    all.extend([f2_chunk.clone(), f3_chunk.clone()]);
    all.extend(article_chunks.clone());
    index.upsert(a, all).await.unwrap();
    // B has a point in a file and category with the same ids.
    let b_chunk = chunk(b, Meta { file: Some(f1), category: Some(c1), ..Meta::default() }, [1.0; 4], &[], "b");
    index.upsert(b, vec![b_chunk.clone()]).await.unwrap();
    assert_eq!(index.count(a).await.unwrap(), 8);
    assert_eq!(index.count(b).await.unwrap(), 1);

    // Shrinking re-ingest: chunks 2 and 3 of f1 go, 0 and 1 stay.
    index.delete(a, DeleteTarget::FileFrom(f1, 2)).await.unwrap();
    assert_eq!(index.count(a).await.unwrap(), 6);
    let in_f1 = Scope { files: Some(vec![f1]), ..Scope::default() };
    let mut found = ids(&dense_hits(&index, a, &in_f1).await);
    found.sort();
    let mut want = vec![f1_chunks[0].id, f1_chunks[1].id];
    want.sort();
    assert_eq!(found, want);

    // A cannot delete B's point by id; an empty id list is a no-op.
    index.delete(a, DeleteTarget::Points(vec![b_chunk.id])).await.unwrap();
    index.delete(a, DeleteTarget::Points(Vec::new())).await.unwrap();
    assert_eq!(index.count(b).await.unwrap(), 1);
    assert_eq!(index.count(a).await.unwrap(), 6);

    index.delete(a, DeleteTarget::Points(vec![article_chunks[0].id])).await.unwrap();
    assert_eq!(index.count(a).await.unwrap(), 5);

    index.delete(a, DeleteTarget::Article(article)).await.unwrap();
    assert_eq!(index.count(a).await.unwrap(), 4);

    index.delete(a, DeleteTarget::Category(c2)).await.unwrap();
    assert_eq!(index.count(a).await.unwrap(), 3);

    index.delete(a, DeleteTarget::File(f1)).await.unwrap();
    assert_eq!(ids(&dense_hits(&index, a, &Scope::default()).await), vec![f3_chunk.id]);
    assert_eq!(index.count(b).await.unwrap(), 1);

    index.delete(a, DeleteTarget::Company).await.unwrap();
    assert_eq!(index.count(a).await.unwrap(), 0);
    assert_eq!(ids(&dense_hits(&index, b, &Scope::default()).await), vec![b_chunk.id]);
}

/// A unit vector at `angle` radians in the first two dimensions.
fn at(angle: f32) -> [f32; DIMS] {
    [angle.cos(), angle.sin(), 0.0, 0.0]
}

fn dense_ids(points: &[ScoredPoint]) -> Vec<Uuid> {
    points.iter().map(|p| scored_chunk(p.clone()).unwrap().id).collect()
}

#[tokio::test]
async fn a_scope_covering_most_of_the_shard_is_searched_unfiltered_and_verified_inside_the_company() {
    let dir = TempDir::new();
    let index = EdgeVectorIndex::open(&dir.0, DIMS).unwrap();
    let (a, b) = (company(), company());
    let category = Uuid::new_v4();
    // A has 20 points, B 2 and global knowledge 1; B's points are the nearest to the query.
    let a_points: Vec<IndexedChunk> = (0..20)
        .map(|i| {
            let meta = Meta { category: Some(category), index: i, ..Meta::default() };
            chunk(a, meta, at(0.2 + i as f32 * 0.05), &[], "a")
        })
        .collect();
    index.upsert(a, a_points.clone()).await.unwrap();
    let b_points: Vec<IndexedChunk> = (0..2)
        .map(|i| chunk(b, Meta { category: Some(category), index: i, ..Meta::default() }, at(0.0), &[], "b"))
        .collect();
    index.upsert(b, b_points.clone()).await.unwrap();
    let global = chunk(CompanyId::GLOBAL, Meta::default(), at(0.1), &[], "g");
    index.upsert(CompanyId::GLOBAL, vec![global.clone()]).await.unwrap();

    let scope = Scope { categories: Some(vec![category]), files: None, include_global: true };
    let shard = index.shard.read().unwrap();
    let search = |company: CompanyId| {
        let filter = search_filter(company, &scope).unwrap().unwrap();
        dense_search(&shard, VectorInternal::Dense(at(0.0).to_vec()), filter.clone(), 5).unwrap()
    };
    let (hits, plan) = search(a);
    assert_eq!(plan, DensePlan::Verified);
    // The global point, then A's nearest; none of B's, though they are nearer.
    let mut want = vec![global.id];
    want.extend(a_points[..4].iter().map(|p| p.id));
    assert_eq!(dense_ids(&hits), want);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    // The same points the filtered search finds.
    let filter = search_filter(a, &scope).unwrap().unwrap();
    let filtered = shard.query(nearest(DENSE, VectorInternal::Dense(at(0.0).to_vec()), Some(filter), 5)).unwrap();
    assert_eq!(dense_ids(&filtered), want);

    // B's scope covers 3 of 23 points: the graph search checks the filter itself.
    let (hits, plan) = search(b);
    assert_eq!(plan, DensePlan::Filtered);
    let mut found = dense_ids(&hits);
    found.sort();
    let mut want = vec![b_points[0].id, b_points[1].id, global.id];
    want.sort();
    assert_eq!(found, want);
}

#[tokio::test]
async fn a_verified_search_whose_candidates_fail_the_filter_searches_with_it() {
    let dir = TempDir::new();
    let index = EdgeVectorIndex::open(&dir.0, DIMS).unwrap();
    let a = company();
    let (near, far) = (Uuid::new_v4(), Uuid::new_v4());
    let near_points: Vec<IndexedChunk> = (0..10)
        .map(|i| chunk(a, Meta { category: Some(near), index: i, ..Meta::default() }, at(0.01 * i as f32), &[], "n"))
        .collect();
    let far_points: Vec<IndexedChunk> = (0..3)
        .map(|i| chunk(a, Meta { category: Some(far), index: i, ..Meta::default() }, at(1.5), &[], "f"))
        .collect();
    let mut all = near_points.clone();
    all.extend(far_points.clone());
    index.upsert(a, all).await.unwrap();

    let scope = Scope { categories: Some(vec![far]), files: None, include_global: false };
    let filter = search_filter(a, &scope).unwrap().unwrap();
    let shard = index.shard.read().unwrap();
    // Three candidates, all in the other category: none passes, so the filter goes into
    // the graph search.
    let (hits, plan) =
        verified_dense_search(&shard, VectorInternal::Dense(at(0.0).to_vec()), filter.clone(), 3, 3, 13).unwrap();
    assert_eq!(plan, DensePlan::VerifiedThenFiltered);
    let mut found = dense_ids(&hits);
    found.sort();
    let mut want: Vec<Uuid> = far_points.iter().map(|p| p.id).collect();
    want.sort();
    assert_eq!(found, want);

    // Candidates covering the whole shard: what passes is all there is, even if it is
    // fewer than asked for.
    let (hits, plan) =
        verified_dense_search(&shard, VectorInternal::Dense(at(0.0).to_vec()), filter, 5, 13, 13).unwrap();
    assert_eq!(plan, DensePlan::Verified);
    assert_eq!(hits.len(), 3);
}

#[tokio::test]
async fn a_new_shard_keeps_an_int8_copy_of_the_dense_vector() {
    let dir = TempDir::new();
    let index = EdgeVectorIndex::open(&dir.0, DIMS).unwrap();
    let shard = index.shard.read().unwrap();
    let config = shard.config();
    let quantization = config.vectors.get(DENSE).and_then(|v| v.quantization_config.clone());
    assert!(matches!(quantization, Some(QuantizationConfig::Scalar(_))), "dense vector quantization: {quantization:?}");
}

#[tokio::test]
async fn filter_fields_get_uuid_indexes_also_in_a_shard_indexed_as_keywords_before() {
    let dir = TempDir::new();
    let a = company();
    let category = Uuid::new_v4();
    let point = chunk(a, Meta { category: Some(category), ..Meta::default() }, [1.0, 0.0, 0.0, 0.0], &[], "p");
    {
        // A shard as an earlier version left it: keyword indexes.
        std::fs::create_dir_all(&dir.0).unwrap();
        let shard = EdgeShard::new(&dir.0, edge_config(DIMS)).unwrap();
        for field in [COMPANY_ID, CATEGORY_ID] {
            let index = CreateIndex {
                field_name: key(field).unwrap(),
                field_schema: Some(PayloadFieldSchema::FieldType(PayloadSchemaType::Keyword)),
            };
            shard.update(UpdateOperation::FieldIndexOperation(FieldIndexOperations::CreateIndex(index))).unwrap();
        }
        apply(
            &shard,
            UpdateOperation::PointOperation(PointOperations::UpsertPoints(PointInsertOperations::PointsList(vec![
                to_point(a, DIMS, point.clone()).unwrap(),
            ]))),
        )
        .unwrap();
    }
    let index = EdgeVectorIndex::open(&dir.0, DIMS).unwrap();
    {
        let shard = index.shard.read().unwrap();
        let schema = shard.info().payload_schema;
        for field in [COMPANY_ID, FILE_ID, ARTICLE_ID, CATEGORY_ID] {
            let info = schema.get(&key(field).unwrap()).unwrap_or_else(|| panic!("{field} is not indexed"));
            assert_eq!(info.data_type, PayloadSchemaType::Uuid, "{field}");
        }
    }
    let scope = Scope { categories: Some(vec![category]), files: None, include_global: true };
    assert_eq!(ids(&dense_hits(&index, a, &scope).await), vec![point.id]);
    let other = Scope { categories: Some(vec![Uuid::new_v4()]), files: None, include_global: true };
    assert!(dense_hits(&index, a, &other).await.is_empty());
}

#[tokio::test]
async fn reopening_keeps_the_data() {
    let dir = TempDir::new();
    let a = company();
    let first = chunk(a, Meta::default(), [1.0, 0.0, 0.0, 0.0], &[(7, 1.0)], "first");
    let second = chunk(a, Meta { index: 1, ..Meta::default() }, [0.0, 1.0, 0.0, 0.0], &[(8, 1.0)], "second");
    {
        let index = EdgeVectorIndex::open(&dir.0, DIMS).unwrap();
        index.upsert(a, vec![first.clone(), second.clone()]).await.unwrap();
        index.delete(a, DeleteTarget::Points(vec![second.id])).await.unwrap();
    }

    let index = EdgeVectorIndex::open(&dir.0, DIMS).unwrap();
    assert_eq!(index.count(a).await.unwrap(), 1);
    let hits = index.search(a, &Scope::default(), QueryVector::Dense(&[1.0, 0.0, 0.0, 0.0]), 5).await.unwrap();
    assert_eq!(ids(&hits), vec![first.id]);
    let query = SparseVector { indices: vec![7], values: vec![1.0] };
    let hits = index.search(a, &Scope::default(), QueryVector::Sparse(&query), 5).await.unwrap();
    assert_eq!(ids(&hits), vec![first.id]);

    // Writes after a reopen still win over the stored versions (WAL numbering continues).
    let mut replaced = first.clone();
    replaced.dense = vec![0.0, 1.0, 0.0, 0.0];
    index.upsert(a, vec![replaced.clone()]).await.unwrap();
    let hits = index.search(a, &Scope::default(), QueryVector::Dense(&[0.0, 1.0, 0.0, 0.0]), 5).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].score > 0.99, "the replacing vector is the one stored: {hits:?}");

    // Payload indexes survive (re-created) and filters still work after the reopen.
    assert!(dense_hits(&index, company(), &Scope::default()).await.is_empty());
    drop(index);

    let index = EdgeVectorIndex::open(&dir.0, DIMS).unwrap();
    let hits = index.search(a, &Scope::default(), QueryVector::Dense(&[1.0, 0.0, 0.0, 0.0]), 5).await.unwrap();
    assert!(hits.first().is_some_and(|hit| hit.score.abs() < 0.01), "still the replacing vector: {hits:?}");
    assert!(index.optimize().await.is_ok());
    assert_eq!(index.count(a).await.unwrap(), 1);
    drop(index);

    let err = EdgeVectorIndex::open(&dir.0, 8).err();
    assert!(matches!(err, Some(VectorError::Dimensions { got: 8, want: 4 })), "{err:?}");
}
