//! `RedisStore` against a real redis-server: the `SessionStore` contract, TTLs, indexes,
//! locks and prefixes.

mod support;

use auth_core::{LogoutClaims, Revocation, SessionLock, SessionRevocation, SessionStore, unix_now};
use auth_redis::RedisStore;
use std::collections::HashSet;
use std::time::Duration;
use support::{pttl, server, session};

fn store(redis: &support::RedisServer) -> RedisStore {
    RedisStore::new(&redis.url()).expect("a valid URL")
}

#[tokio::test]
async fn round_trip_with_the_session_lifetime_as_ttl() {
    let redis = server();
    let store = store(&redis);
    assert!(store.lock().is_some() && store.revocation().is_some());
    store.ping().await.expect("ping");

    let s = session("google", "alice", Some("sid-1"), 3600);
    let ticket = store.save(&s).await.expect("save");
    assert_eq!(ticket.len(), 43, "a 256-bit base64url ticket");
    assert_eq!(store.load(&ticket).await.expect("load"), Some(s.clone()));

    let key = format!("auth:session:{ticket}");
    let ttl = pttl(&redis, &key);
    assert!((3_595_000..=3_600_000).contains(&ttl), "the key expires with the session: {ttl} ms");
    let json = redis.command(&format!("GET {key}")).expect("GET");
    let stored: auth_core::Session = serde_json::from_str(&json).expect("the value is the session's JSON");
    assert_eq!(stored, s);
    for index in ["auth:sid:google:sid-1", "auth:sub:google:alice"] {
        assert_eq!(redis.command(&format!("SISMEMBER {index} {ticket}")).expect("SISMEMBER"), "1", "{index}");
        assert!((3_595_000..=3_600_000).contains(&pttl(&redis, index)), "{index} expires with its session");
    }
}

#[tokio::test]
async fn expired_sessions_are_gone() {
    let redis = server();
    let store = store(&redis);
    let ticket = store.save(&session("p", "alice", None, 1)).await.expect("save");
    assert!(store.load(&ticket).await.expect("load").is_some());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(store.load(&ticket).await.expect("load"), None);
    assert_eq!(redis.command(&format!("EXISTS auth:session:{ticket}")).expect("EXISTS"), "0", "Redis expired it");

    let over = store.save(&session("p", "alice", None, 0)).await.expect("saving an ended session");
    assert_eq!(store.load(&over).await.expect("load"), None);
    assert_eq!(redis.command(&format!("EXISTS auth:session:{over}")).expect("EXISTS"), "0", "nothing written");
}

#[tokio::test]
async fn the_idle_deadline_sets_the_ttl_and_renewals_extend_it() {
    let redis = server();
    let store = store(&redis);
    let mut s = session("p", "alice", None, 3600);
    s.idle_expires_at = Some(unix_now() + 60);
    let ticket = store.save(&s).await.expect("save");
    let ttl = pttl(&redis, &format!("auth:session:{ticket}"));
    assert!((55_000..=60_000).contains(&ttl), "the idle deadline comes first: {ttl} ms");

    s.idle_expires_at = Some(unix_now() + 600);
    store.update(&ticket, &s).await.expect("a renewal");
    let ttl = pttl(&redis, &format!("auth:session:{ticket}"));
    assert!((595_000..=600_000).contains(&ttl), "renewed: {ttl} ms");

    s.idle_expires_at = Some(unix_now().saturating_sub(1));
    let idle = store.save(&s).await.expect("save");
    assert_eq!(store.load(&idle).await.expect("load"), None, "past its idle deadline");
}

#[tokio::test]
async fn delete_and_unknown_tickets() {
    let redis = server();
    let store = store(&redis);
    let ticket = store.save(&session("p", "alice", None, 60)).await.expect("save");
    store.delete(&ticket).await.expect("delete");
    assert_eq!(store.load(&ticket).await.expect("load"), None);
    store.delete(&ticket).await.expect("deleting again is fine");
    for odd in ["", "not-a-ticket", "*", &"a".repeat(5000), &auth_core::random_token()] {
        assert_eq!(store.load(odd).await.expect("load"), None, "{odd:.20}");
        store.delete(odd).await.expect("delete");
    }
}

