//! Identifier normalisation: what operators type becomes what connectors
//! search with.
//!
//! - Emails: trimmed; the domain converted to its ASCII (IDNA) form and
//!   lower-cased; the local part kept as given (RFC 5321 says it may be
//!   case-sensitive; vendors store what they received). Matching and blind
//!   indexes use the [`fold_email`] form, all lower-case.
//! - Phones: parsed with libphonenumber's metadata (the `phonenumber` crate)
//!   and written in E.164 (`+33612345678`). National numbers need a default
//!   region; `00` and `tel:` prefixes are accepted. The parser has panicked on
//!   malformed input in the past, so input is pre-checked and the call is
//!   isolated with `catch_unwind`.
//! - Names: trimmed, inner whitespace collapsed. Names are hints only.
//! - External ids: `namespace:id`.
//!
//! Errors name the position of the bad value (`the 2nd phone number`), never
//! the value: it is personal data. They name no command-line flag either:
//! the CLI and the API each say which of their inputs it was.

use oubli_model::{ExternalId, Subject};
use std::str::FromStr;

/// Why an identifier was refused. One line, without the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifierError {
    /// No identifier to search with.
    #[error(
        "at least one email address, phone number or external id is needed (names alone are not enough to act on)"
    )]
    NothingToSearch,
    /// An email that is not one.
    #[error("the {0} email is not a valid address")]
    Email(Ordinal),
    /// A phone number that cannot be read.
    #[error("the {0} phone number {1}")]
    Phone(Ordinal, String),
    /// An external id not of the form `namespace:id`.
    #[error("the {0} external id must be namespace:id")]
    ExternalId(Ordinal),
    /// An unknown region code.
    #[error("unknown region {0:?} (use an ISO 3166 code such as FR, GB, US)")]
    Region(String),
}

/// "1st", "2nd", ... for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ordinal(pub usize);

impl std::fmt::Display for Ordinal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0;
        let suffix = match (n % 10, n % 100) {
            (1, 11) | (2, 12) | (3, 13) => "th",
            (1, _) => "st",
            (2, _) => "nd",
            (3, _) => "rd",
            _ => "th",
        };
        write!(f, "{n}{suffix}")
    }
}

/// A region for national phone numbers, checked against libphonenumber's
/// metadata, with what connectors need to read national forms.
///
/// ```
/// let gb: oubli_core::identifiers::Region = "gb".parse().unwrap();
/// assert_eq!((gb.code(), gb.calling_code(), gb.trunk_prefix()), ("GB", 44, Some("0")));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(phonenumber::country::Id);

impl FromStr for Region {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let id = phonenumber::country::Id::from_str(&s.trim().to_ascii_uppercase())
            .map_err(|_| IdentifierError::Region(s.to_string()))?;
        let region = Region(id);
        // An id the metadata has no entry for is no use for parsing.
        region
            .metadata()
            .map(|_| region)
            .ok_or_else(|| IdentifierError::Region(s.to_string()))
    }
}

impl Region {
    fn metadata(&self) -> Option<&'static phonenumber::Metadata> {
        phonenumber::metadata::DATABASE.by_id(self.0.as_ref())
    }

    /// The ISO 3166 code (`GB`).
    pub fn code(&self) -> &str {
        self.0.as_ref()
    }

    /// The international calling code (`44`).
    pub fn calling_code(&self) -> u16 {
        self.metadata().map_or(0, |m| m.country_code())
    }

    /// The national (trunk) prefix dialled before national numbers (`0`),
    /// if the region has one.
    pub fn trunk_prefix(&self) -> Option<&'static str> {
        self.metadata().and_then(|m| m.national_prefix())
    }
}

