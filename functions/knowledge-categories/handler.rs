//! `knowledge-categories` function: the category tree of a company's knowledge base, and
//! which categories each agent answers from.
//!
//! POST|GET /admin/knowledge/categories · GET|PATCH|DELETE /admin/knowledge/categories/{id}
//! GET|PUT /admin/knowledge/agents/{agent_id}/categories

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::AppDeps;
use chatapp::audit::{self, AuditEntry};
use chatapp::domain::{self, Slug};
use chatapp::ids::{AgentId, CategoryId};
use chatapp::knowledge::service::{self, PurgeTarget};
use chatapp::repo::agent_versions::VersionAction;
use chatapp::repo::{self, knowledge::Category};
use chatapp::routes;
use chatapp::tenant::{Access, Resource};
use chatapp::web::{CompanyParam, IdPath, JsonBody, RequestMeta, Tenant};
use chatapp::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::agents::input;

/// What this function may do on AWS (deleting a category deletes its files' objects at once and relays the purge jobs from the outbox); template.yaml grants exactly this (tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess {
    s3: true,
    send: &[chatapp::adapters::queue::INGEST],
    poll: &[],
    email: false,
};

pub fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(create, list))
        .routes(routes!(get, update, delete))
        .routes(routes!(agent_categories, set_agent_categories))
}

/// A new category.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CategoryBody {
    name: String,
    /// 2-100 characters of `a-z`, `0-9` and inner `-`; made from the name when absent.
    #[schema(value_type = Option<String>)]
    slug: Option<Slug>,
    description: Option<String>,
    /// A category of the same company; absent for the top level.
    parent_id: Option<Uuid>,
    /// -1000000..=1000000 (default 0).
    sort_order: Option<i32>,
}

/// The fields to change; absent fields are kept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CategoryPatch {
    name: Option<String>,
    #[schema(value_type = Option<String>)]
    slug: Option<Slug>,
    description: Option<String>,
    /// `null` moves the category to the top level; absent leaves it where it is.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    parent_id: Option<Option<Uuid>>,
    sort_order: Option<i32>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

struct ValidCategory {
    name: String,
    slug: Slug,
    description: Option<String>,
    parent_id: Option<Uuid>,
    sort_order: i32,
}

fn validate(
    name: &str,
    slug: Option<Slug>,
    description: Option<&str>,
    parent_id: Option<Uuid>,
    sort_order: i32,
) -> Result<ValidCategory, ApiError> {
    let name = domain::text("name", name, 255)?;
    let slug = slug.unwrap_or_else(|| Slug::from_name(&name));
    let description = domain::optional_text("description", description, 5000)?;
    if !(-1_000_000..=1_000_000).contains(&sort_order) {
        return Err(ApiError::validation("sort_order must be between -1000000 and 1000000"));
    }
    Ok(ValidCategory { name, slug, description, parent_id, sort_order })
}

fn fields(v: &ValidCategory) -> repo::knowledge::CategoryFields<'_> {
    repo::knowledge::CategoryFields {
        name: &v.name,
        slug: v.slug.as_str(),
        description: v.description.as_deref(),
        parent_id: v.parent_id,
        sort_order: v.sort_order,
    }
}

fn slug_taken(e: ApiError) -> ApiError {
    match e {
        ApiError::Conflict { .. } => ApiError::conflict("slug_taken", "another category of this company has that slug"),
        other => other,
    }
}

/// Create a category (within the plan's category limit).
#[utoipa::path(post, path = "/admin/knowledge/categories", tag = "knowledge-categories", security(("bearer" = [])),
    params(CompanyParam), request_body = CategoryBody,
    responses((status = 201, description = "The created category", body = Category)))]
