//! Client authentication without a shared secret in transit (RFC 7523 §2.2): the client
//! proves who it is with a short-lived JWT, the client assertion, signed with its private
//! key (`private_key_jwt`) or keyed with its secret (`client_secret_jwt`).
//!
//! [`ClientKeys`] are loaded from the section's PEM files when the provider is built, so a
//! missing, unreadable, encrypted or unusable key is a startup error naming the key and
//! the fix. The first key signs; every key is published (the layer's `GET /auth/jwks`), so
//! a new key can be registered before it signs. The algorithm comes from the key: RS256
//! for RSA (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`; PS256 with
//! `token_endpoint_auth_signing_alg = "PS256"`), ES256 for EC P-256 (PKCS#8, or SEC1
//! `EC PRIVATE KEY`). Key material never reaches `Debug`, logs or errors.

use super::discovery::Metadata;
use crate::error::BuildError;
use auth_core::{ClientAssertionAudience, ProviderConfig, unix_now};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Value, json};
use std::fmt;
use std::path::Path;

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long an assertion is valid: long enough for one request, short enough that a copy
/// is useless soon after.
const ASSERTION_TTL_SECS: u64 = 60;

/// DER of the OIDs this module recognises in PKCS#8 and SEC1 keys.
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// The client's signing keys (`client_private_key_file`): `Debug` shows kids and
/// algorithms only.
pub(crate) struct ClientKeys {
    keys: Vec<ClientKey>,
    /// `x5t#S256` of `client_certificate_file`, the certificate of the first key.
    x5t_s256: Option<String>,
}

struct ClientKey {
    kid: String,
    signer: Signer,
    /// The public JWK (no private member), with `kid`, `use` and `alg`.
    public_jwk: Value,
}

enum Signer {
    /// RS256, or PS256 with `pss`.
    Rsa {
        pair: RsaKeyPair,
        pss: bool,
    },
    Es256(EcdsaKeyPair),
}

impl Signer {
    fn alg(&self) -> &'static str {
        match self {
            Self::Rsa { pss: false, .. } => "RS256",
            Self::Rsa { pss: true, .. } => "PS256",
            Self::Es256(_) => "ES256",
        }
    }
}

impl fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.keys.iter().map(|k| format!("{} {}", k.signer.alg(), k.kid)).collect();
        f.debug_struct("ClientKeys").field("keys", &keys).field("x5t#S256", &self.x5t_s256).finish()
    }
}

impl ClientKeys {
    /// The keys of `config` when it uses `private_key_jwt`, else `None`.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] naming `client_private_key_file` (or `client_certificate_file`)
    /// and the fix: a file that is missing or unreadable, not PEM, encrypted, a certificate
    /// or public key instead of a private key, or a key of a type other than RSA (2048 bits
    /// or more) or EC P-256; a certificate that is not the first key's.
    pub(crate) fn load(config: &ProviderConfig) -> Result<Option<Self>, BuildError> {
        if config.token_endpoint_auth_method != auth_core::TokenAuthMethod::PrivateKeyJwt {
            return Ok(None);
        }
        let mut keys = Vec::new();
        for (index, path) in config.client_private_key_files.iter().enumerate() {
            let fail =
                |problem: String, fix: &str| BuildError::invalid(&config.name, "client_private_key_file", problem, fix);
            let (signer, public_jwk) = load_key(path).map_err(|(problem, fix)| fail(problem, &fix))?;
            let signer = with_alg(signer, config.token_endpoint_auth_signing_alg.as_deref()).map_err(|problem| {
                let fix = "use RS256 or PS256 with RSA keys and ES256 with EC P-256 keys, or remove \
                           token_endpoint_auth_signing_alg (the key decides)";
                BuildError::invalid(&config.name, "token_endpoint_auth_signing_alg", problem, fix)
            })?;
            let kid = match config.client_key_ids.get(index) {
                Some(kid) => kid.clone(),
                None => auth_core::dpop::thumbprint(&public_jwk).ok_or_else(|| {
                    let (problem, fix) = internal(&path.display().to_string());
                    fail(problem, &fix)
                })?,
            };
            let mut public_jwk = public_jwk;
            if let Value::Object(members) = &mut public_jwk {
                members.insert("kid".into(), kid.clone().into());
                members.insert("use".into(), "sig".into());
                members.insert("alg".into(), signer.alg().into());
            }
            keys.push(ClientKey { kid, signer, public_jwk });
        }
        let x5t_s256 = match (&config.client_certificate_file, keys.first()) {
            (Some(path), Some(first)) => Some(certificate_thumbprint(path, first).map_err(|(problem, fix)| {
                BuildError::invalid(&config.name, "client_certificate_file", problem, fix)
            })?),
            _ => None,
        };
        Ok(Some(Self { keys, x5t_s256 }))
    }

