//! `index.html`: what the subject opens first. One self-contained file:
//! inline style, no script, no request to anywhere; recordings play from
//! the files beside it, emails are shown inline. Everything a connector
//! said is escaped.

use super::i18n::Catalogue;
use super::sheets::Table;
use super::{Information, SystemInfo};
use std::fmt::Write;

/// HTML-escape text (and drop control characters other than newline and
/// tab, which `white-space: pre-wrap` shows).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

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
    /// An email's text, to show inline.
    pub(crate) text: Option<String>,
}

/// One system's part of the page.
#[derive(Debug, Clone)]
pub(crate) struct SystemPage {
    pub(crate) info: SystemInfo,
    pub(crate) state: String,
    pub(crate) tables: Vec<Table>,
    pub(crate) files: Vec<FileEntry>,
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;line-height:1.45;color:#1b1b1b}\
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccc}h3{font-size:1.05rem}\
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;display:block;overflow-x:auto}\
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top;white-space:pre-wrap;overflow-wrap:anywhere}\
@media (max-width:40rem){table.records{display:block}table.records thead{display:none}table.records tbody,table.records tr{display:block}\
table.records tr{border:1px solid #ccc;margin:0 0 .7rem}table.records td{display:grid;grid-template-columns:minmax(6rem,35%) 1fr;gap:.5rem;border:0;border-bottom:1px solid #eee}\
table.records td::before{content:attr(data-label);font-weight:600}}\
th{background:#f2f2f2}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}\
audio{width:100%}pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f7;padding:.5rem;border:1px solid #ddd;max-height:30rem;overflow:auto}\
.muted{color:#555}";

/// The page.
pub(crate) fn page(
    t: &Catalogue,
    lang: &str,
    title: &str,
    request: &[(&str, String)],
    systems: &[SystemPage],
    info: &Information,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p>{}</p>\n<dl>",
        esc(title),
        esc(title),
        esc(t.intro)
    );
    for (k, v) in request {
        let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    h.push_str("</dl>\n");
    for s in systems {
        let total: usize = s.tables.iter().map(|t| t.rows.len()).sum();
        let _ = write!(
            h,
            "<section class=\"system\" data-system=\"{}\">\n<h2>{} {} <span class=\"muted\">({} {}; {})</span></h2>\n",
            esc(&s.info.system),
            esc(t.system),
            esc(&s.info.system),
            total,
            esc(t.records),
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
            let _ = write!(
                h,
                "<h3>{}</h3>\n<table class=\"records\" data-kind=\"{}\"><thead><tr>",
                esc(&table.kind),
                esc(&table.kind)
            );
            for col in &table.header {
                let _ = write!(h, "<th>{}</th>", esc(col));
            }
            h.push_str("</tr></thead><tbody>");
            for row in &table.rows {
                let _ = write!(h, "<tr data-record=\"{}\">", esc(&row[0]));
                for (cell, label) in row.iter().zip(&table.header) {
                    let _ = write!(h, "<td data-label=\"{}\">{}</td>", esc(label), esc(cell));
                }
                h.push_str("</tr>");
            }
            h.push_str("</tbody></table>\n");
        }
        if !s.files.is_empty() {
            let _ = writeln!(h, "<h3>{}</h3>", esc(t.files));
            for f in &s.files {
                let label = format!("{} {} · {}", f.record_kind, f.record_id, f.name);
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
                    if let Some(text) = &f.text {
                        let _ = writeln!(h, "<pre>{}</pre>", esc(text));
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
    // Art. 15(1) information.
    let _ = writeln!(h, "<h2>{}</h2>\n<dl>", esc(t.information));
    let c = &info.controller;
    let or_unset = |v: &Option<String>| esc(v.as_deref().unwrap_or(t.not_set));
    let _ = write!(
        h,
        "<dt>{}</dt><dd>{}{}</dd><dt>{}</dt><dd>{}</dd>",
        esc(t.controller),
        or_unset(&c.name),
        c.contact
            .as_deref()
            .map(|x| format!(" — {}", esc(x)))
            .unwrap_or_default(),
        esc(t.dpo),
        or_unset(&c.dpo)
    );
    let _ = writeln!(
        h,
        "<dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl>",
        esc(t.source),
        esc(t.source_text),
        esc(t.automated),
        esc(c.automated_decisions.as_deref().unwrap_or(t.no_automated))
    );
    for s in &info.systems {
        if s.categories.is_empty() {
            continue;
        }
        let _ = write!(
            h,
            "<h3>{} {}</h3>\n<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            esc(t.system),
            esc(&s.system),
            esc(t.categories),
            esc(t.purposes),
            esc(t.recipients),
            esc(t.retention)
        );
        for cat in &s.categories {
            let _ = write!(
                h,
                "<tr><td>{} — {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&cat.name),
                esc(&cat.description),
                esc(&cat.purposes.join("; ")),
                esc(&cat.recipients.join("; ")),
                esc(&cat.retention)
            );
        }
        h.push_str("</tbody></table>\n");
    }
    let _ = write!(h, "<h2>{}</h2>\n<ul>", esc(t.your_rights));
    for r in t.rights {
        let _ = write!(h, "<li>{}</li>", esc(r));
    }
    let _ = write!(
        h,
        "</ul>\n<h2>{}</h2>\n<p>{} {}",
        esc(t.complaint),
        esc(t.complaint_text),
        or_unset(&c.authority)
    );
    if let Some(url) = &c.authority_url {
        let _ = write!(h, " ({})", esc(url));
    }
    let _ = write!(
        h,
        "</p>\n<h2>{}</h2>\n<p><a href=\"manifest.json\">manifest.json</a> · <a href=\"information.json\">information.json</a> · <a href=\"data.xlsx\">data.xlsx</a> · <a href=\"data/\">data/</a></p>\n</body>\n</html>\n",
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
