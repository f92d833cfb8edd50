//! Console sessions: a random id in an HttpOnly, SameSite=Strict cookie
//! (Secure and `__Host-` under TLS), held in this process's memory by its
//! SHA-256 only, with a CSRF token every form carries, an idle and an
//! absolute timeout on the engine's clock, and sign-out that forgets it.
//!
//! A session signed in with an API token keeps the token in memory and
//! checks it at every request, so revoking the token ends the session at
//! once; a session from the identity provider keeps the role it was given
//! at sign-in until it times out. Sessions do not outlive the process: a
//! restart signs everyone out, which is the safe way round.

use oubli_core::lang::Lang;
use oubli_core::rights::tokens::Caller;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use subtle::ConstantTimeEq;

/// Sessions held at once before the oldest idle ones are dropped.
const MAX_SESSIONS: usize = 10_000;

/// One signed-in user.
#[derive(Clone)]
pub struct Session {
    /// Who, and with which role.
    pub caller: Caller,
    /// The API token it was opened with (checked at every request), or
    /// `None` for a sign-in through the identity provider.
    pub token: Option<zeroize::Zeroizing<String>>,
    /// The token every form must carry.
    pub csrf: String,
    /// The language of its pages.
    pub lang: Lang,
    /// When it was opened (ms, engine clock).
    pub opened_at: i64,
    /// When it was last used.
    pub seen_at: i64,
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
    /// Whether `given` is this session's CSRF token.
    pub fn csrf_ok(&self, given: &str) -> bool {
        bool::from(given.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// The sessions of this process.
#[derive(Debug)]
pub struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
    idle_ms: i64,
    absolute_ms: i64,
}

fn hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Sessions that end after `idle_ms` unused or `absolute_ms` after
    /// sign-in.
    pub fn new(idle_ms: i64, absolute_ms: i64) -> Sessions {
        Sessions {
            by_hash: Mutex::default(),
            idle_ms,
            absolute_ms,
        }
    }

    /// Open a session at `now`; returns its id (for the cookie).
    pub fn open(
        &self,
        caller: Caller,
        token: Option<zeroize::Zeroizing<String>>,
        lang: Lang,
        now: i64,
    ) -> Result<String, oubli_crypto::CryptoError> {
        let id = oubli_crypto::random_token(32)?;
        let csrf = oubli_crypto::random_token(32)?;
        let mut map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| self.live(s, now));
            if map.len() >= MAX_SESSIONS {
                // Still full: the least recently used goes.
                if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.seen_at).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(
            hash(&id),
            Session {
                caller,
                token,
                csrf,
                lang,
                opened_at: now,
                seen_at: now,
            },
        );
        Ok(id)
    }

    fn live(&self, s: &Session, now: i64) -> bool {
        now - s.seen_at < self.idle_ms && now - s.opened_at < self.absolute_ms
    }

    /// The session `id` names, if it is live at `now` (it is then marked
    /// used); an expired one is forgotten.
    pub fn touch(&self, id: &str, now: i64) -> Option<Session> {
        let key = hash(id);
        let mut map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        let live = map.get(&key).map(|s| self.live(s, now))?;
        if !live {
            map.remove(&key);
            return None;
        }
        let s = map.get_mut(&key)?;
        s.seen_at = now;
        Some(s.clone())
    }

    /// Change a session's language.
    pub fn set_lang(&self, id: &str, lang: Lang) {
        let mut map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get_mut(&hash(id)) {
            s.lang = lang;
        }
    }

    /// Forget a session (sign-out, or its token no longer valid).
    pub fn close(&self, id: &str) -> bool {
        let mut map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&hash(id)).is_some()
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.by_hash.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oubli_core::rights::tokens::Role;

    fn caller() -> Caller {
        Caller {
            token: "t".into(),
            name: "ada".into(),
            role: Role::Operator,
        }
    }

    #[test]
    fn sessions_end_when_idle_or_old_and_at_sign_out() {
        let s = Sessions::new(1_000, 5_000);
        let id = s.open(caller(), None, Lang::En, 0).unwrap();
        assert!(s.touch(&id, 999).is_some());
        assert!(s.touch(&id, 1_998).is_some(), "use keeps it alive");
        assert!(s.touch(&id, 2_998).is_none(), "idle past its timeout");
        assert!(s.touch(&id, 3_000).is_none(), "and forgotten");
        let id = s.open(caller(), None, Lang::En, 0).unwrap();
        for t in (500..5_000).step_by(500) {
            assert!(s.touch(&id, t).is_some(), "{t}");
        }
        assert!(
            s.touch(&id, 5_000).is_none(),
            "absolute timeout, used or not"
        );
        let id = s.open(caller(), None, Lang::En, 0).unwrap();
        assert!(s.close(&id));
        assert!(s.touch(&id, 1).is_none());
        assert!(s.touch("not-a-session", 1).is_none());
    }

    #[test]
    fn the_csrf_token_is_the_sessions_own() {
        let s = Sessions::new(1_000, 5_000);
        let a = s
            .touch(&s.open(caller(), None, Lang::En, 0).unwrap(), 1)
            .unwrap();
        let b = s
            .touch(&s.open(caller(), None, Lang::En, 0).unwrap(), 1)
            .unwrap();
        assert!(a.csrf_ok(&a.csrf));
        assert!(!a.csrf_ok(&b.csrf));
        assert!(!a.csrf_ok(""));
        assert!(!format!("{a:?}").contains(&a.csrf), "not in Debug");
    }
}
