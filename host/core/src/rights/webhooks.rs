//! Webhooks: every request state change, POSTed to each configured URL in
//! the order it happened, signed with HMAC-SHA-256 over the timestamp and
//! the body (`Oubli-Signature: t=<unix seconds>,v1=<hex>`), carrying ids and
//! states only, never personal data.
//!
//! Delivery is at least once: each webhook has a cursor in the event log
//! (the durable record of what happened), moved forward only after the
//! receiver answered 2xx; a failure backs off exponentially and retries the
//! same event. A receiver checks the signature and the timestamp's age
//! ([`verify`]) and drops ids it has seen.

use super::deadline::timestamp;
use super::engine::Engine;
use super::request::RequestError;
use hmac::{KeyInit, Mac};
use oubli_store::service::{self, Cursor};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Oubli-Signature";

/// How old a delivery may be when the receiver checks it, by default.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// One delivery's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// The event's id (the same on every retry: receivers drop repeats).
    pub id: String,
    /// `request.state-changed`, or `audit.tree-head` (a new signed tree
    /// head, for a witness to keep).
    #[serde(rename = "type")]
    pub kind: String,
    /// The request (state changes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request: String,
    /// Its state before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Its state now.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to: String,
    /// When (RFC 3339).
    pub at: String,
    /// The signed tree head (`audit.tree-head`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<oubli_model::evidence::TreeHead>,
}

/// How far a delivery moves a webhook's cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Past this many events of the log.
    Event(i64),
    /// Past the signed tree head of this size.
    Head(i64),
}

/// Why a delivery was refused by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The header is missing or malformed.
    #[error("no valid {SIGNATURE_HEADER} header")]
    Malformed,
    /// The timestamp is outside the tolerance (a replay, or a clock off).
    #[error("the signature's timestamp is {0} s away from now: refused as a possible replay")]
    Stale(i64),
    /// The signature does not match.
    #[error("the signature does not match the body")]
    Mismatch,
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> Result<hmac::Hmac<Sha256>, WebhookError> {
    let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .map_err(|_| WebhookError::Malformed)?;
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    Ok(m)
}

/// The signature header's value for `body` sent at `t` (Unix seconds).
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    let tag = mac(secret, t, body)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("t={t},v1={tag}")
}

/// The receiver's check: the header's HMAC over its timestamp and the body
/// (compared in constant time), and the timestamp within `tolerance`
/// seconds of `now`.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), WebhookError> {
    let mut t = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => tags.push(hex::decode(v).map_err(|_| WebhookError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(WebhookError::Malformed)?;
    if tags.is_empty() {
        return Err(WebhookError::Malformed);
    }
    if (now - t).abs() > tolerance {
        return Err(WebhookError::Stale(now - t));
    }
    for tag in tags {
        if mac(secret, t, body)?.verify_slice(&tag).is_ok() {
            return Ok(());
        }
    }
    Err(WebhookError::Mismatch)
}

impl Engine {
    /// A webhook's cursor and the next state changes to deliver after it
    /// (at most `limit`). Events that are not state changes are passed
    /// over: the returned cursor is moved past them.
    pub async fn webhook_pending(
        &self,
        name: &str,
        limit: i64,
    ) -> Result<(Cursor, Vec<(Mark, WebhookEvent)>), RequestError> {
        let mut cursor = service::cursor(self.store.pool(), name, self.store.now()).await?;
        let mut out = Vec::new();
        loop {
            let batch = service::events_after(self.store.pool(), cursor.last_event_id, 200).await?;
            if batch.is_empty() {
                break;
            }
            for e in batch {
                match &e.to {
                    Some(to) if !e.request_id.contains(':') => {
                        out.push((
                            Mark::Event(e.leaf + 1),
                            WebhookEvent {
                                id: format!("evt-{}", e.id),
                                kind: "request.state-changed".into(),
                                request: e.request_id,
                                from: e.from,
                                to: to.clone(),
                                at: timestamp(e.at),
                                head: None,
                            },
                        ));
                        if out.len() as i64 >= limit {
                            return Ok((cursor, out));
                        }
                    }
                    _ if out.is_empty() => cursor.last_event_id = e.leaf + 1,
                    _ => {}
                }
            }
            if !out.is_empty() {
                break;
            }
        }
        let room = (limit - out.len() as i64).max(0) as usize;
        for h in oubli_store::log::tree_heads(self.store.pool(), cursor.last_head)
            .await?
            .into_iter()
            .take(room)
        {
            out.push((
                Mark::Head(h.size),
                WebhookEvent {
                    id: format!("head-{}", h.size),
                    kind: "audit.tree-head".into(),
                    request: String::new(),
                    from: None,
                    to: String::new(),
                    at: timestamp(h.signed_at),
                    head: Some(h),
                },
            ));
        }
        Ok((cursor, out))
    }

    /// Start delivering to webhook `name`: its cursor is created at the
    /// newest event if it has none. `serve` does this before it accepts a
    /// request, so every state change after it started is delivered (the
    /// delivery loop, started later, would otherwise begin wherever the
    /// log stood when it first ran).
    pub async fn start_webhook(&self, name: &str) -> Result<(), RequestError> {
        service::cursor(self.store.pool(), name, self.store.now()).await?;
        Ok(())
    }

    /// Save a webhook's cursor.
    pub async fn save_webhook_cursor(&self, cursor: &Cursor) -> Result<(), RequestError> {
        Ok(service::set_cursor(self.store.pool(), cursor, self.store.now()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_replay_or_an_edit_does_not() {
        let secret = b"whsec-test";
        let body = br#"{"id":"evt-1","type":"request.state-changed"}"#;
        let h = sign(secret, 1_000_000, body);
        assert!(h.starts_with("t=1000000,v1="));
        verify(secret, &h, body, 1_000_010, 300).unwrap();
        assert_eq!(
            verify(secret, &h, body, 1_000_301, 300),
            Err(WebhookError::Stale(301))
        );
        assert_eq!(
            verify(secret, &h, b"{}", 1_000_010, 300),
            Err(WebhookError::Mismatch)
        );
        assert_eq!(
            verify(b"other", &h, body, 1_000_010, 300),
            Err(WebhookError::Mismatch)
        );
        // Moving the timestamp breaks the signature.
        let moved = h.replace("t=1000000", "t=1000200");
        assert_eq!(
            verify(secret, &moved, body, 1_000_210, 300),
            Err(WebhookError::Mismatch)
        );
        assert_eq!(
            verify(secret, "v1=00", body, 1_000_010, 300),
            Err(WebhookError::Malformed)
        );
    }
}
