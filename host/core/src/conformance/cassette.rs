//! The kit's hermetic tier: `--record DIR` keeps what the system answered
//! during a live run, with credentials dropped and the fixture's people
//! replaced by placeholders; `--replay DIR` serves those answers from the
//! host's outbound layer, so the kit runs on every pull request with no
//! secret, no personal data and no test system.
//!
//! Placeholders: the `k`-th email address becomes `pKxxx@kit.invalid`
//! (padded to the original's length, so that the sizes a system announces
//! stay true), phone numbers numbers of Ofcom's drama range
//! (`+4420794609KK`; their other spellings by their last nine digits),
//! names `Person K`, external ids `conformance-K`. A recording in
//! which any of the fixture's identifiers or the secrets still shows, in a
//! spelling this does not rewrite, is refused rather than written.

use oubli_runtime::Recorded;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// The file a recording is kept in, inside its directory.
pub const FILE: &str = "cassette.json";
/// The rewritten fixture, beside it.
pub const FIXTURE: &str = "conformance.toml";

/// Headers that carry credentials or sessions: never kept.
const DROPPED: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "www-authenticate",
];

/// What was recorded of one connector against one system.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cassette {
    /// `id@version` of the connector recorded.
    pub connector: String,
    /// Its component's SHA-256.
    pub sha256: String,
    /// The exchanges, in the order they happened.
    pub exchanges: Vec<Exchange>,
}

/// One request and the system's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exchange {
    /// Method.
    pub method: String,
    /// Path and query, rewritten.
    pub path: String,
    /// The answer's status.
    pub status: u16,
    /// Its headers, rewritten, credentials dropped.
    pub headers: Vec<(String, String)>,
    /// Its body, base64, rewritten; `None` when the connector did not read
    /// it to its end.
    pub body: Option<String>,
}

/// The rewriting of a recording: each (original, placeholder), longest
/// original first; and phone numbers by their last nine digits wherever
/// they are written with spaces, dots, dashes or brackets between them.
pub(super) struct Scrub {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    /// (last nine digits, their placeholder).
    numbers: Vec<(String, String)>,
}

impl Scrub {
    /// The rewriting for the fixture's people (`groups`: the subject, each
    /// decoy and the unknown, as given) and the secrets.
    pub(super) fn new(groups: &[&crate::identifiers::Identifiers], secrets: &[String]) -> Scrub {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut numbers = Vec::new();
        let (mut e, mut p, mut n, mut x) = (0, 0, 0, 0);
        for g in groups {
            for email in &g.emails {
                e += 1;
                // As long as the address it stands for, where it can be:
                // sizes a system announces (a message's) stay true.
                let domain = "@kit.invalid";
                let mut local = format!("p{e}");
                while local.len() + domain.len() < email.len() {
                    local.push('x');
                }
                let to = format!("{local}{domain}");
                pairs.push((percent(email), percent(&to)));
                pairs.push((email.clone(), to.clone()));
            }
            for phone in &g.phones {
                p += 1;
                let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
                let to = format!("+4420794609{p:02}");
                if phone.trim_start().starts_with('+') {
                    pairs.push((format!("+{digits}"), to.clone()));
                    pairs.push((percent(&format!("+{digits}")), percent(&to)));
                    pairs.push((digits.clone(), to[1..].to_string()));
                }
                pairs.push((phone.clone(), to.clone()));
                if digits.len() >= 9 {
                    let (from, to) = (
                        digits[digits.len() - 9..].to_string(),
                        to[to.len() - 9..].to_string(),
                    );
                    pairs.push((from.clone(), to.clone()));
                    numbers.push((from, to));
                }
            }
            for name in &g.names {
                n += 1;
                pairs.push((name.clone(), format!("Person {n}")));
            }
            for id in &g.external_ids {
                x += 1;
                pairs.push((id.clone(), format!("conformance-{x}")));
            }
        }
        for s in secrets {
            pairs.push((s.clone(), "[secret]".into()));
        }
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = pairs
            .into_iter()
            .filter(|(from, _)| from.len() >= 4)
            .map(|(a, b)| (a.into_bytes(), b.into_bytes()))
            .collect();
        pairs.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        pairs.dedup_by(|a, b| a.0 == b.0);
        Scrub { pairs, numbers }
    }