#[tokio::test]
async fn update_keeps_the_ticket_renews_the_ttl_and_never_resurrects() {
    let redis = server();
    let store = store(&redis);
    let mut s = session("p", "alice", Some("sid-1"), 60);
    let ticket = store.save(&s).await.expect("save");
    assert!(pttl(&redis, &format!("auth:session:{ticket}")) <= 60_000);

    s.tokens.access_token = Some("fresh".into());
    s.expires_at = unix_now() + 7200;
    assert_eq!(store.update(&ticket, &s).await.expect("update"), ticket, "the same ticket");
    assert_eq!(store.load(&ticket).await.expect("load"), Some(s.clone()));
    let ttl = pttl(&redis, &format!("auth:session:{ticket}"));
    assert!((7_195_000..=7_200_000).contains(&ttl), "the TTL follows the new expiry: {ttl} ms");
    assert!(pttl(&redis, "auth:sub:p:alice") > 7_000_000, "the index lives as long as the session");

    let revoked = Revocation::of("p", LogoutClaims::new(None, Some("sid-1".into())));
    assert_eq!(store.revoke(&revoked).await.expect("revoke"), 1);
    assert!(store.update(&ticket, &s).await.is_err(), "a revoked session is not updated");
    assert_eq!(store.load(&ticket).await.expect("load"), None, "nor resurrected");

    let other = store.save(&s).await.expect("save");
    store.delete(&other).await.expect("logout");
    assert!(store.update(&other, &s).await.is_err(), "a logged-out session is not resurrected");
    assert_eq!(store.load(&other).await.expect("load"), None);
    assert!(store.update("forged", &s).await.is_err());

    let live = store.save(&s).await.expect("save");
    s.expires_at = unix_now().saturating_sub(1);
    assert_eq!(store.update(&live, &s).await.expect("ending a session by update"), live);
    assert_eq!(store.load(&live).await.expect("load"), None);
}

#[tokio::test]
async fn revoke_by_sid_and_by_subject_for_the_matching_provider_only() {
    let redis = server();
    let store = store(&redis);
    let p_sid1 = store.save(&session("p", "alice", Some("sid-1"), 60)).await.expect("save");
    let p_sid1_again = store.save(&session("p", "alice", Some("sid-1"), 60)).await.expect("save");
    let p_sid2 = store.save(&session("p", "alice", Some("sid-2"), 60)).await.expect("save");
    let p_nosid = store.save(&session("p", "alice", None, 60)).await.expect("save");
    let q_sid1 = store.save(&session("q", "alice", Some("sid-1"), 60)).await.expect("save");
    let p_bob = store.save(&session("p", "bob", Some("sid-1"), 60)).await.expect("save");
    // Ids with the key separator must not reach each other's index.
    let tricky = store.save(&session("a:b", "c", Some("x"), 60)).await.expect("save");
    let live = |ticket: String| {
        let store = store.clone();
        async move { store.load(&ticket).await.expect("load").is_some() }
    };

    let by_sid = Revocation::of("p", LogoutClaims::new(None, Some("sid-1".into())));
    assert_eq!(store.revoke(&by_sid).await.expect("revoke"), 3, "alice's two and bob's sid-1 sessions at p");
    assert!(!live(p_sid1.clone()).await && !live(p_sid1_again).await && !live(p_bob).await);
    assert!(live(p_sid2.clone()).await && live(p_nosid.clone()).await && live(q_sid1.clone()).await);
    assert_eq!(store.revoke(&by_sid).await.expect("revoke"), 0, "nothing left to revoke");
    assert_eq!(redis.command("EXISTS auth:sid:p:sid-1").expect("EXISTS"), "0", "the used index is dropped");

    let by_sub = Revocation::of("p", LogoutClaims::new(Some("alice".into()), None));
    let wrong_provider = Revocation::subject("r", "alice");
    assert_eq!(store.revoke(&wrong_provider).await.expect("revoke"), 0);
    assert_eq!(store.revoke(&by_sub).await.expect("revoke"), 2, "the rest of alice's sessions at p");
    assert!(!live(p_sid2).await && !live(p_nosid).await);
    assert!(live(q_sid1.clone()).await, "the same subject at another provider stays");

    let sub_of_other_provider = Revocation::of("a", LogoutClaims::new(Some("b:c".into()), None));
    assert_eq!(store.revoke(&sub_of_other_provider).await.expect("revoke"), 0);
    let sid_of_other_provider = Revocation::of("a", LogoutClaims::new(None, Some("b:x".into())));
    assert_eq!(store.revoke(&sid_of_other_provider).await.expect("revoke"), 0);
    assert!(live(tricky.clone()).await);
    let nothing = Revocation::of("q", LogoutClaims::new(None, None));
    assert_eq!(store.revoke(&nothing).await.expect("revoke"), 0);
    let q_by_sid = Revocation::of("q", LogoutClaims::new(Some("ignored".into()), Some("sid-1".into())));
    assert_eq!(store.revoke(&q_by_sid).await.expect("revoke"), 1, "sid wins over subject");
    assert!(!live(q_sid1).await);
}

