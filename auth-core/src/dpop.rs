//! DPoP (RFC 9449): the per-session key that binds a session's tokens, and the proofs it
//! signs.
//!
//! It lives here, not in auth-providers, because two crates sign with the same key: the
//! provider (token and userinfo requests) and the layer's `AccessToken` extractor (an app's
//! own API calls), and the layer does not depend on the providers. The key travels in the
//! session as [`TokenSet::dpop_key`](crate::TokenSet::dpop_key), a string that
//! [`DpopKey::from_stored`] reads back; `Debug` never shows it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::fmt;

/// The signature algorithm of a session's DPoP key (`dpop_alg`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpopAlg {
    /// ECDSA with P-256 and SHA-256 (the default, and what every DPoP server accepts).
    #[default]
    Es256,
    /// Ed25519.
    EdDsa,
}

impl DpopAlg {
    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// Whether a provider binds tokens with DPoP (`dpop = true | false | "optional"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpopMode {
    /// No DPoP (the default).
    #[default]
    Off,
    /// Every token must be DPoP-bound; a `Bearer` answer fails the login.
    Required,
    /// Ask for DPoP, and accept an unbound (`Bearer`) answer as an ordinary session.
    Optional,
}

/// Why a DPoP key could not be made or used (no randomness, which does not happen on a
/// working system).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpopError(&'static str);

impl fmt::Display for DpopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for DpopError {}

enum Pair {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

/// A DPoP key pair. `Debug` shows its thumbprint only.
pub struct DpopKey {
    pair: Pair,
    stored: String,
    jwk: Value,
    thumbprint: String,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey").field("jkt", &self.thumbprint).finish_non_exhaustive()
    }
}