thread_local! {
    static ISOLATED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the current thread is inside an isolated parser call, whose panic
/// is expected and handled: a panic hook should stay silent then (the panic
/// message may quote the input).
pub fn in_isolated_parse() -> bool {
    ISOLATED.with(|q| q.get())
}

/// Normalise an email address.
pub fn normalise_email(raw: &str) -> Option<String> {
    let s = raw.trim();
    if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = s.rsplit_once('@')?;
    if local.is_empty() || local.len() > 64 || domain.is_empty() || local.contains('@') {
        return None;
    }
    let domain = idna::domain_to_ascii(domain).ok()?;
    if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
        return None;
    }
    Some(format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// The folded form of a normalised email, for matching and blind indexes.
pub fn fold_email(normalised: &str) -> String {
    normalised.to_lowercase()
}

/// Normalise a phone number to E.164; `Err` says why, without the number.
pub fn normalise_phone(raw: &str, region: Option<Region>) -> Result<String, String> {
    let mut s = raw.trim();
    if let Some(rest) = s.strip_prefix("tel:") {
        s = rest;
    }
    if s.is_empty() || s.len() > 40 {
        return Err("is empty or too long".into());
    }
    let allowed = |c: char| c.is_ascii_digit() || " +-().x/".contains(c);
    if !s.chars().all(allowed) {
        return Err("has characters a phone number cannot have".into());
    }
    let owned;
    if let Some(rest) = s.strip_prefix("00") {
        owned = format!("+{rest}");
        s = &owned;
    }
    if !s.starts_with('+') && region.is_none() {
        return Err("is national: give it in international form (+33...) or set a region".into());
    }
    let input = s.to_string();
    let region = region.map(|r| r.0);
    ISOLATED.with(|q| q.set(true));
    let parsed = std::panic::catch_unwind(move || phonenumber::parse(region, input));
    ISOLATED.with(|q| q.set(false));
    let parsed = parsed
        .map_err(|_| "could not be parsed".to_string())?
        .map_err(|_| "is not a phone number".to_string())?;
    if !phonenumber::is_valid(&parsed) {
        return Err("is not a valid number for its country".into());
    }
    Ok(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// What the operator (or an API caller, or a conformance fixture) gave to
/// identify a person, before normalisation. Personal data: its `Debug`
/// shows counts only.
#[derive(Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Identifiers {
    /// Email addresses.
    pub emails: Vec<String>,
    /// Phone numbers, international or national.
    pub phones: Vec<String>,
    /// Full names (hints only).
    pub names: Vec<String>,
    /// `namespace:id` pairs.
    pub external_ids: Vec<String>,
}

impl std::fmt::Debug for Identifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Identifiers {{ {} emails, {} phones, {} names, {} external ids }}",
            self.emails.len(),
            self.phones.len(),
            self.names.len(),
            self.external_ids.len()
        )
    }
}

impl Identifiers {
    /// Normalise them into a [`Subject`], reading national phone numbers in
    /// `region`.
    pub fn normalise(&self, region: Option<Region>) -> Result<Subject, IdentifierError> {
        normalise(
            &self.emails,
            &self.phones,
            &self.names,
            &self.external_ids,
            region,
        )
    }
}

