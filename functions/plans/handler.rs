//! `plans` function: the subscription plans (migration 0006, seed 001 section 6) and which plan
//! each company is on.
//!
//! POST   /admin/plans                          add a plan (master admin)
//! GET    /admin/plans                          list (the master admin: every plan, `?active=`;
//!                                              anyone else: the active public plans)
//! GET    /admin/plans/{id}                     one
//! PATCH  /admin/plans/{id}                     change (master admin); `is_active: false` stops
//!                                              offering it, its subscribers keep it
//! DELETE /admin/plans/{id}                     remove a plan no subscription ever used (master admin)
//! GET    /admin/companies/{id}/subscription    the company's plan, custom and effective limits
//! PUT    /admin/companies/{id}/subscription    move the company to a plan (master admin)
//!
//! Limits are checked on write: the keys the platform enforces (`messagesPerMonth`,
//! `agentCount`, `maxFileSize`, `storageGb`, ...), whole numbers from 0, anything else a 400
//! naming the field; features come from one list (the channels' names among them, which
//! `functions/channels` checks). A plan change takes effect at the next check of a limit: the
//! enforcing code reads the current subscription.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::Core;
use chatapp::audit::{self, AuditEntry};
use chatapp::error::ErrorBody;
use chatapp::repo::plans::{self as repo, Plan, PlanFields, Subscription};
use chatapp::routes;
use chatapp::tenant::{Access, Resource};
use chatapp::web::{IdPath, JsonBody, Page, PageParams, Paged, Query, RequestMeta, Tenant};
use chatapp::{domain, ApiError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

/// What this function may do on AWS: nothing (template.yaml gives it no policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

const MAX_SLUG: usize = 100;
const MAX_NAME: usize = 255;
const MAX_DESCRIPTION: usize = 5_000;
const MAX_PRICE: f64 = 1_000_000.0;
/// Above any real limit, below what the enforcing code's integers hold.
const MAX_LIMIT: i64 = 1_000_000_000_000;

/// Every feature a plan may list: the channels (`functions/channels` refuses one not listed)
/// and the seeds' product features.
pub const FEATURES: &[&str] = &[
    "web_widget",
    "knowledge_base",
    "analytics_basic",
    "analytics_advanced",
    "email",
    "human_handover",
    "canned_responses",
    "whatsapp",
    "messenger",
    "instagram",
    "telegram",
    "slack",
    "teams",
    "voice",
    "api_access",
    "webhooks",
    "custom_branding",
    "custom_domain",
    "sso",
    "audit_log_export",
    "priority_support",
];

pub fn routes() -> OpenApiRouter<Core> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(create, list))
        .routes(routes!(get, update, delete))
        .routes(routes!(subscription, change_subscription))
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum BillingCycle {
    Monthly,
    Quarterly,
    SemiAnnual,
    Annual,
}

impl BillingCycle {
    fn as_str(self) -> &'static str {
        match self {
            BillingCycle::Monthly => "monthly",
            BillingCycle::Quarterly => "quarterly",
            BillingCycle::SemiAnnual => "semi_annual",
            BillingCycle::Annual => "annual",
        }
    }
}

/// A plan's limits, each optional (absent: not limited), whole numbers from 0. The names are
/// the seeds' (`maxAgents` is read as `agentCount`).
#[derive(Deserialize, Serialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Limits {
    /// Customer messages answered per calendar month.
    #[serde(skip_serializing_if = "Option::is_none")]
    messages_per_month: Option<i64>,
    /// AI agents the company may have (archived ones excluded).
    #[serde(alias = "maxAgents", skip_serializing_if = "Option::is_none")]
    agent_count: Option<i64>,
    /// Support agents (human seats).
    #[serde(skip_serializing_if = "Option::is_none")]
    support_seats: Option<i64>,
    /// Knowledge storage, GiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_gb: Option<i64>,
    /// Largest knowledge file, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_file_size: Option<i64>,
    /// API requests per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    api_rate_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    knowledge_categories: Option<i64>,
}

