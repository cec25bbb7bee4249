//! Authentication: the only code that builds a [`TenantCtx`]. Email + password login
//! (argon2id), short-lived HS256 access tokens with rotating refresh tokens, API keys, and
//! invitation acceptance. Lookups that must happen before the tenant is known go through
//! narrow SECURITY DEFINER functions; everything after runs under the tenant's RLS.

pub mod jwt;
pub mod password;
mod session_cache;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::config::Config;
use crate::db::{Db, DbError};
use crate::error::ApiError;
use crate::repo::{self, refresh_tokens::NewRefreshToken};
use crate::status::{CompanyStatus, InvitationStatus};
use crate::tenant::{CompanyId, Principal, Role, TenantCtx};
use crate::web::RequestMeta;
use session_cache::{ResolvedSession, SessionCache};

/// The user columns auth needs, read through `chatapp_auth_user_by_*`.
struct AuthUser {
    id: Uuid,
    company_id: Option<Uuid>,
    role: Role,
    password_hash: Option<String>,
    is_active: bool,
    access_expires_at: Option<DateTime<Utc>>,
    ip_allowlist: Value,
    permissions: Value,
    /// The company's status, read in the same round trip; `None` for the master admin.
    company_status: Option<String>,
}

const AUTH_USER_COLUMNS: &str = "id, company_id, role::text, password_hash, is_active, \
    access_expires_at, COALESCE(ip_allowlist, '[]'::jsonb), COALESCE(permissions, '{}'::jsonb), \
    CASE WHEN company_id IS NOT NULL THEN COALESCE(chatapp_auth_company_status(company_id), 'unknown') END";

impl AuthUser {
    fn from_row(r: &Row) -> Result<Self, ApiError> {
        let role: String = r.get(2);
        Ok(Self {
            id: r.get(0),
            company_id: r.get(1),
            role: Role::parse(&role).ok_or_else(|| ApiError::internal(format!("unknown role {role}")))?,
            password_hash: r.get(3),
            is_active: r.get(4),
            access_expires_at: r.get(5),
            ip_allowlist: r.get(6),
            permissions: r.get(7),
            company_status: r.get(8),
        })
    }

    fn ctx(&self) -> TenantCtx {
        TenantCtx::new(
            self.company_id.map(CompanyId::new),
            Principal::User { user_id: self.id, role: self.role },
            self.permissions.clone(),
        )
    }
}

/// Issued on login, refresh and invitation acceptance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// A short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Single use: exchange it at `/auth/refresh` for a new pair.
    pub refresh_token: String,
}

#[derive(Clone)]
pub struct Auth {
    db: Db,
    jwt_secret: Vec<u8>,
    access_ttl: Duration,
    refresh_ttl: Duration,
    max_failures: i64,
    login_window: Duration,
    widget_sessions: Arc<SessionCache>,
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "email or password is incorrect")
}

fn unauthenticated(message: &str) -> ApiError {
    ApiError::unauthorized("unauthenticated", message.to_string())
}

