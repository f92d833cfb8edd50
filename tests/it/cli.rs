//! The `oubli` binary as an operator runs it: the README's commands, their
//! exit codes and `--json` shapes, and the demo from a copied binary.

use oubli_testing::plugins as built_plugins;
use std::path::Path;
use std::process::{Command, Output};

fn oubli(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oubli"))
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .env_remove("OUBLI_CONFIG")
        .output()
        .expect("oubli runs")
}

/// An oubli.toml in `dir` (FR numbers) with the people directory at `port`
/// as system `directory` (its token in a file), followed by `more`.
fn directory_config(dir: &Path, port: u16, more: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("token"), "dir-token\n").unwrap();
    let config = dir.join("oubli.toml");
    std::fs::write(
        &config,
        format!(
            "[identifiers]\ndefault_region = \"FR\"\n\n\
             [systems.directory]\nconnector = {:?}\nallow_hosts = [\"http://127.0.0.1:{port}\"]\nallow_loopback = true\n\
             config = {{ base_url = \"http://127.0.0.1:{port}/api\" }}\nsecrets = {{ token = {{ file = \"token\" }} }}\n\n{more}",
            built_plugins::EXAMPLE_REST,
        ),
    )
    .unwrap();
    config
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_reports_one_line_per_system_and_fails_if_any_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("oubli.toml");
    std::fs::write(
        &config,
        format!(
            "[systems.good]\nconnector = {:?}\n\n[systems.bad]\nconnector = {:?}\n\n\
             [systems.off]\nconnector = \"nowhere.wasm\"\nenabled = false\n\n\
             [systems.ghost]\nconnector = \"missing.wasm\"\n",
            built_plugins::TRIVIAL,
            built_plugins::BAD_IMPORT
        ),
    )
    .unwrap();
    let out = oubli(
        &["systems", "check", "--config", config.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[4]
            .starts_with("warning: the register of processing has 4 gap(s), first controller.name"),
        "no register: systems check says so\n{text}"
    );
    assert!(
        lines[0].starts_with("refused  bad") && lines[0].contains("imports `test:bad/raw-socket`"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("refused  ghost") && lines[1].contains("cannot read"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("ok       good") && lines[2].contains("trivial 0.1.0 (other)"),
        "{text}"
    );
    assert!(lines[3].starts_with("disabled off"), "{text}");

    // The old spelling still works (hidden, for one release).
    let old = oubli(
        &["plugin", "check", "--config", config.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(old.status.code(), Some(1));
    assert_eq!(stdout(&old), text);

    let out = oubli(
        &[
            "systems",
            "check",
            "--json",
            "--config",
            config.to_str().unwrap(),
        ],
        dir.path(),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let systems = &json["systems"];
    assert_eq!(systems[2]["status"], "ok");
    assert_eq!(systems[2]["connector"]["manifest"]["id"], "trivial");
    assert_eq!(systems[0]["status"], "refused");
    assert_eq!(systems[3]["status"], "disabled");
    assert_eq!(json["warnings"].as_array().unwrap().len(), 1);
    assert!(
        json["warnings"][0]
            .as_str()
            .unwrap()
            .contains("register of processing")
    );
}

#[test]
fn check_warns_when_concurrency_exceeds_the_instance_pool() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("oubli.toml");
    let mut text = String::new();
    for i in 0..5 {
        text.push_str(&format!(
            "[systems.t{i}]\nconnector = {:?}\nlimits = {{ concurrency = 64 }}\n",
            built_plugins::TRIVIAL
        ));
    }
    std::fs::write(&config, text).unwrap();
    let out = oubli(
        &["systems", "check", "--config", config.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("warning: the systems' concurrency limits add up to 320")),
        "{text}"
    );
}

#[test]
fn the_example_configuration_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let example = oubli_testing::repo_root().join("examples/oubli.toml");
    let out = oubli(
        &["systems", "check", "--config", example.to_str().unwrap()],
        dir.path(),
    );
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("ok       people-directory  example-rest 0.1.0 (crm), 4 operations, reaches http://127.0.0.1:8089"), "{text}");
    assert!(!text.contains("warning"), "{text}");
    assert!(
        !text.contains("example-token-not-a-real-secret"),
        "secret printed"
    );
}

#[test]
fn a_malformed_config_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("oubli.toml");
    std::fs::write(
        &config,
        "[systems.crm]\nconnector = \"x.wasm\"\ncolour = \"blue\"\n",
    )
    .unwrap();
    let out = oubli(
        &["systems", "check", "--config", config.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("oubli.toml:3:1: unknown field `colour`"),
        "{err}"
    );
}

/// Exit statuses say what kind of failure it was: 2 when the command
/// cannot do what was asked, 3 when something it needs is unavailable (a
/// script may try again later).
#[test]
fn an_unreachable_database_exits_3_and_a_refusal_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_oubli"))
            .args(args)
            .current_dir(dir.path())
            .env("XDG_CACHE_HOME", dir.path())
            .env_remove("OUBLI_CONFIG")
            .output()
            .expect("oubli runs")
    };
    assert!(
        run(&["keys", "init", "--dir", "oubli-keys"])
            .status
            .success()
    );
    std::fs::write(dir.path().join("oubli.toml"), "").unwrap();
    // Nothing listens on port 1.
    let down = run(&["requests", "--db", "postgres://oubli@127.0.0.1:1/oubli"]);
    let err = String::from_utf8_lossy(&down.stderr);
    assert_eq!(down.status.code(), Some(3), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let refused = run(&["request", "show", "Not An Id"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("no request"), "{err}");
}

#[test]
fn inspect_shows_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let out = oubli(
        &["connector", "inspect", built_plugins::EXAMPLE_REST],
        dir.path(),
    );
    assert!(out.status.success());
    let text = stdout(&out);
    for expected in [
        "id:           example-rest",
        "system kind:  crm",
        "WIT version:  0.2.0",
        "operations:   locate, export, rectify, erase",
        "hosts asked:  *",
        "secrets:      token",
        "  base_url (required): ",
        "  contact-details: Name, email address, phone number and free-text notes",
        "    portable:   yes (Art. 20)",
        "  oubli:connector/host@0.2.0",
        "  wasi:http/outgoing-handler@0.2.12",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    // The same connector as a vendor shipped it for contract 0.1.0.
    let out = oubli(
        &["connector", "inspect", oubli_testing::EXAMPLE_REST_V0_1],
        dir.path(),
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    for expected in ["WIT version:  0.1.0", "  oubli:connector/host@0.1.0"] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }

    let out = oubli(
        &["connector", "inspect", "--json", built_plugins::HOSTILE],
        dir.path(),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(json["manifest"]["id"], "hostile");
    assert_eq!(json["sha256"].as_str().map(str::len), Some(64));
}

/// The `--json` shapes are part of oubli's interface: the contract's names
/// for values (`crm`, `read-attachment`), snake_case keys, nothing of Rust's.
#[test]
fn json_output_speaks_the_contracts_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = oubli(
        &[
            "connector",
            "inspect",
            "--json",
            built_plugins::EXAMPLE_REST,
        ],
        dir.path(),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&json), ["imports", "manifest", "path", "sha256"]);
    let m = &json["manifest"];
    assert_eq!(
        keys(m),
        [
            "categories",
            "config_keys",
            "id",
            "name",
            "operations",
            "outbound_hosts",
            "retention",
            "secrets",
            "system_kind",
            "version",
            "wit_version"
        ]
    );
    assert_eq!(m["system_kind"], "crm");
    assert_eq!(
        m["operations"],
        serde_json::json!(["locate", "export", "rectify", "erase"])
    );
    assert_eq!(
        keys(&m["categories"][0]),
        [
            "description",
            "name",
            "portable",
            "purposes",
            "recipients",
            "retention"
        ]
    );
    let out = oubli(
        &[
            "connector",
            "inspect",
            "--json",
            built_plugins::GENESYS_CLOUD,
        ],
        dir.path(),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(json["manifest"]["system_kind"], "acd");
    assert!(
        json["manifest"]["operations"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("read-attachment")),
        "{json}"
    );

    let module = dir.path().join("core.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let out = oubli(
        &["connector", "inspect", module.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a component"));
}

mod keys_and_export {
    use super::*;

    fn run(args: &[&str], dir: &Path) -> Output {
        Command::new(env!("CARGO_BIN_EXE_oubli"))
            .args(args)
            .current_dir(dir)
            .env_remove("OUBLI_KEYS")
            .env_remove("OUBLI_KEY_PASSPHRASE")
            .output()
            .expect("oubli runs")
    }

    fn private_key(dir: &Path) -> String {
        let keys = std::fs::read_dir(dir.join("oubli-keys")).unwrap();
        keys.filter_map(|e| e.ok())
            .map(|e| e.file_name().into_string().unwrap())
            .find(|n| n.starts_with("host-") && n.ends_with(".pem") && !n.ends_with(".pub.pem"))
            .map(|n| format!("oubli-keys/{n}"))
            .unwrap()
    }

    #[test]
    fn keyring_lifecycle_and_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let out = run(&["keys", "init"], d);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout(&out).contains("host key"));
        let key = private_key(d);
        let public = key.replace(".pem", ".pub.pem");

        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(d.join("bundle.json"), &data).unwrap();
        let out = run(
            &[
                "encrypt",
                "--to",
                &public,
                "--kind",
                "export-bundle",
                "--request",
                "req-9",
                "bundle.json",
                "bundle.enc",
            ],
            d,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run(&["decrypt", "--key", &key, "bundle.enc", "back.json"], d);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(d.join("back.json")).unwrap(), data);
        assert!(String::from_utf8_lossy(&out.stderr).contains("export-bundle, request req-9"));
        // The old spelling still works (hidden, for one release).
        let out = run(
            &[
                "export",
                "decrypt",
                "--key",
                &key,
                "bundle.enc",
                "again.json",
            ],
            d,
        );
        assert!(out.status.success());
        assert_eq!(std::fs::read(d.join("again.json")).unwrap(), data);

        // Register a recipient, rotate, list.
        let out = run(&["keys", "recipient", "add", "dpo", &public], d);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run(&["keys", "rotate"], d);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run(&["keys", "list", "--json"], d);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(list["hosts"].as_array().unwrap().len(), 2);
        assert_eq!(list["recipients"][0]["name"], "dpo");
    }

    #[test]
    fn bad_input_is_one_line_non_zero_and_leaves_no_output() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(run(&["keys", "init"], d).status.success());
        let key = private_key(d);
        let public = key.replace(".pem", ".pub.pem");
        std::fs::write(d.join("plain.txt"), vec![b'x'; 50_000]).unwrap();
        assert!(
            run(&["encrypt", "--to", &public, "plain.txt", "c.enc"], d)
                .status
                .success()
        );
        let ct = std::fs::read(d.join("c.enc")).unwrap();

        let mut flipped = ct.clone();
        flipped[ct.len() / 2] ^= 1;
        std::fs::write(d.join("flipped.enc"), &flipped).unwrap();
        std::fs::write(d.join("short.enc"), &ct[..ct.len() - 17]).unwrap();
        let cases = [
            ("flipped.enc", "failed authentication"),
            ("short.enc", "failed authentication"),
            ("plain.txt", "not an oubli encrypted file"),
            ("missing.enc", "cannot read missing.enc"),
        ];
        for (input, expected) in cases {
            let out = run(&["decrypt", "--key", &key, input, "out.txt"], d);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{input}: {err}");
            assert_eq!(err.lines().count(), 1, "{input}: {err}");
            assert!(err.contains(expected), "{input}: {err}");
            assert!(!d.join("out.txt").exists(), "{input}: output left behind");
        }
        let leftovers: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

        // Another key: not a recipient.
        std::fs::create_dir(d.join("other")).unwrap();
        assert!(run(&["keys", "init", "--dir", "other"], d).status.success());
        let other = std::fs::read_dir(d.join("other"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().into_string().unwrap())
            .find(|n| n.starts_with("host-") && !n.ends_with(".pub.pem") && n.ends_with(".pem"))
            .unwrap();
        let out = run(
            &[
                "decrypt",
                "--key",
                &format!("other/{other}"),
                "c.enc",
                "out.txt",
            ],
            d,
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("is not among the file's recipients")
        );
    }
}

mod locate {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finds_the_person_everywhere_and_shows_each_failure() {
        let (addr, _dir) = oubli_testing::people_directory::serve().await;
        let dir = tempfile::tempdir().unwrap();
        let config = directory_config(
            dir.path(),
            addr.port(),
            &format!(
                "[systems.flaky]\nconnector = {:?}\n\n[systems.broken]\nconnector = {:?}\n\n\
                 [systems.legacy]\nconnector = {:?}\nallow_hosts = [\"http://127.0.0.1:{port}\"]\nallow_loopback = true\n\
                 config = {{ base_url = \"http://127.0.0.1:{port}/api\" }}\nsecrets = {{ token = {{ file = \"token\" }} }}\n",
                built_plugins::HOSTILE,
                built_plugins::BAD_IMPORT,
                oubli_testing::EXAMPLE_REST_V0_1,
                port = addr.port(),
            ),
        );
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_oubli"))
            .args(["locate", "--config", config.to_str().unwrap()])
            .args([
                "--email",
                "ada+calls@example.com",
                "--phone",
                "06 12 34 56 78",
                "--name",
                "panic",
            ])
            .env("XDG_CACHE_HOME", dir.path())
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[0].starts_with("broken     refused:") && lines[0].contains("test:bad/raw-socket"),
            "{text}"
        );
        assert_eq!(
            lines[1], "directory  2 records: person ×2; 1 on hold (unpaid invoice under dispute)",
            "{text}"
        );
        assert!(lines[2].starts_with("flaky      error: trapped"), "{text}");
        // A 0.1.0 component works beside 0.2.0 ones.
        assert_eq!(
            lines[3], "legacy     2 records: person ×2; 1 on hold (unpaid invoice under dispute)",
            "{text}"
        );
        // The national phone number was normalised with the configured region:
        // the directory matched on +33612345678 (both records).

        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_oubli"))
            .args([
                "locate",
                "--json",
                "--config",
                config.to_str().unwrap(),
                "--phone",
                "+33612345678",
            ])
            .env("XDG_CACHE_HOME", dir.path())
            .output()
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json[1]["system"], "directory");
        assert_eq!(json[1]["status"], "found");
        assert_eq!(json[1]["records"].as_array().unwrap().len(), 2);
        assert_eq!(json[1]["connector"], "example-rest 0.1.0");
        let record = &json[1]["records"][1];
        assert_eq!(
            record,
            &serde_json::json!({
                "reference": {"kind": "person", "id": "p2"},
                "role": "owner",
                "summary": record["summary"],
                "created_at": null,
                "hold": "unpaid invoice under dispute",
            })
        );
        // Contract 0.1 has no roles: its records say so.
        assert_eq!(json[3]["records"][1]["role"], "unreported");
        assert_eq!(json[0]["status"], "refused");
        assert!(json[0]["error"].as_str().unwrap().contains("raw-socket"));
        assert_eq!(
            json[2]["status"], "found",
            "the hostile plugin answers normally without a mode"
        );
    }

    /// Every sandbox limit holds where the product uses it: `oubli locate`
    /// opens the systems, keeps only their connectors, and must still stop
    /// a guest that never yields (its deadline needs the epoch ticker
    /// alive), a memory bomb, an oversized answer, a log flood and a request
    /// to a host it was not granted, while the benign system beside it
    /// answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_sandbox_limit_holds_in_locate() {
        let (addr, _dir) = oubli_testing::people_directory::serve().await;
        let dir = tempfile::tempdir().unwrap();
        let config = directory_config(
            dir.path(),
            addr.port(),
            &format!(
                "[systems.hostile]\nconnector = {:?}\n\
                 [systems.hostile.limits]\ntimeout = \"2s\"\nmemory = \"32MiB\"\nmax_output = \"1MiB\"\n",
                built_plugins::HOSTILE,
            ),
        );
        for (mode, expected) in [
            ("loop", "timed out after 2s"),
            ("grow", "memory"),
            ("huge", "more than the limit"),
            ("fetch", "refused by the host"),
            ("log-flood", "1 record"),
        ] {
            let started = std::time::Instant::now();
            let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_oubli"))
                .args(["locate", "--config", config.to_str().unwrap()])
                .args(["--email", "ada+calls@example.com", "--name", mode])
                .args(["--external-id", "url:http://192.0.2.1:9/x"])
                .env("XDG_CACHE_HOME", dir.path())
                .kill_on_drop(true)
                .output();
            // A guard, not a wait: a hang fails here instead of forever.
            let out = tokio::time::timeout(std::time::Duration::from_secs(120), run)
                .await
                .unwrap_or_else(|_| panic!("{mode}: `oubli locate` did not return"))
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let lines: Vec<&str> = text.lines().collect();
            assert!(
                lines.iter().any(|l| l.starts_with("directory  ")),
                "{mode}: the benign system answers: {text}"
            );
            let hostile = lines
                .iter()
                .find(|l| l.starts_with("hostile"))
                .unwrap_or_else(|| panic!("{mode}: {text}"));
            assert!(hostile.contains(expected), "{mode}: {hostile}");
            if mode == "loop" {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(60),
                    "the loop is stopped at its deadline, not left running"
                );
            }
        }
    }

    #[test]
    fn bad_identifiers_are_refused_without_echoing_them() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("oubli.toml");
        std::fs::write(&config, "").unwrap();
        let out = oubli(
            &[
                "locate",
                "--config",
                config.to_str().unwrap(),
                "--phone",
                "0612345678",
            ],
            dir.path(),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            err.contains("--phone: the 1st phone number is national"),
            "{err}"
        );
        assert!(!err.contains("0612345678"), "{err}");
        let out = oubli(
            &[
                "locate",
                "--config",
                config.to_str().unwrap(),
                "--name",
                "Ada Lovelace",
            ],
            dir.path(),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--email, --phone or --external-id: at least one")
                && err.contains("names alone are not enough"),
            "{err}"
        );
    }
}

