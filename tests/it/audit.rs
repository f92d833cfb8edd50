//! The audit log as a Merkle log, through the `oubli` binary: a
//! certificate's inclusion proof checked by docs/verify-proof.py and by
//! `oubli certificate verify` (both refusing it after any one-byte
//! change), a witness's heads checked by the same script, `audit verify
//! --heads` naming an edited event, a removed one, a reordered pair, and a
//! tail cut after a published head; and, on PostgreSQL, a worker process
//! killed while it holds the sequencer's lease, taken over by another.

use super::site::{Site, text, wait_for};
use std::path::{Path, PathBuf};
use std::process::Output;

fn python(args: &[&Path]) -> Output {
    std::process::Command::new("python3")
        .arg(oubli_testing::repo_root().join("docs/verify-proof.py"))
        .args(args)
        .output()
        .expect("python3 runs (CI installs it with `cryptography`)")
}

fn ok(out: &Output) -> bool {
    out.status.success() && text(&out.stdout).starts_with("ok: ")
}

/// A copy of the site's SQLite store (with its WAL), to tamper with.
fn copy_db(site: &Site, name: &str) -> PathBuf {
    let to = site.dir.path().join(name);
    std::fs::copy(site.db_path(), &to).unwrap();
    let wal = PathBuf::from(format!("{}-wal", site.db_path().display()));
    if wal.exists() {
        std::fs::copy(&wal, format!("{}-wal", to.display())).unwrap();
    }
    to
}

async fn sql(db: &Path, statements: &[&str]) {
    let store = oubli_store::Store::open(db.to_str().unwrap())
        .await
        .unwrap();
    for s in statements {
        sqlx::query(s).execute(store.pool()).await.unwrap();
    }
    store.close().await;
}

