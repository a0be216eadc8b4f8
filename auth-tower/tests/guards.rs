//! Who may do what, over loopback HTTP against `MockIdp` and the real `OidcProvider`:
//! every outcome of a guard for each kind of client (browser, API, gRPC), the step-up
//! round trip (and a provider that ignores it), and API clients with bearer tokens
//! (accepted, refused, never anonymous, no cookies).
#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used)]

mod support;

use auth_testkit::{Fault, MockIdp, MockUser};
use auth_tower::{AuthConfig, AuthLayer, AuthMethod, Authorized, Policy, RequireLayer, StaticPolicy, User};
use axum::routing::get;
use axum::{Json, Router};
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use std::time::Duration;
use support::{App, Browser, SECRET, bind, port_of};

const AUDIENCE: &str = "api://guards-test";

struct Admins;
impl StaticPolicy for Admins {
    fn policy() -> Policy {
        Policy::group("admins")
    }
}

async fn idp() -> MockIdp {
    MockIdp::builder()
        .user(MockUser::new("alice").email("alice@example.test").name("Alice").claim("groups", json!(["admins"])))
        .user(MockUser::new("bob").email("bob@example.test").name("Bob").claim("groups", json!(["staff"])))
        .login_as(Some("alice"))
        .start()
        .await
        .unwrap()
}

