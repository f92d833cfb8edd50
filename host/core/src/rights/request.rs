//! The vocabulary of requests shared by the operator's side
//! ([`super::engine`]), the steps and the workers: what a request carries
//! ([`Params`]), what a plan and a result hold, the error type, and how
//! personal data is addressed when sealed ([`ctx`]).

use super::policy::Policy;
use crate::identifiers::{IdentifierError, Identifiers, Region};
use oubli_crypto::blind::BlindIndex;
use oubli_model::RequestKind;
use oubli_model::TaskOp;
use oubli_model::{Exported, ManualTask, Outcome, RecordRef, Role, Subject};
use oubli_store::StoreError;
use oubli_store::keys::Vault;
use oubli_store::requests::{Event, RequestRow};
use serde::{Deserialize, Serialize};

/// A request error: one line, never personal data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The identifiers are not usable.
    #[error(transparent)]
    Identifiers(#[from] IdentifierError),
    /// The store failed, or refused a write that raced with another.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The input is not usable (a malformed id, a missing value, a
    /// certificate that does not verify).
    #[error("{0}")]
    Invalid(String),
    /// The request's state does not allow it now.
    #[error("{0}")]
    Conflict(String),
    /// Policy forbids this caller doing it (four eyes).
    #[error("{0}")]
    Forbidden(String),
    /// The configuration has no such system.
    #[error("no system {0:?} in the configuration")]
    UnknownSystem(String),
    /// Something outside oubli's data failed (a file could not be written).
    #[error("{0}")]
    Unavailable(String),
    /// A value oubli made itself could not be encoded: a bug.
    #[error("{0}")]
    Internal(String),
    /// No keyring where the configuration says.
    #[error("no keyring in {dir}")]
    NoKeyring {
        /// The directory looked in.
        dir: String,
    },
    /// The keyring could not be opened.
    #[error("keyring {dir}: {source}")]
    Keyring {
        /// Its directory.
        dir: String,
        /// Why.
        source: oubli_crypto::CryptoError,
    },
    /// An idempotency key was used again with another request body.
    #[error("this idempotency key was already used to file a different request")]
    KeyReused,
    /// The runtime could not start.
    #[error(transparent)]
    Runtime(#[from] oubli_runtime::LoadError),
}

/// What kind of failure an error is: each face maps it once (the API to
/// an HTTP status, the CLI to an exit status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input: fix it and try again.
    Invalid,
    /// The state of a request (or a row that changed meanwhile) does not
    /// allow it now.
    Conflict,
    /// Policy forbids it to this caller.
    Forbidden,
    /// No such request, system or row.
    NotFound,
    /// The store, the keyring or the runtime is unavailable: try later.
    Unavailable,
    /// A bug or damaged data.
    Internal,
}

impl RequestError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RequestError::Identifiers(_) | RequestError::Invalid(_) | RequestError::KeyReused => {
                ErrorKind::Invalid
            }
            RequestError::Conflict(_) => ErrorKind::Conflict,
            RequestError::Forbidden(_) => ErrorKind::Forbidden,
            RequestError::UnknownSystem(_) | RequestError::NoKeyring { .. } => ErrorKind::NotFound,
            RequestError::Unavailable(_)
            | RequestError::Keyring { .. }
            | RequestError::Runtime(_) => ErrorKind::Unavailable,
            RequestError::Internal(_) => ErrorKind::Internal,
            RequestError::Store(e) => match e {
                StoreError::NotFound { .. } => ErrorKind::NotFound,
                StoreError::Conflict(_) => ErrorKind::Conflict,
                StoreError::ReadOnly => ErrorKind::Forbidden,
                StoreError::Open(_) | StoreError::Db(_) | StoreError::TooNew { .. } => {
                    ErrorKind::Unavailable
                }
                _ => ErrorKind::Internal,
            },
        }
    }

    /// What was not found (`request`, `system`), for a message that names
    /// the kind of thing and never the value asked for.
    pub fn missing(&self) -> Option<&'static str> {
        match self {
            RequestError::Store(StoreError::NotFound { what, .. }) => Some(what),
            RequestError::UnknownSystem(_) => Some("system"),
            RequestError::NoKeyring { .. } => Some("keyring"),
            _ => None,
        }
    }
}

impl From<oubli_crypto::CryptoError> for RequestError {
    fn from(e: oubli_crypto::CryptoError) -> Self {
        RequestError::Store(StoreError::Crypto(e))
    }
}

/// What a new request carries besides its subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Rectification: the corrections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Correction>,
    /// Restriction, objection, consent withdrawal: what is restricted
    /// (`all`, a data category, a purpose such as `direct-marketing`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
    /// Lift: the restriction, objection or withdrawal lifted (its request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifts: Option<String>,
}

/// One correction: a field to a new value, in one system or every system
/// that has the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    /// The system, or every system.
    pub system: Option<String>,
    /// The connector's field name.
    pub field: String,
    /// The new value (`None` clears it).
    pub new_value: Option<String>,
}

/// How an operator checked the subject's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// How (`id-document`, `call-back`, `email-link`).
    pub method: String,
    /// The evidence (a note; sealed, it may name the person).
    pub evidence: String,
}

/// A request to file.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// Its id, when the caller derives one (a bulk file's row, an API
    /// idempotency key): filing the same id twice is refused as a
    /// conflict, never a second request. Default: a random `r-…` id.
    pub id: Option<String>,
    /// What is asked.
    pub kind: RequestKind,
    /// The subject's identifiers, as given.
    pub identifiers: Identifiers,
    /// The region national phone numbers are read in, if not the default.
    pub region: Option<Region>,
    /// Who files it.
    pub actor: String,
    /// Kind-specific parameters.
    pub params: Params,
    /// The identity check, when already done.
    pub attestation: Option<Attestation>,
    /// How and when it reached the controller, when recorded (a contact
    /// center's intake): the deadline runs from when it was received.
    pub intake: Option<Intake>,
}

