//! Deleting knowledge when the stores and the queue fail right after the commit (the same as the
//! process dying there): the delete stands, answers 204, and the purge jobs its transaction
//! wrote (the outbox) remove the objects and vectors once the relay's sweep sends them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chatapp::adapters::blob::{BlobError, BlobStore, ObjectKey, PresignedUpload};
use chatapp::adapters::queue::{Job, JobQueue, QueueError};
use chatapp::tenant::CompanyId;
use chatapp_functions::http_function::HttpFunction;
use chatapp_functions::{ingest_worker, outbox_relay};
use chatapp_tests::{Req, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// The blob store with deletes refused, as S3 refuses them when it is unreachable.
struct RefusingDeletes(Arc<dyn BlobStore>);

#[async_trait]
impl BlobStore for RefusingDeletes {
    async fn presign_put(
        &self,
        key: &ObjectKey,
        content_type: &str,
        size: u64,
        ttl: Duration,
    ) -> Result<Option<PresignedUpload>, BlobError> {
        self.0.presign_put(key, content_type, size, ttl).await
    }
    async fn put(&self, key: &ObjectKey, bytes: Bytes, content_type: &str) -> Result<(), BlobError> {
        self.0.put(key, bytes, content_type).await
    }
    async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>, BlobError> {
        self.0.get(key).await
    }
    async fn list(&self, company: CompanyId, prefix: &str) -> Result<Vec<ObjectKey>, BlobError> {
        self.0.list(company, prefix).await
    }
    async fn delete(&self, _key: &ObjectKey) -> Result<(), BlobError> {
        Err(BlobError::S3("service unavailable".into()))
    }
}

/// A queue that refuses every send.
struct RefusingSends(Arc<dyn JobQueue>);

#[async_trait]
impl JobQueue for RefusingSends {
    async fn send(&self, _queue: &str, _payload: &Value) -> Result<String, QueueError> {
        Err(QueueError::Sqs("service unavailable".into()))
    }
    async fn receive(&self, queue: &str, max: i32) -> Result<Vec<Job>, QueueError> {
        self.0.receive(queue, max).await
    }
    async fn delete(&self, queue: &str, receipt: &str) -> Result<(), QueueError> {
        self.0.delete(queue, receipt).await
    }
    async fn dead_letter(&self, queue: &str, payload: &Value, error: &str) -> Result<(), QueueError> {
        self.0.dead_letter(queue, payload, error).await
    }
}

fn company(id: Uuid) -> CompanyId {
    chatapp::auth::worker_ctx(id).company_id().unwrap()
}

async fn created(env: &TestEnv, f: HttpFunction, t: &Tenant, path: &str, body: Value) -> Value {
    let r = env.send(f, Req::post(path).token(&t.admin_token).json(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn upload(env: &TestEnv, t: &Tenant, category: Uuid, filename: &str, text: &str) -> Uuid {
    let body = json!({"filename": filename, "category_id": category, "size": text.len()});
    let r = created(env, HttpFunction::KnowledgeFiles, t, "/admin/knowledge/files", body).await;
    let id: Uuid = r["file"]["id"].as_str().unwrap().parse().unwrap();
    let up = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::put(r["upload"]["url"].as_str().unwrap())
                .token(&t.admin_token)
                .bytes(text.as_bytes(), "application/octet-stream"),
        )
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    id
}

/// Sends what the outbox holds (as `outbox-relay`'s schedule does once the failed relay's
/// lease has ended) and runs the ingest worker.
async fn sweep_and_drain(env: &TestEnv) {
    env.owner().await.execute("UPDATE chatapp_outbox SET leased_until = NULL", &[]).await.unwrap();
    outbox_relay::sweep(&env.deps, Duration::ZERO).await.unwrap();
    ingest_worker::drain(&env.deps).await.unwrap();
}

#[tokio::test]
async fn a_knowledge_delete_that_cannot_purge_after_its_commit_is_purged_by_its_outbox_jobs() {
    let mut env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let keep = env.company("keep", "starter").await;
    let cats = "/admin/knowledge/categories";
    let c1: Uuid = created(&env, HttpFunction::KnowledgeCategories, &t, cats, json!({"name": "One"})).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let c2: Uuid = created(&env, HttpFunction::KnowledgeCategories, &t, cats, json!({"name": "Two"})).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let kc: Uuid = created(&env, HttpFunction::KnowledgeCategories, &keep, cats, json!({"name": "Kept"})).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let f1 = upload(&env, &t, c1, "one.md", "# One\n\nThe first document about apples.").await;
    upload(&env, &t, c2, "two.md", "# Two\n\nThe second document about pears.").await;
    upload(&env, &keep, kc, "kept.md", "# Kept\n\nAnother company's document about apples.").await;
    let article = json!({"title": "Cherries", "content": "Cherries are red.", "category_id": c2, "publish": true});
    created(&env, HttpFunction::KnowledgeArticles, &t, "/admin/knowledge/articles", article).await;
    ingest_worker::drain(&env.deps).await.unwrap();
    let (ta, ka) = (company(t.company_id), company(keep.company_id));
    assert_eq!(env.deps.vectors.count(ta).await.unwrap(), 3);
    assert_eq!(env.deps.blobs.list(ta, "").await.unwrap().len(), 2);
    let kept = (env.deps.vectors.count(ka).await.unwrap(), env.deps.blobs.list(ka, "").await.unwrap().len());

    let (blobs, queue) = (env.deps.blobs.clone(), env.deps.queue.clone());
    env.deps.blobs = Arc::new(RefusingDeletes(blobs.clone()));
    env.deps.queue = Arc::new(RefusingSends(queue.clone()));
    let purges = |id: Uuid| {
        format!(
            "chatapp_outbox WHERE queue = 'ingest' AND payload->>'purge' = 'true' AND payload->>'company_id' = '{id}'"
        )
    };

    // A file: the delete stands and answers 204; its object is still there, its purge job waits.
    let r = env
        .send(HttpFunction::KnowledgeFiles, Req::delete(&format!("/admin/knowledge/files/{f1}")).token(&t.admin_token))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(env.count(&format!("chatapp_knowledge_files WHERE id = '{f1}'")).await, 0);
    assert_eq!(env.audit_count("knowledge_file.delete").await, 1);
    assert_eq!(blobs.list(ta, &format!("{f1}/")).await.unwrap().len(), 1, "the store refused the delete");
    assert_eq!(env.count(&format!("{} AND payload->>'file_id' = '{f1}'", purges(t.company_id))).await, 1);

    // A category: one job per file and article filed under it, and one for the category.
    let r =
        env.send(HttpFunction::KnowledgeCategories, Req::delete(&format!("{cats}/{c2}")).token(&t.admin_token)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(env.count(&purges(t.company_id)).await, 4);
    assert_eq!(env.count(&format!("{} AND payload->>'category_id' = '{c2}'", purges(t.company_id))).await, 1);
    assert_eq!(env.count(&purges(keep.company_id)).await, 0);

    // The stores are back: the sweep sends the jobs and the worker purges everything.
    env.deps.blobs = blobs;
    env.deps.queue = queue;
    sweep_and_drain(&env).await;
    assert_eq!(env.count(&purges(t.company_id)).await, 0);
    assert!(env.deps.blobs.list(ta, "").await.unwrap().is_empty());
    assert_eq!(env.deps.vectors.count(ta).await.unwrap(), 0);
    assert_eq!(env.count(&format!("chatapp_knowledge_chunks WHERE company_id = '{}'", t.company_id)).await, 0);
    // The other company is untouched.
    let now = (env.deps.vectors.count(ka).await.unwrap(), env.deps.blobs.list(ka, "").await.unwrap().len());
    assert_eq!(now, kept);
}
