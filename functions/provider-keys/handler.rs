//! `provider-keys` function: a company's own keys for the AI providers (OpenAI, Anthropic, any
//! OpenAI-compatible server).
//!
//! POST   /admin/provider-keys            add a key (sealed; the response shows its last four characters)
//! GET    /admin/provider-keys            list (filter by provider)
//! GET    /admin/provider-keys/{id}       one
//! PATCH  /admin/provider-keys/{id}       rename, change the base URL, (de)activate, rotate the key
//! DELETE /admin/provider-keys/{id}       delete
//! POST   /admin/provider-keys/{id}/test  "test connection": the provider's cheapest authenticated read
//!
//! Company admins only (the master admin passes `?company_id=`); anyone else is 403. A company
//! has at most one active key per provider (409 `key_exists`: rotate that one with PATCH
//! `api_key`, or deactivate it first). The key is sealed with AES-256-GCM under SECRETS_KEY,
//! bound to the company and the key row, and never leaves the database in clear except to call
//! the provider: no route returns it, no audit row holds it; `key_hint` is its last four
//! characters. `base_url` is required for `openai_compatible` and overrides the provider's own
//! API base otherwise (`https://api.openai.com/v1`, `https://api.anthropic.com`); it is HTTPS,
//! or plain HTTP to 127.0.0.1 / localhost.
//!
//! The test action calls OpenAI and compatible servers with `GET {base}/models` and
//! `Authorization: Bearer <key>`, Anthropic with `GET {base}/v1/models`, `x-api-key` and
//! `anthropic-version`, and records when it ran and what failed.
//!
//! The chat turn uses the company's active key for the provider of the agent's model (its
//! `llmConfig.model` from the catalog, else the platform's), with the key's base URL when it has
//! one; an `openai_compatible` model always runs at its key's base URL
//! (`chatapp::chat::company_keys`, cached per process for 30 s).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::Core;
use chatapp::audit::{self, AuditEntry};
use chatapp::error::ErrorBody;
use chatapp::repo::provider_keys::{self as repo, KeyChange, ProviderKey};
use chatapp::routes;
use chatapp::sealed::SealingKey;
use chatapp::tenant::Role;
use chatapp::web::{CompanyParam, IdPath, JsonBody, Page, PageParams, Paged, Query, RequestMeta, Tenant};
use chatapp::{domain, ApiError, TenantCtx};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

/// What this function may do on AWS: nothing (template.yaml gives it no policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

/// OpenAI's API base; `/models` is appended.
pub const OPENAI_BASE: &str = "https://api.openai.com/v1";
/// Anthropic's API base; `/v1/models` is appended.
pub const ANTHROPIC_BASE: &str = "https://api.anthropic.com";

const MAX_NAME: usize = 255;
const MAX_BASE_URL: usize = 500;
const MIN_KEY: usize = 8;
const MAX_KEY: usize = 1000;
/// How much of a provider's error text is kept.
const MAX_ERROR: usize = 500;

pub fn routes() -> OpenApiRouter<Core> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(create, list))
        .routes(routes!(get, update, delete))
        .routes(routes!(test))
}

#[derive(Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum KeyProvider {
    Openai,
    Anthropic,
    OpenaiCompatible,
}

impl KeyProvider {
    fn as_str(self) -> &'static str {
        match self {
            KeyProvider::Openai => "openai",
            KeyProvider::Anthropic => "anthropic",
            KeyProvider::OpenaiCompatible => "openai_compatible",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "openai" => Some(KeyProvider::Openai),
            "anthropic" => Some(KeyProvider::Anthropic),
            "openai_compatible" => Some(KeyProvider::OpenaiCompatible),
            _ => None,
        }
    }
}

/// A new provider key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateKeyBody {
    /// 1-255 characters.
    name: String,
    provider: KeyProvider,
    /// Required for `openai_compatible` (e.g. `https://llm.example.com/v1`); for the others, a
    /// different API base than the provider's own. HTTPS, or plain HTTP to 127.0.0.1 / localhost.
    base_url: Option<String>,
    /// The secret key (8-1000 printable ASCII characters, no spaces). Sealed; never returned.
    api_key: String,
}

/// The fields to change; absent fields are kept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateKeyBody {
    name: Option<String>,
    /// `null` goes back to the provider's own API base (not for `openai_compatible`).
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    base_url: Option<Option<String>>,
    /// A new key for the same provider: a rotation (the last test's outcome is cleared).
    api_key: Option<String>,
    /// `false` keeps the key but stops it counting as the provider's active key.
    is_active: Option<bool>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct KeyListQuery {
    /// Only this provider's keys (`openai`, `anthropic`, `openai_compatible`).
    provider: Option<String>,
}

