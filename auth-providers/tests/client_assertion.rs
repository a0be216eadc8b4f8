//! Client authentication without a secret in transit: `private_key_jwt` (RSA and EC keys
//! made by `openssl` here) and `client_secret_jwt` against `MockIdp`, which verifies each
//! assertion (signature, `iss` = `sub` = client, `aud`, `exp`, fresh `jti`); the keys'
//! startup errors; rotation; and no key material in `Debug` or logs.

mod support;

use auth_core::{ClientAssertionAudience, IdentityProvider, ProviderConfig, Session, TokenAuthMethod};
use auth_providers::OidcProvider;
use auth_testkit::{ClientAuthentication, Fault, MockIdp};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;
use std::path::{Path, PathBuf};
use support::{config, ec_key, login, openssl, rejection, settings, temp_dir};

fn rsa_key(dir: &Path, name: &str) -> PathBuf {
    openssl(dir, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", name]);
    dir.join(name)
}

/// `idp`'s client with `private_key_jwt` signed by `keys` (the first signs).
fn key_config(idp: &MockIdp, keys: &[&Path]) -> ProviderConfig {
    let mut config = config(idp);
    config.client_secret = None;
    for key in keys {
        config = config.with_client_private_key_file(*key);
    }
    config
}

/// The provider's published keys as a JWK Set, as `/auth/jwks` serves them.
fn jwk_set(provider: &OidcProvider) -> Value {
    json!({ "keys": provider.client_jwks() })
}

/// A mock whose client authenticates with `method`, and auto-login as alice.
async fn idp_with(method: ClientAuthentication) -> MockIdp {
    MockIdp::builder().client_authentication(method).login_as(Some("alice")).start().await.expect("mock idp starts")
}

/// Logs in with `provider` against `idp`, refreshes, and checks both worked.
async fn login_and_refresh(provider: &OidcProvider) {
    let result = login(provider).await.expect("login with a client assertion");
    assert_eq!(result.identity.subject, "alice");
    let session = Session::new(result.identity.clone(), result.tokens.clone(), 3600);
    let refreshed = provider.refresh(&session).await.expect("refresh with a client assertion");
    assert_ne!(refreshed.tokens.access_token, result.tokens.access_token);
}

#[tokio::test]
async fn private_key_jwt_with_an_rsa_key_logs_in_and_refreshes() {
    let dir = temp_dir("rsa");
    let key = rsa_key(&dir, "client.pem");
    // Register the key the provider publishes: a mock started after the provider is built.
    let probe = MockIdp::builder().start().await.expect("probe");
    let jwks = jwk_set(&OidcProvider::new(&key_config(&probe, &[&key]), &settings()).expect("provider builds"));
    let idp = idp_with(ClientAuthentication::PrivateKeyJwt(jwks.clone())).await;
    let provider = OidcProvider::new(&key_config(&idp, &[&key]), &settings()).expect("provider builds");

    let published = &jwks["keys"][0];
    assert_eq!((published["kty"].as_str(), published["alg"].as_str()), (Some("RSA"), Some("RS256")));
    assert_eq!(published["use"], "sig");
    assert!(published["n"].is_string() && published["e"] == "AQAB");
    assert_eq!(published["kid"].as_str().map(str::len), Some(43), "an RFC 7638 thumbprint");
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(published.get(private).is_none(), "the JWK holds the private member {private}");
    }
    login_and_refresh(&provider).await;
    assert!(idp.hits().token >= 2);
}

