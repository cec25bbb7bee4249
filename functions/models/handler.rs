//! `models` function: the AI model catalog (migration 0003; aliases since 0023).
//!
//! POST   /admin/models          add a model (master admin)
//! GET    /admin/models          list (filter by provider and by whether active)
//! GET    /admin/models/{id}     one
//! PATCH  /admin/models/{id}     change (master admin); `is_active: false` retires a model
//! DELETE /admin/models/{id}     remove an unused model (master admin)
//! GET    /admin/models/price    what a reported model name is priced as (`?model=`)
//!
//! The catalog is global: the master admin writes it (anyone else: 403 `master_only`), company
//! admins (and users granted `agents` reads) read the active models, the master admin every
//! model. A model an agent's `llm_config.model` names (by slug or provider model id) is not
//! deleted (409 `model_in_use`): retire it with `is_active: false` instead.
//!
//! The price of a chat turn (`chatapp::repo::models::price_for`) is looked up by the model name
//! the provider reported: its provider model id or slug, then its aliases, then the same with a
//! dated snapshot suffix removed (`gpt-4o-mini-2024-07-18` is `gpt-4o-mini`). A model that
//! matches nothing is not priced at 0: the turn counts its tokens as `unpriced_tokens` and its
//! reply says `cost_unknown`. `GET /admin/models/price` answers what the lookup resolves.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chatapp::app::Core;
use chatapp::audit::{self, AuditEntry};
use chatapp::error::{ErrorBody, ErrorDetail};
use chatapp::repo::models::{self as repo, AiModel, ModelFields, PriceMatch};
use chatapp::routes;
use chatapp::tenant::{Access, Resource};
use chatapp::web::{IdPath, JsonBody, Page, PageParams, Paged, Query, RequestMeta, Tenant};
use chatapp::{domain, ApiError};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

/// What this function may do on AWS: nothing (template.yaml gives it no policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

const MAX_SLUG: usize = 100;
const MAX_NAME: usize = 255;
const MAX_PROVIDER_MODEL: usize = 150;
const MAX_ALIASES: usize = 20;
const MAX_CONTEXT_WINDOW: i64 = 10_000_000;
const MAX_PRICE: f64 = 10_000.0;

pub fn routes() -> OpenApiRouter<Core> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(create, list))
        .routes(routes!(price))
        .routes(routes!(get, update, delete))
}

#[derive(Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Provider {
    Openai,
    Anthropic,
    Local,
    OpenaiCompatible,
}

impl Provider {
    fn as_str(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Local => "local",
            Provider::OpenaiCompatible => "openai_compatible",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "openai" => Some(Provider::Openai),
            "anthropic" => Some(Provider::Anthropic),
            "local" => Some(Provider::Local),
            "openai_compatible" => Some(Provider::OpenaiCompatible),
            _ => None,
        }
    }
}

#[derive(Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum ModelType {
    Chat,
    Embedding,
    Extractive,
}

impl ModelType {
    fn as_str(self) -> &'static str {
        match self {
            ModelType::Chat => "chat",
            ModelType::Embedding => "embedding",
            ModelType::Extractive => "extractive",
        }
    }
}

/// A new catalog model.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateModelBody {
    /// 1-100 characters of a-z, 0-9, `-` and `.`; unique.
    slug: String,
    /// 1-255 characters.
    name: String,
    provider: Provider,
    /// The model id sent to the provider's API, 1-150 characters.
    provider_model: String,
    /// Default `chat`.
    model_type: Option<ModelType>,
    /// Other names the provider reports for this model: at most 20, each 1-150 characters,
    /// none twice.
    aliases: Option<Vec<String>>,
    /// Tokens, 1 to 10,000,000.
    #[schema(minimum = 1, maximum = 10000000)]
    context_window: Option<i64>,
    /// Tokens, 1 to 10,000,000.
    #[schema(minimum = 1, maximum = 10000000)]
    max_output_tokens: Option<i64>,
    /// Price per million input tokens, 0 to 10,000 (0 for a free model: there is no default).
    #[schema(minimum = 0, maximum = 10000)]
    input_price_per_1m: f64,
    /// Price per million output tokens, 0 to 10,000.
    #[schema(minimum = 0, maximum = 10000)]
    output_price_per_1m: f64,
    /// Three capital letters (ISO 4217); default `USD`.
    currency: Option<String>,
    /// Default true.
    is_active: Option<bool>,
}

