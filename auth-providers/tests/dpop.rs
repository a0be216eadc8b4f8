//! `OidcProvider` with DPoP (RFC 9449, `dpop = true | "optional"`) against `MockIdp` with
//! server nonces: the login (key named by `dpop_jkt`, proofs on the code exchange and on
//! userinfo with `ath`), the refresh with the session's key, a nonce rotated between two
//! requests (one retry), and a provider that answers with unbound tokens.

mod support;

use auth_core::{DpopKey, DpopMode, IdentityProvider, LoginResult, Session, UsePar};
use auth_providers::OidcProvider;
use auth_testkit::{Fault, MockIdp, MockIdpBuilder};
use support::{config, login, rejection, settings};

async fn start(builder: MockIdpBuilder) -> MockIdp {
    // A minimal ID token makes the login read userinfo.
    builder
        .dpop(true)
        .dpop_nonce_required(true)
        .minimal_id_token(true)
        .login_as(Some("alice"))
        .start()
        .await
        .expect("starts")
}

fn provider(idp: &MockIdp, mode: DpopMode) -> OidcProvider {
    let mut config = config(idp);
    config.dpop = mode;
    OidcProvider::new(&config, &settings()).expect("provider builds")
}

fn session_of(result: LoginResult) -> Session {
    Session::new(result.identity, result.tokens, 3600)
}

#[tokio::test]
async fn login_userinfo_and_refresh_are_bound_to_the_session_key() {
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp, DpopMode::Required);
    let result = login(&provider).await.expect("login");
    let stored = result.tokens.dpop_key.clone().expect("the session keeps its DPoP key");
    let key = DpopKey::from_stored(&stored).expect("a key");
    let authorize = idp.last_authorize_params().expect("authorize");
    assert_eq!(authorize.get("dpop_jkt").map(String::as_str), Some(key.thumbprint()), "bound at authorization");
    assert_eq!(result.identity.claims.get("email").and_then(|v| v.as_str()), Some("alice@example.test"), "userinfo");
    let hits = idp.hits();
    assert_eq!(hits.token, 2, "the first proof had no nonce: one use_dpop_nonce retry");
    assert_eq!(hits.userinfo, 1, "userinfo used the remembered nonce at once");
    assert!(!format!("{result:?}").contains(&stored), "Debug never shows the key");

    let session = session_of(result);
    let refreshed = provider.refresh(&session).await.expect("refresh with the session's key");
    assert_eq!(refreshed.tokens.dpop_key.as_deref(), Some(stored.as_str()), "the refresh keeps the key");
    assert_ne!(refreshed.tokens.access_token, session.tokens.access_token);
    assert_eq!(idp.hits().token, 3, "the remembered nonce: no retry");

    // Another key for the bound refresh token is refused by the provider (invalid_grant).
    let mut other = session_of(refreshed);
    other.tokens.dpop_key = Some(DpopKey::generate(auth_core::DpopAlg::Es256).expect("key").stored().to_owned());
    let message = rejection(provider.refresh(&other).await);
    assert!(message.contains("invalid_grant"), "{message}");
}

#[tokio::test]
async fn a_nonce_rotated_between_two_requests_costs_one_retry() {
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp, DpopMode::Required);
    let session = session_of(login(&provider).await.expect("login"));
    idp.set_fault(Fault::DpopNonceRotated);
    let before = idp.hits().token;
    let refreshed = provider.refresh(&session).await.expect("the retry with the new nonce works");
    assert!(refreshed.tokens.dpop_key.is_some());
    assert_eq!(idp.hits().token, before + 2, "one use_dpop_nonce answer, one retry");
}

#[tokio::test]
async fn an_unbound_token_fails_the_login_unless_dpop_is_optional() {
    let idp = start(MockIdp::builder()).await;
    idp.set_fault(Fault::DpopUnboundToken);
    let message = rejection(login(&provider(&idp, DpopMode::Required)).await);
    assert!(message.contains("auth.mock.dpop = true") && message.contains("not DPoP-bound"), "{message}");

    let result = login(&provider(&idp, DpopMode::Optional)).await.expect("optional accepts a Bearer token");
    assert_eq!(result.tokens.dpop_key, None, "an unbound session keeps no key");
    assert!(result.identity.claims.get("email").is_some(), "userinfo with the Bearer token");
}

/// A bound session whose refresh comes back unbound (the provider stopped binding): with
/// `dpop = true` the refresh is refused; with `"optional"` the session goes on unbound,
/// its key dropped so the new token is presented as Bearer.
#[tokio::test]
async fn an_unbound_refresh_ends_a_required_session_and_unbinds_an_optional_one() {
    let idp = start(MockIdp::builder()).await;
    for mode in [DpopMode::Required, DpopMode::Optional] {
        idp.clear_faults();
        let provider = provider(&idp, mode);
        let session = session_of(login(&provider).await.expect("a bound login"));
        assert!(session.tokens.dpop_key.is_some(), "bound at login");
        idp.set_fault(Fault::DpopUnboundToken);
        let refreshed = provider.refresh(&session).await;
        match mode {
            DpopMode::Required => {
                let message = rejection(refreshed);
                assert!(message.contains("not DPoP-bound"), "{message}");
            }
            _ => {
                let refreshed = refreshed.expect("optional accepts a Bearer refresh");
                assert_eq!(refreshed.tokens.dpop_key, None, "the session goes on unbound");
                assert_ne!(refreshed.tokens.access_token, session.tokens.access_token);
            }
        }
    }
}

