//! What the tests of this crate share: a server per test, sessions to store.

#![allow(dead_code, unreachable_pub, unused_imports)]

use auth_core::{Identity, Session, TokenSet};
pub use auth_redis::testing::{RedisCluster, RedisServer};

/// A fresh server; a missing `redis-server` fails the test with the install command.
pub fn server() -> RedisServer {
    RedisServer::start().unwrap_or_else(|e| panic!("cannot start redis-server: {e}"))
}

/// A session of `subject` at `provider`, with the provider session `sid` when given.
pub fn session(provider: &str, subject: &str, sid: Option<&str>, lifetime_secs: u64) -> Session {
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), subject.into());
    claims.insert("email".into(), format!("{subject}@example.test").into());
    if let Some(sid) = sid {
        claims.insert("sid".into(), sid.into());
    }
    let tokens = TokenSet::new().with_access_token("at").with_refresh_token("rt");
    Session::new(Identity::new(provider, subject, claims), tokens, lifetime_secs)
}

/// Milliseconds `key` has left, from `PTTL`.
pub fn pttl(server: &RedisServer, key: &str) -> i64 {
    server.command(&format!("PTTL {key}")).expect("PTTL").parse().expect("an integer")
}
