//! The duties to inform, in the controller's words: the notice given when
//! data is collected (Art. 13 and 14: the script an agent reads or the IVR
//! plays at the start of a recorded call, or the text of an email or web
//! form), the information an access answer carries (Art. 15(1)-(2)), and the
//! record of processing activities (Art. 30(1)), this service's own
//! activity included. All three read the register of processing
//! ([`crate::register`]) and `[controller]`; none invents what they do not
//! say. Where they are silent the text is refused ([`InformError::Incomplete`]
//! names each gap) unless the operator asks for it anyway, and then it says
//! so at its top.
//!
//! A notice is versioned by its SHA-256, so consent evidence can name the
//! exact text a person was given; an incomplete notice's version says it is
//! one, and is refused as consent evidence.

mod words;

use super::Systems;
pub use crate::lang::french_typography;
use crate::lang::{Lang, colon};
use crate::register::{Activity, Gap, LegalBasis, Recipient, Register, Role, Safeguard, Text};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
pub(crate) use words::Words;

/// The channels a notice is given through.
pub const CHANNELS: [&str; 4] = ["call", "ivr", "email", "web"];

/// Why a text cannot be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InformError {
    /// The register does not say everything the text must.
    #[error("the register of processing has {} gap(s), first {}: name them with `oubli register check`, or allow an incomplete text", .0.len(), .0.first().map(|g| g.to_string()).unwrap_or_default())]
    Incomplete(Vec<Gap>),
    /// No such channel.
    #[error("the channel is one of call, ivr, email, web")]
    Channel,
}

/// One item the law asks for, as written for the reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// Where the law asks for it (`13(1)(c)`).
    pub article: &'static str,
    /// Its heading, in the reader's language.
    pub heading: String,
    /// What it says: paragraphs or list entries.
    pub lines: Vec<String>,
}

impl Item {
    /// What follows its heading: the language's colon, nothing after a
    /// question.
    fn colon(&self, lang: Lang) -> &'static str {
        if self.heading.ends_with('?') {
            ""
        } else {
            colon(lang)
        }
    }
}

/// A text made of items: a notice's, an answer's information.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// Its language.
    pub lang: Lang,
    /// What the register does not say (empty: complete).
    pub gaps: Vec<Gap>,
    /// The items, in order.
    pub items: Vec<Item>,
}

impl Statement {
    /// As plain text: `Heading: line` or a heading with its list.
    pub fn text(&self) -> String {
        let w = Words::of(self.lang);
        let mut t = String::new();
        if !self.gaps.is_empty() {
            let _ = writeln!(t, "{}", w.incomplete);
            for g in &self.gaps {
                let _ = writeln!(t, "- {g}");
            }
            t.push('\n');
        }
        for item in &self.items {
            let colon = item.colon(self.lang);
            match item.lines.as_slice() {
                [] => {
                    let _ = writeln!(t, "{}", item.heading);
                }
                [one] => {
                    let _ = writeln!(t, "{}{colon} {one}", item.heading);
                }
                many => {
                    let _ = writeln!(t, "{}{colon}", item.heading);
                    for l in many {
                        let _ = writeln!(t, "- {l}");
                    }
                }
            }
        }
        t
    }
}

/// A notice, with what identifies its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// `<channel>-<lang>-<first 12 hex of the SHA-256>`, with
    /// `-incomplete` before the hash when the register has gaps.
    pub version: String,
    /// SHA-256 of `text`, hex.
    pub sha256: String,
    /// The channel.
    pub channel: String,
    /// The language.
    pub lang: Lang,
    /// Whether it says everything Art. 13 requires.
    pub complete: bool,
    /// The text.
    pub text: String,
}

impl Notice {
    /// `text` for `channel`, named `<name>-<lang>-[incomplete-]<12 hex of
    /// its SHA-256>`.
    fn versioned(name: &str, channel: &str, statement: &Statement, text: String) -> Notice {
        let sha = hex::encode(Sha256::digest(text.as_bytes()));
        let complete = statement.gaps.is_empty();
        Notice {
            version: format!(
                "{name}-{}-{}{}",
                statement.lang.code(),
                if complete { "" } else { "incomplete-" },
                &sha[..12]
            ),
            sha256: sha,
            channel: channel.to_string(),
            lang: statement.lang,
            complete,
            text,
        }
    }
}

