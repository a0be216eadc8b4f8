//! RFC 9068 JWT access tokens: verifying an `Authorization: Bearer` token the provider
//! issued for this app's API (the section's `bearer_audience`).
//!
//! An access token is not an ID token: its audience is the API rather than this client,
//! it carries no `nonce` and needs no `azp`. What it shares with ID and logout tokens is
//! the trust anchor, so it uses the same pieces from [`id_token`](super::id_token): the
//! provider's one cached key set (fetched again once for an unknown `kid`, rate-limited,
//! by the provider), the algorithm allow-list
//! ([`ALLOWED_ALGS`](super::id_token::ALLOWED_ALGS): asymmetric only, never
//! `none`, never `HS*`, so an HMAC keyed with the public key does not pass) and the
//! signature check with the one key that fits `kid` and `alg` ([`check_signature`]).
//!
//! Anyone on the network can send a bearer token, so the work is bounded before anything
//! is decoded: a token over [`MAX_TOKEN_BYTES`] is refused unread, and an `aud` list of
//! more than [`MAX_AUDIENCES`] entries is refused rather than searched. Claims are checked
//! before the signature, so a token that would fail anyway never makes the provider fetch
//! its key set again.
//!
//! The `typ` header: `at+jwt` and `application/at+jwt` (RFC 9068), `JWT`, or none at all
//! (RFC 7515 makes `typ` optional; it then means a plain JWT) are accepted, in any case,
//! because Entra ID, Keycloak and Okta issue access tokens typed `JWT` or untyped. Any other
//! `typ` (`logout+jwt`, `dpop+jwt`, ...) is refused. As plain JWTs pass, an ID token whose
//! `aud` is a bearer audience would pass too: give the API an audience of its own rather
//! than the client id where the provider allows it.
//!
//! Required: `iss` (the issuer the preset expects, see
//! [`Profile::token_issuer`](crate::profile::Profile::token_issuer)), `aud` (a string or a
//! list naming one of the bearer audiences), `exp` (not past by more than the leeway) and
//! `sub`. Checked when present: `nbf` and `iat` (not in the future beyond the leeway).
//! RFC 9068's `client_id`, `jti` and `iat` are not required, since Entra ID v1.0 app tokens
//! and other issuers omit some of them; they stay in the claims for the app's policies.

use super::id_token::{Keys, Refusal, check_signature, decode_jws, signing_alg};
use super::token::clip;
use auth_core::Claims;
use chrono::Utc;
use openidconnect::core::CoreJwsSigningAlgorithm;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// Longer tokens are refused before they are decoded. Access tokens with many roles and
/// groups stay within a few kilobytes; Entra ID caps its own at 200 groups.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// An `aud` list longer than this is refused instead of searched, so that a forged token
/// with thousands of audiences costs no more than a normal one.
pub(crate) const MAX_AUDIENCES: usize = 64;

/// How messages name the token.
const WHAT: &str = "access token";

/// The `typ` headers an access token may carry (compared ignoring case).
const ACCEPTED_TYPES: [&str; 3] = ["at+jwt", "application/at+jwt", "JWT"];

/// What an access token must say to be accepted.
#[derive(Debug)]
pub(crate) struct Expected<'a> {
    /// The exact `iss`.
    pub(crate) issuer: &'a str,
    /// `bearer_audience`: `aud` must name one of them.
    pub(crate) audiences: &'a [String],
    pub(crate) leeway: Duration,
}

/// An access token whose shape and header passed: decoded once, then checked against the
/// claims the provider expects and against its keys. `Debug` does not show the token.
pub(crate) struct AccessToken<'a> {
    raw: &'a str,
    header: Claims,
    alg: CoreJwsSigningAlgorithm,
    claims: Claims,
}

impl fmt::Debug for AccessToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken").field("header", &self.header).finish_non_exhaustive()
    }
}

