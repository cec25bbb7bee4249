//! `api-keys` function: keys for the custom channel and integrations.
//!
//! POST /admin/api-keys · GET /admin/api-keys · DELETE /admin/api-keys/{id} (revoke)

use chatapp::app::AppDeps;
use chatapp::audit::{self, AuditEntry};
use chatapp::auth::tokens;
use chatapp::domain;
use chatapp::http::{self, HandlerResult, Page, Paged, RequestMeta};
use chatapp::repo;
use chatapp::tenant::{Access, Resource, API_KEY_SCOPES};
use chatapp::{ApiError, TenantCtx};
use chrono::{DateTime, Utc};
use lambda_http::Request;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

const PREFIX: &str = "/admin/api-keys";

pub async fn handle(deps: &AppDeps, req: Request) -> HandlerResult {
    let path = req.uri().path().to_string();
    let segs = http::segments_after(&path, PREFIX).ok_or(ApiError::NotFound)?;
    let ctx = deps.auth.authenticate(&req).await?.acting_for(http::company_param(&req)?);
    match (req.method().as_str(), segs.as_slice()) {
        ("POST", []) => create(deps, &ctx, &req).await,
        ("GET", []) => list(deps, &ctx, &req).await,
        ("DELETE", [id]) => revoke(deps, &ctx, &req, http::path_id(id)?).await,
        (_, [] | [_]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
    rate_limit: Option<i32>,
}

/// Keys are managed by users only: a key cannot mint or revoke keys.
fn require_user(ctx: &TenantCtx) -> Result<(), ApiError> {
    ctx.user_id().map(|_| ()).ok_or_else(|| ApiError::forbidden("forbidden", "API keys are managed by signed-in users"))
}

async fn create(deps: &AppDeps, ctx: &TenantCtx, req: &Request) -> HandlerResult {
    require_user(ctx)?;
    ctx.authorize(Resource::ApiKeys, Access::Write)?;
    let company = ctx.require_company()?;
    let body: CreateBody = http::parse_json(req, deps.cfg.max_body_bytes)?;
    let name = domain::text("name", &body.name, 255)?;
    if body.scopes.is_empty() {
        return Err(ApiError::validation("scopes must name at least one scope"));
    }
    if let Some(bad) = body.scopes.iter().find(|s| !API_KEY_SCOPES.contains(&s.as_str())) {
        return Err(ApiError::validation(format!("unknown scope {bad:?}; known: {}", API_KEY_SCOPES.join(", "))));
    }
    if body.expires_at.is_some_and(|t| t <= Utc::now()) {
        return Err(ApiError::validation("expires_at must be in the future"));
    }
    let rate_limit = body.rate_limit.unwrap_or(100);
    if !(1..=100_000).contains(&rate_limit) {
        return Err(ApiError::validation("rate_limit must be 1..=100000 requests per minute"));
    }
    let mut scopes = body.scopes;
    scopes.sort();
    scopes.dedup();
    let scopes = json!(scopes);
    let meta = RequestMeta::from_request(req);
    let key = tokens::new_api_key();
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let stored = repo::api_keys::create(
            &tx,
            &repo::api_keys::NewApiKey {
                company_id: company.as_uuid(),
                name: &name,
                prefix: &key.prefix,
                hash: &key.hash,
                scopes: &scopes,
                rate_limit,
                expires_at: body.expires_at,
            },
        )
        .await?;
        audit::record(
            &tx,
            AuditEntry {
                action: "api_key.create",
                resource_type: "api_key",
                resource_id: Some(stored.id),
                before: None,
                after: Some(json!(stored)),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(json!({"api_key": stored, "key": key.full_key}))
    }
    .await;
    http::created(&tx.finish(result).await?)
}

async fn list(deps: &AppDeps, ctx: &TenantCtx, req: &Request) -> HandlerResult {
    ctx.authorize(Resource::ApiKeys, Access::Read)?;
    let company = ctx.require_company()?;
    let page = Page::from_request(req)?;
    let tx = deps.db.begin(ctx).await?;
    let result = repo::api_keys::list(&tx, company.as_uuid(), page).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    http::ok(&Paged { items, limit: page.limit, offset: page.offset, total })
}

async fn revoke(deps: &AppDeps, ctx: &TenantCtx, req: &Request, id: Uuid) -> HandlerResult {
    require_user(ctx)?;
    ctx.authorize(Resource::ApiKeys, Access::Write)?;
    let company = ctx.require_company()?;
    let meta = RequestMeta::from_request(req);
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let before = repo::api_keys::get(&tx, company.as_uuid(), id).await?.ok_or(ApiError::NotFound)?;
        let after = repo::api_keys::revoke(&tx, company.as_uuid(), id).await?.ok_or(ApiError::NotFound)?;
        audit::record(
            &tx,
            AuditEntry {
                action: "api_key.revoke",
                resource_type: "api_key",
                resource_id: Some(id),
                before: Some(json!({"is_active": before.is_active, "revoked_at": before.revoked_at})),
                after: Some(json!({"is_active": after.is_active, "revoked_at": after.revoked_at})),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    http::ok(&tx.finish(result).await?)
}
