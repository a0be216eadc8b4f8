//! `OidcProvider::verify_logout_token` against `MockIdp`: back-channel logout tokens signed
//! with the provider's real key, required `jti` and `exp`, and the lifetime cap (the layer refuses replays).
//!
//! The tokens are minted with `MockIdp::sign_jwt` from claims spelled out here, so that
//! these tests say exactly what they send.

mod support;

use auth_core::{IdentityProvider, LogoutClaims, ProviderError, unix_now};
use auth_providers::OidcProvider;
use auth_testkit::{BACKCHANNEL_LOGOUT_EVENT, LogoutToken, MockIdp};
use serde_json::{Value, json};
use support::{config, settings};

async fn start() -> (MockIdp, OidcProvider) {
    let idp = MockIdp::start().await.expect("mock idp starts");
    let provider = OidcProvider::new(&config(&idp), &settings()).expect("provider builds");
    (idp, provider)
}

/// A correct logout token's claims for `sub` with this `jti`, `extra` merged in (a `null`
/// value removes the claim).
fn claims(idp: &MockIdp, jti: &str, extra: Value) -> Value {
    let now = unix_now();
    let mut claims = json!({
        "iss": idp.issuer(), "aud": idp.client_id(), "iat": now, "exp": now + 120, "jti": jti,
        "sub": "alice", "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    });
    if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        for (key, value) in extra {
            if value.is_null() {
                claims.remove(&key);
            } else {
                claims.insert(key, value);
            }
        }
    }
    claims
}

fn sign(idp: &MockIdp, jti: &str, extra: Value) -> String {
    idp.sign_jwt(Some("logout+jwt"), claims(idp, jti, extra))
}

fn refusal(result: Result<LogoutClaims, ProviderError>) -> String {
    match result {
        Err(ProviderError::Rejected(message)) => message,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

/// The provider verifies; the layer refuses replays (after it ended the sessions), so the
/// result carries the `jti` and until when the token is accepted.
#[tokio::test]
async fn a_verified_logout_token_carries_its_jti_and_end() {
    let (idp, provider) = start().await;
    let token = sign(&idp, "jti-1", json!({}));
    let claims = provider.verify_logout_token(&token).await.expect("verified");
    assert_eq!((claims.subject.as_deref(), claims.sid.as_deref()), (Some("alice"), None));
    assert_eq!(claims.jti.as_deref(), Some("jti-1"));
    let until = claims.expires_at.expect("an end");
    assert!(until > unix_now() && until <= unix_now() + 600 + 60, "exp plus leeway: {until}");
}

#[tokio::test]
async fn jti_and_exp_are_required_and_the_lifetime_is_capped() {
    let (idp, provider) = start().await;
    let now = unix_now();
    let cases = [
        (json!({"jti": null}), "no jti"),
        (json!({"exp": null}), "no exp"),
        (json!({"exp": now + 3600}), "more than the 600 s allowed"),
        (json!({"iat": now - 1200, "exp": now + 60}), "more than the 600 s allowed"),
    ];
    for (i, (extra, expected)) in cases.into_iter().enumerate() {
        let token = sign(&idp, &format!("jti-{i}"), extra.clone());
        let message = refusal(provider.verify_logout_token(&token).await);
        assert!(message.contains(expected), "{extra}: {message}");
    }
    let ten_minutes = sign(&idp, "jti-long", json!({"exp": now + 600}));
    provider.verify_logout_token(&ten_minutes).await.expect("a token valid for 10 minutes passes");
}

#[tokio::test]
async fn the_testkit_default_logout_token_passes() {
    let (idp, provider) = start().await;
    let token = idp.logout_token(&LogoutToken::for_subject("alice"));
    provider.verify_logout_token(&token).await.expect("the testkit's default token has jti and exp");
}
