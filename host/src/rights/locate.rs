//! "Where is this person's data?": load every enabled plugin and call
//! `locate` on all of them at once. One system failing (refused at load, an
//! error, a trap, a timeout) is reported for that system and never hides the
//! others' answers.

use super::retry::RetryPolicy;
use crate::config::Config;
use crate::runtime::{Located, Plugin, Runtime, Subject};
use serde::Serialize;
use std::sync::Arc;

/// What one system answered.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum SystemAnswer {
    /// The search ran; these records were found (possibly none).
    Found {
        /// The records.
        records: Vec<Located>,
    },
    /// The search failed.
    Failed {
        /// A stable name for the kind of failure (`unavailable`, `timeout`, ...).
        kind: String,
        /// What went wrong, one line.
        error: String,
        /// Whether trying again later may work.
        transient: bool,
    },
    /// The plugin could not be loaded.
    Refused {
        /// Why, one line.
        error: String,
    },
    /// The system is disabled in the configuration.
    Disabled,
}

/// One system's answer.
#[derive(Debug, Clone, Serialize)]
pub struct SystemReport {
    /// The integrator's name for the system.
    pub system: String,
    /// The connector's id and version, when it loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// What it answered.
    #[serde(flatten)]
    pub answer: SystemAnswer,
}

/// Locate `subject` in every configured system, concurrently, retrying each
/// system as it asks (see [`RetryPolicy`]). Reports come back in
/// configuration (name) order.
pub async fn locate_everywhere(
    runtime: &Runtime,
    config: &Config,
    subject: &Subject,
) -> Vec<SystemReport> {
    locate_with(runtime, config, subject, RetryPolicy::default())
        .await
        .into_iter()
        .map(|(report, _)| report)
        .collect()
}

/// [`locate_everywhere`] with an explicit retry policy, also handing back
/// each loaded plugin (for the operations that follow a search).
pub async fn locate_with(
    runtime: &Runtime,
    config: &Config,
    subject: &Subject,
    retry: RetryPolicy,
) -> Vec<(SystemReport, Option<Arc<Plugin>>)> {
    let mut reports: Vec<Option<SystemReport>> = vec![None; config.plugins.len()];
    let mut plugins: Vec<Option<Arc<Plugin>>> = vec![None; config.plugins.len()];
    let mut tasks = tokio::task::JoinSet::new();
    for (i, p) in config.plugins.iter().enumerate() {
        if !p.enabled {
            reports[i] = Some(SystemReport {
                system: p.name.clone(),
                connector: None,
                answer: SystemAnswer::Disabled,
            });
            continue;
        }
        match runtime.load(p).await {
            Err(e) => {
                reports[i] = Some(SystemReport {
                    system: p.name.clone(),
                    connector: None,
                    answer: SystemAnswer::Refused {
                        error: e.to_string(),
                    },
                });
            }
            Ok(plugin) => {
                let plugin = Arc::new(plugin);
                plugins[i] = Some(plugin.clone());
                let subject = subject.clone();
                tasks.spawn(async move {
                    let connector =
                        format!("{} {}", plugin.manifest().id, plugin.manifest().version);
                    let answer = match retry.run(|| plugin.locate(&subject)).await {
                        Ok(records) => SystemAnswer::Found { records },
                        Err(e) => SystemAnswer::Failed {
                            kind: e.kind().to_string(),
                            transient: e.is_transient(),
                            error: e.to_string(),
                        },
                    };
                    (i, plugin.name().to_string(), connector, answer)
                });
            }
        }
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, system, connector, answer)) => {
                reports[i] = Some(SystemReport {
                    system,
                    connector: Some(connector),
                    answer,
                });
            }
            Err(e) => tracing::error!("a locate task failed: {e}"),
        }
    }
    reports
        .into_iter()
        .zip(&config.plugins)
        .zip(plugins)
        .map(|((r, p), plugin)| {
            let report = r.unwrap_or_else(|| SystemReport {
                system: p.name.clone(),
                connector: None,
                answer: SystemAnswer::Failed {
                    kind: "host".into(),
                    error: "the search task ended without an answer".into(),
                    transient: true,
                },
            });
            (report, plugin)
        })
        .collect()
}
