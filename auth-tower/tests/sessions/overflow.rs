//! `cookie_overflow = "store"`: sessions past `cookie_budget_bytes` live in the store given to
//! `with_overflow_store`, and their cookie carries a small ticket.

use super::*;
use auth_core::{SessionListing, SessionLock, SessionRevocation, StoreError};
use auth_tower::{Sessions, async_trait};
use std::sync::atomic::{AtomicBool, Ordering};

const OVERFLOW: &str = "cookie_overflow = \"store\"";

/// A Microsoft-like user in 200 groups (ids as GUIDs), as in `dropped_claims_make_small_cookies`:
/// about 26 KB of cookies with every claim and token.
async fn dana_in_200_groups() -> MockIdp {
    let groups: Vec<String> = (0..200).map(|i| format!("{i:08x}-6c67-4c5b-b112-36a304b66dad")).collect();
    MockIdp::builder()
        .user(MockUser::new("dana").email("dana@example.test").name("Dana Example").claim("groups", json!(groups)))
        .login_as(Some("dana"))
        .start()
        .await
        .unwrap()
}

/// The session cookies `browser` holds: `(name, value)`.
fn session_cookies(browser: &Browser) -> Vec<(&str, &str)> {
    browser.jar.iter().filter(|(n, _)| n.contains("auth_session")).map(|(n, v)| (n.as_str(), v.as_str())).collect()
}

/// The bytes of the session cookies in the `Cookie` header `browser` sends, as
/// `cookie_budget_bytes` counts them (`NAME=value`, joined by `"; "`).
fn cookie_bytes(browser: &Browser) -> usize {
    let pairs = session_cookies(browser);
    pairs.iter().map(|(n, v)| n.len() + 1 + v.len()).sum::<usize>() + 2 * pairs.len().saturating_sub(1)
}

/// The overflow store's ticket in `browser`'s session cookie (after `o1.`).
fn server_ticket(browser: &Browser) -> String {
    let value = &browser.jar["auth_session"];
    value.strip_prefix("o1.").unwrap_or_else(|| panic!("an overflow ticket: {value:.40}")).to_owned()
}

/// The sizes the README's "How big the cookie gets" quotes for `cookie_overflow`: the user in
/// 200 groups gets a 59-byte cookie instead of 26 KB in 7 chunks, keeps every claim, and
/// logout empties the overflow store.
#[tokio::test]
async fn a_huge_claim_set_overflows_into_the_store_and_logout_ends_it() {
    let idp = dana_in_200_groups().await;
    let warn = Setup::new("").start(&idp).await;
    let mut before = Browser::new(&warn);
    before.login().await;
    let (before_bytes, before_cookies) = (cookie_bytes(&before), session_cookies(&before).len());

    let store = Arc::new(MemoryStore::new());
    let app = Setup::new(OVERFLOW).overflow_store(Arc::clone(&store) as _).start(&idp).await;
    let mut browser = Browser::new(&app);
    // The chunks of a big cookie written before (by the "warn" app) are cleared at login.
    for (name, value) in session_cookies(&before) {
        browser.jar.insert(name.to_owned(), value.to_owned());
    }
    browser.login().await;
    let line = browser.set_cookie("auth_session").unwrap().to_owned();
    assert!(line.contains("Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax"), "the usual attributes: {line}");
    for chunk in 0..before_cookies {
        let name = format!("auth_session.{chunk}");
        assert_eq!(browser.set_cookie(&name).and_then(max_age), Some(0), "{name} deleted: {:?}", browser.set_cookies);
    }
    assert_eq!(session_cookies(&browser).len(), 1, "{:?}", browser.jar.keys());
    let after_bytes = cookie_bytes(&browser);
    println!(
        "session cookie of a user in 200 groups: {before_bytes} B in {before_cookies} cookies with \
         cookie_overflow = \"warn\", {after_bytes} B with cookie_overflow = \"store\""
    );
    assert!(before_bytes > 20_000 && before_cookies >= 6, "{before_bytes} B in {before_cookies}");
    assert_eq!(after_bytes, "auth_session=o1.".len() + 43, "the prefix and a 256-bit ticket");
    assert_eq!(store.len(), 1);

    for _ in 0..2 {
        let me = browser.me().await;
        assert_eq!(me["email"], "dana@example.test", "{me}");
        assert_eq!(me["groups"].as_array().map(Vec::len), Some(200), "every claim");
        assert!(browser.set_cookies.is_empty(), "nothing to write: {:?}", browser.set_cookies);
    }
    assert_eq!(browser.text("/cookies").await, "<none>", "the app never sees the ticket");

    let copy = browser.jar.clone();
    let logout = browser.send(reqwest::Method::POST, "/auth/logout", &[("origin", app.base.as_str())]).await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert!(browser.session_cookie_deleted());
    assert!(store.is_empty(), "logout ends the session in the overflow store");
    assert!(!browser.logged_in().await);
    let mut thief = Browser::with_jar(&app, &copy);
    assert!(!thief.logged_in().await, "a copy of the cookie taken before logout does not open");
    assert!(thief.session_cookie_deleted());
}

