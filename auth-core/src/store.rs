//! [`SessionStore`]: turns a session into a cookie-sized ticket and back.

use crate::seal::Sealer;
use crate::{Session, StoreError, unix_now};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

/// What the session cookie carries: the sealed session, or an opaque id.
pub type Ticket = String;

/// Keeps sessions between requests.
///
/// `load` returns `Ok(None)` for anything that is not a live session (unknown, expired,
/// tampered); `Err` only when the backend itself fails.
#[async_trait]
pub trait SessionStore: Send + Sync + fmt::Debug + 'static {
    /// Stores `session` and returns the ticket for the cookie.
    async fn save(&self, session: &Session) -> Result<Ticket, StoreError>;
    /// The live session behind `ticket`, if any.
    async fn load(&self, ticket: &str) -> Result<Option<Session>, StoreError>;
    /// Forgets the session behind `ticket` (logout); unknown tickets are fine.
    async fn delete(&self, ticket: &str) -> Result<(), StoreError>;
}

/// The purpose (associated data) of sealed session cookies.
pub const SESSION_PURPOSE: &str = "session";

/// The default, stateless store: the ticket is the session itself, sealed.
///
/// Nothing is kept on the server, so any instance with the same `cookie_secret` can
/// read it; logout removes the cookie but cannot revoke a copy taken before.
#[derive(Clone, Debug)]
pub struct CookieStore {
    sealer: Arc<Sealer>,
}

impl CookieStore {
    /// A store sealing with `sealer`.
    pub fn new(sealer: Arc<Sealer>) -> Self {
        Self { sealer }
    }
}

#[async_trait]
impl SessionStore for CookieStore {
    async fn save(&self, session: &Session) -> Result<Ticket, StoreError> {
        let json = serde_json::to_vec(session).map_err(|e| StoreError::Encode(e.to_string()))?;
        Ok(self.sealer.seal(SESSION_PURPOSE, &json))
    }

    async fn load(&self, ticket: &str) -> Result<Option<Session>, StoreError> {
        let Some((json, _current)) = self.sealer.open(SESSION_PURPOSE, ticket) else {
            return Ok(None);
        };
        let session: Option<Session> = serde_json::from_slice(&json).ok();
        Ok(session.filter(|s| !s.is_expired_at(unix_now())))
    }

    async fn delete(&self, _ticket: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A random 256-bit ticket, base64url.
pub fn random_ticket() -> Ticket {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Sessions in this process's memory: tiny cookies and real revocation, for one instance
/// (and for tests). Expired sessions are dropped on access and on every save.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    sessions: Arc<RwLock<HashMap<Ticket, Session>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many live sessions it holds.
    pub fn len(&self) -> usize {
        let now = unix_now();
        self.sessions.read().map_or(0, |m| m.values().filter(|s| !s.is_expired_at(now)).count())
    }

    /// Whether it holds no live session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn save(&self, session: &Session) -> Result<Ticket, StoreError> {
        let ticket = random_ticket();
        let now = unix_now();
        let mut map =
            self.sessions.write().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        map.retain(|_, s| !s.is_expired_at(now));
        map.insert(ticket.clone(), session.clone());
        Ok(ticket)
    }

    async fn load(&self, ticket: &str) -> Result<Option<Session>, StoreError> {
        let map = self.sessions.read().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        Ok(map.get(ticket).filter(|s| !s.is_expired_at(unix_now())).cloned())
    }

    async fn delete(&self, ticket: &str) -> Result<(), StoreError> {
        let mut map =
            self.sessions.write().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        map.remove(ticket);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Identity, TokenSet};

    fn session(lifetime: u64) -> Session {
        Session::new(Identity::new("p", "alice", Default::default()), TokenSet::default(), lifetime)
    }

    #[tokio::test]
    async fn cookie_store_round_trip_and_expiry() {
        let store = CookieStore::new(Arc::new(Sealer::new(&[7; 32], &[])));
        let s = session(60);
        let ticket = store.save(&s).await.expect("save");
        assert_eq!(store.load(&ticket).await.expect("load"), Some(s));
        let expired = store.save(&session(0)).await.expect("save");
        assert_eq!(store.load(&expired).await.expect("load"), None);
        assert_eq!(store.load("v1.tampered").await.expect("load"), None);
    }

    #[tokio::test]
    async fn memory_store_revokes() {
        let store = MemoryStore::new();
        let ticket = store.save(&session(60)).await.expect("save");
        assert_eq!(ticket.len(), 43, "256 bits, base64url");
        assert!(store.load(&ticket).await.expect("load").is_some());
        store.delete(&ticket).await.expect("delete");
        assert_eq!(store.load(&ticket).await.expect("load"), None);
        assert!(store.is_empty());
    }
}
