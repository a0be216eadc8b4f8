//! What the traffic found, counted as it runs: requests and latency per phase, errors by
//! kind (with the first of each), answers that were expected during an outage, lost
//! sessions and revoked sessions that were served.

use super::clock::Phase;
use super::users::Snapshot;
use crate::load::{MAX_LATENCY_US, histogram};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// A 5xx the situation does not excuse.
pub(crate) const UNEXPECTED_5XX: &str = "unexpected 5xx from the app";
/// No answer within the request timeout.
pub(crate) const TIMEOUT: &str = "no answer within 10 s";
/// A connection that could not be opened or broke.
pub(crate) const CONNECTION: &str = "connection failed";
/// A status or body that fits nothing expected.
pub(crate) const WRONG_ANSWER: &str = "wrong answer";
/// A user's request answered for another user.
pub(crate) const WRONG_USER: &str = "answered as another user";
/// A cookie with a flipped byte, or 16 KB of made-up cookie, that signed someone in.
pub(crate) const FORGED_SIGNED_IN: &str = "tampered or made-up cookie signed in";
/// A login that failed where nothing excuses it.
pub(crate) const LOGIN_FAILED: &str = "login failed";
/// A logout that did not answer `303` with the cookies cleared.
pub(crate) const LOGOUT_FAILED: &str = "logout failed";
/// A back-channel logout not answered `200` while everything was up.
pub(crate) const BACKCHANNEL_FAILED: &str = "back-channel logout failed";

/// Excused: a login while the provider is down (its `503`, or the app's 5xx at the callback).
pub(crate) const LOGIN_IDP_DOWN: &str = "login refused while the IdP is down";
/// Excused: finishing a login while Redis is down (`503`).
pub(crate) const LOGIN_REDIS_DOWN: &str = "login 503 while Redis is down";
/// Excused: a signed-in user answered anonymous while Redis is down.
pub(crate) const ANONYMOUS_REDIS_DOWN: &str = "signed-in user served anonymous while Redis is down";
/// Excused: a back-channel logout answered `503` while Redis is down (the provider retries).
pub(crate) const BACKCHANNEL_REDIS_DOWN: &str = "back-channel logout 503 while Redis is down";
/// Not judged: the user signed out while the request was in flight.
pub(crate) const RACED_LOGOUT: &str = "answer raced with the user's logout (not judged)";

/// A lost login completed within a second of an earlier login of the same user (the app
/// remembers signed-out logins by user and start second).
pub(crate) const LOST_SAME_SECOND: &str = "login within 1 s of an earlier login of the same user";
/// Any other lost login.
pub(crate) const LOST_OTHER: &str = "other logins";

/// How many lost logins and served revoked sessions are described in the report.
const EXAMPLES: usize = 30;

/// Requests and latency of one phase.
#[derive(Clone, Debug)]
pub(crate) struct PhaseTally {
    pub(crate) requests: u64,
    pub(crate) latency: Histogram<u64>,
}

/// When the app served signed-in users again after Redis came back.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Recovery {
    /// The last anonymous answer to a signed-in user whose request began after Redis
    /// answered again, ms after that.
    pub(crate) last_anonymous_ms: Option<u64>,
    /// The first signed-in answer to a request that began after Redis answered again.
    pub(crate) first_signed_in_ms: Option<u64>,
}

/// Everything counted.
#[derive(Clone, Debug)]
pub(crate) struct Tally {
    pub(crate) requests: u64,
    pub(crate) phases: Vec<PhaseTally>,
    pub(crate) errors: BTreeMap<&'static str, u64>,
    pub(crate) first_errors: BTreeMap<&'static str, String>,
    pub(crate) expected: BTreeMap<&'static str, u64>,
    /// Answers worth knowing about that are neither errors nor excuses (what a 16 KB
    /// cookie got, how many replays and tampered cookies were refused, ...).
    pub(crate) outcomes: BTreeMap<String, u64>,
    /// Logins (user, login number) that were answered anonymous outside Redis's outage,
    /// and what kind of login each was.
    pub(crate) lost: BTreeMap<(usize, u64), &'static str>,
    pub(crate) lost_requests: u64,
    /// The first request of each lost login (at most [`EXAMPLES`]).
    pub(crate) lost_examples: Vec<String>,
    /// Replays of signed-out cookies, and those answered signed in, by how they ended.
    pub(crate) revoked_checks: u64,
    pub(crate) revoked_served: BTreeMap<&'static str, u64>,
    pub(crate) revoked_examples: Vec<String>,
    /// Whole logins (app, provider, callback), ms.
    pub(crate) logins: Histogram<u64>,
    pub(crate) recovery: Recovery,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            requests: 0,
            phases: Phase::ALL.iter().map(|_| PhaseTally { requests: 0, latency: histogram() }).collect(),
            errors: BTreeMap::new(),
            first_errors: BTreeMap::new(),
            expected: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            lost: BTreeMap::new(),
            lost_requests: 0,
            lost_examples: Vec::new(),
            revoked_checks: 0,
            revoked_served: BTreeMap::new(),
            revoked_examples: Vec::new(),
            logins: histogram(),
            recovery: Recovery::default(),
        }
    }
}

impl Tally {
    /// An answered request of `phase` that took `took`.
    pub(crate) fn answered(&mut self, phase: Phase, took: Duration) {
        self.requests += 1;
        let slot = &mut self.phases[phase.index()];
        slot.requests += 1;
        slot.latency.saturating_record(micros(took));
    }

    /// An error of `kind`; `detail` is kept for the first one.
    pub(crate) fn error(&mut self, kind: &'static str, detail: impl FnOnce() -> String) {
        *self.errors.entry(kind).or_default() += 1;
        self.first_errors.entry(kind).or_insert_with(detail);
    }

    /// An answer `kind` that the situation excuses.
    pub(crate) fn expected(&mut self, kind: &'static str) {
        *self.expected.entry(kind).or_default() += 1;
    }

    /// Something worth counting.
    pub(crate) fn outcome(&mut self, what: impl Into<String>) {
        *self.outcomes.entry(what.into()).or_default() += 1;
    }

    /// A signed-in user's request answered anonymous where nothing excuses it.
    pub(crate) fn lost(&mut self, sent: &Snapshot, detail: impl FnOnce() -> String) {
        self.lost_requests += 1;
        let kind = if sent.same_second { LOST_SAME_SECOND } else { LOST_OTHER };
        if self.lost.insert((sent.user, sent.login), kind).is_none() && self.lost_examples.len() < EXAMPLES {
            self.lost_examples.push(detail());
        }
    }

    /// A signed-out cookie that was checked; `served` when it was answered signed in.
    pub(crate) fn revoked(&mut self, served: Option<&'static str>, detail: impl FnOnce() -> String) {
        self.revoked_checks += 1;
        if let Some(how) = served {
            *self.revoked_served.entry(how).or_default() += 1;
            if self.revoked_examples.len() < EXAMPLES {
                self.revoked_examples.push(detail());
            }
        }
    }

    /// A whole login that took `took`.
    pub(crate) fn login(&mut self, took: Duration) {
        self.logins.saturating_record(micros(took));
    }
}

fn micros(took: Duration) -> u64 {
    u64::try_from(took.as_micros()).unwrap_or(MAX_LATENCY_US).clamp(1, MAX_LATENCY_US)
}
