//! HTTP request counts and latency histograms per route, in Prometheus
//! text. Labels are route templates (`/v1/requests/{id}`), never the
//! path as sent.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS_MS: [f64; 10] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0, 5000.0,
];

#[derive(Debug, Default, Clone)]
struct Series {
    buckets: [u64; BUCKETS_MS.len()],
    count: u64,
    sum_ms: f64,
}

/// Requests served, by method, route and status class.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl HttpMetrics {
    /// Count one request.
    pub fn record(&self, method: &str, route: &str, status: u16, took: Duration) {
        let ms = took.as_secs_f64() * 1e3;
        // Methods are the client's text: only known ones become labels.
        let method = match method {
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => method,
            _ => "OTHER",
        };
        let mut map = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let s = map
            .entry((method.to_string(), route.to_string(), status))
            .or_default();
        s.count += 1;
        s.sum_ms += ms;
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if ms <= *b {
                s.buckets[i] += 1;
            }
        }
    }

    /// Prometheus text.
    pub fn render(&self) -> String {
        let map = self
            .series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP oubli_http_request_duration_seconds HTTP requests served, by route and status."
        );
        let _ = writeln!(out, "# TYPE oubli_http_request_duration_seconds histogram");
        for ((method, route, status), s) in &map {
            let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
            for (i, b) in BUCKETS_MS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "oubli_http_request_duration_seconds_bucket{{{labels},le=\"{}\"}} {}",
                    b / 1e3,
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "oubli_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "oubli_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_ms / 1e3
            );
            let _ = writeln!(
                out,
                "oubli_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        out
    }
}
