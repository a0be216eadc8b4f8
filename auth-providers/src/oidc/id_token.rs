//! ID token verification: the one check that decides who signed in.
//!
//! The work is split between openidconnect and this module:
//!
//! - openidconnect's `IdTokenVerifier` checks the signature with a key of the provider's
//!   key set (chosen by `kid`, or the only key that fits the algorithm when the token has
//!   no `kid`), the algorithm against [`ALLOWED_ALGS`] (it is built as a *public* client
//!   verifier and never sees the client secret, and the list holds no `HS*` nor `none`, so
//!   neither an HMAC keyed with the client secret nor one keyed with public key material
//!   passes; under `profile = "fapi2"` the narrower [`FAPI2_ALGS`]), the `typ`/`cty`/`crit`
//!   headers, `iss` (exact string), `aud` (contains the client id), `exp` (through its
//!   clock, set back by the leeway), `iat` (through its issue-time hook, not in the future
//!   beyond the leeway) and `nonce` (compared via SHA-256 digests, so not by early-exit
//!   string compare).
//! - this module first decodes header and payload itself, to refuse a disallowed `alg`,
//!   missing `iss`/`sub`/`exp`/`iat`, an audience without this client and an `exp` past
//!   the leeway with clear messages (openidconnect would say "missing field" or show its
//!   shifted clock); it checks `azp` (openidconnect does not): when present it must be
//!   the client id, and it must be present when `aud` names several audiences; and after
//!   verification succeeded it returns the payload as JSON, every claim included
//!   (openidconnect's typed claims drop the ones it does not know). Both read the same
//!   bytes: the payload openidconnect verified is the one decoded here.
//!
//! One token shape never reaches openidconnect: an issuer that is not a URL. Google's ID
//! tokens may say `"iss": "accounts.google.com"` (OpenID Connect requires a URL, and
//! openidconnect cannot even parse such a token), and the Google preset expects that
//! spelling when a token uses it. For an expected issuer that is not a URL, this module
//! makes openidconnect's remaining checks itself ([`verify_non_url_issuer`]): the JOSE
//! header (`typ`, `cty`, `crit`), `iat`, `nonce`, and the signature with the one key of the
//! set that fits `kid` and the algorithm (openidconnect's own key types verify it). Only a
//! preset that expects such an issuer ever gets here; for every other provider an `iss`
//! that is not a URL fails the exact issuer comparison first.

use super::http::{Endpoint, Http};
use super::token::clip;
use crate::error::Failure;
use auth_core::Claims;
use base64::Engine as _;
use base64::engine::{GeneralPurpose, general_purpose};
use chrono::{TimeDelta, Utc};
use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{
    ClaimsVerificationError, ClientId, IssuerUrl, JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeySet, JsonWebKeyUse,
    JwsSigningAlgorithm, Nonce, SignatureVerificationError,
};
use serde_json::Value;
use std::str::FromStr;
use std::time::Duration;
use url::Url;

/// The signature algorithms an ID token may use: asymmetric only.
pub(crate) const ALLOWED_ALGS: [(&str, CoreJwsSigningAlgorithm); 9] = [
    ("RS256", CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
    ("RS384", CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384),
    ("RS512", CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512),
    ("PS256", CoreJwsSigningAlgorithm::RsaSsaPssSha256),
    ("PS384", CoreJwsSigningAlgorithm::RsaSsaPssSha384),
    ("PS512", CoreJwsSigningAlgorithm::RsaSsaPssSha512),
    ("ES256", CoreJwsSigningAlgorithm::EcdsaP256Sha256),
    ("ES384", CoreJwsSigningAlgorithm::EcdsaP384Sha384),
    ("EdDSA", CoreJwsSigningAlgorithm::EdDsa),
];

/// The ID token algorithms FAPI 2.0 allows (`profile = "fapi2"`): PS256, ES256, EdDSA.
pub(crate) const FAPI2_ALGS: [(&str, CoreJwsSigningAlgorithm); 3] = [
    ("PS256", CoreJwsSigningAlgorithm::RsaSsaPssSha256),
    ("ES256", CoreJwsSigningAlgorithm::EcdsaP256Sha256),
    ("EdDSA", CoreJwsSigningAlgorithm::EdDsa),
];

/// The provider's signing keys, as its `jwks_uri` last served them.
pub(crate) type Keys = Vec<CoreJsonWebKey>;

/// What an ID token must say to be accepted.
#[derive(Debug)]
pub(crate) struct Expected<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) client_id: &'a str,
    /// The nonce sent with the authorization request; `None` for a refresh, where the
    /// new ID token need not carry one.
    pub(crate) nonce: Option<&'a str>,
    pub(crate) leeway: Duration,
    /// The algorithms accepted: [`ALLOWED_ALGS`], or [`FAPI2_ALGS`] under FAPI 2.0.
    pub(crate) algs: &'a [(&'static str, CoreJwsSigningAlgorithm)],
}