/// Flip one byte of `file` at `at` (a hex digit stays a hex digit).
fn flip(file: &Path, at: usize) -> Vec<u8> {
    let orig = std::fs::read(file).unwrap();
    let mut bytes = orig.clone();
    bytes[at] = match bytes[at] {
        b'0' => b'1',
        b'a' => b'b',
        b => b ^ 0x01,
    };
    std::fs::write(file, &bytes).unwrap();
    orig
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_carry_proofs_a_witness_catches_a_cut_tail_and_python_checks_both() {
    let site = Site::local("").await;
    let mut ids = Vec::new();
    for email in ["ada+calls@example.com", "bob@example.com"] {
        let filed = site
            .json(&["request", "erase", "--email", email, "--as", "alice"])
            .await;
        let id = filed["id"].as_str().unwrap().to_string();
        site.json(&["request", "approve", &id, "--as", "bob"]).await;
        ids.push(id);
    }
    let worker = site.run(&["worker", "--until-idle"]).await;
    assert!(worker.status.success(), "{}", text(&worker.stderr));

    // The certificate, its proof, and the script that checks it alone.
    let cert = site.dir.path().join("cert.json");
    let fetched = site
        .run(&[
            "certificate",
            "fetch",
            &ids[0],
            "--out",
            cert.to_str().unwrap(),
        ])
        .await;
    assert!(fetched.status.success(), "{}", text(&fetched.stderr));
    let proof_file = PathBuf::from(format!("{}.proof.json", cert.display()));
    let proof: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&proof_file).unwrap()).unwrap();
    assert_eq!(proof["format"], "oubli-inclusion-proof/1");
    assert_eq!(proof["event"]["action"], "certificate-issued");
    let checked = python(&["certificate".as_ref(), cert.as_path()]);
    assert!(
        ok(&checked),
        "{}{}",
        text(&checked.stdout),
        text(&checked.stderr)
    );
    // oubli checks the same proof itself: with the store, and with the
    // public key alone (no store), as a recipient of the files would.
    let key = format!("{}.pub.pem", cert.display());
    let offline = [
        "certificate",
        "verify",
        cert.to_str().unwrap(),
        "--key",
        key.as_str(),
    ];
    for args in [&offline[..], &offline[..3]] {
        let out = site.run(args).await;
        assert!(
            out.status.success() && text(&out.stdout).contains("inclusion proof holds: event "),
            "{args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    // Any one byte changed in the certificate, the proof or the head fails.
    let doc_len = std::fs::read(&cert).unwrap().len();
    for at in [10, doc_len / 2, doc_len - 3] {
        let orig = flip(&cert, at);
        let out = python(&["certificate".as_ref(), cert.as_path()]);
        assert!(!ok(&out), "a change at byte {at} of the certificate passed");
        let out = site.run(&offline).await;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        std::fs::write(&cert, orig).unwrap();
    }
    let proof_text = String::from_utf8(std::fs::read(&proof_file).unwrap()).unwrap();
    let head_root = proof["head"]["root"].as_str().unwrap();
    let head_sig = proof["head"]["signature"].as_str().unwrap();
    let leaf_hash = proof["leaf_hash"].as_str().unwrap();
    let mut spots = vec![
        proof_text.find(head_root).unwrap() + 7,
        proof_text.find(head_sig).unwrap() + 40,
        proof_text.find(leaf_hash).unwrap() + 3,
        proof_text.find("\"leaf_index\": ").unwrap() + 14,
        proof_text.find("\"size\": ").unwrap() + 8,
        proof_text.find("\"signed_at\": ").unwrap() + 14,
        proof_text.find("\"actor\": \"").unwrap() + 10,
    ];
    if let Some(p) = proof["path"].as_array().and_then(|p| p.first()) {
        spots.push(proof_text.find(p.as_str().unwrap()).unwrap() + 20);
    }
    for at in spots {
        let orig = flip(&proof_file, at);
        let out = python(&["certificate".as_ref(), cert.as_path()]);
        assert!(
            !ok(&out),
            "a change at byte {at} of the proof passed:\n{}",
            String::from_utf8_lossy(&std::fs::read(&proof_file).unwrap())
        );
        let out = site.run(&offline).await;
        assert!(
            out.status.code() == Some(1) && text(&out.stdout).contains("INVALID"),
            "oubli passed a change at byte {at} of the proof: {}",
            text(&out.stdout)
        );
        std::fs::write(&proof_file, orig).unwrap();
    }
    assert!(ok(&python(&["certificate".as_ref(), cert.as_path()])));

    // Another request's proof, sound in itself, does not vouch for this
    // certificate.
    let other = site.dir.path().join("other.json");
    let fetched = site
        .run(&[
            "certificate",
            "fetch",
            &ids[1],
            "--out",
            other.to_str().unwrap(),
        ])
        .await;
    assert!(fetched.status.success(), "{}", text(&fetched.stderr));
    let other_proof = format!("{}.proof.json", other.display());
    let out = site
        .run(&[&offline[..], &["--proof", other_proof.as_str()]].concat())
        .await;
    assert!(
        out.status.code() == Some(1) && text(&out.stdout).contains("attests another document"),
        "{}",
        text(&out.stdout)
    );

    // `audit prove` prints the same kind of proof for a request.
    let proved = site.json(&["audit", "prove", &ids[1]]).await;
    assert_eq!(proved["event"]["request_id"], ids[1].as_str());

    // A witness keeps the heads; the script checks their consistency.
    let signed = site.run(&["audit", "sign"]).await;
    assert!(signed.status.success(), "{}", text(&signed.stderr));
    let heads = site.run(&["audit", "heads", "--since", "0"]).await;
    assert!(heads.status.success(), "{}", text(&heads.stderr));
    let witness = site.dir.path().join("witness.jsonl");
    std::fs::write(&witness, &heads.stdout).unwrap();
    let lines = text(&heads.stdout).lines().count();
    assert!(lines >= 2, "{}", text(&heads.stdout));
    let key = PathBuf::from(format!("{}.pub.pem", cert.display()));
    let out = python(&[
        "heads".as_ref(),
        witness.as_path(),
        "--key".as_ref(),
        key.as_path(),
    ]);
    assert!(ok(&out), "{}{}", text(&out.stdout), text(&out.stderr));

    let size: i64 =
        serde_json::from_str::<serde_json::Value>(text(&heads.stdout).lines().last().unwrap())
            .unwrap()["head"]["size"]
            .as_i64()
            .unwrap();
    let verify = async |db: &Path| {
        site.run(&[
            "audit",
            "verify",
            "--db",
            db.to_str().unwrap(),
            "--heads",
            witness.to_str().unwrap(),
        ])
        .await
    };
    let intact = verify(&site.db_path()).await;
    assert!(
        intact.status.success(),
        "{}{}",
        text(&intact.stdout),
        text(&intact.stderr)
    );
    assert!(text(&intact.stdout).contains("witness heads hold"));

    // Each kind of tampering, on its own copy, is named.
    let mid = size / 2;
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "edited",
            vec![format!(
                "UPDATE events SET actor = 'mallory' WHERE leaf = {mid}"
            )],
            "edited",
        ),
        (
            "removed",
            vec![format!("DELETE FROM events WHERE leaf = {mid}")],
            "removed",
        ),
        (
            "reordered",
            vec![
                format!("UPDATE events SET leaf = -999999 WHERE leaf = {mid}"),
                format!("UPDATE events SET leaf = {mid} WHERE leaf = {}", mid + 1),
                format!("UPDATE events SET leaf = {} WHERE leaf = -999999", mid + 1),
            ],
            "removed or inserted",
        ),
    ];
    for (name, statements, says) in cases {
        let db = copy_db(&site, &format!("{name}.db"));
        let s: Vec<&str> = statements.iter().map(String::as_str).collect();
        sql(&db, &s).await;
        let out = verify(&db).await;
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out.stdout));
        let said = text(&out.stdout);
        assert!(said.contains("BROKEN at event"), "{name}: {said}");
        assert!(said.contains(says), "{name}: {said}");
    }

    // The tail cut after the last published head, with everything rewound
    // to match (chain head, subtrees, signed heads): the store alone holds
    // together, the witness's copy does not.
    let db = copy_db(&site, "cut.db");
    let keep = size - 2;
    let store = oubli_store::Store::open(db.to_str().unwrap())
        .await
        .unwrap();
    let last: String = sqlx::query_scalar("SELECT hash FROM events WHERE leaf = $1")
        .bind(keep - 1)
        .fetch_one(store.pool())
        .await
        .unwrap();
    // The frontier of a tree of `keep` leaves: its left subtrees waiting
    // for a sibling, lowest level first.
    let mut frontier = Vec::new();
    for level in 0..63 {
        if keep >> level & 1 == 1 {
            let h: String =
                sqlx::query_scalar("SELECT hash FROM audit_nodes WHERE level = $1 AND idx = $2")
                    .bind(level as i64)
                    .bind((keep >> level) - 1)
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
            frontier.push(h);
        }
    }
    let frontier = frontier.join(",");
    for s in [
        format!("DELETE FROM events WHERE leaf >= {keep}"),
        format!("DELETE FROM tree_heads WHERE size > {keep}"),
        format!("DELETE FROM audit_nodes WHERE idx * (1 << level) + (1 << level) > {keep}"),
        format!(
            "UPDATE audit_head SET seq = {keep}, built = {keep}, hash = '{last}', frontier = '{frontier}'"
        ),
    ] {
        sqlx::query(&s).execute(store.pool()).await.unwrap();
    }
    store.close().await;
    let alone = site
        .run(&["audit", "verify", "--db", db.to_str().unwrap()])
        .await;
    assert!(
        alone.status.success(),
        "a rewound store holds together on its own: {}",
        text(&alone.stdout)
    );
    let out = verify(&db).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("cut off the end"),
        "{}",
        text(&out.stdout)
    );
}

