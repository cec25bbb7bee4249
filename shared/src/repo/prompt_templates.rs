//! Prompt templates (seed 000 `ai_prompts`; migrations 0003 and 0027): global rows every
//! signed-in user may read and only the master admin may write (row-level security). What a
//! template may hold is checked by [`crate::prompt_template::check_template`] before it is
//! stored; the chat turn reads an agent's template with [`get_active`] and renders it with
//! [`crate::prompt_template::render`]. Every read here returns the content; the API shows it to
//! the master admin only ([`PromptTemplate::without_content`] for everyone else), as agents hide
//! their system prompt from company admins.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::prompt_template::{variables_from_json, variables_to_json, TemplateVariable};

/// A prompt template of the catalog.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PromptTemplate {
    pub id: Uuid,
    /// Unique; 1-100 characters of a-z, 0-9, `-` and `.`.
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    /// The system prompt, with `{{variable}}` placeholders: absent unless you are the master
    /// admin (the prompt an agent hides from company admins, like its own system prompt).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub content: Option<String>,
    /// The variables the content may use besides the built-in ones (`company_name`,
    /// `customer_name`, `agent_name`, `business_hours`).
    pub variables: Vec<TemplateVariable>,
    /// The catalog model the template is written for, if any.
    pub model_id: Option<Uuid>,
    /// Company admins see (and agents use) active templates only.
    pub is_active: bool,
    /// 1, then one more at every change of content or variables.
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, slug, name, description, content, variables, model_id, is_active, version, created_at, updated_at";

fn from_row(r: &Row) -> PromptTemplate {
    let variables: Value = r.get(5);
    PromptTemplate {
        id: r.get(0),
        slug: r.get(1),
        name: r.get(2),
        description: r.get(3),
        content: Some(r.get(4)),
        variables: variables_from_json(&variables),
        model_id: r.get(6),
        is_active: r.get(7),
        version: r.get(8),
        created_at: r.get(9),
        updated_at: r.get(10),
    }
}

/// Every column the master admin sets (checked by the caller).
#[derive(Debug, Clone)]
pub struct TemplateFields {
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    pub content: String,
    pub variables: Vec<TemplateVariable>,
    pub model_id: Option<Uuid>,
    pub is_active: bool,
}

impl PromptTemplate {
    /// What the master admin set, to change some of it (of a template read here, which has its
    /// content).
    pub fn fields(&self) -> TemplateFields {
        TemplateFields {
            slug: self.slug.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            content: self.content.clone().unwrap_or_default(),
            variables: self.variables.clone(),
            model_id: self.model_id,
            is_active: self.is_active,
        }
    }

    /// The template as anyone but the master admin sees it: everything but the content (its
    /// name, description and variables are what an agent's `prompt_variables` are filled from).
    pub fn without_content(self) -> Self {
        Self { content: None, ..self }
    }
}

pub async fn insert(tx: &TenantTx, f: &TemplateFields) -> Result<PromptTemplate, DbError> {
    let variables = variables_to_json(&f.variables);
    let row = tx
        .client()
        .query_one(
            &format!(
                "INSERT INTO chatapp_prompt_templates (slug, name, description, content, variables, model_id, is_active)
                 VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
                 RETURNING {COLUMNS}"
            ),
            &[&f.slug, &f.name, &f.description, &f.content, &variables, &f.model_id, &f.is_active],
        )
        .await?;
    Ok(from_row(&row))
}

/// The templates by slug, optionally by whether they are active; `only_active` hides the
/// inactive ones whatever the filter (what company users see).
pub async fn list(
    tx: &TenantTx,
    active: Option<bool>,
    only_active: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<PromptTemplate>, i64), DbError> {
    let filter = "($1::boolean IS NULL OR is_active = $1) AND (NOT $2::boolean OR is_active)";
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS} FROM chatapp_prompt_templates WHERE {filter}
                 ORDER BY slug, id LIMIT $3 OFFSET $4"
            ),
            &[&active, &only_active, &limit, &offset],
        )
        .await?;
    let total: i64 = tx
        .client()
        .query_one(&format!("SELECT count(*) FROM chatapp_prompt_templates WHERE {filter}"), &[&active, &only_active])
        .await?
        .get(0);
    Ok((rows.iter().map(from_row).collect(), total))
}

pub async fn get(tx: &TenantTx, id: Uuid) -> Result<Option<PromptTemplate>, DbError> {
    let row =
        tx.client().query_opt(&format!("SELECT {COLUMNS} FROM chatapp_prompt_templates WHERE id = $1"), &[&id]).await?;
    Ok(row.as_ref().map(from_row))
}

