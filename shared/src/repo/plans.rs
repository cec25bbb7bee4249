//! Plans and company subscriptions: the limits a company works within.

use serde_json::Value;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// Starts a subscription of `company` on the plan with `plan_slug`; `None` if no such plan.
pub async fn subscribe(
    tx: &TenantTx,
    company: Uuid,
    plan_slug: &str,
    trial_days: i32,
) -> Result<Option<Uuid>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "INSERT INTO chatapp_company_subscriptions
                (company_id, plan_id, status, trial_ends_at, starts_at, expires_at)
             SELECT $1, p.id,
                    CASE WHEN $3 > 0 THEN 'trial'::subscription_status ELSE 'active'::subscription_status END,
                    CASE WHEN $3 > 0 THEN now() + make_interval(days => $3) END,
                    now(), now() + interval '1 year'
             FROM chatapp_subscription_plans p WHERE p.slug = $2 AND p.is_active IS NOT FALSE
             RETURNING id",
            &[&company, &plan_slug, &trial_days],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// The company's (`$1`) current subscription, as a relation: the newest live one (trial,
/// active, grace period), else the newest of any status. [`limits`], [`features`] and
/// [`current_subscription`] all read this one.
const CURRENT_SUBSCRIPTION: &str = "(SELECT * FROM chatapp_company_subscriptions WHERE company_id = $1
     ORDER BY (status IN ('active', 'trial', 'grace_period')) DESC, created_at DESC LIMIT 1)";

/// The effective limits of `company`: its current subscription's plan limits overlaid with
/// the subscription's custom limits. Empty when the company has no subscription.
pub async fn limits(tx: &TenantTx, company: Uuid) -> Result<Value, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "SELECT p.limits || COALESCE(s.custom_limits, '{{}}'::jsonb)
                 FROM {CURRENT_SUBSCRIPTION} s JOIN chatapp_subscription_plans p ON p.id = s.plan_id"
            ),
            &[&company],
        )
        .await?;
    Ok(row.map(|r| r.get(0)).unwrap_or_else(|| Value::Object(Default::default())))
}

/// A numeric limit, `None` when the plan sets none.
pub fn limit_of(limits: &Value, key: &str) -> Option<i64> {
    limits.get(key).and_then(Value::as_i64)
}

/// The features of `company`'s current plan (`["web_widget", "whatsapp", ...]`); `None` when
/// the company has no subscription (then, as with [`limits`], nothing is restricted).
pub async fn features(tx: &TenantTx, company: Uuid) -> Result<Option<Vec<String>>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "SELECT p.features FROM {CURRENT_SUBSCRIPTION} s JOIN chatapp_subscription_plans p ON p.id = s.plan_id"
            ),
            &[&company],
        )
        .await?;
    Ok(row.map(|r| r.get::<_, Option<Value>>(0).and_then(|f| serde_json::from_value(f).ok()).unwrap_or_default()))
}

// ---------------------------------------------------------------------------------------------
// The plan catalog (master admin; functions/plans)
// ---------------------------------------------------------------------------------------------

/// A subscription plan. Prices are in `currency`; `limits` and `features` as the seeds spell them.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Plan {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub base_price: f64,
    pub setup_fee: f64,
    pub currency: String,
    /// `monthly`, `quarterly`, `semi_annual` or `annual`.
    pub billing_cycle: String,
    /// e.g. `{"messagesPerMonth": 10000, "agentCount": 5, "storageGb": 10}`.
    #[schema(value_type = Object)]
    pub limits: Value,
    /// e.g. `["web_widget", "whatsapp", "slack"]`.
    pub features: Vec<String>,
    pub is_active: bool,
    pub is_public: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Every column the master admin sets (checked by the caller).
#[derive(Debug, Clone)]
pub struct PlanFields {
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub base_price: f64,
    pub setup_fee: f64,
    pub currency: String,
    pub billing_cycle: String,
    pub limits: Value,
    pub features: Vec<String>,
    pub is_active: bool,
    pub is_public: bool,
}

