//! Builders and helpers on the contract's types, so connectors state results
//! in one line each.

use crate::{
    Attachment, ConnectorError, Dated, Deletion, Exported, Field, Located, Manifest, ManualTask,
    Outcome, RecordRef, RetentionFacts, Role, Status, Subject, SweepKey, SweepQuery, Timestamp,
};

impl RecordRef {
    /// A reference to the record `id` of kind `kind`.
    ///
    /// ```ignore
    /// let r = RecordRef::new("contact", "1042");
    /// ```
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        RecordRef {
            kind: kind.into(),
            id: id.into(),
        }
    }
}

impl Outcome {
    /// The operation took effect on `reference`.
    pub fn done(reference: RecordRef) -> Self {
        Outcome {
            reference,
            status: Status::Done,
        }
    }
    /// The system keeps `reference`, for `reason`.
    pub fn retained(reference: RecordRef, reason: impl Into<String>) -> Self {
        Outcome {
            reference,
            status: Status::Retained(reason.into()),
        }
    }
    /// `reference` does not exist (any more).
    pub fn not_found(reference: RecordRef) -> Self {
        Outcome {
            reference,
            status: Status::NotFound,
        }
    }
    /// The system will finish later; follow `ticket` with `poll`.
    pub fn pending(reference: RecordRef, ticket: impl Into<String>) -> Self {
        Outcome {
            reference,
            status: Status::Pending(ticket.into()),
        }
    }
}

impl Located {
    /// A record of the person's own ([`Role::Owner`]), with an
    /// operator-facing summary (no personal data). A record shared with
    /// others says so with [`Located::participant`] or
    /// [`Located::mentioned`]: the host deletes only what the person owns.
    pub fn new(reference: RecordRef, summary: impl Into<String>) -> Self {
        Located {
            reference,
            role: Role::Owner,
            summary: summary.into(),
            created_at: None,
            hold: None,
        }
    }
    /// The person's part in the record.
    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }
    /// The person is one party of a record shared with others (Cc on
    /// someone else's ticket, one of several recipients).
    pub fn participant(self) -> Self {
        self.role(Role::Participant)
    }
    /// The person is only mentioned in someone else's record.
    pub fn mentioned(self) -> Self {
        self.role(Role::Mentioned)
    }
    /// When the system created the record.
    pub fn created_at(mut self, at: Timestamp) -> Self {
        self.created_at = Some(at);
        self
    }
    /// The system must keep this record, for `reason`.
    pub fn hold(mut self, reason: impl Into<String>) -> Self {
        self.hold = Some(reason.into());
        self
    }
}

impl Exported {
    /// An exported record with no fields yet.
    pub fn new(reference: RecordRef) -> Self {
        Exported {
            reference,
            fields: Vec::new(),
            attachments: Vec::new(),
        }
    }
    /// Add a field of `category` (skipped when `value` is empty).
    pub fn field(
        mut self,
        name: impl Into<String>,
        category: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.fields.push(Field {
                name: name.into(),
                category: category.into(),
                value,
            });
        }
        self
    }
    /// Add a date field from an ISO 8601 value, skipped when it is empty,
    /// unreadable, or a system's "no date" placeholder (the Unix epoch,
    /// which RT gives a ticket never resolved): a zero date shown to the
    /// person would read as a fact.
    ///
    /// ```ignore
    /// Exported::new(r).date("Resolved", "correspondence", "1970-01-01T00:00:00Z"); // no field
    /// ```
    pub fn date(
        self,
        name: impl Into<String>,
        category: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        let value = value.into();
        match crate::text::parse_iso8601(value.trim()) {
            Some(at) if at > 0 => self.field(name, category, value),
            _ => self,
        }
    }

    /// Add an attachment whose bytes `read-attachment` serves.
    pub fn attachment(
        mut self,
        name: impl Into<String>,
        media_type: impl Into<String>,
        size: Option<u64>,
    ) -> Self {
        self.attachments.push(Attachment {
            name: name.into(),
            media_type: media_type.into(),
            size,
        });
        self
    }
}

#[allow(
    clippy::derivable_impls,
    reason = "the type is generated; derive is not available"
)]
impl Default for Subject {
    fn default() -> Self {
        Subject {
            emails: Vec::new(),
            phones: Vec::new(),
            names: Vec::new(),
            external_ids: Vec::new(),
        }
    }
}

