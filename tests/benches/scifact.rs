//! Retrieval quality and speed on SciFact (BEIR format), through the real pipeline: every
//! abstract is uploaded as one knowledge file of one tenant through the `knowledge-files`
//! handler, the `ingest-worker` drains the Postgres queue (local MiniLM embeddings, qdrant-edge
//! on disk), and every query goes through the knowledge search service.
//!
//! cargo bench -p chatapp-tests --bench scifact -- <corpus.jsonl> <queries.jsonl> <qrels.tsv>
//!     [--limit N] [--chunk-size N] [--overlap N]
//!
//! Prints nDCG@10 and Recall@100 for dense-only, lexical-only and hybrid retrieval; ingestion
//! throughput with the local model and with a no-op embedder (everything but embedding); and
//! search latency p50/p99 (with and without the query embedding).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatapp::knowledge::embed::{EmbedError, Embedder};
use chatapp::knowledge::service::{self, SearchMode, SearchRequest};
use chatapp::knowledge::vector::Scope;
use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{Req, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

struct Args {
    corpus: String,
    queries: String,
    qrels: String,
    limit: Option<usize>,
    chunk_size: usize,
    overlap: usize,
}

fn args() -> Args {
    let mut positional = Vec::new();
    let mut named: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(a) = it.next() {
        if let Some(name) = a.strip_prefix("--") {
            named.insert(name.to_string(), it.next().unwrap_or_else(|| panic!("--{name} needs a value")));
        } else {
            positional.push(a);
        }
    }
    if positional.len() != 3 {
        eprintln!(
            "usage: scifact <corpus.jsonl> <queries.jsonl> <qrels.tsv> [--limit N] [--chunk-size N] [--overlap N]"
        );
        std::process::exit(2);
    }
    let num = |k: &str, d: usize| named.get(k).map(|v| v.parse().expect("a number")).unwrap_or(d);
    Args {
        corpus: positional[0].clone(),
        queries: positional[1].clone(),
        qrels: positional[2].clone(),
        limit: named.get("limit").map(|v| v.parse().expect("a number")),
        chunk_size: num("chunk-size", 2000),
        overlap: num("overlap", 200),
    }
}

struct Doc {
    id: String,
    body: String,
}

/// Query id → the ids of its relevant documents.
type Qrels = HashMap<String, HashSet<String>>;

fn load(a: &Args) -> (Vec<Doc>, Vec<(String, String)>, Qrels) {
    let mut docs: Vec<Doc> = std::fs::read_to_string(&a.corpus)
        .expect("corpus")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let title = v["title"].as_str().unwrap_or_default();
            let text = v["text"].as_str().unwrap_or_default();
            Doc { id: v["_id"].as_str().unwrap().to_string(), body: format!("# {title}\n\n{text}\n") }
        })
        .collect();
    if let Some(n) = a.limit {
        docs.truncate(n);
    }
    let mut qrels: Qrels = HashMap::new();
    for line in std::fs::read_to_string(&a.qrels).expect("qrels").lines().skip(1) {
        let mut f = line.split('\t');
        let (q, d, s) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap_or("1"));
        if s.trim().parse::<i32>().unwrap_or(0) > 0 {
            qrels.entry(q.to_string()).or_default().insert(d.to_string());
        }
    }
    let present: HashSet<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    for rel in qrels.values_mut() {
        rel.retain(|d| present.contains(d.as_str()));
    }
    qrels.retain(|_, rel| !rel.is_empty());
    let queries = std::fs::read_to_string(&a.queries)
        .expect("queries")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["_id"].as_str().unwrap().to_string(), v["text"].as_str().unwrap().to_string())
        })
        .filter(|(id, _)| qrels.contains_key(id))
        .collect();
    (docs, queries, qrels)
}

/// Everything but the model: a fixed unit vector per text.
struct NoEmbedding(usize);