impl Plan {
    /// What the master admin set, to change some of it.
    pub fn fields(&self) -> PlanFields {
        PlanFields {
            name: self.name.clone(),
            slug: self.slug.clone(),
            description: self.description.clone(),
            base_price: self.base_price,
            setup_fee: self.setup_fee,
            currency: self.currency.clone(),
            billing_cycle: self.billing_cycle.clone(),
            limits: self.limits.clone(),
            features: self.features.clone(),
            is_active: self.is_active,
            is_public: self.is_public,
        }
    }
}

const PLAN_COLUMNS: &str = "id, name, slug, description, base_price::float8, COALESCE(setup_fee, 0)::float8, \
    COALESCE(currency, 'USD'), billing_cycle, limits, COALESCE(features, '[]'::jsonb), COALESCE(is_active, true), \
    COALESCE(is_public, true), created_at, updated_at";

fn plan_from_row(r: &tokio_postgres::Row) -> Plan {
    Plan {
        id: r.get(0),
        name: r.get(1),
        slug: r.get(2),
        description: r.get(3),
        base_price: r.get(4),
        setup_fee: r.get(5),
        currency: r.get(6),
        billing_cycle: r.get(7),
        limits: r.get(8),
        features: serde_json::from_value(r.get(9)).unwrap_or_default(),
        is_active: r.get(10),
        is_public: r.get(11),
        created_at: r.get(12),
        updated_at: r.get(13),
    }
}

pub async fn insert_plan(tx: &TenantTx, f: &PlanFields) -> Result<Plan, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "INSERT INTO chatapp_subscription_plans (name, slug, description, base_price, setup_fee, currency,
                     billing_cycle, limits, features, is_active, is_public)
                 VALUES ($1, $2, $3, $4::float8::numeric(10, 2), $5::float8::numeric(10, 2), $6, $7, $8, $9, $10, $11)
                 RETURNING {PLAN_COLUMNS}"
            ),
            &[
                &f.name,
                &f.slug,
                &f.description,
                &f.base_price,
                &f.setup_fee,
                &f.currency,
                &f.billing_cycle,
                &f.limits,
                &serde_json::json!(f.features),
                &f.is_active,
                &f.is_public,
            ],
        )
        .await?;
    Ok(plan_from_row(&row))
}

/// Plans by price then slug: `active` filters on `is_active`; `offered_only` keeps the active,
/// public plans (what a company may be offered).
pub async fn list_plans(
    tx: &TenantTx,
    active: Option<bool>,
    offered_only: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Plan>, i64), DbError> {
    let filter = "($1::bool IS NULL OR COALESCE(is_active, true) = $1)
                  AND (NOT $2 OR (COALESCE(is_active, true) AND COALESCE(is_public, true)))";
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {PLAN_COLUMNS} FROM chatapp_subscription_plans WHERE {filter}
                 ORDER BY base_price, slug LIMIT $3 OFFSET $4"
            ),
            &[&active, &offered_only, &limit, &offset],
        )
        .await?;
    let total: i64 = tx
        .client()
        .query_one(
            &format!("SELECT count(*) FROM chatapp_subscription_plans WHERE {filter}"),
            &[&active, &offered_only],
        )
        .await?
        .get(0);
    Ok((rows.iter().map(plan_from_row).collect(), total))
}

pub async fn get_plan(tx: &TenantTx, id: Uuid) -> Result<Option<Plan>, DbError> {
    let row = tx
        .client()
        .query_opt(&format!("SELECT {PLAN_COLUMNS} FROM chatapp_subscription_plans WHERE id = $1"), &[&id])
        .await?;
    Ok(row.as_ref().map(plan_from_row))
}

pub async fn plan_by_slug(tx: &TenantTx, slug: &str) -> Result<Option<Plan>, DbError> {
    let row = tx
        .client()
        .query_opt(&format!("SELECT {PLAN_COLUMNS} FROM chatapp_subscription_plans WHERE slug = $1"), &[&slug])
        .await?;
    Ok(row.as_ref().map(plan_from_row))
}

/// The plan, locked for a change.
pub async fn lock_plan(tx: &TenantTx, id: Uuid) -> Result<Option<Plan>, DbError> {
    let row = tx
        .client()
        .query_opt(&format!("SELECT {PLAN_COLUMNS} FROM chatapp_subscription_plans WHERE id = $1 FOR UPDATE"), &[&id])
        .await?;
    Ok(row.as_ref().map(plan_from_row))
}

