//! Refreshing access tokens: rotation, single flight, refusals, stores that misbehave.

use super::*;
use auth_core::SessionLock;
use auth_tower::async_trait;
use metrics::{SharedString, Unit};
use metrics_util::CompositeKey;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

// --------------------------------------------------------------------------- refresh

/// An IdP whose access tokens live 1 s (until a test says otherwise with
/// `set_access_token_ttl`), and an app refreshing them when they have expired.
pub(super) async fn short_lived(setup: Setup) -> (MockIdp, App) {
    let idp =
        MockIdp::builder().login_as(Some("alice")).access_token_ttl(Duration::from_secs(1)).start().await.unwrap();
    let app = setup.start(&idp).await;
    (idp, app)
}

/// As [`short_lived`], with a provider that keeps the refresh token (as Google does).
pub(super) async fn short_lived_not_rotating(setup: Setup) -> (MockIdp, App) {
    let idp = MockIdp::builder()
        .login_as(Some("alice"))
        .access_token_ttl(Duration::from_secs(1))
        .rotate_refresh_tokens(false)
        .start()
        .await
        .unwrap();
    let app = setup.start(&idp).await;
    (idp, app)
}

/// Waits until an access token issued now has expired (expiry is in whole seconds).
pub(super) async fn until_expired() {
    tokio::time::sleep(Duration::from_millis(2100)).await;
}

pub(super) async fn refreshes_and_persists_the_rotated_refresh_token(setup: Setup) {
    let (idp, app) = short_lived(setup).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let first = browser.text("/token").await;
    idp.reset_hits();
    until_expired().await;

    let token = browser.get("/token").await;
    assert_eq!(token.status(), StatusCode::OK);
    let second = token.text().await.unwrap();
    assert_ne!(second, first, "the handler sees the refreshed access token");
    assert_eq!(idp.hits().token, 1);
    assert!(browser.session_cookie_set(), "the refreshed session's cookie is written");

    // The provider rotated the refresh token: only the new one works now, so a second
    // refresh succeeding proves it was stored.
    idp.set_access_token_ttl(Duration::from_secs(3600));
    until_expired().await;
    let third = browser.text("/token").await;
    assert_ne!(third, second);
    assert_eq!(idp.hits().token, 2);
    assert!(browser.logged_in().await);
    assert_eq!(browser.text("/token").await, third);
    assert_eq!(idp.hits().token, 2, "a fresh token is not refreshed");
}

#[tokio::test]
async fn cookie_session_refreshes_and_persists_the_rotated_refresh_token() {
    refreshes_and_persists_the_rotated_refresh_token(Setup::new("refresh_margin_secs = 0")).await;
}

#[tokio::test]
async fn server_side_session_refreshes_and_persists_the_rotated_refresh_token() {
    refreshes_and_persists_the_rotated_refresh_token(Setup::new("refresh_margin_secs = 0").memory()).await;
}

/// Providers that keep the refresh token (panva's `oidc-provider` for confidential clients,
/// Google) answer every refresh with the same one. A session refreshed once must be
/// refreshed again when its new access token is due, not handed the remembered outcome of
/// the previous refresh (whose token has expired by then).
async fn refreshes_again_when_the_refresh_token_is_not_rotated(setup: Setup) {
    let (idp, app) = short_lived_not_rotating(setup).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let first = browser.text("/token").await;
    idp.reset_hits();
    let mut seen = vec![first];
    for round in 1..=2 {
        until_expired().await;
        let token = browser.get("/token").await;
        assert_eq!(token.status(), StatusCode::OK, "round {round}");
        let fresh = token.text().await.unwrap();
        assert!(!seen.contains(&fresh), "round {round}: the expired access token was served again");
        assert_eq!(idp.hits().token, round, "round {round}: one refresh per expiry");
        seen.push(fresh);
    }
    assert!(browser.logged_in().await);
}

#[tokio::test]
async fn cookie_session_refreshes_again_when_the_refresh_token_is_not_rotated() {
    refreshes_again_when_the_refresh_token_is_not_rotated(Setup::new("refresh_margin_secs = 0")).await;
}

