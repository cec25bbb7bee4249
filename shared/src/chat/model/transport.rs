//! Streaming HTTP with retries, shared by the remote models: one request per attempt, the
//! provider's [`StreamDecoder`] turning events into text, and retries only while nothing was
//! streamed yet.

use super::sse::{SseEvent, SseParser};
use super::{ChatAnswer, ChatError, DeltaSink};
use crate::adapters::retry::{backoff_delay, is_retryable_status, jitter_unit, parse_retry_after, truncate_chars};
use crate::error::error_chain;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use serde_json::Value;

/// Connect timeout, when the overall request timeout is longer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Error bodies kept in [`ChatError::Status`].
pub(super) const MAX_ERROR_BODY_CHARS: usize = 500;
/// Longest first-byte wait honoured (keeps `Instant + Duration` from overflowing).
const MAX_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Timeouts and retry settings of one remote model.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub(super) timeout: Duration,
    pub(super) first_byte_timeout: Duration,
    pub(super) max_retries: u32,
    pub(super) initial_backoff: Duration,
}

/// A failed attempt: the error, and whether another attempt may help.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) error: ChatError,
    pub(super) retryable: bool,
    pub(super) retry_after: Option<Duration>,
}

impl Failure {
    fn fatal(error: ChatError) -> Self {
        Self { error, retryable: false, retry_after: None }
    }

    fn retryable(error: ChatError) -> Self {
        Self { error, retryable: true, retry_after: None }
    }

    /// An error the provider reported with an HTTP-like status, inside a 200 response.
    pub(super) fn provider(status: u16, body: &str) -> Self {
        Self {
            error: ChatError::Status { status, body: truncate_chars(body.trim(), MAX_ERROR_BODY_CHARS) },
            retryable: is_retryable_status(status),
            retry_after: None,
        }
    }
}

/// What one stream event contributed.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Decoded {
    /// Answer text to pass on (may be empty).
    pub(super) text: String,
    /// The provider's end-of-stream marker was seen.
    pub(super) done: bool,
}

/// Provider-specific stream decoding. A fresh clone decodes each attempt.
pub(super) trait StreamDecoder: Clone + Send {
    fn event(&mut self, event: &SseEvent) -> Result<Decoded, Failure>;
    /// A complete JSON response, from servers that ignore `"stream": true`: the answer text.
    fn whole(&mut self, body: &[u8]) -> Result<String, Failure>;
    /// Builds the answer once the stream ended; `done` says whether the end marker was seen.
    fn finish(self, text: String, done: bool) -> Result<ChatAnswer, Failure>;
}

pub(super) struct Transport {
    client: reqwest::Client,
    pub(super) endpoint: String,
    limits: Limits,
    provider: &'static str,
}

impl Transport {
    pub(super) fn new(
        provider: &'static str,
        endpoint: String,
        headers: HeaderMap,
        limits: Limits,
    ) -> Result<Self, ChatError> {
        let client = crate::outbound_http::client_builder()
            .timeout(limits.timeout)
            .connect_timeout(limits.timeout.min(CONNECT_TIMEOUT))
            .default_headers(headers)
            .build()
            .map_err(|e| ChatError::Http(format!("building the HTTP client: {}", error_chain(&e))))?;
        Ok(Self { client, endpoint, limits, provider })
    }

