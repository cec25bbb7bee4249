//! The widget's live side while a person may answer: the conversation's events after a sequence
//! number (long-poll, or a stream of server-sent events), the customer's place in the queue, the
//! customer's typing signal, and the customer's choice of a person instead of the AI.
//!
//! GET  /widget/conversations/{id}/events?after=&wait=   events the customer may see
//! GET  /widget/conversations/{id}/events/stream?after=  the same, as server-sent events
//! GET  /widget/conversations/{id}/queue                 position and estimated wait
//! POST /widget/conversations/{id}/typing                the customer is typing
//! POST /widget/conversations/{id}/handoff               the customer asks for a person
//! POST /widget/conversations/{id}/contact               the customer leaves an email and a message
//!
//! Customer actions write no audit rows: the audit log records what the company's users and
//! keys do, and no widget route writes one. What the customer did is in the conversation itself
//! (its messages, its escalation and its events).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chatapp::adapters::queue::ESCALATION;
use chatapp::app::AppDeps;
use chatapp::chat::hours::BusinessHours;
use chatapp::db::TenantTx;
use chatapp::domain::{self, Email};
use chatapp::handoff::events::{self, ConversationEvent, EventPage, EventsQuery};
use chatapp::handoff::queue_position::{self, QueueStatus};
use chatapp::ids::ConversationId;
use chatapp::repo::chat as repo;
use chatapp::status::ConversationStatus;
use chatapp::web::{header, IdPath, JsonBody, Query};
use chatapp::{ApiError, TenantCtx};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{Session, WidgetMessage};

/// The conversation's events after `after` (messages, the agent joining or leaving, typing),
/// oldest first; with none yet, waits up to `wait` seconds for one. Reconnect with
/// `after=<last_seq>` to get every missed event exactly once.
#[utoipa::path(get, path = "/widget/conversations/{id}/events", tag = "widget", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Conversation id"), EventsQuery),
    responses((status = 200, description = "The events after `after`", body = EventPage)))]
pub(super) async fn events(
    State(deps): State<AppDeps>,
    session: Session,
    Query(q): Query<EventsQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let (after, wait) = q.checked()?;
    Ok(Json(events::wait(&deps, &session.ctx, session.conversation.as_uuid(), after, wait).await?))
}

/// Where the conversation stands in the queue for a person, with an estimated wait.
#[utoipa::path(get, path = "/widget/conversations/{id}/queue", tag = "widget", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Conversation id")),
    responses((status = 200, description = "The queue status", body = QueueStatus)))]
pub(super) async fn queue(State(deps): State<AppDeps>, session: Session) -> Result<Json<QueueStatus>, ApiError> {
    let company = session.ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&session.ctx).await?;
    let status =
        queue_position::queue_status(&tx, company, session.conversation.as_uuid()).await.map_err(ApiError::from);
    Ok(Json(tx.finish(status).await?.ok_or(ApiError::NotFound)?))
}

/// The customer is typing: a `typing` event for the support agent's page (not stored as a message).
#[utoipa::path(post, path = "/widget/conversations/{id}/typing", tag = "widget", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Conversation id")),
    responses((status = 204, description = "Signalled")))]
