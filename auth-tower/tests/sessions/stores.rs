//! Stores named by the config, and custom stores with their capabilities.

use super::*;
use auth_core::{SessionLock, StoreError};
use auth_tower::async_trait;
use std::collections::{HashMap, HashSet};

// ------------------------------------------------------------------ stores by config

#[tokio::test]
async fn session_store_memory_in_the_config_keeps_sessions_on_the_server() {
    let idp = idp().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = Setup::new("session_store = \"memory\"").config(&idp, &base);
    let layer = AuthLayer::from_config(config).unwrap();
    let app = serve(listener, layer, base, None).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    assert_eq!(browser.jar["auth_session"].len(), 43, "a 256-bit ticket, not the session");
    assert!(browser.logged_in().await);
    let answer = idp.backchannel_logout(&app.backchannel_uri(), &LogoutToken::for_subject("alice")).await.unwrap();
    assert_eq!(answer.status, 200, "revocable: {}", answer.body);
    assert!(!browser.logged_in().await);
}

#[cfg(not(feature = "redis"))]
#[tokio::test]
async fn a_redis_url_without_the_redis_feature_says_how_to_enable_it() {
    let idp = idp().await;
    let config = Setup::new("session_store = \"redis://:hunter2@127.0.0.1:6379\"").config(&idp, "http://127.0.0.1:1");
    let message = AuthLayer::from_config(config).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("auth.session_store") && message.contains("features = [\"redis\"]"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

/// A store written outside the workspace, shared by several instances: its own map and
/// its own lock, offered through `SessionStore::lock`.
#[derive(Debug, Default)]
struct SharedMap {
    sessions: Mutex<HashMap<String, Session>>,
    locks: Mutex<HashSet<String>>,
    lock_calls: std::sync::atomic::AtomicUsize,
    /// While set, every call fails, as a store that is down does.
    down: std::sync::atomic::AtomicBool,
    /// While set, `update` fails (the store went down after loading).
    updates_fail: std::sync::atomic::AtomicBool,
}

impl SharedMap {
    fn up(&self) -> Result<(), StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::other(std::io::Error::other("the store is down")));
        }
        Ok(())
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl SessionStore for SharedMap {
    async fn save(&self, session: &Session) -> Result<String, StoreError> {
        self.up()?;
        let ticket = auth_core::random_token();
        self.sessions.lock().unwrap().insert(ticket.clone(), session.clone());
        Ok(ticket)
    }
    async fn load(&self, ticket: &str) -> Result<Option<Session>, StoreError> {
        self.up()?;
        let now = auth_core::unix_now();
        Ok(self.sessions.lock().unwrap().get(ticket).filter(|s| !s.is_expired_at(now)).cloned())
    }
    async fn delete(&self, ticket: &str) -> Result<(), StoreError> {
        self.up()?;
        self.sessions.lock().unwrap().remove(ticket);
        Ok(())
    }
    async fn update(&self, ticket: &str, session: &Session) -> Result<String, StoreError> {
        self.up()?;
        if self.updates_fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::other(std::io::Error::other("the store went down")));
        }
        self.sessions.lock().unwrap().insert(ticket.to_owned(), session.clone());
        Ok(ticket.to_owned())
    }
    fn lock(&self) -> Option<&dyn SessionLock> {
        Some(self)
    }
}

#[async_trait]
impl SessionLock for SharedMap {
    async fn try_lock(&self, key: &str, _ttl: Duration) -> Result<bool, StoreError> {
        self.lock_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self.locks.lock().unwrap().insert(key.to_owned()))
    }
    async fn unlock(&self, key: &str) -> Result<(), StoreError> {
        self.locks.lock().unwrap().remove(key);
        Ok(())
    }
}

/// The lock is a capability the store hands out: a custom store that offers one gets
/// single-flight refresh across instances (before, a store that implemented `try_lock` but
/// kept the default `is_server_side` silently lost it and refreshed once per instance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_store_with_a_lock_refreshes_once_across_two_instances() {
    let store = Arc::new(SharedMap::default());
    let setup = || Setup::new("refresh_margin_secs = 0").custom_store(Arc::clone(&store) as Arc<dyn SessionStore>);
    let (idp, first) = super::refresh::short_lived(setup()).await;
    let second = setup().start(&idp).await;
    super::refresh::fifty_concurrent_requests_refresh_once(&idp, &[&first, &second]).await;
    assert!(store.lock_calls.load(std::sync::atomic::Ordering::SeqCst) >= 1, "the layer used the store's lock");
    assert!(store.locks.lock().unwrap().is_empty(), "and released it");
}

/// Logout while the store is down: the cookie is cleared, and the session the store could
/// not delete is refused by this instance and deleted once the store is back. Before, the
/// old cookie opened the session again as soon as the store came back.
#[tokio::test]
async fn a_logout_while_the_store_is_down_sticks_once_it_is_back() {
    let idp = idp().await;
    let store = Arc::new(SharedMap::default());
    let app = Setup::new("").custom_store(Arc::clone(&store) as Arc<dyn SessionStore>).start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let signed_in = browser.jar.clone();
    assert!(browser.logged_in().await);

    store.set_down(true);
    let logout = browser.send(reqwest::Method::POST, "/auth/logout", &[("origin", app.base.as_str())]).await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER, "logout does not fail with the store");
    assert!(browser.session_cookie_deleted());
    assert_eq!(store.sessions.lock().unwrap().len(), 1, "the store could not delete it");
    store.set_down(false);

    // Someone who kept the old cookie.
    let mut thief = Browser::new(&app);
    thief.jar = signed_in;
    assert!(!thief.logged_in().await, "the signed-out session does not open again");
    // The layer deletes it once the store answers (first retry after 1 s).
    for _ in 0..50 {
        if store.sessions.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(store.sessions.lock().unwrap().is_empty(), "the session is deleted once the store is back");
    assert!(!thief.logged_in().await);
}

