//! The AI model catalog (migration 0003; aliases since 0023): global rows every signed-in user
//! may read and only the master admin may write (row-level security), and the price lookup of
//! a chat turn.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// A model of the catalog. Prices are per million tokens.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AiModel {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    /// `openai`, `anthropic`, `local` or `openai_compatible`.
    pub provider: String,
    /// The model id sent to the provider's API.
    pub provider_model: String,
    /// `chat`, `embedding` or `extractive`.
    pub model_type: String,
    /// Other names the provider reports for this model.
    pub aliases: Vec<String>,
    pub context_window: Option<i32>,
    pub max_output_tokens: Option<i32>,
    pub input_price_per_1m: f64,
    pub output_price_per_1m: f64,
    pub currency: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, slug, name, provider, provider_model, model_type, aliases, context_window, \
    max_output_tokens, input_price_per_1m::float8, output_price_per_1m::float8, currency, is_active, created_at, \
    updated_at";

fn from_row(r: &Row) -> AiModel {
    AiModel {
        id: r.get(0),
        slug: r.get(1),
        name: r.get(2),
        provider: r.get(3),
        provider_model: r.get(4),
        model_type: r.get(5),
        aliases: r.get(6),
        context_window: r.get(7),
        max_output_tokens: r.get(8),
        input_price_per_1m: r.get(9),
        output_price_per_1m: r.get(10),
        currency: r.get(11),
        is_active: r.get(12),
        created_at: r.get(13),
        updated_at: r.get(14),
    }
}

/// Every column the master admin sets (checked by the caller).
#[derive(Debug, Clone)]
pub struct ModelFields {
    pub slug: String,
    pub name: String,
    pub provider: String,
    pub provider_model: String,
    pub model_type: String,
    pub aliases: Vec<String>,
    pub context_window: Option<i32>,
    pub max_output_tokens: Option<i32>,
    pub input_price_per_1m: f64,
    pub output_price_per_1m: f64,
    pub currency: String,
    pub is_active: bool,
}

impl AiModel {
    /// What the master admin set, to change some of it.
    pub fn fields(&self) -> ModelFields {
        ModelFields {
            slug: self.slug.clone(),
            name: self.name.clone(),
            provider: self.provider.clone(),
            provider_model: self.provider_model.clone(),
            model_type: self.model_type.clone(),
            aliases: self.aliases.clone(),
            context_window: self.context_window,
            max_output_tokens: self.max_output_tokens,
            input_price_per_1m: self.input_price_per_1m,
            output_price_per_1m: self.output_price_per_1m,
            currency: self.currency.clone(),
            is_active: self.is_active,
        }
    }
}

pub async fn insert(tx: &TenantTx, f: &ModelFields) -> Result<AiModel, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "INSERT INTO chatapp_ai_models (slug, name, provider, provider_model, model_type, aliases,
                     context_window, max_output_tokens, input_price_per_1m, output_price_per_1m, currency, is_active)
                 VALUES ($1, $2, $3, $4, $5, $6::text[], $7::int4, $8::int4, $9::float8::numeric(12, 4),
                         $10::float8::numeric(12, 4), $11, $12)
                 RETURNING {COLUMNS}"
            ),
            &[
                &f.slug,
                &f.name,
                &f.provider,
                &f.provider_model,
                &f.model_type,
                &f.aliases,
                &f.context_window,
                &f.max_output_tokens,
                &f.input_price_per_1m,
                &f.output_price_per_1m,
                &f.currency,
                &f.is_active,
            ],
        )
        .await?;
    Ok(from_row(&row))
}

/// The catalog by provider and slug, optionally of one provider and/or by whether models are
/// active; `only_active` hides the inactive ones whatever the filter (what company users see).
pub async fn list(
    tx: &TenantTx,
    provider: Option<&str>,
    active: Option<bool>,
    only_active: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AiModel>, i64), DbError> {
    let filter = "($1::text IS NULL OR provider = $1) AND ($2::boolean IS NULL OR is_active = $2)
                  AND (NOT $3::boolean OR is_active)";
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS} FROM chatapp_ai_models WHERE {filter}
                 ORDER BY provider, slug, id LIMIT $4 OFFSET $5"
            ),
            &[&provider, &active, &only_active, &limit, &offset],
        )
        .await?;
    let total: i64 = tx
        .client()
        .query_one(
            &format!("SELECT count(*) FROM chatapp_ai_models WHERE {filter}"),
            &[&provider, &active, &only_active],
        )
        .await?
        .get(0);
    Ok((rows.iter().map(from_row).collect(), total))
}

