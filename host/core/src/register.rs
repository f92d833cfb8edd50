//! The controller's register of processing (`[register]` in oubli.toml, or
//! the file its `file` names): what the controller, not a connector's
//! vendor, says about each processing activity. Art. 13, 14, 15 and 30 GDPR
//! are all answered from it: purposes and legal basis, categories of
//! subjects and of data, recipients and transfers, retention, sources,
//! automated decisions, in every language the subject may read.
//!
//! Connector manifests are where a register starts (`oubli register
//! init`), never what it says: a category no activity covers, a processor
//! with no transfer statement, a text missing in one language are gaps that
//! [`Register::gaps`] names, and texts built with gaps are refused unless
//! the operator asks for them anyway, and then say so.
//!
//! Parsing is strict, like the rest of the configuration: an unknown key, a
//! language code that is not one of ours, a legal basis that is not one of
//! Art. 6(1)'s, a country that is not an ISO 3166 code is an error naming
//! the key. Completeness is not checked at parse time: a register being
//! written is still a register.

use crate::lang::Lang;
use oubli_model::DataCategory;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// A text in each language it was written in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Text(pub BTreeMap<&'static str, String>);

impl Text {
    /// The text in `lang`, if written.
    pub fn get(&self, lang: Lang) -> Option<&str> {
        self.0.get(lang.code()).map(String::as_str)
    }

    /// A text in English only (what `register init` starts from).
    pub fn en(s: impl Into<String>) -> Text {
        Text(BTreeMap::from([("en", s.into())]))
    }
}

/// A legal basis of Art. 6(1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegalBasis {
    /// (a) consent.
    Consent,
    /// (b) a contract with the subject, or steps before one.
    Contract,
    /// (c) a legal obligation of the controller.
    LegalObligation,
    /// (d) vital interests.
    VitalInterests,
    /// (e) a task in the public interest.
    PublicTask,
    /// (f) legitimate interests (stated in `legitimate_interests`).
    LegitimateInterests,
}

impl LegalBasis {
    /// Its letter in Art. 6(1).
    pub fn letter(self) -> char {
        match self {
            LegalBasis::Consent => 'a',
            LegalBasis::Contract => 'b',
            LegalBasis::LegalObligation => 'c',
            LegalBasis::VitalInterests => 'd',
            LegalBasis::PublicTask => 'e',
            LegalBasis::LegitimateInterests => 'f',
        }
    }

    /// Whether Art. 20 applies to data processed on it (Art. 20(1)(a)).
    pub fn portable(self) -> bool {
        matches!(self, LegalBasis::Consent | LegalBasis::Contract)
    }

    /// Whether the subject may object to processing on it (Art. 21(1)).
    pub fn objectable(self) -> bool {
        matches!(
            self,
            LegalBasis::PublicTask | LegalBasis::LegitimateInterests
        )
    }
}

/// What a recipient is to the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Processes on the controller's behalf (Art. 28).
    Processor,
    /// A controller in its own right.
    Controller,
    /// Decides purposes and means with us (Art. 26).
    JointController,
}

/// The safeguard for a transfer outside the EEA (Art. 44-49).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Safeguard {
    /// An adequacy decision (Art. 45).
    Adequacy,
    /// The EU-US Data Privacy Framework (an adequacy decision, Art. 45).
    Dpf,
    /// Standard contractual clauses (Art. 46(2)(c)).
    Scc,
    /// Binding corporate rules (Art. 47).
    Bcr,
}

/// One recipient of an activity's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recipient {
    /// Who.
    pub name: String,
    /// What it is to the controller.
    pub role: Role,
    /// Where it processes the data (ISO 3166 alpha-2).
    pub country: Option<String>,
    /// The safeguard, for a country outside the EEA.
    pub safeguard: Option<Safeguard>,
    /// The systems whose data it receives (all of the activity's when
    /// empty).
    pub systems: Vec<String>,
}

impl Recipient {
    /// Whether sending it data is a transfer to a third country.
    pub fn transfer(&self) -> bool {
        self.country.as_deref().is_some_and(|c| !in_eea(c))
    }
}

/// A category of data an activity processes: a connector's category in a
/// system, in the controller's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataEntry {
    /// The system (a `[systems.NAME]`).
    pub system: String,
    /// The connector's category name.
    pub category: String,
    /// What the subject is told it is.
    pub label: Text,
    /// How long it is kept, or the criteria.
    pub retention: Text,
    /// Provided by the subject or observed from what they did (Art. 20),
    /// when the controller says so; the connector's flag otherwise.
    pub provided: Option<bool>,
}

