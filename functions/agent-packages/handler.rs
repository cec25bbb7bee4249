//! `agent-packages` function: the agent packages companies make agents from (seed 001 section
//! 3.1; versions since migration 0026).
//!
//! POST   /admin/agent-packages                  create (master admin), unpublished and active
//! GET    /admin/agent-packages                  list (`?active=`, `?q=` name or slug search)
//! GET    /admin/agent-packages/{id}             one
//! PATCH  /admin/agent-packages/{id}             name, description, documentation, author, is_default
//! DELETE /admin/agent-packages/{id}             remove a package no agent was made from
//! POST   /admin/agent-packages/{id}/versions    a new version (greater than the current one)
//! GET    /admin/agent-packages/{id}/versions    its versions, newest first
//! POST   /admin/agent-packages/{id}/publish     companies may use it (once its bundle is verified)
//! POST   /admin/agent-packages/{id}/deactivate  no new agents from it; `activate` reverses
//! PUT    /admin/agent-packages/{id}/bundle      upload the bundle (checked against `package_hash`)
//!
//! The catalog is global: the master admin writes it (anyone else: 403 `master_only`); company
//! admins (and users granted `agents` reads) see the packages that are active and published,
//! without the master-only parts of their default configuration (`systemPrompt` unless the
//! package grants `custom_prompt`, `llmConfig` unless it grants `custom_model`, as the agents
//! function hides them); the master admin sees every package. A hidden package is a 404.
//!
//! A package's default configuration is what an agent made from it starts with (the agents
//! function copies it at creation; agents already made keep their copy when a new version
//! comes out). Its keys are the agent settings: the JSON columns (`llmConfig`, `ragConfig`,
//! `toolConfig`, `responseStyle`, `escalationRules`, `businessHours`, `fallbackResponses`,
//! each checked as the agents function checks them, `chatapp::agent_config`), `enabledTools`
//! (kept equal to the package's `enabled_tools`), `systemPrompt`, `personality` and
//! `ragEnabled`. What it enables must be among the package's capabilities, as the agents
//! function requires of an agent: `rag` for `ragEnabled`, `ragConfig` and the `rag_search`
//! tool, `tools` for any other tool and `toolConfig`.
//!
//! Capabilities: `rag`, `tools`, `custom_prompt`, `custom_model` (which the agents function
//! acts on) and the seed's `file_upload`, `voice` and `multi_agent` (declared only: nothing
//! acts on them yet); see `chatapp::repo::packages` for these checks.
//!
//! The bundle: an upload's SHA-256 must equal the declared `package_hash` (422 `hash_mismatch`,
//! nothing stored); without a declared hash any bundle is taken and its hash becomes the
//! package's. It is stored once per content in the blob store (a platform object:
//! `<nil uuid>/packages/<sha256>`, in the knowledge bucket when hosted), and `package_url`
//! holds that object key. A package declaring a hash is published only once the bundle with it
//! is stored (409 `bundle_missing`). A new version may declare a new `package_hash`, whose
//! bundle is uploaded next (a published package stays published meanwhile).
//!
//! `usage_count` counts the agents made from the package that the caller may see (every
//! company's for the master admin). A package agents were made from is not deleted (409
//! `package_in_use`): deactivate it instead; the agents keep working.

