//! Consent evidence (Art. 7(1)): the controller must be able to show that
//! the person consented, to what, when, how, and on what they were told.
//! Each entry records the subject (blind indexes, identifiers sealed), the
//! purpose, the lawful basis, the channel (call, IVR, email, web), the
//! evidence (recording and offset, the notice's version and SHA-256, the
//! agent) and the source system. Entries are append-only and hash-chained
//! in their own chain, and each is also an event of the audit chain.
//!
//! A withdrawal also files a consent-withdrawal request for the purpose,
//! which restricts the subject in the host's registry at once and is
//! pushed to the systems with `restrict` (the dialer's do-not-call list,
//! the CRM's opt-out property), verified like any request.

use super::engine::Engine;
use super::request::{NewRequest, Params, RequestError, event, subject_indexes};
use crate::identifiers::{Identifiers, Region};
use oubli_model::RequestKind;
use oubli_model::Subject;
use oubli_store::consent::{self, ConsentRow};
use oubli_store::keys::Sealed as Seal;
use serde::{Deserialize, Serialize};

/// The channels consent is captured through.
pub const CHANNELS: [&str; 4] = ["call", "ivr", "email", "web"];

/// What proves a consent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// The recording it was given in (a call, an IVR session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<String>,
    /// Where in the recording, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Every u32, which `int32` (at most 2^31 - 1) would not say.
    #[schema(format = Int64, minimum = 0, maximum = 4294967295_u64)]
    pub offset_seconds: Option<u32>,
    /// The notice's version the person was given (`oubli notice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_version: Option<String>,
    /// The notice's SHA-256, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_sha256: Option<String>,
    /// The agent who took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Anything else (a form id, an email's message id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A consent given or withdrawn.
#[derive(Debug, Clone)]
pub struct NewConsent {
    /// Who.
    pub identifiers: Identifiers,
    /// Region for national phone numbers.
    pub region: Option<Region>,
    /// For what (`marketing-calls`).
    pub purpose: String,
    /// Given (true) or withdrawn.
    pub given: bool,
    /// The lawful basis (`consent`; Art. 6(1)(a) or 9(2)(a)).
    pub lawful_basis: String,
    /// `call`, `ivr`, `email`, `web`.
    pub channel: String,
    /// The system it was captured in.
    pub source_system: Option<String>,
    /// The proof.
    pub evidence: Evidence,
    /// Who records it.
    pub actor: String,
}

/// What is sealed in an entry: the subject and the proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sealed {
    subject: Subject,
    evidence: Evidence,
}

/// One entry, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConsentEntry {
    /// Its id.
    pub id: i64,
    /// For what.
    pub purpose: String,
    /// `given` or `withdrawn`.
    pub action: String,
    /// The lawful basis.
    pub lawful_basis: String,
    /// The channel.
    pub channel: String,
    /// The system it was captured in.
    pub source_system: Option<String>,
    /// The proof.
    pub evidence: Evidence,
    /// When (ms since the epoch).
    pub at: i64,
    /// Who recorded it.
    pub recorded_by: String,
    /// The withdrawal request it filed.
    pub request_id: Option<String>,
}

/// Where a purpose stands now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConsentStatus {
    /// The purpose.
    pub purpose: String,
    /// Whether consent is given now.
    pub given: bool,
    /// Since when (ms since the epoch).
    pub since: i64,
    /// The entry that says so.
    pub entry: i64,
}

/// A subject's consents: where each purpose stands, and everything recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConsentView {
    /// Per purpose, the latest entry.
    pub status: Vec<ConsentStatus>,
    /// Every entry, oldest first.
    pub history: Vec<ConsentEntry>,
}

fn text(what: &str, s: &str, max: usize) -> Result<(), RequestError> {
    if s.trim().is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(RequestError::Invalid(format!(
            "{what} is 1 to {max} characters, no control characters"
        )));
    }
    Ok(())
}

