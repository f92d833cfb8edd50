//! The privacy center's use cases: a data subject asks for a right, proves
//! control of their email address with a one-time code, follows the
//! request through a status link, and fetches the kept answer after a
//! fresh code. The face (`oubli serve`'s `/privacy/` pages) renders and
//! sends the mails this module writes; it holds no rule of its own.
//!
//! - Codes are 6 digits, single use, expiring, kept only as keyed hashes
//!   (HMAC under the keyring's index key, bound to their challenge); wrong
//!   codes are counted per challenge and lock it out after
//!   `max_attempts`.
//! - Codes sent per address and requests started per client are counted
//!   per hour by keyed hashes. Past the address's limit no code is sent,
//!   and the page says the same as when one is: nothing tells whether an
//!   address is known, and the answer never depends on it (nothing is
//!   looked up before the code is given).
//! - Handles and status tokens are random (160 bits) and kept as their
//!   SHA-256: they are capabilities, never identifiers, so they may sit
//!   in a URL.
//! - A request is filed only once the email address is proven. A phone
//!   number, which no code proves here, and the kinds the integrator
//!   lists (`attest`), wait for an operator's attestation (the existing
//!   attest step).

use super::Systems;
use super::engine::Engine;
use super::request::{Attestation, Intake, NewRequest, Params, RequestError};
use crate::config::PrivacySettings;
use crate::lang::Lang;
use oubli_model::{Channel, RequestKind, RequestState, Subject};
use oubli_store::keys::Sealed;
use oubli_store::privacy::{self, ChallengeRow, LinkRow};
use oubli_store::requests;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const HOUR_MS: i64 = 3_600_000;

/// The rules of the privacy center, from `[api.privacy]`.
#[derive(Debug, Clone)]
pub struct PrivacyRules {
    /// Links in mails start with this (`https://privacy.example.com`).
    pub public_url: String,
    /// How long a code works (ms).
    pub code_ttl_ms: i64,
    /// Wrong codes before a challenge is locked.
    pub max_attempts: i64,
    /// The largest answer sent by email (bytes).
    pub mail_max: u64,
    /// Codes per address per hour.
    pub codes_per_address: i64,
    /// Requests started per client per hour.
    pub starts_per_client: i64,
    /// How long a status link works after its request ends (ms).
    pub link_ttl_ms: i64,
    /// How long a download stays open after its code (ms).
    pub download_ttl_ms: i64,
    /// Kinds that always wait for an operator's attestation.
    pub attest: Vec<RequestKind>,
    /// Whether codes can go to phone numbers by text message (a gateway
    /// is configured): a phone number is then proven by a code too.
    pub sms: bool,
}

impl From<&PrivacySettings> for PrivacyRules {
    fn from(s: &PrivacySettings) -> PrivacyRules {
        PrivacyRules {
            public_url: s.public_url.as_str().trim_end_matches('/').to_string(),
            code_ttl_ms: s.code_ttl.as_millis() as i64,
            max_attempts: i64::from(s.max_attempts),
            mail_max: s.mail_max,
            codes_per_address: i64::from(s.codes_per_address),
            starts_per_client: i64::from(s.starts_per_client),
            link_ttl_ms: s.link_ttl.as_millis() as i64,
            download_ttl_ms: s.download_ttl.as_millis() as i64,
            attest: s.attest.clone(),
            sms: s.sms.is_some(),
        }
    }
}

/// A mail to send. Its `Debug` names no address and no content.
#[derive(Clone)]
pub struct Mail {
    /// The recipient.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The text.
    pub body: String,
    /// A file sent with it (the answer, encrypted).
    pub attachment: Option<Attachment>,
}

/// A text message to send (a code to a phone number). Its `Debug` names
/// no number and no content.
#[derive(Clone)]
pub struct Text {
    /// The phone number, E.164.
    pub to: String,
    /// The message.
    pub body: String,
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Text(..)")
    }
}

/// What a step of the privacy center sends: a mail or a text message.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A mail.
    Mail(Mail),
    /// A text message.
    Text(Text),
}

/// A file sent with a mail.
#[derive(Clone)]
pub struct Attachment {
    /// Its file name.
    pub name: String,
    /// Its media type.
    pub media_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// How a subject wants their answer sent by email.
pub enum Sealing {
    /// In a ZIP encrypted with AES-256 under this password.
    Password(zeroize::Zeroizing<String>),
    /// In oubli's file format, for this RSA public key (PEM).
    PublicKey(String),
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mail(..)")
    }
}

/// What a subject asks for in the privacy center.
#[derive(Clone)]
pub struct Ask {
    /// The right.
    pub kind: RequestKind,
    /// Their email address (proven by a code).
    pub email: String,
    /// Their phone number, if they give one (proven by an operator).
    pub phone: Option<String>,
    /// Their name (a hint for systems that search by name).
    pub name: Option<String>,
    /// Kind-specific parameters (a correction, a purpose).
    pub params: Params,
    /// The language of their pages and mails.
    pub lang: Lang,
}

