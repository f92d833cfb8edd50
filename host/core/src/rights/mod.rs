//! The rights themselves: what must happen for a data subject, across every
//! configured system. [`Systems`] is the one entry point: the CLI calls it
//! now, the HTTP API and the workers will; none of them holds logic of its
//! own, and everything here returns typed reports that they render.
//!
//! So far: [`locate`] (finding a subject everywhere), [`export`] (reading
//! their records and attachments out into an encrypted ZIP), [`retry`]
//! (calling connectors the way their systems ask), and checking the
//! configured systems. The request lifecycle (plan, approve, execute,
//! verify, evidence) goes here next, on top of them; a new right is a new
//! module beside these with a method on [`Systems`].

pub mod audit;
mod budget;
pub mod bundle;
pub mod certificate;
pub mod consent;
pub mod dashboard;
mod deadline;
pub mod engine;
pub mod export;
pub mod inform;
mod lifecycle;
pub mod locate;
mod metrics;
mod operator;
pub mod policy;
pub mod privacy;
mod progress;
pub mod recipients;
mod request;
pub mod restriction;
pub mod retention;
pub mod retry;
pub mod sessions;
mod steps;
mod token_cache;
pub mod tokens;
mod views;
pub mod webhooks;
pub mod worker;

use crate::config::Config;
use crate::identifiers::{IdentifierError, Identifiers, Region};
use export::{ExportError, ExportReport};
use locate::{LocateReport, SystemAnswer};
use oubli_crypto::file::Recipient;
use oubli_model::Subject;
use oubli_runtime::{ConnectorInfo, LoadError, MAX_INSTANCES, Registry, Runtime, RuntimeOptions};
use retry::RetryPolicy;
use serde::Serialize;
use std::path::Path;
use tokio::io::AsyncWrite;

/// How the service is set up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Compile connectors in memory only, never touching the compiled-code
    /// cache.
    pub no_cache: bool,
    /// How connector calls are retried.
    pub retry: RetryPolicy,
}

/// The configured systems: the configuration, each system's connector
/// (loaded once, in parallel), and the calls on a subject across all of
/// them (locate, check).
pub struct Systems {
    config: Config,
    registry: Registry,
    retry: RetryPolicy,
}

/// One line of a systems check.
#[derive(Debug, Clone, Serialize)]
pub struct SystemCheck {
    /// The integrator's name for the system.
    pub system: String,
    /// `ok`, `refused` or `disabled`.
    pub status: CheckStatus,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What loaded, and what it was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<ConnectorInfo>,
    /// The live probe's answer (`systems check --probe`): how many records
    /// a search for nobody found (normally 0), or why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<Result<usize, String>>,
}

/// Whether a system is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    /// Loaded and configured.
    Ok,
    /// Its connector was refused.
    Refused,
    /// Disabled in the configuration.
    Disabled,
}

/// Every system checked.
#[derive(Debug, Clone, Serialize)]
pub struct SystemsCheck {
    /// One line per configured system, in name order.
    pub systems: Vec<SystemCheck>,
    /// Host-wide warnings (the systems' concurrency exceeding the instance
    /// pool).
    pub warnings: Vec<String>,
}

impl SystemsCheck {
    /// Whether any system was refused, or failed its probe.
    pub fn has_refusals(&self) -> bool {
        self.systems
            .iter()
            .any(|s| s.status == CheckStatus::Refused || matches!(s.probe, Some(Err(_))))
    }
}

/// Who the live probe searches for: nobody. An address in a reserved
/// domain (`.invalid`, RFC 2606), a number from Ofcom's range kept for
/// drama (020 7946 0xxx), and an id no system hands out.
pub fn probe_subject() -> Subject {
    Subject {
        emails: vec!["oubli-probe@probe.invalid".into()],
        phones: vec!["+442079460999".into()],
        names: vec![],
        external_ids: vec![oubli_model::ExternalId {
            namespace: "oubli.probe".into(),
            id: "oubli-probe-nobody".into(),
        }],
    }
}

impl Systems {
    /// Start the service: set up the runtime and load every enabled
    /// system's connector at once. A connector that is refused does not
    /// stop the others; [`Systems::check_systems`] says why.
    pub async fn open(config: Config, options: Options) -> Result<Systems, LoadError> {
        let runtime = Runtime::new(&RuntimeOptions {
            cache_dir: config.runtime.cache_dir.clone(),
            no_cache: options.no_cache,
        })?;
        Ok(Systems::with_runtime(config, &runtime, options.retry).await)
    }

    /// [`Systems::open`] on an existing runtime (tests and benches share
    /// one).
    pub async fn with_runtime(config: Config, runtime: &Runtime, retry: RetryPolicy) -> Systems {
        let registry = Registry::load(runtime, &config.enabled_specs()).await;
        Systems {
            config,
            registry,
            retry,
        }
    }

