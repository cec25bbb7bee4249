//! The inbox's conversations: the lists, one conversation with everything about it, its live
//! events, and what a support agent does in it besides changing its owner (`transitions.rs`):
//! replies, typing signals, snoozes and labels. Also the pieces every inbox route shares: the
//! caller, the conversation's lock, the audit row, the commit with its outbox relay.
//!
//! Visibility is row-level security's: a support agent sees the conversations assigned to them
//! and those assigned to nobody; anything else (a colleague's, another tenant's, an unknown id)
//! is a 404.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::AppDeps;
use chatapp::audit::{self, AuditEntry};
use chatapp::chat::turn;
use chatapp::db::TenantTx;
use chatapp::handoff::events::{self, EventPage, EventsQuery};
use chatapp::ids::ConversationId;
use chatapp::repo::chat::Message;
use chatapp::repo::inbox::conversations::{
    self as repo, ConversationCustomer, ConversationDetailNote, ConversationEscalation, ConversationFilter,
    ConversationSummary, Locked, MessageDelivery, View,
};
use chatapp::routes;
use chatapp::status::ConversationStatus;
use chatapp::tenant::{Access, Resource, Role};
use chatapp::web::{CompanyParam, IdPath, JsonBody, Page, PageParams, Paged, Query, RequestMeta, Tenant};
use chatapp::{ApiError, TenantCtx};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

pub(crate) fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(list_conversations))
        .routes(routes!(get_conversation))
        .routes(routes!(conversation_events))
        .routes(routes!(send_message))
        .routes(routes!(typing))
        .routes(routes!(snooze))
        .routes(routes!(set_labels))
}

/// Messages the conversation's detail holds at most (the latest ones).
const DETAIL_MESSAGES: i64 = 500;
/// The longest a conversation may be snoozed.
const MAX_SNOOZE_DAYS: i64 = 30;
const MAX_LABELS: usize = 20;
const MAX_LABEL_CHARS: usize = 50;
const MAX_SEARCH_CHARS: usize = 200;
/// The labels of `channel_type`.
const CHANNELS: &[&str] =
    &["web", "whatsapp", "telegram", "messenger", "instagram", "slack", "teams", "custom", "email"];
/// The labels of `escalation_priority`.
const PRIORITIES: &[&str] = &["low", "medium", "high", "urgent"];

// ---------------------------------------------------------------------------------------------
// What every inbox route shares.
// ---------------------------------------------------------------------------------------------

/// The signed-in user acting in the inbox, and the company they act in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caller {
    pub(crate) user: Uuid,
    pub(crate) role: Role,
    pub(crate) company: Uuid,
}

impl Caller {
    /// The caller, allowed `access` to conversations; API keys, workers and customers are
    /// refused (the inbox is people's).
    pub(crate) fn of(ctx: &TenantCtx, access: Access) -> Result<Self, ApiError> {
        ctx.authorize(Resource::Conversations, access)?;
        let (Some(user), Some(role)) = (ctx.user_id(), ctx.role()) else {
            return Err(ApiError::forbidden(
                "forbidden",
                "the inbox is for signed-in users: support agents and admins",
            ));
        };
        Ok(Self { user, role, company: ctx.require_company()?.as_uuid() })
    }

    /// A company admin, or the master admin acting for the company.
    pub(crate) fn is_admin(&self) -> bool {
        matches!(self.role, Role::CompanyAdmin | Role::MasterAdmin)
    }

    /// Only members of the company can own its conversations (the master admin is none).
    pub(crate) fn require_member(&self) -> Result<(), ApiError> {
        if self.role == Role::MasterAdmin {
            return Err(ApiError::forbidden(
                "forbidden",
                "master admins cannot own a company's conversations; assign one to a member of the company",
            ));
        }
        Ok(())
    }
}

/// The conversation locked for a change, or a 404 when the caller cannot see it.
pub(crate) async fn lock(tx: &TenantTx, caller: &Caller, id: ConversationId) -> Result<Locked, ApiError> {
    repo::lock(tx, caller.company, id.as_uuid()).await?.ok_or(ApiError::NotFound)
}

/// The conversation's summary as the caller sees it, or a 404.
pub(crate) async fn summary_of(
    tx: &TenantTx,
    caller: &Caller,
    id: ConversationId,
) -> Result<ConversationSummary, ApiError> {
    repo::summary(tx, caller.company, id.as_uuid()).await?.ok_or(ApiError::NotFound)
}

/// The 409 of a change only the conversation's owner may make.
pub(crate) fn not_owner() -> ApiError {
    ApiError::conflict(
        "not_owner",
        "you do not own this conversation: claim the conversation first (or ask its owner to transfer it)",
    )
}