/// One activity in the record of processing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RopaActivity {
    /// Its id in the register (`oubli` for this service's own).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Art. 30(1)(b)-(f).
    pub items: Vec<Item>,
}

/// The record of processing activities (Art. 30(1)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ropa {
    /// Its language.
    pub lang: Lang,
    /// What the register does not say.
    pub gaps: Vec<Gap>,
    /// Art. 30(1)(a): the controller, joint controllers, representative,
    /// DPO.
    pub controller: Vec<Item>,
    /// Per activity, this service's own last.
    pub activities: Vec<RopaActivity>,
    /// Art. 30(1)(g).
    pub security: Item,
}

/// A text of the register in `lang`, or the visible mark of its absence.
fn say(t: &Text, lang: Lang) -> String {
    t.get(lang)
        .map(str::to_string)
        .unwrap_or_else(|| Words::of(lang).missing.to_string())
}

fn basis(a: &Activity, w: &Words) -> String {
    match a.legal_basis {
        Some(b) => w.basis[b as usize].to_string(),
        None => w.missing.to_string(),
    }
}

fn recipient_line(r: &Recipient, w: &Words) -> String {
    let role = w.roles[match r.role {
        Role::Processor => 0,
        Role::Controller => 1,
        Role::JointController => 2,
    }];
    match &r.country {
        Some(c) => format!("{}, {role} ({c})", r.name),
        None => format!("{}, {role}", r.name),
    }
}

/// `key: value`, with the language's colon.
fn kv(lang: Lang, key: impl std::fmt::Display, value: impl std::fmt::Display) -> String {
    format!("{key}{} {value}", colon(lang))
}

fn transfer_line(r: &Recipient, lang: Lang) -> String {
    let w = Words::of(lang);
    let safeguard = match r.safeguard {
        Some(Safeguard::Adequacy) => w.safeguards[0],
        Some(Safeguard::Dpf) => w.safeguards[1],
        Some(Safeguard::Scc) => w.safeguards[2],
        Some(Safeguard::Bcr) => w.safeguards[3],
        None => w.missing,
    };
    kv(
        lang,
        format!("{} ({})", r.name, r.country.as_deref().unwrap_or_default()),
        safeguard,
    )
}

fn uniq(v: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    v.into_iter().filter(|s| seen.insert(s.clone())).collect()
}

fn item(article: &'static str, heading: &str, lines: Vec<String>) -> Item {
    Item {
        article,
        heading: heading.to_string(),
        lines,
    }
}

impl Systems {
    /// Every gap in what the controller says: `[controller]`, the register,
    /// and the connectors' categories no activity covers.
    pub fn register_gaps(&self) -> Vec<Gap> {
        let config = self.config();
        let mut gaps = Vec::new();
        let c = &config.controller;
        for (key, v, what) in [
            ("name", &c.name, "the controller's name"),
            ("contact", &c.contact, "how to reach the controller"),
            ("authority", &c.authority, "the supervisory authority"),
        ] {
            if v.is_none() {
                gaps.push(Gap {
                    key: format!("controller.{key}"),
                    message: format!("{what} is not stated"),
                });
            }
        }
        match &config.register {
            None => gaps.push(Gap {
                key: "register".into(),
                message: "there is no register of processing: `oubli register init` writes one to start from".into(),
            }),
            Some(r) => gaps.extend(r.gaps(&self.categories())),
        }
        gaps
    }

    /// Each enabled system's connector categories (`None`: not loaded).
    pub fn categories(&self) -> BTreeMap<String, Option<Vec<oubli_model::DataCategory>>> {
        self.config()
            .systems
            .iter()
            .filter(|s| s.enabled)
            .map(|s| {
                (
                    s.name().to_string(),
                    self.registry()
                        .get(s.name())
                        .map(|c| c.info().manifest.categories.clone()),
                )
            })
            .collect()
    }

