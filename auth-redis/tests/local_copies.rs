//! `RedisStore`'s local copies against a real redis-server: two stores on one Redis (two
//! app instances), a change on one reaching the other's copies, and lost tracking sending
//! every read back to Redis.

mod support;

use auth_core::{LogoutClaims, Revocation, SessionStore};
use auth_redis::RedisStore;
use std::time::{Duration, Instant};
use support::{RedisServer, server, session};

fn store(redis: &RedisServer) -> RedisStore {
    RedisStore::new(&redis.url()).expect("a valid URL")
}

/// Waits (up to 5 s) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "waited 5 s for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A store whose tracking is live, with a copy of the session behind `ticket`.
async fn with_copy(store: &RedisStore, ticket: &str) {
    store.ping().await.expect("ping");
    store.load(ticket).await.expect("load"); // starts tracking
    until("tracking", || store.local_cache_live()).await;
    assert!(store.load(ticket).await.expect("load").is_some(), "the session is there");
    assert!(store.cached(ticket).is_some(), "and a load while tracking is live keeps a copy");
}

/// The id of the tracking connection, from `CLIENT LIST` (flag `t`).
fn tracking_client(redis: &RedisServer) -> String {
    let list = redis.command("CLIENT LIST").expect("CLIENT LIST");
    let line = list
        .lines()
        .find(|line| line.split(' ').any(|field| field.strip_prefix("flags=").is_some_and(|f| f.contains('t'))))
        .unwrap_or_else(|| panic!("no tracking client in {list}"));
    let id = line.split(' ').find_map(|field| field.strip_prefix("id=")).expect("an id");
    id.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_instance_reaches_the_copies_of_the_other() {
    let redis = server();
    let (a, b) = (store(&redis), store(&redis));
    let s = session("google", "alice", Some("sid-1"), 3600);
    let ticket = a.save(&s).await.expect("save");
    with_copy(&b, &ticket).await;

    // A renewal on A: B's copy goes, and B's next load reads the new session.
    let mut renewed = s.clone();
    renewed.idle_expires_at = Some(s.expires_at - 10);
    a.update(&ticket, &renewed).await.expect("update");
    until("the update's invalidation", || b.cached(&ticket).is_none()).await;
    assert_eq!(b.load(&ticket).await.expect("load"), Some(renewed), "B reads the renewed session");
    assert!(b.cached(&ticket).is_some(), "and keeps a copy of it");

    // A logout on A: B's very next request does not serve it.
    a.delete(&ticket).await.expect("delete");
    until("the logout's invalidation", || b.cached(&ticket).is_none()).await;
    assert_eq!(b.load(&ticket).await.expect("load"), None);

    // A change B made itself drops its own copy at once, before any message.
    let other = a.save(&s).await.expect("save");
    with_copy(&b, &other).await;
    b.delete(&other).await.expect("delete");
    assert!(b.cached(&other).is_none(), "the instance that ends a session drops its copy at once");

    // Back-channel logout on A (by sid): B's copy goes too.
    let third = a.save(&s).await.expect("save");
    with_copy(&b, &third).await;
    let which = Revocation::of("google", LogoutClaims::new(None, Some("sid-1".into())));
    assert_eq!(a.revocation().expect("revocation").revoke(&which).await.expect("revoke"), 1);
    until("the revocation's invalidation", || b.cached(&third).is_none()).await;
    assert_eq!(b.load(&third).await.expect("load"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_tracking_connection_sends_reads_back_to_redis() {
    let redis = server();
    let b = store(&redis);
    let s = session("google", "bob", None, 3600);
    let ticket = b.save(&s).await.expect("save");
    with_copy(&b, &ticket).await;

    redis.command(&format!("CLIENT KILL ID {}", tracking_client(&redis))).expect("CLIENT KILL");
    until("the copies to be dropped", || !b.local_cache_live()).await;
    assert!(b.cached(&ticket).is_none(), "no copy is served without tracking");
    // Changed behind B's back while it cannot hear about it: B reads Redis, not a copy.
    redis.command(&format!("DEL auth:session:{ticket}")).expect("DEL");
    assert_eq!(b.load(&ticket).await.expect("load"), None, "B went back to Redis");

    // Tracking comes back by itself, and copies with it.
    let again = b.save(&s).await.expect("save");
    until("tracking to be back", || b.local_cache_live()).await;
    with_copy(&b, &again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_stops_the_copies_within_the_bound() {
    let redis = server();
    let b = store(&redis).with_response_timeout(Duration::from_millis(200));
    let ticket = b.save(&session("google", "carol", None, 3600)).await.expect("save");
    with_copy(&b, &ticket).await;

    // Frozen: the connection stays open, but no invalidation could come through.
    redis.pause();
    let frozen = Instant::now();
    until("the unconfirmed copies to stop", || b.cached(&ticket).is_none()).await;
    let stopped = frozen.elapsed();
    redis.resume();
    assert!(stopped < Duration::from_secs(2), "copies stopped {stopped:?} after Redis froze (bound: 1 s + 250 ms)");
    until("tracking to be back", || b.local_cache_live()).await;
    with_copy(&b, &ticket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_means_every_read_goes_to_redis() {
    let redis = server();
    let b = store(&redis).with_local_cache(0);
    let ticket = b.save(&session("google", "dave", None, 3600)).await.expect("save");
    assert!(b.load(&ticket).await.expect("load").is_some());
    assert!(b.cached(&ticket).is_none() && !b.local_cache_live());
    redis.command(&format!("DEL auth:session:{ticket}")).expect("DEL");
    assert_eq!(b.load(&ticket).await.expect("load"), None);
}