/// The outcome of a test of the key.
#[derive(Serialize, ToSchema)]
struct TestResult {
    /// The provider accepted the key.
    ok: bool,
    /// What failed: the provider's status and message, or why it could not be reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    provider_key: ProviderKey,
}

/// Company admins of the company (and the master admin acting for one); the company's id.
fn authorize(ctx: &TenantCtx) -> Result<Uuid, ApiError> {
    match ctx.role() {
        Some(Role::MasterAdmin | Role::CompanyAdmin) => Ok(ctx.require_company()?.as_uuid()),
        _ => Err(ApiError::forbidden("forbidden", "only company admins manage provider keys")),
    }
}

/// The key as given (trimmed): 8-1000 printable ASCII characters without spaces, as every
/// provider's keys are (it goes into a request header). Errors never quote it.
fn api_key(raw: &str) -> Result<&str, ApiError> {
    let key = raw.trim();
    if key.len() < MIN_KEY || key.len() > MAX_KEY {
        return Err(ApiError::validation(format!("api_key must be {MIN_KEY}-{MAX_KEY} characters")));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::validation("api_key must be printable ASCII characters without spaces"));
    }
    Ok(key)
}

/// The key's last four characters.
fn hint(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// An API base: HTTPS, or plain HTTP to 127.0.0.1 / localhost; no credentials, query or
/// fragment; kept without its trailing `/`.
fn base_url(raw: &str) -> Result<String, ApiError> {
    let trimmed = raw.trim();
    let bad = || {
        ApiError::validation(
            "base_url must be an https URL (plain http only to 127.0.0.1 or localhost) without credentials, \
             query or fragment, at most 500 characters",
        )
    };
    if trimmed.len() > MAX_BASE_URL {
        return Err(bad());
    }
    let url = url::Url::parse(trimmed).map_err(|_| bad())?;
    let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && local);
    let clean = url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.host_str().is_some_and(|h| !h.is_empty());
    if !scheme_ok || !clean {
        return Err(bad());
    }
    Ok(trimmed.trim_end_matches('/').to_string())
}

fn key(deps: &Core) -> SealingKey {
    SealingKey::new(deps.cfg.secrets_key.expose())
}

fn seal(deps: &Core, company: Uuid, id: Uuid, api_key: &str) -> Result<Vec<u8>, ApiError> {
    key(deps).seal(company, id, api_key.as_bytes()).map_err(ApiError::internal)
}

fn open(deps: &Core, company: Uuid, id: Uuid, sealed: &[u8]) -> Result<String, ApiError> {
    let plain = key(deps).open(company, id, sealed).map_err(ApiError::internal)?;
    String::from_utf8(plain).map_err(ApiError::internal)
}

fn audit_entry<'a>(
    action: &'a str,
    id: Uuid,
    before: Option<&ProviderKey>,
    after: Option<&ProviderKey>,
) -> AuditEntry<'a> {
    AuditEntry::change(action, "provider_key", id, before, after)
}

/// A 409 when the write would make a second active key of a provider.
fn key_exists(e: chatapp::db::DbError) -> ApiError {
    ApiError::conflict_if_unique(
        e,
        "key_exists",
        "the company already has an active key for this provider: rotate it (PATCH api_key) or deactivate it first",
    )
}

/// The provider's message from its error body (`{"error": {"message"}}` for OpenAI and
/// compatible servers, `{"type": "error", "error": {"type", "message"}}` for Anthropic), else
/// the body's start; with the key itself, were a provider to echo it, blanked out.
fn provider_error(status: u16, body: &str, api_key: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/message").or_else(|| v.get("message")).or_else(|| v.get("error")))
        .map(|m| m.as_str().map(str::to_string).unwrap_or_else(|| m.to_string()))
        .unwrap_or_else(|| body.trim().to_string());
    let message: String = message.replace(api_key, "***").chars().take(MAX_ERROR).collect();
    if message.is_empty() {
        format!("the provider answered {status}")
    } else {
        format!("the provider answered {status}: {message}")
    }
}

