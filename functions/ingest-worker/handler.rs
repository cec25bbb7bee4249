//! `ingest-worker` function: turns uploaded files and published articles into chunks and
//! vectors. SQS event source with partial batch failures: one bad file never holds back the
//! others in its batch.
//!
//! Per message: a permanent failure (unsupported, corrupt or empty content) marks the file
//! failed with a readable error and goes straight to the dead-letter queue; a transient one
//! (database, storage, embedding provider) is reported as a batch item failure, so SQS
//! redelivers it, and after the last allowed receive the queue's redrive policy dead-letters it.

use std::time::Instant;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use chatapp::adapters::queue::INGEST;
use chatapp::app::AppDeps;
use chatapp::knowledge::service::{self, Delivery, IngestError, IngestJob, IngestOutcome};
use serde_json::{json, Value};

/// What this function may do on AWS (reads files; consumes the ingest queue; sends what can never succeed to its dead-letter queue); template.yaml grants exactly this (tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess {
    s3: true,
    send: &["ingest-dead-letter"],
    poll: &[chatapp::adapters::queue::INGEST],
    email: false,
};

pub async fn handle(deps: &AppDeps, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    let mut ids = Vec::new();
    let mut deliveries = Vec::new();
    for message in &event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let receives: i32 = message.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1);
        let body = message.body.as_deref().unwrap_or_default();
        match serde_json::from_str::<IngestJob>(body) {
            Ok(job) => {
                ids.push((id, receives));
                deliveries.push(Delivery { job, final_attempt: receives >= deps.cfg.queue_max_receives });
            }
            Err(e) => {
                let payload = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()));
                if dead_letter(deps, &payload, &format!("malformed ingest job: {e}")).await.is_err() {
                    failures.push(id);
                }
            }
        }
    }
    let started = Instant::now();
    let results = service::ingest_batch(deps, &deliveries).await;
    let ms = started.elapsed().as_millis() as u64;
    for (((id, receives), delivery), result) in ids.into_iter().zip(&deliveries).zip(results) {
        let job = &delivery.job;
        match result {
            Ok(IngestOutcome::Indexed { chunks, embedded }) => tracing::info!(
                company = %job.company_id, file = ?job.file_id, article = ?job.article_id, chunks, embedded,
                batch_ms = ms, "indexed"
            ),
            Ok(IngestOutcome::Gone) => tracing::info!(
                company = %job.company_id, file = ?job.file_id, article = ?job.article_id, purge = job.purge,
                "nothing (more) to index"
            ),
            Err(IngestError::Permanent(reason)) => {
                tracing::warn!(company = %job.company_id, file = ?job.file_id, %reason, "cannot ingest; dead-lettered");
                if dead_letter(deps, &job.to_json(), &reason).await.is_err() {
                    failures.push(id);
                }
            }
            Err(e @ IngestError::Transient(_)) => {
                tracing::error!(
                    company = %job.company_id, file = ?job.file_id, receives, final_attempt = delivery.final_attempt,
                    error.chain = %chatapp::error::error_chain(&e), "ingestion failed; will retry"
                );
                failures.push(id);
            }
        }
    }
    batch_response(failures)
}

async fn dead_letter(deps: &AppDeps, payload: &Value, reason: &str) -> Result<(), ()> {
    deps.queue.dead_letter(INGEST, payload, reason).await.map_err(|e| {
        tracing::error!(error.chain = %chatapp::error::error_chain(&e), "dead-lettering failed; will retry");
    })
}

fn batch_response(failed_ids: Vec<String>) -> SqsBatchResponse {
    let failures: Vec<Value> = failed_ids.into_iter().map(|id| json!({"itemIdentifier": id})).collect();
    serde_json::from_value(json!({"batchItemFailures": failures})).expect("batch response shape")
}

pub use crate::Drained;

/// The embedded stand-in for the SQS event source mapping: receives batches from the
/// configured queue, runs them through [`handle`] exactly as Lambda would, and acknowledges
/// the messages that did not fail. Returns when the queue has nothing visible.
pub async fn drain(deps: &AppDeps) -> Result<Drained, chatapp::adapters::queue::QueueError> {
    crate::drain_local(deps, INGEST, |event| handle(deps, event)).await
}

/// The local runner's worker loop: drain, then wait a little, forever.
pub async fn run_local(deps: &AppDeps, idle: std::time::Duration) {
    loop {
        match drain(deps).await {
            Ok(d) if d.received > 0 => tracing::debug!(received = d.received, failed = d.failed, "ingest pass"),
            Ok(_) => {}
            Err(e) => tracing::error!(error.chain = %chatapp::error::error_chain(&e), "ingest queue unavailable"),
        }
        tokio::time::sleep(idle).await;
    }
}
