//! The policy in force (`[policy]` in oubli.toml): how each system erases,
//! what is held, who must approve, how hard to retry. A request snapshots
//! it when filed: editing the config later does not change a request that
//! is already under way.

use oubli_model::{EraseMode, SystemKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// An erasure runs only after a second operator approved it (four
    /// eyes): the approver is never the requester.
    pub four_eyes: bool,
    /// Planning waits until an operator attested the subject's identity
    /// (who checked, how, with what evidence).
    pub attest_identity: bool,
    /// How records are erased unless a system says otherwise.
    pub erase_mode: EraseMode,
    /// Per system: its erase mode, and per record kind.
    pub systems: BTreeMap<String, SystemPolicy>,
    /// Legal holds (Art. 17(3)): records kept whatever the request.
    pub holds: Vec<Hold>,
    /// Attempts per stage of a task before it needs attention.
    pub max_attempts: u32,
    /// First back-off after a transient failure, in milliseconds; doubled
    /// per attempt, with jitter.
    pub backoff_ms: u64,
    /// The longest back-off, in milliseconds.
    pub max_backoff_ms: u64,
    /// How often an asynchronous vendor job is polled, in milliseconds.
    pub poll_interval_ms: u64,
    /// Polls before an unfinished job needs attention.
    pub max_polls: u32,
    /// Months a deadline may be extended by, in all (Art. 12(3): two).
    pub max_extension_months: u32,
    /// Recipients told of rectifications, erasures and restrictions
    /// (Art. 19).
    #[serde(default)]
    pub recipients: Vec<Recipient>,
    /// How long the answer to an access or portability request is kept
    /// once ready, in milliseconds (`keep_answers`; `None`: until the
    /// request is shredded).
    #[serde(default)]
    pub keep_answers_ms: Option<u64>,
}

/// How a recipient is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// A signed POST to its URL, retried until it answers 2xx.
    Webhook,
    /// An email an operator sends (its text is on the task), then ticks off.
    Email,
    /// Something an operator does (a call, a portal), then ticks off.
    Manual,
}

/// A recipient of personal data (Art. 19): who received data from which
/// systems, and how to tell them. Its webhook secret is not snapshotted:
/// it is read from the configuration when the notification is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// Its name (`marketing-agency`).
    pub name: String,
    /// The systems whose data it received.
    pub systems: Vec<String>,
    /// The categories it received (informational: named in the notice).
    pub categories: Vec<String>,
    /// How it is told.
    pub via: Via,
    /// Its webhook URL.
    pub url: Option<String>,
    /// Its email address.
    pub address: Option<String>,
}

/// One system's erasure policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemPolicy {
    /// The system's erase mode.
    pub erase_mode: Option<EraseMode>,
    /// Per record kind (`contact`, `conversation`).
    pub kinds: BTreeMap<String, EraseMode>,
    /// How long after an erasure to wait before searching again to verify
    /// it, in milliseconds: a system whose search index lags its writes
    /// (Cyrus's indexer) can miss, for a moment, mail that arrived while
    /// the erasure ran. Unset: [`default_search_settle_ms`].
    #[serde(default)]
    pub search_settle_ms: Option<u64>,
}

/// The verification delay of a system that sets none: 2 s for email
/// (servers index mail for search after it is stored), none for the rest
/// (their searches read the records themselves).
pub fn default_search_settle_ms(kind: SystemKind) -> u64 {
    match kind {
        SystemKind::Email => 2_000,
        _ => 0,
    }
}

/// A legal hold: records of a system (of one kind, or all) kept, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The system.
    pub system: String,
    /// The record kind, or every kind.
    pub kind: Option<String>,
    /// The reason (Art. 17(3) ground), shown on the plan and the outcome.
    pub reason: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            four_eyes: true,
            attest_identity: false,
            erase_mode: EraseMode::Delete,
            systems: BTreeMap::new(),
            holds: Vec::new(),
            max_attempts: 5,
            backoff_ms: 2_000,
            max_backoff_ms: 15 * 60_000,
            poll_interval_ms: 30_000,
            max_polls: 2_880,
            max_extension_months: 2,
            recipients: Vec::new(),
            keep_answers_ms: None,
        }
    }
}

