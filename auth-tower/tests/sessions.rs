//! Sessions that last, refresh, scale out and end properly, against `MockIdp` with the real
//! `OidcProvider`, over loopback HTTP: lifetime, idle timeout and `Max-Age`; cookie path,
//! domain and prefixes; secret rotation; the cookie budget; the layer's cookies kept from
//! the app; refresh (rotation, single flight within a process and across instances sharing
//! a store, refusals); RP-initiated and back-channel logout.
#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used)]

use auth_core::seal::Sealer;
use auth_testkit::{Fault, LogoutToken, MockIdp, MockUser};
use auth_tower::{
    AccessToken, AuthConfig, AuthLayer, CookieStore, Identity, MemoryStore, Session, SessionStore, TokenSet, User,
};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

const SECRET: &str = "sessions-test-cookie-secret-of-32-bytes+";
const OLD_SECRET: &str = "the-previous-cookie-secret-of-32-bytes+";

// --------------------------------------------------------------------------- the app

/// An app on 127.0.0.1, stopped when dropped.
struct App {
    base: String,
    store: Option<Arc<MemoryStore>>,
    task: JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl App {
    fn backchannel_uri(&self) -> String {
        format!("{}/auth/backchannel-logout", self.base)
    }

    fn sessions(&self) -> usize {
        self.store.as_ref().map_or(0, |s| s.len())
    }
}

/// How to configure and serve an app.
struct Setup {
    extra: String,
    /// The public origin of `redirect_uri`, when not the app's loopback address.
    origin: Option<String>,
    /// A `MemoryStore` given to the builder (shared with other apps when cloned in).
    store: Option<Arc<MemoryStore>>,
}

impl Setup {
    fn new(extra: &str) -> Self {
        Self { extra: extra.to_owned(), origin: None, store: None }
    }

    fn memory(self) -> Self {
        self.store(Arc::new(MemoryStore::new()))
    }

    fn store(mut self, store: Arc<MemoryStore>) -> Self {
        self.store = Some(store);
        self
    }

    fn origin(mut self, origin: &str) -> Self {
        self.origin = Some(origin.to_owned());
        self
    }

    fn config(&self, idp: &MockIdp, base: &str) -> AuthConfig {
        let text = format!(
            "[auth]\nredirect_uri = \"{}/oauth2callback\"\ncookie_secret = \"{}\"\nclient_id = \"{}\"\n\
             client_secret = \"{}\"\nserver_metadata_url = \"{}\"\n{}\n",
            self.origin.as_deref().unwrap_or(base),
            SECRET,
            idp.client_id(),
            idp.client_secret(),
            idp.metadata_url(),
            self.extra
        );
        AuthConfig::from_toml_str(&text, "sessions.rs").unwrap()
    }

    /// Builds the layer for an app on `listener` (without serving it).
    fn layer(&self, idp: &MockIdp, listener: &tokio::net::TcpListener) -> Result<AuthLayer, auth_tower::AuthError> {
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = self.config(idp, &base);
        let providers = auth_providers::from_config(&config)?;
        let mut builder = AuthLayer::builder(config).with_providers(providers);
        if let Some(store) = &self.store {
            builder = builder.with_store(Arc::clone(store) as Arc<dyn SessionStore>);
        }
        builder.build()
    }

    async fn start(self, idp: &MockIdp) -> App {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let layer = self.layer(idp, &listener).unwrap();
        serve(listener, layer, base, self.store).await
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    layer: AuthLayer,
    base: String,
    store: Option<Arc<MemoryStore>>,
) -> App {
    let router = Router::new()
        .route("/me", get(|user: User| async move { Json(user.to_json()) }))
        .route(
            "/cookies",
            get(|headers: HeaderMap| async move {
                let values: Vec<&str> = headers.get_all("cookie").iter().map(|v| v.to_str().unwrap_or("?")).collect();
                if values.is_empty() { "<none>".to_owned() } else { values.join(" | ") }
            }),
        )
        .route("/token", get(|token: AccessToken| async move { token.secret().to_owned() }))
        .route(
            "/tokens",
            get(|user: User| async move {
                let tokens = user.tokens();
                Json(json!({"id": tokens.and_then(|t| t.id), "access": tokens.and_then(|t| t.access)}))
            }),
        )
        .layer(layer);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    App { base, store, task }
}

async fn idp() -> MockIdp {
    MockIdp::builder().login_as(Some("alice")).start().await.unwrap()
}

// ----------------------------------------------------------------------- the browser

/// A browser with a cookie jar we can read and tamper with, no automatic redirects, and
/// the `Set-Cookie` lines of the last response.
struct Browser {
    http: reqwest::Client,
    base: String,
    /// The public origin the IdP sends the browser back to (rewritten to `base`).
    origin: String,
    jar: BTreeMap<String, String>,
    set_cookies: Vec<String>,
}

impl Browser {
    fn new(app: &App) -> Self {
        Self::with_origin(app, &app.base)
    }