#[tokio::test]
async fn a_small_session_stays_in_its_cookie() {
    let idp = idp().await;
    let store = Arc::new(MemoryStore::new());
    let app = Setup::new(OVERFLOW).overflow_store(Arc::clone(&store) as _).start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    assert!(browser.jar["auth_session"].starts_with("v1."), "sealed in the cookie");
    assert!(cookie_bytes(&browser) <= 4096);
    assert!(browser.logged_in().await && browser.logged_in().await);
    assert!(store.is_empty(), "nothing in the overflow store");
}

#[tokio::test]
async fn https_overflow_cookies_keep_the_host_prefix() {
    let idp = dana_in_200_groups().await;
    let store = Arc::new(MemoryStore::new());
    let app = Setup::new(OVERFLOW).overflow_store(Arc::clone(&store) as _).origin("https://app.test").start(&idp).await;
    let mut browser = Browser::with_origin(&app, "https://app.test");
    browser.login().await;
    let line = browser.set_cookie("__Host-auth_session").unwrap();
    assert!(line.starts_with("__Host-auth_session=o1.") && line.contains("; Secure"), "{line}");
    assert!(line.contains("Path=/;") && !line.contains("Domain="), "{line}");
    assert_eq!(browser.me().await["groups"].as_array().map(Vec::len), Some(200));
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn tampered_or_unknown_overflow_tickets_are_anonymous_and_cleared() {
    let idp = dana_in_200_groups().await;
    let store = Arc::new(MemoryStore::new());
    let app = Setup::new(OVERFLOW).overflow_store(Arc::clone(&store) as _).start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let ticket = server_ticket(&browser);
    let mut flipped = ticket.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for forged in [
        format!("o1.{flipped}"),
        format!("o1.{}", auth_core::random_token()),
        "o1.".to_owned(),
        "o1.not a ticket!".to_owned(),
        ticket.clone(),
        format!("v1.{ticket}"),
    ] {
        let mut other = Browser::new(&app);
        other.jar.insert("auth_session".into(), forged.clone());
        let response = other.get("/me").await;
        assert_eq!(response.status(), StatusCode::OK, "{forged}");
        assert_eq!(response.json::<Value>().await.unwrap()["is_logged_in"], false, "{forged}");
        assert!(other.session_cookie_deleted(), "{forged}: cleared");
    }
    assert!(browser.logged_in().await, "the real ticket still works");

    // An app that does not overflow reads an overflow ticket as a tampered cookie.
    let warn = Setup::new("").start(&idp).await;
    let mut other = Browser::new(&warn);
    other.jar.insert("auth_session".into(), browser.jar["auth_session"].clone());
    assert!(!other.logged_in().await);
    assert!(other.session_cookie_deleted());
}

/// A refresh whose new ID token carries 200 groups makes the session too big: it moves to the
/// overflow store. Once there it stays, behind the same ticket, when a later refresh shrinks
/// it (other requests may still carry the ticket).
#[tokio::test]
async fn a_session_that_grows_at_a_refresh_moves_to_the_store_and_stays() {
    let store = Arc::new(MemoryStore::new());
    let setup = Setup::new(&format!("{OVERFLOW}\nrefresh_margin_secs = 0")).overflow_store(Arc::clone(&store) as _);
    let (idp, app) = super::refresh::short_lived(setup).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    assert!(browser.jar["auth_session"].starts_with("v1.") && store.is_empty());

    let groups: Vec<String> = (0..200).map(|i| format!("{i:08x}-6c67-4c5b-b112-36a304b66dad")).collect();
    idp.add_fault(Fault::IdTokenClaims(json!({ "groups": groups })));
    super::refresh::until_expired().await;
    let me = browser.me().await;
    assert_eq!(me["groups"].as_array().map(Vec::len), Some(200), "refreshed: {me}");
    assert!(browser.session_cookie_set());
    let ticket = server_ticket(&browser);
    assert_eq!(store.len(), 1);
    assert_eq!(session_cookies(&browser).len(), 1);
    assert!(browser.logged_in().await);

    idp.add_fault(Fault::IdTokenClaims(json!({ "groups": [] })));
    super::refresh::until_expired().await;
    let me = browser.me().await;
    assert_eq!(me["groups"], json!([]), "refreshed again, without the groups: {me}");
    assert_eq!(server_ticket(&browser), ticket, "the same ticket");
    assert_eq!(store.len(), 1);
    let logout = browser.send(reqwest::Method::POST, "/auth/logout", &[("origin", app.base.as_str())]).await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert!(store.is_empty());
}

/// A budget of 300 bytes makes every session overflow: the refresh and idle tests of the
/// other stores pass with it too.
fn everything_overflows(extra: &str) -> Setup {
    let extra = format!("{OVERFLOW}\ncookie_budget_bytes = 300\n{extra}");
    Setup::new(&extra).overflow_store(Arc::new(MemoryStore::new()))
}

#[tokio::test]
async fn overflowed_session_refreshes_and_persists_the_rotated_refresh_token() {
    super::refresh::refreshes_and_persists_the_rotated_refresh_token(everything_overflows("refresh_margin_secs = 0"))
        .await;
}

#[tokio::test]
async fn idle_overflowed_session_ends_unless_used() {
    super::idle::idle_session_ends_unless_used(everything_overflows("idle_timeout_secs = 3")).await;
}

/// An app with routes listing and ending the person's other sessions.
async fn start_with_sessions(setup: Setup, idp: &MockIdp) -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let layer = setup.layer(idp, &listener).unwrap();
    let router = Router::new()
        .route("/me", get(|user: User| async move { Json(user.to_json()) }))
        .route(
            "/sessions",
            get(|sessions: Sessions| async move {
                let listed = sessions.list().await.unwrap();
                let handles: Vec<&str> = listed.iter().map(|s| s.handle.as_str()).collect();
                Json(json!({ "current": sessions.current(), "handles": handles }))
            }),
        )
        .route("/end-others", get(|sessions: Sessions| async move { sessions.end_others().await.unwrap().to_string() }))
        .layer(layer);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    App { base, store: None, task }
}

