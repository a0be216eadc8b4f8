//! [`SessionStore`]: turns a session into a cookie-sized ticket and back.

use crate::seal::Sealer;
use crate::{Session, StoreError, unix_now};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// What the session cookie carries: the sealed session, or an opaque id.
pub type Ticket = String;

/// Which sessions a back-channel logout ends: those of `provider` matching `sid` when
/// given, else every session of `subject` (the ID token's `sub`, see
/// [`Revocation::subject_of`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Revocation {
    /// The provider whose logout token asked for it.
    pub provider: String,
    /// The logout token's `sub`, when it named one: compared with each session's
    /// [`Revocation::subject_of`], not with [`Identity::subject`](crate::Identity::subject).
    pub subject: Option<String>,
    /// The provider's session id (the ID token's `sid` claim), when named.
    pub sid: Option<String>,
}

impl Revocation {
    /// The sessions of `provider` that a verified logout token names.
    pub fn of(provider: impl Into<String>, claims: crate::LogoutClaims) -> Self {
        Self { provider: provider.into(), subject: claims.subject, sid: claims.sid }
    }

    /// Every session at `provider` whose ID token's `sub` is `subject` (see
    /// [`Revocation::subject_of`]).
    pub fn subject(provider: impl Into<String>, subject: impl Into<String>) -> Self {
        Self { provider: provider.into(), subject: Some(subject.into()), sid: None }
    }

    /// The sessions of `provider` whose ID token carried the session id `sid`.
    pub fn sid(provider: impl Into<String>, sid: impl Into<String>) -> Self {
        Self { provider: provider.into(), subject: None, sid: Some(sid.into()) }
    }

    /// What a logout token's `sub` names `identity` by: its ID token's `sub` claim when it
    /// has one, else [`Identity::subject`](crate::Identity::subject). The two differ where a
    /// preset builds the subject from other claims (Microsoft: `tid:oid`), while the
    /// provider's logout token carries the ID token's `sub`. A store that indexes sessions
    /// by subject for [`SessionRevocation`] indexes them by this.
    pub fn subject_of(identity: &crate::Identity) -> &str {
        match identity.claims.get("sub").and_then(|v| v.as_str()) {
            Some(sub) if !sub.is_empty() => sub,
            _ => &identity.subject,
        }
    }

    /// Whether `session` is one of those to end: by the ID token's `sid` claim when the
    /// logout token named a session, else by [`Revocation::subject_of`].
    pub fn matches(&self, session: &Session) -> bool {
        let identity = &session.identity;
        if identity.provider != self.provider {
            return false;
        }
        match (&self.sid, &self.subject) {
            (Some(sid), _) => identity.claims.get("sid").and_then(|v| v.as_str()) == Some(sid.as_str()),
            (None, Some(subject)) => Self::subject_of(identity) == subject,
            (None, None) => false,
        }
    }
}

