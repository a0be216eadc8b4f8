//! RFC 7662 token introspection: verifying an opaque (non-JWT) `Authorization: Bearer`
//! access token by asking the provider about it, for sections with `introspection = true`.
//!
//! An opaque token carries nothing to verify locally, so each token the layer does not have
//! cached costs one POST to the discovery document's `introspection_endpoint`
//! (`token=...&token_type_hint=access_token`), authenticated as the token request is
//! ([`ClientAuth::authenticate`]) and sent with the provider's bounded HTTP client.
//!
//! The answer is trusted for [`ANSWER_TTL_SECS`] at most (or until the token's `exp`, if
//! sooner): the layer caches a verified token until [`BearerIdentity::expires_at`], and a
//! token revoked at the provider must stop working within a minute, not at its `exp`.
//!
//! Checked: `active` is `true`; `sub` is a non-empty string; `iss`, when present, is the
//! issuer the preset expects; `aud`, when present, names one of `bearer_audience` (as for
//! JWTs, at most [`MAX_AUDIENCES`](super::bearer::MAX_AUDIENCES) entries are read); `exp`,
//! when present, is a number not past by more than the leeway. RFC 7662 makes `aud`
//! optional and many providers omit it: such an answer is accepted, since the provider
//! vouches for a token it issued to some client of its own, so give the API's tokens a
//! provider (or a client registration) of their own when that is too broad. The identity's
//! claims are every member of the answer.
//!
//! [`BearerIdentity::expires_at`]: auth_core::BearerIdentity::expires_at

use super::bearer::{MAX_TOKEN_BYTES, check_audience};
use super::discovery::Metadata;
use super::http::{Endpoint, Http};
use super::token::{ClientAuth, clip};
use crate::error::Failure;
use auth_core::Claims;
use serde_json::Value;
use std::time::Duration;
use url::Url;

/// How long an introspection answer is trusted: the longest a revoked token keeps working.
pub(crate) const ANSWER_TTL_SECS: u64 = 60;

/// What an introspection answer must say to be accepted.
#[derive(Debug)]
pub(crate) struct Expected<'a> {
    /// The exact `iss`, when the answer names one.
    pub(crate) issuer: &'a str,
    /// `bearer_audience`: `aud`, when present, must name one of them.
    pub(crate) audiences: &'a [String],
    pub(crate) leeway: Duration,
}

/// Whether `token` has a JWT's shape (three dot-separated parts): such tokens are verified
/// locally, every other one by introspection.
pub(crate) fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// Asks `endpoint` about `token` and returns the answer's members.
///
/// # Errors
/// `Rejected` for a token over [`MAX_TOKEN_BYTES`] (not sent). `Unavailable` for transport
/// errors, timeouts, 429 and 5xx (see [`Http::send`]), and for any other answer that is not
/// a `2xx` JSON object (a refused client authentication, a redirect): the provider has not
/// judged the token, so the request cannot be verified now.
pub(crate) async fn request(
    http: &Http,
    metadata: &Metadata,
    endpoint: &Url,
    client: &ClientAuth,
    token: &str,
) -> Result<Claims, Failure> {
    const WHAT: Endpoint = Endpoint::Introspection;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(http.rejected(&format!("the access token is longer than {MAX_TOKEN_BYTES} bytes")));
    }
    let form = [("token", token), ("token_type_hint", "access_token")];
    let request = client.authenticate(http, endpoint, &form, metadata)?;
    let answer = http.send(WHAT, endpoint, request).await?;
    if !answer.status.is_success() {
        return Err(http.unavailable(WHAT, endpoint, &format!("answered HTTP {}", answer.status)));
    }
    answer.json(http, WHAT, endpoint)
}