pub async fn get(tx: &TenantTx, id: Uuid) -> Result<Option<AiModel>, DbError> {
    let row = tx.client().query_opt(&format!("SELECT {COLUMNS} FROM chatapp_ai_models WHERE id = $1"), &[&id]).await?;
    Ok(row.as_ref().map(from_row))
}

/// [`get`], locking the row until the transaction ends (read, then write it; the master
/// admin's only: row-level security hides the row from a lock anyone else asks for).
pub async fn lock(tx: &TenantTx, id: Uuid) -> Result<Option<AiModel>, DbError> {
    let row = tx
        .client()
        .query_opt(&format!("SELECT {COLUMNS} FROM chatapp_ai_models WHERE id = $1 FOR UPDATE"), &[&id])
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Replaces every column the master admin sets.
pub async fn update(tx: &TenantTx, id: Uuid, f: &ModelFields) -> Result<Option<AiModel>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "UPDATE chatapp_ai_models SET slug = $2, name = $3, provider = $4, provider_model = $5,
                     model_type = $6, aliases = $7::text[], context_window = $8::int4, max_output_tokens = $9::int4,
                     input_price_per_1m = $10::float8::numeric(12, 4),
                     output_price_per_1m = $11::float8::numeric(12, 4), currency = $12, is_active = $13,
                     updated_at = now()
                 WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &f.slug,
                &f.name,
                &f.provider,
                &f.provider_model,
                &f.model_type,
                &f.aliases,
                &f.context_window,
                &f.max_output_tokens,
                &f.input_price_per_1m,
                &f.output_price_per_1m,
                &f.currency,
                &f.is_active,
            ],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn delete(tx: &TenantTx, id: Uuid) -> Result<bool, DbError> {
    let n = tx.client().execute("DELETE FROM chatapp_ai_models WHERE id = $1", &[&id]).await?;
    Ok(n == 1)
}

/// Whether an agent (of any company the caller may see: every one for the master admin) names
/// the model in its `llm_config.model`, by slug or provider model id.
pub async fn in_use(tx: &TenantTx, slug: &str, provider_model: &str) -> Result<bool, DbError> {
    Ok(tx
        .client()
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM chatapp_agents
                            WHERE deleted_at IS NULL AND llm_config ->> 'model' IN ($1::text, $2::text))",
            &[&slug, &provider_model],
        )
        .await?
        .get(0))
}

/// What a reported model name resolved to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PriceMatch {
    /// The name asked about (as the provider reported it).
    pub model: String,
    /// How it matched: `name` (the provider model id or the slug), `alias`, `snapshot` (the
    /// name without its dated snapshot suffix) or `snapshot_alias`.
    pub matched_by: String,
    pub slug: String,
    pub provider_model: String,
    pub input_price_per_1m: f64,
    pub output_price_per_1m: f64,
    pub currency: String,
    pub is_active: bool,
}

/// One statement for the whole lookup (one round trip in a chat turn's last transaction): the
/// best match first, by how it matched, then active models before inactive ones.
const PRICE_MATCH: &str = "SELECT slug, provider_model, input_price_per_1m::float8, output_price_per_1m::float8,
            currency, is_active,
            CASE WHEN provider_model = $1::text OR slug = $1::text THEN 0
                 WHEN $1::text = ANY (aliases) THEN 1
                 WHEN provider_model = $2::text OR slug = $2::text THEN 2
                 ELSE 3 END AS rank
     FROM chatapp_ai_models
     WHERE provider_model = $1::text OR slug = $1::text OR $1::text = ANY (aliases)
        OR provider_model = $2::text OR slug = $2::text OR $2::text = ANY (aliases)
     ORDER BY rank, is_active DESC, slug
     LIMIT 1";

/// The catalog model a provider's reported name stands for, in this order: its provider model
/// id or slug; one of its aliases; then the same with a dated snapshot suffix removed
/// ([`without_snapshot_date`]). `None` when nothing matches.
pub async fn price_match(tx: &TenantTx, reported: &str) -> Result<Option<PriceMatch>, DbError> {
    let stem = without_snapshot_date(reported);
    let row = tx.client().query_opt(PRICE_MATCH, &[&reported, &stem]).await?;
    Ok(row.map(|r| {
        let rank: i32 = r.get(6);
        let matched_by = match rank {
            0 => "name",
            1 => "alias",
            2 => "snapshot",
            _ => "snapshot_alias",
        };
        PriceMatch {
            model: reported.to_string(),
            matched_by: matched_by.to_string(),
            slug: r.get(0),
            provider_model: r.get(1),
            input_price_per_1m: r.get(2),
            output_price_per_1m: r.get(3),
            currency: r.get(4),
            is_active: r.get(5),
        }
    }))
}

