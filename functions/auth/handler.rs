//! `auth` function: POST /auth/login, POST /auth/refresh, POST /auth/logout, GET /auth/me.

use axum::extract::State;
use axum::Json;
use chatapp::app::Core;
use chatapp::auth::TokenPair;
use chatapp::domain::Email;
use chatapp::error::ErrorBody;
use chatapp::repo::{self, companies::Company, users::User};
use chatapp::routes;
use chatapp::tenant::{Principal, Role};
use chatapp::web::{JsonBody, JsonOrEmpty, RequestMeta, Tenant};
use chatapp::ApiError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

/// What this function may do on AWS: nothing (template.yaml gives it no policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

pub fn routes() -> OpenApiRouter<Core> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    #[schema(value_type = String, format = Email)]
    email: Email,
    /// 1-1024 bytes.
    password: String,
}

/// A token pair and whose it is.
#[derive(Serialize, ToSchema)]
struct LoginResponse {
    #[serde(flatten)]
    tokens: TokenPair,
    user_id: Uuid,
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in", body = LoginResponse),
        (status = 401, description = "Wrong email or password, or the account is deactivated or expired", body = ErrorBody),
        (status = 403, description = "Not from this address, or the company is suspended", body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody)))]
async fn login(
    State(deps): State<Core>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Json<LoginResponse>, ApiError> {
    if body.password.is_empty() || body.password.len() > 1024 {
        return Err(ApiError::validation("password must be 1-1024 bytes"));
    }
    let (tokens, user_id) = deps.auth.login(body.email.as_str(), &body.password, &meta).await?;
    Ok(Json(LoginResponse { tokens, user_id }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

/// Exchange a refresh token for a new token pair (the old refresh token is used up).
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses(
        (status = 200, description = "A new token pair", body = TokenPair),
        (status = 401, description = "The refresh token is invalid, expired or was already used", body = ErrorBody)))]
async fn refresh(
    State(deps): State<Core>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<Json<TokenPair>, ApiError> {
    if body.refresh_token.is_empty() || body.refresh_token.len() > 256 {
        return Err(ApiError::validation("refresh_token is malformed"));
    }
    let tokens = deps.auth.refresh(&body.refresh_token, &meta).await?;
    Ok(Json(tokens))
}

/// The session to end; without a body, every session of the user ends.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct LogoutBody {
    refresh_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct LogoutResponse {
    /// Refresh tokens revoked.
    revoked_sessions: u64,
}

/// Sign out: revoke the given refresh token's session, or all of the user's sessions.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])),
    request_body(content = Option<LogoutBody>, description = "Optional; an empty body signs out everywhere"),
    responses((status = 200, description = "Sessions revoked", body = LogoutResponse)))]
async fn logout(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonOrEmpty(body): JsonOrEmpty<LogoutBody>,
) -> Result<Json<LogoutResponse>, ApiError> {
    let revoked = deps.auth.logout(&ctx, body.refresh_token.as_deref(), &meta).await?;
    Ok(Json(LogoutResponse { revoked_sessions: revoked }))
}

/// Who is calling.
#[derive(Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
enum PrincipalInfo {
    User {
        /// `master_admin`, `company_admin` or `support_agent`.
        #[schema(value_type = String)]
        role: Role,
    },
    ApiKey {
        id: Uuid,
        scopes: Vec<String>,
    },
    Worker,
    Customer,
}

#[derive(Serialize, ToSchema)]
struct MeResponse {
    /// The signed-in user; `null` for API keys.
    user: Option<User>,
    /// The caller's company; `null` for the master admin.
    company: Option<Company>,
    principal: PrincipalInfo,
}

/// The caller: user, company and principal.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = MeResponse)))]
async fn me(State(deps): State<Core>, Tenant(ctx): Tenant) -> Result<Json<MeResponse>, ApiError> {
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let user = match ctx.user_id() {
            Some(id) => repo::users::get(&tx, id).await?,
            None => None,
        };
        let company = match ctx.company_id() {
            Some(c) => repo::companies::get(&tx, c.as_uuid()).await?,
            None => None,
        };
        let principal = match ctx.principal() {
            Principal::User { role, .. } => PrincipalInfo::User { role: *role },
            Principal::ApiKey { key_id, scopes } => PrincipalInfo::ApiKey { id: *key_id, scopes: scopes.clone() },
            Principal::Worker => PrincipalInfo::Worker,
            Principal::Customer { .. } => PrincipalInfo::Customer,
        };
        Ok::<_, ApiError>(MeResponse { user, company, principal })
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}