    fn with_origin(app: &App, origin: &str) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, base: app.base.clone(), origin: origin.to_owned(), jar: BTreeMap::new(), set_cookies: Vec::new() }
    }

    fn cookie_header(&self) -> String {
        self.jar.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn send(&mut self, method: reqwest::Method, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        let mut request = self.http.request(method, url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if !self.jar.is_empty() {
            request = request.header("cookie", self.cookie_header());
        }
        let response = request.send().await.unwrap();
        self.set_cookies =
            response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        for line in &self.set_cookies {
            let (pair, _) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if max_age(line) == Some(0) {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        response
    }

    async fn get(&mut self, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, &[]).await
    }

    /// The whole login through the mock IdP (which signs in at once); returns the callback's
    /// response.
    async fn login(&mut self) -> reqwest::Response {
        let login = self.get("/auth/login").await;
        assert_eq!(login.status(), StatusCode::FOUND, "{:?}", login.text().await);
        let authorize = location(&login);
        let back = self.http.get(authorize).send().await.unwrap();
        assert_eq!(back.status(), StatusCode::FOUND);
        let callback = location(&back).replacen(&self.origin, &self.base, 1);
        let response = self.get(&callback).await;
        assert_eq!(response.status(), StatusCode::FOUND, "the callback signs in");
        response
    }

    async fn me(&mut self) -> Value {
        self.get("/me").await.json().await.unwrap()
    }

    async fn logged_in(&mut self) -> bool {
        self.me().await["is_logged_in"] == true
    }

    async fn text(&mut self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    /// The `Set-Cookie` line of the last response for cookie `name`.
    fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies.iter().map(String::as_str).find(|l| l.starts_with(&format!("{name}=")))
    }

    fn session_cookie_set(&self) -> bool {
        self.set_cookies.iter().any(|l| l.starts_with("auth_session") && max_age(l) != Some(0))
    }

    fn session_cookie_deleted(&self) -> bool {
        self.set_cookies.iter().any(|l| l.starts_with("auth_session") && max_age(l) == Some(0))
    }
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn max_age(line: &str) -> Option<u64> {
    line.split(';').find_map(|a| a.trim().strip_prefix("Max-Age=")).map(|a| a.parse().unwrap())
}

fn sealer(secret: &str, previous: &[&str]) -> CookieStore {
    let previous: Vec<&[u8]> = previous.iter().map(|s| s.as_bytes()).collect();
    CookieStore::new(Arc::new(Sealer::new(secret.as_bytes(), &previous)))
}

/// A session of `alice` at the default provider, as a login would make it.
fn alice_session(lifetime: u64) -> Session {
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), "alice".into());
    claims.insert("email".into(), "alice@example.test".into());
    Session::new(Identity::new("default", "alice", claims), TokenSet::default(), lifetime)
}

// ------------------------------------------------------------------ lifetime, cookies

#[tokio::test]
async fn max_age_follows_the_lifetime_and_cookies_follow_path_and_domain() {
    let idp = idp().await;
    let app = Setup::new("session_lifetime_secs = 3600\ncookie_domain = \"127.0.0.1\"").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let line = browser.set_cookie("auth_session").unwrap().to_owned();
    assert_eq!(max_age(&line), Some(3600), "{line}");
    for attribute in ["Path=/", "HttpOnly", "SameSite=Lax", "Domain=127.0.0.1"] {
        assert!(line.contains(attribute), "{attribute}: {line}");
    }
    assert!(!line.contains("Secure"), "http redirect_uri: {line}");
    assert!(browser.logged_in().await);

    // Default: Streamlit's 30 days.
    let app = Setup::new("").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    assert_eq!(max_age(browser.set_cookie("auth_session").unwrap()), Some(30 * 24 * 3600));
}

#[tokio::test]
async fn https_cookies_get_the_host_prefix_or_the_secure_one() {
    let idp = idp().await;
    let app = Setup::new("").origin("https://app.test").start(&idp).await;
    let mut browser = Browser::with_origin(&app, "https://app.test");
    let login = browser.get("/auth/login").await;
    assert_eq!(login.status(), StatusCode::FOUND);
    let pending = browser.set_cookie("__Host-auth_pending").unwrap().to_owned();
    assert!(pending.contains("Secure") && pending.contains("Path=/") && !pending.contains("Domain"), "{pending}");
    browser.jar.clear();
    browser.login().await;
    let session = browser.set_cookie("__Host-auth_session").unwrap();
    assert!(session.contains("; Secure") && session.contains("Path=/") && !session.contains("Domain="), "{session}");
    assert!(browser.jar.contains_key("__Host-auth_session") && !browser.jar.contains_key("auth_session"));
    assert!(browser.logged_in().await, "the prefixed cookie is the session cookie");

    // With a Domain, __Host- does not apply: __Secure- does.
    let app = Setup::new("cookie_domain = \".App.Test\"").origin("https://www.app.test").start(&idp).await;
    let mut browser = Browser::with_origin(&app, "https://www.app.test");
    browser.login().await;
    let session = browser.set_cookie("__Secure-auth_session").unwrap();
    assert!(session.contains("Domain=app.test") && session.contains("; Secure"), "{session}");
    assert!(browser.logged_in().await);
}

#[tokio::test]
async fn cookie_path_must_hold_the_routes_and_is_used_when_it_does() {
    let idp = idp().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let message = Setup::new("cookie_path = \"/app\"").layer(&idp, &listener).err().map(|e| e.to_string());
    let message = message.unwrap_or_default();
    assert!(message.contains("auth.cookie_path") && message.contains("Fix:"), "{message}");

    // With the callback and the routes under /app, it works.
    let base = format!("http://{}", listener.local_addr().unwrap());
    let setup = Setup::new("cookie_path = \"/app\"").origin(&format!("{base}/app"));
    let config = setup.config(&idp, &base);
    let providers = auth_providers::from_config(&config).unwrap();
    let layer = AuthLayer::builder(config).with_providers(providers).with_prefix("/app/auth").build().unwrap();
    let app = serve(listener, layer, base, None).await;
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/app/auth/login", app.base))
        .send()
        .await
        .unwrap();
    let pending = login.headers()["set-cookie"].to_str().unwrap();
    assert!(pending.contains("Path=/app;"), "{pending}");
}

#[tokio::test]
async fn end_with_id_token_ends_the_session_when_the_id_token_expires() {
    let idp = MockIdp::builder().login_as(Some("alice")).id_token_ttl(Duration::from_secs(2)).start().await.unwrap();
    let app = Setup::new("end_with_id_token = true\nrefresh_margin_secs = 0").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let age = max_age(browser.set_cookie("auth_session").unwrap()).unwrap();
    assert!((1..=2).contains(&age), "Max-Age is the ID token's remaining life: {age}");
    assert!(browser.logged_in().await);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = browser.get("/me").await;
    assert!(browser.session_cookie_deleted(), "the ended session's cookie is cleared");
    assert_eq!(response.json::<Value>().await.unwrap()["is_logged_in"], false);

    // Without the option, the same ID token leaves the 30-day lifetime alone.
    let app = Setup::new("").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    assert_eq!(max_age(browser.set_cookie("auth_session").unwrap()), Some(30 * 24 * 3600));
}

// ----------------------------------------------------------------------- idle timeout

/// Idle timeout with hand-made session cookies: no waiting needed.
#[tokio::test]
async fn idle_deadline_is_renewed_only_after_a_tenth_of_the_window() {
    let idp = idp().await;
    let app = Setup::new("idle_timeout_secs = 100").start(&idp).await;
    let store = sealer(SECRET, &[]);
    let now = auth_core::unix_now();
    let cases = [
        // (idle deadline, logged in, cookie written with this Max-Age); renewal is due once
        // 10 s (a tenth of the window) have passed, so 95 is not due and 85 is.
        (Some(now + 100), true, None),
        (Some(now + 95), true, None),
        (Some(now + 85), true, Some(100)),
        (None, true, Some(100)),
    ];
    for (deadline, logged_in, written) in cases {
        let mut session = alice_session(3600);
        session.idle_expires_at = deadline;
        let mut browser = Browser::new(&app);
        browser.jar.insert("auth_session".into(), store.save(&session).await.unwrap());
        assert_eq!(browser.logged_in().await, logged_in, "{deadline:?}");
        assert_eq!(browser.set_cookie("auth_session").and_then(max_age), written, "{deadline:?}");
        if written.is_some() {
            // The renewed cookie does not ask for another renewal.
            assert!(browser.logged_in().await);
            assert!(browser.set_cookies.is_empty(), "{deadline:?}: {:?}", browser.set_cookies);
        }
    }
    let mut idle = alice_session(3600);
    idle.idle_expires_at = Some(now.saturating_sub(1));
    let mut browser = Browser::new(&app);
    browser.jar.insert("auth_session".into(), store.save(&idle).await.unwrap());
    assert!(!browser.logged_in().await, "past the idle deadline");
    assert!(browser.session_cookie_deleted());
}

/// Idle timeout in real time (3 s; times are whole seconds): a request after a second
/// renews the deadline, three idle seconds after it end the session.
async fn idle_session_ends_unless_used(setup: Setup) {
    let idp = idp().await;
    let app = setup.start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    assert_eq!(browser.set_cookie("auth_session").and_then(max_age), Some(3));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(browser.logged_in().await, "used within the idle window");
    assert_eq!(browser.set_cookie("auth_session").and_then(max_age), Some(3), "renewed: {:?}", browser.set_cookies);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(!browser.logged_in().await, "idle for the whole window");
}

#[tokio::test]
async fn idle_cookie_session_ends_unless_used() {
    idle_session_ends_unless_used(Setup::new("idle_timeout_secs = 3")).await;
}

#[tokio::test]
async fn idle_server_side_session_ends_unless_used() {
    idle_session_ends_unless_used(Setup::new("idle_timeout_secs = 3").memory()).await;
}

// ------------------------------------------------------------------ rotation, budget

#[tokio::test]
async fn sessions_sealed_with_a_previous_secret_open_and_are_resealed() {
    let idp = idp().await;
    let extra = format!("previous_cookie_secrets = [\"{OLD_SECRET}\"]");
    let app = Setup::new(&extra).start(&idp).await;
    let old = sealer(OLD_SECRET, &[]).save(&alice_session(3600)).await.unwrap();
    let mut browser = Browser::new(&app);
    browser.jar.insert("auth_session".into(), old.clone());
    assert!(browser.logged_in().await, "the old secret still opens");
    let resealed = browser.jar["auth_session"].clone();
    assert_ne!(resealed, old, "re-issued");
    let max = max_age(browser.set_cookie("auth_session").unwrap()).unwrap();
    assert!((3598..=3600).contains(&max), "Max-Age is the remaining lifetime: {max}");
    assert!(sealer(SECRET, &[]).load(&resealed).await.unwrap().is_some(), "sealed with the current secret");
    assert!(sealer(OLD_SECRET, &[]).load(&resealed).await.unwrap().is_none());
    assert!(browser.logged_in().await);
    assert!(browser.set_cookies.is_empty(), "a current cookie is not re-issued");
}

/// Captures this thread's log (a `#[tokio::test]` runs the app on the test's thread).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        (logs.clone(), tracing::subscriber::set_default(subscriber))
    }

