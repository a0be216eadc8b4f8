//! The mock's client assertions (RFC 7523 §2.2) over real HTTP, with assertions built here
//! by hand (HS256 with `hmac`): what a real provider refuses, the mock refuses with
//! `401 invalid_client`: a wrong signature, `iss`/`sub`, `aud` or an expired assertion, a
//! reused `jti`, and the secret instead of an assertion.

#![allow(clippy::unwrap_used)]

use auth_testkit::{ClientAuthentication, Fault, MockIdp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

const TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// An HS256 assertion of `claims` keyed with `secret`.
fn assertion(secret: &str, claims: &Value) -> String {
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", encode(&json!({ "alg": "HS256", "typ": "JWT" })), encode(claims));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

fn claims(idp: &MockIdp, jti: &str) -> Value {
    json!({ "iss": idp.client_id(), "sub": idp.client_id(), "aud": idp.issuer(), "jti": jti, "exp": now() + 60 })
}

/// POSTs `jwt` as the client assertion to `/introspect` (which authenticates as `/token`
/// does); the status and the error description.
async fn introspect(idp: &MockIdp, jwt: &str) -> (u16, String) {
    let form = [("token", "x"), ("client_assertion_type", TYPE), ("client_assertion", jwt)];
    let answer = reqwest::Client::new().post(format!("{}/introspect", idp.issuer())).form(&form).send().await.unwrap();
    let status = answer.status().as_u16();
    let body: Value = answer.json().await.unwrap();
    (status, body["error_description"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn client_secret_jwt_assertions_are_checked_like_a_real_provider_does() {
    let idp = MockIdp::builder().client_authentication(ClientAuthentication::ClientSecretJwt).start().await.unwrap();
    let secret = idp.client_secret().to_owned();
    let doc: Value = reqwest::get(idp.metadata_url()).await.unwrap().json().await.unwrap();
    assert!(doc["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("client_secret_jwt")));

    let good = assertion(&secret, &claims(&idp, "one"));
    assert_eq!(introspect(&idp, &good).await.0, 200);
    let (status, why) = introspect(&idp, &good).await;
    assert_eq!((status, why.contains("used before")), (401, true), "a reused jti: {why}");

    let with = |jti: &str, key: &str, value: Value| {
        let mut claims = claims(&idp, jti);
        claims[key] = value;
        assertion(&secret, &claims)
    };
    let token_endpoint = with("two", "aud", format!("{}/token", idp.issuer()).into());
    assert_eq!(introspect(&idp, &token_endpoint).await.0, 200, "the token endpoint is an accepted aud");
    for (jwt, expected) in [
        (with("three", "aud", "https://elsewhere.example".into()), "aud"),
        (with("four", "iss", "someone-else".into()), "iss and sub"),
        (with("five", "sub", "someone-else".into()), "iss and sub"),
        (with("six", "exp", (now() - 10).into()), "expired"),
        (with("seven", "jti", Value::Null), "jti"),
        (assertion("not-the-secret", &claims(&idp, "eight")), "signature"),
    ] {
        let (status, why) = introspect(&idp, &jwt).await;
        assert_eq!(status, 401, "{expected}: {why}");
        assert!(why.contains(expected), "expected {expected:?} in {why:?}");
    }

    // A provider that insists on the token endpoint.
    idp.set_fault(Fault::ClientAssertionAudience(format!("{}/token", idp.issuer())));
    let (status, why) = introspect(&idp, &assertion(&secret, &claims(&idp, "nine"))).await;
    assert_eq!((status, why.contains("aud")), (401, true), "{why}");
    idp.clear_faults();

    // The secret itself is not accepted from a client registered for assertions.
    let answer = reqwest::Client::new()
        .post(format!("{}/introspect", idp.issuer()))
        .basic_auth(idp.client_id(), Some(&secret))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
}
