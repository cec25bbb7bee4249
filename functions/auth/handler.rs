//! `auth` function: POST /auth/login, POST /auth/refresh, POST /auth/logout, GET /auth/me.

use chatapp::app::AppDeps;
use chatapp::domain::Email;
use chatapp::http::{self, HandlerResult, RequestMeta};
use chatapp::repo;
use chatapp::ApiError;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LogoutBody {
    refresh_token: Option<String>,
}

pub async fn handle(deps: &AppDeps, req: Request) -> HandlerResult {
    let path = req.uri().path().to_string();
    let segs = http::segments_after(&path, "/auth").ok_or(ApiError::NotFound)?;
    match (req.method().as_str(), segs.as_slice()) {
        ("POST", ["login"]) => login(deps, &req).await,
        ("POST", ["refresh"]) => refresh(deps, &req).await,
        ("POST", ["logout"]) => logout(deps, &req).await,
        ("GET", ["me"]) => me(deps, &req).await,
        (_, ["login" | "refresh" | "logout" | "me"]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}

async fn login(deps: &AppDeps, req: &Request) -> HandlerResult {
    let body: LoginBody = http::parse_json(req, deps.cfg.max_body_bytes)?;
    let email = Email::parse("email", &body.email)?;
    if body.password.is_empty() || body.password.len() > 1024 {
        return Err(ApiError::validation("password must be 1-1024 bytes"));
    }
    let meta = RequestMeta::from_request(req);
    let (tokens, user_id) = deps.auth.login(email.as_str(), &body.password, &meta).await?;
    let mut out = serde_json::to_value(&tokens).map_err(ApiError::internal)?;
    out["user_id"] = json!(user_id);
    http::ok(&out)
}

async fn refresh(deps: &AppDeps, req: &Request) -> HandlerResult {
    let body: RefreshBody = http::parse_json(req, deps.cfg.max_body_bytes)?;
    if body.refresh_token.is_empty() || body.refresh_token.len() > 256 {
        return Err(ApiError::validation("refresh_token is malformed"));
    }
    let tokens = deps.auth.refresh(&body.refresh_token, &RequestMeta::from_request(req)).await?;
    http::ok(&tokens)
}

async fn logout(deps: &AppDeps, req: &Request) -> HandlerResult {
    let ctx = deps.auth.authenticate(req).await?;
    let body: LogoutBody = if http::body_bytes(req).is_empty() {
        LogoutBody::default()
    } else {
        http::parse_json(req, deps.cfg.max_body_bytes)?
    };
    let revoked = deps.auth.logout(&ctx, body.refresh_token.as_deref(), &RequestMeta::from_request(req)).await?;
    http::ok(&json!({"revoked_sessions": revoked}))
}

async fn me(deps: &AppDeps, req: &Request) -> HandlerResult {
    let ctx = deps.auth.authenticate(req).await?;
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
        Ok::<_, ApiError>(json!({
            "user": user,
            "company": company,
            "principal": match ctx.principal() {
                chatapp::tenant::Principal::User { role, .. } => json!({"type": "user", "role": role}),
                chatapp::tenant::Principal::ApiKey { key_id, scopes } =>
                    json!({"type": "api_key", "id": key_id, "scopes": scopes}),
                chatapp::tenant::Principal::Worker => json!({"type": "worker"}),
                chatapp::tenant::Principal::Customer { .. } => json!({"type": "customer"}),
            },
        }))
    }
    .await;
    http::ok(&tx.finish(result).await?)
}
