//! Local copies of sessions, kept current by Redis (server-assisted client-side caching).
//!
//! A background task holds one RESP3 connection of its own with
//! `CLIENT TRACKING ON BCAST PREFIX {prefix}session:`: Redis then pushes an `invalidate`
//! message on it for every change of a session key, whichever client made it (a logout,
//! a back-channel logout, a refresh or an idle renewal on any instance, an expiry). A copy
//! is dropped when its message arrives, so an instance stops serving a session that
//! another one ended about one Redis round trip after the change.
//!
//! Copies are served only while tracking is known to be live:
//! - the task sends a `PING` every [`PING_EVERY`]; its answer, which Redis sends after
//!   every message of writes it made before the `PING`, confirms the copies up to the
//!   moment the `PING` was sent, and copies are served only within [`TRUST_FOR`] of the
//!   last confirmation (a connection that hangs without closing, such as a network
//!   partition, stops them within that bound);
//! - a closed connection, a failed `PING` or a refused `CLIENT TRACKING` empties every copy
//!   at once and serves none until tracking is back (reconnecting from 100 ms, doubling to
//!   5 s).
//!
//! A load that reads Redis makes a copy only if no invalidation of its part of the map and
//! no loss of tracking happened since it sent its `GET` (an epoch per part, compared under
//! the part's lock): an answer that crossed a change on the way is never kept.

use auth_core::Session;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ProtocolVersion, PushInfo, PushKind, Value, cmd};
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// How often the tracking connection is checked with a `PING`.
pub(crate) const PING_EVERY: Duration = Duration::from_millis(250);
/// How long after the last confirmation copies are served.
pub(crate) const TRUST_FOR: Duration = Duration::from_secs(1);
/// How many independently locked parts the map is split into.
const SHARDS: usize = 16;
/// The first and the longest wait before reconnecting the tracking connection.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// One part of the map, and how many invalidations (or losses of tracking) it has seen.
#[derive(Default)]
struct Shard {
    map: RwLock<HashMap<Box<str>, Arc<Session>>>,
    epoch: AtomicU64,
}

/// The local copies of one store, by ticket.
pub(crate) struct LocalCopies {
    shards: Box<[Shard]>,
    per_shard: usize,
    hasher: RandomState,
    /// Whether the tracking connection is up and subscribed.
    live: AtomicBool,
    /// When Redis last confirmed the copies, in milliseconds since `base`.
    confirmed_ms: AtomicU64,
    base: Instant,
    /// Whether the tracking task was started.
    started: AtomicBool,
    /// The key prefix of sessions (`{prefix}session:`), what tracking follows.
    session_prefix: String,
}

impl fmt::Debug for LocalCopies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCopies")
            .field("capacity", &(self.per_shard * SHARDS))
            .field("len", &self.len())
            .field("live", &self.is_live())
            .finish()
    }
}

