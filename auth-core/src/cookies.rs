//! Reading and writing the layer's cookies without a cookie jar.
//!
//! Browsers drop cookies past about 4096 bytes, so a long value is split into numbered
//! chunks: `NAME` when it fits, else `NAME.0`, `NAME.1`, ... Reading joins them back.
//! Values written here are sealed (base64url), so they never need escaping.

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use std::borrow::Cow;

/// The largest value put in one cookie; leaves room for name and attributes in 4096 bytes.
pub const CHUNK_SIZE: usize = 3800;

/// Each `name=value` pair of the request's `Cookie` headers, in order.
pub fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).filter_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        Some((name.trim(), value.trim().trim_matches('"')))
    })
}

/// The value of cookie `name`, joined from its chunks when it was split.
/// `None` when absent or when a chunk is missing.
pub fn read<'h>(headers: &'h HeaderMap, name: &str) -> Option<Cow<'h, str>> {
    let mut whole = None;
    let mut chunks: Vec<(usize, &str)> = Vec::new();
    for (n, v) in pairs(headers) {
        if n == name {
            whole = Some(v);
        } else if let Some(index) = chunk_index(n, name) {
            chunks.push((index, v));
        }
    }
    if let Some(v) = whole {
        return Some(Cow::Borrowed(v));
    }
    if chunks.is_empty() {
        return None;
    }
    chunks.sort_unstable_by_key(|(i, _)| *i);
    let mut joined = String::with_capacity(chunks.len() * CHUNK_SIZE);
    for (expected, (index, value)) in chunks.iter().enumerate() {
        if *index != expected {
            return None;
        }
        joined.push_str(value);
    }
    Some(Cow::Owned(joined))
}

/// The names of cookie `name` and its chunks present in the request.
pub fn present_names<'h>(headers: &'h HeaderMap, name: &str) -> Vec<&'h str> {
    pairs(headers).map(|(n, _)| n).filter(|n| *n == name || chunk_index(n, name).is_some()).collect()
}

fn chunk_index(candidate: &str, name: &str) -> Option<usize> {
    candidate.strip_prefix(name)?.strip_prefix('.')?.parse().ok()
}

/// Whether `candidate` is cookie `name` or one of its chunks (`NAME.0`, `NAME.1`, ...).
pub fn is_cookie_or_chunk(candidate: &str, name: &str) -> bool {
    candidate == name || chunk_index(candidate, name).is_some()
}

/// Removes every cookie whose name `is_own` accepts from the request's `Cookie` headers.
///
/// The other cookies are kept exactly as sent (each `name=value` as it was, joined by
/// `"; "`); a header left with none is removed. A header value that is not text cannot be
/// split, so it is kept as it is. Returns whether anything was removed; when nothing is,
/// the headers are not touched. One pass over each header.
pub fn strip(headers: &mut HeaderMap, is_own: impl Fn(&str) -> bool) -> bool {
    let mut values = headers.get_all(COOKIE).iter();
    let Some(first) = values.next() else { return false };
    if values.next().is_none() {
        // The usual case, one header: nothing to allocate unless something is removed.
        return match strip_value(first, &is_own) {
            None => false,
            Some(Some(rest)) => {
                headers.insert(COOKIE, rest);
                true
            }
            Some(None) => {
                headers.remove(COOKIE);
                true
            }
        };
    }
    let mut changed = false;
    let kept: Vec<HeaderValue> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| match strip_value(value, &is_own) {
            None => Some(value.clone()),
            Some(rest) => {
                changed = true;
                rest
            }
        })
        .collect();
    if changed {
        headers.remove(COOKIE);
        for value in kept {
            headers.append(COOKIE, value);
        }
    }
    changed
}

/// `None` when `value` holds none of the cookies `is_own` names (or is not text), else
/// what is left of it (`None` when nothing is).
fn strip_value(value: &HeaderValue, is_own: &impl Fn(&str) -> bool) -> Option<Option<HeaderValue>> {
    let text = value.to_str().ok()?;
    let mut kept = String::new();
    let mut removed = false;
    for pair in text.split(';') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        if pair.split_once('=').is_some_and(|(name, _)| is_own(name.trim())) {
            removed = true;
            continue;
        }
        if !kept.is_empty() {
            kept.push_str("; ");
        }
        kept.push_str(pair);
    }
    if !removed {
        return None;
    }
    Some(if kept.is_empty() { None } else { HeaderValue::from_str(&kept).ok() })
}

