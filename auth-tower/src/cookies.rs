//! Reading and writing the layer's cookies without a cookie jar (crate-private; the bench
//! reaches the scan through [`crate::bench`]).
//!
//! Browsers drop cookies past about 4096 bytes, so a long value is split into numbered
//! chunks: `NAME` when it fits, else `NAME.0`, `NAME.1`, ... Reading joins them back.
//! Values written here are sealed (base64url), so they never need escaping.

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use std::borrow::Cow;
use std::fmt;

/// The largest value put in one cookie; leaves room for name and attributes in 4096 bytes.
/// A longer value of the layer's cookies in a request was not written by the layer: it
/// is not read (nor joined, nor opened), only cleared.
pub(crate) const CHUNK_SIZE: usize = 3800;

/// The most chunks a value is read from: `NAME.0` to `NAME.15`, up to 60 800 bytes (far
/// past the 8 KB request headers most proxies accept). Other indices are not the layer's
/// cookies, so a request names at most 17 of them (the whole cookie and 16 chunks), and
/// clearing them never takes more `Set-Cookie` lines than that, whatever it carries.
pub(crate) const MAX_CHUNKS: usize = 16;

/// The value of cookie `name`, joined from its chunks when it was split.
/// `None` when absent or when a chunk is missing. One pass over the headers as bytes
/// (see [`scan`]): other cookies that are not text do not hide it.
pub(crate) fn read<'h>(headers: &'h HeaderMap, name: &str) -> Option<Cow<'h, str>> {
    scan_inner(headers, name, &[], false).value()
}

/// The names of cookie `name` and its chunks present in the request, each once: at most
/// `1 + MAX_CHUNKS`, however many the request repeats.
pub(crate) fn present_names<'h>(headers: &'h HeaderMap, name: &str) -> Vec<&'h str> {
    let mut names = Vec::new();
    for value in headers.get_all(COOKIE).iter() {
        for pair in value.as_bytes().split(|b| *b == b';') {
            let Some(eq) = memchr::memchr(b'=', pair) else { continue };
            let n = trim(&pair[..eq]);
            if n == name.as_bytes() || chunk_index_bytes(n, name.as_bytes()).is_some() {
                // Our name, or it followed by `.` and digits: text.
                if let Ok(n) = std::str::from_utf8(n)
                    && !names.contains(&n)
                {
                    names.push(n);
                }
            }
        }
    }
    names
}

/// What one pass over the request's `Cookie` headers found: the value of one cookie (or
/// its chunks), and the headers as they would be without the caller's own cookies.
///
/// [`scan`] reads each header as bytes, once: it finds each `;`-separated pair with
/// `memchr`, and validates as text only the value of the cookie it reads, and only when
/// asked for it ([`CookieScan::value`]). Other cookies
/// are never validated, so bytes that are not text in them (obs-text) neither hide the
/// cookie being read nor stop the layer's cookies from being removed; they are kept
/// byte for byte. `Debug` shows what was found, never a cookie's value.
pub(crate) struct CookieScan<'h> {
    /// The last `NAME=value`, as [`read`] takes it (not yet validated as text).
    whole: Option<&'h [u8]>,
    /// `NAME.i=value` chunks, in order of appearance (not yet validated as text); at most
    /// [`MAX_CHUNKS`].
    chunks: Vec<(usize, &'h [u8])>,
    /// Whether any `NAME` or `NAME.i` pair was seen (whatever its value).
    named: bool,
    /// Whether a value past [`CHUNK_SIZE`] or more than [`MAX_CHUNKS`] chunks were seen:
    /// nothing the layer wrote, so the cookie is not read.
    unreadable: bool,
    /// Whether the request has a `Cookie` header at all.
    any: bool,
    /// The `Cookie` headers without the caller's own cookies, when any was removed.
    stripped: Stripped,
}

enum Stripped {
    /// Nothing to remove: the headers stay as they are.
    Untouched,
    /// One header, which becomes this (or goes away).
    One(Option<HeaderValue>),
    /// Several headers, which become these.
    Many(Vec<HeaderValue>),
}