pub(super) async fn typing(State(deps): State<AppDeps>, session: Session) -> Result<StatusCode, ApiError> {
    let tx = deps.db.begin(&session.ctx).await?;
    let appended = chatapp::repo::chat::signal_typing(&tx, session.conversation.as_uuid(), &json!({"by": "customer"}))
        .await
        .map_err(ApiError::from);
    tx.finish(appended).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Server-sent events
// ---------------------------------------------------------------------------------------------

/// The longest one event stream runs; the client reconnects with `Last-Event-ID`.
const STREAM_FOR: Duration = Duration::from_secs(10 * 60);
/// On Lambda the stream ends this long before the invocation's deadline, so it closes cleanly
/// instead of being cut by the timeout.
const LAMBDA_MARGIN: Duration = Duration::from_secs(5);
/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The query parameters of the event stream.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct StreamQuery {
    /// The last sequence number the client has (default 0: from the start); a `Last-Event-ID`
    /// header (an EventSource reconnecting) takes precedence.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// The session token, for clients that cannot send `Authorization` (the browser's
    /// EventSource has no way to set headers). Only this route reads it.
    token: Option<String>,
}

/// The conversation's events as server-sent events: each one `id: <seq>`, `event: <type>`,
/// `data: <the event's JSON>` (as the long-poll route gives it), a comment line every 15
/// seconds while nothing happens, until the client disconnects or 10 minutes have passed (then
/// it reconnects; an EventSource sends `Last-Event-ID`, which counts as `after`).
///
/// Streaming needs a host that passes the response on as it is written: the local runner, or
/// the `widget-stream` function (Lambda response streaming behind a function URL), where a
/// stream also ends a few seconds before the invocation's timeout. API Gateway HTTP APIs (the
/// `widget` function) buffer the whole response, so clients there use the long-poll route
/// (`GET .../events?after=&wait=`) instead.
///
/// The session token may come as `?token=` (only on this route) because EventSource cannot
/// send an `Authorization` header. It is the conversation's own capability (256 random bits,
/// valid for this conversation only, until it ends), but a URL ends up in access logs (the
/// function URL's, a proxy's, the browser's history): send the header whenever the client can.
#[utoipa::path(get, path = "/widget/conversations/{id}/events/stream", tag = "widget", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Conversation id"), StreamQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "The last sequence number received (overrides `after`)")),
    responses((status = 200, description = "The events after `after`, as they happen",
        content((String = "text/event-stream")))))]
pub(super) async fn events_stream(
    State(deps): State<AppDeps>,
    IdPath(conversation): IdPath<ConversationId>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
    lambda: Option<Extension<lambda_http::Context>>,
) -> Response {
    let invocation = lambda.as_ref().map(|Extension(c)| c);
    match open_stream(deps, conversation, &headers, q, stream_ends(invocation)).await {
        Ok(response) => response,
        Err(e) => super::rejection(e),
    }
}

async fn open_stream(
    deps: AppDeps,
    conversation: ConversationId,
    headers: &HeaderMap,
    q: StreamQuery,
    ends: Instant,
) -> Result<Response, ApiError> {
    // The header when there is one (curl, fetch), else the query (EventSource).
    let token = match super::bearer(headers) {
        Ok(t) => t.to_string(),
        Err(missing) => q.token.as_deref().map(str::trim).filter(|t| !t.is_empty()).ok_or(missing)?.to_string(),
    };
    let session = super::open_session(&deps, headers, conversation, &token).await?;
    let after = match header(headers, "last-event-id").map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => v.parse::<i64>().map_err(|_| ApiError::validation("Last-Event-ID must be a sequence number"))?,
        None => q.after.unwrap_or(0),
    };
    if after < 0 {
        return Err(ApiError::validation("after must be 0 or more"));
    }
    // The first read answers at once: a conversation this session cannot see is an ordinary
    // 404 before the stream starts, and what is already there goes out first.
    let conv = conversation.as_uuid();
    let first = events::wait(&deps, &session.ctx, conv, after, Duration::ZERO).await?;
    let state = Streaming {
        after: first.last_seq.max(after),
        queued: first.events.into(),
        deps,
        ctx: session.ctx,
        conversation: conv,
        ends,
    };
    let stream = futures_util::stream::unfold(state, next_event);
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    Ok(([("x-accel-buffering", "no")], sse).into_response())
}

