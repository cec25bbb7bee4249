//! `knowledge-articles` function: text knowledge written in the dashboard, no file needed.
//! Published articles are chunked, embedded and searched like files.
//!
//! POST|GET /admin/knowledge/articles · GET|PATCH|DELETE /admin/knowledge/articles/{id}
//! POST /admin/knowledge/articles/{id}/publish · POST /admin/knowledge/articles/{id}/unpublish

use chatapp::adapters::queue::INGEST;
use chatapp::app::AppDeps;
use chatapp::audit::{self, AuditEntry};
use chatapp::db::TenantTx;
use chatapp::domain;
use chatapp::http::{self, HandlerResult, Page, Paged, RequestMeta};
use chatapp::knowledge::service::{self, IngestJob, PurgeTarget};
use chatapp::repo::{self, knowledge::ArticleFields};
use chatapp::tenant::{Access, CompanyId, Resource};
use chatapp::{ApiError, TenantCtx};
use lambda_http::Request;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

const PREFIX: &str = "/admin/knowledge/articles";
/// Articles may be long; JSON bodies elsewhere stay at the configured (smaller) limit.
const MAX_ARTICLE_BODY: usize = 512 * 1024;
const MAX_CONTENT_CHARS: usize = 200_000;

pub async fn handle(deps: &AppDeps, req: Request) -> HandlerResult {
    let path = req.uri().path().to_string();
    let segs = http::segments_after(&path, PREFIX).ok_or(ApiError::NotFound)?;
    let ctx = deps.auth.authenticate(&req).await?.acting_for(http::company_param(&req)?);
    match (req.method().as_str(), segs.as_slice()) {
        ("POST", []) => create(deps, &ctx, &req).await,
        ("GET", []) => list(deps, &ctx, &req).await,
        ("GET", [id]) => get(deps, &ctx, http::path_id(id)?).await,
        ("PATCH", [id]) => update(deps, &ctx, &req, http::path_id(id)?).await,
        ("DELETE", [id]) => delete(deps, &ctx, &req, http::path_id(id)?).await,
        ("POST", [id, "publish"]) => set_published(deps, &ctx, &req, http::path_id(id)?, true).await,
        ("POST", [id, "unpublish"]) => set_published(deps, &ctx, &req, http::path_id(id)?, false).await,
        (_, [] | [_] | [_, "publish" | "unpublish"]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArticleBody {
    title: String,
    content: String,
    category_id: Option<Uuid>,
    #[serde(default)]
    tags: Vec<String>,
    /// Publish (and index) right away.
    #[serde(default)]
    publish: bool,
}

#[derive(Deserialize)]
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

async fn enqueue(deps: &AppDeps, company: CompanyId, article: Uuid) -> Result<(), ApiError> {
    deps.queue.send(INGEST, &IngestJob::article(company, article).to_json()).await.map_err(ApiError::internal)?;
    Ok(())
}

async fn create(deps: &AppDeps, ctx: &TenantCtx, req: &Request) -> HandlerResult {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let body: ArticleBody = http::parse_json(req, MAX_ARTICLE_BODY)?;
    let v = validate(&body.title, &body.content, body.category_id, &body.tags)?;
    let meta = RequestMeta::from_request(req);
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        check_category(&tx, cid, v.category_id).await?;
        let fields = ArticleFields { category_id: v.category_id, title: &v.title, content: &v.content, tags: &v.tags };
        let mut article = repo::knowledge::create_article(&tx, cid, &fields, ctx.user_id()).await?;
        if body.publish {
            article =
                repo::knowledge::set_article_status(&tx, cid, article.id, true).await?.ok_or(ApiError::NotFound)?;
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
        Ok::<_, ApiError>(article)
    }
    .await;
    let article = tx.finish(result).await?;
    // After the commit: a worker must see the published row.
    if article.status == "published" {
        enqueue(deps, company, article.id).await?;
    }
    http::created(&article)
}

async fn update(deps: &AppDeps, ctx: &TenantCtx, req: &Request, id: Uuid) -> HandlerResult {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let patch: ArticlePatch = http::parse_json(req, MAX_ARTICLE_BODY)?;
    let meta = RequestMeta::from_request(req);
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let before = repo::knowledge::get_article(&tx, cid, id).await?.ok_or(ApiError::NotFound)?;
        let old_tags: Vec<String> = serde_json::from_value(before.tags.clone()).unwrap_or_default();
        let v = validate(
            patch.title.as_deref().unwrap_or(&before.title),
            patch.content.as_deref().unwrap_or(&before.content),
            patch.category_id.or(before.category_id),
            patch.tags.as_deref().unwrap_or(&old_tags),
        )?;
        check_category(&tx, cid, v.category_id).await?;
        let fields = ArticleFields { category_id: v.category_id, title: &v.title, content: &v.content, tags: &v.tags };
        let after =
            repo::knowledge::update_article(&tx, cid, id, &fields, ctx.user_id()).await?.ok_or(ApiError::NotFound)?;
        audit::record(
            &tx,
            AuditEntry {
                action: "knowledge_article.update",
                resource_type: "knowledge_article",
                resource_id: Some(id),
                before: Some(json!({"title": before.title, "category_id": before.category_id, "tags": before.tags})),
                after: Some(json!({"title": after.title, "category_id": after.category_id, "tags": after.tags})),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    let after = tx.finish(result).await?;
    if after.status == "published" {
        enqueue(deps, company, id).await?;
    }
    http::ok(&after)
}

async fn set_published(deps: &AppDeps, ctx: &TenantCtx, req: &Request, id: Uuid, published: bool) -> HandlerResult {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let meta = RequestMeta::from_request(req);
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let before = repo::knowledge::get_article(&tx, cid, id).await?.ok_or(ApiError::NotFound)?;
        let after = repo::knowledge::set_article_status(&tx, cid, id, published).await?.ok_or(ApiError::NotFound)?;
        audit::record(
            &tx,
            AuditEntry {
                action: if published { "knowledge_article.publish" } else { "knowledge_article.unpublish" },
                resource_type: "knowledge_article",
                resource_id: Some(id),
                before: Some(json!({"status": before.status})),
                after: Some(json!({"status": after.status})),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    let after = tx.finish(result).await?;
    if published {
        enqueue(deps, company, id).await?;
    } else {
        // Out of search at once, not when a worker gets round to it.
        service::remove_article_chunks(deps, ctx, id).await.map_err(ApiError::internal)?;
    }
    http::ok(&after)
}

async fn list(deps: &AppDeps, ctx: &TenantCtx, req: &Request) -> HandlerResult {
    ctx.authorize(Resource::Knowledge, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let page = Page::from_request(req)?;
    let tx = deps.db.begin(ctx).await?;
    let result = repo::knowledge::list_articles(&tx, company, page).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    http::ok(&Paged { items, limit: page.limit, offset: page.offset, total })
}

async fn get(deps: &AppDeps, ctx: &TenantCtx, id: Uuid) -> HandlerResult {
    ctx.authorize(Resource::Knowledge, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(ctx).await?;
    let result = repo::knowledge::get_article(&tx, company, id).await.map_err(ApiError::from);
    http::ok(&tx.finish(result).await?.ok_or(ApiError::NotFound)?)
}

async fn delete(deps: &AppDeps, ctx: &TenantCtx, req: &Request, id: Uuid) -> HandlerResult {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let meta = RequestMeta::from_request(req);
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let before = repo::knowledge::get_article(&tx, cid, id).await?.ok_or(ApiError::NotFound)?;
        repo::knowledge::delete_article(&tx, cid, id).await?;
        audit::record(
            &tx,
            AuditEntry {
                action: "knowledge_article.delete",
                resource_type: "knowledge_article",
                resource_id: Some(id),
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
    service::purge_or_enqueue(deps, company, PurgeTarget::Article(id)).await.map_err(ApiError::internal)?;
    http::no_content()
}