/// One processing activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// A stable id (`customer-service`).
    pub id: String,
    /// Whether a person reviewed it (`register init` writes `false`).
    pub reviewed: bool,
    /// Its name.
    pub name: Text,
    /// Why.
    pub purposes: Text,
    /// On what ground (Art. 6(1)).
    pub legal_basis: Option<LegalBasis>,
    /// The interests pursued, where the basis is (f).
    pub legitimate_interests: Text,
    /// Whether giving the data is a statutory or contractual requirement
    /// and what follows from not giving it (Art. 13(2)(e)).
    pub requirement: Text,
    /// Categories of data subjects (Art. 30(1)(c)).
    pub subjects: Text,
    /// Where the data comes from (Art. 14(2)(f), 15(1)(g)).
    pub sources: Text,
    /// Automated decisions, profiling included: whether any, their logic,
    /// significance and consequences (Art. 13(2)(f), 15(1)(h)).
    pub automated_decisions: Text,
    /// How to object, where the subject may (Art. 21(4)).
    pub objection: Text,
    /// The categories of data.
    pub data: Vec<DataEntry>,
    /// Who receives them.
    pub recipients: Vec<Recipient>,
}

impl Activity {
    /// Whether this activity's data in `system` is portable under Art. 20:
    /// its basis is consent or contract, and the category is one the
    /// subject provided (the register's word, else the connector's).
    pub fn portable(&self, entry: &DataEntry, connector: Option<&DataCategory>) -> bool {
        self.legal_basis.is_some_and(LegalBasis::portable)
            && entry
                .provided
                .or(connector.map(|c| c.portable))
                .unwrap_or(false)
    }
}

/// The register.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Register {
    /// The languages every text must be written in (`languages`; default
    /// every language oubli speaks).
    pub languages: Vec<Lang>,
    /// Where the full privacy notice is published, per language.
    pub notice_url: Text,
    /// The controller's representative in the Union (Art. 27), if any.
    pub representative: Option<String>,
    /// Joint controllers (Art. 26), if any.
    pub joint_controllers: Vec<String>,
    /// The controller's own technical and organisational measures
    /// (Art. 30(1)(g)), beside the ones oubli applies.
    pub security: Text,
    /// Why calls are recorded, said at the start of a recorded call.
    pub recording: Text,
    /// The activities.
    pub activities: Vec<Activity>,
    /// Field labels per system: `labels.SYSTEM."field.name"`.
    pub labels: BTreeMap<String, BTreeMap<String, Text>>,
    /// Record kinds' names per system: `kinds.SYSTEM.conversation`.
    pub kinds: BTreeMap<String, BTreeMap<String, Text>>,
    /// The privacy center's mails in the controller's words (`[mails]`),
    /// per language; oubli's own words where a template is not written.
    pub mails: Mails,
}

/// The privacy center's mail templates (`[register.mails]`): each a text
/// per language with `{placeholders}`, checked when the register is read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Mails {
    /// The code's mail: `{code}` (required), `{minutes}`, `{controller}`.
    pub code: Text,
    /// The mail when a request is filed: `{reference}` and `{link}`
    /// (required), `{right}`, `{due}`, `{controller}`.
    pub filed: Text,
    /// The mail when a request changes state: `{reference}` and `{state}`
    /// (required), `{due}`, `{controller}`.
    pub changed: Text,
}

/// The placeholders each template may use, and those it must.
pub const MAIL_PLACEHOLDERS: [(&str, &[&str], &[&str]); 3] = [
    ("code", &["code", "minutes", "controller"], &["code"]),
    (
        "filed",
        &["reference", "link", "right", "due", "controller"],
        &["reference", "link"],
    ),
    (
        "changed",
        &["reference", "state", "due", "controller"],
        &["reference", "state"],
    ),
];

/// `template` with each `{name}` replaced by its value in `values`.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// One thing the register does not say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// Where (`register.activities.customer-service.legal_basis`).
    pub key: String,
    /// What is missing.
    pub message: String,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The EEA's members (ISO 3166 alpha-2): a recipient elsewhere is a
/// transfer.
const EEA: [&str; 30] = [
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
];

/// Whether `country` is in the EEA.
pub fn in_eea(country: &str) -> bool {
    EEA.contains(&country)
}

// ---- parsing ---------------------------------------------------------

