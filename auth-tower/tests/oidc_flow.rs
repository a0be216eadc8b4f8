//! The whole login flow over real HTTP: an axum app with `AuthLayer::from_config`, the
//! real `OidcProvider`, and `MockIdp` on loopback, driven by a client with a cookie jar.
//!
//! Every check of the login flow (the README's "Security model") has a test here that shows
//! the attack failing: the browser ends on a clear 4xx page and `/me` still says
//! `{"is_logged_in": false}`.

mod support;

use auth_testkit::{Fault, MockIdp};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::Value;
use std::time::Duration;
use support::{App, Browser, SECRET, bind, port_of, serve, session_cookie_deleted};

fn config_text(port: u16, metadata_url: &str, secret: &str, extra: &str) -> String {
    format!(
        "[auth]\nredirect_uri = \"http://127.0.0.1:{port}/oauth2callback\"\ncookie_secret = \"{secret}\"\n\
         client_id = \"mock-client\"\nclient_secret = \"mock-secret\"\nserver_metadata_url = \"{metadata_url}\"\n{extra}"
    )
}

async fn app_with(idp: &MockIdp, secret: &str, extra: &str) -> App {
    let listener = bind().await;
    let port = port_of(&listener);
    serve(listener, &config_text(port, &idp.metadata_url(), secret, extra)).await
}

async fn app(idp: &MockIdp) -> App {
    app_with(idp, SECRET, "").await
}

async fn idp() -> MockIdp {
    MockIdp::builder().login_as(Some("alice")).start().await.expect("mock idp")
}

#[tokio::test]
async fn happy_path_login_me_return_to_logout() {
    let idp = idp().await;
    let app = app(&idp).await;
    let browser = Browser::new();
    assert_eq!(browser.me(&app).await, serde_json::json!({"is_logged_in": false}));

    // An anonymous visit to a private page goes through the login and comes back.
    let (page, url) = browser.follow(&format!("{}/private?x=1", app.base)).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(url, format!("{}/private?x=1", app.base));
    assert_eq!(page.text().await.expect("body"), "Welcome back, Alice Example!");

    let me = browser.me(&app).await;
    assert_eq!(me["is_logged_in"], true);
    assert_eq!(me["sub"], "alice");
    assert_eq!(me["email"], "alice@example.test");
    let params = idp.last_authorize_params().expect("authorize params");
    assert_eq!(params.get("code_challenge_method").map(String::as_str), Some("S256"));
    assert!(params.contains_key("nonce") && params.contains_key("state"));

    // Logout: cookies cleared, then RP-initiated logout at the IdP, then back home.
    let logout = browser
        .http
        .post(format!("{}/auth/logout", app.base))
        .header("origin", &app.base)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert!(session_cookie_deleted(&logout));
    let end_session = logout.headers()[LOCATION].to_str().expect("location").to_owned();
    assert!(end_session.starts_with(&format!("{}/end_session", idp.issuer())), "{end_session}");
    assert!(end_session.contains("id_token_hint="), "{end_session}");
    let (home, url) = browser.follow_response(logout, &format!("{}/auth/logout", app.base)).await;
    assert_eq!(home.status(), StatusCode::OK);
    assert!(url.starts_with(&format!("{}/?state=", app.base)), "back home with the logout state: {url}");
    assert_eq!(browser.me(&app).await["is_logged_in"], false);
    assert_eq!(idp.hits().end_session, 1);
}

/// Logs in while `fault` is active and checks the flow ends on a 4xx page, logged out.
async fn assert_login_refused(fault: Fault) {
    // A minimal ID token makes the provider call userinfo, so its faults apply too.
    let idp = MockIdp::builder().login_as(Some("alice")).minimal_id_token(true).start().await.expect("mock idp");
    idp.set_fault(fault.clone());
    let app = app(&idp).await;
    let browser = Browser::new();
    let (page, url) = browser.log_in(&app, "").await;
    let status = page.status();
    let body = page.text().await.expect("body");
    assert!(status.is_client_error(), "{fault:?}: expected a 4xx page at {url}, got {status}: {body}");
    assert!(body.contains("<html") || body.contains("<!doctype"), "{fault:?}: a page, not a bare error: {body}");
    assert_eq!(browser.me(&app).await["is_logged_in"], false, "{fault:?}");
}

macro_rules! refused {
    ($($name:ident: $fault:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            assert_login_refused($fault).await;
        }
    )*};
}

