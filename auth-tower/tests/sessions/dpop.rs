//! DPoP-bound sessions (`dpop = true`) against `MockIdp` requiring server nonces: the
//! session keeps its key in the cookie or in the store, a refresh keeps it, and the
//! `AccessToken` extractor signs proofs with it for the app's own API calls.

use super::*;
use auth_core::dpop::{ath, thumbprint};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The API call `/dpop` prepares: what `AccessToken::authorization_header` gives for
/// `GET https://api.example/items?page=2`, with the token itself to check `ath`.
pub(super) async fn headers(token: AccessToken) -> Json<Value> {
    let (authorization, proof) =
        token.authorization_header(&http::Method::GET, "https://api.example/items?page=2").unwrap();
    Json(json!({
        "token": token.secret(),
        "token_type": token.token_type(),
        "authorization": authorization.to_str().unwrap(),
        "proof": proof.map(|p| p.to_str().unwrap().to_owned()),
    }))
}

fn part(jwt: &str, i: usize) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').nth(i).unwrap()).unwrap()).unwrap()
}

/// The access token and the thumbprint of the key its proof was signed with, after checking
/// the proof's `htm`, `htu` and `ath`.
async fn call(browser: &mut Browser) -> (String, String) {
    let answer: Value = browser.get("/dpop").await.json().await.unwrap();
    let token = answer["token"].as_str().unwrap().to_owned();
    assert_eq!(answer["token_type"], "DPoP");
    assert_eq!(answer["authorization"], format!("DPoP {token}"));
    let proof = answer["proof"].as_str().expect("a DPoP proof");
    let (header, claims) = (part(proof, 0), part(proof, 1));
    assert_eq!(header["typ"], "dpop+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(claims["htm"], "GET");
    assert_eq!(claims["htu"], "https://api.example/items");
    assert_eq!(claims["ath"], ath(&token));
    (token, thumbprint(&header["jwk"]).unwrap())
}

async fn keeps_its_key_across_a_refresh(setup: Setup) {
    let idp = MockIdp::builder()
        .login_as(Some("alice"))
        .dpop(true)
        .dpop_nonce_required(true)
        .access_token_ttl(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let app = setup.start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    assert!(browser.logged_in().await);
    let jkt = idp.last_authorize_params().unwrap()["dpop_jkt"].clone();
    let (first, key) = call(&mut browser).await;
    assert_eq!(key, jkt, "the proofs are signed by the key named at authorization");
    let before = idp.hits().token;

    refresh::until_expired().await;
    let (second, key) = call(&mut browser).await;
    assert_ne!(second, first, "refreshed");
    assert_eq!(key, jkt, "the refresh kept the session's key");
    assert!(idp.hits().token > before);
    // The refreshed token is still bound: the provider accepted the refresh's proof with
    // the session key (it refuses any other for a bound refresh token).
    assert!(browser.logged_in().await);
}

#[tokio::test]
async fn a_cookie_session_keeps_its_dpop_key_across_a_refresh() {
    keeps_its_key_across_a_refresh(Setup::new("refresh_margin_secs = 0\ndpop = true")).await;
}

#[tokio::test]
async fn a_server_side_session_keeps_its_dpop_key_across_a_refresh() {
    keeps_its_key_across_a_refresh(Setup::new("refresh_margin_secs = 0\ndpop = true").memory()).await;
}

#[tokio::test]
async fn an_unbound_token_ends_the_login_on_the_error_page() {
    let idp = MockIdp::builder().login_as(Some("alice")).dpop(true).start().await.unwrap();
    idp.set_fault(Fault::DpopUnboundToken);
    let app = Setup::new("dpop = true").start(&idp).await;
    let mut browser = Browser::new(&app);
    let login = browser.get("/auth/login").await;
    let back = browser.http.get(location(&login)).send().await.unwrap();
    let callback = location(&back).replacen(&browser.origin, &browser.base, 1);
    let page = browser.get(&callback).await;
    assert!(page.status().is_client_error(), "{}", page.status());
    let text = page.text().await.unwrap();
    assert!(text.contains("Sign-in failed"), "{text}");
    assert!(!browser.logged_in().await);

    let optional = Setup::new("dpop = \"optional\"").start(&idp).await;
    let mut browser = Browser::new(&optional);
    browser.login().await;
    assert!(browser.logged_in().await);
    let answer: Value = browser.get("/dpop").await.json().await.unwrap();
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["proof"], Value::Null);
}
