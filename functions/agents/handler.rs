//! `agents` function: a company's AI agents (seed 001 section 3.2).
//!
//! POST|GET /admin/agents · GET|PATCH|DELETE /admin/agents/{id}
//! POST /admin/agents/{id}/clone | archive | restore | activate | pause
//! (Versions, drafts and publishing are the `agent-versions` function's.)
//! Master admins pass `?company_id=` to act on one company.
//!
//! Who sets what (the seed's split): the system prompt and the model configuration are the
//! master admin's (or the package's), hidden from everyone else and refused from them (403
//! `master_only_field`) unless the agent's package grants `custom_prompt` / `custom_model`;
//! the capabilities and a custom package URL and hash are the master admin's alone; the rest
//! (personality, response style, RAG, escalation rules, business hours, fallback texts,
//! greeting, suggested questions, tools) is the company admin's. A packaged agent's settings
//! must be ones its package supports (403 `capability_missing`): `rag` for RAG and the
//! `rag_search` tool, `tools` for other tools. Bodies are checked in `input.rs`.
//!
//! The greeting and the suggested questions are kept in `fallback_responses` (`greeting`,
//! `suggestedQuestions`), the outside-hours message in `business_hours.outsideHoursMessage`
//! (see `chatapp::repo::agents`).
//!
//! Status: created and cloned as `draft`; `activate` (draft | paused → active), `pause`
//! (active → paused), `archive` (draft | active | paused → archived), `restore` (archived →
//! draft); anything else is 409 `invalid_transition`. The plan's `agentCount` counts the agents
//! that are not archived: create, clone and restore check it (402 `agent_limit_reached`).
//!
//! Delete is a hard delete (its widget, channel and webhook configurations and category links
//! go with it), allowed only while no conversation names the agent: for one that has
//! conversations it answers 409 `agent_has_conversations` and changes nothing; archive it
//! instead, so its conversations keep their agent.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::Core;
use chatapp::audit::{self, AuditEntry};
use chatapp::db::TenantTx;
use chatapp::error::ErrorBody;
use chatapp::ids::AgentId;
use chatapp::repo::{
    self,
    agent_versions::VersionAction,
    agents::{Agent, AgentFields, AgentFilter, CUSTOM_MODEL, CUSTOM_PROMPT},
};
use chatapp::routes;
use chatapp::status::AgentStatus;
use chatapp::tenant::{Access, Resource};
use chatapp::web::{CompanyParam, IdPath, JsonBody, Page, PageParams, Paged, Query, RequestMeta, Tenant};
use chatapp::{ApiError, TenantCtx};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

mod clone_actions;
pub(crate) mod input;
pub(crate) mod versions;

use input::{CreateAgentBody, Grants, UpdateAgentBody};

/// What this function may do on AWS: nothing (template.yaml gives it no policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

/// The plan limit on agents that are not archived.
const AGENT_LIMIT: &str = "agentCount";

pub fn routes() -> OpenApiRouter<Core> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(create, list))
        .routes(routes!(get, update, delete))
        .routes(routes!(clone_agent))
        .routes(routes!(archive))
        .routes(routes!(restore))
        .routes(routes!(activate))
        .routes(routes!(pause))
}

/// The agent as `ctx` may see it: the system prompt, its template and the model configuration
/// only for the master admin, or when the agent's package grants them.
pub(crate) fn view(mut agent: Agent, ctx: &TenantCtx) -> Agent {
    if !ctx.is_master_admin() {
        if !agent.has_capability(CUSTOM_PROMPT) {
            agent.system_prompt = None;
            agent.prompt_template_id = None;
            agent.prompt_variables = None;
        }
        if !agent.has_capability(CUSTOM_MODEL) {
            agent.llm_config = None;
        }
    }
    agent
}

/// Room for one more agent that is not archived (402 `agent_limit_reached` otherwise). Holds
/// the company's agent lock until the transaction ends.
async fn ensure_room(tx: &TenantTx, company: Uuid) -> Result<(), ApiError> {
    let limits = repo::plans::limits(tx, company).await?;
    let live = repo::agents::lock_and_count_live(tx, company).await?;
    match repo::plans::limit_of(&limits, AGENT_LIMIT) {
        Some(max) if live >= max => Err(ApiError::PaymentRequired {
            code: "agent_limit_reached",
            message: format!(
                "the plan allows {max} {}; archive one or upgrade to add more",
                if max == 1 { "agent" } else { "agents" }
            ),
        }),
        _ => Ok(()),
    }
}

