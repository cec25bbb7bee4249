//! Assignment of waiting conversations to support agents, and the sweep that keeps the queue
//! moving (reassignment of unanswered conversations, snoozes that end, missed heartbeats).
//!
//! Fairness: conversations go in priority order, then longest waiting; each goes to the online
//! support agent with the fewest conversations below their capacity, ties to the least recently
//! assigned (so loads stay within one of each other), preferring someone other than the agent
//! who just let it go back to the queue. An escalation rule's assignment logic, copied onto the
//! escalation, changes that for its conversations: `round_robin` takes the least recently
//! assigned whatever their load; `specific_agent` takes that person while they are online (the
//! conversation waits for their room, and later ones are not held up behind it), and anyone
//! when they are away or offline. Every pick locks its rows with `FOR UPDATE SKIP
//! LOCKED`, so concurrent workers never assign one conversation twice nor fill an agent past
//! capacity, and the worker never waits on a lock (no deadlock with claims by hand).

use std::time::Duration;

use uuid::Uuid;

use crate::adapters::queue::{ESCALATION, OUTBOUND};
use crate::app::AppDeps;
use crate::auth::worker_ctx;
use crate::db::{DbError, TenantTx};
use crate::error::ApiError;

/// A support agent who has not sent a heartbeat for this long is set away.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(90);
/// What a worker relays after its commits.
pub const RELAY: &[&str] = &[ESCALATION, OUTBOUND, crate::adapters::queue::CHANNEL_SEND];

/// One conversation given to one support agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub conversation_id: Uuid,
    pub escalation_id: Uuid,
    pub user_id: Uuid,
}

/// Takes the next waiting conversation and the agent to give it to, and assigns it; `None` when
/// nothing waits or nobody has room (or every candidate row is locked by another worker).
async fn assign_one(tx: &TenantTx, company: Uuid) -> Result<Option<Assignment>, DbError> {
    let Some(next) = tx
        .client()
        .query_opt(
            // `pinned`: the rule's specific agent when online (and active); the conversation is
            // only taken now if they have room.
            "SELECT e.id, e.conversation_id, e.previous_assignee, p.user_id AS pinned, e.assignment_strategy
             FROM chatapp_escalations e
             JOIN chatapp_conversations c ON c.id = e.conversation_id AND c.company_id = e.company_id
             LEFT JOIN chatapp_support_agent_status p
                    ON p.user_id = e.preferred_assignee AND p.company_id = e.company_id AND p.status = 'online'
                   AND p.last_active_at > now() - make_interval(secs => $2)
                   AND EXISTS (SELECT 1 FROM chatapp_users u
                               WHERE u.id = p.user_id AND u.is_active AND u.deleted_at IS NULL)
             WHERE e.company_id = $1 AND e.status = 'pending' AND c.status = 'waiting_human' AND c.deleted_at IS NULL
               AND (p.user_id IS NULL OR p.current_chat_count < p.max_concurrent_chats)
             ORDER BY e.priority DESC, e.created_at, e.id
             LIMIT 1
             FOR UPDATE OF e, c SKIP LOCKED",
            &[&company, &HEARTBEAT_TIMEOUT.as_secs_f64()],
        )
        .await?
    else {
        return Ok(None);
    };
    let (escalation_id, conversation_id, previous): (Uuid, Uuid, Option<Uuid>) =
        (next.get(0), next.get(1), next.get(2));
    let (pinned, strategy): (Option<Uuid>, Option<String>) = (next.get(3), next.get(4));
    let Some(agent) = tx
        .client()
        .query_opt(
            "SELECT s.user_id FROM chatapp_support_agent_status s
             JOIN chatapp_users u ON u.id = s.user_id AND u.is_active AND u.deleted_at IS NULL
             WHERE s.company_id = $1 AND s.status = 'online' AND s.current_chat_count < s.max_concurrent_chats
               AND s.last_active_at > now() - make_interval(secs => $3)
               AND ($4::uuid IS NULL OR s.user_id = $4)
             ORDER BY s.user_id IS NOT DISTINCT FROM $2,
                      CASE WHEN $5::text = 'round_robin' THEN 0 ELSE s.current_chat_count END,
                      s.last_assigned_at NULLS FIRST, s.user_id
             LIMIT 1
             FOR UPDATE OF s SKIP LOCKED",
            &[&company, &previous, &HEARTBEAT_TIMEOUT.as_secs_f64(), &pinned, &strategy],
        )
        .await?
    else {
        return Ok(None);
    };
    let user_id: Uuid = agent.get(0);
    tx.client()
        .execute("SELECT chatapp_handoff_assign($1, $2, NULL, 'conversation.assigned')", &[&conversation_id, &user_id])
        .await?;
    system_audit(
        tx,
        company,
        "conversation.assign",
        ("conversation", conversation_id),
        serde_json::json!({"user_id": user_id}),
    )
    .await?;
    Ok(Some(Assignment { conversation_id, escalation_id, user_id }))
}

/// An audit row for a change the platform made on its own (no user, no request).
async fn system_audit(
    tx: &TenantTx,
    company: Uuid,
    action: &str,
    (resource_type, resource): (&str, Uuid),
    details: serde_json::Value,
) -> Result<(), DbError> {
    let details = {
        let mut d = details;
        d["by"] = serde_json::json!("escalation-worker");
        d
    };
    tx.client()
        .execute(
            "INSERT INTO chatapp_audit_logs (company_id, action, resource_type, resource_id, details)
             VALUES ($1, $2, $3, $4, $5)",
            &[&company, &action, &resource_type, &resource, &details],
        )
        .await?;
    Ok(())
}