    /// The public keys as JWKs (`kty`, `kid`, `use`, `alg`, and `n`/`e` or `crv`/`x`/`y`).
    pub(crate) fn public_jwks(&self) -> Vec<Value> {
        self.keys.iter().map(|k| k.public_jwk.clone()).collect()
    }

    /// A client assertion for `claims`, signed with the first key.
    fn sign(&self, claims: &Value) -> Result<String, String> {
        let key = self.keys.first().ok_or("no client key is configured")?;
        let mut header = json!({ "alg": key.signer.alg(), "typ": "JWT", "kid": key.kid });
        if let (Some(x5t), Value::Object(members)) = (&self.x5t_s256, &mut header) {
            members.insert("x5t#S256".into(), x5t.clone().into());
        }
        let input = signing_input(&header, claims);
        let rng = SystemRandom::new();
        let signature = match &key.signer {
            Signer::Rsa { pair, pss } => {
                let mut signature = vec![0; pair.public().modulus_len()];
                let encoding: &dyn signature::RsaEncoding =
                    if *pss { &signature::RSA_PSS_SHA256 } else { &signature::RSA_PKCS1_SHA256 };
                pair.sign(encoding, &rng, input.as_bytes(), &mut signature).map_err(|_| "RSA signing failed")?;
                signature
            }
            Signer::Es256(pair) => {
                pair.sign(&rng, input.as_bytes()).map_err(|_| "ECDSA signing failed")?.as_ref().to_vec()
            }
        };
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// `signer` with the algorithm `token_endpoint_auth_signing_alg` names, when it suits the
/// key (RS256 or PS256 for RSA, ES256 for EC).
fn with_alg(signer: Signer, alg: Option<&str>) -> Result<Signer, String> {
    match (signer, alg) {
        (signer, None) => Ok(signer),
        (Signer::Rsa { pair, .. }, Some("RS256")) => Ok(Signer::Rsa { pair, pss: false }),
        (Signer::Rsa { pair, .. }, Some("PS256")) => Ok(Signer::Rsa { pair, pss: true }),
        (signer @ Signer::Es256(_), Some("ES256")) => Ok(signer),
        (signer, Some(alg)) => Err(format!(
            "is {alg:?}, which a key of client_private_key_file ({}) cannot sign",
            match signer {
                Signer::Rsa { .. } => "RSA",
                Signer::Es256(_) => "EC P-256",
            }
        )),
    }
}

/// The `aud` of an assertion sent to `metadata`'s provider.
pub(crate) fn audience(which: ClientAssertionAudience, metadata: &Metadata) -> &str {
    match which {
        ClientAssertionAudience::TokenEndpoint => metadata.token_endpoint.as_str(),
        _ => &metadata.issuer,
    }
}

/// The claims of an assertion of `client_id` for `audience`: `iss` = `sub` = the client,
/// a fresh random `jti`, `iat` = `nbf` = now, `exp` a minute later.
fn claims(client_id: &str, audience: &str) -> Result<Value, String> {
    let mut jti = [0u8; 24];
    SystemRandom::new().fill(&mut jti).map_err(|_| "no randomness for the assertion's jti")?;
    let now = unix_now();
    Ok(json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": URL_SAFE_NO_PAD.encode(jti),
        "iat": now,
        "nbf": now,
        "exp": now + ASSERTION_TTL_SECS,
    }))
}