    fn register_or_empty(&self) -> std::borrow::Cow<'_, Register> {
        match &self.config().register {
            Some(r) => std::borrow::Cow::Borrowed(r),
            None => std::borrow::Cow::Owned(Register::default()),
        }
    }

    /// Art. 13(1)(a)-(b): who the controller is, and the DPO.
    fn controller_items(&self, lang: Lang) -> Vec<Item> {
        let w = Words::of(lang);
        let c = &self.config().controller;
        let r = self.register_or_empty();
        let or_missing = |v: &Option<String>| v.clone().unwrap_or_else(|| w.missing.to_string());
        let mut items = vec![
            item(
                "13(1)(a)",
                w.h_controller,
                vec![format!(
                    "{} — {}",
                    or_missing(&c.name),
                    or_missing(&c.contact)
                )],
            ),
            item("13(1)(b)", w.h_dpo, vec![or_missing(&c.dpo)]),
        ];
        if let Some(rep) = &r.representative {
            items.push(item("13(1)(a)", w.h_representative, vec![rep.clone()]));
        }
        if !r.joint_controllers.is_empty() {
            items.push(item("26(2)", w.h_joint, r.joint_controllers.clone()));
        }
        items
    }

    /// The rights, the complaint, consent withdrawal: what every text
    /// says whatever the activity.
    fn rights_items(&self, lang: Lang, activities: &[&Activity]) -> Vec<Item> {
        let w = Words::of(lang);
        let c = &self.config().controller;
        let mut items = vec![item(
            "13(2)(b)",
            w.h_rights,
            w.rights.iter().map(|s| s.to_string()).collect(),
        )];
        if activities
            .iter()
            .any(|a| a.legal_basis == Some(LegalBasis::Consent))
        {
            items.push(item("13(2)(c)", w.h_withdraw, vec![w.withdraw.to_string()]));
        }
        let objections: Vec<String> = activities
            .iter()
            .filter(|a| {
                a.legal_basis.is_some_and(LegalBasis::objectable) || !a.objection.0.is_empty()
            })
            .map(|a| kv(lang, say(&a.name, lang), say(&a.objection, lang)))
            .chain(std::iter::once(w.object_marketing.to_string()))
            .collect();
        items.push(item("21(4)", w.h_object, objections));
        let authority = match (&c.authority, &c.authority_url) {
            (Some(a), Some(u)) => format!("{a} ({u})"),
            (Some(a), None) => a.clone(),
            _ => w.missing.to_string(),
        };
        items.push(item(
            "13(2)(d)",
            w.h_complaint,
            vec![format!("{} {authority}", w.complaint)],
        ));
        items
    }

    /// What the activities say, item by item (the shared part of Art. 13,
    /// 14 and 15).
    fn activity_items(&self, lang: Lang, activities: &[&Activity]) -> Vec<Item> {
        let w = Words::of(lang);
        let mut items = vec![item(
            "13(1)(c)",
            w.h_purposes,
            activities
                .iter()
                .map(|a| {
                    kv(
                        lang,
                        say(&a.name, lang),
                        format!("{} — {}", say(&a.purposes, lang), basis(a, w)),
                    )
                })
                .collect(),
        )];
        let interests: Vec<String> = activities
            .iter()
            .filter(|a| a.legal_basis == Some(LegalBasis::LegitimateInterests))
            .map(|a| kv(lang, say(&a.name, lang), say(&a.legitimate_interests, lang)))
            .collect();
        if !interests.is_empty() {
            items.push(item("13(1)(d)", w.h_interests, interests));
        }
        items.push(item(
            "15(1)(b)",
            w.h_categories,
            uniq(
                activities
                    .iter()
                    .flat_map(|a| a.data.iter().map(|d| say(&d.label, lang))),
            ),
        ));
        let recipients = uniq(
            activities
                .iter()
                .flat_map(|a| a.recipients.iter().map(|r| recipient_line(r, w))),
        );
        items.push(item(
            "13(1)(e)",
            w.h_recipients,
            if recipients.is_empty() {
                vec![w.no_recipients.to_string()]
            } else {
                recipients
            },
        ));
        let transfers = uniq(activities.iter().flat_map(|a| {
            a.recipients
                .iter()
                .filter(|r| r.transfer())
                .map(|r| transfer_line(r, lang))
        }));
        items.push(item(
            "13(1)(f)",
            w.h_transfers,
            if transfers.is_empty() {
                vec![w.no_transfer.to_string()]
            } else {
                transfers
            },
        ));
        items.push(item(
            "13(2)(a)",
            w.h_retention,
            uniq(activities.iter().flat_map(|a| {
                a.data
                    .iter()
                    .map(move |d| kv(lang, say(&d.label, lang), say(&d.retention, lang)))
            })),
        ));
        items.push(item(
            "13(2)(e)",
            w.h_requirement,
            activities
                .iter()
                .map(|a| kv(lang, say(&a.name, lang), say(&a.requirement, lang)))
                .collect(),
        ));
        items.push(item(
            "14(2)(f)",
            w.h_sources,
            uniq(activities.iter().map(|a| say(&a.sources, lang))),
        ));
        items.push(item(
            "13(2)(f)",
            w.h_automated,
            activities
                .iter()
                .map(|a| kv(lang, say(&a.name, lang), say(&a.automated_decisions, lang)))
                .collect(),
        ));
        items
    }

    /// The information an access answer carries (Art. 15(1)(a)-(h) and
    /// 15(2)), for the activities that process data of `systems` (every
    /// activity when `None`).
    pub fn information(&self, lang: Lang, systems: Option<&BTreeSet<String>>) -> Statement {
        let register = self.register_or_empty();
        let activities: Vec<&Activity> = register
            .activities
            .iter()
            .filter(|a| systems.is_none_or(|s| a.data.iter().any(|d| s.contains(&d.system))))
            .collect();
        let mut items = self.controller_items(lang);
        items.extend(self.activity_items(lang, &activities));
        items.extend(self.rights_items(lang, &activities));
        Statement {
            lang,
            gaps: self.register_gaps(),
            items,
        }
    }

    /// The notice for `channel` in `lang` (every item of Art. 13(1)-(2);
    /// spoken channels open with the recording and its purpose). Refused
    /// while the register has gaps, unless `allow_incomplete`.
    pub fn notice(
        &self,
        channel: &str,
        lang: Lang,
        allow_incomplete: bool,
    ) -> Result<Notice, InformError> {
        if !CHANNELS.contains(&channel) {
            return Err(InformError::Channel);
        }
        let gaps = self.register_gaps();
        if !gaps.is_empty() && !allow_incomplete {
            return Err(InformError::Incomplete(gaps));
        }
        let w = Words::of(lang);
        let register = self.register_or_empty();
        let activities: Vec<&Activity> = register.activities.iter().collect();
        let mut items = Vec::new();
        if matches!(channel, "call" | "ivr") {
            items.push(item("13(1)(c)", w.recorded, vec![]));
            items.push(item(
                "13(1)(c)",
                w.h_recording,
                vec![say(&register.recording, lang)],
            ));
        }
        items.extend(self.controller_items(lang));
        items.extend(self.activity_items(lang, &activities));
        items.extend(self.rights_items(lang, &activities));
        items.push(item(
            "12(7)",
            w.h_full,
            vec![say(&register.notice_url, lang)],
        ));
        let statement = Statement { lang, gaps, items };
        let text = format!("{}\n\n{}", w.title_notice, statement.text());
        Ok(Notice::versioned(channel, channel, &statement, text))
    }

    /// The rights in plain words (Art. 15 to 22, in the notice's order),
    /// then consent withdrawal (Art. 7(3)), in `lang`.
    pub fn right_texts(&self, lang: Lang) -> Vec<String> {
        let w = Words::of(lang);
        w.rights
            .iter()
            .chain(std::iter::once(&w.withdraw))
            .map(|s| s.to_string())
            .collect()
    }

    /// The script an agent follows to take a request on `channel` (a call,
    /// the IVR, an email, a letter) in `lang`: when the deadline starts,
    /// what to ask, how to check identity, what to read back; then the
    /// rights and the controller's contacts, from the register. Its
    /// version names it as the notice's does.
    pub fn intake_script(
        &self,
        channel: &str,
        lang: Lang,
        allow_incomplete: bool,
    ) -> Result<Notice, InformError> {
        if !CHANNELS.contains(&channel) && channel != "letter" {
            return Err(InformError::Channel);
        }
        let gaps = self.register_gaps();
        if !gaps.is_empty() && !allow_incomplete {
            return Err(InformError::Incomplete(gaps));
        }
        let w = Words::of(lang);
        let register = self.register_or_empty();
        let activities: Vec<&Activity> = register.activities.iter().collect();
        let mut steps: Vec<String> = w.intake[..7].iter().map(|s| s.to_string()).collect();
        if matches!(channel, "call" | "ivr") {
            steps.insert(0, format!("0. {}", w.recorded));
        }
        let mut items = vec![item("12(2)", w.title_intake, steps)];
        items.push(item(
            "12(2)",
            w.intake[7],
            w.rights.iter().map(|s| s.to_string()).collect(),
        ));
        items.extend(self.controller_items(lang));
        items.extend(self.rights_items(lang, &activities).into_iter().skip(1));
        let statement = Statement { lang, gaps, items };
        let text = statement.text();
        Ok(Notice::versioned(
            &format!("intake-{channel}"),
            channel,
            &statement,
            text,
        ))
    }

    /// The record of processing activities in `lang`: Art. 30(1)(a)-(g)
    /// per activity, this service's own included. Refused while the
    /// register has gaps, unless `allow_incomplete`.
    pub fn ropa(&self, lang: Lang, allow_incomplete: bool) -> Result<Ropa, InformError> {
        let gaps = self.register_gaps();
        if !gaps.is_empty() && !allow_incomplete {
            return Err(InformError::Incomplete(gaps));
        }
        let w = Words::of(lang);
        let register = self.register_or_empty();
        let mut controller = self.controller_items(lang);
        for i in &mut controller {
            i.article = "30(1)(a)";
        }
        controller[0].heading = w.h_controller_ropa.to_string();
        let mut activities = Vec::new();
        for a in &register.activities {
            let mut items = vec![
                item(
                    "30(1)(b)",
                    w.h_purposes,
                    vec![say(&a.purposes, lang), basis(a, w)],
                ),
                item("30(1)(c)", w.h_subjects, vec![say(&a.subjects, lang)]),
                item(
                    "30(1)(c)",
                    w.h_categories,
                    a.data
                        .iter()
                        .map(|d| format!("{} ({} / {})", say(&d.label, lang), d.system, d.category))
                        .collect(),
                ),
                item(
                    "30(1)(d)",
                    w.h_recipients,
                    if a.recipients.is_empty() {
                        vec![w.no_recipients.to_string()]
                    } else {
                        a.recipients.iter().map(|r| recipient_line(r, w)).collect()
                    },
                ),
            ];
            let transfers: Vec<String> = a
                .recipients
                .iter()
                .filter(|r| r.transfer())
                .map(|r| transfer_line(r, lang))
                .collect();
            items.push(item(
                "30(1)(e)",
                w.h_transfers,
                if transfers.is_empty() {
                    vec![w.no_transfer.to_string()]
                } else {
                    transfers
                },
            ));
            items.push(item(
                "30(1)(f)",
                w.h_retention,
                a.data
                    .iter()
                    .map(|d| kv(lang, say(&d.label, lang), say(&d.retention, lang)))
                    .collect(),
            ));
            if a.legal_basis == Some(LegalBasis::LegitimateInterests) {
                items.push(item(
                    "6(1)(f)",
                    w.h_interests,
                    vec![say(&a.legitimate_interests, lang)],
                ));
            }
            items.push(item("14(2)(f)", w.h_sources, vec![say(&a.sources, lang)]));
            items.push(item(
                "22",
                w.h_automated,
                vec![say(&a.automated_decisions, lang)],
            ));
            activities.push(RopaActivity {
                id: a.id.clone(),
                name: say(&a.name, lang),
                items,
            });
        }
        activities.push(self.own_activity(lang));
        let mut security: Vec<String> = w.security.iter().map(|s| s.to_string()).collect();
        if let Some(s) = register.security.get(lang) {
            security.push(s.to_string());
        }
        Ok(Ropa {
            lang,
            gaps,
            controller,
            activities,
            security: item("30(1)(g)", w.h_security, security),
        })
    }

    /// This service's own processing: handling the requests.
    fn own_activity(&self, lang: Lang) -> RopaActivity {
        let w = Words::of(lang);
        let mut retention = vec![w.own_retention.to_string()];
        if let Some(keep) = self.config().policy.keep_answers_ms {
            retention.push(format!(
                "{} {} {}.",
                w.own_answers_kept,
                keep / 86_400_000,
                w.days
            ));
        }
        RopaActivity {
            id: "oubli".into(),
            name: w.own_name.to_string(),
            items: vec![
                item(
                    "30(1)(b)",
                    w.h_purposes,
                    vec![w.own_purposes.to_string(), w.basis[2].to_string()],
                ),
                item("30(1)(c)", w.h_subjects, vec![w.own_subjects.to_string()]),
                item("30(1)(c)", w.h_categories, vec![w.own_data.to_string()]),
                item(
                    "30(1)(d)",
                    w.h_recipients,
                    vec![w.own_recipients.to_string()],
                ),
                item("30(1)(e)", w.h_transfers, vec![w.no_transfer.to_string()]),
                item("30(1)(f)", w.h_retention, retention),
                item("14(2)(f)", w.h_sources, vec![w.own_sources.to_string()]),
                item(
                    "13(2)(e)",
                    w.h_requirement,
                    vec![w.own_requirement.to_string()],
                ),
                item("22", w.h_automated, vec![w.own_automated.to_string()]),
            ],
        }
    }
}

