//! `OidcProvider` against `MockIdp` on loopback: the login flow as a browser drives it
//! (authorize -> follow the redirect -> complete), every ID-token attack the mock can
//! stage, key rotation, outages, timeouts, refresh and logout.

mod support;

use auth_core::{IdentityProvider, LoginOptions, ProviderError, Secret, Session, TokenAuthMethod, unix_now};
use auth_providers::{OidcProvider, ProviderSettings};
use auth_testkit::{Fault, MockIdp, MockIdpBuilder};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{REDIRECT_URI, callback_params, config, login, param, rejection, settings, visit};
use url::Url;

/// A little more than the provider's pause after a failed discovery.
const AFTER_RETRY_PAUSE: Duration = Duration::from_millis(1100);

fn provider(idp: &MockIdp) -> OidcProvider {
    OidcProvider::new(&config(idp), &settings()).expect("provider builds")
}

async fn start(builder: MockIdpBuilder) -> MockIdp {
    builder.login_as(Some("alice")).start().await.expect("mock idp starts")
}

fn unavailable<T: std::fmt::Debug>(result: Result<T, ProviderError>) -> String {
    match result {
        Err(ProviderError::Unavailable(message)) => message,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Logs in once with `fault` active and returns the rejection message.
async fn rejected_with(fault: Fault) -> String {
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp);
    idp.set_fault(fault);
    rejection(login(&provider).await)
}

#[tokio::test]
async fn happy_path_yields_claims_and_tokens() {
    let idp = start(MockIdp::builder()).await;
    let mut config = config(&idp);
    config.client_kwargs.insert("prompt".into(), "login".into());
    config.client_kwargs.insert("login_hint".into(), "alice@example.test".into());
    let provider = OidcProvider::new(&config, &settings()).expect("provider");

    let authorization = provider.authorize(REDIRECT_URI).await.expect("authorize");
    let callback = visit(&authorization.url).await;
    let pending = &authorization.pending;
    let sent = idp.last_authorize_params().expect("authorize params");
    assert_eq!(sent["response_type"], "code");
    assert_eq!(sent["client_id"], idp.client_id());
    assert_eq!(sent["redirect_uri"], REDIRECT_URI);
    assert_eq!(sent["scope"], "openid email profile");
    assert_eq!(sent["state"], pending.state);
    assert_eq!(Some(&sent["nonce"]), pending.nonce.as_ref());
    assert_eq!(sent["code_challenge_method"], "S256");
    assert_eq!(sent["code_challenge"].len(), 43, "a base64url SHA-256");
    assert_eq!(sent["prompt"], "login");
    assert_eq!(sent["login_hint"], "alice@example.test");
    let verifier = pending.pkce_verifier.as_deref().expect("PKCE verifier");
    assert!(verifier.len() >= 43 && !sent.values().any(|v| v == verifier), "the verifier stays secret");

    let params = callback_params(&callback, pending);
    assert_eq!(params.iss.as_deref(), Some(idp.issuer().as_str()));
    let result = provider.complete(&params, pending, REDIRECT_URI).await.expect("login completes");

    let identity = &result.identity;
    assert_eq!(identity.provider, "mock");
    assert_eq!(identity.subject, "alice");
    assert_eq!(identity.claims["sub"], "alice");
    assert_eq!(identity.claims["iss"], idp.issuer());
    assert_eq!(identity.claims["aud"], idp.client_id());
    assert_eq!(identity.claims["email"], "alice@example.test");
    assert_eq!(identity.claims["name"], "Alice Example");
    assert_eq!(
        identity.claims.get("nonce"),
        pending.nonce.as_ref().map(|n| serde_json::Value::from(n.as_str())).as_ref()
    );
    let tokens = &result.tokens;
    assert!(tokens.access_token.is_some() && tokens.refresh_token.is_some());
    assert_eq!(tokens.id_token.as_ref().map(|t| t.split('.').count()), Some(3));
    let expires_at = tokens.expires_at.expect("expires_at");
    assert!(expires_at.abs_diff(unix_now() + 3600) <= 5, "expires_at = now + expires_in");
    assert_eq!(tokens.scope.as_deref(), Some("openid email profile"));

    let hits = idp.hits();
    assert_eq!((hits.discovery, hits.jwks, hits.token, hits.userinfo), (1, 1, 1, 0), "{hits:?}");
}

#[tokio::test]
async fn step_up_options_reach_the_authorization_url() {
    let idp = start(MockIdp::builder()).await;
    let mut config = config(&idp);
    config.client_kwargs.insert("prompt".into(), "select_account".into());
    config.client_kwargs.insert("login_hint".into(), "alice@example.test".into());
    let provider = OidcProvider::new(&config, &settings()).expect("provider");
    let query = |url: &str| -> Vec<(String, String)> {
        Url::parse(url).expect("url").query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    };
    let values = |query: &[(String, String)], name: &str| -> Vec<String> {
        query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    };

    let options = LoginOptions::new().with_max_age(300).with_acr_values(["urn:mfa", "silver"]).with_prompt("login");
    let authorization = provider.authorize_with(REDIRECT_URI, &options).await.expect("authorize");
    let sent = query(&authorization.url);
    assert_eq!(values(&sent, "max_age"), ["300"]);
    assert_eq!(values(&sent, "acr_values"), ["urn:mfa silver"], "space-separated");
    assert_eq!(values(&sent, "prompt"), ["login"], "the option replaces client_kwargs.prompt");
    assert_eq!(values(&sent, "login_hint"), ["alice@example.test"], "other client_kwargs stay");
    assert_eq!(values(&sent, "state"), std::slice::from_ref(&authorization.pending.state));
    // The IdP receives them, and the login completes as usual.
    let callback = visit(&authorization.url).await;
    assert_eq!(idp.last_authorize_params().expect("params")["acr_values"], "urn:mfa silver");
    let params = callback_params(&callback, &authorization.pending);
    provider.complete(&params, &authorization.pending, REDIRECT_URI).await.expect("login completes");

    // Only what is asked is sent; plain `authorize` is `authorize_with` without options.
    let authorization = provider.authorize_with(REDIRECT_URI, &LoginOptions::new().with_acr_values(["gold"])).await;
    let sent = query(&authorization.expect("authorize").url);
    assert_eq!(values(&sent, "acr_values"), ["gold"]);
    assert_eq!(values(&sent, "prompt"), ["select_account"], "client_kwargs.prompt when no prompt is asked");
    assert!(values(&sent, "max_age").is_empty());
    let sent = query(&provider.authorize(REDIRECT_URI).await.expect("authorize").url);
    assert_eq!(values(&sent, "prompt"), ["select_account"]);
    assert!(values(&sent, "max_age").is_empty() && values(&sent, "acr_values").is_empty());
}

#[tokio::test]
async fn client_secret_post_and_a_custom_scope_work() {
    let idp = start(MockIdp::builder()).await;
    let mut config = config(&idp);
    config.token_endpoint_auth_method = TokenAuthMethod::ClientSecretPost;
    config.client_kwargs.insert("scope".into(), "openid email".into());
    let provider = OidcProvider::new(&config, &settings()).expect("provider");
    let result = login(&provider).await.expect("login with client_secret_post");
    assert_eq!(result.identity.subject, "alice");
    assert_eq!(idp.last_authorize_params().expect("params")["scope"], "openid email");
}

#[tokio::test]
async fn a_wrong_client_secret_is_rejected() {
    let idp = start(MockIdp::builder()).await;
    let mut config = config(&idp);
    config.client_secret = Some(Secret::new("not-the-secret"));
    let provider = OidcProvider::new(&config, &settings()).expect("provider");
    let message = rejection(login(&provider).await);
    assert!(message.contains("invalid_client"), "{message}");
    assert!(!message.contains("not-the-secret"), "{message}");
}

#[tokio::test]
async fn userinfo_fills_in_a_minimal_id_token() {
    let idp = start(MockIdp::builder().minimal_id_token(true)).await;
    let result = login(&provider(&idp)).await.expect("login");
    assert_eq!(result.identity.claims["email"], "alice@example.test");
    assert_eq!(result.identity.claims["name"], "Alice Example");
    assert_eq!(result.identity.claims["iss"], idp.issuer(), "ID token claims stay");
    assert_eq!(idp.hits().userinfo, 1);
}

#[tokio::test]
async fn userinfo_about_another_subject_is_rejected() {
    let idp = start(MockIdp::builder().minimal_id_token(true)).await;
    let provider = provider(&idp);
    idp.set_fault(Fault::UserinfoSubMismatch);
    let message = rejection(login(&provider).await);
    assert!(message.contains("userinfo") && message.contains("sub"), "{message}");
}

#[tokio::test]
async fn a_bad_signature_is_rejected() {
    let message = rejected_with(Fault::BadSignature).await;
    assert!(message.contains("signature"), "{message}");
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let message = rejected_with(Fault::AlgNone).await;
    assert!(message.contains("not signed"), "{message}");
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key_is_rejected() {
    let message = rejected_with(Fault::Hs256WithPublicKey).await;
    assert!(message.contains("\"HS256\" is not allowed"), "{message}");
}

#[tokio::test]
async fn a_wrong_issuer_is_rejected() {
    let message = rejected_with(Fault::WrongIssuer).await;
    assert!(message.contains("issuer"), "{message}");
}

#[tokio::test]
async fn a_wrong_audience_is_rejected() {
    let message = rejected_with(Fault::WrongAudience).await;
    assert!(message.contains("audience"), "{message}");
}

#[tokio::test]
async fn a_missing_sub_is_rejected() {
    let message = rejected_with(Fault::MissingSub).await;
    assert!(message.contains("no sub claim"), "{message}");
}

#[tokio::test]
async fn a_missing_iat_is_rejected() {
    let message = rejected_with(Fault::MissingIat).await;
    assert!(message.contains("no iat claim"), "{message}");
}

#[tokio::test]
async fn a_token_expired_beyond_the_leeway_is_rejected() {
    let message = rejected_with(Fault::Expired(Duration::from_secs(120))).await;
    assert!(message.contains("expired"), "{message}");
}

#[tokio::test]
async fn a_token_expired_within_the_leeway_is_accepted() {
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp);
    idp.set_fault(Fault::Expired(Duration::from_secs(10)));
    let result = login(&provider).await.expect("10 s past exp is within the 60 s leeway");
    assert_eq!(result.identity.subject, "alice");
}

#[tokio::test]
async fn a_nonce_mismatch_is_rejected() {
    let message = rejected_with(Fault::WrongNonce).await;
    assert!(message.contains("nonce"), "{message}");
}

#[tokio::test]
async fn claims_azp_and_several_audiences_are_checked() {
    let message = rejected_with(Fault::IdTokenClaims(serde_json::json!({"azp": "someone-else"}))).await;
    assert!(message.contains("azp"), "{message}");
    let message =
        rejected_with(Fault::IdTokenClaims(serde_json::json!({"aud": ["mock-client", "api"], "azp": null}))).await;
    assert!(message.contains("several audiences"), "{message}");

    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp);
    idp.set_fault(Fault::IdTokenClaims(serde_json::json!({"aud": ["mock-client", "api"]})));
    login(&provider).await.expect("several audiences with azp = client id");
}

