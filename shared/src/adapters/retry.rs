//! Retry policy shared by the HTTP clients of model providers (embeddings, chat): which
//! failures are worth another attempt, how long to wait, and `Retry-After`.

use std::time::Duration;

/// Upper bound for any wait between attempts, whether from backoff or from `Retry-After`.
pub(crate) const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// Up to this fraction of the backoff is added as random jitter.
pub(crate) const JITTER_FRACTION: f64 = 0.2;

/// 429 and 5xx are worth retrying; other statuses are the request's fault.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// A `Retry-After` value in (possibly fractional) seconds, capped at [`MAX_RETRY_DELAY`]. The
/// HTTP-date form and anything unparsable give `None` (the caller falls back to backoff).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(secs.min(MAX_RETRY_DELAY.as_secs_f64())))
}

/// `initial * 2^attempt` plus up to [`JITTER_FRACTION`] of that (scaled by `jitter_unit` in
/// `[0, 1]`), capped at [`MAX_RETRY_DELAY`]. `attempt` counts from 0 for the first retry.
pub(crate) fn backoff_delay(initial: Duration, attempt: u32, jitter_unit: f64) -> Duration {
    let base = initial.saturating_mul(1u32 << attempt.min(20)).min(MAX_RETRY_DELAY);
    let unit = if jitter_unit.is_finite() { jitter_unit.clamp(0.0, 1.0) } else { 0.0 };
    (base + base.mul_f64(JITTER_FRACTION * unit)).min(MAX_RETRY_DELAY)
}

pub(crate) fn jitter_unit() -> f64 {
    use rand::Rng;
    rand::thread_rng().gen::<f64>()
}

/// The first `max` characters of `s` (on a char boundary).
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => s[..end].to_string(),
        None => s.to_string(),
    }
}
