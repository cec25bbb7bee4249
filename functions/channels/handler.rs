//! `channels` function: company admins connect their agents to messaging channels.
//!
//! POST   /admin/channels                        create (credentials checked, sealed, never returned)
//! GET    /admin/channels                        list (filter by agent and channel)
//! GET    /admin/channels/{id}                   one
//! PATCH  /admin/channels/{id}                   rename, move to another agent, settings, new credentials
//! DELETE /admin/channels/{id}                   delete
//! POST   /admin/channels/{id}/disable | enable  stop / resume taking webhooks
//! POST   /admin/channels/{id}/rotate-secret     a new platform-generated secret, shown once
//! POST   /admin/channels/{id}/check             the provider's cheapest authenticated read
//!
//! Credentials are checked against the channel's type on write (a wrong field answers 400
//! naming it), sealed with AES-256-GCM bound to the row and company, and never leave the
//! database in clear except to call the provider. The secret the platform generates (Meta's
//! verify token, Telegram's secret token) and the webhook URL are shown once, on create and on
//! rotation. The plan's features name the channels a company may use (402 otherwise).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::Core;
use chatapp::audit::{self, AuditEntry};
use chatapp::auth::tokens;
use chatapp::channels::{meta, slack, teams, telegram, ChannelKind, SendError};
use chatapp::db::TenantTx;
use chatapp::error::ErrorBody;
use chatapp::ids::ChannelConfigId;
use chatapp::repo::channels::{self as repo, ChannelConfig, ConfigChange};
use chatapp::routes;
use chatapp::sealed::SealingKey;
use chatapp::tenant::{Access, Resource};
use chatapp::web::{CompanyParam, IdPath, JsonBody, Page, PageParams, Paged, Query, RequestMeta, Tenant};
use chatapp::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

/// What this function may do on AWS: nothing (template.yaml gives it no policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

pub fn routes() -> OpenApiRouter<Core> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(create, list))
        .routes(routes!(get, update, delete))
        .routes(routes!(disable))
        .routes(routes!(enable))
        .routes(routes!(rotate_secret))
        .routes(routes!(check))
}

/// Per-channel settings.
#[derive(Deserialize, Serialize, ToSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
struct ChannelSettings {
    /// Sent as the first message of every conversation the channel opens, before the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    greeting: Option<String>,
    /// WhatsApp: the approved template sent instead of a reply when the customer's last message
    /// is more than 24 hours old (without one, such a reply is recorded as failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window_template: Option<WindowTemplate>,
    /// How the agent's business hours apply on this channel (absent: as the agent has them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    business_hours: Option<ChannelHours>,
}

