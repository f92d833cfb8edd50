//! The languages oubli writes in for a data subject, and what each writes
//! its own way: a colon after a heading, French typography, dates. Below
//! every text that uses them (the register, notices, the answer), so none
//! of those depends on another for its language.

/// A language the subject may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// French.
    Fr,
}

impl Lang {
    /// Every language, by code.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    /// Its code (`en`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// Its name, in English (for messages to the operator).
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Fr => "French",
        }
    }

    /// Read a code.
    pub fn parse(s: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == s)
    }
}

/// `:` as the language writes it after a heading.
pub fn colon(lang: Lang) -> &'static str {
    match lang {
        Lang::En => ":",
        Lang::Fr => "\u{a0}:",
    }
}

/// Whether `text` follows French typography: a no-break space (U+00A0 or
/// U+202F) before `:`, `;`, `?` and `!` (a plain one lets the mark wrap
/// onto the next line). A URL's `://` is not punctuation.
pub fn french_typography(text: &str) -> Result<(), String> {
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if !matches!(c, ':' | ';' | '?' | '!') {
            continue;
        }
        if *c == ':' && chars.get(i + 1) == Some(&'/') {
            continue;
        }
        let before = i.checked_sub(1).map(|j| chars[j]);
        if !matches!(before, Some('\u{a0}' | '\u{202f}')) {
            let start = i.saturating_sub(30);
            let around: String = chars[start..(i + 1).min(chars.len())].iter().collect();
            return Err(format!(
                "{c:?} needs a no-break space before it (\\u00A0), after {around:?}"
            ));
        }
    }
    Ok(())
}

/// An RFC 3339 time as a person reads it in `lang` (UTC), or `None` if
/// the text is not one.
pub fn human_date(s: &str, lang: Lang) -> Option<String> {
    let ts: jiff::Timestamp = s.trim().parse().ok()?;
    let z = ts.to_zoned(jiff::tz::TimeZone::UTC);
    let (months, at) = match lang {
        Lang::En => (
            [
                "January",
                "February",
                "March",
                "April",
                "May",
                "June",
                "July",
                "August",
                "September",
                "October",
                "November",
                "December",
            ],
            ",",
        ),
        Lang::Fr => (
            [
                "janvier",
                "février",
                "mars",
                "avril",
                "mai",
                "juin",
                "juillet",
                "août",
                "septembre",
                "octobre",
                "novembre",
                "décembre",
            ],
            " à",
        ),
    };
    let month = months[(z.month() as usize).checked_sub(1)?];
    Some(format!(
        "{} {month} {}{at} {:02}:{:02} UTC",
        z.day(),
        z.year(),
        z.hour(),
        z.minute()
    ))
}
