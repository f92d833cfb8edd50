//! Every request kind carried to its end against the four reference
//! connectors and their stand-ins (Genesys Cloud with its asynchronous GDPR
//! jobs, the dialer, the JMAP mailbox, the CRM), on a SQLite store.

use oubli_core::config::Config;
use oubli_core::identifiers::Identifiers;
use oubli_core::rights::engine::{
    Correction, Engine, NewRequest, OpenOptions, Params, RequestDetail,
};
use oubli_core::rights::worker::{Worker, WorkerOptions};
use oubli_crypto::keyring::Keyring;
use oubli_model::{Clock, ManualClock, RequestKind, RequestState, SystemState};
use oubli_sandbox::{Options, Sandbox};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

struct World {
    sandbox: Sandbox,
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
    /// The engines' time: the wall clock plus the jumps a test makes.
    clock: Arc<ManualClock>,
}

async fn world() -> World {
    world_with("").await
}

async fn world_with(extra: &str) -> World {
    world_from(|text| text + extra).await
}

/// A world whose generated config text `edit` changes first.
async fn world_from(edit: impl FnOnce(String) -> String) -> World {
    world_edited(|_, text| edit(text)).await
}

/// [`world_from`], with the stand-ins at hand (their addresses).
async fn world_edited(edit: impl FnOnce(&Sandbox, String) -> String) -> World {
    let sandbox = Sandbox::start(Options {
        people: 40,
        gdpr_step: Duration::from_millis(30),
        ..Options::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    sandbox.write_secrets(&dir.path().join("secrets")).unwrap();
    let plugins = Path::new(oubli_testing::plugins::GENESYS_CLOUD)
        .parent()
        .unwrap();
    // The demo controller's complete register, as an integrator would have
    // one (a world without it: `world_edited` removing `[register]`).
    let register = oubli_sandbox::write_register(dir.path()).unwrap();
    let text = edit(
        &sandbox,
        sandbox.config_toml(plugins, &dir.path().join("secrets"))
            + &register
            + "\n[policy]\nfour_eyes = false\npoll_interval = \"30ms\"\nbackoff = \"50ms\"\n",
    );
    let path = dir.path().join("oubli.toml");
    std::fs::write(&path, text).unwrap();
    Keyring::init(&dir.path().join("oubli-keys"), None).unwrap();
    let clock = ManualClock::following_wall();
    let engine = Arc::new(
        Engine::open(
            Config::load(&path).unwrap(),
            &OpenOptions {
                connectors: true,
                clock: Some(clock.clone()),
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    World {
        sandbox,
        _dir: dir,
        engine,
        clock,
    }
}

impl World {
    fn person(&self) -> Identifiers {
        let p = self.sandbox.demo_person();
        Identifiers {
            emails: vec![p.email.clone()],
            phones: vec![p.phone_national()],
            ..Identifiers::default()
        }
    }

    /// A kept answer, encrypted for the host's key (the register is
    /// complete, so no `allow_incomplete`).
    async fn answer(&self, id: &str) -> Vec<u8> {
        let mut sealed = Vec::new();
        self.engine
            .write_bundle(
                id,
                &oubli_core::rights::bundle::BundleOptions {
                    recipients: self.engine.recipients(&[]).unwrap(),
                    allow_incomplete: false,
                },
                &mut sealed,
            )
            .await
            .unwrap();
        sealed
    }

    /// File a request for the demo person, as alice.
    async fn file(&self, kind: RequestKind, params: Params) -> String {
        self.engine
            .file(NewRequest {
                id: None,
                kind,
                identifiers: self.person(),
                region: None,
                actor: "alice".into(),
                params,
                attestation: None,
                intake: None,
            })
            .await
            .unwrap()
            .id
    }

    /// File a request and work until nothing is left to do.
    async fn run(&self, kind: RequestKind, params: Params) -> RequestDetail {
        let id = self.file(kind, params).await;
        self.drain().await;
        self.engine.show(&id).await.unwrap()
    }

    /// File an erasure and lose its Genesys job: the worker that submits
    /// it is stopped after Genesys recorded the request and before the
    /// answer arrived, so the host never learns the ticket. Jobs take about
    /// 1.2 s: still running when the erasure runs again.
    async fn lose_a_gdpr_job(&self) -> String {
        *self.sandbox.genesys.step.lock().unwrap() = Duration::from_millis(300);
        let filed = self.file(RequestKind::Erasure, Params::default()).await;
        let first = Worker::new(
            self.engine.clone(),
            WorkerOptions {
                lease: Duration::from_millis(300),
                ..WorkerOptions::default()
            },
        );
        first.run_once().await.unwrap(); // the plan
        *self.sandbox.genesys.accept_delay.lock().unwrap() = Duration::from_secs(5);
        let cut = tokio::spawn(async move { first.run_once().await });
        while self.sandbox.genesys.data.lock().unwrap().gdpr_requests() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        cut.abort();
        let _ = cut.await;
        *self.sandbox.genesys.accept_delay.lock().unwrap() = Duration::ZERO;
        filed
    }

    /// A second engine on the same store (another process, as far as the
    /// store can tell), with its own connectors.
    async fn another_engine(&self) -> Arc<Engine> {
        Arc::new(
            Engine::open(
                self.engine.systems().config().clone(),
                &OpenOptions {
                    connectors: true,
                    clock: Some(self.clock.clone()),
                    ..OpenOptions::default()
                },
            )
            .await
            .unwrap(),
        )
    }

    async fn drain(&self) {
        let w = Worker::new(
            self.engine.clone(),
            WorkerOptions {
                idle: Duration::from_millis(10),
                ..WorkerOptions::default()
            },
        );
        if tokio::time::timeout(Duration::from_secs(60), w.run(true, std::future::pending()))
            .await
            .is_err()
        {
            let counts = oubli_store::tasks::count_by_state(self.engine.store().pool())
                .await
                .unwrap();
            panic!("not drained in 60 s: tasks {counts:?}");
        }
    }
}

fn system<'a>(d: &'a RequestDetail, name: &str) -> &'a oubli_core::rights::engine::SystemView {
    d.systems
        .iter()
        .find(|s| s.system == name)
        .unwrap_or_else(|| panic!("no system {name}: {d:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_and_portability_read_every_system() {
    let w = world().await;
    let d = w.run(RequestKind::Access, Params::default()).await;
    assert_eq!(d.request.state, RequestState::Completed, "{d:#?}");
    for s in ["genesys", "dialer", "support-mail", "crm"] {
        let s = system(&d, s);
        assert_eq!(s.state, SystemState::Done);
        assert!(
            !s.result.as_ref().unwrap().exported.is_empty(),
            "{}",
            s.system
        );
    }
    // Lists by their names, as the person knows them, not their ids.
    let lists: Vec<String> = system(&d, "dialer")
        .result
        .as_ref()
        .unwrap()
        .exported
        .iter()
        .flat_map(|e| &e.fields)
        .filter(|f| f.name == "contactList")
        .map(|f| f.value.clone())
        .collect();
    assert!(!lists.is_empty());
    assert!(
        lists
            .iter()
            .all(|l| ["Spring renewal campaign", "Win-back 2026"].contains(&l.as_str())),
        "{lists:?}"
    );
    let p = w.run(RequestKind::Portability, Params::default()).await;
    assert_eq!(p.request.state, RequestState::Completed);
    // The worker signed the chain's head as it stopped: a deployment
    // without `serve` has signed heads too.
    let heads = w.engine.tree_heads().await.unwrap();
    let report = w.engine.verify_audit().await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        heads.last().unwrap().size as u64,
        report.chain.events,
        "{heads:?}"
    );
    // Only categories the connectors mark portable.
    let all: usize = d
        .systems
        .iter()
        .flat_map(|s| &s.result.as_ref().unwrap().exported)
        .map(|e| e.fields.len())
        .sum();
    let portable: usize = p
        .systems
        .iter()
        .flat_map(|s| &s.result.as_ref().unwrap().exported)
        .map(|e| e.fields.len())
        .sum();
    assert!(portable < all, "{portable} of {all} fields are portable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_waits_for_the_vendors_job_and_verifies_everywhere() {
    let w = world().await;
    let d = w.run(RequestKind::Erasure, Params::default()).await;
    assert_eq!(d.request.state, RequestState::Completed, "{d:#?}");
    let genesys = system(&d, "genesys");
    assert!(
        genesys.task.as_ref().unwrap().polls >= 1,
        "the GDPR job was polled"
    );
    assert!(d.events.iter().any(|e| e.action == "job-accepted"));
    // The dialer keeps its do-not-call entry, with its reason.
    let dialer = system(&d, "dialer");
    assert!(dialer.counts.retained >= 1);
    for s in &d.systems {
        assert!(
            s.result.as_ref().unwrap().still_found.is_empty(),
            "{}",
            s.system
        );
    }
    // Mail shared with other people (a message that copies her, one she
    // sent to others too) is kept, saying so, not destroyed.
    let mail = system(&d, "support-mail");
    let shared: Vec<_> = mail
        .plan
        .as_ref()
        .unwrap()
        .items
        .iter()
        .filter(|i| i.role == oubli_model::Role::Participant)
        .collect();
    assert!(!shared.is_empty(), "{mail:#?}");
    for i in &shared {
        assert!(
            matches!(&i.action, oubli_core::rights::engine::Action::Retain(why) if why.starts_with("shared with other people")),
            "{i:?}"
        );
    }
    assert!(mail.counts.retained as usize >= shared.len());
    // Searching again finds nothing that was erased: what is left is held
    // or shared with others.
    let subject = w.engine.systems().subject(&w.person(), None).unwrap();
    let after = w.engine.systems().locate(&subject).await;
    for r in &after.systems {
        if let oubli_core::rights::locate::SystemAnswer::Found { records } = &r.answer {
            assert!(
                records
                    .iter()
                    .all(|l| l.hold.is_some() || l.role != oubli_model::Role::Owner),
                "{}: {records:?}",
                r.system
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_erasure_is_verified_once_the_search_index_settles() {
    // A real mail server indexes new mail a moment after storing it: the
    // verifying search waits `search_settle`, as a scheduled time in the
    // task row (no worker sleeps meanwhile).
    use oubli_model::{Stage, TaskState};
    use oubli_store::tasks;
    let w = world_from(|t| t.replace("search_settle = \"0s\"", "search_settle = \"1500ms\"")).await;
    let id = w.file(RequestKind::Erasure, Params::default()).await;
    let worker = Worker::new(w.engine.clone(), WorkerOptions::default());
    let pool = w.engine.store().pool();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let waiting = loop {
        worker.run_once().await.unwrap();
        let all = tasks::for_request(pool, &id).await.unwrap();
        if let Some(t) = all.iter().find(|t| {
            t.system == "support-mail"
                && t.stage == Stage::Verify
                && t.state == TaskState::Available
        }) {
            break t.clone();
        }
        assert!(std::time::Instant::now() < deadline, "{all:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let ahead = waiting.scheduled_at - w.clock.now_ms();
    assert!(
        (1_000..=1_500).contains(&ahead),
        "verify scheduled {ahead} ms ahead"
    );
    let d = w.engine.show(&id).await.unwrap();
    assert_eq!(system(&d, "support-mail").state, SystemState::Running);
    // Nothing runs it early; then it verifies and the erasure completes.
    assert_eq!(
        tasks::for_request(pool, &id)
            .await
            .unwrap()
            .iter()
            .find(|t| t.id == waiting.id)
            .unwrap()
            .attempt,
        0
    );
    w.drain().await;
    let d = w.engine.show(&id).await.unwrap();
    assert_eq!(d.request.state, RequestState::Completed, "{d:#?}");
    let mail = system(&d, "support-mail");
    assert!(mail.counts.done > 0);
    assert!(mail.result.as_ref().unwrap().still_found.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rectification_corrects_the_records_that_hold_the_field() {
    let w = world().await;
    let d = w
        .run(
            RequestKind::Rectification,
            Params {
                changes: vec![Correction {
                    system: Some("crm".into()),
                    field: "firstname".into(),
                    new_value: Some("Adélaïde".into()),
                }],
                ..Params::default()
            },
        )
        .await;
    assert_eq!(d.request.state, RequestState::Completed, "{d:#?}");
    let crm = system(&d, "crm");
    assert_eq!(crm.state, SystemState::Done);
    assert!(crm.counts.done >= 1, "{:?}", crm.counts);
    assert!(crm.result.as_ref().unwrap().mismatches.is_empty());
    // The other systems had no correction to make.
    assert_eq!(system(&d, "dialer").state, SystemState::Nothing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restriction_objection_and_withdrawal_reach_the_systems_or_a_person() {
    let w = world().await;
    for (kind, scope) in [
        (RequestKind::Restriction, vec![]),
        (RequestKind::Objection, vec!["direct-marketing".to_string()]),
        (
            RequestKind::ConsentWithdrawal,
            vec!["marketing-calls".to_string()],
        ),
    ] {
        let d = w
            .run(
                kind,
                Params {
                    scope,
                    ..Params::default()
                },
            )
            .await;
        // The dialer (DNC list) and the CRM (a property) restrict through
        // their API; the others cannot, and get a manual task.
        assert_eq!(
            system(&d, "dialer").state,
            SystemState::Done,
            "{kind}: {d:#?}"
        );
        assert_eq!(system(&d, "crm").state, SystemState::Done, "{kind}");
        let manual: Vec<&str> = d
            .systems
            .iter()
            .filter(|s| s.state == SystemState::NeedsAttention)
            .map(|s| s.system.as_str())
            .collect();
        assert!(!manual.is_empty(), "{kind}");
        assert_eq!(d.request.state, RequestState::Executing, "{kind}");
        for s in &manual {
            w.engine
                .manual_done(&d.request.id, s, "bob", "restricted in the admin console")
                .await
                .unwrap();
        }
        w.drain().await;
        let d = w.engine.show(&d.request.id).await.unwrap();
        assert_eq!(d.request.state, RequestState::Completed, "{kind}: {d:#?}");
        let check = w
            .engine
            .check_restriction(&w.person(), None, "direct-marketing")
            .unwrap();
        assert!(!check.allowed, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_system_waits_and_a_shredded_request_keeps_only_its_bones() {
    let w = world().await;
    let no_reason = w.engine.pause_system("crm", "bob", "").await.unwrap_err();
    assert!(no_reason.to_string().contains("reason"));
    let unknown = w.engine.pause_system("nope", "bob", "x").await.unwrap_err();
    assert!(unknown.to_string().contains("no system"));
    assert!(
        w.engine
            .pause_system("crm", "bob", "CRM maintenance window")
            .await
            .unwrap()
    );
    let d = w.run(RequestKind::Access, Params::default()).await;
    assert_eq!(
        d.request.state,
        RequestState::Executing,
        "the crm task waits"
    );
    let crm = system(&d, "crm");
    assert_eq!(crm.paused.as_deref(), Some("CRM maintenance window"));
    assert_eq!(crm.state, SystemState::Running);
    assert_eq!(system(&d, "dialer").state, SystemState::Done);
    assert!(w.engine.resume_system("crm", "bob").await.unwrap());
    w.drain().await;
    let d = w.engine.show(&d.request.id).await.unwrap();
    assert_eq!(d.request.state, RequestState::Completed);

    let ids = w.engine.requests_of(&w.person(), None).await.unwrap();
    assert!(ids.contains(&d.request.id));
    let shredded = w.engine.shred(&d.request.id, "dpo").await.unwrap();
    assert!(shredded);
    // No identifier finds a shredded request: its blind indexes went too.
    let ids = w.engine.requests_of(&w.person(), None).await.unwrap();
    assert!(!ids.contains(&d.request.id), "{ids:?}");
    let after = w.engine.show(&d.request.id).await.unwrap();
    assert_eq!(after.request.state, RequestState::Completed);
    assert!(after.request.subject.is_empty(), "the identifiers are gone");
    assert!(
        after
            .systems
            .iter()
            .all(|s| s.plan.is_none() && s.result.is_none())
    );
    assert_eq!(system(&after, "dialer").counts, system(&d, "dialer").counts);
    assert!(after.events.iter().any(|e| e.action == "shredded"));
    // Only a request that is over can be shredded.
    let live = w.file(RequestKind::Access, Params::default()).await;
    let e = w.engine.shred(&live, "dpo").await.unwrap_err();
    assert!(e.to_string().contains("only a request that is over"), "{e}");
}

/// The Genesys job is polled on a schedule kept in the row: two workers
/// that are stopped and started again and again (new engines on the same
/// store, as after a restart) neither lose the poll nor submit the job
/// twice. (Killed mid-call rather than stopped between batches, see
/// tests/requests.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polled_job_survives_restarts_and_two_workers_and_is_submitted_once() {
    // How many GDPR jobs one uninterrupted erasure submits (the connector
    // may submit one per identity it found).
    let clean = world().await;
    let d = clean.run(RequestKind::Erasure, Params::default()).await;
    assert_eq!(d.request.state, RequestState::Completed);
    let expected = clean.sandbox.genesys.data.lock().unwrap().gdpr_requests();
    assert!(expected >= 1);

    let w = world().await;
    // Slow jobs: each status step takes 150 ms, several polls needed.
    *w.sandbox.genesys.step.lock().unwrap() = Duration::from_millis(150);
    let before = w.sandbox.genesys.data.lock().unwrap().gdpr_requests();
    let filed = w.file(RequestKind::Erasure, Params::default()).await;
    for round in 0..40 {
        // Two fresh workers, each on its own engine (its own pool, its own
        // connectors), run one batch each, at once, then stop.
        let mut runs = Vec::new();
        for _ in 0..2 {
            let engine = w.another_engine().await;
            let worker = Worker::new(
                engine,
                WorkerOptions {
                    lease: Duration::from_millis(500),
                    idle: Duration::from_millis(10),
                    ..WorkerOptions::default()
                },
            );
            runs.push(tokio::spawn(async move {
                worker.rescue().await.unwrap();
                worker.run_once().await.unwrap()
            }));
        }
        for r in runs {
            r.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        let state = w.engine.show(&filed).await.unwrap().request.state;
        if state.is_final() {
            assert_eq!(state, RequestState::Completed, "round {round}");
            break;
        }
    }
    let d = w.engine.show(&filed).await.unwrap();
    assert_eq!(d.request.state, RequestState::Completed, "{d:#?}");
    let submitted = w.sandbox.genesys.data.lock().unwrap().gdpr_requests() - before;
    assert_eq!(submitted, expected, "no GDPR job was submitted twice");
    assert!(system(&d, "genesys").task.as_ref().unwrap().polls >= 2);
}

/// The same, with workers cancelled mid-call (a process killed while the
/// vendor was answering): Genesys may have accepted a GDPR request the host
/// never recorded; the erasure that runs again joins it instead of starting
/// another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_mid_call_never_start_a_second_gdpr_job() {
    let clean = world().await;
    let d = clean.run(RequestKind::Erasure, Params::default()).await;
    assert_eq!(d.request.state, RequestState::Completed);
    let expected = clean
        .sandbox
        .genesys
        .data
        .lock()
        .unwrap()
        .gdpr_request_subjects();

    let w = world().await;
    *w.sandbox.genesys.step.lock().unwrap() = Duration::from_millis(100);
    let filed = w.file(RequestKind::Erasure, Params::default()).await;
    for round in 0..40u64 {
        let engine = w.another_engine().await;
        let worker = Worker::new(
            engine,
            WorkerOptions {
                lease: Duration::from_millis(300),
                idle: Duration::from_millis(10),
                ..WorkerOptions::default()
            },
        );
        // Cut at a different point each round.
        let _ = tokio::time::timeout(
            Duration::from_millis(20 + (round * 37) % 400),
            worker.run(false, std::future::pending()),
        )
        .await;
        if w.engine
            .show(&filed)
            .await
            .unwrap()
            .request
            .state
            .is_final()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Whatever state the cuts left, a worker left alone finishes it (once
    // the leases of the cut workers expire).
    w.clock.advance(350);
    w.drain().await;
    let d = w.engine.show(&filed).await.unwrap();
    assert_eq!(d.request.state, RequestState::Completed, "{d:#?}");
    let submitted = w
        .sandbox
        .genesys
        .data
        .lock()
        .unwrap()
        .gdpr_request_subjects();
    no_job_twice(&submitted, &expected);
}

/// Every GDPR job submitted is one the uninterrupted run submits too, and
/// none twice. Fewer is allowed: when the cuts let one job finish before
/// another was due, the second finds its records already gone, reports
/// them not found (which the verifying search confirms), and starts
/// nothing.
fn no_job_twice(
    submitted: &[(String, serde_json::Value)],
    expected: &[(String, serde_json::Value)],
) {
    let mut seen = Vec::new();
    for job in submitted {
        assert!(
            !seen.contains(&job),
            "a GDPR job was started twice: {job:?} in {submitted:?}"
        );
        assert!(expected.contains(job), "{job:?} not in {expected:?}");
        seen.push(job);
    }
    assert!(!submitted.is_empty());
}

/// Deterministically in the window: Genesys records the GDPR request, the
/// worker is stopped before the answer arrives (the host never learns the
/// ticket); the erasure that runs again while that job is still running
/// joins it instead of submitting the same deletion twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_gdpr_job_the_host_never_heard_of_is_joined_not_repeated() {
    let w = world().await;
    let filed = w.lose_a_gdpr_job().await;
    w.clock.advance(350); // the lease expires
    w.drain().await;
    let d = w.engine.show(&filed).await.unwrap();
    assert_eq!(d.request.state, RequestState::Completed, "{d:#?}");
    let submitted = w
        .sandbox
        .genesys
        .data
        .lock()
        .unwrap()
        .gdpr_request_subjects();
    assert!(submitted.len() >= 2, "the erasure ran again: {submitted:?}");
    let mut seen = std::collections::BTreeSet::new();
    for (kind, subject) in &submitted {
        assert!(
            seen.insert((kind.clone(), subject.to_string())),
            "the same deletion was submitted twice: {submitted:#?}"
        );
    }
}

/// The race the cut-worker test hits only under load, made certain: the
/// erasure runs again while the lost job is running; the job finishes
/// between the connector's read of the contact and its listing of
/// requests. The connector reads again, finds the contact gone, and starts
/// nothing (its outcome: not found, which it checked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_finishing_between_read_and_listing_is_not_started_again() {
    let w = world().await;
    let filed = w.lose_a_gdpr_job().await;
    let lost = w.sandbox.genesys.data.lock().unwrap().gdpr_requests();
    *w.sandbox.genesys.finish_when_listed.lock().unwrap() = true;
    w.clock.advance(350); // the lease expires
    w.drain().await;
    let d = w.engine.show(&filed).await.unwrap();
    assert_eq!(d.request.state, RequestState::Completed, "{d:#?}");
    let subjects = w
        .sandbox
        .genesys
        .data
        .lock()
        .unwrap()
        .gdpr_request_subjects();
    let mut seen = std::collections::BTreeSet::new();
    for (kind, subject) in &subjects {
        assert!(
            seen.insert((kind.clone(), subject.to_string())),
            "the same deletion was submitted twice: {subjects:#?}"
        );
    }
    assert!(subjects.len() >= lost);
}

/// Decrypt a bundle with the host key, and open its ZIP.
fn open_bundle(w: &World, sealed: &[u8]) -> zip::ZipArchive<std::io::Cursor<Vec<u8>>> {
    let keys = w.engine.vault().keyring();
    let id = keys.list().active_host;
    let key = keys.host_private_key(&id).unwrap();
    let (_, zip) = oubli_crypto::file::decrypt(key, sealed, Vec::new()).unwrap();
    zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap()
}

fn entry(z: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str) -> Vec<u8> {
    use std::io::Read;
    let mut f = z.by_name(name).unwrap_or_else(|_| panic!("no {name}"));
    let mut out = Vec::new();
    f.read_to_end(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_bundle_holds_every_record_readably_and_every_hash_matches() {
    use oubli_core::rights::bundle::BundleOptions;
    use sha2::Digest;
    let w = world().await;
    let d = w.run(RequestKind::Access, Params::default()).await;
    assert_eq!(d.request.state, RequestState::Completed);
    let options = BundleOptions {
        recipients: w.engine.recipients(&[]).unwrap(),
        allow_incomplete: false,
    };
    let mut sealed = Vec::new();
    let report = w
        .engine
        .write_bundle(&d.request.id, &options, &mut sealed)
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(report.attachments >= 2, "recordings and emails: {report:?}");
    let person = w.sandbox.demo_person();
    let text = String::from_utf8_lossy(&sealed);
    assert!(!text.contains(&person.email), "the bundle is encrypted");
    let mut z = open_bundle(&w, &sealed);

    // An independent reader (docs/decrypt.py, the host's private key alone)
    // gets the same ZIP back.
    let keys_dir = w._dir.path().join("oubli-keys");
    let host_key = keys_dir.join(format!(
        "host-{}.pem",
        w.engine.vault().keyring().list().active_host
    ));
    let (sealed_path, zip_path) = (
        w._dir.path().join("bundle.oubli"),
        w._dir.path().join("bundle.zip"),
    );
    std::fs::write(&sealed_path, &sealed).unwrap();
    let run = oubli_testing::decrypt_py(&host_key, &sealed_path, &zip_path);
    assert!(
        run.status.success(),
        "decrypt.py: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        hex::encode(sha2::Sha256::digest(std::fs::read(&zip_path).unwrap())),
        report.zip_sha256,
        "decrypt.py's ZIP is the one written"
    );

    // Every file the manifest lists is there, with its hash.
    let manifest: serde_json::Value =
        serde_json::from_slice(&entry(&mut z, "manifest.json")).unwrap();
    assert_eq!(manifest["format"], "oubli-bundle/1");
    assert_eq!(manifest["request"]["id"], d.request.id.as_str());
    assert_eq!(manifest["languages"], serde_json::json!(["en", "fr"]));
    assert_eq!(manifest["complete"], true);
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(
        files.len() + 1,
        z.len(),
        "every entry but the manifest is listed"
    );
    for f in files {
        let bytes = entry(&mut z, f["path"].as_str().unwrap());
        assert_eq!(bytes.len() as u64, f["size"].as_u64().unwrap());
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            f["sha256"].as_str().unwrap(),
            "{}",
            f["path"]
        );
    }

    // The page: every system, every record, each recording playable from
    // the file beside it, the Art. 15(1) information, in French beside the
    // English one; a Content-Security-Policy as a second line of defence;
    // emails decoded, no `\r` left to show as U+FFFD.
    let en = String::from_utf8(entry(&mut z, "index.html")).unwrap();
    assert!(en.contains("<html lang=\"en\">") && en.contains("Your rights"));
    assert!(
        en.contains("href=\"index.fr.html\""),
        "a link to the French page"
    );
    let page = String::from_utf8(entry(&mut z, "index.fr.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<html lang=\"fr\">"));
    assert!(page.contains("Vos données personnelles") && page.contains("Vos droits"));
    for p in [&en, &page] {
        assert!(
            p.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; media-src 'self'; img-src 'self'; style-src 'unsafe-inline'\">"),
            "CSP meta"
        );
        assert!(
            !p.contains('\r') && !p.contains('\u{FFFD}'),
            "no CR, no U+FFFD"
        );
        assert!(!p.contains("(not configured)") && !p.contains("(non configuré)"));
        assert!(!p.contains("[not stated") && !p.contains("[non indiqué"));
    }
    // Labels from the register, dates for the language, what this service
    // holds about the person.
    assert!(
        page.contains("Numéro d’appel") && !page.contains(">customer.ani<"),
        "labels"
    );
    assert!(en.contains("Number you called from"));
    assert!(
        page.contains("décembre") || page.contains("janvier") || page.contains(" 20"),
        "dates"
    );
    assert!(page.contains("Ce que ce service détient lui-même sur vous"));
    assert!(
        page.contains(&format!("data-label=\"Demande\">{}<", d.request.id)),
        "this request is among theirs"
    );
    // Addresses the register gives (the full notice, the authority) are
    // text: nothing on the page links or loads from elsewhere.
    for p in [&en, &page] {
        assert!(
            !p.contains("=\"http") && !p.contains("<script") && !p.contains("url("),
            "self-contained"
        );
    }
    for s in &d.systems {
        assert!(
            page.contains(&format!("data-system=\"{}\"", s.system)),
            "{}",
            s.system
        );
        for e in &s.result.as_ref().unwrap().exported {
            assert!(
                page.contains(&format!("data-record=\"{}\"", e.reference.id)),
                "{} {}",
                s.system,
                e.reference.id
            );
        }
    }
    let audio: Vec<&str> = page
        .split("<audio ")
        .skip(1)
        .map(|a| a.split("src=\"").nth(1).unwrap().split('"').next().unwrap())
        .collect();
    assert!(!audio.is_empty(), "recordings are playable");
    for src in audio {
        assert!(z.by_name(src).is_ok(), "audio {src} is beside the page");
    }
    assert!(page.contains("<pre class=\"email\">"), "emails are shown");
    assert!(page.contains("Objet\u{a0}:"), "email headers in French");

    // data/<system>.json and CSV per kind; the XLSX has a sheet per table.
    let mut tables = 0;
    for s in &d.systems {
        let data: serde_json::Value =
            serde_json::from_slice(&entry(&mut z, &format!("data/{}.json", s.system))).unwrap();
        let records = data["records"].as_array().unwrap();
        assert_eq!(records.len(), s.result.as_ref().unwrap().exported.len());
        let mut kinds: Vec<&str> = records
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        kinds.sort();
        kinds.dedup();
        for k in kinds {
            let csv = entry(&mut z, &format!("data/{}/{k}.csv", s.system));
            let mut rd = csv::Reader::from_reader(&csv[..]);
            assert_eq!(&rd.headers().unwrap()[0], "record");
            let rows = rd.records().count();
            assert_eq!(rows, records.iter().filter(|r| r["kind"] == k).count());
            tables += 1;
        }
    }
    use calamine::Reader;
    let book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(entry(&mut z, "data.xlsx"))).unwrap();
    assert_eq!(book.sheet_names().len(), tables);
    let info: serde_json::Value =
        serde_json::from_slice(&entry(&mut z, "information.json")).unwrap();
    for lang in ["en", "fr"] {
        assert!(info[lang]["gaps"].as_array().unwrap().is_empty());
        let articles: Vec<&str> = info[lang]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["article"].as_str().unwrap())
            .collect();
        for a in [
            "13(1)(c)", "15(1)(b)", "13(1)(e)", "13(1)(f)", "13(2)(a)", "14(2)(f)", "13(2)(f)",
        ] {
            assert!(articles.contains(&a), "{lang}: {a} in {articles:?}");
        }
    }
    let held: serde_json::Value = serde_json::from_slice(&entry(&mut z, "oubli.json")).unwrap();
    assert!(
        held["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == d.request.id.as_str())
    );

    // The answer is kept: fetched after the same person's erasure, it is
    // the same ZIP, byte for byte.
    let before = hex::encode(sha2::Sha256::digest(std::fs::read(&zip_path).unwrap()));
    let e = w.run(RequestKind::Erasure, Params::default()).await;
    assert_eq!(e.request.state, RequestState::Completed, "{e:#?}");
    let mut again = Vec::new();
    w.engine
        .write_bundle(&d.request.id, &options, &mut again)
        .await
        .unwrap();
    assert_ne!(again, sealed, "encrypted afresh");
    let keys = w.engine.vault().keyring();
    let key = keys.host_private_key(&keys.list().active_host).unwrap();
    let (_, zip_again) = oubli_crypto::file::decrypt(key, &again[..], Vec::new()).unwrap();
    assert_eq!(hex::encode(sha2::Sha256::digest(&zip_again)), before);
    // Its hash is on the request and in the audit chain.
    let show = w.engine.show(&d.request.id).await.unwrap();
    assert_eq!(show.answer.as_ref().unwrap().sha256, before);
    assert!(
        show.events
            .iter()
            .any(|ev| ev.action == format!("answer-kept:{before}")),
        "{:?}",
        show.events.iter().map(|e| &e.action).collect::<Vec<_>>()
    );

    // Not an answer: an erasure.
    let err = w
        .engine
        .write_bundle(&e.request.id, &options, Vec::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("answers are for access and portability"),
        "{err}"
    );
    // Shredded with its request: unreadable, and its pieces gone.
    w.engine.shred(&d.request.id, "bob").await.unwrap();
    let err = w
        .engine
        .write_bundle(&d.request.id, &options, Vec::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("shredded"), "{err}");
    let shown = w.engine.show(&d.request.id).await.unwrap();
    assert!(shown.answer.unwrap().removed_at.is_some());
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM answer_chunks WHERE request_id = $1")
        .bind(&d.request.id)
        .fetch_one(w.engine.store().pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "no piece of a shredded answer is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portability_follows_the_register_with_what_the_person_wrote_and_no_recordings() {
    use oubli_core::rights::bundle::BundleOptions;
    let w = world().await;
    let p = w.run(RequestKind::Portability, Params::default()).await;
    assert_eq!(p.request.state, RequestState::Completed, "{p:#?}");
    let mut sealed = Vec::new();
    let report = w
        .engine
        .write_bundle(
            &p.request.id,
            &BundleOptions {
                recipients: w.engine.recipients(&[]).unwrap(),
                allow_incomplete: false,
            },
            &mut sealed,
        )
        .await
        .unwrap();
    let mut z = open_bundle(&w, &sealed);
    let names: Vec<String> = z.file_names().map(|n| n.unwrap().to_string()).collect();
    // Emails the person wrote and received: the messages themselves.
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("attachments/support-mail/") && n.ends_with(".eml")),
        "{names:?}"
    );
    // No recordings: other people's voices (Art. 20(4)).
    assert!(
        !names.iter().any(|n| n.starts_with("attachments/genesys/")),
        "{names:?}"
    );
    assert!(report.attachments > 0);
    // Call records (observed data, contract): times and numbers.
    let genesys: serde_json::Value =
        serde_json::from_slice(&entry(&mut z, "data/genesys.json")).unwrap();
    let fields: Vec<String> = genesys["records"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["fields"].as_array().unwrap().iter())
        .map(|f| f["category"].as_str().unwrap().to_string())
        .collect();
    assert!(
        fields.iter().any(|c| c == "interaction-history"),
        "{fields:?}"
    );
    // The dialer's campaign data is not the person's (provided = false),
    // nor is the do-not-call list (a legal obligation): records with
    // nothing portable are left out and counted, never shown as shells.
    for name in &names {
        if !name.starts_with("data/") || !name.ends_with(".json") {
            continue;
        }
        let data: serde_json::Value = serde_json::from_slice(&entry(&mut z, name)).unwrap();
        for r in data["records"].as_array().unwrap() {
            assert!(
                !r["fields"].as_array().unwrap().is_empty()
                    || !r["attachments"].as_array().unwrap().is_empty(),
                "an empty shell in {name}: {r}"
            );
        }
    }
    assert!(report.left_out > 0, "{report:?}");
    let page = String::from_utf8(entry(&mut z, "index.html")).unwrap();
    assert!(page.contains("Your data, to take elsewhere") && page.contains("(Art. 20 GDPR)"));
    assert!(page.contains("class=\"left-out\"") && page.contains("class=\"excluded\""));
    assert!(
        !page.contains("(Art. 15 GDPR) says"),
        "not the access page's words"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_answer_is_removed_by_a_worker_when_its_keeping_period_ends() {
    use oubli_core::rights::bundle::BundleOptions;
    let w = world_with("keep_answers = \"7 days\"\n").await;
    let d = w.run(RequestKind::Access, Params::default()).await;
    let options = BundleOptions {
        recipients: w.engine.recipients(&[]).unwrap(),
        allow_incomplete: false,
    };
    w.clock.advance(6 * 86_400_000);
    let worker = Worker::new(w.engine.clone(), WorkerOptions::default());
    worker.run(true, std::future::pending()).await.unwrap();
    w.engine
        .write_bundle(&d.request.id, &options, Vec::new())
        .await
        .expect("kept for 7 days");
    w.clock.advance(2 * 86_400_000);
    let worker = Worker::new(w.engine.clone(), WorkerOptions::default());
    worker.run(true, std::future::pending()).await.unwrap();
    let err = w
        .engine
        .write_bundle(&d.request.id, &options, Vec::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("removed on") && err.contains("keep_answers"),
        "{err}"
    );
    let show = w.engine.show(&d.request.id).await.unwrap();
    assert!(show.events.iter().any(|e| e.action == "answer-removed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_is_evidenced_withdrawn_everywhere_and_its_chain_holds() {
    use oubli_core::rights::consent::{Evidence, NewConsent};
    let w = world().await;
    let consent = |given: bool, channel: &str| NewConsent {
        identifiers: w.person(),
        region: None,
        purpose: "marketing-calls".into(),
        given,
        lawful_basis: "consent".into(),
        channel: channel.into(),
        source_system: Some("genesys".into()),
        evidence: Evidence {
            recording_id: Some("conv-123".into()),
            offset_seconds: Some(42),
            notice_version: Some("call-fr-2026-12".into()),
            notice_sha256: Some("a".repeat(64)),
            agent_id: Some("agent-7".into()),
            note: None,
        },
        actor: "alice".into(),
    };
    let given = w
        .engine
        .record_consent(consent(true, "call"))
        .await
        .unwrap();
    assert_eq!(given.action, "given");
    assert!(given.request_id.is_none());
    let bad = w
        .engine
        .record_consent(consent(true, "fax"))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("channel"), "{bad}");

    // Withdrawn through the IVR: a request restricts the purpose everywhere.
    let withdrawn = w
        .engine
        .record_consent(consent(false, "ivr"))
        .await
        .unwrap();
    let request = withdrawn
        .request_id
        .clone()
        .expect("a withdrawal files a request");
    assert!(
        !w.engine
            .check_restriction(&w.person(), None, "marketing-calls")
            .unwrap()
            .allowed,
        "restricted in the registry at once"
    );
    w.drain().await;
    let d = w.engine.show(&request).await.unwrap();
    assert_eq!(d.request.kind, RequestKind::ConsentWithdrawal);
    assert_eq!(system(&d, "dialer").state, SystemState::Done, "{d:#?}");
    assert_eq!(system(&d, "crm").state, SystemState::Done, "{d:#?}");
    // In the systems themselves: the number on the dialer's do-not-call
    // list, the CRM contact's restriction property set.
    let person = w.sandbox.demo_person().clone();
    {
        let dialer = w.sandbox.dialer.data.lock().unwrap();
        let dnc = &dialer.dnc[oubli_sandbox::dialer::DNC_LIST];
        let digits: String = person.phone.chars().filter(char::is_ascii_digit).collect();
        assert!(
            dnc.entries.keys().any(|n| n
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
                .ends_with(&digits[digits.len() - 9..])),
            "{:?}",
            dnc.entries.keys().collect::<Vec<_>>()
        );
        let crm = w.sandbox.crm.data.lock().unwrap();
        let contact = crm
            .contacts
            .values()
            .find(|c| c.properties.get("email") == Some(&person.email))
            .unwrap();
        assert_eq!(contact.properties["gdpr_restricted"], "true");
    }

    // Status and history, in order, evidence opened.
    let view = w.engine.consents(&w.person(), None).await.unwrap();
    assert_eq!(view.history.len(), 2);
    assert_eq!(view.history[0].action, "given");
    assert_eq!(view.history[1].action, "withdrawn");
    assert_eq!(
        view.history[0].evidence.recording_id.as_deref(),
        Some("conv-123")
    );
    assert_eq!(view.status.len(), 1);
    assert!(!view.status[0].given);
    assert_eq!(view.status[0].entry, withdrawn.id);

    // The chain holds; an edited entry is named.
    let report = w.engine.verify_audit().await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.consent.events, 2);
    sqlx::query("UPDATE consent_events SET channel = 'web' WHERE id = $1")
        .bind(given.id)
        .execute(w.engine.store().pool())
        .await
        .unwrap();
    let report = w.engine.verify_audit().await.unwrap();
    assert!(!report.ok());
    let broken = report.consent.broken.unwrap();
    assert_eq!(broken.event, Some(given.id));
    assert!(broken.reason.contains("edited"), "{}", broken.reason);
}

/// Each item the law asks for: where, what it is headed in English and in
/// French, and a piece of what the demo register says for it.
type Check = (&'static str, [&'static str; 2], [&'static str; 2]);

/// Art. 13(1)-(2), and the recording a call opens with.
const ART_13: &[Check] = &[
    (
        "13(1)(a) identity and contact",
        [
            "Who is responsible for your data",
            "Qui est responsable de vos données",
        ],
        ["Example Contact Center SAS", "privacy@example.com"],
    ),
    (
        "13(1)(b) DPO",
        [
            "Data protection officer",
            "Délégué à la protection des données",
        ],
        ["dpo@example.com", "dpo@example.com"],
    ),
    (
        "13(1)(c) purposes",
        ["Purposes and legal basis", "Finalités et base légale"],
        ["to answer your calls", "répondre à vos appels"],
    ),
    (
        "13(1)(c) legal basis",
        ["Purposes and legal basis", "Finalités et base légale"],
        ["Art. 6(1)(b) GDPR", "art. 6(1)(b) du RGPD"],
    ),
    (
        "13(1)(d) legitimate interests",
        [
            "Legitimate interests pursued",
            "Intérêts légitimes poursuivis",
        ],
        [
            "proof of commitments made by phone",
            "preuve des engagements pris par téléphone",
        ],
    ),
    (
        "13(1)(e) recipients",
        ["Recipients", "Destinataires"],
        [
            "HubSpot, Inc., processor acting for us (US)",
            "HubSpot, Inc., sous-traitant agissant pour notre compte (US)",
        ],
    ),
    (
        "13(1)(f) transfers",
        [
            "Transfers outside the European Economic Area",
            "Transferts hors de l’Espace économique européen",
        ],
        [
            "standard contractual clauses",
            "clauses contractuelles types",
        ],
    ),
    (
        "13(2)(a) retention",
        ["How long data is kept", "Durée de conservation"],
        ["13 months", "13 mois"],
    ),
    (
        "13(2)(b) rights",
        ["Your rights", "Vos droits"],
        ["(Art. 20)", "(art. 20)"],
    ),
    (
        "13(2)(c) withdrawing consent",
        ["Withdrawing your consent", "Retirer votre consentement"],
        ["(Art. 7(3) GDPR)", "(art. 7(3) du RGPD)"],
    ),
    (
        "13(2)(d) complaint",
        ["Complaints", "Réclamations"],
        ["(CNIL)", "(CNIL)"],
    ),
    (
        "13(2)(e) requirement",
        [
            "Must you give us this data?",
            "Êtes-vous obligé de nous fournir ces données\u{a0}?",
        ],
        ["You are not obliged", "Vous n’êtes pas obligé"],
    ),
    (
        "13(2)(f) automated decisions",
        [
            "Automated decisions and profiling",
            "Décisions automatisées et profilage",
        ],
        ["built from segments", "constituées à partir de segments"],
    ),
    (
        "21(4) objection",
        ["Your right to object", "Votre droit d’opposition"],
        [
            "the call is then not recorded",
            "l’appel n’est alors pas enregistré",
        ],
    ),
    (
        "the full notice",
        [
            "The full privacy notice",
            "La politique de confidentialité complète",
        ],
        [
            "https://contact.example.com/privacy",
            "https://contact.example.com/fr/confidentialite",
        ],
    ),
];

/// Art. 15(1)-(2).
const ART_15: &[Check] = &[
    (
        "15(1)(a) purposes",
        ["Purposes and legal basis", "Finalités et base légale"],
        ["to answer your calls", "répondre à vos appels"],
    ),
    (
        "15(1)(b) categories",
        [
            "Categories of personal data",
            "Catégories de données personnelles",
        ],
        [
            "Recordings of your calls",
            "Enregistrements audio de vos appels",
        ],
    ),
    (
        "15(1)(c) recipients",
        ["Recipients", "Destinataires"],
        [
            "Genesys Cloud Services, Inc.",
            "Genesys Cloud Services, Inc.",
        ],
    ),
    (
        "15(1)(d) retention",
        ["How long data is kept", "Durée de conservation"],
        ["90 days", "90 jours"],
    ),
    (
        "15(1)(e) rectification, erasure, restriction, objection",
        ["Your rights", "Vos droits"],
        ["(Art. 21)", "(art. 21)"],
    ),
    (
        "15(1)(f) complaint",
        ["Complaints", "Réclamations"],
        ["CNIL", "CNIL"],
    ),
    (
        "15(1)(g) source",
        ["Where the data comes from", "Origine des données"],
        ["when you call, write", "lorsque vous appelez, écrivez"],
    ),
    (
        "15(1)(h) automated decisions",
        [
            "Automated decisions and profiling",
            "Décisions automatisées et profilage",
        ],
        [
            "every answer is given by a person",
            "chaque réponse est donnée par une personne",
        ],
    ),
    (
        "15(2) transfers and safeguards",
        [
            "Transfers outside the European Economic Area",
            "Transferts hors de l’Espace économique européen",
        ],
        ["Data Privacy Framework", "Data Privacy Framework"],
    ),
];

/// Art. 30(1), this service's own activity included.
const ART_30: &[Check] = &[
    (
        "30(1)(a) controller",
        ["Controller", "Responsable du traitement"],
        ["Example Contact Center SAS", "Example Contact Center SAS"],
    ),
    (
        "30(1)(a) DPO",
        [
            "Data protection officer",
            "Délégué à la protection des données",
        ],
        ["dpo@example.com", "dpo@example.com"],
    ),
    (
        "30(1)(b) purposes",
        ["Purposes and legal basis", "Finalités et base légale"],
        [
            "to make sure we never call someone who objected",
            "garantir que nous n’appelons jamais une personne qui s’y est opposée",
        ],
    ),
    (
        "30(1)(c) categories of subjects",
        [
            "Categories of data subjects",
            "Catégories de personnes concernées",
        ],
        ["callers and our agents", "les appelants et nos conseillers"],
    ),
    (
        "30(1)(c) categories of data",
        [
            "Categories of personal data",
            "Catégories de données personnelles",
        ],
        [
            "Your do-not-call entry (dialer / objections)",
            "Votre inscription sur notre liste d’opposition (dialer / objections)",
        ],
    ),
    (
        "30(1)(d) recipients",
        ["Recipients", "Destinataires"],
        ["Example Mail SAS", "Example Mail SAS"],
    ),
    (
        "30(1)(e) transfers",
        [
            "Transfers outside the European Economic Area",
            "Transferts hors de l’Espace économique européen",
        ],
        ["HubSpot, Inc. (US)", "HubSpot, Inc. (US)"],
    ),
    (
        "30(1)(f) time limits",
        ["How long data is kept", "Durée de conservation"],
        ["3 years after the objection", "3 ans après l’opposition"],
    ),
    (
        "30(1)(g) security",
        [
            "Security measures (Art. 32)",
            "Mesures de sécurité (art. 32)",
        ],
        ["two-factor sign-in", "double authentification"],
    ),
    (
        "this service's own activity",
        [
            "Handling requests from data subjects (this service)",
            "Traitement des demandes des personnes concernées (ce service)",
        ],
        ["Art. 6(1)(c) GDPR", "art. 6(1)(c) du RGPD"],
    ),
];

/// Walk a checklist against a rendered text; return what is missing.
fn missing(checks: &[Check], lang: usize, text: &str) -> Vec<&'static str> {
    checks
        .iter()
        .filter(|(_, heading, value)| !(text.contains(heading[lang]) && text.contains(value[lang])))
        .map(|(item, _, _)| *item)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_the_record_of_processing_and_the_answer_say_every_item_the_articles_require() {
    use oubli_core::rights::bundle::Lang;
    let w = world().await;
    let rights = w.engine.systems();
    assert!(
        rights.register_gaps().is_empty(),
        "{:?}",
        rights.register_gaps()
    );
    for (i, lang) in [Lang::En, Lang::Fr].into_iter().enumerate() {
        for channel in ["call", "ivr", "email", "web"] {
            let n = rights.notice(channel, lang, false).unwrap();
            assert!(n.complete);
            let gaps = missing(ART_13, i, &n.text);
            let spoken = matches!(channel, "call" | "ivr");
            assert!(gaps.is_empty(), "{channel} {lang:?}: {gaps:?}\n{}", n.text);
            assert_eq!(
                n.text
                    .contains(["this call is recorded", "cet appel est enregistré"][i]),
                spoken,
                "{channel}"
            );
            if spoken {
                assert!(
                    n.text
                        .contains(["train our agents", "former nos conseillers"][i])
                );
            }
            if lang == Lang::Fr {
                oubli_core::rights::inform::french_typography(&n.text).unwrap();
            }
        }
        let ropa = rights.ropa(lang, false).unwrap();
        let md = ropa.markdown();
        assert!(
            missing(ART_30, i, &md).is_empty(),
            "{:?}\n{md}",
            missing(ART_30, i, &md)
        );
        let html = ropa.html();
        assert!(missing(ART_30, i, &html.replace("&#39;", "'")).is_empty());
        assert_eq!(
            ropa.activities.len(),
            5,
            "four of the register's, and this service's"
        );
        if lang == Lang::Fr {
            oubli_core::rights::inform::french_typography(&md).unwrap();
        }
    }
    // The answer's page, in both languages.
    let d = w.run(RequestKind::Access, Params::default()).await;
    let sealed = w.answer(&d.request.id).await;
    let mut z = open_bundle(&w, &sealed);
    for (i, page) in ["index.html", "index.fr.html"].into_iter().enumerate() {
        let text = String::from_utf8(entry(&mut z, page))
            .unwrap()
            .replace("&#39;", "'")
            .replace("&quot;", "\"");
        assert!(
            missing(ART_15, i, &text).is_empty(),
            "{page}: {:?}",
            missing(ART_15, i, &text)
        );
    }
    // The checklist itself fails on a text that lacks an item.
    let n = rights.notice("web", Lang::En, false).unwrap();
    assert_eq!(
        missing(ART_13, 0, &n.text.replace("13 months", "")),
        ["13(2)(a) retention"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_register_texts_are_refused_or_say_they_are_incomplete() {
    use oubli_core::rights::bundle::{BundleOptions, Lang};
    use oubli_core::rights::inform::InformError;
    let w = world_from(|t| t.replace("[register]\nfile = \"register.toml\"\n", "")).await;
    let rights = w.engine.systems();
    let gaps = rights.register_gaps();
    assert!(gaps.iter().any(|g| g.key == "register"), "{gaps:?}");
    let Err(InformError::Incomplete(g)) = rights.notice("call", Lang::En, false) else {
        panic!("an incomplete notice is refused");
    };
    assert_eq!(g, gaps);
    assert!(matches!(
        rights.ropa(Lang::Fr, false),
        Err(InformError::Incomplete(_))
    ));
    let n = rights.notice("call", Lang::En, true).unwrap();
    assert!(
        !n.complete && n.version.contains("-incomplete-"),
        "{}",
        n.version
    );
    assert!(
        n.text
            .starts_with("How we use your personal data\n\nINCOMPLETE"),
        "{}",
        n.text
    );
    assert!(n.text.contains("[not stated in the register]"));
    // An incomplete notice is no evidence of what a person was told.
    let err = w
        .engine
        .record_consent(oubli_core::rights::consent::NewConsent {
            identifiers: w.person(),
            region: None,
            purpose: "marketing-calls".into(),
            given: true,
            lawful_basis: "consent".into(),
            channel: "call".into(),
            source_system: None,
            evidence: oubli_core::rights::consent::Evidence {
                notice_version: Some(n.version.clone()),
                notice_sha256: Some(n.sha256.clone()),
                ..Default::default()
            },
            actor: "agent-7".into(),
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("incomplete notice"), "{err}");
    // The answer is still written (the deadline runs), says so, and is
    // handed out only when asked for knowingly.
    let d = w.run(RequestKind::Access, Params::default()).await;
    assert_eq!(d.request.state, RequestState::Completed);
    let mut options = BundleOptions {
        recipients: w.engine.recipients(&[]).unwrap(),
        allow_incomplete: false,
    };
    let err = w
        .engine
        .write_bundle(&d.request.id, &options, Vec::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("gap(s)"), "{err}");
    options.allow_incomplete = true;
    let mut sealed = Vec::new();
    let report = w
        .engine
        .write_bundle(&d.request.id, &options, &mut sealed)
        .await
        .unwrap();
    assert!(!report.gaps.is_empty());
    let page = String::from_utf8(entry(&mut open_bundle(&w, &sealed), "index.html")).unwrap();
    assert!(page.contains("class=\"incomplete\"") && page.contains("INCOMPLETE"));
}

/// A webhook receiver on loopback: answers 200 to each POST and keeps
/// what it got (headers and body, as text).
async fn receiver() -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let sink = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            sink.lock().unwrap().push(text);
                            break;
                        }
                    }
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (addr, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipients_are_told_of_an_erasure_and_the_request_waits_for_them() {
    let (addr, got) = receiver().await;
    // SAFETY: tests in this binary do not read this variable concurrently.
    unsafe { std::env::set_var("OUBLI_TEST_RECIPIENT_SECRET", "rcpt-secret") };
    let w = world_with(&format!(
        "\n[[policy.recipients]]\nname = \"agency\"\nsystems = [\"crm\"]\ncategories = [\"contact-details\"]\nvia = \"email\"\naddress = \"privacy@agency.example\"\n\
         \n[[policy.recipients]]\nname = \"partner\"\nsystems = [\"dialer\"]\nvia = \"webhook\"\nurl = \"http://{addr}/art19\"\nsecret = {{ env = \"OUBLI_TEST_RECIPIENT_SECRET\" }}\n\
         \n[[policy.recipients]]\nname = \"unrelated\"\nsystems = [\"support-mail\"]\nvia = \"manual\"\n"
    ))
    .await;
    let d = w.run(RequestKind::Erasure, Params::default()).await;
    // support-mail erased too, so all three recipients are due; the webhook
    // went out, the email and the manual step wait for an operator.
    let partner = system(&d, "recipient:partner");
    assert_eq!(partner.state, SystemState::Done, "{d:#?}");
    let agency = system(&d, "recipient:agency");
    assert_eq!(agency.state, SystemState::NeedsAttention);
    let text = agency
        .result
        .as_ref()
        .unwrap()
        .instructions
        .clone()
        .unwrap();
    let person = w.sandbox.demo_person();
    assert!(text.starts_with("To: privacy@agency.example"), "{text}");
    assert!(
        text.contains(&person.email) && text.contains("erased") && text.contains("crm"),
        "{text}"
    );
    assert_eq!(
        d.request.state,
        RequestState::Executing,
        "the request waits for its recipients"
    );

    // The webhook: signed, and names the person (the recipient must find them).
    let deliveries = got.lock().unwrap().clone();
    assert_eq!(deliveries.len(), 1);
    let (head, body) = deliveries[0].split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("POST /art19"));
    let sig = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("oubli-signature: ")
                .or_else(|| l.strip_prefix("Oubli-Signature: "))
        })
        .unwrap();
    let now = w.clock.now_ms() / 1000;
    oubli_core::rights::webhooks::verify(b"rcpt-secret", sig, body.as_bytes(), now, 300).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["action"], "erased");
    assert_eq!(v["systems"], serde_json::json!(["dialer"]));
    assert_eq!(v["subject"]["emails"][0], person.email.as_str());

    // Ticked off: the request ends, every recipient on it.
    for r in ["recipient:agency", "recipient:unrelated"] {
        w.engine
            .manual_done(&d.request.id, r, "bob", "sent from the privacy mailbox")
            .await
            .unwrap();
    }
    w.drain().await;
    let d = w.engine.show(&d.request.id).await.unwrap();
    assert_eq!(d.request.state, RequestState::Completed, "{d:#?}");
    assert_eq!(system(&d, "recipient:agency").state, SystemState::Done);
    // An access request tells no one.
    let a = w.run(RequestKind::Access, Params::default()).await;
    assert!(
        a.systems
            .iter()
            .all(|s| !s.system.starts_with("recipient:"))
    );
}

/// A browser to render pages with, if this machine has one (CI installs
/// Debian's `chromium` and sets OUBLI_REQUIRE_BROWSER=1).
fn browser() -> Option<std::path::PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| {
            std::env::var_os("PATH").and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join(b))
                    .find(|f| f.is_file())
            })
        });
    if found.is_none() {
        assert!(
            std::env::var("OUBLI_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "OUBLI_REQUIRE_BROWSER=1 but no chromium on PATH"
        );
    }
    found
}

/// Open `page` in headless Chromium with every network request sent to a
/// proxy that records it; wait for the page's media; return the page's DOM
/// and the hosts it asked for (Chromium's own services are left out:
/// [`oubli_testing::proxy::browsers_own`]).
fn render(chromium: &Path, page: &Path, width: u32) -> (String, Vec<String>) {
    let (port, seen) = oubli_testing::proxy::start();
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-sync",
            "--disable-background-networking",
            "--disable-component-update",
            "--autoplay-policy=no-user-gesture-required",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--proxy-server=http://127.0.0.1:{port}"),
            "--proxy-bypass-list=<-loopback>",
            "--virtual-time-budget=15000",
            &format!("--window-size={width},900"),
            "--hide-scrollbars",
            // Lets a measuring page read the page it frames (both files).
            "--allow-file-access-from-files",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    // The proxy reads connections in the order they came: once it has read
    // a sentinel sent now, it has read every request the browser made.
    const SENTINEL: &str = "sentinel.oubli.invalid";
    let mut probe = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(
        &mut probe,
        format!("GET http://{SENTINEL}/ HTTP/1.1\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !seen.lock().unwrap().iter().any(|h| h == SENTINEL) {
        assert!(
            std::time::Instant::now() < deadline,
            "the proxy never read the sentinel"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let hosts = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|h| h.as_str() != SENTINEL && !oubli_testing::proxy::browsers_own(h))
        .cloned()
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), hosts)
}

/// A page that frames PAGE 390 px wide and reports its widths.
const MEASURE: &str = r#"<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="PAGE" style="width:390px;height:844px;border:0"></iframe>
<script>
window.addEventListener('load', function () {
  const doc = document.getElementById('f').contentDocument;
  const d = doc.documentElement;
  const cells = [...doc.querySelectorAll('td, dd')].map(c => c.getBoundingClientRect().width);
  document.body.setAttribute('data-result', JSON.stringify({
    scroll: d.scrollWidth, client: d.clientWidth,
    narrowest: cells.length ? Math.min(...cells) : 0}));
});
</script></body></html>"#;

/// What the page reports once every audio element loaded or failed.
const PROBE: &str = r#"<script>
(function () {
  const audios = [...document.querySelectorAll('audio')];
  const res = {audio: audios.length, loaded: 0, failed: 0,
    systems: [...document.querySelectorAll('section.system')].map(s => s.dataset.system),
    records: [...document.querySelectorAll('tr[data-record]')].map(r => r.dataset.record)};
  let pending = audios.length;
  const done = () => document.body.setAttribute('data-result', JSON.stringify(res));
  if (!pending) done();
  audios.forEach(a => {
    const fin = ok => { if (ok) res.loaded++; else res.failed++; if (--pending === 0) done(); };
    if (a.readyState >= 1) fin(true);
    else {
      a.addEventListener('loadedmetadata', () => fin(true), {once: true});
      a.addEventListener('error', () => fin(false), {once: true});
      a.load();
    }
  });
})();
</script>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundle_page_renders_offline_in_a_real_browser_and_plays_its_recordings() {
    let Some(chromium) = browser() else {
        eprintln!("no chromium on PATH: browser check skipped");
        return;
    };
    let w = world().await;
    let d = w.run(RequestKind::Access, Params::default()).await;
    let sealed = w.answer(&d.request.id).await;
    let dir = tempfile::tempdir().unwrap();
    open_bundle(&w, &sealed).extract(dir.path()).unwrap();
    let page = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    let csp = format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
        "default-src 'none'; media-src 'self'; img-src 'self'; style-src 'unsafe-inline'"
    );
    assert!(page.contains(&csp));
    // The probe goes into a copy without the page's CSP (which would stop
    // it: the page itself runs no script).
    let probed = |name: &str, width: u32| {
        let page = std::fs::read_to_string(dir.path().join(name)).unwrap();
        let probe = dir.path().join(format!("probe-{name}"));
        std::fs::write(
            &probe,
            page.replace(&csp, "")
                .replace("</body>", &format!("{PROBE}</body>")),
        )
        .unwrap();
        let (dom, hosts) = render(&chromium, &probe, width);
        let result = dom
            .split("data-result=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("the probe did not finish: {}", &dom[..dom.len().min(2000)]))
            .replace("&quot;", "\"");
        let r: serde_json::Value = serde_json::from_str(&result).unwrap();
        (r, hosts)
    };
    // On a 390 px phone, neither language's page scrolls sideways: each
    // is framed 390 px wide (headless windows are at least 500 px) by a
    // measuring page, the page itself unchanged, its CSP in force.
    let width_at_390 = |name: &str| -> (u64, u64, f64) {
        let measure = dir.path().join(format!("measure-{name}"));
        std::fs::write(&measure, MEASURE.replace("PAGE", name)).unwrap();
        let (dom, _) = render(&chromium, &measure, 1200);
        let result = dom
            .split("data-result=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("the measure did not finish: {dom}"))
            .replace("&quot;", "\"");
        let r: serde_json::Value = serde_json::from_str(&result).unwrap();
        (
            r["scroll"].as_u64().unwrap(),
            r["client"].as_u64().unwrap(),
            r["narrowest"].as_f64().unwrap(),
        )
    };
    for name in ["index.html", "index.fr.html"] {
        let (scroll, client, narrowest) = width_at_390(name);
        assert!(
            client <= 390 && client > 300 && scroll <= client,
            "{name} scrolls sideways at 390 px: {scroll} > {client}"
        );
        // One column: every cell and definition spans the screen, rather
        // than a table squeezed until its words break letter by letter.
        assert!(
            narrowest > 250.0,
            "{name}: a cell {narrowest} px wide at 390 px"
        );
    }
    let (r, hosts) = probed("index.html", 1200);
    assert!(hosts.is_empty(), "the page asked the network for {hosts:?}");
    let systems: Vec<&str> = r["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for s in &d.systems {
        assert!(
            systems.contains(&s.system.as_str()),
            "{} not on the page",
            s.system
        );
        for e in &s.result.as_ref().unwrap().exported {
            assert!(
                r["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == e.reference.id.as_str()),
                "record {} of {} not on the page",
                e.reference.id,
                s.system
            );
        }
    }
    assert!(r["audio"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(
        r["loaded"], r["audio"],
        "every recording loads in the browser: {r}"
    );
    assert_eq!(r["failed"], 0);

    // The detector itself: a page that does reach out is caught...
    let leak = "<img src=\"http://cdn.example.invalid/pixel.png\"></body>";
    let leaky = dir.path().join("leaky.html");
    std::fs::write(&leaky, page.replace(&csp, "").replace("</body>", leak)).unwrap();
    let (_, hosts) = render(&chromium, &leaky, 1200);
    assert!(
        hosts.iter().any(|h| h == "cdn.example.invalid"),
        "{hosts:?}"
    );
    // ...and the page's CSP stops the same leak: a second line of defence
    // should escaping ever fail.
    let guarded = dir.path().join("guarded.html");
    std::fs::write(&guarded, page.replace("</body>", leak)).unwrap();
    let (_, hosts) = render(&chromium, &guarded, 1200);
    assert!(hosts.is_empty(), "the CSP let {hosts:?} through");
    // A page that does scroll sideways is caught too.
    std::fs::write(
        dir.path().join("wide.html"),
        page.replace("</h1>", "</h1><div style=\"width:900px\">wide</div>"),
    )
    .unwrap();
    let (scroll, client, _) = width_at_390("wide.html");
    assert!(scroll > client, "{scroll} {client}");
}

/// Where a fault strikes one system: while the request is planned (its
/// search fails), or afterwards, while its task runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Planning,
    Task,
}

/// No request completes on a system it could not search or act on, for
/// every kind: the CRM fails (`fault`, or refused connections when `None`
/// and its URL points nowhere) while the others work; the request must not
/// end completed, the CRM's part must wait for an operator with its error,
/// never "done, found 0", and the request is listed as needing attention.
async fn honest_when_crm_fails(w: &World, fault: Option<oubli_sandbox::Fault>, phases: &[Phase]) {
    use oubli_model::request::Filter;
    use oubli_sandbox::System;
    let kinds = [
        (RequestKind::Access, Params::default()),
        (RequestKind::Portability, Params::default()),
        (
            RequestKind::Rectification,
            Params {
                changes: vec![Correction {
                    system: Some("crm".into()),
                    field: "firstname".into(),
                    new_value: Some("Adélaïde".into()),
                }],
                ..Params::default()
            },
        ),
        (RequestKind::Restriction, Params::default()),
        (
            RequestKind::Objection,
            Params {
                scope: vec!["direct-marketing".into()],
                ..Params::default()
            },
        ),
        (RequestKind::Erasure, Params::default()),
    ];
    let crm = w.sandbox.controls(System::Crm);
    for &phase in phases {
        for (kind, params) in &kinds {
            let label = format!("{kind} with {fault:?} during {phase:?}");
            if phase == Phase::Planning {
                crm.set_fault(fault);
            }
            let id = w.file(*kind, params.clone()).await;
            if phase == Phase::Task {
                // Plan with the CRM healthy, then break it.
                let worker = Worker::new(w.engine.clone(), WorkerOptions::default());
                while matches!(
                    w.engine.show(&id).await.unwrap().request.state,
                    RequestState::Verified | RequestState::Planning
                ) {
                    worker.run_once().await.unwrap();
                }
                let planned = w.engine.show(&id).await.unwrap();
                assert!(
                    system(&planned, "crm")
                        .plan
                        .as_ref()
                        .unwrap()
                        .error
                        .is_none(),
                    "{label}: planned with a healthy CRM"
                );
                crm.set_fault(fault);
            }
            w.drain().await;
            crm.set_fault(None);
            let d = w.engine.show(&id).await.unwrap();
            assert_ne!(d.request.state, RequestState::Completed, "{label}: {d:#?}");
            let c = system(&d, "crm");
            assert_eq!(c.state, SystemState::NeedsAttention, "{label}: {c:#?}");
            assert!(c.error.is_some(), "{label}: the error is shown");
            if let Some(r) = &c.result {
                assert!(
                    r.verified
                        .as_deref()
                        .is_none_or(|v| !v.contains("nothing found")),
                    "{label}: {r:?}"
                );
            }
            for other in ["dialer", "support-mail"] {
                let o = system(&d, other);
                let manual = o.error.as_ref().is_some_and(|e| e.kind == "manual");
                assert!(
                    matches!(
                        o.state,
                        SystemState::Done | SystemState::Nothing | SystemState::Partial
                    ) || (o.state == SystemState::NeedsAttention && manual),
                    "{label}: {other} went on: {o:#?}"
                );
            }
            let waiting = w
                .engine
                .list(&Filter {
                    needs_attention: true,
                    limit: 100,
                    ..Filter::default()
                })
                .await
                .unwrap();
            assert!(waiting.iter().any(|r| r.id == id), "{label}: listed");
            // Out of the way of the next kind.
            if !d.request.state.is_final() {
                w.engine.cancel(&id, "alice", "test over").await.unwrap();
            }
        }
    }
}

fn crm_fails_fast(text: String) -> String {
    text.replace("[policy]\n", "[policy]\nmax_attempts = 2\n")
        + "\n[systems.crm.limits]\ntimeout = \"1s\"\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_kind_completes_on_a_system_whose_token_is_refused() {
    let w = world_from(crm_fails_fast).await;
    honest_when_crm_fails(
        &w,
        Some(oubli_sandbox::Fault::Status(401)),
        &[Phase::Planning, Phase::Task],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_kind_completes_on_a_system_that_times_out() {
    let w = world_from(crm_fails_fast).await;
    honest_when_crm_fails(
        &w,
        Some(oubli_sandbox::Fault::Hang),
        &[Phase::Planning, Phase::Task],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_kind_completes_on_a_system_that_refuses_connections() {
    // The CRM's address points at a port nobody listens on.
    let w = world_edited(|sandbox, text| {
        let crm = format!("{:?}", sandbox.url(oubli_sandbox::System::Crm));
        crm_fails_fast(text.replace(&crm, "\"http://127.0.0.1:9\""))
    })
    .await;
    honest_when_crm_fails(&w, None, &[Phase::Planning]).await;
}

/// A planning task whose worker dies every time it holds it (claimed, then
/// its lease expires) is parked after its attempts like any other task: the
/// request shows it with its error, an event says it needs attention, it is
/// listed as needing attention, and an operator's retry plans it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planning_task_whose_worker_keeps_dying_needs_attention_and_can_be_retried() {
    use oubli_model::request::Filter;
    use oubli_model::{TaskOp, TaskState};
    use oubli_store::tasks;
    let w = world().await;
    let id = w.file(RequestKind::Access, Params::default()).await;
    let store = w.engine.store();
    let worker = Worker::new(w.engine.clone(), WorkerOptions::default());
    let mut parked = 0;
    for _ in 0..10 {
        // A worker claims it and dies at once: a lease already expired.
        let claimed = tasks::claim(store, "doomed", -1, 10).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        assert_eq!(claimed[0].op, TaskOp::Plan);
        parked += worker.rescue().await.unwrap().1;
    }
    assert_eq!(parked, 1);
    let d = w.engine.show(&id).await.unwrap();
    assert_eq!(d.request.state, RequestState::Verified);
    let planning = d.planning.as_ref().expect("the planning task is shown");
    assert_eq!(planning.task.state, TaskState::NeedsAttention);
    let error = planning.error.as_ref().unwrap();
    assert_eq!(error.kind, "lease-expired");
    assert!(
        error.message.contains("stopped before finishing"),
        "{error:?}"
    );
    assert!(
        d.events
            .iter()
            .any(|e| e.action == "needs-attention" && e.system.is_none()),
        "{:#?}",
        d.events
    );
    let waiting = w
        .engine
        .list(&Filter {
            needs_attention: true,
            limit: 10,
            ..Filter::default()
        })
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1);
    // Skipping planning makes no sense; retrying does.
    assert!(w.engine.skip(&id, "", "bob", "no").await.is_err());
    w.engine.retry_planning(&id, "bob").await.unwrap();
    w.drain().await;
    let d = w.engine.show(&id).await.unwrap();
    assert_eq!(d.request.state, RequestState::Completed, "{d:#?}");
    assert!(d.planning.is_none());
    assert!(d.events.iter().any(|e| e.action == "retried"));
}

/// Art. 18(3): a restriction is lifted once the subject was told: the
/// registry answers "allowed" at once, and a `lift` request takes it out of
/// every system (the dialer's do-not-call list here), recorded on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restriction_is_lifted_in_the_registry_and_in_every_system() {
    let w = world().await;
    let finish = async |id: &str| {
        w.drain().await;
        let d = w.engine.show(id).await.unwrap();
        for s in d
            .systems
            .iter()
            .filter(|s| s.state == SystemState::NeedsAttention)
        {
            w.engine
                .manual_done(id, &s.system, "bob", "done in the admin console")
                .await
                .unwrap();
        }
        w.drain().await;
        w.engine.show(id).await.unwrap()
    };
    let id = w.file(RequestKind::Restriction, Params::default()).await;
    let d = finish(&id).await;
    assert_eq!(d.request.state, RequestState::Completed, "{d:#?}");
    let phone = w.sandbox.demo_person().phone.clone();
    let blocked = || {
        let data = w.sandbox.dialer.data.lock().unwrap();
        w.sandbox.dialer.blocked(&data, &phone, w.clock.now_ms())
    };
    assert!(blocked(), "restricted in the dialer");
    assert!(
        !w.engine
            .check_restriction(&w.person(), None, "all")
            .unwrap()
            .allowed
    );

    // The subject must have been told, and why it ends must be said.
    let e = w.engine.lift(&id, "bob", "court order ended", "").await;
    assert!(e.unwrap_err().to_string().contains("told"));
    let lift = w
        .engine
        .lift(
            &id,
            "bob",
            "the court order ended",
            "by email, 4 December 2026",
        )
        .await
        .unwrap();
    assert_eq!(lift.kind, RequestKind::Lift);
    assert!(
        w.engine
            .check_restriction(&w.person(), None, "all")
            .unwrap()
            .allowed,
        "the registry lifts it at once"
    );
    let l = finish(&lift.id).await;
    assert_eq!(l.request.state, RequestState::Completed, "{l:#?}");
    assert_eq!(system(&l, "dialer").state, SystemState::Done);
    assert!(!blocked(), "lifted in the dialer");
    let original = w.engine.show(&id).await.unwrap();
    let note = original
        .events
        .iter()
        .find(|e| e.action == "restriction-lifted")
        .and_then(|e| e.reason.clone())
        .unwrap();
    assert!(
        note.contains("court order") && note.contains("4 December"),
        "{note}"
    );
    // Lifted once: a second lift is refused, as is lifting an access request.
    assert!(w.engine.lift(&id, "bob", "again", "again").await.is_err());
    let access = w.file(RequestKind::Access, Params::default()).await;
    w.drain().await;
    let e = w.engine.lift(&access, "bob", "x", "y").await.unwrap_err();
    assert!(e.to_string().contains("only a restriction"), "{e}");
}

/// An attachment that cannot be read makes a degraded bundle, never a
/// failed or truncated one: the items that could not be read are named in
/// the report, the manifest and on the page, and everything else is there
/// with its hash. (Before, aborting a file inside the streamed ZIP failed
/// the whole bundle: "seek is not supported".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_names_what_it_could_not_read_and_holds_the_rest() {
    use oubli_core::rights::bundle::BundleOptions;
    use sha2::Digest;
    let w = world().await;
    let id = w.file(RequestKind::Access, Params::default()).await;
    // Every system exported its records; then the recordings' system goes
    // down before the answer is assembled.
    let worker = Worker::new(w.engine.clone(), WorkerOptions::default());
    let exported = |d: &RequestDetail| {
        !d.systems.is_empty()
            && d.systems
                .iter()
                .all(|s| matches!(s.state, SystemState::Done | SystemState::Nothing))
    };
    for _ in 0..500 {
        if exported(&w.engine.show(&id).await.unwrap()) {
            break;
        }
        worker.run_once().await.unwrap();
        w.clock.advance(50);
    }
    assert!(exported(&w.engine.show(&id).await.unwrap()));
    w.sandbox
        .controls(oubli_sandbox::System::Acd)
        .set_fault(Some(oubli_sandbox::Fault::Status(503)));
    w.drain().await;
    let d = w.engine.show(&id).await.unwrap();
    assert_eq!(d.request.state, RequestState::Completed);
    let options = BundleOptions {
        recipients: w.engine.recipients(&[]).unwrap(),
        allow_incomplete: false,
    };
    let mut sealed = Vec::new();
    let report = w
        .engine
        .write_bundle(&d.request.id, &options, &mut sealed)
        .await
        .expect("a degraded bundle is still written");
    assert!(
        report.failed.iter().any(|(s, _)| s == "genesys"),
        "{:?}",
        report.failed
    );
    assert!(report.failed.iter().all(|(s, _)| s == "genesys"));
    assert!(report.attachments >= 1, "the emails are there: {report:?}");
    let mut z = open_bundle(&w, &sealed);
    let manifest: serde_json::Value =
        serde_json::from_slice(&entry(&mut z, "manifest.json")).unwrap();
    for f in manifest["files"].as_array().unwrap() {
        let bytes = entry(&mut z, f["path"].as_str().unwrap());
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            f["sha256"].as_str().unwrap()
        );
    }
    let data: serde_json::Value =
        serde_json::from_slice(&entry(&mut z, "data/genesys.json")).unwrap();
    let not_included = data["records"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["attachments"].as_array().unwrap())
        .filter(|a| a["included"] == false)
        .count();
    assert!(not_included >= 1, "{data:#}");
    let page = String::from_utf8(entry(&mut z, "index.html")).unwrap();
    assert!(page.contains("could not be included"), "named on the page");
}

/// The subject's page says "nothing found" only where a search said so: a
/// system that could not be searched, and was skipped by an operator so
/// the answer could go out, is shown as not searched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_never_says_nothing_was_found_where_nothing_was_searched() {
    use oubli_core::rights::bundle::BundleOptions;
    let w = world_from(crm_fails_fast).await;
    let crm = w.sandbox.controls(oubli_sandbox::System::Crm);
    crm.set_fault(Some(oubli_sandbox::Fault::Status(503)));
    let id = w.file(RequestKind::Access, Params::default()).await;
    w.drain().await;
    crm.set_fault(None);
    let d = w.engine.show(&id).await.unwrap();
    assert_eq!(system(&d, "crm").state, SystemState::NeedsAttention);
    w.engine
        .skip(
            &id,
            "crm",
            "bob",
            "CRM down for a week; answering the rest now",
        )
        .await
        .unwrap();
    // The answer's own task runs, then the request ends.
    w.drain().await;
    let d = w.engine.show(&id).await.unwrap();
    assert_eq!(d.request.state, RequestState::PartiallyCompleted);
    let options = BundleOptions {
        recipients: w.engine.recipients(&[]).unwrap(),
        allow_incomplete: false,
    };
    let mut sealed = Vec::new();
    w.engine
        .write_bundle(&id, &options, &mut sealed)
        .await
        .unwrap();
    let mut z = open_bundle(&w, &sealed);
    let page = String::from_utf8(entry(&mut z, "index.html")).unwrap();
    let crm_part = page
        .split("<section")
        .find(|s| s.contains("data-system=\"crm\""))
        .unwrap();
    assert!(crm_part.contains("could not be searched"), "{crm_part}");
    assert!(
        !crm_part.contains("Nothing about you was found"),
        "{crm_part}"
    );
}

/// An erasure's certificate never lets an unsearched system read as empty:
/// a system whose search failed, skipped by an operator, is certified as
/// not searched, with why; the searched ones carry no such note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_says_which_system_was_never_searched() {
    let w = world_from(crm_fails_fast).await;
    let crm = w.sandbox.controls(oubli_sandbox::System::Crm);
    crm.set_fault(Some(oubli_sandbox::Fault::Status(503)));
    let id = w.file(RequestKind::Erasure, Params::default()).await;
    w.drain().await;
    crm.set_fault(None);
    w.engine
        .skip(
            &id,
            "crm",
            "bob",
            "CRM decommissioned; erased by its vendor",
        )
        .await
        .unwrap();
    w.drain().await;
    let d = w.engine.show(&id).await.unwrap();
    assert_eq!(d.request.state, RequestState::PartiallyCompleted, "{d:#?}");
    let cert = w.engine.certificate(&id).await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&cert.document).unwrap();
    let systems = doc["systems"].as_array().unwrap();
    let crm = systems.iter().find(|s| s["system"] == "crm").unwrap();
    assert_eq!(crm["state"], "skipped");
    assert!(
        crm["not_searched"]
            .as_str()
            .is_some_and(|w| w.contains("could not be searched") && w.contains("unavailable")),
        "{crm:#}"
    );
    let dialer = systems.iter().find(|s| s["system"] == "dialer").unwrap();
    assert!(dialer.get("not_searched").is_none(), "{dialer:#}");
}

/// An idempotency key keeps its body's hash keyed; a key remembered
/// before that (a bare SHA-256) still answers the request it filed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_from_before_keyed_hashes_still_matches() {
    use oubli_core::rights::engine::RequestError;
    let w = world().await;
    let new = || NewRequest {
        id: None,
        kind: RequestKind::Access,
        identifiers: w.person(),
        region: None,
        actor: "alice".into(),
        params: Params::default(),
        attestation: None,
        intake: None,
    };
    let (first, fresh) = w
        .engine
        .file_once(new(), "alice:k1", "abc123")
        .await
        .unwrap();
    assert!(fresh);
    let pool = w.engine.store().pool();
    let kept: String = sqlx::query_scalar("SELECT body_sha256 FROM idempotency_keys")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_ne!(kept, "abc123", "kept keyed");
    // As an older version stored it.
    sqlx::query("UPDATE idempotency_keys SET body_sha256 = 'abc123'")
        .execute(pool)
        .await
        .unwrap();
    let (again, fresh) = w
        .engine
        .file_once(new(), "alice:k1", "abc123")
        .await
        .unwrap();
    assert!(!fresh);
    assert_eq!(again.id, first.id);
    let e = w
        .engine
        .file_once(new(), "alice:k1", "other")
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::KeyReused), "{e}");
}
