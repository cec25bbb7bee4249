//! The knowledge base through its handlers on the embedded stack: admin routes, direct upload,
//! the ingest worker draining the Postgres queue, qdrant-edge vectors, the local embedding
//! model, and the search route. Tenant isolation, idempotency, dead-lettering, plan limits
//! and delete paths included.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chatapp::adapters::queue::{PgJobQueue, INGEST};
use chatapp::knowledge::embed::{EmbedError, Embedder};
use chatapp::knowledge::service::{self, IngestJob, SearchMode, SearchRequest};
use chatapp::knowledge::vector::Scope;
use chatapp_functions::http_function::HttpFunction;
use chatapp_functions::ingest_worker;
use chatapp_tests::{assert_error, Req, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

async fn category(env: &TestEnv, t: &Tenant, name: &str) -> Uuid {
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::post("/admin/knowledge/categories").token(&t.admin_token).json(json!({"name": name})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().parse().unwrap()
}

/// Requests an upload and sends the bytes through the direct upload route; returns the file id.
async fn upload(env: &TestEnv, t: &Tenant, category: Uuid, filename: &str, bytes: &[u8]) -> Uuid {
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::post("/admin/knowledge/files")
                .token(&t.admin_token)
                .json(json!({"filename": filename, "category_id": category, "size": bytes.len()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["file"]["status"], "pending");
    assert_eq!(r.body["upload"]["direct"], false, "the local blob store has no presigned URLs");
    let id: Uuid = r.body["file"]["id"].as_str().unwrap().parse().unwrap();
    let url = r.body["upload"]["url"].as_str().unwrap();
    assert_eq!(url, format!("/admin/knowledge/files/{id}/content"));
    let up = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::put(url).token(&t.admin_token).bytes(bytes, "application/octet-stream"),
        )
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    assert_eq!(up.body["status"], "queued");
    id
}

async fn file(env: &TestEnv, t: &Tenant, id: Uuid) -> Value {
    let r = env
        .send(HttpFunction::KnowledgeFiles, Req::get(&format!("/admin/knowledge/files/{id}")).token(&t.admin_token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn search(env: &TestEnv, t: &Tenant, body: Value) -> Vec<Value> {
    let r = env
        .send(HttpFunction::KnowledgeSearch, Req::post("/admin/knowledge/search").token(&t.admin_token).json(body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["results"].as_array().unwrap().clone()
}

async fn drain(env: &TestEnv) -> ingest_worker::Drained {
    ingest_worker::drain(&env.deps).await.unwrap()
}

fn company(id: Uuid) -> chatapp::tenant::CompanyId {
    chatapp::auth::worker_ctx(id).company_id().unwrap()
}

const REFUNDS: &str = "# Refund policy\n\nCustomers can ask for a refund within 30 days of purchase. \
    Refunds go back to the original payment method and take five business days.\n\n\
    # Shipping\n\nWe ship parcels with DHL. International shipping takes ten days.";

#[tokio::test]
async fn upload_to_indexed_to_search_on_the_embedded_stack() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let cat = category(&env, &t, "Policies").await;
    let md = upload(&env, &t, cat, "policy.md", REFUNDS.as_bytes()).await;
    let html = upload(
        &env,
        &t,
        cat,
        "hours.html",
        b"<html><head><title>Hours</title><script>var tracking = 1;</script></head>\
          <body><h1>Opening hours</h1><p>Our support desk is open Monday to Friday, 9&nbsp;to 17.</p></body></html>",
    )
    .await;
    let json_file =
        upload(&env, &t, cat, "plans.json", br#"{"plans": [{"name": "Gold", "price": "49 EUR", "seats": 5}]}"#).await;
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'ingest'").await, 3);

    let d = drain(&env).await;
    assert_eq!((d.received, d.failed), (3, 0));
    for id in [md, html, json_file] {
        let f = file(&env, &t, id).await;
        assert_eq!(f["status"], "indexed", "{f}");
        assert!(f["indexed_at"].is_string());
        assert!(f["chunk_count"].as_i64().unwrap() >= 1);
        assert!(f["processing_error"].is_null());
        assert!(f["metadata"]["word_count"].as_u64().unwrap() > 3, "{f}");
        assert_eq!(f["ingest_attempts"], 1);
    }
    assert_eq!(file(&env, &t, md).await["metadata"]["kind"], "markdown");
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'ingest'").await, 0, "acknowledged");
    let chunks = env.count(&format!("chatapp_knowledge_chunks WHERE company_id = '{}'", t.company_id)).await;
    assert_eq!(env.deps.vectors.count(company(t.company_id)).await.unwrap() as i64, chunks);
    // No script text made it into any chunk.
    assert_eq!(env.count("chatapp_knowledge_chunks WHERE content LIKE '%tracking%'").await, 0);

    // Each retrieval mode finds the right source, with offsets pointing into the text.
    for mode in ["hybrid", "dense", "lexical"] {
        let hits = search(&env, &t, json!({"query": "how long do refunds take?", "mode": mode})).await;
        assert!(!hits.is_empty(), "{mode}: no hits");
        assert_eq!(hits[0]["file_id"], md.to_string(), "{mode}: {}", hits[0]);
        assert_eq!(hits[0]["source_name"], "policy.md");
        assert!(hits[0]["content"].as_str().unwrap().contains("refund"));
        assert_eq!(hits[0]["section_title"], "Refund policy");
        assert!(hits[0]["start_offset"].as_i64().unwrap() >= 0);
    }
    let hits = search(&env, &t, json!({"query": "when is the support desk open", "max_results": 1})).await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["file_id"], html.to_string());
    let hits = search(&env, &t, json!({"query": "price of the Gold plan", "max_results": 2})).await;
    assert_eq!(hits[0]["file_id"], json_file.to_string());
    // Listing shows status and chunk counts.
    let r = env
        .send(HttpFunction::KnowledgeFiles, Req::get("/admin/knowledge/files?status=indexed").token(&t.admin_token))
        .await;
    assert_eq!(r.body["total"], 3, "{}", r.body);
    assert_eq!(env.audit_count("knowledge_file.upload").await, 3);
}

#[tokio::test]
async fn a_redelivered_job_changes_nothing_and_identical_content_is_not_embedded_twice() {
    let mut env = TestEnv::new().await;
    let counting = Arc::new(Counting::new(env.deps.embedder.clone(), 0));
    env.deps.embedder = counting.clone();
    let t = env.company("acme", "starter").await;
    let cat = category(&env, &t, "Policies").await;
    let id = upload(&env, &t, cat, "policy.md", REFUNDS.as_bytes()).await;
    drain(&env).await;
    let chunks = file(&env, &t, id).await["chunk_count"].as_i64().unwrap();
    let vectors = env.deps.vectors.count(company(t.company_id)).await.unwrap();
    let embedded = counting.texts.load(Ordering::SeqCst);
    assert_eq!(embedded as i64, chunks);
    let ids_before = chunk_ids(&env, id).await;

    // The same job again (SQS delivers at least once).
    let job = IngestJob::file(company(t.company_id), id);
    env.deps.queue.send(INGEST, &job.to_json()).await.unwrap();
    env.deps.queue.send(INGEST, &job.to_json()).await.unwrap();
    assert_eq!(drain(&env).await.failed, 0);
    assert_eq!(file(&env, &t, id).await["chunk_count"].as_i64().unwrap(), chunks);
    assert_eq!(env.deps.vectors.count(company(t.company_id)).await.unwrap(), vectors, "no duplicate vectors");
    assert_eq!(chunk_ids(&env, id).await, ids_before, "deterministic chunk ids");
    assert_eq!(counting.texts.load(Ordering::SeqCst), embedded, "cached embeddings reused");

    // Another file with the same content: indexed, but nothing embedded again.
    let copy = upload(&env, &t, cat, "copy.md", REFUNDS.as_bytes()).await;
    drain(&env).await;
    assert_eq!(file(&env, &t, copy).await["status"], "indexed");
    assert_eq!(counting.texts.load(Ordering::SeqCst), embedded);

    // Reindex through the route: same chunks, same ids.
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::post(&format!("/admin/knowledge/files/{id}/reindex")).token(&t.admin_token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "queued");
    drain(&env).await;
    assert_eq!(chunk_ids(&env, id).await, ids_before);
    assert_eq!(env.audit_count("knowledge_file.reindex").await, 1);
}

async fn chunk_ids(env: &TestEnv, file: Uuid) -> Vec<Uuid> {
    env.owner()
        .await
        .query("SELECT id FROM chatapp_knowledge_chunks WHERE file_id = $1 ORDER BY chunk_index", &[&file])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn a_poison_file_fails_readably_is_dead_lettered_and_blocks_nothing() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let cat = category(&env, &t, "Docs").await;
    let bad = upload(&env, &t, cat, "broken.pdf", b"this is not a PDF at all").await;
    let empty = upload(&env, &t, cat, "blank.txt", b"   \n\n  ").await;
    let good = upload(&env, &t, cat, "policy.md", REFUNDS.as_bytes()).await;
    let d = drain(&env).await;
    assert_eq!((d.received, d.failed), (3, 0), "permanent failures are dead-lettered, not retried");

    let f = file(&env, &t, bad).await;
    assert_eq!(f["status"], "failed");
    assert!(f["processing_error"].as_str().unwrap().contains("pdf"), "{f}");
    let f = file(&env, &t, empty).await;
    assert_eq!(f["status"], "failed");
    assert_eq!(f["processing_error"], "the file contains no text");
    assert_eq!(file(&env, &t, good).await["status"], "indexed");

    let dead = PgJobQueue::new(env.deps.db.clone(), Duration::from_secs(1), 5).failed(INGEST).await.unwrap();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead.iter().any(|(p, e)| p["file_id"] == bad.to_string() && e.as_deref().unwrap().contains("pdf")));
    assert_eq!(env.count(&format!("chatapp_knowledge_chunks WHERE file_id = '{bad}'")).await, 0);

    // Retry is for failed files only; the file fails again the same way.
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::post(&format!("/admin/knowledge/files/{good}/retry")).token(&t.admin_token),
        )
        .await;
    assert_error!(r, StatusCode::CONFLICT, "invalid_status");
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::post(&format!("/admin/knowledge/files/{bad}/retry")).token(&t.admin_token),
        )
        .await;
    assert_eq!(r.body["status"], "queued", "{}", r.body);
    drain(&env).await;
    assert_eq!(file(&env, &t, bad).await["status"], "failed");
    assert_eq!(file(&env, &t, bad).await["ingest_attempts"], 2);
}

#[tokio::test]
async fn a_provider_outage_is_retried_then_dead_lettered() {
    // Visibility 0: a failed delivery is visible again at once, so one drain sees every retry.
    let mut env = TestEnv::with(&[("QUEUE_VISIBILITY_TIMEOUT_SECS", "0"), ("QUEUE_MAX_RECEIVES", "3")]).await;
    let flaky = Arc::new(Counting::new(env.deps.embedder.clone(), 1));
    env.deps.embedder = flaky.clone();
    let t = env.company("acme", "starter").await;
    let cat = category(&env, &t, "Docs").await;
    // One outage, then success on the redelivery.
    let id = upload(&env, &t, cat, "policy.md", REFUNDS.as_bytes()).await;
    let d = drain(&env).await;
    assert_eq!((d.received, d.failed), (2, 1));
    let f = file(&env, &t, id).await;
    assert_eq!(f["status"], "indexed", "{f}");
    assert_eq!(f["ingest_attempts"], 2);

    // A lasting outage: every receive fails, the last marks the file failed, then the job
    // moves to the failed-jobs table.
    flaky.fail_next.store(100, Ordering::SeqCst);
    let id = upload(&env, &t, cat, "other.md", b"# Other\n\nSomething else entirely about warranties.").await;
    let d = drain(&env).await;
    assert_eq!((d.received, d.failed), (3, 3));
    let f = file(&env, &t, id).await;
    assert_eq!(f["status"], "failed", "{f}");
    assert!(f["processing_error"].as_str().unwrap().contains("injected outage"), "{f}");
    assert_eq!(drain(&env).await.received, 0);
    let dead = PgJobQueue::new(env.deps.db.clone(), Duration::from_secs(1), 3).failed(INGEST).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0["file_id"], id.to_string());
}

#[tokio::test]
async fn company_b_never_sees_company_a_knowledge() {
    let env = TestEnv::new().await;
    let a = env.company("alpha", "starter").await;
    let b = env.company("beta", "starter").await;
    let a_cat = category(&env, &a, "Secrets").await;
    let a_file = upload(&env, &a, a_cat, "secret.md", b"# Launch\n\nProject Nightingale launches on March 3rd.").await;
    let b_cat = category(&env, &b, "Public").await;
    upload(&env, &b, b_cat, "public.md", b"# Hello\n\nWe sell garden furniture.").await;
    drain(&env).await;
    assert!(!search(&env, &a, json!({"query": "Nightingale launch date"})).await.is_empty());

    // Through the route: B's searches never return A's chunk, and naming A's category is refused.
    for mode in ["hybrid", "dense", "lexical"] {
        let hits = search(&env, &b, json!({"query": "Project Nightingale launches", "mode": mode})).await;
        assert!(hits.iter().all(|h| h["file_id"] != a_file.to_string()), "{mode}: {hits:?}");
    }
    let r = env
        .send(
            HttpFunction::KnowledgeSearch,
            Req::post("/admin/knowledge/search")
                .token(&b.admin_token)
                .json(json!({"query": "Nightingale", "category_ids": [a_cat]})),
        )
        .await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    // A's file and category are 404 for B.
    let r = env
        .send(HttpFunction::KnowledgeFiles, Req::get(&format!("/admin/knowledge/files/{a_file}")).token(&b.admin_token))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::delete(&format!("/admin/knowledge/files/{a_file}")).token(&b.admin_token),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Below the route, with a forged scope: the vector filter keeps B inside B...
    let b_ctx = chatapp::auth::worker_ctx(b.company_id);
    let forged = SearchRequest {
        query: "Project Nightingale launches".into(),
        mode: SearchMode::Hybrid,
        max_results: 10,
        relevance_threshold: 0.0,
        scope: Scope { categories: Some(vec![a_cat]), files: Some(vec![a_file]), include_global: true },
    };
    assert!(service::search(&env.deps, &b_ctx, &forged).await.unwrap().is_empty());
    let raw = env
        .deps
        .vectors
        .search(
            company(b.company_id),
            &Scope::default(),
            chatapp::knowledge::vector::QueryVector::Sparse(
                &chatapp::knowledge::lexical::LexicalEncoder::default().query("Nightingale"),
            ),
            10,
        )
        .await
        .unwrap();
    assert!(raw.is_empty(), "{raw:?}");
    // ...and RLS hides A's chunk rows from B's transaction even when asked by id.
    let a_chunks = chunk_ids(&env, a_file).await;
    let tx = env.deps.db.begin(&b_ctx).await.unwrap();
    let seen = chatapp::repo::knowledge::chunk_refs(&tx, a.company_id, &a_chunks).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(seen.is_empty());
    let app = env.app_client().await;
    app.batch_execute(&format!("BEGIN; SELECT set_config('app.current_company_id', '{}', true)", b.company_id))
        .await
        .unwrap();
    let n: i64 = app
        .query_one("SELECT count(*) FROM chatapp_knowledge_chunks WHERE file_id = $1", &[&a_file])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn plan_limits_are_checked_before_anything_is_stored() {
    let env = TestEnv::new().await;
    let t = env.company("small", "free").await; // maxFileSize 5 MiB, knowledgeCategories 3
    let cat = category(&env, &t, "One").await;
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::post("/admin/knowledge/files")
                .token(&t.admin_token)
                .json(json!({"filename": "huge.pdf", "category_id": cat, "size": 6 * 1024 * 1024})),
        )
        .await;
    assert_error!(r, StatusCode::PAYLOAD_TOO_LARGE, "file_too_large");
    // Unsupported type, unknown category, bad size, unknown field: 4xx, nothing stored.
    for (body, code) in [
        (json!({"filename": "run.exe", "category_id": cat, "size": 10}), "unsupported_file_type"),
        (json!({"filename": "a.txt", "category_id": Uuid::new_v4(), "size": 10}), "validation_failed"),
        (json!({"filename": "a.txt", "category_id": cat, "size": 0}), "validation_failed"),
        (json!({"filename": "a.txt", "category_id": cat, "size": 1, "x": 1}), "validation_failed"),
        (json!({"filename": "", "category_id": cat, "size": 1}), "validation_failed"),
    ] {
        let r = env
            .send(HttpFunction::KnowledgeFiles, Req::post("/admin/knowledge/files").token(&t.admin_token).json(body))
            .await;
        assert_error!(r, StatusCode::BAD_REQUEST, code);
    }
    assert_eq!(env.count("chatapp_knowledge_files").await, 0);
    // Storage quota: 1 GB on free; pretend 1 GB is used.
    let ok = upload(&env, &t, cat, "a.txt", b"small file").await;
    env.owner()
        .await
        .execute("UPDATE chatapp_knowledge_files SET size = 1073741000 WHERE id = $1", &[&ok])
        .await
        .unwrap();
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::post("/admin/knowledge/files")
                .token(&t.admin_token)
                .json(json!({"filename": "b.txt", "category_id": cat, "size": 4096})),
        )
        .await;
    assert_error!(r, StatusCode::PAYMENT_REQUIRED, "storage_limit_reached");
    assert_eq!(env.count("chatapp_knowledge_files").await, 1);
    // Category count: 3 on free.
    category(&env, &t, "Two").await;
    category(&env, &t, "Three").await;
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::post("/admin/knowledge/categories").token(&t.admin_token).json(json!({"name": "Four"})),
        )
        .await;
    assert_error!(r, StatusCode::PAYMENT_REQUIRED, "plan_limit_reached");
    assert_eq!(env.count("chatapp_knowledge_categories").await, 3);
    // An upload bigger than declared is held to the plan when the bytes arrive.
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::post("/admin/knowledge/files")
                .token(&t.admin_token)
                .json(json!({"filename": "c.txt", "category_id": cat, "size": 10})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["file"]["id"].as_str().unwrap().to_string();
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::put(&format!("/admin/knowledge/files/{id}/content"))
                .token(&t.admin_token)
                .bytes(&vec![b'x'; 4096], "text/plain"),
        )
        .await;
    assert_error!(r, StatusCode::PAYMENT_REQUIRED, "storage_limit_reached");
    let company = chatapp::auth::worker_ctx(t.company_id).company_id().unwrap();
    assert!(env.deps.blobs.list(company, &format!("{id}/")).await.unwrap().is_empty(), "nothing stored");
    assert_eq!(env.count("chatapp_jobs").await, 1, "only the first upload's job");
}

#[tokio::test]
async fn categories_form_a_tree_and_agents_get_categories() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let root = category(&env, &t, "Products").await;
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::post("/admin/knowledge/categories")
                .token(&t.admin_token)
                .json(json!({"name": "Chairs & Tables", "parent_id": root, "sort_order": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["slug"], "chairs-tables");
    let child: Uuid = r.body["id"].as_str().unwrap().parse().unwrap();
    let r = env
        .send(HttpFunction::KnowledgeCategories, Req::get("/admin/knowledge/categories").token(&t.admin_token))
        .await;
    assert_eq!(r.body["total"], 2);
    assert_eq!(r.body["items"][0]["id"], root.to_string());
    assert_eq!(r.body["items"][0]["children"][0]["id"], child.to_string());
    // No cycles; duplicate slugs are a conflict.
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::patch(&format!("/admin/knowledge/categories/{root}"))
                .token(&t.admin_token)
                .json(json!({"parent_id": child})),
        )
        .await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::post("/admin/knowledge/categories").token(&t.admin_token).json(json!({"name": "Products"})),
        )
        .await;
    assert_error!(r, StatusCode::CONFLICT, "slug_taken");
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::patch(&format!("/admin/knowledge/categories/{child}"))
                .token(&t.admin_token)
                .json(json!({"parent_id": null, "name": "Furniture"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["parent_id"].is_null());

    // Agents: an agent of this company gets categories of this company only.
    let owner = env.owner().await;
    let agent: Uuid = owner
        .query_one("INSERT INTO chatapp_agents (company_id, name) VALUES ($1, 'Helper') RETURNING id", &[&t.company_id])
        .await
        .unwrap()
        .get(0);
    let other = env.company("other", "starter").await;
    let foreign = category(&env, &other, "Theirs").await;
    let path = format!("/admin/knowledge/agents/{agent}/categories");
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::new("PUT", &path).token(&t.admin_token).json(json!({"category_ids": [root, foreign]})),
        )
        .await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::new("PUT", &path).token(&t.admin_token).json(json!({"category_ids": [root, child]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = env.send(HttpFunction::KnowledgeCategories, Req::get(&path).token(&t.admin_token)).await;
    assert_eq!(r.body["category_ids"].as_array().unwrap().len(), 2);
    // The other company cannot see or set this agent.
    let r = env.send(HttpFunction::KnowledgeCategories, Req::get(&path).token(&other.admin_token)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(env.audit_count("agent.knowledge_categories.set").await, 1);
    assert_eq!(env.audit_count("knowledge_category.update").await, 1);

    // Search as the agent: only its categories.
    let other_cat = category(&env, &t, "Unassigned").await;
    upload(&env, &t, root, "chairs.md", b"# Chairs\n\nOur oak chairs cost 120 EUR.").await;
    upload(&env, &t, other_cat, "hidden.md", b"# Oak\n\nOak tables are discontinued.").await;
    drain(&env).await;
    let hits = search(&env, &t, json!({"query": "oak", "agent_id": agent, "max_results": 10})).await;
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h["category_id"] == root.to_string()), "{hits:?}");
}

#[tokio::test]
async fn articles_are_knowledge_without_a_file() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let r = env
        .send(
            HttpFunction::KnowledgeArticles,
            Req::post("/admin/knowledge/articles").token(&t.admin_token).json(json!({
                "title": "Warranty", "content": "Every bicycle carries a two-year warranty on the frame.",
                "tags": ["warranty"], "publish": true
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "published");
    let id = r.body["id"].as_str().unwrap().to_string();
    drain(&env).await;
    let hits = search(&env, &t, json!({"query": "bicycle frame warranty"})).await;
    assert_eq!(hits[0]["article_id"], id, "{hits:?}");
    assert_eq!(hits[0]["source_name"], "Warranty");
    // Editing re-indexes; unpublishing removes it from search at once.
    let r = env
        .send(
            HttpFunction::KnowledgeArticles,
            Req::patch(&format!("/admin/knowledge/articles/{id}"))
                .token(&t.admin_token)
                .json(json!({"content": "Every bicycle carries a five-year warranty on the frame."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    drain(&env).await;
    let hits = search(&env, &t, json!({"query": "bicycle frame warranty"})).await;
    assert!(hits[0]["content"].as_str().unwrap().contains("five-year"));
    let r = env
        .send(
            HttpFunction::KnowledgeArticles,
            Req::post(&format!("/admin/knowledge/articles/{id}/unpublish")).token(&t.admin_token),
        )
        .await;
    assert_eq!(r.body["status"], "draft");
    assert!(search(&env, &t, json!({"query": "bicycle frame warranty"})).await.is_empty());
    assert_eq!(env.deps.vectors.count(company(t.company_id)).await.unwrap(), 0);
    let r = env
        .send(
            HttpFunction::KnowledgeArticles,
            Req::post("/admin/knowledge/articles").token(&t.admin_token).json(json!({"title": " ", "content": "x"})),
        )
        .await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert_eq!(env.count("chatapp_knowledge_articles").await, 1);
    assert_eq!(env.audit_count("knowledge_article.unpublish").await, 1);
}

#[tokio::test]
async fn deleting_a_file_a_category_or_a_company_leaves_no_orphans() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let keep = env.company("keep", "starter").await;
    let c1 = category(&env, &t, "One").await;
    let c2 = category(&env, &t, "Two").await;
    let kc = category(&env, &keep, "Kept").await;
    let f1 = upload(&env, &t, c1, "one.md", b"# One\n\nThe first document about apples.").await;
    let f2 = upload(&env, &t, c2, "two.md", b"# Two\n\nThe second document about pears.").await;
    let f3 = upload(&env, &t, c2, "three.md", b"# Three\n\nThe third document about plums.").await;
    upload(&env, &keep, kc, "kept.md", b"# Kept\n\nAnother company's document about apples.").await;
    let r = env
        .send(
            HttpFunction::KnowledgeArticles,
            Req::post("/admin/knowledge/articles")
                .token(&t.admin_token)
                .json(json!({"title": "Cherries", "content": "Cherries are red.", "category_id": c2, "publish": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    drain(&env).await;
    let (ta, ka) = (company(t.company_id), company(keep.company_id));
    let kept_vectors = env.deps.vectors.count(ka).await.unwrap();
    assert_eq!(env.deps.vectors.count(ta).await.unwrap(), 4);
    assert_eq!(env.deps.blobs.list(ta, "").await.unwrap().len(), 3);

    // A file.
    let r = env
        .send(HttpFunction::KnowledgeFiles, Req::delete(&format!("/admin/knowledge/files/{f1}")).token(&t.admin_token))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(env.deps.blobs.list(ta, &format!("{f1}/")).await.unwrap().is_empty());
    assert_eq!(env.count(&format!("chatapp_knowledge_chunks WHERE file_id = '{f1}'")).await, 0);
    assert_eq!(env.deps.vectors.count(ta).await.unwrap(), 3);
    assert_eq!(env.audit_count("knowledge_file.delete").await, 1);

    // A category with two files and an article.
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::delete(&format!("/admin/knowledge/categories/{c2}")).token(&t.admin_token),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    for f in [f2, f3] {
        assert_eq!(env.count(&format!("chatapp_knowledge_files WHERE id = '{f}'")).await, 0);
    }
    assert_eq!(env.count(&format!("chatapp_knowledge_chunks WHERE company_id = '{}'", t.company_id)).await, 0);
    assert_eq!(env.count("chatapp_knowledge_articles").await, 0);
    assert_eq!(env.deps.vectors.count(ta).await.unwrap(), 0);
    assert!(env.deps.blobs.list(ta, "").await.unwrap().is_empty());

    // The company, by the master admin: every row, object and vector of it.
    let f4 = upload(&env, &t, c1, "four.md", b"# Four\n\nA fourth document about figs.").await;
    drain(&env).await;
    assert_eq!(env.deps.vectors.count(ta).await.unwrap(), 1);
    let r = env
        .send(HttpFunction::Companies, Req::delete(&format!("/admin/companies/{}", t.company_id)).token(&t.admin_token))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a company admin cannot delete the company");
    let master = env.master_token().await;
    let r = env
        .send(HttpFunction::Companies, Req::delete(&format!("/admin/companies/{}", t.company_id)).token(&master))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(env.count(&format!("chatapp_companies WHERE id = '{}'", t.company_id)).await, 0);
    assert_eq!(env.count(&format!("chatapp_knowledge_files WHERE id = '{f4}'")).await, 0);
    assert_eq!(env.count(&format!("chatapp_embedding_cache WHERE company_id = '{}'", t.company_id)).await, 0);
    // The files and vectors go through the outbox (the companies function has no AWS access):
    // one purge job, written by the deleting transaction, sent by the relay's sweep.
    let purge = format!(
        "chatapp_outbox WHERE queue = 'ingest' AND payload->>'company_id' = '{}' AND payload->>'purge' = 'true'",
        t.company_id
    );
    assert_eq!(env.count(&purge).await, 1);
    assert_eq!(env.deps.vectors.count(ta).await.unwrap(), 1, "nothing is purged before the job runs");
    chatapp_functions::outbox_relay::sweep(&env.deps, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(env.count(&purge).await, 0);
    drain(&env).await;
    assert_eq!(env.deps.vectors.count(ta).await.unwrap(), 0);
    assert!(env.deps.blobs.list(ta, "").await.unwrap().is_empty());
    assert_eq!(env.audit_count("company.delete").await, 1);
    // The other company is untouched.
    assert_eq!(env.deps.vectors.count(ka).await.unwrap(), kept_vectors);
    assert_eq!(env.deps.blobs.list(ka, "").await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_upload_trigger_drops_strays_and_queues_known_files() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let other = env.company("other", "starter").await;
    let cat = category(&env, &t, "Docs").await;
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::post("/admin/knowledge/files")
                .token(&t.admin_token)
                .json(json!({"filename": "My Notes (v2).md", "category_id": cat, "size": REFUNDS.len()})),
        )
        .await;
    let id: Uuid = r.body["file"]["id"].as_str().unwrap().parse().unwrap();
    let key = r.body["file"]["storage_path"].as_str().unwrap().to_string();
    assert!(key.starts_with(&format!("{}/{id}/", t.company_id)));
    let object_key = chatapp::adapters::blob::ObjectKey::parse_full(&key).unwrap();
    env.deps.blobs.put(&object_key, bytes::Bytes::from_static(REFUNDS.as_bytes()), "text/markdown").await.unwrap();

    // The recorded event (moto's shape: no userIdentity etc.), pointed at this file.
    let fixture =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/upload-trigger.json")).unwrap();
    let encoded: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
    let event: Value = serde_json::from_str(&fixture.replace("__KEY__", &encoded.replace("%2F", "/"))).unwrap();
    // Strays first: a test event, another company's file id under this company, garbage keys.
    let stray =
        |k: String| json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": k, "size": 5}}}]});
    let out = chatapp_functions::upload_trigger::handle(&env.deps, json!({"Event": "s3:TestEvent"})).await.unwrap();
    assert_eq!(out, json!({}));
    let foreign = format!("{}/{id}/x.md", other.company_id);
    for k in [foreign, "not-a-company/x".into(), format!("{}/not-a-file/x", t.company_id)] {
        chatapp_functions::upload_trigger::handle(&env.deps, stray(k)).await.unwrap();
    }
    assert_eq!(env.count("chatapp_jobs").await, 0);
    assert_eq!(file(&env, &t, id).await["status"], "pending");

    let out = chatapp_functions::upload_trigger::handle(&env.deps, event.clone()).await.unwrap();
    assert_eq!(out, json!({}));
    assert_eq!(file(&env, &t, id).await["status"], "queued");
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'ingest'").await, 1);
    // A duplicate notification does not queue twice.
    chatapp_functions::upload_trigger::handle(&env.deps, event).await.unwrap();
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'ingest'").await, 1);
    drain(&env).await;
    assert_eq!(file(&env, &t, id).await["status"], "indexed");
}

#[tokio::test]
async fn the_ingest_worker_handles_the_recorded_sqs_event() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let cat = category(&env, &t, "Docs").await;
    let id = upload(&env, &t, cat, "policy.md", REFUNDS.as_bytes()).await;
    let fixture =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/ingest-worker.json")).unwrap();
    let fixture = fixture.replace("__COMPANY_ID__", &t.company_id.to_string()).replace("__FILE_ID__", &id.to_string());
    let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(&fixture).unwrap();
    let response = ingest_worker::handle(&env.deps, event).await;
    // The second record is malformed: dead-lettered, not retried, and not blocking the first.
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(file(&env, &t, id).await["status"], "indexed");
    let dead = PgJobQueue::new(env.deps.db.clone(), Duration::from_secs(1), 5).failed(INGEST).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].1.as_deref().unwrap().contains("malformed"));
}

/// Wraps the real embedder: counts texts embedded, and fails the next `fail_next` calls.
struct Counting {
    inner: Arc<dyn Embedder>,
    texts: AtomicUsize,
    fail_next: AtomicUsize,
}

impl Counting {
    fn new(inner: Arc<dyn Embedder>, fail_next: usize) -> Self {
        Self { inner, texts: AtomicUsize::new(0), fail_next: AtomicUsize::new(fail_next) }
    }
}

#[async_trait::async_trait]
impl Embedder for Counting {
    fn model(&self) -> &str {
        self.inner.model()
    }
    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if self.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(EmbedError::Http("injected outage".into()));
        }
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        self.inner.embed(texts).await
    }
}

#[tokio::test]
async fn a_file_whose_job_died_can_be_retried_once_stale() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let cat = category(&env, &t, "Docs").await;
    let id = upload(&env, &t, cat, "policy.md", REFUNDS.as_bytes()).await;
    // The worker claimed it and then died (no job left).
    let owner = env.owner().await;
    owner.execute("DELETE FROM chatapp_jobs", &[]).await.unwrap();
    owner.execute("UPDATE chatapp_knowledge_files SET status = 'processing' WHERE id = $1", &[&id]).await.unwrap();
    let retry = || {
        env.send(
            HttpFunction::KnowledgeFiles,
            Req::post(&format!("/admin/knowledge/files/{id}/retry")).token(&t.admin_token),
        )
    };
    assert_error!(retry().await, StatusCode::CONFLICT, "invalid_status");
    owner
        .execute("UPDATE chatapp_knowledge_files SET updated_at = now() - interval '20 minutes' WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert_eq!(retry().await.body["status"], "queued");
    drain(&env).await;
    assert_eq!(file(&env, &t, id).await["status"], "indexed");
}
