//! A stand-in of the REST "people directory" that `plugins/example-rest`
//! talks to: search by email or phone, read, patch, delete (refused under
//! legal hold), anonymise; Bearer `dir-token`; a switchable 429.

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The directory's state.
#[derive(Default)]
pub struct Directory {
    people: Mutex<Vec<Value>>,
    /// Requests still to answer 429 (Retry-After: 7).
    pub throttle: AtomicUsize,
    /// Requests received.
    pub requests: AtomicUsize,
}

fn authorised(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer dir-token")
}

async fn search(
    State(d): State<Arc<Directory>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    d.requests.fetch_add(1, Ordering::SeqCst);
    if !authorised(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if d.throttle.load(Ordering::SeqCst) > 0 {
        d.throttle.fetch_sub(1, Ordering::SeqCst);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "7")],
            "slow down",
        )
            .into_response();
    }
    let people = d.people.lock().unwrap();
    let hits: Vec<Value> = people
        .iter()
        .filter(|p| {
            q.get("email")
                .is_some_and(|e| p["email"].as_str() == Some(e.as_str()))
                || q.get("phone")
                    .is_some_and(|ph| p["phone"].as_str() == Some(ph.as_str()))
        })
        .cloned()
        .collect();
    Json(json!({ "people": hits })).into_response()
}

async fn one(State(d): State<Arc<Directory>>, UrlPath(id): UrlPath<String>) -> Response {
    let people = d.people.lock().unwrap();
    match people.iter().find(|p| p["id"] == id.as_str()) {
        Some(p) => Json(p.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn patch(
    State(d): State<Arc<Directory>>,
    UrlPath(id): UrlPath<String>,
    Json(changes): Json<serde_json::Map<String, Value>>,
) -> StatusCode {
    let mut people = d.people.lock().unwrap();
    match people.iter_mut().find(|p| p["id"] == id.as_str()) {
        Some(p) => {
            for (k, v) in changes {
                p[k] = v;
            }
            StatusCode::OK
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn delete(State(d): State<Arc<Directory>>, UrlPath(id): UrlPath<String>) -> StatusCode {
    let mut people = d.people.lock().unwrap();
    match people.iter().position(|p| p["id"] == id.as_str()) {
        Some(i) if !people[i]["legal_hold"].is_null() => StatusCode::CONFLICT,
        Some(i) => {
            people.remove(i);
            StatusCode::NO_CONTENT
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn anonymise(State(d): State<Arc<Directory>>, UrlPath(id): UrlPath<String>) -> StatusCode {
    let mut people = d.people.lock().unwrap();
    match people.iter_mut().find(|p| p["id"] == id.as_str()) {
        Some(p) => {
            for k in ["name", "email", "phone", "notes"] {
                p[k] = json!("");
            }
            StatusCode::OK
        }
        None => StatusCode::NOT_FOUND,
    }
}

/// Serve it on a loopback port: three people, `p1` and `p2` sharing a
/// phone number, `p2` under legal hold. The token is `dir-token`.
pub async fn serve() -> (SocketAddr, Arc<Directory>) {
    let d = Arc::new(Directory::default());
    *d.people.lock().unwrap() = vec![
        json!({"id": "p1", "name": "Ada Lovelace", "email": "ada+calls@example.com", "phone": "+33612345678",
               "notes": "prefers email", "created_at": 1_700_000_000_000i64, "legal_hold": null}),
        json!({"id": "p2", "name": "Ada L.", "email": "ada.l@example.org", "phone": "+33612345678",
               "notes": "", "created_at": null, "legal_hold": "unpaid invoice under dispute"}),
        json!({"id": "p3", "name": "Bob", "email": "bob@example.com", "phone": "+441632960000",
               "notes": "", "created_at": null, "legal_hold": null}),
    ];
    let app = Router::new()
        .route("/api/people", get(search))
        .route("/api/people/{id}", get(one).patch(patch).delete(delete))
        .route("/api/people/{id}/anonymise", post(anonymise))
        .with_state(d.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, d)
}
