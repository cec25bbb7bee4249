//! `chatapp_audit_logs`: every mutating admin route writes one row in the same transaction
//! as the change, so an audit row exists exactly when the change does.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::web::RequestMeta;

pub struct AuditEntry<'a> {
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: Option<Uuid>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl<'a> AuditEntry<'a> {
    /// A change to one row of `resource_type`: its state before and after, as the API shows it.
    pub fn change<T: serde::Serialize>(
        action: &'a str,
        resource_type: &'a str,
        id: Uuid,
        before: Option<&T>,
        after: Option<&T>,
    ) -> Self {
        AuditEntry {
            action,
            resource_type,
            resource_id: Some(id),
            before: before.and_then(|b| serde_json::to_value(b).ok()),
            after: after.and_then(|a| serde_json::to_value(a).ok()),
        }
    }
}

pub async fn record(tx: &TenantTx, entry: AuditEntry<'_>, meta: &RequestMeta) -> Result<(), DbError> {
    let ctx = tx.ctx();
    let mut details = json!({});
    if let Some(b) = entry.before {
        details["before"] = b;
    }
    if let Some(a) = entry.after {
        details["after"] = a;
    }
    if let crate::tenant::Principal::ApiKey { key_id, .. } = ctx.principal() {
        details["api_key_id"] = json!(key_id);
    }
    let company = ctx.company_id().map(|c| c.as_uuid());
    tx.client()
        .execute(
            "INSERT INTO chatapp_audit_logs
               (user_id, company_id, action, resource_type, resource_id, details, ip_address, user_agent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &ctx.user_id(),
                &company,
                &entry.action,
                &entry.resource_type,
                &entry.resource_id,
                &details,
                &meta.ip,
                &meta.user_agent,
            ],
        )
        .await?;
    Ok(())
}
