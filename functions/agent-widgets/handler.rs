//! `agent-widgets` function: the agent's chat widget as company admins configure it.
//!
//! GET  /admin/agents/{id}/widget                   the published values, the draft, identity settings
//! PUT  /admin/agents/{id}/widget                   change the draft (the widget does not see it)
//! DELETE /admin/agents/{id}/widget                 start over: the defaults, no draft, no secret
//! POST /admin/agents/{id}/widget/publish           the draft becomes what the widget shows
//! POST /admin/agents/{id}/widget/identity-secret   a new identity secret, shown once
//!
//! Edits go to a draft (`chatapp_widget_configs.draft`, migration 0022) until they are
//! published, so a half-done change never reaches visitors. The draft holds every value: fields
//! a PUT leaves out keep their draft value (without a draft, the published one), `null` clears
//! an optional text. Publishing without a draft is 409 `nothing_to_publish`.
//!
//! Identity verification: a site that knows who its visitor is sends the visitor's id as
//! `identifier` with `identity_hash = hex(HMAC-SHA256(identity secret, identifier))` when it
//! starts a session; with `require_identity` published the widget refuses sessions without a
//! valid one. The secret is the platform's (256 random bits), sealed with AES-256-GCM bound to
//! the company and the configuration row, and shown only in the response that generates it.
//! Requiring identities is refused at publish time (409 `identity_secret_missing`) while no
//! secret exists, since no session could then start.
//!
//! Another company's agent id is 404, as an unknown one.

use axum::extract::State;
use axum::Json;
use chatapp::app::Core;
use chatapp::audit::{self, AuditEntry};
use chatapp::auth::tokens;
use chatapp::db::TenantTx;
use chatapp::error::ErrorBody;
use chatapp::ids::AgentId;
use chatapp::repo::widget_configs::{self as repo, WidgetAdminConfig, WidgetValues};
use chatapp::routes;
use chatapp::sealed::SealingKey;
use chatapp::tenant::{Access, Resource};
use chatapp::web::{CompanyParam, IdPath, JsonBody, RequestMeta, Tenant};
use chatapp::{domain, ApiError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

const MAX_TITLE: usize = 100;
const MAX_SUBTITLE: usize = 200;
const MAX_URL: usize = 500;
const MAX_WELCOME: usize = 2000;
const MAX_PLACEHOLDER: usize = 200;
const MAX_CSS: usize = 10_000;
const MAX_DOMAINS: usize = 50;
/// The longest `auto_open_delay`, in milliseconds (ten minutes).
const MAX_AUTO_OPEN_DELAY: i64 = 600_000;

/// What this function may do on AWS: nothing (template.yaml gives it no policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

pub fn routes() -> OpenApiRouter<Core> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(get_widget, update_widget_draft, reset_widget))
        .routes(routes!(publish_widget))
        .routes(routes!(rotate_identity_secret))
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum WidgetTheme {
    Light,
    Dark,
    Auto,
}

impl WidgetTheme {
    fn as_str(self) -> &'static str {
        match self {
            WidgetTheme::Light => "light",
            WidgetTheme::Dark => "dark",
            WidgetTheme::Auto => "auto",
        }
    }
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum WidgetPosition {
    BottomRight,
    BottomLeft,
}

impl WidgetPosition {
    fn as_str(self) -> &'static str {
        match self {
            WidgetPosition::BottomRight => "bottom-right",
            WidgetPosition::BottomLeft => "bottom-left",
        }
    }
}

/// Changes to the widget's draft; absent fields are kept, `null` clears the optional texts.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct WidgetDraftBody {
    theme: Option<WidgetTheme>,
    position: Option<WidgetPosition>,
    /// `#rrggbb`.
    primary_color: Option<String>,
    /// At most 100 characters.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    title: Option<Option<String>>,
    /// At most 200 characters.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    subtitle: Option<Option<String>>,
    /// An https URL of at most 500 characters.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    avatar_url: Option<Option<String>>,
    /// An https URL of at most 500 characters.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    logo_url: Option<Option<String>>,
    show_branding: Option<bool>,
    auto_open: Option<bool>,
    /// Milliseconds, 0 to 600000.
    #[schema(minimum = 0, maximum = 600000)]
    auto_open_delay: Option<i64>,
    /// At most 2000 characters.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    welcome_message: Option<Option<String>>,
    /// At most 200 characters.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    placeholder_text: Option<Option<String>>,
    enable_file_upload: Option<bool>,
    enable_emoji: Option<bool>,
    /// At most 10000 characters.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    custom_css: Option<Option<String>>,
    /// At most 50 hostnames (`example.com`, which admits its subdomains too) or wildcards
    /// (`*.example.com`); `[]` admits any site.
    allowed_domains: Option<Vec<String>>,
    /// Refuse sessions without a verified identity (needs an identity secret).
    require_identity: Option<bool>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

