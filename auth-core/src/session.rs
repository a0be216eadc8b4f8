//! A signed-in session: an identity, its tokens, and its lifetime.

use crate::{Identity, TokenSet};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, the time unit of every session field.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What a [`SessionStore`](crate::SessionStore) keeps between requests.
///
/// A session ends at its [`deadline`](Self::deadline): the absolute `expires_at`, or the
/// idle deadline `idle_expires_at` when that comes first. Stores must treat a session past
/// its deadline as absent ([`is_expired_at`](Self::is_expired_at)); server-side stores can
/// use [`remaining_secs`](Self::remaining_secs) as the entry's time to live.
///
/// Fields are public to read; build one with [`Session::new`] or [`Session::starting_at`]
/// (the struct may grow).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Session {
    /// Who is signed in.
    pub identity: Identity,
    /// The provider's tokens.
    #[serde(default)]
    pub tokens: TokenSet,
    /// When the login completed, in Unix seconds.
    pub created_at: u64,
    /// When the session ends, whatever happens, in Unix seconds (`session_lifetime_secs`
    /// after the login, or the ID token's expiry with `end_with_id_token`).
    pub expires_at: u64,
    /// When the session ends unless it is used before, in Unix seconds (`idle_timeout_secs`
    /// after the last renewal); `None` without an idle timeout. Absent in sessions written
    /// before idle timeouts existed, which therefore still open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_expires_at: Option<u64>,
    /// The provider's [`admission`](crate::IdentityProvider::admission) fingerprint when the
    /// session was made: a different one now means the rules changed, and the session is
    /// checked against them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<String>,
    /// A random name of the login this session belongs to, kept through refreshes and
    /// renewals: it tells two logins of one person apart (a logout ends every cookie of its
    /// login, and only those). Absent in sessions written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_id: Option<String>,
    /// When the layer last wrote the session, in Unix seconds: the login, the last token
    /// refresh or the last idle-timeout renewal (not every request: that would be a write per
    /// request). What [`SessionInfo::last_seen`](crate::SessionInfo::last_seen) shows. The
    /// layer sets it only with a store that lists sessions ([`SessionStore::listing`](crate::SessionStore::listing));
    /// the cookie store's sealed form does not keep it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<u64>,
    /// A short summary of the browser that signed in, such as `"Firefox on Linux"`, made
    /// from its `User-Agent` at login (never the header itself), to tell a person's sessions
    /// apart. Set, and kept, as [`updated_at`](Self::updated_at) is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

impl Session {
    /// A session starting now and lasting `lifetime_secs`, without an idle timeout.
    pub fn new(identity: Identity, tokens: TokenSet, lifetime_secs: u64) -> Self {
        let now = unix_now();
        Self {
            identity,
            tokens,
            created_at: now,
            expires_at: now.saturating_add(lifetime_secs),
            idle_expires_at: None,
            admission: None,
            login_id: None,
            updated_at: None,
            device: None,
        }
    }

    /// A session that started at `created_at` and ends at `expires_at` (Unix seconds),
    /// without an idle timeout.
    pub fn starting_at(identity: Identity, tokens: TokenSet, created_at: u64, expires_at: u64) -> Self {
        Self {
            identity,
            tokens,
            created_at,
            expires_at,
            idle_expires_at: None,
            admission: None,
            login_id: None,
            updated_at: None,
            device: None,
        }
    }

    /// With the idle deadline `idle_expires_at` (Unix seconds; `None`: no idle timeout).
    #[must_use]
    pub fn with_idle_expires_at(mut self, idle_expires_at: Option<u64>) -> Self {
        self.idle_expires_at = idle_expires_at;
        self
    }

    /// With the provider's admission fingerprint `admission`.
    #[must_use]
    pub fn with_admission(mut self, admission: Option<String>) -> Self {
        self.admission = admission;
        self
    }

    /// With the login's random name `login_id` (see [`login_id`](Self::login_id)).
    #[must_use]
    pub fn with_login_id(mut self, login_id: Option<String>) -> Self {
        self.login_id = login_id;
        self
    }

    /// With the time of its last write `updated_at` (Unix seconds, see [`updated_at`](Self::updated_at)).
    #[must_use]
    pub fn with_updated_at(mut self, updated_at: Option<u64>) -> Self {
        self.updated_at = updated_at;
        self
    }

    /// With the summary of the browser that signed in (see [`device`](Self::device)).
    #[must_use]
    pub fn with_device(mut self, device: Option<String>) -> Self {
        self.device = device;
        self
    }

    /// When the session ends: the earlier of `expires_at` and `idle_expires_at`.
    pub fn deadline(&self) -> u64 {
        self.idle_expires_at.map_or(self.expires_at, |idle| idle.min(self.expires_at))
    }

    /// Whether the session has ended at `now` (Unix seconds).
    pub fn is_expired_at(&self, now: u64) -> bool {
        now >= self.deadline()
    }

    /// Seconds left before the session ends (0 when it has): the cookie's `Max-Age`, and
    /// the time to live of a server-side entry.
    pub fn remaining_secs(&self, now: u64) -> u64 {
        self.deadline().saturating_sub(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_deadline_ends_a_session_early() {
        let mut session = Session::new(Identity::new("p", "alice", Default::default()), TokenSet::default(), 100);
        let now = session.created_at;
        assert_eq!(session.remaining_secs(now), 100);
        session.idle_expires_at = Some(now + 10);
        assert_eq!(session.deadline(), now + 10);
        assert_eq!(session.remaining_secs(now), 10);
        assert!(!session.is_expired_at(now + 9));
        assert!(session.is_expired_at(now + 10));
        session.idle_expires_at = Some(now + 1000);
        assert_eq!(session.deadline(), now + 100, "never beyond the absolute lifetime");
    }

    #[test]
    fn sessions_written_before_idle_timeouts_still_parse() {
        let old = r#"{"identity":{"provider":"p","subject":"a","claims":{}},"created_at":1,"expires_at":2}"#;
        let session: Session = serde_json::from_str(old).expect("parses");
        assert_eq!(session.idle_expires_at, None);
        assert!(!serde_json::to_string(&session).expect("json").contains("idle"), "absent stays absent");
    }
}
