//! The vendor kit through the binary: `oubli connector test` passes the
//! reference people-directory connector and catches each broken one by the
//! case meant for it; `oubli connector new` writes a crate that builds,
//! loads and passes; `oubli sandbox` serves what they run against; a
//! pinned component that differs is refused.

use oubli_testing::people_directory;
use oubli_testing::plugins as built_plugins;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `oubli ARGS` in `dir`, awaited without blocking the runtime that
/// serves the stand-ins.
async fn oubli(args: &[&str], dir: &Path) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_oubli"))
        .args(args)
        .current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("OUBLI_CONFIG")
        .output()
        .await
        .expect("oubli runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The fixture `oubli connector new` and `oubli sandbox` write: what the
/// directory stand-in holds of Ada.
fn fixture() -> PathBuf {
    oubli_testing::repo_root().join("host/cli/templates/connector/conformance.toml")
}

/// An oubli.toml in `dir` with `component` as system `directory`, talking
/// to a fresh directory stand-in, with `config` added to its settings.
async fn directory(dir: &Path, component: &str, config: &str) -> PathBuf {
    directory_with(dir, component, config).await.0
}

/// [`directory`], and the stand-in's state (to make it misbehave).
async fn directory_with(
    dir: &Path,
    component: &str,
    config: &str,
) -> (PathBuf, std::sync::Arc<people_directory::Directory>) {
    let (addr, people) = people_directory::serve().await;
    std::fs::write(dir.join("token"), "dir-token\n").unwrap();
    let path = dir.join("oubli.toml");
    std::fs::write(
        &path,
        format!(
            "[identifiers]\ndefault_region = \"FR\"\n\n\
             [systems.directory]\nconnector = {component:?}\nallow_hosts = [\"http://{addr}\"]\nallow_loopback = true\n\
             config = {{ base_url = \"http://{addr}/api\"{config} }}\nsecrets = {{ token = {{ file = \"token\" }} }}\n\
             limits = {{ timeout = \"1s\" }}\n"
        ),
    )
    .unwrap();
    (path, people)
}

/// `oubli connector test -c CONFIG --system SYSTEM ARGS --format json` in
/// `dir`: how it ended, and its report.
async fn connector_test(dir: &Path, config: &Path, system: &str, args: &[&str]) -> (Output, Value) {
    let mut all = vec![
        "connector",
        "test",
        "--config",
        config.to_str().unwrap(),
        "--system",
        system,
        "--format",
        "json",
    ];
    all.extend_from_slice(args);
    let out = oubli(&all, dir).await;
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{system}: {e}: {}{}", text(&out.stdout), text(&out.stderr)));
    (out, report)
}

/// The kit on system `directory` with the people directory's fixture.
async fn kit(dir: &Path, config: &Path, more: &[&str]) -> (Output, Value) {
    let fixture = fixture();
    let mut args = vec!["--fixture", fixture.to_str().unwrap()];
    args.extend_from_slice(more);
    connector_test(dir, config, "directory", &args).await
}

fn failed(report: &Value) -> Vec<String> {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_connector_passes_every_case_and_each_broken_one_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let config = directory(dir.path(), built_plugins::EXAMPLE_REST, "").await;
    let (out, report) = kit(dir.path(), &config, &["--destructive"]).await;
    assert!(out.status.success(), "{report:#}");
    assert_eq!(failed(&report), Vec::<String>::new());
    let sha = report["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    let passed = |name: &str| {
        report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == name && c["verdict"] == "pass")
    };
    for case in [
        "locate.decoys",
        "locate.read-only",
        "faults.429-date",
        "faults.reset",
        "faults.partial",
        "faults.slow",
        "rectify.read-back",
        "erase.gone",
        "erase.others-survive",
        "erase.missing",
    ] {
        assert!(passed(case), "{case}: {report:#}");
    }

    // Each broken connector, against a fresh directory: caught by the case
    // meant for it (and, but for the reset, by that case alone).
    for (broken, caught) in [
        ("decoy", vec!["locate.decoys"]),
        ("done-for-missing", vec!["erase.missing"]),
        ("pii-in-summary", vec!["locate.summaries"]),
        ("write-in-locate", vec!["locate.read-only"]),
        ("reset-internal", vec!["faults.503", "faults.reset"]),
        ("pii-in-log", vec!["log.clean"]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = directory(
            dir.path(),
            built_plugins::BROKEN,
            &format!(", break = \"{broken}\""),
        )
        .await;
        let (out, report) = kit(dir.path(), &config, &["--destructive"]).await;
        assert_eq!(out.status.code(), Some(1), "{broken}: {report:#}");
        assert_eq!(failed(&report), caught, "{broken}: {report:#}");
    }
    // One that answers with what it could read: every fault catches it,
    // and the partial one says what it did.
    let dir = tempfile::tempdir().unwrap();
    let config = directory(
        dir.path(),
        built_plugins::BROKEN,
        ", break = \"swallow-errors\"",
    )
    .await;
    let (_, report) = kit(dir.path(), &config, &[]).await;
    let caught = failed(&report);
    assert!(caught.contains(&"faults.partial".to_string()), "{report:#}");
    assert!(
        caught.iter().all(|c| c.starts_with("faults.")),
        "{report:#}"
    );
}

/// A system that answers a deletion as done and keeps the record (the
/// stand-in lies) is caught by `erase.gone`, after the fixture's settling
/// time: the record is still found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_that_says_it_deleted_and_did_not_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let (config, people) = directory_with(dir.path(), built_plugins::EXAMPLE_REST, "").await;
    people.lie.store(true, std::sync::atomic::Ordering::SeqCst);
    let text = std::fs::read_to_string(fixture()).unwrap();
    let fixture = dir.path().join("fixture.toml");
    std::fs::write(&fixture, format!("settle_seconds = 1\n{text}")).unwrap();
    let (out, report) = connector_test(
        dir.path(),
        &config,
        "directory",
        &["--fixture", fixture.to_str().unwrap(), "--destructive"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(failed(&report), ["erase.gone"], "{report:#}");
    let gone = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "erase.gone")
        .unwrap();
    assert!(
        gone["reason"]
            .as_str()
            .unwrap()
            .contains("not reported kept: person/p1"),
        "{gone}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_junit_and_text_and_say_nothing_personal() {
    let dir = tempfile::tempdir().unwrap();
    let config = directory(
        dir.path(),
        built_plugins::BROKEN,
        ", break = \"pii-in-summary\"",
    )
    .await;
    let junit = dir.path().join("kit.xml");
    let out = oubli(
        &[
            "connector",
            "test",
            "-c",
            config.to_str().unwrap(),
            "--system",
            "directory",
            "--fixture",
            fixture().to_str().unwrap(),
            "--format",
            "junit",
            "-o",
            junit.to_str().unwrap(),
        ],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // Python's own XML parser reads it: one failure, named, with the
    // component's digest as a property.
    let check = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E\n\
             s = E.parse(sys.argv[1]).getroot().find('testsuite')\n\
             f = [c.get('classname') + '.' + c.get('name') for c in s.iter('testcase') if c.find('failure') is not None]\n\
             p = {x.get('name'): x.get('value') for x in s.iter('property')}\n\
             print(s.get('failures'), ','.join(f), len(p['sha256']))",
            junit.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        text(&check.stdout).trim(),
        "1 locate.summaries 64",
        "{}",
        text(&check.stderr)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    for personal in ["ada+calls", "612345678", "dir-token"] {
        assert!(!xml.contains(personal), "{personal} in {xml}");
    }

    let out = oubli(
        &[
            "connector",
            "test",
            "-c",
            config.to_str().unwrap(),
            "--system",
            "directory",
            "--fixture",
            fixture().to_str().unwrap(),
        ],
        dir.path(),
    )
    .await;
    let said = text(&out.stdout);
    assert!(
        said.contains("FAIL  locate.summaries") && said.contains("1 failed"),
        "{said}"
    );
    assert!(
        !said.contains("ada+calls") && !said.contains("dir-token"),
        "{said}"
    );

    // A fixture that does not read, and a system that is not there: one
    // line each, exit 2.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[subject]\nemails = [\"a@b.c\"]\nsurprise = true\n").unwrap();
    for (fixture, system, says) in [
        (bad.to_str().unwrap(), "directory", "unknown field"),
        (
            fixture().to_str().unwrap(),
            "nowhere",
            "no system \"nowhere\" in the configuration (it has: directory)",
        ),
    ] {
        let out = oubli(
            &[
                "connector",
                "test",
                "-c",
                config.to_str().unwrap(),
                "--system",
                system,
                "--fixture",
                fixture,
            ],
            dir.path(),
        )
        .await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_component_is_loaded_only_if_its_digest_matches() {
    let dir = tempfile::tempdir().unwrap();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            std::fs::read(built_plugins::EXAMPLE_REST).unwrap(),
        ))
    };
    let inspect = oubli(
        &["connector", "inspect", built_plugins::EXAMPLE_REST],
        dir.path(),
    )
    .await;
    assert!(text(&inspect.stdout).contains(&sha));
    let other = "0".repeat(64);
    for (pin, ok) in [(sha.as_str(), true), (other.as_str(), false)] {
        let config = directory(dir.path(), built_plugins::EXAMPLE_REST, "").await;
        let body = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            body.replace(
                "allow_loopback = true\n",
                &format!("allow_loopback = true\nsha256 = \"{pin}\"\n"),
            ),
        )
        .unwrap();
        let out = oubli(
            &["systems", "check", "-c", config.to_str().unwrap()],
            dir.path(),
        )
        .await;
        let said = text(&out.stdout);
        if ok {
            assert!(out.status.success(), "{said}");
        } else {
            assert_eq!(out.status.code(), Some(1), "{said}");
            assert!(
                said.contains(&format!(
                    "its SHA-256 is {sha}, but the configuration pins {other}"
                )),
                "{said}"
            );
        }
    }
    // Not a digest at all: the configuration is refused, naming the key.
    let config = directory(dir.path(), built_plugins::EXAMPLE_REST, "").await;
    let body = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        body.replace(
            "allow_loopback = true\n",
            "allow_loopback = true\nsha256 = \"abc\"\n",
        ),
    )
    .unwrap();
    let out = oubli(
        &["systems", "check", "-c", config.to_str().unwrap()],
        dir.path(),
    )
    .await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("systems.directory.sha256"), "{err}");
}