/// The fields to change; absent fields are kept, `null` clears `context_window` and
/// `max_output_tokens`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateModelBody {
    slug: Option<String>,
    name: Option<String>,
    provider: Option<Provider>,
    provider_model: Option<String>,
    model_type: Option<ModelType>,
    /// Replaces the aliases (`[]` clears them).
    aliases: Option<Vec<String>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 10000000)]
    context_window: Option<Option<i64>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 10000000)]
    max_output_tokens: Option<Option<i64>>,
    #[schema(minimum = 0, maximum = 10000)]
    input_price_per_1m: Option<f64>,
    #[schema(minimum = 0, maximum = 10000)]
    output_price_per_1m: Option<f64>,
    currency: Option<String>,
    /// `false` retires the model: company admins no longer see it (turns that report it are
    /// still priced).
    is_active: Option<bool>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// Filters of the catalog list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ModelListQuery {
    /// Only this provider's models (`openai`, `anthropic`, `local`, `openai_compatible`).
    provider: Option<String>,
    /// `true`: only active models; `false`: only retired ones (the master admin's to see).
    #[param(value_type = Option<bool>)]
    active: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PriceQuery {
    /// The model name as a provider reported it, e.g. `gpt-4o-mini-2024-07-18`.
    model: String,
}

fn slug(raw: &str) -> Result<String, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_SLUG
        && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(raw.to_string())
    } else {
        Err(ApiError::validation(format!("slug must be 1-{MAX_SLUG} characters of a-z, 0-9, '-' and '.'")))
    }
}

/// At most 20 aliases, each trimmed, 1-150 characters without control characters, none twice.
fn aliases(list: Vec<String>) -> Result<Vec<String>, ApiError> {
    if list.len() > MAX_ALIASES {
        return Err(ApiError::validation(format!("aliases must have at most {MAX_ALIASES} names")));
    }
    let mut seen = HashSet::with_capacity(list.len());
    let mut out = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let field = format!("aliases[{i}]");
        let a = domain::text(&field, raw, MAX_PROVIDER_MODEL)?;
        if a.chars().any(char::is_control) {
            return Err(ApiError::validation(format!("{field} must not contain control characters")));
        }
        if !seen.insert(a.clone()) {
            return Err(ApiError::validation(format!("{field}: \"{a}\" is in the list twice")));
        }
        out.push(a);
    }
    Ok(out)
}

/// `value`, when given, in 1..=10,000,000 tokens.
fn tokens(field: &str, value: Option<i64>) -> Result<Option<i32>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if (1..=MAX_CONTEXT_WINDOW).contains(&v) => Ok(i32::try_from(v).ok()),
        Some(_) => Err(ApiError::validation(format!("{field} must be between 1 and {MAX_CONTEXT_WINDOW}"))),
    }
}

fn price_value(field: &str, value: f64) -> Result<f64, ApiError> {
    if value.is_finite() && (0.0..=MAX_PRICE).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::validation(format!("{field} must be between 0 and {MAX_PRICE}")))
    }
}

/// Checks what the fields hold together (each was checked on its own as it was read).
fn consistent(f: &ModelFields) -> Result<(), ApiError> {
    if let (Some(window), Some(output)) = (f.context_window, f.max_output_tokens) {
        if output > window {
            return Err(ApiError::validation("max_output_tokens must not exceed context_window"));
        }
    }
    Ok(())
}

fn audit_entry<'a>(action: &'a str, id: Uuid, before: Option<&AiModel>, after: Option<&AiModel>) -> AuditEntry<'a> {
    AuditEntry::change(action, "ai_model", id, before, after)
}

/// A 409 for a slug another model has.
fn slug_taken(e: chatapp::db::DbError) -> ApiError {
    ApiError::conflict_if_unique(e, "slug_taken", "another model of the catalog has this slug")
}

