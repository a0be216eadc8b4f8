//! The login, callback and logout flows through a real axum server and HTTP client, with a
//! fake in-test identity provider (no network beyond loopback, fast).
//!
//! Full flows with the real `OidcProvider` against `auth-testkit`'s MockIdp live elsewhere.
#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used)]

use auth_core::seal::Sealer;
use auth_tower::async_trait;
use auth_tower::{
    AuthConfig, AuthLayer, Authorization, CallbackParams, CookieStore, Identity, IdentityProvider, LoginResult,
    MemoryStore, PendingLogin, ProviderError, RequireUser, Session, SessionStore, TokenSet, User,
};
use axum::Router;
use axum::routing::get;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Response, StatusCode};
use std::collections::BTreeMap;
use std::sync::Arc;

const SECRET: &str = "0123456789abcdef0123456789abcdef-test";
const IDP: &str = "https://idp.test";

// ------------------------------------------------------------------------ fake provider

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Working,
    Unavailable,
    /// Completes logins with an identity that names another provider.
    NamesAnother,
}

#[derive(Debug)]
struct FakeProvider {
    name: &'static str,
    display: &'static str,
    mode: Mode,
    /// Claims this large are added to the identity (to force chunked cookies).
    blob: usize,
    /// Offers RP-initiated logout at this URL.
    end_session: Option<&'static str>,
}

impl FakeProvider {
    fn new(name: &'static str) -> Self {
        Self { name, display: name, mode: Mode::Working, blob: 0, end_session: None }
    }
}

#[async_trait]
impl IdentityProvider for FakeProvider {
    fn name(&self) -> &str {
        self.name
    }

    fn display_name(&self) -> &str {
        self.display
    }

    async fn authorize(&self, redirect_uri: &str) -> Result<Authorization, ProviderError> {
        if self.mode == Mode::Unavailable {
            return Err(ProviderError::Unavailable("connection refused".into()));
        }
        let state = auth_core::random_token();
        let url = format!("{IDP}/{}/authorize?state={state}&redirect_uri={redirect_uri}", self.name);
        let pending = PendingLogin::new(state).with_nonce("nonce").with_pkce_verifier("verifier");
        Ok(Authorization::new(url, pending))
    }

    async fn complete(
        &self,
        callback: &CallbackParams,
        pending: &PendingLogin,
        _redirect_uri: &str,
    ) -> Result<LoginResult, ProviderError> {
        assert_eq!(pending.pkce_verifier.as_deref(), Some("verifier"), "the pending login survives the round trip");
        match callback.code.as_str() {
            "good" => {
                let mut claims = serde_json::Map::new();
                claims.insert("sub".into(), "alice".into());
                claims.insert("email".into(), "alice@example.test".into());
                claims.insert("name".into(), "Alice".into());
                if self.blob > 0 {
                    claims.insert("blob".into(), "b".repeat(self.blob).into());
                }
                let tokens = TokenSet::new().with_id_token("id.token");
                let named = if self.mode == Mode::NamesAnother { "someone-else" } else { self.name };
                Ok(LoginResult::new(Identity::new(named, "alice", claims), tokens))
            }
            "deny" => Err(ProviderError::Denied("not in the allowed domain".into())),
            "down" => Err(ProviderError::Unavailable("timeout".into())),
            _ => Err(ProviderError::Rejected("bad code".into())),
        }
    }

    async fn end_session_url(
        &self,
        _session: &Session,
        post_logout_redirect_uri: &str,
        state: &str,
    ) -> Result<Option<String>, ProviderError> {
        Ok(self
            .end_session
            .map(|url| format!("{url}?post_logout_redirect_uri={post_logout_redirect_uri}&state={state}")))
    }
}

// ------------------------------------------------------------------------------- server

fn config(port: u16, secret: &str) -> AuthConfig {
    let toml = format!(
        r#"
[auth]
redirect_uri = "http://127.0.0.1:{port}/oauth2callback"
cookie_secret = "{secret}"
"#
    );
    AuthConfig::from_toml_str(&toml, "flow.rs").unwrap()
}