/// Create an agent: blank, or from an agent package (within the plan's agent limit).
#[utoipa::path(post, path = "/admin/agents", tag = "agents", security(("bearer" = [])),
    params(CompanyParam), request_body = CreateAgentBody,
    responses(
        (status = 201, description = "The created agent, as a draft", body = Agent),
        (status = 402, description = "The plan's agents are all in use", body = ErrorBody)))]
async fn create(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(body): JsonBody<CreateAgentBody>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let (package_id, changes) = body.into_parts();
    let changes = changes.validated()?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let mut fields = AgentFields::blank(String::new());
        let grants = match package_id {
            None => Grants::blank(),
            Some(id) => {
                let package = repo::agents::package(&tx, id)
                    .await?
                    .filter(|p| p.usable)
                    .ok_or_else(|| ApiError::validation("package_id must name an active, published agent package"))?;
                input::from_package(&mut fields, &package);
                Grants::of_package(&package)
            }
        };
        changes.authorize(&ctx, &grants)?;
        changes.apply(&mut fields)?;
        input::check_prompt_template(&tx, None, &fields).await?;
        input::check_model(&tx, None, &fields).await?;
        input::check_categories(&tx, company, "knowledge_category_ids", None, &fields).await?;
        ensure_room(&tx, company).await?;
        let mut created = repo::agents::create(&tx, company, &fields, AgentStatus::Draft).await?;
        versions::record(&tx, &ctx, None, &mut created, VersionAction::Create, None).await?;
        let created = view(created, &ctx);
        audit::record(
            &tx,
            AuditEntry {
                action: "agent.create",
                resource_type: "agent",
                resource_id: Some(created.id),
                before: None,
                after: Some(json!(created)),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(created)
    }
    .await;
    Ok((StatusCode::CREATED, Json(tx.finish(result).await?)))
}

/// Filters of the agent list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AgentListQuery {
    /// `draft`, `active`, `paused` or `archived`.
    status: Option<String>,
    /// The agent's type: its package's slug (`support-rag`, `faq-basic`, ...), or `blank` for
    /// agents made without a package.
    #[serde(rename = "type")]
    package_type: Option<String>,
    /// Only agents made from this package.
    #[param(value_type = Option<Uuid>)]
    package_id: Option<String>,
    /// Text in the name (at most 200 characters).
    q: Option<String>,
}

/// List the company's agents, oldest first.
#[utoipa::path(get, path = "/admin/agents", tag = "agents", security(("bearer" = [])),
    params(AgentListQuery, PageParams, CompanyParam),
    responses((status = 200, description = "One page of agents", body = Paged<Agent>)))]
async fn list(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    page: Page,
    Query(q): Query<AgentListQuery>,
) -> Result<Json<Paged<Agent>>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let status = q
        .status
        .as_deref()
        .map(str::parse::<AgentStatus>)
        .transpose()
        .map_err(|_| ApiError::validation("status must be draft, active, paused or archived"))?;
    let package_type = q.package_type.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if package_type.is_some_and(|t| t.chars().count() > 100 || t.contains('\0')) {
        return Err(ApiError::validation("type must be a package slug of at most 100 characters"));
    }
    let package_id = match q.package_id.as_deref() {
        Some(p) => Some(Uuid::parse_str(p).map_err(|_| ApiError::validation("package_id must be a UUID"))?),
        None => None,
    };
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if search.is_some_and(|s| s.chars().count() > 200 || s.contains('\0')) {
        return Err(ApiError::validation("q must be at most 200 characters"));
    }
    let pattern = search.map(|s| format!("%{}%", chatapp::db::like_escape(s)));
    let filter = AgentFilter { status, package_slug: package_type, package_id, name_like: pattern.as_deref() };
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::agents::list(&tx, company, &filter, page).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items.into_iter().map(|a| view(a, &ctx)).collect(), page, total)))
}

/// One agent of the company.
#[utoipa::path(get, path = "/admin/agents/{id}", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), CompanyParam),
    responses((status = 200, description = "The agent", body = Agent)))]
