//! The compact binary form of a [`Session`] that the cookie store seals.
//!
//! A session cookie is opened on every request whose cookie the layer has not seen before,
//! so its payload is read field by field without a JSON parser: integers as LEB128
//! varints, text as a varint length and UTF-8 bytes, an absent optional as `0` and a
//! present one as its length (or value) plus one. The claims stay the JSON text they were
//! sealed as, parsed only when something reads them ([`LazyClaims`]).
//!
//! ```text
//! version 2 (one byte; JSON sessions of version 1 start with `{`)
//! provider, subject                  text
//! created_at, expires_at             varint
//! idle_expires_at                    optional varint
//! admission, login_id                optional text
//! access, id, refresh token          optional text
//! token expires_at                   optional varint
//! scope                              optional text
//! claims                             text (a JSON object)
//! ```
//!
//! Version 3 is version 2 followed by the DPoP key (text); a session without one is still
//! written as version 2, so cookies of either version open.
//!
//! Decoding is strict: a truncated value, bytes left over, text that is not UTF-8 or a
//! number past `u64` mean "no session". Cookies sealed as JSON (before this format) still
//! open, through `serde_json`.

use crate::identity::{Identity, LazyClaims, TokenSet};
use crate::session::Session;

/// The first byte of a binary session.
const VERSION: u8 = 2;
/// The first byte of a binary session with a DPoP key.
const VERSION_DPOP: u8 = 3;

/// `session` in the binary form.
pub(crate) fn encode(session: &Session) -> Vec<u8> {
    let claims = session.identity.claims.to_json();
    let tokens = &session.tokens;
    let mut out = Vec::with_capacity(64 + claims.len() + session.identity.subject.len());
    out.push(if tokens.dpop_key.is_some() { VERSION_DPOP } else { VERSION });
    text(&mut out, &session.identity.provider);
    text(&mut out, &session.identity.subject);
    varint(&mut out, session.created_at);
    varint(&mut out, session.expires_at);
    optional_number(&mut out, session.idle_expires_at);
    optional_text(&mut out, session.admission.as_deref());
    optional_text(&mut out, session.login_id.as_deref());
    optional_text(&mut out, tokens.access_token.as_deref());
    optional_text(&mut out, tokens.id_token.as_deref());
    optional_text(&mut out, tokens.refresh_token.as_deref());
    optional_number(&mut out, tokens.expires_at);
    optional_text(&mut out, tokens.scope.as_deref());
    text(&mut out, &claims);
    if let Some(key) = tokens.dpop_key.as_deref() {
        text(&mut out, key);
    }
    out
}

