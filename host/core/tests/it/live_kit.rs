//! The conformance kit, live, on the real servers' systems (used by
//! `cyrus.rs` and `rt.rs`; apart from `real_server`, which the benches share).

use oubli_core::config::Config;
use std::path::Path;

/// Run the conformance kit, destructive cases included, on the system
/// configured in `dir` (see [`connector`]) with `fixture` (TOML): no case
/// may fail, and each of `passes` must pass (not be skipped).
pub async fn kit_passes(dir: &Path, fixture: &str, passes: &[&str]) {
    use oubli_core::conformance::{self, Fixture, Options, Verdict};
    let fixture = Fixture::parse(fixture).unwrap();
    let config = Config::load(&dir.join("oubli.toml")).unwrap();
    let report = conformance::test(
        &config,
        "server",
        &fixture,
        Options {
            destructive: true,
            ..Default::default()
        },
        true,
    )
    .await
    .unwrap();
    let failed: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| format!("{}: {}", c.name, c.reason))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    for case in passes {
        assert!(
            report
                .cases
                .iter()
                .any(|c| c.name == *case && c.verdict == Verdict::Pass),
            "{case}: {:#?}",
            report.cases
        );
    }
}
