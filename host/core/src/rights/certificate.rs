//! Erasure certificates: what was erased, kept and verified for one
//! request, signed by the host's signing key so that anyone holding its
//! public key can check it with `openssl` alone, years later.
//!
//! A certificate is two things: the document (JSON, the exact bytes that
//! were signed, kept as issued) and its RSA-PSS signature. It names the
//! subject only by its blind indexes, each connector by id, version and
//! component SHA-256, and its place in the audit chain (the chain's length
//! and head hash when it was issued), which `oubli certificate verify --db`
//! checks against the store.

use super::deadline::timestamp;
use super::engine::Engine;
use super::request::{RequestError, SystemResult, event, subject_indexes};
use oubli_model::{RequestKind, RequestState};
use oubli_model::{Status, Subject};
use oubli_store::keys::Sealed;
use oubli_store::requests;
use oubli_store::service;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The certificate format's name and version.
pub const FORMAT: &str = "oubli-erasure-certificate/1";

/// What a certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// [`FORMAT`].
    pub format: String,
    /// The request.
    pub request: String,
    /// Its outcome (`completed`, `partially-completed`, `failed`).
    pub outcome: String,
    /// The subject: HMAC-SHA-256 blind indexes of the identifiers, under
    /// the controller's key (no personal data).
    pub subject: Vec<String>,
    /// When the request was received (RFC 3339).
    pub received_at: String,
    /// When it was due.
    pub due_at: String,
    /// When it ended.
    pub finalized_at: Option<String>,
    /// When this certificate was issued.
    pub issued_at: String,
    /// Who filed it.
    pub requested_by: String,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// Per system.
    pub systems: Vec<CertifiedSystem>,
    /// Its place in the audit chain when issued.
    pub audit_chain: ChainPlace,
    /// The id of the key that signed it.
    pub signing_key: String,
}

/// One system's part of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertifiedSystem {
    /// The integrator's name for it.
    pub system: String,
    /// Its state at the end (`done`, `partial`, `failed`, `skipped`, ...).
    pub state: String,
    /// The connector's id and version.
    pub connector: Option<String>,
    /// SHA-256 of the connector's component.
    pub component_sha256: Option<String>,
    /// Records found by the plan's search.
    pub found: u32,
    /// Records erased, as the connector verified.
    pub erased: u32,
    /// Records that did not exist any more.
    pub not_found: u32,
    /// Records kept, per reason.
    pub retained: BTreeMap<String, u32>,
    /// Records still there when they should not be.
    pub failed: u32,
    /// The verifying search after the erasure: how many erased records it
    /// still found (0 is the proof), and when it ran.
    pub verification: Verification,
    /// Why this system was never searched (its search failed when planning
    /// and its task never searched it either: skipped by an operator, say):
    /// its counts then say nothing about what it holds. Absent when it was
    /// searched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_searched: Option<String>,
}

/// The re-locate that checks an erasure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// Whether it ran.
    pub ran: bool,
    /// What it says (when and how).
    pub note: Option<String>,
    /// Erased records it still found.
    pub still_found: u32,
}

/// The audit chain's length and head hash when the certificate was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainPlace {
    /// Events in the chain.
    pub seq: i64,
    /// The last event's hash.
    pub hash: String,
}

/// A certificate as issued: the signed bytes and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedCertificate {
    /// The document, exactly as signed (JSON).
    pub document: String,
    /// The RSA-PSS signature, base64 (standard alphabet).
    pub signature: String,
    /// The public key that checks it (SubjectPublicKeyInfo PEM).
    pub public_key: String,
    /// That the log holds the event attesting this document (its SHA-256
    /// is the event's digest), under a signed tree head: docs/AUDIT.md.
    /// Absent while the event waits for the sequencer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<oubli_model::evidence::InclusionProof>,
}

