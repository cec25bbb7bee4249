//! `knowledge-articles` function: text knowledge written in the dashboard, no file needed.
//! Published articles are chunked, embedded and searched like files.
//!
//! POST|GET /admin/knowledge/articles · GET|PATCH|DELETE /admin/knowledge/articles/{id}
//! POST /admin/knowledge/articles/{id}/publish · POST /admin/knowledge/articles/{id}/unpublish

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Json;
use chatapp::adapters::queue::INGEST;
use chatapp::app::AppDeps;
use chatapp::audit::{self, AuditEntry};
use chatapp::db::TenantTx;
use chatapp::domain;
use chatapp::ids::ArticleId;
use chatapp::knowledge::service::{self, IngestJob, PurgeTarget};
use chatapp::repo::{self, knowledge::Article, knowledge::ArticleFields};
use chatapp::routes;
use chatapp::status::ArticleStatus;
use chatapp::tenant::{Access, CompanyId, Resource};
use chatapp::web::{CompanyParam, IdPath, Page, PageParams, Paged, RequestMeta, Tenant};
use chatapp::{ApiError, TenantCtx};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

/// Articles may be long; JSON bodies elsewhere stay at the configured (smaller) limit.
const MAX_ARTICLE_BODY: usize = 512 * 1024;
const MAX_CONTENT_CHARS: usize = 200_000;

/// What this function may do on AWS (publishing queues ingestion; deletes purge at once and relay their purge jobs from the outbox); template.yaml grants exactly this (tests/iam.rs).
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
        .routes(routes!(publish))
        .routes(routes!(unpublish))
}

/// An article body (up to 512 KiB of JSON, unlike other bodies).
async fn article_json<T: serde::de::DeserializeOwned>(req: Request) -> Result<T, ApiError> {
    let bytes = chatapp::web::read_body(req, MAX_ARTICLE_BODY).await?;
    chatapp::web::parse_json(&bytes)
}

/// A new article.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ArticleBody {
    /// At most 255 characters.
    title: String,
    /// At most 200000 characters.
    content: String,
    /// A category of this company.
    category_id: Option<Uuid>,
    /// At most 50, each at most 50 characters.
    #[serde(default)]
    tags: Vec<String>,
    /// Publish (and index) right away.
    #[serde(default)]
    publish: bool,
}

/// The fields to change; absent fields are kept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ArticlePatch {
    title: Option<String>,
    content: Option<String>,
    category_id: Option<Uuid>,
    tags: Option<Vec<String>>,
}

struct Valid {
    title: String,
    content: String,
    category_id: Option<Uuid>,
    tags: Value,
}

fn validate(title: &str, content: &str, category_id: Option<Uuid>, tags: &[String]) -> Result<Valid, ApiError> {
    let title = domain::text("title", title, 255)?;
    let content = domain::text("content", content, MAX_CONTENT_CHARS)?;
    if tags.len() > 50 {
        return Err(ApiError::validation("at most 50 tags"));
    }
    let tags: Vec<String> = tags.iter().map(|t| domain::text("tags[]", t, 50)).collect::<Result<_, _>>()?;
    Ok(Valid { title, content, category_id, tags: json!(tags) })
}

async fn check_category(tx: &TenantTx, company: Uuid, category: Option<Uuid>) -> Result<(), ApiError> {
    if let Some(c) = category {
        repo::knowledge::get_category(tx, company, c)
            .await?
            .ok_or_else(|| ApiError::validation("category_id does not name a category of this company"))?;
    }
    Ok(())
}

/// Writes the article's ingest job to the outbox in the transaction that publishes it (or
/// changes it while published); [`relay`] sends it after the commit, when a worker can see the row.
async fn enqueue(tx: &TenantTx, company: CompanyId, article: ArticleId) -> Result<(), ApiError> {
    chatapp::outbox::add(tx, INGEST, &IngestJob::article(company, article.as_uuid()).to_json()).await?;
    Ok(())
}