/// The provider's cheapest authenticated read with `api_key`: `Ok` when it accepted the key.
async fn test_connection(provider: &str, base: Option<&str>, api_key: &str) -> Result<(), String> {
    // No redirects: the key is sent to the configured host and nowhere else.
    static NO_REDIRECTS: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let http = NO_REDIRECTS.get_or_init(|| {
        chatapp::outbound_http::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .expect("HTTP client with rustls")
    });
    let request = if provider == KeyProvider::Anthropic.as_str() {
        let base = base.unwrap_or(ANTHROPIC_BASE).trim_end_matches('/');
        http.get(format!("{base}/v1/models"))
            .header("x-api-key", api_key)
            .header("anthropic-version", chatapp::chat::model::ANTHROPIC_VERSION)
    } else {
        let base = base.unwrap_or(OPENAI_BASE).trim_end_matches('/');
        http.get(format!("{base}/models")).header("authorization", format!("Bearer {api_key}"))
    };
    let response = request
        .send()
        .await
        .map_err(|e| format!("the provider could not be reached: {}", chatapp::error::error_chain(&e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(provider_error(status.as_u16(), &body, api_key))
}

/// Add a provider key. The key is sealed and never returned: the response shows its last four
/// characters. The company's turns use it when its provider is the platform's chat provider.
#[utoipa::path(post, path = "/admin/provider-keys", tag = "provider_keys", security(("bearer" = [])),
    params(CompanyParam), request_body = CreateKeyBody,
    responses(
        (status = 201, description = "The created key (never the key itself)", body = ProviderKey),
        (status = 403, description = "Not a company admin", body = ErrorBody),
        (status = 409, description = "The company already has an active key for this provider", body = ErrorBody)))]
async fn create(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(body): JsonBody<CreateKeyBody>,
) -> Result<(StatusCode, Json<ProviderKey>), ApiError> {
    let company = authorize(&ctx)?;
    let name = domain::text("name", &body.name, MAX_NAME)?;
    let base = body.base_url.as_deref().map(base_url).transpose()?;
    if body.provider == KeyProvider::OpenaiCompatible && base.is_none() {
        return Err(ApiError::validation("base_url is required for an openai_compatible key"));
    }
    let secret = api_key(&body.api_key)?;
    let id = Uuid::new_v4();
    let sealed = seal(&deps, company, id, secret)?;
    let key_hint = hint(secret);
    let tx = deps.db.begin(&ctx).await?;
    let created = async {
        let new = repo::NewKey {
            id,
            company_id: company,
            name: &name,
            provider: body.provider.as_str(),
            base_url: base.as_deref(),
            sealed: &sealed,
            hint: &key_hint,
        };
        let key = repo::insert(&tx, &new).await.map_err(key_exists)?;
        audit::record(&tx, audit_entry("provider_key.create", id, None, Some(&key)), &meta).await?;
        Ok::<_, ApiError>(key)
    }
    .await;
    let created = tx.finish(created).await?;
    // This process's turns see the change at once; others within the model cache's TTL.
    chatapp::chat::company_keys::forget(company);
    Ok((StatusCode::CREATED, Json(created)))
}

/// List the company's provider keys, newest first (never the keys themselves).
#[utoipa::path(get, path = "/admin/provider-keys", tag = "provider_keys", security(("bearer" = [])),
    params(KeyListQuery, PageParams, CompanyParam),
    responses((status = 200, description = "One page of provider keys", body = Paged<ProviderKey>)))]
async fn list(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    page: Page,
    Query(q): Query<KeyListQuery>,
) -> Result<Json<Paged<ProviderKey>>, ApiError> {
    let company = authorize(&ctx)?;
    let provider = match q.provider.as_deref() {
        Some(p) => Some(
            KeyProvider::parse(p)
                .ok_or_else(|| ApiError::validation("provider must be openai, anthropic or openai_compatible"))?
                .as_str(),
        ),
        None => None,
    };
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::list(&tx, company, provider, page.limit, page.offset).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items, page, total)))
}

