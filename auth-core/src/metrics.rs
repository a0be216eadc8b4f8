//! The layer's metrics: every name, its labels, and the functions that record it, through
//! the [`metrics`] facade. The app picks the exporter (Prometheus, StatsD, OpenTelemetry,
//! ...) by installing its recorder; without one, recording costs a branch.
//!
//! Names follow Prometheus conventions (`auth_` prefix, counters end in `_total`, times are
//! `_seconds`). Labels are few and bounded: provider names come from the config, and every
//! other label value is one of the fixed words listed below (a `&'static str` at every call
//! site). No user id, email, subject, ticket, token, URL or error text is ever a label.
//!
//! | name | type | labels | what it counts |
//! |---|---|---|---|
//! | `auth_logins_started_total` | counter | `provider` | logins the login route started at a provider (before asking it for the authorization URL) |
//! | `auth_logins_succeeded_total` | counter | `provider` | logins whose callback stored a session |
//! | `auth_logins_failed_total` | counter | `provider`, `reason` | logins of this browser that ended without a session, at their start or at the callback |
//! | `auth_callback_errors_total` | counter | `kind` | callbacks answered with an error page, including those no login of the browser matches (`expired`) |
//! | `auth_refreshes_total` | counter | `provider`, `outcome` | token refreshes, once per session at a time: `refreshed`, `kept`, `logged_out`, `store_error` |
//! | `auth_logouts_total` | counter | `provider` | sessions ended by the logout route |
//! | `auth_backchannel_logouts_total` | counter | `outcome` | back-channel logout requests, by answer |
//! | `auth_sessions_revoked_total` | counter | `via` | sessions ended from elsewhere: `backchannel` (a logout token), `sessions` (the app, through `Sessions::end` or `end_others`) |
//! | `auth_provider_requests_total` | counter | `provider`, `endpoint`, `outcome` | HTTP calls to identity providers |
//! | `auth_provider_request_duration_seconds` | histogram | `provider`, `endpoint` | how long each of those calls took, body included |
//! | `auth_jwks_refetches_total` | counter | `provider` | key sets fetched again because a token named a key the cached set lacks |
//! | `auth_session_cache_hits_total` | counter | `cache` | requests whose credential was in the layer's cache: `cookie` (session cookies, cookie store), `bearer` (verified bearer tokens), `store` (a server-side store's own current copies: `RedisStore`'s local copies) |
//! | `auth_session_cache_misses_total` | counter | `cache` | requests whose credential was not, and was opened or verified |
//! | `auth_redis_errors_total` | counter | `kind` | Redis commands that failed: `timeout` (no answer in time), `unavailable` (any other error) |
//!
//! Values of `reason` (and `kind`, which adds `expired`), the same words the routes' tracing
//! spans record as `outcome`: `provider_error` (the provider answered the login with an
//! error, such as `access_denied`), `state_mismatch`, `malformed` (a repeated parameter),
//! `missing_code`, `rejected` (the provider's answer failed verification: a refused code
//! exchange, an invalid ID token), `denied` (the account is not admitted), `unavailable` (the
//! provider could not be reached), `error` (any other provider failure),
//! `bad_authorization_url`, `step_up_not_met`, `expired_id_token`, `store_error`, and
//! `expired` (the login is unknown here: expired, used, or never started by this browser).
//!
//! Values of `endpoint`: `discovery`, `jwks`, `token` (code exchange and refresh),
//! `userinfo`, `introspection`, `par` (pushed authorization requests), `revocation` (token
//! revocation at logout); of `outcome` for provider requests: `ok` (2xx), `redirect`
//! (3xx, never followed), `client_error` (4xx), `server_error` (5xx), `timeout`,
//! `transport_error` (no connection, a broken or oversized answer). Of the back-channel
//! `outcome`: `revoked`, `malformed`, `method_not_allowed`, `unknown_provider`,
//! `invalid_token`, `replay`, `unavailable`, `unsupported_provider`, `unsupported_store`,
//! `store_error`.
//!
//! **Install the recorder before building the layer.** metrics-rs binds a handle to the
//! recorder installed when the handle is made, and the layer makes its per-request handles
//! (the session cache's hits and misses) once, when it is built, so that a request costs an
//! atomic add rather than a name lookup. Everything else is recorded off the hot path
//! (logins, refreshes, provider calls) and finds the recorder installed at that moment.
//!
//! ```
//! // With metrics-exporter-prometheus, before `AuthLayer::from_config`:
//! // let handle = PrometheusBuilder::new().install_recorder()?;
//! // ... and serve `handle.render()` at `GET /metrics`.
//! let counts = auth_core::metrics::CacheCounters::new("cookie");
//! counts.record(true); // a no-op here: no recorder is installed
//! assert!(auth_core::metrics::NAMES.contains(&auth_core::metrics::SESSION_CACHE_HITS));
//! ```