/// Sends the committed ingest jobs (the outbox sweep sends them if this does not).
async fn relay(deps: &AppDeps) {
    chatapp::outbox::relay_now(deps, &[INGEST]).await;
}

/// Write an article; published ones are indexed for search.
#[utoipa::path(post, path = "/admin/knowledge/articles", tag = "knowledge-articles", security(("bearer" = [])),
    params(CompanyParam), request_body = ArticleBody,
    responses((status = 201, description = "The created article", body = Article)))]
async fn create(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    req: Request,
) -> Result<(StatusCode, Json<Article>), ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let body: ArticleBody = article_json(req).await?;
    let v = validate(&body.title, &body.content, body.category_id, &body.tags)?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        check_category(&tx, cid, v.category_id).await?;
        let fields = ArticleFields { category_id: v.category_id, title: &v.title, content: &v.content, tags: &v.tags };
        let mut article = repo::knowledge::create_article(&tx, cid, &fields, ctx.user_id()).await?;
        if body.publish {
            article = repo::knowledge::set_article_status(&tx, cid, article.id, ArticleStatus::Published)
                .await?
                .ok_or(ApiError::NotFound)?;
        }
        audit::record(
            &tx,
            AuditEntry {
                action: "knowledge_article.create",
                resource_type: "knowledge_article",
                resource_id: Some(article.id),
                before: None,
                after: Some(
                    json!({"title": article.title, "status": article.status, "category_id": article.category_id}),
                ),
            },
            &meta,
        )
        .await?;
        if article.status == ArticleStatus::Published {
            enqueue(&tx, company, ArticleId::new(article.id)).await?;
        }
        Ok::<_, ApiError>(article)
    }
    .await;
    let article = tx.finish(result).await?;
    relay(&deps).await;
    Ok((StatusCode::CREATED, Json(article)))
}

/// Edit an article; a published one is re-indexed.
#[utoipa::path(patch, path = "/admin/knowledge/articles/{id}", tag = "knowledge-articles", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Article id"), CompanyParam), request_body = ArticlePatch,
    responses((status = 200, description = "The updated article", body = Article)))]
async fn update(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ArticleId>,
    meta: RequestMeta,
    req: Request,
) -> Result<Json<Article>, ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let patch: ArticlePatch = article_json(req).await?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = repo::knowledge::get_article(&tx, cid, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        let old_tags: Vec<String> = serde_json::from_value(before.tags.clone()).unwrap_or_default();
        let v = validate(
            patch.title.as_deref().unwrap_or(&before.title),
            patch.content.as_deref().unwrap_or(&before.content),
            patch.category_id.or(before.category_id),
            patch.tags.as_deref().unwrap_or(&old_tags),
        )?;
        check_category(&tx, cid, v.category_id).await?;
        let fields = ArticleFields { category_id: v.category_id, title: &v.title, content: &v.content, tags: &v.tags };
        let after = repo::knowledge::update_article(&tx, cid, id.as_uuid(), &fields, ctx.user_id())
            .await?
            .ok_or(ApiError::NotFound)?;
        audit::record(
            &tx,
            AuditEntry {
                action: "knowledge_article.update",
                resource_type: "knowledge_article",
                resource_id: Some(id.as_uuid()),
                before: Some(json!({"title": before.title, "category_id": before.category_id, "tags": before.tags})),
                after: Some(json!({"title": after.title, "category_id": after.category_id, "tags": after.tags})),
            },
            &meta,
        )
        .await?;
        if after.status == ArticleStatus::Published {
            enqueue(&tx, company, id).await?;
        }
        Ok::<_, ApiError>(after)
    }
    .await;
    let after = tx.finish(result).await?;
    relay(&deps).await;
    Ok(Json(after))
}

/// Publish an article: it is indexed and becomes searchable.
#[utoipa::path(post, path = "/admin/knowledge/articles/{id}/publish", tag = "knowledge-articles", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Article id"), CompanyParam),
    responses((status = 200, description = "The published article", body = Article)))]
