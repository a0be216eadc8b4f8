//! Findings of an outside security review, each with the request that showed it: responses
//! carrying the layer's cookies stay out of shared caches; a logout link on another site
//! cannot sign out a browser that does not say where a request comes from; a long
//! `return_to` cannot grow the pending-login cookie past what browsers keep; hostile session
//! cookies cost bounded work and bounded `Set-Cookie` lines. And the session's payload:
//! cookies sealed as JSON by the previous version still open, unknown versions do not.
//!
//! Requests go through the layer in process (`tower::ServiceExt::oneshot`), with a provider
//! that only needs to start logins and complete them.
#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used)]

use auth_core::seal::Sealer;
use auth_core::{SessionLock, StoreError};
use auth_tower::async_trait;
use auth_tower::{
    AuthConfig, AuthLayer, Authorization, CallbackParams, CookieStore, Identity, IdentityProvider, LoginResult,
    PendingLogin, ProviderError, Session, SessionStore, TokenSet, User,
};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tower::ServiceExt;

const SECRET: &str = "hardening-test-cookie-secret-of-32-bytes";
const ORIGIN: &str = "http://app.test";
/// The largest value the layer writes in one cookie (`auth_tower::bench::CHUNK_SIZE`).
const CHUNK_SIZE: usize = 3800;

// ----------------------------------------------------------------------------- the app

/// Starts logins with a worst-case pending login (a 128-byte PKCE verifier) and completes
/// them as alice.
#[derive(Debug)]
struct Fake;

#[async_trait]
impl IdentityProvider for Fake {
    fn name(&self) -> &str {
        "fake"
    }

    async fn authorize(&self, redirect_uri: &str) -> Result<Authorization, ProviderError> {
        let state = auth_core::random_token();
        let url = format!("https://idp.test/authorize?state={state}&redirect_uri={redirect_uri}");
        let pending =
            PendingLogin::new(state).with_nonce(auth_core::random_token()).with_pkce_verifier("v".repeat(128));
        Ok(Authorization::new(url, pending))
    }

    async fn complete(
        &self,
        _callback: &CallbackParams,
        _pending: &PendingLogin,
        _redirect_uri: &str,
    ) -> Result<LoginResult, ProviderError> {
        Ok(LoginResult::new(alice().identity, TokenSet::default()))
    }
}

/// A sealed-cookie store that remembers the longest ticket it was asked to open.
#[derive(Debug)]
struct Recording {
    inner: CookieStore,
    longest: AtomicUsize,
}

#[async_trait]
impl SessionStore for Recording {
    async fn save(&self, session: &Session) -> Result<String, StoreError> {
        self.inner.save(session).await
    }
    async fn load(&self, ticket: &str) -> Result<Option<Session>, StoreError> {
        self.longest.fetch_max(ticket.len(), Ordering::SeqCst);
        self.inner.load(ticket).await
    }
    async fn delete(&self, ticket: &str) -> Result<(), StoreError> {
        self.inner.delete(ticket).await
    }
    async fn update(&self, ticket: &str, session: &Session) -> Result<String, StoreError> {
        self.inner.update(ticket, session).await
    }
    fn lock(&self) -> Option<&dyn SessionLock> {
        None
    }
}

/// A cookie store sealing as the test app does (bound to its cookie name and redirect_uri).
fn cookie_store() -> CookieStore {
    let binding = auth_core::seal::app_binding("auth_session", &format!("{ORIGIN}/oauth2callback"));
    CookieStore::new(Arc::new(Sealer::new(SECRET.as_bytes(), &[]).with_context(binding.as_bytes())))
}

/// `/me` says whether someone is signed in; `/public` is an answer the app lets shared
/// caches keep; `/plain` says nothing about caching.
fn app(extra: &str, store: Option<Arc<dyn SessionStore>>) -> Router {
    let text = format!("[auth]\nredirect_uri = \"{ORIGIN}/oauth2callback\"\ncookie_secret = \"{SECRET}\"\n{extra}\n");
    let config = AuthConfig::from_toml_str(&text, "hardening.rs").unwrap();
    let mut builder = AuthLayer::builder(config).with_provider(Arc::new(Fake));
    if let Some(store) = store {
        builder = builder.with_store(store);
    }
    Router::new()
        .route("/me", get(|user: User| async move { if user.is_logged_in() { "in" } else { "out" } }))
        .route(
            "/public",
            get(|| async {
                ([("cache-control", "public, max-age=3600, s-maxage=600"), ("vary", "Accept-Encoding")], "shared")
            }),
        )
        .route("/plain", get(|| async { "plain" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                "slow"
            }),
        )
        .layer(builder.build().unwrap())
}