/// Normalise everything the operator gave into a [`Subject`] (duplicates
/// removed, order kept).
pub fn normalise(
    emails: &[String],
    phones: &[String],
    names: &[String],
    external_ids: &[String],
    region: Option<Region>,
) -> Result<Subject, IdentifierError> {
    let mut subject = Subject::default();
    for (i, e) in emails.iter().enumerate() {
        let n = normalise_email(e).ok_or(IdentifierError::Email(Ordinal(i + 1)))?;
        if !subject
            .emails
            .iter()
            .any(|x| fold_email(x) == fold_email(&n))
        {
            subject.emails.push(n);
        }
    }
    for (i, p) in phones.iter().enumerate() {
        let n = normalise_phone(p, region)
            .map_err(|why| IdentifierError::Phone(Ordinal(i + 1), why))?;
        if !subject.phones.contains(&n) {
            subject.phones.push(n);
        }
    }
    for name in names {
        let n = name.split_whitespace().collect::<Vec<_>>().join(" ");
        if !n.is_empty() && !subject.names.contains(&n) {
            subject.names.push(n);
        }
    }
    for (i, x) in external_ids.iter().enumerate() {
        let (namespace, id) = x
            .split_once(':')
            .filter(|(ns, id)| !ns.trim().is_empty() && !id.trim().is_empty())
            .ok_or(IdentifierError::ExternalId(Ordinal(i + 1)))?;
        let e = ExternalId {
            namespace: namespace.trim().to_string(),
            id: id.trim().to_string(),
        };
        if !subject.external_ids.contains(&e) {
            subject.external_ids.push(e);
        }
    }
    if subject.is_unsearchable() {
        return Err(IdentifierError::NothingToSearch);
    }
    Ok(subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fr() -> Option<Region> {
        Some("fr".parse().unwrap())
    }

    #[test]
    fn emails_keep_the_local_part_and_normalise_the_domain() {
        assert_eq!(
            normalise_email("  Ada.L+calls@Example.COM "),
            Some("Ada.L+calls@example.com".into())
        );
        assert_eq!(
            normalise_email("jo@bücher.de"),
            Some("jo@xn--bcher-kva.de".into())
        );
        assert_eq!(fold_email("Ada@example.com"), "ada@example.com");
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@localhost",
            "a b@example.com",
            "ada@exa mple.com",
        ] {
            assert_eq!(normalise_email(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn phones_become_e164_from_every_usual_form() {
        for raw in [
            "+33 6 12 34 56 78",
            "0033612345678",
            "06 12 34 56 78",
            "tel:+33-6-12-34-56-78",
            "(06) 12.34.56.78",
        ] {
            assert_eq!(
                normalise_phone(raw, fr()).as_deref(),
                Ok("+33612345678"),
                "{raw}"
            );
        }
        assert_eq!(
            normalise_phone("+44 20 7946 0958", fr()).as_deref(),
            Ok("+442079460958")
        );
        assert!(
            normalise_phone("06 12 34 56 78", None)
                .unwrap_err()
                .contains("international form")
        );
        assert!(normalise_phone("+33 1", fr()).is_err());
        assert!(normalise_phone("call me", fr()).is_err());
        assert!(normalise_phone(&"9".repeat(100), fr()).is_err());
    }

    #[test]
    fn inputs_that_made_the_parser_panic_are_contained() {
        // phonenumber issues #32, #43, #69: malformed input used to panic.
        for raw in [
            "003-836-4618x3001",
            "+0000000000000",
            "+1 x",
            "+++",
            "0x",
            "+80012345678901234567",
        ] {
            // Contained, and refused: none of them is a number.
            let e = normalise_phone(raw, fr()).unwrap_err();
            assert!(
                [
                    "could not be parsed",
                    "is not a phone number",
                    "is not a valid number for its country",
                    "has characters a phone number cannot have",
                ]
                .contains(&e.as_str()),
                "{raw}: {e}"
            );
        }
    }

    #[test]
    fn subjects_dedupe_and_errors_do_not_echo_values() {
        let s = normalise(
            &["ada@example.com".into(), "ADA@EXAMPLE.com".into()],
            &["+33612345678".into(), "06 12 34 56 78".into()],
            &["  Ada   Lovelace ".into()],
            &["crm.contact:1042".into()],
            fr(),
        )
        .unwrap();
        assert_eq!(s.emails, vec!["ada@example.com".to_string()]);
        assert_eq!(s.phones, vec!["+33612345678".to_string()]);
        assert_eq!(s.names, vec!["Ada Lovelace".to_string()]);
        assert_eq!(s.external_ids[0].namespace, "crm.contact");

        let e = normalise(
            &[],
            &["+33612345678".into(), "secret-555".into()],
            &[],
            &[],
            fr(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the 2nd phone number has characters a phone number cannot have"
        );
        let e = normalise(&[], &[], &["Ada".into()], &[], fr()).unwrap_err();
        assert_eq!(e, IdentifierError::NothingToSearch);
        assert!("ZZ".parse::<Region>().is_err());
        assert_eq!(Ordinal(11).to_string(), "11th");
        assert_eq!(Ordinal(22).to_string(), "22nd");
    }
}
