//! [`RedisStore`]: the [`SessionStore`] on Redis.

use crate::conn::{Connector, Timeouts};
use crate::keys::Keys;
use crate::target::Target;
use crate::tracking::LocalCopies;
use auth_core::async_trait;
use auth_core::{
    ConfigError, Revocation, Session, SessionInfo, SessionListing, SessionLock, SessionRevocation, SessionStore,
    StoreError, Ticket, random_token, session_handle,
};
use redis::{Value, cmd};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The key prefix when none is set.
pub const DEFAULT_PREFIX: &str = "auth:";
/// How long connecting to Redis may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one Redis answer may take by default.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// How many sessions a store keeps local copies of by default (about 2 KB each).
pub const DEFAULT_LOCAL_CACHE_ENTRIES: usize = 10_000;

/// The longest TTL written.
const MAX_TTL_MS: u64 = 10_000_000_000_000;

/// Adds `ARGV[1]` to the set `KEYS[1]` and makes the set live at least `ARGV[2]` ms.
const INDEX: &str = r"
redis.call('SADD', KEYS[1], ARGV[1])
local want = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < want then redis.call('PEXPIRE', KEYS[1], want) end
return 1";

/// Deletes `KEYS[1]` only while it still holds `ARGV[1]`.
const COMPARE_AND_DELETE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// Sessions in Redis behind random 256-bit tickets: tiny cookies, sessions shared by every
/// instance of the app, revocable by logout and by the provider's back-channel logout, and
/// listed per person ("sign out other devices").
///
/// Cheap to clone (clones share the connection and the locks they hold). See the
/// [crate docs](crate) for URLs, the key layout and what happens while Redis is down.
#[derive(Clone)]
pub struct RedisStore {
    url: Arc<str>,
    target: Target,
    keys: Keys,
    timeouts: Timeouts,
    conn: Arc<Connector>,
    /// The tokens of the locks this store holds, and until when.
    locks: Arc<Mutex<HashMap<String, (String, Instant)>>>,
    /// How many local copies of sessions to keep (see [`with_local_cache`](Self::with_local_cache)).
    local_entries: usize,
    /// The local copies, kept current by Redis; `None` when off or on a cluster.
    copies: Option<Arc<LocalCopies>>,
}