/// Add a model to the catalog (master admin).
#[utoipa::path(post, path = "/admin/models", tag = "models", security(("bearer" = [])),
    request_body = CreateModelBody,
    responses(
        (status = 201, description = "The created model", body = AiModel),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 409, description = "Another model has this slug", body = ErrorBody)))]
async fn create(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(body): JsonBody<CreateModelBody>,
) -> Result<(StatusCode, Json<AiModel>), ApiError> {
    ctx.require_master_admin("manages the model catalog")?;
    let fields = ModelFields {
        slug: slug(&body.slug)?,
        name: domain::text("name", &body.name, MAX_NAME)?,
        provider: body.provider.as_str().to_string(),
        provider_model: domain::text("provider_model", &body.provider_model, MAX_PROVIDER_MODEL)?,
        model_type: body.model_type.unwrap_or(ModelType::Chat).as_str().to_string(),
        aliases: aliases(body.aliases.unwrap_or_default())?,
        context_window: tokens("context_window", body.context_window)?,
        max_output_tokens: tokens("max_output_tokens", body.max_output_tokens)?,
        input_price_per_1m: price_value("input_price_per_1m", body.input_price_per_1m)?,
        output_price_per_1m: price_value("output_price_per_1m", body.output_price_per_1m)?,
        currency: domain::currency(body.currency.as_deref().unwrap_or("USD"))?,
        is_active: body.is_active.unwrap_or(true),
    };
    consistent(&fields)?;
    let tx = deps.db.begin(&ctx).await?;
    let created = async {
        let model = repo::insert(&tx, &fields).await.map_err(slug_taken)?;
        audit::record(&tx, audit_entry("model.create", model.id, None, Some(&model)), &meta).await?;
        Ok::<_, ApiError>(model)
    }
    .await;
    Ok((StatusCode::CREATED, Json(tx.finish(created).await?)))
}

/// List the catalog by provider and slug: the active models, and for the master admin the
/// retired ones too.
#[utoipa::path(get, path = "/admin/models", tag = "models", security(("bearer" = [])),
    params(ModelListQuery, PageParams),
    responses((status = 200, description = "One page of the catalog", body = Paged<AiModel>)))]
async fn list(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    page: Page,
    Query(q): Query<ModelListQuery>,
) -> Result<Json<Paged<AiModel>>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let provider = match q.provider.as_deref() {
        Some(p) => Some(
            Provider::parse(p)
                .ok_or_else(|| ApiError::validation("provider must be openai, anthropic, local or openai_compatible"))?
                .as_str(),
        ),
        None => None,
    };
    let active = chatapp::web::bool_param("active", q.active.as_deref())?;
    let only_active = !ctx.is_master_admin();
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::list(&tx, provider, active, only_active, page.limit, page.offset).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items, page, total)))
}

/// One model of the catalog (a retired one for the master admin only).
#[utoipa::path(get, path = "/admin/models/{id}", tag = "models", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Model id")),
    responses((status = 200, description = "The model", body = AiModel),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn get(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<Uuid>,
) -> Result<Json<AiModel>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let tx = deps.db.begin(&ctx).await?;
    let found = repo::get(&tx, id).await.map_err(ApiError::from);
    tx.finish(found).await?.filter(|m| m.is_active || ctx.is_master_admin()).map(Json).ok_or(ApiError::NotFound)
}