/// `[register]` as written: its content, inline or as the whole of the
/// file that `file` names.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBody {
    pub(crate) file: Option<std::path::PathBuf>,
    languages: Option<Vec<String>>,
    #[serde(default)]
    notice_url: RawText,
    representative: Option<String>,
    #[serde(default)]
    joint_controllers: Vec<String>,
    #[serde(default)]
    security: RawText,
    #[serde(default)]
    recording: RawText,
    #[serde(default)]
    activities: Vec<RawActivity>,
    #[serde(default)]
    labels: BTreeMap<String, BTreeMap<String, RawText>>,
    #[serde(default)]
    kinds: BTreeMap<String, BTreeMap<String, RawText>>,
    #[serde(default)]
    mails: RawMails,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMails {
    #[serde(default)]
    code: RawText,
    #[serde(default)]
    filed: RawText,
    #[serde(default)]
    changed: RawText,
}

impl RawBody {
    /// Whether anything was written.
    pub(crate) fn is_empty(&self) -> bool {
        self.languages.is_none()
            && self.notice_url.0.is_empty()
            && self.representative.is_none()
            && self.joint_controllers.is_empty()
            && self.security.0.is_empty()
            && self.recording.0.is_empty()
            && self.activities.is_empty()
            && self.labels.is_empty()
            && self.kinds.is_empty()
            && self.mails.code.0.is_empty()
            && self.mails.filed.0.is_empty()
            && self.mails.changed.0.is_empty()
    }
}