#[async_trait::async_trait]
impl Embedder for NoEmbedding {
    fn model(&self) -> &str {
        "none"
    }
    fn dimensions(&self) -> usize {
        self.0
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut v = vec![0.0; self.0];
        v[0] = 1.0;
        Ok(vec![v; texts.len()])
    }
}

/// Uploads every document through the handlers and drains the ingest worker; returns the
/// file id → document id map and the wall time of upload + ingestion.
async fn ingest(env: &TestEnv, t: &Tenant, docs: &[Doc], a: &Args) -> (HashMap<Uuid, String>, Duration) {
    env.owner()
        .await
        .execute(
            "UPDATE chatapp_companies SET settings = jsonb_build_object('ragConfig',
                jsonb_build_object('chunkSize', $2::int, 'overlapSize', $3::int)) WHERE id = $1",
            &[&t.company_id, &(a.chunk_size as i32), &(a.overlap as i32)],
        )
        .await
        .unwrap();
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::post("/admin/knowledge/categories").token(&t.admin_token).json(json!({"name": "SciFact"})),
        )
        .await;
    let cat = r.body["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    let mut files = HashMap::new();
    for (i, d) in docs.iter().enumerate() {
        let r = env
            .send(
                HttpFunction::KnowledgeFiles,
                Req::post("/admin/knowledge/files").token(&t.admin_token).json(json!({
                    "filename": format!("{}.md", d.id), "category_id": cat, "size": d.body.len()
                })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id: Uuid = r.body["file"]["id"].as_str().unwrap().parse().unwrap();
        let r = env
            .send(
                HttpFunction::KnowledgeFiles,
                Req::put(&format!("/admin/knowledge/files/{id}/content"))
                    .token(&t.admin_token)
                    .bytes(d.body.as_bytes(), "text/markdown"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        files.insert(id, d.id.clone());
        // Drain as we go, as a deployed worker would keep up with uploads.
        if (i + 1) % 50 == 0 {
            chatapp_functions::ingest_worker::drain(&env.deps).await.unwrap();
        }
    }
    let drained = chatapp_functions::ingest_worker::drain(&env.deps).await.unwrap();
    assert_eq!(drained.failed, 0);
    let elapsed = started.elapsed();
    let indexed = env
        .count(&format!("chatapp_knowledge_files WHERE status = 'indexed' AND company_id = '{}'", t.company_id))
        .await;
    assert_eq!(indexed as usize, docs.len(), "every document indexed");
    (files, elapsed)
}

fn ndcg_at_10(ranked: &[String], relevant: &HashSet<String>) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .filter(|(_, d)| relevant.contains(*d))
        .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(10)).map(|i| 1.0 / ((i + 2) as f64).log2()).sum();
    dcg / ideal
}

fn recall_at_100(ranked: &[String], relevant: &HashSet<String>) -> f64 {
    ranked.iter().take(100).filter(|d| relevant.contains(*d)).count() as f64 / relevant.len() as f64
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let a = args();
    let (docs, queries, qrels) = load(&a);
    println!(
        "SciFact: {} documents, {} queries with relevance judgements; chunk size {} / overlap {} characters",
        docs.len(),
        queries.len(),
        a.chunk_size,
        a.overlap
    );

    // 1. Pipeline without the model: uploads, queue, extraction, chunking, BM25, vectors, rows.
    {
        let mut env = TestEnv::new().await;
        env.deps.embedder = Arc::new(NoEmbedding(384));
        let t = env.company("nomodel", "enterprise").await;
        let (_, took) = ingest(&env, &t, &docs, &a).await;
        println!(
            "ingestion without embedding: {} docs in {:.1} s = {:.0} docs/s",
            docs.len(),
            took.as_secs_f64(),
            docs.len() as f64 / took.as_secs_f64()
        );
    }

    // 2. The real thing: local all-MiniLM-L6-v2 on this machine's cores.
    let env = TestEnv::new().await;
    let t = env.company("scifact", "enterprise").await;
    env.deps.embedder.embed(&["warm-up".to_string()]).await.expect("the local model loads");
    // The model alone: one batched call against one call per text.
    let sample: Vec<String> = docs.iter().take(64).map(|d| d.body.clone()).collect();
    let started = Instant::now();
    env.deps.embedder.embed(&sample).await.unwrap();
    let batched = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for text in &sample {
        env.deps.embedder.embed(std::slice::from_ref(text)).await.unwrap();
    }
    let single = started.elapsed().as_secs_f64();
    println!(
        "local model alone, {} abstracts (truncated to 256 tokens): batched {:.1} texts/s, one at a time {:.1} texts/s",
        sample.len(),
        sample.len() as f64 / batched,
        sample.len() as f64 / single
    );
    let (files, took) = ingest(&env, &t, &docs, &a).await;
    let chunks = env.count(&format!("chatapp_knowledge_chunks WHERE company_id = '{}'", t.company_id)).await;
    println!(
        "ingestion with local embeddings: {} docs ({} chunks) in {:.1} s = {:.1} docs/s",
        docs.len(),
        chunks,
        took.as_secs_f64(),
        docs.len() as f64 / took.as_secs_f64()
    );

    let ctx = chatapp::auth::worker_ctx(t.company_id);
    let mut embeddings = Vec::with_capacity(queries.len());
    let mut full_latency = Vec::new();
    for (_, text) in &queries {
        let request = SearchRequest {
            query: text.clone(),
            mode: SearchMode::Hybrid,
            max_results: 10,
            relevance_threshold: 0.0,
            scope: Scope::default(),
        };
        let started = Instant::now();
        let hits = service::search(&env.deps, &ctx, &request).await.unwrap();
        full_latency.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(!hits.is_empty());
        embeddings.push(env.deps.embedder.embed(std::slice::from_ref(text)).await.unwrap().remove(0));
    }

    println!("\n| retrieval | nDCG@10 | Recall@100 | search p50 | search p99 |");
    println!("|---|---|---|---|---|");
    for mode in [SearchMode::Dense, SearchMode::Lexical, SearchMode::Hybrid] {
        let (mut ndcg, mut recall) = (0.0, 0.0);
        let mut latency = Vec::new();
        for ((qid, text), emb) in queries.iter().zip(&embeddings) {
            // Quality: enough chunks for 100 distinct documents.
            let request = SearchRequest {
                query: text.clone(),
                mode,
                max_results: 300,
                relevance_threshold: 0.0,
                scope: Scope::default(),
            };
            let hits = service::search_with_embedding(&env.deps, &ctx, &request, Some(emb)).await.unwrap();
            let mut seen = HashSet::new();
            let ranked: Vec<String> = hits
                .iter()
                .filter_map(|h| h.chunk.file_id.and_then(|f| files.get(&f)).cloned())
                .filter(|d| seen.insert(d.clone()))
                .collect();
            ndcg += ndcg_at_10(&ranked, &qrels[qid]);
            recall += recall_at_100(&ranked, &qrels[qid]);
            // Latency: what an agent asks for (top 10), query embedding excluded.
            let request = SearchRequest { max_results: 10, ..request };
            let started = Instant::now();
            service::search_with_embedding(&env.deps, &ctx, &request, Some(emb)).await.unwrap();
            latency.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        latency.sort_by(f64::total_cmp);
        let n = queries.len() as f64;
        println!(
            "| {mode:?} | {:.4} | {:.4} | {:.2} ms | {:.2} ms |",
            ndcg / n,
            recall / n,
            percentile(&latency, 0.5),
            percentile(&latency, 0.99)
        );
    }
    full_latency.sort_by(f64::total_cmp);
    println!(
        "\nhybrid search including the query embedding (top 10): p50 {:.2} ms, p99 {:.2} ms",
        percentile(&full_latency, 0.5),
        percentile(&full_latency, 0.99)
    );
}