#[tokio::test]
async fn a_subject_logout_finds_sessions_by_the_id_token_sub() {
    let redis = server();
    let store = store(&redis);
    // Microsoft: the session's subject is `tid:oid`; the logout token's `sub` is the ID token's.
    let mut microsoft = session("microsoft", "tid:oid", None, 60);
    microsoft.identity.claims.insert("sub".into(), "abc".into());
    let ticket = store.save(&microsoft).await.expect("save");
    assert_eq!(redis.command(&format!("SISMEMBER auth:sub:microsoft:abc {ticket}")).expect("SISMEMBER"), "1");
    assert_eq!(redis.command("EXISTS auth:sub:microsoft:tid%3Aoid").expect("EXISTS"), "0", "not by Identity::subject");

    let by_preset_subject = Revocation::of("microsoft", LogoutClaims::new(Some("tid:oid".into()), None));
    assert_eq!(store.revoke(&by_preset_subject).await.expect("revoke"), 0);
    let by_sub = Revocation::of("microsoft", LogoutClaims::new(Some("abc".into()), None));
    assert_eq!(store.revoke(&by_sub).await.expect("revoke"), 1, "the logout token's sub finds the session");
    assert_eq!(store.load(&ticket).await.expect("load"), None);
}

#[tokio::test]
async fn locks_are_exclusive_expire_and_are_released_only_by_their_holder() {
    let redis = server();
    let one = store(&redis);
    let two = store(&redis);
    let ttl = Duration::from_secs(10);

    assert!(one.try_lock("refresh:t", ttl).await.expect("lock"));
    assert!(!one.try_lock("refresh:t", ttl).await.expect("lock"), "held, even by the same store");
    assert!(!two.try_lock("refresh:t", ttl).await.expect("lock"), "held for every instance");
    let left = pttl(&redis, "auth:lock:refresh%3At");
    assert!((9_000..=10_000).contains(&left), "PX ttl: {left}");
    two.unlock("refresh:t").await.expect("unlock");
    assert!(!two.try_lock("refresh:t", ttl).await.expect("lock"), "another store's unlock does nothing");
    one.unlock("refresh:t").await.expect("unlock");
    assert!(two.try_lock("refresh:t", ttl).await.expect("lock"), "free after its holder's unlock");
    two.unlock("refresh:t").await.expect("unlock");

    assert!(one.try_lock("short", Duration::from_millis(100)).await.expect("lock"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(two.try_lock("short", ttl).await.expect("lock"), "an expired lock is free");
    one.unlock("short").await.expect("a stale unlock");
    assert!(!one.try_lock("short", ttl).await.expect("lock"), "the stale unlock left the new holder's lock");
    one.unlock("never-taken").await.expect("unlocking a free lock is fine");
}

#[tokio::test]
async fn prefixes_isolate_apps_sharing_a_redis() {
    let redis = server();
    let default = store(&redis);
    let a = store(&redis).with_prefix("app-a:");
    let b = store(&redis).with_prefix("app-b:");
    assert_eq!(default.prefix(), "auth:");

    let s = session("p", "alice", Some("sid-1"), 60);
    let in_a = a.save(&s).await.expect("save");
    let in_b = b.save(&s).await.expect("save");
    assert_eq!(redis.command(&format!("EXISTS app-a:session:{in_a}")).expect("EXISTS"), "1");
    assert_eq!(b.load(&in_a).await.expect("load"), None);
    assert_eq!(default.load(&in_a).await.expect("load"), None);
    assert!(b.update(&in_a, &s).await.is_err());

    let revocation = Revocation::of("p", LogoutClaims::new(Some("alice".into()), None));
    assert_eq!(b.revoke(&revocation).await.expect("revoke"), 1);
    assert!(a.load(&in_a).await.expect("load").is_some(), "b's revocation leaves a's sessions");
    assert_eq!(b.load(&in_b).await.expect("load"), None);

    assert!(a.try_lock("k", Duration::from_secs(5)).await.expect("lock"));
    assert!(b.try_lock("k", Duration::from_secs(5)).await.expect("lock"), "locks are per prefix");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_parallel_saves_and_loads() {
    let redis = server();
    let store = store(&redis);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let s = session("p", &format!("user-{}", i % 10), Some(&format!("sid-{i}")), 600);
                let ticket = store.save(&s).await.expect("save");
                assert_eq!(store.load(&ticket).await.expect("load"), Some(s));
                ticket
            })
        })
        .collect();
    let mut tickets = HashSet::new();
    for task in tasks {
        tickets.insert(task.await.expect("task"));
    }
    assert_eq!(tickets.len(), 200, "every ticket distinct");
    let revocation = Revocation::of("p", LogoutClaims::new(Some("user-3".into()), None));
    assert_eq!(store.revoke(&revocation).await.expect("revoke"), 20);
}

#[test]
fn debug_and_errors_never_show_the_password() {
    let store = RedisStore::new("redis://app:hunter2@127.0.0.1:6379/0").expect("a valid URL");
    let shown = format!("{store:?}");
    assert!(!shown.contains("hunter2") && shown.contains("127.0.0.1:6379"), "{shown}");
    let cluster = RedisStore::new("redis+cluster://:hunter2@10.0.0.1:7000,10.0.0.2:7000").expect("a valid URL");
    let shown = format!("{cluster:?}");
    assert!(!shown.contains("hunter2") && shown.contains("cluster: true"), "{shown}");
    let error = RedisStore::new("redis://:hunter2@host:notaport").expect_err("a bad port");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}
