//! The company's handoff settings: how long an assignee may leave a conversation unanswered
//! before it goes back to the queue.
//!
//! GET /inbox/settings (anyone in the inbox) · PATCH /inbox/settings (company admins)

use axum::extract::State;
use axum::Json;
use chatapp::app::AppDeps;
use chatapp::audit::{self, AuditEntry};
use chatapp::routes;
use chatapp::tenant::Access;
use chatapp::web::{CompanyParam, JsonBody, RequestMeta, Tenant};
use chatapp::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::conversations::Caller;

pub fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::new().routes(routes!(get_settings, update_settings))
}

/// The company's handoff settings.
#[derive(Serialize, ToSchema)]
pub struct HandoffSettings {
    /// Seconds an assignee may leave a conversation unanswered before it is reassigned (30..=86400).
    reassign_after_seconds: i32,
}

/// The fields to change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffSettingsPatch {
    /// 30..=86400.
    #[schema(minimum = 30, maximum = 86400)]
    reassign_after_seconds: Option<i64>,
}

/// The company's handoff settings.
#[utoipa::path(get, path = "/inbox/settings", tag = "inbox", security(("bearer" = [])), params(CompanyParam),
    responses((status = 200, description = "The settings", body = HandoffSettings)))]
async fn get_settings(State(deps): State<AppDeps>, Tenant(ctx): Tenant) -> Result<Json<HandoffSettings>, ApiError> {
    let caller = Caller::of(&ctx, Access::Read)?;
    let tx = deps.db.begin(&ctx).await?;
    let read = chatapp::repo::inbox::conversations::reassign_after(&tx, caller.company).await.map_err(ApiError::from);
    let seconds = tx.finish(read).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(HandoffSettings { reassign_after_seconds: seconds }))
}

/// Change the company's handoff settings (company admins).
#[utoipa::path(patch, path = "/inbox/settings", tag = "inbox", security(("bearer" = [])), params(CompanyParam),
    request_body = HandoffSettingsPatch,
    responses((status = 200, description = "The settings", body = HandoffSettings)))]
async fn update_settings(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(patch): JsonBody<HandoffSettingsPatch>,
) -> Result<Json<HandoffSettings>, ApiError> {
    let caller = Caller::of(&ctx, Access::Write)?;
    if !caller.is_admin() {
        return Err(ApiError::forbidden("forbidden", "only company admins change the handoff settings"));
    }
    let seconds = match patch.reassign_after_seconds {
        Some(s) if (30..=86_400).contains(&s) => Some(s as i32),
        Some(_) => return Err(ApiError::validation("reassign_after_seconds must be between 30 and 86400")),
        None => None,
    };
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        use chatapp::repo::inbox::conversations as repo;
        let before = repo::reassign_after(&tx, caller.company).await?.ok_or(ApiError::NotFound)?;
        let after = match seconds {
            Some(s) => repo::set_reassign_after(&tx, caller.company, s).await?.ok_or(ApiError::NotFound)?,
            None => before,
        };
        audit::record(
            &tx,
            AuditEntry {
                action: "company.handoff_settings",
                resource_type: "company",
                resource_id: Some(caller.company),
                before: Some(json!({"reassign_after_seconds": before})),
                after: Some(json!({"reassign_after_seconds": after})),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    let seconds = tx.finish(result).await?;
    Ok(Json(HandoffSettings { reassign_after_seconds: seconds }))
}
