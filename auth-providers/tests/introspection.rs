//! Opaque bearer access tokens checked by RFC 7662 token introspection against `MockIdp`:
//! accepted with the answer's claims and a short trust, refused when inactive, revoked,
//! for another audience or without an endpoint, `Unavailable` when the provider is down,
//! and the request authenticated as the client.

mod support;

use auth_core::{IdentityProvider, ProviderError, unix_now};
use auth_providers::{OidcProvider, ProviderSettings};
use auth_testkit::{Fault, MockIdp};
use serde_json::json;
use support::{config, login, settings};

const AUDIENCE: &str = "api://introspected";

async fn idp(audience: &str) -> MockIdp {
    MockIdp::builder().login_as(Some("alice")).introspection_audience(audience).start().await.expect("idp starts")
}

/// `idp`'s provider with `introspection = true` for `AUDIENCE`.
fn provider(idp: &MockIdp) -> OidcProvider {
    let config = config(idp).with_extra("bearer_audience", json!(AUDIENCE)).with_extra("introspection", json!(true));
    OidcProvider::new(&config, &settings()).expect("provider builds")
}

/// An opaque access token from `idp`'s token endpoint, by a login through `provider`.
async fn opaque_token(provider: &OidcProvider) -> String {
    let login = login(provider).await.expect("login works");
    let token = login.tokens.access_token.expect("an access token");
    assert_eq!(token.split('.').count(), 1, "the mock's access tokens are opaque");
    token
}

fn rejected(result: Result<auth_core::BearerIdentity, ProviderError>) -> String {
    match result {
        Err(ProviderError::Rejected(message)) => message,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn an_active_token_is_accepted_with_the_answers_claims_for_a_minute() {
    let idp = idp(AUDIENCE).await;
    let provider = provider(&idp);
    assert!(provider.accepts_opaque_tokens() && provider.accepts_bearer_tokens());
    let token = opaque_token(&provider).await;
    idp.reset_hits();
    let now = unix_now();
    let bearer = provider.verify_access_token(&token).await.expect("active token accepted");
    assert_eq!(idp.hits().introspect, 1);
    assert_eq!(bearer.identity.provider, "mock");
    assert_eq!(bearer.identity.subject, "alice");
    assert_eq!(bearer.identity.claims["client_id"], idp.client_id());
    assert_eq!(bearer.identity.claims["aud"], AUDIENCE);
    assert_eq!(bearer.identity.claims["iss"], idp.issuer());
    assert!(bearer.identity.claims["scope"].as_str().is_some_and(|s| s.contains("openid")));
    assert!(
        bearer.expires_at >= now + 59 && bearer.expires_at <= unix_now() + 60,
        "trusted for 60 s, not the hour the token lives: {} vs {now}",
        bearer.expires_at
    );

    // Revoked at the provider: the next introspection says inactive.
    idp.revoke_access_tokens();
    let message = rejected(provider.verify_access_token(&token).await);
    assert!(message.starts_with("mock: the provider says the access token is not active"), "{message}");
    assert!(!message.contains(&token), "never the token: {message}");
}

#[tokio::test]
async fn unknown_tokens_and_other_audiences_are_refused() {
    let idp = idp("api://someone-else").await;
    let provider = provider(&idp);
    let message = rejected(provider.verify_access_token("not-a-token-the-idp-issued").await);
    assert!(message.contains("not active"), "{message}");
    let token = opaque_token(&provider).await;
    let message = rejected(provider.verify_access_token(&token).await);
    assert!(message.contains("audience [\"api://someone-else\"] names none of bearer_audience"), "{message}");
    // JWTs still take the local path: no introspection for them.
    idp.reset_hits();
    let jwt = idp.access_token_for("alice", AUDIENCE, "read");
    provider.verify_access_token(&jwt).await.expect("a JWT access token is verified locally");
    assert_eq!(idp.hits().introspect, 0);
}

#[tokio::test]
async fn without_an_advertised_endpoint_opaque_tokens_are_refused() {
    let idp = idp(AUDIENCE).await;
    idp.set_fault(Fault::DiscoveryExtra(json!({"introspection_endpoint": null})));
    let provider = provider(&idp);
    let message = rejected(provider.verify_access_token("opaque").await);
    assert!(message.contains("advertises no introspection_endpoint"), "{message}");
    assert_eq!(idp.hits().introspect, 0);

    // Without `introspection = true`, an opaque token is refused as a malformed JWT.
    let plain = OidcProvider::new(&config(&idp).with_extra("bearer_audience", json!(AUDIENCE)), &settings())
        .expect("provider builds");
    assert!(!plain.accepts_opaque_tokens());
    assert!(rejected(plain.verify_access_token("opaque").await).contains("three dot-separated parts"));
}

#[tokio::test]
async fn a_provider_that_is_down_is_unavailable() {
    let idp = idp(AUDIENCE).await;
    let provider = provider(&idp);
    let token = opaque_token(&provider).await;
    idp.set_fault(Fault::Unavailable);
    match provider.verify_access_token(&token).await {
        Err(ProviderError::Unavailable(message)) => assert!(message.contains("HTTP 503"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn the_introspection_request_is_client_authenticated() {
    let idp = idp(AUDIENCE).await;
    let token = opaque_token(&provider(&idp)).await;
    // client_secret_post works as client_secret_basic does (the default above).
    let mut post = config(&idp).with_extra("bearer_audience", json!(AUDIENCE)).with_extra("introspection", json!(true));
    post.token_endpoint_auth_method = auth_core::TokenAuthMethod::ClientSecretPost;
    let post = OidcProvider::new(&post, &settings()).expect("provider builds");
    post.verify_access_token(&token).await.expect("client_secret_post authenticates");

    // A wrong secret: the mock answers 401 invalid_client; the token was not judged.
    let wrong = config(&idp)
        .with_client_secret(auth_core::Secret::new("wrong"))
        .with_extra("bearer_audience", json!(AUDIENCE))
        .with_extra("introspection", json!(true));
    let wrong = OidcProvider::new(&wrong, &ProviderSettings::default()).expect("provider builds");
    match wrong.verify_access_token(&token).await {
        Err(ProviderError::Unavailable(message)) => {
            assert!(message.contains("the introspection request") && message.contains("HTTP 401"), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn introspection_needs_bearer_audience() {
    let idp = idp(AUDIENCE).await;
    let error = OidcProvider::new(&config(&idp).with_extra("introspection", json!(true)), &settings())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.starts_with("`auth.mock.introspection` needs bearer_audience"), "{error}");
}
