//! BlobStore and JobQueue: the same behaviour tests against the production implementations
//! (S3 and SQS through the real AWS SDK, against moto_server on loopback) and the embedded ones
//! (a local directory, the Postgres job table).

use std::time::Duration;

use aws_credential_types::Credentials;
use bytes::Bytes;
use chatapp::adapters::blob::{BlobStore, LocalBlobStore, ObjectKey, S3BlobStore};
use chatapp::adapters::queue::{JobQueue, PgJobQueue, SqsJobQueue};
use chatapp_tests::TestEnv;
use serde_json::json;
use uuid::Uuid;

/// moto_server's URL; scripts/test.sh starts one and exports it.
fn moto_url() -> String {
    std::env::var("MOTO_URL")
        .expect("MOTO_URL is not set: run the tests through scripts/test.sh, which starts moto_server")
}

async fn sdk() -> aws_config::SdkConfig {
    chatapp::adapters::aws::loader()
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url(moto_url())
        .load()
        .await
}

async fn blob_contract(store: &dyn BlobStore) {
    let a = chatapp::auth::worker_ctx(Uuid::new_v4()).company_id().unwrap();
    let b = chatapp::auth::worker_ctx(Uuid::new_v4()).company_id().unwrap();
    let k1 = ObjectKey::new(a, "files/1/report.pdf").unwrap();
    let k2 = ObjectKey::new(a, "files/2/notes.txt").unwrap();
    let kb = ObjectKey::new(b, "files/1/report.pdf").unwrap();
    assert!(k1.full().starts_with(&a.to_string()));
    store.put(&k1, Bytes::from_static(b"%PDF-1.4 a"), "application/pdf").await.unwrap();
    store.put(&k2, Bytes::from_static(b"hello"), "text/plain").await.unwrap();
    store.put(&kb, Bytes::from_static(b"%PDF-1.4 b"), "application/pdf").await.unwrap();
    assert_eq!(store.get(&k1).await.unwrap().unwrap(), Bytes::from_static(b"%PDF-1.4 a"));
    assert_eq!(store.get(&kb).await.unwrap().unwrap(), Bytes::from_static(b"%PDF-1.4 b"));
    assert_eq!(store.get(&ObjectKey::new(a, "missing").unwrap()).await.unwrap(), None);
    // Overwrite.
    store.put(&k2, Bytes::from_static(b"hello again"), "text/plain").await.unwrap();
    assert_eq!(store.get(&k2).await.unwrap().unwrap(), Bytes::from_static(b"hello again"));
    // Listing stays inside the company and the prefix.
    assert_eq!(store.list(a, "").await.unwrap(), vec![k1.clone(), k2.clone()]);
    assert_eq!(store.list(a, "files/2/").await.unwrap(), vec![k2.clone()]);
    assert_eq!(store.list(b, "").await.unwrap(), vec![kb.clone()]);
    // Delete one, then the whole company; the other company is untouched.
    store.delete(&k2).await.unwrap();
    store.delete(&k2).await.unwrap(); // idempotent
    assert_eq!(store.list(a, "").await.unwrap(), vec![k1.clone()]);
    assert_eq!(store.delete_prefix(a, "").await.unwrap(), 1);
    assert!(store.list(a, "").await.unwrap().is_empty());
    assert_eq!(store.list(b, "").await.unwrap(), vec![kb]);
}

