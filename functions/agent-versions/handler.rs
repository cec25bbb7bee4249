//! `agent-versions` function: an agent's versions (migration 0024). The version each change
//! writes is recorded by `agents/versions.rs`, beside the agent routes that write them.
//!
//! GET  /admin/agents/{id}/versions                     the history, newest first
//! GET  /admin/agents/{id}/versions/{version}           one, with its whole configuration
//! GET  /admin/agents/{id}/versions/diff?from=&to=      what differs between two
//! POST /admin/agents/{id}/versions/{version}/rollback  make that configuration the draft again
//! POST /admin/agents/{id}/publish                      serve the draft to customers
//!
//! Every create, update, clone and rollback writes a version: the whole configuration (the
//! fields of `chatapp::repo::agents::CONFIG_FIELDS`), the fields that changed, who and when. An
//! update that changes nothing writes none. The agent's row is the draft; customers are served
//! the published version, so an active agent keeps answering with it while the draft is edited.
//! The first activation publishes the draft; later changes go live with `publish` (or
//! `rollback?publish=true`). The knowledge categories are part of a version; widget settings,
//! escalation-rule rows and HTTP actions have their own routes and are not.
//!
//! What a company admin may not see of an agent (the system prompt, its template and the model
//! configuration, unless the package grants them) is left out of the versions they read too.

use axum::extract::State;
use axum::Json;
use chatapp::app::Core;
use chatapp::audit::{self, AuditEntry};
use chatapp::db::TenantTx;
use chatapp::ids::AgentId;
use chatapp::repo::agent_versions::{self as repo, AgentVersion, VersionAction};
use chatapp::repo::agents::{self as agents, Agent, CONFIG_FIELDS, MASTER_FIELDS};
use chatapp::routes;
use chatapp::tenant::{Access, Resource};
use chatapp::web::{CompanyParam, IdPath, Page, PageParams, Paged, Query, RequestMeta, Tenant};
use chatapp::{ApiError, TenantCtx};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::agents::versions::{publish_draft, record};
use crate::agents::{input, view};

/// What this function may do on AWS: nothing (template.yaml gives it no policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

pub fn routes() -> OpenApiRouter<Core> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(list_versions))
        .routes(routes!(diff_versions))
        .routes(routes!(get_version))
        .routes(routes!(rollback))
        .routes(routes!(publish))
}

/// A rollback by someone other than the master admin restores only what they may set: the
/// master's fields (capabilities, the agent's own code, and the system prompt, its template
/// and the model unless the package grants them) keep their current values, and what the
/// restored configuration enables must be something the agent's package still supports (403
/// `capability_missing`).
fn keep_master_fields(
    ctx: &TenantCtx,
    agent: &Agent,
    current: &agents::AgentFields,
    fields: &mut agents::AgentFields,
) -> Result<(), ApiError> {
    if ctx.is_master_admin() {
        return Ok(());
    }
    fields.capabilities = current.capabilities.clone();
    fields.custom_package_url = current.custom_package_url.clone();
    fields.custom_package_hash = current.custom_package_hash.clone();
    if !agent.has_capability(agents::CUSTOM_PROMPT) {
        fields.system_prompt = current.system_prompt.clone();
        fields.prompt_template_id = current.prompt_template_id;
        fields.prompt_variables = current.prompt_variables.clone();
    }
    if !agent.has_capability(agents::CUSTOM_MODEL) {
        fields.llm_config = current.llm_config.clone();
    }
    if agent.package_id.is_none() {
        return Ok(());
    }
    // Only what the rollback newly enables must be supported: a configuration the agent already
    // has stays as it is.
    let before = needed_capabilities(current);
    match needed_capabilities(fields).into_iter().find(|c| !agent.has_capability(c) && !before.contains(c)) {
        None => Ok(()),
        Some(capability) => Err(ApiError::forbidden(
            "capability_missing",
            format!(
                "the version enables what needs the {capability:?} capability, which the agent's package does not have"
            ),
        )),
    }
}