impl LocalCopies {
    /// Room for about `capacity` copies of sessions whose keys start with `session_prefix`.
    pub(crate) fn new(capacity: usize, session_prefix: String) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS),
            hasher: RandomState::new(),
            live: AtomicBool::new(false),
            confirmed_ms: AtomicU64::new(0),
            base: Instant::now(),
            started: AtomicBool::new(false),
            session_prefix,
        }
    }

    fn shard(&self, ticket: &str) -> &Shard {
        let index = usize::try_from(self.hasher.hash_one(ticket) % SHARDS as u64).unwrap_or(0);
        &self.shards[index]
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether copies may be served now: tracking is up and confirmed lately.
    fn trusted(&self) -> bool {
        self.live.load(Ordering::Acquire)
            && self.now_ms() < self.confirmed_ms.load(Ordering::Acquire).saturating_add(TRUST_FOR.as_millis() as u64)
    }

    /// The current copy of the session behind `ticket`, if there is one and it may be served.
    pub(crate) fn get(&self, ticket: &str) -> Option<Arc<Session>> {
        if !self.trusted() {
            return None;
        }
        let shard = self.shard(ticket);
        let map = shard.map.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(ticket).cloned()
    }

    /// What a load reading `ticket` from Redis passes to [`insert`](Self::insert): `None`
    /// when no copy may be made now.
    pub(crate) fn epoch(&self, ticket: &str) -> Option<u64> {
        self.trusted().then(|| self.shard(ticket).epoch.load(Ordering::Acquire))
    }

    /// Keeps a copy of `session`, read from Redis after [`epoch`](Self::epoch) answered
    /// `epoch`, unless its part saw an invalidation since (or tracking was lost).
    pub(crate) fn insert(&self, ticket: &str, session: Arc<Session>, epoch: u64) {
        let shard = self.shard(ticket);
        let mut map = shard.map.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if shard.epoch.load(Ordering::Acquire) != epoch || !self.live.load(Ordering::Acquire) {
            return;
        }
        if map.len() >= self.per_shard
            && !map.contains_key(ticket)
            && let Some(evicted) = map.keys().next().cloned()
        {
            map.remove(&evicted);
        }
        map.insert(ticket.into(), session);
    }

    /// Drops the copy behind `ticket`, and refuses copies of loads already in flight.
    pub(crate) fn invalidate(&self, ticket: &str) {
        let shard = self.shard(ticket);
        let mut map = shard.map.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        shard.epoch.fetch_add(1, Ordering::AcqRel);
        map.remove(ticket);
    }

    /// Drops every copy, and refuses copies of loads already in flight.
    fn clear(&self) {
        for shard in &*self.shards {
            let mut map = shard.map.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            shard.epoch.fetch_add(1, Ordering::AcqRel);
            map.clear();
        }
    }

    /// Tracking is lost: nothing is served from here until it is back.
    fn pause(&self) {
        self.live.store(false, Ordering::Release);
        self.clear();
    }

    /// Tracking is (back) on since a moment before `since_ms`: copies from now on are kept.
    fn resume(&self, since_ms: u64) {
        self.clear();
        self.confirmed_ms.store(since_ms, Ordering::Release);
        self.live.store(true, Ordering::Release);
    }

    /// How many copies are kept.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.map.read().map_or(0, |m| m.len())).sum()
    }

    /// Whether copies are being served: tracking is up and confirmed lately.
    pub(crate) fn is_live(&self) -> bool {
        self.trusted()
    }

    /// Starts the tracking task once (needs a Tokio runtime: called from the store's async
    /// methods).
    pub(crate) fn start(self: &Arc<Self>, client: &redis::Client, connect: Duration, response: Duration) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let info = client.get_connection_info().clone();
        let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let client = match redis::Client::open(info.set_redis_settings(settings)) {
            Ok(client) => client,
            Err(error) => {
                tracing::warn!(%error, "cannot make the Redis tracking connection; sessions are read from Redis every time");
                return;
            }
        };
        let tracker = Tracker { copies: Arc::downgrade(self), client, connect, response };
        tokio::spawn(tracker.run());
    }

    /// Applies one `invalidate` message: a list of keys, or nil for "everything" (`FLUSHDB`).
    fn apply(&self, push: &PushInfo) {
        match push.data.first() {
            Some(Value::Array(keys)) => {
                for key in keys {
                    if let Value::BulkString(key) = key
                        && let Some(ticket) = key.strip_prefix(self.session_prefix.as_bytes())
                        && let Ok(ticket) = std::str::from_utf8(ticket)
                    {
                        self.invalidate(ticket);
                    }
                }
            }
            _ => self.clear(),
        }
    }
}

/// The task that keeps the tracking connection, and the copies current.
struct Tracker {
    copies: Weak<LocalCopies>,
    client: redis::Client,
    connect: Duration,
    response: Duration,
}

impl Tracker {
    /// Tracks until the store is dropped, reconnecting after every loss.
    async fn run(self) {
        let mut wait = RETRY_FIRST;
        loop {
            let outcome = self.track().await;
            let Some(copies) = self.copies.upgrade() else { return };
            copies.pause();
            match outcome {
                Ok(()) => return,
                Err((error, was_live)) => {
                    if was_live {
                        tracing::warn!(%error, "Redis session tracking lost; local copies dropped until it is back");
                        wait = RETRY_FIRST;
                    } else {
                        tracing::debug!(%error, "Redis session tracking not available yet");
                    }
                }
            }
            drop(copies);
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RETRY_MAX);
        }
    }

    /// One tracking connection's life: `Ok` when the store was dropped, else why it ended
    /// and whether it had been live.
    async fn track(&self) -> Result<(), (String, bool)> {
        let (sender, mut pushes) = tokio::sync::mpsc::unbounded_channel();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect))
            .set_response_timeout(Some(self.response))
            .set_push_sender(sender);
        let bound = self.connect + self.response;
        let mut conn = tokio::time::timeout(bound, self.client.get_multiplexed_async_connection_with_config(&config))
            .await
            .map_err(|_| (format!("no connection within {bound:?}"), false))?
            .map_err(|e| (e.to_string(), false))?;
        let Some(prefix) = self.copies.upgrade().map(|c| c.session_prefix.clone()) else { return Ok(()) };
        let since = self.copies.upgrade().map_or(0, |c| c.now_ms());
        let mut tracking = cmd("CLIENT");
        tracking.arg("TRACKING").arg("ON").arg("BCAST").arg("PREFIX").arg(prefix);
        tokio::time::timeout(self.response, tracking.query_async::<()>(&mut conn))
            .await
            .map_err(|_| ("CLIENT TRACKING was not answered".to_owned(), false))?
            .map_err(|e| (format!("CLIENT TRACKING refused: {e}"), false))?;
        {
            let Some(copies) = self.copies.upgrade() else { return Ok(()) };
            copies.resume(since);
            tracing::debug!("Redis session tracking on");
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                push = pushes.recv() => {
                    let Some(copies) = self.copies.upgrade() else { return Ok(()) };
                    match push {
                        Some(push) => handle(&copies, &push).map_err(|e| (e, true))?,
                        None => return Err(("the tracking connection closed".to_owned(), true)),
                    }
                }
                _ = ping.tick() => {
                    let Some(copies) = self.copies.upgrade() else { return Ok(()) };
                    confirm(&copies, &mut conn, &mut pushes, self.response).await.map_err(|e| (e, true))?;
                }
            }
        }
    }
}

