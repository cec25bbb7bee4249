//! Per-support-agent statistics by day (UTC): escalations received and closed, replies sent,
//! average first response and handle times, and the customers' ratings. Company admins see
//! every agent of the company (or one, with `user_id`); a support agent sees their own.
//!
//! GET /inbox/stats?from=YYYY-MM-DD&to=YYYY-MM-DD&user_id=
//!
//! Computed from the escalations and messages at each call (SQL function
//! `chatapp_support_agent_stats`, migration 0030), so the figures are never stale.

use axum::extract::State;
use axum::Json;
use chatapp::app::AppDeps;
use chatapp::repo::inbox::stats::AgentDay;
use chatapp::routes;
use chatapp::tenant::Access;
use chatapp::web::{CompanyParam, Query, Tenant};
use chatapp::ApiError;
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use super::conversations::Caller;

/// The longest range one request may ask for, in days.
const MAX_DAYS: i64 = 92;
/// The range when none is given: the last seven days, today included.
const DEFAULT_DAYS: i64 = 7;

pub fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::new().routes(routes!(stats))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// First day (UTC), `YYYY-MM-DD`; default six days before `to`.
    from: Option<NaiveDate>,
    /// Last day (UTC), included; default today. At most 92 days after `from`.
    to: Option<NaiveDate>,
    /// One support agent (company admins); a support agent always gets their own.
    user_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct AgentStats {
    from: NaiveDate,
    to: NaiveDate,
    items: Vec<AgentDay>,
}

/// Statistics per support agent and day.
#[utoipa::path(get, path = "/inbox/stats", tag = "inbox", security(("bearer" = [])),
    params(StatsQuery, CompanyParam),
    responses((status = 200, description = "The agents' days with activity, oldest first", body = AgentStats)))]
async fn stats(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    Query(q): Query<StatsQuery>,
) -> Result<Json<AgentStats>, ApiError> {
    let caller = Caller::of(&ctx, Access::Read)?;
    let to = q.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = q.from.unwrap_or(to - chrono::Days::new(DEFAULT_DAYS as u64 - 1));
    if from > to {
        return Err(ApiError::validation("from must not be after to"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(ApiError::validation(format!("the range is at most {MAX_DAYS} days")));
    }
    let only = if caller.is_admin() { q.user_id } else { Some(caller.user) };
    let tx = deps.db.begin(&ctx).await?;
    let read = chatapp::repo::inbox::stats::agent_days(&tx, caller.company, from, to, only).await;
    let items = tx.finish(read.map_err(ApiError::from)).await?;
    Ok(Json(AgentStats { from, to, items }))
}
