//! Connector call latencies, per system, operation and outcome, for the
//! host's `/metrics` (a histogram). Process-wide: every registry in the
//! process records here. Labels are the integrator's system names and the
//! contract's operation and error-kind names, never data.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

const BUCKETS_S: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    system: String,
    operation: &'static str,
    outcome: &'static str,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS_S)
}

type Calls = Family<Call, Histogram, fn() -> Histogram>;

static CALLS: LazyLock<Calls> = LazyLock::new(|| Family::new_with_constructor(histogram));

/// A system's connector calls since the process started, for a console
/// to show beside the system.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CallSummary {
    /// Calls made.
    pub calls: u64,
    /// Calls that ended in an error (any outcome but `ok`).
    pub failed: u64,
    /// Their total duration, in seconds.
    pub total_s: f64,
    /// The longest, in seconds.
    pub max_s: f64,
}

impl CallSummary {
    /// The mean call's duration in milliseconds, if there was a call.
    pub fn mean_ms(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.total_s * 1e3 / self.calls as f64)
    }
}

static SUMMARIES: LazyLock<Mutex<HashMap<String, CallSummary>>> = LazyLock::new(Default::default);

/// Each system's calls since the process started.
pub fn summaries() -> HashMap<String, CallSummary> {
    SUMMARIES.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Record one call.
pub fn record(system: &str, operation: &'static str, outcome: &'static str, took: Duration) {
    {
        let mut all = SUMMARIES.lock().unwrap_or_else(|e| e.into_inner());
        let s = all.entry(system.to_string()).or_default();
        s.calls += 1;
        if outcome != "ok" {
            s.failed += 1;
        }
        s.total_s += took.as_secs_f64();
        s.max_s = s.max_s.max(took.as_secs_f64());
    }
    CALLS
        .get_or_create(&Call {
            system: system.to_string(),
            operation,
            outcome,
        })
        .observe(took.as_secs_f64());
}

/// Add the connector calls to `registry` (they keep counting there).
pub fn register(registry: &mut Registry) {
    registry.register(
        "oubli_connector_call_duration_seconds",
        "Connector calls, by system, operation and outcome",
        CALLS.clone(),
    );
}