/// The 409 of a change the conversation's status does not allow.
pub(crate) fn invalid_transition(from: ConversationStatus, change: &str) -> ApiError {
    ApiError::conflict("invalid_transition", format!("a conversation that is {from} cannot be {change}"))
}

/// Ownership as the audit log records it.
pub(crate) fn owner_state(status: ConversationStatus, assigned: Option<Uuid>) -> Value {
    json!({"status": status, "assigned_agent_id": assigned})
}

/// The audit row of a change to the conversation, in its transaction.
pub(crate) async fn record(
    tx: &TenantTx,
    meta: &RequestMeta,
    action: &str,
    id: ConversationId,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<(), ApiError> {
    audit::record(
        tx,
        AuditEntry { action, resource_type: "conversation", resource_id: Some(id.as_uuid()), before, after },
        meta,
    )
    .await?;
    Ok(())
}

/// Commits on `Ok` (rolls back on `Err`), then relays what the change queued in the outbox.
pub(crate) async fn commit<T>(deps: &AppDeps, tx: TenantTx, result: Result<T, ApiError>) -> Result<T, ApiError> {
    let value = tx.finish(result).await?;
    chatapp::outbox::relay_now(deps, super::RELAY).await;
    Ok(value)
}

// ---------------------------------------------------------------------------------------------
// Lists.
// ---------------------------------------------------------------------------------------------

/// Filters of the conversation list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ConversationListQuery {
    /// `mine` (assigned to the caller; the default for support agents), `unassigned` (the
    /// waiting queue by priority, then longest waiting; with `status`, any unassigned ones) or
    /// `all` (company admins; their default).
    view: Option<String>,
    /// `active`, `waiting_human`, `with_human`, `resolved` or `abandoned`.
    status: Option<String>,
    /// `web`, `whatsapp`, `telegram`, `messenger`, `instagram`, `slack`, `teams`, `custom` or `email`.
    channel: Option<String>,
    /// The open escalation's priority: `low`, `medium`, `high` or `urgent`.
    priority: Option<String>,
    /// Only conversations assigned to this user.
    #[param(value_type = Option<Uuid>)]
    agent_id: Option<String>,
    /// Only conversations with this label.
    label: Option<String>,
    /// Text in the customer's name or email or in a message (at most 200 characters).
    q: Option<String>,
    /// `true`: only snoozed conversations; `false`: none. Absent: `mine` hides snoozed ones,
    /// the other views show them.
    #[param(value_type = Option<bool>)]
    snoozed: Option<String>,
}

/// One label: trimmed, lower-cased, 1-50 letters, digits, `-` or `_`.
fn label(raw: &str) -> Result<String, ApiError> {
    let l = raw.trim().to_lowercase();
    let n = l.chars().count();
    if n == 0 || n > MAX_LABEL_CHARS || !l.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_') {
        return Err(ApiError::validation(format!(
            "label {raw:?} must be 1-{MAX_LABEL_CHARS} letters, digits, '-' or '_'"
        )));
    }
    Ok(l)
}

/// Conversations of the company as the caller sees them, one page at a time.
#[utoipa::path(get, path = "/inbox/conversations", tag = "inbox", security(("bearer" = [])),
    params(ConversationListQuery, PageParams, CompanyParam),
    responses((status = 200, description = "One page of conversations", body = Paged<ConversationSummary>)))]
async fn list_conversations(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    page: Page,
    Query(q): Query<ConversationListQuery>,
) -> Result<Json<Paged<ConversationSummary>>, ApiError> {
    let caller = Caller::of(&ctx, Access::Read)?;
    let view = match q.view.as_deref() {
        None if caller.is_admin() => View::All,
        None | Some("mine") => View::Mine,
        Some("unassigned") => View::Unassigned,
        Some("all") => View::All,
        Some(_) => return Err(ApiError::validation("view must be mine, unassigned or all")),
    };
    if view == View::All && !caller.is_admin() {
        return Err(ApiError::forbidden("forbidden", "view=all is for company admins; use mine or unassigned"));
    }
    let status =
        q.status.as_deref().map(str::parse::<ConversationStatus>).transpose().map_err(|_| {
            ApiError::validation("status must be active, waiting_human, with_human, resolved or abandoned")
        })?;
    let channel = match q.channel.as_deref() {
        Some(c) if !CHANNELS.contains(&c) => {
            return Err(ApiError::validation(format!("channel must be one of {}", CHANNELS.join(", "))))
        }
        other => other,
    };
    let priority = match q.priority.as_deref() {
        Some(p) if !PRIORITIES.contains(&p) => {
            return Err(ApiError::validation("priority must be low, medium, high or urgent"))
        }
        other => other,
    };
    let assigned_to = match q.agent_id.as_deref() {
        Some(a) => Some(Uuid::parse_str(a).map_err(|_| ApiError::validation("agent_id must be a UUID"))?),
        None => None,
    };
    let with_label = q.label.as_deref().map(label).transpose()?;
    let search = match q.q.as_deref().map(str::trim) {
        Some(s) if s.chars().count() > MAX_SEARCH_CHARS => {
            return Err(ApiError::validation(format!("q must be at most {MAX_SEARCH_CHARS} characters")))
        }
        Some("") | None => None,
        Some(s) => Some(s),
    };
    // Mine hides snoozed conversations unless asked.
    let snoozed = chatapp::web::bool_param("snoozed", q.snoozed.as_deref())?.or(if view == View::Mine {
        Some(false)
    } else {
        None
    });
    let filter = ConversationFilter {
        view,
        user: caller.user,
        status,
        channel,
        priority,
        assigned_to,
        label: with_label.as_deref(),
        search,
        snoozed,
    };
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::list(&tx, caller.company, &filter, page).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items, page, total)))
}