impl<'h> CookieScan<'h> {
    /// The value of the cookie, joined from its chunks when it was split: as [`read`].
    /// `None` when absent, when a chunk is missing, when it is not text, or when a value is
    /// longer than the layer writes ([`CHUNK_SIZE`]) or chunks repeat.
    pub(crate) fn value(&self) -> Option<Cow<'h, str>> {
        if self.unreadable {
            return None;
        }
        if let Some(v) = self.whole {
            return std::str::from_utf8(v).ok().map(Cow::Borrowed);
        }
        join(self.chunks.clone())
    }

    /// The parts of the value as bytes, in order, without joining them or validating them
    /// as text: one part for a whole cookie, the chunks for a split one. `None` when the
    /// cookie is absent. Bytes equal to a known valid value are valid; anything else goes
    /// through [`value`](Self::value). `None` when the cookie is absent or, as for
    /// [`value`](Self::value), longer than the layer writes.
    pub(crate) fn parts(&self) -> Option<Parts<'_, 'h>> {
        if self.unreadable {
            return None;
        }
        if let Some(v) = self.whole {
            return Some(Parts::Whole(v));
        }
        if self.chunks.is_empty() {
            return None;
        }
        // Chunks usually come in order; sorting is only needed when they do not.
        if self.chunks.iter().enumerate().all(|(i, (index, _))| *index == i) {
            Some(Parts::Chunks(&self.chunks))
        } else {
            Some(Parts::Unordered)
        }
    }

    /// Whether the request carries the cookie or any chunk of it, readable or not.
    pub(crate) fn is_present(&self) -> bool {
        self.named
    }

    /// Whether the request has a `Cookie` header.
    #[cfg(test)]
    pub(crate) fn has_cookie_header(&self) -> bool {
        self.any
    }

    /// The removal computed by [`scan`], to apply once the borrow of the headers ends.
    pub(crate) fn into_strip(self) -> Strip {
        Strip(self.stripped)
    }
}

/// The layer's cookies to remove from a request's `Cookie` headers, from
/// [`CookieScan::into_strip`].
pub(crate) struct Strip(Stripped);

impl fmt::Debug for CookieScan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieScan")
            .field("whole", &self.whole.map(|v| v.len()))
            .field("chunks", &self.chunks.len())
            .field("named", &self.named)
            .field("unreadable", &self.unreadable)
            .field("any", &self.any)
            .field("stripped", &self.stripped)
            .finish()
    }
}

/// Names the kind of removal and how many headers remain; the cookies themselves (other
/// cookies of the app, which may be secrets too) are not shown.
impl fmt::Debug for Stripped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Untouched => f.write_str("Untouched"),
            Self::One(rest) => write!(f, "One(remaining: {})", rest.is_some()),
            Self::Many(kept) => write!(f, "Many(remaining: {})", kept.len()),
        }
    }
}

impl fmt::Debug for Strip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Strip").field(&self.0).finish()
    }
}

impl Strip {
    /// Applies the removal to `headers` (the map that was scanned); returns whether
    /// anything was removed. The other cookies are kept as the tests' reference `strip` keeps
    /// them.
    pub(crate) fn apply(self, headers: &mut HeaderMap) -> bool {
        match self.0 {
            Stripped::Untouched => false,
            Stripped::One(Some(rest)) => {
                headers.insert(COOKIE, rest);
                true
            }
            Stripped::One(None) => {
                headers.remove(COOKIE);
                true
            }
            Stripped::Many(kept) => {
                headers.remove(COOKIE);
                for value in kept {
                    headers.append(COOKIE, value);
                }
                true
            }
        }
    }
}

/// The parts of a cookie's value, from [`CookieScan::parts`]. `Debug` shows their sizes.
pub(crate) enum Parts<'s, 'h> {
    /// The value was not split.
    Whole(&'h [u8]),
    /// The value's chunks, in order (`index == position`).
    Chunks(&'s [(usize, &'h [u8])]),
    /// Chunks sent out of order: use [`CookieScan::value`].
    Unordered,
}

