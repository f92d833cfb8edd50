//! Requests as shown to operators (`request show`, `requests`, `--json`):
//! no identifiers, only blind-index prefixes; connector text stays
//! untrusted (renderers neutralise it).

use super::request::{Counts, SystemPlan, SystemResult};
use oubli_model::{RequestKind, RequestState, SystemState};
use oubli_model::{Stage, TaskOp, TaskState};
use serde::Serialize;

/// A request as shown to an operator (no identifiers).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    /// Its id.
    pub id: String,
    /// What was asked.
    pub kind: RequestKind,
    /// Where it stands.
    pub state: RequestState,
    /// Who filed it.
    pub requested_by: String,
    /// Who approved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Who attested the identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attested_by: Option<String>,
    /// When it was received (ms since the epoch): the deadline runs from
    /// it.
    pub received_at: i64,
    /// How it reached the controller, when an intake recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<oubli_model::Channel>,
    /// When it is due.
    pub due_at: i64,
    /// Months the deadline was extended by.
    pub extended_months: i64,
    /// Whether it is past due and not over.
    pub overdue: bool,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finalized_at: Option<i64>,
    /// The subject, as blind-index prefixes (for correlating with logs).
    pub subject: Vec<String>,
}

/// One system of a request, as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SystemView {
    /// The system.
    pub system: String,
    /// Where it stands.
    pub state: SystemState,
    /// Its connector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// Its plan (withheld from auditors: it holds connectors' summaries).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub plan: Option<SystemPlan>,
    /// Its result (withheld from auditors).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<SystemResult>,
    /// Counts.
    pub counts: Counts,
    /// The last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorView>,
    /// Its task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskView>,
    /// Why the system is paused, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<String>,
}

/// An error as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorView {
    /// Its kind (`unavailable`, `timeout`, `lease-expired`).
    pub kind: String,
    /// What happened (masked, untrusted text).
    pub message: String,
}

/// A task as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    /// Its operation.
    pub operation: TaskOp,
    /// Its stage.
    pub stage: Stage,
    /// Its state.
    pub state: TaskState,
    /// Attempts in this stage.
    pub attempt: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
    /// Polls made.
    pub polls: i64,
    /// When it runs next.
    pub scheduled_at: i64,
}

/// An event as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventView {
    /// When.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// From state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// To state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A request in full: itself, its systems, its events.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestDetail {
    /// The request.
    #[serde(flatten)]
    pub request: RequestView,
    /// The host's own task while it is not done (planning; then, for an
    /// access or portability request, assembling its answer): where it
    /// stands and its last error (one that needs attention shows here, and
    /// `request retry ID` runs it again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planning: Option<PlanningView>,
    /// Its systems.
    pub systems: Vec<SystemView>,
    /// Its history.
    pub events: Vec<EventView>,
    /// The answer kept for an access or portability request, once
    /// assembled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<AnswerView>,
}

/// A request's kept answer, as shown (no content: `bundle fetch` hands it
/// out).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AnswerView {
    /// SHA-256 of the ZIP, hex (also in the audit chain).
    pub sha256: String,
    /// Its length in bytes.
    pub bytes: i64,
    /// When it was kept (ms since the epoch).
    pub kept_at: i64,
    /// When it was removed at the end of its keeping period, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<i64>,
}

/// The planning task of a request, as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanningView {
    /// The task.
    pub task: TaskView,
    /// Its last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorView>,
}
