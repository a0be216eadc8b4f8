//! `cookie_overflow = "store"`: a session too big for its cookie lives in a server-side
//! store, and the cookie carries a small ticket to it.
//!
//! [`OverflowStore`] is the layer's store when sessions live in cookies and the config asks
//! for it. It seals each session as the cookie store does and measures the cookies it would
//! take as the `cookie_budget_bytes` warning measures them (each `NAME=value`, chunks joined
//! by `"; "`). Past the budget, the session is saved in the server-side store given to
//! [`AuthLayerBuilder::with_overflow_store`](crate::AuthLayerBuilder::with_overflow_store)
//! and the cookie carries `o1.` followed by that store's ticket. Sealed values start with
//! `v1.`, so neither can pass for the other; `load` and `delete` go by that prefix.
//!
//! A session that grows past the budget at a refresh moves to the server store. One that
//! is there stays there until it ends, even if it shrinks: other requests and instances may
//! still carry its ticket (a refresh under the store's lock leaves them to find the new
//! session behind the same ticket), and moving it back would end it for them.
//!
//! Capabilities come from the server store, for the sessions it holds: back-channel logout
//! and session listing reach the sessions that overflowed, and the refresh lock is the
//! server store's for them; sessions in their cookie refresh without one, as with the
//! cookie store alone. Overflowed sessions are never put in the layer's cookie cache (the
//! server store may end them), so each of their requests loads them from that store.

use crate::cookies;
use auth_core::async_trait;
use auth_core::{Session, SessionListing, SessionLock, SessionRevocation, SessionStore, StoreError, Ticket};
use std::sync::Arc;
use std::time::Duration;

/// What the cookie of a session in the server store starts with (a sealed value starts
/// with `v1.`; neither prefix can be the other).
pub(crate) const TICKET_PREFIX: &str = "o1.";

/// The server store's ticket in `ticket`, when it is one an [`OverflowStore`] wrote for a
/// session that overflowed; `None` for a sealed session.
pub(crate) fn server_ticket(ticket: &str) -> Option<&str> {
    ticket.strip_prefix(TICKET_PREFIX)
}

/// Sessions in their cookie while they fit `cookie_budget_bytes`, else in a server store.
#[derive(Debug)]
pub(crate) struct OverflowStore {
    /// The configured cookie store (with the layer's cache).
    cookie: Arc<dyn SessionStore>,
    /// Where sessions that do not fit go.
    server: Arc<dyn SessionStore>,
    /// The session cookie's full name, which counts towards the cookie's size.
    cookie_name: String,
    /// `cookie_budget_bytes` (never 0: the config refuses `"store"` without a budget).
    budget: u64,
}

impl OverflowStore {
    pub(crate) fn new(
        cookie: Arc<dyn SessionStore>,
        server: Arc<dyn SessionStore>,
        cookie_name: String,
        budget: u64,
    ) -> Self {
        Self { cookie, server, cookie_name, budget }
    }

    /// Whether the cookies carrying `sealed` fit the budget.
    fn fits(&self, sealed: &str) -> bool {
        cookies::header_bytes(&cookies::split(&self.cookie_name, sealed)) as u64 <= self.budget
    }

    /// Saves `session` in the server store; returns the cookie's ticket.
    async fn overflow(&self, session: &Session) -> Result<Ticket, StoreError> {
        let ticket = self.server.save(session).await?;
        tracing::debug!("a session past cookie_budget_bytes is kept in the overflow store");
        Ok(format!("{TICKET_PREFIX}{ticket}"))
    }
}

#[async_trait]
impl SessionStore for OverflowStore {
    async fn save(&self, session: &Session) -> Result<Ticket, StoreError> {
        let sealed = self.cookie.save(session).await?;
        if self.fits(&sealed) {
            return Ok(sealed);
        }
        self.overflow(session).await
    }

    async fn load(&self, ticket: &str) -> Result<Option<Session>, StoreError> {
        match server_ticket(ticket) {
            Some(ticket) => self.server.load(ticket).await,
            None => self.cookie.load(ticket).await,
        }
    }

    async fn delete(&self, ticket: &str) -> Result<(), StoreError> {
        match server_ticket(ticket) {
            Some(ticket) => self.server.delete(ticket).await,
            None => self.cookie.delete(ticket).await,
        }
    }

    /// A session in the server store is updated there (the same ticket, whatever its size);
    /// one in its cookie is sealed again, and moves to the server store when it no longer fits.
    async fn update(&self, ticket: &str, session: &Session) -> Result<Ticket, StoreError> {
        if let Some(server) = server_ticket(ticket) {
            let updated = self.server.update(server, session).await?;
            return Ok(format!("{TICKET_PREFIX}{updated}"));
        }
        let sealed = self.cookie.update(ticket, session).await?;
        if self.fits(&sealed) {
            return Ok(sealed);
        }
        self.overflow(session).await
    }