/// A `private_key_jwt` assertion of `client_id` for `audience`.
pub(crate) fn private_key_assertion(keys: &ClientKeys, client_id: &str, audience: &str) -> Result<String, String> {
    keys.sign(&claims(client_id, audience)?)
}

/// A `client_secret_jwt` assertion of `client_id` for `audience`: HS256 keyed with the
/// client secret.
pub(crate) fn secret_assertion(secret: &str, client_id: &str, audience: &str) -> Result<String, String> {
    let input = signing_input(&json!({ "alg": "HS256", "typ": "JWT" }), &claims(client_id, audience)?);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, input.as_bytes());
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())))
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

/// A problem and its fix, for the caller to name the key.
type Problem = (String, String);

const NEW_KEY: &str = "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out client-key.pem \
                       (or -algorithm EC -pkeyopt ec_paramgen_curve:P-256), and register its public key at the provider";
const NEW_EC_KEY: &str = "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out client-key.pem, \
                          and register its public key at the provider";

/// Reads the PEM file at `path`: its signer and public JWK (without `kid`, `use`, `alg`).
fn load_key(path: &Path) -> Result<(Signer, Value), Problem> {
    let shown = path.display();
    let text = read(path)?;
    let (label, der) = pem(&text).ok_or_else(|| {
        (
            format!("names {shown}, which is not a PEM file (no -----BEGIN ...----- block)"),
            "give the PEM file of the private key; convert a DER key with openssl pkey -inform DER -in KEY -out client-key.pem"
                .to_owned(),
        )
    })?;
    let refuse = |problem: &str, fix: &str| Err((format!("names {shown}, which {problem}"), fix.to_owned()));
    let encrypted = text.contains("Proc-Type: 4,ENCRYPTED");
    match label.as_str() {
        "ENCRYPTED PRIVATE KEY" => {}
        _ if encrypted => {}
        "PRIVATE KEY" => return pkcs8(&der, &shown.to_string()),
        "RSA PRIVATE KEY" => {
            let pair = RsaKeyPair::from_der(&der).map_err(|e| rejected(&shown.to_string(), "RSA", e))?;
            let jwk = rsa_jwk(&pair).ok_or_else(|| internal(&shown.to_string()))?;
            return Ok((Signer::Rsa { pair, pss: false }, jwk));
        }
        "EC PRIVATE KEY" => return sec1(&der, &shown.to_string()),
        "CERTIFICATE" => {
            return refuse(
                "holds a certificate, not a private key",
                "give the private key's PEM file here; the certificate goes in client_certificate_file",
            );
        }
        "PUBLIC KEY" | "RSA PUBLIC KEY" => {
            return refuse(
                "holds a public key, not a private key",
                "give the private key's PEM file; the provider gets the public key (or /auth/jwks)",
            );
        }
        other => {
            return Err((
                format!("names {shown}, whose PEM block is {other:?}, not a private key"),
                format!(
                    "give an RSA or EC P-256 private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY); create one with {NEW_KEY}"
                ),
            ));
        }
    }
    refuse(
        "holds an encrypted private key (the app has no passphrase to open it)",
        "decrypt it once: openssl pkey -in ENCRYPTED.pem -out client-key.pem (and let only the app's user read the result)",
    )
}

fn read(path: &Path) -> Result<String, Problem> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => (
            format!("names {shown}, which does not exist"),
            "write the path of the PEM file (a relative path starts at the app's working directory)".to_owned(),
        ),
        std::io::ErrorKind::PermissionDenied => (
            format!("names {shown}, which this process may not read (permission denied)"),
            "let the app's user read it, e.g. chown APPUSER FILE && chmod 600 FILE".to_owned(),
        ),
        kind => (format!("names {shown}, which cannot be read ({kind})"), "check the path and the file".to_owned()),
    })?;
    String::from_utf8(bytes).map_err(|_| {
        (
            format!("names {shown}, which is not a PEM text file"),
            "give the PEM file (convert DER with openssl pkey -inform DER -in KEY -out client-key.pem)".to_owned(),
        )
    })
}

