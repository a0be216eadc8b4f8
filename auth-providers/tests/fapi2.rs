//! `profile = "fapi2"` against `MockIdp` set up as a FAPI 2.0 provider (PAR required,
//! DPoP with nonces, `private_key_jwt` only, ES256 or PS256 ID tokens): the whole login and
//! a refresh, and the two refusals the profile adds at runtime: an ID token signed RS256,
//! and a callback without `iss` from a provider whose discovery does not promise it.

mod support;

use auth_core::{DpopMode, IdentityProvider, Profile, ProviderConfig, ProviderError, Session, TokenAuthMethod, UsePar};
use auth_providers::OidcProvider;
use auth_testkit::{ClientAuthentication, Fault, MockIdp, MockIdpBuilder};
use base64::Engine as _;
use serde_json::{Value, json};
use std::path::Path;
use support::{REDIRECT_URI, callback_params, config, ec_key, login, param, rejection, settings, temp_dir, visit};

/// A FAPI 2.0 section for `idp`'s client, signing client assertions with `key`.
fn fapi2_config(idp: &MockIdp, key: &Path) -> ProviderConfig {
    let mut config = config(idp);
    config.client_secret = None;
    config.dpop = DpopMode::Required;
    config.with_client_private_key_file(key).with_profile(Some(Profile::Fapi2))
}

/// A mock that behaves as a FAPI 2.0 provider for a client with `key`, changed by `more`.
async fn fapi2_idp(key: &Path, more: impl FnOnce(MockIdpBuilder) -> MockIdpBuilder) -> MockIdp {
    // The client's public keys, as the provider would publish them at /auth/jwks.
    let probe = MockIdp::builder().start().await.expect("probe");
    let jwks = OidcProvider::new(&fapi2_config(&probe, key), &settings()).expect("provider builds").client_jwks();
    let builder = MockIdp::builder()
        .client_authentication(ClientAuthentication::PrivateKeyJwt(json!({ "keys": jwks })))
        .require_pushed_authorization_requests(true)
        .dpop(true)
        .dpop_nonce_required(true)
        .login_as(Some("alice"));
    more(builder).start().await.expect("mock idp starts")
}

fn header_alg(jwt: &str) -> Value {
    let header = jwt.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).expect("base64url header");
    serde_json::from_slice::<Value>(&bytes).expect("JSON header")["alg"].clone()
}

#[tokio::test]
async fn a_fapi2_login_pushes_proves_and_verifies_an_es256_id_token() {
    let key = ec_key(&temp_dir("fapi2-login"), "client.pem");
    let idp = fapi2_idp(&key, |b| b.id_token_es256(true)).await;
    let config = fapi2_config(&idp, &key);
    assert_eq!((config.use_par, config.token_endpoint_auth_method), (UsePar::Always, TokenAuthMethod::PrivateKeyJwt));
    let provider = OidcProvider::new(&config, &settings()).expect("provider builds");

    let result = login(&provider).await.expect("FAPI 2.0 login");
    assert_eq!(result.identity.subject, "alice");
    let authorize = idp.last_authorize_params().expect("authorize");
    assert!(authorize.contains_key("request_uri") && !authorize.contains_key("code_challenge"), "{authorize:?}");
    let pushed = idp.last_par_params().expect("the request was pushed");
    assert_eq!(pushed.get("code_challenge_method").map(String::as_str), Some("S256"), "PKCE S256");
    assert!(pushed.contains_key("dpop_jkt"), "the code is bound to the login's DPoP key");
    assert!(pushed.contains_key("client_assertion") && !pushed.contains_key("client_secret"), "{pushed:?}");
    assert!(result.tokens.dpop_key.is_some(), "the session's tokens are DPoP-bound");
    let id_token = result.tokens.id_token.clone().expect("an ID token");
    assert_eq!(header_alg(&id_token), "ES256");

    let session = Session::new(result.identity, result.tokens, 3600);
    let refreshed = provider.refresh(&session).await.expect("refresh: DPoP, private_key_jwt, ES256 again");
    assert_eq!(refreshed.tokens.dpop_key, session.tokens.dpop_key);
}

