//! The rights engine end to end, on a real store (a SQLite file, and
//! PostgreSQL when `OUBLI_TEST_PG` is set, as in CI), with a real connector
//! (`example-rest`, sandboxed) against a REST stand-in that counts what it
//! is asked and can fail, throttle, slow down, or lie.

use oubli_core::config::Config;
use oubli_core::identifiers::Identifiers;
use oubli_core::rights::engine::{
    Attestation, Correction, Engine, NewRequest, OpenOptions, Params, RequestDetail, RequestError,
};
use oubli_core::rights::worker::{Worker, WorkerOptions};
use oubli_crypto::keyring::Keyring;
use oubli_model::TaskState;
use oubli_model::{Clock, ManualClock, SharedClock, Status};
use oubli_model::{RequestKind, RequestState, SystemState};
use oubli_store::tasks;
use oubli_testing::people_directory::{self, Directory};
use oubli_testing::plugins;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

const EMAIL: &str = "ada+calls@example.com";
const PHONE: &str = "+33612345678";

struct World {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    addr: SocketAddr,
    people: Arc<Directory>,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        Keyring::init(&path.join("oubli-keys"), None).unwrap();
        std::fs::write(path.join("token"), "dir-token").unwrap();
        let (addr, people) = people_directory::serve().await;
        World {
            _dir: dir,
            dir: path,
            addr,
            people,
        }
    }

    fn config(&self, url: &str, policy: &str) -> Config {
        let text = format!(
            r#"
[store]
url = "{url}"

[systems.directory]
connector = "{component}"
allow_hosts = ["http://{addr}"]
allow_loopback = true
config = {{ base_url = "http://{addr}/api" }}
secrets = {{ token = {{ file = "token" }} }}

[policy]
{policy}
{defaults}
"#,
            defaults = [
                "backoff = \"20ms\"",
                "max_backoff = \"100ms\"",
                "poll_interval = \"20ms\""
            ]
            .iter()
            .filter(|d| !policy.contains(d.split(' ').next().unwrap()))
            .copied()
            .collect::<Vec<_>>()
            .join("\n"),
            component = plugins::EXAMPLE_REST,
            addr = self.addr,
        );
        Config::parse(&self.dir.join("oubli.toml"), &text).unwrap()
    }

    async fn engine(&self, url: &str, policy: &str) -> Arc<Engine> {
        self.engine_on(url, policy, None).await
    }

    /// An engine whose time is `clock` (the wall clock when `None`).
    async fn engine_on(
        &self,
        url: &str,
        policy: &str,
        clock: Option<Arc<ManualClock>>,
    ) -> Arc<Engine> {
        Arc::new(
            Engine::open(
                self.config(url, policy),
                &OpenOptions {
                    connectors: true,
                    clock: clock.map(|c| c as SharedClock),
                    ..OpenOptions::default()
                },
            )
            .await
            .unwrap(),
        )
    }
}

fn ada() -> Identifiers {
    Identifiers {
        emails: vec![EMAIL.into()],
        phones: vec![PHONE.into()],
        ..Identifiers::default()
    }
}

fn request(kind: RequestKind, actor: &str, params: Params) -> NewRequest {
    NewRequest {
        id: None,
        kind,
        identifiers: ada(),
        region: None,
        actor: actor.into(),
        params,
        attestation: None,
        intake: None,
    }
}

fn worker(engine: &Arc<Engine>) -> Worker {
    worker_leased(engine, Duration::from_secs(10))
}

fn worker_leased(engine: &Arc<Engine>, lease: Duration) -> Worker {
    Worker::new(
        engine.clone(),
        WorkerOptions {
            lease,
            batch: 8,
            idle: Duration::from_millis(20),
            ..WorkerOptions::default()
        },
    )
}

async fn run(engine: &Arc<Engine>) {
    tokio::time::timeout(
        Duration::from_secs(60),
        worker(engine).run(true, std::future::pending()),
    )
    .await
    .expect("the worker finished in time")
    .unwrap();
}

