//! What one attempt of a task came to: the steps return it, the worker
//! writes it under the lease, and the Art. 19 notices return it too.

use super::request::{Counts, SystemResult};
use oubli_model::{ConnectorError, RequestState, Stage, SystemState};
use oubli_runtime::CallError;
use oubli_store::requests::SystemRow;

/// What one attempt of a task came to.
pub(crate) enum Progress {
    /// The system's part is over.
    Finished {
        state: SystemState,
        result: SystemResult,
        counts: Counts,
    },
    /// Waiting for an asynchronous job.
    Poll { result: SystemResult, polls: i64 },
    /// Acted; verify after the system's search settles.
    Settle { result: SystemResult, delay_ms: u64 },
    /// An operator must act in the system.
    Manual { result: SystemResult },
    /// A failure; retried later if transient and within budget.
    Failed {
        stage: Stage,
        result: Option<SystemResult>,
        kind: String,
        message: String,
        transient: bool,
        retry_after_ms: Option<i64>,
    },
    /// The plan task: systems planned, next state.
    Planned {
        systems: Vec<SystemRow>,
        next: RequestState,
    },
    /// The request is over (cancelled meanwhile): drop the task.
    Gone,
    /// The answer was assembled and stored under `attempt`.
    Answered {
        attempt: String,
        report: super::bundle::BundleReport,
        chunks: i64,
    },
}

impl Progress {
    /// A verified end: done when nothing was left over, partial otherwise.
    pub(crate) fn verified(clean: bool, result: SystemResult, counts: Counts) -> Progress {
        Progress::Finished {
            state: if clean {
                SystemState::Done
            } else {
                SystemState::Partial
            },
            result,
            counts,
        }
    }

    pub(crate) fn failed(stage: Stage, result: Option<SystemResult>, e: &CallError) -> Progress {
        let retry_after_ms = match e {
            CallError::Connector(ConnectorError::RateLimited(s)) => {
                Some(i64::from(*s).max(1) * 1000)
            }
            _ => None,
        };
        Progress::Failed {
            stage,
            result,
            kind: e.kind().to_string(),
            message: e.to_string(),
            transient: e.is_transient() || matches!(e, CallError::Trap(_)),
            retry_after_ms,
        }
    }

    pub(crate) fn permanent(
        stage: Stage,
        result: Option<SystemResult>,
        kind: &str,
        message: String,
    ) -> Self {
        Progress::Failed {
            stage,
            result,
            kind: kind.to_string(),
            message,
            transient: false,
            retry_after_ms: None,
        }
    }
}
