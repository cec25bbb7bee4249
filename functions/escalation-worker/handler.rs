//! `escalation-worker` function: assigns waiting conversations to support agents.
//!
//! Two triggers, one handler: the escalation queue (a handoff, a support agent coming online,
//! capacity freed: each job names a company whose queue to drain) and a schedule (every
//! minute: the sweep of every company, for reassignment timers, ended snoozes, missed
//! heartbeats, and any drain a lost job would have done). Draining is idempotent, so a
//! redelivered job assigns nothing twice.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use chatapp::adapters::queue::ESCALATION;
use chatapp::app::AppDeps;
use chatapp::handoff::assign;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// What this function may do on AWS (consumes the escalation queue; relays the drain jobs and
/// outbound events its transitions write); template.yaml grants exactly this (tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess {
    s3: false,
    send: &[chatapp::adapters::queue::ESCALATION, chatapp::adapters::queue::OUTBOUND],
    poll: &[chatapp::adapters::queue::ESCALATION],
    email: false,
};

/// A job on the escalation queue: drain this company's queue.
#[derive(Debug, Deserialize)]
pub struct EscalationJob {
    pub company_id: Uuid,
}

/// One SQS batch: each message's company is drained once; a failure is reported for that
/// message alone, so SQS redelivers it.
pub async fn handle_jobs(deps: &AppDeps, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    let mut done: Vec<Uuid> = Vec::new();
    for message in &event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or_default();
        let job = match serde_json::from_str::<EscalationJob>(body) {
            Ok(job) => job,
            Err(e) => {
                // Never valid: acknowledged (dropped) with an error in the log, not retried.
                tracing::error!(error = %e, message = %id, "malformed escalation job dropped");
                continue;
            }
        };
        if done.contains(&job.company_id) {
            continue;
        }
        match assign::drain(deps, job.company_id).await {
            Ok(assigned) => {
                tracing::info!(company = %job.company_id, assigned = assigned.len(), "queue drained");
                done.push(job.company_id);
            }
            Err(e) => {
                tracing::error!(error.chain = %chatapp::error::error_chain(&e), company = %job.company_id, "drain failed");
                failures.push(json!({"itemIdentifier": id}));
            }
        }
    }
    serde_json::from_value(json!({"batchItemFailures": failures})).expect("batch response shape")
}

/// The scheduled sweep of every company.
pub async fn sweep(deps: &AppDeps) -> Result<Value, chatapp::ApiError> {
    let swept = assign::sweep_all(deps).await?;
    let assigned: usize = swept.iter().map(|(_, s)| s.assigned.len()).sum();
    let requeued: usize = swept.iter().map(|(_, s)| s.requeued.len()).sum();
    tracing::info!(companies = swept.len(), assigned, requeued, "sweep done");
    Ok(json!({"companies": swept.len(), "assigned": assigned, "requeued": requeued}))
}

/// Lambda's payload: an SQS batch (`Records`) or the schedule's event.
pub async fn handle(deps: &AppDeps, payload: Value) -> Result<Value, chatapp::ApiError> {
    if payload.get("Records").is_some() {
        let event: SqsEvent = serde_json::from_value(payload)
            .map_err(|e| chatapp::ApiError::validation(format!("not an SQS event: {e}")))?;
        let response = handle_jobs(deps, event).await;
        return serde_json::to_value(response).map_err(chatapp::ApiError::internal);
    }
    sweep(deps).await
}

/// The embedded stand-in for the SQS event source mapping: receives the escalation queue's
/// jobs, runs them through [`handle_jobs`] as Lambda would, and acknowledges the ones that did
/// not fail. Returns the number of jobs received.
pub async fn drain_queue(deps: &AppDeps) -> Result<usize, chatapp::adapters::queue::QueueError> {
    crate::drain_local(deps, ESCALATION, |event| handle_jobs(deps, event)).await.map(|d| d.received)
}

/// The local runner's worker: drain the escalation queue every `idle`, and sweep every company
/// every `SWEEP_EVERY` (the schedule's rate on AWS).
pub async fn run_local(deps: &AppDeps, idle: std::time::Duration) {
    const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(15);
    let mut last_sweep = std::time::Instant::now() - SWEEP_EVERY;
    loop {
        if let Err(e) = drain_queue(deps).await {
            tracing::error!(error.chain = %chatapp::error::error_chain(&e), "escalation queue unavailable");
        }
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = std::time::Instant::now();
            if let Err(e) = sweep(deps).await {
                tracing::error!(error.chain = %chatapp::error::error_chain(&e), "escalation sweep failed");
            }
        }
        tokio::time::sleep(idle).await;
    }
}