impl fmt::Debug for Parts<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Whole(value) => write!(f, "Whole({} bytes)", value.len()),
            Self::Chunks(chunks) => write!(f, "Chunks({})", chunks.len()),
            Self::Unordered => f.write_str("Unordered"),
        }
    }
}

/// Joins `chunks` in index order; `None` when there are none, one is missing, or the
/// result is not text. Nothing is allocated before the indices are checked.
fn join(mut chunks: Vec<(usize, &[u8])>) -> Option<Cow<'_, str>> {
    if chunks.is_empty() {
        return None;
    }
    chunks.sort_unstable_by_key(|(i, _)| *i);
    if chunks.iter().enumerate().any(|(expected, (index, _))| *index != expected) {
        return None;
    }
    let joined = chunks.iter().flat_map(|(_, value)| value.iter().copied()).collect();
    String::from_utf8(joined).ok().map(Cow::Owned)
}

/// Whitespace as `str::trim` sees it, among the bytes a header value may hold.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = bytes {
        if !is_space(*first) {
            break;
        }
        bytes = rest;
    }
    while let [rest @ .., last] = bytes {
        if !is_space(*last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

/// `Some(i)` when `candidate` is `name.i`, `i` written as [`split`] writes it (decimal, no
/// sign, no leading zero) and below [`MAX_CHUNKS`]: so at most `MAX_CHUNKS` names are chunks
/// (`name.01` or `name.+1` would make endless names for one index).
fn chunk_index_bytes(candidate: &[u8], name: &[u8]) -> Option<usize> {
    const _: () = assert!(MAX_CHUNKS <= 100, "chunk indices have at most two digits");
    let index = match candidate.strip_prefix(name)?.strip_prefix(b".")? {
        [digit @ b'0'..=b'9'] => usize::from(digit - b'0'),
        [tens @ b'1'..=b'9', ones @ b'0'..=b'9'] => usize::from(tens - b'0') * 10 + usize::from(ones - b'0'),
        _ => return None,
    };
    (index < MAX_CHUNKS).then_some(index)
}

/// What one pair of a header is, for [`scan`].
enum Pair<'h> {
    /// Cookie `name` itself, with its value.
    Whole(&'h [u8]),
    /// A chunk of cookie `name`.
    Chunk(usize, &'h [u8]),
    /// Another of the caller's own cookies.
    Own,
    /// Someone else's cookie, or a pair without `=`: kept.
    Other,
}

/// One pass over the request's `Cookie` headers: reads cookie `name` (as [`read`] does)
/// and computes the headers without `name`, its chunks and the cookies named in `also` (an
/// entry ending in `*` names every cookie starting with what comes before it)
/// (as the tests' reference `strip` does, except that a header holding bytes that are not
/// text is handled too, the other cookies kept byte for byte). Apply the removal with
/// [`CookieScan::into_strip`].
pub(crate) fn scan<'h>(headers: &'h HeaderMap, name: &str, also: &[&str]) -> CookieScan<'h> {
    scan_inner(headers, name, also, true)
}

fn scan_inner<'h>(headers: &'h HeaderMap, name: &str, also: &[&str], strip: bool) -> CookieScan<'h> {
    let mut out = CookieScan {
        whole: None,
        chunks: Vec::new(),
        named: false,
        unreadable: false,
        any: false,
        stripped: Stripped::Untouched,
    };
    let mut values = headers.get_all(COOKIE).iter();
    let Some(first) = values.next() else { return out };
    out.any = true;
    let name = name.as_bytes();
    let classify = |pair: &'h [u8]| -> Pair<'h> {
        let Some(eq) = memchr::memchr(b'=', pair) else { return Pair::Other };
        let n = trim(&pair[..eq]);
        let value = || {
            let v = trim(&pair[eq + 1..]);
            let start = v.iter().position(|b| *b != b'"').unwrap_or(v.len());
            let end = v.iter().rposition(|b| *b != b'"').map_or(start, |e| e + 1);
            &v[start..end.max(start)]
        };
        if n == name {
            Pair::Whole(value())
        } else if let Some(index) = chunk_index_bytes(n, name) {
            Pair::Chunk(index, value())
        } else if also.iter().any(|a| match a.strip_suffix('*') {
            Some(prefix) => n.starts_with(prefix.as_bytes()),
            None => a.as_bytes() == n,
        }) {
            Pair::Own
        } else {
            Pair::Other
        }
    };
    let Some(second) = values.next() else {
        if let Some(rest) = scan_value(first.as_bytes(), &classify, strip, &mut out) {
            out.stripped = Stripped::One(rest);
        }
        return out;
    };
    let mut changed = false;
    let mut kept = Vec::new();
    for value in [first, second].into_iter().chain(values) {
        match scan_value(value.as_bytes(), &classify, strip, &mut out) {
            None => kept.push(value.clone()),
            Some(rest) => {
                changed = true;
                kept.extend(rest);
            }
        }
    }
    if changed {
        out.stripped = Stripped::Many(kept);
    }
    out
}

