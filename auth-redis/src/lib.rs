//! Sessions in Redis for Streamlit-style login on tower: [`RedisStore`], an
//! [`auth_core::SessionStore`].
//!
//! With the default cookie store, the session *is* the cookie: nothing to run, but a
//! logout cannot take back a copied cookie. With `RedisStore` the cookie carries only a
//! random 256-bit ticket; the session lives in Redis, where every instance of the app
//! finds it, logout deletes it, the identity provider's back-channel logout ends it, and a
//! person can see and end their sessions on other devices.
//!
//! # Tutorial
//!
//! Point the store at Redis and hand it to the layer (`auth-tower`'s
//! `AuthLayer::builder(config).with_store(Arc::new(store))`, or `session_store =
//! "redis://..."` in the `[auth]` config with `auth-tower`'s `redis` feature):
//!
//! ```no_run
//! use auth_core::{Identity, Session, SessionStore, TokenSet};
//! use auth_redis::RedisStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // No I/O here: the app starts even while Redis is down.
//! let store = RedisStore::new("redis://:password@127.0.0.1:6379/0")?.with_prefix("myapp:");
//! if let Err(e) = store.ping().await {
//!     eprintln!("sessions unavailable until Redis is back: {e}");
//! }
//!
//! // What the layer does at login, on every request, and at logout:
//! let session = Session::new(Identity::new("google", "alice", Default::default()), TokenSet::default(), 3600);
//! let ticket = store.save(&session).await?; // the cookie's value
//! assert_eq!(store.load(&ticket).await?, Some(session));
//! store.delete(&ticket).await?;
//! assert_eq!(store.load(&ticket).await?, None);
//! # Ok(()) }
//! ```
//!
//! # URLs
//!
//! | form | what |
//! |---|---|
//! | `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` | one server (port 6379, database 0 by default) |
//! | `rediss://...` | the same over TLS (rustls, the system's root certificates) |
//! | `redis+unix:///PATH/redis.sock[?db=N]` | one server on a Unix socket |
//! | `redis+cluster://[[USER]:PASSWORD@]HOST1:PORT1,HOST2:PORT2,...` | a Redis Cluster, by some of its nodes (database 0 only) |
//! | `rediss+cluster://...` | the same over TLS |
//!
//! `Debug`, logs and errors show these URLs with the password replaced by `***`.
//!
//! # Key layout
//!
//! With the default prefix `auth:` (see [`RedisStore::with_prefix`]):
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `auth:session:{ticket}` | string | the [`Session`](auth_core::Session) as JSON | when the session ends ([`deadline`](auth_core::Session::deadline): `expires_at`, or the idle expiry when sooner) |
//! | `auth:sid:{provider}:{sid}` | set | the tickets of the provider's session `sid` | with the longest of them |
//! | `auth:sub:{provider}:{sub}` | set | the tickets of one person at a provider, by the ID token's `sub` (`Revocation::subject_of`): what back-channel logout by `sub` and [listing](auth_core::SessionListing) read | with the longest of them |
//! | `auth:lock:{key}` | string | the random token of the lock's holder | after the lock's TTL |
//!
//! `:`, `%`, `{` and `}` inside a provider, id or lock key are percent-encoded. Every
//! command touches a single key, so all of this works on Redis Cluster without hash tags
//! and the keys spread over its slots. (A prefix with a hash tag, such as `{myapp}:`,
//! still works but puts every key in one slot.)
//!
//! # Operations
//!
//! - `save`: adds the new ticket to the two indexes (so a session that exists can always
//!   be revoked), then `SET session PX ttl` with the session's remaining lifetime, then adds
//!   it to the `sub` index once more (so listing may drop entries it finds no session for).
//! - `load`: the [local copy](#local-copies) when there is one, else one `GET`; a cookie
//!   value that cannot be a ticket costs no round trip.
//! - `update`: `SET ... XX`: the same ticket, a new TTL, and never a session that was
//!   revoked or logged out meanwhile (that is an error).
//! - `revoke` (back-channel logout): reads the `sid` or `sub` index, deletes the sessions
//!   that [match](auth_core::Revocation::matches), returns how many.
//! - `sessions` ([`SessionListing`](auth_core::SessionListing), "sign out other
//!   devices"): `SMEMBERS` of the `sub` index, then a `GET` per ticket. A session that
//!   expired (its key gone with its TTL), was logged out or revoked is not listed, and its
//!   entry is dropped from the index (`SREM`, then a second `GET` puts back one a `save`
//!   wrote meanwhile). Sessions are named by a handle, a hash of the ticket.
//! - `end` / `end_all`: find the person's tickets by handle in the same index, check each
//!   session is theirs, `DEL` it and drop its entry.
//! - `try_lock` / `unlock`: `SET lock NX PX ttl` with a random token that this store
//!   remembers; unlocking deletes the lock only while it still holds that token.
//!
//! # Local copies
//!
//! Each store keeps copies of the sessions it read lately (up to
//! [`DEFAULT_LOCAL_CACHE_ENTRIES`], set with [`RedisStore::with_local_cache`]; the layer's
//! `session_cache_entries` when it makes the store from `session_store = "redis://..."`),
//! so a request whose session has a copy makes no round trip. Redis keeps them current
//! (server-assisted client-side caching): a background task holds a RESP3 connection of
//! its own with `CLIENT TRACKING ON BCAST PREFIX {prefix}session:`, and Redis pushes an
//! `invalidate` message on it for every change of a session key by any client: a logout,
//! a back-channel logout, "sign out other devices", a refresh or an idle renewal on any
//! instance, or an expiry. An instance stops serving a session another one ended about one
//! Redis round trip after the change (`cargo xtask bench` measures it: `revocation` in
//! `target/bench/results.json`); the instance that made the change drops its copy at once.
//!
//! Copies are served only while tracking is known to be live:
//! - a closed tracking connection (Redis restarted, the connection killed, the network
//!   down) empties every copy at once; none is served or made until tracking is back
//!   (retried from 100 ms, doubling to 5 s), and meanwhile every request reads Redis;
//! - the task sends a `PING` every 250 ms, and copies are served only within 1 s of the last
//!   answer: a connection that hangs without closing (a network partition that drops the
//!   invalidations) stops them within that bound;
//! - a read from Redis makes a copy only if no invalidation of the same part of the map and
//!   no loss of tracking came between its `GET` and its answer, so an answer that crossed
//!   a change is never kept.
//!
//! A cluster (`redis+cluster://`) has no local copies: invalidations come from whichever
//! node owns each key, and following every node through resharding is not implemented, so
//! every request reads Redis. Each tracked change costs one push message per instance.
//!
//! # When Redis is down
//!
//! Every call fails with [`StoreError::Unavailable`](auth_core::StoreError::Unavailable)
//! after at most the connect timeout plus the response timeout (1 s + 500 ms by default;
//! at once when the connection is refused), and never panics. The store reconnects by
//! itself: the next call after Redis is back succeeds. A hung server (or a half-open
//! connection) is a timeout, after which the connection is replaced.
//!
//! # Testing
//!
//! The feature `testing` adds `testing::RedisServer` and `testing::RedisCluster`:
//! throwaway `redis-server`s on loopback for your tests.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod conn;
mod keys;
mod store;
mod target;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;
mod tracking;

pub use store::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_LOCAL_CACHE_ENTRIES, DEFAULT_PREFIX, DEFAULT_RESPONSE_TIMEOUT, RedisStore,
};
