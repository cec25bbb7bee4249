//! Per-support-agent figures by day (UTC), from the SQL function `chatapp_support_agent_stats`
//! (migration 0030): computed from the escalations and messages at each call.

use chrono::NaiveDate;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// One support agent's day. Only days with activity are listed.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AgentDay {
    pub user_id: Uuid,
    pub date: NaiveDate,
    /// Escalations assigned to the agent that day.
    pub escalations_received: i64,
    /// Escalations the agent closed that day (resolved, or handed back to the AI).
    pub conversations_handled: i64,
    /// Replies the agent sent to customers that day.
    pub messages_sent: i64,
    /// Seconds from assignment to the first reply, over the escalations first answered that day.
    pub avg_first_response_seconds: Option<f64>,
    /// Minutes from assignment to closing, over the escalations closed that day.
    pub avg_handle_minutes: Option<f64>,
    /// The customers' average rating (1-5) of the conversations closed that day.
    pub csat: Option<f64>,
    /// How many of those conversations were rated.
    pub csat_responses: i64,
}

/// The company's agents' days from `from` to `to` (both included), oldest first; only `user`'s
/// when given.
pub async fn agent_days(
    tx: &TenantTx,
    company: Uuid,
    from: NaiveDate,
    to: NaiveDate,
    user: Option<Uuid>,
) -> Result<Vec<AgentDay>, DbError> {
    let rows = tx
        .client()
        .query(
            "SELECT user_id, day, escalations_received, conversations_handled, messages_sent,
                    avg_first_response_seconds::float8, avg_handle_minutes::float8, csat::float8, csat_responses
             FROM chatapp_support_agent_stats($1, $2, $3)
             WHERE $4::uuid IS NULL OR user_id = $4",
            &[&company, &from, &to, &user],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AgentDay {
            user_id: r.get(0),
            date: r.get(1),
            escalations_received: r.get(2),
            conversations_handled: r.get(3),
            messages_sent: r.get(4),
            avg_first_response_seconds: r.get(5),
            avg_handle_minutes: r.get(6),
            csat: r.get(7),
            csat_responses: r.get(8),
        })
        .collect())
}