/// The template an agent names, when it exists and is active: what a chat turn renders
/// (`None`: the agent's own system prompt applies).
pub async fn get_active(tx: &TenantTx, id: Uuid) -> Result<Option<PromptTemplate>, DbError> {
    let row = tx
        .client()
        .query_opt(&format!("SELECT {COLUMNS} FROM chatapp_prompt_templates WHERE id = $1 AND is_active"), &[&id])
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// [`get`], locking the row until the transaction ends (read, then write it; the master
/// admin's only: row-level security hides the row from a lock anyone else asks for).
pub async fn lock(tx: &TenantTx, id: Uuid) -> Result<Option<PromptTemplate>, DbError> {
    let row = tx
        .client()
        .query_opt(&format!("SELECT {COLUMNS} FROM chatapp_prompt_templates WHERE id = $1 FOR UPDATE"), &[&id])
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Replaces every column the master admin sets; `new_version` counts a change of content or
/// variables.
pub async fn update(
    tx: &TenantTx,
    id: Uuid,
    f: &TemplateFields,
    new_version: bool,
) -> Result<Option<PromptTemplate>, DbError> {
    let variables = variables_to_json(&f.variables);
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_prompt_templates SET slug = $2, name = $3, description = $4, content = $5,
                     variables = $6::jsonb, model_id = $7, is_active = $8,
                     version = version + CASE WHEN $9::boolean THEN 1 ELSE 0 END, updated_at = now()
                 WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id, &f.slug, &f.name, &f.description, &f.content, &variables, &f.model_id, &f.is_active, &new_version],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn delete(tx: &TenantTx, id: Uuid) -> Result<bool, DbError> {
    let n = tx.client().execute("DELETE FROM chatapp_prompt_templates WHERE id = $1", &[&id]).await?;
    Ok(n == 1)
}

/// Whether the catalog has this model.
pub async fn model_exists(tx: &TenantTx, model_id: Uuid) -> Result<bool, DbError> {
    Ok(tx
        .client()
        .query_one("SELECT EXISTS (SELECT 1 FROM chatapp_ai_models WHERE id = $1)", &[&model_id])
        .await?
        .get(0))
}

/// The values agents give a template: those of every agent (not deleted; of every company the
/// caller may see: all for the master admin) whose row names it, and those of every published
/// configuration that names it (what customers are served while the row is a draft).
const USES: &str = "WITH uses AS (
         SELECT a.prompt_variables AS vals FROM chatapp_agents a
         WHERE a.deleted_at IS NULL AND a.prompt_template_id = $1::uuid
         UNION ALL
         SELECT a.published_config -> 'promptVariables' FROM chatapp_agents a
         WHERE a.deleted_at IS NULL AND a.published_config ->> 'promptTemplateId' = $1::uuid::text)";

/// How many agents use the template: their row or their published configuration names it
/// (not deleted; of every company the caller may see: all for the master admin).
pub async fn agents_using(tx: &TenantTx, id: Uuid) -> Result<i64, DbError> {
    Ok(tx
        .client()
        .query_one(
            "SELECT count(*) FROM chatapp_agents
             WHERE deleted_at IS NULL
               AND (prompt_template_id = $1::uuid OR published_config ->> 'promptTemplateId' = $1::uuid::text)",
            &[&id],
        )
        .await?
        .get(0))
}

/// The first of `names` an agent using the template (in its row or its published
/// configuration) gives a value for, if any: a variable the template may not drop.
pub async fn variable_given(tx: &TenantTx, id: Uuid, names: &[String]) -> Result<Option<String>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "{USES}
                 SELECT r.name FROM unnest($2::text[]) AS r(name)
                 WHERE EXISTS (SELECT 1 FROM uses u WHERE jsonb_typeof(u.vals) = 'object' AND u.vals ? r.name)
                 ORDER BY r.name LIMIT 1"
            ),
            &[&id, &names],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// The first of `names` some agent using the template (in its row or its published
/// configuration) gives no non-blank value for, if any: a variable the template may not make
/// required without a default.
pub async fn variable_missing(tx: &TenantTx, id: Uuid, names: &[String]) -> Result<Option<String>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "{USES}
                 SELECT r.name FROM unnest($2::text[]) AS r(name)
                 WHERE EXISTS (SELECT 1 FROM uses u WHERE COALESCE(btrim(u.vals ->> r.name), '') = '')
                 ORDER BY r.name LIMIT 1"
            ),
            &[&id, &names],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}
