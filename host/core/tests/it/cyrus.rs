//! The JMAP connector against a real JMAP server: Debian's Cyrus IMAP 3.6,
//! started by `.ci/cyrus` (its session URL in `OUBLI_TEST_CYRUS`; with
//! `OUBLI_REQUIRE_CYRUS` set, a missing server fails instead of skipping).
//! The server runs with `maxObjectsInGet` 3 and `maxObjectsInSet` 4, HTTP
//! Basic logins, a shared account, Xapian search and immediate expunge.
//!
//! Each test imports its own messages, for an address unique to the run, so
//! the tests can run again on the same server.

use super::real_server::{self, subject};
use oubli_core::rights::export::{self as access, CHUNK};
use oubli_core::rights::retry::RetryPolicy;
use oubli_model::{EraseMode, RecordRef, Status};
use oubli_runtime::Connector;
use oubli_testing::jmap::{Jmap, PASSWORD, USER, message};
use oubli_testing::unique;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn server() -> Option<String> {
    real_server::server("OUBLI_TEST_CYRUS", "OUBLI_REQUIRE_CYRUS", ".ci/cyrus")
}

/// The connector, configured for the server at `session_url`.
async fn connector(session_url: &str, extra_config: &str) -> (tempfile::TempDir, Connector) {
    let origin = session_url.split('/').take(3).collect::<Vec<_>>().join("/");
    real_server::connector(
        oubli_testing::plugins::JMAP_MAIL,
        &origin,
        &format!("session_url = {session_url:?}\n{extra_config}"),
        USER,
        PASSWORD,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn finds_exports_and_erases_across_accounts_on_a_real_server() {
    let Some(url) = server() else { return };
    let jmap = Jmap::open(&url);
    assert!(
        jmap.session["accounts"]["shared"]["isPersonal"] == false,
        "the server lists the shared account: {}",
        jmap.session
    );
    let n = unique();
    let person = format!("marie.{n}@example.org");
    let (_dir, m) = connector(&url, "").await;

    // The person's mail: four in the agent's own account (more than the
    // server's limit of 3 per read), two in the shared one. Decoys: a longer address containing hers, her name on
    // another address, her address in the body only.
    let mine = [
        jmap.import(
            USER,
            &message(&person, "support@example.com", None, "Order", "Hello"),
        ),
        jmap.import(
            USER,
            &message("support@example.com", &person, None, "Re: Order", "Hi"),
        ),
        jmap.import(
            USER,
            &message(
                "ops@example.com",
                "billing@example.com",
                Some(&format!("Marie <{person}>")),
                "Refund",
                "FYI",
            ),
        ),
        jmap.import(
            USER,
            &message(&person, "support@example.com", None, "Order 2", "Again"),
        ),
    ];
    let shared = [
        jmap.import(
            "shared",
            &message(&person, "sales@example.com", None, "Quote", "Price?"),
        ),
        jmap.import(
            "shared",
            &message("sales@example.com", &person, None, "Re: Quote", "Price."),
        ),
    ];
    let decoys = [
        jmap.import(
            USER,
            &message(
                &format!("anne-{person}"),
                "support@example.com",
                None,
                "Order",
                "Hello",
            ),
        ),
        jmap.import(
            USER,
            &message(
                &format!("\"{person}\" <someone.{n}@example.net>"),
                "support@example.com",
                None,
                "Order",
                "Hello",
            ),
        ),
        jmap.import(
            USER,
            &message(
                "support@example.com",
                "billing@example.com",
                None,
                "Note",
                &format!("call {person} back"),
            ),
        ),
    ];

    jmap.indexed(USER, &person, 4);
    jmap.indexed("shared", &person, 2);
    let s = subject(&person);
    let found = m.locate(&s).await.unwrap();
    let mut ids: Vec<String> = found.iter().map(|l| l.reference.id.clone()).collect();
    ids.sort();
    let mut expected: Vec<String> = mine
        .iter()
        .map(|id| format!("{USER}/{id}"))
        .chain(shared.iter().map(|id| format!("shared/{id}")))
        .collect();
    expected.sort();
    assert_eq!(ids, expected, "{found:?}");
    assert_eq!(
        found
            .iter()
            .filter(|l| l.summary.contains("another account"))
            .count(),
        2
    );

    // Export reads through the server's limit of 3 objects per get.
    let refs: Vec<RecordRef> = found.iter().map(|l| l.reference.clone()).collect();
    let exported = m.export(&refs).await.unwrap();
    assert_eq!(exported.len(), 6);
    let one = exported
        .iter()
        .find(|e| e.reference.id.starts_with("shared/"))
        .unwrap();
    let eml = &one.attachments[0];
    let mut raw = Vec::new();
    access::stream_attachment(
        &m.for_subject(&s),
        &one.reference,
        eml,
        100,
        &RetryPolicy::none(),
        &mut raw,
    )
    .await
    .unwrap();
    assert_eq!(raw.len() as u64, eml.size.unwrap());
    assert!(String::from_utf8_lossy(&raw).contains("Subject: "));

    // Erase: read in batches of 3, destroyed in batches of 4, each checked.
    let outcomes = m.erase(&refs, EraseMode::Delete).await.unwrap();
    assert_eq!(outcomes.len(), 6);
    assert!(
        outcomes.iter().all(|o| o.status == Status::Done),
        "{outcomes:?}"
    );
    for id in &mine {
        assert!(!jmap.exists(USER, id));
    }
    for id in &shared {
        assert!(!jmap.exists("shared", id));
    }
    for id in &decoys {
        assert!(jmap.exists(USER, id), "a decoy was destroyed");
    }
    assert!(m.locate(&s).await.unwrap().is_empty());

    // Again, with an id that never existed: Cyrus would list both as
    // destroyed; the connector's own read says they are not there.
    let mut again = refs[..2].to_vec();
    again.push(RecordRef {
        kind: "email".into(),
        id: format!("{USER}/Mnever{n}"),
    });
    let outcomes = m.erase(&again, EraseMode::Delete).await.unwrap();
    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes.iter().all(|o| o.status == Status::NotFound),
        "{outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_refuses_a_read_over_its_limit_by_name() {
    // What the connector's batching guards against, as this server says it:
    // a request-level `limit` problem naming `maxObjectsInGet`.
    let Some(url) = server() else { return };
    let jmap = Jmap::open(&url);
    let body = json!({
        "using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
        "methodCalls": [["Email/get", {"accountId": USER, "ids": ["a", "b", "c", "d"]}, "c0"]],
    });
    let (status, problem) = Jmap::request(
        "POST",
        &jmap.url("apiUrl"),
        Some(("application/json", serde_json::to_vec(&body).unwrap())),
    )
    .unwrap();
    let said = (status, problem["type"].clone(), problem["limit"].clone());
    // Cyrus answers over-limit reads either at the request level (400 with
    // the limit's name) or at the method level (`requestTooLarge`).
    let method_level = problem["methodResponses"][0][1]["type"] == "requestTooLarge";
    assert!(
        method_level
            || (said.0 == 400
                && said.1 == "urn:ietf:params:jmap:error:limit"
                && said.2 == "maxObjectsInGet"),
        "{status} {problem}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_denied_and_only_the_primary_account_when_asked() {
    let Some(url) = server() else { return };
    let jmap = Jmap::open(&url);
    let n = unique();
    let person = format!("paul.{n}@example.org");
    jmap.import(
        "shared",
        &message(&person, "sales@example.com", None, "Hi", "Hi"),
    );
    let own = jmap.import(
        USER,
        &message(&person, "support@example.com", None, "Hi", "Hi"),
    );
    jmap.indexed(USER, &person, 1);
    jmap.indexed("shared", &person, 1);
    let (_dir, m) = connector(&url, "accounts = \"primary\"\n").await;
    let found = m.locate(&subject(&person)).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].reference.id, format!("{USER}/{own}"));

    let (dir, _) = connector(&url, "").await;
    std::fs::write(dir.path().join("password"), "wrong").unwrap();
    let bad = real_server::load(dir.path()).await;
    let e = bad.locate(&subject(&person)).await.unwrap_err();
    assert_eq!(e.kind(), "denied", "{e}");
    assert!(!e.to_string().contains("wrong"));
}

/// A TCP proxy in front of the server that counts the bytes the server
/// sends back.
async fn counting_proxy(upstream: std::net::SocketAddr) -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let down = Arc::new(AtomicU64::new(0));
    let counter = down.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = tokio::io::copy(&mut cr, &mut sw);
                let down = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match sr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        counter.fetch_add(n as u64, Ordering::SeqCst);
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = cw.shutdown().await;
                };
                tokio::select! {
                    _ = up => {},
                    _ = down => {},
                }
            });
        }
    });
    (format!("http://{addr}"), down)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_larger_than_the_body_cap_streams_in_one_download() {
    // Cyrus ignores `Range` (200, `Accept-Ranges: none`). Reading a 17 MiB
    // message in 1 MiB chunks used to fetch it whole for every chunk, and
    // fail past the SDK's 16 MiB body cap; now one response is read on
    // across the chunks.
    let Some(url) = server() else { return };
    let jmap = Jmap::open(&url);
    let n = unique();
    let person = format!("lea.{n}@example.org");
    let line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n";
    let body = line.repeat(17 * 1024 * 1024 / line.len());
    let raw = message(&person, "support@example.com", None, "Recording", &body);
    jmap.import(USER, &raw);
    jmap.indexed(USER, &person, 1);

    let authority = url.split('/').nth(2).unwrap();
    let upstream: std::net::SocketAddr = authority.parse().unwrap();
    let (proxy, down) = counting_proxy(upstream).await;
    let via_proxy = url.replace(&format!("http://{authority}"), &proxy);
    let (_dir, m) = connector(&via_proxy, "").await;
    let s = subject(&person);
    let found = m.locate(&s).await.unwrap();
    assert_eq!(found.len(), 1);
    let exported = m.export(&[found[0].reference.clone()]).await.unwrap();
    let eml = &exported[0].attachments[0];
    let size = eml.size.unwrap();
    assert!(size > 16 << 20, "{size}");

    let before = down.load(Ordering::SeqCst);
    let mut sha = sha2::Sha256::default();
    let mut read = 0u64;
    access::read_chunks(
        &m.for_subject(&s),
        &found[0].reference,
        eml,
        CHUNK,
        &RetryPolicy::none(),
        async |b| {
            use sha2::Digest;
            read += b.len() as u64;
            sha.update(b);
            Ok(())
        },
    )
    .await
    .unwrap();
    assert_eq!(read, size);
    let sent = down.load(Ordering::SeqCst) - before;
    assert!(
        sent < size + (256 << 10),
        "the server sent {sent} bytes for a {size}-byte message"
    );
    m.erase(&[found[0].reference.clone()], EraseMode::Delete)
        .await
        .unwrap();
}

