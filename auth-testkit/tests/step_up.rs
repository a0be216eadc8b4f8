//! Step-up over real HTTP: `auth_age` sets how old a plain login is, `max_age` and
//! `prompt=login` ask for a fresh one, `acr_values` for an `acr`, and
//! `Fault::IgnoreStepUp` plays a provider that ignores all three.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_testkit::{Fault, MockIdp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use url::Url;

const REDIRECT: &str = "http://localhost:3000/oauth2callback";
const HOUR: u64 = 3600;

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn claims(jwt: &str) -> Value {
    let segment = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

/// `POST /token` with `form`: the token response, which must be a success.
async fn token(idp: &MockIdp, form: &[(&str, &str)]) -> Value {
    let response = http()
        .post(format!("{}/token", idp.issuer()))
        .basic_auth(idp.client_id(), Some(idp.client_secret()))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Auto-login with `extra` authorization parameters, then the code exchange: the token
/// response.
async fn login(idp: &MockIdp, extra: &[(&str, &str)]) -> Value {
    let mut params = vec![
        ("client_id", idp.client_id()),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid email"),
        ("nonce", "n-1"),
    ];
    params.extend_from_slice(extra);
    let back = http().get(format!("{}/authorize", idp.issuer())).query(&params).send().await.unwrap();
    assert_eq!(back.status(), 302);
    let url = Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    let code = url.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    token(idp, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await
}

/// The ID token claims of a login with `extra` authorization parameters.
async fn id_token_claims(idp: &MockIdp, extra: &[(&str, &str)]) -> Value {
    claims(login(idp, extra).await["id_token"].as_str().unwrap())
}

/// Asserts that `claims` has an `auth_time` `age` seconds before now (a few seconds of
/// slack for a slow machine).
fn assert_auth_age(claims: &Value, age: u64) {
    let auth_time = claims["auth_time"].as_u64().unwrap();
    let expected = now() - age;
    assert!(auth_time <= expected && auth_time + 5 >= expected, "auth_time {auth_time}, expected about {expected}");
}

async fn idp_with_age(age: u64) -> MockIdp {
    MockIdp::builder().login_as(Some("alice")).auth_age(Duration::from_secs(age)).start().await.unwrap()
}

#[tokio::test]
async fn by_default_a_login_happens_now_without_acr() {
    let idp = MockIdp::builder().login_as(Some("alice")).start().await.unwrap();
    let c = id_token_claims(&idp, &[]).await;
    assert_auth_age(&c, 0);
    assert!(c.get("acr").is_none());
}

#[tokio::test]
async fn auth_age_backdates_plain_logins_only() {
    let idp = idp_with_age(HOUR).await;
    assert_auth_age(&id_token_claims(&idp, &[]).await, HOUR);
    assert_auth_age(&id_token_claims(&idp, &[("max_age", "300")]).await, 0);
    assert_auth_age(&id_token_claims(&idp, &[("max_age", "0")]).await, 0);
    assert_auth_age(&id_token_claims(&idp, &[("prompt", "login")]).await, 0);
    assert_auth_age(&id_token_claims(&idp, &[("prompt", "consent login")]).await, 0);
    assert_auth_age(&id_token_claims(&idp, &[("prompt", "consent")]).await, HOUR);

    idp.set_auth_age(Duration::from_secs(60));
    assert_auth_age(&id_token_claims(&idp, &[]).await, 60);
}

#[tokio::test]
async fn acr_values_give_the_first_value_as_acr() {
    let idp = idp_with_age(HOUR).await;
    let c = id_token_claims(&idp, &[("acr_values", "mfa phr")]).await;
    assert_eq!(c["acr"], "mfa");
    // acr_values alone does not ask for a fresh login.
    assert_auth_age(&c, HOUR);

    let c = id_token_claims(&idp, &[("acr_values", "phr"), ("max_age", "300")]).await;
    assert_eq!(c["acr"], "phr");
    assert_auth_age(&c, 0);
}

#[tokio::test]
async fn the_step_up_result_survives_a_refresh() {
    let idp = idp_with_age(HOUR).await;
    let tokens = login(&idp, &[("max_age", "300"), ("acr_values", "mfa")]).await;
    let first = claims(tokens["id_token"].as_str().unwrap());
    let refreshed =
        token(&idp, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())])
            .await;
    let again = claims(refreshed["id_token"].as_str().unwrap());
    assert_eq!(again["auth_time"], first["auth_time"]);
    assert_eq!(again["acr"], "mfa");
}

#[tokio::test]
async fn ignore_step_up_keeps_the_old_login_and_gives_no_acr() {
    let idp = idp_with_age(HOUR).await;
    idp.set_fault(Fault::IgnoreStepUp);
    for extra in [[("max_age", "300"), ("acr_values", "mfa phr")], [("prompt", "login"), ("acr_values", "mfa")]] {
        let c = id_token_claims(&idp, &extra).await;
        assert_auth_age(&c, HOUR);
        assert!(c.get("acr").is_none(), "{c}");
    }
    idp.clear_faults();
    let c = id_token_claims(&idp, &[("max_age", "300"), ("acr_values", "mfa")]).await;
    assert_auth_age(&c, 0);
    assert_eq!(c["acr"], "mfa");
}

#[tokio::test]
async fn the_login_page_keeps_the_step_up_parameters() {
    let idp = MockIdp::builder().auth_age(Duration::from_secs(HOUR)).start().await.unwrap();
    let page = http()
        .get(format!("{}/authorize", idp.issuer()))
        .query(&[
            ("client_id", idp.client_id()),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "login"),
            ("acr_values", "mfa"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"name="prompt" value="login""#), "{page}");
    assert!(page.contains(r#"name="acr_values" value="mfa""#), "{page}");

    // What the browser posts when bob's button is pressed.
    let form = [
        ("client_id", idp.client_id()),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("prompt", "login"),
        ("acr_values", "mfa"),
        ("login", "bob"),
    ];
    let back = http().post(format!("{}/authorize/login", idp.issuer())).form(&form).send().await.unwrap();
    assert_eq!(back.status(), 302);
    let url = Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    let code = url.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let tokens =
        token(&idp, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    let c = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(c["sub"], "bob");
    assert_eq!(c["acr"], "mfa");
    assert_auth_age(&c, 0);
}
