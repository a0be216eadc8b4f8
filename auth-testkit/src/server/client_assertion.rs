//! Client authentication by assertion (RFC 7523 §2.2) at `/token` and `/introspect`:
//! `private_key_jwt` (RS256, PS256 or ES256, checked with the client's registered public JWKs)
//! and `client_secret_jwt` (HS256 keyed with the client secret). The assertion must name
//! the client as `iss` and `sub`, the issuer or the token endpoint as `aud` (or exactly
//! what [`Fault::ClientAssertionAudience`] says), not be expired, and carry a `jti` never
//! seen before; anything else is `401 invalid_client`.

use super::{Params, Shared, oauth_error};
use crate::fault::Fault;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the mock's client authenticates at `/token` and `/introspect`
/// ([`MockIdpBuilder::client_authentication`](crate::MockIdpBuilder::client_authentication)).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub enum ClientAuthentication {
    /// `client_secret_basic` or `client_secret_post` with the client secret (the default).
    #[default]
    Secret,
    /// `private_key_jwt`: assertions signed (RS256, PS256 or ES256) by one of these public keys,
    /// a JWK Set (`{"keys": [...]}`) such as the app's `/auth/jwks`.
    PrivateKeyJwt(Value),
    /// `client_secret_jwt`: assertions signed with HS256 keyed with the client secret.
    ClientSecretJwt,
}

/// The `jti`s of accepted assertions, with their `exp`, so none is accepted twice.
#[derive(Debug, Default)]
pub(crate) struct SeenAssertions(Mutex<HashMap<String, u64>>);

impl Shared {
    /// Checks the assertion of `params` as [`ClientAuthentication`] says; `Err` is the
    /// `401 invalid_client` answer, whose description says what was wrong.
    pub(super) fn authenticate_assertion(&self, params: &Params) -> Result<(), Response> {
        self.check_assertion(params).map_err(|description| {
            tracing::debug!(%description, "mock-idp: client assertion refused");
            oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &description)
        })
    }

    fn check_assertion(&self, params: &Params) -> Result<(), String> {
        let method = &self.config.client_authentication;
        if *method == ClientAuthentication::Secret {
            return Err("this client authenticates with its secret, not an assertion".into());
        }
        if params.get("client_assertion_type").map(String::as_str) != Some(ASSERTION_TYPE) {
            return Err(format!("client_assertion_type must be {ASSERTION_TYPE}"));
        }
        let assertion = params.get("client_assertion").ok_or("client_assertion is missing")?;
        let parts: Vec<&str> = assertion.split('.').collect();
        let [header, claims, signature] = parts.as_slice() else { return Err("the assertion is not a JWS".into()) };
        let decode = |part: &str| -> Result<Value, String> {
            let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| "the assertion is not base64url")?;
            serde_json::from_slice(&bytes).map_err(|_| "the assertion is not JSON".to_owned())
        };
        let (header, claims) = (decode(header)?, decode(claims)?);
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| "the signature is not base64url")?;
        let input = assertion.rsplit_once('.').map_or("", |(input, _)| input).as_bytes();
        let alg = header["alg"].as_str().unwrap_or_default();
        match (method, alg) {
            (ClientAuthentication::ClientSecretJwt, "HS256") => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.config.client_secret.as_bytes());
                ring::hmac::verify(&key, input, &signature).map_err(|_| "the HS256 signature is wrong")?;
            }
            (ClientAuthentication::PrivateKeyJwt(jwks), "RS256" | "PS256" | "ES256") => {
                let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
                let kid = header["kid"].as_str();
                let verified = keys
                    .iter()
                    .filter(|key| kid.is_none() || key["kid"].as_str() == kid)
                    .any(|key| verify(key, alg, input, &signature));
                if !verified {
                    return Err(format!("no registered key (kid {kid:?}) verifies the {alg} signature"));
                }
            }
            _ => return Err(format!("alg {alg:?} is not this client's method")),
        }
        let client = self.config.client_id.as_str();
        if claims["iss"].as_str() != Some(client) || claims["sub"].as_str() != Some(client) {
            return Err("iss and sub must both be the client id".into());
        }
        let audiences: Vec<&str> = match &claims["aud"] {
            Value::String(aud) => vec![aud.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let token_endpoint = format!("{}/token", self.base());
        let faults = self.lock().faults.clone();
        let accepted: Vec<String> = match faults.find(|f| match f {
            Fault::ClientAssertionAudience(aud) => Some(aud.clone()),
            _ => None,
        }) {
            Some(only) => vec![only],
            None => vec![self.config.issuer.clone(), self.advertised_issuer().to_owned(), token_endpoint],
        };
        if !audiences.iter().any(|aud| accepted.iter().any(|a| a == aud)) {
            return Err(format!("aud {audiences:?} is not one of {accepted:?}"));
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let exp = claims["exp"].as_u64().ok_or("exp is missing")?;
        if exp < now {
            return Err("the assertion has expired".into());
        }
        let jti = claims["jti"].as_str().filter(|j| !j.is_empty()).ok_or("jti is missing")?;
        let mut seen = self.config.seen_assertions.0.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, exp| *exp >= now);
        if seen.insert(jti.to_owned(), exp).is_some() {
            return Err("the assertion's jti was used before".into());
        }
        Ok(())
    }
}

/// Whether the public JWK `key` verifies `signature` of `input` with `alg`.
fn verify(key: &Value, alg: &str, input: &[u8], signature: &[u8]) -> bool {
    let member = |name: &str| key[name].as_str().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
    match (alg, key["kty"].as_str()) {
        ("RS256" | "PS256", Some("RSA")) => {
            let (Some(n), Some(e)) = (member("n"), member("e")) else { return false };
            let params = if alg == "PS256" {
                &signature::RSA_PSS_2048_8192_SHA256
            } else {
                &signature::RSA_PKCS1_2048_8192_SHA256
            };
            signature::RsaPublicKeyComponents { n, e }.verify(params, input, signature).is_ok()
        }
        ("ES256", Some("EC")) => {
            let (Some(x), Some(y)) = (member("x"), member("y")) else { return false };
            let point = [&[0x04][..], &x, &y].concat();
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(input, signature).is_ok()
        }
        _ => false,
    }
}