#[test]
fn a_closed_stdout_ends_quietly_instead_of_reporting_an_internal_error() {
    // `oubli connector inspect … | head -0`: the reader is gone before oubli writes.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_oubli"))
        .args(["connector", "inspect", "--no-cache", built_plugins::TRIVIAL])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("internal error"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}

/// What a user who downloaded or `cargo install`ed the binary does: copy it
/// into an empty directory and run the demo there. It carries its
/// connectors and needs no build tree. The export it leaves decrypts with the
/// independent Python reader to the same ZIP.
#[test]
fn the_demo_runs_from_a_copied_binary_in_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = dir.path().join("bin");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let bin = bin_dir.join("oubli");
    std::fs::copy(env!("CARGO_BIN_EXE_oubli"), &bin).unwrap();
    let out = Command::new(&bin)
        .arg("demo")
        .current_dir(&work)
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .env_remove("OUBLI_CONFIG")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out_dir = work.join("oubli-demo");
    for system in ["genesys", "dialer", "support-mail", "crm"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(system) && l.contains("records")),
            "{system}: {text}"
        );
    }
    assert!(text.contains("SHA-256 matches"), "{text}");
    // The demo's requests: an access and an erasure, approved by a second
    // operator, carried out and verified; the Genesys job polled.
    assert!(text.contains("erasure: completed"), "{text}");
    assert!(text.contains("asynchronous job, polled"), "{text}");
    assert!(text.contains("kept dnc-entry"), "{text}");
    let listed = Command::new(&bin)
        .args(["requests", "--json", "--config"])
        .arg(work.join("oubli-demo/oubli.toml"))
        .current_dir(&work)
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed.iter().all(|r| r["state"] == "completed"),
        "{listed:?}"
    );
    for f in [
        "oubli.toml",
        "connectors/genesys-cloud.wasm",
        "connectors/crm.wasm",
        "secrets/genesys.client_id",
        "keys/demo-recipient.pem",
        "export.oubli",
        "export.zip",
        "oubli.db",
        "oubli-keys/keyring.json",
    ] {
        assert!(out_dir.join(f).exists(), "{f} missing");
    }
    // The configuration names the connectors it wrote, not a build tree.
    let config = std::fs::read_to_string(out_dir.join("oubli.toml")).unwrap();
    assert!(!config.contains("target/"), "{config}");
    let encrypted = std::fs::read(out_dir.join("export.oubli")).unwrap();
    assert_eq!(&encrypted[..8], b"oubliENC");
    // The ZIP holds records.json and every attachment, recordings included.
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(out_dir.join("export.zip")).unwrap()).unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("genesys/conversation-") && n.ends_with(".wav")),
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| n.ends_with("message.eml")).count(),
        8
    );
    let mut records = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("records.json").unwrap(), &mut records).unwrap();
    let records: serde_json::Value = serde_json::from_str(&records).unwrap();
    assert_eq!(records["systems"].as_array().unwrap().len(), 4);
    // An independent reader (docs/decrypt.py) gets the same ZIP back.
    let py = oubli_testing::decrypt_py(
        &out_dir.join("keys/demo-recipient.pem"),
        &out_dir.join("export.oubli"),
        &dir.path().join("py.zip"),
    );
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert_eq!(
        std::fs::read(dir.path().join("py.zip")).unwrap(),
        std::fs::read(out_dir.join("export.zip")).unwrap()
    );

    // The demo's register is complete: its notice and record of processing
    // are given, and say nothing is missing.
    let config = out_dir.join("oubli.toml");
    let run = |args: &[&str]| {
        Command::new(&bin)
            .args(args)
            .arg("--config")
            .arg(&config)
            .current_dir(&work)
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .output()
            .unwrap()
    };
    let check = run(&["register", "check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    let notice = run(&["notice", "--channel", "call", "--lang", "fr"]);
    assert!(notice.status.success());
    let text = stdout(&notice);
    assert!(
        text.contains("cet appel est enregistré") && !text.contains("non configuré"),
        "{text}"
    );
    // The agents' script for a call, from the same register.
    let script = run(&["notice", "--channel", "call", "--intake", "--lang", "fr"]);
    assert!(script.status.success());
    let text = stdout(&script);
    assert!(
        text.contains("script pour les conseillers")
            && text.contains("--received-at")
            && text.contains("cet appel est enregistré")
            && text.contains("CNIL"),
        "{text}"
    );
    assert!(
        String::from_utf8_lossy(&script.stderr).contains("notice version intake-call-fr-"),
        "{}",
        String::from_utf8_lossy(&script.stderr)
    );
    let letter = run(&["notice", "--channel", "letter"]);
    assert!(!letter.status.success(), "a letter's notice is the web one");
    let ropa = run(&["ropa", "--lang", "fr"]);
    assert!(stdout(&ropa).contains("Traitement des demandes des personnes concernées"));
    assert!(out_dir.join("bundle/index.fr.html").exists());
    // A register started from the demo's connectors names what the vendor
    // cannot know.
    let fresh = out_dir.join("fresh-register.toml");
    let init = run(&["register", "init", "--out", fresh.to_str().unwrap()]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let again = run(&["register", "init", "--out", fresh.to_str().unwrap()]);
    assert!(
        !again.status.success(),
        "an existing register is not overwritten"
    );
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("file = \"register.toml\"", "file = \"fresh-register.toml\""),
    )
    .unwrap();
    let check = run(&["register", "check"]);
    let gaps = stdout(&check);
    assert_eq!(check.status.code(), Some(1), "{gaps}");
    for want in [
        "register.activities.genesys.reviewed",
        "register.activities.genesys.legal_basis",
        "register.activities.crm.recipients[0].country",
        "register.activities.dialer.name.fr",
        "register.notice_url",
    ] {
        assert!(gaps.contains(want), "{want} not named:\n{gaps}");
    }
    let refused = run(&["notice", "--channel", "call"]);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("gap(s)") && err.lines().count() == 1, "{err}");
}