/// An app with guarded routes: `/admin` (RequireLayer, group admins), `/admin-extractor`
/// (the `Authorized` extractor, same policy), `/sensitive` (a login at most 300 s old),
/// `/mfa` (acr "mfa"), `/me` (anyone).
async fn serve(idp: &MockIdp, extra: &str) -> App {
    let listener = bind().await;
    let port = port_of(&listener);
    let text = support::config_for(idp, port, extra);
    let config = AuthConfig::from_toml_str(&text, "guards.rs").unwrap();
    let me = |user: User| async move {
        let mut json = user.to_json();
        json["auth_method"] = json!(format!("{:?}", user.auth_method()));
        Json(json)
    };
    let app = Router::new()
        .route("/admin", get(|| async { "admins only" }))
        .route_layer(RequireLayer::new(Policy::group("admins")))
        .route(
            "/admin-extractor",
            get(|Authorized(user, ..): Authorized<Admins>| async move { user.sub().unwrap_or("").to_owned() }),
        )
        .merge(
            Router::new()
                .route("/sensitive", get(|| async { "fresh" }))
                .route_layer(RequireLayer::new(Policy::max_age(300))),
        )
        .merge(
            Router::new()
                .route("/mfa", get(|| async { "strong" }))
                .route_layer(RequireLayer::new(Policy::acr(["mfa"]))),
        )
        .route("/me", get(me))
        .layer(AuthLayer::from_config(config).unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    App::new(format!("http://127.0.0.1:{port}"), task)
}

async fn fetch(browser: &Browser, app: &App, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = browser.http.get(format!("{}{path}", app.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

const HTML: (&str, &str) = ("accept", "text/html,*/*;q=0.8");
const JSON: (&str, &str) = ("accept", "application/json");
const GRPC: (&str, &str) = ("content-type", "application/grpc");

#[tokio::test]
async fn anonymous_clients_are_sent_to_log_in_each_their_way() {
    let idp = idp().await;
    let app = serve(&idp, "").await;
    let browser = Browser::new();
    for path in ["/admin", "/admin-extractor"] {
        let page = fetch(&browser, &app, path, &[HTML]).await;
        assert_eq!(page.status(), StatusCode::FOUND, "{path}");
        assert_eq!(page.headers()[LOCATION], format!("/auth/login?return_to=%2F{}", &path[1..]).as_str());

        let api = fetch(&browser, &app, path, &[JSON]).await;
        assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
        let body: Value = api.json().await.unwrap();
        assert_eq!(body["error"], "login_required", "{body}");

        let grpc = fetch(&browser, &app, path, &[GRPC]).await;
        assert_eq!(grpc.status(), StatusCode::OK, "gRPC errors travel in grpc-status");
        assert_eq!(grpc.headers()["grpc-status"], "16");
    }
}

#[tokio::test]
async fn allowed_and_forbidden_users() {
    let idp = idp().await;
    let app = serve(&idp, "").await;
    let alice = Browser::new();
    alice.log_in(&app, "?return_to=/").await;
    assert_eq!(fetch(&alice, &app, "/admin", &[HTML]).await.text().await.unwrap(), "admins only");
    assert_eq!(fetch(&alice, &app, "/admin-extractor", &[HTML]).await.text().await.unwrap(), "alice");

    idp.login_as(Some("bob"));
    let bob = Browser::new();
    bob.log_in(&app, "?return_to=/").await;
    for path in ["/admin", "/admin-extractor"] {
        let page = fetch(&bob, &app, path, &[HTML]).await;
        assert_eq!(page.status(), StatusCode::FORBIDDEN);
        let html = page.text().await.unwrap();
        assert!(html.contains("You are signed in as bob@example.test"), "{html}");
        assert!(html.contains("This page needs membership in group &quot;admins&quot;"), "{html}");
        assert!(html.contains("prompt=select_account"), "a link to switch account: {html}");

        let api = fetch(&bob, &app, path, &[JSON]).await;
        assert_eq!(api.status(), StatusCode::FORBIDDEN);
        let body: Value = api.json().await.unwrap();
        assert_eq!(body["error"], "forbidden");
        assert_eq!(body["needs"], "membership in group \"admins\"");

        let grpc = fetch(&bob, &app, path, &[GRPC]).await;
        assert_eq!(grpc.headers()["grpc-status"], "7");
    }
}

#[tokio::test]
async fn step_up_logs_in_again_and_comes_back() {
    let idp = MockIdp::builder().login_as(Some("alice")).auth_age(Duration::from_secs(3600)).start().await.unwrap();
    let app = serve(&idp, "").await;
    let browser = Browser::new();
    browser.log_in(&app, "?return_to=/").await;
    assert_eq!(browser.me(&app).await["is_logged_in"], true);

    // The login is an hour old: the guard sends the browser to log in again, with max_age.
    let page = fetch(&browser, &app, "/sensitive", &[HTML]).await;
    assert_eq!(page.status(), StatusCode::FOUND);
    let location = page.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.contains("max_age=300") && location.contains("prompt=login"), "{location}");
    assert!(location.contains("provider=default") && location.contains("return_to=%2Fsensitive"), "{location}");

    // An API client is told what to do (RFC 9470).
    let api = fetch(&browser, &app, "/sensitive", &[JSON]).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    let challenge = api.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer error=\"insufficient_user_authentication\""), "{challenge}");
    assert!(challenge.contains("max_age=300"), "{challenge}");
    assert_eq!(fetch(&browser, &app, "/sensitive", &[GRPC]).await.headers()["grpc-status"], "16");

    // The round trip: the provider re-authenticates (max_age reaches it), back to the page.
    let (page, url) = browser.follow(&format!("{}{location}", app.base)).await;
    assert_eq!(idp.last_authorize_params().unwrap().get("max_age").map(String::as_str), Some("300"));
    assert!(url.ends_with("/sensitive"), "{url}");
    assert_eq!(page.text().await.unwrap(), "fresh");

    // acr: asked, given, checked.
    let page = fetch(&browser, &app, "/mfa", &[HTML]).await;
    let location = page.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.contains("acr_values=mfa"), "{location}");
    let (page, _) = browser.follow(&format!("{}{location}", app.base)).await;
    assert_eq!(page.text().await.unwrap(), "strong");
}