use axum::extract::{Request, State};
use axum::http::{header::CONTENT_TYPE, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chatapp::agent_config::{self, Column};
use chatapp::app::AppDeps;
use chatapp::audit::{self, AuditEntry};
use chatapp::error::{ErrorBody, ErrorDetail};
use chatapp::repo::packages::{self as repo, AgentPackage, ConfigInput, PackageFields, PackageVersion};
use chatapp::routes;
use chatapp::tenant::{Access, Resource};
use chatapp::web::{IdPath, JsonBody, Page, PageParams, Paged, Query, RequestMeta, Tenant};
use chatapp::{domain, ApiError, TenantCtx};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

/// What this function may do on AWS: the bundles in the knowledge bucket (template.yaml grants
/// exactly this; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess =
    chatapp::adapters::access::AwsAccess { s3: true, send: &[], poll: &[], email: false };

const MAX_NAME: usize = 255;
const MAX_DESCRIPTION: usize = 5000;
const MAX_DOCUMENTATION: usize = 50_000;
const MAX_CHANGELOG: usize = 20_000;
const MAX_AUTHOR: usize = 255;
const MAX_ENTRY_POINT: usize = 255;
const MAX_SYSTEM_PROMPT: usize = 50_000;
const MAX_PERSONALITY: usize = 5000;
const MAX_SEARCH: usize = 200;
/// The largest bundle (the deployment's upload limit may be lower: Lambda takes 6 MB).
const MAX_BUNDLE: usize = 20 * 1024 * 1024;

/// The keys of a default configuration besides the JSON columns.
const OTHER_KEYS: &str = "enabledTools, systemPrompt, personality, ragEnabled";

pub fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(create, list))
        .routes(routes!(get, update, delete))
        .routes(routes!(create_version, list_versions))
        .routes(routes!(publish))
        .routes(routes!(deactivate))
        .routes(routes!(activate))
        .routes(routes!(upload_bundle))
}

/// A new agent package.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreatePackageBody {
    /// 1-255 characters.
    name: String,
    /// 2-100 characters of a-z, 0-9 and `-`, starting with a letter or digit; unique.
    slug: String,
    /// At most 5000 characters.
    description: Option<String>,
    /// `major.minor.patch`, e.g. `1.0.0`.
    version: String,
    /// Of `rag`, `tools`, `custom_prompt`, `custom_model`, `file_upload`, `voice`,
    /// `multi_agent`; none twice.
    capabilities: Option<Vec<String>>,
    /// What agents made from the package start with (see the function's description).
    #[schema(value_type = Option<Object>)]
    default_config: Option<Value>,
    /// Tool names (lowercase letters, digits and `_`, starting with a letter), at most 50.
    enabled_tools: Option<Vec<String>>,
    /// At most 50,000 characters.
    documentation: Option<String>,
    /// At most 20,000 characters.
    changelog: Option<String>,
    /// At most 255 characters.
    author: Option<String>,
    /// At most 255 characters; default `index.js`.
    entry_point: Option<String>,
    /// The SHA-256 (64 hex digits) the bundle to upload must have.
    package_hash: Option<String>,
}

/// The fields to change; absent fields are kept, `null` clears the text fields.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdatePackageBody {
    name: Option<String>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    documentation: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    author: Option<Option<String>>,
    /// `true` makes it the default package (the previous default stops being one).
    is_default: Option<bool>,
}

/// A new version: absent fields are carried over from the current version.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewVersionBody {
    /// `major.minor.patch`, greater than the current version.
    version: String,
    /// What changed, 1-20,000 characters.
    changelog: String,
    capabilities: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    default_config: Option<Value>,
    enabled_tools: Option<Vec<String>>,
    documentation: Option<String>,
    /// The SHA-256 of this version's bundle, when it has a new one (to upload next). Absent:
    /// the current bundle carries over.
    package_hash: Option<String>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// Filters of the package list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PackageListQuery {
    /// `true`: only active packages; `false`: only deactivated ones (the master admin's to see).
    #[param(value_type = Option<bool>)]
    active: Option<String>,
    /// Part of the name or slug, at most 200 characters.
    q: Option<String>,
}

/// A `major.minor.patch` version and its numbers.
fn version(raw: &str) -> Result<(String, (u64, u64, u64)), ApiError> {
    let v = raw.trim();
    repo::parse_version(v)
        .map(|n| (v.to_string(), n))
        .ok_or_else(|| ApiError::validation("version must be major.minor.patch, e.g. 1.0.0"))
}

fn entry_point(raw: &str) -> Result<String, ApiError> {
    let e = domain::text("entry_point", raw, MAX_ENTRY_POINT)?;
    if e.chars().any(char::is_control) {
        return Err(ApiError::validation("entry_point must not contain control characters"));
    }
    Ok(e)
}

