//! Who owns a conversation, changed on purpose (docs/human-loop.md): claim, assign, transfer,
//! release, resolve, reopen, hand back to the AI.
//!
//! Each change locks the conversation, checks the transition against what it reads under the
//! lock (so concurrent changes run one after another, and the loser sees the winner's result),
//! then calls the one SQL function that makes it (`chatapp_handoff_*`: the system message the
//! customer sees, the event, the escalation's times), writes its audit row, commits, and relays
//! what it queued (events for webhooks, a wake-up of the assignment worker).

use axum::extract::State;
use axum::Json;
use chatapp::app::AppDeps;
use chatapp::db::TenantTx;
use chatapp::domain;
use chatapp::ids::ConversationId;
use chatapp::repo::inbox::conversations::{
    self as repo, ConversationSummary, Locked, EVENT_ASSIGNED, EVENT_REOPENED, EVENT_TRANSFERRED,
};
use chatapp::routes;
use chatapp::status::ConversationStatus;
use chatapp::tenant::Access;
use chatapp::web::{CompanyParam, IdPath, JsonBody, JsonOrEmpty, RequestMeta, Tenant};
use chatapp::ApiError;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use super::conversations::{commit, invalid_transition, lock, not_owner, owner_state, record, summary_of, Caller};

pub(crate) fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(claim))
        .routes(routes!(assign))
        .routes(routes!(transfer))
        .routes(routes!(release))
        .routes(routes!(resolve))
        .routes(routes!(reopen))
        .routes(routes!(handback))
}

/// The system message of a resolved conversation.
const RESOLVED_TEXT: &str = "This conversation has been resolved.";
/// The system message of a conversation handed back to the AI, unless the caller writes one.
const HANDBACK_TEXT: &str = "The assistant is back. Ask me anything.";
const MAX_HANDBACK_CHARS: usize = 1000;

/// The 409 of a conversation with someone else.
fn taken() -> ApiError {
    ApiError::conflict("conversation_taken", "another support agent has taken this conversation")
}

/// The conversation after a change of owner, with the change's audit row (the owner before
/// and after), in the change's transaction.
async fn changed(
    tx: &TenantTx,
    caller: &Caller,
    meta: &RequestMeta,
    action: &str,
    id: ConversationId,
    before: &Locked,
) -> Result<ConversationSummary, ApiError> {
    let after = summary_of(tx, caller, id).await?;
    let (was, now) =
        (owner_state(before.status, before.assigned_agent_id), owner_state(after.status, after.assigned_agent_id));
    record(tx, meta, action, id, Some(was), Some(now)).await?;
    Ok(after)
}

/// The person a conversation may go to: an active support agent or company admin of the company.
async fn check_assignee(tx: &TenantTx, caller: &Caller, user: Uuid) -> Result<(), ApiError> {
    if repo::assignable(tx, caller.company, user).await? {
        Ok(())
    } else {
        Err(ApiError::validation("user_id must name an active support agent or company admin of this company"))
    }
}

/// Take a conversation that waits for a person, or take it over from the AI. Claiming one the
/// caller already owns changes nothing.
#[utoipa::path(post, path = "/inbox/conversations/{id}/claim", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), CompanyParam),
    responses((status = 200, description = "The conversation, now the caller's", body = ConversationSummary)))]
async fn claim(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ConversationId>,
    meta: RequestMeta,
) -> Result<Json<ConversationSummary>, ApiError> {
    let caller = Caller::of(&ctx, Access::Write)?;
    caller.require_member()?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let locked = lock(&tx, &caller, id).await?;
        match locked.status {
            ConversationStatus::WithHuman if locked.assigned_agent_id == Some(caller.user) => {
                return summary_of(&tx, &caller, id).await;
            }
            ConversationStatus::WithHuman => return Err(taken()),
            ConversationStatus::Resolved | ConversationStatus::Abandoned => {
                return Err(invalid_transition(locked.status, "claimed"))
            }
            ConversationStatus::Active | ConversationStatus::WaitingHuman => {}
        }
        repo::assign(&tx, id.as_uuid(), caller.user, caller.user, EVENT_ASSIGNED).await?;
        changed(&tx, &caller, &meta, "conversation.claim", id, &locked).await
    }
    .await;
    Ok(Json(commit(&deps, tx, result).await?))
}

