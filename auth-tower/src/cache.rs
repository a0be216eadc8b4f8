//! A bounded cache from an exact sealed session cookie to its decoded session.
//!
//! Opening a sealed cookie (base64, AES-GCM, the binary session) costs about as much as
//! the rest of the hot path together. The default [`CookieStore`](auth_core::CookieStore)
//! is stateless, so the same cookie value always opens to the same session: a map lookup
//! replaces the work, and expiry is still checked on every hit. Only values that opened
//! are cached, so a lookup cannot admit a forged cookie. Server-side stores are not
//! cached: they may revoke a session from another instance. The layer keeps a second one
//! for verified bearer tokens (a JWT ends with its signature, as unforgeable as a tag).
//!
//! The map is keyed by the last [`KEY_LEN`] bytes of the sealed value (they end with the
//! AES-GCM tag, random and unforgeable) rather than by the whole value: hashing ~1 KB on
//! every request would cost more than the rest of the lookup. Each entry keeps the whole
//! value, and a hit requires it to equal the request's exactly. The key is hashed with a
//! multiply-rotate hasher rather than SipHash (its bytes are random and only values that
//! opened are inserted), and the caller passes the clock it already read.
//!
//! Its size is `session_cache_entries` (default 10,000, about 2 KB per entry for a typical
//! login). The map is split into [`SHARDS`] parts, each behind its own lock, so that
//! requests on many cores rarely wait for each other; a full part evicts one entry per
//! insert. The opened session is shared (`Arc`) by every request of the same cookie.

use auth_core::{Session, SessionLock, SessionRevocation, SessionStore, StoreError, async_trait};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};

/// How many verified bearer tokens the layer keeps (the session cache's size is
/// `session_cache_entries`).
pub(crate) const BEARER_CAPACITY: usize = 4096;
/// How many independently locked parts the map is split into, so that requests on many
/// cores rarely wait for each other (an insert takes one part's write lock).
const SHARDS: usize = 16;
/// How many trailing bytes of a sealed value key the map.
const KEY_LEN: usize = 32;

type Key = [u8; KEY_LEN];
/// The whole sealed value, and the session it opened to.
type Entry = (Box<str>, Arc<Session>);

/// The key of the value made of `parts` joined: its last [`KEY_LEN`] bytes, left-aligned
/// and zero-padded when it is shorter.
fn key(parts: &[(usize, &[u8])]) -> Key {
    let total: usize = parts.iter().map(|(_, p)| p.len()).sum();
    let mut key = [0; KEY_LEN];
    let mut pos = total.min(KEY_LEN);
    for (_, part) in parts.iter().rev() {
        if pos == 0 {
            break;
        }
        let bytes = *part;
        let n = pos.min(bytes.len());
        key[pos - n..pos].copy_from_slice(&bytes[bytes.len() - n..]);
        pos -= n;
    }
    key
}

/// Whether `sealed` is exactly `parts` joined.
fn equals(sealed: &str, parts: &[(usize, &[u8])]) -> bool {
    let mut rest = sealed.as_bytes();
    for (_, part) in parts {
        let Some((head, tail)) = rest.split_at_checked(part.len()) else { return false };
        if head != *part {
            return false;
        }
        rest = tail;
    }
    rest.is_empty()
}

/// A multiply-rotate hasher (as FxHash) for keys that end with an AES-GCM tag: they are
/// random, and only values that opened are inserted, so SipHash's protection against
/// chosen keys buys nothing here; a hit still compares the whole value.
#[derive(Default)]
struct TagHasher(u64);

impl Hasher for TagHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_usize(&mut self, _len: usize) {
        // Only the length prefix of the fixed-size key: always KEY_LEN.
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Map = HashMap<Key, Entry, BuildHasherDefault<TagHasher>>;

pub(crate) struct SessionCache {
    shards: Box<[RwLock<Map>]>,
    /// How many entries each shard keeps at most.
    per_shard: usize,
}

impl fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCache").field("len", &self.len()).finish()
    }
}

impl SessionCache {
    /// A cache of at most about `capacity` sessions (rounded up to a multiple of the
    /// number of shards; at least one per shard).
    pub(crate) fn new(capacity: usize) -> Self {
        let shards = (0..SHARDS).map(|_| RwLock::new(Map::default())).collect();
        Self { shards, per_shard: capacity.div_ceil(SHARDS).max(1) }
    }

    /// The shard of `key`: from its first eight bytes (random for sealed values and
    /// signatures: ciphertext or tag; the start of a value shorter than the key), mixed by
    /// a multiplication.
    fn shard(&self, key: &Key) -> &RwLock<Map> {
        let mut head = [0; 8];
        head.copy_from_slice(&key[..8]);
        let mixed = u64::from_le_bytes(head).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        &self.shards[(mixed >> 32) as usize % SHARDS]
    }

