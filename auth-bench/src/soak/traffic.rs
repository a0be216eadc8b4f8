//! The data connections: keep-alive HTTP/1.1 connections ([`crate::load::connect`]), each
//! sending its next request as soon as the answer is read, until the end of the run. Each
//! request is one of a mix, and each answer is judged against what the soak knows of the
//! user:
//!
//! | share | request | must be |
//! |---:|---|---|
//! | 25 % | anonymous `/`, `/me`, `/private`, `/admin`, `/sensitive` | anonymous, never 5xx |
//! | 55 % | a signed-in user's `/me` (70 %), `/` or `/private`, with their cookies | served as that user; anonymous only while Redis is down |
//! | 8 % | a cookie of a session that ended (logout, back-channel logout) | anonymous |
//! | 6 % | a signed-in user's cookie with one character changed | anonymous |
//! | 6 % | 16 KB of cookie: a made-up session cookie, made-up chunks, 200 small cookies, or a real session plus a 16 KB cookie | never 5xx; the real session still signed in |

use super::clock::Clock;
use super::lock;
use super::tally::{self, Tally};
use super::users::{Pool, Snapshot, display_name, secs, username};
use crate::fixtures::COOKIE_NAME;
use bytes::Bytes;
use http::header::{COOKIE, HOST, SET_COOKIE};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Any one request; a hung app fails it instead of stalling the run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The size of the oversized cookies.
const BIG: usize = 16 * 1024;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Pages anonymous visitors ask for.
const ANONYMOUS_PATHS: [&str; 5] = ["/", "/me", "/private", "/admin", "/sensitive"];

/// Who an answer was for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Signed in: the `sub` (`/me`) or the name the page greets.
    SignedIn(String),
    Anonymous,
    /// Neither: what was wrong.
    Other(String),
}

/// Reads an answer of `axum-basic` to `path`: `/me` is `user.to_json()`, `/` and
/// `/private` greet "Welcome back, NAME!", and pages behind a login send anonymous
/// visitors to log in (`302`/`401`).
pub(crate) fn seen(path: &str, status: u16, body: &[u8]) -> Seen {
    let text = String::from_utf8_lossy(body);
    let greeted = || {
        let (_, rest) = text.split_once("Welcome back, ")?;
        rest.split_once('!').map(|(name, _)| name.to_owned())
    };
    match (path, status) {
        ("/me", 200) => match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(json) if json["is_logged_in"] == true => {
                Seen::SignedIn(json["sub"].as_str().unwrap_or_default().to_owned())
            }
            Ok(json) if json["is_logged_in"] == false => Seen::Anonymous,
            _ => Seen::Other(format!("/me 200 {:?}", cut(&text))),
        },
        ("/" | "/private", 200) => match greeted() {
            Some(name) => Seen::SignedIn(name),
            None if path == "/" && text.contains("Not logged in") => Seen::Anonymous,
            None => Seen::Other(format!("{path} 200 {:?}", cut(&text))),
        },
        ("/private" | "/admin" | "/sensitive", 302 | 303 | 401) => Seen::Anonymous,
        _ => Seen::Other(format!("{path} {status} {:?}", cut(&text))),
    }
}

fn cut(text: &str) -> String {
    text.chars().take(160).collect()
}