/// Scans one header value; `None` when it holds none of the caller's cookies, else what is
/// left of it (`None` when nothing is).
fn scan_value<'h>(
    text: &'h [u8],
    classify: &impl Fn(&'h [u8]) -> Pair<'h>,
    strip: bool,
    out: &mut CookieScan<'h>,
) -> Option<Option<HeaderValue>> {
    // `kept` is only built once one of the caller's cookies is found.
    let mut kept: Option<Vec<u8>> = None;
    let mut start = 0;
    while start <= text.len() {
        let end = memchr::memchr(b';', &text[start..]).map_or(text.len(), |i| start + i);
        let pair = &text[start..end];
        let own = record(classify(pair), out) && strip;
        match (&mut kept, own) {
            (None, true) => {
                // The first own cookie: keep what came before it, normalized as `strip` does.
                let mut before = Vec::with_capacity(text.len() - (end - start));
                for earlier in text[..start].split(|b| *b == b';') {
                    push_pair(&mut before, earlier);
                }
                kept = Some(before);
            }
            (Some(buffer), false) => push_pair(buffer, pair),
            _ => {}
        }
        start = end + 1;
    }
    let kept = kept?;
    Some(if kept.is_empty() { None } else { HeaderValue::from_bytes(&kept).ok() })
}

/// Notes `pair` in `out`; returns whether it is one of the caller's own cookies. A value
/// longer than the layer writes, or a chunk past [`MAX_CHUNKS`] (one repeats), is not kept:
/// it makes the cookie unreadable.
fn record<'h>(pair: Pair<'h>, out: &mut CookieScan<'h>) -> bool {
    match pair {
        Pair::Whole(value) => {
            out.named = true;
            if value.len() > CHUNK_SIZE {
                out.unreadable = true;
            } else {
                out.whole = Some(value);
            }
            true
        }
        Pair::Chunk(index, value) => {
            out.named = true;
            if value.len() > CHUNK_SIZE || out.chunks.len() >= MAX_CHUNKS {
                out.unreadable = true;
            } else {
                out.chunks.push((index, value));
            }
            true
        }
        Pair::Own => true,
        Pair::Other => false,
    }
}

/// Appends a kept `pair`, trimmed, after `"; "` (an empty one is dropped).
fn push_pair(kept: &mut Vec<u8>, pair: &[u8]) {
    let pair = trim(pair);
    if pair.is_empty() {
        return;
    }
    if !kept.is_empty() {
        kept.extend_from_slice(b"; ");
    }
    kept.extend_from_slice(pair);
}

