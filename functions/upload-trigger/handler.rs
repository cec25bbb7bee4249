//! `upload-trigger` function: an object landed in the knowledge bucket, so its file moves to
//! `queued` and an ingest job goes on the ingest queue.
//!
//! Accepts S3 notifications directly (`aws:s3` records) or through an SQS queue (`aws:sqs`
//! records whose bodies are S3 notifications; partial batch failures). Keys look like
//! `<company_id>/<file_id>/<name>`, URL-encoded. Test events, unknown files and keys of another
//! company are logged and dropped: a stray object must never wedge the trigger.

use chatapp::adapters::blob::ObjectKey;
use chatapp::adapters::queue::INGEST;
use chatapp::app::AppDeps;
use chatapp::knowledge::service::IngestJob;
use chatapp::repo;
use chatapp::status::FileStatus;
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("database access failed")]
    Db(#[from] chatapp::db::DbError),
    #[error("could not enqueue the ingest job")]
    Queue(#[from] chatapp::adapters::queue::QueueError),
    #[error("could not delete an oversize object")]
    Blob(#[from] chatapp::adapters::blob::BlobError),
}

/// What became of one S3 record.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Queued { company: Uuid, file: Uuid },
    Ignored(String),
}

/// What this function may do on AWS (reads upload notifications, deletes refused objects, queues ingestion); template.yaml grants exactly this (tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess {
    s3: true,
    send: &[chatapp::adapters::queue::INGEST],
    poll: &[],
    email: false,
};

/// Direct S3 invocations fail (so Lambda retries the event) when a record could not be
/// processed; SQS-wrapped ones report partial batch failures instead.
pub async fn handle(deps: &AppDeps, event: Value) -> Result<Value, TriggerError> {
    let records = event.get("Records").and_then(Value::as_array).cloned().unwrap_or_default();
    let via_sqs = records.iter().any(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"));
    if !via_sqs {
        // Direct S3 invocation: an error makes Lambda retry the whole (one-record) event.
        for record in &records {
            let outcome = process_record(deps, record).await?;
            log(Ok(outcome));
        }
        if records.is_empty() {
            tracing::info!(event = %event, "not an S3 notification (test event?); ignored");
        }
        return Ok(json!({}));
    }
    let mut failures = Vec::new();
    for message in &records {
        let id = message.get("messageId").and_then(Value::as_str).unwrap_or_default().to_string();
        let body: Value = match message.get("body").and_then(Value::as_str).map(serde_json::from_str) {
            Some(Ok(b)) => b,
            _ => {
                tracing::warn!(message_id = %id, "SQS message body is not JSON; dropped");
                continue;
            }
        };
        let inner = body.get("Records").and_then(Value::as_array).cloned().unwrap_or_default();
        if inner.is_empty() {
            tracing::info!(message_id = %id, event = ?body.get("Event"), "no S3 records (s3:TestEvent?); dropped");
        }
        let mut failed = false;
        for record in &inner {
            match process_record(deps, record).await {
                Ok(o) => log(Ok(o)),
                Err(e) => {
                    log(Err(e));
                    failed = true;
                }
            }
        }
        if failed {
            failures.push(json!({"itemIdentifier": id}));
        }
    }
    Ok(json!({"batchItemFailures": failures}))
}

fn log(result: Result<Outcome, TriggerError>) {
    match result {
        Ok(Outcome::Queued { company, file }) => tracing::info!(%company, %file, "upload queued for ingestion"),
        Ok(Outcome::Ignored(why)) => tracing::warn!(reason = %why, "S3 record ignored"),
        Err(e) => tracing::error!(error.chain = %chatapp::error::error_chain(&e), "S3 record failed; will retry"),
    }
}

/// S3 keys in notifications are form-URL-encoded (`+` for space).
fn decode_key(raw: &str) -> String {
    url::form_urlencoded::parse(format!("k={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| raw.to_string())
}

pub async fn process_record(deps: &AppDeps, record: &Value) -> Result<Outcome, TriggerError> {
    let name = record.get("eventName").and_then(Value::as_str).unwrap_or_default();
    if !name.starts_with("ObjectCreated") {
        return Ok(Outcome::Ignored(format!("event {name:?} is not an object creation")));
    }
    let object = record.get("s3").and_then(|s| s.get("object"));
    let Some(raw_key) = object.and_then(|o| o.get("key")).and_then(Value::as_str) else {
        return Ok(Outcome::Ignored("record has no s3.object.key".into()));
    };
    let key_text = decode_key(raw_key);
    let size = object.and_then(|o| o.get("size")).and_then(Value::as_i64);
    let Ok(key) = ObjectKey::parse_full(&key_text) else {
        return Ok(Outcome::Ignored(format!("key {key_text:?} is not <company_id>/<file_id>/<name>")));
    };
    let Some(file_id) = key.rest().split_once('/').and_then(|(f, _)| Uuid::parse_str(f).ok()) else {
        return Ok(Outcome::Ignored(format!("key {key_text:?} has no file id")));
    };
    let company = key.company();
    let ctx = chatapp::auth::worker_ctx(company.as_uuid());
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        // RLS shows the worker only this company's rows: another company's file id is "unknown".
        let Some(file) = repo::knowledge::lock_file(&tx, company.as_uuid(), file_id).await? else {
            return Ok(Outcome::Ignored(format!("no file {file_id} in company {company}")));
        };
        if file.storage_path != key.full() {
            return Ok(Outcome::Ignored(format!("key {key_text:?} is not the storage path of file {file_id}")));
        }
        if file.status != FileStatus::Pending {
            return Ok(Outcome::Ignored(format!("file {file_id} is already {} (duplicate event)", file.status)));
        }
        let size = size.and_then(|s| i32::try_from(s).ok());
        let limits = repo::plans::limits(&tx, company.as_uuid()).await?;
        if let (Some(max), Some(s)) = (repo::plans::limit_of(&limits, "maxFileSize"), size) {
            if i64::from(s) > max {
                let msg = format!("the uploaded file is {s} bytes; the plan allows {max}");
                repo::knowledge::mark_error(&tx, company.as_uuid(), file_id, &msg, true).await?;
                deps.blobs.delete(&key).await?;
                return Ok(Outcome::Ignored(msg));
            }
        }
        repo::knowledge::queue_file(&tx, company.as_uuid(), file_id, &[FileStatus::Pending], false, size).await?;
        // Through the outbox, in this transaction: the job exists exactly when the file is queued.
        chatapp::outbox::add(&tx, INGEST, &IngestJob::file(company, file_id).to_json()).await?;
        Ok::<_, TriggerError>(Outcome::Queued { company: company.as_uuid(), file: file_id })
    }
    .await;
    let outcome = tx.finish(result).await?;
    chatapp::outbox::relay_now(deps, &[INGEST]).await;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_url_decoded() {
        assert_eq!(decode_key("a/b/my+file%281%29.pdf"), "a/b/my file(1).pdf");
        assert_eq!(decode_key("plain.txt"), "plain.txt");
    }
}
