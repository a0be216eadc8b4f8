//! Logout tokens and bearer access tokens through `auth_providers::OidcProvider` (its JWS
//! decoding, header checks, claim checks and signature check are crate-private; this is
//! the public way in), against an in-process `MockIdp` started once per process on
//! loopback: discovery and keys are fetched once, then every check is local.
//!
//! The input's first byte picks a mode:
//! - 0: the rest is a token, as text: both verifications answer without panicking.
//! - 1: the rest is JSON claims, signed by the IdP with its real key as an access token
//!   (`1`, and first bytes whose quarter is even) or a logout token (`5`, ...): whatever passes meets the documented checks (issuer, audience, times,
//!   `sub`; for logout tokens `jti`, the event, no `nonce`, a bounded lifetime). In the
//!   text, `$iss` stands for the IdP's issuer (its port changes every run), `$now` and
//!   `$later` for the time now and in five minutes.
//! - 2, 3: a real, valid token with its header (2) or signature (3) replaced by the rest:
//!   it must no longer verify.
//!
//! ID tokens are not covered: the provider only reads them from its token endpoint's
//! answer during `complete` (see fuzz/README.md).
#![no_main]

use auth_core::{IdentityProvider, ProviderConfig, ProviderError, ProviderKind, Secret, unix_now};
use auth_providers::{OidcProvider, ProviderSettings};
use auth_testkit::{LogoutToken, MockIdp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::OnceLock;

const AUDIENCE: &str = "api://fuzz";
const LEEWAY: u64 = 60;
/// The longest a logout token may live (`exp - iat`), in seconds.
const MAX_LOGOUT_LIFETIME: u64 = 600;

struct Setup {
    runtime: tokio::runtime::Runtime,
    idp: MockIdp,
    provider: OidcProvider,
    access: String,
    logout: String,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a current-thread runtime");
        let idp = runtime.block_on(MockIdp::start()).expect("the mock IdP starts on loopback");
        let config = ProviderConfig::new("mock", ProviderKind::Oidc, idp.client_id(), idp.metadata_url())
            .with_client_secret(Secret::new(idp.client_secret()))
            .with_extra("bearer_audience", serde_json::json!(AUDIENCE));
        let settings = ProviderSettings::default().with_leeway_secs(LEEWAY).with_http_timeout_secs(5);
        let provider = OidcProvider::new(&config, &settings).expect("the provider builds");
        // Long-lived, so that mode 2 and 3 start from tokens that verify for the whole run.
        let now = unix_now();
        let access = idp.sign_jwt(
            Some("at+jwt"),
            serde_json::json!({
                "iss": idp.issuer(), "sub": "alice", "aud": AUDIENCE, "iat": now, "exp": now + 86_400,
            }),
        );
        let lifetime = serde_json::json!(now + MAX_LOGOUT_LIFETIME - 10);
        let logout = idp.logout_token(&LogoutToken::for_subject("alice").claim("exp", lifetime));
        runtime.block_on(async {
            provider.verify_access_token(&access).await.expect("a real access token verifies");
            provider.verify_logout_token(&logout).await.expect("a real logout token verifies");
        });
        Setup { runtime, idp, provider, access, logout }
    })
}

/// Checks an access token's claims that verified.
fn verified_access(setup: &Setup, result: Result<auth_core::BearerIdentity, ProviderError>) {
    let Ok(bearer) = result else { return };
    let claims = &bearer.identity.claims;
    assert_eq!(claims.get("iss").and_then(Value::as_str), Some(setup.idp.issuer().as_str()), "iss");
    assert!(claims.get("sub").and_then(Value::as_str).is_some_and(|s| !s.is_empty()), "sub");
    let aud = match claims.get("aud") {
        Some(Value::String(aud)) => aud == AUDIENCE,
        Some(Value::Array(auds)) => auds.iter().any(|a| a == AUDIENCE),
        _ => false,
    };
    assert!(aud, "aud {:?}", claims.get("aud"));
    let exp = claims.get("exp").and_then(Value::as_f64).expect("a verified exp is a number");
    assert!(exp + LEEWAY as f64 > unix_now() as f64, "expired: {exp}");
    assert_eq!(bearer.expires_at, exp as u64);
}

/// Checks a logout token that verified.
fn verified_logout(result: Result<auth_core::LogoutClaims, ProviderError>) {
    let Ok(claims) = result else { return };
    let named = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    assert!(named(&claims.subject) || named(&claims.sid), "neither sub nor sid");
    assert!(named(&claims.jti), "no jti");
    let until = claims.expires_at.expect("a verified logout token says until when");
    assert!(until <= unix_now() + MAX_LOGOUT_LIFETIME + 2 * LEEWAY + 1, "accepted until {until}");
}

/// `token` with part `index` (0 header, 2 signature) replaced by `part`.
fn replace(token: &str, index: usize, part: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[index] = part;
    parts.join(".")
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let setup = setup();
    let provider = &setup.provider;
    setup.runtime.block_on(async {
        match mode % 4 {
            0 => {
                let token = String::from_utf8_lossy(rest);
                verified_access(setup, provider.verify_access_token(&token).await);
                verified_logout(provider.verify_logout_token(&token).await);
            }
            1 => {
                let now = unix_now();
                let text = String::from_utf8_lossy(rest)
                    .replace("$iss", &setup.idp.issuer())
                    .replace("$now", &now.to_string())
                    .replace("$later", &(now + 300).to_string());
                let Ok(claims @ Value::Object(_)) = serde_json::from_str::<Value>(&text) else { return };
                // One signature per input (RSA signing is most of the time spent here).
                if (mode / 4) % 2 == 0 {
                    let access = setup.idp.sign_jwt(Some("at+jwt"), claims);
                    verified_access(setup, provider.verify_access_token(&access).await);
                } else {
                    let logout = setup.idp.sign_jwt(Some("logout+jwt"), claims);
                    verified_logout(provider.verify_logout_token(&logout).await);
                }
            }
            index => {
                let index = if index == 2 { 0 } else { 2 };
                // As bytes (base64url) or as given (so non-base64url text is tried too).
                let part = match rest.split_first() {
                    Some((0, raw)) => String::from_utf8_lossy(raw).into_owned(),
                    _ => URL_SAFE_NO_PAD.encode(rest),
                };
                for (token, logout) in [(&setup.access, false), (&setup.logout, true)] {
                    let forged = replace(token, index, &part);
                    if forged == *token {
                        continue;
                    }
                    let outcome = if logout {
                        provider.verify_logout_token(&forged).await.map(drop)
                    } else {
                        provider.verify_access_token(&forged).await.map(drop)
                    };
                    assert!(outcome.is_err(), "a token with part {index} replaced verified: {forged}");
                }
            }
        }
    });
});