/// Why a token was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No key of the set has the token's `kid` (or fits its algorithm): the set may be
    /// stale, so fetching it again may help.
    UnknownKey,
    /// Anything else; the message is for people and holds no token.
    Invalid(String),
}

/// Fetches the provider's key set. Keys this crate cannot use are skipped.
pub(crate) async fn fetch_keys(http: &Http, url: &Url) -> Result<Keys, Failure> {
    const WHAT: Endpoint = Endpoint::Jwks;
    let result = async {
        let answer = http.send(WHAT, url, http.get(url)).await?;
        if !answer.status.is_success() {
            return Err(http.unavailable(WHAT, url, &format!("answered HTTP {}", answer.status)));
        }
        let set: JsonWebKeySet<CoreJsonWebKey> = answer.json(http, WHAT, url)?;
        Ok(set.keys().clone())
    }
    .await;
    match &result {
        Ok(keys) => tracing::info!(keys = keys.len(), "key set loaded"),
        Err(failure) => tracing::warn!(?failure, "key set could not be loaded"),
    }
    result
}

/// The payload of `raw`, *not verified*: only to tell which issuer to verify it against.
pub(crate) fn unverified_claims(raw: &str) -> Result<Claims, String> {
    decode(raw).map(|(_, claims)| claims)
}

/// Verifies `raw` against `keys` and `expected`; on success returns every claim of its
/// payload.
pub(crate) fn verify(raw: &str, keys: &Keys, expected: &Expected<'_>) -> Result<Claims, Refusal> {
    let (header, claims) = decode(raw).map_err(Refusal::Invalid)?;
    precheck(&header, &claims, expected).map_err(Refusal::Invalid)?;
    if IssuerUrl::new(expected.issuer.to_owned()).is_err() {
        return verify_non_url_issuer(raw, &header, claims, keys, expected);
    }

    let token = CoreIdToken::from_str(raw).map_err(|e| Refusal::Invalid(format!("the ID token is malformed ({e})")))?;
    let verifier = verifier(keys, expected)?;
    let outcome = match expected.nonce {
        Some(nonce) => token.claims(&verifier, &Nonce::new(nonce.to_owned())).map(drop),
        None => token.claims(&verifier, |_: Option<&Nonce>| Ok(())).map(drop),
    };
    match outcome {
        Ok(()) => Ok(claims),
        Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
            Err(Refusal::UnknownKey)
        }
        Err(ClaimsVerificationError::SignatureVerification(e)) => {
            Err(Refusal::Invalid(format!("the ID token's signature is not valid ({e})")))
        }
        Err(ClaimsVerificationError::InvalidNonce(e)) => {
            Err(Refusal::Invalid(format!("the ID token's nonce is not the one of this login ({e})")))
        }
        Err(e) => Err(Refusal::Invalid(format!("the ID token failed verification ({e})"))),
    }
}

/// The checks openidconnect would make after [`precheck`], for a token whose issuer is not
/// a URL (see the module docs). `precheck` has already checked `alg` against the
/// allow-list, `iss`, `sub`, `exp`, `aud` and `azp`.
fn verify_non_url_issuer(
    raw: &str,
    header: &Claims,
    claims: Claims,
    keys: &Keys,
    expected: &Expected<'_>,
) -> Result<Claims, Refusal> {
    let invalid = |message: &str| Err(Refusal::Invalid(message.to_owned()));
    match header.get("typ") {
        None => {}
        Some(Value::String(typ)) if typ.eq_ignore_ascii_case("JWT") || typ.eq_ignore_ascii_case("application/jwt") => {}
        Some(_) => return invalid("the ID token's typ header is not JWT"),
    }
    if header.contains_key("cty") || header.contains_key("crit") {
        return invalid("the ID token has cty or crit headers, which are not supported");
    }
    let now = Utc::now().timestamp() as f64;
    if claims.get("iat").and_then(Value::as_f64).is_some_and(|iat| iat > now + expected.leeway.as_secs_f64()) {
        return invalid("the ID token was issued in the future");
    }
    if let Some(nonce) = expected.nonce
        && claims.get("nonce").and_then(Value::as_str) != Some(nonce)
    {
        return invalid("the ID token's nonce is not the one of this login");
    }
    let alg = signing_alg_of(header, "ID token", expected.algs).map_err(Refusal::Invalid)?;
    check_signature(raw, header, &alg, keys, "ID token")?;
    Ok(claims)
}

