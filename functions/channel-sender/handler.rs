//! `channel-sender` function: delivers replies (the AI's and support agents') through each
//! channel's API.
//!
//! Consumes the `channel-send` queue, whose jobs the database writes with every reply stored in
//! a channel's conversation. Each delivery is claimed before the provider is called and each
//! part recorded as it is accepted, so a redelivered job sends nothing twice. Short waits
//! (429 with a small `Retry-After`, a 5xx) are retried here; a longer wait hands the job back to
//! the queue, whose visibility timeout brings it back later.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use chatapp::adapters::queue::CHANNEL_SEND;
use chatapp::app::AppDeps;
use chatapp::channels::outbound::{self, Delivered};
use chatapp::ApiError;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

/// What this function may do on AWS (consumes the send queue, sends email replies through
/// SES); template.yaml grants exactly this (tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess =
    chatapp::adapters::access::AwsAccess { s3: false, send: &[], poll: &[CHANNEL_SEND], email: true };

/// A job on the `channel-send` queue.
#[derive(Debug, Deserialize)]
pub struct SendJob {
    pub company_id: Uuid,
    pub message_id: Uuid,
}

/// One SQS batch; a delivery to retry later is reported as failed, so SQS redelivers it.
pub async fn handle_jobs(deps: &AppDeps, event: SqsEvent) -> SqsBatchResponse {
    let policy = outbound::default_policy();
    let policy = &policy;
    crate::each_sqs_job(event, |body| async move {
        let job: SendJob = match serde_json::from_str(&body) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(error = %e, "malformed channel send job dropped");
                return Ok(());
            }
        };
        match outbound::deliver(deps, job.company_id, job.message_id, policy).await {
            Ok(Delivered::Retry { after }) => {
                tracing::info!(message = %job.message_id, after, "channel reply deferred");
                Err(())
            }
            Ok(done) => {
                tracing::info!(message = %job.message_id, ?done, "channel reply handled");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error.chain = %chatapp::error::error_chain(&e), message = %job.message_id, "channel send failed");
                Err(())
            }
        }
    })
    .await
}

/// Lambda's payload: an SQS batch.
pub async fn handle(deps: &AppDeps, payload: Value) -> Result<Value, ApiError> {
    let event: SqsEvent =
        serde_json::from_value(payload).map_err(|e| ApiError::validation(format!("not an SQS event: {e}")))?;
    serde_json::to_value(handle_jobs(deps, event).await).map_err(ApiError::internal)
}

/// The embedded stand-in for the SQS event source mapping (see [`crate::drain_local`]).
pub async fn drain_queue(deps: &AppDeps) -> Result<usize, chatapp::adapters::queue::QueueError> {
    crate::drain_local(deps, CHANNEL_SEND, |event| handle_jobs(deps, event)).await.map(|d| d.received)
}

/// The local runner's worker: drain the queue every `idle`.
pub async fn run_local(deps: &AppDeps, idle: std::time::Duration) {
    loop {
        if let Err(e) = drain_queue(deps).await {
            tracing::error!(error.chain = %chatapp::error::error_chain(&e), "channel send queue unavailable");
        }
        tokio::time::sleep(idle).await;
    }
}