/// One provider key (never the key itself).
#[utoipa::path(get, path = "/admin/provider-keys/{id}", tag = "provider_keys", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Provider key id"), CompanyParam),
    responses((status = 200, description = "The key", body = ProviderKey),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn get(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<Uuid>,
) -> Result<Json<ProviderKey>, ApiError> {
    let company = authorize(&ctx)?;
    let tx = deps.db.begin(&ctx).await?;
    let found = repo::get(&tx, company, id).await.map_err(ApiError::from);
    tx.finish(found).await?.map(Json).ok_or(ApiError::NotFound)
}

/// Change a provider key: its name, its API base, whether it is active, or the key itself (a
/// rotation).
#[utoipa::path(patch, path = "/admin/provider-keys/{id}", tag = "provider_keys", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Provider key id"), CompanyParam),
    request_body = UpdateKeyBody,
    responses((status = 200, description = "The key (never the key itself)", body = ProviderKey),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Another key of this provider is active", body = ErrorBody)))]
async fn update(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
    JsonBody(body): JsonBody<UpdateKeyBody>,
) -> Result<Json<ProviderKey>, ApiError> {
    let company = authorize(&ctx)?;
    let name = domain::optional_text("name", body.name.as_deref(), MAX_NAME)?;
    let base = match &body.base_url {
        Some(Some(raw)) => Some(Some(base_url(raw)?)),
        Some(None) => Some(None),
        None => None,
    };
    // A key goes only where it was entered for: moving it to another server takes the key
    // again, so an admin who never saw it cannot send it to a server of their own.
    if base.is_some() && body.api_key.is_none() {
        return Err(ApiError::validation("api_key: required when base_url changes"));
    }
    let rotated = match body.api_key.as_deref() {
        Some(raw) => {
            let secret = api_key(raw)?;
            Some((seal(&deps, company, id, secret)?, hint(secret)))
        }
        None => None,
    };
    let is_active = body.is_active;
    let tx = deps.db.begin(&ctx).await?;
    let updated = async {
        let before = repo::lock(&tx, company, id).await?.ok_or(ApiError::NotFound)?;
        if before.provider == KeyProvider::OpenaiCompatible.as_str() && matches!(base, Some(None)) {
            return Err(ApiError::validation("base_url is required for an openai_compatible key"));
        }
        let change = KeyChange {
            name: name.as_deref(),
            base_url: base.as_ref().map(|b| b.as_deref()),
            is_active,
            key: rotated.as_ref().map(|(s, h)| (s.as_slice(), h.as_str())),
        };
        let after = repo::update(&tx, company, id, &change).await.map_err(key_exists)?;
        audit::record(&tx, audit_entry("provider_key.update", id, Some(&before), Some(&after)), &meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    let updated = tx.finish(updated).await?;
    chatapp::chat::company_keys::forget(company);
    Ok(Json(updated))
}

/// Delete a provider key.
#[utoipa::path(delete, path = "/admin/provider-keys/{id}", tag = "provider_keys", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Provider key id"), CompanyParam),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found", body = ErrorBody)))]
async fn delete(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let company = authorize(&ctx)?;
    let tx = deps.db.begin(&ctx).await?;
    let deleted = async {
        let before = repo::lock(&tx, company, id).await?.ok_or(ApiError::NotFound)?;
        repo::delete(&tx, company, id).await?;
        audit::record(&tx, audit_entry("provider_key.delete", id, Some(&before), None), &meta).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    tx.finish(deleted).await?;
    chatapp::chat::company_keys::forget(company);
    Ok(StatusCode::NO_CONTENT)
}

/// Test connection: the provider's cheapest authenticated read with the key (OpenAI and
/// compatible servers: `GET {base}/models`; Anthropic: `GET {base}/v1/models`). The outcome is
/// recorded on the key (`last_tested_at`, `last_test_error`).
#[utoipa::path(post, path = "/admin/provider-keys/{id}/test", tag = "provider_keys", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Provider key id"), CompanyParam),
    responses((status = 200, description = "Whether the provider accepted the key", body = TestResult),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn test(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
) -> Result<Json<TestResult>, ApiError> {
    let company = authorize(&ctx)?;
    let tx = deps.db.begin(&ctx).await?;
    let loaded = async {
        let key = repo::get(&tx, company, id).await?.ok_or(ApiError::NotFound)?;
        let sealed = repo::sealed(&tx, company, id).await?.ok_or(ApiError::NotFound)?;
        Ok::<_, ApiError>((key, sealed))
    }
    .await;
    let (key, sealed) = tx.finish(loaded).await?;
    // The provider is called outside any transaction: no connection is held while it answers.
    let secret = open(&deps, company, id, &sealed)?;
    let outcome = test_connection(&key.provider, key.base_url.as_deref(), &secret).await;
    let error = outcome.err();
    let tx = deps.db.begin(&ctx).await?;
    let recorded = async {
        let after = repo::record_test(&tx, company, id, error.as_deref()).await?.ok_or(ApiError::NotFound)?;
        audit::record(&tx, audit_entry("provider_key.test", id, Some(&key), Some(&after)), &meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    let provider_key = tx.finish(recorded).await?;
    Ok(Json(TestResult { ok: error.is_none(), error, provider_key }))
}