/// Change a model of the catalog (master admin); `is_active: false` retires it.
#[utoipa::path(patch, path = "/admin/models/{id}", tag = "models", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Model id")),
    request_body = UpdateModelBody,
    responses((status = 200, description = "The model", body = AiModel),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Another model has this slug", body = ErrorBody)))]
async fn update(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
    JsonBody(body): JsonBody<UpdateModelBody>,
) -> Result<Json<AiModel>, ApiError> {
    ctx.require_master_admin("manages the model catalog")?;
    let new_slug = body.slug.as_deref().map(slug).transpose()?;
    let new_name = domain::optional_text("name", body.name.as_deref(), MAX_NAME)?;
    let new_provider_model =
        domain::optional_text("provider_model", body.provider_model.as_deref(), MAX_PROVIDER_MODEL)?;
    let new_aliases = body.aliases.map(aliases).transpose()?;
    let new_window = body.context_window.map(|v| tokens("context_window", v)).transpose()?;
    let new_max_output = body.max_output_tokens.map(|v| tokens("max_output_tokens", v)).transpose()?;
    let new_input_price = body.input_price_per_1m.map(|v| price_value("input_price_per_1m", v)).transpose()?;
    let new_output_price = body.output_price_per_1m.map(|v| price_value("output_price_per_1m", v)).transpose()?;
    let new_currency = body.currency.as_deref().map(domain::currency).transpose()?;
    let (new_provider, new_type, new_active) = (body.provider, body.model_type, body.is_active);
    let tx = deps.db.begin(&ctx).await?;
    let updated = async {
        let before = repo::lock(&tx, id).await?.ok_or(ApiError::NotFound)?;
        let mut f = before.fields();
        if let Some(v) = new_slug {
            f.slug = v;
        }
        if let Some(v) = new_name {
            f.name = v;
        }
        if let Some(v) = new_provider {
            f.provider = v.as_str().to_string();
        }
        if let Some(v) = new_provider_model {
            f.provider_model = v;
        }
        if let Some(v) = new_type {
            f.model_type = v.as_str().to_string();
        }
        if let Some(v) = new_aliases {
            f.aliases = v;
        }
        if let Some(v) = new_window {
            f.context_window = v;
        }
        if let Some(v) = new_max_output {
            f.max_output_tokens = v;
        }
        if let Some(v) = new_input_price {
            f.input_price_per_1m = v;
        }
        if let Some(v) = new_output_price {
            f.output_price_per_1m = v;
        }
        if let Some(v) = new_currency {
            f.currency = v;
        }
        if let Some(v) = new_active {
            f.is_active = v;
        }
        consistent(&f)?;
        let after = repo::update(&tx, id, &f).await.map_err(slug_taken)?.ok_or(ApiError::NotFound)?;
        audit::record(&tx, audit_entry("model.update", id, Some(&before), Some(&after)), &meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(updated).await?))
}

/// Remove a model from the catalog (master admin), only while no agent names it in its
/// `llm_config.model`; retire a model in use with `is_active: false` instead.
#[utoipa::path(delete, path = "/admin/models/{id}", tag = "models", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Model id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Not the master admin", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "An agent uses the model", body = ErrorBody)))]
async fn delete(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    ctx.require_master_admin("manages the model catalog")?;
    let tx = deps.db.begin(&ctx).await?;
    let deleted = async {
        let before = repo::lock(&tx, id).await?.ok_or(ApiError::NotFound)?;
        if repo::in_use(&tx, &before.slug, &before.provider_model).await? {
            return Err(ApiError::conflict(
                "model_in_use",
                "an agent's llm_config names this model: retire it with is_active false instead",
            ));
        }
        repo::delete(&tx, id).await?;
        audit::record(&tx, audit_entry("model.delete", id, Some(&before), None), &meta).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    tx.finish(deleted).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a model name, as a provider reported it, is priced as: the catalog model it resolves
/// to (by provider model id or slug, then alias, then without a dated snapshot suffix) and its
/// prices; 404 `unknown_model` when it resolves to none (a turn with it has an unknown cost).
#[utoipa::path(get, path = "/admin/models/price", tag = "models", security(("bearer" = [])),
    params(PriceQuery),
    responses((status = 200, description = "The model the name resolves to, with its prices", body = PriceMatch),
        (status = 404, description = "No model of the catalog matches (`unknown_model`)", body = ErrorBody)))]
async fn price(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    Query(q): Query<PriceQuery>,
) -> Result<Response, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let model = domain::text("model", &q.model, MAX_NAME)?;
    let tx = deps.db.begin(&ctx).await?;
    let found = repo::price_match(&tx, &model).await.map_err(ApiError::from);
    match tx.finish(found).await? {
        Some(m) => Ok(Json(m).into_response()),
        // ApiError::NotFound's code is `not_found`; this one says why.
        None => {
            let error = ErrorDetail {
                code: "unknown_model".into(),
                message: format!("no model of the catalog matches {model:?}: its usage has no price"),
            };
            Ok((StatusCode::NOT_FOUND, Json(ErrorBody { error })).into_response())
        }
    }
}