impl Limits {
    /// Each value in 0..=MAX_LIMIT, named by its path under `field`.
    fn checked(self, field: &str) -> Result<Value, ApiError> {
        let value = serde_json::to_value(&self).map_err(ApiError::internal)?;
        if let Some(map) = value.as_object() {
            for (key, v) in map {
                if !v.as_i64().is_some_and(|n| (0..=MAX_LIMIT).contains(&n)) {
                    return Err(ApiError::validation(format!("{field}.{key}: must be between 0 and {MAX_LIMIT}")));
                }
            }
        }
        Ok(value)
    }
}

/// A new plan.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreatePlanBody {
    /// 1-255 characters.
    name: String,
    /// 1-100 characters of a-z, 0-9 and `-`; unique.
    slug: String,
    description: Option<String>,
    /// 0 to 1,000,000.
    #[schema(minimum = 0, maximum = 1000000)]
    base_price: f64,
    /// 0 to 1,000,000; default 0.
    #[schema(minimum = 0, maximum = 1000000)]
    setup_fee: Option<f64>,
    /// Three capital letters (ISO 4217); default `USD`.
    currency: Option<String>,
    billing_cycle: BillingCycle,
    /// Default: no limits.
    limits: Option<Limits>,
    /// Names from the features list, none twice; default none.
    features: Option<Vec<String>>,
    /// Default true.
    is_active: Option<bool>,
    /// Default true; a private plan is one the master admin assigns, never offered.
    is_public: Option<bool>,
}

/// The fields to change; absent fields are kept. `limits` and `features` are replaced whole.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdatePlanBody {
    name: Option<String>,
    slug: Option<String>,
    description: Option<String>,
    #[schema(minimum = 0, maximum = 1000000)]
    base_price: Option<f64>,
    #[schema(minimum = 0, maximum = 1000000)]
    setup_fee: Option<f64>,
    currency: Option<String>,
    billing_cycle: Option<BillingCycle>,
    limits: Option<Limits>,
    features: Option<Vec<String>>,
    is_active: Option<bool>,
    is_public: Option<bool>,
}

/// Filters of the plan list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PlanListQuery {
    /// `true`: only active plans; `false`: only inactive ones (the master admin's to see).
    #[param(value_type = Option<bool>)]
    active: Option<String>,
}

/// Moves a company to a plan.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangeSubscriptionBody {
    /// The plan's slug; an inactive plan is refused.
    plan: String,
    /// Limits for this company over the plan's (same keys); default none.
    custom_limits: Option<Limits>,
}

fn slug(raw: &str) -> Result<String, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_SLUG
        && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(raw.to_string())
    } else {
        Err(ApiError::validation(format!("slug must be 1-{MAX_SLUG} characters of a-z, 0-9 and '-'")))
    }
}

fn price(field: &str, value: f64) -> Result<f64, ApiError> {
    if value.is_finite() && (0.0..=MAX_PRICE).contains(&value) {
        // numeric(10, 2): what is stored is what is shown.
        Ok((value * 100.0).round() / 100.0)
    } else {
        Err(ApiError::validation(format!("{field} must be between 0 and {MAX_PRICE}")))
    }
}

fn features(list: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, f) in list.into_iter().enumerate() {
        if !FEATURES.contains(&f.as_str()) {
            return Err(ApiError::validation(format!(
                "features[{i}]: {f:?} is not a feature (one of: {})",
                FEATURES.join(", ")
            )));
        }
        if out.contains(&f) {
            return Err(ApiError::validation(format!("features[{i}]: {f:?} is in the list twice")));
        }
        out.push(f);
    }
    Ok(out)
}

fn audit_entry<'a>(action: &'a str, id: Uuid, before: Option<&Plan>, after: Option<&Plan>) -> AuditEntry<'a> {
    AuditEntry::change(action, "subscription_plan", id, before, after)
}

/// A 409 for a slug another plan has.
fn slug_taken(e: chatapp::db::DbError) -> ApiError {
    ApiError::conflict_if_unique(e, "slug_taken", "another plan has this slug")
}

/// Add a plan (master admin).
#[utoipa::path(post, path = "/admin/plans", tag = "plans", security(("bearer" = [])),
    request_body = CreatePlanBody,
    responses(
        (status = 201, description = "The created plan", body = Plan),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 409, description = "Another plan has this slug", body = ErrorBody)))]
