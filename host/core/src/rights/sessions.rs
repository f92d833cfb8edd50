//! The operator console's sessions, kept in the store so that every
//! `serve` process on it knows them and a restart signs nobody out.
//!
//! The cookie carries a random 256-bit id; the store keeps its SHA-256. The
//! CSRF token is derived from the id (another SHA-256, domain-separated),
//! so it is never stored either. A session opened with an API token keeps
//! the token's id and checks the token at every use: revoking or expiring
//! it ends the session. Timeouts are read on the engine's clock; `seen_at`
//! is written at most every 30 seconds, so the idle timeout is exact to
//! that.

use super::engine::Engine;
use super::request::RequestError;
use super::tokens::{Caller, Role};
use crate::lang::Lang;
use oubli_store::sessions::{self, SessionRow};
use sha2::{Digest, Sha256};

/// How long sessions last.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Unused this long (ms), a session ends.
    pub idle_ms: i64,
    /// This long (ms) after it was opened, a session ends, used or not.
    pub absolute_ms: i64,
}

/// A live session.
#[derive(Clone)]
pub struct Session {
    /// Who, and with which role (as the token says now, for a session
    /// opened with one).
    pub caller: Caller,
    /// The token every form of the session must carry.
    pub csrf: String,
    /// The language of its pages.
    pub lang: Lang,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("name", &self.caller.name)
            .field("role", &self.caller.role)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Whether `given` is this session's CSRF token (constant time).
    pub fn csrf_ok(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(given.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// How often `seen_at` is written, at most (ms).
const TOUCH_EVERY_MS: i64 = 30_000;

fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn csrf_of(id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"oubli console csrf\0");
    h.update(id.as_bytes());
    hex::encode(h.finalize())
}

/// A session id: 256 random bits (what the cookie carries).
fn valid_id(id: &str) -> bool {
    (40..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Engine {
    /// Open a session for `caller` (with the id of the token it signed in
    /// with, if it did); returns the id for the cookie. Sessions past their
    /// limits are removed at the same time.
    pub async fn open_session(
        &self,
        caller: &Caller,
        token_id: Option<&str>,
        lang: Lang,
        limits: SessionLimits,
    ) -> Result<String, RequestError> {
        let id = oubli_crypto::random_token(32)?;
        let now = self.now();
        sessions::open(
            &self.store,
            &SessionRow {
                id_hash: id_hash(&id),
                actor: caller.name.clone(),
                role: caller.role.as_str().to_string(),
                token_id: token_id.map(str::to_string),
                lang: lang.code().to_string(),
                opened_at: now,
                seen_at: now,
            },
            now - limits.idle_ms,
            now - limits.absolute_ms,
        )
        .await?;
        Ok(id)
    }

    /// The live session `id` names, marked used; `None` when there is none,
    /// or it is past its limits or its token is no longer valid (it is then
    /// removed).
    pub async fn session(
        &self,
        id: &str,
        limits: SessionLimits,
    ) -> Result<Option<Session>, RequestError> {
        if !valid_id(id) {
            return Ok(None);
        }
        let hash = id_hash(id);
        let Some(row) = sessions::get(&self.store, &hash).await? else {
            return Ok(None);
        };
        let now = self.now();
        let expired =
            now - row.seen_at >= limits.idle_ms || now - row.opened_at >= limits.absolute_ms;
        let (name, role) = match (&row.token_id, expired) {
            (_, true) => (None, None),
            (None, false) => (Some(row.actor.clone()), Role::parse(&row.role)),
            (Some(t), false) => match self.token_holder(t).await? {
                Ok(c) => (Some(c.name), Some(c.role)),
                Err(_) => (None, None),
            },
        };
        let (Some(name), Some(role)) = (name, role) else {
            sessions::close(&self.store, &hash).await?;
            return Ok(None);
        };
        if now - row.seen_at >= TOUCH_EVERY_MS || name != row.actor || role.as_str() != row.role {
            sessions::touch(&self.store, &hash, &name, role.as_str(), now).await?;
        }
        Ok(Some(Session {
            caller: Caller {
                token: row.token_id.clone().unwrap_or_default(),
                name,
                role,
            },
            csrf: csrf_of(id),
            lang: Lang::parse(&row.lang).unwrap_or(Lang::En),
        }))
    }

    /// Change a session's language.
    pub async fn set_session_lang(&self, id: &str, lang: Lang) -> Result<(), RequestError> {
        if valid_id(id) {
            sessions::set_lang(&self.store, &id_hash(id), lang.code()).await?;
        }
        Ok(())
    }

    /// End a session (sign-out); whether there was one.
    pub async fn close_session(&self, id: &str) -> Result<bool, RequestError> {
        if !valid_id(id) {
            return Ok(false);
        }
        Ok(sessions::close(&self.store, &id_hash(id)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_hash_and_the_csrf_token_differ_and_neither_is_the_id() {
        let id = "a".repeat(52);
        assert_ne!(id_hash(&id), csrf_of(&id));
        assert!(!id_hash(&id).contains(&id) && !csrf_of(&id).contains(&id));
        assert_eq!(csrf_of(&id), csrf_of(&id));
        assert_ne!(csrf_of(&id), csrf_of(&"b".repeat(52)));
        assert!(valid_id(&id) && !valid_id("short") && !valid_id(&"é".repeat(30)));
    }
}