    /// `bytes` rewritten.
    pub(super) fn bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for (from, to) in &self.pairs {
            out = replace(&out, from, to);
        }
        match String::from_utf8(out) {
            Ok(text) => self.spaced_numbers(&text).into_bytes(),
            Err(e) => e.into_bytes(),
        }
    }

    /// `text` with each run of digits (separators between them kept) whose
    /// digits contain a number's last nine rewritten, digit by digit.
    fn spaced_numbers(&self, text: &str) -> String {
        if self.numbers.is_empty() {
            return text.to_string();
        }
        let mut chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if !chars[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            // The run: digits, with single separators between them.
            let start = i;
            let mut end = i;
            let mut j = i;
            while j < chars.len() {
                if chars[j].is_ascii_digit() {
                    end = j + 1;
                    j += 1;
                } else if matches!(chars[j], ' ' | '.' | '-' | '/' | '(' | ')')
                    && chars
                        .get(j + 1)
                        .is_some_and(|c| c.is_ascii_digit() || *c == '(')
                {
                    j += 1;
                } else {
                    break;
                }
            }
            let places: Vec<usize> = (start..end)
                .filter(|&k| chars[k].is_ascii_digit())
                .collect();
            let digits: String = places.iter().map(|&k| chars[k]).collect();
            for (from, to) in &self.numbers {
                let mut from_at = 0;
                while let Some(at) = digits[from_at..].find(from.as_str()) {
                    let at = from_at + at;
                    for (n, c) in to.chars().enumerate() {
                        chars[places[at + n]] = c;
                    }
                    from_at = at + from.len();
                }
            }
            i = end.max(i + 1);
        }
        chars.into_iter().collect()
    }

    /// `text` rewritten.
    pub(super) fn text(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.bytes(text.as_bytes())).into_owned()
    }

    /// One exchange rewritten, credentials dropped.
    pub(super) fn exchange(&self, r: Recorded) -> Exchange {
        use base64::Engine as _;
        Exchange {
            method: r.method,
            path: self.text(&r.path),
            status: r.status,
            headers: r
                .headers
                .into_iter()
                .filter(|(k, _)| !DROPPED.contains(&k.to_ascii_lowercase().as_str()))
                .map(|(k, v)| (k, self.text(&v)))
                .collect(),
            body: r
                .body
                .map(|b| base64::engine::general_purpose::STANDARD.encode(self.bytes(&b))),
        }
    }
}

fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() || haystack.len() < from.len() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        // In any letter case: a server may echo an address in capitals.
        if haystack.len() - i >= from.len()
            && haystack[i..i + from.len()].eq_ignore_ascii_case(from)
        {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// A recording being served: each exchange answers the next request with
/// its method and path, in recorded order.
pub(super) struct Player {
    queue: HashMap<(String, String), VecDeque<Exchange>>,
}

impl Player {
    pub(super) fn new(c: &Cassette) -> Player {
        let mut queue: HashMap<(String, String), VecDeque<Exchange>> = HashMap::new();
        for e in &c.exchanges {
            queue
                .entry((e.method.clone(), e.path.clone()))
                .or_default()
                .push_back(e.clone());
        }
        Player { queue }
    }

    /// The recorded answer to this request, if one is left.
    pub(super) fn answer(&mut self, method: &str, path: &str) -> Option<oubli_runtime::Fault> {
        use base64::Engine as _;
        let e = self
            .queue
            .get_mut(&(method.to_string(), path.to_string()))?
            .pop_front()?;
        Some(oubli_runtime::Fault::Respond {
            status: e.status,
            headers: e
                .headers
                .into_iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.to_ascii_lowercase().as_str(),
                        "content-length" | "transfer-encoding" | "connection"
                    )
                })
                .collect(),
            body: e
                .body
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_it_knows_is_rewritten_and_credentials_dropped() {
        let subject = crate::identifiers::Identifiers {
            emails: vec!["Ada+Calls@Example.com".into()],
            phones: vec!["+33612345678".into()],
            ..Default::default()
        };
        let s = Scrub::new(&[&subject], &["s3cret-token".into()]);
        assert_eq!(
            s.text("Write to ADA+CALLS@EXAMPLE.COM"),
            "Write to p1xxxxxxx@kit.invalid"
        );
        let e = s.exchange(Recorded {
            method: "GET".into(),
            path: "/people?email=ada%2Bcalls%40example.com&phone=%2B33612345678".into(),
            status: 200,
            headers: vec![
                ("set-cookie".into(), "sid=1".into()),
                ("x-echo".into(), "s3cret-token".into()),
            ],
            body: Some(
                br#"{"email":"ada+calls@example.com","phone":"33612345678","national":"0612345678","spaced":"06 12 34 56 78"}"#
                    .to_vec(),
            ),
        });
        assert_eq!(
            e.path,
            "/people?email=p1xxxxxxx%40kit.invalid&phone=%2B442079460901"
        );
        assert_eq!(
            e.headers,
            vec![("x-echo".to_string(), "[secret]".to_string())]
        );
        use base64::Engine as _;
        let body = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(e.body.unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            body,
            r#"{"email":"p1xxxxxxx@kit.invalid","phone":"442079460901","national":"0079460901","spaced":"00 79 46 09 01"}"#
        );
    }
}