/// Splits `value` into `(cookie name, part)` pairs: one cookie when it fits, chunks otherwise.
pub fn split<'v>(name: &str, value: &'v str) -> Vec<(String, &'v str)> {
    if value.len() <= CHUNK_SIZE {
        return vec![(name.to_owned(), value)];
    }
    // Sealed values are ASCII, so byte chunks are char boundaries.
    value
        .as_bytes()
        .chunks(CHUNK_SIZE)
        .enumerate()
        .map(|(i, part)| (format!("{name}.{i}"), std::str::from_utf8(part).unwrap_or_default()))
        .collect()
}

/// Attributes shared by every cookie the layer sets.
#[derive(Clone, Debug)]
pub struct CookieAttrs {
    /// `Path=`.
    pub path: String,
    /// Add `Secure` (when `redirect_uri` is https).
    pub secure: bool,
    /// `Domain=`, when configured.
    pub domain: Option<String>,
}

impl CookieAttrs {
    /// A `Set-Cookie` value for `name=value` living `max_age` seconds (0 deletes it).
    pub fn set_cookie(&self, name: &str, value: &str, max_age: u64) -> String {
        let mut out = format!("{name}={value}; Path={}; Max-Age={max_age}; HttpOnly; SameSite=Lax", self.path);
        if self.secure {
            out.push_str("; Secure");
        }
        if let Some(domain) = &self.domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        out
    }

    /// A `Set-Cookie` value that deletes cookie `name`.
    pub fn delete_cookie(&self, name: &str) -> String {
        self.set_cookie(name, "", 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(cookie).expect("valid header"));
        h
    }

    #[test]
    fn reads_plain_and_chunked() {
        let h = headers("a=1; s=whole; other=x");
        assert_eq!(read(&h, "s").as_deref(), Some("whole"));
        let h = headers("s.1=BBB; s.0=AAA; s.2=C");
        assert_eq!(read(&h, "s").as_deref(), Some("AAABBBC"));
        assert_eq!(read(&h, "x"), None);
        assert_eq!(read(&headers("s.0=A; s.2=C"), "s"), None, "a missing chunk");
        assert_eq!(read(&headers("sx=1; s.a=2"), "s"), None);
    }

    #[test]
    fn split_round_trips() {
        let long = "x".repeat(CHUNK_SIZE * 2 + 5);
        let parts = split("s", &long);
        assert_eq!(parts.len(), 3);
        let cookie = parts.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
        assert_eq!(read(&headers(&cookie), "s").as_deref(), Some(long.as_str()));
        assert_eq!(split("s", "short"), vec![("s".to_owned(), "short")]);
        assert_eq!(present_names(&headers(&cookie), "s").len(), 3);
    }

    #[test]
    fn strip_removes_only_own_cookies() {
        let own = |n: &str| is_cookie_or_chunk(n, "s") || n == "p";
        let mut h = headers("a=1;s=sealed; s.0=x;b=\"quoted\";  p=pending; sx=keep");
        assert!(strip(&mut h, own));
        assert_eq!(h.get_all(COOKIE).iter().collect::<Vec<_>>(), ["a=1; b=\"quoted\"; sx=keep"]);

        let mut h = headers("s=only; p=mine");
        h.append(COOKIE, HeaderValue::from_static("c=3"));
        assert!(strip(&mut h, own));
        assert_eq!(h.get_all(COOKIE).iter().collect::<Vec<_>>(), ["c=3"], "an emptied header is removed");

        let mut h = headers("a=1;b=2");
        assert!(!strip(&mut h, own));
        assert_eq!(h[COOKIE], "a=1;b=2", "untouched when nothing is ours");
        let mut none = HeaderMap::new();
        assert!(!strip(&mut none, own));
    }

    #[test]
    fn set_cookie_attributes() {
        let attrs = CookieAttrs { path: "/".into(), secure: true, domain: None };
        assert_eq!(attrs.set_cookie("s", "v", 60), "s=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure");
        assert!(attrs.delete_cookie("s").contains("Max-Age=0"));
    }
}
