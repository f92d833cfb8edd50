//! `oubli-model`: the host's own words for what connectors find and do.
//!
//! These types are the host's domain model, independent of any contract
//! version: the runtime converts each WIT version's generated types to and
//! from them (one conversion module per version), so the day the host serves
//! `@0.1` and `@0.2` connectors side by side, nothing above the runtime
//! changes. Their serde names are part of oubli's interface (the CLI's
//! `--json`, later the HTTP API): values of enums take the contract's own
//! spelling (`read-attachment`, `crm`, `not-found`), never Rust's; object
//! keys are snake_case (`created_at`), so that `jq .created_at` works.
//!
//! This crate owns values only: no I/O, no wasmtime, no policy.
//!
//! ```
//! use oubli_model::{Operation, SystemKind, Status};
//! assert_eq!(serde_json::to_string(&Operation::ReadAttachment).unwrap(), "\"read-attachment\"");
//! assert_eq!(serde_json::to_string(&SystemKind::Crm).unwrap(), "\"crm\"");
//! assert_eq!(serde_json::to_string(&Status::NotFound).unwrap(), "{\"state\":\"not-found\"}");
//! ```

#![warn(missing_docs)]

pub mod clock;
pub mod evidence;
pub mod request;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use request::{Channel, RequestKind, RequestState, Stage, SystemState, TaskOp, TaskState};

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the Unix epoch.
pub type Timestamp = i64;

/// A system-specific identifier of the subject (`crm.contact`, `1042`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExternalId {
    /// Whose id it is (`crm.contact`, `genesys.external-contact`).
    pub namespace: String,
    /// The id itself.
    pub id: String,
}

/// The person a request is about: every identifier the host normalised.
/// Personal data: never log it, never put it in an error message.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// Email addresses, domain in IDNA ASCII, local part as given.
    pub emails: Vec<String>,
    /// Phone numbers in E.164 (`+33612345678`).
    pub phones: Vec<String>,
    /// Full names: hints for systems that search by name.
    pub names: Vec<String>,
    /// System-specific ids.
    pub external_ids: Vec<ExternalId>,
}

impl fmt::Debug for Subject {
    /// Counts only: a subject's identifiers are personal data, and `Debug`
    /// output ends up in logs and panic messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Subject {{ {} emails, {} phones, {} names, {} external ids }}",
            self.emails.len(),
            self.phones.len(),
            self.names.len(),
            self.external_ids.len()
        )
    }
}

impl Subject {
    /// Whether it holds nothing a system could search with (names alone do
    /// not count: they are never enough to act on).
    pub fn is_unsearchable(&self) -> bool {
        self.emails.is_empty() && self.phones.is_empty() && self.external_ids.is_empty()
    }
}

/// One record in one system: its kind (`contact`, `conversation`) and the
/// system's id for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordRef {
    /// The connector's name for the kind of record.
    pub kind: String,
    /// The system's id.
    pub id: String,
}

/// The subject's part in a record a search found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The record is the person's own.
    Owner,
    /// The person is one party of a record shared with others.
    Participant,
    /// The person is only mentioned in someone else's record.
    Mentioned,
    /// The connector does not say (contract 0.1, which has no roles): its
    /// contract promised records that belong to the subject, so the policy
    /// treats them as the person's, and the plan says the role was not
    /// reported for the approver to check.
    #[default]
    Unreported,
}

/// A record a search found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Located {
    /// Which record.
    pub reference: RecordRef,
    /// The subject's part in it.
    #[serde(default)]
    pub role: Role,
    /// A short description from the connector (untrusted text).
    pub summary: String,
    /// When the system created it, if it says.
    pub created_at: Option<Timestamp>,
    /// Why the system must keep it, when it must (untrusted text).
    pub hold: Option<String>,
}

/// One field of an exported record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The connector's field name.
    pub name: String,
    /// The data category it belongs to (one of the manifest's).
    pub category: String,
    /// The value, as text.
    pub value: String,
}

