//! HTTP request latencies per route, for `/metrics`. Labels are route
//! templates (`/v1/requests/{id}`), never the path as sent.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

const BUCKETS_S: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Served {
    method: &'static str,
    route: String,
    status: String,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS_S)
}

/// Requests served, by method, route and status.
#[derive(Debug)]
pub struct HttpMetrics {
    served: Family<Served, Histogram, fn() -> Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> HttpMetrics {
        HttpMetrics {
            served: Family::new_with_constructor(histogram),
        }
    }
}

impl HttpMetrics {
    /// Count one request.
    pub fn record(&self, method: &str, route: &str, status: u16, took: Duration) {
        // Methods are the client's text: only known ones become labels.
        let method = match method {
            "GET" => "GET",
            "POST" => "POST",
            "PUT" => "PUT",
            "PATCH" => "PATCH",
            "DELETE" => "DELETE",
            "HEAD" => "HEAD",
            "OPTIONS" => "OPTIONS",
            _ => "OTHER",
        };
        self.served
            .get_or_create(&Served {
                method,
                route: route.to_string(),
                status: status.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Add the requests served to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "oubli_http_request_duration_seconds",
            "HTTP requests served, by route and status",
            self.served.clone(),
        );
    }
}