async fn send(app: &Router, method: &str, path: &str, headers: &[(&str, &str)]) -> Response<Body> {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap()
}

async fn text(response: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn all(response: &Response<Body>, name: &str) -> Vec<String> {
    response.headers().get_all(name).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

fn set_cookies(response: &Response<Body>) -> Vec<String> {
    all(response, "set-cookie")
}

fn deletions(response: &Response<Body>) -> usize {
    set_cookies(response).iter().filter(|line| line.contains("Max-Age=0")).count()
}

fn alice() -> Session {
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), "alice".into());
    Session::new(Identity::new("fake", "alice", claims), TokenSet::default(), 3600)
}

/// A `Cookie` header carrying alice's session with this idle deadline.
async fn session_cookie(idle_expires_at: Option<u64>) -> String {
    let mut session = alice();
    session.idle_expires_at = idle_expires_at;
    format!("auth_session={}", cookie_store().save(&session).await.unwrap())
}

// ------------------------------------------------------------------- shared caches

#[tokio::test]
async fn app_responses_carrying_the_layers_cookies_stay_out_of_shared_caches() {
    let app = app("idle_timeout_secs = 100", None);
    // No idle deadline yet: the layer renews the session and writes its cookie.
    let renewed = session_cookie(None).await;

    let response = send(&app, "GET", "/public", &[("cookie", &renewed)]).await;
    assert!(set_cookies(&response).iter().any(|l| l.starts_with("auth_session=") && !l.contains("Max-Age=0")));
    assert_eq!(all(&response, "cache-control"), ["private, max-age=3600"], "no public, no s-maxage");
    assert_eq!(all(&response, "vary"), ["Accept-Encoding", "Cookie"]);

    let response = send(&app, "GET", "/plain", &[("cookie", &renewed)]).await;
    assert_eq!(set_cookies(&response).len(), 1);
    assert_eq!(all(&response, "cache-control"), ["no-store"]);
    assert_eq!(all(&response, "vary"), ["Cookie"]);

    // Deleting a cookie is a Set-Cookie too.
    let response = send(&app, "GET", "/public", &[("cookie", "auth_session=tampered")]).await;
    assert_eq!(deletions(&response), 1);
    assert_eq!(all(&response, "cache-control"), ["private, max-age=3600"]);
    assert_eq!(all(&response, "vary"), ["Accept-Encoding", "Cookie"]);

    // Nothing written by the layer: the app's answer as it was.
    let current = session_cookie(Some(auth_core::unix_now() + 100)).await;
    for headers in [vec![("cookie", current.as_str())], vec![]] {
        let response = send(&app, "GET", "/public", &headers).await;
        assert!(set_cookies(&response).is_empty(), "{headers:?}");
        assert_eq!(all(&response, "cache-control"), ["public, max-age=3600, s-maxage=600"], "{headers:?}");
        assert_eq!(all(&response, "vary"), ["Accept-Encoding"], "{headers:?}");
        let response = send(&app, "GET", "/plain", &headers).await;
        assert!(all(&response, "cache-control").is_empty() && all(&response, "vary").is_empty(), "{headers:?}");
    }
}

// ------------------------------------------------------------------------- logout

#[tokio::test]
async fn a_logout_get_that_does_not_say_where_it_comes_from_asks_first() {
    let app = app("", None);
    let session = session_cookie(None).await;

    // An old browser following an <img> on another site sends neither header.
    let response = send(&app, "GET", "/auth/logout", &[("cookie", &session)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookies(&response).is_empty(), "nothing is cleared");
    assert_eq!(all(&response, "cache-control"), ["no-store"]);
    assert_eq!(all(&response, "content-type"), ["text/html; charset=utf-8"]);
    let csp = all(&response, "content-security-policy").concat();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = text(response).await;
    assert!(html.contains("<form method=\"post\" action=\"/auth/logout\">"), "{html}");
    assert!(html.contains("<button type=\"submit\">Sign out</button>"), "{html}");
    assert_eq!(text(send(&app, "GET", "/me", &[("cookie", &session)]).await).await, "in");

    // What the button sends (a browser adds Origin to a POST), and what same-site GETs and
    // clients that are not browsers send, signs out as before.
    for headers in
        [[("origin", ORIGIN)].as_slice(), &[], &[("sec-fetch-site", "same-origin")], &[("sec-fetch-site", "none")]]
    {
        let headers: Vec<(&str, &str)> = headers.iter().copied().chain([("cookie", session.as_str())]).collect();
        let response = send(&app, "POST", "/auth/logout", &headers).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "POST {headers:?}");
        assert_eq!(deletions(&response), 1, "POST {headers:?}");
        if headers.len() > 1 {
            let response = send(&app, "GET", "/auth/logout", &headers).await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "GET {headers:?}");
            assert_eq!(deletions(&response), 1, "GET {headers:?}");
        }
    }
    for cross in [("sec-fetch-site", "cross-site"), ("origin", "https://evil.test")] {
        for method in ["GET", "POST"] {
            let response = send(&app, method, "/auth/logout", &[cross, ("cookie", &session)]).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {cross:?}");
            assert!(set_cookies(&response).is_empty());
        }
    }
}

