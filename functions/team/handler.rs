//! `team` function: a company's users.
//!
//! GET /admin/team/users · GET|PATCH /admin/team/users/{id}
//! POST /admin/team/users/{id}/deactivate · POST /admin/team/users/{id}/activate
//! Master admins pass `?company_id=` to act on one company.

use axum::extract::State;
use axum::Json;
use chatapp::app::Core;
use chatapp::audit::{self, AuditEntry};
use chatapp::domain;
use chatapp::ids::UserId;
use chatapp::repo::{self, users::User, users::UserPatch};
use chatapp::routes;
use chatapp::tenant::{Access, Resource, Role};
use chatapp::web::{CompanyParam, IdPath, JsonBody, Page, PageParams, Paged, RequestMeta, Tenant};
use chatapp::{ApiError, TenantCtx};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

/// What this function may do on AWS: nothing (template.yaml gives it no policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

pub fn routes() -> OpenApiRouter<Core> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(list))
        .routes(routes!(get, update))
        .routes(routes!(deactivate))
        .routes(routes!(activate))
}

/// List the company's users.
#[utoipa::path(get, path = "/admin/team/users", tag = "team", security(("bearer" = [])),
    params(PageParams, CompanyParam),
    responses((status = 200, description = "One page of users", body = Paged<User>)))]
async fn list(State(deps): State<Core>, Tenant(ctx): Tenant, page: Page) -> Result<Json<Paged<User>>, ApiError> {
    ctx.authorize(Resource::Team, Access::Read)?;
    let company = ctx.require_company()?;
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::users::list(&tx, company.as_uuid(), page).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items, page, total)))
}

/// A user of the acting company; anyone else (another tenant, the master admin) is a 404.
async fn company_user(tx: &chatapp::db::TenantTx, ctx: &TenantCtx, id: UserId) -> Result<User, ApiError> {
    let company = ctx.require_company()?;
    repo::users::get(tx, id.as_uuid())
        .await?
        .filter(|u| u.company_id == Some(company.as_uuid()))
        .ok_or(ApiError::NotFound)
}

/// One user of the company.
#[utoipa::path(get, path = "/admin/team/users/{id}", tag = "team", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "User id"), CompanyParam),
    responses((status = 200, description = "The user", body = User)))]
async fn get(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<UserId>,
) -> Result<Json<User>, ApiError> {
    ctx.authorize(Resource::Team, Access::Read)?;
    let tx = deps.db.begin(&ctx).await?;
    let result = company_user(&tx, &ctx, id).await;
    Ok(Json(tx.finish(result).await?))
}

/// The fields to change; absent fields are kept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateUserBody {
    /// `company_admin` or `support_agent`.
    role: Option<String>,
    /// `{"<resource>": ["read" | "write"]}`.
    #[schema(value_type = Option<Object>)]
    permissions: Option<Value>,
    name: Option<String>,
    /// Addresses or CIDR blocks.
    ip_allowlist: Option<Vec<String>>,
    /// RFC 3339; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    access_expires_at: Option<Option<DateTime<Utc>>>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
    Option::<DateTime<Utc>>::deserialize(d).map(Some)
}

/// `{"<resource>": ["read" | "write", ...]}` over known resources.
fn check_permissions(p: &Value) -> Result<(), ApiError> {
    const RESOURCES: &[&str] = &[
        "team",
        "invitations",
        "api_keys",
        "agents",
        "knowledge",
        "conversations",
        "messages",
        "analytics",
        "audit_logs",
    ];
    let obj = p.as_object().ok_or_else(|| ApiError::validation("permissions must be an object"))?;
    for (k, v) in obj {
        if !RESOURCES.contains(&k.as_str()) {
            return Err(ApiError::validation(format!("unknown permission resource {k:?}")));
        }
        let ok = v.as_array().is_some_and(|a| a.iter().all(|x| matches!(x.as_str(), Some("read" | "write"))));
        if !ok {
            return Err(ApiError::validation(format!("permissions.{k} must be a list of \"read\"/\"write\"")));
        }
    }
    Ok(())
}

/// Change a user's role, permissions, name, allowlist or access expiry.
#[utoipa::path(patch, path = "/admin/team/users/{id}", tag = "team", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "User id"), CompanyParam), request_body = UpdateUserBody,
    responses((status = 200, description = "The updated user", body = User)))]
