//! A bounded cache from an exact sealed session cookie to its decoded session.
//!
//! Opening a sealed cookie (base64, AES-GCM, JSON) on every request costs more than the
//! rest of the hot path together. The default [`CookieStore`](auth_core::CookieStore)
//! is stateless, so the same cookie value always opens to the same session: a map lookup
//! replaces the work, and expiry is still checked on every hit. Only values that opened
//! are cached, so a lookup cannot admit a forged cookie. Server-side stores are not
//! cached: they may revoke a session from another instance.
//!
//! The map is keyed by the last [`KEY_LEN`] bytes of the sealed value (they end with the
//! AES-GCM tag, random and unforgeable) rather than by the whole value: hashing ~1 KB on
//! every request would cost more than the rest of the lookup. Each entry keeps the whole
//! value, and a hit requires it to equal the request's exactly.

use auth_core::{Session, unix_now};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

/// How many sessions are kept; past it, the cache starts over (stays bounded, stays simple).
const CAPACITY: usize = 4096;
/// How many trailing bytes of a sealed value key the map.
const KEY_LEN: usize = 32;

type Key = [u8; KEY_LEN];
/// The whole sealed value, and the session it opened to.
type Entry = (Box<str>, Arc<Session>);

fn key(ticket: &str) -> Key {
    let bytes = ticket.as_bytes();
    let tail = &bytes[bytes.len().saturating_sub(KEY_LEN)..];
    let mut key = [0; KEY_LEN];
    key[..tail.len()].copy_from_slice(tail);
    key
}

pub(crate) struct SessionCache {
    sessions: RwLock<HashMap<Key, Entry>>,
}

impl fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.sessions.read().map_or(0, |m| m.len());
        f.debug_struct("SessionCache").field("len", &len).finish()
    }
}

impl SessionCache {
    pub(crate) fn new() -> Self {
        Self { sessions: RwLock::new(HashMap::new()) }
    }

    /// The live session sealed in `ticket`, when it was opened before.
    pub(crate) fn get(&self, ticket: &str) -> Option<Arc<Session>> {
        let sessions = self.sessions.read().ok()?;
        let (sealed, session) = sessions.get(&key(ticket))?;
        (**sealed == *ticket && !session.is_expired_at(unix_now())).then(|| Arc::clone(session))
    }

    /// Remembers that `ticket` opened to `session`.
    pub(crate) fn insert(&self, ticket: &str, session: Arc<Session>) {
        let Ok(mut sessions) = self.sessions.write() else { return };
        if sessions.len() >= CAPACITY {
            let now = unix_now();
            sessions.retain(|_, (_, s)| !s.is_expired_at(now));
            if sessions.len() >= CAPACITY {
                sessions.clear();
            }
        }
        sessions.insert(key(ticket), (ticket.into(), session));
    }

    /// Forgets `ticket` (logout).
    pub(crate) fn remove(&self, ticket: &str) {
        if let Ok(mut sessions) = self.sessions.write() {
            if sessions.get(&key(ticket)).is_some_and(|(sealed, _)| **sealed == *ticket) {
                sessions.remove(&key(ticket));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::{Identity, TokenSet};

    fn session(lifetime: u64) -> Arc<Session> {
        Arc::new(Session::new(Identity::new("p", "alice", Default::default()), TokenSet::default(), lifetime))
    }

    #[test]
    fn hits_misses_expiry_and_bound() {
        let cache = SessionCache::new();
        cache.insert("a", session(60));
        assert!(cache.get("a").is_some());
        assert!(cache.get("b").is_none());
        cache.insert("expired", session(0));
        assert!(cache.get("expired").is_none(), "expiry is checked on every hit");
        cache.remove("a");
        assert!(cache.get("a").is_none());

        // Same last KEY_LEN bytes, different value: never a hit, and removing one keeps the other.
        let long = format!("x{}", "t".repeat(KEY_LEN));
        let other = format!("y{}", "t".repeat(KEY_LEN));
        cache.insert(&long, session(60));
        assert!(cache.get(&long).is_some());
        assert!(cache.get(&other).is_none());
        cache.remove(&other);
        assert!(cache.get(&long).is_some());
        for i in 0..CAPACITY + 10 {
            cache.insert(&i.to_string(), session(60));
        }
        assert!(cache.sessions.read().map(|m| m.len()).unwrap_or(usize::MAX) <= CAPACITY);
    }
}
