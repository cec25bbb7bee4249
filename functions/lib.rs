//! chatapp's Lambda functions. Each lives in `functions/<name>/`: `handler.rs` holds its
//! routes and logic, `main.rs` only starts it. `template.yaml` names each by its directory
//! (`BuildProperties.Binary`), and the local runner serves the same handlers at the same paths.

#[path = "agents/handler.rs"]
pub mod agents;
#[path = "api-keys/handler.rs"]
pub mod api_keys;
#[path = "auth/handler.rs"]
pub mod auth;
#[path = "chat-api/handler.rs"]
pub mod chat_api;
#[path = "companies/handler.rs"]
pub mod companies;
#[path = "escalation-worker/handler.rs"]
pub mod escalation_worker;
#[path = "inbox/handler.rs"]
pub mod inbox;
#[path = "ingest-worker/handler.rs"]
pub mod ingest_worker;
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
#[path = "migrate/handler.rs"]
pub mod migrate;
#[path = "outbox-relay/handler.rs"]
pub mod outbox_relay;
#[path = "team/handler.rs"]
pub mod team;
#[path = "upload-trigger/handler.rs"]
pub mod upload_trigger;
#[path = "widget/handler.rs"]
pub mod widget;

pub mod http_function;

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
        _ => return None,
    })
}