#[derive(Deserialize, Default)]
#[serde(transparent)]
struct RawText(BTreeMap<String, String>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActivity {
    id: String,
    #[serde(default)]
    reviewed: bool,
    #[serde(default)]
    name: RawText,
    #[serde(default)]
    purposes: RawText,
    legal_basis: Option<LegalBasis>,
    #[serde(default)]
    legitimate_interests: RawText,
    #[serde(default)]
    requirement: RawText,
    #[serde(default)]
    subjects: RawText,
    #[serde(default)]
    sources: RawText,
    #[serde(default)]
    automated_decisions: RawText,
    #[serde(default)]
    objection: RawText,
    #[serde(default)]
    data: Vec<RawData>,
    #[serde(default)]
    recipients: Vec<RawRecipient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    system: String,
    category: String,
    #[serde(default)]
    label: RawText,
    #[serde(default)]
    retention: RawText,
    provided: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipient {
    name: String,
    role: Role,
    country: Option<String>,
    safeguard: Option<Safeguard>,
    #[serde(default)]
    systems: Vec<String>,
}

/// The longest text a register holds.
const MAX_TEXT: usize = 4000;

fn text(key: &str, raw: RawText) -> Result<Text, (String, String)> {
    let mut out = BTreeMap::new();
    for (code, value) in raw.0 {
        let Some(lang) = Lang::parse(&code) else {
            return Err((
                format!("{key}.{code}"),
                format!("languages are {}", Lang::ALL.map(|l| l.code()).join(", ")),
            ));
        };
        if value.trim().is_empty() || value.len() > MAX_TEXT {
            return Err((
                format!("{key}.{code}"),
                format!("a text is 1 to {MAX_TEXT} bytes"),
            ));
        }
        if value.chars().any(|c| c.is_control() && c != '\n') {
            return Err((
                format!("{key}.{code}"),
                "a text has no control characters but newlines".into(),
            ));
        }
        out.insert(lang.code(), value);
    }
    Ok(Text(out))
}

fn id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn country(key: &str, c: Option<String>) -> Result<Option<String>, (String, String)> {
    match c {
        None => Ok(None),
        Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) => Ok(Some(c)),
        Some(_) => Err((
            key.to_string(),
            "a country is an ISO 3166 alpha-2 code such as FR or US".into(),
        )),
    }
}

/// Read a register; `systems` are the configured systems' names. An error
/// is (key under `register`, message).
pub(crate) fn parse(raw: RawBody, systems: &[&str]) -> Result<Register, (String, String)> {
    let languages = match raw.languages {
        None => Lang::ALL.to_vec(),
        Some(codes) => {
            let mut out = Vec::new();
            for c in codes {
                let lang = Lang::parse(&c).ok_or_else(|| {
                    (
                        "languages".to_string(),
                        format!("languages are {}", Lang::ALL.map(|l| l.code()).join(", ")),
                    )
                })?;
                if !out.contains(&lang) {
                    out.push(lang);
                }
            }
            if out.is_empty() {
                return Err(("languages".into(), "name at least one language".into()));
            }
            out
        }
    };
    let mut activities = Vec::new();
    for a in raw.activities {
        if !id_ok(&a.id) {
            return Err((
                "activities".into(),
                "an activity's id is 1 to 64 lowercase letters, digits, dashes and underscores"
                    .into(),
            ));
        }
        if activities.iter().any(|b: &Activity| b.id == a.id) {
            return Err((
                format!("activities.{}", a.id),
                "two activities have this id".into(),
            ));
        }
        let k = |f: &str| format!("activities.{}.{f}", a.id);
        let mut data = Vec::new();
        for (i, d) in a.data.into_iter().enumerate() {
            let dk = |f: &str| format!("activities.{}.data[{i}].{f}", a.id);
            if !systems.contains(&d.system.as_str()) {
                return Err((dk("system"), "no such system in [systems]".into()));
            }
            if d.category.is_empty() || d.category.len() > 100 {
                return Err((dk("category"), "a category is 1 to 100 characters".into()));
            }
            data.push(DataEntry {
                system: d.system,
                label: text(&dk("label"), d.label)?,
                retention: text(&dk("retention"), d.retention)?,
                category: d.category,
                provided: d.provided,
            });
        }
        let mut recipients = Vec::new();
        for (i, r) in a.recipients.into_iter().enumerate() {
            let rk = |f: &str| format!("activities.{}.recipients[{i}].{f}", a.id);
            if r.name.trim().is_empty() || r.name.len() > 200 {
                return Err((rk("name"), "a name is 1 to 200 characters".into()));
            }
            for s in &r.systems {
                if !systems.contains(&s.as_str()) {
                    return Err((rk("systems"), "no such system in [systems]".into()));
                }
            }
            recipients.push(Recipient {
                country: country(&rk("country"), r.country)?,
                name: r.name,
                role: r.role,
                safeguard: r.safeguard,
                systems: r.systems,
            });
        }
        activities.push(Activity {
            reviewed: a.reviewed,
            name: text(&k("name"), a.name)?,
            purposes: text(&k("purposes"), a.purposes)?,
            legal_basis: a.legal_basis,
            legitimate_interests: text(&k("legitimate_interests"), a.legitimate_interests)?,
            requirement: text(&k("requirement"), a.requirement)?,
            subjects: text(&k("subjects"), a.subjects)?,
            sources: text(&k("sources"), a.sources)?,
            automated_decisions: text(&k("automated_decisions"), a.automated_decisions)?,
            objection: text(&k("objection"), a.objection)?,
            data,
            recipients,
            id: a.id,
        });
    }
    let names = |table: &str, raw: BTreeMap<String, BTreeMap<String, RawText>>| {
        let mut out = BTreeMap::new();
        for (system, fields) in raw {
            if !systems.contains(&system.as_str()) {
                return Err((
                    format!("{table}.{system}"),
                    "no such system in [systems]".to_string(),
                ));
            }
            let mut names = BTreeMap::new();
            for (field, t) in fields {
                let t = text(&format!("{table}.{system}.{field}"), t)?;
                names.insert(field, t);
            }
            out.insert(system, names);
        }
        Ok(out)
    };
    let labels = names("labels", raw.labels)?;
    let kinds = names("kinds", raw.kinds)?;
    let template = |name: &str, raw: RawText| -> Result<Text, (String, String)> {
        let key = format!("mails.{name}");
        let t = text(&key, raw)?;
        let (_, allowed, required) = MAIL_PLACEHOLDERS
            .iter()
            .find(|(n, _, _)| *n == name)
            .expect("a template's placeholders");
        for (code, body) in &t.0 {
            for need in *required {
                if !body.contains(&format!("{{{need}}}")) {
                    return Err((format!("{key}.{code}"), format!("must say {{{need}}}")));
                }
            }
            let mut rest = body.as_str();
            while let Some(open) = rest.find('{') {
                let after = &rest[open + 1..];
                let Some(close) = after.find('}') else {
                    return Err((format!("{key}.{code}"), "a { without its }".into()));
                };
                let name = &after[..close];
                if !allowed.contains(&name) {
                    return Err((
                        format!("{key}.{code}"),
                        format!(
                            "{{{name}}} is not a placeholder here (those are {})",
                            allowed
                                .iter()
                                .map(|a| format!("{{{a}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                rest = &after[close + 1..];
            }
        }
        Ok(t)
    };
    let mails = Mails {
        code: template("code", raw.mails.code)?,
        filed: template("filed", raw.mails.filed)?,
        changed: template("changed", raw.mails.changed)?,
    };
    Ok(Register {
        mails,
        languages,
        notice_url: text("notice_url", raw.notice_url)?,
        representative: raw.representative,
        joint_controllers: raw.joint_controllers,
        security: text("security", raw.security)?,
        recording: text("recording", raw.recording)?,
        activities,
        labels,
        kinds,
    })
}

// ---- completeness ----------------------------------------------------

impl Register {
    /// Every gap, given each enabled system's connector categories (`None`
    /// where the connector is not loaded: its categories cannot be
    /// checked).
    pub fn gaps(&self, systems: &BTreeMap<String, Option<Vec<DataCategory>>>) -> Vec<Gap> {
        let mut gaps = Vec::new();
        let mut gap = |key: String, message: &str| {
            gaps.push(Gap {
                key: format!("register.{key}"),
                message: message.to_string(),
            })
        };
        let langs = &self.languages;
        let need = |key: String, t: &Text, what: &str, gap: &mut dyn FnMut(String, &str)| {
            if t.0.is_empty() {
                gap(key, &format!("{what} is not stated"));
                return;
            }
            for l in langs {
                match t.get(*l) {
                    None => gap(
                        format!("{key}.{}", l.code()),
                        &format!("{what} is not written in {}", l.name()),
                    ),
                    Some(text) if *l == Lang::Fr => {
                        if let Err(e) = crate::lang::french_typography(text) {
                            gap(format!("{key}.fr"), &e);
                        }
                    }
                    Some(_) => {}
                }
            }
        };
        need(
            "notice_url".into(),
            &self.notice_url,
            "where the full notice is published",
            &mut gap,
        );
        need(
            "recording".into(),
            &self.recording,
            "why calls are recorded",
            &mut gap,
        );
        if self.activities.is_empty() {
            gap("activities".into(), "no processing activity is described");
        }
        for a in &self.activities {
            let k = |f: &str| format!("activities.{}.{f}", a.id);
            if !a.reviewed {
                gap(
                    k("reviewed"),
                    "written by `register init` from the connectors' defaults: review it, then set reviewed = true",
                );
            }
            need(k("name"), &a.name, "its name", &mut gap);
            need(k("purposes"), &a.purposes, "its purposes", &mut gap);
            match a.legal_basis {
                None => gap(
                    k("legal_basis"),
                    "its legal basis (Art. 6(1)) is not stated",
                ),
                Some(LegalBasis::LegitimateInterests) => need(
                    k("legitimate_interests"),
                    &a.legitimate_interests,
                    "the legitimate interests pursued",
                    &mut gap,
                ),
                Some(_) => {}
            }
            if a.legal_basis.is_some_and(LegalBasis::objectable) {
                need(k("objection"), &a.objection, "how to object", &mut gap);
            }
            need(
                k("requirement"),
                &a.requirement,
                "whether giving the data is required, and what follows if not",
                &mut gap,
            );
            need(
                k("subjects"),
                &a.subjects,
                "the categories of data subjects",
                &mut gap,
            );
            need(
                k("sources"),
                &a.sources,
                "where the data comes from",
                &mut gap,
            );
            need(
                k("automated_decisions"),
                &a.automated_decisions,
                "whether automated decisions are taken (say so when none are)",
                &mut gap,
            );
            if a.data.is_empty() {
                gap(k("data"), "no category of data is named");
            }
            for d in &a.data {
                let dk =
                    |f: &str| format!("activities.{}.data.{}/{}.{f}", a.id, d.system, d.category);
                need(dk("label"), &d.label, "what the category is", &mut gap);
                need(
                    dk("retention"),
                    &d.retention,
                    "how long it is kept",
                    &mut gap,
                );
                if let Some(Some(cats)) = systems.get(&d.system)
                    && !cats.iter().any(|c| c.name == d.category)
                {
                    gap(
                        dk("category"),
                        "the system's connector has no such category",
                    );
                }
            }
            for (i, r) in a.recipients.iter().enumerate() {
                let rk = |f: &str| format!("activities.{}.recipients[{i}].{f}", a.id);
                match &r.country {
                    None => gap(
                        rk("country"),
                        "where the recipient processes the data is not stated (a transfer outside the EEA needs a safeguard)",
                    ),
                    Some(_) if r.transfer() && r.safeguard.is_none() => gap(
                        rk("safeguard"),
                        "a transfer outside the EEA with no safeguard (adequacy, dpf, scc, bcr)",
                    ),
                    Some(_) => {}
                }
            }
        }
        for (system, cats) in systems {
            let Some(cats) = cats else { continue };
            for c in cats {
                let covered = self.activities.iter().any(|a| {
                    a.data
                        .iter()
                        .any(|d| &d.system == system && d.category == c.name)
                });
                if !covered {
                    gaps.push(Gap {
                        key: "register.activities".to_string(),
                        message: format!(
                            "no activity covers the category {:?} of system {system}",
                            oubli_model::for_display(&c.name, 100)
                        ),
                    });
                }
            }
        }
        for (table, names) in [("labels", &self.labels), ("kinds", &self.kinds)] {
            for (system, fields) in names {
                for (field, t) in fields {
                    for l in langs {
                        if t.get(*l).is_none() {
                            gaps.push(Gap {
                                key: format!("register.{table}.{system}.{field}.{}", l.code()),
                                message: format!("the name is not written in {}", l.name()),
                            });
                        }
                    }
                }
            }
        }
        gaps
    }

    /// The categories of `system` that portability covers: those an
    /// activity on consent or contract processes and says (or whose
    /// connector says) the subject provided.
    pub fn portable(
        &self,
        system: &str,
        categories: &[DataCategory],
    ) -> std::collections::BTreeSet<String> {
        self.activities
            .iter()
            .flat_map(|a| {
                a.data
                    .iter()
                    .filter(move |d| d.system == system)
                    .filter(move |d| {
                        a.portable(d, categories.iter().find(|c| c.name == d.category))
                    })
                    .map(|d| d.category.clone())
            })
            .collect()
    }

    /// The name of record kind `kind` in `system`, in `lang`, if the
    /// register has one.
    pub fn kind(&self, system: &str, kind: &str, lang: Lang) -> Option<&str> {
        self.kinds.get(system)?.get(kind)?.get(lang)
    }

    /// The label of `field` in `system`, in `lang`, if the register has one.
    pub fn label(&self, system: &str, field: &str, lang: Lang) -> Option<&str> {
        self.labels.get(system)?.get(field)?.get(lang)
    }

    /// A starting register from the connectors' manifests: one activity
    /// per system, its texts in English as the vendor wrote them, nothing
    /// the vendor cannot know (legal basis, countries, other languages),
    /// and marked for review.
    pub fn init(systems: &[(String, Option<String>, Vec<DataCategory>)]) -> String {
        let mut t = String::from(
            "# The register of processing: what the controller says about each\n\
             # processing activity (Art. 13, 14, 15, 30 GDPR). Written by\n\
             # `oubli register init` from the connectors' defaults: every text\n\
             # below is the vendor's, in English only. Review each activity,\n\
             # state what the vendor cannot know (legal basis, recipients'\n\
             # countries and safeguards, French texts), set reviewed = true,\n\
             # and run `oubli register check` until it names no gap.\n\n\
             languages = [\"en\", \"fr\"]\n\
             # notice_url = { en = \"https://…/privacy\", fr = \"https://…/confidentialite\" }\n\
             # recording = { en = \"Calls are recorded to …\" }\n\n",
        );
        for (system, display, cats) in systems {
            let _ = writeln!(
                t,
                "[[activities]]\nid = {}\nreviewed = false",
                toml_str(system)
            );
            let _ = writeln!(
                t,
                "name = {{ en = {} }}",
                toml_str(display.as_deref().unwrap_or(system))
            );
            let mut purposes: Vec<&str> = cats
                .iter()
                .flat_map(|c| c.purposes.iter().map(String::as_str))
                .collect();
            purposes.sort();
            purposes.dedup();
            let _ = writeln!(
                t,
                "purposes = {{ en = {} }}",
                toml_str(&purposes.join("; "))
            );
            let _ = writeln!(
                t,
                "# legal_basis = \"contract\"  # consent, contract, legal-obligation, vital-interests, public-task, legitimate-interests\n\
                 # subjects = {{ en = \"…\" }}\n# sources = {{ en = \"…\" }}\n# requirement = {{ en = \"…\" }}\n# automated_decisions = {{ en = \"None.\" }}\n"
            );
            for c in cats {
                let _ = writeln!(
                    t,
                    "[[activities.data]]\nsystem = {}\ncategory = {}\nlabel = {{ en = {} }}\nretention = {{ en = {} }}\nprovided = {}\n",
                    toml_str(system),
                    toml_str(&c.name),
                    toml_str(&c.description),
                    toml_str(&c.retention),
                    c.portable
                );
            }
            let mut recipients: Vec<&str> = cats
                .iter()
                .flat_map(|c| c.recipients.iter().map(String::as_str))
                .collect();
            recipients.sort();
            recipients.dedup();
            for r in recipients {
                let _ = writeln!(
                    t,
                    "[[activities.recipients]]\nname = {}\nrole = \"processor\"\n# country = \"US\"\n# safeguard = \"dpf\"\n",
                    toml_str(r)
                );
            }
        }
        t
    }
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {

    #[test]
    fn mail_templates_name_only_their_placeholders() {
        let parse_mails = |mails: &str| {
            let raw: RawBody = toml::from_str(&format!("[mails]\n{mails}")).unwrap();
            super::parse(raw, &[]).map(|r| r.mails)
        };
        let ok = parse_mails(
            "code = { en = \"Code: {code} ({minutes} min)\", fr = \"Code\u{a0}: {code}\" }\n",
        )
        .unwrap();
        assert_eq!(
            fill(
                ok.code.get(Lang::En).unwrap(),
                &[("code", "123456"), ("minutes", "10")]
            ),
            "Code: 123456 (10 min)"
        );
        for (mails, key, why) in [
            (
                "code = { en = \"no code here\" }",
                "mails.code.en",
                "{code}",
            ),
            (
                "filed = { en = \"{reference} {link} {secret}\" }",
                "mails.filed.en",
                "{secret}",
            ),
            (
                "changed = { en = \"{reference} {state} {due\" }",
                "mails.changed.en",
                "without",
            ),
            (
                "changed = { de = \"{reference} {state}\" }",
                "mails.changed.de",
                "languages",
            ),
        ] {
            let (k, m) = parse_mails(&format!("{mails}\n")).unwrap_err();
            assert_eq!(k, key, "{mails}");
            assert!(m.contains(why), "{mails}: {m}");
        }
    }

    use super::*;
    use crate::config::Config;
    use std::path::Path;

    const SYSTEMS: &str =
        "[systems.crm]\nconnector = \"crm.wasm\"\n[systems.mail]\nconnector = \"mail.wasm\"\n";

    fn parse(register: &str) -> Result<Option<Register>, String> {
        Config::parse(Path::new("oubli.toml"), &format!("{SYSTEMS}{register}"))
            .map(|c| c.register)
            .map_err(|e| e.to_string())
    }

    fn cats(names: &[&str]) -> Option<Vec<DataCategory>> {
        Some(
            names
                .iter()
                .map(|n| DataCategory {
                    name: n.to_string(),
                    description: format!("{n} held"),
                    purposes: vec!["customer service".into()],
                    retention: "3 years".into(),
                    recipients: vec!["HubSpot, Inc. (processor)".into()],
                    portable: true,
                })
                .collect(),
        )
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                "[[register.activities]]\nid = \"a\"\nlegal_basis = \"because\"\n",
                "oubli.toml:",
            ),
            (
                "[[register.activities]]\nid = \"a\"\nname = { en = \"A\", de = \"A\" }\n",
                "register.activities.a.name.de: languages are en, fr",
            ),
            (
                "[[register.activities]]\nid = \"a\"\n[[register.activities.data]]\nsystem = \"erp\"\ncategory = \"x\"\n",
                "register.activities.a.data[0].system: no such system",
            ),
            (
                "[[register.activities]]\nid = \"a\"\n[[register.activities.recipients]]\nname = \"X\"\nrole = \"processor\"\ncountry = \"usa\"\n",
                "register.activities.a.recipients[0].country: a country is an ISO 3166",
            ),
            (
                "[[register.activities]]\nid = \"a\"\n[[register.activities]]\nid = \"a\"\n",
                "register.activities.a: two activities have this id",
            ),
            (
                "[[register.activities]]\nid = \"a\"\nhue = 1\n",
                "unknown field `hue`",
            ),
            (
                "[register]\nfile = \"r.toml\"\nlanguages = [\"en\"]\n",
                "register.file: the register is either in its own file",
            ),
            (
                "[register]\nlanguages = [\"en\", \"xx\"]\n",
                "register.languages: languages are en, fr",
            ),
            (
                "[[register.activities]]\nid = \"a\"\npurposes = { en = \"one\\u0007\" }\n",
                "register.activities.a.purposes.en: a text has no control characters",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
        assert_eq!(parse("").unwrap(), None, "no register at all");
    }

    #[test]
    fn a_register_in_its_own_file_is_read_and_its_errors_name_that_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("r.toml"),
            "[[activities]]\nid = \"a\"\nlegal_basis = \"contract\"\n",
        )
        .unwrap();
        let cfg = format!("{SYSTEMS}[register]\nfile = \"r.toml\"\n");
        let c = Config::parse(&dir.path().join("oubli.toml"), &cfg).unwrap();
        assert_eq!(
            c.register.unwrap().activities[0].legal_basis,
            Some(LegalBasis::Contract)
        );
        std::fs::write(
            dir.path().join("r.toml"),
            "[[activities]]\nid = \"a\"\nlegal_basis = 6\n",
        )
        .unwrap();
        let err = Config::parse(&dir.path().join("oubli.toml"), &cfg)
            .unwrap_err()
            .to_string();
        assert!(err.contains("r.toml:3:"), "{err}");
    }

    #[test]
    fn init_starts_from_the_connectors_and_check_names_every_gap() {
        let systems = [
            (
                "crm".to_string(),
                Some("HubSpot CRM".to_string()),
                cats(&["contact-details", "tickets"]).unwrap(),
            ),
            ("mail".to_string(), None, cats(&["correspondence"]).unwrap()),
        ];
        let text = Register::init(&systems);
        let r = parse(&format!(
            "[register]\n{}",
            text.replace("[[activities", "[[register.activities")
                .replace("languages =", "#")
        ))
        .unwrap()
        .unwrap();
        let by_system: BTreeMap<String, Option<Vec<DataCategory>>> = [
            (
                "crm".to_string(),
                cats(&["contact-details", "tickets", "notes"]),
            ),
            ("mail".to_string(), cats(&["correspondence"])),
        ]
        .into();
        let gaps: Vec<String> = r.gaps(&by_system).iter().map(|g| g.to_string()).collect();
        let has = |s: &str| gaps.iter().any(|g| g.contains(s));
        assert!(has("register.activities.crm.reviewed"), "{gaps:#?}");
        assert!(has("register.activities.crm.legal_basis: its legal basis"));
        assert!(has(
            "register.activities.crm.name.fr: its name is not written in French"
        ));
        assert!(has("register.activities.crm.recipients[0].country"));
        assert!(has("register.notice_url"));
        assert!(has("register.recording"));
        assert!(has(
            "no activity covers the category \"notes\" of system crm"
        ));
        assert!(!has("\"tickets\""), "covered by init");
        // The vendor's text is where it starts, in English.
        assert_eq!(
            r.activities[0].data[0].retention.get(Lang::En),
            Some("3 years")
        );
    }

    #[test]
    fn transfers_portability_and_french_typography() {
        let r = parse(
            "[[register.activities]]\nid = \"a\"\nlegal_basis = \"consent\"\npurposes = { en = \"x\", fr = \"vous appeler : plus tard\" }\n\
             [[register.activities.data]]\nsystem = \"crm\"\ncategory = \"contact-details\"\n\
             [[register.activities.data]]\nsystem = \"crm\"\ncategory = \"tickets\"\nprovided = false\n\
             [[register.activities.recipients]]\nname = \"US Inc.\"\nrole = \"processor\"\ncountry = \"US\"\n\
             [[register.activities.recipients]]\nname = \"FR SAS\"\nrole = \"processor\"\ncountry = \"FR\"\n",
        )
        .unwrap()
        .unwrap();
        let gaps: Vec<String> = r
            .gaps(&BTreeMap::new())
            .iter()
            .map(|g| g.to_string())
            .collect();
        assert!(
            gaps.iter().any(|g| g.contains("recipients[0].safeguard")),
            "{gaps:#?}"
        );
        assert!(
            !gaps.iter().any(|g| g.contains("recipients[1]")),
            "France is in the EEA"
        );
        assert!(
            gaps.iter()
                .any(|g| g.contains("purposes.fr") && g.contains("no-break space"))
        );
        let portable = r.portable("crm", &cats(&["contact-details", "tickets"]).unwrap());
        assert_eq!(
            portable.into_iter().collect::<Vec<_>>(),
            ["contact-details"]
        );
        let mut r = r;
        r.activities[0].legal_basis = Some(LegalBasis::LegitimateInterests);
        assert!(
            r.portable("crm", &cats(&["contact-details"]).unwrap())
                .is_empty(),
            "Art. 20(1)(a)"
        );
    }
}