/// The label and DER content of the first PEM block of `text`.
fn pem(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----")?;
    let end = rest.find(&format!("-----END {label}-----"))?;
    let body: String = rest[..end]
        .lines()
        .filter(|line| !line.contains(':'))
        .flat_map(str::chars)
        .filter(|c| !c.is_whitespace())
        .collect();
    Some((label.to_owned(), STANDARD.decode(body).ok()?))
}

fn pkcs8(der: &[u8], shown: &str) -> Result<(Signer, Value), Problem> {
    // The algorithm identifier comes first; key material after it is not searched.
    let has = |oid: &[u8]| contains_oid(&der[..der.len().min(40)], oid);
    if has(OID_ED25519) || has(OID_ED448) {
        let kind = if has(OID_ED25519) { "Ed25519" } else { "Ed448" };
        return Err((
            format!(
                "names {shown}, which holds an {kind} key; client assertions here are RS256 (RSA) or ES256 (EC P-256)"
            ),
            format!("use an RSA (2048 bits or more) or EC P-256 key: {NEW_KEY}"),
        ));
    }
    if has(OID_EC_PUBLIC_KEY) {
        if !has(OID_P256) {
            return Err((
                format!("names {shown}, which holds an EC key on another curve than P-256"),
                format!("use a P-256 key (ES256): {NEW_EC_KEY}"),
            ));
        }
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
            .map_err(|e| rejected(shown, "EC P-256", e))?;
        let jwk = auth_core::dpop::p256_jwk(pair.public_key().as_ref()).ok_or_else(|| internal(shown))?;
        return Ok((Signer::Es256(pair), jwk));
    }
    let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| rejected(shown, "RSA", e))?;
    let jwk = rsa_jwk(&pair).ok_or_else(|| internal(shown))?;
    Ok((Signer::Rsa { pair, pss: false }, jwk))
}

/// SEC1 `ECPrivateKey` (RFC 5915): version, private key, `[0]` curve, `[1]` public key.
fn sec1(der: &[u8], shown: &str) -> Result<(Signer, Value), Problem> {
    let convert = format!(
        "convert it to PKCS#8: openssl pkcs8 -topk8 -nocrypt -in {shown} -out client-key.pem, and name the new file"
    );
    let parsed = (|| {
        let (tag, body, _) = der_element(der)?;
        (tag == 0x30).then_some(())?;
        let (_, _version, rest) = der_element(body)?;
        let (tag, private, mut rest) = der_element(rest)?;
        (tag == 0x04).then_some(())?;
        let (mut curve, mut public) = (None, None);
        while !rest.is_empty() {
            let (tag, content, next) = der_element(rest)?;
            match tag {
                0xa0 => curve = Some(der_element(content)?.1),
                0xa1 => public = der_element(content)?.1.split_first().map(|(_, point)| point),
                _ => {}
            }
            rest = next;
        }
        Some((private, curve, public))
    })();
    let Some((private, curve, public)) = parsed else {
        return Err((format!("names {shown}, whose EC PRIVATE KEY block cannot be parsed"), convert));
    };
    if curve.is_some_and(|oid| oid != OID_P256) {
        return Err((
            format!("names {shown}, which holds an EC key on another curve than P-256"),
            format!("use a P-256 key (ES256): {NEW_EC_KEY}"),
        ));
    }
    let Some(public) = public else {
        return Err((format!("names {shown}, whose EC PRIVATE KEY lacks its public key"), convert));
    };
    let pair = EcdsaKeyPair::from_private_key_and_public_key(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        private,
        public,
        &SystemRandom::new(),
    )
    .map_err(|e| rejected(shown, "EC P-256", e))?;
    let jwk = auth_core::dpop::p256_jwk(pair.public_key().as_ref()).ok_or_else(|| internal(shown))?;
    Ok((Signer::Es256(pair), jwk))
}

