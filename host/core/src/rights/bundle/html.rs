//! `index.html`: what the subject opens first. One self-contained file:
//! inline style, no script, no request to anywhere; recordings play from
//! the files beside it, emails are shown inline. Everything a connector
//! said is escaped.

use super::super::inform::{Statement, Words};
use super::sheets::Table;
use super::{Held, Lang, SystemInfo};
use crate::lang::human_date;
use crate::register::Register;
use std::fmt::Write;

pub use crate::markup::esc;

/// A relative link to a file in the bundle, each segment percent-encoded.
pub(crate) fn href(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            seg.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A file of a record, as the page shows it.
#[derive(Debug, Clone)]
pub(crate) struct FileEntry {
    pub(crate) record_kind: String,
    pub(crate) record_id: String,
    pub(crate) name: String,
    pub(crate) media_type: String,
    pub(crate) path: String,
    pub(crate) size: u64,
    pub(crate) included: bool,
    /// An email's raw bytes, to show decoded inline.
    pub(crate) raw: Option<Vec<u8>>,
}

/// One system's part of the page.
#[derive(Debug, Clone)]
pub(crate) struct SystemPage {
    pub(crate) info: SystemInfo,
    pub(crate) state: String,
    pub(crate) tables: Vec<Table>,
    pub(crate) files: Vec<FileEntry>,
}

/// The style: one column on a phone for every table and definition list
/// (each cell under its label), long words broken rather than the page
/// widened.
const STYLE: &str = "*{box-sizing:border-box}body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;line-height:1.45;color:#1b1b1b;overflow-wrap:break-word}\
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccc}h3{font-size:1.05rem}\
.scroll{overflow-x:auto;margin:.5rem 0 1rem}table{border-collapse:collapse;width:100%}\
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top;white-space:pre-wrap;overflow-wrap:break-word}\
th{background:#f2f2f2}dl{display:grid;grid-template-columns:minmax(8rem,30%) minmax(0,1fr);gap:.3rem 1rem}dt{font-weight:600}dd{margin:0;min-width:0;overflow-wrap:anywhere}dd ul{margin:0;padding-left:1.1rem}\
@media (max-width:40rem){table,thead,tbody,tr,th,td{display:block}thead{display:none}\
tr{border:1px solid #ccc;margin:0 0 .7rem}td{border:0;border-bottom:1px solid #eee;overflow-wrap:anywhere}td::before{content:attr(data-label);display:block;font-weight:600}\
dl{grid-template-columns:minmax(0,1fr)}dd{margin-bottom:.5rem}}\
audio{width:100%}pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f7f7f7;padding:.5rem;border:1px solid #ddd;max-height:30rem;overflow:auto}\
figcaption,.file p{overflow-wrap:anywhere}.muted{color:#555}.incomplete{border:2px solid #b00;padding:.5rem 1rem;background:#fff4f4}";

/// A second line of defence: nothing on the page may load or run anything
/// but the files beside it (and the inline style).
pub(crate) const CSP: &str =
    "default-src 'none'; media-src 'self'; img-src 'self'; style-src 'unsafe-inline'";

/// What a page is made of.
pub(crate) struct PageInput<'a> {
    pub(crate) lang: Lang,
    pub(crate) portability: bool,
    pub(crate) facts: &'a [(&'a str, String)],
    pub(crate) systems: &'a [SystemPage],
    pub(crate) info: &'a Statement,
    pub(crate) held: &'a Held,
    pub(crate) others: &'a [(Lang, String)],
    pub(crate) left_out: usize,
    pub(crate) excluded: usize,
    pub(crate) register: Option<&'a Register>,
}