/// Text to set or (`null`) clear.
fn nullable(field: &str, raw: Option<Option<String>>, max: usize) -> Result<Option<Option<String>>, ApiError> {
    match raw {
        Some(Some(s)) => Ok(Some(Some(domain::text(field, &s, max)?))),
        other => Ok(other),
    }
}

/// Checks every key of a default configuration; a bad one is a 400 naming its path
/// (`default_config.escalationRules.sentimentThreshold: must be between -1 and 1`).
fn default_config(raw: Value) -> Result<ConfigInput, ApiError> {
    let Value::Object(object) = raw else {
        return Err(ApiError::validation("default_config must be a JSON object"));
    };
    let mut settings = Map::new();
    let mut tools = None;
    for (key, value) in object {
        let path = format!("default_config.{key}");
        if let Some(column) = Column::ALL.into_iter().find(|c| c.json_name() == key) {
            let checked =
                agent_config::check(column, &value).map_err(|e| ApiError::validation(format!("default_config.{e}")))?;
            settings.insert(key.clone(), checked);
            continue;
        }
        match key.as_str() {
            "enabledTools" => {
                let list: Vec<String> = chatapp::web::from_value(&path, value)?;
                tools = Some(repo::tool_names(&path, list)?);
            }
            "systemPrompt" | "personality" => {
                let max = if key == "systemPrompt" { MAX_SYSTEM_PROMPT } else { MAX_PERSONALITY };
                let Value::String(text) = &value else {
                    return Err(ApiError::validation(format!("{path} must be a string")));
                };
                settings.insert(key.clone(), Value::String(domain::text(&path, text, max)?));
            }
            "ragEnabled" => {
                let Value::Bool(enabled) = value else {
                    return Err(ApiError::validation(format!("{path} must be true or false")));
                };
                settings.insert(key.clone(), Value::Bool(enabled));
            }
            _ => {
                let columns: Vec<&str> = Column::ALL.iter().map(|c| c.json_name()).collect();
                return Err(ApiError::validation(format!(
                    "{path}: unknown key; a default configuration holds {}, {OTHER_KEYS}",
                    columns.join(", ")
                )));
            }
        }
    }
    Ok(ConfigInput { settings, tools })
}

/// The package as `ctx` may see it: without the master-only parts of its default
/// configuration unless `ctx` is the master admin.
fn view(mut p: AgentPackage, ctx: &TenantCtx) -> AgentPackage {
    if !ctx.is_master_admin() {
        repo::hide_master_fields(&mut p.default_config, &p.capabilities);
    }
    p
}

fn audit_entry<'a>(
    action: &'a str,
    id: Uuid,
    before: Option<&AgentPackage>,
    after: Option<&AgentPackage>,
) -> AuditEntry<'a> {
    AuditEntry::change(action, "agent_package", id, before, after)
}

/// A 409 for a slug another package has.
fn slug_taken(e: chatapp::db::DbError) -> ApiError {
    ApiError::conflict_if_unique(e, "slug_taken", "another agent package has this slug")
}

/// Create an agent package (master admin): unpublished and active.
#[utoipa::path(post, path = "/admin/agent-packages", tag = "agent-packages", security(("bearer" = [])),
    request_body = CreatePackageBody,
    responses(
        (status = 201, description = "The created package", body = AgentPackage),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 409, description = "Another package has this slug", body = ErrorBody)))]