#[tokio::test]
async fn private_key_jwt_with_ec_keys_pkcs8_and_sec1_logs_in() {
    let dir = temp_dir("ec");
    let pkcs8 = ec_key(&dir, "client.pem");
    // The SEC1 form (`EC PRIVATE KEY`) of `openssl ecparam -genkey`.
    openssl(&dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sec1.pem"]);
    let sec1 = dir.join("sec1.pem");
    assert!(std::fs::read_to_string(&sec1).expect("sec1").contains("BEGIN EC PRIVATE KEY"));
    for key in [pkcs8, sec1] {
        let probe = MockIdp::builder().start().await.expect("probe");
        let mut config = key_config(&probe, &[&key]);
        config.client_key_ids = vec!["my-ec-key".into()];
        let jwks = jwk_set(&OidcProvider::new(&config, &settings()).expect("provider builds"));
        assert_eq!(jwks["keys"][0]["kid"], "my-ec-key");
        assert_eq!((jwks["keys"][0]["crv"].as_str(), jwks["keys"][0]["alg"].as_str()), (Some("P-256"), Some("ES256")));
        assert!(jwks["keys"][0].get("d").is_none());
        let idp = idp_with(ClientAuthentication::PrivateKeyJwt(jwks)).await;
        let mut config = key_config(&idp, &[&key]);
        config.client_key_ids = vec!["my-ec-key".into()];
        let provider = OidcProvider::new(&config, &settings()).expect("provider builds");
        login_and_refresh(&provider).await;
    }
}

#[tokio::test]
async fn a_pkcs1_rsa_key_loads() {
    let dir = temp_dir("pkcs1");
    openssl(&dir, &["genrsa", "-traditional", "-out", "pkcs1.pem", "2048"]);
    let key = dir.join("pkcs1.pem");
    assert!(std::fs::read_to_string(&key).expect("key").contains("BEGIN RSA PRIVATE KEY"));
    let probe = MockIdp::builder().start().await.expect("probe");
    let jwks = jwk_set(&OidcProvider::new(&key_config(&probe, &[&key]), &settings()).expect("provider builds"));
    let idp = idp_with(ClientAuthentication::PrivateKeyJwt(jwks)).await;
    login(&OidcProvider::new(&key_config(&idp, &[&key]), &settings()).expect("builds")).await.expect("login");
}

#[tokio::test]
async fn client_secret_jwt_logs_in_and_refreshes() {
    let idp = idp_with(ClientAuthentication::ClientSecretJwt).await;
    let config = config(&idp).with_token_endpoint_auth_method(TokenAuthMethod::ClientSecretJwt);
    let provider = OidcProvider::new(&config, &settings()).expect("provider builds");
    login_and_refresh(&provider).await;
    assert!(provider.client_jwks().is_empty(), "client_secret_jwt publishes no key");

    // A client that sends its secret instead of an assertion is refused.
    let basic = OidcProvider::new(&support::config(&idp), &settings()).expect("builds");
    let message = rejection(login(&basic).await);
    assert!(message.contains("invalid_client"), "{message}");
}

#[tokio::test]
async fn an_audience_the_provider_refuses_fails_the_login_and_token_endpoint_fixes_it() {
    let dir = temp_dir("aud");
    let key = ec_key(&dir, "client.pem");
    let probe = MockIdp::builder().start().await.expect("probe");
    let jwks = jwk_set(&OidcProvider::new(&key_config(&probe, &[&key]), &settings()).expect("provider builds"));
    let idp = idp_with(ClientAuthentication::PrivateKeyJwt(jwks)).await;
    idp.set_fault(Fault::ClientAssertionAudience(format!("{}/token", idp.issuer())));

    let issuer_aud = OidcProvider::new(&key_config(&idp, &[&key]), &settings()).expect("builds");
    let message = rejection(login(&issuer_aud).await);
    assert!(message.contains("invalid_client") && message.contains("aud"), "{message}");

    let mut config = key_config(&idp, &[&key]);
    config.client_assertion_audience = ClientAssertionAudience::TokenEndpoint;
    let token_endpoint_aud = OidcProvider::new(&config, &settings()).expect("builds");
    login(&token_endpoint_aud).await.expect("aud = the token endpoint is accepted");
}

#[tokio::test]
async fn with_two_keys_the_first_signs_and_both_are_published() {
    let dir = temp_dir("rotation");
    let (new, old) = (ec_key(&dir, "new.pem"), rsa_key(&dir, "old.pem"));
    let probe = MockIdp::builder().start().await.expect("probe");
    let both = OidcProvider::new(&key_config(&probe, &[&new, &old]), &settings()).expect("builds");
    let keys = both.client_jwks();
    assert_eq!(keys.len(), 2);
    assert_eq!((keys[0]["alg"].as_str(), keys[1]["alg"].as_str()), (Some("ES256"), Some("RS256")));

    // Registered with only the first key: it signs, so the login works.
    let idp = idp_with(ClientAuthentication::PrivateKeyJwt(json!({ "keys": [keys[0].clone()] }))).await;
    login(&OidcProvider::new(&key_config(&idp, &[&new, &old]), &settings()).expect("builds")).await.expect("login");
    // Registered with only the second: refused.
    let idp = idp_with(ClientAuthentication::PrivateKeyJwt(json!({ "keys": [keys[1].clone()] }))).await;
    let message =
        rejection(login(&OidcProvider::new(&key_config(&idp, &[&new, &old]), &settings()).expect("builds")).await);
    assert!(message.contains("invalid_client"), "{message}");
}

#[tokio::test]
async fn a_certificate_adds_its_sha256_thumbprint_and_must_match_the_key() {
    let dir = temp_dir("cert");
    let key = rsa_key(&dir, "client.pem");
    openssl(
        &dir,
        &["req", "-x509", "-new", "-key", "client.pem", "-subj", "/CN=app", "-days", "2", "-out", "cert.pem"],
    );
    openssl(&dir, &["x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der"]);
    let der = std::fs::read(dir.join("cert.der")).expect("der");
    let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der));

    let probe = MockIdp::builder().start().await.expect("probe");
    let mut config = key_config(&probe, &[&key]);
    config.client_certificate_file = Some(dir.join("cert.pem"));
    let provider = OidcProvider::new(&config, &settings()).expect("builds");
    let debug = format!("{provider:?}");
    assert!(debug.contains(&expected), "the x5t#S256 of the certificate: {debug}");
    let jwks = jwk_set(&provider);
    let idp = idp_with(ClientAuthentication::PrivateKeyJwt(jwks)).await;
    let mut config = key_config(&idp, &[&key]);
    config.client_certificate_file = Some(dir.join("cert.pem"));
    login(&OidcProvider::new(&config, &settings()).expect("builds")).await.expect("login with x5t#S256");

    // Another key's certificate is a startup error.
    let other = rsa_key(&dir, "other.pem");
    let mut config = key_config(&probe, &[&other]);
    config.client_certificate_file = Some(dir.join("cert.pem"));
    let error = OidcProvider::new(&config, &settings()).expect_err("mismatched certificate").to_string();
    assert!(error.contains("`auth.mock.client_certificate_file`") && error.contains("not the certificate"), "{error}");
}

