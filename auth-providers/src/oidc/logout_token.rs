//! OpenID Connect Back-Channel Logout 1.0: verifying the logout token a provider POSTs to
//! the app when a person signs out there (§2.4 and §2.6 of the specification).
//!
//! openidconnect has no logout-token type, and its ID-token verifier insists on claims a
//! logout token may lack (`sub`), so the checks are made here, with the same key set and the
//! same algorithm allow-list ([`ALLOWED_ALGS`](super::id_token::ALLOWED_ALGS): asymmetric
//! only, so neither `none` nor an HMAC keyed with public key material passes) as ID tokens.
//! The signature itself is checked by openidconnect's JWK code, with the one key of the set
//! that fits the token's `kid` and algorithm.
//!
//! Stricter than the specification, because a replayed logout token ends the sessions its
//! `sub` names again, including those started after the real logout: `jti` and `exp` are
//! required, and a token may live at most [`MAX_LIFETIME`]. The `jti` and the token's end
//! travel with the result, and the layer accepts each `jti` once (after the sessions ended).
//!
//! Claims are checked before the signature, so a token that would fail anyway never makes
//! the provider fetch its key set again (an unknown `kid` does, rate-limited).

use super::id_token::{Keys, Refusal, check_signature, decode_jws, signing_alg};
use auth_core::{Claims, LogoutClaims};
use chrono::Utc;
use serde_json::Value;
use std::time::Duration;

/// The member of `events` that makes a JWT a back-channel logout token.
pub(crate) const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The longest a logout token may be valid (`exp - iat`): it bounds how long a captured
/// token can be replayed, and how long its `jti` must be remembered.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(600);

/// What a logout token must say to be accepted.
#[derive(Debug)]
pub(crate) struct Expected<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) leeway: Duration,
}

/// How messages name the token.
const WHAT: &str = "logout token";

fn invalid<T>(message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::Invalid(message.into()))
}

/// The payload of `raw`, *not verified*: only to tell which issuer to verify it against.
pub(crate) fn unverified_claims(raw: &str) -> Result<Claims, String> {
    decode_jws(raw, WHAT).map(|(_, claims)| claims)
}

/// Verifies `raw` against `keys` and `expected`; on success returns the sessions it names,
/// with its `jti` and until when it is accepted (the layer refuses a replay).
pub(crate) fn verify(raw: &str, keys: &Keys, expected: &Expected<'_>) -> Result<LogoutClaims, Refusal> {
    let (header, claims) = decode_jws(raw, WHAT).map_err(Refusal::Invalid)?;
    let alg = signing_alg(&header, WHAT).map_err(Refusal::Invalid)?;
    match header.get("typ") {
        None => {}
        Some(Value::String(typ))
            if ["logout+jwt", "application/logout+jwt", "JWT", "application/jwt"]
                .iter()
                .any(|t| typ.eq_ignore_ascii_case(t)) => {}
        Some(_) => return invalid("the logout token's typ header is neither logout+jwt nor JWT"),
    }
    if header.contains_key("crit") {
        return invalid("the logout token has a crit header, which is not supported");
    }
    let exp = check_claims(&claims, expected)?;
    check_signature(raw, &header, &alg, keys, WHAT)?;
    let text = |claim: &str| claims.get(claim).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    // check_claims made sure of a non-empty jti. Float to integer casts saturate; exp is a
    // finite JSON number.
    let until = (exp + expected.leeway.as_secs_f64()).ceil().max(0.0) as u64;
    Ok(LogoutClaims::new(text("sub"), text("sid")).with_token_id(text("jti").unwrap_or_default(), until))
}