/// How a request reached the controller: the channel, and when it was
/// actually received there (the deadline runs from then, Art. 12(3)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intake {
    /// The channel (a call, a letter, …).
    pub channel: oubli_model::Channel,
    /// When it was received (ms since the epoch); `None`: now.
    pub received_at: Option<i64>,
    /// Whether it waits for an operator's attestation whatever the policy
    /// says (an identifier nobody proved yet).
    pub needs_attestation: bool,
}

/// What one system's plan holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemPlan {
    /// Per record found: what will be done.
    pub items: Vec<PlanItem>,
    /// Things the approver must look at (an identifier matching several
    /// people).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Why this system could not be searched (the task searches again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One record of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanItem {
    /// The record.
    pub reference: RecordRef,
    /// The subject's part in it, as the connector said (`unreported` for
    /// a contract 0.1 connector): why it is in the plan.
    #[serde(default)]
    pub role: Role,
    /// The connector's description (untrusted text).
    pub summary: String,
    /// What will be done to it.
    pub action: Action,
}

/// What is done to a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", content = "reason", rename_all = "kebab-case")]
pub enum Action {
    /// Deleted.
    Delete,
    /// Anonymised.
    Anonymise,
    /// Kept, for this reason (the connector's hold, a legal hold, a record
    /// shared with other people, or an approver's exclusion).
    Retain(String),
    /// The person taken off a record shared with others (the record stays
    /// theirs).
    Detach,
    /// Read (access, portability).
    Export,
    /// Corrected.
    Rectify,
    /// Restricted (through the system's `restrict`, by subject).
    Restrict,
}

impl Action {
    /// Its name (`delete`, `retain`).
    pub fn label(&self) -> &'static str {
        match self {
            Action::Delete => "delete",
            Action::Anonymise => "anonymise",
            Action::Retain(_) => "retain",
            Action::Detach => "detach",
            Action::Export => "export",
            Action::Rectify => "rectify",
            Action::Restrict => "restrict",
        }
    }
}

/// What one system's task found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemResult {
    /// Per record: what the connector reported (and verified).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<Outcome>,
    /// Records still found by the verifying search although erased.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub still_found: Vec<RecordRef>,
    /// Corrections the verifying export does not show.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<String>,
    /// The records read (access, portability).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exported: Vec<Exported>,
    /// Tickets of the system's asynchronous jobs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tickets: Vec<String>,
    /// For a manual task: what to do in the system, whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// For a manual task given as steps (contract 0.2): the steps, and the
    /// records they act on, which the verifying search checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<ManualTask>,
    /// When the result was verified, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<String>,
    /// The plan made when the task ran, for a system that could not be
    /// searched when the request was planned: it replaces the stored plan
    /// for every later stage (poll, verify) and in what is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<SystemPlan>,
}

/// Counts per system (plaintext in the store: no personal data).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Counts {
    /// Records found.
    pub found: u32,
    /// Records erased (deleted or anonymised), corrected, read or
    /// restricted, as verified.
    pub done: u32,
    /// Records kept on purpose.
    pub retained: u32,
    /// Records that did not exist any more.
    pub not_found: u32,
    /// Records still there when they should not be.
    pub failed: u32,
}

/// The blind indexes of a subject's identifiers (emails compared without
/// case).
pub(crate) fn subject_blind(vault: &Vault, subject: &Subject) -> Vec<BlindIndex> {
    let mut out: Vec<BlindIndex> = subject
        .emails
        .iter()
        .map(|e| vault.index("email", &e.to_lowercase()))
        .chain(subject.phones.iter().map(|p| vault.index("phone", p)))
        .chain(
            subject
                .external_ids
                .iter()
                .map(|x| vault.index(&format!("external:{}", x.namespace), &x.id)),
        )
        .collect();
    out.sort();
    out.dedup();
    out
}

/// [`subject_blind`] in hex, as stored.
pub(crate) fn subject_indexes(vault: &Vault, subject: &Subject) -> Vec<String> {
    subject_blind(vault, subject)
        .iter()
        .map(BlindIndex::to_hex)
        .collect()
}

pub(crate) fn event<'a>(
    request_id: &'a str,
    actor: &'a str,
    action: &'a str,
    reason_sealed: Option<&'a [u8]>,
) -> Event<'a> {
    Event {
        request_id,
        actor,
        action,
        from: None,
        to: None,
        system: None,
        reason_sealed,
    }
}

pub(crate) fn snapshot(row: &RequestRow) -> Result<Policy, RequestError> {
    serde_json::from_str(&row.policy).map_err(|_| StoreError::Corrupt("policy snapshot").into())
}

/// The scopes a request sets in the restriction registry, if it is one
/// that does.
pub(crate) fn restriction_scopes(kind: RequestKind, params: &Params) -> Option<Vec<String>> {
    match kind {
        RequestKind::Restriction | RequestKind::Objection | RequestKind::ConsentWithdrawal => {
            Some(if params.scope.is_empty() {
                vec!["all".to_string()]
            } else {
                params.scope.clone()
            })
        }
        _ => None,
    }
}

/// The operation a request's systems carry out.
pub(crate) fn operation_of(kind: RequestKind) -> TaskOp {
    match kind {
        RequestKind::Access | RequestKind::Portability => TaskOp::Export,
        RequestKind::Rectification => TaskOp::Rectify,
        RequestKind::Erasure => TaskOp::Erase,
        RequestKind::Restriction
        | RequestKind::Objection
        | RequestKind::ConsentWithdrawal
        | RequestKind::Lift => TaskOp::Restrict,
    }
}