/// Splits `value` into `(cookie name, part)` pairs: one cookie when it fits, chunks otherwise.
pub(crate) fn split<'v>(name: &str, value: &'v str) -> Vec<(String, &'v str)> {
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

/// The bytes the cookies `written` (from [`split`]) take in a request's `Cookie` header:
/// each `NAME=value`, joined by `"; "`. What `cookie_budget_bytes` is compared with.
pub(crate) fn header_bytes(written: &[(String, &str)]) -> usize {
    written.iter().map(|(name, value)| name.len() + 1 + value.len()).sum::<usize>()
        + 2 * written.len().saturating_sub(1)
}

/// Attributes shared by every cookie the layer sets.
#[derive(Clone, Debug)]
pub(crate) struct CookieAttrs {
    /// `Path=`.
    pub(crate) path: String,
    /// Add `Secure` (when `redirect_uri` is https).
    pub(crate) secure: bool,
    /// `Domain=`, when configured.
    pub(crate) domain: Option<String>,
}

impl CookieAttrs {
    /// A `Set-Cookie` value for `name=value` living `max_age` seconds (0 deletes it).
    pub(crate) fn set_cookie(&self, name: &str, value: &str, max_age: u64) -> String {
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
    pub(crate) fn delete_cookie(&self, name: &str) -> String {
        self.set_cookie(name, "", 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    // The string-based reference implementation below is what the single-pass byte scan
    // (`scan`) is tested against; the library itself only uses the scan.
    fn chunk_index(candidate: &str, name: &str) -> Option<usize> {
        let digits = candidate.strip_prefix(name)?.strip_prefix('.')?;
        let index: usize = digits.parse().ok()?;
        (index.to_string() == digits && index < MAX_CHUNKS).then_some(index)
    }

    /// Whether `candidate` is cookie `name` or one of its chunks (`NAME.0`, `NAME.1`, ...).
    fn is_cookie_or_chunk(candidate: &str, name: &str) -> bool {
        candidate == name || chunk_index(candidate, name).is_some()
    }

    /// Removes every cookie whose name `is_own` accepts from the request's `Cookie` headers.
    ///
    /// The other cookies are kept exactly as sent (each `name=value` as it was, joined by
    /// `"; "`); a header left with none is removed. A header value that is not text cannot be
    /// split, so it is kept as it is. Returns whether anything was removed; when nothing is,
    /// the headers are not touched. One pass over each header.
    fn strip(headers: &mut HeaderMap, is_own: impl Fn(&str) -> bool) -> bool {
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
    fn debug_never_shows_a_cookie_value() {
        let h = headers("s=sealed-session-value; other=app-secret; s.0=c0ffee");
        let found = scan(&h, "s", &[]);
        let parts = format!("{:?}", found.parts());
        let scanned = format!("{found:?}");
        let debug = format!("{scanned} {parts} {:?}", found.into_strip());
        for secret in ["sealed-session-value", "app-secret", "c0ffee"] {
            assert!(!debug.contains(secret), "{debug}");
        }
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

    fn header_bytes(cookie: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_bytes(cookie).expect("valid header bytes"));
        h
    }

    /// `scan` then strip: the value read and the `Cookie` headers left.
    fn scanned(mut h: HeaderMap) -> (Option<String>, bool, Vec<Vec<u8>>) {
        let found = scan(&h, "s", &["p"]);
        let value = found.value().map(Cow::into_owned);
        let present = found.is_present();
        found.into_strip().apply(&mut h);
        (value, present, h.get_all(COOKIE).iter().map(|v| v.as_bytes().to_vec()).collect())
    }

    #[test]
    fn scan_reads_and_strips_in_one_pass() {
        let (value, present, left) = scanned(headers("a=1;s=sealed; s.0=x;b=\"quoted\";  p=pending; sx=keep"));
        assert_eq!((value.as_deref(), present), (Some("sealed"), true));
        assert_eq!(left, [b"a=1; b=\"quoted\"; sx=keep".to_vec()]);

        // Only ours: the header goes; none of ours: untouched, byte for byte.
        assert_eq!(scanned(headers("s=v")), (Some("v".into()), true, vec![]));
        assert_eq!(scanned(headers(" a=1 ;;b=2 ")), (None, false, vec![b" a=1 ;;b=2 ".to_vec()]));
        assert_eq!(scanned(HeaderMap::new()), (None, false, vec![]));
        assert!(!scan(&HeaderMap::new(), "s", &[]).has_cookie_header());
        assert!(scan(&headers("a=1"), "s", &[]).has_cookie_header());
    }

    #[test]
    fn scan_handles_malformed_headers() {
        // Empty header, empty pairs, pairs without `=`.
        assert_eq!(scanned(headers("")), (None, false, vec![b"".to_vec()]));
        assert_eq!(scanned(headers(";;; ;")), (None, false, vec![b";;; ;".to_vec()]));
        assert_eq!(scanned(headers("s; novalue; s=v; =x")), (Some("v".into()), true, vec![b"s; novalue; =x".to_vec()]));
        // Quoted values lose their quotes, as `read` always did; an empty value is a value.
        assert_eq!(scanned(headers("s=\"v\"")).0.as_deref(), Some("v"));
        assert_eq!(scanned(headers("s=")).0.as_deref(), Some(""));
        assert_eq!(scanned(headers("s=\"\"")).0.as_deref(), Some(""));
        // Duplicates of our name: the last one is read, every one is removed.
        assert_eq!(scanned(headers("s=one; a=1; s=two")), (Some("two".into()), true, vec![b"a=1".to_vec()]));
        // Names are compared exactly after trimming; `s.x`, `sx`, `S` are not ours.
        assert_eq!(
            scanned(headers(" s =v; s.x=1; sx=2; S=3")),
            (Some("v".into()), true, vec![b"s.x=1; sx=2; S=3".to_vec()])
        );
        // A value with `=` in it.
        assert_eq!(scanned(headers("s=a=b")).0.as_deref(), Some("a=b"));
    }

    #[test]
    fn scan_keeps_other_cookies_that_are_not_text() {
        let (value, present, left) = scanned(header_bytes(b"x=\xff\xfe; s=sealed; y=caf\xe9"));
        assert_eq!((value.as_deref(), present), (Some("sealed"), true));
        assert_eq!(left, [b"x=\xff\xfe; y=caf\xe9".to_vec()]);
        assert_eq!(read(&header_bytes(b"x=\xff; s=sealed"), "s").as_deref(), Some("sealed"));
        assert_eq!(present_names(&header_bytes(b"x=\xff; s.0=a; s.1=b"), "s"), ["s.0", "s.1"]);
        // Our own value not text: not read, but present (so the layer clears it) and removed.
        let (value, present, left) = scanned(header_bytes(b"s=\xff; a=1"));
        assert_eq!((value, present, left), (None, true, vec![b"a=1".to_vec()]));
        assert_eq!(scanned(header_bytes(b"s.0=A; s.1=\xff")), (None, true, vec![]));
        assert_eq!(scanned(header_bytes(b"s=ok; s=\xff")).0, None, "the last one counts");
    }

    #[test]
    fn scan_joins_chunks_and_reports_gaps() {
        let (value, _, left) = scanned(headers("s.1=BBB; a=1; s.0=AAA; s.2=C"));
        assert_eq!((value.as_deref(), left), (Some("AAABBBC"), vec![b"a=1".to_vec()]));
        let h = headers("s.0=AAA; s.1=BBB");
        let found = scan(&h, "s", &[]);
        assert!(matches!(found.parts(), Some(Parts::Chunks(c)) if c == [(0, &b"AAA"[..]), (1, &b"BBB"[..])]));
        let h = headers("s.1=BBB; s.0=AAA");
        assert!(matches!(scan(&h, "s", &[]).parts(), Some(Parts::Unordered)));
        let h = headers("s=W; s.0=AAA");
        assert!(matches!(scan(&h, "s", &[]).parts(), Some(Parts::Whole(b"W"))));
        assert!(scan(&headers("a=1"), "s", &[]).parts().is_none());
        // A gap, a duplicate chunk, an index that does not parse: not readable, still removed.
        for cookie in ["s.0=A; s.2=C", "s.0=A; s.0=B", "s.1=B"] {
            let (value, present, left) = scanned(headers(&format!("{cookie}; a=1")));
            assert_eq!((value, present, left), (None, true, vec![b"a=1".to_vec()]), "{cookie}");
        }
        assert_eq!(scanned(headers("s.a=1; s.=2")), (None, false, vec![b"s.a=1; s.=2".to_vec()]));
    }

    #[test]
    fn chunk_names_are_bounded_and_canonical() {
        for (name, index) in [("s.0", Some(0)), ("s.9", Some(9)), ("s.10", Some(10)), ("s.15", Some(15))] {
            assert_eq!(chunk_index_bytes(name.as_bytes(), b"s"), index, "{name}");
        }
        for other in
            ["s.16", "s.99", "s.100000", "s.01", "s.00", "s.+1", "s.-1", "s. 1", "s.1a", "s.18446744073709551616"]
        {
            assert_eq!(chunk_index_bytes(other.as_bytes(), b"s"), None, "{other}");
            // Not the layer's: not read, not removed, not named.
            let (value, present, left) = scanned(headers(&format!("{other}=x")));
            assert_eq!((value, present, left), (None, false, vec![format!("{other}=x").into_bytes()]), "{other}");
        }
        let many: Vec<String> = (0..500).map(|i| format!("s.{i}=x")).collect();
        assert_eq!(present_names(&headers(&many.join("; ")), "s").len(), MAX_CHUNKS);
        let repeated = vec!["s=x; s.0=a; s.01=b"; 500].join("; ");
        assert_eq!(present_names(&headers(&repeated), "s"), ["s", "s.0"], "each name once");
    }

    #[test]
    fn values_longer_than_the_layer_writes_are_not_read() {
        let at_most = "v".repeat(CHUNK_SIZE);
        let longer = "v".repeat(CHUNK_SIZE + 1);
        assert_eq!(read(&headers(&format!("s={at_most}")), "s").map(|v| v.len()), Some(CHUNK_SIZE));
        for cookie in [
            format!("s={longer}; a=1"),
            format!("s=ok; s={longer}; a=1"),
            format!("s={longer}; s=ok; a=1"),
            format!("s.0={longer}; s.1=b; a=1"),
            format!("s.0=a; s.1={}; a=1", "v".repeat(100_000)),
        ] {
            let h = headers(&cookie);
            let found = scan(&h, "s", &[]);
            assert!(found.parts().is_none() && found.value().is_none(), "{found:?}");
            assert!(found.is_present(), "present, so the layer clears it");
            assert_eq!(scanned(h).2, [b"a=1".to_vec()], "and removed from the request");
        }
        // A chunk repeated past the limit: not kept, not read.
        let repeated = vec!["s.0=a"; 500].join("; ");
        let h = headers(&repeated);
        let found = scan(&h, "s", &[]);
        assert!(found.chunks.len() <= MAX_CHUNKS && found.value().is_none() && found.parts().is_none());
    }

    #[test]
    fn scan_handles_several_headers() {
        let mut h = headers("s.0=AA; a=1");
        h.append(COOKIE, HeaderValue::from_static("b=2"));
        h.append(COOKIE, HeaderValue::from_static("s.1=BB; p=x"));
        let (value, present, left) = scanned(h);
        assert_eq!((value.as_deref(), present), (Some("AABB"), true));
        assert_eq!(left, [b"a=1".to_vec(), b"b=2".to_vec()], "an emptied header is removed, others kept in order");
        let mut h = headers("a=1");
        h.append(COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(scanned(h).2, [b"a=1".to_vec(), b"b=2".to_vec()]);
    }

    #[test]
    fn scan_agrees_with_read_and_strip() {
        let own = |n: &str| is_cookie_or_chunk(n, "s") || n == "p";
        for cookie in ["a=1;s=x; s.0=y;b=2", "s.0=A; s.1=B; p=1", "x=1", "s=1; s=2", " ; s ; s= ; a", "s.1=B; s.0=A"] {
            let mut h = headers(cookie);
            let read = super::read(&h, "s").map(Cow::into_owned);
            assert_eq!(scan(&h, "s", &["p"]).value().map(Cow::into_owned), read, "{cookie}");
            let mut stripped = h.clone();
            strip(&mut stripped, own);
            let changed = scan(&h, "s", &["p"]).into_strip().apply(&mut h);
            assert_eq!(h, stripped, "{cookie}");
            assert_eq!(changed, cookie.contains("s") || cookie.contains("p"), "{cookie}");
        }
    }

    #[test]
    fn set_cookie_attributes() {
        let attrs = CookieAttrs { path: "/".into(), secure: true, domain: None };
        assert_eq!(attrs.set_cookie("s", "v", 60), "s=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure");
        assert!(attrs.delete_cookie("s").contains("Max-Age=0"));
    }
}