impl Engine {
    /// The erasure certificate of a request that is over, issued (signed,
    /// kept, and its issue recorded in the audit chain) the first time it
    /// is asked for, the same document every time after.
    pub async fn certificate(&self, id: &str) -> Result<SignedCertificate, RequestError> {
        let signer = self.vault.keyring().signer()?;
        if let Some(stored) = self.stored_certificate(id).await? {
            return Ok(stored);
        }
        let row = requests::get(self.store.pool(), id).await?;
        if row.kind != RequestKind::Erasure {
            return Err(RequestError::Conflict(format!(
                "request {id} is {}: certificates are for erasure requests",
                row.kind
            )));
        }
        if !matches!(
            row.state,
            RequestState::Completed | RequestState::PartiallyCompleted | RequestState::Failed
        ) {
            return Err(RequestError::Conflict(format!(
                "request {id} is {}: a certificate is issued once the erasure is over",
                row.state
            )));
        }
        let subject: Subject = self
            .vault
            .open_json(id, Sealed::Subject, &row.subject_sealed)
            .await?;
        let mut systems = Vec::new();
        for s in requests::systems(self.store.pool(), id).await? {
            let result: SystemResult = match &s.result_sealed {
                Some(r) => {
                    self.vault
                        .open_json(id, Sealed::Result(&s.system), r)
                        .await?
                }
                None => SystemResult::default(),
            };
            let counts: super::request::Counts =
                serde_json::from_str(&s.counts).unwrap_or_default();
            let plan: super::request::SystemPlan = match &s.plan_sealed {
                Some(p) => self.vault.open_json(id, Sealed::Plan(&s.system), p).await?,
                None => super::request::SystemPlan::default(),
            };
            let not_searched = match (&plan.error, &result.plan) {
                (Some(e), None) => Some(format!("could not be searched: {e}")),
                _ => None,
            };
            let mut retained = BTreeMap::new();
            for o in &result.outcomes {
                if let Status::Retained(why) = &o.status {
                    *retained.entry(why.clone()).or_insert(0) += 1;
                }
            }
            systems.push(CertifiedSystem {
                system: s.system,
                state: s.state.to_string(),
                connector: s.connector,
                component_sha256: s.component_sha256,
                found: counts.found,
                erased: counts.done,
                not_found: counts.not_found,
                retained,
                failed: counts.failed,
                verification: Verification {
                    ran: result.verified.is_some(),
                    note: result.verified.clone(),
                    still_found: result.still_found.len() as u32,
                },
                not_searched,
            });
        }
        let (seq, hash) = oubli_store::log::size(self.store.pool()).await?;
        let cert = Certificate {
            format: FORMAT.into(),
            request: id.to_string(),
            outcome: row.state.to_string(),
            subject: subject_indexes(&self.vault, &subject),
            received_at: timestamp(row.received_at),
            due_at: timestamp(row.due_at),
            finalized_at: row.finalized_at.map(timestamp),
            issued_at: timestamp(self.store.now()),
            requested_by: row.requested_by,
            approved_by: row.approved_by,
            systems,
            audit_chain: ChainPlace { seq, hash },
            signing_key: signer.id().to_string(),
        };
        let mut document = serde_json::to_string_pretty(&cert)
            .map_err(|e| RequestError::Internal(format!("cannot write the certificate: {e}")))?;
        document.push('\n');
        let signature = signer.sign(document.as_bytes())?;
        let mut tx = self.store.write_logged().await?;
        if service::insert_certificate(
            &mut tx,
            id,
            &document,
            &hex::encode(&signature),
            self.store.now(),
        )
        .await?
        {
            requests::attest(
                &mut tx,
                &event(id, "host", "certificate-issued", None),
                Some(&digest_of(&document)),
                self.store.now(),
            )
            .await?;
        }
        // If another process issued it first, nothing was written: theirs
        // stands, and both read back the one kept.
        oubli_store::commit(tx).await?;
        self.stored_certificate(id)
            .await?
            .ok_or_else(|| RequestError::Internal("the certificate was not kept".into()))
    }