    fn count(&self, needle: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap()).matches(needle).count()
    }
}

#[tokio::test]
async fn oversized_session_cookies_are_logged_once_a_minute() {
    const WARNING: &str = "the session cookies exceed cookie_budget_bytes";
    let (logs, _guard) = Logs::capture();
    let idp = idp().await;
    let small = Setup::new("").start(&idp).await;
    Browser::new(&small).login().await;
    assert_eq!(logs.count(WARNING), 0, "a typical session fits the default budget");

    let tight = Setup::new("cookie_budget_bytes = 300").start(&idp).await;
    Browser::new(&tight).login().await;
    assert_eq!(logs.count(WARNING), 1);
    assert_eq!(logs.count("cookie_budget_bytes=300"), 1, "the warning names the budget");
    Browser::new(&tight).login().await;
    assert_eq!(logs.count(WARNING), 1, "rate-limited");

    let off = Setup::new("cookie_budget_bytes = 0").start(&idp).await;
    Browser::new(&off).login().await;
    assert_eq!(logs.count(WARNING), 1, "0 disables the warning");
}

#[tokio::test]
async fn the_app_never_sees_the_layers_cookies() {
    let groups: Vec<String> = (0..400).map(|i| format!("group-number-{i:04}")).collect();
    let idp = MockIdp::builder()
        .user(MockUser::new("carol").email("carol@example.test").claim("groups", json!(groups)))
        .login_as(Some("carol"))
        .start()
        .await
        .unwrap();
    let app = Setup::new("").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.get("/auth/login").await;
    assert!(browser.jar.contains_key("auth_pending"));
    browser.jar.insert("theme".into(), "dark".into());
    assert_eq!(browser.text("/cookies").await, "theme=dark", "the pending cookie is removed");

    browser.jar.clear();
    browser.login().await;
    let chunks = browser.jar.keys().filter(|n| n.starts_with("auth_session.")).count();
    assert!(chunks >= 3, "a big session is chunked: {:?}", browser.jar.keys());
    assert_eq!(browser.text("/cookies").await, "<none>", "nothing left: the header is removed");
    assert_eq!(browser.me().await["email"], "carol@example.test");

    // Other cookies pass byte for byte, in order, around ours.
    let cookie = format!("a=1;{};b=\"x y\";  c=%20", browser.cookie_header());
    let response = browser.http.get(format!("{}/cookies", app.base)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "a=1; b=\"x y\"; c=%20");
}