/// From `oubli connector new` to a component `systems check` accepts and
/// the kit passes, as the README of the new crate says (its build shares
/// the plugins' target directory, so the SDK's dependencies are built once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connector_builds_loads_and_passes_the_kit() {
    let dir = tempfile::tempdir().unwrap();
    let out = oubli(
        &[
            "connector",
            "new",
            "acme-crm",
            "--kind",
            "crm",
            "--dir",
            ".",
        ],
        dir.path(),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let root = dir.path().join("acme-crm");
    let again = oubli(&["connector", "new", "acme-crm"], dir.path()).await;
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("already exists"));
    let bad = oubli(&["connector", "new", "Acme CRM"], dir.path()).await;
    assert_eq!(bad.status.code(), Some(2));

    let target = oubli_testing::repo_root().join("target/wasm");
    let build = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--offline",
            "--quiet",
        ])
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", text(&build.stderr));
    let component = target.join("wasm32-wasip2/release/acme_crm.wasm");
    let config = directory(dir.path(), component.to_str().unwrap(), "").await;
    let body = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[systems.directory]", "[systems.acme-crm]");
    std::fs::write(&config, body).unwrap();
    let check = oubli(
        &["systems", "check", "-c", config.to_str().unwrap()],
        dir.path(),
    )
    .await;
    assert!(check.status.success(), "{}", text(&check.stdout));
    assert!(text(&check.stdout).contains("acme-crm 0.1.0 (crm)"));
    let out = oubli(
        &[
            "connector",
            "test",
            "-c",
            config.to_str().unwrap(),
            "--system",
            "acme-crm",
            "--fixture",
            root.join("conformance.toml").to_str().unwrap(),
            "--destructive",
            "--format",
            "json",
        ],
        dir.path(),
    )
    .await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report:#}");
    assert_eq!(failed(&report), Vec::<String>::new());
    assert_eq!(report["connector"], "acme-crm@0.1.0");
    // What it does not do yet is skipped, and said so.
    let skipped: Vec<&str> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "skip")
        .map(|c| c["reason"].as_str().unwrap())
        .collect();
    assert!(
        skipped.contains(&"the connector does not rectify"),
        "{skipped:?}"
    );
}

