//! Contract version 0.2 (`oubli:connector@0.2.x`, `wit/`): the generated
//! bindings and their conversion to and from the host's model
//! ([`oubli_model`]). Nothing outside this module, [`crate::versions`] and [`crate::contract`]
//! sees a generated type.

use oubli_model as model;

/// The contract version this module serves (semver-compatible patches too).
pub const VERSION: &str = "0.2.0";

crate::versions::contract_version!(
    "../../wit",
    fn cache_get(&mut self, key: String) -> Option<Vec<u8>> {
        self.memo.get(&key)
    },
    fn cache_set(&mut self, key: String, value: Vec<u8>, ttl_seconds: u32) {
        self.memo.set(key, value, ttl_seconds);
    }
);

fn operation(o: wit::Operation) -> model::Operation {
    match o {
        wit::Operation::Locate => model::Operation::Locate,
        wit::Operation::Export => model::Operation::Export,
        wit::Operation::ReadAttachment => model::Operation::ReadAttachment,
        wit::Operation::Rectify => model::Operation::Rectify,
        wit::Operation::Erase => model::Operation::Erase,
        wit::Operation::Restrict => model::Operation::Restrict,
        wit::Operation::Poll => model::Operation::Poll,
        wit::Operation::Detach => model::Operation::Detach,
        wit::Operation::Sweep => model::Operation::Sweep,
    }
}

fn retention_of(m: &wit::PluginManifest) -> Vec<model::RetentionFacts> {
    m.retention
        .iter()
        .map(|r| model::RetentionFacts {
            category: r.category.clone(),
            kind: r.kind.clone(),
            triggers: r.triggers.clone(),
            deletion: match r.deletion {
                wit::Deletion::Final => model::Deletion::Final,
                wit::Deletion::Restorable(days) => model::Deletion::Restorable(days),
                wit::Deletion::AnonymiseOnly => model::Deletion::AnonymiseOnly,
            },
            native_holds: r.native_holds,
        })
        .collect()
}

impl From<&model::SweepQuery> for wit::SweepQuery {
    fn from(q: &model::SweepQuery) -> Self {
        wit::SweepQuery {
            category: q.category.clone(),
            trigger: q.trigger.clone(),
            cutoff: q.cutoff,
            after: q.after.as_ref().map(|k| wit::SweepKey {
                at: k.at,
                id: k.id.clone(),
            }),
            limit: q.limit,
        }
    }
}

impl From<wit::Dated> for model::Dated {
    fn from(d: wit::Dated) -> Self {
        model::Dated {
            reference: d.reference.into(),
            at: d.at,
            summary: d.summary,
            hold: d.hold,
        }
    }
}

impl From<wit::Located> for model::Located {
    fn from(l: wit::Located) -> Self {
        model::Located {
            reference: l.reference.into(),
            role: match l.role {
                wit::Role::Owner => model::Role::Owner,
                wit::Role::Participant => model::Role::Participant,
                wit::Role::Mentioned => model::Role::Mentioned,
            },
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
            wit::ConnectorError::Manual(t) => model::ConnectorError::Manual(model::ManualTask {
                summary: t.summary,
                steps: t.steps,
                records: t.records.into_iter().map(Into::into).collect(),
            }),
            wit::ConnectorError::Invalid(m) => model::ConnectorError::Invalid(m),
            wit::ConnectorError::Internal(m) => model::ConnectorError::Internal(m),
        }
    }
}
