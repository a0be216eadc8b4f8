//! `RedisStore` against a real redis-server: every session of a person (`SessionListing`),
//! from the `sub` index back-channel logout uses, with Redis' TTLs keeping ended sessions
//! out of the list.

mod support;

use auth_core::{LogoutClaims, Revocation, SessionInfo, SessionRevocation, SessionStore};
use auth_core::{session_handle, unix_now};
use auth_redis::RedisStore;
use std::time::Duration;
use support::{server, session};

fn store(redis: &support::RedisServer) -> RedisStore {
    RedisStore::new(&redis.url()).expect("a valid URL")
}

fn handles(listed: &[SessionInfo]) -> Vec<&str> {
    listed.iter().map(|info| info.handle.as_str()).collect()
}

#[tokio::test]
async fn lists_and_ends_the_sessions_of_one_person() {
    let redis = server();
    let store = store(&redis);
    let listing = store.listing().expect("a Redis store lists sessions");

    let now = unix_now();
    let mut first = session("p", "alice", Some("sid-1"), 3600)
        .with_updated_at(Some(now - 10))
        .with_device(Some("Firefox on Linux".into()));
    first.created_at = now - 100;
    let a = store.save(&first).await.expect("save");
    let b = store.save(&session("p", "alice", Some("sid-2"), 3600)).await.expect("save");
    let c = store.save(&session("p", "alice", None, 3600)).await.expect("save");
    let bob = store.save(&session("p", "bob", None, 3600)).await.expect("save");
    let elsewhere = store.save(&session("q", "alice", None, 3600)).await.expect("save");

    let listed = listing.sessions("p", "alice").await.expect("list");
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(listed[0].handle, session_handle(&a), "oldest first");
    assert_eq!(
        (listed[0].provider.as_str(), listed[0].created_at, listed[0].last_seen, listed[0].device.as_deref()),
        ("p", now - 100, now - 10, Some("Firefox on Linux"))
    );
    assert_eq!(listed[0].ends_at, first.deadline());
    let mut expected = vec![session_handle(&b), session_handle(&c)];
    expected.sort();
    let mut rest: Vec<String> = listed[1..].iter().map(|info| info.handle.clone()).collect();
    rest.sort();
    assert_eq!(rest, expected);
    let shown = format!("{listed:?}");
    for ticket in [&a, &b, &c] {
        assert!(!shown.contains(ticket.as_str()), "no ticket is listed: {shown}");
    }

    assert!(!listing.end("p", "bob", &session_handle(&b)).await.expect("end"), "not bob's session");
    assert!(!listing.end("q", "alice", &session_handle(&b)).await.expect("end"), "nor another provider's");
    assert!(!listing.end("p", "alice", "no-such-handle").await.expect("end"));
    assert!(store.load(&b).await.expect("load").is_some());
    assert!(listing.end("p", "alice", &session_handle(&b)).await.expect("end"));
    assert_eq!(store.load(&b).await.expect("load"), None);
    assert!(!listing.end("p", "alice", &session_handle(&b)).await.expect("end"), "already ended");
    assert_eq!(redis.command(&format!("SISMEMBER auth:sub:p:alice {b}")).expect("SISMEMBER"), "0");

    let keep = session_handle(&a);
    assert_eq!(listing.end_all("p", "alice", Some(&keep)).await.expect("end all"), 1, "c");
    assert!(store.load(&a).await.expect("load").is_some(), "the one kept");
    assert_eq!(store.load(&c).await.expect("load"), None);
    assert_eq!(handles(&listing.sessions("p", "alice").await.expect("list")), [keep.as_str()]);
    assert_eq!(listing.end_all("p", "alice", None).await.expect("end all"), 1);
    assert!(listing.sessions("p", "alice").await.expect("list").is_empty());
    assert!(store.load(&bob).await.expect("load").is_some(), "another person's session stays");
    assert!(store.load(&elsewhere).await.expect("load").is_some(), "the same subject at another provider stays");
    assert_eq!(handles(&listing.sessions("q", "alice").await.expect("list")), [session_handle(&elsewhere)]);
}