impl RedisStore {
    /// A store for the Redis at `url`, with the [default prefix](DEFAULT_PREFIX).
    ///
    /// Does no I/O: the connection is made by the first call that needs it, so an app
    /// starts (and serves anonymous requests) while Redis is down. Call
    /// [`ping`](Self::ping) to check Redis at start-up.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] (key `session_store`) when `url` is not one of the
    /// forms in the [crate docs](crate); the message never shows the password.
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        let target = Target::parse(url)?;
        let timeouts = Timeouts { connect: DEFAULT_CONNECT_TIMEOUT, response: DEFAULT_RESPONSE_TIMEOUT };
        let store = Self {
            url: url.trim().into(),
            conn: Arc::new(Connector::new(target.clone(), url.trim(), timeouts)),
            target,
            keys: Keys::new(DEFAULT_PREFIX.to_owned()),
            timeouts,
            locks: Arc::default(),
            local_entries: DEFAULT_LOCAL_CACHE_ENTRIES,
            copies: None,
        };
        Ok(store.with_copies())
    }

    /// Prefixes every key with `prefix` (default `auth:`), so that several apps can share
    /// a Redis. Two stores see each other's sessions exactly when their prefixes are equal.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.keys = Keys::new(prefix.into());
        self.with_copies()
    }

    /// Keeps local copies of up to about `entries` recently used sessions (default
    /// [`DEFAULT_LOCAL_CACHE_ENTRIES`], about 2 KB each; `0` turns them off), kept current
    /// by Redis: a request whose session has a copy costs no round trip. See
    /// [Local copies](crate#local-copies) for how a change on any instance reaches them
    /// and what happens when tracking is lost. On a cluster there are none.
    pub fn with_local_cache(mut self, entries: usize) -> Self {
        self.local_entries = entries;
        self.with_copies()
    }

    /// Whether the local copies are in use now: on, and Redis tracking them (the tracking
    /// connection starts with the first command, and is lost while Redis is unreachable).
    pub fn local_cache_live(&self) -> bool {
        self.copies.as_ref().is_some_and(|c| c.is_live())
    }

    /// New, empty local copies for the current prefix and size (`None` when off or on a
    /// cluster: invalidations would come from whichever node owns each key, and following
    /// every node through resharding is not done).
    fn with_copies(mut self) -> Self {
        let single = matches!(self.target, Target::Single(_));
        self.copies = (self.local_entries > 0 && single)
            .then(|| Arc::new(LocalCopies::new(self.local_entries, self.keys.session(""))));
        self
    }

    /// The local copies, with their tracking task started (the first call needs a Tokio
    /// runtime, which every async method has).
    fn copies(&self) -> Option<&Arc<LocalCopies>> {
        let copies = self.copies.as_ref()?;
        if let Target::Single(client) = &self.target {
            copies.start(client, self.timeouts.connect, self.timeouts.response);
        }
        Some(copies)
    }

    /// Drops the local copy of `ticket` (this instance changed or ended it; Redis tells the
    /// others).
    fn forget(&self, ticket: &str) {
        if let Some(copies) = &self.copies {
            copies.invalidate(ticket);
        }
    }

    /// How long connecting may take (default 1 s). A call while Redis is unreachable
    /// fails after at most this plus the [response timeout](Self::with_response_timeout).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self.reconnect()
    }

    /// How long one answer may take (default 500 ms).
    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.response = timeout;
        self.reconnect()
    }

    fn reconnect(mut self) -> Self {
        self.conn = Arc::new(Connector::new(self.target.clone(), &self.url, self.timeouts));
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// Checks that Redis answers.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when it does not within the timeouts.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.conn.query::<()>(&cmd("PING")).await
    }

    /// The index of the person `session` belongs to: `sub:{provider}:{sub}`, by the ID
    /// token's `sub` ([`Revocation::subject_of`]).
    fn sub_key(&self, session: &Session) -> String {
        self.keys.sub(&session.identity.provider, Revocation::subject_of(&session.identity))
    }

    /// What is stored behind `ticket`: `None` when its key is gone; `Some(None)` when it
    /// holds no live session (it has ended, or does not parse).
    async fn get(&self, ticket: &str) -> Result<Option<Option<Session>>, StoreError> {
        let json: Option<Vec<u8>> = self.conn.query(cmd("GET").arg(self.keys.session(ticket))).await?;
        Ok(json.map(|json| serde_json::from_slice::<Session>(&json).ok().filter(|s| ttl_ms(s).is_some())))
    }

    /// The live sessions the index `key` points to, with their tickets. Entries whose
    /// session is gone (expired, logged out, revoked) are dropped from the index, so it holds
    /// about the person's live sessions rather than every login while it lives.
    ///
    /// A `save` writes its index entry, then the session, then the entry again: an entry
    /// dropped here before the session was written is either seen again below (the session
    /// is there by then, and its entry is put back) or written again by the `save`
    /// afterwards, so a live session never stays out of the index.
    async fn indexed(&self, key: &str) -> Result<Vec<(String, Session)>, StoreError> {
        let tickets: Vec<String> = self.conn.query(cmd("SMEMBERS").arg(key)).await?;
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for ticket in tickets {
            match self.get(&ticket).await? {
                Some(Some(session)) => live.push((ticket, session)),
                // Ending now, or unreadable: its key is still there, so is its entry.
                Some(None) => {}
                None => gone.push(ticket),
            }
        }
        if gone.is_empty() {
            return Ok(live);
        }
        self.conn.query::<()>(cmd("SREM").arg(key).arg(&gone)).await?;
        for ticket in gone {
            if let Some(stored) = self.get(&ticket).await? {
                let ttl_ms = stored.as_ref().and_then(ttl_ms).unwrap_or(1);
                self.index(key.to_owned(), &ticket, ttl_ms).await?;
                live.extend(stored.map(|session| (ticket, session)));
            }
        }
        Ok(live)
    }

    /// Adds `ticket` to the set `key`, which then lives at least `ttl_ms`.
    async fn index(&self, key: String, ticket: &str, ttl_ms: u64) -> Result<(), StoreError> {
        self.conn.query::<()>(cmd("EVAL").arg(INDEX).arg(1).arg(key).arg(ticket).arg(ttl_ms)).await
    }

    /// Indexes `ticket` under the session's provider `sid` (when it has one) and the subject
    /// a logout token names it by ([`Revocation::subject_of`]: the ID token's `sub`, which
    /// for Microsoft is not [`Identity::subject`](auth_core::Identity::subject)).
    async fn index_session(&self, ticket: &str, session: &Session, ttl_ms: u64) -> Result<(), StoreError> {
        let identity = &session.identity;
        let by_sub = self.index(self.sub_key(session), ticket, ttl_ms);
        match sid_of(session) {
            Some(sid) => {
                let by_sid = self.index(self.keys.sid(&identity.provider, sid), ticket, ttl_ms);
                let (a, b) = tokio::join!(by_sid, by_sub);
                a.and(b)
            }
            None => by_sub.await,
        }
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    /// Indexes, then writes the session with a TTL of its remaining lifetime (a session
    /// already over is not written: its ticket loads as nothing), then indexes it under its
    /// `sub` once more (a round trip that keeps listing's pruning safe).
    async fn save(&self, session: &Session) -> Result<Ticket, StoreError> {
        let ticket = random_token();
        let Some(ttl_ms) = ttl_ms(session) else {
            return Ok(ticket);
        };
        let json = encode(session)?;
        // Index first: a session that exists is always revocable.
        self.index_session(&ticket, session, ttl_ms).await?;
        self.conn.query::<()>(cmd("SET").arg(self.keys.session(&ticket)).arg(json).arg("PX").arg(ttl_ms)).await?;
        // Listing drops the `sub` entries whose session it does not find, and one it dropped
        // between the two writes above comes back here (see `RedisStore::indexed`).
        self.index(self.sub_key(session), &ticket, ttl_ms).await?;
        Ok(ticket)
    }

    /// From the local copy when there is one; else reads Redis and keeps a copy (unless a
    /// change crossed the read: see [Local copies](crate#local-copies)).
    async fn load(&self, ticket: &str) -> Result<Option<Session>, StoreError> {
        if !is_ticket(ticket) {
            return Ok(None);
        }
        let copies = self.copies();
        if let Some(copy) = copies.and_then(|c| c.get(ticket)) {
            return Ok(Some((*copy).clone()));
        }
        let epoch = copies.and_then(|c| c.epoch(ticket));
        let session = self.get(ticket).await?.flatten();
        if let (Some(copies), Some(epoch), Some(session)) = (copies, epoch, &session) {
            copies.insert(ticket, Arc::new(session.clone()), epoch);
        }
        Ok(session)
    }

    fn cached(&self, ticket: &str) -> Option<Arc<Session>> {
        self.copies.as_ref()?.get(ticket)
    }

    async fn delete(&self, ticket: &str) -> Result<(), StoreError> {
        if is_ticket(ticket) {
            let deleted = self.conn.query::<()>(cmd("DEL").arg(self.keys.session(ticket))).await;
            self.forget(ticket);
            deleted?;
        }
        Ok(())
    }

    /// Overwrites the session only while its key exists (`SET .. XX`), so a session
    /// revoked or logged out meanwhile stays ended; the TTL becomes the new remaining
    /// lifetime.
    async fn update(&self, ticket: &str, session: &Session) -> Result<Ticket, StoreError> {
        let gone = || StoreError::Unavailable("the session was revoked while it was being updated".into());
        if !is_ticket(ticket) {
            return Err(gone());
        }
        let key = self.keys.session(ticket);
        let written = match ttl_ms(session) {
            Some(ttl_ms) => {
                let json = encode(session)?;
                self.index_session(ticket, session, ttl_ms).await?;
                let answer: Value =
                    self.conn.query(cmd("SET").arg(key).arg(json).arg("PX").arg(ttl_ms).arg("XX")).await?;
                !matches!(answer, Value::Nil)
            }
            None => self.conn.query::<i64>(cmd("DEL").arg(key)).await? == 1,
        };
        self.forget(ticket);
        if written { Ok(ticket.to_owned()) } else { Err(gone()) }
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

/// The index `sub:{provider}:{sub}` that back-channel logout reads, read the same way: one
/// key per command, so it works on Redis Cluster. Listing costs one `GET` per live session
/// of the person (plus, once, two commands per entry whose session is gone).
#[async_trait]
impl SessionListing for RedisStore {
    async fn sessions(&self, provider: &str, subject: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let owner = Revocation::subject(provider, subject);
        let live = self.indexed(&self.keys.sub(provider, subject)).await?;
        let mut found: Vec<SessionInfo> = live
            .iter()
            .filter(|(_, session)| owner.matches(session))
            .map(|(ticket, session)| SessionInfo::new(ticket, session))
            .collect();
        found.sort_by(|a, b| (a.created_at, &a.handle).cmp(&(b.created_at, &b.handle)));
        Ok(found)
    }

    /// Finds the ticket by its handle among the person's index entries (no `GET` for the
    /// others), checks that its session is theirs, and deletes it.
    async fn end(&self, provider: &str, subject: &str, handle: &str) -> Result<bool, StoreError> {
        let index = self.keys.sub(provider, subject);
        let tickets: Vec<String> = self.conn.query(cmd("SMEMBERS").arg(&index)).await?;
        let Some(ticket) = tickets.into_iter().find(|ticket| is_ticket(ticket) && session_handle(ticket) == handle)
        else {
            return Ok(false);
        };
        let session = self.get(&ticket).await?.flatten();
        let owned = session.is_some_and(|s| Revocation::subject(provider, subject).matches(&s));
        if !owned {
            return Ok(false);
        }
        let ended = self.conn.query::<usize>(cmd("DEL").arg(self.keys.session(&ticket))).await? == 1;
        self.forget(&ticket);
        self.conn.query::<()>(cmd("SREM").arg(&index).arg(&ticket)).await?;
        Ok(ended)
    }

    async fn end_all(&self, provider: &str, subject: &str, except: Option<&str>) -> Result<usize, StoreError> {
        let owner = Revocation::subject(provider, subject);
        let index = self.keys.sub(provider, subject);
        let mut ended = 0;
        let mut done = Vec::new();
        for (ticket, session) in self.indexed(&index).await? {
            if !owner.matches(&session) || except.is_some_and(|keep| session_handle(&ticket) == keep) {
                continue;
            }
            ended += self.conn.query::<usize>(cmd("DEL").arg(self.keys.session(&ticket))).await?;
            self.forget(&ticket);
            done.push(ticket);
        }
        if !done.is_empty() {
            self.conn.query::<()>(cmd("SREM").arg(&index).arg(&done)).await?;
        }
        Ok(ended)
    }
}

#[async_trait]
impl SessionRevocation for RedisStore {
    /// Reads the index `sid:{provider}:{sid}` (or `sub:{provider}:{sub}`, by the ID token's
    /// `sub` as [`Revocation::subject_of`] tells), checks
    /// each session it points to with [`Revocation::matches`], deletes those, and drops
    /// their index entries. One key per command: cluster-safe. A session whose `save` is
    /// between its two writes (index, then session) when the revocation reads the index
    /// survives it: a window of one round trip.
    async fn revoke(&self, which: &Revocation) -> Result<usize, StoreError> {
        let index = match (&which.sid, &which.subject) {
            (Some(sid), _) => self.keys.sid(&which.provider, sid),
            (None, Some(subject)) => self.keys.sub(&which.provider, subject),
            (None, None) => return Ok(0),
        };
        let tickets: Vec<String> = self.conn.query(cmd("SMEMBERS").arg(&index)).await?;
        let mut revoked = 0;
        // Entries whose session is gone stay: a concurrent `save` indexes before it writes
        // the session, and its entry must survive. They expire with the index, or listing
        // drops them (`RedisStore::indexed`, which a `save` in flight survives).
        let mut done = Vec::new();
        for ticket in tickets {
            let key = self.keys.session(&ticket);
            let json: Option<Vec<u8>> = self.conn.query(cmd("GET").arg(&key)).await?;
            let Some(session) = json.and_then(|json| serde_json::from_slice::<Session>(&json).ok()) else {
                continue;
            };
            if which.matches(&session) {
                revoked += self.conn.query::<usize>(cmd("DEL").arg(&key)).await?;
                self.forget(&ticket);
            }
            done.push(ticket);
        }
        if !done.is_empty() {
            self.conn.query::<()>(cmd("SREM").arg(&index).arg(&done)).await?;
        }
        Ok(revoked)
    }
}

#[async_trait]
impl SessionLock for RedisStore {
    /// `SET {prefix}lock:{key} TOKEN NX PX ttl`, remembering the random token.
    async fn try_lock(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let token = random_token();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let answer: Value =
            self.conn.query(cmd("SET").arg(self.keys.lock(key)).arg(&token).arg("NX").arg("PX").arg(ttl_ms)).await?;
        if matches!(answer, Value::Nil) {
            return Ok(false);
        }
        let now = Instant::now();
        if let Ok(mut locks) = self.locks.lock() {
            locks.retain(|_, (_, until)| *until > now);
            locks.insert(key.to_owned(), (token, now + ttl));
        }
        Ok(true)
    }

    /// Deletes the lock only while it still holds this store's token: a lock that expired
    /// and was taken by someone else stays theirs.
    async fn unlock(&self, key: &str) -> Result<(), StoreError> {
        let token = self.locks.lock().ok().and_then(|mut locks| locks.remove(key)).map(|(token, _)| token);
        if let Some(token) = token {
            self.conn
                .query::<()>(cmd("EVAL").arg(COMPARE_AND_DELETE).arg(1).arg(self.keys.lock(key)).arg(token))
                .await?;
        }
        Ok(())
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.conn.shown())
            .field("cluster", &self.conn.is_cluster())
            .field("prefix", &self.keys.prefix())
            .field("connect_timeout", &self.timeouts.connect)
            .field("response_timeout", &self.timeouts.response)
            .field("local_copies", &self.copies)
            .finish()
    }
}

/// The session's remaining lifetime in milliseconds (to its [`Session::deadline`]: the
/// absolute or the idle expiry, whichever comes first), `None` when it is over.
fn ttl_ms(session: &Session) -> Option<u64> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let ends_ms = u128::from(session.deadline()) * 1000;
    let left = ends_ms.checked_sub(now_ms).filter(|ms| *ms > 0)?;
    // Redis refuses expiry times past i64 milliseconds; ~300 years is plenty.
    Some(u64::try_from(left).unwrap_or(u64::MAX).min(MAX_TTL_MS))
}

fn sid_of(session: &Session) -> Option<&str> {
    session.identity.claims.get("sid").and_then(|v| v.as_str())
}

fn encode(session: &Session) -> Result<String, StoreError> {
    serde_json::to_string(session).map_err(|e| StoreError::Encode(e.to_string()))
}

/// Whether `ticket` can be one of [`random_token`]'s (43 base64url characters); others
/// come from a stale or forged cookie and need no round trip.
fn is_ticket(ticket: &str) -> bool {
    ticket.len() == 43 && ticket.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