use ::metrics::{Counter, SharedString, Unit, counter, describe_counter, describe_histogram, histogram};
use std::time::Duration;

/// Counter: logins started, by `provider`.
pub const LOGINS_STARTED: &str = "auth_logins_started_total";
/// Counter: logins that ended signed in, by `provider`.
pub const LOGINS_SUCCEEDED: &str = "auth_logins_succeeded_total";
/// Counter: logins that ended without a session, by `provider` and `reason`.
pub const LOGINS_FAILED: &str = "auth_logins_failed_total";
/// Counter: callbacks answered with an error page, by `kind`.
pub const CALLBACK_ERRORS: &str = "auth_callback_errors_total";
/// Counter: token refreshes, by `provider` and `outcome`.
pub const REFRESHES: &str = "auth_refreshes_total";
/// Counter: sessions ended by the logout route, by `provider`.
pub const LOGOUTS: &str = "auth_logouts_total";
/// Counter: back-channel logout requests, by `outcome`.
pub const BACKCHANNEL_LOGOUTS: &str = "auth_backchannel_logouts_total";
/// Counter: sessions revoked from elsewhere, by `via`.
pub const SESSIONS_REVOKED: &str = "auth_sessions_revoked_total";
/// Counter: HTTP calls to identity providers, by `provider`, `endpoint` and `outcome`.
pub const PROVIDER_REQUESTS: &str = "auth_provider_requests_total";
/// Histogram (seconds): how long the calls of [`PROVIDER_REQUESTS`] took, by `provider` and
/// `endpoint`.
pub const PROVIDER_REQUEST_DURATION: &str = "auth_provider_request_duration_seconds";
/// Counter: key sets fetched again for an unknown key, by `provider`.
pub const JWKS_REFETCHES: &str = "auth_jwks_refetches_total";
/// Counter: credentials found in the layer's cache, by `cache`.
pub const SESSION_CACHE_HITS: &str = "auth_session_cache_hits_total";
/// Counter: credentials not found in the layer's cache, by `cache`.
pub const SESSION_CACHE_MISSES: &str = "auth_session_cache_misses_total";
/// Counter: failed Redis commands, by `kind`.
pub const REDIS_ERRORS: &str = "auth_redis_errors_total";

/// Every metric name, in the order of the module's table.
pub const NAMES: [&str; 14] = [
    LOGINS_STARTED,
    LOGINS_SUCCEEDED,
    LOGINS_FAILED,
    CALLBACK_ERRORS,
    REFRESHES,
    LOGOUTS,
    BACKCHANNEL_LOGOUTS,
    SESSIONS_REVOKED,
    PROVIDER_REQUESTS,
    PROVIDER_REQUEST_DURATION,
    JWKS_REFETCHES,
    SESSION_CACHE_HITS,
    SESSION_CACHE_MISSES,
    REDIS_ERRORS,
];

/// Bucket bounds (seconds) that suit [`PROVIDER_REQUEST_DURATION`], for exporters that need
/// them (Prometheus renders a histogram with buckets, a summary without): from a fast
/// loopback answer to the longest `http_timeout_secs` would allow by default (10 s).
pub const PROVIDER_REQUEST_DURATION_BUCKETS: [f64; 12] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Describes every metric (help text and unit) to the installed recorder, for exporters
/// that show it (Prometheus' `# HELP`). The layer calls it when it is built.
pub fn describe() {
    describe_counter!(LOGINS_STARTED, Unit::Count, "Logins started at an identity provider.");
    describe_counter!(LOGINS_SUCCEEDED, Unit::Count, "Logins that ended with a stored session.");
    describe_counter!(LOGINS_FAILED, Unit::Count, "Logins that ended without a session, by reason.");
    describe_counter!(CALLBACK_ERRORS, Unit::Count, "Callbacks answered with an error page, by kind.");
    describe_counter!(REFRESHES, Unit::Count, "Token refreshes (one per session at a time), by outcome.");
    describe_counter!(LOGOUTS, Unit::Count, "Sessions ended by the logout route.");
    describe_counter!(BACKCHANNEL_LOGOUTS, Unit::Count, "Back-channel logout requests, by outcome.");
    describe_counter!(SESSIONS_REVOKED, Unit::Count, "Sessions ended by a logout token or by the app.");
    describe_counter!(PROVIDER_REQUESTS, Unit::Count, "HTTP requests to identity providers, by endpoint and outcome.");
    describe_histogram!(PROVIDER_REQUEST_DURATION, Unit::Seconds, "Duration of HTTP requests to identity providers.");
    describe_counter!(JWKS_REFETCHES, Unit::Count, "Key sets fetched again because a token named an unknown key.");
    describe_counter!(SESSION_CACHE_HITS, Unit::Count, "Requests whose session cookie or bearer token was cached.");
    describe_counter!(
        SESSION_CACHE_MISSES,
        Unit::Count,
        "Requests whose session cookie or bearer token was not in the cache."
    );
    describe_counter!(REDIS_ERRORS, Unit::Count, "Redis commands that failed, by kind.");
}