impl Engine {
    /// Record a consent given or withdrawn; a withdrawal also files a
    /// consent-withdrawal request for the purpose (its id is in the entry).
    pub async fn record_consent(&self, new: NewConsent) -> Result<ConsentEntry, RequestError> {
        super::engine::valid_actor(&new.actor)?;
        text("the purpose", &new.purpose, 100)?;
        text("the lawful basis", &new.lawful_basis, 100)?;
        if let Some(s) = &new.source_system {
            text("the source system", s, 100)?;
        }
        if !CHANNELS.contains(&new.channel.as_str()) {
            return Err(RequestError::Invalid(format!(
                "the channel is one of {}",
                CHANNELS.join(", ")
            )));
        }
        if new
            .evidence
            .notice_version
            .as_deref()
            .is_some_and(|v| v.contains("-incomplete-"))
        {
            return Err(RequestError::Invalid(
                "an incomplete notice (the register of processing had gaps) is no evidence of what the person was told".into(),
            ));
        }
        if let Some(h) = &new.evidence.notice_sha256
            && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(RequestError::Invalid(
                "the notice's SHA-256 is 64 hex digits".into(),
            ));
        }
        let subject = self.systems.subject(&new.identifiers, new.region)?;
        let indexes = subject_indexes(&self.vault, &subject);
        let key_id = format!("consent-{}", &indexes[0][..16]);
        let request_id = if new.given {
            None
        } else {
            let filed = self
                .file(NewRequest {
                    id: None,
                    kind: RequestKind::ConsentWithdrawal,
                    identifiers: new.identifiers.clone(),
                    region: new.region,
                    actor: new.actor.clone(),
                    params: Params {
                        scope: vec![new.purpose.clone()],
                        ..Params::default()
                    },
                    attestation: None,
                    intake: None,
                })
                .await?;
            Some(filed.id)
        };
        let at = self.store.now();
        let action = if new.given { "given" } else { "withdrawn" };
        let sealed = self
            .vault
            .seal_json(
                &key_id,
                Seal::Consent {
                    purpose: &new.purpose,
                    at,
                },
                &Sealed {
                    subject,
                    evidence: new.evidence.clone(),
                },
            )
            .await?;
        let mut row = ConsentRow {
            id: 0,
            key_id: key_id.clone(),
            purpose: new.purpose.clone(),
            action: action.into(),
            lawful_basis: new.lawful_basis.clone(),
            channel: new.channel.clone(),
            source_system: new.source_system.clone(),
            evidence_sealed: sealed,
            at,
            recorded_by: new.actor.clone(),
            request_id: request_id.clone(),
        };
        let mut tx = self.store.write_logged().await?;
        row.id = consent::append(&mut tx, &row, &indexes).await?;
        let subject_ref = format!("consent:{}", row.id);
        let what = format!("consent-{action}:{}", new.purpose);
        oubli_store::requests::event(
            &mut tx,
            &event(&subject_ref, &new.actor, &what, None),
            self.store.now(),
        )
        .await?;
        oubli_store::commit(tx).await?;
        tracing::info!(subject = %&indexes[0][..8], purpose = %new.purpose, action, "consent recorded");
        Ok(ConsentEntry {
            id: row.id,
            purpose: row.purpose,
            action: row.action,
            lawful_basis: row.lawful_basis,
            channel: row.channel,
            source_system: row.source_system,
            evidence: new.evidence,
            at,
            recorded_by: row.recorded_by,
            request_id,
        })
    }

    /// A subject's consents: status per purpose and the whole history.
    pub async fn consents(
        &self,
        given: &Identifiers,
        region: Option<Region>,
    ) -> Result<ConsentView, RequestError> {
        let subject = self.systems.subject(given, region)?;
        let indexes = subject_indexes(&self.vault, &subject);
        let rows = consent::history(self.store.pool(), &indexes).await?;
        let mut history = Vec::with_capacity(rows.len());
        for r in rows {
            let evidence = match self
                .vault
                .open_json::<Sealed>(
                    &r.key_id,
                    Seal::Consent {
                        purpose: &r.purpose,
                        at: r.at,
                    },
                    &r.evidence_sealed,
                )
                .await
            {
                Ok(s) => s.evidence,
                Err(_) => Evidence {
                    note: Some("(sealed evidence cannot be opened)".into()),
                    ..Evidence::default()
                },
            };
            history.push(ConsentEntry {
                id: r.id,
                purpose: r.purpose,
                action: r.action,
                lawful_basis: r.lawful_basis,
                channel: r.channel,
                source_system: r.source_system,
                evidence,
                at: r.at,
                recorded_by: r.recorded_by,
                request_id: r.request_id,
            });
        }
        let mut status: Vec<ConsentStatus> = Vec::new();
        for e in &history {
            let s = ConsentStatus {
                purpose: e.purpose.clone(),
                given: e.action == "given",
                since: e.at,
                entry: e.id,
            };
            match status.iter_mut().find(|x| x.purpose == e.purpose) {
                Some(x) => *x = s,
                None => status.push(s),
            }
        }
        status.sort_by(|a, b| a.purpose.cmp(&b.purpose));
        Ok(ConsentView { status, history })
    }
}