fn app(layer: AuthLayer) -> Router {
    Router::new()
        .route("/", get(|| async { "home" }))
        .route("/me", get(|user: User| async move { axum::Json(user.to_json()) }))
        .route("/provider", get(|user: User| async move { user.provider().unwrap_or("none").to_owned() }))
        .route(
            "/private",
            get(|RequireUser(user): RequireUser| async move { format!("hello {}", user.sub().unwrap_or("?")) }),
        )
        .layer(layer)
}

/// A server on 127.0.0.1:0 whose layer is made by `build` from a config naming its port.
async fn serve(build: impl FnOnce(AuthConfig) -> AuthLayer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let layer = build(config(port, SECRET));
    tokio::spawn(async move { axum::serve(listener, app(layer)).await.unwrap() });
    format!("http://127.0.0.1:{port}")
}

async fn serve_with(providers: Vec<FakeProvider>) -> String {
    serve(|config| {
        let providers = providers.into_iter().map(|p| Arc::new(p) as Arc<dyn IdentityProvider>);
        AuthLayer::builder(config).with_providers(providers).build().unwrap()
    })
    .await
}

// ------------------------------------------------------------------------------ browser

/// A browser: no automatic redirects, and a cookie jar we can read and tamper with.
struct Browser {
    client: reqwest::Client,
    base: String,
    jar: BTreeMap<String, String>,
}

impl Browser {
    fn new(base: &str) -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { client, base: base.to_owned(), jar: BTreeMap::new() }
    }

    async fn get(&mut self, path: &str) -> Response {
        self.send(reqwest::Method::GET, path, &[]).await
    }

    async fn send(&mut self, method: reqwest::Method, path: &str, headers: &[(&'static str, &str)]) -> Response {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        let mut request = self.client.request(method, url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if !self.jar.is_empty() {
            let cookie = self.jar.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        for (name, value, max_age) in set_cookies(response.headers()) {
            if max_age == Some(0) {
                self.jar.remove(&name);
            } else {
                self.jar.insert(name, value);
            }
        }
        response
    }

    fn session_cookies(&self) -> Vec<&str> {
        self.jar.keys().filter(|n| n.starts_with("auth_session")).map(String::as_str).collect()
    }

    /// Starts a login; returns the state the provider was given.
    async fn start_login(&mut self, query: &str) -> String {
        let response = self.get(&format!("/auth/login{query}")).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{:?}", response.text().await);
        state_of(location(&response))
    }

    /// A whole login with the fake provider; returns the callback's response.
    async fn login(&mut self, query: &str) -> Response {
        let state = self.start_login(query).await;
        self.get(&format!("/oauth2callback?code=good&state={state}")).await
    }

    async fn me(&mut self) -> serde_json::Value {
        self.get("/me").await.json().await.unwrap()
    }
}

/// `(name, value, Max-Age)` of each `Set-Cookie`.
fn set_cookies(headers: &HeaderMap) -> Vec<(String, String, Option<u64>)> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let line = v.to_str().unwrap();
            let (pair, attrs) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let max_age = attrs.split(';').find_map(|a| a.trim().strip_prefix("Max-Age=")).map(|a| a.parse().unwrap());
            (name.to_owned(), value.to_owned(), max_age)
        })
        .collect()
}

fn set_cookie_line<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).find(|l| l.starts_with(&format!("{name}=")))
}

/// The `Set-Cookie` line of a pending login (`auth_pending_<id>`).
fn pending_line(headers: &HeaderMap) -> Option<&str> {
    headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).find(|l| l.starts_with("auth_pending_"))
}

fn deleted(headers: &HeaderMap) -> Vec<String> {
    set_cookies(headers).into_iter().filter(|(_, _, age)| *age == Some(0)).map(|(n, _, _)| n).collect()
}

fn location(response: &Response) -> &str {
    response.headers().get("location").map(|l| l.to_str().unwrap()).unwrap_or_default()
}

fn state_of(url: &str) -> String {
    let url = url::Url::parse(url).unwrap();
    url.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned()).unwrap()
}

// -------------------------------------------------------------------------------- tests