#[tokio::test]
async fn a_callback_from_another_issuer_is_rejected() {
    let message = rejected_with(Fault::CallbackIssuer("https://attacker.example".into())).await;
    assert!(message.contains("RFC 9207") && message.contains("attacker.example"), "{message}");
}

#[tokio::test]
async fn a_callback_without_iss_is_rejected_when_the_idp_promises_one() {
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp);
    let authorization = provider.authorize(REDIRECT_URI).await.expect("authorize");
    let callback = visit(&authorization.url).await;
    let mut params = callback_params(&callback, &authorization.pending);
    params.iss = None;
    let message = rejection(provider.complete(&params, &authorization.pending, REDIRECT_URI).await);
    assert!(message.contains("lacks the iss parameter"), "{message}");
    assert_eq!(idp.hits().token, 0, "the code is not even exchanged");
}

#[tokio::test]
async fn a_discovery_issuer_mismatch_is_rejected() {
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp);
    idp.set_fault(Fault::DiscoveryIssuerMismatch);
    let message = match provider.authorize(REDIRECT_URI).await {
        Err(ProviderError::Rejected(message)) => message,
        other => panic!("expected Rejected, got {other:?}"),
    };
    assert!(message.contains("discovery issuer \"https://wrong-issuer.invalid\" does not match"), "{message}");
}