fn table(h: &mut String, header: &[&str], rows: &[Vec<String>]) {
    h.push_str("<div class=\"scroll\"><table><thead><tr>");
    for c in header {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr></thead><tbody>");
    for row in rows {
        h.push_str("<tr>");
        for (cell, label) in row.iter().zip(header) {
            let _ = write!(h, "<td data-label=\"{}\">{}</td>", esc(label), esc(cell));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table></div>\n");
}

/// The page.
pub(crate) fn page(p: &PageInput<'_>) -> String {
    let lang = p.lang;
    let t = lang.texts();
    let words = Words::of(lang);
    let title = if p.portability {
        t.title_portability
    } else {
        t.title_access
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        lang.code(),
        esc(title),
    );
    if !p.others.is_empty() {
        let _ = write!(h, "<nav class=\"languages\"><p>{}", esc(t.languages));
        for (l, file) in p.others {
            let _ = write!(
                h,
                " <a href=\"{}\" hreflang=\"{}\" lang=\"{}\">{}</a>",
                esc(&href(file)),
                l.code(),
                l.code(),
                match l {
                    Lang::En => "English",
                    Lang::Fr => "Français",
                }
            );
        }
        h.push_str("</p></nav>\n");
    }
    if !p.info.gaps.is_empty() {
        let _ = write!(
            h,
            "<div class=\"incomplete\"><p><strong>{}</strong></p><ul>",
            esc(words.incomplete)
        );
        for g in &p.info.gaps {
            let _ = write!(h, "<li>{}</li>", esc(&g.to_string()));
        }
        h.push_str("</ul></div>\n");
    }
    let _ = write!(
        h,
        "<h1>{}</h1>\n<p>{}</p>\n<dl>",
        esc(title),
        esc(if p.portability {
            t.intro_portability
        } else {
            t.intro
        })
    );
    for (k, v) in p.facts {
        let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    h.push_str("</dl>\n");
    if p.portability && p.left_out > 0 {
        let _ = writeln!(
            h,
            "<p class=\"left-out\">{} {}</p>",
            esc(t.left_out),
            p.left_out
        );
    }
    if p.portability && p.excluded > 0 {
        let _ = writeln!(
            h,
            "<p class=\"excluded\">{} {}</p>",
            esc(t.recordings_excluded),
            p.excluded
        );
    }
    for s in p.systems {
        let total: usize = s.tables.iter().map(|t| t.rows.len()).sum();
        let _ = write!(
            h,
            "<section class=\"system\" data-system=\"{}\">\n<h2>{} {} <span class=\"muted\">({} {}{} {})</span></h2>\n",
            esc(&s.info.system),
            esc(t.system),
            esc(&s.info.system),
            total,
            esc(t.records),
            match lang {
                Lang::En => ";",
                Lang::Fr => "\u{a0};",
            },
            esc(&t.state(&s.state))
        );
        // "Nothing found" only where a search said so: a system skipped or
        // failed was not searched, and the page says that instead.
        let searched = matches!(s.state.as_str(), "done" | "nothing" | "partial");
        if !searched {
            let _ = writeln!(h, "<p class=\"not-searched\">{}</p>", esc(t.not_searched));
        } else if total == 0 {
            let _ = writeln!(h, "<p>{}</p>", esc(t.nothing_held));
        }
        for table in &s.tables {
            let label = |col: &str| -> String {
                if col == "record" {
                    return t.record.to_string();
                }
                p.register
                    .and_then(|r| r.label(&s.info.system, col, lang))
                    .map(str::to_string)
                    .unwrap_or_else(|| col.to_string())
            };
            let labels: Vec<String> = table.header.iter().map(|c| label(c)).collect();
            let kind = p
                .register
                .and_then(|r| r.kind(&s.info.system, &table.kind, lang))
                .unwrap_or(&table.kind);
            let _ = write!(
                h,
                "<h3>{}</h3>\n<div class=\"scroll\"><table class=\"records\" data-kind=\"{}\"><thead><tr>",
                esc(kind),
                esc(&table.kind)
            );
            for col in &labels {
                let _ = write!(h, "<th>{}</th>", esc(col));
            }
            h.push_str("</tr></thead><tbody>");
            for row in &table.rows {
                let _ = write!(h, "<tr data-record=\"{}\">", esc(&row[0]));
                for (cell, label) in row.iter().zip(&labels) {
                    let shown = human_date(cell, lang).unwrap_or_else(|| cell.clone());
                    let _ = write!(h, "<td data-label=\"{}\">{}</td>", esc(label), esc(&shown));
                }
                h.push_str("</tr>");
            }
            h.push_str("</tbody></table></div>\n");
        }
        if !s.files.is_empty() {
            let _ = writeln!(h, "<h3>{}</h3>", esc(t.files));
            for f in &s.files {
                let kind = p
                    .register
                    .and_then(|r| r.kind(&s.info.system, &f.record_kind, lang))
                    .unwrap_or(&f.record_kind);
                let label = format!("{kind} {} · {}", f.record_id, f.name);
                if !f.included {
                    let _ = writeln!(h, "<p>{} — {}</p>", esc(&label), esc(t.not_included));
                } else if f.media_type.starts_with("audio/") {
                    let _ = writeln!(
                        h,
                        "<figure><figcaption>{}: {}</figcaption><audio controls preload=\"metadata\" src=\"{}\"></audio> <a href=\"{}\">{}</a></figure>",
                        esc(t.recording),
                        esc(&label),
                        esc(&href(&f.path)),
                        esc(&href(&f.path)),
                        esc(t.download)
                    );
                } else {
                    let what = if f.media_type == "message/rfc822" {
                        t.email
                    } else {
                        t.files
                    };
                    let _ = writeln!(
                        h,
                        "<div class=\"file\"><p>{}: {} ({} B) <a href=\"{}\">{}</a></p>",
                        esc(what),
                        esc(&label),
                        f.size,
                        esc(&href(&f.path)),
                        esc(t.download)
                    );
                    if let Some(raw) = &f.raw {
                        let text = super::mail::readable(raw, lang).unwrap_or_else(|| {
                            String::from_utf8_lossy(raw)
                                .replace("\r\n", "\n")
                                .replace('\r', "\n")
                        });
                        let _ = writeln!(h, "<pre class=\"email\">{}</pre>", esc(&text));
                    }
                    h.push_str("</div>\n");
                }
            }
            if s.files.iter().any(|f| f.media_type.starts_with("audio/")) {
                let _ = writeln!(h, "<p class=\"muted\">{}</p>", esc(t.other_voices));
            }
        }
        h.push_str("</section>\n");
    }
    // Art. 15(1)-(2), in the controller's words.
    let _ = writeln!(
        h,
        "<section class=\"information\"><h2>{}</h2>\n<dl>",
        esc(t.information)
    );
    super::super::inform::items_html(&mut h, &p.info.items);
    h.push_str("</dl></section>\n");
    if p.portability {
        // What portability covers, by activity and legal basis.
        if let Some(r) = p.register {
            let lines: Vec<String> = r
                .activities
                .iter()
                .filter(|a| {
                    a.legal_basis
                        .is_some_and(crate::register::LegalBasis::portable)
                })
                .map(|a| a.name.get(lang).unwrap_or(words.missing).to_string())
                .collect();
            if !lines.is_empty() {
                let _ = write!(h, "<p>{}</p><ul>", esc(words.portable_yes));
                for l in lines {
                    let _ = write!(h, "<li>{}</li>", esc(&l));
                }
                h.push_str("</ul>\n");
            }
        }
    }
    // What this service holds.
    let _ = writeln!(
        h,
        "<section class=\"held\"><h2>{}</h2>\n<p>{}</p>",
        esc(t.held),
        esc(t.held_intro)
    );
    let date = |s: &str| human_date(s, lang).unwrap_or_else(|| s.to_string());
    let _ = writeln!(h, "<h3>{}</h3>", esc(t.your_requests));
    table(
        &mut h,
        &[t.request, t.kind, t.state_word, t.received, t.completed],
        &p.held
            .requests
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    t.state(&r.kind),
                    t.state(&r.state),
                    date(&r.received),
                    r.finalized.as_deref().map(date).unwrap_or_default(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let _ = writeln!(h, "<h3>{}</h3>", esc(t.consents));
    if p.held.consents.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", esc(t.nothing));
    } else {
        table(
            &mut h,
            &[t.purpose, t.action, t.channel, t.date],
            &p.held
                .consents
                .iter()
                .map(|c| {
                    vec![
                        c.purpose.clone(),
                        t.state(&c.action),
                        c.channel.clone(),
                        date(&c.at),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }
    let _ = writeln!(h, "<h3>{}</h3>", esc(t.restrictions));
    if p.held.restrictions.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", esc(t.nothing));
    } else {
        table(
            &mut h,
            &[t.scope, t.request, t.date],
            &p.held
                .restrictions
                .iter()
                .map(|r| vec![r.scope.clone(), r.request.clone(), date(&r.since)])
                .collect::<Vec<_>>(),
        );
    }
    h.push_str("</section>\n");
    let _ = write!(
        h,
        "<h2>{}</h2>\n<p><a href=\"manifest.json\">manifest.json</a> · <a href=\"information.json\">information.json</a> · <a href=\"oubli.json\">oubli.json</a> · <a href=\"data.xlsx\">data.xlsx</a> · <a href=\"data/\">data/</a></p>\n</body>\n</html>\n",
        esc(t.machine_readable)
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_links_encoded() {
        assert_eq!(
            esc("<script>alert('x')</script>&\u{1b}[31m"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;\u{FFFD}[31m"
        );
        assert_eq!(esc("a\nb"), "a\nb");
        assert_eq!(
            href("attachments/genesys/call-1/rec 1.wav"),
            "attachments/genesys/call-1/rec%201.wav"
        );
        assert_eq!(href("a/\"onerror=x"), "a/%22onerror%3Dx");
    }
}
