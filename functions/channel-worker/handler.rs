//! `channel-worker` function: the chat turn of a message that arrived on a messaging channel.
//!
//! Consumes the `channel-turn` queue (jobs written by the webhooks in the transaction that
//! stored the message). The turn is the widget's, with the inbound row's id as the client
//! message id, so a redelivered job replays the stored result instead of answering twice; while
//! a human owns the conversation the AI stays silent. The reply (any reply stored in a channel's
//! conversation) gets its delivery job from the database, in the turn's own transaction.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use chatapp::adapters::queue::{CHANNEL_SEND, CHANNEL_TURN, ESCALATION, OUTBOUND};
use chatapp::app::AppDeps;
use chatapp::chat::turn::{self, MAX_MESSAGE_CHARS};
use chatapp::repo::channels as repo;
use chatapp::ApiError;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

/// What this function may do on AWS (consumes the turn queue; relays the turn's handoff jobs,
/// outbound events and reply deliveries); template.yaml grants exactly this (tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess {
    s3: false,
    send: &[ESCALATION, OUTBOUND, CHANNEL_SEND],
    poll: &[CHANNEL_TURN],
    email: false,
};

/// A job on the `channel-turn` queue.
#[derive(Debug, Deserialize)]
pub struct TurnJob {
    pub company_id: Uuid,
    pub inbound_id: Uuid,
}

/// What became of one inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// The turn ran (the AI answered, handed over, or stayed silent for a human).
    Answered { message: Uuid, reply: Option<Uuid> },
    /// The turn was refused for good (agent paused, plan limit, ...): recorded on the row.
    Refused { code: String },
    /// Already handled by an earlier delivery of the job, or the row is gone.
    AlreadyDone,
}

/// Runs the turn of one inbound message.
pub async fn handle_job(deps: &AppDeps, job: &TurnJob) -> Result<Handled, ApiError> {
    let ctx = chatapp::auth::worker_ctx(job.company_id);
    let tx = deps.db.begin(&ctx).await?;
    let row = repo::inbound(&tx, job.company_id, job.inbound_id).await.map_err(ApiError::from);
    let Some(inbound) = tx.finish(row).await? else {
        return Ok(Handled::AlreadyDone);
    };
    if inbound.status != "queued" {
        return Ok(Handled::AlreadyDone);
    }
    if inbound.opens_conversation {
        let tx = deps.db.begin(&ctx).await?;
        let greeted = repo::greet(&tx, job.company_id, &inbound).await.map_err(ApiError::from);
        tx.finish(greeted).await?;
    }
    chatapp::channels::outbound::typing(deps, job.company_id, inbound.id).await;
    let content = turn_text(&inbound.content, &inbound.attachments);
    let mut input = turn::validate(&content, Some(&format!("inbound:{}", inbound.id)))?;
    input.hours = hours_policy(&inbound.settings);
    let mut ignore = |_: &str| {};
    let outcome = turn::turn(deps, &ctx, inbound.conversation_id, &input, &mut ignore).await;
    let (handled, message, error) = match outcome {
        Ok(out) => {
            let handled = Handled::Answered { message: out.message.id, reply: out.reply.as_ref().map(|r| r.id) };
            (handled, Some(out.message.id), None)
        }
        // Another delivery of this job is running the same turn: retried later, when it has
        // finished (and the retry replays its result).
        Err(e) if e.code() == "duplicate_message" => return Err(e),
        // A refusal is final (a retry would be refused again): recorded, not retried.
        Err(e) if e.status().is_client_error() => {
            tracing::warn!(inbound = %inbound.id, code = e.code(), error = %e, "channel turn refused");
            (Handled::Refused { code: e.code().to_string() }, None, Some(e.to_string()))
        }
        Err(e) => return Err(e),
    };
    let tx = deps.db.begin(&ctx).await?;
    let done = repo::finish_inbound(&tx, inbound.id, message, error.as_deref()).await.map_err(ApiError::from);
    tx.finish(done).await?;
    Ok(handled)
}

/// The channel's `settings.business_hours` (written by the `channels` routes): `always_open`, or
/// the agent's hours with the channel's own outside-hours message, or (absent) the agent's.
fn hours_policy(settings: &Value) -> turn::HoursPolicy {
    let hours = &settings["business_hours"];
    match (hours["mode"].as_str(), hours["outside_message"].as_str()) {
        (Some("always_open"), _) => turn::HoursPolicy::AlwaysOpen,
        (_, Some(message)) if !message.trim().is_empty() => turn::HoursPolicy::OutsideMessage(message.to_string()),
        _ => turn::HoursPolicy::Agent,
    }
}

/// The text the turn sees: the message's text (cut to the turn's limit), or for media without
/// a caption, what was sent ("[image]"), so the customer's message is never dropped.
fn turn_text(content: &str, attachments: &Value) -> String {
    let content = content.trim();
    if !content.is_empty() {
        return content.chars().take(MAX_MESSAGE_CHARS).collect();
    }
    let kinds: Vec<String> = attachments
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.get("kind").and_then(Value::as_str)).map(|k| format!("[{k}]")).collect())
        .unwrap_or_default();
    if kinds.is_empty() {
        "[empty message]".to_string()
    } else {
        kinds.join(" ")
    }
}

/// One SQS batch; a failure is reported for that message alone, so SQS redelivers it.
pub async fn handle_jobs(deps: &AppDeps, event: SqsEvent) -> SqsBatchResponse {
    crate::each_sqs_job(event, |body| async move {
        let job: TurnJob = match serde_json::from_str(&body) {
            Ok(job) => job,
            Err(e) => {
                // Never valid: dropped with an error in the log, not retried.
                tracing::error!(error = %e, "malformed channel turn job dropped");
                return Ok(());
            }
        };
        match handle_job(deps, &job).await {
            Ok(handled) => {
                tracing::info!(inbound = %job.inbound_id, ?handled, "channel turn done");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error.chain = %chatapp::error::error_chain(&e), inbound = %job.inbound_id, "channel turn failed");
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
    crate::drain_local(deps, CHANNEL_TURN, |event| handle_jobs(deps, event)).await.map(|d| d.received)
}

/// The local runner's worker: drain the queue every `idle`.
pub async fn run_local(deps: &AppDeps, idle: std::time::Duration) {
    loop {
        if let Err(e) = drain_queue(deps).await {
            tracing::error!(error.chain = %chatapp::error::error_chain(&e), "channel turn queue unavailable");
        }
        tokio::time::sleep(idle).await;
    }
}
