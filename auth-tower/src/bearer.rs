//! API clients: `Authorization: Bearer <JWT>` access tokens instead of a session cookie.
//!
//! When one of the layer's providers accepts bearer tokens (`bearer_audience` in its
//! section), a request with a bearer token is authenticated by the token alone: the
//! provider named by the token's `iss` verifies it (signature with its cached keys, `iss`,
//! `aud`, times), the request gets a [`User`](auth_core::User) built from the token's
//! claims ([`AuthMethod::Bearer`](auth_core::AuthMethod::Bearer)), and no cookie is read
//! or written. A verified token is cached by its exact value until its `exp`, so a
//! client repeating its token costs one signature check, not one per request. A token
//! that fails gets `401` with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750),
//! never the anonymous user; a gRPC client gets `UNAUTHENTICATED`.
//!
//! A token that is not a JWT with an `iss` (an opaque token) goes to the first provider
//! that [accepts opaque tokens](auth_core::IdentityProvider::accepts_opaque_tokens)
//! (`introspection = true`), which asks its RFC 7662 introspection endpoint; the answer is
//! cached like a verified JWT, but for a minute at most (the provider's `expires_at`), so a
//! token revoked at the provider stops working within a minute; a refused one is remembered
//! for a minute ([`Refusals`]). Without such a provider an opaque token gets `invalid_token`.
//!
//! Without any provider that accepts bearer tokens, `Authorization` headers are left to the
//! app.

use crate::page::{Page, grpc, json};
use crate::require::ClientKind;
use crate::state::Shared;
use auth_core::{ProviderError, Session, TokenSet, unix_now};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use std::sync::Arc;

/// The largest bearer token read (larger ones are refused unread): JWT access tokens of
/// the largest providers are a few kilobytes.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// What a request's `Authorization` header holds, for the bearer path.
pub(crate) enum Credentials<'h> {
    /// No `Authorization` header, or another scheme (`Basic`, ...): the cookie path runs.
    None,
    /// A bearer token's bytes, not yet checked (a cache hit needs no check: only tokens that
    /// passed are cached); [`token_text`] checks them.
    Bearer(&'h [u8]),
    /// A bearer header that cannot be read (no token, two headers, not text, too long).
    Malformed(&'static str),
}

/// Reads the `Authorization` header of `headers`.
pub(crate) fn credentials(headers: &HeaderMap) -> Credentials<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Credentials::None };
    let bytes = value.as_bytes();
    let is_bearer =
        bytes.len() >= 6 && bytes[..6].eq_ignore_ascii_case(b"bearer") && bytes.get(6).is_none_or(|b| *b == b' ');
    if !is_bearer {
        return Credentials::None;
    }
    if values.next().is_some() {
        return Credentials::Malformed("send one Authorization header");
    }
    if bytes.len() > MAX_TOKEN_LEN + 7 {
        return Credentials::Malformed("the bearer token is too large");
    }
    let token = bytes[6..].trim_ascii();
    if token.is_empty() { Credentials::Malformed("the bearer token is malformed") } else { Credentials::Bearer(token) }
}

/// `token` as text when it is an RFC 6750 `b64token` (letters, digits and `-._~+/`, then
/// `=` padding), for a token the cache does not know.
pub(crate) fn token_text(token: &[u8]) -> Result<&str, &'static str> {
    let body = token.iter().rposition(|b| *b != b'=').map_or(&token[..0], |end| &token[..=end]);
    let ok = !body.is_empty() && body.iter().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(b));
    match std::str::from_utf8(token) {
        Ok(text) if ok => Ok(text),
        _ => Err("the bearer token is malformed"),
    }
}

/// The `iss` claim of a JWT, read without verifying anything: only to pick the provider
/// that will verify it. `None` when the token is not a JWT with a string `iss`.
fn unverified_issuer(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Issuer {
        iss: Option<String>,
    }
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    let json = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Issuer>(&json).ok()?.iss
}

/// How many refused opaque tokens [`Refusals`] remembers.
const REFUSALS_MAX: usize = 4096;