refused! {
    bad_signature_is_refused: Fault::BadSignature;
    alg_none_is_refused: Fault::AlgNone;
    hs256_signed_with_the_public_key_is_refused: Fault::Hs256WithPublicKey;
    wrong_issuer_is_refused: Fault::WrongIssuer;
    wrong_audience_is_refused: Fault::WrongAudience;
    missing_sub_is_refused: Fault::MissingSub;
    missing_iat_is_refused: Fault::MissingIat;
    expired_beyond_leeway_is_refused: Fault::Expired(Duration::from_secs(3600));
    nonce_mismatch_is_refused: Fault::WrongNonce;
    callback_iss_from_another_issuer_is_refused: Fault::CallbackIssuer("https://evil.test".into());
    discovery_issuer_mismatch_is_refused: Fault::DiscoveryIssuerMismatch;
    userinfo_sub_mismatch_is_refused: Fault::UserinfoSubMismatch;
    idp_error_access_denied_is_a_clear_page: Fault::AccessDenied;
}

#[tokio::test]
async fn expired_within_leeway_is_accepted() {
    let idp = idp().await;
    // exp 30 s in the past, default leeway 60 s.
    idp.set_fault(Fault::Expired(Duration::from_secs(30)));
    let app = app(&idp).await;
    let browser = Browser::new();
    browser.log_in(&app, "").await;
    assert_eq!(browser.me(&app).await["is_logged_in"], true);
}

#[tokio::test]
async fn state_mismatch_is_refused() {
    let idp = idp().await;
    let app = app(&idp).await;
    let browser = Browser::new();
    let callback = browser.callback_url(&app, "").await;
    let mut url = reqwest::Url::parse(&callback).expect("url");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" { format!("{v}x") } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let response = browser.http.get(url).send().await.expect("callback");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(browser.me(&app).await["is_logged_in"], false);
    assert_eq!(idp.hits().token, 0, "the code is never exchanged");
}

#[tokio::test]
async fn callback_without_pending_cookie_is_refused() {
    let idp = idp().await;
    let app = app(&idp).await;
    let callback = Browser::new().callback_url(&app, "").await;
    let stranger = Browser::new();
    let response = stranger.http.get(&callback).send().await.expect("callback");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.expect("body").contains("Start again"));
    assert_eq!(stranger.me(&app).await["is_logged_in"], false);
    assert_eq!(idp.hits().token, 0);
}

#[tokio::test]
async fn replayed_code_is_refused() {
    let idp = idp().await;
    let app = app(&idp).await;
    let victim = Browser::new();
    let callback = victim.callback_url(&app, "").await;
    // An attacker holding a copy of the pending cookie and the callback URL.
    let attacker = Browser::new();
    let url = reqwest::Url::parse(&app.base).expect("url");
    for cookie in victim.cookie_header(&app).split("; ") {
        attacker.jar.add_cookie_str(cookie, &url);
    }
    let (page, _) = victim.follow(&callback).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(victim.me(&app).await["is_logged_in"], true);

    let replay = attacker.http.get(&callback).send().await.expect("replay");
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST, "the IdP refuses a used code");
    assert_eq!(attacker.me(&app).await["is_logged_in"], false);
}

#[tokio::test]
async fn signing_key_rotation_fetches_jwks_once_more() {
    let idp = idp().await;
    let app = app(&idp).await;
    Browser::new().log_in(&app, "").await;
    let before = idp.hits();
    assert_eq!(before.discovery, 1);
    assert_eq!(before.jwks, 1);

    idp.rotate_keys();
    let browser = Browser::new();
    browser.log_in(&app, "").await;
    assert_eq!(browser.me(&app).await["is_logged_in"], true);
    let after = idp.hits();
    assert_eq!(after.jwks, 2, "one refetch for the unknown kid");
    assert_eq!(after.discovery, 1, "discovery stays cached");

    let third = Browser::new();
    third.log_in(&app, "").await;
    assert_eq!(third.me(&app).await["is_logged_in"], true);
    assert_eq!(idp.hits().jwks, 2, "the new key is cached");
}

#[tokio::test]
async fn token_without_kid_and_one_key_is_accepted() {
    let idp = idp().await;
    idp.set_fault(Fault::NoKid);
    let app = app(&idp).await;
    let browser = Browser::new();
    browser.log_in(&app, "").await;
    assert_eq!(browser.me(&app).await["is_logged_in"], true);
}

#[tokio::test]
async fn idp_down_at_start_then_back() {
    // Reserve a port for the IdP and leave it closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let metadata_url = format!("http://127.0.0.1:{port}/.well-known/openid-configuration");
    let listener = bind().await;
    let app_port = port_of(&listener);
    let app = serve(listener, &config_text(app_port, &metadata_url, SECRET, "")).await;

    let browser = Browser::new();
    assert_eq!(browser.me(&app).await["is_logged_in"], false, "the app serves while its IdP is down");
    let login = browser.http.get(format!("{}/auth/login", app.base)).send().await.expect("login");
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(login.text().await.expect("body").contains("<html"));

    let idp = MockIdp::builder().port(port).login_as(Some("alice")).start().await.expect("idp back");
    // A failed discovery is remembered for a moment so an outage is not a request storm;
    // the login succeeds once that has passed, with no restart of the app.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while browser.me(&app).await["is_logged_in"] != true {
        assert!(tokio::time::Instant::now() < deadline, "login never recovered after the IdP came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
        browser.log_in(&app, "").await;
    }
    assert_eq!(idp.hits().token, 1);
}