/// The package capabilities what `f` enables needs (the rules of `input::Changes::authorize`).
fn needed_capabilities(f: &agents::AgentFields) -> Vec<&'static str> {
    let non_empty = |v: &Value| v.as_object().is_some_and(|o| !o.is_empty());
    let mut needs = Vec::new();
    if f.rag_enabled || non_empty(&f.rag_config) {
        needs.push("rag");
    }
    if non_empty(&f.tool_config) {
        needs.push("tools");
    }
    for tool in f.enabled_tools.as_array().into_iter().flatten().filter_map(Value::as_str) {
        needs.push(chatapp::chat::tools::capability_for(tool));
    }
    needs
}

/// The configuration fields `ctx` may not see of `agent`.
fn hidden_fields(agent: &Agent, ctx: &TenantCtx) -> Vec<&'static str> {
    if ctx.is_master_admin() {
        return Vec::new();
    }
    MASTER_FIELDS.iter().filter(|(_, capability)| !agent.has_capability(capability)).map(|(f, _)| *f).collect()
}

fn masked(mut v: AgentVersion, hidden: &[&str]) -> AgentVersion {
    if let Some(Value::Object(config)) = v.config.as_mut() {
        for f in hidden {
            config.remove(*f);
        }
    }
    v
}

async fn agent_of(tx: &TenantTx, company: Uuid, id: AgentId) -> Result<Agent, ApiError> {
    agents::get(tx, company, id.as_uuid()).await?.ok_or(ApiError::NotFound)
}

/// The agent's versions, newest first (without their configurations).
#[utoipa::path(get, path = "/admin/agents/{id}/versions", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), PageParams, CompanyParam),
    responses((status = 200, description = "One page of versions", body = Paged<AgentVersion>)))]
async fn list_versions(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<AgentId>,
    page: Page,
) -> Result<Json<Paged<AgentVersion>>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        agent_of(&tx, company, id).await?;
        Ok::<_, ApiError>(repo::list(&tx, company, id.as_uuid(), page).await?)
    }
    .await;
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items, page, total)))
}

/// One version of the agent with its whole configuration.
#[utoipa::path(get, path = "/admin/agents/{id}/versions/{version}", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), ("version" = i32, Path, description = "Version number"),
           CompanyParam),
    responses((status = 200, description = "The version", body = AgentVersion)))]
async fn get_version(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath((id, version)): IdPath<(AgentId, i32)>,
) -> Result<Json<AgentVersion>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let agent = agent_of(&tx, company, id).await?;
        let v = repo::get(&tx, company, id.as_uuid(), version).await?.ok_or(ApiError::NotFound)?;
        Ok::<_, ApiError>(masked(v, &hidden_fields(&agent, &ctx)))
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}

/// The two versions to compare.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DiffQuery {
    /// The older version.
    from: i32,
    /// The newer version.
    to: i32,
}

/// A configuration field that differs between two versions.
#[derive(Serialize, ToSchema)]
struct FieldChange {
    field: String,
    /// Absent when the field is hidden from the caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    after: Option<Value>,
    /// The field is the master admin's: that it changed is shown, its values are not.
    hidden: bool,
}

/// What differs between two versions.
#[derive(Serialize, ToSchema)]
struct VersionDiff {
    from: i32,
    to: i32,
    changes: Vec<FieldChange>,
}

/// The configuration fields that differ between two versions of the agent.
#[utoipa::path(get, path = "/admin/agents/{id}/versions/diff", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), DiffQuery, CompanyParam),
    responses((status = 200, description = "The differing fields, in configuration order", body = VersionDiff)))]
