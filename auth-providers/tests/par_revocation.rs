//! `OidcProvider` with RFC 9126 pushed authorization requests (`use_par`) and RFC 7009
//! token revocation (`revoke_tokens`, called by the layer at logout) against `MockIdp`:
//! the happy paths, and the faults a real provider cannot be made to show (a PAR endpoint
//! answering 400, 500 or slowly; a revocation endpoint answering 500 or slowly).

mod support;

use auth_core::{IdentityProvider, ProviderError, Session, UsePar};
use auth_providers::{OidcProvider, ProviderSettings};
use auth_testkit::{Fault, MockIdp, MockIdpBuilder};
use std::time::{Duration, Instant};
use support::{REDIRECT_URI, config, login, param, rejection, settings, visit};
use url::Url;

async fn start(builder: MockIdpBuilder) -> MockIdp {
    builder.login_as(Some("alice")).start().await.expect("mock idp starts")
}

fn provider_with(idp: &MockIdp, use_par: UsePar) -> OidcProvider {
    OidcProvider::new(&config(idp).with_use_par(use_par), &settings()).expect("provider builds")
}

fn query_keys(url: &str) -> Vec<String> {
    let url = Url::parse(url).expect("absolute URL");
    url.query_pairs().map(|(k, _)| k.into_owned()).collect()
}

#[tokio::test]
async fn auto_pushes_when_the_provider_requires_it() {
    let idp = start(MockIdp::builder().require_pushed_authorization_requests(true)).await;
    let provider = provider_with(&idp, UsePar::Auto);
    let authorization = provider.authorize(REDIRECT_URI).await.expect("authorize");
    assert!(authorization.url.starts_with(&format!("{}/authorize?", idp.issuer())), "{}", authorization.url);
    assert_eq!(query_keys(&authorization.url), ["client_id", "request_uri"], "{}", authorization.url);
    let url = Url::parse(&authorization.url).expect("url");
    assert!(param(&url, "request_uri").expect("request_uri").starts_with("urn:ietf:params:oauth:request_uri:"));
    let pushed = idp.last_par_params().expect("pushed");
    assert_eq!(pushed.get("state"), Some(&authorization.pending.state));
    assert_eq!(pushed.get("nonce"), authorization.pending.nonce.as_ref());
    assert_eq!(pushed.get("code_challenge_method").map(String::as_str), Some("S256"));
    assert_eq!(pushed.get("client_id").map(String::as_str), Some(idp.client_id()));
    assert_eq!(idp.hits().par, 1);

    // The whole login works, and the request_uri is single use.
    let callback = visit(&authorization.url).await;
    let params = support::callback_params(&callback, &authorization.pending);
    let result = provider.complete(&params, &authorization.pending, REDIRECT_URI).await.expect("login");
    assert_eq!(result.identity.subject, "alice");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let again = client.get(&authorization.url).send().await.expect("answers");
    assert_eq!(again.status(), reqwest::StatusCode::BAD_REQUEST, "a used request_uri is refused");
}

#[tokio::test]
async fn auto_does_not_push_when_the_provider_only_offers_it() {
    let idp = start(MockIdp::builder()).await;
    let provider = provider_with(&idp, UsePar::Auto);
    login(&provider).await.expect("login");
    assert_eq!(idp.hits().par, 0);
    assert!(idp.last_authorize_params().expect("authorize").contains_key("state"));
}

#[tokio::test]
async fn use_par_true_pushes_and_false_does_not() {
    let idp = start(MockIdp::builder()).await;
    login(&provider_with(&idp, UsePar::Always)).await.expect("login with PAR");
    assert_eq!(idp.hits().par, 1);
    assert_eq!(idp.last_authorize_params().expect("authorize").len(), 2, "client_id and request_uri only");

    // Forced off against a provider that requires PAR: the provider refuses the login.
    let strict = start(MockIdp::builder().require_pushed_authorization_requests(true)).await;
    let provider = provider_with(&strict, UsePar::Never);
    let authorization = provider.authorize(REDIRECT_URI).await.expect("authorize");
    let callback = visit(&authorization.url).await;
    assert_eq!(param(&callback, "error").as_deref(), Some("invalid_request"));
    assert_eq!(strict.hits().par, 0);
}

