//! The store on both engines (PostgreSQL when `OUBLI_TEST_PG` is set): the
//! task table's leases, the rescuer, concurrent claimers, data keys.

use oubli_crypto::keyring::Keyring;
use oubli_model::{Clock, ManualClock, SystemClock};
use oubli_model::{RequestKind, RequestState};
use oubli_model::{TaskOp, TaskState};
use oubli_store::keys::{Sealed, Vault};
use oubli_store::requests::{self, RequestRow};
use oubli_store::tasks::{self, Finish};
use oubli_store::{Store, StoreError, Tx};
use std::collections::HashSet;
use std::sync::Arc;

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

/// The store at `url`, on a clock the test moves.
async fn on_clock(url: &str) -> (Store, Arc<ManualClock>) {
    let clock = ManualClock::starting_now();
    let store = Store::open(url).await.unwrap().with_clock(clock.clone());
    (store, clock)
}

async fn request(store: &Store, id: &str) {
    let row = RequestRow {
        id: id.into(),
        kind: RequestKind::Erasure,
        state: RequestState::Executing,
        subject_sealed: vec![0],
        params_sealed: None,
        policy: "{}".into(),
        requested_by: "alice".into(),
        approved_by: None,
        attested_by: None,
        received_at: now_ms(),
        due_at: now_ms(),
        extended_months: 0,
        updated_at: now_ms(),
        finalized_at: None,
        summary: None,
        channel: Some("call".into()),
    };
    let mut tx = store.write().await.unwrap();
    requests::insert(&mut tx, &row, &[]).await.unwrap();
    oubli_store::commit(tx).await.unwrap();
}

async fn enqueue(store: &Store, id: &str, systems: usize, max_attempts: i64) {
    let mut tx = store.write().await.unwrap();
    for i in 0..systems {
        tasks::enqueue(
            &mut tx,
            id,
            &format!("s{i}"),
            TaskOp::Erase,
            TaskState::Available,
            max_attempts,
            store.now(),
        )
        .await
        .unwrap();
    }
    oubli_store::commit(tx).await.unwrap();
}

fn done(t: &tasks::TaskRow) -> Finish {
    Finish::done(t, now_ms())
}

