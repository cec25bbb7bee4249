//! Chat-turn platform overhead: everything but generation and query embedding (the offline
//! extractive model answers; a fixed vector per question stands in for the query embedding),
//! over 1,000 turns through the `widget` handler, with 10,000 conversations and 100,000
//! knowledge chunks in the tenant, on local PostgreSQL and qdrant-edge.
//!
//! cargo bench -p chatapp-tests --bench chat_turn [-- --turns N --chunks N --conversations N]
//!     [--corpus <corpus.jsonl> --query-texts <queries.jsonl>]
//!
//! With a corpus, the chunks and the questions are its sentences and queries with their real
//! embeddings (see `BenchVectors`); without, synthetic texts with pseudo-random vectors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chatapp::chat::escalation;
use chatapp::chat::turn::{self, TurnInput};
use chatapp::knowledge::embed::{EmbedError, Embedder};
use chatapp::knowledge::lexical::LexicalEncoder;
use chatapp::knowledge::service::{self as knowledge, RagConfig, SearchMode, SearchRequest};
use chatapp::knowledge::vector::{chunk_point_id, ChunkPayload, IndexedChunk, QueryVector, Scope};
use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{Req, TestEnv};
use http::StatusCode;
use serde_json::json;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;
use uuid::Uuid;

const DIMS: usize = 384;
const WORDS: &[&str] = &[
    "refund",
    "shipping",
    "invoice",
    "password",
    "account",
    "delivery",
    "warranty",
    "order",
    "payment",
    "return",
    "parcel",
    "support",
    "subscription",
    "discount",
    "voucher",
    "address",
    "tracking",
    "battery",
    "screen",
    "charger",
    "store",
    "opening",
    "hours",
    "exchange",
    "damaged",
    "missing",
    "cancel",
    "upgrade",
    "plan",
    "billing",
];

/// Sentences of the corpus embedded for the chunks' vectors (repeated in rotated copies up to
/// the chunk count: see `rotated_copies`).
const REAL_SENTENCES: usize = 40_000;

/// The knowledge and the questions the bench uses. Real (`--corpus <corpus.jsonl> --query-texts
/// <queries.jsonl>`, as `scripts/bench-chat.sh` passes SciFact's): the corpus's sentences as
/// chunks and its queries as the customer's questions, each with its embedding by the local
/// model. Synthetic (without them): texts from a 30-word vocabulary with pseudo-random vectors,
/// the worst case for both searches (every query word is in most chunks; a graph index searches
/// random vectors slowest).
enum BenchVectors {
    Real {
        sentences: usize,
        /// The chunks' texts and vectors: the sentences, then rotated copies of their vectors.
        texts: Vec<String>,
        chunks: Vec<Vec<f32>>,
        /// Questions no turn escalates on (an explicit request for a human would silence the
        /// rest of its conversation), with their embeddings.
        questions: Vec<String>,
        queries: HashMap<String, Vec<f32>>,
    },
    Random,
}

impl BenchVectors {
    async fn from_args(chunks: usize) -> Self {
        let (Some(corpus), Some(query_texts)) =
            (chatapp_tests::bench_arg("--corpus"), chatapp_tests::bench_arg("--query-texts"))
        else {
            return BenchVectors::Random;
        };
        let keep_in = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let real =
            chatapp_tests::SentenceEmbeddings::load(&corpus, &query_texts, REAL_SENTENCES, 10_000, keep_in).await;
        let queries: HashMap<String, Vec<f32>> = real.query_texts.into_iter().zip(real.queries).collect();
        let mut questions: Vec<String> =
            queries.keys().filter(|q| escalation::detect_explicit_request(q).is_none()).cloned().collect();
        questions.sort();
        BenchVectors::Real {
            sentences: real.sentences.len(),
            chunks: chatapp_tests::rotated_copies(&real.sentences, chunks),
            texts: real.sentence_texts,
            questions,
            queries,
        }
    }

    fn describe(&self) -> String {
        match self {
            BenchVectors::Real { sentences, chunks, questions, .. } => format!(
                "knowledge: {sentences} real sentences with their embeddings (all-MiniLM-L6-v2), repeated up to {} \
                 chunks (the vectors rotated); {} real questions",
                chunks.len(),
                questions.len()
            ),
            BenchVectors::Random => {
                "knowledge: synthetic texts of 30 words with pseudo-random vectors (the worst case)".to_string()
            }
        }
    }