/// The algorithm of the `what` ("ID token", "logout token") whose header is `header`, if
/// [`ALLOWED_ALGS`] holds it; else a message that says why not (`none`, `HS*`, missing).
pub(crate) fn signing_alg(header: &Claims, what: &str) -> Result<CoreJwsSigningAlgorithm, String> {
    signing_alg_of(header, what, &ALLOWED_ALGS)
}

/// [`signing_alg`] against the list `algs` instead of [`ALLOWED_ALGS`].
fn signing_alg_of(
    header: &Claims,
    what: &str,
    algs: &[(&str, CoreJwsSigningAlgorithm)],
) -> Result<CoreJwsSigningAlgorithm, String> {
    match header.get("alg").and_then(Value::as_str) {
        Some(name) => match algs.iter().find(|(allowed, _)| *allowed == name) {
            Some((_, alg)) => Ok(alg.clone()),
            None if name == "none" => Err(format!("the {what} is not signed (alg \"none\")")),
            None => {
                let allowed: Vec<&str> = algs.iter().map(|(name, _)| *name).collect();
                Err(format!("the {what}'s algorithm {name:?} is not allowed (allowed: {})", allowed.join(", ")))
            }
        },
        None => Err(format!("the {what}'s header has no alg, which is not allowed")),
    }
}

/// The signature of the `what` ("ID token", "logout token") `raw`, with the one key of
/// `keys` that fits its `kid` and `alg`; [`Refusal::UnknownKey`] when none does (the key
/// set may be stale), so the caller can refetch it once.
pub(crate) fn check_signature(
    raw: &str,
    header: &Claims,
    alg: &CoreJwsSigningAlgorithm,
    keys: &Keys,
    what: &str,
) -> Result<(), Refusal> {
    let kid = header.get("kid").and_then(Value::as_str);
    let fitting: Vec<&CoreJsonWebKey> = keys
        .iter()
        .filter(|key| kid.is_none_or(|kid| key.key_id().is_some_and(|id| id.as_str() == kid)))
        .filter(|key| key.key_use().is_none_or(JsonWebKeyUse::allows_signature))
        .filter(|key| alg.key_type().as_ref() == Some(key.key_type()))
        .filter(|key| match key.signing_alg() {
            JsonWebKeyAlgorithm::Unspecified => true,
            JsonWebKeyAlgorithm::Algorithm(key_alg) => key_alg == alg,
            JsonWebKeyAlgorithm::Unsupported => false,
        })
        .collect();
    let key = match fitting.as_slice() {
        [] => return Err(Refusal::UnknownKey),
        [key] => *key,
        _ => {
            return Err(Refusal::Invalid(format!(
                "several keys of the provider fit the {what}; it must name one with kid"
            )));
        }
    };
    let (signing_input, signature) = raw.rsplit_once('.').unwrap_or_default();
    let signature = BASE64URL
        .decode(signature)
        .map_err(|_| Refusal::Invalid(format!("the {what}'s signature is not base64url")))?;
    key.verify_signature(alg, signing_input.as_bytes(), &signature)
        .map_err(|e| Refusal::Invalid(format!("the {what}'s signature is not valid ({e})")))
}

/// openidconnect's verifier, configured as described in the module docs.
fn verifier(keys: &Keys, expected: &Expected<'_>) -> Result<CoreIdTokenVerifier<'static>, Refusal> {
    let issuer = IssuerUrl::new(expected.issuer.to_owned())
        .map_err(|e| Refusal::Invalid(format!("the issuer {:?} is not a URL ({e})", expected.issuer)))?;
    let leeway = TimeDelta::from_std(expected.leeway).unwrap_or(TimeDelta::MAX);
    // A public-client verifier: it has no client secret to key an HMAC with.
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(expected.client_id.to_owned()),
        issuer,
        JsonWebKeySet::new(keys.clone()),
    )
    .set_allowed_algs(expected.algs.iter().map(|(_, alg)| alg.clone()))
    // Several audiences are fine when `azp` names this client; `precheck` enforces that.
    .set_other_audience_verifier_fn(|_| true)
    // openidconnect has no leeway knob: a clock set back by the leeway accepts a token
    // until `exp + leeway`.
    .set_time_fn(move || Utc::now() - leeway)
    .set_issue_time_verifier_fn(move |iat| {
        if iat > Utc::now() + leeway { Err(format!("the ID token was issued in the future ({iat})")) } else { Ok(()) }
    });
    Ok(verifier)
}