async fn finish(store: &Store, t: &tasks::TaskRow, f: &Finish) -> Result<(), StoreError> {
    let mut tx = store.write().await.unwrap();
    let r = tasks::finish(
        &mut tx,
        t.id,
        t.lease_token.as_deref().unwrap(),
        f,
        store.now(),
    )
    .await;
    oubli_store::commit(tx).await.unwrap();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_keep_a_task_to_one_worker_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in oubli_test_support::store_urls(dir.path()).await {
        let (store, clock) = on_clock(&url).await;
        request(&store, "r-1").await;
        enqueue(&store, "r-1", 1, 2).await;
        // Enqueueing again is a no-op (the unique key).
        enqueue(&store, "r-1", 1, 2).await;

        let a = tasks::claim(&store, "a", 300, 10).await.unwrap();
        assert_eq!(a.len(), 1, "{backend}");
        assert_eq!(a[0].attempt, 1);
        assert!(
            tasks::claim(&store, "b", 300, 10).await.unwrap().is_empty(),
            "{backend}: leased"
        );
        // A heartbeat keeps it.
        clock.advance(200);
        let token = a[0].lease_token.clone().unwrap();
        assert_eq!(
            tasks::heartbeat(&store, &[a[0].id], &token, 300)
                .await
                .unwrap(),
            1
        );
        clock.advance(299);
        assert_eq!(
            tasks::rescue(&store).await.unwrap(),
            0,
            "{backend}: still leased"
        );
        // Without heartbeats it expires and is rescued, then taken by b.
        clock.advance(2);
        assert_eq!(tasks::rescue(&store).await.unwrap(), 1, "{backend}");
        let b = tasks::claim(&store, "b", 300, 10).await.unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].attempt, 2);
        assert_eq!(b[0].attempted_by.as_deref(), Some("b"));
        // a's late result is refused; its heartbeat holds nothing.
        let late = finish(&store, &a[0], &done(&a[0])).await.unwrap_err();
        assert!(matches!(late, StoreError::Conflict(_)), "{backend}: {late}");
        assert_eq!(
            tasks::heartbeat(&store, &[a[0].id], &token, 300)
                .await
                .unwrap(),
            0
        );
        // b's lease expires too: at its last attempt it is not requeued
        // but found for parking, and parked once.
        clock.advance(301);
        assert_eq!(tasks::rescue(&store).await.unwrap(), 0, "{backend}");
        let exhausted = tasks::expired_exhausted(store.pool(), store.now())
            .await
            .unwrap();
        assert_eq!(exhausted.len(), 1, "{backend}");
        let mut tx = store.write().await.unwrap();
        assert!(
            tasks::park_expired(
                &mut tx,
                exhausted[0].id,
                "lease-expired",
                b"sealed",
                store.now()
            )
            .await
            .unwrap()
        );
        assert!(
            !tasks::park_expired(
                &mut tx,
                exhausted[0].id,
                "lease-expired",
                b"sealed",
                store.now()
            )
            .await
            .unwrap(),
            "{backend}: parked twice"
        );
        oubli_store::commit(tx).await.unwrap();
        let t = &tasks::for_request(store.pool(), "r-1").await.unwrap()[0];
        assert_eq!(t.state, TaskState::NeedsAttention);
        assert_eq!(t.error_kind.as_deref(), Some("lease-expired"));
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rescuer_never_touches_a_task_that_finished() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in oubli_test_support::store_urls(dir.path()).await {
        let (store, clock) = on_clock(&url).await;
        request(&store, "r-1").await;
        enqueue(&store, "r-1", 1, 5).await;
        let a = tasks::claim(&store, "a", 100, 10).await.unwrap();
        finish(&store, &a[0], &done(&a[0])).await.unwrap();
        clock.advance(150);
        assert_eq!(tasks::rescue(&store).await.unwrap(), 0, "{backend}");
        assert!(
            tasks::expired_exhausted(store.pool(), store.now())
                .await
                .unwrap()
                .is_empty()
        );
        let t = &tasks::for_request(store.pool(), "r-1").await.unwrap()[0];
        assert_eq!(t.state, TaskState::Done);
        assert!(t.finalized_at.is_some());
        // Not claimable either.
        assert!(tasks::claim(&store, "b", 100, 10).await.unwrap().is_empty());
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_schedule_is_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in oubli_test_support::store_urls(dir.path()).await {
        let (store, clock) = on_clock(&url).await;
        request(&store, "r-1").await;
        enqueue(&store, "r-1", 1, 5).await;
        let a = tasks::claim(&store, "a", 10_000, 10).await.unwrap();
        let mut f = done(&a[0]);
        f.state = TaskState::Available;
        f.scheduled_at = store.now() + 400;
        finish(&store, &a[0], &f).await.unwrap();
        store.close().await;
        let reopened = Store::open(&url).await.unwrap().with_clock(clock.clone());
        assert!(
            tasks::claim(&reopened, "b", 10_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "{backend}"
        );
        clock.advance(399);
        assert!(
            tasks::claim(&reopened, "b", 10_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "{backend}: not due yet"
        );
        clock.advance(1);
        assert_eq!(
            tasks::claim(&reopened, "b", 10_000, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        reopened.close().await;
    }
}

/// Claim and finish in batches until nothing is left; what it ran.
async fn claimer(url: String, name: &'static str) -> Vec<i64> {
    let store = Store::open(&url).await.unwrap();
    let mut ran = Vec::new();
    loop {
        let claimed = tasks::claim(&store, name, 30_000, 25).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        let mut tx = store.write().await.unwrap();
        finish_all(&mut tx, &claimed).await;
        oubli_store::commit(tx).await.unwrap();
        ran.extend(claimed.iter().map(|t| t.id));
    }
    store.close().await;
    ran
}

async fn finish_all(tx: &mut Tx, claimed: &[tasks::TaskRow]) {
    for t in claimed {
        tasks::finish(
            tx,
            t.id,
            t.lease_token.as_deref().unwrap(),
            &done(t),
            now_ms(),
        )
        .await
        .unwrap();
    }
}

/// Two claimers with their own connection pools (two processes, as far as
/// the database can tell) share 1,000 tasks: each runs exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_claimers_share_a_thousand_tasks_none_twice_none_lost() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in oubli_test_support::store_urls(dir.path()).await {
        let t0 = std::time::Instant::now();
        let setup = Store::open(&url).await.unwrap();
        for r in 0..100 {
            request(&setup, &format!("r-{r}")).await;
            enqueue(&setup, &format!("r-{r}"), 10, 5).await;
        }
        setup.close().await;
        eprintln!("{backend}: setup {:?}", t0.elapsed());
        let t0 = std::time::Instant::now();
        let mut handles = Vec::new();
        for name in ["a", "b"] {
            let url = url.clone();
            handles.push(tokio::spawn(claimer(url, name)));
        }
        let mut all = Vec::new();
        let mut per = Vec::new();
        for h in handles {
            let ran = h.await.unwrap();
            per.push(ran.len());
            all.extend(ran);
        }
        let unique: HashSet<i64> = all.iter().copied().collect();
        assert_eq!(all.len(), 1000, "{backend}: {per:?}");
        assert_eq!(unique.len(), 1000, "{backend}: a task ran twice");
        eprintln!("{backend}: claimers ran {per:?} in {:?}", t0.elapsed());
        let store = Store::open(&url).await.unwrap();
        let counts = tasks::count_by_state(store.pool()).await.unwrap();
        assert_eq!(counts, vec![("done".to_string(), 1000)], "{backend}");
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_keys_live_wrapped_in_the_store_and_shredding_ends_every_copy() {
    let dir = tempfile::tempdir().unwrap();
    let ring_dir = dir.path().join("keys");
    Keyring::init(&ring_dir, None).unwrap();
    for (backend, url) in oubli_test_support::store_urls(dir.path()).await {
        let store = Store::open(&url).await.unwrap();
        let vault = Vault::new(
            store.clone(),
            Arc::new(Keyring::open(&ring_dir, None).unwrap()),
        );
        let sealed = vault
            .seal("r-1", Sealed::Subject, b"ada@example.com")
            .await
            .unwrap();
        assert_eq!(
            &vault.open("r-1", Sealed::Subject, &sealed).await.unwrap()[..],
            b"ada@example.com"
        );
        // Bound to what it is and to its row: the same bytes as another
        // field, or another system's, do not open.
        assert!(
            vault.open("r-1", Sealed::Params, &sealed).await.is_err(),
            "{backend}"
        );
        let plan = vault.seal("r-1", Sealed::Plan("crm"), b"{}").await.unwrap();
        assert!(vault.open("r-1", Sealed::Plan("crm"), &plan).await.is_ok());
        assert!(
            vault
                .open("r-1", Sealed::Plan("dialer"), &plan)
                .await
                .is_err(),
            "{backend}"
        );
        // A backup taken now…
        let backup = sealed.clone();
        let stats = vault.stats().await.unwrap();
        assert_eq!((stats.requests_with_keys, stats.keys_to_rewrap), (1, 0));

        // Rotation: a new KEK; the data key is rewrapped, the value is not
        // touched and still opens (in a fresh process, without the cache).
        let mut ring = Keyring::open(&ring_dir, None).unwrap();
        ring.rotate(None).unwrap();
        let rotated = Vault::new(
            store.clone(),
            Arc::new(Keyring::open(&ring_dir, None).unwrap()),
        );
        assert_eq!(
            rotated.stats().await.unwrap().keys_to_rewrap,
            1,
            "{backend}"
        );
        assert_eq!(rotated.rewrap().await.unwrap(), 1);
        assert_eq!(rotated.stats().await.unwrap().keys_to_rewrap, 0);
        assert_eq!(
            &rotated.open("r-1", Sealed::Subject, &sealed).await.unwrap()[..],
            b"ada@example.com"
        );

        // Shredding: the value and its backup are unreadable for good, and
        // no new key is created for that request.
        assert!(rotated.shred("r-1").await.unwrap());
        let fresh = Vault::new(
            store.clone(),
            Arc::new(Keyring::open(&ring_dir, None).unwrap()),
        );
        let e = fresh
            .open("r-1", Sealed::Subject, &backup)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("crypto-shredded"), "{backend}: {e}");
        assert!(fresh.seal("r-1", Sealed::Subject, b"again").await.is_err());
        assert_eq!(fresh.stats().await.unwrap().shredded, 1);
        store.close().await;
    }
}

#[tokio::test]
async fn a_bad_location_is_one_clear_line() {
    let e = Store::open("/nonexistent/dir/oubli.db").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "database /nonexistent/dir/oubli.db: directory /nonexistent/dir does not exist"
    );
    let e = Store::open("postgres://oubli:s3cret@127.0.0.1:1/x")
        .await
        .unwrap_err();
    assert!(!e.to_string().contains("s3cret"), "{e}");
    assert!(!e.to_string().contains('\n'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_names_the_first_edited_removed_or_cut_event() {
    use oubli_store::audit;
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in oubli_test_support::store_urls(dir.path()).await {
        let store = Store::open(&url).await.unwrap();
        for r in 0..4 {
            request(&store, &format!("r-{r}")).await;
            let mut tx = store.write_logged().await.unwrap();
            requests::transition(
                &mut tx,
                &format!("r-{r}"),
                &[RequestState::Executing],
                RequestState::Completed,
                &requests::Changes::default(),
                requests::Event {
                    request_id: &format!("r-{r}"),
                    actor: "worker",
                    action: "settled",
                    from: None,
                    to: None,
                    system: Some("crm"),
                    reason_sealed: Some(b"sealed bytes"),
                },
                store.now(),
            )
            .await
            .unwrap();
            oubli_store::commit(tx).await.unwrap();
        }
        place_all(&store).await;
        let ok = audit::verify(store.pool()).await.unwrap();
        assert_eq!(ok.events, 8, "{backend}");
        assert_eq!(ok.broken, None, "{backend}");
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM events ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();

        // Edited: the third event's actor.
        sqlx::query("UPDATE events SET actor = 'mallory' WHERE id = $1")
            .bind(ids[2])
            .execute(store.pool())
            .await
            .unwrap();
        let v = audit::verify(store.pool()).await.unwrap();
        let broken = v.broken.unwrap();
        assert_eq!(broken.event, Some(ids[2]), "{backend}");
        assert!(broken.reason.contains("edited"), "{}", broken.reason);
        sqlx::query("UPDATE events SET actor = 'alice' WHERE id = $1")
            .bind(ids[2])
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(audit::verify(store.pool()).await.unwrap().broken, None);

        // A sealed reason swapped for another.
        sqlx::query("UPDATE events SET reason_sealed = $1 WHERE id = $2")
            .bind(b"other bytes".to_vec())
            .bind(ids[5])
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(
            audit::verify(store.pool())
                .await
                .unwrap()
                .broken
                .unwrap()
                .event,
            Some(ids[5]),
            "{backend}"
        );
        sqlx::query("UPDATE events SET reason_sealed = $1 WHERE id = $2")
            .bind(b"sealed bytes".to_vec())
            .bind(ids[5])
            .execute(store.pool())
            .await
            .unwrap();

        // Removed: the next one no longer follows.
        sqlx::query("DELETE FROM events WHERE id = $1")
            .bind(ids[3])
            .execute(store.pool())
            .await
            .unwrap();
        let broken = audit::verify(store.pool()).await.unwrap().broken.unwrap();
        assert_eq!(broken.event, Some(ids[4]), "{backend}");
        assert!(broken.reason.contains("removed"), "{}", broken.reason);

        // Cut off the end (on a fresh store): the head remembers.
        store.close().await;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("cut.db").display().to_string())
        .await
        .unwrap();
    for r in 0..3 {
        request(&store, &format!("r-{r}")).await;
    }
    sqlx::query("DELETE FROM events WHERE id = (SELECT MAX(id) FROM events)")
        .execute(store.pool())
        .await
        .unwrap();
    let broken = audit::verify(store.pool()).await.unwrap().broken.unwrap();
    assert_eq!(broken.event, None);
    assert!(
        broken.reason.contains("cut off the end"),
        "{}",
        broken.reason
    );
}

/// A kept answer is the pieces of the attempt that finished: pieces an
/// attempt left behind (its worker died) go when another is kept, and an
/// attempt that finishes second keeps nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_kept_attempt_of_an_answer_stays() {
    use oubli_store::answers;
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in oubli_test_support::store_urls(dir.path()).await {
        let (store, _clock) = on_clock(&url).await;
        request(&store, "r-1").await;
        // An attempt that died after two pieces, one that finished.
        for (attempt, n) in [("dead", 2), ("good", 3), ("late", 1)] {
            for seq in 0..n {
                answers::put_chunk(&store, "r-1", attempt, seq, &[seq as u8; 4])
                    .await
                    .unwrap();
            }
        }
        let mut tx = store.write().await.unwrap();
        assert!(
            answers::keep(&mut tx, "r-1", "good", "aa", 12, 3, b"s", store.now())
                .await
                .unwrap()
        );
        assert!(
            !answers::keep(&mut tx, "r-1", "late", "bb", 4, 1, b"s", store.now())
                .await
                .unwrap(),
            "{backend}: a second attempt does not replace the kept one"
        );
        oubli_store::commit(tx).await.unwrap();
        let kept = answers::get(store.pool(), "r-1").await.unwrap().unwrap();
        assert_eq!((kept.attempt.as_str(), kept.chunks), ("good", 3));
        for seq in 0..3 {
            assert_eq!(
                answers::chunk(store.pool(), "r-1", "good", seq)
                    .await
                    .unwrap(),
                vec![seq as u8; 4]
            );
        }
        for (attempt, seq) in [("dead", 0), ("dead", 1), ("late", 0)] {
            assert!(
                answers::chunk(store.pool(), "r-1", attempt, seq)
                    .await
                    .is_err(),
                "{backend}: {attempt} {seq} left behind"
            );
        }
        // Removed: pieces gone, the row says when.
        let mut tx = store.write().await.unwrap();
        assert!(answers::remove(&mut tx, "r-1", store.now()).await.unwrap());
        assert!(!answers::remove(&mut tx, "r-1", store.now()).await.unwrap());
        oubli_store::commit(tx).await.unwrap();
        let removed = answers::get(store.pool(), "r-1").await.unwrap().unwrap();
        assert!(removed.removed_at.is_some());
        assert!(
            answers::chunk(store.pool(), "r-1", "good", 0)
                .await
                .is_err()
        );
        store.close().await;
    }
}

/// `""` names the host's own task: the planning task, and once an answer
/// task exists, that one (what `request retry ID` runs again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_own_parked_task_is_the_one_an_operator_retries() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in oubli_test_support::store_urls(dir.path()).await {
        let (store, _clock) = on_clock(&url).await;
        request(&store, "r-1").await;
        for op in [TaskOp::Plan, TaskOp::Answer] {
            let mut tx = store.write().await.unwrap();
            tasks::enqueue(&mut tx, "r-1", "", op, TaskState::Available, 1, store.now())
                .await
                .unwrap();
            oubli_store::commit(tx).await.unwrap();
            let claimed = tasks::claim(&store, "w", 10_000, 10).await.unwrap();
            let t = claimed.iter().find(|t| t.op == op).unwrap();
            let mut f = done(t);
            if op == TaskOp::Answer {
                f.state = TaskState::NeedsAttention;
            }
            finish(&store, t, &f).await.unwrap();
        }
        let mut tx = store.write().await.unwrap();
        let retried = tasks::operator_set(
            &mut tx,
            "r-1",
            "",
            &[TaskState::NeedsAttention],
            TaskState::Available,
            None,
            store.now(),
        )
        .await
        .unwrap();
        oubli_store::commit(tx).await.unwrap();
        assert_eq!(retried.op, TaskOp::Answer, "{backend}");
        let again = tasks::claim(&store, "w", 10_000, 10).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].op, TaskOp::Answer, "{backend}");
        store.close().await;
    }
}

