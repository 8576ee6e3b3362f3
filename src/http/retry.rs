//! The one retry policy: 408, 429 and 5xx and broken connections are tried again, with
//! exponential backoff, after `Retry-After` when the server sends one (capped); any other
//! answer is final, since a missing file stays missing and retrying a 404 only delays the
//! message. A hash mismatch is the caller's to call final, and it does.

use std::time::{Duration, Instant};

use super::HttpOptions;

/// The longest wait between attempts, whatever the backoff or `Retry-After` says.
const MAX_DELAY: Duration = Duration::from_secs(30);

/// Whether `response`'s status is worth another try (408, 429 and 5xx), and after how long the
/// server asked for (`Retry-After` in seconds).
pub fn transient_status(response: &reqwest::blocking::Response) -> Option<Option<Duration>> {
    let status = response.status();
    if !(matches!(status.as_u16(), 408 | 429) || status.is_server_error()) {
        return None;
    }
    Some(
        response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs),
    )
}

/// One attempt's failure, for [`with_retries`].
pub enum Retryable<E> {
    /// Worth another try, after at least this long (from `Retry-After`), with this message.
    Transient(Option<Duration>, String),
    Fatal(E),
}

/// Run `attempt` until it succeeds, fails for good, runs out of retries or would end after
/// `deadline`; `gave_up(attempts, last message)` is the error then. `url` names the request in
/// the log line of each retry.
pub fn with_retries<T, E>(
    options: &HttpOptions,
    url: &str,
    deadline: Instant,
    mut attempt: impl FnMut() -> Result<T, Retryable<E>>,
    gave_up: impl FnOnce(u32, String) -> E,
) -> Result<T, E> {
    let mut delay = options.retry_delay;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (retry_after, message) = match attempt() {
            Ok(value) => return Ok(value),
            Err(Retryable::Fatal(error)) => return Err(error),
            Err(Retryable::Transient(retry_after, message)) => (retry_after, message),
        };
        let wait = retry_after.unwrap_or(delay).min(MAX_DELAY);
        if attempts > options.retries || Instant::now() + wait >= deadline {
            return Err(gave_up(attempts, message));
        }
        tracing::warn!(
            url = %crate::redact::redacted(url),
            attempts,
            "{message}; retrying in {:.1}s",
            wait.as_secs_f64()
        );
        std::thread::sleep(wait);
        delay = (delay * 2).min(MAX_DELAY);
    }
}

impl HttpOptions {
    /// When a request that starts now, all its attempts together, must have ended.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.limits.download_deadline
    }
}