async fn get(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<AgentId>,
) -> Result<Json<Agent>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::agents::get(&tx, company, id.as_uuid()).await.map_err(ApiError::from);
    let agent = tx.finish(result).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(view(agent, &ctx)))
}

/// Change an agent's configuration (not its status or package).
#[utoipa::path(patch, path = "/admin/agents/{id}", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), CompanyParam), request_body = UpdateAgentBody,
    responses((status = 200, description = "The updated agent", body = Agent)))]
async fn update(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<AgentId>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<UpdateAgentBody>,
) -> Result<Json<Agent>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let changes = body.into_changes().validated()?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = repo::agents::lock(&tx, company, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        changes.authorize(&ctx, &Grants::of_agent(&before))?;
        let before_fields = before.fields();
        let before_config = before_fields.to_config();
        let mut fields = before_fields.clone();
        changes.apply(&mut fields)?;
        input::check_prompt_template(&tx, Some(&before_fields), &fields).await?;
        input::check_model(&tx, Some(&before_fields), &fields).await?;
        input::check_categories(&tx, company, "knowledge_category_ids", Some(&before_fields), &fields).await?;
        let mut after = repo::agents::update(&tx, company, id.as_uuid(), &fields).await?.ok_or(ApiError::NotFound)?;
        versions::record(&tx, &ctx, Some(&before_config), &mut after, VersionAction::Update, None).await?;
        let (before, after) = (view(before, &ctx), view(after, &ctx));
        audit::record(
            &tx,
            AuditEntry {
                action: "agent.update",
                resource_type: "agent",
                resource_id: Some(after.id),
                before: Some(json!(before)),
                after: Some(json!(after)),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}

/// `<name> (copy)`, within the name's 255 characters.
fn copy_name(name: &str) -> String {
    const SUFFIX: &str = " (copy)";
    let base: String = name.chars().take(255 - SUFFIX.len()).collect();
    format!("{}{SUFFIX}", base.trim_end())
}

/// Copy an agent as a new draft named "<name> (copy)" (within the plan's agent limit), with
/// its knowledge categories and HTTP actions (same endpoints and header values; signed with the
/// same secret).
#[utoipa::path(post, path = "/admin/agents/{id}/clone", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), CompanyParam),
    responses(
        (status = 201, description = "The copy, as a draft", body = Agent),
        (status = 402, description = "The plan's agents are all in use", body = ErrorBody)))]
async fn clone_agent(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<AgentId>,
    meta: RequestMeta,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let source = repo::agents::get(&tx, company, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        ensure_room(&tx, company).await?;
        let mut fields = source.fields();
        fields.name = copy_name(&source.name);
        let mut created = repo::agents::create(&tx, company, &fields, AgentStatus::Draft).await?;
        let note = format!("copied from agent {} version {}", source.id, source.version);
        versions::record(&tx, &ctx, None, &mut created, VersionAction::Clone, Some(&note)).await?;
        let actions_copied = clone_actions::copy_all(&deps, &tx, company, source.id, created.id).await?;
        let created = view(created, &ctx);
        audit::record(
            &tx,
            AuditEntry {
                action: "agent.clone",
                resource_type: "agent",
                resource_id: Some(created.id),
                before: Some(json!({"source_id": source.id, "actions_copied": actions_copied})),
                after: Some(json!(created)),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(created)
    }
    .await;
    Ok((StatusCode::CREATED, Json(tx.finish(result).await?)))
}

/// Delete an agent that has no conversations; one that has is archived instead.
#[utoipa::path(delete, path = "/admin/agents/{id}", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), CompanyParam),
    responses((status = 204, description = "Deleted")))]
