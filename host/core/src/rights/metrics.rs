//! What `/metrics` shows of the store: requests by state, tasks by state,
//! overdue requests. Counts only, never an id or identifier.

use super::engine::Engine;
use super::request::RequestError;
use oubli_store::service;
use oubli_store::tasks;
use std::fmt::Write;

impl Engine {
    /// Gauges in Prometheus text format, and the connector calls' latency
    /// histogram.
    pub async fn metrics_text(&self) -> Result<String, RequestError> {
        let pool = self.store.pool();
        let mut out = String::new();
        let _ = writeln!(out, "# HELP oubli_requests Requests by state.");
        let _ = writeln!(out, "# TYPE oubli_requests gauge");
        for (state, n) in service::requests_by_state(pool).await? {
            let _ = writeln!(out, "oubli_requests{{state=\"{state}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP oubli_tasks Tasks by state.");
        let _ = writeln!(out, "# TYPE oubli_tasks gauge");
        for (state, n) in tasks::count_by_state(pool).await? {
            let _ = writeln!(out, "oubli_tasks{{state=\"{state}\"}} {n}");
        }
        let overdue = service::overdue(pool, self.store.now()).await?;
        let _ = writeln!(
            out,
            "# HELP oubli_requests_overdue Requests past their deadline and not over."
        );
        let _ = writeln!(out, "# TYPE oubli_requests_overdue gauge");
        let _ = writeln!(out, "oubli_requests_overdue {overdue}");
        let _ = writeln!(
            out,
            "# HELP oubli_restrictions Subjects' restrictions held in memory."
        );
        let _ = writeln!(out, "# TYPE oubli_restrictions gauge");
        let _ = writeln!(out, "oubli_restrictions {}", self.restrictions.len());
        out.push_str(&oubli_runtime::metrics::render());
        Ok(out)
    }
}
