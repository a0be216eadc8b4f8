//! Provider sessions (`sid`), refresh-token rotation with a run-time access-token lifetime,
//! and back-channel logout tokens and their delivery.
#![allow(clippy::unwrap_used)]

use auth_testkit::{BACKCHANNEL_LOGOUT_EVENT, LogoutToken, MockIdp, WRONG_AUDIENCE, WRONG_ISSUER};
use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const REDIRECT: &str = "http://localhost:3000/oauth2callback";

fn part(jwt: &str, index: usize) -> Value {
    let segment = jwt.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Logs in (auto-login, no PKCE) and exchanges the code: the token response.
async fn login(idp: &MockIdp) -> Value {
    let back = http()
        .get(format!("{}/authorize", idp.issuer()))
        .query(&[
            ("client_id", idp.client_id()),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("nonce", "n"),
        ])
        .send()
        .await
        .unwrap();
    let url = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    let code = url.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    token(idp, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await
}

async fn token(idp: &MockIdp, form: &[(&str, &str)]) -> Value {
    http()
        .post(format!("{}/token", idp.issuer()))
        .basic_auth(idp.client_id(), Some(idp.client_secret()))
        .form(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn each_login_has_a_sid_that_refreshes_keep_and_refresh_tokens_rotate() {
    let idp = MockIdp::builder().login_as(Some("alice")).start().await.unwrap();
    let first = login(&idp).await;
    let sid = part(first["id_token"].as_str().unwrap(), 1)["sid"].as_str().unwrap().to_owned();
    let other = login(&idp).await;
    assert_ne!(part(other["id_token"].as_str().unwrap(), 1)["sid"], sid.as_str(), "one sid per login");

    idp.set_access_token_ttl(Duration::from_secs(7));
    let refresh = first["refresh_token"].as_str().unwrap();
    let refreshed = token(&idp, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(part(refreshed["id_token"].as_str().unwrap(), 1)["sid"], sid.as_str(), "the sid survives a refresh");
    assert_eq!(refreshed["expires_in"], 7, "the new lifetime applies from now on");
    assert_ne!(refreshed["refresh_token"], first["refresh_token"]);
    let spent = token(&idp, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(spent["error"], "invalid_grant", "a rotated refresh token is spent");

    let minimal = MockIdp::builder().login_as(Some("alice")).minimal_id_token(true).start().await.unwrap();
    assert!(part(login(&minimal).await["id_token"].as_str().unwrap(), 1).get("sid").is_none());
}

#[tokio::test]
async fn logout_tokens_are_correct_unless_broken_on_purpose() {
    let idp = MockIdp::start().await.unwrap();
    let token = idp.logout_token(&LogoutToken::for_subject("alice").sid("s-1"));
    let header = part(&token, 0);
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], idp.current_kid().as_str());
    let claims = part(&token, 1);
    assert_eq!(claims["iss"], idp.issuer().as_str());
    assert_eq!(claims["aud"], idp.client_id());
    assert_eq!((claims["sub"].as_str(), claims["sid"].as_str()), (Some("alice"), Some("s-1")));
    assert_eq!(claims["events"], json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
    assert!(claims["jti"].is_string() && claims.get("nonce").is_none());
    let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
    assert_eq!(exp - iat, 120);

    let only_sid = part(&idp.logout_token(&LogoutToken::for_session("s-2")), 1);
    assert!(only_sid.get("sub").is_none() && only_sid["sid"] == "s-2");

    let broken = |token: LogoutToken| idp.logout_token(&token);
    let none = broken(LogoutToken::for_subject("a").alg_none());
    assert_eq!(part(&none, 0)["alg"], "none");
    assert!(none.ends_with('.'), "no signature");
    assert_eq!(part(&broken(LogoutToken::for_subject("a").hs256_with_public_key()), 0)["alg"], "HS256");
    assert!(part(&broken(LogoutToken::for_subject("a").without_events()), 1).get("events").is_none());
    let wrong_event = part(&broken(LogoutToken::for_subject("a").wrong_event()), 1);
    assert!(wrong_event["events"].get(BACKCHANNEL_LOGOUT_EVENT).is_none());
    assert!(part(&broken(LogoutToken::for_subject("a").with_nonce()), 1)["nonce"].is_string());
    assert_eq!(part(&broken(LogoutToken::for_subject("a").wrong_audience()), 1)["aud"], WRONG_AUDIENCE);
    assert_eq!(part(&broken(LogoutToken::for_subject("a").wrong_issuer()), 1)["iss"], WRONG_ISSUER);
    assert!(part(&broken(LogoutToken::for_subject("a").claim("exp", Value::Null)), 1).get("exp").is_none());
}

#[tokio::test]
async fn backchannel_logout_posts_the_token_as_a_form() {
    let received: Arc<Mutex<Option<(String, String)>>> = Arc::default();
    let seen = Arc::clone(&received);
    let app = Router::new().route(
        "/bcl",
        post(move |headers: HeaderMap, body: String| async move {
            let content_type = headers["content-type"].to_str().unwrap().to_owned();
            *seen.lock().unwrap() = Some((content_type, body));
            (axum::http::StatusCode::ACCEPTED, "thanks")
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/bcl?provider=default", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let idp = MockIdp::start().await.unwrap();
    let answer = idp.backchannel_logout(&uri, &LogoutToken::for_subject("alice")).await.unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (202, "thanks"));
    let (content_type, body) = received.lock().unwrap().clone().unwrap();
    assert_eq!(content_type, "application/x-www-form-urlencoded");
    let token = body.strip_prefix("logout_token=").unwrap();
    assert_eq!(part(token, 1)["sub"], "alice");

    let raw = idp.send_logout_token(&uri, "not a token").await.unwrap();
    assert_eq!(raw.status, 202);
    assert_eq!(received.lock().unwrap().clone().unwrap().1, "logout_token=not+a+token");
    assert!(idp.send_logout_token("https://app.example/bcl", "x").await.is_err(), "http only");
}