/// Back-channel logout and "sign out other devices" reach the sessions that overflowed.
#[tokio::test]
async fn back_channel_logout_and_session_listing_reach_overflowed_sessions() {
    let idp = dana_in_200_groups().await;
    let store = Arc::new(MemoryStore::new());
    let app = start_with_sessions(Setup::new(OVERFLOW).overflow_store(Arc::clone(&store) as _), &idp).await;
    let mut browsers = Vec::new();
    for _ in 0..3 {
        let mut browser = Browser::new(&app);
        browser.login().await;
        browsers.push(browser);
    }
    assert_eq!(store.len(), 3);
    let listed: Value = browsers[0].get("/sessions").await.json().await.unwrap();
    let handles = listed["handles"].as_array().unwrap();
    assert_eq!(handles.len(), 3, "{listed}");
    assert!(handles.contains(&listed["current"]), "this request's session is listed as current: {listed}");
    assert_eq!(browsers[0].text("/end-others").await, "2");
    assert!(browsers[0].logged_in().await);
    assert!(!browsers[1].logged_in().await && browsers[1].session_cookie_deleted());
    assert_eq!(store.len(), 1);

    let answer = idp.backchannel_logout(&app.backchannel_uri(), &LogoutToken::for_subject("dana")).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(store.is_empty());
    assert!(!browsers[0].logged_in().await && browsers[0].session_cookie_deleted());

    // A session that fits its cookie is not listed (nothing keeps it on the server).
    let idp = super::idp().await;
    let app = start_with_sessions(Setup::new(OVERFLOW).overflow_store(Arc::clone(&store) as _), &idp).await;
    let mut small = Browser::new(&app);
    small.login().await;
    assert!(small.logged_in().await);
    assert_eq!(small.get("/sessions").await.status(), StatusCode::NOT_IMPLEMENTED);
}