#[tokio::test]
async fn login_sets_pending_cookie_and_redirects() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    let mut browser = Browser::new(&base);
    let response = browser.get("/auth/login?return_to=/private").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(location(&response).starts_with("https://idp.test/fake/authorize?state="), "{}", location(&response));
    assert!(location(&response).contains("redirect_uri=http://127.0.0.1:"));
    assert_eq!(response.headers()["cache-control"], "no-store");
    let pending = pending_line(response.headers()).unwrap();
    for attribute in ["Path=/", "Max-Age=600", "HttpOnly", "SameSite=Lax"] {
        assert!(pending.contains(attribute), "{pending}");
    }
    assert!(!pending.contains("Secure"), "http redirect_uri: no Secure");
    assert!(!pending.contains("verifier"), "the pending cookie is sealed");
}

#[tokio::test]
async fn callback_with_right_state_logs_in() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    let mut browser = Browser::new(&base);
    assert_eq!(browser.me().await, serde_json::json!({"is_logged_in": false}));

    let response = browser.login("?return_to=%2Fprivate%3Fx%3D1").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/private?x=1");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let session = set_cookie_line(response.headers(), "auth_session").unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax") && session.contains("Path=/"));
    assert!(session.contains(&format!("Max-Age={}", 30 * 24 * 3600)), "{session}");
    assert!(deleted(response.headers()).iter().any(|n| n.starts_with("auth_pending_")));
    assert!(!browser.jar.keys().any(|k| k.starts_with("auth_pending")));

    let me = browser.me().await;
    assert_eq!(me["is_logged_in"], true);
    assert_eq!(me["email"], "alice@example.test");
    let private = browser.get("/private?x=1").await;
    assert_eq!(private.status(), StatusCode::OK);
    assert_eq!(private.text().await.unwrap(), "hello alice");
    // Cached on the second request; still the same user.
    assert_eq!(browser.me().await["sub"], "alice");
}

#[tokio::test]
async fn unsafe_return_to_becomes_home() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    for return_to in ["//evil.test", "https%3A%2F%2Fevil.test", "/%2F%2Fevil.test", "/%5Cevil.test"] {
        let mut browser = Browser::new(&base);
        let response = browser.login(&format!("?return_to={return_to}")).await;
        assert_eq!(location(&response), "/", "{return_to}");
    }
}

#[tokio::test]
async fn replayed_callback_is_refused() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    let mut browser = Browser::new(&base);
    let state = browser.start_login("").await;
    let callback = format!("/oauth2callback?code=good&state={state}");
    assert_eq!(browser.get(&callback).await.status(), StatusCode::FOUND);
    let replay = browser.get(&callback).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(replay.text().await.unwrap().contains("This sign-in link has expired or was already used. Start again."));
}

#[tokio::test]
async fn state_mismatch_is_refused_without_session() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    let mut browser = Browser::new(&base);
    browser.start_login("").await;
    let response = browser.get("/oauth2callback?code=good&state=forged").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookie_line(response.headers(), "auth_session").is_none());
    assert!(deleted(response.headers()).is_empty(), "a state that matches nothing touches no pending login");
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(browser.me().await["is_logged_in"], false);

    // A repeated state parameter is refused even when one copy is right.
    let state = browser.start_login("").await;
    let response = browser.get(&format!("/oauth2callback?code=good&state={state}&state=x")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(browser.session_cookies().is_empty());
}

#[tokio::test]
async fn missing_pending_cookie_or_code_is_refused() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    let mut browser = Browser::new(&base);
    let response = browser.get("/oauth2callback?code=good&state=whatever").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let html = response.text().await.unwrap();
    assert!(html.contains("This sign-in link has expired or was already used. Start again."), "{html}");
    assert!(html.contains("href=\"/auth/login?return_to=%2F\""), "{html}");

    let state = browser.start_login("").await;
    let response = browser.get(&format!("/oauth2callback?state={state}")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(browser.session_cookies().is_empty());
}