#[tokio::test]
async fn a_replayed_code_is_refused() {
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp);
    let authorization = provider.authorize(REDIRECT_URI).await.expect("authorize");
    let callback = visit(&authorization.url).await;
    let params = callback_params(&callback, &authorization.pending);
    provider.complete(&params, &authorization.pending, REDIRECT_URI).await.expect("first use");
    let message = rejection(provider.complete(&params, &authorization.pending, REDIRECT_URI).await);
    assert!(
        message
            .contains("the authorization code was refused (invalid_grant): it may have been used already or expired"),
        "{message}"
    );
}

#[tokio::test]
async fn other_token_errors_are_rejected() {
    let message = rejected_with(Fault::TokenError("unauthorized_client".into())).await;
    assert!(message.contains("unauthorized_client"), "{message}");
}

#[tokio::test]
async fn key_rotation_costs_one_key_fetch_and_refetches_are_rate_limited() {
    // The test's runtime runs on its thread: a recorder local to it sees the refetches.
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp);
    login(&provider).await.expect("first login");
    assert_eq!(idp.hits().jwks, 1);

    idp.rotate_keys();
    login(&provider).await.expect("login after rotation");
    assert_eq!(idp.hits().jwks, 2, "the unknown kid made the provider fetch the keys once more");
    login(&provider).await.expect("a third login");
    assert_eq!(idp.hits().jwks, 2, "known keys are cached");

    // Within 10 s of that refetch, another unknown kid does not reach the IdP.
    idp.rotate_keys();
    for _ in 0..3 {
        let message = rejection(login(&provider).await);
        assert!(message.contains("does not publish"), "{message}");
    }
    assert_eq!(idp.hits().jwks, 2, "refetches are rate limited");
    let refetches: Vec<_> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == auth_core::metrics::JWKS_REFETCHES)
        .map(|(key, _, _, value)| (key.key().labels().map(|l| format!("{}={}", l.key(), l.value())).collect(), value))
        .collect();
    assert_eq!(
        refetches,
        [(vec!["provider=mock".to_owned()], metrics_util::debugging::DebugValue::Counter(1))],
        "the refetch is counted, the rate-limited ones are not"
    );
}