/// A channel's business-hours behaviour.
#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
struct ChannelHours {
    /// `agent` (the agent's hours) or `always_open` (this channel answers at every hour, e.g. a
    /// line staffed around the clock).
    mode: HoursMode,
    /// With `agent`: sent outside the hours instead of the agent's outside-hours message
    /// (1-1000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outside_message: Option<String>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum HoursMode {
    Agent,
    AlwaysOpen,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
struct WindowTemplate {
    name: String,
    /// Language code of the template, e.g. `en_US`.
    language: String,
}

impl ChannelSettings {
    fn check(&self, kind: ChannelKind) -> Result<(), ApiError> {
        if let Some(g) = &self.greeting {
            if g.trim().is_empty() || g.chars().count() > 1000 {
                return Err(ApiError::validation("settings.greeting: must be 1-1000 characters"));
            }
        }
        if let Some(h) = &self.business_hours {
            if let Some(m) = &h.outside_message {
                if h.mode == HoursMode::AlwaysOpen {
                    return Err(ApiError::validation(
                        "settings.business_hours.outside_message: an always-open channel has no outside hours",
                    ));
                }
                if m.trim().is_empty() || m.chars().count() > 1000 {
                    return Err(ApiError::validation(
                        "settings.business_hours.outside_message: must be 1-1000 characters",
                    ));
                }
            }
        }
        if let Some(t) = &self.window_template {
            if kind != ChannelKind::Whatsapp {
                return Err(ApiError::validation("settings.window_template: only WhatsApp has message templates"));
            }
            let ok = |s: &str| !s.trim().is_empty() && s.len() <= 100 && !s.chars().any(char::is_control);
            if !ok(&t.name) || !ok(&t.language) {
                return Err(ApiError::validation(
                    "settings.window_template: name and language must be 1-100 characters",
                ));
            }
        }
        Ok(())
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateChannelBody {
    /// The agent that answers on this channel.
    agent_id: Uuid,
    channel: ChannelKind,
    name: Option<String>,
    /// The provider's credentials; fields depend on the channel. WhatsApp: `access_token`,
    /// `app_secret`, `phone_number_id`. Messenger / Instagram: `access_token`, `app_secret`,
    /// `page_id`. Telegram: `bot_token`. Slack: `bot_token`, `signing_secret`, `bot_user_id`.
    /// Teams: `app_id`, `app_password`, `tenant_id`. Email: `address`, `topic_arn`.
    #[schema(value_type = Object)]
    credentials: Value,
    #[serde(default)]
    settings: Option<ChannelSettings>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct UpdateChannelBody {
    name: Option<String>,
    /// Move the channel to another agent of the company.
    agent_id: Option<Uuid>,
    settings: Option<ChannelSettings>,
    /// New credentials (all fields of the channel's type): a rotation. The platform-generated
    /// secret is kept.
    #[schema(value_type = Option<Object>)]
    credentials: Option<Value>,
}

/// A channel just created or whose secret was rotated: what to give the provider, shown once.
#[derive(Serialize, ToSchema)]
struct ChannelSecretShown {
    channel: ChannelConfig,
    /// Where the provider must send its webhooks.
    webhook_url: String,
    /// Meta channels: the verify token to enter with the callback URL. Shown only now.
    #[serde(skip_serializing_if = "Option::is_none")]
    verify_token: Option<String>,
    /// Telegram: the `secret_token` the platform registers with `setWebhook` (run the check
    /// action). Shown only now.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_token: Option<String>,
    /// What to do next.
    next_step: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ChannelListQuery {
    /// Only this agent's channels.
    #[param(value_type = Option<Uuid>)]
    agent_id: Option<String>,
    /// Only this channel (`whatsapp`, `messenger`, `instagram`, `telegram`, `slack`, `teams`, `email`).
    channel: Option<String>,
}

/// The outcome of a check action.
#[derive(Serialize, ToSchema)]
struct CheckResult {
    ok: bool,
    channel: ChannelConfig,
    /// What the provider answered (bot name, phone number, ...).
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn name_of(name: Option<&str>) -> Result<Option<String>, ApiError> {
    chatapp::domain::optional_text("name", name, 255)
}

/// Checks the admin's credentials for `kind`; returns them to seal (with the platform's secret
/// slot left for the caller) and the hint admins may see.
fn check_credentials(kind: ChannelKind, value: &Value) -> Result<(Value, Value), ApiError> {
    if !value.is_object() {
        return Err(ApiError::validation("credentials: must be an object"));
    }
    let generated = match kind {
        ChannelKind::Whatsapp | ChannelKind::Messenger | ChannelKind::Instagram => Some("verify_token"),
        ChannelKind::Telegram => Some("secret_token"),
        _ => None,
    };
    if let Some(field) = generated {
        if value.get(field).is_some() {
            return Err(ApiError::validation(format!("credentials.{field}: generated by the platform, not given")));
        }
    }
    let bad = |m: String| ApiError::validation(format!("credentials: {m}"));
    let hint = match kind {
        ChannelKind::Whatsapp | ChannelKind::Messenger | ChannelKind::Instagram => {
            let c: meta::Credentials = chatapp::web::from_value("credentials", value.clone())?;
            c.validate(kind).map_err(bad)?;
            json!({"phone_number_id": c.phone_number_id, "page_id": c.page_id})
        }
        ChannelKind::Telegram => {
            let c: telegram::Credentials = chatapp::web::from_value("credentials", value.clone())?;
            c.validate().map_err(bad)?;
            // The bot id is the part of the token before ':' (public; the rest is the secret).
            json!({"bot_id": c.bot_token.expose().split(':').next()})
        }
        ChannelKind::Slack => {
            let c: slack::Credentials = chatapp::web::from_value("credentials", value.clone())?;
            c.validate().map_err(bad)?;
            json!({"bot_user_id": c.bot_user_id})
        }
        ChannelKind::Teams => {
            let c: teams::Credentials = chatapp::web::from_value("credentials", value.clone())?;
            c.validate().map_err(bad)?;
            json!({"app_id": c.app_id, "tenant_id": c.tenant_id})
        }
        ChannelKind::Email => {
            let c: chatapp::channels::email::Credentials = chatapp::web::from_value("credentials", value.clone())?;
            c.validate().map_err(bad)?;
            json!({"address": c.address, "topic_arn": c.topic_arn})
        }
    };
    Ok((value.clone(), hint))
}

/// The platform's secret for `kind`, if it has one: (field, fresh value).
fn fresh_secret(kind: ChannelKind) -> Option<(&'static str, String)> {
    match kind {
        ChannelKind::Whatsapp | ChannelKind::Messenger | ChannelKind::Instagram => {
            Some(("verify_token", tokens::random_secret()))
        }
        ChannelKind::Telegram => Some(("secret_token", tokens::random_secret().replace(['-'], "_"))),
        _ => None,
    }
}

fn shown(cfg: ChannelConfig, url: String, secret: Option<(&'static str, String)>) -> ChannelSecretShown {
    let kind = cfg.channel;
    let (verify_token, secret_token) = match secret {
        Some(("verify_token", v)) => (Some(v), None),
        Some((_, v)) => (None, Some(v)),
        None => (None, None),
    };
    let next_step = match kind {
        ChannelKind::Whatsapp | ChannelKind::Messenger | ChannelKind::Instagram => {
            "In the Meta app's Webhooks settings, enter webhook_url as the callback URL and verify_token as the \
             verify token, and subscribe to messages."
        }
        ChannelKind::Telegram => "Run the check action: it registers webhook_url and secret_token with setWebhook.",
        ChannelKind::Slack => "In the Slack app's Event Subscriptions, enter webhook_url as the request URL.",
        ChannelKind::Teams => "In the Azure Bot's configuration, enter webhook_url as the messaging endpoint.",
        ChannelKind::Email => "Subscribe webhook_url (HTTPS) to the SNS topic of the SES receipt rule.",
    };
    ChannelSecretShown { channel: cfg, webhook_url: url, verify_token, secret_token, next_step: next_step.into() }
}

fn key(deps: &Core) -> SealingKey {
    SealingKey::new(deps.cfg.secrets_key.expose())
}

fn seal(deps: &Core, company: Uuid, id: Uuid, value: &Value) -> Result<Vec<u8>, ApiError> {
    key(deps).seal(company, id, value.to_string().as_bytes()).map_err(ApiError::internal)
}

fn open(deps: &Core, company: Uuid, id: Uuid, sealed: &[u8]) -> Result<Value, ApiError> {
    let plain = key(deps).open(company, id, sealed).map_err(ApiError::internal)?;
    serde_json::from_slice(&plain).map_err(ApiError::internal)
}

fn webhook_url(deps: &Core, kind: ChannelKind, id: Uuid) -> String {
    format!("{}/channels/{}/{id}", deps.cfg.public_api_url, kind.as_str())
}

async fn require_agent(tx: &TenantTx, company: Uuid, agent: Uuid) -> Result<(), ApiError> {
    chatapp::repo::chat::agent(tx, company, agent).await?.map(|_| ()).ok_or(ApiError::NotFound)
}

async fn ensure_plan_allows(tx: &TenantTx, company: Uuid, kind: ChannelKind) -> Result<(), ApiError> {
    match chatapp::repo::plans::features(tx, company).await? {
        Some(features) if !features.iter().any(|f| f == kind.as_str()) => Err(ApiError::PaymentRequired {
            code: "channel_not_in_plan",
            message: format!("the plan does not include the {} channel; upgrade to connect it", kind.as_str()),
        }),
        _ => Ok(()),
    }
}

fn audit_entry<'a>(
    action: &'a str,
    id: Uuid,
    before: Option<&ChannelConfig>,
    after: Option<&ChannelConfig>,
) -> AuditEntry<'a> {
    AuditEntry::change(action, "channel_config", id, before, after)
}

/// Connect an agent to a channel.
#[utoipa::path(post, path = "/admin/channels", tag = "channels", security(("bearer" = [])),
    params(CompanyParam), request_body = CreateChannelBody,
    responses(
        (status = 201, description = "Created; the webhook URL and generated secret are shown only now", body = ChannelSecretShown),
        (status = 402, description = "The plan does not include this channel", body = ErrorBody),
        (status = 404, description = "No such agent in the company", body = ErrorBody)))]
async fn create(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(body): JsonBody<CreateChannelBody>,
) -> Result<(StatusCode, Json<ChannelSecretShown>), ApiError> {
    ctx.authorize(Resource::Channels, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let kind = body.channel;
    let name = name_of(body.name.as_deref())?;
    let settings = body.settings.unwrap_or_default();
    settings.check(kind)?;
    let (mut secrets, hint) = check_credentials(kind, &body.credentials)?;
    let secret = fresh_secret(kind);
    if let Some((field, value)) = &secret {
        secrets[*field] = json!(value);
    }
    let id = Uuid::new_v4();
    let sealed = seal(&deps, company, id, &secrets)?;
    let url = webhook_url(&deps, kind, id);
    let settings = serde_json::to_value(&settings).map_err(ApiError::internal)?;
    let tx = deps.db.begin(&ctx).await?;
    let created = async {
        require_agent(&tx, company, body.agent_id).await?;
        ensure_plan_allows(&tx, company, kind).await?;
        let cfg = repo::insert(
            &tx,
            &repo::NewConfig {
                id,
                company_id: company,
                agent_id: body.agent_id,
                channel: kind,
                name: name.as_deref(),
                sealed: &sealed,
                hint: &hint,
                webhook_url: &url,
                settings: &settings,
            },
        )
        .await?;
        audit::record(&tx, audit_entry("channel.create", id, None, Some(&cfg)), &meta).await?;
        Ok::<_, ApiError>(cfg)
    }
    .await;
    let cfg = tx.finish(created).await?;
    Ok((StatusCode::CREATED, Json(shown(cfg, url, secret))))
}

/// List the company's channel configurations, newest first.
#[utoipa::path(get, path = "/admin/channels", tag = "channels", security(("bearer" = [])),
    params(ChannelListQuery, PageParams, CompanyParam),
    responses((status = 200, description = "One page of channel configurations", body = Paged<ChannelConfig>)))]
async fn list(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    page: Page,
    Query(q): Query<ChannelListQuery>,
) -> Result<Json<Paged<ChannelConfig>>, ApiError> {
    ctx.authorize(Resource::Channels, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let agent = match q.agent_id.as_deref() {
        Some(a) => Some(Uuid::parse_str(a).map_err(|_| ApiError::validation("agent_id must be a UUID"))?),
        None => None,
    };
    let channel = match q.channel.as_deref() {
        Some(c) => Some(ChannelKind::parse(c).ok_or_else(|| {
            ApiError::validation("channel must be whatsapp, messenger, instagram, telegram, slack, teams or email")
        })?),
        None => None,
    };
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::list(&tx, company, agent, channel, page.limit, page.offset).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items, page, total)))
}