/// A challenge started: its handle (for the page's URL), and the mail
/// with the code (`None` when the address's hourly limit is reached: the
/// page must not say so).
#[derive(Debug)]
pub struct Started {
    /// The challenge's handle.
    pub handle: String,
    /// The mail to send.
    pub mail: Option<Mail>,
}

/// A code given right.
#[derive(Debug)]
pub enum Verified {
    /// The request was filed: its status token, and the mail that gives
    /// the subject the link.
    Filed {
        /// The status link's token.
        token: String,
        /// The mail with the reference and the link.
        mail: Mail,
    },
    /// The answer may now be downloaded through the same handle.
    Opened,
    /// The email address is proven; a code went to the phone number (the
    /// text to send), to be given on the same handle's page.
    Phone(Option<Text>),
}

/// Why the privacy center refuses.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// The code is wrong; `left` tries remain.
    #[error("this code is not the one we sent")]
    WrongCode {
        /// Tries left.
        left: i64,
    },
    /// Too many wrong codes: the challenge is locked.
    #[error("too many wrong codes")]
    Locked,
    /// The code, link or download expired, was used, or never existed.
    #[error("this link or code has expired")]
    Expired,
    /// Too many requests from this client this hour.
    #[error("too many requests from this address; try again in an hour")]
    TooMany,
    /// The request's state does not allow it (no answer to fetch yet).
    #[error("{0}")]
    NotReady(String),
    /// The engine refused or failed.
    #[error(transparent)]
    Request(#[from] RequestError),
}

impl From<oubli_crypto::CryptoError> for PrivacyError {
    fn from(e: oubli_crypto::CryptoError) -> Self {
        PrivacyError::Request(e.into())
    }
}

impl From<crate::identifiers::IdentifierError> for PrivacyError {
    fn from(e: crate::identifiers::IdentifierError) -> Self {
        PrivacyError::Request(e.into())
    }
}

impl From<oubli_store::StoreError> for PrivacyError {
    fn from(e: oubli_store::StoreError) -> Self {
        PrivacyError::Request(e.into())
    }
}

/// An answer opened for download.
#[derive(Debug, Clone)]
pub struct Opened {
    /// Its request.
    pub request_id: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// The language of its pages.
    pub lang: Lang,
}

/// What the status page shows: never the plan, never the data.
#[derive(Debug, Clone)]
pub struct Status {
    /// The reference read back to the subject.
    pub reference: String,
    /// The right asked for.
    pub kind: RequestKind,
    /// Where it stands.
    pub state: RequestState,
    /// When it was received (ms).
    pub received_at: i64,
    /// When it is due (ms).
    pub due_at: i64,
    /// Months it was extended by, with the reason given.
    pub extension: Option<(i64, String)>,
    /// Whether an operator must still check the subject's identity.
    pub awaiting_identity: bool,
    /// Whether an answer is ready to fetch.
    pub answer_ready: bool,
    /// When the answer was removed at the end of its keeping period.
    pub answer_removed_at: Option<i64>,
    /// Downloads of the answer so far.
    pub downloads: i64,
    /// The language the subject chose.
    pub lang: Lang,
}

