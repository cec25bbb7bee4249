//! Writing an agent's versions (migration 0024): every create, update, clone and rollback
//! records the whole configuration (the fields of `chatapp::repo::agents::CONFIG_FIELDS`), the
//! fields that changed, who and when; `publish_draft` serves the draft to customers. The routes
//! that read, compare, roll back and publish versions are the `agent-versions` function's.

use chatapp::db::TenantTx;
use chatapp::repo::agent_versions::{self as repo, VersionAction};
use chatapp::repo::agents::Agent;
use chatapp::{ApiError, TenantCtx};
use serde_json::Value;
use uuid::Uuid;

/// Records `agent`'s configuration as its next version (`before`: the configuration it had;
/// `None` for a new agent). An update that changed nothing records nothing.
pub(crate) async fn record(
    tx: &TenantTx,
    ctx: &TenantCtx,
    before: Option<&Value>,
    agent: &mut Agent,
    action: VersionAction,
    note: Option<&str>,
) -> Result<(), ApiError> {
    let config = agent.fields().to_config();
    let changed = repo::changed_fields(before, &config);
    if changed.is_empty() && action == VersionAction::Update {
        return Ok(());
    }
    let version = repo::record(tx, agent.company_id, agent.id, &config, &changed, action, note, ctx.user_id()).await?;
    agent.version = version;
    agent.has_unpublished_changes = agent.published_version != Some(version);
    Ok(())
}

/// Serves `agent`'s draft (its current version) to customers.
pub(crate) async fn publish_draft(tx: &TenantTx, company: Uuid, agent: &mut Agent) -> Result<(), ApiError> {
    let config = agent.fields().to_config();
    repo::publish(tx, company, agent.id, agent.version, &config).await?;
    agent.published_version = Some(agent.version);
    agent.published_at = Some(chrono::Utc::now());
    agent.has_unpublished_changes = false;
    Ok(())
}