async fn publish(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ArticleId>,
    meta: RequestMeta,
) -> Result<Json<Article>, ApiError> {
    set_published(&deps, &ctx, &meta, id, true).await
}

/// Unpublish an article: it leaves search at once.
#[utoipa::path(post, path = "/admin/knowledge/articles/{id}/unpublish", tag = "knowledge-articles", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Article id"), CompanyParam),
    responses((status = 200, description = "The unpublished (draft) article", body = Article)))]
async fn unpublish(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ArticleId>,
    meta: RequestMeta,
) -> Result<Json<Article>, ApiError> {
    set_published(&deps, &ctx, &meta, id, false).await
}

async fn set_published(
    deps: &AppDeps,
    ctx: &TenantCtx,
    meta: &RequestMeta,
    id: ArticleId,
    published: bool,
) -> Result<Json<Article>, ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let before = repo::knowledge::get_article(&tx, cid, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        let status = if published { ArticleStatus::Published } else { ArticleStatus::Draft };
        let after =
            repo::knowledge::set_article_status(&tx, cid, id.as_uuid(), status).await?.ok_or(ApiError::NotFound)?;
        audit::record(
            &tx,
            AuditEntry {
                action: if published { "knowledge_article.publish" } else { "knowledge_article.unpublish" },
                resource_type: "knowledge_article",
                resource_id: Some(id.as_uuid()),
                before: Some(json!({"status": before.status})),
                after: Some(json!({"status": after.status})),
            },
            meta,
        )
        .await?;
        if published {
            enqueue(&tx, company, id).await?;
        }
        Ok::<_, ApiError>(after)
    }
    .await;
    let after = tx.finish(result).await?;
    if published {
        relay(deps).await;
    } else {
        // Out of search at once, not when a worker gets round to it.
        service::remove_article_chunks(deps, ctx, id.as_uuid()).await.map_err(ApiError::internal)?;
    }
    Ok(Json(after))
}

/// List the company's articles, most recently updated first.
#[utoipa::path(get, path = "/admin/knowledge/articles", tag = "knowledge-articles", security(("bearer" = [])),
    params(PageParams, CompanyParam),
    responses((status = 200, description = "One page of articles", body = Paged<Article>)))]
async fn list(State(deps): State<AppDeps>, Tenant(ctx): Tenant, page: Page) -> Result<Json<Paged<Article>>, ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::knowledge::list_articles(&tx, company, page).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items, page, total)))
}

/// One article of the company.
#[utoipa::path(get, path = "/admin/knowledge/articles/{id}", tag = "knowledge-articles", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Article id"), CompanyParam),
    responses((status = 200, description = "The article", body = Article)))]
async fn get(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ArticleId>,
) -> Result<Json<Article>, ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::knowledge::get_article(&tx, company, id.as_uuid()).await.map_err(ApiError::from);
    Ok(Json(tx.finish(result).await?.ok_or(ApiError::NotFound)?))
}

/// Delete an article with its chunks and vectors.
#[utoipa::path(delete, path = "/admin/knowledge/articles/{id}", tag = "knowledge-articles", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Article id"), CompanyParam),
    responses((status = 204, description = "Deleted")))]
async fn delete(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ArticleId>,
    meta: RequestMeta,
) -> Result<StatusCode, ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = repo::knowledge::get_article(&tx, cid, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        repo::knowledge::delete_article(&tx, cid, id.as_uuid()).await?;
        service::queue_purge(&tx, company, PurgeTarget::Article(id.as_uuid())).await?;
        audit::record(
            &tx,
            AuditEntry {
                action: "knowledge_article.delete",
                resource_type: "knowledge_article",
                resource_id: Some(id.as_uuid()),
                before: Some(json!({"title": before.title, "status": before.status})),
                after: None,
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    tx.finish(result).await?;
    service::purge_after_commit(&deps, company, &[PurgeTarget::Article(id.as_uuid())]).await;
    Ok(StatusCode::NO_CONTENT)
}