pub async fn update_plan(tx: &TenantTx, id: Uuid, f: &PlanFields) -> Result<Option<Plan>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_subscription_plans
                 SET name = $2, slug = $3, description = $4, base_price = $5::float8::numeric(10, 2),
                     setup_fee = $6::float8::numeric(10, 2), currency = $7, billing_cycle = $8, limits = $9,
                     features = $10, is_active = $11, is_public = $12, updated_at = now()
                 WHERE id = $1
                 RETURNING {PLAN_COLUMNS}"
            ),
            &[
                &id,
                &f.name,
                &f.slug,
                &f.description,
                &f.base_price,
                &f.setup_fee,
                &f.currency,
                &f.billing_cycle,
                &f.limits,
                &serde_json::json!(f.features),
                &f.is_active,
                &f.is_public,
            ],
        )
        .await?;
    Ok(row.as_ref().map(plan_from_row))
}

/// Whether any subscription, past or present, is on the plan (its history keeps it).
pub async fn plan_in_use(tx: &TenantTx, id: Uuid) -> Result<bool, DbError> {
    let row = tx
        .client()
        .query_one("SELECT EXISTS (SELECT 1 FROM chatapp_company_subscriptions WHERE plan_id = $1)", &[&id])
        .await?;
    Ok(row.get(0))
}

pub async fn delete_plan(tx: &TenantTx, id: Uuid) -> Result<bool, DbError> {
    Ok(tx.client().execute("DELETE FROM chatapp_subscription_plans WHERE id = $1", &[&id]).await? == 1)
}

/// A company's current subscription.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Subscription {
    pub id: Uuid,
    pub company_id: Uuid,
    pub plan: Plan,
    /// Limits that override the plan's for this company.
    #[schema(value_type = Object)]
    pub custom_limits: Value,
    /// The plan's limits with the custom ones applied: what is enforced.
    #[schema(value_type = Object)]
    pub limits: Value,
    /// `trial`, `active`, `past_due`, `grace_period`, `expired` or `cancelled`.
    pub status: String,
    pub starts_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub trial_ends_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The subscription [`limits`] and [`features`] read: the company's current one.
pub async fn current_subscription(tx: &TenantTx, company: Uuid) -> Result<Option<Subscription>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "SELECT s.id, s.plan_id, COALESCE(s.custom_limits, '{{}}'::jsonb), s.status::text, s.starts_at,
                        s.expires_at, s.trial_ends_at, p.limits || COALESCE(s.custom_limits, '{{}}'::jsonb)
                 FROM {CURRENT_SUBSCRIPTION} s JOIN chatapp_subscription_plans p ON p.id = s.plan_id"
            ),
            &[&company],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let Some(plan) = get_plan(tx, row.get(1)).await? else { return Ok(None) };
    Ok(Some(Subscription {
        id: row.get(0),
        company_id: company,
        plan,
        custom_limits: row.get(2),
        limits: row.get(7),
        status: row.get(3),
        starts_at: row.get(4),
        expires_at: row.get(5),
        trial_ends_at: row.get(6),
    }))
}

/// Moves `company` to `plan` from now on: its open subscriptions end (`cancelled`) and an active
/// one starts on the plan with `custom_limits`, for a year.
pub async fn change_subscription(
    tx: &TenantTx,
    company: Uuid,
    plan: Uuid,
    custom_limits: &Value,
) -> Result<(), DbError> {
    tx.client()
        .execute(
            "UPDATE chatapp_company_subscriptions
             SET status = 'cancelled', cancelled_at = now(), updated_at = now()
             WHERE company_id = $1 AND status IN ('trial', 'active', 'past_due', 'grace_period')",
            &[&company],
        )
        .await?;
    tx.client()
        .execute(
            "INSERT INTO chatapp_company_subscriptions (company_id, plan_id, custom_limits, status, starts_at, expires_at)
             VALUES ($1, $2, $3, 'active', now(), now() + interval '1 year')",
            &[&company, &plan, custom_limits],
        )
        .await?;
    Ok(())
}
