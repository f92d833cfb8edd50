//! Per-system call budgets (`[retention] budgets`): the runtime's outbound
//! layer asks the [`StoreMeter`] before every request of a system, and it
//! draws from a token bucket in the store that every process shares.

/// The budgets of `[retention.budgets]`, drawn from the store's token
/// buckets: every outbound request of a system waits for a token, a
/// sweep's costing `1 / sweep_share` so that sweeps use at most that share
/// of the rate and requests of data subjects keep the rest.
pub(crate) struct StoreMeter {
    pub(crate) store: oubli_store::Store,
    pub(crate) budget: crate::retention::Budget,
    pub(crate) sweep_share: f64,
}

impl oubli_runtime::Meter for StoreMeter {
    fn admit<'a>(
        &'a self,
        system: &'a str,
        lane: oubli_runtime::Lane,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let cost = match lane {
                oubli_runtime::Lane::Request => 1.0,
                oubli_runtime::Lane::Sweep => 1.0 / self.sweep_share,
            };
            let burst = self.budget.burst.max(1.0 / self.sweep_share);
            let mut failures = 0;
            loop {
                match oubli_store::retention::take(
                    &self.store,
                    system,
                    self.budget.per_second,
                    burst,
                    cost,
                )
                .await
                {
                    Ok(0) => return,
                    Ok(wait) => tokio::time::sleep(std::time::Duration::from_millis(wait)).await,
                    Err(e) => {
                        failures += 1;
                        if failures >= 5 {
                            tracing::warn!(
                                system,
                                "the call budget cannot be read, the call goes ahead: {e}"
                            );
                            return;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                }
            }
        })
    }
}
