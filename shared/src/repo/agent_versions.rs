//! Agent versions (`chatapp_agent_versions`, migration 0024): every change to an agent's
//! configuration, and which version customers are served.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::web::Page;

/// What wrote a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VersionAction {
    Create,
    Update,
    Clone,
    Rollback,
}

impl VersionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionAction::Create => "create",
            VersionAction::Update => "update",
            VersionAction::Clone => "clone",
            VersionAction::Rollback => "rollback",
        }
    }

    fn parse(s: &str) -> VersionAction {
        match s {
            "create" => VersionAction::Create,
            "clone" => VersionAction::Clone,
            "rollback" => VersionAction::Rollback,
            _ => VersionAction::Update,
        }
    }
}

/// One version of an agent's configuration.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentVersion {
    pub version: i32,
    pub action: VersionAction,
    /// The configuration fields that differ from the version before (all of them for the first).
    pub changed: Vec<String>,
    /// Why, for a rollback: `rolled back to version N`.
    pub note: Option<String>,
    /// The user who made the change (absent when the user was deleted).
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// When it was last made the served version (absent: never published).
    pub published_at: Option<DateTime<Utc>>,
    /// The whole configuration at this version (`systemPrompt`, `llmConfig`, ...). Omitted in
    /// lists; fields the caller may not see are left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
}

fn from_row(r: &Row, with_config: bool) -> AgentVersion {
    AgentVersion {
        version: r.get(0),
        action: VersionAction::parse(r.get(1)),
        changed: r.get(2),
        note: r.get(3),
        created_by: r.get(4),
        created_at: r.get(5),
        published_at: r.get(6),
        config: with_config.then(|| r.get(7)),
    }
}

const COLUMNS: &str = "version, action, changed, note, created_by, created_at, published_at, config";

/// Records the agent's configuration `config` as its next version and makes it the draft's
/// version; the new version's number. The agent's row must be locked by the caller.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    tx: &TenantTx,
    company: Uuid,
    agent: Uuid,
    config: &Value,
    changed: &[String],
    action: VersionAction,
    note: Option<&str>,
    by: Option<Uuid>,
) -> Result<i32, DbError> {
    let row = tx
        .client()
        .query_one(
            "WITH a AS (
                UPDATE chatapp_agents SET version = version + 1
                WHERE company_id = $1 AND id = $2 RETURNING version)
             INSERT INTO chatapp_agent_versions (company_id, agent_id, version, config, changed, action, note, created_by)
             SELECT $1, $2, a.version, $3, $4, $5, $6,
                    (SELECT u.id FROM chatapp_users u WHERE u.id = $7)
             FROM a RETURNING version",
            &[&company, &agent, config, &changed, &action.as_str(), &note, &by],
        )
        .await?;
    Ok(row.get(0))
}

/// One page of the agent's versions, newest first, without their configurations, with the total.
pub async fn list(tx: &TenantTx, company: Uuid, agent: Uuid, page: Page) -> Result<(Vec<AgentVersion>, i64), DbError> {
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS}, count(*) OVER () FROM chatapp_agent_versions
                 WHERE company_id = $1 AND agent_id = $2 ORDER BY version DESC LIMIT $3 OFFSET $4"
            ),
            &[&company, &agent, &page.limit, &page.offset],
        )
        .await?;
    let total = rows.first().map(|r| r.get::<_, i64>(8)).unwrap_or(0);
    Ok((rows.iter().map(|r| from_row(r, false)).collect(), total))
}

/// Version `version` of the agent, with its configuration.
pub async fn get(tx: &TenantTx, company: Uuid, agent: Uuid, version: i32) -> Result<Option<AgentVersion>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM chatapp_agent_versions WHERE company_id = $1 AND agent_id = $2 AND version = $3"
            ),
            &[&company, &agent, &version],
        )
        .await?;
    Ok(row.as_ref().map(|r| from_row(r, true)))
}

/// Makes version `version` (with configuration `config`) the one customers are served.
pub async fn publish(tx: &TenantTx, company: Uuid, agent: Uuid, version: i32, config: &Value) -> Result<(), DbError> {
    tx.client()
        .execute(
            "UPDATE chatapp_agents SET published_version = $3, published_config = $4, published_at = now(),
                                       updated_at = now()
             WHERE company_id = $1 AND id = $2",
            &[&company, &agent, &version, config],
        )
        .await?;
    tx.client()
        .execute(
            "UPDATE chatapp_agent_versions SET published_at = now()
             WHERE company_id = $1 AND agent_id = $2 AND version = $3",
            &[&company, &agent, &version],
        )
        .await?;
    Ok(())
}

/// The configuration fields whose values differ between `before` and `after` (every field of
/// `after` when there is no `before`), in [`super::agents::CONFIG_FIELDS`] order.
pub fn changed_fields(before: Option<&Value>, after: &Value) -> Vec<String> {
    super::agents::CONFIG_FIELDS
        .iter()
        .filter(|f| {
            let new = after.get(**f).unwrap_or(&Value::Null);
            match before {
                None => !new.is_null(),
                Some(b) => b.get(**f).unwrap_or(&Value::Null) != new,
            }
        })
        .map(|f| f.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_fields_compare_values() {
        let a = json!({"name": "Ada", "llmConfig": {"temperature": 0.2}, "personality": null});
        let b = json!({"name": "Ada", "llmConfig": {"temperature": 0.3}, "personality": "warm"});
        assert_eq!(changed_fields(Some(&a), &b), vec!["personality", "llmConfig"]);
        assert_eq!(changed_fields(None, &a), vec!["name", "llmConfig"]);
        assert!(changed_fields(Some(&a), &a).is_empty());
    }
}
