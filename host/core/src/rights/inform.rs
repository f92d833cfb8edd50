//! The duties to inform: the notice given when data is collected (Art. 13
//! and 14: the script an agent reads or the IVR plays at the start of a
//! recorded call, or the text of an email or web form), and the record of
//! processing activities (Art. 30). Both are built from the connectors'
//! manifests (what each system holds, why, for how long, for whom) and the
//! configuration's `[controller]`.
//!
//! A notice is versioned by its SHA-256, so consent evidence can name the
//! exact text a person was given.

use super::Systems;
use super::bundle::Lang;
use crate::config::Controller;
use oubli_model::DataCategory;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// The channels a notice is given through.
pub const CHANNELS: [&str; 4] = ["call", "ivr", "email", "web"];

/// A notice, with what identifies its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// `<channel>-<lang>-<first 12 hex of the SHA-256>`.
    pub version: String,
    /// SHA-256 of `text`, hex.
    pub sha256: String,
    /// The channel.
    pub channel: String,
    /// The language.
    pub lang: Lang,
    /// The text.
    pub text: String,
}

/// One system in the record of processing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RopaSystem {
    /// The integrator's name for it.
    pub system: String,
    /// Its connector, `id@version`, when loaded.
    pub connector: Option<String>,
    /// What kind of system.
    pub kind: Option<String>,
    /// Its categories of data, with purposes, recipients, retention.
    pub categories: Vec<DataCategory>,
}

/// The record of processing activities (Art. 30(1)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ropa {
    /// The controller, its contact and DPO.
    pub controller: Controller,
    /// Per system.
    pub systems: Vec<RopaSystem>,
    /// Every purpose, once.
    pub purposes: Vec<String>,
    /// Every recipient, once (transfers to third countries are named by
    /// the connectors among their recipients).
    pub recipients: Vec<String>,
    /// Technical and organisational measures (Art. 32), as this host
    /// applies them.
    pub security: Vec<String>,
}

fn uniq(v: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = v.collect();
    out.sort();
    out.dedup();
    out
}

struct Words {
    hello: &'static str,
    controller: &'static str,
    purposes: &'static str,
    kept: &'static str,
    shared: &'static str,
    rights: &'static str,
    contact: &'static str,
    complaint: &'static str,
    recorded: &'static str,
}

fn words(lang: Lang) -> Words {
    match lang {
        Lang::En => Words {
            hello: "Before we go on: this call is recorded.",
            controller: "Your personal data is processed by",
            purposes: "We use it to",
            kept: "We keep it",
            shared: "It may be shared with",
            rights: "You may ask to see, correct, erase, restrict or take away your data, object to its use, and withdraw your consent at any time.",
            contact: "To do so, contact",
            complaint: "You may also complain to",
            recorded: "Recording and data categories",
        },
        Lang::Fr => Words {
            hello: "Avant de poursuivre : cet appel est enregistré.",
            controller: "Vos données personnelles sont traitées par",
            purposes: "Nous les utilisons pour",
            kept: "Nous les conservons",
            shared: "Elles peuvent être communiquées à",
            rights: "Vous pouvez demander à accéder à vos données, à les rectifier, les effacer, en limiter le traitement ou les récupérer, vous opposer à leur utilisation, et retirer votre consentement à tout moment.",
            contact: "Pour cela, contactez",
            complaint: "Vous pouvez aussi saisir",
            recorded: "Enregistrement et catégories de données",
        },
    }
}

