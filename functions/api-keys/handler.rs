//! `api-keys` function: keys for the custom channel and integrations.
//!
//! POST /admin/api-keys · GET /admin/api-keys · DELETE /admin/api-keys/{id} (revoke)

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::Core;
use chatapp::audit::{self, AuditEntry};
use chatapp::auth::tokens;
use chatapp::domain;
use chatapp::ids::ApiKeyId;
use chatapp::repo::{self, api_keys::ApiKey};
use chatapp::routes;
use chatapp::tenant::{Access, Resource, API_KEY_SCOPES};
use chatapp::web::{CompanyParam, IdPath, JsonBody, Page, PageParams, Paged, RequestMeta, Tenant};
use chatapp::{ApiError, TenantCtx};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

/// What this function may do on AWS: nothing (template.yaml gives it no policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

pub fn routes() -> OpenApiRouter<Core> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base()).routes(routes!(create, list)).routes(routes!(revoke))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateApiKeyBody {
    name: String,
    /// `<access>:<resource>` scopes, e.g. `read:team`; at least one.
    scopes: Vec<String>,
    /// RFC 3339, in the future; none: the key does not expire.
    expires_at: Option<DateTime<Utc>>,
    /// Requests per minute, 1..=100000 (default 100).
    rate_limit: Option<i32>,
}

/// A new key: `key` is shown this once; only its hash is stored.
#[derive(Serialize, ToSchema)]
struct CreatedApiKey {
    api_key: ApiKey,
    key: String,
}

/// Keys are managed by users only: a key cannot mint or revoke keys.
fn require_user(ctx: &TenantCtx) -> Result<(), ApiError> {
    ctx.user_id().map(|_| ()).ok_or_else(|| ApiError::forbidden("forbidden", "API keys are managed by signed-in users"))
}

/// Create an API key; the answer holds the key itself, shown only this once.
#[utoipa::path(post, path = "/admin/api-keys", tag = "api-keys", security(("bearer" = [])),
    params(CompanyParam), request_body = CreateApiKeyBody,
    responses((status = 201, description = "The key's record and the key", body = CreatedApiKey)))]
async fn create(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(body): JsonBody<CreateApiKeyBody>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    require_user(&ctx)?;
    ctx.authorize(Resource::ApiKeys, Access::Write)?;
    let company = ctx.require_company()?;
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
    let key = tokens::new_api_key();
    let tx = deps.db.begin(&ctx).await?;
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
        Ok::<_, ApiError>(CreatedApiKey { api_key: stored, key: key.full_key })
    }
    .await;
    Ok((StatusCode::CREATED, Json(tx.finish(result).await?)))
}

/// List the company's API keys (never the keys themselves).
#[utoipa::path(get, path = "/admin/api-keys", tag = "api-keys", security(("bearer" = [])),
    params(PageParams, CompanyParam),
    responses((status = 200, description = "One page of API keys", body = Paged<ApiKey>)))]
async fn list(State(deps): State<Core>, Tenant(ctx): Tenant, page: Page) -> Result<Json<Paged<ApiKey>>, ApiError> {
    ctx.authorize(Resource::ApiKeys, Access::Read)?;
    let company = ctx.require_company()?;
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::api_keys::list(&tx, company.as_uuid(), page).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items, page, total)))
}

/// Revoke an API key; it stops working at once.
#[utoipa::path(delete, path = "/admin/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "API key id"), CompanyParam),
    responses((status = 200, description = "The revoked key", body = ApiKey)))]
async fn revoke(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ApiKeyId>,
    meta: RequestMeta,
) -> Result<Json<ApiKey>, ApiError> {
    require_user(&ctx)?;
    ctx.authorize(Resource::ApiKeys, Access::Write)?;
    let company = ctx.require_company()?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = repo::api_keys::get(&tx, company.as_uuid(), id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        let after = repo::api_keys::revoke(&tx, company.as_uuid(), id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        audit::record(
            &tx,
            AuditEntry {
                action: "api_key.revoke",
                resource_type: "api_key",
                resource_id: Some(id.as_uuid()),
                before: Some(json!({"is_active": before.is_active, "revoked_at": before.revoked_at})),
                after: Some(json!({"is_active": after.is_active, "revoked_at": after.revoked_at})),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}
