//! The effective RAG config (chunking and retrieval settings): the company's, overlaid with
//! an agent's.

use serde_json::Value;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// The agent whose RAG config governs chunking of files in `category` (first assigned), if any.
pub async fn rag_config_for_category(tx: &TenantTx, company: Uuid, category: Option<Uuid>) -> Result<Value, DbError> {
    let row = tx
        .client()
        .query_one(
            "SELECT COALESCE(c.settings -> 'ragConfig', '{}'::jsonb)
                    || COALESCE((SELECT a.rag_config FROM chatapp_agent_knowledge_categories akc
                                 JOIN chatapp_agents a ON a.id = akc.agent_id
                                 WHERE akc.category_id = $2 ORDER BY akc.created_at LIMIT 1), '{}'::jsonb)
             FROM chatapp_companies c WHERE c.id = $1",
            &[&company, &category],
        )
        .await?;
    Ok(row.get(0))
}

/// An agent's effective RAG config: the company's `settings.ragConfig` overlaid with the agent's.
pub async fn agent_rag_config(tx: &TenantTx, company: Uuid, agent: Uuid) -> Result<Value, DbError> {
    let row = tx
        .client()
        .query_one(
            "SELECT COALESCE(c.settings -> 'ragConfig', '{}'::jsonb)
                    || COALESCE((SELECT a.rag_config FROM chatapp_agents a WHERE a.company_id = $1 AND a.id = $2),
                                '{}'::jsonb)
             FROM chatapp_companies c WHERE c.id = $1",
            &[&company, &agent],
        )
        .await?;
    Ok(row.get(0))
}
