//! Requests through the `oubli` binary: filed, listed, approved, carried
//! out by `oubli worker` processes, and a worker killed (SIGKILL) at the
//! worst moments, then restarted: every request still ends, and the system
//! was asked to erase each record exactly once.

use super::site::{Site, text, wait_for};
use oubli_model::TaskState;
use oubli_store::Store;
use oubli_store::tasks;
use oubli_testing::plugins as built_plugins;
use std::process::Output;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const EMAIL: &str = "ada+calls@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_files_lists_approves_and_a_worker_finishes() {
    let site = Site::local("").await;
    let filed = site
        .json(&["request", "erase", "--email", EMAIL, "--as", "alice"])
        .await;
    let id = filed["id"].as_str().unwrap().to_string();
    assert_eq!(filed["state"], "awaiting-approval", "{filed:#}");
    assert_eq!(
        filed["systems"][0]["plan"]["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Listings: human and JSON; by state, due soon, by subject.
    let out = site.run(&["requests"]).await;
    assert!(out.status.success());
    assert!(text(&out.stdout).contains(&id), "{}", text(&out.stdout));
    let waiting = site
        .json(&["requests", "--state", "awaiting-approval"])
        .await;
    assert_eq!(waiting.as_array().unwrap().len(), 1);
    let soon = site.json(&["requests", "--due-within", "40d"]).await;
    assert_eq!(soon.as_array().unwrap().len(), 1);
    let overdue = site.json(&["requests", "--overdue"]).await;
    assert!(overdue.as_array().unwrap().is_empty());
    let mine = site
        .json(&["requests", "--email", "ADA+calls@Example.com"])
        .await;
    assert_eq!(
        mine.as_array().unwrap().len(),
        1,
        "emails compare without case"
    );

    // Four eyes, in one line and exit 2; the state is unchanged.
    let own = site
        .run(&["request", "approve", &id, "--as", "alice"])
        .await;
    assert_eq!(own.status.code(), Some(2));
    let err = text(&own.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("another operator"), "{err}");
    let unknown = site.run(&["request", "show", "r-nosuch"]).await;
    assert_eq!(text(&unknown.stderr).trim(), "oubli: no request r-nosuch");
    let approved = site.json(&["request", "approve", &id, "--as", "bob"]).await;
    assert_eq!(approved["state"], "executing");

    let worker = site.run(&["worker", "--until-idle"]).await;
    assert!(worker.status.success(), "{}", text(&worker.stderr));
    let done = site.json(&["request", "show", &id]).await;
    assert_eq!(done["state"], "completed", "{done:#}");
    assert_eq!(done["systems"][0]["counts"]["done"], 1);
    assert!(!site.people.has("p1"));

    // The restriction registry, as a dialer asks before a call.
    let restrict = site
        .json(&[
            "request",
            "object",
            "--phone",
            "06 12 34 56 78",
            "--purpose",
            "direct-marketing",
            "--as",
            "alice",
            "--no-wait",
        ])
        .await;
    assert_eq!(restrict["kind"], "objection");
    let check = site
        .run(&[
            "restriction",
            "check",
            "--phone",
            "+33 6 12 34 56 78",
            "--scope",
            "direct-marketing",
        ])
        .await;
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("restricted: direct-marketing"));
    let other = site
        .run(&["restriction", "check", "--phone", "+33 6 99 88 77 66"])
        .await;
    assert_eq!(other.status.code(), Some(0));

    // Rotating the keyring rewraps the store's data keys; everything still
    // opens.
    let keys = site.dir.path().join("oubli-keys");
    let db = site.db_path();
    let rotated = site
        .raw(&[
            "keys",
            "rotate",
            "--dir",
            keys.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ])
        .await;
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    assert!(
        text(&rotated.stdout).contains("0 left under old keys"),
        "{}",
        text(&rotated.stdout)
    );
    assert!(
        !text(&rotated.stdout).contains("rewrapped 0 "),
        "{}",
        text(&rotated.stdout)
    );
    let listed = site
        .raw(&[
            "keys",
            "list",
            "--dir",
            keys.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--json",
        ])
        .await;
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["keys_to_rewrap"], 0, "{listed:#}");
    assert_eq!(listed["requests_shredded"], 0);
    let after = site.json(&["request", "show", &id]).await;
    assert_eq!(after["state"], "completed");
    assert_eq!(after["subject"].as_array().unwrap().len(), 1);

    // Pausing a system, and shredding a finished request.
    let paused = site
        .run(&[
            "systems",
            "pause",
            "directory",
            "--reason",
            "maintenance",
            "--as",
            "bob",
        ])
        .await;
    assert!(paused.status.success(), "{}", text(&paused.stderr));
    let listed = site.run(&["systems", "paused"]).await;
    assert!(
        text(&listed.stdout).contains("directory  paused by bob"),
        "{}",
        text(&listed.stdout)
    );
    let resumed = site
        .run(&["systems", "resume", "directory", "--as", "bob"])
        .await;
    assert!(text(&resumed.stdout).contains("directory resumed"));
    let shredded = site.json(&["request", "shred", &id, "--as", "dpo"]).await;
    assert_eq!(shredded["state"], "completed");
    assert!(
        shredded["subject"].as_array().unwrap().is_empty(),
        "{shredded:#}"
    );
    assert!(shredded["systems"][0].get("plan").is_none());

    // The audit chain holds, and names an edited event.
    let intact = site.run(&["audit", "verify"]).await;
    assert!(
        intact.status.success(),
        "{}{}",
        text(&intact.stdout),
        text(&intact.stderr)
    );
    assert!(
        text(&intact.stdout).starts_with("audit chain intact: "),
        "{}",
        text(&intact.stdout)
    );
    {
        let store = site.store().await;
        sqlx::query(
            "UPDATE events SET actor = 'mallory' WHERE id = (SELECT MIN(id) FROM events WHERE action = 'approved')",
        )
        .execute(store.pool())
        .await
        .unwrap();
        store.close().await;
    }
    let broken = site.run(&["audit", "verify"]).await;
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        text(&broken.stdout).contains("BROKEN at event"),
        "{}",
        text(&broken.stdout)
    );
    assert!(
        text(&broken.stdout).contains("edited"),
        "{}",
        text(&broken.stdout)
    );

    // Nothing personal in the log or the database, in the clear.
    let mut hay = text(&worker.stderr);
    for f in std::fs::read_dir(site.dir.path()).unwrap() {
        let p = f.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("oubli.db")
        {
            hay.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
        }
    }
    for needle in ["ada+calls", "612345678", "12 34 56 78", "Ada Lovelace"] {
        assert!(!hay.contains(needle), "{needle} in the clear");
    }
}

