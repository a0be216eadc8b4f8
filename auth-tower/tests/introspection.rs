//! Opaque bearer access tokens through the layer: a provider section with `introspection =
//! true` accepts the mock's opaque access tokens on `/me` (checked once at its RFC 7662
//! introspection endpoint, then cached), and refuses a garbage token with `401`.

#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used)]

mod support;

use auth_testkit::MockIdp;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, WWW_AUTHENTICATE};
use serde_json::Value;
use support::App;

const AUDIENCE: &str = "api://introspection-test";
const CLIENT_REDIRECT: &str = "http://127.0.0.1:9/cb";

/// The app of `support::serve` for `idp`, accepting opaque tokens for `AUDIENCE`.
async fn app(idp: &MockIdp) -> App {
    support::serve_for(idp, &format!("bearer_audience = \"{AUDIENCE}\"\nintrospection = true")).await
}

/// An opaque access token from the mock, as an API client gets one: the authorization
/// code flow (the mock signs `alice` in at once), then the token endpoint.
async fn opaque_token(idp: &MockIdp) -> String {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let authorize = http
        .get(format!("{}/authorize", idp.issuer()))
        .query(&[
            ("response_type", "code"),
            ("client_id", idp.client_id()),
            ("redirect_uri", CLIENT_REDIRECT),
            ("scope", "openid"),
            ("state", "s"),
            ("nonce", "n"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(authorize.status(), StatusCode::FOUND);
    let callback = url::Url::parse(authorize.headers()[LOCATION].to_str().unwrap()).unwrap();
    let code = callback.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).unwrap();
    let tokens: Value = http
        .post(format!("{}/token", idp.issuer()))
        .basic_auth(idp.client_id(), Some(idp.client_secret()))
        .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CLIENT_REDIRECT)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(token.split('.').count(), 1, "opaque, not a JWT");
    token
}

async fn me(app: &App, token: &str) -> reqwest::Response {
    reqwest::Client::new().get(format!("{}/me", app.base)).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn opaque_tokens_are_introspected_once_then_cached() {
    let idp = MockIdp::builder().login_as(Some("alice")).introspection_audience(AUDIENCE).start().await.unwrap();
    let app = app(&idp).await;
    let token = opaque_token(&idp).await;
    idp.reset_hits();

    for _ in 0..2 {
        let response = me(&app, &token).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["is_logged_in"], true, "{body}");
        assert_eq!(body["sub"], "alice", "{body}");
    }
    assert_eq!(idp.hits().introspect, 1, "the second request is served from the cache");

    let garbage = me(&app, "not-a-token-anyone-issued").await;
    assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);
    let challenge = garbage.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{challenge}");
    assert_eq!(idp.hits().introspect, 2, "an unknown token is asked about");

    // The same refused token again (a client retrying a revoked token): refused unasked.
    let again = me(&app, "not-a-token-anyone-issued").await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(idp.hits().introspect, 2, "a refusal is remembered");
    assert_eq!(me(&app, &token).await.status(), StatusCode::OK, "the good token is unaffected");
}

#[tokio::test]
async fn without_introspection_opaque_tokens_are_refused_unasked() {
    let idp = MockIdp::builder().login_as(Some("alice")).start().await.unwrap();
    let app = support::serve_for(&idp, &format!("bearer_audience = \"{AUDIENCE}\"")).await;
    let token = opaque_token(&idp).await;
    assert_eq!(me(&app, &token).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(idp.hits().introspect, 0);
}