// ---------------------------------------------------------------------- return_to

/// Starts a login back to `return_to`; returns the pending-login cookie (`name=value`) and
/// the `state` sent to the provider.
async fn start_login(app: &Router, return_to: &str) -> (String, String) {
    let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("return_to", return_to).finish();
    let response = send(app, "GET", &format!("/auth/login?{query}"), &[]).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let authorize = url::Url::parse(&all(&response, "location").concat()).unwrap();
    let state = authorize.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let line = set_cookies(&response).into_iter().find(|l| l.starts_with("auth_pending_")).unwrap();
    (line.split(';').next().unwrap().to_owned(), state)
}

#[tokio::test]
async fn a_long_return_to_lands_home_and_the_pending_cookie_stays_small() {
    let app = app("", None);
    let at_bound = format!("/{}", "a".repeat(1023));
    let quotes_at_bound = format!("/{}", "\"".repeat(341));
    let cases = [
        (format!("/{}", "a".repeat(4999)), "/".to_owned()),
        // Short enough as sent, long once encoded (6 bytes for each é) or escaped in JSON.
        (format!("/{}", "é".repeat(1000)), "/".to_owned()),
        (format!("/{}", "\"".repeat(1500)), "/".to_owned()),
        (at_bound.clone(), at_bound),
        (quotes_at_bound, format!("/{}", "%22".repeat(341))),
    ];
    for (return_to, lands_on) in cases {
        let (pending, state) = start_login(&app, &return_to).await;
        let size = format!("{} bytes for a return_to of {}", pending.len(), return_to.len());
        assert!(pending.len() < 4096, "browsers keep it: {size}");
        assert!(pending.len() <= CHUNK_SIZE, "the layer reads it back: {size}");
        assert_eq!(finish_login(&app, &pending, &state).await, lands_on, "{size}");
    }
}

/// Where the callback of a login started by `pending` and `state` sends the browser.
async fn finish_login(app: &Router, pending: &str, state: &str) -> String {
    let response = send(app, "GET", &format!("/oauth2callback?code=c&state={state}"), &[("cookie", pending)]).await;
    assert!(response.status().is_redirection(), "{}", response.status());
    all(&response, "location").concat()
}

// ------------------------------------------------------------------ cookie bounds

#[tokio::test]
async fn hostile_session_cookies_cost_bounded_work_and_set_cookie_lines() {
    let recording = Arc::new(Recording { inner: cookie_store(), longest: AtomicUsize::new(0) });
    let apps = [app("", None), app("", Some(Arc::clone(&recording) as Arc<dyn SessionStore>))];
    let join = |pairs: Vec<String>| pairs.join("; ");
    let big = "A".repeat(100_000);
    let hostile = [
        "auth_session.100000=x".to_owned(),
        join((0..500).map(|i| format!("auth_session.{i}=x")).collect()),
        join((0..500).map(|_| "auth_session.0=x".to_owned()).collect()),
        // One index written many ways.
        join((0..500).map(|i| format!("auth_session.{}1=x", "0".repeat(i % 60))).collect()),
        format!("auth_session={big}"),
        format!("auth_session.0={big}; auth_session.1=x"),
        format!("auth_session={big}; auth_session.0=a; auth_session.1=b"),
    ];
    for app in &apps {
        for cookie in &hostile {
            let response = send(app, "GET", "/me", &[("cookie", cookie)]).await;
            assert_eq!(response.status(), StatusCode::OK);
            let lines = set_cookies(&response);
            assert!(lines.len() <= 17, "{} Set-Cookie lines for {}…", lines.len(), &cookie[..40.min(cookie.len())]);
            assert_eq!(deletions(&response), lines.len(), "only deletions");
            assert_eq!(text(response).await, "out");
            // Logout clears the same bounded set.
            let response = send(app, "POST", "/auth/logout", &[("cookie", cookie)]).await;
            assert!(deletions(&response) <= 17, "{} deletions at logout", deletions(&response));
        }
    }
    let longest = recording.longest.load(Ordering::SeqCst);
    assert!(longest <= 16 * CHUNK_SIZE, "a {longest}-byte value was opened");
}