/// Assigns the next waiting conversation in its own transaction; `None` when nothing waits or
/// nobody has room. The caller relays the outbox afterwards.
pub async fn assign_next(deps: &AppDeps, company: Uuid) -> Result<Option<Assignment>, ApiError> {
    let tx = deps.db.begin(&worker_ctx(company)).await?;
    let picked = assign_one(&tx, company).await.map_err(ApiError::from);
    let assigned = tx.finish(picked).await?;
    if let Some(a) = &assigned {
        tracing::info!(conversation = %a.conversation_id, user = %a.user_id, "conversation assigned");
    }
    Ok(assigned)
}

/// Assigns the company's waiting conversations until none waits or nobody has room; one
/// transaction per assignment, so each is visible at once, then one relay of their events.
pub async fn drain(deps: &AppDeps, company: Uuid) -> Result<Vec<Assignment>, ApiError> {
    let mut done = Vec::new();
    while let Some(a) = assign_next(deps, company).await? {
        done.push(a);
    }
    if !done.is_empty() {
        crate::outbox::relay_now(deps, RELAY).await;
    }
    Ok(done)
}

/// What a sweep of one company did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Conversations whose assignee did not answer in time, back in the queue.
    pub requeued: Vec<Uuid>,
    /// Support agents set away after missed heartbeats.
    pub set_away: u64,
    /// Snoozes that ended.
    pub woken: u64,
    pub assigned: Vec<Assignment>,
}

/// The company's timers, then a drain: unanswered assignments go back to the queue after the
/// company's reassignment time, support agents without a heartbeat for [`HEARTBEAT_TIMEOUT`]
/// are set away (they keep their conversations, get no new ones), ended snoozes wake.
pub async fn sweep_company(deps: &AppDeps, company: Uuid) -> Result<Swept, ApiError> {
    let ctx = worker_ctx(company);
    let tx = deps.db.begin(&ctx).await?;
    // Lock order as in every transition: conversations first (skipping any another
    // transaction holds), support agents' rows after; nothing here waits on a lock.
    let timers = async {
        let woken = tx
            .client()
            .query(
                "WITH ended AS (
                    UPDATE chatapp_conversations SET snoozed_until = NULL
                    WHERE id IN (SELECT id FROM chatapp_conversations
                                 WHERE company_id = $1 AND snoozed_until <= now()
                                 FOR UPDATE SKIP LOCKED)
                    RETURNING id)
                 SELECT chatapp_append_event(id, 'conversation.unsnoozed', '{}'::jsonb, true) FROM ended",
                &[&company],
            )
            .await?
            .len() as u64;
        let rows = tx
            .client()
            .query(
                "SELECT c.id FROM chatapp_conversations c
                 JOIN chatapp_companies co ON co.id = c.company_id
                 JOIN chatapp_escalations e ON e.conversation_id = c.id AND e.status = 'assigned'
                                            AND e.assignee_responded_at IS NULL
                 WHERE c.company_id = $1 AND c.status = 'with_human' AND c.deleted_at IS NULL
                   AND c.assigned_at < now() - make_interval(secs => co.reassign_after_seconds)
                 FOR UPDATE OF c SKIP LOCKED",
                &[&company],
            )
            .await?;
        let mut requeued = Vec::with_capacity(rows.len());
        for row in rows {
            let id: Uuid = row.get(0);
            tx.client().execute("SELECT chatapp_handoff_requeue($1, 'unanswered')", &[&id]).await?;
            system_audit(
                &tx,
                company,
                "conversation.requeue",
                ("conversation", id),
                serde_json::json!({"reason": "unanswered"}),
            )
            .await?;
            requeued.push(id);
        }
        let away = tx
            .client()
            .query(
                "UPDATE chatapp_support_agent_status
                 SET status = 'away', status_message = 'auto-away', status_changed_at = now()
                 WHERE user_id IN (SELECT user_id FROM chatapp_support_agent_status
                                   WHERE company_id = $1 AND status = 'online'
                                     AND last_active_at < now() - make_interval(secs => $2)
                                   ORDER BY user_id FOR UPDATE SKIP LOCKED)
                 RETURNING user_id",
                &[&company, &HEARTBEAT_TIMEOUT.as_secs_f64()],
            )
            .await?;
        for row in &away {
            let user: Uuid = row.get(0);
            system_audit(&tx, company, "support_agent.auto_away", ("user", user), serde_json::json!({})).await?;
        }
        let set_away = away.len() as u64;
        Ok::<_, DbError>(Swept { requeued, set_away, woken, assigned: Vec::new() })
    }
    .await
    .map_err(ApiError::from);
    let mut swept = tx.finish(timers).await?;
    swept.assigned = drain(deps, company).await?;
    if !swept.requeued.is_empty() || swept.woken > 0 {
        crate::outbox::relay_now(deps, RELAY).await;
    }
    Ok(swept)
}

/// Every company with something to do: waiting conversations and room, an assignment past its
/// reassignment time, an ended snooze or a missed heartbeat.
pub async fn sweep_all(deps: &AppDeps) -> Result<Vec<(Uuid, Swept)>, ApiError> {
    let companies: Vec<Uuid> = {
        let conn = deps.db.system().await?;
        conn.query("SELECT chatapp_companies_to_drain()", &[])
            .await
            .map_err(DbError::from)?
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let mut out = Vec::with_capacity(companies.len());
    // One company's failure (a deadlock victim, say) is logged and retried at the next sweep;
    // it never holds back the companies after it.
    for company in companies {
        match sweep_company(deps, company).await {
            Ok(swept) => out.push((company, swept)),
            Err(e) => {
                tracing::error!(error.chain = %crate::error::error_chain(&e), %company, "sweep of company failed")
            }
        }
    }
    Ok(out)
}
