//! Retention policies as the integrator writes them (`[retention]` in
//! oubli.toml): which records of which system go after how long, how, and
//! under what checks: the types, periods and rates. Read from the file and
//! checked in [`crate::config`], like the rest of it; carried out by
//! [`crate::rights::retention`].

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

/// A calendar period: years, months and days, counted back in UTC from the
/// moment a sweep starts (`3 years`, `18 months`, `P1Y6M`, `90 days`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Period {
    /// Years.
    pub years: u32,
    /// Months.
    pub months: u32,
    /// Days.
    pub days: u32,
}

impl Period {
    /// Read `3 years`, `1 year 6 months`, `90 days`, `2y`, or ISO 8601
    /// (`P3Y`, `P1Y6M`, `P90D`, `P2W`). A period of nothing is refused: it
    /// would make everything due at once.
    ///
    /// ```
    /// use oubli_core::retention::Period;
    /// assert_eq!(Period::parse("P1Y6M").unwrap(), Period::parse("1 year 6 months").unwrap());
    /// assert_eq!(Period::parse("2w").unwrap().days, 14);
    /// assert!(Period::parse("0 days").is_err());
    /// assert!(Period::parse("soon").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Period, String> {
        let bad = || {
            format!(
                "{text:?} is not a period (use e.g. \"3 years\", \"18 months\", \"90 days\" or ISO 8601 \"P3Y\")"
            )
        };
        let t = text.trim();
        let mut p = Period {
            years: 0,
            months: 0,
            days: 0,
        };
        let mut add = |n: u32, unit: &str| -> Result<(), String> {
            match unit {
                "y" | "year" | "years" => p.years = p.years.checked_add(n).ok_or_else(bad)?,
                "m" | "mo" | "month" | "months" => {
                    p.months = p.months.checked_add(n).ok_or_else(bad)?
                }
                "w" | "week" | "weeks" => {
                    p.days = p
                        .days
                        .checked_add(n.checked_mul(7).ok_or_else(bad)?)
                        .ok_or_else(bad)?
                }
                "d" | "day" | "days" => p.days = p.days.checked_add(n).ok_or_else(bad)?,
                _ => return Err(bad()),
            }
            Ok(())
        };
        if let Some(iso) = t.strip_prefix('P').or_else(|| t.strip_prefix('p')) {
            if iso.is_empty() || iso.contains(['T', 't']) {
                return Err(bad());
            }
            let mut num = String::new();
            for c in iso.chars() {
                if c.is_ascii_digit() {
                    num.push(c);
                } else {
                    let n: u32 = num.parse().map_err(|_| bad())?;
                    num.clear();
                    add(n, &c.to_ascii_lowercase().to_string())?;
                }
            }
            if !num.is_empty() {
                return Err(bad());
            }
        } else {
            let lower = t.to_lowercase();
            let mut rest = lower.as_str();
            if rest.is_empty() {
                return Err(bad());
            }
            while !rest.is_empty() {
                let digits = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                let n: u32 = rest[..digits].parse().map_err(|_| bad())?;
                rest = rest[digits..].trim_start();
                let unit_len = rest
                    .find(|c: char| !c.is_ascii_alphabetic())
                    .unwrap_or(rest.len());
                add(n, &rest[..unit_len])?;
                rest = rest[unit_len..].trim_start_matches([' ', ',']);
                rest = rest.strip_prefix("and ").unwrap_or(rest);
            }
        }
        if p.years == 0 && p.months == 0 && p.days == 0 {
            return Err(format!(
                "{text:?} is no time at all: a period must be positive"
            ));
        }
        Ok(p)
    }

    /// The moment `self` before `at` (milliseconds, UTC calendar: a month
    /// back from 31 March is the last day of February).
    pub fn before(&self, at: i64) -> i64 {
        let Ok(ts) = jiff::Timestamp::from_millisecond(at) else {
            return i64::MIN;
        };
        let span = jiff::Span::new()
            .years(i64::from(self.years))
            .months(i64::from(self.months))
            .days(i64::from(self.days));
        ts.to_zoned(jiff::tz::TimeZone::UTC)
            .checked_sub(span)
            .map_or(i64::MIN, |z| z.timestamp().as_millisecond())
    }

    /// Roughly how long, for comparing periods (a year as 366 days, a
    /// month as 31: the longer reading, so "longest wins" never shortens).
    pub fn upper_days(&self) -> u64 {
        u64::from(self.years) * 366 + u64::from(self.months) * 31 + u64::from(self.days)
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "P")?;
        if self.years > 0 {
            write!(f, "{}Y", self.years)?;
        }
        if self.months > 0 {
            write!(f, "{}M", self.months)?;
        }
        if self.days > 0 {
            write!(f, "{}D", self.days)?;
        }
        Ok(())
    }
}

/// What a policy does with a record past its period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetentionAction {
    /// Erase with `delete`.
    Delete,
    /// Erase with `anonymise`.
    Anonymise,
    /// Never erase: list what is due for a person to decide (disposition
    /// review).
    Review,
}

/// Whether a policy may erase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetentionMode {
    /// Only test runs: what would go is listed, nothing is erased.
    Test,
    /// Test runs and, once a test run is accepted, enforcing runs.
    Enforce,
}