// ---------------------------------------------------------------- logout wins

/// A slow request whose response renews the session (idle timeout) was in flight when the
/// person signed out: its response must not write the session cookie back. And the cookie
/// a browser may still send afterwards (the cookie store cannot revoke it) no longer opens
/// on this instance.
#[tokio::test]
async fn logout_wins_over_a_request_in_flight() {
    let app = app("idle_timeout_secs = 100", None);
    let cookie = session_cookie(None).await;
    assert_eq!(text(send(&app, "GET", "/me", &[("cookie", &cookie)]).await).await, "in");

    let slow = {
        let (app, cookie) = (app.clone(), cookie.clone());
        tokio::spawn(async move { send(&app, "GET", "/slow", &[("cookie", &cookie)]).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let logout = send(&app, "POST", "/auth/logout", &[("cookie", &cookie), ("origin", ORIGIN)]).await;
    assert_eq!(logout.status(), 303);
    let late = slow.await.unwrap();
    let writes: Vec<String> = set_cookies(&late).into_iter().filter(|l| !l.contains("Max-Age=0")).collect();
    assert!(writes.is_empty(), "the in-flight response writes no session back: {writes:?}");
    assert!(deletions(&late) >= 1, "it deletes it instead");

    assert_eq!(text(send(&app, "GET", "/me", &[("cookie", &cookie)]).await).await, "out", "the old cookie is over");
}

// ------------------------------------------------------------- the session's payload

/// The sealer of the test app (bound to its cookie name and redirect_uri).
fn app_sealer() -> Sealer {
    let binding = auth_core::seal::app_binding("auth_session", &format!("{ORIGIN}/oauth2callback"));
    Sealer::new(SECRET.as_bytes(), &[]).with_context(binding.as_bytes())
}

/// Cookies sealed before the binary payload (the session as JSON) still sign in; a
/// payload of a version this one does not know is anonymous and cleared, never a 500.
#[tokio::test]
async fn json_sessions_of_the_previous_version_open_and_unknown_versions_do_not() {
    let app = app("", None);
    let json = serde_json::to_vec(&alice()).unwrap();
    let old = format!("auth_session={}", app_sealer().seal(auth_core::SESSION_PURPOSE, &json));
    let response = send(&app, "GET", "/me", &[("cookie", &old)]).await;
    assert_eq!(text(response).await, "in", "a JSON-sealed cookie signs in");

    let mut unknown = vec![9];
    unknown.extend_from_slice(&json);
    let future = format!("auth_session={}", app_sealer().seal(auth_core::SESSION_PURPOSE, &unknown));
    let response = send(&app, "GET", "/me", &[("cookie", &future)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(deletions(&response), 1, "the cookie is cleared");
    assert_eq!(text(response).await, "out");
}

/// `session_cache_entries = 0` turns the cache off: every request opens its cookie, and
/// signed-in stays signed in.
#[tokio::test]
async fn without_a_session_cache_every_request_opens_its_cookie() {
    let app = app("session_cache_entries = 0", None);
    let cookie = session_cookie(None).await;
    for _ in 0..3 {
        let response = send(&app, "GET", "/me", &[("cookie", &cookie)]).await;
        assert!(set_cookies(&response).is_empty());
        assert_eq!(text(response).await, "in");
    }
}

/// Claims are parsed only when read: a session opened from its cookie keeps them as text.
#[tokio::test]
async fn claims_are_decoded_only_when_read() {
    let store = cookie_store();
    let ticket = store.save(&alice()).await.unwrap();
    let (session, current) = store.open(&ticket).unwrap();
    assert!(current);
    assert!(!session.identity.claims.is_parsed(), "opening does not parse the claims");
    assert_eq!(session.identity.claims.get("sub").and_then(|v| v.as_str()), Some("alice"));
    assert!(session.identity.claims.is_parsed());
}
