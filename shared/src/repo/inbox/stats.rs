//! Per-support-agent figures by day (UTC), from the SQL function `chatapp_support_agent_stats`
//! (migration 0030): computed from the escalations and messages at each call.

use chrono::NaiveDate;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// One support agent's day with activity.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentDay {
    pub user_id: Uuid,
    pub date: NaiveDate,
    pub escalations_received: i64,
    pub conversations_handled: i64,
    pub messages_sent: i64,
    pub avg_first_response_seconds: Option<f64>,
    pub avg_handle_minutes: Option<f64>,
    pub csat: Option<f64>,
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