/// A conversation with everything a support agent needs to take it up.
#[derive(Serialize, ToSchema)]
struct ConversationDetail {
    conversation: ConversationSummary,
    /// Its latest 500 messages, oldest first (system notices and tool traffic included).
    messages: Vec<Message>,
    /// Internal notes, oldest first (the customer never sees them).
    notes: Vec<ConversationDetailNote>,
    customer: ConversationCustomer,
    /// The open escalation, or the latest one; null if it never had one.
    escalation: Option<ConversationEscalation>,
    /// How its replies went out on a messaging channel (sent, delivered, read, or failed with
    /// the provider's error); empty for the widget and the API.
    deliveries: Vec<MessageDelivery>,
}

/// One conversation: its messages, internal notes, customer and escalation.
#[utoipa::path(get, path = "/inbox/conversations/{id}", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), CompanyParam),
    responses((status = 200, description = "The conversation", body = ConversationDetail)))]
async fn get_conversation(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ConversationId>,
) -> Result<Json<ConversationDetail>, ApiError> {
    let caller = Caller::of(&ctx, Access::Read)?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let conversation = summary_of(&tx, &caller, id).await?;
        let messages = repo::messages(&tx, caller.company, id.as_uuid(), DETAIL_MESSAGES).await?;
        let notes = repo::notes(&tx, caller.company, id.as_uuid()).await?;
        let customer = repo::customer(&tx, caller.company, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        let escalation = repo::escalation(&tx, caller.company, id.as_uuid()).await?;
        let deliveries = repo::deliveries(&tx, caller.company, id.as_uuid()).await?;
        Ok::<_, ApiError>(ConversationDetail { conversation, messages, notes, customer, escalation, deliveries })
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}

/// The conversation's events after `after` (messages, notes, ownership changes, typing),
/// oldest first; with none yet, waits up to `wait` seconds for one. Reconnect with
/// `after=<last_seq>` to get every missed event exactly once.
#[utoipa::path(get, path = "/inbox/conversations/{id}/events", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), EventsQuery),
    responses((status = 200, description = "The events after `after`", body = EventPage)))]
async fn conversation_events(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ConversationId>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<EventPage>, ApiError> {
    Caller::of(&ctx, Access::Read)?;
    let (after, wait) = q.checked()?;
    Ok(Json(events::wait(&deps, &ctx, id.as_uuid(), after, wait).await?))
}

// ---------------------------------------------------------------------------------------------
// Working in a conversation.
// ---------------------------------------------------------------------------------------------

/// A support agent's reply to the customer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AgentReplyBody {
    /// The reply, 1-4000 characters (trimmed).
    content: String,
    /// The client's id for the message (1-100 printable characters): a retried send with the
    /// same id answers the stored message instead of sending twice.
    client_message_id: Option<String>,
}

/// Reply to the customer. Only the conversation's owner may (claim it first); the customer
/// gets the reply through the conversation's events.
#[utoipa::path(post, path = "/inbox/conversations/{id}/messages", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), CompanyParam), request_body = AgentReplyBody,
    responses((status = 201, description = "The stored reply", body = Message)))]
