//! What a payload filter costs a graph search on qdrant-edge, by index type and filter shape:
//! the evidence for the edge index's UUID payload indexes and its filter layout.
//!
//! cargo bench -p chatapp-tests --bench vector_filter -- [--points N] [--queries N]
//! cargo bench -p chatapp-tests --bench vector_filter -- --corpus <corpus.jsonl> --query-texts <queries.jsonl>
//!     [--points N] [--queries N]
//!
//! Builds one shard per payload index type (keyword, UUID) with N random 384-d vectors of one
//! company and category, optimised into HNSW segments with the production quantisation, then
//! times top-40 searches (the chat turn's candidate count) without a filter and with the
//! filters a turn can send. Every filter matches every point, so each search returns the same
//! neighbours and the difference is the cost of checking the filter on the points visited.
//! The last row per index type is what the edge index does with such a scope: the graph
//! searched without the filter, and the filter applied to the candidates. A second table has
//! that unfiltered graph search at smaller beam widths, with its recall against exact search.
//!
//! With `--corpus` (BEIR format, e.g. SciFact) the vectors are real: the corpus's sentences and
//! the queries embedded by the local model (`EMBEDDING_MODEL_DIR`, as `scripts/bench-scifact.sh`
//! sets it; the embeddings are kept in the bench's temporary directory for the next run), and
//! only the beam-width table is printed: the evidence for the dense search's beam width.

use std::collections::HashMap;
use std::time::Instant;

use qdrant_edge::{
    Condition, CreateIndex, Distance, EdgeConfig, EdgeShard, EdgeVectorParams, FieldCondition, FieldIndexOperations,
    Filter, JsonPath, Match, NamedQuery, Payload, PayloadFieldSchema, PayloadSchemaType, PointId,
    PointInsertOperations, PointOperations, PointStructPersisted, QuantizationConfig, QuantizationSearchParams,
    QueryEnum, QueryRequest, ScoringQuery, SearchParams, UpdateOperation, VectorInternal, VectorStructInternal,
    VectorStructPersisted, WithPayloadInterface, WithVector,
};
use uuid::Uuid;

use chatapp::knowledge::vector_edge::{dense_search, DensePlan};

const DIMS: usize = 384;
const CANDIDATES: usize = 40;

fn vector(seed: u64) -> Vec<f32> {
    chatapp_tests::pseudo_random_unit_vector(seed, DIMS)
}

fn key(field: &str) -> JsonPath {
    field.parse().expect("a valid payload key")
}

fn eq(field: &str, value: Uuid) -> Condition {
    Condition::Field(FieldCondition::new_match(key(field), Match::from(value.to_string())))
}

fn any(field: &str, values: &[Uuid]) -> Condition {
    let values: Vec<String> = values.iter().map(Uuid::to_string).collect();
    Condition::Field(FieldCondition::new_match(key(field), Match::from(values)))
}

fn arg(name: &str, default: usize) -> usize {
    chatapp_tests::bench_arg(name).map_or(default, |v| v.parse().expect("a number"))
}

fn shard(
    dir: &std::path::Path,
    schema: PayloadSchemaType,
    vectors: &[Vec<f32>],
    company: Uuid,
    category: Uuid,
) -> EdgeShard {
    let int8: QuantizationConfig = serde_json::from_value(serde_json::json!(
        {"scalar": {"type": "int8", "quantile": chatapp::knowledge::vector::SCALAR_QUANTILE, "always_ram": true}}
    ))
    .expect("a valid quantisation config");
    let config = EdgeConfig {
        vectors: HashMap::from([(
            "dense".to_string(),
            EdgeVectorParams::builder(DIMS, Distance::Cosine).quantization_config(int8).build(),
        )]),
        ..EdgeConfig::default()
    };
    std::fs::create_dir_all(dir).unwrap();
    let shard = EdgeShard::new(dir, config).unwrap();
    for field in ["company_id", "category_id", "file_id"] {
        let index = CreateIndex { field_name: key(field), field_schema: Some(PayloadFieldSchema::FieldType(schema)) };
        shard.update(UpdateOperation::FieldIndexOperation(FieldIndexOperations::CreateIndex(index))).unwrap();
    }
    let file = Uuid::new_v4();
    for batch in 0..vectors.len().div_ceil(1000) {
        let batch: Vec<PointStructPersisted> = (batch * 1000..((batch + 1) * 1000).min(vectors.len()))
            .map(|i| {
                let serde_json::Value::Object(payload) = serde_json::json!({
                    "company_id": company, "category_id": category, "file_id": file, "chunk_index": i,
                    "text": format!("Article {i}: some text about what matters to the customer."),
                }) else {
                    unreachable!("a JSON object")
                };
                PointStructPersisted {
                    id: PointId::Uuid(Uuid::from_u128(i as u128 + 1)),
                    vector: VectorStructPersisted::from(VectorStructInternal::Named(HashMap::from([(
                        "dense".to_string(),
                        VectorInternal::Dense(vectors[i].clone()),
                    )]))),
                    payload: Some(Payload(payload)),
                }
            })
            .collect();
        shard
            .update(UpdateOperation::PointOperation(PointOperations::UpsertPoints(PointInsertOperations::PointsList(
                batch,
            ))))
            .unwrap();
    }
    while shard.optimize().unwrap() {}
    shard
}

