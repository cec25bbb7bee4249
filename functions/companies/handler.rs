//! `companies` function. Master admin: create, list, get, update, suspend, reactivate.
//! Company users see (only) their own company through the same list/get routes.
//!
//! POST /admin/companies · GET /admin/companies · GET|PATCH /admin/companies/{id}
//! POST /admin/companies/{id}/suspend · POST /admin/companies/{id}/reactivate
//! DELETE /admin/companies/{id} (everything of the company: rows, stored files, vectors)

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::Core;
use chatapp::audit::{self, AuditEntry};
use chatapp::auth::tokens;
use chatapp::domain::{self, Email, Slug};
use chatapp::error::ErrorBody;
use chatapp::knowledge::service::{self, PurgeTarget};
use chatapp::repo::{self, companies::Company, companies::CompanyPatch};
use chatapp::routes;
use chatapp::status::CompanyStatus;
use chatapp::tenant::{Access, Resource};
use chatapp::web::{IdPath, JsonBody, JsonOrEmpty, Page, PageParams, Paged, Query, RequestMeta, Tenant};
use chatapp::{ApiError, TenantCtx};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::invitations::IssuedInvitation;

/// What this function may do on AWS: nothing. Deleting a company leaves the purge of its files
/// and vectors as an ingest job in the outbox, written in the deleting transaction and sent by
/// `outbox-relay`; template.yaml grants exactly this (tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

pub fn routes() -> OpenApiRouter<Core> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(create, list))
        .routes(routes!(get, update, delete))
        .routes(routes!(suspend))
        .routes(routes!(reactivate))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateCompanyBody {
    name: String,
    /// Lowercase letters, digits and hyphens; unique.
    #[schema(value_type = String)]
    slug: Slug,
    description: Option<String>,
    /// Default `UTC`.
    timezone: Option<String>,
    /// Default `en`.
    locale: Option<String>,
    /// Plan slug; `free` by default.
    plan: Option<String>,
    /// 0..=365 (default 14).
    trial_days: Option<i32>,
    /// Invites this address as the company's first admin.
    #[schema(value_type = Option<String>, format = Email)]
    admin_email: Option<Email>,
}

/// The new company, its subscription, and the first admin's invitation if one was asked for.
#[derive(Serialize, ToSchema)]
struct CreatedCompany {
    company: Company,
    subscription_id: Uuid,
    /// `null` unless `admin_email` was given; its token is shown this once.
    admin_invitation: Option<IssuedInvitation>,
}

/// Create a company with a subscription, optionally inviting its first admin (master admin).
#[utoipa::path(post, path = "/admin/companies", tag = "companies", security(("bearer" = [])),
    request_body = CreateCompanyBody,
    responses(
        (status = 201, description = "The new company", body = CreatedCompany),
        (status = 409, description = "The slug is taken", body = ErrorBody)))]