    /// How many sessions are cached.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.read().map_or(0, |m| m.len())).sum()
    }

    /// The session sealed in `ticket`, when it was opened before and is live at `now`.
    pub(crate) fn get(&self, ticket: &str, now: u64) -> Option<Arc<Session>> {
        self.get_parts(&[(0, ticket.as_bytes())], now)
    }

    /// As [`get`](Self::get), for the sealed value made of `parts` joined (the chunks of
    /// a split cookie, in order), without joining them. The parts need not be validated as
    /// text: a hit means they equal a value that was.
    pub(crate) fn get_parts(&self, parts: &[(usize, &[u8])], now: u64) -> Option<Arc<Session>> {
        let key = key(parts);
        let sessions = self.shard(&key).read().ok()?;
        let (sealed, session) = sessions.get(&key)?;
        (equals(sealed, parts) && !session.is_expired_at(now)).then(|| Arc::clone(session))
    }

    /// Remembers that `ticket` opened to `session`. A full shard evicts one entry, the
    /// first in the map's order: the keys are random (tags, signatures), so that is a random
    /// one, in constant time. Never the whole cache: a client replaying stale cookies (each
    /// renewal mints a new value) cannot flush everyone else's sessions.
    pub(crate) fn insert(&self, ticket: &str, session: Arc<Session>) {
        let key = key(&[(0, ticket.as_bytes())]);
        let Ok(mut sessions) = self.shard(&key).write() else { return };
        if sessions.len() >= self.per_shard
            && !sessions.contains_key(&key)
            && let Some(victim) = sessions.keys().next().copied()
        {
            sessions.remove(&victim);
        }
        sessions.insert(key, (ticket.into(), session));
    }

    /// Inserts `ticket` as [`insert`](Self::insert) does, then asks `ended` whether its
    /// session was signed out meanwhile and takes the entry back if so. With a logout that
    /// records the login first and then [`forget`](Self::forget)s its entries, no order of
    /// the four steps leaves a signed-out session cached: a logout recorded before the
    /// question is seen by it, one recorded after it forgets the entry. Asking before
    /// inserting would leave one (the logout landing between the question and the insert).
    pub(crate) fn insert_unless(&self, ticket: &str, session: Arc<Session>, ended: impl FnOnce(&Session) -> bool) {
        self.insert(ticket, Arc::clone(&session));
        if ended(&session) {
            self.remove(ticket);
        }
    }

    /// Forgets every session `ended` says ended (all cookies of a login signed out). Takes
    /// each shard's write lock for one pass over it: logouts are rare beside requests.
    pub(crate) fn forget(&self, ended: impl Fn(&Session) -> bool) {
        for shard in &self.shards {
            if let Ok(mut sessions) = shard.write() {
                sessions.retain(|_, (_, session)| !ended(session));
            }
        }
    }

    /// Forgets `ticket` (logout).
    pub(crate) fn remove(&self, ticket: &str) {
        let key = key(&[(0, ticket.as_bytes())]);
        if let Ok(mut sessions) = self.shard(&key).write()
            && sessions.get(&key).is_some_and(|(sealed, _)| **sealed == *ticket)
        {
            sessions.remove(&key);
        }
    }
}

/// The configured cookie store with its [`SessionCache`] kept in step: every `delete` and
/// `update` forgets the ticket it ends, so no call site can leave a cached session behind
/// (logout, a refused refresh, a renewal, a second login). Adding to the cache stays the
/// layer's explicit step, taken once a loaded session passed every check (expiry,
/// provider, admission, logout), so a session that fails them is never cached.
#[derive(Debug)]
pub(crate) struct CachedStore {
    inner: Arc<dyn SessionStore>,
    cache: Arc<SessionCache>,
}

impl CachedStore {
    pub(crate) fn new(inner: Arc<dyn SessionStore>, cache: Arc<SessionCache>) -> Self {
        Self { inner, cache }
    }
}

#[async_trait]
impl SessionStore for CachedStore {
    async fn save(&self, session: &Session) -> Result<String, StoreError> {
        self.inner.save(session).await
    }

    async fn load(&self, ticket: &str) -> Result<Option<Session>, StoreError> {
        self.inner.load(ticket).await
    }

    async fn delete(&self, ticket: &str) -> Result<(), StoreError> {
        self.cache.remove(ticket);
        self.inner.delete(ticket).await
    }

    async fn update(&self, ticket: &str, session: &Session) -> Result<String, StoreError> {
        self.cache.remove(ticket);
        self.inner.update(ticket, session).await
    }

    fn lock(&self) -> Option<&dyn SessionLock> {
        self.inner.lock()
    }