    /// Posts `body` and streams the answer, retrying failures that happen before any text was
    /// passed to `on_delta`. Tool-call fragments are not passed on (they live in the attempt's
    /// decoder clone and are dropped with it), so receiving only those still counts as nothing
    /// streamed: the retry starts over and the caller sees just its calls.
    pub(super) async fn complete<D: StreamDecoder>(
        &self,
        body: &Value,
        decoder: D,
        on_delta: DeltaSink<'_>,
    ) -> Result<ChatAnswer, ChatError> {
        let mut attempt: u32 = 0;
        loop {
            let mut text = String::new();
            let failure = match self.attempt(body, decoder.clone(), &mut text, &mut *on_delta).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            if !text.is_empty() {
                tracing::warn!(
                    provider = self.provider,
                    streamed_chars = text.chars().count(),
                    error = %failure.error,
                    "chat stream failed after the answer started; not retrying"
                );
                return Err(failure.error);
            }
            if !failure.retryable || attempt >= self.limits.max_retries {
                return Err(failure.error);
            }
            let delay = failure
                .retry_after
                .unwrap_or_else(|| backoff_delay(self.limits.initial_backoff, attempt, jitter_unit()));
            attempt += 1;
            tracing::warn!(
                provider = self.provider,
                attempt,
                max_retries = self.limits.max_retries,
                ?delay,
                error = %failure.error,
                "chat request failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One request. Text passed to `on_delta` is also appended to `text`, so the caller knows
    /// whether streaming started.
    async fn attempt<D: StreamDecoder>(
        &self,
        body: &Value,
        mut decoder: D,
        text: &mut String,
        on_delta: DeltaSink<'_>,
    ) -> Result<ChatAnswer, Failure> {
        // Response headers and the first body bytes must arrive by this deadline.
        let deadline = tokio::time::Instant::now() + self.limits.first_byte_timeout.min(MAX_FIRST_BYTE_TIMEOUT);
        let send = self.client.post(&self.endpoint).json(body).send();
        let mut response = match tokio::time::timeout_at(deadline, send).await {
            Err(_elapsed) => return Err(Failure::retryable(ChatError::Timeout)),
            Ok(Err(e)) => return Err(send_failure(&e)),
            Ok(Ok(response)) => response,
        };

        let status = response.status();
        if !status.is_success() {
            let retry_after =
                response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
            let body = response.text().await.unwrap_or_default();
            return Err(Failure {
                error: ChatError::Status {
                    status: status.as_u16(),
                    body: truncate_chars(body.trim(), MAX_ERROR_BODY_CHARS),
                },
                retryable: is_retryable_status(status.as_u16()),
                retry_after,
            });
        }

        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/json"));
        if is_json {
            let bytes = response.bytes().await.map_err(|e| read_failure(&e))?;
            let whole = decoder.whole(&bytes)?;
            emit(&whole, text, on_delta);
            return decoder.finish(text.clone(), true);
        }

        let mut parser = SseParser::default();
        let mut first = true;
        let mut done = false;
        'read: loop {
            let next = if first {
                first = false;
                match tokio::time::timeout_at(deadline, response.chunk()).await {
                    Err(_elapsed) => return Err(Failure::retryable(ChatError::Timeout)),
                    Ok(next) => next,
                }
            } else {
                response.chunk().await
            };
            let chunk = match next {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Err(read_failure(&e)),
            };
            for event in parser.push(&chunk) {
                let decoded = decoder.event(&event)?;
                emit(&decoded.text, text, &mut *on_delta);
                if decoded.done {
                    done = true;
                    break 'read;
                }
            }
        }
        if !done {
            for event in parser.finish() {
                let decoded = decoder.event(&event)?;
                emit(&decoded.text, text, &mut *on_delta);
                if decoded.done {
                    done = true;
                    break;
                }
            }
        }
        decoder.finish(text.clone(), done)
    }
}

/// Passes non-empty `piece` to `on_delta` and appends it to `text`.
fn emit(piece: &str, text: &mut String, on_delta: DeltaSink<'_>) {
    if !piece.is_empty() {
        on_delta(piece);
        text.push_str(piece);
    }
}

/// A failure sending the request or receiving the response headers.
fn send_failure(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure::retryable(ChatError::Timeout)
    } else if e.is_connect() || e.is_request() {
        // Refused/reset connections, including a pooled connection the server had closed.
        Failure::retryable(ChatError::Http(error_chain(e)))
    } else {
        Failure::fatal(ChatError::Http(error_chain(e)))
    }
}

/// A failure reading the response body. Retryable: the caller only retries when nothing was
/// streamed yet.
fn read_failure(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure::retryable(ChatError::Timeout)
    } else {
        Failure::retryable(ChatError::Http(error_chain(e)))
    }
}

/// The stream ended (cleanly, at the transport level) without the provider's end marker.
pub(super) fn incomplete_stream() -> Failure {
    Failure::retryable(ChatError::Http("the stream ended before the answer was complete".to_string()))
}

pub(super) fn malformed(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::fatal(ChatError::Malformed(format!("{what}: {e}")))
}

/// `{base_url}{suffix}` with exactly one slash between the two; `base_url` must be http(s).
pub(super) fn endpoint(base_url: &str, suffix: &str) -> Result<String, ChatError> {
    let base = base_url.trim().trim_end_matches('/');
    let parsed =
        url::Url::parse(base).map_err(|e| ChatError::Http(format!("invalid chat base_url {base_url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ChatError::Http(format!("chat base_url {base_url:?} is not an http(s) URL")));
    }
    Ok(format!("{base}/{}", suffix.trim_start_matches('/')))
}

/// A header value that never shows up in `Debug` output.
pub(super) fn secret_header(value: &str) -> Result<HeaderValue, ChatError> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| ChatError::Http("the API key contains characters not allowed in a header".to_string()))?;
    value.set_sensitive(true);
    Ok(value)
}

pub(super) fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
