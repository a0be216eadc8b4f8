//! The layer's `Cookie` header scan, chunk join and strip (`auth-tower`'s `cookies.rs`).
//!
//! The input is text (see [`Input`]): `Cookie` headers, one per line. Reading never panics, a value read is at most what the
//! layer writes (16 chunks of 3800 bytes), holds no `;`, and is only read when the scan
//! found the cookie. Stripping the layer's cookies leaves none of them and keeps every
//! other pair, in order. A value split as the layer writes it, mixed with other cookies
//! (chunks in any order, over several headers), reads back unchanged.
#![no_main]

use auth_tower::bench::{CHUNK_SIZE, read_cookie, scan, split_cookie};
use auth_tower::fuzz::{MAX_CHUNKS, strip_cookies};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

const NAME: &str = "auth_session";
const ALSO: [&str; 2] = ["auth_pending", "auth_pending_*"];
/// The base64url alphabet of sealed values.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

/// The input: a first line `LEN SPREAD REVERSE` (decimal numbers; missing ones are 0), then
/// one `Cookie` header per line (those that are valid header values are sent). The round
/// trip's value is the headers' bytes mapped to the alphabet, repeated to `LEN`; its
/// cookies go `SPREAD` pairs per header (at least one), reversed when `REVERSE` is odd.
struct Input<'a> {
    headers: Vec<&'a [u8]>,
    len: usize,
    spread: usize,
    reverse: bool,
}

impl<'a> Input<'a> {
    fn parse(data: &'a [u8]) -> Self {
        let mut lines = data.split(|b| *b == b'\n');
        let first = lines.next().unwrap_or_default();
        let mut numbers = first
            .split(|b| *b == b' ')
            .map(|n| std::str::from_utf8(n).ok().and_then(|n| n.trim().parse::<usize>().ok()).unwrap_or_default());
        let (len, spread, reverse) = (numbers.next(), numbers.next(), numbers.next());
        Self {
            headers: lines.collect(),
            len: len.unwrap_or_default().min(70_000),
            spread: spread.unwrap_or_default(),
            reverse: reverse.unwrap_or_default() % 2 == 1,
        }
    }
}

/// Whether the pair `name` is one of the layer's cookies, as the layer's scan decides it
/// (written again here, plainly, to check the single-pass byte scan).
fn is_own(name: &[u8]) -> bool {
    if name == NAME.as_bytes() || name == ALSO[0].as_bytes() || name.starts_with(b"auth_pending_") {
        return true;
    }
    let Some(index) = name.strip_prefix(NAME.as_bytes()).and_then(|rest| rest.strip_prefix(b".")) else {
        return false;
    };
    let Ok(text) = std::str::from_utf8(index) else { return false };
    text.parse::<usize>().is_ok_and(|i| i < MAX_CHUNKS && i.to_string() == text)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    let start = bytes.iter().position(|b| !space(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !space(b)).map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// The trimmed, non-empty pairs of every `Cookie` header, in order.
fn pairs(headers: &HeaderMap) -> Vec<Vec<u8>> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';').map(trim).filter(|p| !p.is_empty()).map(<[u8]>::to_vec))
        .collect()
}

fn own_pair(pair: &[u8]) -> bool {
    pair.iter().position(|b| *b == b'=').is_some_and(|eq| is_own(trim(&pair[..eq])))
}

/// Reads and strips `headers`, checking what holds for any headers.
fn check(headers: &HeaderMap) -> Option<String> {
    let read = read_cookie(headers, NAME).map(|v| v.into_owned());
    let (found, _) = scan(headers, NAME, &ALSO);
    if let Some(value) = &read {
        assert!(found, "read without being found");
        assert!(value.len() <= CHUNK_SIZE * MAX_CHUNKS, "a value of {} bytes was read", value.len());
        assert!(!value.contains(';'), "a value holding ';'");
    }

    let mut stripped = headers.clone();
    let removed = strip_cookies(&mut stripped, NAME, &ALSO);
    let before = pairs(headers);
    let expected: Vec<Vec<u8>> = before.iter().filter(|p| !own_pair(p)).cloned().collect();
    if removed {
        assert_eq!(pairs(&stripped), expected, "stripping keeps exactly the other cookies, in order");
    } else {
        assert_eq!(&stripped, headers, "nothing removed: the headers are untouched");
        assert_eq!(before, expected, "nothing removed, but one of the layer's cookies was there");
    }
    assert!(read_cookie(&stripped, NAME).is_none(), "the cookie is still readable after stripping");
    assert!(!scan(&stripped, NAME, &ALSO).0, "the cookie is still found after stripping");
    read
}

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    // Arbitrary headers.
    let mut headers = HeaderMap::new();
    for raw in &input.headers {
        if let Ok(value) = HeaderValue::from_bytes(raw) {
            headers.append(COOKIE, value);
        }
    }
    check(&headers);

    // A value as the layer writes it, among the other cookies of those headers.
    let pattern: Vec<u8> = input.headers.concat();
    if pattern.is_empty() {
        return;
    }
    let value: String = pattern
        .iter()
        .cycle()
        .take(input.len)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    let others: Vec<Vec<u8>> = pairs(&headers).into_iter().filter(|p| !own_pair(p)).collect();
    let mut ours: Vec<Vec<u8>> =
        split_cookie(NAME, &value).into_iter().map(|(name, part)| format!("{name}={part}").into_bytes()).collect();
    if input.reverse {
        ours.reverse();
    }
    let mut all: Vec<Vec<u8>> = Vec::with_capacity(others.len() + ours.len());
    let mut others = others.into_iter();
    for pair in ours {
        all.extend(others.next());
        all.push(pair);
    }
    all.extend(others);
    let per_header = input.spread.max(1);
    let mut mixed = HeaderMap::new();
    for group in all.chunks(per_header) {
        if let Ok(value) = HeaderValue::from_bytes(&group.join(&b"; "[..])) {
            mixed.append(COOKIE, value);
        }
    }
    let read = check(&mixed);
    if value.len() <= CHUNK_SIZE * MAX_CHUNKS {
        assert_eq!(read.as_deref(), Some(value.as_str()), "the value does not read back");
    }
});