async fn diff_versions(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<AgentId>,
    Query(q): Query<DiffQuery>,
) -> Result<Json<VersionDiff>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let agent = agent_of(&tx, company, id).await?;
        let from = repo::get(&tx, company, id.as_uuid(), q.from).await?.ok_or(ApiError::NotFound)?;
        let to = repo::get(&tx, company, id.as_uuid(), q.to).await?.ok_or(ApiError::NotFound)?;
        Ok::<_, ApiError>((agent, from, to))
    }
    .await;
    let (agent, from, to) = tx.finish(result).await?;
    let hidden = hidden_fields(&agent, &ctx);
    let (a, b) = (from.config.unwrap_or(Value::Null), to.config.unwrap_or(Value::Null));
    let changes = CONFIG_FIELDS
        .iter()
        .filter_map(|f| {
            let (before, after) =
                (a.get(*f).cloned().unwrap_or(Value::Null), b.get(*f).cloned().unwrap_or(Value::Null));
            if before == after {
                return None;
            }
            let hide = hidden.contains(f);
            Some(FieldChange {
                field: f.to_string(),
                before: (!hide).then_some(before),
                after: (!hide).then_some(after),
                hidden: hide,
            })
        })
        .collect();
    Ok(Json(VersionDiff { from: q.from, to: q.to, changes }))
}

/// Whether a rollback also publishes.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RollbackQuery {
    /// Serve the rolled-back configuration to customers at once (default false: it becomes the
    /// draft).
    publish: Option<bool>,
}

/// Make a version's configuration the draft again (written as a new version), and publish it
/// when asked.
#[utoipa::path(post, path = "/admin/agents/{id}/versions/{version}/rollback", tag = "agents",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), ("version" = i32, Path, description = "Version number"),
           RollbackQuery, CompanyParam),
    responses((status = 200, description = "The agent with the version's configuration", body = Agent)))]
async fn rollback(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath((id, version)): IdPath<(AgentId, i32)>,
    Query(q): Query<RollbackQuery>,
    meta: RequestMeta,
) -> Result<Json<Agent>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = agents::lock(&tx, company, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        let target = repo::get(&tx, company, id.as_uuid(), version).await?.ok_or(ApiError::NotFound)?;
        let before_fields = before.fields();
        let before_config = before_fields.to_config();
        let mut fields = before_fields.clone().with_config(target.config.as_ref().unwrap_or(&Value::Null));
        keep_master_fields(&ctx, &before, &before_fields, &mut fields)?;
        input::check_prompt_template(&tx, Some(&before_fields), &fields).await?;
        input::check_model(&tx, Some(&before_fields), &fields).await?;
        let mut after = agents::update(&tx, company, id.as_uuid(), &fields).await?.ok_or(ApiError::NotFound)?;
        let note = format!("rolled back to version {version}");
        record(&tx, &ctx, Some(&before_config), &mut after, VersionAction::Rollback, Some(&note)).await?;
        if q.publish == Some(true) {
            publish_draft(&tx, company, &mut after).await?;
        }
        let (before, after) = (view(before, &ctx), view(after, &ctx));
        audit::record(
            &tx,
            AuditEntry {
                action: "agent.rollback",
                resource_type: "agent",
                resource_id: Some(after.id),
                before: Some(json!({"version": before.version, "published_version": before.published_version})),
                after: Some(json!({"version": after.version, "rolled_back_to": version,
                                   "published_version": after.published_version})),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}

/// Serve the draft to customers: the agent's current version becomes its published one.
#[utoipa::path(post, path = "/admin/agents/{id}/publish", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), CompanyParam),
    responses((status = 200, description = "The agent, its draft published", body = Agent)))]
async fn publish(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<AgentId>,
    meta: RequestMeta,
) -> Result<Json<Agent>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let mut agent = agents::lock(&tx, company, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        if agent.version == 0 {
            // An agent older than versions: its configuration becomes version 1.
            let note = "the configuration before versions existed";
            record(&tx, &ctx, None, &mut agent, VersionAction::Update, Some(note)).await?;
        }
        if !agent.has_unpublished_changes {
            return Ok(view(agent, &ctx));
        }
        let before = agent.published_version;
        publish_draft(&tx, company, &mut agent).await?;
        audit::record(
            &tx,
            AuditEntry {
                action: "agent.publish",
                resource_type: "agent",
                resource_id: Some(agent.id),
                before: Some(json!({"published_version": before})),
                after: Some(json!({"published_version": agent.published_version})),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(view(agent, &ctx))
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}
