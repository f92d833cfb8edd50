//! What the operator console's dashboard and systems page show: requests
//! by state, overdue and due this week, the median time to an end, and per
//! system how often its work failed (30 days, from the store) and how its
//! connector calls went (since this process started). Counts only.

use super::engine::Engine;
use super::request::RequestError;
use oubli_store::service;
use serde::Serialize;

const DAY_MS: i64 = 86_400_000;

/// The dashboard's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// Requests by state (every state that has one).
    pub by_state: Vec<(String, i64)>,
    /// Requests past their deadline and not over.
    pub overdue: i64,
    /// Requests not over that fall due in the next 7 days.
    pub due_this_week: i64,
    /// The median time from receipt to completion of the requests
    /// completed in the last 30 days (ms), if any was.
    pub median_completion_ms: Option<i64>,
    /// Requests completed in the last 30 days.
    pub completed_30d: usize,
    /// Per system, over the last 30 days.
    pub systems: Vec<SystemHealth>,
}

/// How a system's work went.
#[derive(Debug, Clone, Serialize)]
pub struct SystemHealth {
    /// The system.
    pub system: String,
    /// Requests that involved it and moved in the window.
    pub requests: i64,
    /// Of those, how many failed, could not be searched, or wait for an
    /// operator.
    pub failed: i64,
    /// Connector calls since this process started.
    pub calls: u64,
    /// Of those, how many ended in an error.
    pub failed_calls: u64,
    /// The mean call's duration (ms).
    pub mean_call_ms: Option<f64>,
    /// The longest call's duration (ms).
    pub max_call_ms: Option<f64>,
}

impl SystemHealth {
    /// The share of requests that failed, 0 to 1, if there was one.
    pub fn failure_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.failed as f64 / self.requests as f64)
    }
}

impl Engine {
    /// The dashboard, now.
    pub async fn dashboard(&self) -> Result<Dashboard, RequestError> {
        let pool = self.store.pool();
        let now = self.now();
        let by_state = service::requests_by_state(pool).await?;
        let overdue = service::overdue(pool, now).await?;
        let due_this_week = service::due_between(pool, now, now + 7 * DAY_MS).await?;
        let times = service::completion_times(pool, now - 30 * DAY_MS).await?;
        let median_completion_ms = (!times.is_empty()).then(|| times[times.len() / 2]);
        Ok(Dashboard {
            by_state,
            overdue,
            due_this_week,
            median_completion_ms,
            completed_30d: times.len(),
            systems: self.system_health().await?,
        })
    }

    /// Each configured system's health: 30 days of requests from the
    /// store, calls since this process started.
    pub async fn system_health(&self) -> Result<Vec<SystemHealth>, RequestError> {
        let now = self.now();
        let moved = service::system_outcomes(self.store.pool(), now - 30 * DAY_MS).await?;
        let calls = oubli_runtime::metrics::summaries();
        Ok(self
            .systems()
            .config()
            .systems
            .iter()
            .map(|s| s.name().to_string())
            .map(|system| {
                let (requests, failed) = moved
                    .iter()
                    .find(|(s, _, _)| *s == system)
                    .map_or((0, 0), |(_, n, f)| (*n, *f));
                let c = calls.get(&system).copied().unwrap_or_default();
                SystemHealth {
                    requests,
                    failed,
                    calls: c.calls,
                    failed_calls: c.failed,
                    mean_call_ms: c.mean_ms(),
                    max_call_ms: (c.calls > 0).then_some(c.max_s * 1e3),
                    system,
                }
            })
            .collect())
    }
}