    fn lock(&self) -> Option<&dyn SessionLock> {
        Some(self)
    }

    fn revocation(&self) -> Option<&dyn SessionRevocation> {
        self.server.revocation()
    }

    fn listing(&self) -> Option<&dyn SessionListing> {
        self.server.listing()
    }
}

/// The server store's lock for keys naming one of its sessions (the refresh lock
/// `refresh:{ticket}`); a key naming a session in its cookie is granted at once, as the
/// cookie store offers no lock: nothing is shared to coordinate.
#[async_trait]
impl SessionLock for OverflowStore {
    async fn try_lock(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        match self.server.lock() {
            Some(lock) if !names_cookie_session(key) => lock.try_lock(key, ttl).await,
            _ => Ok(true),
        }
    }

    async fn unlock(&self, key: &str) -> Result<(), StoreError> {
        match self.server.lock() {
            Some(lock) if !names_cookie_session(key) => lock.unlock(key).await,
            _ => Ok(()),
        }
    }
}

/// Whether lock `key` (`purpose:ticket`) names a session sealed in its cookie.
fn names_cookie_session(key: &str) -> bool {
    key.split_once(':').is_some_and(|(_, ticket)| server_ticket(ticket).is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::seal::Sealer;
    use auth_core::{CookieStore, Identity, MemoryStore, TokenSet};

    const BUDGET: u64 = 1024;

    fn store() -> (OverflowStore, Arc<MemoryStore>) {
        let cookie = Arc::new(CookieStore::new(Arc::new(Sealer::new(&[7; 32], &[]))));
        let server = Arc::new(MemoryStore::new());
        let store = OverflowStore::new(cookie, Arc::clone(&server) as _, "auth_session".into(), BUDGET);
        (store, server)
    }

    /// A session whose claims hold `bytes` bytes of groups.
    fn session(bytes: usize) -> Session {
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "alice".into());
        claims.insert("groups".into(), "g".repeat(bytes).into());
        Session::new(Identity::new("p", "alice", claims), TokenSet::default(), 60)
    }

    #[tokio::test]
    async fn sessions_past_the_budget_go_to_the_server_store_and_come_back() {
        let (store, server) = store();
        let small = store.save(&session(10)).await.expect("save");
        assert!(small.starts_with("v1.") && server.is_empty(), "a small session stays sealed in its cookie");
        assert!(cookies::header_bytes(&cookies::split("auth_session", &small)) as u64 <= BUDGET);
        let huge = session(2000);
        let big = store.save(&huge).await.expect("save");
        let Some(id) = server_ticket(&big) else { panic!("an overflow ticket: {big}") };
        assert_eq!(id.len(), 43, "the server store's ticket");
        assert_eq!(server.len(), 1);
        assert_eq!(store.load(&big).await.expect("load"), Some(huge));
        assert!(store.load(&small).await.expect("load").is_some());

        assert_eq!(store.load(&format!("{TICKET_PREFIX}tampered")).await.expect("load"), None);
        assert_eq!(store.load(id).await.expect("load"), None, "a bare server ticket is not a sealed session");
        store.delete(&big).await.expect("delete");
        assert!(server.is_empty(), "logout ends it in the server store");
    }

    #[tokio::test]
    async fn a_session_that_grows_moves_to_the_server_store_and_stays() {
        let (store, server) = store();
        let small = store.save(&session(10)).await.expect("save");
        let grown = store.update(&small, &session(2000)).await.expect("update");
        let id = server_ticket(&grown).expect("moved to the server store").to_owned();
        assert_eq!(server.len(), 1);
        let shrunk = store.update(&grown, &session(10)).await.expect("update");
        assert_eq!(shrunk, grown, "stays behind the same ticket, which other requests may carry");
        assert_eq!(server.load(&id).await.expect("load").map(|s| s.identity.claims.to_json().len() < 100), Some(true));
        server.delete(&id).await.expect("revoked meanwhile");
        assert!(store.update(&grown, &session(2000)).await.is_err(), "a revoked session is not brought back");
    }

    #[tokio::test]
    async fn the_server_stores_lock_is_taken_only_for_its_sessions() {
        let (store, _server) = store();
        let lock = store.lock().expect("a lock");
        let ttl = Duration::from_secs(5);
        let server_key = format!("refresh:{TICKET_PREFIX}abc");
        assert!(lock.try_lock(&server_key, ttl).await.expect("lock"));
        assert!(!lock.try_lock(&server_key, ttl).await.expect("lock"), "held in the server store");
        lock.unlock(&server_key).await.expect("unlock");
        assert!(lock.try_lock(&server_key, ttl).await.expect("lock"));
        assert!(lock.try_lock("refresh:v1.sealed", ttl).await.expect("lock"));
        assert!(lock.try_lock("refresh:v1.sealed", ttl).await.expect("lock"), "cookie sessions are not coordinated");
        assert!(store.revocation().is_some() && store.listing().is_some(), "the server store's");
    }
}
