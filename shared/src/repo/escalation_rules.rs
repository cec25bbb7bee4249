//! Escalation rules (seed 003, migration 0005) as company admins manage them. The chat turn
//! reads the active ones that apply to a conversation with [`crate::repo::chat::escalation_rules`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// An escalation rule of the company.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EscalationRule {
    pub id: Uuid,
    /// The agent it applies to; `null`: every agent of the company.
    pub agent_id: Option<Uuid>,
    pub name: String,
    pub description: Option<String>,
    /// Matched case-insensitively on word boundaries in each customer message.
    pub trigger_keywords: Vec<String>,
    /// `triggerType`, `sentimentBelow`, `confidenceBelow`, `afterTurns`, `minTurns`,
    /// `explicitRequest`, ... (see `chatapp::chat::escalation::Rule`).
    #[schema(value_type = Object)]
    pub trigger_conditions: Value,
    /// Who gets the conversation: `{"strategy": "round_robin" | "least_busy" | "specific_agent",
    /// "agent_id"}`.
    #[schema(value_type = Object)]
    pub assignment_logic: Value,
    /// 1 (low) to 5 (urgent); the highest matching rule decides the escalation's priority.
    pub priority: i32,
    pub is_active: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, agent_id, name, description, trigger_keywords, trigger_conditions, assignment_logic,
    priority, is_active, created_by, created_at, updated_at";

fn rule(r: &Row) -> EscalationRule {
    EscalationRule {
        id: r.get(0),
        agent_id: r.get(1),
        name: r.get(2),
        description: r.get(3),
        trigger_keywords: r.get(4),
        trigger_conditions: r.get(5),
        assignment_logic: r.get(6),
        priority: r.get(7),
        is_active: r.get(8),
        created_by: r.get(9),
        created_at: r.get(10),
        updated_at: r.get(11),
    }
}

/// Every column an admin sets (checked by the caller).
pub struct RuleFields<'a> {
    pub agent_id: Option<Uuid>,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub trigger_keywords: &'a [String],
    pub trigger_conditions: &'a Value,
    pub assignment_logic: &'a Value,
    pub priority: i32,
    pub is_active: bool,
}

pub async fn insert(
    tx: &TenantTx,
    company: Uuid,
    created_by: Option<Uuid>,
    f: &RuleFields<'_>,
) -> Result<EscalationRule, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "INSERT INTO chatapp_escalation_rules (company_id, agent_id, name, description, trigger_keywords,
                     trigger_conditions, assignment_logic, priority, is_active, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 RETURNING {COLUMNS}"
            ),
            &[
                &company,
                &f.agent_id,
                &f.name,
                &f.description,
                &f.trigger_keywords,
                f.trigger_conditions,
                f.assignment_logic,
                &f.priority,
                &f.is_active,
                &created_by,
            ],
        )
        .await?;
    Ok(rule(&row))
}

/// Rules of the company, highest priority first, optionally of one agent (not the company-wide
/// ones) and/or by whether they are active.
pub async fn list(
    tx: &TenantTx,
    company: Uuid,
    agent: Option<Uuid>,
    active: Option<bool>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<EscalationRule>, i64), DbError> {
    let filter = "company_id = $1 AND ($2::uuid IS NULL OR agent_id = $2) AND ($3::boolean IS NULL OR is_active = $3)";
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS} FROM chatapp_escalation_rules WHERE {filter}
                 ORDER BY priority DESC, name, id LIMIT $4 OFFSET $5"
            ),
            &[&company, &agent, &active, &limit, &offset],
        )
        .await?;
    let total: i64 = tx
        .client()
        .query_one(
            &format!("SELECT count(*) FROM chatapp_escalation_rules WHERE {filter}"),
            &[&company, &agent, &active],
        )
        .await?
        .get(0);
    Ok((rows.iter().map(rule).collect(), total))
}

pub async fn get(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<EscalationRule>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!("SELECT {COLUMNS} FROM chatapp_escalation_rules WHERE id = $1 AND company_id = $2"),
            &[&id, &company],
        )
        .await?;
    Ok(row.as_ref().map(rule))
}

/// [`get`], locking the row until the transaction ends (read, then write it).
pub async fn lock(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<EscalationRule>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!("SELECT {COLUMNS} FROM chatapp_escalation_rules WHERE id = $1 AND company_id = $2 FOR UPDATE"),
            &[&id, &company],
        )
        .await?;
    Ok(row.as_ref().map(rule))
}

/// Replaces every admin-set column of the rule.
pub async fn update(
    tx: &TenantTx,
    company: Uuid,
    id: Uuid,
    f: &RuleFields<'_>,
) -> Result<Option<EscalationRule>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_escalation_rules SET agent_id = $3, name = $4, description = $5,
                     trigger_keywords = $6, trigger_conditions = $7, assignment_logic = $8, priority = $9,
                     is_active = $10, updated_at = now()
                 WHERE id = $1 AND company_id = $2 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &company,
                &f.agent_id,
                &f.name,
                &f.description,
                &f.trigger_keywords,
                f.trigger_conditions,
                f.assignment_logic,
                &f.priority,
                &f.is_active,
            ],
        )
        .await?;
    Ok(row.as_ref().map(rule))
}

pub async fn delete(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<bool, DbError> {
    let n = tx
        .client()
        .execute("DELETE FROM chatapp_escalation_rules WHERE id = $1 AND company_id = $2", &[&id, &company])
        .await?;
    Ok(n == 1)
}