/// `oubli sandbox` serves the stand-ins with their connectors and a
/// fixture for each; the kit passes every reference connector against
/// them, destructive cases included (each system's GDPR erasure polled to
/// its end), as the README says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reference_connector_passes_the_kit_against_the_sandbox() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sbx");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_oubli"))
        .args([
            "sandbox",
            "--port-base",
            "0",
            "--gdpr-step-ms",
            "50",
            "--out",
        ])
        .arg(&out)
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Ready once it has printed the command to run.
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("oubli connector test") {
            break;
        }
    }
    assert!(printed.contains("directory"), "{printed}");
    let config = out.join("oubli.toml");
    let check = oubli(
        &["systems", "check", "-c", config.to_str().unwrap()],
        dir.path(),
    )
    .await;
    assert!(check.status.success(), "{}", text(&check.stdout));
    const SYSTEMS: [&str; 5] = ["genesys", "dialer", "support-mail", "crm", "directory"];
    // First the hermetic tier's recordings, of runs that change nothing.
    let tapes = dir.path().join("tapes");
    for system in SYSTEMS {
        let fixture = out.join(format!("conformance-{system}.toml"));
        let (recorded, _) = connector_test(
            dir.path(),
            &config,
            system,
            &[
                "--fixture",
                fixture.to_str().unwrap(),
                "--record",
                tapes.join(system).to_str().unwrap(),
            ],
        )
        .await;
        assert!(
            recorded.status.success(),
            "{system}: {}{}",
            text(&recorded.stdout),
            text(&recorded.stderr)
        );
    }
    for system in SYSTEMS {
        let fixture = out.join(format!("conformance-{system}.toml"));
        let (out, report) = connector_test(
            dir.path(),
            &config,
            system,
            &["--fixture", fixture.to_str().unwrap(), "--destructive"],
        )
        .await;
        assert!(out.status.success(), "{system}: {report:#}");
        assert_eq!(failed(&report), Vec::<String>::new(), "{system}");
        let skipped = report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["verdict"] == "skip")
            .count();
        assert!(skipped <= 4, "{system}: {report:#}");
        if system == "support-mail" {
            // The JMAP connector's retention sweep, against the fixture's dates.
            let swept = report["cases"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == "sweep.test-run" && c["verdict"] == "pass");
            assert!(swept, "{report:#}");
        }
    }
    child.kill().await.unwrap();
    child.wait().await.unwrap();

    // The recordings hold nobody and no credential: not the people's
    // addresses or numbers in any spelling, not a token.
    let tokens: Vec<String> = std::fs::read_dir(out.join("secrets"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    for system in SYSTEMS {
        for file in ["cassette.json", "conformance.toml"] {
            let kept = std::fs::read_to_string(tapes.join(system).join(file)).unwrap();
            for personal in [
                "camille",
                "martin@",
                "ada+calls",
                "079460123",
                "7946 0123",
                "612345678",
                "dominique",
            ] {
                assert!(
                    !kept.to_lowercase().contains(personal),
                    "{personal} in {system}/{file}"
                );
            }
            for t in &tokens {
                assert!(!kept.contains(t.trim()), "a token in {system}/{file}");
            }
        }
    }
    // Replayed with the stand-ins gone: every case as live, and every
    // request answered from the recording.
    for system in SYSTEMS {
        let (out, report) = kit_replay(dir.path(), &config, &tapes.join(system), system).await;
        assert!(out.status.success(), "{system}: {report:#}");
        assert_eq!(failed(&report), Vec::<String>::new(), "{system}");
        let complete = report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "replay.complete" && c["verdict"] == "pass");
        assert!(complete, "{system}: {report:#}");
    }
    // A connector that asks differently from the one recorded is caught.
    let body = std::fs::read_to_string(&config).unwrap().replace(
        &out.join("connectors/example-rest.wasm")
            .display()
            .to_string(),
        built_plugins::BROKEN,
    );
    let changed = dir.path().join("changed.toml");
    std::fs::write(
        &changed,
        body.replace(
            "config = { base_url",
            "config = { break = \"decoy\", base_url",
        ),
    )
    .unwrap();
    let (out, report) =
        kit_replay(dir.path(), &changed, &tapes.join("directory"), "directory").await;
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert!(
        failed(&report).contains(&"replay.complete".to_string()),
        "{report:#}"
    );
}

async fn kit_replay(dir: &Path, config: &Path, tape: &Path, system: &str) -> (Output, Value) {
    connector_test(dir, config, system, &["--replay", tape.to_str().unwrap()]).await
}