/// The `kid` of a token's header, for messages.
pub(crate) fn key_id(raw: &str) -> Option<String> {
    let (header, _) = decode(raw).ok()?;
    header.get("kid").and_then(Value::as_str).map(str::to_owned)
}

/// The same lenient base64url engine as openidconnect, so both read the same bytes.
const BASE64URL: GeneralPurpose =
    GeneralPurpose::new(&base64::alphabet::URL_SAFE, general_purpose::NO_PAD.with_decode_allow_trailing_bits(true));

/// Header and payload of an ID token, as JSON objects. Nothing is verified.
fn decode(raw: &str) -> Result<(Claims, Claims), String> {
    decode_jws(raw, "ID token")
}

/// Header and payload of the compact JWS `raw`, a `what` ("ID token", "logout token"), as
/// JSON objects. Nothing is verified.
pub(crate) fn decode_jws(raw: &str, what: &str) -> Result<(Claims, Claims), String> {
    let mut parts = raw.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("the {what} is not a signed JWT (three dot-separated parts)"));
    };
    let object = |part: &str, which: &str| -> Result<Claims, String> {
        let bytes = BASE64URL.decode(part).map_err(|_| format!("the {what}'s {which} is not base64url"))?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(format!("the {what}'s {which} is not a JSON object")),
        }
    };
    Ok((object(header, "header")?, object(payload, "payload")?))
}

