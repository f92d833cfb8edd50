//! The Request Tracker connector against a real Request Tracker 5:
//! Debian's request-tracker5 on SQLite, started by `.ci/rt` (its base URL
//! in `OUBLI_TEST_RT`; with `OUBLI_REQUIRE_RT` set, a missing server fails
//! instead of skipping). Erasure goes the way RT allows: the connector
//! hands over `rt-shredder` commands, which this test runs on the server's
//! database as an operator would, and the search then finds nothing.
//!
//! Each test creates its own users and tickets, for an address unique to
//! the run, so the tests can run again on the same server.

use oubli_core::model::ConnectorError;
use oubli_core::model::{Change, EraseMode, RecordRef, Status};
use oubli_core::rights::export as access;
use oubli_core::rights::retry::RetryPolicy;
use oubli_core::runtime::{CallError, Connector};
use oubli_testing::unique;
use real_server::subject;
use serde_json::{Value, json};

mod real_server;

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
            Some(json!({"Name": email, "EmailAddress": email, "RealName": real_name, "WorkPhone": "+44 20 7946 0000"})),
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

/// Run the `rt-shredder` commands an operator is told to run, against the
/// test server's database (`.ci/rt env`), in `dir`.
fn run_shredder(instructions: &str, dir: &std::path::Path) {
    let rt_dir = std::env::var("OUBLI_RT_DIR").unwrap_or_else(|_| "/tmp/oubli-rt".into());
    let commands: Vec<&str> = instructions
        .split('`')
        .filter(|c| c.starts_with("rt-shredder "))
        .collect();
    assert!(!commands.is_empty(), "{instructions}");
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
    let own = rt.ticket(json!({
        "Subject": "Refund", "Requestor": person, "Content": "Where is my refund?",
        "Attachments": [{"FileName": "notes.txt", "FileType": "text/plain",
            "FileContent": base64::engine::general_purpose::STANDARD.encode(&notes)}],
    }));
    let copied =
        rt.ticket(json!({"Subject": "Team", "Requestor": decoy, "Cc": person, "Content": "FYI"}));
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

    // Export: the user's fields, the ticket's messages and file.
    let refs: Vec<RecordRef> = found.iter().map(|l| l.reference.clone()).collect();
    let exported = c.export(&refs).await.unwrap();
    assert_eq!(exported.len(), 5);
    let user = exported
        .iter()
        .find(|e| e.reference.kind == "user")
        .unwrap();
    let field = |e: &oubli_core::model::Exported, name: &str| {
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

    // Restrict: the user is disabled, and still found.
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

    // Erase: refused with the Shredder commands; run them, search again.
    let e = c.erase(&refs, EraseMode::Delete).await.unwrap_err();
    let CallError::Connector(ConnectorError::NotSupported(steps)) = e else {
        panic!("{e}");
    };
    assert!(steps.contains("rt-shredder"), "{steps}");
    run_shredder(&steps, dir.path());
    assert!(c.locate(&s).await.unwrap().is_empty());
    for id in [&own, &copied, &mentioned, &deleted] {
        assert!(!rt.exists("ticket", id), "ticket {id} survived");
    }
    assert!(rt.exists("ticket", &not_her));
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
    assert_eq!(e.kind(), "not-supported");

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
