//! Masking the current subject's identifiers in what a connector says.
//!
//! The host cannot recognise every piece of personal data, but it knows the
//! identifiers it handed the connector for this call. Before a connector's
//! log line, error message, record summary or hold reason is logged, stored
//! or shown, each of them is replaced: emails (any letter case, and
//! percent-encoded as in a URL), phone numbers in any spelling that ends with
//! the number's significant digits (E.164, `00`-prefixed, national with a
//! trunk prefix, spaced, dashed, bracketed), names (the whole name and each
//! part of three letters or more, whole words, any case), and external ids.
//! The connector's own secrets are masked the same way, subject or not.
//!
//! ```
//! use oubli_model::Subject;
//! use oubli_runtime::capability::mask::Mask;
//! let mask = Mask::new(&Subject {
//!     emails: vec!["Ada@Example.com".into()],
//!     phones: vec!["+442079460123".into()],
//!     names: vec!["Ada Lovelace".into()],
//!     ..Default::default()
//! });
//! assert_eq!(
//!     mask.apply("no match for ada@example.com, 020 7946 0123 (Lovelace)"),
//!     "no match for [email], [phone] ([name])"
//! );
//! ```

use oubli_model::Subject;
use std::borrow::Cow;

/// Digits of a phone number that identify it whatever its spelling.
const PHONE_TAIL: usize = 9;
/// Shortest digit run taken for a phone number.
const MIN_PHONE_DIGITS: usize = 7;

/// The identifiers of one subject, ready to mask.
#[derive(Default)]
pub struct Mask {
    /// Lower-cased needles and what replaces them, longest first.
    words: Vec<(Vec<char>, &'static str, bool)>,
    /// The significant trailing digits of each phone number.
    phone_tails: Vec<String>,
    /// The needles of `words` as strings, for the quick check.
    needles: Vec<String>,
}

impl std::fmt::Debug for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Mask({} identifiers)",
            self.words.len() + self.phone_tails.len()
        )
    }
}

fn lower(s: &str) -> Vec<char> {
    s.chars().flat_map(char::to_lowercase).collect()
}

impl Mask {
    /// The mask of a subject's identifiers.
    pub fn new(subject: &Subject) -> Mask {
        let mut words: Vec<(Vec<char>, &'static str, bool)> = Vec::new();
        for e in &subject.emails {
            words.push((lower(e), "[email]", false));
            words.push((lower(&e.replace('@', "%40")), "[email]", false));
        }
        for n in &subject.names {
            words.push((lower(n), "[name]", true));
            for part in n.split_whitespace().filter(|p| p.chars().count() >= 3) {
                words.push((lower(part), "[name]", true));
            }
        }
        for x in &subject.external_ids {
            if x.id.chars().count() >= 3 {
                words.push((lower(&x.id), "[id]", false));
            }
        }
        words.retain(|(w, _, _)| !w.is_empty());
        words.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        let phone_tails = subject
            .phones
            .iter()
            .map(|p| p.chars().filter(char::is_ascii_digit).collect::<String>())
            .filter(|d| d.len() >= MIN_PHONE_DIGITS)
            .map(|d| d[d.len().saturating_sub(PHONE_TAIL)..].to_string())
            .collect();
        let needles = words.iter().map(|(w, _, _)| w.iter().collect()).collect();
        Mask {
            words,
            phone_tails,
            needles,
        }
    }

    /// Also mask these secret values (`[secret]`): what the host handed the
    /// connector with `host.secret` never comes back out through it.
    pub fn with_secrets<'a>(mut self, secrets: impl IntoIterator<Item = &'a str>) -> Mask {
        for value in secrets.into_iter().filter(|v| v.chars().count() >= 4) {
            self.words.push((lower(value), "[secret]", false));
            self.needles.push(lower(value).into_iter().collect());
        }
        self.words.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        self
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.phone_tails.is_empty()
    }