/// The person to give the conversation to.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AssigneeBody {
    /// An active support agent or company admin of the company.
    user_id: Uuid,
}

/// Give a conversation to a support agent (company admins): one waiting, one the AI has, or one
/// with someone else (then a transfer). Assigning it to its current owner changes nothing.
#[utoipa::path(post, path = "/inbox/conversations/{id}/assign", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), CompanyParam), request_body = AssigneeBody,
    responses((status = 200, description = "The conversation, now the assignee's", body = ConversationSummary)))]
async fn assign(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ConversationId>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<AssigneeBody>,
) -> Result<Json<ConversationSummary>, ApiError> {
    let caller = Caller::of(&ctx, Access::Write)?;
    if !caller.is_admin() {
        return Err(ApiError::forbidden(
            "forbidden",
            "assigning conversations is for company admins; support agents claim or transfer them",
        ));
    }
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let locked = lock(&tx, &caller, id).await?;
        if locked.status.is_closed() {
            return Err(invalid_transition(locked.status, "assigned"));
        }
        check_assignee(&tx, &caller, body.user_id).await?;
        if locked.owned_by(body.user_id) {
            return summary_of(&tx, &caller, id).await;
        }
        let event = if locked.status == ConversationStatus::WithHuman { EVENT_TRANSFERRED } else { EVENT_ASSIGNED };
        repo::assign(&tx, id.as_uuid(), body.user_id, caller.user, event).await?;
        changed(&tx, &caller, &meta, "conversation.assign", id, &locked).await
    }
    .await;
    Ok(Json(commit(&deps, tx, result).await?))
}

/// Hand a conversation the caller owns (admins: any one with a person) to a colleague. A support
/// agent who hands one on no longer sees it; the answer is the conversation as it was left.
#[utoipa::path(post, path = "/inbox/conversations/{id}/transfer", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), CompanyParam), request_body = AssigneeBody,
    responses((status = 200, description = "The conversation, now the colleague's", body = ConversationSummary)))]
async fn transfer(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ConversationId>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<AssigneeBody>,
) -> Result<Json<ConversationSummary>, ApiError> {
    let caller = Caller::of(&ctx, Access::Write)?;
    if body.user_id == caller.user {
        return Err(ApiError::validation("user_id is you: a conversation is transferred to someone else"));
    }
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let locked = lock(&tx, &caller, id).await?;
        if locked.status != ConversationStatus::WithHuman {
            return Err(invalid_transition(locked.status, "transferred"));
        }
        if !locked.owned_by(caller.user) && !caller.is_admin() {
            return Err(not_owner());
        }
        if locked.assigned_agent_id == Some(body.user_id) {
            return Err(ApiError::validation("the conversation is already with that user"));
        }
        check_assignee(&tx, &caller, body.user_id).await?;
        let before = summary_of(&tx, &caller, id).await?;
        repo::assign(&tx, id.as_uuid(), body.user_id, caller.user, EVENT_TRANSFERRED).await?;
        // A support agent no longer sees what they handed on: the answer is then what they left.
        let after = match repo::summary(&tx, caller.company, id.as_uuid()).await? {
            Some(s) => s,
            None => ConversationSummary {
                status: ConversationStatus::WithHuman,
                assigned_agent_id: Some(body.user_id),
                snoozed_until: None,
                ..before
            },
        };
        record(
            &tx,
            &meta,
            "conversation.transfer",
            id,
            Some(owner_state(locked.status, locked.assigned_agent_id)),
            Some(owner_state(ConversationStatus::WithHuman, Some(body.user_id))),
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(commit(&deps, tx, result).await?))
}

/// Give a conversation the caller owns (admins: any one with a person) back to the waiting
/// queue, in its original place; the next available support agent gets it.
#[utoipa::path(post, path = "/inbox/conversations/{id}/release", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), CompanyParam),
    responses((status = 200, description = "The conversation, waiting again", body = ConversationSummary)))]
