//! Delivering webhooks: one loop per configured URL, in event order, each
//! event POSTed until the receiver answers 2xx (exponential back-off up to
//! five minutes between tries), the cursor saved after each success.

use oubli_core::config::WebhookSettings;
use oubli_core::rights::engine::Engine;
use oubli_core::rights::webhooks::{Mark, SIGNATURE_HEADER, sign};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const MAX_BACKOFF_MS: i64 = 300_000;

/// Deliver `hook`'s events until `stop` turns true.
pub async fn run(engine: Arc<Engine>, hook: WebhookSettings, mut stop: watch::Receiver<bool>) {
    let secret = match hook.secret.resolve() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(webhook = %hook.name, error = %e, "webhook disabled: no secret");
            return;
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    loop {
        let wait = match deliver_some(&engine, &hook, secret.expose().as_bytes(), &agent).await {
            Ok(true) => Duration::ZERO,
            Ok(false) => Duration::from_millis(500),
            Err(wait) => wait,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Deliver what is pending; `Ok(true)` if something was delivered,
/// `Err(wait)` after a failure.
async fn deliver_some(
    engine: &Arc<Engine>,
    hook: &WebhookSettings,
    secret: &[u8],
    agent: &ureq::Agent,
) -> Result<bool, Duration> {
    let now = engine.now();
    let (mut cursor, events) = match engine.webhook_pending(&hook.name, 50).await {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(webhook = %hook.name, error = %e, "webhook: store unavailable");
            return Err(Duration::from_secs(2));
        }
    };
    if cursor.next_at > now {
        return Err(Duration::from_millis((cursor.next_at - now) as u64));
    }
    let mut delivered = false;
    for (mark, event) in events {
        let body = serde_json::to_vec(&event).unwrap_or_default();
        let t = now / 1000;
        let header = sign(secret, t, &body);
        let (agent, url, b) = (agent.clone(), hook.url.to_string(), body.clone());
        let sent = tokio::task::spawn_blocking(move || {
            agent
                .post(&url)
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, &header)
                .send(&b[..])
                .map(|r| r.status().as_u16())
        })
        .await;
        match sent {
            Ok(Ok(status)) if (200..300).contains(&status) => {
                match mark {
                    Mark::Event(n) => cursor.last_event_id = n,
                    Mark::Head(size) => cursor.last_head = size,
                }
                cursor.failures = 0;
                cursor.next_at = 0;
                cursor.last_error = None;
                delivered = true;
            }
            other => {
                let why = match other {
                    Ok(Ok(status)) => format!("the receiver answered {status}"),
                    Ok(Err(e)) => format!(
                        "could not send: {}",
                        e.to_string().chars().take(200).collect::<String>()
                    ),
                    Err(_) => "the delivery task failed".into(),
                };
                cursor.failures += 1;
                let backoff = (1000i64 << cursor.failures.min(20)).min(MAX_BACKOFF_MS);
                cursor.next_at = engine.now() + backoff;
                tracing::warn!(webhook = %hook.name, event = %event.id, failures = cursor.failures, reason = %why, "webhook delivery failed");
                cursor.last_error = Some(why);
                let _ = engine.save_webhook_cursor(&cursor).await;
                return Err(Duration::from_millis(backoff as u64));
            }
        }
    }
    if let Err(e) = engine.save_webhook_cursor(&cursor).await {
        tracing::warn!(webhook = %hook.name, error = %e, "webhook: cursor not saved");
    }
    Ok(delivered)
}
