//! Properties of sealing (`auth_core::seal::Sealer`), checked on generated inputs: what is
//! sealed opens to itself, for its purpose and secret only, and a single flipped bit
//! anywhere in a sealed value makes it not open. The fuzz target `unseal` (fuzz/) checks
//! the same on inputs libFuzzer finds; these run in the normal test suite, on stable.
#![allow(clippy::unwrap_used)]

use auth_core::seal::Sealer;
use proptest::prelude::*;

const SECRET: &[u8] = b"a-test-cookie-secret-of-at-least-32-bytes";
const PREVIOUS: &[u8] = b"0123456789abcdef0123456789abcdef-test";

/// A failing input is kept in `tests/properties.regressions` and tried first.
fn config() -> ProptestConfig {
    let persistence = proptest::test_runner::FileFailurePersistence::WithSource("regressions");
    ProptestConfig { cases: 256, failure_persistence: Some(Box::new(persistence)), ..ProptestConfig::default() }
}

/// Purposes as the layer uses them, and any other text.
fn purpose() -> impl Strategy<Value = String> {
    prop_oneof![Just("session".to_owned()), Just("pending".to_owned()), ".{0,24}"]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn what_is_sealed_opens_to_itself(plaintext in proptest::collection::vec(any::<u8>(), 0..2048), purpose in purpose()) {
        let sealer = Sealer::new(SECRET, &[PREVIOUS]);
        let sealed = sealer.seal(&purpose, &plaintext);
        prop_assert!(sealed.starts_with("v1."));
        prop_assert!(sealed.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "cookie-safe text");
        prop_assert_eq!(sealer.open(&purpose, &sealed), Some((plaintext.clone(), true)));
        // Sealed with the previous secret: still opens, and asks to be sealed again.
        let old = Sealer::new(PREVIOUS, &[]).seal(&purpose, &plaintext);
        prop_assert_eq!(sealer.open(&purpose, &old), Some((plaintext, false)));
    }

    #[test]
    fn only_its_purpose_and_secret_open_it(plaintext in proptest::collection::vec(any::<u8>(), 0..256), purpose in purpose(), other in purpose()) {
        let sealed = Sealer::new(SECRET, &[]).seal(&purpose, &plaintext);
        if other != purpose {
            prop_assert_eq!(Sealer::new(SECRET, &[]).open(&other, &sealed), None);
        }
        prop_assert_eq!(Sealer::new(PREVIOUS, &[]).open(&purpose, &sealed), None);
    }

    #[test]
    fn one_flipped_bit_anywhere_does_not_open(plaintext in proptest::collection::vec(any::<u8>(), 0..512), purpose in purpose(), bit in any::<usize>()) {
        let sealer = Sealer::new(SECRET, &[PREVIOUS]);
        let mut bytes = sealer.seal(&purpose, &plaintext).into_bytes();
        let bit = bit % (bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        // A flip of the high bit makes no text: such a value cannot reach `open` at all.
        if let Ok(tampered) = String::from_utf8(bytes) {
            prop_assert_eq!(sealer.open(&purpose, &tampered), None, "bit {} flipped", bit);
        }
    }

    #[test]
    fn arbitrary_text_does_not_open(text in "(v1\\.)?[A-Za-z0-9_-]{0,200}") {
        prop_assert_eq!(Sealer::new(SECRET, &[PREVIOUS]).open("session", &text), None);
    }
}

/// Sessions survive the JSON text they are kept as (server-side stores, cookies of the
/// previous version, the claims inside the binary cookie) exactly, numbers included.
mod sessions {
    use super::*;
    use auth_core::{Claims, CookieStore, Identity, Session, SessionStore, TokenSet};
    use std::sync::Arc;

    fn session_with(value: serde_json::Value) -> Session {
        let mut claims = Claims::new();
        claims.insert("sub".into(), "alice".into());
        claims.insert("number".into(), value);
        Session::new(Identity::new("default", "alice", claims), TokenSet::default(), 600)
    }

    fn round_trips(session: &Session) -> Result<(), TestCaseError> {
        let json = serde_json::to_vec(session).unwrap();
        prop_assert_eq!(&serde_json::from_slice::<Session>(&json).unwrap(), session, "JSON");
        let store = CookieStore::new(Arc::new(Sealer::new(SECRET, &[])));
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let loaded = runtime.block_on(async {
            let ticket = store.save(session).await.unwrap();
            store.load(&ticket).await.unwrap()
        });
        prop_assert_eq!(loaded.as_ref(), Some(session), "cookie store");
        Ok(())
    }

    /// Found by the `session_json` fuzz target: without serde_json's `float_roundtrip`,
    /// 1.7960255999999996e50 came back as 1.7960255999999998e50.
    #[test]
    fn a_float_claim_found_by_the_fuzzer_round_trips() {
        round_trips(&session_with(serde_json::json!(1.796_025_599_999_999_6e50))).unwrap();
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn float_claims_round_trip(value in any::<f64>().prop_filter("JSON numbers are finite", |v| v.is_finite())) {
            round_trips(&session_with(serde_json::json!(value)))?;
        }
    }
}