/// One channel configuration.
#[utoipa::path(get, path = "/admin/channels/{id}", tag = "channels", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Channel configuration id"), CompanyParam),
    responses((status = 200, description = "The configuration", body = ChannelConfig),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn get(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ChannelConfigId>,
) -> Result<Json<ChannelConfig>, ApiError> {
    ctx.authorize(Resource::Channels, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let found = repo::get(&tx, company, id.as_uuid()).await.map_err(ApiError::from);
    tx.finish(found).await?.map(Json).ok_or(ApiError::NotFound)
}

/// Change a channel configuration; new credentials replace the old ones (a rotation).
#[utoipa::path(patch, path = "/admin/channels/{id}", tag = "channels", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Channel configuration id"), CompanyParam),
    request_body = UpdateChannelBody,
    responses((status = 200, description = "The configuration", body = ChannelConfig),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn update(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<ChannelConfigId>,
    JsonBody(body): JsonBody<UpdateChannelBody>,
) -> Result<Json<ChannelConfig>, ApiError> {
    ctx.authorize(Resource::Channels, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let id = id.as_uuid();
    let name = name_of(body.name.as_deref())?;
    let tx = deps.db.begin(&ctx).await?;
    let updated = async {
        let before = repo::get(&tx, company, id).await?.ok_or(ApiError::NotFound)?;
        let kind = before.channel;
        let settings = match &body.settings {
            Some(s) => {
                s.check(kind)?;
                Some(serde_json::to_value(s).map_err(ApiError::internal)?)
            }
            None => None,
        };
        if let Some(agent) = body.agent_id {
            require_agent(&tx, company, agent).await?;
        }
        let credentials = match &body.credentials {
            Some(value) => {
                let (mut secrets, hint) = check_credentials(kind, value)?;
                // The platform's secret stays: the provider side keeps working.
                if let Some((field, _)) = fresh_secret(kind) {
                    let old = repo::sealed(&tx, company, id).await?.ok_or(ApiError::NotFound)?;
                    secrets[field] = open(&deps, company, id, &old)?.get(field).cloned().unwrap_or(Value::Null);
                }
                Some((seal(&deps, company, id, &secrets)?, hint))
            }
            None => None,
        };
        let change = ConfigChange {
            name: name.as_deref(),
            agent_id: body.agent_id,
            settings: settings.as_ref(),
            credentials: credentials.as_ref().map(|(s, h)| (s.as_slice(), h)),
            ..Default::default()
        };
        let after = repo::update(&tx, company, id, &change).await?;
        let action = if credentials.is_some() { "channel.credentials_rotate" } else { "channel.update" };
        audit::record(&tx, audit_entry(action, id, Some(&before), Some(&after)), &meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(updated).await?))
}

/// Delete a channel configuration (its conversations stay; replies in them can no longer be
/// delivered).
#[utoipa::path(delete, path = "/admin/channels/{id}", tag = "channels", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Channel configuration id"), CompanyParam),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found", body = ErrorBody)))]
async fn delete(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<ChannelConfigId>,
) -> Result<StatusCode, ApiError> {
    ctx.authorize(Resource::Channels, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let id = id.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let deleted = async {
        let before = repo::get(&tx, company, id).await?.ok_or(ApiError::NotFound)?;
        repo::delete(&tx, company, id).await?;
        audit::record(&tx, audit_entry("channel.delete", id, Some(&before), None), &meta).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    tx.finish(deleted).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_active(
    deps: &Core,
    ctx: &chatapp::TenantCtx,
    meta: &RequestMeta,
    id: Uuid,
    active: bool,
) -> Result<ChannelConfig, ApiError> {
    ctx.authorize(Resource::Channels, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(ctx).await?;
    let changed = async {
        let before = repo::get(&tx, company, id).await?.ok_or(ApiError::NotFound)?;
        if active {
            ensure_plan_allows(&tx, company, before.channel).await?;
        }
        let after =
            repo::update(&tx, company, id, &ConfigChange { is_active: Some(active), ..Default::default() }).await?;
        let action = if active { "channel.enable" } else { "channel.disable" };
        audit::record(&tx, audit_entry(action, id, Some(&before), Some(&after)), meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    tx.finish(changed).await
}

/// Stop taking this channel's webhooks (they answer 404; nothing is stored).
#[utoipa::path(post, path = "/admin/channels/{id}/disable", tag = "channels", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Channel configuration id"), CompanyParam),
    responses((status = 200, description = "The configuration", body = ChannelConfig),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn disable(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<ChannelConfigId>,
) -> Result<Json<ChannelConfig>, ApiError> {
    set_active(&deps, &ctx, &meta, id.as_uuid(), false).await.map(Json)
}

/// Take this channel's webhooks again (within the plan).
#[utoipa::path(post, path = "/admin/channels/{id}/enable", tag = "channels", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Channel configuration id"), CompanyParam),
    responses((status = 200, description = "The configuration", body = ChannelConfig),
        (status = 402, description = "The plan does not include this channel", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn enable(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<ChannelConfigId>,
) -> Result<Json<ChannelConfig>, ApiError> {
    set_active(&deps, &ctx, &meta, id.as_uuid(), true).await.map(Json)
}

/// A new platform-generated secret (Meta's verify token, Telegram's secret token), shown once.
#[utoipa::path(post, path = "/admin/channels/{id}/rotate-secret", tag = "channels", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Channel configuration id"), CompanyParam),
    responses((status = 200, description = "The new secret, shown only now", body = ChannelSecretShown),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "This channel has no platform-generated secret", body = ErrorBody)))]
async fn rotate_secret(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<ChannelConfigId>,
) -> Result<Json<ChannelSecretShown>, ApiError> {
    ctx.authorize(Resource::Channels, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let id = id.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let rotated = async {
        let before = repo::get(&tx, company, id).await?.ok_or(ApiError::NotFound)?;
        let Some((field, value)) = fresh_secret(before.channel) else {
            return Err(ApiError::conflict(
                "nothing_to_rotate",
                "this channel's secrets are the provider's: PATCH new credentials",
            ));
        };
        let old = repo::sealed(&tx, company, id).await?.ok_or(ApiError::NotFound)?;
        let mut secrets = open(&deps, company, id, &old)?;
        secrets[field] = json!(value);
        let sealed = seal(&deps, company, id, &secrets)?;
        let hint = before.credentials_hint.clone();
        let change = ConfigChange { credentials: Some((&sealed, &hint)), secret_rotated: true, ..Default::default() };
        let after = repo::update(&tx, company, id, &change).await?;
        audit::record(&tx, audit_entry("channel.secret_rotate", id, Some(&before), Some(&after)), &meta).await?;
        Ok::<_, ApiError>((after, (field, value)))
    }
    .await;
    let (cfg, secret) = tx.finish(rotated).await?;
    let url = webhook_url(&deps, cfg.channel, id);
    Ok(Json(shown(cfg, url, Some(secret))))
}

/// Prove the credentials work with the provider's cheapest authenticated read (WhatsApp: the
/// phone number; Messenger / Instagram: `/me`; Telegram: `getMe`, then `setWebhook` with the
/// webhook URL and secret; Slack: `auth.test`; Teams: a Bot Framework token).
#[utoipa::path(post, path = "/admin/channels/{id}/check", tag = "channels", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Channel configuration id"), CompanyParam),
    responses((status = 200, description = "Whether the provider accepted the credentials", body = CheckResult),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Email has no provider read to check", body = ErrorBody)))]
async fn check(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<ChannelConfigId>,
) -> Result<Json<CheckResult>, ApiError> {
    ctx.authorize(Resource::Channels, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let id = id.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let loaded = async {
        let cfg = repo::get(&tx, company, id).await?.ok_or(ApiError::NotFound)?;
        let sealed = repo::sealed(&tx, company, id).await?.ok_or(ApiError::NotFound)?;
        Ok::<_, ApiError>((cfg, sealed))
    }
    .await;
    let (cfg, sealed) = tx.finish(loaded).await?;
    let secrets = open(&deps, company, id, &sealed)?;
    let (http, ep) = (chatapp::channels::http(), &deps.cfg.channel_endpoints);
    let kind = cfg.channel;
    let answer: Result<Value, SendError> = match kind {
        ChannelKind::Whatsapp | ChannelKind::Messenger | ChannelKind::Instagram => {
            let c: meta::Credentials = serde_json::from_value(secrets).map_err(ApiError::internal)?;
            meta::check(http, ep, kind, &c).await
        }
        ChannelKind::Telegram => {
            let c: telegram::Credentials = serde_json::from_value(secrets).map_err(ApiError::internal)?;
            match telegram::check(http, ep, &c).await {
                Ok(me) => telegram::set_webhook(http, ep, &c, &webhook_url(&deps, kind, id)).await.map(|_| me),
                Err(e) => Err(e),
            }
        }
        ChannelKind::Slack => {
            let c: slack::Credentials = serde_json::from_value(secrets).map_err(ApiError::internal)?;
            slack::check(http, ep, &c).await
        }
        ChannelKind::Teams => {
            let c: teams::Credentials = serde_json::from_value(secrets).map_err(ApiError::internal)?;
            teams::check(http, ep, &c).await
        }
        ChannelKind::Email => {
            return Err(ApiError::conflict(
                "check_not_available",
                "email arrives through SES and SNS: the subscription confirmation is the check",
            ))
        }
    };
    let error = answer.as_ref().err().map(ToString::to_string);
    let tx = deps.db.begin(&ctx).await?;
    let recorded = async {
        let before = repo::get(&tx, company, id).await?.ok_or(ApiError::NotFound)?;
        let mut after = repo::record_check(&tx, company, id, error.as_deref()).await?;
        // What the provider told us that the webhook needs: Telegram's bot name (group mentions),
        // Slack's bot user (its own messages are never answered).
        let learned = match (&answer, kind) {
            (Ok(me), ChannelKind::Telegram) => me.get("username").map(|u| ("bot_username", u.clone())),
            (Ok(me), ChannelKind::Slack) => me.get("user_id").map(|u| ("bot_user_id", u.clone())),
            _ => None,
        };
        if let Some((field, value)) = learned {
            let mut hint = after.credentials_hint.clone();
            hint[field] = value;
            repo::set_hint(&tx, company, id, &hint).await?;
            after.credentials_hint = hint;
        }
        audit::record(&tx, audit_entry("channel.check", id, Some(&before), Some(&after)), &meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    let channel = tx.finish(recorded).await?;
    Ok(Json(CheckResult { ok: error.is_none(), channel, provider: answer.ok(), error }))
}
