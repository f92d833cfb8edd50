//! The stand-ins answer as their vendors document: status codes, error
//! shapes, asynchronous states, paging, JMAP method errors. Called in-process
//! through each router (no sockets), as axum's testing example does.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use oubli_sandbox::{crm, dialer, genesys, jmap, people};
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn genesys_gdpr_requests_follow_the_documented_contract() {
    let people = people::population(20);
    let g = genesys::Genesys::seed(&people, Duration::from_millis(150), None);
    let app = g.router("http://sandbox.test");
    let admin = Some(genesys::ADMIN_TOKEN);
    let p = &people[0];

    let (s, _) = call(
        &app,
        "GET",
        "/api/v2/gdpr/subjects?searchType=EMAIL&searchValue=x",
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, e) = call(
        &app,
        "GET",
        "/api/v2/gdpr/subjects?searchType=SHOE_SIZE&searchValue=x",
        admin,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["status"], 400);
    let uri = format!(
        "/api/v2/gdpr/subjects?searchType=EMAIL&searchValue={}",
        p.email
    );
    let (_, listing) = call(&app, "GET", &uri, admin, None).await;
    assert_eq!(
        listing["total"], 2,
        "two contacts share the demo person's email"
    );

    let subject = json!({"emailAddresses": [p.email]});
    let delete = json!({"requestType": "GDPR_DELETE", "subject": subject});
    let (s, _) = call(
        &app,
        "POST",
        "/api/v2/gdpr/requests",
        admin,
        Some(delete.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a delete must be confirmed");
    let (s, _) = call(
        &app,
        "POST",
        "/api/v2/gdpr/requests?deleteConfirmed=true",
        Some(genesys::VIEWER_TOKEN),
        Some(delete),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let export = json!({"requestType": "GDPR_EXPORT", "subject": subject});
    let (s, r) = call(&app, "POST", "/api/v2/gdpr/requests", admin, Some(export)).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(r["status"], "INITIATED");
    assert!(r.get("resultsUrl").is_none());
    let id = r["id"].as_str().unwrap().to_string();
    let mut seen = vec![r["status"].as_str().unwrap().to_string()];
    loop {
        let (_, r) = call(
            &app,
            "GET",
            &format!("/api/v2/gdpr/requests/{id}"),
            admin,
            None,
        )
        .await;
        let status = r["status"].as_str().unwrap().to_string();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == "COMPLETED" {
            assert_eq!(
                r["resultsUrl"],
                format!("http://sandbox.test/api/v2/gdpr/requests/{id}/results")
            );
            break;
        }
        assert!(r.get("resultsUrl").is_none());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen.first().map(String::as_str), Some("INITIATED"));
    assert!(
        seen.contains(&"SEARCHING".to_string()) && seen.contains(&"FINALIZING".to_string()),
        "{seen:?}"
    );
    let (_, results) = call(
        &app,
        "GET",
        &format!("/api/v2/gdpr/requests/{id}/results"),
        admin,
        None,
    )
    .await;
    assert_eq!(results["externalContacts"].as_array().unwrap().len(), 2);

    // Paging over the requests.
    for _ in 0..4 {
        call(
            &app,
            "POST",
            "/api/v2/gdpr/requests",
            admin,
            Some(json!({"requestType": "GDPR_EXPORT", "subject": {"name": "x"}})),
        )
        .await;
    }
    let (_, page) = call(
        &app,
        "GET",
        "/api/v2/gdpr/requests?pageSize=2&pageNumber=1",
        admin,
        None,
    )
    .await;
    assert_eq!(page["total"], 5);
    assert_eq!(page["entities"].as_array().unwrap().len(), 2);
    assert_eq!(
        page["nextUri"],
        "/api/v2/gdpr/requests?pageSize=2&pageNumber=2"
    );
}

#[tokio::test]
async fn jmap_checks_capabilities_state_and_limits() {
    let people = people::population(20);
    let j = jmap::Jmap::seed(&people);
    let app = j.router();
    let t = Some(jmap::TOKEN);
    let core = "urn:ietf:params:jmap:core";
    let mail = "urn:ietf:params:jmap:mail";

    let (s, session) = call(&app, "GET", "/.well-known/jmap", t, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(session["capabilities"][core]["maxObjectsInSet"], 5);
    assert_eq!(
        session["apiUrl"], "/jmap/api/",
        "a relative reference, as some servers send"
    );

    let (s, e) = call(
        &app,
        "POST",
        "/jmap/api/",
        t,
        Some(json!({"using": ["urn:x"], "methodCalls": []})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["type"], "urn:ietf:params:jmap:error:unknownCapability");

    let query = json!(["Email/query", {"accountId": jmap::ACCOUNT, "filter": {"from": people[0].email}}, "q"]);
    let (_, r) = call(
        &app,
        "POST",
        "/jmap/api/",
        t,
        Some(json!({"using": [core], "methodCalls": [query]})),
    )
    .await;
    assert_eq!(r["methodResponses"][0][0], "error");
    assert_eq!(
        r["methodResponses"][0][1]["type"], "unknownMethod",
        "mail not in using"
    );

    // Query, then get through a result reference: the decoy whose address
    // contains the person's is a query hit, as on real servers.
    let get = json!(["Email/get", {"accountId": jmap::ACCOUNT, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}, "properties": ["from"]}, "g"]);
    let (_, r) = call(
        &app,
        "POST",
        "/jmap/api/",
        t,
        Some(json!({"using": [core, mail], "methodCalls": [query, get]})),
    )
    .await;
    let froms: Vec<String> = r["methodResponses"][1][1]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["from"][0]["email"].as_str().unwrap().to_lowercase())
        .collect();
    assert!(froms.iter().any(|f| f.starts_with("marie-")), "{froms:?}");
    assert!(froms.contains(&people[0].email));
    let state = r["methodResponses"][1][1]["state"]
        .as_str()
        .unwrap()
        .to_string();

    let ids: Vec<Value> = r["methodResponses"][0][1]["ids"]
        .as_array()
        .unwrap()
        .clone();
    let too_many: Vec<Value> = ids.iter().cycle().take(6).cloned().collect();
    let set = |destroy: Vec<Value>, state: &str| json!({"using": [core, mail], "methodCalls": [["Email/set", {"accountId": jmap::ACCOUNT, "ifInState": state, "destroy": destroy}, "s"]]});
    let (_, r) = call(&app, "POST", "/jmap/api/", t, Some(set(too_many, &state))).await;
    assert_eq!(r["methodResponses"][0][1]["type"], "requestTooLarge");
    let (_, r) = call(
        &app,
        "POST",
        "/jmap/api/",
        t,
        Some(set(vec![ids[0].clone(), json!("M99999")], &state)),
    )
    .await;
    let res = &r["methodResponses"][0][1];
    assert_eq!(res["destroyed"], json!([ids[0]]));
    assert_eq!(res["notDestroyed"]["M99999"]["type"], "notFound");
    assert_ne!(res["newState"], res["oldState"]);
    let (_, r) = call(
        &app,
        "POST",
        "/jmap/api/",
        t,
        Some(set(vec![ids[1].clone()], &state)),
    )
    .await;
    assert_eq!(
        r["methodResponses"][0][1]["type"], "stateMismatch",
        "the old state is stale now"
    );
}

#[tokio::test]
async fn crm_archive_is_soft_and_gdpr_delete_is_permanent() {
    let people = people::population(20);
    let c = crm::Crm::seed(&people);
    let app = c.router();
    let t = Some(crm::TOKEN);
    let search = |email: &str| json!({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}]});
    let (_, r) = call(
        &app,
        "POST",
        "/crm/v3/objects/contacts/search",
        t,
        Some(search(&people[1].email.to_uppercase())),
    )
    .await;
    assert_eq!(r["total"], 1, "emails match case-insensitively");
    let id = r["results"][0]["id"].as_str().unwrap().to_string();

    let (s, _) = call(
        &app,
        "DELETE",
        &format!("/crm/v3/objects/contacts/{id}"),
        t,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, r) = call(
        &app,
        "POST",
        "/crm/v3/objects/contacts/search",
        t,
        Some(search(&people[1].email)),
    )
    .await;
    assert_eq!(r["total"], 0);
    let (s, r) = call(
        &app,
        "GET",
        &format!("/crm/v3/objects/contacts/{id}?archived=true&properties=email"),
        t,
        None,
    )
    .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "archived contacts can still be read and restored"
    );
    assert_eq!(r["archived"], true);

    let (s, _) = call(
        &app,
        "POST",
        "/crm/v3/objects/contacts/gdpr-delete",
        t,
        Some(json!({"objectId": id})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(
        &app,
        "GET",
        &format!("/crm/v3/objects/contacts/{id}?archived=true"),
        t,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, _) = call(
        &app,
        "POST",
        "/crm/v3/objects/contacts/gdpr-delete",
        t,
        Some(json!({"objectId": "Unknown@Example.org", "idProperty": "email"})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        c.data.lock().unwrap().blocklist,
        vec!["unknown@example.org".to_string()]
    );

    let (s, e) = call(
        &app,
        "PATCH",
        "/crm/v3/objects/contacts/1001",
        t,
        Some(json!({"properties": {"shoe_size": "44"}})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["category"], "VALIDATION_ERROR");
    let (s, _) = call(&app, "GET", "/crm/v3/objects/contacts/1001", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn dialer_dnc_entries_expire_and_the_dialler_honours_them() {
    let people = people::population(20);
    let d = dialer::Dialer::seed(&people);
    let app = d.router();
    let t = Some(dialer::TOKEN);
    let p = &people[4];
    assert!(d.dial_list("cl-spring-renewal").contains(&p.phone));
    let patch = |numbers: Vec<&str>, expiry: Option<&str>| {
        let mut b = json!({"action": "Add", "phoneNumbers": numbers});
        if let Some(e) = expiry {
            b["expirationDateTime"] = json!(e);
        }
        b
    };
    let uri = format!(
        "/api/v2/outbound/dnclists/{}/phonenumbers",
        dialer::DNC_LIST
    );
    let (s, _) = call(
        &app,
        "PATCH",
        &uri,
        t,
        Some(patch(vec![&p.phone_national()], Some("2001-01-01T00:00Z"))),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(
        d.dial_list("cl-spring-renewal").contains(&p.phone),
        "an expired entry blocks nothing"
    );
    let (s, _) = call(
        &app,
        "PATCH",
        &uri,
        t,
        Some(patch(vec![&p.phone_national()], Some("tomorrow"))),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    call(
        &app,
        "PATCH",
        &uri,
        t,
        Some(patch(vec![&p.phone_national()], None)),
    )
    .await;
    assert!(
        !d.dial_list("cl-spring-renewal").contains(&p.phone),
        "a national-format entry blocks the E.164 column"
    );
    let (_, found) = call(
        &app,
        "POST",
        &format!("{uri}/check"),
        t,
        Some(json!({"phoneNumbers": [p.phone_national_compact()]})),
    )
    .await;
    assert_eq!(found["entities"].as_array().unwrap().len(), 1);
    let remove = json!({"action": "Remove", "phoneNumbers": [p.phone]});
    call(&app, "PATCH", &uri, t, Some(remove)).await;
    assert!(d.dial_list("cl-spring-renewal").contains(&p.phone));
}