#[tokio::test]
async fn provider_error_parameter_ends_on_a_clear_page() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    let mut browser = Browser::new(&base);
    let state = browser.start_login("?return_to=/private").await;
    let response = browser
        .get(&format!(
            "/oauth2callback?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C/script%3E&state={state}"
        ))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(deleted(response.headers()).iter().any(|n| n.starts_with("auth_pending_")), "its own login ends");
    let html = response.text().await.unwrap();
    assert!(html.contains("access_denied"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    assert!(!html.contains("<script>"));
    assert!(html.contains("Try again"));
    assert!(html.contains("return_to=%2Fprivate"), "the retry link keeps return_to: {html}");

    // Without this browser's login, the description is not echoed (no content injection).
    let mut stranger = Browser::new(&base);
    let response = stranger.get("/oauth2callback?error=server_error&error_description=Call+555-0100").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.unwrap();
    assert!(html.contains("server_error") && !html.contains("555-0100"), "{html}");
}

#[tokio::test]
async fn provider_failures_at_completion_map_to_statuses() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    for (code, status) in
        [("bad", StatusCode::BAD_REQUEST), ("deny", StatusCode::FORBIDDEN), ("down", StatusCode::SERVICE_UNAVAILABLE)]
    {
        let mut browser = Browser::new(&base);
        let state = browser.start_login("").await;
        let response = browser.get(&format!("/oauth2callback?code={code}&state={state}")).await;
        assert_eq!(response.status(), status, "{code}");
        assert!(deleted(response.headers()).iter().any(|n| n.starts_with("auth_pending_")));
        assert!(browser.session_cookies().is_empty());
        assert!(!response.text().await.unwrap().contains("bad code"), "provider detail stays in the logs");
    }
}

#[tokio::test]
async fn tampered_session_cookie_is_anonymous_and_cleared() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    let mut browser = Browser::new(&base);
    browser.login("").await;
    let value = browser.jar.get_mut("auth_session").unwrap();
    let flipped = if value.ends_with('A') { 'B' } else { 'A' };
    value.pop();
    value.push(flipped);

    let response = browser.get("/me").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(deleted(response.headers()).contains(&"auth_session".to_owned()));
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["is_logged_in"], false);
    assert!(browser.session_cookies().is_empty());
}

#[tokio::test]
async fn cookie_sealed_with_another_secret_is_anonymous_and_cleared() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    let foreign = CookieStore::new(Arc::new(Sealer::new(b"another secret, also 32 bytes or longer", &[])));
    let session = Session::new(Identity::new("fake", "mallory", serde_json::Map::new()), TokenSet::default(), 3600);
    let ticket = foreign.save(&session).await.unwrap();

    let mut browser = Browser::new(&base);
    browser.jar.insert("auth_session".into(), ticket);
    let response = browser.get("/me").await;
    assert!(deleted(response.headers()).contains(&"auth_session".to_owned()));
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["is_logged_in"], false);
}

#[tokio::test]
async fn big_session_is_chunked_and_stale_chunks_are_deleted() {
    let base = serve_with(vec![FakeProvider { blob: 9000, ..FakeProvider::new("fake") }]).await;
    let mut browser = Browser::new(&base);
    browser.jar.insert("auth_session.7".into(), "stale".into());
    let response = browser.login("").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(deleted(response.headers()).contains(&"auth_session.7".to_owned()));
    let chunks = browser.session_cookies();
    assert!(chunks.len() >= 3 && chunks.iter().all(|c| c.starts_with("auth_session.")), "{chunks:?}");
    for (_, value, _) in set_cookies(response.headers()) {
        assert!(value.len() <= 4000);
    }

    let me = browser.me().await;
    assert_eq!(me["is_logged_in"], true);
    assert_eq!(me["blob"].as_str().map(str::len), Some(9000));

    // A missing chunk makes the rest unreadable: anonymous, and the leftovers are cleared.
    browser.jar.remove("auth_session.0");
    let response = browser.get("/me").await;
    assert!(deleted(response.headers()).contains(&"auth_session.1".to_owned()));
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["is_logged_in"], false);
}

