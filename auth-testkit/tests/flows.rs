//! End-to-end tests of the mock provider over real HTTP, with an independent verifier
//! (the `rsa` crate against the served JWKS) rather than the server's own code.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use auth_testkit::{Fault, Hits, MockIdp, MockUser, WRONG_AUDIENCE, WRONG_ISSUER, WRONG_NONCE};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier as _;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

const REDIRECT: &str = "http://localhost:3000/oauth2callback";
const VERIFIER: &str = "a-long-enough-pkce-code-verifier-0123456789-abcdefghijk";

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn location(response: &reqwest::Response) -> Url {
    assert_eq!(response.status(), 302, "expected a redirect");
    Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

/// The parameters of a client's authorization request (state `st-1`, nonce `nonce-1`).
fn authorize_params(idp: &MockIdp) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", idp.client_id().to_owned()),
        ("redirect_uri", REDIRECT.to_owned()),
        ("response_type", "code".to_owned()),
        ("scope", "openid email profile".to_owned()),
        ("state", "st-1".to_owned()),
        ("nonce", "nonce-1".to_owned()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".to_owned()),
    ]
}

async fn authorize_with(idp: &MockIdp, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut params: Vec<(&str, String)> = authorize_params(idp);
    for (k, v) in extra {
        params.retain(|(key, _)| key != k);
        params.push((k, (*v).to_owned()));
    }
    http().get(format!("{}/authorize", idp.issuer())).query(&params).send().await.unwrap()
}

/// Auto-login authorize; returns the code.
async fn code(idp: &MockIdp) -> String {
    let back = location(&authorize_with(idp, &[]).await);
    query(&back)["code"].clone()
}

async fn exchange(idp: &MockIdp, code: &str, verifier: &str) -> reqwest::Response {
    http()
        .post(format!("{}/token", idp.issuer()))
        .basic_auth(idp.client_id(), Some(idp.client_secret()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
}

async fn tokens(idp: &MockIdp) -> Value {
    let code = code(idp).await;
    let response = exchange(idp, &code, VERIFIER).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `GET /userinfo` with the access token of `tokens` (a token endpoint answer).
async fn userinfo(idp: &MockIdp, tokens: &Value) -> reqwest::Response {
    http()
        .get(format!("{}/userinfo", idp.issuer()))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
}

async fn auto_login_idp() -> MockIdp {
    MockIdp::builder().login_as(Some("alice")).start().await.unwrap()
}

fn part(jwt: &str, index: usize) -> Value {
    let segment = jwt.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

fn header(jwt: &str) -> Value {
    part(jwt, 0)
}

fn claims(jwt: &str) -> Value {
    part(jwt, 1)
}

async fn get_json(url: &str) -> Value {
    http().get(url).send().await.unwrap().json().await.unwrap()
}

/// Verifies an RS256 JWT against the provider's JWKS, as a relying party would.
async fn verify_rs256(idp: &MockIdp, jwt: &str) -> Result<(), String> {
    let jwks = get_json(&format!("{}/jwks", idp.issuer())).await;
    let kid = header(jwt)["kid"].as_str().ok_or("no kid")?.to_owned();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or(format!("kid {kid} not in JWKS"))?;
    let decode = |field: &str| BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk[field].as_str().unwrap()).unwrap());
    let key = RsaPublicKey::new(decode("n"), decode("e")).map_err(|e| e.to_string())?;
    let (input, signature) = jwt.rsplit_once('.').unwrap();
    let signature =
        Signature::try_from(URL_SAFE_NO_PAD.decode(signature).unwrap().as_slice()).map_err(|e| e.to_string())?;
    VerifyingKey::<Sha256>::new(key).verify(input.as_bytes(), &signature).map_err(|e| e.to_string())
}

#[tokio::test]
async fn discovery_advertises_exactly_the_endpoints() {
    let idp = MockIdp::start().await.unwrap();
    let issuer = idp.issuer();
    assert_eq!(issuer, format!("http://127.0.0.1:{}", idp.port()));
    assert_eq!(idp.metadata_url(), format!("{issuer}/.well-known/openid-configuration"));
    let doc = get_json(&idp.metadata_url()).await;
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["authorization_endpoint"], format!("{issuer}/authorize"));
    assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(doc["userinfo_endpoint"], format!("{issuer}/userinfo"));
    assert_eq!(doc["jwks_uri"], format!("{issuer}/jwks"));
    assert_eq!(doc["end_session_endpoint"], format!("{issuer}/end_session"));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["RS256"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["grant_types_supported"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert!(doc["scopes_supported"].as_array().unwrap().contains(&json!("openid")));
    assert!(doc["claims_supported"].as_array().unwrap().contains(&json!("email")));

    let jwks = get_json(&format!("{issuer}/jwks")).await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["use"], "sig");
    assert_eq!(keys[0]["alg"], "RS256");
    assert_eq!(keys[0]["kid"], "mock-key-1");
    assert_eq!(keys[0]["e"], "AQAB");
}

#[tokio::test]
async fn code_flow_with_pkce_issues_a_verifiable_id_token() {
    let idp = auto_login_idp().await;
    let back = location(&authorize_with(&idp, &[]).await);
    assert!(back.as_str().starts_with(REDIRECT));
    let params = query(&back);
    assert_eq!(params["state"], "st-1");
    assert_eq!(params["iss"], idp.issuer());

    let response = exchange(&idp, &params["code"], VERIFIER).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "openid email profile");
    assert!(tokens["access_token"].as_str().unwrap().len() >= 40);
    assert!(tokens["refresh_token"].is_string());

    let id_token = tokens["id_token"].as_str().unwrap();
    verify_rs256(&idp, id_token).await.unwrap();
    assert_eq!(header(id_token), json!({"alg": "RS256", "typ": "JWT", "kid": "mock-key-1"}));
    let c = claims(id_token);
    assert_eq!(c["iss"], idp.issuer());
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["aud"], "mock-client");
    assert_eq!(c["azp"], "mock-client");
    assert_eq!(c["nonce"], "nonce-1");
    assert_eq!(c["email"], "alice@example.test");
    assert_eq!(c["email_verified"], true);
    assert_eq!(c["name"], "Alice Example");
    let (iat, exp) = (c["iat"].as_u64().unwrap(), c["exp"].as_u64().unwrap());
    assert_eq!(exp - iat, 300);
    assert!(c["auth_time"].as_u64().unwrap() <= iat);

    let userinfo = userinfo(&idp, &tokens).await;
    assert_eq!(userinfo.status(), 200);
    let userinfo: Value = userinfo.json().await.unwrap();
    assert_eq!(
        userinfo,
        json!({"sub": "alice", "email": "alice@example.test", "email_verified": true, "name": "Alice Example"})
    );

    let params = idp.last_authorize_params().unwrap();
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["scope"], "openid email profile");
}

