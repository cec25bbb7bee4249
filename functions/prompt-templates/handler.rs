//! `prompt-templates` function: the prompt template catalog (seed 000 `ai_prompts`; migrations
//! 0003 and 0027).
//!
//! POST   /admin/prompt-templates              add a template (master admin)
//! GET    /admin/prompt-templates              list (filter by whether active)
//! GET    /admin/prompt-templates/{id}         one
//! PATCH  /admin/prompt-templates/{id}         change (master admin); `is_active: false` retires one
//! DELETE /admin/prompt-templates/{id}         remove a template no agent uses (master admin)
//! POST   /admin/prompt-templates/{id}/render  preview with sample values (master admin)
//!
//! The catalog is global: the master admin writes it (anyone else: 403 `master_only`), company
//! admins (and users granted `agents` reads) read the active templates, the master admin every
//! template. A template's content uses `{{variable}}` placeholders: the built-in
//! `company_name`, `customer_name`, `agent_name` and `business_hours`, which each chat turn
//! fills, and the variables the template declares (with an optional default), whose values an
//! agent using the template gives (`promptVariables`). Content and variables are checked
//! together on every write (`chatapp::prompt_template::check_template`): a placeholder the
//! template does not declare, a variable declared twice or under a built-in name is a 400
//! naming the field (`content`, `variables[1].name`), and nothing is stored.
//!
//! The content is the master admin's alone to see, as an agent's system prompt, template and
//! variables are hidden from company admins unless its package grants `custom_prompt`
//! (functions/agents): anyone else reads a template without `content` (the field absent) but
//! with its name, slug, description, declared variables (name, required, default,
//! description: what an agent's `prompt_variables` are filled from), version and `is_active`,
//! and the render preview, which shows the content, is the master admin's only (403
//! `master_only`).
//!
//! Agents are kept consistent with the templates they use: a change may not drop a variable an
//! agent gives a value for (409 `variable_in_use`) nor make a variable required, without a
//! default, that an agent gives no value for (409 `variable_required`); a template an agent
//! uses is not deleted (409 `template_in_use`: retire it with `is_active: false`, and those
//! agents fall back to their own system prompt). Every change of content or variables bumps
//! the template's `version`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::Core;
use chatapp::audit::{self, AuditEntry};
use chatapp::db::TenantTx;
use chatapp::error::ErrorBody;
use chatapp::prompt_template::{self as template, Builtins, TemplateVariable};
use chatapp::repo::prompt_templates::{self as repo, PromptTemplate, TemplateFields};
use chatapp::routes;
use chatapp::tenant::{Access, Resource};
use chatapp::web::{IdPath, JsonBody, JsonOrEmpty, Page, PageParams, Paged, Query, RequestMeta, Tenant};
use chatapp::{domain, ApiError, TenantCtx};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

/// What this function may do on AWS: nothing (template.yaml gives it no policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

const MAX_SLUG: usize = 100;
const MAX_NAME: usize = 255;
const MAX_DESCRIPTION: usize = 2_000;

pub fn routes() -> OpenApiRouter<Core> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(create, list))
        .routes(routes!(get, update, delete))
        .routes(routes!(render_preview))
}

/// A new prompt template.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateTemplateBody {
    /// 1-100 characters of a-z, 0-9, `-` and `.`; unique.
    slug: String,
    /// 1-255 characters.
    name: String,
    /// At most 2,000 characters.
    description: Option<String>,
    /// The system prompt, 1 to 50,000 characters, with `{{variable}}` placeholders (spaces
    /// inside the braces allowed): the built-in `company_name`, `customer_name`, `agent_name`,
    /// `business_hours`, and the declared variables.
    content: String,
    /// The variables the content may use besides the built-in ones: at most 50, none twice.
    variables: Option<Vec<TemplateVariable>>,
    /// A model of the catalog the template is written for.
    model_id: Option<Uuid>,
    /// Default true.
    is_active: Option<bool>,
}

/// The fields to change; absent fields are kept, `null` clears `description` and `model_id`.
/// `content` and `variables` are checked together, whichever of them changes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateTemplateBody {
    slug: Option<String>,
    name: Option<String>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    content: Option<String>,
    /// Replaces the variables (`[]` clears them).
    variables: Option<Vec<TemplateVariable>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    model_id: Option<Option<Uuid>>,
    /// `false` retires the template: company admins no longer see it, and the agents using it
    /// fall back to their own system prompt.
    is_active: Option<bool>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// Filters of the template list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TemplateListQuery {
    /// `true`: only active templates; `false`: only retired ones (the master admin's to see).
    #[param(value_type = Option<bool>)]
    active: Option<String>,
}

