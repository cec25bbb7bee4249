//! Widget configurations as company admins edit them (migration 0022): the live values the
//! widget reads (through [`crate::repo::chat::widget_config`]), the unpublished draft, and the
//! sealed identity secret, which only [`identity_secret`] reads back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// The values of a widget an admin sets: live in the table's columns, or as the draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct WidgetValues {
    /// `light`, `dark` or `auto`.
    pub theme: String,
    /// `bottom-right` or `bottom-left`.
    pub position: String,
    /// `#rrggbb`.
    pub primary_color: String,
    pub title: Option<String>,
    pub subtitle: Option<String>,
    pub avatar_url: Option<String>,
    pub logo_url: Option<String>,
    pub show_branding: bool,
    pub auto_open: bool,
    /// Milliseconds before the widget opens itself (with `auto_open`).
    pub auto_open_delay: i32,
    pub welcome_message: Option<String>,
    pub placeholder_text: Option<String>,
    pub enable_file_upload: bool,
    pub enable_emoji: bool,
    pub custom_css: Option<String>,
    /// Hostnames (`example.com`, `*.example.com`) whose pages may embed the widget; empty: any.
    pub allowed_domains: Vec<String>,
    /// Sessions must carry a verified identity (`identifier` and `identity_hash`).
    pub require_identity: bool,
}

/// The columns' defaults (migration 0007), which the widget also assumes without a row.
impl Default for WidgetValues {
    fn default() -> Self {
        Self {
            theme: "light".into(),
            position: "bottom-right".into(),
            primary_color: "#007bff".into(),
            title: None,
            subtitle: None,
            avatar_url: None,
            logo_url: None,
            show_branding: true,
            auto_open: false,
            auto_open_delay: 5000,
            welcome_message: None,
            placeholder_text: None,
            enable_file_upload: true,
            enable_emoji: true,
            custom_css: None,
            allowed_domains: Vec::new(),
            require_identity: false,
        }
    }
}

/// An agent's widget configuration as admins see it: never its identity secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WidgetAdminConfig {
    /// The configuration's id; `null` while the agent's widget has never been changed (it
    /// shows the defaults).
    pub id: Option<Uuid>,
    pub agent_id: Uuid,
    /// What the widget shows now.
    pub published: WidgetValues,
    /// The unpublished edit, if any: the widget does not see it until it is published.
    pub draft: Option<WidgetValues>,
    pub published_at: Option<DateTime<Utc>>,
    /// Live: the widget refuses sessions without a verified identity.
    pub require_identity: bool,
    /// An identity secret exists (it is shown only in the response that generates it).
    pub has_identity_secret: bool,
    pub identity_secret_rotated_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl WidgetAdminConfig {
    /// The configuration of an agent whose widget has no row yet: the defaults, no draft.
    pub fn unset(agent_id: Uuid) -> Self {
        Self {
            id: None,
            agent_id,
            published: WidgetValues::default(),
            draft: None,
            published_at: None,
            require_identity: false,
            has_identity_secret: false,
            identity_secret_rotated_at: None,
            updated_at: None,
        }
    }
}

/// Read with the defaults the widget assumes for NULL columns (`repo::chat::widget_config`).
/// A clear-text secret set before 0022 counts as a secret too.
const COLUMNS: &str = "id, agent_id, COALESCE(theme, 'light'), COALESCE(position, 'bottom-right'),
    COALESCE(primary_color, '#007bff'), title, subtitle, avatar_url, logo_url, COALESCE(show_branding, true),
    COALESCE(auto_open, false), COALESCE(auto_open_delay, 5000), welcome_message, placeholder_text,
    COALESCE(enable_file_upload, true), COALESCE(enable_emoji, true), custom_css,
    COALESCE(allowed_domains, '[]'::jsonb), require_identity, draft, published_at,
    (identity_secret_sealed IS NOT NULL OR identity_secret IS NOT NULL), identity_secret_rotated_at, updated_at";

fn config(r: &Row) -> WidgetAdminConfig {
    let published = WidgetValues {
        theme: r.get(2),
        position: r.get(3),
        primary_color: r.get(4),
        title: r.get(5),
        subtitle: r.get(6),
        avatar_url: r.get(7),
        logo_url: r.get(8),
        show_branding: r.get(9),
        auto_open: r.get(10),
        auto_open_delay: r.get(11),
        welcome_message: r.get(12),
        placeholder_text: r.get(13),
        enable_file_upload: r.get(14),
        enable_emoji: r.get(15),
        custom_css: r.get(16),
        allowed_domains: serde_json::from_value(r.get(17)).unwrap_or_default(),
        require_identity: r.get(18),
    };
    let draft: Option<Value> = r.get(19);
    WidgetAdminConfig {
        id: Some(r.get(0)),
        agent_id: r.get(1),
        require_identity: published.require_identity,
        published,
        // Written only by `set_draft`, from a `WidgetValues`.
        draft: draft.and_then(|d| serde_json::from_value(d).ok()),
        published_at: r.get(20),
        has_identity_secret: r.get(21),
        identity_secret_rotated_at: r.get(22),
        updated_at: Some(r.get(23)),
    }
}

