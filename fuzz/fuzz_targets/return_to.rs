//! `return_to` validation (`auth-tower`'s `return_to::sanitize`): what the login route
//! keeps of the parameter and the callback later puts in `Location`.
//!
//! Whatever the input: the result is a valid header value of at most 1024 bytes, sanitizing
//! it again changes nothing, and a browser resolving it as a `Location` (WHATWG URL
//! parsing, as the `url` crate does it) against the app's callback URL stays on the app's
//! origin. An accepted value also keeps the path it was given (only percent-encoding is
//! added).
#![no_main]

use auth_tower::fuzz::sanitize_return_to;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use url::Url;

/// The URLs a browser resolves `Location` against: the callback, and a deep page.
fn bases() -> &'static [Url] {
    static BASES: OnceLock<Vec<Url>> = OnceLock::new();
    BASES.get_or_init(|| {
        ["https://app.example/oauth2callback?code=c&state=s", "https://app.example/a/b/c?x=1#frag"]
            .iter()
            .filter_map(|u| Url::parse(u).ok())
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let kept = sanitize_return_to(Some(&raw));
    assert!(kept.len() <= 1024, "{} bytes kept", kept.len());
    assert!(http::HeaderValue::from_str(&kept).is_ok(), "not a header value: {kept:?}");
    assert_eq!(sanitize_return_to(Some(&kept)), kept, "sanitizing twice changes it");
    assert!(kept.starts_with('/'), "{kept:?}");
    for base in bases() {
        let resolved = base.join(&kept).unwrap_or_else(|e| panic!("{kept:?} does not resolve against {base}: {e}"));
        assert_eq!(resolved.origin(), base.origin(), "{kept:?} leaves the site: {resolved}");
    }
    if kept != "/" {
        assert_eq!(kept, encode(&raw), "an accepted value changed beyond percent-encoding");
    }
});

/// `raw` with non-ASCII, control characters and `"` percent-encoded, as a browser would
/// send them: all an accepted value may differ by.
fn encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii() && !c.is_ascii_control() && c != '"' {
            out.push(c);
        } else {
            let mut buffer = [0; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}