    /// A certificate (erasure or retention) as kept, with the inclusion
    /// proof of the event that attests it.
    pub(crate) async fn stored_certificate(
        &self,
        id: &str,
    ) -> Result<Option<SignedCertificate>, RequestError> {
        let signer = self.vault.keyring().signer()?;
        let Some((document, signature)) = service::certificate(self.store.pool(), id).await? else {
            return Ok(None);
        };
        let mut proof = self.prove_document(id, &document).await?;
        if proof.is_none() {
            // Its event may wait for the sequencer: place it if this
            // process can, and ask again.
            let holder = format!("{}:certificate", super::worker::default_worker_id());
            if self.drain_log(&holder).await? > 0 {
                proof = self.prove_document(id, &document).await?;
            }
        }
        Ok(Some(SignedCertificate {
            document,
            signature: b64(&hex::decode(signature).unwrap_or_default()),
            public_key: signer.public_pem().to_string(),
            proof,
        }))
    }

    /// The certificate of `id` (issued now if it was not yet), and what a
    /// check of it finds: its signature against the host's key, and its
    /// place in the audit chain ([`Engine::verify_certificate`]), or why
    /// it fails.
    pub async fn checked_certificate(
        &self,
        id: &str,
    ) -> Result<(SignedCertificate, Result<Certificate, String>), RequestError> {
        use base64::Engine as _;
        let signed = self.certificate(id).await?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(&signed.signature)
            .map_err(|_| RequestError::Internal("a stored signature is not base64".into()))?;
        let check = match self
            .verify_certificate(signed.document.as_bytes(), &signature)
            .await
        {
            Ok(c) => Ok(c),
            Err(e) if e.kind() == super::request::ErrorKind::Invalid => Err(e.to_string()),
            Err(e) => return Err(e),
        };
        Ok((signed, check))
    }

    /// Check a certificate against this host: its signature under the
    /// host's signing key (or `public_pem`), and that the audit chain still
    /// holds the head it names.
    pub async fn verify_certificate(
        &self,
        document: &[u8],
        signature: &[u8],
    ) -> Result<Certificate, RequestError> {
        let signer = self.vault.keyring().signer()?;
        let cert = check_certificate(signer.public_pem(), document, signature)?;
        match service::chain_hash_at(self.store.pool(), cert.audit_chain.seq).await? {
            Some(h) if h == cert.audit_chain.hash => Ok(cert),
            Some(_) => Err(RequestError::Invalid(format!(
                "the audit chain's event {} has another hash than the certificate names: the log was rewritten",
                cert.audit_chain.seq
            ))),
            None if cert.audit_chain.seq == 0 => Ok(cert),
            None => Err(RequestError::Invalid(format!(
                "the audit chain is shorter than the {} events the certificate names: events were cut off",
                cert.audit_chain.seq
            ))),
        }
    }
}

/// Check a certificate's signature with a public key alone, and read it.
pub fn check_certificate(
    public_pem: &str,
    document: &[u8],
    signature: &[u8],
) -> Result<Certificate, RequestError> {
    oubli_crypto::signing::verify(public_pem, document, signature)?;
    let cert: Certificate = serde_json::from_slice(document).map_err(|e| {
        RequestError::Invalid(format!(
            "the signature holds but this is not a certificate: {e}"
        ))
    })?;
    if cert.format != FORMAT {
        return Err(RequestError::Invalid(format!(
            "unknown certificate format {:?} (this oubli reads {FORMAT})",
            cert.format
        )));
    }
    Ok(cert)
}

/// Base64, standard alphabet, padded.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Read base64 (standard alphabet; whitespace ignored).
pub fn unb64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean).ok()
}

/// A document's SHA-256, hex: the digest its issue event carries.
pub(crate) fn digest_of(document: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(document.as_bytes()))
}