impl<'a> AccessToken<'a> {
    /// Decodes `raw` (nothing verified yet) and checks its size and header: at most
    /// [`MAX_TOKEN_BYTES`], three base64url parts of JSON, an allowed `alg`, an access
    /// token's `typ`, no `crit`.
    pub(crate) fn parse(raw: &'a str) -> Result<Self, String> {
        if raw.len() > MAX_TOKEN_BYTES {
            return Err(format!("the access token is longer than {MAX_TOKEN_BYTES} bytes"));
        }
        let (header, claims) = decode_jws(raw, WHAT)?;
        let alg = signing_alg(&header, WHAT)?;
        match header.get("typ") {
            None => {}
            Some(Value::String(typ)) if ACCEPTED_TYPES.iter().any(|t| typ.eq_ignore_ascii_case(t)) => {}
            Some(typ) => {
                let typ = typ.as_str().map_or_else(|| typ.to_string(), clip);
                return Err(format!("the access token's typ header {typ:?} is neither at+jwt nor JWT"));
            }
        }
        if header.contains_key("crit") {
            return Err("the access token has a crit header, which is not supported".into());
        }
        Ok(Self { raw, header, alg, claims })
    }

    /// The `iss` claim, *not verified*: only to tell which provider and issuer to verify
    /// the token against.
    pub(crate) fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    /// Every claim, *not verified* until [`check_claims`](Self::check_claims) and
    /// [`check_signature`](Self::check_signature) have passed.
    pub(crate) fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The claims, once the caller has checked them and the signature.
    pub(crate) fn into_claims(self) -> Claims {
        self.claims
    }

    /// Checks `iss`, `sub`, `aud`, `exp`, `nbf` and `iat` (see the module docs) and
    /// returns `exp` in Unix seconds.
    pub(crate) fn check_claims(&self, expected: &Expected<'_>) -> Result<u64, String> {
        match self.claims.get("iss") {
            Some(Value::String(iss)) if iss == expected.issuer => {}
            Some(Value::String(iss)) => {
                return Err(format!("the access token's issuer {:?} is not {:?}", clip(iss), expected.issuer));
            }
            _ => return Err("the access token has no iss claim (a string is required)".into()),
        }
        if !matches!(self.claims.get("sub"), Some(Value::String(sub)) if !sub.is_empty()) {
            return Err("the access token has no sub claim (a string is required)".into());
        }
        check_audience(self.claims.get("aud"), expected.audiences)?;

        let now = Utc::now().timestamp() as f64;
        let leeway = expected.leeway.as_secs_f64();
        let time = |claim: &str| -> Result<Option<f64>, String> {
            match self.claims.get(claim) {
                None => Ok(None),
                Some(value) => {
                    value.as_f64().map(Some).ok_or_else(|| format!("the access token's {claim} claim is not a number"))
                }
            }
        };
        let Some(exp) = time("exp")? else {
            return Err("the access token has no exp claim (a number is required)".into());
        };
        if exp + leeway <= now {
            return Err(format!(
                "the access token expired {:.0} s ago, beyond the {leeway:.0} s leeway (check the clocks if this repeats)",
                now - exp
            ));
        }
        if let Some(nbf) = time("nbf")?
            && nbf > now + leeway
        {
            return Err(format!(
                "the access token is not valid for another {:.0} s (nbf), beyond the {leeway:.0} s leeway",
                nbf - now
            ));
        }
        if let Some(iat) = time("iat")?
            && iat > now + leeway
        {
            return Err("the access token was issued in the future (check the clocks if this repeats)".into());
        }
        // Positive here (it is after now - leeway); `as` saturates anyway.
        Ok(exp as u64)
    }

    /// The signature, with the one key of `keys` that fits the token's `kid` and `alg`;
    /// [`Refusal::UnknownKey`] when none does (the key set may be stale).
    pub(crate) fn check_signature(&self, keys: &Keys) -> Result<(), Refusal> {
        check_signature(self.raw, &self.header, &self.alg, keys, WHAT)
    }

    /// The `kid` header, shortened, for messages.
    pub(crate) fn key_id(&self) -> Option<String> {
        self.header.get("kid").and_then(Value::as_str).map(clip)
    }
}

