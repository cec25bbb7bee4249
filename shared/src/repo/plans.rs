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

/// The effective limits of `company`: its current subscription's plan limits overlaid with
/// the subscription's custom limits. Empty when the company has no subscription.
pub async fn limits(tx: &TenantTx, company: Uuid) -> Result<Value, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT p.limits || COALESCE(s.custom_limits, '{}'::jsonb)
             FROM chatapp_company_subscriptions s
             JOIN chatapp_subscription_plans p ON p.id = s.plan_id
             WHERE s.company_id = $1
             ORDER BY (s.status IN ('active', 'trial', 'grace_period')) DESC, s.created_at DESC
             LIMIT 1",
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
            "SELECT p.features
             FROM chatapp_company_subscriptions s
             JOIN chatapp_subscription_plans p ON p.id = s.plan_id
             WHERE s.company_id = $1
             ORDER BY (s.status IN ('active', 'trial', 'grace_period')) DESC, s.created_at DESC
             LIMIT 1",
            &[&company],
        )
        .await?;
    Ok(row.map(|r| r.get::<_, Option<Value>>(0).and_then(|f| serde_json::from_value(f).ok()).unwrap_or_default()))
}
