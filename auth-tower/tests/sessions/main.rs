//! Sessions that last, refresh, scale out and end properly, against `MockIdp` with the real
//! `OidcProvider`, over loopback HTTP. One test binary, a file per topic:
//!
//! - [`cookies`]: lifetime and `Max-Age`; cookie path, domain and prefixes; secret
//!   rotation; the cookie budget; the layer's cookies kept from the app; cookie sizes;
//! - [`idle`]: the idle timeout;
//! - [`refresh`]: rotation, single flight within a process and across instances sharing
//!   a store, refusals, access tokens;
//! - [`logout`]: RP-initiated and back-channel logout;
//! - [`stores`]: stores named by the config, and custom stores with their capabilities;
//! - [`overflow`]: `cookie_overflow = "store"`, sessions too big for their cookie on the server;
//! - [`dpop`]: DPoP-bound sessions keep their key across refreshes; `AccessToken`'s headers.
//!
//! This file holds what they share: the app on loopback and a browser with a cookie jar.
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
    /// Any other store given to the builder.
    custom: Option<Arc<dyn SessionStore>>,
    /// The store given to `with_overflow_store`.
    overflow: Option<Arc<dyn SessionStore>>,
}

impl Setup {
    fn new(extra: &str) -> Self {
        Self { extra: extra.to_owned(), origin: None, store: None, custom: None, overflow: None }
    }

    fn memory(self) -> Self {
        self.store(Arc::new(MemoryStore::new()))
    }

    fn store(mut self, store: Arc<MemoryStore>) -> Self {
        self.store = Some(store);
        self
    }

    fn custom_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.custom = Some(store);
        self
    }

    fn overflow_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.overflow = Some(store);
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
        if let Some(store) = &self.custom {
            builder = builder.with_store(Arc::clone(store));
        }
        if let Some(store) = &self.overflow {
            builder = builder.with_overflow_store(Arc::clone(store));
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
        .route("/dpop", get(dpop::headers))
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

    /// A browser holding the cookies `jar` (a copy someone kept).
    fn with_jar(app: &App, jar: &BTreeMap<String, String>) -> Self {
        let mut browser = Self::new(app);
        browser.jar = jar.clone();
        browser
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

    /// The `Set-Cookie` line whose cookie name starts with `prefix`.
    fn set_cookie_starting(&self, prefix: &str) -> Option<&str> {
        self.set_cookies.iter().map(String::as_str).find(|l| l.starts_with(prefix))
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

/// A cookie store sealing as `app` does (its cookie name and `redirect_uri`), with `secret`.
fn sealer(app: &App, secret: &str, previous: &[&str]) -> CookieStore {
    let previous: Vec<&[u8]> = previous.iter().map(|s| s.as_bytes()).collect();
    let binding = auth_core::seal::app_binding("auth_session", &format!("{}/oauth2callback", app.base));
    CookieStore::new(Arc::new(Sealer::new(secret.as_bytes(), &previous).with_context(binding.as_bytes())))
}

/// A session of `alice` at the default provider, as a login would make it.
fn alice_session(lifetime: u64) -> Session {
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), "alice".into());
    claims.insert("email".into(), "alice@example.test".into());
    Session::new(Identity::new("default", "alice", claims), TokenSet::default(), lifetime)
}

/// Captures this thread's log (a `#[tokio::test]` runs the app on the test's thread) at
/// `level` and quieter, through `auth_testkit::capture_logs`.
fn capture_logs(level: tracing::Level) -> (auth_testkit::CapturedLogs, auth_testkit::CaptureGuard) {
    auth_testkit::capture_logs(level.as_str())
}

mod cookies;
mod dpop;
mod idle;
mod logout;
mod logs;
mod overflow;
mod refresh;
mod stores;
