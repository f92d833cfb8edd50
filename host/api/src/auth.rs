//! Who is calling: the bearer token checked against the store (through the
//! engine), its role checked per route. 401 when there is no valid token,
//! 403 when the token's role may not do this; after too many failed
//! attempts from one client, 429 for a while for anything but a valid
//! token (a valid token is never locked out). The client is the connecting
//! address, or behind a trusted proxy (`[api] trusted_proxies`) the address
//! the proxy says it forwarded for: behind a TLS proxy every caller would
//! otherwise share one address, and ten bad tokens from anyone would lock
//! out every integrator.

use super::AppState;
use super::problem::Problem;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use oubli_core::rights::tokens::{Caller, Role};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

/// Failed attempts allowed per address in [`WINDOW_MS`], by default.
pub const MAX_FAILURES: u32 = 10;
/// The window failures are counted in, and the lockout's length (ms of the
/// engine's clock).
pub const WINDOW_MS: i64 = 60_000;

/// Failed authentications by client address, counted on the engine's clock.
#[derive(Debug)]
pub struct FailedAuth {
    by_ip: Mutex<HashMap<IpAddr, (u32, i64)>>,
    limit: u32,
}

impl Default for FailedAuth {
    fn default() -> FailedAuth {
        FailedAuth::new(MAX_FAILURES)
    }
}

impl FailedAuth {
    /// Lock an address out after `limit` failures within a minute (`0`:
    /// never, for a deployment whose proxy limits logins itself).
    pub fn new(limit: u32) -> FailedAuth {
        FailedAuth {
            by_ip: Mutex::default(),
            limit,
        }
    }

    /// Seconds left of a lockout of `ip` at `now`, if locked out.
    pub(crate) fn locked(&self, ip: IpAddr, now: i64) -> Option<u64> {
        if self.limit == 0 {
            return None;
        }
        let map = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&ip) {
            Some((n, since)) if *n >= self.limit && now - since < WINDOW_MS => {
                Some(((WINDOW_MS - (now - since)) / 1000).max(1) as u64)
            }
            _ => None,
        }
    }

    pub(crate) fn failed(&self, ip: IpAddr, now: i64) {
        let mut map = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, since)| now - *since < WINDOW_MS);
        }
        let e = map.entry(ip).or_insert((0, now));
        if now - e.1 >= WINDOW_MS {
            *e = (0, now);
        }
        e.0 += 1;
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth(pub Caller);

impl Auth {
    /// Refuse (403) unless the caller's role allows what `needed` may do.
    pub fn require(&self, needed: Role) -> Result<&Caller, Problem> {
        if self.0.role.allows(needed) {
            Ok(&self.0)
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this token's role ({}) may not do this: it needs {} or above",
                    self.0.role, needed
                ),
            ))
        }
    }
}

/// The client of a request, as failed logins are counted: the connecting
/// peer (as the server recorded it), or whom a trusted proxy forwarded for.
pub(crate) fn client_of(parts: &Parts, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    client_address(peer, &parts.headers, trusted)
}

/// The client's address: the connecting peer, or, when the peer is a
/// trusted proxy, the last address in `X-Forwarded-For` that is not itself
/// a trusted proxy (earlier entries are whatever the client wrote).
pub(crate) fn client_address(
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .copied()
        .unwrap_or(peer)
}

/// The roles a [`Need`] names (const generics take numbers, not enums).
pub mod roles {
    /// [`Role::Auditor`](super::Role::Auditor).
    pub const AUDITOR: u8 = 0;
    /// [`Role::Operator`](super::Role::Operator).
    pub const OPERATOR: u8 = 1;
    /// [`Role::Approver`](super::Role::Approver).
    pub const APPROVER: u8 = 2;
    /// [`Role::Admin`](super::Role::Admin).
    pub const ADMIN: u8 = 3;
}

/// A caller whose role allows what `ROLE` may do, checked while the
/// request's head is read: a handler that takes it before its body refuses
/// a wrong role (403) before the body is parsed, so a client without the
/// role learns nothing from how its body would have been judged.
#[derive(Debug, Clone)]
pub struct Need<const ROLE: u8>(pub Caller);

impl<const ROLE: u8> FromRequestParts<AppState> for Need<ROLE> {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let needed = match ROLE {
            roles::AUDITOR => Role::Auditor,
            roles::OPERATOR => Role::Operator,
            roles::APPROVER => Role::Approver,
            _ => Role::Admin,
        };
        let auth = Auth::from_request_parts(parts, state).await?;
        auth.require(needed)?;
        Ok(Need(auth.0))
    }
}

fn unauthorized(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = client_of(parts, &state.trusted_proxies);
        let locked_out = |wait: u64| {
            let mut p = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-failures",
                "too many failed authentications from this address; wait",
            );
            p.retry_after = Some(wait);
            p
        };
        let now = state.engine.now();
        let locked = state.failed_auth.locked(ip, now);
        // No token guesses nothing: always 401 with the challenge, never
        // counted and never locked out (a client that forgot its token is
        // told so, even from an address locked out for bad ones).
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(unauthorized(
                "send a token: Authorization: Bearer oubli_… (create one with `oubli token create`)",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let Some(token) = token else {
            if let Some(wait) = locked {
                return Err(locked_out(wait));
            }
            state.failed_auth.failed(ip, now);
            return Err(unauthorized(
                "the Authorization header is not `Bearer <token>`",
            ));
        };
        match state.engine.authenticate(token).await {
            // A valid token is never locked out.
            Ok(Ok(caller)) => Ok(Auth(caller)),
            Ok(Err(_)) if let Some(wait) = locked => Err(locked_out(wait)),
            Ok(Err(why)) => {
                state.failed_auth.failed(ip, now);
                tracing::info!(%ip, reason = %why, "authentication refused");
                Err(unauthorized(
                    "the token is not valid (unknown, expired or revoked)",
                ))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::client_address;
    use axum::http::HeaderMap;
    use std::net::IpAddr;

    #[test]
    fn the_client_is_believed_only_through_trusted_proxies() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.7, 10.1.1.1".parse().unwrap(),
        );
        // From the proxy: the last address it did not add itself.
        assert_eq!(
            client_address(ip("10.0.0.2"), &h, &trusted),
            ip("203.0.113.7")
        );
        // From anyone else, the header is the client's own word: ignored.
        assert_eq!(
            client_address(ip("198.51.100.9"), &h, &trusted),
            ip("198.51.100.9")
        );
        // No proxy configured: the peer.
        assert_eq!(client_address(ip("10.0.0.2"), &h, &[]), ip("10.0.0.2"));
        // From the proxy without the header: the proxy.
        assert_eq!(
            client_address(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
    }
}