/// A store that is down fails every request the same way: the error is logged once every
/// few seconds (with how many were held back), not once per request (the soak's Redis outage
/// wrote 63,000 error lines in five seconds before).
#[tokio::test]
async fn a_store_that_is_down_is_logged_once_not_per_request() {
    let idp = idp().await;
    let store = Arc::new(SharedMap::default());
    let app = Setup::new("").custom_store(Arc::clone(&store) as Arc<dyn SessionStore>).start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let (logs, _guard) = capture_logs(tracing::Level::DEBUG);
    store.set_down(true);
    for _ in 0..20 {
        assert!(!browser.logged_in().await, "served anonymous while the store is down");
    }
    let text = logs.text();
    assert_eq!(logs.count(" ERROR "), 1, "one error line for twenty failed requests:\n{text}");
    assert!(logs.contains("session store failed; serving requests as anonymous"), "{text}");
    assert_eq!(logs.count("session store failed; serving the request as anonymous"), 19, "the rest at debug");
    store.set_down(false);
    assert!(browser.logged_in().await, "back once the store answers");
}

/// A refresh whose store failed is not remembered: once the store is back, the next request
/// refreshes (before, every request of that session was anonymous for ten seconds).
#[tokio::test]
async fn a_refresh_the_store_failed_is_tried_again_by_the_next_request() {
    let store = Arc::new(SharedMap::default());
    let setup = Setup::new("refresh_margin_secs = 0").custom_store(Arc::clone(&store) as Arc<dyn SessionStore>);
    // A provider that keeps the refresh token, so the one the store kept still works.
    let (idp, app) = super::refresh::short_lived_not_rotating(setup).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    super::refresh::until_expired().await;

    store.updates_fail.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(!browser.logged_in().await, "the refreshed tokens could not be stored");
    store.updates_fail.store(false, std::sync::atomic::Ordering::SeqCst);
    idp.set_access_token_ttl(Duration::from_secs(3600));
    assert!(browser.logged_in().await, "the next request refreshes again");
}

// ------------------------------------------------------------------ Redis, local copies

/// The ids of the Redis clients that track keys (`CLIENT LIST`, flag `t`).
fn tracking_clients(redis: &auth_redis::testing::RedisServer) -> Vec<String> {
    let list = redis.command("CLIENT LIST").expect("CLIENT LIST");
    let tracking = |line: &&str| line.split(' ').any(|f| f.strip_prefix("flags=").is_some_and(|f| f.contains('t')));
    list.lines()
        .filter(tracking)
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")).map(str::to_owned))
        .collect()
}

/// Waits (up to 5 s) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "waited 5 s for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Two instances on one Redis, each with its `RedisStore`'s local copies: B serves a
/// session from its copy, a logout on A ends it on B by B's very next request (twenty
/// times over), and while B's tracking connection is gone B reads Redis, never its copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_layers_on_one_redis_keep_their_local_copies_current() {
    let redis = auth_redis::testing::RedisServer::start().expect("redis-server (apt-get install redis-server)");
    let idp = idp().await;
    let store = || auth_redis::RedisStore::new(&redis.url()).expect("a Redis URL");
    let (on_a, on_b) = (store(), store());
    let a = Setup::new("").custom_store(Arc::new(on_a.clone())).start(&idp).await;
    let b = Setup::new("").custom_store(Arc::new(on_b.clone())).start(&idp).await;
    let signed_in_on_both = || async {
        let mut browser = Browser::new(&a);
        browser.login().await;
        let ticket = browser.jar["auth_session"].clone();
        let mut on_b_too = Browser::with_jar(&b, &browser.jar);
        assert!(on_b_too.logged_in().await, "B finds the session A made");
        until("B's tracking", || on_b.local_cache_live()).await;
        assert!(on_b_too.logged_in().await);
        assert!(on_b.cached(&ticket).is_some(), "B serves it from its local copy");
        (browser, on_b_too, ticket)
    };

    for round in 0..20 {
        let (mut browser, mut on_b_too, ticket) = signed_in_on_both().await;
        let logout = browser.send(reqwest::Method::POST, "/auth/logout", &[("origin", a.base.as_str())]).await;
        assert_eq!(logout.status(), StatusCode::SEE_OTHER);
        assert!(!on_b_too.logged_in().await, "round {round}: B's next request after the logout on A is anonymous");
        assert!(on_b.cached(&ticket).is_none());
    }

    // B's tracking connection dies, and the session is ended behind its back (a logout whose
    // invalidation B cannot hear): B reads Redis rather than serve its copy.
    let (_browser, mut on_b_too, ticket) = signed_in_on_both().await;
    for id in tracking_clients(&redis) {
        redis.command(&format!("CLIENT KILL ID {id}")).expect("CLIENT KILL");
    }
    until("B to notice", || !on_b.local_cache_live()).await;
    redis.command(&format!("DEL auth:session:{ticket}")).expect("DEL");
    assert!(!on_b_too.logged_in().await, "without tracking, B went back to Redis");
    // Tracking comes back by itself.
    let (_browser, mut again, _) = signed_in_on_both().await;
    assert!(again.logged_in().await);
}
