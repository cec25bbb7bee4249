//! The inbox's presence routes: the caller's own status, capacity and heartbeats, and the
//! team's presence for the transfer picker.
//!
//! GET /inbox/me · PUT /inbox/me/status · POST /inbox/me/heartbeat · GET /inbox/agents
//!
//! Going online (or taking more conversations while online) may let waiting conversations be
//! assigned: the change queues a `drain` job for the escalation worker through the outbox, in
//! its own transaction, and relays it right after the commit.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::AppDeps;
use chatapp::audit::{self, AuditEntry};
use chatapp::repo::inbox::presence::{self, AgentPresence, Presence, StatusChange};
use chatapp::routes;
use chatapp::status::SupportAgentStatus;
use chatapp::tenant::{Access, Resource};
use chatapp::web::{CompanyParam, JsonBody, Page, PageParams, Paged, RequestMeta, Tenant};
use chatapp::{ApiError, TenantCtx};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(set_status))
        .routes(routes!(heartbeat))
        .routes(routes!(list_agents))
}

/// The signed-in user acting in the inbox.
fn caller(ctx: &TenantCtx) -> Result<Uuid, ApiError> {
    let user = ctx.user_id().ok_or_else(|| ApiError::forbidden("forbidden", "the inbox is for signed-in users"))?;
    ctx.authorize(Resource::Conversations, Access::Read)?;
    Ok(user)
}

/// The caller and their company, for their own presence. A master admin acts for a company
/// without belonging to it, so has no presence there (the row's user must be of its company).
fn member(ctx: &TenantCtx) -> Result<(Uuid, Uuid), ApiError> {
    let user = caller(ctx)?;
    if ctx.is_master_admin() {
        return Err(ApiError::forbidden("forbidden", "master admins have no presence in a company's inbox"));
    }
    Ok((user, ctx.require_company()?.as_uuid()))
}

/// The caller's presence: status, capacity and load (offline with capacity 5 at first).
#[utoipa::path(get, path = "/inbox/me", tag = "inbox", security(("bearer" = [])),
    responses((status = 200, description = "The caller's presence", body = Presence)))]
async fn me(State(deps): State<AppDeps>, Tenant(ctx): Tenant) -> Result<Json<Presence>, ApiError> {
    let (user, company) = member(&ctx)?;
    let tx = deps.db.begin(&ctx).await?;
    let result = presence::ensure(&tx, company, user).await.map_err(ApiError::from);
    Ok(Json(tx.finish(result).await?))
}

/// The caller's new status.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetStatusBody {
    #[schema(value_type = SupportAgentStatus)]
    status: String,
    /// 0..=100; absent keeps the current capacity.
    #[schema(minimum = 0, maximum = 100)]
    max_concurrent_chats: Option<i64>,
    /// At most 255 characters; it goes with this status, so absent, `null` or blank clears it.
    status_message: Option<String>,
}

/// Set the caller's status (online, busy, away, offline), capacity and status message.
///
/// Going online, or taking more conversations while online, wakes the assignment of waiting
/// conversations.
#[utoipa::path(put, path = "/inbox/me/status", tag = "inbox", security(("bearer" = [])),
    request_body = SetStatusBody,
    responses((status = 200, description = "The caller's new presence", body = Presence)))]
async fn set_status(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(body): JsonBody<SetStatusBody>,
) -> Result<Json<Presence>, ApiError> {
    let (user, company) = member(&ctx)?;
    let status: SupportAgentStatus =
        body.status.parse().map_err(|_| ApiError::validation("status must be online, busy, away or offline"))?;
    let max_concurrent_chats = match body.max_concurrent_chats {
        None => None,
        Some(n) if (0..=100).contains(&n) => Some(n as i32),
        Some(_) => return Err(ApiError::validation("max_concurrent_chats must be between 0 and 100")),
    };
    let status_message = body.status_message.as_deref().map(str::trim).filter(|m| !m.is_empty());
    if status_message.is_some_and(|m| m.chars().count() > 255) {
        return Err(ApiError::validation("status_message must be at most 255 characters"));
    }
    let change = StatusChange { status, max_concurrent_chats, status_message };
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = presence::ensure_locked(&tx, company, user).await?;
        let after = presence::set_status(&tx, company, user, &change).await?;
        let drain = after.status == SupportAgentStatus::Online
            && (before.status != SupportAgentStatus::Online
                || after.max_concurrent_chats > before.max_concurrent_chats);
        if drain {
            presence::queue_drain(&tx, company).await?;
        }
        audit::record(
            &tx,
            AuditEntry {
                action: "support_agent.status",
                resource_type: "support_agent",
                resource_id: Some(user),
                before: Some(json!(before)),
                after: Some(json!(after)),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>((after, drain))
    }
    .await;
    let (after, drain) = tx.finish(result).await?;
    if drain {
        chatapp::outbox::relay_now(&deps, super::RELAY).await;
    }
    Ok(Json(after))
}

/// Keep the caller's presence alive (every 30 seconds or so while the inbox is open).
///
/// Someone marked away for missed heartbeats (`status_message` `auto-away`) is online again.
#[utoipa::path(post, path = "/inbox/me/heartbeat", tag = "inbox", security(("bearer" = [])),
    responses((status = 204, description = "Recorded")))]
async fn heartbeat(State(deps): State<AppDeps>, Tenant(ctx): Tenant) -> Result<StatusCode, ApiError> {
    let (user, company) = member(&ctx)?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        presence::create_if_missing(&tx, company, user).await?;
        let back = presence::heartbeat(&tx, company, user).await?;
        if back {
            presence::queue_drain(&tx, company).await?;
        }
        // No audit row: a heartbeat is the inbox keeping itself alive, not a change anyone
        // made; one every 30 seconds per open inbox would bury the changes people do make.
        // The status changes it undoes were made by the presence sweep, not by a user.
        Ok::<_, ApiError>(back)
    }
    .await;
    if tx.finish(result).await? {
        chatapp::outbox::relay_now(&deps, super::RELAY).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The company's support agents and admins with their status and load (the transfer picker):
/// online first, then the least loaded.
#[utoipa::path(get, path = "/inbox/agents", tag = "inbox", security(("bearer" = [])),
    params(PageParams, CompanyParam),
    responses((status = 200, description = "One page of support agents", body = Paged<AgentPresence>)))]
async fn list_agents(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    page: Page,
) -> Result<Json<Paged<AgentPresence>>, ApiError> {
    caller(&ctx)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = presence::list_agents(&tx, company, page).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items, page, total)))
}
