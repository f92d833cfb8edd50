//! Connector call latencies, per system, operation and outcome, for the
//! host's `/metrics` (Prometheus histogram). Process-wide: every registry
//! in the process records here. Labels are the integrator's system names
//! and the contract's operation and error-kind names, never data.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS_S: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Clone, Default)]
struct Hist {
    buckets: [u64; BUCKETS_S.len()],
    count: u64,
    sum: f64,
}

type Key = (String, &'static str, &'static str);

static CALLS: Mutex<BTreeMap<Key, Hist>> = Mutex::new(BTreeMap::new());

/// Record one call.
pub fn record(system: &str, operation: &'static str, outcome: &'static str, took: Duration) {
    let s = took.as_secs_f64();
    let mut map = CALLS.lock().unwrap_or_else(|e| e.into_inner());
    let h = map
        .entry((system.to_string(), operation, outcome))
        .or_default();
    h.count += 1;
    h.sum += s;
    for (i, b) in BUCKETS_S.iter().enumerate() {
        if s <= *b {
            h.buckets[i] += 1;
        }
    }
}

/// Every recorded call, in Prometheus text format.
pub fn render() -> String {
    let map = CALLS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP oubli_connector_call_duration_seconds Connector calls, by system, operation and outcome."
    );
    let _ = writeln!(
        out,
        "# TYPE oubli_connector_call_duration_seconds histogram"
    );
    for ((system, operation, outcome), h) in &map {
        let labels = format!("system=\"{system}\",operation=\"{operation}\",outcome=\"{outcome}\"");
        for (i, b) in BUCKETS_S.iter().enumerate() {
            let _ = writeln!(
                out,
                "oubli_connector_call_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                h.buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "oubli_connector_call_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "oubli_connector_call_duration_seconds_sum{{{labels}}} {}",
            h.sum
        );
        let _ = writeln!(
            out,
            "oubli_connector_call_duration_seconds_count{{{labels}}} {}",
            h.count
        );
    }
    out
}
