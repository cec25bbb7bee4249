//! `chat-api` function: the custom channel. A company's own backend talks to its agents with an
//! API key holding `write:messages` — the same chat turn as the widget, no browser involved.
//!
//! POST /api/v1/agents/{agent_id}/conversations  {"customer": {"external_id", "name", "email"}}
//! POST /api/v1/conversations/{id}/messages      {"content", "client_message_id"} (the chat turn)
//! GET  /api/v1/conversations/{id}/messages      history

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::AppDeps;
use chatapp::auth::tokens;
use chatapp::chat::turn::{self, TurnRequest, TurnResponse};
use chatapp::domain::{self, Email};
use chatapp::ids::{AgentId, ConversationId};
use chatapp::repo::chat::{self as repo, Message};
use chatapp::routes;
use chatapp::status::AgentStatus;
use chatapp::tenant::{Access, Principal, Resource};
use chatapp::web::{IdPath, JsonBody, JsonOrEmpty, Tenant};
use chatapp::{ApiError, TenantCtx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

/// What this function may do on AWS (a turn queues escalations and outbound events); template.yaml grants exactly this (tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess {
    s3: false,
    send: &[chatapp::adapters::queue::ESCALATION, chatapp::adapters::queue::OUTBOUND],
    poll: &[],
    email: false,
};

pub fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base()).routes(routes!(start)).routes(routes!(send, history))
}

/// The caller: an API key (`Authorization: Bearer ck_…`). Access tokens of users are refused,
/// before anything else about the request is looked at.
struct ApiKey(TenantCtx);

impl FromRequestParts<AppDeps> for ApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, deps: &AppDeps) -> Result<Self, ApiError> {
        let Tenant(ctx) = Tenant::from_request_parts(parts, deps).await?;
        if !matches!(ctx.principal(), Principal::ApiKey { .. }) {
            return Err(ApiError::forbidden("api_key_required", "the chat API is for API keys (write:messages)"));
        }
        Ok(ApiKey(ctx))
    }
}

/// The customer the conversation is with; all fields optional.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewCustomer {
    /// Your id for the customer: conversations with the same one share a customer record.
    external_id: Option<String>,
    name: Option<String>,
    #[schema(value_type = Option<String>, format = Email)]
    email: Option<Email>,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct StartConversationBody {
    #[serde(default)]
    customer: NewCustomer,
}

/// A conversation just started.
#[derive(Serialize, ToSchema)]
struct ConversationStarted {
    conversation_id: Uuid,
    customer_id: Uuid,
}

/// Start a conversation with one of the company's agents.
#[utoipa::path(post, path = "/api/v1/agents/{agent_id}/conversations", tag = "chat-api", security(("bearer" = [])),
    params(("agent_id" = Uuid, Path, description = "Agent id")),
    request_body(content = Option<StartConversationBody>, description = "Optional; an empty body starts an anonymous conversation"),
    responses((status = 201, description = "The conversation", body = ConversationStarted)))]
async fn start(
    State(deps): State<AppDeps>,
    ApiKey(ctx): ApiKey,
    IdPath(agent): IdPath<AgentId>,
    JsonOrEmpty(body): JsonOrEmpty<StartConversationBody>,
) -> Result<(StatusCode, Json<ConversationStarted>), ApiError> {
    ctx.authorize(Resource::Messages, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let external = domain::optional_text("customer.external_id", body.customer.external_id.as_deref(), 255)?;
    let name = domain::optional_text("customer.name", body.customer.name.as_deref(), 255)?;
    let email = body.customer.email;
    // The conversation token is never handed out here: the API key is the credential.
    let token_hash = tokens::sha256_hex(&format!("api_{}", tokens::random_secret()));
    let tx = deps.db.begin(&ctx).await?;
    let created = async {
        // RLS and the company filter: another company's agent id is simply not found.
        let a = repo::agent(&tx, company, agent.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        if a.status != AgentStatus::Active {
            return Err(ApiError::conflict("agent_unavailable", "this assistant is not taking messages right now"));
        }
        let customer = repo::upsert_customer(
            &tx,
            company,
            &repo::CustomerFields {
                external_id: external.as_deref(),
                email: email.as_ref().map(Email::as_str),
                name: name.as_deref(),
            },
        )
        .await?;
        let id = repo::create_conversation(
            &tx,
            &repo::NewConversation {
                company_id: company,
                agent_id: agent.as_uuid(),
                token_hash: &token_hash,
                channel: "custom",
                customer_id: customer,
                customer_name: name.as_deref(),
                customer_email: email.as_ref().map(Email::as_str),
                metadata: &json!({"external_id": external}),
            },
        )
        .await?;
        Ok::<_, ApiError>((id, customer))
    }
    .await;
    let (conversation_id, customer_id) = tx.finish(created).await?;
    Ok((StatusCode::CREATED, Json(ConversationStarted { conversation_id, customer_id })))
}

/// API keys reach the custom channel's conversations only, never the widget's.
async fn require_custom(deps: &AppDeps, ctx: &TenantCtx, conversation: ConversationId) -> Result<(), ApiError> {
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(ctx).await?;
    let channel = repo::channel(&tx, company, conversation.as_uuid()).await.map_err(ApiError::from);
    match tx.finish(channel).await?.as_deref() {
        Some("custom") => Ok(()),
        _ => Err(ApiError::NotFound),
    }
}

/// The chat turn: the customer's message in, the agent's answer (or a handoff) out.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "chat-api", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")), request_body = TurnRequest,
    responses((status = 200, description = "The stored message and the answer", body = TurnResponse)))]
async fn send(
    State(deps): State<AppDeps>,
    ApiKey(ctx): ApiKey,
    IdPath(conversation): IdPath<ConversationId>,
    JsonBody(body): JsonBody<TurnRequest>,
) -> Result<Json<TurnResponse>, ApiError> {
    ctx.authorize(Resource::Messages, Access::Write)?;
    require_custom(&deps, &ctx, conversation).await?;
    let input = turn::validate(&body.content, body.client_message_id.as_deref())?;
    let mut ignore = |_: &str| {};
    let out = turn::turn(&deps, &ctx, conversation.as_uuid(), &input, &mut ignore).await?;
    Ok(Json(TurnResponse::from(out)))
}

/// A conversation's messages, oldest first.
#[derive(Serialize, ToSchema)]
struct ConversationHistory {
    conversation_id: Uuid,
    messages: Vec<Message>,
}

/// The conversation's history (its last 200 messages).
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "chat-api", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    responses((status = 200, description = "The messages", body = ConversationHistory)))]
async fn history(
    State(deps): State<AppDeps>,
    ApiKey(ctx): ApiKey,
    IdPath(conversation): IdPath<ConversationId>,
) -> Result<Json<ConversationHistory>, ApiError> {
    ctx.authorize(Resource::Messages, Access::Read)?;
    // Unknown, other-company and widget conversations all look the same: not found.
    require_custom(&deps, &ctx, conversation).await?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let messages = repo::history(&tx, company, conversation.as_uuid(), 200).await.map_err(ApiError::from);
    let messages = tx.finish(messages).await?;
    Ok(Json(ConversationHistory { conversation_id: conversation.as_uuid(), messages }))
}
