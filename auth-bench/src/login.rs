//! Login throughput: complete logins per second against `MockIdp`, and how often the app
//! fetched the discovery document and the key set while doing them (once each per
//! process when keys do not rotate).
//!
//! Everything runs in this process on loopback: the mock IdP (which signs every ID token
//! with RSA-2048), the app behind `AuthLayer::from_config`, and the clients, which follow
//! the redirects of `/auth/login` -> `/authorize` (auto-login) -> callback by hand,
//! carrying the pending-login cookie, then check that the session cookie signs them in.
//!
//! The same measure runs a second time with DPoP and PAR ([`LoginSpec::dpop_par`]): MockIdp
//! requires pushed authorization requests and DPoP proofs with its nonce, and the provider
//! says `dpop = true` (so PAR follows discovery's requirement): each login then pushes its
//! request, signs proofs with a key made for it, and is told the nonce once per process.

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
    /// Whether MockIdp requires PAR and DPoP (with nonces) and the provider uses DPoP.
    pub dpop_par: bool,
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
    /// Whether the logins used DPoP and PAR (see [`LoginSpec::dpop_par`]).
    pub dpop_par: bool,
    /// MockIdp pushed authorization requests.
    pub par_requests: usize,
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
        let what = if self.dpop_par {
            format!("with DPoP and PAR ({} pushed requests, DPoP nonces required)", self.par_requests)
        } else {
            "without DPoP or PAR".to_owned()
        };
        format!(
            "Login throughput against MockIdp {what} (in process, {} at once): {} logins in {:.2} s = **{:.0} logins/s**{failed}; \
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
    let idp = MockIdp::builder()
        .login_as(Some("alice"))
        .require_pushed_authorization_requests(spec.dpop_par)
        .dpop(spec.dpop_par)
        .dpop_nonce_required(spec.dpop_par)
        .start()
        .await
        .map_err(|e| format!("MockIdp: {e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let extra = if spec.dpop_par { "dpop = true\n" } else { "" };
    let config = crate::fixtures::mock_idp_config(&idp, &format!("http://{addr}/oauth2callback"), extra)?;
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
        dpop_par: spec.dpop_par,
        par_requests: hits.par,
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
    let session = sign_in(client, base, None, None).await.map_err(|e| e.to_string())?;
    let home =
        client.get(format!("{base}/")).header(COOKIE, &session).send().await.map_err(|e| format!("home: {e}"))?;
    let body = home.text().await.map_err(|e| format!("home: {e}"))?;
    if body != LOGGED_IN {
        return Err(format!("after the callback the app answers {body:?}"));
    }
    Ok(session)
}

/// The step of a login that went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginStep {
    /// `GET /auth/login` on the app.
    Start,
    /// The provider's authorization endpoint (and its login form).
    Provider,
    /// The app's callback.
    Callback,
}

/// Why [`sign_in`] did not end signed in.
#[derive(Clone, Debug)]
pub struct LoginFailure {
    /// Where it stopped.
    pub step: LoginStep,
    /// The status of the answer there, when there was one.
    pub status: Option<StatusCode>,
    /// What was wrong, for a message.
    pub detail: String,
}

impl std::fmt::Display for LoginFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.step, self.detail)
    }
}

/// Signs in through the app at `base` and its provider as a browser does, following the
/// redirects by hand: `/auth/login`, the provider, the callback (with the pending-login
/// cookie). `user`: `None` when the provider signs in at once (`MockIdp` auto-login), else
/// the account picked on `MockIdp`'s login page. `cookie`: what the browser already sends
/// the app (a previous session), if anything. Returns the session cookie(s) the callback
/// set, as a `Cookie` header value.
///
/// # Errors
/// The step that failed, with the status it answered.
pub async fn sign_in(
    client: &Client,
    base: &str,
    user: Option<&str>,
    cookie: Option<&str>,
) -> Result<String, LoginFailure> {
    let fail = |step, status, detail: String| LoginFailure { step, status, detail };
    let sent = |step| move |e: reqwest::Error| fail(step, None, e.to_string());
    let mut start = client.get(format!("{base}/auth/login"));
    if let Some(cookie) = cookie {
        start = start.header(COOKIE, cookie);
    }
    let start = start.send().await.map_err(sent(LoginStep::Start))?;
    let pending = cookies_set(&start);
    let authorize = redirect_target(&start, LoginStep::Start)?;
    let answer = client.get(&authorize).send().await.map_err(sent(LoginStep::Provider))?;
    let answer = match user {
        // The login page, then its form: the same parameters and the account picked.
        Some(user) if answer.status() == StatusCode::OK => {
            let (endpoint, query) = authorize.split_once('?').unwrap_or((&authorize, ""));
            client
                .post(format!("{endpoint}/login"))
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(format!("{query}&login={user}"))
                .send()
                .await
                .map_err(sent(LoginStep::Provider))?
        }
        _ => answer,
    };
    let callback = redirect_target(&answer, LoginStep::Provider)?;
    let mut cookies = pending;
    if let Some(cookie) = cookie {
        cookies = format!("{cookie}; {cookies}");
    }
    let done = client.get(callback).header(COOKIE, cookies).send().await.map_err(sent(LoginStep::Callback))?;
    redirect_target(&done, LoginStep::Callback)?;
    let session: Vec<String> = cookies_set(&done)
        .split("; ")
        .filter(|c| c.starts_with(crate::fixtures::COOKIE_NAME))
        .map(str::to_owned)
        .collect();
    if session.is_empty() {
        return Err(fail(LoginStep::Callback, Some(done.status()), "the callback set no session cookie".into()));
    }
    Ok(session.join("; "))
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

fn redirect_target(response: &reqwest::Response, step: LoginStep) -> Result<String, LoginFailure> {
    let status = response.status();
    if status != StatusCode::FOUND && status != StatusCode::SEE_OTHER {
        return Err(LoginFailure { step, status: Some(status), detail: format!("expected a redirect, got {status}") });
    }
    response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned).ok_or_else(|| LoginFailure {
        step,
        status: Some(status),
        detail: "a redirect without Location".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_login_measures_complete_their_logins() {
        for dpop_par in [false, true] {
            let report = run(LoginSpec { logins: 6, concurrency: 2, dpop_par }).await.expect("the measure runs");
            assert_eq!((report.completed, report.failed), (6, 0), "{:?}", report.first_error);
            assert_eq!(report.dpop_par, dpop_par);
            let pushed = if dpop_par { 6 } else { 0 };
            assert_eq!(report.par_requests, pushed, "every DPoP+PAR login pushes its request, no other does");
            assert!(report.markdown().contains(if dpop_par { "with DPoP and PAR" } else { "without DPoP" }));
        }
    }
}
