//! Bearer access tokens (RFC 9068) against `MockIdp`: the token an API receives, every
//! forgery the verifier must refuse, the shared key cache, and which provider a token's
//! issuer picks (`accepts_bearer_from`).

mod support;

use auth_core::{BearerIdentity, IdentityProvider, ProviderError, ProviderKind, unix_now};
use auth_providers::OidcProvider;
use auth_testkit::{Fault, MockIdp, MockUser};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;
use support::{config, preset_config, settings};

const AUDIENCE: &str = "api://test";

async fn start() -> MockIdp {
    MockIdp::start().await.expect("mock idp starts")
}

/// The generic provider of `idp`, accepting bearer tokens for `AUDIENCE`.
fn provider(idp: &MockIdp) -> OidcProvider {
    let config = config(idp).with_extra("bearer_audience", json!(AUDIENCE));
    OidcProvider::new(&config, &settings()).expect("provider builds")
}

/// Valid access-token claims for `alice` at `idp`, with the members of `extra` set (a
/// `null` member removes the claim).
fn claims(idp: &MockIdp, extra: Value) -> Value {
    let now = unix_now();
    let mut claims = json!({
        "iss": idp.issuer(), "sub": "alice", "aud": AUDIENCE, "client_id": idp.client_id(),
        "iat": now, "nbf": now, "exp": now + 300, "scope": "read",
    });
    if let (Some(map), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        for (key, value) in extra {
            if value.is_null() {
                map.remove(&key);
            } else {
                map.insert(key, value);
            }
        }
    }
    claims
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The JSON of one part (0 header, 1 payload) of `token`.
fn part(token: &str, index: usize) -> Value {
    let text = token.split('.').nth(index).expect("part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).expect("base64url")).expect("json")
}

/// `token` with another header (payload and signature kept).
fn with_header(token: &str, header: &Value) -> String {
    let (_, rest) = token.split_once('.').expect("a JWT");
    format!("{}.{rest}", b64(header))
}

async fn refused(provider: &OidcProvider, token: &str) -> String {
    match provider.verify_access_token(token).await {
        Err(ProviderError::Rejected(message)) => {
            assert!(message.starts_with(&format!("{}: ", provider.name())), "names the provider: {message}");
            assert!(!message.contains(token), "never the token: {message}");
            message
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

async fn verified(provider: &OidcProvider, token: &str) -> BearerIdentity {
    match provider.verify_access_token(token).await {
        Ok(bearer) => bearer,
        Err(error) => panic!("expected a verified token, got {error}"),
    }
}

#[tokio::test]
async fn a_valid_token_names_its_subject_claims_and_expiry() {
    let idp = start().await;
    let provider = provider(&idp);
    let token = idp.access_token_for("alice", AUDIENCE, "read write");
    assert_eq!(part(&token, 0)["typ"], "at+jwt");

    let bearer = verified(&provider, &token).await;
    let identity = &bearer.identity;
    assert_eq!(identity.provider, "mock");
    assert_eq!(identity.subject, "alice");
    assert_eq!(identity.claims["scope"], "read write");
    assert_eq!(identity.claims["aud"], AUDIENCE);
    assert_eq!(identity.claims["client_id"], idp.client_id());
    assert_eq!(identity.claims["email"], "alice@example.test", "every claim of the token");
    assert_eq!(Some(bearer.expires_at), part(&token, 1)["exp"].as_u64());
    assert!(bearer.expires_at > unix_now());
    let hits = idp.hits();
    assert_eq!((hits.discovery, hits.jwks, hits.token, hits.userinfo), (1, 1, 0, 0), "{hits:?}");

    // The keys are cached: more tokens cost no request.
    verified(&provider, &token).await;
    verified(&provider, &idp.access_token_for("alice", AUDIENCE, "read")).await;
    let hits = idp.hits();
    assert_eq!((hits.discovery, hits.jwks), (1, 1), "{hits:?}");
}

#[tokio::test]
async fn access_token_types_and_a_list_of_audiences_are_accepted() {
    let idp = start().await;
    let provider = provider(&idp);
    for typ in [Some("at+jwt"), Some("application/at+jwt"), Some("AT+JWT"), Some("JWT"), None] {
        verified(&provider, &idp.sign_jwt(typ, claims(&idp, json!({})))).await;
    }
    let several = claims(&idp, json!({"aud": ["https://other.example", AUDIENCE]}));
    verified(&provider, &idp.sign_jwt(Some("at+jwt"), several)).await;
}

#[tokio::test]
async fn other_token_types_are_refused() {
    let idp = start().await;
    let provider = provider(&idp);
    for typ in ["logout+jwt", "dpop+jwt", "secevent+jwt"] {
        let message = refused(&provider, &idp.sign_jwt(Some(typ), claims(&idp, json!({})))).await;
        assert!(message.contains("neither at+jwt nor JWT"), "{typ}: {message}");
    }
}

#[tokio::test]
async fn a_changed_signature_is_refused() {
    let idp = start().await;
    let provider = provider(&idp);
    let token = idp.access_token_for("alice", AUDIENCE, "read");
    let (signing_input, signature) = token.rsplit_once('.').expect("a JWT");
    let mut signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    signature[10] ^= 0x01;
    let forged = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(&signature));
    let message = refused(&provider, &forged).await;
    assert!(message.contains("the access token's signature is not valid"), "{message}");

    // So is a payload changed under a valid signature.
    let (header, rest) = token.split_once('.').expect("a JWT");
    let (_, signature) = rest.split_once('.').expect("a JWT");
    let elevated = format!("{header}.{}.{signature}", b64(&claims(&idp, json!({"scope": "admin"}))));
    let message = refused(&provider, &elevated).await;
    assert!(message.contains("signature is not valid"), "{message}");
}

#[tokio::test]
async fn alg_none_is_refused() {
    let idp = start().await;
    let provider = provider(&idp);
    let unsigned = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "at+jwt"})), b64(&claims(&idp, json!({}))));
    let message = refused(&provider, &unsigned).await;
    assert!(message.contains("the access token is not signed (alg \"none\")"), "{message}");
    assert_eq!(idp.hits().jwks, 0, "refused before any key is needed");
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key_is_refused() {
    let idp = start().await;
    let provider = provider(&idp);
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": idp.current_kid()});
    let signing_input = format!("{}.{}", b64(&header), b64(&claims(&idp, json!({}))));
    let mut mac = Hmac::<Sha256>::new_from_slice(idp.public_key_pem().as_bytes()).expect("any key length");
    mac.update(signing_input.as_bytes());
    let forged = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    let message = refused(&provider, &forged).await;
    assert!(message.contains("\"HS256\" is not allowed"), "{message}");
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let idp = start().await;
    let provider = provider(&idp);
    let token = idp.sign_jwt(Some("at+jwt"), claims(&idp, json!({"iss": "https://evil.example"})));
    let message = refused(&provider, &token).await;
    assert!(message.contains("issuer \"https://evil.example\", which this provider does not trust"), "{message}");
    assert_eq!(idp.hits().discovery, 0, "a foreign issuer costs no request");
    // Close to the issuer is not the issuer: the exact comparison after discovery.
    let token = idp.sign_jwt(Some("at+jwt"), claims(&idp, json!({"iss": format!("{}/", idp.issuer())})));
    let message = refused(&provider, &token).await;
    assert!(message.contains(&format!("is not \"{}\"", idp.issuer())), "{message}");
    let token = idp.sign_jwt(Some("at+jwt"), claims(&idp, json!({"iss": null})));
    assert!(refused(&provider, &token).await.contains("no iss claim"));
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let idp = start().await;
    let provider = provider(&idp);
    let message = refused(&provider, &idp.access_token_for("alice", "api://other", "read")).await;
    assert!(message.contains("names none of bearer_audience [\"api://test\"]"), "{message}");
    // An ID token is for the client, not for the API.
    let id_token = idp.sign_id_token(claims(&idp, json!({"aud": idp.client_id(), "nonce": "n"})));
    let message = refused(&provider, &id_token).await;
    assert!(message.contains("names none of bearer_audience"), "{message}");
    let token = idp.sign_jwt(Some("at+jwt"), claims(&idp, json!({"aud": null})));
    assert!(refused(&provider, &token).await.contains("no aud claim"));
}

#[tokio::test]
async fn times_and_subject_are_checked_with_leeway() {
    let idp = start().await;
    let provider = provider(&idp);
    let now = unix_now();
    let cases = [
        (json!({"exp": now - 120}), "s ago, beyond the 60 s leeway"),
        (json!({"exp": null}), "no exp claim"),
        (json!({"nbf": now + 600}), "(nbf)"),
        (json!({"iat": now + 600}), "issued in the future"),
        (json!({"sub": null}), "no sub claim"),
    ];
    for (extra, expected) in cases {
        let message = refused(&provider, &idp.sign_jwt(Some("at+jwt"), claims(&idp, extra.clone()))).await;
        assert!(message.contains(expected), "{extra}: {message}");
    }
    // Within the 60 s leeway.
    let lenient = claims(&idp, json!({"exp": now - 10, "nbf": now + 10, "iat": now + 10}));
    let bearer = verified(&provider, &idp.sign_jwt(Some("at+jwt"), lenient)).await;
    assert_eq!(bearer.expires_at, now - 10);
}

#[tokio::test]
async fn an_unknown_key_is_fetched_once_then_refused() {
    let idp = start().await;
    let provider = provider(&idp);
    let token = idp.access_token_for("alice", AUDIENCE, "read");
    verified(&provider, &token).await;
    assert_eq!(idp.hits().jwks, 1);

    let mut header = part(&token, 0);
    header["kid"] = json!("nobody-publishes-this");
    let forged = with_header(&token, &header);
    let message = refused(&provider, &forged).await;
    assert!(message.contains("signed with a key the provider does not publish"), "{message}");
    assert_eq!(idp.hits().jwks, 2, "the unknown kid made the provider fetch the keys once more");
    for _ in 0..3 {
        refused(&provider, &forged).await;
    }
    assert_eq!(idp.hits().jwks, 2, "refetches are rate limited");
}

#[tokio::test]
async fn a_rotated_key_is_fetched_and_shared_with_logins() {
    let idp = start().await;
    let provider = provider(&idp);
    verified(&provider, &idp.access_token_for("alice", AUDIENCE, "read")).await;
    idp.rotate_keys();
    verified(&provider, &idp.access_token_for("alice", AUDIENCE, "read")).await;
    assert_eq!(idp.hits().jwks, 2, "one fetch for the new kid");
    // The ID-token verification of a login uses the same, fresh key set.
    idp.login_as(Some("alice"));
    support::login(&provider).await.expect("login with the rotated key");
    assert_eq!(idp.hits().jwks, 2, "the login found the key in the shared cache");
}

#[tokio::test]
async fn keys_that_cannot_be_fetched_are_unavailable() {
    let idp = start().await;
    let provider = provider(&idp);
    verified(&provider, &idp.access_token_for("alice", AUDIENCE, "read")).await;
    idp.rotate_keys();
    idp.set_fault(Fault::Unavailable);
    match provider.verify_access_token(&idp.access_token_for("alice", AUDIENCE, "read")).await {
        Err(ProviderError::Unavailable(message)) => assert!(message.contains("key set"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_of_another_provider_is_refused() {
    let a = start().await;
    let b = start().await;
    let provider_a = provider(&a);
    let provider_b = provider(&b);
    let token = a.access_token_for("alice", AUDIENCE, "read");
    assert!(provider_a.accepts_bearer_from(&a.issuer()));
    assert!(!provider_b.accepts_bearer_from(&a.issuer()), "B does not claim A's tokens");
    assert!(provider_b.accepts_bearer_from(&b.issuer()));
    let message = refused(&provider_b, &token).await;
    assert!(message.contains(&format!("issuer \"{}\", which this provider does not trust", a.issuer())), "{message}");
    verified(&provider_a, &token).await;
    assert_eq!(b.hits().discovery, 0, "B never asked its IdP about A's token");
}

#[tokio::test]
async fn oversized_tokens_are_refused_unread() {
    let idp = start().await;
    let provider = provider(&idp);
    let padded = idp.sign_jwt(Some("at+jwt"), claims(&idp, json!({"pad": "x".repeat(100_000)})));
    assert!(padded.len() > 100_000);
    let message = refused(&provider, &padded).await;
    assert!(message.contains("longer than 16384 bytes"), "{message}");

    let many: Vec<String> = (0..10_000).map(|i| format!("api://other-{i}")).collect();
    let message = refused(&provider, &idp.sign_jwt(Some("at+jwt"), claims(&idp, json!({"aud": many})))).await;
    assert!(message.contains("longer than 16384 bytes"), "{message}");
    assert_eq!((idp.hits().discovery, idp.hits().jwks), (0, 0), "no request for a token refused by its size");

    // Short enough to pass the size bound, an audience list still is not searched.
    let mut many: Vec<String> = (0..1_000).map(|i| format!("a{i}")).collect();
    many.push(AUDIENCE.into());
    let message = refused(&provider, &idp.sign_jwt(Some("at+jwt"), claims(&idp, json!({"aud": many})))).await;
    assert!(message.contains("names 1001 audiences, more than the 64"), "{message}");
    assert_eq!(idp.hits().jwks, 0, "refused before its signature is checked");
}

#[tokio::test]
async fn without_bearer_audience_no_token_is_accepted() {
    let idp = start().await;
    let provider = OidcProvider::new(&config(&idp), &settings()).expect("provider builds");
    assert!(!provider.accepts_bearer_from(&idp.issuer()));
    let token = idp.access_token_for("alice", AUDIENCE, "read");
    assert!(matches!(provider.verify_access_token(&token).await, Err(ProviderError::Unsupported(_))));
    assert_eq!(idp.hits().discovery, 0);
}

#[tokio::test]
async fn accepts_bearer_from_needs_no_network() {
    let idp = start().await;
    let config = config(&idp).with_extra("bearer_audience", json!(AUDIENCE));
    let port = idp.port();
    let issuer = idp.issuer();
    idp.stop().await;
    let provider = OidcProvider::new(&config, &settings()).expect("builds offline");
    assert!(provider.accepts_bearer_from(&issuer), "known from the metadata URL");
    assert!(!provider.accepts_bearer_from(&format!("http://127.0.0.1:{port}/other")));
}

#[tokio::test]
async fn google_tokens_may_name_the_issuer_without_its_scheme() {
    let idp = start().await;
    let extra = json!({"bearer_audience": AUDIENCE});
    let google = OidcProvider::new(&preset_config(&idp, "google", ProviderKind::Google, extra), &settings())
        .expect("provider builds");
    let bare = format!("127.0.0.1:{}", idp.port());
    assert!(google.accepts_bearer_from(&bare) && google.accepts_bearer_from(&idp.issuer()));
    let bearer = verified(&google, &idp.sign_jwt(Some("JWT"), claims(&idp, json!({"iss": bare})))).await;
    assert_eq!(bearer.identity.provider, "google");
}

// -------------------------------------------------------------------------- Microsoft

const TENANT_A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
const TENANT_B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";

/// Entra ID's `common` endpoint: each user's tokens name the user's tenant.
async fn entra() -> MockIdp {
    MockIdp::builder()
        .path("/common/v2.0")
        .issuer_template("/{tenantid}/v2.0", "tid")
        .user(MockUser::new("ada-sub").claim("tid", json!(TENANT_A)).claim("oid", json!("oid-ada")))
        .user(MockUser::new("bob-sub").claim("tid", json!(TENANT_B)).claim("oid", json!("oid-bob")))
        .start()
        .await
        .expect("mock idp")
}

fn microsoft(idp: &MockIdp, extra: Value) -> OidcProvider {
    OidcProvider::new(&preset_config(idp, "microsoft", ProviderKind::Microsoft, extra), &settings())
        .expect("provider builds")
}

fn tenant_issuer(idp: &MockIdp, tenant: &str) -> String {
    format!("http://127.0.0.1:{}/{tenant}/v2.0", idp.port())
}

#[tokio::test]
async fn microsoft_tokens_follow_the_tenant_template_and_allowed_tenants() {
    let idp = entra().await;
    let open = microsoft(&idp, json!({"bearer_audience": AUDIENCE}));
    let ada = idp.access_token_for("ada-sub", AUDIENCE, "read");
    assert_eq!(part(&ada, 1)["iss"], tenant_issuer(&idp, TENANT_A));
    let bearer = verified(&open, &ada).await;
    assert_eq!(bearer.identity.subject, format!("{TENANT_A}:oid-ada"), "tid:oid, as at login");
    assert_eq!(bearer.identity.claims["sub"], "ada-sub");
    verified(&open, &idp.access_token_for("bob-sub", AUDIENCE, "read")).await;
    assert!(open.accepts_bearer_from(&tenant_issuer(&idp, TENANT_B)));
    assert!(!open.accepts_bearer_from(&tenant_issuer(&idp, "{tenantid}")));
    assert!(!open.accepts_bearer_from(&tenant_issuer(&idp, "common")));

    let only_a = microsoft(&idp, json!({"bearer_audience": AUDIENCE, "allowed_tenants": [TENANT_A]}));
    assert!(only_a.accepts_bearer_from(&tenant_issuer(&idp, TENANT_A)));
    assert!(!only_a.accepts_bearer_from(&tenant_issuer(&idp, TENANT_B)));
    verified(&only_a, &ada).await;
    let message = refused(&only_a, &idp.access_token_for("bob-sub", AUDIENCE, "read")).await;
    assert!(message.contains("does not trust"), "{message}");

    // A token whose iss names tenant A but whose tid says B fails the exact issuer.
    let mixed = idp.sign_jwt(
        Some("at+jwt"),
        json!({"iss": tenant_issuer(&idp, TENANT_A), "tid": TENANT_B, "oid": "o", "sub": "s", "aud": AUDIENCE,
               "exp": unix_now() + 300}),
    );
    let message = refused(&open, &mixed).await;
    assert!(message.contains(&format!("is not \"{}\"", tenant_issuer(&idp, TENANT_B))), "{message}");
}