#[tokio::test]
async fn a_provider_that_ignores_the_step_up_does_not_pass_the_guard() {
    let idp = MockIdp::builder().login_as(Some("alice")).auth_age(Duration::from_secs(3600)).start().await.unwrap();
    let app = serve(&idp, "").await;
    let browser = Browser::new();
    browser.log_in(&app, "?return_to=/").await;
    let before = browser.cookie_header(&app);
    idp.set_fault(Fault::IgnoreStepUp);

    let location = fetch(&browser, &app, "/sensitive", &[HTML]).await.headers()[LOCATION].to_str().unwrap().to_owned();
    let (page, _) = browser.follow(&format!("{}{location}", app.base)).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN, "the login that ignored max_age is refused");
    let html = page.text().await.unwrap();
    assert!(html.contains("did not confirm a login at most 300 seconds old"), "{html}");
    assert_eq!(browser.cookie_header(&app), before, "the session stays as it was, no loop");
    assert_eq!(fetch(&browser, &app, "/sensitive", &[HTML]).await.status(), StatusCode::FOUND, "still guarded");
    assert_eq!(browser.me(&app).await["is_logged_in"], true, "and still signed in");

    let location = fetch(&browser, &app, "/mfa", &[HTML]).await.headers()[LOCATION].to_str().unwrap().to_owned();
    let (page, _) = browser.follow(&format!("{}{location}", app.base)).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN, "the login that ignored acr_values is refused");
}

// ------------------------------------------------------------------------ bearer tokens

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn bearer_tokens_authenticate_api_clients_without_cookies() {
    let idp = idp().await;
    let app = serve(&idp, &format!("bearer_audience = \"{AUDIENCE}\"")).await;
    let client = Browser::new();
    let token = idp.access_token_for("alice", AUDIENCE, "read write");
    let me = fetch(&client, &app, "/me", &[("authorization", &bearer(&token))]).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert!(me.headers().get(SET_COOKIE).is_none(), "no cookie is written for a bearer request");
    let body: Value = me.json().await.unwrap();
    assert_eq!(body["is_logged_in"], true);
    assert_eq!(body["auth_method"], format!("{:?}", AuthMethod::Bearer));
    assert_eq!(body["email"], "alice@example.test");
    assert_eq!(body["scope"], "read write");

    // Guards work unchanged on bearer users.
    let admin = fetch(&client, &app, "/admin", &[("authorization", &bearer(&token)), JSON]).await;
    assert_eq!(admin.text().await.unwrap(), "admins only");
    let bob = idp.access_token_for("bob", AUDIENCE, "read");
    let refused = fetch(&client, &app, "/admin", &[("authorization", &bearer(&bob)), JSON]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // A verified token is cached: a hundred requests, one key-set fetch at most.
    idp.reset_hits();
    for _ in 0..100 {
        assert_eq!(fetch(&client, &app, "/me", &[("authorization", &bearer(&token))]).await.status(), StatusCode::OK);
    }
    assert_eq!(idp.hits().jwks, 0, "no network on the hot path once verified");
}

#[tokio::test]
async fn bad_bearer_tokens_get_401_never_the_anonymous_user() {
    let idp = idp().await;
    let other = MockIdp::builder().start().await.unwrap();
    let app = serve(&idp, &format!("bearer_audience = \"{AUDIENCE}\"")).await;
    let client = Browser::new();
    let good = idp.access_token_for("alice", AUDIENCE, "read");
    let mut tampered = good.clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cases = [
        ("a tampered signature", tampered),
        ("another audience", idp.access_token_for("alice", "api://elsewhere", "read")),
        ("another issuer", other.access_token_for("alice", AUDIENCE, "read")),
        ("not a JWT", "not.a.jwt".to_owned()),
        ("an unsigned token", {
            let mut parts = good.split('.');
            let _ = parts.next();
            format!("eyJhbGciOiJub25lIn0.{}.", parts.next().unwrap())
        }),
        ("a 100 KB token", "a".repeat(100 * 1024)),
        ("10,000 audiences", idp.sign_jwt(Some("at+jwt"), json!({
            "iss": idp.issuer(), "sub": "alice", "exp": auth_tower::unix_now() + 60, "iat": auth_tower::unix_now(),
            "aud": (0..10_000).map(|i| format!("api://{i}")).collect::<Vec<_>>(),
        }))),
    ];
    for (what, token) in &cases {
        let response = fetch(&client, &app, "/me", &[("authorization", &bearer(token))]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        let challenge = response.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer error=\"invalid_"), "{what}: {challenge}");
        assert!(response.headers().get(SET_COOKIE).is_none(), "{what}");
        let grpc = fetch(&client, &app, "/me", &[("authorization", &bearer(token)), GRPC]).await;
        assert_eq!(grpc.headers()["grpc-status"], "16", "{what}");
    }
    for malformed in ["Bearer", "Bearer a b", "Bearer <x>"] {
        let response = fetch(&client, &app, "/me", &[("authorization", malformed)]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{malformed}");
    }
    // Other schemes are the app's business: the cookie path runs.
    let basic = fetch(&client, &app, "/me", &[("authorization", "Basic YTpi")]).await;
    assert_eq!(basic.json::<Value>().await.unwrap()["is_logged_in"], false);
}

#[tokio::test]
async fn without_bearer_audience_the_authorization_header_is_the_apps() {
    let idp = idp().await;
    let app = serve(&idp, "").await;
    let token = idp.access_token_for("alice", AUDIENCE, "read");
    let me = fetch(&Browser::new(), &app, "/me", &[("authorization", &bearer(&token))]).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.json::<Value>().await.unwrap()["is_logged_in"], false);
}