impl DpopKey {
    /// A fresh key pair of `alg`.
    ///
    /// # Errors
    /// When the system has no randomness.
    pub fn generate(alg: DpopAlg) -> Result<Self, DpopError> {
        let rng = SystemRandom::new();
        let pkcs8 = match alg {
            DpopAlg::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng),
            DpopAlg::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng),
        }
        .map_err(|_| DpopError("cannot generate a DPoP key: no randomness"))?;
        let stored = format!("{}.{}", alg.as_str(), URL_SAFE_NO_PAD.encode(pkcs8.as_ref()));
        Self::from_stored(&stored).ok_or(DpopError("cannot read back a generated DPoP key"))
    }

    /// The key a session kept as [`stored`](Self::stored); `None` for anything else.
    pub fn from_stored(stored: &str) -> Option<Self> {
        let (alg, encoded) = stored.split_once('.')?;
        let pkcs8 = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        let (pair, jwk) = match alg {
            "ES256" => {
                let pair =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &SystemRandom::new()).ok()?;
                let jwk = p256_jwk(pair.public_key().as_ref())?;
                (Pair::Es256(pair), jwk)
            }
            "EdDSA" => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).ok()?;
                let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
                (Pair::EdDsa(pair), json!({"kty": "OKP", "crv": "Ed25519", "x": x}))
            }
            _ => return None,
        };
        let thumbprint = thumbprint(&jwk)?;
        Some(Self { pair, stored: stored.to_owned(), jwk, thumbprint })
    }

    /// The form a session keeps (the algorithm and the PKCS#8 key). A secret: do not log it.
    pub fn stored(&self) -> &str {
        &self.stored
    }

    /// The public key as a JWK (RFC 7517).
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The RFC 7638 thumbprint of the public key: the authorization request's `dpop_jkt`
    /// and the bound token's `cnf.jkt`.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The algorithm.
    pub fn alg(&self) -> DpopAlg {
        match self.pair {
            Pair::Es256(_) => DpopAlg::Es256,
            Pair::EdDsa(_) => DpopAlg::EdDsa,
        }
    }

    /// A DPoP proof (the `DPoP` header's value) for a `method` request to `url` (its query
    /// and fragment are left out of `htu`), with the server's `nonce` when one is known and,
    /// for a request carrying `access_token`, its hash `ath`.
    ///
    /// # Errors
    /// When the system has no randomness.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<String, DpopError> {
        let header = json!({"typ": "dpop+jwt", "alg": self.alg().as_str(), "jwk": self.jwk});
        let mut claims = json!({
            "jti": crate::random_token(),
            "htm": method,
            "htu": htu(url),
            "iat": crate::unix_now(),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        if let Some(token) = access_token {
            claims["ath"] = ath(token).into();
        }
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = match &self.pair {
            Pair::Es256(pair) => pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .map_err(|_| DpopError("cannot sign a DPoP proof: no randomness"))?
                .as_ref()
                .to_vec(),
            Pair::EdDsa(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
        };
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// `url` without its query and fragment: a proof's `htu` (RFC 9449 §4.2).
pub fn htu(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// A proof's `ath`: base64url(SHA-256(`access_token`)).
pub fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// The public JWK (`kty`, `crv`, `x`, `y`) of an EC P-256 key from its uncompressed point
/// (`0x04`, x, y: what ring's `public_key()` gives); `None` for anything else.
pub fn p256_jwk(point: &[u8]) -> Option<Value> {
    let xy = point.strip_prefix(&[0x04])?;
    (xy.len() == 64).then(|| {
        json!({ "kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&xy[..32]), "y": URL_SAFE_NO_PAD.encode(&xy[32..]) })
    })
}

/// The RFC 7638 thumbprint of a public `jwk` (EC, OKP or RSA: DPoP keys, and the client
/// keys whose `kid` defaults to it); `None` for other keys or missing members.
pub fn thumbprint(jwk: &Value) -> Option<String> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    // The required members in lexicographic order, no whitespace.
    let canonical = match field("kty")? {
        "EC" => format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, field("crv")?, field("x")?, field("y")?),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, field("crv")?, field("x")?),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, field("e")?, field("n")?),
        _ => return None,
    };
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, ED25519, UnparsedPublicKey};

    fn part(jwt: &str, i: usize) -> Value {
        let segment = jwt.split('.').nth(i).expect("segment");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).expect("base64")).expect("json")
    }

    #[test]
    fn proofs_verify_with_their_embedded_key() {
        for (alg, verify) in [
            (DpopAlg::Es256, &ECDSA_P256_SHA256_FIXED as &dyn ring::signature::VerificationAlgorithm),
            (DpopAlg::EdDsa, &ED25519),
        ] {
            let key = DpopKey::generate(alg).expect("key");
            let again = DpopKey::from_stored(key.stored()).expect("reads back");
            assert_eq!(again.thumbprint(), key.thumbprint());
            let proof = again.proof("GET", "https://api.example/x?q=1#f", Some("n1"), Some("at")).expect("proof");
            let (header, claims) = (part(&proof, 0), part(&proof, 1));
            assert_eq!(header["typ"], "dpop+jwt");
            assert_eq!(header["alg"], alg.as_str());
            assert_eq!(thumbprint(&header["jwk"]).as_deref(), Some(key.thumbprint()));
            assert_eq!(claims["htm"], "GET");
            assert_eq!(claims["htu"], "https://api.example/x");
            assert_eq!(claims["nonce"], "n1");
            assert_eq!(claims["ath"], ath("at"));
            let public = match alg {
                DpopAlg::Es256 => {
                    let x = URL_SAFE_NO_PAD.decode(header["jwk"]["x"].as_str().expect("x")).expect("x");
                    let y = URL_SAFE_NO_PAD.decode(header["jwk"]["y"].as_str().expect("y")).expect("y");
                    [vec![4], x, y].concat()
                }
                DpopAlg::EdDsa => URL_SAFE_NO_PAD.decode(header["jwk"]["x"].as_str().expect("x")).expect("x"),
            };
            let (input, signature) = proof.rsplit_once('.').expect("signed");
            UnparsedPublicKey::new(verify, public)
                .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(signature).expect("sig"))
                .expect("verifies");
            assert!(!format!("{key:?}").contains(key.stored()), "Debug hides the key");
        }
        assert!(DpopKey::from_stored("ES256.AAAA").is_none());
        assert!(DpopKey::from_stored("RS256.AAAA").is_none());
    }

    #[test]
    fn thumbprint_follows_rfc_7638() {
        // RFC 7638 §3.1's example key and thumbprint.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(thumbprint(&jwk).as_deref(), Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
    }

    #[test]
    fn thumbprint_matches_rfc_7638_example_shape() {
        // The EC member order.
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "kid": "ignored"});
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(br#"{"crv":"P-256","kty":"EC","x":"a","y":"b"}"#));
        assert_eq!(thumbprint(&jwk), Some(expected));
    }
}