#[tokio::test]
async fn a_token_without_kid_is_accepted_when_one_key_fits() {
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp);
    idp.set_fault(Fault::NoKid);
    let result = login(&provider).await.expect("no kid, one key");
    assert_eq!(result.identity.subject, "alice");
}

#[tokio::test]
async fn an_idp_that_is_not_listening_is_unavailable_until_it_is_back() {
    let idp = start(MockIdp::builder()).await;
    let port = idp.port();
    let config = config(&idp);
    idp.stop().await;

    // The provider builds while the IdP is down; the login fails cleanly.
    let provider = OidcProvider::new(&config, &settings()).expect("builds offline");
    let message = unavailable(provider.authorize(REDIRECT_URI).await);
    assert!(message.contains(&format!("127.0.0.1:{port}")) && message.contains("could not connect"), "{message}");

    let idp = start(MockIdp::builder().port(port)).await;
    tokio::time::sleep(AFTER_RETRY_PAUSE).await;
    login(&provider).await.expect("works once the IdP is back");
    assert_eq!(idp.hits().discovery, 1);
}

#[tokio::test]
async fn a_failing_idp_is_unavailable_and_asked_once_per_second() {
    let idp = start(MockIdp::builder()).await;
    let provider = Arc::new(provider(&idp));
    idp.set_fault(Fault::Unavailable);

    let mut storm = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let provider = Arc::clone(&provider);
        storm.spawn(async move { provider.authorize(REDIRECT_URI).await });
    }
    while let Some(result) = storm.join_next().await {
        let message = unavailable(result.expect("task"));
        assert!(message.contains("503"), "{message}");
    }
    assert_eq!(idp.hits().discovery, 1, "concurrent logins share one discovery attempt");

    idp.clear_faults();
    tokio::time::sleep(AFTER_RETRY_PAUSE).await;
    login(&provider).await.expect("works once the IdP recovers");
}

