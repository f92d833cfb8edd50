//! The region the host reads national phone numbers in (the integrator's
//! `[identifiers] default_region`), which the host hands every connector as
//! settings under `oubli.`: `oubli.region` (`GB`), `oubli.calling-code`
//! (`44`) and `oubli.trunk-prefix` (`0`). A connector whose system stores
//! numbers as people dial them needs no configuration of its own for it.

use crate::text::{national_number, to_e164};

/// The host's region for phone numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// ISO 3166 code (`GB`).
    pub code: String,
    /// International calling code (`44`).
    pub calling_code: String,
    /// National trunk prefix (`0`; empty where none is dialled, as in NANP).
    pub trunk_prefix: String,
}

impl Region {
    /// The host's region, or `None` when the integrator configured none.
    pub fn from_host() -> Option<Region> {
        Some(Region {
            calling_code: crate::config("oubli.calling-code").filter(|c| !c.is_empty())?,
            code: crate::config("oubli.region").unwrap_or_default(),
            trunk_prefix: crate::config("oubli.trunk-prefix").unwrap_or_default(),
        })
    }

    /// Every form an E.164 number may be stored in: itself, and its
    /// national form when it is a number of this region.
    ///
    /// ```
    /// use oubli_plugin::region::Region;
    /// let gb = Region { code: "GB".into(), calling_code: "44".into(), trunk_prefix: "0".into() };
    /// assert_eq!(gb.forms("+442079460123"), ["+442079460123", "02079460123"]);
    /// assert_eq!(gb.forms("+33612345678"), ["+33612345678"]);
    /// ```
    pub fn forms(&self, e164: &str) -> Vec<String> {
        let mut out = vec![e164.to_string()];
        out.extend(national_number(
            e164,
            &self.calling_code,
            &self.trunk_prefix,
        ));
        out
    }

    /// E.164 of a number as a system stored it, national numbers read in
    /// this region (see [`to_e164`]).
    pub fn to_e164(&self, raw: &str) -> Option<String> {
        to_e164(raw, &self.calling_code, &self.trunk_prefix)
    }
}

/// Every form the numbers may be stored in, in the host's region (only the
/// E.164 forms when the host has none).
pub fn phone_forms(phones: &[String]) -> Vec<String> {
    let region = Region::from_host();
    phones
        .iter()
        .flat_map(|p| match &region {
            Some(r) => r.forms(p),
            None => vec![p.clone()],
        })
        .collect()
}

/// E.164 of a stored number, national numbers read in the host's region; a
/// national number without a host region is `None`.
pub fn stored_to_e164(raw: &str) -> Option<String> {
    match Region::from_host() {
        Some(r) => r.to_e164(raw),
        None => raw
            .trim_start()
            .starts_with('+')
            .then(|| to_e164(raw, "", ""))
            .flatten(),
    }
}