#[tokio::test]
async fn use_par_true_without_an_advertised_endpoint_names_the_key() {
    let idp = start(MockIdp::builder()).await;
    idp.set_fault(Fault::DiscoveryExtra(serde_json::json!({"pushed_authorization_request_endpoint": null})));
    let provider = provider_with(&idp, UsePar::Always);
    match provider.authorize(REDIRECT_URI).await {
        Err(ProviderError::Other(error)) => {
            let message = error.to_string();
            assert!(message.contains("auth.mock.use_par = true"), "{message}");
            assert!(message.contains("pushed_authorization_request_endpoint"), "{message}");
        }
        other => panic!("expected Other, got {other:?}"),
    }
}

#[tokio::test]
async fn par_faults_end_the_login_clearly_and_in_bounded_time() {
    let idp = start(MockIdp::builder().require_pushed_authorization_requests(true)).await;
    let settings = ProviderSettings::default().with_leeway_secs(60).with_http_timeout_secs(1);
    let provider = OidcProvider::new(&config(&idp), &settings).expect("provider");
    provider.authorize(REDIRECT_URI).await.expect("discovery is cached");

    idp.set_fault(Fault::ParError("invalid_request".into()));
    let message = match provider.authorize(REDIRECT_URI).await {
        Err(ProviderError::Rejected(message)) => message,
        other => panic!("expected Rejected, got {other:?}"),
    };
    assert!(message.contains("pushed authorization request was refused (invalid_request"), "{message}");

    idp.set_fault(Fault::ParServerError);
    match provider.authorize(REDIRECT_URI).await {
        Err(ProviderError::Unavailable(message)) => {
            assert!(message.contains("the pushed authorization request") && message.contains("500"), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }

    idp.set_fault(Fault::ParDelay(Duration::from_secs(5)));
    let started = Instant::now();
    match provider.authorize(REDIRECT_URI).await {
        Err(ProviderError::Unavailable(message)) => assert!(message.contains("timed out"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(2500), "bounded by http_timeout_secs: {:?}", started.elapsed());
}

async fn logged_in(provider: &OidcProvider) -> Session {
    let result = login(provider).await.expect("login");
    Session::new(result.identity, result.tokens, 3600)
}

#[tokio::test]
async fn revocation_revokes_the_refresh_token_and_the_refresh_then_fails() {
    // Refresh tokens that are not rotated stay valid until revoked.
    let idp = start(MockIdp::builder().rotate_refresh_tokens(false)).await;
    let provider = provider_with(&idp, UsePar::Auto);
    let session = logged_in(&provider).await;
    provider.refresh(&session).await.expect("the refresh token works");
    assert!(provider.revoke_tokens(&session).await.expect("revoked"));
    assert_eq!(idp.revoked_tokens(), [session.tokens.refresh_token.clone().expect("refresh token")]);
    let message = rejection(provider.refresh(&session).await);
    assert!(message.contains("invalid_grant"), "{message}");

    // Without a refresh token, the access token is revoked.
    let mut session = logged_in(&provider).await;
    session.tokens.refresh_token = None;
    assert!(provider.revoke_tokens(&session).await.expect("revoked"));
    assert_eq!(idp.revoked_tokens().last(), session.tokens.access_token.as_ref());
}

#[tokio::test]
async fn revocation_is_skipped_when_turned_off_or_not_advertised() {
    let idp = start(MockIdp::builder()).await;
    let off = OidcProvider::new(&config(&idp).with_revoke_on_logout(false), &settings()).expect("provider");
    let session = logged_in(&off).await;
    assert!(!off.revoke_tokens(&session).await.expect("nothing to do"));
    idp.set_fault(Fault::DiscoveryExtra(serde_json::json!({"revocation_endpoint": null})));
    let provider = provider_with(&idp, UsePar::Auto);
    let session = logged_in(&provider).await;
    assert!(!provider.revoke_tokens(&session).await.expect("nothing to do"));
    assert_eq!(idp.hits().revocation, 0);
}

#[tokio::test]
async fn revocation_faults_are_errors_in_bounded_time() {
    let idp = start(MockIdp::builder()).await;
    let settings = ProviderSettings::default().with_leeway_secs(60).with_http_timeout_secs(1);
    let provider = OidcProvider::new(&config(&idp), &settings).expect("provider");
    let session = logged_in(&provider).await;
    idp.set_fault(Fault::RevocationServerError);
    match provider.revoke_tokens(&session).await {
        Err(ProviderError::Unavailable(message)) => assert!(message.contains("revocation") && message.contains("500")),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    idp.set_fault(Fault::RevocationDelay(Duration::from_secs(5)));
    let started = Instant::now();
    match provider.revoke_tokens(&session).await {
        Err(ProviderError::Unavailable(message)) => assert!(message.contains("timed out"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(2500), "bounded: {:?}", started.elapsed());
    assert!(idp.revoked_tokens().is_empty());
}
