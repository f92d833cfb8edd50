//! What `/metrics` shows of the store: requests by state, tasks by state,
//! overdue requests, the restriction registry's size; and the connector
//! calls' latencies. Counts only, never an id or identifier.

use super::engine::Engine;
use super::request::RequestError;
use oubli_store::service;
use oubli_store::tasks;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State {
    state: String,
}

impl Engine {
    /// Register the gauges, read from the store now, and the connector
    /// calls' histogram in `registry`.
    pub async fn register_metrics(&self, registry: &mut Registry) -> Result<(), RequestError> {
        let pool = self.store.pool();
        let by_state = |rows: Vec<(String, i64)>| {
            let family = Family::<State, Gauge>::default();
            for (state, n) in rows {
                family.get_or_create(&State { state }).set(n);
            }
            family
        };
        registry.register(
            "oubli_requests",
            "Requests by state",
            by_state(service::requests_by_state(pool).await?),
        );
        registry.register(
            "oubli_tasks",
            "Tasks by state",
            by_state(tasks::count_by_state(pool).await?),
        );
        let overdue = Gauge::<i64>::default();
        overdue.set(service::overdue(pool, self.store.now()).await?);
        registry.register(
            "oubli_requests_overdue",
            "Requests past their deadline and not over",
            overdue,
        );
        let restrictions = Gauge::<i64>::default();
        restrictions.set(self.restrictions.len() as i64);
        registry.register(
            "oubli_restrictions",
            "Subjects' restrictions held in memory",
            restrictions,
        );
        oubli_runtime::metrics::register(registry);
        Ok(())
    }
}