/// When a stream opened now must end: after [`STREAM_FOR`], or before the Lambda invocation's
/// deadline when it runs on Lambda.
fn stream_ends(lambda: Option<&lambda_http::Context>) -> Instant {
    let now = Instant::now();
    let mut ends = now + STREAM_FOR;
    if let Some(c) = lambda.filter(|c| c.deadline > 0) {
        let left = c.deadline().duration_since(SystemTime::now()).unwrap_or_default();
        ends = ends.min(now + left.saturating_sub(LAMBDA_MARGIN));
    }
    ends
}

/// A running event stream: the events read but not sent yet, and where to read on from.
struct Streaming {
    deps: AppDeps,
    ctx: TenantCtx,
    conversation: Uuid,
    after: i64,
    queued: VecDeque<ConversationEvent>,
    ends: Instant,
}

/// The stream's next event: a queued one, or the next ones committed (long polls of at most 25
/// seconds, until the stream's time is up). A failed read ends the stream; the client
/// reconnects from the last id it got.
async fn next_event(mut s: Streaming) -> Option<(Result<Event, Infallible>, Streaming)> {
    loop {
        if let Some(ev) = s.queued.pop_front() {
            let event = sse_event(&ev);
            return Some((Ok(event), s));
        }
        let left = s.ends.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
        let wait = left.min(Duration::from_secs(events::MAX_WAIT_SECS));
        match events::wait(&s.deps, &s.ctx, s.conversation, s.after, wait).await {
            Ok(page) => {
                s.after = s.after.max(page.last_seq);
                s.queued.extend(page.events);
            }
            Err(e) => {
                if let ApiError::Internal(cause) = &e {
                    tracing::warn!(error.chain = %chatapp::error::error_chain(cause.as_ref()), "event stream ended");
                }
                return None;
            }
        }
    }
}

/// `id: <seq>`, `event: <type>`, `data: <the event as JSON>`.
fn sse_event(ev: &ConversationEvent) -> Event {
    let data = serde_json::to_string(ev).unwrap_or_else(|_| "{}".to_string());
    Event::default().id(ev.seq.to_string()).event(&ev.kind).data(data)
}

// ---------------------------------------------------------------------------------------------
// The customer's choice: a person instead of the AI
// ---------------------------------------------------------------------------------------------

/// The notice the customer sees when the conversation is queued for a person.
const HANDOFF_NOTICE: &str = "Connecting you with a member of our support team\u{2026}";
/// The longest message a customer may leave with their email.
const MAX_CONTACT_MESSAGE_CHARS: usize = 2000;

/// Why a conversation is queued for a person, as its escalation records it.
struct Ask {
    trigger: &'static str,
    reason: &'static str,
    priority: &'static str,
}

/// The customer pressed "Talk to a person" within business hours.
const CHOICE: Ask = Ask { trigger: "customer_choice", reason: "the customer asked for a person", priority: "medium" };
/// The customer left an email and a message (outside business hours, or with nobody online).
const OFFLINE: Ask =
    Ask { trigger: "offline_message", reason: "left a message outside business hours", priority: "low" };

/// The agent's business hours when they are closed at `now`. `None`: open, no schedule, or an
/// invalid one (ignored, as the chat turn ignores it).
pub(super) fn closed_hours(hours: &Result<Option<BusinessHours>, String>, now: DateTime<Utc>) -> Option<BusinessHours> {
    match hours {
        Ok(hours) => hours.clone().filter(|h| !h.is_open(now)),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring invalid business_hours");
            None
        }
    }
}

fn handoff_disabled() -> ApiError {
    ApiError::forbidden("handoff_disabled", "this chat does not offer a person to talk to")
}

fn conversation_closed() -> ApiError {
    ApiError::conflict("conversation_closed", "this conversation has ended")
}

