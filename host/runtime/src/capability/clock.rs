//! `host.now`: the wall clock, in milliseconds since the Unix epoch. A
//! connector has no other clock it may trust for timestamps it reports.

use oubli_model::Timestamp;

/// The current time.
pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