/// The checks that give clearer messages than openidconnect's, and `azp`.
fn precheck(header: &Claims, claims: &Claims, expected: &Expected<'_>) -> Result<(), String> {
    signing_alg_of(header, "ID token", expected.algs)?;
    for (claim, kind) in [("iss", "string"), ("sub", "string"), ("exp", "number"), ("iat", "number")] {
        let present = match claims.get(claim) {
            Some(Value::String(s)) => kind == "string" && !s.is_empty(),
            Some(Value::Number(_)) => kind == "number",
            _ => false,
        };
        if !present {
            return Err(format!("the ID token has no {claim} claim (a {kind} is required)"));
        }
    }
    // openidconnect compares `iss` too; this message names both issuers.
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
    if iss != expected.issuer {
        return Err(format!("the ID token's issuer {:?} is not {:?}", clip(iss), expected.issuer));
    }
    // openidconnect checks `exp` too, but its message shows its leeway-shifted clock.
    let now = Utc::now().timestamp() as f64;
    let leeway = expected.leeway.as_secs_f64();
    if let Some(exp) = claims.get("exp").and_then(Value::as_f64)
        && exp + leeway <= now
    {
        return Err(format!(
            "the ID token expired {:.0} s ago, beyond the {leeway:.0} s leeway (check the clocks if this repeats)",
            now - exp
        ));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(format!(
            "the ID token's audience {audiences:?} does not include this client ({:?})",
            expected.client_id
        ));
    }
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == expected.client_id => {}
        Some(azp) => return Err(format!("the ID token's authorized party (azp) {azp} is not this client")),
        None if audiences.len() > 1 => {
            return Err("the ID token names several audiences but no authorized party (azp)".into());
        }
        None => {}
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    fn b64(value: &Value) -> String {
        general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    }

    /// A JWT with `header` and `payload` and a dummy signature, for the checks that come
    /// before the signature (here and in the logout-token tests).
    pub(crate) fn unsigned(header: Value, payload: Value) -> String {
        format!("{}.{}.c2ln", b64(&header), b64(&payload))
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://idp.example",
            client_id: "app",
            nonce: Some("n"),
            leeway: Duration::from_secs(60),
            algs: &ALLOWED_ALGS,
        }
    }

    fn claims(extra: Value) -> Value {
        let now = Utc::now().timestamp();
        let base = json!({"iss": "https://idp.example", "sub": "alice", "aud": "app", "exp": now + 300, "iat": now, "nonce": "n"});
        merged(base, extra)
    }

    /// `base` with the members of `extra` set, a `null` member removing the claim (here and
    /// in the logout-token tests).
    pub(crate) fn merged(mut base: Value, extra: Value) -> Value {
        if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
            for (k, v) in extra {
                if v.is_null() {
                    base.remove(&k);
                } else {
                    base.insert(k, v);
                }
            }
        }
        base
    }

    fn refusal(header: Value, payload: Value) -> String {
        match verify(&unsigned(header, payload), &Vec::new(), &expected()) {
            Err(Refusal::Invalid(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn decodes_every_claim() {
        let token =
            unsigned(json!({"alg": "RS256", "kid": "k1"}), json!({"sub": "a", "groups": ["x"], "n": {"deep": 1}}));
        let (header, payload) = decode(&token).expect("decodes");
        assert_eq!(header["kid"], "k1");
        assert_eq!(payload["groups"], json!(["x"]));
        assert_eq!(payload["n"]["deep"], 1);
        assert_eq!(key_id(&token).as_deref(), Some("k1"));
        assert!(decode("a.b").is_err());
        assert!(decode("a.b.c.d").is_err());
        assert!(decode("!!.e30.x").is_err());
    }

    #[test]
    fn refuses_unsafe_algorithms_before_anything_else() {
        assert!(refusal(json!({"alg": "none"}), claims(json!({}))).contains("not signed"));
        assert!(refusal(json!({"alg": "HS256"}), claims(json!({}))).contains("\"HS256\" is not allowed"));
        assert!(refusal(json!({"typ": "JWT"}), claims(json!({}))).contains("no alg"));
    }

    #[test]
    fn requires_the_core_claims() {
        let rs = || json!({"alg": "RS256"});
        assert!(refusal(rs(), claims(json!({"sub": null}))).contains("no sub claim"));
        assert!(refusal(rs(), claims(json!({"sub": ""}))).contains("no sub claim"));
        assert!(refusal(rs(), claims(json!({"iat": null}))).contains("no iat claim"));
        assert!(refusal(rs(), claims(json!({"exp": "soon"}))).contains("no exp claim"));
        assert!(refusal(rs(), claims(json!({"iss": null}))).contains("no iss claim"));
    }

    #[test]
    fn checks_audience_and_authorized_party() {
        let rs = || json!({"alg": "RS256"});
        assert!(refusal(rs(), claims(json!({"aud": "other"}))).contains("does not include this client"));
        assert!(refusal(rs(), claims(json!({"aud": ["app", "other"]}))).contains("no authorized party"));
        assert!(refusal(rs(), claims(json!({"azp": "other"}))).contains("azp"));
        // With azp = client id, several audiences pass both our and openidconnect's
        // audience checks and reach the key lookup (an empty key set here).
        let token = unsigned(rs(), claims(json!({"aud": ["app", "other"], "azp": "app"})));
        assert_eq!(verify(&token, &Vec::new(), &expected()), Err(Refusal::UnknownKey));
    }

    #[test]
    fn checks_expiry_with_leeway() {
        let rs = || json!({"alg": "RS256"});
        let now = Utc::now().timestamp();
        let message = refusal(rs(), claims(json!({"exp": now - 120})));
        assert!(message.contains("expired 120 s ago, beyond the 60 s leeway"), "{message}");
        // 10 s past exp is within the leeway: the token reaches the key lookup.
        let token = unsigned(rs(), claims(json!({"exp": now - 10})));
        assert_eq!(verify(&token, &Vec::new(), &expected()), Err(Refusal::UnknownKey));
    }

    /// openidconnect's verifier itself, without our precheck, refuses HS256 even when the
    /// key set holds the matching symmetric key: the allow-list is enforced there too.
    #[test]
    fn the_verifier_refuses_hmac_whatever_the_keys() {
        use openidconnect::core::{CoreHmacKey, CoreIdTokenClaims};
        use openidconnect::{Audience, EmptyAdditionalClaims, JsonWebKey, StandardClaims, SubjectIdentifier};
        let now = Utc::now();
        let claims = CoreIdTokenClaims::new(
            IssuerUrl::new("https://idp.example".into()).expect("issuer"),
            vec![Audience::new("app".into())],
            now + TimeDelta::minutes(5),
            now,
            StandardClaims::new(SubjectIdentifier::new("alice".into())),
            EmptyAdditionalClaims {},
        );
        let secret = b"the client secret or a public key PEM".to_vec();
        let token = CoreIdToken::new(
            claims,
            &CoreHmacKey::new(secret.clone()),
            CoreJwsSigningAlgorithm::HmacSha256,
            None,
            None,
        )
        .expect("signs");
        let keys = vec![CoreJsonWebKey::new_symmetric(secret)];
        let verifier = verifier(&keys, &expected()).expect("verifier");
        let outcome = token.claims(&verifier, |_: Option<&Nonce>| Ok(()));
        assert!(
            matches!(
                outcome,
                Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::DisallowedAlg(_)))
            ),
            "{outcome:?}"
        );
    }

    #[test]
    fn an_empty_key_set_asks_for_a_refetch() {
        let token = unsigned(json!({"alg": "RS256", "kid": "k1"}), claims(json!({})));
        assert_eq!(verify(&token, &Vec::new(), &expected()), Err(Refusal::UnknownKey));
    }
}