/// Queues the locked conversation for a person: the escalation, its assignment job (through
/// the outbox) and the `conversation.escalated` event, as a chat turn's handoff writes them.
/// `None` when it already waits for or is with a person (no second escalation).
async fn queue_for_person(
    tx: &TenantTx,
    company: Uuid,
    conversation: Uuid,
    agent: Uuid,
    ask: &Ask,
    details: &Value,
) -> Result<Option<Uuid>, ApiError> {
    let Some(id) = repo::escalate(
        tx,
        &repo::NewEscalation {
            conversation_id: conversation,
            company_id: company,
            agent_id: agent,
            reason: ask.reason,
            trigger_type: ask.trigger,
            details,
            priority: ask.priority,
        },
    )
    .await?
    else {
        return Ok(None);
    };
    let job = json!({"company_id": company, "kind": "escalation", "conversation_id": conversation,
                     "escalation_id": id, "priority": ask.priority});
    chatapp::outbox::add(tx, ESCALATION, &job).await?;
    let event = json!({"status": ConversationStatus::WaitingHuman, "escalation_id": id, "priority": ask.priority,
                       "reason": ask.reason, "trigger": ask.trigger});
    repo::append_event(tx, conversation, "conversation.escalated", &event, false).await?;
    Ok(Some(id))
}

/// A stored message as the customer sees it.
fn widget_message(m: repo::Message) -> WidgetMessage {
    WidgetMessage { id: m.id, role: m.role, content: m.content, created_at: m.created_at, citations: json!([]) }
}

/// The conversation's place in the queue for a person (`None` unless it waits for one).
async fn position(tx: &TenantTx, company: Uuid, conversation: Uuid) -> Result<Option<i64>, ApiError> {
    Ok(queue_position::queue_status(tx, company, conversation).await?.and_then(|q| q.position))
}

/// The conversation queued for a person (or already with one).
#[derive(Serialize, ToSchema)]
pub(super) struct HandoffStarted {
    /// `waiting_human`, or `with_human` once a support agent has the conversation.
    status: ConversationStatus,
    /// The escalation this request opened; `null` when the conversation had been handed over
    /// before it (the request changed nothing).
    escalation_id: Option<Uuid>,
    /// 1 for the next conversation to be assigned; `null` once a support agent has it.
    position: Option<i64>,
    /// The notice stored for the customer (also sent as a `message.created` event); `null` when
    /// nothing new was stored.
    notice: Option<WidgetMessage>,
}

/// Ask for a person instead of the AI (when the widget offers it). Within the agent's business
/// hours the conversation is queued for a support agent; asking again changes nothing. Outside
/// them the answer is 409 `outside_hours` with the agent's outside-hours message, and nothing
/// is stored: the customer may leave an email and a message instead (`POST .../contact`).
#[utoipa::path(post, path = "/widget/conversations/{id}/handoff", tag = "widget", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Conversation id")),
    responses((status = 200, description = "Queued for a person, or already with one", body = HandoffStarted)))]
pub(super) async fn handoff(State(deps): State<AppDeps>, session: Session) -> Result<Json<HandoffStarted>, ApiError> {
    let Session { ctx, conversation, .. } = session;
    let company = ctx.require_company()?.as_uuid();
    let conv = conversation.as_uuid();
    let now = Utc::now();
    let tx = deps.db.begin(&ctx).await?;
    let outcome = async {
        let state = repo::lock_conversation(&tx, company, conv).await?.ok_or(ApiError::NotFound)?;
        let widget = repo::widget_config(&tx, company, state.agent_id).await?.unwrap_or_default();
        if !widget.human_handoff_button {
            return Err(handoff_disabled());
        }
        if state.status.is_closed() {
            return Err(conversation_closed());
        }
        if state.status.is_human() {
            return Ok(HandoffStarted {
                status: state.status,
                escalation_id: None,
                position: position(&tx, company, conv).await?,
                notice: None,
            });
        }
        let agent = repo::agent(&tx, company, state.agent_id).await?.ok_or(ApiError::NotFound)?;
        if let Some(hours) = closed_hours(&agent.hours, now) {
            return Err(ApiError::conflict("outside_hours", hours.outside_message().to_string()));
        }
        let Some(id) =
            queue_for_person(&tx, company, conv, state.agent_id, &CHOICE, &json!({"source": "widget"})).await?
        else {
            // Not reached: the conversation is locked and was neither waiting nor with a person.
            return Err(ApiError::conflict("already_handed_over", "this conversation was handed over already"));
        };
        let notice =
            repo::insert_message(&tx, conv, "system", HANDOFF_NOTICE, None, &json!({"kind": "handoff"}), None).await?;
        Ok::<_, ApiError>(HandoffStarted {
            status: ConversationStatus::WaitingHuman,
            escalation_id: Some(id),
            position: position(&tx, company, conv).await?,
            notice: Some(widget_message(notice)),
        })
    }
    .await;
    let started = tx.finish(outcome).await?;
    if started.escalation_id.is_some() {
        chatapp::outbox::relay_now(&deps, chatapp::chat::turn::RELAY).await;
    }
    Ok(Json(started))
}