/// Keeps sessions between requests: the one trait every store implements.
///
/// `load` returns `Ok(None)` for anything that is not a live session (unknown, expired,
/// tampered); `Err` only when the backend itself fails. What a store can do beyond that
/// is a capability of its own trait, handed out by an accessor: [`SessionLock`] (required
/// to answer, because a store shared by several instances without it would refresh one
/// session twice), [`SessionRevocation`] (back-channel logout) and [`SessionListing`]
/// (every session of a person: "sign out other devices").
///
/// # Implementing a store
///
/// ```
/// use auth_core::{async_trait, Session, SessionLock, SessionStore, StoreError, Ticket, random_token};
/// use std::collections::HashMap;
/// use std::sync::Mutex;
///
/// /// Sessions in a map: one instance only, so it offers no cross-instance lock.
/// #[derive(Debug, Default)]
/// struct MapStore(Mutex<HashMap<Ticket, Session>>);
///
/// #[async_trait]
/// impl SessionStore for MapStore {
///     async fn save(&self, session: &Session) -> Result<Ticket, StoreError> {
///         let ticket = random_token();
///         self.0.lock().map_err(|_| StoreError::Unavailable("poisoned".into()))?.insert(ticket.clone(), session.clone());
///         Ok(ticket)
///     }
///     async fn load(&self, ticket: &str) -> Result<Option<Session>, StoreError> {
///         let map = self.0.lock().map_err(|_| StoreError::Unavailable("poisoned".into()))?;
///         Ok(map.get(ticket).filter(|s| !s.is_expired_at(auth_core::unix_now())).cloned())
///     }
///     async fn delete(&self, ticket: &str) -> Result<(), StoreError> {
///         self.0.lock().map_err(|_| StoreError::Unavailable("poisoned".into()))?.remove(ticket);
///         Ok(())
///     }
///     // A store that several app instances share returns `Some(self)` here and implements
///     // `SessionLock` (see `MemoryStore` or auth-redis's `RedisStore`).
///     fn lock(&self) -> Option<&dyn SessionLock> {
///         None
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), StoreError> {
/// let store = MapStore::default();
/// let session = Session::new(auth_core::Identity::new("p", "alice", Default::default()), Default::default(), 60);
/// let ticket = store.save(&session).await?;
/// assert_eq!(store.load(&ticket).await?, Some(session));
/// assert!(store.lock().is_none() && store.revocation().is_none() && store.listing().is_none());
/// # Ok(()) }
/// ```
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

    /// The lock every instance sharing this store sees, or `None` for a store that only
    /// one instance uses (or that keeps nothing on the server, like [`CookieStore`]).
    ///
    /// With `Some`, the layer refreshes a server-side session under this lock, so that one
    /// session is refreshed once however many instances serve it; without it, only the
    /// requests of one process are coordinated. There is no default: a store shared by
    /// several instances that forgot to say so would spend a rotated refresh token twice.
    fn lock(&self) -> Option<&dyn SessionLock>;

    /// Ending sessions by who they belong to (OpenID Connect back-channel logout), or
    /// `None` (the default) for stores that cannot, such as [`CookieStore`].
    fn revocation(&self) -> Option<&dyn SessionRevocation> {
        None
    }

    /// Listing and ending the sessions of one person ("sign out other devices"), or `None`
    /// (the default) for stores that cannot, such as [`CookieStore`]: it keeps nothing on
    /// the server, so it can neither see a person's other sessions nor end them.
    fn listing(&self) -> Option<&dyn SessionListing> {
        None
    }

    /// The session behind `ticket` from a copy this store holds in memory and knows to be
    /// current, without I/O; `None` (the default) when it has none, and the layer then
    /// calls [`load`](Self::load).
    ///
    /// The layer asks on every request, before anything else, so an answer must be cheap
    /// and must never be a session that was changed or ended since, by this process or any
    /// other: `auth_redis::RedisStore` answers from copies that Redis itself invalidates
    /// (client-side caching). The layer still checks the copy's expiry and provider.
    fn cached(&self, ticket: &str) -> Option<Arc<Session>> {
        let _ = ticket;
        None
    }
}

/// A lock shared by every instance using one store: see [`SessionStore::lock`].
#[async_trait]
pub trait SessionLock: Send + Sync {
    /// Takes the lock `key` for at most `ttl`; `Ok(false)` when another holder has it.
    async fn try_lock(&self, key: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// Releases a lock this holder took with [`try_lock`](Self::try_lock); a lock that
    /// expired and was taken by someone else meanwhile stays theirs.
    async fn unlock(&self, key: &str) -> Result<(), StoreError>;
}

/// Ending sessions by who they belong to: see [`SessionStore::revocation`].
#[async_trait]
pub trait SessionRevocation: Send + Sync {
    /// Ends every session `which` matches and says how many.
    async fn revoke(&self, which: &Revocation) -> Result<usize, StoreError>;
}

/// Every session of one person, and ending them: see [`SessionStore::listing`].
///
/// A person is a provider and the subject a back-channel logout names them by: the ID
/// token's `sub` ([`Revocation::subject_of`], which differs from
/// [`Identity::subject`](crate::Identity::subject) for Microsoft), so a store can serve both
/// from one index. Sessions are named by their [`session_handle`], never by their ticket
/// (the cookie's secret); a handle of someone else's session ends nothing.
#[async_trait]
pub trait SessionListing: Send + Sync {
    /// The live sessions of `subject` at `provider`, oldest first; ended and expired ones
    /// are not listed.
    async fn sessions(&self, provider: &str, subject: &str) -> Result<Vec<SessionInfo>, StoreError>;

    /// Ends the session of `subject` at `provider` whose handle is `handle`; `Ok(false)`
    /// when that person has no live session with this handle.
    async fn end(&self, provider: &str, subject: &str, handle: &str) -> Result<bool, StoreError>;