/// The session in `bytes`: the binary form, or the JSON of version 1.
pub(crate) fn decode(bytes: &[u8]) -> Option<Session> {
    match bytes.first()? {
        &VERSION => Reader { rest: &bytes[1..] }.session(false),
        &VERSION_DPOP => Reader { rest: &bytes[1..] }.session(true),
        b'{' => serde_json::from_slice(bytes).ok(),
        _ => None,
    }
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn text(out: &mut Vec<u8>, value: &str) {
    varint(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

fn optional_number(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        // `u64::MAX` has no `+ 1`: written as absent would change it; such a time is
        // "never" anyway, kept as the largest value that fits.
        Some(value) => varint(out, value.saturating_add(1)),
        None => out.push(0),
    }
}

fn optional_text(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => {
            varint(out, value.len() as u64 + 1);
            out.extend_from_slice(value.as_bytes());
        }
        None => out.push(0),
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn session(mut self, dpop: bool) -> Option<Session> {
        let provider = self.text()?;
        let subject = self.text()?;
        let created_at = self.varint()?;
        let expires_at = self.varint()?;
        let idle_expires_at = self.optional_number()?;
        let admission = self.optional_text()?;
        let login_id = self.optional_text()?;
        let mut tokens = TokenSet::new();
        tokens.access_token = self.optional_text()?.map(str::to_owned);
        tokens.id_token = self.optional_text()?.map(str::to_owned);
        tokens.refresh_token = self.optional_text()?.map(str::to_owned);
        tokens.expires_at = self.optional_number()?;
        tokens.scope = self.optional_text()?.map(str::to_owned);
        let claims = self.text()?;
        if dpop {
            tokens.dpop_key = Some(self.text()?.to_owned());
        }
        if !self.rest.is_empty() {
            return None;
        }
        let mut identity = Identity::new(provider, subject, Default::default());
        identity.claims = LazyClaims::from_json(claims);
        Some(
            Session::starting_at(identity, tokens, created_at, expires_at)
                .with_idle_expires_at(idle_expires_at)
                .with_admission(admission.map(str::to_owned))
                .with_login_id(login_id.map(str::to_owned)),
        )
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        for (i, byte) in self.rest.iter().enumerate().take(10) {
            let bits = u64::from(byte & 0x7f);
            // The tenth byte holds bit 63 only.
            if i == 9 && bits > 1 {
                return None;
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[i + 1..];
                return Some(value);
            }
        }
        None
    }

    fn bytes(&mut self, len: u64) -> Option<&'a [u8]> {
        let len = usize::try_from(len).ok()?;
        let (head, tail) = self.rest.split_at_checked(len)?;
        self.rest = tail;
        Some(head)
    }

    fn text(&mut self) -> Option<&'a str> {
        let len = self.varint()?;
        std::str::from_utf8(self.bytes(len)?).ok()
    }

    fn optional_number(&mut self) -> Option<Option<u64>> {
        Some(self.varint()?.checked_sub(1))
    }

    fn optional_text(&mut self) -> Option<Option<&'a str>> {
        match self.varint()? {
            0 => Some(None),
            len => Some(Some(std::str::from_utf8(self.bytes(len - 1)?).ok()?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Claims;
    use serde_json::json;

    fn full() -> Session {
        let Ok(claims) = serde_json::from_value::<Claims>(json!({"email": "a@example.test", "groups": ["x", "y"]}))
        else {
            unreachable!()
        };
        let tokens = TokenSet::new()
            .with_access_token("at")
            .with_id_token("id.token.sig")
            .with_refresh_token("rt")
            .with_expires_at(1_700_000_000)
            .with_scope("openid email");
        Session::starting_at(Identity::new("google", "alice", claims), tokens, 1_600_000_000, u64::MAX - 1)
            .with_idle_expires_at(Some(0))
            .with_admission(Some(String::new()))
            .with_login_id(Some("id-1".into()))
    }

    #[test]
    fn round_trips_every_field() {
        for session in [full(), Session::starting_at(Identity::new("", "", Claims::new()), TokenSet::new(), 0, 0)] {
            let bytes = encode(&session);
            assert_eq!(bytes[0], VERSION);
            let decoded = decode(&bytes).expect("decodes");
            assert!(!decoded.identity.claims.is_parsed(), "claims wait until read");
            assert_eq!(decoded, session);
        }
    }

    #[test]
    fn json_sessions_of_version_1_still_decode() {
        let session = full();
        let json = serde_json::to_vec(&session).expect("json");
        assert_eq!(decode(&json), Some(session));
    }

    #[test]
    fn anything_truncated_or_extended_is_no_session() {
        let bytes = encode(&full());
        for len in 0..bytes.len() {
            assert_eq!(decode(&bytes[..len]), None, "truncated to {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None);
        assert_eq!(decode(&[3]), None, "an unknown version");
        // A varint past u64, and text that is not UTF-8.
        assert_eq!(decode(&[VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]), None);
        assert_eq!(decode(&[VERSION, 1, 0xff]), None);
    }

    #[test]
    fn a_dpop_key_makes_version_3_and_version_2_still_opens() {
        let plain = encode(&full());
        assert_eq!(plain[0], VERSION, "no key: the version 2 bytes of before");
        let mut bound = full();
        bound.tokens.dpop_key = Some("ES256.key".into());
        let bytes = encode(&bound);
        assert_eq!(bytes[0], VERSION_DPOP);
        assert_eq!(decode(&bytes), Some(bound.clone()));
        assert_eq!(&bytes[1..plain.len()], &plain[1..], "version 2 plus a trailing key");
        assert_eq!(decode(&bytes[..plain.len()]), None, "a version 3 without its key");
        assert_eq!(decode(&plain), Some(full()));
        // The JSON of server-side stores: the key when there is one, nothing otherwise.
        let json = serde_json::to_string(&bound).expect("json");
        assert_eq!(serde_json::from_str::<Session>(&json).expect("parses"), bound);
        assert!(!serde_json::to_string(&full()).expect("json").contains("dpop_key"));
    }

    #[test]
    fn it_is_smaller_than_json() {
        let session = full();
        assert!(encode(&session).len() < serde_json::to_vec(&session).expect("json").len() * 3 / 4);
    }
}