#[tokio::test]
async fn logout_clears_the_session() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    let mut browser = Browser::new(&base);
    browser.login("").await;
    assert_eq!(browser.me().await["is_logged_in"], true);

    let response = browser.send(reqwest::Method::POST, "/auth/logout", &[("sec-fetch-site", "same-origin")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    assert!(deleted(response.headers()).contains(&"auth_session".to_owned()));
    assert_eq!(browser.me().await["is_logged_in"], false);

    // GET works too, and without any session it still answers with a redirect.
    let response = browser.send(reqwest::Method::GET, "/auth/logout", &[("sec-fetch-site", "none")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn logout_with_a_server_side_store_revokes_and_ends_the_provider_session() {
    let store = Arc::new(MemoryStore::new());
    let store_for_layer = Arc::clone(&store);
    let base = serve(move |config| {
        let provider = FakeProvider { end_session: Some("https://idp.test/logout"), ..FakeProvider::new("fake") };
        AuthLayer::builder(config).with_provider(Arc::new(provider)).with_store(store_for_layer).build().unwrap()
    })
    .await;
    let mut browser = Browser::new(&base);
    browser.login("").await;
    assert_eq!(store.len(), 1);
    let ticket = browser.jar["auth_session"].clone();
    assert_eq!(ticket.len(), 43, "a server-side ticket, not the session");

    let origin = base.clone();
    let response = browser.send(reqwest::Method::POST, "/auth/logout", &[("origin", &origin)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to = location(&response);
    assert!(to.starts_with("https://idp.test/logout?post_logout_redirect_uri=http://127.0.0.1:"), "{to}");
    assert!(store.is_empty(), "the session is revoked");

    // A copy of the old cookie no longer works.
    browser.jar.insert("auth_session".into(), ticket);
    assert_eq!(browser.me().await["is_logged_in"], false);
}

#[tokio::test]
async fn cross_site_logout_is_refused() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    let mut browser = Browser::new(&base);
    browser.login("").await;
    for headers in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "https://evil.test")],
    ] {
        let response = browser.send(reqwest::Method::POST, "/auth/logout", &headers).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(response.headers().get("set-cookie").is_none());
        let response = browser.send(reqwest::Method::GET, "/auth/logout", &headers).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{headers:?}");
    }
    assert_eq!(browser.me().await["is_logged_in"], true);
}

#[tokio::test]
async fn require_user_redirects_browsers_and_401s_api_clients() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    let mut browser = Browser::new(&base);
    let response = browser.send(reqwest::Method::GET, "/private?x=1", &[("accept", "text/html,*/*;q=0.8")]).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/auth/login?return_to=%2Fprivate%3Fx%3D1");

    let response = browser.send(reqwest::Method::GET, "/private", &[("accept", "application/json")]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("www-authenticate").is_none());
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"error": "login_required", "login_url": "/auth/login?return_to=%2Fprivate"}));

    // Following the redirect logs in and comes back.
    let state = state_of(location(&browser.get("/auth/login?return_to=%2Fprivate%3Fx%3D1").await));
    let response = browser.get(&format!("/oauth2callback?code=good&state={state}")).await;
    assert_eq!(location(&response), "/private?x=1");
    assert_eq!(browser.get("/private?x=1").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_provider_is_a_400_naming_the_valid_ones() {
    let base = serve_with(vec![FakeProvider::new("google"), FakeProvider::new("github")]).await;
    let mut browser = Browser::new(&base);
    let response = browser.get("/auth/login?provider=%3Cb%3Enope").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.unwrap();
    assert!(html.contains("google") && html.contains("github"), "{html}");
    assert!(html.contains("&lt;b&gt;nope") && !html.contains("<b>"), "{html}");
    assert!(!browser.jar.keys().any(|k| k.starts_with("auth_pending")));
}

#[tokio::test]
async fn chooser_page_lists_providers() {
    let base = serve_with(vec![
        FakeProvider { display: "Google", ..FakeProvider::new("google") },
        FakeProvider { display: "Acme <Corp>", ..FakeProvider::new("acme") },
    ])
    .await;
    let mut browser = Browser::new(&base);
    let response = browser.get("/auth/login?return_to=/private").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    let html = response.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("<a href=\"/auth/login?provider=google&amp;return_to=%2Fprivate\">Google</a>"), "{html}");
    assert!(html.contains("<a href=\"/auth/login?provider=acme&amp;return_to=%2Fprivate\">Acme &lt;Corp&gt;</a>"));

    let state = browser.start_login("?provider=acme&return_to=/private").await;
    let response = browser.get(&format!("/oauth2callback?code=good&state={state}")).await;
    assert_eq!(location(&response), "/private");
    assert_eq!(browser.me().await["sub"], "alice");
}