impl Auth {
    pub fn new(db: Db, cfg: &Config) -> Self {
        Self {
            db,
            jwt_secret: cfg.jwt_secret.expose().clone(),
            access_ttl: cfg.access_token_ttl,
            refresh_ttl: cfg.refresh_token_ttl,
            max_failures: cfg.login_max_failures,
            login_window: cfg.login_window,
            widget_sessions: Arc::new(SessionCache::new(cfg.widget_session_cache)),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// `Authorization: Bearer <JWT | API key>` → the acting tenant context.
    pub async fn authenticate(&self, authorization: Option<&str>, meta: &RequestMeta) -> Result<TenantCtx, ApiError> {
        let header = authorization.ok_or_else(|| unauthenticated("missing Authorization: Bearer header"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthenticated("Authorization must be a Bearer token"))?;
        if tokens::api_key_prefix(token).is_some() {
            self.authenticate_api_key(token).await
        } else {
            self.authenticate_jwt(token, meta).await
        }
    }

    async fn authenticate_jwt(&self, token: &str, meta: &RequestMeta) -> Result<TenantCtx, ApiError> {
        let claims = jwt::verify(token, &self.jwt_secret, Utc::now().timestamp()).map_err(|e| match e {
            jwt::JwtError::Expired => ApiError::unauthorized("token_expired", "access token expired"),
            _ => unauthenticated("invalid access token"),
        })?;
        // The user row, not the token, is the authority: deactivation, expiry, allowlist and
        // role changes apply to tokens already issued.
        let user = self.user_by_id(claims.sub).await?.ok_or_else(|| unauthenticated("invalid access token"))?;
        check_user_may_act(&user, meta.ip)?;
        Ok(user.ctx())
    }

    async fn authenticate_api_key(&self, key: &str) -> Result<TenantCtx, ApiError> {
        let prefix = tokens::api_key_prefix(key).expect("checked by caller");
        let conn = self.db.system().await?;
        let row = conn
            .query_opt(
                "SELECT id, company_id, key_hash, COALESCE(is_active, true), revoked_at, expires_at,
                        COALESCE(permissions, '[]'::jsonb), chatapp_auth_company_status(company_id)
                 FROM chatapp_auth_api_key_by_prefix($1)",
                &[&prefix],
            )
            .await
            .map_err(DbError::from)?;
        drop(conn);
        let invalid = || ApiError::unauthorized("invalid_api_key", "API key is invalid, revoked or expired");
        let row = row.ok_or_else(invalid)?;
        let key_hash: String = row.get(2);
        if !tokens::constant_time_eq(key_hash.as_bytes(), tokens::sha256_hex(key).as_bytes()) {
            return Err(invalid());
        }
        let active: bool = row.get(3);
        let revoked: Option<DateTime<Utc>> = row.get(4);
        let expires: Option<DateTime<Utc>> = row.get(5);
        if !active || revoked.is_some() || expires.is_some_and(|e| e <= Utc::now()) {
            return Err(invalid());
        }
        let company: Uuid = row.get(1);
        check_company_status(row.get(7))?;
        let scopes: Vec<String> = serde_json::from_value(row.get::<_, Value>(6)).unwrap_or_default();
        let ctx = TenantCtx::new(
            Some(CompanyId::new(company)),
            Principal::ApiKey { key_id: row.get(0), scopes },
            Value::Null,
        );
        let tx = self.db.begin(&ctx).await?;
        repo::api_keys::touch_used(&tx, row.get(0)).await?;
        tx.commit().await?;
        Ok(ctx)
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<AuthUser>, ApiError> {
        let conn = self.db.system().await?;
        let row = conn
            .query_opt(&format!("SELECT {AUTH_USER_COLUMNS} FROM chatapp_auth_user_by_id($1)"), &[&id])
            .await
            .map_err(DbError::from)?;
        row.as_ref().map(AuthUser::from_row).transpose()
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<AuthUser>, ApiError> {
        let conn = self.db.system().await?;
        let row = conn
            .query_opt(&format!("SELECT {AUTH_USER_COLUMNS} FROM chatapp_auth_user_by_email($1)"), &[&email])
            .await
            .map_err(DbError::from)?;
        row.as_ref().map(AuthUser::from_row).transpose()
    }

    async fn check_company_active(&self, company: Uuid) -> Result<(), ApiError> {
        let conn = self.db.system().await?;
        let status: Option<String> =
            conn.query_one("SELECT chatapp_auth_company_status($1)", &[&company]).await.map_err(DbError::from)?.get(0);
        check_company_status(status.as_deref())
    }

    /// Email + password login. Failures are counted per email and per address; over the
    /// limit the answer is 429 before any password is checked.
    pub async fn login(&self, email: &str, password: &str, meta: &RequestMeta) -> Result<(TokenPair, Uuid), ApiError> {
        let email = email.trim().to_lowercase();
        self.check_login_rate(&email, meta.ip).await?;
        let user = self.user_by_email(&email).await?;
        let verified = match user.as_ref().and_then(|u| u.password_hash.as_deref()) {
            Some(hash) => password::verify_password(password, hash),
            None => {
                password::burn_verification(password);
                false
            }
        };
        let user = match (user, verified) {
            (Some(u), true) => u,
            _ => {
                self.record_login_attempt(&email, meta.ip, false).await?;
                return Err(invalid_credentials());
            }
        };
        if let Err(e) = check_user_may_act(&user, meta.ip) {
            self.record_login_attempt(&email, meta.ip, false).await?;
            return Err(e);
        }
        self.record_login_attempt(&email, meta.ip, true).await?;
        let ctx = user.ctx();
        let tx = self.db.begin(&ctx).await?;
        let result = async {
            repo::users::touch_login(&tx, user.id).await?;
            let (pair, _) = self.issue(&tx, &user, Uuid::new_v4(), meta).await?;
            audit::record(
                &tx,
                AuditEntry {
                    action: "user.login",
                    resource_type: "user",
                    resource_id: Some(user.id),
                    before: None,
                    after: None,
                },
                meta,
            )
            .await?;
            Ok::<_, ApiError>(pair)
        }
        .await;
        let pair = tx.finish(result).await?;
        Ok((pair, user.id))
    }

    async fn check_login_rate(&self, email: &str, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let conn = self.db.system().await?;
        let window = self.login_window.as_secs_f64();
        let row = conn
            .query_one(
                "SELECT
                   (SELECT count(*) FROM chatapp_login_attempts
                     WHERE email = $1 AND NOT succeeded AND created_at > now() - make_interval(secs => $3)),
                   (SELECT count(*) FROM chatapp_login_attempts
                     WHERE $2::inet IS NOT NULL AND ip_address = $2 AND NOT succeeded
                       AND created_at > now() - make_interval(secs => $3))",
                &[&email, &ip, &window],
            )
            .await
            .map_err(DbError::from)?;
        let (by_email, by_ip): (i64, i64) = (row.get(0), row.get(1));
        // One address may try several accounts (an office), but not without bound.
        if by_email >= self.max_failures || by_ip >= self.max_failures * 4 {
            return Err(ApiError::TooManyRequests {
                message: "too many failed sign-in attempts; try again later".into(),
                retry_after_secs: self.login_window.as_secs(),
            });
        }
        Ok(())
    }

    async fn record_login_attempt(&self, email: &str, ip: Option<IpAddr>, ok: bool) -> Result<(), ApiError> {
        let conn = self.db.system().await?;
        conn.execute(
            "INSERT INTO chatapp_login_attempts (email, ip_address, succeeded) VALUES ($1, $2, $3)",
            &[&email, &ip, &ok],
        )
        .await
        .map_err(DbError::from)?;
        Ok(())
    }

    async fn issue(
        &self,
        tx: &crate::db::TenantTx,
        user: &AuthUser,
        family: Uuid,
        meta: &RequestMeta,
    ) -> Result<(TokenPair, Uuid), ApiError> {
        let now = Utc::now();
        let claims = jwt::AccessClaims {
            sub: user.id,
            cid: user.company_id,
            role: user.role.as_str().to_string(),
            iat: now.timestamp(),
            exp: now.timestamp() + self.access_ttl.as_secs() as i64,
            typ: "access".into(),
        };
        let refresh = tokens::random_secret();
        let expires_at = now + chrono::Duration::from_std(self.refresh_ttl).map_err(ApiError::internal)?;
        let hash = tokens::sha256_hex(&refresh);
        let refresh_id = Uuid::new_v4();
        repo::refresh_tokens::insert(
            tx,
            &NewRefreshToken {
                id: refresh_id,
                user_id: user.id,
                company_id: user.company_id,
                token_hash: &hash,
                family_id: family,
                expires_at,
                ip: meta.ip,
                user_agent: meta.user_agent.as_deref(),
            },
        )
        .await?;
        let pair = TokenPair {
            access_token: jwt::sign(&claims, &self.jwt_secret),
            token_type: "Bearer",
            expires_in: self.access_ttl.as_secs(),
            refresh_token: refresh,
        };
        Ok((pair, refresh_id))
    }

    /// Rotates a refresh token. Presenting an already-used token revokes its whole family
    /// (someone else holds a copy).
    pub async fn refresh(&self, refresh_token: &str, meta: &RequestMeta) -> Result<TokenPair, ApiError> {
        let invalid = || ApiError::unauthorized("invalid_refresh_token", "refresh token is invalid or expired");
        let conn = self.db.system().await?;
        let row = conn
            .query_opt(
                "SELECT id, user_id, family_id, expires_at, revoked_at FROM chatapp_auth_refresh_token($1)",
                &[&tokens::sha256_hex(refresh_token)],
            )
            .await
            .map_err(DbError::from)?;
        drop(conn);
        let row = row.ok_or_else(invalid)?;
        let (id, user_id, family): (Uuid, Uuid, Uuid) = (row.get(0), row.get(1), row.get(2));
        let expires_at: DateTime<Utc> = row.get(3);
        let revoked_at: Option<DateTime<Utc>> = row.get(4);
        let user = self.user_by_id(user_id).await?.ok_or_else(invalid)?;
        let ctx = user.ctx();
        if revoked_at.is_some() {
            let tx = self.db.begin(&ctx).await?;
            repo::refresh_tokens::revoke_family(&tx, family).await?;
            tx.commit().await?;
            tracing::warn!(%user_id, %family, "refresh token reuse; family revoked");
            return Err(ApiError::unauthorized(
                "refresh_token_reused",
                "refresh token was already used; sign in again",
            ));
        }
        if expires_at <= Utc::now() {
            return Err(invalid());
        }
        check_user_may_act(&user, meta.ip)?;
        let tx = self.db.begin(&ctx).await?;
        let result = async {
            let (pair, new_id) = self.issue(&tx, &user, family, meta).await?;
            if !repo::refresh_tokens::rotate(&tx, id, new_id).await? {
                return Err(invalid());
            }
            Ok(pair)
        }
        .await;
        tx.finish(result).await
    }

    /// Revokes the given refresh token's family, or every session of the user.
    pub async fn logout(
        &self,
        ctx: &TenantCtx,
        refresh_token: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<u64, ApiError> {
        let user_id = ctx.user_id().ok_or_else(|| ApiError::forbidden("forbidden", "only users sign out"))?;
        let tx = self.db.begin(ctx).await?;
        let result = async {
            let revoked = match refresh_token {
                Some(t) => {
                    let family: Option<Uuid> = tx
                        .client()
                        .query_opt(
                            "SELECT family_id FROM chatapp_refresh_tokens WHERE token_hash = $1 AND user_id = $2",
                            &[&tokens::sha256_hex(t), &user_id],
                        )
                        .await
                        .map_err(DbError::from)?
                        .map(|r| r.get(0));
                    match family {
                        Some(f) => repo::refresh_tokens::revoke_family(&tx, f).await?,
                        None => return Err(ApiError::validation("refresh_token does not belong to this user")),
                    }
                }
                None => repo::refresh_tokens::revoke_all_for_user(&tx, user_id).await?,
            };
            audit::record(
                &tx,
                AuditEntry {
                    action: "user.logout",
                    resource_type: "user",
                    resource_id: Some(user_id),
                    before: None,
                    after: Some(json!({"revoked_sessions": revoked})),
                },
                meta,
            )
            .await?;
            Ok(revoked)
        }
        .await;
        tx.finish(result).await
    }

    /// Accepts an invitation: creates the user with the invited role and signs them in.
    pub async fn accept_invitation(
        &self,
        token: &str,
        name: Option<&str>,
        new_password: &str,
        meta: &RequestMeta,
    ) -> Result<(TokenPair, repo::users::User), ApiError> {
        let invalid = || ApiError::bad_request("invalid_invitation", "invitation is invalid, used, revoked or expired");
        password::check_password_policy(new_password).map_err(ApiError::validation)?;
        let conn = self.db.system().await?;
        let row = conn
            .query_opt(
                "SELECT id, company_id, email, role::text, COALESCE(permissions, '{}'::jsonb), status, expires_at
                 FROM chatapp_auth_invitation_by_token($1)",
                &[&tokens::sha256_hex(token)],
            )
            .await
            .map_err(DbError::from)?;
        drop(conn);
        let row = row.ok_or_else(invalid)?;
        let status: InvitationStatus = row.get(5);
        let expires_at: DateTime<Utc> = row.get(6);
        if status != InvitationStatus::Pending || expires_at <= Utc::now() {
            return Err(invalid());
        }
        let (invitation_id, company): (Uuid, Uuid) = (row.get(0), row.get(1));
        self.check_company_active(company).await?;
        let role_name: String = row.get(3);
        let role = Role::parse(&role_name).ok_or_else(invalid)?;
        let email: String = row.get(2);
        let permissions: Value = row.get(4);
        let hash = password::hash_password(new_password).map_err(|e| ApiError::internal(e.to_string()))?;
        let user = AuthUser {
            id: Uuid::new_v4(),
            company_id: Some(company),
            role,
            password_hash: None,
            is_active: true,
            access_expires_at: None,
            ip_allowlist: json!([]),
            company_status: Some(CompanyStatus::Active.to_string()),
            permissions: permissions.clone(),
        };
        let tx = self.db.begin(&user.ctx()).await?;
        let result = async {
            let created = repo::users::create(
                &tx,
                &repo::users::NewUser {
                    id: user.id,
                    company_id: Some(company),
                    email: &email,
                    name,
                    role: role.as_str(),
                    permissions: &permissions,
                    password_hash: &hash,
                },
            )
            .await
            .map_err(|e| match e.unique_violation() {
                Some(_) => ApiError::conflict("email_taken", "an account with this email already exists"),
                None => e.into(),
            })?;
            // The invitation itself already held a seat, so accepting never exceeds the plan.
            // Exactly once: a concurrent accept finds it no longer pending and rolls back.
            if !repo::invitations::accept(&tx, invitation_id, user.id).await? {
                return Err(invalid());
            }
            let (pair, _) = self.issue(&tx, &user, Uuid::new_v4(), meta).await?;
            audit::record(
                &tx,
                AuditEntry {
                    action: "invitation.accept",
                    resource_type: "invitation",
                    resource_id: Some(invitation_id),
                    before: None,
                    after: Some(json!({"user_id": user.id, "role": role.as_str()})),
                },
                meta,
            )
            .await?;
            Ok((pair, created))
        }
        .await;
        tx.finish(result).await
    }
}

impl Auth {
    /// A widget visitor of the company that owns `agent_id`. Unknown or deleted agents, and
    /// companies that are gone, are 404: a public id reveals nothing else.
    pub async fn widget_ctx(&self, agent_id: Uuid) -> Result<TenantCtx, ApiError> {
        let conn = self.db.system().await?;
        let row = conn
            .query_one(
                "SELECT c, chatapp_auth_company_status(c) FROM chatapp_resolve_agent_company($1) AS c",
                &[&agent_id],
            )
            .await
            .map_err(DbError::from)?;
        let company: Option<Uuid> = row.get(0);
        let company = company.ok_or(ApiError::NotFound)?;
        let status: Option<String> = row.get(1);
        match parse_company_status(status.as_deref()) {
            Some(CompanyStatus::Active | CompanyStatus::Pending) => {}
            Some(CompanyStatus::Suspended) => {
                return Err(ApiError::forbidden("company_suspended", "this support chat is not available"))
            }
            _ => return Err(ApiError::NotFound),
        }
        Ok(TenantCtx::new(Some(CompanyId::new(company)), Principal::Customer { conversation_id: None }, Value::Null))
    }

    /// The conversation a session token opens. Tokens are stored as SHA-256; a wrong or
    /// unknown one is 401. A token resolved in the last `WIDGET_SESSION_CACHE_SECS` is not
    /// looked up again (see `session_cache`).
    pub async fn session_ctx(&self, token: &str) -> Result<WidgetSession, ApiError> {
        let invalid = || ApiError::unauthorized("invalid_session", "the session token is missing, wrong or expired");
        if token.len() < 20 || token.len() > 200 {
            return Err(invalid());
        }
        let token_hash = tokens::sha256_hex(token);
        let session = match self.widget_sessions.get(&token_hash) {
            Some(session) => session,
            None => {
                let session = self.resolve_session(&token_hash).await?.ok_or_else(invalid)?;
                self.widget_sessions.put(token_hash, session.clone());
                session
            }
        };
        let ctx = TenantCtx::new(
            Some(CompanyId::new(session.company_id)),
            Principal::Customer { conversation_id: Some(session.conversation_id) },
            Value::Null,
        );
        Ok(WidgetSession {
            ctx,
            conversation_id: session.conversation_id,
            agent_id: session.agent_id,
            allowed_domains: session.allowed_domains,
        })
    }

    /// The session stored under `token_hash`, if its company may still chat.
    async fn resolve_session(&self, token_hash: &str) -> Result<Option<ResolvedSession>, ApiError> {
        let conn = self.db.system().await?;
        let row = conn
            .query_opt(
                "SELECT conversation_id, company_id, agent_id, company_status, allowed_domains
                 FROM chatapp_resolve_widget_session($1)",
                &[&token_hash],
            )
            .await
            .map_err(DbError::from)?;
        Ok(row.filter(|row| check_company_status(row.get(3)).is_ok()).map(|row| ResolvedSession {
            conversation_id: row.get(0),
            company_id: row.get(1),
            agent_id: row.get(2),
            allowed_domains: Arc::new(serde_json::from_value(row.get(4)).unwrap_or_default()),
        }))
    }

    /// Drops this process's cached copy of a session (its conversation has ended).
    pub fn forget_session(&self, token: &str) {
        self.widget_sessions.forget(&tokens::sha256_hex(token));
    }
}

/// What a widget session token opens.
#[derive(Debug)]
pub struct WidgetSession {
    pub ctx: TenantCtx,
    pub conversation_id: Uuid,
    pub agent_id: Uuid,
    /// The agent's widget `allowed_domains` (empty: any site).
    pub allowed_domains: Arc<Vec<String>>,
}

/// Context for a queue worker handling a job this platform enqueued for `company`. Only call
/// it with a company id read from one of our own queue messages or storage keys.
pub fn worker_ctx(company: Uuid) -> TenantCtx {
    TenantCtx::new(Some(CompanyId::new(company)), Principal::Worker, Value::Null)
}

/// `chatapp_auth_company_status` answers text: a company's status, `deleted`, or NULL (or
/// `unknown`) for a company that does not exist; those last are `None`.
fn parse_company_status(status: Option<&str>) -> Option<CompanyStatus> {
    status.and_then(|s| s.parse().ok())
}

fn check_company_status(status: Option<&str>) -> Result<(), ApiError> {
    match parse_company_status(status) {
        Some(CompanyStatus::Active | CompanyStatus::Pending) => Ok(()),
        Some(CompanyStatus::Suspended) => Err(ApiError::forbidden("company_suspended", "this company is suspended")),
        Some(CompanyStatus::Deleted) | None => Err(unauthenticated("company no longer exists")),
    }
}

/// Account state that must hold on every request, not only at login.
fn check_user_may_act(user: &AuthUser, ip: Option<IpAddr>) -> Result<(), ApiError> {
    if !user.is_active {
        return Err(ApiError::unauthorized("account_inactive", "this account is deactivated"));
    }
    if user.access_expires_at.is_some_and(|t| t <= Utc::now()) {
        return Err(ApiError::unauthorized("access_expired", "this account's access has expired"));
    }
    if !ip_allowed(&user.ip_allowlist, ip) {
        return Err(ApiError::forbidden("ip_not_allowed", "this account may not sign in from this address"));
    }
    if user.company_id.is_some() {
        check_company_status(user.company_status.as_deref())?;
    }
    Ok(())
}

/// True when the allowlist is empty or `ip` matches one of its addresses or CIDR blocks.
pub fn ip_allowed(allowlist: &Value, ip: Option<IpAddr>) -> bool {
    let Some(entries) = allowlist.as_array() else { return true };
    if entries.is_empty() {
        return true;
    }
    let Some(ip) = ip else { return false };
    entries.iter().filter_map(Value::as_str).any(|e| {
        if let Ok(net) = e.parse::<ipnet::IpNet>() {
            net.contains(&ip)
        } else {
            e.parse::<IpAddr>().is_ok_and(|a| a == ip)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_matching() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(ip_allowed(&json!([]), Some(ip)));
        assert!(ip_allowed(&json!(["10.0.0.0/8"]), Some(ip)));
        assert!(ip_allowed(&json!(["10.1.2.3"]), Some(ip)));
        assert!(!ip_allowed(&json!(["192.168.0.0/16"]), Some(ip)));
        assert!(!ip_allowed(&json!(["10.0.0.0/8"]), None));
    }
}