impl WidgetDraftBody {
    /// Every field checked (400 naming the first bad one) and normalised.
    fn validated(mut self) -> Result<Self, ApiError> {
        if let Some(c) = self.primary_color.take() {
            self.primary_color = Some(domain::color("primary_color", c.trim())?);
        }
        self.title = text("title", self.title, MAX_TITLE)?;
        self.subtitle = text("subtitle", self.subtitle, MAX_SUBTITLE)?;
        self.avatar_url = https_url("avatar_url", self.avatar_url)?;
        self.logo_url = https_url("logo_url", self.logo_url)?;
        if self.auto_open_delay.is_some_and(|d| !(0..=MAX_AUTO_OPEN_DELAY).contains(&d)) {
            return Err(ApiError::validation(format!(
                "auto_open_delay must be between 0 and {MAX_AUTO_OPEN_DELAY} (milliseconds)"
            )));
        }
        self.welcome_message = text("welcome_message", self.welcome_message, MAX_WELCOME)?;
        self.placeholder_text = text("placeholder_text", self.placeholder_text, MAX_PLACEHOLDER)?;
        self.custom_css = text("custom_css", self.custom_css, MAX_CSS)?;
        if let Some(list) = self.allowed_domains.take() {
            self.allowed_domains = Some(domains(list)?);
        }
        Ok(self)
    }

    /// The changes applied to `v` (checked by [`validated`](Self::validated)).
    fn apply(self, v: &mut WidgetValues) {
        if let Some(t) = self.theme {
            v.theme = t.as_str().to_string();
        }
        if let Some(p) = self.position {
            v.position = p.as_str().to_string();
        }
        if let Some(c) = self.primary_color {
            v.primary_color = c;
        }
        if let Some(t) = self.title {
            v.title = t;
        }
        if let Some(t) = self.subtitle {
            v.subtitle = t;
        }
        if let Some(u) = self.avatar_url {
            v.avatar_url = u;
        }
        if let Some(u) = self.logo_url {
            v.logo_url = u;
        }
        if let Some(b) = self.show_branding {
            v.show_branding = b;
        }
        if let Some(b) = self.auto_open {
            v.auto_open = b;
        }
        if let Some(d) = self.auto_open_delay.and_then(|d| i32::try_from(d).ok()) {
            v.auto_open_delay = d;
        }
        if let Some(t) = self.welcome_message {
            v.welcome_message = t;
        }
        if let Some(t) = self.placeholder_text {
            v.placeholder_text = t;
        }
        if let Some(b) = self.enable_file_upload {
            v.enable_file_upload = b;
        }
        if let Some(b) = self.enable_emoji {
            v.enable_emoji = b;
        }
        if let Some(t) = self.custom_css {
            v.custom_css = t;
        }
        if let Some(d) = self.allowed_domains {
            v.allowed_domains = d;
        }
        if let Some(b) = self.require_identity {
            v.require_identity = b;
        }
    }
}

/// A new identity secret, shown only now.
#[derive(Serialize, ToSchema)]
struct IdentitySecretShown {
    widget: WidgetAdminConfig,
    /// The secret the site signs its visitors' ids with. Shown only in this response; a new
    /// one replaces it (sessions signed with the old one are then refused).
    identity_secret: String,
    /// How the site uses it.
    usage: String,
}

/// Trimmed text of 1..=`max` characters; `null` (clear) and absent pass.
fn text(field: &str, value: Option<Option<String>>, max: usize) -> Result<Option<Option<String>>, ApiError> {
    match value {
        Some(Some(s)) => Ok(Some(Some(domain::text(field, &s, max)?))),
        other => Ok(other),
    }
}

/// An absolute https URL of at most 500 characters; `null` (clear) and absent pass.
fn https_url(field: &str, value: Option<Option<String>>) -> Result<Option<Option<String>>, ApiError> {
    let raw = match value {
        Some(Some(raw)) => raw,
        other => return Ok(other),
    };
    let s = domain::text(field, &raw, MAX_URL)?;
    if !url::Url::parse(&s).is_ok_and(|u| u.scheme() == "https" && u.has_host()) {
        return Err(ApiError::validation(format!("{field} must be an absolute https URL")));
    }
    Ok(Some(Some(s)))
}

