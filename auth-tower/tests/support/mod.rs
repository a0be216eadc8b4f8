//! What the full-flow suites against `MockIdp` share: an axum app behind
//! `AuthLayer::from_config` on loopback, and a browser with a cookie jar.
#![allow(dead_code)] // each suite uses its own part

use auth_tower::{AuthConfig, AuthLayer, RequireUser, User};
use axum::routing::get;
use axum::{Json, Router};
use reqwest::StatusCode;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

pub(crate) const SECRET: &str = "a-test-cookie-secret-of-at-least-32-bytes";

/// An app served on 127.0.0.1, stopped when dropped.
pub(crate) struct App {
    pub(crate) base: String,
    task: JoinHandle<()>,
}

impl App {
    /// The app served at `base` by `task`.
    pub(crate) fn new(base: String, task: JoinHandle<()>) -> Self {
        Self { base, task }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn bind() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind app")
}

pub(crate) fn port_of(listener: &tokio::net::TcpListener) -> u16 {
    listener.local_addr().expect("addr").port()
}

/// Serves the app configured by `text` on `listener`: `/` (says whether someone is
/// logged in), `/me` (`user.to_json()`), `/who` (provider and subject) and `/private`
/// (requires a login).
pub(crate) async fn serve(listener: tokio::net::TcpListener, text: &str) -> App {
    let port = port_of(&listener);
    let config = AuthConfig::from_toml_str(text, "test config").expect("valid config");
    let auth = AuthLayer::from_config(config).expect("layer");
    let app = Router::new()
        .route("/", get(|user: User| async move { format!("home; logged in: {}", user.is_logged_in()) }))
        .route("/me", get(|user: User| async move { Json(user.to_json()) }))
        .route("/who", get(|user: User| async move { Json(json!({"provider": user.provider(), "sub": user.sub()})) }))
        .route(
            "/private",
            get(|RequireUser(user): RequireUser| async move {
                format!("Welcome back, {}!", user.name().unwrap_or("friend"))
            }),
        )
        .layer(auth);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    App { base: format!("http://127.0.0.1:{port}"), task }
}

/// The `[auth]` config of an app on `127.0.0.1:port` signing in with `idp`'s client as the
/// default provider, with `extra` lines.
pub(crate) fn config_for(idp: &auth_testkit::MockIdp, port: u16, extra: &str) -> String {
    format!(
        "[auth]\nredirect_uri = \"http://127.0.0.1:{port}/oauth2callback\"\ncookie_secret = \"{SECRET}\"\n\
         client_id = \"{}\"\nclient_secret = \"{}\"\nserver_metadata_url = \"{}\"\n{extra}\n",
        idp.client_id(),
        idp.client_secret(),
        idp.metadata_url()
    )
}

/// [`serve`]s the app of [`config_for`] on a free port.
pub(crate) async fn serve_for(idp: &auth_testkit::MockIdp, extra: &str) -> App {
    let listener = bind().await;
    let text = config_for(idp, port_of(&listener), extra);
    serve(listener, &text).await
}

/// Starts `builder`'s `MockIdp` signing `alice` in without a login form.
pub(crate) async fn idp_for_alice(builder: auth_testkit::MockIdpBuilder) -> auth_testkit::MockIdp {
    builder.login_as(Some("alice")).start().await.expect("mock idp")
}

/// A browser: a cookie jar and manual redirects, so each hop can be inspected.
#[derive(Clone)]
pub(crate) struct Browser {
    pub(crate) jar: Arc<Jar>,
    pub(crate) http: reqwest::Client,
}

impl Browser {
    pub(crate) fn new() -> Self {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Self { jar, http }
    }

    /// GETs `url` and follows redirects; returns the last response and the URL it came from.
    pub(crate) async fn follow(&self, url: &str) -> (reqwest::Response, String) {
        self.follow_response(self.http.get(url).send().await.expect("request"), url).await
    }

    pub(crate) async fn follow_response(
        &self,
        mut response: reqwest::Response,
        url: &str,
    ) -> (reqwest::Response, String) {
        let mut url = reqwest::Url::parse(url).expect("url");
        for _ in 0..10 {
            if !response.status().is_redirection() {
                return (response, url.to_string());
            }
            let location = response.headers()[LOCATION].to_str().expect("location").to_owned();
            url = url.join(&location).expect("redirect url");
            response = self.http.get(url.clone()).send().await.expect("request");
        }
        panic!("too many redirects, last {url}");
    }

    pub(crate) async fn me(&self, app: &App) -> Value {
        self.get_json(app, "/me").await
    }

    /// `/who`: `{"provider": ..., "sub": ...}` (nulls when logged out).
    pub(crate) async fn who(&self, app: &App) -> Value {
        self.get_json(app, "/who").await
    }

    async fn get_json(&self, app: &App, path: &str) -> Value {
        self.http.get(format!("{}{path}", app.base)).send().await.expect(path).json().await.expect("json")
    }

    /// Starts a login and stops at the callback URL the IdP sends the browser to.
    pub(crate) async fn callback_url(&self, app: &App, query: &str) -> String {
        let login = self.http.get(format!("{}/auth/login{query}", app.base)).send().await.expect("login");
        assert_eq!(login.status(), StatusCode::FOUND, "login redirects to the IdP");
        let authorize = login.headers()[LOCATION].to_str().expect("location").to_owned();
        let back = self.http.get(&authorize).send().await.expect("authorize");
        assert!(back.status().is_redirection(), "the mock IdP logs in at once: {}", back.status());
        back.headers()[LOCATION].to_str().expect("location").to_owned()
    }

    pub(crate) async fn log_in(&self, app: &App, query: &str) -> (reqwest::Response, String) {
        self.follow(&format!("{}/auth/login{query}", app.base)).await
    }

    pub(crate) fn cookie_header(&self, app: &App) -> String {
        let url = reqwest::Url::parse(&app.base).expect("url");
        self.jar.cookies(&url).map(|h| h.to_str().expect("ascii").to_owned()).unwrap_or_default()
    }
}

pub(crate) fn session_cookie_deleted(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("auth_session") && c.contains("Max-Age=0"))
}
