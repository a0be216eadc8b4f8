//! Client authentication without a secret through the whole layer: an axum app with
//! `AuthLayer::from_config` whose section says `token_endpoint_auth_method =
//! "private_key_jwt"` (keys made by `openssl` here), `MockIdp` checking every assertion,
//! `GET /auth/jwks` publishing the public keys, and a refused assertion ending on the login
//! error page.

mod support;

use auth_testkit::{ClientAuthentication, Fault, MockIdp};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{App, Browser, SECRET, bind, port_of, serve};

/// Two keys for rotation in a fresh directory: a new EC P-256 key (signs) and an old RSA one.
fn keys(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("auth-tower-client-keys-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    for args in [
        ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "new.pem"],
        ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "old.pem"],
    ] {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|error| panic!("openssl cannot run ({error}); install it: apt-get install -y openssl"));
        assert!(output.status.success(), "openssl: {}", String::from_utf8_lossy(&output.stderr));
    }
    (dir.join("new.pem"), dir.join("old.pem"))
}

/// An app whose default provider (discovery at `metadata_url`) authenticates with
/// `private_key_jwt`, signing with `new` and publishing `new` and `old`, plus `extra`.
async fn app_with(metadata_url: &str, (new, old): (&Path, &Path), extra: &str) -> App {
    let listener = bind().await;
    let port = port_of(&listener);
    let text = format!(
        "[auth]\nredirect_uri = \"http://127.0.0.1:{port}/oauth2callback\"\ncookie_secret = \"{SECRET}\"\n\
         client_id = \"mock-client\"\nserver_metadata_url = \"{metadata_url}\"\n\
         token_endpoint_auth_method = \"private_key_jwt\"\n\
         client_private_key_file = [{new:?}, {old:?}]\n{extra}"
    );
    serve(listener, &text).await
}

/// `GET /auth/jwks` of `app`, checked to be a cacheable JWK Set.
async fn jwks(app: &App) -> Value {
    let response = reqwest::get(format!("{}/auth/jwks", app.base)).await.expect("jwks");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "max-age=300");
    assert!(response.headers()["content-type"].to_str().unwrap_or_default().starts_with("application/json"));
    response.json().await.expect("json")
}

#[tokio::test]
async fn private_key_jwt_logs_in_by_config_alone_with_the_keys_of_auth_jwks() {
    let (new, old) = keys("login");
    // The provider learns the client's keys from the app's /auth/jwks (discovery is fetched
    // only at the first login, so the URL need not answer yet).
    let unreachable = "http://127.0.0.1:9/.well-known/openid-configuration";
    let first = app_with(unreachable, (&new, &old), "publish_client_jwks = true").await;
    let published = jwks(&first).await;
    let keys = published["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2, "both keys are published: {published}");
    assert_eq!((keys[0]["kty"].as_str(), keys[0]["crv"].as_str()), (Some("EC"), Some("P-256")));
    assert_eq!((keys[1]["kty"].as_str(), keys[1]["alg"].as_str()), (Some("RSA"), Some("RS256")));
    for key in keys {
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].is_string());
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(key.get(private).is_none(), "a private member {private} is published: {key}");
        }
    }

    // Only the first key registered: the first key signs.
    let only_new = serde_json::json!({ "keys": [keys[0].clone()] });
    let idp = MockIdp::builder()
        .client_authentication(ClientAuthentication::PrivateKeyJwt(only_new))
        .login_as(Some("alice"))
        .start()
        .await
        .expect("mock idp");
    let app = app_with(&idp.metadata_url(), (&new, &old), "publish_client_jwks = true").await;
    assert_eq!(jwks(&app).await, published, "the same keys, the same set");
    let browser = Browser::new();
    let (page, _) = browser.log_in(&app, "").await;
    assert_eq!(page.status(), StatusCode::OK, "{}", page.text().await.unwrap_or_default());
    assert_eq!(browser.me(&app).await["sub"], "alice");
    assert_eq!(idp.hits().token, 1);
}

#[tokio::test]
async fn auth_jwks_is_served_only_when_asked_for() {
    let (new, old) = keys("switch");
    let app = app_with("http://127.0.0.1:9/.well-known/openid-configuration", (&new, &old), "").await;
    let response = reqwest::get(format!("{}/auth/jwks", app.base)).await.expect("request");
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "the app's own 404: the layer does not serve it");
}

#[tokio::test]
async fn a_refused_assertion_ends_on_the_login_error_page() {
    let (new, old) = keys("refused");
    let unreachable = "http://127.0.0.1:9/.well-known/openid-configuration";
    let published = jwks(&app_with(unreachable, (&new, &old), "publish_client_jwks = true").await).await;
    let idp = MockIdp::builder()
        .client_authentication(ClientAuthentication::PrivateKeyJwt(published))
        .login_as(Some("alice"))
        .start()
        .await
        .expect("mock idp");
    // A provider that insists on the token endpoint as `aud`; the app sends the issuer.
    idp.set_fault(Fault::ClientAssertionAudience(format!("{}/token", idp.issuer())));
    let app = app_with(&idp.metadata_url(), (&new, &old), "").await;
    let browser = Browser::new();
    let (page, url) = browser.log_in(&app, "").await;
    let status = page.status();
    let body = page.text().await.expect("body");
    assert!(status.is_client_error(), "expected a 4xx page at {url}, got {status}: {body}");
    assert!(body.contains("<html") || body.contains("<!doctype"), "a page, not a bare error: {body}");
    assert!(!body.contains("BEGIN") && !body.contains("client_assertion="), "{body}");
    assert_eq!(browser.me(&app).await["is_logged_in"], false);

    // client_assertion_audience = "token_endpoint" is what such a provider needs.
    let app = app_with(&idp.metadata_url(), (&new, &old), "client_assertion_audience = \"token_endpoint\"").await;
    let browser = Browser::new();
    let (page, _) = browser.log_in(&app, "").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(browser.me(&app).await["sub"], "alice");
}