#[tokio::test]
async fn local_blob_store_behaves() {
    let dir = std::env::temp_dir().join(format!("chatapp-blobs-{}", Uuid::new_v4()));
    blob_contract(&LocalBlobStore::new(&dir)).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn s3_blob_store_behaves_on_moto() {
    let sdk = sdk().await;
    let client = chatapp::adapters::aws::s3_client(&sdk, true);
    let bucket = format!("knowledge-{}", Uuid::new_v4().simple());
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let store = S3BlobStore::new(client.clone(), &bucket);
    blob_contract(&store).await;
    // Keys in the bucket really are company-prefixed.
    let c = chatapp::auth::worker_ctx(Uuid::new_v4()).company_id().unwrap();
    store.put(&ObjectKey::new(c, "x/y.txt").unwrap(), Bytes::from_static(b"y"), "text/plain").await.unwrap();
    let listed = client.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(keys.iter().all(|k| k.split('/').next().unwrap().parse::<Uuid>().is_ok()), "{keys:?}");
    assert!(keys.contains(&format!("{c}/x/y.txt").as_str()));
}

/// send → receive → invisible while leased → redelivered after the timeout → delete.
async fn queue_contract(q: &dyn JobQueue, queue: &str, visibility: Duration) {
    let id = q.send(queue, &json!({"company_id": "c1", "file_id": 1})).await.unwrap();
    assert!(!id.is_empty());
    let first = q.receive(queue, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].payload["file_id"], 1);
    assert_eq!(first[0].receive_count, 1);
    assert!(q.receive(queue, 10).await.unwrap().is_empty(), "leased job delivered twice");
    tokio::time::sleep(visibility + Duration::from_millis(600)).await;
    let second = q.receive(queue, 10).await.unwrap();
    assert_eq!(second.len(), 1, "not redelivered after the visibility timeout");
    assert_eq!(second[0].receive_count, 2);
    q.delete(queue, &second[0].receipt).await.unwrap();
    tokio::time::sleep(visibility + Duration::from_millis(600)).await;
    assert!(q.receive(queue, 10).await.unwrap().is_empty(), "deleted job came back");
    // Several jobs in one batch.
    for i in 0..3 {
        q.send(queue, &json!({"n": i})).await.unwrap();
    }
    let batch = q.receive(queue, 10).await.unwrap();
    assert_eq!(batch.len(), 3);
    for j in &batch {
        q.delete(queue, &j.receipt).await.unwrap();
    }
}

#[tokio::test]
async fn postgres_queue_behaves_and_dead_letters_after_max_receives() {
    let env = TestEnv::new().await;
    let visibility = Duration::from_secs(1);
    let q = PgJobQueue::new(env.deps.db.clone(), visibility, 2);
    queue_contract(&q, "ingest", visibility).await;

    // A poison job: received twice, never deleted, then moved to chatapp_failed_jobs.
    q.send("ingest", &json!({"poison": true})).await.unwrap();
    for n in 1..=2 {
        let jobs = q.receive("ingest", 1).await.unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].receive_count, n);
        q.record_error(&jobs[0].receipt, "cannot parse file").await.unwrap();
        tokio::time::sleep(visibility + Duration::from_millis(600)).await;
    }
    assert!(q.receive("ingest", 1).await.unwrap().is_empty());
    let failed = q.failed("ingest").await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0["poison"], true);
    assert_eq!(failed[0].1.as_deref(), Some("cannot parse file"));
    // A stale receipt (from before a redelivery) does not delete the job.
    q.send("other", &json!({"k": 1})).await.unwrap();
    let j1 = q.receive("other", 1).await.unwrap().remove(0);
    tokio::time::sleep(visibility + Duration::from_millis(600)).await;
    let j2 = q.receive("other", 1).await.unwrap().remove(0);
    q.delete("other", &j1.receipt).await.unwrap();
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'other'").await, 1);
    q.delete("other", &j2.receipt).await.unwrap();
    assert_eq!(env.count("chatapp_jobs WHERE queue = 'other'").await, 0);
}