#[tokio::test]
async fn server_side_session_refreshes_again_when_the_refresh_token_is_not_rotated() {
    refreshes_again_when_the_refresh_token_is_not_rotated(Setup::new("refresh_margin_secs = 0").memory()).await;
}

/// Fifty requests with one expired access token, spread over `apps`: one refresh.
pub(super) async fn fifty_concurrent_requests_refresh_once(idp: &MockIdp, apps: &[&App]) {
    let mut browser = Browser::new(apps[0]);
    browser.login().await;
    let cookie = browser.cookie_header();
    let before = browser.text("/token").await;
    idp.reset_hits();
    // The refreshed token lives long, so that only the expired one is refreshed.
    idp.set_access_token_ttl(Duration::from_secs(3600));
    until_expired().await;
    // Slow answers make sure the requests overlap the refresh.
    idp.set_fault(Fault::Delay(Duration::from_millis(300)));
    let http = reqwest::Client::new();
    let requests = (0..50).map(|i| {
        let (http, cookie) = (http.clone(), cookie.clone());
        let url = format!("{}/token", apps[i % apps.len()].base);
        tokio::spawn(async move {
            let response = http.get(url).header("cookie", cookie).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        })
    });
    let answers: Vec<(StatusCode, String)> =
        futures_util::future::join_all(requests).await.into_iter().map(Result::unwrap).collect();
    idp.clear_faults();
    assert_eq!(idp.hits().token, 1, "exactly one refresh");
    let refreshed = &answers[0].1;
    assert_ne!(refreshed, &before);
    for (status, token) in &answers {
        assert_eq!(*status, StatusCode::OK, "{token}");
        assert_eq!(token, refreshed, "every request sees the one refreshed token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_refresh_once_with_the_cookie_store() {
    let (idp, app) = short_lived(Setup::new("refresh_margin_secs = 0")).await;
    fifty_concurrent_requests_refresh_once(&idp, &[&app]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_refresh_once_with_a_memory_store() {
    let (idp, app) = short_lived(Setup::new("refresh_margin_secs = 0").memory()).await;
    fifty_concurrent_requests_refresh_once(&idp, &[&app]).await;
}

/// Two instances sharing one store (as with Redis): the store's lock makes one refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_on_two_instances_sharing_a_store_refresh_once() {
    let store = Arc::new(MemoryStore::new());
    let (idp, first) = short_lived(Setup::new("refresh_margin_secs = 0").store(Arc::clone(&store))).await;
    let second = Setup::new("refresh_margin_secs = 0").store(store).start(&idp).await;
    fifty_concurrent_requests_refresh_once(&idp, &[&first, &second]).await;

    // And a logout on one instance is seen by the other.
    let mut browser = Browser::new(&first);
    browser.login().await;
    let cookie = browser.jar["auth_session"].clone();
    let mut other = Browser::new(&second);
    other.jar.insert("auth_session".into(), cookie);
    assert!(other.logged_in().await);
    browser.send(reqwest::Method::POST, "/auth/logout", &[]).await;
    assert!(!other.logged_in().await);
}

async fn refusal_logs_out(fault: Fault, memory: bool) {
    let setup = Setup::new("refresh_margin_secs = 0");
    let (idp, app) = short_lived(if memory { setup.memory() } else { setup }).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    assert_eq!(app.sessions(), usize::from(memory));
    until_expired().await;
    idp.set_fault(fault.clone());
    let response = browser.get("/me").await;
    assert_eq!(response.status(), StatusCode::OK, "{fault:?}: the request is served");
    assert_eq!(response.json::<Value>().await.unwrap()["is_logged_in"], false, "{fault:?}");
    assert!(browser.session_cookie_deleted(), "{fault:?}: the cookie is cleared");
    assert_eq!(app.sessions(), 0, "{fault:?}: the session is deleted");
    idp.clear_faults();
    assert!(!browser.logged_in().await);
}

#[tokio::test]
async fn invalid_grant_logs_out_cleanly() {
    tokio::join!(
        refusal_logs_out(Fault::TokenError("invalid_grant".into()), false),
        refusal_logs_out(Fault::TokenError("invalid_grant".into()), true),
    );
}

#[tokio::test]
async fn a_refreshed_id_token_about_someone_else_logs_out() {
    tokio::join!(
        refusal_logs_out(Fault::IdTokenClaims(json!({"sub": "mallory"})), true),
        refusal_logs_out(Fault::WrongIssuer, false),
    );
}

/// A store that, once a refresh lock is taken, hands back every session past its deadline:
/// a custom store that does not filter what has ended.
#[derive(Debug)]
struct EndsUnderTheLock {
    inner: MemoryStore,
    locked: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl SessionStore for EndsUnderTheLock {
    async fn save(&self, session: &Session) -> Result<String, auth_core::StoreError> {
        self.inner.save(session).await
    }
    async fn load(&self, ticket: &str) -> Result<Option<Session>, auth_core::StoreError> {
        let loaded = self.inner.load(ticket).await?;
        Ok(loaded.map(|mut session| {
            if self.locked.load(std::sync::atomic::Ordering::SeqCst) {
                session.expires_at = session.created_at;
            }
            session
        }))
    }
    async fn delete(&self, ticket: &str) -> Result<(), auth_core::StoreError> {
        self.inner.delete(ticket).await
    }
    async fn update(&self, ticket: &str, session: &Session) -> Result<String, auth_core::StoreError> {
        self.inner.update(ticket, session).await
    }
    fn lock(&self) -> Option<&dyn SessionLock> {
        Some(self)
    }
}

#[async_trait]
impl SessionLock for EndsUnderTheLock {
    async fn try_lock(&self, key: &str, ttl: Duration) -> Result<bool, auth_core::StoreError> {
        self.locked.store(true, std::sync::atomic::Ordering::SeqCst);
        self.inner.try_lock(key, ttl).await
    }
    async fn unlock(&self, key: &str) -> Result<(), auth_core::StoreError> {
        self.inner.unlock(key).await
    }
}

#[tokio::test]
async fn a_session_that_ended_under_the_refresh_lock_is_not_refreshed() {
    let idp =
        MockIdp::builder().login_as(Some("alice")).access_token_ttl(Duration::from_secs(1)).start().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = Setup::new("refresh_margin_secs = 0").config(&idp, &base);
    let store = Arc::new(EndsUnderTheLock { inner: MemoryStore::new(), locked: Default::default() });
    let layer = AuthLayer::builder(config.clone())
        .with_providers(auth_providers::from_config(&config).unwrap())
        .with_store(Arc::clone(&store) as Arc<dyn SessionStore>)
        .build()
        .unwrap();
    let app = serve(listener, layer, base, None).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    idp.reset_hits();
    until_expired().await;

    let me = browser.get("/me").await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.json::<Value>().await.unwrap()["is_logged_in"], false, "an ended session is never served");
    assert_eq!(idp.hits().token, 0, "nor refreshed");
}

#[tokio::test]
async fn an_unreachable_provider_keeps_the_session_but_not_an_expired_token() {
    let (idp, app) = short_lived(Setup::new("refresh_margin_secs = 0")).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    until_expired().await;
    idp.set_fault(Fault::Unavailable);
    assert!(browser.logged_in().await, "the IdP being down does not log anyone out");
    let token = browser.send(reqwest::Method::GET, "/token", &[("accept", "application/json")]).await;
    assert_eq!(token.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(token.json::<Value>().await.unwrap()["error"], "access_token_expired");
    // Not a refresh per request: the failure is remembered for a while.
    let hits = idp.hits().token;
    browser.get("/me").await;
    assert_eq!(idp.hits().token, hits);
}

/// While the provider is down, every session due for a refresh fails the same way: one
/// warning per few seconds for the layer (with how many were held back), not one (or two,
/// with the provider's own line) per session.
#[tokio::test]
async fn a_provider_that_is_down_is_logged_once_not_per_session() {
    let (idp, app) = short_lived(Setup::new("refresh_margin_secs = 0")).await;
    let mut browsers = Vec::new();
    for _ in 0..5 {
        let mut browser = Browser::new(&app);
        browser.login().await;
        browsers.push(browser);
    }
    until_expired().await;
    idp.set_fault(Fault::Unavailable);
    let (logs, _guard) = capture_logs(tracing::Level::DEBUG);
    for browser in &mut browsers {
        assert!(browser.logged_in().await, "the IdP being down logs nobody out");
    }
    let text = logs.text();
    assert_eq!(logs.count(" WARN "), 1, "one warning for five failed refreshes:\n{text}");
    assert!(logs.contains("tokens could not be refreshed; keeping the sessions as they are"), "{text}");
    assert_eq!(logs.count("tokens could not be refreshed; keeping the session as it is"), 4, "the rest at debug");
}

/// One metric as a [`DebuggingRecorder`] snapshot has it.
type Recorded = (CompositeKey, Option<Unit>, Option<SharedString>, DebugValue);

/// What counter `name` with exactly `labels` (in any order) counted in `snapshot`; 0 when never.
fn counted(snapshot: &[Recorded], name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut wanted = labels.to_vec();
    wanted.sort_unstable();
    let matches = |key: &metrics::Key| {
        let mut have: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
        have.sort_unstable();
        key.name() == name && have == wanted
    };
    snapshot
        .iter()
        .find_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) if matches(key.key()) => Some(*n),
            _ => None,
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn refresh_outcomes_and_token_calls_are_counted() {
    // Everything here runs on the test's thread (a current-thread runtime: the app, its
    // refresh flights, the IdP), so a recorder local to the thread sees what the layer counts.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (idp, app) = short_lived(Setup::new("refresh_margin_secs = 0")).await;
    let (mut refreshed, mut kept) = (Browser::new(&app), Browser::new(&app));
    refreshed.login().await;
    kept.login().await;
    until_expired().await;
    assert!(refreshed.logged_in().await);
    idp.set_fault(Fault::Unavailable);
    assert!(kept.logged_in().await, "a provider that is down keeps the session");
    idp.set_fault(Fault::TokenError("invalid_grant".into()));
    until_expired().await;
    assert!(!refreshed.logged_in().await, "a refused refresh ends the session");

    let snapshot = snapshotter.snapshot().into_vec();
    let refreshes = auth_core::metrics::REFRESHES;
    for (outcome, count) in [("refreshed", 1), ("kept", 1), ("logged_out", 1), ("store_error", 0)] {
        assert_eq!(counted(&snapshot, refreshes, &[("provider", "default"), ("outcome", outcome)]), count, "{outcome}");
    }
    let token = |outcome| {
        let labels = [("provider", "default"), ("endpoint", "token"), ("outcome", outcome)];
        counted(&snapshot, auth_core::metrics::PROVIDER_REQUESTS, &labels)
    };
    assert_eq!((token("ok"), token("server_error"), token("client_error")), (3, 1, 1), "two logins and a refresh");
    assert_eq!(counted(&snapshot, auth_core::metrics::LOGINS_SUCCEEDED, &[("provider", "default")]), 2);
}

#[tokio::test]
async fn access_token_needs_a_login_and_expose_tokens_governs_user_tokens() {
    let idp = idp().await;
    let app = Setup::new("expose_tokens = \"id\"").start(&idp).await;
    let mut browser = Browser::new(&app);
    let anonymous = browser.send(reqwest::Method::GET, "/token", &[("accept", "application/json")]).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    browser.login().await;
    let tokens: Value = browser.get("/tokens").await.json().await.unwrap();
    assert!(tokens["id"].is_string() && tokens["access"].is_null(), "{tokens}");
    let access = browser.get("/token").await;
    assert_eq!(access.status(), StatusCode::OK, "the explicit extractor works whatever expose_tokens says");

    // keep_tokens drops tokens from the session (and the cookie).
    let app = Setup::new("keep_tokens = [\"id\"]").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let missing = browser.send(reqwest::Method::GET, "/token", &[("accept", "application/json")]).await;
    assert_eq!(missing.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"], "no_access_token");
}
