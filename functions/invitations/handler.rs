//! `invitations` function.
//!
//! POST /admin/invitations · GET /admin/invitations · DELETE /admin/invitations/{id} (revoke)
//! POST /invitations/accept (public: the token is the credential)

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::Core;
use chatapp::audit::{self, AuditEntry};
use chatapp::auth::{tokens, TokenPair};
use chatapp::domain::{self, Email};
use chatapp::error::ErrorBody;
use chatapp::ids::InvitationId;
use chatapp::repo::{self, invitations::Invitation, users::User};
use chatapp::routes;
use chatapp::tenant::{Access, Resource, Role};
use chatapp::web::{CompanyParam, IdPath, JsonBody, Page, PageParams, Paged, RequestMeta, Tenant};
use chatapp::ApiError;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

pub const INVITATION_DAYS: i64 = 7;

/// What this function may do on AWS: nothing (template.yaml gives it no policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

pub fn routes() -> OpenApiRouter<Core> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(create, list))
        .routes(routes!(revoke))
        .routes(routes!(accept))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateInvitationBody {
    #[schema(value_type = String, format = Email)]
    email: Email,
    /// `company_admin` or `support_agent` (the default).
    role: Option<String>,
    name: Option<String>,
    /// `{"<resource>": ["read" | "write"]}`.
    #[schema(value_type = Option<Object>)]
    permissions: Option<Value>,
}

/// An invitation with its token, returned once for the inviter to deliver (only its hash is
/// stored).
#[derive(Serialize, ToSchema)]
pub struct IssuedInvitation {
    pub invitation: Invitation,
    pub token: String,
}

/// Invite someone to the company; the answer holds the token to deliver to them.
#[utoipa::path(post, path = "/admin/invitations", tag = "invitations", security(("bearer" = [])),
    params(CompanyParam), request_body = CreateInvitationBody,
    responses(
        (status = 201, description = "The invitation and its token", body = IssuedInvitation),
        (status = 402, description = "The plan's seats are all in use or invited", body = ErrorBody)))]
async fn create(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(body): JsonBody<CreateInvitationBody>,
) -> Result<(StatusCode, Json<IssuedInvitation>), ApiError> {
    ctx.authorize(Resource::Invitations, Access::Write)?;
    let company = ctx.require_company()?;
    let inviter = ctx.user_id().ok_or_else(|| ApiError::forbidden("forbidden", "only users can invite"))?;
    let email = body.email;
    let role = match body.role.as_deref().map(Role::parse) {
        None => Role::SupportAgent,
        Some(Some(r @ (Role::CompanyAdmin | Role::SupportAgent))) => r,
        Some(_) => return Err(ApiError::validation("role must be company_admin or support_agent")),
    };
    let name = domain::optional_text("name", body.name.as_deref(), 255)?;
    let permissions = body.permissions.unwrap_or_else(|| json!({}));
    if !permissions.is_object() {
        return Err(ApiError::validation("permissions must be an object"));
    }
    let token = tokens::random_secret();
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let limits = repo::plans::limits(&tx, company.as_uuid()).await?;
        if let Some(seats) = repo::plans::limit_of(&limits, "supportSeats") {
            let used = repo::users::seats_in_use(&tx, company.as_uuid()).await?;
            if used >= seats {
                return Err(ApiError::PaymentRequired {
                    code: "seat_limit_reached",
                    message: format!("the plan allows {seats} seats and {used} are in use or invited"),
                });
            }
        }
        let invitation = repo::invitations::create(
            &tx,
            &repo::invitations::NewInvitation {
                company_id: company.as_uuid(),
                invited_by: inviter,
                email: email.as_str(),
                name: name.as_deref(),
                role: role.as_str(),
                permissions: &permissions,
                token_hash: &tokens::sha256_hex(&token),
                expires_at: Utc::now() + chrono::Duration::days(INVITATION_DAYS),
            },
        )
        .await?;
        audit::record(
            &tx,
            AuditEntry {
                action: "invitation.create",
                resource_type: "invitation",
                resource_id: Some(invitation.id),
                before: None,
                after: Some(json!(invitation)),
            },
            &meta,
        )
        .await?;
        // The token is returned once, for the inviter to deliver; only its hash is stored.
        Ok::<_, ApiError>(IssuedInvitation { invitation, token })
    }
    .await;
    Ok((StatusCode::CREATED, Json(tx.finish(result).await?)))
}

/// List the company's invitations (pending ones past their expiry show as `expired`).
#[utoipa::path(get, path = "/admin/invitations", tag = "invitations", security(("bearer" = [])),
    params(PageParams, CompanyParam),
    responses((status = 200, description = "One page of invitations", body = Paged<Invitation>)))]
async fn list(State(deps): State<Core>, Tenant(ctx): Tenant, page: Page) -> Result<Json<Paged<Invitation>>, ApiError> {
    ctx.authorize(Resource::Invitations, Access::Read)?;
    let company = ctx.require_company()?;
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::invitations::list(&tx, company.as_uuid(), page).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items, page, total)))
}

/// Revoke a pending invitation.
#[utoipa::path(delete, path = "/admin/invitations/{id}", tag = "invitations", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Invitation id"), CompanyParam),
    responses(
        (status = 200, description = "The revoked invitation", body = Invitation),
        (status = 409, description = "The invitation is no longer pending", body = ErrorBody)))]
async fn revoke(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<InvitationId>,
    meta: RequestMeta,
) -> Result<Json<Invitation>, ApiError> {
    ctx.authorize(Resource::Invitations, Access::Write)?;
    let company = ctx.require_company()?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = repo::invitations::get(&tx, id.as_uuid())
            .await?
            .filter(|i| i.company_id == company.as_uuid())
            .ok_or(ApiError::NotFound)?;
        let after = repo::invitations::revoke(&tx, id.as_uuid())
            .await?
            .ok_or_else(|| ApiError::conflict("not_pending", format!("invitation is {}", before.status)))?;
        audit::record(
            &tx,
            AuditEntry {
                action: "invitation.revoke",
                resource_type: "invitation",
                resource_id: Some(id.as_uuid()),
                before: Some(json!({"status": before.status})),
                after: Some(json!({"status": after.status})),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AcceptInvitationBody {
    /// The invitation token.
    token: String,
    /// The new account's password.
    password: String,
    name: Option<String>,
}

/// The new account, signed in.
#[derive(Serialize, ToSchema)]
struct AcceptedInvitation {
    user: User,
    tokens: TokenPair,
}

/// Accept an invitation: creates the account and signs it in (the token is the credential).
#[utoipa::path(post, path = "/invitations/accept", tag = "invitations", request_body = AcceptInvitationBody,
    responses((status = 201, description = "The new user and their tokens", body = AcceptedInvitation)))]
async fn accept(
    State(deps): State<Core>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<AcceptInvitationBody>,
) -> Result<(StatusCode, Json<AcceptedInvitation>), ApiError> {
    if body.token.is_empty() || body.token.len() > 128 {
        return Err(ApiError::bad_request("invalid_invitation", "invitation is invalid, used, revoked or expired"));
    }
    let name = domain::optional_text("name", body.name.as_deref(), 255)?;
    let (tokens, user) = deps.auth.accept_invitation(&body.token, name.as_deref(), &body.password, &meta).await?;
    Ok((StatusCode::CREATED, Json(AcceptedInvitation { user, tokens })))
}