impl Policy {
    /// How a record of `kind` in `system` is erased.
    pub fn erase_mode(&self, system: &str, kind: &str) -> EraseMode {
        let s = self.systems.get(system);
        s.and_then(|s| s.kinds.get(kind).copied())
            .or(s.and_then(|s| s.erase_mode))
            .unwrap_or(self.erase_mode)
    }

    /// How long to wait after erasing in `system` (of `kind`) before the
    /// verifying search.
    pub fn search_settle_ms(&self, system: &str, kind: SystemKind) -> u64 {
        self.systems
            .get(system)
            .and_then(|s| s.search_settle_ms)
            .unwrap_or_else(|| default_search_settle_ms(kind))
    }

    /// The legal hold on records of `kind` in `system`, if any.
    pub fn hold(&self, system: &str, kind: &str) -> Option<&Hold> {
        self.holds
            .iter()
            .find(|h| h.system == system && h.kind.as_deref().is_none_or(|k| k == kind))
    }

    /// The wait before attempt `attempt + 1` (1-based `attempt`) after a
    /// transient failure: exponential, capped, with up to 50% jitter
    /// subtracted so that many tasks failing together do not retry
    /// together.
    pub fn backoff_ms(&self, attempt: u32, jitter: f64) -> u64 {
        let exp = self
            .backoff_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30));
        let capped = exp.min(self.max_backoff_ms);
        let jitter = jitter.clamp(0.0, 1.0);
        capped - (capped as f64 * 0.5 * jitter) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erase_mode_falls_back_from_kind_to_system_to_default() {
        let mut p = Policy::default();
        p.systems.insert(
            "crm".into(),
            SystemPolicy {
                erase_mode: Some(EraseMode::Anonymise),
                kinds: [("ticket".to_string(), EraseMode::Delete)].into(),
                search_settle_ms: None,
            },
        );
        assert_eq!(p.erase_mode("crm", "ticket"), EraseMode::Delete);
        assert_eq!(p.erase_mode("crm", "contact"), EraseMode::Anonymise);
        assert_eq!(p.erase_mode("dialer", "contact"), EraseMode::Delete);
    }

    #[test]
    fn email_waits_for_its_index_before_verifying_unless_told_otherwise() {
        let mut p = Policy::default();
        assert_eq!(p.search_settle_ms("mail", SystemKind::Email), 2_000);
        assert_eq!(p.search_settle_ms("crm", SystemKind::Crm), 0);
        p.systems.insert(
            "mail".into(),
            SystemPolicy {
                search_settle_ms: Some(0),
                ..SystemPolicy::default()
            },
        );
        assert_eq!(p.search_settle_ms("mail", SystemKind::Email), 0);
        // A policy snapshotted before the setting existed reads as unset.
        let old: SystemPolicy = serde_json::from_str(r#"{"erase_mode":null,"kinds":{}}"#).unwrap();
        assert_eq!(old.search_settle_ms, None);
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let p = Policy {
            backoff_ms: 1000,
            max_backoff_ms: 5000,
            ..Policy::default()
        };
        assert_eq!(p.backoff_ms(1, 0.0), 1000);
        assert_eq!(p.backoff_ms(2, 0.0), 2000);
        assert_eq!(p.backoff_ms(4, 0.0), 5000);
        assert_eq!(p.backoff_ms(2, 1.0), 1000);
        assert_eq!(p.backoff_ms(60, 0.0), 5000);
    }

    #[test]
    fn holds_match_system_and_kind() {
        let p = Policy {
            holds: vec![Hold {
                system: "acd".into(),
                kind: Some("conversation".into()),
                reason: "litigation".into(),
            }],
            ..Policy::default()
        };
        assert!(p.hold("acd", "conversation").is_some());
        assert!(p.hold("acd", "contact").is_none());
        assert!(p.hold("crm", "conversation").is_none());
    }
}