/// The console's queue: open requests by deadline with the id breaking
/// ties, a keyset cursor across equal deadlines, and the kind, system and
/// open filters, on both engines; and the dashboard's counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_pages_by_deadline_through_ties_and_filters() {
    use oubli_model::SystemState;
    use oubli_model::request::Filter;
    use oubli_store::requests::SystemRow;
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in oubli_test_support::store_urls(dir.path()).await {
        let (store, _clock) = on_clock(&url).await;
        // Twelve requests, deadlines in fours (ties), kinds alternating;
        // the last three over; every other one involves system `crm`.
        let mut tx = store.write().await.unwrap();
        for i in 0..12i64 {
            let state = if i >= 9 {
                RequestState::Completed
            } else {
                RequestState::Executing
            };
            let row = RequestRow {
                id: format!("r-{:02}", 11 - i),
                kind: if i % 2 == 0 {
                    RequestKind::Access
                } else {
                    RequestKind::Erasure
                },
                state,
                subject_sealed: vec![0],
                params_sealed: None,
                policy: "{}".into(),
                requested_by: "alice".into(),
                approved_by: None,
                attested_by: None,
                received_at: 1_000 * i,
                due_at: 1_000_000 + (i / 4) * 1_000,
                extended_months: 0,
                updated_at: 5_000,
                finalized_at: (i >= 9).then_some(1_000 * i + 1_000 + i),
                summary: None,
                channel: None,
            };
            requests::insert(&mut tx, &row, &[]).await.unwrap();
            if i % 2 == 1 {
                requests::put_system(
                    &mut tx,
                    &row.id,
                    &SystemRow {
                        system: "crm".into(),
                        state: SystemState::Planned,
                        connector: None,
                        component_sha256: None,
                        plan_sealed: None,
                        result_sealed: None,
                        error_kind: None,
                        error_sealed: None,
                        counts: "{}".into(),
                        updated_at: 5_000,
                    },
                )
                .await
                .unwrap();
            }
        }
        oubli_store::commit(tx).await.unwrap();
        let page = |after: Option<&RequestRow>, extra: Filter| Filter {
            by_due: true,
            open: true,
            after_due: after.map(|r| r.due_at),
            after: after.map(|r| r.id.clone()),
            limit: 5,
            ..extra
        };
        let mut all = Vec::new();
        let mut last: Option<RequestRow> = None;
        loop {
            let rows = requests::list(store.pool(), &page(last.as_ref(), Filter::default()))
                .await
                .unwrap();
            if rows.is_empty() {
                break;
            }
            last = rows.last().cloned();
            all.extend(rows);
        }
        let got: Vec<(i64, String)> = all.iter().map(|r| (r.due_at, r.id.clone())).collect();
        let mut want = got.clone();
        want.sort();
        assert_eq!(got, want, "{backend}: by deadline, then id");
        assert_eq!(all.len(), 9, "{backend}: the nine open ones, each once");
        let crm = requests::list(
            store.pool(),
            &page(
                None,
                Filter {
                    system: Some("crm".into()),
                    kind: Some(RequestKind::Erasure),
                    limit: 100,
                    ..Filter::default()
                },
            ),
        )
        .await
        .unwrap();
        assert!(
            crm.iter().all(|r| r.kind == RequestKind::Erasure) && crm.len() == 4,
            "{backend}: {}",
            crm.len()
        );
        assert_eq!(
            oubli_store::service::due_between(store.pool(), 1_001_000, 1_002_000)
                .await
                .unwrap(),
            4,
            "{backend}"
        );
        let times = oubli_store::service::completion_times(store.pool(), 0)
            .await
            .unwrap();
        assert_eq!(times, vec![1_009, 1_010, 1_011], "{backend}");
        let outcomes = oubli_store::service::system_outcomes(store.pool(), 0)
            .await
            .unwrap();
        assert_eq!(outcomes, vec![("crm".to_string(), 6, 0)], "{backend}");
        store.close().await;
    }
}