fn system<'a>(d: &'a RequestDetail, name: &str) -> &'a oubli_core::rights::engine::SystemView {
    d.systems.iter().find(|s| s.system == name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_is_planned_approved_by_another_operator_carried_out_and_verified() {
    let w = World::new().await;
    for (backend, url) in oubli_testing::store_urls(&w.dir).await {
        let w = World::new().await;
        let engine = w.engine(&url, "").await;
        let filed = engine
            .file(request(RequestKind::Erasure, "alice", Params::default()))
            .await
            .unwrap();
        assert_eq!(filed.state, RequestState::Verified, "{backend}");
        run(&engine).await;
        let d = engine.show(&filed.id).await.unwrap();
        assert_eq!(d.request.state, RequestState::AwaitingApproval, "{backend}");
        let dir = system(&d, "directory");
        let plan = dir.plan.as_ref().unwrap();
        // p1 is erased; p2 shares the phone number and is under the
        // system's legal hold: retained, with its reason.
        assert_eq!(plan.items.len(), 2, "{backend}");
        assert!(
            plan.warnings.iter().any(|w| w.contains("shared")),
            "{backend}: {plan:?}"
        );
        assert!(w.people.has("p1"), "nothing is erased before approval");

        // Four eyes: not by the requester; then by another operator.
        let own = engine.approve(&filed.id, "alice").await.unwrap_err();
        assert!(own.to_string().contains("another operator"), "{own}");
        // The same person however the name is spelt: case, or Unicode
        // compatibility forms (full-width letters).
        for spelt in ["ALICE", "Alice", "ａｌｉｃｅ"] {
            let e = engine.approve(&filed.id, spelt).await.unwrap_err();
            assert!(e.to_string().contains("another operator"), "{spelt}: {e}");
        }
        assert_eq!(
            engine.show(&filed.id).await.unwrap().request.state,
            RequestState::AwaitingApproval
        );
        engine.approve(&filed.id, "bob").await.unwrap();
        let twice = engine.approve(&filed.id, "carol").await.unwrap_err();
        assert!(
            twice.to_string().contains("not awaiting approval"),
            "{twice}"
        );
        run(&engine).await;

        let d = engine.show(&filed.id).await.unwrap();
        assert_eq!(
            d.request.state,
            RequestState::Completed,
            "{backend}: {d:#?}"
        );
        assert_eq!(d.request.approved_by.as_deref(), Some("bob"));
        let dir = system(&d, "directory");
        assert_eq!(dir.state, SystemState::Done);
        assert_eq!((dir.counts.done, dir.counts.retained), (1, 1), "{backend}");
        let result = dir.result.as_ref().unwrap();
        assert!(result.still_found.is_empty());
        assert!(result.verified.is_some());
        assert!(result.outcomes.iter().any(|o| o.reference.id == "p2"
            && matches!(&o.status, Status::Retained(r) if r.contains("unpaid invoice"))));
        assert!(!w.people.has("p1"), "{backend}");
        assert!(w.people.has("p2") && w.people.has("p3"));
        assert_eq!(w.people.erasures_of("p1"), 1, "{backend}: asked once");
        let actions: Vec<&str> = d.events.iter().map(|e| e.action.as_str()).collect();
        for a in ["filed", "planned", "approved", "settled"] {
            assert!(actions.contains(&a), "{backend}: {actions:?}");
        }
        engine.store().close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifier_catches_a_system_that_says_it_erased_but_did_not() {
    let w = World::new().await;
    for (backend, url) in oubli_testing::store_urls(&w.dir).await {
        let w = World::new().await;
        w.people.lie.store(true, Ordering::SeqCst);
        let engine = w.engine(&url, "four_eyes = false").await;
        let filed = engine
            .file(request(RequestKind::Erasure, "alice", Params::default()))
            .await
            .unwrap();
        run(&engine).await;
        let d = engine.show(&filed.id).await.unwrap();
        assert_eq!(
            d.request.state,
            RequestState::PartiallyCompleted,
            "{backend}"
        );
        let dir = system(&d, "directory");
        assert_eq!(dir.state, SystemState::Partial);
        let result = dir.result.as_ref().unwrap();
        assert_eq!(result.still_found.len(), 1, "{backend}");
        assert_eq!(result.still_found[0].id, "p1");
        assert_eq!(dir.counts.failed, 1);
        engine.store().close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_back_off_durably_then_need_attention_then_an_operator_retries() {
    let w = World::new().await;
    for (backend, url) in oubli_testing::store_urls(&w.dir).await {
        let w = World::new().await;
        let clock = ManualClock::starting_now();
        let engine = w
            .engine_on(
                &url,
                "four_eyes = false\nmax_attempts = 2\nbackoff = \"1s\"\nmax_backoff = \"1s\"",
                Some(clock.clone()),
            )
            .await;
        let filed = engine
            .file(request(RequestKind::Access, "alice", Params::default()))
            .await
            .unwrap();
        let worker = worker(&engine);
        worker.run_once().await.unwrap(); // the plan
        // The system goes down: the export fails, and the next attempt is
        // scheduled in the row, not run at once.
        w.people.unavailable.store(1000, Ordering::SeqCst);
        assert_eq!(worker.run_once().await.unwrap(), 1);
        let t = tasks::for_request(engine.store().pool(), &filed.id)
            .await
            .unwrap();
        let export = t.iter().find(|t| t.system == "directory").unwrap();
        assert_eq!(export.state, TaskState::Available, "{backend}");
        assert!(
            export.scheduled_at > clock.now_ms() + 200,
            "{backend}: backed off"
        );
        assert_eq!(export.error_kind.as_deref(), Some("unavailable"));
        // A restarted worker (a new engine on the same store) does not run
        // it before its time.
        let again = w.engine_on(&url, "", Some(clock.clone())).await;
        assert_eq!(
            super_worker(&again).run_once().await.unwrap(),
            0,
            "{backend}"
        );
        clock.advance(1100);
        assert_eq!(super_worker(&again).run_once().await.unwrap(), 1);
        let d = again.show(&filed.id).await.unwrap();
        let dir = system(&d, "directory");
        assert_eq!(
            dir.state,
            SystemState::NeedsAttention,
            "{backend}: past its budget"
        );
        assert_eq!(dir.error.as_ref().unwrap().kind, "unavailable");
        assert_eq!(d.request.state, RequestState::Executing);
        // Nothing runs it any more until an operator says so.
        clock.advance(60_000);
        assert_eq!(super_worker(&again).run_once().await.unwrap(), 0);
        w.people.unavailable.store(0, Ordering::SeqCst);
        let no_reason = again
            .skip(&filed.id, "directory", "bob", " ")
            .await
            .unwrap_err();
        assert!(no_reason.to_string().contains("reason"));
        again.retry(&filed.id, "directory", "bob").await.unwrap();
        run(&again).await;
        let d = again.show(&filed.id).await.unwrap();
        assert_eq!(d.request.state, RequestState::Completed, "{backend}");
        let exported = &system(&d, "directory").result.as_ref().unwrap().exported;
        assert_eq!(exported.len(), 2, "{backend}");
        // Its answer is kept in the store: either engine hands out the
        // same one (each fetch checks it against the kept SHA-256).
        let options = oubli_core::rights::bundle::BundleOptions {
            recipients: again.recipients(&[]).unwrap(),
            allow_incomplete: true,
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let ra = again
            .write_bundle(&filed.id, &options, &mut a)
            .await
            .unwrap();
        let rb = engine
            .write_bundle(&filed.id, &options, &mut b)
            .await
            .unwrap();
        assert_eq!(ra.zip_sha256, rb.zip_sha256, "{backend}");
        assert!(ra.records == 2 && !a.is_empty() && a != b, "{backend}");
        engine.store().close().await;
        again.store().close().await;
    }
}

fn super_worker(engine: &Arc<Engine>) -> Worker {
    worker(engine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rectification_restriction_and_manual_tasks() {
    let w = World::new().await;
    for (backend, url) in oubli_testing::store_urls(&w.dir).await {
        let w = World::new().await;
        let engine = w.engine(&url, "four_eyes = false").await;
        // Rectification: corrected, then read back.
        let rect = engine
            .file(NewRequest {
                id: None,
                identifiers: Identifiers {
                    emails: vec![EMAIL.into()],
                    ..Identifiers::default()
                },
                ..request(
                    RequestKind::Rectification,
                    "alice",
                    Params {
                        changes: vec![Correction {
                            system: None,
                            field: "name".into(),
                            new_value: Some("Ada King".into()),
                        }],
                        ..Params::default()
                    },
                )
            })
            .await
            .unwrap();
        run(&engine).await;
        let d = engine.show(&rect.id).await.unwrap();
        assert_eq!(
            d.request.state,
            RequestState::Completed,
            "{backend}: {d:#?}"
        );
        assert_eq!(w.people.get("p1").unwrap()["name"], "Ada King");
        assert_eq!(system(&d, "directory").counts.done, 1);

        // Restriction: the registry answers at once; the system has no
        // `restrict`, so an operator does it by hand, and says so.
        let restr = engine
            .file(request(
                RequestKind::Objection,
                "alice",
                Params {
                    scope: vec!["direct-marketing".into()],
                    ..Params::default()
                },
            ))
            .await
            .unwrap();
        let check = engine
            .check_restriction(&ada(), None, "direct-marketing")
            .unwrap();
        assert!(!check.allowed, "{backend}");
        assert!(
            engine
                .check_restriction(&ada(), None, "billing")
                .unwrap()
                .allowed
        );
        run(&engine).await;
        let d = engine.show(&restr.id).await.unwrap();
        let dir = system(&d, "directory");
        assert_eq!(dir.state, SystemState::NeedsAttention, "{backend}");
        let text = dir.result.as_ref().unwrap().instructions.clone().unwrap();
        assert!(text.contains("does not offer `restrict`"), "{text}");
        assert_eq!(
            d.request.state,
            RequestState::Executing,
            "a manual task is not done"
        );
        let no_note = engine
            .manual_done(&restr.id, "directory", "bob", "")
            .await
            .unwrap_err();
        assert!(no_note.to_string().contains("note"));
        engine
            .manual_done(
                &restr.id,
                "directory",
                "bob",
                "opt-out ticked in the admin UI",
            )
            .await
            .unwrap();
        run(&engine).await;
        let d = engine.show(&restr.id).await.unwrap();
        assert_eq!(d.request.state, RequestState::Completed, "{backend}");
        assert!(d.events.iter().any(|e| e.action == "manual-done"
            && e.reason.as_deref() == Some("opt-out ticked in the admin UI")));
        engine.store().close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_operator_input_is_refused_in_one_line_and_changes_nothing() {
    let w = World::new().await;
    for (backend, url) in oubli_testing::store_urls(&w.dir).await {
        let w = World::new().await;
        let engine = w.engine(&url, "attest_identity = true").await;
        let unknown = engine.approve("r-nosuch", "bob").await.unwrap_err();
        assert_eq!(unknown.to_string(), "no request r-nosuch", "{backend}");
        let bad_phone = engine
            .file(NewRequest {
                id: None,
                identifiers: Identifiers {
                    phones: vec!["12".into()],
                    ..Identifiers::default()
                },
                ..request(RequestKind::Erasure, "alice", Params::default())
            })
            .await
            .unwrap_err();
        assert!(
            matches!(bad_phone, RequestError::Identifiers(_)),
            "{bad_phone}"
        );
        assert!(!bad_phone.to_string().contains('\n'));
        let names_only = engine
            .file(NewRequest {
                id: None,
                identifiers: Identifiers {
                    names: vec!["Ada".into()],
                    ..Identifiers::default()
                },
                ..request(RequestKind::Erasure, "alice", Params::default())
            })
            .await
            .unwrap_err();
        assert!(
            names_only.to_string().contains("not enough"),
            "{names_only}"
        );
        let no_purpose = engine
            .file(request(RequestKind::Objection, "alice", Params::default()))
            .await
            .unwrap_err();
        assert!(no_purpose.to_string().contains("purpose"));

        // Identity first, when the policy says so: nothing is planned.
        let r = engine
            .file(request(RequestKind::Erasure, "alice", Params::default()))
            .await
            .unwrap();
        assert_eq!(r.state, RequestState::Received);
        assert_eq!(worker(&engine).run_once().await.unwrap(), 0, "{backend}");
        let early = engine.approve(&r.id, "bob").await.unwrap_err();
        assert!(early.to_string().contains("received"), "{early}");
        engine
            .attest(
                &r.id,
                "alice",
                &Attestation {
                    method: "call-back".into(),
                    evidence: "called back on the number on file".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(worker(&engine).run_once().await.unwrap(), 1);

        // Extensions: two months in all, with a reason and the subject told.
        let no_reason = engine
            .extend(&r.id, "alice", 1, "", "letter")
            .await
            .unwrap_err();
        assert!(no_reason.to_string().contains("reason"));
        let e = engine
            .extend(&r.id, "alice", 2, "many requests", "email of 2 Dec")
            .await
            .unwrap();
        assert_eq!(e.extended_months, 2);
        let before = engine.show(&r.id).await.unwrap().request.due_at;
        let past = engine
            .extend(&r.id, "alice", 1, "more", "letter")
            .await
            .unwrap_err();
        assert!(past.to_string().contains("at most 2 months"), "{past}");
        assert_eq!(engine.show(&r.id).await.unwrap().request.due_at, before);

        // Cancelled: its tasks go too.
        engine
            .cancel(&r.id, "alice", "subject withdrew")
            .await
            .unwrap();
        let d = engine.show(&r.id).await.unwrap();
        assert_eq!(d.request.state, RequestState::Cancelled);
        let again = engine.cancel(&r.id, "alice", "twice").await.unwrap_err();
        assert!(again.to_string().contains("cancelled"), "{again}");
        let bad_actor = engine.approve(&r.id, "bob\n[ok]").await.unwrap_err();
        assert!(bad_actor.to_string().contains("operator name"));
        engine.store().close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_keeps_the_policy_it_was_filed_under() {
    let w = World::new().await;
    for (backend, url) in oubli_testing::store_urls(&w.dir).await {
        let w = World::new().await;
        let filed_under = w
            .engine(&url, "four_eyes = false\nerase_mode = \"anonymise\"")
            .await;
        let r = filed_under
            .file(request(RequestKind::Erasure, "alice", Params::default()))
            .await
            .unwrap();
        filed_under.store().close().await;
        // The config now says delete; the request was filed under anonymise.
        let now = w
            .engine(&url, "four_eyes = false\nerase_mode = \"delete\"")
            .await;
        run(&now).await;
        let d = now.show(&r.id).await.unwrap();
        let plan = system(&d, "directory").plan.clone().unwrap();
        assert!(
            plan.items.iter().any(|i| i.reference.id == "p1"
                && i.action == oubli_core::rights::engine::Action::Anonymise),
            "{backend}: {plan:?}"
        );
        // Anonymised, so the record is still there, emptied.
        assert_eq!(w.people.get("p1").unwrap()["email"], "", "{backend}");
        assert_eq!(d.request.state, RequestState::Completed);
        now.store().close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_identifier_is_stored_in_the_clear() {
    let w = World::new().await;
    let url = w.dir.join("clear.db").display().to_string();
    let engine = w.engine(&url, "four_eyes = false").await;
    let params = Params {
        scope: vec!["all".into()],
        ..Params::default()
    };
    for kind in [
        RequestKind::Erasure,
        RequestKind::Restriction,
        RequestKind::Access,
    ] {
        let mut req = request(kind, "alice", params.clone());
        req.identifiers.names = vec!["Ada Lovelace".into()];
        req.attestation = Some(Attestation {
            method: "id-document".into(),
            evidence: "passport of Ada Lovelace checked".into(),
        });
        engine.file(req).await.unwrap();
    }
    run(&engine).await;
    engine.store().close().await;
    let mut bytes = Vec::new();
    for f in std::fs::read_dir(&w.dir).unwrap() {
        let p = f.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("clear.db")
        {
            bytes.extend(std::fs::read(&p).unwrap());
        }
    }
    assert!(bytes.len() > 10_000, "the store was written");
    let hay = String::from_utf8_lossy(&bytes).to_lowercase();
    for needle in [
        "ada+calls",
        "example.com",
        "612345678",
        "lovelace",
        "passport",
        "prefers email",
    ] {
        assert!(
            !hay.contains(needle),
            "{needle} is in the store in the clear"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_live_call_keeps_its_lease_and_a_second_worker_does_not_run_it() {
    let w = World::new().await;
    for (backend, url) in oubli_testing::store_urls(&w.dir).await {
        let w = World::new().await;
        // Every answer takes 1.5 s; leases last 0.6 s: only heartbeats keep
        // the task with the worker that holds it.
        w.people.delay_ms.store(1500, Ordering::SeqCst);
        let a = w.engine(&url, "four_eyes = false").await;
        let b = w.engine(&url, "four_eyes = false").await;
        let filed = a
            .file(request(RequestKind::Erasure, "alice", Params::default()))
            .await
            .unwrap();
        let lease = Duration::from_millis(600);
        let (wa, wb) = (worker_leased(&a, lease), worker_leased(&b, lease));
        let (ra, rb) = tokio::join!(
            wa.run(true, std::future::pending()),
            wb.run(true, std::future::pending())
        );
        ra.unwrap();
        rb.unwrap();
        let d = a.show(&filed.id).await.unwrap();
        assert_eq!(
            d.request.state,
            RequestState::Completed,
            "{backend}: {d:#?}"
        );
        assert_eq!(w.people.erasures_of("p1"), 1, "{backend}: erased once");
        assert!(!d.events.iter().any(|e| e.action == "needs-attention"));
        a.store().close().await;
        b.store().close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cancelled_while_its_task_runs_ends_cancelled() {
    let w = World::new().await;
    for (backend, url) in oubli_testing::store_urls(&w.dir).await {
        let w = World::new().await;
        let engine = w.engine(&url, "four_eyes = false").await;
        let filed = engine
            .file(request(RequestKind::Erasure, "alice", Params::default()))
            .await
            .unwrap();
        worker(&engine).run_once().await.unwrap(); // plan
        w.people.delay_ms.store(800, Ordering::SeqCst);
        let running = {
            let engine = engine.clone();
            tokio::spawn(async move { worker(&engine).run_once().await.unwrap() })
        };
        // Wait until the erase task is claimed, then cancel.
        loop {
            let t = tasks::for_request(engine.store().pool(), &filed.id)
                .await
                .unwrap();
            if t.iter()
                .any(|t| t.system == "directory" && t.state == TaskState::Running)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        engine
            .cancel(&filed.id, "alice", "the subject withdrew the request")
            .await
            .unwrap();
        assert_eq!(running.await.unwrap(), 1);
        let d = engine.show(&filed.id).await.unwrap();
        assert_eq!(d.request.state, RequestState::Cancelled, "{backend}");
        let t = tasks::for_request(engine.store().pool(), &filed.id)
            .await
            .unwrap();
        assert!(
            t.iter()
                .all(|t| t.state == TaskState::Cancelled || t.op == oubli_model::TaskOp::Plan),
            "{backend}: {t:?}"
        );
        assert_eq!(system(&d, "directory").state, SystemState::Cancelled);
        engine.store().close().await;
    }
}

/// The database drops every connection (a restart, a failover): the worker
/// logs, backs off, reconnects and carries on; it does not exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_survives_the_database_dropping_its_connections() {
    let w = World::new().await;
    let Some((_, url)) = oubli_testing::store_urls(&w.dir)
        .await
        .into_iter()
        .find(|(b, _)| *b == "postgres")
    else {
        return; // PostgreSQL only: SQLite has no server to lose.
    };
    let engine = w.engine(&url, "four_eyes = false").await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = {
        let engine = engine.clone();
        tokio::spawn(async move {
            worker(&engine)
                .run(false, async {
                    let _ = stop_rx.await;
                })
                .await
        })
    };
    // Kill every connection to the test database, from another session.
    let db = url.rsplit('/').next().unwrap().to_string();
    let base = url.rsplit_once('/').unwrap().0;
    let admin = sqlx::AnyPool::connect(&format!("{base}/postgres"))
        .await
        .unwrap();
    // The database refuses connections for a while, and drops the open
    // ones: the worker's next steps fail.
    let sql = |q: String| {
        let admin = admin.clone();
        async move {
            sqlx::query(&q).execute(&admin).await.unwrap();
        }
    };
    sql(format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false")).await;
    sql(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    ))
    .await;
    // The engine sees the database gone; the worker goes on meanwhile.
    while engine.ready().await.is_ok() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !running.is_finished(),
            "the worker exited on a database error"
        );
    }
    sql(format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true")).await;
    admin.close().await;
    let filed = loop {
        match engine
            .file(request(RequestKind::Access, "alice", Params::default()))
            .await
        {
            Ok(r) => break r,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let state = engine.show(&filed.id).await.map(|d| d.request.state);
        if state.as_ref().is_ok_and(|s| *s == RequestState::Completed) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not completed: {state:?}"
        );
        assert!(!running.is_finished(), "the worker exited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(()).unwrap();
    running.await.unwrap().unwrap();
    engine.store().close().await;
}

/// A token revoked by another process (`oubli token revoke` while `serve`
/// runs) is believed from the cache for one second of the engine's clock,
/// then refused; one revoked through the same engine is refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_elsewhere_stops_working_once_the_cache_second_passes() {
    use oubli_core::rights::tokens::{AuthError, Role};
    let w = World::new().await;
    let url = format!("sqlite://{}", w.dir.join("tokens.db").display());
    let clock = ManualClock::starting_now();
    let serve = w.engine_on(&url, "", Some(clock.clone())).await;
    let cli = w.engine_on(&url, "", Some(clock.clone())).await;
    let made = serve
        .create_token(Role::Operator, "op-1", None, "admin")
        .await
        .unwrap();
    let token = made.token.as_str();
    assert!(serve.authenticate(token).await.unwrap().is_ok());
    assert!(cli.revoke_token(&made.row.id, "admin").await.unwrap());
    clock.advance(999);
    assert!(
        serve.authenticate(token).await.unwrap().is_ok(),
        "cached for a second"
    );
    clock.advance(1);
    assert!(matches!(
        serve.authenticate(token).await.unwrap(),
        Err(AuthError::Revoked)
    ));
    // Revoked where it is served: refused at once.
    let other = serve
        .create_token(Role::Operator, "op-2", None, "admin")
        .await
        .unwrap();
    assert!(
        serve
            .authenticate(other.token.as_str())
            .await
            .unwrap()
            .is_ok()
    );
    assert!(serve.revoke_token(&other.row.id, "admin").await.unwrap());
    assert!(
        serve
            .authenticate(other.token.as_str())
            .await
            .unwrap()
            .is_err()
    );
}

/// An operator's note goes in the request's history, sealed (the events
/// table never holds its text), and is gone with the request's data key
/// once the request is shredded: a note on a shredded request is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_are_sealed_in_the_history_and_shredded_with_the_request() {
    let w = World::new().await;
    for (backend, url) in oubli_testing::store_urls(&w.dir).await {
        let w = World::new().await;
        let engine = w.engine(&url, "four_eyes = false").await;
        let filed = engine
            .file(request(RequestKind::Access, "alice", Params::default()))
            .await
            .unwrap();
        const NOTE: &str = "asked by phone, confirmed the address on file";
        engine.note(&filed.id, "alice", NOTE).await.unwrap();
        let d = engine.show(&filed.id).await.unwrap();
        let e = d.events.iter().find(|e| e.action == "noted").unwrap();
        assert_eq!(e.reason.as_deref(), Some(NOTE), "{backend}");
        assert_eq!(e.actor, "alice");
        let raw: Vec<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT reason_sealed FROM events WHERE action = 'noted'")
                .fetch_all(engine.store().pool())
                .await
                .unwrap();
        assert_eq!(raw.len(), 1, "{backend}");
        let sealed = raw[0].clone().unwrap();
        assert!(
            !sealed.windows(9).any(|x| x == b"confirmed"),
            "{backend}: a note in the clear"
        );
        assert!(engine.note(&filed.id, "alice", "   ").await.is_err());
        assert!(engine.note("r-nothing", "alice", "x").await.is_err());
        engine
            .cancel(&filed.id, "alice", "the subject withdrew it")
            .await
            .unwrap();
        engine.shred(&filed.id, "alice").await.unwrap();
        let e = engine
            .note(&filed.id, "alice", "too late")
            .await
            .unwrap_err();
        assert!(!e.to_string().contains("too late"), "{e}");
        engine.store().close().await;
    }
}

/// Console sessions live in the store: two engines on it (two `serve`
/// processes) know the same session; it ends when idle, at its absolute
/// limit, at sign-out, and when the token it was opened with is revoked;
/// the store keeps neither the cookie's id nor the CSRF token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_are_shared_by_every_engine_on_the_store() {
    use oubli_core::lang::Lang;
    use oubli_core::rights::sessions::SessionLimits;
    use oubli_core::rights::tokens::Role;
    let w = World::new().await;
    for (backend, url) in oubli_testing::store_urls(&w.dir).await {
        let w = World::new().await;
        let clock = ManualClock::starting_now();
        let a = w.engine_on(&url, "", Some(clock.clone())).await;
        let b = w.engine_on(&url, "", Some(clock.clone())).await;
        let limits = SessionLimits {
            idle_ms: 30 * 60_000,
            absolute_ms: 12 * 3_600_000,
        };
        let t = a
            .create_token(Role::Operator, "alice", None, "root")
            .await
            .unwrap();
        let caller = a.authenticate(&t.token).await.unwrap().unwrap();
        let id = a
            .open_session(&caller, Some(&caller.token), Lang::Fr, limits)
            .await
            .unwrap();
        // The other engine knows it, with its language and CSRF token.
        let on_b = b.session(&id, limits).await.unwrap().expect("shared");
        assert_eq!(on_b.caller.name, "alice", "{backend}");
        assert_eq!(on_b.lang, Lang::Fr);
        let on_a = a.session(&id, limits).await.unwrap().unwrap();
        assert_eq!(on_a.csrf, on_b.csrf);
        assert!(on_a.csrf_ok(&on_b.csrf) && !on_a.csrf_ok("x"));
        let kept: Vec<(String,)> = sqlx::query_as("SELECT id_hash FROM console_sessions")
            .fetch_all(a.store().pool())
            .await
            .unwrap();
        assert!(
            kept.iter().all(|(h,)| *h != id && *h != on_a.csrf),
            "{backend}: neither the id nor the CSRF token is stored"
        );
        // Idle: used at 29 minutes, then 30 minutes idle.
        clock.advance(29 * 60_000);
        assert!(b.session(&id, limits).await.unwrap().is_some());
        clock.advance(30 * 60_000);
        assert!(
            a.session(&id, limits).await.unwrap().is_none(),
            "{backend}: idle"
        );
        assert!(
            b.session(&id, limits).await.unwrap().is_none(),
            "{backend}: gone"
        );
        // Absolute: used every 20 minutes, still ends after 12 hours.
        let id = a
            .open_session(&caller, Some(&caller.token), Lang::En, limits)
            .await
            .unwrap();
        for _ in 0..35 {
            clock.advance(20 * 60_000);
            assert!(b.session(&id, limits).await.unwrap().is_some());
        }
        clock.advance(20 * 60_000);
        assert!(
            a.session(&id, limits).await.unwrap().is_none(),
            "{backend}: absolute"
        );
        // Sign-out on one engine ends it on the other.
        let id = a
            .open_session(&caller, Some(&caller.token), Lang::En, limits)
            .await
            .unwrap();
        assert!(b.close_session(&id).await.unwrap());
        assert!(
            a.session(&id, limits).await.unwrap().is_none(),
            "{backend}: signed out"
        );
        // Revoking the token ends its sessions (past the cache's second).
        let id = a
            .open_session(&caller, Some(&caller.token), Lang::En, limits)
            .await
            .unwrap();
        assert!(b.session(&id, limits).await.unwrap().is_some());
        a.revoke_token(&caller.token, "root").await.unwrap();
        clock.advance(1_001);
        assert!(
            b.session(&id, limits).await.unwrap().is_none(),
            "{backend}: revoked"
        );
        // A session from the identity provider has no token; nonsense ids
        // name nothing.
        let sso = oubli_core::rights::tokens::Caller {
            token: String::new(),
            name: "sso:erin".into(),
            role: Role::Approver,
        };
        let id = b.open_session(&sso, None, Lang::En, limits).await.unwrap();
        assert_eq!(
            a.session(&id, limits).await.unwrap().unwrap().caller.role,
            Role::Approver
        );
        assert!(a.session("nonsense", limits).await.unwrap().is_none());
        a.store().close().await;
        b.store().close().await;
    }
}

/// oubli's own retention (`[retention] requests`): a request that ended
/// longer ago than the period is crypto-shredded, by the engine's keeper and
/// by a worker between its tasks; one that ended more recently, or is not
/// over, is left alone. On both engines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_oubli_own_retention_are_shredded() {
    let w = World::new().await;
    for (backend, url) in oubli_testing::store_urls(&w.dir).await {
        let w = World::new().await;
        let clock = ManualClock::starting_now();
        let mut config = w.config(&url, "four_eyes = false");
        config.retention.requests = Some(oubli_core::retention::Period::parse("30 days").unwrap());
        let engine = Arc::new(
            Engine::open(
                config,
                &OpenOptions {
                    connectors: true,
                    clock: Some(clock.clone() as SharedClock),
                    ..OpenOptions::default()
                },
            )
            .await
            .unwrap(),
        );
        let day = 86_400_000;
        let old = engine
            .file(request(RequestKind::Access, "alice", Params::default()))
            .await
            .unwrap();
        run(&engine).await;
        assert!(engine.show(&old.id).await.unwrap().request.state.is_final());
        clock.advance(20 * day);
        let recent = engine
            .file(request(RequestKind::Access, "alice", Params::default()))
            .await
            .unwrap();
        run(&engine).await;
        clock.advance(11 * day);
        let open = engine
            .file(request(RequestKind::Access, "alice", Params::default()))
            .await
            .unwrap();
        assert_eq!(
            engine.shred_expired_requests().await.unwrap(),
            1,
            "{backend}"
        );
        let shredded = |id: String| {
            let e = engine.clone();
            async move { e.vault().is_shredded(&id).await.unwrap() }
        };
        assert!(shredded(old.id.clone()).await, "{backend}");
        assert!(!shredded(recent.id.clone()).await);
        assert!(!shredded(open.id.clone()).await);
        assert_eq!(engine.shred_expired_requests().await.unwrap(), 0);
        // Later, a worker does it by itself (and carries the open one).
        clock.advance(31 * day);
        run(&engine).await;
        assert!(shredded(recent.id.clone()).await, "{backend}");
        assert!(!shredded(open.id.clone()).await, "ended just now");
        let events = oubli_store::requests::events(engine.store().pool(), &old.id)
            .await
            .unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.action == "shredded" && e.actor == "keeper")
        );
        engine.store().close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_heads_older_than_a_day_are_thinned_to_one_an_hour_and_every_proof_still_holds() {
    use oubli_core::rights::audit::check_inclusion;
    const HOUR: i64 = 3_600_000;
    let w = World::new().await;
    for (backend, url) in oubli_testing::store_urls(&w.dir).await {
        let w = World::new().await;
        let clock = ManualClock::starting_now();
        let engine = w.engine_on(&url, "", Some(clock.clone())).await;
        let pem = engine
            .vault()
            .keyring()
            .signer()
            .unwrap()
            .public_pem()
            .to_string();
        // Three days of a log that grows, a head every 20 minutes.
        let mut signed = Vec::new();
        let mut first = None;
        let mut early_proof = None;
        for i in 0..216 {
            let filed = engine
                .file(request(RequestKind::Access, "alice", Params::default()))
                .await
                .unwrap();
            let head = engine.sign_audit_head().await.unwrap().expect("a new head");
            signed.push(head.signed_at);
            if i == 0 {
                early_proof = engine.prove_request(&filed.id).await.unwrap();
                first = Some(filed.id);
            }
            clock.advance(20 * 60_000);
        }
        let heads = engine.tree_heads().await.unwrap();
        let last = *signed.last().unwrap();
        // Thinned: of the older heads, one per hour; the last day whole.
        assert!(
            heads.len() < 216 - 80,
            "{backend}: {} heads kept",
            heads.len()
        );
        let old: Vec<i64> = heads
            .iter()
            .map(|h| h.signed_at)
            .filter(|t| *t < last - 25 * HOUR)
            .collect();
        let mut hours: Vec<i64> = old.iter().map(|t| t / HOUR).collect();
        hours.dedup();
        assert_eq!(
            hours.len(),
            old.len(),
            "{backend}: two heads in one old hour"
        );
        assert!(
            old.len() >= 40,
            "{backend}: an hour lost its head: {}",
            old.len()
        );
        for t in signed.iter().filter(|t| **t >= last - 23 * HOUR) {
            assert!(
                heads.iter().any(|h| h.signed_at == *t),
                "{backend}: a head of the last day was thinned"
            );
        }
        assert_eq!(heads.last().unwrap().signed_at, last, "{backend}");
        // The log and what is left of its heads still check, and proofs
        // made before, and after, the thinning hold.
        let report = engine.verify_audit().await.unwrap();
        assert!(report.ok(), "{backend}: {report:?}");
        assert_eq!(report.tree_heads, heads.len());
        let early = early_proof.expect("a proof of the first request");
        check_inclusion(&early, &pem, None).unwrap();
        let now = engine
            .prove_request(first.as_deref().unwrap())
            .await
            .unwrap()
            .unwrap();
        check_inclusion(&now, &pem, None).unwrap();
        assert!(heads.iter().any(|h| h.size == now.head.size), "{backend}");
        engine.store().close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_outcomes_fail_to_commit_is_written_again_not_redone() {
    let w = World::new().await;
    let Some((_, url)) = oubli_testing::store_urls(&w.dir)
        .await
        .into_iter()
        .find(|(k, _)| *k == "postgres")
    else {
        eprintln!("OUBLI_TEST_PG not set: skipped");
        return;
    };
    let engine = w.engine(&url, "").await;
    let filed = engine
        .file(request(RequestKind::Erasure, "alice", Params::default()))
        .await
        .unwrap();
    run(&engine).await;
    engine.approve(&filed.id, "bob").await.unwrap();
    // The next task to finish fails to commit once, as a dropped
    // connection or an aborted transaction would (a sequence is not rolled
    // back, so the trigger fails only its first call).
    for q in [
        "CREATE SEQUENCE fail_once",
        "CREATE FUNCTION fail_once() RETURNS trigger AS $$ BEGIN \
           IF nextval('fail_once') = 1 THEN RAISE EXCEPTION 'the connection dropped'; END IF; \
           RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER fail_once BEFORE UPDATE ON tasks FOR EACH ROW \
           WHEN (OLD.state = 'running' AND NEW.state <> 'running') EXECUTE FUNCTION fail_once()",
    ] {
        sqlx::query(q).execute(engine.store().pool()).await.unwrap();
    }
    // The erasure ran; its outcome is written on the second try, in the
    // same step: nothing is left for a rescue to run again.
    assert!(worker(&engine).run_once().await.unwrap() >= 1);
    let fired: i64 = sqlx::query_scalar("SELECT last_value FROM fail_once")
        .fetch_one(engine.store().pool())
        .await
        .unwrap();
    assert!(fired >= 2, "the trigger failed a write: {fired}");
    run(&engine).await;
    let d = engine.show(&filed.id).await.unwrap();
    assert_eq!(d.request.state, RequestState::Completed, "{d:#?}");
    assert_eq!(w.people.erasures_of("p1"), 1);
    engine.store().close().await;
}