/// Whose a message is, on the real server: with the organisation's domain
/// configured, a message between the person and the organisation is
/// theirs, and one that copies someone else is shared (kept by an erasure
/// for review, never destroyed whole); without it, the connector cannot
/// tell, and every message is the person's.
#[tokio::test(flavor = "multi_thread")]
async fn a_message_copying_other_people_is_shared_not_the_persons_own() {
    use oubli_model::Role;
    let Some(url) = server() else { return };
    let jmap = Jmap::open(&url);
    let n = unique();
    let person = format!("lou.{n}@example.org");
    let own = jmap.import(
        USER,
        &message(&person, "support@example.com", None, "Mine", "Hello"),
    );
    let shared = jmap.import(
        USER,
        &message(
            "support@example.com",
            &person,
            Some(&format!("neighbour.{n}@example.net")),
            "Ours",
            "To you both",
        ),
    );
    jmap.indexed(USER, &person, 2);
    let role_of = |found: &[oubli_model::Located], id: &str| {
        found
            .iter()
            .find(|l| l.reference.id == format!("{USER}/{id}"))
            .unwrap_or_else(|| panic!("{id} in {found:?}"))
            .role
    };
    let (_dir, m) = connector(
        &url,
        "own_domains = \"example.com\"\naccounts = \"primary\"\n",
    )
    .await;
    let found = m.locate(&subject(&person)).await.unwrap();
    assert_eq!(role_of(&found, &own), Role::Owner);
    assert_eq!(role_of(&found, &shared), Role::Participant);
    assert!(
        found
            .iter()
            .find(|l| l.reference.id.ends_with(&shared))
            .unwrap()
            .summary
            .contains("shared with 1 other people")
    );
    let (_dir, plain) = connector(&url, "accounts = \"primary\"\n").await;
    let found = plain.locate(&subject(&person)).await.unwrap();
    assert_eq!(role_of(&found, &shared), Role::Owner, "no domain known");
}