async fn send_message(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ConversationId>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<AgentReplyBody>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let caller = Caller::of(&ctx, Access::Write)?;
    ctx.authorize(Resource::Messages, Access::Write)?;
    let input = turn::validate(&body.content, body.client_message_id.as_deref())?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let locked = lock(&tx, &caller, id).await?;
        if !locked.owned_by(caller.user) {
            return Err(not_owner());
        }
        if let Some(client_id) = input.client_message_id.as_deref() {
            if let Some(stored) = chatapp::repo::chat::message_by_client_id(&tx, id.as_uuid(), client_id).await? {
                if stored.role != "human_agent" {
                    return Err(ApiError::conflict(
                        "client_message_id_taken",
                        "another message of this conversation has that client_message_id",
                    ));
                }
                return Ok(stored);
            }
        }
        let message = repo::add_reply(
            &tx,
            caller.company,
            id.as_uuid(),
            caller.user,
            &input.content,
            input.client_message_id.as_deref(),
        )
        .await?;
        record(&tx, &meta, "conversation.reply", id, None, Some(json!({"message_id": message.id}))).await?;
        Ok::<_, ApiError>(message)
    }
    .await;
    let message = commit(&deps, tx, result).await?;
    Ok((StatusCode::CREATED, Json(message)))
}

/// The owner is typing: a `typing` event for the customer's widget (nothing is stored as a
/// message, and no audit row is written).
#[utoipa::path(post, path = "/inbox/conversations/{id}/typing", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), CompanyParam),
    responses((status = 204, description = "Signalled")))]
async fn typing(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ConversationId>,
) -> Result<StatusCode, ApiError> {
    let caller = Caller::of(&ctx, Access::Write)?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let locked = lock(&tx, &caller, id).await?;
        if !locked.owned_by(caller.user) {
            return Err(not_owner());
        }
        repo::typing(&tx, id.as_uuid(), caller.user).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    // A typing signal queues nothing (it is not sent to webhooks): no relay.
    tx.finish(result).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Until when to hide the conversation from its owner's list.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SnoozeBody {
    /// RFC 3339, in the future and at most 30 days ahead; `null` (or absent) wakes it now.
    until: Option<DateTime<Utc>>,
}

/// Snooze a conversation the caller owns (admins: any one with a person): it leaves `view=mine`
/// until then. While snoozed it stays assigned; the assignment worker wakes it when the time comes.
#[utoipa::path(post, path = "/inbox/conversations/{id}/snooze", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), CompanyParam), request_body = SnoozeBody,
    responses((status = 200, description = "The conversation", body = ConversationSummary)))]
async fn snooze(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ConversationId>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<SnoozeBody>,
) -> Result<Json<ConversationSummary>, ApiError> {
    let caller = Caller::of(&ctx, Access::Write)?;
    if let Some(until) = body.until {
        let now = Utc::now();
        if until <= now {
            return Err(ApiError::validation("until must be in the future"));
        }
        if until > now + TimeDelta::days(MAX_SNOOZE_DAYS) {
            return Err(ApiError::validation(format!("until must be at most {MAX_SNOOZE_DAYS} days ahead")));
        }
    }
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let locked = lock(&tx, &caller, id).await?;
        if locked.status != ConversationStatus::WithHuman {
            return Err(invalid_transition(locked.status, "snoozed"));
        }
        if !locked.owned_by(caller.user) && !caller.is_admin() {
            return Err(not_owner());
        }
        let before = summary_of(&tx, &caller, id).await?;
        repo::snooze(&tx, caller.company, id.as_uuid(), body.until, caller.user).await?;
        let after = summary_of(&tx, &caller, id).await?;
        record(
            &tx,
            &meta,
            "conversation.snooze",
            id,
            Some(json!({"snoozed_until": before.snoozed_until})),
            Some(json!({"snoozed_until": after.snoozed_until})),
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(commit(&deps, tx, result).await?))
}

/// The conversation's whole set of labels (replaces the current set).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LabelsBody {
    /// At most 20, each 1-50 letters, digits, `-` or `_`; lower-cased, duplicates dropped.
    labels: Vec<String>,
}

/// Replace the conversation's labels.
#[utoipa::path(put, path = "/inbox/conversations/{id}/labels", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), CompanyParam), request_body = LabelsBody,
    responses((status = 200, description = "The conversation", body = ConversationSummary)))]
async fn set_labels(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ConversationId>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<LabelsBody>,
) -> Result<Json<ConversationSummary>, ApiError> {
    let caller = Caller::of(&ctx, Access::Write)?;
    let mut labels: Vec<String> = Vec::new();
    for raw in &body.labels {
        let l = label(raw)?;
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    if labels.len() > MAX_LABELS {
        return Err(ApiError::validation(format!("at most {MAX_LABELS} labels per conversation")));
    }
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = summary_of(&tx, &caller, id).await?;
        if !repo::set_labels(&tx, caller.company, id.as_uuid(), &labels).await? {
            return Err(ApiError::NotFound);
        }
        let after = summary_of(&tx, &caller, id).await?;
        record(
            &tx,
            &meta,
            "conversation.labels",
            id,
            Some(json!({"labels": before.labels})),
            Some(json!({"labels": after.labels})),
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}