/// A `MemoryStore` that can be switched off, as a store that is down.
#[derive(Debug, Default)]
struct Flaky {
    inner: MemoryStore,
    down: AtomicBool,
}

impl Flaky {
    fn up(&self) -> Result<(), StoreError> {
        match self.down.load(Ordering::SeqCst) {
            true => Err(StoreError::other(std::io::Error::other("the overflow store is down"))),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl SessionStore for Flaky {
    async fn save(&self, session: &Session) -> Result<String, StoreError> {
        self.up()?;
        self.inner.save(session).await
    }
    async fn load(&self, ticket: &str) -> Result<Option<Session>, StoreError> {
        self.up()?;
        self.inner.load(ticket).await
    }
    async fn delete(&self, ticket: &str) -> Result<(), StoreError> {
        self.up()?;
        self.inner.delete(ticket).await
    }
    async fn update(&self, ticket: &str, session: &Session) -> Result<String, StoreError> {
        self.up()?;
        self.inner.update(ticket, session).await
    }
    fn lock(&self) -> Option<&dyn SessionLock> {
        self.inner.lock()
    }
    fn revocation(&self) -> Option<&dyn SessionRevocation> {
        self.inner.revocation()
    }
    fn listing(&self) -> Option<&dyn SessionListing> {
        self.inner.listing()
    }
}

/// An overflow store that is down: the login ends on the sign-in error page, a signed-in
/// request is anonymous (its cookie kept), never a 500; once it is back, all is well.
#[tokio::test]
async fn an_overflow_store_that_is_down_fails_softly() {
    let idp = dana_in_200_groups().await;
    let store = Arc::new(Flaky::default());
    let app = Setup::new(OVERFLOW).overflow_store(Arc::clone(&store) as _).start(&idp).await;

    store.down.store(true, Ordering::SeqCst);
    let mut browser = Browser::new(&app);
    let login = browser.get("/auth/login").await;
    let back = browser.http.get(location(&login)).send().await.unwrap();
    let callback = browser.get(&location(&back)).await;
    assert_eq!(callback.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(!browser.session_cookie_set());
    assert!(callback.text().await.unwrap().contains("Signing in is unavailable right now"));

    store.down.store(false, Ordering::SeqCst);
    browser.login().await;
    assert!(browser.logged_in().await);
    store.down.store(true, Ordering::SeqCst);
    let response = browser.get("/me").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["is_logged_in"], false, "anonymous while it is down");
    assert!(!browser.session_cookie_deleted(), "the cookie is kept");
    store.down.store(false, Ordering::SeqCst);
    assert!(browser.logged_in().await, "signed in again once it is back");
}

#[tokio::test]
async fn store_without_an_overflow_store_is_a_startup_error() {
    let idp = idp().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let message = Setup::new(OVERFLOW).layer(&idp, &listener).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("`auth.cookie_overflow`"), "{message}");
    for fix in ["with_overflow_store", "RedisStore", "MemoryStore"] {
        assert!(message.contains(fix), "{fix}: {message}");
    }
    // Sessions already on the server: nothing overflows, nothing is needed.
    assert!(Setup::new(&format!("{OVERFLOW}\nsession_store = \"memory\"")).layer(&idp, &listener).is_ok());
    assert!(Setup::new(OVERFLOW).memory().layer(&idp, &listener).is_ok());
    // A config edited in code meets the file's rules at build: "store" needs a budget.
    let mut config = Setup::new(OVERFLOW).config(&idp, "http://127.0.0.1:1");
    config.cookie_budget_bytes = 0;
    let providers = auth_providers::from_config(&config).unwrap();
    let built = AuthLayer::builder(config).with_providers(providers).with_overflow_store(Arc::new(MemoryStore::new()));
    let message = built.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("`auth.cookie_overflow`") && message.contains("auth.cookie_budget_bytes"), "{message}");
}
