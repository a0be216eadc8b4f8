//! `RedisStore` on a real three-node Redis Cluster: the keys of one session and of its
//! indexes sit in different slots (on different nodes), and every operation still works.

mod support;

use auth_core::{LogoutClaims, Revocation, SessionLock, SessionRevocation, SessionStore, unix_now};
use auth_redis::RedisStore;
use std::time::Duration;
use support::{RedisCluster, session};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_works_across_slots() {
    let cluster = RedisCluster::start(3).unwrap_or_else(|e| panic!("cannot start a Redis Cluster: {e}"));
    let store = RedisStore::new(&cluster.url()).expect("a cluster URL");
    store.ping().await.expect("ping");

    let mut tickets = Vec::new();
    for i in 0..30 {
        let s = session("p", &format!("user-{}", i % 3), Some(&format!("sid-{}", i % 5)), 600);
        let ticket = store.save(&s).await.expect("save");
        assert_eq!(store.load(&ticket).await.expect("load"), Some(s));
        tickets.push(ticket);
    }
    let holding: Vec<u64> =
        cluster.nodes().iter().map(|n| n.command("DBSIZE").expect("DBSIZE").parse().expect("an integer")).collect();
    assert!(holding.iter().all(|n| *n > 0), "keys spread over every node: {holding:?}");

    let mut s = session("p", "user-0", Some("sid-0"), 600);
    s.expires_at = unix_now() + 1200;
    assert_eq!(store.update(&tickets[0], &s).await.expect("update"), tickets[0]);
    assert_eq!(store.load(&tickets[0]).await.expect("load"), Some(s.clone()));

    // Sessions i with i % 5 == 0: 0, 5, 10, 15, 20, 25.
    let by_sid = Revocation::of("p", LogoutClaims::new(None, Some("sid-0".into())));
    assert_eq!(store.revoke(&by_sid).await.expect("revoke"), 6);
    assert!(store.update(&tickets[0], &s).await.is_err(), "a revoked session stays ended");
    // user-1 is i % 3 == 1: ten sessions, two of them (10, 25) already revoked.
    let by_sub = Revocation::of("p", LogoutClaims::new(Some("user-1".into()), None));
    assert_eq!(store.revoke(&by_sub).await.expect("revoke"), 8);
    assert!(store.load(&tickets[2]).await.expect("load").is_some(), "user-2's session 2 stays");

    store.delete(&tickets[2]).await.expect("delete");
    assert_eq!(store.load(&tickets[2]).await.expect("load"), None);

    // user-2 is i % 3 == 2: ten sessions; 5 and 20 revoked by sid-0, 2 deleted.
    let listing = store.listing().expect("listing");
    assert_eq!(listing.sessions("p", "user-2").await.expect("list").len(), 7);
    let keep = auth_core::session_handle(&tickets[8]);
    assert_eq!(listing.end_all("p", "user-2", Some(&keep)).await.expect("end all"), 6);
    let left = listing.sessions("p", "user-2").await.expect("list");
    assert_eq!(left.iter().map(|info| info.handle.as_str()).collect::<Vec<_>>(), [keep.as_str()]);
    assert!(listing.end("p", "user-2", &keep).await.expect("end"));
    assert_eq!(store.load(&tickets[8]).await.expect("load"), None);

    let other = RedisStore::new(&cluster.url()).expect("a cluster URL");
    assert!(store.try_lock("refresh", Duration::from_secs(5)).await.expect("lock"));
    assert!(!other.try_lock("refresh", Duration::from_secs(5)).await.expect("lock"));
    store.unlock("refresh").await.expect("unlock");
    assert!(other.try_lock("refresh", Duration::from_secs(5)).await.expect("lock"));
}