/// Whatever a connector says reaches the operator's terminal neutralised:
/// no control character (no screen clearing, no forged line), no bidi
/// override, lengths capped. `--json` stays exact (the serialiser escapes).
#[test]
fn control_characters_from_a_connector_never_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("oubli.toml");
    std::fs::write(
        &config,
        format!(
            "[systems.evil]\nconnector = {:?}\nconfig = {{ evil_manifest = \"1\" }}\n",
            built_plugins::HOSTILE
        ),
    )
    .unwrap();
    let clean = |o: &Output| {
        let text = stdout(o);
        assert!(!text.is_empty());
        for c in text.chars() {
            assert!(
                c == '\n' || !(c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
                "control character {:?} in\n{text}",
                c
            );
        }
        text
    };
    let out = oubli(
        &["systems", "check", "--config", config.to_str().unwrap()],
        dir.path(),
    );
    let text = clean(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "one line, two warnings, the register's:\n{text}"
    );
    assert!(
        lines[0].starts_with("ok       evil  hostile\\u{1b}[2J"),
        "{text}"
    );
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.trim_start().starts_with("warning: ")),
        "forged line: {text}"
    );

    let out = oubli(
        &["connector", "inspect", built_plugins::HOSTILE],
        dir.path(),
    );
    clean(&out);
    let out = oubli(
        &[
            "locate",
            "--config",
            config.to_str().unwrap(),
            "--email",
            "a@example.com",
            "--name",
            "evil",
        ],
        dir.path(),
    );
    let text = clean(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("\\u{1b}"), "shown, not obeyed: {text}");

    let out = oubli(
        &[
            "locate",
            "--json",
            "--config",
            config.to_str().unwrap(),
            "--email",
            "a@example.com",
            "--name",
            "evil",
        ],
        dir.path(),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json[0]["records"][0]["summary"]
            .as_str()
            .unwrap()
            .contains("\u{1b}[2J"),
        "JSON is exact: {json}"
    );
}