/// What to render a template with.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct RenderTemplateBody {
    /// Values of the template's declared variables, as an agent's `promptVariables` gives
    /// them: each a string of at most 2,000 characters; the required ones without a default
    /// must be given.
    #[serde(default)]
    #[schema(value_type = Object)]
    variables: Map<String, Value>,
    /// Sample values of the built-in variables.
    #[serde(default)]
    sample: SampleBuiltins,
}

/// Sample values of the built-in variables, each at most 2,000 characters.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct SampleBuiltins {
    /// Default `[company_name]`.
    company_name: Option<String>,
    /// Default: unknown, which renders as "the customer".
    customer_name: Option<String>,
    /// Default `[agent_name]`.
    agent_name: Option<String>,
    /// Default: unknown, which renders as "".
    business_hours: Option<String>,
}

/// A template rendered as a chat turn would render it.
#[derive(Serialize, ToSchema)]
struct RenderedPrompt {
    /// The system prompt.
    rendered: String,
    /// The version of the template rendered.
    version: i32,
}

fn slug(raw: &str) -> Result<String, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_SLUG
        && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(raw.to_string())
    } else {
        Err(ApiError::validation(format!("slug must be 1-{MAX_SLUG} characters of a-z, 0-9, '-' and '.'")))
    }
}

/// Trimmed, at most 2,000 characters; blank is none.
fn description(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw.map(str::trim).filter(|d| !d.is_empty()) {
        None => Ok(None),
        Some(d) if d.chars().count() > MAX_DESCRIPTION => {
            Err(ApiError::validation(format!("description must be at most {MAX_DESCRIPTION} characters")))
        }
        Some(d) => Ok(Some(d.to_string())),
    }
}

/// A template check's (field path, message) as a 400.
fn invalid((field, message): (String, String)) -> ApiError {
    ApiError::validation(format!("{field}: {message}"))
}

/// The template as the caller may see it: all of it for the master admin, without its content
/// for anyone else.
fn shown(ctx: &TenantCtx, t: PromptTemplate) -> PromptTemplate {
    if ctx.is_master_admin() {
        t
    } else {
        t.without_content()
    }
}

/// A 400 unless the catalog has the model.
async fn known_model(tx: &TenantTx, model_id: Uuid) -> Result<(), ApiError> {
    if repo::model_exists(tx, model_id).await? {
        Ok(())
    } else {
        Err(ApiError::validation("model_id: no model of the catalog has this id"))
    }
}

/// Whether an agent using the template must give the variable a value.
fn needs_value(v: &TemplateVariable) -> bool {
    v.required && v.default.is_none() && !template::is_builtin(&v.name)
}

/// Refuses a change of variables that would leave an agent using the template with a value
/// for a variable that is gone, or without one for a variable it now must give.
async fn keep_agents_consistent(
    tx: &TenantTx,
    id: Uuid,
    before: &[TemplateVariable],
    after: &[TemplateVariable],
) -> Result<(), ApiError> {
    let dropped: Vec<String> =
        before.iter().filter(|b| !after.iter().any(|a| a.name == b.name)).map(|b| b.name.clone()).collect();
    if !dropped.is_empty() {
        if let Some(name) = repo::variable_given(tx, id, &dropped).await? {
            return Err(ApiError::conflict(
                "variable_in_use",
                format!("variables: an agent using this template gives a value for `{name}`; keep the variable"),
            ));
        }
    }
    let newly_required: Vec<String> = after
        .iter()
        .filter(|a| needs_value(a) && !before.iter().any(|b| b.name == a.name && needs_value(b)))
        .map(|a| a.name.clone())
        .collect();
    if !newly_required.is_empty() {
        if let Some(name) = repo::variable_missing(tx, id, &newly_required).await? {
            return Err(ApiError::conflict(
                "variable_required",
                format!(
                    "variables: `{name}` would be required without a default, and an agent using this template \
                     gives it no value; give it a default"
                ),
            ));
        }
    }
    Ok(())
}

fn audit_entry<'a>(
    action: &'a str,
    id: Uuid,
    before: Option<&PromptTemplate>,
    after: Option<&PromptTemplate>,
) -> AuditEntry<'a> {
    AuditEntry::change(action, "prompt_template", id, before, after)
}

/// A 409 for a slug another template has.
fn slug_taken(e: chatapp::db::DbError) -> ApiError {
    ApiError::conflict_if_unique(e, "slug_taken", "another prompt template has this slug")
}

