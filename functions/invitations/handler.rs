//! `invitations` function.
//!
//! POST /admin/invitations · GET /admin/invitations · DELETE /admin/invitations/{id} (revoke)
//! POST /invitations/accept (public: the token is the credential)

use chatapp::app::AppDeps;
use chatapp::audit::{self, AuditEntry};
use chatapp::auth::tokens;
use chatapp::domain::{self, Email};
use chatapp::http::{self, HandlerResult, Page, Paged, RequestMeta};
use chatapp::repo;
use chatapp::tenant::{Access, Resource, Role};
use chatapp::{ApiError, TenantCtx};
use chrono::Utc;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

const ADMIN_PREFIX: &str = "/admin/invitations";
pub const INVITATION_DAYS: i64 = 7;

pub async fn handle(deps: &AppDeps, req: Request) -> HandlerResult {
    let path = req.uri().path().to_string();
    if path == "/invitations/accept" {
        return match req.method().as_str() {
            "POST" => accept(deps, &req).await,
            _ => Err(ApiError::MethodNotAllowed),
        };
    }
    let segs = http::segments_after(&path, ADMIN_PREFIX).ok_or(ApiError::NotFound)?;
    let ctx = deps.auth.authenticate(&req).await?.acting_for(http::company_param(&req)?);
    match (req.method().as_str(), segs.as_slice()) {
        ("POST", []) => create(deps, &ctx, &req).await,
        ("GET", []) => list(deps, &ctx, &req).await,
        ("DELETE", [id]) => revoke(deps, &ctx, &req, http::path_id(id)?).await,
        (_, [] | [_]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    email: String,
    role: Option<String>,
    name: Option<String>,
    permissions: Option<Value>,
}

async fn create(deps: &AppDeps, ctx: &TenantCtx, req: &Request) -> HandlerResult {
    ctx.authorize(Resource::Invitations, Access::Write)?;
    let company = ctx.require_company()?;
    let inviter = ctx.user_id().ok_or_else(|| ApiError::forbidden("forbidden", "only users can invite"))?;
    let body: CreateBody = http::parse_json(req, deps.cfg.max_body_bytes)?;
    let email = Email::parse("email", &body.email)?;
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
    let meta = RequestMeta::from_request(req);
    let token = tokens::random_secret();
    let tx = deps.db.begin(ctx).await?;
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
        Ok::<_, ApiError>(json!({"invitation": invitation, "token": token}))
    }
    .await;
    http::created(&tx.finish(result).await?)
}

async fn list(deps: &AppDeps, ctx: &TenantCtx, req: &Request) -> HandlerResult {
    ctx.authorize(Resource::Invitations, Access::Read)?;
    let company = ctx.require_company()?;
    let page = Page::from_request(req)?;
    let tx = deps.db.begin(ctx).await?;
    let result = repo::invitations::list(&tx, company.as_uuid(), page).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    http::ok(&Paged { items, limit: page.limit, offset: page.offset, total })
}

async fn revoke(deps: &AppDeps, ctx: &TenantCtx, req: &Request, id: Uuid) -> HandlerResult {
    ctx.authorize(Resource::Invitations, Access::Write)?;
    let company = ctx.require_company()?;
    let meta = RequestMeta::from_request(req);
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let before = repo::invitations::get(&tx, id)
            .await?
            .filter(|i| i.company_id == company.as_uuid())
            .ok_or(ApiError::NotFound)?;
        let after = repo::invitations::revoke(&tx, id)
            .await?
            .ok_or_else(|| ApiError::conflict("not_pending", format!("invitation is {}", before.status)))?;
        audit::record(
            &tx,
            AuditEntry {
                action: "invitation.revoke",
                resource_type: "invitation",
                resource_id: Some(id),
                before: Some(json!({"status": before.status})),
                after: Some(json!({"status": after.status})),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    http::ok(&tx.finish(result).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    token: String,
    password: String,
    name: Option<String>,
}

async fn accept(deps: &AppDeps, req: &Request) -> HandlerResult {
    let body: AcceptBody = http::parse_json(req, deps.cfg.max_body_bytes)?;
    if body.token.is_empty() || body.token.len() > 128 {
        return Err(ApiError::bad_request("invalid_invitation", "invitation is invalid, used, revoked or expired"));
    }
    let name = domain::optional_text("name", body.name.as_deref(), 255)?;
    let (tokens, user) = deps
        .auth
        .accept_invitation(&body.token, name.as_deref(), &body.password, &RequestMeta::from_request(req))
        .await?;
    http::created(&json!({"user": user, "tokens": tokens}))
}