fn rejected(shown: &str, kind: &str, error: ring::error::KeyRejected) -> Problem {
    (
        format!("names {shown}, whose {kind} key cannot be used ({error})"),
        format!("use an RSA key of 2048 to 8192 bits or an EC P-256 key: {NEW_KEY}"),
    )
}

fn internal(shown: &str) -> Problem {
    (format!("names {shown}, whose public key cannot be encoded"), format!("create a new key: {NEW_KEY}"))
}

/// `{"kty":"RSA","n":...,"e":...}` of `pair`, from ring's DER `RSAPublicKey`.
fn rsa_jwk(pair: &RsaKeyPair) -> Option<Value> {
    let (tag, body, _) = der_element(pair.public().as_ref())?;
    (tag == 0x30).then_some(())?;
    let (_, n, rest) = der_element(body)?;
    let (_, e, _) = der_element(rest)?;
    let unsigned = |int: &[u8]| -> String {
        let trimmed = match int {
            [0, rest @ ..] if !rest.is_empty() => rest,
            other => other,
        };
        URL_SAFE_NO_PAD.encode(trimmed)
    };
    Some(json!({ "kty": "RSA", "n": unsigned(n), "e": unsigned(e) }))
}

/// `x5t#S256` of the PEM certificate at `path`, which must hold `key`'s public key.
fn certificate_thumbprint(path: &Path, key: &ClientKey) -> Result<String, Problem> {
    let shown = path.display();
    let text = read(path)?;
    let der = match pem(&text) {
        Some((label, der)) if label == "CERTIFICATE" => der,
        _ => {
            return Err((
                format!("names {shown}, which holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
                "give the certificate uploaded to the app registration, as PEM".to_owned(),
            ));
        }
    };
    // The certificate's SubjectPublicKeyInfo holds the public key's bytes verbatim: the
    // DER RSAPublicKey, or the EC point.
    let public: &[u8] = match &key.signer {
        Signer::Rsa { pair, .. } => pair.public().as_ref(),
        Signer::Es256(pair) => pair.public_key().as_ref(),
    };
    if !der.windows(public.len()).any(|window| window == public) {
        return Err((
            format!("names {shown}, which is not the certificate of the first client_private_key_file"),
            "give the certificate of the signing key (the first client_private_key_file)".to_owned(),
        ));
    }
    Ok(URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &der).as_ref()))
}

/// Whether the DER `der` holds the OBJECT IDENTIFIER `oid`.
fn contains_oid(der: &[u8], oid: &[u8]) -> bool {
    let mut encoded = vec![0x06, oid.len() as u8];
    encoded.extend_from_slice(oid);
    der.windows(encoded.len()).any(|window| window == encoded.as_slice())
}

/// The first DER element of `input`: its tag, its content and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count].iter().fold(0usize, |len, b| (len << 8) | usize::from(*b));
        (len, &rest[count..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_read_with_their_label() {
        let (label, der) = pem("junk\n-----BEGIN TEST-----\nAAEC\nAw==\n-----END TEST-----\n").expect("pem");
        assert_eq!(label, "TEST");
        assert_eq!(der, [0, 1, 2, 3]);
        assert!(pem("no pem here").is_none());
    }

    #[test]
    fn secret_assertions_are_hs256() {
        let jwt = secret_assertion("s3cret", "client", "https://idp.example").expect("signs");
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
        assert_eq!(header["alg"], "HS256");
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        assert_eq!((claims["iss"].as_str(), claims["sub"].as_str()), (Some("client"), Some("client")));
        assert_eq!(claims["aud"], "https://idp.example");
        assert!(!jwt.contains("s3cret"));
    }
}
