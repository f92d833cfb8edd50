//! Contract version 0.1 (`oubli:connector@0.1.x`, `wit/v0.1/`): the
//! generated bindings and their conversion to and from the host's model
//! ([`oubli_model`]). Nothing outside this module, [`crate::versions`] and [`crate::contract`]
//! sees a generated type.
//!
//! What 0.1 lacks, the conversion decides: its records carry no role
//! ([`model::Role::Unreported`]: the contract promised records that belong
//! to the subject, and the plan says the role was not reported), it has no
//! `detach` and no structured manual task (a `not-supported` message is the
//! operator's instructions).

use oubli_model as model;

/// The contract version this module serves (semver-compatible patches too).
pub const VERSION: &str = "0.1.0";

crate::versions::contract_version!("../../wit/v0.1");

/// 0.1 has no `sweep`: no category can be swept.
fn retention_of(_: &wit::PluginManifest) -> Vec<model::RetentionFacts> {
    Vec::new()
}

fn operation(o: wit::Operation) -> model::Operation {
    match o {
        wit::Operation::Locate => model::Operation::Locate,
        wit::Operation::Export => model::Operation::Export,
        wit::Operation::ReadAttachment => model::Operation::ReadAttachment,
        wit::Operation::Rectify => model::Operation::Rectify,
        wit::Operation::Erase => model::Operation::Erase,
        wit::Operation::Restrict => model::Operation::Restrict,
        wit::Operation::Poll => model::Operation::Poll,
    }
}

impl From<wit::Located> for model::Located {
    fn from(l: wit::Located) -> Self {
        model::Located {
            reference: l.reference.into(),
            role: model::Role::Unreported,
            summary: l.summary,
            created_at: l.created_at,
            hold: l.hold,
        }
    }
}

impl From<wit::ConnectorError> for model::ConnectorError {
    fn from(e: wit::ConnectorError) -> Self {
        match e {
            wit::ConnectorError::Unavailable(m) => model::ConnectorError::Unavailable(m),
            wit::ConnectorError::RateLimited(s) => model::ConnectorError::RateLimited(s),
            wit::ConnectorError::Denied(m) => model::ConnectorError::Denied(m),
            wit::ConnectorError::NotSupported(m) => model::ConnectorError::NotSupported(m),
            wit::ConnectorError::Invalid(m) => model::ConnectorError::Invalid(m),
            wit::ConnectorError::Internal(m) => model::ConnectorError::Internal(m),
        }
    }
}