/// §2.6 steps 3 to 7 (the signature aside), with `jti` and `exp` required and the lifetime
/// capped; returns `exp`.
fn check_claims(claims: &Claims, expected: &Expected<'_>) -> Result<f64, Refusal> {
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == expected.issuer => {}
        Some(Value::String(iss)) => {
            let iss: String = iss.chars().filter(|c| !c.is_control()).take(200).collect();
            return invalid(format!("the logout token comes from issuer {iss:?}, not {:?}", expected.issuer));
        }
        _ => return invalid("the logout token has no iss claim"),
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&expected.client_id) {
        return invalid(format!(
            "the logout token's audience {audiences:?} does not include this client ({:?})",
            expected.client_id
        ));
    }
    let now = Utc::now().timestamp() as f64;
    let leeway = expected.leeway.as_secs_f64();
    let Some(iat) = claims.get("iat").and_then(Value::as_f64) else {
        return invalid("the logout token has no iat claim (a number is required)");
    };
    if iat > now + leeway {
        return invalid("the logout token was issued in the future (check the clocks if this repeats)");
    }
    let exp = match claims.get("exp") {
        None | Some(Value::Null) => return invalid("the logout token has no exp claim (a number is required)"),
        Some(exp) => match exp.as_f64() {
            Some(exp) if exp + leeway > now => exp,
            Some(_) => return invalid("the logout token has expired"),
            None => return invalid("the logout token's exp is not a number"),
        },
    };
    if exp < iat {
        return invalid("the logout token expires before it was issued (exp is before iat)");
    }
    if exp - iat > MAX_LIFETIME.as_secs_f64() {
        return invalid(format!(
            "the logout token is valid for {} s (exp - iat), more than the {} s allowed",
            exp - iat,
            MAX_LIFETIME.as_secs()
        ));
    }
    if !matches!(claims.get("jti"), Some(Value::String(jti)) if !jti.is_empty()) {
        return invalid("the logout token has no jti claim (a string is required, to refuse replays)");
    }
    match claims.get("events").and_then(Value::as_object).and_then(|events| events.get(BACKCHANNEL_EVENT)) {
        Some(Value::Object(_)) => {}
        Some(_) => return invalid("the logout token's back-channel logout event is not a JSON object"),
        None => return invalid(format!("the logout token's events claim does not name {BACKCHANNEL_EVENT}")),
    }
    if claims.contains_key("nonce") {
        return invalid("the logout token carries a nonce, which logout tokens must not (is it an ID token?)");
    }
    let named = |claim: &str| matches!(claims.get(claim), Some(Value::String(s)) if !s.is_empty());
    if !named("sub") && !named("sid") {
        return invalid("the logout token names neither a subject (sub) nor a session (sid)");
    }
    Ok(exp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::oidc::id_token::tests::{merged, unsigned as token};

    const EXPECTED: Expected<'static> =
        Expected { issuer: "https://idp.example", client_id: "app", leeway: Duration::from_secs(60) };

    fn claims(extra: Value) -> Value {
        let now = Utc::now().timestamp();
        let base = json!({
            "iss": "https://idp.example", "aud": "app", "iat": now, "exp": now + 120, "jti": "j1",
            "sub": "alice", "sid": "s1", "events": {BACKCHANNEL_EVENT: {}},
        });
        merged(base, extra)
    }

    fn refusal(header: Value, payload: Value) -> String {
        match verify(&token(header, payload), &Vec::new(), &EXPECTED) {
            Err(Refusal::Invalid(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn rs() -> Value {
        json!({"alg": "RS256", "typ": "logout+jwt", "kid": "k1"})
    }

    #[test]
    fn a_well_formed_token_reaches_the_key_lookup() {
        // An empty key set: every claim passed, only the signature is left.
        assert_eq!(verify(&token(rs(), claims(json!({}))), &Vec::new(), &EXPECTED), Err(Refusal::UnknownKey));
        let only_sid = token(json!({"alg": "RS256"}), claims(json!({"sub": null})));
        assert_eq!(verify(&only_sid, &Vec::new(), &EXPECTED), Err(Refusal::UnknownKey));
        let longest = claims(json!({"exp": Utc::now().timestamp() + 600}));
        assert_eq!(verify(&token(rs(), longest), &Vec::new(), &EXPECTED), Err(Refusal::UnknownKey), "10 minutes pass");
        assert_eq!(unverified_claims(&only_sid).map(|c| c["sid"].clone()), Ok(json!("s1")));
    }

    #[test]
    fn refuses_unsafe_algorithms_and_types() {
        assert!(refusal(json!({"alg": "none"}), claims(json!({}))).contains("not signed"));
        assert!(refusal(json!({"alg": "HS256"}), claims(json!({}))).contains("\"HS256\" is not allowed"));
        assert!(refusal(json!({"typ": "JWT"}), claims(json!({}))).contains("not allowed"));
        assert!(refusal(json!({"alg": "RS256", "typ": "at+jwt"}), claims(json!({}))).contains("typ"));
        assert!(refusal(json!({"alg": "RS256", "crit": ["x"]}), claims(json!({}))).contains("crit"));
    }

    #[test]
    fn refuses_tokens_that_are_not_logout_tokens() {
        let now = Utc::now().timestamp();
        let cases = [
            (json!({"iss": "https://evil.example"}), "issuer"),
            (json!({"iss": null}), "no iss"),
            (json!({"aud": "other"}), "audience"),
            (json!({"aud": ["other", "app"]}), ""),
            (json!({"iat": null}), "no iat"),
            (json!({"iat": now + 3600}), "future"),
            (json!({"exp": now - 3600}), "expired"),
            (json!({"exp": null}), "no exp"),
            (json!({"exp": "soon"}), "not a number"),
            (json!({"exp": now + 601}), "more than the 600 s allowed"),
            (json!({"iat": now - 3000, "exp": now + 60}), "more than the 600 s allowed"),
            (json!({"iat": now, "exp": now - 30}), "before it was issued"),
            (json!({"jti": null}), "no jti"),
            (json!({"jti": ""}), "no jti"),
            (json!({"jti": 7}), "no jti"),
            (json!({"events": null}), "events"),
            (json!({"events": {"http://schemas.openid.net/event/other": {}}}), "events"),
            (json!({"events": {BACKCHANNEL_EVENT: "yes"}}), "not a JSON object"),
            (json!({"nonce": "n"}), "nonce"),
            (json!({"sub": null, "sid": null}), "neither"),
            (json!({"sub": "", "sid": null}), "neither"),
        ];
        for (extra, expected) in cases {
            let outcome = verify(&token(rs(), claims(extra.clone())), &Vec::new(), &EXPECTED);
            if expected.is_empty() {
                assert_eq!(outcome, Err(Refusal::UnknownKey), "{extra}: several audiences including this client pass");
                continue;
            }
            match outcome {
                Err(Refusal::Invalid(message)) => assert!(message.contains(expected), "{extra}: {message}"),
                other => panic!("{extra}: expected a refusal, got {other:?}"),
            }
        }
        assert!(matches!(verify("a.b", &Vec::new(), &EXPECTED), Err(Refusal::Invalid(_))));
    }
}