#[tokio::test]
async fn ps256_when_asked_for_and_an_alg_the_key_cannot_sign_is_a_startup_error() {
    let dir = temp_dir("ps256");
    let key = rsa_key(&dir, "client.pem");
    let ps256 = |idp: &MockIdp| {
        let mut config = key_config(idp, &[&key]);
        config.token_endpoint_auth_signing_alg = Some("PS256".into());
        config
    };
    let probe = MockIdp::builder().start().await.expect("probe");
    let jwks = jwk_set(&OidcProvider::new(&ps256(&probe), &settings()).expect("provider builds"));
    assert_eq!(jwks["keys"][0]["alg"], "PS256");
    let idp = idp_with(ClientAuthentication::PrivateKeyJwt(jwks)).await;
    login_and_refresh(&OidcProvider::new(&ps256(&idp), &settings()).expect("builds")).await;

    let mut config = key_config(&probe, &[&key]);
    config.token_endpoint_auth_signing_alg = Some("ES256".into());
    let error = OidcProvider::new(&config, &settings()).expect_err("an RSA key cannot sign ES256").to_string();
    assert!(
        error.contains("`auth.mock.token_endpoint_auth_signing_alg` is \"ES256\"") && error.contains("RSA"),
        "{error}"
    );
}

/// The startup error of a provider whose key file is `key`.
async fn key_error(key: &Path) -> String {
    let probe = MockIdp::builder().start().await.expect("probe");
    let error = OidcProvider::new(&key_config(&probe, &[key]), &settings()).expect_err("unusable key").to_string();
    assert!(error.contains("`auth.mock.client_private_key_file`"), "{error}");
    error
}