/// Waits (up to 5 s) until `idp` has served at least `discovery` discovery and `jwks` key
/// set requests, then a little longer, for the background refetch to store its answer;
/// returns the hits then.
async fn hits_reach(idp: &MockIdp, discovery: usize, jwks: usize) -> auth_testkit::Hits {
    let deadline = Instant::now() + Duration::from_secs(5);
    while (idp.hits().discovery < discovery || idp.hits().jwks < jwks) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    idp.hits()
}

/// A provider of `idp` whose discovery and keys grow old after `ttl_secs`, accepting
/// bearer tokens for `api://test` (so keys can be used without a login).
fn aging_provider(idp: &MockIdp, ttl_secs: u64) -> OidcProvider {
    let config = config(idp).with_extra("bearer_audience", serde_json::json!("api://test"));
    OidcProvider::new(&config, &settings().with_metadata_ttl_secs(ttl_secs)).expect("provider")
}

#[tokio::test]
async fn discovery_and_keys_are_refetched_once_after_their_ttl() {
    let idp = start(MockIdp::builder()).await;
    let provider = Arc::new(aging_provider(&idp, 2));
    login(&provider).await.expect("first login");
    login(&provider).await.expect("second login");
    assert_eq!((idp.hits().discovery, idp.hits().jwks), (1, 1), "fresh copies are used as they are");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut storm = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let provider = Arc::clone(&provider);
        storm.spawn(async move { provider.authorize(REDIRECT_URI).await });
    }
    while let Some(result) = storm.join_next().await {
        result.expect("task").expect("the old copy answers at once");
    }
    let hits = hits_reach(&idp, 2, 1).await;
    assert_eq!(hits.discovery, 2, "ten requests past the TTL cost exactly one refetch");

    login(&provider).await.expect("a login with old keys");
    hits_reach(&idp, 2, 2).await;
    login(&provider).await.expect("a login with the refetched keys");
    let hits = idp.hits();
    assert_eq!((hits.discovery, hits.jwks), (2, 2), "one key refetch too, and nothing fetched while fresh");
}

#[tokio::test]
async fn keys_the_idp_withdrew_stop_working_after_the_ttl() {
    let idp = start(MockIdp::builder()).await;
    let provider = aging_provider(&idp, 1);
    let old = idp.access_token_for("alice", "api://test", "read");
    provider.verify_access_token(&old).await.expect("signed with the published key");

    // The IdP withdraws the key (its JWKS now serves only the next one).
    idp.rotate_keys();
    let new = idp.access_token_for("alice", "api://test", "read");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    provider.verify_access_token(&old).await.expect("past the TTL, the old copy answers while it is refetched");
    hits_reach(&idp, 2, 2).await;
    let message = match provider.verify_access_token(&old).await {
        Err(ProviderError::Rejected(message)) => message,
        other => panic!("a withdrawn key must not verify after the refetch, got {other:?}"),
    };
    assert!(message.contains("does not publish"), "{message}");
    provider.verify_access_token(&new).await.expect("the new key verifies");
}