async fn create(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(body): JsonBody<CreatePackageBody>,
) -> Result<(StatusCode, Json<AgentPackage>), ApiError> {
    ctx.require_master_admin("manages agent packages")?;
    let name = domain::text("name", &body.name, MAX_NAME)?;
    let slug = domain::Slug::parse("slug", &body.slug)?.as_str().to_string();
    let (version, _) = version(&body.version)?;
    let capabilities = repo::capabilities(body.capabilities.unwrap_or_default())?;
    let config = body.default_config.map(default_config).transpose()?;
    let tools = body.enabled_tools.map(|l| repo::tool_names("enabled_tools", l)).transpose()?;
    let (settings, tools) = repo::settle(config, tools, &json!({}), &json!([]))?;
    repo::check_grants(&capabilities, &settings, &tools)?;
    let fields = PackageFields {
        name,
        slug,
        description: domain::optional_text("description", body.description.as_deref(), MAX_DESCRIPTION)?,
        version,
        package_url: None,
        package_hash: body.package_hash.as_deref().map(repo::package_hash).transpose()?,
        entry_point: body.entry_point.as_deref().map(entry_point).transpose()?,
        package_size: None,
        capabilities: json!(capabilities),
        default_config: Value::Object(settings),
        enabled_tools: json!(tools),
        author: domain::optional_text("author", body.author.as_deref(), MAX_AUTHOR)?,
        documentation: domain::optional_text("documentation", body.documentation.as_deref(), MAX_DOCUMENTATION)?,
        changelog: domain::optional_text("changelog", body.changelog.as_deref(), MAX_CHANGELOG)?,
    };
    let tx = deps.db.begin(&ctx).await?;
    let created = async {
        let package = repo::insert(&tx, &fields).await.map_err(slug_taken)?;
        repo::insert_version(&tx, &package, ctx.user_id()).await?;
        audit::record(&tx, audit_entry("agent_package.create", package.id, None, Some(&package)), &meta).await?;
        Ok::<_, ApiError>(package)
    }
    .await;
    Ok((StatusCode::CREATED, Json(tx.finish(created).await?)))
}

/// List the packages, the default first, then by name: the active, published ones, and for
/// the master admin every package.
#[utoipa::path(get, path = "/admin/agent-packages", tag = "agent-packages", security(("bearer" = [])),
    params(PackageListQuery, PageParams),
    responses((status = 200, description = "One page of packages", body = Paged<AgentPackage>)))]
async fn list(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    page: Page,
    Query(q): Query<PackageListQuery>,
) -> Result<Json<Paged<AgentPackage>>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let active = chatapp::web::bool_param("active", q.active.as_deref())?;
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if search.is_some_and(|s| s.chars().count() > MAX_SEARCH || s.contains('\0')) {
        return Err(ApiError::validation(format!("q must be at most {MAX_SEARCH} characters")));
    }
    let pattern = search.map(|s| format!("%{}%", chatapp::db::like_escape(s)));
    let only_usable = !ctx.is_master_admin();
    let tx = deps.db.begin(&ctx).await?;
    let result =
        repo::list(&tx, active, only_usable, pattern.as_deref(), page.limit, page.offset).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items.into_iter().map(|p| view(p, &ctx)).collect(), page, total)))
}

/// One package (one not active and published for the master admin only).
#[utoipa::path(get, path = "/admin/agent-packages/{id}", tag = "agent-packages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Package id")),
    responses((status = 200, description = "The package", body = AgentPackage),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn get(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<Uuid>,
) -> Result<Json<AgentPackage>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let tx = deps.db.begin(&ctx).await?;
    let found = repo::get(&tx, id).await.map_err(ApiError::from);
    tx.finish(found)
        .await?
        .filter(|p| p.usable() || ctx.is_master_admin())
        .map(|p| Json(view(p, &ctx)))
        .ok_or(ApiError::NotFound)
}

/// Change a package's name, description, documentation or author, or make it the default
/// (master admin).
#[utoipa::path(patch, path = "/admin/agent-packages/{id}", tag = "agent-packages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Package id")),
    request_body = UpdatePackageBody,
    responses((status = 200, description = "The package", body = AgentPackage),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn update(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
    JsonBody(body): JsonBody<UpdatePackageBody>,
) -> Result<Json<AgentPackage>, ApiError> {
    ctx.require_master_admin("manages agent packages")?;
    let name = domain::optional_text("name", body.name.as_deref(), MAX_NAME)?;
    let description = nullable("description", body.description, MAX_DESCRIPTION)?;
    let documentation = nullable("documentation", body.documentation, MAX_DOCUMENTATION)?;
    let author = nullable("author", body.author, MAX_AUTHOR)?;
    let is_default = body.is_default;
    let tx = deps.db.begin(&ctx).await?;
    let updated = async {
        let before = repo::lock(&tx, id).await?.ok_or(ApiError::NotFound)?;
        let mut f = before.fields();
        if let Some(v) = name {
            f.name = v;
        }
        if let Some(v) = description {
            f.description = v;
        }
        if let Some(v) = documentation {
            f.documentation = v;
        }
        if let Some(v) = author {
            f.author = v;
        }
        let mut after = repo::update(&tx, id, &f).await?.ok_or(ApiError::NotFound)?;
        if let Some(d) = is_default {
            after = repo::set_default(&tx, id, d).await?.ok_or(ApiError::NotFound)?;
        }
        audit::record(&tx, audit_entry("agent_package.update", id, Some(&before), Some(&after)), &meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(updated).await?))
}

/// Add a version (master admin): greater than the current one; what it does not give carries
/// over. The package's current fields become the version's; agents already made from the
/// package keep their configuration.
#[utoipa::path(post, path = "/admin/agent-packages/{id}/versions", tag = "agent-packages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Package id")),
    request_body = NewVersionBody,
    responses((status = 201, description = "The new version", body = PackageVersion),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "The package has this version already", body = ErrorBody)))]