async fn create(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(body): JsonBody<CreatePlanBody>,
) -> Result<(StatusCode, Json<Plan>), ApiError> {
    ctx.require_master_admin("manages the plans")?;
    let fields = PlanFields {
        name: domain::text("name", &body.name, MAX_NAME)?,
        slug: slug(&body.slug)?,
        description: domain::optional_text("description", body.description.as_deref(), MAX_DESCRIPTION)?,
        base_price: price("base_price", body.base_price)?,
        setup_fee: price("setup_fee", body.setup_fee.unwrap_or(0.0))?,
        currency: domain::currency(body.currency.as_deref().unwrap_or("USD"))?,
        billing_cycle: body.billing_cycle.as_str().to_string(),
        limits: body.limits.unwrap_or_default().checked("limits")?,
        features: features(body.features.unwrap_or_default())?,
        is_active: body.is_active.unwrap_or(true),
        is_public: body.is_public.unwrap_or(true),
    };
    let tx = deps.db.begin(&ctx).await?;
    let created = async {
        let plan = repo::insert_plan(&tx, &fields).await.map_err(slug_taken)?;
        audit::record(&tx, audit_entry("plan.create", plan.id, None, Some(&plan)), &meta).await?;
        Ok::<_, ApiError>(plan)
    }
    .await;
    Ok((StatusCode::CREATED, Json(tx.finish(created).await?)))
}

/// List the plans by price: the active public ones, and for the master admin every plan.
#[utoipa::path(get, path = "/admin/plans", tag = "plans", security(("bearer" = [])),
    params(PlanListQuery, PageParams),
    responses((status = 200, description = "One page of plans", body = Paged<Plan>)))]
async fn list(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    page: Page,
    Query(q): Query<PlanListQuery>,
) -> Result<Json<Paged<Plan>>, ApiError> {
    let active = chatapp::web::bool_param("active", q.active.as_deref())?;
    let offered_only = !ctx.is_master_admin();
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::list_plans(&tx, active, offered_only, page.limit, page.offset).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items, page, total)))
}