#[tokio::test]
async fn unavailable_provider_is_a_503_and_the_app_keeps_serving() {
    let base = serve_with(vec![FakeProvider { mode: Mode::Unavailable, ..FakeProvider::new("fake") }]).await;
    let mut browser = Browser::new(&base);
    let response = browser.get("/auth/login?return_to=/private").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(!browser.jar.keys().any(|k| k.starts_with("auth_pending")));
    let html = response.text().await.unwrap();
    assert!(html.contains("The sign-in service is unavailable, try again shortly"));
    assert!(html.contains("href=\"/auth/login?provider=fake&amp;return_to=%2Fprivate\""), "retry link: {html}");
    let home = browser.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    assert_eq!(home.text().await.unwrap(), "home");
}

#[tokio::test]
async fn login_may_finish_on_another_instance() {
    let listener_a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener_b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Both instances share one public redirect_uri (as behind a load balancer).
    let port = listener_a.local_addr().unwrap().port();
    let port_b = listener_b.local_addr().unwrap().port();
    for listener in [listener_a, listener_b] {
        let layer = AuthLayer::builder(config(port, SECRET)).with_provider(Arc::new(FakeProvider::new("fake"))).build();
        let router = app(layer.unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    }
    let mut browser = Browser::new(&format!("http://127.0.0.1:{port}"));
    let state = browser.start_login("?return_to=/me").await;
    let response = browser.get(&format!("http://127.0.0.1:{port_b}/oauth2callback?code=good&state={state}")).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(browser.me().await["email"], "alice@example.test", "instance A reads B's session");
}

#[tokio::test]
async fn layer_routes_refuse_other_methods_and_building_checks_the_setup() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    let mut browser = Browser::new(&base);
    let response = browser.send(reqwest::Method::POST, "/auth/login", &[]).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], HeaderValue::from_static("GET"));

    let build = |providers: Vec<&'static str>, prefix: &str| {
        let providers = providers.into_iter().map(|n| Arc::new(FakeProvider::new(n)) as Arc<dyn IdentityProvider>);
        AuthLayer::builder(config(3000, SECRET)).with_providers(providers).with_prefix(prefix).build()
    };
    assert!(matches!(build(vec![], "/auth"), Err(auth_tower::AuthError::NoProviders)));
    assert!(matches!(
        build(vec!["a", "a"], "/auth"),
        Err(auth_tower::AuthError::DuplicateProvider { name }) if name == "a"
    ));
    assert!(matches!(build(vec!["a"], "auth"), Err(auth_tower::AuthError::InvalidPrefix { .. })));
    let layer = build(vec!["a"], "/account/").unwrap();
    assert_eq!(layer.routes().login_path(), "/account/login");
    let message = build(vec!["a"], "/").map(|_| ()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.is_empty(), "/login and /logout do not collide with /oauth2callback: {message}");

    let mut colliding = config(3000, SECRET);
    colliding.redirect_uri = "http://127.0.0.1:3000/auth/login".into();
    let error = AuthLayer::builder(colliding).with_provider(Arc::new(FakeProvider::new("a"))).build().err();
    let message = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("auth.redirect_uri") && message.contains("Fix:"), "{message}");
}

/// A config built or edited in code meets the rules a file meets: the builder validates it.
#[tokio::test]
async fn the_builder_validates_a_config_built_in_code() {
    let build = |config: AuthConfig| {
        AuthLayer::builder(config).with_provider(Arc::new(FakeProvider::new("a"))).build().err().map(|e| e.to_string())
    };
    let fine = AuthConfig::new("http://127.0.0.1:3000/oauth2callback", auth_tower::Secret::new(SECRET));
    assert_eq!(build(fine.clone()), None);

    let mut short = fine.clone();
    short.cookie_secret = auth_tower::Secret::new("short");
    let message = build(short).unwrap_or_default();
    assert!(message.contains("`auth.cookie_secret` is 5 bytes") && message.contains("openssl rand"), "{message}");

    let mut edited = config(3000, SECRET);
    edited.idle_timeout_secs = Some(0);
    let message = build(edited).unwrap_or_default();
    assert!(message.starts_with("flow.rs: `auth.idle_timeout_secs` is 0"), "names the file: {message}");

    let mut provider = corp_provider();
    provider.client_kwargs.insert("nonce".into(), "fixed".into());
    let message = build(fine.clone().with_provider(provider)).unwrap_or_default();
    assert!(message.contains("`auth.corp.client_kwargs.nonce` is set by the library"), "{message}");
}

