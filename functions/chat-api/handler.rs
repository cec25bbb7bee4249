//! `chat-api` function: the custom channel. A company's own backend talks to its agents with an
//! API key holding `write:messages` — the same chat turn as the widget, no browser involved.
//!
//! POST /api/v1/agents/{agent_id}/conversations  {"customer": {"external_id", "name", "email"}}
//! POST /api/v1/conversations/{id}/messages      {"content", "client_message_id"} (the chat turn)
//! GET  /api/v1/conversations/{id}/messages      history

use chatapp::app::AppDeps;
use chatapp::auth::tokens;
use chatapp::chat::turn;
use chatapp::domain::{self, Email};
use chatapp::http::{self, HandlerResult};
use chatapp::repo::chat as repo;
use chatapp::tenant::{Access, Principal, Resource};
use chatapp::{ApiError, TenantCtx};
use lambda_http::Request;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

pub async fn handle(deps: &AppDeps, req: Request) -> HandlerResult {
    let path = req.uri().path().to_string();
    let ctx = deps.auth.authenticate(&req).await?;
    if !matches!(ctx.principal(), Principal::ApiKey { .. }) {
        return Err(ApiError::forbidden("api_key_required", "the chat API is for API keys (write:messages)"));
    }
    if let Some(segs) = http::segments_after(&path, "/api/v1/agents") {
        return match (req.method().as_str(), segs.as_slice()) {
            ("POST", [agent, "conversations"]) => start(deps, &ctx, &req, http::path_id(agent)?).await,
            (_, [_, "conversations"]) => Err(ApiError::MethodNotAllowed),
            _ => Err(ApiError::NotFound),
        };
    }
    let segs = http::segments_after(&path, "/api/v1/conversations").ok_or(ApiError::NotFound)?;
    match (req.method().as_str(), segs.as_slice()) {
        ("POST", [id, "messages"]) => send(deps, &ctx, &req, http::path_id(id)?).await,
        ("GET", [id, "messages"]) => history(deps, &ctx, http::path_id(id)?).await,
        (_, [_, "messages"]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Customer {
    external_id: Option<String>,
    name: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    customer: Customer,
}

async fn start(deps: &AppDeps, ctx: &TenantCtx, req: &Request, agent: Uuid) -> HandlerResult {
    ctx.authorize(Resource::Messages, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let body: StartBody = if http::body_bytes(req).is_empty() {
        StartBody { customer: Customer::default() }
    } else {
        http::parse_json(req, deps.cfg.max_body_bytes)?
    };
    let external = domain::optional_text("customer.external_id", body.customer.external_id.as_deref(), 255)?;
    let name = domain::optional_text("customer.name", body.customer.name.as_deref(), 255)?;
    let email = body.customer.email.as_deref().map(|e| Email::parse("customer.email", e)).transpose()?;
    // The conversation token is never handed out here: the API key is the credential.
    let token_hash = tokens::sha256_hex(&format!("api_{}", tokens::random_secret()));
    let tx = deps.db.begin(ctx).await?;
    let created = async {
        // RLS and the company filter: another company's agent id is simply not found.
        let a = repo::agent(&tx, company, agent).await?.ok_or(ApiError::NotFound)?;
        if a.status != "active" {
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
                agent_id: agent,
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
    let (id, customer) = tx.finish(created).await?;
    http::created(&json!({"conversation_id": id, "customer_id": customer}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    content: String,
    client_message_id: Option<String>,
}

/// API keys reach the custom channel's conversations only, never the widget's.
async fn require_custom(deps: &AppDeps, ctx: &TenantCtx, conversation: Uuid) -> Result<(), ApiError> {
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(ctx).await?;
    let channel = repo::channel(&tx, company, conversation).await.map_err(ApiError::from);
    match tx.finish(channel).await?.as_deref() {
        Some("custom") => Ok(()),
        _ => Err(ApiError::NotFound),
    }
}

async fn send(deps: &AppDeps, ctx: &TenantCtx, req: &Request, conversation: Uuid) -> HandlerResult {
    ctx.authorize(Resource::Messages, Access::Write)?;
    require_custom(deps, ctx, conversation).await?;
    let body: SendBody = http::parse_json(req, deps.cfg.max_body_bytes)?;
    let input = turn::validate(&body.content, body.client_message_id.as_deref())?;
    let mut ignore = |_: &str| {};
    let out = turn::turn(deps, ctx, conversation, &input, &mut ignore).await?;
    http::ok(&json!({
        "message": out.message,
        "reply": out.reply,
        "citations": out.reply.as_ref().map(|r| r.metadata["citations"].clone()).unwrap_or(json!([])),
        "escalation": out.escalation,
        "handoff": out.handoff,
        "replayed": out.replayed,
    }))
}

async fn history(deps: &AppDeps, ctx: &TenantCtx, conversation: Uuid) -> HandlerResult {
    ctx.authorize(Resource::Messages, Access::Read)?;
    // Unknown, other-company and widget conversations all look the same: not found.
    require_custom(deps, ctx, conversation).await?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(ctx).await?;
    let messages = repo::history(&tx, company, conversation, 200).await.map_err(ApiError::from);
    let messages = tx.finish(messages).await?;
    http::ok(&json!({"conversation_id": conversation, "messages": messages}))
}