/// A file attached to a record (a call recording, an email), read in chunks
/// with `read-attachment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Its name within the record.
    pub name: String,
    /// Its media type (`audio/wav`).
    pub media_type: String,
    /// Its size in bytes, when the system says.
    pub size: Option<u64>,
}

/// A record's personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exported {
    /// Which record.
    pub reference: RecordRef,
    /// Its fields.
    pub fields: Vec<Field>,
    /// Its attachments.
    pub attachments: Vec<Attachment>,
}

/// A correction of one field (`None` clears it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The field.
    pub field: String,
    /// Its new value.
    pub new_value: Option<String>,
}

/// How to erase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EraseMode {
    /// Remove the record.
    Delete,
    /// Keep the record, replace its personal data.
    Anonymise,
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "kebab-case")]
pub enum Status {
    /// Done, and checked by the connector.
    Done,
    /// Kept on purpose; the reason.
    Retained(String),
    /// The record does not exist (any more).
    NotFound,
    /// An asynchronous job was accepted; its ticket for `poll`.
    Pending(String),
}

/// The outcome for one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Which record.
    pub reference: RecordRef,
    /// What happened.
    pub status: Status,
}

/// A connector's own error: what its system answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ConnectorError {
    /// The system is down or unreachable; try later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The system asks to wait this many seconds.
    #[error("rate-limited: retry after {0}s")]
    RateLimited(u32),
    /// Credentials refused or missing.
    #[error("denied: {0}")]
    Denied(String),
    /// The system cannot do this through its API.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// The system's API cannot do this; an operator can, as the task says.
    #[error("manual task: {}", .0.summary)]
    Manual(ManualTask),
    /// The input was refused.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The connector failed.
    #[error("internal: {0}")]
    Internal(String),
}

impl ConnectorError {
    /// The contract's name of the variant (`rate-limited`).
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectorError::Unavailable(_) => "unavailable",
            ConnectorError::RateLimited(_) => "rate-limited",
            ConnectorError::Denied(_) => "denied",
            ConnectorError::NotSupported(_) => "not-supported",
            ConnectorError::Manual(_) => "manual",
            ConnectorError::Invalid(_) => "invalid",
            ConnectorError::Internal(_) => "internal",
        }
    }

    /// The same error with its message passed through `f` (a rate limit has
    /// none).
    pub fn map_message(self, f: impl Fn(String) -> String) -> ConnectorError {
        match self {
            ConnectorError::Unavailable(m) => ConnectorError::Unavailable(f(m)),
            ConnectorError::RateLimited(s) => ConnectorError::RateLimited(s),
            ConnectorError::Denied(m) => ConnectorError::Denied(f(m)),
            ConnectorError::NotSupported(m) => ConnectorError::NotSupported(f(m)),
            ConnectorError::Manual(t) => ConnectorError::Manual(ManualTask {
                summary: f(t.summary),
                steps: t.steps.into_iter().map(&f).collect(),
                records: t.records,
            }),
            ConnectorError::Invalid(m) => ConnectorError::Invalid(f(m)),
            ConnectorError::Internal(m) => ConnectorError::Internal(f(m)),
        }
    }
}

/// What an operator must do by hand because a system's API cannot
/// (contract 0.2's `manual-task`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualTask {
    /// Why (untrusted text).
    pub summary: String,
    /// What to do, one step each, in order (untrusted text; commands
    /// exactly as they must be run).
    pub steps: Vec<String>,
    /// The records the steps act on; the verifying search checks these.
    pub records: Vec<RecordRef>,
}

/// What kind of system a connector talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SystemKind {
    /// A contact-center platform (ACD).
    Acd,
    /// An outbound dialer.
    Dialer,
    /// Email.
    Email,
    /// Ticketing.
    Ticketing,
    /// A CRM.
    Crm,
    /// Call recording.
    Recording,
    /// Anything else.
    Other,
}