/// Add a prompt template (master admin).
#[utoipa::path(post, path = "/admin/prompt-templates", tag = "prompt-templates", security(("bearer" = [])),
    request_body = CreateTemplateBody,
    responses(
        (status = 201, description = "The created template", body = PromptTemplate),
        (status = 400, description = "A field is invalid; the message names it (`content`, `variables[1].name`)",
            body = ErrorBody),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 409, description = "Another template has this slug", body = ErrorBody)))]
async fn create(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(body): JsonBody<CreateTemplateBody>,
) -> Result<(StatusCode, Json<PromptTemplate>), ApiError> {
    ctx.require_master_admin("manages the prompt templates")?;
    let variables = body.variables.unwrap_or_default();
    let fields = TemplateFields {
        slug: slug(&body.slug)?,
        name: domain::text("name", &body.name, MAX_NAME)?,
        description: description(body.description.as_deref())?,
        content: body.content,
        variables,
        model_id: body.model_id,
        is_active: body.is_active.unwrap_or(true),
    };
    template::check_template(&fields.content, &fields.variables).map_err(invalid)?;
    let tx = deps.db.begin(&ctx).await?;
    let created = async {
        if let Some(model) = fields.model_id {
            known_model(&tx, model).await?;
        }
        let created = repo::insert(&tx, &fields).await.map_err(slug_taken)?;
        audit::record(&tx, audit_entry("prompt_template.create", created.id, None, Some(&created)), &meta).await?;
        Ok::<_, ApiError>(created)
    }
    .await;
    Ok((StatusCode::CREATED, Json(tx.finish(created).await?)))
}

/// List the templates by slug: the active ones, and for the master admin the retired ones too;
/// `content` is absent unless you are the master admin.
#[utoipa::path(get, path = "/admin/prompt-templates", tag = "prompt-templates", security(("bearer" = [])),
    params(TemplateListQuery, PageParams),
    responses((status = 200, description = "One page of the templates (`content`: the master admin's only)",
        body = Paged<PromptTemplate>)))]
async fn list(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    page: Page,
    Query(q): Query<TemplateListQuery>,
) -> Result<Json<Paged<PromptTemplate>>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let active = chatapp::web::bool_param("active", q.active.as_deref())?;
    let only_active = !ctx.is_master_admin();
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::list(&tx, active, only_active, page.limit, page.offset).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    let items: Vec<PromptTemplate> = items.into_iter().map(|t| shown(&ctx, t)).collect();
    Ok(Json(Paged::new(items, page, total)))
}

/// The template, when the caller may see it (a retired one: the master admin only).
async fn readable(deps: &Core, ctx: &TenantCtx, id: Uuid) -> Result<PromptTemplate, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let tx = deps.db.begin(ctx).await?;
    let found = repo::get(&tx, id).await.map_err(ApiError::from);
    tx.finish(found).await?.filter(|t| t.is_active || ctx.is_master_admin()).ok_or(ApiError::NotFound)
}

/// One prompt template (a retired one for the master admin only); `content` is absent unless
/// you are the master admin.
#[utoipa::path(get, path = "/admin/prompt-templates/{id}", tag = "prompt-templates", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Prompt template id")),
    responses((status = 200, description = "The template (`content`: the master admin's only)", body = PromptTemplate),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn get(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<Uuid>,
) -> Result<Json<PromptTemplate>, ApiError> {
    readable(&deps, &ctx, id).await.map(|t| Json(shown(&ctx, t)))
}

/// Change a prompt template (master admin); `is_active: false` retires it.
#[utoipa::path(patch, path = "/admin/prompt-templates/{id}", tag = "prompt-templates", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Prompt template id")),
    request_body = UpdateTemplateBody,
    responses((status = 200, description = "The template", body = PromptTemplate),
        (status = 400, description = "A field is invalid; the message names it", body = ErrorBody),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Another template has this slug, or an agent relies on what the change drops",
            body = ErrorBody)))]