#[tokio::test]
async fn an_idp_down_after_the_ttl_leaves_the_old_copies_in_use() {
    let idp = start(MockIdp::builder()).await;
    let provider = aging_provider(&idp, 1);
    let token = idp.access_token_for("alice", "api://test", "read");
    provider.verify_access_token(&token).await.expect("verified");
    assert_eq!((idp.hits().discovery, idp.hits().jwks), (1, 1));

    idp.set_fault(Fault::Unavailable);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..5 {
        provider.verify_access_token(&token).await.expect("the old copies still verify");
    }
    hits_reach(&idp, 2, 2).await;
    for _ in 0..5 {
        provider.verify_access_token(&token).await.expect("also after the refetch failed");
    }
    let hits = idp.hits();
    assert_eq!((hits.discovery, hits.jwks), (2, 2), "one attempt each, not one per request: {hits:?}");

    // Retried later: after the failure memory, the next request tries again.
    tokio::time::sleep(AFTER_RETRY_PAUSE).await;
    provider.verify_access_token(&token).await.expect("still the old copies");
    let hits = hits_reach(&idp, 3, 3).await;
    assert_eq!((hits.discovery, hits.jwks), (3, 3));

    // Once the IdP is back, a refetch succeeds and the copies are fresh again.
    idp.clear_faults();
    tokio::time::sleep(AFTER_RETRY_PAUSE).await;
    provider.verify_access_token(&token).await.expect("verified");
    hits_reach(&idp, 4, 4).await;
    provider.verify_access_token(&token).await.expect("verified");
    assert_eq!((idp.hits().discovery, idp.hits().jwks), (4, 4), "renewed, then fresh");
}

#[tokio::test]
async fn a_token_endpoint_outage_is_unavailable() {
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp);
    let authorization = provider.authorize(REDIRECT_URI).await.expect("authorize");
    let callback = visit(&authorization.url).await;
    let params = callback_params(&callback, &authorization.pending);
    idp.set_fault(Fault::Unavailable);
    let message = unavailable(provider.complete(&params, &authorization.pending, REDIRECT_URI).await);
    assert!(message.contains("the token request") && message.contains("503"), "{message}");
}

#[tokio::test]
async fn a_slow_idp_times_out() {
    let idp = start(MockIdp::builder()).await;
    let settings = ProviderSettings::default().with_leeway_secs(60).with_http_timeout_secs(1);
    let provider = OidcProvider::new(&config(&idp), &settings).expect("provider");

    // Discovery.
    idp.set_fault(Fault::Delay(Duration::from_secs(5)));
    let started = Instant::now();
    let message = unavailable(provider.authorize(REDIRECT_URI).await);
    assert!(started.elapsed() < Duration::from_millis(2500), "bounded: {:?}", started.elapsed());
    assert!(message.contains("timed out"), "{message}");

    // The token endpoint, once discovery is cached.
    idp.clear_faults();
    tokio::time::sleep(AFTER_RETRY_PAUSE).await;
    let authorization = provider.authorize(REDIRECT_URI).await.expect("authorize");
    let callback = visit(&authorization.url).await;
    let params = callback_params(&callback, &authorization.pending);
    idp.set_fault(Fault::Delay(Duration::from_secs(5)));
    let started = Instant::now();
    let message = unavailable(provider.complete(&params, &authorization.pending, REDIRECT_URI).await);
    assert!(started.elapsed() < Duration::from_millis(2500), "bounded: {:?}", started.elapsed());
    assert!(message.contains("the token request") && message.contains("timed out"), "{message}");
}

#[tokio::test]
async fn refresh_rotates_tokens_and_keeps_the_identity() {
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp);
    let first = login(&provider).await.expect("login");
    let session = Session::new(first.identity.clone(), first.tokens.clone(), 3600);

    let refreshed = provider.refresh(&session).await.expect("refresh");
    assert_eq!(refreshed.identity.subject, "alice");
    assert_eq!(refreshed.identity.claims["email"], "alice@example.test");
    assert!(!refreshed.identity.claims.contains_key("nonce"), "a refreshed token's claims carry no old nonce");
    assert_ne!(refreshed.tokens.access_token, first.tokens.access_token);
    assert_ne!(refreshed.tokens.id_token, first.tokens.id_token);
    assert!(refreshed.tokens.refresh_token.is_some());
    assert_ne!(refreshed.tokens.refresh_token, first.tokens.refresh_token, "the rotated refresh token is returned");
    assert_eq!(idp.hits().token, 2);

    // The spent refresh token is refused: the session should end.
    let message = rejection(provider.refresh(&session).await);
    assert!(message.contains("invalid_grant"), "{message}");
}