/// Where to reach the customer, and what they want.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ContactBody {
    #[schema(value_type = String, format = Email)]
    email: Email,
    /// At most 2000 characters; blank or absent leaves only the address.
    message: Option<String>,
}

/// The customer's message was left for the team.
#[derive(Serialize, ToSchema)]
pub(super) struct ContactLeft {
    /// `waiting_human` (or `with_human` when a support agent already has the conversation).
    status: ConversationStatus,
    /// The message as stored (also sent as a `message.created` event); `null` without one.
    message: Option<WidgetMessage>,
}

/// Leave an email and a message for the team (when the widget offers a person, but none can
/// answer now: outside business hours, or nobody online). The address is stored on the
/// conversation and its customer, the message as the customer's, and the conversation is
/// queued for a person (trigger `offline_message`, priority low) unless it already is, so the
/// support agents find it in their queue when they are back.
#[utoipa::path(post, path = "/widget/conversations/{id}/contact", tag = "widget", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Conversation id")), request_body = ContactBody,
    responses((status = 201, description = "Left for the team", body = ContactLeft)))]
pub(super) async fn contact(
    State(deps): State<AppDeps>,
    session: Session,
    JsonBody(body): JsonBody<ContactBody>,
) -> Result<(StatusCode, Json<ContactLeft>), ApiError> {
    let Session { ctx, conversation, .. } = session;
    let message = match body.message.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => Some(domain::text("message", m, MAX_CONTACT_MESSAGE_CHARS)?),
        None => None,
    };
    let email = body.email;
    let company = ctx.require_company()?.as_uuid();
    let conv = conversation.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let outcome = async {
        let state = repo::lock_conversation(&tx, company, conv).await?.ok_or(ApiError::NotFound)?;
        let widget = repo::widget_config(&tx, company, state.agent_id).await?.unwrap_or_default();
        if !widget.human_handoff_button {
            return Err(handoff_disabled());
        }
        if state.status.is_closed() {
            return Err(conversation_closed());
        }
        if !repo::leave_contact(&tx, company, conv, email.as_str()).await? {
            return Err(ApiError::NotFound);
        }
        let left = match &message {
            Some(m) => {
                Some(repo::insert_message(&tx, conv, "user", m, None, &json!({"kind": "offline_message"}), None).await?)
            }
            None => None,
        };
        let details = json!({"email": email.as_str(), "message_id": left.as_ref().map(|m| m.id)});
        let escalated = queue_for_person(&tx, company, conv, state.agent_id, &OFFLINE, &details).await?;
        let status = if escalated.is_some() { ConversationStatus::WaitingHuman } else { state.status };
        Ok::<_, ApiError>((status, left, escalated.is_some()))
    }
    .await;
    let (status, left, escalated) = tx.finish(outcome).await?;
    if escalated {
        chatapp::outbox::relay_now(&deps, chatapp::chat::turn::RELAY).await;
    }
    Ok((StatusCode::CREATED, Json(ContactLeft { status, message: left.map(widget_message) })))
}