/// The sequencer's lease on PostgreSQL: (holder, token, expires_at).
async fn sequencer_lease(store: &oubli_store::Store) -> Option<(String, i64, i64)> {
    sqlx::query_as("SELECT holder, token, expires_at FROM leases WHERE name = 'sequencer'")
        .fetch_optional(store.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequencer_process_killed_holding_the_lease_is_taken_over_by_another_worker() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_, url)) = oubli_testing::store_urls(dir.path())
        .await
        .into_iter()
        .find(|(k, _)| *k == "postgres")
    else {
        eprintln!("OUBLI_TEST_PG not set: the sequencer takeover on PostgreSQL skipped");
        return;
    };
    let site = Site::new(Some(url), "four_eyes = false").await;
    let file = async |n: usize| {
        site.json(&[
            "request",
            "restrict",
            "--email",
            &format!("p{n}@example.com"),
            "--scope",
            "all",
            "--as",
            "alice",
        ])
        .await;
    };
    let store = site.store().await;
    let mut first = site
        .command(&["worker"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = first.id().unwrap();
    for n in 0..3 {
        file(n).await;
    }
    wait_for("the first worker to place the log", async || {
        sequencer_lease(&store)
            .await
            .is_some_and(|(h, _, _)| h.contains(&format!(":{pid}:")))
            && oubli_store::log::waiting(store.pool()).await.unwrap() == 0
    })
    .await;
    let (_, token, _) = sequencer_lease(&store).await.unwrap();
    first.kill().await.unwrap(); // SIGKILL: no release, the lease stays held
    first.wait().await.unwrap();
    for n in 3..6 {
        file(n).await;
    }
    // Filing appended; nobody places while the dead holder's lease runs.
    assert!(oubli_store::log::waiting(store.pool()).await.unwrap() > 0);

    let mut second = site
        .command(&["worker"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid2 = second.id().unwrap();
    wait_for(
        "the second worker to take the lease and place the rest",
        async || {
            sequencer_lease(&store)
                .await
                .is_some_and(|(h, t, _)| h.contains(&format!(":{pid2}:")) && t > token)
                && oubli_store::log::waiting(store.pool()).await.unwrap() == 0
        },
    )
    .await;
    second.kill().await.unwrap();
    second.wait().await.unwrap();
    // Every event placed once, the tree and every signed head hold.
    let report = site.json(&["audit", "verify"]).await;
    assert_eq!(report["broken_tree"], serde_json::Value::Null, "{report:#}");
    assert_eq!(report["broken"], serde_json::Value::Null, "{report:#}");
    let placed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE leaf IS NOT NULL")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let distinct: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT leaf) FROM events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(placed, distinct);
    assert!(placed >= 6, "{placed}");
    store.close().await;
}