/// What one request is.
#[derive(Debug)]
enum Action {
    Anonymous(&'static str),
    User(Snapshot, &'static str),
    /// A cookie of a session that ended.
    Replay(usize, super::users::OldCookie),
    /// A signed-in user's cookie with one character changed.
    Tampered(usize, String),
    /// 16 KB of cookie; with a real session when the snapshot is there.
    Oversized(&'static str, String, Option<Snapshot>),
}

impl Action {
    fn path(&self) -> &'static str {
        match self {
            Action::Anonymous(path) | Action::User(_, path) => path,
            _ => "/me",
        }
    }

    fn cookie(&self) -> Option<&str> {
        match self {
            Action::Anonymous(_) => None,
            Action::User(snapshot, _) => Some(&snapshot.cookie),
            Action::Replay(_, old) => Some(&old.cookie),
            Action::Tampered(_, cookie) | Action::Oversized(_, cookie, _) => Some(cookie),
        }
    }
}

/// An answer, read whole.
struct Answer {
    status: u16,
    set_cookies: Vec<String>,
    body: Bytes,
}

/// What every data connection shares.
#[derive(Clone, Debug)]
pub(crate) struct Traffic {
    addr: SocketAddr,
    host: HeaderValue,
    pool: Arc<Pool>,
    clock: Arc<Clock>,
    tally: Arc<Mutex<Tally>>,
    stop_at: Instant,
}

impl Traffic {
    pub(crate) fn new(
        addr: SocketAddr,
        pool: Arc<Pool>,
        clock: Arc<Clock>,
        tally: Arc<Mutex<Tally>>,
        stop_at: Instant,
    ) -> Result<Self, String> {
        let host = HeaderValue::try_from(addr.to_string()).map_err(|e| e.to_string())?;
        Ok(Self { addr, host, pool, clock, tally, stop_at })
    }

    /// One connection's loop until the end of the run; a broken connection is counted
    /// and opened again.
    pub(crate) async fn worker(self, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x50a4);
        let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
        while Instant::now() < self.stop_at {
            let connection = match sender.as_mut() {
                Some(connection) => connection,
                None => match crate::load::connect(self.addr).await {
                    Ok(connection) => sender.insert(connection),
                    Err(error) => {
                        lock(&self.tally).error(tally::CONNECTION, || error);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let action = self.pick(&mut rng);
            let began = Instant::now();
            let outcome = tokio::time::timeout(REQUEST_TIMEOUT, self.send(connection, &action)).await;
            let ended = Instant::now();
            match outcome {
                Ok(Ok(answer)) => self.judge(&action, &answer, began, ended),
                Ok(Err(error)) => {
                    sender = None;
                    let at = secs(&self.clock, began);
                    lock(&self.tally).error(tally::CONNECTION, || format!("{} at {at:.1} s: {error}", action.path()));
                }
                Err(_) => {
                    sender = None;
                    let at = secs(&self.clock, began);
                    lock(&self.tally).error(tally::TIMEOUT, || format!("{} at {at:.1} s", action.path()));
                }
            }
        }
    }

    fn pick(&self, rng: &mut StdRng) -> Action {
        let n = self.pool.len();
        let signed_in = |rng: &mut StdRng| (0..8).find_map(|_| self.pool.signed_in(rng.gen_range(0..n)));
        let anonymous = |rng: &mut StdRng| Action::Anonymous(ANONYMOUS_PATHS[rng.gen_range(0..ANONYMOUS_PATHS.len())]);
        match rng.gen_range(0..100) {
            0..25 => anonymous(rng),
            25..80 => match signed_in(rng) {
                Some(snapshot) => {
                    let path = match rng.gen_range(0..100) {
                        0..70 => "/me",
                        70..85 => "/",
                        _ => "/private",
                    };
                    Action::User(snapshot, path)
                }
                None => anonymous(rng),
            },
            80..88 => {
                let old = (0..8).find_map(|_| {
                    let user = rng.gen_range(0..n);
                    self.pool.old_cookie(user, rng.r#gen()).map(|old| (user, old))
                });
                match old {
                    Some((user, old)) => Action::Replay(user, old),
                    None => anonymous(rng),
                }
            }
            88..94 => match signed_in(rng) {
                Some(snapshot) => Action::Tampered(snapshot.user, tamper(&snapshot.cookie, rng)),
                None => anonymous(rng),
            },
            _ => match rng.gen_range(0..4) {
                0 => Action::Oversized(
                    "made-up 16 KB session cookie",
                    format!("{COOKIE_NAME}={}", filler(BIG, rng)),
                    None,
                ),
                1 => {
                    let chunks: Vec<String> =
                        (0..4).map(|k| format!("{COOKIE_NAME}.{k}={}", filler(BIG / 4, rng))).collect();
                    Action::Oversized("made-up 16 KB session chunks", chunks.join("; "), None)
                }
                2 => {
                    let many: Vec<String> = (0..200).map(|k| format!("c{k}={}", filler(BIG / 200, rng))).collect();
                    Action::Oversized("200 small cookies, 16 KB", many.join("; "), None)
                }
                _ => match signed_in(rng) {
                    Some(snapshot) => {
                        let cookie = format!("{}; big={}", snapshot.cookie, filler(BIG, rng));
                        Action::Oversized("a session plus a 16 KB cookie", cookie, Some(snapshot))
                    }
                    None => anonymous(rng),
                },
            },
        }
    }

    async fn send(&self, connection: &mut SendRequest<Empty<Bytes>>, action: &Action) -> Result<Answer, String> {
        std::future::poll_fn(|cx| connection.poll_ready(cx)).await.map_err(|e| format!("connection lost: {e}"))?;
        let mut request = Request::get(action.path()).header(HOST, self.host.clone());
        if let Some(cookie) = action.cookie() {
            request = request.header(COOKIE, cookie);
        }
        let request = request.body(Empty::new()).map_err(|e| e.to_string())?;
        let response = connection.send_request(request).await.map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        let set_cookies =
            response.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
        let body = response.into_body().collect().await.map_err(|e| format!("body failed: {e}"))?.to_bytes();
        Ok(Answer { status, set_cookies, body })
    }

    fn judge(&self, action: &Action, answer: &Answer, began: Instant, ended: Instant) {
        let clock = &self.clock;
        let path = action.path();
        let seen = seen(path, answer.status, &answer.body);
        // Applied to the user's jar (or remembered as ended) before the tally is locked.
        let current = match action {
            Action::User(snapshot, _) | Action::Oversized(_, _, Some(snapshot)) => {
                Some(self.pool.answered(snapshot, &answer.set_cookies))
            }
            _ => None,
        };
        let mut tally = lock(&self.tally);
        tally.answered(clock.phase(began), ended - began);
        let at = secs(clock, began);
        if answer.status >= 500 {
            let redis_down = clock.redis_down_during(began, ended);
            tally.error(tally::UNEXPECTED_5XX, || {
                format!("{path} at {at:.1} s ({}): {:?} (Redis down: {redis_down})", kind(action), seen)
            });
            return;
        }
        match action {
            Action::Anonymous(_) => match seen {
                Seen::Anonymous => {}
                Seen::SignedIn(who) => {
                    tally.error(tally::WRONG_USER, || format!("anonymous {path} at {at:.1} s served as {who}"));
                }
                Seen::Other(what) => tally.error(tally::WRONG_ANSWER, || format!("anonymous {what} at {at:.1} s")),
            },
            Action::User(snapshot, _) | Action::Oversized(_, _, Some(snapshot)) => {
                let expected = if path == "/me" { username(snapshot.user) } else { display_name(snapshot.user) };
                let redis_up = clock.at(super::clock::Event::RedisUp);
                let after_redis = redis_up.and_then(|up| clock.ms(began).checked_sub(up));
                match seen {
                    Seen::SignedIn(who) if who == expected => {
                        if let Some(after) = after_redis {
                            let first = tally.recovery.first_signed_in_ms.get_or_insert(after);
                            *first = (*first).min(after);
                        }
                        if let Action::Oversized(what, ..) = action {
                            tally.outcome(format!("{what}: {} signed in", answer.status));
                        }
                    }
                    Seen::SignedIn(who) => tally.error(tally::WRONG_USER, || {
                        format!("{}'s {path} at {at:.1} s served as {who}", username(snapshot.user))
                    }),
                    Seen::Anonymous if current == Some(false) => tally.outcome(tally::RACED_LOGOUT),
                    Seen::Anonymous if clock.redis_down_during(began, ended) => {
                        tally.expected(tally::ANONYMOUS_REDIS_DOWN);
                        if let Some(after) = after_redis {
                            let last = tally.recovery.last_anonymous_ms.get_or_insert(after);
                            *last = (*last).max(after);
                        }
                    }
                    Seen::Anonymous => tally.lost(snapshot, || {
                        format!(
                            "{}'s {path} at {at:.1} s ({}, {} phase, login #{}{}{} completed {} ms before) served anonymous, Set-Cookie {:?}",
                            username(snapshot.user),
                            kind(action),
                            clock.phase(began).label(),
                            snapshot.login,
                            if snapshot.relogin { " right after a logout" } else { "" },
                            if snapshot.same_second { " within 1 s of an earlier login" } else { "" },
                            snapshot.logged_in_at.map_or(0, |t| began.saturating_duration_since(t).as_millis()),
                            answer.set_cookies
                        )
                    }),
                    Seen::Other(what) => {
                        tally.error(tally::WRONG_ANSWER, || format!("{}'s {what} at {at:.1} s", username(snapshot.user)));
                    }
                }
            }
            Action::Replay(user, old) => match seen {
                Seen::Anonymous => tally.revoked(None, String::new),
                Seen::SignedIn(who) => tally.revoked(Some(old.how.label()), || {
                    format!(
                        "{}'s cookie ended by {} {:.1} s earlier served signed in as {who} at {at:.1} s",
                        username(*user),
                        old.how.label(),
                        old.at.elapsed().as_secs_f64()
                    )
                }),
                Seen::Other(what) => tally.error(tally::WRONG_ANSWER, || format!("replay: {what} at {at:.1} s")),
            },
            Action::Tampered(user, _) => match seen {
                Seen::Anonymous => tally.outcome("tampered cookies served anonymous"),
                Seen::SignedIn(who) => tally.error(tally::FORGED_SIGNED_IN, || {
                    format!("{}'s cookie with a changed character signed in as {who}", username(*user))
                }),
                Seen::Other(what) => tally.error(tally::WRONG_ANSWER, || format!("tampered: {what} at {at:.1} s")),
            },
            Action::Oversized(what, _, None) => match seen {
                Seen::Anonymous => tally.outcome(format!("{what}: {} anonymous", answer.status)),
                Seen::SignedIn(who) => {
                    tally.error(tally::FORGED_SIGNED_IN, || format!("{what} signed in as {who} at {at:.1} s"));
                }
                // A refusal of the header's size (431, 400) is a fine answer to 16 KB.
                Seen::Other(_) if (400..500).contains(&answer.status) => {
                    tally.outcome(format!("{what}: {} refused", answer.status));
                }
                Seen::Other(other) => tally.error(tally::WRONG_ANSWER, || format!("{what}: {other} at {at:.1} s")),
            },
        }
    }
}

fn kind(action: &Action) -> &'static str {
    match action {
        Action::Anonymous(_) => "anonymous",
        Action::User(..) => "signed-in user",
        Action::Replay(..) => "replay of an ended session",
        Action::Tampered(..) => "tampered cookie",
        Action::Oversized(what, ..) => what,
    }
}

/// `cookie` (`name=value; ...`) with one character of the first value replaced by another
/// of the base64url alphabet (not in the last two, whose low bits base64 may ignore).
fn tamper(cookie: &str, rng: &mut StdRng) -> String {
    let mut bytes = cookie.as_bytes().to_vec();
    let start = cookie.find('=').map_or(0, |i| i + 1);
    let end = cookie.find(';').unwrap_or(cookie.len()).saturating_sub(2);
    if end > start {
        let at = rng.gen_range(start..end);
        let mut replacement = ALPHABET[rng.gen_range(0..ALPHABET.len())];
        if replacement == bytes[at] {
            replacement = if bytes[at] == b'A' { b'B' } else { b'A' };
        }
        bytes[at] = replacement;
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// `len` random base64url characters.
fn filler(len: usize, rng: &mut StdRng) -> String {
    (0..len).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_axum_basic_are_read() {
        assert_eq!(seen("/me", 200, br#"{"is_logged_in":true,"sub":"user001"}"#), Seen::SignedIn("user001".into()));
        assert_eq!(seen("/me", 200, br#"{"is_logged_in":false}"#), Seen::Anonymous);
        assert_eq!(seen("/", 200, b"<h1>Welcome back, User 001!</h1>"), Seen::SignedIn("User 001".into()));
        assert_eq!(seen("/", 200, b"<h1>Not logged in</h1>"), Seen::Anonymous);
        assert_eq!(seen("/private", 302, b""), Seen::Anonymous);
        assert!(matches!(seen("/private", 200, b"nothing"), Seen::Other(_)));
        assert!(matches!(seen("/me", 500, b""), Seen::Other(_)));
    }

    #[test]
    fn a_tampered_cookie_differs_in_one_character_of_its_value() {
        let mut rng = StdRng::seed_from_u64(1);
        let cookie = "auth_session=AAAAAAAAAAAAAAAAAAAA; other=1";
        for _ in 0..50 {
            let tampered = tamper(cookie, &mut rng);
            assert_eq!(tampered.len(), cookie.len());
            let changed: Vec<usize> =
                tampered.bytes().zip(cookie.bytes()).enumerate().filter(|(_, (a, b))| a != b).map(|(i, _)| i).collect();
            assert_eq!(changed.len(), 1, "{tampered}");
            assert!((13..31).contains(&changed[0]), "{tampered}");
        }
    }
}