#[derive(Serialize, Deserialize)]
struct Draft {
    kind: RequestKind,
    subject: Subject,
    params: Params,
    lang: String,
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Six digits, uniform.
fn new_code() -> Result<String, RequestError> {
    loop {
        let mut b = [0u8; 4];
        oubli_crypto::random(&mut b)?;
        let n = u32::from_le_bytes(b);
        // Reject the top of the range so that every code is as likely.
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

impl Engine {
    fn code_mac(&self, handle_hash: &str, code: &str) -> String {
        self.vault
            .index("privacy-code", &format!("{handle_hash}:{code}"))
            .to_hex()
    }

    /// Count one more use of `what` (`client`, `address`) for `value` at
    /// `now`: how many this past hour, this one included. Counted by a
    /// keyed hash: an address is personal data.
    async fn hourly(
        &self,
        tx: &mut oubli_store::Tx,
        what: &str,
        value: &str,
        now: i64,
    ) -> Result<i64, PrivacyError> {
        let mac = self
            .vault
            .index("privacy-count", &format!("{what}:{value}"))
            .to_hex();
        Ok(privacy::count(tx, &mac, now, now - HOUR_MS).await?)
    }

    /// The request asked for in a `file` challenge.
    async fn draft_of(&self, c: &ChallengeRow) -> Result<Draft, PrivacyError> {
        let sealed = c.draft_sealed.as_deref().ok_or(PrivacyError::Expired)?;
        Ok(self
            .vault
            .open_json(&c.request_id, Sealed::Draft, sealed)
            .await?)
    }

    /// The first email address of request `row`'s subject, where mail to
    /// them goes.
    async fn email_of(&self, row: &requests::RequestRow) -> Result<Option<String>, PrivacyError> {
        let subject: Subject = self
            .vault
            .open_json(&row.id, Sealed::Subject, &row.subject_sealed)
            .await?;
        Ok(subject.emails.into_iter().next())
    }

    /// Start a request in the privacy center: check what is asked, keep it
    /// sealed, and write the code's mail to `ask.email`. `client`: the
    /// client's address, counted (keyed) for the hourly limit.
    pub async fn privacy_start(
        &self,
        ask: Ask,
        client: &str,
        rules: &PrivacyRules,
    ) -> Result<Started, PrivacyError> {
        if ask.kind == RequestKind::Lift {
            return Err(RequestError::Invalid("not a right a person asks for".into()).into());
        }
        let identifiers = crate::identifiers::Identifiers {
            emails: vec![ask.email.clone()],
            phones: ask.phone.clone().into_iter().collect(),
            names: ask.name.clone().into_iter().collect(),
            external_ids: Vec::new(),
        };
        let subject = self.systems.subject(&identifiers, None)?;
        if subject.emails.len() != 1 {
            return Err(RequestError::Invalid("give one email address".into()).into());
        }
        super::operator::check_params(ask.kind, &ask.params, &self.systems)?;
        let now = self.store.now();
        let mut tx = self.store.write().await?;
        let starts = self.hourly(&mut tx, "client", client, now).await?;
        if starts > rules.starts_per_client {
            oubli_store::commit(tx).await?;
            return Err(PrivacyError::TooMany);
        }
        oubli_store::commit(tx).await?;
        let id = format!("r-{}", oubli_crypto::random_token(6)?);
        let draft = Draft {
            kind: ask.kind,
            subject,
            params: ask.params,
            lang: ask.lang.code().to_string(),
        };
        let sealed = self.vault.seal_json(&id, Sealed::Draft, &draft).await?;
        self.challenge(
            &id,
            "file",
            Some(sealed),
            &draft.subject.emails[0],
            ask.lang,
            rules,
        )
        .await
    }

    /// A new challenge for request `id`: kept, with the code's mail to
    /// `email` (none past the address's hourly limit).
    async fn challenge(
        &self,
        id: &str,
        purpose: &str,
        draft_sealed: Option<Vec<u8>>,
        email: &str,
        lang: Lang,
        rules: &PrivacyRules,
    ) -> Result<Started, PrivacyError> {
        let handle = oubli_crypto::random_token(20)?;
        let handle_hash = sha256_hex(&handle);
        let code = new_code()?;
        let now = self.store.now();
        let mut tx = self.store.write().await?;
        privacy::add_challenge(
            &mut tx,
            &ChallengeRow {
                handle_hash: handle_hash.clone(),
                request_id: id.to_string(),
                purpose: purpose.to_string(),
                draft_sealed,
                code_mac: self.code_mac(&handle_hash, &code),
                lang: lang.code().to_string(),
                created_at: now,
                expires_at: now + rules.code_ttl_ms,
                failures: 0,
                used_at: None,
                open_until: None,
                phase: None,
            },
            now - 24 * HOUR_MS,
        )
        .await?;
        let sends = self.hourly(&mut tx, "address", email, now).await?;
        oubli_store::commit(tx).await?;
        let mail =
            (sends <= rules.codes_per_address).then(|| self.code_mail(email, &code, lang, rules));
        Ok(Started { handle, mail })
    }

    /// Send a challenge's code again (a new code; the old one stops
    /// working), by mail, or by text message once the email address is
    /// proven. Unknown or used handles answer `Expired`.
    pub async fn privacy_resend(
        &self,
        handle: &str,
        rules: &PrivacyRules,
    ) -> Result<Option<Outgoing>, PrivacyError> {
        let handle_hash = sha256_hex(handle);
        let Some(c) = privacy::challenge_of(self.store.pool(), &handle_hash).await? else {
            return Err(PrivacyError::Expired);
        };
        if c.used_at.is_some() {
            return Err(PrivacyError::Expired);
        }
        if c.failures >= rules.max_attempts {
            return Err(PrivacyError::Locked);
        }
        let lang = Lang::parse(&c.lang).unwrap_or_default();
        let phone = c.phase.as_deref() == Some("phone");
        let address = if phone {
            self.challenge_phone(&c).await?
        } else {
            self.challenge_email(&c).await?
        };
        let code = new_code()?;
        let now = self.store.now();
        let mut tx = self.store.write().await?;
        privacy::new_code(
            &mut tx,
            &handle_hash,
            &self.code_mac(&handle_hash, &code),
            now + rules.code_ttl_ms,
        )
        .await?;
        let sends = self.hourly(&mut tx, "address", &address, now).await?;
        oubli_store::commit(tx).await?;
        if sends > rules.codes_per_address {
            return Ok(None);
        }
        Ok(Some(if phone {
            Outgoing::Text(self.code_text(&address, &code, lang, rules))
        } else {
            Outgoing::Mail(self.code_mail(&address, &code, lang, rules))
        }))
    }

    async fn challenge_phone(&self, c: &ChallengeRow) -> Result<String, PrivacyError> {
        let draft = self.draft_of(c).await?;
        draft
            .subject
            .phones
            .into_iter()
            .next()
            .ok_or(PrivacyError::Expired)
    }

    async fn challenge_email(&self, c: &ChallengeRow) -> Result<String, PrivacyError> {
        let email = match &c.draft_sealed {
            Some(_) => self.draft_of(c).await?.subject.emails.into_iter().next(),
            None => {
                let row = requests::get(self.store.pool(), &c.request_id).await?;
                self.email_of(&row).await?
            }
        };
        email.ok_or(PrivacyError::Expired)
    }

    /// Check a challenge's code. Right: a `file` challenge files the
    /// request (and gives a status link), a `download` challenge opens the
    /// answer for `download_ttl`. Wrong: counted; locked after
    /// `max_attempts`.
    pub async fn privacy_verify(
        &self,
        handle: &str,
        code: &str,
        rules: &PrivacyRules,
    ) -> Result<Verified, PrivacyError> {
        let handle_hash = sha256_hex(handle);
        let now = self.store.now();
        let mut tx = self.store.write().await?;
        let Some(c) = privacy::challenge_tx(&mut tx, &handle_hash).await? else {
            return Err(PrivacyError::Expired);
        };
        if c.failures >= rules.max_attempts {
            return Err(PrivacyError::Locked);
        }
        if c.used_at.is_some() || c.expires_at < now {
            return Err(PrivacyError::Expired);
        }
        let code = code.trim();
        let right = code.len() == 6
            && code.bytes().all(|b| b.is_ascii_digit())
            && same(&self.code_mac(&handle_hash, code), &c.code_mac);
        if !right {
            privacy::failed(&mut tx, &handle_hash).await?;
            oubli_store::commit(tx).await?;
            let left = rules.max_attempts - c.failures - 1;
            tracing::info!(left, "privacy center: a wrong code");
            return Err(if left <= 0 {
                PrivacyError::Locked
            } else {
                PrivacyError::WrongCode { left }
            });
        }
        // The email address is proven: a phone number given is proven
        // next, by a code sent to it by text message, on the same page.
        if c.purpose == "file" && rules.sms && c.phase.is_none() {
            let draft = self.draft_of(&c).await?;
            if let Some(phone) = draft.subject.phones.first() {
                let code = new_code()?;
                privacy::next_phase(
                    &mut tx,
                    &handle_hash,
                    "phone",
                    &self.code_mac(&handle_hash, &code),
                    now + rules.code_ttl_ms,
                )
                .await?;
                let sends = self.hourly(&mut tx, "address", phone, now).await?;
                oubli_store::commit(tx).await?;
                let lang = Lang::parse(&draft.lang).unwrap_or_default();
                return Ok(Verified::Phone(
                    (sends <= rules.codes_per_address)
                        .then(|| self.code_text(phone, &code, lang, rules)),
                ));
            }
        }
        if c.purpose == "download" {
            let open_until = Some(now + rules.download_ttl_ms);
            if !privacy::used(&mut tx, &handle_hash, now, open_until).await? {
                return Err(PrivacyError::Expired);
            }
            oubli_store::commit(tx).await?;
            return Ok(Verified::Opened);
        }
        // The request is filed before the code is marked used: a crash in
        // between leaves the code good, and the same code given again finds
        // the request filed under the challenge's id and finishes the job.
        // The code is marked used, and the status link made, in one
        // transaction: given twice at once, one wins, the other is told the
        // code was used, and one request and one link exist.
        drop(tx);
        let draft = self.draft_of(&c).await?;
        let lang = Lang::parse(&draft.lang).unwrap_or_default();
        let email = draft.subject.emails[0].clone();
        let phone_proven = c.phase.as_deref() == Some("phone");
        let needs_operator = (!draft.subject.phones.is_empty() && !phone_proven)
            || rules.attest.contains(&draft.kind);
        let new = NewRequest {
            id: Some(c.request_id.clone()),
            kind: draft.kind,
            identifiers: crate::identifiers::Identifiers::default(),
            region: None,
            actor: "privacy-center".into(),
            params: draft.params,
            attestation: (!needs_operator).then(|| Attestation {
                method: if phone_proven {
                    "email-code+sms-code".into()
                } else {
                    "email-code".into()
                },
                evidence: format!(
                    "one-time codes sent to {} given were entered in the privacy center, the last at {}",
                    if phone_proven {
                        "the email address and the phone number"
                    } else {
                        "the email address"
                    },
                    super::deadline::timestamp(now)
                ),
            }),
            intake: Some(Intake {
                channel: Channel::Web,
                received_at: Some(c.created_at),
                needs_attestation: needs_operator,
            }),
        };
        let view = match self.file_subject(new, draft.subject, None).await {
            Ok(view) => view,
            // Filed already: by this code before a failure, or by the
            // same code given at once.
            Err(e) => match requests::get(self.store.pool(), &c.request_id).await {
                Ok(row) => self.view(&row),
                Err(_) => return Err(e.into()),
            },
        };
        let token = oubli_crypto::random_token(20)?;
        let mut tx = self.store.write().await?;
        if !privacy::used(&mut tx, &handle_hash, now, None).await? {
            return Err(PrivacyError::Expired);
        }
        privacy::add_link(
            &mut tx,
            &LinkRow {
                token_hash: sha256_hex(&token),
                request_id: view.id.clone(),
                lang: lang.code().to_string(),
                created_at: now,
                told_state: view.state.as_str().to_string(),
                downloads: 0,
            },
        )
        .await?;
        oubli_store::commit(tx).await?;
        let mail = self.filed_mail(
            &email,
            &view.id,
            view.kind,
            view.due_at,
            &token,
            lang,
            rules,
        );
        Ok(Verified::Filed { token, mail })
    }

    /// What the status link `token` shows. Unknown tokens, and links past
    /// `link_ttl` after their request ended, answer `Expired`.
    pub async fn privacy_status(
        &self,
        token: &str,
        rules: &PrivacyRules,
    ) -> Result<Status, PrivacyError> {
        let Some(link) = privacy::link_of(self.store.pool(), &sha256_hex(token)).await? else {
            return Err(PrivacyError::Expired);
        };
        let row = requests::get(self.store.pool(), &link.request_id).await?;
        let now = self.store.now();
        if row
            .finalized_at
            .is_some_and(|f| f + rules.link_ttl_ms < now)
        {
            return Err(PrivacyError::Expired);
        }
        let extension = if row.extended_months > 0 {
            let reason = self
                .show(&row.id)
                .await?
                .events
                .into_iter()
                .rev()
                .find(|e| e.action == "extended")
                .and_then(|e| e.reason)
                .unwrap_or_default();
            Some((row.extended_months, reason))
        } else {
            None
        };
        let answer = oubli_store::answers::get(self.store.pool(), &row.id).await?;
        Ok(Status {
            reference: row.id.clone(),
            kind: row.kind,
            state: row.state,
            received_at: row.received_at,
            due_at: row.due_at,
            extension,
            awaiting_identity: row.state == RequestState::Received,
            answer_ready: answer.as_ref().is_some_and(|a| a.removed_at.is_none())
                && self.check_answer(&row.id, false).await.is_ok(),
            answer_removed_at: answer.and_then(|a| a.removed_at),
            downloads: link.downloads,
            lang: Lang::parse(&link.lang).unwrap_or_default(),
        })
    }

    /// Ask to download the answer of the status link `token`: a fresh code
    /// to the request's email address. Refused while there is no answer.
    pub async fn privacy_download_start(
        &self,
        token: &str,
        rules: &PrivacyRules,
    ) -> Result<Started, PrivacyError> {
        let status = self.privacy_status(token, rules).await?;
        if !status.answer_ready {
            return Err(PrivacyError::NotReady(
                "there is no answer to fetch yet".into(),
            ));
        }
        let row = requests::get(self.store.pool(), &status.reference).await?;
        let Some(email) = self.email_of(&row).await? else {
            return Err(PrivacyError::Expired);
        };
        self.challenge(&row.id, "download", None, &email, status.lang, rules)
            .await
    }

    /// The request whose answer the download handle `handle` opens, while
    /// it is open. Counts the download and records it in the audit trail.
    pub async fn privacy_download(&self, handle: &str) -> Result<String, PrivacyError> {
        let handle_hash = sha256_hex(handle);
        let Some(c) = privacy::challenge_of(self.store.pool(), &handle_hash).await? else {
            return Err(PrivacyError::Expired);
        };
        let now = self.store.now();
        if c.purpose != "download" || c.open_until.is_none_or(|t| t < now) {
            return Err(PrivacyError::Expired);
        }
        self.check_answer(&c.request_id, false)
            .await
            .map_err(|e| PrivacyError::NotReady(e.to_string()))?;
        let mut tx = self.store.write_logged().await?;
        privacy::downloaded(&mut tx, &c.request_id).await?;
        requests::event(
            &mut tx,
            &super::request::event(&c.request_id, "privacy-center", "answer-downloaded", None),
            now,
        )
        .await?;
        oubli_store::commit(tx).await?;
        Ok(c.request_id)
    }

    /// The answer the download handle `handle` opens, while it is open
    /// (nothing counted): its request, size and SHA-256.
    pub async fn privacy_download_open(&self, handle: &str) -> Result<Opened, PrivacyError> {
        let Some(c) = privacy::challenge_of(self.store.pool(), &sha256_hex(handle)).await? else {
            return Err(PrivacyError::Expired);
        };
        if c.purpose != "download" || c.open_until.is_none_or(|t| t < self.store.now()) {
            return Err(PrivacyError::Expired);
        }
        let (bytes, sha256) = self
            .answer_size(&c.request_id)
            .await
            .map_err(|e| PrivacyError::NotReady(e.to_string()))?;
        Ok(Opened {
            lang: Lang::parse(&c.lang).unwrap_or_default(),
            request_id: c.request_id,
            bytes,
            sha256,
        })
    }

    /// Send the answer the download handle `handle` opens by email to the
    /// request's address, encrypted as the subject asked (`how`): the mail
    /// to send. Counted as a download and recorded in the audit trail
    /// (`answer-mailed`, with the method, never the password or key).
    pub async fn privacy_mail_answer(
        &self,
        handle: &str,
        how: Sealing,
        rules: &PrivacyRules,
    ) -> Result<Mail, PrivacyError> {
        let opened = self.privacy_download_open(handle).await?;
        let id = opened.request_id;
        let lang = opened.lang;
        let (method, attachment) = match how {
            Sealing::Password(p) => {
                if p.chars().count() < 12 {
                    return Err(RequestError::Invalid(
                        "a password of at least 12 characters".into(),
                    )
                    .into());
                }
                (
                    "password",
                    Attachment {
                        name: "answer-encrypted.zip".into(),
                        media_type: "application/zip".into(),
                        bytes: self.answer_with_password(&id, &p, rules.mail_max).await?,
                    },
                )
            }
            Sealing::PublicKey(pem) => (
                "public-key",
                Attachment {
                    name: "answer.oubli".into(),
                    media_type: "application/octet-stream".into(),
                    bytes: self.answer_for_key(&id, &pem, rules.mail_max).await?,
                },
            ),
        };
        let row = requests::get(self.store.pool(), &id).await?;
        let Some(email) = self.email_of(&row).await? else {
            return Err(PrivacyError::Expired);
        };
        // Sealed before the transaction: sealing may read the request's
        // key through the pool, and a transaction waiting on a second
        // connection can starve a full pool.
        let reason = self
            .vault
            .seal(
                &id,
                Sealed::Reason {
                    action: "answer-mailed",
                    system: None,
                },
                method.as_bytes(),
            )
            .await?;
        let mut tx = self.store.write_logged().await?;
        privacy::downloaded(&mut tx, &id).await?;
        requests::event(
            &mut tx,
            &super::request::event(&id, "privacy-center", "answer-mailed", Some(&reason)),
            self.store.now(),
        )
        .await?;
        oubli_store::commit(tx).await?;
        let who = self.controller_name();
        let (subject_line, body) = match lang {
            Lang::En => (
                format!("{who}: your answer ({id})"),
                format!(
                    "Your answer to request {id} is attached, encrypted {}.\n\n{}\n\n{who}\n",
                    if method == "password" {
                        "with the password you chose"
                    } else {
                        "for your public key"
                    },
                    if method == "password" {
                        "Open answer-encrypted.zip with an archive tool that reads AES-256 ZIP files (7-Zip, WinZip, Keka) and your password; inside is answer.zip, and in it index.html."
                    } else {
                        "answer.oubli is in oubli's file format: decrypt it with your private key (docs/decrypt.py, or `oubli decrypt`); it holds answer.zip, and in it index.html."
                    }
                ),
            ),
            Lang::Fr => (
                format!("{who}\u{a0}: votre réponse ({id})"),
                format!(
                    "Votre réponse à la demande {id} est jointe, chiffrée {}.\n\n{}\n\n{who}\n",
                    if method == "password" {
                        "avec le mot de passe que vous avez choisi"
                    } else {
                        "pour votre clé publique"
                    },
                    if method == "password" {
                        "Ouvrez answer-encrypted.zip avec un outil d’archives qui lit les ZIP AES-256 (7-Zip, WinZip, Keka) et votre mot de passe\u{a0}; il contient answer.zip, et dans celui-ci index.html."
                    } else {
                        "answer.oubli est au format de fichier d’oubli\u{a0}: déchiffrez-le avec votre clé privée (docs/decrypt.py, ou `oubli decrypt`)\u{a0}; il contient answer.zip, et dans celui-ci index.html."
                    }
                ),
            ),
        };
        Ok(Mail {
            to: email.clone(),
            subject: subject_line,
            body,
            attachment: Some(attachment),
        })
    }

    /// Record in the audit trail that the subject read the answer of
    /// `id` online.
    pub async fn privacy_viewed(&self, id: &str) -> Result<(), PrivacyError> {
        let mut tx = self.store.write_logged().await?;
        requests::event(
            &mut tx,
            &super::request::event(id, "privacy-center", "answer-viewed", None),
            self.store.now(),
        )
        .await?;
        oubli_store::commit(tx).await?;
        Ok(())
    }

    /// What the pages of challenge `handle` need to know, if it exists:
    /// their language, and whether it now waits for the code sent to the
    /// phone number.
    pub async fn privacy_handle(&self, handle: &str) -> Option<(Lang, bool)> {
        privacy::challenge_of(self.store.pool(), &sha256_hex(handle))
            .await
            .ok()
            .flatten()
            .map(|c| {
                (
                    Lang::parse(&c.lang).unwrap_or_default(),
                    c.phase.as_deref() == Some("phone"),
                )
            })
    }

    /// The mails owed to subjects whose request changed state since they
    /// were last told (at most `limit`), each with the state it tells of;
    /// call [`Engine::privacy_told`] once one is sent.
    pub async fn privacy_untold(
        &self,
        limit: i64,
        rules: &PrivacyRules,
    ) -> Result<Vec<(String, String, String, Mail)>, PrivacyError> {
        let mut out = Vec::new();
        for (link, state) in privacy::untold(self.store.pool(), limit).await? {
            let row = requests::get(self.store.pool(), &link.request_id).await?;
            if self.vault.is_shredded(&row.id).await? {
                // Nobody to tell any more: remember the state.
                let mut tx = self.store.write().await?;
                privacy::told(&mut tx, &row.id, &link.told_state, &state).await?;
                oubli_store::commit(tx).await?;
                continue;
            }
            let Some(email) = self.email_of(&row).await? else {
                continue;
            };
            let lang = Lang::parse(&link.lang).unwrap_or_default();
            let mail = self.state_mail(&email, &row, lang, rules);
            out.push((row.id.clone(), link.told_state.clone(), state, mail));
        }
        Ok(out)
    }

    /// Record that the subject of `id` was told of `state` (from `from`).
    pub async fn privacy_told(
        &self,
        id: &str,
        from: &str,
        state: &str,
    ) -> Result<bool, PrivacyError> {
        let mut tx = self.store.write().await?;
        let told = privacy::told(&mut tx, id, from, state).await?;
        oubli_store::commit(tx).await?;
        Ok(told)
    }

    /// The register's template `which` in `lang`, filled with `values`,
    /// if the register writes one.
    fn template(&self, which: &str, lang: Lang, values: &[(&str, &str)]) -> Option<String> {
        let r = self.systems.config().register.as_ref()?;
        let t = match which {
            "code" => &r.mails.code,
            "filed" => &r.mails.filed,
            _ => &r.mails.changed,
        };
        t.get(lang).map(|t| crate::register::fill(t, values))
    }

    fn controller_name(&self) -> String {
        self.systems
            .config()
            .controller
            .name
            .clone()
            .unwrap_or_else(|| "oubli".into())
    }

    fn code_mail(&self, to: &str, code: &str, lang: Lang, rules: &PrivacyRules) -> Mail {
        let minutes = rules.code_ttl_ms / 60_000;
        let who = self.controller_name();
        let (subject, body) = match lang {
            Lang::En => (
                format!("{who}: your verification code"),
                format!(
                    "Your code is {code}\n\nEnter it on the page where you made your request. It works once, for {minutes} minutes.\n\nIf you did not ask for it, ignore this message: nothing happens without the code.\n\n{who}\n"
                ),
            ),
            Lang::Fr => (
                format!("{who}\u{a0}: votre code de vérification"),
                format!(
                    "Votre code est {code}\n\nSaisissez-le sur la page où vous avez fait votre demande. Il sert une fois, pendant {minutes}\u{a0}minutes.\n\nSi vous ne l’avez pas demandé, ignorez ce message\u{a0}: rien ne se passe sans le code.\n\n{who}\n"
                ),
            ),
        };
        let minutes = minutes.to_string();
        let body = self
            .template(
                "code",
                lang,
                &[("code", code), ("minutes", &minutes), ("controller", &who)],
            )
            .unwrap_or(body);
        Mail {
            to: to.to_string(),
            subject,
            body,
            attachment: None,
        }
    }

    fn code_text(&self, to: &str, code: &str, lang: Lang, rules: &PrivacyRules) -> Text {
        let minutes = rules.code_ttl_ms / 60_000;
        let who = self.controller_name();
        let body = match lang {
            Lang::En => {
                format!("{who}: your code is {code}. It works once, for {minutes} minutes.")
            }
            Lang::Fr => format!(
                "{who}\u{a0}: votre code est {code}. Il sert une fois, pendant {minutes}\u{a0}minutes."
            ),
        };
        Text {
            to: to.to_string(),
            body,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn filed_mail(
        &self,
        to: &str,
        id: &str,
        kind: RequestKind,
        due_at: i64,
        token: &str,
        lang: Lang,
        rules: &PrivacyRules,
    ) -> Mail {
        let who = self.controller_name();
        let link = format!("{}/privacy/status/{token}", rules.public_url);
        let due = super::deadline::date(due_at);
        let right = kind_words(kind, lang);
        let (subject, body) = match lang {
            Lang::En => (
                format!("{who}: your request {id}"),
                format!(
                    "We received your request: {right}.\nIts reference is {id}. We will answer by {due} at the latest.\n\nFollow it here:\n{link}\n\nKeep this link to yourself: it shows where your request stands (never your data). We will write to you when it changes.\n\n{who}\n"
                ),
            ),
            Lang::Fr => (
                format!("{who}\u{a0}: votre demande {id}"),
                format!(
                    "Nous avons reçu votre demande\u{a0}: {right}.\nSa référence est {id}. Nous y répondrons au plus tard le {due}.\n\nSuivez-la ici\u{a0}:\n{link}\n\nGardez ce lien pour vous\u{a0}: il montre où en est votre demande (jamais vos données). Nous vous écrirons quand elle change.\n\n{who}\n"
                ),
            ),
        };
        let body = self
            .template(
                "filed",
                lang,
                &[
                    ("reference", id),
                    ("link", &link),
                    ("right", right),
                    ("due", &due),
                    ("controller", &who),
                ],
            )
            .unwrap_or(body);
        Mail {
            to: to.to_string(),
            subject,
            body,
            attachment: None,
        }
    }

    fn state_mail(
        &self,
        to: &str,
        row: &requests::RequestRow,
        lang: Lang,
        _rules: &PrivacyRules,
    ) -> Mail {
        let who = self.controller_name();
        let id = &row.id;
        let state = state_words(row.state, lang);
        let due = super::deadline::date(row.due_at);
        let (subject, body) = match lang {
            Lang::En => (
                format!("{who}: your request {id} changed"),
                format!(
                    "Your request {id} is now: {state}.\nIt is due by {due}.\n\nSee the details with the link in our first message.\n\n{who}\n"
                ),
            ),
            Lang::Fr => (
                format!("{who}\u{a0}: votre demande {id} a changé"),
                format!(
                    "Votre demande {id} est maintenant\u{a0}: {state}.\nÉchéance\u{a0}: le {due}.\n\nVoyez le détail avec le lien de notre premier message.\n\n{who}\n"
                ),
            ),
        };
        let body = self
            .template(
                "changed",
                lang,
                &[
                    ("reference", id),
                    ("state", state),
                    ("due", &due),
                    ("controller", &who),
                ],
            )
            .unwrap_or(body);
        Mail {
            to: to.to_string(),
            subject,
            body,
            attachment: None,
        }
    }
}

/// A right in the subject's words.
pub fn kind_words(kind: RequestKind, lang: Lang) -> &'static str {
    use RequestKind::*;
    match (lang, kind) {
        (Lang::En, Access) => "see your data and get a copy",
        (Lang::En, Portability) => "receive the data you gave us, to take elsewhere",
        (Lang::En, Rectification) => "correct your data",
        (Lang::En, Erasure) => "erase your data",
        (Lang::En, Restriction) => "restrict the use of your data",
        (Lang::En, Objection) => "object to a use of your data",
        (Lang::En, ConsentWithdrawal) => "withdraw your consent",
        (Lang::En, Lift) => "lift a restriction",
        (Lang::Fr, Access) => "voir vos données et en obtenir une copie",
        (Lang::Fr, Portability) => {
            "recevoir les données que vous nous avez confiées, pour les emporter ailleurs"
        }
        (Lang::Fr, Rectification) => "corriger vos données",
        (Lang::Fr, Erasure) => "effacer vos données",
        (Lang::Fr, Restriction) => "limiter l’utilisation de vos données",
        (Lang::Fr, Objection) => "vous opposer à une utilisation de vos données",
        (Lang::Fr, ConsentWithdrawal) => "retirer votre consentement",
        (Lang::Fr, Lift) => "lever une limitation",
    }
}

/// Where a request stands, in the subject's words.
pub fn state_words(state: RequestState, lang: Lang) -> &'static str {
    use RequestState::*;
    match (lang, state) {
        (Lang::En, Received) => "received: we are checking who you are",
        (Lang::En, Verified | Planning) => "in progress: we are looking for your data",
        (Lang::En, AwaitingApproval | Executing) => "in progress: we are acting on it",
        (Lang::En, Completed) => "done",
        (Lang::En, PartiallyCompleted) => {
            "done in part: the answer says what could not be done and why"
        }
        (Lang::En, Failed) => "could not be carried out: we will contact you",
        (Lang::En, Rejected) => "refused: we will write to you with the reason",
        (Lang::En, Cancelled) => "closed",
        (Lang::Fr, Received) => "reçue\u{a0}: nous vérifions votre identité",
        (Lang::Fr, Verified | Planning) => "en cours\u{a0}: nous recherchons vos données",
        (Lang::Fr, AwaitingApproval | Executing) => "en cours\u{a0}: nous la traitons",
        (Lang::Fr, Completed) => "traitée",
        (Lang::Fr, PartiallyCompleted) => {
            "traitée en partie\u{a0}: la réponse dit ce qui n’a pu être fait et pourquoi"
        }
        (Lang::Fr, Failed) => "n’a pu être traitée\u{a0}: nous vous contacterons",
        (Lang::Fr, Rejected) => "refusée\u{a0}: nous vous écrirons pour en donner la raison",
        (Lang::Fr, Cancelled) => "close",
    }
}

/// The rights the privacy center offers, each explained in plain words
/// from the register's catalogue (the same sentences as the notice).
pub fn rights_offered(systems: &Systems, lang: Lang) -> Vec<(RequestKind, String)> {
    let texts = systems.right_texts(lang);
    use RequestKind::*;
    [
        (Access, 0),
        (Portability, 4),
        (Rectification, 1),
        (Erasure, 2),
        (Restriction, 3),
        (Objection, 5),
        (ConsentWithdrawal, 7),
    ]
    .into_iter()
    .map(|(k, i)| (k, texts.get(i).cloned().unwrap_or_default()))
    .collect()
}
