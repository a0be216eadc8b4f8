//! Opening sealed cookie values (`auth_core::seal::Sealer::open`) from arbitrary text.
//!
//! The input's first byte picks a mode: open the rest as a cookie value with every
//! purpose the layer uses (no panic; what opens is shorter than the text and seals again
//! to the same plaintext), or seal the rest and flip one bit of the sealed text (it must
//! no longer open, while the untouched value opens to the plaintext with its purpose only).
#![no_main]

use auth_core::seal::Sealer;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The secrets of `fuzz/corpus/unseal`'s seeds: the tests' secret, and a previous one.
const SECRET: &[u8] = b"a-test-cookie-secret-of-at-least-32-bytes";
const PREVIOUS: &[u8] = b"0123456789abcdef0123456789abcdef-test";
const PURPOSES: [&str; 3] = ["session", "pending", ""];

fn sealer() -> &'static Sealer {
    static SEALER: OnceLock<Sealer> = OnceLock::new();
    SEALER.get_or_init(|| Sealer::new(SECRET, &[PREVIOUS]))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let sealer = sealer();
    if mode % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else { return };
        for purpose in PURPOSES {
            if let Some((plain, _current)) = sealer.open(purpose, text) {
                assert!(plain.len() < text.len(), "{} bytes opened from {} bytes", plain.len(), text.len());
                let again = sealer.seal(purpose, &plain);
                assert_eq!(sealer.open(purpose, &again), Some((plain, true)));
            }
        }
        return;
    }
    // Seal `rest` for a purpose, then flip the bit the first two bytes of `rest` point at.
    let purpose = PURPOSES[usize::from(mode / 2) % PURPOSES.len()];
    let sealed = sealer.seal(purpose, rest);
    assert_eq!(sealer.open(purpose, &sealed), Some((rest.to_vec(), true)));
    for other in PURPOSES.iter().filter(|p| **p != purpose) {
        assert_eq!(sealer.open(other, &sealed), None, "opened for another purpose");
    }
    let at = rest.get(..2).map_or(0, |b| usize::from(u16::from_le_bytes([b[0], b[1]])));
    let mut bytes = sealed.into_bytes();
    let bit = at % (bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
    if let Ok(tampered) = String::from_utf8(bytes) {
        assert_eq!(sealer.open(purpose, &tampered), None, "a value with bit {bit} flipped opened");
    }
});
