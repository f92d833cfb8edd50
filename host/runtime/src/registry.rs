//! The configured systems' connectors, loaded once per process: every
//! component compiled in parallel on the blocking pool, then configured. A
//! system whose connector is refused keeps its reason; the others load anyway.

use crate::{Connector, ConnectorSpec, LoadError, Runtime};
use std::sync::Arc;

/// One system's connector, or why it could not be loaded.
#[derive(Clone)]
pub struct SystemConnector {
    /// The integrator's name for the system.
    pub name: String,
    /// The connector, or why it was refused.
    pub plugin: Result<Arc<Connector>, Arc<LoadError>>,
}

/// The connectors of a set of systems, in the order they were given.
#[derive(Clone, Default)]
pub struct Registry {
    systems: Vec<SystemConnector>,
}

impl Registry {
    /// Load every spec at once.
    pub async fn load(runtime: &Runtime, specs: &[ConnectorSpec]) -> Registry {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, spec) in specs.iter().enumerate() {
            let runtime = runtime.clone();
            let spec = spec.clone();
            tasks.spawn(async move { (i, runtime.load(&spec).await) });
        }
        let mut loaded: Vec<Option<Result<Connector, LoadError>>> =
            specs.iter().map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, result)) => loaded[i] = Some(result),
                Err(e) => tracing::error!("a connector load task failed: {e}"),
            }
        }
        let systems = specs
            .iter()
            .zip(loaded)
            .map(|(spec, result)| SystemConnector {
                name: spec.name.clone(),
                plugin: match result {
                    Some(Ok(p)) => Ok(Arc::new(p)),
                    Some(Err(e)) => Err(Arc::new(e)),
                    None => Err(Arc::new(LoadError::Host {
                        path: spec.component.clone(),
                        reason: "the load task ended without an answer".into(),
                    })),
                },
            })
            .collect();
        Registry { systems }
    }

    /// Every system, in order.
    pub fn systems(&self) -> &[SystemConnector] {
        &self.systems
    }

    /// One system's connector, or why it was refused; `None` if the system
    /// was not given to [`Registry::load`].
    pub fn loaded(&self, name: &str) -> Option<&Result<Arc<Connector>, Arc<LoadError>>> {
        self.systems
            .iter()
            .find(|s| s.name == name)
            .map(|s| &s.plugin)
    }

    /// One system's connector by name, if it loaded.
    pub fn get(&self, name: &str) -> Option<&Arc<Connector>> {
        self.loaded(name).and_then(|p| p.as_ref().ok())
    }
}