impl Subject {
    /// Whether the subject carries no identifier a connector could search by
    /// (names alone never count).
    pub fn has_no_strong_identifier(&self) -> bool {
        self.emails.is_empty() && self.phones.is_empty() && self.external_ids.is_empty()
    }

    /// The external ids in `namespace`.
    pub fn external_ids_in<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a str> {
        self.external_ids
            .iter()
            .filter(move |e| e.namespace == namespace)
            .map(|e| e.id.as_str())
    }
}

impl ConnectorError {
    /// A short, stable name for the error kind (`unavailable`, `denied`, ...).
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

    /// `invalid` for a record reference of a kind this connector never
    /// hands out.
    pub fn unknown_kind(kind: &str) -> Self {
        ConnectorError::Invalid(format!("unknown record kind `{kind}`"))
    }

    /// `manual`: what an operator must do by hand, step by step, on which
    /// records (the host shows it whole and verifies those records).
    pub fn manual(summary: impl Into<String>, steps: Vec<String>, records: Vec<RecordRef>) -> Self {
        ConnectorError::Manual(ManualTask {
            summary: summary.into(),
            steps,
            records,
        })
    }

    /// `not-supported` for an operation this connector does not offer.
    pub fn not_supported(operation: &str) -> Self {
        ConnectorError::NotSupported(format!("this connector does not offer `{operation}`"))
    }
}

impl RetentionFacts {
    /// A category `sweep` can page through, by the record kind it answers
    /// and its trigger dates (the first is the default), whose records
    /// `erase` deletes as `deletion` says, with no holds of the system's own.
    pub fn new(category: &str, kind: &str, triggers: &[&str], deletion: Deletion) -> Self {
        RetentionFacts {
            category: category.into(),
            kind: kind.into(),
            triggers: triggers.iter().map(|t| t.to_string()).collect(),
            deletion,
            native_holds: false,
        }
    }
}

impl SweepQuery {
    /// The category's facts from `manifest`, once the query's category and
    /// trigger are ones it declares; `invalid` otherwise.
    pub fn check(&self, manifest: &Manifest) -> Result<RetentionFacts, ConnectorError> {
        manifest
            .retention
            .iter()
            .find(|r| r.category == self.category && r.triggers.contains(&self.trigger))
            .cloned()
            .ok_or_else(|| {
                ConnectorError::Invalid(format!(
                    "no sweep over category `{}` by `{}`",
                    self.category, self.trigger
                ))
            })
    }

    /// Whether `key` comes after the page's start (`after`), in the order
    /// (trigger date, id).
    pub fn is_after(&self, at: Timestamp, id: &str) -> bool {
        match &self.after {
            None => true,
            Some(SweepKey { at: a, id: i }) => (at, id) > (*a, i.as_str()),
        }
    }

    /// Whether `found` (candidates read so far from a search sorted by date)
    /// holds the whole page: at least `limit` of them, and a date past the
    /// `limit`-th one, so every record sharing that date was read and the
    /// page cannot split them wrongly. Read on until it is, or the search
    /// ends.
    pub fn complete(&self, found: &[Dated]) -> bool {
        let limit = self.limit as usize;
        if limit == 0 {
            return true;
        }
        if found.len() < limit {
            return false;
        }
        let mut dates: Vec<Timestamp> = found.iter().map(|d| d.at).collect();
        dates.sort_unstable();
        dates.last() > dates.get(limit - 1)
    }

    /// `records` (any order, any length) as the page the host asked for:
    /// those dated before the cutoff and after `after`, sorted by (trigger
    /// date, id), at most `limit`.
    pub fn page(&self, mut records: Vec<Dated>) -> Vec<Dated> {
        records.retain(|d| d.at < self.cutoff && self.is_after(d.at, &d.reference.id));
        records.sort_by(|a, b| (a.at, &a.reference.id).cmp(&(b.at, &b.reference.id)));
        records.truncate(self.limit as usize);
        records
    }
}

impl Dated {
    /// `reference`, dated `at`, with an operator-facing summary (no
    /// personal data).
    pub fn new(reference: RecordRef, at: Timestamp, summary: impl Into<String>) -> Self {
        Dated {
            reference,
            at,
            summary: summary.into(),
            hold: None,
        }
    }
}