async fn update(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
    JsonBody(body): JsonBody<UpdateTemplateBody>,
) -> Result<Json<PromptTemplate>, ApiError> {
    ctx.require_master_admin("manages the prompt templates")?;
    let UpdateTemplateBody {
        slug: new_slug,
        name: new_name,
        description: new_description,
        content: new_content,
        variables: new_variables,
        model_id: new_model,
        is_active: new_active,
    } = body;
    let new_slug = new_slug.as_deref().map(slug).transpose()?;
    let new_name = domain::optional_text("name", new_name.as_deref(), MAX_NAME)?;
    let new_description = new_description.map(|d| description(d.as_deref())).transpose()?;
    let tx = deps.db.begin(&ctx).await?;
    let updated = async {
        let before = repo::lock(&tx, id).await?.ok_or(ApiError::NotFound)?;
        let mut f = before.fields();
        if let Some(v) = new_slug {
            f.slug = v;
        }
        if let Some(v) = new_name {
            f.name = v;
        }
        if let Some(v) = new_description {
            f.description = v;
        }
        let template_changes = new_content.is_some() || new_variables.is_some();
        if let Some(v) = new_content {
            f.content = v;
        }
        if let Some(v) = new_variables {
            f.variables = v;
        }
        if template_changes {
            template::check_template(&f.content, &f.variables).map_err(invalid)?;
            keep_agents_consistent(&tx, id, &before.variables, &f.variables).await?;
        }
        if let Some(v) = new_model {
            if let Some(model) = v {
                known_model(&tx, model).await?;
            }
            f.model_id = v;
        }
        if let Some(v) = new_active {
            f.is_active = v;
        }
        let new_version = before.content.as_deref() != Some(f.content.as_str()) || f.variables != before.variables;
        let after = repo::update(&tx, id, &f, new_version).await.map_err(slug_taken)?.ok_or(ApiError::NotFound)?;
        audit::record(&tx, audit_entry("prompt_template.update", id, Some(&before), Some(&after)), &meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(updated).await?))
}

/// Remove a prompt template (master admin), only while no agent uses it; retire a template in
/// use with `is_active: false` instead.
#[utoipa::path(delete, path = "/admin/prompt-templates/{id}", tag = "prompt-templates", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Prompt template id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "An agent uses the template (`template_in_use`)", body = ErrorBody)))]
async fn delete(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    ctx.require_master_admin("manages the prompt templates")?;
    let tx = deps.db.begin(&ctx).await?;
    let deleted = async {
        let before = repo::lock(&tx, id).await?.ok_or(ApiError::NotFound)?;
        let agents = repo::agents_using(&tx, id).await?;
        if agents > 0 {
            return Err(ApiError::conflict(
                "template_in_use",
                format!("{agents} agent(s) use this template: retire it with is_active false instead"),
            ));
        }
        repo::delete(&tx, id).await?;
        audit::record(&tx, audit_entry("prompt_template.delete", id, Some(&before), None), &meta).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    tx.finish(deleted).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A sample value of a built-in variable, at most 2,000 characters.
fn sample(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.chars().count() > template::MAX_VALUE_CHARS => Err(ApiError::validation(format!(
            "sample.{field} must be at most {} characters",
            template::MAX_VALUE_CHARS
        ))),
        other => Ok(other),
    }
}

/// Preview a template as a chat turn renders it into the system prompt: the declared
/// variables filled with the values given (checked as an agent's `promptVariables` are: 400
/// naming `variables.<name>`), else their defaults; the built-in ones with the sample values.
/// Nothing is stored. The master admin's only (anyone else: 403 `master_only`), since it shows
/// the content, which agents hide from company admins.
#[utoipa::path(post, path = "/admin/prompt-templates/{id}/render", tag = "prompt-templates",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Prompt template id")),
    request_body = RenderTemplateBody,
    responses((status = 200, description = "The rendered system prompt", body = RenderedPrompt),
        (status = 400, description = "A value is invalid, missing or not a variable of the template",
            body = ErrorBody),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn render_preview(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<Uuid>,
    JsonOrEmpty(body): JsonOrEmpty<RenderTemplateBody>,
) -> Result<Json<RenderedPrompt>, ApiError> {
    ctx.require_master_admin("manages the prompt templates")?;
    let found = readable(&deps, &ctx, id).await?;
    template::check_values(&found.variables, &body.variables)
        .map_err(|(field, message)| invalid((field.replacen("promptVariables", "variables", 1), message)))?;
    let SampleBuiltins { company_name, customer_name, agent_name, business_hours } = body.sample;
    let company_name = sample("company_name", company_name)?;
    let customer_name = sample("customer_name", customer_name)?;
    let agent_name = sample("agent_name", agent_name)?;
    let business_hours = sample("business_hours", business_hours)?;
    let builtins = Builtins {
        company_name: company_name.as_deref().unwrap_or("[company_name]"),
        customer_name: customer_name.as_deref(),
        agent_name: agent_name.as_deref().unwrap_or("[agent_name]"),
        business_hours: business_hours.as_deref(),
    };
    let content = found.content.as_deref().unwrap_or_default();
    let rendered = template::render(content, &found.variables, &body.variables, &builtins);
    Ok(Json(RenderedPrompt { rendered, version: found.version }))
}
