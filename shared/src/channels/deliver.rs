//! Retrying one send inside a worker invocation.
//!
//! A Lambda is billed while it sleeps and the queue redelivers a job later for free, so waits
//! here stay short: exponential backoff with full jitter (spreads the retries of many workers
//! that hit the same rate limit), capped at `max_delay`. A provider that asks for a longer pause
//! gets the job handed back ([`Outcome::Deferred`]) rather than a Lambda sitting through it.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use super::{SendError, SentId};

/// How a send is retried inside one worker invocation: attempts with exponential backoff (base
/// 500 ms, factor 2, full jitter), capped at `max_delay`; a provider's Retry-After is honoured
/// exactly when it is within `max_delay`, otherwise the send is handed back (Deferred) so the
/// queue redelivers it later instead of holding a Lambda.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// The backoff ceiling before the first retry; it doubles for each further retry.
    pub base_delay: Duration,
    /// The longest single wait inside one invocation.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(10) }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first): uniform in
    /// `[0, min(max_delay, base_delay * 2^(retry - 1))]` ("full jitter").
    fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let ceiling = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
    }
}

/// How one send ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent(SentId),
    /// Give up now, retry the job later (after at least `after` seconds).
    Deferred {
        after: u64,
        last_error: String,
    },
    Failed {
        code: String,
        message: String,
    },
}

/// Runs `attempt` until it succeeds, fails permanently, or attempts are used up (then Deferred
/// with the last error). `attempt` gets the attempt number (1-based). `sleep` is injected so
/// tests run instantly: pass `tokio::time::sleep` in production.
pub async fn run<F, Fut, S, SFut>(policy: &RetryPolicy, mut attempt: F, mut sleep: S) -> Outcome
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<SentId, SendError>>,
    S: FnMut(Duration) -> SFut,
    SFut: Future<Output = ()>,
{
    let attempts = policy.max_attempts.max(1);
    let mut n = 1;
    loop {
        let error = match attempt(n).await {
            Ok(id) => return Outcome::Sent(id),
            Err(error) => error,
        };
        let retry_after = match &error {
            SendError::Permanent { code, message } => {
                return Outcome::Failed { code: code.clone(), message: message.clone() };
            }
            SendError::Retryable { retry_after, .. } => *retry_after,
        };
        let last_error = error.to_string();
        // The provider asked for a pause longer than we may sleep: the queue waits instead.
        if let Some(secs) = retry_after.filter(|&s| Duration::from_secs(s) > policy.max_delay) {
            return Outcome::Deferred { after: secs, last_error };
        }
        if n >= attempts {
            let after = retry_after.unwrap_or(policy.max_delay.as_secs()).max(1);
            return Outcome::Deferred { after, last_error };
        }
        let wait = retry_after.map_or_else(|| policy.backoff(n), Duration::from_secs);
        sleep(wait).await;
        n += 1;
    }
}

/// Parses a Retry-After header value: delta-seconds or an HTTP-date (relative to `now`). A date
/// already past gives 0; partial seconds round up so the wait is never too short.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    // Not RFC 9110, but some APIs send fractional seconds ("1.5").
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then_some(secs.ceil() as u64);
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    let millis = (at.with_timezone(&Utc) - now).num_milliseconds();
    Some(u64::try_from(millis).map_or(0, |ms| ms.div_ceil(1000)))
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    fn retryable(status: u16, retry_after: Option<u64>) -> SendError {
        SendError::Retryable { status: Some(status), message: "busy".into(), retry_after }
    }

    /// Runs `run` with the default policy over scripted results; returns the outcome, the number
    /// of attempts made and the recorded sleeps.
    async fn script(results: Vec<Result<SentId, SendError>>) -> (Outcome, u32, Vec<Duration>) {
        let results = RefCell::new(results.into_iter());
        let calls = Cell::new(0);
        let sleeps = RefCell::new(Vec::new());
        let outcome = run(
            &RetryPolicy::default(),
            |n| {
                calls.set(n);
                let next = results.borrow_mut().next().expect("no more scripted results");
                async move { next }
            },
            |d| {
                sleeps.borrow_mut().push(d);
                std::future::ready(())
            },
        )
        .await;
        (outcome, calls.get(), sleeps.into_inner())
    }

    #[tokio::test]
    async fn retry_after_within_cap_is_slept_exactly() {
        let (outcome, calls, sleeps) = script(vec![Err(retryable(429, Some(1))), Ok(Some("m1".into()))]).await;
        assert_eq!(outcome, Outcome::Sent(Some("m1".into())));
        assert_eq!(calls, 2);
        assert_eq!(sleeps, vec![Duration::from_secs(1)]);
    }

    #[tokio::test]
    async fn permanent_fails_at_once() {
        let err = SendError::Permanent { code: "blocked".into(), message: "user blocked the bot".into() };
        let (outcome, calls, sleeps) = script(vec![Err(err)]).await;
        assert_eq!(outcome, Outcome::Failed { code: "blocked".into(), message: "user blocked the bot".into() });
        assert_eq!(calls, 1);
        assert!(sleeps.is_empty());
    }

    #[tokio::test]
    async fn long_retry_after_defers() {
        let (outcome, calls, sleeps) = script(vec![Err(retryable(429, Some(120)))]).await;
        assert!(matches!(outcome, Outcome::Deferred { after: 120, .. }), "{outcome:?}");
        assert_eq!(calls, 1);
        assert!(sleeps.is_empty());
    }

    #[tokio::test]
    async fn exhausted_attempts_defer_with_the_last_error() {
        let results = (0..4).map(|_| Err(retryable(503, None))).collect();
        let (outcome, calls, sleeps) = script(results).await;
        match outcome {
            Outcome::Deferred { after, last_error } => {
                assert!(after >= 1);
                assert!(last_error.contains("503"), "{last_error}");
            }
            other => panic!("expected Deferred, got {other:?}"),
        }
        assert_eq!(calls, 4);
        // Full jitter: each wait is at most min(10 s, 500 ms * 2^(retry - 1)).
        assert_eq!(sleeps.len(), 3);
        for (i, d) in sleeps.iter().enumerate() {
            assert!(*d <= Duration::from_millis(500 << i), "wait {i} was {d:?}");
        }
    }

    #[test]
    fn backoff_is_capped() {
        let policy = RetryPolicy::default();
        for retry in [1, 5, 30, u32::MAX] {
            assert!(policy.backoff(retry) <= policy.max_delay);
        }
    }

    #[test]
    fn parses_both_retry_after_forms() {
        let now = DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:26:00 GMT").unwrap().with_timezone(&Utc);
        assert_eq!(parse_retry_after("120", now), Some(120));
        assert_eq!(parse_retry_after(" 0 ", now), Some(0));
        assert_eq!(parse_retry_after("1.5", now), Some(2));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(120));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:20:00 GMT", now), Some(0));
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