async fn delete(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<AgentId>,
    meta: RequestMeta,
) -> Result<StatusCode, ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = repo::agents::lock(&tx, company, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        if repo::agents::has_conversations(&tx, company, id.as_uuid()).await? {
            return Err(ApiError::conflict(
                "agent_has_conversations",
                "the agent has conversations and cannot be deleted; archive it instead",
            ));
        }
        repo::agents::delete(&tx, company, id.as_uuid()).await?;
        let before = view(before, &ctx);
        audit::record(
            &tx,
            AuditEntry {
                action: "agent.delete",
                resource_type: "agent",
                resource_id: Some(before.id),
                before: Some(json!(before)),
                after: None,
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    tx.finish(result).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A status change of its own route.
#[derive(Clone, Copy)]
enum Transition {
    Activate,
    Pause,
    Archive,
    Restore,
}

impl Transition {
    fn verb(self) -> &'static str {
        match self {
            Transition::Activate => "activate",
            Transition::Pause => "pause",
            Transition::Archive => "archive",
            Transition::Restore => "restore",
        }
    }

    fn action(self) -> &'static str {
        match self {
            Transition::Activate => "agent.activate",
            Transition::Pause => "agent.pause",
            Transition::Archive => "agent.archive",
            Transition::Restore => "agent.restore",
        }
    }

    /// The status it leads to from `from`; `None` when it does not apply.
    fn target(self, from: AgentStatus) -> Option<AgentStatus> {
        use AgentStatus::{Active, Archived, Draft, Paused};
        match (self, from) {
            (Transition::Activate, Draft | Paused) => Some(Active),
            (Transition::Pause, Active) => Some(Paused),
            (Transition::Archive, Draft | Active | Paused) => Some(Archived),
            (Transition::Restore, Archived) => Some(Draft),
            _ => None,
        }
    }
}

async fn transition(
    deps: &Core,
    ctx: &TenantCtx,
    meta: &RequestMeta,
    id: AgentId,
    t: Transition,
) -> Result<Json<Agent>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let before = repo::agents::lock(&tx, company, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        let to = t.target(before.status).ok_or_else(|| {
            ApiError::conflict("invalid_transition", format!("cannot {} an agent that is {}", t.verb(), before.status))
        })?;
        if to != AgentStatus::Archived && before.status == AgentStatus::Archived {
            // Back among the agents the plan counts.
            ensure_room(&tx, company).await?;
        }
        let mut after = repo::agents::set_status(&tx, company, id.as_uuid(), to).await?.ok_or(ApiError::NotFound)?;
        if to == AgentStatus::Active && after.published_version.is_none() {
            // First activation: what customers are served is the draft as it is now (for an
            // agent older than versions, its configuration becomes version 1).
            if after.version == 0 {
                let note = "the configuration before versions existed";
                versions::record(&tx, ctx, None, &mut after, VersionAction::Update, Some(note)).await?;
            }
            versions::publish_draft(&tx, company, &mut after).await?;
        }
        audit::record(
            &tx,
            AuditEntry {
                action: t.action(),
                resource_type: "agent",
                resource_id: Some(after.id),
                before: Some(json!({"status": before.status})),
                after: Some(json!({"status": after.status})),
            },
            meta,
        )
        .await?;
        Ok::<_, ApiError>(view(after, ctx))
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}

/// Activate an agent (draft or paused → active): it answers conversations.
#[utoipa::path(post, path = "/admin/agents/{id}/activate", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), CompanyParam),
    responses((status = 200, description = "The active agent", body = Agent)))]
async fn activate(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<AgentId>,
    meta: RequestMeta,
) -> Result<Json<Agent>, ApiError> {
    transition(&deps, &ctx, &meta, id, Transition::Activate).await
}

/// Pause an active agent: it stops answering until activated again.
#[utoipa::path(post, path = "/admin/agents/{id}/pause", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), CompanyParam),
    responses((status = 200, description = "The paused agent", body = Agent)))]
async fn pause(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<AgentId>,
    meta: RequestMeta,
) -> Result<Json<Agent>, ApiError> {
    transition(&deps, &ctx, &meta, id, Transition::Pause).await
}

/// Archive an agent: it stops answering and no longer counts against the plan.
#[utoipa::path(post, path = "/admin/agents/{id}/archive", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), CompanyParam),
    responses((status = 200, description = "The archived agent", body = Agent)))]
async fn archive(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<AgentId>,
    meta: RequestMeta,
) -> Result<Json<Agent>, ApiError> {
    transition(&deps, &ctx, &meta, id, Transition::Archive).await
}

/// Restore an archived agent as a draft (within the plan's agent limit).
#[utoipa::path(post, path = "/admin/agents/{id}/restore", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Agent id"), CompanyParam),
    responses(
        (status = 200, description = "The restored agent, as a draft", body = Agent),
        (status = 402, description = "The plan's agents are all in use", body = ErrorBody)))]
async fn restore(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<AgentId>,
    meta: RequestMeta,
) -> Result<Json<Agent>, ApiError> {
    transition(&deps, &ctx, &meta, id, Transition::Restore).await
}