/// An operation of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// Find a subject's records.
    Locate,
    /// Read records' personal data.
    Export,
    /// Read an attachment in chunks.
    ReadAttachment,
    /// Correct fields.
    Rectify,
    /// Delete or anonymise.
    Erase,
    /// Restrict processing.
    Restrict,
    /// Follow an asynchronous job.
    Poll,
    /// Remove the subject from records shared with others (contract 0.2).
    Detach,
    /// Page through records past a retention cutoff (contract 0.2).
    Sweep,
}

/// Untrusted text (anything a connector says: manifest fields, summaries,
/// holds, errors) made safe to show to a person: every control character
/// (C0, DEL, C1, which covers terminal escape sequences, CR and LF) and every
/// Unicode bidirectional override is shown as a visible escape (`\u{1b}`), so
/// it can neither forge a line of output nor rewrite the screen; the text is
/// cut to `max` characters, with `…` where it was cut. JSON output needs none
/// of this: the serialiser escapes.
///
/// ```
/// use oubli_model::for_display;
/// assert_eq!(for_display("ok\n\u{1b}[2Jfake: done", 80), "ok\\u{a}\\u{1b}[2Jfake: done");
/// assert_eq!(for_display("abcdef", 3), "abc…");
/// ```
pub fn for_display(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 4));
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}');
        if c.is_control() || bidi {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// The contract's name of a value (`read-attachment`, `crm`): its serde
/// form, for human output that must match the JSON.
///
/// ```
/// assert_eq!(oubli_model::wire_name(&oubli_model::Operation::ReadAttachment), "read-attachment");
/// ```
pub fn wire_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A category of personal data a connector handles, with what GDPR asks the
/// controller to say about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataCategory {
    /// Its name, used in fields.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Why it is processed.
    pub purposes: Vec<String>,
    /// How long it is kept, or the criteria.
    pub retention: String,
    /// Who receives it.
    pub recipients: Vec<String>,
    /// Whether it falls under portability (Art. 20).
    pub portable: bool,
}

/// A configuration key a connector reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigKey {
    /// The key.
    pub name: String,
    /// What it means.
    pub description: String,
    /// Whether the connector cannot work without it.
    pub required: bool,
}

/// What a connector says about itself (untrusted text, all of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// A stable id (`genesys-cloud`).
    pub id: String,
    /// A display name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The contract version it was built against.
    pub wit_version: String,
    /// What it talks to.
    pub system_kind: SystemKind,
    /// The operations it offers.
    pub operations: Vec<Operation>,
    /// The data categories it handles.
    pub categories: Vec<DataCategory>,
    /// The outbound hosts it asks for (patterns).
    pub outbound_hosts: Vec<String>,
    /// The configuration keys it reads.
    pub config_keys: Vec<ConfigKey>,
    /// The secrets it asks for, by name.
    pub secrets: Vec<String>,
    /// The categories `sweep` pages through, and how (contract 0.2; none
    /// for 0.1).
    #[serde(default)]
    pub retention: Vec<RetentionFacts>,
}

/// What deleting a record of a category means in its system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "days")]
pub enum Deletion {
    /// Gone for good.
    Final,
    /// Restorable for this many days, final only then.
    Restorable(u32),
    /// The system cannot delete: `erase` anonymises.
    AnonymiseOnly,
}

/// How records of one category can be found by age (`sweep`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionFacts {
    /// The category (one of the manifest's).
    pub category: String,
    /// The record kind `sweep` answers for it.
    pub kind: String,
    /// The dates a period can run from; the first is the default.
    pub triggers: Vec<String>,
    /// What deleting means.
    pub deletion: Deletion,
    /// Whether the system reports holds of its own.
    pub native_holds: bool,
}

/// Where a page of `sweep` starts: strictly after this (trigger date, id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SweepKey {
    /// The last record's trigger date.
    pub at: Timestamp,
    /// The last record's id.
    pub id: String,
}

