//! One behaviour contract for every `VectorIndex`: run against qdrant-edge always, and against
//! a Qdrant server by `scripts/test-qdrant.sh` (an ignored test: it needs `QDRANT_URL`).

use chatapp::knowledge::lexical::LexicalEncoder;
use chatapp::knowledge::vector::{
    chunk_point_id, ChunkPayload, DeleteTarget, IndexedChunk, QueryVector, Scope, VectorIndex,
};
use chatapp::knowledge::vector_edge::EdgeVectorIndex;
use chatapp::knowledge::vector_qdrant::QdrantServerIndex;
use chatapp::tenant::CompanyId;
use uuid::Uuid;

fn company() -> CompanyId {
    chatapp::auth::worker_ctx(Uuid::new_v4()).company_id().unwrap()
}

fn point(company: CompanyId, file: Uuid, category: Uuid, index: i32, dense: [f32; 4], text: &str) -> IndexedChunk {
    IndexedChunk {
        id: chunk_point_id(file, index),
        dense: dense.to_vec(),
        sparse: LexicalEncoder::default().document(text),
        payload: ChunkPayload {
            company_id: company.as_uuid(),
            file_id: Some(file),
            article_id: None,
            category_id: Some(category),
            chunk_index: index,
            text: text.into(),
        },
    }
}

async fn contract(index: &dyn VectorIndex) {
    let (a, b) = (company(), company());
    let (fa, ca, fb) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    index
        .upsert(
            a,
            vec![
                point(a, fa, ca, 0, [1.0, 0.0, 0.0, 0.0], "refunds take five days"),
                point(a, fa, ca, 1, [0.0, 1.0, 0.0, 0.0], "shipping with DHL"),
                point(a, fa, ca, 2, [0.0, 0.0, 1.0, 0.0], "opening hours monday"),
            ],
        )
        .await
        .unwrap();
    index.upsert(b, vec![point(b, fb, ca, 0, [1.0, 0.0, 0.0, 0.0], "refunds for b")]).await.unwrap();
    // Writing another company's payload under this company is refused.
    assert!(index.upsert(b, vec![point(a, fa, ca, 9, [1.0; 4], "sneaky")]).await.is_err());
    assert_eq!(index.count(a).await.unwrap(), 3);
    assert_eq!(index.count(b).await.unwrap(), 1);

    let dense = [0.9, 0.1, 0.0, 0.0];
    let hits = index.search(a, &Scope::default(), QueryVector::Dense(&dense), 10).await.unwrap();
    assert_eq!(hits[0].id, chunk_point_id(fa, 0));
    assert!(hits.iter().all(|h| (0..3).any(|i| h.id == chunk_point_id(fa, i))), "only A's points: {hits:?}");
    let q = LexicalEncoder::default().query("refund");
    let hits = index.search(a, &Scope::default(), QueryVector::Sparse(&q), 10).await.unwrap();
    assert_eq!(hits[0].id, chunk_point_id(fa, 0));
    // B, even naming A's file and category, sees only its own point.
    let forged = Scope { categories: Some(vec![ca]), files: Some(vec![fa]), include_global: false };
    assert!(index.search(b, &forged, QueryVector::Dense(&dense), 10).await.unwrap().is_empty());
    let hits = index.search(b, &Scope::default(), QueryVector::Sparse(&q), 10).await.unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![chunk_point_id(fb, 0)]);

    // Re-upserting the same ids replaces (no duplicates); deletes stay inside the company.
    index.upsert(a, vec![point(a, fa, ca, 0, [1.0, 0.0, 0.0, 0.0], "refunds take five days")]).await.unwrap();
    assert_eq!(index.count(a).await.unwrap(), 3);
    index.delete(b, DeleteTarget::File(fa)).await.unwrap();
    index.delete(b, DeleteTarget::Points(vec![chunk_point_id(fa, 1)])).await.unwrap();
    assert_eq!(index.count(a).await.unwrap(), 3);
    index.delete(a, DeleteTarget::FileFrom(fa, 1)).await.unwrap();
    assert_eq!(index.count(a).await.unwrap(), 1);
    index.delete(a, DeleteTarget::Company).await.unwrap();
    assert_eq!(index.count(a).await.unwrap(), 0);
    assert_eq!(index.count(b).await.unwrap(), 1);
    index.delete(b, DeleteTarget::Category(ca)).await.unwrap();
    assert_eq!(index.count(b).await.unwrap(), 0);
}

#[tokio::test]
async fn edge_index_meets_the_contract() {
    let dir = std::env::temp_dir().join(format!("chatapp-edge-{}", Uuid::new_v4()));
    let index = EdgeVectorIndex::open(&dir, 4).unwrap();
    contract(&index).await;
    // Optimised (segments merged, HNSW where a segment is big enough), it still behaves.
    index.optimize().await.unwrap();
    contract(&index).await;
    drop(index);
    let _ = std::fs::remove_dir_all(dir);
}

/// The backend template.yaml deploys. Needs a running server: `scripts/test-qdrant.sh`.
#[tokio::test]
#[ignore = "needs QDRANT_URL (a running Qdrant server): run scripts/test-qdrant.sh"]
async fn qdrant_server_index_meets_the_contract() {
    let url = std::env::var("QDRANT_URL").expect("QDRANT_URL (e.g. http://127.0.0.1:6334)");
    let collection = format!("chatapp_test_{}", Uuid::new_v4().simple());
    let api_key = std::env::var("QDRANT_API_KEY").ok();
    let index = QdrantServerIndex::connect(&url, api_key.as_deref(), &collection, 4).await.unwrap();
    contract(&index).await;
}