/// Retention on a real server: `sweep` pages through the messages received
/// before a cutoff, oldest first, in both accounts, in pages that never
/// split a second's messages wrongly (two share one here), stopping short
/// of a message received exactly at the cutoff; erased through `erase`,
/// they are gone from the next sweep. The messages are dated in a window
/// of the past unique to the run, which the sweep starts at.
#[tokio::test(flavor = "multi_thread")]
async fn sweeps_what_is_past_a_cutoff_on_a_real_server() {
    use oubli_model::{SweepKey, SweepQuery};
    let Some(url) = server() else { return };
    let jmap = Jmap::open(&url);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // 2001-01-01, plus ten seconds per second of the run's start.
    let w = 978_307_200 + (now % 50_000_000) * 10;
    let at = |s: i64| {
        jiff::Timestamp::from_second(w + s)
            .unwrap()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let n = unique();
    let raw = |i: usize| {
        message(
            &format!("old.{n}.{i}@example.org"),
            "support@example.com",
            None,
            "Old",
            "x",
        )
    };
    let imported = [
        (USER, 0, jmap.import_at(USER, &raw(0), Some(&at(0)))),
        (USER, 1, jmap.import_at(USER, &raw(1), Some(&at(1)))),
        ("shared", 1, jmap.import_at("shared", &raw(2), Some(&at(1)))),
        (USER, 2, jmap.import_at(USER, &raw(3), Some(&at(2)))),
        (USER, 3, jmap.import_at(USER, &raw(4), Some(&at(3)))),
    ];
    let (_dir, m) = connector(&url, "").await;
    assert!(m.offers(oubli_model::Operation::Sweep));
    let facts = &m.manifest().retention[0];
    assert_eq!(
        (facts.category.as_str(), facts.triggers[0].as_str()),
        ("correspondence", "received")
    );
    let query = |after: Option<SweepKey>| SweepQuery {
        category: "correspondence".into(),
        trigger: "received".into(),
        cutoff: (w + 3) * 1000,
        after,
        limit: 2,
    };
    let mut after = Some(SweepKey {
        at: (w - 1) * 1000,
        id: String::new(),
    });
    let mut seen = Vec::new();
    loop {
        let page = m.sweep(&query(after.clone())).await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|d| (d.at, d.reference.id.clone())));
        match page.last() {
            Some(d) if page.len() == 2 => {
                after = Some(SweepKey {
                    at: d.at,
                    id: d.reference.id.clone(),
                })
            }
            _ => break,
        }
    }
    let mut expected: Vec<(i64, String)> = imported
        .iter()
        .filter(|(_, s, _)| *s < 3)
        .map(|(account, s, id)| ((w + s) * 1000, format!("{account}/{id}")))
        .collect();
    expected.sort();
    assert_eq!(seen, expected);

    // Erased, they are gone from the sweep; the one at the cutoff stays.
    let refs: Vec<RecordRef> = expected
        .iter()
        .map(|(_, id)| RecordRef {
            kind: "email".into(),
            id: id.clone(),
        })
        .collect();
    let outcomes = m.erase(&refs, EraseMode::Delete).await.unwrap();
    assert!(
        outcomes.iter().all(|o| o.status == Status::Done),
        "{outcomes:?}"
    );
    let first = SweepKey {
        at: (w - 1) * 1000,
        id: String::new(),
    };
    assert!(
        m.sweep(&query(Some(first.clone())))
            .await
            .unwrap()
            .is_empty()
    );
    let later = SweepQuery {
        cutoff: (w + 4) * 1000,
        ..query(Some(first))
    };
    let left = m.sweep(&later).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].reference.id, format!("{USER}/{}", imported[4].2));
    m.erase(&[left[0].reference.clone()], EraseMode::Delete)
        .await
        .unwrap();
}

