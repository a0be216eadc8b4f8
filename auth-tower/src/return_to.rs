//! Validation of `return_to`, the page to come back to after login.
//!
//! `return_to` comes from a URL anyone can craft, and ends up in a `Location` header: an
//! unchecked value turns the login route into an open redirect. Only same-origin relative
//! paths pass; everything else becomes `/`.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// The longest `return_to` kept, in bytes once encoded (as [`sanitize`] returns it).
///
/// It travels in the sealed pending-login cookie, which browsers drop when its name and
/// value pass 4096 bytes (the layer's cookie reader also ignores values past
/// [`CHUNK_SIZE`](crate::cookies::CHUNK_SIZE), 3800). The value is `v1.` and the base64url
/// (4/3) of a 12-byte nonce, the JSON and a 16-byte tag: about 2800 bytes of JSON fit in
/// 3800. Besides `return_to`, the JSON holds the provider name, `state` and `nonce` (43
/// bytes each), the PKCE verifier (43 to 128), the expiry and the step-up options: under
/// 400 bytes without options. An encoded `return_to` holds no `"`, `\`, control or
/// non-ASCII character, so JSON copies it byte for byte: 1024 bytes leave over 1300 for
/// the options. Longer paths are rare (a deep link with a long query); they land on `/`.
const MAX_LEN: usize = 1024;

/// Where to go when `return_to` is absent or refused.
pub(crate) const HOME: &str = "/";

/// Bytes percent-encoded before a `return_to` goes into a header and the pending-login
/// cookie: non-ASCII (always encoded), controls (which [`is_safe`] refuses anyway) and `"`
/// (browsers encode it in every part of a URL, so the meaning is unchanged; JSON would
/// escape it, making the cookie longer than [`MAX_LEN`] allows for).
const HEADER_UNSAFE: &AsciiSet = &CONTROLS.add(b'"');

/// `raw` when it is a safe same-origin relative path of at most [`MAX_LEN`] bytes once
/// encoded (non-ASCII and `"` percent-encoded), else `/`.
pub(crate) fn sanitize(raw: Option<&str>) -> String {
    match raw {
        Some(raw) if is_safe(raw) => {
            let encoded = utf8_percent_encode(raw, HEADER_UNSAFE).to_string();
            if encoded.len() <= MAX_LEN { encoded } else { HOME.to_owned() }
        }
        _ => HOME.to_owned(),
    }
}

/// Whether `candidate` is a relative path on this origin, checked as given and after each
/// round of percent-decoding (so `/%2F%2Fevil.test` and `/%5Cevil.test` fail too).
pub(crate) fn is_safe(candidate: &str) -> bool {
    // Encoding only lengthens it: a candidate already too long is refused before decoding.
    if candidate.len() > MAX_LEN {
        return false;
    }
    let mut current = std::borrow::Cow::Borrowed(candidate);
    // Each round shortens a value that changes, so this ends; the bound is a backstop.
    for round in 0..8 {
        if !is_plain_relative_path(&current, round > 0) {
            return false;
        }
        let decoded = match percent_decode_str(&current).decode_utf8() {
            Ok(decoded) => decoded.into_owned(),
            Err(_) => return false,
        };
        if decoded == *current {
            return true;
        }
        current = std::borrow::Cow::Owned(decoded);
    }
    false
}

/// One `/`, then no second `/` right after it, no backslash anywhere (browsers read it as
/// `/`), no control character or whitespace (browsers strip some of them). A decoded value
/// may hold plain spaces (`/a%20b` is a fine path).
fn is_plain_relative_path(path: &str, decoded: bool) -> bool {
    let Some(rest) = path.strip_prefix('/') else { return false };
    let bad_char = |c: char| c.is_control() || (c.is_whitespace() && !(decoded && c == ' '));
    !rest.starts_with('/') && !path.contains('\\') && !path.chars().any(bad_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_relative_paths() {
        for ok in ["/", "/private?x=1", "/a/b#c", "/javascript:alert(1)", "/caf%C3%A9", "/a%20b"] {
            assert!(is_safe(ok), "{ok:?} should pass");
        }
        assert_eq!(sanitize(Some("/private?x=1")), "/private?x=1");
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "//evil.test",
            "https://evil.test",
            "/\\evil.test",
            "\\\\evil.test",
            "%2F%2Fevil.test",
            "/%2F%2Fevil.test",
            "/%2f%2fevil.test",
            "/%252F%252Fevil.test",
            "/%5Cevil",
            "javascript:alert(1)",
            "/\t/evil",
            "/\\t/evil",
            "/a\nb",
            "/a b",
            "/%0d%0aSet-Cookie:x=1",
            "/%FF",
            "private",
            "?x=1",
        ] {
            assert!(!is_safe(bad), "{bad:?} should be refused");
            assert_eq!(sanitize(Some(bad)), "/");
        }
        assert_eq!(sanitize(None), "/");
        assert_eq!(sanitize(Some(&format!("/{}", "a".repeat(MAX_LEN)))), "/");
    }

    #[test]
    fn non_ascii_is_encoded_for_headers() {
        assert_eq!(sanitize(Some("/café")), "/caf%C3%A9");
        assert!(http::HeaderValue::from_str(&sanitize(Some("/café?q=ü"))).is_ok());
        assert_eq!(sanitize(Some("/a\"b?q=\"c\"")), "/a%22b?q=%22c%22");
    }

    #[test]
    fn the_encoded_length_is_bounded() {
        let at_bound = format!("/{}", "a".repeat(MAX_LEN - 1));
        assert_eq!(sanitize(Some(&at_bound)), at_bound);
        assert_eq!(sanitize(Some(&format!("{at_bound}a"))), "/");
        assert_eq!(sanitize(Some(&format!("/{}", "a".repeat(4999)))), "/");
        // Short enough as given, too long once encoded: 1 + 3 × 400 or 6 × 200 bytes.
        for grows in [format!("/{}", "\"".repeat(400)), format!("/{}", "é".repeat(200))] {
            assert!(grows.len() <= MAX_LEN, "{}", grows.len());
            assert_eq!(sanitize(Some(&grows)), "/");
        }
        // JSON copies an encoded value as it is: its length in the cookie is its length.
        let quotes = sanitize(Some(&format!("/{}", "\"".repeat(300))));
        assert_eq!(serde_json::to_string(&quotes).map(|json| json.len()).ok(), Some(quotes.len() + 2));
    }
}
