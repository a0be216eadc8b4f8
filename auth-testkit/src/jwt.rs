//! Compact JWS by hand: `base64url(header).base64url(claims).base64url(signature)`.
//! Doing it by hand is what lets the mock produce deliberately broken tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::keys::{EcSigningKey, PsSigningKey, SigningKey};

/// How to sign; the defaults produce a correct RS256 token.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SignOptions {
    pub(crate) alg: Alg,
    pub(crate) omit_kid: bool,
    pub(crate) corrupt_signature: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Alg {
    #[default]
    Rs256,
    /// `alg: none` with an empty signature.
    None,
    /// HMAC-SHA256 keyed with the public key's SPKI PEM text (key-confusion attack).
    Hs256WithPublicKey,
}

pub(crate) fn sign(key: &SigningKey, claims: &Value, opts: SignOptions) -> String {
    sign_typed(key, claims, opts, Some("JWT"))
}

/// [`sign`] with another `typ` header (`logout+jwt` for logout tokens, `at+jwt` for access
/// tokens), or none.
pub(crate) fn sign_typed(key: &SigningKey, claims: &Value, opts: SignOptions, typ: Option<&str>) -> String {
    let alg = match opts.alg {
        Alg::Rs256 => "RS256",
        Alg::None => "none",
        Alg::Hs256WithPublicKey => "HS256",
    };
    let mut header = json!({ "alg": alg });
    if let Some(typ) = typ {
        header["typ"] = Value::String(typ.to_owned());
    }
    if !opts.omit_kid {
        header["kid"] = Value::String(key.kid.clone());
    }
    let signing_input = format!("{}.{}", b64_json(&header), b64_json(claims));
    let mut signature = match opts.alg {
        Alg::Rs256 => key.sign_rs256(signing_input.as_bytes()),
        Alg::None => Vec::new(),
        Alg::Hs256WithPublicKey => {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(key.public_pem.as_bytes()).expect("HMAC accepts keys of any length");
            mac.update(signing_input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    if opts.corrupt_signature
        && let Some(last) = signature.last_mut()
    {
        *last ^= 0x01;
    }
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A correct ES256 token of `claims` with `key`, header `typ: "JWT"`; `corrupt_signature`
/// flips one bit of the signature and `omit_kid` leaves out the `kid`, as for RS256.
pub(crate) fn sign_es256(key: &EcSigningKey, claims: &Value, opts: SignOptions) -> String {
    sign_with("ES256", &key.kid, |input| key.sign_es256(input), claims, opts)
}

/// A correct PS256 token of `claims` with `key`; the options as for [`sign_es256`].
pub(crate) fn sign_ps256(key: &PsSigningKey, claims: &Value, opts: SignOptions) -> String {
    sign_with("PS256", &key.kid, |input| key.sign_ps256(input), claims, opts)
}

/// A token of `claims` with header `alg`, `typ: "JWT"` and `kid`, signed by `sign`.
fn sign_with(alg: &str, kid: &str, sign: impl Fn(&[u8]) -> Vec<u8>, claims: &Value, opts: SignOptions) -> String {
    let mut header = json!({ "alg": alg, "typ": "JWT" });
    if !opts.omit_kid {
        header["kid"] = Value::String(kid.to_owned());
    }
    let signing_input = format!("{}.{}", b64_json(&header), b64_json(claims));
    let mut signature = sign(signing_input.as_bytes());
    if opts.corrupt_signature
        && let Some(last) = signature.last_mut()
    {
        *last ^= 0x01;
    }
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Shallow-merges `extra` into `target` (both JSON objects); a `null` value removes the key.
pub(crate) fn merge(target: &mut Map<String, Value>, extra: &Value) {
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            if v.is_null() {
                target.remove(k);
            } else {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

pub(crate) fn random_token() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// PKCE S256: `base64url(sha256(verifier))`.
pub(crate) fn pkce_s256(verifier: &str) -> String {
    use sha2::Digest as _;
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}