/// A login started at `provider`.
pub fn login_started(provider: &str) {
    counter!(LOGINS_STARTED, "provider" => provider.to_owned()).increment(1);
}

/// A login at `provider` ended with a stored session.
pub fn login_succeeded(provider: &str) {
    counter!(LOGINS_SUCCEEDED, "provider" => provider.to_owned()).increment(1);
}

/// A login at `provider` ended without a session, for `reason` (see the module docs).
pub fn login_failed(provider: &str, reason: &'static str) {
    counter!(LOGINS_FAILED, "provider" => provider.to_owned(), "reason" => reason).increment(1);
}

/// A callback was answered with an error page of `kind` (see the module docs).
pub fn callback_error(kind: &'static str) {
    counter!(CALLBACK_ERRORS, "kind" => kind).increment(1);
}

/// A refresh of a session of `provider` ended with `outcome`.
pub fn refresh(provider: &str, outcome: &'static str) {
    counter!(REFRESHES, "provider" => provider.to_owned(), "outcome" => outcome).increment(1);
}

/// The logout route ended a session of `provider`.
pub fn logout(provider: &str) {
    counter!(LOGOUTS, "provider" => provider.to_owned()).increment(1);
}

/// A back-channel logout request was answered with `outcome`.
pub fn backchannel_logout(outcome: &'static str) {
    counter!(BACKCHANNEL_LOGOUTS, "outcome" => outcome).increment(1);
}

/// `count` sessions were ended `via` a logout token (`backchannel`) or the app (`sessions`).
pub fn sessions_revoked(via: &'static str, count: u64) {
    counter!(SESSIONS_REVOKED, "via" => via).increment(count);
}

/// A call to `provider`'s `endpoint` ended with `outcome` after `elapsed`.
pub fn provider_request(provider: &str, endpoint: &'static str, outcome: &'static str, elapsed: Duration) {
    let provider = SharedString::from(provider.to_owned());
    counter!(PROVIDER_REQUESTS, "provider" => provider.clone(), "endpoint" => endpoint, "outcome" => outcome)
        .increment(1);
    histogram!(PROVIDER_REQUEST_DURATION, "provider" => provider, "endpoint" => endpoint).record(elapsed.as_secs_f64());
}

/// `provider`'s key set is fetched again for a key the cached one lacks.
pub fn jwks_refetch(provider: &str) {
    counter!(JWKS_REFETCHES, "provider" => provider.to_owned()).increment(1);
}

/// A Redis command failed: `timeout` or `unavailable`.
pub fn redis_error(kind: &'static str) {
    counter!(REDIS_ERRORS, "kind" => kind).increment(1);
}

/// The hit and miss counters of one of the layer's caches, made once (when the layer is
/// built) so that a request pays an atomic add, not a lookup by name.
#[derive(Clone, Debug)]
pub struct CacheCounters {
    hits: Counter,
    misses: Counter,
}

impl CacheCounters {
    /// The counters of the cache labelled `cache` (`cookie`, `bearer` or `store`), bound to the
    /// recorder installed now.
    pub fn new(cache: &'static str) -> Self {
        Self {
            hits: counter!(SESSION_CACHE_HITS, "cache" => cache),
            misses: counter!(SESSION_CACHE_MISSES, "cache" => cache),
        }
    }

    /// Counters that count nothing, for a cache that is not there.
    pub const fn noop() -> Self {
        Self { hits: Counter::noop(), misses: Counter::noop() }
    }

    /// Counts one lookup: a hit or a miss.
    #[inline]
    pub fn record(&self, hit: bool) {
        if hit { self.hits.increment(1) } else { self.misses.increment(1) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        for name in NAMES {
            assert!(name.starts_with("auth_"), "{name}");
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{name}");
            assert!(name.ends_with("_total") || name.ends_with("_seconds"), "{name}");
        }
        let mut unique = NAMES.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), NAMES.len());
    }
}