#[tokio::test]
async fn expired_and_logged_out_sessions_are_not_listed_and_leave_the_index() {
    let redis = server();
    let store = store(&redis);
    let listing = store.listing().expect("listing");
    let short = store.save(&session("p", "alice", None, 1)).await.expect("save");
    let logged_out = store.save(&session("p", "alice", None, 3600)).await.expect("save");
    let live = store.save(&session("p", "alice", None, 3600)).await.expect("save");
    store.delete(&logged_out).await.expect("logout");
    assert_eq!(listing.sessions("p", "alice").await.expect("list").len(), 2, "the short one still lives");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(redis.command(&format!("EXISTS auth:session:{short}")).expect("EXISTS"), "0", "Redis expired it");
    assert_eq!(handles(&listing.sessions("p", "alice").await.expect("list")), [session_handle(&live)]);
    assert_eq!(redis.command("SCARD auth:sub:p:alice").expect("SCARD"), "1", "ended sessions leave the index");
    assert_eq!(redis.command(&format!("SISMEMBER auth:sub:p:alice {live}")).expect("SISMEMBER"), "1");
    assert!(!listing.end("p", "alice", &session_handle(&short)).await.expect("end"), "an expired session");
    assert_eq!(listing.end_all("p", "alice", None).await.expect("end all"), 1, "only live sessions count");
}

#[tokio::test]
async fn the_listing_index_is_back_channel_logouts() {
    let redis = server();
    let store = store(&redis);
    let listing = store.listing().expect("listing");
    // Microsoft: the session's subject is `tid:oid`, the index's the ID token's `sub`.
    let mut microsoft = session("microsoft", "tid:oid", None, 3600);
    microsoft.identity.claims.insert("sub".into(), "abc".into());
    let ticket = store.save(&microsoft).await.expect("save");
    assert_eq!(handles(&listing.sessions("microsoft", "abc").await.expect("list")), [session_handle(&ticket)]);
    assert!(listing.sessions("microsoft", "tid:oid").await.expect("list").is_empty(), "by the ID token's sub");

    // An entry without a session (a save between its first index write and the session's,
    // whose second index write puts it back; or a save that failed there) is dropped.
    let pending = auth_core::random_token();
    redis.command(&format!("SADD auth:sub:microsoft:abc {pending}")).expect("SADD");
    assert_eq!(listing.sessions("microsoft", "abc").await.expect("list").len(), 1);
    assert_eq!(redis.command(&format!("SISMEMBER auth:sub:microsoft:abc {pending}")).expect("SISMEMBER"), "0");
    let second = store.save(&microsoft).await.expect("save");
    assert_eq!(listing.sessions("microsoft", "abc").await.expect("list").len(), 2);
    assert!((3_595_000..=3_600_000).contains(&support::pttl(&redis, "auth:sub:microsoft:abc")), "the index expires");

    let by_sub = Revocation::of("microsoft", LogoutClaims::new(Some("abc".into()), None));
    assert_eq!(store.revoke(&by_sub).await.expect("revoke"), 2, "back-channel logout reads the same index");
    assert!(listing.sessions("microsoft", "abc").await.expect("list").is_empty());
    assert_eq!(store.load(&second).await.expect("load"), None);
}

#[tokio::test]
async fn prefixes_keep_apps_apart() {
    let redis = server();
    let a = store(&redis).with_prefix("app-a:");
    let b = store(&redis).with_prefix("app-b:");
    let in_a = a.save(&session("p", "alice", None, 60)).await.expect("save");
    let listing_b = b.listing().expect("listing");
    assert!(listing_b.sessions("p", "alice").await.expect("list").is_empty());
    assert_eq!(listing_b.end_all("p", "alice", None).await.expect("end all"), 0);
    assert!(!listing_b.end("p", "alice", &session_handle(&in_a)).await.expect("end"));
    assert!(a.load(&in_a).await.expect("load").is_some());
    assert_eq!(a.listing().expect("listing").sessions("p", "alice").await.expect("list").len(), 1);
}