/// Opaque tokens the introspecting provider refused lately, so a client repeating one (an
/// expired or revoked token, retried in a loop) costs the provider one request a minute,
/// not one per request. An introspection refusal is final (RFC 7662: an inactive token does
/// not become active), so remembering it for a minute changes no answer. Held
/// by fingerprint (keyed SipHash of the token: another token cannot be made to collide
/// without the process's key), at most [`REFUSALS_MAX`]; JWT refusals are not kept (they
/// cost no request). Distinct made-up tokens each still cost one request.
///
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    key: std::hash::RandomState,
    /// Fingerprint to when it may be asked about again (Unix seconds).
    until: std::sync::Mutex<std::collections::HashMap<u64, u64>>,
}

impl Refusals {
    /// How long a refusal is remembered: as long as an answer is trusted.
    const TTL_SECS: u64 = 60;

    fn fingerprint(&self, token: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.key, token)
    }

    /// Whether the provider refused `token` less than [`Self::TTL_SECS`] before `now`.
    pub(crate) fn refused(&self, token: &str, now: u64) -> bool {
        let until = self.until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        !until.is_empty() && until.get(&self.fingerprint(token)).is_some_and(|until| *until > now)
    }

    /// Remembers that the provider refused `token` at `now`. When full, the expired go,
    /// then (still full) one arbitrary entry.
    pub(crate) fn remember(&self, token: &str, now: u64) {
        let fingerprint = self.fingerprint(token);
        let mut until = self.until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if until.len() >= REFUSALS_MAX && !until.contains_key(&fingerprint) {
            until.retain(|_, until| *until > now);
            if until.len() >= REFUSALS_MAX
                && let Some(victim) = until.keys().next().copied()
            {
                until.remove(&victim);
            }
        }
        until.insert(fingerprint, now + Self::TTL_SECS);
    }
}

/// The session a verified bearer `token` stands for, from the cache or from its provider;
/// `Err` is the response refusing the request (for a client of `kind`).
pub(crate) async fn authenticate(shared: Arc<Shared>, token: String, kind: ClientKind) -> Result<Arc<Session>, Page> {
    let now = unix_now();
    if let Some(session) = shared.bearer_cache.get(&token, now) {
        return Ok(session);
    }
    let issuer = unverified_issuer(&token);
    let opaque = issuer.is_none();
    let provider = match issuer {
        Some(issuer) => shared.providers.iter().find(|p| p.accepts_bearer_from(&issuer)).ok_or_else(|| {
            tracing::debug!("a bearer token from an issuer no provider accepts");
            invalid_token(kind, "the bearer token's issuer is not trusted here")
        })?,
        // An opaque token names no issuer: the provider that introspects them checks it.
        None => shared
            .providers
            .iter()
            .find(|p| p.accepts_opaque_tokens())
            .ok_or_else(|| invalid_token(kind, "the bearer token is not a JWT with an issuer"))?,
    };
    if opaque && shared.bearer_refusals.refused(&token, now) {
        tracing::debug!("an opaque bearer token the provider refused lately");
        return Err(invalid_token(kind, "the bearer token is not valid"));
    }
    match provider.verify_access_token(&token).await {
        Ok(verified) => {
            let mut identity = verified.identity;
            provider.name().clone_into(&mut identity.provider);
            let session = Arc::new(Session::starting_at(identity, TokenSet::default(), now, verified.expires_at));
            if session.is_expired_at(now) {
                return Err(invalid_token(kind, "the bearer token has expired"));
            }
            shared.bearer_cache.insert(&token, Arc::clone(&session));
            Ok(session)
        }
        Err(ProviderError::Unavailable(error)) => {
            tracing::warn!(%error, "a bearer token cannot be verified now");
            Err(match kind {
                ClientKind::Grpc => grpc(14, "the identity provider cannot be reached now"),
                _ => json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({
                        "error": "temporarily_unavailable",
                        "error_description": "the identity provider cannot be reached now (keys or introspection); try again",
                    }),
                ),
            })
        }
        Err(error) => {
            tracing::info!(%error, "bearer token refused");
            if opaque {
                shared.bearer_refusals.remember(&token, now);
            }
            Err(invalid_token(kind, "the bearer token is not valid"))
        }
    }
}

