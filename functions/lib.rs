//! chatapp's Lambda functions. Each lives in `functions/<name>/`: `handler.rs` holds its
//! routes and logic, `main.rs` only starts it. `template.yaml` names each by its directory
//! (`BuildProperties.Binary`), and the local runner serves the same handlers at the same paths.

#[path = "agent-actions/handler.rs"]
pub mod agent_actions;
#[path = "agent-packages/handler.rs"]
pub mod agent_packages;
#[path = "agent-preview/handler.rs"]
pub mod agent_preview;
#[path = "agent-versions/handler.rs"]
pub mod agent_versions;
#[path = "agent-widgets/handler.rs"]
pub mod agent_widgets;
#[path = "agents/handler.rs"]
pub mod agents;
#[path = "api-keys/handler.rs"]
pub mod api_keys;
#[path = "auth/handler.rs"]
pub mod auth;
#[path = "channel-sender/handler.rs"]
pub mod channel_sender;
#[path = "channel-worker/handler.rs"]
pub mod channel_worker;
#[path = "channels/handler.rs"]
pub mod channels;
#[path = "chat-api/handler.rs"]
pub mod chat_api;
#[path = "companies/handler.rs"]
pub mod companies;
#[path = "email/handler.rs"]
pub mod email;
#[path = "escalation-rules/handler.rs"]
pub mod escalation_rules;
#[path = "escalation-worker/handler.rs"]
pub mod escalation_worker;
#[path = "inbox/handler.rs"]
pub mod inbox;
#[path = "ingest-worker/handler.rs"]
pub mod ingest_worker;
#[path = "instagram/handler.rs"]
pub mod instagram;
#[path = "invitations/handler.rs"]
pub mod invitations;
#[path = "knowledge-articles/handler.rs"]
pub mod knowledge_articles;
#[path = "knowledge-categories/handler.rs"]
pub mod knowledge_categories;
#[path = "knowledge-files/handler.rs"]
pub mod knowledge_files;
#[path = "knowledge-search/handler.rs"]
pub mod knowledge_search;
#[path = "messenger/handler.rs"]
pub mod messenger;
#[path = "migrate/handler.rs"]
pub mod migrate;
#[path = "models/handler.rs"]
pub mod models;
#[path = "outbox-relay/handler.rs"]
pub mod outbox_relay;
#[path = "plans/handler.rs"]
pub mod plans;
#[path = "prompt-templates/handler.rs"]
pub mod prompt_templates;
#[path = "provider-keys/handler.rs"]
pub mod provider_keys;
#[path = "slack/handler.rs"]
pub mod slack;
#[path = "team/handler.rs"]
pub mod team;
#[path = "teams/handler.rs"]
pub mod teams;
#[path = "telegram/handler.rs"]
pub mod telegram;
#[path = "upload-trigger/handler.rs"]
pub mod upload_trigger;
#[path = "whatsapp/handler.rs"]
pub mod whatsapp;
#[path = "widget/handler.rs"]
pub mod widget;

pub mod channel_webhook;
pub mod http_function;

/// Runs `job` on each message body of an SQS batch, one after another; the ones that fail are
/// reported as the batch's item failures, so SQS redelivers those alone.
pub async fn each_sqs_job<F, Fut>(
    event: aws_lambda_events::sqs::SqsEvent,
    mut job: F,
) -> aws_lambda_events::sqs::SqsBatchResponse
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), ()>>,
{
    let mut failures = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        if job(message.body.unwrap_or_default()).await.is_err() {
            failures.push(serde_json::json!({"itemIdentifier": id}));
        }
    }
    serde_json::from_value(serde_json::json!({"batchItemFailures": failures})).expect("batch response shape")
}

/// The embedded stand-in for an SQS event source mapping: receives `queue`'s jobs, hands them to
/// `handle` as the SQS event Lambda would pass, and acknowledges the ones that did not fail.
/// Returns when the queue has nothing visible.
pub async fn drain_local<F, Fut>(
    deps: &chatapp::app::AppDeps,
    queue: &str,
    mut handle: F,
) -> Result<Drained, chatapp::adapters::queue::QueueError>
where
    F: FnMut(aws_lambda_events::sqs::SqsEvent) -> Fut,
    Fut: std::future::Future<Output = aws_lambda_events::sqs::SqsBatchResponse>,
{
    let mut total = Drained::default();
    loop {
        let jobs = deps.queue.receive(queue, 10).await?;
        if jobs.is_empty() {
            return Ok(total);
        }
        let response = handle(sqs_event(&jobs)).await;
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        for job in &jobs {
            if !failed.contains(&job.id.as_str()) {
                deps.queue.delete(queue, &job.receipt).await?;
            }
        }
        total.received += jobs.len();
        total.failed += failed.len();
    }
}

/// What one pass over an embedded queue did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    pub received: usize,
    pub failed: usize,
}

/// Jobs received from the embedded queue as the SQS event Lambda would pass: what the local
/// runner's stand-ins for the event source mappings hand to the workers' handlers.
pub fn sqs_event(jobs: &[chatapp::adapters::queue::Job]) -> aws_lambda_events::sqs::SqsEvent {
    let records: Vec<serde_json::Value> = jobs
        .iter()
        .map(|j| {
            serde_json::json!({
                "messageId": j.id,
                "receiptHandle": j.receipt,
                "body": j.payload.to_string(),
                "attributes": {"ApproximateReceiveCount": j.receive_count.to_string()},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({"Records": records})).expect("SQS event shape")
}

/// Every function's declared AWS access, by binary name (`tests/iam.rs` holds template.yaml's
/// policies to it).
pub fn aws_access(binary: &str) -> Option<chatapp::adapters::access::AwsAccess> {
    Some(match binary {
        "auth" => auth::AWS,
        "agents" => agents::AWS,
        "agent-actions" => agent_actions::AWS,
        "agent-versions" => agent_versions::AWS,
        "agent-widgets" => agent_widgets::AWS,
        "escalation-rules" => escalation_rules::AWS,
        "companies" => companies::AWS,
        "team" => team::AWS,
        "invitations" => invitations::AWS,
        "api-keys" => api_keys::AWS,
        "knowledge-categories" => knowledge_categories::AWS,
        "knowledge-files" => knowledge_files::AWS,
        "knowledge-articles" => knowledge_articles::AWS,
        "knowledge-search" => knowledge_search::AWS,
        "widget" | "widget-stream" => widget::AWS,
        "chat-api" => chat_api::AWS,
        "upload-trigger" => upload_trigger::AWS,
        "ingest-worker" => ingest_worker::AWS,
        "migrate" => migrate::AWS,
        "inbox" => inbox::AWS,
        "escalation-worker" => escalation_worker::AWS,
        "outbox-relay" => outbox_relay::AWS,
        "channels" => channels::AWS,
        "channel-worker" => channel_worker::AWS,
        "channel-sender" => channel_sender::AWS,
        "whatsapp" => whatsapp::AWS,
        "messenger" => messenger::AWS,
        "instagram" => instagram::AWS,
        "telegram" => telegram::AWS,
        "slack" => slack::AWS,
        "teams" => teams::AWS,
        "email" => email::AWS,
        "models" => models::AWS,
        "plans" => plans::AWS,
        "prompt-templates" => prompt_templates::AWS,
        "agent-packages" => agent_packages::AWS,
        "agent-preview" => agent_preview::AWS,
        "provider-keys" => provider_keys::AWS,
        _ => return None,
    })
}
