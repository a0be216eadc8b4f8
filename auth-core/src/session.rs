//! A signed-in session: an identity, its tokens, and its lifetime.

use crate::{Identity, TokenSet};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, the time unit of every session field.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What a [`SessionStore`](crate::SessionStore) keeps between requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Who is signed in.
    pub identity: Identity,
    /// The provider's tokens.
    #[serde(default)]
    pub tokens: TokenSet,
    /// When the login completed, in Unix seconds.
    pub created_at: u64,
    /// When the session ends, whatever happens, in Unix seconds.
    pub expires_at: u64,
}

impl Session {
    /// A session starting now and lasting `lifetime_secs`.
    pub fn new(identity: Identity, tokens: TokenSet, lifetime_secs: u64) -> Self {
        let now = unix_now();
        Self { identity, tokens, created_at: now, expires_at: now.saturating_add(lifetime_secs) }
    }

    /// Whether the session has ended at `now` (Unix seconds).
    pub fn is_expired_at(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// Seconds left before the session ends (0 when it has).
    pub fn remaining_secs(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }
}