    /// `text` with every identifier of the subject replaced (borrowed back
    /// unchanged when there is none: the common case, kept cheap).
    pub fn apply<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.is_empty() || !self.may_hold_identifier(text) {
            return Cow::Borrowed(text);
        }
        let words = self.mask_words(text);
        Cow::Owned(self.mask_phones(&words))
    }

    /// A quick over-approximation: could `text` hold any identifier?
    fn may_hold_identifier(&self, text: &str) -> bool {
        let digits = text.bytes().filter(u8::is_ascii_digit).count();
        if !self.phone_tails.is_empty() && digits >= MIN_PHONE_DIGITS {
            return true;
        }
        if self.words.is_empty() {
            return false;
        }
        let folded: String = text.chars().flat_map(char::to_lowercase).collect();
        self.needles
            .iter()
            .any(|needle| folded.contains(needle.as_str()))
    }

    fn mask_words(&self, text: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        let folded: Vec<char> = chars
            .iter()
            .map(|c| {
                let mut l = c.to_lowercase();
                match (l.next(), l.next()) {
                    (Some(one), None) => one,
                    _ => *c,
                }
            })
            .collect();
        let is_word = |c: char| c.is_alphanumeric();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        'outer: while i < chars.len() {
            for (needle, token, whole_word) in &self.words {
                let end = i + needle.len();
                if end <= folded.len() && folded[i..end] == needle[..] {
                    let bounded = !whole_word
                        || ((i == 0 || !is_word(chars[i - 1]))
                            && (end == chars.len() || !is_word(chars[end])));
                    if bounded {
                        out.push_str(token);
                        i = end;
                        continue 'outer;
                    }
                }
            }
            out.push(chars[i]);
            i += 1;
        }
        out
    }

    fn mask_phones(&self, text: &str) -> String {
        if self.phone_tails.is_empty() {
            return text.to_string();
        }
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            let starts = chars[i].is_ascii_digit() || chars[i] == '+' || chars[i] == '(';
            if !starts {
                out.push(chars[i]);
                i += 1;
                continue;
            }
            // A run of digits and the separators people write numbers with.
            let mut end = i;
            let mut digits = String::new();
            let mut last_digit_end = i;
            let matches = |digits: &str| {
                digits.len() >= MIN_PHONE_DIGITS
                    && self
                        .phone_tails
                        .iter()
                        .any(|tail| digits.ends_with(tail.as_str()) || tail.ends_with(digits))
            };
            while end < chars.len() {
                let c = chars[end];
                if c == '(' && matches(&digits) {
                    // A number already complete: the bracket opens what
                    // follows ("+44 20 7946 0123 (020 7946 0123)").
                    break;
                }
                if c.is_ascii_digit() {
                    digits.push(c);
                    end += 1;
                    last_digit_end = end;
                } else if c == ')'
                    || ("+-(). /".contains(c)
                        && chars
                            .get(end + 1)
                            .is_some_and(|n| n.is_ascii_digit() || "+(".contains(*n)))
                {
                    end += 1;
                } else {
                    break;
                }
            }
            let is_phone = matches(&digits);
            if is_phone {
                // A bracket opened before the number and not closed within
                // it belongs to the text around it: "(+44 20 7946 0123)".
                let span = &chars[i..last_digit_end];
                let opened = span.iter().filter(|c| **c == '(').count();
                let closed = span.iter().filter(|c| **c == ')').count();
                if chars[i] == '(' && opened > closed {
                    out.push('(');
                }
                out.push_str("[phone]");
                i = last_digit_end.max(i + 1);
            } else {
                let stop = last_digit_end.max(i + 1);
                out.extend(&chars[i..stop]);
                i = stop;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oubli_model::ExternalId;

    fn subject() -> Subject {
        Subject {
            emails: vec!["camille.martin@example.org".into()],
            phones: vec!["+442079460123".into()],
            names: vec!["Camille Martin".into()],
            external_ids: vec![ExternalId {
                namespace: "crm.contact".into(),
                id: "C-1042".into(),
            }],
        }
    }

    #[test]
    fn brackets_around_a_masked_number_are_kept() {
        let m = Mask::new(&subject());
        assert_eq!(
            m.apply("call +442079460123 (020 7946 0123) or (0)20 7946 0123"),
            "call [phone] ([phone]) or [phone]"
        );
        assert_eq!(m.apply("(020) 7946 0123 today"), "[phone] today");
    }

    #[test]
    fn every_spelling_of_every_identifier_is_masked() {
        let m = Mask::new(&subject());
        let said = "CAMILLE.MARTIN@EXAMPLE.ORG camille.martin%40example.org \
                    +442079460123 02079460123 020 7946 0123 +44 20 7946 0123 \
                    0044 (0)20-7946-0123 camille MARTIN Camille Martin C-1042";
        let masked = m.apply(said);
        for leak in [
            "camille", "martin", "CAMILLE", "MARTIN", "7946", "0123", "1042",
        ] {
            assert!(!masked.contains(leak), "{leak} in {masked}");
        }
        assert!(
            masked.contains("[email]") && masked.contains("[phone]") && masked.contains("[name]")
        );
    }

    #[test]
    fn other_text_is_left_alone() {
        let m = Mask::new(&subject());
        assert_eq!(
            m.apply("HTTP 503 from 127.0.0.1:8080 after 3 tries; 12 records, id 4711"),
            "HTTP 503 from 127.0.0.1:8080 after 3 tries; 12 records, id 4711"
        );
        // Whole words only for names: "Martinique" is not the subject.
        assert_eq!(m.apply("Martinique"), "Martinique");
        // Another number stays.
        assert_eq!(m.apply("call +33 6 12 34 56 78"), "call +33 6 12 34 56 78");
        assert_eq!(Mask::new(&Subject::default()).apply("ada"), "ada");
    }
}