async fn create(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(body): JsonBody<CategoryBody>,
) -> Result<(StatusCode, Json<Category>), ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let valid =
        validate(&body.name, body.slug, body.description.as_deref(), body.parent_id, body.sort_order.unwrap_or(0))?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let limits = repo::plans::limits(&tx, company).await?;
        if let Some(max) = repo::plans::limit_of(&limits, "knowledgeCategories") {
            if repo::knowledge::count_categories(&tx, company).await? >= max {
                return Err(ApiError::PaymentRequired {
                    code: "plan_limit_reached",
                    message: format!("your plan allows {max} knowledge categories; upgrade to add more"),
                });
            }
        }
        if let Some(parent) = valid.parent_id {
            repo::knowledge::get_category(&tx, company, parent)
                .await?
                .ok_or_else(|| ApiError::validation("parent_id does not name a category of this company"))?;
        }
        let created = repo::knowledge::create_category(&tx, company, &fields(&valid)).await.map_err(ApiError::from);
        let created = created.map_err(slug_taken)?;
        audit::record(
            &tx,
            AuditEntry {
                action: "knowledge_category.create",
                resource_type: "knowledge_category",
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

/// A category with its subcategories.
#[derive(Serialize, ToSchema)]
struct CategoryNode {
    #[serde(flatten)]
    category: Category,
    #[schema(no_recursion)]
    children: Vec<CategoryNode>,
}

/// The whole category tree; `total` counts every category, nested ones included.
#[derive(Serialize, ToSchema)]
struct CategoryTree {
    items: Vec<CategoryNode>,
    total: usize,
}

/// Nests categories under their parents, keeping each level's order.
fn tree(all: Vec<Category>) -> Vec<CategoryNode> {
    fn build(parent: Option<Uuid>, all: &[Category]) -> Vec<CategoryNode> {
        all.iter()
            .filter(|c| c.parent_id == parent)
            .map(|c| CategoryNode { category: c.clone(), children: build(Some(c.id), all) })
            .collect()
    }
    // A parent outside the list cannot happen (same-company FK), but keep such rows visible.
    let ids: std::collections::HashSet<Uuid> = all.iter().map(|c| c.id).collect();
    let mut roots = build(None, &all);
    for orphan in all.iter().filter(|c| c.parent_id.is_some_and(|p| !ids.contains(&p))) {
        roots.push(CategoryNode { category: orphan.clone(), children: build(Some(orphan.id), &all) });
    }
    roots
}

/// The company's categories as a tree, each level in sort order.
#[utoipa::path(get, path = "/admin/knowledge/categories", tag = "knowledge-categories", security(("bearer" = [])),
    params(CompanyParam),
    responses((status = 200, description = "The category tree", body = CategoryTree)))]
async fn list(State(deps): State<AppDeps>, Tenant(ctx): Tenant) -> Result<Json<CategoryTree>, ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::knowledge::list_categories(&tx, company).await.map_err(ApiError::from);
    let all = tx.finish(result).await?;
    let total = all.len();
    Ok(Json(CategoryTree { items: tree(all), total }))
}

/// One category of the company.
#[utoipa::path(get, path = "/admin/knowledge/categories/{id}", tag = "knowledge-categories", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Category id"), CompanyParam),
    responses((status = 200, description = "The category", body = Category)))]
async fn get(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<CategoryId>,
) -> Result<Json<Category>, ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::knowledge::get_category(&tx, company, id.as_uuid()).await.map_err(ApiError::from);
    Ok(Json(tx.finish(result).await?.ok_or(ApiError::NotFound)?))
}

/// Rename, re-slug, describe, move or reorder a category.
#[utoipa::path(patch, path = "/admin/knowledge/categories/{id}", tag = "knowledge-categories", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Category id"), CompanyParam), request_body = CategoryPatch,
    responses((status = 200, description = "The updated category", body = Category)))]