/// One page's question to `sweep`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepQuery {
    /// The category.
    pub category: String,
    /// The trigger date's name.
    pub trigger: String,
    /// Only records dated strictly before this.
    pub cutoff: Timestamp,
    /// Where the page starts.
    pub after: Option<SweepKey>,
    /// At most this many records.
    pub limit: u32,
}

/// A record `sweep` found past the cutoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dated {
    /// Which record.
    pub reference: RecordRef,
    /// Its trigger date.
    pub at: Timestamp,
    /// A short description (untrusted text).
    pub summary: String,
    /// The system's own hold on it (untrusted text).
    pub hold: Option<String>,
}

impl Manifest {
    /// Whether it offers an operation.
    pub fn offers(&self, op: Operation) -> bool {
        self.operations.contains(&op)
    }
}

/// What a component is, read without configuring it (`connector inspect`).
#[derive(Debug, Clone, Serialize)]
pub struct ComponentInfo {
    /// The component file.
    pub path: std::path::PathBuf,
    /// SHA-256 of the component, hex.
    pub sha256: String,
    /// What the connector says about itself.
    pub manifest: Manifest,
    /// The component's imports.
    pub imports: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_subject_shows_counts_not_identifiers() {
        let s = Subject {
            emails: vec!["ada@example.com".into()],
            phones: vec!["+33612345678".into()],
            ..Default::default()
        };
        let d = format!("{s:?}");
        assert!(!d.contains("ada") && !d.contains("612"), "{d}");
        assert!(d.contains("1 emails"), "{d}");
    }

    #[test]
    fn untrusted_text_cannot_forge_lines_or_escape() {
        let forged =
            "1 record\r\nsupport-mail  nothing found\u{1b}]0;title\u{7}\u{9b}31m\u{202e}gnp.exe";
        let shown = for_display(forged, 200);
        assert!(shown.chars().all(|c| !c.is_control()), "{shown}");
        assert!(!shown.contains('\u{202e}'));
        assert!(
            shown.contains("\\u{d}\\u{a}") && shown.contains("\\u{1b}"),
            "{shown}"
        );
        assert_eq!(for_display("é".repeat(10).as_str(), 4), "éééé…");
        assert_eq!(for_display("plain text", 100), "plain text");
    }

    #[test]
    fn wire_names_are_the_contracts() {
        let ops: Vec<String> = [
            Operation::Locate,
            Operation::Export,
            Operation::ReadAttachment,
            Operation::Rectify,
            Operation::Erase,
            Operation::Restrict,
            Operation::Poll,
        ]
        .iter()
        .map(wire_name)
        .collect();
        assert_eq!(
            ops,
            [
                "locate",
                "export",
                "read-attachment",
                "rectify",
                "erase",
                "restrict",
                "poll"
            ]
        );
        assert_eq!(wire_name(&EraseMode::Anonymise), "anonymise");
        assert_eq!(
            serde_json::to_value(Status::Retained("kept".into())).unwrap(),
            serde_json::json!({"state": "retained", "detail": "kept"})
        );
        assert_eq!(
            serde_json::to_value(ConnectorError::RateLimited(3)).unwrap(),
            serde_json::json!({"kind": "rate-limited", "detail": 3})
        );
        let l = Located {
            reference: RecordRef {
                kind: "contact".into(),
                id: "1".into(),
            },
            role: Role::Participant,
            summary: "s".into(),
            created_at: Some(1),
            hold: None,
        };
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(v["created_at"], 1);
        assert_eq!(v["role"], "participant");
        // A located record stored before roles existed reads as unreported.
        let old: Located = serde_json::from_value(serde_json::json!({
            "reference": {"kind": "contact", "id": "1"},
            "summary": "s", "created_at": null, "hold": null,
        }))
        .unwrap();
        assert_eq!(old.role, Role::Unreported);
    }
}
