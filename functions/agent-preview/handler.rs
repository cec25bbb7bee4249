//! `agent-preview` function: try an agent's configuration before customers see it.
//!
//! POST /admin/agents/{id}/preview
//!
//! Runs a turn with the agent's draft (or `version`, one of its versions) against the company's
//! knowledge, on the given history and message, and answers with what a customer would get and
//! what an admin needs to judge it: the passages retrieved with their scores, the escalation
//! decision and which signal fired, the tool calls, the prompt's token count and the estimated
//! cost (`chatapp::chat::turn::preview`). Nothing is written: no conversation, message, usage,
//! analytics or audit row (a preview changes nothing), and it does not count against the plan's
//! message allowance. With `Accept: text/event-stream` the reply streams as the widget's does:
//! `delta` events (`{"text"}`), then `done` (the whole result). Its own function because it
//! needs the chat model, the embedder and the vector index, which the `agents` function does
//! not load.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chatapp::app::AppDeps;
use chatapp::chat::turn::preview::{preview, PreviewMessage, PreviewResult};
use chatapp::chat::turn::MAX_MESSAGE_CHARS;
use chatapp::error::{ErrorBody, ErrorDetail};
use chatapp::ids::AgentId;
use chatapp::repo;
use chatapp::routes;
use chatapp::status::AgentStatus;
use chatapp::tenant::{Access, Resource};
use chatapp::web::{CompanyParam, IdPath, JsonBody, Tenant};
use chatapp::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

/// What this function may do on AWS: nothing (it reads the vector index and calls the model;
/// template.yaml gives it no S3 or SQS policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

/// Earlier messages a preview may carry.
const MAX_HISTORY: usize = 20;

pub fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base()).routes(routes!(preview_agent))
}

/// An earlier message of the previewed conversation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct HistoryMessage {
    /// `user` (the customer) or `assistant`.
    role: String,
    /// 1-4000 characters.
    content: String,
}

/// The message to preview the agent's answer to.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    /// The customer's message, 1-4000 characters.
    message: String,
    /// Earlier messages, oldest first (at most 20).
    #[serde(default)]
    history: Vec<HistoryMessage>,
    /// A version of the agent to preview instead of its draft.
    version: Option<i32>,
    /// The customer's name, for a prompt template's `{{customer_name}}` (at most 255 characters).
    customer_name: Option<String>,
}

/// Preview the agent's answer to a message with its draft (or a version), without writing
/// anything.
#[utoipa::path(post, path = "/admin/agents/{id}/preview", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), CompanyParam), request_body = PreviewBody,
    responses((status = 200, description = "What a customer would get, and why; or server-sent events",
        content((PreviewResult = "application/json"), (String = "text/event-stream")))))]
async fn preview_agent(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<AgentId>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PreviewBody>,
) -> Result<Response, ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let message = chatapp::chat::turn::validate(&body.message, None)
        .map_err(|_| ApiError::validation(format!("message must be 1-{MAX_MESSAGE_CHARS} characters")))?
        .content;
    if body.history.len() > MAX_HISTORY {
        return Err(ApiError::validation(format!("history must have at most {MAX_HISTORY} messages")));
    }
    let mut history = Vec::with_capacity(body.history.len());
    for (i, m) in body.history.into_iter().enumerate() {
        if !matches!(m.role.as_str(), "user" | "assistant") {
            return Err(ApiError::validation(format!("history[{i}].role must be user or assistant")));
        }
        let content = chatapp::chat::turn::validate(&m.content, None)
            .map_err(|_| {
                ApiError::validation(format!("history[{i}].content must be 1-{MAX_MESSAGE_CHARS} characters"))
            })?
            .content;
        history.push(PreviewMessage { role: m.role, content });
    }
    let customer_name = body.customer_name.map(|n| chatapp::domain::text("customer_name", &n, 255)).transpose()?;
    let tx = deps.db.begin(&ctx).await?;
    let loaded = async {
        let agent = repo::agents::get(&tx, company, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        let config = match body.version {
            None => agent.fields().to_config(),
            Some(v) => repo::agent_versions::get(&tx, company, agent.id, v)
                .await?
                .and_then(|v| v.config)
                .ok_or(ApiError::NotFound)?,
        };
        let template = config.get("promptTemplateId").and_then(Value::as_str).and_then(|s| s.parse::<Uuid>().ok());
        let context = repo::chat::agent_context(&tx, company, agent.id, template).await?;
        Ok::<_, ApiError>(repo::chat::agent_with_config(agent.id, AgentStatus::Active, &config, context))
    }
    .await;
    let agent = tx.finish(loaded).await?;
    if !accepts_events(&headers) {
        let mut ignore = |_: &str| {};
        let result = preview(&deps, &ctx, &agent, &history, &message, customer_name.as_deref(), &mut ignore).await?;
        return Ok(Json(result).into_response());
    }
    let (frames, events) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let deltas = frames.clone();
        let mut sink = |d: &str| {
            let _ = deltas.send(frame("delta", &Delta { text: d }));
        };
        let last = match preview(&deps, &ctx, &agent, &history, &message, customer_name.as_deref(), &mut sink).await {
            Ok(result) => frame("done", &result),
            Err(e) => {
                if let ApiError::Internal(cause) = &e {
                    tracing::error!(error.chain = %chatapp::error::error_chain(cause.as_ref()), "preview failed mid-stream");
                }
                frame("error", &ErrorBody { error: ErrorDetail { code: e.code().to_string(), message: e.to_string() } })
            }
        };
        let _ = frames.send(last);
    });
    let stream = futures_util::stream::unfold(events, |mut events| async move {
        let next = events.recv().await?;
        Some((Ok::<_, Infallible>(next), events))
    });
    Ok((
        [(CONTENT_TYPE, "text/event-stream"), (CACHE_CONTROL, "no-cache")],
        [("x-accel-buffering", "no")],
        Body::from_stream(stream),
    )
        .into_response())
}

fn accepts_events(headers: &HeaderMap) -> bool {
    headers.get("accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/event-stream"))
}

/// A piece of the reply.
#[derive(Serialize)]
struct Delta<'a> {
    text: &'a str,
}

/// One server-sent event.
fn frame(name: &str, data: &impl Serialize) -> String {
    let data = serde_json::to_string(data).expect("event data serialises");
    format!("event: {name}\ndata: {data}\n\n")
}
