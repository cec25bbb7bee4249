//! A waiting customer's place in the queue and an estimate of the wait.

use serde::Serialize;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::status::ConversationStatus;

/// Where a conversation stands in the company's queue.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct QueueStatus {
    pub status: ConversationStatus,
    /// 1 for the next conversation to be assigned; `null` unless waiting for a person.
    pub position: Option<i64>,
    /// The recent median time to assignment (last 24 hours) times the rounds of assignment
    /// ahead (position over the support agents online); `null` without recent assignments.
    pub estimated_wait_seconds: Option<i64>,
    /// Support agents online now.
    pub agents_online: i64,
}

/// The conversation's queue status; `None` if this transaction cannot see it.
pub async fn queue_status(tx: &TenantTx, company: Uuid, conversation: Uuid) -> Result<Option<QueueStatus>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "WITH me AS (
                SELECT c.status, e.priority, e.created_at
                FROM chatapp_conversations c
                LEFT JOIN chatapp_escalations e ON e.conversation_id = c.id AND e.status = 'pending'
                WHERE c.id = $1 AND c.company_id = $2 AND c.deleted_at IS NULL)
             SELECT me.status,
                    CASE WHEN me.status = 'waiting_human' AND me.priority IS NOT NULL THEN
                        (SELECT count(*) + 1 FROM chatapp_escalations o
                         WHERE o.company_id = $2 AND o.status = 'pending'
                           AND (o.priority > me.priority OR (o.priority = me.priority AND o.created_at < me.created_at)))
                    END,
                    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_time)
                     FROM chatapp_escalations
                     WHERE company_id = $2 AND assigned_at > now() - interval '24 hours' AND wait_time IS NOT NULL),
                    (SELECT count(*) FROM chatapp_support_agent_status WHERE company_id = $2 AND status = 'online')
             FROM me",
            &[&conversation, &company],
        )
        .await?;
    Ok(row.map(|r| {
        let position: Option<i64> = r.get(1);
        let median: Option<f64> = r.get(2);
        let agents_online: i64 = r.get(3);
        let estimated_wait_seconds = match (position, median) {
            (Some(p), Some(m)) => {
                let rounds = (p + agents_online.max(1) - 1) / agents_online.max(1);
                Some((m * rounds as f64).round() as i64)
            }
            _ => None,
        };
        QueueStatus { status: r.get(0), position, estimated_wait_seconds, agents_online }
    }))
}
