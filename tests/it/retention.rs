//! Retention through the binary, against the JMAP stand-in: a test run lists
//! exactly what is past the cutoff (a message dated exactly at it stays);
//! enforcing needs the test run, a second person's approval past the
//! threshold, erases exactly what was listed, holds and the records of an
//! open access request excluded; the certificate verifies with openssl; a
//! run killed mid-way resumes without erasing twice.

use crate::site::{Site, text};
use oubli_sandbox::System;
use oubli_sandbox::jmap::ACCOUNT;
use serde_json::Value;
use std::collections::BTreeSet;

const POLICY: &str = "\n[retention]\nskew = \"0s\"\npage = 4\n\n\
[[retention.policies]]\nid = \"mail-1y\"\nsystem = \"support-mail\"\ncategory = \"correspondence\"\n\
period = \"30 days\"\nmode = \"enforce\"\napproval_threshold = 5\n";

/// The messages' dates (seconds) and ids.
fn mail(sandbox: &oubli_sandbox::Sandbox) -> Vec<(i64, String)> {
    let data = sandbox.jmap.data.lock().unwrap();
    let mut all: Vec<(i64, String)> = data
        .emails
        .values()
        .map(|e| (e.received_at, e.id.clone()))
        .collect();
    all.sort();
    all
}

/// RFC 3339 of `secs` plus 30 days: the moment a test run must be made as
/// of for the policy's cutoff to fall exactly on `secs`.
fn a_period_after(secs: i64) -> String {
    let t = jiff::Timestamp::from_second(secs).unwrap();
    let z = t
        .to_zoned(jiff::tz::TimeZone::UTC)
        .checked_add(jiff::Span::new().days(30))
        .unwrap();
    z.timestamp().to_string()
}