/// At most 50 hostnames or `*.` wildcards of one, lower-cased, each kept once.
fn domains(list: Vec<String>) -> Result<Vec<String>, ApiError> {
    if list.len() > MAX_DOMAINS {
        return Err(ApiError::validation(format!("allowed_domains must have at most {MAX_DOMAINS} entries")));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let d = raw.trim().to_ascii_lowercase();
        if !is_hostname(d.strip_prefix("*.").unwrap_or(&d)) {
            return Err(ApiError::validation(format!(
                "allowed_domains[{i}] must be a hostname (example.com) or a wildcard (*.example.com), \
                 without scheme, port or path"
            )));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Dot-separated labels of 1-63 letters, digits and inner hyphens, at most 253 characters.
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

async fn require_agent(tx: &TenantTx, company: Uuid, agent: Uuid) -> Result<(), ApiError> {
    chatapp::repo::chat::agent(tx, company, agent).await?.map(|_| ()).ok_or(ApiError::NotFound)
}

/// The audit row of a change: the configuration before and after (it holds no secret).
fn audit_entry<'a>(action: &'a str, before: &WidgetAdminConfig, after: &WidgetAdminConfig) -> AuditEntry<'a> {
    AuditEntry {
        action,
        resource_type: "widget_config",
        resource_id: after.id,
        before: serde_json::to_value(before).ok(),
        after: serde_json::to_value(after).ok(),
    }
}

/// The agent's widget: what it shows now, the unpublished draft, and the identity settings
/// (whether a secret exists, never the secret).
#[utoipa::path(get, path = "/admin/agents/{id}/widget", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), CompanyParam),
    responses((status = 200, description = "The widget's configuration", body = WidgetAdminConfig),
        (status = 404, description = "No such agent in the company", body = ErrorBody)))]
async fn get_widget(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<AgentId>,
) -> Result<Json<WidgetAdminConfig>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let agent = id.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let found = async {
        require_agent(&tx, company, agent).await?;
        Ok::<_, ApiError>(repo::get(&tx, company, agent).await?.unwrap_or_else(|| WidgetAdminConfig::unset(agent)))
    }
    .await;
    Ok(Json(tx.finish(found).await?))
}

/// Change the widget's draft; visitors keep seeing the published values until it is published.
#[utoipa::path(put, path = "/admin/agents/{id}/widget", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), CompanyParam), request_body = WidgetDraftBody,
    responses((status = 200, description = "The configuration with its new draft", body = WidgetAdminConfig),
        (status = 404, description = "No such agent in the company", body = ErrorBody)))]
async fn update_widget_draft(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<AgentId>,
    JsonBody(body): JsonBody<WidgetDraftBody>,
) -> Result<Json<WidgetAdminConfig>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let agent = id.as_uuid();
    let changes = body.validated()?;
    let tx = deps.db.begin(&ctx).await?;
    let updated = async {
        require_agent(&tx, company, agent).await?;
        let before = repo::ensure(&tx, company, agent).await?;
        let mut draft = before.draft.clone().unwrap_or_else(|| before.published.clone());
        changes.apply(&mut draft);
        let after = repo::set_draft(&tx, company, agent, &draft).await?;
        audit::record(&tx, audit_entry("widget.draft_update", &before, &after), &meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(updated).await?))
}

/// Delete the widget's configuration: visitors see the default widget at once (any origin, no
/// identity required), the draft is discarded and the identity secret destroyed (a new one must
/// be generated to verify identities again).
#[utoipa::path(delete, path = "/admin/agents/{id}/widget", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), CompanyParam),
    responses((status = 200, description = "The configuration now: the defaults", body = WidgetAdminConfig),
        (status = 404, description = "No such agent in the company", body = ErrorBody)))]
async fn reset_widget(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<AgentId>,
) -> Result<Json<WidgetAdminConfig>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let agent = id.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let reset = async {
        require_agent(&tx, company, agent).await?;
        let after = WidgetAdminConfig::unset(agent);
        // Nothing stored, nothing to delete: no change, no audit row.
        if let Some(before) = repo::lock(&tx, company, agent).await? {
            repo::delete(&tx, company, agent).await?;
            let mut entry = audit_entry("widget.delete", &before, &after);
            entry.resource_id = before.id;
            entry.after = None;
            audit::record(&tx, entry, &meta).await?;
        }
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(reset).await?))
}

