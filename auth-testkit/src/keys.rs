//! The fixed signing keys: generating RSA keys in a debug build takes seconds, so the
//! mock ships three committed, **public and insecure** test keys (see `keys/README.md`).

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::SigningKey as Pkcs1v15SigningKey;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use sha2::Sha256;

const PEMS: [&str; 3] = [
    include_str!("../keys/mock-key-1.pem"),
    include_str!("../keys/mock-key-2.pem"),
    include_str!("../keys/mock-key-3.pem"),
];

/// One RSA key with everything derived from it that the server needs.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    signer: Pkcs1v15SigningKey<Sha256>,
    /// The public JWK as served by `/jwks`.
    pub(crate) jwk: Value,
    /// SPKI PEM of the public key (LF line endings): the HMAC key of the HS256 attack.
    pub(crate) public_pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    fn from_pem(index: usize, pem: &str) -> Self {
        let private = RsaPrivateKey::from_pkcs8_pem(pem).expect("embedded test key is valid PKCS#8");
        let public = RsaPublicKey::from(&private);
        let kid = format!("mock-key-{}", index + 1);
        let jwk = rsa_jwk(&public, "RS256", &kid);
        let public_pem = public.to_public_key_pem(LineEnding::LF).expect("a public key always encodes");
        Self { kid, signer: Pkcs1v15SigningKey::new(private), jwk, public_pem }
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (JWS `RS256`).
    pub(crate) fn sign_rs256(&self, message: &[u8]) -> Vec<u8> {
        self.signer.sign(message).to_vec()
    }
}

/// The public JWK of an RSA key for signatures with `alg`, named `kid`.
fn rsa_jwk(public: &RsaPublicKey, alg: &str, kid: &str) -> Value {
    json!({
        "kty": "RSA",
        "use": "sig",
        "alg": alg,
        "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    })
}

/// All embedded keys, parsed once per process.
pub(crate) fn all() -> &'static [SigningKey] {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    KEYS.get_or_init(|| PEMS.iter().enumerate().map(|(i, pem)| SigningKey::from_pem(i, pem)).collect())
}

/// The committed RSA key for [`MockIdpBuilder::id_token_ps256`](crate::MockIdpBuilder::id_token_ps256):
/// ID tokens signed PS256 (RSASSA-PSS, SHA-256) under its own `kid`, its public JWK served by
/// `/jwks` beside the RS256 key (which keeps signing access and logout tokens).
pub(crate) struct PsSigningKey {
    pub(crate) kid: String,
    pair: ring::signature::RsaKeyPair,
    /// The public JWK as served by `/jwks`.
    pub(crate) jwk: Value,
}

impl std::fmt::Debug for PsSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PsSigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl PsSigningKey {
    /// RSASSA-PSS with SHA-256 and a 32-byte salt (JWS `PS256`).
    pub(crate) fn sign_ps256(&self, message: &[u8]) -> Vec<u8> {
        let rng = ring::rand::SystemRandom::new();
        let mut signature = vec![0; self.pair.public().modulus_len()];
        match self.pair.sign(&ring::signature::RSA_PSS_SHA256, &rng, message, &mut signature) {
            Ok(()) => signature,
            Err(_) => Vec::new(),
        }
    }
}

/// The PS256 key, parsed once per process.
pub(crate) fn ps256() -> &'static PsSigningKey {
    use rsa::pkcs8::EncodePrivateKey as _;
    static KEY: OnceLock<PsSigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let private = RsaPrivateKey::from_pkcs8_pem(include_str!("../keys/mock-key-ps256.pem"))
            .expect("embedded test key is valid PKCS#8");
        let der = private.to_pkcs8_der().expect("a private key always encodes");
        let pair = ring::signature::RsaKeyPair::from_pkcs8(der.as_bytes()).expect("ring reads the embedded RSA key");
        let public = RsaPublicKey::from(&private);
        let kid = "mock-key-ps256".to_owned();
        let jwk = rsa_jwk(&public, "PS256", &kid);
        PsSigningKey { kid, pair, jwk }
    })
}

/// An EC P-256 key made at start, for [`MockIdpBuilder::id_token_es256`](crate::MockIdpBuilder::id_token_es256):
/// ID tokens signed ES256 under its own `kid`, its public JWK served by `/jwks` beside the
/// RSA key (which keeps signing access and logout tokens).
pub(crate) struct EcSigningKey {
    pub(crate) kid: String,
    pair: ring::signature::EcdsaKeyPair,
    /// The public JWK as served by `/jwks`.
    pub(crate) jwk: Value,
}

impl std::fmt::Debug for EcSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcSigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl EcSigningKey {
    /// A fresh key; `None` only if the system RNG fails.
    pub(crate) fn generate() -> Option<Self> {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).ok()?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).ok()?;
        // The uncompressed point: 0x04 || x || y.
        let point = pair.public_key().as_ref();
        let kid = "mock-ec-key".to_owned();
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "use": "sig",
            "alg": "ES256",
            "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Some(Self { kid, pair, jwk })
    }

    /// ECDSA P-256 with SHA-256, the fixed 64-byte JWS form (`ES256`).
    pub(crate) fn sign_es256(&self, message: &[u8]) -> Vec<u8> {
        let rng = ring::rand::SystemRandom::new();
        self.pair.sign(&rng, message).map(|signature| signature.as_ref().to_vec()).unwrap_or_default()
    }
}
