//! The chat model a company's turns use: the platform's, or the same provider and model with the
//! company's own key (`provider-keys`) when it has an active one for that provider.
//!
//! Looked up once per company every [`TTL`] and kept per process, so a turn pays no query for it
//! most of the time; a new or revoked key takes effect within that time. The offline extractive
//! model has no key to swap and is never looked up.

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

fn cache() -> &'static Mutex<HashMap<Uuid, Cached>> {
    static CACHE: OnceLock<Mutex<HashMap<Uuid, Cached>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The model for `company`'s turns. Any failure to read or open the company's key falls back
/// to the platform's model (logged): a customer's message is answered either way.
pub async fn model_for(deps: &AppDeps, ctx: &TenantCtx, company: Uuid) -> Arc<dyn ChatModel> {
    let provider = match &deps.cfg.chat {
        ChatProvider::Extractive => return deps.chat.clone(),
        ChatProvider::OpenAi { .. } => "openai",
        ChatProvider::Anthropic { .. } => "anthropic",
    };
    if let Some((at, model)) = cache().lock().expect("cache lock").get(&company) {
        if at.elapsed() < TTL {
            return model.clone().unwrap_or_else(|| deps.chat.clone());
        }
    }
    let own = match company_model(deps, ctx, company, provider).await {
        Ok(own) => own,
        Err(e) => {
            tracing::warn!(%company, error = %e, "company key unusable: the platform's model answers");
            None
        }
    };
    cache().lock().expect("cache lock").insert(company, (Instant::now(), own.clone()));
    own.unwrap_or_else(|| deps.chat.clone())
}

async fn company_model(
    deps: &AppDeps,
    ctx: &TenantCtx,
    company: Uuid,
    provider: &str,
) -> Result<Option<Arc<dyn ChatModel>>, String> {
    let tx = deps.db.begin(ctx).await.map_err(|e| e.to_string())?;
    let found = crate::repo::provider_keys::active_for(&tx, company, provider).await;
    let Some((id, base, sealed)) = tx.finish(found).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let key = SealingKey::new(deps.cfg.secrets_key.expose()).open(company, id, &sealed).map_err(|e| e.to_string())?;
    let key = String::from_utf8(key).map_err(|_| "the key is not text".to_string())?;
    let model: Arc<dyn ChatModel> = match &deps.cfg.chat {
        ChatProvider::OpenAi { base_url, model, .. } => Arc::new(
            OpenAiChatModel::new(OpenAiChatConfig {
                base_url: base.unwrap_or_else(|| base_url.clone()),
                api_key: Some(key),
                model: model.clone(),
                ..Default::default()
            })
            .map_err(|e| e.to_string())?,
        ),
        ChatProvider::Anthropic { base_url, model, .. } => Arc::new(
            AnthropicChatModel::new(AnthropicChatConfig {
                base_url: base.unwrap_or_else(|| base_url.clone()),
                api_key: Some(key),
                model: model.clone(),
                ..Default::default()
            })
            .map_err(|e| e.to_string())?,
        ),
        ChatProvider::Extractive => return Ok(None),
    };
    Ok(Some(model))
}

/// Forgets `company`'s cached model (its keys changed in this process).
pub fn forget(company: Uuid) {
    cache().lock().expect("cache lock").remove(&company);
}
