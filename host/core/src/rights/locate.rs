//! "Where is this person's data?": `locate` in every enabled system at once.
//! One system failing (refused at load, an error, a trap, a timeout) is
//! reported for that system and never hides the others' answers.

use super::retry::RetryPolicy;
use crate::config::Config;
use oubli_model::{Located, Subject};
use oubli_runtime::Registry;
use serde::Serialize;

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
    /// The connector could not be loaded.
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

/// Every system's answer, in configuration (name) order.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct LocateReport {
    /// One report per configured system.
    pub systems: Vec<SystemReport>,
}

impl LocateReport {
    /// Whether any system failed or was refused (disabled ones do not count).
    pub fn has_failures(&self) -> bool {
        self.systems.iter().any(|r| {
            matches!(
                r.answer,
                SystemAnswer::Failed { .. } | SystemAnswer::Refused { .. }
            )
        })
    }
}

/// Locate `subject` in every configured system, concurrently, retrying each
/// as it asks.
pub(crate) async fn locate(
    config: &Config,
    registry: &Registry,
    subject: &Subject,
    retry: RetryPolicy,
) -> LocateReport {
    let mut tasks = tokio::task::JoinSet::new();
    let mut reports: Vec<Option<SystemReport>> = Vec::with_capacity(config.systems.len());
    for (i, system) in config.systems.iter().enumerate() {
        let name = system.name().to_string();
        reports.push(match (system.enabled, registry.loaded(&name)) {
            (false, _) => Some(SystemReport {
                system: name,
                connector: None,
                answer: SystemAnswer::Disabled,
            }),
            (true, Some(Err(e))) => Some(SystemReport {
                system: name,
                connector: None,
                answer: SystemAnswer::Refused {
                    error: e.to_string(),
                },
            }),
            (true, None) => Some(SystemReport {
                system: name,
                connector: None,
                answer: SystemAnswer::Refused {
                    error: "not loaded".into(),
                },
            }),
            (true, Some(Ok(plugin))) => {
                let plugin = plugin.clone();
                let subject = subject.clone();
                tasks.spawn(async move {
                    let m = plugin.manifest();
                    let connector = format!("{} {}", m.id, m.version);
                    let answer = match retry.run(|| plugin.locate(&subject)).await {
                        Ok(records) => SystemAnswer::Found { records },
                        Err(e) => SystemAnswer::Failed {
                            kind: e.kind().to_string(),
                            transient: e.is_transient(),
                            error: e.to_string(),
                        },
                    };
                    (i, connector, answer)
                });
                None
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, connector, answer)) => {
                reports[i] = Some(SystemReport {
                    system: config.systems[i].name().to_string(),
                    connector: Some(connector),
                    answer,
                });
            }
            Err(e) => tracing::error!("a locate task failed: {e}"),
        }
    }
    LocateReport {
        systems: reports
            .into_iter()
            .zip(&config.systems)
            .map(|(r, s)| {
                r.unwrap_or_else(|| SystemReport {
                    system: s.name().to_string(),
                    connector: None,
                    answer: SystemAnswer::Failed {
                        kind: "host".into(),
                        error: "the search task ended without an answer".into(),
                        transient: true,
                    },
                })
            })
            .collect(),
    }
}
