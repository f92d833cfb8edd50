//! Connector call latencies, per system, operation and outcome, for the
//! host's `/metrics` (a histogram). Process-wide: every registry in the
//! process records here. Labels are the integrator's system names and the
//! contract's operation and error-kind names, never data.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
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

/// Record one call.
pub fn record(system: &str, operation: &'static str, outcome: &'static str, took: Duration) {
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