/// At every log level, even trace, neither a secret nor the subject's
/// identifiers reach the log, and a flood stays capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logging_leaks_no_secret_and_no_identifier() {
    let (addr, _dir) = oubli_testing::people_directory::serve().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hostile-token"), "s3cr3t-hostile-value\n").unwrap();
    let config = directory_config(
        dir.path(),
        addr.port(),
        &format!(
            "[systems.hostile]\nconnector = {:?}\nsecrets = {{ token = {{ file = \"hostile-token\" }} }}\n",
            built_plugins::HOSTILE,
        ),
    );
    for mode in ["secret", "echo", "log-flood"] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_oubli"))
            .args(["locate", "--config", config.to_str().unwrap()])
            .args([
                "--email",
                "ada+calls@example.com",
                "--phone",
                "06 12 34 56 78",
            ])
            .args(["--name", mode])
            .env("XDG_CACHE_HOME", dir.path())
            .env("OUBLI_LOG", "trace")
            .output()
            .await
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.contains("DEBUG") && log.contains("connector call"),
            "{mode}: debug is on: {log}"
        );
        for leak in [
            "s3cr3t-hostile-value",
            "dir-token",
            "ada+calls",
            "ada%2Bcalls",
            "612345678",
            "12 34 56 78",
        ] {
            assert!(!log.contains(leak), "{mode}: {leak} in the log");
        }
        assert!(log.len() < 2 << 20, "{mode}: {} bytes of log", log.len());
    }
}