#[tokio::test]
async fn slow_idp_times_out_with_a_clear_page() {
    let idp = idp().await;
    idp.set_fault(Fault::Delay(Duration::from_secs(5)));
    let app = app_with(&idp, SECRET, "http_timeout_secs = 1\n").await;
    let browser = Browser::new();
    let login = browser.http.get(format!("{}/auth/login", app.base)).send().await.expect("login");
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    let home = browser.http.get(format!("{}/", app.base)).send().await.expect("home");
    assert_eq!(home.status(), StatusCode::OK, "everything else keeps serving");
}

#[tokio::test]
async fn tampered_and_foreign_cookies_mean_logged_out_and_are_cleared() {
    let idp = idp().await;
    let app = app(&idp).await;
    let other = app_with(&idp, "another-secret-that-is-also-32-bytes-long", "").await;
    let browser = Browser::new();
    browser.log_in(&app, "").await;
    let cookies = browser.cookie_header(&app);
    let session = cookies.split("; ").find(|c| c.starts_with("auth_session=")).expect("session cookie").to_owned();

    let plain = reqwest::Client::new();
    let mut tampered = session.clone().into_bytes();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    for (target, cookie) in [(&app, tampered.as_str()), (&other, session.as_str())] {
        let response = plain.get(format!("{}/me", target.base)).header(COOKIE, cookie).send().await.expect("me");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(session_cookie_deleted(&response), "the bad cookie is cleared");
        let me: Value = response.json().await.expect("json");
        assert_eq!(me["is_logged_in"], false);
    }
    // The genuine cookie still works on its own app.
    let response = plain.get(format!("{}/me", app.base)).header(COOKIE, &session).send().await.expect("me");
    assert_eq!(response.json::<Value>().await.expect("json")["is_logged_in"], true);
}

#[tokio::test]
async fn login_started_on_one_instance_finishes_on_another() {
    let idp = idp().await;
    let first_listener = bind().await;
    let second_listener = bind().await;
    let port = port_of(&first_listener);
    let text = config_text(port, &idp.metadata_url(), SECRET, "");
    let first = serve(first_listener, &text).await;
    let second = serve(second_listener, &text).await;

    let browser = Browser::new();
    let callback = browser.callback_url(&first, "?return_to=/me").await;
    // A load balancer sends the callback to the second instance.
    let on_second = callback.replacen(&first.base, &second.base, 1);
    assert_ne!(on_second, callback);
    let second_url = reqwest::Url::parse(&second.base).expect("url");
    for cookie in browser.cookie_header(&first).split("; ") {
        browser.jar.add_cookie_str(cookie, &second_url);
    }
    let response = browser.http.get(&on_second).send().await.expect("callback");
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()[LOCATION], "/me");
    assert_eq!(browser.me(&first).await["is_logged_in"], true, "the session opens on every instance");
    assert_eq!(browser.me(&second).await["is_logged_in"], true);
}

#[tokio::test]
async fn return_to_only_accepts_same_origin_paths() {
    let idp = idp().await;
    let app = app(&idp).await;
    let honoured = Browser::new();
    let (_, url) = honoured.log_in(&app, "?return_to=%2Fme%3Fx%3D1").await;
    assert_eq!(url, format!("{}/me?x=1", app.base));
    for payload in ["//evil.test", "https://evil.test", "/\\evil.test", "%2F%2Fevil.test", "javascript:alert(1)"] {
        let browser = Browser::new();
        let encoded: String = url_encode(payload);
        let callback = browser.callback_url(&app, &format!("?return_to={encoded}")).await;
        let response = browser.http.get(&callback).send().await.expect("callback");
        assert_eq!(response.status(), StatusCode::FOUND, "{payload}");
        assert_eq!(response.headers()[LOCATION], "/", "{payload} lands on /");
    }
}

fn url_encode(text: &str) -> String {
    reqwest::Url::parse_with_params("http://x/", [("v", text)])
        .expect("url")
        .query()
        .and_then(|q| q.strip_prefix("v="))
        .expect("query")
        .to_owned()
}

#[tokio::test]
async fn unknown_provider_is_a_clear_400() {
    let idp = idp().await;
    let app = app(&idp).await;
    let response = reqwest::get(format!("{}/auth/login?provider=nope", app.base)).await.expect("login");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.expect("body").contains("default"), "names the configured providers");
}