    /// Ends every session of `subject` at `provider` except the one whose handle is
    /// `except` (none: every one), and says how many live sessions ended.
    async fn end_all(&self, provider: &str, subject: &str, except: Option<&str>) -> Result<usize, StoreError>;
}

/// One session of a person, as [`SessionListing::sessions`] lists it: nothing secret, no
/// token, no claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SessionInfo {
    /// Names the session without revealing its ticket ([`session_handle`]): what
    /// [`SessionListing::end`] takes.
    pub handle: String,
    /// The provider the person signed in with.
    pub provider: String,
    /// When the login completed, in Unix seconds.
    pub created_at: u64,
    /// When the session was last written, in Unix seconds: the login, the last token
    /// refresh or the last idle-timeout renewal ([`Session::updated_at`], else
    /// `created_at`). Not the last request: a session that is only read is not written. With
    /// `idle_timeout_secs`, it lags the last request by less than a tenth of that window (or
    /// a second).
    pub last_seen: u64,
    /// When the session ends unless renewed, in Unix seconds ([`Session::deadline`]).
    pub ends_at: u64,
    /// A short summary of the browser that signed in ([`Session::device`]), when known.
    pub device: Option<String>,
}

impl SessionInfo {
    /// What may be shown of `session`, stored behind `ticket`.
    pub fn new(ticket: &str, session: &Session) -> Self {
        Self {
            handle: session_handle(ticket),
            provider: session.identity.provider.clone(),
            created_at: session.created_at,
            last_seen: session.updated_at.unwrap_or(session.created_at),
            ends_at: session.deadline(),
            device: session.device.clone(),
        }
    }
}

/// The handle of the session behind `ticket`: the first 16 bytes of the ticket's SHA-256,
/// base64url (22 characters). It names the session in lists and forms; it cannot be turned
/// back into the ticket, so it does not sign anyone in.
pub fn session_handle(ticket: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(ticket.as_bytes())[..16])
}

/// Oldest first; ties by handle, so a list comes out in the same order every time.
fn oldest_first(sessions: &mut [SessionInfo]) {
    sessions.sort_by(|a, b| (a.created_at, &a.handle).cmp(&(b.created_at, &b.handle)));
}

/// The purpose (associated data) of sealed session cookies.
pub const SESSION_PURPOSE: &str = "session";

/// The default, stateless store: the ticket is the session itself, sealed.
///
/// Nothing is kept on the server, so any instance with the same `cookie_secret` can
/// read it; logout removes the cookie but cannot revoke a copy taken before.
///
/// The session is sealed in a compact binary form (version 2: the fields one after the
/// other, the claims as their JSON text, decoded only when read). Cookies sealed as JSON
/// by earlier versions still open; a version this one does not know reads as no session
/// (the person signs in again).
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
        Ok(self.sealer.seal(SESSION_PURPOSE, &crate::codec::encode(session)))
    }

    async fn load(&self, ticket: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.open(ticket).map(|(session, _)| session).filter(|s| !s.is_expired_at(unix_now())))
    }

    async fn delete(&self, _ticket: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn update(&self, _ticket: &str, session: &Session) -> Result<Ticket, StoreError> {
        self.save(session).await
    }

    fn lock(&self) -> Option<&dyn SessionLock> {
        None
    }
}

impl CookieStore {
    /// The session sealed in `ticket`, and whether it was sealed with the current secret
    /// (`false`: with a previous one), without waiting for anything; `None` when it does
    /// not open. Its expiry is not checked ([`load`](SessionStore::load) checks it).
    pub fn open(&self, ticket: &str) -> Option<(Session, bool)> {
        let (payload, current) = self.sealer.open(SESSION_PURPOSE, ticket)?;
        Some((crate::codec::decode(&payload)?, current))
    }

    /// Whether `ticket` opens only with one of the previous secrets, so that the session
    /// should be sealed again with the current one (secret rotation). The layer asks after
    /// a cache miss on a session it loaded from this store.
    pub fn needs_reissue(&self, ticket: &str) -> bool {
        self.sealer.has_previous() && self.sealer.open(SESSION_PURPOSE, ticket).is_some_and(|(_, current)| !current)
    }
}

/// A random 256-bit value, base64url (43 characters): for tickets, `state` and `nonce`.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Sessions in this process's memory: tiny cookies, real revocation and a list of each
/// person's sessions, for one instance (and for tests). Expired sessions are dropped on access and on every save.
///
/// `Debug` shows how many sessions it holds, never a ticket or a claim.
#[derive(Clone, Default)]
pub struct MemoryStore {
    sessions: Arc<RwLock<HashMap<Ticket, Session>>>,
    locks: Arc<std::sync::Mutex<HashMap<String, std::time::Instant>>>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sessions = self.sessions.read().map_or(0, |m| m.len());
        f.debug_struct("MemoryStore").field("sessions", &sessions).finish_non_exhaustive()
    }
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
        let ticket = random_token();
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

    fn lock(&self) -> Option<&dyn SessionLock> {
        Some(self)
    }

    fn revocation(&self) -> Option<&dyn SessionRevocation> {
        Some(self)
    }

    fn listing(&self) -> Option<&dyn SessionListing> {
        Some(self)
    }
}