async fn create_version(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
    JsonBody(body): JsonBody<NewVersionBody>,
) -> Result<(StatusCode, Json<PackageVersion>), ApiError> {
    ctx.require_master_admin("manages agent packages")?;
    let (new_version, number) = version(&body.version)?;
    let changelog = domain::text("changelog", &body.changelog, MAX_CHANGELOG)?;
    let new_capabilities = body.capabilities.map(repo::capabilities).transpose()?;
    let config = body.default_config.map(default_config).transpose()?;
    let tools = body.enabled_tools.map(|l| repo::tool_names("enabled_tools", l)).transpose()?;
    let documentation = domain::optional_text("documentation", body.documentation.as_deref(), MAX_DOCUMENTATION)?;
    let hash = body.package_hash.as_deref().map(repo::package_hash).transpose()?;
    let tx = deps.db.begin(&ctx).await?;
    let created = async {
        let before = repo::lock(&tx, id).await?.ok_or(ApiError::NotFound)?;
        if repo::parse_version(&before.version).is_some_and(|current| number <= current) {
            return Err(ApiError::validation(format!(
                "version must be greater than the current version {}",
                before.version
            )));
        }
        let caps = new_capabilities.unwrap_or_else(|| repo::strings(&before.capabilities));
        let (settings, tools) = repo::settle(config, tools, &before.default_config, &before.enabled_tools)?;
        repo::check_grants(&caps, &settings, &tools)?;
        repo::ensure_current_version(&tx, id).await?;
        let mut f = before.fields();
        f.version = new_version;
        f.capabilities = json!(caps);
        f.default_config = Value::Object(settings);
        f.enabled_tools = json!(tools);
        f.changelog = Some(changelog);
        if let Some(d) = documentation {
            f.documentation = Some(d);
        }
        if let Some(h) = hash {
            if f.package_hash.as_deref() != Some(h.as_str()) {
                // A new bundle, to upload: the stored one is the previous version's.
                f.package_hash = Some(h);
                f.package_url = None;
                f.package_size = None;
            }
        }
        let after = repo::update(&tx, id, &f).await?.ok_or(ApiError::NotFound)?;
        let version = repo::insert_version(&tx, &after, ctx.user_id())
            .await
            .map_err(|e| ApiError::conflict_if_unique(e, "version_exists", "the package has this version already"))?;
        audit::record(&tx, audit_entry("agent_package.version", id, Some(&before), Some(&after)), &meta).await?;
        Ok::<_, ApiError>(version)
    }
    .await;
    Ok((StatusCode::CREATED, Json(tx.finish(created).await?)))
}

/// A package's versions, newest first.
#[utoipa::path(get, path = "/admin/agent-packages/{id}/versions", tag = "agent-packages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Package id"), PageParams),
    responses((status = 200, description = "One page of versions", body = Paged<PackageVersion>),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn list_versions(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<Uuid>,
    page: Page,
) -> Result<Json<Paged<PackageVersion>>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let package = repo::get(&tx, id).await?.ok_or(ApiError::NotFound)?;
        if !package.usable() && !ctx.is_master_admin() {
            return Err(ApiError::NotFound);
        }
        Ok::<_, ApiError>(repo::list_versions(&tx, id, page.limit, page.offset).await?)
    }
    .await;
    let (mut items, total) = tx.finish(result).await?;
    if !ctx.is_master_admin() {
        for v in &mut items {
            repo::hide_master_fields(&mut v.default_config, &v.capabilities);
        }
    }
    Ok(Json(Paged::new(items, page, total)))
}

