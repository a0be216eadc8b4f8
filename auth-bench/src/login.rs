//! Login throughput: complete logins per second against `MockIdp`, and how often the app
//! fetched the discovery document and the key set while doing them (once each per
//! process when keys do not rotate).
//!
//! Everything runs in this process on loopback: the mock IdP (which signs every ID token
//! with RSA-2048), the app behind `AuthLayer::from_config`, and the clients, which follow
//! the redirects of `/auth/login` -> `/authorize` (auto-login) -> callback by hand,
//! carrying the pending-login cookie, then check that the session cookie signs them in.

use crate::variants::{self, LOGGED_IN};
use auth_testkit::MockIdp;
use auth_tower::AuthLayer;
use axum::Router;
use axum::routing::get;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How many logins, how many at once.
#[derive(Clone, Copy, Debug)]
pub struct LoginSpec {
    /// Logins to complete.
    pub logins: usize,
    /// Logins in flight at once.
    pub concurrency: usize,
}

/// What the login measure found.
#[derive(Clone, Debug, Serialize)]
pub struct LoginReport {
    /// Logins completed (each ending signed in).
    pub completed: usize,
    /// Logins that failed.
    pub failed: usize,
    /// Logins in flight at once.
    pub concurrency: usize,
    /// Wall time of all logins.
    pub elapsed_secs: f64,
    /// Completed logins per second.
    pub per_sec: f64,
    /// `MockIdp` discovery document requests.
    pub discovery_fetches: usize,
    /// `MockIdp` key set requests.
    pub jwks_fetches: usize,
    /// `MockIdp` token requests.
    pub token_requests: usize,
    /// `MockIdp` userinfo requests.
    pub userinfo_requests: usize,
    /// Bytes of the session cookie(s) a real login set (names, values and `; `).
    pub session_cookie_bytes: usize,
    /// The first failure, if any.
    pub first_error: Option<String>,
}

impl LoginReport {
    /// A short Markdown paragraph.
    pub fn markdown(&self) -> String {
        let failed = if self.failed > 0 { format!(", {} failed", self.failed) } else { String::new() };
        format!(
            "Login throughput against MockIdp (in process, {} at once): {} logins in {:.2} s = **{:.0} logins/s**{failed}; \
             MockIdp served {} discovery and {} JWKS fetches ({} token, {} userinfo requests). \
             A real login's session cookie: {} bytes.",
            self.concurrency,
            self.completed,
            self.elapsed_secs,
            self.per_sec,
            self.discovery_fetches,
            self.jwks_fetches,
            self.token_requests,
            self.userinfo_requests,
            self.session_cookie_bytes
        )
    }
}

/// Starts MockIdp and the app, then completes `spec.logins` logins.
///
/// # Errors
/// When MockIdp, the app or the config cannot be set up.
pub async fn run(spec: LoginSpec) -> Result<LoginReport, String> {
    let idp = MockIdp::builder().login_as(Some("alice")).start().await.map_err(|e| format!("MockIdp: {e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let config = crate::fixtures::mock_idp_config(&idp, &format!("http://{addr}/oauth2callback"), "")?;
    let auth = AuthLayer::from_config(config).map_err(|e| e.to_string())?;
    let app = Router::new().route("/", get(variants::home)).layer(auth);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(spec.concurrency)
        .build()
        .map_err(|e| e.to_string())?;
    let base = Arc::new(format!("http://{addr}"));
    // One login first: it shows the cookie and fails fast when the setup is wrong.
    let session_cookie_bytes = login(&client, &base).await?.len();

    let next = Arc::new(AtomicUsize::new(1));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..spec.concurrency.max(1) {
        let (client, base, next) = (client.clone(), Arc::clone(&base), Arc::clone(&next));
        let total = spec.logins;
        tasks.spawn(async move {
            let (mut completed, mut failed, mut first_error) = (0, 0, None);
            while next.fetch_add(1, Ordering::Relaxed) < total {
                match login(&client, &base).await {
                    Ok(_) => completed += 1,
                    Err(error) => {
                        failed += 1;
                        first_error.get_or_insert(error);
                    }
                }
            }
            (completed, failed, first_error)
        });
    }
    let (mut completed, mut failed, mut first_error) = (1, 0, None);
    while let Some(joined) = tasks.join_next().await {
        let (c, f, e) = joined.map_err(|e| e.to_string())?;
        completed += c;
        failed += f;
        if first_error.is_none() {
            first_error = e;
        }
    }
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    server.abort();
    let hits = idp.hits();
    idp.stop().await;
    Ok(LoginReport {
        completed,
        failed,
        concurrency: spec.concurrency,
        elapsed_secs: elapsed.as_secs_f64(),
        // The first login ran before the clock started.
        per_sec: (completed - 1) as f64 / elapsed.as_secs_f64(),
        discovery_fetches: hits.discovery,
        jwks_fetches: hits.jwks,
        token_requests: hits.token,
        userinfo_requests: hits.userinfo,
        session_cookie_bytes,
        first_error,
    })
}

/// One whole login; returns the `Cookie` header that signs in.
async fn login(client: &Client, base: &str) -> Result<String, String> {
    let fail = |step: &str, detail: String| format!("{step}: {detail}");
    let start = client.get(format!("{base}/auth/login")).send().await.map_err(|e| fail("login", e.to_string()))?;
    let pending = cookies_set(&start);
    let authorize = redirect_target(&start, "login")?;
    let idp = client.get(authorize).send().await.map_err(|e| fail("authorize", e.to_string()))?;
    let callback = redirect_target(&idp, "authorize")?;
    let done =
        client.get(callback).header(COOKIE, pending).send().await.map_err(|e| fail("callback", e.to_string()))?;
    redirect_target(&done, "callback")?;
    let session: Vec<String> = cookies_set(&done)
        .split("; ")
        .filter(|c| c.starts_with(crate::fixtures::COOKIE_NAME))
        .map(str::to_owned)
        .collect();
    let session = session.join("; ");
    let home = client
        .get(format!("{base}/"))
        .header(COOKIE, &session)
        .send()
        .await
        .map_err(|e| fail("home", e.to_string()))?;
    let body = home.text().await.map_err(|e| fail("home", e.to_string()))?;
    if body != LOGGED_IN {
        return Err(format!("after the callback the app answers {body:?}"));
    }
    Ok(session)
}

/// The `name=value` pairs of a response's `Set-Cookie` headers that set (not delete) a cookie.
fn cookies_set(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|line| !line.contains("Max-Age=0"))
        .filter_map(|line| line.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

fn redirect_target(response: &reqwest::Response, step: &str) -> Result<String, String> {
    if response.status() != StatusCode::FOUND && response.status() != StatusCode::SEE_OTHER {
        return Err(format!("{step}: expected a redirect, got {}", response.status()));
    }
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| format!("{step}: a redirect without Location"))
}