/// `aud` (a string, or a list of at most [`MAX_AUDIENCES`] entries) names one of `audiences`.
pub(crate) fn check_audience(aud: Option<&Value>, audiences: &[String]) -> Result<(), String> {
    let accepted = |aud: &str| audiences.iter().any(|a| a == aud);
    let fits = match aud {
        Some(Value::String(aud)) => accepted(aud),
        Some(Value::Array(list)) if list.len() > MAX_AUDIENCES => {
            return Err(format!(
                "the access token names {} audiences, more than the {MAX_AUDIENCES} this provider reads",
                list.len()
            ));
        }
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(accepted),
        _ => return Err("the access token has no aud claim (a string or a list is required)".into()),
    };
    if fits {
        return Ok(());
    }
    let named: Vec<String> = match aud {
        Some(Value::String(aud)) => vec![clip(aud)],
        Some(Value::Array(list)) => {
            list.iter().take(4).map(|a| a.as_str().map_or_else(|| a.to_string(), clip)).collect()
        }
        _ => Vec::new(),
    };
    Err(format!("the access token's audience {named:?} names none of bearer_audience {audiences:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::id_token::ALLOWED_ALGS;
    use crate::oidc::id_token::tests::{merged, unsigned};
    use serde_json::json;

    const ISSUER: &str = "https://idp.example";

    fn audiences() -> Vec<String> {
        vec!["api://one".into(), "https://api.example/".into()]
    }

    fn claims(extra: Value) -> Value {
        let now = Utc::now().timestamp();
        let base = json!({"iss": ISSUER, "sub": "alice", "aud": "api://one", "exp": now + 300, "iat": now, "nbf": now});
        merged(base, extra)
    }

    fn rs(typ: Option<&str>) -> Value {
        let mut header = json!({"alg": "RS256", "kid": "k1"});
        if let Some(typ) = typ {
            header["typ"] = typ.into();
        }
        header
    }

    /// Parses and checks the claims, as the provider does before the signature.
    fn outcome(header: Value, payload: Value) -> Result<u64, String> {
        let raw = unsigned(header, payload);
        let audiences = audiences();
        let expected = Expected { issuer: ISSUER, audiences: &audiences, leeway: Duration::from_secs(60) };
        AccessToken::parse(&raw)?.check_claims(&expected)
    }

    fn refusal(header: Value, payload: Value) -> String {
        match outcome(header, payload) {
            Err(message) => message,
            Ok(exp) => panic!("expected a refusal, got exp {exp}"),
        }
    }

    #[test]
    fn a_well_formed_token_passes_the_claims_and_needs_a_key() {
        let now = Utc::now().timestamp();
        for typ in [None, Some("at+jwt"), Some("application/at+jwt"), Some("JWT"), Some("AT+JWT"), Some("jwt")] {
            assert_eq!(outcome(rs(typ), claims(json!({"exp": now + 300}))), Ok(now as u64 + 300), "{typ:?}");
        }
        let raw = unsigned(rs(Some("at+jwt")), claims(json!({})));
        let token = AccessToken::parse(&raw).expect("parses");
        assert_eq!(token.check_signature(&Vec::new()), Err(Refusal::UnknownKey));
        assert_eq!(token.issuer(), Some(ISSUER));
        assert_eq!(token.key_id().as_deref(), Some("k1"));
        assert!(!format!("{token:?}").contains(&raw), "Debug does not show the token");
        assert_eq!(token.into_claims()["sub"], "alice");
        // Several audiences, one of them ours; entries that are not strings are skipped.
        assert!(outcome(rs(None), claims(json!({"aud": [3, "other", "https://api.example/"]}))).is_ok());
    }

    #[test]
    fn refuses_unsafe_headers() {
        assert!(refusal(json!({"alg": "none"}), claims(json!({}))).contains("not signed (alg \"none\")"));
        let message = refusal(json!({"alg": "HS256", "typ": "at+jwt"}), claims(json!({})));
        let allowed: Vec<&str> = ALLOWED_ALGS.iter().map(|(name, _)| *name).collect();
        assert!(message.contains("\"HS256\" is not allowed") && message.contains(&allowed.join(", ")), "{message}");
        assert!(refusal(json!({"typ": "at+jwt"}), claims(json!({}))).contains("has no alg"));
        for typ in [json!("logout+jwt"), json!("dpop+jwt"), json!("application/jwt+x"), json!(1)] {
            let message = refusal(json!({"alg": "RS256", "typ": typ}), claims(json!({})));
            assert!(message.contains("neither at+jwt nor JWT"), "{typ}: {message}");
        }
        assert!(refusal(json!({"alg": "RS256", "crit": ["exp"]}), claims(json!({}))).contains("crit"));
    }

    #[test]
    fn refuses_malformed_and_oversized_tokens_before_decoding() {
        assert!(AccessToken::parse("a.b").err().unwrap_or_default().contains("three dot-separated parts"));
        assert!(AccessToken::parse("a.b.c.d.e").err().unwrap_or_default().contains("three dot-separated parts"));
        assert!(AccessToken::parse("!!.e30.x").err().unwrap_or_default().contains("header is not base64url"));
        let padding = "x".repeat(MAX_TOKEN_BYTES);
        let big = unsigned(rs(None), claims(json!({"pad": padding})));
        let message = AccessToken::parse(&big).err().unwrap_or_default();
        assert_eq!(message, format!("the access token is longer than {MAX_TOKEN_BYTES} bytes"));
        // Not even the shape is read: 16 KiB + 1 of dots is refused for its size.
        assert!(AccessToken::parse(&".".repeat(MAX_TOKEN_BYTES + 1)).err().unwrap_or_default().contains("longer"));
    }

    #[test]
    fn refuses_wrong_claims() {
        let now = Utc::now().timestamp();
        let cases = [
            (json!({"iss": "https://evil.example"}), "issuer \"https://evil.example\" is not \"https://idp.example\""),
            (json!({"iss": null}), "no iss claim"),
            (json!({"sub": null}), "no sub claim"),
            (json!({"sub": ""}), "no sub claim"),
            (json!({"aud": null}), "no aud claim"),
            (json!({"aud": "api://other"}), "names none of bearer_audience"),
            (json!({"aud": ["api://other", "client-id"]}), "names none of bearer_audience"),
            (json!({"aud": "API://ONE"}), "names none of bearer_audience"),
            (json!({"aud": {"api://one": true}}), "no aud claim"),
            (json!({"exp": null}), "no exp claim"),
            (json!({"exp": "soon"}), "exp claim is not a number"),
            (json!({"exp": now - 120}), "s ago, beyond the 60 s leeway"),
            (json!({"nbf": now + 600}), " s (nbf), beyond the 60 s leeway"),
            (json!({"nbf": "later"}), "nbf claim is not a number"),
            (json!({"iat": now + 600}), "issued in the future"),
        ];
        for (extra, expected) in cases {
            let message = refusal(rs(Some("at+jwt")), claims(extra.clone()));
            assert!(message.contains(expected), "{extra}: {message}");
        }
        // Within the leeway: accepted.
        let lenient = json!({"exp": now - 10, "nbf": now + 10, "iat": now + 10});
        assert_eq!(outcome(rs(None), claims(lenient)), Ok(now as u64 - 10));
        assert!(outcome(rs(None), claims(json!({"nbf": null, "iat": null}))).is_ok(), "nbf and iat are optional");
    }

    #[test]
    fn audience_lists_are_bounded() {
        // 1,000 short audiences fit in 16 KiB; the list is refused by its length, unread.
        let mut many: Vec<Value> = (0..1_000).map(|i| json!(format!("a{i}"))).collect();
        many.push(json!("api://one"));
        let message = refusal(rs(None), claims(json!({"aud": many})));
        assert_eq!(
            message,
            format!("the access token names 1001 audiences, more than the {MAX_AUDIENCES} this provider reads")
        );
        // 10,000 do not even fit the size bound.
        let many: Vec<Value> = (0..10_000).map(|i| json!(format!("a{i}"))).collect();
        assert!(refusal(rs(None), claims(json!({"aud": many}))).contains("longer than"));
        let at_limit: Vec<String> = (1..MAX_AUDIENCES).map(|i| format!("x{i}")).chain(["api://one".into()]).collect();
        assert!(outcome(rs(None), claims(json!({"aud": at_limit}))).is_ok(), "{MAX_AUDIENCES} entries are read");
        let message = refusal(rs(None), claims(json!({"aud": ["a", "b", "c", "d", "e"]})));
        assert!(
            message.starts_with("the access token's audience [\"a\", \"b\", \"c\", \"d\"] names none"),
            "{message}"
        );
    }
}
