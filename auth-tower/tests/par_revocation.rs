//! Pushed authorization requests (RFC 9126, `use_par`) and refresh-token revocation at
//! logout (RFC 7009, `revoke_on_logout`) through the whole layer: an axum app with
//! `AuthLayer::from_config`, the real `OidcProvider`, `MockIdp` on loopback, and a client
//! with a cookie jar. PAR failures end on the login error page; revocation happens after
//! the logout answered, and a failing or slow revocation endpoint changes nothing for it.

mod support;

use auth_testkit::{Fault, MockIdp, MockIdpBuilder};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use std::time::{Duration, Instant};
use support::{App, Browser, session_cookie_deleted};

async fn app_with(idp: &MockIdp, extra: &str) -> App {
    support::serve_for(idp, extra).await
}

async fn idp(builder: MockIdpBuilder) -> MockIdp {
    support::idp_for_alice(builder).await
}

/// The login route's answer, not followed.
async fn start_login(browser: &Browser, app: &App) -> reqwest::Response {
    browser.http.get(format!("{}/auth/login", app.base)).send().await.expect("login")
}

async fn log_out(browser: &Browser, app: &App) -> reqwest::Response {
    let url = format!("{}/auth/logout", app.base);
    browser.http.post(url).header("origin", &app.base).send().await.expect("logout")
}

/// Waits (at most 5 s) until the provider saw `count` revocation requests.
async fn revocations_reach(idp: &MockIdp, count: usize) {
    let started = Instant::now();
    while idp.hits().revocation < count {
        assert!(started.elapsed() < Duration::from_secs(5), "revocation requests: {:?}", idp.hits());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_provider_requiring_par_gets_pushed_requests_by_config_alone() {
    let idp = idp(MockIdp::builder().require_pushed_authorization_requests(true)).await;
    let app = app_with(&idp, "").await;
    let browser = Browser::new();
    let (page, _) = browser.log_in(&app, "").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(browser.me(&app).await["sub"], "alice");
    let sent: Vec<String> = idp.last_authorize_params().expect("authorize").into_keys().collect();
    assert_eq!(sent, ["client_id", "request_uri"], "the browser carries only the pushed request's handle");
    assert_eq!(idp.hits().par, 1);
}

#[tokio::test]
async fn use_par_false_against_a_provider_requiring_it_ends_on_an_error_page() {
    let idp = idp(MockIdp::builder().require_pushed_authorization_requests(true)).await;
    let app = app_with(&idp, "use_par = false\n").await;
    let browser = Browser::new();
    let (page, _) = browser.log_in(&app, "").await;
    assert!(page.status().is_client_error(), "{}", page.status());
    assert_eq!(browser.me(&app).await["is_logged_in"], false);
    assert_eq!(idp.hits().par, 0);
}

/// Starts a login while `fault` is active: it ends on the login route's error page with
/// `status`, within `http_timeout_secs = 1` (and a margin), never a 500.
async fn assert_par_fault(fault: Fault, status: StatusCode) {
    let idp = idp(MockIdp::builder().require_pushed_authorization_requests(true)).await;
    let app = app_with(&idp, "http_timeout_secs = 1\n").await;
    let browser = Browser::new();
    idp.set_fault(fault.clone());
    let started = Instant::now();
    let login = start_login(&browser, &app).await;
    assert!(started.elapsed() < Duration::from_millis(2500), "{fault:?}: bounded: {:?}", started.elapsed());
    assert_eq!(login.status(), status, "{fault:?}");
    assert!(login.headers().get(LOCATION).is_none(), "{fault:?}: no redirect to the provider");
    let body = login.text().await.expect("body");
    assert!(body.contains("<!doctype") && body.contains("Try again"), "{fault:?}: the login error page: {body}");
    assert_eq!(browser.me(&app).await["is_logged_in"], false);
}

#[tokio::test]
async fn a_par_endpoint_refusing_the_request_is_a_clear_page() {
    assert_par_fault(Fault::ParError("invalid_request".into()), StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn a_failing_par_endpoint_is_a_clear_page() {
    assert_par_fault(Fault::ParServerError, StatusCode::SERVICE_UNAVAILABLE).await;
}

#[tokio::test]
async fn a_slow_par_endpoint_times_out_with_a_clear_page() {
    assert_par_fault(Fault::ParDelay(Duration::from_secs(5)), StatusCode::SERVICE_UNAVAILABLE).await;
}

#[tokio::test]
async fn use_par_true_without_a_par_endpoint_is_a_clear_page() {
    let idp = idp(MockIdp::builder()).await;
    idp.set_fault(Fault::DiscoveryExtra(serde_json::json!({"pushed_authorization_request_endpoint": null})));
    let app = app_with(&idp, "use_par = true\n").await;
    let login = start_login(&Browser::new(), &app).await;
    assert_eq!(login.status(), StatusCode::BAD_GATEWAY);
    assert!(login.text().await.expect("body").contains("Try again"));
}

#[tokio::test]
async fn logout_revokes_the_refresh_token_after_answering() {
    let idp = idp(MockIdp::builder().rotate_refresh_tokens(false)).await;
    let app = app_with(&idp, "").await;
    let browser = Browser::new();
    browser.log_in(&app, "").await;
    assert_eq!(browser.me(&app).await["is_logged_in"], true);
    let logout = log_out(&browser, &app).await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert!(session_cookie_deleted(&logout));
    revocations_reach(&idp, 1).await;
    assert_eq!(idp.revoked_tokens().len(), 1, "one token: the refresh token");
    assert_eq!(browser.me(&app).await["is_logged_in"], false);
}

#[tokio::test]
async fn revoke_on_logout_false_revokes_nothing() {
    let idp = idp(MockIdp::builder()).await;
    let app = app_with(&idp, "revoke_on_logout = false\n").await;
    let browser = Browser::new();
    browser.log_in(&app, "").await;
    assert_eq!(log_out(&browser, &app).await.status(), StatusCode::SEE_OTHER);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(idp.hits().revocation, 0);
}

/// Logs out while `fault` makes revocation fail or hang: the logout answers at once, as
/// without revocation (cookies cleared, then the provider's end-session endpoint).
async fn assert_logout_unaffected(fault: Fault) {
    let idp = idp(MockIdp::builder()).await;
    let app = app_with(&idp, "http_timeout_secs = 2\n").await;
    let browser = Browser::new();
    browser.log_in(&app, "").await;
    idp.set_fault(fault.clone());
    let started = Instant::now();
    let logout = log_out(&browser, &app).await;
    assert!(started.elapsed() < Duration::from_millis(1000), "{fault:?}: logout waited {:?}", started.elapsed());
    assert_eq!(logout.status(), StatusCode::SEE_OTHER, "{fault:?}");
    assert!(session_cookie_deleted(&logout), "{fault:?}");
    let location = logout.headers()[LOCATION].to_str().expect("location").to_owned();
    assert!(location.starts_with(&format!("{}/end_session", idp.issuer())), "{fault:?}: {location}");
    assert_eq!(browser.me(&app).await["is_logged_in"], false, "{fault:?}");
    revocations_reach(&idp, 1).await;
    assert!(idp.revoked_tokens().is_empty(), "{fault:?}: the revocation failed or is still waiting");
}

#[tokio::test]
async fn a_failing_revocation_endpoint_does_not_affect_logout() {
    assert_logout_unaffected(Fault::RevocationServerError).await;
}

#[tokio::test]
async fn a_slow_revocation_endpoint_does_not_delay_logout() {
    assert_logout_unaffected(Fault::RevocationDelay(Duration::from_secs(10))).await;
}