#[tokio::test]
async fn sqs_queue_behaves_and_dead_letters_after_max_receives_on_moto() {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let sdk = sdk().await;
    let client = chatapp::adapters::aws::sqs_client(&sdk);
    let name = format!("ingest-{}", Uuid::new_v4().simple());
    let dlq_url = client.create_queue().queue_name(format!("{name}-dlq")).send().await.unwrap().queue_url.unwrap();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(A::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&A::QueueArn]
        .clone();
    let url = client
        .create_queue()
        .queue_name(&name)
        .attributes(A::VisibilityTimeout, "1")
        .attributes(A::RedrivePolicy, json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}).to_string())
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let q = SqsJobQueue::new(client.clone(), [("ingest".to_string(), url)].into());
    queue_contract(&q, "ingest", Duration::from_secs(1)).await;

    q.send("ingest", &json!({"poison": true})).await.unwrap();
    for _ in 0..2 {
        assert_eq!(q.receive("ingest", 1).await.unwrap().len(), 1);
        tokio::time::sleep(Duration::from_millis(1600)).await;
    }
    assert!(q.receive("ingest", 1).await.unwrap().is_empty());
    let dead = client.receive_message().queue_url(&dlq_url).max_number_of_messages(10).send().await.unwrap();
    let bodies: Vec<_> = dead.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(bodies[0].contains("poison"));
    // An unconfigured queue name is an error, not a silent drop.
    assert!(q.send("nowhere", &json!({})).await.is_err());
}

/// Configuration picks the adapters: BLOB_BACKEND=s3 + QUEUE_BACKEND=sqs give the AWS ones.
#[tokio::test]
async fn configuration_selects_the_aws_adapters() {
    let sdk = sdk().await;
    let s3 = chatapp::adapters::aws::s3_client(&sdk, true);
    let bucket = format!("cfg-{}", Uuid::new_v4().simple());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let sqs = chatapp::adapters::aws::sqs_client(&sdk);
    let url = sqs
        .create_queue()
        .queue_name(format!("cfg-{}", Uuid::new_v4().simple()))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let moto = moto_url();
    let env = TestEnv::with(&[
        ("BLOB_BACKEND", "s3"),
        ("KNOWLEDGE_BUCKET", bucket.as_str()),
        ("QUEUE_BACKEND", "sqs"),
        ("INGEST_QUEUE_URL", url.as_str()),
        ("AWS_ENDPOINT_URL", moto.as_str()),
    ])
    .await;
    let c = chatapp::auth::worker_ctx(Uuid::new_v4()).company_id().unwrap();
    let key = ObjectKey::new(c, "f/a.txt").unwrap();
    env.deps.blobs.put(&key, Bytes::from_static(b"via config"), "text/plain").await.unwrap();
    let got = s3.get_object().bucket(&bucket).key(key.full()).send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), Bytes::from_static(b"via config"));
    env.deps.queue.send("ingest", &json!({"via": "config"})).await.unwrap();
    let m = sqs.receive_message().queue_url(&url).send().await.unwrap();
    assert!(m.messages()[0].body().unwrap().contains("config"));
}

/// A request that cannot get a database connection in time answers 503 `busy`, and the next one,
/// once a connection is free, succeeds: an exhausted pool never hangs a request.
#[tokio::test]
async fn an_exhausted_pool_answers_503_busy_instead_of_hanging() {
    use chatapp_functions::http_function::HttpFunction;
    use chatapp_tests::Req;
    let env = TestEnv::with(&[("DB_POOL_SIZE", "1"), ("DB_POOL_TIMEOUT_MS", "300")]).await;
    let tenant = env.company("busy", "starter").await;
    // The pool's only connection, held by an open transaction.
    let held = env.deps.db.begin(&chatapp::auth::worker_ctx(tenant.company_id)).await.unwrap();
    let r = env.send(HttpFunction::Team, Req::get("/admin/team/users").token(&tenant.admin_token)).await;
    assert_eq!(r.status, http::StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.code(), "busy");
    held.rollback().await.unwrap();
    let r = env.send(HttpFunction::Team, Req::get("/admin/team/users").token(&tenant.admin_token)).await;
    assert_eq!(r.status, http::StatusCode::OK, "{}", r.body);
}