/// The agent's widget configuration, if it has one.
pub async fn get(tx: &TenantTx, company: Uuid, agent: Uuid) -> Result<Option<WidgetAdminConfig>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!("SELECT {COLUMNS} FROM chatapp_widget_configs WHERE company_id = $1 AND agent_id = $2"),
            &[&company, &agent],
        )
        .await?;
    Ok(row.as_ref().map(config))
}

/// [`get`], locking the row until the transaction ends (read, then write it).
pub async fn lock(tx: &TenantTx, company: Uuid, agent: Uuid) -> Result<Option<WidgetAdminConfig>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!("SELECT {COLUMNS} FROM chatapp_widget_configs WHERE company_id = $1 AND agent_id = $2 FOR UPDATE"),
            &[&company, &agent],
        )
        .await?;
    Ok(row.as_ref().map(config))
}

/// The agent's configuration, locked; a row with the defaults is created first when the agent
/// has none (one per agent: `chatapp_widget_configs_agent_key`). The caller has checked that the
/// agent is the company's.
pub async fn ensure(tx: &TenantTx, company: Uuid, agent: Uuid) -> Result<WidgetAdminConfig, DbError> {
    tx.client()
        .execute(
            "INSERT INTO chatapp_widget_configs (company_id, agent_id) VALUES ($1, $2)
             ON CONFLICT (agent_id) DO NOTHING",
            &[&company, &agent],
        )
        .await?;
    let row = tx
        .client()
        .query_one(
            &format!("SELECT {COLUMNS} FROM chatapp_widget_configs WHERE company_id = $1 AND agent_id = $2 FOR UPDATE"),
            &[&company, &agent],
        )
        .await?;
    Ok(config(&row))
}

/// Deletes the agent's widget configuration (published values, draft and identity secret);
/// whether it had one.
pub async fn delete(tx: &TenantTx, company: Uuid, agent: Uuid) -> Result<bool, DbError> {
    Ok(tx
        .client()
        .execute("DELETE FROM chatapp_widget_configs WHERE company_id = $1 AND agent_id = $2", &[&company, &agent])
        .await?
        > 0)
}

/// Replaces the draft (the widget keeps showing the published values).
pub async fn set_draft(
    tx: &TenantTx,
    company: Uuid,
    agent: Uuid,
    draft: &WidgetValues,
) -> Result<WidgetAdminConfig, DbError> {
    let draft = serde_json::to_value(draft).unwrap_or(Value::Null);
    let row = tx
        .client()
        .query_one(
            &format!(
                "UPDATE chatapp_widget_configs SET draft = $3, updated_at = now()
                 WHERE company_id = $1 AND agent_id = $2 RETURNING {COLUMNS}"
            ),
            &[&company, &agent, &draft],
        )
        .await?;
    Ok(config(&row))
}

/// Makes `v` (the draft) what the widget shows, and clears the draft.
pub async fn publish(
    tx: &TenantTx,
    company: Uuid,
    agent: Uuid,
    v: &WidgetValues,
) -> Result<WidgetAdminConfig, DbError> {
    let domains = Value::from(v.allowed_domains.clone());
    let row = tx
        .client()
        .query_one(
            &format!(
                "UPDATE chatapp_widget_configs SET
                     theme = $3, position = $4, primary_color = $5, title = $6, subtitle = $7, avatar_url = $8,
                     logo_url = $9, show_branding = $10, auto_open = $11, auto_open_delay = $12,
                     welcome_message = $13, placeholder_text = $14, enable_file_upload = $15, enable_emoji = $16,
                     custom_css = $17, allowed_domains = $18, require_identity = $19,
                     draft = NULL, published_at = now(), updated_at = now()
                 WHERE company_id = $1 AND agent_id = $2 RETURNING {COLUMNS}"
            ),
            &[
                &company,
                &agent,
                &v.theme,
                &v.position,
                &v.primary_color,
                &v.title,
                &v.subtitle,
                &v.avatar_url,
                &v.logo_url,
                &v.show_branding,
                &v.auto_open,
                &v.auto_open_delay,
                &v.welcome_message,
                &v.placeholder_text,
                &v.enable_file_upload,
                &v.enable_emoji,
                &v.custom_css,
                &domains,
                &v.require_identity,
            ],
        )
        .await?;
    Ok(config(&row))
}

/// Stores a new sealed identity secret on configuration `id` and clears the clear-text one of
/// migration 0013, so no secret is left in clear.
pub async fn set_identity_secret(
    tx: &TenantTx,
    company: Uuid,
    id: Uuid,
    sealed: &[u8],
) -> Result<WidgetAdminConfig, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "UPDATE chatapp_widget_configs SET identity_secret_sealed = $3, identity_secret = NULL,
                     identity_secret_rotated_at = now(), updated_at = now()
                 WHERE id = $1 AND company_id = $2 RETURNING {COLUMNS}"
            ),
            &[&id, &company, &sealed],
        )
        .await?;
    Ok(config(&row))
}

/// The agent's sealed identity secret with the configuration id it is bound to (opening it
/// needs both the company and that id); `None` when none was generated.
pub async fn identity_secret(tx: &TenantTx, company: Uuid, agent: Uuid) -> Result<Option<(Uuid, Vec<u8>)>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT id, identity_secret_sealed FROM chatapp_widget_configs
             WHERE company_id = $1 AND agent_id = $2 AND identity_secret_sealed IS NOT NULL",
            &[&company, &agent],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}
