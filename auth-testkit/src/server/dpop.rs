//! DPoP (RFC 9449) at `/token` and `/userinfo`, when the builder's `dpop(true)` is on.
//!
//! A proof must be a `dpop+jwt` signed (ES256 or EdDSA) by the public key in its header,
//! for this request's method and URL (`htm`, `htu` without query), issued within a minute
//! (`iat`), with a `jti` never seen before, the server's current nonce when
//! `dpop_nonce_required(true)` (else `use_dpop_nonce` with a `DPoP-Nonce` header), and at
//! `/userinfo` the access token's hash (`ath`). The key's thumbprint must be the one the
//! authorization request named (`dpop_jkt`) and, for a refresh and at `/userinfo`, the one
//! the grant is bound to (`cnf.jkt`).

use super::{Shared, oauth_error, unix_now};
use crate::fault::Fault;
use crate::fault::Faults;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Where a proof is checked, which decides the shape of a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum At {
    Token,
    Userinfo,
}

impl Shared {
    /// The thumbprint of the key of the `DPoP` proof in `headers`, if the request carries
    /// one and it is valid for `method` at `path` (and `access_token`'s hash at userinfo);
    /// `Ok(None)` without a proof; `Err` is the refusal to send.
    pub(super) fn dpop_proof(
        &self,
        headers: &HeaderMap,
        at: At,
        method: &str,
        path: &str,
        access_token: Option<&str>,
        faults: &Faults,
    ) -> Result<Option<String>, Response> {
        if !self.config.dpop {
            return Ok(None);
        }
        let Some(proof) = headers.get("dpop").and_then(|v| v.to_str().ok()) else { return Ok(None) };
        let htu = format!("{}{path}", self.config.issuer);
        let (jkt, nonce) = check(proof, method, &htu, access_token).map_err(|description| {
            tracing::debug!(%description, "mock-idp: DPoP proof refused");
            self.dpop_refusal(at, "invalid_dpop_proof", &description)
        })?;
        {
            let mut state = self.lock();
            if !state.dpop_jtis.insert(jkt.clone() + "." + &nonce.jti) {
                drop(state);
                return Err(self.dpop_refusal(at, "invalid_dpop_proof", "The proof's jti was seen before."));
            }
            if self.config.dpop_nonce_required {
                let current = state.dpop_nonce.get_or_insert_with(crate::jwt::random_token).clone();
                let rotate = faults.has(&Fault::DpopNonceRotated) && !state.dpop_nonce_fresh;
                if nonce.nonce.as_deref() != Some(current.as_str()) || rotate {
                    if rotate {
                        state.dpop_nonce = Some(crate::jwt::random_token());
                    }
                    state.dpop_nonce_fresh = true;
                    drop(state);
                    return Err(self.dpop_refusal(at, "use_dpop_nonce", "Use the server's DPoP nonce."));
                }
                state.dpop_nonce_fresh = false;
            }
        }
        Ok(Some(jkt))
    }

    /// A refusal of a DPoP request: `400` with an OAuth error at `/token`, `401` with
    /// `WWW-Authenticate: DPoP error=...` at `/userinfo`; both with the current nonce.
    pub(super) fn dpop_refusal(&self, at: At, error: &str, description: &str) -> Response {
        let mut response = match at {
            At::Token => oauth_error(StatusCode::BAD_REQUEST, error, description),
            At::Userinfo => {
                let mut response = oauth_error(StatusCode::UNAUTHORIZED, error, description);
                if let Ok(value) = HeaderValue::from_str(&format!("DPoP error=\"{error}\"")) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
        };
        self.add_dpop_nonce(&mut response);
        response
    }

    /// Adds the current `DPoP-Nonce` to `response` when nonces are required.
    pub(super) fn add_dpop_nonce(&self, response: &mut Response) {
        if !self.config.dpop || !self.config.dpop_nonce_required {
            return;
        }
        let nonce = self.lock().dpop_nonce.get_or_insert_with(crate::jwt::random_token).clone();
        if let Ok(value) = HeaderValue::from_str(&nonce) {
            response.headers_mut().insert("dpop-nonce", value);
        }
    }
}

struct Claims {
    jti: String,
    nonce: Option<String>,
}

/// Checks `proof`; its key's thumbprint and its `jti` and `nonce`.
fn check(proof: &str, method: &str, htu: &str, access_token: Option<&str>) -> Result<(String, Claims), String> {
    let parts: Vec<&str> = proof.split('.').collect();
    let [header_part, claims_part, signature_part] = parts[..] else { return Err("The proof is not a JWS.".into()) };
    let decode = |part: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| "The proof is not base64url.".to_owned())?;
        serde_json::from_slice(&bytes).map_err(|_| "The proof is not JSON.".to_owned())
    };
    let (header, claims) = (decode(header_part)?, decode(claims_part)?);
    if header["typ"] != "dpop+jwt" {
        return Err("The proof's typ is not dpop+jwt.".into());
    }
    let jwk = &header["jwk"];
    let coordinate = |name: &str| {
        jwk[name].as_str().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok()).ok_or(format!("The jwk lacks {name}."))
    };
    let (algorithm, public): (&'static dyn signature::VerificationAlgorithm, Vec<u8>) =
        match (header["alg"].as_str(), jwk["kty"].as_str(), jwk["crv"].as_str()) {
            (Some("ES256"), Some("EC"), Some("P-256")) => {
                (&signature::ECDSA_P256_SHA256_FIXED, [vec![4], coordinate("x")?, coordinate("y")?].concat())
            }
            (Some("EdDSA"), Some("OKP"), Some("Ed25519")) => (&signature::ED25519, coordinate("x")?),
            _ => return Err("The proof's alg or jwk is not ES256/P-256 or EdDSA/Ed25519.".into()),
        };
    let signature = URL_SAFE_NO_PAD.decode(signature_part).map_err(|_| "The signature is not base64url.")?;
    UnparsedPublicKey::new(algorithm, public)
        .verify(format!("{header_part}.{claims_part}").as_bytes(), &signature)
        .map_err(|_| "The proof's signature does not verify with its jwk.")?;
    if claims["htm"] != method {
        return Err(format!("The proof's htm is not {method}."));
    }
    if claims["htu"] != htu {
        return Err(format!("The proof's htu is not {htu}."));
    }
    let iat = claims["iat"].as_u64().ok_or("The proof has no iat.")?;
    if iat.abs_diff(unix_now()) > 60 {
        return Err("The proof's iat is not within a minute of now.".into());
    }
    let jti = claims["jti"].as_str().filter(|j| !j.is_empty()).ok_or("The proof has no jti.")?.to_owned();
    if let Some(token) = access_token
        && claims["ath"].as_str() != Some(URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())).as_str())
    {
        return Err("The proof's ath is not the hash of the access token.".into());
    }
    let nonce = claims["nonce"].as_str().map(str::to_owned);
    Ok((thumbprint(jwk).ok_or("The jwk cannot be thumbprinted.")?, Claims { jti, nonce }))
}

/// The RFC 7638 thumbprint of an EC or OKP `jwk`.
pub(crate) fn thumbprint(jwk: &Value) -> Option<String> {
    let field = |name: &str| jwk[name].as_str();
    let canonical = match field("kty")? {
        "EC" => format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, field("crv")?, field("x")?, field("y")?),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, field("crv")?, field("x")?),
        _ => return None,
    };
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}
