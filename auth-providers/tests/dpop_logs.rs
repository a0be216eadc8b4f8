//! DPoP with an Ed25519 key (`dpop_alg = "EdDSA"`), and what the logs show of it: never the
//! key. A test binary of its own, so that no other test registers the log callsites first.

mod support;

use auth_core::{DpopKey, DpopMode, IdentityProvider, Session};
use auth_providers::OidcProvider;
use auth_testkit::MockIdp;
use support::{config, login, settings};

fn session_of(result: auth_core::LoginResult) -> Session {
    Session::new(result.identity, result.tokens, 3600)
}

#[tokio::test]
async fn an_eddsa_key_works_and_no_log_line_shows_a_key() {
    let (logs, _guard) = auth_testkit::capture_logs("trace");
    let idp =
        MockIdp::builder().dpop(true).dpop_nonce_required(true).login_as(Some("alice")).start().await.expect("starts");
    let mut config = config(&idp);
    config.dpop = DpopMode::Required;
    config.dpop_alg = auth_core::DpopAlg::EdDsa;
    let provider = OidcProvider::new(&config, &settings()).expect("builds");
    let result = login(&provider).await.expect("login with an Ed25519 key");
    let stored = result.tokens.dpop_key.clone().expect("key");
    assert_eq!(DpopKey::from_stored(&stored).expect("key").alg(), auth_core::DpopAlg::EdDsa);
    let refreshed = provider.refresh(&session_of(result)).await.expect("refresh");
    assert_eq!(refreshed.tokens.dpop_key.as_deref(), Some(stored.as_str()));
    let text = logs.text();
    assert!(text.contains("retried with the provider's DPoP nonce"), "{text}");
    let secret = stored.split_once('.').expect("alg.key").1;
    assert!(!text.contains(secret), "a log line shows the key: {text}");
}