// --------------------------------------------------------------------------- refresh

/// An IdP whose access tokens live 1 s (until a test says otherwise with
/// `set_access_token_ttl`), and an app refreshing them when they have expired.
async fn short_lived(setup: Setup) -> (MockIdp, App) {
    let idp =
        MockIdp::builder().login_as(Some("alice")).access_token_ttl(Duration::from_secs(1)).start().await.unwrap();
    let app = setup.start(&idp).await;
    (idp, app)
}

/// Waits until an access token issued now has expired (expiry is in whole seconds).
async fn until_expired() {
    tokio::time::sleep(Duration::from_millis(2100)).await;
}

async fn refreshes_and_persists_the_rotated_refresh_token(setup: Setup) {
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
    let idp = MockIdp::builder()
        .login_as(Some("alice"))
        .access_token_ttl(Duration::from_secs(1))
        .rotate_refresh_tokens(false)
        .start()
        .await
        .unwrap();
    let app = setup.start(&idp).await;
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
async fn fifty_concurrent_requests_refresh_once(idp: &MockIdp, apps: &[&App]) {
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

#[auth_core::async_trait]
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
    async fn try_lock(&self, key: &str, ttl: Duration) -> Result<bool, auth_core::StoreError> {
        self.locked.store(true, std::sync::atomic::Ordering::SeqCst);
        self.inner.try_lock(key, ttl).await
    }
    async fn unlock(&self, key: &str) -> Result<(), auth_core::StoreError> {
        self.inner.unlock(key).await
    }
    fn is_server_side(&self) -> bool {
        true
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

// ------------------------------------------------------------------------- logout

#[tokio::test]
async fn rp_initiated_logout_sends_every_parameter() {
    let idp = idp().await;
    let app = Setup::new("expose_tokens = \"id\"").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let tokens: Value = browser.get("/tokens").await.json().await.unwrap();
    let logout = browser.send(reqwest::Method::POST, "/auth/logout", &[("origin", app.base.as_str())]).await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert!(browser.session_cookie_deleted());
    let end_session = reqwest::Url::parse(&location(&logout)).unwrap();
    assert_eq!(end_session.as_str().split('?').next(), Some(format!("{}/end_session", idp.issuer()).as_str()));
    let params: BTreeMap<String, String> = end_session.query_pairs().into_owned().collect();
    assert_eq!(params.get("id_token_hint").map(String::as_str), tokens["id"].as_str());
    assert_eq!(params["client_id"], idp.client_id());
    assert_eq!(params["post_logout_redirect_uri"], format!("{}/", app.base));
    assert!(params["state"].len() >= 32, "a random state");
    let back = browser.http.get(end_session).send().await.unwrap();
    assert!(location(&back).starts_with(&format!("{}/?state=", app.base)));
    assert_eq!(idp.last_end_session_params().unwrap()["client_id"], idp.client_id());
    assert!(!browser.logged_in().await);
}

#[tokio::test]
async fn logout_is_local_when_the_provider_has_no_end_session_endpoint() {
    let idp = MockIdp::builder().login_as(Some("alice")).end_session(false).start().await.unwrap();
    let app = Setup::new("").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let logout = browser.send(reqwest::Method::POST, "/auth/logout", &[]).await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&logout), "/");
    assert!(browser.session_cookie_deleted());
    assert!(!browser.logged_in().await);
    assert_eq!(idp.hits().end_session, 0);
}

// ---------------------------------------------------------------- back-channel logout

#[tokio::test]
async fn backchannel_logout_ends_the_named_sessions() {
    let idp = MockIdp::builder().login_as(Some("alice")).start().await.unwrap();
    let app = Setup::new("").memory().start(&idp).await;
    let mut laptop = Browser::new(&app);
    laptop.login().await;
    let mut phone = Browser::new(&app);
    phone.login().await;
    idp.login_as(Some("bob"));
    let mut bob = Browser::new(&app);
    bob.login().await;
    assert_eq!(app.sessions(), 3);

    // One provider session (sid): only that browser.
    let sid = laptop.me().await["sid"].as_str().unwrap().to_owned();
    assert_ne!(Some(sid.as_str()), phone.me().await["sid"].as_str(), "one sid per login");
    let answer = idp.backchannel_logout(&app.backchannel_uri(), &LogoutToken::for_session(&sid)).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(!laptop.logged_in().await, "the next request is anonymous");
    assert!(phone.logged_in().await);

    // A subject: every session of that person.
    let answer = idp.backchannel_logout(&app.backchannel_uri(), &LogoutToken::for_subject("alice")).await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(!phone.logged_in().await);
    assert!(bob.logged_in().await);
    assert_eq!(app.sessions(), 1);

    // Nothing to end is still a success; the answer is never cached.
    let response = reqwest::Client::new()
        .post(app.backchannel_uri())
        .form(&[("logout_token", idp.logout_token(&LogoutToken::for_subject("nobody")))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn invalid_logout_tokens_are_refused_and_revoke_nothing() {
    let idp = idp().await;
    let app = Setup::new("").memory().start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let sid = browser.me().await["sid"].as_str().unwrap().to_owned();
    let valid = || LogoutToken::for_subject("alice").sid(&sid);
    let invalid = [
        ("alg none", valid().alg_none()),
        ("HS256 keyed with the public key", valid().hs256_with_public_key()),
        ("no events", valid().without_events()),
        ("another event", valid().wrong_event()),
        ("a nonce", valid().with_nonce()),
        ("another audience", valid().wrong_audience()),
        ("another issuer", valid().wrong_issuer()),
        ("neither sub nor sid", valid().claim("sub", Value::Null).claim("sid", Value::Null)),
        ("expired", valid().claim("exp", json!(auth_core::unix_now() - 3600))),
        ("no iat", valid().claim("iat", Value::Null)),
    ];
    for (what, token) in invalid {
        let answer = idp.backchannel_logout(&app.backchannel_uri(), &token).await.unwrap();
        assert_eq!(answer.status, 400, "{what}: {}", answer.body);
        let body: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["error"], "invalid_request", "{what}");
        assert_eq!(app.sessions(), 1, "{what}: nothing revoked");
        assert!(browser.logged_in().await, "{what}");
    }
    // An ID token (signed by the provider, no events) is not a logout token either.
    let id_token = idp.sign_id_token(json!({
        "iss": idp.issuer(), "aud": idp.client_id(), "sub": "alice", "sid": sid,
        "iat": auth_core::unix_now(), "exp": auth_core::unix_now() + 60, "nonce": "n",
    }));
    let answer = idp.send_logout_token(&app.backchannel_uri(), &id_token).await.unwrap();
    assert_eq!(answer.status, 400);
    for garbage in ["", "not.a.jwt", "a.b"] {
        assert_eq!(idp.send_logout_token(&app.backchannel_uri(), garbage).await.unwrap().status, 400);
    }
    assert!(browser.logged_in().await);

    // Malformed requests.
    let http = reqwest::Client::new();
    let get = http.get(app.backchannel_uri()).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    let token = idp.logout_token(&valid());
    let json_body = http.post(app.backchannel_uri()).json(&json!({"logout_token": token})).send().await.unwrap();
    assert_eq!(json_body.status(), StatusCode::BAD_REQUEST);
    let twice = http.post(app.backchannel_uri()).form(&[("logout_token", &token), ("logout_token", &token)]);
    assert_eq!(twice.send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    let unknown = http.post(format!("{}?provider=nope", app.backchannel_uri())).form(&[("logout_token", &token)]);
    assert_eq!(unknown.send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.sessions(), 1);

    // The valid one, by provider name.
    let named = http.post(format!("{}?provider=default", app.backchannel_uri())).form(&[("logout_token", &token)]);
    assert_eq!(named.send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.sessions(), 0);
    assert!(!browser.logged_in().await);
}

#[tokio::test]
async fn backchannel_logout_with_the_cookie_store_is_not_implemented() {
    let idp = idp().await;
    let app = Setup::new("").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let answer = idp.backchannel_logout(&app.backchannel_uri(), &LogoutToken::for_subject("alice")).await.unwrap();
    assert_eq!(answer.status, 501, "{}", answer.body);
    assert!(answer.body.contains("session_store"), "says what to configure: {}", answer.body);
    assert!(browser.logged_in().await);
}

// ------------------------------------------------------------------ stores by config

#[tokio::test]
async fn session_store_memory_in_the_config_keeps_sessions_on_the_server() {
    let idp = idp().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = Setup::new("session_store = \"memory\"").config(&idp, &base);
    let layer = AuthLayer::from_config(config).await.unwrap();
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
    let message = AuthLayer::from_config(config).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("auth.session_store") && message.contains("features = [\"redis\"]"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

// ------------------------------------------------------------------ cookie sizes

/// The sizes the README's "Sessions" section quotes: a sealed session cookie for a
/// typical login, with and without tokens (token lengths as Google and Microsoft issue
/// them), and a server-side ticket.
#[tokio::test]
async fn typical_cookie_sizes() {
    let store = sealer(SECRET, &[]);
    let mut claims = serde_json::Map::new();
    for (claim, value) in [
        ("iss", json!("https://accounts.google.com")),
        ("azp", json!("123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com")),
        ("aud", json!("123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com")),
        ("sub", json!("110169484474386276334")),
        ("email", json!("alice.example@gmail.com")),
        ("email_verified", json!(true)),
        ("at_hash", json!("HK6E_P6Dh8Y93mRNtsDB1Q")),
        ("name", json!("Alice Example")),
        (
            "picture",
            json!("https://lh3.googleusercontent.com/a/ACg8ocJ-0123456789abcdefghijklmnopqrstuvwxyz_ABCDEFGH=s96-c"),
        ),
        ("given_name", json!("Alice")),
        ("family_name", json!("Example")),
        ("iat", json!(1_700_000_000)),
        ("exp", json!(1_700_003_600)),
    ] {
        claims.insert(claim.into(), value);
    }
    let identity = Identity::new("google", "110169484474386276334", claims);
    let size = |tokens: TokenSet| {
        let session = Session::new(identity.clone(), tokens, 3600);
        let store = store.clone();
        async move { store.save(&session).await.unwrap().len() + "auth_session=".len() }
    };
    let bare = size(TokenSet::default()).await;
    let google = TokenSet {
        access_token: Some("a".repeat(220)),
        id_token: Some("i".repeat(1150)),
        refresh_token: Some("r".repeat(103)),
        expires_at: Some(1_700_003_600),
        scope: Some("openid email profile".into()),
    };
    let google = size(google).await;
    let microsoft = TokenSet {
        access_token: Some("a".repeat(2300)),
        id_token: Some("i".repeat(1500)),
        refresh_token: Some("r".repeat(1400)),
        expires_at: Some(1_700_003_600),
        scope: Some("openid email profile User.Read".into()),
    };
    let microsoft = size(microsoft).await;
    println!(
        "cookie sizes: identity only {bare} B, with Google-sized tokens {google} B, with Microsoft-sized tokens {microsoft} B"
    );
    assert!((600..=1000).contains(&bare), "{bare}");
    assert!((2400..=3400).contains(&google), "{google}");
    assert!((7500..=8500).contains(&microsoft), "{microsoft}");
    assert_eq!(auth_core::random_ticket().len() + "auth_session=".len(), 56, "a server-side ticket");
}
