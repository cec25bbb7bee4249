//! HTTP actions of an agent (migration 0025): tools a company defines that the AI may call. The
//! caller seals the header values and the signing secret (`crate::sealed`, bound to the company
//! and the action's id); [`HttpAction`], what admins see, never holds either.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::web::Page;

/// An HTTP action as admins see it: the header names, never their values nor the signing secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HttpAction {
    pub id: Uuid,
    pub agent_id: Uuid,
    /// The function name the model calls it by.
    pub name: String,
    /// What it does and when to use it, for the model.
    pub description: String,
    /// The JSON Schema (`"type": "object"`) of the arguments the model passes.
    #[schema(value_type = Object)]
    pub parameters: Value,
    pub url: String,
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// The names of the headers sent with every call (their values are sealed, never shown).
    pub header_names: Vec<String>,
    /// How long a call may take, 100-10000 ms.
    pub timeout_ms: i32,
    /// Only enabled actions are offered to the model.
    pub enabled: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What the executor (`crate::chat::tools::http_action`) needs of an action: the action and
/// its sealed secrets, sealed under (company, `action.id`).
#[derive(Debug, Clone)]
pub struct ActionSecrets {
    pub action: HttpAction,
    /// The sealed JSON object of header name -> value; `None` when it has no headers.
    pub headers_sealed: Option<Vec<u8>>,
    /// The sealed signing secret (its UTF-8 bytes are the HMAC key).
    pub signing_secret_sealed: Vec<u8>,
}

const COLUMNS: &str = "id, agent_id, name, description, parameters, url, method, header_names, timeout_ms, enabled,
    created_by, created_at, updated_at";

fn header_names(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn from_row(r: &Row) -> HttpAction {
    HttpAction {
        id: r.get(0),
        agent_id: r.get(1),
        name: r.get(2),
        description: r.get(3),
        parameters: r.get(4),
        url: r.get(5),
        method: r.get(6),
        header_names: header_names(r.get(7)),
        timeout_ms: r.get(8),
        enabled: r.get(9),
        created_by: r.get(10),
        created_at: r.get(11),
        updated_at: r.get(12),
    }
}

/// A new action (every field checked by the caller).
pub struct NewAction<'a> {
    /// Chosen by the caller: the sealed values are bound to it.
    pub id: Uuid,
    pub company_id: Uuid,
    pub agent_id: Uuid,
    pub name: &'a str,
    pub description: &'a str,
    pub parameters: &'a Value,
    pub url: &'a str,
    pub method: &'a str,
    pub headers_sealed: Option<&'a [u8]>,
    pub header_names: &'a [String],
    pub signing_secret_sealed: &'a [u8],
    pub timeout_ms: i32,
    pub enabled: bool,
}

/// Fails with a unique violation when the agent has an action of that name (case-insensitively).
pub async fn insert(tx: &TenantTx, a: &NewAction<'_>) -> Result<HttpAction, DbError> {
    let names = Value::from(a.header_names.to_vec());
    let row = tx
        .client()
        .query_one(
            &format!(
                "INSERT INTO chatapp_agent_actions
                     (id, company_id, agent_id, name, description, parameters, url, method, headers_sealed,
                      header_names, signing_secret_sealed, timeout_ms, enabled, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING {COLUMNS}"
            ),
            &[
                &a.id,
                &a.company_id,
                &a.agent_id,
                &a.name,
                &a.description,
                a.parameters,
                &a.url,
                &a.method,
                &a.headers_sealed,
                &names,
                &a.signing_secret_sealed,
                &a.timeout_ms,
                &a.enabled,
                &tx.ctx().user_id(),
            ],
        )
        .await?;
    Ok(from_row(&row))
}

/// The agent's actions by name, one page, with the total.
pub async fn list(tx: &TenantTx, company: Uuid, agent: Uuid, page: Page) -> Result<(Vec<HttpAction>, i64), DbError> {
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS} FROM chatapp_agent_actions WHERE company_id = $1 AND agent_id = $2
                 ORDER BY lower(name), id LIMIT $3 OFFSET $4"
            ),
            &[&company, &agent, &page.limit, &page.offset],
        )
        .await?;
    let total: i64 = tx
        .client()
        .query_one(
            "SELECT count(*) FROM chatapp_agent_actions WHERE company_id = $1 AND agent_id = $2",
            &[&company, &agent],
        )
        .await?
        .get(0);
    Ok((rows.iter().map(from_row).collect(), total))
}