/// One plan (an inactive or private one for the master admin only).
#[utoipa::path(get, path = "/admin/plans/{id}", tag = "plans", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Plan id")),
    responses((status = 200, description = "The plan", body = Plan),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn get(State(deps): State<Core>, Tenant(ctx): Tenant, IdPath(id): IdPath<Uuid>) -> Result<Json<Plan>, ApiError> {
    let tx = deps.db.begin(&ctx).await?;
    let found = repo::get_plan(&tx, id).await.map_err(ApiError::from);
    tx.finish(found)
        .await?
        .filter(|p| (p.is_active && p.is_public) || ctx.is_master_admin())
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// Change a plan (master admin). Its subscribers get the new limits and features at once;
/// `is_active: false` stops offering it.
#[utoipa::path(patch, path = "/admin/plans/{id}", tag = "plans", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Plan id")),
    request_body = UpdatePlanBody,
    responses((status = 200, description = "The plan", body = Plan),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Another plan has this slug", body = ErrorBody)))]
async fn update(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
    JsonBody(body): JsonBody<UpdatePlanBody>,
) -> Result<Json<Plan>, ApiError> {
    ctx.require_master_admin("manages the plans")?;
    let new_name = domain::optional_text("name", body.name.as_deref(), MAX_NAME)?;
    let new_slug = body.slug.as_deref().map(slug).transpose()?;
    let new_description = domain::optional_text("description", body.description.as_deref(), MAX_DESCRIPTION)?;
    let new_base = body.base_price.map(|v| price("base_price", v)).transpose()?;
    let new_setup = body.setup_fee.map(|v| price("setup_fee", v)).transpose()?;
    let new_currency = body.currency.as_deref().map(domain::currency).transpose()?;
    let new_limits = body.limits.map(|l| l.checked("limits")).transpose()?;
    let new_features = body.features.map(features).transpose()?;
    let tx = deps.db.begin(&ctx).await?;
    let updated = async {
        let before = repo::lock_plan(&tx, id).await?.ok_or(ApiError::NotFound)?;
        let mut f = before.fields();
        f.name = new_name.unwrap_or(f.name);
        f.slug = new_slug.unwrap_or(f.slug);
        f.description = new_description.or(f.description);
        f.base_price = new_base.unwrap_or(f.base_price);
        f.setup_fee = new_setup.unwrap_or(f.setup_fee);
        f.currency = new_currency.unwrap_or(f.currency);
        f.billing_cycle = body.billing_cycle.map(|c| c.as_str().to_string()).unwrap_or(f.billing_cycle);
        f.limits = new_limits.unwrap_or(f.limits);
        f.features = new_features.unwrap_or(f.features);
        f.is_active = body.is_active.unwrap_or(f.is_active);
        f.is_public = body.is_public.unwrap_or(f.is_public);
        let after = repo::update_plan(&tx, id, &f).await.map_err(slug_taken)?.ok_or(ApiError::NotFound)?;
        audit::record(&tx, audit_entry("plan.update", id, Some(&before), Some(&after)), &meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(updated).await?))
}

/// Remove a plan (master admin) that no subscription, past or present, is on; stop offering a
/// used one with `is_active: false` instead.
#[utoipa::path(delete, path = "/admin/plans/{id}", tag = "plans", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Plan id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "A subscription is on the plan", body = ErrorBody)))]
async fn delete(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    ctx.require_master_admin("manages the plans")?;
    let tx = deps.db.begin(&ctx).await?;
    let deleted = async {
        let before = repo::lock_plan(&tx, id).await?.ok_or(ApiError::NotFound)?;
        if repo::plan_in_use(&tx, id).await? {
            return Err(ApiError::conflict(
                "plan_in_use",
                "a company's subscription is or was on this plan: stop offering it with is_active false instead",
            ));
        }
        repo::delete_plan(&tx, id).await?;
        audit::record(&tx, audit_entry("plan.delete", id, Some(&before), None), &meta).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    tx.finish(deleted).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A company's current subscription: its plan, its custom limits and the limits enforced.
/// Company admins read their own; another company's id is a 404.
#[utoipa::path(get, path = "/admin/companies/{id}/subscription", tag = "plans", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Company id")),
    responses((status = 200, description = "The subscription", body = Subscription),
        (status = 404, description = "No such company, or it has no subscription", body = ErrorBody)))]
async fn subscription(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<Uuid>,
) -> Result<Json<Subscription>, ApiError> {
    ctx.authorize(Resource::Companies, Access::Read)?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        chatapp::repo::companies::get(&tx, id).await?.ok_or(ApiError::NotFound)?;
        repo::current_subscription(&tx, id).await?.ok_or(ApiError::NotFound)
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}

/// Move a company to a plan (master admin): its open subscription ends and an active one on the
/// plan starts now, with the custom limits given. The new limits apply from the next request.
#[utoipa::path(put, path = "/admin/companies/{id}/subscription", tag = "plans", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Company id")),
    request_body = ChangeSubscriptionBody,
    responses((status = 200, description = "The new subscription", body = Subscription),
        (status = 400, description = "Unknown or inactive plan, or bad limits", body = ErrorBody),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 404, description = "No such company", body = ErrorBody)))]
async fn change_subscription(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
    JsonBody(body): JsonBody<ChangeSubscriptionBody>,
) -> Result<Json<Subscription>, ApiError> {
    ctx.require_master_admin("moves companies between plans")?;
    let plan_slug = slug(&body.plan).map_err(|_| ApiError::validation("plan must be a plan's slug"))?;
    let custom = body.custom_limits.unwrap_or_default().checked("custom_limits")?;
    let tx = deps.db.begin(&ctx).await?;
    let changed = async {
        chatapp::repo::companies::get(&tx, id).await?.ok_or(ApiError::NotFound)?;
        let plan = repo::plan_by_slug(&tx, &plan_slug)
            .await?
            .filter(|p| p.is_active)
            .ok_or_else(|| ApiError::validation(format!("plan: no active plan has the slug {plan_slug:?}")))?;
        let before = repo::current_subscription(&tx, id).await?;
        repo::change_subscription(&tx, id, plan.id, &custom).await?;
        let after = repo::current_subscription(&tx, id).await?.ok_or_else(|| ApiError::internal("no subscription"))?;
        let entry =
            AuditEntry::change("subscription.change", "company_subscription", after.id, before.as_ref(), Some(&after));
        audit::record(&tx, entry, &meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(changed).await?))
}