/// Applies one push message; a disconnection is an error.
fn handle(copies: &LocalCopies, push: &PushInfo) -> Result<(), String> {
    match push.kind {
        PushKind::Invalidate => {
            copies.apply(push);
            Ok(())
        }
        PushKind::Disconnection => Err("the tracking connection closed".to_owned()),
        _ => Ok(()),
    }
}

/// Sends a `PING`; once it is answered, applies every message that came before the answer
/// and confirms the copies up to when it was sent.
async fn confirm(
    copies: &LocalCopies,
    conn: &mut MultiplexedConnection,
    pushes: &mut UnboundedReceiver<PushInfo>,
    response: Duration,
) -> Result<(), String> {
    let sent = copies.now_ms();
    tokio::time::timeout(response, cmd("PING").query_async::<()>(conn))
        .await
        .map_err(|_| format!("PING not answered within {response:?}"))?
        .map_err(|e| format!("PING failed: {e}"))?;
    // The connection hands pushes over before the answers that follow them.
    while let Ok(push) = pushes.try_recv() {
        handle(copies, &push)?;
    }
    copies.confirmed_ms.fetch_max(sent, Ordering::AcqRel);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::{Identity, TokenSet};

    fn copies() -> LocalCopies {
        let copies = LocalCopies::new(32, "auth:session:".into());
        copies.resume(copies.now_ms());
        copies
    }

    fn session() -> Arc<Session> {
        Arc::new(Session::new(Identity::new("p", "alice", Default::default()), TokenSet::default(), 60))
    }

    #[test]
    fn copies_are_served_only_while_tracking_is_live_and_confirmed() {
        let copies = copies();
        let epoch = copies.epoch("t").expect("live");
        copies.insert("t", session(), epoch);
        assert!(copies.get("t").is_some());
        copies.pause();
        assert!(copies.get("t").is_none(), "lost tracking empties the copies");
        assert_eq!(copies.epoch("t"), None, "and no load may make one");
        copies.resume(copies.now_ms());
        assert!(copies.get("t").is_none());
        let epoch = copies.epoch("t").expect("live again");
        copies.insert("t", session(), epoch);
        // A confirmation older than TRUST_FOR: not served, though tracking says it is up.
        copies.confirmed_ms.store(0, Ordering::Release);
        std::thread::sleep(TRUST_FOR.saturating_sub(Duration::from_millis(copies.now_ms())));
        assert!(copies.get("t").is_none(), "an unconfirmed connection may be a partition");
    }

    #[test]
    fn a_read_that_crossed_an_invalidation_is_not_kept() {
        let copies = copies();
        let epoch = copies.epoch("t").expect("live");
        copies.invalidate("t"); // the message of a change made while the GET was on its way
        copies.insert("t", session(), epoch);
        assert!(copies.get("t").is_none());
        let lost = copies.epoch("u").expect("live");
        copies.pause();
        copies.resume(copies.now_ms());
        copies.insert("u", session(), lost);
        assert!(copies.get("u").is_none(), "a read from before a loss of tracking is not kept");
    }

    #[test]
    fn invalidate_messages_name_keys_or_everything() {
        let copies = copies();
        for ticket in ["a", "b"] {
            let epoch = copies.epoch(ticket).expect("live");
            copies.insert(ticket, session(), epoch);
        }
        let keys = |keys: &[&str]| PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Array(keys.iter().map(|k| Value::BulkString(k.as_bytes().to_vec())).collect())],
        };
        copies.apply(&keys(&["auth:session:a", "other:session:b", "auth:sid:x"]));
        assert!(copies.get("a").is_none());
        assert!(copies.get("b").is_some());
        copies.apply(&PushInfo { kind: PushKind::Invalidate, data: vec![Value::Nil] });
        assert!(copies.get("b").is_none(), "a flush drops everything");
        assert!(handle(&copies, &PushInfo { kind: PushKind::Disconnection, data: vec![] }).is_err());
    }

    #[test]
    fn the_bound_holds() {
        let copies = copies();
        for i in 0..1000 {
            let ticket = format!("t{i}");
            let epoch = copies.epoch(&ticket).expect("live");
            copies.insert(&ticket, session(), epoch);
        }
        assert!(copies.len() <= 32, "{} copies", copies.len());
        assert!(copies.len() >= 16);
    }
}