impl Systems {
    /// Every system's categories, from its connector's manifest.
    pub fn ropa(&self) -> Ropa {
        let config = self.config();
        let systems: Vec<RopaSystem> = config
            .systems
            .iter()
            .filter(|s| s.enabled)
            .map(|s| {
                let c = self.registry().get(s.name());
                RopaSystem {
                    system: s.name().to_string(),
                    connector: c
                        .map(|c| format!("{}@{}", c.info().manifest.id, c.info().manifest.version)),
                    kind: c.and_then(|c| {
                        serde_json::to_value(c.info().manifest.system_kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                    }),
                    categories: c
                        .map(|c| c.info().manifest.categories.clone())
                        .unwrap_or_default(),
                }
            })
            .collect();
        let all = || systems.iter().flat_map(|s| s.categories.iter());
        Ropa {
            controller: config.controller.clone(),
            purposes: uniq(all().flat_map(|c| c.purposes.iter().cloned())),
            recipients: uniq(all().flat_map(|c| c.recipients.iter().cloned())),
            security: vec![
                "personal data in the request store sealed with AES-256-GCM under per-request keys, wrapped by a KEK under RSA-2048-OAEP".into(),
                "exports and bundles encrypted for their recipients (RSA-2048-OAEP, AES-256-GCM, chunked)".into(),
                "lookups by keyed blind index (HMAC-SHA-256); no identifier in logs".into(),
                "connectors sandboxed (WebAssembly), network only to granted hosts".into(),
                "hash-chained audit log with signed heads; four-eyes approval of erasures".into(),
            ],
            systems,
        }
    }

    /// The notice for `channel` in `lang`.
    pub fn notice(&self, channel: &str, lang: Lang) -> Result<Notice, String> {
        if !CHANNELS.contains(&channel) {
            return Err(format!("the channel is one of {}", CHANNELS.join(", ")));
        }
        let r = self.ropa();
        let w = words(lang);
        let c = &r.controller;
        let unset = match lang {
            Lang::En => "(controller not configured)",
            Lang::Fr => "(responsable non configuré)",
        };
        let name = c.name.as_deref().unwrap_or(unset);
        let spoken = matches!(channel, "call" | "ivr");
        let mut t = String::new();
        if spoken {
            let _ = writeln!(t, "{}", w.hello);
        }
        let _ = writeln!(t, "{} {name}.", w.controller);
        if !r.purposes.is_empty() {
            let _ = writeln!(t, "{}: {}.", w.purposes, r.purposes.join("; "));
        }
        let retention = uniq(
            r.systems
                .iter()
                .flat_map(|s| s.categories.iter())
                .map(|c| c.retention.clone()),
        );
        if !retention.is_empty() {
            let _ = writeln!(t, "{}: {}.", w.kept, retention.join("; "));
        }
        if !r.recipients.is_empty() {
            let _ = writeln!(t, "{}: {}.", w.shared, r.recipients.join("; "));
        }
        let _ = writeln!(t, "{}", w.rights);
        let contact = c.dpo.as_deref().or(c.contact.as_deref()).unwrap_or(unset);
        let _ = writeln!(t, "{} {contact}.", w.contact);
        if let Some(a) = &c.authority {
            let _ = writeln!(
                t,
                "{} {a}{}.",
                w.complaint,
                c.authority_url
                    .as_deref()
                    .map(|u| format!(" ({u})"))
                    .unwrap_or_default()
            );
        }
        if !spoken {
            let _ = writeln!(t, "\n{}:", w.recorded);
            for s in &r.systems {
                for cat in &s.categories {
                    let _ = writeln!(t, "- {} ({}): {}", cat.name, s.system, cat.description);
                }
            }
        }
        let sha = hex::encode(Sha256::digest(t.as_bytes()));
        Ok(Notice {
            version: format!("{channel}-{}-{}", lang.code(), &sha[..12]),
            sha256: sha,
            channel: channel.to_string(),
            lang,
            text: t,
        })
    }
}

impl Ropa {
    /// As Markdown.
    pub fn markdown(&self) -> String {
        let c = &self.controller;
        let mut t = String::from("# Record of processing activities (Art. 30(1) GDPR)\n\n");
        let v = |x: &Option<String>| x.clone().unwrap_or_else(|| "(not configured)".into());
        let _ = writeln!(t, "- Controller: {}", v(&c.name));
        let _ = writeln!(t, "- Contact: {}", v(&c.contact));
        let _ = writeln!(t, "- Data protection officer: {}", v(&c.dpo));
        let _ = writeln!(t, "- Purposes: {}", self.purposes.join("; "));
        let _ = writeln!(
            t,
            "- Recipients (transfers included): {}\n",
            self.recipients.join("; ")
        );
        for s in &self.systems {
            let _ = writeln!(
                t,
                "## {}{}\n\n| category | description | purposes | recipients | retention | portable |\n|---|---|---|---|---|---|",
                md(&s.system),
                s.connector
                    .as_deref()
                    .map(|c| format!(" ({})", md(c)))
                    .unwrap_or_default()
            );
            for cat in &s.categories {
                let _ = writeln!(
                    t,
                    "| {} | {} | {} | {} | {} | {} |",
                    md(&cat.name),
                    md(&cat.description),
                    md(&cat.purposes.join("; ")),
                    md(&cat.recipients.join("; ")),
                    md(&cat.retention),
                    if cat.portable { "yes" } else { "no" }
                );
            }
            t.push('\n');
        }
        let _ = writeln!(t, "## Security measures (Art. 32)\n");
        for m in &self.security {
            let _ = writeln!(t, "- {m}");
        }
        t
    }

    /// As a self-contained HTML page.
    pub fn html(&self) -> String {
        use super::bundle::esc;
        let mut h = String::from(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Record of processing activities</title>\
             <style>body{font-family:system-ui,sans-serif;max-width:70rem;margin:auto;padding:1rem}table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:.3rem;text-align:left;vertical-align:top}</style></head>\n<body>\n<h1>Record of processing activities (Art. 30(1) GDPR)</h1>\n<ul>",
        );
        let c = &self.controller;
        let v = |x: &Option<String>| esc(x.as_deref().unwrap_or("(not configured)"));
        let _ = writeln!(
            h,
            "<li>Controller: {}</li><li>Contact: {}</li><li>Data protection officer: {}</li><li>Purposes: {}</li><li>Recipients (transfers included): {}</li></ul>",
            v(&c.name),
            v(&c.contact),
            v(&c.dpo),
            esc(&self.purposes.join("; ")),
            esc(&self.recipients.join("; "))
        );
        for s in &self.systems {
            let _ = write!(
                h,
                "<h2>{}</h2>\n<table><tr><th>category</th><th>description</th><th>purposes</th><th>recipients</th><th>retention</th><th>portable</th></tr>",
                esc(&s.system)
            );
            for cat in &s.categories {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&cat.name),
                    esc(&cat.description),
                    esc(&cat.purposes.join("; ")),
                    esc(&cat.recipients.join("; ")),
                    esc(&cat.retention),
                    if cat.portable { "yes" } else { "no" }
                );
            }
            h.push_str("</table>\n");
        }
        h.push_str("<h2>Security measures (Art. 32)</h2><ul>");
        for m in &self.security {
            let _ = write!(h, "<li>{}</li>", esc(m));
        }
        h.push_str("</ul>\n</body>\n</html>\n");
        h
    }
}

/// Text safe in a Markdown table cell (connector text is untrusted).
fn md(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '|' => '/',
            '\n' | '\r' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect::<String>()
        .replace('<', "&lt;")
}