/// The privacy center's rows on both engines: a challenge's code used once,
/// its failures counted, hourly counts that forget the old, and a link
/// told of each state once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_challenges_counts_and_links_hold_on_both_engines() {
    use oubli_store::privacy::{self, ChallengeRow, LinkRow};
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in oubli_test_support::store_urls(dir.path()).await {
        let (store, _clock) = on_clock(&url).await;
        request(&store, "r-p1").await;
        let got = requests::get(store.pool(), "r-p1").await.unwrap();
        assert_eq!(got.channel.as_deref(), Some("call"), "{backend}");
        let row = ChallengeRow {
            handle_hash: "h1".into(),
            request_id: "r-p1".into(),
            purpose: "file".into(),
            draft_sealed: Some(vec![1, 2, 3]),
            code_mac: "mac".into(),
            lang: "fr".into(),
            created_at: 10,
            expires_at: 1_000,
            failures: 0,
            used_at: None,
            open_until: None,
            phase: None,
        };
        let mut tx = store.write().await.unwrap();
        privacy::add_challenge(&mut tx, &row, 0).await.unwrap();
        privacy::failed(&mut tx, "h1").await.unwrap();
        oubli_store::commit(tx).await.unwrap();
        let kept = privacy::challenge_of(store.pool(), "h1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.failures, 1, "{backend}");
        assert_eq!(kept.draft_sealed, Some(vec![1, 2, 3]), "{backend}");
        let mut tx = store.write().await.unwrap();
        assert!(privacy::used(&mut tx, "h1", 20, Some(500)).await.unwrap());
        assert!(
            !privacy::used(&mut tx, "h1", 21, None).await.unwrap(),
            "{backend}: once"
        );
        oubli_store::commit(tx).await.unwrap();
        let used = privacy::challenge_of(store.pool(), "h1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((used.used_at, used.open_until), (Some(20), Some(500)));
        assert_eq!(
            used.draft_sealed, None,
            "{backend}: the draft is forgotten once used"
        );
        // A challenge long over goes when the next is made.
        let mut tx = store.write().await.unwrap();
        privacy::add_challenge(
            &mut tx,
            &ChallengeRow {
                handle_hash: "h2".into(),
                ..row.clone()
            },
            2_000,
        )
        .await
        .unwrap();
        oubli_store::commit(tx).await.unwrap();
        assert!(
            privacy::challenge_of(store.pool(), "h1")
                .await
                .unwrap()
                .is_none(),
            "{backend}"
        );
        // Counts per hour.
        let mut tx = store.write().await.unwrap();
        assert_eq!(privacy::count(&mut tx, "m", 100, 0).await.unwrap(), 1);
        assert_eq!(privacy::count(&mut tx, "m", 200, 0).await.unwrap(), 2);
        assert_eq!(privacy::count(&mut tx, "other", 200, 0).await.unwrap(), 1);
        assert_eq!(
            privacy::count(&mut tx, "m", 300, 150).await.unwrap(),
            2,
            "{backend}"
        );
        oubli_store::commit(tx).await.unwrap();
        // Links: told once per state.
        let mut tx = store.write().await.unwrap();
        privacy::add_link(
            &mut tx,
            &LinkRow {
                token_hash: "t1".into(),
                request_id: "r-p1".into(),
                lang: "en".into(),
                created_at: 1,
                told_state: "received".into(),
                downloads: 0,
            },
        )
        .await
        .unwrap();
        privacy::downloaded(&mut tx, "r-p1").await.unwrap();
        oubli_store::commit(tx).await.unwrap();
        let untold = privacy::untold(store.pool(), 10).await.unwrap();
        assert_eq!(untold.len(), 1, "{backend}");
        assert_eq!(untold[0].1, "executing");
        assert_eq!(untold[0].0.downloads, 1);
        let mut tx = store.write().await.unwrap();
        assert!(
            privacy::told(&mut tx, "r-p1", "received", "executing")
                .await
                .unwrap()
        );
        assert!(
            !privacy::told(&mut tx, "r-p1", "received", "executing")
                .await
                .unwrap()
        );
        oubli_store::commit(tx).await.unwrap();
        assert!(
            privacy::untold(store.pool(), 10).await.unwrap().is_empty(),
            "{backend}"
        );
        assert_eq!(
            privacy::link_of(store.pool(), "t1")
                .await
                .unwrap()
                .unwrap()
                .request_id,
            "r-p1"
        );
    }
}

fn sweep_row(id: &str) -> oubli_store::retention::SweepRow {
    oubli_store::retention::SweepRow {
        id: id.into(),
        policy: "mail".into(),
        policy_digest: "d".into(),
        system: "mail".into(),
        category: "correspondence".into(),
        trigger: "received".into(),
        action: "delete".into(),
        mode: "enforce".into(),
        state: "running".into(),
        cutoff: 1_000,
        test_of: None,
        started_by: "alice".into(),
        started_at: now_ms(),
        approved_by: Some("bob".into()),
        approved_at: Some(now_ms()),
        finished_at: None,
        connector: None,
        component_sha256: None,
        cursor: None,
        inflight: None,
        tally: "{}".into(),
        note: None,
    }
}

/// Retention's shared state on both engines: the token bucket refills at
/// its rate up to its burst and says how long to wait; a run's lease keeps
/// it to one process until it runs out, progress needs the lease; a record
/// handled twice keeps one tombstone; holds are released once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_budgets_leases_and_tombstones() {
    use oubli_store::retention as r;
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in oubli_test_support::store_urls(dir.path()).await {
        let (store, clock) = on_clock(&url).await;
        // 2 a second, 4 at once: four go, the fifth waits half a second.
        for _ in 0..4 {
            assert_eq!(
                r::take(&store, "mail", 2.0, 4.0, 1.0).await.unwrap(),
                0,
                "{backend}"
            );
        }
        assert_eq!(
            r::take(&store, "mail", 2.0, 4.0, 1.0).await.unwrap(),
            500,
            "{backend}"
        );
        // Another system has its own bucket.
        assert_eq!(r::take(&store, "crm", 2.0, 4.0, 1.0).await.unwrap(), 0);
        clock.advance(500);
        assert_eq!(r::take(&store, "mail", 2.0, 4.0, 1.0).await.unwrap(), 0);
        assert!(r::take(&store, "mail", 2.0, 4.0, 1.0).await.unwrap() > 0);
        // A quiet hour refills to the burst, not beyond.
        clock.advance(3_600_000);
        for _ in 0..4 {
            assert_eq!(r::take(&store, "mail", 2.0, 4.0, 1.0).await.unwrap(), 0);
        }
        assert!(r::take(&store, "mail", 2.0, 4.0, 1.0).await.unwrap() > 0);
        // A sweep's call at twice the cost waits for two tokens.
        clock.advance(500);
        assert_eq!(r::take(&store, "mail", 2.0, 4.0, 2.0).await.unwrap(), 500);

        // Leases.
        let mut tx = store.write().await.unwrap();
        r::insert(&mut tx, &sweep_row("s-1")).await.unwrap();
        oubli_store::commit(tx).await.unwrap();
        let until = store.now() + 1_000;
        assert!(r::claim(&store, "s-1", "a", until).await.unwrap());
        assert!(
            !r::claim(&store, "s-1", "b", until).await.unwrap(),
            "{backend}"
        );
        assert!(
            r::unheld(store.pool(), store.now())
                .await
                .unwrap()
                .is_empty()
        );
        clock.advance(1_001);
        assert_eq!(r::unheld(store.pool(), store.now()).await.unwrap(), ["s-1"]);
        assert!(
            r::claim(&store, "s-1", "b", store.now() + 1_000)
                .await
                .unwrap()
        );
        // The old holder's progress is refused; the new holder's kept.
        let cursor = (500, "x/1".to_string());
        let mut tx = store.write().await.unwrap();
        assert!(
            !r::progress(&mut tx, "s-1", "a", Some(&cursor), Some("[]"), "{}", 0)
                .await
                .unwrap()
        );
        assert!(
            r::progress(
                &mut tx,
                "s-1",
                "b",
                Some(&cursor),
                Some("[]"),
                "{}",
                store.now() + 1_000
            )
            .await
            .unwrap()
        );
        let stone = r::Tombstone {
            record_mac: "m1".into(),
            category: "correspondence".into(),
            trigger_at: 400,
            action: "delete".into(),
            outcome: "done".into(),
        };
        r::tombstones(&mut tx, "s-1", std::slice::from_ref(&stone), store.now())
            .await
            .unwrap();
        let again = r::Tombstone {
            outcome: "not-found".into(),
            ..stone.clone()
        };
        r::tombstones(&mut tx, "s-1", &[again], store.now())
            .await
            .unwrap();
        oubli_store::commit(tx).await.unwrap();
        assert_eq!(
            r::tombstones_of(store.pool(), "s-1").await.unwrap(),
            [stone]
        );
        let row = r::get(store.pool(), "s-1").await.unwrap();
        assert_eq!(
            (row.cursor, row.inflight.as_deref()),
            (Some(cursor), Some("[]"))
        );
        assert_eq!(row.approved_by.as_deref(), Some("bob"));
        let mut tx = store.write().await.unwrap();
        assert!(
            r::finish(&mut tx, "s-1", "b", "done", "{}", None, store.now())
                .await
                .unwrap()
        );
        assert!(
            !r::finish(&mut tx, "s-1", "b", "done", "{}", None, store.now())
                .await
                .unwrap()
        );
        oubli_store::commit(tx).await.unwrap();
        assert_eq!(r::get(store.pool(), "s-1").await.unwrap().inflight, None);

        // Holds.
        let hold = r::HoldRow {
            id: "h-1".into(),
            system: "mail".into(),
            category: None,
            record_mac: Some("m2".into()),
            reason: "case".into(),
            created_by: "carol".into(),
            created_at: store.now(),
        };
        let mut tx = store.write().await.unwrap();
        r::add_hold(&mut tx, &hold).await.unwrap();
        oubli_store::commit(tx).await.unwrap();
        assert_eq!(
            r::holds(store.pool(), Some("mail")).await.unwrap(),
            std::slice::from_ref(&hold)
        );
        assert!(
            r::holds(store.pool(), Some("crm"))
                .await
                .unwrap()
                .is_empty()
        );
        let mut tx = store.write().await.unwrap();
        assert!(
            r::release_hold(&mut tx, "h-1", "carol", store.now())
                .await
                .unwrap()
        );
        assert!(
            !r::release_hold(&mut tx, "h-1", "carol", store.now())
                .await
                .unwrap()
        );
        oubli_store::commit(tx).await.unwrap();
        assert!(r::holds(store.pool(), None).await.unwrap().is_empty());
    }
}