#[tokio::test]
async fn a_refresh_about_another_subject_is_rejected() {
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp);
    let first = login(&provider).await.expect("login");
    let session = Session::new(first.identity, first.tokens, 3600);
    idp.set_fault(Fault::IdTokenClaims(serde_json::json!({"sub": "mallory"})));
    let message = rejection(provider.refresh(&session).await);
    assert!(message.contains("another subject"), "{message}");
}

/// Logs in and returns the session, as the layer keeps it.
async fn logged_in(provider: &OidcProvider) -> Session {
    let result = login(provider).await.expect("login");
    Session::new(result.identity, result.tokens, 3600)
}

#[tokio::test]
async fn refresh_errors_other_than_invalid_grant_keep_the_session() {
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp);
    let session = logged_in(&provider).await;
    for error in ["invalid_client", "unauthorized_client", "invalid_request", "invalid_scope", "server_error"] {
        idp.set_fault(Fault::TokenError(error.into()));
        let message = unavailable(provider.refresh(&session).await);
        assert!(
            message.contains("the token request") && message.contains("400") && message.contains(error),
            "{message}"
        );
        assert!(message.contains("to the refresh"), "{message}");
    }
    idp.set_fault(Fault::Unavailable);
    assert!(unavailable(provider.refresh(&session).await).contains("503"));
    idp.clear_faults();
    provider.refresh(&session).await.expect("the refresh token survived the provider's trouble");
}

#[tokio::test]
async fn invalid_grant_on_refresh_ends_the_session_and_login_stays_strict() {
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp);
    let session = logged_in(&provider).await;
    idp.set_fault(Fault::TokenError("invalid_grant".into()));
    let message = rejection(provider.refresh(&session).await);
    assert!(message.contains("the refresh token was refused (invalid_grant)"), "{message}");

    // At login, every refusal of the code fails the login.
    for error in ["invalid_client", "unauthorized_client", "invalid_grant"] {
        idp.set_fault(Fault::TokenError(error.into()));
        assert!(rejection(login(&provider).await).contains(error));
    }
}

/// A token endpoint that answers every request with `status`, `content_type` and `body`.
async fn fixed_token_endpoint(status: &'static str, content_type: &'static str, body: &'static str) -> Url {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = Url::parse(&format!("http://{}/token", listener.local_addr().expect("addr"))).expect("url");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            // Read the request (headers, then the form body) before answering.
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut chunk).await {
                request.extend_from_slice(&chunk[..n]);
                if is_complete(&request) {
                    break;
                }
            }
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nLocation: http://127.0.0.1/login\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    url
}

/// Whether `request` holds the whole HTTP request: its headers and `Content-Length` bytes.
fn is_complete(request: &[u8]) -> bool {
    let text = String::from_utf8_lossy(request);
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    body.len() >= length
}