async fn update(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<UserId>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<UpdateUserBody>,
) -> Result<Json<User>, ApiError> {
    ctx.authorize(Resource::Team, Access::Write)?;
    let role = match body.role.as_deref() {
        None => None,
        Some(r) => match Role::parse(r) {
            Some(Role::CompanyAdmin | Role::SupportAgent) => Some(r.to_string()),
            _ => return Err(ApiError::validation("role must be company_admin or support_agent")),
        },
    };
    if let Some(p) = &body.permissions {
        check_permissions(p)?;
    }
    if let Some(list) = &body.ip_allowlist {
        for e in list {
            if e.parse::<std::net::IpAddr>().is_err() && e.parse::<ipnet_like::Net>().is_err() {
                return Err(ApiError::validation(format!("ip_allowlist entry {e:?} is not an address or CIDR block")));
            }
        }
    }
    if ctx.user_id() == Some(id.as_uuid()) && role.as_deref() == Some("support_agent") {
        return Err(ApiError::bad_request("cannot_demote_self", "you cannot remove your own admin role"));
    }
    let patch = UserPatch {
        role,
        permissions: body.permissions,
        name: domain::optional_text("name", body.name.as_deref(), 255)?,
        ip_allowlist: body.ip_allowlist.map(|l| json!(l)),
        access_expires_at: body.access_expires_at,
    };
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = company_user(&tx, &ctx, id).await?;
        let after = repo::users::update(&tx, id.as_uuid(), &patch).await?.ok_or(ApiError::NotFound)?;
        audit::record(
            &tx,
            AuditEntry {
                action: "user.update",
                resource_type: "user",
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

/// Deactivate a user: they can no longer sign in, and their sessions end now.
#[utoipa::path(post, path = "/admin/team/users/{id}/deactivate", tag = "team", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "User id"), CompanyParam),
    responses((status = 200, description = "The deactivated user", body = User)))]
async fn deactivate(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<UserId>,
    meta: RequestMeta,
) -> Result<Json<User>, ApiError> {
    set_active(&deps, &ctx, &meta, id, false).await
}

/// Reactivate a user.
#[utoipa::path(post, path = "/admin/team/users/{id}/activate", tag = "team", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "User id"), CompanyParam),
    responses((status = 200, description = "The reactivated user", body = User)))]
async fn activate(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<UserId>,
    meta: RequestMeta,
) -> Result<Json<User>, ApiError> {
    set_active(&deps, &ctx, &meta, id, true).await
}

async fn set_active(
    deps: &Core,
    ctx: &TenantCtx,
    meta: &RequestMeta,
    id: UserId,
    active: bool,
) -> Result<Json<User>, ApiError> {
    ctx.authorize(Resource::Team, Access::Write)?;
    if !active && ctx.user_id() == Some(id.as_uuid()) {
        return Err(ApiError::bad_request("cannot_deactivate_self", "you cannot deactivate your own account"));
    }
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let before = company_user(&tx, ctx, id).await?;
        let after = repo::users::set_active(&tx, id.as_uuid(), active).await?.ok_or(ApiError::NotFound)?;
        if !active {
            // A deactivated user's sessions end now, not when their refresh token expires.
            repo::refresh_tokens::revoke_all_for_user(&tx, id.as_uuid()).await?;
            // Their conversations go back to the queue; the outbox sweep relays the drain job
            // (this function sends to no queue itself).
            repo::users::release_conversations(&tx, id.as_uuid()).await?;
        }
        audit::record(
            &tx,
            AuditEntry {
                action: if active { "user.activate" } else { "user.deactivate" },
                resource_type: "user",
                resource_id: Some(id.as_uuid()),
                before: Some(json!({"is_active": before.is_active})),
                after: Some(json!({"is_active": after.is_active})),
            },
            meta,
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}

/// CIDR syntax check without pulling the parser into this crate's public surface.
mod ipnet_like {
    pub struct Net;
    impl std::str::FromStr for Net {
        type Err = ();
        fn from_str(s: &str) -> Result<Self, ()> {
            let (addr, len) = s.split_once('/').ok_or(())?;
            let addr: std::net::IpAddr = addr.parse().map_err(|_| ())?;
            let len: u8 = len.parse().map_err(|_| ())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            (len <= max).then_some(Net).ok_or(())
        }
    }
}