/// Append `n` events for request `id` as a worker would (each in its own
/// transaction).
async fn append(store: &Store, id: &str, n: usize, actor: &str) {
    for i in 0..n {
        let mut tx = store.write_logged().await.unwrap();
        requests::event(
            &mut tx,
            &requests::Event {
                request_id: id,
                actor,
                action: if i % 2 == 0 { "erase-done" } else { "approved" },
                from: None,
                to: None,
                system: Some("crm"),
                reason_sealed: (i % 3 == 0).then_some(&b"sealed"[..]),
            },
            1_700_000_000_000 + i as i64,
        )
        .await
        .unwrap();
        oubli_store::commit(tx).await.unwrap();
    }
}

/// Be the sequencer once: place every waiting event (on PostgreSQL;
/// SQLite placed them as they were written).
async fn place_all(store: &Store) {
    use oubli_store::log;
    let token = log::take_lease(store, log::SEQUENCER, "test", 10_000)
        .await
        .unwrap()
        .expect("the lease is free");
    log::sequence_all(store, "test", token, 10_000, 1000)
        .await
        .unwrap()
        .expect("the lease holds");
    log::release_lease(store, log::SEQUENCER, "test", token)
        .await
        .unwrap();
}

/// Every event has one place, 0..n without a gap; the chain holds; every
/// event's inclusion proof verifies against the tree's root.
async fn log_holds(store: &Store, backend: &str) -> i64 {
    use oubli_store::{audit, log, merkle};
    let places: Vec<Option<i64>> = sqlx::query_scalar("SELECT leaf FROM events ORDER BY leaf")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let n = places.len() as i64;
    assert_eq!(
        places,
        (0..n).map(Some).collect::<Vec<_>>(),
        "{backend}: every event placed once, no gap"
    );
    let chain = audit::verify(store.pool()).await.unwrap();
    assert!(chain.broken.is_none(), "{backend}: {chain:?}");
    assert_eq!(chain.events as i64, n);
    let root = log::root(store.pool(), n).await.unwrap();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM events ORDER BY leaf")
        .fetch_all(store.pool())
        .await
        .unwrap();
    for (place, id) in ids.iter().enumerate() {
        let leaf = log::leaf_of(store.pool(), *id).await.unwrap().unwrap();
        assert_eq!(leaf.leaf, Some(place as i64));
        let path = log::inclusion(store.pool(), place as i64, n).await.unwrap();
        let hash: merkle::Hash = hex::decode(&leaf.leaf_hash).unwrap().try_into().unwrap();
        assert!(
            merkle::verify_inclusion(place as u64, n as u64, &hash, &path, &root),
            "{backend}: proof of {place}"
        );
    }
    root.iter()
        .fold(n, |a, b| a.wrapping_mul(31).wrapping_add(*b as i64))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequencer_that_dies_mid_batch_is_taken_over_and_nothing_is_lost_or_placed_twice() {
    use oubli_store::log::{self, SEQUENCER};
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in oubli_test_support::store_urls(dir.path()).await {
        let (store, clock) = on_clock(&url).await;
        request(&store, "r-1").await;
        append(&store, "r-1", 25, "worker:a").await;
        if store.backend() == oubli_store::Backend::Postgres {
            // Workers only append: nothing is placed until a sequencer runs.
            let all: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
                .fetch_one(store.pool())
                .await
                .unwrap();
            assert!(all >= 25);
            assert_eq!(log::waiting(store.pool()).await.unwrap(), all, "{backend}");
        }
        let a = log::take_lease(&store, SEQUENCER, "a", 10_000)
            .await
            .unwrap()
            .expect("a takes the free lease");
        assert_eq!(
            log::take_lease(&store, SEQUENCER, "b", 10_000)
                .await
                .unwrap(),
            None,
            "{backend}: one holder at a time"
        );
        // A places a batch and dies before it commits: its transaction is
        // rolled back, as the server does for a dead connection.
        {
            let mut tx = store.write().await.unwrap();
            log::integrate(&mut tx, 10).await.unwrap();
            drop(tx);
        }
        append(&store, "r-1", 5, "worker:b").await;
        // B waits for A's lease to run out, then takes over with a new token.
        assert_eq!(
            log::take_lease(&store, SEQUENCER, "b", 10_000)
                .await
                .unwrap(),
            None
        );
        clock.advance(10_001);
        let b = log::take_lease(&store, SEQUENCER, "b", 10_000)
            .await
            .unwrap()
            .expect("b takes the expired lease");
        assert!(b > a, "{backend}: a new token fences the old holder");
        while let Some(done) = log::sequence(&store, "b", b, 10_000, 7).await.unwrap() {
            if done.to == done.from {
                break;
            }
        }
        // A comes back: its token no longer holds, it writes nothing.
        assert_eq!(
            log::sequence(&store, "a", a, 10_000, 100).await.unwrap(),
            None,
            "{backend}"
        );
        assert_eq!(log::waiting(store.pool()).await.unwrap(), 0, "{backend}");
        log_holds(&store, backend).await;
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_databases_with_the_same_events_have_the_same_root() {
    use oubli_store::log;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut roots = Vec::new();
    for (n, dir) in dirs.iter().enumerate() {
        for (backend, url) in oubli_test_support::store_urls(dir.path()).await {
            let store = Store::open(&url).await.unwrap();
            // Different ids underneath: the second store wasted some.
            if n == 1 {
                append(&store, "r-x", 3, "noise").await;
                sqlx::query("DELETE FROM events WHERE request_id = 'r-x'")
                    .execute(store.pool())
                    .await
                    .unwrap();
                sqlx::query("UPDATE audit_head SET seq = 0, hash = $1, built = 0, frontier = ''")
                    .bind(oubli_store::audit::GENESIS)
                    .execute(store.pool())
                    .await
                    .unwrap();
                sqlx::query("DELETE FROM audit_nodes")
                    .execute(store.pool())
                    .await
                    .unwrap();
            }
            append(&store, "r-1", 13, "worker:a").await;
            let token = log::take_lease(&store, log::SEQUENCER, "s", 10_000)
                .await
                .unwrap()
                .unwrap();
            log::sequence(&store, "s", token, 10_000, 1000)
                .await
                .unwrap();
            log_holds(&store, backend).await;
            roots.push((
                backend,
                n,
                hex::encode(log::root(store.pool(), 13).await.unwrap()),
            ));
            store.close().await;
        }
    }
    assert!(roots.len() >= 2);
    assert!(
        roots.iter().all(|r| r.2 == roots[0].2),
        "the same events give the same root: {roots:?}"
    );
}
