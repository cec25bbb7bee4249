//! Cloning an agent's HTTP actions (`clone` in `handler.rs`): the rows are the
//! `agent-actions` function's; their sealed values are bound to (company, row id), so a copy's
//! are opened and sealed again under its new id.

use chatapp::app::Core;
use chatapp::db::TenantTx;
use chatapp::repo::actions::{self as repo, NewAction};
use chatapp::sealed::SealingKey;
use chatapp::ApiError;
use serde_json::Value;
use uuid::Uuid;

/// Copies every action of agent `from` to the new agent `to` (a clone): the same fields under
/// fresh ids, the header values and signing secret opened and sealed again under the new ids
/// (a sealed value is bound to its row), so the copy calls the same endpoints signed the same
/// way. Returns each copy as `{source_id, id, name}`, for the clone's audit row.
pub(super) async fn copy_all(
    deps: &Core,
    tx: &TenantTx,
    company: Uuid,
    from: Uuid,
    to: Uuid,
) -> Result<Vec<Value>, ApiError> {
    let key = SealingKey::new(deps.cfg.secrets_key.expose());
    let reseal = |old: Uuid, new: Uuid, sealed: &[u8]| -> Result<Vec<u8>, ApiError> {
        let plain = key.open(company, old, sealed).map_err(ApiError::internal)?;
        key.seal(company, new, &plain).map_err(ApiError::internal)
    };
    let source = repo::all_with_secrets(tx, company, from).await?;
    let mut copies = Vec::with_capacity(source.len());
    for s in &source {
        let a = &s.action;
        let id = Uuid::new_v4();
        let headers = s.headers_sealed.as_deref().map(|h| reseal(a.id, id, h)).transpose()?;
        let secret = reseal(a.id, id, &s.signing_secret_sealed)?;
        repo::insert(
            tx,
            &NewAction {
                id,
                company_id: company,
                agent_id: to,
                name: &a.name,
                description: &a.description,
                parameters: &a.parameters,
                url: &a.url,
                method: &a.method,
                headers_sealed: headers.as_deref(),
                header_names: &a.header_names,
                signing_secret_sealed: &secret,
                timeout_ms: a.timeout_ms,
                enabled: a.enabled,
            },
        )
        .await?;
        copies.push(serde_json::json!({"source_id": a.id, "id": id, "name": a.name}));
    }
    Ok(copies)
}