/// `systems check` loads connectors without calling anyone, so a wrong
/// token passes it; `--probe` signs in and searches for nobody, and a
/// system that refuses the credentials fails the check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_probe_catches_a_wrong_token() {
    let (addr, _people) = oubli_testing::people_directory::serve().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wrong"), "not-the-token\n").unwrap();
    let config = directory_config(
        dir.path(),
        addr.port(),
        &format!(
            "[systems.stale]\nconnector = {:?}\nallow_hosts = [\"http://127.0.0.1:{port}\"]\nallow_loopback = true\n\
             config = {{ base_url = \"http://127.0.0.1:{port}/api\" }}\nsecrets = {{ token = {{ file = \"wrong\" }} }}\n",
            built_plugins::EXAMPLE_REST,
            port = addr.port(),
        ),
    );
    let run = |probe: bool| {
        let mut args = vec!["systems", "check", "--config", config.to_str().unwrap()];
        if probe {
            args.push("--probe");
        }
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        let cache = dir.path().to_path_buf();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_oubli"))
                .args(&args)
                .env("XDG_CACHE_HOME", cache)
                .env_remove("OUBLI_CONFIG")
                .output()
                .await
                .unwrap()
        }
    };
    let plain = run(false).await;
    assert_eq!(plain.status.code(), Some(0), "{}", stdout(&plain));
    let probed = run(true).await;
    let text = stdout(&probed);
    assert_eq!(probed.status.code(), Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let at = |system: &str| {
        let i = lines
            .iter()
            .position(|l| l.starts_with(&format!("ok       {system}")))
            .unwrap_or_else(|| panic!("{text}"));
        lines[i + 1]
    };
    assert!(
        at("directory").contains("probe: signed in and searched"),
        "{text}"
    );
    assert!(at("stale").contains("PROBE FAILED: denied"), "{text}");
}