fn corp_provider() -> auth_tower::ProviderConfig {
    auth_tower::ProviderConfig::new(
        "corp",
        auth_tower::ProviderKind::Oidc,
        "app",
        "https://idp.example/.well-known/openid-configuration",
    )
    .with_client_secret(auth_tower::Secret::new("s"))
}

/// Off a Tokio runtime (another executor), a refresh that finds another instance holding
/// the store's lock cannot wait for it (waiting needs Tokio's timer): the request goes on
/// with the current tokens instead of panicking. The request below completes at its first
/// poll, with no runtime anywhere.
#[test]
fn a_refresh_off_a_tokio_runtime_does_not_wait_for_another_instances_lock() {
    use auth_tower::SessionLock;
    use futures_util::FutureExt as _;
    use tower::{Layer as _, ServiceExt as _};

    let store = Arc::new(MemoryStore::new());
    let layer = AuthLayer::builder(config(3000, SECRET))
        .with_provider(Arc::new(FakeProvider::new("fake")))
        .with_store(Arc::clone(&store) as Arc<dyn SessionStore>)
        .build()
        .unwrap();
    let due = TokenSet::new().with_access_token("old").with_refresh_token("rt").with_expires_at(1);
    let session = Session::new(Identity::new("fake", "alice", Default::default()), due, 3600);
    let ticket = store.save(&session).now_or_never().unwrap().unwrap();
    let key = format!("refresh:{ticket}");
    let held = store.try_lock(&key, std::time::Duration::from_secs(60)).now_or_never().unwrap().unwrap();
    assert!(held, "another instance holds the refresh lock");

    let app = layer.layer(tower::service_fn(|request: http::Request<String>| async move {
        let user = request.extensions().get::<User>().cloned().unwrap_or_default();
        Ok::<_, std::convert::Infallible>(http::Response::new(user.to_json().to_string()))
    }));
    let request = http::Request::get("/").header("cookie", format!("auth_session={ticket}")).body(String::new());
    let response = app.oneshot(request.unwrap()).now_or_never().expect("no waiting off a runtime").unwrap();
    let collected = http_body_util::BodyExt::collect(response.into_body()).now_or_never().unwrap().unwrap();
    let body: serde_json::Value = serde_json::from_slice(&collected.to_bytes()).unwrap();
    assert_eq!(body["is_logged_in"], true, "the session goes on with its current tokens: {body}");
}

/// `user.provider()` names the provider that signed the person in, even when the provider
/// wrote another name into the identity it returned.
#[tokio::test]
async fn the_layer_names_the_provider_itself() {
    let base = serve_with(vec![FakeProvider { mode: Mode::NamesAnother, ..FakeProvider::new("fake") }]).await;
    let mut browser = Browser::new(&base);
    assert_eq!(browser.login("").await.status(), StatusCode::FOUND);
    assert_eq!(browser.get("/provider").await.text().await.unwrap(), "fake");
}

/// The builder never ignores the config: a provider section nobody serves is an error,
/// and `with_config_providers` serves the config's providers beside custom ones.
#[tokio::test]
async fn the_builder_serves_or_refuses_the_configs_provider_sections() {
    let with_section = |redirect_uri: &str| {
        let text = format!(
            "[auth]\nredirect_uri = \"{redirect_uri}\"\ncookie_secret = \"{SECRET}\"\n\
             [auth.corp]\nclient_id = \"app\"\nclient_secret = \"s\"\n\
             server_metadata_url = \"{IDP}/.well-known/openid-configuration\"\n"
        );
        AuthConfig::from_toml_str(&text, "app.toml").unwrap()
    };
    let ignored = AuthLayer::builder(with_section("http://127.0.0.1:3000/oauth2callback"))
        .with_provider(Arc::new(FakeProvider::new("fake")))
        .build();
    let message = ignored.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.starts_with("app.toml: `auth.corp` configures a provider that this layer would not serve"),
        "{message}"
    );
    assert!(message.contains(".with_config_providers()"), "{message}");

    let base = serve(|config| {
        AuthLayer::builder(with_section(&config.redirect_uri))
            .with_config_providers()
            .with_provider(Arc::new(FakeProvider::new("fake")))
            .build()
            .unwrap()
    })
    .await;
    let mut browser = Browser::new(&base);
    let chooser = browser.get("/auth/login").await.text().await.unwrap();
    let (corp, fake) = (chooser.find("provider=corp"), chooser.find("provider=fake"));
    assert!(corp.is_some() && fake.is_some() && corp < fake, "both offered, the config's first: {chooser}");
}