/// One retention policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// Its name, unique (`mail-2y`).
    pub id: String,
    /// The system, by its name in `[systems]`.
    pub system: String,
    /// The data category, one the system's connector can sweep.
    pub category: String,
    /// The date the period runs from; `None` for the category's default.
    pub trigger: Option<String>,
    /// How long records are kept after the trigger date.
    pub period: Period,
    /// What happens to them then.
    pub action: RetentionAction,
    /// Whether runs may erase.
    pub mode: RetentionMode,
    /// A test run finding more than this many records must be approved
    /// by a second person before it is enforced.
    pub approval_threshold: u64,
    /// At most this many records erased per run.
    pub max_per_run: u64,
    /// How often a worker runs it by itself; `None`: only by hand.
    pub every: Option<Duration>,
    /// What the policy is for, in the controller's words.
    pub description: Option<String>,
}

impl RetentionPolicy {
    /// SHA-256 (hex) of the policy as written: a run names the exact policy
    /// it ran under, and an approval holds only for that one.
    pub fn digest(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(canonical))
    }
}

/// A per-system call budget that every worker draws from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Calls per second allowed, on average.
    pub per_second: f64,
    /// How many calls may go at once after a quiet spell.
    pub burst: f64,
}

impl Budget {
    /// Read `300/min`, `4/s`, `1000/h`.
    ///
    /// ```
    /// use oubli_core::retention::Budget;
    /// assert_eq!(Budget::parse("300/min").unwrap().per_second, 5.0);
    /// assert!(Budget::parse("fast").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Budget, String> {
        let bad =
            || format!("{text:?} is not a rate (use e.g. \"300/min\", \"4/s\" or \"1000/h\")");
        let (n, unit) = text.trim().split_once('/').ok_or_else(bad)?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            _ => return Err(bad()),
        };
        if n == 0 {
            return Err(format!("{text:?} allows no call at all"));
        }
        let per_second = f64::from(n) / secs;
        Ok(Budget {
            per_second,
            // A second's worth, at least one call.
            burst: per_second.max(1.0),
        })
    }
}

/// `[retention]`: the policies and how sweeps run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetentionSettings {
    /// The policies, in the order written.
    pub policies: Vec<RetentionPolicy>,
    /// Records asked of a connector per page.
    pub page: u32,
    /// Taken off the cutoff, so a record dated by a system whose clock runs
    /// ahead is not taken as due early.
    pub skew: Duration,
    /// Call budgets per system.
    pub budgets: BTreeMap<String, Budget>,
    /// Of each budget, the share sweeps may use; the rest is kept for
    /// request work.
    pub sweep_share: f64,
    /// How long a process holds a run without progress before another may
    /// take it up (its holder died).
    pub lease: Duration,
    /// oubli's own records: a request is crypto-shredded this long after it
    /// ended (its identifiers, plan, results, notes and kept answer become
    /// unreadable; its id, states, dates, counts and certificate remain).
    /// `None`: kept until shredded by hand.
    pub requests: Option<Period>,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            policies: Vec::new(),
            page: 200,
            skew: Duration::from_secs(300),
            budgets: BTreeMap::new(),
            sweep_share: 0.5,
            lease: Duration::from_secs(120),
            requests: None,
        }
    }
}

impl RetentionSettings {
    /// The policy named `id`.
    pub fn policy(&self, id: &str) -> Option<&RetentionPolicy> {
        self.policies.iter().find(|p| p.id == id)
    }

    /// The longest period of every policy over the same system and
    /// category as `policy` (itself included): the longest retention wins,
    /// so nothing goes before every policy that covers it agrees.
    pub fn longest(&self, policy: &RetentionPolicy) -> Period {
        self.policies
            .iter()
            .filter(|p| p.system == policy.system && p.category == policy.category)
            .map(|p| p.period)
            .max_by_key(Period::upper_days)
            .unwrap_or(policy.period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_count_back_on_the_calendar() {
        let at = jiff::Timestamp::from_second(1_774_915_200).unwrap(); // 2026-03-31
        let p = Period::parse("1 month").unwrap();
        let back = jiff::Timestamp::from_millisecond(p.before(at.as_millisecond())).unwrap();
        assert_eq!(back.to_string(), "2026-02-28T00:00:00Z");
        let p = Period::parse("P3Y").unwrap();
        let back = jiff::Timestamp::from_millisecond(p.before(at.as_millisecond())).unwrap();
        assert_eq!(back.to_string(), "2023-03-31T00:00:00Z");
    }

    #[test]
    fn periods_read_both_spellings() {
        for (text, years, months, days) in [
            ("3 years", 3, 0, 0),
            ("18 months", 0, 18, 0),
            ("1 year, 6 months and 2 days", 1, 6, 2),
            ("P1Y2M3D", 1, 2, 3),
            ("p2w", 0, 0, 14),
            ("90d", 0, 0, 90),
        ] {
            assert_eq!(
                Period::parse(text).unwrap(),
                Period {
                    years,
                    months,
                    days
                },
                "{text}"
            );
        }
        for bad in ["", "P", "PT1H", "3 fortnights", "years", "P1Y2", "-1 year"] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
    }
}
