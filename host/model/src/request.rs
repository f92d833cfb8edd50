//! The words of a request's life: what was asked, where it stands, what its
//! tasks do. Stored as their wire spelling (`consent-withdrawal`,
//! `needs-attention`) and shown the same way in every face.

use std::fmt;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant,)*
        }
        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            /// Its stored (and wire) spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
            /// Read the stored spelling.
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)* _ => None }
            }
        }
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text,)*]))
                    .into()
            }
        }
        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// What a data subject asked for.
    RequestKind {
        /// Art. 15: see their data.
        Access = "access",
        /// Art. 20: their data in a machine-readable form.
        Portability = "portability",
        /// Art. 16: correct their data.
        Rectification = "rectification",
        /// Art. 17: erase their data.
        Erasure = "erasure",
        /// Art. 18: restrict processing.
        Restriction = "restriction",
        /// Art. 21/22: object to a purpose (direct marketing, profiling).
        Objection = "objection",
        /// Art. 7(3): withdraw consent.
        ConsentWithdrawal = "consent-withdrawal",
        /// Art. 18(3): lift a restriction, objection or consent withdrawal
        /// (the subject told first), in the registry and every system.
        Lift = "lift",
    }
}

string_enum! {
    /// How a request reached the controller (the contact center's intake):
    /// the deadline runs from when it was received there.
    Channel {
        /// A phone call taken by an agent.
        Call = "call",
        /// The interactive voice response system.
        Ivr = "ivr",
        /// An email to the controller.
        Email = "email",
        /// A letter.
        Letter = "letter",
        /// A web form (the privacy center).
        Web = "web",
    }
}

string_enum! {
    /// Where a request stands.
    RequestState {
        /// Filed; identity not yet attested (when policy asks for it).
        Received = "received",
        /// Identity attested (or not required); waiting to be planned.
        Verified = "verified",
        /// Locating in every system, building the plan.
        Planning = "planning",
        /// Planned; waiting for approval.
        AwaitingApproval = "awaiting-approval",
        /// Approved (or needing none); tasks queued.
        Executing = "executing",
        /// Every system did what it could and checked it.
        Completed = "completed",
        /// Some systems did not: see each system's state.
        PartiallyCompleted = "partially-completed",
        /// Nothing could be done.
        Failed = "failed",
        /// Refused by an approver.
        Rejected = "rejected",
        /// Withdrawn by an operator.
        Cancelled = "cancelled",
    }
}

impl RequestState {
    /// Whether the request is over.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RequestState::Completed
                | RequestState::PartiallyCompleted
                | RequestState::Failed
                | RequestState::Rejected
                | RequestState::Cancelled
        )
    }
}

string_enum! {
    /// Where one system stands within a request.
    SystemState {
        /// Located; its plan is stored.
        Planned = "planned",
        /// The search failed; the plan lists it with the error.
        LocateFailed = "locate-failed",
        /// Nothing of the subject there (nothing to do).
        Nothing = "nothing",
        /// Its task runs.
        Running = "running",
        /// Waits for an operator (a manual task, or a task past its budget).
        NeedsAttention = "needs-attention",
        /// Done and verified.
        Done = "done",
        /// Done, but verification found records still there, or some
        /// records failed.
        Partial = "partial",
        /// Failed for good.
        Failed = "failed",
        /// Skipped by an operator, with a reason.
        Skipped = "skipped",
        /// The request was cancelled.
        Cancelled = "cancelled",
        /// The system is disabled or its connector was refused.
        Unavailable = "unavailable",
    }
}

string_enum! {
    /// What a task does.
    TaskOp {
        /// Locate everywhere and build the plan (one per request).
        Plan = "plan",
        /// Read the records (access, portability).
        Export = "export",
        /// Correct fields (rectification).
        Rectify = "rectify",
        /// Delete or anonymise (erasure).
        Erase = "erase",
        /// Restrict processing (restriction, objection, consent withdrawal).
        Restrict = "restrict",
        /// Tell a recipient of the data what was done (Art. 19).
        Notify = "notify",
        /// Assemble and keep the answer of an access or portability
        /// request (one per request, its last task).
        Answer = "answer",
    }
}

string_enum! {
    /// How far a task got.
    Stage {
        /// The operation itself.
        Act = "act",
        /// Following an asynchronous job with `poll`.
        Poll = "poll",
        /// Checking the result (re-locate, re-export).
        Verify = "verify",
    }
}

string_enum! {
    /// Where a task stands.
    TaskState {
        /// Waiting for its `scheduled_at`.
        Available = "available",
        /// Claimed by a worker under a lease.
        Running = "running",
        /// Waiting for an operator to carry it out in the system by hand.
        Manual = "manual",
        /// Past its budget, or a permanent error: waits for an operator.
        NeedsAttention = "needs-attention",
        /// Finished.
        Done = "done",
        /// Skipped by an operator.
        Skipped = "skipped",
        /// Its request was cancelled.
        Cancelled = "cancelled",
    }
}

impl TaskState {
    /// Whether the task is over.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Done | TaskState::Skipped | TaskState::Cancelled
        )
    }
}

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only in this state.
    pub state: Option<RequestState>,
    /// Only those not final and due before this time.
    pub due_before: Option<crate::Timestamp>,
    /// Only these ids (a subject's requests).
    pub ids: Option<Vec<String>>,
    /// Only requests with a task waiting for an operator (past its
    /// budget, a permanent error, or a manual task), planning included.
    pub needs_attention: bool,
    /// Only ids after this one (the cursor of the previous page).
    pub after: Option<String>,
    /// At most this many.
    pub limit: i64,
    /// Only requests of this kind.
    pub kind: Option<RequestKind>,
    /// Only requests that involve this system.
    pub system: Option<String>,
    /// Only requests not over (not completed, failed, rejected or
    /// cancelled).
    pub open: bool,
    /// Page by deadline (earliest first, then id) instead of by id: the
    /// cursor is then the last request's deadline (`after_due`) and id
    /// (`after`).
    pub by_due: bool,
    /// With `by_due`: the deadline of the last request of the page before.
    pub after_due: Option<crate::Timestamp>,
}
