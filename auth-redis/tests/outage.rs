//! Redis down, killed, hung or misconfigured: calls fail fast with `Unavailable`, nothing
//! panics, and the store recovers by itself once Redis is back.

mod support;

use auth_core::{SessionStore, StoreError};
use auth_redis::RedisStore;
use std::net::TcpListener;
use std::time::{Duration, Instant};
use support::{RedisServer, server, session};

/// What a call may take while Redis is down: the default 1 s + 500 ms, plus slack for a
/// loaded machine.
const BOUND: Duration = Duration::from_millis(2500);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Asserts that `load` fails with `Unavailable` within `BOUND`.
async fn assert_unavailable(store: &RedisStore) {
    let started = Instant::now();
    let result = store.load(&auth_core::random_token()).await;
    let took = started.elapsed();
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
    assert!(took < BOUND, "load took {took:?}");
    let started = Instant::now();
    let result = store.save(&session("p", "alice", None, 60)).await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
    assert!(started.elapsed() < BOUND, "save took {:?}", started.elapsed());
}

/// Retries a save-and-load until it works, for at most 5 s.
async fn assert_recovers(store: &RedisStore) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let attempt = async {
            let s = session("p", "alice", None, 60);
            let ticket = store.save(&s).await?;
            Ok::<_, StoreError>(store.load(&ticket).await? == Some(s))
        };
        match attempt.await {
            Ok(true) => return,
            Ok(false) => panic!("a saved session did not load"),
            Err(e) if Instant::now() > deadline => panic!("did not recover: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test]
async fn builds_while_redis_is_down_and_recovers_when_it_starts() {
    let port = free_port();
    let store = RedisStore::new(&format!("redis://127.0.0.1:{port}/0")).expect("no I/O at construction");
    assert_unavailable(&store).await;
    assert!(store.ping().await.is_err());
    assert_unavailable(&store).await;

    let _redis = RedisServer::start_on(port).expect("redis-server on the same port");
    assert_recovers(&store).await;
}

#[tokio::test]
async fn killed_midway_then_restarted() {
    let redis = server();
    let port = redis.port();
    let store = RedisStore::new(&redis.url()).expect("URL");
    let ticket = store.save(&session("p", "alice", None, 60)).await.expect("save");
    assert!(store.load(&ticket).await.expect("load").is_some());

    redis.stop();
    assert_unavailable(&store).await;
    assert_unavailable(&store).await;

    let _redis = RedisServer::start_on(port).expect("restart on the same port");
    assert_recovers(&store).await;
    assert_eq!(store.load(&ticket).await.expect("load"), None, "the new server has no data");
}

/// After an outage, the first call once Redis is back must be served: for an app it is a
/// person's request (a login's callback), which should not fail on the memory of the
/// outage. Also for a store built while Redis was down. (On a multi-threaded runtime, as
/// apps run: the connection manager's reconnection attempts then run at once.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_call_after_a_restart_is_served() {
    let redis = server();
    let port = redis.port();
    let store = RedisStore::new(&redis.url()).expect("URL");
    store.ping().await.expect("ping");
    redis.stop();
    assert_unavailable(&store).await;
    let _redis = RedisServer::start_on(port).expect("restart on the same port");
    let ticket = store.save(&session("p", "alice", Some("sid-1"), 60)).await.expect("the first call after the restart");
    assert!(store.load(&ticket).await.expect("load").is_some());

    let port = free_port();
    let store = RedisStore::new(&format!("redis://127.0.0.1:{port}/0")).expect("no I/O at construction");
    assert_unavailable(&store).await;
    let _redis = RedisServer::start_on(port).expect("redis-server on the port the store names");
    store.ping().await.expect("the first call once Redis is up");
}

#[tokio::test]
async fn a_hung_server_times_out_then_recovers() {
    let redis = server();
    let store = RedisStore::new(&redis.url()).expect("URL");
    store.ping().await.expect("ping");

    redis.pause();
    assert_unavailable(&store).await;
    redis.resume();
    assert_recovers(&store).await;
}

#[tokio::test]
async fn a_refused_handshake_recovers_once_the_server_is_fixed() {
    // The store sends a password the server does not expect yet: AUTH fails (not an I/O
    // error), which must not leave the store stuck once the server is configured.
    let redis = server();
    let store = RedisStore::new(&format!("redis://:s3cret-pw@127.0.0.1:{}/0", redis.port())).expect("URL");
    let error = store.load(&auth_core::random_token()).await.expect_err("AUTH fails");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(!error.to_string().contains("s3cret-pw"), "{error}");

    redis.command("CONFIG SET requirepass s3cret-pw").expect("set the password");
    assert_recovers(&store).await;
}

#[tokio::test]
async fn short_timeouts_are_honoured() {
    let redis = server();
    let store = RedisStore::new(&redis.url())
        .expect("URL")
        .with_connect_timeout(Duration::from_millis(200))
        .with_response_timeout(Duration::from_millis(100));
    store.ping().await.expect("ping");
    redis.pause();
    let started = Instant::now();
    assert!(store.ping().await.is_err());
    assert!(started.elapsed() < Duration::from_millis(800), "took {:?}", started.elapsed());
    redis.resume();
    assert_recovers(&store).await;
}

#[tokio::test]
async fn an_unreachable_cluster_is_unavailable_not_fatal() {
    let url = format!("redis+cluster://127.0.0.1:{},127.0.0.1:{}", free_port(), free_port());
    let store = RedisStore::new(&url).expect("no I/O at construction");
    assert_unavailable(&store).await;
}
