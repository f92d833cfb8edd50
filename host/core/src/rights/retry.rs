//! Retrying connector calls the way the systems ask: a `rate-limited(n)` error
//! waits `n` seconds (capped), a transient failure (`unavailable`, the
//! host's own instance pool) backs off exponentially. Anything else is
//! returned at once: retrying a denial or a bug does not help, and a call
//! that ran into its deadline would only run into it again while the
//! operator waits (the request lifecycle retries those later).
//!
//! ```
//! use oubli_core::rights::retry::RetryPolicy;
//! let policy = RetryPolicy::default();
//! assert_eq!(policy.attempts, 4);
//! ```

use oubli_model::ConnectorError;
use oubli_runtime::CallError;
use std::time::Duration;

/// How often and how long to retry one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// First back-off after a transient failure; doubled each time.
    pub backoff: Duration,
    /// The longest single wait, whatever `Retry-After` says. A system asking
    /// for more is reported as rate-limited rather than waited for.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            backoff: Duration::from_millis(250),
            max_wait: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// How long to wait before attempt `attempt + 1` after `error`, or
    /// `None` to give up.
    pub fn wait_after(&self, attempt: u32, error: &CallError) -> Option<Duration> {
        if attempt + 1 >= self.attempts {
            return None;
        }
        match error {
            CallError::Connector(ConnectorError::RateLimited(secs)) => {
                let wait = Duration::from_secs(u64::from(*secs).max(1));
                (wait <= self.max_wait).then_some(wait)
            }
            CallError::Timeout(_) => None,
            e if e.is_transient() => Some((self.backoff * 2u32.pow(attempt)).min(self.max_wait)),
            _ => None,
        }
    }

    /// Run `op` until it succeeds, fails for good, or attempts run out.
    /// (A closure returning a future rather than an `async` closure, so the
    /// future stays `Send` for spawned tasks.)
    pub async fn run<T, F, Fut>(&self, mut op: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) => match self.wait_after(attempt, &e) {
                    Some(wait) => {
                        tracing::debug!(kind = e.kind(), ?wait, "retrying a plugin call");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    None => return Err(e),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_as_asked_and_gives_up_on_permanent_errors() {
        let p = RetryPolicy::default();
        let limited = CallError::Connector(ConnectorError::RateLimited(2));
        assert_eq!(p.wait_after(0, &limited), Some(Duration::from_secs(2)));
        let long = CallError::Connector(ConnectorError::RateLimited(3600));
        assert_eq!(p.wait_after(0, &long), None);
        let down = CallError::Connector(ConnectorError::Unavailable("x".into()));
        assert_eq!(p.wait_after(0, &down), Some(Duration::from_millis(250)));
        assert_eq!(p.wait_after(2, &down), Some(Duration::from_secs(1)));
        assert_eq!(p.wait_after(3, &down), None);
        let denied = CallError::Connector(ConnectorError::Denied("x".into()));
        assert_eq!(p.wait_after(0, &denied), None);
        assert_eq!(RetryPolicy::none().wait_after(0, &down), None);
    }

    #[tokio::test]
    async fn run_retries_until_success() {
        let mut calls = 0;
        let policy = RetryPolicy {
            backoff: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let r = policy
            .run(|| {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(CallError::Connector(ConnectorError::Unavailable(
                            "down".into(),
                        )))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(r, Ok(3));
    }
}