#[tokio::test]
async fn pkce_verifier_must_match() {
    let idp = auto_login_idp().await;
    let wrong = exchange(&idp, &code(&idp).await, "another-verifier-that-is-long-enough-0123456789").await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"], "invalid_grant");

    let code = code(&idp).await;
    let missing = http()
        .post(format!("{}/token", idp.issuer()))
        .basic_auth(idp.client_id(), Some(idp.client_secret()))
        .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"], "invalid_grant");

    // Without a challenge, no verifier is needed.
    let plain = http()
        .get(format!("{}/authorize", idp.issuer()))
        .query(&[
            ("client_id", "mock-client"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    let code = query(&location(&plain))["code"].clone();
    assert_eq!(exchange(&idp, &code, "ignored").await.status(), 200);
}

#[tokio::test]
async fn plain_pkce_is_refused_with_a_redirect() {
    let idp = auto_login_idp().await;
    let back = location(&authorize_with(&idp, &[("code_challenge_method", "plain")]).await);
    let params = query(&back);
    assert_eq!(params["error"], "invalid_request");
    assert_eq!(params["state"], "st-1");
    let back = location(&authorize_with(&idp, &[("scope", "email")]).await);
    assert_eq!(query(&back)["error"], "invalid_scope");
    let back = location(&authorize_with(&idp, &[("response_type", "token")]).await);
    assert_eq!(query(&back)["error"], "unsupported_response_type");
}

#[tokio::test]
async fn a_code_is_good_once_and_only_for_its_redirect_uri() {
    let idp = auto_login_idp().await;
    let code = code(&idp).await;
    assert_eq!(exchange(&idp, &code, VERIFIER).await.status(), 200);
    let again = exchange(&idp, &code, VERIFIER).await;
    assert_eq!(again.status(), 400);
    assert_eq!(again.json::<Value>().await.unwrap()["error"], "invalid_grant");

    let code = self::code(&idp).await;
    let other_redirect = http()
        .post(format!("{}/token", idp.issuer()))
        .basic_auth(idp.client_id(), Some(idp.client_secret()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:3000/elsewhere"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(other_redirect.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

#[tokio::test]
async fn client_authentication_basic_and_post() {
    // RFC 6749 §2.3.1: id and secret are form-urlencoded inside HTTP Basic.
    let idp = MockIdp::builder().client("my client:1", "s&cret+/=").login_as(Some("bob")).start().await.unwrap();
    let encoded = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encoded(idp.client_id()),
        encoded(idp.client_secret())
    ));
    let code1 = code(&idp).await;
    let response = http()
        .post(format!("{}/token", idp.issuer()))
        .header("authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code1),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let code2 = code(&idp).await;
    let post = http()
        .post(format!("{}/token", idp.issuer()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code2),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", idp.client_id()),
            ("client_secret", idp.client_secret()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    assert_eq!(claims(post.json::<Value>().await.unwrap()["id_token"].as_str().unwrap())["sub"], "bob");

    let wrong = http()
        .post(format!("{}/token", idp.issuer()))
        .basic_auth(idp.client_id(), Some("nope"))
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"], "invalid_client");
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token() {
    let idp = auto_login_idp().await;
    let first = tokens(&idp).await;
    let refresh = |token: String| {
        let idp = &idp;
        async move {
            http()
                .post(format!("{}/token", idp.issuer()))
                .basic_auth(idp.client_id(), Some(idp.client_secret()))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", token.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    let old = first["refresh_token"].as_str().unwrap().to_owned();
    let second = refresh(old.clone()).await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let id_token = second["id_token"].as_str().unwrap();
    verify_rs256(&idp, id_token).await.unwrap();
    assert_eq!(claims(id_token)["sub"], "alice");

    let reused = refresh(old).await;
    assert_eq!(reused.status(), 400);
    assert_eq!(reused.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let third = refresh(second["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(third.status(), 200);
}

#[tokio::test]
async fn hits_are_counted_and_reset() {
    let idp = auto_login_idp().await;
    let tokens = tokens(&idp).await;
    get_json(&idp.metadata_url()).await;
    get_json(&format!("{}/jwks", idp.issuer())).await;
    get_json(&format!("{}/jwks", idp.issuer())).await;
    userinfo(&idp, &tokens).await;
    http().get(format!("{}/end_session", idp.issuer())).send().await.unwrap();
    let hits = idp.hits();
    assert_eq!(
        (hits.discovery, hits.jwks, hits.authorize, hits.token, hits.userinfo, hits.end_session),
        (1, 2, 1, 1, 1, 1)
    );
    assert_eq!((hits.introspect, hits.par, hits.revocation), (0, 0, 0));
    idp.reset_hits();
    assert_eq!(idp.hits(), Hits::default());
}

/// With pushed requests required, the login form of a pushed request carries only its
/// `client_id` and a fresh `request_uri`, and posting the form with parameters of one's own
/// (skipping the push) is refused as `/authorize` refuses it.
#[tokio::test]
async fn a_required_push_cannot_be_skipped_through_the_login_form() {
    let idp = MockIdp::builder()
        .user(MockUser::new("alice"))
        .user(MockUser::new("dave").password("pw"))
        .require_pushed_authorization_requests(true)
        .start()
        .await
        .unwrap();
    let params = authorize_params(&idp);
    let pushed: Value = http()
        .post(format!("{}/par", idp.issuer()))
        .basic_auth(idp.client_id(), Some(idp.client_secret()))
        .form(&params)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request_uri = pushed["request_uri"].as_str().unwrap();
    let page = http()
        .get(format!("{}/authorize", idp.issuer()))
        .query(&[("client_id", idp.client_id()), ("request_uri", request_uri)])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(!html.contains("nonce-1"), "the pushed parameters stay at the provider: {html}");
    let handle = |html: &str| {
        let start = html.find("name=\"request_uri\" value=\"").unwrap() + "name=\"request_uri\" value=\"".len();
        html[start..].split('"').next().unwrap().to_owned()
    };
    let post = |form: Vec<(&'static str, String)>| {
        let url = format!("{}/authorize/login", idp.issuer());
        async move { http().post(url).form(&form).send().await.unwrap() }
    };
    let client = || ("client_id", idp.client_id().to_owned());

    // A wrong password shows the form again, with another handle for the same request.
    let first = handle(&html);
    let again =
        post(vec![client(), ("request_uri", first.clone()), ("login", "dave".into()), ("password", "bad".into())])
            .await;
    assert_eq!(again.status(), 401);
    let second = handle(&again.text().await.unwrap());
    assert_ne!(first, second, "each form gets a handle of its own");
    let back = location(&post(vec![client(), ("request_uri", second.clone()), ("login", "alice".into())]).await);
    assert_eq!(query(&back)["state"], "st-1");
    assert!(query(&back).contains_key("code"));
    let replayed = post(vec![client(), ("request_uri", second), ("login", "alice".into())]).await;
    assert_eq!(replayed.status(), 400, "a handle is single use");

    // The form posted with the parameters themselves: the push was skipped.
    let mut skipped = params;
    skipped.push(("login", "alice".into()));
    let back = location(&post(skipped).await);
    assert_eq!(query(&back)["error"], "invalid_request");
}

#[tokio::test]
async fn the_html_login_form_signs_in_the_chosen_user() {
    let idp = MockIdp::builder()
        .user(MockUser::new("alice").email("alice@example.test").name("Alice <Example>"))
        .user(MockUser::new("dave").password("pw"))
        .start()
        .await
        .unwrap();
    let page = authorize_with(&idp, &[]).await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"login-alice\""));
    assert!(html.contains("Alice &lt;Example&gt;"));
    assert!(html.contains("name=\"nonce\" value=\"nonce-1\""));
    assert!(html.contains("type=\"password\""));
    for external in ["src=", "<link", "@import", "url("] {
        assert!(!html.contains(external), "the page must not load {external}");
    }

    // What the browser posts: the hidden authorize parameters plus the clicked button.
    let authorize = idp.last_authorize_params().unwrap();
    let post = |extra: Vec<(&'static str, &'static str)>| {
        let mut form: Vec<(String, String)> = authorize.clone().into_iter().collect();
        form.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
        let url = format!("{}/authorize/login", idp.issuer());
        async move { http().post(url).form(&form).send().await.unwrap() }
    };
    let back = location(&post(vec![("login", "alice")]).await);
    let params = query(&back);
    assert_eq!(params["state"], "st-1");
    let response = exchange(&idp, &params["code"], VERIFIER).await;
    let id_token = response.json::<Value>().await.unwrap()["id_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&id_token)["sub"], "alice");
    assert_eq!(claims(&id_token)["nonce"], "nonce-1");

    assert_eq!(post(vec![("login", "dave"), ("password", "bad")]).await.status(), 401);
    assert_eq!(post(vec![("login", "nobody")]).await.status(), 401);
    let back = location(&post(vec![("login", "dave"), ("password", "pw")]).await);
    assert!(query(&back).contains_key("code"));
    let back = location(&post(vec![("cancel", "1")]).await);
    assert_eq!(query(&back)["error"], "access_denied");

    // Switching auto-login on at run time skips the page.
    idp.login_as(Some("dave"));
    assert_eq!(authorize_with(&idp, &[]).await.status(), 302);
    idp.login_as(None);
    assert_eq!(authorize_with(&idp, &[]).await.status(), 200);
    let back = location(&authorize_with(&idp, &[("prompt", "none")]).await);
    assert_eq!(query(&back)["error"], "login_required");
}

#[tokio::test]
async fn bad_clients_and_redirect_uris_get_an_error_page() {
    let idp = auto_login_idp().await;
    let unknown = authorize_with(&idp, &[("client_id", "someone")]).await;
    assert_eq!(unknown.status(), 400);
    assert!(unknown.text().await.unwrap().contains("Unknown client"));
    for bad in ["", "javascript:alert(1)", "/relative"] {
        assert_eq!(authorize_with(&idp, &[("redirect_uri", bad)]).await.status(), 400, "{bad:?}");
    }
    let bad_token = http().get(format!("{}/userinfo", idp.issuer())).bearer_auth("nope").send().await.unwrap();
    assert_eq!(bad_token.status(), 401);
    let garbage = http()
        .post(format!("{}/token", idp.issuer()))
        .header("authorization", "Basic %%%")
        .body("\u{0}&&==")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
}

#[tokio::test]
async fn restarts_on_the_same_port_after_stop() {
    let idp = MockIdp::start().await.unwrap();
    let port = idp.port();
    let client = http();
    // A pooled keep-alive connection must not keep the stopped provider answering.
    assert_eq!(client.get(idp.metadata_url()).send().await.unwrap().status(), 200);
    let metadata = idp.metadata_url();
    idp.stop().await;
    assert!(client.get(&metadata).send().await.is_err(), "stopped provider still answers");

    let again = MockIdp::builder().port(port).start().await.unwrap();
    assert_eq!(again.port(), port);
    assert_eq!(client.get(again.metadata_url()).send().await.unwrap().status(), 200);
    drop(again);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(client.get(&metadata).send().await.is_err(), "dropped provider still answers");
}

#[tokio::test]
async fn rotation_changes_the_kid_and_the_jwks() {
    let idp = auto_login_idp().await;
    let before = tokens(&idp).await["id_token"].as_str().unwrap().to_owned();
    idp.rotate_keys();
    assert_eq!(idp.current_kid(), "mock-key-2");
    let after = tokens(&idp).await["id_token"].as_str().unwrap().to_owned();
    assert_eq!(header(&after)["kid"], "mock-key-2");
    verify_rs256(&idp, &after).await.unwrap();
    assert!(verify_rs256(&idp, &before).await.unwrap_err().contains("not in JWKS"));
    idp.rotate_keys();
    idp.rotate_keys();
    assert_eq!(idp.current_kid(), "mock-key-1");

    let graceful = MockIdp::builder().keep_previous_key(true).start().await.unwrap();
    graceful.rotate_keys();
    let jwks = get_json(&format!("{}/jwks", graceful.issuer())).await;
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, ["mock-key-2", "mock-key-1"]);
}

#[tokio::test]
async fn sign_id_token_signs_what_it_is_given() {
    let idp = MockIdp::start().await.unwrap();
    let token = idp.sign_id_token(json!({"sub": "x", "custom": 1}));
    verify_rs256(&idp, &token).await.unwrap();
    assert_eq!(claims(&token), json!({"sub": "x", "custom": 1}));
}

#[tokio::test]
async fn sign_jwt_sets_the_typ_it_is_given() {
    let idp = MockIdp::start().await.unwrap();
    idp.rotate_keys();
    let token = idp.sign_jwt(Some("at+jwt"), json!({"sub": "x"}));
    verify_rs256(&idp, &token).await.unwrap();
    assert_eq!(header(&token), json!({"alg": "RS256", "typ": "at+jwt", "kid": "mock-key-2"}));
    assert_eq!(claims(&token), json!({"sub": "x"}));
    let token = idp.sign_jwt(None, json!({"sub": "x"}));
    verify_rs256(&idp, &token).await.unwrap();
    assert_eq!(header(&token), json!({"alg": "RS256", "kid": "mock-key-2"}));
    assert_eq!(header(&idp.sign_id_token(json!({})))["typ"], "JWT");
}

#[tokio::test]
async fn access_token_for_is_an_rfc_9068_jwt() {
    let idp = MockIdp::builder()
        .user(MockUser::new("carol").email("carol@example.test").name("Carol").claim("groups", json!(["admins"])))
        .login_as(Some("carol"))
        .access_token_ttl(Duration::from_secs(600))
        .start()
        .await
        .unwrap();
    let token = idp.access_token_for("carol", "https://api.example.test", "read write");
    verify_rs256(&idp, &token).await.unwrap();
    assert_eq!(header(&token), json!({"alg": "RS256", "typ": "at+jwt", "kid": "mock-key-1"}));
    let c = claims(&token);
    let id_token = claims(tokens(&idp).await["id_token"].as_str().unwrap());
    assert_eq!(c["iss"], idp.issuer());
    assert_eq!(c["sub"], id_token["sub"]);
    assert_eq!(c["sub"], "carol");
    assert_eq!(c["aud"], "https://api.example.test");
    assert_eq!(c["client_id"], "mock-client");
    assert_eq!(c["scope"], "read write");
    assert_eq!(c["groups"], json!(["admins"]));
    assert_eq!(c["email"], "carol@example.test");
    assert_eq!(c["name"], "Carol");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let iat = c["iat"].as_u64().unwrap();
    assert!(iat <= now && iat + 5 >= now, "iat {iat} now {now}");
    assert_eq!(c["exp"].as_u64().unwrap() - iat, 600);
    assert!(c["jti"].as_str().unwrap().len() >= 20);
    let other = claims(&idp.access_token_for("carol", "https://api.example.test", "read write"));
    assert_ne!(other["jti"], c["jti"]);

    // The run-time lifetime and the current key apply; faults do not.
    idp.set_access_token_ttl(Duration::from_secs(30));
    idp.rotate_keys();
    idp.set_fault(Fault::BadSignature);
    let token = idp.access_token_for("carol", "api", "read");
    verify_rs256(&idp, &token).await.unwrap();
    assert_eq!(header(&token)["kid"], "mock-key-2");
    let c = claims(&token);
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 30);
}

#[tokio::test]
#[should_panic(expected = "MockIdp::access_token_for: no user named \"zed\" (users: alice, bob)")]
async fn access_token_for_an_unknown_user_panics() {
    let idp = MockIdp::start().await.unwrap();
    let _ = idp.access_token_for("zed", "api", "read");
}

#[tokio::test]
async fn minimal_id_tokens_leave_profile_claims_to_userinfo() {
    let idp = MockIdp::builder()
        .user(MockUser::new("erin").email("erin@example.test").claim("groups", json!(["a"])))
        .login_as(Some("erin"))
        .minimal_id_token(true)
        .start()
        .await
        .unwrap();
    let tokens = tokens(&idp).await;
    let c = claims(tokens["id_token"].as_str().unwrap());
    let mut keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["aud", "auth_time", "azp", "exp", "iat", "iss", "nonce", "sub"]);
    let userinfo: Value = userinfo(&idp, &tokens).await.json().await.unwrap();
    assert_eq!(userinfo["groups"], json!(["a"]));
    assert_eq!(userinfo["email"], "erin@example.test");
}

#[tokio::test]
async fn end_session_redirects_or_shows_a_page() {
    let idp = MockIdp::start().await.unwrap();
    let back = http()
        .get(format!("{}/end_session", idp.issuer()))
        .query(&[("post_logout_redirect_uri", "http://localhost:3000/?x=1"), ("state", "s"), ("id_token_hint", "tok")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&back).as_str(), "http://localhost:3000/?x=1&state=s");
    assert_eq!(idp.last_end_session_params().unwrap()["id_token_hint"], "tok");
    let page = http().get(format!("{}/end_session", idp.issuer())).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("You are signed out"));

    let no_logout = MockIdp::builder().end_session(false).start().await.unwrap();
    let doc = get_json(&no_logout.metadata_url()).await;
    assert!(doc.get("end_session_endpoint").is_none());
}

// ---- faults ----

async fn faulty_id_token(fault: Fault) -> (MockIdp, String) {
    let idp = auto_login_idp().await;
    idp.set_fault(fault);
    let id_token = tokens(&idp).await["id_token"].as_str().unwrap().to_owned();
    (idp, id_token)
}

#[tokio::test]
async fn signature_faults() {
    let (idp, token) = faulty_id_token(Fault::BadSignature).await;
    assert_eq!(header(&token)["alg"], "RS256");
    assert!(verify_rs256(&idp, &token).await.is_err());

    let (_, token) = faulty_id_token(Fault::AlgNone).await;
    assert_eq!(header(&token)["alg"], "none");
    assert!(token.ends_with('.'));
    assert_eq!(claims(&token)["sub"], "alice");

    let (idp, token) = faulty_id_token(Fault::Hs256WithPublicKey).await;
    assert_eq!(header(&token)["alg"], "HS256");
    use hmac::Mac as _;
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(idp.public_key_pem().as_bytes()).unwrap();
    mac.update(input.as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
    assert!(idp.public_key_pem().starts_with("-----BEGIN PUBLIC KEY-----\n"));

    let (idp, token) = faulty_id_token(Fault::NoKid).await;
    assert!(header(&token).get("kid").is_none());
    // Only the kid is missing: the claims are what a correct token carries.
    let with_kid = idp.sign_id_token(claims(&token));
    assert_eq!(with_kid.split('.').nth(1), token.split('.').nth(1));
}

#[tokio::test]
async fn claim_faults() {
    let (idp, token) = faulty_id_token(Fault::WrongIssuer).await;
    assert_eq!(claims(&token)["iss"], WRONG_ISSUER);
    verify_rs256(&idp, &token).await.unwrap();
    assert_eq!(claims(&faulty_id_token(Fault::WrongAudience).await.1)["aud"], WRONG_AUDIENCE);
    assert_eq!(claims(&faulty_id_token(Fault::WrongNonce).await.1)["nonce"], WRONG_NONCE);
    assert!(claims(&faulty_id_token(Fault::MissingSub).await.1).get("sub").is_none());
    assert!(claims(&faulty_id_token(Fault::MissingIat).await.1).get("iat").is_none());

    let c = claims(&faulty_id_token(Fault::Expired(Duration::from_secs(120))).await.1);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let exp = c["exp"].as_u64().unwrap();
    assert!(exp <= now - 119 && exp >= now - 125, "exp {exp} now {now}");
    assert_eq!(exp - c["iat"].as_u64().unwrap(), 300);

    let c =
        claims(&faulty_id_token(Fault::IdTokenClaims(json!({"email": null, "tid": "t-1", "aud": ["a", "b"]}))).await.1);
    assert!(c.get("email").is_none());
    assert_eq!(c["tid"], "t-1");
    assert_eq!(c["aud"], json!(["a", "b"]));
}

#[tokio::test]
async fn faults_combine_and_clear() {
    let idp = auto_login_idp().await;
    idp.add_fault(Fault::WrongNonce);
    idp.add_fault(Fault::NoKid);
    let token = tokens(&idp).await["id_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&token)["nonce"], WRONG_NONCE);
    assert!(header(&token).get("kid").is_none());
    idp.set_fault(Fault::MissingIat); // replaces both
    let token = tokens(&idp).await["id_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&token)["nonce"], "nonce-1");
    assert!(claims(&token).get("iat").is_none());
    idp.clear_faults();
    let token = tokens(&idp).await["id_token"].as_str().unwrap().to_owned();
    verify_rs256(&idp, &token).await.unwrap();
    assert!(claims(&token)["iat"].is_u64());
}

#[tokio::test]
async fn endpoint_faults() {
    let idp = auto_login_idp().await;

    idp.set_fault(Fault::DiscoveryIssuerMismatch);
    assert_eq!(get_json(&idp.metadata_url()).await["issuer"], WRONG_ISSUER);
    idp.set_fault(Fault::DiscoveryExtra(json!({"issuer": format!("{}/", idp.issuer()), "userinfo_endpoint": null})));
    let doc = get_json(&idp.metadata_url()).await;
    assert_eq!(doc["issuer"], format!("{}/", idp.issuer()));
    assert!(doc.get("userinfo_endpoint").is_none());

    idp.set_fault(Fault::CallbackIssuer("https://evil.example".into()));
    let back = location(&authorize_with(&idp, &[]).await);
    assert_eq!(query(&back)["iss"], "https://evil.example");

    idp.set_fault(Fault::AccessDenied);
    let back = location(&authorize_with(&idp, &[]).await);
    let params = query(&back);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "st-1");
    assert!(params.contains_key("error_description"));
    assert!(!params.contains_key("code"));

    idp.set_fault(Fault::UserinfoSubMismatch);
    let tokens = tokens(&idp).await;
    let userinfo: Value = userinfo(&idp, &tokens).await.json().await.unwrap();
    assert_eq!(userinfo["sub"], "alice-other");

    idp.set_fault(Fault::TokenError("temporarily_unavailable".into()));
    let code = code(&idp).await;
    let response = exchange(&idp, &code, VERIFIER).await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "temporarily_unavailable");

    idp.set_fault(Fault::Unavailable);
    idp.reset_hits();
    for path in ["/.well-known/openid-configuration", "/jwks", "/authorize", "/userinfo", "/end_session"] {
        let response = http().get(format!("{}{path}", idp.issuer())).send().await.unwrap();
        assert_eq!(response.status(), 503, "{path}");
    }
    assert_eq!(http().post(format!("{}/token", idp.issuer())).send().await.unwrap().status(), 503);
    let hits = idp.hits();
    assert_eq!(
        (hits.discovery, hits.jwks, hits.authorize, hits.token, hits.userinfo, hits.end_session),
        (1, 1, 1, 1, 1, 1)
    );
    assert_eq!((hits.introspect, hits.par, hits.revocation), (0, 0, 0));

    idp.set_fault(Fault::Delay(Duration::from_millis(400)));
    let timed_out = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap()
        .get(idp.metadata_url())
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    let started = std::time::Instant::now();
    assert_eq!(http().get(format!("{}/jwks", idp.issuer())).send().await.unwrap().status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn issuer_override_and_builder_errors() {
    let idp = MockIdp::builder().issuer("http://localhost:1234/realm/").start().await.unwrap();
    assert_eq!(idp.metadata_url(), "http://localhost:1234/realm/.well-known/openid-configuration");
    let doc = get_json(&format!("http://{}/.well-known/openid-configuration", idp.addr())).await;
    assert_eq!(doc["issuer"], "http://localhost:1234/realm/");
    assert_eq!(doc["token_endpoint"], "http://localhost:1234/realm/token");

    let error = MockIdp::builder().login_as(Some("nobody")).start().await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("alice, bob"));
}

#[tokio::test]
async fn path_serves_every_endpoint_under_it() {
    let idp = MockIdp::builder().path("/realms/demo").login_as(Some("alice")).start().await.unwrap();
    let issuer = idp.issuer();
    assert_eq!(issuer, format!("http://127.0.0.1:{}/realms/demo", idp.port()));
    assert_eq!(idp.metadata_url(), format!("{issuer}/.well-known/openid-configuration"));
    let doc = get_json(&idp.metadata_url()).await;
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));
    let token = tokens(&idp).await["id_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&token)["iss"], issuer);
    verify_rs256(&idp, &token).await.unwrap();
    let root = http().get(format!("http://{}/.well-known/openid-configuration", idp.addr())).send().await.unwrap();
    assert_eq!(root.status(), 404, "nothing is served outside the path");

    for bad in ["realms", "/realms/", "/a?b"] {
        let error = MockIdp::builder().path(bad).start().await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{bad}");
    }
}

#[tokio::test]
async fn issuer_template_names_each_users_tenant() {
    let idp = MockIdp::builder()
        .path("/common/v2.0")
        .issuer_template("/{tenantid}/v2.0", "tid")
        .user(MockUser::new("alice").claim("tid", json!("tenant-a")))
        .user(MockUser::new("bob"))
        .login_as(Some("alice"))
        .start()
        .await
        .unwrap();
    let origin = format!("http://127.0.0.1:{}", idp.port());
    assert_eq!(idp.metadata_url(), format!("{origin}/common/v2.0/.well-known/openid-configuration"));
    let doc = get_json(&idp.metadata_url()).await;
    assert_eq!(doc["issuer"], format!("{origin}/{{tenantid}}/v2.0"));
    assert_eq!(doc["authorization_endpoint"], format!("{origin}/common/v2.0/authorize"));

    let back = location(&authorize_with(&idp, &[]).await);
    assert_eq!(query(&back)["iss"], format!("{origin}/tenant-a/v2.0"), "the callback names the user's tenant");
    let token = tokens(&idp).await["id_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&token)["iss"], format!("{origin}/tenant-a/v2.0"));
    assert_eq!(claims(&token)["tid"], "tenant-a");

    idp.login_as(Some("bob"));
    let token = tokens(&idp).await["id_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&token)["iss"], format!("{origin}/{{tenantid}}/v2.0"), "no tid: the template itself");

    let error = MockIdp::builder().issuer_template("{tenantid}/v2.0", "tid").start().await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    let error = MockIdp::builder().issuer_template("/common/v2.0", "tid").start().await.unwrap_err();
    assert!(error.to_string().contains("placeholder"), "{error}");
}

#[tokio::test]
async fn ps256_id_tokens_are_served_with_their_key_and_es256_with_ps256_is_refused() {
    let idp = MockIdp::builder().id_token_ps256(true).login_as(Some("alice")).start().await.unwrap();
    let discovery = get_json(&idp.metadata_url()).await;
    assert_eq!(discovery["id_token_signing_alg_values_supported"], serde_json::json!(["PS256"]));
    let jwks = get_json(&format!("{}/jwks", idp.issuer())).await;
    let algs: Vec<&str> = jwks["keys"].as_array().unwrap().iter().filter_map(|k| k["alg"].as_str()).collect();
    assert_eq!(algs, ["RS256", "PS256"], "the RS256 key signs access tokens, the PS256 one ID tokens");

    let error = MockIdp::builder().id_token_es256(true).id_token_ps256(true).start().await.map(drop).unwrap_err();
    assert!(error.to_string().contains("choose one"), "{error}");
}