/// Publish a package (master admin): companies may make agents from it while it is active. A
/// package declaring a `package_hash` needs its bundle uploaded first (409 `bundle_missing`).
#[utoipa::path(post, path = "/admin/agent-packages/{id}/publish", tag = "agent-packages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Package id")),
    responses((status = 200, description = "The package, published", body = AgentPackage),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "The declared bundle was not uploaded", body = ErrorBody)))]
async fn publish(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
) -> Result<Json<AgentPackage>, ApiError> {
    ctx.require_master_admin("manages agent packages")?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = repo::lock(&tx, id).await?.ok_or(ApiError::NotFound)?;
        if !before.bundle_verified() {
            return Err(ApiError::conflict(
                "bundle_missing",
                format!(
                    "the package declares package_hash {}: upload that bundle (PUT .../bundle) before publishing",
                    before.package_hash.as_deref().unwrap_or_default()
                ),
            ));
        }
        if before.published_at.is_some() {
            return Ok(before);
        }
        let after = repo::publish(&tx, id).await?.ok_or(ApiError::NotFound)?;
        audit::record(&tx, audit_entry("agent_package.publish", id, Some(&before), Some(&after)), &meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}

/// Deactivate a package (master admin): companies no longer see it or make agents from it;
/// agents already made from it keep working.
#[utoipa::path(post, path = "/admin/agent-packages/{id}/deactivate", tag = "agent-packages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Package id")),
    responses((status = 200, description = "The package, inactive", body = AgentPackage),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn deactivate(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
) -> Result<Json<AgentPackage>, ApiError> {
    set_active(&deps, &ctx, &meta, id, false).await
}

/// Activate a deactivated package again (master admin).
#[utoipa::path(post, path = "/admin/agent-packages/{id}/activate", tag = "agent-packages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Package id")),
    responses((status = 200, description = "The package, active", body = AgentPackage),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn activate(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
) -> Result<Json<AgentPackage>, ApiError> {
    set_active(&deps, &ctx, &meta, id, true).await
}

async fn set_active(
    deps: &AppDeps,
    ctx: &TenantCtx,
    meta: &RequestMeta,
    id: Uuid,
    active: bool,
) -> Result<Json<AgentPackage>, ApiError> {
    ctx.require_master_admin("manages agent packages")?;
    let action = if active { "agent_package.activate" } else { "agent_package.deactivate" };
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let before = repo::lock(&tx, id).await?.ok_or(ApiError::NotFound)?;
        if before.is_active == active {
            return Ok(before);
        }
        let after = repo::set_active(&tx, id, active).await?.ok_or(ApiError::NotFound)?;
        audit::record(&tx, audit_entry(action, id, Some(&before), Some(&after)), meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}

/// The stored content type of a bundle: `application/zip` or `application/octet-stream`.
fn bundle_type(headers: &HeaderMap) -> Result<&'static str, ApiError> {
    let raw = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = raw.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/zip" | "application/x-zip-compressed" => Ok("application/zip"),
        "application/octet-stream" => Ok("application/octet-stream"),
        _ => Err(ApiError::bad_request(
            "unsupported_content_type",
            "send the bundle as application/zip or application/octet-stream",
        )),
    }
}

/// Upload the package's bundle (master admin): the raw bytes (`application/zip` or
/// `application/octet-stream`), up to 20 MiB and the deployment's upload limit. Their SHA-256
/// must equal the declared `package_hash` (422 `hash_mismatch`, nothing stored); without one,
/// it becomes the package's. Stored in the blob store under the hash; `package_url` is that
/// object key.
#[utoipa::path(put, path = "/admin/agent-packages/{id}/bundle", tag = "agent-packages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Package id")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The bundle"),
    responses((status = 200, description = "The package with its bundle", body = AgentPackage),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 413, description = "Too large (`bundle_too_large`)", body = ErrorBody),
        (status = 422, description = "Not the declared bundle (`hash_mismatch`)", body = ErrorBody)))]
