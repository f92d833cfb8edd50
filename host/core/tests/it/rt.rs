//! The Request Tracker connector against a real Request Tracker 5:
//! Debian's request-tracker5 on SQLite, started by `.ci/rt` (its base URL
//! in `OUBLI_TEST_RT`; with `OUBLI_REQUIRE_RT` set, a missing server fails
//! instead of skipping). Erasure goes the way RT allows: the connector
//! hands over `rt-shredder` commands, which this test runs on the server's
//! database as an operator would, and the search then finds nothing.
//!
//! Each test creates its own users and tickets, for an address unique to
//! the run, so the tests can run again on the same server.

use super::real_server::{self, subject};
use oubli_core::rights::export as access;
use oubli_core::rights::retry::RetryPolicy;
use oubli_model::ConnectorError;
use oubli_model::{Change, EraseMode, RecordRef, Status};
use oubli_runtime::{CallError, Connector};
use oubli_testing::unique;
use serde_json::{Value, json};

fn server() -> Option<String> {
    real_server::server("OUBLI_TEST_RT", "OUBLI_REQUIRE_RT", ".ci/rt")
}

/// RT's REST 2.0 as its superuser, for seeding and checking.
struct Rt {
    base: String,
}

impl Rt {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        use base64::Engine as _;
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("root:password")
        );
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}/REST/2.0{path}", self.base);
        let response = match (method, body) {
            ("GET", _) => agent.get(&url).header("authorization", &auth).call(),
            ("DELETE", _) => agent.delete(&url).header("authorization", &auth).call(),
            ("PUT", Some(b)) => agent
                .put(&url)
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .send(b.to_string()),
            (_, b) => agent
                .post(&url)
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .send(b.unwrap_or(Value::Null).to_string()),
        };
        let mut response = response.unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn user(&self, email: &str, real_name: &str) {
        let (status, answer) = self.call(
            "POST",
            "/user",
            Some(
                json!({"Name": email, "EmailAddress": email, "RealName": real_name, "WorkPhone": "+44 20 7946 0000", "Comments": "Prefers calls in the morning"}),
            ),
        );
        assert_eq!(status, 201, "{answer}");
    }

    /// A ticket; its id.
    fn ticket(&self, fields: Value) -> String {
        let mut body = json!({"Queue": "General", "ContentType": "text/plain"});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = self.call("POST", "/ticket", Some(body));
        assert_eq!(status, 201, "{answer}");
        answer["id"].as_str().unwrap().to_string()
    }

    fn exists(&self, kind: &str, id: &str) -> bool {
        self.call("GET", &format!("/{kind}/{id}"), None).0 == 200
    }
}

async fn connector(base: &str) -> (tempfile::TempDir, Connector) {
    real_server::connector(
        oubli_testing::plugins::REQUEST_TRACKER,
        base,
        &format!("base_url = {base:?}"),
        "root",
        "password",
    )
    .await
}