    fn chunk(&self, i: usize) -> (String, Vec<f32>) {
        match self {
            BenchVectors::Real { texts, chunks, .. } => {
                (texts[i % texts.len()].clone(), chunks[i % chunks.len()].clone())
            }
            BenchVectors::Random => (text(i), chatapp_tests::pseudo_random_unit_vector(i as u64, DIMS)),
        }
    }

    fn question(&self, i: usize) -> String {
        match self {
            BenchVectors::Real { questions, .. } => questions[i % questions.len()].clone(),
            BenchVectors::Random => {
                format!("How does {} work with my {}?", WORDS[i % WORDS.len()], WORDS[(i * 3) % WORDS.len()])
            }
        }
    }

    /// The question's embedding, computed before the run (a fixed vector for any other text):
    /// no model time is measured.
    fn query(&self, text: &str) -> Vec<f32> {
        let known = match self {
            BenchVectors::Real { queries, .. } => queries.get(text),
            BenchVectors::Random => None,
        };
        known.cloned().unwrap_or_else(|| chatapp_tests::pseudo_random_unit_vector(text.len() as u64, DIMS))
    }
}

/// The query's embedding from [`BenchVectors::query`].
struct BenchEmbedder(Arc<BenchVectors>);

#[async_trait::async_trait]
impl Embedder for BenchEmbedder {
    fn model(&self) -> &str {
        "bench"
    }
    fn dimensions(&self) -> usize {
        DIMS
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| self.0.query(t)).collect())
    }
}

fn text(i: usize) -> String {
    let w = |k: usize| WORDS[(i * 7 + k * 13) % WORDS.len()];
    format!(
        "Article {i}: how {} and {} work for your {}. Our {} team handles {} requests about {} within two days.",
        w(0),
        w(1),
        w(2),
        w(3),
        w(4),
        w(5)
    )
}