/// Two systems running one component compile it at once in one process:
/// each writes its own temporary file into the cache (they shared one,
/// named after the process, and one failed "cannot store compiled code").
#[test]
fn two_systems_sharing_a_component_both_fill_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("oubli.toml");
    let mut text = String::new();
    for name in ["first", "second", "third", "fourth"] {
        text += &format!(
            "[systems.{name}]\nconnector = {:?}\n\n",
            built_plugins::HOSTILE
        );
    }
    std::fs::write(&config, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_oubli"))
        .args(["systems", "check", "--config", config.to_str().unwrap()])
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .env("OUBLI_LOG", "warn")
        .env_remove("OUBLI_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("cannot store compiled code"), "{err}");
    let cached = std::fs::read_dir(dir.path().join("cache/oubli/compiled"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .count();
    assert_eq!(cached, 1, "one entry, complete");
}

/// A request taken by phone: the channel and the time it was received are
/// kept, the deadline runs from then, and a time without its offset, or
/// in the future, is refused with one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_taken_yesterday_is_due_a_month_after_the_call() {
    let site = super::site::Site::new(None, "").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Yesterday, to the second, in Paris's winter offset.
    let yesterday = (now - 86_400_000) / 1000 * 1000;
    let at = jiff::Timestamp::from_millisecond(yesterday)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(1)))
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string();
    let filed = site
        .json(&[
            "request",
            "erase",
            "--email",
            "ada@example.com",
            "--as",
            "agent-7",
            "--channel",
            "call",
            "--received-at",
            &at,
            "--no-wait",
        ])
        .await;
    assert_eq!(filed["channel"], "call");
    assert_eq!(filed["received_at"], yesterday, "{at}");
    let due = jiff::Timestamp::from_millisecond(yesterday)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .checked_add(jiff::Span::new().months(1))
        .unwrap()
        .timestamp()
        .as_millisecond();
    assert_eq!(filed["due_at"], due);
    assert_eq!(filed["requested_by"], "agent-7");
    for (bad, why) in [
        ("2026-12-01T09:30:00", "offset"),
        ("2999-01-01T00:00:00Z", "future"),
    ] {
        let out = site
            .run(&[
                "request",
                "erase",
                "--email",
                "ada@example.com",
                "--as",
                "agent-7",
                "--channel",
                "call",
                "--received-at",
                bad,
                "--no-wait",
            ])
            .await;
        assert!(!out.status.success());
        let err = super::site::text(&out.stderr);
        assert!(err.lines().next().unwrap().contains(why), "{err}");
    }
    let out = site
        .run(&[
            "request",
            "erase",
            "--email",
            "ada@example.com",
            "--as",
            "a",
            "--received-at",
            &at,
        ])
        .await;
    assert!(!out.status.success(), "--received-at needs --channel");
}
