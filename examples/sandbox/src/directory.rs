//! A stand-in of the REST "people directory" that `plugins/example-rest`
//! (and every crate `oubli connector new` writes) talks to: search by
//! exact email or phone, or a loose `q=` search by any part of a name,
//! address or number (as many real APIs offer, and which a connector must
//! not trust as an identification); read, patch, delete (refused under
//! legal hold), anonymise; Bearer `dir-token`; and faults to switch on: a
//! 429 with a chosen `Retry-After`, 503s, slowness, and a delete that
//! answers 204 without deleting (a system that lies). It counts what it
//! was asked.

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The directory's state.
#[derive(Default)]
pub struct Directory {
    people: Mutex<Vec<Value>>,
    /// Requests still to answer 429.
    pub throttle: AtomicUsize,
    /// The `Retry-After` of a 429, in seconds (7 unless set).
    pub retry_after: AtomicUsize,
    /// Requests still to answer 503.
    pub unavailable: AtomicUsize,
    /// Milliseconds every request waits before it is answered.
    pub delay_ms: AtomicUsize,
    /// Whether DELETE answers 204 without deleting.
    pub lie: AtomicBool,
    /// Milliseconds a DELETE waits before it deletes (a client that goes
    /// away meanwhile leaves the record in place).
    pub delete_delay_before_ms: AtomicUsize,
    /// Milliseconds a DELETE waits after it deleted, before it answers (a
    /// client that goes away meanwhile never hears that it was done).
    pub delete_delay_after_ms: AtomicUsize,
    /// DELETE requests that arrived (whether or not they were carried out).
    pub deletes_started: AtomicUsize,
    /// Requests received.
    pub requests: AtomicUsize,
    /// DELETE and anonymise requests received, per id.
    pub erasures: Mutex<HashMap<String, usize>>,
}

impl Directory {
    /// Whether a person with this id is still there.
    pub fn has(&self, id: &str) -> bool {
        self.people.lock().unwrap().iter().any(|p| p["id"] == id)
    }

    /// A person's record.
    pub fn get(&self, id: &str) -> Option<Value> {
        self.people
            .lock()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .cloned()
    }

    /// How many erasure requests (delete or anonymise) `id` received.
    pub fn erasures_of(&self, id: &str) -> usize {
        self.erasures.lock().unwrap().get(id).copied().unwrap_or(0)
    }

    /// Add a person.
    pub fn add(&self, person: Value) {
        self.people.lock().unwrap().push(person);
    }

    async fn fault(&self) -> Option<Response> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay as u64)).await;
        }
        if self
            .unavailable
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Some((StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response());
        }
        if self
            .throttle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let after = match self.retry_after.load(Ordering::SeqCst) {
                0 => 7,
                n => n,
            };
            return Some(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", after.to_string())],
                    "slow down",
                )
                    .into_response(),
            );
        }
        None
    }
}

fn authorised(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer dir-token")
}

async fn search(
    State(d): State<Arc<Directory>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !authorised(&headers) {
        d.requests.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if let Some(r) = d.fault().await {
        return r;
    }
    let people = d.people.lock().unwrap();
    let loose = q
        .get("q")
        .map(|s| s.to_lowercase())
        .filter(|s| !s.is_empty());
    let hits: Vec<Value> = people
        .iter()
        .filter(|p| {
            q.get("email")
                .is_some_and(|e| p["email"].as_str() == Some(e.as_str()))
                || q.get("phone")
                    .is_some_and(|ph| p["phone"].as_str() == Some(ph.as_str()))
                || loose.as_ref().is_some_and(|l| {
                    ["name", "email", "phone"].iter().any(|k| {
                        p[*k]
                            .as_str()
                            .is_some_and(|v| !v.is_empty() && v.to_lowercase().contains(l.as_str()))
                    })
                })
        })
        .cloned()
        .collect();
    Json(json!({ "people": hits })).into_response()
}

async fn one(State(d): State<Arc<Directory>>, UrlPath(id): UrlPath<String>) -> Response {
    if let Some(r) = d.fault().await {
        return r;
    }
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
) -> Response {
    if let Some(r) = d.fault().await {
        return r;
    }
    let mut people = d.people.lock().unwrap();
    match people.iter_mut().find(|p| p["id"] == id.as_str()) {
        Some(p) => {
            for (k, v) in changes {
                p[k] = v;
            }
            StatusCode::OK.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete(State(d): State<Arc<Directory>>, UrlPath(id): UrlPath<String>) -> Response {
    if let Some(r) = d.fault().await {
        return r;
    }
    d.deletes_started.fetch_add(1, Ordering::SeqCst);
    let before = d.delete_delay_before_ms.load(Ordering::SeqCst);
    if before > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(before as u64)).await;
    }
    *d.erasures.lock().unwrap().entry(id.clone()).or_default() += 1;
    let status = {
        let mut people = d.people.lock().unwrap();
        match people.iter().position(|p| p["id"] == id.as_str()) {
            Some(i) if !people[i]["legal_hold"].is_null() => StatusCode::CONFLICT,
            Some(_) if d.lie.load(Ordering::SeqCst) => StatusCode::NO_CONTENT,
            Some(i) => {
                people.remove(i);
                StatusCode::NO_CONTENT
            }
            None => StatusCode::NOT_FOUND,
        }
    };
    let after = d.delete_delay_after_ms.load(Ordering::SeqCst);
    if after > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(after as u64)).await;
    }
    status.into_response()
}

async fn anonymise(State(d): State<Arc<Directory>>, UrlPath(id): UrlPath<String>) -> Response {
    if let Some(r) = d.fault().await {
        return r;
    }
    *d.erasures.lock().unwrap().entry(id.clone()).or_default() += 1;
    let mut people = d.people.lock().unwrap();
    match people.iter_mut().find(|p| p["id"] == id.as_str()) {
        Some(p) => {
            for k in ["name", "email", "phone", "notes"] {
                p[k] = json!("");
            }
            StatusCode::OK.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The bearer token the directory accepts.
pub const TOKEN: &str = "dir-token";

/// Serve it on a loopback port: three people, `p1` and `p2` sharing a
/// phone number, `p2` under legal hold. The token is `dir-token`.
pub async fn serve() -> (SocketAddr, Arc<Directory>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_on(listener)
}

/// [`serve`] on a listener the caller bound.
pub fn serve_on(listener: tokio::net::TcpListener) -> (SocketAddr, Arc<Directory>) {
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
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, d)
}