impl Ropa {
    /// As Markdown.
    pub fn markdown(&self) -> String {
        let w = Words::of(self.lang);
        let mut t = format!("# {}\n\n", w.title_ropa);
        if !self.gaps.is_empty() {
            let _ = writeln!(t, "**{}**\n", md(w.incomplete));
            for g in &self.gaps {
                let _ = writeln!(t, "- {}", md(&g.to_string()));
            }
            t.push('\n');
        }
        let list = |t: &mut String, i: &Item| {
            let _ = writeln!(t, "- **{}**{}", md(&i.heading), i.colon(self.lang));
            for l in &i.lines {
                let _ = writeln!(t, "  - {}", md(l));
            }
        };
        for i in &self.controller {
            list(&mut t, i);
        }
        for a in &self.activities {
            let _ = writeln!(
                t,
                "\n## {}{} {}\n",
                md(w.h_activity),
                colon(self.lang),
                md(&a.name)
            );
            for i in &a.items {
                list(&mut t, i);
            }
        }
        let _ = writeln!(t, "\n## {}\n", md(&self.security.heading));
        for l in &self.security.lines {
            let _ = writeln!(t, "- {}", md(l));
        }
        t
    }

    /// As a self-contained HTML page.
    pub fn html(&self) -> String {
        use crate::markup::esc;
        let w = Words::of(self.lang);
        let mut h = format!(
            "<!DOCTYPE html>\n<html lang=\"{}\">\n<head><meta charset=\"utf-8\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title>\
             <style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem;line-height:1.45}}dl{{display:grid;grid-template-columns:minmax(10rem,30%) 1fr;gap:.3rem 1rem}}dt{{font-weight:600}}dd{{margin:0;overflow-wrap:anywhere}}dd ul{{margin:0;padding-left:1.1rem}}@media (max-width:40rem){{dl{{grid-template-columns:1fr}}}}</style></head>\n<body>\n<h1>{}</h1>\n",
            self.lang.code(),
            esc(w.title_ropa),
            esc(w.title_ropa)
        );
        if !self.gaps.is_empty() {
            let _ = write!(
                h,
                "<div class=\"incomplete\"><p><strong>{}</strong></p><ul>",
                esc(w.incomplete)
            );
            for g in &self.gaps {
                let _ = write!(h, "<li>{}</li>", esc(&g.to_string()));
            }
            h.push_str("</ul></div>\n");
        }
        let dl = |h: &mut String, items: &[Item]| {
            h.push_str("<dl>");
            items_html(h, items);
            h.push_str("</dl>\n");
        };
        dl(&mut h, &self.controller);
        for a in &self.activities {
            let _ = write!(
                h,
                "<section data-activity=\"{}\"><h2>{}{} {}</h2>",
                esc(&a.id),
                esc(w.h_activity),
                colon(self.lang),
                esc(&a.name)
            );
            dl(&mut h, &a.items);
            h.push_str("</section>\n");
        }
        dl(&mut h, std::slice::from_ref(&self.security));
        h.push_str("</body>\n</html>\n");
        h
    }
}

/// Items as the `<dt>`/`<dd>` pairs of a definition list, each headed with
/// its article, every text escaped.
pub(crate) fn items_html(h: &mut String, items: &[Item]) {
    use crate::markup::esc;
    for i in items {
        let _ = write!(
            h,
            "<dt data-article=\"{}\">{}</dt><dd><ul>",
            i.article,
            esc(&i.heading)
        );
        for l in &i.lines {
            let _ = write!(h, "<li>{}</li>", esc(l));
        }
        h.push_str("</ul></dd>");
    }
}

/// Text safe in Markdown (register and connector text is not ours).
fn md(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\r' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect::<String>()
        .replace('<', "&lt;")
}
