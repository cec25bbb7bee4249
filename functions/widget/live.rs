//! The widget's live side while a person may answer: the conversation's events after a sequence
//! number (long-poll), the customer's place in the queue, and the customer's typing signal.
//!
//! GET  /widget/conversations/{id}/events?after=&wait=   events the customer may see
//! GET  /widget/conversations/{id}/queue                 position and estimated wait
//! POST /widget/conversations/{id}/typing                the customer is typing

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::AppDeps;
use chatapp::handoff::events::{self, EventPage, EventsQuery};
use chatapp::handoff::queue_position::{self, QueueStatus};
use chatapp::web::Query;
use chatapp::ApiError;
use serde_json::json;

use super::Session;

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
    let appended = chatapp::repo::chat::append_event(
        &tx,
        session.conversation.as_uuid(),
        "typing",
        &json!({"by": "customer"}),
        false,
    )
    .await
    .map_err(ApiError::from);
    tx.finish(appended).await?;
    Ok(StatusCode::NO_CONTENT)
}