/// PS256, the algorithm most FAPI 2.0 providers sign with (an RSA key, PSS padding): the
/// login and a refresh verify it, and a PS256 token whose signature is broken is refused.
#[tokio::test]
async fn a_fapi2_login_verifies_a_ps256_id_token() {
    let key = ec_key(&temp_dir("fapi2-ps256"), "client.pem");
    let idp = fapi2_idp(&key, |b| b.id_token_ps256(true)).await;
    let provider = OidcProvider::new(&fapi2_config(&idp, &key), &settings()).expect("provider builds");
    let result = login(&provider).await.expect("FAPI 2.0 login with a PS256 ID token");
    assert_eq!(header_alg(result.tokens.id_token.as_deref().expect("an ID token")), "PS256");
    let session = Session::new(result.identity, result.tokens, 3600);
    let refreshed = provider.refresh(&session).await.expect("refresh with a PS256 ID token");
    assert_eq!(header_alg(refreshed.tokens.id_token.as_deref().expect("a new ID token")), "PS256");

    idp.set_fault(Fault::BadSignature);
    let message = rejection(login(&provider).await);
    assert!(message.contains("signature"), "{message}");
}

#[tokio::test]
async fn a_fapi2_provider_refuses_an_rs256_id_token() {
    let key = ec_key(&temp_dir("fapi2-rs256"), "client.pem");
    // MockIdp signs RS256 unless told otherwise.
    let idp = fapi2_idp(&key, |b| b).await;
    let provider = OidcProvider::new(&fapi2_config(&idp, &key), &settings()).expect("provider builds");
    let message = rejection(login(&provider).await);
    assert!(message.contains("\"RS256\" is not allowed") && message.contains("PS256, ES256, EdDSA"), "{message}");

    // The same provider without the profile accepts it.
    let plain = fapi2_config(&idp, &key).with_profile(None);
    login(&OidcProvider::new(&plain, &settings()).expect("builds")).await.expect("RS256 without fapi2");
}

#[tokio::test]
async fn a_fapi2_provider_refuses_a_callback_without_iss() {
    let key = ec_key(&temp_dir("fapi2-iss"), "client.pem");
    let idp = fapi2_idp(&key, |b| b.id_token_es256(true)).await;
    // A provider that does not promise iss on its callbacks (RFC 9207).
    idp.set_fault(Fault::DiscoveryExtra(json!({ "authorization_response_iss_parameter_supported": false })));
    let without_iss = |provider: OidcProvider| async move {
        let authorization = provider.authorize(REDIRECT_URI).await.expect("authorize");
        let callback = visit(&authorization.url).await;
        assert!(param(&callback, "iss").is_some(), "MockIdp sends iss; the test drops it");
        let mut params = callback_params(&callback, &authorization.pending);
        params.iss = None;
        provider.complete(&params, &authorization.pending, REDIRECT_URI).await
    };

    let fapi2 = OidcProvider::new(&fapi2_config(&idp, &key), &settings()).expect("provider builds");
    let message = rejection(without_iss(fapi2).await);
    assert!(message.contains("lacks the iss parameter") && message.contains("auth.mock.profile"), "{message}");

    let plain = OidcProvider::new(&fapi2_config(&idp, &key).with_profile(None), &settings()).expect("builds");
    without_iss(plain).await.expect("without the profile, a provider that does not promise iss may omit it");
}

#[tokio::test]
async fn a_fapi2_section_that_contradicts_the_profile_does_not_build() {
    let key = ec_key(&temp_dir("fapi2-build"), "client.pem");
    let idp = MockIdp::builder().start().await.expect("mock idp starts");
    let mut no_dpop = fapi2_config(&idp, &key);
    no_dpop.dpop = DpopMode::Optional;
    let mut never_par = fapi2_config(&idp, &key);
    never_par.use_par = UsePar::Never;
    let mut secret = fapi2_config(&idp, &key);
    secret.client_secret = Some(auth_core::Secret::new(idp.client_secret()));
    for (config, key) in
        [(no_dpop, "auth.mock.dpop"), (never_par, "auth.mock.use_par"), (secret, "auth.mock.client_secret")]
    {
        let error = OidcProvider::new(&config, &settings()).map(drop).expect_err("refused");
        assert!(error.to_string().contains(&format!("`{key}`")), "{error}");
    }

    // A provider without a PAR endpoint cannot serve a FAPI 2.0 login.
    idp.set_fault(Fault::DiscoveryExtra(json!({ "pushed_authorization_request_endpoint": null })));
    let provider = OidcProvider::new(&fapi2_config(&idp, &key), &settings()).expect("builds");
    let error = provider.authorize(REDIRECT_URI).await.map(drop).expect_err("no PAR endpoint");
    assert!(matches!(error, ProviderError::Other(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("\"fapi2\" requires pushed") && message.contains("auth.mock.profile"), "{message}");
}