/// Checks an introspection answer (see the module docs) at `now` (Unix seconds) and returns
/// until when it may be trusted: its `exp` or `now +` [`ANSWER_TTL_SECS`], whichever is
/// sooner.
pub(crate) fn check(answer: &Claims, expected: &Expected<'_>, now: u64) -> Result<u64, String> {
    if answer.get("active") != Some(&Value::Bool(true)) {
        return Err("the provider says the access token is not active (expired, revoked or unknown)".into());
    }
    if !matches!(answer.get("sub"), Some(Value::String(sub)) if !sub.is_empty()) {
        return Err("the introspection answer has no sub (a string is required)".into());
    }
    match answer.get("iss") {
        None => {}
        Some(Value::String(iss)) if iss == expected.issuer => {}
        Some(iss) => {
            let iss = iss.as_str().map_or_else(|| iss.to_string(), clip);
            return Err(format!("the introspection answer's issuer {iss:?} is not {:?}", expected.issuer));
        }
    }
    if let Some(aud) = answer.get("aud") {
        check_audience(Some(aud), expected.audiences)?;
    }
    let latest = now.saturating_add(ANSWER_TTL_SECS);
    match answer.get("exp") {
        None => Ok(latest),
        Some(exp) => {
            let exp = exp.as_f64().ok_or("the introspection answer's exp is not a number")?;
            let leeway = expected.leeway.as_secs_f64();
            if exp + leeway <= now as f64 {
                return Err(format!(
                    "the access token expired {:.0} s ago, though the provider says it is active",
                    now as f64 - exp
                ));
            }
            // Positive here (it is after now - leeway); `as` saturates anyway.
            Ok(latest.min(exp as u64).max(now))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    fn answer(extra: Value) -> Claims {
        let mut answer = json!({"active": true, "sub": "alice", "iss": "https://idp.example", "aud": "api://one",
                                "exp": NOW + 3600, "scope": "read", "client_id": "app"});
        if let (Value::Object(base), Value::Object(extra)) = (&mut answer, extra) {
            base.extend(extra);
        }
        match answer {
            Value::Object(map) => map.into_iter().filter(|(_, v)| !v.is_null()).collect(),
            _ => Claims::new(),
        }
    }

    fn outcome(extra: Value) -> Result<u64, String> {
        let audiences = vec!["api://one".to_owned()];
        let expected =
            Expected { issuer: "https://idp.example", audiences: &audiences, leeway: Duration::from_secs(60) };
        check(&answer(extra), &expected, NOW)
    }

    #[test]
    fn active_answers_are_trusted_for_a_minute_at_most() {
        assert_eq!(outcome(json!({})), Ok(NOW + ANSWER_TTL_SECS));
        assert_eq!(outcome(json!({"exp": NOW + 10})), Ok(NOW + 10), "an earlier exp wins");
        assert_eq!(outcome(json!({"exp": null})), Ok(NOW + ANSWER_TTL_SECS), "exp is optional");
        assert_eq!(outcome(json!({"exp": NOW - 10})), Ok(NOW), "within the leeway: good for this request");
        assert!(outcome(json!({"aud": null, "iss": null})).is_ok(), "aud and iss are optional");
        assert!(outcome(json!({"aud": ["other", "api://one"]})).is_ok());
    }

    #[test]
    fn refuses_inactive_and_wrong_answers() {
        let cases = [
            (json!({"active": false}), "not active"),
            (json!({"active": "true"}), "not active"),
            (json!({"active": null}), "not active"),
            (json!({"sub": null}), "no sub"),
            (json!({"sub": ""}), "no sub"),
            (json!({"iss": "https://evil.example"}), "issuer \"https://evil.example\" is not"),
            (json!({"iss": 3}), "issuer \"3\" is not"),
            (json!({"aud": "api://other"}), "names none of bearer_audience"),
            (json!({"aud": 5}), "no aud claim"),
            (json!({"exp": "later"}), "exp is not a number"),
            (json!({"exp": NOW - 120}), "expired 120 s ago"),
        ];
        for (extra, expected) in cases {
            let message = outcome(extra.clone()).err().unwrap_or_default();
            assert!(message.contains(expected), "{extra}: {message}");
        }
    }

    #[test]
    fn jwts_are_told_by_their_shape() {
        assert!(is_jwt("a.b.c"));
        assert!(!is_jwt("opaque-token") && !is_jwt("a.b") && !is_jwt("a.b.c.d.e"));
    }
}