/// The conformance kit, live on Cyrus: a person seeded for the run (mail
/// in the agent's account and in the shared one), a decoy whose address
/// contains hers; every case passes, the destructive ones included.
#[tokio::test(flavor = "multi_thread")]
async fn the_conformance_kit_passes_live() {
    let Some(url) = server() else { return };
    let jmap = Jmap::open(&url);
    let n = unique();
    let person = format!("kit.{n}@example.org");
    let decoy = format!("anne-{person}");
    let mine = jmap.import(
        USER,
        &message(&person, "support@example.com", None, "Order", "Hello"),
    );
    let shared = jmap.import(
        "shared",
        &message("sales@example.com", &person, None, "Re: Quote", "Price."),
    );
    jmap.import(
        USER,
        &message(&decoy, "support@example.com", None, "Order", "Hello"),
    );
    jmap.indexed(USER, &person, 1);
    jmap.indexed("shared", &person, 1);
    jmap.indexed(USER, &decoy, 1);
    let (dir, _) = connector(&url, "").await;
    let api = jmap.session["apiUrl"].as_str().unwrap();
    let api_path = format!("/{}", api.splitn(4, '/').nth(3).unwrap_or(""));
    let fixture = format!(
        "read_posts = [{api_path:?}]\n\
         [subject]\nemails = [{person:?}]\n\
         [[records]]\nkind = \"email\"\nid = \"{USER}/{mine}\"\n\
         [[records]]\nkind = \"email\"\nid = \"shared/{shared}\"\n\
         [[decoys]]\nemails = [{decoy:?}]\n"
    );
    super::live_kit::kit_passes(
        dir.path(),
        &fixture,
        &[
            "locate.decoys",
            "export.attachments",
            "erase.gone",
            "erase.others-survive",
            "faults.reset",
            "log.clean",
        ],
    )
    .await;
}