fn refs(v: &Value) -> BTreeSet<String> {
    v["tally"]["sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_is_tested_approved_and_enforced_exactly() {
    let (site, sandbox) = Site::sandboxed(POLICY).await;
    let all = mail(&sandbox);
    // The cutoff falls exactly on a message's date, one with no other
    // message at the same second.
    let (at, _) = all
        .iter()
        .enumerate()
        .skip(all.len() / 2)
        .find(|(i, (t, _))| all[i - 1].0 != *t && all.get(i + 1).is_none_or(|n| n.0 != *t))
        .map(|(_, m)| m.clone())
        .unwrap();
    let due: BTreeSet<String> = all
        .iter()
        .filter(|(t, _)| *t < at)
        .map(|(_, id)| format!("{ACCOUNT}/{id}"))
        .collect();
    assert!(due.len() > 8, "{} due", due.len());
    let as_of = a_period_after(at);

    // Enforcing without a test run is refused.
    let out = site
        .run(&["retention", "run", "mail-1y", "--enforce", "--as", "alice"])
        .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no test run to carry out"),
        "{}",
        text(&out.stderr)
    );

    // The test run lists exactly the messages before the cutoff, erases
    // nothing, and waits for a second person (over the threshold of 5).
    let test = site
        .json(&[
            "retention",
            "run",
            "mail-1y",
            "--as-of",
            &as_of,
            "--as",
            "alice",
        ])
        .await;
    assert_eq!(test["state"], "awaiting-approval", "{test}");
    assert_eq!(test["tally"]["due"], due.len() as u64, "{test}");
    assert!(refs(&test).is_subset(&due));
    assert_eq!(mail(&sandbox), all, "a test run erases nothing");
    let test_id = test["id"].as_str().unwrap().to_string();

    // Not approved yet; not by who ran it.
    let out = site
        .run(&["retention", "run", "mail-1y", "--enforce", "--as", "alice"])
        .await;
    assert!(
        text(&out.stderr).contains("must first be approved"),
        "{}",
        text(&out.stderr)
    );
    let out = site
        .run(&["retention", "approve", &test_id, "--as", "alice"])
        .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("four eyes"),
        "{}",
        text(&out.stderr)
    );
    let approved = site
        .json(&["retention", "approve", &test_id, "--as", "bob"])
        .await;
    assert_eq!(approved["state"], "approved");

    // A legal hold on the oldest message, and an open access request of
    // someone whose mail is due (the dialer down keeps it open).
    let (_, oldest) = &all[0];
    let held = format!("{ACCOUNT}/{oldest}");
    let out = site
        .run(&[
            "retention",
            "hold",
            "--system",
            "support-mail",
            "--record",
            &format!("email:{held}"),
            "--reason",
            "case 2026-17",
            "--as",
            "carol",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let person = sandbox
        .people()
        .iter()
        .find(|p| {
            let data = sandbox.jmap.data.lock().unwrap();
            data.emails.values().any(|e| {
                e.received_at < at
                    && e.id != *oldest
                    && e.to.iter().chain(&e.from).any(|a| a.email == p.email)
            })
        })
        .unwrap()
        .clone();
    sandbox
        .controls(System::Dialer)
        .set_fault(Some(oubli_sandbox::Fault::Status(503)));
    let access = site
        .json(&[
            "request",
            "access",
            "--email",
            &person.email,
            "--as",
            "alice",
        ])
        .await;
    let access_id = access["id"].as_str().unwrap().to_string();
    let shown = site.json(&["request", "show", &access_id]).await;
    assert!(
        !["completed", "partially-completed", "failed"].contains(&shown["state"].as_str().unwrap()),
        "{shown}"
    );
    // The access request's records in the mail system, as its plan lists
    // them, that are due (the held one counts as held).
    let theirs: BTreeSet<String> = shown["systems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["system"] == "support-mail")
        .flat_map(|s| s["plan"]["items"].as_array().unwrap().clone())
        .map(|i| i["reference"]["id"].as_str().unwrap().to_string())
        .filter(|id| due.contains(id) && *id != format!("{ACCOUNT}/{oldest}"))
        .collect();
    assert!(!theirs.is_empty());

    // Enforce: exactly the due messages go, but the held one and the
    // access request's; the message dated at the cutoff stays.
    let run = site
        .json(&["retention", "run", "mail-1y", "--enforce", "--as", "alice"])
        .await;
    assert_eq!(run["state"], "done", "{run}");
    assert_eq!(run["test_of"], test_id.as_str());
    let kept = 1 + theirs.len() as u64;
    assert_eq!(run["tally"]["erased"], due.len() as u64 - kept, "{run}");
    let excluded = &run["tally"]["excluded"];
    assert_eq!(
        excluded["legal hold"].as_u64().unwrap_or(0),
        0,
        "{excluded}"
    );
    let by_hold: u64 = excluded
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("legal hold h-"))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_hold, 1, "{excluded}");
    assert_eq!(
        excluded["its subject has an open access request"],
        theirs.len() as u64,
        "{excluded}"
    );
    let left: BTreeSet<String> = mail(&sandbox)
        .into_iter()
        .map(|(_, id)| format!("{ACCOUNT}/{id}"))
        .collect();
    let expected: BTreeSet<String> = all
        .iter()
        .map(|(_, id)| format!("{ACCOUNT}/{id}"))
        .filter(|id| !due.contains(id) || *id == held || theirs.contains(id))
        .collect();
    assert_eq!(left, expected);

    // The retention certificate verifies with openssl alone.
    let cert = site.dir.path().join("retention.json");
    let out = site
        .run(&[
            "retention",
            "certificate",
            run["id"].as_str().unwrap(),
            "--out",
            cert.to_str().unwrap(),
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let document: Value = serde_json::from_slice(&std::fs::read(&cert).unwrap()).unwrap();
    assert_eq!(document["format"], "oubli-retention-certificate/1");
    assert_eq!(document["approved_by"], "bob");
    assert_eq!(document["tombstones"], due.len() as u64 - kept);
    let openssl = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss"])
        .args(["-sigopt", "rsa_pss_saltlen:32", "-verify"])
        .arg(cert.with_extension("json.pub.pem"))
        .arg("-signature")
        .arg(cert.with_extension("json.sig"))
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        openssl.status.success(),
        "{}{}",
        text(&openssl.stdout),
        text(&openssl.stderr)
    );
    // The document names no message: no reference, no address.
    let doc = std::fs::read_to_string(&cert).unwrap();
    assert!(
        !doc.contains(ACCOUNT) && !doc.contains(&person.email),
        "{doc}"
    );
    assert!(!doc.contains("example"), "{doc}");

    // The test run was carried out: enforcing again needs a new one.
    let out = site
        .run(&["retention", "run", "mail-1y", "--enforce", "--as", "alice"])
        .await;
    assert!(
        text(&out.stderr).contains("already carried out"),
        "{}",
        text(&out.stderr)
    );
}

/// A policy the scheduler may carry out alone: no approval under 1,000.
fn unattended(extra: &str) -> String {
    format!(
        "\n[retention]\nskew = \"0s\"\n{extra}\n\n\
         [[retention.policies]]\nid = \"mail-30d\"\nsystem = \"support-mail\"\ncategory = \"correspondence\"\n\
         period = \"30 days\"\nmode = \"enforce\"\napproval_threshold = 1000\nevery = \"1h\"\n"
    )
}

/// An enforcing run killed with SIGKILL mid-way (a page in flight) is taken
/// up by `retention resume` once its lease runs out, and ends having
/// handled every due message once: one tombstone each, nothing erased
/// twice, nothing newer touched.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_mid_page_resumes_without_erasing_twice() {
    let (site, sandbox) = Site::sandboxed(&unattended("page = 3\nlease = \"1s\"")).await;
    let all = mail(&sandbox);
    let test = site
        .json(&["retention", "run", "mail-30d", "--as", "alice"])
        .await;
    assert_eq!(test["state"], "tested", "{test}");
    let due = test["tally"]["due"].as_u64().unwrap();
    assert_eq!(
        due,
        all.len() as u64,
        "every seeded message is older than 30 days"
    );

    // Slow the mail server down, start enforcing, and kill the process
    // once a page is in flight after at least one page was erased.
    sandbox
        .controls(System::Mail)
        .set_delay(Some(std::time::Duration::from_millis(100)));
    let mut child = site
        .command(&["retention", "run", "mail-30d", "--enforce", "--as", "alice"])
        .spawn()
        .unwrap();
    let store = site.store().await;
    let mut caught = false;
    for _ in 0..3000 {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT inflight FROM retention_sweeps WHERE mode = 'enforce'")
                .fetch_optional(store.pool())
                .await
                .unwrap();
        let erased = all.len() - mail(&sandbox).len();
        if erased >= 3 && row.is_some_and(|(i,)| i.is_some()) {
            caught = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(caught, "no page was seen in flight");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    sandbox.controls(System::Mail).set_delay(None);
    assert!(!mail(&sandbox).is_empty(), "killed before the end");

    // Resumed once its lease has run out (nobody else holds it).
    let mut resumed = Value::Null;
    for _ in 0..100 {
        let out = site.run(&["retention", "resume", "--json"]).await;
        assert!(
            out.status.success() || out.status.code() == Some(75),
            "{}",
            text(&out.stderr)
        );
        let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(r) = runs.as_array().unwrap().first() {
            resumed = r.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(resumed["state"], "done", "{resumed}");
    let t = &resumed["tally"];
    let erased = t["erased"].as_u64().unwrap();
    let gone = t["not_found"].as_u64().unwrap();
    assert_eq!(erased + gone, due, "{resumed}");
    // Only the page in flight when killed can have been erased by the
    // dead process without its outcome being kept.
    assert!(gone <= 3, "{resumed}");
    assert!(mail(&sandbox).is_empty());
    let tombstones: (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT record_mac) FROM retention_tombstones WHERE sweep_id = $1",
    )
    .bind(resumed["id"].as_str().unwrap())
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(tombstones, (due as i64, due as i64));
}

/// Two workers sweep one policy by themselves (scheduled, test then
/// enforce) drawing on one budget of 600 requests a minute kept in the
/// store: counted at the mail server, no second ever sees more than the
/// bucket allows (10 at once, then 10 a second).
#[tokio::test(flavor = "multi_thread")]
async fn two_workers_stay_within_one_budget() {
    let (site, sandbox) = Site::sandboxed(&unattended(
        "page = 10\nsweep_share = 1.0\nbudgets = { support-mail = \"600/min\" }",
    ))
    .await;
    let all = mail(&sandbox);
    let before = sandbox.controls(System::Mail).times().len();
    let a = site.command(&["worker", "--until-idle"]).output();
    let b = site.command(&["worker", "--until-idle"]).output();
    let (a, b) = tokio::join!(a, b);
    for out in [a.unwrap(), b.unwrap()] {
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let runs = site.json(&["retention", "runs"]).await;
    let states: Vec<(&str, &str)> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["mode"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [("enforce", "done"), ("test", "carried-out")],
        "{runs}"
    );
    assert!(
        mail(&sandbox).is_empty(),
        "{} of {} left",
        mail(&sandbox).len(),
        all.len()
    );
    let times = &sandbox.controls(System::Mail).times()[before..];
    assert!(times.len() > 40, "{} requests", times.len());
    for (i, start) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < std::time::Duration::from_secs(1))
            .count();
        assert!(
            within <= 21,
            "{within} requests within a second of request {i}"
        );
    }
}

/// A policy its connector cannot carry out is named by `systems check`
/// (before anything is due) and refused in one line when run; one over a
/// category the connector does not sweep says which it does.
#[tokio::test(flavor = "multi_thread")]
async fn a_policy_its_connector_cannot_run_is_named_before_it_is_due() {
    let (site, _sandbox) = Site::sandboxed(
        "\n[[retention.policies]]\nid = \"crm-1y\"\nsystem = \"crm\"\ncategory = \"contact-details\"\nperiod = \"1 year\"\nevery = \"1d\"\n\n\
         [[retention.policies]]\nid = \"mail-odd\"\nsystem = \"support-mail\"\ncategory = \"recordings\"\nperiod = \"1 year\"\n\n\
         [[retention.policies]]\nid = \"mail-sent\"\nsystem = \"support-mail\"\ncategory = \"correspondence\"\ntrigger = \"sent\"\nperiod = \"1 year\"\n",
    )
    .await;
    let out = site
        .raw(&[
            "systems",
            "check",
            "--json",
            "--config",
            site.config.to_str().unwrap(),
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let check: Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings: Vec<String> = check["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    let said = |needle: &str| warnings.iter().any(|w| w.contains(needle));
    assert!(
        said("retention policy \"crm-1y\" cannot run: the connector of \"crm\" cannot sweep"),
        "{warnings:?}"
    );
    assert!(
        said("cannot sweep category \"recordings\"; it can sweep: correspondence"),
        "{warnings:?}"
    );
    assert!(
        said("cannot be swept by \"sent\"; its trigger dates: received"),
        "{warnings:?}"
    );
    let out = site
        .run(&["retention", "run", "crm-1y", "--as", "alice"])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // One line says why (the others are the log of the store's opening).
    let err = text(&out.stderr);
    let said: Vec<&str> = err.lines().filter(|l| l.starts_with("oubli: ")).collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(said[0].contains("cannot sweep"), "{err}");
    // A worker skips it (and says so once), carrying on with its work.
    let out = site.run(&["worker", "--until-idle"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).matches("cannot run").count(),
        1,
        "{}",
        text(&out.stderr)
    );
}