/// Run the `rt-shredder` commands of a manual task's steps as an operator
/// would, against the test server's database (`.ci/rt env`), in `dir`.
fn run_shredder(steps: &[String], dir: &std::path::Path) {
    let rt_dir = std::env::var("OUBLI_RT_DIR").unwrap_or_else(|_| "/tmp/oubli-rt".into());
    let commands: Vec<&str> = steps
        .iter()
        .map(String::as_str)
        .filter(|c| c.starts_with("rt-shredder "))
        .collect();
    assert!(!commands.is_empty(), "{steps:?}");
    for c in commands {
        let c = c.replacen("rt-shredder", "/usr/sbin/rt-shredder-5", 1);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&c)
            .current_dir(dir)
            .env("RT_SITE_CONFIG", format!("{rt_dir}/RT_SiteConfig.pm"))
            .env("RT_SITE_CONFIG_DIR", format!("{rt_dir}/site.d"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{c}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn finds_exports_corrects_restricts_and_erases_through_the_shredder() {
    let Some(base) = server() else { return };
    let rt = Rt { base: base.clone() };
    let n = unique();
    let person = format!("marie.{n}@example.org");
    let decoy = format!("anne-marie.{n}@example.org");
    rt.user(&person, "Marie Martin");
    rt.user(&decoy, "Anne Marie");
    use base64::Engine as _;
    let notes = "Call notes: Marie asked for a refund.\n".repeat(20);
    let copied = rt.ticket(
        json!({"Subject": "Team", "Requestor": decoy, "Cc": [person, "colleague@example.net"], "AdminCc": person, "Content": "FYI"}),
    );
    let mentioned = rt.ticket(json!({
        "Subject": "Callback", "Requestor": decoy,
        "Content": format!("Please call {person} back."),
    }));
    let not_her = rt.ticket(json!({
        "Subject": "Other", "Requestor": decoy,
        "Content": format!("Write to {decoy} or x{person}.invalid"),
    }));
    let deleted = rt.ticket(json!({
        "Subject": "Old", "Requestor": decoy,
        "Content": format!("From: Marie <{person}>"),
    }));
    // Deleting in RT only changes the status: the ticket stays, and RT's
    // searches no longer return it.
    assert_eq!(
        rt.call("DELETE", &format!("/ticket/{deleted}"), None).0,
        204
    );
    assert!(rt.exists("ticket", &deleted));
    // Her own ticket last: the highest id, which RT on SQLite gives to the
    // next ticket once it is shredded.
    let own = rt.ticket(json!({
        "Subject": "Refund", "Requestor": person, "Content": "Where is my refund?",
        "Attachments": [{"FileName": "notes.txt", "FileType": "text/plain",
            "FileContent": base64::engine::general_purpose::STANDARD.encode(&notes)}],
    }));

    let (dir, c) = connector(&base).await;
    let s = subject(&person);
    let found = c.locate(&s).await.unwrap();
    let mut got: Vec<(String, String)> = found
        .iter()
        .map(|l| (l.reference.kind.clone(), l.reference.id.clone()))
        .collect();
    got.sort();
    let (users, tickets): (Vec<_>, Vec<_>) = got.iter().partition(|(k, _)| k == "user");
    assert_eq!(users.len(), 1, "{found:?}");
    let mut want = vec![
        own.clone(),
        copied.clone(),
        mentioned.clone(),
        deleted.clone(),
    ];
    want.sort();
    let mut ticket_ids: Vec<String> = tickets.iter().map(|(_, id)| id.clone()).collect();
    ticket_ids.sort();
    assert_eq!(ticket_ids, want, "{found:?}");
    assert!(!ticket_ids.contains(&not_her));
    let summary = |id: &str| {
        found
            .iter()
            .find(|l| l.reference.kind == "ticket" && l.reference.id == id)
            .unwrap()
            .summary
            .clone()
    };
    assert!(summary(&own).contains("requestor"));
    assert!(summary(&copied).contains("Cc"));
    assert!(summary(&mentioned).contains("mentions"));
    assert!(
        summary(&deleted).contains("still stored"),
        "{}",
        summary(&deleted)
    );
    for l in &found {
        assert!(!l.summary.contains(&person));
    }
    // Whose each record is: hers, shared with her, or only mentioning her.
    use oubli_model::Role;
    let role = |kind: &str, id: &str| {
        found
            .iter()
            .find(|l| l.reference.kind == kind && l.reference.id == id)
            .unwrap()
            .role
    };
    assert_eq!(role("ticket", &own), Role::Owner);
    assert_eq!(role("ticket", &copied), Role::Participant);
    assert_eq!(role("ticket", &mentioned), Role::Mentioned);
    assert_eq!(role("ticket", &deleted), Role::Mentioned);
    assert!(
        found
            .iter()
            .filter(|l| l.reference.kind == "user")
            .all(|l| l.role == Role::Owner)
    );

    // Export: the user's fields, the ticket's messages and file.
    let refs: Vec<RecordRef> = found.iter().map(|l| l.reference.clone()).collect();
    let exported = c.export(&refs).await.unwrap();
    assert_eq!(exported.len(), 5);
    let user = exported
        .iter()
        .find(|e| e.reference.kind == "user")
        .unwrap();
    let field = |e: &oubli_model::Exported, name: &str| {
        e.fields
            .iter()
            .filter(|f| f.name == name)
            .map(|f| f.value.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(field(user, "RealName"), ["Marie Martin"]);
    assert_eq!(field(user, "EmailAddress"), std::slice::from_ref(&person));
    let t = exported
        .iter()
        .find(|e| e.reference.kind == "ticket" && e.reference.id == own)
        .unwrap();
    assert!(
        field(t, "message")
            .iter()
            .any(|m| m.contains("Where is my refund?"))
    );
    // What the person is shown is true: the queue by its name, no
    // "resolved 1970" for an open ticket, and RT's notes on them.
    assert_eq!(field(t, "Queue"), ["General"]);
    assert!(field(t, "Resolved").is_empty(), "{:?}", t.fields);
    assert_eq!(field(t, "Created").len(), 1);
    assert_eq!(field(user, "Comments"), ["Prefers calls in the morning"]);
    let file = t
        .attachments
        .iter()
        .find(|a| a.name.ends_with("-notes.txt"))
        .unwrap_or_else(|| panic!("{:?}", t.attachments));
    let mut bytes = Vec::new();
    access::stream_attachment(
        &c.for_subject(&s),
        &t.reference,
        file,
        64,
        &RetryPolicy::none(),
        &mut bytes,
    )
    .await
    .unwrap();
    assert_eq!(String::from_utf8(bytes).unwrap(), notes);
    // Another ticket's attachment is not readable through this one.
    let other = exported
        .iter()
        .find(|e| e.reference.kind == "ticket" && e.reference.id == copied)
        .unwrap();
    let e = c
        .read_attachment(&other.reference, &file.name, 0, 100)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "invalid", "{e}");
    let cc = other.fields.iter().find(|f| f.name == "Cc").unwrap();
    assert_eq!(cc.category, "third-party");

    // Rectify: the value changes; the old one stays in RT's history, so
    // the outcome says so instead of `done`.
    let user_ref = user.reference.clone();
    let out = c
        .rectify(
            &user_ref,
            &[Change {
                field: "RealName".into(),
                new_value: Some("Marie Dupont".into()),
            }],
        )
        .await
        .unwrap();
    assert!(
        matches!(&out.status, Status::Retained(why) if why.contains("history")),
        "{out:?}"
    );
    let again = c.export(std::slice::from_ref(&user_ref)).await.unwrap();
    assert_eq!(field(&again[0], "RealName"), ["Marie Dupont"]);
    assert!(
        field(&again[0], "history")
            .iter()
            .any(|h| h.contains("Marie Martin") && h.contains("Marie Dupont"))
    );

    // A restriction narrower than everything is not RT's to honour: the
    // user is left as is and the outcome says why.
    let out = c
        .restrict(&s, &["direct-marketing".to_string()], true)
        .await
        .unwrap();
    assert!(
        matches!(&out[0].status, Status::Retained(why) if why.contains("direct-marketing")),
        "{out:?}"
    );
    let (_, u) = rt.call("GET", &format!("/user/{}", user_ref.id), None);
    assert_eq!(
        u["Disabled"], "0",
        "a scoped restriction disables no account"
    );
    // Restrict everything: the user is disabled, and still found.
    let out = c.restrict(&s, &[], true).await.unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, Status::Done);
    let (_, u) = rt.call("GET", &format!("/user/{}", user_ref.id), None);
    assert_eq!(u["Disabled"], "1");
    let found_again = c.locate(&s).await.unwrap();
    assert!(found_again.iter().any(|l| l.summary == "RT user, disabled"));
    c.restrict(&s, &[], false).await.unwrap();
    let (_, u) = rt.call("GET", &format!("/user/{}", user_ref.id), None);
    assert_eq!(u["Disabled"], "0");

    // Erase as the host plans it: what is hers is removed (RT's Shredder,
    // as a manual task), she is taken off what she shares, what only
    // mentions her is left to the others.
    let hers: Vec<RecordRef> = found
        .iter()
        .filter(|l| l.role == Role::Owner)
        .map(|l| l.reference.clone())
        .collect();
    assert_eq!(hers.len(), 2, "her user and her ticket");
    let detached = c
        .detach(
            &s,
            &[found
                .iter()
                .find(|l| l.reference.id == copied && l.reference.kind == "ticket")
                .unwrap()
                .reference
                .clone()],
        )
        .await
        .unwrap();
    assert_eq!(detached[0].status, Status::Done, "{detached:?}");
    let (_, t) = rt.call("GET", &format!("/ticket/{copied}"), None);
    let names = |role: &str| -> Vec<String> {
        t[role]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_lowercase())
            .collect()
    };
    assert!(!names("Cc").contains(&person), "{t}");
    assert!(!names("AdminCc").contains(&person), "{t}");
    assert!(
        names("Cc").contains(&"colleague@example.net".to_string()),
        "{t}"
    );
    assert_eq!(names("Requestor"), std::slice::from_ref(&decoy));

    let e = c.erase(&hers, EraseMode::Delete).await.unwrap_err();
    let CallError::Connector(ConnectorError::Manual(task)) = e else {
        panic!("{e}");
    };
    let mut named = task.records.clone();
    named.sort_by(|a, b| (&a.kind, &a.id).cmp(&(&b.kind, &b.id)));
    let mut want_named = hers.clone();
    want_named.sort_by(|a, b| (&a.kind, &a.id).cmp(&(&b.kind, &b.id)));
    assert_eq!(named, want_named);
    // Each ticket command names the ticket by its id and its requestor.
    let ticket_step = task
        .steps
        .iter()
        .find(|s| s.contains("Tickets=query"))
        .unwrap();
    assert!(
        ticket_step.contains(&format!("id = {own} AND Requestor.id = ")),
        "{ticket_step}"
    );
    run_shredder(&task.steps, dir.path());
    assert!(!rt.exists("ticket", &own), "her ticket is shredded");
    assert!(!rt.exists("user", &user_ref.id), "her user is shredded");
    for id in [&copied, &mentioned, &deleted, &not_her] {
        assert!(rt.exists("ticket", id), "ticket {id} of others survives");
    }
    assert!(
        c.locate(&s)
            .await
            .unwrap()
            .iter()
            .all(|l| l.role == Role::Mentioned),
        "she is a party to nothing left"
    );
    // A stale command run again never shreds the ticket that took the id.
    let newcomer = rt.ticket(json!({"Subject": "New", "Requestor": decoy, "Content": "hello"}));
    let tickets_only: Vec<String> = task
        .steps
        .iter()
        .filter(|s| s.contains("Tickets=query"))
        .cloned()
        .collect();
    run_shredder(&tickets_only, dir.path());
    assert!(
        rt.exists("ticket", &newcomer),
        "ticket {newcomer} (was {own}?) survived"
    );
    let decoy_users = c.locate(&subject(&decoy)).await.unwrap();
    assert!(decoy_users.iter().any(|l| l.reference.kind == "user"));
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymising_a_user_keeps_their_tickets_and_says_what_rt_keeps() {
    let Some(base) = server() else { return };
    let rt = Rt { base: base.clone() };
    let n = unique();
    let person = format!("paul.{n}@example.org");
    rt.user(&person, "Paul Durand");
    let ticket =
        rt.ticket(json!({"Subject": "Contract", "Requestor": person, "Content": "Signed."}));
    let (_dir, c) = connector(&base).await;
    let s = subject(&person);
    let found = c.locate(&s).await.unwrap();
    let user = found
        .iter()
        .find(|l| l.reference.kind == "user")
        .unwrap()
        .reference
        .clone();
    // Tickets cannot be anonymised: refused, with the Shredder's steps.
    let e = c
        .erase(&[found[1].reference.clone()], EraseMode::Anonymise)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "manual");

    let out = c
        .erase(std::slice::from_ref(&user), EraseMode::Anonymise)
        .await
        .unwrap();
    assert!(
        matches!(&out[0].status, Status::Retained(why) if why.contains("history")),
        "{out:?}"
    );
    let (_, u) = rt.call("GET", &format!("/user/{}", user.id), None);
    assert_eq!(u["EmailAddress"], "");
    assert_eq!(u["RealName"], "");
    assert_eq!(u["Name"], format!("anonymised-{}", user.id));
    assert!(rt.exists("ticket", &ticket));
    // The address is gone from the user: the search no longer finds them.
    assert!(
        c.locate(&s)
            .await
            .unwrap()
            .iter()
            .all(|l| l.reference.kind != "user")
    );
    // An id that does not exist is not found, not anonymised.
    let out = c
        .erase(
            &[RecordRef {
                kind: "user".into(),
                id: "999999".into(),
            }],
            EraseMode::Anonymise,
        )
        .await
        .unwrap();
    assert_eq!(out[0].status, Status::NotFound);
}

/// Retention on a real RT: `sweep` by `closed` pages through the tickets
/// resolved before a cutoff, oldest first, in pages that never split a
/// second's tickets wrongly (two share one here), stopping short of a
/// ticket resolved exactly at the cutoff and never listing a ticket that
/// is open; erasing them is RT's Shredder, whose commands the task carries,
/// and once they are run the tickets are gone from the next sweep. The
/// tickets are resolved in a window of the past unique to the run, which
/// the sweep starts at.
#[tokio::test(flavor = "multi_thread")]
async fn sweeps_tickets_closed_before_a_cutoff_on_a_real_server() {
    use oubli_model::{SweepKey, SweepQuery};
    let Some(base) = server() else { return };
    let rt = Rt { base: base.clone() };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // 2001-01-01, plus ten seconds per second of the run's start.
    let w = 978_307_200 + (now % 50_000_000) * 10;
    let n = unique();
    let requestor = format!("old.{n}@example.org");
    let closed_at = |offset: i64| {
        let id = rt.ticket(json!({"Subject": "Old", "Requestor": requestor, "Content": "x"}));
        let (status, answer) = rt.call(
            "PUT",
            &format!("/ticket/{id}"),
            Some(json!({"Status": "resolved"})),
        );
        assert_eq!(status, 200, "{answer}");
        let date = jiff::Timestamp::from_second(w + offset)
            .unwrap()
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string();
        let (status, answer) = rt.call(
            "PUT",
            &format!("/ticket/{id}"),
            Some(json!({"Resolved": date})),
        );
        assert_eq!(status, 200, "{answer}");
        ((w + offset) * 1000, id)
    };
    let tickets = [
        closed_at(0),
        closed_at(1),
        closed_at(1),
        closed_at(2),
        closed_at(3),
    ];
    let open = rt.ticket(json!({"Subject": "Open", "Requestor": requestor, "Content": "x"}));
    let (_dir, c) = connector(&base).await;
    let query = |after: SweepKey| SweepQuery {
        category: "correspondence".into(),
        trigger: "closed".into(),
        cutoff: (w + 3) * 1000,
        after: Some(after),
        limit: 2,
    };
    let start = SweepKey {
        at: (w - 1) * 1000,
        id: String::new(),
    };
    let mut after = start.clone();
    let mut seen = Vec::new();
    loop {
        let page = c.sweep(&query(after.clone())).await.unwrap();
        seen.extend(page.iter().map(|d| (d.at, d.reference.id.clone())));
        match page.last() {
            Some(d) if page.len() == 2 => {
                after = SweepKey {
                    at: d.at,
                    id: d.reference.id.clone(),
                }
            }
            _ => break,
        }
    }
    let mut expected: Vec<(i64, String)> = tickets[..4].to_vec();
    expected.sort();
    assert_eq!(seen, expected);
    assert!(!seen.iter().any(|(_, id)| *id == open));

    // Erasing is a manual task: RT's Shredder, run as an operator would.
    let refs: Vec<RecordRef> = expected
        .iter()
        .map(|(_, id)| RecordRef {
            kind: "ticket".into(),
            id: id.clone(),
        })
        .collect();
    let Err(CallError::Connector(ConnectorError::Manual(task))) =
        c.erase(&refs, EraseMode::Delete).await
    else {
        panic!("erasing tickets is RT's Shredder");
    };
    let dir = tempfile::tempdir().unwrap();
    run_shredder(&task.steps, dir.path());
    assert!(c.sweep(&query(start.clone())).await.unwrap().is_empty());
    let later = SweepQuery {
        cutoff: (w + 4) * 1000,
        ..query(start)
    };
    let left = c.sweep(&later).await.unwrap();
    assert_eq!(
        left.iter()
            .map(|d| d.reference.id.clone())
            .collect::<Vec<_>>(),
        [tickets[4].1.clone()]
    );
}

/// The conformance kit, live on Request Tracker: a person seeded for the
/// run (her user, a ticket she asked for with an attachment), a decoy
/// whose address contains hers with a ticket of their own; every case
/// passes. Erasing tickets is RT's Shredder, an operator's task: the kit
/// says so and checks the rest.
#[tokio::test(flavor = "multi_thread")]
async fn the_conformance_kit_passes_live() {
    use base64::Engine as _;
    let Some(base) = server() else { return };
    let rt = Rt { base: base.clone() };
    let n = unique();
    let person = format!("kit.{n}@example.org");
    let decoy = format!("anne-kit.{n}@example.org");
    rt.user(&person, "Kit Person");
    rt.user(&decoy, "Anne Kit");
    rt.ticket(json!({"Subject": "Theirs", "Requestor": decoy, "Content": "Hello"}));
    let own = rt.ticket(json!({
        "Subject": "Refund", "Requestor": person, "Content": "Where is my refund?",
        "Attachments": [{"FileName": "notes.txt", "FileType": "text/plain",
            "FileContent": base64::engine::general_purpose::STANDARD.encode("notes\n".repeat(50))}],
    }));
    let (dir, c) = connector(&base).await;
    let user = c
        .locate(&subject(&person))
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.reference.kind == "user")
        .expect("her user")
        .reference
        .id;
    // RT's REST 2.0 searches are POSTs of a query to the collection.
    let fixture = format!(
        "read_posts = [\"/REST/2.0/users\", \"/REST/2.0/tickets\", \"/REST/2.0/attachments\"]\n\
         [subject]\nemails = [{person:?}]\n\
         [[records]]\nkind = \"user\"\nid = \"{user}\"\n\
         [[records]]\nkind = \"ticket\"\nid = \"{own}\"\nrole = \"owner\"\n\
         [[decoys]]\nemails = [{decoy:?}]\n"
    );
    super::live_kit::kit_passes(
        dir.path(),
        &fixture,
        &[
            "locate.decoys",
            "export.attachments",
            "erase.outcomes",
            "faults.reset",
            "log.clean",
        ],
    )
    .await;
}
