//! Validation of `return_to`, the page to come back to after login.
//!
//! `return_to` comes from a URL anyone can craft, and ends up in a `Location` header: an
//! unchecked value turns the login route into an open redirect. Only same-origin relative
//! paths pass; everything else becomes `/`.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// The longest `return_to` kept; it travels in the pending-login cookie.
const MAX_LEN: usize = 2048;

/// Where to go when `return_to` is absent or refused.
pub(crate) const HOME: &str = "/";

/// Bytes re-encoded before a `return_to` goes into a header: controls and non-ASCII (the
/// only ones [`is_safe`] lets through are non-ASCII; `Location` wants visible ASCII).
const NON_ASCII: &AsciiSet = CONTROLS;

/// `raw` when it is a safe same-origin relative path (non-ASCII percent-encoded), else `/`.
pub(crate) fn sanitize(raw: Option<&str>) -> String {
    match raw {
        Some(raw) if is_safe(raw) => utf8_percent_encode(raw, NON_ASCII).to_string(),
        _ => HOME.to_owned(),
    }
}

/// Whether `candidate` is a relative path on this origin, checked as given and after each
/// round of percent-decoding (so `/%2F%2Fevil.test` and `/%5Cevil.test` fail too).
pub(crate) fn is_safe(candidate: &str) -> bool {
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
    }
}