#[tokio::test]
async fn the_pushed_request_carries_dpop_jkt() {
    let idp = start(MockIdp::builder()).await;
    let mut config = config(&idp).with_use_par(UsePar::Always);
    config.dpop = DpopMode::Required;
    let provider = OidcProvider::new(&config, &settings()).expect("builds");
    let result = login(&provider).await.expect("login with PAR and DPoP");
    let key = DpopKey::from_stored(result.tokens.dpop_key.as_deref().expect("key")).expect("key");
    let pushed = idp.last_par_params().expect("pushed");
    assert_eq!(pushed.get("dpop_jkt").map(String::as_str), Some(key.thumbprint()));
}

#[tokio::test]
async fn dpop_off_sends_no_proof_and_keeps_no_key() {
    let idp = start(MockIdp::builder()).await;
    let result = login(&provider(&idp, DpopMode::Off)).await.expect("login");
    assert_eq!(result.tokens.dpop_key, None);
    assert!(!idp.last_authorize_params().expect("authorize").contains_key("dpop_jkt"));
    assert_eq!(idp.hits().token, 1);
}

/// What `MockIdp` refuses: a replayed proof, a proof for another URL, a bound token used as
/// a bearer token, a userinfo proof without `ath`.
#[tokio::test]
async fn the_mock_refuses_what_a_dpop_server_must_refuse() {
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp, DpopMode::Required);
    let result = login(&provider).await.expect("login");
    let key = DpopKey::from_stored(result.tokens.dpop_key.as_deref().expect("key")).expect("key");
    let access = result.tokens.access_token.clone().expect("access token");
    let userinfo = format!("{}/userinfo", idp.issuer());
    let http = reqwest::Client::new();
    let ask = |proof: Option<String>, scheme: &str| {
        let mut request = http.get(&userinfo).header("authorization", format!("{scheme} {access}"));
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        request.send()
    };
    // The server's nonce, from a first answer.
    let first =
        ask(Some(key.proof("GET", &userinfo, None, Some(&access)).expect("proof")), "DPoP").await.expect("answers");
    assert_eq!(first.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert!(first.headers()["www-authenticate"].to_str().expect("ascii").contains("use_dpop_nonce"));
    let nonce = first.headers()["dpop-nonce"].to_str().expect("ascii").to_owned();

    let good = key.proof("GET", &userinfo, Some(&nonce), Some(&access)).expect("proof");
    assert_eq!(ask(Some(good.clone()), "DPoP").await.expect("answers").status(), reqwest::StatusCode::OK);
    let replayed = ask(Some(good), "DPoP").await.expect("answers");
    assert_eq!(replayed.status(), reqwest::StatusCode::UNAUTHORIZED, "a jti is good once");
    let elsewhere = key.proof("GET", &format!("{}/token", idp.issuer()), Some(&nonce), Some(&access)).expect("proof");
    assert_eq!(ask(Some(elsewhere), "DPoP").await.expect("answers").status(), reqwest::StatusCode::UNAUTHORIZED);
    let no_ath = key.proof("GET", &userinfo, Some(&nonce), None).expect("proof");
    assert_eq!(ask(Some(no_ath), "DPoP").await.expect("answers").status(), reqwest::StatusCode::UNAUTHORIZED);
    let other_key = DpopKey::generate(auth_core::DpopAlg::Es256).expect("key");
    let stolen = other_key.proof("GET", &userinfo, Some(&nonce), Some(&access)).expect("proof");
    assert_eq!(ask(Some(stolen), "DPoP").await.expect("answers").status(), reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(ask(None, "Bearer").await.expect("answers").status(), reqwest::StatusCode::UNAUTHORIZED, "bound");
}

#[tokio::test]
async fn an_algorithm_the_provider_does_not_offer_names_the_key() {
    let idp = start(MockIdp::builder()).await;
    idp.set_fault(Fault::DiscoveryExtra(serde_json::json!({"dpop_signing_alg_values_supported": ["ES256"]})));
    let mut config = config(&idp);
    config.dpop = DpopMode::Required;
    config.dpop_alg = auth_core::DpopAlg::EdDsa;
    let provider = OidcProvider::new(&config, &settings()).expect("builds");
    match provider.authorize(support::REDIRECT_URI).await {
        Err(auth_core::ProviderError::Other(error)) => {
            let message = error.to_string();
            assert!(message.contains("auth.mock.dpop_alg") && message.contains("EdDSA"), "{message}");
        }
        other => panic!("expected Other, got {other:?}"),
    }
}
