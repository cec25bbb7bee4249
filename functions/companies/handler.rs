//! `companies` function. Master admin: create, list, get, update, suspend, reactivate.
//! Company users see (only) their own company through the same list/get routes.
//!
//! POST /admin/companies · GET /admin/companies · GET|PATCH /admin/companies/{id}
//! POST /admin/companies/{id}/suspend · POST /admin/companies/{id}/reactivate
//! DELETE /admin/companies/{id} (everything of the company: rows, stored files, vectors)

use chatapp::app::AppDeps;
use chatapp::audit::{self, AuditEntry};
use chatapp::auth::tokens;
use chatapp::domain::{self, Email, Slug};
use chatapp::http::{self, HandlerResult, Page, Paged, RequestMeta};
use chatapp::repo::{self, companies::CompanyPatch};
use chatapp::tenant::{Access, Resource};
use chatapp::{ApiError, TenantCtx};
use chrono::Utc;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

const PREFIX: &str = "/admin/companies";

pub async fn handle(deps: &AppDeps, req: Request) -> HandlerResult {
    let path = req.uri().path().to_string();
    let segs = http::segments_after(&path, PREFIX).ok_or(ApiError::NotFound)?;
    let ctx = deps.auth.authenticate(&req).await?;
    match (req.method().as_str(), segs.as_slice()) {
        ("POST", []) => create(deps, &ctx, &req).await,
        ("GET", []) => list(deps, &ctx, &req).await,
        ("GET", [id]) => get(deps, &ctx, http::path_id(id)?).await,
        ("PATCH", [id]) => update(deps, &ctx, &req, http::path_id(id)?).await,
        ("DELETE", [id]) => delete(deps, &ctx, &req, http::path_id(id)?).await,
        ("POST", [id, "suspend"]) => set_status(deps, &ctx, &req, http::path_id(id)?, "suspended").await,
        ("POST", [id, "reactivate"]) => set_status(deps, &ctx, &req, http::path_id(id)?, "active").await,
        (_, [] | [_] | [_, "suspend" | "reactivate"]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    slug: String,
    description: Option<String>,
    timezone: Option<String>,
    locale: Option<String>,
    /// Plan slug; `free` by default.
    plan: Option<String>,
    trial_days: Option<i32>,
    /// Invites this address as the company's first admin.
    admin_email: Option<String>,
}

async fn create(deps: &AppDeps, ctx: &TenantCtx, req: &Request) -> HandlerResult {
    ctx.authorize(Resource::Companies, Access::Write)?;
    let body: CreateBody = http::parse_json(req, deps.cfg.max_body_bytes)?;
    let name = domain::text("name", &body.name, 255)?;
    let slug = Slug::parse("slug", &body.slug)?;
    let description = domain::optional_text("description", body.description.as_deref(), 5000)?;
    let timezone = domain::optional_text("timezone", body.timezone.as_deref(), 50)?.unwrap_or_else(|| "UTC".into());
    let locale = domain::optional_text("locale", body.locale.as_deref(), 10)?.unwrap_or_else(|| "en".into());
    let plan = body.plan.unwrap_or_else(|| "free".into());
    let trial_days = body.trial_days.unwrap_or(14);
    if !(0..=365).contains(&trial_days) {
        return Err(ApiError::validation("trial_days must be 0..=365"));
    }
    let admin_email = body.admin_email.as_deref().map(|e| Email::parse("admin_email", e)).transpose()?;
    let meta = RequestMeta::from_request(req);

    let tx = deps.db.begin(ctx).await?;
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
        let mut invitation = Value::Null;
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
            invitation = json!({"invitation": inv, "token": token});
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
        Ok::<_, ApiError>(json!({"company": company, "subscription_id": subscription, "admin_invitation": invitation}))
    }
    .await;
    http::created(&tx.finish(result).await?)
}

async fn list(deps: &AppDeps, ctx: &TenantCtx, req: &Request) -> HandlerResult {
    ctx.authorize(Resource::Companies, Access::Read)?;
    let page = Page::from_request(req)?;
    let status = http::query_map(req).get("status").cloned();
    if let Some(s) = &status {
        if !["active", "suspended", "pending", "deleted"].contains(&s.as_str()) {
            return Err(ApiError::validation("status must be active, suspended, pending or deleted"));
        }
    }
    let tx = deps.db.begin(ctx).await?;
    let result = repo::companies::list(&tx, page, status.as_deref()).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    http::ok(&Paged { items, limit: page.limit, offset: page.offset, total })
}

async fn get(deps: &AppDeps, ctx: &TenantCtx, id: Uuid) -> HandlerResult {
    ctx.authorize(Resource::Companies, Access::Read)?;
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let company = repo::companies::get(&tx, id).await?.ok_or(ApiError::NotFound)?;
        let limits = repo::plans::limits(&tx, id).await?;
        Ok::<_, ApiError>(json!({"company": company, "limits": limits}))
    }
    .await;
    http::ok(&tx.finish(result).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    description: Option<String>,
    logo_url: Option<String>,
    primary_color: Option<String>,
    secondary_color: Option<String>,
    timezone: Option<String>,
    locale: Option<String>,
    settings: Option<Value>,
}

async fn update(deps: &AppDeps, ctx: &TenantCtx, req: &Request, id: Uuid) -> HandlerResult {
    ctx.authorize(Resource::Companies, Access::Write)?;
    let body: UpdateBody = http::parse_json(req, deps.cfg.max_body_bytes)?;
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
    change(deps, ctx, req, id, &patch, "company.update").await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    reason: Option<String>,
}

async fn set_status(deps: &AppDeps, ctx: &TenantCtx, req: &Request, id: Uuid, status: &str) -> HandlerResult {
    ctx.authorize(Resource::Companies, Access::Write)?;
    let body: StatusBody = if http::body_bytes(req).is_empty() {
        StatusBody::default()
    } else {
        http::parse_json(req, deps.cfg.max_body_bytes)?
    };
    domain::optional_text("reason", body.reason.as_deref(), 1000)?;
    let patch = CompanyPatch { status: Some(status.to_string()), ..Default::default() };
    let action = if status == "suspended" { "company.suspend" } else { "company.reactivate" };
    change(deps, ctx, req, id, &patch, action).await
}

async fn change(
    deps: &AppDeps,
    ctx: &TenantCtx,
    req: &Request,
    id: Uuid,
    patch: &CompanyPatch,
    action: &str,
) -> HandlerResult {
    let meta = RequestMeta::from_request(req);
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
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    http::ok(&tx.finish(result).await?)
}

/// Deletes a company for good. Rows go first (cascading to every tenant table), then the
/// objects and vectors (queued for retry if the stores are unavailable), so nothing of the
/// company is left anywhere. The audit row is platform-level (no company), so it survives.
async fn delete(deps: &AppDeps, ctx: &TenantCtx, req: &Request, id: Uuid) -> HandlerResult {
    ctx.authorize(Resource::Companies, Access::Write)?;
    let company = ctx.acting_for(Some(id)).require_company()?;
    let meta = RequestMeta::from_request(req);
    let tx = deps.db.begin(ctx).await?;
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
        Ok::<_, ApiError>(())
    }
    .await;
    tx.finish(result).await?;
    chatapp::knowledge::service::purge_or_enqueue(deps, company, chatapp::knowledge::service::PurgeTarget::Company)
        .await
        .map_err(ApiError::internal)?;
    http::no_content()
}