fn arg(name: &str, default: usize) -> usize {
    chatapp_tests::bench_arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The turn's phase marks (`turn::PHASE_TARGET`), collected under the label of the loop that
/// is running: (label, phase, ms since the turn started), in the order they came.
#[derive(Clone, Default)]
struct Phases {
    label: Arc<Mutex<Option<&'static str>>>,
    marks: Arc<Mutex<Vec<PhaseMark>>>,
}

/// (label of the loop, phase, ms since the turn started)
type PhaseMark = (&'static str, String, f64);

impl Phases {
    fn record(&self, label: Option<&'static str>) {
        *self.label.lock().unwrap() = label;
    }

    /// p50 of each phase per label, phases in the order they first came.
    fn medians(&self, labels: &[&'static str]) -> Vec<(String, Vec<f64>)> {
        let marks = self.marks.lock().unwrap();
        let mut phases: Vec<String> = Vec::new();
        for (_, phase, _) in marks.iter() {
            if !phases.contains(phase) {
                phases.push(phase.clone());
            }
        }
        phases
            .into_iter()
            .map(|phase| {
                let p50 = labels
                    .iter()
                    .map(|label| {
                        let mut v: Vec<f64> =
                            marks.iter().filter(|(l, p, _)| l == label && *p == phase).map(|m| m.2).collect();
                        v.sort_by(f64::total_cmp);
                        if v.is_empty() {
                            f64::NAN
                        } else {
                            percentile(&v, 0.5)
                        }
                    })
                    .collect();
                (phase, p50)
            })
            .collect()
    }
}

impl<S: tracing::Subscriber> Layer<S> for Phases {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let Some(label) = *self.label.lock().unwrap() else {
            return;
        };
        #[derive(Default)]
        struct Mark {
            phase: String,
            elapsed_us: u64,
        }
        impl tracing::field::Visit for Mark {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "phase" {
                    self.phase = value.to_string();
                }
            }
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                if field.name() == "elapsed_us" {
                    self.elapsed_us = value;
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut mark = Mark::default();
        event.record(&mut mark);
        self.marks.lock().unwrap().push((label, mark.phase, mark.elapsed_us as f64 / 1000.0));
    }
}

// Like the deployed functions (see their `main.rs`): one runtime thread.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (turns, chunks, conversations) =
        (arg("--turns", 1000), arg("--chunks", 100_000), arg("--conversations", 10_000));
    // Installed before TestEnv's own subscriber (which then stays out), with its log filter.
    let phases = Phases::default();
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into())),
        )
        .with(phases.clone().with_filter(
            tracing_subscriber::filter::Targets::new().with_target(turn::PHASE_TARGET, tracing::Level::DEBUG),
        ))
        .init();
    let mut env = TestEnv::new().await;
    let vectors = Arc::new(BenchVectors::from_args(chunks).await);
    println!("{}", vectors.describe());
    env.deps.embedder = Arc::new(BenchEmbedder(Arc::clone(&vectors)));
    let t = env.company("bench", "enterprise").await;
    let owner = env.owner().await;
    let agent: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status) VALUES ($1, 'Bench', 'active') RETURNING id",
            &[&t.company_id],
        )
        .await
        .unwrap()
        .get(0);
    // A typed stored configuration, as the agents routes write it (values that leave the turn's
    // work as with the defaults: every hour open, the default retrieval, no threshold that
    // escalates the bench's questions), served as the published version where the schema has one.
    owner
        .batch_execute(&format!(
            "UPDATE chatapp_agents SET
                 llm_config = '{{\"temperature\": 0.3, \"maxTokens\": 600}}',
                 rag_config = '{{\"maxResults\": 5, \"relevanceThreshold\": 0}}',
                 response_style = '{{\"tone\": \"friendly\", \"verbosity\": \"concise\"}}',
                 escalation_rules = '{{\"keywords\": [\"lawyer\", \"chargeback\"], \"sentimentThreshold\": -0.95}}',
                 business_hours = '{{\"enabled\": true, \"timezone\": \"UTC\", \"schedule\": {{
                     \"mon\": [[\"00:00\", \"24:00\"]], \"tue\": [[\"00:00\", \"24:00\"]],
                     \"wed\": [[\"00:00\", \"24:00\"]], \"thu\": [[\"00:00\", \"24:00\"]],
                     \"fri\": [[\"00:00\", \"24:00\"]], \"sat\": [[\"00:00\", \"24:00\"]],
                     \"sun\": [[\"00:00\", \"24:00\"]]}}}}'
             WHERE id = '{agent}';
             DO $$ BEGIN
                 IF EXISTS (SELECT 1 FROM information_schema.columns
                            WHERE table_name = 'chatapp_agents' AND column_name = 'published_config') THEN
                     EXECUTE 'UPDATE chatapp_agents SET version = 1, published_version = 1, published_config =
                         jsonb_build_object(''name'', name, ''llmConfig'', llm_config, ''ragConfig'', rag_config,
                             ''responseStyle'', response_style, ''escalationRules'', escalation_rules,
                             ''businessHours'', business_hours, ''ragEnabled'', true)
                         WHERE id = ''{agent}''';
                 END IF;
             END $$;"
        ))
        .await
        .unwrap();
    let category: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_knowledge_categories (company_id, name, slug) VALUES ($1, 'Bench', 'bench') RETURNING id",
            &[&t.company_id],
        )
        .await
        .unwrap()
        .get(0);
    owner
        .execute(
            "INSERT INTO chatapp_agent_knowledge_categories (agent_id, category_id) VALUES ($1, $2)",
            &[&agent, &category],
        )
        .await
        .unwrap();

    // 100,000 chunks: 1,000 files of 100 chunks, rows and vectors.
    let started = Instant::now();
    let company = chatapp::auth::worker_ctx(t.company_id).company_id().unwrap();
    let encoder = LexicalEncoder::default();
    let per_file = 100;
    for f in 0..chunks.div_ceil(per_file) {
        let file: Uuid = owner
            .query_one(
                "INSERT INTO chatapp_knowledge_files (company_id, category_id, filename, original_filename, mime_type,
                                                      size, storage_path, status, chunk_count, indexed_at)
                 VALUES ($1, $2, $3, $3, 'text/plain', 1000, $5, 'indexed', $4, now()) RETURNING id",
                &[
                    &t.company_id,
                    &category,
                    &format!("file-{f}.txt"),
                    &(per_file as i32),
                    &format!("{}/bench/file-{f}.txt", t.company_id),
                ],
            )
            .await
            .unwrap()
            .get(0);
        let ids: Vec<Uuid> = (0..per_file).map(|i| chunk_point_id(file, i as i32)).collect();
        let (texts, dense): (Vec<String>, Vec<Vec<f32>>) =
            (0..per_file).map(|i| vectors.chunk(f * per_file + i)).unzip();
        let idx: Vec<i32> = (0..per_file as i32).collect();
        owner
            .execute(
                "INSERT INTO chatapp_knowledge_chunks (id, file_id, company_id, category_id, chunk_index, content,
                                                       start_offset, end_offset, qdrant_id)
                 SELECT u.id, $1, $2, $3, u.idx, u.content, 0, length(u.content), u.id::text
                 FROM unnest($4::uuid[], $5::int[], $6::text[]) AS u(id, idx, content)",
                &[&file, &t.company_id, &category, &ids, &idx, &texts],
            )
            .await
            .unwrap();
        let points = ids
            .iter()
            .zip(&texts)
            .zip(dense)
            .enumerate()
            .map(|(i, ((id, text), dense))| IndexedChunk {
                id: *id,
                dense,
                sparse: encoder.document(text),
                payload: ChunkPayload {
                    company_id: t.company_id,
                    file_id: Some(file),
                    article_id: None,
                    category_id: Some(category),
                    chunk_index: i as i32,
                    text: text.clone(),
                },
            })
            .collect();
        env.deps.vectors.upsert(company, points).await.unwrap();
    }
    // 10,000 conversations with two messages each.
    owner
        .execute(
            "WITH c AS (
                INSERT INTO chatapp_conversations (company_id, agent_id, session_token, channel, message_count)
                SELECT $1, $2, md5(random()::text || g::text), 'web', 2 FROM generate_series(1, $3) g RETURNING id)
             INSERT INTO chatapp_messages (conversation_id, company_id, role, content)
             SELECT id, $1, r.role::message_role, 'earlier message' FROM c, (VALUES ('user'), ('assistant')) r(role)",
            &[&t.company_id, &agent, &(conversations as i32)],
        )
        .await
        .unwrap();
    // Planner statistics, as autovacuum keeps them on a live database; without them a freshly
    // bulk-loaded table gets plans for an empty one.
    owner.batch_execute("ANALYZE").await.unwrap();
    // The bulk load's dirty pages written out now, not by a checkpoint in the middle of the
    // timed turns.
    owner.batch_execute("CHECKPOINT").await.unwrap();
    println!(
        "setup: {} chunks (rows + vectors), {} conversations in {:.0} s",
        env.deps.vectors.count(company).await.unwrap(),
        conversations,
        started.elapsed().as_secs_f64()
    );

    // 1,000 turns: 100 sessions of 10 turns, through the handler.
    let mut sessions = Vec::new();
    for _ in 0..turns.div_ceil(10) {
        let r = env
            .send(HttpFunction::Widget, Req::post(&format!("/widget/agents/{agent}/sessions")).json(json!({})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        sessions.push((
            r.body["conversation_id"].as_str().unwrap().to_string(),
            r.body["session_token"].as_str().unwrap().to_string(),
        ));
    }
    // Write volume of the timed turns: a durable COMMIT waits for its WAL to reach the disk.
    let wal_before: String = owner.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.unwrap().get(0);
    let mut handler_ms = Vec::with_capacity(turns);
    let mut handler_lookup_ms = Vec::with_capacity(turns);
    let mut first_delta_ms = Vec::with_capacity(turns);
    let mut turn_ms = Vec::with_capacity(turns);
    let mut cited = 0usize;
    phases.record(Some(WITH_RETRIEVAL));
    let (cpu_before, loop_started) = (CpuTime::now(), Instant::now());
    for i in 0..turns {
        let (conv, token) = &sessions[i % sessions.len()];
        let question = vectors.question(i);
        if i % 2 == 0 {
            // Every other handler turn finds its session not cached (a process that has not
            // seen it, or WIDGET_SESSION_CACHE_SECS=0) and looks it up.
            let lookup = i % 4 == 0;
            if lookup {
                env.deps.auth.forget_session(token);
            }
            let started = Instant::now();
            let r = env
                .send(
                    HttpFunction::Widget,
                    Req::post(&format!("/widget/conversations/{conv}/messages"))
                        .token(token)
                        .json(json!({"content": question})),
                )
                .await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if lookup { &mut handler_lookup_ms } else { &mut handler_ms }.push(ms);
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            cited += usize::from(r.body["citations"].as_array().is_some_and(|c| !c.is_empty()));
        } else {
            // The turn itself, timing the first streamed piece as the widget would see it.
            let session = env.deps.auth.session_ctx(token).await.unwrap();
            let (ctx, conversation) = (session.ctx, session.conversation_id);
            let input = TurnInput { content: question, client_message_id: None, ..Default::default() };
            let started = Instant::now();
            let mut first: Option<f64> = None;
            let mut sink = |_: &str| {
                first.get_or_insert_with(|| started.elapsed().as_secs_f64() * 1000.0);
            };
            let out = turn::turn(&env.deps, &ctx, conversation, &input, &mut sink).await.unwrap();
            turn_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            first_delta_ms.push(first.expect("the answer streamed"));
            cited += usize::from(
                out.reply.is_some_and(|r| r.metadata["citations"].as_array().is_some_and(|c| !c.is_empty())),
            );
        }
    }
    // The clock first: the /proc scan is not part of the turns.
    let timed_wall_ms = loop_started.elapsed().as_secs_f64() * 1000.0;
    let timed_cpu = CpuTime::now().since(cpu_before);
    phases.record(None);
    let wal_per_turn: f64 = owner
        .query_one("SELECT (pg_current_wal_lsn() - $1::text::pg_lsn)::float8", &[&wal_before])
        .await
        .unwrap()
        .get(0);
    let wal_per_turn = wal_per_turn / turns as f64;
    // Where the time goes: the retrieval alone (the same questions, the agent's scope), and the
    // database work alone (a turn with retrieval switched off).
    let mut search_ms = Vec::with_capacity(turns);
    let mut dense_ms = Vec::with_capacity(turns);
    let mut sparse_ms = Vec::with_capacity(turns);
    let ctx = env.deps.auth.session_ctx(&sessions[0].1).await.unwrap().ctx;
    let scope = Scope { categories: Some(vec![category]), files: None, include_global: true };
    let candidates = (RagConfig::default().max_results * 2).max(40);
    for i in 0..turns {
        let query = vectors.question(i);
        let dense = vectors.query(&query);
        let started = Instant::now();
        env.deps.vectors.search(company, &scope, QueryVector::Dense(&dense), candidates).await.unwrap();
        dense_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let sparse = encoder.query(&query);
        let started = Instant::now();
        env.deps.vectors.search(company, &scope, QueryVector::Sparse(&sparse), candidates).await.unwrap();
        sparse_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let request = SearchRequest {
            query,
            mode: SearchMode::Hybrid,
            max_results: RagConfig::default().max_results,
            relevance_threshold: 0.0,
            scope: scope.clone(),
        };
        let started = Instant::now();
        let hits = knowledge::search(&env.deps, &ctx, &request).await.unwrap();
        search_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(!hits.is_empty());
    }
    owner.execute("UPDATE chatapp_agents SET rag_enabled = false WHERE id = $1", &[&agent]).await.unwrap();
    let mut db_only_ms = Vec::with_capacity(turns);
    phases.record(Some(WITHOUT_RETRIEVAL));
    for i in 0..turns {
        let session = env.deps.auth.session_ctx(&sessions[i % sessions.len()].1).await.unwrap();
        let (ctx, conversation) = (session.ctx, session.conversation_id);
        let input = TurnInput {
            content: format!("Thanks, one more question about {}.", WORDS[i % WORDS.len()]),
            client_message_id: Some(format!("db-only-{i}")),
            ..Default::default()
        };
        let started = Instant::now();
        turn::turn(&env.deps, &ctx, conversation, &input, &mut |_: &str| {}).await.unwrap();
        db_only_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    phases.record(None);
    // The machine's floor for a turn's I/O, with no work in it: the turn makes a read round
    // trip and two durable commits on its critical path, so no turn on this machine can be
    // faster than this. It puts the figures above in terms of the machine they ran on.
    owner
        .batch_execute("CREATE TABLE bench_floor (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())")
        .await
        .unwrap();
    let (mut round_trip_ms, mut commit_ms, mut floor_ms) =
        (Vec::with_capacity(turns), Vec::with_capacity(turns), Vec::with_capacity(turns));
    for _ in 0..turns {
        let started = Instant::now();
        owner.batch_execute("SELECT 1").await.unwrap();
        round_trip_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let commit_started = Instant::now();
        owner.batch_execute("BEGIN; INSERT INTO bench_floor DEFAULT VALUES; COMMIT").await.unwrap();
        commit_ms.push(commit_started.elapsed().as_secs_f64() * 1000.0);
        owner.batch_execute("BEGIN; INSERT INTO bench_floor DEFAULT VALUES; COMMIT").await.unwrap();
        floor_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    // Backends report their statistics at most once a second.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // Updates that changed no indexed column and found room on their page (HOT) write no index
    // entries.
    let hot = owner
        .query(
            "SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
             WHERE relname IN ('chatapp_conversations', 'chatapp_agents', 'chatapp_usage_records', 'chatapp_customers')
             ORDER BY relname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{} {}/{}", r.get::<_, String>(0), r.get::<_, i64>(2), r.get::<_, i64>(1)))
        .collect::<Vec<_>>()
        .join(", ");
    // In the order printed.
    let report = [
        ("handler (JSON), session cached", handler_ms),
        ("handler (JSON), session looked up", handler_lookup_ms),
        ("turn", turn_ms),
        ("first streamed piece", first_delta_ms),
        ("retrieval alone", search_ms),
        ("  of which dense vector search", dense_ms),
        ("  of which sparse vector search", sparse_ms),
        ("turn without retrieval", db_only_ms),
        ("floor: a round trip (SELECT 1)", round_trip_ms),
        ("floor: a durable commit (INSERT, COMMIT)", commit_ms),
        ("floor: a round trip and two durable commits", floor_ms),
    ];
    println!("{turns} turns, {cited} with citations; WAL {wal_per_turn:.0} bytes per turn");
    println!("HOT updates of all updates, every phase: {hot}");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "CPU per timed turn: {:.2} ms in this process, {:.2} ms in PostgreSQL's processes ({:.2} ms of wall time \
         per turn, {} cores: {:.0}% of the machine busy)",
        timed_cpu.app_ms / turns as f64,
        timed_cpu.postgres_ms / turns as f64,
        timed_wall_ms / turns as f64,
        cores,
        (timed_cpu.app_ms + timed_cpu.postgres_ms) / (timed_wall_ms * cores as f64) * 100.0,
    );
    println!("| measure | n | p50 | p99 |");
    println!("|---|---|---|---|");
    for (name, mut v) in report {
        v.sort_by(f64::total_cmp);
        println!("| {name} | {} | {:.2} ms | {:.2} ms |", v.len(), percentile(&v, 0.5), percentile(&v, 0.99));
    }
    // Where a turn's time goes: the retrieval runs beside the checks and the customer message's
    // commit, and the answer waits for both.
    println!();
    println!("| turn step done, p50 ms since the turn started | {WITH_RETRIEVAL} | {WITHOUT_RETRIEVAL} |");
    println!("|---|---|---|");
    for (phase, p50) in phases.medians(&[WITH_RETRIEVAL, WITHOUT_RETRIEVAL]) {
        let cells: Vec<String> =
            p50.iter().map(|ms| if ms.is_nan() { "-".to_string() } else { format!("{ms:.2}") }).collect();
        println!("| {phase} | {} |", cells.join(" | "));
    }
}

const WITH_RETRIEVAL: &str = "timed turns";
const WITHOUT_RETRIEVAL: &str = "turns without retrieval";

/// CPU time used so far by this process (every thread) and by all of PostgreSQL's processes
/// (backends, WAL writer, checkpointer), from `/proc`, in ms. The kernel counts it in ticks
/// of 10 ms (USER_HZ), so it is read over the whole timed loop, not per turn.
#[derive(Clone, Copy)]
struct CpuTime {
    app_ms: f64,
    postgres_ms: f64,
}

impl CpuTime {
    fn now() -> Self {
        let mut postgres_ms = 0.0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let path = entry.path();
            let is_pid =
                path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
            if is_pid && std::fs::read_to_string(path.join("comm")).is_ok_and(|c| c.trim() == "postgres") {
                postgres_ms += cpu_ms(&path.join("stat"));
            }
        }
        Self { app_ms: cpu_ms(std::path::Path::new("/proc/self/stat")), postgres_ms }
    }

    fn since(self, before: Self) -> Self {
        Self { app_ms: self.app_ms - before.app_ms, postgres_ms: self.postgres_ms - before.postgres_ms }
    }
}

/// User plus system time of the process whose `/proc/<pid>/stat` is at `stat` (0 when it has
/// gone), in ms.
fn cpu_ms(stat: &std::path::Path) -> f64 {
    const MS_PER_TICK: f64 = 10.0;
    let Ok(text) = std::fs::read_to_string(stat) else {
        return 0.0;
    };
    // The fields after the parenthesised command name: state is the 3rd field, utime the 14th.
    let Some((_, rest)) = text.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(14) + ticks(15)) * MS_PER_TICK
}
