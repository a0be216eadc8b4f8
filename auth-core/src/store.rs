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
use std::time::Duration;

/// What the session cookie carries: the sealed session, or an opaque id.
pub type Ticket = String;

/// Which sessions a back-channel logout ends: those of `provider` matching `sid` when
/// given, else every session of `subject`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// The provider whose logout token asked for it.
    pub provider: String,
    /// The subject (`Identity::subject`), when the logout token named one.
    pub subject: Option<String>,
    /// The provider's session id (the ID token's `sid` claim), when named.
    pub sid: Option<String>,
}

impl Revocation {
    /// The sessions of `provider` that a verified logout token names.
    pub fn of(provider: impl Into<String>, claims: crate::LogoutClaims) -> Self {
        Self { provider: provider.into(), subject: claims.subject, sid: claims.sid }
    }

    /// Whether `session` is one of those to end.
    pub fn matches(&self, session: &Session) -> bool {
        let identity = &session.identity;
        if identity.provider != self.provider {
            return false;
        }
        match (&self.sid, &self.subject) {
            (Some(sid), _) => identity.claims.get("sid").and_then(|v| v.as_str()) == Some(sid.as_str()),
            (None, Some(subject)) => identity.subject == *subject,
            (None, None) => false,
        }
    }
}

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

    /// Replaces the session behind `ticket` (after a refresh or a renewal) and returns the
    /// ticket the cookie must carry from now on: the same id for server-side stores, a new
    /// sealed value for the cookie store. The default saves anew and forgets the old one.
    async fn update(&self, ticket: &str, session: &Session) -> Result<Ticket, StoreError> {
        let new = self.save(session).await?;
        self.delete(ticket).await?;
        Ok(new)
    }

    /// Ends every session `which` matches (OpenID Connect back-channel logout) and says how
    /// many. Only server-side stores can: the default is [`StoreError::Unsupported`].
    async fn revoke(&self, which: &Revocation) -> Result<usize, StoreError> {
        let _ = which;
        Err(StoreError::Unsupported("revoking sessions (use a server-side store)"))
    }

    /// Takes the lock `key` for at most `ttl`, shared by every instance using this store;
    /// `Ok(false)` when another holder has it. Refreshes use it so that one session is
    /// refreshed once at a time. The default is a lock that is always free (no sharing).
    async fn try_lock(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let _ = (key, ttl);
        Ok(true)
    }

    /// Releases a lock taken with [`try_lock`](Self::try_lock).
    async fn unlock(&self, key: &str) -> Result<(), StoreError> {
        let _ = key;
        Ok(())
    }

    /// Whether sessions live on the server behind random tickets (revocable, tiny cookies).
    fn is_server_side(&self) -> bool {
        false
    }

    /// Whether the cookie carrying `ticket`, which just loaded, should be written again
    /// although its session did not change; the layer then calls [`update`](Self::update)
    /// and sets the cookie it returns. The cookie store says so for a session sealed with
    /// one of `previous_cookie_secrets`, so that secret rotation re-seals live sessions.
    /// Called only after a successful [`load`](Self::load), never for cached sessions.
    fn needs_reissue(&self, ticket: &str) -> bool {
        let _ = ticket;
        false
    }
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

    async fn update(&self, _ticket: &str, session: &Session) -> Result<Ticket, StoreError> {
        self.save(session).await
    }

    fn needs_reissue(&self, ticket: &str) -> bool {
        self.sealer.has_previous() && self.sealer.open(SESSION_PURPOSE, ticket).is_some_and(|(_, current)| !current)
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
    locks: Arc<std::sync::Mutex<HashMap<String, std::time::Instant>>>,
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

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, HashMap<Ticket, Session>>, StoreError> {
        self.sessions.write().map_err(|_| poisoned())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn save(&self, session: &Session) -> Result<Ticket, StoreError> {
        let ticket = random_ticket();
        let now = unix_now();
        let mut map = self.sessions.write().map_err(|_| poisoned())?;
        map.retain(|_, s| !s.is_expired_at(now));
        map.insert(ticket.clone(), session.clone());
        Ok(ticket)
    }

    async fn load(&self, ticket: &str) -> Result<Option<Session>, StoreError> {
        let map = self.sessions.read().map_err(|_| poisoned())?;
        Ok(map.get(ticket).filter(|s| !s.is_expired_at(unix_now())).cloned())
    }

    async fn delete(&self, ticket: &str) -> Result<(), StoreError> {
        self.write()?.remove(ticket);
        Ok(())
    }

    async fn update(&self, ticket: &str, session: &Session) -> Result<Ticket, StoreError> {
        let mut map = self.write()?;
        if !map.contains_key(ticket) {
            return Err(StoreError::Unavailable("the session was revoked while it was being updated".into()));
        }
        map.insert(ticket.to_owned(), session.clone());
        Ok(ticket.to_owned())
    }

    async fn revoke(&self, which: &Revocation) -> Result<usize, StoreError> {
        let mut map = self.write()?;
        let before = map.len();
        map.retain(|_, s| !which.matches(s));
        Ok(before - map.len())
    }

    async fn try_lock(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = std::time::Instant::now();
        let mut locks = self.locks.lock().map_err(|_| poisoned())?;
        locks.retain(|_, until| *until > now);
        if locks.contains_key(key) {
            return Ok(false);
        }
        locks.insert(key.to_owned(), now + ttl);
        Ok(true)
    }

    async fn unlock(&self, key: &str) -> Result<(), StoreError> {
        self.locks.lock().map_err(|_| poisoned())?.remove(key);
        Ok(())
    }

    fn is_server_side(&self) -> bool {
        true
    }
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("memory store lock poisoned".into())
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
        assert!(!store.needs_reissue(&ticket), "no previous secrets, nothing to re-seal");
    }

    #[tokio::test]
    async fn cookie_store_asks_to_reseal_sessions_of_previous_secrets() {
        let old = CookieStore::new(Arc::new(Sealer::new(&[1; 32], &[])));
        let rotated = CookieStore::new(Arc::new(Sealer::new(&[2; 32], &[&[1; 32]])));
        let s = session(60);
        let old_ticket = old.save(&s).await.expect("save");
        assert_eq!(rotated.load(&old_ticket).await.expect("load"), Some(s.clone()), "still opens");
        assert!(rotated.needs_reissue(&old_ticket));
        let resealed = rotated.update(&old_ticket, &s).await.expect("update");
        assert!(!rotated.needs_reissue(&resealed));
        assert_eq!(old.load(&resealed).await.expect("load"), None, "sealed with the new secret");
        assert!(!rotated.needs_reissue("v1.garbage"));
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

    #[tokio::test]
    async fn memory_store_updates_revokes_and_locks() {
        let store = MemoryStore::new();
        let mut s = session(60);
        s.identity.claims.insert("sid".into(), "sid-1".into());
        let ticket = store.save(&s).await.expect("save");
        let other = store.save(&session(60)).await.expect("save");
        s.tokens.access_token = Some("fresh".into());
        assert_eq!(store.update(&ticket, &s).await.expect("update"), ticket);
        assert_eq!(store.load(&ticket).await.expect("load").and_then(|s| s.tokens.access_token), Some("fresh".into()));

        let by_sid = Revocation { provider: "p".into(), subject: None, sid: Some("sid-1".into()) };
        assert_eq!(store.revoke(&by_sid).await.expect("revoke"), 1);
        assert!(store.load(&other).await.expect("load").is_some(), "another sid is kept");
        assert!(store.update(&ticket, &s).await.is_err(), "a revoked session is not resurrected");
        let by_sub = Revocation { provider: "p".into(), subject: Some("alice".into()), sid: None };
        let wrong_provider = Revocation { provider: "q".into(), ..by_sub.clone() };
        assert_eq!(store.revoke(&wrong_provider).await.expect("revoke"), 0);
        assert_eq!(store.revoke(&by_sub).await.expect("revoke"), 1);

        assert!(store.try_lock("k", Duration::from_secs(5)).await.expect("lock"));
        assert!(!store.try_lock("k", Duration::from_secs(5)).await.expect("lock"));
        store.unlock("k").await.expect("unlock");
        assert!(store.try_lock("k", Duration::from_millis(1)).await.expect("lock"));
        std::thread::sleep(Duration::from_millis(5));
        assert!(store.try_lock("k", Duration::from_secs(5)).await.expect("lock"), "an expired lock is free");
    }
}