    fn revocation(&self) -> Option<&dyn SessionRevocation> {
        self.inner.revocation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::{Identity, TokenSet, unix_now};

    fn session(lifetime: u64) -> Arc<Session> {
        Arc::new(Session::new(Identity::new("p", "alice", Default::default()), TokenSet::default(), lifetime))
    }

    const CAPACITY: usize = 4096;

    /// A request opened `ticket` (a cache miss) and caches it while a logout of the same
    /// login runs on another thread. The logout's steps, in the order the logout route takes
    /// them: record the login as ended, then forget its cached entries.
    fn logout(cache: &SessionCache, ended: &crate::state::EndedLogins, session: &Session, ticket: &str) {
        ended.end(session, ticket, crate::state::unix_millis());
        cache.forget(|cached| crate::state::EndedLogins::same_login(cached, session));
    }

    #[test]
    fn a_logout_racing_a_cache_insert_never_leaves_the_session_cached() {
        let signed_in = || {
            let session = Session::new(Identity::new("p", "alice", Default::default()), TokenSet::default(), 600)
                .with_login_id(Some("login-1".into()));
            Arc::new(session)
        };
        let ticket = "v1.sealed-cookie-value-of-alice-0123456789abcdefghijklmnop";

        // No logout: the insert stays (the other cases are not vacuous).
        let (cache, ended) = (SessionCache::new(CAPACITY), crate::state::EndedLogins::default());
        cache.insert_unless(ticket, signed_in(), |s| ended.signed_out(s, ticket));
        assert!(cache.get(ticket, unix_now()).is_some());

        // The logout finished before the insert (after the request opened the cookie).
        let (cache, ended) = (SessionCache::new(CAPACITY), crate::state::EndedLogins::default());
        let session = signed_in();
        logout(&cache, &ended, &session, ticket);
        cache.insert_unless(ticket, session, |s| ended.signed_out(s, ticket));
        assert!(cache.get(ticket, unix_now()).is_none(), "a logout before the insert");

        // The logout lands between the insert and the question.
        let (cache, ended) = (SessionCache::new(CAPACITY), crate::state::EndedLogins::default());
        let session = signed_in();
        cache.insert_unless(ticket, Arc::clone(&session), |s| {
            logout(&cache, &ended, &session, ticket);
            ended.signed_out(s, ticket)
        });
        assert!(cache.get(ticket, unix_now()).is_none(), "a logout between the insert and the question");

        // The logout lands right after the question was answered "not signed out": only an
        // insert made before the question is forgotten by it.
        let (cache, ended) = (SessionCache::new(CAPACITY), crate::state::EndedLogins::default());
        let session = signed_in();
        cache.insert_unless(ticket, Arc::clone(&session), |s| {
            let answer = ended.signed_out(s, ticket);
            logout(&cache, &ended, &session, ticket);
            answer
        });
        assert!(cache.get(ticket, unix_now()).is_none(), "a logout right after the question");

        // Between the two steps of the logout (recorded, not yet forgotten).
        let (cache, ended) = (SessionCache::new(CAPACITY), crate::state::EndedLogins::default());
        let session = signed_in();
        ended.end(&session, ticket, crate::state::unix_millis());
        cache.insert_unless(ticket, Arc::clone(&session), |s| ended.signed_out(s, ticket));
        cache.forget(|cached| crate::state::EndedLogins::same_login(cached, &session));
        assert!(cache.get(ticket, unix_now()).is_none(), "a logout recorded but not yet forgotten");
    }

    #[test]
    fn hits_misses_expiry_and_bound() {
        let cache = SessionCache::new(CAPACITY);
        cache.insert("a", session(60));
        assert!(cache.get("a", unix_now()).is_some());
        assert!(cache.get("b", unix_now()).is_none());
        cache.insert("expired", session(0));
        assert!(cache.get("expired", unix_now()).is_none(), "expiry is checked on every hit");
        cache.remove("a");
        assert!(cache.get("a", unix_now()).is_none());

        // Same last KEY_LEN bytes, different value: never a hit, and removing one keeps the other.
        let long = format!("x{}", "t".repeat(KEY_LEN));
        let other = format!("y{}", "t".repeat(KEY_LEN));
        cache.insert(&long, session(60));
        assert!(cache.get(&long, unix_now()).is_some());
        assert!(cache.get(&other, unix_now()).is_none());
        cache.remove(&other);
        assert!(cache.get(&long, unix_now()).is_some());

        // Chunks are looked up without joining them, with the same key and an exact compare.
        let joined = format!("{}{}", "a".repeat(40), "b".repeat(20));
        cache.insert(&joined, session(60));
        let now = unix_now();
        assert!(cache.get_parts(&[(0, "a".repeat(40).as_bytes()), (1, "b".repeat(20).as_bytes())], now).is_some());
        assert!(
            cache
                .get_parts(
                    &[(0, "a".repeat(30).as_bytes()), (1, "a".repeat(10).as_bytes()), (2, "b".repeat(20).as_bytes())],
                    now
                )
                .is_some()
        );
        assert!(
            cache.get_parts(&[(0, "a".repeat(39).as_bytes()), (1, "b".repeat(20).as_bytes())], now).is_none(),
            "shorter"
        );
        assert!(
            cache.get_parts(&[(0, "a".repeat(41).as_bytes()), (1, "b".repeat(20).as_bytes())], now).is_none(),
            "longer"
        );
        assert!(
            cache.get_parts(&[(0, "c".repeat(40).as_bytes()), (1, "b".repeat(20).as_bytes())], now).is_none(),
            "same tail"
        );
        assert_eq!(key(&[(0, b"ab"), (1, b"c")]), key(&[(0, b"abc")]));
        let bytes = joined.as_bytes();
        assert_eq!(key(&[(0, &bytes[..50]), (1, &bytes[50..])]), key(&[(0, bytes)]));
        assert!(cache.get("", now).is_none());

        for i in 0..CAPACITY + 10 {
            cache.insert(&i.to_string(), session(60));
        }
        assert!(cache.len() <= CAPACITY);
    }

    /// A full cache evicts one entry per insert, never everything: a hundred new cookies
    /// (a client replaying stale ones) leave every other session but about a hundred in
    /// place (one per new entry in a full shard).
    #[test]
    fn a_full_cache_evicts_one_entry_at_a_time() {
        let cache = SessionCache::new(CAPACITY);
        let mut tickets = Vec::new();
        let mut i = 0;
        // Fill every shard to its bound.
        while cache.len() < CAPACITY {
            let ticket = auth_core::random_token();
            i += 1;
            let shard = cache.shard(&key(&[(0, ticket.as_bytes())]));
            if shard.read().map_or(true, |m| m.len() >= cache.per_shard) {
                continue;
            }
            cache.insert(&ticket, session(60));
            tickets.push(ticket);
        }
        assert!(i < CAPACITY * 100);
        assert_eq!(tickets.len(), CAPACITY, "no eviction before the bound");
        let stale: Vec<String> = (0..100).map(|i| format!("stale-{i}-{}", auth_core::random_token())).collect();
        for ticket in &stale {
            cache.insert(ticket, session(60));
        }
        let now = unix_now();
        let kept = tickets.iter().filter(|t| cache.get(t, now).is_some()).count();
        let stale_kept = stale.iter().filter(|t| cache.get(t, now).is_some()).count();
        assert_eq!(cache.len(), CAPACITY);
        // One entry left per new one (sometimes an earlier stale one): never more.
        assert_eq!(kept + stale_kept, CAPACITY);
        assert!(kept >= CAPACITY - 100, "at most one evicted per new entry: {kept}");
    }

    #[test]
    fn entries_spread_over_the_shards_and_the_bound_holds() {
        let cache = SessionCache::new(1000);
        for i in 0..5000 {
            cache.insert(&auth_core::random_token(), session(60));
            if i == 500 {
                let used = cache.shards.iter().filter(|s| s.read().map_or(0, |m| m.len()) > 0).count();
                assert_eq!(used, SHARDS, "random tickets reach every shard");
            }
        }
        assert!(cache.len() <= 1000usize.div_ceil(SHARDS) * SHARDS);
        assert!(cache.len() >= 900, "full shards stay full: {}", cache.len());
        let tiny = SessionCache::new(0);
        tiny.insert("a", session(60));
        assert!(tiny.get("a", unix_now()).is_some(), "at least one entry per shard");
    }

    /// The cookie store's cache forgets a ticket whenever the store ends it.
    #[tokio::test]
    async fn the_cached_store_forgets_what_it_ends() {
        let cookie = auth_core::CookieStore::new(Arc::new(auth_core::seal::Sealer::new(&[7; 32], &[])));
        let cache = Arc::new(SessionCache::new(CAPACITY));
        let store = CachedStore::new(Arc::new(cookie), Arc::clone(&cache));
        let ticket = store.save(&session(60)).await.expect("save");
        cache.insert(&ticket, session(60));
        let renewed = store.update(&ticket, &session(120)).await.expect("update");
        assert!(cache.get(&ticket, unix_now()).is_none(), "update forgets the old ticket");
        cache.insert(&renewed, session(120));
        store.delete(&renewed).await.expect("delete");
        assert!(cache.get(&renewed, unix_now()).is_none(), "delete forgets it");
        assert!(store.lock().is_none() && store.revocation().is_none(), "the cookie store's capabilities");
    }
}