async fn create(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(body): JsonBody<CreateCompanyBody>,
) -> Result<(StatusCode, Json<CreatedCompany>), ApiError> {
    ctx.authorize(Resource::Companies, Access::Write)?;
    let name = domain::text("name", &body.name, 255)?;
    let slug = body.slug;
    let description = domain::optional_text("description", body.description.as_deref(), 5000)?;
    let timezone = domain::optional_text("timezone", body.timezone.as_deref(), 50)?.unwrap_or_else(|| "UTC".into());
    let locale = domain::optional_text("locale", body.locale.as_deref(), 10)?.unwrap_or_else(|| "en".into());
    let plan = body.plan.unwrap_or_else(|| "free".into());
    let trial_days = body.trial_days.unwrap_or(14);
    if !(0..=365).contains(&trial_days) {
        return Err(ApiError::validation("trial_days must be 0..=365"));
    }
    let admin_email = body.admin_email;

    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let company = repo::companies::create(
            &tx,
            &repo::companies::NewCompany {
                name: &name,
                slug: slug.as_str(),
                description: description.as_deref(),
                timezone: &timezone,
                locale: &locale,
            },
        )
        .await
        .map_err(|e| match e.unique_violation() {
            Some(_) => ApiError::conflict("slug_taken", format!("slug {} is already used", slug.as_str())),
            None => e.into(),
        })?;
        let subscription = repo::plans::subscribe(&tx, company.id, &plan, trial_days)
            .await?
            .ok_or_else(|| ApiError::validation(format!("unknown plan {plan:?}")))?;
        let mut invitation = None;
        if let Some(email) = &admin_email {
            let token = tokens::random_secret();
            let inv = repo::invitations::create(
                &tx,
                &repo::invitations::NewInvitation {
                    company_id: company.id,
                    invited_by: ctx.user_id().ok_or_else(|| ApiError::forbidden("forbidden", "only users invite"))?,
                    email: email.as_str(),
                    name: None,
                    role: "company_admin",
                    permissions: &json!({}),
                    token_hash: &tokens::sha256_hex(&token),
                    expires_at: Utc::now() + chrono::Duration::days(7),
                },
            )
            .await?;
            invitation = Some(IssuedInvitation { invitation: inv, token });
        }
        audit::record(
            &tx,
            AuditEntry {
                action: "company.create",
                resource_type: "company",
                resource_id: Some(company.id),
                before: None,
                after: Some(json!({"company": company, "plan": plan, "subscription_id": subscription})),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(CreatedCompany { company, subscription_id: subscription, admin_invitation: invitation })
    }
    .await;
    Ok((StatusCode::CREATED, Json(tx.finish(result).await?)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only companies with this status: `active`, `suspended`, `pending` or `deleted`.
    status: Option<String>,
}

/// List companies: all of them for the master admin, the caller's own for anyone else.
#[utoipa::path(get, path = "/admin/companies", tag = "companies", security(("bearer" = [])),
    params(PageParams, ListQuery),
    responses((status = 200, description = "One page of companies", body = Paged<Company>)))]
async fn list(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    page: Page,
    Query(q): Query<ListQuery>,
) -> Result<Json<Paged<Company>>, ApiError> {
    ctx.authorize(Resource::Companies, Access::Read)?;
    let status = q
        .status
        .as_deref()
        .map(str::parse::<CompanyStatus>)
        .transpose()
        .map_err(|_| ApiError::validation("status must be active, suspended, pending or deleted"))?;
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::companies::list(&tx, page, status).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items, page, total)))
}

/// A company with its plan limits.
#[derive(Serialize, ToSchema)]
struct CompanyDetail {
    company: Company,
    /// The plan's limits with the company's custom limits applied, e.g. `{"supportSeats": 5}`.
    #[schema(value_type = Object)]
    limits: Value,
}

/// One company with its plan limits; another tenant's company is a 404.
#[utoipa::path(get, path = "/admin/companies/{id}", tag = "companies", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Company id")),
    responses((status = 200, description = "The company and its limits", body = CompanyDetail)))]
async fn get(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<Uuid>,
) -> Result<Json<CompanyDetail>, ApiError> {
    ctx.authorize(Resource::Companies, Access::Read)?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let company = repo::companies::get(&tx, id).await?.ok_or(ApiError::NotFound)?;
        let limits = repo::plans::limits(&tx, id).await?;
        Ok::<_, ApiError>(CompanyDetail { company, limits })
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}

/// The fields to change; absent fields are kept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateCompanyBody {
    name: Option<String>,
    description: Option<String>,
    logo_url: Option<String>,
    /// `#rrggbb`.
    primary_color: Option<String>,
    /// `#rrggbb`.
    secondary_color: Option<String>,
    timezone: Option<String>,
    locale: Option<String>,
    /// A JSON object; replaces the stored settings.
    #[schema(value_type = Option<Object>)]
    settings: Option<Value>,
}

/// Change a company's profile or settings (master admin).
#[utoipa::path(patch, path = "/admin/companies/{id}", tag = "companies", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Company id")), request_body = UpdateCompanyBody,
    responses((status = 200, description = "The updated company", body = Company)))]
async fn update(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<Uuid>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<UpdateCompanyBody>,
) -> Result<Json<Company>, ApiError> {
    ctx.authorize(Resource::Companies, Access::Write)?;
    if let Some(s) = &body.settings {
        if !s.is_object() {
            return Err(ApiError::validation("settings must be a JSON object"));
        }
    }
    let patch = CompanyPatch {
        name: domain::optional_text("name", body.name.as_deref(), 255)?,
        description: domain::optional_text("description", body.description.as_deref(), 5000)?,
        logo_url: domain::optional_text("logo_url", body.logo_url.as_deref(), 500)?,
        primary_color: body.primary_color.as_deref().map(|c| domain::color("primary_color", c)).transpose()?,
        secondary_color: body.secondary_color.as_deref().map(|c| domain::color("secondary_color", c)).transpose()?,
        timezone: domain::optional_text("timezone", body.timezone.as_deref(), 50)?,
        locale: domain::optional_text("locale", body.locale.as_deref(), 10)?,
        settings: body.settings,
        status: None,
    };
    change(&deps, &ctx, &meta, id, &patch, "company.update").await
}