async fn file_erasure(site: &Site) -> String {
    let filed = site
        .json(&[
            "request",
            "erase",
            "--email",
            EMAIL,
            "--as",
            "alice",
            "--no-wait",
        ])
        .await;
    filed["id"].as_str().unwrap().to_string()
}

async fn erase_task_state(store: &Store, id: &str) -> Option<TaskState> {
    tasks::for_request(store.pool(), id)
        .await
        .unwrap()
        .iter()
        .find(|t| t.system == "directory")
        .map(|t| t.state)
}

/// Kill a worker at `moment`, restart one, and check the request still
/// ends completed with a single erasure of the record.
async fn killed_worker_case(before_vendor: bool) {
    let site = Site::local("four_eyes = false").await;
    let id = file_erasure(&site).await;
    if before_vendor {
        site.people
            .delete_delay_before_ms
            .store(1500, Ordering::SeqCst);
    } else {
        site.people
            .delete_delay_after_ms
            .store(1500, Ordering::SeqCst);
    }
    let mut first = site
        .command(&["worker", "--lease", "2s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let people = site.people.clone();
    if before_vendor {
        // The DELETE is on its way but not carried out.
        wait_for("the DELETE to arrive", async || {
            people.deletes_started.load(Ordering::SeqCst) == 1
        })
        .await;
        assert_eq!(people.erasures_of("p1"), 0);
    } else {
        // Carried out; the worker has not heard back.
        wait_for("the DELETE to be carried out", async || {
            people.erasures_of("p1") == 1
        })
        .await;
    }
    let store = site.store().await;
    assert_eq!(
        erase_task_state(&store, &id).await,
        Some(TaskState::Running)
    );
    first.kill().await.unwrap(); // SIGKILL
    first.wait().await.unwrap();
    site.people
        .delete_delay_before_ms
        .store(0, Ordering::SeqCst);
    site.people.delete_delay_after_ms.store(0, Ordering::SeqCst);

    // A new worker rescues the task once its lease expired, searches first,
    // and erases only what is still there.
    let second = site.run(&["worker", "--until-idle", "--lease", "2s"]).await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    let done = site.json(&["request", "show", &id]).await;
    assert_eq!(done["state"], "completed", "{done:#}");
    assert!(!site.people.has("p1"));
    assert_eq!(
        site.people.erasures_of("p1"),
        1,
        "the system carried out one erasure of p1"
    );
    let events: Vec<&str> = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"settled"), "{events:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_before_the_vendor_acted_is_rescued_and_erases_once() {
    killed_worker_case(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_after_the_vendor_acted_is_rescued_and_never_asks_twice() {
    killed_worker_case(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_on_one_sqlite_file_share_the_work() {
    let site = Site::local("four_eyes = false").await;
    // Twenty people, twenty erasures.
    for i in 0..20 {
        site.people.add(serde_json::json!({
            "id": format!("q{i}"), "name": format!("Person {i}"), "email": format!("person{i}@example.net"),
            "phone": "", "notes": "", "created_at": null, "legal_hold": null
        }));
    }
    let mut ids = Vec::new();
    for i in 0..20 {
        let email = format!("person{i}@example.net");
        let filed = site
            .json(&[
                "request",
                "erase",
                "--email",
                &email,
                "--as",
                "alice",
                "--no-wait",
            ])
            .await;
        ids.push(filed["id"].as_str().unwrap().to_string());
    }
    let a = site
        .command(&["worker", "--until-idle", "--batch", "2"])
        .output();
    let b = site
        .command(&["worker", "--until-idle", "--batch", "2"])
        .output();
    let (a, b) = tokio::join!(a, b);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a.status.success() && b.status.success(),
        "{}{}",
        text(&a.stderr),
        text(&b.stderr)
    );
    for (i, id) in ids.iter().enumerate() {
        let d = site.json(&["request", "show", id]).await;
        assert_eq!(d["state"], "completed", "{d:#}");
        assert_eq!(
            site.people.erasures_of(&format!("q{i}")),
            1,
            "q{i} erased once"
        );
    }
    let ran = |o: &Output| -> usize {
        text(&o.stderr)
            .lines()
            .find_map(|l| {
                l.strip_prefix("worker ran ")?
                    .split(' ')
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    assert_eq!(
        ran(&a) + ran(&b),
        40,
        "20 plans and 20 erasures, each run once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_erasure_from_a_csv_is_resumable_and_approved_by_another_operator() {
    let site = Site::local("").await;
    let csv = site.dir.path().join("purge.csv");
    std::fs::write(
        &csv,
        "name,email,phone,notes\n\
         Ada,ada+calls@example.com,,first\n\
         ,,12,a bad number\n\
         Bob,bob@example.com,+33 6 99 88 77 66,\"a, quoted\ncell\"\n",
    )
    .unwrap();
    let csv_arg = csv.to_str().unwrap();
    let first = site
        .run(&["bulk", "erase", "--from", csv_arg, "--as", "alice"])
        .await;
    assert_eq!(
        first.status.code(),
        Some(1),
        "a row was refused: {}",
        text(&first.stderr)
    );
    assert!(
        text(&first.stdout).contains("3 rows: 2 erasure requests filed"),
        "{}",
        text(&first.stdout)
    );
    let report = site.dir.path().join("purge.csv.report.csv");
    let lines = std::fs::read_to_string(&report).unwrap();
    assert!(
        lines.contains("phone number is not a valid number"),
        "{lines}"
    );
    assert!(
        !lines.contains("ada+calls") && !lines.contains("bob@"),
        "{lines}"
    );
    // The report lost (a crash before it was written): the same file again
    // files nothing twice.
    std::fs::remove_file(&report).unwrap();
    let again = site
        .run(&["bulk", "erase", "--from", csv_arg, "--as", "alice"])
        .await;
    assert!(
        text(&again.stdout).contains("0 erasure requests filed, 2 filed by an earlier run"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(site.json(&["requests"]).await.as_array().unwrap().len(), 2);

    let plan = site.run(&["worker", "--until-idle"]).await;
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    let rep = report.to_str().unwrap();
    let own = site
        .run(&["bulk", "approve", "--report", rep, "--as", "alice"])
        .await;
    assert_eq!(own.status.code(), Some(1));
    assert!(
        text(&own.stdout).contains("0 approved"),
        "{}",
        text(&own.stdout)
    );
    let bob = site
        .run(&["bulk", "approve", "--report", rep, "--as", "bob"])
        .await;
    assert!(bob.status.success(), "{}", text(&bob.stdout));
    assert!(
        text(&bob.stdout).contains("2 approved"),
        "{}",
        text(&bob.stdout)
    );
    let run = site.run(&["worker", "--until-idle"]).await;
    assert!(run.status.success());
    let all = site.json(&["requests"]).await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "completed"),
        "{all:#}"
    );
    assert!(!site.people.has("p1") && !site.people.has("p3"));
    assert!(site.people.has("p2"), "p2 was not named in the file");
}

/// The operator's new commands through the binary: a looping connector is
/// stopped in a worker and its system waits for attention without the
/// request completing (`requests --state needs-attention` lists it), an
/// approver keeps one record out of a plan (`request exclude`), a
/// restriction is lifted (`request lift`), and a read-only copy of the
/// database still answers listings and `audit verify` while a write is
/// refused at once, in one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attention_exclusion_lifting_and_a_read_only_store_through_the_binary() {
    let site = Site::local(&format!(
        "max_attempts = 2\n\n[systems.looping]\nconnector = {:?}\n[systems.looping.limits]\ntimeout = \"2s\"\n",
        built_plugins::HOSTILE
    ))
    .await;
    // The hostile system loops on this name; the directory answers.
    let access = site
        .json(&[
            "request",
            "access",
            "--email",
            EMAIL,
            "--name",
            "loop",
            "--as",
            "alice",
            "--no-wait",
        ])
        .await;
    let id = access["id"].as_str().unwrap().to_string();
    let worker = tokio::time::timeout(
        Duration::from_secs(120),
        site.run(&["worker", "--until-idle"]),
    )
    .await
    .expect("the worker stops the loop at its deadline");
    assert!(worker.status.success(), "{}", text(&worker.stderr));
    let shown = site.json(&["request", "show", &id]).await;
    assert_eq!(shown["state"], "executing", "{shown:#}");
    let looping = shown["systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["system"] == "looping")
        .unwrap();
    assert_eq!(looping["state"], "needs-attention", "{looping:#}");
    assert_eq!(looping["error"]["kind"], "timeout");
    let waiting = site.json(&["requests", "--state", "needs-attention"]).await;
    assert_eq!(waiting.as_array().unwrap().len(), 1);
    assert_eq!(waiting[0]["id"], id.as_str());
    let skip = site
        .run(&[
            "request",
            "skip",
            &id,
            "--system",
            "looping",
            "--reason",
            "vendor bug",
            "--as",
            "bob",
        ])
        .await;
    assert!(skip.status.success(), "{}", text(&skip.stderr));
    let shown = site.json(&["request", "show", &id]).await;
    assert_eq!(shown["state"], "partially-completed", "{shown:#}");

    // An erasure whose plan an approver trims.
    let erase = site
        .json(&["request", "erase", "--email", EMAIL, "--as", "alice"])
        .await;
    let eid = erase["id"].as_str().unwrap().to_string();
    assert_eq!(erase["state"], "awaiting-approval");
    let bad = site
        .run(&[
            "request",
            "exclude",
            &eid,
            "--system",
            "directory",
            "--record",
            "p1",
            "--reason",
            "x",
            "--as",
            "bob",
        ])
        .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("KIND:ID"),
        "{}",
        text(&bad.stderr)
    );
    let trimmed = site
        .json(&[
            "request",
            "exclude",
            &eid,
            "--system",
            "directory",
            "--record",
            "person:p1",
            "--reason",
            "shared family account",
            "--as",
            "bob",
        ])
        .await;
    let item = &trimmed["systems"][0]["plan"]["items"][0];
    assert_eq!(item["action"]["action"], "retain", "{trimmed:#}");
    assert!(
        item["action"]["reason"]
            .as_str()
            .unwrap()
            .contains("shared family account")
    );
    site.json(&["request", "approve", &eid, "--as", "bob"])
        .await;
    let worker = site.run(&["worker", "--until-idle"]).await;
    assert!(worker.status.success());
    assert!(site.people.has("p1"), "the excluded record is kept");

    // A restriction, then its lift.
    let r = site
        .json(&[
            "request",
            "restrict",
            "--email",
            EMAIL,
            "--as",
            "alice",
            "--no-wait",
        ])
        .await;
    let rid = r["id"].as_str().unwrap().to_string();
    let check = site.run(&["restriction", "check", "--email", EMAIL]).await;
    assert_eq!(check.status.code(), Some(1));
    let early = site
        .run(&[
            "request", "lift", &rid, "--reason", "over", "--told", "by phone", "--as", "bob",
        ])
        .await;
    assert_eq!(early.status.code(), Some(2), "not over yet");
    site.run(&["worker", "--until-idle"]).await;
    let state = site.json(&["request", "show", &rid]).await["state"].clone();
    if state == "executing" {
        for sys in ["directory", "looping"] {
            site.run(&[
                "request", "skip", &rid, "--system", sys, "--reason", "n/a", "--as", "bob",
            ])
            .await;
        }
    }
    let no_told = site
        .run(&["request", "lift", &rid, "--reason", "over", "--as", "bob"])
        .await;
    assert_eq!(no_told.status.code(), Some(2));
    assert!(
        text(&no_told.stderr).contains("--told"),
        "{}",
        text(&no_told.stderr)
    );
    let lifted = site
        .json(&[
            "request",
            "lift",
            &rid,
            "--reason",
            "over",
            "--told",
            "by phone on 4 Dec",
            "--as",
            "bob",
        ])
        .await;
    assert_eq!(lifted["kind"], "lift");
    let check = site.run(&["restriction", "check", "--email", EMAIL]).await;
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stdout));

    // A read-only copy: read, verify, and refuse to write at once.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(site.db_path(), std::fs::Permissions::from_mode(0o444)).unwrap();
    let started = Instant::now();
    let listed = site.json(&["requests"]).await;
    assert!(listed.as_array().unwrap().len() >= 3);
    let verify = site.run(&["audit", "verify"]).await;
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    let write = site
        .run(&[
            "request",
            "access",
            "--email",
            EMAIL,
            "--as",
            "alice",
            "--no-wait",
        ])
        .await;
    assert_eq!(write.status.code(), Some(2));
    let err = text(&write.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("read-only"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "no pool timeout"
    );
}
