//! The production path on moto_server, through the real AWS SDK: presigned S3 PUT → bucket
//! notification → SQS → upload-trigger → ingest queue (SQS) → ingest-worker → indexed; and a
//! poison file dead-lettered to the ingest queue's DLQ (from its redrive policy).

use aws_credential_types::Credentials;
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{Req, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

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

struct Aws {
    sqs: aws_sdk_sqs::Client,
    notifications_url: String,
    ingest_url: String,
    dlq_url: String,
}

async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let url = sqs.create_queue().queue_name(name).send().await.unwrap().queue_url().unwrap().to_string();
    let attrs =
        sqs.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::QueueArn).send().await.unwrap();
    let arn = attrs.attributes().unwrap()[&QueueAttributeName::QueueArn].clone();
    (url, arn)
}

/// A bucket that notifies a queue on object creation, an ingest queue with a DLQ.
async fn setup(bucket: &str) -> Aws {
    let config = sdk().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
    let sqs = aws_sdk_sqs::Client::new(&config);
    let id = Uuid::new_v4().simple().to_string();
    let (notifications_url, notifications_arn) = queue(&sqs, &format!("uploads-{id}")).await;
    let (dlq_url, dlq_arn) = queue(&sqs, &format!("ingest-dlq-{id}")).await;
    let (ingest_url, _) = queue(&sqs, &format!("ingest-{id}")).await;
    sqs.set_queue_attributes()
        .queue_url(&ingest_url)
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}).to_string(),
        )
        .send()
        .await
        .unwrap();
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn(notifications_arn)
                        .events(Event::from("s3:ObjectCreated:*"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    Aws { sqs, notifications_url, ingest_url, dlq_url }
}

/// Every message on `url` as a Lambda SQS event (what the event source mapping would send).
async fn take_event(sqs: &aws_sdk_sqs::Client, url: &str) -> Value {
    let mut records = Vec::new();
    for _ in 0..20 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            records.push(json!({
                "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
            }));
            sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
        if !records.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    json!({"Records": records})
}

async fn presigned_upload(env: &TestEnv, t: &Tenant, cat: &str, name: &str, bytes: &[u8]) -> String {
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::post("/admin/knowledge/files")
                .token(&t.admin_token)
                .json(json!({"filename": name, "category_id": cat, "size": bytes.len()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let upload = &r.body["upload"];
    assert_eq!(upload["direct"], true, "{upload}");
    assert_eq!(upload["method"], "PUT");
    let mut put = chatapp::outbound_http::client().put(upload["url"].as_str().unwrap()).body(bytes.to_vec());
    for (k, v) in upload["headers"].as_object().unwrap() {
        put = put.header(k, v.as_str().unwrap());
    }
    let resp = put.send().await.unwrap();
    assert!(resp.status().is_success(), "presigned PUT: {} {}", resp.status(), resp.text().await.unwrap());
    r.body["file"]["id"].as_str().unwrap().to_string()
}

async fn status(env: &TestEnv, t: &Tenant, id: &str) -> Value {
    env.send(HttpFunction::KnowledgeFiles, Req::get(&format!("/admin/knowledge/files/{id}")).token(&t.admin_token))
        .await
        .body
}

#[tokio::test]
async fn s3_notification_to_sqs_to_trigger_to_worker_to_indexed() {
    let bucket = format!("kb-{}", Uuid::new_v4().simple());
    let aws = setup(&bucket).await;
    let moto = moto_url();
    let env = TestEnv::with(&[
        ("BLOB_BACKEND", "s3"),
        ("KNOWLEDGE_BUCKET", &bucket),
        ("QUEUE_BACKEND", "sqs"),
        ("INGEST_QUEUE_URL", &aws.ingest_url),
        ("AWS_ENDPOINT_URL", &moto),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ])
    .await;
    let t = env.company("acme", "starter").await;
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::post("/admin/knowledge/categories").token(&t.admin_token).json(json!({"name": "Docs"})),
        )
        .await;
    let cat = r.body["id"].as_str().unwrap().to_string();
    // The notification setup's s3:TestEvent goes through the trigger harmlessly.
    let test_event = take_event(&aws.sqs, &aws.notifications_url).await;
    let out = chatapp_functions::upload_trigger::handle(&env.deps, test_event).await.unwrap();
    assert_eq!(out["batchItemFailures"], json!([]), "{out}");

    let text = b"# Warranty\n\nAll espresso machines carry a three-year warranty covering the pump.";
    let good = presigned_upload(&env, &t, &cat, "Warranty terms.md", text).await;
    let bad = presigned_upload(&env, &t, &cat, "broken.pdf", b"definitely not a pdf").await;
    assert_eq!(status(&env, &t, &good).await["status"], "pending");

    // S3 -> notification queue -> upload-trigger (SQS-wrapped S3 events; the key is URL-encoded).
    let event = take_event(&aws.sqs, &aws.notifications_url).await;
    assert_eq!(event["Records"].as_array().unwrap().len(), 2, "{event}");
    let out = chatapp_functions::upload_trigger::handle(&env.deps, event).await.unwrap();
    assert_eq!(out["batchItemFailures"], json!([]), "{out}");
    assert_eq!(status(&env, &t, &good).await["status"], "queued");

    // Ingest queue (SQS) -> ingest-worker.
    let event: SqsEvent = serde_json::from_value(take_event(&aws.sqs, &aws.ingest_url).await).unwrap();
    assert_eq!(event.records.len(), 2);
    let response = chatapp_functions::ingest_worker::handle(&env.deps, event).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let f = status(&env, &t, &good).await;
    assert_eq!(f["status"], "indexed", "{f}");
    let r = env
        .send(
            HttpFunction::KnowledgeSearch,
            Req::post("/admin/knowledge/search").token(&t.admin_token).json(json!({"query": "pump warranty"})),
        )
        .await;
    assert_eq!(r.body["results"][0]["file_id"], good, "{}", r.body);

    // The poison file: failed with a readable error, its job on the DLQ with the reason.
    let f = status(&env, &t, &bad).await;
    assert_eq!(f["status"], "failed");
    assert!(f["processing_error"].as_str().unwrap().contains("pdf"), "{f}");
    let dead = aws.sqs.receive_message().queue_url(&aws.dlq_url).message_attribute_names("All").send().await.unwrap();
    let dead = dead.messages();
    assert_eq!(dead.len(), 1);
    let body: Value = serde_json::from_str(dead[0].body().unwrap()).unwrap();
    assert_eq!(body["file_id"], bad);
    let reason = dead[0].message_attributes().unwrap()["error"].string_value().unwrap();
    assert!(reason.contains("pdf"), "{reason}");

    // Deleting the file removes its S3 object.
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::delete(&format!("/admin/knowledge/files/{good}")).token(&t.admin_token),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let company = chatapp::auth::worker_ctx(t.company_id).company_id().unwrap();
    let left = env.deps.blobs.list(company, "").await.unwrap();
    assert_eq!(left.len(), 1, "only the poison file's object remains: {left:?}");
}