/// Looks through every session in the map (it is one process's sessions).
#[async_trait]
impl SessionListing for MemoryStore {
    async fn sessions(&self, provider: &str, subject: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let owner = Revocation::subject(provider, subject);
        let now = unix_now();
        let mut found: Vec<SessionInfo> = {
            let map = self.sessions.read().map_err(|_| poisoned())?;
            map.iter()
                .filter(|(_, s)| owner.matches(s) && !s.is_expired_at(now))
                .map(|(ticket, s)| SessionInfo::new(ticket, s))
                .collect()
        };
        oldest_first(&mut found);
        Ok(found)
    }

    async fn end(&self, provider: &str, subject: &str, handle: &str) -> Result<bool, StoreError> {
        let owner = Revocation::subject(provider, subject);
        let mut map = self.write()?;
        let found = map.iter().find(|(ticket, s)| owner.matches(s) && session_handle(ticket) == handle);
        let Some((ticket, session)) = found else { return Ok(false) };
        let (ticket, live) = (ticket.clone(), !session.is_expired_at(unix_now()));
        map.remove(&ticket);
        Ok(live)
    }

    async fn end_all(&self, provider: &str, subject: &str, except: Option<&str>) -> Result<usize, StoreError> {
        let owner = Revocation::subject(provider, subject);
        let now = unix_now();
        let mut ended = 0;
        self.write()?.retain(|ticket, s| {
            let end = owner.matches(s) && except.is_none_or(|keep| session_handle(ticket) != keep);
            if end && !s.is_expired_at(now) {
                ended += 1;
            }
            !end
        });
        Ok(ended)
    }
}

#[async_trait]
impl SessionRevocation for MemoryStore {
    async fn revoke(&self, which: &Revocation) -> Result<usize, StoreError> {
        let mut map = self.write()?;
        let before = map.len();
        map.retain(|_, s| !which.matches(s));
        Ok(before - map.len())
    }
}

/// In-process only: the refreshes of one process's layers that share this store.
#[async_trait]
impl SessionLock for MemoryStore {
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
        assert!(store.listing().is_none(), "nothing on the server to list");
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
        store.save(&session(60)).await.expect("save");
        assert_eq!(format!("{store:?}"), "MemoryStore { sessions: 1, .. }", "no ticket, no claim");
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

        let by_sid = Revocation::sid("p", "sid-1");
        assert_eq!(store.revoke(&by_sid).await.expect("revoke"), 1);
        assert!(store.load(&other).await.expect("load").is_some(), "another sid is kept");
        assert!(store.update(&ticket, &s).await.is_err(), "a revoked session is not resurrected");
        let by_sub = Revocation::subject("p", "alice");
        let wrong_provider = Revocation::subject("q", "alice");
        assert_eq!(store.revoke(&wrong_provider).await.expect("revoke"), 0);
        assert_eq!(store.revoke(&by_sub).await.expect("revoke"), 1);