/// Price per million input / output tokens of the model a provider reported (see
/// [`price_match`]); `None` when the catalog has no such model: its cost is unknown, not 0.
pub async fn price_for(tx: &TenantTx, reported: &str) -> Result<Option<(f64, f64)>, DbError> {
    Ok(price_match(tx, reported).await?.map(|m| (m.input_price_per_1m, m.output_price_per_1m)))
}

/// `name` without a dated snapshot suffix, `-YYYY-MM-DD`, `-YYYYMMDD` or `@YYYYMMDD`
/// (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`, `claude-3-5-haiku-20241022` →
/// `claude-3-5-haiku`, `claude-3-5-sonnet-v2@20241022` → `claude-3-5-sonnet-v2`). `None` when it
/// has none: the date must be a plausible one (years 2000-2099, months 01-12, days 01-31), so a
/// model number such as `-12345678` stays.
pub fn without_snapshot_date(name: &str) -> Option<&str> {
    let bytes = name.as_bytes();
    let number = |s: &[u8]| -> Option<u32> {
        s.iter().all(u8::is_ascii_digit).then(|| s.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let plausible = |y: Option<u32>, m: Option<u32>, d: Option<u32>| {
        matches!((y, m, d), (Some(y), Some(m), Some(d))
            if (2000..=2099).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d))
    };
    // -YYYY-MM-DD
    if bytes.len() > 11 {
        let at = bytes.len() - 11;
        let t = &bytes[at..];
        if t[0] == b'-'
            && t[5] == b'-'
            && t[8] == b'-'
            && plausible(number(&t[1..5]), number(&t[6..8]), number(&t[9..11]))
        {
            return name.get(..at).filter(|s| !s.is_empty());
        }
    }
    // -YYYYMMDD or @YYYYMMDD
    if bytes.len() > 9 {
        let at = bytes.len() - 9;
        let t = &bytes[at..];
        if (t[0] == b'-' || t[0] == b'@') && plausible(number(&t[1..5]), number(&t[5..7]), number(&t[7..9])) {
            return name.get(..at).filter(|s| !s.is_empty());
        }
    }
    None
}

/// An active chat model of the catalog named by its slug or its provider model id: its provider
/// (`openai`, `anthropic`, ...) and provider model id. What an agent's `llmConfig.model` must
/// name, and what its turns are answered with.
pub async fn active_chat_model(tx: &TenantTx, name: &str) -> Result<Option<(String, String)>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT provider, provider_model FROM chatapp_ai_models
             WHERE is_active AND model_type = 'chat' AND (slug = $1 OR provider_model = $1)
             ORDER BY (slug = $1) DESC, slug LIMIT 1",
            &[&name],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

#[cfg(test)]
mod tests {
    use super::without_snapshot_date;

    #[test]
    fn dated_snapshot_suffixes_are_removed() {
        let cases = [
            ("gpt-4o-mini-2024-07-18", Some("gpt-4o-mini")),
            ("gpt-4o-2024-08-06", Some("gpt-4o")),
            ("claude-3-5-haiku-20241022", Some("claude-3-5-haiku")),
            ("claude-3-5-sonnet-20240620", Some("claude-3-5-sonnet")),
            ("claude-3-5-sonnet-v2@20241022", Some("claude-3-5-sonnet-v2")),
            ("claude-3-haiku@20240307", Some("claude-3-haiku")),
        ];
        for (name, stem) in cases {
            assert_eq!(without_snapshot_date(name), stem, "{name}");
        }
    }

    #[test]
    fn names_without_a_plausible_date_are_kept() {
        for name in [
            "gpt-4o-mini",
            "claude-3-5-haiku-latest",
            "extractive",
            // Not dates: a model number, a month 13, a year outside 2000-2099, a day 00.
            "model-12345678",
            "model-20241322",
            "model-1999-07-18",
            "model-2024-07-00",
            // Only a date, nothing before it.
            "-2024-07-18",
            "@20241022",
            // Wrong separators or lengths.
            "gpt-4o-mini_2024-07-18",
            "gpt-4o-mini-2024-7-18",
            "gpt-4o-mini-2024071",
            "",
            "é-2024-07-1",
        ] {
            assert_eq!(without_snapshot_date(name), None, "{name}");
        }
    }

    #[test]
    fn non_ascii_names_never_panic() {
        assert_eq!(without_snapshot_date("modèle-2024-07-18"), Some("modèle"));
        assert_eq!(without_snapshot_date("ü20241022"), None);
        assert_eq!(without_snapshot_date("éééééééééééé"), None);
    }
}