async fn upload_bundle(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<Uuid>,
    meta: RequestMeta,
    req: Request,
) -> Result<Response, ApiError> {
    ctx.require_master_admin("manages agent packages")?;
    let content_type = bundle_type(req.headers())?;
    let limit = deps.cfg.max_upload_bytes.min(MAX_BUNDLE);
    let bytes = chatapp::web::read_body(req, limit).await.map_err(|e| match e {
        ApiError::PayloadTooLarge { .. } => {
            ApiError::TooLarge { code: "bundle_too_large", message: format!("a bundle is at most {limit} bytes") }
        }
        other => other,
    })?;
    if bytes.is_empty() {
        return Err(ApiError::validation("the request body must be the bundle"));
    }
    let size = i32::try_from(bytes.len()).map_err(ApiError::internal)?;
    let hash = repo::sha256_hex(&bytes);
    let key = repo::bundle_key(&hash)?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = repo::lock(&tx, id).await?.ok_or(ApiError::NotFound)?;
        if let Some(declared) = before.package_hash.as_deref() {
            if declared != hash {
                return Ok(Err(declared.to_string()));
            }
        }
        deps.blobs.put(&key, bytes.clone(), content_type).await?;
        let mut f = before.fields();
        f.package_hash = Some(hash.clone());
        f.package_url = Some(key.full());
        f.package_size = Some(size);
        let after = repo::update(&tx, id, &f).await?.ok_or(ApiError::NotFound)?;
        repo::sync_current_bundle(&tx, id).await?;
        audit::record(&tx, audit_entry("agent_package.bundle", id, Some(&before), Some(&after)), &meta).await?;
        Ok::<_, ApiError>(Ok(after))
    }
    .await;
    match tx.finish(result).await? {
        Ok(after) => Ok(Json(after).into_response()),
        // No ApiError variant answers 422: the error body is written here.
        Err(declared) => {
            let error = ErrorDetail {
                code: "hash_mismatch".into(),
                message: format!("the bundle's SHA-256 is {hash}; the package declares {declared}: nothing was stored"),
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(ErrorBody { error })).into_response())
        }
    }
}

/// Remove a package (master admin), only while no agent was made from it (409
/// `package_in_use`: deactivate it instead). Its versions go with it, and its bundles unless
/// another package names them.
#[utoipa::path(delete, path = "/admin/agent-packages/{id}", tag = "agent-packages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Package id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Agents were made from the package", body = ErrorBody)))]
async fn delete(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    ctx.require_master_admin("manages agent packages")?;
    let tx = deps.db.begin(&ctx).await?;
    let deleted = async {
        let before = repo::lock(&tx, id).await?.ok_or(ApiError::NotFound)?;
        if before.usage_count > 0 || repo::in_use(&tx, id).await? {
            return Err(ApiError::conflict(
                "package_in_use",
                "agents were made from this package: deactivate it instead (they keep working)",
            ));
        }
        let hashes = repo::bundle_hashes(&tx, id).await?;
        repo::delete(&tx, id).await?;
        let mut unused = Vec::with_capacity(hashes.len());
        for hash in hashes {
            if !repo::hash_referenced(&tx, &hash).await? {
                unused.push(hash);
            }
        }
        audit::record(&tx, audit_entry("agent_package.delete", id, Some(&before), None), &meta).await?;
        Ok::<_, ApiError>(unused)
    }
    .await;
    let unused = tx.finish(deleted).await?;
    // After the commit: a bundle is removed only once nothing names it (a failure leaves an
    // unreferenced object behind, logged).
    for hash in unused {
        let removed = match repo::bundle_key(&hash) {
            Ok(key) => deps.blobs.delete(&key).await,
            Err(e) => Err(e),
        };
        if let Err(e) = removed {
            tracing::warn!(%hash, error.chain = %chatapp::error::error_chain(&e), "bundle not deleted");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
