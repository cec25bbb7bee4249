//! The chat model an agent's turns use: the platform's provider and model, or the agent's own
//! model (`llmConfig.model`, a model of the catalog), with the company's own key for that
//! model's provider (`provider-keys`) when it has an active one, the platform's key otherwise.
//!
//! - The agent's model is of the platform's provider: that model, with the company's key if it
//!   has one for the provider, else the platform's.
//! - Of another provider: only with the company's key for it (the platform holds one key);
//!   without one the platform's model answers, logged. An `openai_compatible` model (a
//!   self-hosted or third-party server speaking OpenAI's chat completions) runs with the
//!   company's `openai_compatible` key at that key's base URL.
//!
//! Looked up once per (company, model) every [`TTL`] and kept per process, so a turn pays no
//! query for it most of the time; a new or revoked key takes effect within that time. The
//! offline extractive model has no key or model to swap and is never looked up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::model::{AnthropicChatConfig, AnthropicChatModel, ChatModel, OpenAiChatConfig, OpenAiChatModel};
use crate::app::AppDeps;
use crate::config::ChatProvider;
use crate::sealed::SealingKey;
use crate::tenant::TenantCtx;

pub const TTL: Duration = Duration::from_secs(30);

type Cached = (Instant, Option<Arc<dyn ChatModel>>);
type CacheKey = (Uuid, Option<String>);

fn cache() -> &'static Mutex<HashMap<CacheKey, Cached>> {
    static CACHE: OnceLock<Mutex<HashMap<CacheKey, Cached>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The provider APIs' public bases, for a company key of another provider than the platform's
/// that names no base of its own.
const OPENAI_BASE: &str = "https://api.openai.com/v1";
const ANTHROPIC_BASE: &str = "https://api.anthropic.com";

/// The model for turns of `company`'s agent whose `llmConfig.model` is `wanted`. Any failure
/// to read or open the company's key, or a model that cannot run, falls back to the platform's
/// model (logged): a customer's message is answered either way.
pub async fn model_for(deps: &AppDeps, ctx: &TenantCtx, company: Uuid, wanted: Option<&str>) -> Arc<dyn ChatModel> {
    if matches!(deps.cfg.chat, ChatProvider::Extractive) {
        return deps.chat.clone();
    }
    let key: CacheKey = (company, wanted.map(str::to_string));
    if let Some((at, model)) = cache().lock().expect("cache lock").get(&key) {
        if at.elapsed() < TTL {
            return model.clone().unwrap_or_else(|| deps.chat.clone());
        }
    }
    let own = match agent_model(deps, ctx, company, wanted).await {
        Ok(own) => own,
        Err(e) => {
            tracing::warn!(%company, model = ?wanted, error = %e, "the platform's model answers");
            None
        }
    };
    cache().lock().expect("cache lock").insert(key, (Instant::now(), own.clone()));
    own.unwrap_or_else(|| deps.chat.clone())
}

/// `None`: the platform's model as configured.
async fn agent_model(
    deps: &AppDeps,
    ctx: &TenantCtx,
    company: Uuid,
    wanted: Option<&str>,
) -> Result<Option<Arc<dyn ChatModel>>, String> {
    let (platform, platform_base, platform_key, platform_model) = match &deps.cfg.chat {
        ChatProvider::OpenAi { base_url, api_key, model } => ("openai", base_url, api_key, model),
        ChatProvider::Anthropic { base_url, api_key, model } => ("anthropic", base_url, api_key, model),
        ChatProvider::Extractive => return Ok(None),
    };
    let tx = deps.db.begin(ctx).await.map_err(|e| e.to_string())?;
    let found = async {
        let chosen = match wanted {
            Some(name) => crate::repo::models::active_chat_model(&tx, name).await?,
            None => None,
        };
        let provider = chosen.as_ref().map_or(platform, |(p, _)| p.as_str()).to_string();
        let key = crate::repo::provider_keys::active_for(&tx, company, &provider).await?;
        Ok::<_, crate::db::DbError>((chosen, provider, key))
    }
    .await;
    let (chosen, provider, key) = tx.finish(found).await.map_err(|e| e.to_string())?;
    if wanted.is_some() && chosen.is_none() {
        return Err(format!("{wanted:?} is not an active chat model of the catalog"));
    }
    let model = chosen.map_or_else(|| platform_model.clone(), |(_, m)| m);
    let same_provider = provider == platform;
    let (base, api_key) = match key {
        Some((id, base, sealed)) => {
            let key =
                SealingKey::new(deps.cfg.secrets_key.expose()).open(company, id, &sealed).map_err(|e| e.to_string())?;
            let key = String::from_utf8(key).map_err(|_| "the key is not text".to_string())?;
            let default_base = match (same_provider, provider.as_str()) {
                (true, _) => platform_base.clone(),
                (false, "anthropic") => ANTHROPIC_BASE.to_string(),
                // Its key must name the server (provider-keys requires it); never OpenAI's.
                (false, "openai_compatible") if base.is_none() => {
                    return Err("the company's openai_compatible key has no base URL".into())
                }
                (false, _) => OPENAI_BASE.to_string(),
            };
            (base.unwrap_or(default_base), Some(key))
        }
        None if same_provider && model == *platform_model => return Ok(None),
        None if same_provider => (platform_base.clone(), platform_key.as_ref().map(|k| k.expose().to_string())),
        None => return Err(format!("the agent's model is a {provider} model and the company has no {provider} key")),
    };
    let built: Arc<dyn ChatModel> = match provider.as_str() {
        "anthropic" => Arc::new(
            AnthropicChatModel::new(AnthropicChatConfig { base_url: base, api_key, model, ..Default::default() })
                .map_err(|e| e.to_string())?,
        ),
        "openai" | "openai_compatible" => Arc::new(
            OpenAiChatModel::new(OpenAiChatConfig { base_url: base, api_key, model, ..Default::default() })
                .map_err(|e| e.to_string())?,
        ),
        other => return Err(format!("no chat client for provider {other:?}")),
    };
    Ok(Some(built))
}

/// Forgets `company`'s cached models (its keys changed in this process).
pub fn forget(company: Uuid) {
    cache().lock().expect("cache lock").retain(|(c, _), _| *c != company);
}