fn main() {
    let points = arg("--points", 100_000);
    let queries = arg("--queries", 1_000);
    if let (Some(corpus), Some(query_texts)) =
        (chatapp_tests::bench_arg("--corpus"), chatapp_tests::bench_arg("--query-texts"))
    {
        return real_vectors(&corpus, &query_texts, points, queries);
    }
    let (company, category) = (Uuid::new_v4(), Uuid::new_v4());
    let filters: Vec<(&str, Option<Filter>)> = vec![
        ("no filter", None),
        ("company", Some(Filter { must: Some(vec![eq("company_id", company)]), ..Filter::new() })),
        (
            "company or global, category or global (nested)",
            Some(Filter {
                must: Some(vec![
                    any("company_id", &[company, Uuid::nil()]),
                    Condition::Filter(Filter {
                        should: Some(vec![any("category_id", &[category]), eq("company_id", Uuid::nil())]),
                        ..Filter::new()
                    }),
                ]),
                ..Filter::new()
            }),
        ),
        (
            "company or global, category or global (top level; the turn's)",
            Some(Filter {
                must: Some(vec![any("company_id", &[company, Uuid::nil()])]),
                should: Some(vec![any("category_id", &[category]), eq("company_id", Uuid::nil())]),
                ..Filter::new()
            }),
        ),
    ];
    let queries: Vec<Vec<f32>> = (0..queries as u64).map(|i| vector(10_000_000 + i)).collect();
    let vectors: Vec<Vec<f32>> = (0..points as u64).map(vector).collect();
    println!("{points} points, {} queries, top {CANDIDATES}", queries.len());
    println!("| payload index | filter | p50 | p99 |");
    println!("|---|---|---|---|");
    for (name, schema) in [("keyword", PayloadSchemaType::Keyword), ("uuid", PayloadSchemaType::Uuid)] {
        let dir = std::env::temp_dir().join(format!("chatapp-vector-filter-{}", Uuid::new_v4()));
        let shard = shard(&dir, schema, &vectors, company, category);
        for (label, filter) in &filters {
            let (p50, p99) = time_queries(&queries, |_, q| {
                let request = nearest(q, filter.clone(), None);
                let started = Instant::now();
                let hits = shard.query(request).unwrap();
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                assert_eq!(hits.len(), CANDIDATES);
                ms
            });
            println!("| {name} | {label} | {p50:.2} ms | {p99:.2} ms |");
        }
        // The edge index's plan for a scope covering most of the shard (here all of it): the
        // graph searched without the filter, the turn's filter applied to the candidates.
        let turn_filter = filters.last().and_then(|(_, f)| f.clone()).expect("the turn's filter");
        let (p50, p99) = time_queries(&queries, |_, q| {
            let started = Instant::now();
            let (hits, plan) = dense_search(&shard, VectorInternal::Dense(q.to_vec()), turn_filter.clone(), CANDIDATES)
                .expect("a search");
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            assert_eq!((hits.len(), plan), (CANDIDATES, DensePlan::Verified));
            ms
        });
        println!(
            "| {name} | the turn's, unfiltered search verified (the edge index's plan) | {p50:.2} ms | {p99:.2} ms |"
        );
        if schema == PayloadSchemaType::Uuid {
            beam_widths(&shard, &queries);
        }
        drop(shard);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The beam-width table on real embeddings: up to `points` sentences of a BEIR corpus and up
/// to `queries` of its queries, embedded by the local model.
fn real_vectors(corpus: &str, query_texts: &str, points: usize, queries: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let real = runtime.block_on(chatapp_tests::SentenceEmbeddings::load(
        corpus,
        query_texts,
        points,
        queries,
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
    ));
    println!(
        "{} sentences of {corpus} and {} of its queries, embedded by the local model; top {CANDIDATES}",
        real.sentences.len(),
        real.queries.len()
    );
    let dir = std::env::temp_dir().join(format!("chatapp-vector-filter-{}", Uuid::new_v4()));
    let shard = shard(&dir, PayloadSchemaType::Uuid, &real.sentences, Uuid::new_v4(), Uuid::new_v4());
    beam_widths(&shard, &real.queries);
    drop(shard);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The unfiltered graph search (the first step of the edge index's plan) at the default beam
/// width (`hnsw_ef` = `ef_construct`, 100) and smaller ones: time, and recall@40 and @10
/// against an exact search on the full vectors. Random 384-d vectors are the worst case for a
/// graph index (a point's true neighbours are barely nearer than the rest): their rows tell
/// whether the int8 copies cost recall and how the time falls with the beam. Which beam is safe
/// for real knowledge, the rows on real embeddings (`--corpus`) tell.
fn beam_widths(shard: &EdgeShard, queries: &[Vec<f32>]) {
    let search = |q: &[f32], params: SearchParams| {
        shard.query(nearest(q, None, Some(params))).unwrap().into_iter().map(|p| p.id).collect::<Vec<PointId>>()
    };
    let full = || Some(QuantizationSearchParams { ignore: true, ..Default::default() });
    let exact: Vec<Vec<PointId>> = queries
        .iter()
        .map(|q| search(q, SearchParams { exact: true, quantization: full(), ..Default::default() }))
        .collect();
    println!();
    println!("| unfiltered graph search, hnsw_ef | p50 | p99 | recall@{CANDIDATES} against exact | recall@10 |");
    println!("|---|---|---|---|---|");
    let rows = [
        ("default (100), full vectors only", SearchParams { quantization: full(), ..Default::default() }),
        ("default (100)", SearchParams::default()),
        ("80", SearchParams { hnsw_ef: Some(80), ..Default::default() }),
        ("64", SearchParams { hnsw_ef: Some(64), ..Default::default() }),
        ("48", SearchParams { hnsw_ef: Some(48), ..Default::default() }),
        ("32", SearchParams { hnsw_ef: Some(32), ..Default::default() }),
        ("exact on the int8 copies, rescored", SearchParams { exact: true, ..Default::default() }),
    ];
    for (ef, params) in rows {
        let (mut found, mut found_top10) = (0usize, 0usize);
        let (p50, p99) = time_queries(queries, |i, q| {
            let started = Instant::now();
            let hits = search(q, params);
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            found += hits.iter().filter(|id| exact[i].contains(id)).count();
            found_top10 += hits.iter().take(10).filter(|id| exact[i][..10].contains(id)).count();
            ms
        });
        let recall = found as f64 / (queries.len() * CANDIDATES) as f64;
        let recall10 = found_top10 as f64 / (queries.len() * 10) as f64;
        println!("| {ef} | {p50:.2} ms | {p99:.2} ms | {recall:.3} | {recall10:.3} |");
    }
}

/// A top-[`CANDIDATES`] search of the dense vector: ids and scores, no payload.
fn nearest(q: &[f32], filter: Option<Filter>, params: Option<SearchParams>) -> QueryRequest {
    QueryRequest {
        prefetches: Vec::new(),
        query: Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
            query: VectorInternal::Dense(q.to_vec()),
            using: Some("dense".to_string()),
        }))),
        filter,
        score_threshold: None,
        limit: CANDIDATES,
        offset: 0,
        params,
        with_vector: WithVector::Bool(false),
        with_payload: WithPayloadInterface::Bool(false),
    }
}

/// p50 and p99 of `search` over `queries` (given each query's index); `search` times its own
/// call (not the request set-up).
fn time_queries(queries: &[Vec<f32>], mut search: impl FnMut(usize, &[f32]) -> f64) -> (f64, f64) {
    let mut times: Vec<f64> = queries.iter().enumerate().map(|(i, q)| search(i, q)).collect();
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    (at(0.5), at(0.99))
}
