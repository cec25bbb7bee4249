//! The OpenAI-compatible HTTP embedder: `POST {base_url}/embeddings` (OpenAI and the many
//! services that copy its API), batched, with retries.

use super::{l2_normalize, EmbedError, Embedder};
use crate::adapters::retry::{backoff_delay, is_retryable_status, jitter_unit, parse_retry_after, truncate_chars};
use crate::error::error_chain;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

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
        let client = crate::outbound_http::client_builder()
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
}