async fn update(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<CategoryId>,
    meta: RequestMeta,
    JsonBody(patch): JsonBody<CategoryPatch>,
) -> Result<Json<Category>, ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = repo::knowledge::get_category(&tx, company, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        let parent_id = patch.parent_id.unwrap_or(before.parent_id);
        let slug = match patch.slug.clone() {
            Some(s) => s,
            None => Slug::parse("slug", &before.slug)?,
        };
        let valid = validate(
            patch.name.as_deref().unwrap_or(&before.name),
            Some(slug),
            patch.description.as_deref().or(before.description.as_deref()),
            parent_id,
            patch.sort_order.unwrap_or(before.sort_order),
        )?;
        if let Some(parent) = parent_id {
            if repo::knowledge::get_category(&tx, company, parent).await?.is_none() {
                return Err(ApiError::validation("parent_id does not name a category of this company"));
            }
            if repo::knowledge::would_cycle(&tx, company, id.as_uuid(), parent).await? {
                return Err(ApiError::validation("a category cannot be moved under itself or its descendants"));
            }
        }
        let after = repo::knowledge::update_category(&tx, company, id.as_uuid(), &fields(&valid))
            .await
            .map_err(ApiError::from)
            .map_err(slug_taken)?
            .ok_or(ApiError::NotFound)?;
        audit::record(
            &tx,
            AuditEntry {
                action: "knowledge_category.update",
                resource_type: "knowledge_category",
                resource_id: Some(id.as_uuid()),
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

/// Delete a category and the knowledge filed under it; its subcategories move to the top level.
///
/// The knowledge deleted: files, their objects, articles, chunks and vectors.
#[utoipa::path(delete, path = "/admin/knowledge/categories/{id}", tag = "knowledge-categories", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Category id"), CompanyParam),
    responses((status = 204, description = "Deleted")))]
async fn delete(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<CategoryId>,
    meta: RequestMeta,
) -> Result<StatusCode, ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = repo::knowledge::get_category(&tx, cid, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        // The agents answering from it lose it: a change of their configuration, so a version.
        let agents = repo::agents::lock_with_category(&tx, cid, id.as_uuid()).await?;
        let files = repo::knowledge::files_in_category(&tx, cid, id.as_uuid()).await?;
        let articles = repo::knowledge::articles_in_category(&tx, cid, id.as_uuid()).await?;
        for f in &files {
            repo::knowledge::delete_file(&tx, cid, f.id).await?;
        }
        for a in &articles {
            repo::knowledge::delete_article(&tx, cid, *a).await?;
        }
        repo::knowledge::delete_category(&tx, cid, id.as_uuid()).await?;
        let note = format!("knowledge category {} deleted", before.name);
        for agent in &agents {
            let before_config = agent.fields().to_config();
            let mut after = repo::agents::get(&tx, cid, agent.id).await?.ok_or(ApiError::NotFound)?;
            crate::agents::versions::record(
                &tx,
                &ctx,
                Some(&before_config),
                &mut after,
                VersionAction::Update,
                Some(&note),
            )
            .await?;
        }
        let targets: Vec<PurgeTarget> = files
            .iter()
            .map(|f| PurgeTarget::File(f.id))
            .chain(articles.iter().map(|a| PurgeTarget::Article(*a)))
            .chain([PurgeTarget::Category(id.as_uuid())])
            .collect();
        for target in &targets {
            service::queue_purge(&tx, company, *target).await?;
        }
        audit::record(
            &tx,
            AuditEntry {
                action: "knowledge_category.delete",
                resource_type: "knowledge_category",
                resource_id: Some(id.as_uuid()),
                before: Some(json!({"category": before, "files": files.len(), "articles": articles.len()})),
                after: None,
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(targets)
    }
    .await;
    let targets = tx.finish(result).await?;
    service::purge_after_commit(&deps, company, &targets).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The categories an agent answers from.
#[derive(Serialize, ToSchema)]
struct AgentCategories {
    agent_id: Uuid,
    category_ids: Vec<Uuid>,
}

/// The categories an agent answers from.
#[utoipa::path(get, path = "/admin/knowledge/agents/{agent_id}/categories", tag = "knowledge-categories", security(("bearer" = [])),
    params(("agent_id" = Uuid, Path, description = "Agent id"), CompanyParam),
    responses((status = 200, description = "The agent's categories", body = AgentCategories)))]
async fn agent_categories(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(agent): IdPath<AgentId>,
) -> Result<Json<AgentCategories>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::knowledge::agent_categories(&tx, company, agent.as_uuid()).await.map_err(ApiError::from);
    let ids = tx.finish(result).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(AgentCategories { agent_id: agent.as_uuid(), category_ids: ids }))
}

/// The whole set of categories the agent answers from (replaces the current set).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AgentCategoriesBody {
    /// Categories of this company; at most 1000 (duplicates are ignored).
    category_ids: Vec<Uuid>,
}

/// Replace the categories an agent answers from.
#[utoipa::path(put, path = "/admin/knowledge/agents/{agent_id}/categories", tag = "knowledge-categories", security(("bearer" = [])),
    params(("agent_id" = Uuid, Path, description = "Agent id"), CompanyParam), request_body = AgentCategoriesBody,
    responses((status = 200, description = "The agent's categories", body = AgentCategories)))]
async fn set_agent_categories(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(agent): IdPath<AgentId>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<AgentCategoriesBody>,
) -> Result<Json<AgentCategories>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    ctx.authorize(Resource::Knowledge, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let ids = input::category_set("category_ids", body.category_ids)?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let locked = repo::agents::lock(&tx, company, agent.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        let before = locked.knowledge_category_ids.clone();
        // The categories are part of the agent's configuration: the change is a new version (the
        // draft's), served to customers once published.
        let before_fields = locked.fields();
        let before_config = before_fields.to_config();
        let mut fields = before_fields.clone();
        fields.knowledge_category_ids = ids.clone();
        input::check_categories(&tx, company, "category_ids", Some(&before_fields), &fields).await?;
        let mut after =
            repo::agents::update(&tx, company, agent.as_uuid(), &fields).await?.ok_or(ApiError::NotFound)?;
        crate::agents::versions::record(&tx, &ctx, Some(&before_config), &mut after, VersionAction::Update, None)
            .await?;
        audit::record(
            &tx,
            AuditEntry {
                action: "agent.knowledge_categories.set",
                resource_type: "agent",
                resource_id: Some(agent.as_uuid()),
                before: Some(json!({"category_ids": before})),
                after: Some(json!({"category_ids": ids})),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(AgentCategories { agent_id: agent.as_uuid(), category_ids: ids })
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}