async fn release(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ConversationId>,
    meta: RequestMeta,
) -> Result<Json<ConversationSummary>, ApiError> {
    let caller = Caller::of(&ctx, Access::Write)?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let locked = lock(&tx, &caller, id).await?;
        if locked.status != ConversationStatus::WithHuman {
            return Err(invalid_transition(locked.status, "released"));
        }
        if !locked.owned_by(caller.user) && !caller.is_admin() {
            return Err(not_owner());
        }
        repo::requeue(&tx, id.as_uuid(), "released").await?;
        changed(&tx, &caller, &meta, "conversation.release", id, &locked).await
    }
    .await;
    Ok(Json(commit(&deps, tx, result).await?))
}

/// Resolve an open conversation (a support agent: one they own, or one nobody owns). Closes its
/// escalation with its handle time; the customer sees that it was resolved.
#[utoipa::path(post, path = "/inbox/conversations/{id}/resolve", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), CompanyParam),
    responses((status = 200, description = "The resolved conversation", body = ConversationSummary)))]
async fn resolve(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ConversationId>,
    meta: RequestMeta,
) -> Result<Json<ConversationSummary>, ApiError> {
    let caller = Caller::of(&ctx, Access::Write)?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let locked = lock(&tx, &caller, id).await?;
        if locked.status.is_closed() {
            return Err(invalid_transition(locked.status, "resolved"));
        }
        if locked.status == ConversationStatus::WithHuman && !locked.owned_by(caller.user) && !caller.is_admin() {
            return Err(not_owner());
        }
        repo::close(&tx, id.as_uuid(), ConversationStatus::Resolved, caller.user, RESOLVED_TEXT).await?;
        changed(&tx, &caller, &meta, "conversation.resolve", id, &locked).await
    }
    .await;
    Ok(Json(commit(&deps, tx, result).await?))
}

/// Take a resolved conversation up again: it is the caller's, with a person.
#[utoipa::path(post, path = "/inbox/conversations/{id}/reopen", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), CompanyParam),
    responses((status = 200, description = "The conversation, now the caller's", body = ConversationSummary)))]
async fn reopen(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ConversationId>,
    meta: RequestMeta,
) -> Result<Json<ConversationSummary>, ApiError> {
    let caller = Caller::of(&ctx, Access::Write)?;
    caller.require_member()?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let locked = lock(&tx, &caller, id).await?;
        if locked.status != ConversationStatus::Resolved {
            return Err(invalid_transition(locked.status, "reopened"));
        }
        repo::assign(&tx, id.as_uuid(), caller.user, caller.user, EVENT_REOPENED).await?;
        changed(&tx, &caller, &meta, "conversation.reopen", id, &locked).await
    }
    .await;
    Ok(Json(commit(&deps, tx, result).await?))
}

/// What the customer reads when the AI takes over again.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct HandbackBody {
    /// At most 1000 characters; default "The assistant is back. Ask me anything."
    message: Option<String>,
}

/// Give the conversation back to the AI: one the caller owns (admins: any one with a person),
/// or one still waiting for a person. Closes its escalation; the AI answers the next message.
#[utoipa::path(post, path = "/inbox/conversations/{id}/handback", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), CompanyParam),
    request_body(content = Option<HandbackBody>, description = "Optional; an empty body sends the default message"),
    responses((status = 200, description = "The conversation, the AI's again", body = ConversationSummary)))]
async fn handback(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ConversationId>,
    meta: RequestMeta,
    JsonOrEmpty(body): JsonOrEmpty<HandbackBody>,
) -> Result<Json<ConversationSummary>, ApiError> {
    let caller = Caller::of(&ctx, Access::Write)?;
    let text = domain::optional_text("message", body.message.as_deref(), MAX_HANDBACK_CHARS)?
        .unwrap_or_else(|| HANDBACK_TEXT.to_string());
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let locked = lock(&tx, &caller, id).await?;
        match locked.status {
            ConversationStatus::WithHuman if !locked.owned_by(caller.user) && !caller.is_admin() => {
                return Err(not_owner())
            }
            ConversationStatus::WithHuman | ConversationStatus::WaitingHuman => {}
            other => return Err(invalid_transition(other, "handed back")),
        }
        repo::close(&tx, id.as_uuid(), ConversationStatus::Active, caller.user, &text).await?;
        changed(&tx, &caller, &meta, "conversation.handback", id, &locked).await
    }
    .await;
    Ok(Json(commit(&deps, tx, result).await?))
}