// ------------------------------------------------------------------ admission changes

/// Admission rules are checked again on sessions issued before they changed: tightening
/// `allowed_groups` ends alice's session (she is not in the new group), and a rule she
/// passes keeps it.
#[tokio::test]
async fn tightened_admission_ends_sessions_that_no_longer_pass() {
    let idp = idp().await;
    // Three instances sharing one redirect_uri (as behind a load balancer), each with its own
    // admission rules: the cookie opens on all of them.
    let listeners = [bind().await, bind().await, bind().await];
    let public = port_of(&listeners[0]);
    let mut bases = Vec::new();
    for (listener, groups) in listeners.into_iter().zip(["[\"admins\", \"staff\"]", "[\"ops\"]", "[\"admins\"]"]) {
        bases.push(format!("http://127.0.0.1:{}", port_of(&listener)));
        let text = format!(
            "[auth]\nredirect_uri = \"http://127.0.0.1:{public}/oauth2callback\"\ncookie_secret = \"{SECRET}\"\n\
             client_id = \"{}\"\nclient_secret = \"{}\"\nserver_metadata_url = \"{}\"\nallowed_groups = {groups}\n",
            idp.client_id(),
            idp.client_secret(),
            idp.metadata_url()
        );
        let layer = AuthLayer::from_config(AuthConfig::from_toml_str(&text, "guards.rs").unwrap()).unwrap();
        let app = Router::new().route("/me", get(|user: User| async move { Json(user.to_json()) })).layer(layer);
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    let browser = Browser::new();
    browser.follow(&format!("{}/auth/login", bases[0])).await;
    // The session cookie, sent by a client without a jar (a refusal deletes the cookie,
    // which would clear it for the other instances of this host).
    let url = reqwest::Url::parse(&bases[0]).unwrap();
    let cookie = reqwest::cookie::CookieStore::cookies(&*browser.jar, &url).unwrap().to_str().unwrap().to_owned();
    let me = |base: &str| {
        let request = reqwest::Client::new().get(format!("{base}/me")).header("cookie", cookie.clone());
        async move { request.send().await.unwrap().json::<Value>().await.unwrap()["is_logged_in"].clone() }
    };
    assert_eq!(me(&bases[0]).await, true, "signed in where the rules admit her");
    assert_eq!(me(&bases[1]).await, false, "a tightened rule she does not pass ends her session");
    assert_eq!(me(&bases[2]).await, true, "a changed rule she passes keeps it");
}