    /// The service without any connector (listing and deciding on requests
    /// needs no system; planning and carrying them out does).
    pub fn without_connectors(config: Config) -> Systems {
        Systems {
            config,
            registry: Registry::default(),
            retry: RetryPolicy::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The loaded connectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The retry policy for connector calls.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Normalise identifiers into a subject, reading national phone numbers
    /// in `region` or else the configured default region.
    pub fn subject(
        &self,
        given: &Identifiers,
        region: Option<Region>,
    ) -> Result<Subject, IdentifierError> {
        given.normalise(region.or(self.config.identifiers.default_region))
    }

    /// Whether each configured system is usable, one line each, and
    /// host-wide warnings.
    pub fn check_systems(&self) -> SystemsCheck {
        let systems = self
            .config
            .systems
            .iter()
            .map(|s| {
                let (status, error, connector) = match (s.enabled, self.registry.loaded(s.name())) {
                    (false, _) => (CheckStatus::Disabled, None, None),
                    (true, Some(Ok(p))) => (CheckStatus::Ok, None, Some(p.info().clone())),
                    (true, Some(Err(e))) => (CheckStatus::Refused, Some(e.to_string()), None),
                    (true, None) => (CheckStatus::Refused, Some("not loaded".into()), None),
                };
                SystemCheck {
                    system: s.name().to_string(),
                    status,
                    error,
                    connector,
                    probe: None,
                }
            })
            .collect();
        let concurrency: u32 = self
            .config
            .systems
            .iter()
            .filter(|s| s.enabled)
            .map(|s| s.spec.limits.concurrency)
            .sum();
        let mut warnings = Vec::new();
        if concurrency > MAX_INSTANCES {
            warnings.push(format!(
                "the systems' concurrency limits add up to {concurrency}, more than the {MAX_INSTANCES} instances the host runs at once: calls beyond that fail and are retried"
            ));
        }
        let gaps = self.register_gaps();
        if !gaps.is_empty() {
            warnings.push(format!(
                "the register of processing has {} gap(s), first {}: notices, the record of processing and answers say so until `oubli register check` names none",
                gaps.len(),
                gaps[0]
            ));
        }
        for p in &self.config.retention.policies {
            if let Some(problem) = self.retention_problem(p) {
                warnings.push(format!("retention policy {:?} cannot run: {problem}", p.id));
            }
        }
        SystemsCheck { systems, warnings }
    }

    /// [`Systems::check_systems`], and a live probe of each loaded system:
    /// one search for nobody ([`probe_subject`]), which makes the
    /// connector sign in and ask its system, so a wrong token or an
    /// unreachable host shows before a request needs it. Nothing is
    /// changed anywhere, and no retries: the first answer counts.
    pub async fn check_systems_live(&self) -> SystemsCheck {
        let mut check = self.check_systems();
        let report = locate::locate(
            &self.config,
            &self.registry,
            &probe_subject(),
            RetryPolicy::none(),
        )
        .await;
        for s in check
            .systems
            .iter_mut()
            .filter(|s| s.status == CheckStatus::Ok)
        {
            s.probe = report
                .systems
                .iter()
                .find(|r| r.system == s.system)
                .and_then(|r| match &r.answer {
                    SystemAnswer::Found { records } => Some(Ok(records.len())),
                    SystemAnswer::Failed { kind, error, .. } => {
                        Some(Err(format!("{kind}: {error}")))
                    }
                    _ => None,
                });
        }
        check
    }

    /// Find `subject` in every system at once.
    pub async fn locate(&self, subject: &Subject) -> LocateReport {
        locate::locate(&self.config, &self.registry, subject, self.retry).await
    }

    /// Export everything `found` holds about `subject` as a ZIP encrypted
    /// for `recipients`, streamed into `out`.
    pub async fn export<W: AsyncWrite + Unpin>(
        &self,
        found: &LocateReport,
        subject: &Subject,
        recipients: &[Recipient],
        request_id: &str,
        out: W,
    ) -> Result<ExportReport, ExportError> {
        export::write_export(
            &self.registry,
            found,
            subject,
            recipients,
            request_id,
            &self.retry,
            out,
        )
        .await
    }
}

/// Read what a connector component is and asks for, outside any
/// configuration (`oubli connector inspect`).
pub async fn inspect_connector(
    path: &Path,
    no_cache: bool,
) -> Result<oubli_model::ComponentInfo, LoadError> {
    let runtime = Runtime::new(&RuntimeOptions {
        cache_dir: None,
        no_cache,
    })?;
    runtime.inspect(path).await
}