        assert!(store.try_lock("k", Duration::from_secs(5)).await.expect("lock"));
        assert!(!store.try_lock("k", Duration::from_secs(5)).await.expect("lock"));
        store.unlock("k").await.expect("unlock");
        assert!(store.try_lock("k", Duration::from_millis(1)).await.expect("lock"));
        std::thread::sleep(Duration::from_millis(5));
        assert!(store.try_lock("k", Duration::from_secs(5)).await.expect("lock"), "an expired lock is free");
    }

    #[tokio::test]
    async fn memory_store_lists_and_ends_the_sessions_of_one_person() {
        let store = MemoryStore::new();
        let listing = store.listing().expect("a memory store lists sessions");
        let now = unix_now();
        let mut first = session(60).with_updated_at(Some(now - 10)).with_device(Some("Firefox on Linux".into()));
        first.created_at = now - 100;
        let a = store.save(&first).await.expect("save");
        let b = store.save(&session(60)).await.expect("save");
        let c = store.save(&session(60)).await.expect("save");
        let bob = Session::new(Identity::new("p", "bob", Default::default()), TokenSet::default(), 60);
        let bob = store.save(&bob).await.expect("save");
        let elsewhere = Session::new(Identity::new("q", "alice", Default::default()), TokenSet::default(), 60);
        let elsewhere = store.save(&elsewhere).await.expect("save");
        store.save(&session(0)).await.expect("an ended session of alice's");

        let listed = listing.sessions("p", "alice").await.expect("list");
        assert_eq!(listed.len(), 3, "alice's live sessions at p: {listed:?}");
        let expected = SessionInfo {
            handle: session_handle(&a),
            provider: "p".into(),
            created_at: now - 100,
            last_seen: now - 10,
            ends_at: first.deadline(),
            device: Some("Firefox on Linux".into()),
        };
        assert_eq!(listed[0], expected, "oldest first, with what may be shown");
        assert_eq!(listed[1].last_seen, listed[1].created_at, "never written since the login");
        for info in &listed {
            assert_eq!(info.handle.len(), 22, "128 bits, base64url");
            assert!(![&a, &b, &c].iter().any(|t| t.contains(&info.handle)), "a handle is not the ticket");
        }
        let debug = format!("{listed:?}");
        assert!(![&a, &b, &c].iter().any(|t| debug.contains(t.as_str())), "no ticket in {debug}");

        assert!(!listing.end("p", "bob", &session_handle(&b)).await.expect("end"), "not bob's session");
        assert!(!listing.end("q", "alice", &session_handle(&b)).await.expect("end"), "nor another provider's");
        assert!(store.load(&b).await.expect("load").is_some());
        assert!(listing.end("p", "alice", &session_handle(&b)).await.expect("end"));
        assert_eq!(store.load(&b).await.expect("load"), None);
        assert!(!listing.end("p", "alice", &session_handle(&b)).await.expect("end"), "already ended");

        assert_eq!(listing.end_all("p", "alice", Some(&session_handle(&a))).await.expect("end all"), 1, "c");
        assert!(store.load(&a).await.expect("load").is_some(), "the one kept");
        assert_eq!(store.load(&c).await.expect("load"), None);
        assert_eq!(listing.sessions("p", "alice").await.expect("list").len(), 1);
        assert_eq!(listing.end_all("p", "alice", None).await.expect("end all"), 1);
        assert!(listing.sessions("p", "alice").await.expect("list").is_empty());
        assert!(
            store.load(&bob).await.expect("load").is_some() && store.load(&elsewhere).await.expect("load").is_some()
        );
        assert_eq!(listing.sessions("p", "bob").await.expect("list").len(), 1);
    }

    #[tokio::test]
    async fn memory_store_lists_by_the_id_token_sub_as_back_channel_logout_does() {
        let store = MemoryStore::new();
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "abc".into());
        let microsoft = Session::new(Identity::new("microsoft", "tid:oid", claims), TokenSet::default(), 60);
        let ticket = store.save(&microsoft).await.expect("save");
        let listing = store.listing().expect("listing");
        assert_eq!(listing.sessions("microsoft", "abc").await.expect("list").len(), 1);
        assert!(listing.sessions("microsoft", "tid:oid").await.expect("list").is_empty());
        assert!(listing.end("microsoft", "abc", &session_handle(&ticket)).await.expect("end"));
    }

    #[test]
    fn handles_are_short_stable_hashes() {
        let ticket = random_token();
        assert_eq!(session_handle(&ticket), session_handle(&ticket));
        assert_ne!(session_handle(&ticket), session_handle(&random_token()));
        // SHA-256("abc") starts ba7816bf8f01cfea414140de5dae2223.
        assert_eq!(
            session_handle("abc"),
            URL_SAFE_NO_PAD.encode([
                0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23
            ])
        );
    }

    #[test]
    fn a_subject_revocation_matches_the_id_token_sub_not_the_preset_subject() {
        // Microsoft: the session's subject is `tid:oid`, the logout token's `sub` the ID token's.
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "abc".into());
        claims.insert("tid".into(), "tid".into());
        claims.insert("oid".into(), "oid".into());
        let microsoft = Session::new(Identity::new("microsoft", "tid:oid", claims), TokenSet::default(), 60);
        assert_eq!(Revocation::subject_of(&microsoft.identity), "abc");
        assert!(Revocation::subject("microsoft", "abc").matches(&microsoft));
        assert!(!Revocation::subject("microsoft", "tid:oid").matches(&microsoft), "not by the preset's subject");
        assert!(!Revocation::subject("google", "abc").matches(&microsoft), "another provider's");

        // Without a `sub` claim (a custom provider's identity), the subject stands in.
        let bare = session(60);
        assert_eq!(Revocation::subject_of(&bare.identity), "alice");
        assert!(Revocation::subject("p", "alice").matches(&bare));
    }
}
