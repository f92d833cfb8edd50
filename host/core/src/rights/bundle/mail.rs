//! An email, as a person reads it: the headers they know (from, to, copy,
//! date, subject) and the body decoded (MIME multipart, quoted-printable,
//! base64, any charset; an HTML-only body turned into text, never shown as
//! markup). Line ends are LF, so no `\r` reaches the page.

use crate::lang::{Lang, colon, human_date};
use mail_parser::{Address, MessageParser};

fn addresses(a: Option<&Address<'_>>) -> Option<String> {
    let list: Vec<String> = a?
        .iter()
        .map(|x| match (x.name(), x.address()) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (None, Some(e)) => e.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    (!list.is_empty()).then(|| list.join(", "))
}

/// The readable text of a raw RFC 5322 message, or `None` if it is not
/// one.
pub(crate) fn readable(raw: &[u8], lang: Lang) -> Option<String> {
    let m = MessageParser::default().parse(raw)?;
    let (from, to, cc, date, subject) = match lang {
        Lang::En => ("From", "To", "Cc", "Date", "Subject"),
        Lang::Fr => ("De", "À", "Copie", "Date", "Objet"),
    };
    let colon = colon(lang);
    let mut out = String::new();
    for (label, value) in [
        (from, addresses(m.from())),
        (to, addresses(m.to())),
        (cc, addresses(m.cc())),
        (
            date,
            m.date().and_then(|d| human_date(&d.to_rfc3339(), lang)),
        ),
        (subject, m.subject().map(str::to_string)),
    ] {
        if let Some(v) = value {
            out.push_str(&format!("{label}{colon} {v}\n"));
        }
    }
    out.push('\n');
    let mut bodies = 0;
    while let Some(text) = m.body_text(bodies) {
        if bodies > 0 {
            out.push_str("\n\n");
        }
        out.push_str(&text);
        bodies += 1;
        if bodies >= 8 {
            break;
        }
    }
    Some(out.replace("\r\n", "\n").replace('\r', "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_quoted_printable_base64_and_html_decode_to_text() {
        let qp = b"From: Ana <ana@example.com>\r\nTo: support@example.com\r\nSubject: =?UTF-8?Q?R=C3=A9siliation?=\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nJe souhaite r=C3=A9silier mon contrat.\r\nMerci=\r\n !\r\n";
        let t = readable(qp, Lang::Fr).unwrap();
        assert!(t.contains("Objet\u{a0}: Résiliation"), "{t}");
        assert!(
            t.contains("Je souhaite résilier mon contrat.\nMerci !"),
            "{t}"
        );
        assert!(t.contains("1 décembre 2026"), "{t}");
        assert!(!t.contains('\r') && !t.contains('\u{FFFD}'), "{t:?}");

        let b64 = b"From: bob@example.com\r\nSubject: hi\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\nQ2Fm6SBjcuhtZQ==\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Caf&eacute;</p>\r\n--b--\r\n";
        let t = readable(b64, Lang::En).unwrap();
        assert!(t.contains("Café crème"), "{t}");
        assert!(!t.contains("<p>"), "{t}");

        let html = b"From: c@example.com\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><script>alert(1)</script><b>Bonjour</b><br>le monde</body></html>\r\n";
        let t = readable(html, Lang::En).unwrap();
        assert!(t.contains("Bonjour"), "{t}");
        assert!(!t.contains("<b>") && !t.contains("<script"), "{t}");
    }
}