#[tokio::test]
async fn unusable_key_files_are_startup_errors_naming_the_key_and_the_fix() {
    let dir = temp_dir("errors");
    let error = key_error(&dir.join("missing.pem")).await;
    assert!(error.contains("does not exist") && error.contains("Fix:"), "{error}");

    // A directory cannot be read as a file (permissions do not stop root, who runs CI).
    let error = key_error(&dir).await;
    assert!(error.contains("cannot be read"), "{error}");

    openssl(
        &dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-aes-256-cbc",
            "-pass",
            "pass:x",
            "-out",
            "enc.pem",
        ],
    );
    let error = key_error(&dir.join("enc.pem")).await;
    assert!(error.contains("encrypted") && error.contains("openssl pkey -in"), "{error}");

    openssl(&dir, &["genpkey", "-algorithm", "ed25519", "-out", "ed.pem"]);
    let error = key_error(&dir.join("ed.pem")).await;
    assert!(error.contains("Ed25519") && error.contains("RSA"), "{error}");

    openssl(&dir, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "p384.pem"]);
    let error = key_error(&dir.join("p384.pem")).await;
    assert!(error.contains("P-256"), "{error}");

    let key = rsa_key(&dir, "client.pem");
    openssl(
        &dir,
        &["req", "-x509", "-new", "-key", "client.pem", "-subj", "/CN=app", "-days", "2", "-out", "cert.pem"],
    );
    let error = key_error(&dir.join("cert.pem")).await;
    assert!(error.contains("certificate, not a private key") && error.contains("client_certificate_file"), "{error}");

    std::fs::write(dir.join("text.pem"), "not a key").expect("write");
    let error = key_error(&dir.join("text.pem")).await;
    assert!(error.contains("not a PEM file"), "{error}");

    // Without a key file, private_key_jwt is a config error.
    let probe = MockIdp::builder().start().await.expect("probe");
    let mut config = key_config(&probe, &[&key]);
    config.client_private_key_files.clear();
    let error = OidcProvider::new(&config, &settings()).expect_err("no key").to_string();
    assert!(error.contains("`auth.mock.client_private_key_file` is missing"), "{error}");
}

#[tokio::test]
async fn debug_and_logs_never_show_key_material() {
    let (captured, _guard) = auth_testkit::capture_logs("auth_providers=trace,auth_testkit=trace");

    let dir = temp_dir("secrecy");
    let key = rsa_key(&dir, "client.pem");
    let probe = MockIdp::builder().start().await.expect("probe");
    let jwks = jwk_set(&OidcProvider::new(&key_config(&probe, &[&key]), &settings()).expect("builds"));
    let idp = idp_with(ClientAuthentication::PrivateKeyJwt(jwks)).await;
    let provider = OidcProvider::new(&key_config(&idp, &[&key]), &settings()).expect("builds");
    login_and_refresh(&provider).await;
    idp.set_fault(Fault::ClientAssertionAudience("elsewhere".into()));
    assert!(login(&provider).await.is_err());

    let debug = format!("{provider:?}");
    assert!(debug.contains("RS256"), "Debug shows the algorithm and kid: {debug}");
    let logs = captured.text();
    assert!(logs.contains("invalid_client"), "{logs}");
    let pem = std::fs::read_to_string(&key).expect("pem");
    // Every line of the key's base64, and its private exponent as a JWK would show it.
    for line in pem.lines().filter(|line| !line.starts_with("-----")) {
        assert!(!debug.contains(line) && !logs.contains(line), "key material leaked:\n{debug}\n{logs}");
    }
    for text in [&debug, &logs] {
        assert!(!text.contains("PRIVATE KEY") && !text.contains("\"d\""), "{text}");
    }
}