/// One action of the company's agent.
pub async fn get(tx: &TenantTx, company: Uuid, agent: Uuid, id: Uuid) -> Result<Option<HttpAction>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!("SELECT {COLUMNS} FROM chatapp_agent_actions WHERE id = $1 AND company_id = $2 AND agent_id = $3"),
            &[&id, &company, &agent],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// [`get`], locking the row until the transaction ends (read, then write it).
pub async fn lock(tx: &TenantTx, company: Uuid, agent: Uuid, id: Uuid) -> Result<Option<HttpAction>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM chatapp_agent_actions WHERE id = $1 AND company_id = $2 AND agent_id = $3
                 FOR UPDATE"
            ),
            &[&id, &company, &agent],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// What an admin may change; `None` leaves a field as it is.
#[derive(Default)]
pub struct ActionChange<'a> {
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub parameters: Option<&'a Value>,
    pub url: Option<&'a str>,
    pub method: Option<&'a str>,
    /// Replaces every header: the sealed object (`None`: no headers) and the names.
    pub headers: Option<(Option<&'a [u8]>, &'a [String])>,
    pub timeout_ms: Option<i32>,
    pub enabled: Option<bool>,
}

/// Fails with a unique violation when the new name is another action's of the agent.
pub async fn update(
    tx: &TenantTx,
    company: Uuid,
    agent: Uuid,
    id: Uuid,
    c: &ActionChange<'_>,
) -> Result<Option<HttpAction>, DbError> {
    let set_headers = c.headers.is_some();
    let (sealed, names) = match c.headers {
        Some((sealed, names)) => (sealed, Some(Value::from(names.to_vec()))),
        None => (None, None),
    };
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_agent_actions SET
                     name = COALESCE($4::text, name),
                     description = COALESCE($5::text, description),
                     parameters = COALESCE($6::jsonb, parameters),
                     url = COALESCE($7::text, url),
                     method = COALESCE($8::text, method),
                     headers_sealed = CASE WHEN $9::boolean THEN $10::bytea ELSE headers_sealed END,
                     header_names = CASE WHEN $9::boolean THEN $11::jsonb ELSE header_names END,
                     timeout_ms = COALESCE($12::integer, timeout_ms),
                     enabled = COALESCE($13::boolean, enabled),
                     updated_at = now()
                 WHERE id = $1 AND company_id = $2 AND agent_id = $3 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &company,
                &agent,
                &c.name,
                &c.description,
                &c.parameters,
                &c.url,
                &c.method,
                &set_headers,
                &sealed,
                &names,
                &c.timeout_ms,
                &c.enabled,
            ],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Replaces the action's sealed signing secret (a rotation).
pub async fn set_signing_secret(
    tx: &TenantTx,
    company: Uuid,
    agent: Uuid,
    id: Uuid,
    sealed: &[u8],
) -> Result<Option<HttpAction>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_agent_actions SET signing_secret_sealed = $4, updated_at = now()
                 WHERE id = $1 AND company_id = $2 AND agent_id = $3 RETURNING {COLUMNS}"
            ),
            &[&id, &company, &agent, &sealed],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn delete(tx: &TenantTx, company: Uuid, agent: Uuid, id: Uuid) -> Result<bool, DbError> {
    let n = tx
        .client()
        .execute(
            "DELETE FROM chatapp_agent_actions WHERE id = $1 AND company_id = $2 AND agent_id = $3",
            &[&id, &company, &agent],
        )
        .await?;
    Ok(n == 1)
}

/// The company's agent's enabled actions with their sealed secrets, by name: what a chat turn
/// offers the model and calls.
pub async fn enabled_for_agent(tx: &TenantTx, company: Uuid, agent: Uuid) -> Result<Vec<ActionSecrets>, DbError> {
    with_secrets(tx, company, agent, true).await
}

/// Every action of the agent, enabled or not, with its sealed secrets (what a clone copies).
pub async fn all_with_secrets(tx: &TenantTx, company: Uuid, agent: Uuid) -> Result<Vec<ActionSecrets>, DbError> {
    with_secrets(tx, company, agent, false).await
}

async fn with_secrets(
    tx: &TenantTx,
    company: Uuid,
    agent: Uuid,
    only_enabled: bool,
) -> Result<Vec<ActionSecrets>, DbError> {
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS}, headers_sealed, signing_secret_sealed FROM chatapp_agent_actions
                 WHERE company_id = $1 AND agent_id = $2 AND (enabled OR NOT $3)
                 ORDER BY lower(name), id"
            ),
            &[&company, &agent, &only_enabled],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ActionSecrets { action: from_row(r), headers_sealed: r.get(13), signing_secret_sealed: r.get(14) })
        .collect())
}
