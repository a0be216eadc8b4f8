//! Sealing: AES-256-GCM authenticated encryption of cookie values (ring's implementation).
//!
//! The key is derived from `cookie_secret` with HKDF-SHA256, so any secret of at least 32
//! bytes works and the raw secret is never used as a key. Each sealed value is bound to a
//! purpose (the cookie's role) as associated data: a pending-login cookie cannot be
//! replayed as a session cookie. A sealer may also be bound to an app
//! ([`Sealer::with_context`], [`app_binding`]): the layer binds its cookies to its cookie
//! name and `redirect_uri`, so two apps sharing a `cookie_secret` cannot open each other's
//! cookies. Sealed text is `v1.` + base64url(nonce ‖ ciphertext ‖ tag).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use rand::RngCore as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::Sha256;
use std::fmt;

const PREFIX: &str = "v1.";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Seals and opens cookie values with the current secret; opens with previous ones too.
#[derive(Clone)]
pub struct Sealer {
    /// The current key first, then keys of previous secrets (for rotation).
    keys: Vec<LessSafeKey>,
    /// What every value is bound to besides its purpose (empty: nothing).
    context: Vec<u8>,
}

/// The binding of an app's cookies: its session cookie name and its `redirect_uri` (which
/// names the app's origin and callback). [`AuthConfig::sealer`](crate::AuthConfig::sealer)
/// binds with it.
pub fn app_binding(cookie_name: &str, redirect_uri: &str) -> String {
    format!("{cookie_name}\u{1f}{redirect_uri}")
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealer {{ keys: {} }}", self.keys.len())
    }
}

fn derive(secret: &[u8]) -> LessSafeKey {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(b"auth-core cookie sealing"), secret)
        .expand(b"aes-256-gcm v1", &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("a 32-byte key is valid for AES-256-GCM"))
}

/// base64url without padding, strictly (what [`Sealer::seal`] writes, and nothing else
/// decodes): SIMD where the CPU has it.
fn decode(text: &str) -> Option<Vec<u8>> {
    base64_simd::URL_SAFE_NO_PAD.decode_to_vec(text).ok()
}

impl Sealer {
    /// A sealer for `secret`, also opening values sealed with any of `previous`.
    ///
    /// Length rules are enforced by [`AuthConfig`](crate::AuthConfig); this accepts any bytes.
    pub fn new(secret: &[u8], previous: &[&[u8]]) -> Self {
        let keys = std::iter::once(secret).chain(previous.iter().copied()).map(derive).collect();
        Self { keys, context: Vec::new() }
    }

    /// The same sealer, binding every value to `context` too (as associated data): values
    /// sealed with another context, or none, do not open.
    #[must_use]
    pub fn with_context(mut self, context: &[u8]) -> Self {
        self.context = context.to_vec();
        self
    }

    /// The associated data of a value sealed for `purpose`.
    fn aad(&self, purpose: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(purpose.len() + 1 + self.context.len());
        aad.extend_from_slice(purpose.as_bytes());
        if !self.context.is_empty() {
            aad.push(0x1f);
            aad.extend_from_slice(&self.context);
        }
        aad
    }

    /// Whether previous secrets are configured (values may need re-sealing).
    pub fn has_previous(&self) -> bool {
        self.keys.len() > 1
    }