/// Two tabs, two logins: each callback finds its own pending login and clears only it; a
/// cross-site link to the callback with `error=` and a foreign state aborts nothing; at most
/// three logins stay pending, the oldest dropped.
#[tokio::test]
async fn logins_in_two_tabs_do_not_overwrite_each_other() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    let mut browser = Browser::new(&base);
    let first = browser.start_login("?return_to=/first").await;
    let second = browser.start_login("?return_to=/second").await;
    assert_eq!(browser.jar.keys().filter(|k| k.starts_with("auth_pending_")).count(), 2);

    let attack = browser.get("/oauth2callback?error=access_denied&state=forged").await;
    assert!(deleted(attack.headers()).is_empty(), "an error for a login nobody started aborts nothing");

    let response = browser.get(&format!("/oauth2callback?code=good&state={first}")).await;
    assert_eq!(location(&response), "/first", "the first tab's login finishes");
    assert_eq!(deleted(response.headers()).len(), 1, "and clears only its own pending login");
    let response = browser.get(&format!("/oauth2callback?code=good&state={second}")).await;
    assert_eq!(location(&response), "/second", "the second tab's login still finishes");
    let replay = browser.get(&format!("/oauth2callback?code=good&state={second}")).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST, "each pending login is single use");

    for _ in 0..5 {
        browser.start_login("").await;
    }
    assert_eq!(browser.jar.keys().filter(|k| k.starts_with("auth_pending_")).count(), 3, "bounded, oldest dropped");
}

/// Sessions are bound to their app: another app sharing the cookie secret (another
/// redirect_uri) cannot open them; and a session whose provider was removed from the
/// config no longer opens.
#[tokio::test]
async fn sessions_are_bound_to_their_app_and_to_a_configured_provider() {
    let base = serve_with(vec![FakeProvider::new("fake"), FakeProvider::new("other")]).await;
    let mut browser = Browser::new(&base);
    browser.login("?provider=other").await;
    assert_eq!(browser.me().await["is_logged_in"], true);
    let cookie = browser.jar["auth_session"].clone();

    // Another app, same secret, other redirect_uri (its own port): the cookie does not open.
    let elsewhere = serve_with(vec![FakeProvider::new("fake"), FakeProvider::new("other")]).await;
    let mut stranger = Browser::new(&elsewhere);
    stranger.jar.insert("auth_session".into(), cookie.clone());
    let me = stranger.get("/me").await;
    assert!(deleted(me.headers()).contains(&"auth_session".to_owned()), "the foreign cookie is cleared");
    assert_eq!(stranger.me().await["is_logged_in"], false);

    // The same app without the provider "other": its sessions end.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let original_port: u16 = base.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap();
    let layer = AuthLayer::builder(config(original_port, SECRET)).with_provider(Arc::new(FakeProvider::new("fake")));
    let router = app(layer.build().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let mut same_app = Browser::new(&format!("http://127.0.0.1:{port}"));
    same_app.jar.insert("auth_session".into(), cookie);
    assert_eq!(same_app.me().await["is_logged_in"], false, "the provider is gone, so is its session");
}

/// Signing out and straight back in (within the same second) gives a working session: the
/// layer's memory of the logout names the signed-out cookie, not the person (found by the
/// soak).
#[tokio::test]
async fn signing_out_and_straight_back_in_works() {
    let base = serve_with(vec![FakeProvider::new("fake")]).await;
    let mut browser = Browser::new(&base);
    for _ in 0..3 {
        browser.login("").await;
        assert_eq!(browser.me().await["is_logged_in"], true);
        browser.send(reqwest::Method::POST, "/auth/logout", &[("origin", &base)]).await;
        assert_eq!(browser.me().await["is_logged_in"], false);
    }
}