/// `401` with `WWW-Authenticate: Bearer error="invalid_token"`, or `UNAUTHENTICATED` for
/// gRPC. `description` is the layer's own words, never the token or the provider's detail.
pub(crate) fn invalid_token(kind: ClientKind, description: &str) -> Page {
    refuse(kind, "invalid_token", description)
}

/// `401` with `WWW-Authenticate: Bearer error="invalid_request"` for a malformed header.
pub(crate) fn invalid_request(kind: ClientKind, description: &str) -> Page {
    refuse(kind, "invalid_request", description)
}

fn refuse(kind: ClientKind, error: &str, description: &str) -> Page {
    if kind == ClientKind::Grpc {
        return grpc(16, description);
    }
    let mut response =
        json(StatusCode::UNAUTHORIZED, &serde_json::json!({ "error": error, "error_description": description }));
    let challenge = format!("Bearer error=\"{error}\", error_description=\"{description}\"");
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn reads_bearer_credentials() {
        assert!(matches!(credentials(&HeaderMap::new()), Credentials::None));
        assert!(matches!(credentials(&header("Basic YWxhZGRpbjpvcGVuc2VzYW1l")), Credentials::None));
        assert!(matches!(credentials(&header("Bearerish x")), Credentials::None));
        assert!(matches!(credentials(&header("Bearer abc.def.ghi")), Credentials::Bearer(b"abc.def.ghi")));
        assert!(matches!(credentials(&header("bearer  abc.def-_~+/=")), Credentials::Bearer(b"abc.def-_~+/=")));
        for bad in ["Bearer", "Bearer "] {
            assert!(matches!(credentials(&header(bad)), Credentials::Malformed(_)), "{bad}");
        }
        assert_eq!(token_text(b"abc.def-_~+/=="), Ok("abc.def-_~+/=="));
        for bad in [&b"a b"[..], b"<script>", b"a=b", b"=", b"", b"a\xff"] {
            assert!(token_text(bad).is_err(), "{bad:?}");
        }
        let mut two = header("Bearer a.b.c");
        two.append(AUTHORIZATION, HeaderValue::from_static("Bearer d.e.f"));
        assert!(matches!(credentials(&two), Credentials::Malformed(_)));
        let mut huge = HeaderMap::new();
        let value = format!("Bearer {}", "a".repeat(100 * 1024));
        huge.insert(AUTHORIZATION, HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("x")));
        assert!(matches!(credentials(&huge), Credentials::Malformed("the bearer token is too large")));
    }

    #[test]
    fn refusals_are_remembered_for_a_minute_and_bounded() {
        let refusals = Refusals::default();
        assert!(!refusals.refused("revoked", 1000));
        refusals.remember("revoked", 1000);
        assert!(refusals.refused("revoked", 1000));
        assert!(refusals.refused("revoked", 1000 + Refusals::TTL_SECS - 1));
        assert!(!refusals.refused("revoked", 1000 + Refusals::TTL_SECS), "asked again after a minute");
        assert!(!refusals.refused("another", 1000));

        for i in 0..REFUSALS_MAX + 10 {
            refusals.remember(&format!("made-up-{i}"), 2000);
        }
        let held = refusals.until.lock().map(|until| until.len()).unwrap_or_default();
        assert!(held <= REFUSALS_MAX, "{held}");
        assert!(refusals.refused(&format!("made-up-{}", REFUSALS_MAX + 9), 2000), "the newest is kept");
    }

    #[test]
    fn reads_the_issuer_without_trusting_it() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://idp.example","aud":"x"}"#);
        assert_eq!(unverified_issuer(&format!("e30.{payload}.sig")).as_deref(), Some("https://idp.example"));
        assert_eq!(unverified_issuer("not-a-jwt"), None);
        assert_eq!(unverified_issuer("a.!!!.c"), None);
        let no_iss = URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#);
        assert_eq!(unverified_issuer(&format!("e30.{no_iss}.sig")), None);
    }
}