/// Publish the draft: the widget shows it from now on, and the draft is cleared.
#[utoipa::path(post, path = "/admin/agents/{id}/widget/publish", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), CompanyParam),
    responses((status = 200, description = "The configuration as now published", body = WidgetAdminConfig),
        (status = 404, description = "No such agent in the company", body = ErrorBody),
        (status = 409, description = "No draft to publish, or identities required without an identity secret",
            body = ErrorBody)))]
async fn publish_widget(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<AgentId>,
) -> Result<Json<WidgetAdminConfig>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let agent = id.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let published = async {
        require_agent(&tx, company, agent).await?;
        let nothing = || ApiError::conflict("nothing_to_publish", "the widget has no unpublished changes");
        let before = repo::lock(&tx, company, agent).await?.ok_or_else(nothing)?;
        let draft = before.draft.clone().ok_or_else(nothing)?;
        if draft.require_identity && !before.has_identity_secret {
            return Err(ApiError::conflict(
                "identity_secret_missing",
                "generate an identity secret (POST /admin/agents/{id}/widget/identity-secret) before requiring \
                 verified identities",
            ));
        }
        let after = repo::publish(&tx, company, agent, &draft).await?;
        audit::record(&tx, audit_entry("widget.publish", &before, &after), &meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(published).await?))
}

/// A new identity secret for verifying visitors' identities, shown only in this response; it
/// replaces the previous one at once.
#[utoipa::path(post, path = "/admin/agents/{id}/widget/identity-secret", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), CompanyParam),
    responses((status = 200, description = "The new secret, shown only now", body = IdentitySecretShown),
        (status = 404, description = "No such agent in the company", body = ErrorBody)))]
async fn rotate_identity_secret(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<AgentId>,
) -> Result<Json<IdentitySecretShown>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let agent = id.as_uuid();
    let secret = tokens::random_secret();
    let key = SealingKey::new(deps.cfg.secrets_key.expose());
    let tx = deps.db.begin(&ctx).await?;
    let rotated = async {
        require_agent(&tx, company, agent).await?;
        let before = repo::ensure(&tx, company, agent).await?;
        let row = before.id.ok_or_else(|| ApiError::internal("a stored widget configuration without an id"))?;
        // Bound to the company and this row: copied elsewhere, it does not open.
        let sealed = key.seal(company, row, secret.as_bytes()).map_err(ApiError::internal)?;
        let after = repo::set_identity_secret(&tx, company, row, &sealed).await?;
        audit::record(&tx, audit_entry("widget.identity_secret_rotate", &before, &after), &meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    let widget = tx.finish(rotated).await?;
    let usage = "Keep it on your server. When a signed-in visitor opens the chat, send their id as `identifier` and \
                 `identity_hash` = lowercase hex HMAC-SHA256(identity_secret, identifier) with \
                 POST /widget/agents/{agent_id}/sessions.";
    Ok(Json(IdentitySecretShown { widget, identity_secret: secret, usage: usage.to_string() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hostnames_and_wildcards() {
        assert_eq!(
            domains(vec![" Example.COM ".into(), "*.shop.test".into(), "example.com".into(), "localhost".into()])
                .unwrap(),
            ["example.com", "*.shop.test", "localhost"]
        );
        for bad in ["", "https://example.com", "example.com/", "example.com:443", "-a.com", "a..com", "*", "a b.com"] {
            assert!(domains(vec![bad.into()]).is_err(), "{bad}");
        }
        assert!(domains(vec!["a.com".into(); 51]).is_err());
    }

    #[test]
    fn bodies_name_their_bad_field() {
        let e = chatapp::web::from_value::<WidgetDraftBody>("", json!({"theme": "purple"})).err().unwrap().to_string();
        assert!(e.contains("theme"), "{e}");
        let e = chatapp::web::from_value::<WidgetDraftBody>("", json!({"colour": "#fff"})).err().unwrap().to_string();
        assert!(e.contains("colour"), "{e}");
        let body =
            chatapp::web::from_value::<WidgetDraftBody>("", json!({"title": null, "position": "bottom-left"})).unwrap();
        assert!(matches!(body.title, Some(None)));
        assert!(body.subtitle.is_none());
    }
}