/// Why the status changes (optional; the body may be empty).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct CompanyStatusBody {
    /// At most 1000 characters.
    reason: Option<String>,
}

/// Suspend a company: its users and keys are locked out (master admin).
#[utoipa::path(post, path = "/admin/companies/{id}/suspend", tag = "companies", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Company id")),
    request_body(content = Option<CompanyStatusBody>, description = "Optional"),
    responses((status = 200, description = "The suspended company", body = Company)))]
async fn suspend(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<Uuid>,
    meta: RequestMeta,
    JsonOrEmpty(body): JsonOrEmpty<CompanyStatusBody>,
) -> Result<Json<Company>, ApiError> {
    set_status(&deps, &ctx, &meta, id, body, CompanyStatus::Suspended).await
}

/// Reactivate a suspended company (master admin).
#[utoipa::path(post, path = "/admin/companies/{id}/reactivate", tag = "companies", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Company id")),
    request_body(content = Option<CompanyStatusBody>, description = "Optional"),
    responses((status = 200, description = "The reactivated company", body = Company)))]
async fn reactivate(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<Uuid>,
    meta: RequestMeta,
    JsonOrEmpty(body): JsonOrEmpty<CompanyStatusBody>,
) -> Result<Json<Company>, ApiError> {
    set_status(&deps, &ctx, &meta, id, body, CompanyStatus::Active).await
}

async fn set_status(
    deps: &Core,
    ctx: &TenantCtx,
    meta: &RequestMeta,
    id: Uuid,
    body: CompanyStatusBody,
    status: CompanyStatus,
) -> Result<Json<Company>, ApiError> {
    ctx.authorize(Resource::Companies, Access::Write)?;
    domain::optional_text("reason", body.reason.as_deref(), 1000)?;
    let patch = CompanyPatch { status: Some(status), ..Default::default() };
    let action = if status == CompanyStatus::Suspended { "company.suspend" } else { "company.reactivate" };
    change(deps, ctx, meta, id, &patch, action).await
}

async fn change(
    deps: &Core,
    ctx: &TenantCtx,
    meta: &RequestMeta,
    id: Uuid,
    patch: &CompanyPatch,
    action: &str,
) -> Result<Json<Company>, ApiError> {
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let before = repo::companies::get(&tx, id).await?.ok_or(ApiError::NotFound)?;
        let after = repo::companies::update(&tx, id, patch).await?.ok_or(ApiError::NotFound)?;
        audit::record(
            &tx,
            AuditEntry {
                action,
                resource_type: "company",
                resource_id: Some(id),
                before: Some(json!(before)),
                after: Some(json!(after)),
            },
            meta,
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}

/// Delete a company for good: its rows, stored files and vectors (master admin).
///
/// The rows go at once (cascading to every tenant table). The stored files and vectors are
/// purged by the ingest worker from a job written in the same transaction (the outbox), so a
/// crash after the commit cannot orphan them; `outbox-relay` sends it within about a minute.
/// The audit row is platform-level (no company), so it survives.
#[utoipa::path(delete, path = "/admin/companies/{id}", tag = "companies", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Company id")),
    responses((status = 204, description = "Deleted")))]
async fn delete(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<Uuid>,
    meta: RequestMeta,
) -> Result<StatusCode, ApiError> {
    ctx.authorize(Resource::Companies, Access::Write)?;
    let company = ctx.acting_for(Some(id)).require_company()?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = repo::companies::get(&tx, id).await?.ok_or(ApiError::NotFound)?;
        if !repo::companies::delete(&tx, id).await? {
            return Err(ApiError::NotFound);
        }
        audit::record(
            &tx,
            AuditEntry {
                action: "company.delete",
                resource_type: "company",
                resource_id: Some(id),
                before: Some(json!(before)),
                after: None,
            },
            &meta,
        )
        .await?;
        service::queue_purge(&tx, company, PurgeTarget::Company).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    tx.finish(result).await?;
    Ok(StatusCode::NO_CONTENT)
}