#[tokio::test]
async fn redirects_and_waf_pages_on_refresh_keep_the_session() {
    let idp = start(MockIdp::builder()).await;
    let session = logged_in(&provider(&idp)).await;
    let cases = [
        ("302 Found", "text/html", "<a href=/login>login</a>", Some("302")),
        ("302 Found", "application/json", r#"{"error":"invalid_grant"}"#, Some("302")),
        ("401 Unauthorized", "application/json", r#"{"error":"invalid_client","error_description":"bad"}"#, None),
        ("403 Forbidden", "text/html", "<h1>Request blocked</h1>", Some("403")),
        ("400 Bad Request", "text/html", "<h1>Bad request</h1>", Some("400")),
        ("404 Not Found", "text/plain", "not found", Some("404")),
    ];
    for (status, content_type, body, shown) in cases {
        let endpoint = fixed_token_endpoint(status, content_type, body).await;
        idp.set_fault(Fault::DiscoveryExtra(serde_json::json!({"token_endpoint": endpoint.as_str()})));
        // A fresh provider reads the discovery document that names the fixed endpoint.
        let message = unavailable(provider(&idp).refresh(&session).await);
        assert!(message.contains(shown.unwrap_or("invalid_client")), "{status}: {message}");
    }
    let endpoint = fixed_token_endpoint("400 Bad Request", "application/json", r#"{"error":"invalid_grant"}"#).await;
    idp.set_fault(Fault::DiscoveryExtra(serde_json::json!({"token_endpoint": endpoint.as_str()})));
    assert!(rejection(provider(&idp).refresh(&session).await).contains("invalid_grant"), "only this ends it");
}

#[tokio::test]
async fn a_discovery_document_refused_at_refresh_keeps_the_session() {
    let idp = start(MockIdp::builder()).await;
    let session = logged_in(&provider(&idp)).await;
    idp.set_fault(Fault::DiscoveryIssuerMismatch);
    let message = unavailable(provider(&idp).refresh(&session).await);
    assert!(message.contains("issuer"), "{message}");
}

#[tokio::test]
async fn end_session_url_carries_the_logout_parameters() {
    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp);
    let result = login(&provider).await.expect("login");
    let id_token = result.tokens.id_token.clone().expect("id token");
    let session = Session::new(result.identity, result.tokens, 3600);

    let url = provider
        .end_session_url(&session, "http://localhost:3000/", "logout-state")
        .await
        .expect("metadata")
        .expect("the mock offers RP-initiated logout");
    let url = Url::parse(&url).expect("url");
    assert_eq!(url.as_str().split('?').next(), Some(format!("{}/end_session", idp.issuer()).as_str()));
    assert_eq!(param(&url, "id_token_hint"), Some(id_token));
    assert_eq!(param(&url, "client_id").as_deref(), Some(idp.client_id()));
    assert_eq!(param(&url, "post_logout_redirect_uri").as_deref(), Some("http://localhost:3000/"));
    assert_eq!(param(&url, "state").as_deref(), Some("logout-state"));

    let without = start(MockIdp::builder().end_session(false)).await;
    let provider = self::provider(&without);
    assert_eq!(provider.end_session_url(&session, "http://localhost:3000/", "s").await.expect("metadata"), None);
}

#[tokio::test]
async fn logs_name_the_provider_and_hold_no_secret() {
    let (captured, _guard) = auth_testkit::capture_logs("auth_providers=trace");

    let idp = start(MockIdp::builder()).await;
    let provider = provider(&idp);
    let authorization = provider.authorize(REDIRECT_URI).await.expect("authorize");
    let callback = visit(&authorization.url).await;
    let params = callback_params(&callback, &authorization.pending);
    let result = provider.complete(&params, &authorization.pending, REDIRECT_URI).await.expect("login");
    let session = Session::new(result.identity.clone(), result.tokens.clone(), 3600);
    let refreshed = provider.refresh(&session).await.expect("refresh");
    let replayed = provider.complete(&params, &authorization.pending, REDIRECT_URI).await;
    assert!(replayed.is_err());

    let logs = captured.text();
    assert!(logs.contains("discovery document loaded") && logs.contains("mock"), "{logs}");
    assert!(logs.contains("succeeded") && logs.contains("failed"), "{logs}");
    let pending = &authorization.pending;
    let secrets = [
        Some(idp.client_secret().to_owned()),
        Some(params.code.clone()),
        Some(pending.state.clone()),
        pending.nonce.clone(),
        pending.pkce_verifier.clone(),
        result.tokens.access_token.clone(),
        result.tokens.id_token.clone(),
        result.tokens.refresh_token.clone(),
        refreshed.tokens.access_token.clone(),
        refreshed.tokens.refresh_token.clone(),
    ];
    for secret in secrets.iter().flatten() {
        assert!(!logs.contains(secret.as_str()), "a secret leaked into the logs:\n{logs}");
    }
}