    /// Encrypts and authenticates `plaintext` for `purpose`.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = self.aad(purpose);
        let mut raw = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(plaintext);
        let tag = self.keys[0]
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad), &mut raw[NONCE_LEN..])
            .expect("AES-GCM sealing of an in-memory buffer cannot fail");
        raw.extend_from_slice(tag.as_ref());
        let mut out = String::with_capacity(PREFIX.len() + raw.len() * 4 / 3 + 4);
        out.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(&raw, &mut out);
        out
    }

    /// Opens a value sealed for `purpose`, returning the plaintext and whether it was
    /// sealed with the current secret (`false`: re-seal it). `None` for anything tampered,
    /// truncated, sealed for another purpose or with an unknown secret.
    pub fn open(&self, purpose: &str, sealed: &str) -> Option<(Vec<u8>, bool)> {
        let text = sealed.strip_prefix(PREFIX)?;
        // One allocation: the decoded bytes, decrypted in place.
        let mut raw = decode(text)?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let aad = self.aad(purpose);
        for (i, key) in self.keys.iter().enumerate() {
            if i > 0 {
                // A key that did not fit may have left the bytes changed: decode them again.
                raw = decode(text)?;
            }
            let (nonce, sealed) = raw.split_at_mut(NONCE_LEN);
            let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
            if let Ok(plain) = key.open_in_place(nonce, Aad::from(&aad), sealed) {
                let len = plain.len();
                raw.truncate(NONCE_LEN + len);
                raw.drain(..NONCE_LEN);
                return Some((raw, i == 0));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const OTHER: &[u8] = b"another secret of 32 bytes or more";

    #[test]
    fn round_trip() {
        let sealer = Sealer::new(SECRET, &[]);
        let sealed = sealer.seal("session", b"hello");
        assert!(sealed.starts_with("v1."));
        assert_eq!(sealer.open("session", &sealed), Some((b"hello".to_vec(), true)));
        assert_ne!(sealed, sealer.seal("session", b"hello"), "nonces differ");
    }

    #[test]
    fn tampering_purpose_and_foreign_secret_fail() {
        let sealer = Sealer::new(SECRET, &[]);
        let sealed = sealer.seal("session", b"hello");
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        assert_eq!(sealer.open("session", &tampered), None);
        assert_eq!(sealer.open("pending", &sealed), None);
        assert_eq!(Sealer::new(OTHER, &[]).open("session", &sealed), None);
        assert_eq!(sealer.open("session", "v1."), None);
        assert_eq!(sealer.open("session", "garbage!"), None);
        assert_eq!(sealer.open("session", &sealed[..sealed.len() / 2]), None);
    }

    #[test]
    fn previous_secrets_still_open() {
        let old = Sealer::new(OTHER, &[]).seal("session", b"x");
        let rotated = Sealer::new(SECRET, &[OTHER]);
        assert_eq!(rotated.open("session", &old), Some((b"x".to_vec(), false)));
    }

    #[test]
    fn values_are_bound_to_their_app() {
        let one =
            Sealer::new(SECRET, &[]).with_context(app_binding("auth_session", "https://one.example/cb").as_bytes());
        let two =
            Sealer::new(SECRET, &[]).with_context(app_binding("auth_session", "https://two.example/cb").as_bytes());
        let sealed = one.seal("session", b"x");
        assert_eq!(one.open("session", &sealed).map(|(p, _)| p), Some(b"x".to_vec()));
        assert_eq!(two.open("session", &sealed), None, "another app with the same secret");
        assert_eq!(Sealer::new(SECRET, &[]).open("session", &sealed), None, "an unbound sealer");
        assert_eq!(one.open("session", &Sealer::new(SECRET, &[]).seal("session", b"x")), None);
    }

    /// A value sealed by the previous implementation (the `aes-gcm` crate; the fuzz seed
    /// `fuzz/corpus/unseal/pending`) opens with this one: same key derivation and format.
    #[test]
    fn values_sealed_by_the_previous_implementation_open() {
        let sealed = concat!(
            "v1._Ue9Nw-Xn4TD1AVmiiz9QUYLP97ZDP-JJFq-NZElk89NzD21KP0slt5kZ_HOsdoNmTHa1TH0MWULW432mAxBv3K",
            "3L0rsUOyam68T5ms4PTyI60oi_5mTy_rXg5jwrcHLjhebHbhPxFNxwcYdUa25v73xPa1JRScD18sus7PPaU_fSe3yt",
            "UIZ5LxcSbqdD5xN4yjjqQf4av5-KyL-O9ZDbjXSKK2Ap-qBccbBMO_DQZ9w_j6SToBUS6uMBcxscr08vYgih8kkE5C",
            "VbuEtXyE",
        );
        let sealer = Sealer::new(b"a-test-cookie-secret-of-at-least-32-bytes", &[]);
        let (plain, current) = sealer.open("pending", sealed).expect("opens");
        assert!(current);
        let json: serde_json::Value = serde_json::from_slice(&plain).expect("the sealed JSON");
        assert_eq!(json["provider"], "google");
        assert_eq!(sealer.open("session", sealed), None);
    }

    /// Base64 has several spellings of the last bytes (unused low bits of the last
    /// character); only the one `seal` writes opens, so a changed character never does.
    #[test]
    fn only_the_canonical_spelling_opens() {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let sealer = Sealer::new(SECRET, &[]);
        let mut checked = 0;
        for len in 0..6 {
            let sealed = sealer.seal("session", &vec![7; len]);
            let mut bytes = sealed.clone().into_bytes();
            let last = bytes.len() - 1;
            let Some(index) = ALPHABET.iter().position(|c| *c == bytes[last]) else { unreachable!() };
            bytes[last] = ALPHABET[index | 1];
            if bytes[last] != sealed.as_bytes()[last] {
                checked += 1;
                let other = String::from_utf8(bytes).expect("ascii");
                assert_eq!(sealer.open("session", &other), None, "length {len}");
            }
        }
        assert!(checked >= 2);
    }
}
